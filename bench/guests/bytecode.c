/* A small stack-machine bytecode interpreter running a loop that sums the
 * Collatz step counts of 1..N: indirect branches and memory traffic. */
#include "runtime.h"

const char workload_name[] = "bytecode";
const uint32_t workload_default_scale = 30000;

enum op { PUSH, LOAD, STORE, ADD, SUB, MUL, DIV2, ODD, JZ, JMP, LT, HALT };
enum var { N, LIMIT, TOTAL, X };
enum label { OUTER = 2, INNER = 8, EVEN = 26, NEXT = 30, DONE = 35 };

struct insn {
    uint8_t op;
    int32_t arg;
};

static const struct insn program[] = {
    {PUSH, 1},
    {STORE, N},
    /* OUTER: while (n < limit) */
    {LOAD, N},
    {LOAD, LIMIT},
    {LT, 0},
    {JZ, DONE},
    {LOAD, N},
    {STORE, X},
    /* INNER: while (x != 1) */
    {LOAD, X},
    {PUSH, 1},
    {SUB, 0},
    {JZ, NEXT},
    {LOAD, TOTAL},
    {PUSH, 1},
    {ADD, 0},
    {STORE, TOTAL},
    {LOAD, X},
    {ODD, 0},
    {JZ, EVEN},
    /* odd: x = 3x + 1 */
    {LOAD, X},
    {PUSH, 3},
    {MUL, 0},
    {PUSH, 1},
    {ADD, 0},
    {STORE, X},
    {JMP, INNER},
    /* EVEN: x = x / 2 */
    {LOAD, X},
    {DIV2, 0},
    {STORE, X},
    {JMP, INNER},
    /* NEXT: n++ */
    {LOAD, N},
    {PUSH, 1},
    {ADD, 0},
    {STORE, N},
    {JMP, OUTER},
    /* DONE */
    {LOAD, TOTAL},
    {HALT, 0},
};

static int32_t run(int32_t limit)
{
    int32_t stack[16], vars[4] = {0, limit, 0, 0};
    int sp = 0;
    for (uint32_t pc = 0;;) {
        const struct insn *in = &program[pc++];
        switch (in->op) {
        case PUSH:
            stack[sp++] = in->arg;
            break;
        case LOAD:
            stack[sp++] = vars[in->arg];
            break;
        case STORE:
            vars[in->arg] = stack[--sp];
            break;
        case ADD:
            sp--;
            stack[sp - 1] += stack[sp];
            break;
        case SUB:
            sp--;
            stack[sp - 1] -= stack[sp];
            break;
        case MUL:
            sp--;
            stack[sp - 1] *= stack[sp];
            break;
        case DIV2:
            stack[sp - 1] = (int32_t)((uint32_t)stack[sp - 1] >> 1);
            break;
        case ODD:
            stack[sp - 1] &= 1;
            break;
        case JZ:
            if (stack[--sp] == 0)
                pc = (uint32_t)in->arg;
            break;
        case JMP:
            pc = (uint32_t)in->arg;
            break;
        case LT:
            sp--;
            stack[sp - 1] = stack[sp - 1] < stack[sp];
            break;
        case HALT:
            return stack[sp - 1];
        }
    }
}

uint32_t workload(uint32_t scale)
{
    return (uint32_t)run((int32_t)scale);
}
