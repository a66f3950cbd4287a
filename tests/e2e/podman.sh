#!/bin/bash
# End to end under real Podman (Debian's podman, netavark, slirp4netns), as
# root and as an unprivileged user: the host is a network namespace of the
# test's own, a mail container runs Postfix, natguard (gateways = auto) and
# the test's DNS zone and publishes port 25; a remote sender reaches the
# host over IPv4 and IPv6.
#
#   remote ns             host ns (podman)               mail container
#   swaks                 198.51.100.1, 2001:db8:25::1   Postfix :25
#   198.51.100.2  -----   port 25 published by:          natguard :10041
#   2001:db8:25::2          rootful: netavark DNAT       dnsmasq 127.0.0.1
#                           rootless: rootlessport, or
#                           slirp4netns's own forwarder
#
# Scenarios: rootful Podman's default network and an IPv6 network (the fix
# its explanation gives); rootless Podman's defaults (slirp4netns with
# rootlessport), rootlessport on a bridge network, the fix
# (port_handler=slirp4netns), and pasta where this Podman has it.  Each
# prints TABLE rows: what Postfix logged for each client family and what
# natguard called it (the README's "Container engines" table).
set -u

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
. "$srcdir/tests/e2e/docker-lib.sh"
. "$srcdir/tests/e2e/lib.sh"
. "$srcdir/tests/e2e/engine-lib.sh"
: "${NATGUARD:?NATGUARD must name the binary}"

engine_cleanup() {
	[ -n "${ruser:-}" ] && as_user podman --runtime "$RUNC" rm -af -t 0 \
	    >/dev/null 2>&1
	[ -d "${tmp:-}/podman" ] && P rm -af -t 0 >/dev/null 2>&1
	rootless_cleanup
	docker_cleanup
}
RUNC=/usr/sbin/runc	# crun refuses this kind of machine's hybrid cgroups
engine_suite podman-e2e podman podman slirp4netns runc
[ -x "$RUNC" ] || skip "$RUNC is not installed (apt-get install runc)"
host=ngph$$ rem=ngpr$$

# shellcheck disable=SC2086
tar=$(rootfs mail postfix dnsmasq-base iproute2 $(natguard_libs)) ||
    skip "cannot build the Debian 12 root: $tar"
docker_hosts
echo "$name: namespaces $host $rem, $(podman --version)," \
    "$(slirp4netns --version | head -n 1)"

# LeakSanitizer cannot stop the world in a container without
# CAP_SYS_PTRACE; leaks are the other suites' concern.
asan="-e ASAN_OPTIONS=detect_leaks=0"

# --- rootful: Podman as root, everything in $tmp ---------------------------
P() {
	nsenter --net="/run/netns/$host" podman --runtime "$RUNC" \
	    --cgroup-manager cgroupfs --events-backend file \
	    --root "$tmp/podman/root" --runroot "$tmp/podman/run" \
	    --tmpdir "$tmp/podman/tmp" --network-config-dir "$tmp/podman/net" \
	    --storage-driver vfs "$@"
}
mkdir -p "$tmp/podman/net"
run P import -q "$tar" natguard-test/mail >/dev/null

# Podman gives containers RLIMIT_NOFILE 1048576 and a high RLIMIT_NPROC;
# runc may not set them where the machine's limits are lower and
# CAP_SYS_RESOURCE is gone ("error setting rlimit type 7: operation not
# permitted"; type 6 for NPROC).
lim="--ulimit nofile=1024:1024 --ulimit nproc=4096:4096"

# pod_run CLI NAME ARGS...: a mail container on $tmp/NAME, ready.
pod_run() {
	local cli=$1 n=$2
	shift 2
	# shellcheck disable=SC2046,SC2086
	$cli run -d --name "$n" --hostname mx $(engine_mounts "$tmp/$n") \
	    $asan "$@" natguard-test/mail sh /entry.sh > "$tmp/$n.run" 2>&1 ||
	    die "$cli run $n: $(tail -n 3 "$tmp/$n.run")"
	engine_ready "$n" $cli
	use "$n"
}
# doctor_engine CLI NAME FILE: natguard doctor in the container, as text.
doctor_in() {
	$1 exec $asan "$2" natguard doctor -c /ng/natguard.conf > "$3" 2>&1
}

echo "--- R1: rootful Podman, default network"
engine_dir r1
pod_run P r1 $lim -p 25:25
probes r1
ipv4_kept r1
hidden r1-lo "$(default_gw P r1)" default-route \
    "Podman hands connections from the host itself.*skip_addresses"
