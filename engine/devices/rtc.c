/* The MC146818A real-time clock, following the Motorola MC146818A data
 * sheet: time, calendar and alarm registers in BCD or binary and in 12- or
 * 24-hour form, registers A-D, the periodic, alarm and update-ended
 * interrupts and the update-in-progress bit.
 *
 * The time is kept as seconds since 1970 at a known virtual-clock instant
 * (which is also an update-cycle boundary), and the registers are computed
 * from it when read. Interrupt flags are brought up to date whenever the
 * guest touches the chip; a timer runs only for an enabled interrupt whose
 * flag is still clear. Daylight-saving adjustment (register B bit 0) is
 * not implemented. */
#include "rtc.h"

#include <glib.h>

#include "ioport.h"
#include "vclock.h"

#define RTC_INDEX_PORT 0x70
#define RTC_DATA_PORT  0x71

enum rtc_register {
    RTC_SECONDS = 0x00,
    RTC_SECONDS_ALARM = 0x01,
    RTC_MINUTES = 0x02,
    RTC_MINUTES_ALARM = 0x03,
    RTC_HOURS = 0x04,
    RTC_HOURS_ALARM = 0x05,
    RTC_DAY_OF_WEEK = 0x06,
    RTC_DAY_OF_MONTH = 0x07,
    RTC_MONTH = 0x08,
    RTC_YEAR = 0x09,
    RTC_REG_A = 0x0a,
    RTC_REG_B = 0x0b,
    RTC_REG_C = 0x0c,
    RTC_REG_D = 0x0d,
    RTC_CENTURY = 0x32, /* the PC BIOS convention, not the chip's */
};

#define REG_A_UIP          0x80
#define REG_A_DIVIDER_MASK 0x70
#define REG_A_DIVIDER_32K  0x20 /* 32.768 kHz time base, divider running */
#define REG_A_RATE_MASK    0x0f

#define REG_B_SET  0x80
#define REG_B_PIE  0x40
#define REG_B_AIE  0x20
#define REG_B_UIE  0x10
#define REG_B_SQWE 0x08
#define REG_B_DM   0x04 /* binary rather than BCD */
#define REG_B_24H  0x02

#define REG_C_IRQF 0x80
#define REG_C_PF   0x40
#define REG_C_AF   0x20
#define REG_C_UF   0x10

#define REG_D_VRT 0x80

#define ALARM_DONT_CARE 0xc0
#define RTC_BASE_HZ     32768

/* UIP rises 244 us before an update cycle, which lasts 1984 us with the
 * 32.768 kHz time base; the new time is visible when it ends. */
#define RTC_UIP_WINDOW_NS ((244 + 1984) * 1000LL)

#define NEVER INT64_MAX

struct rtc {
    uint8_t cmos[RTC_CMOS_SIZE];
    uint8_t index;
    bool nmi_masked;
    /* While the clock runs, base_seconds is the time at base_ns, an
     * update-cycle boundary. While it is stopped (SET, or the divider held
     * in reset) the time registers in cmos[] are the time. */
    int64_t base_seconds;
    int64_t base_ns;
    /* Flags in register C account for every event up to this instant. */
    int64_t flags_synced_ns;
    /* Day of week as written by the guest relative to the computed one. */
    uint8_t weekday_offset;
    bool irq_level;

    struct vclock *clock;
    struct irq_line irq;
    struct vtimer timer;
};

static const struct vmstate_field rtc_fields[] = {
    VMSTATE_U8_ARRAY(struct rtc, cmos),
    VMSTATE_U8(struct rtc, index),
    VMSTATE_BOOL(struct rtc, nmi_masked),
    VMSTATE_I64(struct rtc, base_seconds),
    VMSTATE_I64(struct rtc, base_ns),
    VMSTATE_I64(struct rtc, flags_synced_ns),
    VMSTATE_U8(struct rtc, weekday_offset),
    VMSTATE_BOOL(struct rtc, irq_level),
    VMSTATE_END,
};

const struct vmstate_desc rtc_vmstate = {
    .name = "rtc",
    .version = 1,
    .fields = rtc_fields,
};

/* Calendar arithmetic on the proleptic Gregorian calendar, by days since
 * 1970-01-01, using 400-year eras that start on 1 March. */
static int64_t days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

