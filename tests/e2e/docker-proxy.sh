#!/bin/bash
# End to end under real Docker: a TCP proxy container publishes port 25
# in front of the mail container, as mailcow, Mailu and docker-mailserver
# users do beside their web apps.  A private dockerd (Debian's docker.io)
# in a network namespace of the test's own is the Docker host; Debian's
# HAProxy and nginx (stream module) run in their own container on a user
# network with the mail container (Postfix, natguard with gateways = auto,
# the test's DNS zone).
#
#   remote ns             host ns (dockerd)        user network 172.29.9.0/24
#   swaks                 198.51.100.1             proxy .3: HAProxy :25, :587
#   198.51.100.2  -----   25, 587, 2525              (send-proxy), nginx :2525
#                         published by the proxy   mail .2: Postfix :25,
#                                                    :10025 (PROXY protocol)
#
# Without PROXY protocol every client is the proxy's address: no SPF-
# passing sender may get a 5xx, and natguard learns the proxy; with it on
# both ends SPF sees the real client.
set -u

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
. "$srcdir/tests/e2e/docker-lib.sh"
. "$srcdir/tests/e2e/lib.sh"
docker_suite docker-proxy dproxy sender
: "${NATGUARD:?NATGUARD must name the binary}"
host=ngph$$ rem=ngpr$$

# shellcheck disable=SC2086
mailtar=$(rootfs mail postfix dnsmasq-base iproute2 $(natguard_libs)) ||
    skip "cannot build the Debian 12 root: $mailtar"
proxytar=$(rootfs proxy haproxy nginx-light libnginx-mod-stream iproute2) ||
    skip "cannot build the proxy's Debian 12 root: $proxytar"
asan="-e ASAN_OPTIONS=detect_leaks=0"

docker_hosts
echo '{}' > "$tmp/defaults.json"
dockerd_start "$tmp/defaults.json"
run docker import "$mailtar" natguard-test/mail >/dev/null
run docker import "$proxytar" natguard-test/proxy >/dev/null
run docker network create --subnet 172.29.9.0/24 mailnet >/dev/null
echo "$name: namespaces $host $rem, $(docker version -f \
    'dockerd {{.Server.Version}}'), $(docker run --rm natguard-test/proxy \
    haproxy -v | head -n 1 | cut -d' ' -f1-3)"

mail_zone=hider_zone
mail_conf="state_dir = /ng/state"
mail_master="10025 inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy"
mail_run mx defer --network mailnet --ip 172.29.9.2
use mx

# The proxy container: HAProxy and nginx, as their users configure them.
p=$tmp/proxy
mkdir -p "$p/nginx"
cat > "$p/haproxy.cfg" <<EOF
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend smtp
	bind :25
	default_backend mx
backend mx
	server mx 172.29.9.2:25
frontend smtp-proxy-protocol
	bind :587
	default_backend mx-pp
backend mx-pp
	server mx 172.29.9.2:10025 send-proxy
EOF
cat > "$p/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
pid /p/nginx/nginx.pid;
error_log /p/nginx/error.log warn;
events { worker_connections 64; }
stream {
	server {
		listen 2525;
		proxy_pass 172.29.9.2:25;
	}
}
EOF
run docker run -d --name proxy --network mailnet --ip 172.29.9.3 \
    -p 25:25 -p 587:587 -p 2525:2525 -v "$p:/p" natguard-test/proxy \
    sh -c 'haproxy -db -f /p/haproxy.cfg & nginx -p /p/nginx -c /p/nginx.conf & wait' \
    >/dev/null
wait_for "docker exec proxy ss -Hltn | grep -q ':2525 ' &&
    docker exec proxy ss -Hltn | grep -q ':25 '" ||
    die "the proxy is not listening: $(docker logs proxy 2>&1 | tail -n 3)"

# send NAME PORT FROM: through the published port (lib.sh's send_mx).
send() { send_mx "$@"; }
# What natguard answered before this change, for the same request: a
# private client rejected like any other, nothing learned.
printf '%s\n' 'log = stderr' 'mynetworks = none' 'private_spf_action = reject' \
    'hider_learning = no' 'state_dir =' > "$tmp/mx/before.conf"
before() {	# client sender
	docker exec mx /usr/local/sbin/natguard check -c /ng/before.conf \
	    client_address="$1" sender="$2" helo_name="mx.${2#*@}" \
	    2>/dev/null | head -n 1 | cut -c 1-60
}

