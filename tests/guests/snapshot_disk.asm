; The guest side of the snapshot test (tests/guests/snapshot.py): it keeps a
; pattern in RAM and on disk, and waits for keys that tell it what to do.
;
; At start it writes pattern A to RAM (PATTERN_RAM, 64 KiB) and to sectors
; 8..15 of the primary master disk, then prints "ready" on the debug console.
; Then, for each key pressed on the PS/2 keyboard:
;   w   write pattern B to RAM and disk, print "written"
;   a   check that RAM and disk hold pattern A: pass, or fail 1 (RAM), 2 (disk)
;   b   check that RAM and disk hold pattern B: pass, or fail 3 (RAM), 4 (disk)
; The disk is read back through the ATA controller every time, so a check
; sees what the image holds, not a copy in RAM.
%include "harness.inc"
guest_begin

%define PATTERN_RAM_SEG 0x2000  ; 0x20000, 64 KiB
%define READ_BUF_SEG    0x3000  ; 0x30000, one sector run
%define DISK_LBA        8
%define DISK_SECTORS    8

%define ATA_DATA    0x1f0
%define ATA_COUNT   0x1f2
%define ATA_LBA0    0x1f3
%define ATA_LBA1    0x1f4
%define ATA_LBA2    0x1f5
%define ATA_DEVICE  0x1f6
%define ATA_COMMAND 0x1f7

%define KEY_W 0x11
%define KEY_A 0x1e
%define KEY_B 0x30

start:
    rm_init
    mov bl, 0x11            ; pattern A's seed
    call fill_pattern
    call write_disk
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
    mov bl, 0x5b            ; pattern B's seed
    call fill_pattern
    call write_disk
    print "written", 10
    jmp wait_key

key_a:
    mov bl, 0x11
    call check_ram
    expect e, 1
    call check_disk
    expect e, 2
    guest_pass

key_b:
    mov bl, 0x5b
    call check_ram
    expect e, 3
    call check_disk
    expect e, 4
    guest_pass

; The byte at offset i of a pattern with seed s: (i * 7 + s + (i >> 8)) mod 256,
; so no two sectors are alike. In: BL seed, DI offset. Out: AL.
pattern_byte:
    mov ax, di
    mov cx, 7
    mul cx
    add al, bl
    mov cx, di
    add al, ch
    ret

; Fills the 64 KiB at PATTERN_RAM_SEG with the pattern of seed BL.
fill_pattern:
    push es
    mov ax, PATTERN_RAM_SEG
    mov es, ax
    xor di, di
.next:
    call pattern_byte
    mov [es:di], al
    inc di
    jnz .next
    pop es
    ret

; ZF set when RAM holds the pattern of seed BL.
check_ram:
    push es
    mov ax, PATTERN_RAM_SEG
    mov es, ax
    xor di, di
.next:
    call pattern_byte
    cmp [es:di], al
    jne .done
    inc di
    jnz .next
    xor ax, ax              ; ZF = 1
.done:
    pop es
    ret

; ZF set when the disk's sectors hold the first DISK_SECTORS * 512 bytes of
; the pattern of seed BL.
check_disk:
    call read_disk
    push es
    mov ax, READ_BUF_SEG
    mov es, ax
    xor di, di
.next:
    call pattern_byte
    cmp [es:di], al
    jne .done
    inc di
    cmp di, DISK_SECTORS * 512
    jne .next
    xor ax, ax
.done:
    pop es
    ret

ata_wait_not_busy:
    mov dx, ATA_COMMAND
.wait:
    in al, dx
    test al, 0x80
    jnz .wait
    ret

ata_wait_drq:
    mov dx, ATA_COMMAND
.wait:
    in al, dx
    test al, 0x80
    jnz .wait
    test al, 0x01
    jnz ata_error
    test al, 0x08
    jz .wait
    ret

ata_error:
    fail 5

; Sends an LBA28 command for DISK_SECTORS sectors at DISK_LBA. In: AL command.
ata_command:
    push ax
    call ata_wait_not_busy
    mov dx, ATA_DEVICE
    mov al, 0xe0
    out dx, al
    mov dx, ATA_COUNT
    mov al, DISK_SECTORS
    out dx, al
    mov dx, ATA_LBA0
    mov al, DISK_LBA
    out dx, al
    mov dx, ATA_LBA1
    xor al, al
    out dx, al
    mov dx, ATA_LBA2
    out dx, al
    mov dx, ATA_COMMAND
    pop ax
    out dx, al
    ret

; Writes RAM's pattern to the disk, then flushes the disk's cache.
write_disk:
    push bx
    push ds
    mov al, 0x30            ; WRITE SECTORS
    call ata_command
    mov ax, PATTERN_RAM_SEG
    mov ds, ax
    xor si, si
    mov bx, DISK_SECTORS
.sector:
    call ata_wait_drq
    mov dx, ATA_DATA
    mov cx, 256
    rep outsw
    dec bx
    jnz .sector
    pop ds
    call ata_wait_not_busy
    mov dx, ATA_COMMAND
    mov al, 0xe7            ; FLUSH CACHE
    out dx, al
    call ata_wait_not_busy
    pop bx
    ret

read_disk:
    push bx
    push es
    mov al, 0x20            ; READ SECTORS
    call ata_command
    mov ax, READ_BUF_SEG
    mov es, ax
    xor di, di
    mov bx, DISK_SECTORS
.sector:
    call ata_wait_drq
    mov dx, ATA_DATA
    mov cx, 256
    rep insw
    dec bx
    jnz .sector
    pop es
    pop bx
    ret

guest_end
