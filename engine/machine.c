/* Builds the PC and runs its vCPU loop. */
#include "machine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "devices/debug_exit.h"
#include "devices/debugcon.h"
#include "loader.h"

/* The BIOS image is mapped twice, as on a PC: whole just below 4 GiB, where
 * the reset vector is, and its last 128 KiB just below 1 MiB. */
#define ISA_BIOS_WINDOW (128 * 1024)

struct machine_work {
    machine_work_fn fn;
    void *data;
};

static bool load_file(const char *path, uint8_t **data, size_t *size, GError **error)
{
    gchar *contents;
    gsize length;
    if (!g_file_get_contents(path, &contents, &length, error))
        return false;
    *data = (uint8_t *)contents;
    *size = length;
    return true;
}

static bool map_bios(struct machine *m, GError **error)
{
    uint8_t *file;
    size_t size;
    if (!load_file(m->config->bios_path, &file, &size, error))
        return false;
    if (size == 0 || size % GUEST_PAGE_SIZE != 0 || size > 16 * 1024 * 1024) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: a firmware image must be a multiple of 4 KiB and at most 16 MiB "
                    "(this one is %zu bytes)",
                    m->config->bios_path, size);
        g_free(file);
        return false;
    }
    /* Guest memory must be page-aligned host memory (KVM maps it by pages). */
    uint8_t *image = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (image == MAP_FAILED) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, "cannot allocate the firmware image");
        g_free(file);
        return false;
    }
    memcpy(image, file, size);
    g_free(file);
    m->bios_image = image;
    m->bios_size = size;

    m->bios_high = (struct memory_region){.name = "bios",
                                          .base = (1ull << 32) - size,
                                          .size = size,
                                          .priority = 1,
                                          .enabled = true,
                                          .host = image,
                                          .readonly = true};
    memory_add_region(&m->mem, &m->bios_high);

    size_t low_size = size < ISA_BIOS_WINDOW ? size : ISA_BIOS_WINDOW;
    m->bios_low = (struct memory_region){.name = "isa-bios",
                                         .base = 0x100000 - low_size,
                                         .size = low_size,
                                         .priority = 1,
                                         .enabled = true,
                                         .host = image + size - low_size,
                                         .readonly = true};
    memory_add_region(&m->mem, &m->bios_low);
    return true;
}

/* The CPU state at power-on: the reset vector, or a kernel's entry point
 * when booting one directly (reloaded at every reset, as QEMU does). */
static bool initial_cpu_state(struct machine *m, struct x86_state *state, GError **error)
{
    if (m->config->kernel_path)
        return loader_boot_kernel(m, state, error);
    x86_state_reset(state);
    return true;
}

/* The software backend --accel auto falls back on when KVM is not usable. */
static const struct cpu_backend *const software_backend = &cpu_backend_dbt;

static bool try_cpu_backend(struct machine *m, const struct cpu_backend *backend, GError **error)
{
    m->cpu.backend = backend;
    if (backend->init(&m->cpu, error))
        return true;
    m->cpu.backend = NULL;
    return false;
}

/* Picks the CPU backend: "auto" takes KVM when /dev/kvm opens and accepts a
 * VM, and says why when it falls back. */
static bool init_cpu_backend(struct machine *m, const char *accel, GError **error)
{
    if (strcmp(accel, "auto") == 0) {
        GError *kvm_error = NULL;
        if (try_cpu_backend(m, &cpu_backend_kvm, &kvm_error)) {
            fprintf(stderr, "vivarium-engine: --accel auto: using kvm\n");
            return true;
        }
        fprintf(stderr, "vivarium-engine: --accel auto: KVM is not usable (%s); using %s\n",
                kvm_error->message, software_backend->name);
        g_error_free(kvm_error);
        return try_cpu_backend(m, software_backend, error);
    }
    const struct cpu_backend *backend = cpu_backend_by_name(accel);
    if (!backend) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "unknown accelerator '%s' (use auto, kvm, dbt or interp)", accel);
        return false;
    }
    GError *backend_error = NULL;
    if (try_cpu_backend(m, backend, &backend_error))
        return true;
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "--accel %s: %s", accel,
                backend_error->message);
    g_error_free(backend_error);
    return false;
}

static int cpu_intr_ack_none(void *opaque)
{
    (void)opaque;
    return -1;
}

struct machine *machine_create(struct machine_config *config, GError **error)
{
    struct machine *m = g_new0(struct machine, 1);
    m->config = config;
    m->devices = g_array_new(FALSE, TRUE, sizeof(struct machine_device));
    m->work = g_async_queue_new();
    g_mutex_init(&m->wait_lock);
    g_cond_init(&m->wait_cond);
    ioport_bus_init(&m->io);
    vclock_init(&m->clock);

