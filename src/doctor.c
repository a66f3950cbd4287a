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
#include <sys/stat.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "natguard.h"

/*
 * natguard doctor: a list of checks, each OK, WARN or FAIL with one
 * sentence of evidence and, when not OK, the fix.  This file holds the
 * list and the checks of the machine natguard runs on; docker.c reads
 * Docker's files and postfix.c asks postconf.  The checks of the machine
 * take a root directory so that the tests can give them fixture trees.
 */

struct dcheck {
	enum dstatus	 status;
	char		*name;
	char		*evidence;
	char		*fix;		/* NULL: none */
};

struct doctor {
	struct dcheck	*v;
	size_t		 n;
	int		 container;	/* doctor_container() found one */
};

static const char *const dstatus_names[] = { "ok", "warn", "fail" };

/* The fix that natguard's explanation names, for checks that lead to it. */
#define FIX_IPV6 "give the mail container IPv6 all the way: a compose " \
	"network with enable_ipv6: true and an IPv6 subnet, and \"ipv6\": " \
	"true, \"ip6tables\": true (and \"experimental\": true before " \
	"Docker 27) in /etc/docker/daemon.json"

struct doctor *
doctor_new(void)
{
	return (xcalloc(1, sizeof(struct doctor)));
}

void
doctor_free(struct doctor *d)
{
	size_t	i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n; i++) {
		free(d->v[i].name);
		free(d->v[i].evidence);
		free(d->v[i].fix);
	}
	free(d->v);
	free(d);
}

