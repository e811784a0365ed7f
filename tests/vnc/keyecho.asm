; The VNC tests' guest: a boot floppy that shows a banner in coloured text
; and then echoes every key the BIOS reads (int 16h). Each key goes to the
; screen (its character, through int 10h) and to the debug console (port
; 0xe9) as a line "SS C": the scan code in hex and the character, or '.' for
; keys without one. SeaBIOS loads the first sector at 0000:7C00.
bits 16
org 0x7c00

DEBUGCON equ 0xe9

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    sti

    ; No blinking cursor and no blinking characters: the picture holds
    ; still, so a screen dump and a client's copy can be compared.
    mov ah, 0x01
    mov cx, 0x2000
    int 0x10

    ; A coloured bar on the top line, so the picture has more than two colours.
    mov ax, 0xb800
    mov es, ax
    xor di, di
    mov cx, 80
    mov ax, 0x1e20              ; yellow on blue, blank
.bar:
    stosw
    add ah, 0x10
    and ah, 0x7f
    loop .bar
    xor ax, ax
    mov es, ax
    mov ah, 0x02                ; the cursor to row 2, column 0
    xor bh, bh
    mov dx, 0x0200
    int 0x10

    mov si, banner
    call print
    mov si, ready
    call debug_print

.next_key:
    xor ah, ah
    int 0x16                    ; AH = scan code, AL = character
    mov bx, ax
    mov al, bh
    call debug_hex
    mov al, ' '
    out DEBUGCON, al
    mov al, bl
    cmp al, 0x20
    jb .no_char
    cmp al, 0x7e
    jbe .char
.no_char:
    mov al, '.'
.char:
    out DEBUGCON, al
    mov al, 10
    out DEBUGCON, al
    mov al, bl
    cmp al, 13
    jne .show
    call putc                   ; Enter: a new line on the screen
    mov al, 10
.show:
    test al, al
    jz .next_key
    call putc
    jmp .next_key

; Prints the zero-terminated string at DS:SI on the screen.
print:
    lodsb
    test al, al
    jz .done
    call putc
    jmp print
.done:
    ret

putc:
    mov ah, 0x0e
    mov bx, 0x0007
    int 0x10
    ret

debug_print:
    lodsb
    test al, al
    jz .done
    out DEBUGCON, al
    jmp debug_print
.done:
    ret

; AL as two hex digits on the debug console.
debug_hex:
    push ax
    shr al, 4
    call .digit
    pop ax
    and al, 0x0f
.digit:
    add al, '0'
    cmp al, '9'
    jbe .out
    add al, 'a' - '0' - 10
.out:
    out DEBUGCON, al
    ret

banner db "Vivarium VNC test: type here> ", 0
ready  db "ready", 10, 0

    times 510 - ($ - $$) db 0
    dw 0xaa55
    ; The rest of a 1.44 MB floppy, so the firmware sees a standard size.
    times 1474560 - ($ - $$) db 0
