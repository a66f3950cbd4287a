#!/bin/bash
# Hiders on the mail host itself (SPEC section 4 steps 5a and 7): the
# daemon, on its defaults but for the files, in a namespace of the test's
# own that has a public address of its own (198.51.100.1, as a VPS's
# interface), with Postfix's default mynetworks (loopback) and its own DNS
# server.  A tunnel or local proxy hands every client over from loopback or
# from that address; here the requests say so, as Postfix would send them:
#   - loopback (127.0.0.1, ::1) in skip_addresses: answered DUNNO, never
#     deferred, but watched, learned after hider_threshold unrelated failing
#     domains, and then reported loudly (a warning per request, gateways,
#     doctor, the metric);
#   - the host's public address: never 550 for SPF (the private-client
#     answer), learned, then answered by nat_action;
#   - controls: a public address that is not the host's still gets the 550,
#     and a skip_addresses set by hand is the administrator's word.
set -u
name=same-host
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
. "$srcdir/tests/netns.sh"
netns_check "$name"
. "$srcdir/tests/e2e/lib.sh"
: "${NATGUARD:?NATGUARD must name the binary}"
command -v dnsmasq >/dev/null 2>&1 ||
    { echo "SKIP: $name: dnsmasq is not installed (apt-get install dnsmasq-base)"; exit 77; }

kit_init same-host
mx=ngsh$$ rem=ngsr$$
kit_ns "$mx" "$rem"
# The mail host's public link, to a remote sender's namespace.
run ip link add eth0 netns "$mx" type veth peer name eth0 netns "$rem"
run ip -n "$mx" addr add 198.51.100.1/24 dev eth0
run ip -n "$rem" addr add 198.51.100.2/24 dev eth0
run ip -n "$mx" link set eth0 up
run ip -n "$rem" link set eth0 up
# A VPN to a VPS: this kernel has no WireGuard, so a tun device stands in
# for it (told as a tunnel by the kernel, tun_flags), and a link named
# wg0 for one told by its name only.
echo "    (the VPN relay is rebuilt: a tun device and a link named wg0 stand in for WireGuard, which this kernel lacks)"
vpns=10.9.0.2
if ip -n "$mx" tuntap add dev tun0 mode tun 2>"$tmp/tun.err"; then
	run ip -n "$mx" addr add 10.8.0.1/24 dev tun0
	vpns="10.8.0.2 $vpns"
else
	echo "SKIP: the VPN relay over a tun device: none can be made here ($(cat "$tmp/tun.err")); the link named wg0 still runs"
fi
run ip -n "$mx" link add wg0 type veth peer name wg0peer
run ip -n "$mx" addr add 10.9.0.1/24 dev wg0

# Six unrelated sender domains whose SPF fails from anywhere here.
{
	printf '%s\n' port=53 listen-address=127.0.0.1 bind-interfaces \
	    no-resolv no-hosts local=/test/ local=/in-addr.arpa/ \
	    local=/ip6.arpa/
	for i in 1 2 3 4 5 6 7 8 9; do
		echo "txt-record=d$i.test,\"v=spf1 ip4:192.0.2.1 -all\""
	done
	# Real senders', whose SPF passes for the remote client only.
	for i in 1 2 3 4; do
		echo "txt-record=pass$i.test,\"v=spf1 ip4:198.51.100.2 -all\""
	done
} > "$tmp/dnsmasq.conf"
dns_start "$mx" "$tmp/dnsmasq.conf"

mkdir -p "$tmp/state"
conf() {	# extra lines
	cat <<EOF
listen = inet:127.0.0.1:10041
log = stderr
gateways = auto
mynetworks = 127.0.0.0/8, ::1
state_dir = $tmp/state
metrics_listen = 127.0.0.1:10042
$1
EOF
}
conf "" > "$tmp/natguard.conf"
natguard_start "$mx" "$tmp/natguard.conf"

