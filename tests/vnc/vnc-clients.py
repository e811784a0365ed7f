#!/usr/bin/python3
"""The engine's VNC server (--vnc) against real VNC clients from Debian.

The guest is keyecho.img, a boot floppy that echoes every key it reads to the
screen and, as "SCANCODE CHAR" lines, to the debug console (a file here).

- gtk-vnc (the library behind gvncviewer and virt-viewer), through GObject
  introspection: the picture it receives equals the engine's own screen dump
  (--monitor stdio, screendump) pixel for pixel, before and after typing;
  keys it sends (letters, Shift+1, F1, Enter) reach the guest with the right
  scan codes and characters.
- vncsnapshot (the TightVNC code base): its snapshot, a JPEG, matches the
  engine's screen dump within JPEG's loss (PSNR of at least 30 dB).
- With --vnc-password-file: gtk-vnc with a wrong password is refused, with
  the right one it is let in and sees the same picture.

Runs under an X server (xvfb-run), as gtk-vnc's widget needs one.
Usage: vnc-clients.py ENGINE KEYECHO_IMAGE WORKDIR"""
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings

import gi

gi.require_version("Gdk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
gi.require_version("Gtk", "3.0")
gi.require_version("GtkVnc", "2.0")
from gi.repository import Gdk, GdkPixbuf, GLib, Gtk, GtkVnc  # noqa: E402

engine_path, shared_image, workdir = sys.argv[1:4]
os.makedirs(workdir, exist_ok=True)
# The engine locks its images; a copy of our own lets other tests use theirs.
image = os.path.join(workdir, "vnc-clients-keyecho.img")
shutil.copyfile(shared_image, image)
PASSWORD = "swordfsh"
failures = []


def check(condition, message):
    print(("ok: " if condition else "FAIL: ") + message, flush=True)
    if not condition:
        failures.append(message)
    return condition


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spin(seconds=0.05):
    """Runs the GLib main loop for a while."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        while GLib.MainContext.default().iteration(False):
            pass
        time.sleep(0.005)


def wait_until(predicate, seconds=20):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        spin()
    return predicate()


class Engine:
    def __init__(self, name, password=None):
        self.port = free_port()
        self.debugcon = os.path.join(workdir, f"{name}-debugcon.txt")
        args = [engine_path, "--display", "none", "--audio", "none", "--serial", "none",
                "--monitor", "stdio", "--debugcon", self.debugcon, "--memory", "16",
                "--fda", image, "--boot", "a", "--timeout", "300",
                "--vnc", f"127.0.0.1:{self.port}"]
        if password:
            path = os.path.join(workdir, f"{name}-password")
            with open(path, "w") as f:
                f.write(password + "\n")
            args += ["--vnc-password-file", path]
        open(self.debugcon, "w").close()
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)

    def guest_output(self):
        with open(self.debugcon) as f:
            return f.read()

    def command(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        while True:
            reply = self.process.stdout.readline()
            if not reply:
                raise RuntimeError("the engine's monitor closed")
            if reply.startswith("ok") or reply.startswith("error"):
                return reply.strip()

    def screendump(self, path):
        reply = self.command(f"screendump {path}")
        if reply != "ok":
            raise RuntimeError(f"screendump: {reply}")
        return rgb_of(GdkPixbuf.Pixbuf.new_from_file(path))

    def quit(self):
        try:
            self.command("quit")
        except (RuntimeError, BrokenPipeError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def rgb_of(pixbuf):
    """(width, height, packed RGB bytes) of a pixbuf, without row padding or
    alpha."""
    width, height = pixbuf.get_width(), pixbuf.get_height()
    channels, stride = pixbuf.get_n_channels(), pixbuf.get_rowstride()
    data = pixbuf.get_pixels()
    rows = []
    for y in range(height):
        row = data[y * stride:y * stride + width * channels]
        if channels == 4:
            row = b"".join(row[i:i + 3] for i in range(0, len(row), 4))
        rows.append(bytes(row))
    return width, height, b"".join(rows)


def count_differences(a, b):
    if a[:2] != b[:2]:
        return -1
    pa, pb = a[2], b[2]
    return sum(1 for i in range(0, len(pa), 3) if pa[i:i + 3] != pb[i:i + 3])


def psnr(a, b):
    import math
    if a[:2] != b[:2]:
        return 0.0
    pa, pb = a[2], b[2]
    mse = sum((x - y) ** 2 for x, y in zip(pa, pb)) / len(pa)
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)


class Viewer:
    """A gtk-vnc display widget in a window, connected to the engine."""

    def __init__(self, port, password=None):
        self.initialized = False
        self.auth_failed = None
        self.disconnected = False
        self.window = Gtk.Window()
        self.display = GtkVnc.Display()
        self.display.set_scaling(False)
        self.display.set_keyboard_grab(False)
        self.display.set_pointer_grab(False)
        self.window.add(self.display)
        self.display.connect("vnc-initialized", self.on_initialized)
        self.display.connect("vnc-auth-failure", self.on_auth_failure)
        self.display.connect("vnc-auth-credential", self.on_credential, password)
        self.display.connect("vnc-disconnected", self.on_disconnected)
        self.window.show_all()
        self.display.open_host("127.0.0.1", str(port))

    def on_initialized(self, display):
        self.initialized = True

    def on_auth_failure(self, display, message):
        self.auth_failed = message or "refused"

    def on_credential(self, display, credentials, password):
        with warnings.catch_warnings():
            # GValueArray is how gtk-vnc hands over the list; its accessor
            # is deprecated in GLib but is the only one there is.
            warnings.simplefilter("ignore", DeprecationWarning)
            wanted = [credentials.get_nth(i) for i in range(credentials.n_values)]
        for cred in wanted:
            if cred == GtkVnc.DisplayCredential.PASSWORD:
                display.set_credential(cred, password or "")
            elif cred == GtkVnc.DisplayCredential.USERNAME:
                display.set_credential(cred, "")
            elif cred == GtkVnc.DisplayCredential.CLIENTNAME:
                display.set_credential(cred, "vivarium-test")

    def on_disconnected(self, display):
        self.disconnected = True

    def picture(self):
        pixbuf = self.display.get_pixbuf()
        return rgb_of(pixbuf) if pixbuf else (0, 0, b"")

    def press(self, *keyvals):
        """Presses the keys together, then releases them, as a person would."""
        self.display.send_keys(list(keyvals))
        spin(0.1)

    def close(self):
        self.display.close()
        spin(0.2)
        self.window.destroy()


def matches_screendump(engine, viewer, name):
    """Waits for the viewer's picture to equal the engine's screen dump."""
    path = os.path.join(workdir, f"{name}.png")
    last = None

    def same():
        nonlocal last
        spin(0.2)
        reference = engine.screendump(path)
        last = count_differences(viewer.picture(), reference)
        return last == 0
    ok = wait_until(same, 15)
    picture = viewer.picture()
    return check(ok, f"{name}: the gtk-vnc picture ({picture[0]}x{picture[1]}) equals the "
                 f"engine's screen dump" + ("" if ok else f" ({last} pixels differ)"))


def test_plain():
    engine = Engine("plain")
    try:
        if not check(wait_until(lambda: "ready" in engine.guest_output(), 60),
                     "the guest is ready for keys"):
            return
        viewer = Viewer(engine.port)
        check(wait_until(lambda: viewer.initialized, 15), "gtk-vnc connects without a password")
        matches_screendump(engine, viewer, "plain-before-keys")

        for key in (Gdk.KEY_h, Gdk.KEY_e, Gdk.KEY_l, Gdk.KEY_l, Gdk.KEY_o):
            viewer.press(key)
        viewer.press(Gdk.KEY_Shift_L, Gdk.KEY_exclam)
        viewer.press(Gdk.KEY_F1)
        viewer.press(Gdk.KEY_Return)
        expected = "ready\n23 h\n12 e\n26 l\n26 l\n18 o\n02 !\n3b .\n1c .\n"
        got = wait_until(lambda: engine.guest_output() == expected and expected, 15)
        check(got == expected, "keys sent through VNC reach the guest with their scan codes "
              f"(guest saw {engine.guest_output()!r})")
        matches_screendump(engine, viewer, "plain-after-keys")
        viewer.close()

        if shutil.which("vncsnapshot"):
            snapshot = os.path.join(workdir, "vncsnapshot.jpg")
            run = subprocess.run(["vncsnapshot", "-quiet", "-nojpeg", "-quality", "100",
                                  f"127.0.0.1::{engine.port}", snapshot],
                                 capture_output=True, text=True, timeout=60)
            if check(run.returncode == 0 and os.path.exists(snapshot),
                     f"vncsnapshot takes a snapshot {run.stderr.strip()}"):
                reference = engine.screendump(os.path.join(workdir, "vncsnapshot-ref.png"))
                got = rgb_of(GdkPixbuf.Pixbuf.new_from_file(snapshot))
                quality = psnr(got, reference)
                check(quality >= 30, f"vncsnapshot's JPEG matches the screen dump "
                      f"(PSNR {quality:.1f} dB)")
        else:
            check(False, "vncsnapshot is installed (scripts/install-deps.sh --test)")
    finally:
        engine.quit()


def test_password():
    engine = Engine("password", PASSWORD)
    try:
        if not check(wait_until(lambda: "ready" in engine.guest_output(), 60),
                     "the guest is ready (with a VNC password)"):
            return
        intruder = Viewer(engine.port, "wrong")
        refused = wait_until(lambda: intruder.auth_failed or intruder.disconnected, 15)
        check(refused and not intruder.initialized,
              f"a wrong password is refused ({intruder.auth_failed})")
        intruder.close()

        viewer = Viewer(engine.port, PASSWORD)
        check(wait_until(lambda: viewer.initialized, 15), "the right password lets gtk-vnc in")
        check(viewer.auth_failed is None, "and is not refused")
        matches_screendump(engine, viewer, "password")
        viewer.press(Gdk.KEY_x)
        check(wait_until(lambda: "2d x\n" in engine.guest_output(), 15),
              "keys arrive through an authenticated connection")
        viewer.close()
    finally:
        engine.quit()


test_plain()
test_password()
if failures:
    print(f"{len(failures)} checks failed")
    sys.exit(1)
print("all checks passed")
