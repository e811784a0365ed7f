"""The app with the real vivarium-engine, the whole life of a machine.

The assistant makes a VM from the demo floppy with a new disk: the first try
fails (the disk's file name is taken by a dangling link, so vivarium-img
refuses) and the assistant stays open with the tool's message; the second
makes a qcow2 image that qemu-img accepts. The VM starts, boots SeaBIOS and the
demo from the floppy; paused, the VM window's pixels are compared with the
engine's own screenshot of the same moment (--screenshot, written on SIGUSR1).
A click takes the grab (hint shown), Ctrl+Alt releases it, Stop powers off.
Started again, the engine is killed and the window and the card say so.
Started a third time, Esc typed into the grabbed window makes the demo switch
the machine off through the debug-exit port: the card says Powered off. The VM
is deleted: the app asks, offers to keep the disk, and removes both.

Needs the demo floppy (VIVARIUM_DEMO_FLOPPY) and vivarium-img (VIVARIUM_IMG).
"""
import os
import shutil
import signal
import subprocess
import time

from vivtest import (CONFIG_DIR, WORK, check, click, compare_with_window, find, find_all,
                     finish, rawinput, read_png, start_app, wait_until)

REAL_ENGINE = os.environ["VIVARIUM_ENGINE"]
SCREENSHOT = os.path.join(WORK, "engine-screen.png")
PID_FILE = os.path.join(WORK, "engine.pid")
HINT = "Press Ctrl+Alt to release the keyboard and mouse"

# The app starts this wrapper as its engine: it records the engine's pid (exec
# keeps it) and asks for a screenshot file, written on SIGUSR1.
wrapper = os.path.join(WORK, "engine-wrapper.sh")
with open(wrapper, "w") as f:
    f.write('#!/bin/sh\necho $$ > "%s"\nexec "%s" --screenshot "%s" "$@"\n'
            % (PID_FILE, REAL_ENGINE, SCREENSHOT))
os.chmod(wrapper, 0o755)
os.environ["VIVARIUM_ENGINE"] = wrapper

floppy = os.path.join(WORK, "demo.img")
shutil.copyfile(os.environ["VIVARIUM_DEMO_FLOPPY"], floppy)
images = os.path.join(os.environ["XDG_DATA_HOME"], "vivarium", "images")
disk = os.path.join(images, "demo.qcow2")
vm_file = os.path.join(CONFIG_DIR, "demo.vm")


def engine_pid():
    with open(PID_FILE) as f:
        return int(f.read())


def start(card, app):
    if os.path.exists(PID_FILE):
        os.unlink(PID_FILE)
    click(find(card, "Start", "push button"))
    window = find(app, "Demo", "frame", timeout=20)
    running = wait_until(lambda: find_all(window, role="label", name_contains="Running"), 30)
    check(running and os.path.exists(PID_FILE), "the real engine runs the machine")
    return window


def engine_screenshot():
    """The engine's own picture of its screen now (the machine is paused)."""
    if os.path.exists(SCREENSHOT):
        os.unlink(SCREENSHOT)
    os.kill(engine_pid(), signal.SIGUSR1)
    if not wait_until(lambda: os.path.exists(SCREENSHOT) and os.path.getsize(SCREENSHOT) > 0, 10):
        return None
    time.sleep(0.2)  # written whole: libpng closes the file before we read
    return read_png(SCREENSHOT)


def closed(app, title):
    return title not in [w.name for w in find_all(app, role="frame")]


process, app = start_app()
library = find(app, "Vivarium", "frame")

# --- the assistant: a floppy image and a new disk --------------------------------
os.makedirs(images, exist_ok=True)
os.symlink(os.path.join(WORK, "nowhere"), disk)
click(find(library, "New", "push button"))
assistant = find(app, "Source", "frame")
click(find(assistant, "A floppy disk image", "radio button"))
find(assistant, "Image file", "text").text = floppy
click(find(assistant, "Next", "push button"))
find(assistant, "Name", "text").text = "Demo"
find(assistant, "Memory", "spin button").value = 16
find(assistant, "Disk size", "spin button").value = 2
click(find(assistant, "Next", "push button"))
click(find(assistant, "Apply", "push button"))
alert = find(app, role="alert")
check(find(alert, "The machine could not be created", "label") is not None,
      "a disk vivarium-img cannot make is refused with a message")
messages = [n.name for n in find_all(alert, role="label")]
check(any("vivarium-img" in m and "File exists" in m for m in messages),
      "which carries the tool's own words: %s" % messages)
click(find(alert, "Close", "push button"))
check(not os.path.exists(vm_file), "no VM was saved")
os.unlink(disk)
assistant = find(app, "Summary", "frame")
check(assistant is not None, "the assistant stays open on its summary")
click(find(assistant, "Apply", "push button"))
check(wait_until(lambda: os.path.exists(vm_file)), "the second try wrote demo.vm")
content = open(vm_file).read() if os.path.exists(vm_file) else ""
check("Floppy=%s" % floppy in content and "HardDisk=%s" % disk in content,
      "with the floppy and the new disk: %s" % content)
