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
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <event2/event.h>
#include <netdb.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "natguard.h"

/*
 * SPF evaluation on libspf2, without ever blocking the loop.
 *
 * libspf2 asks its DNS layer synchronously.  Ours answers from the
 * answers this evaluation already holds, or from the cache; any other
 * name is noted and answered TRY_AGAIN.  After the pass the noted names
 * are resolved asynchronously, and the evaluation runs again with them,
 * until a pass needs nothing new.
 *
 * libspf2's quirks stay in this file: its error handler must not return
 * (libspf2 calls abort() after it), so ours jumps back to the pass that
 * was running; TRY_AGAIN comes back as SPF_RESULT_INVALID, so a temporary
 * DNS failure is tracked here and turned into temperror.
 */

#define SPF_MAX_PASSES	40
#define SPF_KEY_MAX	1024	/* a longer key: no warm path, spf_run() */
#define SPF_CACHE_WAYS	4	/* slots a key may take: see cache_set() */
#define SPF_MAX_TERMS	10	/* RFC 7208 4.6.4 */
#define SPF_MAX_PTR_NAMES 10	/* RFC 7208 4.6.4 */

struct spf_pin {
	char			*name;
	int			 type;
	struct dns_answer	*answer;
};

struct spf_wait {
	struct spf_query	*q;
	char			*name;
	int			 type;
	struct dns_waiter	*w;
};

struct spf_query {
	struct spf		*spf;
	int			 background;	/* see dns_query_prio() */
	struct addr		 client;
	char			*helo;
	char			*mailbox;	/* the identity, as a mailbox */
	enum spf_identity	 identity;
	struct spf_pin		*pins;
	size_t			 npins;
	struct spf_wait		**waits;	/* names this pass lacked */
	size_t			 nwaits;
	size_t			 outstanding;
	int			 tempfail;	/* a DNS answer failed */
	int			 terms;		/* DNS terms this pass (4.6.4) */
	int			 voids;		/* of which answered empty */
	struct strlist		 subnames;	/* MX and PTR targets */
	struct strlist		 ptrnames;	/* PTR targets */
	struct strlist		 expnames;	/* exp= domains seen */
	struct strlist		 chunks;	/* see struct spf_norm */
	int			 chunk_calls;	/* this pass */
	char			*why;		/* a record refused, why */
	int			 seen_own;	/* the identity's record */
	int			 passes;
	struct event		*timer;
	struct event		*start;
	char			*key;		/* for the result cache */
	uint32_t		 hash;
	int			 hit;		/* answered from the cache: */
	struct spf_verdict	 hitv;		/* a copy, slots get reused */
	spf_cb			 cb;
	void			*arg;
	jmp_buf			 jb;
};

/*
 * Results, for as long as the shortest TTL of the answers they came from:
 * the same sender from the same client (every recipient of a message, a
 * mailing list's next message) costs no evaluation.  Direct-mapped: a
 * slot is overwritten by the next key that hashes to it.
 */
struct spf_cached {
	char			*key;		/* NULL: empty slot */
	uint32_t		 hash;
	enum spf_result		 result;
	char			*domain;
	char			*explanation;
	char			*comment;
	int			 no_mail;
	time_t			 expires;
};

struct spf {
	struct event_base	*base;
	struct dns		*dns;
	SPF_server_t		*server;
	SPF_dns_server_t	 layer;
	uint64_t		 timeout;
	uint64_t		 void_limit;	/* RFC 7208 4.6.4: 2 */
	struct spf_cached	*cache;
	size_t			 ncache;	/* a power of two, or 0 */
};

/* The query whose pass is running, for the DNS layer and the handler. */
static struct spf_query	*spf_running;

static void	spf_pass(struct spf_query *);
static void	reverse_name(const struct addr *, char *, size_t);

static NG_DEAD void
spf_error_handler(const char *file, int line, const char *msg)
{
	if (spf_running == NULL)
		fatalx("libspf2: %s:%d: %s", file ? file : "?", line, msg);
	log_error("libspf2: %s:%d: %s", file ? file : "?", line, msg);
	longjmp(spf_running->jb, 1);
}

static void
spf_warning_handler(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	log_debug("libspf2: %s", msg);
}

static struct dns_answer *
pin_find(struct spf_query *q, const char *name, int type)
{
	size_t	i;

	for (i = 0; i < q->npins; i++)
		if (q->pins[i].type == type && strcmp(q->pins[i].name, name) == 0)
			return (q->pins[i].answer);
	return (NULL);
}

/* Keep an answer for the rest of this evaluation; takes the reference. */
static void
pin_add(struct spf_query *q, const char *name, int type, struct dns_answer *a)
{
	q->pins = xreallocarray(q->pins, q->npins + 1, sizeof(*q->pins));
	q->pins[q->npins].name = xstrdup(name);
	q->pins[q->npins].type = type;
	q->pins[q->npins].answer = a;
	q->npins++;
}

/* Note a name this pass lacked (once). */
static void
wait_note(struct spf_query *q, const char *name, int type)
{
	size_t	i;

	for (i = 0; i < q->nwaits; i++)
		if (q->waits[i]->type == type &&
		    strcmp(q->waits[i]->name, name) == 0)
			return;
	q->waits = xreallocarray(q->waits, q->nwaits + 1, sizeof(*q->waits));
	q->waits[q->nwaits] = xcalloc(1, sizeof(**q->waits));
	q->waits[q->nwaits]->q = q;
	q->waits[q->nwaits]->name = xstrdup(name);
	q->waits[q->nwaits]->type = type;
	q->nwaits++;
}

static void
waits_clear(struct spf_query *q)
{
	size_t	i;

	for (i = 0; i < q->nwaits; i++) {
		dns_cancel(q->waits[i]->w);
		free(q->waits[i]->name);
		free(q->waits[i]);
	}
	free(q->waits);
	q->waits = NULL;
	q->nwaits = 0;
	q->outstanding = 0;
}

/* The exp= domain of a record (without macros), not a term's lookup. */
static void
note_exp(struct spf_query *q, const char *record)
{
	const char	*p = record, *e;
	char		*name, *key;

	while ((p = strstr(p, " exp=")) != NULL) {
		p += 5;
		for (e = p; *e != '\0' && *e != ' '; e++)
			;
		name = xstrndup(p, e - p);
		if (strchr(name, '%') == NULL) {
			key = dns_name(name);
			strlist_add(&q->expnames, key);
			free(key);
		}
		free(name);
	}
}

/*
 * An answer for this pass: pinned, or cached and then pinned; NULL, and
 * the name noted for the next pass, when neither.
 */
static struct dns_answer *
pass_answer(struct spf_query *q, const char *name, int type)
{
	struct dns_answer	*a;
	char			*key = dns_name(name);

	if ((a = pin_find(q, key, type)) == NULL &&
	    (a = dns_cached(q->spf->dns, key, type)) != NULL)
		pin_add(q, key, type, a);
	if (a == NULL)
		wait_note(q, key, type);
	free(key);
	return (a);
}

static int
answer_holds(const struct dns_answer *a, const struct addr *client)
{
	size_t	i, len = client->family == AF_INET ? 4 : 16;

	if (a->status != DNS_OK)
		return (0);
	for (i = 0; i < a->n; i++)
		if (a->rr[i].len == len &&
		    memcmp(a->rr[i].data, client->bytes, len) == 0)
			return (1);
	return (0);
}

