/*
 * Copyright (c) 2026 The natguard authors
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

#include "config.h"

#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>

#include "natguard.h"

/*
 * The kinds of hider: what stood between the real SMTP client and Postfix,
 * how natguard tells which, what it did, and the fix.  A new kind is one
 * row here and one case in hider_kind_of() or hider_kind_guess(); the
 * explanations (decide.c), doctor and natguard.conf(5) read the rows.
 * README "Container engines" and "Every hider" have the measurements
 * behind each text.
 */

/* Where remote clients keep their address, the host's own programs don't. */
#define FIX_LOCAL	"if these are the host's own programs, let them " \
	"authenticate (SASL) or list the address in skip_addresses"
#define FIX_PROXY_PROTOCOL "PROXY protocol on both ends: HAProxy " \
	"\"send-proxy\" on the server line, Traefik \"proxyProtocol\" " \
	"(version 1 or 2) on the TCP service, nginx \"proxy_protocol on\" " \
	"in the stream server, and Postfix smtpd_upstream_proxy_protocol = " \
	"haproxy (postscreen_upstream_proxy_protocol = haproxy where " \
	"postscreen listens)"

static const struct hider_kind_row rows[HK_COUNT] = {
	[HK_DOCKER] = { "docker",
	    "a default-route, bridge-interface, subnet-gateway or static "
	    "gateway where no other engine is seen",
	    "Docker's userland proxy or IPv6-to-IPv4 NAT hid the real SMTP "
	    "client address",
	    "IPv6 all the way to the container (/etc/docker/daemon.json "
	    "\"ip6tables\": true, \"experimental\": true; a compose network "
	    "with enable_ipv6: true and an IPv6 subnet) or "
	    "\"userland-proxy\": false" },
	[HK_DOCKER_ROOTLESS] = { "docker-rootless",
	    "a gateway under rootless Docker (uid 0 mapped to a user)",
	    "rootless Docker's port driver (rootlesskit's builtin, the "
	    "default) hands every connection to a published port over from "
	    "the network's gateway",
	    "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns and "
	    "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns for "
	    "dockerd-rootless.sh (systemctl --user edit docker), which keeps "
	    "IPv4 clients' addresses, or rootful Docker with IPv6 all the "
	    "way to the container" },
	[HK_DOCKER_SLIRP] = { "docker-rootless-slirp4netns",
	    "the slirp4netns source under rootless Docker",
	    "rootless Docker's slirp4netns network hands connections from "
	    "the host itself over from its gateway", FIX_LOCAL },
	[HK_PODMAN_ROOTLESS] = { "podman-rootless",
	    "the own-address source under rootless Podman",
	    "rootless Podman's port forwarder (rootlessport, the default) "
	    "hands every connection to a published port over from the "
	    "container's own address",
	    "podman run --network slirp4netns:port_handler=slirp4netns, "
	    "which keeps IPv4 clients' addresses (IPv6 is not forwarded), "
	    "--network pasta (Podman 4.4 or later), or rootful Podman" },
	[HK_PODMAN_SLIRP] = { "podman-rootless-gateway",
	    "another gateway under rootless Podman",
	    "rootless Podman hands connections from the host itself over "
	    "from the network's gateway (slirp4netns's, or a bridge "
	    "network's)", FIX_LOCAL },
	[HK_PODMAN] = { "podman",
	    "a gateway under rootful Podman",
	    "Podman hands connections from the host itself over from the "
	    "network's gateway, where remote IPv4 clients keep their address "
	    "through netavark's DNAT", FIX_LOCAL },
	[HK_ROOTLESS_LOOPBACK] = { "rootless-loopback",
	    "loopback under a rootless engine, skip_addresses left at its "
	    "default",
	    "the engine's port forwarders can hand remote clients over from "
	    "loopback",
	    "the engine's own fix (see docker-rootless and podman-rootless); "
	    "or, if only programs of this host connect over loopback, list "
	    "it in skip_addresses" },
	[HK_PROXY] = { "tcp-proxy",
	    "a private address on one of this host's own subnets, learned "
	    "from traffic or failing SPF",
	    "a TCP proxy on this host's network (HAProxy, Traefik, nginx "
	    "stream, a sidecar) without PROXY protocol hands every "
	    "connection over from its own address",
	    FIX_PROXY_PROTOCOL "; or publish port 25 from the mail "
	    "container itself", 1 },
	[HK_SWARM] = { "swarm-routing-mesh",
	    "a private address on a local subnet inside Swarm's ingress "
	    "ranges (10.0.0.0/24, 10.255.0.0/16)",
	    "Docker Swarm's routing mesh hands every connection to a "
	    "published port over from the ingress network",
	    "publish the SMTP ports in host mode (ports: - target: 25, "
	    "published: 25, mode: host), or a proxy with PROXY protocol in "
	    "front", 1 },
	[HK_KUBERNETES] = { "kubernetes",
	    "natguard runs in a Kubernetes pod (KUBERNETES_SERVICE_HOST, "
	    "the service-account mount)",
	    "kube-proxy source-NATs connections to a Service with "
	    "externalTrafficPolicy: Cluster (the default) to a node's "
	    "address",
	    "externalTrafficPolicy: Local on the Service (LoadBalancer or "
	    "NodePort), or PROXY protocol at the load balancer with Postfix "
	    "smtpd_upstream_proxy_protocol = haproxy", 1 },
	[HK_ROUTER] = { "nat-router",
	    "a private address on none of this host's subnets",
	    "NAT beyond this host (a router's port forward with masquerading "
	    "or hairpin NAT, an SNAT rule) hands connections over from a "
	    "private address",
	    "forward the port without masquerading (DNAT only) and keep "
	    "hairpin NAT for your own LAN; if the address is a host of your "
	    "own network that sends mail, list it in mynetworks or "
	    "spf_whitelist", 1 },
	[HK_SAME_HOST] = { "same-host",
	    "loopback or an address of this host's own interfaces, learned "
	    "from traffic or failing SPF",
	    "a tunnel or proxy on the mail host itself (frp, rathole, "
	    "cloudflared, Tailscale serve or Funnel, ssh -R, stunnel, socat, "
	    "HAProxy, nginx stream, Traefik, Caddy) hands every connection "
	    "over from loopback or the host's own address: every client is "
	    "hidden, and one that Postfix trusts (loopback is in its "
	    "default mynetworks) is relayed for",
	    FIX_PROXY_PROTOCOL " on the port the tunnel or proxy reaches "
	    "(frp: proxyProtocolVersion = \"v2\"; Caddy layer4: "
	    "proxy_protocol); rathole, cloudflared, Tailscale Funnel and "
	    "ssh -R cannot send it and hide the client by design: put a "
	    "relay that speaks PROXY protocol in their place, and take "
	    "loopback out of mynetworks while they carry port 25; if these "
	    "are your own programs (a content filter, webmail), say so with "
	    "spf_whitelist", 1 },
	[HK_VPN_RELAY] = { "vpn-relay",
	    "a private address reached over a tunnel interface of this host "
	    "(WireGuard, Tailscale, tun: the kernel's link kind, else the "
	    "interface's name)",
	    "a VPS forwards port 25 over a VPN (WireGuard, Tailscale) with "
	    "SNAT, so every client arrives from the VPS's tunnel address",
	    "DNAT without SNAT on the VPS, with a route back over the tunnel "
	    "on this side (policy routing by the tunnel's source, so that the "
	    "replies to Internet clients go back through the VPS), or PROXY "
	    "protocol from the VPS (HAProxy send-proxy, nginx proxy_protocol "
	    "on) with Postfix smtpd_upstream_proxy_protocol = haproxy", 1 },
};

