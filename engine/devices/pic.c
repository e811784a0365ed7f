/* The 8259A interrupt controller pair, following the Intel 8259A datasheet
 * (231468-003): initialization command words ICW1-ICW4, operation command
 * words OCW1-OCW3, fully nested priority with rotation, specific and
 * non-specific EOI, automatic EOI, special mask mode and poll mode. Edge or
 * level sensing per input comes from the edge/level control registers of
 * the PIIX south bridge (82371SB datasheet, section 4.2.2, ELCR1/ELCR2). */
#include "pic.h"

#include <glib.h>

#include "ioport.h"

#define PIC_MASTER_PORT   0x20
#define PIC_SLAVE_PORT    0xa0
#define PIC_ELCR_PORT     0x4d0
#define PIC_CASCADE_IRQ   2
#define PIC_SPURIOUS_IRQ  7
#define PIC_NO_IRQ        8 /* priority value meaning "nothing" */
#define PIC_AT_IRQ2_ROUTE 9

/* ICW1 bits. */
#define ICW1_IC4  0x01
#define ICW1_SNGL 0x02
#define ICW1_LTIM 0x08
#define ICW1_INIT 0x10

/* ICW4 bits. */
#define ICW4_AEOI 0x02
#define ICW4_SFNM 0x10

/* OCW3 bits. */
#define OCW3_RIS  0x01
#define OCW3_RR   0x02
#define OCW3_POLL 0x04
#define OCW3_TAG  0x08
#define OCW3_SMM  0x20
#define OCW3_ESMM 0x40

/* What the next write to the odd port means while initialising. */
enum pic_init_step { PIC_INIT_DONE, PIC_INIT_ICW2, PIC_INIT_ICW3, PIC_INIT_ICW4 };

struct pic_chip {
    uint8_t irr;
    uint8_t isr;
    uint8_t imr;
    uint8_t line_level; /* current level of each IR input */
    uint8_t elcr;       /* 1 = level triggered */
    uint8_t elcr_mask;  /* the ELCR bits that exist */
    uint8_t vector_base;
    uint8_t icw3;
    uint8_t lowest_priority; /* the IR with the lowest priority; rotation moves it */
    uint8_t init_step;
    bool icw4_expected;
    bool single;
    bool level_triggered; /* ICW1 LTIM: every input level triggered */
    bool auto_eoi;
    bool rotate_on_auto_eoi;
    bool special_fully_nested;
    bool special_mask;
    bool read_isr; /* OCW3 RIS: the even port reads ISR rather than IRR */
    bool poll;     /* OCW3 P: the next read is a poll */
    bool output;   /* the INT pin */
};

struct pic {
    struct pic_chip chips[2]; /* master, slave */
    struct irq_line inputs[PIC_NR_IRQS];
    struct irq_line intr;
    bool intr_level;
};

static const struct vmstate_field pic_chip_fields[] = {
    VMSTATE_U8(struct pic_chip, irr),
    VMSTATE_U8(struct pic_chip, isr),
    VMSTATE_U8(struct pic_chip, imr),
    VMSTATE_U8(struct pic_chip, line_level),
    VMSTATE_U8(struct pic_chip, elcr),
    VMSTATE_U8(struct pic_chip, elcr_mask),
    VMSTATE_U8(struct pic_chip, vector_base),
    VMSTATE_U8(struct pic_chip, icw3),
    VMSTATE_U8(struct pic_chip, lowest_priority),
    VMSTATE_U8(struct pic_chip, init_step),
    VMSTATE_BOOL(struct pic_chip, icw4_expected),
    VMSTATE_BOOL(struct pic_chip, single),
    VMSTATE_BOOL(struct pic_chip, level_triggered),
    VMSTATE_BOOL(struct pic_chip, auto_eoi),
    VMSTATE_BOOL(struct pic_chip, rotate_on_auto_eoi),
    VMSTATE_BOOL(struct pic_chip, special_fully_nested),
    VMSTATE_BOOL(struct pic_chip, special_mask),
    VMSTATE_BOOL(struct pic_chip, read_isr),
    VMSTATE_BOOL(struct pic_chip, poll),
    VMSTATE_BOOL(struct pic_chip, output),
    VMSTATE_END,
};

