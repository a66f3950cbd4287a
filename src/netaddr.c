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
#include <netinet/in.h>
#include <arpa/inet.h>

#include <libcidr.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"

/*
 * The wrapper around libcidr.  Its quirks stay here: cidr_contains() returns
 * 0 for "yes", cidr_from_str() reads past the end of short strings and
 * parses inet_aton-style ("10/8" is 0.0.0.10/8), and IPv4 never matches
 * IPv4-mapped IPv6.  So nothing here hands libcidr a string: addresses are
 * parsed with inet_pton, IPv4-mapped ones are folded to IPv4 first, and
 * CIDR objects are built from binary addresses.
 */

struct netentry {
	struct net	 net;
	CIDR		*cidr;
	uint32_t	 mask[4];	/* the prefix as a mask, for net_skip() */
};

struct netlist {
	struct netentry	*v;
	size_t		 n;
};

static const unsigned char v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* inet_pton for either family; IPv4-mapped IPv6 becomes IPv4. */
static int
addr_pton(const char *s, struct addr *out)
{
	struct in6_addr	in6;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, out->bytes) == 1) {
		out->family = AF_INET;
		return (0);
	}
	if (inet_pton(AF_INET6, s, &in6) != 1)
		return (-1);
	if (memcmp(in6.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
		out->family = AF_INET;
		memcpy(out->bytes, in6.s6_addr + 12, 4);
		return (1);
	}
	out->family = AF_INET6;
	memcpy(out->bytes, in6.s6_addr, 16);
	return (0);
}

/* 32 hex digits, as /proc/net writes IPv6 addresses, into an address. */
int
addr_hex6(const char *hex, struct addr *out)
{
	unsigned int	b;
	int		i, n;

	if (strlen(hex) != 32)
		return (-1);
	memset(out, 0, sizeof(*out));
	out->family = AF_INET6;
	for (i = 0; i < 16; i++) {
		if (sscanf(hex + 2 * i, "%2x%n", &b, &n) != 1 || n != 2)
			return (-1);
		out->bytes[i] = (unsigned char)b;
	}
	return (0);
}

/*
 * A client address as Postfix sends it: IPv4, IPv6, IPv4-mapped IPv6
 * (normalised to IPv4), with an optional zone suffix (dropped).
 */
int
addr_parse(const char *s, struct addr *out)
{
	char		 buf[INET6_ADDRSTRLEN + 1];
	const char	*pct;
	size_t		 len;

	if ((pct = strchr(s, '%')) != NULL)
		len = pct - s;
	else
		len = strlen(s);
	if (len == 0 || len >= sizeof(buf))
		return (-1);
	memcpy(buf, s, len);
	buf[len] = '\0';
	return (addr_pton(buf, out) < 0 ? -1 : 0);
}

/* inet_ntop, but IPv4 without sprintf: this runs for every request. */
void
addr_format(const struct addr *a, char *buf, size_t len)
{
	char	tmp[16], *p = tmp;
	int	i, v;

	if (a->family == AF_INET && len >= sizeof(tmp)) {
		for (i = 0; i < 4; i++) {
			v = a->bytes[i];
			if (v >= 100)
				*p++ = '0' + v / 100;
			if (v >= 10)
				*p++ = '0' + v / 10 % 10;
			*p++ = '0' + v % 10;
			*p++ = i < 3 ? '.' : '\0';
		}
		memcpy(buf, tmp, p - tmp);
		return;
	}
	if (inet_ntop(a->family, a->bytes, buf, len) == NULL && len > 0)
		buf[0] = '\0';
}

static int
addr_bits(const struct addr *a)
{
	return (a->family == AF_INET ? 32 : 128);
}

/* A network from the configuration: ADDRESS or ADDRESS/PREFIX. */
int
net_parse(const char *s, struct net *out, const char **why)
{
	char		 buf[INET6_ADDRSTRLEN + 8];
	char		*slash;
	uint64_t	 plen;
	int		 mapped, i, bits;

	if (strlen(s) >= sizeof(buf)) {
		*why = "address too long";
		return (-1);
	}
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (buf[0] == '[' && buf[strlen(buf) - 1] == ']') {
		/* Postfix writes IPv6 networks as [addr]/len. */
		buf[strlen(buf) - 1] = '\0';
		memmove(buf, buf + 1, strlen(buf));
	}
	if ((mapped = addr_pton(buf, &out->addr)) < 0) {
		*why = "not an IPv4 or IPv6 address";
		return (-1);
	}
	bits = addr_bits(&out->addr);
	out->prefix = bits;
	if (slash != NULL) {
		if (parse_u64(slash, mapped ? 96 : 0, mapped ? 128 : bits,
		    &plen) != 0) {
			*why = "bad prefix length";
			return (-1);
		}
		out->prefix = (int)plen - (mapped ? 96 : 0);
	}
	for (i = out->prefix; i < bits; i++) {
		if (out->addr.bytes[i / 8] & (0x80 >> (i % 8))) {
			*why = "host bits set after the prefix length";
			return (-1);
		}
	}
	return (0);
}

