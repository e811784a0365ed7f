/* Builds the PC and runs its vCPU loop. */
#include "machine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "block/block.h"
#include "devices/debug_exit.h"
#include "devices/debugcon.h"
#include "devices/dma.h"
#include "devices/fdc.h"
#include "devices/fw_cfg.h"
#include "devices/i440fx.h"
#include "devices/i8042.h"
#include "devices/ide.h"
#include "devices/ide_pci.h"
#include "audio/audio.h"
#include "devices/pci.h"
#include "devices/pcspk.h"
#include "devices/pic.h"
#include "devices/piix3.h"
#include "devices/pit.h"
#include "devices/port92.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/vga.h"
#include "devices/vga_pci.h"
#include "display/framebuffer.h"
#include "e820.h"
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

static const char *drive_name(const struct drive_config *drive)
{
    static const char *const ide_names[] = {"hda", "hdb", "hdc", "hdd"};
    if (drive->kind == DRIVE_FLOPPY)
        return drive->unit == 0 ? "fda" : "fdb";
    return drive->unit < 4 ? ide_names[drive->unit] : "ide";
}

/* Opens every configured image and plugs it into its controller; a missing,
 * damaged or unsupported image stops the machine from starting. */
/* The CD-ROM is the secondary master (hdc), as QEMU's -cdrom. */
#define CDROM_IDE_UNIT 2

static bool unit_in_use(struct machine *m, unsigned unit)
{
    for (unsigned i = 0; i < m->config->nr_drives; i++) {
        const struct drive_config *drive = &m->config->drives[i];
        if (drive->kind != DRIVE_FLOPPY && drive->unit == unit)
            return true;
    }
    return false;
}

/* The removable drives, as indexes of m->media. */
enum { MEDIA_FDA, MEDIA_FDB, MEDIA_CDROM };

static bool attach_drives(struct machine *m, GError **error)
{
    /* Every PC has a drive A:, with or without a disk in it. */
    m->has_drive[MEDIA_FDA] = true;
    for (unsigned i = 0; i < m->config->nr_drives; i++) {
        const struct drive_config *drive = &m->config->drives[i];
        bool readonly = drive->readonly || drive->kind == DRIVE_CDROM;
        GError *open_error = NULL;
        struct block_device *bd = block_open(drive->path, readonly, &open_error);
        /* A floppy image that cannot be written is a write-protected disk,
         * as it would be in a real drive. */
        if (!bd && drive->kind == DRIVE_FLOPPY && !readonly) {
            g_clear_error(&open_error);
            bd = block_open(drive->path, true, &open_error);
        }
        if (!bd) {
            g_propagate_prefixed_error(error, open_error, "%s: ", drive_name(drive));
            return false;
        }
        int media = drive->kind == DRIVE_FLOPPY  ? (drive->unit ? MEDIA_FDB : MEDIA_FDA)
                    : drive->kind == DRIVE_CDROM ? MEDIA_CDROM
                                                 : -1;
        if (media >= 0) {
            m->has_drive[media] = true;
            m->media[media] = g_strdup(drive->path);
        }
        if (drive->kind == DRIVE_FLOPPY) {
            if (!fdc_insert(m->fdc, drive->unit, bd, &open_error)) {
                block_close(bd);
                g_propagate_prefixed_error(error, open_error, "%s: ", drive_name(drive));
                return false;
            }
            continue;
        }
        enum ide_drive_kind kind = drive->kind == DRIVE_CDROM ? IDE_CDROM : IDE_DISK;
        /* Snapshots move a writable disk to a new image under the guest's
         * feet: the controller holds a proxy for it. */
        if (kind == IDE_DISK && !bd->readonly && drive->unit < 4)
            bd = m->disks[drive->unit] = block_proxy_new(bd);
        if (!ide_attach_drive(m->ide, drive->unit, kind, bd)) {
            block_close(bd);
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "%s: the IDE unit is already in use, or the image is empty",
                        drive_name(drive));
            return false;
        }
    }
    /* As on a desktop PC, a CD-ROM drive is always there (on the secondary
     * master, as QEMU's -cdrom), empty unless a disc was given. */
    if (!m->has_drive[MEDIA_CDROM] && !unit_in_use(m, CDROM_IDE_UNIT)) {
        if (!ide_attach_drive(m->ide, CDROM_IDE_UNIT, IDE_CDROM, NULL)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot add the CD-ROM drive");
            return false;
        }
        m->has_drive[MEDIA_CDROM] = true;
    }
    return true;
}