/*
 * %{p} (RFC 7208 7.3), for spfrecord.c's expansion: of the client's
 * validated names (a PTR name with the client's address), the domain,
 * else a subdomain of it, else the first; "unknown" without one.  NULL
 * while an answer is missing: the next pass has it.  These lookups are
 * the macro's, not a term's, and are not counted (4.6.4).
 */
static const char *
query_p(void *arg, const char *domain)
{
	struct spf_query	*q = arg;
	struct dns_answer	*ptr, *a;
	const char		*name, *first = NULL, *sub = NULL;
	char			 rev[80];
	size_t			 i, nlen, dlen = strlen(domain);
	int			 missing = 0, type;

	type = q->client.family == AF_INET ? DNS_T_A : DNS_T_AAAA;
	reverse_name(&q->client, rev, sizeof(rev));
	if ((ptr = pass_answer(q, rev, DNS_T_PTR)) == NULL)
		return (NULL);
	for (i = 0; ptr->status == DNS_OK && i < ptr->n &&
	    i < SPF_MAX_PTR_NAMES; i++) {
		name = ptr->rr[i].data;
		if ((a = pass_answer(q, name, type)) == NULL) {
			missing = 1;
			continue;
		}
		if (!answer_holds(a, &q->client))
			continue;
		nlen = strlen(name);
		if (strcasecmp(name, domain) == 0)
			return (name);
		if (sub == NULL && nlen > dlen && name[nlen - dlen - 1] == '.' &&
		    strcasecmp(name + nlen - dlen, domain) == 0)
			sub = name;
		if (first == NULL)
			first = name;
	}
	if (missing)
		return (NULL);
	return (sub != NULL ? sub : first != NULL ? first : "unknown");
}

/* The macros' values for the record of domain; ip is their buffer. */
static void
macros_for(struct spf_query *q, const char *domain, struct spf_macros *m,
    char *ip, size_t size)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, n = 0;

	memset(m, 0, sizeof(*m));
	m->sender = q->mailbox;
	m->domain = domain;
	m->helo = q->helo;
	m->v6 = q->client.family == AF_INET6;
	m->p = query_p;
	m->arg = q;
	m->ip = ip;
	if (!m->v6) {
		addr_format(&q->client, ip, size);
		return;
	}
	for (i = 0; i < 16 && n + 4 < size; i++) {
		ip[n++] = hex[q->client.bytes[i] >> 4];
		ip[n++] = '.';
		ip[n++] = hex[q->client.bytes[i] & 0xf];
		ip[n++] = '.';
	}
	ip[n - 1] = '\0';
}

/*
 * A chunk of a record too long for libspf2 (struct spf_norm): its name,
 * "c<index>" SPF_CHUNK_SUFFIX, which chunk_answer() answers with its text.
 * libspf2 counts each redirect= to one among its DNS mechanisms, so its
 * limit is raised by one for each: RFC 7208 4.6.4's 10 stay the records'.
 */
static const char *
chunk_add(void *arg, const char *text)
{
	static char		 name[64];
	struct spf_query	*q = arg;
	size_t			 i;

	for (i = 0; i < q->chunks.n; i++)
		if (strcmp(q->chunks.v[i], text) == 0)
			break;
	if (i == q->chunks.n)
		strlist_add(&q->chunks, text);
	q->chunk_calls++;
	if (SPF_server_set_max_dns_mech(q->spf->server,
	    SPF_MAX_TERMS + q->chunk_calls) != SPF_E_SUCCESS)
		fatalx("SPF_server_set_max_dns_mech");
	snprintf(name, sizeof(name), "c%zu" SPF_CHUNK_SUFFIX, i);
	return (name);
}

/* The TXT answer for a chunk's name; NULL: domain is not one. */
static SPF_dns_rr_t *
chunk_answer(SPF_dns_server_t *layer, struct spf_query *q, const char *domain)
{
	SPF_dns_rr_t	*rr;
	size_t		 len = strlen(domain), slen = strlen(SPF_CHUNK_SUFFIX);
	uint64_t	 i;
	char		 num[24];

	if (len <= slen || strcasecmp(domain + len - slen,
	    SPF_CHUNK_SUFFIX) != 0)
		return (NULL);
	len -= slen;
	if (domain[0] != 'c' || len < 2 || len - 1 >= sizeof(num))
		i = UINT64_MAX;
	else {
		memcpy(num, domain + 1, len - 1);
		num[len - 1] = '\0';
		if (parse_u64(num, 0, UINT64_MAX, &i) != 0)
			i = UINT64_MAX;
	}
	if (i >= q->chunks.n)
		return (SPF_dns_rr_new_init(layer, domain, ns_t_txt, 0,
		    HOST_NOT_FOUND));
	if ((rr = SPF_dns_rr_new_init(layer, domain, ns_t_txt, 0,
	    NETDB_SUCCESS)) == NULL)
		fatalx("SPF_dns_rr_new_init");
	len = strlen(q->chunks.v[i]) + 1;
	if (SPF_dns_rr_buf_realloc(rr, 0, len) != SPF_E_SUCCESS)
		fatalx("SPF_dns_rr_buf_realloc");
	memcpy(rr->rr[0], q->chunks.v[i], len);
	rr->num_rr = 1;
	note_exp(q, q->chunks.v[i]);
	return (rr);
}

/* An answer in libspf2's form. */
static SPF_dns_rr_t *
rr_from(SPF_dns_server_t *layer, const char *domain, ns_type type,
    const struct dns_answer *a, struct spf_query *q, int exp)
{
	SPF_dns_rr_t	*rr;
	struct spf_macros m;
	struct spf_norm	 nm;
	const char	*data;
	char		*norm, ip[80];
	size_t		 i, n, len;
	int		 herrno = NETDB_SUCCESS;

	switch (a->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
		herrno = HOST_NOT_FOUND;
		break;
	case DNS_NODATA:
		herrno = NO_DATA;
		break;
	case DNS_TEMPFAIL:
		herrno = TRY_AGAIN;
		break;
	}
	rr = SPF_dns_rr_new_init(layer, domain, type, 0, herrno);
	if (rr == NULL)
		fatalx("SPF_dns_rr_new_init");
	if (a->status != DNS_OK)
		return (rr);
	/*
	 * RFC 7208 4.6.4: of a PTR answer's names, all but the first 10 MUST
	 * be ignored.  libspf2 answers permerror past 10 instead, so that the
	 * result depended on where a server's round robin put the name.
	 */
	n = a->n;
	if (type == ns_t_ptr && n > SPF_MAX_PTR_NAMES)
		n = SPF_MAX_PTR_NAMES;
	if (type == ns_t_txt) {
		macros_for(q, domain, &m, ip, sizeof(ip));
		nm.chunk = chunk_add;
		nm.arg = q;
	}
	for (i = 0; i < n; i++) {
		data = a->rr[i].data;
		len = (type == ns_t_a || type == ns_t_aaaa) ? a->rr[i].len :
		    a->rr[i].len + 1;
		/* SPF records as RFC 7208 reads them: see spfrecord.c. */
		norm = NULL;
		if (type == ns_t_txt &&
		    (norm = spf_record_normalise(data, a->rr[i].len,
		    q->client.family == AF_INET6, &m, &nm)) != NULL) {
			if (nm.why[0] != '\0' && q->why == NULL)
				q->why = xstrdup(nm.why);
			note_exp(q, norm);
			data = norm;
			len = strlen(norm) + 1;
		}
		if (exp && !spf_text_safe(data)) {
			/* Read as an explanation, it would overflow. */
			if (q->why == NULL)
				xasprintf(&q->why, "a TXT record of %s is "
				    "longer than natguard's SPF library can "
				    "read safely", domain);
			data = norm != NULL ? SPF_RECORD_INVALID : "";
			len = strlen(data) + 1;
		}
		if (SPF_dns_rr_buf_realloc(rr, (int)i, len) != SPF_E_SUCCESS)
			fatalx("SPF_dns_rr_buf_realloc");
		memcpy(rr->rr[i], data, len);
		free(norm);
	}
	rr->num_rr = (int)n;
	return (rr);
}

