# Sourced by the container-engine suites (tests/e2e/podman.sh,
# tests/e2e/docker-rootless.sh), after docker-lib.sh and lib.sh: an
# unprivileged user for the rootless engines, the mail container's
# directory as any engine's user can write it, and the scenario a remote
# sender plays against each engine's published port 25.
#
# The machine is put back as it was: the user (and its subordinate ids)
# is removed when the suite made it, /dev/net/tun gets its mode back
# (tun_open, tun_close).

# engine_suite NAME PREFIX TOOL...: SKIP (exit 77) with the reason where
# this machine lacks a tool or a sender's needs, then $tmp (on disk: vfs
# copies whole images), everything removed on exit by engine_cleanup, which
# the suite defines and ends with rootless_cleanup and docker_cleanup.
engine_suite() {
	local t prefix=$2
	name=$1
	netns_check "$name"
	shift 2
	for t in "$@" nsenter debootstrap; do
		command -v "$t" >/dev/null 2>&1 || skip "$t is not installed" \
		    "(apt-get install podman rootlesskit slirp4netns uidmap" \
		    "docker.io debootstrap)"
	done
	sender_check
	suite_tmp "$prefix" engine_cleanup
}

# rootless_user NAME: the user the rootless engines run as, with
# subordinate uid and gid ranges (what `useradd` gives a new user on
# Debian 12), a runtime directory ($xdg) and a home in $tmp.  SKIPs (exit 77)
# where the machine cannot give one.
rootless_user() {
	ruser=$1
	local t
	for t in useradd userdel setpriv newuidmap newgidmap; do
		command -v $t >/dev/null 2>&1 || skip "$t is not installed" \
		    "(apt-get install passwd util-linux uidmap)"
	done
	if ! id "$ruser" >/dev/null 2>&1; then
		useradd --no-create-home --home-dir "$tmp/home" \
		    --shell /bin/sh "$ruser" || skip "useradd $ruser failed"
		made_user=1
	fi
	for t in /etc/subuid /etc/subgid; do
		grep -q "^$ruser:" $t 2>/dev/null || {
			echo "$ruser:400000:65536" >> $t
			added_ids="${added_ids:-} $t"
		}
	done
	ruid=$(id -u "$ruser") rgid=$(id -g "$ruser")
	# Short: slirp4netns's API socket lives under it (sun_path is 108).
	xdg=$(mktemp -d /run/ng.XXXXXX) || skip "cannot make a runtime dir"
	mkdir -p "$tmp/home"
	chown "$ruser:" "$tmp/home" "$xdg"
	chmod 700 "$xdg"
	[ -c /dev/net/tun ] || skip "no /dev/net/tun (slirp4netns needs it)"
	tun_open
}

# slirp4netns opens /dev/net/tun in the user's namespace; a machine that
# keeps it root-only (mode 600) gets that mode back when the last suite
# using it is done (make -j runs the engine suites side by side).  Who
# uses it: a file per suite's pid in $TUN_USERS, changed under a lock on
# the device itself; a suite killed before its cleanup is not waited for.
TUN_USERS=/run/natguard-tests-tun
tun_open() {
	mkdir -p "$TUN_USERS"
	flock /dev/net/tun sh -c '
	    [ -f "$1/mode" ] || stat -c %a /dev/net/tun > "$1/mode"
	    : > "$1/pid.$2"
	    chmod 666 /dev/net/tun' sh "$TUN_USERS" $$
	tun_opened=1
}
tun_close() {
	[ -n "${tun_opened:-}" ] || return 0
	flock /dev/net/tun sh -c '
	    rm -f "$1/pid.$2"
	    for f in "$1"/pid.*; do
		[ -e "$f" ] || continue
		kill -0 "${f##*/pid.}" 2>/dev/null && exit 0
		rm -f "$f"
	    done
	    chmod "$(cat "$1/mode")" /dev/net/tun && rm -rf "$1"' \
	    sh "$TUN_USERS" $$
	tun_opened=
}

