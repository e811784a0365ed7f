#!/bin/sh
# Writes PNG screenshots of the app's main windows into docs/: the real engine
# runs the demo guest in a throw-away library, under its own X server (Xvfb).
# Look at every picture before committing it.
# Usage: scripts/screenshots.sh [BUILD_DIR]   (default: build)
set -e
cd "$(dirname "$0")/.."
build=${1:-build}
ninja -C "$build" >/dev/null
GSETTINGS_BACKEND=keyfile VIVARIUM_SCREENSHOT_DIR="$PWD/docs" \
VIVARIUM_DEMO_FLOPPY="$PWD/$build/guests/demo/vivarium-demo.img" \
VIVARIUM_IMG="$PWD/$build/engine/vivarium-img" \
    tests/ui/run-ui-test.sh \
    "$build/app/vivarium" "$build/engine/vivarium-engine" "$build/data" \
    tests/ui/screenshots.py

# The library in Simplified Chinese, when the zh_CN locale can be built.
locales=$(mktemp -d)
if localedef -i zh_CN -f UTF-8 "$locales/zh_CN.UTF-8" 2>/dev/null; then
    LOCPATH="$locales" LANG=zh_CN.UTF-8 LC_ALL=zh_CN.UTF-8 LANGUAGE=zh_CN \
    VIVARIUM_LOCALEDIR="$PWD/$build/po" VIVARIUM_SCREENSHOT_DIR="$PWD/docs" \
    tests/ui/run-ui-test.sh \
        "$build/app/vivarium" "$build/tests/ui/fake-engine" "$build/data" \
        tests/ui/screenshots-zh.py
fi
rm -rf "$locales"
