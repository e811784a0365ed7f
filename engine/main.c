/* vivarium-engine: command line → machine config → run.
 *
 * The vCPU thread runs the machine; the main thread runs the GLib main loop,
 * which carries timeouts now and the D-Bus, VNC and SDL front ends.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "display/framebuffer.h"
#include "display/sdl.h"
#include "display/vnc.h"
#include "machine.h"
#include "monitor.h"
#include "serial_input.h"
#include "service.h"
#include "snapshot_store.h"
#include "viv-protocol.h"

struct engine_options {
    gchar *memory;
    uint64_t ram_size; /* --memory, parsed */
    gchar *accel;
    gchar *bios;
    gchar *kernel;
    gchar *initrd;
    gchar *append;
    gchar *vgabios;
    gchar *screenshot;
    gboolean headless;
    gchar *display;
    gboolean integer_scaling;
    gchar *vnc;
    gchar *vnc_password_file;
    gchar *audio;
    gchar *boot;
    gchar *name;
    gint dbus_fd;
    gchar *monitor;
    gchar *snapshot_dir;
    gchar *load_snapshot;
    gchar *list_snapshots;
    gboolean no_sound;
    gchar *serial;
    gchar *debugcon;
    gchar *firmware_log;
    gboolean no_reboot;
    gboolean trace;
    gint timeout_seconds;
    gboolean dump_state;
    gchar *hd[4];
    gchar *cdrom;
    gchar *fd[2];
};

struct engine {
    struct machine *machine;
    struct snapshot_store *snapshots;
    GMainLoop *loop;
    int status;
    gchar *screenshot_path;            /* --screenshot, also written on SIGUSR1 */
    struct serial_input *serial_input; /* COM1's input, or NULL */
};

/* An output option's value: stdio, none or file:PATH. A bare path with a
 * slash in it, the older form, still means a file; anything else (a word, a
 * kind of output this engine does not have) is refused. */
static bool output_spec_valid(const char *spec)
{
    return strcmp(spec, "stdio") == 0 || strcmp(spec, "none") == 0 ||
           (g_str_has_prefix(spec, "file:") && spec[5]) ||
           (!g_str_has_prefix(spec, "file:") && strchr(spec, '/'));
}

static const char *output_spec_path(const char *spec)
{
    return g_str_has_prefix(spec, "file:") ? spec + strlen("file:") : spec;
}

static FILE *open_output(const char *option, const char *spec, FILE *stdio_stream, GError **error)
{
    if (!spec || strcmp(spec, "none") == 0)
        return NULL;
    if (strcmp(spec, "stdio") == 0)
        return stdio_stream;
    FILE *f = fopen(output_spec_path(spec), "w");
    if (!f)
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s %s: %s", option, spec,
                    g_strerror(errno));
    return f;
}

/* --memory SIZE: a whole number of MiB, or a size with a K, M, G or T
 * suffix (powers of 1024) that comes to whole MiB. */
static bool parse_memory_size(const char *text, uint64_t *bytes)
{
    char *end;
    errno = 0;
    guint64 value = g_ascii_strtoull(text, &end, 10);
    if (end == text || errno != 0 || !g_ascii_isdigit(text[0]))
        return false;
    unsigned shift = 20;
    switch (g_ascii_toupper(*end)) {
    case 0:
        break;
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    default:
        return false;
    }
    if (*end && end[1] && g_ascii_strcasecmp(end + 1, "B") != 0 &&
        g_ascii_strcasecmp(end + 1, "iB") != 0)
        return false;
    if (value > (UINT64_MAX >> shift))
        value = UINT64_MAX >> shift; /* far beyond any limit: refused below */
    *bytes = value << shift;
    return true;
}

/* A file the machine will open for reading must be there now, so that a
 * typo is refused before anything starts. */
static bool check_input_file(const char *option, const char *path, GError **error)
{
    if (!path || access(path, R_OK) == 0)
        return true;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s %s: %s", option, path,
                g_strerror(errno));
    return false;
}

