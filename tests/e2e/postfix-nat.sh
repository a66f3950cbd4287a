#!/bin/bash
# End to end: the Docker NAT topology rebuilt from the same kernel parts,
# with real Postfix, real swaks, a real DNS server and natguard.
#
#   remote ns                host ns                      container ns
#   swaks                    bridge ngbr0 172.20.0.1/16    eth0 172.20.0.2/16
#   2001:db8:25::2   ------  2001:db8:25::1                Postfix :25
#   198.51.100.2             198.51.100.1                  natguard :10041
#                            socat [2001:db8:25::1]:25     dnsmasq 127.0.0.1
#                              -> 172.20.0.2:25            (its resolv.conf)
#
# The host publishes port 25 on IPv6 the way docker-proxy does, so Postfix
# sees the bridge gateway 172.20.0.1 for every IPv6 client.  IPv4 is routed
# (Docker's DNAT keeps the client address; here no NAT at all), and "the
# fix" gives the container an IPv6 address that the host routes to.  Every
# address is the test's own, inside namespaces it made; nothing it starts
# outlives it.
set -u

name=e2e
skip() { echo "SKIP: $name: $*"; exit 77; }
. "$(dirname "$0")/../netns.sh"
netns_check "$name"
for tool in ip postfix postconf swaks socat dnsmasq ss; do
	command -v $tool >/dev/null 2>&1 ||
	    PATH=$PATH:/usr/sbin command -v $tool >/dev/null 2>&1 ||
	    skip "$tool is not installed (apt-get install postfix swaks socat dnsmasq-base)"
done
PATH=$PATH:/usr/sbin
# swaks speaks IPv6 only with this module (a Recommends of Debian's swaks).
perl -MIO::Socket::INET6 -e 1 2>/dev/null ||
    skip "swaks has no IPv6 (apt-get install libio-socket-inet6-perl)"
: "${NATGUARD:?NATGUARD must name the binary}"
srcdir=$(cd "$(dirname "$0")/../.." && pwd)

host=ngh$$ ctr=ngc$$ rem=ngr$$
. "$srcdir/tests/e2e/lib.sh"
kit_init e2e
pf=$tmp/postfix			# config directory
log=$tmp/maillog		# Postfix's log (postlogd, maillog_file)
mail=$tmp/mail
kit_on_exit "ip netns exec $ctr postfix -c $pf stop >/dev/null 2>&1"

# --- topology --------------------------------------------------------------

kit_ns "$host" "$ctr" "$rem"

# The container's network: a Linux bridge on the host, the gateway is the
# subnet's first host, as Docker does it.
run ip -n "$host" link add ngbr0 type bridge
run ip link add vethc netns "$host" type veth peer name eth0 netns "$ctr"
run ip -n "$host" link set vethc master ngbr0
run ip -n "$host" addr add 172.20.0.1/16 dev ngbr0
run ip -n "$host" addr add fd00:20::1/64 dev ngbr0 nodad
for l in ngbr0 vethc; do run ip -n "$host" link set $l up; done
run ip -n "$ctr" addr add 172.20.0.2/16 dev eth0
run ip -n "$ctr" link set eth0 up
run ip -n "$ctr" route add default via 172.20.0.1

# The remote client's link to the host, IPv6 and IPv4.
run ip link add ethr netns "$host" type veth peer name eth0 netns "$rem"
run ip -n "$host" addr add 2001:db8:25::1/64 dev ethr nodad
run ip -n "$host" addr add 198.51.100.1/24 dev ethr
run ip -n "$host" link set ethr up
run ip -n "$rem" addr add 2001:db8:25::2/64 dev eth0 nodad
run ip -n "$rem" addr add 198.51.100.2/24 dev eth0
run ip -n "$rem" link set eth0 up
run ip -n "$rem" route add 172.20.0.0/16 via 198.51.100.1
run ip -n "$rem" -6 route add fd00:20::/64 via 2001:db8:25::1
run netns_sysctl "$host" net.ipv4.ip_forward 1
run netns_sysctl "$host" net.ipv6.conf.all.forwarding 1

