/* The PC's two 8237A DMA controllers: channels 0-3 (8-bit, ports
 * 0x00-0x0f), channels 4-7 (16-bit, ports 0xc0-0xdf; channel 4 cascades the
 * first controller) and the page registers at 0x80-0x8f.
 *
 * A device registers a transfer function for its channel and holds DREQ
 * while it wants data moved. While DREQ is held and the channel is unmasked
 * the function is called on the vCPU thread with the position reached in
 * the current block (in bytes) and the block's size (in bytes); it moves up
 * to size - position bytes with isa_dma_read_memory/isa_dma_write_memory and
 * returns the new position. When the position reaches the size the channel
 * hits terminal count: it sets its TC status bit and then either reloads
 * (auto-initialize) or masks itself. */
#ifndef VIVARIUM_DMA_H
#define VIVARIUM_DMA_H

#include <stdbool.h>
#include <stdint.h>

#include "vmstate.h"

struct ioport_bus;
struct memory;
struct vclock;
struct isa_dma;

#define ISA_DMA_CHANNELS 8

typedef int (*isa_dma_transfer_fn)(void *opaque, int channel, int position, int size);

/* Mode register transfer types (bits 3-2). */
enum isa_dma_transfer_type {
    ISA_DMA_VERIFY = 0,
    ISA_DMA_WRITE = 1, /* device to memory */
    ISA_DMA_READ = 2,  /* memory to device */
};

struct isa_dma *isa_dma_create(struct ioport_bus *io, struct memory *mem, struct vclock *clock);
void isa_dma_destroy(struct isa_dma *dma);

/* Master clear of both controllers; the machine reset hook. */
void isa_dma_reset(void *dma);
/* After a snapshot restore: resumes transfers that were under way. */
void isa_dma_post_load(void *dma);

void isa_dma_register_channel(struct isa_dma *dma, int channel, isa_dma_transfer_fn fn,
                              void *opaque);
void isa_dma_hold_dreq(struct isa_dma *dma, int channel);
void isa_dma_release_dreq(struct isa_dma *dma, int channel);

/* Copies len bytes between guest memory and buf at the given position of
 * the channel's block, honouring its page, address direction and 64 KiB
 * (128 KiB for 16-bit channels) wrap-around. Return len. */
int isa_dma_read_memory(struct isa_dma *dma, int channel, void *buf, int position, int len);
int isa_dma_write_memory(struct isa_dma *dma, int channel, const void *buf, int position, int len);

/* The channel's mode register fields. */
enum isa_dma_transfer_type isa_dma_transfer_type(struct isa_dma *dma, int channel);
bool isa_dma_auto_init(struct isa_dma *dma, int channel);
/* Whether the channel is unmasked and its controller enabled. */
bool isa_dma_channel_enabled(struct isa_dma *dma, int channel);

extern const struct vmstate_desc isa_dma_vmstate;

#endif
