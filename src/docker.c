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

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

/*
 * Docker's configuration as natguard doctor reads it: the daemon's
 * /etc/docker/daemon.json (jansson) and a compose file (yaml.c).  What
 * matters is whether IPv6 clients reach the mail container with their own
 * address (IPv6 in the container, ip6tables publishing the port) or
 * through docker-proxy from the bridge gateway.
 */

#define FIX_IP6TABLES "set \"ip6tables\": true in daemon.json (and " \
	"\"experimental\": true before Docker 27), then restart dockerd"

/* A boolean key: 1 true, 0 false, -1 absent, -2 not a boolean. */
static int
jbool(json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	if (v == NULL)
		return (-1);
	if (!json_is_boolean(v))
		return (-2);
	return (json_is_true(v));
}

static void
daemon_ipv6(struct doctor *d, const char *path, json_t *o)
{
	switch (jbool(o, "ipv6")) {
	case 1:
		doctor_add(d, DS_OK, "docker-ipv6", NULL, "\"ipv6\": true in "
		    "%s: the default bridge has IPv6", path);
		break;
	case -2:
		doctor_add(d, DS_FAIL, "docker-ipv6", "write \"ipv6\": true "
		    "(a JSON boolean)", "\"ipv6\" in %s is not a boolean; "
		    "dockerd will not start", path);
		break;
	default:
		doctor_add(d, DS_WARN, "docker-ipv6", "set \"ipv6\": true in "
		    "daemon.json, or enable_ipv6: true on the mail network in "
		    "the compose file", "\"ipv6\" is not true in %s: "
		    "containers on the default bridge get no IPv6 address, and "
		    "IPv6 clients of published ports come in through "
		    "docker-proxy from the gateway", path);
		break;
	}
}

static void
daemon_ip6tables(struct doctor *d, const char *path, json_t *o)
{
	switch (jbool(o, "ip6tables")) {
	case 1:
		doctor_add(d, DS_OK, "docker-ip6tables", NULL, "\"ip6tables\": "
		    "true in %s: published ports reach IPv6 containers by "
		    "DNAT, with the client's own address", path);
		break;
	case 0:
		doctor_add(d, DS_FAIL, "docker-ip6tables", FIX_IP6TABLES,
		    "\"ip6tables\": false in %s: IPv6 connections to "
		    "published ports go through docker-proxy, and Postfix sees "
		    "the bridge gateway for every IPv6 client", path);
		break;
	case -2:
		doctor_add(d, DS_FAIL, "docker-ip6tables", FIX_IP6TABLES,
		    "\"ip6tables\" in %s is not a boolean", path);
		break;
	default:
		doctor_add(d, DS_WARN, "docker-ip6tables", FIX_IP6TABLES,
		    "\"ip6tables\" is not set in %s: it is on by default only "
		    "since Docker 27; before that, IPv6 clients of published "
		    "ports come in through docker-proxy from the gateway",
		    path);
		break;
	}
}

static void
daemon_experimental(struct doctor *d, const char *path, json_t *o)
{
	if (jbool(o, "experimental") == 1)
		doctor_add(d, DS_OK, "docker-experimental", NULL,
		    "\"experimental\": true in %s", path);
	else if (jbool(o, "ip6tables") == 1)
		doctor_add(d, DS_WARN, "docker-experimental", "set "
		    "\"experimental\": true in daemon.json if dockerd is "
		    "older than 27", "\"ip6tables\" is on but \"experimental\" "
		    "is not in %s: Docker before 27 ignores ip6tables without "
		    "it", path);
	else
		doctor_add(d, DS_OK, "docker-experimental", NULL,
		    "\"experimental\" is not set in %s (needed only for "
		    "ip6tables before Docker 27)", path);
}

static void
daemon_proxy(struct doctor *d, const char *path, json_t *o)
{
	int	proxy = jbool(o, "userland-proxy");

	if (proxy == 0)
		doctor_add(d, DS_OK, "docker-userland-proxy", NULL,
		    "\"userland-proxy\": false in %s: published ports are "
		    "reached by DNAT, keeping client addresses", path);
	else if (jbool(o, "ip6tables") == 1)
		doctor_add(d, DS_OK, "docker-userland-proxy", NULL,
		    "the userland proxy is on (%s), but with ip6tables it "
		    "carries only connections from the host itself", path);
	else
		doctor_add(d, DS_WARN, "docker-userland-proxy", "set "
		    "\"userland-proxy\": false, or make IPv6 reach the "
		    "container (\"ip6tables\": true)", "the userland proxy is "
		    "on (%s): connections that iptables cannot forward (IPv6 "
		    "to an IPv4-only container) reach Postfix from the "
		    "gateway", path);
}

