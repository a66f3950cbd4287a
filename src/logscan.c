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

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "natguard.h"

/*
 * natguard audit: read logs (syslog lines with any common prefix, and
 * audit_log JSON lines) one line at a time and count.  Memory grows with
 * the number of distinct values counted (reasons, gateways, domains), not
 * with the size of the log.
 */

struct tally {
	char		*key;
	uint64_t	 n;
};

struct counter {
	struct tally	*v;
	size_t		 n;
};

struct audit_sum {
	uint64_t	 decisions;
	time_t		 first;
	time_t		 last;
	time_t		 since;		/* 0: everything */
	struct counter	 by_action;
	struct counter	 by_reason;
	struct counter	 gateways;
	struct counter	 domains;	/* senders of NAT-affected mail */
	struct counter	 probe;
	uint64_t	 symptoms;
	int		 year;		/* for syslog stamps without one */
};

static void
count(struct counter *c, const char *key)
{
	size_t	i;

	for (i = 0; i < c->n; i++) {
		if (strcmp(c->v[i].key, key) == 0) {
			c->v[i].n++;
			return;
		}
	}
	c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
	c->v[c->n].key = xstrdup(key);
	c->v[c->n].n = 1;
	c->n++;
}

static void
counter_clear(struct counter *c)
{
	size_t	i;

	for (i = 0; i < c->n; i++)
		free(c->v[i].key);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

struct audit_sum *
audit_sum_new(time_t since)
{
	struct audit_sum	*s = xcalloc(1, sizeof(*s));
	struct tm		 tm;
	time_t			 now = time(NULL);

	gmtime_r(&now, &tm);
	s->year = tm.tm_year + 1900;
	s->since = since;
	return (s);
}

void
audit_sum_free(struct audit_sum *s)
{
	if (s == NULL)
		return;
	counter_clear(&s->by_action);
	counter_clear(&s->by_reason);
	counter_clear(&s->gateways);
	counter_clear(&s->domains);
	counter_clear(&s->probe);
	free(s);
}

static time_t
parse_iso(const char *p)
{
	struct tm	tm;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(p, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) < 3)
		return (0);
	tm.tm_year -= 1900;
	tm.tm_mon--;
	return (timegm(&tm));
}

/* "2026-11-26", "2026-11-26T05:00:00[Z]": for --since. */
int
audit_parse_time(const char *s, time_t *out)
{
	if (strlen(s) < 10 || s[4] != '-' || s[7] != '-' ||
	    (*out = parse_iso(s)) == 0)
		return (-1);
	return (0);
}

/* The time a syslog line starts with: RFC 5424, ISO, or "Mon DD HH:MM:SS". */
static time_t
line_time(const struct audit_sum *s, const char *line)
{
	static const char	*months = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char		*m;
	struct tm		 tm;
	char			 mon[4];

	if (line[0] == '<') {
		/* <PRI>1 TIMESTAMP ... */
		if ((line = strchr(line, ' ')) == NULL)
			return (0);
		line++;
	}
	if (isdigit((unsigned char)line[0]))
		return (parse_iso(line));
	memset(&tm, 0, sizeof(tm));
	if (sscanf(line, "%3s %d %d:%d:%d", mon, &tm.tm_mday, &tm.tm_hour,
	    &tm.tm_min, &tm.tm_sec) != 5 || (m = strstr(months, mon)) == NULL)
		return (0);
	tm.tm_mon = (int)(m - months) / 3;
	tm.tm_year = s->year - 1900;
	return (timegm(&tm));
}

static void
account(struct audit_sum *s, time_t t, const char *action, const char *reason,
    const char *client, const char *from, const char *probe)
{
	const char	*at;

	if (s->since != 0 && t != 0 && t < s->since)
		return;
	s->decisions++;
	if (t != 0 && (s->first == 0 || t < s->first))
		s->first = t;
	if (t > s->last)
		s->last = t;
	count(&s->by_action, action ? action : "?");
	count(&s->by_reason, reason ? reason : "?");
	if (reason == NULL || strcmp(reason, "nat-gateway") != 0)
		return;
	if (client != NULL)
		count(&s->gateways, client);
	if (from != NULL && (at = strrchr(from, '@')) != NULL) {
		char	*dom = xstrdup(at + 1), *gt;

		if ((gt = strchr(dom, '>')) != NULL)
			*gt = '\0';
		if (*dom != '\0')
			count(&s->domains, dom);
		free(dom);
	}
	if (probe != NULL)
		count(&s->probe, probe);
}

