/*
 * Fuzz target: what a DNS server sends.  The bytes are a DNS message, read
 * for each record type natguard asks for; every TXT string that comes out
 * goes through the SPF record grammar and normaliser, which is what
 * libspf2 is then given, with and without its macros expanded (values
 * holding every octet spfrecord.c escapes or refuses).  The first byte
 * picks the identity flags.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "natguard.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

static const char *
fuzz_p(void *arg, const char *domain)
{
	(void)domain;
	return (arg);
}

static void
record(const char *s, size_t len, int flag)
{
	struct spf_macros	 m = { "a.b-c/d%e f,g@@x-y.example",
	    "x-y.example", "192.0.2.1", "helo.example", 0, fuzz_p, NULL };
	const char		*why;
	char			*norm;
	int			 ok;

	(void)spf_record_check(s, &ok, &why);
	norm = spf_record_normalise(s, len, flag, NULL, NULL);
	free(norm);
	m.v6 = flag;
	m.arg = flag ? "mx.a-b.example" : NULL;
	norm = spf_record_normalise(s, len, flag, &m, NULL);
	free(norm);
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	static const int	 types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX,
	    DNS_T_TXT, DNS_T_PTR };
	struct dns_answer	*a;
	uint32_t		 ttl;
	size_t			 i, j;
	char			*s;
	int			 flag;

	if (len == 0)
		return (0);
	flag = data[0] & 1;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		a = dns_answer_parse(data + 1, len - 1, types[i], 0, &ttl);
		for (j = 0; j < a->n; j++) {
			if (a->rr[j].data[a->rr[j].len] != '\0')
				abort();	/* promised NUL-terminated */
			if (types[i] == DNS_T_TXT)
				record(a->rr[j].data, a->rr[j].len, flag);
		}
		dns_answer_unref(a);
	}
	/* The whole input as one record, too: a TXT string can be anything. */
	s = xstrndup((const char *)data + 1, len - 1);
	record(s, strlen(s), flag);
	free(s);
	return (0);
}
