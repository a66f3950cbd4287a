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

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ares.h>
#include <ctype.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "natguard.h"

/*
 * Asynchronous DNS: c-ares inside the libevent loop, with a cache.
 *
 * c-ares tells us which sockets it wants watched (sock_state_cb) and when
 * it next wants to run (ares_timeout); the loop calls it back on both.
 * Answers are parsed here, from the wire, so that TTLs (negative ones from
 * the SOA too) are honoured for every record type SPF asks for.  One
 * table holds answers and queries in flight: a name asked for twice while
 * its query runs is sent once, and every waiter gets the answer.
 *
 * Without dns_servers, resolv.conf is followed: containers and DHCP
 * rewrite it while natguard runs.  c-ares (1.18) cannot change a channel's
 * servers while it has questions pending (ARES_ENOTIMP), so new questions
 * go to a new channel and the old one is destroyed once its own are
 * answered.
 */

#define DNS_RESOLV_CONF		"/etc/resolv.conf"

#define DNS_NEG_TTL_DEFAULT	60
#define DNS_TTL_MAX		86400
#define DNS_EDNS_SIZE		1232
/*
 * Answers come in bursts (every recipient's SPF at once, a slow server
 * catching up): the kernel's default UDP buffer drops some of a burst of
 * a few hundred.  The kernel caps this at net.core.rmem_max.
 */
#define DNS_RCVBUF		(4 * 1024 * 1024)
/*
 * Retransmission: a lost UDP packet should cost one short try, not the
 * whole dns_timeout.  A first try gets at least DNS_TRY_MIN_MS: less
 * would send a busy recursive resolver copies it has no answer for yet.
 */
#define DNS_TRY_MIN_MS		400
/*
 * Questions outstanding at once.  A burst of a thousand overflows the
 * receive buffer of a resolver that keeps the kernel's default (about 250
 * datagrams), and what it loses times out, and is sent again, in step;
 * beyond this window questions wait for an answer to make room.  At 300
 * ms a question that is still 850 questions a second.
 */
#define DNS_WINDOW		256
/*
 * Of the window, what questions only the log needs (a gateway's NAT probe,
 * a learning evaluation aside) may hold: with the DNS silent, a thousand
 * probes would otherwise fill it, and every answer a client waits for
 * would queue behind them until spf_timeout.
 */
#define DNS_WINDOW_BACKGROUND	(DNS_WINDOW / 4)

TAILQ_HEAD(dns_waiters, dns_waiter);
struct dns_waiter {
	TAILQ_ENTRY(dns_waiter)	 entry;
	struct dns_waiters	*list;		/* the list it is on */
	dns_cb			 cb;
	void			*arg;
};

struct dns_entry {
	struct dns_entry	*next;		/* hash chain */
	TAILQ_ENTRY(dns_entry)	 lru;		/* completed entries */
	char			*name;		/* lower case, no final dot */
	int			 type;
	uint32_t		 hash;
	struct dns_answer	*answer;	/* NULL: in flight or waiting */
	struct dns_answer	*early;		/* on done: see dns_answered() */
	int			 waiting;	/* on a pending queue, not sent */
	struct dns_chan		*chan;		/* sent on it */
	int			 background;	/* only background waiters */
	TAILQ_ENTRY(dns_entry)	 pend;		/* on pending or on done */
	struct dns_waiters	 waiters;
	struct dns		*dns;
};

/* A c-ares channel, and the questions sent on it and not answered. */
struct dns_chan {
	struct dns		*dns;
	ares_channel		 ch;
	size_t			 queries;
};

struct dns_sock {
	LIST_ENTRY(dns_sock)	 entry;
	ares_socket_t		 fd;
	struct dns_chan		*chan;
	struct event		*ev;
};

/* What resolv.conf was when its servers were last read. */
struct dns_stamp {
	int			 exists;
	dev_t			 dev;
	ino_t			 ino;
	off_t			 size;
	struct timespec		 mtime;
};

struct dns {
	struct event_base	*base;
	struct dns_chan		*chan;		/* new questions go here */
	struct dns_chan		*old;		/* retiring: see above */
	struct event		*retire_ev;
	struct event		*watch_ev;	/* resolv.conf, each second */
	struct dns_stamp	 stamp;
	long			 budget_ms;	/* dns_timeout */
	struct event		*timer;
	LIST_HEAD(, dns_sock)	 socks;
	struct dns_entry	**table;
	size_t			 nbuckets;
	TAILQ_HEAD(dns_lru, dns_entry) lru;
	TAILQ_HEAD(dns_pend, dns_entry) pending; /* past the window */
	struct dns_pend		 bpending;	/* the same, background */
	TAILQ_HEAD(, dns_entry)	 done;		/* answered within dns_send() */
	struct event		*done_ev;
	size_t			 inflight;
	size_t			 binflight;	/* of them, background */
	int			 sending;	/* in dns_send() */
	size_t			 ncached;
	size_t			 cache_size;
	uint64_t		 queries;
	uint64_t		 hits;
	uint64_t		 failures;	/* answered DNS_TEMPFAIL */
	int			 closing;
};

