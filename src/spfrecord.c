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
#include <arpa/inet.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "natguard.h"

/*
 * The grammar of an SPF record, RFC 7208 section 12, checked strictly.
 * libspf2 accepts records the grammar rejects (a domain-spec with an
 * all-numeric top label, "ip4:1.2.3.4/032", "exists:x/24", a second
 * redirect=, ...); RFC 7208 says those are permerror, so natguard checks
 * each record itself before libspf2 sees it.
 */

struct scan {
	const char	*p;
	const char	*why;
};

static int
is_alnum(int c)
{
	return (isascii(c) && isalnum(c));
}

/* macro-expand = "%{" letter *DIGIT ["r"] *delimiter "}" / %% / %_ / %- */
static int
macro_expand(struct scan *s, int exp)
{
	const char	*letters = exp ? "slodiphcrtv" : "slodiphv";

	if (s->p[0] != '%')
		return (0);
	if (s->p[1] == '%' || s->p[1] == '_' || s->p[1] == '-') {
		s->p += 2;
		return (1);
	}
	if (s->p[1] != '{' || s->p[2] == '\0' ||
	    strchr(letters, tolower((unsigned char)s->p[2])) == NULL) {
		s->why = "bad macro";
		return (-1);
	}
	s->p += 3;
	while (isdigit((unsigned char)*s->p))
		s->p++;
	if (*s->p == 'r' || *s->p == 'R')
		s->p++;
	while (*s->p != '\0' && strchr(".-+,/_=", *s->p) != NULL)
		s->p++;
	if (*s->p != '}') {
		s->why = "bad macro";
		return (-1);
	}
	s->p++;
	return (1);
}

/*
 * macro-string up to a space, a "/" (the cidr) or the end; returns the
 * start of the last label that was all literal, for domain-end.
 */
static int
macro_string(struct scan *s, int exp, int stop_slash, const char **last,
    int *ends_macro)
{
	int	rc;

	*last = s->p;
	*ends_macro = 0;
	while (*s->p != '\0' && *s->p != ' ') {
		if (stop_slash && *s->p == '/')
			break;
		if ((rc = macro_expand(s, exp)) < 0)
			return (-1);
		if (rc == 1) {
			*ends_macro = 1;
			*last = s->p;
			continue;
		}
		if ((unsigned char)*s->p < 0x21 || (unsigned char)*s->p > 0x7e) {
			s->why = "character outside the grammar";
			return (-1);
		}
		if (*s->p == '.')
			*last = s->p + 1;
		*ends_macro = 0;
		s->p++;
	}
	return (0);
}

/* toplabel: alphanumerics and inner hyphens, not all digits. */
static int
toplabel(const char *p, size_t len)
{
	size_t	i;
	int	alpha = 0;

	if (len == 0 || p[0] == '-' || p[len - 1] == '-')
		return (0);
	for (i = 0; i < len; i++) {
		if (isascii((unsigned char)p[i]) && isalpha((unsigned char)p[i]))
			alpha = 1;
		else if (!is_alnum((unsigned char)p[i]) && p[i] != '-')
			return (0);
	}
	return (alpha || memchr(p, '-', len) != NULL);
}

/* domain-spec = macro-string domain-end */
static int
domain_spec(struct scan *s, int stop_slash)
{
	const char	*start = s->p, *last, *end;
	int		 ends_macro;
	size_t		 len;

	if (macro_string(s, 0, stop_slash, &last, &ends_macro) != 0)
		return (-1);
	end = s->p;
	if (end == start) {
		s->why = "empty domain";
		return (-1);
	}
	if (ends_macro)
		return (0);
	/* "." toplabel ["."]: a final dot is allowed. */
	len = end - last;
	if (len == 0 && end - start >= 2 && end[-1] == '.') {
		const char *q = end - 2;

		while (q > start && *q != '.')
			q--;
		if (*q != '.') {
			s->why = "no top label";
			return (-1);
		}
		last = q + 1;
		len = (end - 1) - last;
	}
	if (last == start || !toplabel(last, len)) {
		s->why = "bad top label";
		return (-1);
	}
	return (0);
}

static int
number(struct scan *s, int max)
{
	int	v = 0, n = 0;

	if (*s->p == '0' && isdigit((unsigned char)s->p[1]))
		return (-1);	/* no leading zero */
	while (isdigit((unsigned char)*s->p) && n < 4) {
		v = v * 10 + (*s->p - '0');
		s->p++;
		n++;
	}
	return (n == 0 || v > max ? -1 : v);
}

/* [ "/" ip4-cidr ] [ "//" ip6-cidr ] */
static int
dual_cidr(struct scan *s, int v4, int v6)
{
	if (v4 && s->p[0] == '/' && s->p[1] != '/') {
		s->p++;
		if (number(s, 32) < 0)
			goto bad;
	}
	if (v6 && s->p[0] == '/' && s->p[1] == '/') {
		s->p += 2;
		if (number(s, 128) < 0)
			goto bad;
	} else if (!v4 && v6 && s->p[0] == '/') {
		s->p++;
		if (number(s, 128) < 0)
			goto bad;
	}
	if (*s->p != ' ' && *s->p != '\0') {
bad:
		s->why = "bad CIDR length";
		return (-1);
	}
	return (0);
}

