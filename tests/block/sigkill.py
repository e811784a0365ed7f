"""Kills the engine with SIGKILL at random moments while a guest writes all
over a qcow2 disk, and has `qemu-img check` judge the image after every
kill: the qcow2 code orders its writes (data, then refcounts, synced, then
L2 and L1 tables) so that no moment leaves a damaged image. Leaked clusters
(status 3) are allowed: a cluster allocated but not yet referenced is lost
space, never wrong data.

The moments come from a seeded generator (the seed is printed), and the
whole run is bounded: it stops starting engines after --budget seconds.

Usage: sigkill.py ENGINE GUEST_IMAGE WORKDIR [--seed N] [--kills N] [--budget S]
"""
import argparse
import os
import random
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("engine")
parser.add_argument("guest")
parser.add_argument("work")
parser.add_argument("--seed", type=int, default=20261124)
parser.add_argument("--kills", type=int, default=25)
parser.add_argument("--budget", type=float, default=45.0)
args = parser.parse_args()

os.makedirs(args.work, exist_ok=True)
image = os.path.join(args.work, "sigkill.qcow2")
base = os.path.join(args.work, "sigkill-base.qcow2")
rng = random.Random(args.seed)
print(f"seed {args.seed}")

# Half the runs write to an image with a backing file, so that partial
# cluster writes copy data up from below.
for path in (image, base):
    if os.path.exists(path):
        os.unlink(path)
subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base, "256M"], check=True)
subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", image],
               check=True)

start = time.monotonic()
kills = leaks_seen = runs_writing = 0
while kills < args.kills and time.monotonic() - start < args.budget:
    log = os.path.join(args.work, "sigkill.debugcon")
    proc = subprocess.Popen([args.engine, "--headless", "--accel", "interp", "--bios", args.guest,
                             "--hda", image, "--debugcon", log, "--serial", "none",
                             "--timeout", "30"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    delay = rng.uniform(0.05, 1.2)
    time.sleep(delay)
    if proc.poll() is not None:
        sys.exit(f"FAIL: the engine ended by itself (status {proc.returncode}): "
                 f"{proc.stderr.read().decode(errors='replace')}")
    proc.kill()
    proc.wait()
    kills += 1
    # A kill may land before the guest's first write (a short random delay on
    # a busy host); what matters is that many kills hit a writing guest.
    with open(log, errors="replace") as f:
        if "writing" in f.read():
            runs_writing += 1
    check = subprocess.run(["qemu-img", "check", "--output=human", image],
                           capture_output=True, text=True)
    if check.returncode not in (0, 3):
        sys.exit(f"FAIL: after kill {kills} ({delay:.3f} s after start), qemu-img check "
                 f"status {check.returncode}:\n{check.stdout}{check.stderr}")
    if check.returncode == 3:
        leaks_seen += 1
if runs_writing < max(1, kills // 4):
    sys.exit(f"FAIL: the guest was writing in only {runs_writing} of {kills} runs")
info = subprocess.run(["qemu-img", "info", image], capture_output=True, text=True).stdout
size = [line for line in info.splitlines() if line.startswith("disk size")]
print(f"{kills} kills ({runs_writing} while the guest wrote) in "
      f"{time.monotonic() - start:.1f} s; the image passed qemu-img check "
      f"every time ({leaks_seen} times with leaked clusters); {size[0] if size else ''}")
