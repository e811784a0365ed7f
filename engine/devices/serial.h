/* A 16550A UART: COM1 at 0x3f8 (IRQ4), COM2 at 0x2f8 (IRQ3), COM3 at 0x3e8
 * (IRQ4) and COM4 at 0x2e8 (IRQ3) on a PC. */
#ifndef VIVARIUM_SERIAL_H
#define VIVARIUM_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "irq.h"
#include "vmstate.h"

struct ioport_bus;
struct vclock;
struct serial;

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM2_BASE 0x2f8
#define SERIAL_COM3_BASE 0x3e8
#define SERIAL_COM4_BASE 0x2e8
#define SERIAL_FIFO_SIZE 16

/* Claims eight ports at base. Transmitted bytes go to out (NULL: nowhere).
 * irq is driven only while the guest sets MCR OUT2, as on a PC serial card;
 * COM1/COM3 (and COM2/COM4) share a line correctly as long as only one of
 * the pair has OUT2 set, which is also the rule on real ISA hardware. */
struct serial *serial_create(struct ioport_bus *io, uint16_t base, struct vclock *clock,
                             const struct irq_line *irq, FILE *out);
void serial_destroy(struct serial *serial);

/* Master reset; the machine reset hook. */
void serial_reset(void *serial);
/* After a snapshot restore: re-arms the receive FIFO timeout. */
void serial_post_load(void *serial);

/* Bytes arriving on the serial input, on the vCPU thread. Returns how many
 * were taken: no more than the receive FIFO has room for, so that nothing
 * from the host is lost; the rest should be offered again when the ready
 * callback runs. In loopback mode the input is disconnected and every byte
 * is taken and dropped, as on the chip. */
size_t serial_receive(struct serial *serial, const uint8_t *buf, size_t len);

/* Called (on the vCPU thread) when the guest has read from a receive FIFO
 * that earlier refused bytes. */
void serial_set_rx_ready_callback(struct serial *serial, void (*fn)(void *opaque), void *opaque);

extern const struct vmstate_desc serial_vmstate;

#endif
