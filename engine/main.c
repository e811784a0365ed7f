/* vivarium-engine: command line → machine config → run.
 *
 * The vCPU thread runs the machine; the main thread runs the GLib main loop,
 * which carries timeouts now and the D-Bus, VNC and SDL front ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "machine.h"

struct engine_options {
    gint memory_mib;
    gchar *accel;
    gchar *bios;
    gchar *kernel;
    gchar *initrd;
    gchar *append;
    gboolean headless;
    gchar *serial;
    gchar *debugcon;
    gchar *firmware_log;
    gboolean no_reboot;
    gboolean trace;
    gint timeout_seconds;
    gboolean dump_state;
};

struct engine {
    struct machine *machine;
    GMainLoop *loop;
    int status;
};

static FILE *open_output(const char *spec, FILE *stdio_stream, GError **error)
{
    if (!spec || strcmp(spec, "none") == 0)
        return NULL;
    if (strcmp(spec, "stdio") == 0)
        return stdio_stream;
    FILE *f = fopen(spec, "w");
    if (!f)
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", spec,
                    g_strerror(errno));
    return f;
}

static gboolean quit_main_loop_cb(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
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

int main(int argc, char **argv)
{
    struct engine_options opt = {
        .memory_mib = 128,
        .serial = NULL,
        .debugcon = NULL,
    };
    GOptionEntry entries[] = {
        {"memory", 'm', 0, G_OPTION_ARG_INT, &opt.memory_mib, "Guest RAM in MiB (default 128)",
         "MIB"},
        {"accel", 0, 0, G_OPTION_ARG_STRING, &opt.accel, "CPU backend: auto, kvm, dbt or interp", "NAME"},
        {"bios", 0, 0, G_OPTION_ARG_FILENAME, &opt.bios,
         "Firmware image (default: SeaBIOS from /usr/share/seabios)", "FILE"},
        {"kernel", 0, 0, G_OPTION_ARG_FILENAME, &opt.kernel,
         "Boot a multiboot kernel or Linux bzImage directly, with no firmware", "FILE"},
        {"initrd", 0, 0, G_OPTION_ARG_FILENAME, &opt.initrd, "Initial ramdisk for --kernel",
         "FILE"},
        {"append", 0, 0, G_OPTION_ARG_STRING, &opt.append, "Kernel command line for --kernel",
         "CMDLINE"},
        {"headless", 0, 0, G_OPTION_ARG_NONE, &opt.headless,
         "No display; serial port on standard output", NULL},
        {"serial", 0, 0, G_OPTION_ARG_STRING, &opt.serial,
         "COM1 output: stdio, none or a file (default stdio when headless)", "WHERE"},
        {"debugcon", 0, 0, G_OPTION_ARG_STRING, &opt.debugcon,
         "Port 0xe9 output: stdio, none or a file (default stdio when headless)", "WHERE"},
        {"firmware-log", 0, 0, G_OPTION_ARG_STRING, &opt.firmware_log,
         "SeaBIOS's log (port 0x402): stdio, none or a file (default none)", "WHERE"},
        {"no-reboot", 0, 0, G_OPTION_ARG_NONE, &opt.no_reboot,
         "Exit instead of resetting on a triple fault or reset request", NULL},
        {"trace", 0, 0, G_OPTION_ARG_NONE, &opt.trace,
         "Print every executed instruction with its registers", NULL},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &opt.timeout_seconds,
         "Stop after this many seconds with exit status 6", "SECONDS"},
        {"dump-state", 0, 0, G_OPTION_ARG_NONE, &opt.dump_state,
         "Print every device's state when the run ends", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };

    GError *error = NULL;
    GOptionContext *context = g_option_context_new("- run one Vivarium virtual machine");
    g_option_context_add_main_entries(context, entries, NULL);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "vivarium-engine: %s\n", error->message);
        g_error_free(error);
        g_option_context_free(context);
        return MACHINE_EXIT_ERROR;
    }
    g_option_context_free(context);

    struct machine_config config = {0};
    config.ram_size = (uint64_t)(opt.memory_mib > 0 ? opt.memory_mib : 0) << 20;
    config.accel = opt.accel;
    config.bios_path = opt.bios ? opt.bios : g_strdup("/usr/share/seabios/bios.bin");
    config.kernel_path = opt.kernel;
    config.initrd_path = opt.initrd;
    config.append = opt.append;
    if ((opt.initrd || opt.append) && !opt.kernel) {
        fprintf(stderr, "vivarium-engine: --initrd and --append need --kernel\n");
        return MACHINE_EXIT_ERROR;
    }
    config.no_reboot = opt.no_reboot;
    config.trace = opt.trace;
    const char *default_out = opt.headless ? "stdio" : "none";
    config.serial_out = open_output(opt.serial ? opt.serial : default_out, stdout, &error);
    if (!error)
        config.debugcon_out =
            open_output(opt.debugcon ? opt.debugcon : default_out, stdout, &error);
    if (!error)
        config.firmware_log = open_output(opt.firmware_log, stdout, &error);
    if (error) {
        fprintf(stderr, "vivarium-engine: %s\n", error->message);
        return MACHINE_EXIT_ERROR;
    }

    struct engine engine = {0};
    engine.machine = machine_create(&config, &error);
    if (!engine.machine) {
        fprintf(stderr, "vivarium-engine: %s\n", error->message);
        g_error_free(error);
        return MACHINE_EXIT_ERROR;
    }

    engine.loop = g_main_loop_new(NULL, FALSE);
    if (opt.timeout_seconds > 0)
        g_timeout_add_seconds((guint)opt.timeout_seconds, timeout_cb, &engine);
    GThread *vcpu = g_thread_new("vcpu", vcpu_thread, &engine);
    g_main_loop_run(engine.loop);
    g_thread_join(vcpu);

    if (opt.dump_state)
        machine_dump_state(engine.machine, stderr);
    machine_destroy(engine.machine);
    g_main_loop_unref(engine.loop);
    fflush(stdout);
    return engine.status;
}