/*
 * The answer for a name spfrecord.c marked with SPF_CIDR0_SUFFIX: an a or
 * mx term of prefix length 0, which matches any client of the family when
 * the domain has any address of it.  Its A or AAAA lookup is answered with
 * the client's own address when the domain has any (libspf2 then matches
 * the whole address), else as the domain's was; its MX lookup is the
 * domain's, each host marked in turn.  a is the answer for the unmarked
 * name.
 */
static SPF_dns_rr_t *
rr_cidr0(SPF_dns_server_t *layer, const char *domain, ns_type type,
    const struct dns_answer *a, struct spf_query *q)
{
	SPF_dns_rr_t	*rr;
	size_t		 i, len;
	int		 fam = type == ns_t_a ? AF_INET : AF_INET6;

	if (a->status != DNS_OK || a->n == 0 || (type != ns_t_mx &&
	    ((type != ns_t_a && type != ns_t_aaaa) ||
	    fam != q->client.family)))
		return (rr_from(layer, domain, type, a, q, 0));
	if ((rr = SPF_dns_rr_new_init(layer, domain, type, 0,
	    NETDB_SUCCESS)) == NULL)
		fatalx("SPF_dns_rr_new_init");
	if (type != ns_t_mx) {
		len = fam == AF_INET ? 4 : 16;
		if (SPF_dns_rr_buf_realloc(rr, 0, len) != SPF_E_SUCCESS)
			fatalx("SPF_dns_rr_buf_realloc");
		memcpy(rr->rr[0], q->client.bytes, len);
		rr->num_rr = 1;
		return (rr);
	}
	for (i = 0; i < a->n; i++) {
		len = a->rr[i].len + sizeof(SPF_CIDR0_SUFFIX);
		if (SPF_dns_rr_buf_realloc(rr, (int)i, len) != SPF_E_SUCCESS)
			fatalx("SPF_dns_rr_buf_realloc");
		snprintf((char *)rr->rr[i], len, "%s%s", a->rr[i].data,
		    SPF_CIDR0_SUFFIX);
	}
	rr->num_rr = (int)a->n;
	return (rr);
}

/* A name DNS cannot carry (RFC 1035 2.3.4) does not exist: no query. */
static int
name_valid(const char *name)
{
	const char	*p = name, *dot;
	size_t		 label, len = strlen(name);

	if (len == 0 || len - (name[len - 1] == '.') > 253)
		return (0);
	for (;;) {
		dot = strchr(p, '.');
		label = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (label > 63)
			return (0);
		if (label == 0)	/* only a final dot may end a label */
			return (dot == NULL && p != name);
		if (dot == NULL)
			return (1);
		p = dot + 1;
	}
}

/*
 * RFC 7208 4.6.4, which libspf2 does not enforce: at most 10 terms that
 * cost a DNS lookup (include, a, mx, ptr, exists, redirect), at most 2 of
 * them answered empty.  Counted from the lookups libspf2 makes: the
 * identity's own record is not a term, nor are the address lookups of MX
 * and PTR targets, nor the TXT of an exp=.
 */
static void
count_term(struct spf_query *q, const char *name, int type,
    const struct dns_answer *a)
{
	const char	*at = strrchr(q->mailbox, '@');
	size_t		 i;

	if (type == DNS_T_TXT && (q->terms == 0 && q->voids == 0 &&
	    at != NULL && strcasecmp(name, at + 1) == 0 && !q->seen_own)) {
		q->seen_own = 1;
		return;
	}
	if ((type == DNS_T_A || type == DNS_T_AAAA) &&
	    strlist_contains(&q->subnames, name))
		return;
	if (type == DNS_T_TXT && strlist_contains(&q->expnames, name))
		return;
	q->terms++;
	if (a->status == DNS_NXDOMAIN || a->status == DNS_NODATA)
		q->voids++;
	/* An mx term whose MX lookup holds more than 10 names: permerror. */
	if (type == DNS_T_MX && a->n > SPF_MAX_TERMS)
		q->terms = SPF_MAX_TERMS + 1 + q->terms;
	if ((type == DNS_T_MX || type == DNS_T_PTR) && a->status == DNS_OK)
		for (i = 0; i < a->n; i++) {
			strlist_add(&q->subnames, a->rr[i].data);
			if (type == DNS_T_PTR)
				strlist_add(&q->ptrnames, a->rr[i].data);
		}
}

/*
 * A DNS error ends the evaluation in temperror (RFC 7208 5), but for these
 * lookups: the PTR of the client and the addresses of its names, where an
 * error is no match (5.5, and "unknown" for %{p}, 7.3), and the TXT of an
 * exp=, where it is no explanation (6.2).
 */
static int
tempfail_harmless(struct spf_query *q, const char *name, int type)
{
	if (type == DNS_T_PTR)
		return (1);
	if ((type == DNS_T_A || type == DNS_T_AAAA) &&
	    strlist_contains(&q->ptrnames, name))
		return (1);
	return (type == DNS_T_TXT && strlist_contains(&q->expnames, name));
}

static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type,
    int should_cache)
{
	struct spf_query	*q = spf_running;
	struct spf		*spf = layer->hook;
	struct dns_answer	*a;
	SPF_dns_rr_t		*rr;
	char			*name;
	size_t			 nlen, slen;
	int			 cidr0, exp;

	(void)should_cache;
	if (q == NULL || domain == NULL)
		return (SPF_dns_rr_new_init(layer, domain ? domain : "", type,
		    0, TRY_AGAIN));
	if (type == ns_t_txt && (rr = chunk_answer(layer, q, domain)) != NULL)
		return (rr);
	if (!name_valid(domain))
		return (SPF_dns_rr_new_init(layer, domain, type, 0,
		    HOST_NOT_FOUND));
	name = dns_name(domain);
	/* A marked name is looked up as the domain it marks. */
	nlen = strlen(name);
	slen = sizeof(SPF_CIDR0_SUFFIX) - 1;
	if ((cidr0 = nlen > slen &&
	    strcmp(name + nlen - slen, SPF_CIDR0_SUFFIX) == 0))
		name[nlen - slen] = '\0';
	if ((a = pin_find(q, name, type)) == NULL &&
	    (a = dns_cached(spf->dns, name, type)) != NULL)
		pin_add(q, name, type, a);
	if (a == NULL) {
		wait_note(q, name, type);
		free(name);
		return (SPF_dns_rr_new_init(layer, domain, type, 0,
		    TRY_AGAIN));
	}
	count_term(q, name, type, a);
	if (a->status == DNS_TEMPFAIL && tempfail_harmless(q, name, type)) {
		/* As if there were nothing: see tempfail_harmless(). */
		free(name);
		return (SPF_dns_rr_new_init(layer, domain, type, 0,
		    HOST_NOT_FOUND));
	}
	if (a->status == DNS_TEMPFAIL)
		q->tempfail = 1;
	exp = type == ns_t_txt && strlist_contains(&q->expnames, name);
	free(name);
	if (cidr0)
		return (rr_cidr0(layer, domain, type, a, q));
	rr = rr_from(layer, domain, type, a, q, exp);
	return (rr);
}

