#!/usr/bin/env python3
"""Time to save and to restore a snapshot of a guest with 256 MiB of RAM in
use, and the snapshot's size: Vivarium (monitor savevm/loadvm) against
qemu-system-i386 -accel tcg (HMP savevm/loadvm, an internal snapshot in the
qcow2 disk QEMU needs for it), in the same invocation, with the ratios.

The guest is bench/guests/fill.elf, a multiboot kernel that fills RAM above
8 MiB with data compressing like a busy guest's memory (six random bits per
byte), prints "filled" and halts. Both machines get the same RAM size and an
empty 1 GiB qcow2 disk.

Usage: bench/snapshot.py [--build DIR] [--backend dbt] [--mib 256] [--repeat 3]

Times are wall-clock from sending the command to its answer, the best of
--repeat rounds. This script never fails on a time: it reports.
"""
import argparse
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time


def wait_file(path, text, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                if text in f.read():
                    return
        if proc.poll() is not None:
            sys.exit(f"the machine ended (status {proc.returncode}) before printing {text!r}")
        time.sleep(0.05)
    sys.exit(f"{text!r} did not appear within {timeout} s")


class Console:
    """A line- or prompt-terminated command console on a process's stdio."""

    def __init__(self, proc):
        self.proc = proc
        self.buf = b""

    def read_until(self, marker, timeout=600):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while marker not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                sys.exit(f"no {marker!r} from the monitor; it said {self.buf[-500:]!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    sys.exit(f"the monitor closed; it said {self.buf[-500:]!r}")
                self.buf += chunk
        before, _, self.buf = self.buf.partition(marker)
        return before.decode(errors="replace")

    def cpu_seconds(self):
        """User and system time of the whole process so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def timed(self, line, marker):
        """Runs a command: (wall seconds, CPU seconds, output)."""
        cpu = self.cpu_seconds()
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        start = time.monotonic()
        out = self.read_until(marker)
        return time.monotonic() - start, self.cpu_seconds() - cpu, out


def vivarium(args, kernel, work):
    engine = os.path.join(args.build, "engine", "vivarium-engine")
    disk = os.path.join(work, "viv.qcow2")
    snapdir = os.path.join(work, "viv-snapshots")
    log = os.path.join(work, "viv.debugcon")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "1G"], check=True)
    proc = subprocess.Popen([engine, "--headless", "--accel", args.backend,
                             "--memory", str(args.mib + 64), "--kernel", kernel,
                             "--append", f"scale={args.mib}", "--hda", disk,
                             "--snapshot-dir", snapdir, "--monitor", "stdio",
                             "--debugcon", log, "--serial", "none"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    wait_file(log, "filled", proc)
    con = Console(proc)
    saves, loads = [], []
    for _ in range(args.repeat):
        *t, out = con.timed("savevm bench", b"ok\n")
        if "error" in out:
            sys.exit(f"vivarium savevm: {out}")
        saves.append(t)
        *t, out = con.timed("loadvm bench", b"ok\n")
        if "error" in out:
            sys.exit(f"vivarium loadvm: {out}")
        loads.append(t)
    size = sum(os.path.getsize(os.path.join(snapdir, f)) for f in os.listdir(snapdir)
               if f.startswith("bench.") or f.endswith(".qcow2"))
    proc.stdin.write(b"quit\n")
    proc.stdin.flush()
    proc.wait(timeout=60)
    return min(saves), min(loads), size


def qemu(args, kernel, work):
    disk = os.path.join(work, "qemu.qcow2")
    log = os.path.join(work, "qemu.debugcon")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "1G"], check=True)
    proc = subprocess.Popen(["qemu-system-i386", "-accel", "tcg", "-m", str(args.mib + 64),
                             "-kernel", kernel, "-append", f"scale={args.mib}",
                             "-display", "none", "-drive", f"file={disk},if=ide,format=qcow2",
                             "-debugcon", f"file:{log}", "-monitor", "stdio",
                             "-serial", "none"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    con = Console(proc)
    con.read_until(b"(qemu) ")
    wait_file(log, "filled", proc)
    saves, loads = [], []
    for _ in range(args.repeat):
        # The first round creates the snapshot; later ones replace it.
        *t, out = con.timed("savevm bench", b"(qemu) ")
        saves.append(t)
        *t, out = con.timed("loadvm bench", b"(qemu) ")
        loads.append(t)
    _, _, listing = con.timed("info snapshots", b"(qemu) ")
    con.proc.stdin.write(b"quit\n")
    con.proc.stdin.flush()
    proc.wait(timeout=60)
    size = None
    for line in listing.splitlines():
        parts = line.split()
        if "bench" in parts:
            # ID TAG VM-SIZE UNIT DATE TIME VM-CLOCK ...
            i = parts.index("bench")
            number, unit = float(parts[i + 1]), parts[i + 2]
            size = int(number * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit])
    return min(saves), min(loads), size


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(here, "..", "build"))
    p.add_argument("--backend", default="dbt")
    p.add_argument("--mib", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    kernel = os.path.join(args.build, "bench", "guests", "fill.elf")
    work = tempfile.mkdtemp(prefix="vivarium-bench-snapshot-")
    try:
        ours = vivarium(args, kernel, work)
        theirs = qemu(args, kernel, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"guest: {args.mib} MiB of RAM filled; best of {args.repeat}; the engine's CPU time "
          f"counts its work even on a busy host")
    print(f"{'':22} {'vivarium (' + args.backend + ')':>18} {'qemu-tcg':>12} {'ratio':>8}")
    rows = [("save, wall (s)", ours[0][0], theirs[0][0]),
            ("save, CPU (s)", ours[0][1], theirs[0][1]),
            ("restore, wall (s)", ours[1][0], theirs[1][0]),
            ("restore, CPU (s)", ours[1][1], theirs[1][1]),
            ("snapshot size (MiB)", ours[2] / 2**20,
             theirs[2] / 2**20 if theirs[2] else None)]
    for name, a, b in rows:
        ratio = f"{a / b:8.2f}" if b else "       -"
        b_text = f"{b:12.3f}" if b is not None else f"{'?':>12}"
        print(f"{name:22} {a:18.3f} {b_text} {ratio}")
    print("ratio: vivarium / qemu (below 1: vivarium is faster or smaller)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