static int
ip_network(struct scan *s, int af)
{
	char		 buf[64];
	const char	*e = s->p;
	unsigned char	 tmp[16];
	size_t		 len;

	while (*e != '\0' && *e != ' ' && *e != '/')
		e++;
	len = e - s->p;
	if (len == 0 || len >= sizeof(buf)) {
		s->why = "bad address";
		return (-1);
	}
	memcpy(buf, s->p, len);
	buf[len] = '\0';
	if (inet_pton(af, buf, tmp) != 1) {
		s->why = "bad address";
		return (-1);
	}
	s->p = e;
	return (0);
}

/*
 * The dual-cidr-length at the end of an a or mx term [p, e): "/N",
 * "//N" or "/N//N".  Returns where it starts (e when there is none) and
 * the lengths (-1: absent).  The domain-spec before it may itself hold a
 * "/" ("a:foo:bar/baz.example.com"), so it is read from the right.
 */
static const char *
cidr_suffix(const char *p, const char *e, int *c4, int *c6)
{
	const char	*q = e;
	int		 v;

	*c4 = *c6 = -1;
	while (q > p && isdigit((unsigned char)q[-1]))
		q--;
	if (q == e || q == p || q[-1] != '/')
		return (e);
	v = atoi(q);
	if (q - 2 >= p && q[-2] == '/') {
		*c6 = v;
		e = q - 2;
		q = e;
		while (q > p && isdigit((unsigned char)q[-1]))
			q--;
		if (q == e || q == p || q[-1] != '/')
			return (e);
		*c4 = atoi(q);
		return (q - 1);
	}
	*c4 = v;
	return (q - 1);
}

static int
word(struct scan *s, const char *w)
{
	size_t	len = strlen(w);

	/* "a=..." is a modifier named a, not the a mechanism. */
	if (strncasecmp(s->p, w, len) != 0 ||
	    (s->p[len] != '\0' && s->p[len] != ' ' && s->p[len] != ':' &&
	    s->p[len] != '/'))
		return (0);
	s->p += len;
	return (1);
}

/* strchr() finds the terminating NUL too: a qualifier is never '\0'. */
static int
is_qualifier(char c)
{
	return (c != '\0' && strchr("+-?~", c) != NULL);
}

static int
term(struct scan *s, int *redirects, int *exps)
{
	const char	*start = s->p, *last;
	int		 q = 0, ends;

	if (is_qualifier(*s->p)) {
		s->p++;
		q = 1;
	}
	if (word(s, "all"))
		return (*s->p == ' ' || *s->p == '\0' ? 0 : -1);
	if (word(s, "include") || word(s, "exists")) {
		if (*s->p++ != ':')
			return (-1);
		return (domain_spec(s, 0));
	}
	if (word(s, "a") || word(s, "mx")) {
		const char	*e = s->p, *c;
		char		 dom[512];
		struct scan	 d;
		int		 c4, c6;

		while (*e != '\0' && *e != ' ')
			e++;
		c = cidr_suffix(s->p, e, &c4, &c6);
		if (*s->p == ':') {
			/* The domain-spec alone, without the cidr. */
			if ((size_t)(c - s->p) >= sizeof(dom)) {
				s->why = "domain too long";
				return (-1);
			}
			memcpy(dom, s->p + 1, c - s->p - 1);
			dom[c - s->p - 1] = '\0';
			d.p = dom;
			d.why = s->why;
			if (domain_spec(&d, 0) != 0 || *d.p != '\0') {
				s->why = d.why;
				return (-1);
			}
		} else if (c != s->p) {
			s->why = "bad CIDR length";
			return (-1);
		}
		s->p = c;
		return (dual_cidr(s, 1, 1));
	}
	if (word(s, "ptr")) {
		if (*s->p == ':') {
			s->p++;
			return (domain_spec(s, 0));
		}
		return (*s->p == ' ' || *s->p == '\0' ? 0 : -1);
	}
	if (word(s, "ip4") || word(s, "ip6")) {
		int	af = s->p[-1] == '4' ? AF_INET : AF_INET6;

		if (*s->p++ != ':' || ip_network(s, af) != 0)
			return (-1);
		return (dual_cidr(s, af == AF_INET, af == AF_INET6));
	}
	if (q) {
		s->why = "unknown mechanism";
		return (-1);
	}
	/* Modifiers: name "=" ... */
	s->p = start;
	if (!isascii((unsigned char)*s->p) || !isalpha((unsigned char)*s->p)) {
		s->why = "unknown mechanism";
		return (-1);
	}
	while (is_alnum((unsigned char)*s->p) ||
	    (*s->p != '\0' && strchr("-_.", *s->p) != NULL))
		s->p++;
	if (*s->p != '=') {
		s->why = "unknown mechanism";
		return (-1);
	}
	s->p++;
	if (strncasecmp(start, "redirect=", 9) == 0) {
		if (++*redirects > 1) {
			s->why = "redirect= twice";
			return (-1);
		}
		return (domain_spec(s, 0));
	}
	if (strncasecmp(start, "exp=", 4) == 0) {
		if (++*exps > 1) {
			s->why = "exp= twice";
			return (-1);
		}
		return (domain_spec(s, 0));
	}
	return (macro_string(s, 0, 0, &last, &ends));
}

