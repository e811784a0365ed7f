/* Declarations shared by the interpreter's files: the decoded instruction,
 * memory access with segmentation and paging, exceptions, and the handler
 * tables each group of instructions contributes. */
#ifndef VIVARIUM_INTERP_PRIV_H
#define VIVARIUM_INTERP_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <Zydis/Zydis.h>

#include "interp.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Kinds of operand a decoded instruction carries. */
enum operand_kind {
    OPK_NONE,
    OPK_REG,  /* general register; high selects AH..BH */
    OPK_MEM,  /* the instruction's one memory operand (struct insn's ea fields) */
    OPK_IMM,  /* immediate, already sign- or zero-extended to the operand size */
    OPK_REL,  /* branch displacement relative to the next instruction */
    OPK_FAR,  /* ptr16:16/32 in imm (offset) and imm2 (selector) */
    OPK_SREG, /* segment register */
    OPK_CR,   /* control register */
    OPK_DR,   /* debug register */
    OPK_OTHER /* x87/MMX register: only the x87 unit uses those */
};

struct insn_operand {
    uint8_t kind;
    uint8_t size; /* bytes */
    uint8_t reg;
    bool high;
};

#define NO_REG 0xff

struct insn;
struct interp;
typedef void (*insn_fn)(struct interp *in, const struct insn *i);

/* An instruction decoded once and kept in the code cache. */
struct insn {
    insn_fn exec;
    uint16_t mnemonic;   /* ZydisMnemonic */
    uint8_t length;      /* bytes, prefixes included */
    uint8_t opsize;      /* operand size in bytes: 2 or 4 (1 for byte forms) */
    uint8_t addrsize;    /* 2 or 4 */
    uint8_t seg;         /* segment of the memory operand, override applied */
    bool seg_override;   /* a segment prefix was given */
    uint8_t prefix_seg;  /* that prefix's segment, for string sources */
    uint8_t rep;         /* 0, REP_E (F3) or REP_NE (F2) */
    bool lock;           /* LOCK prefix */
    bool code32;         /* decoded for a 32-bit code segment */
    uint8_t nops;        /* visible operands */
    uint8_t opcode;      /* last opcode byte */
    uint8_t opcode_map;  /* ZydisOpcodeMap */
    uint8_t modrm_reg;   /* the ModRM reg field, for group opcodes */
    uint8_t base, index; /* NO_REG when absent */
    uint8_t scale;       /* 1, 2, 4, 8 */
    uint8_t mem_size;    /* bytes of the memory operand */
    int32_t disp;
    uint32_t imm, imm2;
    struct insn_operand op[3];
    uint8_t bytes[15]; /* raw bytes, for --trace and the x87 unit */
};

enum { REP_NONE, REP_E, REP_NE };

/* Kinds of memory access, for the paging permission checks. */
enum access_kind { ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC };

/* TLB permission bits: which accesses may use an entry without a walk. */
enum {
    TLB_READ_SUP = 1 << 0,
    TLB_READ_USER = 1 << 1,
    TLB_WRITE_SUP = 1 << 2,
    TLB_WRITE_USER = 1 << 3,
    TLB_EXEC_SUP = 1 << 4,
    TLB_EXEC_USER = 1 << 5,
    TLB_RAM_WRITE = 1 << 6, /* the host pointer may be written (RAM, not ROM) */
};

/* --- State helpers ------------------------------------------------------ */

static inline bool in_pmode(const struct x86_state *s)
{
    return s->cr0 & X86_CR0_PE;
}

static inline bool in_v86(const struct x86_state *s)
{
    return (s->cr0 & X86_CR0_PE) && (s->eflags & X86_FLAG_VM);
}

/* Whether the interpreter models the 80286 (enum cpu_model in cpu.h)
 * rather than the P6. */
static inline bool model_286(const struct interp *in)
{
    return unlikely(in->cpu->model == CPU_MODEL_80286);
}