/* default-address-pools: where Docker takes the subnets (and gateways). */
static void
daemon_pools(struct doctor *d, const char *path, json_t *o)
{
	json_t		*pools, *p;
	struct buf	 b = { NULL, 0, 0 };
	const char	*base;
	size_t		 i;
	int		 v6 = 0;

	if ((pools = json_object_get(o, "default-address-pools")) == NULL) {
		doctor_add(d, DS_OK, "docker-address-pools", NULL, "no "
		    "\"default-address-pools\" in %s: networks come from "
		    "172.17.0.0/16 .. 172.31.0.0/16 and 192.168.0.0/16, "
		    "gateways at their first address", path);
		return;
	}
	if (!json_is_array(pools)) {
		doctor_add(d, DS_FAIL, "docker-address-pools", "write a list "
		    "of {\"base\": \"CIDR\", \"size\": N}", "\"default-address-"
		    "pools\" in %s is not a list", path);
		return;
	}
	json_array_foreach(pools, i, p) {
		base = json_string_value(json_object_get(p, "base"));
		if (base == NULL || !json_is_integer(json_object_get(p,
		    "size"))) {
			doctor_add(d, DS_FAIL, "docker-address-pools", "each "
			    "pool needs \"base\" (a CIDR) and \"size\" (a "
			    "prefix length)", "pool %zu of \"default-address-pools\" "
			    "in %s lacks base or size", i + 1, path);
			buf_free(&b);
			return;
		}
		if (strchr(base, ':') != NULL)
			v6 = 1;
		buf_adds(&b, b.len ? ", " : "");
		buf_adds(&b, base);
	}
	if (!v6 && jbool(o, "ipv6") == 1)
		doctor_add(d, DS_WARN, "docker-address-pools", "add an IPv6 "
		    "pool, e.g. {\"base\": \"fd00:cafe::/48\", \"size\": 64}",
		    "\"ipv6\" is on but \"default-address-pools\" in %s has "
		    "no IPv6 pool (%s): new networks get no IPv6 subnet unless "
		    "the compose file names one", path, b.s);
	else
		doctor_add(d, DS_OK, "docker-address-pools", NULL, "address "
		    "pools in %s: %s", path, b.s != NULL ? b.s : "(none)");
	buf_free(&b);
}

/*
 * Docker daemon settings.  given: the path came from --daemon-json (a
 * missing file is then a FAIL; the default path may simply be absent).
 */
void
docker_daemon_json(struct doctor *d, const char *path, int given)
{
	json_error_t	 je;
	json_t		*o;

	if (!given && access(path, F_OK) == -1 && errno == ENOENT) {
		doctor_add(d, DS_OK, "docker-daemon-json", NULL, "no %s: not "
		    "a Docker host, or dockerd on its defaults (run doctor "
		    "there, or give --daemon-json FILE)", path);
		return;
	}
	if ((o = json_load_file(path, 0, &je)) == NULL) {
		doctor_add(d, DS_FAIL, "docker-daemon-json", "correct the "
		    "file: dockerd refuses to start with it", "%s:%d: %s",
		    path, je.line, je.text);
		return;
	}
	if (!json_is_object(o)) {
		doctor_add(d, DS_FAIL, "docker-daemon-json", "the file must "
		    "hold one JSON object", "%s is not a JSON object", path);
		json_decref(o);
		return;
	}
	doctor_add(d, DS_OK, "docker-daemon-json", NULL, "read %s", path);
	daemon_ipv6(d, path, o);
	daemon_ip6tables(d, path, o);
	daemon_experimental(d, path, o);
	daemon_proxy(d, path, o);
	daemon_pools(d, path, o);
	json_decref(o);
}

/* n when it is a mapping, else NULL: compose files are written by hand. */
static const struct ynode *
as_map(const struct ynode *n)
{
	return (n != NULL && ynode_type(n) == YNODE_MAP ? n : NULL);
}