/* The CPU state at power-on: the reset vector, or a kernel's entry point
 * when booting one directly (reloaded at every reset, as QEMU does). */
static bool initial_cpu_state(struct machine *m, struct x86_state *state, GError **error)
{
    if (m->config->kernel_path) {
        /* No firmware runs, so nothing else would give the text mode its
         * font. */
        vga_load_rom_font(m->vga);
        return loader_boot_kernel(m, state, error);
    }
    x86_state_reset(state);
    return true;
}

/* The mixer's step, every few milliseconds of virtual time while the machine
 * runs and sound has somewhere to go. */
static void mix_audio(void *opaque)
{
    struct machine *m = opaque;
    audio_mix(m->audio);
    vtimer_arm(&m->clock, &m->audio_timer, vclock_now(&m->clock) + audio_mix_period_ns());
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

/* The A20 gate is open while either the keyboard controller's output port
 * or port 0x92 opens it, as on a PC's chipset. */
static void update_a20(struct machine *m)
{
    if (m->cpu_ready)
        machine_set_a20(m, m->a20_from_kbc || m->a20_from_port92);
}

static void a20_line_changed(void *opaque, int n, bool level)
{
    struct machine *m = opaque;
    (void)n;
    m->a20_from_kbc = level;
    update_a20(m);
}

static void reset_line_changed(void *opaque, int n, bool level)
{
    (void)n;
    if (level)
        machine_request_reset(opaque);
}

/* What the firmware learns through fw_cfg, as QEMU's pc machine offers it
 * to SeaBIOS. */
static void fill_fw_cfg(struct machine *m)
{
    struct fw_cfg *fw = m->fw_cfg;
    const struct machine_config *config = m->config;
    static const uint8_t no_uuid[16];
    fw_cfg_add_u64(fw, FW_CFG_RAM_SIZE, config->ram_size);
    fw_cfg_add_u16(fw, FW_CFG_NB_CPUS, 1);
    fw_cfg_add_u16(fw, FW_CFG_MAX_CPUS, 1);
    fw_cfg_add_u16(fw, FW_CFG_NOGRAPHIC, 0);
    fw_cfg_add_u16(fw, FW_CFG_BOOT_MENU, 0);
    fw_cfg_add_u64(fw, FW_CFG_NUMA, 0);
    fw_cfg_add_bytes(fw, FW_CFG_UUID, no_uuid, sizeof(no_uuid));
    /* The engine boots kernels itself (loader.c), not through the
     * firmware's linuxboot ROM: these stay empty. */
    fw_cfg_add_u32(fw, FW_CFG_KERNEL_SIZE, 0);
    fw_cfg_add_u32(fw, FW_CFG_INITRD_SIZE, 0);
    fw_cfg_add_u32(fw, FW_CFG_CMDLINE_SIZE, 0);
    uint8_t boot_cpus[2] = {1, 0};
    fw_cfg_add_file(fw, "etc/boot-cpus", boot_cpus, sizeof(boot_cpus));
    /* Milliseconds before retrying a failed boot; -1: never, as in QEMU. */
    uint8_t fail_wait[4] = {0xff, 0xff, 0xff, 0xff};
    fw_cfg_add_file(fw, "etc/boot-fail-wait", fail_wait, sizeof(fail_wait));

    /* The same map the direct kernel loaders hand over. SeaBIOS takes the
     * RAM from 1 MiB up and the reservations from it. */
    struct e820_entry map[E820_MAX_ENTRIES];
    unsigned entries = e820_build(config->ram_size, map);
    for (unsigned i = 0; i < entries; i++)
        fw_cfg_add_e820(fw, map[i].addr, map[i].size, map[i].type);
    if (config->boot_order)
        fw_cfg_set_boot_order(fw, config->boot_order);
}

static void kbc_key_event(void *kbc, unsigned qnum, bool down)
{
    i8042_key_event(kbc, qnum, down);
}

/* The machine's button bits are the PS/2 ones (MOUSE_BUTTON_* equal
 * I8042_BUTTON_*). */
static void kbc_pointer_event(void *kbc, int dx, int dy, int dz, unsigned buttons)
{
    i8042_mouse_event(kbc, dx, dy, dz, buttons);
}

/* The PCI side of the chipset and the keyboard controller. */
static void create_pci_chipset(struct machine *m)
{
    /* The keyboard controller's output port comes up with A20 open. */
    m->a20_from_kbc = true;
    m->a20_line = (struct irq_line){.handler = a20_line_changed, .opaque = m};
    m->reset_line = (struct irq_line){.handler = reset_line_changed, .opaque = m};

    m->pci = pci_bus_create(&m->io, &m->mem);
    machine_add_device(m, "pci", m->pci, &pci_bus_vmstate, pci_bus_reset);
    m->i440fx = i440fx_create(m->pci, &m->mem);
    machine_add_device(m, "i440fx", m->i440fx, &i440fx_vmstate, i440fx_reset);
    machine_set_post_load(m, m->i440fx, i440fx_post_load);
    m->piix3 = piix3_create(m->pci, &m->io, pic_irq_line(m->pic, 0), &m->reset_line);
    machine_add_device(m, "piix3", m->piix3, &piix3_vmstate, piix3_reset);
    machine_set_post_load(m, m->piix3, piix3_post_load);
    /* The IDE controller registers the PIIX3 IDE function (00:01.1) itself
     * with piix3_ide_pci_init() and pci_register_device(). */

    m->fw_cfg = fw_cfg_create(&m->io, &m->mem);
    machine_add_device(m, "fw_cfg", m->fw_cfg, &fw_cfg_vmstate, fw_cfg_reset);
    fill_fw_cfg(m);

    struct i8042_lines kbc_lines = {
        .kbd_irq = pic_irq_line(m->pic, 1),
        .mouse_irq = pic_irq_line(m->pic, 12),
        .a20 = &m->a20_line,
        .reset = &m->reset_line,
    };
    m->i8042 = i8042_create(&m->io, &m->clock, &kbc_lines);
    machine_add_device(m, "i8042", m->i8042, &i8042_vmstate, i8042_reset);
    machine_set_post_load(m, m->i8042, i8042_post_load);
    m->input = (struct machine_input){
        .key = kbc_key_event, .pointer = kbc_pointer_event, .opaque = m->i8042};
}

static void machine_cpu_intr_changed(void *opaque, int n, bool level)
{
    struct machine *m = opaque;
    (void)n;
    if (m->cpu_ready)
        m->cpu.backend->set_irq(&m->cpu, level);
}

static void machine_port92_set_a20(void *opaque, bool enabled)
{
    struct machine *m = opaque;
    m->a20_from_port92 = enabled;
    update_a20(m);
}

static void machine_port92_reset(void *opaque)
{
    machine_request_reset(opaque);
}

/* SeaBIOS's boot device codes in CMOS bytes 0x3d and 0x38, as QEMU's pc
 * machine writes them: 1 floppy, 2 hard disk, 3 CD-ROM, 4 network. */
static uint8_t cmos_boot_device(char c)
{
    switch (c) {
    case 'a':
        return 1;
    case 'c':
        return 2;
    case 'd':
        return 3;
    case 'n':
        return 4;
    default:
        return 0;
    }
}

/* The configuration bytes of CMOS that the firmware reads, laid out as
 * QEMU's pc machine does (hw/i386/pc.c). The century byte (0x32) is kept
 * by the RTC itself. */
static void machine_fill_cmos(struct machine *m)
{
    struct rtc *rtc = m->rtc;
    uint64_t ram_kib = m->config->ram_size / 1024;

    rtc_set_cmos(rtc, 0x15, 640 & 0xff); /* base memory, KiB */
    rtc_set_cmos(rtc, 0x16, 640 >> 8);
    uint64_t extended_kib = ram_kib > 1024 ? ram_kib - 1024 : 0;
    if (extended_kib > 0xffff)
        extended_kib = 0xffff;
    rtc_set_cmos(rtc, 0x17, extended_kib & 0xff); /* KiB above 1 MiB */
    rtc_set_cmos(rtc, 0x18, extended_kib >> 8);
    rtc_set_cmos(rtc, 0x30, extended_kib & 0xff);
    rtc_set_cmos(rtc, 0x31, extended_kib >> 8);
    uint64_t high_blocks = m->config->ram_size > 16 * 1024 * 1024
                               ? (m->config->ram_size - 16 * 1024 * 1024) / 65536
                               : 0;
    if (high_blocks > 0xffff)
        high_blocks = 0xffff;
    rtc_set_cmos(rtc, 0x34, high_blocks & 0xff); /* 64 KiB blocks above 16 MiB */
    rtc_set_cmos(rtc, 0x35, high_blocks >> 8);
    /* RAM is at most 3 GiB, all below the PCI hole: none above 4 GiB. */
    rtc_set_cmos(rtc, 0x5b, 0);
    rtc_set_cmos(rtc, 0x5c, 0);
    rtc_set_cmos(rtc, 0x5d, 0);
    rtc_set_cmos(rtc, 0x5f, 0); /* processors minus one */

    unsigned floppies = 0, disks = 0;
    for (unsigned i = 0; i < m->config->nr_drives; i++) {
        if (m->config->drives[i].kind == DRIVE_FLOPPY)
            floppies++;
        else if (m->config->drives[i].kind == DRIVE_DISK)
            disks++;
    }
    /* Floppy drive types, A in the high nibble: 4 is a 1.44 MB drive. */
    rtc_set_cmos(rtc, 0x10, (floppies > 0 ? 0x40 : 0) | (floppies > 1 ? 0x04 : 0));
    uint8_t equipment = 0x02 | 0x04; /* maths coprocessor, PS/2 mouse */
    if (floppies > 0)
        equipment |= 0x01 | (floppies > 1 ? 0x40 : 0);
    rtc_set_cmos(rtc, 0x14, equipment);
    /* Hard disks 0 and 1 present, as extended types (bytes 0x19/0x1a). */
    rtc_set_cmos(rtc, 0x12, (disks > 0 ? 0xf0 : 0) | (disks > 1 ? 0x0f : 0));
    rtc_set_cmos(rtc, 0x19, disks > 0 ? 47 : 0);
    rtc_set_cmos(rtc, 0x1a, disks > 1 ? 47 : 0);

    const char *order = m->config->boot_order ? m->config->boot_order : "cad";
    uint8_t boot[3] = {0, 0, 0};
    for (unsigned i = 0, n = 0; order[i] && n < 3; i++) {
        uint8_t code = cmos_boot_device(order[i]);
        if (code)
            boot[n++] = code;
    }
    rtc_set_cmos(rtc, 0x3d, (uint8_t)(boot[1] << 4 | boot[0]));
    /* Bit 0 clear: check the floppy boot signature. */
    rtc_set_cmos(rtc, 0x38, (uint8_t)(boot[2] << 4));
    rtc_set_cmos(rtc, 0x0f, 0); /* shutdown status: normal power-on */
}

/* The chipset devices of a PC, wired through the PIC's input lines. */
static void machine_create_chipset(struct machine *m)
{
    m->cpu_intr = (struct irq_line){.handler = machine_cpu_intr_changed, .opaque = m, .n = 0};
    m->pic = pic_create(&m->io, &m->cpu_intr);
    machine_add_device(m, "pic", m->pic, &pic_vmstate, pic_reset);

    m->pit = pit_create(&m->io, &m->clock, pic_irq_line(m->pic, 0));
    machine_add_device(m, "pit", m->pit, &pit_vmstate, pit_reset);
    machine_set_post_load(m, m->pit, pit_post_load);

    int64_t now_seconds = g_get_real_time() / G_USEC_PER_SEC;
    m->rtc = rtc_create(&m->io, &m->clock, pic_irq_line(m->pic, 8), now_seconds);
    machine_add_device(m, "rtc", m->rtc, &rtc_vmstate, rtc_reset);
    machine_set_post_load(m, m->rtc, rtc_post_load);
    machine_fill_cmos(m);

    m->dma = isa_dma_create(&m->io, &m->mem, &m->clock);
    machine_add_device(m, "dma", m->dma, &isa_dma_vmstate, isa_dma_reset);
    machine_set_post_load(m, m->dma, isa_dma_post_load);

    static const uint16_t com_base[4] = {SERIAL_COM1_BASE, SERIAL_COM2_BASE, SERIAL_COM3_BASE,
                                         SERIAL_COM4_BASE};
    static const int com_irq[4] = {4, 3, 4, 3};
    static const char *const com_name[4] = {"com1", "com2", "com3", "com4"};
    for (int i = 0; i < 4; i++) {
        m->serial[i] =
            serial_create(&m->io, com_base[i], &m->clock, pic_irq_line(m->pic, com_irq[i]),
                          i == 0 ? m->config->serial_out : NULL);
        machine_add_device(m, com_name[i], m->serial[i], &serial_vmstate, serial_reset);
        machine_set_post_load(m, m->serial[i], serial_post_load);
    }

    struct port92_outputs port92_outputs = {
        .set_a20 = machine_port92_set_a20, .reset = machine_port92_reset, .opaque = m};
    m->port92 = port92_create(&m->io, &port92_outputs);
    machine_add_device(m, "port92", m->port92, &port92_vmstate, port92_reset);
}

struct machine *machine_create(struct machine_config *config, GError **error)
{
    struct machine *m = g_new0(struct machine, 1);
    m->config = config;
    m->devices = g_array_new(FALSE, TRUE, sizeof(struct machine_device));
    m->memory_blocks = g_array_new(FALSE, TRUE, sizeof(struct machine_memory_block));
    m->work = g_async_queue_new();
    g_mutex_init(&m->wait_lock);
    g_cond_init(&m->wait_cond);
    ioport_bus_init(&m->io);
    vclock_init(&m->clock);

    if (config->ram_size < MACHINE_RAM_MIN || config->ram_size > MACHINE_RAM_MAX) {
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
    machine_create_chipset(m);
    create_pci_chipset(m);
    m->audio = audio_create(&m->clock, config->audio_output ? config->audio_output : "none",
                            config->name ? config->name : "Vivarium", error);
    if (!m->audio)
        goto fail;
    m->pcspk = pcspk_create(m->pit, &m->clock, m->audio);
    vtimer_init(&m->audio_timer, mix_audio, m);

    m->ide = ide_create(m, pic_irq_line(m->pic, 14), pic_irq_line(m->pic, 15));
    m->ide_pci = ide_pci_create(m->pci, m->ide, error);
    if (!m->ide_pci)
        goto fail;
    machine_add_device(m, "ide-pci", m->ide_pci, &ide_pci_vmstate, ide_pci_reset);
    machine_set_post_load(m, m->ide_pci, ide_pci_post_load);
    m->fdc = fdc_create(&m->io, pic_irq_line(m->pic, 6), m->dma);
    machine_add_device(m, "fdc", m->fdc, &fdc_vmstate, fdc_reset);
    if (!attach_drives(m, error))
        goto fail;
    m->cpu.intr_ack = pic_intr_ack;
    m->cpu.intr_opaque = m->pic;
    m->cpu.backend->set_irq(&m->cpu, pic_intr_pending(m->pic));

    m->display = display_new();
    m->vga = m->display ? vga_create(&m->mem, &m->io, &m->clock, m->display) : NULL;
    if (!m->vga) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, "cannot allocate video memory");
        goto fail;
    }
    machine_add_device(m, "vga", m->vga, &vga_vmstate, vga_reset);
    machine_set_post_load(m, m->vga, vga_post_load);
    if (config->vgabios_path && !vga_load_rom(m->vga, config->vgabios_path, error))
        goto fail;
    /* Named after its layout (engine/devices/vga_internal.h), which changed
     * once: a snapshot holding the older "vga.vram" is refused, not shown
     * scrambled. */
    machine_add_memory_block(m, "vga.planes", vga_vram(m->vga), VGA_VRAM_SIZE);
    size_t vga_rom_size;
    uint8_t *vga_rom = vga_rom_shadow(m->vga, &vga_rom_size);
    if (vga_rom)
        machine_add_memory_block(m, "vga.rom", vga_rom, vga_rom_size);
    m->vga_pci = vga_pci_create(m->pci, m->vga, error);
    if (!m->vga_pci)
        goto fail;
    machine_add_device(m, "vga-pci", m->vga_pci, &vga_pci_vmstate, vga_pci_reset);
    machine_set_post_load(m, m->vga_pci, vga_pci_post_load);

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
    for (int i = 0; i < 3; i++)
        g_free(m->media[i]);
    pcspk_destroy(m->pcspk);
    audio_destroy(m->audio);
    vga_pci_destroy(m->vga_pci);
    ide_pci_destroy(m->ide_pci);
    ide_destroy(m->ide);
    fdc_destroy(m->fdc);
    i8042_destroy(m->i8042);
    fw_cfg_destroy(m->fw_cfg);
    piix3_destroy(m->piix3);
    i440fx_destroy(m->i440fx);
    pci_bus_destroy(m->pci);
    vga_destroy(m->vga);
    display_free(m->display);
    port92_destroy(m->port92);
    for (int i = 0; i < 4; i++)
        serial_destroy(m->serial[i]);
    isa_dma_destroy(m->dma);
    rtc_destroy(m->rtc);
    pit_destroy(m->pit);
    pic_destroy(m->pic);
    debugcon_destroy(m->debugcon);
    debugcon_destroy(m->firmware_log);
    debug_exit_destroy(m->debug_exit);
    memory_destroy(&m->mem);
    if (m->bios_image)
        munmap(m->bios_image, m->bios_size);
    g_array_free(m->devices, TRUE);
    g_array_free(m->memory_blocks, TRUE);
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

void machine_add_memory_block(struct machine *m, const char *name, void *host, size_t size)
{
    struct machine_memory_block block = {.name = name, .host = host, .size = size};
    g_array_append_val(m->memory_blocks, block);
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
    if (state == MACHINE_RUNNING && audio_has_output(m->audio) && !m->audio_timer.armed)
        vtimer_arm(&m->clock, &m->audio_timer, vclock_now(&m->clock));
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

void machine_work_quit(struct machine *m, void *data)
{
    (void)data;
    machine_power_off(m);
    machine_request_exit(m, MACHINE_EXIT_POWER_OFF);
}

void machine_request_reset(struct machine *m)
{
    m->reset_requested = true;
    m->cpu.stop_requested = 1;
}

void machine_key_event(struct machine *m, unsigned qnum, bool down)
{
    if (m->input.key)
        m->input.key(m->input.opaque, qnum, down);
}

void machine_pointer_event(struct machine *m, int dx, int dy, int dz, unsigned buttons)
{
    if (m->input.pointer)
        m->input.pointer(m->input.opaque, dx, dy, dz, buttons);
}

struct input_event {
    bool is_key;
    unsigned qnum;
    bool down;
    int dx, dy, dz;
    unsigned buttons;
};

static void deliver_input_event(struct machine *m, void *data)
{
    struct input_event *event = data;
    if (event->is_key)
        machine_key_event(m, event->qnum, event->down);
    else
        machine_pointer_event(m, event->dx, event->dy, event->dz, event->buttons);
    g_free(event);
}

void machine_post_key_event(struct machine *m, unsigned qnum, bool down)
{
    struct input_event *event = g_new0(struct input_event, 1);
    event->is_key = true;
    event->qnum = qnum;
    event->down = down;
    machine_post(m, deliver_input_event, event);
}

void machine_post_pointer_event(struct machine *m, int dx, int dy, int dz, unsigned buttons)
{
    struct input_event *event = g_new0(struct input_event, 1);
    event->dx = dx;
    event->dy = dy;
    event->dz = dz;
    event->buttons = buttons;
    machine_post(m, deliver_input_event, event);
}

static int media_index(const char *drive)
{
    static const char *const names[] = {"fda", "fdb", "cdrom"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(drive, names[i]) == 0)
            return i;
    }
    return -1;
}

const char *machine_media_path(struct machine *m, const char *drive)
{
    int i = media_index(drive);
    if (i < 0 || !m->has_drive[i])
        return NULL;
    return m->media[i] ? m->media[i] : "";
}

bool machine_change_media(struct machine *m, const char *drive, const char *path, GError **error)
{
    int i = media_index(drive);
    if (i < 0 || !m->has_drive[i]) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "This machine has no drive %s.",
                    drive);
        return false;
    }
    struct block_device *bd = NULL;
    if (path) {
        /* Floppies are written to when they can be, discs never. */
        bd = block_open(path, i == MEDIA_CDROM, NULL);
        if (!bd)
            bd = block_open(path, true, error);
        if (!bd)
            return false;
    }
    if (!machine_insert_media(m, drive, path, bd, false, error)) {
        block_close(bd);
        return false;
    }
    return true;
}

bool machine_insert_media(struct machine *m, const char *drive, const char *path,
                          struct block_device *bd, bool force, GError **error)
{
    int i = media_index(drive);
    if (i < 0 || !m->has_drive[i]) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "This machine has no drive %s.",
                    drive);
        return false;
    }
    bool ok;
    if (i == MEDIA_CDROM) {
        ok = ide_change_media(m->ide, CDROM_IDE_UNIT, bd, force);
        if (!ok)
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                        "The guest has locked the CD-ROM drive's tray.");
    } else {
        ok = fdc_insert(m->fdc, (unsigned)i, bd, error);
    }
    if (!ok)
        return false;
    g_free(m->media[i]);
    m->media[i] = g_strdup(path);
    return true;
}

struct block_device *machine_floppy_device(struct machine *m, const char *drive)
{
    int i = media_index(drive);
    if (i < 0 || i == MEDIA_CDROM || !m->has_drive[i])
        return NULL;
    return fdc_disk(m->fdc, (unsigned)i);
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
