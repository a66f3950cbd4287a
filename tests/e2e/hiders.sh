#!/bin/bash
# End to end: hiders natguard cannot see from inside the mail host, each
# made of the real part or the kernel mechanism it uses, in front of real
# Postfix with natguard first in smtpd_recipient_restrictions.
#
#   rem ns (the Internet)    mid ns (the hider)              mx ns (mail)
#   swaks 198.51.100.2 ----- 198.51.100.1                     Postfix :25, :10025
#                            HAProxy :25 (mode tcp)  -->      (PROXY protocol)
#                            HAProxy :587 send-proxy -> :10025 natguard :10041
#                            nginx stream :2525               dnsmasq 127.0.0.1
#                            iptables DNAT+SNAT :30025, :2526, :2527
#                            172.29.8.3 .4 .5 .10 ----------- 172.29.8.2/24 eth0
#                            10.0.0.2 ----------------------- 10.0.0.3/24 ingress
#
# kube-proxy's Cluster policy, a router's hairpin NAT and Swarm's ingress
# SNAT are rebuilt with the kernel mechanism they use (iptables DNAT and
# SNAT/MASQUERADE in a namespace), as the suite says when it runs them;
# HAProxy and nginx are Debian's.  Every address is the test's own, inside
# namespaces it made; nothing it starts outlives it.
set -u

name=hiders
skip() { echo "SKIP: $name: $*"; exit 77; }
. "$(dirname "$0")/../netns.sh"
netns_check "$name"
PATH=$PATH:/usr/sbin
for tool in ip postfix postconf swaks dnsmasq ss haproxy nginx iptables \
    python3; do
	command -v $tool >/dev/null 2>&1 || skip "$tool is not installed" \
	    "(apt-get install postfix swaks dnsmasq-base haproxy nginx-light" \
	    "libnginx-mod-stream iptables)"
done
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] ||
    skip "nginx has no stream module (apt-get install libnginx-mod-stream)"
: "${NATGUARD:?NATGUARD must name the binary}"
srcdir=$(cd "$(dirname "$0")/../.." && pwd)

rem=nghr$$ mid=nghm$$ mx=nghx$$
. "$srcdir/tests/e2e/lib.sh"
kit_init hiders
pf=$tmp/postfix log=$tmp/maillog mail=$tmp/mail
state=$tmp/state
kit_on_exit "ip netns exec $mx postfix -c $pf stop >/dev/null 2>&1"
# The swarm's dockerd leaves namespace mounts under its exec root
# (unmounted lazily: they may still be busy).
kit_on_exit "awk -v t='$tmp' 'index(\$2, t) == 1 { print \$2 }' /proc/mounts |
    sort -r | xargs -r -n 1 umount -l 2>/dev/null"

# --- topology --------------------------------------------------------------

kit_ns "$rem" "$mid" "$mx"
run ip link add ethr netns "$mid" type veth peer name eth0 netns "$rem"
run ip -n "$mid" addr add 198.51.100.1/24 dev ethr
run ip -n "$rem" addr add 198.51.100.2/24 dev eth0
run ip link add ethm netns "$mid" type veth peer name eth0 netns "$mx"
# The proxy's own address first: HAProxy connects from it.
for a in 172.29.8.3 172.29.8.4 172.29.8.5 172.29.8.10; do
	run ip -n "$mid" addr add $a/24 dev ethm
done
run ip -n "$mx" addr add 172.29.8.2/24 dev eth0
run ip link add ethi netns "$mid" type veth peer name ingress netns "$mx"
run ip -n "$mid" addr add 10.0.0.2/24 dev ethi
run ip -n "$mx" addr add 10.0.0.3/24 dev ingress
for l in ethr ethm ethi; do run ip -n "$mid" link set $l up; done
run ip -n "$rem" link set eth0 up
for l in eth0 ingress; do run ip -n "$mx" link set $l up; done
run ip -n "$rem" route add default via 198.51.100.1
# The mail host's gateway is not the hider: a router it never uses here.
run ip -n "$mx" route add default via 172.29.8.1 dev eth0 onlink
run ip -n "$mx" route add 192.168.77.0/24 via 172.29.8.3
run netns_sysctl "$mid" net.ipv4.ip_forward 1

# DNS on the mail host's loopback: eight sender domains whose SPF passes
# for the real client, one that fails it, an office's.
{
	hider_zone
	echo 'mx-host=outside.test,mx.outside.test,10'
	echo 'host-record=mx.outside.test,192.0.2.25'
} > "$tmp/dnsmasq.conf"
dns_start "$mx" "$tmp/dnsmasq.conf"

