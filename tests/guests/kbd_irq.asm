; Every byte the keyboard controller has for the CPU must come with an
; interrupt of its own on IRQ1, however quickly the bytes follow each other.
; IRQ1 is edge triggered: the controller drops the line when the CPU reads
; port 60h and raises it again for the next byte, and the PIC latches that new
; edge even while the handler has IRQ1 masked.
;
; The keyboard handler works as Linux's does (mask IRQ1 and send a specific
; EOI first, read one byte, unmask), and the PIT interrupts at 1 kHz at the
; same time. The main loop waits in HLT, so every byte must also wake the CPU.
;
; Built plain, the program asks the keyboard for its ID (0F2h) 64 times in a
; row; each answer is three bytes at once (ACK, ABh, 83h) and all 192 must
; arrive. Built with -DTYPED (kbd_typed.bin), it instead waits for the keys
; that tests/guests/kbd-typed.py types through the monitor, and checks the
; translated scan codes byte for byte: a lost interrupt shows as a missing
; byte or a time-out. After the first key it stops reading for 600 ms with
; interrupts off, as a guest stalled by its host can: the keys typed
; meanwhile overflow the keyboard's own buffer, and must wait on the host
; side rather than be lost.
%include "harness.inc"
guest_begin

%define TICKS       0x500 ; timer interrupts (dword)
%define KBD_IRQS    0x504 ; keyboard interrupts (dword)
%define KBD_EMPTY   0x508 ; keyboard interrupts that found no byte (dword)
%define NBYTES      0x50c ; bytes received (dword)
%define STALLED     0x510 ; typed mode: the stall is over (byte)
%define BYTES       0x600 ; the bytes received, up to 1 KiB
%define MAX_BYTES   0x400

%define ID_ROUNDS   64
%define ROUND_TICKS 1000  ; one second per round at most
%define TYPED_TICKS 30000 ; half a minute for everything typed
%define STALL_PERIODS 11  ; of 55 ms: 600 ms, 20 key events at the monitor's pace

start:
    rm_init
    xor eax, eax
    mov [TICKS], eax
    mov [KBD_IRQS], eax
    mov [KBD_EMPTY], eax
    mov [NBYTES], eax
    mov [STALLED], al
    ; IVT: IRQ0 and IRQ1 at vectors 8 and 9 (the remap below).
    mov word [8 * 4], timer_isr
    mov word [8 * 4 + 2], cs
    mov word [9 * 4], kbd_isr
    mov word [9 * 4 + 2], cs
    ; Master PIC: edge triggered, vectors 8-15, IRQ0 and IRQ1 unmasked.
    mov al, 0x11
    out 0x20, al
    mov al, 0x08
    out 0x21, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x01
    out 0x21, al
    mov al, 0xfc
    out 0x21, al
    ; PIT channel 0: mode 2, divisor 1193 (1 ms).
    mov al, 0x34
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al
    ; Controller command byte: keyboard interrupt, system flag, translation
    ; to set 1; the mouse interface off.
    mov al, 0x60
    out 0x64, al
    mov al, 0x65
    out 0x60, al

%ifdef TYPED
    ; A byte that was already waiting raised IRQ1 before the PIC was set
    ; up, which forgot it: take it by hand, and the next ones interrupt.
    in al, 0x64
    test al, 1
    jz .ready
    in al, 0x60
    call store_byte
.ready:
    print "ready", 10
    sti
.wait:
    hlt
    ; After the first key, a stall with interrupts off: the keys typed
    ; meanwhile are more than the keyboard's 16-byte buffer holds, and
    ; must still all arrive.
    cmp byte [STALLED], 0
    jne .stalled
    cmp dword [NBYTES], 2
    jb .wait
    mov byte [STALLED], 1
    cli
    mov cx, STALL_PERIODS
.stall:
    call wait_55ms
    loop .stall
    sti
.stalled:
    cmp dword [NBYTES], typed_end - typed_bytes
    jae .typed_done
    cmp dword [TICKS], TYPED_TICKS
    jb .wait
    cli
    call report
    fail 1
.typed_done:
    cli
    call report
    cmp dword [NBYTES], typed_end - typed_bytes
    jne fail_count
    xor ebx, ebx
.compare:
    mov al, [BYTES + bx]
    cmp al, [cs:typed_bytes + bx]
    jne fail_byte
    inc bx
    cmp bx, typed_end - typed_bytes
    jb .compare
%else
    sti
    xor esi, esi ; rounds done
.round:
    mov dword [TICKS], 0
    mov al, 0xf2
    out 0x60, al
    lea edi, [esi * 3 + 3] ; bytes expected by the end of this round
.wait:
    hlt
    cmp [NBYTES], edi
    jae .round_done
    cmp dword [TICKS], ROUND_TICKS
    jb .wait
    cli
    call report
    fail 1
