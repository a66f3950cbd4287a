#!/bin/bash
# End to end under real Docker: a private dockerd (Debian's docker.io) in a
# network namespace of the test's own is the Docker host; a mail container
# runs Postfix, natguard (gateways = auto) and the test's DNS zone, and
# publishes port 25; a remote sender reaches the host over IPv4 and IPv6.
#
#   remote ns             host ns (dockerd)              mail container
#   swaks                 198.51.100.1, 2001:db8:25::1   Postfix :25
#   198.51.100.2  -----   port 25 published:             natguard :10041
#   2001:db8:25::2          IPv4: iptables DNAT          dnsmasq 127.0.0.1
#                           IPv6: docker-proxy, or
#                           ip6tables DNAT after the fix
#
# Scenarios: Docker's defaults on the default bridge; a user-defined
# network, the container on two networks, with docker-compose; the fix
# natguard's explanation gives (ip6tables and an IPv6 network); the
# userland proxy off; natguard doctor inside the container against the
# live daemon.json and compose file, before and after the fix; natguard's
# own image (conf/docker/Dockerfile, built for real) as a sidecar in the
# mail container's namespace, started with conf/docker/compose.yaml's
# natguard service.
set -u

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
. "$srcdir/tests/e2e/docker-lib.sh"
. "$srcdir/tests/e2e/lib.sh"
docker_suite docker-e2e docker sender
: "${NATGUARD:?NATGUARD must name the binary}"
host=ngdh$$ rem=ngdr$$

# --- the image: Debian 12 with Postfix, dnsmasq and natguard's libraries;
# natguard itself is the binary under test, bind-mounted.
# shellcheck disable=SC2086
tar=$(rootfs mail postfix dnsmasq-base iproute2 $(natguard_libs)) ||
    skip "cannot build the Debian 12 root: $tar"

# LeakSanitizer cannot stop the world in a container without CAP_SYS_PTRACE;
# leaks are the other suites' concern.  Reports of any other kind are
# looked for in natguard's logs at the end.
asan="-e ASAN_OPTIONS=detect_leaks=0"

docker_hosts
echo '{}' > "$tmp/defaults.json"
dockerd_start "$tmp/defaults.json"
run docker import "$tar" natguard-test/mail >/dev/null
echo "$name: namespaces $host $rem, $(docker version -f \
    'dockerd {{.Server.Version}}, API {{.Server.APIVersion}}')"

gateway_of() {	# container network: its IPv4 gateway as Docker set it
	docker inspect -f "{{(index .NetworkSettings.Networks \"$2\").Gateway}}" \
	    "$1"
}

v4=198.51.100.1 v6=2001:db8:25::1	# the host's published port 25

# --- 1: Docker's defaults, the default bridge -------------------------------
echo "--- 1: Docker's defaults (userland proxy on, no IPv6), default bridge"
mail_run m1 defer -p 25:25
use m1
gw=$(gateway_of m1 bridge)
send 1-v6 $v6 user@pass.test postmaster@example.test
send 1-v4-pass $v4 user@pass.test postmaster@example.test
send 1-v4-fail $v4 user@fail.test postmaster@example.test
has "1: IPv6 client through docker-proxy: 450 4.3.5" \
    '^<\*\* +450 4\.3\.5 .*Client address hidden by NAT' "$tmp/1-v6.swaks"
has "1: Postfix saw the bridge gateway $gw" \
    "NOQUEUE: reject: RCPT from [^ ]*\\[$gw\\]: 450 4\\.3\\.5" "$log"
has "1: natguard named the gateway, default-route" \
    "action=DEFER reason=nat-gateway client=$gw gateway_source=default-route .*from=<user@pass.test>" \
    "$nglog"
not_delivered "1: IPv6 client" 1-v6
delivered "1: IPv4 client through DNAT, SPF pass" "$tmp/1-v4-pass.swaks" \
    1-v4-pass '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
has "1: IPv4 client keeps its address: forged sender 550 5.7.23" \
    '^<\*\* +550 5\.7\.23 .* designate 198\.51\.100\.2 as permitted' \
    "$tmp/1-v4-fail.swaks"
