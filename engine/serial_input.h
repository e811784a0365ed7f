/* Host bytes into a guest UART's receiver: what --serial stdio reads from
 * standard input, and what the monitor's serial command types.
 *
 * Bytes are queued on the host side (any thread) and handed to the UART on
 * the vCPU thread, no faster than its receive FIFO takes them, so that
 * nothing is lost however fast the host writes. A file descriptor being
 * read is paused while the queue is full and resumed as the guest reads. */
#ifndef VIVARIUM_SERIAL_INPUT_H
#define VIVARIUM_SERIAL_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct serial;
struct serial_input;

/* Bytes queued beyond which reading from a file descriptor pauses. */
#define SERIAL_INPUT_QUEUE_LIMIT 4096

/* wake(opaque) is called (from any thread) when queued bytes wait for
 * serial_input_drain() on the vCPU thread; the engine posts the drain to
 * the machine. The input takes over the UART's receive-ready callback. */
struct serial_input *serial_input_create(struct serial *uart, void (*wake)(void *opaque),
                                         void *opaque);

/* Destroys the input on the main thread, once the vCPU thread has stopped;
 * restores the terminal if serial_input_watch_fd() changed its mode. */
void serial_input_destroy(struct serial_input *in);

/* Reads fd on the default GLib main context until end of file. A terminal
 * is put into raw mode (no echo, no line editing, no character
 * translation; Ctrl-C still interrupts), as QEMU's -serial stdio does.
 * Returns whether fd is a terminal. */
bool serial_input_watch_fd(struct serial_input *in, int fd);

/* Queues bytes for the UART (any thread). Always takes all of them. */
void serial_input_push(struct serial_input *in, const uint8_t *buf, size_t len);

/* Hands queued bytes to the UART as far as its FIFO has room; the vCPU
 * thread. The rest go when the guest has read. */
void serial_input_drain(struct serial_input *in);

/* Bytes still queued (for tests). */
size_t serial_input_queued(struct serial_input *in);

#endif
