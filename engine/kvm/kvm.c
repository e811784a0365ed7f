/* The KVM backend: the guest's CPU runs natively under /dev/kvm, and every
 * port I/O and MMIO exit goes to the same device models as the other
 * backends.
 *
 * Interrupts come from Vivarium's own PIC (no in-kernel irqchip): KVM is
 * asked for an interrupt window whenever the INTR line is high, and the
 * vector is injected with KVM_INTERRUPT once the guest can take it. That
 * keeps one interrupt controller, and one snapshot format, for all backends.
 *
 * Kernel documentation: Documentation/virt/kvm/api.rst.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../cpu.h"
#include "../ioport.h"
#include "../memory.h"
#include "../vclock.h"

#define KVM_MAX_SLOTS 64
#define KVM_MAX_CPUID 100

/* The signal that makes KVM_RUN return: a real-time one, as SIGUSR1 and
 * SIGUSR2 belong to the engine's front end (SIGUSR1 writes a screenshot). */
static int kick_signal(void)
{
    return SIGRTMIN + 1;
}

/* MSR numbers (Intel SDM vol. 4). */
#define MSR_IA32_TSC          0x00000010
#define MSR_IA32_APIC_BASE    0x0000001b
#define MSR_APIC_BASE_ENABLE  (1ull << 11)
#define MSR_IA32_SYSENTER_CS  0x00000174
#define MSR_IA32_SYSENTER_ESP 0x00000175
#define MSR_IA32_SYSENTER_EIP 0x00000176
#define MSR_IA32_CR_PAT       0x00000277
#define MSR_MTRR_DEF_TYPE     0x000002ff
#define MSR_EFER              0xc0000080

struct kvm_slot {
    uint64_t guest_addr;
    uint64_t size;
    void *host;
    bool readonly;
    bool log_dirty; /* KVM logs the pages the guest writes (the framebuffer) */
};

struct kvm_backend {
    struct cpu *cpu;
    int sys_fd, vm_fd, vcpu_fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t vcpu_thread;
    bool thread_known;
    timer_t deadline_timer;
    bool timer_created;
    bool readonly_mem;
    struct kvm_slot slots[KVM_MAX_SLOTS];
    unsigned nr_slots;
    volatile bool irq_line;
    bool halted;
    uint32_t a20_mask; /* kept for the shared state: KVM itself has no A20 gate */
    bool warned_a20;
};

static struct kvm_backend *kvm_of(struct cpu *cpu)
{
    return cpu->backend_data;
}

static void kick_signal_handler(int signo)
{
    /* Nothing to do: the signal only makes KVM_RUN return with EINTR. */
    (void)signo;
}

/* --- memory slots ------------------------------------------------------- */

static int set_slot(struct kvm_backend *kvm, unsigned index, const struct kvm_slot *slot)
{
    uint32_t flags = 0;
    if (slot && slot->readonly)
        flags |= KVM_MEM_READONLY;
    if (slot && slot->log_dirty)
        flags |= KVM_MEM_LOG_DIRTY_PAGES;
    struct kvm_userspace_memory_region region = {
        .slot = index,
        .flags = flags,
        .guest_phys_addr = slot ? slot->guest_addr : 0,
        .memory_size = slot ? slot->size : 0,
        .userspace_addr = slot ? (uint64_t)(uintptr_t)slot->host : 0,
    };
    return ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
}

static bool page_logs_dirty(const struct memory_page *page)
{
    return page->region && page->region->log_dirty;
}

/* Rebuilds KVM's slots from the memory map: every run of pages backed by
 * consecutive host memory with the same protection becomes one slot. ROM is
 * mapped read-only so that writes to it exit as MMIO and are dropped; pages
 * with no host memory (MMIO) are left out, so accesses to them exit. Regions
 * that want their writes seen (the framebuffer) get slots of their own with
 * KVM's dirty-page log on; a new log starts empty, so their pages count as
 * written. */
