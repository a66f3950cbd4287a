#!/bin/bash
# natguard in the real docker-mailserver: v14.0.0 built from its own tree
# ($SHARED/dms: the release tarball and the patch that builds it offline),
# conf/docker-mailserver/Dockerfile built on it unchanged, run with the
# shipped compose file, user-patches.sh and postfix-main.cf, under a
# private dockerd, mail from a remote sender in another namespace.
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
#   restart  docker restart: natguard back, the restrictions not doubled
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
# overlay2: the image has dozens of layers of 700 MB in all.
export DOCKER_STORAGE=overlay2
dms=ghcr.io/docker-mailserver/docker-mailserver:14
t0=$SECONDS
why=$(dms_images natguard-test/dms-natguard) ||
    skip "the images cannot be built here: $why"
echo "$name: images built in $((SECONDS - t0)) s"

docker_hosts
# The sender domains' records, served from the Docker host (the
# containers' resolv.conf points there); docker-mailserver refuses a
# sender domain without an MX or address (reject_unknown_sender_domain).
zone_conf | sed 's/^listen-address=.*/listen-address=198.51.100.1/' \
    > "$tmp/zone.conf"
printf '%s\n' 'mx-host=pass.test,client.pass.test,10' \
    'mx-host=fail.test,client.pass.test,10' >> "$tmp/zone.conf"
run ip netns exec "$host" dnsmasq --conf-file="$tmp/zone.conf" \
    --pid-file="$tmp/dnsmasq.pid" --user=root
echo "nameserver 198.51.100.1" > "$tmp/resolv.conf"
echo '{}' > "$tmp/daemon.json"
dockerd_start "$tmp/daemon.json"
echo "$name: namespaces $host $rem, $(docker version -f \
    'dockerd {{.Server.Version}}'), $(docker image inspect -f \
    '{{.Size}}' "$dms" | awk '{ printf "docker-mailserver %d MB", $1 / 1e6 }')"

# Fault 2 of issue 20: the layer natguard's Dockerfile adds.
layer=$(( ($(docker image inspect -f '{{.Size}}' natguard-test/dms-natguard) -
    $(docker image inspect -f '{{.Size}}' "$dms")) / 1000 ))
docker history --no-trunc --format '{{.Size}} {{.CreatedBy}}' \
    natguard-test/dms-natguard | head -n 6 > "$tmp/history"
if [ $layer -lt 5000 ]; then
	ok "natguard's layers add $layer kB to docker-mailserver's image"
else
	bad "natguard's layers add under 5 MB" "< 5000 kB" "$tmp/history"
fi
sed 's/^/    /' "$tmp/history"

