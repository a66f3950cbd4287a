/*
 * Hostile input against one running daemon: malformed and odd requests,
 * floods, protocol confusion and connection behaviours an attacker (or a
 * broken client) would try.  After every case the same daemon must still
 * answer a normal request correctly, its resident memory must not have
 * grown past RSS_GROWTH_MB over what it used after start, and the log
 * must name the fault (with the peer) where there was one.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define NELEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define T		5000	/* ms for a reply */
#define RSS_GROWTH_MB	32	/* the stated bound, plain builds */
#define HALF_OPEN	2000	/* connections left in the middle */

static struct daemon	D;
static long		rss_base;	/* kB, after start */
/*
 * max_connections for the daemon: 2500, or less where the descriptor
 * limit (ours and the daemon's) is lower, as it is for a user without
 * root whose hard limit is 1024 or 4096.
 */
static int		max_conns = 2500;

static const char *defer_reply = "action=DEFER 4.3.5 Client address hidden "
    "by NAT on this server; please try again later";

/* --- helpers ---------------------------------------------------------- */

static char *
repeat(const char *unit, size_t n, const char *head, const char *tail)
{
	size_t	 ul = strlen(unit), hl = strlen(head), i;
	char	*s = malloc(hl + ul * n + strlen(tail) + 1);

	memcpy(s, head, hl);
	for (i = 0; i < n; i++)
		memcpy(s + hl + i * ul, unit, ul);
	strcpy(s + hl + ul * n, tail);
	return (s);
}

/* s (freed) with printf-style text after it. */
static char *
append(char *s, const char *fmt, ...)
{
	va_list	 ap;
	char	*t, *u;

	va_start(ap, fmt);
	if (vasprintf(&t, fmt, ap) == -1)
		abort();
	va_end(ap);
	if (asprintf(&u, "%s%s", s, t) == -1)
		abort();
	free(s);
	free(t);
	return (u);
}

static char *
req(const char *client, const char *extra)
{
	char	*s;

	if (asprintf(&s, "request=smtpd_access_policy\nprotocol_state=RCPT\n"
	    "client_address=%s\nhelo_name=mail.example.org\n"
	    "sender=a@example.org\nrecipient=b@example.com\n%s\n", client,
	    extra) == -1)
		abort();
	return (s);
}

/* The sanitizers' quarantine and valgrind's own heap are not ours. */
static int
rss_bounded(void)
{
	return (getenv("ASAN_OPTIONS") == NULL && !under_valgrind());
}

/*
 * A log line has no signal of its own: the daemon writes it at the end
 * of the loop iteration that closed the connection.  Wait for it.
 */
static int
log_wait(const char *want)
{
	int	i;

	for (i = 0; i < 200; i++) {
		if (log_has(&D, want))
			return (1);
		usleep(25000);
	}
	return (0);
}

static void
expect_logged(const char *label, const char *peer, const char *fault)
{
	char	*want;

	if (asprintf(&want, "%s: %s", peer, fault) == -1)
		abort();
	ck_assert_msg(log_wait(want), "%s: the log does not say \"%s\"", label,
	    want);
	free(want);
}

/* The daemon still answers a gateway and a skip client correctly. */
static void
healthy(const char *label)
{
	char	*r, *q;
	int	 fd;
	long	 rss;

	fd = conn_open(D.listen[0]);
	ck_assert_msg(fd != -1, "%s: cannot connect afterwards", label);
	q = req("172.20.0.1", "instance=h1\n");
	ck_assert_int_eq(send_str(fd, q), 0);
	free(q);
	r = read_reply(fd, T);
	ck_assert_msg(r != NULL && strcmp(r, defer_reply) == 0,
	    "%s: afterwards, a gateway client got %s", label, r ? r : "nothing");
	free(r);
	q = req("127.0.0.1", "instance=h2\n");
	ck_assert_int_eq(send_str(fd, q), 0);
	free(q);
	r = read_reply(fd, T);
	ck_assert_msg(r != NULL && strcmp(r, "action=DUNNO") == 0,
	    "%s: afterwards, a skip client got %s", label, r ? r : "nothing");
	free(r);
	close(fd);
	rss = rss_kb(D.pid);
	ck_assert_msg(rss > 0, "%s: the daemon is gone", label);
	if (rss_bounded())
		ck_assert_msg(rss - rss_base <= RSS_GROWTH_MB * 1024L,
		    "%s: RSS %ld kB, %ld kB over the %ld kB after start "
		    "(bound %d MB)", label, rss, rss - rss_base, rss_base,
		    RSS_GROWTH_MB);
}

static void
set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* --- malformed: no reply, the connection closed, the fault logged --- */