ask() {		# client, sender domain
	policy_ask "$mx" 10041 "client_address=$1" "helo_name=mx.$2" \
	    "sender=a@$2" "recipient=postmaster@example.test"
}
answers() {	# label, client, first domain, last domain, expected prefix
	local i n=0 r out=$tmp/answers-$2
	: > "$out"
	for i in $(seq "$3" "$4"); do
		r=$(ask "$2" "d$i.test")
		echo "d$i.test: $r" >> "$out"
		case "$r" in "$5"*) n=$((n + 1)) ;; esac
	done
	if [ $n -eq $(($4 - $3 + 1)) ]; then
		ok "$1: $n of $n answered $5"
		sed 's/^/    /' "$out" | head -n 1
	else
		bad "$1" "every answer $5" "$out"
	fi
}
metric() { ip netns exec "$mx" bash -c 'exec 3<>/dev/tcp/127.0.0.1/10042 &&
    printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' |
    sed -n "s/^$1 //p"; }
ng() {	# SUBCOMMAND [ARGS]: with the daemon's file
	local c=$1
	shift
	ip netns exec "$mx" "$NATGUARD" "$c" -c "$tmp/natguard.conf" "$@"
}

# --- loopback: DUNNO, watched, learned, said ---------------------------------
answers "127.0.0.1 in skip_addresses, three failing domains" 127.0.0.1 1 3 \
    "action=DUNNO"
has "learned as a hider on the mail host, from traffic alone" \
    'learned hider 127\.0\.0\.1 on the mail host \(probably same-host\): 3 requests failed SPF for 3 unrelated domains \(d1\.test, d2\.test, d3\.test\).*every client is hidden, and with it in mynetworks this server relays' \
    "$nglog"
answers "127.0.0.1, learned: still never deferred" 127.0.0.1 4 6 "action=DUNNO"
has "a warning on each request from it" \
    'warning: .*client address 127\.0\.0\.1 is loopback and a hider learned from traffic .*every client is hidden and SPF is skipped for all of them \(skip_addresses\); with it in mynetworks this server relays' \
    "$nglog"
n=$(grep -c 'warning: .*client address 127\.0\.0\.1 is loopback and a hider learned' "$nglog")
[ "$n" -ge 3 ] && ok "one warning a request after learning ($n)" ||
    bad "one warning a request after learning" ">= 3" "$n"
wait_for "grep -qs '\"address\": \"127.0.0.1\"' '$tmp/state/hiders.json'" ||
    bad "the state file keeps it" "127.0.0.1 in hiders.json" "$tmp/state"
ng gateways --json 2>&1 | jq -c ".gateways[]" > "$tmp/gateways.lines"
has "natguard gateways lists it, source traffic" \
    '"address":"127\.0\.0\.1",.*"source":"traffic"' \
    "$tmp/gateways.lines"
[ "$(metric natguard_learned_hiders_same_host)" = 1 ] &&
    ok "natguard_learned_hiders_same_host 1" ||
    bad "natguard_learned_hiders_same_host" 1 "$(metric natguard_learned_hiders_same_host)"
ng doctor > "$tmp/doctor" 2>&1
has "doctor warns: a hider on the mail host, the open relay" \
    '^WARN learned-hiders: 127\.0\.0\.1 is on the mail host .*probably same-host.*it is in mynetworks: this server relays' \
    "$tmp/doctor"

# --- ::1 ---------------------------------------------------------------------
if ip netns exec "$mx" ip -6 addr show dev lo | grep -q '::1/128'; then
	answers "::1 in skip_addresses" ::1 4 6 "action=DUNNO"
	has "::1 learned as a hider on the mail host" \
	    'learned hider ::1 on the mail host \(probably same-host\)' \
	    "$nglog"
else
	echo "SKIP: ::1: this machine gives the namespace no IPv6 loopback"
fi

# --- the host's own public address ---------------------------------------------
# A proxy on the host that connects to Postfix through 198.51.100.1.
r=$(ask 198.51.100.1 d1.test)
case "$r" in
"action=DEFER_IF_PERMIT 4.7.23 SPF fail for d1.test from this host's address 198.51.100.1: a tunnel or proxy on the mail host probably hides the real client"*)
	ok "the host's public address: no 550, the private-client answer"
	echo "    $r" ;;
