/* sst-run: runs the SingleStepTests 80286 real-mode vectors (hardware
 * captures from a Harris 80C286, see ../shared/conformance/README.md) on a
 * CPU backend and reports the pass rate per opcode file and in total.
 *
 * Usage: sst-run DIR [--accel interp|dbt] [--cpu p6|286] [--exceptions FILE]
 *                [--only NAME] [--verbose]
 *
 * Each case is a real-mode state, one instruction followed by HLT, and the
 * registers and memory bytes the hardware changed. --cpu selects the CPU
 * model the interpreter behaves as (enum cpu_model): the P6 that guests run
 * on (the default), or the 80286 that recorded the vectors. An exception
 * list names where the model differs from the hardware; every entry carries
 * its reason. Without --exceptions everything must match. The STRICT line
 * counts the cases that match with no exception or flag mask at all. The
 * exit status is 0 when every case outside the exception list passes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <zlib.h>
#include <Zydis/Zydis.h>

#include "cpu.h"
#include "ioport.h"
#include "memory.h"
#include "vclock.h"

#define RAM_SIZE (16u << 20)

/* One rule of the exception list. */
enum rule_kind {
    RULE_FLAGS,                /* flags FILE MASK: these FLAGS bits are undefined */
    RULE_EXCLUDE,              /* exclude FILE|HASH: not compared at all */
    RULE_EXCLUDE_EXCEPTION,    /* exclude-exception FILE VECTOR: cases raising it */
    RULE_EXCLUDE_LENGTH,       /* exclude-length FILE N: instructions longer than N */
    RULE_EXCLUDE_ILLEGAL_LOCK, /* exclude-illegal-lock FILE: LOCK the 386+ rejects */
    RULE_EXCLUDE_STRING_WRAP,  /* exclude-string-wrap FILE: word string op at SI/DI FFFF */
    RULE_ALIAS_VECTOR,         /* alias-vector FILE A B: our vector B stands for the 286's A */
    RULE_EXCEPTION_FLAGS, /* exception-flags FILE VECTOR MASK: as flags, where VECTOR was raised */
};

struct rule {
    enum rule_kind kind;
    char target[48]; /* opcode file name, case hash, or '*' */
    uint32_t value, value2;
    char *reason;
};

struct runner {
    struct memory mem;
    struct memory_region ram;
    struct ioport_bus *io;
    struct vclock clock;
    struct cpu cpu;
    GArray *rules;
    bool use_rules;
    bool verbose;
    const char *only;
    unsigned long strict_passed, passed, total, excluded, failed_included;
};

static int no_interrupt(void *opaque)
{
    (void)opaque;
    return -1;
}

