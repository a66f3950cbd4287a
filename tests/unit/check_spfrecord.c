#include "config.h"

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
	    norms[_i].v6);
	ck_assert_msg(out != NULL && strcmp(out, norms[_i].out) == 0,
	    "%s: %s", norms[_i].label, out ? out : "(null)");
	free(out);
	ck_assert_ptr_eq(spf_record_normalise("hello", 5, 0), NULL);
	/* A NUL inside: the record is not what the grammar reads. */
	out = spf_record_normalise("v=spf1 a\0b", 10, 0);
	ck_assert_str_eq(out, SPF_RECORD_INVALID);
	free(out);
}
END_TEST

Suite *
spfrecord_suite(void)
{
	Suite	*s = suite_create("spfrecord");
	TCase	*tc = tcase_create("spfrecord");

	tcase_add_loop_test(tc, test_grammar, 0, NELEMS(records));
	tcase_add_loop_test(tc, test_normalise, 0, NELEMS(norms));
	suite_add_tcase(s, tc);
	return (s);
}
