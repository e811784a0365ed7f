; Privilege transitions (Intel SDM vol. 3, 5.8 "Privilege level checking when
; transferring program control", 6.12 "Exception and interrupt handling",
; 7.2 "Task management data structures"): ring 0 to ring 3 with IRET and
; RETF; ring 3 to ring 0 through an interrupt gate and a call gate (with
; parameters copied), the inner stack taken from the TSS (SS0:ESP0), the
; frames pushed, data segment registers nulled on the way out, and the #GP
; faults of privileged and IOPL-sensitive instructions at CPL 3.
%include "harness.inc"
guest_begin

%define SEL_TSS         (SEL_FIRST_FREE + 0x00)
%define SEL_CALL_GATE   (SEL_FIRST_FREE + 0x08 + 3) ; DPL 3, 2 parameters
%define SEL_DONE_GATE   (SEL_FIRST_FREE + 0x10 + 3) ; DPL 3, no parameters
%define SEL_GATE_DPL0   (SEL_FIRST_FREE + 0x18 + 3) ; DPL 0: not for ring 3

%define RING0_ESP0      0x8800 ; ESP0 in the TSS, below the ring 0 stack

; Values recorded at ring 3 and in the ring 0 handlers, checked afterwards.
%define V               SCRATCH_RAM
%define V_R3_CS         (V + 0x00)
%define V_R3_DS         (V + 0x04)
%define V_R3_SS         (V + 0x08)
%define V_R3_ESP        (V + 0x0c)
%define V_R3_EFLAGS     (V + 0x10)
%define V_ESP_AT_INT    (V + 0x14)
%define V_INT_CS        (V + 0x18) ; in the handler
%define V_INT_SS        (V + 0x1c)
%define V_INT_ESP       (V + 0x20)
%define V_INT_FRAME     (V + 0x24) ; EIP, CS, EFLAGS, ESP, SS
%define V_AFTER_INT_DS  (V + 0x38)
%define V_AFTER_INT_ESP (V + 0x3c)
%define V_ESP_AT_CALL   (V + 0x40)
%define V_GATE_CS       (V + 0x44)
%define V_GATE_SS       (V + 0x48)
%define V_GATE_ESP      (V + 0x4c)
%define V_GATE_FRAME    (V + 0x50) ; EIP, CS, param, param, ESP, SS
%define V_AFTER_CALL_ESP (V + 0x68)
%define V_AFTER_CALL_CS (V + 0x6c)
%define V_DONE_FRAME    (V + 0x70) ; EIP, CS, ESP, SS
%define V_RETF_CS       (V + 0x80)
%define V_RETF_ESP      (V + 0x84)
%define V_DONE_CONTINUE (V + 0x88) ; where done_gate_target goes on at ring 0

; From ring 0: expects the exception 'vector' (failure code 'code') from the
; ring 3 code at 'label', entered with RETF at ESP = STACK3_TOP, IOPL 0.
%macro ring3_expect 3
    push dword 0x0002
    popfd
    expect_exception %1, %2
    push dword SEL_DATA32_R3
    push dword STACK3_TOP
    push dword SEL_CODE32_R3
    push dword %3
    retf
    end_expect
    expect_eq dword [EXC_CS], SEL_CODE32_R3, %2
    expect_eq dword [EXC_EIP], %3, %2
    expect_eq dword [EXC_SS], SEL_DATA32_R3, %2
    expect_eq dword [EXC_ESP], STACK3_TOP, %2
    expect_eq dword [EXC_FRAME_ADDR], RING0_ESP0 - 24, %2
    expect_eq dword [EXC_SS_ENTRY], SEL_DATA32, %2
%endmacro

start:
    rm_init
    enter_protected_mode pm32

bits 32
pm32:
    pm_init
    setup_idt
    print "pm_gates: TSS", 10

    ; A TSS with the ring 0 stack and no I/O bitmap (its offset is past the
    ; limit).
    mov edi, TSS_RAM
    xor eax, eax
    mov ecx, 0x68 / 4
    rep stosd
    mov dword [TSS_RAM + 4], RING0_ESP0
    mov dword [TSS_RAM + 8], SEL_DATA32
    mov word [TSS_RAM + 0x66], 0x68
    mov ax, SEL_TSS
    ltr ax
    ; LTR marks the descriptor busy.
    mov al, [GDT_RAM + SEL_TSS + 5]
    cmp al, ACC_TSS32_BUSY
    expect e, 1
    str eax
    expect_eq eax, SEL_TSS, 2

    set_idt_gate 0x80, SEL_CODE32, int80_handler, GATE_INT32 | 0x60

    print "pm_gates: IRET to ring 3", 10
    mov dword [V_DONE_CONTINUE], check_transitions
    push dword SEL_DATA32_R3
    push dword STACK3_TOP
    push dword 0x3002 ; IOPL 3
    push dword SEL_CODE32_R3
    push dword ring3_a
    iret

