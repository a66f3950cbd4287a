#!/bin/sh
# make bench: natguard's gateway and skip paths against a server that
# answers DUNNO and does nothing else (the floor), with the same load
# generator, in one run.  The three take turns in short rounds, and each
# round's natguard figure is divided by the floor of the same round: a
# virtual machine's speed drifts within a minute, and adjacent runs see the
# same drift.  The median ratio is reported.  Load generator and server are
# pinned to different CPUs where there are two.  Figures are printed;
# nothing here passes or fails on speed.
set -eu
: "${NATGUARD:?}" "${BENCHDIR:?}"
conns=${BENCH_CONNS:-50}
secs=${BENCH_SECONDS:-1.5}
rounds=${BENCH_ROUNDS:-7}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The NAT path itself: no SPF probe, no DNS (the SPF benchmarks are apart).
cat > "$tmp/natguard.conf" <<CONF
listen = inet:127.0.0.1:0
log = stderr
gateways = 172.20.0.1
nat_spf_probe = no
spf = no
CONF
# The same without decision lines, to show what logging costs.
cat "$tmp/natguard.conf" > "$tmp/quiet.conf"
echo "log_level = notice" >> "$tmp/quiet.conf"

cli="" srv=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	cli="taskset -c 0" srv="taskset -c 1"
fi
lg="$cli $BENCHDIR/loadgen -c $conns -t $secs -w 0.5"
ng="$NATGUARD -c $tmp/natguard.conf"

echo "policy server benchmark: $conns connections, ${secs}s runs, $rounds" \
	"rounds, $(nproc) CPUs${cli:+, pinned};" \
	"natguard logs every decision to a file"
r=0
while [ $r -lt "$rounds" ]; do
	$lg -l floor -- $srv "$BENCHDIR/dunnod"
	# Decision lines go to a file, as they would go to syslog.
	$lg -l gateway -a 172.20.0.1 -- $srv sh -c "exec $ng 2>>$tmp/ng.log"
	$lg -l skip -a 127.0.0.1 -- $srv sh -c "exec $ng 2>>$tmp/ng.log"
	$lg -l gateway-nolog -a 172.20.0.1 -- $srv sh -c \
	    "exec $NATGUARD -c $tmp/quiet.conf 2>>$tmp/ng.log"
	# BENCH_BASELINE: another natguard (an older build) in the same rounds.
	if [ -n "${BENCH_BASELINE:-}" ]; then
		$lg -l gateway-base -a 172.20.0.1 -- $srv sh -c \
		    "exec $BENCH_BASELINE -c $tmp/natguard.conf 2>>$tmp/base.log"
		$lg -l skip-base -a 127.0.0.1 -- $srv sh -c \
		    "exec $BENCH_BASELINE -c $tmp/natguard.conf 2>>$tmp/base.log"
	fi
	r=$((r + 1))
done | tee "$tmp/out"

cat > "$tmp/report.awk" <<'AWK'
/^floor:/ { f = $7; fc = $(NF - 1); fl[++nf] = f }
/^gateway:/ { gw[++ng] = $7 / f; gr[ng] = $7; gc[ng] = fc / $(NF - 1) }
/^skip:/ { sk[++ns] = $7 / f; sr[ns] = $7; sc[ns] = fc / $(NF - 1) }
/^gateway-nolog:/ { gq[++nq] = $7 / f; qc[nq] = fc / $(NF - 1) }
/^gateway-base:/ { gb[++nb] = gr[ng] / $7 }
/^skip-base:/ { sb[++nsb] = sr[ns] / $7 }
END {
	if (nb > 0)
		printf "against BENCH_BASELINE, same rounds: gateway path %.1f%%, skip path %.1f%% of its req/s (median of %d rounds)\n",
		    100 * median(gb, nb), 100 * median(sb, nsb), nb
	printf "median req/s: floor %d, natguard gateway path %d, skip path %d\n",
	    median(fl, nf), median(gr, ng), median(sr, ns)
	printf "natguard gateway path: %.1f%% of the floor's req/s, %.1f%% of its CPU efficiency (median of %d rounds; target >= 85%%)\n",
	    100 * median(gw, ng), 100 * median(gc, ng), ng
	printf "natguard skip path:    %.1f%% of the floor's req/s, %.1f%% of its CPU efficiency (median of %d rounds; target >= 85%%)\n",
	    100 * median(sk, ns), 100 * median(sc, ns), ns
	printf "gateway path without decision lines (log_level = notice): %.1f%% of the floor's req/s\n",
	    100 * median(gq, nq)
}
AWK
awk -f "$(dirname "$0")/median.awk" -f "$tmp/report.awk" "$tmp/out"