/* One check; fix is NULL for OK. */
void
doctor_add(struct doctor *d, enum dstatus status, const char *name,
    const char *fix, const char *fmt, ...)
{
	struct dcheck	*c;
	va_list		 ap;

	d->v = xreallocarray(d->v, d->n + 1, sizeof(*d->v));
	c = &d->v[d->n++];
	c->status = status;
	c->name = xstrdup(name);
	va_start(ap, fmt);
	if (vasprintf(&c->evidence, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	c->fix = status != DS_OK && fix != NULL ? xstrdup(fix) : NULL;
}

enum dstatus
doctor_status(const struct doctor *d)
{
	enum dstatus	s = DS_OK;
	size_t		i;

	for (i = 0; i < d->n; i++) {
		if (d->v[i].status > s)
			s = d->v[i].status;
	}
	return (s);
}

/* The status of the check called name (the first), or -1. */
int
doctor_find(const struct doctor *d, const char *name, const char **evidence)
{
	size_t	i;

	for (i = 0; i < d->n; i++) {
		if (strcmp(d->v[i].name, name) == 0) {
			if (evidence != NULL)
				*evidence = d->v[i].evidence;
			return ((int)d->v[i].status);
		}
	}
	return (-1);
}

json_t *
doctor_json(const struct doctor *d)
{
	json_t	*checks, *c;
	size_t	 i;

	checks = json_array();
	for (i = 0; i < d->n; i++) {
		c = json_pack("{s:s, s:s, s:s, s:s?}",
		    "name", d->v[i].name,
		    "status", dstatus_names[d->v[i].status],
		    "evidence", d->v[i].evidence,
		    "fix", d->v[i].fix);
		if (c == NULL)
			fatalx("json_pack");
		json_array_append_new(checks, c);
	}
	return (json_pack("{s:s, s:o}", "status",
	    dstatus_names[doctor_status(d)], "checks", checks));
}

void
doctor_print(const struct doctor *d, FILE *f)
{
	static const char *const label[] = { "OK  ", "WARN", "FAIL" };
	size_t	i, count[3] = { 0, 0, 0 };

	for (i = 0; i < d->n; i++) {
		fprintf(f, "%s %s: %s\n", label[d->v[i].status],
		    d->v[i].name, d->v[i].evidence);
		if (d->v[i].fix != NULL)
			fprintf(f, "     fix: %s\n", d->v[i].fix);
		count[d->v[i].status]++;
	}
	fprintf(f, "%s: %zu checks, %zu FAIL, %zu WARN\n",
	    dstatus_names[doctor_status(d)], d->n, count[DS_FAIL],
	    count[DS_WARN]);
}

/*
 * Inside a container or not, and how that was decided.  Informational:
 * it changes what the IPv6 and gateway checks expect.
 */
void
doctor_container(struct doctor *d, const char *root)
{
	struct engine_info	info;

	engine_detect(root, &info);
	d->container = info.kind != ENGINE_NONE;
	if (d->container)
		doctor_add(d, DS_OK, "container", NULL, "running in a %s "
		    "container (%s)", engine_label(info.kind), info.evidence);
	else
		doctor_add(d, DS_OK, "container", NULL, "not in a container "
		    "(%s)", info.evidence);
}

/*
 * The engine's port forwarding, as measured (README "Container engines"):
 * the rootless engines' defaults hand every client over from an address
 * of their own, which natguard flags; the fix is the engine's.
 */
void
doctor_engine(struct doctor *d, const struct config *cfg,
    const struct engine_info *info)
{
	int	skip_set = config_key_set(cfg, "skip_addresses");

	switch (info->kind) {
	case ENGINE_PODMAN_ROOTLESS:
		doctor_add(d, DS_WARN, "container-engine", "podman run "
		    "--network slirp4netns:port_handler=slirp4netns (IPv4 "
		    "clients keep their address; IPv6 is not forwarded), "
		    "--network pasta (Podman 4.4 or later), or rootful Podman",
		    "rootless Podman (%s): its default port forwarder, "
		    "rootlessport, hands every client over from the "
		    "container's own address%s", info->evidence, skip_set ?
		    "; skip_addresses is set, so loopback clients are skipped "
		    "although the engine can hand remote ones over from there" :
		    "");
		break;
	case ENGINE_DOCKER_ROOTLESS:
		doctor_add(d, DS_WARN, "container-engine",
		    "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns and "
		    "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns for "
		    "dockerd-rootless.sh (systemctl --user edit docker), or "
		    "rootful Docker with IPv6 to the container",
		    "rootless Docker (%s): its default port driver, "
		    "rootlesskit's builtin, hands every client over from the "
		    "network's gateway%s", info->evidence, skip_set ?
		    "; skip_addresses is set, so loopback clients are skipped "
		    "although the engine can hand remote ones over from there" :
		    "");
		break;
	case ENGINE_NONE:
		break;
	default:
		doctor_add(d, DS_OK, "container-engine", NULL, "%s (%s): "
		    "published ports keep IPv4 clients' addresses; IPv6 is "
		    "what the ipv6 checks are about", engine_label(info->kind),
		    info->evidence);
		break;
	}
}

/* /proc/net/if_inet6: "addr32hex ifindex plen scope flags ifname". */
static int
global_ipv6(const char *text, char *first, size_t len)
{
	char		 hex[33], ifname[32], a[INET6_ADDRSTRLEN];
	unsigned int	 idx, plen, scope, flags;
	const char	*p = text;
	struct addr	 addr;
	int		 n = 0;

	while (p != NULL && *p != '\0') {
		if (sscanf(p, "%32s %x %x %x %x %31s", hex, &idx, &plen,
		    &scope, &flags, ifname) == 6 && scope == 0 &&
		    addr_hex6(hex, &addr) == 0 && n++ == 0) {
			addr_format(&addr, a, sizeof(a));
			snprintf(first, len, "%s/%u on %s", a, plen, ifname);
		}
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return (n);
}

/*
 * /proc/net/ipv6_route: "dst plen src plen nexthop metric refcnt use flags
 * iface".  A default route that is up and not the kernel's "unreachable"
 * one; its next hop is usually link-local (router advertisements), which
 * the gateway set leaves out but a route is no less for it.
 */
static int
default_route6(const char *text, char *out, size_t len)
{
	char		 dst[33], src[33], hop[33], ifname[32];
	char		 a[INET6_ADDRSTRLEN];
	unsigned int	 dplen, splen, metric, refcnt, use, flags;
	const char	*p = text;
	struct addr	 gw;
	static const char zero[] = "00000000000000000000000000000000";

	while (p != NULL && *p != '\0') {
		if (sscanf(p, "%32s %x %32s %x %32s %x %x %x %x %31s", dst,
		    &dplen, src, &splen, hop, &metric, &refcnt, &use, &flags,
		    ifname) == 10 && strcmp(dst, zero) == 0 && dplen == 0 &&
		    (flags & 0x1) && !(flags & 0x200) &&
		    strcmp(ifname, "lo") != 0) {
			if ((flags & 0x2) && addr_hex6(hop, &gw) == 0) {
				addr_format(&gw, a, sizeof(a));
				snprintf(out, len, "via %s on %s", a, ifname);
			} else
				snprintf(out, len, "on %s", ifname);
			return (1);
		}
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return (0);
}

/*
 * A global IPv6 address and an IPv6 default route.  Without them in a
 * container, the classic cause: the host publishes port 25 on IPv6 and
 * docker-proxy carries every IPv6 client in from the gateway.
 */
void
doctor_ipv6(struct doctor *d, const char *root)
{
	char		*text, first[INET6_ADDRSTRLEN + 48];
	int		 n;
	enum dstatus	 missing = d->container ? DS_WARN : DS_OK;
	const char	*why = d->container ? ": if the Docker host "
	    "publishes port 25 on IPv6 (it does when it has IPv6), docker-proxy "
	    "carries every IPv6 client in from the bridge gateway" :
	    ": no IPv6 client reaches this host, none can be hidden";

	text = read_small_in(root, "/proc/net/if_inet6");
	n = text != NULL ? global_ipv6(text, first, sizeof(first)) : 0;
	free(text);
	if (n > 0)
		doctor_add(d, DS_OK, "ipv6-address", NULL, "%d global IPv6 "
		    "address%s (%s)", n, n == 1 ? "" : "es", first);
	else
		doctor_add(d, missing, "ipv6-address", FIX_IPV6, "no global "
		    "IPv6 address%s", why);

	text = read_small_in(root, "/proc/net/ipv6_route");
	if (text != NULL && default_route6(text, first, sizeof(first)))
		doctor_add(d, DS_OK, "ipv6-route", NULL, "IPv6 default route "
		    "%s", first);
	else
		doctor_add(d, missing, "ipv6-route", FIX_IPV6, "no IPv6 "
		    "default route%s", why);
	free(text);
}

/* The gateway set, as `natguard gateways` shows it. */
void
doctor_gateways(struct doctor *d, const struct config *cfg,
    const struct gwset *gs)
{
	const struct gateway	*gw;
	struct buf		 b = { NULL, 0, 0 };
	char			 a[INET6_ADDRSTRLEN + 8];
	size_t			 i;

	if (!cfg->gateways_auto && netlist_count(cfg->gateways) == 0) {
		doctor_add(d, DS_WARN, "gateways", "gateways = auto in "
		    "natguard.conf", "gateways = none: NAT detection is off, "
		    "a client hidden behind the gateway is SPF-checked as if "
		    "it were the gateway");
		return;
	}
	if (gwset_count(gs) == 0) {
		doctor_add(d, d->container ? DS_WARN : DS_OK, "gateways",
		    "list the address Postfix sees for proxied clients in "
		    "gateways (natguard.conf)", "no gateway found (no default "
		    "route, bridge or local subnet)%s", d->container ?
		    ": a container normally has a default route via its "
		    "bridge" : "");
		return;
	}
	for (i = 0; i < gwset_count(gs); i++) {
		gw = gwset_get(gs, i);
		net_format(&gw->net, a, sizeof(a));
		if (i > 0)
			buf_adds(&b, ", ");
		buf_adds(&b, a);
		buf_adds(&b, " ");
		gw_describe(&b, gw);
	}
	doctor_add(d, DS_OK, "gateways", NULL, "%zu gateway address%s "
	    "flagged: %s", gwset_count(gs), gwset_count(gs) == 1 ? "" : "es",
	    b.s);
	buf_free(&b);
}

/*
 * Hiders learned from traffic: each named with its evidence and the fix
 * of the kind it points to; one inside mynetworks is said louder, since
 * if it is a proxy Postfix relays for anyone behind it, and so is one on
 * the mail host (a tunnel there hides every client).
 */
void
doctor_hiders(struct doctor *d, const struct config *cfg,
    const struct gwset *gs)
{
	const struct gateway		*gw;
	const struct hider_kind_row	*k;
	char				 a[INET6_ADDRSTRLEN], *fix;
	size_t				 i, n = 0;

	for (i = 0; i < gwset_count(gs); i++) {
		gw = gwset_get(gs, i);
		if (gw->source != GW_TRAFFIC)
			continue;
		n++;
		addr_format(&gw->net.addr, a, sizeof(a));
		k = hider_kind_row(hider_kind_of(gs, gw));
		if (addr_same_host(gs, &gw->net.addr) &&
		    netlist_find(cfg->spf_whitelist, &gw->net.addr) < 0) {
			doctor_add(d, DS_WARN, "learned-hiders", k->fix, "%s "
			    "is on the mail host and carries mail whose SPF "
			    "fails for %u unrelated domains (%s; %u "
			    "requests): probably %s: %s%s", a,
			    gw->ev.ndomains, gw->ev.domains, gw->ev.count,
			    k->name, k->cause, netlist_find(cfg->mynetworks,
			    &gw->net.addr) >= 0 ? "; it is in mynetworks: "
			    "this server relays for anyone who reaches the "
			    "tunnel or proxy" : "");
			continue;
		}
		if (netlist_find(cfg->mynetworks, &gw->net.addr) >= 0 &&
		    netlist_find(cfg->spf_whitelist, &gw->net.addr) >= 0) {
			doctor_add(d, DS_OK, "learned-hiders", NULL, "%s is "
			    "inside mynetworks and carries mail whose SPF "
			    "fails for %u unrelated domains: spf_whitelist "
			    "says it is your own relay", a, gw->ev.ndomains);
			continue;
		}
		if (netlist_find(cfg->mynetworks, &gw->net.addr) >= 0) {
			xasprintf(&fix, "if it is a proxy or NAT, take it out "
			    "of mynetworks (then: %s); if it is your own relay "
			    "or filter, say so with spf_whitelist = %s",
			    k->fix, a);
			doctor_add(d, DS_WARN, "learned-hiders", fix, "%s is "
			    "inside mynetworks and carries mail whose SPF "
			    "fails for %u unrelated domains (%s; %u "
			    "requests): if this is a proxy, this is an open "
			    "relay", a, gw->ev.ndomains, gw->ev.domains,
			    gw->ev.count);
		} else {
			xasprintf(&fix, "%s; then natguard gateways --forget "
			    "%s", k->fix, a);
			doctor_add(d, DS_WARN, "learned-hiders", fix, "%s "
			    "learned from traffic: %u requests failed SPF for "
			    "%u unrelated domains (%s): probably %s: %s", a,
			    gw->ev.count, gw->ev.ndomains, gw->ev.domains,
			    k->name, k->cause);
		}
		free(fix);
	}
	if (n == 0)
		doctor_add(d, DS_OK, "learned-hiders", NULL, "%s",
		    !cfg->hider_learning ? "hider_learning = no: hiders are "
		    "not learned from traffic" : "no hider learned from "
		    "traffic");
}

/* What natguard takes for Postfix's mynetworks, and from where. */
void
doctor_mynetworks(struct doctor *d, const struct config *cfg)
{
	const char	*warning = cfg->mynetworks_warning;

	struct buf	b = { NULL, 0, 0 };
	char		n[INET6_ADDRSTRLEN + 8];
	size_t		i;

	for (i = 0; i < netlist_count(cfg->mynetworks); i++) {
		net_format(netlist_get(cfg->mynetworks, i), n, sizeof(n));
		buf_adds(&b, i > 0 ? " " : "");
		buf_adds(&b, n);
	}
	if (warning != NULL)
		doctor_add(d, DS_WARN, "mynetworks", "where Postfix runs "
		    "elsewhere (a sidecar), list its mynetworks in "
		    "natguard.conf", "%s", warning);
	else if (!cfg->mynetworks_postfix && netlist_count(cfg->mynetworks)
	    == 0)
		doctor_add(d, DS_OK, "mynetworks", NULL, "mynetworks = none: "
		    "every client not a gateway is SPF-checked");
	else
		doctor_add(d, DS_OK, "mynetworks", NULL, "clients in %s (%s) "
		    "are answered DUNNO for permit_mynetworks to decide; a "
		    "detected gateway among them is still deferred",
		    b.s != NULL ? b.s : "(none)", cfg->mynetworks_postfix ?
		    "postconf -h mynetworks" : "natguard.conf");
	buf_free(&b);
}

/* Ask one endpoint; NULL and *err, or the reply's action line. */
static char *
ask(const char *spec, char **err)
{
	static const char req[] = "request=smtpd_access_policy\n"
	    "protocol_state=RCPT\nprotocol_name=ESMTP\n"
	    "client_address=127.0.0.1\nclient_name=localhost\n"
	    "helo_name=natguard-doctor\nsender=\nrecipient=\n"
	    "instance=natguard-doctor\n\n";
	char		 reply[1024], *nl;
	size_t		 len = 0;
	ssize_t		 n;
	struct pollfd	 pfd;
	int		 fd;

	if ((fd = endpoint_connect(spec, 2000, err)) == -1)
		return (NULL);
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		xasprintf(err, "write: %s", strerror(errno));
		close(fd);
		return (NULL);
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (len < sizeof(reply) - 1 && memmem(reply, len, "\n\n", 2) ==
	    NULL) {
		if (poll(&pfd, 1, 5000) != 1) {
			xasprintf(err, "no reply within 5 seconds");
			close(fd);
			return (NULL);
		}
		if ((n = read(fd, reply + len, sizeof(reply) - 1 - len)) <= 0) {
			xasprintf(err, "connection closed without a reply");
			close(fd);
			return (NULL);
		}
		len += (size_t)n;
	}
	close(fd);
	reply[len] = '\0';
	if (strncmp(reply, "action=", 7) != 0) {
		xasprintf(err, "not a policy reply");
		return (NULL);
	}
	if ((nl = strchr(reply, '\n')) != NULL)
		*nl = '\0';
	return (xstrdup(reply));
}

/*
 * The running daemon answering on each of its endpoints: listen's, or
 * natguard.socket's (eps) when systemd holds them.
 */
void
doctor_listen(struct doctor *d, const struct config *cfg,
    const struct strlist *eps)
{
	struct buf	 ok = { NULL, 0, 0 }, bad = { NULL, 0, 0 };
	const struct strlist *l = eps != NULL && eps->n > 0 ? eps :
			    &cfg->listen;
	char		*reply, *err;
	size_t		 i;

	for (i = 0; i < l->n; i++) {
		if ((reply = ask(l->v[i], &err)) != NULL) {
			buf_adds(&ok, ok.len ? "; " : "");
			buf_adds(&ok, l->v[i]);
			buf_adds(&ok, " answered ");
			buf_adds(&ok, reply);
			free(reply);
		} else {
			buf_adds(&bad, bad.len ? "; " : "");
			buf_adds(&bad, l->v[i]);
			buf_adds(&bad, ": ");
			buf_adds(&bad, err);
			free(err);
		}
	}
	if (bad.len == 0)
		doctor_add(d, DS_OK, "daemon-listen", NULL, "%s", ok.s);
	else
		doctor_add(d, DS_FAIL, "daemon-listen", "start natguard (or "
		    "check listen in natguard.conf): Postfix answers "
		    "\"451 4.3.5 Server configuration problem\" while it cannot reach the "
		    "policy service", "natguard is not answering: %s", bad.s);
	buf_free(&ok);
	buf_free(&bad);
}

/*
 * natguard.socket: when systemd holds the listening sockets, they are the
 * endpoints Postfix must use, and `listen` is not.  Its ListenStream=
 * lines, from the unit and its drop-ins in the order systemd reads them
 * (an empty one resets the list), as natguard endpoints.
 */
static const char *const unit_dirs[] = {
	"/etc/systemd/system", "/run/systemd/system",
	"/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
	"/lib/systemd/system", NULL
};

static void
socket_endpoint(const char *v, struct strlist *out)
{
	char	*s;

	if (*v == '/')
		xasprintf(&s, "unix:%s", v);
	else if (strspn(v, "0123456789") == strlen(v))
		xasprintf(&s, "inet:[::]:%s", v);	/* a port alone: any */
	else
		xasprintf(&s, "inet:%s", v);
	strlist_add(out, s);
	free(s);
}

static void
socket_unit_read(const char *text, struct strlist *out)
{
	const char	*line, *next, *v;
	char		*copy;
	size_t		 len;
	int		 in_socket = 0;

	for (line = text; *line != '\0'; line = next) {
		len = strcspn(line, "\n");
		next = line + len + (line[len] == '\n');
		copy = xstrndup(line, len);
		if (copy[0] == '[')
			in_socket = strncmp(copy, "[Socket]", 8) == 0;
		else if (in_socket && strncmp(copy, "ListenStream=", 13) == 0) {
			v = copy + 13;
			while (*v == ' ')
				v++;
			if (*v == '\0')
				strlist_clear(out);
			else
				socket_endpoint(v, out);
		}
		free(copy);
	}
}

static int
name_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* The drop-ins of natguard.socket.d under one directory, sorted. */
static void
socket_dropins(const char *root, const char *dir, struct strlist *out)
{
	struct strlist	 names = { NULL, 0 };
	struct dirent	*de;
	DIR		*dp;
	char		*path, *text;
	size_t		 i, n;

	xasprintf(&path, "%s%s/natguard.socket.d", root, dir);
	if ((dp = opendir(path)) != NULL) {
		while ((de = readdir(dp)) != NULL) {
			n = strlen(de->d_name);
			if (n > 5 && strcmp(de->d_name + n - 5, ".conf") == 0)
				strlist_add(&names, de->d_name);
		}
		closedir(dp);
	}
	free(path);
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(*names.v), name_cmp);
	for (i = 0; i < names.n; i++) {
		xasprintf(&path, "%s%s/natguard.socket.d/%s", root, dir,
		    names.v[i]);
		if ((text = read_small(path)) != NULL)
			socket_unit_read(text, out);
		free(text);
		free(path);
	}
	strlist_clear(&names);
}

/*
 * Who listens: systemd (natguard.socket enabled: its endpoints in *eps)
 * or natguard (listen).  Returns 1 when systemd does.
 */
int
doctor_sockets(struct doctor *d, const struct config *cfg, const char *root,
    struct strlist *eps)
{
	struct buf	 b = { NULL, 0, 0 }, miss = { NULL, 0, 0 };
	struct stat	 st;
	char		*path, *text = NULL, *wants;
	size_t		 i;
	int		 enabled;

	xasprintf(&wants, "%s/etc/systemd/system/sockets.target.wants/"
	    "natguard.socket", root);
	/* The link itself: its target is a path of the real root. */
	enabled = lstat(wants, &st) == 0;
	free(wants);
	for (i = 0; enabled && text == NULL && unit_dirs[i] != NULL; i++) {
		xasprintf(&path, "%s%s/natguard.socket", root, unit_dirs[i]);
		text = read_small(path);
		free(path);
	}
	if (text == NULL) {
		doctor_add(d, DS_OK, "listen-sockets", NULL, "natguard binds "
		    "listen itself (natguard.socket is not enabled here)");
		return (0);
	}
	socket_unit_read(text, eps);
	free(text);
	for (i = 0; unit_dirs[i] != NULL; i++)
		socket_dropins(root, unit_dirs[i], eps);
	for (i = 0; i < eps->n; i++) {
		buf_adds(&b, i ? ", " : "");
		buf_adds(&b, eps->v[i]);
	}
	for (i = 0; i < cfg->listen.n; i++)
		if (!strlist_contains(eps, cfg->listen.v[i])) {
			buf_adds(&miss, miss.len ? ", " : "");
			buf_adds(&miss, cfg->listen.v[i]);
		}
	if (eps->n == 0)
		doctor_add(d, DS_FAIL, "listen-sockets", "give natguard.socket "
		    "a ListenStream= (systemctl edit natguard.socket)",
		    "natguard.socket is enabled but listens nowhere");
	else if (miss.len > 0)
		doctor_add(d, DS_WARN, "listen-sockets", "point Postfix's "
		    "check_policy_service at natguard.socket's endpoint, or "
		    "change its ListenStream= (systemctl edit natguard.socket)",
		    "systemd holds natguard's sockets (natguard.socket): %s; "
		    "listen = %s in natguard.conf is not used", b.s, miss.s);
	else
		doctor_add(d, DS_OK, "listen-sockets", NULL, "systemd holds "
		    "natguard's sockets (natguard.socket): %s, across "
		    "restarts", b.s);
	buf_free(&b);
	buf_free(&miss);
	return (1);
}

/*
 * The SPF worker: it starts, is sandboxed, evaluates; and the deaths the
 * daemon noted in state_dir (a DNS record that crashes libspf2).
 */
void
doctor_spf_worker(struct doctor *d, const struct config *cfg)
{
	char		*what, *path, *text, *last, *p;
	size_t		 n = 0;

	if (spfworker_selftest(&what) != 0)
		doctor_add(d, DS_FAIL, "spf-worker", "run natguard -v to see "
		    "why its SPF worker stops: until it runs, every SPF "
		    "answer is a temperror", "%s", what);
	else if (strstr(what, "no seccomp filter") != NULL)
		doctor_add(d, DS_WARN, "spf-worker", "run natguard on a Linux "
		    "kernel with seccomp filters (CONFIG_SECCOMP_FILTER): "
		    "without one, a libspf2 bug that a DNS record reaches runs "
		    "with natguard's rights", "%s", what);
	else
		doctor_add(d, DS_OK, "spf-worker", NULL, "%s", what);
	free(what);
	if (cfg->state_dir[0] == '\0')
		return;
	xasprintf(&path, "%s/%s", cfg->state_dir, SPF_CRASH_FILE);
	text = read_small(path);
	free(path);
	if (text == NULL || *text == '\0') {
		doctor_add(d, DS_OK, "spf-worker-crashes", NULL, "no SPF "
		    "worker has died on a DNS record");
		free(text);
		return;
	}
	for (p = text, last = text; *p != '\0'; p++)
		if (*p == '\n') {
			n++;
			if (p[1] != '\0')
				last = p + 1;
		}
	last[strcspn(last, "\n")] = '\0';
	doctor_add(d, DS_WARN, "spf-worker-crashes", "each evaluation it died "
	    "on was answered temperror and its domain held for 10 minutes, "
	    "so no mail was refused; send the domain's SPF record (dig TXT "
	    "DOMAIN) to natguard's authors, and remove " SPF_CRASH_FILE " in "
	    "state_dir once it is dealt with", "the SPF worker died %zu "
	    "time%s evaluating a DNS record (%s/" SPF_CRASH_FILE "); the "
	    "last: %s", n, n == 1 ? "" : "s", cfg->state_dir, last);
	free(text);
}

static int
smtp_port(uint16_t port)
{
	return (port == 25 || port == 465 || port == 587);
}

/* Who holds a socket, in words: "haproxy (pid 812)". */
static int
owner_name(const char *proc, const struct sockent *e, char *dst,
    size_t size, const char **comm, struct sockowner *o, int *denied)
{
	int	d;

	if (sockdiag_owner(proc, e->inode, o, &d) != 0) {
		*denied |= d;
		return (-1);
	}
	snprintf(dst, size, "%s (pid %d)", o->comm, (int)o->pid);
	*comm = o->comm;
	return (0);
}

/* One row a program and what it does (not one a connection). */
static void
smtp_program(struct doctor *d, struct strlist *said, const char *check,
    const char *comm, const char *who, const char *what)
{
	const struct hider_program_row	*r = hider_program(comm);
	char				*key;

	xasprintf(&key, "%s %s", comm, what);
	if (strlist_contains(said, key)) {
		free(key);
		return;
	}
	strlist_add(said, key);
	free(key);
	doctor_add(d, DS_WARN, check, r != NULL ? r->fix :
	    hider_kind_row(HK_SAME_HOST)->fix, "%s%s%s %s: every client "
	    "reaches Postfix from it, hidden", who, r != NULL ? ", " : "",
	    r != NULL ? r->what : "", what);
}

/*
 * Who holds the SMTP ports (25, 465, 587), and who connects to Postfix
 * from the mail host itself (sockdiag.c): a program other than Postfix's
 * master on a public SMTP port, or at the other end of Postfix's
 * connections from loopback or this host's own address, hides every
 * client.  proc is /proc; without root the owners of other users' sockets
 * cannot be seen, and the check says so.
 */
void
doctor_smtp_ports(struct doctor *d, const struct gwset *gs, const char *proc)
{
	struct sockent		*v;
	struct sockowner	 o;
	struct buf		 ok = { NULL, 0, 0 };
	struct strlist		 said = { NULL, 0 };
	const char		*comm;
	char			 who[64], a[INET6_ADDRSTRLEN], what[160];
	size_t			 n, i, j, warned = 0;
	int			 denied = 0, *postfix;

	if (sockdiag_tcp(SOCKDIAG_LISTEN | SOCKDIAG_ESTABLISHED, &v, &n)
	    != 0) {
		doctor_add(d, DS_OK, "smtp-connections", NULL, "the kernel's socket "
		    "table cannot be read here (%s): who holds the SMTP "
		    "ports not checked", strerror(errno));
		return;
	}
	/* Listeners: Postfix's master's ports are the ones it serves. */
	postfix = xcalloc(n + 1, sizeof(*postfix));
	for (i = 0; i < n; i++) {
		if (v[i].state != 10 || owner_name(proc, &v[i], who,
		    sizeof(who), &comm, &o, &denied) != 0)
			continue;
		postfix[i] = sockdiag_postfix(comm);
		if (!smtp_port(v[i].sport))
			continue;
		addr_format(&v[i].src, a, sizeof(a));
		if (postfix[i]) {
			buf_adds(&ok, ok.len ? ", " : "");
			buf_adds(&ok, a);
			snprintf(what, sizeof(what), ":%u", v[i].sport);
			buf_adds(&ok, what);
			continue;
		}
		snprintf(what, sizeof(what), "holds SMTP port %s:%u, not "
		    "Postfix's master", a, v[i].sport);
		smtp_program(d, &said, "listen-sockets", comm, who, what);
		warned++;
	}
	/* Postfix's end of a connection from this host: who is the other? */
	for (i = 0; i < n; i++) {
		if (v[i].state != 1 || !addr_same_host(gs, &v[i].dst))
			continue;
		for (j = 0; j < n && !(postfix[j] &&
		    v[j].sport == v[i].sport); j++)
			;
		if (j == n)
			continue;
		for (j = 0; j < n; j++)
			if (v[j].state == 1 && v[j].sport == v[i].dport &&
			    v[j].dport == v[i].sport &&
			    sockdiag_same_addr(&v[j].src, &v[i].dst))
				break;
		if (j == n || owner_name(proc, &v[j], who, sizeof(who), &comm,
		    &o, &denied) != 0 || sockdiag_postfix(comm))
			continue;
		addr_format(&v[i].dst, a, sizeof(a));
		snprintf(what, sizeof(what), "connects to Postfix's port %u "
		    "from %s", v[i].sport, a);
		smtp_program(d, &said, "smtp-connections", comm, who, what);
		warned++;
	}
	if (warned == 0)
		doctor_add(d, DS_OK, "smtp-connections", NULL, "%s%s%s",
		    ok.len ? "Postfix's master holds " : "no SMTP port (25, "
		    "465, 587) is held by Postfix here", ok.len ? ok.s : "",
		    denied ? "; natguard is not root here and cannot see who "
		    "holds every socket (run natguard doctor as root)" :
		    "; no other program on this host relays to Postfix");
	buf_free(&ok);
	strlist_clear(&said);
	free(postfix);
	free(v);
}
