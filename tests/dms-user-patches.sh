#!/bin/sh
# conf/docker-mailserver/user-patches.sh against the real postconf: natguard
# first in smtpd_recipient_restrictions, docker-mailserver's policyd-spf
# gone, everything else kept in order, and a second run (a restarted
# container) changes nothing.
set -u
name=dms-user-patches
PATH=$PATH:/usr/sbin
command -v postconf >/dev/null 2>&1 ||
    { echo "SKIP: $name: postconf is not installed (apt-get install postfix)"; exit 77; }
: "${NATGUARD:?}" "${TESTDATA:?}"
srcdir=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$TESTDATA/dms/main.cf" "$tmp/main.cf"
cp "$srcdir/tests/e2e/master.cf" "$tmp/master.cf"
mkdir "$tmp/bin"
ln -s "$NATGUARD" "$tmp/bin/natguard"

pass=0 fail=0
expect() {	# label, expected, seen
	if [ "$2" = "$3" ]; then
		echo "PASS: $1"; pass=$((pass + 1))
	else
		echo "FAIL: $1"; echo "    expected: $2"; echo "    saw:      $3"
		fail=$((fail + 1))
	fi
}
patch() {
	MAIL_CONFIG=$tmp PATH=$tmp/bin:$PATH \
	    bash "$srcdir/conf/docker-mailserver/user-patches.sh" \
	    >"$tmp/out" 2>&1
}
want='check_policy_service inet:127.0.0.1:10041, permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination, reject_unauth_pipelining, reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname, reject_unknown_recipient_domain, reject_non_fqdn_recipient, reject_unlisted_recipient'

patch; rc=$?
expect "runs cleanly" 0 "$rc"
expect "natguard first, policyd-spf removed, the rest in order" "$want" \
    "$(postconf -c "$tmp" -h smtpd_recipient_restrictions)"
patch
expect "a second run changes nothing" "$want" \
    "$(postconf -c "$tmp" -h smtpd_recipient_restrictions)"
expect "postconf finds nothing to warn about" "" \
    "$(postconf -c "$tmp" -n 2>&1 >/dev/null)"
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
