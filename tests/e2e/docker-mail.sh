#!/bin/sh
# The mail container of tests/e2e/docker-nat.sh: dnsmasq with the test
# zone on 127.0.0.1, natguard, Postfix, all configured from /ng (the
# test's directory, bind-mounted).  Writes "ready" to /ng/ready (a fifo
# the test reads) once all three serve, or "failed: WHY".  With
# NG_SIDECAR=1 natguard is not started here: a sidecar container in this
# one's network namespace serves 127.0.0.1:10041.
set -u
ng=/ng
say() { echo "$1" > "$ng/ready"; }
fail() { say "failed: $*"; exit 1; }

dnsmasq --conf-file="$ng/zone.conf" --user=root --pid-file=/run/dnsmasq.pid \
    --log-facility="$ng/dnsmasq.log" || fail "dnsmasq"	# bound on return

# natguard: ready when it logs "listening on".
natguard_start() {
	mkfifo /run/ng.fifo
	/usr/local/sbin/natguard -c "$ng/natguard.conf" 2>/run/ng.fifo &
	ngpid=$!
	while read -r line; do
		echo "$line" >> "$ng/natguard.log"
		case "$line" in *"listening on"*) break ;; esac
	done < /run/ng.fifo
	kill -0 $ngpid 2>/dev/null ||
	    fail "natguard: $(tail -n 3 "$ng/natguard.log")"
	cat /run/ng.fifo >> "$ng/natguard.log" &
}
ngpid=
[ "${NG_SIDECAR:-}" = 1 ] || natguard_start

cp "$ng/main.cf" "$ng/master.cf" /etc/postfix/
postfix start >"$ng/postfix.out" 2>&1 || fail "postfix: $(cat "$ng/postfix.out")"

stop() {
	postfix stop >/dev/null 2>&1
	[ -n "$ngpid" ] && kill $ngpid && wait $ngpid
	exit 0
}
trap stop TERM INT
say ready
while :; do sleep 3600 & wait $!; done
