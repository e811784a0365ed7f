; A two-sector boot program for the firmware tests: SeaBIOS loads its first
; sector at 0000:7C00 from a floppy, a hard disk or (El Torito, no emulation,
; four 512-byte sectors) a CD. It prints a line through the BIOS (int 10h) and
; the debug console, makes sure its second sector is in memory (reading it with
; int 13h from a floppy or hard disk), and reports through the debug-exit
; port: 0 = booted and read, 1 = the disk read failed, 2 = wrong data.
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
    mov [boot_drive], dl

    mov si, banner
    call print

    ; A CD boot (drive 0xE0 and up) has loaded both sectors already.
    cmp byte [boot_drive], 0xe0
    jae .check
    mov ax, 0x0201              ; read one sector
    mov cx, 0x0002              ; cylinder 0, sector 2
    xor dh, dh                  ; head 0
    mov dl, [boot_drive]
    mov bx, second_sector
    int 0x13
    jc .read_failed
.check:
    cmp dword [second_signature], 0x56495641 ; "AVIV"
    jne .bad_data
    mov si, done
    call print
    xor al, al
    jmp exit
.read_failed:
    mov al, 1
    jmp exit
.bad_data:
    mov al, 2
exit:
    out 0xf4, al
.halt:
    cli
    hlt
    jmp .halt

; Prints the zero-terminated string at DS:SI on the screen and port 0xe9.
print:
    lodsb
    test al, al
    jz .end
    out 0xe9, al
    mov ah, 0x0e
    mov bx, 0x0007
    int 0x10
    jmp print
.end:
    ret

banner: db "Vivarium test boot sector: running", 13, 10, 0
done:   db "Vivarium test boot sector: second sector OK", 13, 10, 0
boot_drive: db 0

    times 510 - ($ - $$) db 0
    dw 0xaa55

second_sector:
second_signature:
    dd 0x56495641
    times 1024 - ($ - $$) db 0x5a
