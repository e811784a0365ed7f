; Debug registers and the alignment check (Intel SDM vol. 3, chapter 17
; "Debug ...", 17.2-17.3, and 6.15 "Alignment Check Exception"): an
; instruction breakpoint (a fault, suppressed by EFLAGS.RF), data write and
; read/write breakpoints and an I/O breakpoint (traps), the single-step trap
; with DR6.BS, a single-step trap reported together with a data breakpoint,
; the single-step trap taking priority over the next instruction's
; breakpoint, the general-detect fault (DR7.GD) and #AC at CPL 3.
%include "harness.inc"
guest_begin

%define SEL_TSS         (SEL_FIRST_FREE + 0x00)
%define RING0_ESP0      0x8800
%define WATCH           (SCRATCH_RAM + 0x100) ; a data breakpoint's address
%define DR6_BS          0x4000
%define DR6_BD          0x2000
%define DR7_GD          0x2000
%define FLAG_TF         0x100
%define FLAG_RF         0x10000
%define FLAG_AC         0x40000
%define CR0_AM          0x40000
%define CR4_DE          0x8

start:
    rm_init
    enter_protected_mode pm32

bits 32
pm32:
    pm_init
    setup_idt

    print "debugreg: instruction breakpoint", 10
    xor ebx, ebx
    mov eax, ROM_BASE + code_bp
    mov dr0, eax
    xor eax, eax
    mov dr6, eax
    mov eax, 0x00000001 ; L0, R/W0 = 00 (execution), LEN0 = 00
    mov dr7, eax
    expect_exception 1, 1
