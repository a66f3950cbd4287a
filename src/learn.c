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
#include <sys/stat.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <libpsl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

/*
 * Hiders learned from traffic (SPEC section 5, source "traffic").  A
 * private client (private_networks) from which hider_threshold unrelated
 * sender domains failed SPF within hider_window is a proxy, a routing mesh
 * or a NAT router, not a sender: no single host sends as that many
 * unrelated domains and fails each one's SPF.  "Unrelated" is "different
 * registrable domains" (the public suffix list, through libpsl), so that
 * a.example.org and b.example.org count once.
 *
 * Bounds, whatever arrives (natguard.conf(5) states them):
 *   HIDER_ADDRS_MAX entries, each with at most HIDER_DOMAINS_MAX domains
 *   of at most 253 bytes, in one array that never grows past it: about
 *   2.1 KiB an entry, 2.2 MiB in all.  A full table evicts the entry
 *   whose last evidence is oldest, learned hiders last.
 *   HIDER_LEARNED_MAX learned hiders, so the state file stays under
 *   about 700 KiB.
 * Only the caller decides what is evidence; this module never looks at a
 * public address because it is never given one (learn_record() refuses).
 *
 * The state file (state_dir/hiders.json) holds the learned hiders, written
 * whole to a temporary file and renamed over the old one.  `natguard
 * gateways --forget` writes it the same way; the daemon notices a file it
 * did not write (learn_sync()) and takes the learned set from it.
 */

#define STATE_FORMAT	"natguard-hiders"
#define STATE_VERSION	1
#define STATE_FILE	"hiders.json"
#define STATE_MAX	(1024 * 1024)
#define DOMAIN_MAX	253

struct hdomain {
	char		name[DOMAIN_MAX + 1];
	long long	seen;
};

struct hentry {
	struct addr	 a;
	long long	 first;
	long long	 last;
	unsigned int	 count;
	long long	 learned;	/* 0: not (yet) a hider */
	int		 host;		/* on the mail host (loopback, own) */
	int		 ndom;
	struct hdomain	 dom[HIDER_DOMAINS_MAX];
};

struct learn {
	struct hentry	*v;		/* HIDER_ADDRS_MAX, allocated once */
	size_t		 n;
	uint64_t	 threshold;
	uint64_t	 window;
	uint64_t	 expiry;
	struct netlist	*private_nets;	/* a copy: configs are replaced */
	char		*path;		/* NULL: memory only */
	int		 dirty;		/* learned set or evidence changed */
	struct stat	 st;		/* the file as we last wrote or read it */
	int		 have_st;
};

/* libpsl, loaded once: Debian's list if it is there, the built-in one if not. */
static const psl_ctx_t *
psl(void)
{
	static const psl_ctx_t	*ctx;
	static int		 tried;

	if (!tried) {
		tried = 1;
		if ((ctx = psl_latest(NULL)) == NULL)
			ctx = psl_builtin();
	}
	return (ctx);
}

/*
 * The registrable domain of a name ("mail.example.co.uk" is
 * "example.co.uk"), lower case, into buf; the name itself when it is a
 * public suffix or the list does not know it.  NULL for no name.
 */
