; Protected mode, flat 32-bit code and stack, for the binary translator: a
; CALL whose return address lands on code already translated in the page
; that runs. The translator's store notices the hit and leaves the block;
; it must leave it as the CALL completes, at the target with ESP moved, not
; at the (overwritten) next instruction.
%include "harness.inc"
guest_begin

%define CODE      0x10000 ; the routine runs here, through a flat CS
%define SAVED_ESP 0x6000

%define RAM(label) (CODE + ((label) - routine))

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7000
    o32 lgdt [cs:gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword 0x08:pm32

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7000
    cld
    mov esi, routine
    mov edi, CODE
    mov ecx, routine_end - routine
    cs rep movsb

    ; 1. An ordinary call: the code after the CALL runs (and is translated).
    mov ebx, 0x8000
    xor ebp, ebp
    call 0x18:CODE
    cmp eax, 1
    jne fail1
    ; 2. The same call with the stack just above that code: the return
    ;    address overwrites it.
    mov ebx, RAM(after_call) + 4
    mov ebp, 1
    call 0x18:CODE
    cmp eax, 2
    jne fail2
    cmp dword [RAM(after_call)], RAM(after_call)
    jne fail3

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

; Copied to CODE and called through the flat code segment with the stack
; pointer to use in EBX and the pass in EBP.
routine:
    mov [SAVED_ESP], esp
    mov esp, ebx
    call target
after_call:
    nop
    nop
    nop
    nop
    nop
    nop
    nop
    nop
    mov esp, [SAVED_ESP]
    mov eax, 1
    retf
target:
    test ebp, ebp
    jnz .second
    ret
.second:
    ; The CALL completed: ESP moved and the return address pushed.
    mov eax, 0xbad
    cmp esp, RAM(after_call)
    jne .out
    mov eax, 2
.out:
    mov esp, [SAVED_ESP]
    retf
routine_end:

; Accessed bits set: KVM cannot complete the CPU's write of that bit into a
; read-only ROM slot (see pm_smc_fault.asm).
align 8
gdt:
    dq 0
    dw 0xffff, 0x0000, 0x9b0f, 0x0040 ; 0x08: code, base F0000h, 64 KiB, 32-bit
    dw 0xffff, 0x0000, 0x9300, 0x00cf ; 0x10: data, flat 4 GiB
    dw 0xffff, 0x0000, 0x9b00, 0x00cf ; 0x18: code, flat 4 GiB, 32-bit
gdt_end:
gdtr:
    dw gdt_end - gdt - 1
    dd 0xf0000 + gdt

bits 16

guest_end