/*
 * 1 when text is an SPF record (starts with "v=spf1" and a space or its
 * end); then *valid says whether the grammar accepts it.
 */
int
spf_record_check(const char *text, int *valid, const char **why)
{
	struct scan	s;
	int		redirects = 0, exps = 0;

	if (strncasecmp(text, "v=spf1", 6) != 0 ||
	    (text[6] != ' ' && text[6] != '\0'))
		return (0);
	s.p = text + 6;
	s.why = "syntax error";
	*valid = 0;
	*why = NULL;
	for (;;) {
		if (*s.p == '\0')
			break;
		if (*s.p != ' ') {
			*why = "terms are separated by spaces";
			return (1);
		}
		while (*s.p == ' ')
			s.p++;
		if (*s.p == '\0')
			break;
		if (term(&s, &redirects, &exps) != 0) {
			*why = s.why;
			return (1);
		}
	}
	*valid = 1;
	return (1);
}

/*
 * The record as libspf2 should see it, so that it evaluates what RFC 7208
 * means (NULL: not an SPF record).  A record the grammar rejects becomes
 * one libspf2 rejects too (permerror).  Unknown modifiers, which must be
 * ignored, are dropped (libspf2 trips over some); so is redirect= when the
 * record has an "all", which makes it unused (RFC 7208 6.1).  ip4 and ip6
 * networks of length 0, which libspf2 refuses, become their two halves.
 */
/*
 * An a or mx term for a client of one family: the other family's cidr
 * does not matter and goes (libspf2 refuses a length of 0 even there).
 * A length of 0 for the client's family matches any client of that family
 * when the domain (an mx: any of its MX hosts) has any address of it:
 * the term goes to libspf2 with SPF_CIDR0_SUFFIX on its domain, which
 * spf.c's DNS layer answers that way.
 */
static void
cidr_term(struct buf *b, const char *p, const char *e, int v6)
{
	const char	*t = is_qualifier(*p) ? p + 1 : p;
	const char	*c, *name_end;
	char		 num[16];
	int		 c4, c6, is_a = (t[0] == 'a' || t[0] == 'A');

	c = cidr_suffix(t, e, &c4, &c6);
	name_end = t + (is_a ? 1 : 2);
	buf_add(b, p, t - p);
	if ((v6 ? c6 : c4) == 0) {
		buf_add(b, t, name_end - t);
		buf_adds(b, ":");
		if (*name_end == ':')
			buf_add(b, name_end + 1, c - name_end - 1);
		else
			buf_adds(b, "%{d}");
		buf_adds(b, SPF_CIDR0_SUFFIX);
		return;
	}
	buf_add(b, t, c - t);
	if (!v6 && c4 > 0) {
		snprintf(num, sizeof(num), "/%d", c4);
		buf_adds(b, num);
	}
	if (v6 && c6 > 0) {
		snprintf(num, sizeof(num), "//%d", c6);
		buf_adds(b, num);
	}
}

/*
 * RFC 7208 7.3's transformers, which libspf2 gets wrong: it splits on "."
 * whatever the delimiters, and drops a character when the digit keeps
 * every part ("%{d2}" of "example.com" comes out "xample.com", a lookup
 * that fails for mail the domain sent).  So a macro with a transformer,
 * or an upper-case (URL-escaped) one, is expanded here as the record
 * arrives and reaches libspf2 as text; a plain one is left to libspf2,
 * which expands those right.
 */
struct macro {
	int		 letter;	/* lower case */
	int		 escape;	/* upper case: URL-escaped */
	unsigned long	 keep;		/* right-hand parts; 0: all */
	int		 reverse;
	char		 delims[8];	/* "" for "." */
};

/* "%{...}" at p, len octets; 0 unless the grammar's. */
static int
macro_parse(const char *p, size_t len, struct macro *mc)
{
	const char	*e = p + len - 1, *q;
	size_t		 n = 0;

	memset(mc, 0, sizeof(*mc));
	if (len < 4 || p[0] != '%' || p[1] != '{' || *e != '}')
		return (0);
	mc->letter = tolower((unsigned char)p[2]);
	mc->escape = isupper((unsigned char)p[2]);
	for (q = p + 3; q < e && isdigit((unsigned char)*q); q++) {
		if (mc->keep > 1000)
			return (0);
		mc->keep = mc->keep * 10 + (unsigned long)(*q - '0');
	}
	if (q > p + 3 && mc->keep == 0)
		return (0);	/* 7.1: a digit MUST be nonzero */
	if (q < e && (*q == 'r' || *q == 'R')) {
		mc->reverse = 1;
		q++;
	}
	for (; q < e; q++) {
		if (strchr(".-+,/_=", *q) == NULL)
			return (0);
		if (strchr(mc->delims, *q) == NULL &&
		    n + 1 < sizeof(mc->delims))
			mc->delims[n++] = *q;
	}
	return (1);
}

