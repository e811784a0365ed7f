#!/usr/bin/env python3
"""Real guests built from Debian's packages (fetched at test time by
fetch-guests.sh, never committed):
  memtest    memtest86+ starts its test pass
  isolinux   an ISOLINUX CD shows its boot menu and (but under the interpreter)
             boots the 686 kernel from the CD through SeaBIOS to a shell
  linux      the 686 kernel with a busybox initramfs boots to a shell by
             --kernel; a command typed on the PS/2 keyboard answers on the
             VGA console, and the kernel's log reaches the serial port
Usage: debian_guests.py ENGINE ACCEL CACHE_DIR WORKDIR GUEST"""
import os
import subprocess
import sys

from guest_session import GuestSession, run

engine, accel, cache, workdir, guest_name = sys.argv[1:6]
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(workdir, exist_ok=True)
fetch = subprocess.run([os.path.join(here, "fetch-guests.sh"), cache], capture_output=True,
                       text=True)
if fetch.returncode != 0:
    print("SKIP: the Debian guests could not be fetched:\n" + fetch.stderr[-2000:])
    sys.exit(77)


def test_memtest():
    guest = GuestSession(engine, ["--accel", accel, "--memory", "64", "--kernel",
                                  os.path.join(cache, "x/memtest86/boot/memtest86+ia32.bin")])
    try:
        guest.wait_text(r"Memtest86\+", timeout=120)
        guest.wait_text(r"Status: Testing", timeout=120)
        guest.screendump(os.path.join(workdir, f"memtest-{accel}.png"))
    finally:
        guest.quit()


def test_isolinux():
    guest = GuestSession(engine, ["--accel", accel, "--cdrom",
                                  os.path.join(cache, "isolinux.iso"), "--boot", "d"])
    try:
        guest.wait_text(r"Linux \(busybox\)", timeout=120)
        guest.screendump(os.path.join(workdir, f"isolinux-{accel}.png"))
        if accel != "interp":
            # The menu's only entry boots the 686 kernel from the CD: on to
            # its shell (minutes under the interpreter, so not there).
            guest.wait_text(r"guest# ", timeout=600)
            guest.type("echo cd-$((6*7))\\n")
            guest.wait_text(r"cd-42", timeout=60)
    finally:
        guest.quit()


def test_linux():
    serial = os.path.join(workdir, f"linux-serial-{accel}.log")
    if os.path.exists(serial):
        os.unlink(serial)
    guest = GuestSession(engine, ["--accel", accel, "--memory", "128", "--kernel",
                                  os.path.join(cache, "vmlinuz-686"), "--initrd",
                                  os.path.join(cache, "initramfs.cpio.gz"), "--append",
                                  "console=ttyS0 console=tty0"], serial_log=serial,
                         timeout=900)
    try:
        guest.wait_serial(r"Linux version", timeout=600)
        guest.wait_text(r"guest# ", timeout=600)
        guest.type("echo vivarium-$((6*7))\\n")
        guest.wait_text(r"vivarium-42", timeout=60)
        guest.screendump(os.path.join(workdir, f"linux-{accel}.png"))
    finally:
        guest.quit()


run({"memtest": test_memtest, "isolinux": test_isolinux, "linux": test_linux}[guest_name])
