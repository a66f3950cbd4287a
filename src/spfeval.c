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

#include <netdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "natguard.h"

/*
 * One pass of libspf2 over the answers at hand: what the SPF worker runs
 * (spfworker.c), and all of natguard that touches libspf2.
 *
 * libspf2 asks its DNS layer synchronously.  Ours answers from the
 * answers the pass was given (struct spf_pass); any other name is noted
 * (struct spf_passed's needs) and answered TRY_AGAIN.  The daemon
 * resolves the noted names and runs the pass again with them (spf.c),
 * until a pass needs nothing new.  A pass reads nothing but its input:
 * no cache, no clock, no file, no socket, so that the worker that runs it
 * can hold nothing else.
 *
 * libspf2's quirks stay in this file and spfrecord.c: its error handler
 * must not return (libspf2 calls abort() after it), so ours jumps back to
 * the pass that was running; TRY_AGAIN comes back as SPF_RESULT_INVALID,
 * so a temporary DNS failure is tracked here and turned into temperror.
 */


struct spfeval {
	SPF_server_t		*server;
	SPF_dns_server_t	 layer;
	char			*rec_dom;
};

/* A pass: its input, and what it noted on the way. */
struct ev_pass {
	struct spfeval		*e;
	const struct spf_pass	*in;
	struct spf_passed	*out;
	int			 tempfail;	/* a DNS answer failed */
	int			 terms;		/* DNS terms (4.6.4) */
	int			 voids;		/* of which answered empty */
	struct strlist		 subnames;	/* MX and PTR targets */
	struct strlist		 ptrnames;	/* PTR targets */
	struct strlist		 expnames;	/* exp= domains seen */
	struct strlist		 chunks;	/* see struct spf_norm */
	int			 chunk_calls;
	int			 seen_own;	/* the identity's record */
	char			*error;		/* libspf2's, when it jumped */
	jmp_buf			 jb;
};

/* The pass running, for the DNS layer and the error handler. */
static struct ev_pass	*ev_running;

static NG_DEAD void
spf_error_handler(const char *file, int line, const char *msg)
{
	if (ev_running == NULL)
		fatalx("libspf2: %s:%d: %s", file ? file : "?", line, msg);
	xasprintf(&ev_running->error, "libspf2: %s:%d: %s", file ? file : "?",
	    line, msg);
	longjmp(ev_running->jb, 1);
}

static void
spf_warning_handler(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;	/* the worker has no log; nothing here is an error */
}

struct dns_answer *
spf_pins_find(const struct spf_pin *pins, size_t n, const char *name,
    int type)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (pins[i].type == type && strcmp(pins[i].name, name) == 0)
			return (pins[i].answer);
	return (NULL);
}

/* Note a name this pass lacked (once). */
static void
need_note(struct ev_pass *p, const char *name, int type)
{
	struct spf_passed	*o = p->out;
	size_t			 i;

	for (i = 0; i < o->nneeds; i++)
		if (o->needs[i].type == type &&
		    strcmp(o->needs[i].name, name) == 0)
			return;
	o->needs = xreallocarray(o->needs, o->nneeds + 1, sizeof(*o->needs));
	o->needs[o->nneeds].name = xstrdup(name);
	o->needs[o->nneeds].type = type;
	o->nneeds++;
}

/* An answer of the pass's; NULL, and the name noted, when it lacks one. */
static struct dns_answer *
pass_answer(struct ev_pass *p, const char *name, int type)
{
	struct dns_answer	*a;
	char			*key = dns_name(name);

	if ((a = spf_pins_find(p->in->pins, p->in->npins, key, type)) == NULL)
		need_note(p, key, type);
	free(key);
	return (a);
}

