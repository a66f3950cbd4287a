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
 *
 * Then the whole path, as the SPF worker runs it (spfeval.c): an
 * evaluation against a synthetic DNS where every name answers with this
 * message for its type (the second bit of the first byte: TXT answers
 * NXDOMAIN for all but the identity's own domain), pass after pass until
 * it needs nothing new, macros expanded, includes and redirects followed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/socket.h>
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

/* The evaluation, each name it lacks answered from the world. */
static void
evaluate(struct dns_answer *world[], const int types[], size_t ntypes,
    int flag)
{
	static struct spfeval	*eval;
	struct dns_answer	*a, *nx;
	struct spf_pass		 in;
	struct spf_passed	 out;
	size_t			 i, t;
	int			 pass;

	if (eval == NULL)
		eval = spfeval_new();
	nx = xcalloc(1, sizeof(*nx));
	nx->status = DNS_NXDOMAIN;
	nx->type = DNS_T_TXT;
	nx->refs = 1;
	memset(&in, 0, sizeof(in));
	in.client.family = (flag & 1) ? AF_INET6 : AF_INET;
	if (flag & 1)
		memcpy(in.client.bytes, "\x20\x01\x0d\xb8\0\0\0\0"
		    "\0\0\0\0\0\0\0\x01", 16);
	else
		memcpy(in.client.bytes, "\xc0\x00\x02\x01", 4);
	in.helo = xstrdup("helo.x-y.example");
	in.mailbox = xstrdup("l.p-a_rt+x=y@x-y.example");
	in.rec_dom = xstrdup("receiver.example");
	in.void_limit = 2;
	for (pass = 0; pass < 24; pass++) {
		spfeval_run(eval, &in, &out);
		for (i = 0; i < out.nneeds; i++) {
			for (t = 0; t < ntypes && types[t] != out.needs[i].type;
			    t++)
				;
			if (t == ntypes)
				abort();	/* a type natguard never asks */
			a = world[t];
			if ((flag & 2) && types[t] == DNS_T_TXT &&
			    strcmp(out.needs[i].name, "x-y.example") != 0)
				a = nx;
			a->refs++;
			in.pins = xreallocarray(in.pins, in.npins + 1,
			    sizeof(*in.pins));
			in.pins[in.npins].name = xstrdup(out.needs[i].name);
			in.pins[in.npins].type = out.needs[i].type;
			in.pins[in.npins].answer = a;
			in.npins++;
		}
		i = out.nneeds;
		spf_passed_clear(&out);
		if (i == 0)
			break;
	}
	spf_pass_clear(&in);
	dns_answer_unref(nx);
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	static const int	 types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX,
	    DNS_T_TXT, DNS_T_PTR };
	struct dns_answer	*a, *world[5];
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
		world[i] = a;
	}
	evaluate(world, types, 5, data[0]);
	for (i = 0; i < 5; i++)
		dns_answer_unref(world[i]);
	/* The whole input as one record, too: a TXT string can be anything. */
	s = xstrndup((const char *)data + 1, len - 1);
	record(s, strlen(s), flag);
	free(s);
	return (0);
}
