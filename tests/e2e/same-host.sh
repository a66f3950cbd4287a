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
mx=ngsh$$
kit_ns "$mx"
# A veth pair inside the namespace (this kernel has no dummy links).
run ip -n "$mx" link add eth0 type veth peer name eth1
run ip -n "$mx" addr add 198.51.100.1/24 dev eth0
run ip -n "$mx" link set eth0 up
run ip -n "$mx" link set eth1 up

# Six unrelated sender domains whose SPF fails from anywhere here.
{
	printf '%s\n' port=53 listen-address=127.0.0.1 bind-interfaces \
	    no-resolv no-hosts local=/test/ local=/in-addr.arpa/ \
	    local=/ip6.arpa/
	for i in 1 2 3 4 5 6 7 8 9; do
		echo "txt-record=d$i.test,\"v=spf1 ip4:192.0.2.1 -all\""
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
ng() { ip netns exec "$mx" "$NATGUARD" "$@" -c "$tmp/natguard.conf"; }

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

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