/* The letter's value, before transformers; NULL: left to libspf2. */
static const char *
macro_value(const struct spf_macros *m, int letter, const char **end)
{
	const char	*at = strchr(m->sender, '@');

	*end = NULL;
	switch (letter) {
	case 's':
		return (m->sender);
	case 'l':
		/* 4.3: the first "@" ends it, as pyspf splits; empty: */
		if (at == NULL || at == m->sender)
			return ("postmaster");
		*end = at;
		return (m->sender);
	case 'o':
		return (at != NULL ? at + 1 : m->sender);
	case 'd':
		return (m->domain);
	case 'i':
		return (m->ip);
	case 'h':
		return (m->helo);
	case 'v':
		return (m->v6 ? "ip6" : "in-addr");
	case 'p':
		return (m->p != NULL ? m->p(m->arg, m->domain) : NULL);
	}
	return (NULL);	/* c, r, t: only in an explanation */
}

/*
 * Split on the delimiters, reverse, keep the right-hand parts, join with
 * "." (7.3; pyspf keeps each part's own delimiter but for l and s).
 */
static int
macro_transform(const struct macro *mc, const char *v, const char *end,
    struct buf *b)
{
	const char	*delims = mc->delims[0] != '\0' ? mc->delims : ".";
	const char	*part[128], *p;
	size_t		 plen[128], n = 0, i, first;

	if (end == NULL)
		end = v + strlen(v);
	for (p = v;; p++) {
		if (n == sizeof(part) / sizeof(part[0]))
			return (-1);
		part[n] = p;
		while (p < end && strchr(delims, *p) == NULL)
			p++;
		plen[n] = p - part[n];
		n++;
		if (p >= end)
			break;
	}
	if (mc->reverse)
		for (i = 0; i < n / 2; i++) {
			p = part[i];
			part[i] = part[n - 1 - i];
			part[n - 1 - i] = p;
			first = plen[i];
			plen[i] = plen[n - 1 - i];
			plen[n - 1 - i] = first;
		}
	first = mc->keep != 0 && mc->keep < n ? n - mc->keep : 0;
	for (i = first; i < n; i++) {
		if (i > first)
			buf_add(b, ".", 1);
		buf_add(b, part[i], plen[i]);
	}
	return (0);
}

/*
 * A macro's value [v, end) as a macro-string's literal text; -1 where no
 * text can carry it (a "/" ends a domain-spec; a control octet).
 */
static int
add_literal(struct buf *b, const char *v, const char *end)
{
	for (; v < end; v++) {
		if (*v == '%')
			buf_adds(b, "%%");
		else if (*v == ' ')
			buf_adds(b, "%_");
		else if ((unsigned char)*v < 0x21 ||
		    (unsigned char)*v > 0x7e || *v == '/')
			return (-1);
		else
			buf_add(b, v, 1);
	}
	return (0);
}

/*
 * One macro ("%{...}", len octets) as libspf2 is to read it: the value
 * with "%" and " " written as macros, or NULL where libspf2 is to expand
 * it itself (a plain macro, one holding a "/" or a control octet that no
 * text can carry, p not known yet).
 */
char *
spf_macro_expand(const char *p, size_t len, const struct spf_macros *m)
{
	static const char	 hex[] = "0123456789ABCDEF";
	struct buf		 v = { NULL, 0, 0 }, out = { NULL, 0, 0 };
	struct macro		 mc;
	const char		*val, *end;
	size_t			 i;
	unsigned char		 c;

	if (!macro_parse(p, len, &mc) || (!mc.escape && mc.keep == 0 &&
	    !mc.reverse && mc.delims[0] == '\0'))
		return (NULL);
	if ((val = macro_value(m, mc.letter, &end)) == NULL)
		return (NULL);
	buf_add(&v, "", 0);
	if (macro_transform(&mc, val, end, &v) != 0) {
		buf_free(&v);
		return (NULL);	/* more parts than any name has */
	}
	buf_add(&out, "", 0);
	for (i = 0; i < v.len; i++) {
		c = (unsigned char)v.s[i];
		if (mc.escape && !(isascii(c) && isalnum(c)) &&
		    strchr("-._~", c) == NULL) {
			/* RFC 3986's unreserved stay; the rest: %XX. */
			buf_adds(&out, "%%");
			buf_add(&out, &hex[c >> 4], 1);
			buf_add(&out, &hex[c & 0xf], 1);
		} else if (add_literal(&out, &v.s[i], &v.s[i + 1]) != 0) {
			buf_free(&v);
			buf_free(&out);
			return (NULL);
		}
	}
	buf_free(&v);
	return (buf_take(&out));
}

/* The record's macros that libspf2 would get wrong, expanded. */
static char *
macros_expand(char *rec, const struct spf_macros *m)
{
	struct buf	 b = { NULL, 0, 0 };
	const char	*p, *e;
	char		*v;

	if (m == NULL || strstr(rec, "%{") == NULL)
		return (rec);
	for (p = rec; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] != '{' && p[1] != '\0') {
			buf_add(&b, p, 2);	/* %%, %_, %- */
			p++;
			continue;
		}
		if (p[0] != '%' || (e = strchr(p, '}')) == NULL) {
			buf_add(&b, p, 1);
			continue;
		}
		if ((v = spf_macro_expand(p, e - p + 1, m)) != NULL) {
			buf_adds(&b, v);
			free(v);
		} else
			buf_add(&b, p, e - p + 1);
		p = e;
	}
	free(rec);
	return (buf_take(&b));
}

