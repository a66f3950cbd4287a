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
#include <strings.h>
#include <time.h>

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
	[ACT_RESTRICTION] = "RESTRICTION",
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

/*
 * A decision's strings live in its pool while they fit, malloc()ed past
 * it: a request's ten or so short strings cost no allocation.  NULL
 * stays NULL.
 */
char *
decision_strdup(struct decision *d, const char *s)
{
	size_t	len;
	char	*p;

	if (s == NULL)
		return (NULL);
	len = strlen(s) + 1;
	if (len > sizeof(d->pool) - d->pool_used)
		return (xstrdup(s));
	p = d->pool + d->pool_used;
	memcpy(p, s, len);
	d->pool_used += len;
	return (p);
}

/* Free one of d's strings (from decision_strdup() or malloc()). */
void
decision_release(struct decision *d, char *s)
{
	if ((uintptr_t)s - (uintptr_t)d->pool >= sizeof(d->pool))
		free(s);
}

void
decision_free(struct decision *d)
{
	if (d == NULL)
		return;
	decision_release(d, d->reply);
	decision_release(d, d->explanation);
	decision_release(d, d->client);
	decision_release(d, d->spf_domain);
	decision_release(d, d->spf_explanation);
	decision_release(d, d->instance);
	decision_release(d, d->warning);
	decision_release(d, d->spf_helo);
	decision_release(d, d->spf_helo_macro);
	decision_release(d, d->spf_mailbox);
	decision_release(d, d->spf_receiver);
	free(d);
}

void
spf_verdict_copy(struct spf_verdict *dst, const struct spf_verdict *src)
{
	dst->result = src->result;
	dst->domain = src->domain ? xstrdup(src->domain) : NULL;
	dst->explanation = src->explanation ? xstrdup(src->explanation) : NULL;
	dst->comment = src->comment ? xstrdup(src->comment) : NULL;
	dst->no_mail = src->no_mail;
	dst->crashed = src->crashed;
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

/*
 * receiver= of the header: this host (RFC 7208 9.1), or as policyd-spf
 * with Hide_Receiver = No, the recipient's domain.
 */
static char *
receiver(const struct config *cfg, const struct request *req)
{
	const char	*rcpt = request_get(req, "recipient"), *at;

	if (cfg->spf_header_receiver != SPF_RECEIVER_RECIPIENT_DOMAIN)
		return (NULL);
	if (rcpt == NULL || *rcpt == '\0')
		return (xstrdup("none"));
	at = strrchr(rcpt, '@');
	return (xstrdup(at != NULL ? at + 1 : rcpt));
}

/*
 * What SPF this client's request needs; the caller runs it.  The address
 * is the client's, or with spf_prospective the one this host will send
 * from (policyd-spf's Prospective: checking outgoing mail).
 */
static void
spf_plan(const struct config *cfg, const struct request *req,
    struct decision *d, const struct addr *a, unsigned int need)
{
	const char	*helo = request_get(req, "helo_name");
	const char	*sender = request_get(req, "sender");

	d->spf_addr = *a;
	if (need != SPF_NEED_PROBE && cfg->spf_prospective[0] != '\0')
		(void)addr_parse(cfg->spf_prospective, &d->spf_addr);
	if (helo_is_domain(helo))
		d->spf_helo = decision_strdup(d, helo);
	/* %{h} is the HELO name as given, a domain or not (RFC 7208 7.3). */
	if (helo != NULL && *helo != '\0')
		d->spf_helo_macro = decision_strdup(d, helo);
	if (sender != NULL && *sender != '\0')
		d->spf_mailbox = decision_strdup(d, sender);
	else {
		d->spf_null_sender = 1;
		xasprintf(&d->spf_mailbox, "postmaster@%s",
		    helo != NULL ? helo : "");
	}
	d->spf_receiver = receiver(cfg, req);
	if (need == SPF_NEED_MAILFROM) {
		if (cfg->spf_helo && d->spf_helo != NULL)
			need |= SPF_NEED_HELO;
		if (!cfg->spf_mailfrom && (need & SPF_NEED_HELO))
			need &= ~SPF_NEED_MAILFROM;
		if (cfg->spf_domain_whitelist.n > 0)
			need |= SPF_NEED_DOMAINS;
		if (strlist_has_name(&cfg->spf_helo_whitelist, helo, 0))
			need |= SPF_NEED_HELO_WL;
		if (cfg->spf_ptr_whitelist.n > 0)
			need |= SPF_NEED_PTR_WL;
	}
	d->spf_need = need;
}

/*
 * policyd-spf's trace header for a client it lets through unchecked
 * (spf_trace_header): X-Comment, or an Authentication-Results none.
 */
static void
trace_header(const struct config *cfg, struct decision *d, const char *why,
    const char *helo, const char *sender, const char *rcv)
{
	struct buf	 b = { NULL, 0, 0 };

	if (!cfg->spf_trace_header || cfg->spf_header == SPF_HEADER_NONE)
		return;
	if (cfg->spf_header == SPF_HEADER_AR) {
		buf_adds(&b, "PREPEND Authentication-Results: ");
		buf_adds(&b, cfg->authserv_id);
		buf_adds(&b, "; none (");
	} else
		buf_adds(&b, "PREPEND X-Comment: ");
	buf_adds(&b, why);
	buf_adds(&b, " - client-ip=");
	buf_adds(&b, d->client);
	/* As policyd-spf writes them: as sent, <UNKNOWN> when not sent. */
	buf_adds(&b, "; helo=");
	buf_adds(&b, helo != NULL ? helo : "<UNKNOWN>");
	buf_adds(&b, "; envelope-from=");
	buf_adds(&b, sender != NULL ? sender : "<UNKNOWN>");
	buf_adds(&b, "; receiver=");
	buf_adds(&b, rcv != NULL ? rcv : cfg->authserv_id);
	if (cfg->spf_header == SPF_HEADER_AR)
		buf_adds(&b, ")");
	decision_release(d, d->reply);
	d->reply = buf_take(&b);
	d->action = ACT_PREPEND;
}

/* The trace header of step 3 and 6, from the request. */
static void
trace_request(const struct config *cfg, const struct request *req,
    struct decision *d, const char *why)
{
	char	*rcv;

	if (!cfg->spf_trace_header)
		return;
	rcv = receiver(cfg, req);
	trace_header(cfg, d, why, request_get(req, "helo_name"),
	    request_get(req, "sender"), rcv);
	free(rcv);
}

static struct decision *
dunno(struct decision *d, const char *reason, char *explanation)
{
	d->action = ACT_DUNNO;
	d->reply = decision_strdup(d, "DUNNO");
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
	case GW_TRAFFIC:
		return ("a hider learned from traffic");
	}
	return ("?");
}

