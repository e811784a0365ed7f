/* Direct kernel boot, as QEMU's -kernel does, but with no firmware at all:
 * the loader puts the kernel (and initrd and command line) into guest memory
 * and starts the CPU in 32-bit protected mode at the kernel's entry point.
 *
 * Multiboot: "Multiboot Specification version 0.6.96", sections 3.1 (the
 * header, including the a.out kludge) and 3.2-3.3 (machine state, boot
 * information). Linux: Documentation/arch/x86/boot.rst, "The Linux/x86 Boot
 * Protocol", 32-bit boot protocol (protocol 2.03 and later).
 */
#include "loader.h"

#include <string.h>

#include "e820.h"
#include "machine.h"

/* Where the loader puts its own structures: below the EBDA, above the IVT
 * and BIOS data area a kernel may still look at. */
#define BOOT_GDT_ADDR     0x6000u
#define BOOT_INFO_ADDR    0x7000u /* multiboot info or Linux boot_params */
#define BOOT_MMAP_ADDR    0x8000u
#define BOOT_CMDLINE_ADDR 0x20000u
#define BOOT_CMDLINE_MAX  0x10000u
#define KERNEL_HIGH_ADDR  0x100000u

#define BOOT_CS 0x10
#define BOOT_DS 0x18

#define MULTIBOOT_HEADER_MAGIC 0x1badb002u
#define MULTIBOOT_LOADER_MAGIC 0x2badb002u
#define MULTIBOOT_SEARCH_LIMIT 8192
#define MULTIBOOT_FLAG_AOUT    (1u << 16)
#define MULTIBOOT_INFO_MEMORY  (1u << 0)
#define MULTIBOOT_INFO_CMDLINE (1u << 2)
#define MULTIBOOT_INFO_MODS    (1u << 3)
#define MULTIBOOT_INFO_MMAP    (1u << 6)
#define MULTIBOOT_INFO_LOADER  (1u << 9)

#define LINUX_HDRS_MAGIC 0x53726448u /* "HdrS" */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static bool fits_in_ram(struct machine *m, uint64_t addr, uint64_t len)
{
    return addr >= KERNEL_HIGH_ADDR / 2 && addr + len <= m->config->ram_size && addr + len >= addr;
}

/* A flat 4 GiB code and data segment at the selectors both protocols name
 * (0x10 and 0x18), so a kernel that reloads segment registers before its own
 * GDT finds valid descriptors. */
static void write_boot_gdt(struct machine *m)
{
    static const uint8_t gdt[32] = {
        [0x10] = 0xff, 0xff, 0x00, 0x00, 0x00, 0x9b, 0xcf, 0x00,
        [0x18] = 0xff, 0xff, 0x00, 0x00, 0x00, 0x93, 0xcf, 0x00,
    };
    memory_load(&m->mem, BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

static void set_flat_protected_state(struct machine *m, uint32_t entry, struct x86_state *state)
{
    x86_state_reset(state);
    state->cr0 = X86_CR0_PE | X86_CR0_ET;
    state->eflags = X86_FLAG_FIXED;
    state->eip = entry;
    state->gdtr = (struct x86_table_register){.base = BOOT_GDT_ADDR, .limit = 31};
    state->idtr = (struct x86_table_register){.base = 0, .limit = 0x3ff};
    for (int i = 0; i < X86_NR_SREGS; i++) {
        state->sregs[i] = (struct x86_segment){.selector = BOOT_DS,
                                               .base = 0,
                                               .limit = 0xffffffff,
                                               .attrib = X86_DESC_P | X86_DESC_S | X86_DESC_DB |
                                                         X86_DESC_G | 0x3};
    }
    state->sregs[S_CS].selector = BOOT_CS;
    state->sregs[S_CS].attrib = X86_DESC_P | X86_DESC_S | X86_DESC_DB | X86_DESC_G | 0xb;
}

static bool load_initrd(struct machine *m, uint64_t max_end, uint32_t *addr, uint32_t *size,
                        GError **error)
{
    gchar *data;
    gsize len;
    if (!g_file_get_contents(m->config->initrd_path, &data, &len, error))
        return false;
    uint64_t end = m->config->ram_size < max_end ? m->config->ram_size : max_end;
    /* As high as allowed, page aligned, as bootloaders do, to keep it clear of
     * the kernel's own decompression area. */
    uint64_t start = (end - len) & ~(uint64_t)0xfff;
    if (len > end || start < KERNEL_HIGH_ADDR) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSPC,
                    "%s: the initrd (%zu KiB) does not fit in guest memory; give the guest more "
                    "with --memory",
                    m->config->initrd_path, (size_t)len >> 10);
        g_free(data);
        return false;
    }
    memory_load(&m->mem, start, data, len);
    g_free(data);
    *addr = (uint32_t)start;
    *size = (uint32_t)len;
    return true;
}

