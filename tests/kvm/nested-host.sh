#!/bin/bash
# Gives the engine a real /dev/kvm on a machine without one: boots a Debian
# amd64 kernel under `qemu-system-x86_64 -accel tcg -cpu max`, whose emulated
# AMD SVM lets kvm_amd load, shares this machine's / read-only and a work
# folder read-write over virtio-9p, and runs a script from the work folder in
# a chroot of this machine's /, so the project's own binaries use that
# /dev/kvm.
#
# Usage: nested-host.sh CACHE_DIR WORK_DIR SCRIPT [TREE_DIR]
#   CACHE_DIR  where the kernel and initramfs are kept between runs
#   WORK_DIR   shared read-write; SCRIPT (relative to it) runs inside
#   TREE_DIR   shared read-only at its own path, e.g. the build tree: the
#              nested machine mounts a fresh /tmp, which would hide a tree
#              that lives there
# Exit status: SCRIPT's, read from WORK_DIR/nested-rc (QEMU's own status does
# not tell), or 125 when the nested machine could not be set up.
set -euo pipefail
cache=$1
work=$(realpath "$2")
script=$3
tree=$(realpath "${4:-$work}")
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"
cd "$cache"

if [ ! -d x/boot ]; then
    mkdir -p debs x
    kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -n1)
    if [ -z "$kpkg" ]; then
        apt-get update -qq || true
        kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -n1)
    fi
    (cd debs && apt-get download -qq "$kpkg" busybox-static)
    for d in debs/*.deb; do dpkg -x "$d" x; done
fi
kver=$(ls x/lib/modules | head -n1)
if [ ! -f initrd.gz ] || [ "$here/nested-init" -nt initrd.gz ]; then
    mods=x/lib/modules/$kver/kernel
    rm -rf root
    mkdir -p root/{bin,proc,sys,dev,lib/modules}
    cp x/bin/busybox root/bin/busybox
    cp "$here/nested-init" root/init
    chmod +x root/init
    # kvm_amd and what it needs, then virtio-9p for the shared folders; the
    # load order is the dependency order.
    for m in virt/lib/irqbypass arch/x86/kvm/kvm drivers/crypto/ccp/ccp arch/x86/kvm/kvm-amd \
             drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
             drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci fs/netfs/netfs \
             fs/fscache/fscache net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p; do
        f=$(ls "$mods/$m.ko"* | head -n1)
        out=root/lib/modules/$(basename "$m").ko
        case $f in
            *.xz) xz -dc "$f" > "$out" ;;
            *.zst) zstd -dc "$f" > "$out" ;;
            *) cp "$f" "$out" ;;
        esac
        echo "$(basename "$m")" >> root/lib/modules/order
    done
    (cd root && find . | cpio -o -H newc --quiet -R 0:0 | gzip -9) > initrd.gz
fi

rm -f "$work/nested-rc"
timeout 1700 qemu-system-x86_64 -accel tcg -cpu max -m 2048 -smp 1 -nographic -no-reboot \
    -kernel "x/boot/vmlinuz-$kver" -initrd initrd.gz \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on \
    -virtfs "local,path=$tree,mount_tag=tree,security_model=none,readonly=on" \
    -virtfs "local,path=$work,mount_tag=work,security_model=none" \
    -append "console=ttyS0 quiet panic=-1 nested.tree=$tree nested.work=$work nested.run=$script" </dev/null ||
    true
if [ ! -f "$work/nested-rc" ]; then
    echo "nested-host: the nested machine did not run the script" >&2
    exit 125
fi
exit "$(cat "$work/nested-rc")"