static int	dns_lib_ready;

static void	dns_timer_reset(struct dns *);
static void	dns_send(struct dns *);

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return ("ok");
	case DNS_NXDOMAIN:
		return ("NXDOMAIN");
	case DNS_NODATA:
		return ("no data");
	case DNS_TEMPFAIL:
		break;
	}
	return ("temporary failure");
}

/* Expiry is on the monotonic clock: a wall-clock jump changes no TTL. */
static time_t
dns_now(struct dns *dns)
{
	struct timeval	tv;

	if (event_gettime_monotonic(dns->base, &tv) == -1)
		fatalx("dns: event_gettime_monotonic");
	return (tv.tv_sec);
}

/* FNV-1a over the type and the (already lower-cased) name. */
static uint32_t
dns_hash(const char *name, int type)
{
	uint32_t	h = 2166136261u ^ (uint32_t)type;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return (h);
}

static struct dns_answer *
answer_new(enum dns_status status, int type)
{
	struct dns_answer	*a;

	a = xcalloc(1, sizeof(*a));
	a->status = status;
	a->type = type;
	a->refs = 1;
	return (a);
}

void
dns_answer_unref(struct dns_answer *a)
{
	size_t	i;

	if (a == NULL || --a->refs > 0)
		return;
	for (i = 0; i < a->n; i++)
		free(a->rr[i].data);
	free(a->rr);
	free(a);
}

static struct dns_answer *
answer_ref(struct dns_answer *a)
{
	a->refs++;
	return (a);
}

/* --- parsing an answer from the wire ---------------------------------- */

struct wire {
	const unsigned char	*buf;
	size_t			 len;
	size_t			 off;
};

static int
wire_u16(struct wire *w, unsigned int *v)
{
	if (w->off + 2 > w->len)
		return (-1);
	*v = (unsigned int)w->buf[w->off] << 8 | w->buf[w->off + 1];
	w->off += 2;
	return (0);
}

static int
wire_u32(struct wire *w, uint32_t *v)
{
	unsigned int	hi, lo;

	if (wire_u16(w, &hi) != 0 || wire_u16(w, &lo) != 0)
		return (-1);
	*v = (uint32_t)hi << 16 | lo;
	return (0);
}

/* A (possibly compressed) name at w->off; NULL when malformed. */
static char *
wire_name(const struct wire *w, size_t off, long *enclen)
{
	char	*s;

	if (off >= w->len || ares_expand_name(w->buf + off, w->buf,
	    (int)w->len, &s, enclen) != ARES_SUCCESS)
		return (NULL);
	return (s);
}

static int
wire_skip_name(struct wire *w)
{
	long	 enclen;
	char	*s;

	if ((s = wire_name(w, w->off, &enclen)) == NULL)
		return (-1);
	ares_free_string(s);
	w->off += (size_t)enclen;
	return (0);
}

static void
answer_add(struct dns_answer *a, uint32_t ttl, unsigned int pref,
    const void *data, size_t len)
{
	a->rr = xreallocarray(a->rr, a->n + 1, sizeof(*a->rr));
	a->rr[a->n].ttl = ttl;
	a->rr[a->n].pref = (uint16_t)pref;
	a->rr[a->n].len = len;
	a->rr[a->n].data = xmalloc(len + 1);
	memcpy(a->rr[a->n].data, data, len);
	a->rr[a->n].data[len] = '\0';
	a->n++;
}

