; Drawing through the Bochs VBE linear framebuffer (the "DISPI" interface of
; QEMU's stdvga: index port 1CEh, data port 1CFh): 640x480 at 32 bits per
; pixel, two rectangles written straight into the LFB (BAR0 of the VGA's PCI
; function, 00:02.0, placed here as firmware would), each after the display has painted at least one frame, so a
; screenshot at the end shows them only if the display learnt which pages
; the guest wrote (under KVM: from the dirty-page log, with no exit per
; write). The kvm suite checks the screenshot's pixels (lfb-check.py); the
; program itself checks that the pixels read back.
%include "harness.inc"
guest_begin

%define LFB          0xfd000000
%define PCI_ADDRESS  0xcf8
%define PCI_DATA     0xcfc
%define VGA_PCI      0x80001000 ; bus 0, device 2, function 0
%define WIDTH        640
%define HEIGHT       480
%define VBE_INDEX    0x1ce
%define VBE_DATA     0x1cf
%define VGA_STATUS   0x3da      ; input status 1: bit 3 is the vertical retrace

start:
    rm_init
    enter_protected_mode pm32

bits 32
pm32:
    pm_init
    ; BAR0 at LFB, then memory decoding on (command register bit 1).
    mov dx, PCI_ADDRESS
    mov eax, VGA_PCI | 0x10
    out dx, eax
    mov dx, PCI_DATA
    mov eax, LFB
    out dx, eax
    mov dx, PCI_ADDRESS
    mov eax, VGA_PCI | 0x04
    out dx, eax
    mov dx, PCI_DATA
    in ax, dx
    or ax, 2
    out dx, ax

    ; The mode: 640x480x32 with the LFB; the mode set clears video memory.
    mov ax, 4                   ; ENABLE: off while the mode changes
    mov bx, 0
    call vbe_write
    mov ax, 1                   ; XRES
    mov bx, WIDTH
    call vbe_write
    mov ax, 2                   ; YRES
    mov bx, HEIGHT
    call vbe_write
    mov ax, 3                   ; BPP
    mov bx, 32
    call vbe_write
    mov ax, 4                   ; ENABLE | LFB
    mov bx, 0x41
    call vbe_write
    mov ax, 1
    call vbe_read
    cmp bx, WIDTH
    jne fail1

    ; Let the display paint the fresh mode, so what follows is damage.
    call wait_frames

    ; Rectangle A: rows 40-119, columns 80-239, orange.
    mov ebx, 40
    mov ecx, 80
    mov edx, 0x00ff8000
    call fill_rect
    call wait_frames

    ; Rectangle B: rows 300-379, columns 400-559, blue; the run ends right
    ; after it, so only the final frame can show it.
    mov ebx, 300
    mov ecx, 400
    mov edx, 0x000080ff
    call fill_rect

    cmp dword [LFB + (40 * WIDTH + 80) * 4], 0x00ff8000
    jne fail2
    cmp dword [LFB + (379 * WIDTH + 559) * 4], 0x000080ff
    jne fail3
    cmp dword [LFB + (240 * WIDTH + 320) * 4], 0
    jne fail4
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

; AX = register index, BX = value.
vbe_write:
    mov dx, VBE_INDEX
    out dx, ax
    mov dx, VBE_DATA
    xchg ax, bx
    out dx, ax
    xchg ax, bx
    ret

; AX = register index; returns its value in BX.
vbe_read:
    mov dx, VBE_INDEX
    out dx, ax
    mov dx, VBE_DATA
    in ax, dx
    mov bx, ax
    ret

; Waits for five starts of the vertical retrace: more than four frames of
; virtual time, so the display's refresh (at most every 1/60 s) has run.
wait_frames:
    mov ecx, 5
    mov dx, VGA_STATUS
.out_of_retrace:
    in al, dx
    test al, 8
    jnz .out_of_retrace
.in_retrace:
    in al, dx
    test al, 8
    jz .in_retrace
    loop .out_of_retrace
    ret

; An 80-row by 160-column rectangle: EBX = first row, ECX = first column,
; EDX = colour.
fill_rect:
    mov esi, 80
    imul edi, ebx, WIDTH * 4
    lea edi, [edi + ecx * 4 + LFB]
    mov eax, edx
.row:
    push edi
    mov ecx, 160
    rep stosd
    pop edi
    add edi, WIDTH * 4
    dec esi
    jnz .row
    ret

gdt_start:
    gdt_standard
gdt_end:

bits 16

guest_end
