#!/usr/bin/env python3
"""FreeDOS boots from a floppy or the hard disk image in ../shared/guests/freedos
to its prompt, and runs commands typed on the PS/2 keyboard (VER, DIR, the
shell's MEMORY and, from the disk, the ATTRIB program). None of the shared
images carries MEM.EXE (see docs/COMPATIBILITY.md); FreeCOM's built-in MEMORY
shows the memory it manages instead.
Usage: freedos.py ENGINE ACCEL (floppy IMAGE | disk IMAGE.gz) WORKDIR"""
import gzip
import os
import shutil
import sys

from guest_session import GuestSession, run

engine, accel, kind, image = sys.argv[1:5]
if not os.path.exists(image):
    print(f"SKIP: {image} is missing (../shared/guests is not beside this clone)")
    sys.exit(77)

workdir = sys.argv[5]
os.makedirs(workdir, exist_ok=True)
if kind == "disk":
    disk = os.path.join(workdir, "freedos-hdd-64m.img")
    with gzip.open(image, "rb") as src, open(disk, "wb") as dst:
        shutil.copyfileobj(src, dst)
    args, prompt = ["--hda", disk, "--boot", "c", "--memory", "32"], r"C:\\>"
else:
    # A copy, so that the guest's writes leave the shared image alone.
    floppy = os.path.join(workdir, os.path.basename(image))
    shutil.copyfile(image, floppy)
    args, prompt = ["--fda", floppy, "--boot", "a"], r"A:\\>"


def test():
    guest = GuestSession(engine, ["--accel", accel] + args)
    try:
        guest.wait_text(prompt, timeout=120)
        guest.type("ver\\n")
        guest.wait_text(r"FreeCom version", timeout=60)
        guest.type("cls\\n")
        guest.type("dir\\n")
        guest.wait_text(r"bytes free", timeout=60)
        guest.type("cls\\n")
        guest.type("memory\\n")
        guest.wait_text(r"Environment segment *: max +\d+ bytes; free +\d+ bytes", timeout=60)
        if kind == "disk":
            # An external program from the disk (\FDOS holds a few FreeDOS
            # utilities; MEM is not among them).
            guest.type("cls\\n")
            guest.type(r"\\fdos\\attrib \\autoexec.bat\n")
            guest.wait_text(r"\[-*A\] \\AUTOEXEC\.BAT", timeout=60)
    finally:
        guest.quit()


run(test)
