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

struct attr {
	char	*name;
	char	*value;
};

struct request {
	struct attr	*attrs;
	size_t		 n;
	size_t		 alloc;
	size_t		 bytes;
};

struct request *
request_new(void)
{
	return (xcalloc(1, sizeof(struct request)));
}

void
request_reset(struct request *req)
{
	size_t	i;

	for (i = 0; i < req->n; i++) {
		free(req->attrs[i].name);
		free(req->attrs[i].value);
	}
	req->n = 0;
	req->bytes = 0;
}

void
request_free(struct request *req)
{
	if (req == NULL)
		return;
	request_reset(req);
	free(req->attrs);
	free(req);
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
	size_t	i;

	for (i = 0; i < req->n; i++) {
		if (strlen(req->attrs[i].name) == nlen &&
		    memcmp(req->attrs[i].name, name, nlen) == 0) {
			free(req->attrs[i].value);
			req->attrs[i].value = xstrndup(value, vlen);
			return;
		}
	}
	if (req->n == req->alloc) {
		req->alloc = req->alloc == 0 ? 32 : req->alloc * 2;
		req->attrs = xreallocarray(req->attrs, req->alloc,
		    sizeof(*req->attrs));
	}
	req->attrs[req->n].name = xstrndup(name, nlen);
	req->attrs[req->n].value = xstrndup(value, vlen);
	req->n++;
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
	size_t	i;

	for (i = 0; i < req->n; i++)
		if (strcmp(req->attrs[i].name, name) == 0)
			return (req->attrs[i].value);
	return (NULL);
}

size_t
request_count(const struct request *req)
{
	return (req->n);
}
