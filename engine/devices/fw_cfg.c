/* QEMU's firmware configuration device.
 *
 * Follows QEMU docs/specs/fw_cfg.txt ("QEMU Firmware Configuration (fw_cfg)
 * Device") and what SeaBIOS src/fw/paravirt.c reads through it:
 *   - writing a key to the 16-bit selector (0x510) selects an item and
 *     rewinds it; each read of the data port (0x511) returns its next byte,
 *     and zero past its end or for a key with no item;
 *   - the file directory (key 0x19) is a big-endian u32 count followed by
 *     64-byte entries {be32 size, be16 select, u16 reserved, char name[56]};
 *   - the DMA interface: the guest writes the guest-physical address of a
 *     {be32 control, be32 length, be64 address} descriptor to 0x514 (high
 *     half) and 0x518 (low half, which starts the transfer), each dword in
 *     big-endian byte order; the device performs select/read/skip/write and
 *     stores control back as 0, or with the error bit set. Reading
 *     0x514-0x51b returns the signature "QEMU CFG".
 * Transfers complete before the port write returns, as in QEMU.
 */
#include "fw_cfg.h"

#include <string.h>

#include <glib.h>

#define FW_CFG_PORT_SELECTOR 0x510
#define FW_CFG_PORT_DATA     0x511
#define FW_CFG_PORT_DMA      0x514
#define FW_CFG_PORT_DMA_LOW  0x518
#define FW_CFG_DMA_SIGNATURE "QEMU CFG"

#define FW_CFG_ENTRY_MASK 0x3fff
#define FW_CFG_MAX_FILES  256
#define FW_CFG_NUM_KEYS   (FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES)
#define FW_CFG_DIR_ENTRY  64

#define E820_ENTRY_SIZE 20 /* packed {u64 address, u64 length, u32 type} */

struct fw_cfg_item {
    uint8_t *data;
    uint32_t len;
    bool writable;
};

struct e820_range {
    uint64_t address;
    uint64_t length;
    uint32_t type;
};

struct fw_cfg {
    struct ioport_bus *io;
    struct memory *mem;
    /* Generic keys and x86 (arch-local) keys. */
    struct fw_cfg_item items[2][FW_CFG_NUM_KEYS];
    char file_names[FW_CFG_MAX_FILES][FW_CFG_MAX_FILE_NAME];
    unsigned nr_files;
    GArray *e820; /* struct e820_range */

    /* Guest-visible state. */
    uint16_t selector;
    uint32_t offset;
    uint64_t dma_address;
};

static const struct vmstate_field fw_cfg_fields[] = {
    VMSTATE_U16(struct fw_cfg, selector),
    VMSTATE_U32(struct fw_cfg, offset),
    VMSTATE_U64(struct fw_cfg, dma_address),
    VMSTATE_END,
};

const struct vmstate_desc fw_cfg_vmstate = {
    .name = "fw_cfg",
    .version = 1,
    .fields = fw_cfg_fields,
};

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static struct fw_cfg_item *item_for_key(struct fw_cfg *fw, uint16_t key)
{
    unsigned index = key & FW_CFG_ENTRY_MASK;
    if (index >= FW_CFG_NUM_KEYS)
        return NULL;
    struct fw_cfg_item *item = &fw->items[(key & FW_CFG_ARCH_LOCAL) ? 1 : 0][index];
    return item->data ? item : NULL;
}

static void set_item(struct fw_cfg *fw, uint16_t key, const void *data, size_t len, bool writable)
{
    unsigned index = key & FW_CFG_ENTRY_MASK;
    g_return_if_fail(index < FW_CFG_NUM_KEYS);
    struct fw_cfg_item *item = &fw->items[(key & FW_CFG_ARCH_LOCAL) ? 1 : 0][index];
    g_free(item->data);
    /* An empty item still exists (its key is valid), so keep a buffer. */
    item->data = g_malloc0(len ? len : 1);
    if (len)
        memcpy(item->data, data, len);
    item->len = (uint32_t)len;
    item->writable = writable;
}

void fw_cfg_add_bytes(struct fw_cfg *fw, uint16_t key, const void *data, size_t len)
{
    set_item(fw, key, data, len, false);
}

