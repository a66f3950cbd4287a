#!/bin/sh
# make bench, SPF part: natguard's SPF path against postfix-policyd-spf-python
# (Debian's policyd-spf, one process per connection as Postfix's spawn(8)
# runs it, here behind socat), same DNS server, same run.  2000 distinct
# sender domains, 20 connections; a second pass over the same domains
# finds natguard's cache warm.  Everything runs in a network namespace of
# its own whose resolv.conf names its own dnsmasq on 127.0.0.1: no query
# leaves it.  Figures are printed; nothing passes or fails on speed.
set -u
: "${NATGUARD:?}" "${BENCHDIR:?}"
domains=${BENCH_DOMAINS:-2000}
conns=${BENCH_SPF_CONNS:-20}

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: SPF benchmark: needs root for its network namespace"
	exit 0
fi
for tool in ip dnsmasq; do
	command -v $tool >/dev/null 2>&1 || {
		echo "SKIP: SPF benchmark: $tool is not installed"; exit 0; }
done
have_py=1
for tool in socat policyd-spf; do
	command -v $tool >/dev/null 2>&1 || have_py=0
done

ns=ngb$$
tmp=$(mktemp -d)
cleanup() {
	[ -n "${socat_pid:-}" ] && kill "$socat_pid" 2>/dev/null
	[ -n "${dns_pid:-}" ] && kill "$dns_pid" 2>/dev/null
	ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "/etc/netns/$ns" "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "/etc/netns/$ns"
echo "nameserver 127.0.0.1" > "/etc/netns/$ns/resolv.conf"
{
	echo "port=53"
	echo "listen-address=127.0.0.1"
	echo "bind-interfaces"
	echo "no-resolv"
	echo "no-hosts"
	echo "local=/bench.test/"
	echo "local-ttl=300"
	# For the option set below: whitelists that all miss, as most mail.
	echo "txt-record=wl.bench.test,\"v=spf1 -all\""
	echo "host-record=mail.bench.test,198.51.100.99"
	echo "ptr-record=10.2.0.192.in-addr.arpa,host.elsewhere.bench.test"
	i=0
	while [ $i -lt "$domains" ]; do
		echo "txt-record=d$i.bench.test,\"v=spf1 ip4:192.0.2.0/24 -all\""
		i=$((i + 1))
	done
} > "$tmp/dnsmasq.conf"
mkfifo "$tmp/dns.fifo"
ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file="$tmp/dnsmasq.conf" \
	--user=root --log-facility=- 2> "$tmp/dns.fifo" &
dns_pid=$!
# Ready when it says so; then keep draining what it writes.
while read -r line; do
	case "$line" in *started*) break ;; esac
done < "$tmp/dns.fifo"
cat "$tmp/dns.fifo" > /dev/null &

cat > "$tmp/natguard.conf" <<CONF
listen = inet:127.0.0.1:0
log = stderr
gateways = none
dns_servers = 127.0.0.1
CONF
# policyd-spf's options turned on (issue 17): per-identity reject lists,
# temperror and permerror acted upon, require-pass domains, No_Mail,
# Authentication-Results with the recipient's domain, and the three
# whitelists that need DNS (none of them matching: the worst case, every
# request asks them).  policyd-spf runs this file; natguard the file
# `natguard migrate` makes of it.
cat > "$tmp/options.conf" <<OPTS
HELO_reject = SPF_Not_Pass
Mail_From_reject = Softfail
PermError_reject = True
TempError_Defer = True
Reject_Not_Pass_Domains = strict.bench.test
No_Mail = True
Header_Type = AR
Authserv_Id = mx.bench.test
Hide_Receiver = No
Domain_Whitelist = wl.bench.test
HELO_Whitelist = mail.bench.test
Domain_Whitelist_PTR = trusted.bench.test
Void_Limit = 3
Reason_Message = SPF {rejectdefer}: {spf}
OPTS
"$NATGUARD" migrate --from-policyd-spf "$tmp/options.conf" > "$tmp/options-ng.conf" ||
	{ echo "bench: natguard migrate failed"; exit 1; }
