/* QEMU's firmware configuration device (fw_cfg) as SeaBIOS and Linux use it
 * on x86: selector port 0x510, data port 0x511, DMA address ports
 * 0x514-0x51b. It hands the firmware numbered items (RAM size, CPU count,
 * boot menu) and named files (the e820 map, the boot order, option ROMs).
 */
#ifndef VIVARIUM_FW_CFG_H
#define VIVARIUM_FW_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../e820.h"
#include "../ioport.h"
#include "../memory.h"
#include "../vmstate.h"

/* Item keys (QEMU docs/specs/fw_cfg.txt, include/standard-headers/linux/
 * qemu_fw_cfg.h). Multi-byte values are little-endian unless noted. */
enum fw_cfg_key {
    FW_CFG_SIGNATURE = 0x00, /* "QEMU" */
    FW_CFG_ID = 0x01,        /* u32 feature bits */
    FW_CFG_UUID = 0x02,      /* 16 bytes */
    FW_CFG_RAM_SIZE = 0x03,  /* u64 */
    FW_CFG_NOGRAPHIC = 0x04,
    FW_CFG_NB_CPUS = 0x05, /* u16 */
    FW_CFG_MACHINE_ID = 0x06,
    FW_CFG_KERNEL_ADDR = 0x07,
    FW_CFG_KERNEL_SIZE = 0x08,
    FW_CFG_KERNEL_CMDLINE = 0x09,
    FW_CFG_INITRD_ADDR = 0x0a,
    FW_CFG_INITRD_SIZE = 0x0b,
    FW_CFG_BOOT_DEVICE = 0x0c,
    FW_CFG_NUMA = 0x0d,      /* u64 node count, then per-CPU and per-node u64s */
    FW_CFG_BOOT_MENU = 0x0e, /* u16: SeaBIOS's "etc/show-boot-menu" */
    FW_CFG_MAX_CPUS = 0x0f,  /* u16 */
    FW_CFG_KERNEL_ENTRY = 0x10,
    FW_CFG_KERNEL_DATA = 0x11,
    FW_CFG_INITRD_DATA = 0x12,
    FW_CFG_CMDLINE_ADDR = 0x13,
    FW_CFG_CMDLINE_SIZE = 0x14,
    FW_CFG_CMDLINE_DATA = 0x15,
    FW_CFG_SETUP_ADDR = 0x16,
    FW_CFG_SETUP_SIZE = 0x17,
    FW_CFG_SETUP_DATA = 0x18,
    FW_CFG_FILE_DIR = 0x19, /* big-endian directory of the named files */
    FW_CFG_FILE_FIRST = 0x20,
    FW_CFG_WRITE_CHANNEL = 0x4000, /* selector flag */
    FW_CFG_ARCH_LOCAL = 0x8000,    /* selector flag: x86-specific keys */
    FW_CFG_ACPI_TABLES = 0x8000,
    FW_CFG_SMBIOS_ENTRIES = 0x8001,
    FW_CFG_IRQ0_OVERRIDE = 0x8002,
    FW_CFG_E820_TABLE = 0x8003, /* u32 count, then reservations */
};

#define FW_CFG_ID_TRADITIONAL 0x01
#define FW_CFG_ID_DMA         0x02

#define FW_CFG_DMA_CTL_ERROR  0x01
#define FW_CFG_DMA_CTL_READ   0x02
#define FW_CFG_DMA_CTL_SKIP   0x04
#define FW_CFG_DMA_CTL_SELECT 0x08
#define FW_CFG_DMA_CTL_WRITE  0x10

#define FW_CFG_MAX_FILE_NAME 56 /* including the terminating NUL */

struct fw_cfg;

/* Claims ports 0x510-0x511 and 0x514-0x51b; DMA transfers go to mem. The
 * signature, ID and file directory items exist from the start. */
struct fw_cfg *fw_cfg_create(struct ioport_bus *io, struct memory *mem);
void fw_cfg_destroy(struct fw_cfg *fw);

/* The guest-visible state (selection, offset, DMA address), for snapshots.
 * The items themselves are configuration: the machine recreates them. */
extern const struct vmstate_desc fw_cfg_vmstate;
void fw_cfg_reset(void *fw);

/* Numbered items. The data is copied. Replaces an existing item. */
void fw_cfg_add_bytes(struct fw_cfg *fw, uint16_t key, const void *data, size_t len);
void fw_cfg_add_u16(struct fw_cfg *fw, uint16_t key, uint16_t value);
void fw_cfg_add_u32(struct fw_cfg *fw, uint16_t key, uint32_t value);
void fw_cfg_add_u64(struct fw_cfg *fw, uint16_t key, uint64_t value);

/* A named file, listed in FW_CFG_FILE_DIR. The data is copied. Adding a
 * name again replaces its contents and keeps its key. Returns the key, or
 * -1 if the name is too long or the key space is full. */
int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len);
/* The same, for a file the guest may overwrite through DMA writes; the
 * guest's bytes are read back with fw_cfg_file_data(). */
int fw_cfg_add_file_writable(struct fw_cfg *fw, const char *name, const void *data, size_t len);
const void *fw_cfg_file_data(struct fw_cfg *fw, const char *name, size_t *len);

/* Appends a range to the memory map handed to the firmware, both as the
 * "etc/e820" file (RAM and reservations; what SeaBIOS reads) and, for
 * reservations, the legacy FW_CFG_E820_TABLE item. */
void fw_cfg_add_e820(struct fw_cfg *fw, uint64_t address, uint64_t length, enum e820_type type);

/* The "bootorder" file from a boot order string of drive letters, as
 * QEMU's -boot order=: a/b floppy 0/1, c the first hard disk (IDE primary
 * master), d the CD-ROM (IDE secondary master). Unknown letters are
 * skipped. Returns the number of devices written. */
int fw_cfg_set_boot_order(struct fw_cfg *fw, const char *order);

#endif
