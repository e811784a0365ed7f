#!/bin/sh
# Fails when any C file in the tree differs from what clang-format makes of it.
cd "$1" || exit 1
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find app engine tests bench -name '*.[ch]')
[ -n "$files" ] || exit 0
clang-format --dry-run --Werror $files