/* One record's data, of the type asked for. */
static int
parse_rdata(struct dns_answer *a, const struct wire *w, size_t off,
    size_t rdlen, uint32_t ttl)
{
	struct buf	 txt = { NULL, 0, 0 };
	unsigned int	 pref = 0;
	size_t		 p, end = off + rdlen;
	long		 enclen;
	char		*name;

	switch (a->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (rdlen != (a->type == DNS_T_A ? 4U : 16U))
			return (-1);
		answer_add(a, ttl, 0, w->buf + off, rdlen);
		return (0);
	case DNS_T_TXT:
		/* Character-strings, joined as RFC 7208 3.3 says. */
		buf_add(&txt, "", 0);
		for (p = off; p < end; p += 1 + w->buf[p]) {
			if (p + 1 + w->buf[p] > end) {
				buf_free(&txt);
				return (-1);
			}
			buf_add(&txt, w->buf + p + 1, w->buf[p]);
		}
		answer_add(a, ttl, 0, txt.s, txt.len);
		buf_free(&txt);
		return (0);
	case DNS_T_MX:
		if (rdlen < 3)
			return (-1);
		pref = (unsigned int)w->buf[off] << 8 | w->buf[off + 1];
		off += 2;
		/* FALLTHROUGH */
	case DNS_T_PTR:
		if ((name = wire_name(w, off, &enclen)) == NULL ||
		    off + (size_t)enclen > end) {
			if (name != NULL)
				ares_free_string(name);
			return (-1);
		}
		answer_add(a, ttl, pref, name, strlen(name));
		ares_free_string(name);
		return (0);
	}
	return (-1);
}

/*
 * The records of the asked type in the answer section (a CNAME chain is
 * followed by the resolver, so the owner names are not checked), and the
 * negative TTL from an SOA in the authority section.
 */
static int
dns_parse(struct dns_answer *a, const unsigned char *buf, size_t len,
    uint32_t *negttl)
{
	struct wire	 w = { buf, len, 12 };
	unsigned int	 qd, an, ns, type, class, rdlen, i;
	uint32_t	 ttl, minimum;

	*negttl = DNS_NEG_TTL_DEFAULT;
	if (len < 12)
		return (-1);
	qd = (unsigned int)buf[4] << 8 | buf[5];
	an = (unsigned int)buf[6] << 8 | buf[7];
	ns = (unsigned int)buf[8] << 8 | buf[9];
	for (i = 0; i < qd; i++)
		if (wire_skip_name(&w) != 0 || (w.off += 4) > len)
			return (-1);
	for (i = 0; i < an + ns; i++) {
		if (wire_skip_name(&w) != 0 || wire_u16(&w, &type) != 0 ||
		    wire_u16(&w, &class) != 0 || wire_u32(&w, &ttl) != 0 ||
		    wire_u16(&w, &rdlen) != 0 || w.off + rdlen > len)
			return (-1);
		if (ttl > DNS_TTL_MAX)
			ttl = DNS_TTL_MAX;
		if (i < an && class == 1 && (int)type == a->type &&
		    parse_rdata(a, &w, w.off, rdlen, ttl) != 0)
			return (-1);
		if (i >= an && type == 6 && rdlen >= 20) {
			/* RFC 2308: the smaller of the SOA's TTL and MINIMUM. */
			struct wire	m = { buf, w.off + rdlen, w.off + rdlen - 4 };

			if (wire_u32(&m, &minimum) == 0)
				*negttl = ttl < minimum ? ttl : minimum;
		}
		w.off += rdlen;
	}
	return (0);
}

/*
 * An answer off the wire: the records of the type asked for, NODATA when
 * there are none, or TEMPFAIL "malformed answer".  *ttl: how long it may
 * be kept.  The resolver's callback and the fuzzer both call this.
 */
/*
 * MX hosts in order of preference, the order in which mail tries them
 * (equal ones by name, not as a server's round robin happened to send
 * them): an mx term is evaluated host by host until one matches, so the
 * order decides whether a host that fails is reached, and it must not
 * change from one answer to the next.
 */
static void
mx_sort(struct dns_answer *a)
{
	struct dns_rr	rr;
	size_t		i, j;

	for (i = 1; i < a->n; i++) {
		rr = a->rr[i];
		for (j = i; j > 0 && (a->rr[j - 1].pref > rr.pref ||
		    (a->rr[j - 1].pref == rr.pref &&
		    strcasecmp(a->rr[j - 1].data, rr.data) > 0)); j--)
			a->rr[j] = a->rr[j - 1];
		a->rr[j] = rr;
	}
}

struct dns_answer *
dns_answer_parse(const unsigned char *buf, size_t len, int type,
    int nxdomain, uint32_t *ttl)
{
	struct dns_answer	*a;
	uint32_t		 negttl;
	size_t			 i;

	*ttl = 0;
	a = answer_new(nxdomain ? DNS_NXDOMAIN : DNS_OK, type);
	if (buf == NULL || dns_parse(a, buf, len, &negttl) != 0) {
		dns_answer_unref(a);
		a = answer_new(DNS_TEMPFAIL, type);
		a->error = "malformed answer";
		return (a);
	}
	if (a->status == DNS_OK && a->n == 0)
		a->status = DNS_NODATA;
	if (type == DNS_T_MX)
		mx_sort(a);
	*ttl = a->status == DNS_OK ? DNS_TTL_MAX : negttl;
	for (i = 0; i < a->n; i++)
		if (a->rr[i].ttl < *ttl)
			*ttl = a->rr[i].ttl;
	return (a);
}

