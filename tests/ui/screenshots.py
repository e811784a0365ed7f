"""Writes PNG screenshots of Vivarium's main windows into $VIVARIUM_SCREENSHOT_DIR.

Run through scripts/screenshots.sh, which provides the X server and the real
engine. The library gets three machines: the demo guest running (its live
thumbnail), one whose engine cannot start (its error), one powered off."""
import os
import shutil
import subprocess
import time

from vivtest import CONFIG_DIR, WORK, click, find, find_all, rawinput, start_app, wait_until

OUT = os.environ["VIVARIUM_SCREENSHOT_DIR"]
os.makedirs(OUT, exist_ok=True)
os.makedirs(CONFIG_DIR, exist_ok=True)

disk = os.path.join(WORK, "freedos.img")
with open(disk, "wb") as f:
    f.truncate(64 << 20)
floppy = os.path.join(WORK, "vivarium-demo.img")
shutil.copyfile(os.environ["VIVARIUM_DEMO_FLOPPY"], floppy)
machines = {
    "demo": "[Machine]\nName=Vivarium Demo\nMemory=16\nBootOrder=a\nScaling=fit\n"
            "[Drives]\nFloppy=%s\n" % floppy,
    "win98": "[Machine]\nName=Windows 98\nMemory=128\n[Drives]\nHardDisk=%s\n" % disk,
    "broken": "[Machine]\nName=Old Linux\nMemory=64\n[Drives]\nHardDisk=%s/lost.img\n" % WORK,
}
# A library window that shows all three cards side by side (GSettings keyfile
# backend, set up by scripts/screenshots.sh).
settings_dir = os.path.join(os.environ["XDG_CONFIG_HOME"], "glib-2.0", "settings")
os.makedirs(settings_dir, exist_ok=True)
with open(os.path.join(settings_dir, "keyfile"), "w") as f:
    f.write("[org/vivarium/Vivarium]\nwindow-width=1160\nwindow-height=520\n")
for name, content in machines.items():
    with open(os.path.join(CONFIG_DIR, name + ".vm"), "w") as f:
        f.write(content)


def shoot(node, name):
    """Crops the screen to node's window and writes OUT/name."""
    x, y = node.position
    w, h = node.size
    time.sleep(0.8)  # let animations settle
    path = os.path.join(OUT, name)
    subprocess.run(["import", "-window", "root", "-crop", "%dx%d+%d+%d" % (w, h, x, y),
                    "+repage", path], check=True)
    print("wrote", path)


process, app = start_app()
library = find(app, "Vivarium", "frame")

click(find(find(library, "Vivarium Demo", "panel"), "Start", "push button"))
vm_window = find(app, "Vivarium Demo", "frame", timeout=20)
time.sleep(4)  # SeaBIOS boots the demo from the floppy
find(vm_window, "Screen", "canvas").click()  # take the grab: the release hint shows
time.sleep(0.5)
shoot(vm_window, "screenshot-vm-window.png")
rawinput.holdKey("Control_L")
rawinput.holdKey("Alt_L")
rawinput.releaseKey("Alt_L")
rawinput.releaseKey("Control_L")
click(find(vm_window, "Snapshots", "toggle button"))
for name in ("Fresh install", "Before the upgrade"):
    find(app, "Snapshot name", "text").text = name
    click(find(app, "Take Snapshot", "push button"))
    find(app, name)
shoot(vm_window, "screenshot-snapshots.png")
click(find(vm_window, "Snapshots", "toggle button"))
time.sleep(2.5)  # a thumbnail is taken every 2 s
# Closing the window leaves the machine running, with a live thumbnail.
click(find(vm_window, "Close", "push button"))

click(find(find(library, "Old Linux", "panel"), "Start", "push button"))
wait_until(lambda: find_all(library, name_contains="cannot open disk image"), 10)
for w in find_all(app, role="frame"):
    if w.name == "Old Linux":
        click(find(w, "Close", "push button"))
library.grabFocus()
click(find(library, "Search", "toggle button"))
click(find(library, "Search", "toggle button"))
shoot(library, "screenshot-library.png")

click(find(library, "New", "push button"))
assistant = find(app, "Source", "frame")
shoot(assistant, "screenshot-assistant.png")
click(find(assistant, "Cancel", "push button"))

click(find(find(library, "Windows 98", "panel"), "Settings", "push button"))
settings = find(app, "Machine Settings", "dialog")
shoot(settings, "screenshot-settings.png")
click(find(settings, "Cancel", "push button"))

click(find(library, "Main menu", "toggle button"))
click(find(app, "Connect to Remote VNC…", "push button"))
vnc = find(app, "Connect to Remote VNC", "dialog")
shoot(vnc, "screenshot-vnc-dialog.png")
click(find(vnc, "Cancel", "push button"))

process.terminate()
process.wait(10)