/*
 * libspf2's compiled form of a record (spf_compile.c), reckoned here
 * because libspf2 does not reckon it safely:
 *  - a term's data (a CIDR block, then one block per macro and per run of
 *    literal text) has SPF_MAX_MECH_LEN (or SPF_MAX_MOD_LEN) octets.
 *    1.2.10 before upstream's d14abff (CVE-2023-42118, Debian 12's build)
 *    wraps its count of what is left when a literal starts within a
 *    block of the end, and copies the literal unbounded into a 4 KiB
 *    stack buffer: a crash, or a write past it, chosen by the record;
 *  - a run of literal text holds at most SPF_MAX_STR_LEN octets;
 *  - a record's mechanisms share SPF_MAX_MECH_LEN octets: one is added
 *    while at most that less a header is used, and the rest are dropped
 *    without a word, a final -all with them (neutral where RFC 7208 says
 *    fail).
 * A term past the first two bounds is a permerror here, before libspf2
 * sees it (the fixed libspf2 refuses such terms too).  A record past the
 * third goes to libspf2 in chunks that each fit, chained by redirect=
 * to names spf.c answers (struct spf_norm).
 */
#define LS_MAX_DATA	511	/* SPF_MAX_MECH_LEN, SPF_MAX_MOD_LEN */
#define LS_MAX_STR	255	/* SPF_MAX_STR_LEN */
#define LS_BLOCK	4	/* sizeof(SPF_data_t), sizeof(SPF_mech_t) */
#define LS_ALIGN(n)	(((n) + 3) & ~(size_t)3)
#define LS_MAX_MECHS	(LS_MAX_DATA - LS_BLOCK)	/* a record's */
#define SPF_MAX_CHUNKS	10	/* libspf2's depth is 20, includes 10 */

/* A run of literal text ends: its block. */
static int
literal_end(size_t *used, size_t *lit)
{
	if (*lit == 0)
		return (0);
	if (*lit > LS_MAX_STR || *used + LS_ALIGN(LS_BLOCK + *lit) >
	    LS_MAX_DATA)
		return (-1);
	*used += LS_ALIGN(LS_BLOCK + *lit);
	*lit = 0;
	return (0);
}

/*
 * The data octets libspf2 compiles the macro-string [p, p + n) into after
 * used octets (a CIDR block): SPF_c_parse_macro() reckoned without writing.
 * -1 where it fails cleanly; -2 where a literal would start within a block
 * of the end, where 1.2.10 overflows (the fixed libspf2 fails there).
 */
static ssize_t
macro_data(const char *p, size_t n, size_t used)
{
	size_t	i = 0, run, lit = 0, need, avail;

	if (used + LS_BLOCK > LS_MAX_DATA)
		return (-1);
	avail = LS_MAX_DATA - used - LS_BLOCK;
	while (i < n) {
		run = strcspn(p + i, " %");
		if (run > n - i)
			run = n - i;
		if (lit + run > avail)
			return (-1);
		lit += run;
		if ((i += run) == n)
			break;
		if (++i == n)
			return (-1);	/* a lone "%": not the grammar's */
		need = 1;
		switch (p[i]) {
		case '-':
			need = 3;	/* "%20" */
			/* FALLTHROUGH */
		case '%':
		case '_':
			i++;
			break;
		case '{':
			if (literal_end(&used, &lit) != 0 ||
			    used + LS_BLOCK > LS_MAX_DATA)
				return (-1);
			used += LS_BLOCK;
			while (i < n && p[i] != '}')
				i++;
			if (i++ == n)
				return (-1);
			if (used + LS_BLOCK > LS_MAX_DATA)
				return (-2);
			avail = LS_MAX_DATA - used - LS_BLOCK;
			continue;
		}
		if (lit + need > avail)
			return (-1);
		lit += need;
	}
	if (literal_end(&used, &lit) != 0)
		return (-1);
	return ((ssize_t)used);
}

/*
 * Whether libspf2 1.2.10 reads the text safely as a macro-string: every TXT
 * string it is given may be read as an explanation (exp=%{d}.example names
 * any domain), which SPF_record_compile_macro() compiles as one.
 */
int
spf_text_safe(const char *text)
{
	return (macro_data(text, strlen(text), 0) != -2);
}

/*
 * The octets a term of a normalised record takes among libspf2's
 * compiled mechanisms: header and data; 0 for a modifier (exp=, the only
 * one normalising keeps, has a budget of its own).  -1: libspf2 cannot
 * compile it safely, or it would not fit in a chunk with a redirect=
 * after it.
 */