static const struct vmstate_desc pic_chip_vmstate = {
    .name = "pic-chip",
    .version = 1,
    .fields = pic_chip_fields,
};

static const struct vmstate_field pic_fields[] = {
    VMSTATE_STRUCT_ARRAY(struct pic, chips, pic_chip_vmstate),
    VMSTATE_BOOL(struct pic, intr_level),
    VMSTATE_END,
};

const struct vmstate_desc pic_vmstate = {
    .name = "pic",
    .version = 1,
    .fields = pic_fields,
};

static bool chip_is_level(const struct pic_chip *chip, int irq)
{
    return chip->level_triggered || (chip->elcr & (1u << irq));
}

/* The highest-priority IR set in bits, as a priority value (0 is the
 * highest), or PIC_NO_IRQ. The input just after the lowest-priority one has
 * the highest priority. */
static int chip_best_priority(const struct pic_chip *chip, uint8_t bits)
{
    for (int prio = 0; prio < 8; prio++) {
        int irq = (chip->lowest_priority + 1 + prio) & 7;
        if (bits & (1u << irq))
            return prio;
    }
    return PIC_NO_IRQ;
}

static int chip_irq_of_priority(const struct pic_chip *chip, int prio)
{
    return (chip->lowest_priority + 1 + prio) & 7;
}

/* The IR the chip would present on INTA, or -1. A request must beat every
 * in-service level; in special mask mode only unmasked in-service levels
 * block, and in special fully nested mode the master lets the slave's
 * further requests through while IR2 is in service. */
static int chip_pending_irq(const struct pic_chip *chip, bool is_master)
{
    int request = chip_best_priority(chip, chip->irr & ~chip->imr);
    if (request == PIC_NO_IRQ)
        return -1;
    uint8_t blocking = chip->isr;
    if (chip->special_mask)
        blocking &= ~chip->imr;
    if (is_master && chip->special_fully_nested)
        blocking &= ~(1u << PIC_CASCADE_IRQ);
    int in_service = chip_best_priority(chip, blocking);
    if (request < in_service)
        return chip_irq_of_priority(chip, request);
    return -1;
}

static void chip_set_input(struct pic_chip *chip, int irq, bool level)
{
    uint8_t bit = 1u << irq;
    bool was_high = chip->line_level & bit;
    if (level) {
        chip->line_level |= bit;
        /* An edge input latches only a low-to-high transition; a level
         * input requests as long as it is high. */
        if (chip_is_level(chip, irq) || !was_high)
            chip->irr |= bit;
    } else {
        chip->line_level &= ~bit;
        if (chip_is_level(chip, irq))
            chip->irr &= ~bit;
    }
}

/* Recomputes both INT outputs: the slave's drives the master's IR2, the
 * master's drives the CPU. */
static void pic_update(struct pic *pic)
{
    struct pic_chip *master = &pic->chips[0], *slave = &pic->chips[1];
    slave->output = chip_pending_irq(slave, false) >= 0;
    chip_set_input(master, PIC_CASCADE_IRQ, slave->output);
    master->output = chip_pending_irq(master, true) >= 0;
    if (master->output != pic->intr_level) {
        pic->intr_level = master->output;
        irq_set(&pic->intr, pic->intr_level);
    }
}

static void pic_input_changed(void *opaque, int n, bool level)
{
    struct pic *pic = opaque;
    if (n < 0 || n >= PIC_NR_IRQS)
        return;
    chip_set_input(&pic->chips[n >> 3], n & 7, level);
    pic_update(pic);
}

/* The INTA pulses on one chip: the request moves from IRR to ISR, or is
 * retired at once in automatic EOI mode. Level inputs keep their request
 * while the line stays high. */
static void chip_acknowledge(struct pic_chip *chip, int irq)
{
    uint8_t bit = 1u << irq;
    if (!chip_is_level(chip, irq) || !(chip->line_level & bit))
        chip->irr &= ~bit;
    if (chip->auto_eoi) {
        if (chip->rotate_on_auto_eoi)
            chip->lowest_priority = irq;
    } else {
        chip->isr |= bit;
    }
}

