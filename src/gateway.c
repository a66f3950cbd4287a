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

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "natguard.h"

/*
 * The gateway set: addresses that, seen as an SMTP client address, mean a
 * NAT or proxy stood between the real client and Postfix.  Entries come
 * from the configuration (static) and, with "auto", from this host's
 * routing table and interfaces.  An address is listed once, under the first
 * source that found it, in the order of enum gw_source.
 */

struct gwset {
	struct gateway		*v;
	size_t			 n;
	struct netlist		*nets;	/* same order as v, for matching */
	struct engine_info	 engine;	/* names the fix */
	struct netlist		*local;	/* this host's own subnets */
	struct netlist		*own;	/* this host's own addresses */
	struct netlist		*tunnels; /* reached over a VPN's interface */
};

#define RTF_UP_		0x0001
#define RTF_GATEWAY_	0x0002

static const char *gw_source_names[] = {
	[GW_STATIC] = "static",
	[GW_DEFAULT_ROUTE] = "default-route",
	[GW_BRIDGE] = "bridge-interface",
	[GW_SUBNET] = "subnet-gateway",
	[GW_OWN_ADDRESS] = "own-address",
	[GW_SLIRP] = "slirp4netns",
	[GW_LOOPBACK] = "loopback",
	[GW_TRAFFIC] = "traffic",
};

const char *
gw_source_name(enum gw_source s)
{
	return (gw_source_names[s]);
}

/* "(default-route on eth0)": how a gateway was found, for people. */
void
gw_describe(struct buf *b, const struct gateway *gw)
{
	buf_adds(b, "(");
	buf_adds(b, gw_source_name(gw->source));
	if (gw->iface[0] != '\0') {
		buf_adds(b, " on ");
		buf_adds(b, gw->iface);
	}
	buf_adds(b, ")");
}

struct gwset *
gwset_new(void)
{
	struct gwset	*gs;

	gs = xcalloc(1, sizeof(*gs));
	gs->nets = netlist_new();
	gs->local = netlist_new();
	gs->own = netlist_new();
	gs->tunnels = netlist_new();
	gs->engine.kind = ENGINE_NONE;
	return (gs);
}

/* A copy, to which learned hiders are added without a re-scan. */
struct gwset *
gwset_copy(const struct gwset *from)
{
	struct gwset	*gs = gwset_new();
	size_t		 i;

	gs->engine = from->engine;
	for (i = 0; i < netlist_count(from->local); i++)
		netlist_add(gs->local, netlist_get(from->local, i));
	for (i = 0; i < netlist_count(from->own); i++)
		netlist_add(gs->own, netlist_get(from->own, i));
	for (i = 0; i < netlist_count(from->tunnels); i++)
		netlist_add(gs->tunnels, netlist_get(from->tunnels, i));
	for (i = 0; i < from->n; i++) {
		(void)gwset_add(gs, &from->v[i].net, from->v[i].source,
		    from->v[i].iface[0] != '\0' ? from->v[i].iface : NULL);
		gs->v[gs->n - 1].ev = from->v[i].ev;
	}
	return (gs);
}

/* A subnet of this host's own interfaces (hider kinds tell by it). */
void
gwset_add_local(struct gwset *gs, const struct net *n)
{
	netlist_add(gs->local, n);
}

int
gwset_local(const struct gwset *gs, const struct addr *a)
{
	return (gs != NULL && netlist_find(gs->local, a) >= 0);
}

/* An address of one of this host's interfaces, public ones too. */
void
gwset_add_own(struct gwset *gs, const struct addr *a)
{
	struct net	n;

	n.addr = *a;
	n.prefix = a->family == AF_INET ? 32 : 128;
	if (netlist_find(gs->own, a) < 0)
		netlist_add(gs->own, &n);
}

int
gwset_own(const struct gwset *gs, const struct addr *a)
{
	return (gs != NULL && netlist_find(gs->own, a) >= 0);
}

/* Networks reached over a tunnel interface (vpn-relay). */
void
gwset_add_tunnel(struct gwset *gs, const struct net *n)
{
	netlist_add(gs->tunnels, n);
}

