; The display benchmark's guests, one boot floppy per MODE (nasm -DMODE=n):
;   0 idle     text mode, no cursor, HLT with interrupts on, forever
;   1 tick     every 4 BIOS ticks (about 0.22 s) swaps the character in
;              the top left corner (A, B, A...) and, right after, writes
;              'T' to the debug console (port 0xe9), so the host knows when
;              the write happened
;   2 animate  mode 13h, the whole 320x200 screen refilled in a new colour
;              at the start of every vertical retrace (a 60 Hz animation),
;              and 'F' on the debug console for each frame it drew
;   3 fill13   mode 13h, the screen refilled with rep stosw as fast as the
;              guest can (no retrace wait), 'F' per frame: video memory
;              write throughput in chain-4 mode
;   4 fill12   the same in mode 12h (640x480, 16 colours): 38400 bytes into
;              all four planes per frame, through the planar write path
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
%if MODE == 2
    mov ax, 0x0013
    int 0x10
    mov ax, 0xa000
    mov es, ax
    xor bl, bl
.frame:
    mov dx, 0x3da
.in_retrace:                    ; wait for the current retrace to end...
    in al, dx
    test al, 8
    jnz .in_retrace
.before_retrace:                ; ...and the next to begin
    in al, dx
    test al, 8
    jz .before_retrace
    inc bl
    mov al, bl
    mov ah, bl
    xor di, di
    mov cx, 32000
    rep stosw
    mov al, 'F'                 ; one frame drawn
    out 0xe9, al
    mov al, 10
    out 0xe9, al
    jmp .frame
%elif MODE == 3 || MODE == 4
  %if MODE == 3
    mov ax, 0x0013
  %else
    mov ax, 0x0012
  %endif
    int 0x10
    mov ax, 0xa000
    mov es, ax
    xor bl, bl
.fill:
    inc bl
    mov al, bl
    mov ah, bl
    xor di, di
  %if MODE == 3
    mov cx, 32000
  %else
    mov cx, 19200
  %endif
    rep stosw
    mov al, 'F'
    out 0xe9, al
    mov al, 10
    out 0xe9, al
    jmp .fill
%else
    mov ah, 0x01                ; no blinking cursor
    mov cx, 0x2000
    int 0x10
  %if MODE == 0
.idle:
    hlt
    jmp .idle
  %else
    mov ax, 0xb800
    mov es, ax
    mov byte [es:0], 'A'
.tick:
    mov cx, 4
.wait:
    mov dx, [0x46c]             ; the BIOS tick count
.same:
    hlt
    cmp dx, [0x46c]
    je .same
    loop .wait
    xor byte [es:0], 'A' ^ 'B'  ; A, B, A, ...: always a visible change
    mov al, 'T'
    out 0xe9, al
    mov al, 10                  ; a line, which the engine's debug console flushes
    out 0xe9, al
    jmp .tick
  %endif
%endif

    times 510 - ($ - $$) db 0
    dw 0xaa55
    times 1474560 - ($ - $$) db 0
