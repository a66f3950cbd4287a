# Sourced by the real-Docker suites: a Debian 12 root made with debootstrap
# (no image registry here) and imported, and a private dockerd in a network
# namespace of the test's own, so that no Docker already on the machine is
# touched and nothing the containers do leaves the namespace.
#
# The suite sets: name, tmp (on a disk: vfs copies whole images), host (the
# Docker host's namespace, made), srcdir; it calls docker_cleanup from its
# EXIT trap.

DOCKERD=/usr/sbin/dockerd
DOCKER_CLI=/usr/bin/docker	# Debian's client, of the daemon's version
ROOTFS_CACHE=${NG_ROOTFS_CACHE:-/var/cache/natguard-tests}

# docker_check: SKIP (exit 77) with the reason where this machine cannot run
# the suite.
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
		chroot "$dir/root" sh -c "DEBIAN_FRONTEND=noninteractive \
		    apt-get install -y -q --no-install-recommends $* &&
		    apt-get clean" >> "$dir/log" 2>&1
		local rc=$?
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
	echo "libc-ares2 libyaml-0-2"
	ldd "$NATGUARD" | awk '/lib(asan|ubsan)/ { print $1 }' |
	    sed -E 's/^libasan\.so\.([0-9]+)$/libasan\1/;
	        s/^libubsan\.so\.([0-9]+)$/libubsan\1/'
}

# dockerd_start DAEMON_JSON: a private dockerd in $host with that
# configuration; ready when its API answers.
dockerd_start() {
	dd=$tmp/dockerd
	mkdir -p "$dd"
	cp "$1" "$dd/daemon.json"
	nsenter --net="/run/netns/$host" "$DOCKERD" --data-root "$dd/data" \
	    --exec-root "$dd/exec" -H "unix://$dd/docker.sock" \
	    --pidfile "$dd/dockerd.pid" --config-file "$dd/daemon.json" \
	    --storage-driver vfs >> "$dd/dockerd.log" 2>&1 &
	dockerd_pid=$!
	# dockerd has no readiness signal a test can take but its API.
	local n=0
	until docker version >/dev/null 2>&1; do
		kill -0 "$dockerd_pid" 2>/dev/null ||
		    die "dockerd exited: $(tail -n 3 "$dd/dockerd.log")"
		n=$((n + 1))
		[ $n -gt 600 ] && die "dockerd did not answer in 60 s"
		sleep 0.1
	done
}
docker() { "$DOCKER_CLI" -H "unix://$tmp/dockerd/docker.sock" "$@"; }
dockerd_stop() {
	[ -n "${dockerd_pid:-}" ] || return 0
	docker ps -aq | xargs -r "$DOCKER_CLI" \
	    -H "unix://$tmp/dockerd/docker.sock" rm -f >/dev/null 2>&1
	kill "$dockerd_pid" 2>/dev/null
	wait "$dockerd_pid" 2>/dev/null
	dockerd_pid=
}

# build_image DOCKERFILE TAG TAR: `docker build` of a Dockerfile of the tree,
# for real, with the source tree as its context; the image is saved to
# TAR for `docker load`.  The build needs Debian's mirror (its RUN
# apt-get), which the private namespace has not: a second dockerd, in the
# machine's own namespace with no bridge and no iptables rules, builds with
# --network host, from debian:12 imported from the debootstrap root.
# Prints why on failure.
build_image() {
	local b=$tmp/build base pid n=0 rc
	base=$(rootfs base) || { echo "$base"; return 1; }
	mkdir -p "$b"
	"$DOCKERD" --data-root "$b/data" --exec-root "$b/exec" \
	    -H "unix://$b/docker.sock" --pidfile "$b/dockerd.pid" \
	    --bridge none --iptables=false --ip6tables=false \
	    --storage-driver vfs > "$b/dockerd.log" 2>&1 &
	pid=$!
	until "$DOCKER_CLI" -H "unix://$b/docker.sock" version >/dev/null 2>&1
	do
		kill -0 $pid 2>/dev/null || {
			echo "build dockerd exited: $(tail -n 2 "$b/dockerd.log")"
			return 1
		}
		n=$((n + 1)); [ $n -gt 600 ] && { echo "no build dockerd"; return 1; }
		sleep 0.1
	done
	"$DOCKER_CLI" -H "unix://$b/docker.sock" import "$base" debian:12 \
	    > /dev/null &&
	"$DOCKER_CLI" -H "unix://$b/docker.sock" build --network host -q \
	    -f "$srcdir/$1" -t "$2" "$srcdir" > "$b/build.out" 2>&1 &&
	"$DOCKER_CLI" -H "unix://$b/docker.sock" save -o "$3" "$2"
	rc=$?
	"$DOCKER_CLI" -H "unix://$b/docker.sock" system prune -af \
	    > /dev/null 2>&1
	kill $pid
	wait $pid
	[ $rc -eq 0 ] || echo "docker build -f $1: $(tail -n 5 "$b/build.out")"
	return $rc
}

# docker_cleanup: everything dockerd left: its mounts under $tmp.
docker_cleanup() {
	local m
	dockerd_stop
	for m in $(awk -v t="$tmp" 'index($2, t) == 1 { print $2 }' \
	    /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null
	done
}
