; VGA memory through the 0xa0000 window while the adapter maps it onto video
; memory as RAM (chain 4 with a plain data path) and while the register
; changes in between send accesses back to the planar handlers: what one
; path writes, the other must read, in the places the IBM VGA reference
; gives (chain-4 byte n is plane n & 3 at plane address n & ~3). Switching
; back and forth also checks that no CPU backend keeps writing to the window
; as RAM after it stopped being RAM (stale TLB entries).
%include "harness.inc"
guest_begin

%define SEQ  0x3c4
%define GC   0x3ce
%define MISC 0x3c2

; Sets register %2 of the index/data pair at port %1 to %3.
%macro vga_reg 3
    mov dx, %1
    mov ax, ((%3) << 8) | (%2)
    out dx, ax
%endmacro

; The value the fill below leaves in chain-4 byte n.
%define PATTERN(n) (((n) ^ ((n) >> 8)) & 0xff)

; Fails with code %2 unless the window byte at ES:%1 holds %3.
%macro expect_byte 3
    cmp byte [es:%1], %3
    expect e, %2
%endmacro

start:
    rm_init
    print "vga_window: chain 4 through the mapping", 10
    vga_reg SEQ, 4, 0x0e        ; chain 4, extended memory
    vga_reg SEQ, 2, 0x0f        ; all planes
    vga_reg GC, 5, 0x40         ; write mode 0, read mode 0, 256 colours
    vga_reg GC, 6, 0x05         ; graphics, 0xa0000-0xaffff
    vga_reg GC, 8, 0xff
    mov ax, 0xa000
    mov es, ax

    xor di, di
.fill:
    mov ax, di
    xor al, ah
    mov [es:di], al
    inc di
    jnz .fill
    xor di, di
.check:
    mov ax, di
    xor al, ah
    cmp [es:di], al
    expect e, 1
    inc di
    jnz .check

    ; Doublewords by a string instruction.
    mov di, 0x8000
    mov eax, 0x44332211
    mov cx, 0x400
    rep stosd
    expect_byte 0x8001, 2, 0x22
    expect_byte 0x8ffe, 3, 0x33
    expect_byte 0x9000, 4, PATTERN(0x9000)

    ; Copies within video memory, as a scroll does.
    push ds
    mov ax, 0xa000
    mov ds, ax
    mov si, 0x5000
    mov di, 0x6000
    mov cx, 0x100
    rep movsw
    pop ds
    expect_byte 0x6010, 5, PATTERN(0x5010)
    expect_byte 0x61ff, 6, PATTERN(0x51ff)

    print "vga_window: unchained, through the handlers", 10
    vga_reg SEQ, 4, 0x06        ; chain 4 off: sequential plane addressing
    vga_reg GC, 4, 1            ; read plane 1
    ; Plane 1 at plane address 0x1234 is chain-4 byte 0x1235.
    expect_byte 0x1234, 10, PATTERN(0x1235)
    vga_reg GC, 4, 3
    expect_byte 0x1234, 11, PATTERN(0x1237)
    ; Plane 2 alone at plane address 0x2000: chain-4 byte 0x2002.
    vga_reg SEQ, 2, 0x04
    mov byte [es:0x2000], 0x5a
    vga_reg SEQ, 2, 0x0f
    vga_reg SEQ, 4, 0x0e
    expect_byte 0x2002, 12, 0x5a
    expect_byte 0x2000, 13, PATTERN(0x2000)
    expect_byte 0x2001, 14, PATTERN(0x2001)
    expect_byte 0x2003, 15, PATTERN(0x2003)

    print "vga_window: latches, set/reset", 10
    ; Write mode 1 copies the latches, loaded by the read before it.
    vga_reg GC, 5, 0x41
    mov al, [es:0x3004]         ; latches: chain-4 bytes 0x3004-0x3007
    mov [es:0x3100], al         ; plane 0 of them
    mov [es:0x3102], al         ; plane 2 of them
    vga_reg GC, 5, 0x40
    expect_byte 0x3100, 20, PATTERN(0x3004)
    expect_byte 0x3102, 21, PATTERN(0x3006)
    expect_byte 0x3101, 22, PATTERN(0x3101)
    ; Set/reset: planes 1 and 3 set, 0 and 2 cleared, whatever is written.
    vga_reg GC, 0, 0x0a
    vga_reg GC, 1, 0x0f
    mov byte [es:0x4000], 0x77
    mov byte [es:0x4001], 0x77
    vga_reg GC, 1, 0x00
    expect_byte 0x4000, 23, 0x00
    expect_byte 0x4001, 24, 0xff
    ; The bit mask keeps the latched bits.
    vga_reg GC, 8, 0x0f
    mov al, [es:0x4000]         ; latches from chain-4 bytes 0x4000-0x4003
    mov byte [es:0x4002], 0xaa  ; plane 2: high half latched, low half written
    vga_reg GC, 8, 0xff
    expect_byte 0x4002, 25, (PATTERN(0x4002) & 0xf0) | 0x0a

    print "vga_window: memory maps", 10
    mov ax, 0xb000
    mov fs, ax
    vga_reg GC, 6, 0x01         ; 0xa0000-0xbffff: the same 64 KiB twice
    cmp byte [fs:0x1235], PATTERN(0x1235)
    expect e, 30
    mov byte [fs:0x1236], 0x66
    expect_byte 0x1236, 31, 0x66
    vga_reg GC, 6, 0x05         ; back to 0xa0000-0xaffff: nothing at 0xb0000
    cmp byte [fs:0x1235], 0xff
    expect e, 32
    mov byte [fs:0x1237], 0x00
    expect_byte 0x1237, 33, PATTERN(0x1237)

    ; Memory access disabled in the miscellaneous output register.
    mov dx, MISC
    mov al, 0x65
    out dx, al
    expect_byte 0x0102, 34, 0xff
    mov byte [es:0x0102], 0x99
    mov dx, MISC
    mov al, 0x67
    out dx, al
    expect_byte 0x0102, 35, PATTERN(0x0102)

    print "vga_window: ok", 10
    guest_pass

guest_end
