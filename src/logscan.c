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

#include <sys/socket.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "natguard.h"

/*
 * natguard audit: read logs (syslog lines with any common prefix, and
 * audit_log JSON lines) one line at a time and count.  Memory grows with
 * the number of distinct values counted (reasons, gateways, domains), not
 * with the size of the log.
 */

struct tally {
	char		*key;
	uint64_t	 n;
};

struct counter {
	struct tally	*v;
	size_t		 n;
};

/*
 * A refusal of a private client (natguard's DEFER, DEFER_IF_PERMIT or
 * REJECT; Postfix's reject of an SPF or NAT text, natguard's or
 * postfix-policyd-spf-python's): what a hider cost.  At most
 * AUDIT_REFUSED_MAX are kept, the first ones; the count of the rest is
 * said.  A client refused for HIDER_MIN_DOMAINS unrelated sender domains
 * (hider_threshold's default) is a suspected hider.
 */
#define AUDIT_REFUSED_MAX	10000
#define HIDER_MIN_DOMAINS	3

struct refused {
	time_t		 t;
	char		*client;
	char		*from;
	char		*to;
	char		*reply;
};

struct suspect {
	char		*client;
	uint64_t	 refused;
	struct counter	 domains;	/* as sent: registrable ones at the end */
	size_t		 unrelated;	/* set by unrelated_domains() */
};

struct audit_sum {
	uint64_t	 decisions;
	time_t		 first;
	time_t		 last;
	time_t		 since;		/* 0: everything */
	struct counter	 by_action;
	struct counter	 by_reason;
	struct counter	 gateways;
	struct counter	 domains;	/* senders of NAT-affected mail */
	struct counter	 probe;
	uint64_t	 symptoms;
	int		 year;		/* for syslog stamps without one */
	struct refused	*ref;
	size_t		 nref;
	size_t		 refcap;
	uint64_t	 ref_dropped;
	struct suspect	*sus;
	size_t		 nsus;
	struct netlist	*private_nets;	/* private_networks' default */
	char		*last_client;	/* the last refusal's, as logged */
	struct suspect	*last_suspect;	/* its suspect; NULL: not private */
};

static void
count(struct counter *c, const char *key)
{
	size_t	i;

	for (i = 0; i < c->n; i++) {
		if (strcmp(c->v[i].key, key) == 0) {
			c->v[i].n++;
			return;
		}
	}
	c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
	c->v[c->n].key = xstrdup(key);
	c->v[c->n].n = 1;
	c->n++;
}

static void
counter_clear(struct counter *c)
{
	size_t	i;

	for (i = 0; i < c->n; i++)
		free(c->v[i].key);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

struct audit_sum *
audit_sum_new(time_t since)
{
	struct audit_sum	*s = xcalloc(1, sizeof(*s));
	struct tm		 tm;
	time_t			 now = time(NULL);

	struct config		*cfg = config_new();

	gmtime_r(&now, &tm);
	s->year = tm.tm_year + 1900;
	s->since = since;
	/* The log does not say what private_networks was: the default. */
	s->private_nets = cfg->private_networks;
	cfg->private_networks = NULL;
	config_free(cfg);
	return (s);
}

void
audit_sum_free(struct audit_sum *s)
{
	size_t	i;

	if (s == NULL)
		return;
	counter_clear(&s->by_action);
	counter_clear(&s->by_reason);
	counter_clear(&s->gateways);
	counter_clear(&s->domains);
	counter_clear(&s->probe);
	for (i = 0; i < s->nref; i++) {
		free(s->ref[i].client);
		free(s->ref[i].from);
		free(s->ref[i].to);
		free(s->ref[i].reply);
	}
	free(s->ref);
	for (i = 0; i < s->nsus; i++) {
		free(s->sus[i].client);
		counter_clear(&s->sus[i].domains);
	}
	free(s->sus);
	free(s->last_client);
	netlist_free(s->private_nets);
	free(s);
}

static time_t
parse_iso(const char *p)
{
	struct tm	tm;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(p, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) < 3)
		return (0);
	tm.tm_year -= 1900;
	tm.tm_mon--;
	return (timegm(&tm));
}

