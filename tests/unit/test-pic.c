/* Register-level tests of the 8259A pair, driven through the port bus. */
#include <glib.h>

#include "devices/pic.h"
#include "ioport.h"

struct fixture {
    struct ioport_bus io;
    struct pic *pic;
    bool intr;
    int intr_changes;
};

static void intr_changed(void *opaque, int n, bool level)
{
    struct fixture *f = opaque;
    (void)n;
    f->intr = level;
    f->intr_changes++;
}

static void out8(struct fixture *f, uint16_t port, uint8_t value)
{
    ioport_write(&f->io, port, 1, value);
}

static uint8_t in8(struct fixture *f, uint16_t port)
{
    return (uint8_t)ioport_read(&f->io, port, 1);
}

/* The initialization a PC BIOS performs: vectors 0x08 and 0x70, cascade on
 * IR2, 8086 mode, optionally automatic EOI. */
static void init_pic_pair(struct fixture *f, bool auto_eoi)
{
    out8(f, 0x20, 0x11);
    out8(f, 0x21, 0x08);
    out8(f, 0x21, 0x04);
    out8(f, 0x21, auto_eoi ? 0x03 : 0x01);
    out8(f, 0xa0, 0x11);
    out8(f, 0xa1, 0x70);
    out8(f, 0xa1, 0x02);
    out8(f, 0xa1, 0x01);
    out8(f, 0x21, 0x00);
    out8(f, 0xa1, 0x00);
}

static struct fixture *fixture_new(void)
{
    struct fixture *f = g_new0(struct fixture, 1);
    ioport_bus_init(&f->io);
    struct irq_line intr = {.handler = intr_changed, .opaque = f};
    f->pic = pic_create(&f->io, &intr);
    init_pic_pair(f, false);
    return f;
}

static void fixture_free(struct fixture *f)
{
    pic_destroy(f->pic);
    g_free(f);
}

static void pulse(struct fixture *f, int irq)
{
    irq_pulse(pic_irq_line(f->pic, irq));
}

static void test_priority_and_eoi(void)
{
    struct fixture *f = fixture_new();
    g_assert_false(f->intr);
    pulse(f, 3);
    pulse(f, 1);
    g_assert_true(f->intr);
    g_assert_cmphex(in8(f, 0x20), ==, 0x0a); /* IRR */

    /* IRQ1 outranks IRQ3. */
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x09);
    out8(f, 0x20, 0x0b); /* OCW3: read ISR */
    g_assert_cmphex(in8(f, 0x20), ==, 0x02);
    /* IRQ3 waits behind the in-service IRQ1. */
    g_assert_false(f->intr);

    /* A higher-priority request nests. */
    pulse(f, 0);
    g_assert_true(f->intr);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x08);
    g_assert_cmphex(in8(f, 0x20), ==, 0x03);

    /* Non-specific EOI retires the highest in service: IRQ0. */
    out8(f, 0x20, 0x20);
    g_assert_cmphex(in8(f, 0x20), ==, 0x02);
    g_assert_false(f->intr);
    out8(f, 0x20, 0x20);
    g_assert_cmphex(in8(f, 0x20), ==, 0x00);
    g_assert_true(f->intr);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x0b);

    /* Specific EOI names its level. */
    out8(f, 0x20, 0x63);
    g_assert_cmphex(in8(f, 0x20), ==, 0x00);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, -1);
    fixture_free(f);
}

