"""End-to-end test of the Vivarium app against the fake engine.

Creates a VM from a disk image in the assistant, searches the library, starts
the VM, compares the window's pixels with the fake engine's colour bars (fit and
integer scaling), takes the grab, moves the pointer and types into it, releases
the grab, sends Ctrl+Alt+Del from the menu, pauses and resumes, takes, reverts
to and deletes a snapshot, kills the engine and reads the error, edits the
settings, starts it again and powers it off, starts and stops it from the
library, and deletes it keeping its disk. A second VM whose disk image is missing shows the engine's
own complaint.
"""
import os
import signal
import time

from vivtest import (CONFIG_DIR, WORK, check, click, engine_log, find, find_all,
                     finish, pixel, rawinput, close_to, screen_pixels, start_app,
                     wait_for_log, wait_until)

# The fake engine's colour bars, left to right (see tests/fake-engine.c).
COLOUR_BARS = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
               (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)]
FRAMEBUFFER = (640, 480)

disk = os.path.join(WORK, "dos.img")
with open(disk, "wb") as f:
    f.truncate(1 << 20)
os.makedirs(CONFIG_DIR, exist_ok=True)
with open(os.path.join(CONFIG_DIR, "broken.vm"), "w") as f:
    f.write("[Machine]\nName=Broken\n[Drives]\nHardDisk=%s/missing.img\n" % WORK)

process, app = start_app()
library = find(app, "Vivarium", "frame")

# --- creation assistant: an existing disk image ---------------------------
click(find(library, "New", "push button"))
# The assistant's window is named after its current page.
assistant = find(app, "Source", "frame")
click(find(assistant, "An existing hard disk image", "radio button"))
find(assistant, "Image file", "text").text = disk
click(find(assistant, "Next", "push button"))
find(assistant, "Name", "text").text = "Test DOS"
find(assistant, "Memory", "spin button").value = 64
click(find(assistant, "Next", "push button"))
click(find(assistant, "Apply", "push button"))
vm_file = os.path.join(CONFIG_DIR, "test-dos.vm")
check(wait_until(lambda: os.path.exists(vm_file)), "the assistant wrote test-dos.vm")
content = open(vm_file).read() if os.path.exists(vm_file) else ""
check("Name=Test DOS" in content and "Memory=64" in content and disk in content,
      "the key file holds name, memory and disk")
card = find(library, "Test DOS", "panel")

# --- search ---------------------------------------------------------------
click(find(library, "Search", "toggle button"))
find(library, role="text").text = "brok"
check(wait_until(lambda: not card.showing, 3), "search hides a card that does not match")
check(find(library, "Broken", "panel").showing, "search keeps the matching card")
find(library, role="text").text = ""
check(wait_until(lambda: card.showing, 3), "clearing the search shows every card")
click(find(library, "Search", "toggle button"))

# --- start: the window shows the engine's screen --------------------------
click(find(card, "Start", "push button"))
window = find(app, "Test DOS", "frame")
check(wait_for_log("start"), "the engine was told to start")
args = [line for line in engine_log() if line.startswith("args ")]
check(args and "--name Test DOS" in args[-1] and "--memory 64" in args[-1]
      and "--hda " + disk in args[-1], "the engine got the VM's options: %s" % args)
screen_node = find(window, "Screen", "canvas")
time.sleep(1.5)  # the fake engine switches to 640x480 after 0.3 s
x, y = screen_node.position
width, height = screen_node.size
scale = min(width / FRAMEBUFFER[0], height / FRAMEBUFFER[1])
left = x + (width - FRAMEBUFFER[0] * scale) / 2
top = y + (height - FRAMEBUFFER[1] * scale) / 2
shot = screen_pixels()
seen = []
for i, expected in enumerate(COLOUR_BARS):
    px = int(left + (i * 80 + 40) * scale)
    py = int(top + 120 * scale)
    seen.append(pixel(shot, px, py))
check(all(close_to(c, e) for c, e in zip(seen, COLOUR_BARS)),
      "the window shows the eight colour bars: %s" % seen)
below = pixel(shot, int(left + 600 * scale), int(top + 460 * scale))
check(close_to(below, (0x40, 0x40, 0x40)), "the lower half is grey: %s" % (below,))

