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
#include <netinet/in.h>

#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "natguard.h"

/*
 * SPF evaluation, without ever blocking the loop: the daemon's side.
 *
 * An evaluation is passes of libspf2 over the answers it holds (its
 * pins), run in the SPF worker (spfworker.c, spfeval.c).  A pass that
 * lacked names says which; they are taken from the DNS cache, or resolved
 * asynchronously, and pinned, and the pass runs again with them, until a
 * pass needs nothing new.  The DNS, the result cache and the whitelists'
 * lookups stay here: a result cached is answered without the worker.
 *
 * A worker that dies costs the evaluation it was running: temperror
 * (crashed, reason spf-worker-crash), and that identity domain is
 * answered so without evaluation for SPF_HOLD_SECONDS, so that one record
 * cannot kill worker after worker.
 */

#define SPF_MAX_PASSES	40
#define SPF_KEY_MAX	1024	/* a longer key: no warm path, spf_run() */
#define SPF_CACHE_WAYS	4	/* slots a key may take: see cache_set() */
#define SPF_HOLD_SECONDS 600
#define SPF_HOLD_MAX	64
#define SPF_HINTS_MAX	32	/* cached answers sent ahead, a pass */

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
	const char		*domain;	/* the mailbox's */
	enum spf_identity	 identity;
	struct spf_pin		*pins;
	size_t			 npins;
	struct spf_wait		**waits;	/* names the pass lacked */
	size_t			 nwaits;
	size_t			 outstanding;
	struct spfjob		*job;		/* a pass in the worker */
	int			 passes;
	int			 crashed;
	struct event		*timer;
	struct event		*start;
	char			*key;		/* for the result cache */
	uint32_t		 hash;
	int			 hit;		/* answered from the cache: */
	struct spf_verdict	 hitv;		/* a copy, slots get reused */
	spf_cb			 cb;
	void			*arg;
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

/* A domain whose record killed a worker: not evaluated until then. */
struct spf_held {
	char			*domain;	/* NULL: free */
	time_t			 until;
	time_t			 when;		/* wall clock, for the text */
};

struct spf {
	struct event_base	*base;
	struct dns		*dns;
	struct spfworker	*worker;
	char			*rec_dom;
	char			*crash_file;	/* NULL: no state_dir */
	uint64_t		 timeout;
	uint64_t		 void_limit;	/* RFC 7208 4.6.4: 2 */
	struct spf_cached	*cache;
	size_t			 ncache;	/* a power of two, or 0 */
	struct spf_held		 held[SPF_HOLD_MAX];
};

static void	spf_pass(struct spf_query *);

static struct dns_answer *
pin_find(struct spf_query *q, const char *name, int type)
{
	return (spf_pins_find(q->pins, q->npins, name, type));
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

/* Note a name the pass lacked (once). */
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

/*
 * A line for doctor (state_dir/SPF_CRASH_FILE): when, which domain, how.
 * Kept short: past CRASH_FILE_MAX it starts again.
 */
#define CRASH_FILE_MAX	65536

static void
crash_note(struct spf *spf, const char *domain, const char *how)
{
	struct stat	 st;
	FILE		*f;
	char		 when[32];
	time_t		 now = time(NULL);
	int		 big;

	if (spf->crash_file == NULL)
		return;
	big = stat(spf->crash_file, &st) == 0 && st.st_size > CRASH_FILE_MAX;
	if ((f = fopen(spf->crash_file, big ? "w" : "a")) == NULL) {
		log_warnx("spf: %s: %s", spf->crash_file, strerror(errno));
		return;
	}
	if (strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
	    gmtime(&now)) == 0)
		when[0] = '\0';
	fprintf(f, "%s %s %s\n", when, domain, how);
	if (fclose(f) == EOF)
		log_warnx("spf: %s: %s", spf->crash_file, strerror(errno));
}

/* The worker died on domain's record: held for SPF_HOLD_SECONDS. */
static void
spf_crashed(const char *domain, const char *how, void *arg)
{
	struct spf	*spf = arg;
	struct spf_held	*h, *slot = NULL;
	time_t		 now = spf_now(spf);
	size_t		 i;

	crash_note(spf, domain, how);
	for (i = 0; i < SPF_HOLD_MAX; i++) {
		h = &spf->held[i];
		if (h->domain != NULL && strcasecmp(h->domain, domain) == 0) {
			slot = h;
			break;
		}
		if (slot == NULL || (slot->domain != NULL &&
		    (h->domain == NULL || h->until < slot->until)))
			slot = h;
	}
	if (slot->domain == NULL || strcasecmp(slot->domain, domain) != 0) {
		free(slot->domain);
		slot->domain = xstrdup(domain);
	}
	slot->until = now + SPF_HOLD_SECONDS;
	slot->when = time(NULL);
}