/* Refuses impossible option values with one line, before the machine is
 * built; what only the machine can judge it refuses itself. */
static bool validate_options(struct engine_options *opt, GError **error)
{
    if (!opt->memory)
        opt->memory = g_strdup("128");
    if (!parse_memory_size(opt->memory, &opt->ram_size) || opt->ram_size < MACHINE_RAM_MIN ||
        opt->ram_size > MACHINE_RAM_MAX || opt->ram_size % MACHINE_RAM_MIN != 0) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--memory %s: give whole MiB from %llu to %llu (e.g. 128, 512M, 2G)",
                    opt->memory, MACHINE_RAM_MIN >> 20, MACHINE_RAM_MAX >> 20);
        return false;
    }
    static const char *const accels[] = {"auto", "kvm", "dbt", "interp"};
    bool accel_known = !opt->accel;
    for (size_t i = 0; i < G_N_ELEMENTS(accels) && !accel_known; i++)
        accel_known = strcmp(opt->accel, accels[i]) == 0;
    if (!accel_known) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--accel %s: use auto, kvm, dbt or interp", opt->accel);
        return false;
    }
    if (opt->boot && (!*opt->boot || strspn(opt->boot, "abcd") != strlen(opt->boot))) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--boot %s: use the drive letters a, b (floppies), c (hard disk) and d "
                    "(CD-ROM)",
                    opt->boot);
        return false;
    }
    if (opt->timeout_seconds < 0) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--timeout %d: give a number of seconds (0: no limit)", opt->timeout_seconds);
        return false;
    }
    const struct {
        const char *option, *value;
    } outputs[] = {
        {"--serial", opt->serial},
        {"--debugcon", opt->debugcon},
        {"--firmware-log", opt->firmware_log},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(outputs); i++) {
        if (outputs[i].value && !output_spec_valid(outputs[i].value)) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "%s %s: use stdio, none or file:PATH", outputs[i].option, outputs[i].value);
            return false;
        }
    }
    if (opt->monitor && strcmp(opt->monitor, "stdio") != 0) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--monitor %s: only stdio is supported", opt->monitor);
        return false;
    }
    const struct {
        const char *option, *path;
    } inputs[] = {
        {"--bios", opt->bios},     {"--kernel", opt->kernel},
        {"--initrd", opt->initrd}, {"--vgabios", opt->vgabios},
        {"--hda", opt->hd[0]},     {"--hdb", opt->hd[1]},
        {"--hdc", opt->hd[2]},     {"--hdd", opt->hd[3]},
        {"--cdrom", opt->cdrom},   {"--fda", opt->fd[0]},
        {"--fdb", opt->fd[1]},     {"--vnc-password-file", opt->vnc_password_file},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(inputs); i++) {
        if (!check_input_file(inputs[i].option, inputs[i].path, error))
            return false;
    }
    return true;
}

static gboolean quit_main_loop_cb(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

/* The screen's consumers in this process: an SDL window, a VNC server. */
struct front_ends {
    struct sdl_window *sdl;
    struct vnc_server *vnc;
    struct service *service;
    struct monitor *monitor;
};

static gchar *read_password_file(const char *path, GError **error)
{
    gchar *contents;
    if (!g_file_get_contents(path, &contents, NULL, error))
        return NULL;
    contents[strcspn(contents, "\r\n")] = 0;
    return contents;
}

static bool start_front_ends(struct front_ends *front, struct machine *m,
                             struct snapshot_store *snapshots, const struct engine_options *opt,
                             GError **error)
{
    /* Under the app (--dbus-fd) the app shows the screen. */
    const char *display = opt->display                         ? opt->display
                          : opt->headless || opt->dbus_fd >= 0 ? "none"
                                                               : "sdl";
    if (strcmp(display, "sdl") == 0) {
        front->sdl = sdl_window_create(m, m->display, opt->integer_scaling, error);
        if (!front->sdl)
            return false;
    } else if (strcmp(display, "none") != 0) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--display %s: use sdl or none", display);
        return false;
    }
    if (opt->dbus_fd >= 0) {
        front->service = service_create(m, opt->dbus_fd, snapshots, error);
        if (!front->service)
            return false;
    }
    if (opt->monitor) /* its value was checked with the other options */
        front->monitor = monitor_create(m, snapshots);
    if (opt->vnc) {
        gchar *password = NULL;
        if (opt->vnc_password_file &&
            !(password = read_password_file(opt->vnc_password_file, error)))
            return false;
        front->vnc = vnc_server_create(m, m->display, opt->vnc, password, error);
        g_free(password);
        if (!front->vnc)
            return false;
    }
    return true;
}