has "1: natguard's SPF decision for the real IPv4 client" \
    'action=REJECT reason=spf-fail client=198\.51\.100\.2 .*from=<user@fail.test>' \
    "$nglog"
docker rm -f m1 >/dev/null

# compose_file DIR NETWORKS-YAML SERVICE-NETWORKS: the mail service as a
# docker-compose user writes it, with this test's bind mounts.
compose_file() {
	local v
	{
		echo "services:"
		echo "  mailserver:"
		echo "    image: natguard-test/mail"
		echo "    hostname: mx"
		echo "    command: sh /entry.sh"
		echo "    environment:"
		echo "      - ASAN_OPTIONS=detect_leaks=0"
		echo "    ports:"
		echo '      - "25:25"'
		echo "    volumes:"
		for v in $(mail_volumes "$1"); do echo "      - $v"; done
		echo "    networks:"
		printf '%s\n' "$3"
		echo "networks:"
		printf '%s\n' "$2"
	} > "$1/compose.yaml"
}
# natguard doctor inside the container, against the live daemon.json and
# compose file (both in /ng) and the container's Postfix.
doctor() {	# container, output file
	docker exec $asan "$1" natguard doctor -c /ng/natguard.conf --json \
	    --daemon-json /ng/daemon.json --compose /ng/compose.yaml \
	    > "$2" 2>"$2.err"
	echo $? > "$2.rc"
	jq -r '.checks[] | "\(.status) \(.name): \(.evidence)"' "$2" > "$2.txt"
}
# The checks of a doctor --json output with the given status, as "name".
checks() {	# file status
	jq -r --arg s "$2" '.checks[] | select(.status == $s) | .name' "$1" |
	    tr '\n' ' '
}

# --- 2: a user-defined network, the container on two, with docker-compose --
echo "--- 2: user-defined networks (docker-compose), Docker's defaults"
mail_dir m2 defer
compose_file "$tmp/m2" "  mail:
    ipam:
      config:
        - subnet: 172.20.0.0/24
  backend:
    ipam:
      config:
        - subnet: 172.21.0.0/24" "      - mail
      - backend"
compose "$tmp/m2" up -d
mail_ready m2
use m2
c2=$(docker ps -q -f label=com.docker.compose.service=mailserver)
gw_mail=$(gateway_of "$c2" ng_mail) gw_back=$(gateway_of "$c2" ng_backend)
docker exec $asan "$c2" natguard gateways --json > "$tmp/2-gateways.json"
has "2: natguard sees the mail network's gateway $gw_mail" \
    "\"$gw_mail\"" "$tmp/2-gateways.json"
has "2: natguard sees the second network's gateway $gw_back" \
    "\"$gw_back\"" "$tmp/2-gateways.json"
send 2-v6 $v6 user@pass.test postmaster@example.test
send 2-v4 $v4 user@pass.test postmaster@example.test
has "2: IPv6 client through docker-proxy: 450 4.3.5" \
    '^<\*\* +450 4\.3\.5 .*Client address hidden by NAT' "$tmp/2-v6.swaks"
has "2: Postfix saw a gateway of the container's networks" \
    "NOQUEUE: reject: RCPT from [^ ]*\\[($gw_mail|$gw_back)\\]: 450 4\\.3\\.5" \
    "$log"
has "2: natguard named that gateway and how it knew" \
    "action=DEFER reason=nat-gateway client=($gw_mail|$gw_back) gateway_source=(default-route|subnet-gateway) " \
    "$nglog"
delivered "2: IPv4 client through DNAT, SPF pass" "$tmp/2-v4.swaks" 2-v4 \
    '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
doctor "$c2" "$tmp/2-doctor.json"
has "2: doctor in the container fails before the fix (exit 1)" '^1$' \
    "$tmp/2-doctor.json.rc"
has "2: doctor: the compose file's mail service has no IPv6 network" \
    '^fail compose-mail-service: ' "$tmp/2-doctor.json.txt"
has "2: doctor: ip6tables is not on" '^warn docker-ip6tables: ' \
    "$tmp/2-doctor.json.txt"
echo "    doctor before the fix: FAIL $(checks "$tmp/2-doctor.json" fail)"
echo "    doctor before the fix: WARN $(checks "$tmp/2-doctor.json" warn)"
compose "$tmp/m2" down

