#!/usr/bin/env python3
"""Seconds from start to a busybox shell prompt on the serial console for the
Debian 686 kernel with the firmware tests' initramfs, under Vivarium's
backends and under qemu-system-i386 -accel tcg, in one invocation.

Usage: bench/linux-boot.py [--build DIR] [--backends dbt] [--cache DIR] [--runs N]
The kernel and initramfs come from tests/firmware/fetch-guests.sh (CACHE,
default build/guest-cache). Prints each time and the ratio; never fails on
a time."""
import argparse
import os
import select
import subprocess
import sys
import time

PROMPT = b"guest# "


def boot_time(cmd, timeout):
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    seen = b""
    try:
        while time.monotonic() - start < timeout:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    return None
                seen = (seen + chunk)[-4096:]
                if PROMPT in seen:
                    return time.monotonic() - start
        return None
    finally:
        proc.kill()
        proc.wait()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(here, "..", "build"))
    p.add_argument("--backends", default="dbt")
    p.add_argument("--cache", default=None)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--timeout", type=int, default=600)
    args = p.parse_args()
    cache = args.cache or os.path.join(args.build, "guest-cache")
    subprocess.run([os.path.join(here, "..", "tests", "firmware", "fetch-guests.sh"), cache],
                   check=True, capture_output=True)
    kernel = os.path.join(cache, "vmlinuz-686")
    initrd = os.path.join(cache, "initramfs.cpio.gz")
    append = "console=ttyS0"
    engine = os.path.join(args.build, "engine", "vivarium-engine")
    runs = {"qemu-tcg": ["qemu-system-i386", "-accel", "tcg", "-m", "128", "-display", "none",
                         "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
                         "-append", append]}
    for b in [b for b in args.backends.split(",") if b]:
        runs[b] = [engine, "--headless", "--debugcon", "none", "--accel", b, "--memory", "128",
                   "--kernel", kernel, "--initrd", initrd, "--append", append]
    times = {}
    for name, cmd in runs.items():
        best = None
        for _ in range(args.runs):
            t = boot_time(cmd, args.timeout)
            if t is not None and (best is None or t < best):
                best = t
        times[name] = best
        print(f"{name:10} {'no prompt' if best is None else f'{best:.2f} s'} to the shell prompt",
              flush=True)
    for name, t in times.items():
        if name != "qemu-tcg" and t and times["qemu-tcg"]:
            print(f"{name} boots in {t / times['qemu-tcg']:.2f}x QEMU TCG's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
