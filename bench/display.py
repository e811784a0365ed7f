#!/usr/bin/python3
"""The display pipeline against QEMU's, in one invocation.

Three boot floppies from display-guest.asm (assembled here with nasm), each
run under vivarium-engine (--vnc) and under qemu-system-i386 -accel tcg
(-vnc), both with SeaBIOS:

- latency: the tick guest changes a character and right after writes 'T' to
  the debug console (read by this script, timestamped on arrival). The time
  from that 'T' to the next framebuffer update a VNC client receives, over
  about 25 ticks. For the engine also the time to its D-Bus Invalidate
  signal (--dbus-fd, what the app listens to).
- frame rate: the animate guest refills the whole 320x200 mode 13h screen at
  every vertical retrace and says so on the debug console; frames the guest
  drew per second, and updates per second a VNC client receives while it
  asks for the next one as soon as one arrives (and, for the engine,
  Invalidate signals per second).
- fill rate: guests that refill the whole screen as fast as they can, in
  mode 13h (chain 4) and in mode 12h (16-colour planar); frames the guest
  drew per second, with the same VNC client connected.
- idle CPU: the idle guest HLTs with interrupts on; host CPU time used by the
  emulator process over --idle-seconds, as a share of one core, with a VNC
  server but no client.

The VNC client is a minimal RFB 3.8 client (no authentication, raw
encoding), the same for both. Prints figures and ratios; never fails on a
time. Usage: bench/display.py [--engine PATH] [--qemu PATH] [--idle-seconds N]
"""
import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rfb:
    """A minimal RFB client: counts framebuffer updates and timestamps them."""

    def __init__(self, port, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(None)
        version = self.read(12)
        self.sock.sendall(b"RFB 003.008\n" if version >= b"RFB 003.008" else version)
        count = self.read(1)[0]
        types = self.read(count)
        if 1 not in types:
            raise RuntimeError(f"the server wants authentication ({list(types)})")
        self.sock.sendall(b"\x01")
        if struct.unpack(">I", self.read(4))[0] != 0:
            raise RuntimeError("security handshake failed")
        self.sock.sendall(b"\x01")  # shared
        self.width, self.height = struct.unpack(">HH", self.read(4))
        self.read(16)
        self.read(struct.unpack(">I", self.read(4))[0])
        # 32 bits per pixel, true colour, little endian; raw encoding only.
        self.sock.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255,
                                      16, 8, 0))
        self.sock.sendall(struct.pack(">BxHi", 2, 1, 0))
        self.updates = []  # arrival times of framebuffer updates with pixels
        self.request(incremental=False)
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def request(self, incremental=True):
        self.sock.sendall(struct.pack(">BBHHHH", 3, 1 if incremental else 0, 0, 0,
                                      self.width, self.height))

    def loop(self):
        try:
            while True:
                kind = self.read(1)[0]
                if kind == 0:
                    self.read(1)
                    (rects,) = struct.unpack(">H", self.read(2))
                    pixels = 0
                    for _ in range(rects):
                        x, y, w, h, enc = struct.unpack(">HHHHi", self.read(12))
                        if enc == 0:
                            self.read(w * h * 4)
                            pixels += w * h
                        elif enc == -223:  # DesktopSize
                            self.width, self.height = w, h
                    arrived = time.monotonic()
                    if pixels:
                        self.updates.append(arrived)
                    self.request()
                elif kind == 1:  # SetColourMapEntries
                    self.read(1)
                    _, n = struct.unpack(">HH", self.read(4))
                    self.read(n * 6)
                elif kind == 2:
                    pass
                elif kind == 3:
                    self.read(3)
                    self.read(struct.unpack(">I", self.read(4))[0])
                else:
                    return
        except (EOFError, OSError):
            return

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class DebugconReader:
    """Timestamps every 'T' the guest writes to its debug console (stdout)."""

    def __init__(self, stream):
        self.marks = []
        self.frames = 0  # 'F': frames the animation guest drew
        self.thread = threading.Thread(target=self.loop, args=(stream,), daemon=True)
        self.thread.start()

    def loop(self, stream):
        while True:
            data = os.read(stream.fileno(), 4096)
            if not data:
                return
            now = time.monotonic()
            self.marks.extend([now] * data.count(b"T"))
            self.frames += data.count(b"F")