with open(disk, "rb") as f:
    header = f.read(32)
check(header[:4] == b"QFI\xfb" and int.from_bytes(header[24:32], "big") == 2 << 30,
      "the new disk is a 2 GiB qcow2 image")
if shutil.which("qemu-img"):
    check(subprocess.run(["qemu-img", "check", "-q", disk]).returncode == 0,
          "qemu-img check accepts it")
card = find(library, "Demo", "panel")

# --- start: the guest's screen, pixel for pixel ------------------------------------
window = start(card, app)
screen = find(window, "Screen", "canvas")
# The demo draws its title and gradient in mode 13h once SeaBIOS has booted it.
time.sleep(3)
click(find(window, "Pause", "push button"))
check(find(window, "Resume", "push button") is not None, "the machine pauses")
time.sleep(0.5)  # the last frame reaches the window
picture = engine_screenshot()
check(picture is not None, "the engine wrote its screenshot on SIGUSR1")
if picture:
    width, height, rgb = picture
    lit = sum(1 for i in range(0, len(rgb), 3 * 97) if rgb[i:i + 3] != b"\0\0\0")
    check(lit > len(rgb) // (3 * 97) // 4, "the guest's screen is not blank (%d lit samples)" % lit)
    # Paused, the two are the same frame: every guest pixel must match closely,
    # the edges of the text, the bands and the ball included.
    matched, sampled, edges_matched, edges = compare_with_window(screen, picture, "paused",
                                                                 tolerance=8)
    check(matched >= 0.99 * sampled,
          "the VM window shows the engine's %dx%d screen: %d of %d pixels match"
          % (width, height, matched, sampled))
    check(edges > 1000 and edges_matched >= 0.99 * edges,
          "edges included: %d of %d" % (edges_matched, edges))
click(find(window, "Resume", "push button"))
check(find(window, "Pause", "push button") is not None, "and resumes")

# --- grab, type, release, stop ----------------------------------------------------------
check(not find_all(window, name_contains=HINT), "no release hint before the grab")
screen.click()
check(wait_until(lambda: find_all(window, name_contains=HINT), 5), "a click takes the grab: hint shown")
rawinput.typeText("c")  # the demo changes the ball's colour
time.sleep(0.5)
rawinput.holdKey("Control_L")
rawinput.holdKey("Alt_L")
rawinput.releaseKey("Alt_L")
rawinput.releaseKey("Control_L")
check(wait_until(lambda: not find_all(window, name_contains=HINT), 5), "Ctrl+Alt releases it")
check(not find_all(window, role="label", name_contains="rror"), "typing raised no error")
click(find(card, "Stop", "push button"))
check(wait_until(lambda: find(card, "Powered off", "label", timeout=1), 15),
      "Stop ends the engine cleanly: the card says Powered off")
check(not find_all(card, role="label", name_contains="engine"), "and shows no engine error")
check(wait_until(lambda: closed(app, "Demo"), 5), "the VM window closed with the machine")

# --- the engine dies ---------------------------------------------------------------------
window = start(card, app)
os.kill(engine_pid(), signal.SIGKILL)
check(wait_until(lambda: find_all(window, name_contains="killed by signal 9"), 10),
      "the VM window says the engine was killed by signal 9")
check(wait_until(lambda: find_all(card, name_contains="killed by signal 9"), 5),
      "the library card keeps the error")
check(find(card, "Failed", "label") is not None, "the card says Failed")
click(find(window, "Close", "push button"))
check(wait_until(lambda: closed(app, "Demo"), 5), "the VM window closes")

# --- Esc reaches the guest, which switches itself off --------------------------------------
window = start(card, app)
time.sleep(3)  # the demo is up and reading keys
screen = find(window, "Screen", "canvas")
screen.click()
check(wait_until(lambda: find_all(window, name_contains=HINT), 5), "the grab is taken again")
rawinput.pressKey("Escape")
check(wait_until(lambda: find(card, "Powered off", "label", timeout=1), 15),
      "Esc made the demo switch the machine off: the card says Powered off")
check(not find_all(card, role="label", name_contains="engine")
      and not find_all(card, role="label", name_contains="guest"),
      "with no error: %s" % [n.name for n in find_all(card, role="label")])
check(wait_until(lambda: closed(app, "Demo"), 5), "the VM window closed with the machine")

# --- delete: asks, offers to keep the disk ---------------------------------------------------
click(find(card, "Delete", "push button"))
alert = find(app, role="alert")
check(find(alert, "Delete “Demo”?", "label") is not None, "deleting asks first")
keep = find(alert, role="check box")
check(keep.name.startswith("Keep the disk image") and not keep.checked,
      "it offers to keep the disk Vivarium made, unchecked")
click(find(alert, "Delete", "push button"))
check(wait_until(lambda: not os.path.exists(vm_file), 5), "the key file is gone")
check(not os.path.exists(disk), "and so is the disk image")
check(os.path.exists(floppy), "the floppy brought along is left alone")

process.terminate()
process.wait(10)
finish()
