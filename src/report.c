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
	n++;						\
} while (0)
	ADD("action", action_name(d->action));
	ADD("reason", d->reason);
	ADD("client", d->client);
	if (d->has_gateway)
		ADD("gateway_source", gw_source_name(d->gateway.source));
	if ((v = nonempty(req, "helo_name")) != NULL)
		ADD("helo", v);
	if (req != NULL && (v = request_get(req, "sender")) != NULL)
		ADD("from", v);
	if ((v = nonempty(req, "recipient")) != NULL)
		ADD("to", v);
	if (d->has_spf)
		ADD("spf", spf_result_name(d->spf_result));
	if (d->has_spf && d->spf_probe)
		ADD("spf_probe", "yes");
	if (d->instance != NULL)
		ADD("instance", d->instance);
	if (d->explanation != NULL)
		ADD("explanation", d->explanation);
#undef ADD
	return (n);
}

static void
append(char **buf, size_t *len, size_t *size, const char *s, size_t n)
{
	if (*len + n + 1 > *size) {
		while (*len + n + 1 > *size)
			*size = *size == 0 ? 256 : *size * 2;
		*buf = xreallocarray(*buf, *size, 1);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/*
 * Append a value: as it is when it is one plain word, else in double
 * quotes with \" and \\ escapes.  Control characters never reach the log:
 * they become "?", so that no client can forge a log line.
 */
void
report_quote(char **buf, size_t *len, size_t *size, const char *v)
{
	const char	*p;
	int		 quote = (*v == '\0');
	char		 c;

	for (p = v; *p != '\0'; p++)
		if (*p == ' ' || *p == '"' || *p == '\\')
			quote = 1;
	if (quote)
		append(buf, len, size, "\"", 1);
	for (p = v; *p != '\0'; p++) {
		c = *p;
		if ((unsigned char)c < 0x20 || c == 0x7f)
			c = '?';
		if (quote && (c == '"' || c == '\\'))
			append(buf, len, size, "\\", 1);
		append(buf, len, size, &c, 1);
	}
	if (quote)
		append(buf, len, size, "\"", 1);
}

/* "QUEUEID: action=... reason=... ...", allocated. */
char *
report_logline(const struct decision *d, const struct request *req)
{
	struct field	 f[MAX_FIELDS];
	const char	*qid;
	char		*buf = NULL, *v;
	size_t		 n, i, len = 0, size = 0;

	if ((qid = nonempty(req, "queue_id")) == NULL)
		qid = "NOQUEUE";
	report_quote(&buf, &len, &size, qid);
	append(&buf, &len, &size, ":", 1);
	n = report_fields(d, req, f);
	for (i = 0; i < n; i++) {
		append(&buf, &len, &size, " ", 1);
		append(&buf, &len, &size, f[i].key, strlen(f[i].key));
		append(&buf, &len, &size, "=", 1);
		if (strcmp(f[i].key, "from") == 0 ||
		    strcmp(f[i].key, "to") == 0) {
			xasprintf(&v, "<%s>", f[i].value);
			report_quote(&buf, &len, &size, v);
			free(v);
		} else
			report_quote(&buf, &len, &size, f[i].value);
	}
	return (buf);
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
		spf = json_pack("{s:s, s:s, s:o, s:b, s:o}",
		    "result", spf_result_name(d->spf_result),
		    "identity", d->spf_identity,
		    "domain", str_or_null(d->spf_domain),
		    "probe", d->spf_probe,
		    "explanation", str_or_null(d->spf_explanation));
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