*)	bad "the host's public address: no 550" "DEFER_IF_PERMIT 4.7.23 ..." "$r" ;;
esac
answers "198.51.100.1, two more failing domains" 198.51.100.1 2 3 \
    "action=DEFER_IF_PERMIT 4.7.23"
has "198.51.100.1 learned as a hider on the mail host" \
    'learned hider 198\.51\.100\.1 on the mail host \(probably same-host\)' \
    "$nglog"
wait_for "ng gateways | grep -q '^198.51.100.1 '" ||
    bad "gateways lists 198.51.100.1" "a line" "$(ng gateways 2>&1)"
answers "198.51.100.1, learned: nat_action" 198.51.100.1 4 4 \
    "action=DEFER 4.3.5"

# --- a VPN relay: a VPS's SNAT over the tunnel ----------------------------------
for vps in $vpns; do
	answers "$vps, over a tunnel: three failing domains" $vps 1 3 \
	    "action=DEFER_IF_PERMIT 4.7.23"
	has "$vps learned as a VPN relay" \
	    "learned hider ${vps//./\\.} \\(probably vpn-relay\\)" "$nglog"
done
r=$(ng check client_address=10.9.0.2 sender=a@d4.test)
case "$r" in *"probably vpn-relay"*"DNAT without SNAT on the VPS"*)
	ok "its explanation names the VPN relay and the fix" ;;
*)	bad "the VPN relay's explanation" "probably vpn-relay ... DNAT without SNAT" "$r" ;;
esac

# --- controls --------------------------------------------------------------------
answers "a public address that is not the host's: still the 550" 192.0.2.99 \
    1 1 "action=550 5.7.23"
# skip_addresses by hand: the administrator's word, nothing watched.
natguard_stop
rm -f "$tmp/state/hiders.json"
conf "skip_addresses = 127.0.0.0/8, ::1" > "$tmp/natguard.conf"
natguard_start "$mx" "$tmp/natguard.conf"
answers "skip_addresses set by hand" 127.0.0.7 7 9 "action=DUNNO"
# A request that needs DNS, after them: any evaluation aside would have
# been started before it was sent.
answers "then a public client" 192.0.2.99 7 7 "action=550 5.7.23"
spf=$(metric 'natguard_spf_results_total{result="fail"}')
[ "$spf" = 1 ] && ok "skip_addresses set by hand: no evaluation aside (1 SPF result, the public client's)" ||
    bad "skip_addresses set by hand: no evaluation aside" 1 "$spf"
hasnt "nothing learned from 127.0.0.7" 'learned hider 127\.0\.0\.7' "$nglog"

# --- a tunnel's local end, with real Postfix ------------------------------------
# Postfix on loopback only (its default mynetworks, read by natguard
# through postconf), natguard first in smtpd_recipient_restrictions, and
# socat holding the public port 25 and relaying to it, as the local end
# of a tunnel or a port forward does.
natguard_stop
rm -f "$tmp/state/hiders.json"
pf=$tmp/postfix log=$tmp/maillog mail=$tmp/mail
mkdir -p "$pf" "$tmp/queue" "$tmp/data" "$mail"
chown 65534:65534 "$mail"
chown postfix: "$tmp/data"
cp "$srcdir/tests/e2e/master.cf" "$pf/master.cf"
main_cf "$tmp/queue" "$tmp/data" "$log" "$mail" > "$pf/main.cf"
postconf -c "$pf" -e "inet_interfaces = loopback-only"
ip netns exec "$mx" postfix -c "$pf" start >"$tmp/postfix.out" 2>&1 ||
    die "postfix start: $(cat "$tmp/postfix.out")"
kit_on_exit "ip netns exec $mx postfix -c $pf stop >/dev/null 2>&1"
conf "" | sed 's/^mynetworks = .*/mynetworks = postfix/' > "$tmp/natguard.conf"
nglog=$tmp/natguard-postfix.log
natguard_start "$mx" "$tmp/natguard.conf" MAIL_CONFIG="$pf"
ip netns exec "$mx" socat TCP4-LISTEN:25,bind=198.51.100.1,reuseaddr,fork \
    TCP4:127.0.0.1:25 2>"$tmp/socat.err" &
