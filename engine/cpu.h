/* The CPU backend interface and the x86 state every backend shares.
 *
 * All backends (interp, dbt, kvm) run the same machine and read and write the
 * same struct x86_state, so a snapshot taken under one restores under another.
 * Field meanings follow the Intel SDM, volume 3 (system programming).
 */
#ifndef VIVARIUM_CPU_H
#define VIVARIUM_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

struct machine;
struct vmstate_desc;

enum x86_reg { R_EAX, R_ECX, R_EDX, R_EBX, R_ESP, R_EBP, R_ESI, R_EDI, X86_NR_REGS };
enum x86_sreg { S_ES, S_CS, S_SS, S_DS, S_FS, S_GS, X86_NR_SREGS };

/* EFLAGS bits. */
#define X86_FLAG_CF    0x00000001u
#define X86_FLAG_FIXED 0x00000002u /* bit 1 always reads as one */
#define X86_FLAG_PF    0x00000004u
#define X86_FLAG_AF    0x00000010u
#define X86_FLAG_ZF    0x00000040u
#define X86_FLAG_SF    0x00000080u
#define X86_FLAG_TF    0x00000100u
#define X86_FLAG_IF    0x00000200u
#define X86_FLAG_DF    0x00000400u
#define X86_FLAG_OF    0x00000800u
#define X86_FLAG_IOPL  0x00003000u
#define X86_FLAG_NT    0x00004000u
#define X86_FLAG_RF    0x00010000u
#define X86_FLAG_VM    0x00020000u
#define X86_FLAG_AC    0x00040000u
#define X86_FLAG_VIF   0x00080000u
#define X86_FLAG_VIP   0x00100000u
#define X86_FLAG_ID    0x00200000u

/* Control register bits. */
#define X86_CR0_PE 0x00000001u
#define X86_CR0_MP 0x00000002u
#define X86_CR0_EM 0x00000004u
#define X86_CR0_TS 0x00000008u
#define X86_CR0_ET 0x00000010u
#define X86_CR0_NE 0x00000020u
#define X86_CR0_WP 0x00010000u
#define X86_CR0_AM 0x00040000u
#define X86_CR0_NW 0x20000000u
#define X86_CR0_CD 0x40000000u
#define X86_CR0_PG 0x80000000u

#define X86_CR4_VME    0x0001u
#define X86_CR4_PVI    0x0002u
#define X86_CR4_TSD    0x0004u
#define X86_CR4_DE     0x0008u
#define X86_CR4_PSE    0x0010u
#define X86_CR4_PAE    0x0020u
#define X86_CR4_MCE    0x0040u
#define X86_CR4_PGE    0x0080u
#define X86_CR4_PCE    0x0100u
#define X86_CR4_OSFXSR 0x0200u

#define X86_EFER_NXE 0x0800u

/* Exception vectors. */
enum x86_exception {
    X86_EXC_DE = 0,
    X86_EXC_DB = 1,
    X86_EXC_NMI = 2,
    X86_EXC_BP = 3,
    X86_EXC_OF = 4,
    X86_EXC_BR = 5,
    X86_EXC_UD = 6,
    X86_EXC_NM = 7,
    X86_EXC_DF = 8,
    X86_EXC_TS = 10,
    X86_EXC_NP = 11,
    X86_EXC_SS = 12,
    X86_EXC_GP = 13,
    X86_EXC_PF = 14,
    X86_EXC_MF = 16,
    X86_EXC_AC = 17,
    X86_EXC_MC = 18,
};

/* Descriptor attribute bits as kept in x86_segment.attrib: the access byte
 * in bits 0-7 and the flags nibble (AVL, L, D/B, G) in bits 12-15, the same
 * layout as bits 8-23 of a descriptor's high dword. */
#define X86_DESC_TYPE_MASK 0x000fu
#define X86_DESC_ACCESSED  0x0001u
#define X86_DESC_S         0x0010u /* code/data rather than system */
#define X86_DESC_DPL_SHIFT 5
#define X86_DESC_DPL_MASK  0x0060u
#define X86_DESC_P         0x0080u
#define X86_DESC_AVL       0x1000u
#define X86_DESC_L         0x2000u
#define X86_DESC_DB        0x4000u
#define X86_DESC_G         0x8000u

/* A segment register with its hidden descriptor cache. The limit is the
 * byte-granular effective limit, already scaled when G is set. */
struct x86_segment {
    uint16_t selector;
    uint16_t attrib;
    uint32_t base;
    uint32_t limit;
};

struct x86_table_register {
    uint32_t base;
    uint16_t limit;
};

/* The x87 FPU. Registers are stored in physical order (R0-R7), each as the
 * 80-bit extended-precision bytes; the host's long double has the same
 * format, so backends may load them directly. tag holds the full two-bit tag
 * word as FSTENV stores it. */
struct x86_fpu {
    uint16_t control;
    uint16_t status; /* including TOP in bits 11-13 */
    uint16_t tag;
    uint16_t last_opcode;
    uint32_t last_ip;
    uint16_t last_cs;
    uint32_t last_dp;
    uint16_t last_ds;
    uint8_t st[8][10];
};

