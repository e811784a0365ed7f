; Hardware task switching (Intel SDM vol. 3, chapter 7): far JMP and CALL to
; a TSS descriptor, a task gate in the GDT and in the IDT (INT n), the state
; saved in the outgoing TSS and loaded from the incoming one, the busy bits,
; EFLAGS.NT and the back-link with IRET, #GP for a busy task, #TS for a TSS
; that is too small and #NP for one that is not present.
%include "harness.inc"
guest_begin

%define SEL_TSS_A       (SEL_FIRST_FREE + 0x00) ; the first task
%define SEL_TSS_B       (SEL_FIRST_FREE + 0x08) ; reached by JMP
%define SEL_TSS_C       (SEL_FIRST_FREE + 0x10) ; reached by CALL
%define SEL_TSS_D       (SEL_FIRST_FREE + 0x18) ; reached by INT 50h
%define SEL_GATE_B      (SEL_FIRST_FREE + 0x20) ; task gate to B
%define SEL_TSS_SHORT   (SEL_FIRST_FREE + 0x28) ; limit below 67h
%define SEL_TSS_ABSENT  (SEL_FIRST_FREE + 0x30) ; P = 0

%define TSS_A           TSS_RAM
%define TSS_B           0x6100
%define TSS_C           0x6200
%define TSS_D           0x6300

%define FLAGS_NT        0x4000

; TSS fields.
%define T_LINK   0x00
%define T_EIP    0x20
%define T_EFLAGS 0x24
%define T_EAX    0x28
%define T_EBX    0x34
%define T_ESP    0x38
%define T_ESI    0x40
%define T_ES     0x48
%define T_CS     0x4c
%define T_SS     0x50
%define T_DS     0x54
%define T_FS     0x58
%define T_GS     0x5c
%define T_IOMAP  0x66

%define V               SCRATCH_RAM
%define V_B_RAN         (V + 0x00)
%define V_B_RAN_AGAIN   (V + 0x04)
%define V_C_RAN         (V + 0x08)
%define V_D_RAN         (V + 0x0c)

; Fills a TSS: base, EIP, ESP, EAX; ring 0 flat segments.
%macro init_tss 4
    mov edi, %1
    xor eax, eax
    mov ecx, 0x68 / 4
    rep stosd
    mov dword [%1 + T_EIP], %2
    mov dword [%1 + T_EFLAGS], 0x0002
    mov dword [%1 + T_ESP], %3
    mov dword [%1 + T_EAX], %4
    mov dword [%1 + T_CS], SEL_CODE32
    mov dword [%1 + T_SS], SEL_DATA32
    mov dword [%1 + T_DS], SEL_DATA32
    mov dword [%1 + T_ES], SEL_DATA32
    mov dword [%1 + T_FS], SEL_DATA32
    mov dword [%1 + T_GS], SEL_DATA32
    mov word [%1 + T_IOMAP], 0x68
%endmacro

; Fails unless the access byte of the TSS descriptor is the value.
%macro expect_access 3
    movzx eax, byte [GDT_RAM + (%1) + 5]
    expect_eq eax, %2, %3
%endmacro

start:
    rm_init
    enter_protected_mode pm32

bits 32
pm32:
    pm_init
    setup_idt
    set_idt_gate 0x50, SEL_TSS_D, 0, GATE_TASK

    mov edi, TSS_A
    xor eax, eax
    mov ecx, 0x68 / 4
    rep stosd
    mov word [TSS_A + T_IOMAP], 0x68
    init_tss TSS_B, task_b, 0x7800, 0xb0b0b0b0
    init_tss TSS_C, task_c, 0x7c00, 0xc0c0c0c0
    init_tss TSS_D, task_d, 0x7e00, 0xd0d0d0d0
    mov ax, SEL_TSS_A
    ltr ax
    expect_access SEL_TSS_A, ACC_TSS32_BUSY, 1

    print "task_switch: JMP to a TSS", 10
    mov ebx, 0x12345678
    mov esi, 0x9abcdef0
    mov ebp, esp
jmp_to_b:
    jmp SEL_TSS_B:0xdead ; the offset is ignored
after_jmp_to_b:
    ; Back from B (by JMP): A's registers were restored from its TSS.
    expect_eq ebx, 0x12345678, 2
    expect_eq esi, 0x9abcdef0, 3
    expect_eq esp, ebp, 4
    expect_eq dword [V_B_RAN], 1, 5
    ; What the switch to B saved in A's TSS.
    expect_eq dword [TSS_A + T_EIP], after_jmp_to_b, 6
    expect_eq dword [TSS_A + T_EBX], 0x12345678, 7
    expect_eq dword [TSS_A + T_ESI], 0x9abcdef0, 8
    expect_eq dword [TSS_A + T_ESP], ebp, 9
    expect_eq dword [TSS_A + T_CS], SEL_CODE32, 10
    expect_eq dword [TSS_A + T_SS], SEL_DATA32, 11
    ; And what B's jump back saved in B's.
    expect_eq dword [TSS_B + T_EIP], b_after_jmp_back, 12
    expect_eq dword [TSS_B + T_EBX], 0xbbbbbbbb, 13
    expect_eq dword [TSS_B + T_LINK], 0, 14 ; JMP writes no back-link
    expect_access SEL_TSS_A, ACC_TSS32_BUSY, 15
    expect_access SEL_TSS_B, ACC_TSS32, 16
    pushfd
    pop eax
    test eax, FLAGS_NT
    expect z, 17

    print "task_switch: JMP through a task gate", 10
    ; B resumes where it left off.
    jmp SEL_GATE_B:0
    expect_eq dword [V_B_RAN_AGAIN], 1, 18
    expect_access SEL_TSS_B, ACC_TSS32, 19

    print "task_switch: CALL to a TSS, IRET back", 10
    mov ebx, 0x0a0a0a0a
    call SEL_TSS_C:0