static bool load_rules(struct runner *r, const char *path)
{
    gchar *text;
    GError *error = NULL;
    if (!g_file_get_contents(path, &text, NULL, &error)) {
        fprintf(stderr, "sst-run: %s\n", error->message);
        g_error_free(error);
        return false;
    }
    gchar **lines = g_strsplit(text, "\n", -1);
    bool ok = true;
    for (unsigned n = 0; lines[n]; n++) {
        char *line = g_strstrip(lines[n]);
        if (!*line || *line == '#')
            continue;
        char *sep = strstr(line, " -- ");
        if (!sep) {
            fprintf(stderr, "sst-run: %s:%u: every rule needs ' -- reason'\n", path, n + 1);
            ok = false;
            continue;
        }
        *sep = 0;
        struct rule rule = {.reason = g_strdup(g_strstrip(sep + 4))};
        char kind[32], target[48];
        long value = 0, value2 = 0;
        int fields = sscanf(line, "%31s %47s %li %li", kind, target, &value, &value2);
        if (fields >= 2 && strcmp(kind, "flags") == 0 && fields == 3)
            rule.kind = RULE_FLAGS;
        else if (fields == 2 && strcmp(kind, "exclude") == 0)
            rule.kind = RULE_EXCLUDE;
        else if (fields == 3 && strcmp(kind, "exclude-exception") == 0)
            rule.kind = RULE_EXCLUDE_EXCEPTION;
        else if (fields == 3 && strcmp(kind, "exclude-length") == 0)
            rule.kind = RULE_EXCLUDE_LENGTH;
        else if (fields == 2 && strcmp(kind, "exclude-illegal-lock") == 0)
            rule.kind = RULE_EXCLUDE_ILLEGAL_LOCK;
        else if (fields == 2 && strcmp(kind, "exclude-string-wrap") == 0)
            rule.kind = RULE_EXCLUDE_STRING_WRAP;
        else if (fields == 4 && strcmp(kind, "alias-vector") == 0)
            rule.kind = RULE_ALIAS_VECTOR;
        else if (fields == 4 && strcmp(kind, "exception-flags") == 0)
            rule.kind = RULE_EXCEPTION_FLAGS;
        else {
            fprintf(stderr, "sst-run: %s:%u: cannot parse '%s'\n", path, n + 1, line);
            g_free(rule.reason);
            ok = false;
            continue;
        }
        g_strlcpy(rule.target, target, sizeof(rule.target));
        rule.value = (uint32_t)value;
        rule.value2 = (uint32_t)value2;
        g_array_append_val(r->rules, rule);
    }
    g_strfreev(lines);
    g_free(text);
    return ok;
}

static bool rule_applies(const struct rule *rule, const char *file, const char *hash)
{
    return strcmp(rule->target, "*") == 0 || strcmp(rule->target, file) == 0 ||
           (hash && strcmp(rule->target, hash) == 0);
}

static bool setup(struct runner *r, const char *accel, enum cpu_model model)
{
    if (!memory_init(&r->mem, RAM_SIZE))
        return false;
    r->ram = (struct memory_region){
        .name = "ram", .base = 0, .size = RAM_SIZE, .enabled = true, .host = r->mem.ram};
    memory_add_region(&r->mem, &r->ram);
    r->io = g_new0(struct ioport_bus, 1);
    ioport_bus_init(r->io);
    vclock_init(&r->clock);
    vclock_start(&r->clock);
    r->cpu.backend = cpu_backend_by_name(accel);
    if (!r->cpu.backend) {
        fprintf(stderr, "sst-run: unknown backend '%s'\n", accel);
        return false;
    }
    r->cpu.mem = &r->mem;
    r->cpu.io = r->io;
    r->cpu.clock = &r->clock;
    r->cpu.intr_ack = no_interrupt;
    r->cpu.model = model;
    GError *error = NULL;
    if (!r->cpu.backend->init(&r->cpu, &error)) {
        fprintf(stderr, "sst-run: backend %s: %s\n", accel, error->message);
        g_error_free(error);
        return false;
    }
    return true;
}

static const char *const reg_names[] = {"ax", "cx", "dx", "bx", "sp", "bp", "si", "di"};
static const char *const sreg_names[] = {"es", "cs", "ss", "ds"};

static bool get_u32(JsonObject *o, const char *name, uint32_t *out)
{
    if (!o || !json_object_has_member(o, name))
        return false;
    *out = (uint32_t)json_object_get_int_member(o, name);
    return true;
}

/* Writes or clears every [address, byte] pair of a ram list. */
static void poke_ram(struct runner *r, JsonArray *ram, bool clear)
{
    if (!ram)
        return;
    for (guint n = 0; n < json_array_get_length(ram); n++) {
        JsonArray *pair = json_array_get_array_element(ram, n);
        uint32_t addr = (uint32_t)json_array_get_int_element(pair, 0);
        uint8_t value = clear ? 0 : (uint8_t)json_array_get_int_element(pair, 1);
        if (addr < RAM_SIZE)
            memory_write(&r->mem, addr, 1, value);
    }
}