/* Model-specific registers a 32-bit operating system touches. */
struct x86_msrs {
    uint64_t tsc;
    uint64_t apic_base;
    uint64_t efer;
    uint32_t sysenter_cs;
    uint32_t sysenter_esp;
    uint32_t sysenter_eip;
    uint64_t mtrr_def_type;
    uint64_t pat;
};

struct x86_state {
    uint32_t regs[X86_NR_REGS];
    uint32_t eip;
    uint32_t eflags;
    struct x86_segment sregs[X86_NR_SREGS];
    struct x86_segment ldtr;
    struct x86_segment tr;
    struct x86_table_register gdtr;
    struct x86_table_register idtr;
    uint32_t cr0, cr2, cr3, cr4;
    uint32_t dr[8];
    struct x86_msrs msr;
    struct x86_fpu fpu;

    /* Mask applied to every physical address: bit 20 is cleared while the
     * A20 gate is closed. */
    uint32_t a20_mask;

    bool halted;   /* in HLT, waiting for an interrupt */
    bool shutdown; /* triple fault: nothing runs until reset */
    bool nmi_pending;
    bool nmi_blocked;   /* inside an NMI handler, until IRET */
    bool irq_inhibited; /* the one-instruction shadow after STI or MOV SS */
};

/* Why a backend's run() returned. */
enum cpu_exit {
    CPU_EXIT_STOP,     /* cpu_request_stop() was called, or the deadline passed */
    CPU_EXIT_HALT,     /* HLT with no interrupt deliverable */
    CPU_EXIT_SHUTDOWN, /* triple fault */
    CPU_EXIT_ERROR,    /* the backend cannot continue (e.g. a KVM internal error) */
};

/* Which processor the interpreter behaves as. Everything a guest runs on
 * is the P6 model; the 80286 model exists to check the interpreter against
 * the hardware-captured 80286 real-mode vectors (tests/sst-run.c), and
 * differs only where that processor does (see docs/COMPATIBILITY.md):
 * LOCK is accepted everywhere, FS/GS and the 386 additions are #UD, word
 * accesses at offset FFFF wrap in string instructions and raise #GP
 * elsewhere (the stack included), real-mode FLAGS bits 12-15 stay clear,
 * instructions longer than 10 bytes are #UD, and the flags the manuals
 * leave undefined take the values the 286 leaves. */
enum cpu_model {
    CPU_MODEL_P6 = 0, /* the default */
    CPU_MODEL_80286,
};

struct cpu;

/* Each backend fills one of these. Every function but kick() is called on the
 * vCPU thread; kick() may be called from any thread. */
struct cpu_backend {
    const char *name;
    /* Returns false with *error set when this backend cannot run here. */
    bool (*init)(struct cpu *cpu, GError **error);
    void (*destroy)(struct cpu *cpu);
    /* Runs guest code until a stop is requested, the virtual clock passes
     * deadline_ns, the CPU halts or the machine shuts down. */
    enum cpu_exit (*run)(struct cpu *cpu, int64_t deadline_ns);
    void (*get_state)(struct cpu *cpu, struct x86_state *state);
    void (*set_state)(struct cpu *cpu, const struct x86_state *state);
    /* The INTR line from the interrupt controller changed. */
    void (*set_irq)(struct cpu *cpu, bool level);
    void (*nmi)(struct cpu *cpu);
    /* Makes run() return soon; safe from any thread. */
    void (*kick)(struct cpu *cpu);
};

struct memory;
struct ioport_bus;
struct vclock;

/* The machine-facing half of a CPU: what every backend needs from the PC. */
struct cpu {
    const struct cpu_backend *backend;
    struct machine *machine;
    /* What the backend reaches directly: physical memory, ports, time. */
    struct memory *mem;
    struct ioport_bus *io;
    struct vclock *clock;
    void *backend_data;
    /* Set from any thread to make run() return; cleared by the machine loop. */
    volatile int stop_requested;
    /* Asks the interrupt controller for the vector of the pending interrupt
     * (the INTA cycle); returns -1 if the request went away. */
    int (*intr_ack)(void *opaque);
    void *intr_opaque;
    /* Trace each executed instruction (--trace), if the backend can. */
    bool trace;
    /* The processor modelled by the interpreter (and the translator, which
     * leaves every instruction to the interpreter under a model other than
     * the P6); set before the backend's init. */
    enum cpu_model model;
};

/* Puts state into the architectural power-on state (Intel SDM vol. 3,
 * table 9-1): real mode, CS:IP = F000:FFF0 with CS base FFFF0000. */
void x86_state_reset(struct x86_state *state);

/* The state table of struct x86_state, for snapshots and --dump-state. */
extern const struct vmstate_desc x86_state_vmstate;

extern const struct cpu_backend cpu_backend_interp;
extern const struct cpu_backend cpu_backend_dbt;
extern const struct cpu_backend cpu_backend_kvm;

/* Looks a backend up by name ("interp", "dbt", "kvm"); NULL if unknown. */
const struct cpu_backend *cpu_backend_by_name(const char *name);

#endif
