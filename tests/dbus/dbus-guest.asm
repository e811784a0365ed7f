; The D-Bus test's guest: a boot floppy that reports what reaches it on the
; debug console (port 0xe9), one line per event, so that the test can check
; that calls on org.vivarium.Input arrive and that a mode change the guest
; makes comes out as a Resized signal. SeaBIOS loads the first sector at
; 0000:7C00; everything goes through the BIOS (int 10h video, int 15h C2xxh
; pointing device, int 16h keyboard).
;
; Lines on the debug console:
;   "ready"          the keyboard loop is waiting
;   "mouse"          the BIOS took the pointing-device handler and enabled it
;   "k SS"           a key from int 16h: its scan code SS in hex
;   "m SS XX YY"     a PS/2 mouse packet: status, X and Y bytes in hex
;   "mode 13"        after key M: 320x200 in 256 colours, eight stripes drawn
;   "mode 03"        after key T: back to 80x25 text
bits 16
org 0x7c00

DEBUGCON equ 0xe9
SCAN_M   equ 0x32
SCAN_T   equ 0x14

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    sti

    ; No blinking cursor, so the picture holds still between events.
    mov ah, 0x01
    mov cx, 0x2000
    int 0x10

    ; The BIOS mouse (Ralf Brown's INT 15h AX=C205h/C207h/C200h): 3-byte
    ; packets, our far handler, enabled. A BIOS without one just says nothing.
    mov ax, 0xc205
    mov bh, 3
    int 0x15
    jc .no_mouse
    mov ax, 0xc207
    mov bx, mouse_handler       ; ES is 0, the handler's segment
    int 0x15
    jc .no_mouse
    mov ax, 0xc200
    mov bh, 1
    int 0x15
    jc .no_mouse
    mov si, mouse_ok
    call debug_print
.no_mouse:

    mov si, ready
    call debug_print

.next_key:
    xor ah, ah
    int 0x16                    ; AH = scan code, AL = character
    mov bl, ah
    mov al, 'k'
    out DEBUGCON, al
    mov al, ' '
    out DEBUGCON, al
    mov al, bl
    call debug_hex
    mov al, 10
    out DEBUGCON, al
    cmp bl, SCAN_M
    je .graphics
    cmp bl, SCAN_T
    je .text
    jmp .next_key

.graphics:
    mov ax, 0x0013
    int 0x10
    ; Eight vertical stripes, 40 pixels wide, in colours 1 to 8.
    push es
    mov ax, 0xa000
    mov es, ax
    xor di, di
    mov dx, 200
.row:
    mov al, 1
.stripe:
    mov cx, 40
    rep stosb
    inc al
    cmp al, 9
    jne .stripe
    dec dx
    jnz .row
    pop es
    mov si, mode13
    call debug_print
    jmp .next_key

.text:
    mov ax, 0x0003
    int 0x10
    mov ah, 0x01
    mov cx, 0x2000
    int 0x10
    mov si, mode03
    call debug_print
    jmp .next_key

; Called by the BIOS with a far call after each packet, with the status, X,
; Y and Z words pushed in that order.
mouse_handler:
    push bp
    mov bp, sp
    pusha
    mov al, 'm'
    out DEBUGCON, al
    mov al, ' '
    out DEBUGCON, al
    mov al, [ss:bp + 12]        ; status
    call debug_hex
    mov al, ' '
    out DEBUGCON, al
    mov al, [ss:bp + 10]        ; X
    call debug_hex
    mov al, ' '
    out DEBUGCON, al
    mov al, [ss:bp + 8]         ; Y
    call debug_hex
    mov al, 10
    out DEBUGCON, al
    popa
    pop bp
    retf

; Writes the zero-terminated string at CS:SI to the debug console.
debug_print:
    cs lodsb
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

ready    db "ready", 10, 0
mouse_ok db "mouse", 10, 0
mode13   db "mode 13", 10, 0
mode03   db "mode 03", 10, 0

    times 510 - ($ - $$) db 0
    dw 0xaa55
    ; The rest of a 1.44 MB floppy, so the firmware sees a standard size.
    times 1474560 - ($ - $$) db 0
