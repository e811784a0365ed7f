/* Instruction execution. PLACEHOLDER: only what the foundation's guest
 * harness needs (OUT to the debug ports, HLT); the CPU core issue replaces
 * this file with the full ISA. */
#include "interp.h"

#include <Zydis/Zydis.h>

#include "../ioport.h"
#include "../memory.h"

static uint32_t linear_ip(const struct x86_state *s)
{
    return s->sregs[S_CS].base + s->eip;
}

bool interp_step(struct interp *in)
{
    struct x86_state *s = &in->state;
    if (s->halted || s->shutdown)
        return false;
    uint8_t bytes[15];
    for (unsigned i = 0; i < sizeof(bytes); i++)
        bytes[i] = (uint8_t)memory_read(in->cpu->mem, (linear_ip(s) + i) & s->a20_mask, 1);

    ZydisDecoder decoder;
    ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_REAL_16, ZYDIS_STACK_WIDTH_16);
    ZydisDecodedInstruction insn;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, bytes, sizeof(bytes), &insn, ops))) {
        s->shutdown = true;
        return false;
    }
    uint32_t next = (s->eip + insn.length) & 0xffff;
    switch (insn.mnemonic) {
    case ZYDIS_MNEMONIC_MOV:
        if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
            ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && ops[0].reg.value >= ZYDIS_REGISTER_AX &&
            ops[0].reg.value <= ZYDIS_REGISTER_DI) {
            int r = ops[0].reg.value - ZYDIS_REGISTER_AX;
            s->regs[r] = (s->regs[r] & 0xffff0000u) | (ops[1].imm.value.u & 0xffff);
        } else if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
                   ops[0].reg.value == ZYDIS_REGISTER_AL &&
                   ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
            s->regs[R_EAX] = (s->regs[R_EAX] & ~0xffu) | (ops[1].imm.value.u & 0xff);
        } else {
            s->shutdown = true;
            return false;
        }
        break;
    case ZYDIS_MNEMONIC_OUT:
        ioport_write(in->cpu->io, s->regs[R_EDX] & 0xffff, ops[1].size / 8, s->regs[R_EAX]);
        break;
    case ZYDIS_MNEMONIC_JMP:
        if (ops[0].type == ZYDIS_OPERAND_TYPE_POINTER) {
            s->sregs[S_CS].selector = ops[0].ptr.segment;
            s->sregs[S_CS].base = (uint32_t)ops[0].ptr.segment << 4;
            next = ops[0].ptr.offset;
        } else if (ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
            next = (next + (uint32_t)ops[0].imm.value.s) & 0xffff;
        }
        break;
    case ZYDIS_MNEMONIC_CLI:
        s->eflags &= ~X86_FLAG_IF;
        break;
    case ZYDIS_MNEMONIC_HLT:
        s->halted = true;
        break;
    default:
        s->shutdown = true;
        return false;
    }
    s->eip = next;
    in->instructions++;
    return !s->halted;
}