# --- 3: the fix natguard's explanation gives --------------------------------
echo "--- 3: the fix: \"ip6tables\": true and an IPv6 network"
dockerd_stop
cat > "$tmp/fixed.json" <<'JSON'
{
  "ipv6": true,
  "fixed-cidr-v6": "fd00:dead:beef::/64",
  "ip6tables": true,
  "experimental": true
}
JSON
dockerd_start "$tmp/fixed.json"
mail_dir m3 defer
compose_file "$tmp/m3" "  mail:
    enable_ipv6: true
    ipam:
      config:
        - subnet: 172.20.0.0/24
        - subnet: fd00:cafe:face::/64" "      - mail"
compose "$tmp/m3" up -d
mail_ready m3
use m3
c3=$(docker ps -q -f label=com.docker.compose.service=mailserver)
send 3-v6-pass $v6 user@pass.test postmaster@example.test
send 3-v6-fail $v6 user@fail.test postmaster@example.test
send 3-v4-pass $v4 user@pass.test postmaster@example.test
delivered "3: IPv6 client keeps its address, SPF pass" "$tmp/3-v6-pass.swaks" \
    3-v6-pass '^Received-SPF: pass .*client-ip=2001:db8:25::2'
has "3: Postfix saw the real IPv6 client" \
    'client=[^ ]*\[2001:db8:25::2\]' "$log"
has "3: forged IPv6 sender: 550 5.7.23 naming the real client" \
    '^<\*\* +550 5\.7\.23 .* designate 2001:db8:25::2 as permitted' \
    "$tmp/3-v6-fail.swaks"
delivered "3: IPv4 client, SPF pass" "$tmp/3-v4-pass.swaks" 3-v4-pass \
    '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
hasnt "3: no NAT decision at all" 'reason=nat-gateway' "$nglog"
doctor "$c3" "$tmp/3-doctor.json"
has "3: doctor in the container passes after the fix (exit 0)" '^0$' \
    "$tmp/3-doctor.json.rc"
