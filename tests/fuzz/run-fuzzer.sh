#!/bin/sh
# Runs one libFuzzer target for a bounded time on its corpus, seeding the
# corpus first where the target can write a valid input itself.
# Usage: run-fuzzer.sh TARGET SECONDS CORPUS_DIR
# Exits non-zero when the fuzzer finds a crash, a leak or undefined behaviour.
target=$1
seconds=$2
corpus=$3
mkdir -p "$corpus"
VIVARIUM_FUZZ_WRITE_SEED="$corpus/seed" "$target" -runs=0 "$corpus" >/dev/null 2>&1
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    exec "$target" -max_total_time="$seconds" -max_len=1048576 -print_final_stats=1 "$corpus"
