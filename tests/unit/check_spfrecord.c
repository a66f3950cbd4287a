#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"
#include "unit.h"

/* RFC 7208's grammar: records and whether it accepts them. */
static const struct {
	const char	*label;
	const char	*record;
	int		 spf;		/* an SPF record at all */
	int		 valid;
} records[] = {
	{ "plain", "v=spf1 -all", 1, 1 },
	{ "empty", "v=spf1", 1, 1 },
	{ "trailing space", "v=spf1 a -all ", 1, 1 },
	{ "not SPF", "google-site-verification=x", 0, 0 },
	{ "v=spf10", "v=spf10 -all", 0, 0 },
	{ "upper case", "V=SPF1 IP4:192.0.2.0/24 -ALL", 1, 1 },
	{ "every mechanism", "v=spf1 +all -include:a.example ~a ?a:b.example/24"
	    " mx mx:c.example//64 ptr ptr:d.example ip4:192.0.2.1 "
	    "ip6:2001:db8::/32 exists:%{i}.e.example", 1, 1 },
	{ "macros", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", 1, 1 },
	{ "modifiers", "v=spf1 redirect=x.example exp=e.%{d} moo.cow-far_out="
	    "man:dog/cat", 1, 1 },
	{ "colon in a domain-spec", "v=spf1 a:foo:bar/baz.example.com", 1, 1 },
	{ "numeric top label", "v=spf1 a:foo.example.123", 1, 0 },
	{ "top label with hyphen", "v=spf1 a:foo.example.1-2", 1, 1 },
	{ "bad top label", "v=spf1 a:foo.example.-bar", 1, 0 },
	{ "only a top label", "v=spf1 a:museum", 1, 0 },
	{ "empty domain", "v=spf1 a: -all", 1, 0 },
	{ "cidr with leading zero", "v=spf1 ip4:1.2.3.4/032", 1, 0 },
	{ "cidr too long", "v=spf1 ip4:1.2.3.4/33", 1, 0 },
	{ "ip6 cidr 129", "v=spf1 ip6:::1/129", 1, 0 },
	{ "exists with cidr", "v=spf1 exists:x.example/24", 1, 0 },
	/* Found by fuzz-dns: the scan of a modifier name ran past the end. */
	{ "name at the end", "v=spf1 mod-", 1, 0 },
	{ "name with dots at the end", "v=spf1 a._-", 1, 0 },
	{ "lone qualifier at the end", "v=spf1 -all -", 1, 0 },
	{ "bad macro letter", "v=spf1 a:%{x}.example", 1, 0 },
	{ "exp-only macro in domain", "v=spf1 a:%{c}.example", 1, 0 },
	{ "lone %", "v=spf1 a:foo%.example", 1, 0 },
	{ "redirect twice", "v=spf1 redirect=a.example redirect=b.example", 1,
	    0 },
	{ "exp twice", "v=spf1 exp=a.example exp=b.example", 1, 0 },
	{ "unknown mechanism", "v=spf1 foo -all", 1, 0 },
	{ "qualified modifier", "v=spf1 -redirect=x.example", 1, 0 },
	{ "tab between terms", "v=spf1\ta -all", 0, 0 },
	{ "control character", "v=spf1 a:ctrl.example\rptr -all", 1, 0 },
	{ "non-ASCII", "v=spf1 a:\xef\xbb\xbfx.example -all", 1, 0 },
	{ "all with an argument", "v=spf1 -all:foo", 1, 0 },
	{ "bad ip4", "v=spf1 ip4:1.2.3", 1, 0 },
};

START_TEST(test_grammar)
{
	const char	*why = NULL;
	int		 valid = -1, spf;

	spf = spf_record_check(records[_i].record, &valid, &why);
	ck_assert_msg(spf == records[_i].spf, "%s: spf %d", records[_i].label,
	    spf);
	if (spf)
		ck_assert_msg(valid == records[_i].valid, "%s: valid %d (%s)",
		    records[_i].label, valid, why ? why : "");
}
END_TEST

/* What libspf2 is given, for an IPv4 (0) or IPv6 (1) client. */
static const struct {
	const char	*label;
	const char	*record;
	int		 v6;
	const char	*out;
} norms[] = {
	{ "unchanged", "v=spf1 a -all", 0, "v=spf1 a -all" },
	{ "invalid", "v=spf1 a:x.123 -all", 0, SPF_RECORD_INVALID },
	{ "unknown modifier dropped", "v=spf1 moo=cow ip4:1.2.3.4 -all", 0,
	    "v=spf1 ip4:1.2.3.4 -all" },
	{ "redirect unused with all", "v=spf1 redirect=x.example ~all", 0,
	    "v=spf1 ~all" },
	{ "redirect kept", "v=spf1 a redirect=x.example", 0,
	    "v=spf1 a redirect=x.example" },
	{ "ip4/0 halves", "v=spf1 -ip4:1.2.3.4/0", 0,
	    "v=spf1 -ip4:0.0.0.0/1 -ip4:128.0.0.0/1" },
	{ "ip6/0 halves", "v=spf1 ip6:::/0", 1,
	    "v=spf1 ip6:::/1 ip6:8000::/1" },
	{ "a/0 for IPv4: the cidr0 name", "v=spf1 a/0 -all", 0,
	    "v=spf1 a:%{d}" SPF_CIDR0_SUFFIX " -all" },
	{ "a:d/0 for IPv4: the cidr0 name", "v=spf1 -a:x.example/0", 0,
	    "v=spf1 -a:x.example" SPF_CIDR0_SUFFIX },
	{ "a//0 for IPv6: the cidr0 name", "v=spf1 a//0 -all", 1,
	    "v=spf1 a:%{d}" SPF_CIDR0_SUFFIX " -all" },
	{ "mx/0 for IPv4: the cidr0 name", "v=spf1 mx:x.example/0 -all", 0,
	    "v=spf1 mx:x.example" SPF_CIDR0_SUFFIX " -all" },
	{ "mx/24//0 for IPv6: the cidr0 name", "v=spf1 ~mx/24//0", 1,
	    "v=spf1 ~mx:%{d}" SPF_CIDR0_SUFFIX },
	{ "mx/24//0 for IPv4: /24", "v=spf1 mx/24//0", 0,
	    "v=spf1 mx/24" },
	{ "a/0 for IPv6: no IPv4 cidr", "v=spf1 a/0 -all", 1,
	    "v=spf1 a -all" },
	{ "mx//0 for IPv4: no IPv6 cidr", "v=spf1 mx//0 -all", 0,
	    "v=spf1 mx -all" },
	{ "dual cidr for IPv6", "v=spf1 a:x.example/24//64", 1,
	    "v=spf1 a:x.example//64" },
	{ "colon domain", "v=spf1 a:foo:bar/baz.example.com", 0,
	    "v=spf1 a:foo:bar/baz.example.com" },
};

START_TEST(test_normalise)
{
	char	*out;

	out = spf_record_normalise(norms[_i].record, strlen(norms[_i].record),
	    norms[_i].v6, NULL, NULL);
	ck_assert_msg(out != NULL && strcmp(out, norms[_i].out) == 0,
	    "%s: %s", norms[_i].label, out ? out : "(null)");
	free(out);
	ck_assert_ptr_eq(spf_record_normalise("hello", 5, 0, NULL, NULL), NULL);
	/* A NUL inside: the record is not what the grammar reads. */
	out = spf_record_normalise("v=spf1 a\0b", 10, 0, NULL, NULL);
	ck_assert_str_eq(out, SPF_RECORD_INVALID);
	free(out);
}
END_TEST

/*
 * RFC 7208 7.3's transformers, expanded by natguard because libspf2
 * splits on "." whatever the delimiters and drops a character when the
 * digit keeps every part.  The values are RFC 7208 7.4's and pyspf's;
 * NULL: left to libspf2 (a plain macro, or a value no text can carry).
 */
static const char *macro_p;

static const char *
macro_p_cb(void *arg, const char *domain)
{
	(void)arg;
	(void)domain;
	return (macro_p);
}

static const struct {
	const char	*label;
	const char	*macro;
	const char	*sender;
	const char	*ip;
	int		 v6;
	const char	*p;
	const char	*out;
} macros[] = {
	{ "7.4: d plain", "%{d}", NULL, NULL, 0, NULL, NULL },
	{ "7.4: s plain", "%{s}", NULL, NULL, 0, NULL, NULL },
	{ "7.4: d4, more than its parts", "%{d4}", NULL, NULL, 0, NULL,
	    "email.example.com" },
	{ "7.4: d3, as many as its parts", "%{d3}", NULL, NULL, 0, NULL,
	    "email.example.com" },
	{ "7.4: d2", "%{d2}", NULL, NULL, 0, NULL, "example.com" },
	{ "7.4: d1", "%{d1}", NULL, NULL, 0, NULL, "com" },
	{ "7.4: dr", "%{dr}", NULL, NULL, 0, NULL, "com.example.email" },
	{ "7.4: d2r", "%{d2r}", NULL, NULL, 0, NULL, "example.email" },
	{ "7.4: l-", "%{l-}", NULL, NULL, 0, NULL, "strong.bad" },
	{ "7.4: lr", "%{lr}", NULL, NULL, 0, NULL, "strong-bad" },
	{ "7.4: lr-", "%{lr-}", NULL, NULL, 0, NULL, "bad.strong" },
	{ "7.4: l1r-", "%{l1r-}", NULL, NULL, 0, NULL, "strong" },
	{ "7.4: ir", "%{ir}", NULL, NULL, 0, NULL, "3.2.0.192" },
	{ "7.4: ir of IPv6", "%{ir}", NULL,
	    "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1",
	    1, NULL,
	    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2" },
	{ "v upper-case", "%{V}", NULL, NULL, 1, NULL, "ip6" },
	{ "o2", "%{o2}", NULL, NULL, 0, NULL, "example.com" },
	{ "h2 of a two-label HELO", "%{h2}", NULL, NULL, 0, NULL,
	    "helo.example" },
	{ "i4 of IPv4", "%{i4}", NULL, NULL, 0, NULL, "192.0.2.3" },
	{ "a part with dots, delimiter -", "%{l1r-}", "a.b-c@t.example",
	    NULL, 0, NULL, "a.b" },
	{ "three of two parts", "%{l3r-}", "a.b-c@t.example", NULL, 0,
	    NULL, "c.a.b" },
	{ "o: parts rejoined with .", "%{o-}", "x@a-b.example", NULL, 0,
	    NULL, "a.b.example" },
	{ "two of -", "%{l2-}", "a.b-c@t.example", NULL, 0, NULL, "a.b.c" },
	{ "a delimiter the value lacks", "%{s1+}", "a.b-c@t.example", NULL,
	    0, NULL, "a.b-c@t.example" },
	{ "delimiters , and /", "%{l,/}", "a,b/c@t.example", NULL, 0, NULL,
	    "a.b.c" },
	{ "empty parts kept", "%{l-}", "a--b@t.example", NULL, 0, NULL,
	    "a..b" },
	{ "empty local part", "%{l1}", "@t.example", NULL, 0, NULL,
	    "postmaster" },
	{ "l ends at the first @", "%{l-}", "a-b@c@t.example", NULL, 0,
	    NULL, "a.b" },
	{ "upper-case: URL-escaped, then %% for libspf2", "%{L}",
	    "a/b+c@t.example", NULL, 0, NULL, "a%%2Fb%%2Bc" },
	{ "a space becomes %_", "%{l-}", "a b-c@t.example", NULL, 0, NULL,
	    "a%_b.c" },
	{ "a per cent becomes %%", "%{l-}", "a%b-c@t.example", NULL, 0,
	    NULL, "a%%b.c" },
	{ "a / no text carries: libspf2's", "%{l-}", "a/b-c@t.example",
	    NULL, 0, NULL, NULL },
	{ "p2", "%{p2}", NULL, NULL, 0, "mx.example.org", "example.org" },
	{ "p not known yet", "%{p2}", NULL, NULL, 0, NULL, NULL },
	{ "a zero digit: not the grammar's", "%{d0}", NULL, NULL, 0, NULL,
	    NULL },
	{ "c is an explanation's", "%{c2}", NULL, NULL, 0, NULL, NULL },
};

START_TEST(test_macro_expand)
{
	struct spf_macros	 m;
	char			*out;

	memset(&m, 0, sizeof(m));
	m.sender = macros[_i].sender ? macros[_i].sender :
	    "strong-bad@email.example.com";
	m.domain = "email.example.com";
	m.ip = macros[_i].ip ? macros[_i].ip : "192.0.2.3";
	m.helo = "helo.example";
	m.v6 = macros[_i].v6;
	m.p = macro_p_cb;
	macro_p = macros[_i].p;
	out = spf_macro_expand(macros[_i].macro, strlen(macros[_i].macro),
	    &m);
	if (macros[_i].out == NULL)
		ck_assert_msg(out == NULL, "%s: %s", macros[_i].label, out);
	else
		ck_assert_msg(out != NULL && strcmp(out, macros[_i].out) == 0,
		    "%s: %s", macros[_i].label, out ? out : "(null)");
	free(out);
}
END_TEST

/* A record's macros, expanded where libspf2 would get them wrong. */
START_TEST(test_normalise_macros)
{
	struct spf_macros	 m;
	char			*out;
	const char		*rec = "v=spf1 a:%{d2}.x.example//0 "
	    "exists:%{ir}.%{l1r-}._spf.%{d} include:%{o}";

	memset(&m, 0, sizeof(m));
	m.sender = "a.b-c@t.example";
	m.domain = "t.example";
	m.ip = "192.0.2.1";
	m.helo = "helo.example";
	out = spf_record_normalise(rec, strlen(rec), 0, &m, NULL);
	ck_assert_str_eq(out, "v=spf1 a:t.example.x.example "
	    "exists:1.2.0.192.a.b._spf.%{d} include:%{o}");
	free(out);
	/* An exp= is written out whole, so that its name is known. */
	rec = "v=spf1 -all exp=%{l}.%{d}.%{i}.e.example";
	out = spf_record_normalise(rec, strlen(rec), 0, &m, NULL);
	ck_assert_str_eq(out, "v=spf1 -all exp=a.b-c.t.example.192.0.2.1."
	    "e.example");
	free(out);
	/* %{p} is not known here: the exp= goes. */
	rec = "v=spf1 -all exp=%{p}.e.example";
	out = spf_record_normalise(rec, strlen(rec), 0, &m, NULL);
	ck_assert_str_eq(out, "v=spf1 -all");
	free(out);
	/* "%%" is a per cent, not a macro's start. */
	out = spf_record_normalise("v=spf1 a:%%{d2}.example", 23, 0, &m,
	    NULL);
	ck_assert_str_eq(out, "v=spf1 a:%%{d2}.example");
	free(out);
}
END_TEST

/* Records of n copies of unit between head and tail. */
static char *
repeat(const char *head, const char *unit, int n, const char *tail)
{
	struct buf	b = { NULL, 0, 0 };
	int		i;

	buf_adds(&b, head);
	for (i = 0; i < n; i++)
		buf_adds(&b, unit);
	buf_adds(&b, tail);
	return (buf_take(&b));
}

/*
 * libspf2's bounds (spfrecord.c): a term it cannot compile safely is a
 * permerror with a reason; one it can is handed over as it is.  n copies
 * of unit stand between head and tail.
 */
static const struct {
	const char	*label;
	const char	*head, *unit, *tail;
	int		 n;
	int		 refused;	/* 2: the exp= goes */
	int		 wrap;		/* as a macro-string, 1.2.10 overflows
					   (-1: not asked) */
} bounds[] = {
	/* CVE-2023-42118: 127 macro blocks, then a literal past the end. */
	{ "include: 127 macros then 4000 octets", "v=spf1 include:", "%{d}",
	    "@@@@", 127, 1, 1 },
	{ "exists: 127 macros then 4000 octets", "v=spf1 exists:", "%{i}",
	    "@@@@", 127, 1, 1 },
	/* Without the values (NULL here) an exp= cannot be written out. */
	{ "exp=: 127 macros then 4000 octets", "v=spf1 -all exp=", "%{d}",
	    "@@@@", 127, 2, 1 },
	{ "redirect=: 127 macros", "v=spf1 redirect=", "%{d}", ".example",
	    127, 1, 1 },
	{ "126 macros and a short literal", "v=spf1 exists:", "%{i}",
	    ".example", 126, 1, 1 },
	{ "100 macros", "v=spf1 exists:", "%{i}", ".example", 100, 0, 0 },
	{ "a literal of 255", "v=spf1 include:", "a", ".example", 247, 0, 0 },
	{ "a literal of 256", "v=spf1 include:", "a", ".example", 248, 1, 0 },
	{ "escapes count: 86 %- are 258 octets", "v=spf1 exists:", "%-",
	    ".example", 86, 1, 0 },
	{ "20 short terms", "v=spf1", " exists:%{i}.x.example", " -all", 20,
	    0, -1 },
};

START_TEST(test_bounds)
{
	struct spf_norm	 nm;
	char		*rec, *out, *at;

	memset(&nm, 0, sizeof(nm));
	rec = repeat(bounds[_i].head, bounds[_i].unit, bounds[_i].n,
	    bounds[_i].tail);
	/* "@@@@": 4000 literal octets. */
	if ((at = strstr(rec, "@@@@")) != NULL) {
		free(rec);
		rec = repeat(bounds[_i].head, bounds[_i].unit, bounds[_i].n,
		    "");
		out = repeat(rec, "x", 4000, ".example");
		free(rec);
		rec = out;
	}
	out = spf_record_normalise(rec, strlen(rec), 0, NULL, &nm);
	ck_assert_ptr_nonnull(out);
	if (bounds[_i].refused == 2)
		ck_assert_str_eq(out, "v=spf1 -all");
	else if (bounds[_i].refused) {
		ck_assert_msg(strcmp(out, SPF_RECORD_INVALID) == 0,
		    "%s: handed over", bounds[_i].label);
		ck_assert_msg(strstr(nm.why, "longer than natguard's SPF "
		    "library can compile safely") != NULL, "%s: why \"%s\"",
		    bounds[_i].label, nm.why);
	} else
		ck_assert_msg(strcmp(out, rec) == 0, "%s: %s",
		    bounds[_i].label, out);
	if (bounds[_i].wrap >= 0)
		ck_assert_msg(spf_text_safe(rec) == !bounds[_i].wrap,
		    "%s: text safe", bounds[_i].label);
	ck_assert(spf_text_safe(out));
	free(out);
	free(rec);
}
END_TEST

/* The chunks of a record too long for libspf2's 511 octets. */
static struct strlist	chunks;

static const char *
chunk_cb(void *arg, const char *text)
{
	static char	name[32];

	(void)arg;
	strlist_add(&chunks, text);
	snprintf(name, sizeof(name), "c%zu" SPF_CHUNK_SUFFIX, chunks.n - 1);
	return (name);
}

static const struct {
	const char	*label;
	const char	*head, *unit, *tail;
	int		 n;
	int		 nchunks;	/* besides the first; -1: refused */
	const char	*first_end;	/* how the first ends */
	const char	*last_end;
} chunked[] = {
	{ "63 ip4 then -all: whole", "v=spf1", " ip4:192.0.2.1", " -all", 63,
	    0, "ip4:192.0.2.1 -all", NULL },
	{ "64 ip4 then -all: two chunks", "v=spf1", " ip4:192.0.2.1", " -all",
	    64, 1, " redirect=c0" SPF_CHUNK_SUFFIX, "ip4:192.0.2.1 -all" },
	{ "26 ip6 then -all", "v=spf1", " ip6:2001:db8::/32", " -all", 26, 1,
	    " redirect=c0" SPF_CHUNK_SUFFIX, "ip6:2001:db8::/32 -all" },
	{ "300 ip4, redirect last, exp in each", "v=spf1 redirect=r.example",
	    " ip4:192.0.2.1", " exp=e.%{d}", 300, 4, " exp=e.t.example "
	    "redirect=c3" SPF_CHUNK_SUFFIX, "redirect=r.example "
	    "exp=e.t.example" },
	{ "bare a, mx, ptr get the domain", "v=spf1", " a mx/24 ptr",
	    " ~all", 40, 5, NULL, "a:t.example mx:t.example/24 ptr:t.example"
	    " ~all" },
	{ "terms after all go", "v=spf1", " ip4:192.0.2.1", " -all a mx", 64,
	    1, NULL, "ip4:192.0.2.1 -all" },
	{ "more than 10 chunks: refused", "v=spf1", " ip4:192.0.2.1", " -all",
	    700, -1, NULL, NULL },
};

START_TEST(test_chunks)
{
	struct spf_macros	 m;
	struct spf_norm		 nm;
	const char		*end;
	char			*rec, *out;

	memset(&m, 0, sizeof(m));
	m.sender = "a@t.example";
	m.domain = "t.example";
	m.ip = "192.0.2.9";
	memset(&nm, 0, sizeof(nm));
	nm.chunk = chunk_cb;
	strlist_clear(&chunks);
	rec = repeat(chunked[_i].head, chunked[_i].unit, chunked[_i].n,
	    chunked[_i].tail);
	out = spf_record_normalise(rec, strlen(rec), 0, &m, &nm);
	if (chunked[_i].nchunks < 0) {
		ck_assert_str_eq(out, SPF_RECORD_INVALID);
		ck_assert_msg(strstr(nm.why, "longer than natguard's SPF "
		    "library can evaluate") != NULL, "%s", nm.why);
		goto done;
	}
	ck_assert_msg((int)chunks.n == chunked[_i].nchunks, "%s: %zu chunks",
	    chunked[_i].label, chunks.n);
	end = chunked[_i].first_end;
	ck_assert_msg(end == NULL || (strlen(out) >= strlen(end) &&
	    strcmp(out + strlen(out) - strlen(end), end) == 0), "%s: %s",
	    chunked[_i].label, out);
	/* The callback is given the last chunk first. */
	end = chunked[_i].last_end;
	if (end != NULL && chunks.n > 0)
		ck_assert_msg(strcmp(chunks.v[0] + strlen(chunks.v[0]) -
		    strlen(end), end) == 0, "%s: %s", chunked[_i].label,
		    chunks.v[0]);
done:
	free(out);
	free(rec);
	strlist_clear(&chunks);
}
END_TEST

Suite *
spfrecord_suite(void)
{
	Suite	*s = suite_create("spfrecord");
	TCase	*tc = tcase_create("spfrecord");

	tcase_add_loop_test(tc, test_grammar, 0, NELEMS(records));
	tcase_add_loop_test(tc, test_normalise, 0, NELEMS(norms));
	tcase_add_loop_test(tc, test_macro_expand, 0, NELEMS(macros));
	tcase_add_test(tc, test_normalise_macros);
	tcase_add_loop_test(tc, test_bounds, 0, NELEMS(bounds));
	tcase_add_loop_test(tc, test_chunks, 0, NELEMS(chunked));
	suite_add_tcase(s, tc);
	return (s);
}
