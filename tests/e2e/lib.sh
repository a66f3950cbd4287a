# Sourced by the end-to-end suites (postfix-nat.sh, docker-nat.sh): the
# assertions, each printing the line that proved it, and the mail a remote
# sender sends.  The suite sets: name, tmp, rem (the sender's namespace),
# log (Postfix's maillog_file) and mail (virtual_mailbox_base).

pass=0 fail=0
ok() { echo "PASS: $1"; pass=$((pass + 1)); }
bad() {		# label, expected, what was seen (a file or a string)
	echo "FAIL: $1"
	echo "    expected: $2"
	if [ -f "$3" ]; then
		echo "    saw ($3):"
		sed 's/^/        /' "$3" | tail -n 25
	else
		echo "    saw: $3"
	fi
	fail=$((fail + 1))
}
# The file may still be being written by another process (postlogd's
# maillog, natguard's log line for a probe that lands later): the line is
# waited for, up to 10 s, never read for once.  Only a failure waits.
has() {		# label, extended regex, file; shows the line that matched
	local line n=0
	until line=$(grep -E -m 1 -- "$2" "$3" 2>/dev/null) &&
	    [ -n "$line" ] || [ $n -ge 200 ]; do
		n=$((n + 1))
		sleep 0.05
	done
	if [ -n "$line" ]; then
		ok "$1"
		echo "    $(printf '%s' "$line" | cut -c 1-300)"
	else
		bad "$1" "a line matching /$2/" "$3"
	fi
}
hasnt() {	# label, extended regex, file
	if grep -qE -- "$2" "$3" 2>/dev/null; then
		bad "$1" "no line matching /$2/" \
		    "$(grep -E -- "$2" "$3" | head -n 3)"
	else ok "$1"; fi
}
# Wait for a condition that has no signal of its own (a log line written by
# another process); fails after 20 s.
wait_for() {
	local n=0
	until eval "$1"; do
		n=$((n + 1))
		[ $n -gt 400 ] && return 1
		sleep 0.05
	done
}
# Setup failed: said on the suite's stdout (fd 3) even where the failing
# command's output was sent elsewhere.
exec 3>&1
die() {
	echo "FAIL: $name: setup: $*" >&3
	echo "$name: $pass passed, $((fail + 1)) failed" >&3
	exit 1
}
run() { "$@" || die "$*"; }

# The sender domains' records (dnsmasq), served on the mail host's loopback.
zone_conf() {
	cat <<'ZONE'
port=53
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
local=/test/
local=/in-addr.arpa/
local=/ip6.arpa/
host-record=client.pass.test,198.51.100.2,2001:db8:25::2
txt-record=client.pass.test,"v=spf1 a -all"
txt-record=pass.test,"v=spf1 a:client.pass.test -all"
txt-record=fail.test,"v=spf1 ip4:192.0.2.1 -all"
mx-host=outside.test,mx.outside.test,10
host-record=mx.outside.test,192.0.2.25
ZONE
}

# Postfix's main.cf: mail for example.test delivered to Maildirs under
# $mail, mail for anywhere else held in the queue (defer_transports) so
# nothing leaves, natguard's lines as shipped in conf/postfix.
main_cf() {	# queue_directory data_directory maillog_file mailbox_base
	cat <<MAIN
compatibility_level = 3.6
queue_directory = $1
data_directory = $2
maillog_file = $3
maillog_file_prefixes = $(dirname "$3")
myhostname = mx.example.test
mydomain = example.test
mydestination =
inet_interfaces = all
inet_protocols = all
mynetworks = 127.0.0.0/8 [::1]/128
alias_maps =
alias_database =
biff = no
smtputf8_enable = no
virtual_mailbox_domains = example.test
virtual_mailbox_base = $4
virtual_mailbox_maps = inline:{postmaster@example.test=postmaster/}
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
defer_transports = smtp
MAIN
	cat "$srcdir/conf/postfix/main.cf.natguard"
}

