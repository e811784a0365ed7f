; A sweep of real-mode integer instructions, each result checked against the
; value the Intel SDM (vol. 2) defines: arithmetic and its flags, shifts and
; rotates, BCD adjustment, multiplication and division, string instructions
; with both directions and REP prefixes, the stack, near and far calls,
; software interrupts and #DE through the interrupt vector table.
%include "harness.inc"
guest_begin

; The status flags SDM vol. 2 defines for the instructions checked here.
%define FL_CF 0x001
%define FL_PF 0x004
%define FL_AF 0x010
%define FL_ZF 0x040
%define FL_SF 0x080
%define FL_OF 0x800
%define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

; Fails with code %3 unless (FLAGS & %1) == %2. Changes no register.
%macro expect_flags 3
    pushf
    push ax
    pushf
    pop ax
    and ax, %1
    cmp ax, %2
    pop ax
    je %%ok
    fail %3
%%ok:
    popf
%endmacro

%define BUF 0x0500 ; scratch RAM for string instructions

start:
    rm_init
    print "realmode_basics: arithmetic", 10

    ; ADD overflowing into the sign bit.
    mov ax, 0x7fff
    add ax, 1
    expect_flags FL_ARITH, FL_OF | FL_SF | FL_AF | FL_PF, 1
    cmp ax, 0x8000
    expect e, 2
    ; SUB borrowing.
    mov al, 0
    sub al, 1
    expect_flags FL_ARITH, FL_CF | FL_SF | FL_AF | FL_PF, 3
    cmp al, 0xff
    expect e, 4
    ; A 32-bit addition in 16-bit halves with ADC, and SBB back.
    mov ax, 0xffff
    mov dx, 0x1234
    add ax, 1
    adc dx, 1
    expect_flags FL_ARITH, FL_PF, 5
    cmp ax, 0
    expect e, 6
    cmp dx, 0x1236
    expect e, 7
    sub ax, 1
    sbb dx, 0
    cmp ax, 0xffff
    expect e, 8
    cmp dx, 0x1235
    expect e, 9
    ; INC and DEC leave CF alone.
    stc
    mov bl, 0xff
    inc bl
    expect_flags FL_ARITH, FL_CF | FL_ZF | FL_AF | FL_PF, 10
    clc
    mov bl, 0x80
    dec bl
    expect_flags FL_ARITH, FL_OF | FL_AF, 11
    cmp bl, 0x7f
    expect e, 12
    ; NEG sets CF unless the operand was zero; NOT changes no flag.
    mov cx, 5
    neg cx
    expect_flags FL_ARITH, FL_CF | FL_SF | FL_AF, 13
    cmp cx, 0xfffb
    expect e, 14
    xor cx, cx
    neg cx
    expect_flags FL_CF | FL_ZF, FL_ZF, 15
    stc
    not cx
    expect_flags FL_CF, FL_CF, 16
    cmp cx, 0xffff
    expect e, 17
    ; Logic clears CF and OF.
    stc
    mov al, 0xf0
    and al, 0x3c
    expect_flags FL_CF | FL_OF | FL_ZF | FL_SF | FL_PF, FL_PF, 18
    cmp al, 0x30
    expect e, 19
    mov al, 0x0f
    xor al, 0x0f
    expect_flags FL_CF | FL_OF | FL_ZF | FL_SF | FL_PF, FL_ZF | FL_PF, 20
    ; CMP of signed values.
    mov ax, -5
    cmp ax, 3
    expect l, 21
    expect a, 22 ; unsigned 0xfffb > 3

    print "realmode_basics: multiply and divide", 10
    mov ax, 0x1234
    mov bx, 0x5678
    mul bx
    expect_flags FL_CF | FL_OF, FL_CF | FL_OF, 23
    cmp dx, 0x0626
    expect e, 24
    cmp ax, 0x0060
    expect e, 25
    mov ax, -3
    mov bx, 7
    imul bx
    expect_flags FL_CF | FL_OF, 0, 26
    cmp dx, 0xffff
    expect e, 27
    cmp ax, -21
    expect e, 28
    ; The three-operand IMUL (186+) truncates and flags the overflow.
    mov cx, 0x4000
    imul dx, cx, 4
    expect_flags FL_CF | FL_OF, FL_CF | FL_OF, 29
    cmp dx, 0
    expect e, 30
    mov al, 200
    mov bl, 3
    mul bl
    cmp ax, 600
    expect e, 31
    mov dx, 1
    xor ax, ax
    mov bx, 3
    div bx
    cmp ax, 0x5555
    expect e, 32
    cmp dx, 1
    expect e, 33
    mov ax, -100
    cwd
    mov bx, 7
    idiv bx
    cmp ax, -14
    expect e, 34
    cmp dx, -2
    expect e, 35
    mov ax, 1000
    mov bl, 7
    div bl
    cmp ax, (6 << 8) | 142
    expect e, 36
    ; 32-bit operands work in real mode through the 66h prefix.
    mov eax, 0x89abcdef
    mov ecx, 0x10
    mul ecx
    cmp edx, 0x8
    expect e, 37
    cmp eax, 0x9abcdef0
    expect e, 38

    print "realmode_basics: shifts and rotates", 10
    mov ax, 0x8001
    shl ax, 1
    expect_flags FL_CF, FL_CF, 39
    cmp ax, 2
    expect e, 40
    mov al, 0x81
    rol al, 1
    expect_flags FL_CF, FL_CF, 41
    cmp al, 0x03
    expect e, 42
    stc
    mov al, 0x02
    rcr al, 1
    expect_flags FL_CF, 0, 43
    cmp al, 0x81
    expect e, 44
    mov al, 0x80
    sar al, 3
    cmp al, 0xf0
    expect e, 45
    mov al, 0x80
    mov cl, 3
    shr al, cl
    cmp al, 0x10
    expect e, 46
    ; The count is masked to five bits: 33 shifts by one.
    mov ax, 0x4000
    mov cl, 33
    shl ax, cl
    cmp ax, 0x8000
    expect e, 47
    ; A zero count changes no flag.
    stc
    mov cl, 0
    shl ax, cl
    expect_flags FL_CF, FL_CF, 48
    mov ax, 0x1234
    mov bx, 0xabcd
    shld ax, bx, 4
    cmp ax, 0x234a
    expect e, 49
    mov ax, 0x1234
    shrd ax, bx, 8
    cmp ax, 0xcd12
    expect e, 50
    ; Single-bit shifts define OF: SHL sets it when CF differs from the new
    ; sign.
    mov al, 0x40
    shl al, 1
    expect_flags FL_OF | FL_CF, FL_OF, 51

    print "realmode_basics: BCD", 10
    mov al, 0x19
    add al, 0x28
    daa
    cmp al, 0x47
    expect e, 52
    expect_flags FL_CF, 0, 53
    mov al, 0x99
    add al, 0x01
    daa
    expect_flags FL_CF | FL_ZF, FL_CF | FL_ZF, 54
    cmp al, 0x00
    expect e, 55
    mov al, 0x47
    sub al, 0x28
    das
    cmp al, 0x19
    expect e, 56
    mov ax, 0x0009
    add al, 0x05
    aaa
    expect_flags FL_CF | FL_AF, FL_CF | FL_AF, 57
    cmp ax, 0x0104
    expect e, 58
    mov ax, 0x0203
    sub al, 0x05
    aas
    expect_flags FL_CF | FL_AF, FL_CF | FL_AF, 59
    cmp ax, 0x0108
    expect e, 60
    mov al, 73
    aam
    cmp ax, 0x0703
    expect e, 61
    aad
    cmp ax, 73
    expect e, 62
    mov al, 0x5b
    aam 16
    cmp ax, 0x050b
    expect e, 63

    print "realmode_basics: data movement", 10
    mov ax, 0x1234
    mov bx, 0x5678
    xchg ax, bx
    cmp ax, 0x5678
    expect e, 64
    cmp bx, 0x1234
    expect e, 65
    mov al, 0x80
    cbw
    cmp ax, 0xff80
    expect e, 66
    cwd
    cmp dx, 0xffff
    expect e, 67
    mov bx, 0x1000
    mov si, 0x0234
    lea di, [bx + si + 0x10]
    cmp di, 0x1244
    expect e, 68
    ; LEA wraps at 64 KiB with a 16-bit address size.
    mov bx, 0xfff0
    lea di, [bx + 0x20]
    cmp di, 0x0010
    expect e, 69
    mov al, 0x85
    movsx cx, al
    cmp cx, 0xff85
    expect e, 70
    movzx cx, al
    cmp cx, 0x0085
    expect e, 71
    mov eax, 0x11223344
    bswap eax
    cmp eax, 0x44332211
    expect e, 72
    ; XLAT looks up DS:BX + AL.
    mov bx, xlat_table
    push ds
    push cs
    pop ds
    mov al, 3
    xlatb
    pop ds
    cmp al, 0x40
    expect e, 73
    ; Bit scans and tests.
    mov ax, 0x0180
    bsf cx, ax
    cmp cx, 7
    expect e, 74
    bsr cx, ax
    cmp cx, 8
    expect e, 75
    bt ax, 8
    expect c, 76
    bts ax, 0
    expect nc, 77
    cmp ax, 0x0181
    expect e, 78
    btr ax, 7
    expect c, 79
    btc ax, 15
    cmp ax, 0x8101
    expect e, 80
    mov al, 5
    cmp al, 7
    setb bl
    setg bh
    cmp bx, 0x0001
    expect e, 81
    ; CMPXCHG and XADD (486+).
    mov word [BUF], 0x1111
    mov ax, 0x1111
    mov cx, 0x2222
    cmpxchg [BUF], cx
    expect z, 82
    cmp word [BUF], 0x2222
    expect e, 83
    cmpxchg [BUF], cx ; AX (1111h) differs: AX gets the memory value
    expect nz, 84
    cmp ax, 0x2222
    expect e, 85
    mov dx, 5
    xadd [BUF], dx
    cmp dx, 0x2222
    expect e, 86
    cmp word [BUF], 0x2227
    expect e, 87

    print "realmode_basics: strings", 10
    ; Copy a string from the ROM, forwards.
    push ds
    push cs
    pop ds
    mov si, sample
    mov di, BUF
    mov cx, sample_end - sample
    cld
    rep movsb
    pop ds
    cmp cx, 0
    expect e, 88
    cmp di, BUF + sample_end - sample
    expect e, 89
    ; Compare them again: equal all the way.
    push ds
    push cs
    pop ds
    mov si, sample
    mov di, BUF
    mov cx, sample_end - sample
    repe cmpsb
    pop ds
    expect e, 90
    cmp cx, 0
    expect e, 91
    ; Find the first 'r' (index 2 of "vivarium").
    mov di, BUF
    mov cx, sample_end - sample
    mov al, 'r'
    repne scasb
    expect e, 92
    cmp di, BUF + 5
    expect e, 93
    cmp cx, sample_end - sample - 5
    expect e, 94
    ; Fill backwards with STOSW under DF = 1.
    std
    mov di, BUF + 0x40 + 6
    mov ax, 0xa55a
    mov cx, 4
    rep stosw
    cld
    cmp di, BUF + 0x40 - 2
    expect e, 95
    cmp word [BUF + 0x40], 0xa55a
    expect e, 96
    cmp word [BUF + 0x46], 0xa55a
    expect e, 97
    ; LODSW and a REP with CX = 0 that does nothing.
    mov si, BUF + 0x40
    lodsw
    cmp si, BUF + 0x42
    expect e, 98
    xor cx, cx
    mov di, BUF
    rep stosb
    cmp di, BUF
    expect e, 99
    ; MOVSD with the address-size default of 16 bits.
    mov dword [BUF + 0x80], 0xdeadbeef
    mov si, BUF + 0x80
    mov di, BUF + 0x90
    movsd
    cmp dword [BUF + 0x90], 0xdeadbeef
    expect e, 100

    print "realmode_basics: stack and calls", 10
    mov bp, sp
    push word 0x1234
    pop ax
    cmp sp, bp
    expect e, 101
    cmp ax, 0x1234
    expect e, 102
    ; PUSHA stores the SP from before the instruction.
    mov ax, 1
    mov cx, 2
    mov dx, 3
    mov bx, 4
    mov si, 6
    mov di, 7
    mov bp, 0x5555
    pusha
    mov bx, sp
    cmp word [bx + 4], 0x5555 ; BP slot
    expect e, 103
    cmp word [bx + 6], RM_STACK_TOP ; SP slot
    expect e, 104
    cmp word [bx + 8], 4 ; BX slot
    expect e, 126
    cmp word [bx + 14], 1 ; AX slot
    expect e, 105
    popa
    cmp sp, RM_STACK_TOP
    expect e, 106
    ; ENTER/LEAVE build and remove a frame.
    enter 8, 0
    mov ax, sp
    cmp bp, RM_STACK_TOP - 2
    expect e, 107
    cmp ax, RM_STACK_TOP - 10
    expect e, 108
    leave
    cmp sp, RM_STACK_TOP
    expect e, 109
    ; POPF loads the flags; bit 1 always reads as one.
    push word 0x08d5
    popf
    pushf
    pop ax
    cmp ax, 0x08d7
    expect e, 110
    ; At CPL 0 (real mode) POPF also loads IOPL and NT.
    push word 0x7000
    popf
    pushf
    pop ax
    cmp ax, 0x7002
    expect e, 125
    push word 0
    popf
    ; Near call and RET imm16.
    push word 0xaaaa
    call near_callee
    cmp sp, RM_STACK_TOP
    expect e, 111
    cmp ax, 0xaaaa
    expect e, 112
    ; Far call and RETF.
    call ROM_SEGMENT:far_callee
    cmp ax, ROM_SEGMENT
    expect e, 113
    cmp sp, RM_STACK_TOP
    expect e, 114
    ; LOOP and JCXZ.
    xor ax, ax
    mov cx, 10
