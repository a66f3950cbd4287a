#!/bin/bash
# End to end under real rootless Docker (Debian's docker.io 20.10 and its
# dockerd-rootless.sh, rootlesskit, slirp4netns), as an unprivileged user
# with subordinate id ranges: the host is a network namespace of the
# test's own, a mail container runs Postfix, natguard (gateways = auto) and
# the test's DNS zone and publishes port 25; a remote sender reaches the
# host over IPv4 and IPv6.
#
#   remote ns             host ns (rootlesskit)          mail container
#   swaks                 198.51.100.1, 2001:db8:25::1   Postfix :25
#   198.51.100.2  -----   port 25 published by the       natguard :10041
#   2001:db8:25::2          port driver: builtin         dnsmasq 127.0.0.1
#                           (default) or slirp4netns
#
# Scenarios: the defaults (builtin port driver), then the fix natguard's
# explanation gives (DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns).
# Each prints TABLE rows for the README's "Container engines" table.
set -u

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
. "$srcdir/tests/e2e/docker-lib.sh"
. "$srcdir/tests/e2e/lib.sh"
. "$srcdir/tests/e2e/engine-lib.sh"
: "${NATGUARD:?NATGUARD must name the binary}"

ROOTLESS_SH=/usr/share/docker.io/contrib/dockerd-rootless.sh
engine_cleanup() {
	rootless_stop
	rootless_cleanup
	docker_cleanup
}
engine_suite docker-rootless docker-rl rootlesskit slirp4netns "$DOCKERD" \
    "$DOCKER_CLI"
[ -x "$ROOTLESS_SH" ] || skip "$ROOTLESS_SH is not installed" \
    "(apt-get install docker.io)"
host=ngrh$$ rem=ngrr$$

# shellcheck disable=SC2086
tar=$(rootfs mail postfix dnsmasq-base iproute2 $(natguard_libs)) ||
    skip "cannot build the Debian 12 root: $tar"
docker_hosts
rootless_user ngdockerrl
unprivileged_ports
asan="-e ASAN_OPTIONS=detect_leaks=0"

D() { "$DOCKER_CLI" -H "unix://$xdg/d.sock" "$@"; }
# rootless_start PORT_DRIVER: dockerd-rootless.sh as the user, as its
# systemd user unit runs it, with this port driver; ready when its API
# answers (it has no other signal).  SKIPs with rootlesskit's words where
# the machine refuses it.
rootless_start() {
	local n=0
	mkdir -p "$tmp/rd"
	chown "$ruser:" "$tmp/rd"
	as_user env DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER="$1" \
	    "$ROOTLESS_SH" --data-root "$tmp/rd/data" --exec-root "$xdg/x" \
	    -H "unix://$xdg/d.sock" --pidfile "$xdg/d.pid" \
	    --storage-driver vfs > "$tmp/rd/$1.log" 2>&1 &
	rl_pid=$!
	until D version >/dev/null 2>&1; do
		kill -0 "$rl_pid" 2>/dev/null ||
		    skip "rootless dockerd exited: $(grep -v '^+' \
		        "$tmp/rd/$1.log" | tail -n 3)"
		n=$((n + 1))
		[ $n -gt 600 ] && die "rootless dockerd did not answer in 60 s"
		sleep 0.1
	done
	echo "$name: $(grep -m 1 -o 'rootlesskit .*--port-driver=[a-z0-9]*' \
	    "$tmp/rd/$1.log")"
}
# The daemon and all it started: everything the user runs (rl_pid is
# the subshell of as_user, not rootlesskit).
rootless_stop() {
	local n=0
	[ -n "${rl_pid:-}" ] || return 0
	D ps -aq 2>/dev/null | xargs -r "$DOCKER_CLI" -H "unix://$xdg/d.sock" \
	    rm -f >/dev/null 2>&1
	pkill -TERM -u "$ruser" -x rootlesskit
	while pgrep -u "$ruser" >/dev/null; do
		n=$((n + 1))
		[ $n -eq 100 ] && pkill -KILL -u "$ruser"
		sleep 0.1
	done
	wait "$rl_pid" 2>/dev/null
	rl_pid=
}
dock_run() {	# name args...
	local n=$1
	shift
	# shellcheck disable=SC2046,SC2086
	D run -d --name "$n" --hostname mx $(engine_mounts "$tmp/$n") $asan \
	    "$@" natguard-test/mail sh /entry.sh > "$tmp/$n.run" 2>&1 ||
	    die "docker run $n: $(tail -n 3 "$tmp/$n.run")"
	engine_ready "$n" D
	use "$n"
}

echo "--- D1: rootless Docker, defaults (builtin port driver)"
rootless_start builtin
echo "$name: namespaces $host $rem, rootless as $ruser ($ruid)," \
    "$(D version -f 'dockerd {{.Server.Version}}'), $(rootlesskit --version)"
run D import "$tar" natguard-test/mail >/dev/null
engine_dir d1
dock_run d1 -p 25:25
probes d1
gw=$(D inspect -f '{{.NetworkSettings.Gateway}}' d1)
all_hidden d1 "$gw" default-route \
    "rootless Docker.*rootlesskit's builtin.*DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns"
hasnt "d1: no daemon.json advice for rootless Docker" \
    "client=$gw .*explanation=.*userland-proxy" "$nglog"
D exec $asan d1 natguard doctor -c /ng/natguard.conf > "$tmp/d1-doctor" 2>&1
has "d1: doctor warns: rootless Docker's defaults hide clients" \
    '^WARN container-engine: rootless Docker .*rootlesskit' "$tmp/d1-doctor"
has "d1: doctor gives the fix" \
    '^ +fix: DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns' \
    "$tmp/d1-doctor"
D exec $asan d1 natguard check -c /ng/natguard.conf --json \
    client_address=127.0.0.1 > "$tmp/d1-loopback.json" 2>&1
has "d1: a loopback client is judged as a gateway, not skipped" \
    '"source": "loopback"' "$tmp/d1-loopback.json"
measured "rootless Docker 20.10, rootlesskit 1.1, builtin port driver (default)" d1
rootless_stop

echo "--- D2: rootless Docker, slirp4netns port driver (the fix)"
rootless_start slirp4netns
engine_dir d2
dock_run d2 -p 25:25
probes d2
ipv4_kept d2
hidden d2-lo 10.0.2.2 slirp4netns \
    "slirp4netns network hands connections from the host itself.*skip_addresses"
measured "rootless Docker 20.10, rootlesskit 1.1, slirp4netns port driver" d2
rootless_stop

if grep -l -E 'Sanitizer|runtime error:' "$tmp"/d*/natguard.log \
    2>/dev/null; then
	bad "no sanitizer report from natguard in the containers" "none" \
	    "$(grep -h -E -A5 'Sanitizer|runtime error:' "$tmp"/d*/natguard.log)"
fi

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
