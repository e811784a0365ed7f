; Protected-mode exceptions (Intel SDM vol. 3, chapter 6 and 5.5-5.10): #GP
; with selector error codes, #NP, #SS, #UD, #DE, #BR, #OF, #BP, software INT
; to a not-present gate, and a double fault. Each check looks at the vector,
; the error code, the CS:EIP pushed (the faulting instruction for faults, the
; next one for traps) and that the faulting instruction changed nothing.
;
; Not checked: segment limit and read/write violations on data accesses
; (#GP(0), #SS(0)). QEMU, which every guest test is validated against, does
; not model them, so such a check could not be validated; limits of the
; descriptor tables (GDT, IDT) are checked instead.
%include "harness.inc"
guest_begin

%define SEL_LIMITED     (SEL_FIRST_FREE + 0x00) ; data, base 20000h, limit FFFh
%define SEL_EXEC_ONLY   (SEL_FIRST_FREE + 0x08) ; code, execute-only
%define SEL_READ_ONLY   (SEL_FIRST_FREE + 0x10) ; data, read-only
%define SEL_NOT_PRESENT (SEL_FIRST_FREE + 0x18) ; data, P = 0
%define SEL_LDT_DESC    (SEL_FIRST_FREE + 0x20) ; a system descriptor (LDT)
%define SEL_DPL3_DATA   SEL_DATA32_R3 & ~3
%define SEL_PAST_GDT    0x0ff8

%define LIMITED_BASE 0x20000

start:
    rm_init
    enter_protected_mode pm32

bits 32
pm32:
    pm_init
    setup_idt
    print "pm_exceptions: segment loads", 10

    ; A null selector may be loaded into DS, but not into SS: #GP(0).
    xor eax, eax
    mov ds, ax
    mov ax, SEL_DATA32
    mov ds, ax
    xor eax, eax
    expect_exception 13, 1
ss_null:
    mov ss, ax
    end_expect
    expect_eq dword [EXC_ERROR], 0, 2
    expect_eq dword [EXC_EIP], ss_null, 3
    expect_eq dword [EXC_CS], SEL_CODE32, 4
    expect_eq dword [EXC_SS_ENTRY], SEL_DATA32, 5 ; SS unchanged

    ; An execute-only code segment cannot be loaded into DS: #GP(selector).
    mov eax, SEL_EXEC_ONLY
    expect_exception 13, 6
    mov ds, ax
    end_expect
    expect_eq dword [EXC_ERROR], SEL_EXEC_ONLY, 7
    expect_eq dword [EXC_DS], SEL_DATA32, 8 ; DS unchanged

    ; A read-only data segment can be DS but not SS.
    mov eax, SEL_READ_ONLY
    mov es, ax
    expect_exception 13, 9
    mov ss, ax
    end_expect
    expect_eq dword [EXC_ERROR], SEL_READ_ONLY, 10

    ; A system descriptor in a data segment register: #GP(selector), with
    ; the RPL bits of the selector cleared in the error code.
    mov eax, SEL_LDT_DESC | 2
    expect_exception 13, 11
    mov fs, ax
    end_expect
    expect_eq dword [EXC_ERROR], SEL_LDT_DESC, 12

    ; A selector past the GDT limit: #GP(selector).
    mov eax, SEL_PAST_GDT
    expect_exception 13, 13
    mov gs, ax
    end_expect
    expect_eq dword [EXC_ERROR], SEL_PAST_GDT, 14

    ; SS must have DPL = CPL: #GP(selector).
    mov eax, SEL_DPL3_DATA
    expect_exception 13, 15
    mov ss, ax
    end_expect
    expect_eq dword [EXC_ERROR], SEL_DPL3_DATA, 16

    ; A not-present data segment: #NP(selector) for DS, #SS(selector) for SS.
    mov eax, SEL_NOT_PRESENT
    expect_exception 11, 17
    mov ds, ax
    end_expect
    expect_eq dword [EXC_ERROR], SEL_NOT_PRESENT, 18
    mov eax, SEL_NOT_PRESENT
    expect_exception 12, 19
    mov ss, ax
    end_expect
    expect_eq dword [EXC_ERROR], SEL_NOT_PRESENT, 20

    ; A far jump through a selector past the GDT limit: #GP(selector), and
    ; the jump does not happen.
    expect_exception 13, 21
far_jump_site:
    jmp SEL_PAST_GDT:0
    end_expect
    expect_eq dword [EXC_ERROR], SEL_PAST_GDT, 22
    expect_eq dword [EXC_EIP], far_jump_site, 23

    print "pm_exceptions: invalid opcodes", 10
    expect_exception 6, 31
ud2_site:
    ud2
    end_expect
    expect_eq dword [EXC_EIP], ud2_site, 32
    expect_eq dword [EXC_ERROR], 0, 33 ; the recorder's dummy: #UD pushes none
    ; MOV to CS does not exist.
    expect_exception 6, 34
    db 0x8e, 0xc8 ; mov cs, ax
    end_expect
    ; LEA with a register operand.
    expect_exception 6, 35
    db 0x8d, 0xc0 ; lea eax, eax
    end_expect

    print "pm_exceptions: divide errors", 10
    ; Division by zero: #DE at the DIV, EDX:EAX unchanged.
    mov eax, 0x12345678
    mov edx, 0x9abc
    xor ecx, ecx
    expect_exception 0, 36
div_site:
    div ecx
    end_expect
    expect_eq dword [EXC_EIP], div_site, 37
    expect_eq dword [EXC_EAX], 0x12345678, 38
    expect_eq dword [EXC_EDX], 0x9abc, 39
    ; A quotient too large: -2^31 / -1.
    mov eax, 0x80000000
    cdq
    mov ebx, -1
    expect_exception 0, 40
    idiv ebx
    end_expect
    expect_eq dword [EXC_EAX], 0x80000000, 41
    ; 8-bit: 0x1000 / 0x10 does not fit AL.
    mov eax, 0x1000
    mov bl, 0x10
    expect_exception 0, 42
    div bl
    end_expect
    expect_eq dword [EXC_EAX], 0x1000, 43

    print "pm_exceptions: BOUND, INTO, INT3", 10
    mov dword [SCRATCH_RAM], 10
    mov dword [SCRATCH_RAM + 4], 20
    mov eax, 20
    bound eax, [SCRATCH_RAM] ; within bounds (inclusive): nothing happens
    mov eax, 21
    expect_exception 5, 44
bound_site:
    bound eax, [SCRATCH_RAM]
    end_expect
    expect_eq dword [EXC_EIP], bound_site, 45 ; a fault
    mov eax, 9
    expect_exception 5, 46
    bound eax, [SCRATCH_RAM]
    end_expect
    ; INTO is a trap: the pushed EIP is that of the next instruction.
    mov al, 0x7f
    add al, 1 ; OF = 1
    expect_exception 4, 47
    into
into_next:
    end_expect
    expect_eq dword [EXC_EIP], into_next, 48
    xor eax, eax ; OF = 0: INTO does nothing
    into
    expect_exception 3, 49
    int3
int3_next:
    end_expect
    expect_eq dword [EXC_EIP], int3_next, 50
    ; The two-byte INT 3 is vector 3 too.
    expect_exception 3, 51
    int 3
int3b_next:
    end_expect
    expect_eq dword [EXC_EIP], int3b_next, 52

    print "pm_exceptions: not-present gate", 10
    ; INT n through a gate with P = 0: #NP with the IDT bit set in the error
    ; code (vector * 8 + 2).
    set_idt_gate 0x40, SEL_CODE32, harness_exc_stub0, GATE_INT32 & 0x7f
    expect_exception 11, 53
int_np_site:
    int 0x40
    end_expect
    expect_eq dword [EXC_ERROR], 0x40 * 8 + 2, 54
    expect_eq dword [EXC_EIP], int_np_site, 55
    ; An all-zero IDT entry is no gate at all: #GP(vector * 8 + 2).
    expect_exception 13, 62
    int 0x41
    end_expect
    expect_eq dword [EXC_ERROR], 0x41 * 8 + 2, 63
    ; INT n past the IDT limit: #GP(vector * 8 + 2).
    mov word [HARNESS_GDTR], 0x50 * 8 - 1
    mov dword [HARNESS_GDTR + 2], IDT_RAM
    lidt [HARNESS_GDTR]
    expect_exception 13, 56
    int 0x60
    end_expect
    expect_eq dword [EXC_ERROR], 0x60 * 8 + 2, 57
    mov word [HARNESS_GDTR], 256 * 8 - 1
    lidt [HARNESS_GDTR]

    print "pm_exceptions: double fault", 10
    ; #DE whose gate is not present: the #NP raised while delivering it is
    ; a second contributory exception, so the CPU raises #DF(0) instead.
    and byte [IDT_RAM + 0 * 8 + 5], 0x7f
    xor ecx, ecx
    expect_exception 8, 58
    div ecx
    end_expect
    expect_eq dword [EXC_ERROR], 0, 59
    or byte [IDT_RAM + 0 * 8 + 5], 0x80
    ; The #DE gate works again.
    expect_exception 0, 60
    div ecx
    end_expect

    expect_eq dword [EXC_COUNT], 25, 61 ; one per expect_exception: nothing else was raised
    print "pm_exceptions: pass", 10
    guest_pass

gdt_start:
    gdt_standard
    descriptor LIMITED_BASE, 0xfff, ACC_DATA_R0, 0x4
    descriptor ROM_BASE, 0xffff, 0x98, 0x4        ; execute-only code
    descriptor 0, 0xfffff, 0x90, 0xc              ; read-only data
    descriptor 0, 0xfffff, 0x12, 0xc              ; P = 0
    descriptor 0x5000, 0xff, ACC_LDT, 0x0
gdt_end:

guest_end