const char *
registrable_domain(const char *name, char *buf, size_t len)
{
	char		 low[DOMAIN_MAX + 2];
	const char	*r;
	size_t		 i, n;

	if (name == NULL || (n = strlen(name)) == 0 || n > DOMAIN_MAX + 1)
		return (NULL);
	for (i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[n] = '\0';
	if (n > 1 && low[n - 1] == '.')
		low[--n] = '\0';
	if (n > DOMAIN_MAX)
		return (NULL);
	r = psl() != NULL ? psl_registrable_domain(psl(), low) : NULL;
	snprintf(buf, len, "%s", r != NULL ? r : low);
	return (buf);
}

struct learn *
learn_new(const struct config *cfg)
{
	struct learn	*l;

	l = xcalloc(1, sizeof(*l));
	l->v = xcalloc(HIDER_ADDRS_MAX, sizeof(*l->v));
	learn_config(l, cfg);
	return (l);
}

void
learn_free(struct learn *l)
{
	if (l == NULL)
		return;
	netlist_free(l->private_nets);
	free(l->path);
	free(l->v);
	free(l);
}

/* state_dir/hiders.json, or NULL when state_dir is empty. */
char *
learn_state_path(const struct config *cfg)
{
	char	*p;

	if (cfg->state_dir[0] == '\0')
		return (NULL);
	xasprintf(&p, "%s/%s", cfg->state_dir, STATE_FILE);
	return (p);
}

/* A new configuration: thresholds, the private networks, the file. */
void
learn_config(struct learn *l, const struct config *cfg)
{
	char	*path;
	size_t	 i;

	l->threshold = cfg->hider_threshold;
	l->window = cfg->hider_window;
	l->expiry = cfg->hider_expiry;
	netlist_free(l->private_nets);
	l->private_nets = netlist_new();
	for (i = 0; i < netlist_count(cfg->private_networks); i++)
		netlist_add(l->private_nets,
		    netlist_get(cfg->private_networks, i));
	path = learn_state_path(cfg);
	if (path == NULL || l->path == NULL || strcmp(path, l->path) != 0)
		l->have_st = 0;
	free(l->path);
	l->path = path;
}

static int
addr_equal(const struct addr *a, const struct addr *b)
{
	return (a->family == b->family &&
	    memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0);
}

static struct hentry *
find(struct learn *l, const struct addr *a)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		if (addr_equal(&l->v[i].a, a))
			return (&l->v[i]);
	return (NULL);
}

static void
remove_at(struct learn *l, size_t i)
{
	l->v[i] = l->v[--l->n];
}

size_t
learn_count(const struct learn *l)
{
	size_t	i, n = 0;

	for (i = 0; i < l->n; i++)
		if (l->v[i].learned != 0)
			n++;
	return (n);
}

size_t
learn_tracked(const struct learn *l)
{
	return (l->n);
}

int
learn_dirty(const struct learn *l)
{
	return (l->dirty);
}

/*
 * Room for one more: the entry with the oldest last evidence goes,
 * one still learning before a learned one (learned is 0 for those).
 */
static struct hentry *
slot(struct learn *l, int learned)
{
	size_t	i, victim = 0, nlearned = learn_count(l);

	if (learned && nlearned >= HIDER_LEARNED_MAX) {
		for (i = 0; i < l->n; i++)
			if (l->v[i].learned != 0 && (l->v[victim].learned ==
			    0 || l->v[i].last < l->v[victim].last))
				victim = i;
		remove_at(l, victim);
	}
	if (l->n < HIDER_ADDRS_MAX) {
		memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
		return (&l->v[l->n++]);
	}
	for (i = 1; i < l->n; i++) {
		if ((l->v[i].learned != 0) != (l->v[victim].learned != 0)) {
			if (l->v[i].learned == 0)
				victim = i;
		} else if (l->v[i].last < l->v[victim].last)
			victim = i;
	}
	memset(&l->v[victim], 0, sizeof(l->v[victim]));
	return (&l->v[victim]);
}

/* Domains seen within the window (all of them, for a learned hider). */
static int
fresh_domains(const struct learn *l, const struct hentry *e, long long now)
{
	int	i, n = 0;

	for (i = 0; i < e->ndom; i++)
		if (e->learned != 0 || e->dom[i].seen + (long long)l->window >=
		    now)
			n++;
	return (n);
}

static void
add_domain(struct hentry *e, const char *dom, long long now)
{
	int	i, oldest = 0;

	for (i = 0; i < e->ndom; i++) {
		if (strcmp(e->dom[i].name, dom) == 0) {
			e->dom[i].seen = now;
			return;
		}
		if (e->dom[i].seen < e->dom[oldest].seen)
			oldest = i;
	}
	if (e->ndom < HIDER_DOMAINS_MAX)
		i = e->ndom++;
	else
		i = oldest;
	/* dom is a registrable_domain(): at most DOMAIN_MAX bytes. */
	memcpy(e->dom[i].name, dom, strnlen(dom, DOMAIN_MAX));
	e->dom[i].name[strnlen(dom, DOMAIN_MAX)] = '\0';
	e->dom[i].seen = now;
}

/*
 * Evidence: a request from private client a whose SPF for domain failed;
 * host says a is loopback or one of the mail host's own addresses (public
 * ones too: decide() knows, from the gateway set).  Returns 1 when a
 * became a hider with it, 0 when not (yet), -1 when the evidence is
 * refused (another public address, no domain).
 */
