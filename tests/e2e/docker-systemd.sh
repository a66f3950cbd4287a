#!/bin/bash
# natguard under systemd, for real: systemd boots as PID 1 in a container
# of a private dockerd; natguard is put there by `make install` (with
# prefix=/usr sysconfdir=/etc, as a distribution would), unit included.
# systemctl start (Type=notify: it returns once natguard said READY=1),
# reload (SIGHUP; a broken file keeps the running settings), the
# sandboxing in force on the live service, restarts and reloads under
# load with natguard.socket and the descriptor store, stop.
set -u

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
. "$srcdir/tests/e2e/docker-lib.sh"
. "$srcdir/tests/e2e/lib.sh"
docker_suite docker-systemd systemd
: "${NATGUARD:?NATGUARD must name the binary}"
builddir=$(cd "$(dirname "$NATGUARD")/.." && pwd)
[ -f "$builddir/Makefile" ] || skip "no Makefile beside $NATGUARD"
host=ngsh$$

# shellcheck disable=SC2046
tar=$(rootfs systemd systemd systemd-sysv dbus $(natguard_libs)) ||
    skip "cannot build the Debian 12 root: $tar"

# The install a distribution would make, into a staging root.
env -u MAKEFLAGS -u MFLAGS make -s -C "$builddir" install \
    DESTDIR="$tmp/inst" prefix=/usr sysconfdir=/etc > "$tmp/install.out" 2>&1 ||
    die "make install: $(tail -n 5 "$tmp/install.out")"
unit=$(cd "$tmp/inst" && find . -name natguard.service | head -n 1)
[ -n "$unit" ] || die "make install put no natguard.service"
has "make install: the unit runs the installed binary with /etc's file" \
    '^ExecStart=/usr/sbin/natguard -c /etc/natguard/natguard.conf$' \
    "$tmp/inst/$unit"
echo "    (installed as ${unit#.})"
# A sanitizer build: LeakSanitizer cannot stop the world under the unit's
# seccomp filter (no ptrace) and would fail every exit; other reports are
# looked for in the journal at the end.
if ldd "$NATGUARD" | grep -q libasan; then
	mkdir -p "$tmp/inst/etc/systemd/system/natguard.service.d"
	printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' \
	    > "$tmp/inst/etc/systemd/system/natguard.service.d/asan.conf"
fi
cat > "$tmp/inst/etc/natguard/natguard.conf" <<'CONF'
listen = inet:127.0.0.1:10041
gateways = auto
spf = no
nat_spf_probe = no
CONF

run ip netns add "$host"
run ip -n "$host" link set lo up
echo '{}' > "$tmp/daemon.json"
dockerd_start "$tmp/daemon.json"
run docker import "$tar" natguard-test/systemd >/dev/null

systemd_boot natguard-test/systemd
ok "systemd booted as PID 1: $sd_state"
[ "$sd_state" = degraded ] &&
	echo "    failed units (not natguard's): $(sd systemctl --failed \
	    --plain --no-legend | awk '{ print $1 }' | tr '\n' ' ')"
tar -C "$tmp/inst" -cf - . | docker exec -i sd tar -C / \
    --keep-directory-symlink -xf - || die "copying the install in"
run sd systemctl daemon-reload

# One policy request to the running service, from inside the container.
ask() {	# client address
	sd bash -c 'exec 3<>/dev/tcp/127.0.0.1/10041 &&
	    printf "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=%s\nhelo_name=a.example\nsender=a@example.org\nrecipient=b@example.com\n\n" "$1" >&3 &&
	    head -n 1 <&3' ask "$1"
}
gw=$(sd ip route 2>/dev/null | awk '/^default/ { print $3 }')
[ -n "$gw" ] || gw=$(docker inspect -f '{{.NetworkSettings.Gateway}}' sd)
journal() { sd journalctl -u natguard --no-pager -o cat > "$tmp/journal"; }

# --- start ------------------------------------------------------------------
if sd systemctl start natguard > "$tmp/start" 2>&1; then
	ok "systemctl start natguard returned (after READY=1)"
else
	sd journalctl -u natguard --no-pager > "$tmp/start" 2>&1
	bad "systemctl start natguard" "exit 0" "$tmp/start"
fi
sd systemctl show -p Type -p ActiveState -p SubState -p StatusText \
    natguard > "$tmp/show"
has "the service is Type=notify" '^Type=notify$' "$tmp/show"
has "the service is active (running)" '^SubState=running$' "$tmp/show"
has "natguard's status line reached systemd" '^StatusText=listening on' \
    "$tmp/show"
