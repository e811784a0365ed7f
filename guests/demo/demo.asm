; The demo guest: what a new user of Vivarium sees first. A floppy image
; whose boot sector loads the rest of the program, then draws in VGA mode 13h
; (320x200, 256 colours): a title, a colour gradient and a bouncing ball.
; Keys: Space beeps through the PC speaker, C changes the ball's colour,
; Esc powers the machine off through the debug-exit port.
; Built from this source by meson; needs only a PC BIOS.
bits 16
org 0x7c00

PROGRAM_SECTORS equ 4           ; sectors after the boot sector

boot:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
    mov ah, 0x02                ; read the rest of the program after us
    mov al, PROGRAM_SECTORS
    mov cx, 0x0002              ; cylinder 0, sector 2
    xor dh, dh
    mov bx, main
    int 0x13
    jc .failed
    jmp main
.failed:
    mov si, load_error
.print:
    lodsb
    test al, al
    jz .halt
    mov ah, 0x0e
    int 0x10
    jmp .print
.halt:
    hlt
    jmp .halt

load_error: db "Vivarium demo: cannot read the floppy", 0

    times 510 - ($ - $$) db 0
    dw 0xaa55

; ---------------------------------------------------------------------------
main:
    mov ax, 0x0013              ; 320x200, 256 colours
    int 0x10
    call draw_gradient
    mov bp, title               ; write the title with the BIOS font
    mov cx, title_end - title
    mov dx, 0x020b              ; row 2, column 11
    mov bx, 0x000f              ; white
    mov ax, 0x1301
    int 0x10
    mov bp, hint
    mov cx, hint_end - hint
    mov dx, 0x1601              ; row 22, column 1
    mov bx, 0x0007
    mov ax, 0x1301
    int 0x10

    push word 0xa000
    pop es
    call draw_ball

.frame:
    call draw_ball              ; erase at the old place...
    mov ax, [ball_x]
    add ax, [speed_x]
    cmp ax, 4
    jl .bounce_x
    cmp ax, 316 - BALL
    jg .bounce_x
    jmp .store_x
.bounce_x:
    neg word [speed_x]
    mov ax, [ball_x]
.store_x:
    mov [ball_x], ax
    mov ax, [ball_y]
    add ax, [speed_y]
    cmp ax, 40
    jl .bounce_y
    cmp ax, 170 - BALL
    jg .bounce_y
    jmp .store_y
.bounce_y:
    neg word [speed_y]
    mov ax, [ball_y]
.store_y:
    mov [ball_y], ax
    call draw_ball              ; ...and draw at the new one (XOR)

    call wait_tick
    call speaker_off_when_due

    mov ah, 0x01                ; a key waiting?
    int 0x16
    jz .frame
    xor ah, ah
    int 0x16
    cmp al, ' '
    je .beep
    cmp al, 'c'
    je .colour
    cmp al, 'C'
    je .colour
    cmp al, 27
    je .power_off
    jmp .frame
.beep:
    call speaker_on
    jmp .frame
.colour:
    call draw_ball
    add byte [ball_colour], 23
    call draw_ball
    jmp .frame
.power_off:
    mov al, 0
    out 0xf4, al
    jmp .frame

BALL equ 12

; Draws (XOR) the ball at ball_x, ball_y.
draw_ball:
    pusha
    mov ax, [ball_y]
    mov bx, 320
    mul bx
    add ax, [ball_x]
    mov di, ax
    mov dx, BALL
.row:
    mov cx, BALL
.pixel:
    mov al, [ball_colour]
    xor [es:di], al
    inc di
    loop .pixel
    add di, 320 - BALL
    dec dx
    jnz .row
    popa
    ret

; Fills rows 40..169 with a gradient through the default palette's colour
; ramp (colours 32..103).
draw_gradient:
    push es
    push word 0xa000
    pop es
    mov di, 40 * 320
    mov dx, 0                   ; row counter
.row:
    mov ax, dx
    shr ax, 1
    mov cl, 72
    div cl                      ; ah = (row / 2) % 72
    mov al, ah
    add al, 32
    mov cx, 320
    rep stosb
    inc dx
    cmp dx, 130
    jb .row
    pop es
    ret

; Waits for the next BIOS timer tick (18.2 Hz) with HLT, so an idle demo
; costs no host CPU.
wait_tick:
    push ds
    push word 0x40
    pop ds
    mov ax, [0x6c]
.wait:
    sti
    hlt
    cmp ax, [0x6c]
    je .wait
    pop ds
    ret

; A 440 Hz beep for about a quarter of a second: PIT channel 2, square wave.
speaker_on:
    mov al, 0xb6
    out 0x43, al
    mov ax, 1193182 / 440
    out 0x42, al
    mov al, ah
    out 0x42, al
    in al, 0x61
    or al, 3
    out 0x61, al
    mov byte [beep_ticks], 5
    ret

speaker_off_when_due:
    cmp byte [beep_ticks], 0
    je .done
    dec byte [beep_ticks]
    jnz .done
    in al, 0x61
    and al, 0xfc
    out 0x61, al
.done:
    ret

ball_x: dw 100
ball_y: dw 60
speed_x: dw 3
speed_y: dw 2
ball_colour: db 0x2c
beep_ticks: db 0

title: db "Welcome to Vivarium"
title_end:
hint: db "Space: beep  C: colour  Esc: power off"
hint_end:

    times 512 * (1 + PROGRAM_SECTORS) - ($ - $$) db 0
