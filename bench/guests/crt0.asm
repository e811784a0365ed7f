; Entry of the benchmark kernels: a multiboot (v1) header, a stack, and a
; call to bench_main(multiboot_info); its return value goes to the debug-exit
; port, so the engine's (and QEMU's) exit status carries the result.
bits 32

MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00000003           ; page-aligned modules, memory info

section .multiboot progbits alloc noexec nowrite align=4
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)

section .bss nobits alloc noexec write align=16
stack_bottom:
    resb 65536
stack_top:

section .text progbits alloc exec nowrite align=16
global _start
extern bench_main
_start:
    cli
    mov esp, stack_top
    push ebx                      ; the multiboot information structure
    call bench_main
    mov dx, 0xf4
    out dx, al
.halt:
    hlt
    jmp .halt

section .note.GNU-stack noalloc noexec nowrite progbits