static uint32_t write_cmdline(struct machine *m)
{
    const char *cmdline = m->config->append ? m->config->append : "";
    size_t len = strlen(cmdline);
    if (len >= BOOT_CMDLINE_MAX)
        len = BOOT_CMDLINE_MAX - 1;
    memory_load(&m->mem, BOOT_CMDLINE_ADDR, cmdline, len);
    memory_load(&m->mem, BOOT_CMDLINE_ADDR + len, "", 1);
    return BOOT_CMDLINE_ADDR;
}

/* Returns the offset of a valid multiboot header in the first 8 KiB, or -1. */
static long find_multiboot_header(const uint8_t *image, size_t len)
{
    size_t limit = len < MULTIBOOT_SEARCH_LIMIT ? len : MULTIBOOT_SEARCH_LIMIT;
    for (size_t off = 0; off + 12 <= limit; off += 4) {
        const uint8_t *h = image + off;
        if (le32(h) == MULTIBOOT_HEADER_MAGIC && le32(h) + le32(h + 4) + le32(h + 8) == 0)
            return (long)off;
    }
    return -1;
}

static bool load_multiboot_aout(struct machine *m, const uint8_t *image, size_t len, long off,
                                uint32_t *entry, uint32_t *image_end, GError **error)
{
    const uint8_t *h = image + off;
    if ((size_t)off + 32 > len)
        goto bad;
    uint32_t header_addr = le32(h + 12), load_addr = le32(h + 16);
    uint32_t load_end = le32(h + 20), bss_end = le32(h + 24);
    *entry = le32(h + 28);
    if (load_addr > header_addr || header_addr - load_addr > (uint32_t)off)
        goto bad;
    uint64_t file_start = (uint64_t)off - (header_addr - load_addr);
    uint64_t load_len = load_end ? (uint64_t)load_end - load_addr : len - file_start;
    if (load_end && load_end < load_addr)
        goto bad;
    if (file_start + load_len > len)
        load_len = len - file_start;
    uint64_t mem_end = bss_end ? bss_end : load_addr + load_len;
    if (mem_end < load_addr + load_len || !fits_in_ram(m, load_addr, mem_end - load_addr))
        goto bad;
    memory_load(&m->mem, load_addr, image + file_start, load_len);
    *image_end = (uint32_t)mem_end;
    return true;
bad:
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                "%s: the multiboot header's load addresses are inconsistent or outside guest "
                "memory",
                m->config->kernel_path);
    return false;
}

static bool load_multiboot_elf(struct machine *m, const uint8_t *image, size_t len, uint32_t *entry,
                               uint32_t *image_end, GError **error)
{
    if (len < 52 ||
        memcmp(image,
               "\x7f"
               "ELF",
               4) != 0 ||
        image[4] != 1 /* ELFCLASS32 */ || le16(image + 18) != 3 /* EM_386 */) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: a multiboot kernel without the a.out kludge must be a 32-bit x86 ELF "
                    "file",
                    m->config->kernel_path);
        return false;
    }
    uint32_t phoff = le32(image + 28);
    uint16_t phentsize = le16(image + 42), phnum = le16(image + 44);
    *entry = le32(image + 24);
    *image_end = 0;
    if (phentsize < 32 || (uint64_t)phoff + (uint64_t)phnum * phentsize > len)
        goto bad;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = image + phoff + i * phentsize;
        if (le32(ph) != 1 /* PT_LOAD */)
            continue;
        uint32_t offset = le32(ph + 4), paddr = le32(ph + 12);
        uint32_t filesz = le32(ph + 16), memsz = le32(ph + 20);
        if ((uint64_t)offset + filesz > len || filesz > memsz || !fits_in_ram(m, paddr, memsz))
            goto bad;
        memory_load(&m->mem, paddr, image + offset, filesz);
        /* The part of the segment beyond the file is zeroed bss; RAM starts
         * zeroed, but a reset reloads over a used machine. */
        for (uint32_t z = filesz; z < memsz; z++)
            memory_load(&m->mem, paddr + z, "", 1);
        if (paddr + memsz > *image_end)
            *image_end = paddr + memsz;
    }
    return true;