void fw_cfg_add_u16(struct fw_cfg *fw, uint16_t key, uint16_t value)
{
    uint8_t b[2];
    put_le(b, value, 2);
    fw_cfg_add_bytes(fw, key, b, 2);
}

void fw_cfg_add_u32(struct fw_cfg *fw, uint16_t key, uint32_t value)
{
    uint8_t b[4];
    put_le(b, value, 4);
    fw_cfg_add_bytes(fw, key, b, 4);
}

void fw_cfg_add_u64(struct fw_cfg *fw, uint16_t key, uint64_t value)
{
    uint8_t b[8];
    put_le(b, value, 8);
    fw_cfg_add_bytes(fw, key, b, 8);
}

static int compare_dir_entries(const void *a, const void *b)
{
    return strncmp((const char *)a + 8, (const char *)b + 8, FW_CFG_MAX_FILE_NAME);
}

/* The directory lists files sorted by name, as QEMU does; each entry
 * carries its own key, so the order is only cosmetic. */
static void rebuild_directory(struct fw_cfg *fw)
{
    size_t len = 4 + (size_t)fw->nr_files * FW_CFG_DIR_ENTRY;
    uint8_t *dir = g_malloc0(len);
    put_be32(dir, fw->nr_files);
    for (unsigned i = 0; i < fw->nr_files; i++) {
        uint8_t *e = dir + 4 + (size_t)i * FW_CFG_DIR_ENTRY;
        uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + i);
        put_be32(e, fw->items[0][key].len);
        put_be16(e + 4, key);
        memcpy(e + 8, fw->file_names[i], FW_CFG_MAX_FILE_NAME);
    }
    qsort(dir + 4, fw->nr_files, FW_CFG_DIR_ENTRY, compare_dir_entries);
    fw_cfg_add_bytes(fw, FW_CFG_FILE_DIR, dir, len);
    g_free(dir);
}

static int find_file(struct fw_cfg *fw, const char *name)
{
    for (unsigned i = 0; i < fw->nr_files; i++) {
        if (strcmp(fw->file_names[i], name) == 0)
            return (int)i;
    }
    return -1;
}

static int add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len,
                    bool writable)
{
    if (strlen(name) >= FW_CFG_MAX_FILE_NAME || len > UINT32_MAX)
        return -1;
    int index = find_file(fw, name);
    if (index < 0) {
        if (fw->nr_files == FW_CFG_MAX_FILES)
            return -1;
        index = (int)fw->nr_files++;
        memset(fw->file_names[index], 0, FW_CFG_MAX_FILE_NAME);
        strcpy(fw->file_names[index], name);
    }
    uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + index);
    set_item(fw, key, data, len, writable);
    rebuild_directory(fw);
    return key;
}

int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len)
{
    return add_file(fw, name, data, len, false);
}

int fw_cfg_add_file_writable(struct fw_cfg *fw, const char *name, const void *data, size_t len)
{
    return add_file(fw, name, data, len, true);
}

const void *fw_cfg_file_data(struct fw_cfg *fw, const char *name, size_t *len)
{
    int index = find_file(fw, name);
    if (index < 0)
        return NULL;
    struct fw_cfg_item *item = &fw->items[0][FW_CFG_FILE_FIRST + index];
    if (len)
        *len = item->len;
    return item->data;
}

void fw_cfg_add_e820(struct fw_cfg *fw, uint64_t address, uint64_t length, enum e820_type type)
{
    struct e820_range range = {.address = address, .length = length, .type = type};
    g_array_append_val(fw->e820, range);

    uint8_t *table = g_malloc0((size_t)fw->e820->len * E820_ENTRY_SIZE);
    uint8_t *legacy = g_malloc0(4 + (size_t)fw->e820->len * E820_ENTRY_SIZE);
    uint32_t reservations = 0;
    for (guint i = 0; i < fw->e820->len; i++) {
        const struct e820_range *r = &g_array_index(fw->e820, struct e820_range, i);
        uint8_t entry[E820_ENTRY_SIZE];
        put_le(entry, r->address, 8);
        put_le(entry + 8, r->length, 8);
        put_le(entry + 16, r->type, 4);
        memcpy(table + i * E820_ENTRY_SIZE, entry, E820_ENTRY_SIZE);
        if (r->type != E820_RAM)
            memcpy(legacy + 4 + reservations++ * E820_ENTRY_SIZE, entry, E820_ENTRY_SIZE);
    }
    put_le(legacy, reservations, 4);
    fw_cfg_add_file(fw, "etc/e820", table, (size_t)fw->e820->len * E820_ENTRY_SIZE);
    fw_cfg_add_bytes(fw, FW_CFG_E820_TABLE, legacy, 4 + (size_t)reservations * E820_ENTRY_SIZE);
    g_free(table);
    g_free(legacy);
}