static void
layer_destroy(SPF_dns_server_t *layer)
{
	(void)layer;	/* part of struct spf */
}

static void
cached_clear(struct spf_cached *c)
{
	free(c->key);
	free(c->domain);
	free(c->explanation);
	free(c->comment);
	memset(c, 0, sizeof(*c));
}

/* The monotonic clock, as dns_now(): cached verdicts expire with their
 * answers. */
static time_t
spf_now(const struct spf *spf)
{
	struct timeval	tv;

	if (event_gettime_monotonic(spf->base, &tv) == -1)
		fatalx("spf: event_gettime_monotonic");
	return (tv.tv_sec);
}

/*
 * The result cache's key: everything an evaluation reads (identity, the
 * client address formatted, the mailbox, the HELO name as sent).  Written
 * to dst when it fits in size; returns the size it needs, NUL included.
 */
static size_t
cache_key(char *dst, size_t size, enum spf_identity id, const char *abuf,
    const char *mailbox, const char *helo)
{
	size_t	la = strlen(abuf), lm = strlen(mailbox), lh;
	char	*p = dst;

	if (helo == NULL)
		helo = "";
	lh = strlen(helo);
	if (2 + la + 1 + lm + 1 + lh + 1 > size)
		return (2 + la + 1 + lm + 1 + lh + 1);
	*p++ = (char)('0' + (int)id);
	*p++ = ' ';
	memcpy(p, abuf, la);
	p += la;
	*p++ = ' ';
	memcpy(p, mailbox, lm);
	p += lm;
	*p++ = ' ';
	memcpy(p, helo, lh + 1);
	return (p + lh + 1 - dst);
}

/* FNV-1a of a cache key. */
static uint32_t
key_hash(const char *key)
{
	uint32_t	h = 2166136261u;

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return (h);
}

/*
 * The result cache is set-associative: a key may sit in any of the
 * SPF_CACHE_WAYS slots of its set.  Direct-mapped, 2000 keys in 16384
 * slots made one in nine collide and evict each other at every use.
 */
static struct spf_cached *
cache_set(struct spf *spf, uint32_t hash)
{
	return (&spf->cache[(hash & (spf->ncache / SPF_CACHE_WAYS - 1)) *
	    SPF_CACHE_WAYS]);
}

static struct spf_cached *
cache_find(struct spf *spf, const char *key, uint32_t hash)
{
	struct spf_cached	*c;
	int			 i;

	if (spf->ncache == 0)
		return (NULL);
	for (c = cache_set(spf, hash), i = 0; i < SPF_CACHE_WAYS; i++, c++) {
		if (c->key == NULL || c->hash != hash ||
		    strcmp(c->key, key) != 0)
			continue;
		if (c->expires <= spf_now(spf)) {
			cached_clear(c);
			return (NULL);
		}
		return (c);
	}
	return (NULL);
}

/* Where a key goes: its own slot, an empty or expired one, the oldest. */
static struct spf_cached *
cache_slot(struct spf *spf, const char *key, uint32_t hash)
{
	struct spf_cached	*set = cache_set(spf, hash), *c, *victim = set;
	time_t			 now = spf_now(spf);
	int			 i;

	for (c = set, i = 0; i < SPF_CACHE_WAYS; i++, c++)
		if (c->key != NULL && c->hash == hash &&
		    strcmp(c->key, key) == 0)
			return (c);
	for (c = set, i = 0; i < SPF_CACHE_WAYS; i++, c++) {
		if (c->key == NULL || c->expires <= now)
			return (c);
		if (c->expires < victim->expires)
			victim = c;
	}
	return (victim);
}

/* Keep a final result: not a temperror, and only with every TTL known. */
static void
cache_store(struct spf *spf, const struct spf_query *q, enum spf_result r,
    const char *domain, const char *explanation, const char *comment,
    int no_mail)
{
	struct spf_cached	*c;
	time_t			 expires = 0;
	size_t			 i;

	if (spf->ncache == 0 || r == SPF_R_TEMPERROR || q->npins == 0)
		return;
	for (i = 0; i < q->npins; i++)
		if (expires == 0 || q->pins[i].answer->expires < expires)
			expires = q->pins[i].answer->expires;
	if (expires <= spf_now(spf))
		return;
	c = cache_slot(spf, q->key, q->hash);
	cached_clear(c);
	c->key = xstrdup(q->key);
	c->hash = q->hash;
	c->result = r;
	c->domain = domain ? xstrdup(domain) : NULL;
	c->explanation = explanation ? xstrdup(explanation) : NULL;
	c->comment = comment ? xstrdup(comment) : NULL;
	c->no_mail = no_mail;
	c->expires = expires;
}

struct spf *
spf_new(struct event_base *base, struct dns *dns, const struct config *cfg)
{
	SPF_response_t	*resp = NULL;
	struct spf	*spf;

	SPF_error_handler = spf_error_handler;
	SPF_warning_handler = spf_warning_handler;
	SPF_info_handler = NULL;
	SPF_debug_handler = NULL;

	spf = xcalloc(1, sizeof(*spf));
	spf->base = base;
	spf->dns = dns;
	spf->timeout = cfg->spf_timeout;
	spf->void_limit = cfg->spf_void_limit;
	if (cfg->dns_cache_size > 0) {
		for (spf->ncache = 64; spf->ncache < cfg->dns_cache_size;)
			spf->ncache *= 2;
		spf->cache = xcalloc(spf->ncache, sizeof(*spf->cache));
	}
	spf->layer.destroy = layer_destroy;
	spf->layer.lookup = layer_lookup;
	spf->layer.name = "natguard";
	spf->layer.hook = spf;
	if ((spf->server = SPF_server_new_dns(&spf->layer, 0)) == NULL)
		fatalx("SPF_server_new_dns");
	/*
	 * Ours, not libspf2's: its default points at a dead openspf URL.  It
	 * is a macro-string, where a space is written %_; %{c} is the client
	 * address as people write it (%{i} spells IPv6 as dotted nibbles).
	 */
	if (SPF_server_set_rec_dom(spf->server, cfg->authserv_id) !=
	    SPF_E_SUCCESS ||
	    SPF_server_set_explanation(spf->server, "%{o}%_does%_not%_designate"
	    "%_%{c}%_as%_permitted%_sender", &resp) != SPF_E_SUCCESS)
		fatalx("libspf2: cannot set receiver domain or explanation");
	SPF_response_free(resp);
	return (spf);
}

/*
 * A reload: a new void limit applies to evaluations started from now on;
 * the results cached under the old one are dropped.
 */
void
spf_config(struct spf *spf, const struct config *cfg)
{
	size_t	i;

	if (spf->void_limit != cfg->spf_void_limit)
		for (i = 0; i < spf->ncache; i++)
			cached_clear(&spf->cache[i]);
	spf->void_limit = cfg->spf_void_limit;
}