bad:
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                "%s: an ELF program header lies outside the file or outside guest memory",
                m->config->kernel_path);
    return false;
}

static bool boot_multiboot(struct machine *m, const uint8_t *image, size_t len, long off,
                           struct x86_state *state, GError **error)
{
    uint32_t flags = le32(image + off + 4);
    uint32_t entry, image_end;
    bool ok = (flags & MULTIBOOT_FLAG_AOUT)
                  ? load_multiboot_aout(m, image, len, off, &entry, &image_end, error)
                  : load_multiboot_elf(m, image, len, &entry, &image_end, error);
    if (!ok)
        return false;

    uint8_t info[88] = {0};
    uint32_t info_flags = MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MMAP |
                          MULTIBOOT_INFO_LOADER;
    put32(info + 4, 640);
    put32(info + 8, (uint32_t)((m->config->ram_size - KERNEL_HIGH_ADDR) >> 10));
    put32(info + 16, write_cmdline(m));

    if (m->config->initrd_path) {
        uint32_t initrd_addr, initrd_size;
        if (!load_initrd(m, m->config->ram_size, &initrd_addr, &initrd_size, error))
            return false;
        if (initrd_addr < image_end) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSPC,
                        "the initrd would overlap the kernel; give the guest more memory");
            return false;
        }
        uint8_t module[16] = {0};
        put32(module, initrd_addr);
        put32(module + 4, initrd_addr + initrd_size);
        put32(module + 8, BOOT_CMDLINE_ADDR); /* the module's string: the command line */
        uint32_t module_addr = BOOT_MMAP_ADDR + 0x800;
        memory_load(&m->mem, module_addr, module, sizeof(module));
        info_flags |= MULTIBOOT_INFO_MODS;
        put32(info + 20, 1);
        put32(info + 24, module_addr);
    }

    struct e820_entry map[E820_MAX_ENTRIES];
    unsigned n = e820_build(m->config->ram_size, map);
    uint8_t mmap[E820_MAX_ENTRIES * 24];
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = mmap + i * 24;
        put32(e, 20); /* size of the entry, not counting this field */
        put32(e + 4, (uint32_t)map[i].addr);
        put32(e + 8, (uint32_t)(map[i].addr >> 32));
        put32(e + 12, (uint32_t)map[i].size);
        put32(e + 16, (uint32_t)(map[i].size >> 32));
        put32(e + 20, map[i].type);
    }
    memory_load(&m->mem, BOOT_MMAP_ADDR, mmap, n * 24);
    put32(info + 44, n * 24);
    put32(info + 48, BOOT_MMAP_ADDR);

    static const char loader_name[] = "Vivarium";
    uint32_t name_addr = BOOT_MMAP_ADDR + 0x900;
    memory_load(&m->mem, name_addr, loader_name, sizeof(loader_name));
    put32(info + 64, name_addr);
    put32(info, info_flags);
    memory_load(&m->mem, BOOT_INFO_ADDR, info, sizeof(info));

    write_boot_gdt(m);
    set_flat_protected_state(m, entry, state);
    state->regs[R_EAX] = MULTIBOOT_LOADER_MAGIC;
    state->regs[R_EBX] = BOOT_INFO_ADDR;
    return true;
}