/* "2026-11-26", "2026-11-26T05:00:00[Z]": for --since. */
int
audit_parse_time(const char *s, time_t *out)
{
	if (strlen(s) < 10 || s[4] != '-' || s[7] != '-' ||
	    (*out = parse_iso(s)) == 0)
		return (-1);
	return (0);
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static long
days_from_civil(long y, unsigned int m, unsigned int d)
{
	long		era;
	unsigned int	yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned int)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + (long)doe - 719468);
}

/* Two digits at p, or -1. */
static int
two(const char *p)
{
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
		return (-1);
	return ((p[0] - '0') * 10 + (p[1] - '0'));
}

/*
 * "Mon DD HH:MM:SS" (DD may be " 2"), by hand: every line of a syslog
 * file has one, and sscanf with timegm cost a third of audit's time.
 */
static time_t
bsd_time(const struct audit_sum *s, const char *line)
{
	static const char	*months = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char		*m;
	int			 day, hh, mm, ss;

	if (strlen(line) < 15 || line[3] != ' ' || line[6] != ' ' ||
	    line[9] != ':' || line[12] != ':')
		return (0);
	if ((m = strstr(months, (char []){ line[0], line[1], line[2], '\0' }))
	    == NULL || (m - months) % 3 != 0)
		return (0);
	day = line[4] == ' ' ? (isdigit((unsigned char)line[5]) ?
	    line[5] - '0' : -1) : two(line + 4);
	if (day < 1 || (hh = two(line + 7)) < 0 || (mm = two(line + 10)) < 0 ||
	    (ss = two(line + 13)) < 0)
		return (0);
	return ((time_t)days_from_civil(s->year, (unsigned int)(m - months) /
	    3 + 1, (unsigned int)day) * 86400 + hh * 3600 + mm * 60 + ss);
}

/* The time a syslog line starts with: RFC 5424, ISO, or "Mon DD HH:MM:SS". */
static time_t
line_time(const struct audit_sum *s, const char *line)
{
	if (line[0] == '<') {
		/* <PRI>1 TIMESTAMP ... */
		if ((line = strchr(line, ' ')) == NULL)
			return (0);
		line++;
	}
	if (isdigit((unsigned char)line[0]))
		return (parse_iso(line));
	return (bsd_time(s, line));
}

static void
account(struct audit_sum *s, time_t t, const char *action, const char *reason,
    const char *client, const char *from, const char *probe)
{
	const char	*at;

	if (s->since != 0 && t != 0 && t < s->since)
		return;
	s->decisions++;
	if (t != 0 && (s->first == 0 || t < s->first))
		s->first = t;
	if (t > s->last)
		s->last = t;
	count(&s->by_action, action ? action : "?");
	count(&s->by_reason, reason ? reason : "?");
	if (reason == NULL || strcmp(reason, "nat-gateway") != 0)
		return;
	if (client != NULL)
		count(&s->gateways, client);
	if (from != NULL && (at = strrchr(from, '@')) != NULL) {
		char	*dom = xstrdup(at + 1), *gt;

		if ((gt = strchr(dom, '>')) != NULL)
			*gt = '\0';
		if (*dom != '\0')
			count(&s->domains, dom);
		free(dom);
	}
	if (probe != NULL)
		count(&s->probe, probe);
}

/*
 * The suspect of a private client, or of loopback (a tunnel on the mail
 * host); NULL for a public or bad address.
 */
