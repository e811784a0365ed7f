#!/bin/bash
# Fetches the real guests the firmware tests boot, from Debian's archive, and
# builds what is made from them (a busybox initramfs, an ISOLINUX CD, a
# SYSLINUX hard disk). Nothing
# here is committed: everything lands in the cache folder given as $1
# (default: $XDG_CACHE_HOME/vivarium-guests). Safe to re-run; it only fetches
# what is missing. Prints the cache folder on success.
#
# Needs (installed by scripts/install-deps.sh --test): dpkg-dev tools, cpio,
# xorriso, mtools. The syslinux packages come from the archive like the guests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/vivarium-guests}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd) # the steps below change folder
mkdir -p "$cache/debs" "$cache/x"
# Tests running side by side share one cache: one fetches, the others wait.
exec 9>"$cache/.lock"
flock 9
cd "$cache/debs"

if ! dpkg --print-foreign-architectures | grep -qx i386; then
    dpkg --add-architecture i386
fi
# The i386 package lists are only needed for the kernel and busybox. A failed
# update of one index (a mirror sync in progress) must not stop the run when
# the lists we need are there.
if ! apt-cache show busybox-static:i386 >/dev/null 2>&1; then
    apt-get update -qq || echo "fetch-guests: apt-get update reported a problem; going on" >&2
fi

kernel_pkg=$(apt-cache depends linux-image-686:i386 2>/dev/null |
    sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*-686\)\(:i386\)\{0,1\}$/\1/p' | head -n1)
if [ -z "$kernel_pkg" ]; then
    echo "fetch-guests: cannot resolve linux-image-686:i386 in the package lists" >&2
    exit 1
fi
# The -686 package is a signed wrapper on some releases; the unsigned one holds the image.
kernel_unsigned="${kernel_pkg}-unsigned"
if ! apt-cache show "$kernel_unsigned:i386" >/dev/null 2>&1; then
    kernel_unsigned=$kernel_pkg
fi

fetch() { # package[:arch] folder
    local pkg=$1 dir=$2
    if [ ! -d "$cache/x/$dir" ]; then
        rm -f ./"${pkg%%:*}"_*.deb
        apt-get download -qq "$pkg"
        mkdir -p "$cache/x/$dir.tmp"
        dpkg -x ./"${pkg%%:*}"_*.deb "$cache/x/$dir.tmp"
        mv "$cache/x/$dir.tmp" "$cache/x/$dir"
    fi
}
fetch "$kernel_unsigned:i386" linux
fetch busybox-static:i386 busybox
fetch memtest86+ memtest86
fetch syslinux-common syslinux-common
fetch isolinux isolinux
fetch syslinux syslinux

vmlinuz=$(ls "$cache"/x/linux/boot/vmlinuz-* | head -n1)
ln -sf "$vmlinuz" "$cache/vmlinuz-686"

if [ ! -f "$cache/initramfs.cpio.gz" ] || [ "$here/initramfs-init" -nt "$cache/initramfs.cpio.gz" ]; then
    root=$(mktemp -d)
    mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin}
    cp "$cache/x/busybox/bin/busybox" "$root/bin/busybox"
    cp "$here/initramfs-init" "$root/init"
    chmod +x "$root/init"
    # The guest's busybox is i386 and does not run on this host: the archive
    # is built with the host's cpio, and the applet links are made by the
    # guest's init at boot.
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$cache/initramfs.cpio.gz.tmp"
    mv "$cache/initramfs.cpio.gz.tmp" "$cache/initramfs.cpio.gz"
    rm -rf "$root"
fi

if { [ ! -f "$cache/isolinux.iso" ] || [ "$cache/initramfs.cpio.gz" -nt "$cache/isolinux.iso" ] ||
     [ "$here/isolinux.cfg" -nt "$cache/isolinux.iso" ]; } && command -v xorriso >/dev/null; then
    iso=$(mktemp -d)
    mkdir -p "$iso/isolinux" "$iso/boot"
    modules="$cache/x/syslinux-common/usr/lib/syslinux/modules/bios"
    cp "$cache/x/isolinux/usr/lib/ISOLINUX/isolinux.bin" "$modules"/{ldlinux,menu,libutil,libcom32}.c32 "$iso/isolinux/"
    cp "$here/isolinux.cfg" "$iso/isolinux/"
    cp "$vmlinuz" "$iso/boot/vmlinuz"
    cp "$cache/initramfs.cpio.gz" "$iso/boot/initrd.gz"
    xorriso -as mkisofs -quiet -o "$cache/isolinux.iso.tmp" \
        -isohybrid-mbr "$cache/x/isolinux/usr/lib/ISOLINUX/isohdpfx.bin" \
        -c isolinux/boot.cat -b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4 \
        -boot-info-table -V VIVARIUM "$iso"
    mv "$cache/isolinux.iso.tmp" "$cache/isolinux.iso"
    rm -rf "$iso"
fi
# A hard disk as an installer leaves one: an MBR (syslinux's mbr.bin) with
# one active FAT16 partition from 1 MiB holding SYSLINUX, the kernel and the
# initramfs. Built on the image file with mtools and syslinux's mtools
# installer: no loop device, no root.
le32() { # the four little-endian bytes of $1, for printf
    printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) \
        $(($1 >> 16 & 255)) $(($1 >> 24 & 255))
}
disk="$cache/linux-disk.img"
if [ ! -f "$disk" ] || [ "$cache/initramfs.cpio.gz" -nt "$disk" ] ||
   [ "$here/syslinux.cfg" -nt "$disk" ]; then
    tmp="$disk.tmp"
    sectors=$((32 * 2048)) start=2048
    rm -f "$tmp"
    truncate -s $((sectors * 512)) "$tmp"
    dd if="$cache/x/syslinux-common/usr/lib/syslinux/mbr/mbr.bin" of="$tmp" conv=notrunc status=none
    # The partition entry: active, type 0x0e (FAT16, LBA), CHS fields
    # marked "use LBA"; then the boot signature.
    printf "\x80\xfe\xff\xff\x0e\xfe\xff\xff$(le32 $start)$(le32 $((sectors - start)))" |
        dd of="$tmp" bs=1 seek=446 conv=notrunc status=none
    printf '\x55\xaa' | dd of="$tmp" bs=1 seek=510 conv=notrunc status=none
    part="$tmp@@$((start * 512))"
    mformat -i "$part" -T $((sectors - start)) -h 16 -s 63 -H $start -v VIVARIUM ::
    "$cache/x/syslinux/usr/bin/syslinux" --offset $((start * 512)) --install "$tmp"
    mcopy -i "$part" "$here/syslinux.cfg" ::/syslinux.cfg
    mcopy -i "$part" "$vmlinuz" ::/vmlinuz
    mcopy -i "$part" "$cache/initramfs.cpio.gz" ::/initrd.gz
    mv "$tmp" "$disk"
fi
echo "$cache" >&2
