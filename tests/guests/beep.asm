; The sound test's guest: the PC speaker at 440 Hz for one second, silence for
; half a second, then 1000 Hz for one second and half a second of silence,
; then success through the debug-exit port.
%include "harness.inc"
guest_begin

PIT_HZ equ 1193182
CALIBRATION_COUNT equ PIT_HZ / 20   ; 50 ms of PIT channel 2

; Times are measured with the TSC, calibrated once against PIT channel 2 in
; mode 0: polling a PIT counter can miss periods when the host is busy, a
; TSC deadline cannot.
start:
    cli
    ; EBP = TSC ticks in 50 ms, the least of three measurements: a host
    ; busy elsewhere can only make the poll see the count run out late.
    call calibrate
    mov edi, ebp
    mov cx, 2
.again:
    push cx
    call calibrate
    pop cx
    cmp ebp, edi
    jae .keep
    mov edi, ebp
.keep:
    loop .again
    mov ebp, edi

    mov bx, PIT_HZ / 440
    call tone_on
    mov cx, 20                  ; 20 x 50 ms = 1 s
    call wait_50ms
    call tone_off
    mov cx, 10
    call wait_50ms
    mov bx, PIT_HZ / 1000
    call tone_on
    mov cx, 20
    call wait_50ms
    call tone_off
    mov cx, 10
    call wait_50ms
    guest_pass

; Channel 2 in mode 3 with divisor BX, gate and speaker data on.
tone_on:
    mov al, 0xb6
    out 0x43, al
    mov ax, bx
    out 0x42, al
    mov al, ah
    out 0x42, al
    in al, 0x61
    or al, 3
    out 0x61, al
    ret

tone_off:
    in al, 0x61
    and al, 0xfc
    out 0x61, al
    ret

; Channel 2, mode 0, gate on and speaker off: OUT2 (port 0x61 bit 5) rises
; when the count runs out.
calibrate:
    in al, 0x61
    and al, 0xfc
    or al, 1
    out 0x61, al
    mov al, 0xb0
    out 0x43, al
    mov ax, CALIBRATION_COUNT
    out 0x42, al
    mov al, ah
    out 0x42, al
    rdtsc
    mov ebx, eax
    mov esi, edx
.poll:
    in al, 0x61
    test al, 0x20
    jz .poll
    rdtsc
    sub eax, ebx
    sbb edx, esi
    mov ebp, eax                ; TSC ticks per 50 ms (fits 32 bits below 85 GHz)
    ret

; Waits CX times 50 ms by the TSC.
wait_50ms:
    rdtsc
    mov ebx, eax
    mov esi, edx
.period:
    add ebx, ebp
    adc esi, 0
.spin:
    rdtsc
    cmp edx, esi
    jb .spin
    ja .done
    cmp eax, ebx
    jb .spin
.done:
    loop .period
    ret

guest_end
