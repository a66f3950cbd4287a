# Sourced by the real-Docker suites: a Debian 12 root made with debootstrap
# (no image registry here) and imported, and a private dockerd in a network
# namespace of the test's own, so that no Docker already on the machine is
# touched and nothing the containers do leaves the namespace.
#
# The suite sets srcdir, calls docker_suite first, and names host (the
# Docker host's namespace) and rem (a remote sender's), which docker_hosts
# makes.

. "$srcdir/tests/netns.sh"

DOCKERD=/usr/sbin/dockerd
DOCKER_CLI=/usr/bin/docker	# Debian's client, of the daemon's version
ROOTFS_CACHE=${NG_ROOTFS_CACHE:-/var/cache/natguard-tests}

skip() { echo "SKIP: $name: $*"; exit 77; }

# docker_suite NAME PREFIX [sender]: what every real-Docker suite checks
# first (SKIP, exit 77, with the reason where this machine cannot run it;
# with "sender", what a remote sender needs too), then its $tmp, on disk
# (images and containers go there), removed with all the rest on exit.
docker_suite() {
	name=$1
	netns_check "$name"
	docker_check
	if [ "${3:-}" = sender ]; then
		command -v docker-compose >/dev/null 2>&1 || skip \
		    "docker-compose is not installed (apt-get install" \
		    "docker-compose)"
		sender_check
	fi
	suite_tmp "$2" docker_cleanup
}

# sender_check: what the remote sender needs, swaks with IPv6.
sender_check() {
	command -v swaks >/dev/null 2>&1 ||
	    skip "swaks is not installed (apt-get install swaks)"
	perl -MIO::Socket::INET6 -e 1 2>/dev/null || skip "swaks has" \
	    "no IPv6 (apt-get install libio-socket-inet6-perl)"
}

# suite_tmp PREFIX CLEANUP: the suite's $tmp, on disk, and CLEANUP (which
# removes it) on exit.
suite_tmp() {
	tmp=$(mktemp -d "/var/tmp/natguard-$1.XXXXXX")
	chmod 755 "$tmp"
	trap "$2" EXIT
	trap 'exit 1' INT TERM
}

# docker_check: the programs the suites run.
docker_check() {
	local t
	for t in $DOCKERD $DOCKER_CLI /usr/sbin/debootstrap /usr/bin/nsenter; do
		[ -x "$t" ] || {
			echo "SKIP: $name: $t is not installed" \
			    "(apt-get install docker.io debootstrap util-linux)"
			exit 77
		}
	done
}