cat >> "$tmp/options-ng.conf" <<CONF
listen = inet:127.0.0.1:0
log = stderr
gateways = none
dns_servers = 127.0.0.1
CONF
# Pass 1 is cold; passes 2-5 ask for the same domains again (their median
# is reported: one pass of 2000 cached requests takes well under 0.1 s).
lg="$BENCHDIR/loadgen -c $conns -N $domains -R 5 -d $domains -a 192.0.2.10"

echo "SPF benchmark: $domains sender domains, $conns connections, dnsmasq in a namespace"
ip netns exec "$ns" $lg -l natguard -- \
	sh -c "exec $NATGUARD -c $tmp/natguard.conf 2>$tmp/ng.log" | tee "$tmp/out"

if [ $have_py = 1 ]; then
	port=10099
	ip netns exec "$ns" socat TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr \
		EXEC:/usr/bin/policyd-spf 2>/dev/null &
	socat_pid=$!
	# socat has no readiness signal: its listening socket appearing is it.
	n=0
	until ip netns exec "$ns" ss -ltn 2>/dev/null | grep -q ":$port "; do
		n=$((n + 1)); [ $n -gt 100 ] && break; sleep 0.05
	done
	ip netns exec "$ns" $lg -l policyd-spf -e inet:127.0.0.1:$port \
		| tee -a "$tmp/out"
	kill "$socat_pid" 2>/dev/null
	wait "$socat_pid" 2>/dev/null
	# The same with policyd-spf's options on, natguard on the migrated file.
	ip netns exec "$ns" $lg -l options-natguard -- \
		sh -c "exec $NATGUARD -c $tmp/options-ng.conf 2>$tmp/ng-opt.log" \
		| tee -a "$tmp/out"
	ip netns exec "$ns" socat TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr \
		"EXEC:/usr/bin/policyd-spf $tmp/options.conf" 2>/dev/null &
	socat_pid=$!
	n=0
	until ip netns exec "$ns" ss -ltn 2>/dev/null | grep -q ":$port "; do
		n=$((n + 1)); [ $n -gt 100 ] && break; sleep 0.05
	done
	ip netns exec "$ns" $lg -l options-policyd-spf -e inet:127.0.0.1:$port \
		| tee -a "$tmp/out"
else
	echo "SKIP: policyd-spf side: install postfix-policyd-spf-python and socat"
fi

cat > "$tmp/report.awk" <<'AWK'
/^natguard-pass1:/ { n1 = $7 }
/^natguard-pass[2-9]:/ { nw[++nn] = $7 }
/^policyd-spf-pass1:/ { p1 = $7 }
/^policyd-spf-pass[2-9]:/ { pw[++np] = $7 }
/^options-natguard-pass1:/ { on1 = $7 }
/^options-natguard-pass[2-9]:/ { onw[++onn] = $7 }
/^options-policyd-spf-pass1:/ { op1 = $7 }
/^options-policyd-spf-pass[2-9]:/ { opw[++onp] = $7 }
END {
	n2 = median(nw, nn)
	p2 = median(pw, np)
	if (p1 > 0) {
		printf "SPF path, cold cache: natguard %d req/s, policyd-spf %d req/s: %.1fx (target >= 10x)\n", n1, p1, n1 / p1
		printf "SPF path, same domains again: natguard %d req/s, policyd-spf %d req/s: %.1fx (target >= 30x)\n", n2, p2, n2 / p2
	}
	if (op1 > 0) {
		on2 = median(onw, onn)
		op2 = median(opw, onp)
		printf "SPF path with policyd-spf's options on, cold cache: natguard (migrated) %d req/s, policyd-spf %d req/s: %.1fx\n", on1, op1, on1 / op1
		printf "SPF path with policyd-spf's options on, same domains again: natguard %d req/s, policyd-spf %d req/s: %.1fx\n", on2, op2, on2 / op2
	}
}
AWK
awk -f "$(dirname "$0")/median.awk" -f "$tmp/report.awk" "$tmp/out"