doctor_in P r1 "$tmp/r1-doctor"
has "r1: doctor names the engine, rootful Podman" \
    '^OK +container-engine: Podman \(/run/\.containerenv exists' \
    "$tmp/r1-doctor"
measured "rootful Podman 4.3, netavark, default network" r1
P rm -f -t 0 r1 >/dev/null

echo "--- R2: rootful Podman, an IPv6 network (the fix for IPv6 clients)"
run P network create --ipv6 --subnet 10.89.25.0/24 \
    --subnet fd00:25:25::/64 ng6 >/dev/null
engine_dir r2
pod_run P r2 $lim --network ng6 -p 25:25
probes r2
kept r2-v4
delivered "r2-v6: the IPv6 client keeps its address, SPF pass" \
    "$tmp/r2-v6.swaks" r2-v6 \
    '^Received-SPF: pass .*client-ip=2001:db8:25::2'
hidden r2-lo "$(default_gw P r2)" default-route "from the host itself"
measured "rootful Podman 4.3, netavark, network with --ipv6" r2
P rm -f -t 0 r2 >/dev/null

# --- rootless: the same as an unprivileged user ----------------------------
rootless_user ngpodman
unprivileged_ports
R() { as_user podman --runtime "$RUNC" --storage-driver vfs "$@"; }
R import -q "$tar" natguard-test/mail > "$tmp/import.out" 2>&1 ||
    skip "rootless podman cannot run here: $(tail -n 2 "$tmp/import.out")"
echo "$name: rootless as $ruser ($ruid), $(grep "^$ruser:" /etc/subuid)"

echo "--- U1: rootless Podman, defaults (slirp4netns, rootlessport)"
engine_dir u1
pod_run R u1 -p 25:25
probes u1
all_hidden u1 "$(own_address R u1)" own-address \
    "rootlessport.*port_handler=slirp4netns"
doctor_in R u1 "$tmp/u1-doctor"
has "u1: doctor warns: rootless Podman's defaults hide clients" \
    '^WARN container-engine: rootless Podman .*rootlessport' "$tmp/u1-doctor"
has "u1: doctor gives the fix" \
    '^ +fix: podman run --network slirp4netns:port_handler=slirp4netns' \
    "$tmp/u1-doctor"
R exec $asan u1 natguard check -c /ng/natguard.conf --json \
    client_address=127.0.0.1 sender=user@pass.test \
    helo_name=client.pass.test > "$tmp/u1-loopback.json" 2>&1
has "u1: a loopback client is judged as a gateway, not skipped" \
    '"source": "loopback"' "$tmp/u1-loopback.json"
has "u1: ... with a DEFER" '"action": "DEFER"' "$tmp/u1-loopback.json"
R exec u1 bash /ng/smtp-local.sh 127.0.0.1 user@pass.test \
    postmaster@example.test > "$tmp/u1-local.smtp" 2>&1
has "u1: SMTP from loopback in the container: 450 4.3.5, not waved through" \
    '^<- 450 4\.3\.5 .*Client address hidden by NAT' "$tmp/u1-local.smtp"
has "u1: natguard: loopback is a gateway (loopback), with the engine's fix" \
    'action=DEFER reason=nat-gateway client=127\.0\.0\.1 gateway_source=loopback .*explanation=.*rootless Podman.*port_handler=slirp4netns.*skip_addresses' \
    "$nglog"
measured "rootless Podman 4.3, slirp4netns, rootlessport (default)" u1
R rm -f -t 0 u1 >/dev/null

echo "--- U2: rootless Podman, skip_addresses set by hand"
engine_dir u2 'skip_addresses = 127.0.0.0/8, ::1
'
pod_run R u2 -p 25:25
R exec $asan u2 natguard check -c /ng/natguard.conf --json \
    client_address=127.0.0.1 > "$tmp/u2-loopback.json" 2>&1
has "u2: the administrator's skip_addresses is honoured" \
    '"reason": "skip-address"' "$tmp/u2-loopback.json"
has "u2: ... and the daemon says loopback is skipped on its word" \
    'skip_addresses is set: loopback clients are skipped although rootless Podman' \
    "$nglog"
R exec u2 bash /ng/smtp-local.sh 127.0.0.1 user@pass.test \
    postmaster@example.test > "$tmp/u2-local.smtp" 2>&1
has "u2: SMTP from loopback in the container is accepted then" \
    '^<- 250 2\.1\.5 ' "$tmp/u2-local.smtp"