int
learn_record(struct learn *l, const struct addr *a, int host,
    const char *domain, long long now)
{
	struct hentry	*e;
	char		 reg[DOMAIN_MAX + 2];

	if ((!host && netlist_find(l->private_nets, a) < 0) ||
	    registrable_domain(domain, reg, sizeof(reg)) == NULL)
		return (-1);
	if ((e = find(l, a)) == NULL) {
		e = slot(l, 0);
		e->a = *a;
		e->first = now;
	}
	e->host = host;
	e->count++;
	e->last = now;
	add_domain(e, reg, now);
	if (e->learned != 0) {
		l->dirty = 1;
		return (0);
	}
	if ((uint64_t)fresh_domains(l, e, now) < l->threshold)
		return (0);
	/* Past the threshold: one more learned hider, within its bound. */
	if (learn_count(l) >= HIDER_LEARNED_MAX) {
		struct hentry	keep = *e;

		remove_at(l, (size_t)(e - l->v));
		e = slot(l, 1);
		*e = keep;
	}
	e->learned = now;
	l->dirty = 1;
	return (1);
}

/* A learned hider still carries failing mail: its evidence is fresh. */
void
learn_refresh(struct learn *l, const struct addr *a, long long now)
{
	struct hentry	*e;

	if ((e = find(l, a)) == NULL || e->learned == 0)
		return;
	e->count++;
	e->last = now;
	l->dirty = 1;
}

/*
 * Learned hiders with no evidence for hider_expiry are forgotten, and
 * evidence older than hider_window goes.  Returns the hiders forgotten.
 */
int
learn_expire(struct learn *l, long long now)
{
	struct hentry	*e;
	size_t		 i;
	int		 gone = 0;

	for (i = 0; i < l->n; ) {
		e = &l->v[i];
		if (e->learned != 0 ? e->last + (long long)l->expiry < now :
		    fresh_domains(l, e, now) == 0) {
			if (e->learned != 0)
				gone++;
			remove_at(l, i);
			continue;
		}
		i++;
	}
	if (gone > 0)
		l->dirty = 1;
	return (gone);
}

int
learn_forget(struct learn *l, const struct addr *a)
{
	struct hentry	*e;

	if ((e = find(l, a)) == NULL || e->learned == 0)
		return (-1);
	remove_at(l, (size_t)(e - l->v));
	l->dirty = 1;
	return (0);
}

static void
evidence_of(const struct hentry *e, struct hider_evidence *ev)
{
	struct buf	b = { NULL, 0, 0 };
	int		i;

	memset(ev, 0, sizeof(*ev));
	ev->count = e->count;
	ev->ndomains = (unsigned int)e->ndom;
	ev->first = e->first;
	ev->last = e->last;
	for (i = 0; i < e->ndom; i++) {
		if (i > 0)
			buf_adds(&b, ", ");
		buf_adds(&b, e->dom[i].name);
	}
	snprintf(ev->domains, sizeof(ev->domains), "%s", b.s ? b.s : "");
	buf_free(&b);
}

/* The learned hiders, into a gateway set (source traffic). */
void
learn_gateways(const struct learn *l, struct gwset *gs)
{
	struct hider_evidence	ev;
	size_t			i;

	for (i = 0; i < l->n; i++) {
		if (l->v[i].learned == 0)
			continue;
		evidence_of(&l->v[i], &ev);
		(void)gwset_add_traffic(gs, &l->v[i].a, &ev);
	}
}

/* The state file's object: the learned hiders only. */
static json_t *
state_json(const struct learn *l)
{
	json_t		*list = json_array(), *doms, *o;
	char		 buf[INET6_ADDRSTRLEN];
	size_t		 i;
	int		 j;

	for (i = 0; i < l->n; i++) {
		if (l->v[i].learned == 0)
			continue;
		doms = json_array();
		for (j = 0; j < l->v[i].ndom; j++)
			json_array_append_new(doms, json_pack("{s:s, s:I}",
			    "name", l->v[i].dom[j].name, "seen",
			    (json_int_t)l->v[i].dom[j].seen));
		addr_format(&l->v[i].a, buf, sizeof(buf));
		o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:o}", "address", buf,
		    "learned", (json_int_t)l->v[i].learned,
		    "first", (json_int_t)l->v[i].first,
		    "last", (json_int_t)l->v[i].last,
		    "count", (json_int_t)l->v[i].count, "domains", doms);
		if (o == NULL)
			fatalx("json_pack");
		if (l->v[i].host)
			json_object_set_new(o, "host", json_true());
		json_array_append_new(list, o);
	}
	return (json_pack("{s:s, s:i, s:o}", "format", STATE_FORMAT,
	    "version", STATE_VERSION, "hiders", list));
}

