#!/usr/bin/env python3
"""Real guests built from Debian's packages (fetched at test time by
fetch-guests.sh, never committed):
  memtest    memtest86+ starts its test pass
  isolinux   an ISOLINUX CD shows its boot menu and (but under the interpreter)
             boots the 686 kernel from the CD through SeaBIOS to a shell
  linux      the 686 kernel with a busybox initramfs boots to a shell by
             --kernel; a command typed on the PS/2 keyboard answers on the
             VGA console; the kernel's log reaches the serial port, and a
             command sent to COM1 through the monitor answers there
  linux-serial  the same by --kernel with console=ttyS0 and --serial stdio
             alone: commands written to the engine's standard input reach
             the shell on COM1, answers are read from its standard output
  linux-disk the same kernel from a hard disk image (MBR, FAT16, SYSLINUX)
             through SeaBIOS: commands on both consoles
The initramfs gives a shell on tty1 and one on ttyS0 (initramfs-init).
Usage: debian_guests.py ENGINE ACCEL CACHE_DIR WORKDIR GUEST"""
import os
import subprocess
import sys

from guest_session import GuestSession, SerialConsole, run

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
            guest.wait_text(r"(?m)^guest#", timeout=600)
            guest.type("echo cd-$((6*7))\\n")
            guest.wait_text(r"cd-42", timeout=60)
    finally:
        guest.quit()


def both_consoles(guest, name):
    """The shells on the VGA console and on COM1 each answer a command:
    typed on the PS/2 keyboard and read from the screen; sent to COM1's
    receiver through the monitor and read from the serial log."""
    guest.wait_text(r"(?m)^guest#", timeout=600)
    guest.type("echo vivarium-$((6*7))\\n")
    guest.wait_text(r"vivarium-42", timeout=60)
    guest.screendump(os.path.join(workdir, f"{name}-{accel}.png"))
    guest.wait_serial(r"guest# ", timeout=120)
    guest.send_serial("echo com1-$((6*7)) $(cat /sys/class/tty/ttyS0/type)\\n")
    guest.wait_serial(r"com1-42 4", timeout=60)  # 4: PORT_16550A


def fresh_log(name):
    path = os.path.join(workdir, f"{name}-serial-{accel}.log")
    if os.path.exists(path):
        os.unlink(path)
    return path


def test_linux():
    serial = fresh_log("linux")
    guest = GuestSession(engine, ["--accel", accel, "--memory", "128", "--kernel",
                                  os.path.join(cache, "vmlinuz-686"), "--initrd",
                                  os.path.join(cache, "initramfs.cpio.gz"), "--append",
                                  "console=ttyS0 console=tty0"], serial_log=serial,
                         timeout=900)
    try:
        guest.wait_serial(r"Linux version", timeout=600)
        both_consoles(guest, "linux")
    finally:
        guest.quit()


def test_linux_serial():
    guest = SerialConsole(engine, ["--accel", accel, "--memory", "128", "--kernel",
                                   os.path.join(cache, "vmlinuz-686"), "--initrd",
                                   os.path.join(cache, "initramfs.cpio.gz"), "--append",
                                   "console=ttyS0"], timeout=900)
    try:
        guest.wait(r"Linux version", timeout=600)
        at = guest.wait(r"guest# ", timeout=600)
        guest.write("echo stdin-$((6*7))\n")
        at = guest.wait(r"stdin-42", timeout=60, since=at)
        # A line longer than the 16-byte FIFO, twice in a row, arrives
        # whole: the engine feeds COM1 no faster than the guest reads.
        line = "abcdefghijklmnopqrstuvwxyz0123456789" * 3
        guest.write(f"echo count=$(echo {line} | wc -c)\necho {line} | tr a-z A-Z\n")
        at = guest.wait(rf"count={len(line) + 1}\b", timeout=60, since=at)
        guest.wait(line.upper(), timeout=60, since=at)
    finally:
        guest.close()


def test_linux_disk():
    serial = fresh_log("linux-disk")
    guest = GuestSession(engine, ["--accel", accel, "--memory", "128", "--hda",
                                  os.path.join(cache, "linux-disk.img"), "--boot", "c"],
                         serial_log=serial, timeout=900)
    try:
        guest.wait_text(r"SYSLINUX", timeout=120)
        guest.wait_serial(r"Kernel command line: .*initrd=/initrd\.gz",
                          timeout=600)
        both_consoles(guest, "linux-disk")
    finally:
        guest.quit()


run({"memtest": test_memtest, "isolinux": test_isolinux, "linux": test_linux,
     "linux-serial": test_linux_serial, "linux-disk": test_linux_disk}[guest_name])
