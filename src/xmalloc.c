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

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

/*
 * Allocation failure is fatal: a policy server that cannot allocate a few
 * bytes cannot answer anyone correctly, and Postfix retries elsewhere.
 */

void *
xmalloc(size_t size)
{
	void	*p;

	if (size == 0)
		fatalx("xmalloc: zero size");
	if ((p = malloc(size)) == NULL)
		fatal("xmalloc: allocating %zu bytes", size);
	return (p);
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void	*p;

	if (nmemb == 0 || size == 0)
		fatalx("xcalloc: zero size");
	if ((p = calloc(nmemb, size)) == NULL)
		fatal("xcalloc: allocating %zu * %zu bytes", nmemb, size);
	return (p);
}

void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void	*p;

	if (nmemb == 0 || size == 0)
		fatalx("xreallocarray: zero size");
	if (SIZE_MAX / nmemb < size)
		fatalx("xreallocarray: %zu * %zu overflows", nmemb, size);
	if ((p = realloc(ptr, nmemb * size)) == NULL)
		fatal("xreallocarray: allocating %zu * %zu bytes", nmemb, size);
	return (p);
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("xstrdup");
	return (p);
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	if ((p = strndup(s, n)) == NULL)
		fatal("xstrndup");
	return (p);
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list	ap;
	int	i;

	va_start(ap, fmt);
	i = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (i < 0 || *ret == NULL)
		fatal("xasprintf");
	return (i);
}

/*
 * Strict unsigned parse: digits only (no sign, no space, no base prefix),
 * the whole string, within [min, max].
 */
int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;

	if (s[0] < '0' || s[0] > '9')
		return (-1);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return (-1);
	if (v < min || v > max)
		return (-1);
	*out = v;
	return (0);
}

/* A duration in seconds: a number with an optional s, m or h suffix. */
int
parse_duration(const char *s, uint64_t *out)
{
	char		 buf[32];
	size_t		 len;
	uint64_t	 v, mult = 1;

	len = strlen(s);
	if (len == 0 || len >= sizeof(buf))
		return (-1);
	memcpy(buf, s, len + 1);
	/* Postfix's time units, so that its values read here too. */
	switch (buf[len - 1]) {
	case 'w':
		mult *= 7;
		/* FALLTHROUGH */
	case 'd':
		mult *= 24;
		/* FALLTHROUGH */
	case 'h':
		mult *= 60;
		/* FALLTHROUGH */
	case 'm':
		mult *= 60;
		/* FALLTHROUGH */
	case 's':
		buf[--len] = '\0';
		break;
	}
	/* A year is more than any timeout or interval needs. */
	if (parse_u64(buf, 0, 366ULL * 86400 / mult, &v) != 0)
		return (-1);
	*out = v * mult;
	return (0);
}

/* Room for n more bytes and a NUL. */
void
buf_grow(struct buf *b, size_t n)
{
	if (b->size == 0)
		b->size = 256;
	while (b->len + n + 1 > b->size)
		b->size *= 2;
	b->s = xreallocarray(b->s, b->size, 1);
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->s != NULL)
		b->s[0] = '\0';
}

/* The string, now the caller's; the buf is empty again. */
char *
buf_take(struct buf *b)
{
	char	*s = b->s != NULL ? b->s : xstrdup("");

	b->s = NULL;
	b->len = b->size = 0;
	return (s);
}

void
buf_free(struct buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->size = 0;
}

/*
 * A small file (/proc, a config), whole, and its length in *lenp (it may
 * hold NULs: /proc/PID/environ); NULL when it cannot be read.
 */
char *
read_small_len(const char *path, size_t *lenp)
{
	char	*buf;
	size_t	 len = 0, size = 16384;
	ssize_t	 n;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (NULL);
	buf = xmalloc(size + 1);
	while (len < size) {
		n = read(fd, buf + len, size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == size && size < 4 * 1024 * 1024) {
			size *= 2;
			buf = xreallocarray(buf, size + 1, 1);
		}
	}
	close(fd);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return (buf);
}

char *
read_small(const char *path)
{
	return (read_small_len(path, NULL));
}

/* read_small() of PATH under ROOT ("" for /: tests give a fixture tree). */
char *
read_small_in(const char *root, const char *path)
{
	char	*p, *text;

	xasprintf(&p, "%s%s", root, path);
	text = read_small(p);
	free(p);
	return (text);
}