journal
# No Postfix in this container: natguard says it cannot know mynetworks
# (SPEC section 3); any other warning is the sandbox's doing.
has "no Postfix here: natguard says it does not know mynetworks" \
    '^warning: mynetworks = postfix, but postconf is not installed' \
    "$tmp/journal"
grep -v '^warning: mynetworks = postfix' "$tmp/journal" > "$tmp/journal.sandbox"
hasnt "no other warning at start: the sandbox lets gateway detection and the state directory work" \
    '^warning: ' "$tmp/journal.sandbox"
ask "$gw" > "$tmp/r1"
has "it answers: the container's gateway $gw is deferred" \
    '^action=DEFER 4\.3\.5 ' "$tmp/r1"

# --- reload -------------------------------------------------------------------
sd sed -i '$a nat_action = warn' /etc/natguard/natguard.conf
if sd systemctl reload natguard > "$tmp/reload1" 2>&1; then
	ok "systemctl reload natguard"
else
	sd journalctl -u natguard --no-pager >> "$tmp/reload1" 2>&1
	bad "systemctl reload natguard" "exit 0" "$tmp/reload1"
fi
ask "$gw" > "$tmp/r2"
has "systemctl reload: the new nat_action is in force" '^action=WARN ' \
    "$tmp/r2"
sd sed -i '$a nat_actoin = defer' /etc/natguard/natguard.conf
sd systemctl reload natguard > "$tmp/reload2" 2>&1
ask "$gw" > "$tmp/r3"
has "a broken file: the running settings kept" '^action=WARN ' "$tmp/r3"
journal
has "the journal names the broken file, line and key" \
    'reload: /etc/natguard/natguard.conf:[0-9]+: unknown key "nat_actoin".*keeping the running configuration' \
    "$tmp/journal"
sd systemctl show -p SubState natguard > "$tmp/show2"
has "still running after the broken reload" '^SubState=running$' \
    "$tmp/show2"
sd sed -i '/^nat_actoin/d' /etc/natguard/natguard.conf

# --- the sandbox, on the live service ----------------------------------------
pid=$(sd systemctl show -p MainPID --value natguard)
sd systemd-analyze security natguard > "$tmp/security" 2>&1
has "systemd-analyze security on the live unit" \
    'Overall exposure level for natguard.service: [0-9.]+' "$tmp/security"
level=$(sed -nE 's/.*Overall exposure level for natguard.service: ([0-9.]+).*/\1/p' "$tmp/security")
if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 3.0) }'; then
	ok "exposure $level, at most 3.0"
else
	bad "exposure at most 3.0" "<= 3.0" "$tmp/security"
fi
# Writes from inside the service's own mount namespace: refused outside
# ReadWritePaths and its LogsDirectory, allowed there.
sd nsenter -t "$pid" -m sh -c 'touch /etc/natguard/x' > "$tmp/w1" 2>&1
has "a write to /etc from the service's namespace: refused" \
    'Read-only file system' "$tmp/w1"
sd nsenter -t "$pid" -m sh -c 'touch /usr/sbin/x' > "$tmp/w2" 2>&1
has "a write to /usr from the service's namespace: refused" \
    'Read-only file system' "$tmp/w2"
if sd nsenter -t "$pid" -m sh -c 'touch /var/log/natguard/x && rm /var/log/natguard/x'
then ok "LogsDirectory /var/log/natguard is writable"
else bad "LogsDirectory writable" "touch succeeds" "refused"; fi
sd cat "/proc/$pid/status" > "$tmp/status"
has "NoNewPrivileges in force" '^NoNewPrivs:[[:space:]]+1$' "$tmp/status"
# CAP_CHOWN 0, DAC_OVERRIDE 1, KILL 5, SETGID 6, SETUID 7,
# NET_BIND_SERVICE 10.
has "capability bounding set: only the unit's six" \
    '^CapBnd:[[:space:]]+0+4e3$' "$tmp/status"
has "seccomp filter in force" '^Seccomp:[[:space:]]+2$' "$tmp/status"
# Directives a container can refuse: said by systemd in the journal.
sd journalctl --no-pager -o cat -u natguard | grep -iE \
    'fail|refus|not supported|unavailable' | grep -v 'nat_actoin' \
    > "$tmp/refused"
if [ -s "$tmp/refused" ]; then
	echo "    systemd said, for natguard.service:"
	sed 's/^/        /' "$tmp/refused"
fi

# --- restarts under load: natguard.socket and the descriptor store -----------
# Postfix-like clients (tests/bench/restart.py: 20 connections back to
# back, a failed request retried once after 1 s as attr_clnt does) from
# the dockerd's namespace, on the container's address; the socket unit
# listens there.
sd mkdir -p /etc/systemd/system/natguard.socket.d
printf '[Socket]\nListenStream=\nListenStream=0.0.0.0:10041\n' |
    docker exec -i sd sh -c 'cat > /etc/systemd/system/natguard.socket.d/any.conf'