/* "2026-12-02 10:00:00Z": the evidence's times, without the clock. */
static void
add_time(struct buf *b, long long t)
{
	struct tm	tm;
	time_t		tt = (time_t)t;
	char		s[32];

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(s, sizeof(s), "%lld", t);
	buf_adds(b, s);
}

static void
add_uint(struct buf *b, unsigned int n)
{
	char	s[16];

	snprintf(s, sizeof(s), "%u", n);
	buf_adds(b, s);
}

/* What a learned hider was learned from. */
static void
add_evidence(struct buf *b, const struct hider_evidence *ev)
{
	buf_adds(b, ": ");
	add_uint(b, ev->count);
	buf_adds(b, " requests from it failed SPF for ");
	add_uint(b, ev->ndomains);
	buf_adds(b, " unrelated sender domains (");
	buf_adds(b, ev->domains);
	buf_adds(b, ") between ");
	add_time(b, ev->first);
	buf_adds(b, " and ");
	add_time(b, ev->last);
}

/*
 * "CAUSE, so SPF cannot be trusted; fix: FIX", from the hider kind's row;
 * a kind told from evidence, not seen, says it is a guess.
 */
static void
add_cause_fix(struct buf *b, enum hider_kind kind, const char *trust)
{
	const struct hider_kind_row *k = hider_kind_row(kind);

	if (k->guessed) {
		buf_adds(b, "probably ");
		buf_adds(b, k->name);
		buf_adds(b, ": ");
	}
	buf_adds(b, k->cause);
	buf_adds(b, trust);
	buf_adds(b, "; fix: ");
	buf_adds(b, k->fix);
}

/*
 * What happened and how to fix it, in words a mail administrator can act
 * on.  It is also the WARN text, so it stays on one line.  Built by
 * concatenation: this runs for every request from a gateway.
 */
