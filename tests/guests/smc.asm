; Self-modifying code in real mode, as the binary translator must see it:
; an instruction patching the next instruction of its own block, and a
; block patching another block that ran (and was translated) before.
%include "harness.inc"
guest_begin

%define RAM_CODE 0x1000

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7000
    ; Copy the routines to RAM at 0000:1000.
    push cs
    pop ds
    mov si, routines
    mov di, RAM_CODE
    mov cx, routines_end - routines
    cld
    rep movsb
    xor ax, ax
    mov ds, ax

    ; 1. Same block: the routine writes the immediate of its next
    ;    instruction, which must execute with the new value.
    call 0:RAM_CODE + (same_block - routines)
    cmp al, 42
    jne fail1
    ; 2. Change the value the routine stores, from outside: the routine's
    ;    translation is stale and must be redone.
    mov byte [RAM_CODE + (same_value - routines)], 43
    call 0:RAM_CODE + (same_block - routines)
    cmp al, 43
    jne fail2

    ; 3. Next block: the first call translates both blocks; the second,
    ;    with a new value to store, must run the patched second block.
    call 0:RAM_CODE + (next_block - routines)
    cmp al, 5
    jne fail3
    mov byte [RAM_CODE + (next_value - routines)], 9
    call 0:RAM_CODE + (next_block - routines)
    cmp al, 9
    jne fail4

    ; 4. A loop that patches its own compare on every pass.
    call 0:RAM_CODE + (loop_patch - routines)
    cmp cx, 10
    jne fail5

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
fail5:
    guest_fail 5

; Position-independent routines run from RAM with CS = 0; they address
; themselves through CS with absolute RAM offsets.
%define RAM(label) (RAM_CODE + (label - routines))
routines:
same_block:
    mov byte [cs:RAM(same_patch) + 1], 42
same_value equ $ - 1
    nop
same_patch:
    mov al, 0
    retf

next_block:
    mov al, 1
    mov byte [cs:RAM(next_patch) + 1], 5
next_value equ $ - 1
    jmp short next_patch
next_patch:
    mov al, 0
    retf

; Counts CX up to the value in the CMP's immediate, raising the immediate
; by one on every pass until it reaches 10.
loop_patch:
    xor cx, cx
    mov byte [cs:RAM(loop_cmp) + 2], 1
loop_again:
    inc cx
loop_cmp:
    cmp cx, byte 1
    jb loop_again
    mov bl, [cs:RAM(loop_cmp) + 2]
    cmp bl, 10
    jae loop_done
    inc bl
    mov [cs:RAM(loop_cmp) + 2], bl
    jmp loop_again
loop_done:
    retf
routines_end:

guest_end