# as_user CMD...: CMD as the rootless user in the Docker host's namespace,
# with an environment of its own, as a login would give it.
as_user() {
	# From /: the build tree may be in a directory only root may enter
	# (CI's clones are under mktemp -d).
	(cd / && nsenter --net="/run/netns/$host" setpriv --reuid="$ruid" \
	    --regid="$rgid" --init-groups env -i HOME="$tmp/home" \
	    USER="$ruser" LOGNAME="$ruser" XDG_RUNTIME_DIR="$xdg" \
	    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@")
}

# unprivileged_ports: in the host's namespace, as an administrator does
# for a rootless mail server, port 25 may be bound by the user.
unprivileged_ports() {
	netns_sysctl "$host" net.ipv4.ip_unprivileged_port_start 25 ||
	    skip "cannot set net.ipv4.ip_unprivileged_port_start"
}

# rootless_cleanup: the user's processes (engines, forwarders, pause
# process), the user when the suite made it, /dev/net/tun's mode.
rootless_cleanup() {
	local t
	[ -n "${ruser:-}" ] || return 0
	pkill -9 -u "$ruser" 2>/dev/null
	for t in 1 2 3 4 5 6 7 8 9 10; do
		pgrep -u "$ruser" >/dev/null 2>&1 || break
		sleep 0.2
	done
	[ -n "${made_user:-}" ] && userdel "$ruser" 2>/dev/null
	for t in ${added_ids:-}; do
		sed -i "/^$ruser:/d" "$t"
	done
	tun_close
	[ -n "${xdg:-}" ] && rm -rf --one-file-system "$xdg"
	ruser=
}

# engine_dir NAME [NATGUARD-CONF-LINES]: the container's /ng (as
# tests/e2e/docker-mail.sh reads it), writable by whatever uid the engine
# maps the container's root and Postfix's nobody to.
engine_dir() {
	local d=$tmp/$1
	mkdir -p "$d/mail"
	zone_conf > "$d/zone.conf"
	main_cf /var/spool/postfix /var/lib/postfix /ng/maillog /ng/mail \
	    > "$d/main.cf"
	cp "$srcdir/tests/e2e/master.cf" "$d/master.cf"
	printf 'listen = inet:127.0.0.1:10041\nlog = stderr\ngateways = auto
nat_action = defer\n%s' "${2:-}" > "$d/natguard.conf"
	echo "nameserver 127.0.0.1" > "$d/resolv.conf"
	cp "$NATGUARD" "$d/natguard"
	cp "$srcdir/tests/e2e/docker-mail.sh" "$d/entry.sh"
	cp "$srcdir/tests/e2e/smtp-local.sh" "$d/smtp-local.sh"
	rm -f "$d/ready"
	mkfifo "$d/ready"
	chmod -R a+rwX "$d"
}
# The options that run tests/e2e/docker-mail.sh on a directory.
engine_mounts() {	# dir
	echo "-v $1/natguard:/usr/local/sbin/natguard:ro"
	echo "-v $1/entry.sh:/entry.sh:ro -v $1:/ng"
	echo "-v $1/resolv.conf:/etc/resolv.conf:ro"
}
# Wait for the container's word; $2 is the engine's CLI, for its logs.
engine_ready() {	# name cli...
	local n=$1 msg
	shift
	msg=$(timeout 120 head -n 1 "$tmp/$n/ready")
	[ "$msg" = ready ] || die "container $n: ${msg:-no word in 120 s}:
$("$@" logs "$n" 2>&1 | tail -n 5)"
}
use() { log=$tmp/$1/maillog; mail=$tmp/$1/mail; nglog=$tmp/$1/natguard.log; }

v4=198.51.100.1 v6=2001:db8:25::1	# the host's published port 25

# probe NAME WHERE FROM TO: one transaction from the remote sender to the
# host's address WHERE ($v4 or $v6), or with WHERE "lo" from a program on
# the host itself to its loopback; then $tmp/NAME.seen says which client
# address Postfix logged for it (the first "connect from" after the
# transaction began), or why there was none.
probe() {
	local n=$1 m
	m=$(wc -l < "$log" 2>/dev/null || echo 0)
	if [ "$2" = lo ]; then
		ip netns exec "$host" swaks --server 127.0.0.1 --port 25 \
		    --timeout 20 --helo client.pass.test --from "$3" --to "$4" \
		    --header "Subject: natguard e2e $n" --body "case $n" \
		    > "$tmp/$n.swaks" 2>&1
	else
		send "$n" "$2" "$3" "$4"
	fi
	if grep -q 'IO::Socket.*connect' "$tmp/$n.swaks"; then
		sed -nE 's/.*connect: (.*)/(connection: \1)/p' \
		    "$tmp/$n.swaks" | head -n 1 > "$tmp/$n.seen"
		return
	fi
	# Postfix logs the disconnect after swaks has its last reply.
	wait_for "tail -n +$((m + 1)) '$log' | grep -q 'disconnect from'"
	tail -n +$((m + 1)) "$log" |
	    sed -nE 's/.* connect from [^[]*\[([^]]*)\].*/\1/p' |
	    head -n 1 > "$tmp/$n.seen"
	[ -s "$tmp/$n.seen" ] || echo "(no connection reached Postfix)" \
	    > "$tmp/$n.seen"
}

# measured LABEL CASE: one table row per probe CASE-v4, CASE-v6 and
# CASE-lo (README "Container engines"): what Postfix logged, and the
# source natguard named for that address, if it was a gateway.
measured() {
	local where seen gw
	for where in v4 v6 lo; do
		[ -f "$tmp/$2-$where.seen" ] || continue
		seen=$(cat "$tmp/$2-$where.seen")
		gw=$(grep -m 1 -F "client=$seen gateway_source=" "$nglog" \
		    2>/dev/null | sed -E 's/.*gateway_source=([^ ]*).*/\1/')
		echo "TABLE: $1 | $(case $where in v4) echo IPv4 ;;
		    v6) echo IPv6 ;; lo) echo "the host's loopback" ;; esac) |" \
		    "$seen | ${gw:-(not a gateway)}"
	done
}

