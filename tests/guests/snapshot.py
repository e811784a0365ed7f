"""Snapshots keep RAM and disk together: the guest snapshot_disk.bin writes a
pattern to both, is snapshotted, changes both, is reverted, and must find the
first pattern in both; the same across engine restarts, from one CPU backend
to the other, with a raw and a qcow2 disk. Deleting every snapshot must leave
the disk's own image holding what the guest wrote last. A damaged or
truncated snapshot must be refused and change nothing.

The floppy guest snapshot_floppy.bin does the same with the first sector of
the floppy in drive A:: a snapshot keeps the floppy's contents and which
floppy was in the drive, a revert puts that floppy back with those contents
(also across a restart with another floppy given), and a snapshot whose
floppy image is gone is refused and changes nothing.

Usage: snapshot.py ENGINE GUEST_IMAGE WORKDIR BACKEND_A BACKEND_B FLOPPY_GUEST
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "firmware"))
from guest_session import GuestError, GuestSession, run  # noqa: E402

engine, guest, work, backend_a, backend_b, floppy_guest = sys.argv[1:7]
DISK_OFFSET = 8 * 512
DISK_BYTES = 8 * 512


def pattern(seed):
    return bytes(((i * 7) + seed + (i >> 8)) & 0xff for i in range(DISK_BYTES))


PATTERN_A, PATTERN_B = pattern(0x11), pattern(0x5b)


class Guest:
    """One engine run of the test guest, with its debug console in a file."""

    def __init__(self, name, backend, disk, snapdir, extra=(), bios=guest):
        self.log = os.path.join(work, name + ".debugcon")
        if os.path.exists(self.log):
            os.unlink(self.log)
        drives = ["--hda", disk] if disk else []
        self.session = GuestSession(engine, ["--bios", bios, "--accel", backend]
                                    + drives + ["--snapshot-dir", snapdir,
                                                "--no-reboot", "--debugcon", self.log]
                                    + list(extra), timeout=120)
        self.name = name

    def wait_log(self, text, count=1, timeout=60):
        deadline = time.monotonic() + timeout
        content = ""
        while time.monotonic() < deadline:
            if os.path.exists(self.log):
                with open(self.log, errors="replace") as f:
                    content = f.read()
                if content.count(text) >= count:
                    return
            if self.session.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise GuestError(f"{self.name}: '{text}' x{count} did not appear; the guest printed "
                         f"{content!r}; the engine said:\n" + "\n".join(self.session.stderr))

    def command(self, line):
        return self.session.command(line)

    def finish_with_key(self, key, what):
        """Presses the key that makes the guest check and exit; the guest's
        verdict is the engine's exit status (1: passed)."""
        self.session.proc.stdin.write(f"key {key}\n")
        self.session.proc.stdin.flush()
        try:
            status = self.session.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.session.proc.kill()
            raise GuestError(f"{self.name}: the guest did not answer '{key}'")
        if status != 1:
            code = (status - 1) // 2 if status % 2 else None
            raise GuestError(f"{self.name}: {what}: engine status {status}"
                             + (f" (guest failure code {code})" if code is not None else "")
                             + "\n" + "\n".join(self.session.stderr))


def expect_refused(g, command, what, reason=""):
    try:
        g.command(command)
    except GuestError as e:
        if "error:" not in str(e) or reason not in str(e):
            raise
        return
    raise GuestError(f"{g.name}: {what} was accepted")


def disk_bytes(disk, fmt):
    if fmt == "raw":
        path = disk
    else:
        path = disk + ".raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", disk, path], check=True)
    with open(path, "rb") as f:
        f.seek(DISK_OFFSET)
        return f.read(DISK_BYTES)


def qemu_img_check(path):
    out = subprocess.run(["qemu-img", "check", path], capture_output=True, text=True)
    if out.returncode != 0:
        raise GuestError(f"qemu-img check {path}:\n{out.stdout}{out.stderr}")