static bool boot_linux(struct machine *m, const uint8_t *image, size_t len, struct x86_state *state,
                       GError **error)
{
    uint16_t version = le16(image + 0x206);
    if (version < 0x0203) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: Linux boot protocol %u.%02u is too old (2.03 or later is needed)",
                    m->config->kernel_path, version >> 8, version & 0xff);
        return false;
    }
    if (!(image[0x211] & 0x01)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: this is a zImage, not a bzImage; only bzImage kernels load high",
                    m->config->kernel_path);
        return false;
    }
    unsigned setup_sects = image[0x1f1] ? image[0x1f1] : 4;
    size_t kernel_offset = (size_t)(setup_sects + 1) * 512;
    if (kernel_offset >= len || !fits_in_ram(m, KERNEL_HIGH_ADDR, len - kernel_offset)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: the kernel image is truncated or larger than guest memory",
                    m->config->kernel_path);
        return false;
    }
    memory_load(&m->mem, KERNEL_HIGH_ADDR, image + kernel_offset, len - kernel_offset);

    /* boot_params: the zero page, with the image's setup header copied in at
     * the same offset and the loader's fields filled in. */
    uint8_t params[4096] = {0};
    size_t header_end = 0x202 + image[0x201];
    if (header_end > sizeof(params) || header_end > len)
        header_end = 0x268 < len ? 0x268 : len;
    memcpy(params + 0x1f1, image + 0x1f1, header_end - 0x1f1);

    /* screen_info: an 80x25 VGA text console, so the kernel's vgacon works. */
    params[0x06] = 0x03;      /* orig_video_mode */
    params[0x07] = 80;        /* orig_video_cols */
    params[0x0e] = 25;        /* orig_video_lines */
    params[0x0f] = 1;         /* orig_video_isVGA */
    put16(params + 0x10, 16); /* orig_video_points */

    put32(params + 0x1e0, (uint32_t)((m->config->ram_size - KERNEL_HIGH_ADDR) >> 10));
    params[0x210] = 0xff;          /* type_of_loader: undefined */
    params[0x211] |= 0x80;         /* CAN_USE_HEAP */
    put16(params + 0x224, 0xde00); /* heap_end_ptr */
    put32(params + 0x228, write_cmdline(m));

    if (m->config->initrd_path) {
        uint32_t initrd_max = le32(image + 0x22c);
        if (initrd_max == 0)
            initrd_max = 0x37ffffff;
        uint32_t addr, size;
        if (!load_initrd(m, (uint64_t)initrd_max + 1, &addr, &size, error))
            return false;
        put32(params + 0x218, addr);
        put32(params + 0x21c, size);
    }

    struct e820_entry map[E820_MAX_ENTRIES];
    unsigned n = e820_build(m->config->ram_size, map);
    params[0x1e8] = (uint8_t)n;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = params + 0x2d0 + i * 20;
        put32(e, (uint32_t)map[i].addr);
        put32(e + 4, (uint32_t)(map[i].addr >> 32));
        put32(e + 8, (uint32_t)map[i].size);
        put32(e + 12, (uint32_t)(map[i].size >> 32));
        put32(e + 16, map[i].type);
    }
    memory_load(&m->mem, BOOT_INFO_ADDR, params, sizeof(params));

    write_boot_gdt(m);
    set_flat_protected_state(m, le32(image + 0x214) ? le32(image + 0x214) : KERNEL_HIGH_ADDR,
                             state);
    state->regs[R_ESI] = BOOT_INFO_ADDR;
    return true;
}

bool loader_boot_kernel(struct machine *m, struct x86_state *state, GError **error)
{
    gchar *contents;
    gsize len;
    if (!g_file_get_contents(m->config->kernel_path, &contents, &len, error))
        return false;
    const uint8_t *image = (const uint8_t *)contents;
    bool ok;
    long mb = find_multiboot_header(image, len);
    if (len > 0x20a && le32(image + 0x202) == LINUX_HDRS_MAGIC) {
        ok = boot_linux(m, image, len, state, error);
    } else if (mb >= 0) {
        ok = boot_multiboot(m, image, len, mb, state, error);
    } else {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: neither a Linux bzImage nor a multiboot kernel", m->config->kernel_path);
        ok = false;
    }
    g_free(contents);
    return ok;
}
