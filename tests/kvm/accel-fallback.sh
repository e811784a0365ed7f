#!/bin/bash
# Where no /dev/kvm can be opened: --accel kvm refuses to start with exit
# status 2 and one line saying why, and --accel auto says that it falls back
# to dbt and why, then runs the guest. Skipped (77) where /dev/kvm opens.
#
# Usage: accel-fallback.sh ENGINE GUEST_IMAGE
set -u
engine=$1
image=$2
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    echo "SKIP: /dev/kvm is usable here; the fallback cannot be seen"
    exit 77
fi
err=$(mktemp)
trap 'rm -f "$err"' EXIT
failed=0

"$engine" --headless --no-reboot --timeout 60 --accel kvm --bios "$image" >/dev/null 2>"$err"
status=$?
lines=$(wc -l < "$err")
if [ $status -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q '^vivarium-engine: --accel kvm: .*/dev/kvm' "$err"; then
    echo "FAIL: --accel kvm: status $status (want 2), stderr ($lines lines, want one naming /dev/kvm):"
    cat "$err"
    failed=1
else
    echo "ok: --accel kvm refuses: $(cat "$err")"
fi

"$engine" --headless --no-reboot --timeout 60 --accel auto --bios "$image" >/dev/null 2>"$err"
status=$?
if [ $status -ne 1 ] || ! grep -q 'KVM is not usable (.*/dev/kvm.*); using dbt' "$err"; then
    echo "FAIL: --accel auto: status $status (want 1, the guest's pass), stderr:"
    cat "$err"
    failed=1
else
    echo "ok: --accel auto falls back: $(cat "$err")"
fi
exit $failed
