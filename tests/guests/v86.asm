; Virtual-8086 mode (Intel SDM vol. 3, chapter 20): entering it with IRET and
; EFLAGS.VM, 8086 segment arithmetic inside, the IOPL-sensitive instructions
; (CLI, STI, PUSHF, POPF, INT n, IRET) faulting with #GP(0) when IOPL < 3,
; INT n through the protected-mode IDT when IOPL = 3, the I/O permission
; bitmap (checked at any IOPL), and the monitor's view: the stack frame with
; ES, DS, FS, GS, the ring 0 stack from the TSS and nulled data segments.
%include "harness.inc"
guest_begin

%define SEL_TSS     (SEL_FIRST_FREE + 0x00)
%define RING0_ESP0  0x8800
%define IOMAP       (TSS_RAM + 0x68)
%define TSS_LIMIT   (0x68 + 0x2000) ; the bitmap and its terminating byte

%define V86_DS      0x2000
%define V86_FS      0x3000
%define V86_SS      0x0000
%define V86_SP      0x6000
%define FLAGS_VM    0x20000
%define FLAGS_IOPL3 0x3000

; From ring 0: enters virtual-8086 mode at F000:label with the EFLAGS.
%macro enter_v86 2
    push dword V86_FS      ; GS
    push dword V86_FS      ; FS
    push dword V86_DS      ; DS
    push dword V86_DS      ; ES
    push dword V86_SS
    push dword V86_SP
    push dword %2
    push dword ROM_SEGMENT
    push dword %1
    iret
%endmacro

; Expects #GP(0) (failure code 'code') from virtual-8086 code entered at
; 'label' with IOPL 0, at the instruction 'fault_label' (default: 'label').
%macro v86_expect_gp 2-3
    expect_exception 13, %1
    enter_v86 %2, FLAGS_VM | 0x0002
    end_expect
    expect_eq dword [EXC_ERROR], 0, %1
%if %0 == 3
    expect_eq dword [EXC_EIP], %3, %1
%else
    expect_eq dword [EXC_EIP], %2, %1
%endif
    expect_eq dword [EXC_CS], ROM_SEGMENT, %1
    ; Hardware sets RF in the EFLAGS image of a fault (SDM vol. 3, 17.3.1.1);
    ; QEMU does not, so RF is left out.
    mov eax, [EXC_EFLAGS]
    and eax, ~0x10000
    expect_eq eax, FLAGS_VM | 0x0002, %1
%endmacro

start:
    rm_init ; which masks the interrupt controllers: the v86 code runs STI
    enter_protected_mode pm32

bits 32
pm32:
    pm_init
    setup_idt
    ; INT 80h from virtual-8086 mode is the way back to the monitor.
    set_idt_gate 0x80, SEL_CODE32, int80_stub, GATE_INT32 | 0x60

    ; A TSS with the ring 0 stack and an I/O bitmap that allows port 80h
    ; only.
    mov edi, TSS_RAM
    xor eax, eax
    mov ecx, 0x68 / 4
    rep stosd
    mov dword [TSS_RAM + 4], RING0_ESP0
    mov dword [TSS_RAM + 8], SEL_DATA32
    mov word [TSS_RAM + 0x66], 0x68
    mov edi, IOMAP
    mov al, 0xff
    mov ecx, 0x2001
    rep stosb
    and byte [IOMAP + 0x80 / 8], ~(1 << (0x80 % 8))
    mov ax, SEL_TSS
    ltr ax

    print "v86: IOPL 3", 10
    mov dword [V86_DS * 16 + 0x10], 0
    expect_exception 0x80, 1
    enter_v86 v86_main, FLAGS_VM | FLAGS_IOPL3 | 0x0002
    end_expect
    ; The INT 80h frame: CS:IP after the INT, the flags with VM, the
    ; virtual-8086 stack and all four data segments.
    expect_eq dword [EXC_EIP], v86_main_int, 2
    expect_eq dword [EXC_CS], ROM_SEGMENT, 3
    expect_eq dword [EXC_EFLAGS], FLAGS_VM | FLAGS_IOPL3 | 0x0002, 4
    expect_eq dword [EXC_ESP], V86_SP, 5
    expect_eq dword [EXC_SS], V86_SS, 6
    expect_eq dword [EXC_V86_ES], 0x4000, 7 ; changed by the v86 code
    expect_eq dword [EXC_V86_DS], V86_DS, 8
    expect_eq dword [EXC_V86_FS], V86_FS, 9
    expect_eq dword [EXC_V86_GS], V86_FS, 10
    ; The handler ran on the TSS's ring 0 stack with DS nulled.
    expect_eq dword [EXC_FRAME_ADDR], RING0_ESP0 - 40, 11
    expect_eq dword [EXC_DS], 0, 12
    expect_eq dword [EXC_SS_ENTRY], SEL_DATA32, 13
    ; What the virtual-8086 code stored: 8086 segment arithmetic
    ; (2000h:10h is 20010h), its CS, and its flags images.
    movzx eax, word [0x20010]
    expect_eq eax, 0xbeef, 14
    movzx eax, word [0x20012]
    expect_eq eax, ROM_SEGMENT, 15
    ; After STI: IOPL 3 and IF in the image.
    movzx eax, word [0x20014]
    expect_eq eax, FLAGS_IOPL3 | 0x0202, 16
    ; POPF at CPL 3 cannot change IOPL; it cleared IF.
    movzx eax, word [0x20016]
    expect_eq eax, FLAGS_IOPL3 | 0x0002, 17
    ; ES loaded in virtual-8086 mode is a paragraph number, too.
    expect_eq dword [0x40000], 0x12345678, 18

    print "v86: IOPL-sensitive instructions with IOPL 0", 10
    v86_expect_gp 19, v86_cli
    ; The monitor sees the virtual-8086 stack and segments.
    expect_eq dword [EXC_ESP], V86_SP, 20
    expect_eq dword [EXC_V86_DS], V86_DS, 21
    v86_expect_gp 22, v86_sti
    v86_expect_gp 23, v86_pushf
    expect_eq dword [EXC_ESP], V86_SP, 24 ; nothing pushed
    v86_expect_gp 25, v86_popf
    v86_expect_gp 26, v86_int
    v86_expect_gp 27, v86_iret

    print "v86: I/O permission bitmap", 10
    ; Port 80h is allowed (even at IOPL 0), port 81h is not, and neither is
    ; a word access to 80h, which also touches 81h.
    v86_expect_gp 28, v86_out81, v86_out81_site
    v86_expect_gp 29, v86_out80_word

    print "v86: pass", 10
    guest_pass

int80_stub:
    push dword 0
    push dword 0x80
    jmp harness_exc_common

bits 16
v86_main:
    mov word [0x10], 0xbeef
    mov ax, cs
    mov [0x12], ax
    cli
    sti
    pushf
    pop ax
    mov [0x14], ax
    push word 0x0002
    popf
    pushf
    pop ax
    mov [0x16], ax
    mov ax, 0x4000
    mov es, ax
    mov dword [es:0], 0x12345678
    int 0x80
v86_main_int:
    jmp $

v86_cli:
    cli
v86_sti:
    sti
v86_pushf:
    pushf
v86_popf:
    popf
v86_int:
    int 0x21
v86_iret:
    iret
v86_out81:
    out 0x80, al ; allowed: goes on to the next instruction
v86_out81_site:
    out 0x81, al
    jmp $
v86_out80_word:
    out 0x80, ax
    jmp $

bits 32
gdt_start:
    gdt_standard
    descriptor TSS_RAM, TSS_LIMIT, ACC_TSS32, 0x0
gdt_end:

guest_end