# rootfs NAME PACKAGE...: a tar of a Debian 12 minbase root with the
# packages installed, cached in $ROOTFS_CACHE by name and package list.
# Prints its path; on failure prints why and returns 1.
rootfs() {
	local n=$1 key tar dir
	shift
	key=$(echo "bookworm $*" | md5sum | cut -c 1-12)
	tar=$ROOTFS_CACHE/$n-$key.tar
	[ -s "$tar" ] && { echo "$tar"; return 0; }
	mkdir -p "$ROOTFS_CACHE" || return 1
	dir=$(mktemp -d "$ROOTFS_CACHE/$n.XXXXXX") || return 1
	if ! debootstrap --variant=minbase bookworm "$dir/root" \
	    http://deb.debian.org/debian > "$dir/log" 2>&1; then
		echo "debootstrap failed: $(tail -n 2 "$dir/log")"
		rm -rf "$dir"
		return 1
	fi
	if [ $# -gt 0 ]; then
		mount -t proc proc "$dir/root/proc"
		echo "postfix postfix/main_mailer_type select No configuration" |
		    chroot "$dir/root" debconf-set-selections
		# No package starts its service: the chroot shares this
		# machine's network (nginx would bind its port 80).
		printf '#!/bin/sh\nexit 101\n' > "$dir/root/usr/sbin/policy-rc.d"
		chmod 755 "$dir/root/usr/sbin/policy-rc.d"
		chroot "$dir/root" sh -c "DEBIAN_FRONTEND=noninteractive \
		    apt-get install -y -q --no-install-recommends $* &&
		    apt-get clean" >> "$dir/log" 2>&1
		local rc=$?
		rm -f "$dir/root/usr/sbin/policy-rc.d"
		umount "$dir/root/proc"
		if [ $rc -ne 0 ]; then
			echo "apt-get install $* failed: $(tail -n 2 "$dir/log")"
			rm -rf "$dir"
			return 1
		fi
	fi
	tar -C "$dir/root" -cf "$dir/root.tar" . && mv "$dir/root.tar" "$tar"
	rm -rf "$dir"
	echo "$tar"
}

# natguard_libs: the Debian packages of natguard's shared libraries, for a
# root that runs the binary under test ($NATGUARD), a sanitizer build's
# runtime included.
natguard_libs() {
	echo "libevent-2.1-7 libevent-extra-2.1-7 libspf2-2 libcidr0 libjansson4"
	echo "libc-ares2 libyaml-0-2 libpsl5 publicsuffix"
	ldd "$NATGUARD" | awk '/lib(asan|ubsan)/ { print $1 }' |
	    sed -E 's/^libasan\.so\.([0-9]+)$/libasan\1/;
	        s/^libubsan\.so\.([0-9]+)$/libubsan\1/'
}

# deb_build DIR VERSION: the Debian package of this tree's files (a
# checkout's files, or the dist tree's) built in DIR with dpkg-buildpackage,
# as VERSION ("base": debian/changelog's own, else a changelog entry above
# it), and lintian on it (DIR/lintian.log, DIR/lintian.rc).  Prints why on
# failure.
deb_build() {
	local d=$1
	mkdir -p "$d/natguard"
	if [ -d "$srcdir/.git" ]; then
		git -C "$srcdir" ls-files -z | (cd "$srcdir" &&
		    xargs -0 tar -cf - --no-recursion) | tar -C "$d/natguard" -xf -
	else
		tar -C "$srcdir" --exclude=.git -cf - . | tar -C "$d/natguard" -xf -
	fi
	if [ "$2" != base ]; then
		{ printf 'natguard (%s) unstable; urgency=medium\n\n' "$2"
		  printf '  * A newer build, for the upgrade test.\n\n'
		  printf ' -- natguard authors <natguard@example.org>  %s\n\n' \
		      "$(date -R)"
		  cat "$d/natguard/debian/changelog"; } > "$d/changelog"
		mv "$d/changelog" "$d/natguard/debian/changelog"
	fi
	(cd "$d/natguard" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	    dpkg-buildpackage -us -uc -b) > "$d/build.log" 2>&1 ||
	    { echo "dpkg-buildpackage ($2): $(tail -n 5 "$d/build.log")"
	      return 1; }
	lintian --fail-on error,warning "$d"/natguard_*.changes \
	    > "$d/lintian.log" 2>&1
	echo $? > "$d/lintian.rc"
}

# storage_driver DIR: overlay2 where DIR's file system takes an overlay
# mount (vfs copies a whole image for each container and each layer),
# else vfs, which works on every file system (an overlay root, as in a
# container, takes none); $DOCKER_STORAGE overrides.
storage_driver() {
	local o=$1/ovl-probe
	if [ -n "${DOCKER_STORAGE:-}" ]; then
		echo "$DOCKER_STORAGE"
		return
	fi
	mkdir -p "$o/l" "$o/u" "$o/w" "$o/m"
	if mount -t overlay overlay \
	    -o "lowerdir=$o/l,upperdir=$o/u,workdir=$o/w" "$o/m" 2>/dev/null
	then
		umount "$o/m"
		echo overlay2
	else
		echo vfs
	fi
	rm -rf "$o"
}

# dockerd_launch DIR NETNS ARGS...: a dockerd (storage_driver's) with its
# data, exec root, socket and pidfile in DIR, in the namespace NETNS (""
# for the machine's own), ready when its API answers.  Sets launched_pid;
# prints why and returns 1 when it does not come up within 60 s.
dockerd_launch() {
	local d=$1 ns=$2 n=0
	shift 2
	mkdir -p "$d"
	${ns:+nsenter --net=/run/netns/$ns} "$DOCKERD" --data-root "$d/data" \
	    --exec-root "$d/exec" -H "unix://$d/docker.sock" \
	    --pidfile "$d/dockerd.pid" --storage-driver "$(storage_driver "$d")" \
	    "$@" \
	    >> "$d/dockerd.log" 2>&1 &
	launched_pid=$!
	# dockerd has no readiness signal a test can take but its API.
	until "$DOCKER_CLI" -H "unix://$d/docker.sock" version >/dev/null 2>&1
	do
		kill -0 "$launched_pid" 2>/dev/null || {
			echo "dockerd exited: $(tail -n 3 "$d/dockerd.log")"
			return 1
		}
		n=$((n + 1))
		[ $n -gt 600 ] && { echo "dockerd did not answer in 60 s"; return 1; }
		sleep 0.1
	done
}

# dockerd_start DAEMON_JSON: a private dockerd in $host with that
# configuration.
dockerd_start() {
	dd=$tmp/dockerd
	mkdir -p "$dd"
	cp "$1" "$dd/daemon.json"
	dockerd_launch "$dd" "$host" --config-file "$dd/daemon.json" \
	    > "$tmp/launch.out" || die "$(cat "$tmp/launch.out")"
	dockerd_pid=$launched_pid
}
docker() { "$DOCKER_CLI" -H "unix://$tmp/dockerd/docker.sock" "$@"; }
# systemd_boot IMAGE: a container "sd" of IMAGE with systemd as PID 1
# (--privileged is refused: this machine's bounding set lacks
# CAP_SYS_RESOURCE), sd() to run in it, and the boot waited for: the
# state ("running" or "degraded") in $sd_state.
sd() { docker exec sd "$@"; }
systemd_boot() {
	local n=0
	run docker run -d --name sd --hostname sd --cap-add ALL \
	    --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
	    --tmpfs /run --tmpfs /run/lock \
	    -v /sys/fs/cgroup:/sys/fs/cgroup:ro "$1" /lib/systemd/systemd \
	    > /dev/null
	# is-system-running --wait waits for the boot, once systemd's bus
	# is there: until then it says so at once.
	while :; do
		sd_state=$(sd timeout 120 systemctl is-system-running --wait 2>&1)
		case "$sd_state" in *"connect to bus"*) ;; *) break ;; esac
		n=$((n + 1))
		[ $n -gt 200 ] && break
		sleep 0.1
	done
	case "$sd_state" in
	running|degraded) return 0 ;;
	*) die "systemd did not boot: $sd_state" ;;
	esac
}
dockerd_stop() {
	[ -n "${dockerd_pid:-}" ] || return 0
	docker ps -aq | xargs -r "$DOCKER_CLI" \
	    -H "unix://$tmp/dockerd/docker.sock" rm -f >/dev/null 2>&1
	kill "$dockerd_pid" 2>/dev/null
	wait "$dockerd_pid" 2>/dev/null
	dockerd_pid=
}

