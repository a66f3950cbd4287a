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

#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"

/*
 * The SPF worker's messages, as OpenSMTPD's imsg are: one pass of an
 * evaluation to the worker (struct spf_pass), what it found back (struct
 * spf_passed).  Each is a frame: a 32-bit length of what follows, a 32-bit
 * id, the fields in order.  Integers are in host order (both ends are
 * this binary on this host); strings are a 32-bit length and the bytes,
 * SPFMSG_NULL for none.
 *
 * Decoding trusts nothing: the daemon reads what a worker that may have
 * been subverted by a DNS answer wrote.  Every length is checked against
 * what is left, counts against the bytes they would need, and a frame
 * with a byte to spare is refused.
 */

#define SPFMSG_NULL	UINT32_MAX

struct rd {
	const unsigned char	*p;
	size_t			 left;
	int			 bad;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	buf_add(b, p, n);
}

static void
put_u8(struct buf *b, unsigned int v)
{
	unsigned char	c = (unsigned char)v;

	put(b, &c, 1);
}

static void
put_u16(struct buf *b, unsigned int v)
{
	uint16_t	x = (uint16_t)v;

	put(b, &x, sizeof(x));
}

static void
put_u32(struct buf *b, uint32_t v)
{
	put(b, &v, sizeof(v));
}

static void
put_u64(struct buf *b, uint64_t v)
{
	put(b, &v, sizeof(v));
}

static void
put_str(struct buf *b, const char *s)
{
	size_t	len;

	if (s == NULL) {
		put_u32(b, SPFMSG_NULL);
		return;
	}
	len = strlen(s);
	put_u32(b, (uint32_t)len);
	put(b, s, len);
}

/* A frame's start; frame_end() writes its length. */
static size_t
frame_start(struct buf *b, uint32_t id)
{
	size_t	at = b->len;

	put_u32(b, 0);
	put_u32(b, id);
	return (at);
}

static void
frame_end(struct buf *b, size_t at)
{
	uint32_t	len = (uint32_t)(b->len - at - 4);

	if (b->len - at - 4 > SPFMSG_MAX)
		fatalx("spfmsg: a frame of %zu bytes", b->len - at - 4);
	memcpy(b->s + at, &len, sizeof(len));
}

static const void *
get(struct rd *r, size_t n)
{
	const void	*p = r->p;

	if (r->bad || n > r->left) {
		r->bad = 1;
		return (NULL);
	}
	r->p += n;
	r->left -= n;
	return (p);
}

static unsigned int
get_u8(struct rd *r)
{
	const unsigned char	*p = get(r, 1);

	return (p != NULL ? *p : 0);
}

static unsigned int
get_u16(struct rd *r)
{
	const void	*p = get(r, 2);
	uint16_t	 v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof(v));
	return (v);
}

static uint32_t
get_u32(struct rd *r)
{
	const void	*p = get(r, 4);
	uint32_t	 v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof(v));
	return (v);
}

static uint64_t
get_u64(struct rd *r)
{
	const void	*p = get(r, 8);
	uint64_t	 v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof(v));
	return (v);
}

/* A string without NUL bytes; NULL for none (or on error: r->bad). */
static char *
get_str(struct rd *r)
{
	const char	*p;
	uint32_t	 len = get_u32(r);

	if (r->bad || len == SPFMSG_NULL)
		return (NULL);
	if ((p = get(r, len)) == NULL)
		return (NULL);
	if (memchr(p, '\0', len) != NULL) {
		r->bad = 1;
		return (NULL);
	}
	return (xstrndup(p, len));
}

/* A count of items of at least min bytes each: never more than fit. */
static size_t
get_count(struct rd *r, size_t min)
{
	uint32_t	n = get_u32(r);

	if (r->bad || n > r->left / min) {
		r->bad = 1;
		return (0);
	}
	return (n);
}

static void
put_answer(struct buf *b, const struct dns_answer *a)
{
	size_t	i;

	put_u8(b, (unsigned int)a->status);
	put_u32(b, (uint32_t)a->n);
	for (i = 0; i < a->n; i++) {
		put_u32(b, a->rr[i].ttl);
		put_u16(b, a->rr[i].pref);
		put_u32(b, (uint32_t)a->rr[i].len);
		put(b, a->rr[i].data, a->rr[i].len);
	}
}

static struct dns_answer *
get_answer(struct rd *r, int type)
{
	struct dns_answer	*a;
	const void		*data;
	unsigned int		 status;
	size_t			 i;

	a = xcalloc(1, sizeof(*a));
	a->refs = 1;
	a->type = type;
	status = get_u8(r);
	if (status > DNS_TEMPFAIL)
		r->bad = 1;
	a->status = (enum dns_status)status;
	if (a->status == DNS_TEMPFAIL)
		a->error = "from the daemon";
	a->n = get_count(r, 10);
	if (a->n > 0)
		a->rr = xcalloc(a->n, sizeof(*a->rr));
	for (i = 0; i < a->n && !r->bad; i++) {
		a->rr[i].ttl = get_u32(r);
		a->rr[i].pref = (uint16_t)get_u16(r);
		a->rr[i].len = get_u32(r);
		if ((data = get(r, a->rr[i].len)) == NULL)
			break;
		a->rr[i].data = xmalloc(a->rr[i].len + 1);
		memcpy(a->rr[i].data, data, a->rr[i].len);
		a->rr[i].data[a->rr[i].len] = '\0';
	}
	return (a);	/* what a short frame left unread stays empty */
}