.round_done:
    inc esi
    cmp esi, ID_ROUNDS
    jb .round
    cli
    call report
    cmp dword [NBYTES], ID_ROUNDS * 3
    jne fail_count
    xor ebx, ebx
.compare:
    cmp byte [BYTES + bx], 0xfa
    jne fail_byte
    ; 83h arrives as 41h: the controller translates it to set 1 (ABh has no
    ; translation), so Linux looks for AB 41 too.
    cmp byte [BYTES + bx + 1], 0xab
    jne fail_byte
    cmp byte [BYTES + bx + 2], 0x41
    jne fail_byte
    add bx, 3
    cmp bx, ID_ROUNDS * 3
    jb .compare
%endif
    ; Each interrupt brought exactly one byte.
    mov eax, [KBD_IRQS]
    cmp eax, [NBYTES]
    jne fail_irqs
    cmp dword [KBD_EMPTY], 0
    jne fail_irqs
    print "ok", 10
    guest_pass

fail_count:
    fail 2
fail_byte:
    print "wrong byte at "
    print_hex ebx
    print 10
    fail 3
fail_irqs:
    fail 4

; Prints the counters.
report:
    print "bytes "
    print_hex [NBYTES]
    print " keyboard interrupts "
    print_hex [KBD_IRQS]
    print " without a byte "
    print_hex [KBD_EMPTY]
    print " timer ticks "
    print_hex [TICKS]
    print 10
    ret

; Waits 55 ms on PIT channel 2 (mode 0, count 65536), polling its output
; in port 61h bit 5, as Linux's TSC calibration does.
wait_55ms:
    in al, 0x61
    and al, 0xfc ; speaker off
    or al, 0x01  ; channel 2 gate on
    out 0x61, al
    mov al, 0xb0 ; channel 2, LSB then MSB, mode 0
    out 0x43, al
    xor al, al
    out 0x42, al
    out 0x42, al
.poll:
    in al, 0x61
    test al, 0x20
    jz .poll
    ret

; Appends AL to the bytes received.
store_byte:
    push bx
    mov bx, [NBYTES]
    cmp bx, MAX_BYTES
    jae .full
    mov [BYTES + bx], al
.full:
    inc dword [NBYTES]
    pop bx
    ret

timer_isr:
    push ax
    inc dword [TICKS]
    mov al, 0x20
    out 0x20, al
    pop ax
    iret

kbd_isr:
    push ax
    ; As Linux's i8259 code: mask the line and send its specific EOI first.
    in al, 0x21
    or al, 0x02
    out 0x21, al
    mov al, 0x61
    out 0x20, al
    inc dword [KBD_IRQS]
    in al, 0x64
    test al, 1
    jz .empty
    in al, 0x60
    call store_byte
    jmp .unmask
.empty:
    inc dword [KBD_EMPTY]
.unmask:
    in al, 0x21
    and al, ~0x02
    out 0x21, al
    pop ax
    iret

%ifdef TYPED
; What kbd-typed.py types, "qwertyuiopasdfghjklzxcvbnm1234567890QWERTY", in
; set 1 as the controller translates it: make and break of each key, the
; capitals inside Left Shift's make and break.
typed_bytes:
    db 0x10, 0x90, 0x11, 0x91, 0x12, 0x92, 0x13, 0x93, 0x14, 0x94 ; qwert
    db 0x15, 0x95, 0x16, 0x96, 0x17, 0x97, 0x18, 0x98, 0x19, 0x99 ; yuiop
    db 0x1e, 0x9e, 0x1f, 0x9f, 0x20, 0xa0, 0x21, 0xa1, 0x22, 0xa2 ; asdfg
    db 0x23, 0xa3, 0x24, 0xa4, 0x25, 0xa5, 0x26, 0xa6            ; hjkl
    db 0x2c, 0xac, 0x2d, 0xad, 0x2e, 0xae, 0x2f, 0xaf, 0x30, 0xb0 ; zxcvb
    db 0x31, 0xb1, 0x32, 0xb2                                    ; nm
    db 0x02, 0x82, 0x03, 0x83, 0x04, 0x84, 0x05, 0x85, 0x06, 0x86 ; 12345
    db 0x07, 0x87, 0x08, 0x88, 0x09, 0x89, 0x0a, 0x8a, 0x0b, 0x8b ; 67890
    db 0x2a, 0x10, 0x90, 0xaa, 0x2a, 0x11, 0x91, 0xaa, 0x2a, 0x12, 0x92, 0xaa ; QWE
    db 0x2a, 0x13, 0x93, 0xaa, 0x2a, 0x14, 0x94, 0xaa, 0x2a, 0x15, 0x95, 0xaa ; RTY
typed_end:
%endif

guest_end