static void sync_memory_slots(void *opaque)
{
    struct kvm_backend *kvm = opaque;
    struct memory *mem = kvm->cpu->mem;
    for (unsigned i = 0; i < kvm->nr_slots; i++)
        set_slot(kvm, i, NULL);
    kvm->nr_slots = 0;

    uint64_t addr = 0;
    while (addr < (1ull << 32) && kvm->nr_slots < KVM_MAX_SLOTS) {
        struct memory_page *page = memory_page(mem, addr);
        bool readonly = page->flags & MEMORY_PAGE_READONLY;
        if (!page->host || (readonly && !kvm->readonly_mem)) {
            addr += GUEST_PAGE_SIZE;
            continue;
        }
        struct kvm_slot slot = {.guest_addr = addr,
                                .host = page->host,
                                .readonly = readonly,
                                .log_dirty = !readonly && page_logs_dirty(page)};
        uint64_t end = addr + GUEST_PAGE_SIZE;
        for (; end < (1ull << 32); end += GUEST_PAGE_SIZE) {
            struct memory_page *next = memory_page(mem, end);
            if (next->host != page->host + (end - addr) ||
                (bool)(next->flags & MEMORY_PAGE_READONLY) != readonly ||
                page_logs_dirty(next) != page_logs_dirty(page))
                break;
        }
        slot.size = end - addr;
        if (set_slot(kvm, kvm->nr_slots, &slot) == 0) {
            kvm->slots[kvm->nr_slots++] = slot;
            if (slot.log_dirty)
                memory_note_write(mem, slot.guest_addr, slot.size);
        } else
            fprintf(stderr,
                    "kvm: cannot map %#" G_GINT64_MODIFIER "x-%#" G_GINT64_MODIFIER "x: %s\n",
                    (guint64)addr, (guint64)end - 1, g_strerror(errno));
        addr = end;
    }
}

/* Folds KVM's dirty-page log of the logged slots within [addr, addr+len)
 * into the memory map's dirty bits. KVM_GET_DIRTY_LOG hands over and clears
 * the log of a whole slot at once, so every page it names is noted, inside
 * the range or not. */
static void sync_dirty_log(void *opaque, uint64_t addr, uint64_t len)
{
    struct kvm_backend *kvm = opaque;
    for (unsigned i = 0; i < kvm->nr_slots; i++) {
        struct kvm_slot *slot = &kvm->slots[i];
        if (!slot->log_dirty || slot->guest_addr >= addr + len ||
            slot->guest_addr + slot->size <= addr)
            continue;
        uint64_t pages = slot->size / GUEST_PAGE_SIZE;
        size_t words = (pages + 63) / 64;
        uint64_t *bitmap = g_new0(uint64_t, words);
        struct kvm_dirty_log log = {.slot = i, .dirty_bitmap = bitmap};
        if (ioctl(kvm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
            /* Without the log, assume the worst: everything was written. */
            memory_note_write(kvm->cpu->mem, slot->guest_addr, slot->size);
            g_free(bitmap);
            continue;
        }
        for (size_t w = 0; w < words; w++) {
            for (uint64_t bits = bitmap[w]; bits; bits &= bits - 1) {
                uint64_t page = w * 64 + (uint64_t)__builtin_ctzll(bits);
                memory_note_write(kvm->cpu->mem, slot->guest_addr + page * GUEST_PAGE_SIZE,
                                  GUEST_PAGE_SIZE);
            }
        }
        g_free(bitmap);
    }
}

/* --- CPUID --------------------------------------------------------------- */

/* CPUID feature bits (Intel SDM vol. 2, CPUID; AMD APM vol. 3, appendix E). */
#define CPUID_1_EDX_KEPT                                                                           \
    ((1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) |           \
     (1u << 7) | (1u << 8) | (1u << 11) | (1u << 13) | (1u << 15) | (1u << 16) | (1u << 17) |      \
     (1u << 19) | (1u << 23))
/* ECX: MOVBE, POPCNT and "running under a hypervisor". */
#define CPUID_1_ECX_KEPT        ((1u << 22) | (1u << 23) | (1u << 31))
#define CPUID_7_EBX_ERMS        (1u << 9)
#define CPUID_80000001_EDX_NX   (1u << 20)
#define CPUID_80000001_ECX_KEPT ((1u << 0) | (1u << 5)) /* LAHF/SAHF, LZCNT */
#define CPUID_LEAF_KVM_FEATURES 0x40000001u

/* Takes what KVM supports and keeps what this machine model offers, so that
 * a guest sees a CPU whose whole state the shared struct x86_state holds
 * (and that can move to the software backends through a snapshot):
 * - leaf 1 EDX: FPU, VME, DE, PSE, TSC, MSR, PAE, MCE, CX8, SEP, PGE, CMOV,
 *   PAT, PSE-36, CLFLUSH, MMX. Not the local APIC (the PIC is in user
 *   space and there is no APIC device), MTRRs and machine-check banks
 *   (registers the state does not keep), nor FXSR and SSE/SSE2: the state
 *   has the x87 registers but no XMM registers or MXCSR.
 * - leaf 1 ECX: only instructions without state of their own (MOVBE,
 *   POPCNT) and the hypervisor bit; no SSE3 and later, XSAVE/AVX, x2APIC,
 *   TSC deadline, MONITOR, VMX or PCID.
 * - leaf 7: only fast REP MOVSB/STOSB; leaf 0xD (XSAVE) empty.
 * - 0x80000001: NX (EFER is kept), LAHF/SAHF, LZCNT; no long mode (a 32-bit
 *   PC), SYSCALL, RDTSCP or SVM.
 * - KVM's paravirtual features (kvmclock and the like): none, as they need
 *   MSRs and shared pages the other backends do not have; the signature leaf
 *   stays, so a guest can still tell it runs under KVM. */
static void trim_cpuid_entry(struct kvm_cpuid_entry2 *e)
{
    switch (e->function) {
    case 1:
        e->edx &= CPUID_1_EDX_KEPT;
        e->ecx &= CPUID_1_ECX_KEPT;
        e->ebx &= 0x0000ffffu; /* one logical processor, APIC ID 0 */
        break;
    case 7:
        e->eax = e->index == 0 ? 0 : e->eax; /* no further subleaves */
        e->ebx &= e->index == 0 ? CPUID_7_EBX_ERMS : 0;
        e->ecx = e->edx = 0;
        break;
    case 0xd:
        e->eax = e->ebx = e->ecx = e->edx = 0;
        break;
    case 0x80000001:
        e->edx &= CPUID_80000001_EDX_NX;
        e->ecx &= CPUID_80000001_ECX_KEPT;
        break;
    case CPUID_LEAF_KVM_FEATURES:
        e->eax = e->edx = 0;
        break;
    }
}

static bool setup_cpuid(struct kvm_backend *kvm, GError **error)
{
    size_t size = sizeof(struct kvm_cpuid2) + KVM_MAX_CPUID * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = g_malloc0(size);
    cpuid->nent = KVM_MAX_CPUID;
    if (ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "KVM_GET_SUPPORTED_CPUID failed: %s", g_strerror(errno));
        g_free(cpuid);
        return false;
    }
    for (unsigned i = 0; i < cpuid->nent; i++)
        trim_cpuid_entry(&cpuid->entries[i]);
    int rc = ioctl(kvm->vcpu_fd, KVM_SET_CPUID2, cpuid);
    g_free(cpuid);
    if (rc < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "KVM_SET_CPUID2 failed: %s", g_strerror(errno));
        return false;
    }
    return true;
}