if [ -z "$(checks "$tmp/3-doctor.json" fail)$(jq -r '.checks[] |
    select(.status == "warn") | .name | select(test("^(docker|compose)"))' \
    "$tmp/3-doctor.json")" ]; then
	ok "3: doctor: no docker or compose check warns or fails"
else
	bad "3: doctor: no docker or compose check warns or fails" \
	    "all OK" "$tmp/3-doctor.json"
fi
echo "    doctor after the fix: WARN $(checks "$tmp/3-doctor.json" warn)"
compose "$tmp/m3" down

# --- 4: the userland proxy off ----------------------------------------------
echo "--- 4: \"userland-proxy\": false (no IPv6), default bridge"
dockerd_stop
echo '{ "userland-proxy": false }' > "$tmp/noproxy.json"
dockerd_start "$tmp/noproxy.json"
mail_run m4 defer -p 25:25
use m4
gw=$(gateway_of m4 bridge)
send 4-v4 $v4 user@pass.test postmaster@example.test
send 4-v6 $v6 user@pass.test postmaster@example.test
delivered "4: IPv4 client through DNAT, SPF pass" "$tmp/4-v4.swaks" 4-v4 \
    '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
has "4: IPv6 client: nothing listens for it, the connection is refused" \
    'Connection refused|connection refused' "$tmp/4-v6.swaks"
hasnt "4: Postfix saw no gateway client" "\\[$gw\\]" "$log"
hasnt "4: natguard made no NAT decision" 'reason=nat-gateway' "$nglog"
docker rm -f m4 >/dev/null

# --- 5: natguard's own image as a sidecar ------------------------------------
echo "--- 5: natguard's image (conf/docker/Dockerfile) as a sidecar, compose"
dockerd_stop
dockerd_start "$tmp/defaults.json"
if why=$(build_image "$tmp/natguard-image.tar" natguard-test/natguard \
    conf/docker/Dockerfile:natguard-test/natguard); then
	run docker load -q -i "$tmp/natguard-image.tar" > /dev/null
	mail_dir m5 defer
	compose_file "$tmp/m5" "  mail:
    ipam:
      config:
        - subnet: 172.20.0.0/24" "      - mail"
	# The sidecar's configuration: the image's, with the test's DNS
	# server (the mail container's dnsmasq, on the shared loopback).
	{
		grep -v '^nat_action' "$srcdir/conf/docker/natguard.conf"
		echo "nat_action = defer"
		echo "dns_servers = 127.0.0.1"
	} > "$tmp/m5/sidecar.conf"
	# The natguard service exactly as conf/docker/compose.yaml ships it,
	# but for the image's tag, the configuration and a quicker health
	# check; the mail service is the test's, told to leave natguard out.
	/usr/bin/python3 - "$srcdir/conf/docker/compose.yaml" \
	    "$tmp/m5/compose.yaml" "$tmp/m5/sidecar.conf" <<'PY' ||
import sys, yaml
shipped, test, conf = sys.argv[1:]
ng = yaml.safe_load(open(shipped))["services"]["natguard"]
c = yaml.safe_load(open(test))
ng.pop("build")
ng["image"] = "natguard-test/natguard"
ng["volumes"] = [conf + ":/etc/natguard/natguard.conf:ro"]
ng["healthcheck"] = {"interval": "1s", "timeout": "5s"}
c["services"]["natguard"] = ng
c["services"]["mailserver"]["environment"] = ["NG_SIDECAR=1"]
yaml.safe_dump(c, open(test, "w"))
PY
	    die "compose file for the sidecar"
	compose "$tmp/m5" up -d
	mail_ready m5
	use m5
	c5=$(docker ps -q -f label=com.docker.compose.service=mailserver)
	s5=$(docker ps -q -f label=com.docker.compose.service=natguard)
	gw=$(gateway_of "$c5" ng_mail)
	n=0
	until [ "$(docker inspect -f '{{.State.Health.Status}}' "$s5")" = \
	    healthy ] || [ $n -gt 600 ]; do
		n=$((n + 1))
		sleep 0.1
	done
	docker inspect -f 'health={{.State.Health.Status}}
network={{.HostConfig.NetworkMode}}' "$s5" > "$tmp/5-inspect"
	has "5: the image's HEALTHCHECK (/healthz) says healthy" \
	    '^health=healthy$' "$tmp/5-inspect"
	has "5: the sidecar is in the mail container's network namespace" \
	    "^network=container:$c5" "$tmp/5-inspect"
	docker exec "$s5" sh -c 'id -un; cat /proc/1/status' > "$tmp/5-id"
	has "5: natguard runs as the image's user natguard" '^natguard$' \
	    "$tmp/5-id"
	has "5: with no capabilities" '^CapEff:[[:space:]]+0+$' "$tmp/5-id"
	send 5-v6 $v6 user@pass.test postmaster@example.test
	send 5-v4 $v4 user@pass.test postmaster@example.test
	docker logs "$s5" > "$nglog" 2>&1
	has "5: the sidecar sees the mail container's default route" \
	    "gateways: .*$gw \\(default-route on eth0\\)" "$nglog"
	has "5: IPv6 client through docker-proxy: 450 4.3.5 from the sidecar" \
	    '^<\*\* +450 4\.3\.5 .*Client address hidden by NAT' \
	    "$tmp/5-v6.swaks"
	has "5: the sidecar's decision names the gateway" \
	    "action=DEFER reason=nat-gateway client=$gw gateway_source=default-route " \
	    "$nglog"
	delivered "5: IPv4 client, SPF pass, through the sidecar" \
	    "$tmp/5-v4.swaks" 5-v4 \
	    '^Received-SPF: pass .*client-ip=198\.51\.100\.2'
	compose "$tmp/m5" down
else
	echo "SKIP: $name: 5: natguard's image cannot be built here: $why"
fi

# A sanitizer build reports into natguard's log, inside the containers.
if grep -l -E 'Sanitizer|runtime error:' "$tmp"/m*/natguard.log \
    "$tmp"/*.err 2>/dev/null; then
	bad "no sanitizer report from natguard in the containers" "none" \
	    "$(grep -h -E -A5 'Sanitizer|runtime error:' "$tmp"/m*/natguard.log)"
fi

echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
