#!/usr/bin/env python3
"""Keys typed through the monitor reach the guest kbd_typed.bin (kbd_irq.asm
built with -DTYPED) one interrupt per byte: once the guest says it is ready,
the monitor types a line at its usual pace (30 ms between key events, each
one posted to the vCPU thread), and the guest checks every scan code it
received, ending the engine with its verdict.

Usage: kbd-typed.py ENGINE GUEST_IMAGE WORKDIR [ENGINE-OPTION...]
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "firmware"))
from guest_session import GuestError, GuestSession, run  # noqa: E402

engine, guest, work = sys.argv[1:4]
options = sys.argv[4:]
TEXT = "qwertyuiopasdfghjklzxcvbnm1234567890QWERTY"  # what kbd_irq.asm expects


def test_typed():
    os.makedirs(work, exist_ok=True)
    log = os.path.join(work, "kbd-typed-" + "-".join(o.lstrip("-") for o in options) + ".debugcon")
    if os.path.exists(log):
        os.unlink(log)
    session = GuestSession(engine, ["--bios", guest, "--no-reboot", "--debugcon", log]
                           + options, timeout=240)
    try:
        deadline = time.monotonic() + 120
        content = ""
        while "ready" not in content:
            if time.monotonic() > deadline or session.proc.poll() is not None:
                raise GuestError(f"the guest did not get ready; it printed {content!r}\n"
                                 + "\n".join(session.stderr))
            time.sleep(0.05)
            if os.path.exists(log):
                with open(log, errors="replace") as f:
                    content = f.read()
        # The guest ends the engine as soon as it has every byte, which may
        # be before the monitor's "ok": wait for the exit, not the answer.
        session.proc.stdin.write("type " + TEXT + "\n")
        session.proc.stdin.flush()
        try:
            status = session.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            raise GuestError("the guest did not finish")
        with open(log, errors="replace") as f:
            content = f.read()
        if status != 1:
            raise GuestError(f"engine status {status}; the guest printed:\n{content}"
                             + "\n".join(session.stderr))
        print(content, end="")
    finally:
        session.quit()


run(test_typed)