    if (config->ram_size < 1024 * 1024 || config->ram_size > 3072ull * 1024 * 1024) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "memory size must be between 1 MiB and 3072 MiB");
        goto fail;
    }
    if (!memory_init(&m->mem, config->ram_size)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM,
                    "cannot allocate %" G_GUINT64_FORMAT " MiB of guest memory",
                    config->ram_size >> 20);
        goto fail;
    }
    m->ram_region = (struct memory_region){.name = "ram",
                                           .base = 0,
                                           .size = config->ram_size,
                                           .priority = 0,
                                           .enabled = true,
                                           .host = m->mem.ram};
    memory_add_region(&m->mem, &m->ram_region);

    /* The CPU comes first, so that devices may drive its interrupt line as
     * soon as they exist. */
    m->cpu.machine = m;
    m->cpu.mem = &m->mem;
    m->cpu.io = &m->io;
    m->cpu.clock = &m->clock;
    m->cpu.trace = config->trace;
    m->cpu.intr_ack = cpu_intr_ack_none;
    if (!init_cpu_backend(m, config->accel ? config->accel : "auto", error))
        goto fail;
    m->cpu_ready = true;
    m->run_state = MACHINE_STOPPED;

    /* Direct kernel boot runs with no firmware at all. */
    if (!config->kernel_path && !map_bios(m, error))
        goto fail;

    m->debug_exit = debug_exit_create(m);
    m->debugcon = debugcon_create(m, DEBUGCON_PORT, config->debugcon_out);
    m->firmware_log = debugcon_create(m, DEBUGCON_FIRMWARE_PORT, config->firmware_log);

    struct x86_state state;
    if (!initial_cpu_state(m, &state, error))
        goto fail;
    m->cpu.backend->set_state(&m->cpu, &state);
    return m;

fail:
    machine_destroy(m);
    return NULL;
}

void machine_destroy(struct machine *m)
{
    if (!m)
        return;
    if (m->cpu_ready)
        m->cpu.backend->destroy(&m->cpu);
    debugcon_destroy(m->debugcon);
    debugcon_destroy(m->firmware_log);
    debug_exit_destroy(m->debug_exit);
    memory_destroy(&m->mem);
    if (m->bios_image)
        munmap(m->bios_image, m->bios_size);
    g_array_free(m->devices, TRUE);
    g_async_queue_unref(m->work);
    g_mutex_clear(&m->wait_lock);
    g_cond_clear(&m->wait_cond);
    g_free(m);
}

void machine_add_device(struct machine *m, const char *name, void *state,
                        const struct vmstate_desc *vmstate, void (*reset)(void *state))
{
    struct machine_device dev = {.name = name, .state = state, .vmstate = vmstate, .reset = reset};
    g_array_append_val(m->devices, dev);
}

void machine_set_post_load(struct machine *m, void *state, void (*post_load)(void *state))
{
    for (guint i = 0; i < m->devices->len; i++) {
        struct machine_device *dev = &g_array_index(m->devices, struct machine_device, i);
        if (dev->state == state)
            dev->post_load = post_load;
    }
}

static void machine_reset(struct machine *m)
{
    for (guint i = 0; i < m->devices->len; i++) {
        struct machine_device *dev = &g_array_index(m->devices, struct machine_device, i);
        if (dev->reset)
            dev->reset(dev->state);
    }
    m->reset_requested = false;
    struct x86_state state;
    GError *error = NULL;
    if (!initial_cpu_state(m, &state, &error)) {
        fprintf(stderr, "vivarium-engine: cannot restart the kernel: %s\n", error->message);
        g_error_free(error);
        machine_request_exit(m, MACHINE_EXIT_ERROR);
        return;
    }
    m->cpu.backend->set_state(&m->cpu, &state);
}

static void set_run_state(struct machine *m, enum machine_run_state state)
{
    if (m->run_state == state)
        return;
    m->run_state = state;
    if (state == MACHINE_RUNNING)
        vclock_start(&m->clock);
    else
        vclock_stop(&m->clock);
    m->cpu.stop_requested = 1;
    if (m->run_state_changed)
        m->run_state_changed(m, state, m->run_state_opaque);
}

void machine_power_on(struct machine *m)
{
    if (m->run_state == MACHINE_STOPPED)
        set_run_state(m, MACHINE_RUNNING);
}

void machine_power_off(struct machine *m)
{
    if (m->run_state == MACHINE_STOPPED)
        return;
    machine_reset(m);
    set_run_state(m, MACHINE_STOPPED);
}