static struct suspect *
suspect_of(struct audit_sum *s, const char *client)
{
	struct suspect	*u;
	struct addr	 a;
	char		 buf[INET6_ADDRSTRLEN];
	size_t		 i;

	/* A hider's refusals come in runs: the last answer is kept. */
	if (s->last_client != NULL && strcmp(s->last_client, client) == 0)
		return (s->last_suspect);
	free(s->last_client);
	s->last_client = xstrdup(client);
	s->last_suspect = NULL;
	if (addr_parse(client, &a) != 0 ||
	    (netlist_find(s->private_nets, &a) < 0 &&
	    !addr_same_host(NULL, &a)))
		return (NULL);
	addr_format(&a, buf, sizeof(buf));
	for (i = 0; i < s->nsus; i++)
		if (strcmp(s->sus[i].client, buf) == 0)
			return (s->last_suspect = &s->sus[i]);
	s->sus = xreallocarray(s->sus, s->nsus + 1, sizeof(*s->sus));
	u = &s->sus[s->nsus++];
	memset(u, 0, sizeof(*u));
	u->client = xstrdup(buf);
	return (s->last_suspect = u);
}

/*
 * A refused request of suspect u: counted, and kept for the list.  The
 * strings are the caller's, copied here; from and to without <>.
 */
static void
refusal(struct audit_sum *s, struct suspect *u, time_t t, const char *from,
    size_t fromlen, const char *to, size_t tolen, const char *reply,
    size_t replylen)
{
	struct refused	*r;
	const char	*at;

	u->refused++;
	/* Registrable domains are told apart once, at the end. */
	if (from != NULL && (at = memrchr(from, '@', fromlen)) != NULL &&
	    (size_t)(at + 1 - from) < fromlen) {
		char	dom[256];
		size_t	n = fromlen - (size_t)(at + 1 - from);

		if (n < sizeof(dom)) {
			memcpy(dom, at + 1, n);
			dom[n] = '\0';
			count(&u->domains, dom);
		}
	}
	if (s->nref >= AUDIT_REFUSED_MAX) {
		s->ref_dropped++;
		return;
	}
	if (s->nref == s->refcap) {
		s->refcap = s->refcap == 0 ? 64 : s->refcap * 2;
		s->ref = xreallocarray(s->ref, s->refcap, sizeof(*s->ref));
	}
	r = &s->ref[s->nref++];
	r->t = t;
	r->client = xstrdup(u->client);
	r->from = from != NULL ? xstrndup(from, fromlen) : NULL;
	r->to = to != NULL ? xstrndup(to, tolen) : NULL;
	r->reply = xstrndup(reply, replylen);
}

/* A private client's refusal in the time range, or NULL. */
static struct suspect *
refused_client(struct audit_sum *s, time_t t, const char *client)
{
	if ((s->since != 0 && t != 0 && t < s->since) || client == NULL)
		return (NULL);
	return (suspect_of(s, client));
}

/* What natguard's refusals look like in the log: "DEFER (reason)". */
static int
refusing(const char *action)
{
	return (action != NULL && (strcmp(action, "REJECT") == 0 ||
	    strcmp(action, "DEFER") == 0 ||
	    strcmp(action, "DEFER_IF_PERMIT") == 0));
}

/* "<a@b>" as the log line writes it: "a@b" (a pointer into v). */
static const char *
unangle(const char *v, size_t *len)
{
	size_t	n;

	if (v == NULL)
		return (NULL);
	n = strlen(v);
	if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
		*len = n - 2;
		return (v + 1);
	}
	*len = n;
	return (v);
}

/*
 * Mail natguard answered without SPF for loopback (skip_addresses,
 * mynetworks), from before it watched loopback: a tunnel or local proxy
 * carries many unrelated domains from there, none of them refused.  Its
 * domains count towards suspecting it; nothing is listed as refused.
 */