/* Runs one case; returns true if it matched. */
static bool run_case(struct runner *r, JsonObject *test, uint16_t flags_mask, int alias_from,
                     int alias_to, GString *why)
{
    JsonObject *initial = json_object_get_object_member(test, "initial");
    JsonObject *final = json_object_get_object_member(test, "final");
    JsonObject *iregs = json_object_get_object_member(initial, "regs");
    JsonObject *fregs = json_object_get_object_member(final, "regs");
    JsonArray *iram = json_object_get_array_member(initial, "ram");
    JsonArray *fram = json_object_get_array_member(final, "ram");

    struct x86_state s;
    x86_state_reset(&s);
    uint32_t v = 0;
    for (int n = 0; n < 8; n++) {
        get_u32(iregs, reg_names[n], &v);
        s.regs[n] = v & 0xffff;
    }
    for (int n = 0; n < 4; n++) {
        get_u32(iregs, sreg_names[n], &v);
        s.sregs[n].selector = (uint16_t)v;
        s.sregs[n].base = (v & 0xffff) << 4;
    }
    get_u32(iregs, "ip", &v);
    s.eip = v & 0xffff;
    get_u32(iregs, "flags", &v);
    /* Real-mode FLAGS on the 286 cannot hold IOPL and NT (README). */
    s.eflags = (v & 0x0fd5) | X86_FLAG_FIXED;
    uint32_t initial_flags = s.eflags;
    s.idtr.limit = 0x3ff;

    poke_ram(r, iram, false);
    if (alias_from >= 0)
        memory_write(&r->mem, (uint32_t)alias_to * 4, 4,
                     memory_read(&r->mem, (uint32_t)alias_from * 4, 4));
    r->cpu.backend->set_state(&r->cpu, &s);
    /* Every case ends in microseconds; one that does not is lost. */
    int64_t deadline = vclock_now(&r->clock) + 2 * 1000000LL;
    enum cpu_exit why_exit = r->cpu.backend->run(&r->cpu, deadline);
    struct x86_state out;
    r->cpu.backend->get_state(&r->cpu, &out);

    bool ok = true;
    if (why_exit != CPU_EXIT_HALT) {
        g_string_append_printf(why, " no HLT reached (exit %d)", why_exit);
        ok = false;
    }
    for (int n = 0; n < 8; n++) {
        uint32_t expect = s.regs[n];
        get_u32(fregs, reg_names[n], &expect);
        if ((out.regs[n] & 0xffff) != expect) {
            g_string_append_printf(why, " %s=%04x (want %04x)", reg_names[n], out.regs[n] & 0xffff,
                                   expect);
            ok = false;
        }
    }
    for (int n = 0; n < 4; n++) {
        uint32_t expect = s.sregs[n].selector;
        get_u32(fregs, sreg_names[n], &expect);
        if (out.sregs[n].selector != expect) {
            g_string_append_printf(why, " %s=%04x (want %04x)", sreg_names[n],
                                   out.sregs[n].selector, expect);
            ok = false;
        }
    }
    uint32_t expect_ip = s.eip;
    get_u32(fregs, "ip", &expect_ip);
    if ((out.eip & 0xffff) != expect_ip) {
        g_string_append_printf(why, " ip=%04x (want %04x)", out.eip & 0xffff, expect_ip);
        ok = false;
    }
    uint32_t expect_flags = initial_flags;
    get_u32(fregs, "flags", &expect_flags);
    uint16_t mask = (uint16_t)~flags_mask;
    if (((out.eflags ^ expect_flags) & mask & 0xffff) != 0) {
        g_string_append_printf(why, " flags=%04x (want %04x)", out.eflags & 0xffff, expect_flags);
        ok = false;
    }
    /* Memory: every byte the hardware left, masking the undefined flags
     * in a flags image an exception pushed. */
    uint32_t flag_addr = UINT32_MAX;
    if (json_object_has_member(test, "exception")) {
        /* The frame's FLAGS word sits at SS:SP+4 after the exception
         * (the data's flag_address is off by one where SP is odd). */
        uint32_t ss = s.sregs[S_SS].selector, sp = s.regs[R_ESP];
        get_u32(fregs, "ss", &ss);
        get_u32(fregs, "sp", &sp);
        flag_addr = (ss << 4) + ((sp + 4) & 0xffff);
    }
    for (guint n = 0; fram && n < json_array_get_length(fram); n++) {
        JsonArray *pair = json_array_get_array_element(fram, n);
        uint32_t addr = (uint32_t)json_array_get_int_element(pair, 0);
        uint8_t want = (uint8_t)json_array_get_int_element(pair, 1);
        uint8_t got = (uint8_t)memory_read(&r->mem, addr, 1);
        uint8_t byte_mask = 0xff;
        if (addr == flag_addr)
            byte_mask = (uint8_t)mask;
        else if (addr == flag_addr + 1)
            byte_mask = (uint8_t)(mask >> 8);
        if ((got ^ want) & byte_mask) {
            g_string_append_printf(why, " [%06x]=%02x (want %02x)", addr, got, want);
            ok = false;
        }
    }
    poke_ram(r, iram, true);
    poke_ram(r, fram, true);
    if (alias_from >= 0)
        memory_write(&r->mem, (uint32_t)alias_to * 4, 4, 0);
    return ok;
}