R rm -f -t 0 u2 >/dev/null

echo "--- U3: rootless Podman, rootlessport on a bridge network"
run R network create ngnet >/dev/null
engine_dir u3
pod_run R u3 --network ngnet -p 25:25
probes u3
all_hidden u3 "$(own_address R u3)" own-address "rootlessport"
measured "rootless Podman 4.3, bridge network, rootlessport" u3
R rm -f -t 0 u3 >/dev/null

echo "--- U4: rootless Podman, port_handler=slirp4netns (the fix)"
engine_dir u4
pod_run R u4 --network slirp4netns:port_handler=slirp4netns -p 25:25
probes u4
ipv4_kept u4
hidden u4-lo "$(default_gw R u4)" default-route \
    "rootless Podman hands connections from the host itself.*skip_addresses"
measured "rootless Podman 4.3, slirp4netns, port_handler=slirp4netns" u4
R rm -f -t 0 u4 >/dev/null

echo "--- U5: rootless Podman, pasta"
engine_dir u5
# shellcheck disable=SC2046
if R run -d --name u5 --hostname mx $(engine_mounts "$tmp/u5") \
    --network pasta -p 25:25 natguard-test/mail sh /entry.sh \
    > "$tmp/u5.run" 2>&1; then
	engine_ready u5 R
	use u5
	probes u5
	kept u5-v4
	measured "rootless Podman, pasta" u5
	R rm -f -t 0 u5 >/dev/null
else
	why=$(grep -m 1 Error "$tmp/u5.run")
	echo "SKIP: $name: pasta: $(podman --version) cannot use it: $why"
	echo "TABLE: rootless Podman 4.3, pasta | - | $why | -"
fi

# pasta itself (passt), as Podman 4.4 and later run it for --network
# pasta: the user's namespace with a copy of the host's addresses and
# routes, host port 25 forwarded into it.  A listener there says which
# address each client arrives from (Postfix needs Podman to run in it).
echo "--- U6: pasta without Podman (what --network pasta would do)"
if command -v pasta >/dev/null 2>&1 && [ -x /usr/bin/python3 ]; then
	cat > "$tmp/peer.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 25))
s.listen(4)
open(sys.argv[1] + "/pasta.ready", "w").close()
for _ in range(2):
    c, peer = s.accept()
    with open(sys.argv[1] + "/pasta.peers", "a") as f:
        f.write("peer %s\n" % peer[0])
    c.close()
PY
	chmod a+rx "$tmp/peer.py"
	chmod a+rwx "$tmp"
	# pasta copies the host's default routes into the namespace.
	ip -n "$host" route add default via 198.51.100.2
	ip -n "$host" -6 route add default via 2001:db8:25::2
	as_user timeout 60 pasta --config-net -t 25 -f -- /usr/bin/python3 \
	    "$tmp/peer.py" "$tmp" > "$tmp/pasta.log" 2>&1 &
	pasta_pid=$!
	wait_for "[ -f '$tmp/pasta.ready' ] || ! kill -0 $pasta_pid 2>/dev/null"
	for a in $v4 $v6; do
		ip netns exec "$rem" /usr/bin/python3 -c "import socket, sys
socket.create_connection((sys.argv[1], 25), 5).recv(1)" "$a" \
		    >> "$tmp/pasta.log" 2>&1
	done
	wait "$pasta_pid"
	has "u6: pasta: the IPv4 client keeps its address" \
	    '^peer (::ffff:)?198\.51\.100\.2$' "$tmp/pasta.peers"
	has "u6: pasta: the IPv6 client keeps its address" \
	    '^peer 2001:db8:25::2$' "$tmp/pasta.peers"
	echo "TABLE: pasta (passt) without Podman, a listener | IPv4, IPv6 |" \
	    "$(sed 's/^peer //' "$tmp/pasta.peers" 2>/dev/null | tr '\n' ' ')| -"
	chmod 755 "$tmp"
else
	echo "SKIP: $name: u6: pasta or python3 is not installed" \
	    "(apt-get install passt python3)"
fi

# A sanitizer build reports into natguard's log, inside the containers.
if grep -l -E 'Sanitizer|runtime error:' "$tmp"/[ru]*/natguard.log \
    2>/dev/null; then
	bad "no sanitizer report from natguard in the containers" "none" \
	    "$(grep -h -E -A5 'Sanitizer|runtime error:' "$tmp"/[ru]*/natguard.log)"
fi

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
