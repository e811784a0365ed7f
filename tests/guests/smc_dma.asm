; Code overwritten by DMA after it ran (so the binary translator holds a
; translation of it): a bus-master IDE READ DMA (PIIX3 IDE, ATA-6 READ DMA
; C8h; the bus-master registers of the Intel PIIX3 datasheet, 2.7) brings a
; new routine from the disk over the old one, and the next call must run the
; new code. The disk is this very image (meson passes a copy as --hda), so
; the new routine is the sector at dma_sector below.
%include "harness.inc"
guest_begin

%define SEL_FLAT_CODE   (SEL_FIRST_FREE + 0x00)
%define CODE_RAM        0x20000 ; the routine that gets overwritten
%define PRD_TABLE       0x30000 ; one physical region descriptor
%define BMDMA_BASE      0xc000  ; where BAR 4 is put
%define IDE_DEVFN       ((1 << 3) | 1)
%define PCI_ADDRESS(reg) (0x80000000 | (IDE_DEVFN << 8) | (reg))

start:
    rm_init
    enter_protected_mode pm32

bits 32
pm32:
    pm_init
    setup_idt

    ; The old routine, run twice (translated by then).
    mov esi, old_routine
    mov edi, CODE_RAM
    mov ecx, old_routine_end - old_routine
    cs rep movsb
    call SEL_FLAT_CODE:CODE_RAM
    expect_eq eax, 0x11111111, 1
    call SEL_FLAT_CODE:CODE_RAM
    expect_eq eax, 0x11111111, 2

    ; The IDE function: bus-master registers at BMDMA_BASE, I/O decoding
    ; and bus mastering on, the primary channel's decode enabled.
    mov dx, 0xcf8
    mov eax, PCI_ADDRESS(0x20)
    out dx, eax
    mov dx, 0xcfc
    mov eax, BMDMA_BASE | 1
    out dx, eax
    mov dx, 0xcf8
    mov eax, PCI_ADDRESS(0x04)
    out dx, eax
    mov dx, 0xcfc
    mov ax, 0x0005
    out dx, ax
    mov dx, 0xcf8
    mov eax, PCI_ADDRESS(0x40)
    out dx, eax
    mov dx, 0xcfc
    mov ax, 0x8000
    out dx, ax

    ; One region: 512 bytes to CODE_RAM, the last (bit 31).
    mov dword [PRD_TABLE], CODE_RAM
    mov dword [PRD_TABLE + 4], 0x80000000 | 512
    mov dx, BMDMA_BASE + 4
    mov eax, PRD_TABLE
    out dx, eax
    mov dx, BMDMA_BASE + 2 ; clear the interrupt and error bits
    mov al, 0x06
    out dx, al

    ; READ DMA of one sector, LBA OFF(dma_sector) / 512, master drive.
    mov dx, 0x1f6
    mov al, 0xe0
    out dx, al
    mov dx, 0x1f2
    mov al, 1
    out dx, al
    mov dx, 0x1f3
    mov al, OFF(dma_sector) / 512
    out dx, al
    mov dx, 0x1f4
    mov al, 0
    out dx, al
    mov dx, 0x1f5
    out dx, al
    mov dx, 0x1f7
    mov al, 0xc8
    out dx, al
    mov dx, BMDMA_BASE ; start, towards memory
    mov al, 0x09
    out dx, al

    mov ecx, 10000000
.wait:
    mov dx, BMDMA_BASE + 2
    in al, dx
    test al, 0x04 ; interrupt: the transfer is done
    jnz .done
    dec ecx
    jnz .wait
    fail 3
.done:
    test al, 0x02
    expect z, 4
    mov dx, BMDMA_BASE
    mov al, 0
    out dx, al
    mov dx, 0x1f7
    in al, dx
    test al, 0x01 ; ERR
    expect z, 5

    ; The new routine must run, not the translation of the old one.
    call SEL_FLAT_CODE:CODE_RAM
    expect_eq eax, 0x22222222, 6
    ; Twice: a translation made of the new bytes is as good.
    call SEL_FLAT_CODE:CODE_RAM
    expect_eq eax, 0x22222222, 7

    print 'smc_dma ok', 10
    guest_pass

old_routine:
    mov eax, 0x11111111
    retf
old_routine_end:

gdt_start:
    gdt_standard
    descriptor 0, 0xfffff, ACC_CODE_R0, 0xc
gdt_end:

    align 512, db 0
dma_sector:
    mov eax, 0x22222222
    retf
    align 512, db 0

guest_end