class DbusFrames:
    """The engine's D-Bus face over a socketpair: Invalidate arrival times."""

    def __init__(self):
        import gi
        gi.require_version("Gio", "2.0")
        from gi.repository import Gio, GLib
        self.Gio, self.GLib = Gio, GLib
        self.ours, self.theirs = socket.socketpair()
        self.frames = []

    def connect(self):
        Gio = self.Gio
        self.theirs.close()
        stream = Gio.Socket.new_from_fd(self.ours.detach()).connection_factory_create_connection()
        self.bus = Gio.DBusConnection.new_sync(stream, None,
                                               Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT,
                                               None, None)
        self.bus.signal_subscribe(None, "org.vivarium.Display", "Invalidate",
                                  "/org/vivarium/Engine", None, Gio.DBusSignalFlags.NONE,
                                  lambda *a: self.frames.append(time.monotonic()))
        self.bus.call_sync(None, "/org/vivarium/Engine", "org.vivarium.Machine", "Start", None,
                           None, Gio.DBusCallFlags.NONE, 10000, None)

    def spin(self, seconds):
        end = time.monotonic() + seconds
        context = self.GLib.MainContext.default()
        while time.monotonic() < end:
            context.iteration(False)
            time.sleep(0.0005)


def start(peer, args, image, port, dbus=None):
    common_engine = [args.engine, "--display", "none", "--audio", "none", "--serial", "none",
                     "--debugcon", "stdio", "--memory", "16", "--fda", image, "--boot", "a",
                     "--vnc", f"127.0.0.1:{port}", "--timeout", "600"]
    if peer == "vivarium":
        cmd = common_engine + (["--dbus-fd", str(dbus.theirs.fileno())] if dbus else [])
        fds = [dbus.theirs.fileno()] if dbus else []
    else:
        cmd = [args.qemu, "-accel", "tcg", "-m", "16", "-display", "none",
               "-vnc", f"127.0.0.1:{port - 5900}", "-drive", f"file={image},if=floppy,format=raw",
               "-boot", "a", "-debugcon", "stdio", "-serial", "none", "-monitor", "none",
               "-nodefaults", "-vga", "std"]
        fds = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            pass_fds=fds)
    if dbus:
        dbus.connect()
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def vnc_port():
    # QEMU takes a display number, so ports from 5900 up.
    for display in range(50, 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 5900 + display))
                return 5900 + display
            except OSError:
                continue
    sys.exit("no free VNC port")


def latencies(marks, arrivals):
    """For each mark, the time to the first arrival after it (within 150 ms)."""
    result = []
    for mark in marks:
        later = [a - mark for a in arrivals if 0 <= a - mark < 0.15]
        if later:
            result.append(min(later) * 1000)
    return result


def measure_latency(peer, args, images):
    port = vnc_port()
    dbus = DbusFrames() if peer == "vivarium" else None
    proc = start(peer, args, images[1], port, dbus)
    reader = DebugconReader(proc.stdout)
    try:
        deadline = time.monotonic() + 60
        while not reader.marks and time.monotonic() < deadline:
            (dbus.spin(0.1) if dbus else time.sleep(0.1))
        client = Rfb(port)
        first = len(reader.marks)
        (dbus.spin(args.latency_seconds) if dbus else time.sleep(args.latency_seconds))
        marks = reader.marks[first:]
        vnc = latencies(marks, list(client.updates))
        bus = latencies(marks, list(dbus.frames)) if dbus else []
        client.close()
        return len(marks), vnc, bus
    finally:
        stop(proc)