static char *
nat_explanation(const struct gwset *gws, const struct gateway *gw,
    const char *client)
{
	const struct engine_info *engine = gwset_engine(gws);
	struct buf		 b = { NULL, 0, 0 };
	enum hider_kind		 k;

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
	if (gw->source == GW_TRAFFIC)
		add_evidence(&b, &gw->ev);
	buf_adds(&b, ": ");
	if (gw->source == GW_LOOPBACK) {
		k = engine != NULL && engine->kind == ENGINE_DOCKER_ROOTLESS ?
		    HK_DOCKER_ROOTLESS : HK_PODMAN_ROOTLESS;
		buf_adds(&b, "its port forwarders can hand remote clients over "
		    "from loopback; the real SMTP client is unknown, so SPF "
		    "cannot be trusted; fix: ");
		buf_adds(&b, hider_kind_row(k)->fix);
		buf_adds(&b, "; or, if only programs of this host connect "
		    "over loopback, list it in skip_addresses");
		return (buf_take(&b));
	}
	add_cause_fix(&b, hider_kind_of(gws, gw), ", so SPF cannot be trusted");
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
    const struct gateway *gw, const struct gwset *gws)
{
	d->class = CLIENT_GATEWAY;
	d->has_gateway = 1;
	d->gateway = *gw;
	d->reason = "nat-gateway";
	d->explanation = nat_explanation(gws, gw, d->client);
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

/*
 * A learned hider said, not deferred: the decision names it, and the text
 * starts "client address ADDR is WHERE and a hider learned from traffic
 * (traffic): N requests ...".
 */
static void
learned_said(struct decision *d, const struct gateway *gw, struct buf *b,
    const char *where)
{
	d->class = CLIENT_GATEWAY;
	d->has_gateway = 1;
	d->gateway = *gw;
	buf_adds(b, "client address ");
	buf_adds(b, d->client);
	buf_adds(b, where);
	buf_adds(b, " and ");
	buf_adds(b, source_phrase(gw));
	buf_adds(b, " ");
	gw_describe(b, gw);
	add_evidence(b, &gw->ev);
}

/*
 * A hider learned on the mail host itself (a tunnel, a local proxy): every
 * client is hidden behind it, and Postfix answers all of them without SPF
 * (skip_addresses, mynetworks).  Said on every request, never deferred: a
 * content filter or a webmail looks the same until the admin says "mine"
 * (spf_whitelist).
 */
static void
same_host_report(struct decision *d, const struct addr *a,
    const struct gateway *gw, const char *list, int mynet)
{
	struct buf	b = { NULL, 0, 0 };

	learned_said(d, gw, &b, addr_same_host(NULL, a) ? " is loopback" :
	    " is an address of this host");
	buf_adds(&b, ": a tunnel or proxy on the mail host hands every "
	    "client over from it, so every client is hidden and SPF is "
	    "skipped for all of them (");
	buf_adds(&b, list);
	buf_adds(&b, ")");
	if (mynet)
		buf_adds(&b, "; with it in mynetworks this server relays for "
		    "anyone who reaches the tunnel or proxy");
	buf_adds(&b, "; ");
	add_cause_fix(&b, HK_SAME_HOST, "");
	decision_release(d, d->explanation);
	d->explanation = buf_take(&b);
	d->warning = decision_strdup(d, d->explanation);
}

/*
 * A client answered without SPF (skip_addresses, mynetworks) that is a
 * private address or on the mail host: watched (LEARN_WATCH: its MAIL
 * FROM evaluated aside, the answer not waiting for it), unless the
 * administrator said it is theirs (spf_whitelist).
 */
static void
watch_aside(const struct config *cfg, const struct request *req,
    struct decision *d, const struct addr *a)
{
	if (!cfg->hider_learning || !d->private_client || !cfg->spf ||
	    netlist_find(cfg->spf_whitelist, a) >= 0)
		return;
	spf_plan(cfg, req, d, a, SPF_NEED_MAILFROM);
	d->spf_need = 0;
	d->learn = LEARN_WATCH;
}

/*
 * 5a. Postfix's own trusted clients: DUNNO, so that permit_mynetworks
 * decides as it would without natguard.  A hider learned from traffic in
 * there is said loudly: a proxy in mynetworks is an open relay, a relay
 * of the administrator's own carries failing mail as a proxy does.  A
 * private client is still watched (LEARN_WATCH: its MAIL FROM evaluated
 * aside, the answer not waiting for it), and so is one on the mail host.
 */
static void
decide_mynetworks(const struct config *cfg, const struct request *req,
    struct decision *d, const struct addr *a, const struct gateway *gw)
{
	struct buf	b = { NULL, 0, 0 };

	d->action = ACT_DUNNO;
	d->reply = decision_strdup(d, "DUNNO");
	d->reason = "mynetworks";
	/* spf_whitelist: the administrator said it is their own relay. */
	if (gw != NULL && netlist_find(cfg->spf_whitelist, a) >= 0)
		gw = NULL;
	if (gw != NULL && d->same_host && gw->source == GW_TRAFFIC) {
		same_host_report(d, a, gw, "mynetworks", 1);
	} else if (gw != NULL) {
		learned_said(d, gw, &b, " is in mynetworks");
		buf_adds(&b, ": if it is a proxy or NAT, this is an open relay "
		    "(every client it carries counts as local and Postfix "
		    "relays for it): take it out of mynetworks; if it is your "
		    "own relay or filter, say so with spf_whitelist = ");
		buf_adds(&b, d->client);
		d->explanation = buf_take(&b);
		d->warning = decision_strdup(d, d->explanation);
	} else {
		d->class = CLIENT_SKIP;
		xasprintf(&d->explanation, "client address %s is in "
		    "mynetworks: permit_mynetworks decides", d->client);
	}
	watch_aside(cfg, req, d, a);
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
	int			 mynet;

	d = decision_new();
	if ((v = request_get(req, "instance")) != NULL && *v != '\0')
		d->instance = decision_strdup(d, v);

	/* 1. Only the access policy request is ours to answer. */
	v = request_get(req, "request");
	if (v == NULL || strcmp(v, "smtpd_access_policy") != 0) {
		xasprintf(&d->warning, "unknown request=%s", v ? v : "(none)");
		d->client = decision_strdup(d, "");
		return (dunno(d, "unknown-request", xstrdup(d->warning)));
	}

	/* 2. The client address, normalised. */
	v = request_get(req, "client_address");
	if (v == NULL || addr_parse(v, &a) != 0) {
		xasprintf(&d->warning, "unparsable client_address=%s",
		    v ? v : "(none)");
		d->client = decision_strdup(d, v ? v : "");
		return (dunno(d, "bad-client-address", xstrdup(d->warning)));
	}
	addr_format(&a, buf, sizeof(buf));
	d->client = decision_strdup(d, buf);
	/* A program on the mail host is no Internet sender either. */
	d->same_host = addr_same_host(gws, &a);
	d->private_client = d->same_host ||
	    netlist_find(cfg->private_networks, &a) >= 0;

	/*
	 * 3. Addresses never checked; loopback is checked under a rootless
	 * engine, where it can stand for anyone (a loopback gateway).  The
	 * mail host's own addresses in the default skip_addresses are
	 * watched: a tunnel there hides every client (a list set by hand
	 * is the administrator's word).
	 */
	gw = gwset_find(gws, &a);
	if (netlist_find(cfg->skip_addresses, &a) >= 0 &&
	    (gw == NULL || gw->source != GW_LOOPBACK)) {
		d->class = CLIENT_SKIP;
		dunno(d, "skip-address", words(buf, "is in skip_addresses"));
		trace_request(cfg, req, d, "SPF check N/A for local "
		    "connections");
		if (!d->same_host || config_key_set(cfg, "skip_addresses"))
			return (d);
		if (gw != NULL && gw->source == GW_TRAFFIC &&
		    netlist_find(cfg->spf_whitelist, &a) < 0)
			same_host_report(d, &a, gw, "skip_addresses",
			    netlist_find(cfg->mynetworks, &a) >= 0);
		watch_aside(cfg, req, d, &a);
		return (d);
	}

	/* 4. SASL-authenticated clients. */
	sasl = request_get(req, "sasl_username");
	if (cfg->skip_authenticated && sasl != NULL && *sasl != '\0') {
		xasprintf(&s, "client is authenticated as %s", sasl);
		return (dunno(d, "authenticated", s));
	}

	/*
	 * 5. A gateway: the real client is unknown.  5a: a hider learned
	 * from traffic inside mynetworks may be a relay trusted on purpose.
	 */
	mynet = netlist_find(cfg->mynetworks, &a) >= 0;
	if (gw != NULL && gw->source == GW_TRAFFIC && !mynet &&
	    addr_same_host(NULL, &a)) {
		/* Loopback learned: reported, never deferred (5a). */
		xasprintf(&d->warning, "client address %s is loopback and "
		    "learned from traffic: a tunnel or proxy on the mail host "
		    "hands every client over from it; %s", buf,
		    hider_kind_row(HK_SAME_HOST)->fix);
		gw = NULL;
	}
	if (gw != NULL && !(gw->source == GW_TRAFFIC && mynet)) {
		decide_nat(cfg, d, gw, gws);
		/* spf = no: no SPF lookups at all, the probe's neither. */
		if (cfg->nat_spf_probe && cfg->spf)
			spf_plan(cfg, req, d, &a, SPF_NEED_PROBE);
		if (gw->source == GW_TRAFFIC)
			d->learn = LEARN_REFRESH;
		return (d);
	}
	if (mynet) {
		decide_mynetworks(cfg, req, d, &a, gw);
		return (d);
	}

	/* 6. SPF switched off for everyone, or for this client. */
	if (!cfg->spf)
		return (dunno(d, "spf-disabled", xstrdup("spf = no")));
	if (netlist_find(cfg->spf_whitelist, &a) >= 0) {
		xasprintf(&s, "client address %s is in spf_whitelist", buf);
		dunno(d, "spf-whitelist", s);
		trace_request(cfg, req, d,
		    "SPF skipped for whitelisted relay");
		return (d);
	}

	/* 7. SPF: decide_spf() finishes this once it has run. */
	d->reason = "spf-pending";
	if (d->private_client)
		d->hider_guess = hider_kind_guess(gws, &a);
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
	/* RFC 7208 9.1: the name given in HELO, a domain or not. */
	if (d->spf_helo_macro != NULL) {
		buf_adds(&b, "; helo=");
		buf_adds(&b, d->spf_helo_macro);
	}
	buf_adds(&b, "; receiver=");
	buf_adds(&b, d->spf_receiver != NULL ? d->spf_receiver :
	    cfg->authserv_id);
	buf_adds(&b, helo_identity ? "; identity=helo" : "; identity=mailfrom");
	return (buf_take(&b));
}

/*
 * What the SMTP client is told about a result that rejects or defers:
 * natguard's "SPF RESULT for DOMAIN: EXPLANATION", or spf_reply_text
 * with policyd-spf's {rejectdefer} {spf} {url} and natguard's {result}
 * {domain} {identity} filled in.
 */
static void
reply_text(struct buf *b, const struct config *cfg, const struct decision *d,
    const struct spf_verdict *v, int reject, int local)
{
	static const char *const names[] = { "rejectdefer", "spf", "url",
	    "result", "domain", "identity", NULL };
	const char	*p, *e, *dom = v->domain != NULL ? v->domain : "?";
	const char	*id = strcmp(d->spf_identity, "helo") == 0 ?
			    d->spf_helo : d->spf_mailbox;
	size_t		 i, n;

	if (cfg->spf_reply_text[0] == '\0') {
		buf_adds(b, "SPF ");
		buf_adds(b, spf_result_name(v->result));
		buf_adds(b, " for ");
		buf_adds(b, dom);
		if (local)
			buf_adds(b, ": the receiver requires SPF pass for "
			    "this domain (spf_require_pass_domains)");
		else if (v->explanation != NULL) {
			buf_adds(b, ": ");
			buf_adds(b, v->explanation);
		}
		return;
	}
	for (p = cfg->spf_reply_text; *p != '\0'; p = e) {
		if (*p != '{' || (e = strchr(p, '}')) == NULL) {
			e = p + 1 + strcspn(p + 1, "{");
			buf_add(b, p, e - p);
			continue;
		}
		n = e - p - 1;
		e++;
		for (i = 0; names[i] != NULL; i++)
			if (strlen(names[i]) == n &&
			    strncmp(p + 1, names[i], n) == 0)
				break;
		switch (i) {
		case 0:
			buf_adds(b, reject ? "rejected" : "deferred");
			break;
		case 1:
			if (local) {
				buf_adds(b, "Receiver policy for SPF ");
				buf_adds(b, spf_result_name(v->result));
			} else if (v->explanation != NULL)
				buf_adds(b, v->explanation);
			else {
				buf_adds(b, "SPF ");
				buf_adds(b, spf_result_name(v->result));
			}
			break;
		case 2:
			buf_adds(b, "https://www.open-spf.org/Why?s=");
			buf_adds(b, strcmp(d->spf_identity, "helo") == 0 ?
			    "helo" : "mfrom");
			buf_adds(b, ";id=");
			buf_adds(b, id);
			buf_adds(b, ";ip=");
			buf_adds(b, d->client);
			break;
		case 3:
			buf_adds(b, spf_result_name(v->result));
			break;
		case 4:
			buf_adds(b, dom);
			break;
		case 5:
			buf_adds(b, id);
			break;
		default:	/* not ours: as written */
			buf_add(b, p, e - p);
			break;
		}
	}
}

/* "550 5.7.23 TEXT" or "DEFER_IF_PERMIT 4.7.24 TEXT". */
static char *
spf_reply(const struct config *cfg, const struct decision *d,
    const struct spf_verdict *v, int reject, int local)
{
	struct buf	b = { NULL, 0, 0 };

	buf_adds(&b, reject ? "550" : "DEFER_IF_PERMIT");
	if (cfg->spf_enhanced_status_codes)
		buf_adds(&b, !reject ? " 4.7.24" :
		    v->result == SPF_R_PERMERROR ? " 5.7.24" : " 5.7.23");
	buf_adds(&b, " ");
	reply_text(&b, cfg, d, v, reject, local);
	return (buf_take(&b));
}

/*
 * The sets an identity's result is judged by: spf_reject and spf_defer
 * (spf_helo_reject and spf_helo_defer for HELO), with fail, softfail and
 * neutral rejected for a spf_require_pass_domains domain (*local set).
 */
struct spf_sets {
	unsigned int	reject;
	unsigned int	defer;
	int		local;
};

static void
spf_sets(const struct config *cfg, const char *domain, int helo,
    struct spf_sets *s)
{
	s->reject = helo ? cfg->spf_helo_reject : cfg->spf_reject;
	s->defer = helo ? cfg->spf_helo_defer : cfg->spf_defer;
	s->local = 0;
	if (strlist_has_name(&cfg->spf_require_pass_domains, domain, 1)) {
		s->reject |= 1U << SPF_R_FAIL | 1U << SPF_R_SOFTFAIL |
		    1U << SPF_R_NEUTRAL;
		s->local = 1;
	}
}

/*
 * Which identity decides (RFC 7208 2.3: only a conclusive HELO result may
 * decide the message).  A HELO result in its reject set does; one in its
 * defer set only when MAIL FROM is neither pass nor rejected: a HELO
 * name whose DNS fails must not defer mail its sender's domain vouches
 * for, nor hide a MAIL FROM rejection.  Otherwise MAIL FROM decides.
 */
static int
helo_decides(const struct spf_sets *hs, const struct spf_sets *ms,
    const struct spf_verdict *helo, const struct spf_verdict *mailfrom)
{
	if (helo == NULL)
		return (0);
	if (mailfrom == NULL || (hs->reject & (1U << helo->result)))
		return (1);
	if (hs->defer & (1U << helo->result))
		return (mailfrom->result != SPF_R_PASS &&
		    !(ms->reject & (1U << mailfrom->result)));
	return (0);
}

/*
 * A private client whose deciding SPF result rejects: no Internet sender
 * has its address (nor one of this host's, public ones too), so the
 * result is probably the hider's, not the real client's.  A temporary
 * answer: senders retry, nothing is lost while the network is fixed
 * (private_spf_action = reject restores the 550).
 */
static void
decide_private(const struct config *cfg, struct decision *d,
    const struct spf_verdict *v)
{
	struct buf	 b = { NULL, 0, 0 };
	const char	*code;

	code = v->result == SPF_R_PERMERROR ? "4.7.24" : "4.7.23";
	d->reason = "private-client";
	if (cfg->private_spf_action == PRIVATE_DEFER) {
		d->action = ACT_DEFER;
		buf_adds(&b, "DEFER ");
	} else {
		d->action = ACT_DEFER_IF_PERMIT;
		buf_adds(&b, "DEFER_IF_PERMIT ");
	}
	buf_adds(&b, code);
	buf_adds(&b, " SPF ");
	buf_adds(&b, spf_result_name(v->result));
	buf_adds(&b, " for ");
	buf_adds(&b, v->domain != NULL ? v->domain : "?");
	buf_adds(&b, d->same_host ? " from this host's address " :
	    " from private address ");
	buf_adds(&b, d->client);
	buf_adds(&b, d->same_host ? ": a tunnel or proxy on the mail host "
	    "probably hides the real client; please try again later" :
	    ": a proxy or NAT probably hides the real client; please try "
	    "again later");
	d->reply = buf_take(&b);

	buf_adds(&b, "SPF ");
	buf_adds(&b, spf_result_name(v->result));
	buf_adds(&b, " for ");
	buf_adds(&b, d->spf_identity);
	buf_adds(&b, " identity ");
	buf_adds(&b, strcmp(d->spf_identity, "helo") == 0 ? d->spf_helo :
	    d->spf_mailbox);
	if (v->explanation != NULL) {
		buf_adds(&b, " (");
		buf_adds(&b, v->explanation);
		buf_adds(&b, ")");
	}
	buf_adds(&b, ", but client address ");
	buf_adds(&b, d->client);
	buf_adds(&b, d->same_host ? " is this host's own (loopback or an "
	    "interface's), so the connection came from a program on the mail "
	    "host and the result is probably not the real client's: " :
	    " is in private_networks, which no Internet sender has, so the "
	    "result is probably not the real client's: ");
	add_cause_fix(&b, d->hider_guess, "");
	buf_adds(&b, "; if it is a host of your own network, list it in "
	    "mynetworks or spf_whitelist; answered ");
	buf_adds(&b, d->action == ACT_DEFER ? "DEFER" : "DEFER_IF_PERMIT");
	buf_adds(&b, " (private_spf_action)");
	if (d->learn == LEARN_EVIDENCE)
		buf_adds(&b, ", and counted towards learning it as a hider "
		    "(hider_threshold)");
	d->explanation = buf_take(&b);
}

/* Step 6's whitelists that need DNS: domain, HELO name, PTR name. */
static void
decide_whitelisted(const struct config *cfg, struct decision *d, int wl)
{
	const char	*reason, *what, *trace;

	if (wl & SPF_WL_DOMAIN) {
		reason = "spf-domain-whitelist";
		what = "passes SPF for a domain in spf_domain_whitelist";
		trace = "SPF skipped for whitelisted relay domain";
	} else if (wl & SPF_WL_HELO) {
		reason = "spf-helo-whitelist";
		what = "is an address of its HELO name, which is in "
		    "spf_helo_whitelist";
		trace = "SPF skipped for whitelisted HELO domain";
	} else {
		reason = "spf-ptr-whitelist";
		what = "has a forward-confirmed PTR name in spf_ptr_whitelist";
		trace = "SPF skipped for PTR whitelisted relay domain";
	}
	d->spf_need = 0;
	d->action = ACT_DUNNO;
	d->reply = decision_strdup(d, "DUNNO");
	d->reason = reason;
	xasprintf(&d->explanation, "client address %s %s", d->client, what);
	trace_header(cfg, d, trace, d->spf_helo_macro != NULL ?
	    d->spf_helo_macro : "", d->spf_null_sender ? "" : d->spf_mailbox,
	    d->spf_receiver);
}

/* The NAT probe: reported, never acted upon (not the client's address). */
static void
decide_probe(struct decision *d, const struct spf_verdict *v)
{
	char	*s;

	d->spf_need = 0;
	d->has_spf = 1;
	d->spf_probe = 1;
	d->spf_identity = "mailfrom";
	d->spf_result = v->result;
	d->spf_domain = decision_strdup(d, v->domain);
	d->spf_explanation = decision_strdup(d, v->explanation);
	xasprintf(&s, "%s; SPF for %s evaluated against the gateway address "
	    "says %s", d->explanation, v->domain ? v->domain : "?",
	    spf_result_name(v->result));
	decision_release(d, d->explanation);
	d->explanation = s;
	if (d->action == ACT_WARN) {
		decision_release(d, d->reply);
		d->reply = words("WARN", d->explanation);
	}
}

/*
 * A pass answered with a Postfix restriction class (spf_pass_restriction,
 * spf_helo_pass_restriction): the class's name, or NULL.  A HELO pass is
 * conclusive (RFC 7208 2.3) when the HELO class is set, as policyd-spf
 * has it; a MAIL FROM pass with a class of its own comes first.
 */
static const char *
pass_restriction(const struct config *cfg, const struct decision *d,
    const struct spf_verdict *helo, const struct spf_verdict *mailfrom,
    int *helo_id)
{
	/* The null sender is judged by the HELO settings (RFC 7208 2.4). */
	if (d->spf_null_sender && helo != NULL)
		mailfrom = NULL;
	if (mailfrom != NULL && mailfrom->result == SPF_R_PASS &&
	    cfg->spf_pass_restriction[0] != '\0') {
		*helo_id = 0;
		return (cfg->spf_pass_restriction);
	}
	if (helo != NULL && helo->result == SPF_R_PASS &&
	    cfg->spf_helo_pass_restriction[0] != '\0') {
		*helo_id = 1;
		return (cfg->spf_helo_pass_restriction);
	}
	return (NULL);
}

/*
 * Step 7 (and the end of step 6, and the NAT probe of step 5), once the
 * evaluations decide() asked for have run: helo and mailfrom are their
 * verdicts (NULL when not asked for; for SPF_NEED_PROBE, mailfrom is the
 * probe's), whitelisted says which whitelist (SPF_WL_*) let the client
 * through.
 */
void
decide_spf(const struct config *cfg, struct decision *d,
    const struct spf_verdict *helo, const struct spf_verdict *mailfrom,
    int whitelisted)
{
	const struct spf_verdict *v = mailfrom;
	struct spf_sets		  hs, ms, *set;
	struct buf		  b = { NULL, 0, 0 };
	const char		 *class, *at;
	char			 *s;
	unsigned int		  bit;
	int			  helo_id = 0;

	if ((d->spf_need & (SPF_NEED_DOMAINS | SPF_NEED_HELO_WL |
	    SPF_NEED_PTR_WL)) && whitelisted) {
		decide_whitelisted(cfg, d, whitelisted);
		return;
	}
	if (d->spf_need & SPF_NEED_PROBE) {
		decide_probe(d, mailfrom);
		return;
	}
	if (!(d->spf_need & SPF_NEED_HELO))
		helo = NULL;
	if (!(d->spf_need & SPF_NEED_MAILFROM))
		mailfrom = NULL;
	at = strrchr(d->spf_mailbox, '@');
	spf_sets(cfg, d->spf_helo, 1, &hs);
	spf_sets(cfg, at != NULL ? at + 1 : NULL, 0, &ms);
	/*
	 * spf_reject_no_mail_only: only a domain that sends no mail is
	 * rejected; for any other, an identity's result rejects nothing and
	 * the other identity may decide (as policyd-spf's No_Mail).
	 */
	if (cfg->spf_reject_no_mail_only) {
		if (helo == NULL || !helo->no_mail)
			hs.reject = 0;
		if (mailfrom == NULL || !mailfrom->no_mail)
			ms.reject = 0;
	}
	/*
	 * The null sender's MAIL FROM identity is the HELO one (RFC 7208
	 * 2.4): the HELO settings judge it.  spf_helo_null_sender_only: a
	 * HELO result judges nothing else.
	 */
	if (helo != NULL && (d->spf_null_sender || mailfrom == NULL))
		helo_id = 1;
	else if (helo != NULL && !cfg->spf_helo_null_sender_only)
		helo_id = helo_decides(&hs, &ms, helo, mailfrom);
	v = helo_id ? helo : mailfrom;
	set = helo_id ? &hs : &ms;
	bit = 1U << v->result;
	/* A rejection stands before any restriction class. */
	class = NULL;
	if (!(set->reject & bit) && (class = pass_restriction(cfg, d,
	    helo, mailfrom, &helo_id)) != NULL) {
		v = helo_id ? helo : mailfrom;
		set = helo_id ? &hs : &ms;
		bit = 1U << v->result;
	}
	if (helo != NULL && !helo_id) {
		/* Evaluated, not deciding: reported only. */
		d->spf_helo_reported = 1;
		d->spf_helo_result = helo->result;
	}
	d->spf_need = 0;
	d->has_spf = 1;
	d->spf_identity = helo_id ? "helo" : "mailfrom";
	d->spf_result = v->result;
	d->spf_domain = decision_strdup(d, v->domain);
	d->spf_explanation = decision_strdup(d, v->explanation);
	d->reason = spf_reasons[v->result];
	if ((set->reject & bit) && d->private_client) {
		if (cfg->hider_learning)
			d->learn = LEARN_EVIDENCE;
		if (cfg->private_spf_action != PRIVATE_REJECT) {
			decide_private(cfg, d, v);
			return;
		}
	}
	if (v->crashed) {
		/*
		 * The SPF worker died evaluating it: whatever spf_defer says,
		 * a temporary answer (SPEC 4 step 7), never a header that
		 * says temperror to a filter that might reject on it.
		 */
		d->reason = "spf-worker-crash";
		d->action = ACT_DEFER_IF_PERMIT;
		d->reply = spf_reply(cfg, d, v, 0, set->local);
	} else if (class != NULL) {
		d->action = ACT_RESTRICTION;
		d->reply = decision_strdup(d, class);
	} else if (set->reject & bit) {
		d->action = ACT_REJECT;
		d->reply = spf_reply(cfg, d, v, 1, set->local);
	} else if (set->defer & bit) {
		d->action = ACT_DEFER_IF_PERMIT;
		d->reply = spf_reply(cfg, d, v, 0, set->local);
	} else if (cfg->spf_header == SPF_HEADER_NONE ||
	    cfg->spf_prospective[0] != '\0') {
		/* Prospective: mail about to leave gets no header. */
		d->action = ACT_DUNNO;
		d->reply = decision_strdup(d, "DUNNO");
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
	if (class != NULL) {
		buf_adds(&b, "; answered with restriction class ");
		buf_adds(&b, class);
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
	/* Every string is copied anew below: prev's pool is not ours. */
	d->pool_used = 0;
	d->client = decision_strdup(d, prev->client);
	d->instance = decision_strdup(d, prev->instance);
	d->spf_domain = decision_strdup(d, prev->spf_domain);
	d->spf_explanation = decision_strdup(d, prev->spf_explanation);
	d->warning = NULL;
	d->learn = LEARN_NONE;	/* one message is one piece of evidence */
	d->spf_need = 0;
	d->spf_helo = NULL;
	d->spf_helo_macro = NULL;
	d->spf_mailbox = NULL;
	d->spf_receiver = NULL;
	if (prev->action == ACT_PREPEND) {
		d->action = ACT_DUNNO;
		d->reply = decision_strdup(d, "DUNNO");
		d->reason = "already-answered";
		xasprintf(&d->explanation, "header already prepended for "
		    "instance %s", prev->instance);
		return (d);
	}
	d->reply = decision_strdup(d, prev->reply);
	d->explanation = decision_strdup(d, prev->explanation);
	return (d);
}
