#!/usr/bin/env python3
"""Extract the divide-error (#DE) cases of the SingleStepTests 80286 DIV/IDIV
files: operands, FLAGS before, and the FLAGS image the CPU pushed.

Usage: de_cases.py DIR [FILE...]   (FILE like F6.6; default all four)
Prints one line per case: file idx dividend divisor flags_in pushed
"""
import gzip
import json
import sys

SEG_PREFIX = {0x26: "es", 0x2E: "cs", 0x36: "ss", 0x3E: "ds"}


def effective(bytes_, regs):
    """Return (reg_index or None, segment, offset) of the ModRM operand."""
    i = 0
    seg = None
    while bytes_[i] in SEG_PREFIX or bytes_[i] in (0xF0, 0xF2, 0xF3):
        if bytes_[i] in SEG_PREFIX:
            seg = SEG_PREFIX[bytes_[i]]
        i += 1
    modrm = bytes_[i + 1]
    mod, rm = modrm >> 6, modrm & 7
    if mod == 3:
        return rm, None, None
    disp = 0
    if mod == 0 and rm == 6:
        disp = bytes_[i + 2] | bytes_[i + 3] << 8
        base, dseg = 0, "ds"
    else:
        base = [regs["bx"] + regs["si"], regs["bx"] + regs["di"],
                regs["bp"] + regs["si"], regs["bp"] + regs["di"],
                regs["si"], regs["di"], regs["bp"], regs["bx"]][rm]
        dseg = "ss" if rm in (2, 3, 6) else "ds"
        if mod == 1:
            disp = bytes_[i + 2]
            if disp >= 0x80:
                disp -= 0x100
        elif mod == 2:
            disp = bytes_[i + 2] | bytes_[i + 3] << 8
    return None, seg or dseg, (base + disp) & 0xFFFF


def cases(directory, name):
    word = name.startswith("F7")
    with gzip.open(f"{directory}/{name}.jsonl.gz", "rt") as f:
        for line in f:
            t = json.loads(line)
            exc = t.get("exception")
            if not exc or exc["number"] != 0:
                continue
            regs = t["initial"]["regs"]
            ram = dict(t["initial"]["ram"])
            fram = dict(t["final"]["ram"])
            reg, seg, off = effective(t["bytes"], regs)
            if reg is not None:
                if word:
                    divisor = regs[["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"][reg]]
                else:
                    r16 = regs[["ax", "cx", "dx", "bx"][reg & 3]]
                    divisor = (r16 >> 8) if reg & 4 else (r16 & 0xFF)
            else:
                lin = (regs[seg] << 4) + off
                divisor = ram[lin]
                if word:
                    lin2 = (regs[seg] << 4) + ((off + 1) & 0xFFFF)
                    divisor |= ram[lin2] << 8
            if word:
                dividend = regs["dx"] << 16 | regs["ax"]
            else:
                dividend = regs["ax"]
            # The FLAGS word of the frame is at SS:SP+4 after the exception;
            # the data's flag_address is off by one where SP is odd.
            fregs = t["final"]["regs"]
            ss, sp = fregs.get("ss", regs["ss"]), fregs.get("sp", regs["sp"])
            lo = (ss << 4) + ((sp + 4) & 0xFFFF)
            hi = (ss << 4) + ((sp + 5) & 0xFFFF)
            pushed = fram.get(lo, ram.get(lo, 0)) | fram.get(hi, ram.get(hi, 0)) << 8
            yield t["idx"], dividend, divisor, regs["flags"], pushed


def main():
    directory = sys.argv[1]
    names = sys.argv[2:] or ["F6.6", "F6.7", "F7.6", "F7.7"]
    for name in names:
        for idx, dividend, divisor, fin, pushed in cases(directory, name):
            print(f"{name} {idx} {dividend:x} {divisor:x} {fin:04x} {pushed:04x}")


if __name__ == "__main__":
    main()