/* --- the cache -------------------------------------------------------- */

/* A name as the cache keys it: lower case, no final dot. */
char *
dns_name(const char *name)
{
	char	*s = xstrdup(name), *p;
	size_t	 len = strlen(s);

	while (len > 0 && s[len - 1] == '.')
		s[--len] = '\0';
	for (p = s; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return (s);
}

static struct dns_entry *
entry_find(struct dns *dns, const char *key, int type, uint32_t hash)
{
	struct dns_entry	*e;

	for (e = dns->table[hash & (dns->nbuckets - 1)]; e != NULL;
	    e = e->next)
		if (e->hash == hash && e->type == type &&
		    strcmp(e->name, key) == 0)
			return (e);
	return (NULL);
}

static void
entry_unlink(struct dns *dns, struct dns_entry *e)
{
	struct dns_entry	**pp;

	for (pp = &dns->table[e->hash & (dns->nbuckets - 1)]; *pp != e;
	    pp = &(*pp)->next)
		;
	*pp = e->next;
	if (e->answer != NULL) {
		TAILQ_REMOVE(&dns->lru, e, lru);
		dns->ncached--;
	}
}

static void
entry_free(struct dns_entry *e)
{
	struct dns_waiter	*w;

	while ((w = TAILQ_FIRST(&e->waiters)) != NULL) {
		TAILQ_REMOVE(&e->waiters, w, entry);
		free(w);
	}
	dns_answer_unref(e->answer);
	dns_answer_unref(e->early);
	free(e->name);
	free(e);
}

/* A cached, unexpired answer (a reference for the caller), or NULL. */
struct dns_answer *
dns_cached(struct dns *dns, const char *name, int type)
{
	struct dns_entry	*e;
	char			*key = dns_name(name);

	e = entry_find(dns, key, type, dns_hash(key, type));
	free(key);
	if (e == NULL || e->answer == NULL)
		return (NULL);
	if (e->answer->expires <= dns_now(dns)) {
		entry_unlink(dns, e);
		entry_free(e);
		return (NULL);
	}
	TAILQ_REMOVE(&dns->lru, e, lru);
	TAILQ_INSERT_HEAD(&dns->lru, e, lru);
	dns->hits++;
	return (answer_ref(e->answer));
}

/*
 * The query is done: keep the answer (within bounds), then tell the
 * waiters.  The waiters are taken off the entry first: a callback may ask
 * again, cancel another waiter, or cause the entry to be evicted.
 */
static void
entry_complete(struct dns *dns, struct dns_entry *e, struct dns_answer *a)
{
	struct dns_waiters	 waiters = TAILQ_HEAD_INITIALIZER(waiters);
	struct dns_waiter	*w;
	struct dns_entry	*old;

	while ((w = TAILQ_FIRST(&e->waiters)) != NULL) {
		TAILQ_REMOVE(&e->waiters, w, entry);
		TAILQ_INSERT_TAIL(&waiters, w, entry);
		w->list = &waiters;
	}
	e->answer = a;
	TAILQ_INSERT_HEAD(&dns->lru, e, lru);
	dns->ncached++;
	answer_ref(a);
	/* Temporary failures are not kept; neither is anything past size. */
	if (a->status == DNS_TEMPFAIL || a->expires <= dns_now(dns) ||
	    dns->cache_size == 0) {
		entry_unlink(dns, e);
		entry_free(e);
	}
	while (dns->ncached > dns->cache_size &&
	    (old = TAILQ_LAST(&dns->lru, dns_lru)) != NULL) {
		entry_unlink(dns, old);
		entry_free(old);
	}
	while ((w = TAILQ_FIRST(&waiters)) != NULL) {
		TAILQ_REMOVE(&waiters, w, entry);
		w->cb(answer_ref(a), w->arg);
		free(w);
	}
	dns_answer_unref(a);
}

static void
dns_answered(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_entry	*e = arg;
	struct dns		*dns = e->dns;
	struct dns_answer	*a;
	uint32_t		 ttl;

	(void)timeouts;
	if (dns->closing)
		return;	/* dns_free() frees the entries */
	dns->inflight--;
	if (e->background)
		dns->binflight--;
	if (--e->chan->queries == 0 && e->chan == dns->old)
		event_active(dns->retire_ev, EV_TIMEOUT, 0);
	switch (status) {
	case ARES_EBADNAME:
		/* No such name can exist (a label over 63 octets, say). */
		a = answer_new(DNS_NXDOMAIN, e->type);
		a->expires = dns_now(dns) + DNS_NEG_TTL_DEFAULT;
		break;
	case ARES_SUCCESS:
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		a = dns_answer_parse(abuf, abuf == NULL ? 0 : (size_t)alen,
		    e->type, status == ARES_ENOTFOUND, &ttl);
		if (a->status != DNS_TEMPFAIL)
			a->expires = dns_now(dns) + (time_t)ttl;
		break;
	default:
		a = answer_new(DNS_TEMPFAIL, e->type);
		a->error = status == ARES_ETIMEOUT ? "timeout" :
		    ares_strerror(status);
		break;
	}
	if (a->status == DNS_TEMPFAIL)
		dns->failures++;
	if (dns->sending) {
		/*
		 * From within ares_query(): c-ares refused the name, or could
		 * reach no server (no route: every try fails at once).  The
		 * asker's waiter is not on the entry yet, and callbacks are
		 * the loop's: dns_done() completes it, next time round.
		 */
		e->early = a;
		TAILQ_INSERT_TAIL(&dns->done, e, pend);
		event_active(dns->done_ev, EV_TIMEOUT, 0);
		return;
	}
	entry_complete(dns, e, a);
	dns_send(dns);
}

static void
dns_done(evutil_socket_t fd, short what, void *arg)
{
	struct dns		*dns = arg;
	struct dns_entry	*e;
	struct dns_answer	*a;

	(void)fd;
	(void)what;
	while ((e = TAILQ_FIRST(&dns->done)) != NULL) {
		TAILQ_REMOVE(&dns->done, e, pend);
		a = e->early;
		e->early = NULL;
		entry_complete(dns, e, a);
	}
	dns_send(dns);
}

/*
 * Give c-ares the waiting questions the window has room for.  ares_query()
 * may call back at once (a name it refuses, no server it can reach):
 * dns_answered() then leaves the answer to dns_done(), and the loop here
 * goes on.
 */
static void
dns_send(struct dns *dns)
{
	struct dns_entry	*e;

	if (dns->sending)
		return;
	dns->sending = 1;
	for (;;) {
		if (dns->inflight >= DNS_WINDOW)
			break;
		if ((e = TAILQ_FIRST(&dns->pending)) != NULL)
			TAILQ_REMOVE(&dns->pending, e, pend);
		else if (dns->binflight < DNS_WINDOW_BACKGROUND &&
		    (e = TAILQ_FIRST(&dns->bpending)) != NULL) {
			TAILQ_REMOVE(&dns->bpending, e, pend);
			dns->binflight++;
		} else
			break;
		e->waiting = 0;
		dns->inflight++;
		e->chan = dns->chan;
		e->chan->queries++;
		ares_query(e->chan->ch, e->name, 1 /* IN */, e->type,
		    dns_answered, e);
	}
	dns->sending = 0;
	dns_timer_reset(dns);
}

/*
 * Ask for name/type; cb gets a reference to the answer, later, from the
 * loop (never from within this call).  The returned waiter can be
 * cancelled until then.  A background question waits behind every other
 * and holds at most DNS_WINDOW_BACKGROUND of the window; a question asked
 * in the foreground too is promoted while it waits.
 */
struct dns_waiter *
dns_query(struct dns *dns, const char *name, int type, dns_cb cb, void *arg)
{
	return (dns_query_prio(dns, name, type, 0, cb, arg));
}

struct dns_waiter *
dns_query_prio(struct dns *dns, const char *name, int type, int background,
    dns_cb cb, void *arg)
{
	struct dns_entry	*e;
	struct dns_waiter	*w;
	char			*key = dns_name(name);
	uint32_t		 hash = dns_hash(key, type);

	if ((e = entry_find(dns, key, type, hash)) != NULL &&
	    e->answer != NULL && e->answer->expires <= dns_now(dns)) {
		entry_unlink(dns, e);
		entry_free(e);
		e = NULL;
	}
	if (e != NULL && e->answer != NULL) {
		/* Answered meanwhile: a new query keeps the contract simple. */
		entry_unlink(dns, e);
		entry_free(e);
		e = NULL;
	}
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->name = key;
		key = NULL;
		e->type = type;
		e->hash = hash;
		e->dns = dns;
		TAILQ_INIT(&e->waiters);
		e->next = dns->table[hash & (dns->nbuckets - 1)];
		dns->table[hash & (dns->nbuckets - 1)] = e;
		dns->queries++;
		e->waiting = 1;
		e->background = background;
		TAILQ_INSERT_TAIL(background ? &dns->bpending : &dns->pending,
		    e, pend);
		dns_send(dns);
	} else if (!background && e->background && e->waiting) {
		TAILQ_REMOVE(&dns->bpending, e, pend);
		e->background = 0;
		TAILQ_INSERT_TAIL(&dns->pending, e, pend);
		dns_send(dns);
	}
	free(key);
	w = xcalloc(1, sizeof(*w));
	w->list = &e->waiters;
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&e->waiters, w, entry);
	return (w);
}