void
spf_free(struct spf *spf)
{
	size_t	i;

	if (spf == NULL)
		return;
	for (i = 0; i < spf->ncache; i++)
		cached_clear(&spf->cache[i]);
	free(spf->cache);
	SPF_server_free(spf->server);
	free(spf);
}

static void
query_free(struct spf_query *q)
{
	size_t	i;

	waits_clear(q);
	for (i = 0; i < q->npins; i++) {
		free(q->pins[i].name);
		dns_answer_unref(q->pins[i].answer);
	}
	free(q->pins);
	if (q->timer != NULL)
		event_free(q->timer);
	if (q->start != NULL)
		event_free(q->start);
	free(q->helo);
	free(q->mailbox);
	free(q->key);
	strlist_clear(&q->subnames);
	strlist_clear(&q->ptrnames);
	strlist_clear(&q->expnames);
	strlist_clear(&q->chunks);
	free(q->why);
	spf_verdict_clear(&q->hitv);
	free(q);
}

/*
 * The identity's record is "v=spf1 -all": its domain sends no mail
 * (spf_reject_no_mail_only).  Read from the answer the evaluation used.
 */
static int
no_mail(struct spf_query *q, const char *domain)
{
	struct dns_answer	*a = pin_find(q, domain, DNS_T_TXT);
	size_t			 i;
	int			 spf1 = 0, none = 0;

	if (a == NULL || a->status != DNS_OK)
		return (0);
	for (i = 0; i < a->n; i++) {
		if (strncasecmp(a->rr[i].data, "v=spf1", 6) != 0 ||
		    (a->rr[i].data[6] != ' ' && a->rr[i].data[6] != '\0'))
			continue;
		spf1++;
		if (strcasecmp(a->rr[i].data, "v=spf1 -all") == 0)
			none = 1;
	}
	return (spf1 == 1 && none);
}

static void
query_done(struct spf_query *q, enum spf_result r, const char *explanation,
    const char *comment)
{
	struct spf_outcome	 o;
	const char		*at;

	memset(&o, 0, sizeof(o));
	o.result = r;
	o.identity = q->identity;
	o.domain = (at = strrchr(q->mailbox, '@')) != NULL ? at + 1 :
	    q->mailbox;
	o.explanation = explanation;
	o.comment = comment;
	if (r == SPF_R_PERMERROR && q->why != NULL) {
		/* Past libspf2's bounds: what the admin can look up. */
		log_info("spf: %s: permerror: %s", o.domain, q->why);
		o.comment = q->why;
	}
	o.no_mail = q->hit ? q->hitv.no_mail : no_mail(q, o.domain);
	if (!q->hit && q->passes > 0)
		cache_store(q->spf, q, r, o.domain, explanation, o.comment,
		    o.no_mail);
	waits_clear(q);
	q->cb(&o, q->arg);
	query_free(q);
}

/*
 * libspf2's result, corrected: a temporary DNS failure it stumbled over
 * comes back as INVALID (or none, for the record itself), and is a
 * temperror.  A definite match result stands: a failed lookup for an
 * exp= explanation does not change the result (RFC 7208 6.2).
 */
static enum spf_result
result_map(SPF_result_t r, int tempfail)
{
	/*
	 * A lookup the evaluation made failed: whatever libspf2 made of it
	 * (it takes TRY_AGAIN for "no such name"), RFC 7208 5 says temperror.
	 */
	if (tempfail)
		return (SPF_R_TEMPERROR);
	switch (r) {
	case SPF_RESULT_PASS:
		return (SPF_R_PASS);
	case SPF_RESULT_FAIL:
		return (SPF_R_FAIL);
	case SPF_RESULT_SOFTFAIL:
		return (SPF_R_SOFTFAIL);
	case SPF_RESULT_NEUTRAL:
		return (SPF_R_NEUTRAL);
	case SPF_RESULT_NONE:
		return (SPF_R_NONE);
	case SPF_RESULT_TEMPERROR:
		return (SPF_R_TEMPERROR);
	case SPF_RESULT_PERMERROR:
	case SPF_RESULT_INVALID:
	default:
		return (SPF_R_PERMERROR);
	}
}

/* A prefetch's answer: the DNS cache keeps it, nobody waits for it. */
static void
prefetched(struct dns_answer *a, void *arg)
{
	(void)arg;
	dns_answer_unref(a);
}

/*
 * The cold path: an SPF record's include: and redirect= targets are asked
 * for as soon as the record arrives, all at once, instead of one pass of
 * libspf2 each (it stops at the first name it lacks).  Nothing waits for
 * them: a pass that reaches one finds it cached or joins its query in
 * flight, and one never reached costs a query but no time, so results
 * and their timing can only improve.  Only targets without macros, and
 * only with a DNS cache to keep the answers.
 */
static void
prefetch_targets(struct spf_query *q, const struct dns_answer *a)
{
	const char	*p, *e, *t;
	char		*name;
	size_t		 i;
	int		 n = 0;

	if (!dns_caching(q->spf->dns))
		return;
	for (i = 0; i < a->n; i++) {
		p = a->rr[i].data;
		if (strncasecmp(p, "v=spf1 ", 7) != 0)
			continue;
		for (p += 7; *p != '\0' && n < SPF_MAX_TERMS; p = e) {
			while (*p == ' ')
				p++;
			e = p + strcspn(p, " ");
			t = (*p == '+' || *p == '-' || *p == '~' ||
			    *p == '?') ? p + 1 : p;
			if (strncasecmp(t, "include:", 8) == 0)
				t += 8;
			else if (strncasecmp(t, "redirect=", 9) == 0)
				t += 9;
			else
				continue;
			name = xstrndup(t, e - t);
			if (*name != '\0' && strchr(name, '%') == NULL &&
			    name_valid(name)) {
				dns_query_prio(q->spf->dns, name, DNS_T_TXT,
				    q->background, prefetched, NULL);
				n++;
			}
			free(name);
		}
	}
}

static void
spf_answered(struct dns_answer *a, void *arg)
{
	struct spf_wait		*w = arg;
	struct spf_query	*q = w->q;

	w->w = NULL;
	if (w->type == DNS_T_TXT && a->status == DNS_OK)
		prefetch_targets(q, a);
	pin_add(q, w->name, w->type, a);
	if (--q->outstanding == 0) {
		waits_clear(q);
		spf_pass(q);
	}
}

static void
spf_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	query_done(arg, SPF_R_TEMPERROR, "SPF evaluation timed out", NULL);
}

/*
 * libspf2, once, over the answers at hand.  Returns -1 when libspf2 hit an
 * internal error (its handler jumped back here); what it held is lost.
 * Nothing this frame changes after setjmp() is read after the jump.
 */