static const struct spf_held *
held_find(struct spf *spf, const char *domain)
{
	struct spf_held	*h;
	size_t		 i;

	for (i = 0; i < SPF_HOLD_MAX; i++) {
		h = &spf->held[i];
		if (h->domain == NULL || strcasecmp(h->domain, domain) != 0)
			continue;
		if (h->until > spf_now(spf))
			return (h);
		free(h->domain);
		h->domain = NULL;
	}
	return (NULL);
}

struct spf *
spf_new(struct event_base *base, struct dns *dns, const struct config *cfg)
{
	struct spf	*spf;

	spf = xcalloc(1, sizeof(*spf));
	spf->base = base;
	spf->dns = dns;
	spf->timeout = cfg->spf_timeout;
	spf->void_limit = cfg->spf_void_limit;
	spf->rec_dom = xstrdup(cfg->authserv_id);
	if (cfg->state_dir[0] != '\0')
		xasprintf(&spf->crash_file, "%s/%s", cfg->state_dir,
		    SPF_CRASH_FILE);
	if (cfg->dns_cache_size > 0) {
		for (spf->ncache = 64; spf->ncache < cfg->dns_cache_size;)
			spf->ncache *= 2;
		spf->cache = xcalloc(spf->ncache, sizeof(*spf->cache));
	}
	spf->worker = spfworker_new(base, spf_crashed, spf);
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

	if (spf->void_limit != cfg->spf_void_limit ||
	    strcmp(spf->rec_dom, cfg->authserv_id) != 0)
		for (i = 0; i < spf->ncache; i++)
			cached_clear(&spf->cache[i]);
	spf->void_limit = cfg->spf_void_limit;
	free(spf->rec_dom);
	spf->rec_dom = xstrdup(cfg->authserv_id);
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
	for (i = 0; i < SPF_HOLD_MAX; i++)
		free(spf->held[i].domain);
	spfworker_free(spf->worker);
	free(spf->rec_dom);
	free(spf->crash_file);
	free(spf);
}

uint64_t
spf_worker_crashes(const struct spf *spf)
{
	return (spf != NULL ? spfworker_crashes(spf->worker) : 0);
}

const char *
spf_worker_sandbox(const struct spf *spf)
{
	return (spfworker_sandbox(spf != NULL ? spf->worker : NULL));
}

static void
query_free(struct spf_query *q)
{
	size_t	i;

	waits_clear(q);
	spfworker_cancel(q->job);
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
    const char *comment, const char *why)
{
	struct spf_outcome	 o;

	memset(&o, 0, sizeof(o));
	o.result = r;
	o.identity = q->identity;
	o.domain = q->domain;
	o.explanation = explanation;
	o.comment = comment;
	o.crashed = q->crashed;
	if (r == SPF_R_PERMERROR && why != NULL) {
		/* Past libspf2's bounds: what the admin can look up. */
		log_info("spf: %s: permerror: %s", o.domain, why);
		o.comment = why;
	}
	o.no_mail = q->hit ? q->hitv.no_mail : no_mail(q, o.domain);
	if (!q->hit && !q->crashed && q->passes > 0)
		cache_store(q->spf, q, r, o.domain, explanation, o.comment,
		    o.no_mail);
	waits_clear(q);
	q->cb(&o, q->arg);
	query_free(q);
}

/* The answer of an evaluation the worker died on, or would. */
static void
query_crashed(struct spf_query *q, const struct spf_held *h)
{
	char	*expl, when[32];

	q->crashed = 1;
	if (h == NULL) {
		xasprintf(&expl, "evaluating the SPF record of %s crashed "
		    "natguard's SPF worker; try again later", q->domain);
	} else {
		if (strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S",
		    localtime(&h->when)) == 0)
			when[0] = '\0';
		xasprintf(&expl, "the SPF record of %s crashed natguard's SPF "
		    "worker at %s; not evaluated again before %d s have "
		    "passed; try again later", q->domain, when,
		    SPF_HOLD_SECONDS);
	}
	query_done(q, SPF_R_TEMPERROR, expl, NULL, NULL);
	free(expl);
}