/* The waiter's callback will not be called.  The query runs on. */
void
dns_cancel(struct dns_waiter *w)
{
	if (w == NULL)
		return;
	TAILQ_REMOVE(w->list, w, entry);
	free(w);
}

/* Whether answers are kept (dns_cache_size > 0). */
int
dns_caching(const struct dns *dns)
{
	return (dns->cache_size > 0);
}

void
dns_stats(const struct dns *dns, uint64_t *queries, uint64_t *hits,
    uint64_t *failures)
{
	*queries = dns->queries;
	*hits = dns->hits;
	*failures = dns->failures;
}

/* --- c-ares in the event loop ------------------------------------------ */

static void
dns_timer_reset(struct dns *dns)
{
	struct timeval	 tv, tv2, *tvp, *tvp2 = NULL;

	tvp = ares_timeout(dns->chan->ch, NULL, &tv);
	if (dns->old != NULL)
		tvp2 = ares_timeout(dns->old->ch, NULL, &tv2);
	if (tvp == NULL || (tvp2 != NULL && timercmp(tvp2, tvp, <)))
		tvp = tvp2;
	if (tvp != NULL)
		evtimer_add(dns->timer, tvp);
	else
		evtimer_del(dns->timer);
}

static void
dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns	*dns = arg;

	(void)fd;
	(void)what;
	ares_process_fd(dns->chan->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	if (dns->old != NULL)
		ares_process_fd(dns->old->ch, ARES_SOCKET_BAD,
		    ARES_SOCKET_BAD);
	dns_timer_reset(dns);
}

