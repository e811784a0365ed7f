#!/bin/sh
# Installs every package Vivarium needs to build, run and test, on Debian 12
# or Ubuntu 22.04 and later. Installs only what is missing; safe to re-run.
set -e

packages="
  build-essential meson ninja-build pkg-config nasm clang-format
  libglib2.0-dev libzydis-dev zlib1g-dev libzstd-dev libpng-dev libpulse-dev libsdl2-dev libvncserver-dev libjson-glib-dev
  seabios
  libgtk-3-dev gettext appstream desktop-file-utils
"
test_packages="
  python3 clang libclang-rt-dev qemu-utils qemu-system-x86 libunicorn-dev
  cpio xorriso mtools gcc-multilib xz-utils zstd pulseaudio pulseaudio-utils sox
  xvfb xauth dbus dbus-x11 at-spi2-core python3-dogtail python3-gi gir1.2-gtk-3.0
  imagemagick
  vncsnapshot gir1.2-gtk-vnc-2.0
  libglib-testing-0-dev
"

case "$1" in
  --test) packages="$packages $test_packages" ;;
esac

missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
else
  sudo="sudo"
fi
echo "install-deps: installing$missing"
$sudo apt-get update -qq || echo "install-deps: apt-get update reported a problem; trying the install anyway" >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
