#!/usr/bin/env python3
"""The command line of vivarium-engine as scripts rely on it: impossible
values, unknown options and missing files are refused with exit status 2 and
exactly one line on standard error that names what was wrong; the accepted
forms of --memory, --boot, --serial, --debugcon, --timeout and --no-reboot
do what they say, shown with tiny firmware images made here.
Usage: command_line.py ENGINE WORKDIR"""
import os
import signal
import subprocess
import sys
import time

engine, workdir = sys.argv[1:3]
os.makedirs(workdir, exist_ok=True)
failures = []


def firmware(name, code):
    """A 64 KiB firmware image: code at its start (0xf000:0000), reached by
    a far jump from the reset vector."""
    image = bytearray(b"\xf4" * 0x10000)
    image[0:len(code)] = code
    image[0xfff0:0xfff5] = b"\xea\x00\x00\x00\xf0"  # jmp 0xf000:0000
    path = os.path.join(workdir, name)
    with open(path, "wb") as f:
        f.write(image)
    return path


# 'D' to the debugcon port, 'S' to COM1, then debug-exit with 5: status 11.
SAYS_AND_EXITS = firmware("says-and-exits.bin", bytes([
    0xb0, ord("D"), 0xe6, 0xe9,        # mov al, 'D'; out 0xe9, al
    0xba, 0xf8, 0x03,                  # mov dx, 0x3f8
    0xb0, ord("S"), 0xee,              # mov al, 'S'; out dx, al
    0xb0, 0x05, 0xe6, 0xf4,            # mov al, 5; out 0xf4, al
    0xfa, 0xf4, 0xeb, 0xfd]))          # cli; hlt; jmp $-1
# A reset through the keyboard controller's output port (command 0xfe).
RESETS = firmware("resets.bin", bytes([
    0xb0, 0xfe, 0xe6, 0x64,            # mov al, 0xfe; out 0x64, al
    0xfa, 0xf4, 0xeb, 0xfd]))
# Halts for good: only --timeout ends it.
HALTS = firmware("halts.bin", bytes([0xfa, 0xf4, 0xeb, 0xfd]))
# Says 'R' on the debugcon port, then halts.
RUNS = firmware("runs.bin", bytes([0xb0, ord("R"), 0xe6, 0xe9, 0xfa, 0xf4, 0xeb, 0xfd]))

BASE = ["--headless", "--accel", "interp", "--audio", "none", "--serial", "none",
        "--debugcon", "none"]


def run(args, timeout=60):
    return subprocess.run([engine] + args, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(what)


missing = os.path.join(workdir, "no-such-file.img")
refusals = [
    (["--memory", "0"], "--memory 0"),
    (["--memory", "99T"], "--memory 99T"),
    (["--memory", "3073M"], "--memory 3073M"),
    (["--memory", "1500K"], "--memory 1500K"),
    (["--memory", "lots"], "--memory lots"),
    (["--boot", "xyz"], "--boot xyz"),
    (["--boot", ""], "--boot"),
    (["--accel", "foo"], "--accel foo"),
    (["--serial", "tcp:4444"], "--serial tcp:4444"),
    (["--serial", "file:"], "--serial file:"),
    (["--serial", "file:" + os.path.join(missing, "log")], "--serial file:"),
    (["--debugcon", "somewhere"], "--debugcon somewhere"),
    (["--firmware-log", "log.txt"], "--firmware-log log.txt"),
    (["--monitor", "tcp"], "--monitor tcp"),
    (["--timeout", "-5"], "--timeout -5"),
    (["--timeout", "soon"], "--timeout"),
    (["--no-such-option"], "--no-such-option"),
    (["--hda", missing], "--hda " + missing),
    (["--cdrom", missing], "--cdrom " + missing),
    (["--fda", missing], "--fda " + missing),
    (["--bios", missing], "--bios " + missing),
    (["--kernel", missing], "--kernel " + missing),
    (["--kernel", HALTS, "--initrd", missing], "--initrd " + missing),
    (["--initrd", HALTS], "--initrd"),
    (["--cdrom", HALTS, "--hdc", HALTS], "--cdrom"),
    ([missing], missing),
]
for args, named in refusals:
    r = run(BASE + ["--bios", HALTS, "--timeout", "5"] + args)
    lines = r.stderr.splitlines()
    check(f"refuses {' '.join(args) or repr(args)}",
          r.returncode == 2 and len(lines) == 1 and lines[0].startswith("vivarium-engine: ")
          and named in lines[0] and r.stdout == "",
          f"status {r.returncode}, stderr {r.stderr!r}, stdout {r.stdout[:200]!r}")

# Accepted forms.
serial_log = os.path.join(workdir, "serial.log")
debug_log = os.path.join(workdir, "debugcon.log")
for size in ["2G", "3072", "64M", "1024MiB"]:
    r = run(["--headless", "--accel", "interp", "--audio", "none", "--bios", SAYS_AND_EXITS,
             "--memory", size, "--boot", "cda", "--serial", "file:" + serial_log,
             "--debugcon", "file:" + debug_log])
    with open(serial_log) as f:
        serial = f.read()
    with open(debug_log) as f:
        debug = f.read()
    check(f"--memory {size} runs; COM1 and debugcon reach their files",
          r.returncode == 11 and serial == "S" and debug == "D",
          f"status {r.returncode}, serial {serial!r}, debugcon {debug!r}, {r.stderr!r}")

# The older form: a bare path (with a slash) is a file.
r = run(["--headless", "--accel", "interp", "--audio", "none", "--bios", SAYS_AND_EXITS,
         "--serial", "stdio", "--debugcon", debug_log])
with open(debug_log) as f:
    debug = f.read()
check("--debugcon PATH (a bare path) is a file", r.returncode == 11 and debug == "D",
      f"status {r.returncode}, debugcon {debug!r}")
check("--serial stdio writes COM1 to standard output", r.returncode == 11 and r.stdout == "S",
      f"status {r.returncode}, stdout {r.stdout!r}")

r = run(BASE + ["--bios", RESETS, "--no-reboot", "--timeout", "30"])
check("--no-reboot: a reset request ends the run with status 8", r.returncode == 8,
      f"status {r.returncode}, {r.stderr!r}")
shot = os.path.join(workdir, "timeout.png")
if os.path.exists(shot):
    os.unlink(shot)
r = run(BASE + ["--bios", RESETS, "--timeout", "2", "--screenshot", shot])
check("without --no-reboot it resets until --timeout: status 124 and a screenshot",
      r.returncode == 124 and os.path.exists(shot), f"status {r.returncode}, {r.stderr!r}")

# SIGUSR1 writes the --screenshot file while the guest runs on.
shot = os.path.join(workdir, "sigusr1.png")
if os.path.exists(shot):
    os.unlink(shot)
# The guest's first output shows that the engine runs, and so that its
# signal handler is in place.
proc = subprocess.Popen([engine, "--headless", "--accel", "interp", "--audio", "none",
                         "--serial", "none", "--debugcon", "stdio", "--bios", RUNS,
                         "--timeout", "20", "--screenshot", shot], stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
started = proc.stdout.read(1) == b"R"
proc.send_signal(signal.SIGUSR1)
deadline = time.monotonic() + 10
while not os.path.exists(shot) and time.monotonic() < deadline:
    time.sleep(0.1)
check("SIGUSR1 writes the screenshot while the guest runs",
      started and os.path.exists(shot) and proc.poll() is None)
proc.kill()
proc.wait()

if failures:
    print(f"FAIL: {len(failures)} of the checks", file=sys.stderr)
    sys.exit(1)