static void
dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_sock	*s = arg;
	struct dns	*dns = s->chan->dns;

	/* s may be freed within: c-ares closes sockets as it goes. */
	ares_process_fd(s->chan->ch,
	    (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	dns_timer_reset(dns);
}

static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_chan	*chan = data;
	struct dns	*dns = chan->dns;
	struct dns_sock	*s;

	LIST_FOREACH(s, &dns->socks, entry)
		if (s->fd == fd)
			break;
	if (s != NULL) {
		event_free(s->ev);
		if (!readable && !writable) {
			LIST_REMOVE(s, entry);
			free(s);
			return;
		}
	} else {
		if (!readable && !writable)
			return;
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->chan = chan;
		LIST_INSERT_HEAD(&dns->socks, s, entry);
	}
	s->ev = event_new(dns->base, fd, EV_PERSIST | (readable ? EV_READ : 0) |
	    (writable ? EV_WRITE : 0), dns_sock_cb, s);
	if (s->ev == NULL || event_add(s->ev, NULL) == -1)
		fatalx("dns: event_new");
}

/* dns_servers in c-ares' CSV form: "IP:PORT" and "[IPV6]:PORT". */
static char *
dns_servers_csv(const struct strlist *servers)
{
	struct buf	b = { NULL, 0, 0 };
	struct addr	a;
	size_t		i;

	buf_add(&b, "", 0);
	for (i = 0; i < servers->n; i++) {
		if (i > 0)
			buf_add(&b, ",", 1);
		/* A bare IPv6 address needs brackets to take no port. */
		if (servers->v[i][0] != '[' &&
		    addr_parse(servers->v[i], &a) == 0 &&
		    a.family == AF_INET6) {
			buf_add(&b, "[", 1);
			buf_adds(&b, servers->v[i]);
			buf_add(&b, "]", 1);
		} else
			buf_adds(&b, servers->v[i]);
	}
	return (buf_take(&b));
}