static void test_mask_and_cascade(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x21, 0xff & ~0x04); /* only the cascade unmasked */
    g_assert_cmphex(in8(f, 0x21), ==, 0xfb);
    pulse(f, 5);
    g_assert_false(f->intr);

    /* IRQ12 on the slave reaches the CPU through IR2. */
    pulse(f, 12);
    g_assert_true(f->intr);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x74);
    out8(f, 0x20, 0x0b);
    g_assert_cmphex(in8(f, 0x20), ==, 0x04);
    out8(f, 0xa0, 0x0b);
    g_assert_cmphex(in8(f, 0xa0), ==, 0x10);
    out8(f, 0xa0, 0x20);
    out8(f, 0x20, 0x20);
    g_assert_cmphex(in8(f, 0x20), ==, 0x00);

    /* Unmasking lets the held IRQ5 through. */
    out8(f, 0x21, 0x00);
    g_assert_true(f->intr);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x0d);

    /* Line 2 is routed to IRQ9, as on the AT bus. */
    out8(f, 0x20, 0x20);
    pulse(f, 2);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x71);
    fixture_free(f);
}

static void test_spurious_irq(void)
{
    struct fixture *f = fixture_new();
    /* A level request that goes away drops INTR at once; an acknowledge
     * that comes anyway finds nothing and says so. */
    out8(f, 0x4d0, 0x20);
    const struct irq_line *irq5 = pic_irq_line(f->pic, 5);
    irq_raise(irq5);
    g_assert_true(f->intr);
    irq_lower(irq5);
    g_assert_false(f->intr);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, -1);
    fixture_free(f);

    /* The slave's request vanishing after the master latched IR2: the
     * slave answers with its IRQ15 vector and only the master's IR2 is in
     * service. */
    f = fixture_new();
    out8(f, 0x4d1, 0x02); /* IRQ9 level triggered */
    const struct irq_line *irq9 = pic_irq_line(f->pic, 9);
    irq_raise(irq9);
    out8(f, 0xa1, 0x02);    /* mask IRQ9 on the slave: its output falls */
    g_assert_true(f->intr); /* but the master's edge-latched IR2 remains */
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x77);
    out8(f, 0x20, 0x0b);
    g_assert_cmphex(in8(f, 0x20), ==, 0x04);
    out8(f, 0xa0, 0x0b);
    g_assert_cmphex(in8(f, 0xa0), ==, 0x00);
    fixture_free(f);
}

static void test_level_triggered_elcr(void)
{
    struct fixture *f = fixture_new();
    /* Bits for IRQ0-2, 8 and 13 do not exist. */
    out8(f, 0x4d0, 0xff);
    out8(f, 0x4d1, 0xff);
    g_assert_cmphex(in8(f, 0x4d0), ==, 0xf8);
    g_assert_cmphex(in8(f, 0x4d1), ==, 0xde);
    out8(f, 0x4d0, 0x00);
    out8(f, 0x4d1, 0x08); /* IRQ11 level */

    const struct irq_line *irq11 = pic_irq_line(f->pic, 11);
    irq_raise(irq11);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x73);
    out8(f, 0xa0, 0x20);
    out8(f, 0x20, 0x20);
    /* Still high after EOI: it requests again. */
    g_assert_true(f->intr);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x73);
    out8(f, 0xa0, 0x20);
    out8(f, 0x20, 0x20);
    /* The line falls after the master latched the cascade edge again: the
     * slave has nothing left and answers with its spurious IRQ15. */
    irq_lower(irq11);
    g_assert_true(f->intr);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x77);
    out8(f, 0x20, 0x20);
    g_assert_false(f->intr);

    /* An edge input requests once per rising edge, however long it
     * stays high. */
    const struct irq_line *irq10 = pic_irq_line(f->pic, 10);
    irq_raise(irq10);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x72);
    out8(f, 0xa0, 0x20);
    out8(f, 0x20, 0x20);
    g_assert_false(f->intr);
    irq_lower(irq10);
    fixture_free(f);
}