# hidden CASE ADDRESS SOURCE ENGINE-WORD: the remote client was deferred
# because the engine handed it over from ADDRESS, which natguard named,
# with the engine's fix in the explanation.
hidden() {
	local c=$1 re
	re=$(printf '%s' "$2" | sed 's/\./\\./g')
	has "$c: 450 4.3.5 for the hidden client" \
	    '^<\*\* +450 4\.3\.5 .*Client address hidden by NAT' \
	    "$tmp/$c.swaks"
	has "$c: Postfix saw $2" \
	    "NOQUEUE: reject: RCPT from [^ ]*\\[$re\\]: 450 4\\.3\\.5" "$log"
	has "$c: natguard: $2 is a gateway ($3)" \
	    "action=DEFER reason=nat-gateway client=$re gateway_source=$3 " \
	    "$nglog"
	has "$c: the explanation names the engine's fix ($4)" \
	    "client=$re gateway_source=$3 .*explanation=.*$4" "$nglog"
	not_delivered "$c" "$c"
}

# default_gw CLI NAME: the container's IPv4 default gateway; own_address
# CLI NAME: its own IPv4 address.
default_gw() {
	$1 exec "$2" ip -4 route show default | awk '{ print $3; exit }'
}
own_address() {
	$1 exec "$2" ip -4 -o addr show scope global |
	    sed -E 's/.* inet ([0-9.]+)\/.*/\1/' | head -n 1
}

# probes CASE: the remote sender over IPv4 and IPv6 and a program on the
# host itself (CASE-v4, CASE-v6, CASE-lo), then a forged sender over IPv4
# (CASE-fail).
probes() {
	probe "$1-v4" $v4 user@pass.test postmaster@example.test
	probe "$1-v6" $v6 user@pass.test postmaster@example.test
	probe "$1-lo" lo user@pass.test postmaster@example.test
	send "$1-fail" $v4 user@fail.test postmaster@example.test
}

# ipv4_kept CASE: the fixed forwarding: remote IPv4 clients keep their
# address (SPF pass delivered, the forged sender refused for the real
# client) and IPv6 is not forwarded at all.
ipv4_kept() {
	kept "$1-v4"
	refused "$1-v6"
	has "$1: the forged sender is refused for the real client: 550 5.7.23" \
	    '^<\*\* +550 5\.7\.23 .* designate 198\.51\.100\.2 as permitted' \
	    "$tmp/$1-fail.swaks"
}

# all_hidden CASE ADDRESS SOURCE ENGINE-WORD: every client of probes CASE,
# from afar or from the host, is handed over from ADDRESS.
all_hidden() {
	local w
	for w in v4 v6 lo; do
		hidden "$1-$w" "$2" "$3" "$4"
	done
}

# kept CASE: the client kept its address; SPF decided and the mail passed.
kept() {
	delivered "$1: the client keeps its address, SPF pass" \
	    "$tmp/$1.swaks" "$1" '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
}

# refused CASE: the engine does not forward the family at all.
refused() {
	has "$1: not forwarded (connection refused)" \
	    'connect: Connection refused' "$tmp/$1.swaks"
}
