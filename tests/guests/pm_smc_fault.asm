; Protected mode with paging, for the binary translator: code patched
; through a second linear mapping of its page (the write must still reach
; the translation), and a page fault in the middle of a straight-line block
; (the handler must see the exact state of the faulting instruction: the
; instructions before it done, the ones after not, EFLAGS included).
%include "harness.inc"
guest_begin

%define PD        0x1000 ; page directory
%define PT0       0x2000 ; identity map of the first 4 MiB
%define PT1       0x3000 ; 4 MiB..: the alias and the fault target
%define IDT       0x4000
%define CODE_PAGE 0x10000
%define ALIAS     0x400000 ; PT1[0] -> CODE_PAGE
%define FAULT_LIN 0x401000 ; PT1[1], not present until the handler maps it
%define FAULT_PHYS 0x20000

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
    ; Page tables: zero them, identity-map 4 MiB, alias the code page.
    mov edi, PD
    xor eax, eax
    mov ecx, 3 * 1024
    rep stosd
    mov dword [PD], PT0 | 3
    mov dword [PD + 4], PT1 | 3
    mov edi, PT0
    mov eax, 3
    mov ecx, 1024
.map:
    stosd
    add eax, 0x1000
    loop .map
    mov dword [PT1], CODE_PAGE | 3
    ; IDT: only #PF (14) has a gate; anything else triple-faults.
    mov edi, IDT
    xor eax, eax
    mov ecx, 2 * 32
    rep stosd
    mov eax, pf_handler
    mov [IDT + 14 * 8], ax
    mov word [IDT + 14 * 8 + 2], 0x08
    mov word [IDT + 14 * 8 + 4], 0x8e00
    shr eax, 16
    mov [IDT + 14 * 8 + 6], ax
    lidt [cs:idtr]
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp short paged
paged:
    ; Copy the routine to the code page.
    mov esi, routine
    mov edi, CODE_PAGE
    mov ecx, routine_end - routine
    cs rep movsb

    ; 1. Alias: run the routine, patch its immediate through the alias,
    ;    run it again.
    call 0x18:CODE_PAGE
    cmp eax, 0x11111111
    jne fail1
    mov dword [ALIAS + 1], 0x22222222
    call 0x18:CODE_PAGE
    cmp eax, 0x22222222
    jne fail2

    ; 2. A fault in the middle of a block.
    mov ebx, 0
    mov ecx, 0xfffffffb
    mov edx, 0
    mov esi, 0
    mov eax, 0x5a5a5a5a
    inc ebx                  ; done before the fault
    add ecx, 5               ; ZF and CF set, kept lazily
fault_insn:
    mov [FAULT_LIN + 8], eax ; #PF: not present
    mov edx, 7               ; not done before the fault
    adc esi, 0               ; CF from the ADD, after the retry: 1
    cmp dword [fault_seen], 1
    jne fail3
    cmp edx, 7
    jne fail4
    cmp esi, 1
    jne fail5
    cmp dword [FAULT_PHYS + 8], 0x5a5a5a5a
    jne fail6

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
fail4:
    guest_fail 4
fail5:
    guest_fail 5
fail6:
    guest_fail 6
fail7:
    guest_fail 7

; The #PF handler: checks the state it was entered with, maps the page and
; returns to retry the store.
pf_handler:
    cmp dword [esp], 2               ; error code: write, not present
    jne .bad
    cmp dword [esp + 4], fault_insn  ; EIP of the faulting store
    jne .bad
    mov edi, cr2
    cmp edi, FAULT_LIN + 8
    jne .bad
    cmp ebx, 1
    jne .bad
    cmp ecx, 0
    jne .bad
    cmp edx, 0
    jne .bad
    mov edi, [esp + 12]              ; EFLAGS: ZF and CF from the ADD
    and edi, 0x41
    cmp edi, 0x41
    jne .bad
    mov dword [PT1 + 4], FAULT_PHYS | 3
    mov dword [fault_seen], 1
    add esp, 4
    iretd
.bad:
    guest_fail 7

; Copied to CODE_PAGE and called through the flat code segment.
routine:
    mov eax, 0x11111111
    retf
routine_end:

; The GDT stays in the ROM, so its descriptors come with the accessed bit
; already set: loading a segment would otherwise make the CPU write that bit
; into the ROM. A PC drops the write, but KVM cannot finish it in a read-only
; memory slot and retries the load for ever.
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
idtr:
    dw 32 * 8 - 1
    dd IDT

fault_seen equ 0x6000

bits 16

guest_end