static void stop_front_ends(struct front_ends *front)
{
    monitor_destroy(front->monitor);
    service_destroy(front->service);
    vnc_server_destroy(front->vnc);
    sdl_window_destroy(front->sdl);
}

static gpointer vcpu_thread(gpointer data)
{
    struct engine *engine = data;
    engine->status = machine_run(engine->machine);
    /* Quit through the main context: a direct g_main_loop_quit() could come
     * before g_main_loop_run() has started and be lost. */
    g_idle_add(quit_main_loop_cb, engine->loop);
    return NULL;
}

static void exit_on_timeout(struct machine *m, void *data)
{
    (void)data;
    fprintf(stderr, "vivarium-engine: --timeout expired\n");
    machine_request_exit(m, MACHINE_EXIT_TIMEOUT);
}

static gboolean timeout_cb(gpointer data)
{
    struct engine *engine = data;
    machine_post(engine->machine, exit_on_timeout, NULL);
    return G_SOURCE_REMOVE;
}

/* SIGUSR1 asks for the --screenshot file now, without stopping the guest.
 * The picture is painted on the vCPU thread, which owns the display. */
static void write_screenshot(struct machine *m, void *data)
{
    const char *path = data;
    GError *error = NULL;
    display_update(m->display);
    if (!display_screenshot_png(m->display->fb, path, &error)) {
        fprintf(stderr, "vivarium-engine: %s\n", error->message);
        g_error_free(error);
    }
}

static gboolean screenshot_signal_cb(gpointer data)
{
    struct engine *engine = data;
    machine_post(engine->machine, write_screenshot, (void *)engine->screenshot_path);
    return G_SOURCE_CONTINUE;
}

static void drain_serial_input(struct machine *m, void *data)
{
    (void)m;
    serial_input_drain(data);
}

/* Queued serial input waits for the vCPU thread, which owns the UART. */
static void wake_serial_input(void *data)
{
    struct engine *engine = data;
    machine_post(engine->machine, drain_serial_input, engine->serial_input);
}

static gboolean interrupt_signal_cb(gpointer data)
{
    struct engine *engine = data;
    machine_post(engine->machine, machine_work_quit, NULL);
    return G_SOURCE_CONTINUE;
}

static void close_output(FILE *f)
{
    if (f && f != stdout && f != stderr)
        fclose(f);
}

static void free_options(struct engine_options *opt)
{
    gchar **strings[] = {&opt->memory,
                         &opt->accel,
                         &opt->bios,
                         &opt->kernel,
                         &opt->initrd,
                         &opt->append,
                         &opt->vgabios,
                         &opt->screenshot,
                         &opt->display,
                         &opt->vnc,
                         &opt->vnc_password_file,
                         &opt->audio,
                         &opt->boot,
                         &opt->name,
                         &opt->monitor,
                         &opt->snapshot_dir,
                         &opt->serial,
                         &opt->debugcon,
                         &opt->firmware_log,
                         &opt->cdrom,
                         &opt->hd[0],
                         &opt->hd[1],
                         &opt->hd[2],
                         &opt->hd[3],
                         &opt->fd[0],
                         &opt->fd[1],
                         &opt->load_snapshot,
                         &opt->list_snapshots};
    for (size_t i = 0; i < G_N_ELEMENTS(strings); i++)
        g_clear_pointer(strings[i], g_free);
}

/* The snapshot folder: --snapshot-dir, or under the app a folder per VM
 * name in the user's data folder. Its disk layers decide which images the
 * disks open, so it comes before the machine. */
