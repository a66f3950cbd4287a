# Sourced by the tests that build hosts of their own with ip netns.
# netns_check NAME: exit 77 (SKIP, with the reason) where this machine
# cannot give the test a network namespace: not root, no ip, or a
# container without CAP_SYS_ADMIN/CAP_NET_ADMIN (a plain `docker run`).
netns_check() {
	_n=$1
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: $_n: needs root for ip netns"
		exit 77
	fi
	if ! command -v ip >/dev/null 2>&1; then
		echo "SKIP: $_n: ip is not installed (apt-get install iproute2)"
		exit 77
	fi
	_probe=ngprobe$$
	if ! _err=$(ip netns add "$_probe" 2>&1) ||
	    ! _err=$(ip netns exec "$_probe" ip link set lo up 2>&1); then
		ip netns del "$_probe" 2>/dev/null
		echo "SKIP: $_n: this machine gives no network namespace" \
		    "(a chroot, or a container without CAP_SYS_ADMIN and" \
		    "CAP_NET_ADMIN?):" \
		    "$_err"
		exit 77
	fi
	ip netns del "$_probe"
}

# netns_sysctl NS KEY VALUE: a sysctl inside NS, without procps.  In a
# container /proc/sys is mounted read-only: then a proc of its own, in the
# mount namespace `ip netns exec` makes (so nothing outside sees it).
netns_sysctl() {
	ip netns exec "$1" sh -c "p=/proc/sys/$(echo "$2" | tr . /)
	    echo $3 > \$p 2>/dev/null ||
	    { mount -t proc proc /proc && echo $3 > \$p; }"
}
