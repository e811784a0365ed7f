; Protected-mode entry and exit (Intel SDM vol. 3, 9.9 "Mode switching"):
; LGDT/SGDT, CR0.PE, a far jump into 32-bit code, segment loads through the
; GDT (hidden base and limit, the accessed bit), LAR/LSL, and the way back to
; real mode through a 16-bit segment.
%include "harness.inc"
guest_begin

%define SEL_DATA_AT_64K  (SEL_FIRST_FREE + 0x00) ; base 10000h, limit FFFh
%define SEL_DATA_UNTOUCHED (SEL_FIRST_FREE + 0x08)

start:
    rm_init
    print "pm_entry: real mode", 10

    ; Markers in RAM that the segment bases below must find.
    mov ax, 0x1000
    mov es, ax
    mov dword [es:0], 0x11223344
    mov dword [es:0xffc], 0x55667788
    xor ax, ax
    mov es, ax

    enter_protected_mode pm32

bits 32
pm32:
    pm_init
    print "pm_entry: 32-bit protected mode", 10

    ; CS holds the selector of the far jump, and the code runs with 32-bit
    ; operands by default.
    mov eax, cs
    expect_eq eax, SEL_CODE32, 1
    mov eax, esp
    push ecx
    sub eax, esp
    pop ecx
    expect_eq eax, 4, 2

    ; CR0.PE is set (and SMSW shows it).
    mov eax, cr0
    test eax, 1
    expect nz, 3
    smsw ax
    test al, 1
    expect nz, 4

    ; SGDT stores what LGDT loaded.
    sgdt [HARNESS_GDTR]
    cmp word [HARNESS_GDTR], gdt_end - gdt_start - 1
    expect e, 5
    expect_eq dword [HARNESS_GDTR + 2], GDT_RAM, 6

    ; The flat data segment reaches above 1 MiB.
    mov dword [0x200000], 0xcafef00d
    mov dword [0x3000000], 0x0badf00d
    expect_eq dword [0x200000], 0xcafef00d, 7
    expect_eq dword [0x3000000], 0x0badf00d, 8

    ; A segment's hidden base applies to every access through it.
    mov ax, SEL_DATA_AT_64K
    mov es, ax
    expect_eq dword [es:0], 0x11223344, 9
    expect_eq dword [es:0xffc], 0x55667788, 10

    ; Loading a segment sets the descriptor's accessed bit in the GDT.
    mov al, [GDT_RAM + SEL_DATA_AT_64K + 5]
    cmp al, ACC_DATA_R0 | 1
    expect e, 11
    mov al, [GDT_RAM + SEL_DATA_UNTOUCHED + 5]
    cmp al, ACC_DATA_R0
    expect e, 12

    ; LSL gives the byte-granular limit (scaled when G is set), LAR the
    ; access rights as bits 8-23 of the descriptor's high dword, of which
    ; bits 16-19 (the limit's top) are undefined and not checked.
    lsl eax, [cs:sel_code32_word]
    expect z, 13
    expect_eq eax, 0xffff, 14
    mov ecx, SEL_DATA32
    lsl eax, ecx
    expect z, 15
    expect_eq eax, 0xffffffff, 16
    mov ecx, SEL_DATA_AT_64K
    lsl eax, ecx
    expect_eq eax, 0xfff, 17
    mov ecx, SEL_CODE32
    lar eax, ecx
    expect z, 18
    ; Hardware also sets the accessed bit of a descriptor loaded into CS;
    ; QEMU does not, so that bit is not checked here.
    and eax, ~0x000f0100
    expect_eq eax, 0x00409a00, 19
    mov ecx, SEL_DATA32
    lar eax, ecx
    and eax, ~0x000f0000
    expect_eq eax, 0x00c09300, 20
    ; A selector past the GDT limit: ZF clear, destination unchanged.
    mov eax, 0x12345678
    mov ecx, 0x1000
    lsl eax, ecx
    expect nz, 21
    expect_eq eax, 0x12345678, 22

    ; A 16-bit protected-mode code segment runs with 16-bit operands.
    jmp SEL_CODE16:pm16
bits 16
pm16:
    mov eax, cs
    cmp ax, SEL_CODE16
    expect e, 23
    mov bx, sp
    push cx
    sub bx, sp
    pop cx
    cmp bx, 2
    expect e, 24
    jmp dword SEL_CODE32:pm32_again
bits 32
pm32_again:
    print "pm_entry: leaving protected mode", 10

    leave_protected_mode
    ; Back in real mode: CS = F000h, segment bases are selector * 16 again.
    print "pm_entry: real mode again", 10
    mov eax, cr0
    test al, 1
    expect z, 25
    mov ax, cs
    cmp ax, ROM_SEGMENT
    expect e, 26
    mov ax, 0x1000
    mov ds, ax
    cmp dword [0], 0x11223344
    expect e, 27
    xor ax, ax
    mov ds, ax

    ; "Unreal" mode: a segment register loaded in protected mode keeps its
    ; hidden 4 GiB limit and base after CR0.PE is cleared, until real mode
    ; loads it again, so 32-bit offsets reach above 1 MiB.
    print "pm_entry: unreal mode", 10
    mov eax, cr0
    or al, 1
    mov cr0, eax
    mov bx, SEL_DATA32
    mov fs, bx
    and al, 0xfe
    mov cr0, eax
    jmp ROM_SEGMENT:.real_again
.real_again:
    mov ebx, 0x200000
    cmp dword [fs:ebx], 0xcafef00d ; written by the protected-mode part
    expect e, 28
    mov dword [fs:ebx + 4], 0x600d
    xor ax, ax
    mov fs, ax ; an ordinary real-mode segment from here on
    print "pm_entry: pass", 10
    guest_pass

sel_code32_word:
    dw SEL_CODE32

gdt_start:
    gdt_standard
    descriptor 0x10000, 0xfff, ACC_DATA_R0, 0x4
    descriptor 0x20000, 0xfff, ACC_DATA_R0, 0x4
gdt_end:

guest_end
