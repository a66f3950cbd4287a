#!/bin/bash
# natguard in the real docker-mailserver: v14.0.0 built from its own tree
# ($SHARED/dms: the release tarball and the patch that builds it offline),
# conf/docker-mailserver/Dockerfile built on it unchanged, run with the
# shipped compose file, user-patches.sh and postfix-main.cf, under a
# private dockerd, mail from a remote sender in another namespace; then
# the same scenarios with conf/docker-mailserver/upstream's patch applied to
# the v14.0.0 tree (ENABLE_NATGUARD=1, natguard from its Debian package)
# in place of user-patches.sh ("patches" and "switch" in the labels).
#   stock    the image alone, ENABLE_POLICYD_SPF=1: an IPv6 client through
#            docker-proxy is refused as "SPF fail" from the bridge gateway
#            (the failure natguard exists for, kept as a regression fact)
#   warn     natguard as shipped: IPv4 pass delivered, a forged sender
#            550, the IPv6 client warned about and delivered; natguard
#            under its own user, its start-up lines in docker logs
#   defer    nat_action = defer: the IPv6 client gets 450 4.3.5
#   relay    PERMIT_DOCKER=network and =connected-networks (the gateway in
#            mynetworks): the stock image relays for an IPv6 client through
#            docker-proxy; with natguard (nat_action = defer) it is deferred
#   proxy    HAProxy's container in front (mode tcp, no PROXY protocol):
#            natguard learns it from traffic, then warns about it
#   restart  docker restart: natguard back, the restrictions not doubled,
#            the learned proxy kept
#   fixed    "ip6tables": true: the IPv6 client as itself, SPF pass
set -u

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
. "$srcdir/tests/e2e/docker-lib.sh"
. "$srcdir/tests/e2e/lib.sh"
docker_suite docker-dms dms sender
host=ngmh$$ rem=ngmr$$
SHARED=${SHARED:-$srcdir/../shared}
[ -s "$SHARED/dms/docker-mailserver-14.0.0.tar.gz" ] &&
    [ -s "$SHARED/dms/dms-v14-offline.patch" ] ||
    skip "no docker-mailserver tree in $SHARED/dms (the tarball and" \
    "its offline patch)"
# The images build natguard from this tree themselves, without sanitizers:
# the suite is run once, in the plain build's run.
[ -n "${NATGUARD:-}" ] && ldd "$NATGUARD" 2>/dev/null | grep -q libasan &&
    skip "a sanitizer build: the images' natguard is built plain; the" \
    "suite runs in the plain build's run"
for t in dpkg-buildpackage dh; do
	command -v $t >/dev/null 2>&1 || skip "$t is not installed (the" \
	    "upstream switch installs natguard's package: apt-get install" \
	    "dpkg-dev debhelper)"
done
# shellcheck disable=SC2046
proxytar=$(rootfs proxy haproxy nginx-light libnginx-mod-stream iproute2) ||
    skip "cannot build the proxy's Debian 12 root: $proxytar"
# overlay2: the image has dozens of layers of 700 MB in all.
export DOCKER_STORAGE=overlay2
dms=ghcr.io/docker-mailserver/docker-mailserver:14
t0=$SECONDS
why=$(deb_build "$tmp/deb" base) || die "$why"
deb=$(ls "$tmp"/deb/natguard_*_amd64.deb)
echo "$name: $(basename "$deb") built in $((SECONDS - t0)) s"
t0=$SECONDS
why=$(dms_images natguard-test/dms-natguard natguard-test/dms-upstream \
    "$deb") || skip "the images cannot be built here: $why"
echo "$name: images built in $((SECONDS - t0)) s"