# --- 1: HAProxy in mode tcp ---------------------------------------------------
echo "--- 1: HAProxy's container publishes port 25 (mode tcp, no PROXY protocol)"
for i in 1 2 3 4 5 6 7 8; do send "1-$i" 25 "user@pass$i.test"; done
no_5xx "1: eight SPF-passing senders through HAProxy" "$tmp"/1-[1-8].swaks
has "1: Postfix saw the proxy container, not the client" \
    'reject: RCPT from [^ ]*\[172\.29\.9\.3\]: 450 4\.7\.23 ' "$log"
has "1: the first: deferred as a private client" \
    '^<\*\* +450 4\.7\.23 .*private address 172\.29\.9\.3' "$tmp/1-1.swaks"
has "1: natguard learned the proxy within the threshold" \
    'learned hider 172\.29\.9\.3 \(probably tcp-proxy\): 3 requests' "$nglog"
has "1: the fourth: 450 4.3.5, the proxy a gateway of source traffic" \
    '^<\*\* +450 4\.3\.5 ' "$tmp/1-4.swaks"
has "1: the explanation gives PROXY protocol on both ends" \
    'client=172\.29\.9\.3 gateway_source=traffic .*send-proxy.*smtpd_upstream_proxy_protocol' \
    "$nglog"
for i in 1 2 3 4 5 6 7 8; do not_delivered "1-$i" "1-$i"; done
echo "TABLE: TCP proxy container (HAProxy, Docker user network) | 172.29.9.3 | $(before 172.29.9.3 user@pass1.test) | $(reply "$tmp/1-1.swaks") (1-3); $(reply "$tmp/1-4.swaks") (4-8)"

# --- 2: the mail container restarted ------------------------------------------
echo "--- 2: docker restart of the mail container: the learned proxy is kept"
rm -f "$tmp/mx/ready"
mkfifo "$tmp/mx/ready"
run docker restart mx >/dev/null
mail_ready mx
has "2: natguard read its state file" 'state file: 1 learned hiders' \
    "$nglog"
send 2 25 user@pass1.test
has "2: the first mail after the restart: 450 4.3.5" '^<\*\* +450 4\.3\.5 ' \
    "$tmp/2.swaks"

# --- 3: PROXY protocol on both ends -------------------------------------------
echo "--- 3: HAProxy send-proxy to a Postfix service with smtpd_upstream_proxy_protocol = haproxy"
send 3-pass 587 user@pass1.test
send 3-forged 587 user@fail.test
delivered "3: SPF pass for the real client" "$tmp/3-pass.swaks" 3-pass \
    '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
has "3: a forged sender: 550 5.7.23 for the real client" \
    '^<\*\* +550 5\.7\.23 .*designate 198\.51\.100\.2' "$tmp/3-forged.swaks"

# --- 4: nginx stream ----------------------------------------------------------
echo "--- 4: nginx's stream module in the same container, port 2525"
docker exec mx /usr/local/sbin/natguard gateways -c /ng/natguard.conf \
    --forget 172.29.9.3 > "$tmp/4-forget.out" 2>&1
has "4: gateways --forget in the container" '^forgot 172\.29\.9\.3' \
    "$tmp/4-forget.out"
wait_for "grep -q 'state file changed by another writer' '$nglog'" ||
    bad "4: the daemon followed --forget" "a log line" "$nglog"
for i in 1 2 3 4; do send "4-$i" 2525 "user@pass$i.test"; done
no_5xx "4: four SPF-passing senders through nginx" "$tmp"/4-[1-4].swaks
has "4: learned again, from nginx's traffic" \
    'learned hider 172\.29\.9\.3 \(probably tcp-proxy\)' "$nglog"
echo "TABLE: TCP proxy container (nginx stream, Docker user network) | 172.29.9.3 | $(before 172.29.9.3 user@pass1.test) | $(reply "$tmp/4-1.swaks") (1-3); $(reply "$tmp/4-4.swaks") (4)"

# --- 5: audit over the run's logs ----------------------------------------------
"$NATGUARD" audit --json "$log" > "$tmp/audit.json" 2>&1
has "5: audit of Postfix's log: the proxy is a suspected hider" \
    '"172\.29\.9\.3": \{' "$tmp/audit.json"
has "5: and the mail it cost" '"from": "user@pass2\.test"' "$tmp/audit.json"

if grep -l -E 'Sanitizer|runtime error:' "$tmp"/*/natguard.log 2>/dev/null
then
	bad "no sanitizer report" "none" "$(grep -h -E 'Sanitizer|runtime error:' \
	    "$tmp"/*/natguard.log | head -n 3)"
fi
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