static ssize_t
term_size(const char *p, const char *e)
{
	const char	*t = is_qualifier(*p) ? p + 1 : p, *v, *c;
	ssize_t		 d;
	size_t		 cidr = 0;
	int		 c4, c6;

	for (v = t; v < e && (is_alnum((unsigned char)*v) || *v == '_' ||
	    *v == '-'); v++)
		;
	if (v < e && *v == '=') {
		d = macro_data(v + 1, e - v - 1, 0);
		if (d < 0 || strncasecmp(t, "redirect=", 9) != 0)
			return (d < 0 ? -1 : 0);
	} else if (v - t == 3 && strncasecmp(t, "ip4", 3) == 0)
		d = 4;
	else if (v - t == 3 && strncasecmp(t, "ip6", 3) == 0)
		d = 16;
	else if (v == e || *v == ':' || *v == '/') {
		c = e;
		if ((v - t == 1 && (*t == 'a' || *t == 'A')) ||
		    (v - t == 2 && strncasecmp(t, "mx", 2) == 0)) {
			c = cidr_suffix(v, e, &c4, &c6);
			if (c4 > 0 || c6 > 0)
				cidr = LS_BLOCK;
		}
		d = (ssize_t)cidr;
		if (v < c && *v == ':' &&
		    (d = macro_data(v + 1, c - v - 1, cidr)) < 0)
			return (-1);
	} else
		return (-1);
	if (LS_BLOCK + d > LS_MAX_MECHS)
		return (-1);
	return (LS_BLOCK + d);
}

/*
 * RFC 7208 7.3: an expanded domain longer than 253 octets loses labels on
 * the left until it fits (what libspf2 does to the macros it expands).
 */
static char *
exp_truncate(char *term)
{
	char	*d = term + 4, *p = d;

	while (strlen(p) > 253 && (p = strchr(p, '.')) != NULL)
		p++;
	if (p == NULL)
		p = d + strlen(d);
	memmove(d, p, strlen(p) + 1);
	return (term);
}

/*
 * text with its macros of the given letters written out (the rest as
 * they are); NULL where one cannot be: not a plain macro (natguard left
 * it for libspf2), %{p} not known yet, a value no text can carry.
 */
static char *
macros_write_out(const char *text, const struct spf_macros *m,
    const char *letters)
{
	struct buf	 b = { NULL, 0, 0 };
	struct macro	 mc;
	const char	*p, *e, *v, *end;

	buf_add(&b, "", 0);
	for (p = text; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] != '{' && p[1] != '\0') {
			buf_add(&b, p++, 2);	/* %%, %_, %- */
			continue;
		}
		if (p[0] != '%' || (e = strchr(p, '}')) == NULL ||
		    strchr(letters, tolower((unsigned char)p[2])) == NULL) {
			buf_add(&b, p, 1);
			continue;
		}
		if (m == NULL || !macro_parse(p, e - p + 1, &mc) ||
		    mc.escape || mc.keep != 0 || mc.reverse ||
		    mc.delims[0] != '\0' ||
		    (v = macro_value(m, mc.letter, &end)) == NULL ||
		    add_literal(&b, v, end != NULL ? end : v + strlen(v)) != 0) {
			buf_free(&b);
			return (NULL);
		}
		p = e;
	}
	return (buf_take(&b));
}

/*
 * An exp= term with its macros written out, so that spf.c knows each name
 * libspf2 reads an explanation from, and reads those with care (see
 * spf_text_safe()).  NULL where one cannot be: the exp= goes, and the
 * explanation is natguard's own.
 */
static char *
exp_expand(const char *term, const struct spf_macros *m)
{
	char	*s;

	if ((s = macros_write_out(term, m, "slodiphv")) == NULL)
		return (NULL);
	return (exp_truncate(s));
}

/*
 * A term of a chunk, which libspf2 evaluates with %{d} the chunk's name:
 * the domain it means written out (a bare a, mx or ptr gets ":%{d}").
 * NULL where the domain cannot be written as text, or a macro of d was
 * left for libspf2 (one natguard could not expand).
 */
static char *
term_own_domain(const char *term, const struct spf_macros *m)
{
	struct buf	 b = { NULL, 0, 0 };
	const char	*t = is_qualifier(*term) ? term + 1 : term;
	char		*s, *out;
	size_t		 n;

	n = strcspn(t, ":/=");
	buf_add(&b, term, t + n - term);
	if (t[n] != ':' && t[n] != '=' &&
	    ((n == 1 && (*t == 'a' || *t == 'A')) ||
	    (n == 2 && strncasecmp(t, "mx", 2) == 0) ||
	    (n == 3 && strncasecmp(t, "ptr", 3) == 0)))
		buf_adds(&b, ":%{d}");
	buf_adds(&b, t + n);
	s = buf_take(&b);
	out = macros_write_out(s, m, "d");
	free(s);
	return (out);
}

