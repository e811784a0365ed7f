/* System control port A, as in the PIIX 82371SB datasheet (section 4.1.7,
 * port 92h): bit 1 gates address line 20 without going through the
 * keyboard controller, and a 0-to-1 transition of bit 0 resets the CPU.
 * The other bits read back as written. */
#include "port92.h"

#include <glib.h>
#include <stdint.h>

#include "ioport.h"

#define PORT92           0x92
#define PORT92_FAST_INIT 0x01
#define PORT92_A20       0x02

struct port92 {
    uint8_t value;
    struct port92_outputs outputs;
};

static const struct vmstate_field port92_fields[] = {
    VMSTATE_U8(struct port92, value),
    VMSTATE_END,
};

const struct vmstate_desc port92_vmstate = {
    .name = "port92",
    .version = 1,
    .fields = port92_fields,
};

static void port92_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct port92 *p = opaque;
    (void)port;
    (void)size;
    uint8_t old = p->value;
    p->value = value & 0xff;
    if ((old ^ p->value) & PORT92_A20) {
        if (p->outputs.set_a20)
            p->outputs.set_a20(p->outputs.opaque, p->value & PORT92_A20);
    }
    if ((p->value & PORT92_FAST_INIT) && !(old & PORT92_FAST_INIT)) {
        if (p->outputs.reset)
            p->outputs.reset(p->outputs.opaque);
    }
}

static uint32_t port92_read(void *opaque, uint16_t port, unsigned size)
{
    struct port92 *p = opaque;
    (void)port;
    (void)size;
    return p->value;
}

/* A machine reset opens the A20 gate (the CPU's reset state has it open),
 * so the port shows it open too. */
void port92_reset(void *opaque)
{
    struct port92 *p = opaque;
    p->value = PORT92_A20;
}

struct port92 *port92_create(struct ioport_bus *io, const struct port92_outputs *outputs)
{
    struct port92 *p = g_new0(struct port92, 1);
    if (outputs)
        p->outputs = *outputs;
    port92_reset(p);
    ioport_register(io, PORT92, 1, "port92", port92_read, port92_write, p);
    return p;
}

void port92_destroy(struct port92 *p)
{
    g_free(p);
}
