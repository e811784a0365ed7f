/* The x87 floating-point unit (Intel SDM volume 1, chapter 8). This first
 * version only initialises the unit; instruction execution follows. */
#include "x87.h"

#include <string.h>

void x87_init(struct x86_fpu *fpu)
{
    memset(fpu, 0, sizeof(*fpu));
    fpu->control = 0x037f;
    fpu->status = 0;
    fpu->tag = 0xffff;
}

bool x87_exception_pending(const struct x86_fpu *fpu)
{
    return (fpu->status & 0x0080) != 0;
}

enum x87_result x87_execute(struct x87_env *env, const ZydisDecodedInstruction *insn,
                            const ZydisDecodedOperand *operands)
{
    (void)env;
    (void)insn;
    (void)operands;
    return X87_INVALID;
}
