#!/bin/bash
# conf/docker-mailserver built and run for real: its Dockerfile, unchanged,
# on a stand-in for docker-mailserver's image (tests/e2e/dms-standin: no
# registry here serves the real one), its compose file with its
# environment and networks, its supervisor program, user-patches.sh and
# postfix-main.cf in the config volume.  Mail from a remote sender must
# flow through natguard there: IPv4 SPF pass delivered with natguard's
# header, a forged sender rejected, an IPv6 client through docker-proxy
# warned about (the shipped nat_action = warn) and delivered; then, with
# the daemon.json the compose file asks for, the IPv6 client as itself.
set -u

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
. "$srcdir/tests/e2e/docker-lib.sh"
. "$srcdir/tests/e2e/lib.sh"
docker_suite docker-dms dms sender
host=ngmh$$ rem=ngmr$$

# The stand-in tagged as docker-mailserver's image, then the shipped
# Dockerfile on top of it.
why=$(build_image "$tmp/dms.tar" natguard-test/dms-natguard \
    tests/e2e/dms-standin/Dockerfile:ghcr.io/docker-mailserver/docker-mailserver:14 \
    conf/docker-mailserver/Dockerfile:natguard-test/dms-natguard) ||
    skip "the images cannot be built here: $why"

docker_hosts
echo '{}' > "$tmp/daemon.json"
dockerd_start "$tmp/daemon.json"
run docker load -q -i "$tmp/dms.tar" > /dev/null
echo "$name: namespaces $host $rem, $(docker version -f \
    'dockerd {{.Server.Version}}')"

# docker-data/dms as the compose file has it: the config volume holds the
# shipped user-patches.sh and postfix-main.cf.
d=$tmp/docker-data/dms
mkdir -p "$d/config" "$d/mail-data" "$d/mail-state" "$d/mail-logs"
chown 65534:65534 "$d/mail-data"
cp "$srcdir/conf/docker-mailserver/user-patches.sh" \
    "$srcdir/conf/docker-mailserver/postfix-main.cf" "$d/config/"
# The test's own additions: its DNS zone on the container's loopback.
zone_conf > "$tmp/zone.conf"
echo "nameserver 127.0.0.1" > "$tmp/resolv.conf"
cat > "$tmp/test-dns.conf" <<'EOF2'
[program:test-dns]
command=/usr/sbin/dnsmasq --keep-in-foreground --user=root --conf-file=/etc/test-zone.conf
autostart=true
startsecs=0
EOF2
# The shipped compose file, with the image built above in place of its
# build: section and the volumes where this test keeps them.
/usr/bin/python3 - "$srcdir/conf/docker-mailserver/compose.yaml" \
    "$tmp/compose.yaml" "$tmp" <<'PY' || die "the compose file"
import sys, yaml
shipped, out, tmp = sys.argv[1:]
c = yaml.safe_load(open(shipped))
m = c["services"]["mailserver"]
m.pop("build")
m["image"] = "natguard-test/dms-natguard"
vols = []
for v in m["volumes"]:
    host, ctr = v.split(":")[:2]
    if host.startswith("./"):
        vols.append(tmp + "/" + host[2:] + ":" + ctr)
vols += [tmp + "/zone.conf:/etc/test-zone.conf:ro",
         tmp + "/test-dns.conf:/etc/supervisor/conf.d/test-dns.conf:ro",
         tmp + "/resolv.conf:/etc/resolv.conf:ro"]
m["volumes"] = vols
yaml.safe_dump(c, open(out, "w"))
PY
compose "$tmp" up -d
log=$d/mail-logs/mail.log mail=$d/mail-data
c=$(docker ps -q -f label=com.docker.compose.service=mailserver)
# Ready when Postfix said so in the mail log and supervisord has natguard
# RUNNING (startsecs=1; its own first lines go to syslog before rsyslog is
# up, as in docker-mailserver, which is why user-patches.sh prints the
# gateway set to the container's log).
wait_for "grep -qs 'postfix/master.*daemon started' '$log' &&
    docker exec $c supervisorctl status natguard | grep -q RUNNING" ||
    die "the mail server did not start: $(tail -n 5 "$log" 2>&1;
    docker logs "$c" 2>&1 | tail -n 10)"