.count:
    inc ax
    loop .count
    cmp ax, 10
    expect e, 115
    jcxz .cx_zero
    fail 116
.cx_zero:

    print "realmode_basics: interrupts", 10
    ; A software interrupt through the IVT: the handler sees IF cleared and
    ; the flags, CS and IP pushed; IRET restores them.
    mov word [0x80 * 4], int80_handler
    mov word [0x80 * 4 + 2], ROM_SEGMENT
    mov word [0 * 4], de_handler
    mov word [0 * 4 + 2], ROM_SEGMENT
    sti
    mov bx, 0
    int 0x80
int80_return:
    cli
    cmp bx, 0x8080
    expect e, 117
    cmp cx, int80_return
    expect e, 118
    pushf
    pop ax
    test ax, 0x200
    expect z, 119 ; the CLI above
    ; #DE pushes the address of the DIV itself.
    xor bl, bl
    mov ax, 0x1234
    mov dx, 0
de_site:
    div bl
    cmp cx, de_site
    expect e, 120
    cmp ax, 0x1234 ; the faulting DIV changed nothing
    expect e, 121

    print "realmode_basics: pass", 10
    guest_pass

near_callee:
    mov bx, sp
    mov ax, [bx + 2]
    ret 2

far_callee:
    mov bx, sp
    mov ax, [bx + 2]
    retf

int80_handler:
    pushf
    pop ax
    test ax, 0x200
    jz .if_clear
    fail 122
.if_clear:
    mov bp, sp
    mov cx, [bp]        ; IP
    cmp word [bp + 2], ROM_SEGMENT
    expect e, 123
    test word [bp + 4], 0x200 ; the pushed IF was set
    expect nz, 124
    mov bx, 0x8080
    iret

de_handler:
    mov bp, sp
    mov cx, [bp]
    ; Skip the two-byte DIV BL.
    add word [bp], 2
    iret

xlat_table:
    db 0x10, 0x20, 0x30, 0x40
sample:
    db "vivarium"
sample_end:

guest_end
