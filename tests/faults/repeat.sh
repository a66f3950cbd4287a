#!/bin/bash
# Issue 19's "the suites held 20 runs under parallel load": run each named
# suite N times, one run at a time through `make check TESTS=SUITE`, beside
# CPU hogs (busy loops, one per CPU, at nice HOG_NICE), and report each
# run's result and summary line, and for each suite how many runs held and
# its slowest run.  Not part of make check: it takes hours for the
# real-engine suites.
#
#	tests/faults/repeat.sh [-n RUNS] [-o DIR] SUITE...
#
# Run it from a built tree that nothing else is editing (a copy: a suite
# rewritten while it runs reads half of each version).  Each run's log is
# kept as DIR/SUITE-NAME.K.log (DIR: /var/tmp/natguard-repeat); a run
# that did not pass (FAIL, ERROR or SKIP) is named with its result.  Exit 0
# when every run of every suite held.
set -u
runs=20 dir=/var/tmp/natguard-repeat
usage() { echo "usage: $0 [-n RUNS] [-o DIR] SUITE..." >&2; exit 2; }
while getopts n:o: opt; do
	case $opt in
	n) runs=$OPTARG ;;
	o) dir=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
case $runs in ''|*[!0-9]*|0) usage ;; esac
[ $# -gt 0 ] || usage
[ -f Makefile ] || { echo "$0: run it in a configured tree" >&2; exit 2; }
mkdir -p "$dir" || exit 2

hogs=()
stop_hogs() { [ ${#hogs[@]} -eq 0 ] || kill "${hogs[@]}" 2>/dev/null; }
trap stop_hogs EXIT
trap 'exit 1' INT TERM
for _ in $(seq "$(nproc)"); do
	nice -n "${HOG_NICE:-10}" bash -c 'while :; do :; done' &
	hogs+=($!)
done
echo "repeat: $runs runs each, beside ${#hogs[@]} CPU hogs at nice" \
    "${HOG_NICE:-10}, logs in $dir"

run_one() {	# suite k
	local suite=$1 k=$2 base start rc secs line res
	base=$(basename "$suite")
	# A run that stops before its test leaves no result of its own.
	rm -f "$suite.log" "$suite.trs"
	start=$(date +%s)
	make -s check TESTS="$suite" > "$dir/$base.$k.out" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	[ $secs -gt "${worst[$suite]}" ] && worst[$suite]=$secs
	cp "$suite.log" "$dir/$base.$k.log" 2>/dev/null
	# The suite's last line before automake's result: its summary
	# (counts, a conformance score, Check's percentage).
	line=$(grep -v -E '^(PASS|FAIL|SKIP|ERROR|XFAIL|XPASS) ' \
	    "$dir/$base.$k.log" 2>/dev/null | tail -n 1)
	res=$(sed -n 's/^:test-result: //p' "$suite.trs" 2>/dev/null |
	    head -n 1)
	if [ $rc -eq 0 ] && [ "$res" = PASS ]; then
		held[$suite]=$((${held[$suite]} + 1))
	else
		fails[$suite]="${fails[$suite]} $k(${res:-rc $rc})"
	fi
	echo "repeat: $base run $k/$runs: ${res:-rc $rc}, ${secs}s:" \
	    "${line:-no log}"
}

# Round by round, every suite once a round: a session cut short still has
# runs of every suite.
declare -A held worst fails
for suite in "$@"; do held[$suite]=0 worst[$suite]=0 fails[$suite]=""; done
for k in $(seq "$runs"); do
	for suite in "$@"; do
		run_one "$suite" "$k"
	done
done
bad=0
for suite in "$@"; do
	base=$(basename "$suite")
	echo "repeat: $base: ${held[$suite]}/$runs held, slowest ${worst[$suite]}s"
	[ -z "${fails[$suite]}" ] || echo "repeat: $base: runs that did" \
	    "not pass:${fails[$suite]} (logs $dir/$base.K.log)"
	[ "${held[$suite]}" -eq "$runs" ] || bad=1
done
exit $bad
