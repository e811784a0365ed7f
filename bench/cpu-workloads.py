#!/usr/bin/env python3
"""Runs the benchmark kernels (bench/guests) under each Vivarium CPU backend
and under QEMU in the same invocation, and prints each figure and the
ratios. Every kernel times itself with RDTSC and prints one line
"bench NAME scale=N tsc=T checksum=C" on the debug console.

Usage: bench/cpu-workloads.py [--build DIR] [--backends interp,dbt,kvm] [--scale-divisor N]
                              [--workloads a,b] [--repeat N]

Figures are throughput relative to QEMU (QEMU's TSC ticks / ours for the same
work): the software backends against `qemu-system-i386 -accel tcg`, the kvm
backend against `qemu-system-i386 -accel kvm` (run only where /dev/kvm
opens; elsewhere kvm is left out and the script says so). The checksum of
every run must match QEMU's, or the run is flagged. This script never fails
on a time: it reports.
"""
import argparse
import math
import os
import re
import subprocess
import sys

LINE = re.compile(r"bench (\S+) scale=(\d+) tsc=(\d+) checksum=(\d+)")
DEFAULT_SCALES = {"bytecode": 30000, "count": 50000000, "crc32": 200, "matmul": 100,
                  "sieve": 20, "sort": 20, "strings": 200}


def best(cmd, timeout, repeat):
    """The fastest of repeat runs: on a shared machine the others only
    add time the guest spent preempted."""
    runs = [r for r in (run(cmd, timeout) for _ in range(repeat)) if r]
    return min(runs) if runs else None


def run(cmd, timeout):
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=timeout, text=True, errors="replace").stdout
    except subprocess.TimeoutExpired:
        return None
    m = LINE.search(out)
    return (int(m.group(3)), int(m.group(4))) if m else None


def kvm_usable():
    """Why /dev/kvm cannot be used here, or None when it can."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return None
    except OSError as e:
        return f"/dev/kvm: {e.strerror}"


def qemu_command(accel, kernel, scale):
    return ["qemu-system-i386", "-accel", accel, "-display", "none", "-no-reboot",
            "-kernel", kernel, "-append", f"scale={scale}",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=1", "-debugcon", "stdio"]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(here, "..", "build"))
    p.add_argument("--backends", default="interp")
    p.add_argument("--scale-divisor", type=int, default=1,
                   help="divide every workload's size (the interpreter is slow)")
    p.add_argument("--workloads", default=",".join(sorted(DEFAULT_SCALES)))
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--repeat", type=int, default=1,
                   help="run each N times and keep the fastest (for loaded machines)")
    args = p.parse_args()

    engine = os.path.join(args.build, "engine", "vivarium-engine")
    kernels = os.path.join(args.build, "bench", "guests")
    backends = [b for b in args.backends.split(",") if b]
    if "kvm" in backends:
        why = kvm_usable()
        if why:
            print(f"kvm left out: {why}")
            backends.remove("kvm")
    # Each backend's peer: QEMU with the same kind of CPU.
    peer_of = {b: "kvm" if b == "kvm" else "tcg" for b in backends}
    peers = sorted(set(peer_of.values()), reverse=True)
    names = [w for w in args.workloads.split(",") if w]
    ratios = {b: [] for b in backends}

    print(f"{'workload':10} " + " ".join(f"{'qemu-' + p + ' tsc':>14}" for p in peers) + " " +
          " ".join(f"{b + ' tsc':>14} {b + '/qemu':>10}" for b in backends))
    for name in names:
        scale = max(1, DEFAULT_SCALES[name] // args.scale_divisor)
        kernel = os.path.join(kernels, name + ".elf")
        qemu = {p: best(qemu_command(p, kernel, scale), args.timeout, args.repeat) for p in peers}
        row = f"{name:10} " + " ".join(
            f"{qemu[p][0] if qemu[p] else 'failed':>14}" for p in peers) + " "
        for b in backends:
            peer = qemu[peer_of[b]]
            ours = best([engine, "--headless", "--no-reboot", "--accel", b, "--kernel", kernel,
                         "--append", f"scale={scale}"], args.timeout, args.repeat)
            if not ours or not peer:
                row += f"{'failed':>14} {'-':>10} "
                continue
            mark = "" if ours[1] == peer[1] else " (checksum differs!)"
            ratio = peer[0] / ours[0]
            ratios[b].append(ratio)
            row += f"{ours[0]:>14} {ratio:>10.3f}{mark} "
        print(row, flush=True)
    for b in backends:
        r = ratios[b]
        if r:
            geo = math.exp(sum(math.log(x) for x in r) / len(r))
            print(f"geometric mean throughput {b} / qemu-{peer_of[b]}: {geo:.3f} "
                  f"over {len(r)} workloads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