# Postfix, natguard before permit_mynetworks as conf/postfix says; the
# office scanner 172.29.8.10 in mynetworks; port 10025 expects PROXY
# protocol, as a proxy's fixed backend would.
mkdir -p "$pf" "$tmp/queue" "$tmp/data" "$mail"
chown 65534:65534 "$mail"
chown postfix: "$tmp/data"
cp "$srcdir/tests/e2e/master.cf" "$pf/master.cf"
echo "10025 inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy" \
    >> "$pf/master.cf"
main_cf "$tmp/queue" "$tmp/data" "$log" "$mail" > "$pf/main.cf"
mynet='127.0.0.0/8 [::1]/128 172.29.8.10/32'
postconf -c "$pf" -e "mynetworks = $mynet"
ip netns exec "$mx" postfix -c "$pf" start >"$tmp/postfix.out" 2>&1 ||
    die "postfix start: $(cat "$tmp/postfix.out")"
pf_reload() {
	postconf -c "$pf" -e "$@"
	ip netns exec "$mx" postfix -c "$pf" reload >/dev/null 2>&1 ||
	    die "postfix reload"
}

# natguard: its mynetworks from this Postfix (MAIL_CONFIG), its state in
# $state.  Ready when it logs "listening on"; extra environment as given.
cat > "$tmp/natguard.conf" <<EOF
listen = inet:127.0.0.1:10041
log = stderr
gateways = auto
state_dir = $state
audit_log = $tmp/audit.json
metrics_listen = 127.0.0.1:10042
EOF
ng_start() { natguard_start "$mx" "$tmp/natguard.conf" MAIL_CONFIG="$pf" "$@"; }
ng() {	# natguard SUBCOMMAND [ARGS]: with the daemon's configuration
	local c=$1
	shift
	ip netns exec "$mx" env MAIL_CONFIG="$pf" "$NATGUARD" "$c" \
	    -c "${NGCONF:-$tmp/natguard.conf}" "$@"
}
lines() { wc -l < "$nglog"; }
# The daemon writes a new hider to its state file within a second.
state_has() { wait_for "grep -q '\"address\": \"$1\"' '$state/hiders.json' 2>/dev/null"; }
# The log from line N on has a line matching the regex: wait for it.
log_after() { wait_for "tail -n +$1 '$nglog' | grep -qE -- '$2'"; }

