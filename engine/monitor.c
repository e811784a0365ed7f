/* --monitor stdio: a line-based control console on standard input, for
 * scripts and tests (in the spirit of QEMU's human monitor). Each command
 * answers with one line "ok" or "error: ...", after any output of its own.
 *
 *   text                 print the text on the guest's screen, between
 *                        "--- screen ---" and "--- end ---" lines
 *   type TEXT            type TEXT on the PS/2 keyboard (\n Enter, \t Tab,
 *                        \b Backspace, \e Escape, \\ a backslash)
 *   key COMBO            press and release keys together: ctrl-alt-delete
 *   serial TEXT          send TEXT to COM1's receiver, with the escapes of
 *                        type plus \r; standard input belongs to the
 *                        monitor, so this is how COM1 gets input here
 *   screendump FILE      write the screen as PNG
 *   info                 the run state, the CPU backend and the CPU's registers
 *   savevm NAME          take a snapshot named NAME (replacing one of that name)
 *   loadvm NAME          revert to the snapshot NAME; the machine goes on in
 *                        its run state
 *   delvm NAME           delete the snapshot NAME
 *   info snapshots       list the snapshots: name, date, size
 *   change DRIVE FILE    put the image FILE in removable drive fda, fdb or cdrom
 *   eject DRIVE          empty removable drive fda, fdb or cdrom
 *   quit                 power off and exit
 *
 * The snapshot commands need the engine's --snapshot-dir.
 *
 * Keys go out one at a time, 30 ms apart, as a fast typist would: the
 * keyboard controller's buffer is small, and guests poll it at timer rate.
 */
#include "monitor.h"

#include <stdio.h>
#include <string.h>

#include "devices/vga.h"
#include "display/framebuffer.h"
#include "display/keymap.h"
#include "machine.h"
#include "snapshot_store.h"
#include "serial_input.h"

#define MONITOR_KEY_INTERVAL_MS 30

struct key_stroke {
    unsigned qnum;
    bool down;
};

struct monitor {
    struct machine *machine;
    struct snapshot_store *snapshots; /* NULL without --snapshot-dir */
    GIOChannel *channel;
    guint watch;
    GArray *pending_keys; /* struct key_stroke, still to send */
    guint key_timer;
    bool busy;                   /* a command is still running (typing) */
    struct serial_input *serial; /* COM1's input, or NULL */
};

