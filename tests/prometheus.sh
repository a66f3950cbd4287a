#!/bin/sh
# conf/prometheus/natguard-alerts.yml: promtool accepts the rules, and its
# unit tests (tests/data/prometheus/natguard-alerts.test.yml) fire each
# alert on the series that should raise it and on no other.
set -u
name=prometheus
command -v promtool >/dev/null 2>&1 || {
	echo "SKIP: $name: promtool is not installed (apt-get install prometheus)"
	exit 77
}
srcdir=$(cd "$(dirname "$0")/.." && pwd)
pass=0 fail=0
for t in "check rules $srcdir/conf/prometheus/natguard-alerts.yml" \
    "test rules $srcdir/tests/data/prometheus/natguard-alerts.test.yml"; do
	# shellcheck disable=SC2086
	if out=$(promtool $t 2>&1); then
		echo "PASS: promtool ${t%% /*}"
		pass=$((pass + 1))
	else
		echo "FAIL: promtool ${t%% /*}:"
		echo "$out" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