static char *
gen_nul_value(size_t *len)
{
	char	*s = strdup("request=smtpd_access_policy\nsender=a@b#c\n\n");

	*len = strlen(s);
	*strchr(s, '#') = '\0';
	return (s);
}

static char *
gen_nul_name(size_t *len)
{
	char	*s = strdup("request=smtpd_access_policy\nsen#der=x\n\n");

	*len = strlen(s);
	*strchr(s, '#') = '\0';
	return (s);
}

static char *
gen_longline(size_t *len)
{
	(void)len;
	return (repeat("x", 8193, "request=smtpd_access_policy\nsender=", "\n\n"));
}

static char *
gen_longline_noeol(size_t *len)
{
	(void)len;
	return (repeat("y", 20000, "helo_name=", ""));
}

static char *
gen_megabyte_noeol(size_t *len)
{
	(void)len;
	return (repeat("z", 1 << 20, "", ""));
}

static char *
gen_big(size_t *len)
{
	char	*line = repeat("z", 8000, "", "\n"), *s = strdup("");
	int	 i;

	(void)len;
	for (i = 0; i < 9; i++) {
		line[0] = 'a' + i;
		line[1] = '=';
		s = append(s, "%s", line);
	}
	free(line);
	return (s);
}

static char *
gen_attrs(size_t *len)
{
	char	*s = strdup("");
	int	 i;

	(void)len;
	for (i = 0; i < 257; i++)
		s = append(s, "a%d=1\n", i);
	return (s);
}

static char *
gen_attrs_same(size_t *len)
{
	(void)len;
	/* One name 300 times: stored once, but each line counts. */
	return (repeat("sender=x\n", 300, "", "\n"));
}

static char *
gen_extra_empty(size_t *len)
{
	(void)len;
	return (append(req("192.0.2.1", ""), "\n"));
}

static char *
gen_binary(size_t *len)
{
	char	*s = malloc(4096);
	int	 i;

	for (i = 0; i < 4096; i++)
		s[i] = (char)((i * 131 + 7) & 0xff);
	*len = 4096;
	return (s);
}

static char *
gen_tls(size_t *len)
{
	static const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x00, 0x2f,
	    0x01, 0x00, 0x00, 0x2b, 0x03, 0x03, 0x0a, 0x0a, 0x0a, 0x0a, '\n',
	    '\n' };
	char	*s = malloc(sizeof(hello));

	memcpy(s, hello, sizeof(hello));
	*len = sizeof(hello);
	return (s);
}

static char *
gen_fault_after_good(size_t *len)
{
	(void)len;
	return (append(req("172.20.0.1", "instance=g1\n"),
	    "no equals sign here\n\n"));
}

static char *
gen_fault_midpipeline(size_t *len)
{
	char	*a = req("172.20.0.1", "instance=p1\n");
	char	*b = req("127.0.0.1", "instance=p2\n"), *s;

	(void)len;
	s = append(append(strdup(""), "%s%s", a, b), "broken\n\n%s", a);
	free(a);
	free(b);
	return (s);
}

/* --- accepted: replies, and the connection goes on ------------------- */

static char *
gen_line_8192(size_t *len)
{
	char	*v = repeat("h", 8192 - 10, "helo_name=", "\n"), *s;

	(void)len;
	s = req("172.20.0.1", v);
	free(v);
	return (s);
}

static char *
gen_attrs_256(size_t *len)
{
	char	*s = strdup("request=smtpd_access_policy\n"
	    "client_address=172.20.0.1\n");
	int	 i;

	(void)len;
	for (i = 0; i < 254; i++)
		s = append(s, "x%d=\n", i);
	return (append(s, "\n"));
}

static char *
gen_near_64k(size_t *len)
{
	char	*s = strdup("request=smtpd_access_policy\n"
	    "client_address=172.20.0.1\n"), *line;
	int	 i;

	(void)len;
	line = repeat("q", 8000, "", "\n");
	for (i = 0; i < 8; i++) {
		line[0] = 'a' + i;
		line[1] = '=';
		s = append(s, "%s", line);
	}
	free(line);
	return (append(s, "\n"));
}

#define GEN_REQ(fn, client, extra)			\
static char *						\
fn(size_t *len)						\
{							\
	(void)len;					\
	return (req(client, extra));			\
}
GEN_REQ(gen_mapped, "::ffff:172.20.0.1", "")
GEN_REQ(gen_zone, "fe80::1%eth0", "")
GEN_REQ(gen_space_client, " 172.20.0.1", "")
GEN_REQ(gen_bad_client, "999.1.1.1", "")
GEN_REQ(gen_ipv6_junk, "::::", "")
GEN_REQ(gen_repeated_client, "192.0.2.1", "client_address=172.20.0.1\n")
GEN_REQ(gen_utf8, "172.20.0.1", "helo_name=\xff\xfe\xc3\x28.example\n"
    "sender=\xe2\x82\xac@\xf0\x9f\x92\xa9.example\n")