static int
spf_eval(struct spf_query *q, SPF_result_t *r, char **expl, char **comment)
{
	SPF_request_t	*req;
	SPF_response_t	*resp = NULL;
	struct in_addr	 in;
	struct in6_addr	 in6;

	spf_running = q;
	if (setjmp(q->jb) != 0) {
		spf_running = NULL;
		return (-1);
	}
	if ((req = SPF_request_new(q->spf->server)) == NULL)
		fatalx("SPF_request_new");
	if (q->client.family == AF_INET) {
		memcpy(&in, q->client.bytes, 4);
		SPF_request_set_ipv4(req, in);
	} else {
		memcpy(&in6, q->client.bytes, 16);
		SPF_request_set_ipv6(req, in6);
	}
	if (q->helo != NULL)
		SPF_request_set_helo_dom(req, q->helo);
	SPF_request_set_env_from(req, q->mailbox);
	SPF_request_query_mailfrom(req, &resp);
	*r = resp != NULL ? SPF_response_result(resp) : SPF_RESULT_INVALID;
	if (resp != NULL && SPF_response_get_explanation(resp) != NULL)
		*expl = xstrdup(SPF_response_get_explanation(resp));
	if (resp != NULL && SPF_response_get_header_comment(resp) != NULL)
		*comment = xstrdup(SPF_response_get_header_comment(resp));
	SPF_response_free(resp);
	SPF_request_free(req);
	spf_running = NULL;
	return (0);
}

/* One evaluation; then either the names it lacked, or the result. */
static void
spf_pass(struct spf_query *q)
{
	SPF_result_t	 r = SPF_RESULT_INVALID;
	char		*expl = NULL, *comment = NULL;
	size_t		 i;

	q->passes++;
	q->tempfail = 0;
	q->chunk_calls = 0;
	if (SPF_server_set_max_dns_mech(q->spf->server, SPF_MAX_TERMS) !=
	    SPF_E_SUCCESS)
		fatalx("SPF_server_set_max_dns_mech");
	q->terms = q->voids = q->seen_own = 0;
	strlist_clear(&q->subnames);
	strlist_clear(&q->ptrnames);
	strlist_clear(&q->expnames);
	if (spf_eval(q, &r, &expl, &comment) != 0) {
		query_done(q, SPF_R_TEMPERROR, "SPF evaluation failed", NULL);
		return;
	}
	if (q->nwaits > 0 && q->passes < SPF_MAX_PASSES) {
		/* Names this pass lacked: resolve them all, then again. */
		free(expl);
		free(comment);
		q->outstanding = q->nwaits;
		for (i = 0; i < q->nwaits; i++)
			q->waits[i]->w = dns_query_prio(q->spf->dns,
			    q->waits[i]->name, q->waits[i]->type,
			    q->background, spf_answered, q->waits[i]);
		return;
	}
	query_done(q, q->nwaits > 0 || q->terms > SPF_MAX_TERMS ||
	    q->voids > (int)q->spf->void_limit ? SPF_R_PERMERROR :
	    result_map(r, q->tempfail), expl, comment);
	free(expl);
	free(comment);
}

static void
spf_start(evutil_socket_t fd, short what, void *arg)
{
	struct spf_query	*q = arg;

	(void)fd;
	(void)what;
	if (q->hit) {
		query_done(q, q->hitv.result, q->hitv.explanation,
		    q->hitv.comment);
		return;
	}
	spf_pass(q);
}

/*
 * Evaluate SPF for a client: the HELO identity (mailbox "postmaster@HELO")
 * or the MAIL FROM identity (sender; "postmaster@HELO" for the null
 * sender).  helo is the HELO name as sent, which %{h} expands to (RFC 7208
 * 7.3), a domain or not; a domain for the HELO identity.  cb is called
 * once, from the loop, unless the query is cancelled first.
 */
struct spf_query *
spf_check(struct spf *spf, const struct addr *client, const char *helo,
    const char *sender, enum spf_identity identity, int background,
    spf_cb cb, void *arg)
{
	struct spf_query	*q;
	struct timeval		 tv;
	char			 abuf[INET6_ADDRSTRLEN];
	struct spf_cached	*c;
	size_t			 len;

	q = xcalloc(1, sizeof(*q));
	q->spf = spf;
	q->background = background;
	q->client = *client;
	q->identity = identity;
	q->cb = cb;
	q->arg = arg;
	if (helo != NULL && *helo != '\0')
		q->helo = xstrdup(helo);
	if (identity == SPF_ID_MAILFROM && sender != NULL && *sender != '\0')
		q->mailbox = xstrdup(sender);
	else
		xasprintf(&q->mailbox, "postmaster@%s", q->helo ? q->helo :
		    "");
	addr_format(client, abuf, sizeof(abuf));
	len = cache_key(NULL, 0, identity, abuf, q->mailbox, q->helo);
	q->key = xmalloc(len);
	cache_key(q->key, len, identity, abuf, q->mailbox, q->helo);
	q->hash = key_hash(q->key);
	if ((c = cache_find(spf, q->key, q->hash)) != NULL) {
		struct spf_verdict	v = { c->result, c->domain,
		    c->explanation, c->comment, c->no_mail };

		q->hit = 1;
		spf_verdict_copy(&q->hitv, &v);
	}
	tv.tv_sec = (time_t)spf->timeout;
	tv.tv_usec = 0;
	if ((q->timer = evtimer_new(spf->base, spf_timeout, q)) == NULL ||
	    evtimer_add(q->timer, &tv) == -1 ||
	    (q->start = event_new(spf->base, -1, 0, spf_start, q)) == NULL)
		fatalx("spf: event_new");
	/* Even a fully cached evaluation answers from the loop. */
	event_active(q->start, EV_TIMEOUT, 0);
	return (q);
}

void
spf_cancel(struct spf_query *q)
{
	if (q != NULL)
		query_free(q);
}

/*
 * The evaluations a decision needs (decide() says which in spf_need), run
 * side by side; cb gets their verdicts.  The null sender's MAIL FROM
 * identity is postmaster@HELO, the HELO identity itself: evaluated once.
 * Each spf_domain_whitelist domain is evaluated as postmaster@DOMAIN for
 * the client: one pass makes the client a trusted forwarder.
 */
struct spf_slot {
	struct spf_run		*r;
	int			 i;		/* 0 HELO, 1 MAIL FROM, 2.. */
	struct spf_query	*q;
};

/*
 * spf_helo_whitelist and spf_ptr_whitelist: the client's address among
 * the addresses of its HELO name (policyd-spf's HELO_Whitelist), or a PTR
 * name of the client in a listed domain whose own addresses hold it
 * (forward-confirmed, as RFC 7208 5.5 validates; policyd-spf's
 * Domain_Whitelist_PTR takes the first PTR name unconfirmed).
 */
struct spf_lookup {
	struct spf_run		*r;
	int			 wl;		/* SPF_WL_HELO or SPF_WL_PTR */
	int			 ptr;		/* the PTR question itself */
	struct dns_waiter	*w;
};

struct spf_run {
	struct spf		*spf;
	struct spf_slot		*slots;
	size_t			 nslots;
	struct spf_lookup	**lookups;
	size_t			 nlookups;
	struct addr		 addr;
	struct strlist		 ptr_domains;	/* spf_ptr_whitelist's */
	struct spf_verdict	 v[2];
	int			 want[2];
	int			 same;		/* MAIL FROM is the HELO's */
	int			 whitelisted;
	int			 background;	/* only the log needs it */
	size_t			 outstanding;
	struct event		*ev;		/* to answer from the loop */
	spf_run_cb		 cb;
	void			*arg;
};

static void
run_finish(struct spf_run *r)
{
	if (r->same) {
		spf_verdict_copy(&r->v[1], &r->v[0]);
		r->want[1] = 1;
	}
	r->cb(r->want[0] ? &r->v[0] : NULL, r->want[1] ? &r->v[1] : NULL,
	    r->whitelisted, r->arg);
	spf_run_cancel(r);
}

