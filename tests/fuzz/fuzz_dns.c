/*
 * Fuzz target: what a DNS server sends.  The bytes are a DNS message, read
 * for each record type natguard asks for; every TXT string that comes out
 * goes through the SPF record grammar and normaliser, which is what
 * libspf2 is then given, with and without its macros expanded (values
 * holding every octet spfrecord.c escapes or refuses).  The first byte
 * picks the identity flags.
 *
 * What natguard hands libspf2 is then compiled by libspf2 itself: each
 * record and chunk as a record, and each text spf_text_safe() passes as
 * an explanation.  Debian 12's libspf2 overflows its stack on what
 * natguard must never pass (CVE-2023-42118); its stack protector makes
 * that a crash the fuzzer reports.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netinet/in.h>

#include <spf2/spf.h>

#include "natguard.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

static SPF_server_t	*server;
static struct strlist	 chunks;

static void
compile(const char *text)
{
	SPF_response_t	*resp;
	SPF_record_t	*rec = NULL;
	SPF_macro_t	*mac = NULL;

	if (server == NULL && (server = SPF_server_new(SPF_DNS_ZONE, 0)) ==
	    NULL)
		abort();
	if ((resp = SPF_response_new(NULL)) == NULL)
		abort();
	if (strncasecmp(text, "v=spf1", 6) == 0) {
		(void)SPF_record_compile(server, resp, &rec, text);
		if (rec != NULL)	/* libspf2's free is not NULL-safe */
			SPF_record_free(rec);
	}
	SPF_response_free(resp);
	if (!spf_text_safe(text))
		return;
	if ((resp = SPF_response_new(NULL)) == NULL)
		abort();
	if (SPF_record_compile_macro(server, resp, &mac, text) ==
	    SPF_E_SUCCESS)
		SPF_macro_free(mac);
	SPF_response_free(resp);
}

static const char *
fuzz_chunk(void *arg, const char *text)
{
	(void)arg;
	strlist_add(&chunks, text);
	return ("c0" SPF_CHUNK_SUFFIX);
}

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
	struct spf_norm		 nm = { fuzz_chunk, NULL, "" };
	const char		*why;
	char			*norm;
	size_t			 i;
	int			 ok;

	(void)spf_record_check(s, &ok, &why);
	norm = spf_record_normalise(s, len, flag, NULL, NULL);
	free(norm);
	m.v6 = flag;
	m.arg = flag ? "mx.a-b.example" : NULL;
	norm = spf_record_normalise(s, len, flag, &m, &nm);
	if (norm != NULL)
		compile(norm);
	for (i = 0; i < chunks.n; i++)
		compile(chunks.v[i]);
	strlist_clear(&chunks);
	/* A TXT string that is no record, as it is: an explanation. */
	if (norm == NULL && memchr(s, '\0', len) == NULL)
		compile(s);
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
