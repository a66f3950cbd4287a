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
#include <arpa/inet.h>

#include <stdlib.h>
#include <string.h>

#include "natguard.h"

/*
 * The decision: a pure function of the request, the configuration and the
 * gateway set (SPEC section 4).  No I/O, no logging, no clock: the daemon
 * and `natguard check` call this same code, and tests call it directly.
 */

static const char *action_names[] = {
	[ACT_DUNNO] = "DUNNO",
	[ACT_DEFER] = "DEFER",
	[ACT_DEFER_IF_PERMIT] = "DEFER_IF_PERMIT",
	[ACT_WARN] = "WARN",
	[ACT_REJECT] = "REJECT",
	[ACT_PREPEND] = "PREPEND",
};

const char *
action_name(enum action a)
{
	return (action_names[a]);
}

const char *
client_class_name(enum client_class c)
{
	switch (c) {
	case CLIENT_GATEWAY:
		return ("gateway");
	case CLIENT_SKIP:
		return ("skip");
	case CLIENT_EXTERNAL:
		break;
	}
	return ("external");
}

struct decision *
decision_new(void)
{
	return (xcalloc(1, sizeof(struct decision)));
}

void
decision_free(struct decision *d)
{
	if (d == NULL)
		return;
	free(d->reply);
	free(d->explanation);
	free(d->client);
	free(d->spf_domain);
	free(d->spf_explanation);
	free(d->instance);
	free(d->warning);
	free(d);
}

static struct decision *
dunno(struct decision *d, const char *reason, char *explanation)
{
	d->action = ACT_DUNNO;
	d->reply = xstrdup("DUNNO");
	d->reason = reason;
	d->explanation = explanation;
	return (d);
}

static const char *
source_phrase(const struct gateway *gw)
{
	switch (gw->source) {
	case GW_STATIC:
		return ("listed in the gateways setting");
	case GW_DEFAULT_ROUTE:
		return ("the default route's gateway");
	case GW_BRIDGE:
		return ("the address of a local bridge");
	case GW_SUBNET:
		return ("the first host of a local subnet, where Docker puts "
		    "the gateway");
	}
	return ("?");
}

/* Why the same address, over and over: the fix never changes. */
static const char nat_fix[] = ": Docker's userland proxy or IPv6-to-IPv4 "
    "NAT hid the real SMTP client address, so SPF cannot be trusted; fix: "
    "IPv6 all the way to the container (/etc/docker/daemon.json "
    "\"ip6tables\": true, \"experimental\": true; a compose network with "
    "enable_ipv6: true and an IPv6 subnet) or \"userland-proxy\": false";

/*
 * What happened and how to fix it, in words a mail administrator can act
 * on.  It is also the WARN text, so it stays on one line.  Built by
 * concatenation: this runs for every request from a gateway.
 */
static char *
nat_explanation(const struct gateway *gw, const char *client)
{
	struct buf	b = { NULL, 0, 0 };

	buf_grow(&b, 512);
	buf_adds(&b, "client address ");
	buf_adds(&b, client);
	buf_adds(&b, " is ");
	buf_adds(&b, source_phrase(gw));
	buf_adds(&b, " (");
	buf_adds(&b, gw_source_name(gw->source));
	if (gw->iface[0] != '\0') {
		buf_adds(&b, " on ");
		buf_adds(&b, gw->iface);
	}
	buf_adds(&b, ")");
	buf_add(&b, nat_fix, sizeof(nat_fix) - 1);
	return (buf_take(&b));
}

/* "WORD text" without printf. */
static char *
words(const char *a, const char *b)
{
	struct buf	buf = { NULL, 0, 0 };

	buf_adds(&buf, a);
	buf_add(&buf, " ", 1);
	buf_adds(&buf, b);
	return (buf_take(&buf));
}