GEN_REQ(gen_ctl, "172.20.0.1", "helo_name=a\x01\x02\x1b[31mred\n"
    "sender=\"x y\"\\\"@example.org\n")
GEN_REQ(gen_cr_value, "172.20.0.1", "sender=a@b\rinjected: x\n")
GEN_REQ(gen_tab, "172.20.0.1", "helo_name=\tmail\t\n")
GEN_REQ(gen_huge_count, "172.20.0.1", "recipient_count="
    "99999999999999999999999999\nsize=-1\n")
GEN_REQ(gen_space_name, "172.20.0.1", "client address=1\nsender =x\n")
GEN_REQ(gen_double_eq, "172.20.0.1", "sender==a@b==\n")
GEN_REQ(gen_sasl_gw, "172.20.0.1", "sasl_username=bob\n")
GEN_REQ(gen_macro_helo, "172.20.0.1", "helo_name=%{d}%{i}%%%_.example\n"
    "sender=%{l}@%{o}\n")
GEN_REQ(gen_long_name, "172.20.0.1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1\n")
GEN_REQ(gen_no_request_attr_junk, "172.20.0.1", "request=\n")

static char *
gen_long_sender(size_t *len)
{
	char	*v = repeat("s", 4000, "sender=", "@example.org\n"), *s;

	(void)len;
	s = req("172.20.0.1", v);
	free(v);
	return (s);
}

static char *
gen_instance_flip(size_t *len)
{
	char	*b = req("127.0.0.1", "instance=same\n"), *s;

	/* The same instance from another client: decided again, not reused. */
	(void)len;
	s = append(req("172.20.0.1", "instance=same\n"), "%s", b);
	free(b);
	return (s);
}

/* --- the table -------------------------------------------------------- */

enum expect {
	CLOSED,		/* no reply (after `replies` good ones), closed */
	REPLIES		/* `replies` replies, the first as given */
};

struct hcase;
typedef void	(*runner)(const struct hcase *);

struct hcase {
	const char	*label;
	char		*(*gen)(size_t *);
	enum expect	 expect;
	int		 replies;
	const char	*first;		/* the first reply, or NULL: any */
	const char	*fault;		/* logged with the peer, or NULL */
	runner		 run;		/* special behaviour, or NULL */
	const char	*text;		/* the input, when gen is NULL */
};

static void	run_bytewise(const struct hcase *);
static void	run_slowloris(const struct hcase *);
static void	run_close_after_send(const struct hcase *);
static void	run_reset(const struct hcase *);
static void	run_shutdown_write(const struct hcase *);
static void	run_close_midrequest(const struct hcase *);
static void	run_half_open(const struct hcase *);
static void	run_over_max(const struct hcase *);
static void	run_never_reads(const struct hcase *);
static void	run_pipeline_1000(const struct hcase *);
static void	run_churn(const struct hcase *);
static void	run_big_requests_churn(const struct hcase *);
static void	run_ipv6(const struct hcase *);
static void	run_many_faults(const struct hcase *);
static void	run_reply_to_closed(const struct hcase *);