# build_image TAR TAG DOCKERFILE:TAG...: `docker build` of Dockerfiles of
# the tree, for real, in order, with the source tree as their context; TAG
# is saved to TAR for `docker load`.  The builds need Debian's mirror
# (their RUN apt-get), which the private namespace has not: a second
# dockerd, in the machine's own namespace with no bridge and no iptables
# rules, builds with --network host, from debian:12 (and debian:12-slim)
# imported from the debootstrap root.  Prints why on failure.
build_image() {
	local out=$1 tag=$2 b=$tmp/build base pid rc=0 f
	shift 2
	base=$(rootfs base) || { echo "$base"; return 1; }
	dockerd_launch "$b" "" --bridge none --iptables=false \
	    --ip6tables=false || return 1
	pid=$launched_pid
	bd() { "$DOCKER_CLI" -H "unix://$b/docker.sock" "$@"; }
	bd import "$base" debian:12 > /dev/null &&
	    bd tag debian:12 debian:12-slim || rc=1
	for f in "$@"; do
		[ $rc -eq 0 ] || break
		bd build --network host -q -f "$srcdir/${f%%:*}" -t "${f#*:}" \
		    "$srcdir" > "$b/build.out" 2>&1 ||
		    { rc=1; echo "docker build -f ${f%%:*}: $(tail -n 5 "$b/build.out")"; }
	done
	[ $rc -eq 0 ] && { bd save -o "$out" "$tag" || rc=1; }
	bd system prune -af > /dev/null 2>&1
	kill $pid
	wait $pid
	return $rc
}

# dms_tree DIR [DEB]: docker-mailserver v14.0.0's tree in DIR as a
# checkout has it (umask 022: Postfix warns about group-writable files),
# patched to build offline; with DEB, conf/docker-mailserver/upstream's
# patch applied as well (its Dockerfile and target/ parts: the release
# tarball has no docs/ or test/) and DEB in target/natguard/.
dms_tree() {
	(umask 022 && mkdir -p "$1" &&
	    tar -C "$1" -xzf "$SHARED/dms/docker-mailserver-14.0.0.tar.gz" &&
	    cd "$1/docker-mailserver-14.0.0" &&
	    patch -s -p1 < "$SHARED/dms/dms-v14-offline.patch") || return 1
	[ -n "${2:-}" ] || return 0
	# No repository above DIR for git apply to find: a plain patch.
	(cd "$1/docker-mailserver-14.0.0" && GIT_CEILING_DIRECTORIES=$1 \
	    git apply --include=Dockerfile --include='target/*' \
	    "$srcdir/conf/docker-mailserver/upstream/enable-natguard.patch" &&
	    mkdir target/natguard && cp "$2" target/natguard/)
}