/* The current privilege level, which always equals SS.DPL in protected
 * mode. */
static inline int cpl_of(const struct x86_state *s)
{
    if (!(s->cr0 & X86_CR0_PE))
        return 0;
    if (s->eflags & X86_FLAG_VM)
        return 3;
    return (s->sregs[S_SS].attrib & X86_DESC_DPL_MASK) >> X86_DESC_DPL_SHIFT;
}

static inline int iopl_of(const struct x86_state *s)
{
    return (s->eflags & X86_FLAG_IOPL) >> 12;
}

static inline uint32_t size_mask(unsigned size)
{
    return size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
}

static inline uint32_t sign_bit(unsigned size)
{
    return 1u << (size * 8 - 1);
}

static inline uint32_t sign_extend(uint32_t v, unsigned size)
{
    if (size == 1)
        return (uint32_t)(int32_t)(int8_t)v;
    if (size == 2)
        return (uint32_t)(int32_t)(int16_t)v;
    return v;
}

static inline uint32_t reg_get(const struct x86_state *s, unsigned reg, unsigned size, bool high)
{
    uint32_t v = s->regs[reg];
    if (size == 4)
        return v;
    if (size == 2)
        return v & 0xffff;
    return high ? (v >> 8) & 0xff : v & 0xff;
}

static inline void reg_set(struct x86_state *s, unsigned reg, unsigned size, bool high, uint32_t v)
{
    uint32_t *r = &s->regs[reg];
    if (size == 4)
        *r = v;
    else if (size == 2)
        *r = (*r & 0xffff0000u) | (v & 0xffff);
    else if (high)
        *r = (*r & 0xffff00ffu) | ((v & 0xff) << 8);
    else
        *r = (*r & 0xffffff00u) | (v & 0xff);
}

/* Stack pointer width from SS.B. */
static inline unsigned stack_size(const struct x86_state *s)
{
    return (s->sregs[S_SS].attrib & X86_DESC_DB) ? 4 : 2;
}

/* --- Exceptions (except.c) ---------------------------------------------- */

#define NO_ERROR_CODE (-1)

/* Unwinds the current instruction and delivers the exception; never
 * returns. error is NO_ERROR_CODE for exceptions without one. */
_Noreturn void raise_exception(struct interp *in, int vector, int32_t error);

static inline _Noreturn void raise_gp(struct interp *in, uint32_t error)
{
    raise_exception(in, X86_EXC_GP, (int32_t)error);
}

static inline _Noreturn void raise_ud(struct interp *in)
{
    raise_exception(in, X86_EXC_UD, NO_ERROR_CODE);
}

/* How an event reached the CPU; selects privilege checks, the EXT bit and
 * the return address. */
enum event_kind {
    EVENT_EXCEPTION, /* fault or trap raised by the CPU */
    EVENT_EXTERNAL,  /* INTR or NMI */
    EVENT_SOFTWARE,  /* INT n, INT3, INTO */
    EVENT_ICEBP,     /* INT1 (F1): a software event without the DPL check */
};

/* Delivers an interrupt or exception through the IVT or IDT. eip is the
 * return address to push. */
void deliver_event(struct interp *in, int vector, enum event_kind kind, int32_t error,
                   uint32_t return_eip);

/* Called at the catch point after raise_exception unwound: applies the
 * double-fault rules and delivers. */
void handle_raised_exception(struct interp *in);

/* Validates the stack segment a privilege change switches to and returns
 * its descriptor cache (Intel SDM vol. 3, 6.12.1 and CALL's operation);
 * faults are #TS/#SS with the EXT bit ext. */
void check_new_stack(struct interp *in, uint16_t ss_sel, unsigned dpl, int ext,
                     struct x86_segment *out);

/* Reads the SS:ESP for privilege level dpl from the current TSS. */
void tss_stack(struct interp *in, unsigned dpl, uint16_t *ss, uint32_t *esp, int ext);

