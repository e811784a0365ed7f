#!/usr/bin/python3
"""The display pipeline sends frames only when the picture changes, and only
what changed: counted on the engine's own D-Bus face (--dbus-fd, the app's
interface), with the keyecho guest, whose screen holds still (no blinking
cursor) while it waits for a key.

- While the guest waits, three seconds pass without a single Invalidate
  signal (counts, not timings: the pass condition is zero).
- One key (through org.vivarium.Input) changes one character cell: at least
  one Invalidate follows, and every damaged rectangle together covers far
  less than the screen (the key's cell, not a full redraw).
- After that the screen holds still again: no further frames.
Usage: idle-frames.py ENGINE KEYECHO_IMAGE WORKDIR"""
import os
import shutil
import socket
import subprocess
import sys
import time

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

engine_path, shared_image, workdir = sys.argv[1:4]
os.makedirs(workdir, exist_ok=True)
# The engine locks its images; a copy of our own lets other tests use theirs.
image = os.path.join(workdir, "idle-frames-keyecho.img")
shutil.copyfile(shared_image, image)
PATH = "/org/vivarium/Engine"
QNUM_A = 0x1e


def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        while GLib.MainContext.default().iteration(False):
            pass
        time.sleep(0.005)


def main():
    debugcon = os.path.join(workdir, "idle-frames-debugcon.txt")
    open(debugcon, "w").close()
    ours, theirs = socket.socketpair()
    engine = subprocess.Popen([engine_path, "--dbus-fd", str(theirs.fileno()), "--audio", "none",
                               "--serial", "none", "--debugcon", debugcon, "--memory", "16",
                               "--fda", image, "--boot", "a", "--timeout", "120"],
                              pass_fds=[theirs.fileno()])
    theirs.close()
    stream = Gio.Socket.new_from_fd(ours.detach()).connection_factory_create_connection()
    bus = Gio.DBusConnection.new_sync(stream, None,
                                      Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT, None, None)
    frames = []
    bus.signal_subscribe(None, "org.vivarium.Display", "Invalidate", PATH, None,
                         Gio.DBusSignalFlags.NONE,
                         lambda *args: frames.append(args[5].unpack()[0]))

    def call(interface, method, args=None):
        return bus.call_sync(None, PATH, interface, method, args, None,
                             Gio.DBusCallFlags.NONE, 10000, None)

    def guest_output():
        with open(debugcon) as f:
            return f.read()

    failed = False
    try:
        _, width, height, _, _ = call("org.vivarium.Display", "GetFramebuffer").unpack()
        call("org.vivarium.Machine", "Start")
        deadline = time.monotonic() + 60
        while "ready" not in guest_output() and time.monotonic() < deadline:
            spin(0.1)
        if "ready" not in guest_output():
            print("FAIL: the guest did not start")
            return 1
        # The frame that shows the banner may still be on its way.
        spin(0.5)
        _, width, height, _, _ = call("org.vivarium.Display", "GetFramebuffer").unpack()
        frames.clear()
        spin(3)
        print(f"frames while the guest waits for a key: {len(frames)}")
        if frames:
            print(f"FAIL: an unchanging screen sent {len(frames)} frames: {frames[:5]}")
            failed = True

        call("org.vivarium.Input", "KeyPress", GLib.Variant("(u)", (QNUM_A,)))
        call("org.vivarium.Input", "KeyRelease", GLib.Variant("(u)", (QNUM_A,)))
        deadline = time.monotonic() + 20
        while "1e a\n" not in guest_output() and time.monotonic() < deadline:
            spin(0.1)
        spin(0.5)
        area = sum(w * h for rects in frames for (_, _, w, h) in rects)
        print(f"frames for one key: {len(frames)}, {area} pixels damaged of {width * height}")
        if not frames:
            print("FAIL: the key's character never reached the screen as a frame")
            failed = True
        if area * 20 > width * height:
            print("FAIL: one character damaged more than a twentieth of the screen")
            failed = True

        frames.clear()
        spin(2)
        print(f"frames afterwards: {len(frames)}")
        if frames:
            print(f"FAIL: {len(frames)} frames after the screen stopped changing")
            failed = True
        try:
            call("org.vivarium.Machine", "Quit")
        except GLib.Error:
            pass  # the engine may close the connection before it replies
    finally:
        try:
            engine.wait(timeout=20)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()
    return 1 if failed else 0


sys.exit(main())