const struct hider_kind_row *
hider_kind_row(enum hider_kind k)
{
	return (&rows[k]);
}

/* Docker Swarm's default ingress network, and the one its docs suggest. */
static int
in_swarm_ingress(const struct addr *a)
{
	return (a->family == AF_INET && a->bytes[0] == 10 &&
	    ((a->bytes[1] == 0 && a->bytes[2] == 0) || a->bytes[1] == 255));
}

/*
 * A private client whose SPF fails, or a hider learned from traffic:
 * which hider the address points to.
 */
enum hider_kind
hider_kind_guess(const struct gwset *gs, const struct addr *a)
{
	const struct engine_info *e = gwset_engine(gs);

	if (addr_same_host(gs, a))
		return (HK_SAME_HOST);
	if (gwset_tunnel(gs, a))
		return (HK_VPN_RELAY);
	if (e != NULL && e->kubernetes)
		return (HK_KUBERNETES);
	if (!gwset_local(gs, a))
		return (HK_ROUTER);
	if (in_swarm_ingress(a))
		return (HK_SWARM);
	return (HK_PROXY);
}

enum hider_kind
hider_kind_of(const struct gwset *gs, const struct gateway *gw)
{
	const struct engine_info *e = gwset_engine(gs);

	if (gw->source == GW_TRAFFIC)
		return (hider_kind_guess(gs, &gw->net.addr));
	if (gw->source == GW_LOOPBACK)
		return (HK_ROOTLESS_LOOPBACK);
	switch (e != NULL ? e->kind : ENGINE_NONE) {
	case ENGINE_DOCKER_ROOTLESS:
		return (gw->source == GW_SLIRP ? HK_DOCKER_SLIRP :
		    HK_DOCKER_ROOTLESS);
	case ENGINE_PODMAN_ROOTLESS:
		return (gw->source == GW_OWN_ADDRESS ? HK_PODMAN_ROOTLESS :
		    HK_PODMAN_SLIRP);
	case ENGINE_PODMAN:
		return (HK_PODMAN);
	default:
		break;
	}
	/* In a pod, the gateway is where kube-proxy's SNAT comes from. */
	if (e != NULL && e->kubernetes)
		return (HK_KUBERNETES);
	return (HK_DOCKER);
}

