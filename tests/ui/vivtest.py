"""Helpers for driving the Vivarium app through its accessibility tree.

Run only under run-ui-test.sh, which provides the X server, the session bus,
throw-away XDG directories and these environment variables:
VIVARIUM_APP, VIVARIUM_ENGINE, VIVARIUM_UI_WORK, VIVARIUM_FAKE_ENGINE_LOG.
"""
import math
import os
import struct
import subprocess
import sys
import time
import zlib

from dogtail import config
config.searchCutoffCount = 10
config.defaultDelay = 0.3
config.logDebugToFile = False
config.logDebugToStdOut = False

from dogtail import predicate, rawinput  # noqa: E402
from dogtail.tree import root, SearchError  # noqa: E402

WORK = os.environ["VIVARIUM_UI_WORK"]
ENGINE_LOG = os.environ["VIVARIUM_FAKE_ENGINE_LOG"]
CONFIG_DIR = os.path.join(os.environ["XDG_CONFIG_HOME"], "vivarium")

failures = []


class NotFound(AssertionError, LookupError):
    """A node that find() waited for did not appear."""


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)
    return condition


def wait_until(test, timeout=10.0, interval=0.2):
    """Returns test()'s first true value within timeout seconds, or None."""
    end = time.monotonic() + timeout
    while True:
        try:
            value = test()
        except (SearchError, LookupError, RuntimeError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > end:
            return None
        time.sleep(interval)


def start_app():
    process = subprocess.Popen([os.environ["VIVARIUM_APP"]])
    app = wait_until(lambda: root.application("vivarium"), timeout=20)
    if app is None:
        process.kill()
        sys.exit("the app did not appear in the accessibility tree")
    return process, app


def find(node, name=None, role=None, showing=True, timeout=10.0):
    """The first descendant of node with this name and/or role, waiting for it."""
    def search():
        def matches(n):
            if name is not None and n.name != name:
                return False
            if role is not None and n.roleName != role:
                return False
            return not showing or n.showing
        return node.findChild(matches, retry=False, requireResult=False)
    found = wait_until(search, timeout)
    if found is None:
        raise NotFound("no %s named %r" % (role or "node", name))
    return found


def find_all(node, role=None, name_contains=None):
    def matches(n):
        if role is not None and n.roleName != role:
            return False
        if name_contains is not None and name_contains not in (n.name or ""):
            return False
        return n.showing
    return node.findChildren(matches)


def click(node):
    node.doActionNamed("click")


def engine_log():
    try:
        with open(ENGINE_LOG) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_for_log(line, timeout=10.0, after=0):
    """Waits until the engine log has line (at or after index after)."""
    return wait_until(lambda: line in engine_log()[after:], timeout)


def screen_pixels():
    """The whole X screen as (width, height, bytes of RGB)."""
    raw = subprocess.run(["import", "-window", "root", "-depth", "8", "rgb:-"],
                         check=True, capture_output=True).stdout
    width, height = 1280, 800  # run-ui-test.sh starts Xvfb with this size
    assert len(raw) == width * height * 3, len(raw)
    return width, height, raw


def pixel(screen, x, y):
    width, _, raw = screen
    offset = (y * width + x) * 3
    return tuple(raw[offset:offset + 3])


def close_to(colour, expected, tolerance=24):
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected))


def read_png(path):
    """An 8-bit RGB or RGBA PNG (as the engine writes) as (width, height, RGB bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride if kind != 0 else 0):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xff
            elif kind == 2:
                line[i] = (line[i] + up) & 0xff
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xff
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xff
        rows.append(bytes(line) if channels == 3
                    else bytes(b for j in range(0, stride, 4) for b in line[j:j + 3]))
        previous = line
    return width, height, b"".join(rows)


def picture_geometry(screen, width, height):
    """Where VivDisplay draws a width x height picture scaled to fit the Screen
    node (see viv_display_update_geometry): (left, top, scale) in X pixels."""
    x, y = screen.position
    w, h = screen.size
    scale = min(w / width, h / height)
    return (x + math.floor((w - width * scale) / 2), y + math.floor((h - height * scale) / 2),
            scale)


def compare_with_window(screen, picture, name, step=1, tolerance=40):
    """Compares a capture of the Screen widget (the X server's pixels, taken
    with import) with picture (width, height, rgb), the engine's own image of
    the same moment: every step-th guest pixel, at its centre in the widget.
    Returns (matched, sampled, edges_matched, edges): edges are the samples
    whose colour differs from the guest pixel to their right or below, which
    a picture drawn a pixel off or at a wrong scale gets wrong. Writes the
    capture to WORK/name-window.png for inspection."""
    width, height, rgb = picture
    left, top, scale = picture_geometry(screen, width, height)
    shot = screen_pixels()
    crop = os.path.join(WORK, name + "-window.png")
    subprocess.run(["import", "-window", "root", "-crop",
                    "%dx%d+%d+%d" % (round(width * scale), round(height * scale), left, top),
                    "+repage", crop], check=False)

    def colour(x, y):
        offset = (y * width + x) * 3
        return tuple(rgb[offset:offset + 3])

    matched = sampled = edges_matched = edges = 0
    for sy in range(0, height, step):
        for sx in range(0, width, step):
            expected = colour(sx, sy)
            seen = pixel(shot, int(left + (sx + 0.5) * scale), int(top + (sy + 0.5) * scale))
            good = close_to(seen, expected, tolerance)
            sampled += 1
            matched += good
            if ((sx + 1 < width and not close_to(colour(sx + 1, sy), expected, tolerance))
                    or (sy + 1 < height and not close_to(colour(sx, sy + 1), expected, tolerance))):
                edges += 1
                edges_matched += good
    return matched, sampled, edges_matched, edges


def finish():
    if failures:
        print("%d check(s) failed:" % len(failures))
        for what in failures:
            print("  " + what)
        sys.exit(1)
    print("all checks passed")