docker_hosts
# The sender domains' records, served from the Docker host (the
# containers' resolv.conf points there); docker-mailserver refuses a
# sender domain without an MX or address (reject_unknown_sender_domain).
# pass1-4.test pass SPF for the sender wherever it is: the proxy's senders.
{ zone_conf | sed 's/^listen-address=.*/listen-address=198.51.100.1/'
  for dom in pass.test fail.test pass1.test pass2.test pass3.test pass4.test
  do
	echo "mx-host=$dom,client.pass.test,10"
  done
  for i in 1 2 3 4; do
	echo "txt-record=pass$i.test,\"v=spf1 ip4:198.51.100.0/24 -all\""
  done; } > "$tmp/zone.conf"
run ip netns exec "$host" dnsmasq --conf-file="$tmp/zone.conf" \
    --pid-file="$tmp/dnsmasq.pid" --user=root
echo "nameserver 198.51.100.1" > "$tmp/resolv.conf"
echo '{}' > "$tmp/daemon.json"
dockerd_start "$tmp/daemon.json"
run docker import "$proxytar" natguard-test/proxy > /dev/null
echo "$name: namespaces $host $rem, $(docker version -f \
    'dockerd {{.Server.Version}}'), $(docker image inspect -f \
    '{{.Size}}' "$dms" | awk '{ printf "docker-mailserver %d MB", $1 / 1e6 }')"

# Fault 2 of issue 20: the layers natguard adds, by its Dockerfile and by
# the upstream patch.
for img in natguard-test/dms-natguard natguard-test/dms-upstream; do
	layer=$(( ($(docker image inspect -f '{{.Size}}' "$img") -
	    $(docker image inspect -f '{{.Size}}' "$dms")) / 1000 ))
	docker history --no-trunc --format '{{.Size}} {{.CreatedBy}}' \
	    "$img" | head -n 6 > "$tmp/history"
	if [ $layer -lt 5000 ]; then
		ok "$img: natguard adds $layer kB to docker-mailserver's image"
	else
		bad "$img: natguard adds under 5 MB" "< 5000 kB" "$tmp/history"
	fi
	sed 's/^/    /' "$tmp/history" | cut -c 1-150
done

# The config volume: one account (docker-mailserver waits for one), and
# for the "patches" integration the shipped user-patches.sh and
# postfix-main.cf.
dms_data() {	# dir
	local d=$1
	mkdir -p "$d/config" "$d/mail-data" "$d/mail-state" "$d/mail-logs"
	printf 'postmaster@example.test|%s\n' "$(/usr/bin/python3 -c \
	    'import crypt; print("{SHA512-CRYPT}" + crypt.crypt("test",
	    crypt.mksalt(crypt.METHOD_SHA512)))' 2>/dev/null)" \
	    > "$d/config/postfix-accounts.cf"
	[ "$mode" = patches ] || return 0
	cp "$srcdir/conf/docker-mailserver/user-patches.sh" \
	    "$srcdir/conf/docker-mailserver/postfix-main.cf" "$d/config/"
}
# Only what a test needs on: no ClamAV signatures here, no updates.
dms_env="ENABLE_CLAMAV=0 ENABLE_AMAVIS=0 ENABLE_SPAMASSASSIN=0
ENABLE_FAIL2BAN=0 ENABLE_RSPAMD=0 ENABLE_OPENDKIM=0 ENABLE_OPENDMARC=0
ENABLE_UPDATE_CHECK=0 LOG_LEVEL=info"
# Ready: docker-mailserver's own last start-up line, then Postfix's banner
# inside the container: the line comes as Postfix's master starts, and a
# client through docker-proxy a moment too early is let in and dropped
# ("Remote host closed connection unexpectedly", once in CI).  The wait
# docker-mailserver's own tests use (_wait_for_smtp_port_in_container).
# wait_for waits 20 s; the image takes up to a minute on a busy machine.
wait_long() { wait_for "$1" || wait_for "$1" || wait_for "$1"; }
dms_ready() {	# container
	wait_long "docker logs '$1' 2>&1 | grep -q 'is up and running'" ||
	    die "$1 did not start in 60 s: $(docker logs "$1" 2>&1 | tail -n 8)"
	smtp_ready "$1"
}
smtp_ready() {	# container
	wait_for "docker exec '$1' timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/25 &&
	    head -c 3 <&3' 2>/dev/null | grep -q 220" ||
	    die "$1: no SMTP banner on port 25 within 20 s"
}
v4=198.51.100.1 v6=2001:db8:25::1

