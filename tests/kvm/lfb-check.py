#!/usr/bin/env python3
"""Checks the screenshot lfb_draw leaves: its two rectangles, drawn through
the linear framebuffer, and black around them. Under KVM the display learns
of those writes only from the dirty-page log, so a missing rectangle means
the log did not reach the VGA's damage tracking.
Usage: lfb-check.py SCREENSHOT.png"""
import struct
import sys
import zlib


def read_png_rgb(path):
    """Width, height and rows of (r, g, b) of an 8-bit RGB, non-interlaced
    PNG (what the engine writes)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if (depth, colour, interlace) != (8, 2, 0):
                raise ValueError(f"{path}: not 8-bit RGB without interlacing")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 3
    rows, previous = [], bytearray(stride)
    for y in range(height):
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - 3] if i >= 3 else 0
            up = previous[i]
            up_left = previous[i - 3] if i >= 3 else 0
            if filt == 1:
                line[i] = (line[i] + left) & 0xff
            elif filt == 2:
                line[i] = (line[i] + up) & 0xff
            elif filt == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xff
            elif filt == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + pred) & 0xff
        rows.append(line)
        previous = line
    return width, height, rows


def main():
    width, height, rows = read_png_rgb(sys.argv[1])
    if (width, height) != (640, 480):
        print(f"FAIL: the screen is {width}x{height}, not 640x480")
        return 1

    def pixel(x, y):
        return tuple(rows[y][3 * x:3 * x + 3])

    orange, blue, black = (0xff, 0x80, 0x00), (0x00, 0x80, 0xff), (0, 0, 0)
    checks = [((80, 40), orange), ((239, 119), orange), ((160, 80), orange),
              ((400, 300), blue), ((559, 379), blue), ((480, 340), blue),
              ((79, 40), black), ((240, 119), black), ((320, 240), black),
              ((10, 10), black), ((560, 379), black), ((630, 470), black)]
    bad = [f"({x},{y}) is {pixel(x, y)}, expected {want}" for (x, y), want in checks
           if pixel(x, y) != want]
    if bad:
        print("FAIL: " + "; ".join(bad))
        return 1
    print("lfb-check: both rectangles drawn through the LFB are on the screen")
    return 0


sys.exit(main())