static void
run_got(const struct spf_outcome *o, void *arg)
{
	struct spf_slot		*s = arg;
	struct spf_run		*r = s->r;
	struct spf_verdict	 v;

	s->q = NULL;
	memset(&v, 0, sizeof(v));
	v.result = o->result;
	v.domain = (char *)o->domain;
	v.explanation = (char *)o->explanation;
	v.comment = (char *)o->comment;
	v.no_mail = o->no_mail;
	if (s->i < 2)
		spf_verdict_copy(&r->v[s->i], &v);
	else if (o->result == SPF_R_PASS)
		r->whitelisted |= SPF_WL_DOMAIN;
	if (--r->outstanding == 0)
		run_finish(r);
}

static void	lookup_got(struct dns_answer *, void *);

static void
lookup_start(struct spf_run *r, const char *name, int wl, int ptr)
{
	struct spf_lookup	*lk;
	int			 type;

	type = ptr ? DNS_T_PTR : r->addr.family == AF_INET6 ? DNS_T_AAAA :
	    DNS_T_A;
	lk = xcalloc(1, sizeof(*lk));
	lk->r = r;
	lk->wl = wl;
	lk->ptr = ptr;
	r->lookups = xreallocarray(r->lookups, r->nlookups + 1,
	    sizeof(*r->lookups));
	r->lookups[r->nlookups++] = lk;
	r->outstanding++;
	lk->w = dns_query_prio(r->spf->dns, name, type, r->background,
	    lookup_got, lk);
}

/* "4.3.2.1.in-addr.arpa" or the nibbles of ip6.arpa. */
static void
reverse_name(const struct addr *a, char *dst, size_t size)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, n = 0;

	const char		*zone;
	unsigned int		 v;

	/* By hand: on the warm path, snprintf cost more than the lookup. */
	if (a->family == AF_INET) {
		for (i = 4; i-- > 0 && n + 4 < size; ) {
			v = a->bytes[i];
			if (v >= 100)
				dst[n++] = '0' + v / 100;
			if (v >= 10)
				dst[n++] = '0' + v / 10 % 10;
			dst[n++] = '0' + v % 10;
			dst[n++] = '.';
		}
		zone = "in-addr.arpa";
	} else {
		for (i = 16; i-- > 0 && n + 4 < size; ) {
			dst[n++] = hex[a->bytes[i] & 0xf];
			dst[n++] = '.';
			dst[n++] = hex[a->bytes[i] >> 4];
			dst[n++] = '.';
		}
		zone = "ip6.arpa";
	}
	if (n + strlen(zone) < size)
		memcpy(dst + n, zone, strlen(zone) + 1);
	else if (size > 0)
		dst[0] = '\0';
}

/*
 * "postmaster@DOMAIN", the mailbox RFC 7208 2.3 checks for a HELO name
 * (and natguard for a whitelisted domain), into dst; -1 when it does not
 * fit.  By hand, as reverse_name().
 */
static int
postmaster_of(char *dst, size_t size, const char *domain)
{
	static const char	pm[] = "postmaster@";
	size_t			len = strlen(domain);

	if (sizeof(pm) + len > size)
		return (-1);
	memcpy(dst, pm, sizeof(pm) - 1);
	memcpy(dst + sizeof(pm) - 1, domain, len + 1);
	return (0);
}

static int
answer_has_addr(const struct dns_answer *a, const struct addr *addr)
{
	size_t	i, len = addr->family == AF_INET ? 4 : 16;

	for (i = 0; i < a->n; i++)
		if (a->rr[i].len == len &&
		    memcmp(a->rr[i].data, addr->bytes, len) == 0)
			return (1);
	return (0);
}

static void
lookup_got(struct dns_answer *a, void *arg)
{
	struct spf_lookup	*lk = arg;
	struct spf_run		*r = lk->r;
	size_t			 i;

	lk->w = NULL;
	if (a->status == DNS_OK && lk->ptr) {
		/* Each listed name is confirmed by its own addresses. */
		for (i = 0; i < a->n && i < SPF_MAX_PTR_NAMES; i++)
			if (strlist_has_name(&r->ptr_domains, a->rr[i].data,
			    1))
				lookup_start(r, a->rr[i].data, SPF_WL_PTR, 0);
	} else if (a->status == DNS_OK && answer_has_addr(a, &r->addr))
		r->whitelisted |= lk->wl;
	dns_answer_unref(a);
	if (--r->outstanding == 0)
		run_finish(r);
}

static void
run_now(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_finish(arg);
}

/* RFC 7208 4.3: an identity whose domain is no FQDN has no SPF: none. */
static int
mailbox_checkable(const char *mailbox)
{
	const char	*at = strrchr(mailbox, '@');
	const char	*dom = at ? at + 1 : mailbox;

	return (*dom != '\0' && strchr(dom, '.') != NULL &&
	    dom[strlen(dom) - 1] != '.' && strstr(dom, "..") == NULL);
}

static void
run_start(struct spf_run *r, const struct decision *d, int i,
    const char *mailbox, enum spf_identity id)
{
	struct spf_slot	*s = &r->slots[i];

	s->r = r;
	s->i = i;
	r->outstanding++;
	s->q = spf_check(r->spf, &d->spf_addr, d->spf_helo_macro, mailbox, id,
	    r->background, run_got, s);
}

/*
 * The verdicts a decision needs: want[0] HELO, want[1] MAIL FROM (or the
 * probe).  Returns 1 when the MAIL FROM identity is the HELO one
 * (postmaster@HELO), evaluated once for both.
 */
static int
run_wants(const struct decision *d, int want[2])
{
	want[0] = (d->spf_need & SPF_NEED_HELO) != 0;
	want[1] = (d->spf_need & (SPF_NEED_MAILFROM | SPF_NEED_PROBE)) != 0;
	return (want[0] && want[1] && d->spf_helo != NULL &&
	    strncasecmp(d->spf_mailbox, "postmaster@", 11) == 0 &&
	    strcasecmp(d->spf_mailbox + 11, d->spf_helo) == 0);
}