bits 32
ring3_a:
    ; CPL 3. DS, ES, FS and GS held ring 0 segments: IRET nulled them, so
    ; only SS reaches memory yet.
    mov eax, cs
    mov [ss:V_R3_CS], eax
    mov eax, ds
    mov [ss:V_R3_DS], eax
    mov eax, ss
    mov [ss:V_R3_SS], eax
    mov [ss:V_R3_ESP], esp
    pushfd
    pop dword [ss:V_R3_EFLAGS]
    mov ax, SEL_DATA32_R3
    mov ds, ax
    mov es, ax
    ; Through an interrupt gate to ring 0 and back.
    mov [V_ESP_AT_INT], esp
    int 0x80
ring3_after_int:
    mov eax, ds
    mov [ss:V_AFTER_INT_DS], eax
    mov [ss:V_AFTER_INT_ESP], esp
    mov ax, SEL_DATA32_R3
    mov ds, ax
    ; Through a call gate with two parameters, back with RETF 8.
    push dword 0x11111111
    push dword 0x22222222
    mov [V_ESP_AT_CALL], esp
    call SEL_CALL_GATE:0
ring3_after_call:
    mov [V_AFTER_CALL_ESP], esp
    mov eax, cs
    mov [V_AFTER_CALL_CS], eax
    call SEL_DONE_GATE:0xdead ; the offset comes from the gate
ring3_after_done:
    jmp $

int80_handler:
    mov eax, cs
    mov [ss:V_INT_CS], eax
    mov eax, ss
    mov [ss:V_INT_SS], eax
    mov [ss:V_INT_ESP], esp
    mov esi, esp
    mov edi, V_INT_FRAME
    mov ecx, 5
.copy:
    mov eax, [ss:esi]
    mov [ss:edi], eax
    add esi, 4
    add edi, 4
    loop .copy
    ; A ring 0 data segment in DS: IRET to ring 3 must null it.
    mov ax, SEL_DATA32
    mov ds, ax
    iret

call_gate_target:
    mov eax, cs
    mov [ss:V_GATE_CS], eax
    mov eax, ss
    mov [ss:V_GATE_SS], eax
    mov [ss:V_GATE_ESP], esp
    mov esi, esp
    mov edi, V_GATE_FRAME
    mov ecx, 6
.copy:
    mov eax, [ss:esi]
    mov [ss:edi], eax
    add esi, 4
    add edi, 4
    loop .copy
    retf 8

done_gate_target:
    mov esi, esp
    mov edi, V_DONE_FRAME
    mov ecx, 4
.copy:
    mov eax, [ss:esi]
    mov [ss:edi], eax
    add esi, 4
    add edi, 4
    loop .copy
    pm_init
    push dword 0x0002
    popfd
    jmp [V_DONE_CONTINUE]

