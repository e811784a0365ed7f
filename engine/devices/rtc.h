/* The MC146818 real-time clock and its 128 bytes of CMOS memory, on ports
 * 0x70 (index, and the NMI mask in bit 7) and 0x71 (data), interrupting on
 * IRQ8. */
#ifndef VIVARIUM_RTC_H
#define VIVARIUM_RTC_H

#include <stdbool.h>
#include <stdint.h>

#include "irq.h"
#include "vmstate.h"

struct ioport_bus;
struct vclock;
struct rtc;

#define RTC_CMOS_SIZE 128

/* Claims ports 0x70 and 0x71. The clock starts at start_seconds (seconds
 * since 1970-01-01 00:00, in whatever zone the guest should see) and then
 * advances with the virtual clock. irq8 receives the interrupt output,
 * high while register C's IRQF bit is set. */
struct rtc *rtc_create(struct ioport_bus *io, struct vclock *clock, const struct irq_line *irq8,
                       int64_t start_seconds);
void rtc_destroy(struct rtc *rtc);

/* The RESET pin: interrupt enables and flags are cleared; time and CMOS
 * memory are kept, as the battery keeps them. The machine reset hook. */
void rtc_reset(void *rtc);
/* After a snapshot restore: re-arms the periodic, alarm and update timer. */
void rtc_post_load(void *rtc);

/* CMOS bytes as the guest sees them at index 0-127 (the firmware's
 * configuration bytes: memory sizes, drives, boot order). Writes to the
 * clock registers (0x00-0x0d) behave as guest writes. */
void rtc_set_cmos(struct rtc *rtc, unsigned index, uint8_t value);
uint8_t rtc_get_cmos(struct rtc *rtc, unsigned index);

/* Whether the guest has masked NMI through port 0x70 bit 7. */
bool rtc_nmi_masked(const struct rtc *rtc);

extern const struct vmstate_desc rtc_vmstate;

#endif
