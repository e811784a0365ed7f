"""Drives one vivarium-engine run through its --monitor stdio console: wait
for text on the guest's screen, type on its keyboard, take screenshots.
Used by the firmware tests; every wait is bounded, and a failure says what
the screen showed."""
import os
import queue
import re
import subprocess
import sys
import threading
import time


class GuestError(Exception):
    pass


class GuestSession:
    def __init__(self, engine, args, serial_log=None, timeout=300):
        self.serial_log = serial_log
        cmd = [engine, "--headless", "--monitor", "stdio", "--debugcon", "none",
               "--serial", "file:" + serial_log if serial_log else "none",
               "--timeout", str(timeout)] + list(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.stderr = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines),
                         daemon=True).start()
        threading.Thread(target=self._collect_stderr, daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def _collect_stderr(self):
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def command(self, line, timeout=30):
        """Sends one monitor command; returns the lines it printed before
        its 'ok'. Raises on 'error:' or when the engine is gone."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise GuestError(f"no answer to '{line}' within {timeout}s")
            if got is None:
                raise GuestError(f"the engine ended during '{line}':\n" + "\n".join(self.stderr))
            if got == "ok":
                return out
            if got.startswith("error:"):
                raise GuestError(f"'{line}': {got}")
            out.append(got)

    def screen_text(self):
        """The text on screen, or None in a graphics mode."""
        try:
            out = self.command("text")
        except GuestError as e:
            if "graphics mode" in str(e):
                return None
            raise
        if out and out[0] == "--- screen ---":
            out = out[1:]
        if out and out[-1] == "--- end ---":
            out = out[:-1]
        return "\n".join(out)

    def wait_text(self, pattern, timeout=60):
        """Waits until the screen's text matches the regular expression."""
        deadline = time.monotonic() + timeout
        text = None
        while time.monotonic() < deadline:
            text = self.screen_text()
            if text is not None and re.search(pattern, text):
                return text
            time.sleep(0.5)
        raise GuestError(f"'{pattern}' did not appear within {timeout}s; the screen showed:\n"
                         f"{text}")

    def wait_serial(self, pattern, timeout=60):
        deadline = time.monotonic() + timeout
        content = ""
        while time.monotonic() < deadline:
            if self.serial_log and os.path.exists(self.serial_log):
                with open(self.serial_log, errors="replace") as f:
                    content = f.read()
                if re.search(pattern, content):
                    return content
            time.sleep(0.5)
        raise GuestError(f"'{pattern}' did not appear on the serial port within {timeout}s; "
                         f"its last lines:\n" + "\n".join(content.splitlines()[-15:]))

    def send_serial(self, text):
        """Sends text to COM1's receiver through the monitor's serial
        command (with its escapes: \\n, \\r, ...)."""
        self.command("serial " + text)

    def type(self, text):
        self.command("type " + text, timeout=120)

    def screendump(self, path):
        self.command("screendump " + path)

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
        return self.proc.returncode


class SerialConsole:
    """One vivarium-engine run with --serial stdio and no monitor: the
    test writes to COM1's receiver through the engine's standard input and
    reads COM1's output from its standard output."""

    def __init__(self, engine, args, timeout=300):
        cmd = [engine, "--headless", "--serial", "stdio", "--debugcon", "none",
               "--timeout", str(timeout)] + list(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.output = bytearray()
        self.lock = threading.Lock()
        self.stderr = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._collect_stderr, daemon=True).start()

    def _pump(self):
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                break
            with self.lock:
                self.output += chunk

    def _collect_stderr(self):
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip("\n"))

    def text(self):
        with self.lock:
            return self.output.decode(errors="replace")

    def wait(self, pattern, timeout=60, since=0):
        """Waits until COM1's output from offset since matches; returns the
        offset of the match's end."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.compile(pattern).search(self.text(), since)
            if m:
                return m.end()
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise GuestError(f"'{pattern}' did not appear on COM1 within {timeout}s; its last "
                         "lines:\n" + "\n".join(self.text().splitlines()[-15:]) +
                         "\n" + "\n".join(self.stderr))

    def write(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.returncode


def png_size(path):
    """Width and height of a PNG, from its header."""
    with open(path, "rb") as f:
        header = f.read(24)
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def png_colours(path):
    """How many distinct colours a PNG shows (through ImageMagick)."""
    out = subprocess.run(["identify", "-format", "%k", path], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def run(test):
    """Runs test() and turns its outcome into an exit status."""
    try:
        test()
    except GuestError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