/* Whether a 386 or later rejects the instruction for its LOCK prefix. */
static bool illegal_lock(JsonArray *bytes)
{
    uint8_t code[16] = {0};
    unsigned len = json_array_get_length(bytes);
    if (len > sizeof(code))
        len = sizeof(code);
    for (unsigned n = 0; n < len; n++)
        code[n] = (uint8_t)json_array_get_int_element(bytes, n);
    ZydisDecoder decoder;
    ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
    ZydisDecodedInstruction insn;
    return ZydisDecoderDecodeInstruction(&decoder, NULL, code, len, &insn) ==
           ZYDIS_STATUS_ILLEGAL_LOCK;
}

/* Whether a word string instruction reached offset FFFF in SI or DI, where
 * the 286 wraps and the 386 and later raise #GP. */
static bool string_wraps(JsonObject *test)
{
    JsonObject *iregs =
        json_object_get_object_member(json_object_get_object_member(test, "initial"), "regs");
    JsonObject *fregs =
        json_object_get_object_member(json_object_get_object_member(test, "final"), "regs");
    JsonArray *bytes = json_object_get_array_member(test, "bytes");
    bool rep = false;
    for (guint n = 0; n + 1 < json_array_get_length(bytes); n++) {
        int64_t b = json_array_get_int_element(bytes, n);
        if (b == 0xf2 || b == 0xf3)
            rep = true;
    }
    uint32_t si = 0, di = 0, cx = 0, flags = 0, final_cx;
    get_u32(iregs, "si", &si);
    get_u32(iregs, "di", &di);
    get_u32(iregs, "cx", &cx);
    get_u32(iregs, "flags", &flags);
    final_cx = cx;
    get_u32(fregs, "cx", &final_cx);
    uint32_t iterations = rep ? ((cx - final_cx) & 0xffff) + 1 : 1;
    int32_t step = (flags & X86_FLAG_DF) ? -2 : 2;
    for (uint32_t k = 0; k < iterations && k < 0x10000; k++) {
        if (((si + (uint32_t)step * k) & 0xffff) == 0xffff ||
            ((di + (uint32_t)step * k) & 0xffff) == 0xffff)
            return true;
    }
    return false;
}

struct file_result {
    unsigned long passed, total, excluded;
};

