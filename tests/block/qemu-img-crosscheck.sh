#!/bin/sh
# Cross-checks engine/block against qemu-img: images Vivarium writes must pass
# `qemu-img check` and compare equal to raw files holding the same data, and
# images qemu-img makes (plain, with backing files, compressed, odd cluster
# and refcount sizes, version 2) must read back correctly.
# Usage: qemu-img-crosscheck.sh BLOCKTOOL
set -eu
BT=$(realpath "$1")
command -v qemu-img >/dev/null 2>&1 || { echo "qemu-img not found: skipped"; exit 77; }
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"

step() { echo "== $*"; }
check() { qemu-img check -q "$1"; }
same() { qemu-img compare -q "$1" "$2"; "$BT" compare "$1" "$2"; }

# Scattered writes: misaligned, cluster-crossing, far apart (new L2 tables).
scatter() {
    "$BT" write-pattern "$1" 1 0 512
    "$BT" write-pattern "$1" 2 1000 70000
    "$BT" write-pattern "$1" 3 5000000 131072
    "$BT" write-pattern "$1" 4 600000000 3000
    "$BT" write-pattern "$1" 5 1060000000 8388608
    "$BT" write-pattern "$1" 6 1073741311 1
    "$BT" write-pattern "$1" 7 1234 10   # overwrite inside an allocated cluster
}

step "a new qcow2 written by Vivarium"
"$BT" create new.qcow2 1G
truncate -s 1G new.raw
scatter new.qcow2
scatter new.raw
check new.qcow2
same new.qcow2 new.raw
"$BT" check-pattern new.qcow2 5 1060000000 8388608

step "an empty qcow2 made by qemu-img, written by Vivarium"
qemu-img create -q -f qcow2 q.qcow2 1G
scatter q.qcow2
check q.qcow2
same q.qcow2 new.raw

step "data written by qemu-io, read by Vivarium"
if command -v qemu-io >/dev/null 2>&1; then
    qemu-img create -q -f qcow2 io.qcow2 64M
    qemu-io -f qcow2 -c "write -P 0x5a 4096 1M" -c "write -z 2M 128k" -c "write -P 7 3M 512" io.qcow2 >/dev/null
    qemu-img convert -O raw io.qcow2 io.raw
    "$BT" compare io.qcow2 io.raw
fi

step "a qemu-img overlay over a raw base: reads and copy-on-write"
truncate -s 64M base.raw
"$BT" write-pattern base.raw 9 0 67108864
qemu-img create -q -f qcow2 -b base.raw -F raw over.qcow2
"$BT" compare over.qcow2 base.raw
cp base.raw expect.raw
for f in over.qcow2 expect.raw; do
    "$BT" write-pattern $f 10 100 200       # partial cluster: COW from the base
    "$BT" write-pattern $f 11 65536 65536   # whole cluster
    "$BT" write-pattern $f 12 30000000 99999
done
check over.qcow2
same over.qcow2 expect.raw

step "a Vivarium overlay over a qemu-img qcow2 base, with a relative name"
qemu-img convert -q -O qcow2 expect.raw mid.qcow2
"$BT" create top.qcow2 0 mid.qcow2
qemu-img info top.qcow2 | grep -q "backing file: mid.qcow2"
"$BT" compare top.qcow2 expect.raw
for f in top.qcow2 expect.raw; do
    "$BT" write-pattern $f 13 65000 1000
done
check top.qcow2
same top.qcow2 expect.raw

step "compressed clusters from qemu-img convert -c"
# Text compresses; the random pattern around it is stored uncompressed.
i=0
while [ $i -lt 20000 ]; do echo "line $i of a compressible disk image"; i=$((i + 1)); done > text
dd if=text of=expect.raw bs=64k seek=100 conv=notrunc status=none
qemu-img convert -q -c -O qcow2 expect.raw comp.qcow2
qemu-img check comp.qcow2 | grep -Eq "[1-9][0-9.]*% compressed"
"$BT" compare comp.qcow2 expect.raw
for f in comp.qcow2 expect.raw; do
    "$BT" write-pattern $f 20 6600000 200   # rewrites a compressed cluster
    "$BT" write-pattern $f 14 70000 5000    # rewrites compressed clusters
    "$BT" write-pattern $f 15 0 512
done
check comp.qcow2
same comp.qcow2 expect.raw

step "512-byte clusters: the refcount table must grow"
qemu-img create -q -f qcow2 -o cluster_size=512 small.qcow2 64M
truncate -s 64M small.raw
for f in small.qcow2 small.raw; do
    "$BT" write-pattern $f 16 0 20000000
    "$BT" write-pattern $f 17 40000000 777
done
check small.qcow2
same small.qcow2 small.raw

for bits in 1 8 64; do
    step "refcount_bits=$bits"
    qemu-img create -q -f qcow2 -o refcount_bits=$bits,cluster_size=4096 rc$bits.qcow2 32M
    truncate -s 32M rc$bits.raw
    for f in rc$bits.qcow2 rc$bits.raw; do
        "$BT" write-pattern $f 18 12345 3000000
    done
    check rc$bits.qcow2
    same rc$bits.qcow2 rc$bits.raw
done

step "a version 2 image"
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 32M
truncate -s 32M v2.raw
for f in v2.qcow2 v2.raw; do
    "$BT" write-pattern $f 19 1000 100000
done
check v2.qcow2
same v2.qcow2 v2.raw

step "refused: encryption, unknown features, truncation"
qemu-img create -q -f qcow2 --object secret,id=s0,data=x -o encrypt.format=luks,encrypt.key-secret=s0 enc.qcow2 16M
if "$BT" info enc.qcow2 2>err; then echo "encrypted image accepted"; exit 1; fi
grep -q "encrypted" err
head -c 100 new.qcow2 > trunc.qcow2
if "$BT" info trunc.qcow2 2>err; then echo "truncated image accepted"; exit 1; fi
cat err
echo "all cross-checks passed"
