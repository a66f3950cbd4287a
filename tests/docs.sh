#!/bin/sh
# The manuals keep up with the code: every configuration key (as
# `natguard config` lists them) has an entry in natguard.conf(5) and a
# commented line in conf/natguard.conf; every subcommand and long option
# of the usage is in natguard(8), which has the sections a manual needs.
set -u
name=docs
: "${NATGUARD:?}"
srcdir=$(cd "$(dirname "$0")/.." && pwd)
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
echo "$name: $pass passed, $fail failed ($(echo "$keys" | wc -l) keys)"
[ $fail -eq 0 ]