static void
loopback_carried(struct audit_sum *s, time_t t, const char *reason,
    const char *client, const char *from)
{
	struct suspect	*u;
	struct addr	 a;
	const char	*f, *at;
	char		 dom[256];
	size_t		 fl = 0, n;

	if (reason == NULL || (strcmp(reason, "skip-address") != 0 &&
	    strcmp(reason, "mynetworks") != 0) || client == NULL ||
	    addr_parse(client, &a) != 0 || !addr_same_host(NULL, &a) ||
	    (u = refused_client(s, t, client)) == NULL ||
	    (f = unangle(from, &fl)) == NULL ||
	    (at = memrchr(f, '@', fl)) == NULL)
		return;
	n = fl - (size_t)(at + 1 - f);
	if (n == 0 || n >= sizeof(dom))
		return;
	memcpy(dom, at + 1, n);
	dom[n] = '\0';
	count(&u->domains, dom);
}

static void
natguard_refusal(struct audit_sum *s, time_t t, const char *action,
    const char *reason, const char *client, const char *from, const char *to)
{
	struct suspect	*u;
	const char	*f, *r;
	char		 reply[80];
	size_t		 fl = 0, rl = 0;
	int		 n;

	if (!refusing(action) || (u = refused_client(s, t, client)) == NULL)
		return;
	n = snprintf(reply, sizeof(reply), "%s (%s)", action,
	    reason ? reason : "?");
	f = unangle(from, &fl);
	r = unangle(to, &rl);
	refusal(s, u, t, f, fl, r, rl, reply, n < 0 ? 0 : n >= (int)sizeof(
	    reply) ? sizeof(reply) - 1 : (size_t)n);
}

/* <...> of "key=<...>" in a Postfix log line: where and how long. */
static const char *
angle(const char *p, const char *key, size_t *len)
{
	const char	*q, *e;

	if ((q = strstr(p, key)) == NULL || (e = strchr(q + strlen(key),
	    '>')) == NULL)
		return (NULL);
	q += strlen(key);
	*len = (size_t)(e - q);
	return (q);
}

/*
 * Postfix's "NOQUEUE: reject: RCPT from HOST[ADDR]: 450 4.7.23 <rcpt>:
 * Recipient address rejected: TEXT; from=<...> to=<...> ...", where TEXT
 * is SPF's or NAT's (natguard's, or postfix-policyd-spf-python's
 * "Message rejected due to: SPF fail").
 */
static void
postfix_refusal(struct audit_sum *s, const char *line)
{
	struct suspect	*u;
	const char	*p, *lb, *rb, *semi, *f, *r;
	char		 client[INET6_ADDRSTRLEN + 16];
	size_t		 fl = 0, rl = 0;
	time_t		 t;

	if ((p = strstr(line, "reject: RCPT from ")) == NULL ||
	    (lb = strchr(p, '[')) == NULL || (rb = strchr(lb, ']')) == NULL ||
	    strncmp(rb, "]: ", 3) != 0 ||
	    (size_t)(rb - lb - 1) >= sizeof(client))
		return;
	if ((semi = strstr(rb, "; from=<")) == NULL)
		semi = rb + strlen(rb);
	if (memmem(rb, (size_t)(semi - rb), "SPF", 3) == NULL &&
	    memmem(rb, (size_t)(semi - rb), "NAT", 3) == NULL)
		return;
	memcpy(client, lb + 1, (size_t)(rb - lb - 1));
	client[rb - lb - 1] = '\0';
	if ((u = refused_client(s, t = line_time(s, line), client)) == NULL)
		return;
	f = angle(semi, "from=<", &fl);
	r = angle(semi, "to=<", &rl);
	refusal(s, u, t, f, fl, r, rl, rb + 3,
	    (size_t)(semi - rb - 3));
}

/* Value of key= in a natguard log line (quoted or not), allocated. */
static char *
kv(const char *p, const char *key)
{
	struct buf	 b = { NULL, 0, 0 };
	size_t		 klen = strlen(key);
	const char	*q;

	for (q = p; (q = strstr(q, key)) != NULL; q += klen) {
		if ((q == p || q[-1] == ' ') && q[klen] == '=')
			break;
	}
	if (q == NULL)
		return (NULL);
	q += klen + 1;
	buf_add(&b, "", 0);
	if (*q != '"') {
		buf_add(&b, q, strcspn(q, " "));
		return (buf_take(&b));
	}
	for (q++; *q != '\0' && *q != '"'; q++) {
		if (*q == '\\' && q[1] != '\0')
			q++;
		buf_add(&b, q, 1);
	}
	return (buf_take(&b));
}