/* --- init / destroy -------------------------------------------------------- */

static void kvm_destroy(struct cpu *cpu)
{
    struct kvm_backend *kvm = kvm_of(cpu);
    if (!kvm)
        return;
    if (kvm->timer_created)
        timer_delete(kvm->deadline_timer);
    if (kvm->run)
        munmap(kvm->run, kvm->run_size);
    if (kvm->vcpu_fd >= 0)
        close(kvm->vcpu_fd);
    if (kvm->vm_fd >= 0)
        close(kvm->vm_fd);
    if (kvm->sys_fd >= 0)
        close(kvm->sys_fd);
    if (cpu->mem && cpu->mem->map_changed == sync_memory_slots)
        cpu->mem->map_changed = NULL;
    if (cpu->mem && cpu->mem->sync_dirty == sync_dirty_log)
        cpu->mem->sync_dirty = NULL;
    g_free(kvm);
    cpu->backend_data = NULL;
}

static bool fail_errno(GError **error, const char *what)
{
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", what,
                g_strerror(errno));
    return false;
}

static bool kvm_init(struct cpu *cpu, GError **error)
{
    struct kvm_backend *kvm = g_new0(struct kvm_backend, 1);
    kvm->cpu = cpu;
    kvm->sys_fd = kvm->vm_fd = kvm->vcpu_fd = -1;
    kvm->a20_mask = 0xffffffffu;
    cpu->backend_data = kvm;

    kvm->sys_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm->sys_fd < 0) {
        fail_errno(error, "cannot open /dev/kvm");
        goto fail;
    }
    int version = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "/dev/kvm speaks API version %d, not %d", version, KVM_API_VERSION);
        goto fail;
    }
    if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0 ||
        ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "this kernel's KVM lacks user memory or immediate exit support");
        goto fail;
    }
    kvm->vm_fd = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
    if (kvm->vm_fd < 0) {
        fail_errno(error, "KVM refused to create a VM");
        goto fail;
    }
    kvm->readonly_mem = ioctl(kvm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
    /* Intel VMX needs a TSS region below 4 GiB for real mode emulation; the
     * address sits in the firmware's reserved area. AMD ignores it. */
    ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, 0xfeffd000ul);

    kvm->vcpu_fd = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, 0);
    if (kvm->vcpu_fd < 0) {
        fail_errno(error, "KVM refused to create a vCPU");
        goto fail;
    }
    int run_size = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0) {
        fail_errno(error, "KVM_GET_VCPU_MMAP_SIZE failed");
        goto fail;
    }
    kvm->run_size = (size_t)run_size;
    kvm->run = mmap(NULL, kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, kvm->vcpu_fd, 0);
    if (kvm->run == MAP_FAILED) {
        kvm->run = NULL;
        fail_errno(error, "cannot map the vCPU's run structure");
        goto fail;
    }
    if (!setup_cpuid(kvm, error))
        goto fail;

    struct sigaction sa = {.sa_handler = kick_signal_handler, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(kick_signal(), &sa, NULL);

    cpu->mem->map_changed = sync_memory_slots;
    cpu->mem->map_changed_opaque = kvm;
    cpu->mem->sync_dirty = sync_dirty_log;
    cpu->mem->sync_dirty_opaque = kvm;
    sync_memory_slots(kvm);
    return true;

fail:
    kvm_destroy(cpu);
    return false;
}