# docker-proxy: port 25 published on the host's IPv6 address, connected to
# the container's IPv4 address from the bridge gateway.
ip netns exec "$host" socat \
    TCP6-LISTEN:25,bind="[2001:db8:25::1]",reuseaddr,fork \
    TCP4:172.20.0.2:25 2>"$tmp/socat.err" &
kit_pids="$kit_pids $!"
# socat has no readiness signal: its listening socket appearing is it.
wait_for "ip netns exec $host ss -Hltn 'sport = :25' | grep -q ." ||
    die "socat is not listening"

# DNS: the sender domains' SPF and address records, on the container's
# loopback, named by its resolv.conf.
zone_conf > "$tmp/dnsmasq.conf"
dns_start "$ctr" "$tmp/dnsmasq.conf"

# Postfix: Debian's package, a config and queue directory of the test's
# own.
mkdir -p "$pf" "$tmp/queue" "$tmp/data" "$mail"
chown 65534:65534 "$mail"
chown postfix: "$tmp/data"
cp "$srcdir/tests/e2e/master.cf" "$pf/master.cf"
main_cf "$tmp/queue" "$tmp/data" "$log" "$mail" > "$pf/main.cf"
restrictions=$(postconf -c "$pf" -h smtpd_recipient_restrictions)

postfix_start() {
	ip netns exec "$ctr" postfix -c "$pf" start >"$tmp/postfix.out" 2>&1 ||
	    die "postfix start: $(cat "$tmp/postfix.out" "$log" 2>&1)"
}
postfix_stop() {
	ip netns exec "$ctr" postfix -c "$pf" stop >/dev/null 2>&1
}

# natguard in the container, gateways = auto, nat_action as given.  Ready
# when it logs "listening on" (right before it tells systemd READY=1).
ng_start() {
	cat > "$tmp/natguard.conf" <<EOF
listen = inet:127.0.0.1:10041
log = stderr
gateways = auto
nat_action = $1
EOF
	natguard_start "$ctr" "$tmp/natguard.conf"
}

gw=172.20.0.1
proxy=2001:db8:25::1		# the published port, through socat
direct4=172.20.0.2		# routed IPv4
fixed6=fd00:20::2		# routed IPv6, after the fix
echo "$name: namespaces $host $ctr $rem, Postfix $(postconf -d -h mail_version)"

# --- a: IPv6 client through the proxy, nat_action = defer --------------------
echo "--- a: IPv6 through the userland proxy, nat_action = defer"
postfix_start
ng_start defer
send a $proxy user@pass.test postmaster@example.test
has "a: swaks got 450 with natguard's 4.3.5 text" \
    '^<\*\* +450 4\.3\.5 .*Client address hidden by NAT' "$tmp/a.swaks"
has "a: Postfix saw the gateway, not the client" \
    "NOQUEUE: reject: RCPT from [^ ]*\\[$gw\\]: 450 4\\.3\\.5" "$log"
has "a: natguard's decision line" \
    "action=DEFER reason=nat-gateway client=$gw gateway_source=(default-route|bridge-interface|subnet-gateway) .*from=<user@pass.test>" \
    "$nglog"
has "a: the explanation says what SPF would have said" \
    'action=DEFER reason=nat-gateway .*spf=fail spf_probe=yes' "$nglog"
not_delivered "a" a

# --- b: same, nat_action = warn ---------------------------------------------
echo "--- b: IPv6 through the userland proxy, nat_action = warn"
natguard_stop
ng_start warn
send b $proxy user@pass.test postmaster@example.test
delivered "b" "$tmp/b.swaks" b ''
has "b: Postfix logged natguard's warning" \
    "warn: RCPT from [^ ]*\\[$gw\\]: .*$gw.*NAT" "$log"
has "b: natguard's decision line" \
    "action=WARN reason=nat-gateway client=$gw gateway_source=" "$nglog"