docker logs "$c" > "$tmp/container.log" 2>&1
gw=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}' "$c")
gw6=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPv6Gateway}}{{end}}' "$c")

has "user-patches.sh ran from the config volume" \
    'mailserver: running /tmp/docker-mailserver/user-patches.sh' \
    "$tmp/container.log"
has "natguard first in smtpd_recipient_restrictions, no policyd-spf" \
    '^mailserver: smtpd_recipient_restrictions = check_policy_service inet:127\.0\.0\.1:10041, permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination, reject_unauth_pipelining' \
    "$tmp/container.log"
hasnt "no policyd-spf left" 'policyd-spf' "$tmp/container.log"
has "user-patches.sh logged the gateway set" \
    "^$gw +32 +default-route +eth0" "$tmp/container.log"
docker exec "$c" postconf -h smtpd_policy_service_timeout > "$tmp/timeout"
has "postfix-main.cf merged: the policy timeout" '^100s$' "$tmp/timeout"
docker exec "$c" supervisorctl status natguard > "$tmp/sv" 2>&1
has "natguard runs under supervisord (the shipped program)" \
    '^natguard +RUNNING' "$tmp/sv"

v4=198.51.100.1 v6=2001:db8:25::1
send v4-pass $v4 user@pass.test postmaster@example.test
send v4-fail $v4 user@fail.test postmaster@example.test
send v6 $v6 user@pass.test postmaster@example.test
delivered "IPv4 client, SPF pass, through natguard" "$tmp/v4-pass.swaks" \
    v4-pass '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
has "IPv4 forged sender: natguard's 550 5.7.23" \
    '^<\*\* +550 5\.7\.23 .* designate 198\.51\.100\.2 as permitted' \
    "$tmp/v4-fail.swaks"
has "natguard's decisions in docker-mailserver's mail log" \
    'natguard\[[0-9]+\]: NOQUEUE: action=REJECT reason=spf-fail client=198\.51\.100\.2 ' \
    "$log"
delivered "IPv6 client through docker-proxy: warned about, delivered" \
    "$tmp/v6.swaks" v6 ''
# The compose file's network has IPv6, so docker-proxy reaches the
# container over IPv6: the client is the network's IPv6 gateway.
has "Postfix logged natguard's warning for the IPv6 gateway $gw6" \
    "warn: RCPT from [^ ]*\\[$gw6\\]: client address $gw6 is the default route's gateway" \
    "$log"
compose "$tmp" down

# The daemon.json that the compose file's comment asks for: ip6tables
# carries IPv6 clients to the container with their own address.
echo "--- with \"ip6tables\": true in daemon.json"
dockerd_stop
cat > "$tmp/daemon.json" <<'JSON'
{ "ipv6": true, "fixed-cidr-v6": "fd00:dead:beef::/64",
  "ip6tables": true, "experimental": true }
JSON
dockerd_start "$tmp/daemon.json"
: > "$log"
compose "$tmp" up -d
c=$(docker ps -q -f label=com.docker.compose.service=mailserver)
wait_for "grep -qs 'postfix/master.*daemon started' '$log' &&
    docker exec $c supervisorctl status natguard | grep -q RUNNING" ||
    die "the mail server did not start again: $(tail -n 5 "$log" 2>&1)"
send v6-fixed $v6 user@pass.test postmaster@example.test
delivered "IPv6 client with ip6tables: SPF pass for its own address" \
    "$tmp/v6-fixed.swaks" v6-fixed \
    '^Received-SPF: pass .*client-ip=2001:db8:25::2'
hasnt "no NAT decision once ip6tables is on" 'reason=nat-gateway' "$log"
compose "$tmp" down

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
