"""Helpers for driving the Vivarium app through its accessibility tree.

Run only under run-ui-test.sh, which provides the X server, the session bus,
throw-away XDG directories and these environment variables:
VIVARIUM_APP, VIVARIUM_ENGINE, VIVARIUM_UI_WORK, VIVARIUM_FAKE_ENGINE_LOG.
"""
import os
import subprocess
import sys
import time

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


def finish():
    if failures:
        print("%d check(s) failed:" % len(failures))
        for what in failures:
            print("  " + what)
        sys.exit(1)
    print("all checks passed")
