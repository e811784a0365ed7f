"""Connect to Remote VNC: the app views real VNC servers.

First a libvncserver test server (tests/vnc-test-server.c) with a password and a
picture of four coloured quadrants, which logs the keys and pointer events it
receives: a wrong password is refused with a message, the right one opens a
window showing the quadrants, and typing and clicking arrive at the server with
the right keysyms and coordinates. Then QEMU's VNC server showing SeaBIOS's text
screen: the window's pixels match QEMU's own screen dump."""
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time

from vivtest import (WORK, check, click, close_to, find, find_all, finish, pixel,
                     rawinput, screen_pixels, start_app, wait_until)

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


def connect(app, library, port, password=None):
    """Fills in and submits the Connect to Remote VNC dialog; returns it."""
    click(find(library, "Main menu", "toggle button"))
    click(find(app, "Connect to Remote VNC…", "push button"))
    dialog = find(app, "Connect to Remote VNC", "dialog")
    find(dialog, "Address", "text").text = "127.0.0.1"
    find(dialog, "Port", "spin button").value = port
    if password is not None:
        find(dialog, "Password", "password text").text = password
    click(find(dialog, "Connect", "push button"))
    return dialog


def remote_window(app, title):
    windows = wait_until(lambda: [w for w in find_all(app, role="frame")
                                  if w.name.startswith(title)], 15)
    return windows[0] if windows else None


def picture_geometry(screen, width, height):
    """Where VivDisplay draws a width x height picture: (left, top, scale)."""
    x, y = screen.position
    w, h = screen.size
    scale = min(w / width, h / height)
    # VivDisplay centres the picture on whole pixels.
    return x + math.floor((w - width * scale) / 2), y + math.floor((h - height * scale) / 2), scale


process, app = start_app()
library = find(app, "Vivarium", "frame")

# --- the libvncserver test server -------------------------------------------------
server_log = os.path.join(WORK, "vnc-server.log")
server_display = free_vnc_display()
server = subprocess.Popen([os.environ["VIVARIUM_VNC_TEST_SERVER"], str(5900 + server_display),
                           server_log, PASSWORD])
try:
    wait_until(lambda: "listening" in open(server_log).read(), 10)
    dialog = connect(app, library, 5900 + server_display, "wrong")
    refused = wait_until(lambda: find_all(dialog, name_contains="refused the password"), 15)
    check(refused, "a wrong password is refused with a message: %s"
          % [n.name for n in find_all(dialog, role="label")])
    find(dialog, "Password", "password text").text = PASSWORD
    click(find(dialog, "Connect", "push button"))
    window = remote_window(app, "Vivarium VNC test")
    check(window, "the right password opens a window titled after the remote desktop")
    screen = find(window, "Screen", "canvas")
    check(not find_all(window, role="push button", name_contains="Power Off"),
          "a remote window has no machine controls")
    time.sleep(1)
    left, top, scale = picture_geometry(screen, 320, 200)
    shot = screen_pixels()
    quadrants = [pixel(shot, int(left + qx * scale), int(top + qy * scale))
                 for qx, qy in ((80, 50), (240, 50), (80, 150), (240, 150))]
    check(all(close_to(c, e) for c, e in zip(quadrants, [(255, 0, 0), (0, 255, 0),
                                                         (0, 0, 255), (255, 255, 255)])),
          "the window shows the server's four quadrants: %s" % quadrants)

    rawinput.click(int(left + 240.5 * scale), int(top + 150.5 * scale))
    check(wait_until(lambda: "pointer 240 150 1" in open(server_log).read(), 5),
          "a click arrives at the server at the guest coordinates (240, 150)")
    check(wait_until(lambda: "pointer 240 150 0" in open(server_log).read(), 5),
          "and so does the release")
    rawinput.typeText("a")
    check(wait_until(lambda: "key down 0x61" in open(server_log).read()
                     and "key up 0x61" in open(server_log).read(), 5),
          "typing a sends the keysym 0x61 down and up")
    click(find(window, "Send key", "toggle button"))
    click(find(app, "Ctrl+Alt+Del", "push button"))
    check(wait_until(lambda: "key down 0xffe3\nkey down 0xffe9\nkey down 0xffff\n"
                     "key up 0xffff\nkey up 0xffe9\nkey up 0xffe3" in open(server_log).read(), 5),
          "the send-key menu works over VNC with keysyms")
    click(find(window, "Close", "push button"))
finally:
    server.kill()
    server.wait()

# --- QEMU's VNC server --------------------------------------------------------------
QEMU = shutil.which("qemu-system-i386")
if QEMU is None:
    print("qemu-system-i386 is missing; skipping the QEMU part")
    process.terminate()
    finish()

display = free_vnc_display()
qmp_path = os.path.join(WORK, "qmp.sock")
qemu = subprocess.Popen([
    QEMU, "-machine", "pc", "-accel", "tcg", "-nodefaults", "-vga", "std",
    "-display", "none", "-m", "32", "-vnc", "127.0.0.1:%d" % display,
    "-qmp", "unix:%s,server=on,wait=off" % qmp_path])
try:
    qmp = Qmp(qmp_path)
    time.sleep(3)  # SeaBIOS prints its banner and gives up booting
    connect(app, library, 5900 + display)
    window = remote_window(app, "QEMU")
    check(window, "QEMU's screen opens in a window")
    screen = find(window, "Screen", "canvas")
    time.sleep(2)

    dump = os.path.join(WORK, "qemu.ppm")
    qmp.command("screendump", filename=dump)
    width, height, rgb = read_ppm(dump)
    left, top, scale = picture_geometry(screen, width, height)
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