int
gwset_tunnel(const struct gwset *gs, const struct addr *a)
{
	return (gs != NULL && netlist_find(gs->tunnels, a) >= 0);
}

/*
 * Loopback, or an address of this host: a client there is a program on
 * the mail host, and where it carries mail from many unrelated domains it
 * is a tunnel or proxy that hides every real client (SPEC 4 step 5a).
 */
int
addr_same_host(const struct gwset *gs, const struct addr *a)
{
	static const uint8_t	v6lo[16] = { [15] = 1 };

	if (a->family == AF_INET && a->bytes[0] == 127)
		return (1);
	if (a->family == AF_INET6 && memcmp(a->bytes, v6lo, 16) == 0)
		return (1);
	return (gwset_own(gs, a));
}

/* A hider learned from traffic, with its evidence. */
int
gwset_add_traffic(struct gwset *gs, const struct addr *a,
    const struct hider_evidence *ev)
{
	struct net	n;

	n.addr = *a;
	n.prefix = a->family == AF_INET ? 32 : 128;
	if (gwset_add(gs, &n, GW_TRAFFIC, NULL) != 0)
		return (-1);
	gs->v[gs->n - 1].ev = *ev;
	return (0);
}

void
gwset_free(struct gwset *gs)
{
	if (gs == NULL)
		return;
	netlist_free(gs->nets);
	netlist_free(gs->local);
	netlist_free(gs->own);
	netlist_free(gs->tunnels);
	free(gs->v);
	free(gs);
}

static int
net_equal(const struct net *a, const struct net *b)
{
	return (a->prefix == b->prefix && a->addr.family == b->addr.family &&
	    memcmp(a->addr.bytes, b->addr.bytes, sizeof(a->addr.bytes)) == 0);
}

/* Add an entry; returns 0, or -1 when the network is listed already. */
int
gwset_add(struct gwset *gs, const struct net *n, enum gw_source source,
    const char *iface)
{
	size_t	i;

	for (i = 0; i < gs->n; i++)
		if (net_equal(&gs->v[i].net, n))
			return (-1);
	gs->v = xreallocarray(gs->v, gs->n + 1, sizeof(*gs->v));
	memset(&gs->v[gs->n], 0, sizeof(gs->v[gs->n]));
	gs->v[gs->n].net = *n;
	gs->v[gs->n].source = source;
	if (iface != NULL)
		snprintf(gs->v[gs->n].iface, sizeof(gs->v[gs->n].iface), "%s",
		    iface);
	gs->n++;
	netlist_add(gs->nets, n);
	return (0);
}

void
gwset_set_engine(struct gwset *gs, const struct engine_info *info)
{
	gs->engine = *info;
}

/* The engine the set was scanned under; NULL for no set. */
const struct engine_info *
gwset_engine(const struct gwset *gs)
{
	return (gs == NULL ? NULL : &gs->engine);
}

size_t
gwset_count(const struct gwset *gs)
{
	return (gs == NULL ? 0 : gs->n);
}

const struct gateway *
gwset_get(const struct gwset *gs, size_t i)
{
	return (&gs->v[i]);
}

const struct gateway *
gwset_find(const struct gwset *gs, const struct addr *a)
{
	int	i;

	if (gs == NULL || (i = netlist_find(gs->nets, a)) < 0)
		return (NULL);
	return (&gs->v[i]);
}

/* ISO 8601, UTC: the audit log's form. */
static json_t *
json_time(long long t)
{
	struct tm	tm;
	time_t		tt = (time_t)t;
	char		buf[32];

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return (json_null());
	return (json_string(buf));
}

static json_t *
evidence_json(const struct hider_evidence *ev)
{
	json_t		*doms = json_array();
	char		 copy[sizeof(ev->domains)], *w, *save = NULL;

	snprintf(copy, sizeof(copy), "%s", ev->domains);
	for (w = strtok_r(copy, ", ", &save); w != NULL;
	    w = strtok_r(NULL, ", ", &save))
		json_array_append_new(doms, json_string(w));
	return (json_pack("{s:o, s:i, s:i, s:o, s:o}", "domains", doms,
	    "count", (json_int_t)ev->count, "unrelated_domains",
	    (json_int_t)ev->ndomains, "first", json_time(ev->first),
	    "last", json_time(ev->last)));
}

