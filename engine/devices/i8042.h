/* The i8042 keyboard controller (ports 0x60 and 0x64) with a PS/2 keyboard
 * on its first port and a PS/2 mouse (with the IntelliMouse wheel) on its
 * auxiliary port. */
#ifndef VIVARIUM_I8042_H
#define VIVARIUM_I8042_H

#include <stdbool.h>

#include "../ioport.h"
#include "../irq.h"
#include "../vclock.h"
#include "../vmstate.h"

struct i8042;

/* Lines the controller drives; any may be NULL (unconnected). */
struct i8042_lines {
    const struct irq_line *kbd_irq;   /* IRQ1, while keyboard data waits */
    const struct irq_line *mouse_irq; /* IRQ12, while mouse data waits */
    const struct irq_line *a20;       /* output port bit 1: high = A20 open */
    const struct irq_line *reset;     /* pulsed when the guest resets the system */
};

/* Claims ports 0x60 and 0x64. clock drives the keyboard's typematic
 * repeat; without one, held keys do not repeat. */
struct i8042 *i8042_create(struct ioport_bus *io, struct vclock *clock,
                           const struct i8042_lines *lines);
void i8042_destroy(struct i8042 *kbc);

extern const struct vmstate_desc i8042_vmstate;
void i8042_reset(void *kbc);
/* After a snapshot restore: a key held when the snapshot was taken is not
 * held now, so it stops repeating. */
void i8042_post_load(void *kbc);

/* Input from the front ends, called on the vCPU thread (post it with
 * machine_post()).
 *
 * A key is named by its "qnum", the numbering of QEMU's input layer and
 * D-Bus display protocol: the PC AT set-1 make code, with 0x80 added for
 * keys whose set-1 code has the 0xe0 prefix (Right Ctrl = 0x9d, Up = 0xc8).
 * Pause is 0xc6 and Print Screen 0xb7, as in QEMU. The keyboard sends the
 * codes of the scan code set the guest chose, including the prefix and
 * fake-shift sequences of Pause and Print Screen, and repeats the last held
 * key at the typematic rate the guest set: front ends must pass only real
 * presses and releases, not the host's autorepeat. */
void i8042_key_event(struct i8042 *kbc, unsigned qnum, bool down);

/* Mouse buttons, the order of the PS/2 and IntelliMouse packet bits. */
enum {
    I8042_BUTTON_LEFT = 1u << 0,
    I8042_BUTTON_RIGHT = 1u << 1,
    I8042_BUTTON_MIDDLE = 1u << 2,
    I8042_BUTTON_SIDE = 1u << 3,  /* fourth button (IntelliMouse Explorer) */
    I8042_BUTTON_EXTRA = 1u << 4, /* fifth button (IntelliMouse Explorer) */
};

/* Relative motion in screen directions (dx right, dy down), dz wheel
 * clicks (positive: towards the user, i.e. scrolling down), and the
 * buttons now held. Large motion is split over several packets; motion the
 * queue cannot take yet is kept and sent when the guest has read. */
void i8042_mouse_event(struct i8042 *kbc, int dx, int dy, int dz, unsigned buttons);

#endif