static bool open_snapshot_store(struct engine_options *opt, struct machine_config *config,
                                struct snapshot_store **store)
{
    g_autofree gchar *dir = g_strdup(opt->snapshot_dir);
    if (!dir && opt->dbus_fd >= 0)
        dir = g_build_filename(g_get_user_data_dir(), "vivarium", "snapshots", config->name, NULL);
    if (opt->load_snapshot && !dir) {
        fprintf(stderr, "vivarium-engine: --load-snapshot needs --snapshot-dir\n");
        return false;
    }
    if (opt->load_snapshot && !viv_dbus_snapshot_name_valid(opt->load_snapshot)) {
        fprintf(stderr,
                "vivarium-engine: --load-snapshot %s: not a snapshot name (1 to 64 of A-Z a-z "
                "0-9 space - _ ., not starting with a dot)\n",
                opt->load_snapshot);
        return false;
    }
    *store = NULL;
    if (!dir)
        return true;
    GError *error = NULL;
    *store = snapshot_store_open(dir, &error);
    if (!*store || !snapshot_store_prepare(*store, config, &error)) {
        fprintf(stderr, "vivarium-engine: %s\n", error->message);
        g_error_free(error);
        snapshot_store_free(*store);
        *store = NULL;
        return false;
    }
    return true;
}

/* --list-snapshots DIR: what a snapshot folder holds, with the VM off. */
static int list_snapshots(const char *dir)
{
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        fprintf(stderr, "vivarium-engine: --list-snapshots %s: no such folder\n", dir);
        return MACHINE_EXIT_USAGE;
    }
    GPtrArray *entries = snapshot_store_list(dir);
    for (guint i = 0; i < entries->len; i++) {
        g_autofree char *line = snapshot_entry_describe(g_ptr_array_index(entries, i));
        printf("%s\n", line);
    }
    g_ptr_array_unref(entries);
    return MACHINE_EXIT_POWER_OFF;
}

/* Builds the machine from the options, runs it to the end, and returns the
 * process's exit status. */