static void
norm_why(struct spf_norm *nm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
norm_why(struct spf_norm *nm, const char *fmt, ...)
{
	va_list	ap;

	if (nm == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(nm->why, sizeof(nm->why), fmt, ap);
	va_end(ap);
}

static const char *
domain_of(const struct spf_macros *m)
{
	return (m != NULL && m->domain != NULL ? m->domain :
	    "an unnamed domain");
}

/*
 * A record too long for libspf2's budget, as chunks: each but the last
 * ends in a redirect= to the next, whose name nm->chunk gives; every one
 * carries the exp=.  The terms after an all are never reached and go.
 * Returns the first chunk; NULL (nm->why set) when it cannot be done.
 */
static char *
record_chunks(const struct strlist *terms, const struct spf_macros *m,
    struct spf_norm *nm)
{
	struct strlist	 mechs = { NULL, 0 };
	struct buf	 b = { NULL, 0, 0 };
	char		*exp = NULL, *t, *out = NULL;
	const char	*next = NULL, *p;
	size_t		 i, k, start[SPF_MAX_CHUNKS + 1], nchunks = 0, used;
	ssize_t		 s;
	int		 all;

	if (m == NULL || m->domain == NULL || nm == NULL || nm->chunk == NULL) {
		norm_why(nm, "%s's record is longer than natguard's SPF library "
		    "can evaluate", domain_of(m));
		return (NULL);
	}
	for (i = 0; i < terms->n; i++) {
		if ((t = term_own_domain(terms->v[i], m)) == NULL) {
			norm_why(nm, "term %zu of %s's record cannot be "
			    "evaluated in parts", i + 1, m->domain);
			goto done;
		}
		p = is_qualifier(*t) ? t + 1 : t;
		if (strncasecmp(p, "exp=", 4) == 0) {
			free(exp);
			exp = t;
			continue;
		}
		strlist_add(&mechs, t);
		all = strcasecmp(p, "all") == 0;
		free(t);
		if (all)
			break;
	}
	/* Greedy, from the left: a chunk's mechanisms, then its redirect=. */
	for (i = 0, used = 0; i < mechs.n; i++) {
		s = term_size(mechs.v[i], mechs.v[i] + strlen(mechs.v[i]));
		if (s < 0) {
			norm_why(nm, "term %zu of %s's record is longer than "
			    "natguard's SPF library can compile safely", i + 1,
			    m->domain);
			goto done;
		}
		if (i == 0 || used + (size_t)s > LS_MAX_MECHS) {
			if (nchunks == SPF_MAX_CHUNKS) {
				norm_why(nm, "%s's record is longer than "
				    "natguard's SPF library can evaluate "
				    "(%d chunks of %d octets)", m->domain,
				    SPF_MAX_CHUNKS, LS_MAX_MECHS);
				goto done;
			}
			start[nchunks++] = i;
			used = 0;
		}
		used += s;
	}
	start[nchunks] = mechs.n;
	for (k = nchunks; k-- > 0;) {
		buf_reset(&b);
		buf_adds(&b, "v=spf1");
		for (i = start[k]; i < start[k + 1]; i++) {
			buf_add(&b, " ", 1);
			buf_adds(&b, mechs.v[i]);
		}
		if (exp != NULL) {
			buf_add(&b, " ", 1);
			buf_adds(&b, exp);
		}
		if (next != NULL) {
			buf_adds(&b, " redirect=");
			buf_adds(&b, next);
		}
		if (k == 0)
			out = buf_take(&b);
		else
			next = nm->chunk(nm->arg, b.s);
	}
done:
	buf_free(&b);
	free(exp);
	strlist_clear(&mechs);
	return (out);
}

/* The next term of a record at *p (past "v=spf1"); NULL at its end. */
static const char *
term_next(const char **p, const char **e)
{
	while (**p == ' ')
		(*p)++;
	if (**p == '\0')
		return (NULL);
	*e = *p + strcspn(*p, " ");
	return (*p);
}

/*
 * The normalised record as libspf2 gets it, checked against libspf2's
 * bounds: whole (rec itself) or in chunks.  orig[i] is the original
 * record's number of the i-th term.  Takes rec.  libspf2 keeps every
 * mechanism when those before the last take at most LS_MAX_MECHS.
 */
static char *
record_fit(char *rec, const int *orig, size_t nterms,
    const struct spf_macros *m, struct spf_norm *nm)
{
	struct strlist	 terms = { NULL, 0 };
	ssize_t		 sz, last = 0;
	size_t		 i = 0, used = 0;
	const char	*p, *e;
	char		*out = NULL;

	for (p = rec + 6; term_next(&p, &e) != NULL; p = e, i++) {
		if ((sz = term_size(p, e)) < 0) {
			norm_why(nm, "term %d of %s's record is longer than "
			    "natguard's SPF library can compile safely",
			    i < nterms ? orig[i] : (int)i + 1, domain_of(m));
			free(rec);
			return (xstrdup(SPF_RECORD_INVALID));
		}
		if (sz > 0) {
			used += sz;
			last = sz;
		}
	}
	if (used - last <= LS_MAX_MECHS)
		return (rec);
	for (p = rec + 6; term_next(&p, &e) != NULL; p = e) {
		out = xstrndup(p, e - p);
		strlist_add(&terms, out);
		free(out);
	}
	free(rec);
	out = record_chunks(&terms, m, nm);
	strlist_clear(&terms);
	return (out != NULL ? out : xstrdup(SPF_RECORD_INVALID));
}

/*
 * One term's normalised text, now in t, onto the record in b: an exp=
 * written out whole first (exp_expand(); it may go).  count terms of the
 * original's n-th.
 */
static void
term_add(struct buf *b, struct buf *t, int n, int count, int **orig,
    size_t *nterms, const struct spf_macros *m)
{
	char	*s, *x;

	if (t->len >= 4 && strncasecmp(t->s, "exp=", 4) == 0) {
		s = macros_expand(buf_take(t), m);
		x = exp_expand(s, m);
		free(s);
		if (x == NULL)
			return;
		buf_add(b, " ", 1);
		buf_adds(b, x);
		free(x);
	} else {
		buf_add(b, " ", 1);
		buf_add(b, t->s, t->len);
		buf_reset(t);
	}
	for (; count > 0; count--) {
		/* Room for 8, then doubled whenever full. */
		if (*nterms == 0)
			*orig = xreallocarray(*orig, 8, sizeof(**orig));
		else if (*nterms >= 8 && (*nterms & (*nterms - 1)) == 0)
			*orig = xreallocarray(*orig, *nterms * 2,
			    sizeof(**orig));
		(*orig)[(*nterms)++] = n;
	}
}

char *
spf_record_normalise(const char *text, size_t len, int v6,
    const struct spf_macros *m, struct spf_norm *nm)
{
	struct buf	 b = { NULL, 0, 0 }, t = { NULL, 0, 0 };
	const char	*why, *p, *e, *slash, *redirect = NULL;
	char		*copy, *out;
	int		 valid, has_all = 0, ip6, n = 0, redirect_n = 0;
	int		*orig = NULL;
	size_t		 nterms = 0;

	if (nm != NULL)
		nm->why[0] = '\0';
	if (memchr(text, '\0', len) != NULL) {
		/* A NUL inside a record: only the grammar's text counts. */
		if (strncasecmp(text, "v=spf1", 6) == 0)
			return (xstrdup(SPF_RECORD_INVALID));
		return (NULL);
	}
	if (!spf_record_check(text, &valid, &why))
		return (NULL);
	if (!valid)
		return (xstrdup(SPF_RECORD_INVALID));
	copy = xstrndup(text, len);
	for (p = copy + 6; *p != '\0'; p = e) {
		while (*p == ' ')
			p++;
		for (e = p; *e != '\0' && *e != ' '; e++)
			;
		if (is_qualifier(*p) && e - p == 4 &&
		    strncasecmp(p + 1, "all", 3) == 0)
			has_all = 1;
		else if (e - p == 3 && strncasecmp(p, "all", 3) == 0)
			has_all = 1;
	}
	buf_adds(&b, "v=spf1");
	buf_add(&t, "", 0);
	for (p = copy + 6; *p != '\0'; p = e) {
		const char	*tq, *eq;

		while (*p == ' ')
			p++;
		for (e = p; *e != '\0' && *e != ' '; e++)
			;
		if (e == p)
			break;
		n++;
		tq = is_qualifier(*p) ? p + 1 : p;
		eq = memchr(p, '=', e - p);
		if (eq != NULL && memchr(p, ':', eq - p) == NULL &&
		    memchr(p, '/', eq - p) == NULL) {
			/* A modifier. */
			if (strncasecmp(p, "exp=", 4) != 0 &&
			    (strncasecmp(p, "redirect=", 9) != 0 || has_all))
				continue;
			if (strncasecmp(p, "redirect=", 9) == 0) {
				/* Last: libspf2 runs it where it stands. */
				redirect = p;
				redirect_n = n;
				continue;
			}
		} else if ((strncasecmp(tq, "ip4:", 4) == 0 ||
		    strncasecmp(tq, "ip6:", 4) == 0) &&
		    (slash = memchr(tq, '/', e - tq)) != NULL &&
		    e - slash == 2 && slash[1] == '0') {
			ip6 = tq[2] == '6';
			buf_add(&t, p, tq - p);
			buf_adds(&t, ip6 ? "ip6:::/1 " : "ip4:0.0.0.0/1 ");
			buf_add(&t, p, tq - p);
			buf_adds(&t, ip6 ? "ip6:8000::/1" : "ip4:128.0.0.0/1");
			term_add(&b, &t, n, 2, &orig, &nterms, m);
			continue;
		}
		if (((tq[0] == 'a' || tq[0] == 'A') && (tq + 1 == e ||
		    tq[1] == ':' || tq[1] == '/')) ||
		    (strncasecmp(tq, "mx", 2) == 0 && (tq + 2 == e ||
		    tq[2] == ':' || tq[2] == '/'))) {
			cidr_term(&t, p, e, v6);
			term_add(&b, &t, n, 1, &orig, &nterms, m);
			continue;
		}
		buf_add(&t, p, e - p);
		term_add(&b, &t, n, 1, &orig, &nterms, m);
	}
	if (redirect != NULL) {
		buf_add(&t, redirect, strcspn(redirect, " "));
		term_add(&b, &t, redirect_n, 1, &orig, &nterms, m);
	}
	free(copy);
	buf_free(&t);
	out = record_fit(macros_expand(buf_take(&b), m), orig, nterms, m, nm);
	free(orig);
	return (out);
}