/*
 * The programs that hide clients on the mail host itself, a row each: the
 * name the kernel gives the process (/proc/PID/comm), what it is, and the
 * fix.  sockdiag.c finds the one holding the other end of Postfix's
 * connections from loopback, or a public SMTP port; doctor names it with
 * its row.  Where a tool cannot send PROXY protocol it hides the client by
 * design, and the row says what to put in its place.
 */
#define FIX_POSTFIX	"; on Postfix's side, a second smtpd for the " \
	"port it reaches with smtpd_upstream_proxy_protocol = haproxy " \
	"(postscreen_upstream_proxy_protocol = haproxy where postscreen " \
	"holds port 25)"
#define NO_PROXY_PROTOCOL " cannot send PROXY protocol: it hides the " \
	"client by design; relay port 25 with a proxy that speaks it " \
	"(HAProxy send-proxy, frp with proxyProtocolVersion) in its place, " \
	"and take loopback out of mynetworks while it carries port 25"

static const struct hider_program_row programs[] = {
	{ "frpc", "frp's client (a reverse tunnel from a VPS)",
	    "transport.proxyProtocolVersion = \"v2\" on the proxy in "
	    "frpc.toml (proxy_protocol_version = v2 in older INI files)"
	    FIX_POSTFIX },
	{ "frps", "frp's server (a reverse tunnel's public end)",
	    "transport.proxyProtocolVersion = \"v2\" on the proxy in the "
	    "client's frpc.toml" FIX_POSTFIX },
	{ "rathole", "rathole (a reverse tunnel from a VPS)",
	    "rathole" NO_PROXY_PROTOCOL },
	{ "cloudflared", "Cloudflare Tunnel (cloudflared)",
	    "a Cloudflare Tunnel" NO_PROXY_PROTOCOL "; or receive mail on a "
	    "public address directly" },
	{ "tailscaled", "Tailscale serve or Funnel (tailscaled)",
	    "Tailscale serve and Funnel" NO_PROXY_PROTOCOL "; or route the "
	    "VPS's port 25 over the tailnet with DNAT and no SNAT" },
	{ "sshd", "an SSH port forward into this host (ssh -L from a VPS)",
	    "an SSH port forward" NO_PROXY_PROTOCOL },
	{ "ssh", "an SSH remote forward run from this host (ssh -R to a "
	    "VPS)", "ssh -R" NO_PROXY_PROTOCOL },
	{ "stunnel", "stunnel", "protocol = proxy in the stunnel service "
	    "(it then sends PROXY protocol)" FIX_POSTFIX },
	{ "stunnel4", "stunnel", "protocol = proxy in the stunnel service "
	    "(it then sends PROXY protocol)" FIX_POSTFIX },
	{ "socat", "socat", "socat relays bytes and" NO_PROXY_PROTOCOL },
	{ "haproxy", "HAProxy", "send-proxy on the server line"
	    FIX_POSTFIX },
	{ "nginx", "nginx stream", "proxy_protocol on; in the stream "
	    "server block" FIX_POSTFIX },
	{ "traefik", "Traefik", "proxyProtocol (version 2) on the TCP "
	    "service's load balancer" FIX_POSTFIX },
	{ "caddy", "Caddy layer4", "proxy_protocol v2 in the layer4 proxy "
	    "handler" FIX_POSTFIX },
	{ "docker-proxy", "Docker's userland proxy",
	    "IPv6 all the way to the container (/etc/docker/daemon.json "
	    "\"ip6tables\": true) or \"userland-proxy\": false" },
	{ "rootlesskit", "rootless Docker's port driver (rootlesskit)",
	    "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns for "
	    "dockerd-rootless.sh" },
	{ "slirp4netns", "slirp4netns", "port_handler=slirp4netns (Podman) "
	    "or the slirp4netns port driver (rootless Docker)" },
	{ "pasta", "pasta", "pasta keeps remote clients' addresses; "
	    "connections from this host itself are handed over from "
	    "loopback: let them authenticate or list them in skip_addresses" },
	{ "passt", "passt", "as for pasta" },
	{ "gvproxy", "gvproxy (Podman machine)", "publish the port from a "
	    "rootful Podman machine, or relay with PROXY protocol" },
	{ "rootlessport", "rootless Podman's port forwarder",
	    "podman run --network slirp4netns:port_handler=slirp4netns" },
};

/* The row of a process name; NULL for a program natguard does not know. */
const struct hider_program_row *
hider_program(const char *comm)
{
	size_t	i;

	for (i = 0; i < sizeof(programs) / sizeof(programs[0]); i++)
		if (strcmp(programs[i].comm, comm) == 0)
			return (&programs[i]);
	return (NULL);
}

const struct hider_program_row *
hider_program_get(size_t i)
{
	return (i < sizeof(programs) / sizeof(programs[0]) ? &programs[i] :
	    NULL);
}