# One SMTP transaction from the remote namespace; what swaks saw goes to
# $tmp/NAME.swaks.  The Subject names the case, to find its mailbox file.
send() {	# name server from to
	ip netns exec "$rem" swaks --server "$2" --port 25 --timeout 20 \
	    --helo client.pass.test --from "$3" --to "$4" \
	    --header "Subject: natguard e2e $1" --body "case $1" \
	    > "$tmp/$1.swaks" 2>&1
}
# A hiders' sender: one transaction from the remote sender to the Docker
# host's 198.51.100.1 on PORT, its HELO mx.DOMAIN without an SPF record (so
# MAIL FROM decides wherever a proxy puts the client).
send_mx() {	# name port from
	ip netns exec "$rem" swaks --server 198.51.100.1 --port "$2" \
	    --timeout 20 --helo "mx.${3#*@}" --from "$3" \
	    --to postmaster@example.test --header "Subject: natguard e2e $1" \
	    --body "case $1" > "$tmp/$1.swaks" 2>&1
}
# swaks marks a reply "<-", one over TLS "<~"; an error "<**", "<~*".
queue_id() {	# swaks output file: the queue id of "250 ... queued as ID"
	sed -nE 's/^<[-~] +250 .*queued as ([0-9A-Za-z]+).*/\1/p' "$1" | tail -n 1
}
# Accepted by Postfix and delivered to the mailbox: wait for the log line,
# then the message file must carry the header.
delivered() {	# label, swaks output file, name, header regex
	local id f
	id=$(queue_id "$2")
	if [ -z "$id" ]; then
		bad "$1: accepted" "250 ... queued as ID" "$2"
		return
	fi
	ok "$1: accepted ($id)"
	if ! wait_for "grep -q '$id: to=<postmaster@example.test>.*status=sent' '$log'"
	then
		bad "$1: delivered" "$id: ... status=sent" "$log"
		return
	fi
	f=$(grep -l "natguard e2e $3\$" "$mail"/postmaster/new/* 2>/dev/null |
	    head -n 1)
	if [ -z "$f" ]; then
		bad "$1: in the mailbox" "a message with Subject ... $3" \
		    "$(ls "$mail"/postmaster/new 2>&1)"
		return
	fi
	ok "$1: delivered to the mailbox"
	[ -n "$4" ] && has "$1: header" "$4" "$f"
}
not_delivered() {	# label, name
	if grep -qs "natguard e2e $2\$" "$mail"/postmaster/new/*; then
		bad "$1: nothing delivered" "no message of case $2" \
		    "$(grep -ls "natguard e2e $2\$" "$mail"/postmaster/new/*)"
	else
		ok "$1: nothing delivered"
	fi
}
# What the hiders' suites ask of swaks' transcripts: no 5xx reply in any
# of them (no real mail refused), and the first reply, for a table row.
no_5xx() {	# label, swaks output files...
	local l=$1 f n=0
	shift
	for f in "$@"; do
		grep -qE '^<(\*\*|~\*) +5[0-9][0-9] ' "$f" && n=$((n + 1))
	done
	if [ $n -eq 0 ]; then ok "$l: no 5xx for any of $# senders"
	else bad "$l" "no 5xx reply" "$n of $# got one"; fi
}
reply() { grep -E '^<(\*\*|~\*) +[45][0-9][0-9] ' "$1" | head -n 1 | cut -c 1-160; }
# The hiders' suites' zone: eight sender domains whose SPF passes for the
# real client (198.51.100.0/24), one forged, an office's.
hider_zone() {
	printf '%s\n' port=53 listen-address=127.0.0.1 bind-interfaces \
	    no-resolv no-hosts local=/test/ local=/in-addr.arpa/
	for i in 1 2 3 4 5 6 7 8; do
		echo "txt-record=pass$i.test,\"v=spf1 ip4:198.51.100.0/24 -all\""
	done
	echo 'txt-record=fail.test,"v=spf1 ip4:192.0.2.1 -all"'
	echo 'txt-record=corp.test,"v=spf1 ip4:203.0.113.5 -all"'
}

# --- the kit: namespaces, DNS, natguard; undone on any exit ----------------
# kit_init PREFIX makes $tmp and the traps; whatever the kit starts is
# registered and undone by kit_cleanup, whatever the exit (a suite adds
# its own undo with kit_on_exit).  kit_ns NAME... makes namespaces, their
# loopback up.
kit_pids="" kit_nss="" kit_undo=""
kit_init() {
	tmp=$(mktemp -d "/tmp/natguard-$1.XXXXXX")
	chmod 755 "$tmp"		# Postfix's own users walk into it
	nglog=$tmp/natguard.log
	trap kit_cleanup EXIT
	trap 'exit 1' INT TERM
}
kit_on_exit() { kit_undo="$1; $kit_undo"; }
kit_cleanup() {
	local ns
	eval "$kit_undo"
	# Silently: bash would report each job the kill -9 ends.
	{
		[ -n "${ng_pid:-}" ] && kill "$ng_pid" && wait "$ng_pid"
		# shellcheck disable=SC2086
		[ -n "$kit_pids" ] && kill $kit_pids
		for ns in $kit_nss; do
			ip netns pids "$ns" | xargs -r kill -9
			ip netns del "$ns"
			rm -rf "/etc/netns/$ns"
		done
		wait
	} 2>/dev/null
	rm -rf --one-file-system "$tmp"
}
kit_ns() {
	local ns
	for ns; do
		run ip netns add "$ns"
		kit_nss="$kit_nss $ns"
		run ip -n "$ns" link set lo up
	done
}

# dns_start NS CONF: dnsmasq with that configuration in NS (on its
# loopback, port 53, as CONF says), named by NS's resolv.conf; ready when
# it says it started.  Its log goes to $tmp/dnsmasq-NS.log.
dns_start() {
	local line
	mkdir -p "/etc/netns/$1"
	echo "nameserver 127.0.0.1" > "/etc/netns/$1/resolv.conf"
	rm -f "$tmp/dns.fifo"
	mkfifo "$tmp/dns.fifo"
	ip netns exec "$1" dnsmasq --keep-in-foreground --user=root \
	    --conf-file="$2" --log-facility=- 2>"$tmp/dns.fifo" &
	kit_pids="$kit_pids $!"
	while read -r line; do
		case "$line" in *started*) break ;; esac
	done < "$tmp/dns.fifo"
	cat "$tmp/dns.fifo" > "$tmp/dnsmasq-$1.log" &
}

# natguard_start NS CONF [ENV=VALUE...]: the daemon in NS with that file
# (log = stderr), its lines appended to $nglog; ready when it logs
# "listening on".  natguard_stop stops it and waits.
natguard_start() {
	local ns=$1 conf=$2 line
	shift 2
	rm -f "$tmp/ng.fifo"
	mkfifo "$tmp/ng.fifo"
	ip netns exec "$ns" env "$@" "$NATGUARD" -c "$conf" \
	    2>"$tmp/ng.fifo" &
	ng_pid=$!
	while read -r line; do
		echo "$line" >> "$nglog"
		case "$line" in *"listening on"*) break ;; esac
	done < "$tmp/ng.fifo"
	cat "$tmp/ng.fifo" >> "$nglog" &
	kill -0 "$ng_pid" 2>/dev/null ||
	    die "natguard did not start: $(tail -n 5 "$nglog")"
}
natguard_stop() {
	kill "$ng_pid" 2>/dev/null
	wait "$ng_pid"
	ng_pid=
}

# policy_ask NS PORT NAME=VALUE...: one policy request to 127.0.0.1:PORT
# from inside NS, as Postfix's smtpd sends it; prints the reply line.
policy_ask() {
	local ns=$1 port=$2
	shift 2
	ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
	    shift
	    { printf "request=smtpd_access_policy\nprotocol_state=RCPT\n"
	      printf "%s\n" "$@"; printf "\n"; } >&3
	    head -n 1 <&3' ask "$port" "$@"
}

# nginx_stream NS PORT SERVER...: Debian's nginx with its stream module in
# NS, one server block a SERVER ("listen ...; proxy_pass ...;"), its files
# in $tmp/nginx; ready when PORT (the first server's) listens.
stream_mod=/usr/lib/nginx/modules/ngx_stream_module.so
nginx_stream() {
	local ns=$1 port=$2 srv
	shift 2
	mkdir -p "$tmp/nginx"
	{
		echo "load_module $stream_mod;"
		echo "daemon off;"
		echo "master_process off;"
		echo "pid $tmp/nginx/nginx.pid;"
		echo "error_log $tmp/nginx/error.log warn;"
		echo "events { worker_connections 64; }"
		echo "stream {"
		for srv; do echo "	server { $srv }"; done
		echo "}"
	} > "$tmp/nginx.conf"
	ip netns exec "$ns" nginx -p "$tmp/nginx" -c "$tmp/nginx.conf" \
	    > "$tmp/nginx/out" 2>&1 &
	kit_pids="$kit_pids $!"
	wait_for "ip netns exec $ns ss -Hltn 'sport = :$port' | grep -q ." ||
	    die "nginx is not listening: $(cat "$tmp/nginx/out" \
	    "$tmp/nginx/error.log" 2>&1)"
}

# haproxy_tcp NS PORT: Debian's HAProxy in mode tcp in NS, its proxies
# (frontend/backend or listen sections) on standard input; ready when PORT
# listens.  Its log is $tmp/haproxy.log.
haproxy_tcp() {
	{
		printf '%s\n' global \
		    '	log stderr format short local0 warning' defaults \
		    '	mode tcp' '	timeout connect 5s' \
		    '	timeout client 60s' '	timeout server 60s'
		cat
	} > "$tmp/haproxy.cfg"
	ip netns exec "$1" haproxy -db -f "$tmp/haproxy.cfg" \
	    > "$tmp/haproxy.log" 2>&1 &
	kit_pids="$kit_pids $!"
	wait_for "ip netns exec $1 ss -Hltn 'sport = :$2' | grep -q ." ||
	    die "haproxy is not listening: $(cat "$tmp/haproxy.log")"
}
