"""Writes the library window in Simplified Chinese to
$VIVARIUM_SCREENSHOT_DIR/screenshot-library-zh_CN.png, to look at the translation.
Run through scripts/screenshots.sh, which sets up the zh_CN locale."""
import os
import subprocess
import time

from vivtest import CONFIG_DIR, WORK, click, find, find_all, start_app, wait_until

OUT = os.environ["VIVARIUM_SCREENSHOT_DIR"]
os.makedirs(CONFIG_DIR, exist_ok=True)
with open(os.path.join(CONFIG_DIR, "dos.vm"), "w") as f:
    f.write("[Machine]\nName=FreeDOS 1.3\n[Drives]\nHardDisk=%s/lost.img\n" % WORK)
with open(os.path.join(CONFIG_DIR, "win.vm"), "w") as f:
    f.write("[Machine]\nName=Windows 98\n")

process, app = start_app()
library = find(app, "Vivarium", "frame")
click(find(find(library, "FreeDOS 1.3", "panel"), "启动", "push button"))
wait_until(lambda: find_all(library, name_contains="引擎已停止"), 10)
for w in find_all(app, role="frame"):
    if w.name == "FreeDOS 1.3":
        # The header bar's close button, named by GTK's own translation.
        closers = [b for b in find_all(w, role="push button") if b.name in ("Close", "关闭")]
        click(closers[0])
time.sleep(1)
x, y = library.position
w, h = library.size
path = os.path.join(OUT, "screenshot-library-zh_CN.png")
subprocess.run(["import", "-window", "root", "-crop", "%dx%d+%d+%d" % (w, h, x, y), "+repage",
                path], check=True)
print("wrote", path)
process.terminate()
process.wait(10)
