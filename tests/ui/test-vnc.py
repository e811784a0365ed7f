"""Connect to Remote VNC: the app views a real VNC server, QEMU's, which shows
SeaBIOS's text screen. A wrong password is refused with a message, the right one
opens a window whose pixels match QEMU's own screen dump."""
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time

from vivtest import (WORK, check, click, close_to, find, find_all, finish, pixel,
                     screen_pixels, start_app, wait_until)

QEMU = shutil.which("qemu-system-i386")
if QEMU is None:
    print("qemu-system-i386 is missing; skipping")
    sys.exit(77)

PASSWORD = "secret"


def free_vnc_display():
    for display in range(40, 100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 5900 + display))
                return display
            except OSError:
                continue
    sys.exit("no free VNC port")


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        wait_until(lambda: self.sock.connect(path) or True, 10)
        self.file = self.sock.makefile("rw")
        self.file.readline()
        self.command("qmp_capabilities")

    def command(self, name, **arguments):
        self.file.write(json.dumps({"execute": name, "arguments": arguments}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "return" in reply or "error" in reply:
                return reply


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    fields = data.split(maxsplit=4)
    assert fields[0] == b"P6"
    width, height = int(fields[1]), int(fields[2])
    return width, height, fields[4][-width * height * 3:]


display = free_vnc_display()
qmp_path = os.path.join(WORK, "qmp.sock")
qemu = subprocess.Popen([
    QEMU, "-machine", "pc", "-accel", "tcg", "-nodefaults", "-vga", "std",
    "-display", "none", "-m", "32",
    "-object", "secret,id=vncpass,data=" + PASSWORD,
    "-vnc", "127.0.0.1:%d,password-secret=vncpass" % display,
    "-qmp", "unix:%s,server=on,wait=off" % qmp_path])
try:
    qmp = Qmp(qmp_path)
    time.sleep(3)  # SeaBIOS prints its banner and gives up booting
    process, app = start_app()
    library = find(app, "Vivarium", "frame")
    click(find(library, "Main menu", "toggle button"))
    click(find(app, "Connect to Remote VNC…", "push button"))
    dialog = find(app, "Connect to Remote VNC", "dialog")
    find(dialog, "Address", "text").text = "127.0.0.1"
    find(dialog, "Port", "spin button").value = 5900 + display
    find(dialog, "Password", "password text").text = "wrong"
    click(find(dialog, "Connect", "push button"))
    refused = wait_until(lambda: find_all(dialog, name_contains="refused the password"), 15)
    check(refused, "a wrong password is refused with a message: %s"
          % [n.name for n in find_all(dialog, role="label")])
    find(dialog, "Password", "password text").text = PASSWORD
    click(find(dialog, "Connect", "push button"))
    window = wait_until(lambda: [w for w in find_all(app, role="frame")
                                 if w.name.startswith("QEMU")], 15)
    check(window, "a window titled after the remote desktop opened")
    window = window[0]
    screen = find(window, "Screen", "canvas")
    check(not find_all(window, role="push button", name_contains="Power Off"),
          "a remote window has no machine controls")
    time.sleep(2)

    dump = os.path.join(WORK, "qemu.ppm")
    qmp.command("screendump", filename=dump)
    width, height, rgb = read_ppm(dump)
    x, y = screen.position
    w, h = screen.size
    scale = min(w / width, h / height)
    # VivDisplay centres the picture on whole pixels.
    left = x + math.floor((w - width * scale) / 2)
    top = y + math.floor((h - height * scale) / 2)
    shot = screen_pixels()
    lit = matched = 0
    for sy in range(0, height, 3):
        for sx in range(0, width, 3):
            offset = (sy * width + sx) * 3
            expected = tuple(rgb[offset:offset + 3])
            if expected == (0, 0, 0):
                continue
            lit += 1
            seen = pixel(shot, int(left + (sx + 0.5) * scale), int(top + (sy + 0.5) * scale))
            matched += close_to(seen, expected, 40)
    check(lit > 50, "QEMU's screen has text on it (%d lit samples)" % lit)
    check(lit and matched >= 0.9 * lit,
          "the window shows QEMU's screen (%d of %d lit samples match)" % (matched, lit))

    process.terminate()
    process.wait(10)
finally:
    qemu.kill()
    qemu.wait()
finish()