# dms_images TAG [UPTAG DEB]: docker-mailserver v14.0.0 itself, built from
# $SHARED/dms (its release tarball and the patch that builds it offline)
# as ghcr.io/docker-mailserver/docker-mailserver:14, and
# conf/docker-mailserver/Dockerfile on top of it as TAG; with UPTAG, the
# tree with the upstream patch and DEB (natguard's package) as UPTAG.  Built
# by a dockerd in the machine's own namespace (the builds need Debian's
# mirror) with overlay2 (vfs would copy the 700 MB image once a layer) in
# $tmp/dockerd, the directory dockerd_start then runs the private dockerd
# from: the images are there, no save and load.  docker-mailserver's image
# is cached in $ROOTFS_CACHE by the hash of the tarball and the patch (the
# upstream build, which changes with natguard, is not; it shares the stock
# build's layers when both are built in one run).  Prints why on failure.
dms_images() {
	local tag=$1 uptag=${2:-} deb=${3:-} b=$tmp/dockerd base key cache pid
	local rc=0 dms=ghcr.io/docker-mailserver/docker-mailserver:14
	base=$(rootfs base) || { echo "$base"; return 1; }
	key=$(cat "$SHARED/dms/docker-mailserver-14.0.0.tar.gz" \
	    "$SHARED/dms/dms-v14-offline.patch" | md5sum | cut -c 1-12)
	cache=$ROOTFS_CACHE/dms-14.0.0-$key.tar
	dockerd_launch "$b" "" --bridge none --iptables=false \
	    --ip6tables=false || return 1
	pid=$launched_pid
	bd() { "$DOCKER_CLI" -H "unix://$b/docker.sock" "$@"; }
	# FROM docker.io/debian:12-slim: the debootstrap root, with the
	# updates and security suites the published image has.
	bd import "$base" ng-base:12 > /dev/null &&
	    printf '%s\n' 'FROM ng-base:12' \
	    "RUN printf 'deb http://deb.debian.org/debian bookworm-updates main\\ndeb http://deb.debian.org/debian-security bookworm-security main\\n' >> /etc/apt/sources.list" |
	    bd build -q -t docker.io/debian:12-slim - > /dev/null || rc=1
	if [ $rc -eq 0 ] && [ -s "$cache" ]; then
		bd load -q -i "$cache" > /dev/null || rc=1
	elif [ $rc -eq 0 ]; then
		dms_tree "$tmp/dms-src" ||
		    { echo "the DMS tree did not extract and patch"; rc=1; }
		[ $rc -eq 0 ] && { DOCKER_BUILDKIT=1 bd build --network host \
		    -q -t "$dms" "$tmp/dms-src/docker-mailserver-14.0.0" \
		    > "$b/build.out" 2>&1 || { rc=1; echo "docker build" \
		    "of docker-mailserver: $(tail -n 5 "$b/build.out")"; }; }
		[ $rc -eq 0 ] && { bd save -o "$cache.new" "$dms" &&
		    mv "$cache.new" "$cache" || rc=1; }
		rm -rf "$tmp/dms-src"
	fi
	[ $rc -eq 0 ] && { bd build --network host -q \
	    -f "$srcdir/conf/docker-mailserver/Dockerfile" -t "$tag" \
	    "$srcdir" > "$b/build.out" 2>&1 || { rc=1; echo "docker build" \
	    "-f conf/docker-mailserver/Dockerfile: $(tail -n 5 "$b/build.out")"; }; }
	if [ $rc -eq 0 ] && [ -n "$uptag" ]; then
		dms_tree "$tmp/dms-up" "$deb" || { rc=1; echo "the DMS tree" \
		    "did not take conf/docker-mailserver/upstream's patch"; }
		[ $rc -eq 0 ] && { DOCKER_BUILDKIT=1 bd build --network host \
		    -q -t "$uptag" "$tmp/dms-up/docker-mailserver-14.0.0" \
		    > "$b/build.out" 2>&1 || { rc=1; echo "docker build" \
		    "with the upstream patch: $(tail -n 5 "$b/build.out")"; }; }
		rm -rf "$tmp/dms-up"
	fi
	bd image prune -f > /dev/null 2>&1
	kill $pid
	wait $pid
	return $rc
}