# The config volume: one account (docker-mailserver waits for one), the
# shipped user-patches.sh and postfix-main.cf.
dms_data() {	# dir
	local d=$1
	mkdir -p "$d/config" "$d/mail-data" "$d/mail-state" "$d/mail-logs"
	printf 'postmaster@example.test|%s\n' "$(/usr/bin/python3 -c \
	    'import crypt; print("{SHA512-CRYPT}" + crypt.crypt("test",
	    crypt.mksalt(crypt.METHOD_SHA512)))' 2>/dev/null)" \
	    > "$d/config/postfix-accounts.cf"
}
# Only what a test needs on: no ClamAV signatures here, no updates.
dms_env="ENABLE_CLAMAV=0 ENABLE_AMAVIS=0 ENABLE_SPAMASSASSIN=0
ENABLE_FAIL2BAN=0 ENABLE_RSPAMD=0 ENABLE_OPENDKIM=0 ENABLE_OPENDMARC=0
ENABLE_UPDATE_CHECK=0 LOG_LEVEL=info"
# Ready: docker-mailserver's own last start-up line.
dms_ready() {	# container
	local n
	# wait_for waits 20 s; the image takes up to a minute on a busy machine.
	for n in 1 2 3; do
		wait_for "docker logs '$1' 2>&1 | grep -q 'is up and running'" &&
		    return 0
	done
	die "$1 did not start in 60 s: $(docker logs "$1" 2>&1 | tail -n 8)"
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

# The shipped compose file, with the image built above in place of its
# build: section, the volumes where this test keeps them, and the
# environment a scenario adds.
compose_for() {	# dir, environment..., [-v host:ctr]...
	local d=$1
	shift
	/usr/bin/python3 - "$srcdir/conf/docker-mailserver/compose.yaml" \
	    "$d/compose.yaml" "$d" "$tmp" $dms_env "$@" <<'PY' ||
import sys, yaml
shipped, out, d, tmp = sys.argv[1:5]
c = yaml.safe_load(open(shipped))
m = c["services"]["mailserver"]
m.pop("build")
m["image"] = "natguard-test/dms-natguard"
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
args = sys.argv[5:]
for a in args:
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
}

echo "--- warn: natguard as shipped"
dms_data "$tmp/warn"
cp "$srcdir/conf/docker-mailserver/user-patches.sh" \
    "$srcdir/conf/docker-mailserver/postfix-main.cf" "$tmp/warn/config/"
compose_for "$tmp/warn"
ng_up "$tmp/warn"
docker logs "$c" > "$tmp/container.log" 2>&1
docker exec "$c" postconf -h smtpd_recipient_restrictions > "$tmp/restr"
has "natguard first in smtpd_recipient_restrictions, no policyd-spf" \
    '^check_policy_service inet:127\.0\.0\.1:10041, permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination' \
    "$tmp/restr"
hasnt "no policyd-spf in the restrictions" 'policyd-spf' "$tmp/restr"
docker exec "$c" supervisorctl status natguard > "$tmp/sv" 2>&1
has "natguard runs under supervisord" '^natguard +RUNNING' "$tmp/sv"
docker exec "$c" sh -c 'p=$(supervisorctl pid natguard) &&
    echo "$(stat -c %U /proc/$p) $(tr "\0" " " < /proc/$p/cmdline)"' \
    > "$tmp/ps" 2>&1
has "natguard runs as its own user" '^natguard /usr/sbin/natguard' \
    "$tmp/ps"
has "its start-up lines in docker logs" \
    'natguard\[[0-9]+\]: listening on inet:127\.0\.0\.1:10041' \
    "$tmp/container.log"
has "and why they are there" \
    'natguard\[[0-9]+\]: warning: syslog: /dev/log: .*logging to stderr as well' \
    "$tmp/container.log"
has "user-patches.sh printed the gateway set to docker logs" "^$gw +32 +default-route" \
    "$tmp/container.log"
send v4-pass $v4 user@pass.test postmaster@example.test
send v4-fail $v4 user@fail.test postmaster@example.test
send v6 $v6 user@pass.test postmaster@example.test
delivered "warn: IPv4 client, SPF pass, delivered" "$tmp/v4-pass.swaks" \
    v4-pass '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
has "warn: IPv4 forged sender: natguard's 550 5.7.23" \
    '^<\*\* +550 5\.7\.23 .* designate 198\.51\.100\.2 as permitted' \
    "$tmp/v4-fail.swaks"
has "warn: natguard's decisions in docker-mailserver's mail.log" \
    'natguard\[[0-9]+\]: NOQUEUE: action=REJECT reason=spf-fail client=198\.51\.100\.2 ' \
    "$log"
delivered "warn: IPv6 client through docker-proxy: delivered" \
    "$tmp/v6.swaks" v6 ''
has "warn: Postfix logged natguard's warning for the gateway $gw6" \
    "warn: RCPT from [^ ]*\\[$gw6\\]: client address $gw6 is the default route's gateway" \
    "$log"

echo "--- restart: docker restart of the mail container"
run docker restart "$c" > /dev/null
wait_for "[ \$(docker logs '$c' 2>&1 | grep -c 'is up and running') -ge 2 ]" ||
    die "no second start: $(docker logs "$c" 2>&1 | tail -n 5)"
docker exec "$c" supervisorctl status natguard > "$tmp/sv2" 2>&1
has "restart: natguard running again" '^natguard +RUNNING' "$tmp/sv2"
docker exec "$c" postconf -h smtpd_recipient_restrictions > "$tmp/restr2"
if [ "$(grep -o 'check_policy_service inet:127.0.0.1:10041' \
    "$tmp/restr2" | wc -l)" -eq 1 ]; then
	ok "restart: natguard once in smtpd_recipient_restrictions"
	echo "    $(cat "$tmp/restr2")"
else
	bad "restart: natguard once in the restrictions" "one" "$tmp/restr2"
fi
: > "$tmp/v6.swaks"
send v6-again $v6 user@pass.test postmaster@example.test
delivered "restart: the IPv6 client still warned about and delivered" \
    "$tmp/v6-again.swaks" v6-again ''
compose "$tmp/warn" down

echo "--- defer: nat_action = defer"
dms_data "$tmp/defer"
cp "$srcdir/conf/docker-mailserver/user-patches.sh" \
    "$srcdir/conf/docker-mailserver/postfix-main.cf" "$tmp/defer/config/"
sed 's/^nat_action = warn$/nat_action = defer/' \
    "$srcdir/conf/docker-mailserver/natguard.conf" > "$tmp/defer.conf"
compose_for "$tmp/defer" "$tmp/defer.conf:/etc/natguard/natguard.conf:ro"
ng_up "$tmp/defer"
send defer-v6 $v6 user@pass.test postmaster@example.test
has "defer: the IPv6 client through docker-proxy gets 450 4.3.5" \
    '^<\*\* +450 4\.3\.5 ' "$tmp/defer-v6.swaks"
not_delivered "defer: not delivered" defer-v6
send defer-v4 $v4 user@pass.test postmaster@example.test
delivered "defer: the IPv4 client still delivered" "$tmp/defer-v4.swaks" \
    defer-v4 '^Received-SPF: pass '
compose "$tmp/defer" down

for permit in network connected-networks; do
	echo "--- relay: PERMIT_DOCKER=$permit, natguard with nat_action = defer"
	dms_data "$tmp/relay-$permit"
	cp "$srcdir/conf/docker-mailserver/user-patches.sh" \
	    "$srcdir/conf/docker-mailserver/postfix-main.cf" \
	    "$tmp/relay-$permit/config/"
	dms_run "relay-$permit" natguard-test/dms-natguard ENABLE_POLICYD_SPF=0 \
	    PERMIT_DOCKER=$permit \
	    "$tmp/defer.conf:/etc/natguard/natguard.conf:ro"
	docker exec "$c" postconf -h mynetworks > "$d/mynetworks"
	has "$permit: the gateway $gw in mynetworks" \
	    "${gw%.*.*}\\.|172\\.16\\.0\\.0/12" "$d/mynetworks"
	relay_try "relay-$permit"
	has "$permit: an IPv6 client relaying outside is deferred, 450 4.3.5" \
	    '^<\*\* +450 4\.3\.5 ' "$tmp/relay-$permit.swaks"
	has "$permit: natguard's reason: the gateway, in mynetworks" \
	    "natguard\\[[0-9]+\\]: .*action=DEFER reason=nat-gateway client=$gw " \
	    "$log"
	hasnt "$permit: nothing queued for outside.test" \
	    ': to=<someone@outside\.test>' "$log"
	run docker rm -f "relay-$permit" > /dev/null
done

echo "--- fixed: \"ip6tables\": true in daemon.json"
dockerd_stop
cat > "$tmp/daemon.json" <<'JSON'
{ "ipv6": true, "fixed-cidr-v6": "fd00:dead:beef::/64",
  "ip6tables": true, "experimental": true }
JSON
dockerd_start "$tmp/daemon.json"
dms_data "$tmp/fixed"
cp "$srcdir/conf/docker-mailserver/user-patches.sh" \
    "$srcdir/conf/docker-mailserver/postfix-main.cf" "$tmp/fixed/config/"
compose_for "$tmp/fixed"
ng_up "$tmp/fixed"
# Once, in CI, the first IPv6 connection after this dockerd restart was
# refused: wait for Postfix's banner over IPv6 from the sender first.
wait_for "ip netns exec '$rem' timeout 2 bash -c 'exec 3<>/dev/tcp/$v6/25 &&
    head -c 3 <&3' 2>/dev/null | grep -q 220" ||
    echo "    no banner over IPv6 within 20 s"
send v6-fixed $v6 user@pass.test postmaster@example.test
delivered "fixed: the IPv6 client as itself, SPF pass" \
    "$tmp/v6-fixed.swaks" v6-fixed \
    '^Received-SPF: pass .*client-ip=2001:db8:25::2'
hasnt "fixed: no NAT decision" 'reason=nat-gateway' "$log"
compose "$tmp/fixed" down

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