/* How many servers c-ares will ask: servers, or resolv.conf's. */
static int
dns_server_count(const struct strlist *servers)
{
	struct ares_addr_port_node	*list, *p;
	ares_channel			 ch;
	int				 n = 0;

	if (servers->n > 0)
		return ((int)servers->n);
	if (ares_init(&ch) != ARES_SUCCESS)
		return (1);
	if (ares_get_servers_ports(ch, &list) == ARES_SUCCESS) {
		for (p = list; p != NULL; p = p->next)
			n++;
		ares_free_data(list);
	}
	ares_destroy(ch);
	return (n > 0 ? n : 1);
}

/*
 * The per-try timeout and the number of tries that spend dns_timeout.
 * c-ares (1.18, next_server()) tries the servers in turn and gives try t
 * timeout << (t / nservers): rounds over all servers, each twice as
 * patient as the last.  Take as many rounds as leave a first try of at
 * least DNS_TRY_MIN_MS, and the first try that makes them add up to the
 * budget: 5 s and one server are 714 ms, 1.4 s, 2.9 s.
 */
static void
dns_retry_plan(long budget_ms, int nservers, int *timeout_ms, int *tries)
{
	long	rounds = 1, t0;

	while (rounds < 8 && budget_ms / (nservers * ((2L << rounds) - 1)) >=
	    DNS_TRY_MIN_MS)
		rounds++;
	t0 = budget_ms / (nservers * ((1L << rounds) - 1));
	if (t0 < 1)
		t0 = 1;
	*timeout_ms = (int)t0;
	*tries = (int)rounds * nservers;
}

/*
 * A channel asking servers (dns_servers), or resolv.conf's when servers
 * is empty; NULL with *errp set when c-ares refuses.
 */
static struct dns_chan *
dns_chan_new(struct dns *dns, const struct strlist *servers, char **errp)
{
	struct ares_options	 opts;
	struct dns_chan		*chan;
	char			*csv;
	int			 rc;

	chan = xcalloc(1, sizeof(*chan));
	chan->dns = dns;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = chan;
	dns_retry_plan(dns->budget_ms, dns_server_count(servers),
	    &opts.timeout, &opts.tries);
	opts.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	opts.ednspsz = DNS_EDNS_SIZE;
	opts.socket_receive_buffer_size = DNS_RCVBUF;
	if ((rc = ares_init_options(&chan->ch, &opts, ARES_OPT_SOCK_STATE_CB |
	    ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
	    ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_RCVBUF)) != ARES_SUCCESS) {
		xasprintf(errp, "dns: %s", ares_strerror(rc));
		free(chan);
		return (NULL);
	}
	if (servers->n > 0) {
		csv = dns_servers_csv(servers);
		rc = ares_set_servers_ports_csv(chan->ch, csv);
		free(csv);
		if (rc != ARES_SUCCESS) {
			xasprintf(errp, "dns_servers: %s", ares_strerror(rc));
			ares_destroy(chan->ch);
			free(chan);
			return (NULL);
		}
	}
	return (chan);
}

static void
dns_chan_free(struct dns_chan *chan)
{
	if (chan == NULL)
		return;
	ares_destroy(chan->ch);	/* calls back with ARES_EDESTRUCTION */
	free(chan);
}

/* A channel's servers, "IP:PORT,..." (for the log). */
static char *
dns_chan_servers(const struct dns_chan *chan)
{
	struct ares_addr_port_node	*list, *p;
	struct buf			 b = { NULL, 0, 0 };
	char				 ip[INET6_ADDRSTRLEN], port[16];

	buf_add(&b, "", 0);
	if (ares_get_servers_ports(chan->ch, &list) != ARES_SUCCESS)
		return (buf_take(&b));
	for (p = list; p != NULL; p = p->next) {
		if (inet_ntop(p->family, &p->addr, ip, sizeof(ip)) == NULL)
			continue;
		if (b.len > 0)
			buf_add(&b, ",", 1);
		snprintf(port, sizeof(port), ":%d", p->udp_port ? p->udp_port :
		    53);
		if (p->family == AF_INET6)
			buf_add(&b, "[", 1);
		buf_adds(&b, ip);
		if (p->family == AF_INET6)
			buf_add(&b, "]", 1);
		buf_adds(&b, port);
	}
	ares_free_data(list);
	return (buf_take(&b));
}

static void
dns_stamp_read(struct dns_stamp *st)
{
	struct stat	sb;

	memset(st, 0, sizeof(*st));
	if (stat(DNS_RESOLV_CONF, &sb) == -1)
		return;
	st->exists = 1;
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
}