# docker_hosts: the Docker host's namespace and a remote sender's, linked:
# the host 198.51.100.1 and 2001:db8:25::1, the sender .2 and ::2.
docker_hosts() {
	run ip netns add "$host"
	run ip netns add "$rem"
	run ip -n "$host" link set lo up
	run ip -n "$rem" link set lo up
	run ip link add ethr netns "$host" type veth peer name eth0 netns "$rem"
	run ip -n "$host" addr add 198.51.100.1/24 dev ethr
	run ip -n "$host" addr add 2001:db8:25::1/64 dev ethr nodad
	run ip -n "$host" link set ethr up
	run ip -n "$rem" addr add 198.51.100.2/24 dev eth0
	run ip -n "$rem" addr add 2001:db8:25::2/64 dev eth0 nodad
	run ip -n "$rem" link set eth0 up
	run ip -n "$rem" route add default via 198.51.100.1
	run ip -n "$rem" -6 route add default via 2001:db8:25::1
}

# The mail container of the suites (tests/e2e/docker-mail.sh as its entry
# point; lib.sh's main_cf and zone_conf).  A suite may set mail_zone (a
# function printing the dnsmasq zone, zone_conf by default), mail_conf
# (lines added to natguard.conf) and mail_master (lines added to
# master.cf).
#
# mail_dir NAME NAT_ACTION: the container's /ng, with Postfix's and
# natguard's configuration and the zone; mail and log go there too.
mail_dir() {
	local d=$tmp/$1
	mkdir -p "$d/mail"
	chown 65534:65534 "$d/mail"
	${mail_zone:-zone_conf} > "$d/zone.conf"
	main_cf /var/spool/postfix /var/lib/postfix /ng/maillog /ng/mail \
	    > "$d/main.cf"
	cp "$srcdir/tests/e2e/master.cf" "$d/master.cf"
	[ -n "${mail_master:-}" ] && echo "$mail_master" >> "$d/master.cf"
	printf 'listen = inet:127.0.0.1:10041\nlog = stderr\ngateways = auto
nat_action = %s\n' "$2" > "$d/natguard.conf"
	[ -n "${mail_conf:-}" ] && echo "$mail_conf" >> "$d/natguard.conf"
	echo "nameserver 127.0.0.1" > "$d/resolv.conf"
	cp "$dd/daemon.json" "$d/daemon.json"
	rm -f "$d/ready"
	mkfifo "$d/ready"
}
# The bind mounts of a mail container, for docker run and compose.
mail_volumes() {	# dir
	echo "$NATGUARD:/usr/local/sbin/natguard:ro"
	echo "$srcdir/tests/e2e/docker-mail.sh:/entry.sh:ro"
	echo "$1:/ng"
	echo "$1/resolv.conf:/etc/resolv.conf:ro"
}
# Wait for the container's "ready" (tests/e2e/docker-mail.sh).
mail_ready() {	# name
	local msg
	msg=$(timeout 120 head -n 1 "$tmp/$1/ready")
	[ "$msg" = ready ] || die "container $1: ${msg:-no word in 120 s}:
$(docker logs "$1" 2>&1 | tail -n 5)"
}
mail_run() {	# name nat_action docker-run-options...
	local n=$1 a=$2 v args=""
	shift 2
	mail_dir "$n" "$a"
	for v in $(mail_volumes "$tmp/$n"); do args="$args -v $v"; done
	# shellcheck disable=SC2086
	run docker run -d --name "$n" --hostname mx $args $asan "$@" \
	    natguard-test/mail sh /entry.sh >/dev/null
	mail_ready "$n"
}
# Point the assertion helpers at one container's files.
use() { log=$tmp/$1/maillog; mail=$tmp/$1/mail; nglog=$tmp/$1/natguard.log; }
# compose DIR ARGS...: docker-compose on DIR/compose.yaml, project "ng".
compose() {
	local d=$1
	shift
	DOCKER_HOST=unix://$dd/docker.sock docker-compose -p ng \
	    -f "$d/compose.yaml" "$@" > "$d/compose.out" 2>&1 ||
	    die "docker-compose $*: $(tail -n 5 "$d/compose.out")"
}

# docker_cleanup: everything the suite started: dockerd and the mounts it
# left under $tmp, the namespaces and what runs in them, $tmp.
docker_cleanup() {
	local m ns
	dockerd_stop
	for m in $(awk -v t="$tmp" 'index($2, t) == 1 { print $2 }' \
	    /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	for ns in ${host:-} ${rem:-}; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf --one-file-system "$tmp"
}
