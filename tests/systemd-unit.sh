#!/bin/sh
# conf/systemd/natguard.service(.in): systemd's own checks.  `verify` must
# accept it (pointed at the binary under test), and `security` must rate
# its sandboxing at an exposure of at most 3.0 ("OK" or better).
set -u
name=systemd-unit
command -v systemd-analyze >/dev/null 2>&1 ||
    { echo "SKIP: $name: systemd-analyze is not installed"; exit 77; }
: "${NATGUARD:?}"
srcdir=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s|@sbindir@/natguard|$NATGUARD|" -e "s|@sysconfdir@|/etc|" \
    "$srcdir/conf/systemd/natguard.service.in" > "$tmp/natguard.service"
cp "$srcdir/conf/systemd/natguard.socket" "$tmp/natguard.socket"

pass=0 fail=0
if systemd-analyze verify --man=no "$tmp/natguard.service" \
    "$tmp/natguard.socket" > "$tmp/v" 2>&1
then
	echo "PASS: systemd-analyze verify (service and socket)"
	pass=$((pass + 1))
else
	echo "FAIL: systemd-analyze verify:"; sed 's/^/    /' "$tmp/v"
	fail=$((fail + 1))
fi
systemd-analyze security --offline=yes "$tmp/natguard.service" \
    > "$tmp/s" 2>&1
level=$(sed -nE 's/.*Overall exposure level for natguard.service: ([0-9.]+).*/\1/p' "$tmp/s")
if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 3.0) }'; then
	echo "PASS: exposure $level (at most 3.0)"; pass=$((pass + 1))
else
	echo "FAIL: exposure ${level:-unknown}, expected at most 3.0"
	grep -E '✗' "$tmp/s" | sed 's/^/    /'
	fail=$((fail + 1))
fi
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
