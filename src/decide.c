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

#include <ctype.h>
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
	free(d->spf_helo);
	free(d->spf_helo_macro);
	free(d->spf_mailbox);
	free(d);
}

void
spf_verdict_copy(struct spf_verdict *dst, const struct spf_verdict *src)
{
	dst->result = src->result;
	dst->domain = src->domain ? xstrdup(src->domain) : NULL;
	dst->explanation = src->explanation ? xstrdup(src->explanation) : NULL;
	dst->comment = src->comment ? xstrdup(src->comment) : NULL;
}

void
spf_verdict_clear(struct spf_verdict *v)
{
	free(v->domain);
	free(v->explanation);
	free(v->comment);
	memset(v, 0, sizeof(*v));
}

/*
 * A HELO name SPF can check: a domain with a dot, not an address literal
 * or a bare word (RFC 7208 2.3: otherwise the HELO identity is skipped).
 */
static int
helo_is_domain(const char *h)
{
	const char	*p;
	int		 alpha = 0;

	if (h == NULL || *h == '\0' || *h == '.' || strchr(h, '.') == NULL ||
	    strlen(h) > 253)
		return (0);
	for (p = h; *p != '\0'; p++) {
		if (isalpha((unsigned char)*p))
			alpha = 1;
		else if (!isdigit((unsigned char)*p) && *p != '-' &&
		    *p != '.' && *p != '_')
			return (0);
	}
	return (alpha);
}

/* What SPF this client's request needs; the caller runs it. */
static void
spf_plan(const struct config *cfg, const struct request *req,
    struct decision *d, const struct addr *a, unsigned int need)
{
	const char	*helo = request_get(req, "helo_name");
	const char	*sender = request_get(req, "sender");

	d->spf_addr = *a;
	if (helo_is_domain(helo))
		d->spf_helo = xstrdup(helo);
	/* %{h} is the HELO name as given, a domain or not (RFC 7208 7.3). */
	if (helo != NULL && *helo != '\0')
		d->spf_helo_macro = xstrdup(helo);
	if (sender != NULL && *sender != '\0')
		d->spf_mailbox = xstrdup(sender);
	else
		xasprintf(&d->spf_mailbox, "postmaster@%s",
		    helo != NULL ? helo : "");
	if (need == SPF_NEED_MAILFROM && cfg->spf_helo && d->spf_helo != NULL)
		need |= SPF_NEED_HELO;
	if ((need & SPF_NEED_MAILFROM) && cfg->spf_domain_whitelist.n > 0)
		need |= SPF_NEED_DOMAINS;
	d->spf_need = need;
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
	case GW_OWN_ADDRESS:
		return ("this container's own address");
	case GW_SLIRP:
		return ("the gateway of rootless Docker's slirp4netns network");
	case GW_LOOPBACK:
		return ("loopback");
	}
	return ("?");
}

/*
 * What hid the client and the fix (README "Container engines" has the
 * measurements behind each).  Docker's is also the text for no engine
 * (natguard on a Docker host, Postfix in a container) and unknown ones.
 */
struct hiding {
	const char	*cause;
	const char	*fix;
};
static const struct hiding hid_docker = { "Docker's userland proxy or "
    "IPv6-to-IPv4 NAT hid the real SMTP client address", "IPv6 all the "
    "way to the container (/etc/docker/daemon.json \"ip6tables\": true, "
    "\"experimental\": true; a compose network with enable_ipv6: true and "
    "an IPv6 subnet) or \"userland-proxy\": false" };
static const struct hiding hid_docker_rootless = { "rootless Docker's port "
    "driver (rootlesskit's builtin, the default) hands every connection to "
    "a published port over from the network's gateway",
    "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns and "
    "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns for dockerd-rootless.sh "
    "(systemctl --user edit docker), which keeps IPv4 clients' addresses, "
    "or rootful Docker with IPv6 all the way to the container" };
static const struct hiding hid_podman_rootless = { "rootless Podman's port "
    "forwarder (rootlessport, the default) hands every connection to a "
    "published port over from the container's own address", "podman run "
    "--network slirp4netns:port_handler=slirp4netns, which keeps IPv4 "
    "clients' addresses (IPv6 is not forwarded), --network pasta (Podman "
    "4.4 or later), or rootful Podman" };
