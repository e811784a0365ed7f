#!/bin/sh
# Writes PNG screenshots of the app's main windows into docs/, using the fake
# engine and a throw-away library.
# Usage: scripts/screenshots.sh [BUILD_DIR]   (default: build)
set -e
cd "$(dirname "$0")/.."
build=${1:-build}
ninja -C "$build" app/vivarium tests/ui/fake-engine data/gschemas.compiled >/dev/null
GSETTINGS_BACKEND=keyfile VIVARIUM_SCREENSHOT_DIR="$PWD/docs" tests/ui/run-ui-test.sh \
    "$build/app/vivarium" "$build/tests/ui/fake-engine" "$build/data" \
    tests/ui/screenshots.py