check_transitions:
    print "pm_gates: checking the transitions", 10
    expect_eq dword [V_R3_CS], SEL_CODE32_R3, 3
    expect_eq dword [V_R3_DS], 0, 4
    expect_eq dword [V_R3_SS], SEL_DATA32_R3, 5
    expect_eq dword [V_R3_ESP], STACK3_TOP, 6
    expect_eq dword [V_R3_EFLAGS], 0x3002, 7
    ; The interrupt gate: CPL 0, the stack from the TSS, the outer SS:ESP,
    ; EFLAGS, CS:EIP pushed there.
    expect_eq dword [V_INT_CS], SEL_CODE32, 8
    expect_eq dword [V_INT_SS], SEL_DATA32, 9
    expect_eq dword [V_INT_ESP], RING0_ESP0 - 20, 10
    expect_eq dword [V_INT_FRAME + 0], ring3_after_int, 11
    expect_eq dword [V_INT_FRAME + 4], SEL_CODE32_R3, 12
    expect_eq dword [V_INT_FRAME + 8], 0x3002, 13
    mov eax, [V_ESP_AT_INT]
    expect_eq dword [V_INT_FRAME + 12], eax, 14
    expect_eq dword [V_INT_FRAME + 16], SEL_DATA32_R3, 15
    expect_eq dword [V_AFTER_INT_DS], 0, 16
    expect_eq dword [V_AFTER_INT_ESP], eax, 17
    ; The call gate: the two parameters copied to the inner stack between
    ; the return address and the outer SS:ESP.
    expect_eq dword [V_GATE_CS], SEL_CODE32, 18
    expect_eq dword [V_GATE_SS], SEL_DATA32, 19
    expect_eq dword [V_GATE_ESP], RING0_ESP0 - 24, 20
    expect_eq dword [V_GATE_FRAME + 0], ring3_after_call, 21
    expect_eq dword [V_GATE_FRAME + 4], SEL_CODE32_R3, 22
    expect_eq dword [V_GATE_FRAME + 8], 0x22222222, 23
    expect_eq dword [V_GATE_FRAME + 12], 0x11111111, 24
    mov eax, [V_ESP_AT_CALL]
    expect_eq dword [V_GATE_FRAME + 16], eax, 25
    expect_eq dword [V_GATE_FRAME + 20], SEL_DATA32_R3, 26
    ; RETF 8 popped the parameters off the outer stack too.
    add eax, 8
    expect_eq dword [V_AFTER_CALL_ESP], eax, 27
    expect_eq dword [V_AFTER_CALL_CS], SEL_CODE32_R3, 28
    expect_eq dword [V_DONE_FRAME + 0], ring3_after_done, 29
    expect_eq dword [V_DONE_FRAME + 4], SEL_CODE32_R3, 30
    expect_eq dword [V_DONE_FRAME + 12], SEL_DATA32_R3, 31

    print "pm_gates: RETF to ring 3 and faults there", 10
    ; RETF to an outer level loads SS:ESP from the stack too.
    mov dword [V_DONE_CONTINUE], check_retf
    push dword SEL_DATA32_R3
    push dword STACK3_TOP - 0x40
    push dword SEL_CODE32_R3
    push dword ring3_retf
    retf
ring3_retf:
    mov eax, cs
    mov [ss:V_RETF_CS], eax
    mov [ss:V_RETF_ESP], esp
    call SEL_DONE_GATE:0
ring3_retf_done:
    jmp $

check_retf:
    expect_eq dword [V_RETF_CS], SEL_CODE32_R3, 46
    expect_eq dword [V_RETF_ESP], STACK3_TOP - 0x40, 47
    expect_eq dword [V_DONE_FRAME + 0], ring3_retf_done, 48
    expect_eq dword [V_DONE_FRAME + 8], STACK3_TOP - 0x40, 49

    ; IOPL-sensitive and privileged instructions at CPL 3 with IOPL 0.
    ring3_expect 13, 32, ring3_cli
    expect_eq dword [EXC_ERROR], 0, 33
    ring3_expect 13, 34, ring3_out
    expect_eq dword [EXC_ERROR], 0, 35
    ring3_expect 13, 36, ring3_hlt
    expect_eq dword [EXC_ERROR], 0, 37
    ring3_expect 13, 38, ring3_mov_cr0
    expect_eq dword [EXC_ERROR], 0, 39
    ; INT n through a DPL 0 gate from CPL 3: #GP(vector * 8 + 2).
    ring3_expect 13, 40, ring3_int3
    expect_eq dword [EXC_ERROR], 3 * 8 + 2, 41
    ; A call gate with DPL 0 from CPL 3: #GP(gate selector).
    ring3_expect 13, 42, ring3_call_dpl0
    expect_eq dword [EXC_ERROR], SEL_GATE_DPL0 & ~3, 43
    ; A ring 0 data segment loaded at CPL 3: #GP(selector).
    ring3_expect 13, 44, ring3_load_ds
    expect_eq dword [EXC_ERROR], SEL_DATA32, 45

    print "pm_gates: pass", 10
    guest_pass

ring3_cli:
    cli
ring3_out:
    out 0x80, al
ring3_hlt:
    hlt
ring3_mov_cr0:
    mov cr0, eax
ring3_int3:
    int3
ring3_call_dpl0:
    call SEL_GATE_DPL0:0
ring3_load_ds:
    mov ds, [cs:ring0_data_selector]
    jmp $
ring0_data_selector:
    dw SEL_DATA32

gdt_start:
    gdt_standard
    descriptor TSS_RAM, 0x67, ACC_TSS32, 0x0
    gate SEL_CODE32, OFF(call_gate_target), GATE_CALL32 | 0x60, 2
    gate SEL_CODE32, OFF(done_gate_target), GATE_CALL32 | 0x60, 0
    gate SEL_CODE32, OFF(done_gate_target), GATE_CALL32, 0
gdt_end:

guest_end