static void run_file(struct runner *r, const char *dir, const char *file_name)
{
    char name[64];
    g_strlcpy(name, file_name, sizeof(name));
    char *dot = strstr(name, ".jsonl.gz");
    if (dot)
        *dot = 0;
    if (r->only && strcmp(r->only, name) != 0)
        return;
    gchar *path = g_build_filename(dir, file_name, NULL);
    gzFile gz = gzopen(path, "rb");
    g_free(path);
    if (!gz) {
        fprintf(stderr, "sst-run: cannot open %s: %s\n", file_name, g_strerror(errno));
        r->failed_included++;
        return;
    }
    uint16_t flags_mask = 0;
    if (r->use_rules) {
        for (guint n = 0; n < r->rules->len; n++) {
            const struct rule *rule = &g_array_index(r->rules, struct rule, n);
            if (rule->kind == RULE_FLAGS && rule_applies(rule, name, NULL))
                flags_mask |= (uint16_t)rule->value;
        }
    }
    struct file_result fr = {0};
    unsigned long strict = 0;
    JsonParser *parser = json_parser_new();
    GString *line = g_string_new(NULL);
    GString *why = g_string_new(NULL);
    char buf[65536];
    for (;;) {
        g_string_truncate(line, 0);
        bool got = false;
        while (gzgets(gz, buf, sizeof(buf))) {
            got = true;
            g_string_append(line, buf);
            if (line->len && line->str[line->len - 1] == '\n')
                break;
        }
        if (!got)
            break;
        if (!json_parser_load_from_data(parser, line->str, (gssize)line->len, NULL))
            continue;
        JsonObject *test = json_node_get_object(json_parser_get_root(parser));
        const char *hash = json_object_get_string_member_with_default(test, "hash", "");
        JsonArray *bytes = json_object_get_array_member(test, "bytes");
        unsigned length = bytes ? json_array_get_length(bytes) : 0;
        uint32_t exc = UINT32_MAX;
        if (json_object_has_member(test, "exception"))
            get_u32(json_object_get_object_member(test, "exception"), "number", &exc);
        bool excluded = false;
        const char *reason = NULL;
        int alias_from = -1, alias_to = -1;
        uint16_t case_flags_mask = flags_mask;
        for (guint n = 0; r->use_rules && n < r->rules->len && !excluded; n++) {
            const struct rule *rule = &g_array_index(r->rules, struct rule, n);
            if (!rule_applies(rule, name, hash))
                continue;
            if (rule->kind == RULE_EXCEPTION_FLAGS && exc == rule->value)
                case_flags_mask |= (uint16_t)rule->value2;
            if (rule->kind == RULE_ALIAS_VECTOR && exc == rule->value) {
                alias_from = (int)rule->value;
                alias_to = (int)rule->value2;
            }
            if (rule->kind == RULE_EXCLUDE ||
                (rule->kind == RULE_EXCLUDE_EXCEPTION && exc == rule->value) ||
                /* bytes include the terminating HLT */
                (rule->kind == RULE_EXCLUDE_LENGTH && length > rule->value + 1) ||
                (rule->kind == RULE_EXCLUDE_ILLEGAL_LOCK && bytes && illegal_lock(bytes)) ||
                (rule->kind == RULE_EXCLUDE_STRING_WRAP && string_wraps(test))) {
                excluded = true;
                reason = rule->reason;
            }
        }
        g_string_truncate(why, 0);
        bool strict_ok = run_case(r, test, 0, -1, -1, why);
        bool ok = strict_ok;
        if (!ok && (case_flags_mask || alias_from >= 0)) {
            g_string_truncate(why, 0);
            ok = run_case(r, test, case_flags_mask, alias_from, alias_to, why);
        }
        fr.total++;
        strict += strict_ok;
        if (ok) {
            fr.passed++;
        } else if (excluded) {
            fr.excluded++;
            if (r->verbose)
                printf("  excluded %s #%" G_GINT64_FORMAT " %s (%s):%s\n", name,
                       json_object_get_int_member(test, "idx"),
                       json_object_get_string_member(test, "name"), reason, why->str);
        } else {
            r->failed_included++;
            if (r->verbose)
                printf("  FAIL %s #%" G_GINT64_FORMAT " %s:%s\n", name,
                       json_object_get_int_member(test, "idx"),
                       json_object_get_string_member(test, "name"), why->str);
        }
    }
    gzclose(gz);
    g_string_free(line, TRUE);
    g_string_free(why, TRUE);
    g_object_unref(parser);
    printf("%-6s %5lu/%-5lu %6.2f%%", name, fr.passed, fr.total,
           fr.total ? 100.0 * (double)fr.passed / (double)fr.total : 0.0);
    if (fr.excluded)
        printf("  (%lu excluded)", fr.excluded);
    if (strict != fr.passed)
        printf("  (%lu without flag masks)", strict);
    printf("\n");
    r->passed += fr.passed;
    r->strict_passed += strict;
    r->total += fr.total;
    r->excluded += fr.excluded;
}