/* A prefetch's answer: the DNS cache keeps it, nobody waits for it. */
static void
prefetched(struct dns_answer *a, void *arg)
{
	(void)arg;
	dns_answer_unref(a);
}

/*
 * The names an SPF record's terms look up without macros: include: and
 * redirect= targets (TXT), a: and mx: and exists: domains, and the
 * record's own domain for a bare a or mx.  cb gets each; at most
 * SPF_MAX_TERMS of them.
 */
static void
record_targets(const char *txt, const char *domain, int v6,
    void (*cb)(const char *, int, void *), void *arg)
{
	const char	*p, *e, *t;
	char		*name;
	size_t		 len;
	int		 n = 0, type;

	if (strncasecmp(txt, "v=spf1 ", 7) != 0)
		return;
	for (p = txt + 7; *p != '\0' && n < SPF_MAX_TERMS; p = e) {
		while (*p == ' ')
			p++;
		e = p + strcspn(p, " ");
		t = (*p == '+' || *p == '-' || *p == '~' || *p == '?') ?
		    p + 1 : p;
		len = strcspn(t, "/ ");
		type = v6 ? DNS_T_AAAA : DNS_T_A;
		if (strncasecmp(t, "include:", 8) == 0)
			t += 8, type = DNS_T_TXT;
		else if (strncasecmp(t, "redirect=", 9) == 0)
			t += 9, type = DNS_T_TXT;
		else if (strncasecmp(t, "exists:", 7) == 0)
			t += 7, type = DNS_T_A;
		else if (strncasecmp(t, "a:", 2) == 0)
			t += 2;
		else if (strncasecmp(t, "mx:", 3) == 0)
			t += 3, type = DNS_T_MX;
		else if (len == 1 && strncasecmp(t, "a", 1) == 0)
			t = NULL;
		else if (len == 2 && strncasecmp(t, "mx", 2) == 0)
			t = NULL, type = DNS_T_MX;
		else
			continue;
		name = t != NULL ? xstrndup(t, (size_t)(e - t)) :
		    xstrdup(domain);
		name[strcspn(name, "/")] = '\0';	/* a cidr-length */
		if (*name != '\0' && strchr(name, '%') == NULL &&
		    spf_name_valid(name)) {
			cb(name, type, arg);
			n++;
		}
		free(name);
	}
}

static void
prefetch_one(const char *name, int type, void *arg)
{
	struct spf_query	*q = arg;

	if (type == DNS_T_TXT)
		dns_query_prio(q->spf->dns, name, DNS_T_TXT, q->background,
		    prefetched, NULL);
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
	size_t	i;

	if (!dns_caching(q->spf->dns))
		return;
	for (i = 0; i < a->n; i++)
		record_targets(a->rr[i].data, "", 0, prefetch_one, q);
}

/*
 * Before a pass: the cached answers it will probably ask for (what the
 * records it holds look up), pinned, so that a warm DNS cache does not
 * cost a round trip to the worker for each name.  A pin never asked for
 * costs a few bytes.
 */
struct hints {
	struct spf_query	*q;
	size_t			 n;
};

static void
hint_one(const char *name, int type, void *arg)
{
	struct hints		*h = arg;
	struct dns_answer	*a;
	char			*key;

	if (h->n >= SPF_HINTS_MAX)
		return;
	key = dns_name(name);
	if (pin_find(h->q, key, type) == NULL &&
	    (a = dns_cached(h->q->spf->dns, key, type)) != NULL) {
		pin_add(h->q, key, type, a);
		h->n++;
	}
	free(key);
}