after_call_to_c:
    expect_eq ebx, 0x0a0a0a0a, 20
    expect_eq dword [V_C_RAN], 1, 21
    ; IRET through the back-link cleared C's busy bit; A's EFLAGS came
    ; from A's TSS, without NT.
    expect_access SEL_TSS_C, ACC_TSS32, 22
    expect_access SEL_TSS_A, ACC_TSS32_BUSY, 23
    pushfd
    pop eax
    test eax, FLAGS_NT
    expect z, 24
    expect_eq dword [TSS_C + T_EIP], c_after_iret, 25
    ; IRET saves the outgoing task's EFLAGS with NT cleared.
    mov eax, [TSS_C + T_EFLAGS]
    test eax, FLAGS_NT
    expect z, 26

    print "task_switch: INT through a task gate", 10
    mov ebx, 0x0d0d0d0d
    int 0x50
    expect_eq ebx, 0x0d0d0d0d, 27
    expect_eq dword [V_D_RAN], 1, 28
    expect_access SEL_TSS_D, ACC_TSS32, 29

    print "task_switch: busy tasks", 10
    ; A is busy (it is running): JMP or CALL to it is #GP(selector).
    expect_exception 13, 30
    jmp SEL_TSS_A:0
    end_expect
    expect_eq dword [EXC_ERROR], SEL_TSS_A, 31
    expect_exception 13, 32
    call SEL_TSS_A:0
    end_expect
    expect_eq dword [EXC_ERROR], SEL_TSS_A, 33
    ; A 32-bit TSS with a limit below 67h: #TS(selector).
    expect_exception 10, 35
    jmp SEL_TSS_SHORT:0
    end_expect
    expect_eq dword [EXC_ERROR], SEL_TSS_SHORT, 36
    ; A TSS descriptor that is not present: #NP(selector).
    expect_exception 11, 37
    call SEL_TSS_ABSENT:0
    end_expect
    expect_eq dword [EXC_ERROR], SEL_TSS_ABSENT, 38
    ; Neither fault switched tasks: str still names A.
    str eax
    expect_eq eax, SEL_TSS_A, 34

    print "task_switch: pass", 10
    guest_pass

task_b:
    ; EAX, ESP and the segments came from B's TSS.
    expect_eq eax, 0xb0b0b0b0, 40
    expect_eq esp, 0x7800, 41
    mov eax, ds
    expect_eq eax, SEL_DATA32, 42
    str eax
    expect_eq eax, SEL_TSS_B, 43
    ; JMP cleared the old task's busy bit and set the new one's.
    expect_access SEL_TSS_A, ACC_TSS32, 44
    expect_access SEL_TSS_B, ACC_TSS32_BUSY, 45
    pushfd
    pop eax
    test eax, FLAGS_NT
    expect z, 46
    mov dword [V_B_RAN], 1
    mov ebx, 0xbbbbbbbb
    jmp SEL_TSS_A:0
b_after_jmp_back:
    mov dword [V_B_RAN_AGAIN], 1
    jmp SEL_TSS_A:0
    fail 47

task_c:
    expect_eq eax, 0xc0c0c0c0, 50
    str eax
    expect_eq eax, SEL_TSS_C, 51
    ; A nested task: NT set, the back-link names A, which stays busy.
    pushfd
    pop eax
    test eax, FLAGS_NT
    expect nz, 52
    movzx eax, word [TSS_C + T_LINK]
    expect_eq eax, SEL_TSS_A, 53
    expect_access SEL_TSS_A, ACC_TSS32_BUSY, 54
    expect_access SEL_TSS_C, ACC_TSS32_BUSY, 55
    ; A's TSS holds the return point.
    expect_eq dword [TSS_A + T_EIP], after_call_to_c, 56
    mov dword [V_C_RAN], 1
    mov ebx, 0xcccccccc
    iret
c_after_iret:
    fail 57

task_d:
    expect_eq eax, 0xd0d0d0d0, 60
    str eax
    expect_eq eax, SEL_TSS_D, 61
    pushfd
    pop eax
    test eax, FLAGS_NT
    expect nz, 62
    movzx eax, word [TSS_D + T_LINK]
    expect_eq eax, SEL_TSS_A, 63
    mov dword [V_D_RAN], 1
    mov ebx, 0xdddddddd
    iret
    fail 64

gdt_start:
    gdt_standard
    descriptor TSS_A, 0x67, ACC_TSS32, 0x0
    descriptor TSS_B, 0x67, ACC_TSS32, 0x0
    descriptor TSS_C, 0x67, ACC_TSS32, 0x0
    descriptor TSS_D, 0x67, ACC_TSS32, 0x0
    gate SEL_TSS_B, 0, GATE_TASK, 0
    descriptor TSS_D, 0x40, ACC_TSS32, 0x0
    descriptor TSS_D, 0x67, ACC_TSS32 & 0x7f, 0x0
gdt_end:

guest_end