# The warm path against the floor: every answer cached (each round's 0.5 s
# warm-up asks all 2000 domains), HELO checked, 20 connections, natguard
# and a server that only answers DUNNO taking turns in the same run; the
# median ratio of the rounds is reported (see run.sh).
cli="" srv=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	cli="taskset -c 0" srv="taskset -c 1"
fi
rounds=${BENCH_ROUNDS:-5}
r=0
while [ $r -lt "$rounds" ]; do
	ip netns exec "$ns" $cli "$BENCHDIR/loadgen" -c "$conns" -t 1.5 -w 0.5 \
	    -d "$domains" -l warm-floor -- $srv "$BENCHDIR/dunnod"
	ip netns exec "$ns" $cli "$BENCHDIR/loadgen" -c "$conns" -t 1.5 -w 0.5 \
	    -d "$domains" -a 192.0.2.10 -l warm-natguard -- $srv \
	    sh -c "exec $NATGUARD -c $tmp/natguard.conf 2>>$tmp/warm.log"
	ip netns exec "$ns" $cli "$BENCHDIR/loadgen" -c "$conns" -t 1.5 -w 0.5 \
	    -d "$domains" -a 192.0.2.10 -l warm-options -- $srv \
	    sh -c "exec $NATGUARD -c $tmp/options-ng.conf 2>>$tmp/warm.log"
	[ -n "${BENCH_BASELINE:-}" ] && ip netns exec "$ns" $cli \
	    "$BENCHDIR/loadgen" -c "$conns" -t 1.5 -w 0.5 -d "$domains" \
	    -a 192.0.2.10 -l warm-base -- $srv sh -c \
	    "exec $BENCH_BASELINE -c $tmp/natguard.conf 2>>$tmp/warm.log"
	r=$((r + 1))
done | tee "$tmp/warm.out"
cat > "$tmp/warm.awk" <<'AWK'
/^warm-floor:/ { f = $7; fl[++nf] = f }
/^warm-natguard:/ { w[++nw] = $7 / f; wr[nw] = $7 }
/^warm-options:/ { o[++no] = $7 / f; orr[no] = $7 }
/^warm-base:/ { b[++nb] = wr[nw] / $7 }
END {
	if (nb > 0)
		printf "SPF warm path against BENCH_BASELINE, same rounds: %.1f%% of its req/s (median of %d rounds)\n",
		    100 * median(b, nb), nb
	printf "SPF warm path: natguard %d req/s, floor %d req/s: %.2f of the floor (median of %d rounds; target >= 0.8)\n",
	    median(wr, nw), median(fl, nf), median(w, nw), nw
	printf "SPF warm path with policyd-spf's options on (migrated file): natguard %d req/s: %.2f of the floor (median of %d rounds; target >= 0.8)\n",
	    median(orr, no), median(o, no), no
}
AWK
awk -f "$(dirname "$0")/median.awk" -f "$tmp/warm.awk" "$tmp/warm.out"

# The cold path against BENCH_BASELINE (an older build), side by side: a
# fresh process of each in turn asks all the domains once, nothing cached
# (dnsmasq serves them from its configuration: no cache of its own in
# between), in BENCH_COLD_ROUNDS rounds; the median ratio is reported.
# Each pass starts 0.3 s after the server said it is ready (-w), so that
# a pass of 0.1 s measures evaluations, not a process's first moments;
# cold-start-* are the same passes from the moment it is ready.
if [ -n "${BENCH_BASELINE:-}" ]; then
	r=0
	while [ $r -lt "${BENCH_COLD_ROUNDS:-5}" ]; do
		for w in 0.3 0; do
			l=cold
			[ "$w" = 0 ] && l=cold-start
			ip netns exec "$ns" "$BENCHDIR/loadgen" -c "$conns" \
			    -N "$domains" -R 1 -w $w -d "$domains" \
			    -a 192.0.2.10 -l $l-natguard -- sh -c \
			    "exec $NATGUARD -c $tmp/natguard.conf 2>>$tmp/cold.log"
			ip netns exec "$ns" "$BENCHDIR/loadgen" -c "$conns" \
			    -N "$domains" -R 1 -w $w -d "$domains" \
			    -a 192.0.2.10 -l $l-base -- sh -c \
			    "exec $BENCH_BASELINE -c $tmp/natguard.conf 2>>$tmp/cold.log"
		done
		r=$((r + 1))
	done | tee "$tmp/cold.out"
	cat > "$tmp/cold.awk" <<'AWK'