int fw_cfg_set_boot_order(struct fw_cfg *fw, const char *order)
{
    /* OpenFirmware paths in the form SeaBIOS builds for the devices it
     * finds (src/boot.c): the PIIX3 IDE function at 00:01.1 with channel
     * and drive, and the floppy controller behind the ISA bridge 00:01.0. */
    GString *list = g_string_new(NULL);
    int count = 0;
    for (const char *c = order; c && *c; c++) {
        const char *path = NULL;
        switch (*c) {
        case 'a':
            path = "/pci@i0cf8/isa@1/fdc@03f0/floppy@0";
            break;
        case 'b':
            path = "/pci@i0cf8/isa@1/fdc@03f0/floppy@1";
            break;
        case 'c':
            path = "/pci@i0cf8/ide@1,1/drive@0/disk@0";
            break;
        case 'd':
            path = "/pci@i0cf8/ide@1,1/drive@1/disk@0";
            break;
        default:
            continue;
        }
        if (count++)
            g_string_append_c(list, '\n');
        g_string_append(list, path);
    }
    /* The file ends with a NUL, as QEMU writes it. */
    fw_cfg_add_file(fw, "bootorder", list->str, list->len + 1);
    g_string_free(list, TRUE);
    return count;
}

/* ---- the port interface ---- */

static void select_key(struct fw_cfg *fw, uint16_t key)
{
    fw->selector = key;
    fw->offset = 0;
}

static uint8_t read_data_byte(struct fw_cfg *fw)
{
    struct fw_cfg_item *item = item_for_key(fw, fw->selector);
    if (!item || fw->offset >= item->len)
        return 0;
    return item->data[fw->offset++];
}

static uint32_t fw_cfg_io_read(void *opaque, uint16_t port, unsigned size)
{
    struct fw_cfg *fw = opaque;
    if (port != FW_CFG_PORT_DATA)
        return 0xffffffffu >> (32 - 8 * size); /* the selector is write-only */
    uint32_t value = 0;
    for (unsigned i = 0; i < size; i++)
        value |= (uint32_t)read_data_byte(fw) << (8 * i);
    return value;
}

static void fw_cfg_io_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct fw_cfg *fw = opaque;
    /* Writes to the data port have been ignored since QEMU 2.4; writable
     * items are written through DMA. */
    if (port == FW_CFG_PORT_SELECTOR)
        select_key(fw, (uint16_t)(size == 1 ? value & 0xff : value & 0xffff));
}

/* Zero-fills guest memory for a read past an item's end, skipping
 * unassigned pages so a huge length cannot stall the engine. */
static void dma_zero_fill(struct fw_cfg *fw, uint64_t address, uint64_t length)
{
    static const uint8_t zeros[GUEST_PAGE_SIZE];
    while (length > 0 && !(address >> 32)) {
        uint64_t chunk = GUEST_PAGE_SIZE - (address & (GUEST_PAGE_SIZE - 1));
        if (chunk > length)
            chunk = length;
        struct memory_page *page = memory_page(fw->mem, address);
        if (page && page->region)
            memory_write_buf(fw->mem, address, zeros, chunk);
        address += chunk;
        length -= chunk;
    }
}

