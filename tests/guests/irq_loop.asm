; Timer interrupts must reach a CPU spinning in a one-instruction loop
; ("jmp $"), which a binary translator runs as one block chained to itself.
; The PIT (channel 0, mode 2, about 1 kHz) interrupts through the master
; PIC; the handler counts ticks and, at the tenth, points the interrupted
; loop's return address past it.
%include "harness.inc"
guest_begin

%define TICKS 0x500
%define PHASE 0x502 ; 0: spinning, 1: working

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [TICKS], 0
    mov word [PHASE], 0
    ; Route the PIC's INTR through the local APIC as a PC BIOS does:
    ; LINT0 as ExtINT with the APIC software-enabled. Its registers are at
    ; FEE00000h, reached from real mode through a 4 GiB FS limit ("unreal"
    ; mode). A PC without a local APIC ignores the writes.
    o32 lgdt [cs:gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp short .pm
.pm:
    mov bx, 0x08
    mov fs, bx
    and al, 0xfe
    mov cr0, eax
    jmp short .rm
.rm:
    xor bx, bx
    mov fs, bx
    mov dword [fs:dword 0xfee000f0], 0x1ff ; spurious vector, enabled
    mov dword [fs:dword 0xfee00350], 0x700 ; LINT0: ExtINT
    ; IVT entry 8 (IRQ0 after the remap below).
    mov word [8 * 4], timer
    mov word [8 * 4 + 2], cs
    ; Master PIC: edge-triggered, cascade, vectors 8-15, 8086 mode; only
    ; IRQ0 unmasked.
    mov al, 0x11
    out 0x20, al
    mov al, 0x08
    out 0x21, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x01
    out 0x21, al
    mov al, 0xfe
    out 0x21, al
    ; PIT channel 0: mode 2, divisor 1193 (1 ms).
    mov al, 0x34
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al

    sti
spin:
    jmp spin
after_spin:
    cmp word [TICKS], 10
    jne fail1

    ; Again with a loop doing some work, counted in BX.
    mov word [TICKS], 0
    mov word [PHASE], 1
    xor bx, bx
    sti
work:
    inc bx
    jmp work
after_work:
    cmp word [TICKS], 10
    jne fail2
    test bx, bx
    jz fail3
    debug_putc 'o'
    debug_putc 'k'
    debug_putc 10
    guest_pass
fail1:
    guest_fail 1
fail2:
    guest_fail 2
fail3:
    guest_fail 3

timer:
    push ax
    push bp
    inc word [TICKS]
    cmp word [TICKS], 10
    jb .eoi
    ; Return past the loop with interrupts off: IP is at [sp+4], FLAGS at
    ; [sp+8].
    mov bp, sp
    and word [bp + 8], ~0x200
    cmp word [PHASE], 1
    je .from_work
    mov word [bp + 4], after_spin
    jmp .eoi
.from_work:
    mov word [bp + 4], after_work
.eoi:
    mov al, 0x20
    out 0x20, al
    pop bp
    pop ax
    iret

; The GDT stays in the ROM, so its descriptors come with the accessed bit
; already set: loading a segment would otherwise make the CPU write that bit
; into the ROM. A PC drops the write, but KVM cannot finish it in a read-only
; memory slot and retries the load for ever.
align 8
gdt:
    dq 0
    dw 0xffff, 0x0000, 0x9300, 0x008f ; 0x08: data, flat 4 GiB, 16-bit
gdt_end:
gdtr:
    dw gdt_end - gdt - 1
    dd 0xf0000 + gdt

guest_end