void
spfmsg_pass_put(struct buf *b, uint32_t id, const struct spf_pass *in,
    const struct spf_pin *extra, size_t nextra)
{
	size_t	at, i;

	at = frame_start(b, id);
	put_u8(b, in->client.family == AF_INET6 ? 6 : 4);
	put(b, in->client.bytes, sizeof(in->client.bytes));
	put_str(b, in->helo);
	put_str(b, in->mailbox);
	put_str(b, in->rec_dom);
	put_u64(b, in->void_limit);
	put_u32(b, (uint32_t)(in->npins + nextra));
	for (i = 0; i < in->npins + nextra; i++) {
		const struct spf_pin *pin = i < in->npins ? &in->pins[i] :
		    &extra[i - in->npins];

		put_str(b, pin->name);
		put_u16(b, (unsigned int)pin->type);
		put_answer(b, pin->answer);
	}
	frame_end(b, at);
}

void
spf_pass_clear(struct spf_pass *in)
{
	size_t	i;

	for (i = 0; i < in->npins; i++) {
		free(in->pins[i].name);
		dns_answer_unref(in->pins[i].answer);
	}
	free(in->pins);
	free(in->helo);
	free(in->mailbox);
	free(in->rec_dom);
	memset(in, 0, sizeof(*in));
}

/* A frame's payload (after its length): 0, or -1 for a malformed one. */
int
spfmsg_pass_get(const void *p, size_t len, uint32_t *id, struct spf_pass *in)
{
	struct rd	 r = { p, len, 0 };
	struct spf_pin	*pin;
	unsigned int	 fam;
	const void	*bytes;
	size_t		 i;

	memset(in, 0, sizeof(*in));
	*id = get_u32(&r);
	fam = get_u8(&r);
	in->client.family = fam == 6 ? AF_INET6 : AF_INET;
	if (fam != 4 && fam != 6)
		r.bad = 1;
	if ((bytes = get(&r, sizeof(in->client.bytes))) != NULL)
		memcpy(in->client.bytes, bytes, sizeof(in->client.bytes));
	in->helo = get_str(&r);
	in->mailbox = get_str(&r);
	in->rec_dom = get_str(&r);
	in->void_limit = get_u64(&r);
	in->npins = get_count(&r, 11);
	if (in->npins > 0)
		in->pins = xcalloc(in->npins, sizeof(*in->pins));
	for (i = 0; i < in->npins && !r.bad; i++) {
		pin = &in->pins[i];
		pin->name = get_str(&r);
		pin->type = (int)get_u16(&r);
		pin->answer = get_answer(&r, pin->type);
		if (pin->name == NULL)
			r.bad = 1;
	}
	in->npins = i;
	if (in->mailbox == NULL || in->rec_dom == NULL || r.left != 0)
		r.bad = 1;
	if (r.bad) {
		spf_pass_clear(in);
		return (-1);
	}
	return (0);
}

void
spfmsg_passed_put(struct buf *b, uint32_t id, const struct spf_passed *o)
{
	size_t	at, i;

	at = frame_start(b, id);
	put_u8(b, (unsigned int)o->result);
	put_u8(b, (unsigned int)o->failed);
	put_str(b, o->explanation);
	put_str(b, o->comment);
	put_str(b, o->why);
	put_str(b, o->error);
	put_u32(b, (uint32_t)o->nneeds);
	for (i = 0; i < o->nneeds; i++) {
		put_str(b, o->needs[i].name);
		put_u16(b, (unsigned int)o->needs[i].type);
	}
	frame_end(b, at);
}

/* What a pass may ask the daemon to look up: what SPF looks up. */
static int
need_type(int type)
{
	return (type == DNS_T_A || type == DNS_T_AAAA || type == DNS_T_MX ||
	    type == DNS_T_PTR || type == DNS_T_TXT);
}

int
spfmsg_passed_get(const void *p, size_t len, uint32_t *id,
    struct spf_passed *o)
{
	struct rd	 r = { p, len, 0 };
	size_t		 i;

	memset(o, 0, sizeof(*o));
	*id = get_u32(&r);
	o->result = (enum spf_result)get_u8(&r);
	if ((unsigned int)o->result >= SPF_R_COUNT)
		r.bad = 1;
	o->failed = get_u8(&r) != 0;
	o->explanation = get_str(&r);
	o->comment = get_str(&r);
	o->why = get_str(&r);
	o->error = get_str(&r);
	if ((o->nneeds = get_count(&r, 6)) > SPFMSG_MAX_NEEDS)
		r.bad = 1;
	if (o->nneeds > 0)
		o->needs = xcalloc(o->nneeds, sizeof(*o->needs));
	for (i = 0; i < o->nneeds && !r.bad; i++) {
		o->needs[i].name = get_str(&r);
		o->needs[i].type = (int)get_u16(&r);
		if (o->needs[i].name == NULL ||
		    !spf_name_valid(o->needs[i].name) ||
		    !need_type(o->needs[i].type))
			r.bad = 1;
	}
	o->nneeds = i;
	if (r.left != 0)
		r.bad = 1;
	if (r.bad) {
		spf_passed_clear(o);
		return (-1);
	}
	return (0);
}
