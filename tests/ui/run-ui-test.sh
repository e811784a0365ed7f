#!/bin/sh
# Runs a Python/dogtail script against the app under its own X server (Xvfb) and
# its own session bus, with a throw-away home, so that the person's settings,
# library and desktop are never touched.
#
# Usage: run-ui-test.sh APP ENGINE SCHEMA_DIR SCRIPT
#   APP        the vivarium binary
#   ENGINE     the engine binary the app should start (VIVARIUM_ENGINE)
#   SCHEMA_DIR a directory with the compiled GSettings schema
#   SCRIPT     the Python script that drives the app
# Exit status: the script's; 77 (skipped) when Xvfb, dbus-run-session or dogtail
# are missing.
set -u

app=$1 engine=$2 schema_dir=$3 script=$4

if [ -z "${VIV_UI_IN_SESSION:-}" ]; then
    for tool in Xvfb dbus-run-session; do
        command -v "$tool" >/dev/null 2>&1 || { echo "$tool is missing; skipping"; exit 77; }
    done
    /usr/bin/python3 -c 'import dogtail' 2>/dev/null || { echo "dogtail is missing; skipping"; exit 77; }

    work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-ui.XXXXXX")
    display_file="$work/display"
    # The X server comes first, so that the session bus and the services it
    # starts (the accessibility registry, which injects synthetic input) know
    # DISPLAY.
    Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$display_file" >"$work/xvfb.log" 2>&1 &
    xvfb=$!
    for _ in $(seq 100); do
        [ -s "$display_file" ] && break
        sleep 0.1
    done
    if [ ! -s "$display_file" ]; then
        echo "Xvfb did not start:"; cat "$work/xvfb.log"
        kill "$xvfb" 2>/dev/null
        exit 1
    fi
    export DISPLAY=":$(cat "$display_file")"
    VIV_UI_IN_SESSION=1 VIVARIUM_UI_WORK="$work" dbus-run-session -- "$0" "$@"
    status=$?
    kill "$xvfb" 2>/dev/null
    wait "$xvfb" 2>/dev/null
    if [ "$status" -eq 0 ]; then
        rm -rf "$work"
    else
        echo "kept $work for inspection"
    fi
    exit "$status"
fi

work=$VIVARIUM_UI_WORK
export HOME="$work/home"
export XDG_CONFIG_HOME="$work/config" XDG_DATA_HOME="$work/data" XDG_CACHE_HOME="$work/cache"
export XDG_RUNTIME_DIR="$work/runtime"
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
export GSETTINGS_SCHEMA_DIR="$schema_dir" GSETTINGS_BACKEND="${GSETTINGS_BACKEND:-memory}"
export GTK_MODULES=gail:atk-bridge NO_AT_BRIDGE=0 GTK_THEME=Adwaita GDK_BACKEND=x11
# No demo VM: the tests begin with an empty library.
export VIVARIUM_DEMO_IMAGE=""
export VIVARIUM_APP="$app" VIVARIUM_ENGINE="$engine"
export VIVARIUM_FAKE_ENGINE_LOG="$work/engine.log"

exec timeout 300 /usr/bin/python3 "$script"