static int run_engine(struct engine_options *opt, struct machine_config *config)
{
    GError *error = NULL;
    /* Defaults live in the options, so that freeing the options frees all. */
    if (!opt->bios)
        opt->bios = g_strdup("/usr/share/seabios/bios.bin");
    if (!validate_options(opt, &error)) {
        fprintf(stderr, "vivarium-engine: %s\n", error->message);
        g_error_free(error);
        return MACHINE_EXIT_USAGE;
    }
    config->ram_size = opt->ram_size;
    config->accel = opt->accel;
    if (!opt->name)
        opt->name = g_strdup("Vivarium");
    if (opt->no_sound) {
        g_free(opt->audio);
        opt->audio = g_strdup("none");
    } else if (!opt->audio) {
        opt->audio = g_strdup(opt->headless ? "none" : "pulse");
    }
    config->bios_path = opt->bios;
    config->kernel_path = opt->kernel;
    config->initrd_path = opt->initrd;
    config->append = opt->append;
    if ((opt->initrd || opt->append) && !opt->kernel) {
        fprintf(stderr, "vivarium-engine: --initrd and --append need --kernel\n");
        return MACHINE_EXIT_USAGE;
    }
    const char *default_vgabios = "/usr/share/seabios/vgabios-stdvga.bin";
    if (opt->vgabios)
        config->vgabios_path = opt->vgabios;
    else if (g_file_test(default_vgabios, G_FILE_TEST_EXISTS))
        config->vgabios_path = opt->vgabios = g_strdup(default_vgabios);
    config->no_reboot = opt->no_reboot;
    config->trace = opt->trace;
    config->boot_order = opt->boot;
    config->name = opt->name;
    config->audio_output = opt->audio;
    config->start_stopped = opt->dbus_fd >= 0;
    for (unsigned i = 0; i < 4; i++) {
        if (opt->hd[i])
            config->drives[config->nr_drives++] =
                (struct drive_config){.kind = DRIVE_DISK, .path = opt->hd[i], .unit = i};
    }
    if (opt->cdrom) {
        if (opt->hd[2]) {
            fprintf(stderr, "vivarium-engine: --cdrom and --hdc both want the secondary master\n");
            return MACHINE_EXIT_USAGE;
        }
        config->drives[config->nr_drives++] =
            (struct drive_config){.kind = DRIVE_CDROM, .path = opt->cdrom, .unit = 2};
    }
    for (unsigned i = 0; i < 2; i++) {
        if (opt->fd[i])
            config->drives[config->nr_drives++] =
                (struct drive_config){.kind = DRIVE_FLOPPY, .path = opt->fd[i], .unit = i};
    }
    const char *default_out = opt->headless ? "stdio" : "none";
    const char *serial = opt->serial ? opt->serial : default_out;
    config->serial_out = open_output("--serial", serial, stdout, &error);
    if (!error)
        config->debugcon_out =
            open_output("--debugcon", opt->debugcon ? opt->debugcon : default_out, stdout, &error);
    if (!error)
        config->firmware_log = open_output("--firmware-log", opt->firmware_log, stdout, &error);
    if (error) {
        fprintf(stderr, "vivarium-engine: %s\n", error->message);
        return MACHINE_EXIT_USAGE;
    }

    struct engine engine = {0};
    if (!open_snapshot_store(opt, config, &engine.snapshots))
        return MACHINE_EXIT_USAGE;
    engine.machine = machine_create(config, &error);
    if (!engine.machine) {
        fprintf(stderr, "vivarium-engine: %s\n", error->message);
        g_error_free(error);
        snapshot_store_free(engine.snapshots);
        return MACHINE_EXIT_USAGE;
    }

    struct front_ends front = {0};
    /* The vCPU thread has not started: this thread may restore the machine. */
    if (!start_front_ends(&front, engine.machine, engine.snapshots, opt, &error) ||
        (opt->load_snapshot &&
         !snapshot_store_load(engine.snapshots, engine.machine, opt->load_snapshot, &error))) {
        fprintf(stderr, "vivarium-engine: %s\n", error->message);
        g_error_free(error);
        stop_front_ends(&front);
        machine_destroy(engine.machine);
        snapshot_store_free(engine.snapshots);
        return MACHINE_EXIT_USAGE;
    }

    /* COM1's input: standard input with --serial stdio, unless the
     * monitor owns it; then the monitor's serial command feeds COM1. */
    struct serial_input *serial_in = NULL;
    guint interrupt_signal = 0;
    if (strcmp(serial, "none") != 0 && (strcmp(serial, "stdio") == 0 || front.monitor)) {
        serial_in = serial_input_create(engine.machine->serial[0], wake_serial_input, &engine);
        engine.serial_input = serial_in;
        if (front.monitor) {
            monitor_set_serial_input(front.monitor, serial_in);
        } else if (serial_input_watch_fd(serial_in, STDIN_FILENO)) {
            /* The terminal is in raw mode: Ctrl-C must end the run through
             * the normal path, which restores it. */
            interrupt_signal = g_unix_signal_add(SIGINT, interrupt_signal_cb, &engine);
        }
    }

    engine.loop = g_main_loop_new(NULL, FALSE);
    if (opt->timeout_seconds > 0)
        g_timeout_add_seconds((guint)opt->timeout_seconds, timeout_cb, &engine);
    guint screenshot_signal = 0;
    if (opt->screenshot) {
        engine.screenshot_path = opt->screenshot;
        screenshot_signal = g_unix_signal_add(SIGUSR1, screenshot_signal_cb, &engine);
    }
    GThread *vcpu = g_thread_new("vcpu", vcpu_thread, &engine);
    g_main_loop_run(engine.loop);
    g_thread_join(vcpu);
    g_clear_handle_id(&screenshot_signal, g_source_remove);
    g_clear_handle_id(&interrupt_signal, g_source_remove);
    stop_front_ends(&front);
    serial_input_destroy(serial_in);

    if (opt->dump_state)
        machine_dump_state(engine.machine, stderr);
    if (opt->screenshot) {
        /* The vCPU thread has ended, so this thread may paint one last
         * frame of what the guest left on the screen. */
        display_update(engine.machine->display);
        if (!display_screenshot_png(engine.machine->display->fb, opt->screenshot, &error)) {
            fprintf(stderr, "vivarium-engine: %s\n", error->message);
            g_clear_error(&error);
        }
    }
    machine_destroy(engine.machine);
    snapshot_store_free(engine.snapshots);
    g_main_loop_unref(engine.loop);
    fflush(stdout);
    return engine.status;
}