# dms_run NAME IMAGE ENV-OR-VOLUME...: a mail container on Docker's
# default bridge (no IPv6: docker-proxy carries IPv6 clients over IPv4, from
# the bridge gateway), port 25 published, its data under $tmp/NAME.
dms_run() {
	local n=$1 image=$2 a args=""
	shift 2
	d=$tmp/$n log=$tmp/$n/mail-logs/mail.log mail=$tmp/$n/mail-data/example.test
	for a in $dms_env "$@"; do
		case "$a" in
		/*) args="$args -v $a" ;;
		*) args="$args -e $a" ;;
		esac
	done
	# shellcheck disable=SC2086
	run docker run -d --name "$n" --hostname mail.example.test $args \
	    -p 25:25 -v "$d/config:/tmp/docker-mailserver" \
	    -v "$d/mail-data:/var/mail" -v "$d/mail-state:/var/mail-state" \
	    -v "$d/mail-logs:/var/log/mail" \
	    -v "$tmp/resolv.conf:/etc/resolv.conf:ro" "$image" > /dev/null
	dms_ready "$n"
	c=$n
	gw=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}' "$n")
}
# A relay attempt: an IPv6 client (through docker-proxy: the gateway)
# sending to a recipient outside.
relay_try() {	# name
	send "$1" $v6 user@pass.test someone@outside.test
}

mode=stock
echo "--- stock: docker-mailserver alone, ENABLE_POLICYD_SPF=1"
dms_data "$tmp/stock"
dms_run stock "$dms" ENABLE_POLICYD_SPF=1
send stock-v6 $v6 user@pass.test postmaster@example.test
has "stock: the IPv6 client through docker-proxy refused as SPF fail" \
    '^<\*\* +550 5\.7\.23 .*SPF fail - not authorized' "$tmp/stock-v6.swaks"
has "stock: Postfix saw the bridge gateway $gw, not the client" \
    "NOQUEUE: reject: RCPT from [^ ]*\\[$gw\\]: 550 5\\.7\\.23" "$log"
run docker rm -f stock > /dev/null

echo "--- stock, PERMIT_DOCKER=network: the open relay"
dms_data "$tmp/stock-relay"
dms_run stock-relay "$dms" PERMIT_DOCKER=network
relay_try stock-relay
has "stock, PERMIT_DOCKER=network: an IPv6 client relays outside" \
    '^<- +250 .*queued as' "$tmp/stock-relay.swaks"
has "stock: queued for outside.test, from the gateway $gw" \
    ': to=<someone@outside\.test>' "$log"
run docker rm -f stock-relay > /dev/null

# The two integrations.  patches: conf/docker-mailserver/Dockerfile's
# image, user-patches.sh and postfix-main.cf in the config volume,
# nat_action = defer by a natguard.conf mounted over the shipped one.
# switch: the upstream patch's image, ENABLE_NATGUARD=1 (ENABLE_POLICYD_SPF=1
# as well: natguard takes its place), NATGUARD_ACTION=defer.
use_mode() {	# patches | switch
	mode=$1
	case $mode in
	patches)
		ng_image=natguard-test/dms-natguard ng_env=
		ng_defer=$tmp/defer.conf:/etc/natguard/natguard.conf:ro ;;
	switch)
		ng_image=natguard-test/dms-upstream
		ng_env="ENABLE_NATGUARD=1 ENABLE_POLICYD_SPF=1"
		ng_defer=NATGUARD_ACTION=defer ;;
	esac
}
sed 's/^nat_action = warn$/nat_action = defer/' \
    "$srcdir/conf/docker-mailserver/natguard.conf" > "$tmp/defer.conf"

# The shipped compose file, with the mode's image in place of its build:
# section, the volumes where this test keeps them, and the environment a
# scenario adds.
compose_for() {	# dir, environment..., [-v host:ctr]...
	local d=$1
	shift
	# shellcheck disable=SC2086
	/usr/bin/python3 - "$srcdir/conf/docker-mailserver/compose.yaml" \
	    "$d/compose.yaml" "$d" "$tmp" "$ng_image" $dms_env $ng_env "$@" \
	    <<'PY' ||
import sys, yaml
shipped, out, d, tmp, image = sys.argv[1:6]
c = yaml.safe_load(open(shipped))
m = c["services"]["mailserver"]
m.pop("build")
m["image"] = image
m["hostname"] = "mail.example.test"
vols = []
for v in m["volumes"]:
    host, ctr = v.split(":")[:2]
    if host.startswith("./docker-data/dms/"):
        vols.append(d + "/" + host[len("./docker-data/dms/"):] + ":" + ctr)
    elif not host.startswith("/etc/localtime"):
        vols.append(v)
vols.append(tmp + "/resolv.conf:/etc/resolv.conf:ro")
env = [e for e in m["environment"]]
for a in sys.argv[6:]:
    if a.startswith("/"):
        vols.append(a)
    else:
        k = a.split("=")[0]
        env = [e for e in env if e.split("=")[0] != k] + [a]
m["environment"] = env
m["volumes"] = vols
yaml.safe_dump(c, open(out, "w"))
PY
	    die "the compose file"
}
# natguard up in a compose project: docker-mailserver's start-up done.
ng_up() {	# dir
	d=$1 log=$1/mail-logs/mail.log mail=$1/mail-data/example.test
	compose "$d" up -d
	c=$(docker ps -q -f label=com.docker.compose.service=mailserver)
	dms_ready "$c"
	gw=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}' "$c")
	gw6=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPv6Gateway}}{{end}}' "$c")
	mx=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$c")
}

# warn, proxy and restart in one container; defer; relay.
scenarios() {
	local m=$mode permit p
	echo "--- $m: warn, natguard as shipped"
	dms_data "$tmp/$m-warn"
	compose_for "$tmp/$m-warn"
	ng_up "$tmp/$m-warn"
	docker logs "$c" > "$tmp/$m-container.log" 2>&1
	docker exec "$c" postconf -h smtpd_recipient_restrictions > "$tmp/$m-restr"
	has "$m: natguard first in smtpd_recipient_restrictions, no policyd-spf" \
	    '^check_policy_service inet:127\.0\.0\.1:10041, permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination' \
	    "$tmp/$m-restr"
	hasnt "$m: no policyd-spf in the restrictions" 'policyd-spf' \
	    "$tmp/$m-restr"
	docker exec "$c" supervisorctl status natguard > "$tmp/$m-sv" 2>&1
	has "$m: natguard runs under supervisord" '^natguard +RUNNING' \
	    "$tmp/$m-sv"
	docker exec "$c" sh -c 'p=$(supervisorctl pid natguard) &&
	    echo "$(stat -c %U /proc/$p) $(tr "\0" " " < /proc/$p/cmdline)"' \
	    > "$tmp/$m-ps" 2>&1
	has "$m: natguard runs as its own user" '^natguard /usr/sbin/natguard' \
	    "$tmp/$m-ps"
	if [ $m = patches ]; then
		has "$m: its start-up lines in docker logs" \
		    'natguard\[[0-9]+\]: listening on inet:127\.0\.0\.1:10041' \
		    "$tmp/$m-container.log"
		has "$m: and why they are there" \
		    'natguard\[[0-9]+\]: warning: syslog: /dev/log: .*logging to stderr as well' \
		    "$tmp/$m-container.log"
		has "$m: user-patches.sh printed the gateway set to docker logs" \
		    "^$gw +32 +default-route" "$tmp/$m-container.log"
	else
		# Started after rsyslog: its start-up lines in mail.log.
		has "$m: its start-up lines in mail.log" \
		    'natguard\[[0-9]+\]: listening on inet:127\.0\.0\.1:10041' \
		    "$log"
		hasnt "$m: syslog there from its start" \
		    'natguard\[[0-9]+\]: warning: syslog:' "$log"
		docker exec "$c" readlink /var/lib/natguard > "$tmp/$m-state"
		has "$m: its state in /var/mail-state" \
		    '^/var/mail-state/lib-natguard$' "$tmp/$m-state"
	fi
	send $m-v4-pass $v4 user@pass.test postmaster@example.test
	send $m-v4-fail $v4 user@fail.test postmaster@example.test
	send $m-v6 $v6 user@pass.test postmaster@example.test
	delivered "$m: IPv4 client, SPF pass, delivered" \
	    "$tmp/$m-v4-pass.swaks" $m-v4-pass \
	    '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
	has "$m: IPv4 forged sender: natguard's 550 5.7.23" \
	    '^<\*\* +550 5\.7\.23 .* designate 198\.51\.100\.2 as permitted' \
	    "$tmp/$m-v4-fail.swaks"
	has "$m: natguard's decisions in docker-mailserver's mail.log" \
	    'natguard\[[0-9]+\]: NOQUEUE: action=REJECT reason=spf-fail client=198\.51\.100\.2 ' \
	    "$log"
	delivered "$m: IPv6 client through docker-proxy: delivered" \
	    "$tmp/$m-v6.swaks" $m-v6 ''
	has "$m: Postfix logged natguard's warning for the gateway $gw6" \
	    "warn: RCPT from [^ ]*\\[$gw6\\]: client address $gw6 is the default route's gateway" \
	    "$log"

	echo "--- $m: proxy, HAProxy's container in front (mode tcp)"
	p=$tmp/$m-proxy
	mkdir -p "$p"
	printf '%s\n' defaults '	mode tcp' '	timeout connect 5s' \
	    '	timeout client 60s' '	timeout server 60s' frontend\ smtp \
	    '	bind :2525' '	default_backend mx' backend\ mx \
	    "	server mx $mx:25" > "$p/haproxy.cfg"
	run docker run -d --name $m-proxy --network ng_mail -p 2525:2525 \
	    -v "$p:/p" natguard-test/proxy haproxy -db -f /p/haproxy.cfg \
	    > /dev/null
	pip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' $m-proxy)
	wait_for "docker exec $m-proxy ss -Hltn | grep -q ':2525 '" ||
	    die "the proxy is not listening: $(docker logs $m-proxy 2>&1 | tail -n 3)"
	for i in 1 2 3 4; do send_mx "$m-proxy-$i" 2525 "user@pass$i.test"; done
	no_5xx "$m: four SPF-passing senders through HAProxy" \
	    "$tmp/$m-proxy-"[1-4].swaks
	has "$m: the first: deferred as a private client" \
	    "^<\\*\\* +450 4\\.7\\.23 .*private address ${pip//./\\.}" \
	    "$tmp/$m-proxy-1.swaks"
	has "$m: natguard learned the proxy $pip within the threshold" \
	    "learned hider ${pip//./\\.} \\(probably tcp-proxy\\): 3 requests" \
	    "$log"
	delivered "$m: the fourth: warned about (source traffic) and delivered" \
	    "$tmp/$m-proxy-4.swaks" $m-proxy-4 ''
	has "$m: the warning names the proxy as a hider learned from traffic" \
	    "natguard\\[[0-9]+\\]: .*action=WARN reason=nat-gateway client=${pip//./\\.} gateway_source=traffic " \
	    "$log"

	echo "--- $m: restart, docker restart of the mail container"
	run docker restart "$c" > /dev/null
	wait_for "[ \$(docker logs '$c' 2>&1 | grep -c 'is up and running') -ge 2 ]" ||
	    die "no second start: $(docker logs "$c" 2>&1 | tail -n 5)"
	smtp_ready "$c"
	docker exec "$c" supervisorctl status natguard > "$tmp/$m-sv2" 2>&1
	has "$m: restart: natguard running again" '^natguard +RUNNING' \
	    "$tmp/$m-sv2"
	docker exec "$c" postconf -h smtpd_recipient_restrictions \
	    > "$tmp/$m-restr2"
	if [ "$(grep -o 'check_policy_service inet:127.0.0.1:10041' \
	    "$tmp/$m-restr2" | wc -l)" -eq 1 ]; then
		ok "$m: restart: natguard once in smtpd_recipient_restrictions"
		echo "    $(cat "$tmp/$m-restr2")"
	else
		bad "$m: restart: natguard once in the restrictions" "one" \
		    "$tmp/$m-restr2"
	fi
	# Its start-up lines: in docker logs with user-patches.sh (natguard
	# starts before rsyslog), in mail.log with the switch.
	p=$log
	[ $m = patches ] && { docker logs "$c" > "$tmp/$m-container2.log" 2>&1
	    p=$tmp/$m-container2.log; }
	has "$m: restart: natguard read the learned proxy from its state" \
	    'state file: 1 learned hiders' "$p"
	docker exec "$c" natguard gateways -c /etc/natguard/natguard.conf \
	    > "$tmp/$m-gateways" 2>&1
	has "$m: restart: natguard gateways shows the proxy, source traffic" \
	    "^${pip//./\\.} .*traffic" "$tmp/$m-gateways"
	send $m-v6-again $v6 user@pass.test postmaster@example.test
	delivered "$m: restart: the IPv6 client still warned about and delivered" \
	    "$tmp/$m-v6-again.swaks" $m-v6-again ''
	run docker rm -f $m-proxy > /dev/null
	compose "$tmp/$m-warn" down

	echo "--- $m: defer, nat_action = defer"
	dms_data "$tmp/$m-defer"
	compose_for "$tmp/$m-defer" "$ng_defer"
	ng_up "$tmp/$m-defer"
	send $m-defer-v6 $v6 user@pass.test postmaster@example.test
	has "$m: defer: the IPv6 client through docker-proxy gets 450 4.3.5" \
	    '^<\*\* +450 4\.3\.5 ' "$tmp/$m-defer-v6.swaks"
	not_delivered "$m: defer: not delivered" $m-defer-v6
	send $m-defer-v4 $v4 user@pass.test postmaster@example.test
	delivered "$m: defer: the IPv4 client still delivered" \
	    "$tmp/$m-defer-v4.swaks" $m-defer-v4 '^Received-SPF: pass '
	compose "$tmp/$m-defer" down

	for permit in network connected-networks; do
		echo "--- $m: relay, PERMIT_DOCKER=$permit, nat_action = defer"
		dms_data "$tmp/$m-relay-$permit"
		# shellcheck disable=SC2086
		dms_run "$m-relay-$permit" $ng_image ENABLE_POLICYD_SPF=0 \
		    PERMIT_DOCKER=$permit $ng_env "$ng_defer"
		docker exec "$c" postconf -h mynetworks > "$d/mynetworks"
		has "$m: $permit: the gateway $gw in mynetworks" \
		    "${gw%.*.*}\\.|172\\.16\\.0\\.0/12" "$d/mynetworks"
		relay_try "$m-relay-$permit"
		has "$m: $permit: an IPv6 client relaying outside is deferred, 450 4.3.5" \
		    '^<\*\* +450 4\.3\.5 ' "$tmp/$m-relay-$permit.swaks"
		has "$m: $permit: natguard's reason: the gateway, in mynetworks" \
		    "natguard\\[[0-9]+\\]: .*action=DEFER reason=nat-gateway client=$gw " \
		    "$log"
		hasnt "$m: $permit: nothing queued for outside.test" \
		    ': to=<someone@outside\.test>' "$log"
		run docker rm -f "$m-relay-$permit" > /dev/null
	done
}

# fixed: IPv6 all the way to the container, the client as itself.
fixed() {
	local m=$mode
	echo "--- $m: fixed, \"ip6tables\": true in daemon.json"
	dms_data "$tmp/$m-fixed"
	compose_for "$tmp/$m-fixed"
	ng_up "$tmp/$m-fixed"
	# Once, in CI, the first IPv6 connection after this dockerd restart was
	# refused: wait for Postfix's banner over IPv6 from the sender first.
	wait_for "ip netns exec '$rem' timeout 2 bash -c 'exec 3<>/dev/tcp/$v6/25 &&
	    head -c 3 <&3' 2>/dev/null | grep -q 220" ||
	    echo "    no banner over IPv6 within 20 s"
	send $m-v6-fixed $v6 user@pass.test postmaster@example.test
	delivered "$m: fixed: the IPv6 client as itself, SPF pass" \
	    "$tmp/$m-v6-fixed.swaks" $m-v6-fixed \
	    '^Received-SPF: pass .*client-ip=2001:db8:25::2'
	hasnt "$m: fixed: no NAT decision" 'reason=nat-gateway' "$log"
	compose "$tmp/$m-fixed" down
}

use_mode patches
scenarios
use_mode switch
scenarios

# natguard beside docker-mailserver's filters: Rspamd (Debian's 3.4, the
# milter, with its Redis) on, as DMS recommends it.
echo "--- switch: rspamd, ENABLE_RSPAMD=1 beside ENABLE_NATGUARD=1"
dms_data "$tmp/rspamd"
compose_for "$tmp/rspamd" ENABLE_RSPAMD=1
ng_up "$tmp/rspamd"
docker exec "$c" supervisorctl status rspamd natguard > "$tmp/rspamd.sv" 2>&1
has "rspamd: Rspamd running" '^rspamd +RUNNING' "$tmp/rspamd.sv"
has "rspamd: natguard running" '^natguard +RUNNING' "$tmp/rspamd.sv"
docker exec "$c" postconf -hx smtpd_milters > "$tmp/rspamd.milters"
has "rspamd: Rspamd is Postfix's milter" 'inet:localhost:11332' \
    "$tmp/rspamd.milters"
docker logs "$c" > "$tmp/rspamd.container.log" 2>&1
# docker-mailserver says it is up before Rspamd has loaded its rules: its
# milter listening is the signal (Postfix would accept unscanned before).
wait_long "docker exec '$c' bash -c 'exec 3<>/dev/tcp/127.0.0.1/11332' \
    2>/dev/null" || echo "    Rspamd's milter not listening within 60 s"
hasnt "rspamd: no advice against policyd-spf beside Rspamd (natguard took its place)" \
    'policyd-spf & Rspamd' "$tmp/rspamd.container.log"
send rspamd-v4 $v4 user@pass.test postmaster@example.test
send rspamd-v4-fail $v4 user@fail.test postmaster@example.test
send rspamd-v6 $v6 user@pass.test postmaster@example.test
delivered "rspamd: IPv4 SPF pass: natguard's header" "$tmp/rspamd-v4.swaks" \
    rspamd-v4 '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
delivered "rspamd: and Rspamd scanned it" "$tmp/rspamd-v4.swaks" \
    rspamd-v4 '^X-Rspamd-Queue-Id: '
has "rspamd: the forged sender: natguard's 550 5.7.23, before the milter" \
    '^<\*\* +550 5\.7\.23 ' "$tmp/rspamd-v4-fail.swaks"
# Rspamd sees the gateway too (SPF fail for it, no hostname): what natguard
# only warns about, Rspamd refuses for good.  The switch says so at start.
has "rspamd: the IPv6 client through docker-proxy: refused by Rspamd, 554" \
    '^<\*\* +554 5\.7\.1 ' "$tmp/rspamd-v6.swaks"
hasnt "rspamd: Postfix reached the milter for every message" \
    'warning: connect to Milter service' "$log"
has "rspamd: the switch advises NATGUARD_ACTION=defer beside Rspamd" \
    'Rspamd judges the gateway.*NATGUARD_ACTION=defer' \
    "$tmp/rspamd.container.log"
has "rspamd: natguard's warning for the gateway $gw6 before it" \
    "warn: RCPT from [^ ]*\\[$gw6\\]: client address $gw6 is the default route's gateway" \
    "$log"
compose "$tmp/rspamd" down

# docker-mailserver's own test of the switch (the patch's natguard.bats),
# with its own helpers: they are in its test/ tree, which the release
# tarball has not; DMS_CHECKOUT names a clone that has the v14.0.0 tag.
echo "--- switch: the patch's BATS test, in docker-mailserver's test tree"
if [ -z "${DMS_CHECKOUT:-}" ]; then
	echo "SKIP: $name: BATS: no DMS_CHECKOUT (a clone of docker-mailserver" \
	    "with tag v14.0.0: the release tarball has no test/)"
elif ! command -v bats >/dev/null 2>&1 ||
    [ ! -f /usr/lib/bats/bats-assert/load.bash ] ||
    [ ! -f /usr/lib/bats/bats-support/load.bash ]; then
	echo "SKIP: $name: BATS: apt-get install bats bats-support bats-assert"
else
	b=$tmp/dms-test
	mkdir -p "$b" "$tmp/bin"
	git -C "$DMS_CHECKOUT" archive v14.0.0 | tar -C "$b" -xf - ||
	    die "git archive v14.0.0 of $DMS_CHECKOUT"
	(cd "$b" && GIT_CEILING_DIRECTORIES=$b git apply \
	    "$srcdir/conf/docker-mailserver/upstream/enable-natguard.patch") ||
	    die "the upstream patch does not apply to v14.0.0's whole tree"
	ok "switch: the patch applies to v14.0.0's whole tree (docs/, test/)"
	# Its submodules, from Debian; its own `make generate-accounts`.
	for l in bats-support bats-assert; do
		rm -rf "$b/test/test_helper/$l"
		ln -s /usr/lib/bats/$l "$b/test/test_helper/$l"
	done
	cp "$b"/test/config/templates/postfix-accounts.cf \
	    "$b"/test/config/templates/dovecot-masters.cf "$b/test/config/"
	ln -s "$DOCKER_CLI" "$tmp/bin/docker"
	(cd "$b" && PATH=$tmp/bin:$PATH REPOSITORY_ROOT=$b \
	    DOCKER_HOST=unix://$tmp/dockerd/docker.sock \
	    IMAGE_NAME=natguard-test/dms-upstream bats --tap \
	    test/tests/parallel/set1/spam_virus/natguard.bats) \
	    > "$tmp/bats.out" 2>&1
	sed 's/^/    /' "$tmp/bats.out" | grep -E '^    (ok|not ok|1\.\.)'
	n=$(grep -c '^ok ' "$tmp/bats.out")
	all=$(sed -n 's/^1\.\.//p' "$tmp/bats.out")
	if [ -n "$all" ] && [ "$n" = "$all" ]; then
		ok "switch: BATS: natguard.bats, $n of $all passed"
	else
		bad "switch: BATS: every test of natguard.bats" "${all:-?} ok" \
		    "$tmp/bats.out"
	fi
fi

dockerd_stop
cat > "$tmp/daemon.json" <<'JSON'
{ "ipv6": true, "fixed-cidr-v6": "fd00:dead:beef::/64",
  "ip6tables": true, "experimental": true }
JSON
dockerd_start "$tmp/daemon.json"
use_mode patches
fixed
use_mode switch
fixed

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