static const struct hcase cases[] = {
	/* Malformed: the request limits and the line format. */
	{ "line without =", NULL, CLOSED, 0, NULL,
	    "line without \"=\"", NULL,
	    "request=smtpd_access_policy\nhello world\n\n" },
	{ "NUL in a value", gen_nul_value, CLOSED, 0, NULL,
	    "NUL byte in request", NULL, NULL },
	{ "NUL in a name", gen_nul_name, CLOSED, 0, NULL,
	    "NUL byte in request", NULL, NULL },
	{ "line of 8193 bytes", gen_longline, CLOSED, 0, NULL,
	    "line longer than 8192 bytes", NULL, NULL },
	{ "20 KB without a newline", gen_longline_noeol, CLOSED, 0, NULL,
	    "line longer than 8192 bytes", NULL, NULL },
	{ "1 MB without a newline", gen_megabyte_noeol, CLOSED, 0, NULL,
	    "line longer than 8192 bytes", NULL, NULL },
	{ "request over 64 KiB", gen_big, CLOSED, 0, NULL,
	    "request larger than 65536 bytes", NULL, NULL },
	{ "257 attributes", gen_attrs, CLOSED, 0, NULL,
	    "more than 256 attributes", NULL, NULL },
	{ "one attribute 300 times (bounded by size)", gen_attrs_same,
	    REPLIES, 1, "action=DUNNO", "unknown request=(none)", NULL, NULL },
	{ "empty request", NULL, CLOSED, 0, NULL, "empty request", NULL,
	    "\n" },
	{ "an empty line too many", gen_extra_empty, CLOSED, 1, NULL,
	    "empty request", NULL, NULL },
	{ "attribute without a name", NULL, CLOSED, 0, NULL,
	    "attribute without a name", NULL,
	    "request=smtpd_access_policy\n=value\n\n" },
	{ "a lone =", NULL, CLOSED, 0, NULL,
	    "attribute without a name", NULL,
	    "=\n\n" },
	{ "binary garbage", gen_binary, CLOSED, 0, NULL,
	    "NUL byte in request", NULL, NULL },
	{ "an HTTP request", NULL, CLOSED, 0, NULL,
	    "line without \"=\"", NULL,
	    "GET / HTTP/1.1\r\nHost: x\r\n\r\n" },
	{ "SMTP commands", NULL, CLOSED, 0, NULL, "line without \"=\"",
	    NULL,
	    "EHLO mail.example.org\r\nMAIL FROM:<a@b>\r\n\r\n" },
	{ "a TLS ClientHello", gen_tls, CLOSED, 0, NULL, "NUL byte in request",
	    NULL, NULL },
	{ "a CR too many", NULL, REPLIES, 1, "action=DUNNO",
	    "unknown request=smtpd_access_policy?", NULL,
	    "request=smtpd_access_policy\r\r\nclient_address="
	    "172.20.0.1\n\n" },
	{ "escape sequences for the log", NULL, REPLIES, 1,
	    "action=DUNNO", "unknown request=?[2J?forged: x", NULL,
	    "request=\x1b[2J\rforged: x\nclient_address="
	    "172.20.0.1\n\n" },
	{ "a fault after a good request", gen_fault_after_good, CLOSED, 1,
	    NULL, "line without \"=\"", NULL, NULL },
	{ "a fault in a pipeline", gen_fault_midpipeline, CLOSED, 2, NULL,
	    "line without \"=\"", NULL, NULL },
	{ "many faulty connections at once", NULL, CLOSED, 0, NULL, NULL,
	    run_many_faults, NULL },
	/* Odd but well-formed: a reply, and the connection goes on. */
	{ "CRLF line ends", NULL, REPLIES, 1, "action=DEFER", NULL, NULL,
	    "request=smtpd_access_policy\r\nclient_address="
	    "172.20.0.1\r\ninstance=c1\r\n\r\n" },
	{ "a line of exactly 8192 bytes", gen_line_8192, REPLIES, 1,
	    "action=DEFER", NULL, NULL, NULL },
	{ "exactly 256 attributes", gen_attrs_256, REPLIES, 1, "action=DEFER",
	    NULL, NULL, NULL },
	{ "a request just under 64 KiB", gen_near_64k, REPLIES, 1,
	    "action=DEFER", NULL, NULL, NULL },
	{ "IPv4-mapped gateway", gen_mapped, REPLIES, 1, "action=DEFER", NULL,
	    NULL, NULL },
	{ "zone index", gen_zone, REPLIES, 1, "action=DUNNO", NULL, NULL, NULL },
	{ "space before the address", gen_space_client, REPLIES, 1,
	    "action=DUNNO", "unparsable client_address", NULL, NULL },
	{ "address out of range", gen_bad_client, REPLIES, 1, "action=DUNNO",
	    "unparsable client_address=999.1.1.1", NULL, NULL },
	{ "IPv6 junk", gen_ipv6_junk, REPLIES, 1, "action=DUNNO",
	    "unparsable client_address=::::", NULL, NULL },
	{ "client_address twice, last wins", gen_repeated_client, REPLIES, 1,
	    "action=DEFER", NULL, NULL, NULL },
	{ "invalid UTF-8", gen_utf8, REPLIES, 1, "action=DEFER", NULL, NULL, NULL },
	{ "control characters and quotes", gen_ctl, REPLIES, 1,
	    "action=DEFER", NULL, NULL, NULL },
	{ "CR inside a value", gen_cr_value, REPLIES, 1, "action=DEFER", NULL,
	    NULL, NULL },
	{ "tabs in a value", gen_tab, REPLIES, 1, "action=DEFER", NULL, NULL, NULL },
	{ "absurd numbers", gen_huge_count, REPLIES, 1, "action=DEFER", NULL,
	    NULL, NULL },
	{ "spaces in names", gen_space_name, REPLIES, 1, "action=DEFER", NULL,
	    NULL, NULL },
	{ "== in a line", gen_double_eq, REPLIES, 1, "action=DEFER", NULL,
	    NULL, NULL },
	{ "authenticated gateway client", gen_sasl_gw, REPLIES, 1,
	    "action=DUNNO", NULL, NULL, NULL },
	{ "SPF macros in HELO and sender", gen_macro_helo, REPLIES, 1,
	    "action=DEFER", NULL, NULL, NULL },
	{ "a long attribute name", gen_long_name, REPLIES, 1, "action=DEFER",
	    NULL, NULL, NULL },
	{ "empty request type", gen_no_request_attr_junk, REPLIES, 1,
	    "action=DUNNO", "unknown request=", NULL, NULL },
	{ "unknown request type", NULL, REPLIES, 1,
	    "action=DUNNO", "unknown request=junk_policy", NULL,
	    "request=junk_policy\nclient_address=172.20.0.1\n\n" },
	{ "a 4000-character sender", gen_long_sender, REPLIES, 1,
	    "action=DEFER", NULL, NULL, NULL },
	{ "one instance, two clients", gen_instance_flip, REPLIES, 2,
	    "action=DEFER", NULL, NULL, NULL },
	/* Connection behaviours. */
	{ "a request byte by byte", NULL, REPLIES, 1, NULL, NULL,
	    run_bytewise, NULL },
	{ "slowloris beside a normal client", NULL, REPLIES, 1, NULL, NULL,
	    run_slowloris, NULL },
	{ "close right after sending", NULL, REPLIES, 0, NULL, NULL,
	    run_close_after_send, NULL },
	{ "reset in the middle of a request", NULL, CLOSED, 0, NULL, NULL,
	    run_reset, NULL },
	{ "half-close after a request", NULL, REPLIES, 1, NULL, NULL,
	    run_shutdown_write, NULL },
	{ "close in the middle of a request", NULL, CLOSED, 0, NULL,
	    "client closed the connection in the middle of a request",
	    run_close_midrequest, NULL },
	{ "2000 half-open connections", NULL, REPLIES, 1, NULL, NULL,
	    run_half_open, NULL },
	{ "more than max_connections", NULL, CLOSED, 0, NULL,
	    "too many connections", run_over_max, NULL },
	{ "a client that never reads its replies", NULL, REPLIES, 1, NULL,
	    NULL, run_never_reads, NULL },
	{ "1000 requests in one write", NULL, REPLIES, 1000, NULL, NULL,
	    run_pipeline_1000, NULL },
	{ "3000 connects and closes", NULL, REPLIES, 0, NULL, NULL, run_churn, NULL },
	{ "big requests on many connections", NULL, REPLIES, 0, NULL, NULL,
	    run_big_requests_churn, NULL },
	{ "hostile input over IPv6", NULL, CLOSED, 0, NULL,
	    "line without \"=\"", run_ipv6, NULL },
	{ "replies to a client already gone", NULL, REPLIES, 0, NULL, NULL,
	    run_reply_to_closed, NULL },
};