kit_pids="$kit_pids $!"
wait_for "ip netns exec $mx ss -Hltn 'sport = :25' | grep -q 198.51.100.1" ||
    die "socat is not listening"
# A connection held open through socat meanwhile: the daemon, learning,
# and doctor, later, see who holds it.
ip netns exec "$rem" bash -c 'exec 3<>/dev/tcp/198.51.100.1/25 &&
    head -n 1 <&3 > "$0/held.banner" && exec sleep 30 <&3' "$tmp" &
held=$!
kit_pids="$kit_pids $held"
wait_for "grep -q '^220 ' '$tmp/held.banner' 2>/dev/null" ||
    bad "a connection through socat" "Postfix's 220" "$tmp/held.banner"
for i in 1 2 3 4; do
	ip netns exec "$rem" swaks --server 198.51.100.1 --port 25 \
	    --timeout 20 --helo "mx.pass$i.test" --from "user@pass$i.test" \
	    --to postmaster@example.test \
	    --header "Subject: natguard e2e socat$i" --body "case socat$i" \
	    > "$tmp/socat$i.swaks" 2>&1
done
no_5xx "socat relaying port 25 to Postfix on loopback" "$tmp"/socat?.swaks
delivered "socat: the fourth sender" "$tmp/socat4.swaks" socat4 \
    '^Received: from mx\.pass4\.test \(localhost \[127\.0\.0\.1\]\)'
has "Postfix saw every client as 127.0.0.1" \
    'connect from localhost\[127\.0\.0\.1\]' "$log"
has "natguard learned loopback from the relayed mail" \
    'learned hider 127\.0\.0\.1 on the mail host \(probably same-host\): 3 requests failed SPF for 3 unrelated domains \(pass1\.test, pass2\.test, pass3\.test\)' \
    "$nglog"
# The daemon runs as root here: it sees who holds the connections.
has "the daemon names the program holding the connections" \
    'learned hider 127\.0\.0\.1 on the mail host .*the program holding its connections to this host is socat \(pid [0-9]+\): fix: socat relays bytes' \
    "$nglog"
has "and said it on the next request" \
    'warning: .*client address 127\.0\.0\.1 is loopback and a hider learned from traffic' \
    "$nglog"
# doctor, as root, names the program: the listener, and the other end
# of the connection held open through it.
ip netns exec "$mx" env MAIL_CONFIG="$pf" "$NATGUARD" doctor \
    -c "$tmp/natguard.conf" > "$tmp/doctor2" 2>&1
has "doctor names the program holding the public SMTP port" \
    '^WARN listen-sockets: socat \(pid [0-9]+\), socat holds SMTP port 198\.51\.100\.1:25, not Postfix.s master' \
    "$tmp/doctor2"
has "doctor names the program at the other end of Postfix's connection" \
    '^WARN smtp-connections: socat \(pid [0-9]+\), socat connects to Postfix.s port 25 from 127\.0\.0\.1' \
    "$tmp/doctor2"
has "with its fix" 'fix: socat relays bytes and cannot send PROXY protocol' \
    "$tmp/doctor2"
kill "$held" 2>/dev/null

# --- every other tool this machine has ------------------------------------------
# Postfix also on the host's own address (2525, where a proxy on the host
# may connect) and with PROXY protocol on loopback (10025, as a fixed
# backend would be).  Each tool relays one sender from the remote
# namespace; its twin with PROXY protocol, where the tool has it, relays
# another to 10025.  frp, rathole, cloudflared and tailscaled are not in
# Debian 12: socat under each name stands in, and the output says so.
printf '%s\n' '198.51.100.1:2525 inet n - n - - smtpd' \
    '127.0.0.1:10025 inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy' \
    >> "$pf/master.cf"