/* Value of key= in a natguard log line (quoted or not), allocated. */
static char *
kv(const char *p, const char *key)
{
	struct buf	 b = { NULL, 0, 0 };
	size_t		 klen = strlen(key);
	const char	*q;

	for (q = p; (q = strstr(q, key)) != NULL; q += klen) {
		if ((q == p || q[-1] == ' ') && q[klen] == '=')
			break;
	}
	if (q == NULL)
		return (NULL);
	q += klen + 1;
	buf_add(&b, "", 0);
	if (*q != '"') {
		buf_add(&b, q, strcspn(q, " "));
		return (buf_take(&b));
	}
	for (q++; *q != '\0' && *q != '"'; q++) {
		if (*q == '\\' && q[1] != '\0')
			q++;
		buf_add(&b, q, 1);
	}
	return (buf_take(&b));
}

/* Postfix's own SPF rejection of a private gateway-like address. */
static int
postfix_symptom(const char *line)
{
	const char	*p, *lb, *rb;
	char		 addr[64];
	struct addr	 a;
	size_t		 len;

	if ((p = strstr(line, "reject: RCPT from ")) == NULL ||
	    (strstr(p, " 5.7.23") == NULL && strstr(p, "SPF") == NULL))
		return (0);
	if ((lb = strchr(p, '[')) == NULL || (rb = strchr(lb, ']')) == NULL ||
	    (len = rb - lb - 1) >= sizeof(addr))
		return (0);
	memcpy(addr, lb + 1, len);
	addr[len] = '\0';
	if (addr_parse(addr, &a) != 0)
		return (0);
	/* Docker's gateways: the first host of a private network. */
	if (a.family == AF_INET)
		return ((a.bytes[0] == 10 || (a.bytes[0] == 172 &&
		    (a.bytes[1] & 0xf0) == 16) || (a.bytes[0] == 192 &&
		    a.bytes[1] == 168)) && a.bytes[3] == 1);
	return ((a.bytes[0] & 0xfe) == 0xfc && a.bytes[15] == 1);
}

static void
scan_json(struct audit_sum *s, const char *line)
{
	json_t		*o;
	const char	*probe = NULL;

	if ((o = json_loads(line, 0, NULL)) == NULL)
		return;
	if (json_is_string(json_object_get(o, "spf_probe")) ||
	    json_is_true(json_object_get(o, "spf_probe")))
		probe = json_string_value(json_object_get(o, "spf"));
	if (json_string_value(json_object_get(o, "action")) != NULL)
		account(s, parse_iso(json_string_value(json_object_get(o,
		    "time")) ? json_string_value(json_object_get(o, "time")) :
		    ""), json_string_value(json_object_get(o, "action")),
		    json_string_value(json_object_get(o, "reason")),
		    json_string_value(json_object_get(o, "client")),
		    json_string_value(json_object_get(o, "from")), probe);
	json_decref(o);
}

/* One line of a log. */
void
audit_sum_line(struct audit_sum *s, const char *line)
{
	const char	*p;
	char		*action, *reason, *client, *from, *spf, *probe;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '{') {
		scan_json(s, line);
		return;
	}
	if (postfix_symptom(line)) {
		if (s->since == 0 || line_time(s, line) >= s->since)
			s->symptoms++;
		return;
	}
	if ((p = strstr(line, "natguard")) == NULL ||
	    (p = strstr(p, ": action=")) == NULL)
		return;
	action = kv(p + 2, "action");
	reason = kv(p + 2, "reason");
	client = kv(p + 2, "client");
	from = kv(p + 2, "from");
	spf = kv(p + 2, "spf");
	probe = kv(p + 2, "spf_probe");
	account(s, line_time(s, line), action, reason, client, from,
	    probe != NULL && strcmp(probe, "yes") == 0 ? spf : NULL);
	free(action);
	free(reason);
	free(client);
	free(from);
	free(spf);
	free(probe);
}

static json_t *
counter_json(const struct counter *c)
{
	json_t	*o = json_object();
	size_t	 i;

	for (i = 0; i < c->n; i++)
		json_object_set_new(o, c->v[i].key, json_integer(
		    (json_int_t)c->v[i].n));
	return (o);
}

static json_t *
time_json(time_t t)
{
	struct tm	tm;
	char		buf[32];

	if (t == 0)
		return (json_null());
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return (json_string(buf));
}

/* The object of SPEC section 6. */
json_t *
audit_sum_json(const struct audit_sum *s)
{
	return (json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}",
	    "decisions", (json_int_t)s->decisions,
	    "first", time_json(s->first),
	    "last", time_json(s->last),
	    "by_action", counter_json(&s->by_action),
	    "by_reason", counter_json(&s->by_reason),
	    "gateways", counter_json(&s->gateways),
	    "sender_domains", counter_json(&s->domains),
	    "spf_probe", counter_json(&s->probe),
	    "postfix_symptoms", (json_int_t)s->symptoms));
}
