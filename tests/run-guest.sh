#!/bin/sh
# Runs one guest test program under vivarium-engine and turns the guest's
# debug-exit result into a test result: guest value 0 (engine status 1) passes.
# Usage: run-guest.sh ENGINE ENGINE-OPTIONS...
#   e.g. run-guest.sh vivarium-engine --bios pm_entry.bin --accel interp
engine=$1
shift
"$engine" --headless --no-reboot --timeout 60 "$@"
status=$?
if [ "$status" -eq 1 ]; then
    exit 0
fi
if [ $((status % 2)) -eq 1 ]; then
    echo "run-guest: the guest reported failure code $(((status - 1) / 2))" >&2
else
    echo "run-guest: the engine ended with status $status (0 power off, 2 refused at start, 4 engine error, 8 reset/triple fault, 124 timeout)" >&2
fi
exit 1