json_t *
gwset_json(const struct gwset *gs)
{
	json_t	*list, *o;
	char	 buf[INET6_ADDRSTRLEN];
	size_t	 i;

	list = json_array();
	for (i = 0; i < gwset_count(gs); i++) {
		addr_format(&gs->v[i].net.addr, buf, sizeof(buf));
		o = json_pack("{s:s, s:i, s:s, s:o}",
		    "address", buf,
		    "prefix", gs->v[i].net.prefix,
		    "source", gw_source_name(gs->v[i].source),
		    "interface", gs->v[i].iface[0] != '\0' ?
		    json_string(gs->v[i].iface) : json_null());
		if (o == NULL)
			fatalx("json_pack");
		if (gs->v[i].source == GW_TRAFFIC)
			json_object_set_new(o, "evidence",
			    evidence_json(&gs->v[i].ev));
		json_array_append_new(list, o);
	}
	return (json_pack("{s:o}", "gateways", list));
}

static void
gwset_add_host(struct gwset *gs, const struct addr *a, enum gw_source source,
    const char *iface)
{
	struct net	n;

	n.addr = *a;
	n.prefix = a->family == AF_INET ? 32 : 128;
	(void)gwset_add(gs, &n, source, iface);
}

/* The next line of text into buf (cut to fit); NULL at the end. */
static const char *
next_line(const char *p, char *buf, size_t len)
{
	const char	*nl;
	size_t		 n;

	if (p == NULL || *p == '\0')
		return (NULL);
	nl = strchr(p, '\n');
	n = nl != NULL ? (size_t)(nl - p) : strlen(p);
	snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), p);
	return (nl != NULL ? nl + 1 : p + n);
}

/*
 * /proc/net/route: a header, then "Iface Destination Gateway Flags ..." in
 * hex, addresses as the kernel's in_addr printed as a host-order word.  The
 * default route has destination and mask 0 and the gateway flag.  Returns
 * the number of gateways added.
 */
int
gateway_parse_route(struct gwset *gs, const char *text)
{
	const char	*p = text;
	char		 line[512], iface[IF_NAMESIZE + 1];
	unsigned int	 dst, gw, flags, mask, refcnt, use, metric;
	struct addr	 a;
	int		 added = 0;

	while ((p = next_line(p, line, sizeof(line))) != NULL) {
		if (sscanf(line, "%16s %x %x %x %u %u %u %x", iface, &dst, &gw,
		    &flags, &refcnt, &use, &metric, &mask) != 8)
			continue;	/* the header, or garbage */
		if (dst != 0 || mask != 0 || !(flags & RTF_UP_) ||
		    !(flags & RTF_GATEWAY_) || gw == 0)
			continue;
		memset(&a, 0, sizeof(a));
		a.family = AF_INET;
		memcpy(a.bytes, &gw, 4);
		gwset_add_host(gs, &a, GW_DEFAULT_ROUTE, iface);
		added++;
	}
	return (added);
}

/*
 * /proc/net/ipv6_route: "dst plen src plen nexthop metric refcnt use flags
 * iface", addresses as 32 hex digits in network order.
 */
int
gateway_parse_route6(struct gwset *gs, const char *text)
{
	const char	*p = text;
	char		 line[512], dst[33], src[33], hop[33];
	char		 iface[IF_NAMESIZE + 1];
	unsigned int	 dplen, splen, metric, refcnt, use, flags;
	static const unsigned char zero[16];
	struct addr	 a;
	int		 added = 0;

	while ((p = next_line(p, line, sizeof(line))) != NULL) {
		if (sscanf(line, "%32s %x %32s %x %32s %x %x %x %x %16s", dst,
		    &dplen, src, &splen, hop, &metric, &refcnt, &use, &flags,
		    iface) != 10)
			continue;
		if (strlen(dst) != 32 || strlen(hop) != 32 || dplen != 0 ||
		    !(flags & RTF_GATEWAY_) || !(flags & RTF_UP_))
			continue;
		if (addr_hex6(dst, &a) != 0 ||
		    memcmp(a.bytes, zero, 16) != 0)
			continue;
		if (addr_hex6(hop, &a) != 0 ||
		    memcmp(a.bytes, zero, 16) == 0)
			continue;
		gwset_add_host(gs, &a, GW_DEFAULT_ROUTE, iface);
		added++;
	}
	return (added);
}