struct spf_run *
spf_run(struct spf *spf, const struct config *cfg, const struct decision *d,
    spf_run_cb cb, void *arg)
{
	struct spf_run	*r;
	const char	*at;
	char		*mb, rev[80];
	size_t		 i, nwl = 0;

	r = xcalloc(1, sizeof(*r));
	r->spf = spf;
	r->cb = cb;
	r->arg = arg;
	/* A NAT probe's or a learning evaluation's DNS waits its turn. */
	r->background = (d->spf_need & SPF_NEED_PROBE) || d->spf_background;
	if (d->spf_need & SPF_NEED_DOMAINS)
		nwl = cfg->spf_domain_whitelist.n;
	r->nslots = 2 + nwl;
	r->slots = xcalloc(r->nslots, sizeof(*r->slots));
	if ((r->same = run_wants(d, r->want)))
		r->want[1] = 0;
	if (r->want[0])
		run_start(r, d, 0, NULL, SPF_ID_HELO);
	if (r->want[1] && mailbox_checkable(d->spf_mailbox))
		run_start(r, d, 1, d->spf_mailbox, SPF_ID_MAILFROM);
	else if (r->want[1]) {
		r->v[1].result = SPF_R_NONE;
		at = strrchr(d->spf_mailbox, '@');
		r->v[1].domain = xstrdup(at ? at + 1 : d->spf_mailbox);
		r->v[1].explanation = xstrdup("not a domain name");
	}
	for (i = 0; i < nwl; i++) {
		xasprintf(&mb, "postmaster@%s", cfg->spf_domain_whitelist.v[i]);
		run_start(r, d, (int)(2 + i), mb, SPF_ID_MAILFROM);
		free(mb);
	}
	r->addr = d->spf_addr;
	if ((d->spf_need & SPF_NEED_HELO_WL) && d->spf_helo_macro != NULL)
		lookup_start(r, d->spf_helo_macro, SPF_WL_HELO, 0);
	if (d->spf_need & SPF_NEED_PTR_WL) {
		for (i = 0; i < cfg->spf_ptr_whitelist.n; i++)
			strlist_add(&r->ptr_domains,
			    cfg->spf_ptr_whitelist.v[i]);
		reverse_name(&r->addr, rev, sizeof(rev));
		lookup_start(r, rev, SPF_WL_PTR, 1);
	}
	if (r->outstanding == 0) {
		r->ev = event_new(spf->base, -1, 0, run_now, r);
		if (r->ev == NULL)
			fatalx("spf: event_new");
		event_active(r->ev, EV_TIMEOUT, 0);
	}
	return (r);
}

/* A verdict held in the result cache; NULL when not there (or too long). */
static const struct spf_cached *
cached_verdict(struct spf *spf, enum spf_identity id, const char *abuf,
    const char *mailbox, const char *helo, struct spf_verdict *v)
{
	const struct spf_cached	*c;
	char			 key[SPF_KEY_MAX];

	if (cache_key(key, sizeof(key), id, abuf, mailbox, helo) >
	    sizeof(key) || (c = cache_find(spf, key, key_hash(key))) == NULL)
		return (NULL);
	v->result = c->result;
	v->domain = c->domain;
	v->explanation = c->explanation;
	v->comment = c->comment;
	v->no_mail = c->no_mail;
	return (c);
}

/* A cached answer holds addr: 1, 0, or -1 when it is not cached. */
static int
cached_has_addr(struct spf *spf, const char *name, const struct addr *addr)
{
	struct dns_answer	*a;
	int			 r;

	if ((a = dns_cached(spf->dns, name, addr->family == AF_INET6 ?
	    DNS_T_AAAA : DNS_T_A)) == NULL)
		return (-1);
	r = a->status == DNS_OK && answer_has_addr(a, addr);
	dns_answer_unref(a);
	return (r);
}

/*
 * The whitelists a decision asks for, from the caches: SPF_WL_* bits, or
 * -1 when an answer is missing (then spf_run() asks).
 */
static int
cached_whitelists(struct spf *spf, const struct config *cfg,
    const struct decision *d, const char *abuf)
{
	const struct spf_cached	*c;
	struct spf_verdict	 v;
	struct dns_answer	*a;
	char			 mb[SPF_KEY_MAX], rev[80];
	size_t			 i;
	int			 wl = 0, r;

	if (d->spf_need & SPF_NEED_DOMAINS) {
		for (i = 0; i < cfg->spf_domain_whitelist.n; i++) {
			if (postmaster_of(mb, sizeof(mb),
			    cfg->spf_domain_whitelist.v[i]) == -1 ||
			    (c = cached_verdict(spf, SPF_ID_MAILFROM, abuf, mb,
			    d->spf_helo_macro, &v)) == NULL)
				return (-1);
			if (c->result == SPF_R_PASS)
				wl |= SPF_WL_DOMAIN;
		}
	}
	if ((d->spf_need & SPF_NEED_HELO_WL) && d->spf_helo_macro != NULL) {
		if ((r = cached_has_addr(spf, d->spf_helo_macro,
		    &d->spf_addr)) < 0)
			return (-1);
		if (r)
			wl |= SPF_WL_HELO;
	}
	if (d->spf_need & SPF_NEED_PTR_WL) {
		reverse_name(&d->spf_addr, rev, sizeof(rev));
		if ((a = dns_cached(spf->dns, rev, DNS_T_PTR)) == NULL)
			return (-1);
		for (i = 0; a->status == DNS_OK && i < a->n &&
		    i < SPF_MAX_PTR_NAMES; i++) {
			if (!strlist_has_name(&cfg->spf_ptr_whitelist,
			    a->rr[i].data, 1))
				continue;
			if ((r = cached_has_addr(spf, a->rr[i].data,
			    &d->spf_addr)) < 0) {
				dns_answer_unref(a);
				return (-1);
			}
			if (r)
				wl |= SPF_WL_PTR;
		}
		dns_answer_unref(a);
	}
	return (wl);
}

/*
 * The warm path: when every verdict and whitelist answer a decision
 * needs is cached, they are had at once, with no query, no event and no
 * copy, and the caller decides at once too.  What spf_run() would ask,
 * asked the same way; v[] points into the cache and d, valid until the
 * loop runs again.  Returns 0 when anything is missing: then spf_run().
 */
int
spf_run_cached(struct spf *spf, const struct config *cfg,
    const struct decision *d, struct spf_verdict v[2], int want[2],
    int *whitelisted)
{
	char		 mb[SPF_KEY_MAX], abuf[INET6_ADDRSTRLEN];
	const char	*at;
	int		 same;

	addr_format(&d->spf_addr, abuf, sizeof(abuf));
	memset(v, 0, 2 * sizeof(*v));
	want[0] = want[1] = 0;
	*whitelisted = 0;
	if (d->spf_need & (SPF_NEED_DOMAINS | SPF_NEED_HELO_WL |
	    SPF_NEED_PTR_WL)) {
		if ((*whitelisted = cached_whitelists(spf, cfg, d, abuf)) < 0)
			return (0);
		if (*whitelisted)
			return (1);	/* decide_spf() needs no verdict */
	}
	same = run_wants(d, want);
	if (want[0]) {
		if (postmaster_of(mb, sizeof(mb), d->spf_helo) == -1 ||
		    cached_verdict(spf, SPF_ID_HELO, abuf, mb,
		    d->spf_helo_macro, &v[0]) == NULL)
			return (0);
	}
	if (!want[1])
		return (1);
	if (same)
		v[1] = v[0];
	else if (!mailbox_checkable(d->spf_mailbox)) {
		v[1].result = SPF_R_NONE;
		at = strrchr(d->spf_mailbox, '@');
		v[1].domain = (char *)(at ? at + 1 : d->spf_mailbox);
		v[1].explanation = (char *)"not a domain name";
	} else if (cached_verdict(spf, SPF_ID_MAILFROM, abuf, d->spf_mailbox,
	    d->spf_helo_macro, &v[1]) == NULL)
		return (0);
	return (1);
}

void
spf_run_cancel(struct spf_run *r)
{
	size_t	i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nslots; i++)
		spf_cancel(r->slots[i].q);
	free(r->slots);
	for (i = 0; i < r->nlookups; i++) {
		dns_cancel(r->lookups[i]->w);
		free(r->lookups[i]);
	}
	free(r->lookups);
	strlist_clear(&r->ptr_domains);
	spf_verdict_clear(&r->v[0]);
	spf_verdict_clear(&r->v[1]);
	if (r->ev != NULL)
		event_free(r->ev);
	free(r);
}
