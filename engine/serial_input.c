/* Host bytes into a guest UART's receiver (see serial_input.h).
 *
 * Threads: the main thread reads the file descriptor and queues; the vCPU
 * thread owns the UART and drains. The queue and the pause state are
 * shared under one lock. */
#include "serial_input.h"

#include <errno.h>
#include <termios.h>
#include <unistd.h>

#include <glib.h>

#include "devices/serial.h"

#define READ_CHUNK 1024

struct serial_input {
    struct serial *uart;
    void (*wake)(void *opaque);
    void *opaque;

    GMutex lock;
    GByteArray *queue; /* under lock */
    bool drain_posted; /* under lock: a wake is on its way to the vCPU thread */
    bool paused;       /* under lock: the fd watch was removed for a full queue */
    guint resume_idle; /* under lock: an idle source that restarts the watch */

    /* Main thread only. */
    int fd;
    GIOChannel *channel;
    guint watch;
    bool terminal_changed;
    struct termios saved_terminal;
};

static void start_watch(struct serial_input *in);

/* The guest made room in a FIFO that had refused bytes. This runs on the
 * vCPU thread inside the UART's register read, after the UART has updated
 * its state, so refilling at once is safe. */
static void uart_rx_ready(void *opaque)
{
    serial_input_drain(opaque);
}

struct serial_input *serial_input_create(struct serial *uart, void (*wake)(void *opaque),
                                         void *opaque)
{
    struct serial_input *in = g_new0(struct serial_input, 1);
    in->uart = uart;
    in->wake = wake;
    in->opaque = opaque;
    in->fd = -1;
    g_mutex_init(&in->lock);
    in->queue = g_byte_array_new();
    serial_set_rx_ready_callback(uart, uart_rx_ready, in);
    return in;
}

void serial_input_destroy(struct serial_input *in)
{
    if (!in)
        return;
    serial_set_rx_ready_callback(in->uart, NULL, NULL);
    if (in->watch)
        g_source_remove(in->watch);
    if (in->resume_idle)
        g_source_remove(in->resume_idle);
    if (in->channel)
        g_io_channel_unref(in->channel);
    if (in->terminal_changed)
        tcsetattr(in->fd, TCSAFLUSH, &in->saved_terminal);
    g_byte_array_unref(in->queue);
    g_mutex_clear(&in->lock);
    g_free(in);
}

void serial_input_push(struct serial_input *in, const uint8_t *buf, size_t len)
{
    if (len == 0)
        return;
    g_mutex_lock(&in->lock);
    g_byte_array_append(in->queue, buf, (guint)len);
    bool wake = !in->drain_posted;
    in->drain_posted = true;
    g_mutex_unlock(&in->lock);
    if (wake)
        in->wake(in->opaque);
}

static gboolean resume_watch(gpointer data)
{
    struct serial_input *in = data;
    g_mutex_lock(&in->lock);
    in->paused = false;
    in->resume_idle = 0;
    g_mutex_unlock(&in->lock);
    start_watch(in);
    return G_SOURCE_REMOVE;
}

void serial_input_drain(struct serial_input *in)
{
    g_mutex_lock(&in->lock);
    in->drain_posted = false;
    if (in->queue->len > 0) {
        size_t taken = serial_receive(in->uart, in->queue->data, in->queue->len);
        g_byte_array_remove_range(in->queue, 0, (guint)taken);
    }
    if (in->paused && !in->resume_idle && in->queue->len < SERIAL_INPUT_QUEUE_LIMIT)
        in->resume_idle = g_idle_add(resume_watch, in);
    g_mutex_unlock(&in->lock);
}

size_t serial_input_queued(struct serial_input *in)
{
    g_mutex_lock(&in->lock);
    size_t len = in->queue->len;
    g_mutex_unlock(&in->lock);
    return len;
}

static gboolean fd_readable(GIOChannel *channel, GIOCondition condition, gpointer data)
{
    struct serial_input *in = data;
    (void)channel;
    (void)condition;
    uint8_t buf[READ_CHUNK];
    ssize_t n = read(in->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return G_SOURCE_CONTINUE;
    if (n <= 0) {
        in->watch = 0; /* end of input: the guest just hears nothing more */
        return G_SOURCE_REMOVE;
    }
    serial_input_push(in, buf, (size_t)n);
    g_mutex_lock(&in->lock);
    bool full = in->queue->len >= SERIAL_INPUT_QUEUE_LIMIT;
    if (full)
        in->paused = true;
    g_mutex_unlock(&in->lock);
    if (full) {
        in->watch = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void start_watch(struct serial_input *in)
{
    in->watch = g_io_add_watch(in->channel, G_IO_IN | G_IO_HUP | G_IO_ERR, fd_readable, in);
}

/* Raw mode as a serial line wants it: every byte as typed, nothing echoed
 * or translated on input; output keeps its newline handling, and Ctrl-C
 * still reaches the engine as SIGINT. */
static void make_terminal_raw(struct serial_input *in)
{
    struct termios raw;
    if (tcgetattr(in->fd, &in->saved_terminal) != 0)
        return;
    raw = in->saved_terminal;
    raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | IEXTEN);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(in->fd, TCSANOW, &raw) == 0)
        in->terminal_changed = true;
}

bool serial_input_watch_fd(struct serial_input *in, int fd)
{
    g_return_val_if_fail(in->fd < 0, false);
    in->fd = fd;
    in->channel = g_io_channel_unix_new(fd);
    bool terminal = isatty(fd);
    if (terminal)
        make_terminal_raw(in);
    start_watch(in);
    return terminal;
}