static int
dns_stamp_same(const struct dns_stamp *a, const struct dns_stamp *b)
{
	return (a->exists == b->exists && a->dev == b->dev &&
	    a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec);
}

/* The old channel's last question is answered: destroy it. */
static void
dns_retire(evutil_socket_t fd, short what, void *arg)
{
	struct dns	*dns = arg;

	(void)fd;
	(void)what;
	if (dns->old == NULL || dns->old->queries > 0)
		return;
	dns_chan_free(dns->old);
	dns->old = NULL;
	dns_timer_reset(dns);
}

/*
 * Each second: has resolv.conf changed?  Then its servers take the new
 * questions from now on (while an older change still drains, the next
 * check tries again).
 */
static void
dns_watch(evutil_socket_t fd, short what, void *arg)
{
	static const struct strlist	 none;
	struct dns			*dns = arg;
	struct dns_stamp		 st;
	struct dns_chan			*chan;
	char				*was, *now, *err = NULL;

	(void)fd;
	(void)what;
	dns_stamp_read(&st);
	if (dns_stamp_same(&st, &dns->stamp) || dns->old != NULL)
		return;
	dns->stamp = st;
	if ((chan = dns_chan_new(dns, &none, &err)) == NULL) {
		log_warnx("dns: %s changed, but: %s; keeping the servers it "
		    "named", DNS_RESOLV_CONF, err);
		free(err);
		return;
	}
	was = dns_chan_servers(dns->chan);
	now = dns_chan_servers(chan);
	if (strcmp(was, now) == 0)
		dns_chan_free(chan);
	else {
		log_info("dns: %s changed: servers %s (were %s)",
		    DNS_RESOLV_CONF, now, was);
		dns->old = dns->chan;
		dns->chan = chan;
		if (dns->old->queries == 0)
			dns_retire(-1, 0, dns);
	}
	free(was);
	free(now);
}

struct dns *
dns_new(struct event_base *base, const struct config *cfg, char **errp)
{
	struct dns	*dns;
	struct timeval	 sec = { 1, 0 };
	int		 rc;

	if (!dns_lib_ready) {
		if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS)
			fatalx("ares_library_init: %s", ares_strerror(rc));
		dns_lib_ready = 1;
	}
	dns = xcalloc(1, sizeof(*dns));
	dns->base = base;
	dns->budget_ms = (long)(cfg->dns_timeout * 1000);
	dns->cache_size = (size_t)cfg->dns_cache_size;
	for (dns->nbuckets = 64; dns->nbuckets < dns->cache_size * 2;)
		dns->nbuckets *= 2;
	dns->table = xcalloc(dns->nbuckets, sizeof(*dns->table));
	TAILQ_INIT(&dns->lru);
	TAILQ_INIT(&dns->pending);
	TAILQ_INIT(&dns->bpending);
	TAILQ_INIT(&dns->done);
	LIST_INIT(&dns->socks);

	dns_stamp_read(&dns->stamp);
	if ((dns->chan = dns_chan_new(dns, &cfg->dns_servers, errp)) == NULL) {
		free(dns->table);
		free(dns);
		return (NULL);
	}
	if ((dns->timer = evtimer_new(base, dns_timer_cb, dns)) == NULL ||
	    (dns->done_ev = evtimer_new(base, dns_done, dns)) == NULL ||
	    (dns->retire_ev = evtimer_new(base, dns_retire, dns)) == NULL)
		fatalx("dns: evtimer_new");
	if (cfg->dns_servers.n == 0) {
		if ((dns->watch_ev = event_new(base, -1, EV_PERSIST, dns_watch,
		    dns)) == NULL || event_add(dns->watch_ev, &sec) == -1)
			fatalx("dns: event_new");
	}
	return (dns);
}

void
dns_free(struct dns *dns)
{
	struct dns_entry	*e, *next;
	struct dns_sock		*s;
	size_t			 i;

	if (dns == NULL)
		return;
	dns->closing = 1;
	dns_chan_free(dns->chan);
	dns_chan_free(dns->old);
	while ((s = LIST_FIRST(&dns->socks)) != NULL) {
		LIST_REMOVE(s, entry);
		event_free(s->ev);
		free(s);
	}
	for (i = 0; i < dns->nbuckets; i++) {
		for (e = dns->table[i]; e != NULL; e = next) {
			next = e->next;
			entry_free(e);
		}
	}
	free(dns->table);
	event_free(dns->timer);
	event_free(dns->done_ev);
	event_free(dns->retire_ev);
	if (dns->watch_ev != NULL)
		event_free(dns->watch_ev);
	free(dns);
}