/* --- the generic case ---------------------------------------------- */

static void
run_generic(const struct hcase *c)
{
	char	*buf, *peer, *r;
	size_t	 len = 0;
	int	 fd, i;

	buf = c->gen != NULL ? c->gen(&len) : strdup(c->text);
	if (len == 0)
		len = strlen(buf);
	fd = conn_open(D.listen[0]);
	ck_assert_int_ne(fd, -1);
	peer = local_name(fd);
	ck_assert_msg(send_buf(fd, buf, len) == 0 || c->expect == CLOSED,
	    "%s: send", c->label);
	for (i = 0; i < c->replies; i++) {
		r = read_reply(fd, T);
		ck_assert_msg(r != NULL, "%s: reply %d missing", c->label,
		    i + 1);
		if (i == 0 && c->first != NULL)
			ck_assert_msg(strncmp(r, c->first, strlen(c->first)) ==
			    0, "%s: got %s, expected %s...", c->label, r,
			    c->first);
		free(r);
	}
	if (c->expect == CLOSED)
		ck_assert_msg(wait_closed(fd, T) == 1, "%s: a reply or no "
		    "close where the connection should just close", c->label);
	else {
		/* The connection goes on: a normal request on it. */
		free(buf);
		buf = req("172.20.0.1", "instance=after\n");
		ck_assert_int_eq(send_str(fd, buf), 0);
		r = read_reply(fd, T);
		ck_assert_msg(r != NULL && strcmp(r, defer_reply) == 0,
		    "%s: the same connection then got %s", c->label,
		    r ? r : "nothing");
		free(r);
	}
	if (c->fault != NULL)
		expect_logged(c->label, peer, c->fault);
	free(peer);
	free(buf);
	close(fd);
}

