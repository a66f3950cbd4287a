#!/bin/sh
# The manuals keep up with the code: every configuration key (as
# `natguard config` lists them) has an entry in natguard.conf(5) and a
# commented line in conf/natguard.conf; every subcommand and long option
# of the usage is in natguard(8), which has the sections a manual needs.
set -u
name=docs
: "${NATGUARD:?}"
srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "$(dirname "$NATGUARD")/.." && pwd)
man8=$srcdir/man/natguard.8
man5=$srcdir/man/natguard.conf.5
conf=$srcdir/conf/natguard.conf
pass=0 fail=0
check() {	# label, then a command that must succeed
	label=$1; shift
	if "$@" >/dev/null 2>&1; then pass=$((pass + 1)); else
		echo "FAIL: $label"; fail=$((fail + 1)); fi
}
keys=$("$NATGUARD" config -c /dev/null | cut -d' ' -f1)
for k in $keys; do
	check "natguard.conf(5) has an entry for $k" \
	    grep -qE "^\.B[R]? $k( |\$)" "$man5"
	check "conf/natguard.conf shows $k" grep -qE "^#? ?$k =" "$conf"
done
usage=$("$NATGUARD" -h)
for cmd in check gateways config doctor audit migrate; do
	check "usage lists $cmd" sh -c "echo \"\$0\" | grep -q 'natguard $cmd'" "$usage"
	check "natguard(8) describes $cmd" grep -qE "^\.B $cmd$" "$man8"
done
for opt in $(echo "$usage" | grep -oE -- '--[a-z-]+' | sort -u); do
	esc=$(printf '%s' "$opt" | sed 's/-/\\-/g')
	check "natguard(8) documents $opt" grep -qF -- "$esc" "$man8"
done
for sect in SYNOPSIS DESCRIPTION COMMANDS OPTIONS LOGS METRICS SIGNALS \
    "EXIT STATUS" PRIVILEGES FILES EXAMPLES; do
	check "natguard(8) has $sect" grep -qx ".SH $sect" "$man8"
done
for sect in DESCRIPTION EXAMPLE FILES; do
	check "natguard.conf(5) has $sect" grep -qx ".SH $sect" "$man5"
done
# The README and its topic documents: each document is linked from the
# README, distributed and installed (Makefile.am's DOC_FILES), says first
# whom it is for, and every file any of them names is in the tree.
for doc in "$srcdir"/README_FILES/*; do
	d=README_FILES/$(basename "$doc")
	check "the README links $d" grep -qF "$d" "$srcdir/README"
	check "Makefile.am's DOC_FILES lists $d" grep -qF "$d" \
	    "$srcdir/Makefile.am"
	check "$d says whom it is for" sh -c \
	    'head -n 6 "$0" | grep -q "^Who this is for: "' "$doc"
done
check "the README is under 250 lines" \
    test "$(wc -l < "$srcdir/README")" -lt 250
for doc in "$srcdir/README" "$srcdir"/README_FILES/*; do
	for p in $(grep -oE '(^|[ (`"])(tests|conf|src|man|debian|README_FILES)/[A-Za-z0-9_.*/-]*[A-Za-z0-9_*]' \
	    "$doc" | sed -E 's/^[ (`"]//' | sort -u); do
		# A pattern (tests/e2e/docker-*.sh) must match a file: a
		# source, or a program built beside natguard (a VPATH build).
		check "$(basename "$doc") names $p, which exists" sh -c \
		    'for x in $0/$1 $0/$1.c $2/$1; do [ -e "$x" ] && exit 0; done
		    exit 1' "$srcdir" "$p" "$builddir"
	done
done
echo "$name: $pass passed, $fail failed ($(echo "$keys" | wc -l) keys)"
[ $fail -eq 0 ]