/* --- state conversion ----------------------------------------------------- */

static void segment_to_kvm(const struct x86_segment *s, struct kvm_segment *k)
{
    *k = (struct kvm_segment){
        .base = s->base,
        .limit = s->limit,
        .selector = s->selector,
        .type = s->attrib & X86_DESC_TYPE_MASK,
        .present = !!(s->attrib & X86_DESC_P),
        .dpl = (s->attrib & X86_DESC_DPL_MASK) >> X86_DESC_DPL_SHIFT,
        .db = !!(s->attrib & X86_DESC_DB),
        .s = !!(s->attrib & X86_DESC_S),
        .l = !!(s->attrib & X86_DESC_L),
        .g = !!(s->attrib & X86_DESC_G),
        .avl = !!(s->attrib & X86_DESC_AVL),
        .unusable = !(s->attrib & X86_DESC_P),
    };
}

static void segment_from_kvm(const struct kvm_segment *k, struct x86_segment *s)
{
    s->selector = k->selector;
    s->base = (uint32_t)k->base;
    s->limit = k->limit;
    s->attrib =
        (uint16_t)((k->type & 0xf) | (k->s ? X86_DESC_S : 0) | (k->dpl << X86_DESC_DPL_SHIFT) |
                   (k->present && !k->unusable ? X86_DESC_P : 0) | (k->avl ? X86_DESC_AVL : 0) |
                   (k->l ? X86_DESC_L : 0) | (k->db ? X86_DESC_DB : 0) | (k->g ? X86_DESC_G : 0));
}

static const uint32_t shared_msrs[] = {
    MSR_IA32_TSC,          MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP,
    MSR_IA32_SYSENTER_EIP, MSR_IA32_CR_PAT,      MSR_EFER,
    MSR_MTRR_DEF_TYPE,
};

/* A KVM_GET_MSRS/KVM_SET_MSRS list naming every shared MSR. */
static struct kvm_msrs *new_msr_list(void)
{
    struct kvm_msrs *msrs =
        g_malloc0(sizeof(*msrs) + G_N_ELEMENTS(shared_msrs) * sizeof(struct kvm_msr_entry));
    msrs->nmsrs = G_N_ELEMENTS(shared_msrs);
    for (unsigned i = 0; i < G_N_ELEMENTS(shared_msrs); i++)
        msrs->entries[i].index = shared_msrs[i];
    return msrs;
}

static uint64_t *msr_field(struct x86_msrs *msr, uint32_t index, uint64_t *scratch)
{
    switch (index) {
    case MSR_IA32_TSC:
        return &msr->tsc;
    case MSR_IA32_CR_PAT:
        return &msr->pat;
    case MSR_EFER:
        return &msr->efer;
    case MSR_MTRR_DEF_TYPE:
        return &msr->mtrr_def_type;
    }
    return scratch;
}

