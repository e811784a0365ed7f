; The harness itself: prints through the debug console and reports success
; through the debug-exit port, the two things every other guest test uses.
%include "harness.inc"
guest_begin

start:
    cli
    debug_putc 'o'
    debug_putc 'k'
    debug_putc 10
    guest_pass

guest_end