/* Postfix's own SPF rejection of a private gateway-like address. */
static int
postfix_symptom(const char *line)
{
	const char	*p, *lb, *rb;
	char		 addr[64];
	struct addr	 a;
	size_t		 len;

	if ((p = strstr(line, "reject: RCPT from ")) == NULL ||
	    (strstr(p, " 5.7.23") == NULL && strstr(p, "SPF") == NULL))
		return (0);
	if ((lb = strchr(p, '[')) == NULL || (rb = strchr(lb, ']')) == NULL ||
	    (len = rb - lb - 1) >= sizeof(addr))
		return (0);
	memcpy(addr, lb + 1, len);
	addr[len] = '\0';
	if (addr_parse(addr, &a) != 0)
		return (0);
	/* Docker's gateways: the first host of a private network. */
	if (a.family == AF_INET)
		return ((a.bytes[0] == 10 || (a.bytes[0] == 172 &&
		    (a.bytes[1] & 0xf0) == 16) || (a.bytes[0] == 192 &&
		    a.bytes[1] == 168)) && a.bytes[3] == 1);
	return ((a.bytes[0] & 0xfe) == 0xfc && a.bytes[15] == 1);
}

static void
scan_json(struct audit_sum *s, const char *line)
{
	json_t		*o;
	const char	*probe = NULL, *t;

	if ((o = json_loads(line, 0, NULL)) == NULL)
		return;
	if (json_is_string(json_object_get(o, "spf_probe")) ||
	    json_is_true(json_object_get(o, "spf_probe")))
		probe = json_string_value(json_object_get(o, "spf"));
	t = json_string_value(json_object_get(o, "time"));
	if (json_string_value(json_object_get(o, "action")) != NULL) {
		account(s, parse_iso(t ? t : ""),
		    json_string_value(json_object_get(o, "action")),
		    json_string_value(json_object_get(o, "reason")),
		    json_string_value(json_object_get(o, "client")),
		    json_string_value(json_object_get(o, "from")), probe);
		natguard_refusal(s, parse_iso(t ? t : ""),
		    json_string_value(json_object_get(o, "action")),
		    json_string_value(json_object_get(o, "reason")),
		    json_string_value(json_object_get(o, "client")),
		    json_string_value(json_object_get(o, "from")),
		    json_string_value(json_object_get(o, "to")));
		if (!refusing(json_string_value(json_object_get(o,
		    "action"))))
			loopback_carried(s, parse_iso(t ? t : ""),
			    json_string_value(json_object_get(o, "reason")),
			    json_string_value(json_object_get(o, "client")),
			    json_string_value(json_object_get(o, "from")));
	}
	json_decref(o);
}

/* One line of a log. */
void
audit_sum_line(struct audit_sum *s, const char *line)
{
	const char	*p;
	char		*action, *reason, *client, *from, *spf, *probe, *to;
	time_t		 t;


	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '{') {
		scan_json(s, line);
		return;
	}
	postfix_refusal(s, line);
	if (postfix_symptom(line)) {
		if (s->since == 0 || line_time(s, line) >= s->since)
			s->symptoms++;
		return;
	}
	if ((p = strstr(line, "natguard")) == NULL ||
	    (p = strstr(p, ": action=")) == NULL)
		return;
	action = kv(p + 2, "action");
	reason = kv(p + 2, "reason");
	client = kv(p + 2, "client");
	from = kv(p + 2, "from");
	spf = kv(p + 2, "spf");
	probe = kv(p + 2, "spf_probe");
	t = line_time(s, line);
	account(s, t, action, reason, client, from,
	    probe != NULL && strcmp(probe, "yes") == 0 ? spf : NULL);
	if (refusing(action)) {
		to = kv(p + 2, "to");
		natguard_refusal(s, t, action, reason, client, from, to);
		free(to);
	} else
		loopback_carried(s, t, reason, client, from);
	free(action);
	free(reason);
	free(client);
	free(from);
	free(spf);
	free(probe);
}