/* The x87 tag word: KVM (like FXSAVE) keeps one "valid" bit per register,
 * the shared state keeps the full two-bit tags, which follow from the
 * register contents (Intel SDM vol. 1, 8.1.7). */
static unsigned x87_tag_of(const uint8_t reg[10])
{
    uint16_t exponent = (uint16_t)((reg[9] & 0x7f) << 8 | reg[8]);
    bool integer_bit = reg[7] & 0x80;
    bool mantissa_zero = true;
    for (int i = 0; i < 8; i++)
        mantissa_zero = mantissa_zero && reg[i] == 0;
    if (exponent == 0x7fff)
        return 2; /* special */
    if (exponent == 0)
        return mantissa_zero ? 1 /* zero */ : 2 /* denormal */;
    return integer_bit ? 0 /* valid */ : 2 /* unnormal */;
}

static void kvm_get_state(struct cpu *cpu, struct x86_state *state)
{
    struct kvm_backend *kvm = kvm_of(cpu);
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu;
    struct kvm_debugregs debug;
    struct kvm_vcpu_events events;
    memset(state, 0, sizeof(*state));
    if (ioctl(kvm->vcpu_fd, KVM_GET_REGS, &regs) < 0 ||
        ioctl(kvm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0 ||
        ioctl(kvm->vcpu_fd, KVM_GET_FPU, &fpu) < 0) {
        fprintf(stderr, "kvm: cannot read the vCPU state: %s\n", g_strerror(errno));
        return;
    }
    const uint64_t gprs[X86_NR_REGS] = {regs.rax, regs.rcx, regs.rdx, regs.rbx,
                                        regs.rsp, regs.rbp, regs.rsi, regs.rdi};
    for (int i = 0; i < X86_NR_REGS; i++)
        state->regs[i] = (uint32_t)gprs[i];
    state->eip = (uint32_t)regs.rip;
    state->eflags = (uint32_t)regs.rflags;

    const struct kvm_segment *segs[X86_NR_SREGS] = {&sregs.es, &sregs.cs, &sregs.ss,
                                                    &sregs.ds, &sregs.fs, &sregs.gs};
    for (int i = 0; i < X86_NR_SREGS; i++)
        segment_from_kvm(segs[i], &state->sregs[i]);
    segment_from_kvm(&sregs.ldt, &state->ldtr);
    segment_from_kvm(&sregs.tr, &state->tr);
    state->gdtr = (struct x86_table_register){(uint32_t)sregs.gdt.base, sregs.gdt.limit};
    state->idtr = (struct x86_table_register){(uint32_t)sregs.idt.base, sregs.idt.limit};
    state->cr0 = (uint32_t)sregs.cr0;
    state->cr2 = (uint32_t)sregs.cr2;
    state->cr3 = (uint32_t)sregs.cr3;
    state->cr4 = (uint32_t)sregs.cr4;
    state->msr.efer = sregs.efer;
    state->msr.apic_base = sregs.apic_base;

    if (ioctl(kvm->vcpu_fd, KVM_GET_DEBUGREGS, &debug) == 0) {
        for (int i = 0; i < 4; i++)
            state->dr[i] = (uint32_t)debug.db[i];
        state->dr[6] = (uint32_t)debug.dr6;
        state->dr[7] = (uint32_t)debug.dr7;
    }

    struct kvm_msrs *msrs = new_msr_list();
    int got = ioctl(kvm->vcpu_fd, KVM_GET_MSRS, msrs);
    for (int i = 0; i < got; i++) {
        uint64_t scratch;
        uint32_t index = msrs->entries[i].index;
        uint64_t value = msrs->entries[i].data;
        switch (index) {
        case MSR_IA32_SYSENTER_CS:
            state->msr.sysenter_cs = (uint32_t)value;
            break;
        case MSR_IA32_SYSENTER_ESP:
            state->msr.sysenter_esp = (uint32_t)value;
            break;
        case MSR_IA32_SYSENTER_EIP:
            state->msr.sysenter_eip = (uint32_t)value;
            break;
        default:
            *msr_field(&state->msr, index, &scratch) = value;
        }
    }
    g_free(msrs);

    /* FPU: KVM lists ST(0)..ST(7); the shared state keeps R0..R7. */
    unsigned top = (fpu.fsw >> 11) & 7;
    state->fpu.control = fpu.fcw;
    state->fpu.status = fpu.fsw;
    state->fpu.last_opcode = fpu.last_opcode;
    state->fpu.last_ip = (uint32_t)fpu.last_ip;
    state->fpu.last_dp = (uint32_t)fpu.last_dp;
    uint16_t tag = 0;
    for (unsigned st = 0; st < 8; st++) {
        unsigned phys = (top + st) & 7;
        memcpy(state->fpu.st[phys], fpu.fpr[st], 10);
    }
    for (unsigned phys = 0; phys < 8; phys++) {
        unsigned t = (fpu.ftwx & (1u << phys)) ? x87_tag_of(state->fpu.st[phys]) : 3;
        tag |= (uint16_t)(t << (2 * phys));
    }
    state->fpu.tag = tag;

    if (ioctl(kvm->vcpu_fd, KVM_GET_VCPU_EVENTS, &events) == 0) {
        state->nmi_pending = events.nmi.pending;
        state->nmi_blocked = events.nmi.masked;
        state->irq_inhibited = events.interrupt.shadow != 0;
    }
    state->a20_mask = kvm->a20_mask;
    state->halted = kvm->halted;
}

static void kvm_set_state(struct cpu *cpu, const struct x86_state *state)
{
    struct kvm_backend *kvm = kvm_of(cpu);
    struct kvm_regs regs = {.rax = state->regs[R_EAX],
                            .rcx = state->regs[R_ECX],
                            .rdx = state->regs[R_EDX],
                            .rbx = state->regs[R_EBX],
                            .rsp = state->regs[R_ESP],
                            .rbp = state->regs[R_EBP],
                            .rsi = state->regs[R_ESI],
                            .rdi = state->regs[R_EDI],
                            .rip = state->eip,
                            .rflags = state->eflags | X86_FLAG_FIXED};
    struct kvm_sregs sregs;
    if (ioctl(kvm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        memset(&sregs, 0, sizeof(sregs));
    struct kvm_segment *segs[X86_NR_SREGS] = {&sregs.es, &sregs.cs, &sregs.ss,
                                              &sregs.ds, &sregs.fs, &sregs.gs};
    for (int i = 0; i < X86_NR_SREGS; i++)
        segment_to_kvm(&state->sregs[i], segs[i]);
    segment_to_kvm(&state->ldtr, &sregs.ldt);
    segment_to_kvm(&state->tr, &sregs.tr);
    /* LDTR and TR are system segments: "unusable" only when null. */
    sregs.ldt.unusable = state->ldtr.selector == 0 && !(state->ldtr.attrib & X86_DESC_P);
    sregs.tr.unusable = 0;
    sregs.tr.present = 1;
    sregs.gdt = (struct kvm_dtable){.base = state->gdtr.base, .limit = state->gdtr.limit};
    sregs.idt = (struct kvm_dtable){.base = state->idtr.base, .limit = state->idtr.limit};
    sregs.cr0 = state->cr0;
    sregs.cr2 = state->cr2;
    sregs.cr3 = state->cr3;
    sregs.cr4 = state->cr4;
    sregs.efer = state->msr.efer;
    /* The machine has no local APIC: KVM shows CPUID's APIC bit whenever the
     * base MSR says enabled, and a guest that believes it would program an
     * APIC that is not there. */
    sregs.apic_base = state->msr.apic_base & ~MSR_APIC_BASE_ENABLE;
    memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));

    struct kvm_fpu fpu = {.fcw = state->fpu.control,
                          .fsw = state->fpu.status,
                          .last_opcode = state->fpu.last_opcode,
                          .last_ip = state->fpu.last_ip,
                          .last_dp = state->fpu.last_dp,
                          .mxcsr = 0x1f80};
    unsigned top = (state->fpu.status >> 11) & 7;
    for (unsigned st = 0; st < 8; st++)
        memcpy(fpu.fpr[st], state->fpu.st[(top + st) & 7], 10);
    for (unsigned phys = 0; phys < 8; phys++) {
        if (((state->fpu.tag >> (2 * phys)) & 3) != 3)
            fpu.ftwx |= (uint8_t)(1u << phys);
    }

    struct kvm_debugregs debug = {.dr6 = state->dr[6], .dr7 = state->dr[7]};
    for (int i = 0; i < 4; i++)
        debug.db[i] = state->dr[i];

    struct kvm_msrs *msrs = new_msr_list();
    struct x86_msrs copy = state->msr;
    for (unsigned i = 0; i < G_N_ELEMENTS(shared_msrs); i++) {
        uint64_t scratch = 0;
        switch (shared_msrs[i]) {
        case MSR_IA32_SYSENTER_CS:
            msrs->entries[i].data = copy.sysenter_cs;
            break;
        case MSR_IA32_SYSENTER_ESP:
            msrs->entries[i].data = copy.sysenter_esp;
            break;
        case MSR_IA32_SYSENTER_EIP:
            msrs->entries[i].data = copy.sysenter_eip;
            break;
        default:
            msrs->entries[i].data = *msr_field(&copy, shared_msrs[i], &scratch);
        }
    }

    struct kvm_vcpu_events events = {0};
    events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
    events.nmi.pending = state->nmi_pending;
    events.nmi.masked = state->nmi_blocked;
    events.interrupt.shadow = state->irq_inhibited ? KVM_X86_SHADOW_INT_STI : 0;

    if (ioctl(kvm->vcpu_fd, KVM_SET_SREGS, &sregs) < 0 ||
        ioctl(kvm->vcpu_fd, KVM_SET_REGS, &regs) < 0 || ioctl(kvm->vcpu_fd, KVM_SET_FPU, &fpu) < 0)
        fprintf(stderr, "kvm: cannot load the vCPU state: %s\n", g_strerror(errno));
    ioctl(kvm->vcpu_fd, KVM_SET_DEBUGREGS, &debug);
    ioctl(kvm->vcpu_fd, KVM_SET_MSRS, msrs);
    g_free(msrs);
    ioctl(kvm->vcpu_fd, KVM_SET_VCPU_EVENTS, &events);

    if (state->a20_mask != 0xffffffffu && !kvm->warned_a20) {
        fprintf(stderr, "kvm: the guest closed the A20 gate; KVM cannot emulate the "
                        "address wrap, so memory above 1 MiB stays visible\n");
        kvm->warned_a20 = true;
    }
    kvm->a20_mask = state->a20_mask;
    kvm->halted = state->halted;
}

/* --- the run loop ----------------------------------------------------------- */

static void handle_io(struct kvm_backend *kvm)
{
    struct kvm_run *run = kvm->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;
    /* String I/O arrives as several elements in one exit. */
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            uint32_t value = 0;
            memcpy(&value, data, size);
            ioport_write(kvm->cpu->io, run->io.port, size, value);
        } else {
            uint32_t value = ioport_read(kvm->cpu->io, run->io.port, size);
            memcpy(data, &value, size);
        }
    }
}

