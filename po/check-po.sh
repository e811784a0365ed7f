#!/bin/sh
# Fails when translations fall behind the code:
#  - a file with translatable strings is missing from POTFILES.in, or the list
#    is not sorted;
#  - a LINGUAS language's .po lacks a translation for a current string, or has
#    a fuzzy one.
# Usage: check-po.sh SOURCE_ROOT
set -u
cd "$1" || exit 1
status=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

grep -v '^#' po/POTFILES.in | grep -v '^$' >"$work/listed"
if ! LC_ALL=C sort -c "$work/listed" 2>/dev/null; then
    echo "po/POTFILES.in is not sorted"
    status=1
fi

{
    grep -rlE '(^|[^A-Za-z_])N?_\("' app --include='*.c'
    grep -rl 'translatable="yes"' app --include='*.ui'
    ls data/*.desktop.in data/*.metainfo.xml.in data/*.gschema.xml
} | LC_ALL=C sort -u >"$work/needed"
missing=$(LC_ALL=C comm -23 "$work/needed" "$work/listed")
if [ -n "$missing" ]; then
    echo "missing from po/POTFILES.in:"
    echo "$missing"
    status=1
fi

# The same extraction as meson's i18n.gettext(preset: 'glib').
xgettext --package-name=vivarium --from-code=UTF-8 --add-comments \
    --keyword=_ --keyword=N_ --keyword=C_:1c,2 --keyword=NC_:1c,2 \
    --keyword=g_dcgettext:2 --keyword=g_dngettext:2,3 --keyword=g_dpgettext2:2c,3 \
    --files-from="$work/listed" --output="$work/vivarium.pot" || exit 1

for language in $(grep -v '^#' po/LINGUAS); do
    msgmerge --quiet --no-fuzzy-matching --output-file="$work/$language.po" \
        "po/$language.po" "$work/vivarium.pot" || exit 1
    stats=$(LC_ALL=C msgfmt --check --statistics -o /dev/null "$work/$language.po" 2>&1) || {
        echo "$language: $stats"
        status=1
        continue
    }
    case "$stats" in
    *fuzzy* | *untranslated*)
        echo "po/$language.po is incomplete: $stats"
        status=1
        ;;
    *) echo "$language: $stats" ;;
    esac
done
exit "$status"