int pic_intr_ack(void *opaque)
{
    struct pic *pic = opaque;
    struct pic_chip *master = &pic->chips[0], *slave = &pic->chips[1];
    if (!pic->intr_level)
        return -1;
    int irq = chip_pending_irq(master, true);
    int vector;
    if (irq < 0) {
        /* The request went away between INTR and INTA. */
        vector = master->vector_base | PIC_SPURIOUS_IRQ;
    } else if (irq == PIC_CASCADE_IRQ && !master->single) {
        chip_acknowledge(master, irq);
        int slave_irq = chip_pending_irq(slave, false);
        if (slave_irq < 0) {
            vector = slave->vector_base | PIC_SPURIOUS_IRQ;
        } else {
            chip_acknowledge(slave, slave_irq);
            vector = slave->vector_base | slave_irq;
        }
    } else {
        chip_acknowledge(master, irq);
        vector = master->vector_base | irq;
    }
    pic_update(pic);
    return vector;
}

bool pic_intr_pending(const struct pic *pic)
{
    return pic->intr_level;
}

/* OCW3 poll: the read acts as an interrupt acknowledge and returns bit 7
 * set with the IR number when a request was pending. */
static uint8_t chip_poll(struct pic *pic, int chip_index)
{
    struct pic_chip *chip = &pic->chips[chip_index];
    chip->poll = false;
    int irq = chip_pending_irq(chip, chip_index == 0);
    if (irq < 0)
        return 0;
    chip_acknowledge(chip, irq);
    pic_update(pic);
    return 0x80 | irq;
}

static void chip_eoi(struct pic_chip *chip, int irq, bool rotate)
{
    chip->isr &= ~(1u << irq);
    if (rotate)
        chip->lowest_priority = irq;
}

static void chip_write_ocw2(struct pic_chip *chip, uint8_t value)
{
    int level = value & 7;
    int in_service = chip_best_priority(chip, chip->isr);
    switch (value >> 5) {
    case 0: /* rotate in automatic EOI mode: clear */
        chip->rotate_on_auto_eoi = false;
        break;
    case 4: /* rotate in automatic EOI mode: set */
        chip->rotate_on_auto_eoi = true;
        break;
    case 1: /* non-specific EOI */
    case 5: /* rotate on non-specific EOI */
        if (in_service != PIC_NO_IRQ)
            chip_eoi(chip, chip_irq_of_priority(chip, in_service), value >> 5 == 5);
        break;
    case 3: /* specific EOI */
    case 7: /* rotate on specific EOI */
        chip_eoi(chip, level, value >> 5 == 7);
        break;
    case 6: /* set priority */
        chip->lowest_priority = level;
        break;
    case 2: /* no operation */
        break;
    }
}

static void chip_write_ocw3(struct pic_chip *chip, uint8_t value)
{
    if (value & OCW3_ESMM)
        chip->special_mask = value & OCW3_SMM;
    if (value & OCW3_RR)
        chip->read_isr = value & OCW3_RIS;
    chip->poll = value & OCW3_POLL;
}

/* ICW1 starts the initialization sequence: the mask, the in-service and
 * request registers and the rotation are cleared, status reads return IRR,
 * and an input that is high now must go low and high again to request. */
static void chip_write_icw1(struct pic_chip *chip, uint8_t value)
{
    chip->icw4_expected = value & ICW1_IC4;
    chip->single = value & ICW1_SNGL;
    chip->level_triggered = value & ICW1_LTIM;
    chip->imr = 0;
    chip->isr = 0;
    chip->irr = 0;
    for (int irq = 0; irq < 8; irq++) {
        if ((chip->line_level & (1u << irq)) && chip_is_level(chip, irq))
            chip->irr |= 1u << irq;
    }
    chip->lowest_priority = 7;
    chip->special_mask = false;
    chip->read_isr = false;
    chip->poll = false;
    chip->auto_eoi = false;
    chip->rotate_on_auto_eoi = false;
    chip->special_fully_nested = false;
    chip->init_step = PIC_INIT_ICW2;
}

