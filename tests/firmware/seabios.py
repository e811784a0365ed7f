#!/usr/bin/env python3
"""SeaBIOS starts on the engine: its banner on the VGA screen and in its debug
log (port 0x402), then, with nothing to boot, its "No bootable device".
Usage: seabios.py ENGINE ACCEL WORKDIR"""
import os
import sys

from guest_session import GuestSession, run

engine, accel, workdir = sys.argv[1:4]
os.makedirs(workdir, exist_ok=True)
log = os.path.join(workdir, f"seabios-{accel}.log")


def test():
    guest = GuestSession(engine, ["--accel", accel, "--boot", "c", "--firmware-log", "file:" + log])
    try:
        guest.wait_text(r"SeaBIOS \(version", timeout=60)
        guest.wait_text(r"No bootable device", timeout=60)
    finally:
        guest.quit()
    with open(log, errors="replace") as f:
        content = f.read()
    for expected in ("SeaBIOS (version", "Running on QEMU (i440fx)", "Found QEMU fw_cfg",
                     "Start SeaVGABIOS"):
        if expected not in content:
            raise SystemExit(f"FAIL: '{expected}' is not in SeaBIOS's log {log}")


run(test)