def measure_fps(peer, args, images, mode=2):
    port = vnc_port()
    dbus = DbusFrames() if peer == "vivarium" else None
    proc = start(peer, args, images[mode], port, dbus)
    reader = DebugconReader(proc.stdout)
    try:
        client = Rfb(port)
        # Past the firmware and the mode switch.
        (dbus.spin(args.boot_seconds) if dbus else time.sleep(args.boot_seconds))
        t0, c0 = time.monotonic(), cpu_seconds(proc.pid)
        n0, d0, g0 = len(client.updates), len(dbus.frames) if dbus else 0, reader.frames
        (dbus.spin(args.fps_seconds) if dbus else time.sleep(args.fps_seconds))
        elapsed, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - c0
        fps = (len(client.updates) - n0) / elapsed
        bus_fps = (len(dbus.frames) - d0) / elapsed if dbus else None
        guest_fps = (reader.frames - g0) / elapsed
        # Frames per second of the emulator's own CPU time: what the guest
        # gets done per unit of work, steadier than wall time on a busy host.
        guest_per_cpu = (reader.frames - g0) / cpu if cpu > 0 else 0.0
        client.close()
        return fps, bus_fps, guest_fps, guest_per_cpu
    finally:
        stop(proc)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_idle(peer, args, images):
    port = vnc_port()
    proc = start(peer, args, images[0], port)
    try:
        time.sleep(args.boot_seconds)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.idle_seconds)
        return (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
    finally:
        stop(proc)


def fmt_ms(values):
    if not values:
        return "no updates"
    return (f"median {statistics.median(values):.1f} ms, mean {statistics.mean(values):.1f}, "
            f"max {max(values):.1f} ({len(values)} samples)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", default=os.path.join(TOP, "build/engine/vivarium-engine"))
    parser.add_argument("--qemu", default="qemu-system-i386")
    parser.add_argument("--boot-seconds", type=float, default=4)
    parser.add_argument("--latency-seconds", type=float, default=6)
    parser.add_argument("--fps-seconds", type=float, default=5)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--fill-only", action="store_true",
                        help="measure only the fill rates")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="vivarium-display-bench-")
    images = []
    for mode in range(5):
        path = os.path.join(work, f"display-guest-{mode}.img")
        subprocess.run(["nasm", "-f", "bin", f"-DMODE={mode}", "-o", path,
                        os.path.join(HERE, "display-guest.asm")], check=True)
        images.append(path)

    peers = ["vivarium", "qemu"]
    results = {}
    fills = {}
    for peer in peers:
        fills[peer] = [measure_fps(peer, args, images, mode)[2:] for mode in (3, 4)]
        fill_text = ", ".join(f"mode {name} {f[0]:.1f} ({f[1]:.1f} per CPU second)"
                              for name, f in zip(("13h", "12h"), fills[peer]))
        if args.fill_only:
            print(f"{peer}: fill rate, frames the guest drew per second: {fill_text}")
            continue
        marks, vnc, bus = measure_latency(peer, args, images)
        fps, bus_fps, guest_fps, _ = measure_fps(peer, args, images)
        idle = measure_idle(peer, args, images)
        results[peer] = (vnc, bus, fps, bus_fps, idle)
        print(f"{peer}: {marks} guest writes timed")
        print(f"  write to VNC update:  {fmt_ms(vnc)}")
        if bus:
            print(f"  write to D-Bus Invalidate: {fmt_ms(bus)}")
        print(f"  full-screen animation: the guest drew {guest_fps:.1f} frames/s; "
              f"{fps:.1f} VNC updates/s" +
              (f", {bus_fps:.1f} Invalidate/s" if bus_fps is not None else ""))
        print(f"  idle guest (HLT): {idle:.2f}% of one core")
        print(f"  fill rate, frames the guest drew per second: {fill_text}")

    fv, fq = fills["vivarium"], fills["qemu"]
    ratios = ", ".join(f"mode {name} {v[0] / q[0]:.2f}x ({v[1] / q[1]:.2f}x per CPU second)"
                       for name, v, q in zip(("13h", "12h"), fv, fq) if q[0] and q[1])
    if args.fill_only:
        print(f"vivarium against qemu: fill rate {ratios}")
        return
    v, q = results["vivarium"], results["qemu"]
    print("vivarium against qemu:")
    print(f"  fill rate: {ratios}")
    if v[0] and q[0]:
        print(f"  VNC update latency (median): {statistics.median(v[0]) / statistics.median(q[0]):.2f}x")
    if q[2]:
        print(f"  VNC frame rate: {v[2] / q[2]:.2f}x")
    if q[4]:
        print(f"  idle CPU: {v[4] / q[4]:.2f}x")


if __name__ == "__main__":
    main()