def scenario(fmt, first, second):
    tag = f"{fmt}-{first}-{second}"
    disk = os.path.join(work, f"disk-{tag}.{fmt}")
    snapdir = os.path.join(work, f"snapshots-{tag}")
    shutil.rmtree(snapdir, ignore_errors=True)
    for path in (disk, disk + ".raw"):
        if os.path.exists(path):
            os.unlink(path)
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, disk, "4M"], check=True)

    # One run: snapshot, change, revert, check.
    g = Guest(f"{tag}-1", first, disk, snapdir)
    g.wait_log("ready")
    g.command("savevm first")
    g.command("key w")
    g.wait_log("written")
    g.command("savevm second")
    listing = "\n".join(g.command("info snapshots"))
    if "first" not in listing or "second" not in listing:
        raise GuestError(f"info snapshots shows:\n{listing}")
    g.command("loadvm first")
    g.finish_with_key("a", "reverted in the same run: RAM and disk should hold pattern A")

    # A restart under the other backend, from each snapshot.
    g = Guest(f"{tag}-2", second, disk, snapdir, ["--load-snapshot", "second"])
    g.finish_with_key("b", "restarted from 'second': pattern B expected")
    g = Guest(f"{tag}-3", second, disk, snapdir, ["--load-snapshot", "first"])
    g.finish_with_key("a", "restarted from 'first': pattern A expected")

    # Damaged and truncated snapshots are refused, and the guest goes on as
    # it was; then every snapshot is deleted while the guest runs, and its
    # disk must not change.
    with open(os.path.join(snapdir, "first.vivsnap"), "rb") as f:
        good = f.read()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0x40
    with open(os.path.join(snapdir, "damaged.vivsnap"), "wb") as f:
        f.write(damaged)
    with open(os.path.join(snapdir, "truncated.vivsnap"), "wb") as f:
        f.write(good[:len(good) * 2 // 3])
    g = Guest(f"{tag}-4", first, disk, snapdir, ["--load-snapshot", "first"])
    g.command("key w")
    g.wait_log("written")
    expect_refused(g, "loadvm damaged", "a damaged snapshot")
    expect_refused(g, "loadvm truncated", "a truncated snapshot")
    expect_refused(g, "loadvm missing", "a snapshot that does not exist")
    for name in ("damaged", "truncated", "first", "second"):
        g.command("delvm " + name)
    layers = [f for f in os.listdir(snapdir) if f.endswith(".qcow2")]
    if layers:
        raise GuestError(f"layers left after deleting every snapshot: {layers}")
    g.finish_with_key("b", "after deleting every snapshot: pattern B expected")

    if disk_bytes(disk, fmt) != PATTERN_B:
        raise GuestError(f"{tag}: the disk's own image does not hold what the guest wrote")
    if fmt == "qcow2":
        qemu_img_check(disk)
    # The engine refuses a snapshot folder whose index is damaged, at start.
    with open(os.path.join(snapdir, "disks.ini"), "w") as f:
        f.write("[hda]\nimage=relative\n")
    out = subprocess.run([engine, "--headless", "--bios", guest, "--hda", disk,
                          "--snapshot-dir", snapdir, "--timeout", "10"],
                         capture_output=True, text=True)
    if out.returncode != 2 or "damaged" not in out.stderr:
        raise GuestError(f"a damaged index: status {out.returncode}, {out.stderr!r}")
    print(f"{tag}: ok")


FLOPPY_BYTES = 1474560


def floppy_pattern(seed):
    return bytes(((i * 5) + seed + (i >> 8)) & 0xff for i in range(512))


FLOPPY_A, FLOPPY_B = floppy_pattern(0x21), floppy_pattern(0x6c)


def first_sector(path):
    with open(path, "rb") as f:
        return f.read(512)


def floppy_scenario(first, second):
    tag = f"floppy-{first}-{second}"
    snapdir = os.path.join(work, f"snapshots-{tag}")
    shutil.rmtree(snapdir, ignore_errors=True)
    fa, fb = (os.path.join(work, f"{tag}-{n}.img") for n in "ab")
    for path, fill in ((fa, b"\0"), (fb, b"\xee")):
        with open(path, "wb") as f:
            f.write(fill * FLOPPY_BYTES)
    with open(fa + ".gone", "wb"):
        pass

    # The guest writes A, is snapshotted, writes B, is snapshotted, gets
    # another floppy, and is reverted: floppy a with pattern A is back.
    g = Guest(f"{tag}-1", first, None, snapdir, ["--fda", fa], bios=floppy_guest)
    g.wait_log("ready")
    g.command("savevm first")
    g.command("key w")
    g.wait_log("written")
    g.command("savevm second")
    g.command("change fda " + fb)
    g.command("loadvm first")
    g.finish_with_key("a", "reverted to 'first': floppy a with pattern A expected")
    if first_sector(fa) != FLOPPY_A:
        raise GuestError(f"{tag}: the image of floppy a does not hold pattern A after the revert")

    # A restart under the other backend with floppy b given: the snapshot
    # puts floppy a back, with the contents it had.
    g = Guest(f"{tag}-2", second, None, snapdir, ["--fda", fb, "--load-snapshot", "second"],
              bios=floppy_guest)
    g.finish_with_key("b", "restarted from 'second': floppy a with pattern B expected")
    if first_sector(fa) != FLOPPY_B:
        raise GuestError(f"{tag}: the image of floppy a does not hold pattern B after the restart")

    # Floppy a gone: reverting to a snapshot that had it is refused, and the
    # guest goes on with floppy b in the drive.
    os.replace(fa, fa + ".gone")
    g = Guest(f"{tag}-3", first, None, snapdir, ["--fda", fb], bios=floppy_guest)
    g.wait_log("ready")
    expect_refused(g, "loadvm first", "a snapshot whose floppy is gone", "no longer exists")
    g.command("key w")
    g.wait_log("written")
    g.finish_with_key("b", "after the refused revert: floppy b with pattern B expected")
    if first_sector(fb) != FLOPPY_B or first_sector(fa + ".gone") != FLOPPY_B:
        raise GuestError(f"{tag}: the refused revert changed a floppy image")
    print(f"{tag}: ok")


def main():
    os.makedirs(work, exist_ok=True)
    floppy_scenario(backend_a, backend_b)
    scenario("raw", backend_a, backend_b)
    scenario("qcow2", backend_b, backend_a)


run(main)
