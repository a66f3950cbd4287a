#!/bin/bash
# The docker-mailserver stand-in's start: what docker-mailserver 14 does
# at startup that natguard's integration depends on, in its order.
set -eu
config=/tmp/docker-mailserver

# ENABLE_POLICYD_SPF=0: no policyd-spf in the restrictions.
if [ "${ENABLE_POLICYD_SPF:-1}" = 0 ]; then
	postconf -e "smtpd_recipient_restrictions = $(postconf -h \
	    smtpd_recipient_restrictions | sed 's/check_policy_service unix:private\/policyd-spf, //')"
fi
# postfix-main.cf: each setting merged into main.cf.
if [ -f "$config/postfix-main.cf" ]; then
	grep -E '^[a-z_0-9]+ *=' "$config/postfix-main.cf" |
	while IFS= read -r line; do
		postconf -e "$line"
	done
	echo "mailserver: merged $config/postfix-main.cf"
fi
# user-patches.sh, last before the daemons.
if [ -f "$config/user-patches.sh" ]; then
	echo "mailserver: running $config/user-patches.sh"
	/bin/bash "$config/user-patches.sh"
fi
echo "mailserver: smtpd_recipient_restrictions = $(postconf -h \
    smtpd_recipient_restrictions)"
supervisorctl start postfix
echo "mailserver: started"