/* Where remote clients keep their address, the host's own programs don't. */
static const char fix_local[] = "if these are the host's own programs, let "
    "them authenticate (SASL) or list the address in skip_addresses";
static const struct hiding hid_docker_slirp = { "rootless Docker's "
    "slirp4netns network hands connections from the host itself over from "
    "its gateway", fix_local };
static const struct hiding hid_podman_slirp = { "rootless Podman hands "
    "connections from the host itself over from the network's gateway "
    "(slirp4netns's, or a bridge network's)", fix_local };
static const struct hiding hid_podman = { "Podman hands connections from "
    "the host itself over from the network's gateway, where remote IPv4 "
    "clients keep their address through netavark's DNAT", fix_local };

static const struct hiding *
hiding(const struct engine_info *engine, const struct gateway *gw)
{
	switch (engine != NULL ? engine->kind : ENGINE_NONE) {
	case ENGINE_DOCKER_ROOTLESS:
		return (gw->source == GW_SLIRP ? &hid_docker_slirp :
		    &hid_docker_rootless);
	case ENGINE_PODMAN_ROOTLESS:
		return (gw->source == GW_OWN_ADDRESS ? &hid_podman_rootless :
		    &hid_podman_slirp);
	case ENGINE_PODMAN:
		return (&hid_podman);
	default:
		return (&hid_docker);
	}
}

/*
 * Loopback under a rootless engine: not known to be hidden, nor local;
 * the fix is the engine's forwarder's.
 */
static const struct hiding *
hiding_loopback(const struct engine_info *engine)
{
	return (engine != NULL && engine->kind == ENGINE_DOCKER_ROOTLESS ?
	    &hid_docker_rootless : &hid_podman_rootless);
}

/*
 * What happened and how to fix it, in words a mail administrator can act
 * on.  It is also the WARN text, so it stays on one line.  Built by
 * concatenation: this runs for every request from a gateway.
 */
