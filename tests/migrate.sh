#!/bin/sh
# natguard migrate on Debian's own policyd-spf.conf (SKIP where
# postfix-policyd-spf-python is not installed): what it prints is a
# natguard.conf natguard accepts, with policyd-spf's temperror behaviour;
# a file it cannot read is exit 2 naming it.
set -u
name=migrate
: "${NATGUARD:?}"
conf=/etc/postfix-policyd-spf-python/policyd-spf.conf
pass=0 fail=0
check() {	# label, then a command that must succeed
	label=$1; shift
	if "$@" >/dev/null 2>&1; then pass=$((pass + 1)); echo "PASS: $label"
	else fail=$((fail + 1)); echo "FAIL: $label"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$NATGUARD" migrate --from-policyd-spf "$tmp/none" 2>"$tmp/err"
check "a missing file: exit 2" test $? -eq 2
check "a missing file: named" grep -q "^natguard: $tmp/none: " "$tmp/err"
if [ ! -f "$conf" ]; then
	echo "SKIP: $name: $conf: postfix-policyd-spf-python is not installed"
	echo "$name: $pass passed, $fail failed"
	[ $fail -eq 0 ]
	exit
fi
"$NATGUARD" migrate --from-policyd-spf "$conf" > "$tmp/natguard.conf"
check "Debian's $conf migrates" test $? -eq 0
check "the result is a natguard.conf" "$NATGUARD" config -c "$tmp/natguard.conf"
"$NATGUARD" config -c "$tmp/natguard.conf" > "$tmp/config" 2>&1
check "policyd-spf does not defer on temperror: spf_defer is empty" \
    grep -qx 'spf_defer = ' "$tmp/config"
check "HELO_reject = Mail_From_reject = Fail: spf_reject = fail" \
    grep -qx 'spf_reject = fail' "$tmp/config"
check "the Postfix lines to change" grep -q 'check_policy_service inet:127.0.0.1:10041' \
    "$tmp/natguard.conf"
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