static int
json_time_ok(json_t *v, long long *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 253402300799LL)	/* 9999-12-31 */
		return (0);
	*out = (long long)json_integer_value(v);
	return (1);
}

/* One hider of the file, checked as strictly as the config. */
static const char *
state_entry(struct learn *l, json_t *o)
{
	struct hentry	 e, *slotp;
	json_t		*doms, *d, *h;
	const char	*s;
	size_t		 i;
	long long	 count;

	memset(&e, 0, sizeof(e));
	if (!json_is_object(o) || (s = json_string_value(json_object_get(o,
	    "address"))) == NULL || addr_parse(s, &e.a) != 0)
		return ("an entry without a valid address");
	if (!json_time_ok(json_object_get(o, "learned"), &e.learned) ||
	    e.learned == 0 ||
	    !json_time_ok(json_object_get(o, "first"), &e.first) ||
	    !json_time_ok(json_object_get(o, "last"), &e.last) ||
	    !json_time_ok(json_object_get(o, "count"), &count) ||
	    count > 0xffffffffLL)
		return ("an entry with a bad learned, first, last or count");
	e.count = (unsigned int)count;
	if (!json_is_array(doms = json_object_get(o, "domains")) ||
	    json_array_size(doms) > HIDER_DOMAINS_MAX)
		return ("an entry with a bad domain list");
	json_array_foreach(doms, i, d) {
		s = json_string_value(json_object_get(d, "name"));
		if (s == NULL || *s == '\0' || strlen(s) > DOMAIN_MAX ||
		    strpbrk(s, " ,\"\\\r\n") != NULL ||
		    !json_time_ok(json_object_get(d, "seen"),
		    &e.dom[e.ndom].seen))
			return ("an entry with a bad domain");
		snprintf(e.dom[e.ndom].name, sizeof(e.dom[e.ndom].name), "%s",
		    s);
		e.ndom++;
	}
	if ((h = json_object_get(o, "host")) != NULL && !json_is_boolean(h))
		return ("an entry with a bad host flag");
	e.host = json_is_true(h);
	if (!e.host && netlist_find(l->private_nets, &e.a) < 0)
		return (NULL);	/* private_networks changed: not a hider */
	if (find(l, &e.a) != NULL)
		return (NULL);
	if (learn_count(l) >= HIDER_LEARNED_MAX)
		return (NULL);
	slotp = slot(l, 1);
	*slotp = e;
	return (NULL);
}

/*
 * Parse a state file's text into l's learned set (l holds no learned
 * hider yet).  Returns NULL, or what is wrong with it.
 */
static char *
state_parse(struct learn *l, const char *text, size_t len)
{
	json_t		*root, *list, *o;
	json_error_t	 jerr;
	const char	*why, *fmt;
	char		*err;
	size_t		 i;

	if (len > STATE_MAX) {
		xasprintf(&err, "larger than %d bytes", STATE_MAX);
		return (err);
	}
	if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		xasprintf(&err, "line %d: %s", jerr.line, jerr.text);
		return (err);
	}
	fmt = json_string_value(json_object_get(root, "format"));
	if (fmt == NULL || strcmp(fmt, STATE_FORMAT) != 0 ||
	    !json_is_integer(json_object_get(root, "version")) ||
	    json_integer_value(json_object_get(root, "version")) !=
	    STATE_VERSION || !json_is_array(list = json_object_get(root,
	    "hiders"))) {
		json_decref(root);
		xasprintf(&err, "not a natguard state file (format %s, "
		    "version %d expected)", STATE_FORMAT, STATE_VERSION);
		return (err);
	}
	json_array_foreach(list, i, o) {
		if ((why = state_entry(l, o)) != NULL) {
			json_decref(root);
			xasprintf(&err, "hider %zu: %s", i + 1, why);
			return (err);
		}
	}
	json_decref(root);
	return (NULL);
}

/* Forget every learned hider; evidence still being gathered stays. */
static void
drop_learned(struct learn *l)
{
	size_t	i;

	for (i = 0; i < l->n; )
		if (l->v[i].learned != 0)
			remove_at(l, i);
		else
			i++;
}

