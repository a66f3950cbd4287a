#!/bin/bash
# The Debian package, installed as an admin installs it: built from a
# clean copy of this tree with dpkg-buildpackage (and a second build with
# a bumped version), lintian on both, then in a brand-new Debian 12 root
# with systemd as PID 1 under a private dockerd: `apt install ./natguard_*.deb`
# (the service active and answering, as the user natguard), the conffile
# edited, the newer build installed under a Postfix-like load (the edit
# kept, no request lost) and reinstalled under a quieter one, `apt remove` (stopped), `apt purge` (the user,
# the state and the conffile gone).
set -u

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
. "$srcdir/tests/e2e/docker-lib.sh"
. "$srcdir/tests/e2e/lib.sh"
docker_suite docker-deb deb
: "${NATGUARD:?NATGUARD must name the binary}"
[ -d "$srcdir/debian" ] || skip "no debian/ in this tree (a dist tarball)"
# The package is its own build, without sanitizers: it is tested once, in
# the plain build's run.
ldd "$NATGUARD" | grep -q libasan &&
    skip "a sanitizer build: the package (built plain) is tested in the plain build's run"
for t in dpkg-buildpackage dh lintian; do
	command -v $t >/dev/null 2>&1 || skip "$t is not installed" \
	    "(apt-get install dpkg-dev debhelper lintian)"
done
host=ngdb$$

# --- build: this tree's files, twice ------------------------------------------
start=$(date +%s)
why=$(deb_build "$tmp/build-base" base) || die "$why"
version=$(sed -n '1s/^natguard (\([^)]*\)).*/\1/p' "$srcdir/debian/changelog")
new="$version+t1"
why=$(deb_build "$tmp/build-$new" "$new") || die "$why"
echo "    (two builds in $(( $(date +%s) - start )) s)"
old_deb=$(ls "$tmp"/build-base/natguard_*_amd64.deb)
new_deb=$(ls "$tmp/build-$new"/natguard_*_amd64.deb)
[ -f "$old_deb" ] && ok "dpkg-buildpackage built $(basename "$old_deb")" ||
    die "no .deb built"
ls "$tmp"/build-base/natguard-dbgsym_*_amd64.deb >/dev/null 2>&1 &&
    ok "and its -dbgsym" || bad "a -dbgsym package" "built" "none"
sed 's/^/    lintian: /' "$tmp/build-base/lintian.log" | grep -v 'root privileges'
if [ "$(cat "$tmp/build-base/lintian.rc")" = 0 ]; then
	ok "lintian: no error, no warning"
else
	bad "lintian: no error, no warning" "exit 0" "$tmp/build-base/lintian.log"
fi
dpkg-deb -f "$old_deb" Depends > "$tmp/depends"
has "Depends from shlibs: libspf2-2, libcidr0, libevent" \
    'libcidr0.*libevent|libevent.*libcidr0' "$tmp/depends"

# --- a brand-new Debian 12 with systemd as PID 1 -------------------------------
tar=$(rootfs deb systemd systemd-sysv dbus adduser $(natguard_libs)) ||
    skip "cannot build the Debian 12 root: $tar"
run ip netns add "$host"
run ip -n "$host" link set lo up
echo '{}' > "$tmp/daemon.json"
dockerd_start "$tmp/daemon.json"
run docker import "$tar" natguard-test/deb >/dev/null
systemd_boot natguard-test/deb
ok "systemd booted as PID 1: $sd_state"
sd test -e /usr/sbin/natguard && die "natguard is already in the root"
docker cp "$old_deb" sd:/tmp/ || die "docker cp"
docker cp "$new_deb" sd:/tmp/ || die "docker cp"
ask() {
	sd bash -c 'exec 3<>/dev/tcp/127.0.0.1/10041 &&
	    printf "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=198.51.100.7\nhelo_name=a.example\nsender=a@example.org\nrecipient=b@example.com\n\n" >&3 &&
	    head -n 1 <&3'
}

# --- install ---------------------------------------------------------------------
# --no-install-recommends: the root has no network to fetch Postfix
# (Recommends) from; everything natguard Depends on is there.
if sd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "/tmp/$(basename "$old_deb")" \
    > "$tmp/install" 2>&1; then
	ok "apt install ./$(basename "$old_deb")"
else
	bad "apt install" "exit 0" "$tmp/install"
fi
sd systemctl is-active natguard.socket natguard > "$tmp/active" 2>&1
has "natguard.socket and natguard.service active after install" \
    '^active$' "$tmp/active"
[ "$(grep -c '^active$' "$tmp/active")" = 2 ] ||
    bad "both units active" "active twice" "$tmp/active"
ask > "$tmp/r1"
has "it answers on 127.0.0.1:10041" '^action=' "$tmp/r1"
pid=$(sd systemctl show -p MainPID --value natguard)
sd getent passwd natguard > "$tmp/user" 2>&1
has "the system user natguard exists" '^natguard:' "$tmp/user"
uid=$(cut -d: -f3 "$tmp/user")
sd cat "/proc/$pid/status" > "$tmp/status"
has "the daemon runs as natguard" "^Uid:[[:space:]]+$uid[[:space:]]" \
    "$tmp/status"
