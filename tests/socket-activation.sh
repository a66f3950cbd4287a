#!/bin/sh
# Socket activation (conf/systemd/natguard.socket): natguard takes the
# listening sockets systemd hands it (LISTEN_PID, LISTEN_FDS) in place of
# `listen`, says so, warns when `listen` names another endpoint, leaves a
# unix socket systemd owns in place at exit, binds `listen` itself when
# the sockets are not its own, refuses a descriptor that is no stream
# socket, and hands its connections to the descriptor store across
# restarts.  systemd-socket-activate (systemd's own tool) and
# tests/bench/restart.py play systemd's part.
set -u
name=socket-activation
: "${NATGUARD:?}"
command -v systemd-socket-activate >/dev/null 2>&1 ||
    { echo "SKIP: $name: systemd-socket-activate is not installed (Debian: systemd)"; exit 77; }
command -v socat >/dev/null 2>&1 ||
    { echo "SKIP: $name: socat is not installed"; exit 77; }
tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pass=0 fail=0
ok() { echo "PASS: $1"; pass=$((pass + 1)); }
ko() { echo "FAIL: $1"; fail=$((fail + 1)); }

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# A request, its reply's first line (the connection is the readiness
# signal: systemd-socket-activate starts natguard on the first one).
ask() {
	printf 'request=smtpd_access_policy\nclient_address=192.0.2.1\n\n' |
	    timeout 10 socat -t 5 - "$1" 2>/dev/null | head -1
}
# Wait up to 10 s for a line in a file.
wait_line() {
	n=0
	until grep -q "$2" "$1" 2>/dev/null; do
		n=$((n + 1)); [ $n -gt 200 ] && return 1; sleep 0.05
	done
}
cat > "$tmp/natguard.conf" <<CONF
log = stderr
gateways = none
mynetworks = none
state_dir =
spf = no
CONF

# 1. A TCP socket from "systemd": answered, and the log says whose.
port=$(free_port)
systemd-socket-activate -l "127.0.0.1:$port" "$NATGUARD" \
    -c "$tmp/natguard.conf" > "$tmp/1.log" 2>&1 &
pids="$pids $!"
wait_line "$tmp/1.log" "Listening on 127.0.0.1:$port" ||
    ko "systemd-socket-activate listens"
reply=$(ask "TCP:127.0.0.1:$port")
[ "$reply" = "action=DUNNO" ] && ok "answered on systemd's socket" ||
    ko "answered on systemd's socket: got '$reply'"
wait_line "$tmp/1.log" "listening on inet:127.0.0.1:$port, sockets from systemd" &&
    ok "the log says the sockets came from systemd" ||
    { ko "the log says the sockets came from systemd"; cat "$tmp/1.log"; }

# 2. listen names another endpoint: a warning saying where to change it.
port=$(free_port)
cp "$tmp/natguard.conf" "$tmp/other.conf"
echo "listen = unix:$tmp/elsewhere.sock" >> "$tmp/other.conf"
systemd-socket-activate -l "127.0.0.1:$port" "$NATGUARD" \
    -c "$tmp/other.conf" > "$tmp/2.log" 2>&1 &
pids="$pids $!"
wait_line "$tmp/2.log" "Listening on 127.0.0.1:$port" || true
reply=$(ask "TCP:127.0.0.1:$port")
wait_line "$tmp/2.log" "listen = unix:$tmp/elsewhere.sock is not used: systemd gives inet:127.0.0.1:$port; change ListenStream= with systemctl edit natguard.socket" &&
    [ "$reply" = "action=DUNNO" ] && ok "a listen systemd does not give is named" ||
    { ko "a listen systemd does not give is named"; cat "$tmp/2.log"; }
[ ! -e "$tmp/elsewhere.sock" ] && ok "and not bound" ||
    ko "listen was bound beside systemd's socket"

# 3. A unix socket systemd owns stays in place when natguard exits.
sock=$tmp/natguard.sock
systemd-socket-activate -l "$sock" "$NATGUARD" -c "$tmp/natguard.conf" \
    > "$tmp/3.log" 2>&1 &
p3=$!
pids="$pids $p3"
wait_line "$tmp/3.log" "Listening on $sock" || true
reply=$(ask "UNIX-CONNECT:$sock")
[ "$reply" = "action=DUNNO" ] && ok "answered on systemd's unix socket" ||
    ko "answered on systemd's unix socket: got '$reply'"
kill -TERM "$p3"	# natguard: systemd-socket-activate exec'd it
wait "$p3"
st=$?
[ $st -eq 0 ] && grep -q "exiting" "$tmp/3.log" && [ -S "$sock" ] &&
    ok "exit 0, the unix socket left to its owner" ||
    { ko "exit 0, the unix socket left to its owner (status $st)"; cat "$tmp/3.log"; }

# 4. Sockets for another process (LISTEN_PID not ours): listen is bound.
port=$(free_port)
LISTEN_PID=1 LISTEN_FDS=1 "$NATGUARD" -c "$tmp/natguard.conf" \
    -l "inet:127.0.0.1:$port" > "$tmp/4.log" 2>&1 &
pids="$pids $!"
wait_line "$tmp/4.log" "listening on inet:127.0.0.1:$port$" &&
    [ "$(ask "TCP:127.0.0.1:$port")" = "action=DUNNO" ] &&
    ok "LISTEN_PID of another process: listen bound as usual" ||
    { ko "LISTEN_PID of another process: listen bound as usual"; cat "$tmp/4.log"; }

# 5. Descriptor 3 is no socket: a clear error, not a silent hang.
LISTEN_FDS=1 sh -c 'LISTEN_PID=$$ exec "$0" -c "$1"' "$NATGUARD" \
    "$tmp/natguard.conf" 3< /dev/null > "$tmp/5.log" 2>&1
st=$?
[ $st -ne 0 ] && grep -q "socket activation: descriptor 3 from systemd is not a stream socket" "$tmp/5.log" &&
    ok "a descriptor that is no listening socket: exit $st with its reason" ||
    { ko "a descriptor that is no listening socket (status $st)"; cat "$tmp/5.log"; }

# 6. Restarts under load with the descriptor store (tests/bench/restart.py
# plays systemd): connections handed over, no request failed, not even
# on its first try.
if /usr/bin/python3 -c 'import socket; socket.recv_fds' 2>/dev/null; then
	out=$(timeout 120 /usr/bin/python3 "$(dirname "$0")/bench/restart.py" \
	    --natguard "$NATGUARD" --restarts 5 --clients 10 handover)
	echo "$out"
	case "$out" in
	*" 0 first-try failures "*", 0 failed after the retry, 0 refused"*)
		ok "5 restarts under load, connections handed over: nothing failed" ;;
	*)	ko "5 restarts under load, connections handed over" ;;
	esac
else
	echo "SKIP: restarts under load: Python without socket.recv_fds"
fi

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
