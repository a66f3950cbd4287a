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

#include <stdlib.h>
#include <string.h>

#include "natguard.h"

/*
 * A policy request: "name=value" lines ended by an empty line.  The limits
 * (line length, attribute count, total size) are enforced here, whatever
 * the transport did, and a malformed request is refused as a whole: a
 * policy server must not guess at what Postfix meant.
 */

/*
 * The attributes live in one buffer, "name\0value\0" after each other,
 * kept across requests on a connection: a request costs no allocation
 * once the buffer has grown to the connection's largest request.
 */
struct attr {
	uint32_t	name;	/* offsets into buf */
	uint32_t	nlen;
	uint32_t	value;
	uint16_t	next;	/* 1 + the next attribute in its chain; 0: none */
};

struct request {
	char		*buf;
	size_t		 len;
	size_t		 cap;
	struct attr	 attrs[REQ_MAX_ATTRS];
	size_t		 n;
	size_t		 bytes;
	uint64_t	 seen;	/* chains in use: head[] is valid there */
	uint16_t	 head[64]; /* 1 + an attribute per name hash */
};

/*
 * A 6-bit hash of a name: length and the first and last bytes.  Postfix's
 * two dozen names spread over the 64 chains, so a name is found (and a
 * repeated one noticed) in a compare or two, not a walk of the request.
 */
static unsigned int
name_hash(const char *name, size_t len)
{
	return ((len * 7 + (unsigned char)name[0] * 3 +
	    (unsigned char)name[len - 1]) & 63);
}

/* The attribute called name, or NULL. */
static struct attr *
request_find(const struct request *req, const char *name, size_t len)
{
	const struct attr	*a;
	unsigned int		 h;
	uint16_t		 i;

	if (len == 0 || !(req->seen & (1ULL << (h = name_hash(name, len)))))
		return (NULL);
	for (i = req->head[h]; i != 0; i = a->next) {
		a = &req->attrs[i - 1];
		if (a->nlen == len && memcmp(req->buf + a->name, name, len) == 0)
			return ((struct attr *)a);
	}
	return (NULL);
}

struct request *
request_new(void)
{
	return (xcalloc(1, sizeof(struct request)));
}

void
request_reset(struct request *req)
{
	req->len = 0;
	req->n = 0;
	req->bytes = 0;
	req->seen = 0;
}

void
request_free(struct request *req)
{
	if (req == NULL)
		return;
	free(req->buf);
	free(req);
}

/* A copy that outlives the connection's (a NAT probe's, for its log). */
struct request *
request_dup(const struct request *req)
{
	struct request	*dup = request_new();

	*dup = *req;
	dup->cap = req->len > 0 ? req->len : 1;
	dup->buf = xmalloc(dup->cap);
	if (req->len > 0)
		memcpy(dup->buf, req->buf, req->len);
	return (dup);
}

static uint32_t
request_copy(struct request *req, const char *s, size_t len)
{
	uint32_t	off = (uint32_t)req->len;

	if (req->len + len + 1 > req->cap) {
		while (req->len + len + 1 > req->cap)
			req->cap = req->cap == 0 ? 1024 : req->cap * 2;
		req->buf = xreallocarray(req->buf, req->cap, 1);
	}
	memcpy(req->buf + req->len, s, len);
	req->buf[req->len + len] = '\0';
	req->len += len + 1;
	return (off);
}

/*
 * Store one attribute.  A repeated name replaces the earlier value: Postfix
 * never repeats one, and the last word is what a human reading the request
 * would take.
 */
static void
request_store(struct request *req, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	unsigned int	 h = name_hash(name, nlen);
	struct attr	*a;

	if ((a = request_find(req, name, nlen)) != NULL) {
		a->value = request_copy(req, value, vlen);
		return;
	}
	a = &req->attrs[req->n];
	/* "name=value" copied once, the "=" becoming the name's NUL. */
	a->name = request_copy(req, name, nlen + 1 + vlen);
	req->buf[a->name + nlen] = '\0';
	a->nlen = (uint32_t)nlen;
	a->value = a->name + nlen + 1;
	a->next = (req->seen & (1ULL << h)) ? req->head[h] : 0;
	req->head[h] = (uint16_t)(++req->n);
	req->seen |= 1ULL << h;
}

/*
 * One line, without its newline (a trailing CR is tolerated).  Returns
 * REQ_DONE for the empty line that ends a request, REQ_ERROR with *why set
 * for a line that makes the request malformed.
 */
enum req_status
request_add_line(struct request *req, const char *line, size_t len,
    const char **why)
{
	const char	*eq;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0) {
		if (req->n == 0) {
			*why = "empty request";
			return (REQ_ERROR);
		}
		return (REQ_DONE);
	}
	if (len > REQ_MAX_LINE) {
		*why = "line longer than 8192 bytes";
		return (REQ_ERROR);
	}
	if (memchr(line, '\0', len) != NULL) {
		*why = "NUL byte in request";
		return (REQ_ERROR);
	}
	if ((eq = memchr(line, '=', len)) == NULL) {
		*why = "line without \"=\"";
		return (REQ_ERROR);
	}
	if (eq == line) {
		*why = "attribute without a name";
		return (REQ_ERROR);
	}
	req->bytes += len + 1;
	if (req->bytes > REQ_MAX_BYTES) {
		*why = "request larger than 65536 bytes";
		return (REQ_ERROR);
	}
	if (req->n >= REQ_MAX_ATTRS) {
		*why = "more than 256 attributes";
		return (REQ_ERROR);
	}
	request_store(req, line, eq - line, eq + 1, len - (eq - line) - 1);
	return (REQ_MORE);
}

/* "name=value" from a command line. */
int
request_set(struct request *req, const char *arg, const char **why)
{
	if (request_add_line(req, arg, strlen(arg), why) != REQ_MORE) {
		if (*arg == '\0')
			*why = "empty attribute";
		return (-1);
	}
	return (0);
}

const char *
request_get(const struct request *req, const char *name)
{
	const struct attr	*a;

	if ((a = request_find(req, name, strlen(name))) == NULL)
		return (NULL);
	return (req->buf + a->value);
}

size_t
request_count(const struct request *req)
{
	return (req->n);
}
