; A guest that writes to its disk as fast as it can, for the SIGKILL test
; (tests/block/sigkill.py): runs of 8 sectors at pseudo-random places all
; over a 256 MiB disk, so that nearly every write allocates a qcow2 cluster
; and an L2 table now and then, with a FLUSH CACHE after every 16 writes.
; It never ends by itself.
%include "harness.inc"
guest_begin

%define BUF_SEG      0x2000
%define DISK_SECTORS (256 * 2048)
%define RUN          8

%define ATA_DATA    0x1f0
%define ATA_COUNT   0x1f2
%define ATA_LBA0    0x1f3
%define ATA_LBA1    0x1f4
%define ATA_LBA2    0x1f5
%define ATA_DEVICE  0x1f6
%define ATA_COMMAND 0x1f7

start:
    rm_init
    print "writing", 10
    mov ax, BUF_SEG
    mov ds, ax
    mov es, ax
    mov ebp, 0x12345678     ; the generator's state
    xor esi, esi            ; writes so far

next_write:
    ; A 32-bit linear congruential generator (Numerical Recipes).
    imul ebp, ebp, 1664525
    add ebp, 1013904223
    mov eax, ebp
    shr eax, 8
    and eax, (DISK_SECTORS - 1) & ~(RUN - 1)
    mov edi, eax            ; the LBA

    ; The data: the LBA and the write's number in every dword.
    push edi
    mov ebx, edi
    xor edi, edi
    mov cx, RUN * 128
.fill:
    mov [es:di], ebx
    mov [es:di + 4], esi
    add di, 8
    dec cx
    dec cx
    jnz .fill
    pop edi

    call wait_not_busy
    mov eax, edi
    shr eax, 24
    and al, 0x0f
    or al, 0xe0
    mov dx, ATA_DEVICE
    out dx, al
    mov dx, ATA_COUNT
    mov al, RUN
    out dx, al
    mov eax, edi
    mov dx, ATA_LBA0
    out dx, al
    shr eax, 8
    mov dx, ATA_LBA1
    out dx, al
    shr eax, 8
    mov dx, ATA_LBA2
    out dx, al
    mov dx, ATA_COMMAND
    mov al, 0x30            ; WRITE SECTORS
    out dx, al

    push si
    xor si, si
    mov bx, RUN
.sector:
    call wait_drq
    mov dx, ATA_DATA
    mov cx, 256
    rep outsw
    dec bx
    jnz .sector
    pop si

    inc esi
    test esi, 15
    jnz next_write
    call wait_not_busy
    mov dx, ATA_COMMAND
    mov al, 0xe7            ; FLUSH CACHE
    out dx, al
    jmp next_write

wait_not_busy:
    mov dx, ATA_COMMAND
.wait:
    in al, dx
    test al, 0x80
    jnz .wait
    ret

wait_drq:
    mov dx, ATA_COMMAND
.wait:
    in al, dx
    test al, 0x80
    jnz .wait
    test al, 0x01
    jnz .error
    test al, 0x08
    jz .wait
    ret
.error:
    fail 1

guest_end