# --- integer scaling: 1:1 here, centred on whole pixels ----------------------
click(find(window, "View", "toggle button"))
click(find(app, "Whole Multiples"))
time.sleep(0.5)  # one frame
factor = int(min(width // FRAMEBUFFER[0], height // FRAMEBUFFER[1]))
left = x + (width - FRAMEBUFFER[0] * factor) // 2
top = y + (height - FRAMEBUFFER[1] * factor) // 2
shot = screen_pixels()
check(pixel(shot, left, top + 10) == (255, 255, 255) and pixel(shot, left - 1, top + 10) == (0, 0, 0),
      "integer scaling puts the picture's left edge exactly at x=%d" % left)
check(pixel(shot, left + 80 * factor, top + 10) == (255, 255, 0)
      and pixel(shot, left + 80 * factor - 1, top + 10) == (255, 255, 255),
      "the second bar starts exactly 80 guest pixels later")
check("Scaling=integer" in open(vm_file).read(), "the choice is saved with the VM")
# Radio items leave their popover open; close it as a person would.
click(find(window, "View", "toggle button"))

# --- grab, type, release ----------------------------------------------------
hint = "Press Ctrl+Alt to release the keyboard and mouse"
check(not find_all(window, name_contains=hint), "no release hint before the grab")
screen_node.click()
check(wait_until(lambda: find_all(window, name_contains=hint), 5), "the click grabbed: hint shown")
mark = len(engine_log())
rawinput.typeText("hi")
check(wait_for_log("key-press 0x23", after=mark) and wait_for_log("key-release 0x23", after=mark)
      and wait_for_log("key-press 0x17", after=mark),
      "typed h and i arrive as set-1 codes 0x23 and 0x17")
rawinput.relativeMotion(30, -20)
check(wait_until(lambda: [l for l in engine_log()[mark:] if l.startswith("motion ")], 5),
      "pointer motion reaches the guest while grabbed")
moved = [tuple(map(int, l.split()[1:])) for l in engine_log()[mark:] if l.startswith("motion ")]
check(sum(dx for dx, _ in moved) == 30 and sum(dy for _, dy in moved) == -20,
      "the motion adds up to what the pointer did: %s" % moved)
# Release the grab while A is still held down: the guest must see A released
# with the grab, and must not see a second release when the finger lifts.
mark = len(engine_log())
rawinput.holdKey("a")
rawinput.holdKey("Control_L")
rawinput.holdKey("Alt_L")
rawinput.releaseKey("Alt_L")
check(wait_until(lambda: not find_all(window, name_contains=hint), 5),
      "Ctrl+Alt released the grab: hint gone")
log = engine_log()[mark:]
check("key-release 0x1e" in log and "key-release 0x1d" in log and "key-release 0x38" in log,
      "every held key (A, Ctrl, Alt) was released in the guest with the grab: %s" % log)
rawinput.releaseKey("Control_L")
rawinput.releaseKey("a")
time.sleep(0.5)
# Replay what the guest saw: no key may be released that is not down (X's
# autorepeat of the held A keeps pressing it, which is typematic repeat), and in
# the end nothing may be left down.
down, stray = set(), []
for line in engine_log()[mark:]:
    kind, _, code = line.partition(" ")
    if kind == "key-press":
        down.add(code)
    elif kind == "key-release":
        if code not in down:
            stray.append(code)
        down.discard(code)
check(not stray, "the guest never sees a release of a key that is up: %s" % stray)
check(not down, "no key is left down in the guest: %s" % sorted(down))

# --- send-key menu ------------------------------------------------------------
mark = len(engine_log())
click(find(window, "Send key", "toggle button"))
click(find(app, "Ctrl+Alt+Del", "push button"))
check(wait_for_log("key-release 0x1d", after=mark), "Ctrl+Alt+Del was sent")
log = engine_log()[mark:]
check(log[:6] == ["key-press 0x1d", "key-press 0x38", "key-press 0xd3",
                  "key-release 0xd3", "key-release 0x38", "key-release 0x1d"],
      "Ctrl+Alt+Del pressed and released as a chord: %s" % log[:6])

# --- pause and resume -----------------------------------------------------------
click(find(window, "Pause", "push button"))
check(wait_for_log("pause"), "Pause reached the engine")
resume = find(window, "Resume", "push button")
check(resume is not None, "the button now says Resume")
click(resume)
check(wait_for_log("resume"), "Resume reached the engine")

# --- snapshots --------------------------------------------------------------------
mark = len(engine_log())
click(find(window, "Snapshots", "toggle button"))
check(find(app, "No snapshots yet.", "label") is not None, "the list starts empty")
find(app, "Snapshot name", "text").text = "first"
click(find(app, "Take Snapshot", "push button"))
check(wait_for_log("snapshot-save first", after=mark), "Take Snapshot saved one in the engine")
row = find(app, "first")
check(row is not None, "the new snapshot is listed")
safety = find(app, "Take a snapshot before reverting", "check box")
check(safety is not None and safety.checked, "“take a snapshot before reverting” is on by default")
click(find(row, "Revert", "push button"))
check(wait_until(lambda: any(line.startswith("snapshot-save Before revert ")
                             for line in engine_log()[mark:]), 10),
      "Revert first saved the present")
check(wait_for_log("snapshot-load first", after=mark), "Revert loaded it")
check(wait_for_log("resume", after=mark), "and the machine goes on from there")
click(find(row, "Delete", "push button"))
check(wait_for_log("snapshot-delete first", after=mark), "Delete removed it in the engine")
check(wait_until(lambda: not find_all(app, name_contains="first"), 5), "and from the list")
click(find(window, "Snapshots", "toggle button"))

# --- the engine dies ------------------------------------------------------------
pid = int([l for l in engine_log() if l.startswith("pid ")][-1].split()[1])
os.kill(pid, signal.SIGKILL)
error = wait_until(lambda: find_all(window, name_contains="killed by signal 9"), 10)
check(error, "the VM window says the engine was killed by signal 9")
check(wait_until(lambda: find_all(card, name_contains="killed by signal 9"), 5),
      "the library card keeps the error")
check(find(card, "Failed", "label") is not None, "the card says Failed")
click(find(window, "Close", "push button"))
check(wait_until(lambda: "Test DOS" not in [w.name for w in find_all(app, role="frame")], 5),
      "the VM window closed")

# --- settings ---------------------------------------------------------------------------
click(find(card, "Settings", "push button"))
settings = find(app, "Machine Settings", "dialog")
check(find(settings, "Memory", "spin button").value == 64, "the settings show the VM's memory")
find(settings, "Memory", "spin button").value = 96
click(find(settings, "Save", "push button"))
check(wait_until(lambda: "Memory=96" in open(vm_file).read(), 5), "Save wrote the new memory size")

# --- start again, power off from the window, then stop from the library ------------------
mark = len(engine_log())
click(find(card, "Start", "push button"))
check(wait_for_log("start", after=mark), "the VM starts again")
args = [line for line in engine_log()[mark:] if line.startswith("args ")]
check(args and "--memory 96" in args[-1], "with the new memory size")
window = find(app, "Test DOS", "frame")
click(find(window, "Power Off", "push button"))
check(wait_for_log("quit", after=mark), "Power Off asked the engine to quit")
check(wait_until(lambda: "Test DOS" not in [w.name for w in find_all(app, role="frame")], 5),
      "the VM window closed with the machine")
check(wait_until(lambda: find(card, "Powered off", "label", timeout=1), 10),
      "the card says Powered off")

mark = len(engine_log())
click(find(card, "Start", "push button"))
check(wait_for_log("start", after=mark), "the VM starts a third time")
click(find(card, "Stop", "push button"))
check(wait_for_log("quit", after=mark), "Stop asked the engine to quit")
check(wait_until(lambda: find(card, "Powered off", "label", timeout=1), 10),
      "the card says Powered off")

# --- an engine that refuses to start -------------------------------------------------
broken = find(library, "Broken", "panel")
click(find(broken, "Start", "push button"))
check(wait_until(lambda: find_all(broken, name_contains="cannot open disk image"), 10),
      "the engine's own message is shown: %s" % [n.name for n in find_all(broken, role="label")])
for w in find_all(app, role="frame"):
    if w.name == "Broken":
        find(w, "Close", "push button").doActionNamed("click")

# --- delete, keeping the disk ------------------------------------------------------------
click(find(card, "Delete", "push button"))
alert = find(app, role="alert")
check(find(alert, "Delete “Test DOS”?", "label") is not None, "deleting asks first")
keep = find(alert, role="check box")
check(keep.name.startswith("Keep the disk image") and keep.checked,
      "an image brought along is kept by default")
click(find(alert, "Delete", "push button"))
check(wait_until(lambda: not os.path.exists(vm_file), 5), "the key file is gone")
check(os.path.exists(disk), "the disk image was kept")

process.terminate()
process.wait(10)
finish()