static char *
nat_explanation(const struct gateway *gw, const char *client,
    const struct engine_info *engine)
{
	struct buf		 b = { NULL, 0, 0 };
	const struct hiding	*h;

	buf_grow(&b, 640);
	buf_adds(&b, "client address ");
	buf_adds(&b, client);
	buf_adds(&b, " is ");
	buf_adds(&b, source_phrase(gw));
	if (gw->source == GW_LOOPBACK || gw->source == GW_OWN_ADDRESS) {
		buf_adds(&b, " in a ");
		buf_adds(&b, engine_label(engine != NULL ? engine->kind :
		    ENGINE_NONE));
		buf_adds(&b, " container");
	}
	buf_adds(&b, " ");
	gw_describe(&b, gw);
	buf_adds(&b, ": ");
	if (gw->source == GW_LOOPBACK) {
		h = hiding_loopback(engine);
		buf_adds(&b, "its port forwarders can hand remote clients over "
		    "from loopback; the real SMTP client is unknown, so SPF "
		    "cannot be trusted; fix: ");
		buf_adds(&b, h->fix);
		buf_adds(&b, "; or, if only programs of this host connect "
		    "over loopback, list it in skip_addresses");
		return (buf_take(&b));
	}
	h = hiding(engine, gw);
	buf_adds(&b, h->cause);
	buf_adds(&b, ", so SPF cannot be trusted; fix: ");
	buf_adds(&b, h->fix);
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
    const struct gateway *gw, const struct engine_info *engine)
{
	d->class = CLIENT_GATEWAY;
	d->has_gateway = 1;
	d->gateway = *gw;
	d->reason = "nat-gateway";
	d->explanation = nat_explanation(gw, d->client, engine);
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

	/*
	 * 3. Addresses never checked; loopback is checked under a rootless
	 * engine, where it can stand for anyone (a loopback gateway).
	 */
	gw = gwset_find(gws, &a);
	if (netlist_find(cfg->skip_addresses, &a) >= 0 &&
	    (gw == NULL || gw->source != GW_LOOPBACK)) {
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
	if (gw != NULL) {
		decide_nat(cfg, d, gw, gwset_engine(gws));
		if (cfg->nat_spf_probe)
			spf_plan(cfg, req, d, &a, SPF_NEED_PROBE);
		return (d);
	}

	/* 6. SPF switched off for everyone, or for this client. */
	if (!cfg->spf)
		return (dunno(d, "spf-disabled", xstrdup("spf = no")));
	if (netlist_find(cfg->spf_whitelist, &a) >= 0) {
		xasprintf(&s, "client address %s is in spf_whitelist", buf);
		return (dunno(d, "spf-whitelist", s));
	}

	/* 7. SPF: decide_spf() finishes this once it has run. */
	d->reason = "spf-pending";
	spf_plan(cfg, req, d, &a, SPF_NEED_MAILFROM);
	return (d);
}

static const char *spf_reasons[SPF_R_COUNT] = {
	[SPF_R_NONE] = "spf-none",
	[SPF_R_NEUTRAL] = "spf-neutral",
	[SPF_R_PASS] = "spf-pass",
	[SPF_R_FAIL] = "spf-fail",
	[SPF_R_SOFTFAIL] = "spf-softfail",
	[SPF_R_TEMPERROR] = "spf-temperror",
	[SPF_R_PERMERROR] = "spf-permerror",
};

/* A header comment in parentheses must not close them early. */
static void
add_comment(struct buf *b, const char *comment)
{
	const char	*p;
	size_t		 n;

	buf_add(b, " (", 2);
	for (p = comment; *p != '\0'; ) {
		n = strcspn(p, "()");
		buf_add(b, p, n);
		if (p[n] == '\0')
			break;
		buf_add(b, "-", 1);
		p += n + 1;
	}
	buf_add(b, ")", 1);
}

/* Received-SPF (RFC 7208 9.1) or Authentication-Results (RFC 8601). */
static char *
spf_header(const struct config *cfg, const struct decision *d,
    const struct spf_verdict *v, int helo_identity)
{
	struct buf	b = { NULL, 0, 0 };
	const char	*r = spf_result_name(v->result);

	if (cfg->spf_header == SPF_HEADER_AR) {
		buf_adds(&b, "Authentication-Results: ");
		buf_adds(&b, cfg->authserv_id);
		buf_adds(&b, "; spf=");
		buf_adds(&b, r);
		if (v->comment != NULL)
			add_comment(&b, v->comment);
		buf_adds(&b, helo_identity ? " smtp.helo=" : " smtp.mailfrom=");
		buf_adds(&b, helo_identity ? d->spf_helo : d->spf_mailbox);
		return (buf_take(&b));
	}
	buf_adds(&b, "Received-SPF: ");
	buf_adds(&b, r);
	if (v->comment != NULL)
		add_comment(&b, v->comment);
	buf_adds(&b, " client-ip=");
	buf_adds(&b, d->client);
	buf_adds(&b, "; envelope-from=\"");
	buf_adds(&b, d->spf_mailbox);
	buf_adds(&b, "\"");
	if (d->spf_helo != NULL) {
		buf_adds(&b, "; helo=");
		buf_adds(&b, d->spf_helo);
	}
	buf_adds(&b, "; receiver=");
	buf_adds(&b, cfg->authserv_id);
	buf_adds(&b, helo_identity ? "; identity=helo" : "; identity=mailfrom");
	return (buf_take(&b));
}

/* The SMTP reply text for a result that rejects or defers. */
static char *
spf_text(const char *code, const struct spf_verdict *v)
{
	char	*s;

	xasprintf(&s, "%s SPF %s for %s%s%s", code, spf_result_name(v->result),
	    v->domain != NULL ? v->domain : "?",
	    v->explanation != NULL ? ": " : "",
	    v->explanation != NULL ? v->explanation : "");
	return (s);
}

/*
 * Which identity decides (RFC 7208 2.3: only a conclusive HELO result may
 * decide the message).  A HELO result in spf_reject does; one in
 * spf_defer only when MAIL FROM is neither pass nor in spf_reject: a HELO
 * name whose DNS fails must not defer mail its sender's domain vouches
 * for, nor hide a MAIL FROM rejection.  Otherwise MAIL FROM decides.
 */
static int
helo_decides(const struct config *cfg, const struct spf_verdict *helo,
    const struct spf_verdict *mailfrom)
{
	if (helo == NULL)
		return (0);
	if (mailfrom == NULL || (cfg->spf_reject & (1U << helo->result)))
		return (1);
	if (cfg->spf_defer & (1U << helo->result))
		return (mailfrom->result != SPF_R_PASS &&
		    !(cfg->spf_reject & (1U << mailfrom->result)));
	return (0);
}

/*
 * Step 7 (and the end of step 6, and the NAT probe of step 5), once the
 * evaluations decide() asked for have run: helo and mailfrom are their
 * verdicts (NULL when not asked for; for SPF_NEED_PROBE, mailfrom is the
 * probe's), whitelisted says a spf_domain_whitelist domain passed.
 */
void
decide_spf(const struct config *cfg, struct decision *d,
    const struct spf_verdict *helo, const struct spf_verdict *mailfrom,
    int whitelisted)
{
	const struct spf_verdict *v = mailfrom;
	struct buf		  b = { NULL, 0, 0 };
	char			 *s;
	int			  helo_id = 0;

	if ((d->spf_need & SPF_NEED_DOMAINS) && whitelisted) {
		d->spf_need = 0;
		d->action = ACT_DUNNO;
		d->reply = xstrdup("DUNNO");
		d->reason = "spf-domain-whitelist";
		xasprintf(&d->explanation, "client address %s passes SPF for "
		    "a domain in spf_domain_whitelist", d->client);
		return;
	}
	if (d->spf_need & SPF_NEED_PROBE) {
		/* Reported, never acted upon: the address is not the client. */
		d->spf_need = 0;
		d->has_spf = 1;
		d->spf_probe = 1;
		d->spf_identity = "mailfrom";
		d->spf_result = v->result;
		d->spf_domain = v->domain ? xstrdup(v->domain) : NULL;
		d->spf_explanation = v->explanation ?
		    xstrdup(v->explanation) : NULL;
		xasprintf(&s, "%s; SPF for %s evaluated against the gateway "
		    "address says %s", d->explanation, v->domain ? v->domain :
		    "?", spf_result_name(v->result));
		free(d->explanation);
		d->explanation = s;
		if (d->action == ACT_WARN) {
			free(d->reply);
			d->reply = words("WARN", d->explanation);
		}
		return;
	}
	if (!(d->spf_need & SPF_NEED_HELO))
		helo = NULL;
	if (helo_decides(cfg, helo, mailfrom)) {
		v = helo;
		helo_id = 1;
	} else if (helo != NULL) {
		/* Evaluated, not deciding: reported only. */
		d->spf_helo_reported = 1;
		d->spf_helo_result = helo->result;
	}
	d->spf_need = 0;
	d->has_spf = 1;
	d->spf_identity = helo_id ? "helo" : "mailfrom";
	d->spf_result = v->result;
	d->spf_domain = v->domain ? xstrdup(v->domain) : NULL;
	d->spf_explanation = v->explanation ? xstrdup(v->explanation) : NULL;
	d->reason = spf_reasons[v->result];
	if (cfg->spf_reject & (1U << v->result)) {
		d->action = ACT_REJECT;
		d->reply = spf_text(v->result == SPF_R_PERMERROR ?
		    "550 5.7.24" : "550 5.7.23", v);
	} else if (cfg->spf_defer & (1U << v->result)) {
		d->action = ACT_DEFER_IF_PERMIT;
		d->reply = spf_text("DEFER_IF_PERMIT 4.7.24", v);
	} else if (cfg->spf_header == SPF_HEADER_NONE) {
		d->action = ACT_DUNNO;
		d->reply = xstrdup("DUNNO");
	} else {
		d->action = ACT_PREPEND;
		d->reply = words("PREPEND", s = spf_header(cfg, d, v, helo_id));
		free(s);
	}
	/*
	 * "SPF RESULT for IDENTITY identity NAME[: EXPLANATION]", by hand:
	 * every request with SPF comes here.
	 */
	buf_adds(&b, "SPF ");
	buf_adds(&b, spf_result_name(v->result));
	buf_adds(&b, " for ");
	buf_adds(&b, d->spf_identity);
	buf_adds(&b, " identity ");
	buf_adds(&b, helo_id ? d->spf_helo : d->spf_mailbox);
	if (v->explanation != NULL) {
		buf_adds(&b, ": ");
		buf_adds(&b, v->explanation);
	}
	d->explanation = buf_take(&b);
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
	d->spf_need = 0;
	d->spf_helo = NULL;
	d->spf_helo_macro = NULL;
	d->spf_mailbox = NULL;
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