static int
is_bridge(const char *iface)
{
	char		path[128];
	struct stat	st;

	if (strcmp(iface, "docker0") == 0 || strncmp(iface, "br-", 3) == 0)
		return (1);
	snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", iface);
	return (stat(path, &st) == 0);
}

/*
 * A VPN's interface: the kernel's link kind where it tells one (a tun or
 * tap device has tun_flags; WireGuard's uevent says DEVTYPE=wireguard),
 * else the names the tools give theirs (wg0, tailscale0, tun0, zt...).
 * Under a rootless engine its own tap device (slirp4netns's) is no VPN:
 * scan_interfaces() leaves it to is_engine_link().
 */
static int
is_tunnel(const char *iface)
{
	static const char	*names[] = { "wg", "tailscale", "tun", "zt",
	    "nebula", NULL };
	char			 path[128], *u;
	struct stat		 st;
	int			 i, wg;

	snprintf(path, sizeof(path), "/sys/class/net/%s/tun_flags", iface);
	if (stat(path, &st) == 0)
		return (1);
	snprintf(path, sizeof(path), "/sys/class/net/%s/uevent", iface);
	if ((u = read_small(path)) != NULL) {
		wg = strstr(u, "DEVTYPE=wireguard") != NULL;
		free(u);
		if (wg)
			return (1);
	}
	for (i = 0; names[i] != NULL; i++)
		if (strncmp(iface, names[i], strlen(names[i])) == 0)
			return (1);
	return (0);
}

/*
 * An interface an engine made for the container: slirp4netns's tap
 * device (it has tun_flags) or a veth (its peer link is another
 * interface).  Under rootless Podman's host networking the container has
 * the host's own interfaces instead, and their addresses are the host's,
 * from which only the host's programs connect: not a forwarder's.
 */
static int
is_engine_link(const char *iface)
{
	char		 path[128], *a, *b;
	struct stat	 st;
	int		 peer;

	snprintf(path, sizeof(path), "/sys/class/net/%s/tun_flags", iface);
	if (stat(path, &st) == 0)
		return (1);
	snprintf(path, sizeof(path), "/sys/class/net/%s/iflink", iface);
	a = read_small(path);
	snprintf(path, sizeof(path), "/sys/class/net/%s/ifindex", iface);
	b = read_small(path);
	peer = a != NULL && b != NULL && strcmp(a, b) != 0;
	free(a);
	free(b);
	return (peer);
}

static int
is_link_local(const struct addr *a)
{
	return (a->family == AF_INET6 && a->bytes[0] == 0xfe &&
	    (a->bytes[1] & 0xc0) == 0x80);
}

