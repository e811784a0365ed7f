#!/bin/sh
# Makes the three boot media of the firmware tests from one boot program:
# a 1.44 MB floppy image, a 1 MiB hard disk image and an El Torito CD (no
# emulation, four sectors loaded).
# Usage: make-boot-media.sh PROGRAM FLOPPY DISK CD
set -e
program=$1
cp "$program" "$2" && truncate -s 1474560 "$2"
cp "$program" "$3" && truncate -s 1048576 "$3"
tree=$(mktemp -d)
cp "$program" "$tree/boot.bin"
xorriso -as mkisofs -quiet -o "$4" -b boot.bin -no-emul-boot -boot-load-size 4 "$tree" 2>/dev/null
rm -rf "$tree"