/* Far transfers (far.c), in every mode. */
void far_jump(struct interp *in, uint16_t selector, uint32_t offset, unsigned opsize);
void far_call(struct interp *in, uint16_t selector, uint32_t offset, unsigned opsize,
              uint32_t return_eip);
void far_return(struct interp *in, unsigned opsize, uint32_t extra);
void interrupt_return(struct interp *in, unsigned opsize);

/* Task switch (task.c). reason says how the switch was caused. */
enum task_switch_reason { TASK_JMP, TASK_CALL, TASK_IRET, TASK_INT };
void task_switch(struct interp *in, uint16_t selector, uint32_t desc_lo, uint32_t desc_hi,
                 enum task_switch_reason reason, int32_t error, uint32_t return_eip);

/* --- Memory (mmu.c) ------------------------------------------------------ */

/* Translates a linear address for an access; raises #PF. system means an
 * implicit supervisor access (descriptor tables, TSS), done at CPL 0 rights
 * whatever the CPL. */
struct interp_tlb_entry *tlb_fill(struct interp *in, uint32_t linear, enum access_kind kind,
                                  bool user);
void tlb_flush(struct interp *in, bool include_global);
void tlb_flush_page(struct interp *in, uint32_t linear);

uint32_t linear_read(struct interp *in, uint32_t linear, unsigned size, bool system);
void linear_write(struct interp *in, uint32_t linear, unsigned size, uint32_t value, bool system);
/* Checks that a write of size bytes at linear would not fault, without
 * writing (for instructions that must test every destination first). */
void linear_probe_write(struct interp *in, uint32_t linear, unsigned size, bool system);
/* Reads instruction bytes (execute access) up to the end of the page. */
uint32_t linear_fetch_phys(struct interp *in, uint32_t linear);

/* Physical memory with the A20 mask applied. */
uint32_t phys_read(struct interp *in, uint32_t addr, unsigned size);
void phys_write(struct interp *in, uint32_t addr, unsigned size, uint32_t value);

/* --- Segmentation (seg.c) ------------------------------------------------ */

/* Checks an access of size bytes at offset in a segment (limit, type,
 * presence) and returns the linear address; raises #GP(0) or #SS(0). */
uint32_t seg_linear(struct interp *in, int sreg, uint32_t offset, unsigned size, bool write);

uint32_t mem_read(struct interp *in, int sreg, uint32_t offset, unsigned size);
void mem_write(struct interp *in, int sreg, uint32_t offset, unsigned size, uint32_t value);

/* Reads a descriptor from the GDT or LDT; raises #GP(sel) (or the given
 * vector) when the selector lies outside the table. */
void descriptor_read(struct interp *in, uint16_t selector, uint32_t *lo, uint32_t *hi, int vector);
/* Returns false instead of raising, for LAR/LSL/VERR/VERW. */
bool descriptor_try_read(struct interp *in, uint16_t selector, uint32_t *lo, uint32_t *hi);
void descriptor_set_accessed(struct interp *in, uint16_t selector, uint32_t hi);
void descriptor_to_segment(struct x86_segment *seg, uint16_t selector, uint32_t lo, uint32_t hi);

/* Loads a data or stack segment register (MOV, POP, LDS...), with the
 * protected-mode checks. */
void load_segment(struct interp *in, int sreg, uint16_t selector);
/* Loads a data segment register with the checks a task switch does
 * (raising #TS rather than #GP). */
void load_segment_for_task(struct interp *in, int sreg, uint16_t selector);
/* Sets a segment register the real-mode/virtual-8086 way. */
void load_segment_real(struct interp *in, int sreg, uint16_t selector);
/* After a privilege drop, invalidates data segments the new CPL may not
 * use (Intel SDM vol. 3, RET and IRET). */
void invalidate_segments_for_cpl(struct interp *in);

/* Pushes onto an explicit SS:ESP (a stack being switched to); a limit
 * violation raises #SS(fault_error). */
