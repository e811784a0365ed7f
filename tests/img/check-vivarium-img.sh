#!/bin/sh
# vivarium-img makes images that qemu-img accepts, of the size asked for, and
# refuses bad requests with a message and status 1 or 2, leaving no file.
# Usage: check-vivarium-img.sh VIVARIUM_IMG
set -eu
tool=$(realpath "$1")
command -v qemu-img >/dev/null 2>&1 || { echo "qemu-img not found: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "FAIL: $*"; exit 1; }

# virtual size in bytes, as qemu-img reads it
qemu_size() { qemu-img info --output=json "$1" | sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p'; }

for size in 1M 64MiB 8G 2T 1474560; do
    "$tool" create "disk-$size.qcow2" "$size"
    qemu-img check -q "disk-$size.qcow2" || fail "qemu-img check disk-$size.qcow2"
    format=$(qemu-img info --output=json "disk-$size.qcow2" | sed -n 's/.*"format": *"\([a-z0-9]*\)".*/\1/p')
    [ "$format" = qcow2 ] || fail "disk-$size.qcow2 is $format"
    case $size in
    *M | *MiB) bytes=$((${size%%M*} << 20)) ;;
    *G) bytes=$((${size%G} << 30)) ;;
    *T) bytes=$((${size%T} << 40)) ;;
    *) bytes=$size ;;
    esac
    [ "$(qemu_size "disk-$size.qcow2")" = "$bytes" ] || fail "disk-$size.qcow2 is not $bytes bytes"
    "$tool" info "disk-$size.qcow2" | grep -qx "size: $bytes" || fail "info disagrees on $size"
    # Nothing but the tables: a new image takes well under a megabyte.
    [ "$(stat -c %s "disk-$size.qcow2")" -lt 1048576 ] || fail "disk-$size.qcow2 is not small"
    echo "ok $size"
done

# A copy-on-write image on top of a raw file, sized after it.
truncate -s 3M base.raw
"$tool" create --backing base.raw overlay.qcow2 0
qemu-img check -q overlay.qcow2 || fail "qemu-img check overlay.qcow2"
[ "$(qemu_size overlay.qcow2)" = 3145728 ] || fail "overlay.qcow2 is not the backing file's size"
qemu-img info overlay.qcow2 | grep -q "backing file: base.raw" || fail "overlay.qcow2 has no backing file"
echo "ok backing file"

# Refusals: each with status 1 or 2, a message, and no file left behind.
refuse() {
    expected=$1 file=$2
    shift 2
    set +e
    message=$("$tool" create "$@" 2>&1)
    status=$?
    set -e
    [ "$status" -eq "$expected" ] || fail "create $* exited $status, not $expected"
    case $message in vivarium-img:*) ;; *) fail "create $* said: $message" ;; esac
    [ ! -e "$file" ] || [ "$file" = disk-1M.qcow2 ] || fail "create $* left $file"
    echo "ok refused: $message" | head -1
}
refuse 2 bad.qcow2 bad.qcow2 12Q
refuse 2 bad.qcow2 bad.qcow2 1000
refuse 2 bad.qcow2 bad.qcow2 0
refuse 2 bad.qcow2 bad.qcow2 99999999999999999999
refuse 1 huge.qcow2 huge.qcow2 1024T
refuse 1 missing/dir.qcow2 missing/dir.qcow2 1M
refuse 1 disk-1M.qcow2 disk-1M.qcow2 1M
echo "all passed"