void
net_format(const struct net *n, char *buf, size_t len)
{
	char	a[INET6_ADDRSTRLEN];

	addr_format(&n->addr, a, sizeof(a));
	if (n->prefix == addr_bits(&n->addr))
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, "%s/%d", a, n->prefix);
}

/*
 * A host address as libcidr lays it out (IPv4 in the low 32 of 128 bits,
 * the mask above it all ones), in caller's storage: matching a client
 * costs no allocation.
 */
static void
cidr_host(const struct addr *a, CIDR *c)
{
	memset(c, 0, sizeof(*c));
	memset(c->mask, 0xff, sizeof(c->mask));
	if (a->family == AF_INET) {
		c->proto = CIDR_IPV4;
		memcpy(c->addr, v4mapped, sizeof(v4mapped));
		memcpy(c->addr + 12, a->bytes, 4);
	} else {
		c->proto = CIDR_IPV6;
		memcpy(c->addr, a->bytes, 16);
	}
}

/* A CIDR for an address, /32 or /128, from libcidr itself. */
static CIDR *
cidr_of(const struct addr *a)
{
	struct in_addr	 in;
	struct in6_addr	 in6;
	CIDR		*c;

	if (a->family == AF_INET) {
		memcpy(&in, a->bytes, 4);
		c = cidr_from_inaddr(&in);
	} else {
		memcpy(&in6, a->bytes, 16);
		c = cidr_from_in6addr(&in6);
	}
	if (c == NULL)
		fatal("libcidr");
	return (c);
}

/* libcidr keeps IPv4 in the low 32 of 128 bits, with the mask above set. */
static CIDR *
cidr_of_net(const struct net *n)
{
	CIDR	*c;
	int	 i, first;

	c = cidr_of(&n->addr);
	first = (n->addr.family == AF_INET ? 96 : 0) + n->prefix;
	for (i = first; i < 128; i++)
		c->mask[i / 8] &= ~(0x80 >> (i % 8));
	return (c);
}

struct netlist *
netlist_new(void)
{
	return (xcalloc(1, sizeof(struct netlist)));
}

void
netlist_free(struct netlist *nl)
{
	size_t	i;

	if (nl == NULL)
		return;
	for (i = 0; i < nl->n; i++)
		cidr_free(nl->v[i].cidr);
	free(nl->v);
	free(nl);
}

void
netlist_add(struct netlist *nl, const struct net *n)
{
	unsigned char	mask[16];
	int		i;

	nl->v = xreallocarray(nl->v, nl->n + 1, sizeof(*nl->v));
	nl->v[nl->n].net = *n;
	nl->v[nl->n].cidr = cidr_of_net(n);
	memset(mask, 0, sizeof(mask));
	for (i = 0; i < n->prefix; i++)
		mask[i / 8] |= 0x80 >> (i % 8);
	memcpy(nl->v[nl->n].mask, mask, sizeof(mask));
	nl->n++;
}

/*
 * A quick "certainly not in it": cidr_contains() works out both prefix
 * lengths bit by bit on every call, and most lookups miss (a real client
 * is neither a skip address nor a gateway).  Only a possible match is put
 * to libcidr.
 */
static int
net_skip(const struct netentry *e, const struct addr *a)
{
	uint32_t	w[4], n[4];
	int		i;

	memcpy(w, a->bytes, sizeof(w));
	memcpy(n, e->net.addr.bytes, sizeof(n));
	for (i = 0; i < 4; i++)
		if ((w[i] & e->mask[i]) != n[i])
			return (1);
	return (0);
}

size_t
netlist_count(const struct netlist *nl)
{
	return (nl == NULL ? 0 : nl->n);
}

const struct net *
netlist_get(const struct netlist *nl, size_t i)
{
	return (&nl->v[i].net);
}

/* The index of the first network that holds the address, or -1. */
int
netlist_find(const struct netlist *nl, const struct addr *a)
{
	CIDR	c;
	size_t	i;

	if (nl == NULL || nl->n == 0)
		return (-1);
	cidr_host(a, &c);
	for (i = 0; i < nl->n; i++) {
		if (nl->v[i].net.addr.family != a->family ||
		    net_skip(&nl->v[i], a))
			continue;
		/* libcidr: 0 means "contains". */
		if (cidr_contains(nl->v[i].cidr, &c) == 0)
			return ((int)i);
	}
	return (-1);
}
