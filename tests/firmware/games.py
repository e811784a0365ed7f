#!/usr/bin/env python3
"""The boot-sector games of ../shared/guests/bootsector-games start from a
floppy and draw their first screen: text games show their text, graphics
games a picture of the right size with more than a flat colour. Every
screen is also saved as PNG in WORKDIR, to be looked at.
Usage: games.py ENGINE ACCEL GAMES_DIR WORKDIR"""
import os
import shutil
import sys
import time

from guest_session import GuestError, GuestSession, png_colours, png_size, run

engine, accel, games, workdir = sys.argv[1:5]
if not os.path.isdir(games):
    print(f"SKIP: {games} is missing (../shared/guests is not beside this clone)")
    sys.exit(77)
os.makedirs(workdir, exist_ok=True)

# name: ("text", pattern) or ("graphics", (width, height), minimum colours)
EXPECTED = {
    "bootos": ("text", r"bootOS"),
    "basic": ("text", r"(?m)^>"),
    "snake": ("text", r"Score"),
    "rogue": ("text", r"\d+ +\d+"),
    # Minesweeper's hidden field: 40x25 cells of '.', black on green with
    # the attribute's bit 7 set, which blinks the dots (VGA's default
    # blink mode; QEMU shows a bright background instead).
    "mine": ("text", r"\A(\.{40}\n){24}\.{40}\Z"),
    "cubicdoom": ("graphics", (320, 200), 2),
    "floppybird": ("graphics", (320, 200), 8),
}


def test():
    for name, expected in EXPECTED.items():
        # A copy, so that a game that writes its disk leaves the original alone.
        image = os.path.join(workdir, f"{name}.img")
        shutil.copyfile(os.path.join(games, f"{name}.img"), image)
        guest = GuestSession(engine, ["--accel", accel, "--fda", image, "--boot", "a"])
        shot = os.path.join(workdir, f"{name}-{accel}.png")
        try:
            if expected[0] == "text":
                guest.wait_text(expected[1], timeout=60)
                guest.screendump(shot)
            else:
                deadline = time.monotonic() + 60
                while True:
                    guest.screendump(shot)
                    size, colours = png_size(shot), png_colours(shot)
                    if size == expected[1] and colours >= expected[2]:
                        break
                    if time.monotonic() > deadline:
                        raise GuestError(f"{name}: the screen is {size} with {colours} colours")
                    time.sleep(1)
        finally:
            guest.quit()
        print(f"{name}: started, screen saved as {shot}")


run(test)
