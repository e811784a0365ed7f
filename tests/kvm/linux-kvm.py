#!/usr/bin/env python3
"""The 686 Linux kernel with its busybox initramfs (fetch-guests.sh builds
them) boots under --accel kvm to a shell: the kernel's log reaches the
serial port and the prompt shows on the VGA console. A command is typed on
the PS/2 keyboard and its answer must appear on the screen. Runs where
/dev/kvm is, e.g. inside the nested machine of run-suite.sh; the guest files
must already be in CACHE_DIR, as the nested machine sees the host read-only.
Usage: linux-kvm.py ENGINE CACHE_DIR WORKDIR"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "firmware"))
from guest_session import GuestSession, run  # noqa: E402

engine, cache, workdir = sys.argv[1:4]
os.makedirs(workdir, exist_ok=True)


def wait_quiet(path, seconds, timeout):
    """Waits until the file has not grown for the given seconds."""
    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = os.path.getsize(path) if os.path.exists(path) else 0
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.5)


def test_linux_kvm():
    serial = os.path.join(workdir, "linux-serial-kvm.log")
    if os.path.exists(serial):
        os.unlink(serial)
    guest = GuestSession(engine, ["--accel", "kvm", "--memory", "128", "--kernel",
                                  os.path.join(cache, "vmlinuz-686"), "--initrd",
                                  os.path.join(cache, "initramfs.cpio.gz"), "--append",
                                  "console=ttyS0 console=tty0"], serial_log=serial,
                         timeout=900)
    try:
        guest.wait_serial(r"Linux version", timeout=600)
        guest.wait_text(r"guest# ", timeout=600)
        guest.screendump(os.path.join(workdir, "linux-kvm-prompt.png"))
        # Typed once the boot has quietened down. In the nested machine the
        # guest can stop reading its keyboard for hundreds of milliseconds
        # (see docs/COMPATIBILITY.md): the keys wait on the host side.
        wait_quiet(serial, seconds=5, timeout=180)
        guest.type("echo vivarium-$((6*7))\\n")
        guest.wait_text(r"vivarium-42", timeout=120)
        guest.screendump(os.path.join(workdir, "linux-kvm.png"))
    finally:
        guest.quit()
    print("kvm: the 686 kernel reached its shell and answered a typed command")


run(test_linux_kvm)
