/* The PC: a CPU backend, the physical memory map, the port bus, the virtual
 * clock and the devices, built from a machine_config. The vCPU thread owns
 * all of it; other threads reach it only through machine_post() and the
 * few functions marked thread-safe. */
#ifndef VIVARIUM_MACHINE_H
#define VIVARIUM_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <glib.h>

#include "cpu.h"
#include "ioport.h"
#include "irq.h"
#include "memory.h"
#include "vclock.h"
#include "vmstate.h"

struct block_device;

#define MACHINE_MAX_DRIVES 8

/* Process exit statuses of vivarium-engine that are not the guest's own.
 * The guest's (via the debug-exit port) are always odd; these are even. */
enum machine_exit_status {
    MACHINE_EXIT_POWER_OFF = 0,
    MACHINE_EXIT_USAGE = 2,     /* an option, file or value was refused at start */
    MACHINE_EXIT_ERROR = 4,     /* the engine could not go on */
    MACHINE_EXIT_RESET = 8,     /* reset or triple fault under --no-reboot */
    MACHINE_EXIT_TIMEOUT = 124, /* --timeout expired, as timeout(1) reports it */
};

enum drive_kind { DRIVE_DISK, DRIVE_CDROM, DRIVE_FLOPPY };

struct drive_config {
    enum drive_kind kind;
    char *path;
    bool readonly;
    /* IDE unit 0-3 (hda-hdd; a CD-ROM is usually 2, hdc) or floppy 0-1. */
    unsigned unit;
};

/* The guest RAM sizes the machine accepts: below 3 GiB, the PCI hole. */
#define MACHINE_RAM_MIN (1ull << 20)
#define MACHINE_RAM_MAX (3072ull << 20)

struct machine_config {
    uint64_t ram_size;
    char *accel;     /* "auto", "kvm", "dbt", "interp" */
    char *bios_path; /* the system firmware, mapped below 4 GiB and 1 MiB */
    char *vgabios_path;
    char *kernel_path; /* direct kernel boot: multiboot or Linux bzImage */
    char *initrd_path;
    char *append;
    char *boot_order;   /* e.g. "cda": CD, hard disk, floppy */
    char *name;         /* the VM's name, for the sound stream and titles */
    char *audio_output; /* "pulse" or "none" */
    struct drive_config drives[MACHINE_MAX_DRIVES];
    unsigned nr_drives;
    bool no_reboot;     /* a triple fault or reset request ends the run */
    bool start_stopped; /* wait, powered off, for machine_start() */
    bool trace;
    FILE *serial_out;   /* COM1 output, or NULL */
    FILE *debugcon_out; /* port 0xe9 output, or NULL */
    FILE *firmware_log; /* port 0x402 output (SeaBIOS's log), or NULL */
};

/* One registered device, for reset, snapshots and the state dump. */
struct machine_device {
    const char *name;
    void *state;
    const struct vmstate_desc *vmstate;
    void (*reset)(void *state);
    /* Called after a snapshot restored the state, e.g. to re-arm timers or
     * redraw; optional. */
    void (*post_load)(void *state);
};

/* Device memory saved whole in snapshots, next to RAM: video memory, a ROM
 * copy that its BIOS writes to. */
struct machine_memory_block {
    const char *name;
    uint8_t *host;
    size_t size;
};

enum machine_run_state { MACHINE_RUNNING, MACHINE_PAUSED, MACHINE_STOPPED };

/* Mouse buttons as a mask, in the bit order of the PS/2 protocol. */
enum { MOUSE_BUTTON_LEFT = 1, MOUSE_BUTTON_RIGHT = 2, MOUSE_BUTTON_MIDDLE = 4 };

/* Where keyboard and mouse input from the front ends goes: the machine's
 * keyboard controller registers itself here. Keys are qnum codes
 * (display/keymap.h). */
struct machine_input {
    void (*key)(void *opaque, unsigned qnum, bool down);
    void (*pointer)(void *opaque, int dx, int dy, int dz, unsigned buttons);
    void *opaque;
};

typedef void (*machine_work_fn)(struct machine *m, void *data);

struct machine {
    struct machine_config *config;
    struct memory mem;
    struct ioport_bus io;
    struct vclock clock;
    struct cpu cpu;

    GArray *devices;       /* struct machine_device */
    GArray *memory_blocks; /* struct machine_memory_block */

    /* Work posted by other threads, run on the vCPU thread between
     * instructions. */
    GAsyncQueue *work;
    GMutex wait_lock;
    GCond wait_cond;
    bool wakeup; /* protected by wait_lock */

    volatile int quit;
    int exit_status;
    bool reset_requested;

    /* Running, paused or powered off; changed only on the vCPU thread, and
     * reported through run_state_changed (called on the vCPU thread). */
    enum machine_run_state run_state;
    void (*run_state_changed)(struct machine *m, enum machine_run_state state, void *opaque);
    void *run_state_opaque;

    struct memory_region ram_region;
    struct memory_region bios_high;
    struct memory_region bios_low;
    uint8_t *bios_image;
    size_t bios_size;
    bool cpu_ready;