/* --- special behaviours --------------------------------------------- */

static void
run_bytewise(const struct hcase *c)
{
	char	*q = req("172.20.0.1", "instance=b1\n"), *r;
	size_t	 i;
	int	 fd = conn_open(D.listen[0]);

	for (i = 0; q[i] != '\0'; i++)
		ck_assert_int_eq(send_buf(fd, q + i, 1), 0);
	r = read_reply(fd, T);
	ck_assert_msg(r != NULL && strcmp(r, defer_reply) == 0, "%s: %s",
	    c->label, r ? r : "no reply");
	free(r);
	free(q);
	close(fd);
}

/* One byte every 20 ms; a normal client is served meanwhile, at once. */
static void
run_slowloris(const struct hcase *c)
{
	char		*q = req("172.20.0.1", "instance=s1\n"), *r, *n;
	struct timespec	 t0, t1;
	size_t		 i;
	int		 slow = conn_open(D.listen[0]), fast;
	double		 ms;

	for (i = 0; i < 40; i++) {
		ck_assert_int_eq(send_buf(slow, q + i, 1), 0);
		usleep(20000);
		if (i == 20) {
			fast = conn_open(D.listen[0]);
			n = req("172.20.0.1", "instance=f1\n");
			clock_gettime(CLOCK_MONOTONIC, &t0);
			ck_assert_int_eq(send_str(fast, n), 0);
			r = read_reply(fast, T);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			ms = (t1.tv_sec - t0.tv_sec) * 1e3 +
			    (t1.tv_nsec - t0.tv_nsec) / 1e6;
			ck_assert_msg(r != NULL && strcmp(r, defer_reply) == 0,
			    "%s: the fast client got %s", c->label, r);
			ck_assert_msg(ms < 1000, "%s: the fast client waited "
			    "%.0f ms", c->label, ms);
			free(r);
			free(n);
			close(fast);
		}
	}
	ck_assert_int_eq(send_str(slow, q + 40), 0);
	r = read_reply(slow, T);
	ck_assert_msg(r != NULL && strcmp(r, defer_reply) == 0, "%s: %s",
	    c->label, r ? r : "no reply");
	free(r);
	free(q);
	close(slow);
}

static void
run_close_after_send(const struct hcase *c)
{
	char	*q = req("172.20.0.1", "instance=x1\n");
	int	 i, fd;

	(void)c;
	for (i = 0; i < 50; i++) {
		fd = conn_open(D.listen[0]);
		ck_assert_int_eq(send_str(fd, q), 0);
		close(fd);
	}
	free(q);
}

static void
run_reset(const struct hcase *c)
{
	struct linger	 l = { 1, 0 };
	int		 fd = conn_open(D.listen[0]);

	(void)c;
	ck_assert_int_eq(send_str(fd, "request=smtpd_access_policy\n"
	    "client_address=172.20.0.1\n"), 0);
	usleep(50000);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);	/* RST */
}

static void
run_shutdown_write(const struct hcase *c)
{
	char	*q = req("172.20.0.1", "instance=w1\n"), *r;
	int	 fd = conn_open(D.listen[0]);

	ck_assert_int_eq(send_str(fd, q), 0);
	shutdown(fd, SHUT_WR);
	r = read_reply(fd, T);
	ck_assert_msg(r != NULL && strcmp(r, defer_reply) == 0, "%s: %s",
	    c->label, r ? r : "no reply after our half-close");
	ck_assert_msg(wait_closed(fd, T) == 1, "%s: not closed", c->label);
	free(r);
	free(q);
	close(fd);
}

static void
run_close_midrequest(const struct hcase *c)
{
	char	*peer;
	int	 fd = conn_open(D.listen[0]);

	peer = local_name(fd);
	ck_assert_int_eq(send_str(fd, "request=smtpd_access_policy\n"
	    "client_address=172.20.0.1\n"), 0);
	usleep(50000);
	close(fd);
	expect_logged(c->label, peer, c->fault);
	free(peer);
}

static int
raise_nofile(int want)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return (0);
	if (rl.rlim_cur < (rlim_t)want) {
		/* Root may raise the hard limit too. */
		if (rl.rlim_max < (rlim_t)want && geteuid() == 0)
			rl.rlim_max = (rlim_t)want;
		rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max :
		    (rlim_t)want;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return ((int)rl.rlim_cur);
}

/*
 * HALF_OPEN connections, each with half a request, held while a normal
 * client is served; then all closed.
 */
