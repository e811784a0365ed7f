; The guest side of the floppy part of the snapshot test (tests/guests/
; snapshot.py): it keeps a pattern in the first sector of the 1.44 MiB floppy
; in drive A:, which it drives itself through the 82077AA floppy controller
; in non-DMA mode (82077AA datasheet, section 4.2: every data byte moves
; through the FIFO at port 0x3f5 while the main status register shows RQM
; and NON-DMA).
;
; At start it writes pattern A to cylinder 0, head 0, sector 1 and prints
; "ready" on the debug console. Then, for each key pressed on the PS/2
; keyboard:
;   w   write pattern B to the sector, print "written"
;   a   read the sector back: pass if it holds pattern A, else fail 1
;   b   read the sector back: pass if it holds pattern B, else fail 2
; A failed transfer fails 3 (write) or 4 (read).
%include "harness.inc"
guest_begin

%define BUF_SEG 0x2000              ; 0x20000: the sector, one way or the other

%define FDC_DOR  0x3f2
%define FDC_MSR  0x3f4
%define FDC_FIFO 0x3f5
%define FDC_CCR  0x3f7

%define KEY_W 0x11
%define KEY_A 0x1e
%define KEY_B 0x30

start:
    rm_init
    mov dx, FDC_DOR
    mov al, 0x1c                    ; motor A on, DMA/IRQ gate, out of reset, drive 0
    out dx, al
    mov dx, FDC_CCR
    xor al, al                      ; 500 kbit/s: a 1.44 MiB disk
    out dx, al
    mov al, 0x03                    ; SPECIFY: step rate, head times, ND = 1 (no DMA)
    call fdc_send
    mov al, 0xdf
    call fdc_send
    mov al, 0x03
    call fdc_send
    mov bl, 0x21                    ; pattern A's seed
    call write_sector
    print "ready", 10

wait_key:
    in al, 0x64
    test al, 1
    jz wait_key
    in al, 0x60
    cmp al, KEY_W
    je key_w
    cmp al, KEY_A
    je key_a
    cmp al, KEY_B
    je key_b
    jmp wait_key

key_w:
    mov bl, 0x6c                    ; pattern B's seed
    call write_sector
    print "written", 10
    jmp wait_key

key_a:
    mov bl, 0x21
    call check_sector
    expect e, 1
    guest_pass

key_b:
    mov bl, 0x6c
    call check_sector
    expect e, 2
    guest_pass

; The byte at offset i of a pattern with seed s: (i * 5 + s + (i >> 8)) mod
; 256. In: BL seed, DI offset. Out: AL.
pattern_byte:
    mov ax, di
    mov cx, 5
    mul cx
    add al, bl
    mov cx, di
    add al, ch
    ret

; Sends the command byte in AL once the controller asks for one.
fdc_send:
    push ax
    mov dx, FDC_MSR
.wait:
    in al, dx
    and al, 0xc0
    cmp al, 0x80                    ; RQM, and DIO towards the controller
    jne .wait
    pop ax
    mov dx, FDC_FIFO
    out dx, al
    ret

; Sends READ DATA (AL 0x46) or WRITE DATA (AL 0x45) for cylinder 0, head 0,
; sector 1 of drive 0, 512 bytes, one sector.
fdc_transfer_command:
    call fdc_send
    xor al, al                      ; head 0, drive 0
    call fdc_send
    xor al, al                      ; C
    call fdc_send
    xor al, al                      ; H
    call fdc_send
    mov al, 1                       ; R
    call fdc_send
    mov al, 2                       ; N: 512 bytes
    call fdc_send
    mov al, 1                       ; EOT: this sector is the last
    call fdc_send
    mov al, 0x1b                    ; GPL
    call fdc_send
    mov al, 0xff                    ; DTL
    call fdc_send
    ret

; Reads the seven result bytes; ZF set when ST0 reports a normal end.
fdc_results:
    mov dx, FDC_MSR
.wait:
    in al, dx
    and al, 0xd0
    cmp al, 0xd0                    ; RQM, DIO, busy: a result byte waits
    jne .wait
    mov dx, FDC_FIFO
    in al, dx                       ; ST0
    mov bh, al
    mov cx, 6
.rest:
    mov dx, FDC_MSR
.wait_rest:
    in al, dx
    and al, 0xd0
    cmp al, 0xd0
    jne .wait_rest
    mov dx, FDC_FIFO
    in al, dx
    loop .rest
    test bh, 0xc0                   ; interrupt code 0: normal termination
    ret

; Writes the pattern of seed BL to the sector.
write_sector:
    push es
    mov ax, BUF_SEG
    mov es, ax
    xor di, di
.fill:
    call pattern_byte
    mov [es:di], al
    inc di
    cmp di, 512
    jne .fill
    mov al, 0x45                    ; WRITE DATA, single density bit clear (MFM)
    call fdc_transfer_command
    xor si, si
.byte:
    mov dx, FDC_MSR
.wait:
    in al, dx
    and al, 0xe0
    cmp al, 0xa0                    ; RQM, NON-DMA, towards the controller
    jne .wait
    mov al, [es:si]
    mov dx, FDC_FIFO
    out dx, al
    inc si
    cmp si, 512
    jne .byte
    call fdc_results
    expect e, 3
    pop es
    ret

; ZF set when the sector holds the pattern of seed BL.
check_sector:
    push es
    mov ax, BUF_SEG
    mov es, ax
    mov al, 0x46                    ; READ DATA
    push bx
    call fdc_transfer_command
    pop bx
    xor si, si
.byte:
    mov dx, FDC_MSR
.wait:
    in al, dx
    and al, 0xe0
    cmp al, 0xe0                    ; RQM, towards the host, NON-DMA
    jne .wait
    mov dx, FDC_FIFO
    in al, dx
    mov [es:si], al
    inc si
    cmp si, 512
    jne .byte
    push bx
    call fdc_results
    pop bx
    expect e, 4
    xor di, di
.compare:
    call pattern_byte
    cmp [es:di], al
    jne .done
    inc di
    cmp di, 512
    jne .compare
    xor ax, ax                      ; ZF = 1
.done:
    pop es
    ret

guest_end