sd sed -i 's/^listen = .*/listen = inet:0.0.0.0:10041/' /etc/natguard/natguard.conf
# One line per request would run into journald's rate limit, which may
# drop the lines this test looks for (natguard says them at notice).
sd sh -c 'echo "log_level = notice" >> /etc/natguard/natguard.conf'
# 20 restarts in a few seconds are more than systemd's start limit (5 in
# 10 s) allows a unit: lifted for this test only.
sd mkdir -p /etc/systemd/system/natguard.service.d
printf '[Unit]\nStartLimitIntervalSec=0\n' |
    docker exec -i sd sh -c 'cat > /etc/systemd/system/natguard.service.d/test-restarts.conf'
run sd systemctl daemon-reload
run sd systemctl stop natguard
if sd systemctl start natguard.socket natguard > "$tmp/start2" 2>&1; then
	ok "systemctl start natguard.socket natguard"
else
	bad "systemctl start natguard.socket natguard" "exit 0" "$tmp/start2"
fi
journal
has "natguard serves natguard.socket's socket" \
    'listening on inet:0\.0\.0\.0:10041, sockets from systemd' "$tmp/journal"
cip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' sd)
load() {	# label, systemctl verb, ms between requests, --reload
	ip netns exec "$host" /usr/bin/python3 "$srcdir/tests/bench/restart.py" \
	    --connect "$cip:10041" --restarts 20 --clients 20 --pause "$3" \
	    --command "'$DOCKER_CLI' -H 'unix://$tmp/dockerd/docker.sock' exec sd systemctl $2 natguard" \
	    ${4:+--reload} external > "$tmp/load-$1" 2>&1
	cat "$tmp/load-$1"
	echo "TABLE: $1 under systemd: $(cut -d: -f2- "$tmp/load-$1" | tail -n 1)"
}
# systemd's copies of client connections: the TCP sockets on port 10041
# among PID 1's descriptors that are no listener, whatever their state
# (one whose client has gone is CLOSE_WAIT), as systemd 252 has no
# NFileDescriptorStore property; "held 0A" counts its listeners, which
# shows the count sees them.
held() {	# /proc/net/tcp state, or any but listening (0A)
	st=${1:-any}
	sd sh -c 'for f in /proc/1/fd/*; do readlink "$f"; done' |
	    sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' > "$tmp/pid1-sockets"
	sd cat /proc/net/tcp /proc/net/tcp6 |
	    awk -v st="$st" 'NR == FNR { s[$1] = 1; next }
		$2 ~ /:2739$/ && ($10 in s) &&
		    (st == "any" ? $4 != "0A" : $4 == st) { n++ }
		END { print n + 0 }' "$tmp/pid1-sockets" -
}
# The figures a restart should meet: nothing failed after the retry,
# at most one first-try failure a restart, the restart itself within 1 s
# (the median; the slowest is printed), and no client connection left in
# systemd's store once the clients are gone.
limit_ms=1000
ldd "$NATGUARD" | grep -q libasan && limit_ms=2000
restarts_ok() {	# label, what
	has "$2: no request failed after the retry, none refused" \
	    ', 0 failed after the retry, 0 refused,' "$tmp/load-$1"
	has "$2: at most one first-try failure a restart" \
	    '\(at most [01] in one (restart|reload)\)' "$tmp/load-$1"
	# Every restart within 1 s (systemctl restart, the docker exec
	# around it included); a sanitizer build runs two to three times
	# slower, and gets 2 s.
	slowest=$(sed -nE 's/.* median [0-9]+ ms \(slowest ([0-9]+) ms\).*/\1/p' \
	    "$tmp/load-$1" | tail -n 1)
	if [ -n "$slowest" ] && [ "$slowest" -lt "$limit_ms" ]; then
		ok "$2: every restart within $limit_ms ms (slowest $slowest ms)"
	else
		bad "$2: every restart within $limit_ms ms" "< $limit_ms ms" \
		    "$tmp/load-$1"
	fi
	n=$(held)
	echo "    descriptors systemd holds for client connections: $n"
	[ "$n" = 0 ] && ok "$2: nothing stale in the descriptor store" ||
	    bad "$2: nothing stale in the descriptor store" 0 "$n"
}
# Before: the same restarts with the descriptor store unused (FDSTORE
# empty): every connection's next request fails its first try.
printf '[Service]\nEnvironment=FDSTORE=\n' |
    docker exec -i sd sh -c 'cat > /etc/systemd/system/natguard.service.d/no-store.conf'