static void test_rotation(void)
{
    struct fixture *f = fixture_new();
    /* Rotate on non-specific EOI: the serviced level becomes lowest. */
    pulse(f, 1);
    pulse(f, 4);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x09);
    out8(f, 0x20, 0xa0);
    pulse(f, 1);
    /* IRQ1 is now the lowest priority, so IRQ4 goes first. */
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x0c);
    out8(f, 0x20, 0x20);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x09);
    out8(f, 0x20, 0x20);

    /* Set priority: IRQ5 lowest, so IRQ6 is highest and beats IRQ0. */
    out8(f, 0x20, 0xc5);
    pulse(f, 0);
    pulse(f, 6);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x0e);
    g_assert_false(f->intr); /* IRQ0 now ranks below the in-service IRQ6 */
    /* Rotate on specific EOI for IRQ6: IRQ7 becomes highest. */
    out8(f, 0x20, 0xe6);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x08);
    out8(f, 0x20, 0x20);
    fixture_free(f);
}

static void test_auto_eoi(void)
{
    struct fixture *f = g_new0(struct fixture, 1);
    ioport_bus_init(&f->io);
    struct irq_line intr = {.handler = intr_changed, .opaque = f};
    f->pic = pic_create(&f->io, &intr);
    init_pic_pair(f, true);
    pulse(f, 3);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x0b);
    out8(f, 0x20, 0x0b);
    g_assert_cmphex(in8(f, 0x20), ==, 0x00); /* nothing in service */
    pulse(f, 5);
    g_assert_true(f->intr);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x0d);
    fixture_free(f);
}

static void test_poll_mode(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x20, 0x0c); /* OCW3 poll */
    g_assert_cmphex(in8(f, 0x20), ==, 0x00);
    pulse(f, 6);
    out8(f, 0x20, 0x0c);
    g_assert_cmphex(in8(f, 0x21), ==, 0x86);
    /* The poll acknowledged IRQ6: it is in service. */
    out8(f, 0x20, 0x0b);
    g_assert_cmphex(in8(f, 0x20), ==, 0x40);
    /* Without a new poll command reads return registers again. */
    g_assert_cmphex(in8(f, 0x21), ==, 0x00);
    fixture_free(f);
}

static void test_special_mask_mode(void)
{
    struct fixture *f = fixture_new();
    pulse(f, 2 + 1); /* IRQ3 */
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x0b);
    pulse(f, 5);
    g_assert_false(f->intr); /* blocked by IRQ3 in service */
    /* Mask IRQ3 and enter special mask mode: lower levels get through. */
    out8(f, 0x21, 0x08);
    out8(f, 0x20, 0x68);
    g_assert_true(f->intr);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x0d);
    out8(f, 0x20, 0x48); /* leave special mask mode */
    out8(f, 0x20, 0x65);
    out8(f, 0x20, 0x63);
    fixture_free(f);
}

static void test_icw1_resets_state(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x21, 0x4a);
    pulse(f, 4);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x0c);
    out8(f, 0x20, 0x11);
    g_assert_cmphex(in8(f, 0x21), ==, 0x00); /* ICW1 clears the mask */
    out8(f, 0x21, 0x20);                     /* ICW2: new vector base */
    out8(f, 0x21, 0x04);
    out8(f, 0x21, 0x01);
    out8(f, 0x20, 0x0b);
    g_assert_cmphex(in8(f, 0x20), ==, 0x00);
    pulse(f, 4);
    g_assert_cmpint(pic_intr_ack(f->pic), ==, 0x24);
    fixture_free(f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/pic/priority-and-eoi", test_priority_and_eoi);
    g_test_add_func("/pic/mask-and-cascade", test_mask_and_cascade);
    g_test_add_func("/pic/spurious-irq", test_spurious_irq);
    g_test_add_func("/pic/level-triggered-elcr", test_level_triggered_elcr);
    g_test_add_func("/pic/rotation", test_rotation);
    g_test_add_func("/pic/auto-eoi", test_auto_eoi);
    g_test_add_func("/pic/poll-mode", test_poll_mode);
    g_test_add_func("/pic/special-mask-mode", test_special_mask_mode);
    g_test_add_func("/pic/icw1-resets-state", test_icw1_resets_state);
    return g_test_run();
}