static void handle_mmio(struct kvm_backend *kvm)
{
    struct kvm_run *run = kvm->run;
    uint64_t addr = run->mmio.phys_addr;
    unsigned len = run->mmio.len;
    /* KVM splits accesses into at most eight bytes; the memory API takes four
     * at a time. */
    for (unsigned done = 0; done < len;) {
        unsigned chunk = len - done >= 4 ? 4 : len - done >= 2 ? 2 : 1;
        if (run->mmio.is_write) {
            uint32_t value = 0;
            memcpy(&value, run->mmio.data + done, chunk);
            memory_write(kvm->cpu->mem, addr + done, chunk, value);
        } else {
            uint32_t value = memory_read(kvm->cpu->mem, addr + done, chunk);
            memcpy(run->mmio.data + done, &value, chunk);
        }
        done += chunk;
    }
}

/* Asks for an interrupt window while INTR is high and injects the vector
 * when the guest can take it. */
static void prepare_interrupts(struct kvm_backend *kvm)
{
    struct kvm_run *run = kvm->run;
    run->request_interrupt_window = 0;
    if (!kvm->irq_line)
        return;
    if (run->ready_for_interrupt_injection && run->if_flag) {
        int vector = kvm->cpu->intr_ack(kvm->cpu->intr_opaque);
        if (vector >= 0) {
            struct kvm_interrupt irq = {.irq = (uint32_t)vector};
            ioctl(kvm->vcpu_fd, KVM_INTERRUPT, &irq);
            kvm->halted = false;
        }
    } else {
        run->request_interrupt_window = 1;
    }
}

