#!/usr/bin/env python3
"""The PC speaker, heard for real: a private PulseAudio server with a null
sink, the guest program beep.bin (440 Hz for 1 s, 0.5 s silence, 1000 Hz for
1 s) run under the engine with --audio pulse, the sink's monitor recorded with
parec, and each tone measured: frequencies within 2%, tones and the
silence between them as long as the guest made them (within 0.1 s).

The recording starts only once sound flows from the monitor. A null sink that
nobody listens to renders up to its largest latency (two seconds) ahead of
time; a recorder that connects then hears nothing until the sink's clock
comes back to the present, and an engine started in that window had the
start of its first tone swallowed.
Usage: speaker.py ENGINE ACCEL BEEP_IMAGE WORKDIR"""
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

engine, accel, image, workdir = sys.argv[1:5]
for tool in ("pulseaudio", "parec"):
    if not shutil.which(tool):
        print(f"SKIP: {tool} is not installed")
        sys.exit(77)
os.makedirs(workdir, exist_ok=True)
runtime = tempfile.mkdtemp(prefix="vivarium-pulse-")
os.chmod(runtime, 0o700)
env = dict(os.environ, XDG_RUNTIME_DIR=runtime, HOME=runtime, PULSE_RUNTIME_PATH=runtime)
recording = os.path.join(workdir, f"speaker-{accel}.raw")
RATE = 48000
dropout_total = 0.0


def load():
    data = open(recording, "rb").read()
    n = len(data) // 2
    return struct.unpack(f"<{n}h", data[:n * 2])


def tone_runs(samples, window=RATE // 100, bridge=0.15):
    """The stretches where the speaker sounds, as (start, end) in seconds:
    runs of 10 ms windows whose RMS is well above silence. Dropouts shorter
    than bridge (a host too busy to run the guest for a moment: the sound
    goes on in step with the clock afterwards) are reported and bridged;
    main() limits their total, so a steady stutter still fails."""
    runs, current = [], None
    for w in range(0, len(samples) - window, window):
        seg = samples[w:w + window]
        loud = math.sqrt(sum(v * v for v in seg) / window) > 1000
        t = w / RATE
        if loud and current is None:
            current = t
        elif not loud and current is not None:
            runs.append((current, t))
            current = None
    if current is not None:
        runs.append((current, len(samples) / RATE))
    merged = []
    global dropout_total
    for run in runs:
        if merged and run[0] - merged[-1][1] < bridge:
            print(f"dropout of {run[0] - merged[-1][1]:.3f} s at {merged[-1][1]:.2f} s")
            dropout_total += run[0] - merged[-1][1]
            merged[-1] = (merged[-1][0], run[1])
        else:
            merged.append(run)
    return merged


def frequency(samples, start, end):
    """From the median distance between rising edges of the square wave, away
    from the tone's ends: a dropout breaks one period, not the estimate."""
    seg = samples[int((start + 0.05) * RATE):int((end - 0.05) * RATE)]
    rising = [i for i in range(1, len(seg)) if seg[i - 1] < 0 <= seg[i]]
    periods = sorted(b - a for a, b in zip(rising, rising[1:]))
    if not periods:
        return 0.0
    return RATE / periods[len(periods) // 2]


def main():
    daemon = subprocess.run(["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n",
                             "--load=module-null-sink sink_name=vivarium_test",
                             "--load=module-native-protocol-unix",
                             "--load=module-always-sink"], env=env, capture_output=True,
                            text=True)
    if daemon.returncode != 0:
        print("SKIP: PulseAudio did not start: " + daemon.stderr[-500:])
        return 77
    try:
        with open(recording, "wb") as out:
            rec = subprocess.Popen(["parec", "-d", "vivarium_test.monitor", "--format=s16le",
                                    f"--rate={RATE}", "--channels=1", "--latency-msec=20"],
                                   stdout=out, env=env)
            deadline = time.monotonic() + 20
            while os.path.getsize(recording) == 0:
                if time.monotonic() > deadline or rec.poll() is not None:
                    print("FAIL: no sound came from the null sink's monitor")
                    rec.kill()
                    return 1
                time.sleep(0.01)
            time.sleep(0.2)
            run = subprocess.run([engine, "--headless", "--no-reboot", "--timeout", "60",
                                  "--accel", accel, "--audio", "pulse", "--name",
                                  "speaker test", "--bios", image], env=env,
                                 capture_output=True, text=True)
            time.sleep(1)
            rec.send_signal(signal.SIGINT)
            rec.wait(timeout=10)
        if run.returncode != 1:
            print(f"FAIL: the engine ended with status {run.returncode}:\n{run.stderr}")
            return 1
        samples = load()
        # A click of a few milliseconds can come from the server as the
        # recording starts; tones are long.
        runs = [r for r in tone_runs(samples) if r[1] - r[0] > 0.1]
        print("tones at " + ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in runs))
        if dropout_total > 0.2:
            print(f"FAIL: {dropout_total:.2f} s of dropouts in 2 s of tones")
            return 1
        if len(runs) != 2:
            print(f"FAIL: expected two tones, heard {len(runs)}")
            return 1
        for (begin, end), expected in zip(runs, (440, 1000)):
            got = frequency(samples, begin, end)
            print(f"tone {expected} Hz: measured {got:.1f} Hz, {end - begin:.2f} s long")
            if abs(got - expected) > expected * 0.02:
                print(f"FAIL: the {expected} Hz tone measured {got:.1f} Hz")
                return 1
            if abs((end - begin) - 1.0) > 0.1:
                print(f"FAIL: the {expected} Hz tone lasted {end - begin:.2f} s, not 1 s")
                return 1
        pause = runs[1][0] - runs[0][1]
        print(f"pause: {pause:.2f} s")
        if abs(pause - 0.5) > 0.1:
            print(f"FAIL: the pause lasted {pause:.2f} s, not 0.5 s")
            return 1
        return 0
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True)
        shutil.rmtree(runtime, ignore_errors=True)


sys.exit(main())