void stack_push_at(struct interp *in, const struct x86_segment *ss, uint32_t *esp, unsigned size,
                   uint32_t value, int32_t fault_error);

void push(struct interp *in, unsigned size, uint32_t value);
uint32_t pop(struct interp *in, unsigned size);
/* Reads the stack at ESP + offset without moving ESP. */
uint32_t stack_peek(struct interp *in, uint32_t offset, unsigned size);

/* --- Operands (decode.c) ------------------------------------------------- */

uint32_t insn_ea(struct interp *in, const struct insn *i);
uint32_t op_read(struct interp *in, const struct insn *i, int n);
void op_write(struct interp *in, const struct insn *i, int n, uint32_t value);

/* The code cache and decoder. */
bool code_cache_init(struct interp *in);
void code_cache_destroy(struct interp *in);
void code_cache_flush(struct interp *in);
const struct insn *fetch_insn(struct interp *in, struct insn *scratch);
void trace_insn(struct interp *in, const struct insn *i);

/* --- Flags (ops_alu.c) --------------------------------------------------- */

#define FLAGS_ARITH                                                                                \
    (X86_FLAG_CF | X86_FLAG_PF | X86_FLAG_AF | X86_FLAG_ZF | X86_FLAG_SF | X86_FLAG_OF)

bool condition_holds(const struct x86_state *s, unsigned cc);
/* Writes FLAGS/EFLAGS the way POPF does at the current privilege. */
void write_eflags(struct interp *in, uint32_t value, unsigned size);
/* Sets EFLAGS to value, keeping bit 1 set and the reserved bits clear. */
void set_eflags_raw(struct x86_state *s, uint32_t value);

/* --- Handler tables ------------------------------------------------------- */

struct insn_handler {
    uint16_t mnemonic;
    insn_fn exec;
};

void ops_alu_register(insn_fn *table);
void ops_data_register(insn_fn *table);
void ops_flow_register(insn_fn *table);
void ops_string_register(insn_fn *table);
void ops_system_register(insn_fn *table);

/* MOV to and from control and debug registers (ops_system.c). */
void exec_mov_cr_dr(struct interp *in, const struct insn *i);

/* ESC opcodes D8-DF and FWAIT: checks CR0.EM/TS and calls the x87 unit. */
void exec_x87(struct interp *in, const struct insn *i);

/* The handler of an instruction that raises #UD. */
void exec_invalid(struct interp *in, const struct insn *i);

/* I/O permission (ops_string.c): raises #GP(0) unless the current
 * privilege and the TSS bitmap allow an access of size bytes at port. */
void check_io_permission(struct interp *in, uint16_t port, unsigned size);

/* Debug registers (debugreg.c). debug_update() recomputes the enabled
 * breakpoints after DR7 or CR4 changed. */
void debug_update(struct interp *in);
/* Raises the #DB fault of an instruction breakpoint at linear, unless RF. */
void debug_check_code(struct interp *in, uint32_t linear);
/* Record the data or I/O breakpoints an access hits. */
void debug_check_data(struct interp *in, uint32_t linear, unsigned size, bool write);
void debug_check_io(struct interp *in, uint16_t port, unsigned size);
/* The general-detect fault of MOV to or from a debug register. */
void debug_check_access_to_dr(struct interp *in);
/* Delivers the #DB trap after an instruction: the breakpoints it hit and
 * single-step. */
void debug_trap(struct interp *in, bool single_step);

static inline bool debug_armed(const struct interp *in)
{
    return (in->debug_code | in->debug_data | in->debug_io) != 0;
}

/* Whether misaligned data accesses raise #AC (CPL 3, CR0.AM, EFLAGS.AC). */
static inline bool alignment_check_on(const struct x86_state *s)
{
    return unlikely(s->eflags & X86_FLAG_AC) && (s->cr0 & X86_CR0_AM) && cpl_of(s) == 3;
}

/* Model-specific registers and CPUID (ops_system.c). */
uint64_t read_tsc(struct interp *in);

#endif
