"""The app with the real vivarium-engine: a VM made from an empty disk image
boots SeaBIOS, whose text ("No bootable device" after trying the disk) appears in
the VM window; typing reaches the engine without error; Stop ends the engine
cleanly (the card says Powered off, not Failed)."""
import os
import time

from vivtest import (CONFIG_DIR, WORK, check, click, find, find_all, finish, pixel,
                     screen_pixels, start_app, wait_until, rawinput)

disk = os.path.join(WORK, "empty.img")
with open(disk, "wb") as f:
    f.truncate(1 << 20)
os.makedirs(CONFIG_DIR, exist_ok=True)
with open(os.path.join(CONFIG_DIR, "real.vm"), "w") as f:
    f.write("[Machine]\nName=Real\nMemory=16\nBackend=auto\nBootOrder=c\n"
            "[Drives]\nHardDisk=%s\n" % disk)

process, app = start_app()
library = find(app, "Vivarium", "frame")
card = find(library, "Real", "panel")
click(find(card, "Start", "push button"))
window = find(app, "Real", "frame")
check(wait_until(lambda: find_all(window, role="label", name_contains="Running"), 20),
      "the real engine runs the machine")
screen = find(window, "Screen", "canvas")


def text_pixels():
    """How many sampled pixels of the display show VGA light grey (0xaaaaaa)."""
    x, y = screen.position
    w, h = screen.size
    shot = screen_pixels()
    return sum(1 for sy in range(y, y + h, 2) for sx in range(x, x + w, 2)
               if all(abs(c - 0xaa) <= 24 for c in pixel(shot, sx, sy)))


# SeaBIOS prints its banner and its boot attempts in light grey on black.
count = wait_until(lambda: text_pixels() > 200, 90, interval=2)
check(count, "SeaBIOS's text appears in the VM window")
screen.click()
rawinput.typeText("x")
time.sleep(1)
check(not find_all(window, role="label", name_contains="rror"), "typing raised no error")
rawinput.holdKey("Control_L")
rawinput.holdKey("Alt_L")
rawinput.releaseKey("Alt_L")
rawinput.releaseKey("Control_L")
click(find(card, "Stop", "push button"))
check(wait_until(lambda: find(card, "Powered off", "label", timeout=1), 15),
      "Stop ends the engine cleanly: the card says Powered off")
check(not find_all(card, role="label", name_contains="engine"), "and shows no engine error")
process.terminate()
process.wait(10)
finish()