/* A network's IPv6 subnet from ipam.config, or NULL. */
static const char *
network_v6_subnet(const struct ynode *net)
{
	const struct ynode	*cfg;
	const char		*s;
	size_t			 i;

	cfg = ynode_get(ynode_get(net, "ipam"), "config");
	for (i = 0; i < ynode_len(cfg); i++) {
		s = ynode_str(ynode_get(ynode_at(cfg, i), "subnet"));
		if (s != NULL && strchr(s, ':') != NULL)
			return (s);
	}
	return (NULL);
}

/* IPv6-ready networks of the file, named in a buffer; their count. */
static int
compose_networks(struct doctor *d, const char *path, const struct ynode *top)
{
	const struct ynode	*nets, *net;
	const char		*v6;
	struct buf		 ok = { NULL, 0, 0 }, half = { NULL, 0, 0 };
	size_t			 i;
	int			 n = 0;

	nets = as_map(ynode_get(top, "networks"));
	for (i = 0; i < ynode_len(nets); i++) {
		net = ynode_at(nets, i);
		v6 = network_v6_subnet(net);
		if (ynode_true(ynode_get(net, "enable_ipv6")) && v6 != NULL) {
			buf_adds(&ok, ok.len ? ", " : "");
			buf_adds(&ok, ynode_key(nets, i));
			buf_adds(&ok, " (");
			buf_adds(&ok, v6);
			buf_adds(&ok, ")");
			n++;
		} else if (ynode_true(ynode_get(net, "enable_ipv6")) ||
		    v6 != NULL) {
			buf_adds(&half, half.len ? ", " : "");
			buf_adds(&half, ynode_key(nets, i));
		}
	}
	if (n > 0)
		doctor_add(d, DS_OK, "compose-networks", NULL, "%s: IPv6 "
		    "networks: %s", path, ok.s);
	else if (half.len > 0)
		doctor_add(d, DS_WARN, "compose-networks", "give the network "
		    "both enable_ipv6: true and an IPv6 subnet under "
		    "ipam.config", "%s: network %s has only half of IPv6 "
		    "(enable_ipv6: true and an IPv6 subnet are both needed)",
		    path, half.s);
	else
		doctor_add(d, DS_WARN, "compose-networks", "add a network "
		    "with enable_ipv6: true and an IPv6 subnet (e.g. "
		    "fd00:cafe:face::/64) and put the mail service on it",
		    "%s: no network with IPv6", path);
	buf_free(&ok);
	buf_free(&half);
	return (n);
}

/*
 * The container port of a ports entry: "25", "25:25", "0.0.0.0:25:25",
 * "[::]:2525:25/tcp", or the long form's target.  0 when not understood.
 */
static unsigned int
container_port(const struct ynode *p, char *published, size_t len)
{
	const char	*s, *colon;
	char		 tmp[128], *slash;
	uint64_t	 v;

	if (ynode_type(p) == YNODE_MAP) {
		s = ynode_str(ynode_get(p, "published"));
		snprintf(published, len, "%s", s != NULL ? s : "");
		s = ynode_str(ynode_get(p, "target"));
		return (s != NULL && parse_u64(s, 1, 65535, &v) == 0 ?
		    (unsigned int)v : 0);
	}
	if ((s = ynode_str(p)) == NULL || strlen(s) >= sizeof(tmp))
		return (0);
	snprintf(published, len, "%s", s);
	snprintf(tmp, sizeof(tmp), "%s", s);
	if ((slash = strchr(tmp, '/')) != NULL)
		*slash = '\0';
	colon = strrchr(tmp, ':');
	s = colon != NULL ? colon + 1 : tmp;
	return (parse_u64(s, 1, 65535, &v) == 0 ? (unsigned int)v : 0);
}

/* Published SMTP ports of a service, into b; how many. */
static int
smtp_ports(const struct ynode *svc, struct buf *b)
{
	const struct ynode	*ports = ynode_get(svc, "ports");
	char			 pub[128];
	size_t			 i;
	unsigned int		 port;
	int			 n = 0;

	for (i = 0; i < ynode_len(ports); i++) {
		port = container_port(ynode_at(ports, i), pub, sizeof(pub));
		if (port != 25 && port != 465 && port != 587)
			continue;
		buf_adds(b, b->len ? ", " : "");
		buf_adds(b, pub);
		n++;
	}
	return (n);
}