void machine_pause(struct machine *m)
{
    if (m->run_state == MACHINE_RUNNING)
        set_run_state(m, MACHINE_PAUSED);
}

void machine_resume(struct machine *m)
{
    if (m->run_state == MACHINE_PAUSED)
        set_run_state(m, MACHINE_RUNNING);
}

static void wake(struct machine *m)
{
    g_mutex_lock(&m->wait_lock);
    m->wakeup = true;
    g_cond_signal(&m->wait_cond);
    g_mutex_unlock(&m->wait_lock);
    m->cpu.stop_requested = 1;
    m->cpu.backend->kick(&m->cpu);
}

void machine_request_exit(struct machine *m, int status)
{
    m->exit_status = status;
    m->quit = 1;
    m->cpu.stop_requested = 1;
}

void machine_request_reset(struct machine *m)
{
    m->reset_requested = true;
    m->cpu.stop_requested = 1;
}

void machine_set_a20(struct machine *m, bool enabled)
{
    /* Gate changes are rare (once at boot, usually), so going through the
     * backend's full state is simple and lets it flush what it caches. */
    struct x86_state state;
    m->cpu.backend->get_state(&m->cpu, &state);
    uint32_t mask = enabled ? 0xffffffffu : ~(1u << 20);
    if (state.a20_mask == mask)
        return;
    state.a20_mask = mask;
    m->cpu.backend->set_state(&m->cpu, &state);
}

void machine_post(struct machine *m, machine_work_fn fn, void *data)
{
    struct machine_work *work = g_new(struct machine_work, 1);
    work->fn = fn;
    work->data = data;
    g_async_queue_push(m->work, work);
    wake(m);
}

static void run_posted_work(struct machine *m)
{
    struct machine_work *work;
    while ((work = g_async_queue_try_pop(m->work))) {
        work->fn(m, work->data);
        g_free(work);
    }
}

/* Sleeps while the CPU is halted, until the next timer is due or another
 * thread posts work. An idle guest costs no host CPU. */
static void wait_for_event(struct machine *m, int64_t deadline_ns)
{
    g_mutex_lock(&m->wait_lock);
    while (!m->wakeup && g_async_queue_length(m->work) == 0) {
        int64_t now = vclock_now(&m->clock);
        if (deadline_ns <= now)
            break;
        int64_t wait_us =
            deadline_ns == INT64_MAX ? G_TIME_SPAN_SECOND : (deadline_ns - now) / 1000;
        if (wait_us > G_TIME_SPAN_SECOND)
            wait_us = G_TIME_SPAN_SECOND;
        g_cond_wait_until(&m->wait_cond, &m->wait_lock, g_get_monotonic_time() + wait_us + 1);
    }
    m->wakeup = false;
    g_mutex_unlock(&m->wait_lock);
}

int machine_run(struct machine *m)
{
    if (!m->config->start_stopped)
        set_run_state(m, MACHINE_RUNNING);
    while (!m->quit) {
        m->cpu.stop_requested = 0;
        run_posted_work(m);
        if (m->run_state != MACHINE_RUNNING) {
            if (!m->quit)
                wait_for_event(m, INT64_MAX);
            continue;
        }
        vclock_run_timers(&m->clock);
        if (m->reset_requested) {
            if (m->config->no_reboot) {
                fprintf(stderr, "vivarium-engine: the guest reset the machine (--no-reboot)\n");
                machine_request_exit(m, MACHINE_EXIT_RESET);
                break;
            }
            machine_reset(m);
        }
        if (m->quit)
            break;

        int64_t deadline = vclock_next_deadline(&m->clock);
        enum cpu_exit why = m->cpu.backend->run(&m->cpu, deadline);
        if (m->quit)
            break;
        switch (why) {
        case CPU_EXIT_STOP:
            break;
        case CPU_EXIT_HALT:
            wait_for_event(m, vclock_next_deadline(&m->clock));
            break;
        case CPU_EXIT_SHUTDOWN:
            fprintf(stderr, "vivarium-engine: triple fault\n");
            machine_request_reset(m);
            break;
        case CPU_EXIT_ERROR:
            fprintf(stderr, "vivarium-engine: the %s backend stopped with an error\n",
                    m->cpu.backend->name);
            machine_request_exit(m, MACHINE_EXIT_ERROR);
            break;
        }
    }
    vclock_stop(&m->clock);
    return m->exit_status;
}

void machine_dump_state(struct machine *m, FILE *out)
{
    for (guint i = 0; i < m->devices->len; i++) {
        struct machine_device *dev = &g_array_index(m->devices, struct machine_device, i);
        if (dev->vmstate)
            vmstate_dump(out, dev->name, dev->vmstate, dev->state);
    }
}