static json_t *
counter_json(const struct counter *c)
{
	json_t	*o = json_object();
	size_t	 i;

	for (i = 0; i < c->n; i++)
		json_object_set_new(o, c->v[i].key, json_integer(
		    (json_int_t)c->v[i].n));
	return (o);
}

static json_t *
time_json(time_t t)
{
	struct tm	tm;
	char		buf[32];

	if (t == 0)
		return (json_null());
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return (json_string(buf));
}

/* How many unrelated (registrable) domains each suspect was refused for. */
static void
unrelated_domains(const struct audit_sum *s)
{
	struct counter	 regs;
	char		 reg[256];
	size_t		 i, j;

	for (i = 0; i < s->nsus; i++) {
		memset(&regs, 0, sizeof(regs));
		for (j = 0; j < s->sus[i].domains.n; j++)
			if (registrable_domain(s->sus[i].domains.v[j].key, reg,
			    sizeof(reg)) != NULL)
				count(&regs, reg);
		s->sus[i].unrelated = regs.n;
		counter_clear(&regs);
	}
}

static const struct suspect *
suspected(const struct audit_sum *s, const char *client)
{
	size_t	i;

	for (i = 0; i < s->nsus; i++)
		if (strcmp(s->sus[i].client, client) == 0)
			return (s->sus[i].unrelated >= HIDER_MIN_DOMAINS ?
			    &s->sus[i] : NULL);
	return (NULL);
}

static json_t *
str_json(const char *v)
{
	return (v != NULL ? json_string(v) : json_null());
}

/* suspected_hiders and refused_mail (the mail those cost). */
static void
hiders_json(const struct audit_sum *s, json_t *o)
{
	json_t	*sus = json_object(), *ref = json_array();
	size_t	 i;

	unrelated_domains(s);
	for (i = 0; i < s->nsus; i++) {
		if (s->sus[i].unrelated < HIDER_MIN_DOMAINS)
			continue;
		json_object_set_new(sus, s->sus[i].client, json_pack(
		    "{s:I, s:I}", "refused", (json_int_t)s->sus[i].refused,
		    "domains", (json_int_t)s->sus[i].unrelated));
	}
	for (i = 0; i < s->nref; i++) {
		if (suspected(s, s->ref[i].client) == NULL)
			continue;
		json_array_append_new(ref, json_pack("{s:o, s:s, s:o, s:o, "
		    "s:o}", "time", time_json(s->ref[i].t), "client",
		    s->ref[i].client, "from", str_json(s->ref[i].from), "to",
		    str_json(s->ref[i].to), "reply", str_json(s->ref[i].reply)));
	}
	json_object_set_new(o, "suspected_hiders", sus);
	json_object_set_new(o, "refused_mail", ref);
	if (s->ref_dropped > 0)
		json_object_set_new(o, "refused_mail_not_listed",
		    json_integer((json_int_t)s->ref_dropped));
}

/* The object of SPEC section 6. */
json_t *
audit_sum_json(const struct audit_sum *s)
{
	json_t	*o;

	o = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}",
	    "decisions", (json_int_t)s->decisions,
	    "first", time_json(s->first),
	    "last", time_json(s->last),
	    "by_action", counter_json(&s->by_action),
	    "by_reason", counter_json(&s->by_reason),
	    "gateways", counter_json(&s->gateways),
	    "sender_domains", counter_json(&s->domains),
	    "spf_probe", counter_json(&s->probe),
	    "postfix_symptoms", (json_int_t)s->symptoms);
	hiders_json(s, o);
	return (o);
}