static struct decision *
decide_nat(const struct config *cfg, struct decision *d,
    const struct gateway *gw)
{
	d->class = CLIENT_GATEWAY;
	d->has_gateway = 1;
	d->gateway = *gw;
	d->reason = "nat-gateway";
	d->explanation = nat_explanation(gw, d->client);
	switch (cfg->nat_action) {
	case NAT_DEFER:
		d->action = ACT_DEFER;
		d->reply = words("DEFER", cfg->nat_reply);
		break;
	case NAT_DEFER_IF_PERMIT:
		d->action = ACT_DEFER_IF_PERMIT;
		d->reply = words("DEFER_IF_PERMIT", cfg->nat_reply);
		break;
	case NAT_WARN:
		d->action = ACT_WARN;
		d->reply = words("WARN", d->explanation);
		break;
	}
	return (d);
}

struct decision *
decide(const struct config *cfg, const struct gwset *gws,
    const struct request *req)
{
	struct decision		*d;
	const struct gateway	*gw;
	const char		*v, *sasl;
	char			 buf[INET6_ADDRSTRLEN], *s;
	struct addr		 a;

	d = decision_new();
	if ((v = request_get(req, "instance")) != NULL && *v != '\0')
		d->instance = xstrdup(v);

	/* 1. Only the access policy request is ours to answer. */
	v = request_get(req, "request");
	if (v == NULL || strcmp(v, "smtpd_access_policy") != 0) {
		xasprintf(&d->warning, "unknown request=%s", v ? v : "(none)");
		d->client = xstrdup("");
		return (dunno(d, "unknown-request", xstrdup(d->warning)));
	}

	/* 2. The client address, normalised. */
	v = request_get(req, "client_address");
	if (v == NULL || addr_parse(v, &a) != 0) {
		xasprintf(&d->warning, "unparsable client_address=%s",
		    v ? v : "(none)");
		d->client = xstrdup(v ? v : "");
		return (dunno(d, "bad-client-address", xstrdup(d->warning)));
	}
	addr_format(&a, buf, sizeof(buf));
	d->client = xstrdup(buf);

	/* 3. Addresses never checked. */
	if (netlist_find(cfg->skip_addresses, &a) >= 0) {
		d->class = CLIENT_SKIP;
		return (dunno(d, "skip-address",
		    words(buf, "is in skip_addresses")));
	}

	/* 4. SASL-authenticated clients. */
	sasl = request_get(req, "sasl_username");
	if (cfg->skip_authenticated && sasl != NULL && *sasl != '\0') {
		xasprintf(&s, "client is authenticated as %s", sasl);
		return (dunno(d, "authenticated", s));
	}

	/* 5. A gateway: the real client is unknown. */
	if ((gw = gwset_find(gws, &a)) != NULL)
		return (decide_nat(cfg, d, gw));

	/* 6. SPF switched off for everyone, or for this client. */
	if (!cfg->spf)
		return (dunno(d, "spf-disabled", xstrdup("spf = no")));
	if (netlist_find(cfg->spf_whitelist, &a) >= 0) {
		xasprintf(&s, "client address %s is in spf_whitelist", buf);
		return (dunno(d, "spf-whitelist", s));
	}

	/* 7. SPF is not part of this build yet. */
	return (dunno(d, "spf-unavailable",
	    xstrdup("SPF evaluation is not available in this build")));
}

/*
 * The answer to a later recipient of the same message (same instance):
 * the same decision, but a header is prepended once per message only.
 */
struct decision *
decision_repeat(const struct decision *prev)
{
	struct decision	*d;

	d = decision_new();
	*d = *prev;
	d->client = xstrdup(prev->client);
	d->instance = prev->instance ? xstrdup(prev->instance) : NULL;
	d->spf_domain = prev->spf_domain ? xstrdup(prev->spf_domain) : NULL;
	d->spf_explanation = prev->spf_explanation ?
	    xstrdup(prev->spf_explanation) : NULL;
	d->warning = NULL;
	if (prev->action == ACT_PREPEND) {
		d->action = ACT_DUNNO;
		d->reply = xstrdup("DUNNO");
		d->reason = "already-answered";
		xasprintf(&d->explanation, "header already prepended for "
		    "instance %s", prev->instance);
		return (d);
	}
	d->reply = xstrdup(prev->reply);
	d->explanation = prev->explanation ? xstrdup(prev->explanation) : NULL;
	return (d);
}
