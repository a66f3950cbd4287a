#!/bin/bash
# docker-mailserver runs this at startup, after it has written Postfix's
# configuration (place it in the config volume,
# docker-data/dms/config/user-patches.sh).
#
# Puts natguard first in smtpd_recipient_restrictions: before
# permit_mynetworks, because with PERMIT_DOCKER the bridge gateway is in
# mynetworks and every IPv6 client through Docker's proxy would be let
# through (and relayed for) before natguard is asked.  The image's own
# policyd-spf entry is removed; set ENABLE_POLICYD_SPF=0 as well.
set -eu

policy='check_policy_service inet:127.0.0.1:10041'
current=$(postconf -h smtpd_recipient_restrictions)
case "$current" in
*"$policy"*)
	;;	# already patched (the container was restarted)
*)
	rest=$(printf '%s' "$current" | tr ',' '\n' |
	    sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' |
	    grep -v -e '^$' -e 'policyd-spf' | paste -sd, - | sed 's/,/, /g')
	postconf -e "smtpd_recipient_restrictions = $policy, $rest"
	;;
esac

# The gateway set, in the container's log, so that the first look at
# `docker compose logs mailserver` shows what natguard will flag.
natguard gateways -c /etc/natguard/natguard.conf || true