ip netns exec "$mx" postfix -c "$pf" reload >/dev/null 2>&1 || die "postfix reload"
listening() {	# NS PORT
	wait_for "ip netns exec $1 ss -Hltn 'sport = :$2' | grep -q ." ||
	    die "nothing listens on port $2 in $1"
}
listening "$mx" 2525
listening "$mx" 10025
tools=""
if command -v haproxy >/dev/null 2>&1; then
	haproxy_tcp "$mx" 2601 <<EOF
listen plain
	bind 198.51.100.1:2601
	server pf 127.0.0.1:25
listen pp
	bind 198.51.100.1:2611
	server pf 127.0.0.1:10025 send-proxy
listen own
	bind 198.51.100.1:2621
	server pf 198.51.100.1:2525
EOF
	tools="$tools haproxy:2601:2611 haproxy-own:2621::haproxy"
else
	echo "SKIP: HAProxy: not installed (apt-get install haproxy)"
fi
if command -v nginx >/dev/null 2>&1 && [ -f "$stream_mod" ]; then
	nginx_stream "$mx" 2602 \
	    "listen 198.51.100.1:2602; proxy_pass 198.51.100.1:2525;" \
	    "listen 198.51.100.1:2612; proxy_pass 127.0.0.1:10025; proxy_protocol on;" \
	    "listen 198.51.100.1:2622; proxy_pass 127.0.0.1:25;"
	tools="$tools nginx:2602:2612 nginx-lo:2622::nginx"
else
	echo "SKIP: nginx stream: not installed (apt-get install nginx-light libnginx-mod-stream)"
fi
if command -v stunnel4 >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=mx.example.test \
	    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
	    >/dev/null 2>&1 || die "openssl req"
	cat > "$tmp/stunnel.conf" <<EOF
foreground = yes
pid =
[plain]
accept = 198.51.100.1:2603
connect = 127.0.0.1:25
cert = $tmp/cert.pem
key = $tmp/key.pem
[pp]
accept = 198.51.100.1:2613
connect = 127.0.0.1:10025
protocol = proxy
cert = $tmp/cert.pem
key = $tmp/key.pem
EOF
	ip netns exec "$mx" stunnel4 "$tmp/stunnel.conf" > "$tmp/stunnel.log" 2>&1 &
	kit_pids="$kit_pids $!"
	listening "$mx" 2603
	tools="$tools stunnel4:2603:2613"
else
	echo "SKIP: stunnel: not installed (apt-get install stunnel4)"
fi
# ssh -R from the mail host to a "VPS" (the remote namespace's sshd): the
# VPS's port 2604 comes back to Postfix on loopback through ssh.
if [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null 2>&1; then
	mkdir -p /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$tmp/hostkey" >/dev/null
	ssh-keygen -q -t ed25519 -N '' -f "$tmp/id" >/dev/null
	cp "$tmp/id.pub" "$tmp/authorized_keys"
	cat > "$tmp/sshd_config" <<EOF
ListenAddress 198.51.100.2:22
HostKey $tmp/hostkey
AuthorizedKeysFile $tmp/authorized_keys
PermitRootLogin prohibit-password
GatewayPorts yes
StrictModes no
UsePAM no
PidFile none
EOF
	ip netns exec "$rem" /usr/sbin/sshd -D -e -f "$tmp/sshd_config" \
	    > "$tmp/sshd.log" 2>&1 &
	kit_pids="$kit_pids $!"
	listening "$rem" 22
	ip netns exec "$mx" ssh -N -i "$tmp/id" -o BatchMode=yes \
	    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	    -o ExitOnForwardFailure=yes \
	    -R 198.51.100.2:2604:127.0.0.1:25 root@198.51.100.2 \
	    > "$tmp/ssh.log" 2>&1 &
	kit_pids="$kit_pids $!"
	listening "$rem" 2604
	tools="$tools ssh:2604:"
else
	echo "SKIP: ssh -R: openssh-server is not installed (apt-get install openssh-server)"
fi
mkdir -p "$tmp/bin"
port=2605
for t in frpc rathole cloudflared tailscaled; do
	cp "$(command -v socat)" "$tmp/bin/$t"
	echo "    ($t is not in Debian 12: socat named $t stands in for it)"
	ip netns exec "$mx" "$tmp/bin/$t" \
	    TCP4-LISTEN:$port,bind=198.51.100.1,reuseaddr,fork \
	    TCP4:127.0.0.1:25 2>"$tmp/$t.err" &
	kit_pids="$kit_pids $!"
	listening "$mx" $port
	tools="$tools $t:$port:"
	port=$((port + 1))
done

# One sender through each (and one through its PROXY twin).  A tool is
# LABEL:PORT:PROXY-PORT:PROCESS, the last two optional.
relay() {	# name host port [tls]
	ip netns exec "$rem" swaks --server "$2" --port "$3" ${4:+--tlsc} \
	    --timeout 20 --helo mx.pass1.test --from user@pass1.test \
	    --to postmaster@example.test --header "Subject: natguard e2e $1" \
	    --body "case $1" > "$tmp/$1.swaks" 2>&1
}
tool_host() { case $1 in ssh) echo 198.51.100.2 ;; *) echo 198.51.100.1 ;; esac; }
for t in $tools; do
	IFS=: read -r tool port pp comm <<EOF