static void arm_deadline(struct kvm_backend *kvm, int64_t deadline_ns)
{
    if (!kvm->timer_created) {
        struct sigevent sev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = kick_signal()};
        sev._sigev_un._tid = gettid();
        if (timer_create(CLOCK_MONOTONIC, &sev, &kvm->deadline_timer) < 0)
            return;
        kvm->timer_created = true;
    }
    struct itimerspec its = {0};
    if (deadline_ns != INT64_MAX) {
        int64_t delta = deadline_ns - vclock_now(kvm->cpu->clock);
        if (delta < 1000)
            delta = 1000;
        its.it_value.tv_sec = delta / NS_PER_SEC;
        its.it_value.tv_nsec = delta % NS_PER_SEC;
    }
    timer_settime(kvm->deadline_timer, 0, &its, NULL);
}

static enum cpu_exit kvm_run(struct cpu *cpu, int64_t deadline_ns)
{
    struct kvm_backend *kvm = kvm_of(cpu);
    struct kvm_run *run = kvm->run;
    if (!kvm->thread_known) {
        kvm->vcpu_thread = pthread_self();
        kvm->thread_known = true;
    }
    arm_deadline(kvm, deadline_ns);
    enum cpu_exit result = CPU_EXIT_STOP;
    for (;;) {
        if (cpu->stop_requested)
            break;
        if (deadline_ns != INT64_MAX && vclock_now(cpu->clock) >= deadline_ns)
            break;
        if (kvm->halted) {
            /* Without an in-kernel irqchip HLT is ours to finish: the CPU
             * wakes when the PIC has something for it. */
            if (!(kvm->irq_line && run->if_flag)) {
                result = CPU_EXIT_HALT;
                break;
            }
            kvm->halted = false;
        }
        prepare_interrupts(kvm);
        int rc = ioctl(kvm->vcpu_fd, KVM_RUN, 0);
        run->immediate_exit = 0;
        if (rc < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fprintf(stderr, "kvm: KVM_RUN failed: %s\n", g_strerror(errno));
            result = CPU_EXIT_ERROR;
            break;
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            handle_io(kvm);
            break;
        case KVM_EXIT_MMIO:
            handle_mmio(kvm);
            break;
        case KVM_EXIT_IRQ_WINDOW_OPEN:
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_HLT:
            kvm->halted = true;
            break;
        case KVM_EXIT_SHUTDOWN:
            result = CPU_EXIT_SHUTDOWN;
            goto out;
        case KVM_EXIT_FAIL_ENTRY:
            fprintf(stderr, "kvm: the vCPU could not enter the guest (hardware reason %#llx)\n",
                    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            result = CPU_EXIT_ERROR;
            goto out;
        case KVM_EXIT_INTERNAL_ERROR:
            fprintf(stderr, "kvm: internal error, suberror %u\n", run->internal.suberror);
            result = CPU_EXIT_ERROR;
            goto out;
        default:
            fprintf(stderr, "kvm: unexpected exit reason %u\n", run->exit_reason);
            result = CPU_EXIT_ERROR;
            goto out;
        }
        /* A device may have armed a sooner timer while handling the exit
         * (a PIT count written, say): the guest must not run past it. */
        int64_t next = vclock_next_deadline(cpu->clock);
        if (next < deadline_ns) {
            deadline_ns = next;
            arm_deadline(kvm, deadline_ns);
        }
    }
out:
    arm_deadline(kvm, INT64_MAX);
    return result;
}

static void kvm_set_irq(struct cpu *cpu, bool level)
{
    kvm_of(cpu)->irq_line = level;
}

static void kvm_nmi(struct cpu *cpu)
{
    struct kvm_backend *kvm = kvm_of(cpu);
    ioctl(kvm->vcpu_fd, KVM_NMI);
    kvm->halted = false;
}

static void kvm_kick(struct cpu *cpu)
{
    struct kvm_backend *kvm = kvm_of(cpu);
    cpu->stop_requested = 1;
    if (!kvm || !kvm->run)
        return;
    /* immediate_exit covers a kick that lands just before KVM_RUN; the signal
     * covers one that lands while the guest runs. */
    kvm->run->immediate_exit = 1;
    if (kvm->thread_known && !pthread_equal(kvm->vcpu_thread, pthread_self()))
        pthread_kill(kvm->vcpu_thread, kick_signal());
}

const struct cpu_backend cpu_backend_kvm = {
    .name = "kvm",
    .init = kvm_init,
    .destroy = kvm_destroy,
    .run = kvm_run,
    .get_state = kvm_get_state,
    .set_state = kvm_set_state,
    .set_irq = kvm_set_irq,
    .nmi = kvm_nmi,
    .kick = kvm_kick,
};