# send NAME SERVER PORT FROM [TO] [NS] [BIND]: one transaction; the HELO is
# the sender domain's mail host (no SPF record of its own, so MAIL FROM
# decides, as for most senders).
send() {
	local to=${5:-postmaster@example.test} ns=${6:-$rem} dom=${4#*@}
	ip netns exec "$ns" swaks --server "$2" --port "$3" --timeout 20 \
	    ${7:+--local-interface "$7"} --helo "mx.$dom" --from "$4" \
	    --to "$to" --header "Subject: natguard e2e $1" --body "case $1" \
	    > "$tmp/$1.swaks" 2>&1
}
# table KIND SAW BEFORE AFTER: a row of the README's "Every hider" table.
table() { echo "TABLE: $1 | $2 | $3 | $4"; }
# What natguard answered before this change, for the same request: as
# then, a private client rejected like any other, nothing learned.
printf '%s\n' 'log = stderr' 'mynetworks = none' 'private_spf_action = reject' \
    'hider_learning = no' 'state_dir =' > "$tmp/before.conf"
before() {	# client sender
	NGCONF=$tmp/before.conf ng check client_address="$1" sender="$2" \
	    helo_name="mx.${2#*@}" 2>/dev/null | head -n 1
}

echo "$name: namespaces $rem $mid $mx, Postfix $(postconf -d -h mail_version)," \
    "$(haproxy -v | head -n 1 | cut -d' ' -f1-3), $(nginx -v 2>&1)"
ng_start

# --- a: HAProxy in mode tcp, no PROXY protocol -------------------------------
echo "--- a: HAProxy (mode tcp, no PROXY protocol) in front of Postfix"
haproxy_tcp "$mid" 25 <<EOF
frontend smtp
	bind 198.51.100.1:25
	default_backend mx
backend mx
	server mx 172.29.8.2:25
frontend smtp-proxy-protocol
	bind 198.51.100.1:587
	default_backend mx-pp
backend mx-pp
	server mx 172.29.8.2:10025 send-proxy
EOF
old=$(before 172.29.8.3 user@pass1.test)
n0=$(lines)
for i in 1 2 3 4 5 6 7 8; do
	send "a$i" 198.51.100.1 25 "user@pass$i.test"
done
no_5xx "a: eight SPF-passing senders through HAProxy" "$tmp"/a[1-8].swaks
has "a: the first is deferred as a private client" \
    '^<\*\* +450 4\.7\.23 .*from private address 172\.29\.8\.3: a proxy or NAT probably hides the real client' \
    "$tmp/a1.swaks"
has "a: natguard learned the proxy within the threshold (3)" \
    'learned hider 172\.29\.8\.3 \(probably tcp-proxy\): 3 requests failed SPF for 3 unrelated domains' \
    "$nglog"
has "a: the fourth is deferred as a gateway of source traffic" \
    '^<\*\* +450 4\.3\.5 .*Client address hidden by NAT' "$tmp/a4.swaks"
has "a: its decision line names the source and the fix" \
    'action=DEFER reason=nat-gateway client=172\.29\.8\.3 gateway_source=traffic .*probably tcp-proxy.*send-proxy' \
    "$nglog"
for i in 1 2 3 4 5 6 7 8; do not_delivered "a$i" "a$i"; done
table "TCP proxy: HAProxy 2.6, mode tcp" "172.29.8.3" "$old" \
    "$(reply "$tmp/a1.swaks") (1-3); $(reply "$tmp/a4.swaks") (4-8)"
state_has 172.29.8.3 && ok "a: the state file has it" ||
    bad "a: the state file has it" "172.29.8.3" "$state/hiders.json"
ng gateways --json > "$tmp/a-gateways.json" 2>/dev/null
has "a: natguard gateways shows it with its evidence" \
    '"source": "traffic"' "$tmp/a-gateways.json"
has "a: evidence: three unrelated domains" '"unrelated_domains": 3' \
    "$tmp/a-gateways.json"
ng gateways > "$tmp/a-gateways.txt" 2>&1
has "a: natguard gateways (text) names the kind" \
    'evidence: .* \(pass1\.test, pass2\.test, pass3\.test\).*probably tcp-proxy' \
    "$tmp/a-gateways.txt"
ng doctor --postfix-dir "$pf" > "$tmp/a-doctor.txt" 2>&1
has "a: doctor WARNs of the learned hider" \
    '^WARN learned-hiders: 172\.29\.8\.3 learned from traffic' "$tmp/a-doctor.txt"
has "a: doctor: Postfix does not expect PROXY protocol on port 25" \
    '^WARN postfix-proxy-protocol: the proxy 172\.29\.8\.3 hides' \
    "$tmp/a-doctor.txt"
ng check client_address=172.29.8.3 sender=user@pass1.test \
    helo_name=mx.pass1.test > "$tmp/a-check.txt" 2>&1
has "a: natguard check knows what the daemon learned" \
    'gateway_source|learned from traffic' "$tmp/a-check.txt"

# --- a2: a restart keeps what was learned ------------------------------------
echo "--- a2: natguard restarted: the learned hider survives"
natguard_stop
n0=$(lines)
ng_start
has "a2: the state file read at start" 'state file: 1 learned hiders' \
    "$nglog"
send a2 198.51.100.1 25 user@pass1.test
has "a2: the first mail after the restart: 450 4.3.5 at once" \
    '^<\*\* +450 4\.3\.5 ' "$tmp/a2.swaks"

# --- c: PROXY protocol on both ends -------------------------------------------
echo "--- c: HAProxy send-proxy, Postfix smtpd_upstream_proxy_protocol = haproxy"
send c-pass 198.51.100.1 587 user@pass1.test
send c-forged 198.51.100.1 587 user@fail.test
delivered "c: SPF pass for the real client" "$tmp/c-pass.swaks" c-pass \
    '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
has "c: a forged sender: 550 5.7.23" '^<\*\* +550 5\.7\.23 ' \
    "$tmp/c-forged.swaks"
has "c: Postfix saw the real client" \
    'RCPT from [^ ]*\[198\.51\.100\.2\]: 550 5\.7\.23' "$log"
table "TCP proxy with PROXY protocol (send-proxy / smtpd_upstream_proxy_protocol)" \
    "198.51.100.2" "SPF of the real client" \
    "pass: 250 delivered; forged: $(reply "$tmp/c-forged.swaks")"

# --- b: nginx stream --------------------------------------------------------
echo "--- b: nginx stream (proxy_pass, no proxy_protocol) in front of Postfix"
nginx_stream "$mid" 2525 \
    "listen 198.51.100.1:2525; proxy_bind 172.29.8.4; proxy_pass 172.29.8.2:25;"
old=$(before 172.29.8.4 user@pass1.test)
for i in 1 2 3 4; do send "b$i" 198.51.100.1 2525 "user@pass$i.test"; done
no_5xx "b: four SPF-passing senders through nginx" "$tmp"/b[1-4].swaks
has "b: learned within the threshold" \
    'learned hider 172\.29\.8\.4 \(probably tcp-proxy\)' "$nglog"
has "b: the fourth: 450 4.3.5" '^<\*\* +450 4\.3\.5 ' "$tmp/b4.swaks"
table "TCP proxy: nginx 1.22 stream" "172.29.8.4" "$old" \
    "$(reply "$tmp/b1.swaks") (1-3); $(reply "$tmp/b4.swaks") (4)"

# --- k: kube-proxy, externalTrafficPolicy: Cluster ----------------------------
echo "--- k: kube-proxy's Cluster policy, rebuilt: iptables DNAT + SNAT to the node (KUBERNETES_SERVICE_HOST set for natguard)"
run ip netns exec "$mid" iptables -t nat -A PREROUTING -d 198.51.100.1 \
    -p tcp --dport 30025 -j DNAT --to-destination 172.29.8.2:25
run ip netns exec "$mid" iptables -t nat -A POSTROUTING -p tcp \
    -m conntrack --ctorigdstport 30025 -j SNAT --to-source 172.29.8.5
natguard_stop
ng_start KUBERNETES_SERVICE_HOST=10.96.0.1
old=$(before 172.29.8.5 user@pass1.test)
for i in 1 2 3 4; do send "k$i" 198.51.100.1 30025 "user@pass$i.test"; done
no_5xx "k: four senders through the NodePort" "$tmp"/k[1-4].swaks
has "k: learned, named as Kubernetes" \
    'learned hider 172\.29\.8\.5 \(probably kubernetes\)' "$nglog"
has "k: the explanation gives kube-proxy's fix" \
    'client=172\.29\.8\.5 gateway_source=traffic .*externalTrafficPolicy: Local' \
    "$nglog"
table "kube-proxy, externalTrafficPolicy: Cluster (iptables DNAT + SNAT)" \
    "172.29.8.5" "$old" \
    "$(reply "$tmp/k1.swaks") (1-3); $(reply "$tmp/k4.swaks") (4)"
natguard_stop
ng_start

# --- r: a router's port forward with masquerading (hairpin NAT) ---------------
echo "--- r: a NAT router's port forward with masquerading, rebuilt: iptables DNAT + SNAT"
run ip netns exec "$mid" iptables -t nat -A PREROUTING -d 198.51.100.1 \
    -p tcp --dport 2526 -j DNAT --to-destination 172.29.8.2:25
run ip netns exec "$mid" iptables -t nat -A POSTROUTING -p tcp \
    -m conntrack --ctorigdstport 2526 -j SNAT --to-source 192.168.77.1
old=$(before 192.168.77.1 user@pass1.test)
for i in 1 2 3 4; do send "r$i" 198.51.100.1 2526 "user@pass$i.test"; done
no_5xx "r: four senders through the router" "$tmp"/r[1-4].swaks
has "r: learned, named as a NAT router" \
    'learned hider 192\.168\.77\.1 \(probably nat-router\)' "$nglog"
table "router port forward with masquerading (iptables DNAT + SNAT)" \
    "192.168.77.1" "$old" \
    "$(reply "$tmp/r1.swaks") (1-3); $(reply "$tmp/r4.swaks") (4)"

# --- s: Swarm's routing mesh ----------------------------------------------------
echo "--- s: Docker Swarm's routing mesh"
swarm_err=
if command -v dockerd >/dev/null 2>&1 && [ -f "$srcdir/tests/e2e/docker-lib.sh" ]
then
	# A private dockerd in the router's namespace, asked for a swarm and a
	# published service; this kernel has neither IPVS nor VXLAN.
	dd=$tmp/swarm
	mkdir -p "$dd"
	nsenter --net="/run/netns/$mid" dockerd --data-root "$dd/data" \
	    --exec-root "$dd/exec" -H "unix://$dd/docker.sock" \
	    --pidfile "$dd/dockerd.pid" --storage-driver vfs --bridge none \
	    --iptables=false --ip6tables=false > "$dd/dockerd.log" 2>&1 &
	dpid=$!
	kit_pids="$kit_pids $dpid"
	wait_for "docker -H unix://$dd/docker.sock version >/dev/null 2>&1" ||
	    swarm_err="dockerd did not start: $(tail -n 2 "$dd/dockerd.log")"
	if [ -z "$swarm_err" ]; then
		out=$(docker -H "unix://$dd/docker.sock" swarm init \
		    --advertise-addr 198.51.100.1 2>&1) || swarm_err=$out
	fi
	if [ -z "$swarm_err" ]; then
		# Swarm itself starts; its ingress load balancer is IPVS.
		out=$(timeout 60 docker -H "unix://$dd/docker.sock" service \
		    create --detach --name smtp --publish 2600:25 \
		    --restart-condition none debian:12 2>&1) || swarm_err=$out
		if [ -z "$swarm_err" ] && wait_for "grep -qE \
		    'net\.ipv4\.vs|ipvs' '$dd/dockerd.log'"; then
			swarm_err="swarm init and service create --publish"
			swarm_err="$swarm_err answer, but the routing mesh"
			swarm_err="$swarm_err cannot run: dockerd: $(grep -m 1 \
			    'net\.ipv4\.vs' "$dd/dockerd.log" | sed -E \
			    's/.*msg="([^"]*)" error="([^"]*)".*/\1: \2/')"
			swarm_err="$swarm_err (no IPVS in this kernel)"
		elif [ -z "$swarm_err" ]; then
			swarm_err="no IPVS error logged: see $dd/dockerd.log"
		fi
	fi
	docker -H "unix://$dd/docker.sock" swarm leave --force >/dev/null 2>&1
	kill "$dpid" 2>/dev/null
	wait "$dpid" 2>/dev/null
else
	swarm_err="dockerd is not installed"
fi
echo "SKIP: $name: Swarm's own routing mesh: $(echo "$swarm_err" | tr '\n' ' ' | cut -c 1-300)"
echo "    rebuilding the ingress SNAT instead: iptables DNAT to the task's ingress address + MASQUERADE from the ingress network"
run ip netns exec "$mid" iptables -t nat -A PREROUTING -d 198.51.100.1 \
    -p tcp --dport 2527 -j DNAT --to-destination 10.0.0.3:25
run ip netns exec "$mid" iptables -t nat -A POSTROUTING -o ethi -p tcp \
    -j MASQUERADE
old=$(before 10.0.0.2 user@pass1.test)
for i in 1 2 3 4; do send "s$i" 198.51.100.1 2527 "user@pass$i.test"; done
no_5xx "s: four senders through the ingress" "$tmp"/s[1-4].swaks
has "s: learned, named as Swarm's routing mesh" \
    'learned hider 10\.0\.0\.2 \(probably swarm-routing-mesh\)' "$nglog"
has "s: the fix: publish in host mode" \
    'client=10\.0\.0\.2 gateway_source=traffic .*mode: host' "$nglog"
table "Swarm routing mesh (ingress SNAT rebuilt: DNAT + MASQUERADE)" \
    "10.0.0.2" "$old" \
    "$(reply "$tmp/s1.swaks") (1-3); $(reply "$tmp/s4.swaks") (4)"

# --- l: a LAN host in mynetworks -------------------------------------------------
echo "--- l: the office scanner 172.29.8.10, in mynetworks, sends as its own domain"
old=$(before 172.29.8.10 scanner@corp.test)
send l 172.29.8.2 25 scanner@corp.test postmaster@example.test "$mid" \
    172.29.8.10
delivered "l: delivered, natguard first" "$tmp/l.swaks" l ''
has "l: natguard left it to permit_mynetworks" \
    'action=DUNNO reason=mynetworks client=172\.29\.8\.10 ' "$nglog"
table "LAN host in mynetworks (SPF lists only the office's address)" \
    "172.29.8.10" "$old" "DUNNO (mynetworks): 250 delivered"
# A detected gateway in mynetworks is still deferred: the open relay.
run ip -n "$mid" addr add 172.29.8.1/24 dev ethm
pf_reload "mynetworks = $mynet 172.29.8.1/32"
kill -HUP "$ng_pid"
n0=$(lines)
log_after "$n0" 'reload: configuration' || die "natguard did not reload"
send l-relay 172.29.8.2 25 user@pass1.test victim@outside.test "$mid" \
    172.29.8.1
has "l: the gateway in mynetworks, relaying outside: 450 4.3.5" \
    '^<\*\* +450 4\.3\.5 ' "$tmp/l-relay.swaks"
hasnt "l: nothing relayed" '^<- +250 .*queued as' "$tmp/l-relay.swaks"
run ip -n "$mid" addr del 172.29.8.1/24 dev ethm

# --- m: a learned hider inside mynetworks (a relay trusted on purpose) -----------
echo "--- m: HAProxy's address in mynetworks (as for a filter appliance)"
n0=$(lines)
ng gateways --forget 172.29.8.3 > "$tmp/m-forget.out" 2>&1
has "m: gateways --forget" '^forgot 172\.29\.8\.3' "$tmp/m-forget.out"
log_after "$n0" 'state file changed by another writer' &&
    ok "m: the daemon followed the state file" ||
    bad "m: the daemon followed the state file" "a log line" "$nglog"
pf_reload "mynetworks = $mynet 172.29.8.3/32"
kill -HUP "$ng_pid"
log_after "$n0" 'mynetworks: .*172\.29\.8\.3' || die "natguard did not reload"
n0=$(lines)
for i in 5 6 7 8; do send "m$i" 198.51.100.1 25 "user@pass$i.test"; done
for i in 5 6 7 8; do
	delivered "m$i: delivered through the trusted relay" "$tmp/m$i.swaks" \
	    "m$i" ''
done
log_after "$n0" 'learned hider 172\.29\.8\.3 inside mynetworks' &&
    ok "m: learned aside, said loudly" ||
    bad "m: learned aside" "warning: learned hider ... inside mynetworks" \
    "$nglog"
state_has 172.29.8.3 || bad "m: the state file has it" "172.29.8.3" \
    "$state/hiders.json"
has "m: the warning says open relay and how to say it is yours" \
    'inside mynetworks.*open relay.*spf_whitelist = 172\.29\.8\.3' "$nglog"
ip netns exec "$mx" python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:10042/metrics").read().decode())' \
    > "$tmp/m-metrics.txt" 2>&1
has "m: the metric counts it" '^natguard_learned_hiders_mynetworks 1$' \
    "$tmp/m-metrics.txt"
ng doctor --postfix-dir "$pf" > "$tmp/m-doctor.txt" 2>&1
has "m: doctor: an open relay if it is a proxy" \
    '^WARN learned-hiders: 172\.29\.8\.3 is inside mynetworks.*open relay' \
    "$tmp/m-doctor.txt"
table "learned hider inside mynetworks (a relay trusted on purpose)" \
    "172.29.8.3" "$(before 172.29.8.3 user@pass5.test)" \
    "DUNNO, 250 delivered; warning, doctor WARN, metric"
pf_reload "mynetworks = $mynet"

# --- h: hostile: a corrupt state file -----------------------------------------
echo "--- h: a corrupt state file at start"
natguard_stop
printf '{"format": "natguard-hiders", "version": 1, "hiders": [' \
    > "$state/hiders.json"
n0=$(lines)
ng_start
has "h: reported and moved aside" \
    'state file .*hiders\.json: line .*; ignored, and kept as .*hiders\.json\.corrupt' \
    "$nglog"
send h 198.51.100.1 587 user@pass2.test
delivered "h: the daemon serves on" "$tmp/h.swaks" h ''

# --- audit: what the proxies cost ---------------------------------------------
echo "--- audit: natguard's log, its audit log and Postfix's log"
"$NATGUARD" audit --json "$nglog" > "$tmp/audit-ng.json" 2>&1
"$NATGUARD" audit --json "$log" > "$tmp/audit-pf.json" 2>&1
"$NATGUARD" audit --json "$tmp/audit.json" > "$tmp/audit-al.json" 2>&1
for f in ng pf al; do
	has "audit ($f): the proxy is a suspected hider" \
	    '"172\.29\.8\.3": \{' "$tmp/audit-$f.json"
	has "audit ($f): the mail it cost, with its sender" \
	    '"from": "user@pass1\.test"' "$tmp/audit-$f.json"
done
"$NATGUARD" audit "$log" > "$tmp/audit-pf.txt" 2>&1
has "audit (text): the suspected hiders" '^suspected hiders: .*172\.29\.8\.3' \
    "$tmp/audit-pf.txt"

kill -0 "$ng_pid" 2>/dev/null && ok "natguard still running" ||
    bad "natguard still running" "pid $ng_pid" "gone"
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
