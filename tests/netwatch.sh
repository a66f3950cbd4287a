#!/bin/bash
# Instant gateway changes: the daemon (gateways = auto, a re-scan interval
# of an hour) in a network namespace of the test's own follows rtnetlink.
# A bridge created while it runs must be a gateway within 1 s, one removed
# gone within 1 s, and a storm of 1000 route changes must cost one re-scan
# per debounce window (200 ms), not one per change.
set -u
name=netwatch
srcdir=$(cd "$(dirname "$0")/.." && pwd)
. "$srcdir/tests/netns.sh"
netns_check "$name"
: "${NATGUARD:?NATGUARD must name the binary}"

ns=ngw$$
tmp=$(mktemp -d)
cleanup() {
	[ -n "${ng_pid:-}" ] && kill "$ng_pid" 2>/dev/null
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pass=0 fail=0
ok() { echo "PASS: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; echo "    $2"; fail=$((fail + 1)); }
die() { echo "FAIL: $name: setup: $*"; echo "$name: $pass passed, 1 failed"
	exit 1; }

ip netns add "$ns" || die "ip netns add"
ip -n "$ns" link set lo up
cat > "$tmp/natguard.conf" <<'CONF'
listen = inet:127.0.0.1:10041
log = stderr
gateways = auto
gateway_scan_interval = 1h
spf = no
nat_spf_probe = no
CONF
mkfifo "$tmp/ng.fifo"
ip netns exec "$ns" "$NATGUARD" -v -c "$tmp/natguard.conf" 2>"$tmp/ng.fifo" &
ng_pid=$!
while read -r line; do		# ready when it says so
	echo "$line" >> "$tmp/ng.log"
	case "$line" in *"listening on"*) break ;; esac
done < "$tmp/ng.fifo"
cat "$tmp/ng.fifo" >> "$tmp/ng.log" &
kill -0 "$ng_pid" 2>/dev/null || die "natguard did not start: $(cat "$tmp/ng.log")"

# The daemon's answer for a client address, from inside the namespace.
ask() {
	ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/127.0.0.1/10041 &&
	    printf "request=smtpd_access_policy\nclient_address=%s\n\n" "$1" >&3 &&
	    head -n 1 <&3' ask "$1"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Ask every 20 ms until the answer starts with $2, for at most $3 ms;
# prints the ms it took.
until_answer() {	# client, prefix, limit ms
	local t0 t r
	t0=$(now_ms)
	while :; do
		r=$(ask "$1")
		t=$(( $(now_ms) - t0 ))
		case "$r" in "$2"*) echo "$t"; return 0 ;; esac
		[ "$t" -gt "$3" ] && { echo "$t ($r)"; return 1; }
		sleep 0.02
	done
}

r=$(ask 172.29.0.1)
case "$r" in action=DUNNO*) ok "before: 172.29.0.1 is no gateway ($r)" ;;
*) bad "before: 172.29.0.1 is no gateway" "$r" ;; esac

ip -n "$ns" link add ngwbr0 type bridge
ip -n "$ns" addr add 172.29.0.1/16 dev ngwbr0
ip -n "$ns" link set ngwbr0 up
if t=$(until_answer 172.29.0.1 "action=DEFER" 1000); then
	ok "a bridge created while natguard runs is a gateway after $t ms"
else
	bad "a new bridge is a gateway within 1 s" "after $t"
fi
grep -m 1 'gateways: .*172\.29\.0\.1' "$tmp/ng.log" | sed 's/^/    /'

ip -n "$ns" link del ngwbr0
if t=$(until_answer 172.29.0.1 "action=DUNNO" 1000); then
	ok "the bridge removed: no gateway after $t ms"
else
	bad "a removed bridge is gone within 1 s" "after $t"
fi

# The storm: 1000 routes added and deleted in one batch.
ip -n "$ns" link add ngwd0 type veth peer name ngwd1
ip -n "$ns" link set ngwd0 up
ip -n "$ns" link set ngwd1 up
before=$(grep -c 're-scan after' "$tmp/ng.log")
i=0
while [ $i -lt 500 ]; do
	echo "route add 10.$((i / 250)).$((i % 250)).0/24 dev ngwd0"
	i=$((i + 1))
done > "$tmp/batch"
sed 's/^route add/route del/' "$tmp/batch" >> "$tmp/batch.del"
cat "$tmp/batch.del" >> "$tmp/batch"
t0=$(now_ms)
ip -n "$ns" -batch "$tmp/batch" || die "ip -batch"
t=$(( $(now_ms) - t0 ))
# The last re-scan comes one debounce window after the storm's end; then
# the log is quiet.
n=0
until [ "$(grep -c 're-scan after' "$tmp/ng.log")" -gt "$before" ] &&
    [ $(( $(now_ms) - t0 - t )) -gt 600 ]; do
	n=$((n + 1)); [ $n -gt 100 ] && break
	sleep 0.05
done
rescans=$(( $(grep -c 're-scan after' "$tmp/ng.log") - before ))
changes=$(grep 're-scan after' "$tmp/ng.log" | tail -n "$rescans" |
    awk '{ for (i = 1; i < NF; i++) if ($i == "after") n += $(i + 1) }
    END { print n + 0 }')
limit=$(( t / 200 + 2 ))
if [ "$rescans" -ge 1 ] && [ "$rescans" -le "$limit" ]; then
	ok "1000 route changes in $t ms: $rescans re-scans (at most $limit: one per 200 ms window), covering $changes changes"
else
	bad "a storm costs one re-scan per debounce window" \
	    "$rescans re-scans for 1000 changes in $t ms (limit $limit)"
fi
kill -0 "$ng_pid" 2>/dev/null && ok "natguard still running" ||
    bad "natguard still running" "it exited"

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
