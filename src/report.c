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
#include <arpa/inet.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "natguard.h"

/*
 * A decision as the log line of SPEC section 7, as an audit_log record with
 * the same keys, and as the `natguard check --json` object of section 6.
 * The log line and the audit record are built from one list of fields so
 * that they never say different things.
 */

struct field {
	const char	*key;
	const char	*value;
	int		 address;	/* the log writes it in <> */
};

#define MAX_FIELDS	16

static const char *
nonempty(const struct request *req, const char *name)
{
	const char	*v;

	if (req == NULL || (v = request_get(req, name)) == NULL || *v == '\0')
		return (NULL);
	return (v);
}

/*
 * A JSON string from client data.  jansson refuses invalid UTF-8; such a
 * value is kept with its non-ASCII bytes replaced, so a record is never lost.
 */
static json_t *
json_text(const char *s)
{
	json_t	*v;
	char	*copy, *p;

	if ((v = json_string(s)) != NULL)
		return (v);
	copy = xstrdup(s);
	for (p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	if ((v = json_string(copy)) == NULL)
		fatalx("json_string");
	free(copy);
	return (v);
}

static size_t
report_fields(const struct decision *d, const struct request *req,
    struct field *f)
{
	size_t		 n = 0;
	const char	*v;

#define ADD(k, v) do {					\
	f[n].key = (k);					\
	f[n].value = (v);				\
	f[n].address = 0;				\
	n++;						\
} while (0)
	ADD("action", action_name(d->action));
	ADD("reason", d->reason);
	ADD("client", d->client);
	if (d->has_gateway)
		ADD("gateway_source", gw_source_name(d->gateway.source));
	if ((v = nonempty(req, "helo_name")) != NULL)
		ADD("helo", v);
	if (req != NULL && (v = request_get(req, "sender")) != NULL) {
		ADD("from", v);
		f[n - 1].address = 1;
	}
	if ((v = nonempty(req, "recipient")) != NULL) {
		ADD("to", v);
		f[n - 1].address = 1;
	}
	if (d->has_spf)
		ADD("spf", spf_result_name(d->spf_result));
	if (d->has_spf && d->spf_probe)
		ADD("spf_probe", "yes");
	if (d->has_spf && d->spf_helo_reported)
		ADD("spf_helo", spf_result_name(d->spf_helo_result));
	if (d->instance != NULL)
		ADD("instance", d->instance);
	if (d->explanation != NULL)
		ADD("explanation", d->explanation);
#undef ADD
	return (n);
}

/*
 * How a byte is written in a log value.  PLAIN bytes are copied; a value
 * with a SPACE is quoted; QUOTE bytes (" and \\) are quoted and escaped;
 * CONTROL bytes become "?"; END is the terminating NUL.  The loops below
 * run on this table: this is the per-request hot path.
 */
enum { PLAIN, SPACE, QUOTE, CONTROL, END };
static unsigned char	quote_class[256];

static void
quote_init(void)
{
	int	c;

	if (quote_class[0] == END)
		return;
	for (c = 1; c < 0x20; c++)
		quote_class[c] = CONTROL;
	quote_class[0x7f] = CONTROL;
	quote_class[' '] = SPACE;
	quote_class['"'] = QUOTE;
	quote_class['\\'] = QUOTE;
	quote_class[0] = END;
}

/*
 * One pass: the value is written as if it needed quotes, and the opening
 * quote is taken back afterwards if it did not.  Long values (the
 * explanation) have spaces and are quoted; short ones are cheap to move.
 */
static void
report_quote_address(struct buf *b, const char *v, int address)
{
	const unsigned char	*p = (const unsigned char *)v, *run;
	size_t			 start = b->len;
	int			 quote = 0;

	buf_add(b, "\"", 1);
	if (address)
		buf_add(b, "<", 1);
	for (;;) {
		for (run = p; quote_class[*p] <= SPACE; p++)
			;
		buf_add(b, run, p - run);
		if (*p == '\0')
			break;
		if (quote_class[*p] == CONTROL)
			buf_add(b, "?", 1);
		else {
			buf_add(b, "\\", 1);
			buf_add(b, p, 1);
			quote = 1;
		}
		p++;
	}
	if (address)
		buf_add(b, ">", 1);
	if (quote || (*v == '\0' && !address) || memchr(v, ' ', (const char *)p -
	    v) != NULL)
		buf_add(b, "\"", 1);
	else {
		memmove(b->s + start, b->s + start + 1, b->len - start - 1);
		b->s[--b->len] = '\0';
	}
}

void
report_quote(struct buf *b, const char *v)
{
	quote_init();
	report_quote_address(b, v, 0);
}

/* "QUEUEID: action=... reason=... ...", appended to b. */
void
report_logline(const struct decision *d, const struct request *req,
    struct buf *b)
{
	struct field	 f[MAX_FIELDS];
	const char	*qid;
	size_t		 n, i;

	if ((qid = nonempty(req, "queue_id")) == NULL)
		qid = "NOQUEUE";
	quote_init();
	report_quote_address(b, qid, 0);
	buf_add(b, ":", 1);
	n = report_fields(d, req, f);
	for (i = 0; i < n; i++) {
		buf_add(b, " ", 1);
		buf_adds(b, f[i].key);
		buf_add(b, "=", 1);
		report_quote_address(b, f[i].value, f[i].address);
	}
}

/* The audit_log record: the log line's keys, a time and the queue id. */
json_t *
report_audit(const struct decision *d, const struct request *req, time_t now)
{
	struct field	 f[MAX_FIELDS];
	struct tm	 tm;
	char		 ts[32];
	const char	*qid;
	json_t		*o;
	size_t		 n, i;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if ((qid = nonempty(req, "queue_id")) == NULL)
		qid = "NOQUEUE";
	o = json_object();
	json_object_set_new(o, "time", json_string(ts));
	json_object_set_new(o, "queue_id", json_string(qid));
	n = report_fields(d, req, f);
	for (i = 0; i < n; i++) {
		json_object_set_new(o, f[i].key, json_text(f[i].value));
	}
	return (o);
}

static json_t *
str_or_null(const char *s)
{
	if (s == NULL)
		return (json_null());
	return (json_text(s));
}

/* The object of SPEC section 6. */
json_t *
report_json(const struct decision *d)
{
	json_t	*o, *gw = json_null(), *spf = json_null();
	char	 buf[INET6_ADDRSTRLEN];

	if (d->has_gateway) {
		addr_format(&d->gateway.net.addr, buf, sizeof(buf));
		gw = json_pack("{s:s, s:s}", "address", buf, "source",
		    gw_source_name(d->gateway.source));
	}
	if (d->has_spf)
		spf = json_pack("{s:s, s:s, s:o, s:b, s:o, s:o}",
		    "result", spf_result_name(d->spf_result),
		    "identity", d->spf_identity,
		    "domain", str_or_null(d->spf_domain),
		    "probe", d->spf_probe,
		    "explanation", str_or_null(d->spf_explanation),
		    "helo_result", d->spf_helo_reported ?
		    json_string(spf_result_name(d->spf_helo_result)) :
		    json_null());
	o = json_pack("{s:s, s:o, s:s, s:o, s:{s:o, s:s}, s:o, s:o}",
	    "action", action_name(d->action),
	    "reply", str_or_null(d->reply),
	    "reason", d->reason,
	    "explanation", str_or_null(d->explanation),
	    "client", "address", str_or_null(d->client),
	    "class", client_class_name(d->class),
	    "gateway", gw,
	    "spf", spf);
	if (o == NULL)
		fatalx("json_pack");
	return (o);
}
