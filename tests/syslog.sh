#!/bin/bash
# log = syslog with no syslog daemon yet, as in docker-mailserver (its
# rsyslog starts after supervisord's programs) or early boot: the start-up
# lines must not be lost.  In a mount namespace whose /dev has no log
# socket, natguard says so and writes every line to stderr as well; once
# a syslog socket is there (a Python receiver, standing in for rsyslog), it says that
# too and logs to syslog alone.
set -u
name=syslog
: "${NATGUARD:?}"
pass=0 fail=0
skip() { echo "SKIP: $name: $*"; exit 77; }
ok() { pass=$((pass + 1)); echo "PASS: $1"; }
ko() { fail=$((fail + 1)); echo "FAIL: $1"; }
# has LABEL REGEX FILE: the line appears within 10 s (the file is the
# readiness signal; never read once).
has() {
	local n=0
	until grep -Eq -- "$2" "$3" 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt 100 ] && { ko "$1 (no /$2/ in $3)"; return 1; }
		sleep 0.1
	done
	ok "$1: $(grep -E -m 1 -- "$2" "$3")"
}

if [ "${NG_SYSLOG_INSIDE:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || skip "needs root for a mount namespace"
		unshare --mount --net true 2>/dev/null ||
	    skip "unshare --mount --net does not work here"
	NG_SYSLOG_INSIDE=1 exec unshare --mount --net "$0" "$@"
fi

tmp=$(mktemp -d)
trap 'kill $ng $rx 2>/dev/null; wait; umount -l /dev; rm -rf "$tmp"' EXIT
ng= rx=
# The stand-in for rsyslog: each datagram a line.
rxpy='import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "ab", buffering=0)
while True:
    out.write(s.recv(65536).rstrip(b"\n") + b"\n")'
ip link set lo up
# A /dev of our own: the devices natguard and its libraries open, no log.
mount --make-rprivate /
mount -t tmpfs -o mode=755 ngdev /dev
for d in null:1:3 zero:1:5 random:1:8 urandom:1:9; do
	IFS=: read -r n ma mi <<< "$d"
	mknod -m 666 "/dev/$n" c "$ma" "$mi"
done
printf 'listen = inet:127.0.0.1:10041\nlog = syslog\ngateways = none\n' \
    > "$tmp/natguard.conf"
"$NATGUARD" -c "$tmp/natguard.conf" 2> "$tmp/stderr" &
ng=$!

has "no syslog socket: said on stderr" \
    '^natguard\[[0-9]+\]: warning: syslog: /dev/log: No such file or directory; logging to stderr as well' \
    "$tmp/stderr"
has "the start-up lines on stderr" \
    '^natguard\[[0-9]+\]: listening on inet:127\.0\.0\.1:10041' "$tmp/stderr"

/usr/bin/python3 -c "$rxpy" /dev/log "$tmp/syslog" &
rx=$!
n=0
until [ -S /dev/log ]; do
	n=$((n + 1))
	[ $n -gt 100 ] && { ko "the receiver made no /dev/log"; break; }
	sleep 0.1
done
# Each reload logs a line; the probe runs once a second at most, so
# reload until natguard has seen the socket.
n=0
until grep -q 'syslog is reachable:' "$tmp/stderr"; do
	kill -HUP $ng
	n=$((n + 1))
	[ $n -gt 30 ] && break
	sleep 0.2
done
has "the syslog socket found: said on stderr" \
    '^natguard\[[0-9]+\]: syslog is reachable: logging there alone' \
    "$tmp/stderr"
has "and in syslog, facility mail" \
    '^<2[0-3]>.*natguard\[[0-9]+\]: syslog is reachable' "$tmp/syslog"
# Every line after that one goes to syslog alone.
lines=$(wc -l < "$tmp/stderr")
want=$(( $(grep -c 'reload:' "$tmp/syslog") + 1 ))
kill -HUP $ng
n=0
until [ "$(grep -c 'reload:' "$tmp/syslog")" -ge "$want" ]; do
	n=$((n + 1))
	[ $n -gt 100 ] && break
	sleep 0.1
done
if [ "$(grep -c 'reload:' "$tmp/syslog")" -lt "$want" ]; then
	ko "then to syslog alone: no reload line in syslog within 10 s"
elif [ "$(wc -l < "$tmp/stderr")" -ne "$lines" ]; then
	ko "then to syslog alone: on stderr still: $(tail -n 1 "$tmp/stderr")"
else
	ok "then to syslog alone: $(grep 'reload:' "$tmp/syslog" | tail -n 1)"
fi
kill $ng
wait $ng
rc=$?
[ $rc -eq 0 ] && ok "exit 0 on SIGTERM" || ko "exit $rc on SIGTERM"
ng=
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