/* The exp= domain of a record (without macros), not a term's lookup. */
static void
note_exp(struct ev_pass *p, const char *record)
{
	const char	*s = record, *e;
	char		*name, *key;

	while ((s = strstr(s, " exp=")) != NULL) {
		s += 5;
		for (e = s; *e != '\0' && *e != ' '; e++)
			;
		name = xstrndup(s, e - s);
		if (strchr(name, '%') == NULL) {
			key = dns_name(name);
			strlist_add(&p->expnames, key);
			free(key);
		}
		free(name);
	}
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
pass_p(void *arg, const char *domain)
{
	struct ev_pass		*p = arg;
	const struct addr	*client = &p->in->client;
	struct dns_answer	*ptr, *a;
	const char		*name, *first = NULL, *sub = NULL;
	char			 rev[80];
	size_t			 i, nlen, dlen = strlen(domain);
	int			 missing = 0, type;

	type = client->family == AF_INET ? DNS_T_A : DNS_T_AAAA;
	spf_reverse_name(client, rev, sizeof(rev));
	if ((ptr = pass_answer(p, rev, DNS_T_PTR)) == NULL)
		return (NULL);
	for (i = 0; ptr->status == DNS_OK && i < ptr->n &&
	    i < SPF_MAX_PTR_NAMES; i++) {
		name = ptr->rr[i].data;
		if ((a = pass_answer(p, name, type)) == NULL) {
			missing = 1;
			continue;
		}
		if (!answer_holds(a, client))
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
macros_for(struct ev_pass *p, const char *domain, struct spf_macros *m,
    char *ip, size_t size)
{
	static const char	 hex[] = "0123456789abcdef";
	const struct addr	*client = &p->in->client;
	size_t			 i, n = 0;

	memset(m, 0, sizeof(*m));
	m->sender = p->in->mailbox;
	m->domain = domain;
	m->helo = p->in->helo;
	m->v6 = client->family == AF_INET6;
	m->p = pass_p;
	m->arg = p;
	m->ip = ip;
	if (!m->v6) {
		addr_format(client, ip, size);
		return;
	}
	for (i = 0; i < 16 && n + 4 < size; i++) {
		ip[n++] = hex[client->bytes[i] >> 4];
		ip[n++] = '.';
		ip[n++] = hex[client->bytes[i] & 0xf];
		ip[n++] = '.';
	}
	ip[n - 1] = '\0';
}

/* libspf2's limit of DNS mechanisms, raised by the chunks' redirect=s. */
static void
pass_max_dns(struct ev_pass *p)
{
	if (SPF_server_set_max_dns_mech(p->e->server,
	    SPF_MAX_TERMS + p->chunk_calls) != SPF_E_SUCCESS)
		fatalx("SPF_server_set_max_dns_mech");
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
	static char	 name[64];
	struct ev_pass	*p = arg;
	size_t		 i;

	for (i = 0; i < p->chunks.n; i++)
		if (strcmp(p->chunks.v[i], text) == 0)
			break;
	if (i == p->chunks.n)
		strlist_add(&p->chunks, text);
	p->chunk_calls++;
	pass_max_dns(p);
	snprintf(name, sizeof(name), "c%zu" SPF_CHUNK_SUFFIX, i);
	return (name);
}

/* The TXT answer for a chunk's name; NULL: domain is not one. */
static SPF_dns_rr_t *
chunk_answer(SPF_dns_server_t *layer, struct ev_pass *p, const char *domain)
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
	if (i >= p->chunks.n)
		return (SPF_dns_rr_new_init(layer, domain, ns_t_txt, 0,
		    HOST_NOT_FOUND));
	if ((rr = SPF_dns_rr_new_init(layer, domain, ns_t_txt, 0,
	    NETDB_SUCCESS)) == NULL)
		fatalx("SPF_dns_rr_new_init");
	len = strlen(p->chunks.v[i]) + 1;
	if (SPF_dns_rr_buf_realloc(rr, 0, len) != SPF_E_SUCCESS)
		fatalx("SPF_dns_rr_buf_realloc");
	memcpy(rr->rr[0], p->chunks.v[i], len);
	rr->num_rr = 1;
	note_exp(p, p->chunks.v[i]);
	return (rr);
}

#ifdef NATGUARD_CRASH_INJECT
/*
 * Test builds only (tests/natguard-crashy, never installed): a TXT
 * record holding "x-natguard-crash=KIND" makes the worker die as a bug
 * in libspf2 would: abort, segv, syscall (one the sandbox refuses), or
 * hang (forever, for the watchdog).
 */
static void
crash_inject(const char *txt)
{
	const char	*k;
	volatile int	*null = NULL;

	if ((k = strstr(txt, "x-natguard-crash=")) == NULL)
		return;
	k += strlen("x-natguard-crash=");
	if (strncmp(k, "abort", 5) == 0)
		abort();
	if (strncmp(k, "segv", 4) == 0)
		*null = 1;
	if (strncmp(k, "syscall", 7) == 0)
		(void)socket(AF_INET, SOCK_DGRAM, 0);
	if (strncmp(k, "hang", 4) == 0)
		for (;;)
			;
}
#endif

/* An answer in libspf2's form. */
static SPF_dns_rr_t *
rr_from(SPF_dns_server_t *layer, const char *domain, ns_type type,
    const struct dns_answer *a, struct ev_pass *p, int exp)
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
		macros_for(p, domain, &m, ip, sizeof(ip));
		nm.chunk = chunk_add;
		nm.arg = p;
	}
	for (i = 0; i < n; i++) {
		data = a->rr[i].data;
		len = (type == ns_t_a || type == ns_t_aaaa) ? a->rr[i].len :
		    a->rr[i].len + 1;
#ifdef NATGUARD_CRASH_INJECT
		if (type == ns_t_txt)
			crash_inject(data);
#endif
		/* SPF records as RFC 7208 reads them: see spfrecord.c. */
		norm = NULL;
		if (type == ns_t_txt &&
		    (norm = spf_record_normalise(data, a->rr[i].len,
		    p->in->client.family == AF_INET6, &m, &nm)) != NULL) {
			if (nm.why[0] != '\0' && p->out->why == NULL)
				p->out->why = xstrdup(nm.why);
			note_exp(p, norm);
			data = norm;
			len = strlen(norm) + 1;
		}
		if (exp && !spf_text_safe(data)) {
			/* Read as an explanation, it would overflow. */
			if (p->out->why == NULL)
				xasprintf(&p->out->why, "a TXT record of %s "
				    "is longer than natguard's SPF library "
				    "can read safely", domain);
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
    const struct dns_answer *a, struct ev_pass *p)
{
	const struct addr	*client = &p->in->client;
	SPF_dns_rr_t		*rr;
	size_t			 i, len;
	int			 fam = type == ns_t_a ? AF_INET : AF_INET6;

	if (a->status != DNS_OK || a->n == 0 || (type != ns_t_mx &&
	    ((type != ns_t_a && type != ns_t_aaaa) ||
	    fam != client->family)))
		return (rr_from(layer, domain, type, a, p, 0));
	if ((rr = SPF_dns_rr_new_init(layer, domain, type, 0,
	    NETDB_SUCCESS)) == NULL)
		fatalx("SPF_dns_rr_new_init");
	if (type != ns_t_mx) {
		len = fam == AF_INET ? 4 : 16;
		if (SPF_dns_rr_buf_realloc(rr, 0, len) != SPF_E_SUCCESS)
			fatalx("SPF_dns_rr_buf_realloc");
		memcpy(rr->rr[0], client->bytes, len);
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
int
spf_name_valid(const char *name)
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
count_term(struct ev_pass *p, const char *name, int type,
    const struct dns_answer *a)
{
	const char	*at = strrchr(p->in->mailbox, '@');
	size_t		 i;

	if (type == DNS_T_TXT && (p->terms == 0 && p->voids == 0 &&
	    at != NULL && strcasecmp(name, at + 1) == 0 && !p->seen_own)) {
		p->seen_own = 1;
		return;
	}
	if ((type == DNS_T_A || type == DNS_T_AAAA) &&
	    strlist_contains(&p->subnames, name))
		return;
	if (type == DNS_T_TXT && strlist_contains(&p->expnames, name))
		return;
	p->terms++;
	if (a->status == DNS_NXDOMAIN || a->status == DNS_NODATA)
		p->voids++;
	/* An mx term whose MX lookup holds more than 10 names: permerror. */
	if (type == DNS_T_MX && a->n > SPF_MAX_TERMS)
		p->terms = SPF_MAX_TERMS + 1 + p->terms;
	if ((type == DNS_T_MX || type == DNS_T_PTR) && a->status == DNS_OK)
		for (i = 0; i < a->n; i++) {
			strlist_add(&p->subnames, a->rr[i].data);
			if (type == DNS_T_PTR)
				strlist_add(&p->ptrnames, a->rr[i].data);
		}
}

/*
 * A DNS error ends the evaluation in temperror (RFC 7208 5), but for these
 * lookups: the PTR of the client and the addresses of its names, where an
 * error is no match (5.5, and "unknown" for %{p}, 7.3), and the TXT of an
 * exp=, where it is no explanation (6.2).
 */
static int
tempfail_harmless(struct ev_pass *p, const char *name, int type)
{
	if (type == DNS_T_PTR)
		return (1);
	if ((type == DNS_T_A || type == DNS_T_AAAA) &&
	    strlist_contains(&p->ptrnames, name))
		return (1);
	return (type == DNS_T_TXT && strlist_contains(&p->expnames, name));
}

static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type,
    int should_cache)
{
	struct ev_pass		*p = ev_running;
	struct dns_answer	*a;
	SPF_dns_rr_t		*rr;
	char			*name;
	size_t			 nlen, slen;
	int			 cidr0, exp;

	(void)should_cache;
	if (p == NULL || domain == NULL)
		return (SPF_dns_rr_new_init(layer, domain ? domain : "", type,
		    0, TRY_AGAIN));
	if (type == ns_t_txt && (rr = chunk_answer(layer, p, domain)) != NULL)
		return (rr);
	if (!spf_name_valid(domain))
		return (SPF_dns_rr_new_init(layer, domain, type, 0,
		    HOST_NOT_FOUND));
	name = dns_name(domain);
	/* A marked name is looked up as the domain it marks. */
	nlen = strlen(name);
	slen = sizeof(SPF_CIDR0_SUFFIX) - 1;
	if ((cidr0 = nlen > slen &&
	    strcmp(name + nlen - slen, SPF_CIDR0_SUFFIX) == 0))
		name[nlen - slen] = '\0';
	if ((a = spf_pins_find(p->in->pins, p->in->npins, name, type)) ==
	    NULL) {
		need_note(p, name, type);
		free(name);
		return (SPF_dns_rr_new_init(layer, domain, type, 0,
		    TRY_AGAIN));
	}
	count_term(p, name, type, a);
	if (a->status == DNS_TEMPFAIL && tempfail_harmless(p, name, type)) {
		/* As if there were nothing: see tempfail_harmless(). */
		free(name);
		return (SPF_dns_rr_new_init(layer, domain, type, 0,
		    HOST_NOT_FOUND));
	}
	if (a->status == DNS_TEMPFAIL)
		p->tempfail = 1;
	exp = type == ns_t_txt && strlist_contains(&p->expnames, name);
	free(name);
	if (cidr0)
		return (rr_cidr0(layer, domain, type, a, p));
	return (rr_from(layer, domain, type, a, p, exp));
}

static void
layer_destroy(SPF_dns_server_t *layer)
{
	(void)layer;	/* part of struct spfeval */
}

struct spfeval *
spfeval_new(void)
{
	struct spfeval	*e;

	SPF_error_handler = spf_error_handler;
	SPF_warning_handler = spf_warning_handler;
	SPF_info_handler = NULL;
	SPF_debug_handler = NULL;

	e = xcalloc(1, sizeof(*e));
	e->layer.destroy = layer_destroy;
	e->layer.lookup = layer_lookup;
	e->layer.name = "natguard";
	e->layer.hook = e;
	if ((e->server = SPF_server_new_dns(&e->layer, 0)) == NULL)
		fatalx("SPF_server_new_dns");
	return (e);
}

void
spfeval_free(struct spfeval *e)
{
	if (e == NULL)
		return;
	SPF_server_free(e->server);
	free(e->rec_dom);
	free(e);
}

/*
 * The receiver's name (the header's and %{r}) and natguard's own default
 * explanation.  Ours, not libspf2's: its default points at a dead openspf
 * URL.  It is a macro-string, where a space is written %_; %{c} is the
 * client address as people write it (%{i} spells IPv6 as dotted nibbles).
 */
static void
spfeval_receiver(struct spfeval *e, const char *rec_dom)
{
	SPF_response_t	*resp = NULL;

	if (e->rec_dom != NULL && strcmp(e->rec_dom, rec_dom) == 0)
		return;
	free(e->rec_dom);
	e->rec_dom = xstrdup(rec_dom);
	if (SPF_server_set_rec_dom(e->server, rec_dom) != SPF_E_SUCCESS ||
	    SPF_server_set_explanation(e->server, "%{o}%_does%_not%_designate"
	    "%_%{c}%_as%_permitted%_sender", &resp) != SPF_E_SUCCESS)
		fatalx("libspf2: cannot set receiver domain or explanation");
	SPF_response_free(resp);
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

/*
 * SPF_request_query_mailfrom() without its "localhost is always allowed":
 * every entry point of libspf2 answers pass for a loopback client before
 * reading any record.  RFC 7208 has no such rule, and on the mail host a
 * tunnel or local proxy hands every client over from loopback, so the
 * record decides here too (SPEC 4 step 5a).  The rest is what that entry
 * point does, from libspf2's public pieces.
 */
static SPF_errcode_t
query_mailfrom(SPF_request_t *req, SPF_response_t **respp)
{
	SPF_response_t	*resp;
	SPF_record_t	*rec = NULL;
	SPF_errcode_t	 err;

	if ((resp = *respp = SPF_response_new(req)) == NULL)
		return (SPF_E_NO_MEMORY);
	req->cur_dom = req->use_helo ? req->helo_dom : req->env_from_dp;
	err = SPF_server_get_record(req->spf_server, req, resp, &rec);
	if (err != SPF_E_SUCCESS) {
		if (rec != NULL)
			SPF_record_free(rec);
		SPF_i_done(resp, resp->result, resp->reason, resp->err);
		return (err);
	}
	resp->spf_record_exp = rec;
	err = SPF_record_interpret(rec, req, resp, 0);
	SPF_record_free(rec);
	resp->spf_record_exp = NULL;
	return (err);
}

/*
 * libspf2, once, over the pass's answers.  Returns -1 when libspf2 hit an
 * internal error (its handler jumped back here); what it held is lost.
 * Nothing this frame changes after setjmp() is read after the jump.
 */
static int
pass_libspf2(struct ev_pass *p, SPF_result_t *r)
{
	const struct spf_pass	*in = p->in;
	SPF_request_t		*req;
	SPF_response_t		*resp = NULL;
	struct in_addr		 in4;
	struct in6_addr		 in6;

	ev_running = p;
	if (setjmp(p->jb) != 0) {
		ev_running = NULL;
		return (-1);
	}
	if ((req = SPF_request_new(p->e->server)) == NULL)
		fatalx("SPF_request_new");
	if (in->client.family == AF_INET) {
		memcpy(&in4, in->client.bytes, 4);
		SPF_request_set_ipv4(req, in4);
	} else {
		memcpy(&in6, in->client.bytes, 16);
		SPF_request_set_ipv6(req, in6);
	}
	if (in->helo != NULL)
		SPF_request_set_helo_dom(req, in->helo);
	SPF_request_set_env_from(req, in->mailbox);
	query_mailfrom(req, &resp);
	*r = resp != NULL ? SPF_response_result(resp) : SPF_RESULT_INVALID;
	if (resp != NULL && SPF_response_get_explanation(resp) != NULL)
		p->out->explanation =
		    xstrdup(SPF_response_get_explanation(resp));
	if (resp != NULL && SPF_response_get_header_comment(resp) != NULL)
		p->out->comment =
		    xstrdup(SPF_response_get_header_comment(resp));
	SPF_response_free(resp);
	SPF_request_free(req);
	ev_running = NULL;
	return (0);
}

/*
 * One pass: out gets the names it lacked (the daemon runs it again with
 * them), and the result it reached without them: past RFC 7208 4.6.4's
 * limits, permerror.
 */
void
spfeval_run(struct spfeval *e, const struct spf_pass *in,
    struct spf_passed *out)
{
	struct ev_pass	 p;
	SPF_result_t	 r = SPF_RESULT_INVALID;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	p.e = e;
	p.in = in;
	p.out = out;
	spfeval_receiver(e, in->rec_dom);
	pass_max_dns(&p);
	if (pass_libspf2(&p, &r) != 0) {
		out->result = SPF_R_TEMPERROR;
		out->failed = 1;
		out->error = p.error;
		p.error = NULL;
	} else if (p.terms > SPF_MAX_TERMS ||
	    p.voids > (int)in->void_limit)
		out->result = SPF_R_PERMERROR;
	else
		out->result = result_map(r, p.tempfail);
	strlist_clear(&p.subnames);
	strlist_clear(&p.ptrnames);
	strlist_clear(&p.expnames);
	strlist_clear(&p.chunks);
	free(p.error);
}

void
spf_passed_clear(struct spf_passed *o)
{
	size_t	i;

	for (i = 0; i < o->nneeds; i++)
		free(o->needs[i].name);
	free(o->needs);
	free(o->explanation);
	free(o->comment);
	free(o->why);
	free(o->error);
	memset(o, 0, sizeof(*o));
}

/* "4.3.2.1.in-addr.arpa" or the nibbles of ip6.arpa. */
void
spf_reverse_name(const struct addr *a, char *dst, size_t size)
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
