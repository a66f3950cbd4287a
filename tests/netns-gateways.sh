#!/bin/sh
# gateways = auto, for real: a network namespace of the test's own with
# IPv4 and IPv6 default routes via gateway addresses chosen here, a Linux
# bridge, and a second subnet.  `natguard gateways --json` run inside must
# report each with the right source, and `natguard check` must defer a
# request from the detected gateway.  No packet is sent anywhere.
set -u

. "$(dirname "$0")/netns.sh"
netns_check netns-gateways
for tool in jq; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "SKIP: netns-gateways: $tool is not installed"
		exit 77
	fi
done
: "${NATGUARD:?NATGUARD must name the binary}"

ns=ngt$$
peer=ngp$$
tmp=$(mktemp -d)
cleanup() {
	ip netns del "$ns" 2>/dev/null
	ip netns del "$peer" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

set -e
ip netns add "$ns"
ip netns add "$peer"
ip link add vng0 netns "$ns" type veth peer name vng1 netns "$peer"
ip -n "$ns" link set lo up
ip -n "$ns" link set vng0 up
ip -n "$peer" link set vng1 up
ip -n "$ns" addr add 10.213.0.2/24 dev vng0
ip -n "$ns" addr add 10.214.0.5/24 dev vng0
ip -n "$ns" addr add fd00:213::2/64 dev vng0 nodad
ip -n "$ns" route add default via 10.213.0.1
ip -n "$ns" -6 route add default via fd00:213::1 dev vng0
ip -n "$ns" link add br-ngtest type bridge
ip -n "$ns" addr add 172.31.250.1/24 dev br-ngtest
ip -n "$ns" link set br-ngtest up
set +e

# No SPF: nothing may be sent to a DNS server outside the test.
printf 'gateways = auto\nlog = stderr\nspf = no\nnat_spf_probe = no\n' \
	> "$tmp/natguard.conf"
json=$(ip netns exec "$ns" "$NATGUARD" gateways -c "$tmp/natguard.conf" --json)
echo "$json"

pass=0
fail=0
check() {	# label, jq filter that must print "true"
	if [ "$(printf '%s' "$json" | jq -r "$2")" = true ]; then
		echo "PASS: $1"
		pass=$((pass + 1))
	else
		echo "FAIL: $1 ($2)"
		fail=$((fail + 1))
	fi
}
has() {		# address prefix source interface
	printf 'any(.gateways[]; .address == "%s" and .prefix == %s and .source == "%s" and .interface == "%s")' "$1" "$2" "$3" "$4"
}
check "IPv4 default route" "$(has 10.213.0.1 32 default-route vng0)"
check "IPv6 default route" "$(has fd00:213::1 128 default-route vng0)"
check "bridge address" "$(has 172.31.250.1 32 bridge-interface br-ngtest)"
check "first host of a subnet" "$(has 10.214.0.1 32 subnet-gateway vng0)"
check "each address listed once" \
	'[.gateways[].address] | length == (unique | length)'
check "no link-local address" \
	'all(.gateways[]; .address | startswith("fe80") | not)'
check "own addresses are not gateways" \
	'all(.gateways[]; .address != "10.213.0.2" and .address != "10.214.0.5")'

json=$(ip netns exec "$ns" "$NATGUARD" check -c "$tmp/natguard.conf" --json \
	client_address=10.213.0.1 sender=a@example.org)
echo "$json"
check "check defers the detected gateway" \
	'.action == "DEFER" and .reason == "nat-gateway" and .client.class == "gateway"'
check "check names the source" \
	'.gateway.address == "10.213.0.1" and .gateway.source == "default-route"'
check "check explains" '.explanation | test("ip6tables")'
json=$(ip netns exec "$ns" "$NATGUARD" check -c "$tmp/natguard.conf" --json \
	client_address=::ffff:10.214.0.1 sender=a@example.org)
check "mapped address of a subnet gateway" \
	'.action == "DEFER" and .gateway.source == "subnet-gateway"'
json=$(ip netns exec "$ns" "$NATGUARD" check -c "$tmp/natguard.conf" --json \
	client_address=10.213.0.77 sender=a@example.org)
check "a neighbour is not a gateway" '.client.class == "external"'


# natguard doctor reads the same namespace: its IPv6 address and route,
# and the gateways it flags; the peer namespace has no IPv6 at all.
json=$(ip netns exec "$ns" "$NATGUARD" doctor -c "$tmp/natguard.conf" --json)
dcheck() {	# name -> the check object
	printf '.checks[] | select(.name == "%s")' "$1"
}
check "doctor: global IPv6 address" \
	"$(dcheck ipv6-address) | .status == \"ok\" and (.evidence | test(\"fd00:213::2/64 on vng0\"))"
check "doctor: IPv6 default route" \
	"$(dcheck ipv6-route) | .status == \"ok\" and (.evidence | test(\"via fd00:213::1 on vng0\"))"
check "doctor: gateways as detected" \
	"$(dcheck gateways) | .evidence | test(\"10.213.0.1 \\\\(default-route on vng0\\\\)\")"
json=$(ip netns exec "$peer" "$NATGUARD" doctor -c "$tmp/natguard.conf" --json)
check "doctor: no IPv6 in the peer" \
	"$(dcheck ipv6-address) | .evidence | test(\"no global IPv6 address\")"
check "doctor: no IPv6 route in the peer" \
	"$(dcheck ipv6-route) | .evidence | test(\"no IPv6 default route\")"

echo "netns-gateways: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