    struct machine_input input;

    struct debug_exit *debug_exit;
    struct debugcon *debugcon;
    struct debugcon *firmware_log;
    struct display *display; /* the guest screen, painted by the VGA */
    struct vga *vga;

    /* The PC chipset. */
    struct irq_line cpu_intr; /* the PIC's output to the CPU's INTR pin */
    struct pic *pic;
    struct pit *pit;
    struct rtc *rtc;
    struct isa_dma *dma;
    struct serial *serial[4]; /* COM1-COM4 */
    struct port92 *port92;

    /* Signals devices send to the machine itself: the A20 gate (level) and
     * a system reset request (a rising edge). */
    struct irq_line a20_line;
    struct irq_line reset_line;
    struct pci_bus *pci;
    struct i440fx *i440fx;
    struct piix3 *piix3;
    struct fw_cfg *fw_cfg;
    struct i8042 *i8042;
    bool a20_from_kbc;
    bool a20_from_port92;
    struct audio *audio;
    struct vtimer audio_timer;
    struct pcspk *pcspk;
    /* The images in the removable drives: fda, fdb, cdrom (NULL: empty). */
    char *media[3];
    bool has_drive[3];
    struct ide_controller *ide;
    struct ide_pci *ide_pci;
    struct vga_pci *vga_pci;
    struct fdc *fdc;
    /* Writable hard disks by IDE unit, as block proxies (block.h) that
     * snapshots move from image to image; NULL where there is none. Owned
     * by the IDE controller. */
    struct block_device *disks[4];
};

/* Builds the PC; returns NULL with *error set on failure. */
struct machine *machine_create(struct machine_config *config, GError **error);
void machine_destroy(struct machine *m);

void machine_add_device(struct machine *m, const char *name, void *state,
                        const struct vmstate_desc *vmstate, void (*reset)(void *state));

/* Registers device memory for snapshots; the block must live as long as
 * the machine. */
void machine_add_memory_block(struct machine *m, const char *name, void *host, size_t size);

/* Sets the post_load hook of the device registered with this state. */
void machine_set_post_load(struct machine *m, void *state, void (*post_load)(void *state));

/* Runs the vCPU loop on the calling thread until the machine quits; returns
 * the exit status. */
int machine_run(struct machine *m);

/* Ends the run with the given process exit status (debug-exit, power off). */
void machine_request_exit(struct machine *m, int status);
/* A system reset (keyboard controller pulse, port 0xcf9, triple fault). */
void machine_request_reset(struct machine *m);

/* Run-state changes, on the vCPU thread (from posted work or devices).
 * Powering on a stopped machine starts it from its reset state; powering off
 * resets it and keeps RAM and disks as they are. */
void machine_power_on(struct machine *m);
void machine_power_off(struct machine *m);
void machine_pause(struct machine *m);
void machine_resume(struct machine *m);

/* Input from the front ends (SDL, VNC, D-Bus), on the vCPU thread; dropped
 * when the machine has no keyboard or mouse. Relative motion, dy positive
 * downwards; dz positive towards the user. */
void machine_key_event(struct machine *m, unsigned qnum, bool down);
void machine_pointer_event(struct machine *m, int dx, int dy, int dz, unsigned buttons);

/* Thread-safe forms, for front-end threads: queued to the vCPU thread. */
void machine_post_key_event(struct machine *m, unsigned qnum, bool down);
void machine_post_pointer_event(struct machine *m, int dx, int dy, int dz, unsigned buttons);

/* Removable media: drive is "fda", "fdb" or "cdrom"; path NULL ejects.
 * Fails with G_FILE_ERROR_NOENT when the machine has no such drive, and
 * with a message when the image cannot be used. vCPU thread. */
bool machine_change_media(struct machine *m, const char *drive, const char *path, GError **error);
/* What a removable drive holds: its image's path, "" when empty, NULL when
 * the machine has no such drive. */
const char *machine_media_path(struct machine *m, const char *drive);
/* Puts an image already opened into a removable drive (bd NULL ejects);
 * the drive owns bd once this succeeds. force: even when the guest has
 * locked the CD-ROM's tray (a snapshot restore). vCPU thread. */
bool machine_insert_media(struct machine *m, const char *drive, const char *path,
                          struct block_device *bd, bool force, GError **error);
/* The image in floppy drive "fda" or "fdb", NULL when empty or absent; the
 * drive keeps owning it. For snapshots, which save a floppy's contents. */
struct block_device *machine_floppy_device(struct machine *m, const char *drive);

/* Opens or closes the A20 gate (port 0x92, the i8042 output port). */
void machine_set_a20(struct machine *m, bool enabled);

/* Work that powers the machine off and ends the run (a window closed). */
void machine_work_quit(struct machine *m, void *data);

/* Thread-safe: queues fn to run on the vCPU thread and wakes it. */
void machine_post(struct machine *m, machine_work_fn fn, void *data);

/* Prints every device's state table. */
void machine_dump_state(struct machine *m, FILE *out);

#endif