static void
run_half_open(const struct hcase *c)
{
	static int	 fds[HALF_OPEN];
	int		 i, n, limit;

	limit = raise_nofile(HALF_OPEN + 64);
	n = limit - 64 < HALF_OPEN ? limit - 64 : HALF_OPEN;
	if (n > max_conns - 50)
		n = max_conns - 50;
	ck_assert_msg(n >= 500, "%s: only %d descriptors", c->label, limit);
	for (i = 0; i < n; i++) {
		fds[i] = conn_open(D.listen[0]);
		ck_assert_msg(fds[i] != -1, "%s: connection %d", c->label, i);
		ck_assert_int_eq(send_str(fds[i],
		    "request=smtpd_access_policy\nclient_add"), 0);
	}
	healthy(c->label);
	for (i = 0; i < n; i++)
		close(fds[i]);
	printf("%s: %d connections held open\n", c->label, n);
}

/*
 * A burst of max_connections and 100 more: the excess is closed at once
 * with a log line.
 */
static void
run_over_max(const struct hcase *c)
{
	static int	 fds[2600];
	int		 i, n = max_conns + 100, closed = 0, gone = 0, tries;
	char		 want[80];

	ck_assert_msg(raise_nofile(n + 64) >= n + 64, "%s: descriptors",
	    c->label);
	for (i = 0; i < n; i++) {
		fds[i] = conn_open(D.listen[0]);
		ck_assert_msg(fds[i] != -1, "%s: connect %d", c->label, i);
	}
	/* The daemon closes the excess, then logs it; then count. */
	snprintf(want, sizeof(want), "too many connections (max_connections "
	    "= %d)", max_conns);
	ck_assert_msg(log_wait(want), "%s: not logged", c->label);
	for (tries = 0; tries < 40 && closed < n - max_conns; tries++) {
		closed = 0;
		for (i = 0; i < n; i++)
			if (fds[i] != -1 && wait_closed(fds[i], 0) == 1) {
				close(fds[i]);
				fds[i] = -1;
				gone++;
			}
		closed = gone;
		if (closed < n - max_conns)
			usleep(50000);
	}
	ck_assert_msg(closed >= n - max_conns && closed <= n - max_conns + 100,
	    "%s: %d of %d closed at once, expected about %d", c->label,
	    closed, n, n - max_conns);
	for (i = 0; i < n; i++)
		if (fds[i] != -1)
			close(fds[i]);
}

/*
 * Requests sent without ever reading a reply: the daemon stops reading
 * once its output backs up (the kernel's buffers then fill and our sends
 * stop going through), serves others meanwhile, and memory stays bounded.
 */
static void
run_never_reads(const struct hcase *c)
{
	char	*q = req("172.20.0.1", "instance=n1\n");
	size_t	 qlen = strlen(q), sent = 0, cap = 64u << 20;
	ssize_t	 n;
	int	 fd = conn_open(D.listen[0]), rcv = 4096;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	set_nonblock(fd);
	while (sent < cap) {
		n = send(fd, q, qlen, MSG_NOSIGNAL);
		if (n == -1 && errno == EAGAIN) {
			struct pollfd	pfd = { fd, POLLOUT, 0 };

			if (poll(&pfd, 1, 1000) != 1)
				break;	/* the daemon stopped reading */
			continue;
		}
		ck_assert_msg(n > 0, "%s: send: %s", c->label,
		    strerror(errno));
		sent += (size_t)n;
	}
	ck_assert_msg(sent < cap, "%s: the daemon read %zu bytes without "
	    "being read from", c->label, sent);
	printf("%s: the daemon stopped reading after %zu KB\n", c->label,
	    sent / 1024);
	healthy(c->label);
	free(q);
	close(fd);
}

static void
run_pipeline_1000(const struct hcase *c)
{
	char	*q, *one, *inst, *r;
	int	 i, fd = conn_open(D.listen[0]);

	q = strdup("");
	for (i = 0; i < 1000; i++) {
		inst = append(strdup(""), "instance=p%d\n", i);
		one = req(i % 2 ? "127.0.0.1" : "172.20.0.1", inst);
		q = append(q, "%s", one);
		free(inst);
		free(one);
	}
	ck_assert_int_eq(send_str(fd, q), 0);
	for (i = 0; i < 1000; i++) {
		r = read_reply(fd, T);
		ck_assert_msg(r != NULL, "%s: reply %d", c->label, i);
		ck_assert_msg(strcmp(r, i % 2 ? "action=DUNNO" : defer_reply)
		    == 0, "%s: reply %d out of order: %s", c->label, i, r);
		free(r);
	}
	free(q);
	close(fd);
}

