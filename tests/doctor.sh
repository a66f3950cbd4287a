#!/bin/sh
# natguard doctor as a mail administrator runs it: the README's
# misconfiguration (daemon.json with ip6tables off, port 25 on a compose
# network without IPv6) must print its FAILs with their fixes and exit 1,
# and the real postconf must read the fixture Postfix directories.  The
# machine's own checks (container, IPv6) vary and are not asserted here;
# tests/unit/check_doctor.c covers them on fixture trees.
set -u
name=doctor
command -v jq >/dev/null 2>&1 || { echo "SKIP: $name: jq is not installed"; exit 77; }
: "${NATGUARD:?}" "${TESTDATA:?}"
srcdir=$(cd "$(dirname "$0")/.." && pwd)
dd=$TESTDATA/doctor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Gateway 172.20.0.1 by configuration, so the result does not depend on
# this machine's routes.  The daemon-listen check is the daemon suite's.
printf 'gateways = 172.20.0.1\nspf = no\n' > "$tmp/natguard.conf"

pass=0 fail=0
ok() { echo "PASS: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; echo "    expected: $2"; echo "    saw: $3"; fail=$((fail + 1)); }
status() {	# label, JSON file, check name, expected status[, evidence]
	got=$(jq -r --arg n "$3" '[.checks[] | select(.name == $n) | .status][0] // "absent"' "$2")
	ev=$(jq -r --arg n "$3" '[.checks[] | select(.name == $n) | .evidence][0] // ""' "$2")
	case "$ev" in *"${5:-}"*) ;; *) got="$got (evidence lacks \"$5\")" ;; esac
	if [ "$got" = "$4" ]; then ok "$1"; else
		bad "$1" "$3 $4" "$3 $got: $(jq -c --arg n "$3" '.checks[] | select(.name == $n)' "$2")"
	fi
}

# The README's example, as text.
"$NATGUARD" doctor -c "$tmp/natguard.conf" \
    --daemon-json "$dd/daemon-proxied.json" \
    --compose "$dd/compose-proxied.yaml" > "$tmp/out" 2>&1
rc=$?
cat "$tmp/out"
if [ $rc -eq 1 ]; then ok "README example exits 1"; else
	bad "README example exits 1" "exit 1" "exit $rc"; fi
for want in "FAIL docker-ip6tables: \"ip6tables\": false in" \
    "FAIL compose-mail-service: $dd/compose-proxied.yaml: service mailserver publishes 25:25, 587:587" \
    "     fix: set \"ip6tables\": true in daemon.json" \
    "     fix: put the service on a network with enable_ipv6: true"; do
	if grep -qF -- "$want" "$tmp/out"; then ok "prints: $want"; else
		bad "prints its FAILs and fixes" "$want" "(see above)"; fi
done

# The real postconf on a Postfix directory with the open-relay trap.
for dir in postfix-trap postfix-good; do
	mkdir "$tmp/$dir"
	cp "$dd/$dir/main.cf" "$tmp/$dir/main.cf"
	cp "$srcdir/tests/e2e/master.cf" "$tmp/$dir/master.cf"
done
if command -v postconf >/dev/null 2>&1 || [ -x /usr/sbin/postconf ]; then
	"$NATGUARD" doctor -c "$tmp/natguard.conf" --json \
	    --postfix-dir "$tmp/postfix-trap" > "$tmp/trap.json"
	rc=$?
	[ $rc -eq 1 ] && ok "trap: exit 1" || bad "trap: exit 1" "exit 1" "exit $rc"
	[ "$(jq -r .status "$tmp/trap.json")" = fail ] && ok "trap: status fail" ||
	    bad "trap: status fail" fail "$(jq -r .status "$tmp/trap.json")"
	status "trap: postconf ran" "$tmp/trap.json" postfix ok
	status "trap: gateway in mynetworks" "$tmp/trap.json" \
	    postfix-mynetworks fail "172.16.0.0/12 contains the gateway 172.20.0.1"
	status "trap: natguard after permit_mynetworks" "$tmp/trap.json" \
	    postfix-policy fail "after permit_mynetworks"
	status "trap: 10s policy timeout" "$tmp/trap.json" postfix-policy-timeout warn
	"$NATGUARD" doctor -c "$tmp/natguard.conf" --json \
	    --postfix-dir "$tmp/postfix-good" > "$tmp/good.json"
	status "good: mynetworks" "$tmp/good.json" postfix-mynetworks ok
	status "good: natguard before permit_mynetworks" "$tmp/good.json" \
	    postfix-policy ok "before permit_mynetworks"
	status "good: policy timeout" "$tmp/good.json" postfix-policy-timeout ok
	"$NATGUARD" doctor -c "$tmp/natguard.conf" --json \
	    --postfix-dir "$tmp/no-such-dir" > "$tmp/none.json" 2>"$tmp/err"
	status "a missing Postfix directory" "$tmp/none.json" postfix fail
	# Postfix installed but not configured here: a warning, not a FAIL.
	MAIL_CONFIG=$tmp/no-such-dir "$NATGUARD" doctor -c "$tmp/natguard.conf" \
	    --json > "$tmp/unset.json" 2>"$tmp/err"
	status "Postfix not configured here" "$tmp/unset.json" postfix warn \
	    "Postfix's settings not checked"
else
	echo "SKIP: $name: postconf is not installed (apt-get install postfix)"
fi

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
