"""Connect to Remote VNC against Vivarium's own VNC server (vivarium-engine --vnc).

First without a password, the demo floppy: the remote window shows the same
picture as the engine's own screen dump (`screendump` on its --monitor), and
Esc typed into the window reaches the guest, which switches the machine off
(the engine exits with status 1, the debug-exit value 0).
Then with --vnc-password-file and FreeDOS (the demo when ../shared is
missing): a wrong password is refused with a message, the right one shows the
picture, and `ver` typed into the window runs in the guest: FreeDOS prints its
version, which the engine's `text` command reads back and the window shows.
"""
import os
import shutil
import socket
import sys
import time

from vivtest import (WORK, check, click, compare_with_window, find, find_all, finish, rawinput,
                     read_png, start_app, wait_until)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "firmware"))
from guest_session import GuestSession  # noqa: E402

ENGINE = os.environ["VIVARIUM_REAL_ENGINE"]
DEMO = os.environ["VIVARIUM_DEMO_FLOPPY"]
FREEDOS = os.environ.get("VIVARIUM_FREEDOS_FLOPPY", "")
PASSWORD = "vivarium"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_engine(floppy, port, password_file=None):
    copy = os.path.join(WORK, os.path.basename(floppy))
    shutil.copyfile(floppy, copy)
    args = ["--fda", copy, "--boot", "a", "--memory", "16", "--vnc", "127.0.0.1:%d" % port]
    if password_file:
        args += ["--vnc-password-file", password_file]
    return GuestSession(ENGINE, args, timeout=240)


def screen_dump(guest, name):
    path = os.path.join(WORK, name + "-engine.png")
    guest.command("screendump " + path)
    return read_png(path)


def lit(picture):
    _, _, rgb = picture
    return sum(1 for i in range(0, len(rgb), 3 * 101) if rgb[i:i + 3] != b"\0\0\0")


def connect(app, library, port, password=None):
    click(find(library, "Main menu", "toggle button"))
    click(find(app, "Connect to Remote VNC…", "push button"))
    dialog = find(app, "Connect to Remote VNC", "dialog")
    find(dialog, "Address", "text").text = "127.0.0.1"
    find(dialog, "Port", "spin button").value = port
    if password is not None:
        find(dialog, "Password", "password text").text = password
    click(find(dialog, "Connect", "push button"))
    return dialog


def remote_window(app, library):
    """The frame that is not the library: the engine's remote screen."""
    windows = wait_until(lambda: [w for w in find_all(app, role="frame")
                                  if w != library and find_all(w, role="canvas")], 15)
    return windows[0] if windows else None


def compare(guest, screen, name):
    """The window against a screen dump taken right after; the demo's ball
    moves in between, so a few pixels may differ."""
    time.sleep(1.5)  # the latest update has reached the window
    picture = screen_dump(guest, name)
    matched, sampled, edges_matched, edges = compare_with_window(screen, picture, name)
    # A blinking cursor may differ: at most a cell's two lines of edges.
    check(matched >= 0.98 * sampled and edges > 50 and edges - edges_matched <= max(0.05 * edges, 24),
          "the window shows the engine's %dx%d screen: %d of %d pixels, %d of %d edges match"
          % (picture[0], picture[1], matched, sampled, edges_matched, edges))


process, app = start_app()
library = find(app, "Vivarium", "frame")

# --- no password: the demo, Esc switches it off -------------------------------------------
port = free_port()
guest = start_engine(DEMO, port)
try:
    shown = wait_until(lambda: lit(screen_dump(guest, "demo-boot")) > 100, 60, interval=1)
    check(shown, "the demo draws its screen in the engine")
    connect(app, library, port)
    window = remote_window(app, library)
    check(window is not None, "the engine's screen opens in a window: %s"
          % (window.name if window else None))
    screen = find(window, "Screen", "canvas")
    compare(guest, screen, "demo")
    x, y = screen.position
    w, h = screen.size
    rawinput.click(x + w // 2, y + h // 2)  # focus; the demo ignores the mouse
    time.sleep(0.5)
    rawinput.pressKey("Escape")
    status = wait_until(lambda: guest.proc.poll() is not None, 15)
    check(status and guest.proc.returncode == 1,
          "Esc reached the guest: the demo switched the machine off (exit status %s)"
          % guest.proc.returncode)
    check(wait_until(lambda: find_all(window, role="label", name_contains="onnection"), 10)
          or wait_until(lambda: window not in find_all(app, role="frame"), 1),
          "the window notices the server has gone")
    for w in find_all(app, role="frame"):
        if w != library:
            click(find(w, "Close", "push button"))
finally:
    if guest.proc.poll() is None:
        guest.proc.kill()
    guest.proc.wait()

# --- with a password: FreeDOS, typing a command ----------------------------------------------
password_file = os.path.join(WORK, "vnc-password")
with open(password_file, "w") as f:
    f.write(PASSWORD + "\n")
freedos = os.path.exists(FREEDOS)
if not freedos:
    print("FreeDOS (%s) is missing: the password part uses the demo" % FREEDOS)
port = free_port()
guest = start_engine(FREEDOS if freedos else DEMO, port, password_file)
try:
    if freedos:
        guest.wait_text(r"A:\\>", timeout=180)
    else:
        wait_until(lambda: lit(screen_dump(guest, "demo-boot")) > 100, 60, interval=1)
    dialog = connect(app, library, port, "wrong")
    check(wait_until(lambda: find_all(dialog, name_contains="refused the password"), 15),
          "a wrong password is refused with a message: %s"
          % [n.name for n in find_all(dialog, role="label")])
    find(dialog, "Password", "password text").text = PASSWORD
    click(find(dialog, "Connect", "push button"))
    window = remote_window(app, library)
    check(window is not None, "the right password opens the engine's screen")
    screen = find(window, "Screen", "canvas")
    compare(guest, screen, "password")
    if freedos:
        x, y = screen.position
        w, h = screen.size
        rawinput.click(x + w // 2, y + h // 2)
        time.sleep(0.5)
        rawinput.typeText("ver")
        rawinput.pressKey("Return")
        check(wait_until(lambda: "FreeCom version" in (guest.screen_text() or ""), 60, interval=1),
              "ver typed in the window ran in FreeDOS: %s" % (guest.screen_text() or "").strip()[-200:])
        compare(guest, screen, "typed")
    guest.quit()
finally:
    if guest.proc.poll() is None:
        guest.proc.kill()
    guest.proc.wait()

process.terminate()
process.wait(10)
finish()