/^cold-natguard-pass1:/ { n = $7; nr[++nn] = n }
/^cold-base-pass1:/ { br[++nb] = $7; q[nb] = n / $7 }
/^cold-start-natguard-pass1:/ { sn = $7; snr[++snn] = sn }
/^cold-start-base-pass1:/ { sbr[++snb] = $7; sq[snb] = sn / $7 }
END {
	printf "SPF cold path against BENCH_BASELINE, same rounds: natguard %d req/s, baseline %d req/s: %.1f%% (median of %d rounds)\n",
	    median(nr, nn), median(br, nb), 100 * median(q, nb), nb
	printf "SPF cold path from the moment the server is ready: natguard %d req/s, baseline %d req/s: %.1f%% (median of %d rounds)\n",
	    median(snr, snn), median(sbr, snb), 100 * median(sq, snb), snb
}
AWK
	awk -f "$(dirname "$0")/median.awk" -f "$tmp/cold.awk" "$tmp/cold.out"
fi

# Slow DNS: every answer 300 ms late; 1000 requests for distinct domains
# at once, and meanwhile one from a skip address, which must not wait.
if command -v python3 >/dev/null 2>&1 && /usr/bin/python3 -c "import dns" 2>/dev/null; then
	ulimit -n 8192
	mkfifo "$tmp/slow.fifo"
	ip netns exec "$ns" /usr/bin/python3 "$(dirname "$0")/slowdns.py" 0.3 \
		> "$tmp/slow.fifo" &
	read -r _ slowport < "$tmp/slow.fifo"
	cat "$tmp/slow.fifo" > /dev/null &
	cat > "$tmp/slow.conf" <<CONF
listen = inet:127.0.0.1:10098
log = stderr
gateways = none
dns_servers = 127.0.0.1:$slowport
max_connections = 4000
CONF
	ip netns exec "$ns" "$NATGUARD" -c "$tmp/slow.conf" 2>"$tmp/slow.log" &
	ng_pid=$!
	until ip netns exec "$ns" ss -ltn 2>/dev/null | grep -q ":10098 "; do
		sleep 0.05
	done
	ip netns exec "$ns" "$BENCHDIR/loadgen" -c 1000 -N 1000 -d 1000 \
		-z slow.test -a 192.0.2.10 -l slow-1000 -e inet:127.0.0.1:10098 \
		> "$tmp/slow.out" &
	lg_pid=$!
	sleep 0.1	# the 1000 are in flight: now the skip address
	ip netns exec "$ns" "$BENCHDIR/loadgen" -c 1 -N 1 -a 127.0.0.1 \
		-l skip-meanwhile -e inet:127.0.0.1:10098 > "$tmp/skip.out"
	wait $lg_pid
	cat "$tmp/skip.out" "$tmp/slow.out"
	grep VmHWM /proc/$ng_pid/status | sed 's/VmHWM:/natguard peak RSS after all of it:/'
	kill $ng_pid
	awk '/^slow-1000-pass1:/ { printf "slow DNS: 1000 concurrent requests answered in %s s (target < 2 s)\n", $5 }
	    /^skip-meanwhile-pass1:/ { printf "slow DNS: a skip-address request meanwhile answered in %s ms (target < 20 ms)\n", $10 }' \
	    "$tmp/skip.out" "$tmp/slow.out"
fi