/* Whether a service is on a network that has IPv6; its name into net. */
static int
service_on_v6(const struct ynode *top, const struct ynode *svc,
    const char **net)
{
	const struct ynode	*nets = as_map(ynode_get(top, "networks"));
	const struct ynode	*sn = ynode_get(svc, "networks");
	const struct ynode	*n;
	const char		*name;
	size_t			 i, count;

	count = ynode_len(sn);
	for (i = 0; i < (count == 0 ? 1 : count); i++) {
		/* No networks: compose's "default", which may be defined. */
		if (count == 0)
			name = "default";
		else if (as_map(sn) != NULL)
			name = ynode_key(sn, i);
		else
			name = ynode_str(ynode_at(sn, i));
		if (name == NULL)
			continue;
		n = ynode_get(nets, name);
		if (ynode_true(ynode_get(n, "enable_ipv6")) &&
		    network_v6_subnet(n) != NULL) {
			*net = name;
			return (1);
		}
	}
	*net = count == 0 ? "default" : NULL;
	return (0);
}

static int
looks_like_mail(const char *name, const struct ynode *svc)
{
	static const char *const words[] = { "mail", "postfix", "smtp",
	    "mx", NULL };
	const char	*image = ynode_str(ynode_get(svc, "image"));
	size_t		 i;

	for (i = 0; words[i] != NULL; i++) {
		if (strstr(name, words[i]) != NULL ||
		    (image != NULL && strstr(image, words[i]) != NULL))
			return (1);
	}
	return (0);
}

/* Each mail service: on an IPv6 network, or the proxy hides its clients. */
static int
compose_services(struct doctor *d, const char *path, const struct ynode *top)
{
	const struct ynode	*svcs, *svc;
	const char		*name, *mode, *net;
	struct buf		 ports = { NULL, 0, 0 };
	size_t			 i;
	int			 found = 0;

	svcs = as_map(ynode_get(top, "services"));
	for (i = 0; i < ynode_len(svcs); i++) {
		name = ynode_key(svcs, i);
		svc = ynode_at(svcs, i);
		buf_reset(&ports);
		if (smtp_ports(svc, &ports) == 0 && !looks_like_mail(name, svc))
			continue;
		found++;
		mode = ynode_str(ynode_get(svc, "network_mode"));
		if (mode != NULL && strcmp(mode, "host") == 0) {
			doctor_add(d, DS_OK, "compose-mail-service", NULL,
			    "%s: service %s uses the host's network: Postfix "
			    "sees client addresses as they are", path, name);
		} else if (ports.len == 0) {
			doctor_add(d, DS_OK, "compose-mail-service", NULL,
			    "%s: service %s publishes no SMTP port (25, 465, "
			    "587)", path, name);
		} else if (service_on_v6(top, svc, &net)) {
			doctor_add(d, DS_OK, "compose-mail-service", NULL,
			    "%s: service %s publishes %s on network %s, which "
			    "has IPv6", path, name, ports.s, net);
		} else {
			doctor_add(d, DS_FAIL, "compose-mail-service", "put "
			    "the service on a network with enable_ipv6: true "
			    "and an IPv6 subnet (and \"ip6tables\": true in "
			    "daemon.json)", "%s: service %s publishes %s but "
			    "is on no network with IPv6: the host accepts "
			    "IPv6 clients on those ports and docker-proxy "
			    "hands them to Postfix from the bridge gateway",
			    path, name, ports.s);
		}
	}
	buf_free(&ports);
	return (found);
}

/* A compose file: its networks, and the mail service on them. */
void
docker_compose(struct doctor *d, const char *path)
{
	struct ynode	*top;
	char		*err;

	if ((top = yaml_load(path, &err)) == NULL) {
		doctor_add(d, DS_FAIL, "compose-file", "correct the file "
		    "(docker compose config shows what compose reads)",
		    "%s: %s", path, err);
		free(err);
		return;
	}
	if (ynode_type(top) != YNODE_MAP ||
	    ynode_len(as_map(ynode_get(top, "services"))) == 0) {
		doctor_add(d, DS_FAIL, "compose-file", "give the compose "
		    "file, with its services: section", "%s: no services",
		    path);
		ynode_free(top);
		return;
	}
	compose_networks(d, path, top);
	if (compose_services(d, path, top) == 0)
		doctor_add(d, DS_WARN, "compose-mail-service", "publish 25 "
		    "from the mail service, or give the file that does", "%s: "
		    "no service publishes port 25, 465 or 587", path);
	ynode_free(top);
}