static void civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t day_of_era = days - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t mp = (5 * day_of_year + 2) / 153;
    *day = (int)(day_of_year - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = year_of_era + era * 400 + (*month <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool rtc_binary(const struct rtc *rtc)
{
    return rtc->cmos[RTC_REG_B] & REG_B_DM;
}

static uint8_t rtc_encode(const struct rtc *rtc, int value)
{
    if (rtc_binary(rtc))
        return (uint8_t)value;
    return (uint8_t)((value / 10 % 10) << 4 | value % 10);
}

static int rtc_decode(const struct rtc *rtc, uint8_t value)
{
    if (rtc_binary(rtc))
        return value;
    return (value >> 4) * 10 + (value & 0xf);
}

static uint8_t rtc_encode_hour(const struct rtc *rtc, int hour)
{
    if (rtc->cmos[RTC_REG_B] & REG_B_24H)
        return rtc_encode(rtc, hour);
    int hour12 = hour % 12 ? hour % 12 : 12;
    return rtc_encode(rtc, hour12) | (hour >= 12 ? 0x80 : 0);
}

static int rtc_decode_hour(const struct rtc *rtc, uint8_t value)
{
    if (rtc->cmos[RTC_REG_B] & REG_B_24H)
        return rtc_decode(rtc, value);
    int hour = rtc_decode(rtc, value & 0x7f) % 12;
    return (value & 0x80) ? hour + 12 : hour;
}

static bool rtc_running(const struct rtc *rtc)
{
    return (rtc->cmos[RTC_REG_A] & REG_A_DIVIDER_MASK) == REG_A_DIVIDER_32K &&
           !(rtc->cmos[RTC_REG_B] & REG_B_SET);
}

/* The time in seconds at now_ns, by the running clock. */
static int64_t rtc_seconds_at(const struct rtc *rtc, int64_t now_ns)
{
    return rtc->base_seconds + floor_div(now_ns - rtc->base_ns, NS_PER_SEC);
}

static int rtc_computed_weekday(int64_t seconds)
{
    int64_t days = floor_div(seconds, 86400);
    return (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday; 0 = Sunday */
}

/* Writes the time registers for a time in seconds. */
static void rtc_store_time(struct rtc *rtc, int64_t seconds)
{
    int64_t days = floor_div(seconds, 86400);
    int64_t second_of_day = seconds - days * 86400;
    int64_t year;
    int month, day;
    civil_from_days(days, &year, &month, &day);
    rtc->cmos[RTC_SECONDS] = rtc_encode(rtc, (int)(second_of_day % 60));
    rtc->cmos[RTC_MINUTES] = rtc_encode(rtc, (int)(second_of_day / 60 % 60));
    rtc->cmos[RTC_HOURS] = rtc_encode_hour(rtc, (int)(second_of_day / 3600));
    rtc->cmos[RTC_DAY_OF_WEEK] =
        (uint8_t)(rtc_encode(rtc, (rtc_computed_weekday(seconds) + rtc->weekday_offset) % 7 + 1));
    rtc->cmos[RTC_DAY_OF_MONTH] = rtc_encode(rtc, day);
    rtc->cmos[RTC_MONTH] = rtc_encode(rtc, month);
    int64_t year_mod = ((year % 10000) + 10000) % 10000;
    rtc->cmos[RTC_YEAR] = rtc_encode(rtc, (int)(year_mod % 100));
    rtc->cmos[RTC_CENTURY] = rtc_encode(rtc, (int)(year_mod / 100));
}

/* Reads the time registers back as seconds. Out-of-range fields are taken
 * arithmetically (the 32nd of a month is the 1st of the next), which is as
 * good a meaning as any for values the chip never produces itself. */
static int64_t rtc_load_time(const struct rtc *rtc)
{
    int century = rtc_decode(rtc, rtc->cmos[RTC_CENTURY]);
    if (century > 99)
        century = 20;
    int64_t year = century * 100 + rtc_decode(rtc, rtc->cmos[RTC_YEAR]);
    int month = rtc_decode(rtc, rtc->cmos[RTC_MONTH]);
    if (month < 1 || month > 12)
        month = 1;
    int64_t days =
        days_from_civil(year, month, 1) + rtc_decode(rtc, rtc->cmos[RTC_DAY_OF_MONTH]) - 1;
    return days * 86400 + rtc_decode_hour(rtc, rtc->cmos[RTC_HOURS]) * 3600LL +
           rtc_decode(rtc, rtc->cmos[RTC_MINUTES]) * 60LL + rtc_decode(rtc, rtc->cmos[RTC_SECONDS]);
}

/* Periodic interrupt period in 32.768 kHz cycles; 0 when off. Rates 1 and 2
 * repeat rates 8 and 9 with the 32.768 kHz time base. */
static int64_t rtc_periodic_cycles(const struct rtc *rtc)
{
    int rate = rtc->cmos[RTC_REG_A] & REG_A_RATE_MASK;
    if (rate == 0)
        return 0;
    if (rate <= 2)
        rate += 7;
    return 1LL << (rate - 1);
}

static int64_t rtc_cycles_at(const struct rtc *rtc, int64_t now_ns)
{
    __int128 elapsed = (__int128)(now_ns - rtc->base_ns) * RTC_BASE_HZ;
    return (int64_t)(elapsed >= 0 ? elapsed / NS_PER_SEC
                                  : -((-elapsed + NS_PER_SEC - 1) / NS_PER_SEC));
}

static int64_t rtc_ns_of_cycle(const struct rtc *rtc, int64_t cycle)
{
    return rtc->base_ns + (int64_t)(((__int128)cycle * NS_PER_SEC + RTC_BASE_HZ - 1) / RTC_BASE_HZ);
}

/* One alarm field: -1 for "don't care", else the value, or 99 (never
 * matches) when it is out of range. */
static int rtc_alarm_field(const struct rtc *rtc, int reg, int limit)
{
    uint8_t raw = rtc->cmos[reg];
    if ((raw & ALARM_DONT_CARE) == ALARM_DONT_CARE)
        return -1;
    int value = reg == RTC_HOURS_ALARM ? rtc_decode_hour(rtc, raw) : rtc_decode(rtc, raw);
    return value < limit ? value : 99;
}

/* The first second after `after` whose time matches the alarm, or NEVER.
 * Every alarm repeats at least daily, so a day of minutes is searched. */
static int64_t rtc_next_alarm(const struct rtc *rtc, int64_t after)
{
    int alarm_hour = rtc_alarm_field(rtc, RTC_HOURS_ALARM, 24);
    int alarm_minute = rtc_alarm_field(rtc, RTC_MINUTES_ALARM, 60);
    int alarm_second = rtc_alarm_field(rtc, RTC_SECONDS_ALARM, 60);
    if (alarm_hour == 99 || alarm_minute == 99 || alarm_second == 99)
        return NEVER;
    int64_t first = after + 1;
    int64_t minute_start = floor_div(first, 60) * 60;
    for (int i = 0; i <= 24 * 60; i++, minute_start += 60) {
        int64_t minute_of_day = floor_div(minute_start, 60) - floor_div(minute_start, 86400) * 1440;
        if (alarm_hour >= 0 && minute_of_day / 60 != alarm_hour)
            continue;
        if (alarm_minute >= 0 && minute_of_day % 60 != alarm_minute)
            continue;
        int64_t candidate = alarm_second >= 0 ? minute_start + alarm_second : minute_start;
        if (candidate < first)
            candidate = alarm_second >= 0 ? NEVER : first;
        if (candidate != NEVER)
            return candidate;
    }
    return NEVER;
}

static uint8_t rtc_irqf(const struct rtc *rtc)
{
    uint8_t flags = rtc->cmos[RTC_REG_C];
    uint8_t enables = rtc->cmos[RTC_REG_B];
    bool pending = ((flags & REG_C_PF) && (enables & REG_B_PIE)) ||
                   ((flags & REG_C_AF) && (enables & REG_B_AIE)) ||
                   ((flags & REG_C_UF) && (enables & REG_B_UIE));
    return pending ? REG_C_IRQF : 0;
}

/* The instant of the next event that would raise IRQF, or NEVER. */
static int64_t rtc_next_interrupt(const struct rtc *rtc, int64_t now_ns)
{
    if (!rtc_running(rtc))
        return NEVER;
    uint8_t flags = rtc->cmos[RTC_REG_C], enables = rtc->cmos[RTC_REG_B];
    int64_t next = NEVER;
    int64_t period = rtc_periodic_cycles(rtc);
    if ((enables & REG_B_PIE) && !(flags & REG_C_PF) && period) {
        int64_t cycle = (floor_div(rtc_cycles_at(rtc, now_ns), period) + 1) * period;
        next = MIN(next, rtc_ns_of_cycle(rtc, cycle));
    }
    int64_t second = rtc_seconds_at(rtc, now_ns);
    if ((enables & REG_B_UIE) && !(flags & REG_C_UF))
        next = MIN(next, rtc->base_ns + (second + 1 - rtc->base_seconds) * NS_PER_SEC);
    if ((enables & REG_B_AIE) && !(flags & REG_C_AF)) {
        int64_t alarm = rtc_next_alarm(rtc, second);
        if (alarm != NEVER)
            next = MIN(next, rtc->base_ns + (alarm - rtc->base_seconds) * NS_PER_SEC);
    }
    return next;
}

/* Sets the flags of every event since the last sync, updates IRQF and the
 * IRQ8 line, and arms the timer for the next interrupt. */
static void rtc_sync(struct rtc *rtc)
{
    int64_t now = vclock_now(rtc->clock);
    int64_t last = rtc->flags_synced_ns;
    if (rtc_running(rtc) && now > last) {
        int64_t period = rtc_periodic_cycles(rtc);
        if (period && floor_div(rtc_cycles_at(rtc, now), period) >
                          floor_div(rtc_cycles_at(rtc, last), period))
            rtc->cmos[RTC_REG_C] |= REG_C_PF;
        int64_t last_second = rtc_seconds_at(rtc, last);
        int64_t now_second = rtc_seconds_at(rtc, now);
        if (now_second > last_second) {
            rtc->cmos[RTC_REG_C] |= REG_C_UF;
            if (rtc_next_alarm(rtc, last_second) <= now_second)
                rtc->cmos[RTC_REG_C] |= REG_C_AF;
        }
    }
    if (now > last)
        rtc->flags_synced_ns = now;

    uint8_t irqf = rtc_irqf(rtc);
    rtc->cmos[RTC_REG_C] = (rtc->cmos[RTC_REG_C] & ~REG_C_IRQF) | irqf;
    if ((irqf != 0) != rtc->irq_level) {
        rtc->irq_level = irqf != 0;
        irq_set(&rtc->irq, rtc->irq_level);
    }

    int64_t next = rtc_next_interrupt(rtc, now);
    if (next == NEVER)
        vtimer_cancel(rtc->clock, &rtc->timer);
    else
        vtimer_arm(rtc->clock, &rtc->timer, next);
}

static void rtc_timer_fired(void *opaque)
{
    rtc_sync(opaque);
}

static bool rtc_update_in_progress(const struct rtc *rtc)
{
    if (!rtc_running(rtc))
        return false;
    int64_t into_second = vclock_now(rtc->clock) - rtc->base_ns;
    into_second -= floor_div(into_second, NS_PER_SEC) * NS_PER_SEC;
    return into_second >= NS_PER_SEC - RTC_UIP_WINDOW_NS;
}

/* The running clock restarts from the time registers; its first update
 * comes first_update_in_ns from now. */
static void rtc_start_clock(struct rtc *rtc, int64_t first_update_in_ns)
{
    rtc->base_seconds = rtc_load_time(rtc);
    rtc->base_ns = vclock_now(rtc->clock) + first_update_in_ns - NS_PER_SEC;
    rtc->flags_synced_ns = vclock_now(rtc->clock);
}

static void rtc_write_time_register(struct rtc *rtc, unsigned index, uint8_t value)
{
    bool running = rtc_running(rtc);
    if (running)
        rtc_store_time(rtc, rtc_seconds_at(rtc, vclock_now(rtc->clock)));
    if (index == RTC_DAY_OF_WEEK) {
        int written = (rtc_decode(rtc, value) + 6) % 7;
        int computed = rtc_computed_weekday(rtc_load_time(rtc));
        rtc->weekday_offset = (uint8_t)(((written - computed) % 7 + 7) % 7);
    }
    rtc->cmos[index] = value;
    if (running) {
        /* Writing while the clock runs keeps the position within the
         * second; the new value counts on from the next update. */
        int64_t seconds = rtc_load_time(rtc);
        rtc->base_ns +=
            (rtc_seconds_at(rtc, vclock_now(rtc->clock)) - rtc->base_seconds) * NS_PER_SEC;
        rtc->base_seconds = seconds;
    }
}

static void rtc_write_register(struct rtc *rtc, unsigned index, uint8_t value)
{
    rtc_sync(rtc);
    bool was_running = rtc_running(rtc);
    switch (index) {
    case RTC_SECONDS:
    case RTC_MINUTES:
    case RTC_HOURS:
    case RTC_DAY_OF_WEEK:
    case RTC_DAY_OF_MONTH:
    case RTC_MONTH:
    case RTC_YEAR:
    case RTC_CENTURY:
        rtc_write_time_register(rtc, index, value);
        break;
    case RTC_REG_A:
        if (was_running)
            rtc_store_time(rtc, rtc_seconds_at(rtc, vclock_now(rtc->clock)));
        rtc->cmos[RTC_REG_A] = value & ~REG_A_UIP;
        /* Releasing the divider from reset starts the first update half a
         * second later. */
        if (rtc_running(rtc) && !was_running)
            rtc_start_clock(rtc, NS_PER_SEC / 2);
        break;
    case RTC_REG_B: {
        int64_t seconds = rtc_seconds_at(rtc, vclock_now(rtc->clock));
        /* Setting SET also clears UIE. */
        if (value & REG_B_SET)
            value &= ~REG_B_UIE;
        rtc->cmos[RTC_REG_B] = value;
        /* The registers take over from a clock that stops, and a running
         * clock shows its time in the (possibly new) format. */
        if (was_running)
            rtc_store_time(rtc, seconds);
        if (rtc_running(rtc) && !was_running)
            rtc_start_clock(rtc, NS_PER_SEC);
        break;
    }
    case RTC_REG_C:
    case RTC_REG_D:
        break; /* read-only */
    default:
        rtc->cmos[index] = value;
        break;
    }
    rtc_sync(rtc);
}

static uint8_t rtc_read_register(struct rtc *rtc, unsigned index)
{
    switch (index) {
    case RTC_SECONDS:
    case RTC_MINUTES:
    case RTC_HOURS:
    case RTC_DAY_OF_WEEK:
    case RTC_DAY_OF_MONTH:
    case RTC_MONTH:
    case RTC_YEAR:
    case RTC_CENTURY:
        if (rtc_running(rtc))
            rtc_store_time(rtc, rtc_seconds_at(rtc, vclock_now(rtc->clock)));
        return rtc->cmos[index];
    case RTC_REG_A:
        return (rtc->cmos[RTC_REG_A] & ~REG_A_UIP) | (rtc_update_in_progress(rtc) ? REG_A_UIP : 0);
    case RTC_REG_C: {
        /* Reading C returns the flags and clears them, releasing IRQ8. */
        rtc_sync(rtc);
        uint8_t flags = rtc->cmos[RTC_REG_C];
        rtc->cmos[RTC_REG_C] = 0;
        rtc_sync(rtc);
        return flags;
    }
    case RTC_REG_D:
        return REG_D_VRT;
    default:
        return rtc->cmos[index];
    }
}

static void rtc_port_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct rtc *rtc = opaque;
    (void)size;
    if (port == RTC_INDEX_PORT) {
        rtc->index = value & 0x7f;
        rtc->nmi_masked = value & 0x80;
    } else {
        rtc_write_register(rtc, rtc->index, value & 0xff);
    }
}

static uint32_t rtc_port_read(void *opaque, uint16_t port, unsigned size)
{
    struct rtc *rtc = opaque;
    (void)size;
    if (port == RTC_INDEX_PORT)
        return 0xff; /* the index register is write-only */
    return rtc_read_register(rtc, rtc->index);
}

void rtc_set_cmos(struct rtc *rtc, unsigned index, uint8_t value)
{
    if (index >= RTC_CMOS_SIZE)
        return;
    rtc_write_register(rtc, index, value);
}

uint8_t rtc_get_cmos(struct rtc *rtc, unsigned index)
{
    if (index >= RTC_CMOS_SIZE)
        return 0xff;
    return rtc_read_register(rtc, index);
}

bool rtc_nmi_masked(const struct rtc *rtc)
{
    return rtc->nmi_masked;
}

void rtc_reset(void *opaque)
{
    struct rtc *rtc = opaque;
    rtc_sync(rtc);
    rtc->cmos[RTC_REG_B] &= ~(REG_B_PIE | REG_B_AIE | REG_B_UIE | REG_B_SQWE);
    rtc->cmos[RTC_REG_C] = 0;
    rtc_sync(rtc);
}

struct rtc *rtc_create(struct ioport_bus *io, struct vclock *clock, const struct irq_line *irq8,
                       int64_t start_seconds)
{
    struct rtc *rtc = g_new0(struct rtc, 1);
    rtc->clock = clock;
    if (irq8)
        rtc->irq = *irq8;
    vtimer_init(&rtc->timer, rtc_timer_fired, rtc);
    rtc->cmos[RTC_REG_A] = REG_A_DIVIDER_32K | 0x06; /* 1024 Hz periodic rate, as a PC BIOS sets */
    rtc->cmos[RTC_REG_B] = REG_B_24H;
    rtc->base_seconds = start_seconds;
    rtc->base_ns = vclock_now(clock);
    rtc->flags_synced_ns = rtc->base_ns;
    rtc_store_time(rtc, start_seconds);
    ioport_register(io, RTC_INDEX_PORT, 2, "rtc", rtc_port_read, rtc_port_write, rtc);
    return rtc;
}

void rtc_destroy(struct rtc *rtc)
{
    if (!rtc)
        return;
    vtimer_cancel(rtc->clock, &rtc->timer);
    g_free(rtc);
}

void rtc_post_load(void *opaque)
{
    rtc_sync(opaque);
}