int main(int argc, char **argv)
{
    struct engine_options opt = {
        .dbus_fd = -1,
        .serial = NULL,
        .debugcon = NULL,
    };
    GOptionEntry entries[] = {
        {"memory", 'm', 0, G_OPTION_ARG_STRING, &opt.memory,
         "Guest RAM: MiB, or with a K, M, G suffix (default 128, at most 3G)", "SIZE"},
        {"accel", 0, 0, G_OPTION_ARG_STRING, &opt.accel, "CPU backend: auto, kvm, dbt or interp",
         "NAME"},
        {"bios", 0, 0, G_OPTION_ARG_FILENAME, &opt.bios,
         "Firmware image (default: SeaBIOS from /usr/share/seabios)", "FILE"},
        {"kernel", 0, 0, G_OPTION_ARG_FILENAME, &opt.kernel,
         "Boot a multiboot kernel or Linux bzImage directly, with no firmware", "FILE"},
        {"initrd", 0, 0, G_OPTION_ARG_FILENAME, &opt.initrd, "Initial ramdisk for --kernel",
         "FILE"},
        {"append", 0, 0, G_OPTION_ARG_STRING, &opt.append, "Kernel command line for --kernel",
         "CMDLINE"},
        {"vgabios", 0, 0, G_OPTION_ARG_FILENAME, &opt.vgabios,
         "VGA BIOS image mapped at 0xc0000 (default: SeaBIOS's vgabios-stdvga.bin if "
         "installed)",
         "FILE"},
        {"screenshot", 0, 0, G_OPTION_ARG_FILENAME, &opt.screenshot,
         "Write the screen as PNG to FILE when the run ends and on SIGUSR1", "FILE"},
        {"headless", 0, 0, G_OPTION_ARG_NONE, &opt.headless,
         "No display; serial port on standard output", NULL},
        {"display", 0, 0, G_OPTION_ARG_STRING, &opt.display,
         "Where the screen goes: sdl (a window, the default) or none", "KIND"},
        {"integer-scaling", 0, 0, G_OPTION_ARG_NONE, &opt.integer_scaling,
         "Scale the SDL window's picture by whole multiples only", NULL},
        {"vnc", 0, 0, G_OPTION_ARG_STRING, &opt.vnc,
         "Serve the screen over VNC at HOST:PORT (HOST defaults to 127.0.0.1)", "HOST:PORT"},
        {"vnc-password-file", 0, 0, G_OPTION_ARG_FILENAME, &opt.vnc_password_file,
         "Require the VNC password in FILE (its first line)", "FILE"},
        {"audio", 0, 0, G_OPTION_ARG_STRING, &opt.audio,
         "Sound output: pulse or none (default pulse, none when headless)", "KIND"},
        {"boot", 0, 0, G_OPTION_ARG_STRING, &opt.boot,
         "Boot order for the firmware: a floppy, c hard disk, d CD-ROM (default cad)", "ORDER"},
        {"monitor", 0, 0, G_OPTION_ARG_STRING, &opt.monitor,
         "Read control commands (type, key, serial, text, screendump, info, quit) from stdio; "
         "COM1's input then comes from the serial command",
         "stdio"},
        {"no-sound", 0, 0, G_OPTION_ARG_NONE, &opt.no_sound, "The same as --audio none", NULL},
        {"dbus-fd", 0, 0, G_OPTION_ARG_INT, &opt.dbus_fd,
         "Serve the app's D-Bus interfaces on this connected socket; the machine waits, "
         "powered off, for Start",
         "FD"},
        {"snapshot-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt.snapshot_dir,
         "This VM's snapshot folder: snapshots, their disk layers (used by D-Bus and the "
         "monitor's savevm, loadvm, delvm, info snapshots)",
         "DIR"},
        {"load-snapshot", 0, 0, G_OPTION_ARG_STRING, &opt.load_snapshot,
         "Start from the snapshot NAME of --snapshot-dir", "NAME"},
        {"list-snapshots", 0, 0, G_OPTION_ARG_FILENAME, &opt.list_snapshots,
         "List the snapshots in DIR (name, date, size) and exit", "DIR"},
        {"name", 0, 0, G_OPTION_ARG_STRING, &opt.name,
         "The VM's name, for window titles and the sound stream", "NAME"},
        {"serial", 0, 0, G_OPTION_ARG_STRING, &opt.serial,
         "COM1: stdio (output to stdout, input from stdin), none, or file:PATH for its output "
         "(default stdio when headless)",
         "WHERE"},
        {"debugcon", 0, 0, G_OPTION_ARG_STRING, &opt.debugcon,
         "Port 0xe9 output: stdio, none or file:PATH (default stdio when headless)", "WHERE"},
        {"firmware-log", 0, 0, G_OPTION_ARG_STRING, &opt.firmware_log,
         "SeaBIOS's log (port 0x402): stdio, none or file:PATH (default none)", "WHERE"},
        {"no-reboot", 0, 0, G_OPTION_ARG_NONE, &opt.no_reboot,
         "Exit instead of resetting on a triple fault or reset request", NULL},
        {"trace", 0, 0, G_OPTION_ARG_NONE, &opt.trace,
         "Print every executed instruction with its registers", NULL},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &opt.timeout_seconds,
         "Stop after this many seconds with exit status 124", "SECONDS"},
        {"dump-state", 0, 0, G_OPTION_ARG_NONE, &opt.dump_state,
         "Print every device's state when the run ends", NULL},
        {"hda", 0, 0, G_OPTION_ARG_FILENAME, &opt.hd[0], "Primary master disk image", "FILE"},
        {"hdb", 0, 0, G_OPTION_ARG_FILENAME, &opt.hd[1], "Primary slave disk image", "FILE"},
        {"hdc", 0, 0, G_OPTION_ARG_FILENAME, &opt.hd[2], "Secondary master disk image", "FILE"},
        {"hdd", 0, 0, G_OPTION_ARG_FILENAME, &opt.hd[3], "Secondary slave disk image", "FILE"},
        {"cdrom", 0, 0, G_OPTION_ARG_FILENAME, &opt.cdrom,
         "CD-ROM image (ISO) on the secondary master", "FILE"},
        {"fda", 0, 0, G_OPTION_ARG_FILENAME, &opt.fd[0], "Floppy image in drive A:", "FILE"},
        {"fdb", 0, 0, G_OPTION_ARG_FILENAME, &opt.fd[1], "Floppy image in drive B:", "FILE"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };

    GError *error = NULL;
    GOptionContext *context = g_option_context_new("- run one Vivarium virtual machine");
    g_option_context_add_main_entries(context, entries, NULL);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "vivarium-engine: %s\n", error->message);
        g_error_free(error);
        g_option_context_free(context);
        return MACHINE_EXIT_USAGE;
    }
    g_option_context_free(context);
    if (argc > 1) {
        fprintf(stderr,
                "vivarium-engine: unexpected argument '%s' (images go with --hda, "
                "--cdrom, --fda...)\n",
                argv[1]);
        free_options(&opt);
        return MACHINE_EXIT_USAGE;
    }

    struct machine_config config = {0};
    int status =
        opt.list_snapshots ? list_snapshots(opt.list_snapshots) : run_engine(&opt, &config);
    close_output(config.serial_out);
    close_output(config.debugcon_out);
    close_output(config.firmware_log);
    free_options(&opt);
    return status;
}