run sd systemctl daemon-reload
run sd systemctl restart natguard
load socket-only restart 0
has "natguard.socket alone: nothing failed after the retry" \
    ', 0 failed after the retry, 0 refused,' "$tmp/load-socket-only"
# Without a store, the stop closes every connection: the client sees EOF
# at once, not at Postfix's timeout.
ip netns exec "$host" /usr/bin/python3 "$srcdir/tests/e2e/closecheck.py" \
    --connect "$cip:10041" --limit 2 \
    --command "'$DOCKER_CLI' -H 'unix://$tmp/dockerd/docker.sock' exec sd systemctl restart natguard" \
    shutdown > "$tmp/close-shutdown" 2>&1
cat "$tmp/close-shutdown"
has "a restart without a store: the stop's close reaches the client" \
    ' 4 saw EOF within' "$tmp/close-shutdown"
sd rm /etc/systemd/system/natguard.service.d/no-store.conf
run sd systemctl daemon-reload
run sd systemctl restart natguard
# A busy MX (back to back) and a quieter one (5 ms between requests).
load restart restart 0
restarts_ok restart "20 restarts, back to back"
journal
# A restart that lost requests: what the journal says of the stops.
if ! grep -q ', 0 failed after the retry, 0 refused,' "$tmp/load-restart"; then
	echo "    the journal around the stops (warnings, stops and starts):"
	sd journalctl -u natguard --no-pager -o short-precise |
	    grep -E 'shutdown|spf|worker|Stopp|Started|took over|warn|exit' |
	    tail -n 80 | sed 's/^/        /'
fi
has "each new process took the old one's connections over" \
    'took over [0-9]+ connections from the previous process' "$tmp/journal"
load restart-pause restart 5
restarts_ok restart-pause "20 restarts, 5 ms pauses"
load reload reload 0 yes
has "20 reloads, back to back: not one first-try failure" \
    ' 0 first-try failures .* 0 failed after the retry, 0 refused,' \
    "$tmp/load-reload"
load reload-pause reload 5 yes
has "20 reloads, 5 ms pauses: not one first-try failure" \
    ' 0 first-try failures .* 0 failed after the retry, 0 refused,' \
    "$tmp/load-reload-pause"

# --- closes after a handover -------------------------------------------------
# systemd keeps its copy of a stored descriptor until it sees POLLHUP: a
# process that took connections over says they are its own
# (FDSTOREREMOVE), or its closes would not reach the client.
sd sh -c 'echo "idle_timeout = 2s" >> /etc/natguard/natguard.conf'
run sd systemctl restart natguard
# Two restarts: each connection is handed over twice.
close() {	# case, seconds
	ip netns exec "$host" /usr/bin/python3 "$srcdir/tests/e2e/closecheck.py" \
	    --connect "$cip:10041" --limit "$2" \
	    --command "'$DOCKER_CLI' -H 'unix://$tmp/dockerd/docker.sock' exec sd sh -c 'systemctl restart natguard && systemctl restart natguard'" \
	    "$1" > "$tmp/close-$1" 2>&1
	cat "$tmp/close-$1"
}
close protocol 2
has "after a handover, a close for bad input reaches the client at once" \
    ' 4 answered after the handover, 4 saw EOF within' "$tmp/close-protocol"
close idle 4
has "after a handover, a close at idle_timeout reaches the client" \
    ' 4 answered after the handover, 4 saw EOF within' "$tmp/close-idle"
n=$(held)
[ "$n" = 0 ] && ok "after the close checks: nothing stale in the store" ||
    bad "after the close checks: nothing stale in the store" 0 "$n"
n=$(held 0A)
[ "$n" -ge 1 ] && ok "the count sees natguard.socket's listener in PID 1 ($n)" ||
    bad "the count sees natguard.socket's listener in PID 1" ">= 1" "$n"

# --- stop --------------------------------------------------------------------
run sd systemctl stop natguard.socket natguard
sd systemctl show -p ActiveState -p Result -p ExecMainStatus natguard \
    > "$tmp/show3"
has "systemctl stop: inactive" '^ActiveState=inactive$' "$tmp/show3"
has "it exited 0" '^ExecMainStatus=0$' "$tmp/show3"
if ask "$gw" > "$tmp/r4" 2>&1 && [ -s "$tmp/r4" ]; then
	bad "nothing listens after stop" "connection refused" "$tmp/r4"
else
	ok "nothing listens after stop"
fi

journal
hasnt "no sanitizer report in the journal" 'Sanitizer|runtime error:' \
    "$tmp/journal"

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