static void
run_churn(const struct hcase *c)
{
	int	i, fd;

	for (i = 0; i < 3000; i++) {
		fd = conn_open(D.listen[i % 2]);
		ck_assert_msg(fd != -1, "%s: connect %d", c->label, i);
		close(fd);
	}
}

static void
run_big_requests_churn(const struct hcase *c)
{
	char	*q = gen_near_64k(NULL), *r;
	int	 i, fd;

	for (i = 0; i < 200; i++) {
		fd = conn_open(D.listen[0]);
		ck_assert_int_eq(send_str(fd, q), 0);
		if (i % 2 == 0) {
			r = read_reply(fd, T);
			ck_assert_msg(r != NULL, "%s: %d", c->label, i);
			free(r);
		}
		close(fd);
	}
	free(q);
}

static void
run_ipv6(const struct hcase *c)
{
	char	*peer;
	int	 fd = conn_open(D.listen[1]);

	ck_assert_int_ne(fd, -1);
	peer = local_name(fd);
	ck_assert_int_eq(send_str(fd, "GET / HTTP/1.0\n\n"), 0);
	ck_assert_int_eq(wait_closed(fd, T), 1);
	expect_logged(c->label, peer, c->fault);
	free(peer);
	close(fd);
}

/* 200 connections sending garbage at once: each closed, each logged. */
static void
run_many_faults(const struct hcase *c)
{
	int	 fds[200], i;
	char	*peers[200];

	for (i = 0; i < 200; i++) {
		fds[i] = conn_open(D.listen[0]);
		peers[i] = local_name(fds[i]);
		ck_assert_int_eq(send_str(fds[i], "garbage\n"), 0);
	}
	for (i = 0; i < 200; i++) {
		ck_assert_msg(wait_closed(fds[i], T) == 1, "%s: %d open",
		    c->label, i);
		close(fds[i]);
	}
	for (i = 0; i < 200; i += 37)
		expect_logged(c->label, peers[i], "line without \"=\"");
	for (i = 0; i < 200; i++)
		free(peers[i]);
}

/* Many pipelined requests, then gone before the replies: no SIGPIPE. */
static void
run_reply_to_closed(const struct hcase *c)
{
	char	*q = req("172.20.0.1", "instance=z\n"), *all;
	int	 i, fd;

	(void)c;
	all = repeat(q, 500, "", "");
	for (i = 0; i < 20; i++) {
		fd = conn_open(D.listen[0]);
		ck_assert_int_eq(send_str(fd, all), 0);
		close(fd);
	}
	free(all);
	free(q);
}

START_TEST(test_hostile)
{
	const struct hcase	*c = &cases[_i];

	if (c->run != NULL)
		c->run(c);
	else
		run_generic(c);
	if (c->run != NULL && c->fault != NULL &&
	    c->run != run_close_midrequest && c->run != run_ipv6 &&
	    c->run != run_over_max)
		ck_assert_msg(log_wait(c->fault), "%s: not logged", c->label);
	healthy(c->label);
}
END_TEST

static void
setup(void)
{
	char	*conf;
	int	 limit;

	/* Room for max_conns + 100 of ours, and the daemon's own. */
	limit = raise_nofile(8192);
	if (limit - 300 < max_conns)
		max_conns = limit - 300 > 200 ? limit - 300 : 200;
	memset(&D, 0, sizeof(D));
	D.nofile = limit;
	if (asprintf(&conf, "listen = inet:127.0.0.1:0, %s\n"
	    "gateways = 172.20.0.1\nspf = no\nnat_spf_probe = no\n"
	    "max_connections = %d\n", loopback6_endpoint(), max_conns) ==
	    -1 ||
	    daemon_start(&D, conf) != 0) {
		fprintf(stderr, "hostile: the daemon did not start\n");
		exit(1);
	}
	free(conf);
	rss_base = rss_kb(D.pid);
}

static void
teardown(void)
{
	long	rss = rss_kb(D.pid);

	printf("hostile: %zu cases against one daemon (max_connections %d); "
	    "RSS %ld kB after start, %ld kB at the end (bound: %d MB "
	    "growth%s)\n", NELEMS(cases), max_conns, rss_base, rss,
	    RSS_GROWTH_MB, rss_bounded() ? "" : ", not applied under a "
	    "sanitizer or valgrind");
	if (daemon_stop(&D) != 0) {
		fprintf(stderr, "hostile: the daemon did not exit cleanly\n");
		exit(1);
	}
}

int
main(void)
{
	Suite	*s = suite_create("hostile");
	TCase	*tc = tcase_create("hostile");

	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_hostile, 0, NELEMS(cases));
	suite_add_tcase(s, tc);
	return (harness_run(s));
}