code_bp:
    inc ebx
    end_expect
    ; A fault: the instruction did not run, #DB points at it, RF is clear in
    ; the image and DR6 names breakpoint 0.
    expect_eq ebx, 0, 2
    expect_eq dword [EXC_EIP], code_bp, 3
    mov eax, [EXC_EFLAGS]
    test eax, FLAG_RF
    expect z, 4
    mov eax, dr6
    and eax, 0xf
    expect_eq eax, 1, 5

    ; Returning to it with RF set in the image runs it once without a
    ; breakpoint (a second #DB would be unexpected and fail the test).
    print "debugreg: RF", 10
    pushfd
    or dword [esp], FLAG_RF
    push dword SEL_CODE32
    push dword rf_bp
    mov eax, ROM_BASE + rf_bp
    mov dr0, eax
    iretd
rf_bp:
    inc ebx
    expect_eq ebx, 1, 6
    ; RF was cleared by completing that instruction: the breakpoint fires
    ; again on the way back.
    jmp rf_again
rf_again_back:
    xor eax, eax
    mov dr7, eax

    print "debugreg: data write breakpoint", 10
    mov dword [WATCH], 0
    mov eax, WATCH
    mov dr1, eax
    xor eax, eax
    mov dr6, eax
    mov eax, 0x00d00004 ; L1, R/W1 = 01 (write), LEN1 = 11 (4 bytes)
    mov dr7, eax
    ; A read does not trigger a write breakpoint, nor does a write next to
    ; its range.
    mov eax, [WATCH]
    mov byte [WATCH + 4], 1
    mov byte [WATCH - 1], 1
    mov ecx, 0x55
    expect_exception 1, 10
    mov byte [WATCH + 3], cl
data_after:
    end_expect
    ; A trap: the write happened, #DB points after it.
    movzx eax, byte [WATCH + 3]
    expect_eq eax, 0x55, 11
    expect_eq dword [EXC_EIP], data_after, 12
    mov eax, dr6
    and eax, 0xf
    expect_eq eax, 2, 13
    ; The breakpoint address is aligned down to its length: a word write at
    ; WATCH + 2 through DR1 = WATCH + 1 still hits.
    mov eax, WATCH + 1
    mov dr1, eax
    expect_exception 1, 14
    mov word [WATCH + 2], cx
    end_expect

    print "debugreg: data read/write breakpoint", 10
    mov eax, WATCH + 8
    mov dr2, eax
    xor eax, eax
    mov dr6, eax
    mov eax, 0x07000010 ; L2, R/W2 = 11 (read or write), LEN2 = 01 (2 bytes)
    mov dr7, eax
    mov eax, [WATCH + 4] ; bytes 4-7: outside
    mov al, [WATCH + 10] ; outside
    expect_exception 1, 20
    mov al, [WATCH + 9]
read_after:
    end_expect
    expect_eq dword [EXC_EIP], read_after, 21
    mov eax, dr6
    and eax, 0xf
    expect_eq eax, 4, 22
    ; A string instruction stops at the iteration that hit: ESI points
    ; past the byte read, ECX counts the iterations left, and #DB points
    ; at the instruction itself.
    mov esi, WATCH + 6
    mov edi, WATCH + 0x40
    mov ecx, 8
    cld
    expect_exception 1, 23
rep_site:
    rep movsb
    end_expect
    expect_eq dword [EXC_EIP], rep_site, 24
    expect_eq dword [EXC_ESI], WATCH + 9, 25
    expect_eq dword [EXC_ECX], 5, 26
    xor eax, eax
    mov dr7, eax

    print "debugreg: I/O breakpoint", 10
    mov eax, cr4
    or eax, CR4_DE
    mov cr4, eax
    mov eax, 0x80
    mov dr3, eax
    xor eax, eax
    mov dr6, eax
    mov eax, 0x20000040 ; L3, R/W3 = 10 (I/O), LEN3 = 00
    mov dr7, eax
    mov al, 0
    out 0x81, al ; another port
    expect_exception 1, 30
    out 0x80, al
io_after:
    end_expect
    expect_eq dword [EXC_EIP], io_after, 31
    mov eax, dr6
    and eax, 0xf
    expect_eq eax, 8, 32
    xor eax, eax
    mov dr7, eax
    mov eax, cr4
    and eax, ~CR4_DE
    mov cr4, eax

    print "debugreg: single-step", 10
    xor eax, eax
    mov dr6, eax
    expect_exception 1, 40
    pushfd
    or dword [esp], FLAG_TF
    popfd
    ; POPF set TF: the trap comes after the next instruction.
    inc ebx
step_after:
    end_expect
    expect_eq dword [EXC_EIP], step_after, 41
    mov eax, dr6
    test eax, DR6_BS
    expect nz, 42
    mov eax, [EXC_EFLAGS]
    test eax, FLAG_TF
    expect nz, 43

    ; Single-step and a data breakpoint in one instruction: one #DB
    ; reporting both.
    mov eax, WATCH
    mov dr1, eax
    xor eax, eax
    mov dr6, eax
    mov eax, 0x00d00004
    mov dr7, eax
    expect_exception 1, 44
    pushfd
    or dword [esp], FLAG_TF
    popfd
    mov [WATCH], eax
    end_expect
    mov eax, dr6
    and eax, DR6_BS | 0xf
    expect_eq eax, DR6_BS | 2, 45

    ; The single-step trap of one instruction comes before the instruction
    ; breakpoint of the next (Intel SDM vol. 3, table 6-2).
    mov eax, ROM_BASE + prio_next
    mov dr0, eax
    xor eax, eax
    mov dr6, eax
    mov eax, 0x00000001
    mov dr7, eax
    expect_exception 1, 46
    pushfd
    or dword [esp], FLAG_TF
    popfd
    nop
prio_next:
    nop
    end_expect
    expect_eq dword [EXC_EIP], prio_next, 47
    mov eax, dr6
    and eax, DR6_BS | 0xf
    expect_eq eax, DR6_BS, 48
    xor eax, eax
    mov dr7, eax

    print "debugreg: general detect", 10
    xor eax, eax
    mov dr6, eax
    mov eax, DR7_GD | 0x400
    mov dr7, eax
    expect_exception 1, 50
gd_site:
    mov eax, dr0
    end_expect
    expect_eq dword [EXC_EIP], gd_site, 51
    ; The handler was entered with GD clear, so this does not fault again.
    mov eax, dr6
    test eax, DR6_BD
    expect nz, 52
    mov eax, dr7
    test eax, DR7_GD
    expect z, 53

    print "debugreg: alignment check", 10
    ; A TSS with the ring 0 stack, for the way back from ring 3.
    mov edi, TSS_RAM
    xor eax, eax
    mov ecx, 0x68 / 4
    rep stosd
    mov dword [TSS_RAM + 4], RING0_ESP0
    mov dword [TSS_RAM + 8], SEL_DATA32
    mov word [TSS_RAM + 0x66], 0x68
    mov ax, SEL_TSS
    ltr ax
    ; At CPL 0 a misaligned access never faults, AM and AC or not.
    mov eax, cr0
    or eax, CR0_AM
    mov cr0, eax
    pushfd
    or dword [esp], FLAG_AC
    popfd
    mov eax, [WATCH + 1]
    ; At CPL 3 with AM and AC: #AC(0) for a misaligned dword...
    expect_exception 17, 60
    push dword SEL_DATA32_R3
    push dword STACK3_TOP
    push dword 0x40002 ; AC
    push dword SEL_CODE32_R3
    push dword ring3_ac
    iretd
    end_expect
    expect_eq dword [EXC_ERROR], 0, 61
    expect_eq dword [EXC_EIP], ring3_misaligned, 62
    expect_eq dword [EXC_CS], SEL_CODE32_R3, 63
    ; ... and none without AC.
    expect_exception 13, 64 ; the ring 3 code ends with a privileged HLT
    push dword SEL_DATA32_R3
    push dword STACK3_TOP
    push dword 0x00002
    push dword SEL_CODE32_R3
    push dword ring3_ac
    iretd
    end_expect
    expect_eq dword [EXC_EIP], ring3_end, 65

    print "debugreg: done", 10
    guest_pass

; Ring 3: aligned accesses pass, a misaligned dword faults (with AC).
ring3_ac:
    mov ax, SEL_DATA32_R3
    mov ds, ax
    mov eax, [WATCH]
    mov ax, [WATCH + 2]
    mov al, [WATCH + 3]
ring3_misaligned:
    mov eax, [WATCH + 2]
ring3_end:
    hlt

; Takes the instruction breakpoint at rf_bp once more, now that RF is
; clear.
rf_again:
    expect_exception 1, 7
    jmp rf_bp
    end_expect
    expect_eq dword [EXC_EIP], rf_bp, 8
    jmp rf_again_back

gdt_start:
    gdt_standard
    descriptor TSS_RAM, 0x67, ACC_TSS32, 0x0
gdt_end:

guest_end