static int
sockaddr_addr(const struct sockaddr *sa, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	if (sa == NULL)
		return (-1);
	if (sa->sa_family == AF_INET) {
		a->family = AF_INET;
		memcpy(a->bytes, &((const struct sockaddr_in *)sa)->sin_addr,
		    4);
		return (0);
	}
	if (sa->sa_family == AF_INET6) {
		a->family = AF_INET6;
		memcpy(a->bytes,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return (0);
	}
	return (-1);
}

/*
 * The first host of the interface's subnet: what Docker's IPAM hands the
 * gateway.  Subnets too small to have one (/31, /32, /127, /128) have none.
 */
static int
first_host(const struct addr *a, const struct addr *mask, struct addr *out)
{
	int	i, len = a->family == AF_INET ? 4 : 16, bits = 0;

	for (i = 0; i < len; i++)
		bits += __builtin_popcount(mask->bytes[i]);
	if (bits > len * 8 - 2)
		return (-1);
	*out = *a;
	for (i = 0; i < len; i++)
		out->bytes[i] &= mask->bytes[i];
	for (i = len - 1; i >= 0; i--)
		if (++out->bytes[i] != 0)
			break;
	return (0);
}

/* The subnet of an interface address, for hider_kind_guess(). */
static void
subnet_of(const struct addr *a, const struct addr *mask, struct net *n)
{
	int	i, len = a->family == AF_INET ? 4 : 16;

	n->addr = *a;
	n->prefix = 0;
	for (i = 0; i < len; i++) {
		n->addr.bytes[i] &= mask->bytes[i];
		n->prefix += __builtin_popcount(mask->bytes[i]);
	}
}

static void
add_local(struct gwset *gs, const struct addr *a, const struct addr *mask)
{
	struct net	n;

	subnet_of(a, mask, &n);
	gwset_add_local(gs, &n);
}

static void
add_tunnel(struct gwset *gs, const struct addr *a, const struct addr *mask)
{
	struct net	n;

	subnet_of(a, mask, &n);
	gwset_add_tunnel(gs, &n);
}

/*
 * IPv4 routes over a tunnel interface (a tailnet's 100.64.0.0/10 on
 * tailscale0, a WireGuard peer's network): a client there came over the
 * VPN.  /proc/net/route's lines, as gateway_parse_route() reads them.
 */
static void
scan_tunnel_routes(struct gwset *gs, const char *text)
{
	const char	*p = text;
	char		 line[512], iface[IF_NAMESIZE + 1];
	unsigned int	 dst, gw, flags, mask, refcnt, use, metric;
	struct net	 n;

	while ((p = next_line(p, line, sizeof(line))) != NULL) {
		if (sscanf(line, "%16s %x %x %x %u %u %u %x", iface, &dst, &gw,
		    &flags, &refcnt, &use, &metric, &mask) != 8 ||
		    mask == 0 || !(flags & RTF_UP_) || !is_tunnel(iface))
			continue;
		memset(&n, 0, sizeof(n));
		n.addr.family = AF_INET;
		memcpy(n.addr.bytes, &dst, 4);
		n.prefix = __builtin_popcount(mask);
		gwset_add_tunnel(gs, &n);
	}
}

/*
 * bridge-interface and subnet-gateway, from the interfaces' addresses, and
 * with "own" this host's own addresses (own-address); the subnets of
 * tunnel interfaces too (vpn-relay), but for a rootless engine's tap.
 */
static void
scan_interfaces(struct gwset *gs, int own, int rootless)
{
	struct ifaddrs	*ifa, *i;
	struct addr	 a, mask, gw;
	int		 pass;

	if (getifaddrs(&ifa) == -1) {
		log_warnx("getifaddrs: %s", strerror(errno));
		return;
	}
	/* Bridges first: their source is the more telling one. */
	for (pass = 0; pass < 3; pass++) {
		for (i = ifa; i != NULL; i = i->ifa_next) {
			if ((i->ifa_flags & IFF_LOOPBACK) ||
			    sockaddr_addr(i->ifa_addr, &a) != 0 ||
			    is_link_local(&a))
				continue;
			if (pass == 0) {
				if (is_bridge(i->ifa_name))
					gwset_add_host(gs, &a, GW_BRIDGE,
					    i->ifa_name);
				continue;
			}
			if (pass == 2) {
				if (own && is_engine_link(i->ifa_name))
					gwset_add_host(gs, &a, GW_OWN_ADDRESS,
					    i->ifa_name);
				continue;
			}
			if (sockaddr_addr(i->ifa_netmask, &mask) != 0 ||
			    mask.family != a.family)
				continue;
			add_local(gs, &a, &mask);
			if (is_tunnel(i->ifa_name) &&
			    !(rootless && is_engine_link(i->ifa_name)))
				add_tunnel(gs, &a, &mask);
			/*
			 * Where this host is itself the first host, it is
			 * the gateway, and its own address is no NAT sign.
			 */
			if (first_host(&a, &mask, &gw) != 0 ||
			    memcmp(gw.bytes, a.bytes, sizeof(a.bytes)) == 0)
				continue;
			gwset_add_host(gs, &gw, GW_SUBNET, i->ifa_name);
		}
	}
	freeifaddrs(ifa);
}

/*
 * This host's own addresses, whatever gateways says: a client there is
 * never refused for SPF (a proxy on the host connecting to Postfix
 * through the host's public address hides every client as well).
 */
static void
scan_own(struct gwset *gs)
{
	struct ifaddrs	*ifa, *i;
	struct addr	 a;

	if (getifaddrs(&ifa) == -1) {
		log_warnx("getifaddrs: %s", strerror(errno));
		return;
	}
	for (i = ifa; i != NULL; i = i->ifa_next)
		if (!(i->ifa_flags & IFF_LOOPBACK) &&
		    sockaddr_addr(i->ifa_addr, &a) == 0)
			gwset_add_own(gs, &a);
	freeifaddrs(ifa);
}

static struct engine_info	engine;
static int			engine_read;

/* The gateway set the configuration asks for, scanned now. */
struct gwset *
gateway_scan(const struct config *cfg)
{
	struct gwset		*gs;
	char			*text;
	size_t			 i;

	gs = gwset_new();
	/* The engine does not change under a running process: read once. */
	if (!engine_read) {
		engine_detect("", &engine);
		engine_read = 1;
	}
	gwset_set_engine(gs, &engine);
	scan_own(gs);
	for (i = 0; i < netlist_count(cfg->gateways); i++)
		(void)gwset_add(gs, netlist_get(cfg->gateways, i), GW_STATIC,
		    NULL);
	if (!cfg->gateways_auto)
		return (gs);
	if ((text = read_small("/proc/net/route")) != NULL) {
		gateway_parse_route(gs, text);
		scan_tunnel_routes(gs, text);
		free(text);
	}
	if ((text = read_small("/proc/net/ipv6_route")) != NULL) {
		gateway_parse_route6(gs, text);
		free(text);
	}
	/*
	 * rootlessport connects to the container from inside it: every
	 * client arrives from one of the container's own addresses, which no
	 * real client can have.
	 */
	scan_interfaces(gs, engine.kind == ENGINE_PODMAN_ROOTLESS,
	    engine_rootless(engine.kind));
	gateway_add_engine(gs, cfg, &engine);
	return (gs);
}

/*
 * What the engine adds to an auto set: its name, for the explanation, and
 * under a rootless engine loopback.  Its port forwarders may hand remote
 * clients over from loopback (older rootless Podman did for every client;
 * rootlesskit's child side connects from there), so a loopback client
 * there can be anyone: it is judged as a gateway, not skipped unseen,
 * unless skip_addresses was set by hand.
 */
void
gateway_add_engine(struct gwset *gs, const struct config *cfg,
    const struct engine_info *info)
{
	struct net	n;
	const char	*why;

	gwset_set_engine(gs, info);
	/*
	 * Rootless Docker's containers sit behind rootlesskit's slirp4netns
	 * network, out of their sight: its gateway (10.0.2.2, fd00::2 unless
	 * DOCKERD_ROOTLESS_ROOTLESSKIT_CIDR moved it) is where the host's
	 * own connections come from once the port driver keeps addresses.
	 */
	if (info->kind == ENGINE_DOCKER_ROOTLESS) {
		if (net_parse("10.0.2.2", &n, &why) == 0)
			(void)gwset_add(gs, &n, GW_SLIRP, NULL);
		if (net_parse("fd00::2", &n, &why) == 0)
			(void)gwset_add(gs, &n, GW_SLIRP, NULL);
	}
	if (!engine_rootless(info->kind) ||
	    config_key_set(cfg, "skip_addresses"))
		return;
	if (net_parse("127.0.0.0/8", &n, &why) == 0)
		(void)gwset_add(gs, &n, GW_LOOPBACK, "lo");
	if (net_parse("::1/128", &n, &why) == 0)
		(void)gwset_add(gs, &n, GW_LOOPBACK, "lo");
}