static bool parse_model(const char *name, enum cpu_model *model)
{
    if (strcmp(name, "p6") == 0)
        *model = CPU_MODEL_P6;
    else if (strcmp(name, "286") == 0)
        *model = CPU_MODEL_80286;
    else {
        fprintf(stderr, "sst-run: unknown CPU model '%s' (p6 or 286)\n", name);
        return false;
    }
    return true;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *accel = "interp", *exceptions = NULL;
    enum cpu_model model = CPU_MODEL_P6;
    struct runner r = {0};
    for (int n = 1; n < argc; n++) {
        if (strcmp(argv[n], "--accel") == 0 && n + 1 < argc)
            accel = argv[++n];
        else if (strcmp(argv[n], "--cpu") == 0 && n + 1 < argc) {
            if (!parse_model(argv[++n], &model))
                return 2;
        } else if (strcmp(argv[n], "--exceptions") == 0 && n + 1 < argc)
            exceptions = argv[++n];
        else if (strcmp(argv[n], "--only") == 0 && n + 1 < argc)
            r.only = argv[++n];
        else if (strcmp(argv[n], "--verbose") == 0 || strcmp(argv[n], "-v") == 0)
            r.verbose = true;
        else if (!dir && argv[n][0] != '-')
            dir = argv[n];
        else {
            fprintf(stderr, "usage: sst-run DIR [--accel interp|dbt] [--cpu p6|286] "
                            "[--exceptions FILE] [--only NAME] [--verbose]\n");
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: sst-run DIR [--accel interp|dbt] [--exceptions FILE]\n");
        return 2;
    }
    DIR *d = opendir(dir);
    if (!d) {
        printf("sst-run: conformance data not found at %s: skipping\n", dir);
        return 77;
    }
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    struct dirent *e;
    while ((e = readdir(d)))
        if (g_str_has_suffix(e->d_name, ".jsonl.gz"))
            g_ptr_array_add(files, g_strdup(e->d_name));
    closedir(d);
    if (files->len == 0) {
        printf("sst-run: no *.jsonl.gz files in %s: skipping\n", dir);
        return 77;
    }
    qsort(files->pdata, files->len, sizeof(char *), compare_names);

    r.rules = g_array_new(FALSE, TRUE, sizeof(struct rule));
    if (exceptions) {
        if (!load_rules(&r, exceptions))
            return 2;
        r.use_rules = true;
    }
    if (!setup(&r, accel, model))
        return 2;
    for (guint n = 0; n < files->len; n++)
        run_file(&r, dir, files->pdata[n]);

    printf("STRICT %lu/%lu (%.3f%%) without any exception or flag mask\n", r.strict_passed, r.total,
           r.total ? 100.0 * (double)r.strict_passed / (double)r.total : 0.0);
    if (r.use_rules)
        printf("EXCLUDED %lu failing cases covered by %s\n", r.excluded, exceptions);
    printf("FAILED %lu cases outside the exception list\n", r.failed_included);
    printf("TOTAL %lu/%lu\n", r.passed, r.total);
    r.cpu.backend->destroy(&r.cpu);
    g_free(r.io);
    memory_destroy(&r.mem);
    g_ptr_array_free(files, TRUE);
    return r.failed_included ? 1 : 0;
}