# --- d: the open-relay trap --------------------------------------------------
# The gateway's network in mynetworks (as PERMIT_DOCKER=network does):
# every IPv6 client through the proxy looks like a local one.
echo "--- d: the gateway's network in mynetworks: the open-relay trap"
natguard_stop
ng_start defer
postfix_stop
postconf -c "$pf" -e 'mynetworks = 127.0.0.0/8 [::1]/128 172.20.0.0/16'
postfix_start
send d $proxy user@pass.test victim@outside.test
has "d: relay through the proxy deferred by natguard" \
    '^<\*\* +450 4\.3\.5 .*Client address hidden by NAT' "$tmp/d.swaks"
hasnt "d: Postfix did not accept the relay" \
    'to=<victim@outside.test>.*status=|^<- +250 .*queued as' "$tmp/d.swaks"
has "d: natguard saw the relay attempt" \
    'action=DEFER reason=nat-gateway .*to=<victim@outside.test>' "$nglog"
# The control: natguard after permit_mynetworks, and the trap is open.
postfix_stop
postconf -c "$pf" -e "smtpd_recipient_restrictions = permit_mynetworks, $restrictions"
postfix_start
send d-control $proxy user@pass.test victim@outside.test
has "d: control, natguard after permit_mynetworks: Postfix relays for anyone" \
    '^<- +250 .*queued as' "$tmp/d-control.swaks"
postfix_stop
postconf -c "$pf" -e 'mynetworks = 127.0.0.0/8 [::1]/128' \
    "smtpd_recipient_restrictions = $restrictions"
postfix_start

# --- e: mixed traffic on one running daemon ---------------------------------
echo "--- e: mixed traffic: IPv4 routed, IPv6 through the proxy, one daemon"
pid_before=$ng_pid
send e-v4-pass $direct4 user@pass.test postmaster@example.test
send e-v4-fail $direct4 user@fail.test postmaster@example.test
send e-v6-proxy $proxy user@pass.test postmaster@example.test
delivered "e: IPv4 client, SPF pass" "$tmp/e-v4-pass.swaks" e-v4-pass \
    '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
has "e: IPv4 client, SPF fail: 550 5.7.23" \
    '^<\*\* +550 5\.7\.23 ' "$tmp/e-v4-fail.swaks"
has "e: IPv6 client through the proxy: 450 4.3.5" \
    '^<\*\* +450 4\.3\.5 ' "$tmp/e-v6-proxy.swaks"
has "e: Postfix saw the real IPv4 address" \
    'RCPT from [^ ]*\[198\.51\.100\.2\]: 550 5\.7\.23' "$log"
has "e: natguard logged the SPF pass for the real address" \
    'action=PREPEND reason=spf-pass client=198\.51\.100\.2 ' "$nglog"
has "e: natguard logged the SPF fail for the real address" \
    'action=REJECT reason=spf-fail client=198\.51\.100\.2 .*from=<user@fail.test>' \
    "$nglog"
if [ "$ng_pid" = "$pid_before" ] && kill -0 "$ng_pid" 2>/dev/null; then
	ok "e: all three on the same running natguard (pid $ng_pid)"
else
	bad "e: one daemon" "pid $pid_before still running" "$ng_pid"
fi

# --- c: the fix: IPv6 routed to the container, no proxy ---------------------
echo "--- c: the fixed topology: IPv6 all the way to the container"
run ip -n "$ctr" addr add $fixed6/64 dev eth0 nodad
run ip -n "$ctr" -6 route add default via fd00:20::1
send c-pass $fixed6 user@pass.test postmaster@example.test
send c-fail $fixed6 user@fail.test postmaster@example.test
delivered "c: SPF pass" "$tmp/c-pass.swaks" c-pass \
    '^Received-SPF: pass .*client-ip=2001:db8:25::2'
has "c: Postfix saw the real IPv6 client" \
    'client=[^ ]*\[2001:db8:25::2\]' "$log"
has "c: SPF fail: 550 5.7.23 naming the real client" \
    '^<\*\* +550 5\.7\.23 .* designate 2001:db8:25::2 as permitted' \
    "$tmp/c-fail.swaks"
not_delivered "c: SPF fail" c-fail
hasnt "c: no NAT decision for the real client" \
    'reason=nat-gateway client=2001:db8:25::2' "$nglog"

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