static void chip_write_data(struct pic_chip *chip, uint8_t value)
{
    switch (chip->init_step) {
    case PIC_INIT_ICW2:
        chip->vector_base = value & 0xf8;
        if (!chip->single)
            chip->init_step = PIC_INIT_ICW3;
        else if (chip->icw4_expected)
            chip->init_step = PIC_INIT_ICW4;
        else
            chip->init_step = PIC_INIT_DONE;
        break;
    case PIC_INIT_ICW3:
        /* The PC wires the cascade fixedly on IR2; ICW3 is kept only so
         * that it reads back in a state dump. */
        chip->icw3 = value;
        chip->init_step = chip->icw4_expected ? PIC_INIT_ICW4 : PIC_INIT_DONE;
        break;
    case PIC_INIT_ICW4:
        chip->auto_eoi = value & ICW4_AEOI;
        chip->special_fully_nested = value & ICW4_SFNM;
        chip->init_step = PIC_INIT_DONE;
        break;
    default:
        chip->imr = value; /* OCW1 */
        break;
    }
}

static void pic_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct pic *pic = opaque;
    (void)size;
    int chip_index = (port & 0x80) ? 1 : 0;
    struct pic_chip *chip = &pic->chips[chip_index];
    uint8_t byte = value & 0xff;
    if (port & 1)
        chip_write_data(chip, byte);
    else if (byte & ICW1_INIT)
        chip_write_icw1(chip, byte);
    else if (byte & OCW3_TAG)
        chip_write_ocw3(chip, byte);
    else
        chip_write_ocw2(chip, byte);
    pic_update(pic);
}

static uint32_t pic_read(void *opaque, uint16_t port, unsigned size)
{
    struct pic *pic = opaque;
    (void)size;
    int chip_index = (port & 0x80) ? 1 : 0;
    struct pic_chip *chip = &pic->chips[chip_index];
    if (chip->poll)
        return chip_poll(pic, chip_index);
    if (port & 1)
        return chip->imr;
    return chip->read_isr ? chip->isr : chip->irr;
}

static void pic_elcr_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct pic *pic = opaque;
    (void)size;
    struct pic_chip *chip = &pic->chips[port & 1];
    chip->elcr = value & chip->elcr_mask;
    /* A line switched to level sensing requests while it is high. */
    for (int irq = 0; irq < 8; irq++) {
        if (chip_is_level(chip, irq) && (chip->line_level & (1u << irq)))
            chip->irr |= 1u << irq;
    }
    pic_update(pic);
}

static uint32_t pic_elcr_read(void *opaque, uint16_t port, unsigned size)
{
    struct pic *pic = opaque;
    (void)size;
    return pic->chips[port & 1].elcr;
}

void pic_reset(void *opaque)
{
    struct pic *pic = opaque;
    for (int i = 0; i < 2; i++) {
        struct pic_chip *chip = &pic->chips[i];
        uint8_t line_level = chip->line_level;
        *chip = (struct pic_chip){0};
        chip->line_level = line_level;
        chip->lowest_priority = 7;
        /* IRQ0-2 (timer, keyboard, cascade) on the master and IRQ8 (RTC)
         * and IRQ13 (FPU) on the slave are always edge triggered. */
        chip->elcr_mask = i == 0 ? 0xf8 : 0xde;
    }
    pic_update(pic);
}

const struct irq_line *pic_irq_line(struct pic *pic, int n)
{
    if (n < 0 || n >= PIC_NR_IRQS)
        return NULL;
    if (n == PIC_CASCADE_IRQ)
        n = PIC_AT_IRQ2_ROUTE;
    return &pic->inputs[n];
}

struct pic *pic_create(struct ioport_bus *io, const struct irq_line *intr)
{
    struct pic *pic = g_new0(struct pic, 1);
    if (intr)
        pic->intr = *intr;
    for (int n = 0; n < PIC_NR_IRQS; n++)
        pic->inputs[n] = (struct irq_line){.handler = pic_input_changed, .opaque = pic, .n = n};
    pic_reset(pic);
    ioport_register(io, PIC_MASTER_PORT, 2, "pic", pic_read, pic_write, pic);
    ioport_register(io, PIC_SLAVE_PORT, 2, "pic", pic_read, pic_write, pic);
    ioport_register(io, PIC_ELCR_PORT, 2, "pic-elcr", pic_elcr_read, pic_elcr_write, pic);
    return pic;
}

void pic_destroy(struct pic *pic)
{
    g_free(pic);
}