static void dma_transfer(struct fw_cfg *fw)
{
    uint64_t desc = fw->dma_address;
    uint8_t raw[16];
    memory_read_buf(fw->mem, desc, raw, sizeof(raw));
    uint32_t control = get_be32(raw);
    uint64_t length = get_be32(raw + 4);
    uint64_t address = (uint64_t)get_be32(raw + 8) << 32 | get_be32(raw + 12);

    if (control & FW_CFG_DMA_CTL_SELECT)
        select_key(fw, (uint16_t)(control >> 16));

    enum { OP_NONE, OP_READ, OP_WRITE, OP_SKIP } op = OP_NONE;
    if (control & FW_CFG_DMA_CTL_READ)
        op = OP_READ;
    else if (control & FW_CFG_DMA_CTL_WRITE)
        op = OP_WRITE;
    else if (control & FW_CFG_DMA_CTL_SKIP)
        op = OP_SKIP;
    else
        length = 0;

    bool error = false;
    struct fw_cfg_item *item = item_for_key(fw, fw->selector);
    if (length > 0 && (!item || fw->offset >= item->len)) {
        /* Past the end: reads see zeros, writes fail, skips do nothing. */
        if (op == OP_READ)
            dma_zero_fill(fw, address, length);
        else if (op == OP_WRITE)
            error = true;
        length = 0;
    }
    if (length > 0) {
        uint64_t avail = item->len - fw->offset;
        uint64_t chunk = length < avail ? length : avail;
        if (op == OP_READ) {
            memory_write_buf(fw->mem, address, item->data + fw->offset, chunk);
        } else if (op == OP_WRITE) {
            if (item->writable)
                memory_read_buf(fw->mem, address, item->data + fw->offset, chunk);
            else
                error = true;
        }
        fw->offset += (uint32_t)chunk;
        if (op == OP_READ && length > chunk)
            dma_zero_fill(fw, address + chunk, length - chunk);
        else if (op == OP_WRITE && length > chunk)
            error = true;
    }

    uint8_t done[4];
    put_be32(done, error ? FW_CFG_DMA_CTL_ERROR : 0);
    memory_write_buf(fw->mem, desc, done, sizeof(done));
}

static uint32_t fw_cfg_dma_read(void *opaque, uint16_t port, unsigned size)
{
    (void)opaque;
    static const char signature[] = FW_CFG_DMA_SIGNATURE;
    unsigned offset = port - FW_CFG_PORT_DMA;
    uint32_t value = 0;
    for (unsigned i = 0; i < size && offset + i < 8; i++)
        value |= (uint32_t)(uint8_t)signature[offset + i] << (8 * i);
    return value;
}

static void fw_cfg_dma_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct fw_cfg *fw = opaque;
    if (size != 4)
        return;
    /* The guest stores each half big-endian; a little-endian port access
     * therefore arrives byte-swapped. */
    uint32_t half = GUINT32_SWAP_LE_BE(value);
    if (port == FW_CFG_PORT_DMA) {
        fw->dma_address = (uint64_t)half << 32;
    } else if (port == FW_CFG_PORT_DMA_LOW) {
        fw->dma_address |= half;
        dma_transfer(fw);
        /* The next transfer starts from a clean address: SeaBIOS writes
         * only the low half. */
        fw->dma_address = 0;
    }
}

struct fw_cfg *fw_cfg_create(struct ioport_bus *io, struct memory *mem)
{
    struct fw_cfg *fw = g_new0(struct fw_cfg, 1);
    fw->io = io;
    fw->mem = mem;
    fw->e820 = g_array_new(FALSE, FALSE, sizeof(struct e820_range));
    fw_cfg_add_bytes(fw, FW_CFG_SIGNATURE, "QEMU", 4);
    fw_cfg_add_u32(fw, FW_CFG_ID, FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA);
    rebuild_directory(fw);
    ioport_register(io, FW_CFG_PORT_SELECTOR, 2, "fw_cfg", fw_cfg_io_read, fw_cfg_io_write, fw);
    ioport_register(io, FW_CFG_PORT_DMA, 8, "fw_cfg-dma", fw_cfg_dma_read, fw_cfg_dma_write, fw);
    return fw;
}

void fw_cfg_destroy(struct fw_cfg *fw)
{
    if (!fw)
        return;
    ioport_unregister(fw->io, FW_CFG_PORT_SELECTOR, 2);
    ioport_unregister(fw->io, FW_CFG_PORT_DMA, 8);
    for (int a = 0; a < 2; a++) {
        for (int k = 0; k < FW_CFG_NUM_KEYS; k++)
            g_free(fw->items[a][k].data);
    }
    g_array_free(fw->e820, TRUE);
    g_free(fw);
}

void fw_cfg_reset(void *opaque)
{
    struct fw_cfg *fw = opaque;
    select_key(fw, FW_CFG_SIGNATURE);
    fw->dma_address = 0;
}