static void
hints_pin(struct spf_query *q)
{
	struct hints		 h = { q, 0 };
	struct dns_answer	*a;
	size_t			 i, j;

	if (!dns_caching(q->spf->dns))
		return;
	/* Pins hinted here are read in turn: include chains unroll. */
	for (i = 0; i < q->npins && h.n < SPF_HINTS_MAX; i++) {
		a = q->pins[i].answer;
		if (q->pins[i].type != DNS_T_TXT || a->status != DNS_OK)
			continue;
		for (j = 0; j < a->n; j++)
			record_targets(a->rr[j].data, q->pins[i].name,
			    q->client.family == AF_INET6, hint_one, &h);
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
	query_done(arg, SPF_R_TEMPERROR, "SPF evaluation timed out", NULL,
	    NULL);
}

/* A pass came back: the result, or the names to look up first. */
static void
pass_done(const struct spf_passed *o, void *arg)
{
	struct spf_query	*q = arg;
	struct dns_answer	*a;
	size_t			 i;

	q->job = NULL;
	if (o == NULL) {
		query_crashed(q, NULL);
		return;
	}
	if (o->failed) {
		log_error("spf: %s: %s", q->domain, o->error ? o->error :
		    "libspf2 failed");
		query_done(q, SPF_R_TEMPERROR, "SPF evaluation failed", NULL,
		    NULL);
		return;
	}
	if (o->nneeds > 0 && q->passes < SPF_MAX_PASSES) {
		for (i = 0; i < o->nneeds; i++) {
			if (pin_find(q, o->needs[i].name, o->needs[i].type))
				continue;
			a = dns_cached(q->spf->dns, o->needs[i].name,
			    o->needs[i].type);
			if (a != NULL)
				pin_add(q, o->needs[i].name, o->needs[i].type,
				    a);
			else
				wait_note(q, o->needs[i].name,
				    o->needs[i].type);
		}
		if (q->nwaits == 0) {
			spf_pass(q);
			return;
		}
		/* Names this pass lacked: resolve them all, then again. */
		q->outstanding = q->nwaits;
		for (i = 0; i < q->nwaits; i++)
			q->waits[i]->w = dns_query_prio(q->spf->dns,
			    q->waits[i]->name, q->waits[i]->type,
			    q->background, spf_answered, q->waits[i]);
		return;
	}
	query_done(q, o->nneeds > 0 ? SPF_R_PERMERROR : o->result,
	    o->explanation, o->comment, o->why);
}

/* One pass, in the worker, over the answers pinned. */
static void
spf_pass(struct spf_query *q)
{
	struct spf_pass	 in;
	struct buf	 b = { NULL, 0, 0 };

	q->passes++;
	hints_pin(q);
	memset(&in, 0, sizeof(in));
	in.client = q->client;
	in.helo = q->helo;
	in.mailbox = q->mailbox;
	in.rec_dom = q->spf->rec_dom;
	in.void_limit = q->spf->void_limit;
	in.pins = q->pins;
	in.npins = q->npins;
	spfmsg_pass_put(&b, 0, &in, NULL, 0);
	q->job = spfworker_submit(q->spf->worker, &b, q->domain, pass_done,
	    q);
}

/*
 * The identity's own record is what every evaluation asks first: asked
 * for before the first pass, which then need not cross to the worker
 * only to say so.  Returns 1 while it is being resolved.
 */
static int
own_record(struct spf_query *q)
{
	struct dns_answer	*a;
	char			*key;

	if (!spf_name_valid(q->domain))
		return (0);
	key = dns_name(q->domain);
	if (pin_find(q, key, DNS_T_TXT) != NULL) {
		free(key);
		return (0);
	}
	if ((a = dns_cached(q->spf->dns, key, DNS_T_TXT)) != NULL) {
		pin_add(q, key, DNS_T_TXT, a);
		free(key);
		return (0);
	}
	wait_note(q, key, DNS_T_TXT);
	free(key);
	q->outstanding = 1;
	q->waits[0]->w = dns_query_prio(q->spf->dns, q->waits[0]->name,
	    DNS_T_TXT, q->background, spf_answered, q->waits[0]);
	return (1);
}

static void
spf_start(evutil_socket_t fd, short what, void *arg)
{
	struct spf_query	*q = arg;
	const struct spf_held	*h;

	(void)fd;
	(void)what;
	if (q->hit) {
		query_done(q, q->hitv.result, q->hitv.explanation,
		    q->hitv.comment, NULL);
		return;
	}
	if ((h = held_find(q->spf, q->domain)) != NULL) {
		query_crashed(q, h);
		return;
	}
	if (own_record(q))
		return;
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
	const char		*at;
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
	q->domain = (at = strrchr(q->mailbox, '@')) != NULL ? at + 1 :
	    q->mailbox;
	addr_format(client, abuf, sizeof(abuf));
	len = cache_key(NULL, 0, identity, abuf, q->mailbox, q->helo);
	q->key = xmalloc(len);
	cache_key(q->key, len, identity, abuf, q->mailbox, q->helo);
	q->hash = key_hash(q->key);
	if ((c = cache_find(spf, q->key, q->hash)) != NULL) {
		struct spf_verdict	v = { c->result, c->domain,
		    c->explanation, c->comment, c->no_mail, 0 };

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
	v.crashed = o->crashed;
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
		spf_reverse_name(&r->addr, rev, sizeof(rev));
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
		spf_reverse_name(&d->spf_addr, rev, sizeof(rev));
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