sd journalctl -u natguard --no-pager -o cat > "$tmp/journal"
has "natguard serves natguard.socket's socket" 'sockets from systemd' \
    "$tmp/journal"
sd dpkg-query -W -f='${Conffiles}\n' natguard > "$tmp/conffiles"
has "/etc/natguard/natguard.conf is a conffile" '/etc/natguard/natguard.conf' \
    "$tmp/conffiles"

# --- the conffile edited, then the upgrade under load ---------------------------
# The load comes from the dockerd's namespace: the socket listens on the
# container's address too (a drop-in), and listen in the conffile says
# the same (the admin's edit).
sd sed -i 's/^#listen = .*/listen = inet:0.0.0.0:10041/' \
    /etc/natguard/natguard.conf
# spf = no: the root has no DNS server, and an SPF evaluation that waits
# for one would make the load a measure of dns_timeout.
# log_level = notice: one line per request would run into journald's
# rate limit, which may drop the line this test looks for.
sd sh -c 'printf "nat_action = warn\nspf = no\nlog_level = notice\n" >> /etc/natguard/natguard.conf'
sd mkdir -p /etc/systemd/system/natguard.socket.d
printf '[Socket]\nListenStream=\nListenStream=0.0.0.0:10041\n' |
    docker exec -i sd sh -c 'cat > /etc/systemd/system/natguard.socket.d/any.conf'
run sd systemctl daemon-reload
run sd systemctl stop natguard natguard.socket
run sd systemctl start natguard.socket natguard
cip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' sd)
# apt-get install of the newer build (its maintainer scripts restart the
# service) under 20 Postfix-like clients; what they saw.
apt_under_load() {	# label, ms between requests, what, apt-get arguments
	local label=$1 pause=$2 what=$3
	shift 3
	ip netns exec "$host" /usr/bin/python3 "$srcdir/tests/bench/restart.py" \
	    --connect "$cip:10041" --restarts 1 --clients 20 --settle 1 \
	    --pause "$pause" \
	    --command "'$DOCKER_CLI' -H 'unix://$tmp/dockerd/docker.sock' exec -e DEBIAN_FRONTEND=noninteractive sd apt-get install -y -q --no-install-recommends $* /tmp/$(basename "$new_deb") > $tmp/$label 2>&1" \
	    external > "$tmp/load-$label" 2>&1
	sed "s/^restart-external/$label/" "$tmp/load-$label"
	echo "TABLE: $what: $(cut -d: -f2- "$tmp/load-$label" | tail -n 1)"
	has "$what: no request failed after the retry, none refused" \
	    ', 0 failed after the retry, 0 refused,' "$tmp/load-$label"
	has "$what: at most one first-try failure" \
	    ' [01] first-try failures ' "$tmp/load-$label"
}
apt_under_load upgrade 0 "package upgrade under load"
# The same upgrade path again under a quieter load: 5 ms between a reply
# and the next request.
apt_under_load reinstall 5 "package reinstall under a 5 ms-pause load" \
    --reinstall
sd dpkg -L natguard > "$tmp/files"
has "the topic documents are installed under /usr/share/doc/natguard" \
    '^/usr/share/doc/natguard/README_FILES/OPERATIONS_README(\.gz)?$' \
    "$tmp/files"
sd dpkg-query -W -f='${Version}\n' natguard > "$tmp/version"
has "the newer build is installed" "^$(echo "$new" | sed 's/[.+]/\\&/g')\$" \
    "$tmp/version"
sd grep -E '^(nat_action|listen) ' /etc/natguard/natguard.conf > "$tmp/kept"
has "the conffile edit is kept" '^nat_action = warn$' "$tmp/kept"
sd systemctl is-active natguard > "$tmp/active2" 2>&1
has "the service is active after the upgrade" '^active$' "$tmp/active2"
sd journalctl -u natguard --no-pager -o cat > "$tmp/journal"
has "the upgraded process took the connections over" \
    'took over [0-9]+ connections from the previous process' "$tmp/journal"

# --- remove, purge -----------------------------------------------------------------
run sd env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q natguard \
    > "$tmp/remove" 2>&1
sd systemctl is-active natguard > "$tmp/active3" 2>&1
hasnt "apt remove: the service is stopped" '^active$' "$tmp/active3"
sd test -e /etc/natguard/natguard.conf &&
    ok "apt remove: the conffile stays" ||
    bad "apt remove: the conffile stays" "present" "gone"
run sd env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q natguard \
    > "$tmp/purge" 2>&1
if sd getent passwd natguard > /dev/null; then
	bad "apt purge: the user natguard is gone" "no such user" "still there"
else
	ok "apt purge: the user natguard is gone"
fi
sd sh -c 'ls -d /etc/natguard/natguard.conf /var/lib/natguard 2>/dev/null' \
    > "$tmp/left"
[ -s "$tmp/left" ] && bad "apt purge: conffile and state gone" "nothing" \
    "$tmp/left" || ok "apt purge: conffile and state gone"

if command -v piuparts >/dev/null 2>&1; then
	echo "    piuparts is installed; its run is not part of this suite yet"
else
	echo "SKIP: piuparts: not installed here (apt-get install piuparts)"
fi
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