static void reply(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void reply(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    putchar('\n');
    fflush(stdout);
}

/* --- keys ----------------------------------------------------------------- */

static void queue_key(struct monitor *mon, unsigned qnum, bool down)
{
    struct key_stroke k = {qnum, down};
    g_array_append_val(mon->pending_keys, k);
}

/* Characters that need Shift on a US keyboard. */
static bool needs_shift(char c)
{
    return (c >= 'A' && c <= 'Z') || strchr("~!@#$%^&*()_+{}|:\"<>?", c) != NULL;
}

static bool queue_char(struct monitor *mon, char c)
{
    unsigned keysym;
    switch (c) {
    case '\n':
        keysym = 0xff0d;
        break;
    case '\t':
        keysym = 0xff09;
        break;
    case '\b':
        keysym = 0xff08;
        break;
    case 0x1b:
        keysym = 0xff1b;
        break;
    default:
        keysym = (unsigned char)c;
    }
    unsigned qnum = keymap_qnum_from_keysym(keysym);
    if (!qnum)
        return false;
    bool shift = needs_shift(c);
    if (shift)
        queue_key(mon, QNUM_LEFT_SHIFT, true);
    queue_key(mon, qnum, true);
    queue_key(mon, qnum, false);
    if (shift)
        queue_key(mon, QNUM_LEFT_SHIFT, false);
    return true;
}

static gboolean send_next_key(gpointer data)
{
    struct monitor *mon = data;
    if (mon->pending_keys->len == 0) {
        mon->key_timer = 0;
        mon->busy = false;
        reply("ok");
        return G_SOURCE_REMOVE;
    }
    struct key_stroke k = g_array_index(mon->pending_keys, struct key_stroke, 0);
    g_array_remove_index(mon->pending_keys, 0);
    machine_post_key_event(mon->machine, k.qnum, k.down);
    return G_SOURCE_CONTINUE;
}

static void start_typing(struct monitor *mon)
{
    mon->busy = true;
    mon->key_timer = g_timeout_add(MONITOR_KEY_INTERVAL_MS, send_next_key, mon);
}

static bool parse_type(struct monitor *mon, const char *text)
{
    for (const char *p = text; *p; p++) {
        char c = *p;
        if (c == '\\' && p[1]) {
            p++;
            c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'b' ? '\b' : *p == 'e' ? 0x1b : *p;
        }
        if (!queue_char(mon, c)) {
            g_array_set_size(mon->pending_keys, 0);
            reply("error: no key types '%c'", c);
            return false;
        }
    }
    return true;
}

/* The text of a serial command as bytes, its escapes resolved. */
static GByteArray *parse_serial_text(const char *text)
{
    GByteArray *bytes = g_byte_array_new();
    for (const char *p = text; *p; p++) {
        uint8_t c = (uint8_t)*p;
        if (*p == '\\' && p[1]) {
            p++;
            c = *p == 'n'   ? '\n'
                : *p == 'r' ? '\r'
                : *p == 't' ? '\t'
                : *p == 'b' ? '\b'
                : *p == 'e' ? 0x1b
                            : (uint8_t)*p;
        }
        g_byte_array_append(bytes, &c, 1);
    }
    return bytes;
}

static unsigned key_by_name(const char *name)
{
    static const struct {
        const char *name;
        unsigned qnum;
    } names[] = {
        {"ctrl", QNUM_LEFT_CTRL},
        {"alt", QNUM_LEFT_ALT},
        {"shift", QNUM_LEFT_SHIFT},
        {"delete", QNUM_DELETE},
        {"del", QNUM_DELETE},
        {"enter", 0x1c},
        {"esc", 0x01},
        {"tab", 0x0f},
        {"backspace", 0x0e},
        {"space", 0x39},
        {"up", 0xc8},
        {"down", 0xd0},
        {"left", 0xcb},
        {"right", 0xcd},
        {"home", 0xc7},
        {"end", 0xcf},
        {"pgup", 0xc9},
        {"pgdn", 0xd1},
        {"insert", 0xd2},
        {"f1", 0x3b},
        {"f2", 0x3c},
        {"f3", 0x3d},
        {"f4", 0x3e},
        {"f5", 0x3f},
        {"f6", 0x40},
        {"f7", 0x41},
        {"f8", 0x42},
        {"f9", 0x43},
        {"f10", 0x44},
        {"f11", 0x57},
        {"f12", 0x58},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (g_ascii_strcasecmp(names[i].name, name) == 0)
            return names[i].qnum;
    }
    if (strlen(name) == 1)
        return keymap_qnum_from_keysym((unsigned char)g_ascii_tolower(name[0]));
    return 0;
}

static bool parse_combo(struct monitor *mon, const char *combo)
{
    gchar **parts = g_strsplit(combo, "-", 0);
    unsigned codes[8];
    unsigned n = 0;
    bool ok = parts[0] != NULL;
    for (gchar **p = parts; *p && ok; p++) {
        unsigned qnum = key_by_name(*p);
        if (!qnum || n == G_N_ELEMENTS(codes)) {
            reply("error: unknown key '%s'", *p);
            ok = false;
            break;
        }
        codes[n++] = qnum;
    }
    g_strfreev(parts);
    if (!ok)
        return false;
    for (unsigned i = 0; i < n; i++)
        queue_key(mon, codes[i], true);
    for (unsigned i = n; i-- > 0;)
        queue_key(mon, codes[i], false);
    return true;
}

/* --- commands that need the vCPU thread ----------------------------------- */

static void print_text(struct machine *m, void *data)
{
    (void)data;
    GString *text = g_string_new(NULL);
    if (vga_text_screen(m->vga, text)) {
        printf("--- screen ---\n%s--- end ---\n", text->str);
        reply("ok");
    } else {
        reply("error: the screen is in a graphics mode");
    }
    g_string_free(text, TRUE);
}

static void dump_screen(struct machine *m, void *data)
{
    gchar *path = data;
    GError *error = NULL;
    display_update(m->display);
    if (display_screenshot_png(m->display->fb, path, &error)) {
        reply("ok");
    } else {
        reply("error: %s", error->message);
        g_error_free(error);
    }
    g_free(path);
}

static void print_info(struct machine *m, void *data)
{
    (void)data;
    static const char *const states[] = {"running", "paused", "stopped"};
    struct x86_state cpu;
    m->cpu.backend->get_state(&m->cpu, &cpu);
    reply("state %s, backend %s", states[m->run_state], m->cpu.backend->name);
    reply("cs:eip %04x:%08x eflags %08x cr0 %08x cr3 %08x%s", cpu.sregs[S_CS].selector, cpu.eip,
          cpu.eflags, cpu.cr0, cpu.cr3, cpu.halted ? " halted" : "");
    reply("eax %08x ebx %08x ecx %08x edx %08x esi %08x edi %08x ebp %08x esp %08x",
          cpu.regs[R_EAX], cpu.regs[R_EBX], cpu.regs[R_ECX], cpu.regs[R_EDX], cpu.regs[R_ESI],
          cpu.regs[R_EDI], cpu.regs[R_EBP], cpu.regs[R_ESP]);
    reply("ok");
}

/* --- snapshots ------------------------------------------------------------ */

struct snapshot_command {
    struct snapshot_store *store;
    bool (*run)(struct snapshot_store *store, struct machine *m, const char *name, GError **error);
    char *name;
};

static void run_snapshot_command(struct machine *m, void *data)
{
    struct snapshot_command *cmd = data;
    GError *error = NULL;
    if (cmd->run(cmd->store, m, cmd->name, &error)) {
        reply("ok");
    } else {
        reply("error: %s", error->message);
        g_error_free(error);
    }
    g_free(cmd->name);
    g_free(cmd);
}

static void post_snapshot_command(struct monitor *mon,
                                  bool (*run)(struct snapshot_store *, struct machine *,
                                              const char *, GError **),
                                  const char *name)
{
    if (!mon->snapshots) {
        reply("error: snapshots need the engine's --snapshot-dir");
        return;
    }
    struct snapshot_command *cmd = g_new0(struct snapshot_command, 1);
    cmd->store = mon->snapshots;
    cmd->run = run;
    cmd->name = g_strdup(name);
    machine_post(mon->machine, run_snapshot_command, cmd);
}

static void print_snapshots(struct monitor *mon)
{
    if (!mon->snapshots) {
        reply("error: snapshots need the engine's --snapshot-dir");
        return;
    }
    GPtrArray *entries = snapshot_store_list(snapshot_store_dir(mon->snapshots));
    for (guint i = 0; i < entries->len; i++) {
        g_autofree char *line = snapshot_entry_describe(g_ptr_array_index(entries, i));
        reply("%s", line);
    }
    g_ptr_array_unref(entries);
    reply("ok");
}

struct media_command {
    char *drive;
    char *path; /* NULL: eject */
};

static void run_media_command(struct machine *m, void *data)
{
    struct media_command *cmd = data;
    GError *error = NULL;
    if (machine_change_media(m, cmd->drive, cmd->path, &error)) {
        reply("ok");
    } else {
        reply("error: %s", error->message);
        g_error_free(error);
    }
    g_free(cmd->drive);
    g_free(cmd->path);
    g_free(cmd);
}

static void post_media_command(struct monitor *mon, const char *arg, bool eject)
{
    struct media_command *cmd = g_new0(struct media_command, 1);
    const char *space = strchr(arg, ' ');
    if (eject) {
        cmd->drive = g_strdup(arg);
    } else {
        cmd->drive = g_strndup(arg, (gsize)(space - arg));
        cmd->path = g_strdup(space + 1);
    }
    machine_post(mon->machine, run_media_command, cmd);
}

static void execute(struct monitor *mon, const char *line)
{
    const char *arg = strchr(line, ' ');
    gchar *command = arg ? g_strndup(line, (gsize)(arg - line)) : g_strdup(line);
    arg = arg ? arg + 1 : "";
    if (mon->busy && *command) {
        reply("error: still typing; wait for its ok");
    } else if (strcmp(command, "type") == 0) {
        if (parse_type(mon, arg))
            start_typing(mon);
    } else if (strcmp(command, "key") == 0) {
        if (parse_combo(mon, arg))
            start_typing(mon);
    } else if (strcmp(command, "serial") == 0) {
        if (mon->serial) {
            GByteArray *bytes = parse_serial_text(arg);
            serial_input_push(mon->serial, bytes->data, bytes->len);
            g_byte_array_unref(bytes);
            reply("ok");
        } else {
            reply("error: COM1 takes no input (--serial none)");
        }
    } else if (strcmp(command, "text") == 0) {
        machine_post(mon->machine, print_text, NULL);
    } else if (strcmp(command, "screendump") == 0 && *arg) {
        machine_post(mon->machine, dump_screen, g_strdup(arg));
    } else if (strcmp(command, "info") == 0 && strcmp(arg, "snapshots") == 0) {
        print_snapshots(mon);
    } else if (strcmp(command, "info") == 0) {
        machine_post(mon->machine, print_info, NULL);
    } else if (strcmp(command, "savevm") == 0 && *arg) {
        post_snapshot_command(mon, snapshot_store_save, arg);
    } else if (strcmp(command, "loadvm") == 0 && *arg) {
        post_snapshot_command(mon, snapshot_store_load, arg);
    } else if (strcmp(command, "delvm") == 0 && *arg) {
        post_snapshot_command(mon, snapshot_store_delete, arg);
    } else if (strcmp(command, "change") == 0 && strchr(arg, ' ')) {
        post_media_command(mon, arg, false);
    } else if (strcmp(command, "eject") == 0 && *arg) {
        post_media_command(mon, arg, true);
    } else if (strcmp(command, "quit") == 0) {
        machine_post(mon->machine, machine_work_quit, NULL);
    } else if (*command) {
        reply("error: unknown command '%s' (text, type, key, serial, screendump, info, savevm, "
              "loadvm, delvm, change, eject, quit)",
              command);
    }
    g_free(command);
}

static gboolean input_ready(GIOChannel *channel, GIOCondition condition, gpointer data)
{
    struct monitor *mon = data;
    (void)condition;
    gchar *line = NULL;
    gsize length;
    GIOStatus status = g_io_channel_read_line(channel, &line, &length, NULL, NULL);
    if (status == G_IO_STATUS_EOF || status == G_IO_STATUS_ERROR) {
        mon->watch = 0;
        return G_SOURCE_REMOVE;
    }
    if (line) {
        g_strchomp(line);
        execute(mon, line);
        g_free(line);
    }
    return G_SOURCE_CONTINUE;
}

struct monitor *monitor_create(struct machine *m, struct snapshot_store *snapshots)
{
    struct monitor *mon = g_new0(struct monitor, 1);
    mon->machine = m;
    mon->snapshots = snapshots;
    mon->pending_keys = g_array_new(FALSE, FALSE, sizeof(struct key_stroke));
    mon->channel = g_io_channel_unix_new(0);
    mon->watch = g_io_add_watch(mon->channel, G_IO_IN | G_IO_HUP, input_ready, mon);
    return mon;
}

void monitor_set_serial_input(struct monitor *mon, struct serial_input *serial)
{
    mon->serial = serial;
}

void monitor_destroy(struct monitor *mon)
{
    if (!mon)
        return;
    if (mon->watch)
        g_source_remove(mon->watch);
    if (mon->key_timer)
        g_source_remove(mon->key_timer);
    g_io_channel_unref(mon->channel);
    g_array_free(mon->pending_keys, TRUE);
    g_free(mon);
}