$t
EOF
	tls=
	[ "$tool" = stunnel4 ] && tls=yes
	relay "$tool" "$(tool_host "$tool")" "$port" $tls
	no_5xx "$tool" "$tmp/$tool.swaks"
	first=$(reply "$tmp/$tool.swaks")
	if [ -z "$first" ]; then
		delivered "$tool" "$tmp/$tool.swaks" "$tool" \
		    '^Received: from mx\.pass1\.test \((localhost \[127\.0\.0\.1\]|[^ ]* ?\[198\.51\.100\.1\])\)'
		f=$(grep -l "natguard e2e $tool\$" "$mail"/postmaster/new/* 2>/dev/null | head -n 1)
		first="delivered, Postfix saw $(sed -nE 's/^Received: from mx\.pass1\.test \(([^)]*)\).*/\1/p' "$f" 2>/dev/null | head -n 1)"
	fi
	echo "TABLE: same host: $tool | $first"
	[ -n "$pp" ] || continue
	relay "$tool-pp" 198.51.100.1 "$pp" $tls
	delivered "$tool with PROXY protocol: SPF sees the real client" \
	    "$tmp/$tool-pp.swaks" "$tool-pp" \
	    '^Received-SPF: pass .*client-ip=198\.51\.100\.2;'
done

# doctor names each program: one connection held through each meanwhile.
for t in $tools; do
	IFS=: read -r tool port pp comm <<EOF
$t
EOF
	if [ "$tool" = stunnel4 ]; then
		ip netns exec "$rem" sh -c 'sleep 30 | openssl s_client -quiet \
		    -connect 198.51.100.1:$1 > "$0/held-stunnel4" 2>/dev/null' \
		    "$tmp" "$port" &
	else
		ip netns exec "$rem" bash -c 'exec 3<>/dev/tcp/$1/$2 &&
		    head -n 1 <&3 > "$0/held-$3" && exec sleep 30 <&3' \
		    "$tmp" "$(tool_host "$tool")" "$port" "$tool" &
	fi
	kit_pids="$kit_pids $!"
	wait_for "grep -q '^220 ' '$tmp/held-$tool' 2>/dev/null" ||
	    bad "a connection through $tool" "Postfix's 220" "$tmp/held-$tool"
done
ip netns exec "$mx" env MAIL_CONFIG="$pf" "$NATGUARD" doctor \
    -c "$tmp/natguard.conf" > "$tmp/doctor3" 2>&1
for t in $tools; do
	IFS=: read -r tool port pp comm <<EOF
$t
EOF
	has "doctor names ${comm:-$tool} ($tool) at the other end of Postfix's connection" \
	    "^WARN smtp-connections: ${comm:-$tool} \\(pid [0-9]+\\), .* connects to Postfix.s port (25|2525) from (127\\.0\\.0\\.1|198\\.51\\.100\\.1)" \
	    "$tmp/doctor3"
done

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