/*
 * Read the state file at path (the daemon's own, or another for the
 * tests).  A missing file is an empty one.  Returns 0, or -1 with *err
 * (the file is then ignored: nothing of it is taken).
 */
int
learn_load(struct learn *l, const char *path, char **err)
{
	struct learn	 scratch;
	struct stat	 st;
	char		*text, *why;
	size_t		 len;

	*err = NULL;
	if (path == NULL && (path = l->path) == NULL)
		return (0);
	if (stat(path, &st) == -1) {
		if (errno == ENOENT)
			return (0);
		xasprintf(err, "%s: %s", path, strerror(errno));
		return (-1);
	}
	if ((text = read_small_len(path, &len)) == NULL) {
		xasprintf(err, "%s: %s", path, strerror(errno));
		return (-1);
	}
	/* Into a scratch table first: a bad file leaves l as it was. */
	memset(&scratch, 0, sizeof(scratch));
	scratch.v = xcalloc(HIDER_ADDRS_MAX, sizeof(*scratch.v));
	scratch.private_nets = l->private_nets;
	why = state_parse(&scratch, text, len);
	free(text);
	if (why != NULL) {
		xasprintf(err, "%s: %s", path, why);
		free(why);
		free(scratch.v);
		return (-1);
	}
	drop_learned(l);
	for (len = 0; len < scratch.n; len++) {
		struct hentry	*e = find(l, &scratch.v[len].a);

		if (e == NULL)
			e = slot(l, 1);
		*e = scratch.v[len];
	}
	free(scratch.v);
	if (path == l->path || (l->path != NULL && strcmp(path, l->path) ==
	    0)) {
		l->st = st;
		l->have_st = 1;
	}
	return (0);
}

/*
 * Someone else wrote the file (gateways --forget, or a restore): take
 * its learned set.  Returns 1 when the file was read, 0 when it is as we
 * left it, -1 with *err when it cannot be read.
 */
int
learn_sync(struct learn *l, char **err)
{
	struct stat	st;

	*err = NULL;
	if (l->path == NULL)
		return (0);
	if (stat(l->path, &st) == -1) {
		if (errno != ENOENT || !l->have_st)
			return (0);
		/* Removed by hand: every learned hider is forgotten. */
		l->have_st = 0;
		drop_learned(l);
		return (1);
	}
	if (l->have_st && st.st_ino == l->st.st_ino &&
	    st.st_dev == l->st.st_dev && st.st_mtime == l->st.st_mtime &&
	    st.st_size == l->st.st_size)
		return (0);
	if (!l->have_st && l->n == 0 && st.st_size == 0)
		return (0);
	if (learn_load(l, NULL, err) != 0) {
		/* Do not read it again until it changes. */
		l->st = st;
		l->have_st = 1;
		return (-1);
	}
	return (1);
}

/*
 * Write the learned set: a temporary file in the same directory, synced,
 * renamed over the old one, so that a crash leaves one or the other.
 * Returns 0, or -1 with *err (serving goes on without the file).
 */
int
learn_save(struct learn *l, char **err)
{
	json_t	*o;
	char	*tmp, *text;
	FILE	*f;
	int	 fd, rc = -1;

	*err = NULL;
	if (l->path == NULL) {
		l->dirty = 0;
		return (0);
	}
	xasprintf(&tmp, "%s.XXXXXX", l->path);
	o = state_json(l);
	text = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (text == NULL)
		fatalx("json_dumps");
	if ((fd = mkstemp(tmp)) == -1) {
		xasprintf(err, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	(void)fchmod(fd, 0644);
	if ((f = fdopen(fd, "w")) == NULL) {
		xasprintf(err, "%s: %s", tmp, strerror(errno));
		close(fd);
		(void)unlink(tmp);
		goto out;
	}
	if (fputs(text, f) == EOF || fputc('\n', f) == EOF ||
	    fflush(f) == EOF || fsync(fileno(f)) == -1) {
		xasprintf(err, "%s: %s", tmp, strerror(errno));
		fclose(f);
		(void)unlink(tmp);
		goto out;
	}
	if (fclose(f) == EOF || rename(tmp, l->path) == -1) {
		xasprintf(err, "%s: %s", l->path, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	if (stat(l->path, &l->st) == 0)
		l->have_st = 1;
	l->dirty = 0;
	rc = 0;
out:
	free(text);
	free(tmp);
	return (rc);
}
