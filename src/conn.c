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

#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

/*
 * One client connection.  Postfix keeps a policy connection open across
 * many messages and sends one request per recipient; a connection reads
 * requests, answers each in order, and is freed only once every reply it
 * owes has been written.
 *
 *	READING  --bad input, EOF, idle-->  DRAINING  --flushed-->  freed
 *	READING  --output backlog-->  READING, paused until flushed
 *	READING  --stop, handover-->  READING until nothing is owed or
 *	    half read, then handed to systemd's descriptor store: freed
 *	    here, open on the wire, served by the next process
 *
 * A request whose answer needs SPF is "pending": no further request on
 * the connection is read until it is answered, so replies keep their
 * order, and a connection is not freed while one is pending.
 *
 * But a gateway's answer does not wait for its NAT probe (the SPF of the
 * gateway's address, which only the log shows): a DEFER is sent at once,
 * a WARN (whose text carries the probe) after PROBE_WAIT at most, and the
 * probe runs on detached from the connection; its decision is logged
 * when it lands.  A mail server whose DNS is down is answered as fast as
 * one whose DNS works.
 *
 * Idle connections are found by conn_sweep() once a second rather than by
 * a timer per connection: a read then costs no timer update.  Replies are
 * written as soon as a read's requests are answered (conn_flush()), and
 * EV_WRITE is enabled only for what the socket did not take.
 */

enum conn_state {
	CONN_READING,
	CONN_DRAINING
};

struct conn {
	TAILQ_ENTRY(conn)	 entry;
	struct bufferevent	*bev;
	char			 peer[128];
	enum conn_state		 state;
	int			 paused;	/* output backlog */
	struct request		*req;
	struct timeval		 started;	/* the request complete */
	struct decision		*last;		/* for the same instance */
	struct decision		*pending;	/* waiting for SPF */
	struct spf_run		*run;
	struct event		*probe_wait;	/* a WARN's probe: PROBE_WAIT */
	time_t			 active;	/* last read or write progress */
	int			 handover;	/* stopping: hand it over */
};

/* A NAT probe still running after its answer went: see above. */
struct probe {
	TAILQ_ENTRY(probe)	 entry;
	struct decision		*d;
	struct request		*req;		/* a copy, for the log line */
	char			 peer[128];
	double			 elapsed;	/* until the answer went */
	struct spf_run		*run;
};

/* How long a WARN for a gateway waits for its probe (natguard.conf(5)). */
#define PROBE_WAIT_MS	2000
/* Probes running at once; past it, a gateway's probe is not run. */
#define PROBE_MAX	1024

/* Bound memory per connection: input past this is not read. */
#define CONN_INPUT_MAX	(REQ_MAX_BYTES + REQ_MAX_LINE + 2)
/*
 * Descriptors kept free of connections: DNS sockets, the log, the audit
 * log, the state file and the control socket must still open when
 * clients have taken all the others.
 */
#define CONN_FD_RESERVE	64
/* A client that does not read its replies stops being read from. */
#define CONN_OUTPUT_MAX	(256 * 1024)

static TAILQ_HEAD(, conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static size_t		conns_n;
static TAILQ_HEAD(, probe) probes = TAILQ_HEAD_INITIALIZER(probes);
static size_t		probes_n;
static struct buf	logline;	/* per decision: its log line, then its reply */
static struct event_base *conn_base;

static void	conn_read(struct bufferevent *, void *);
static void	conn_write(struct bufferevent *, void *);
static void	conn_event(struct bufferevent *, short, void *);

size_t
conn_count(void)
{
	return (conns_n);
}

static void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	TAILQ_REMOVE(&conns, c, entry);
	conns_n--;
	spf_run_cancel(c->run);
	decision_free(c->pending);
	if (c->probe_wait != NULL)
		event_free(c->probe_wait);
	bufferevent_free(c->bev);
	request_free(c->req);
	decision_free(c->last);
	free(c);
	server_conn_closed();
}

static time_t	conn_now(void);

/*
 * Write the replies the output holds, now: a request costs one writev(2),
 * not an EV_WRITE added and deleted again (two epoll_ctl(2)s), which cost
 * more than deciding it.  What the socket does not take waits for EV_WRITE,
 * enabled only then; conn_write() disables it again once it is written.
 * An error is left to that write, which reports it to conn_event().
 */
static void
conn_flush(struct conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	int		 n;

	if (evbuffer_get_length(out) == 0 ||
	    (bufferevent_get_enabled(c->bev) & EV_WRITE))
		return;
	/*
	 * A bufferevent keeps its output's front frozen, thawed only
	 * around its own writes: thaw it around ours the same way.
	 */
	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, bufferevent_getfd(c->bev));
	evbuffer_freeze(out, 1);
	if (n > 0)
		c->active = conn_now();
	if (evbuffer_get_length(out) > 0)
		bufferevent_enable(c->bev, EV_WRITE);
}

/* Stop reading; free now, or once the replies owed are written. */
static void
conn_drain(struct conn *c)
{
	c->state = CONN_DRAINING;
	bufferevent_disable(c->bev, EV_READ);
	conn_flush(c);
	if (c->pending == NULL &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
}

/*
 * Stopping with a descriptor store: a connection with nothing owed and
 * nothing half read is handed over, so that its client's next request
 * waits in the socket for the next process instead of failing.  Returns
 * 1 when c is gone.
 */
static int
conn_try_handover(struct conn *c)
{
	if (!c->handover || c->state != CONN_READING || c->pending != NULL ||
	    request_count(c->req) > 0 ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return (0);
	if (notify_fd("FDSTORE=1\nFDNAME=" NOTIFY_CONN_NAME,
	    bufferevent_getfd(c->bev)) == -1) {
		log_warnx("%s: cannot hand the connection over to systemd; "
		    "closing it", c->peer);
		conn_drain(c);
		return (1);
	}
	log_debug("%s: connection handed over to systemd", c->peer);
	/* Our descriptor closes; systemd's keeps the connection open. */
	conn_free(c);
	return (1);
}

/* Bad input: a log line naming the peer and the fault, then close. */
static void
conn_fail(struct conn *c, const char *why)
{
	log_warnx("%s: %s; closing connection", c->peer, why);
	metrics_protocol_error();
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	conn_drain(c);
}

/*
 * The monotonic clock: idleness and latency are not fooled by the wall
 * clock jumping (an NTP step, a VM resumed), which would close every
 * connection as idle, or none.
 */
static void
conn_clock(struct timeval *tv)
{
	if (event_gettime_monotonic(conn_base, tv) == -1)
		fatalx("event_gettime_monotonic");
}

/* Seconds since the request was complete. */
static double
conn_elapsed(const struct conn *c)
{
	struct timeval	now;

	conn_clock(&now);
	return ((double)(now.tv_sec - c->started.tv_sec) +
	    (double)(now.tv_usec - c->started.tv_usec) / 1e6);
}

/* What a decision leaves behind: its log line, audit record, metrics. */
static void
conn_record(const char *peer, const struct decision *d,
    const struct request *req, double elapsed)
{
	if (d->warning != NULL)
		log_warnx("%s: %s", peer, d->warning);
	if (log_enabled(LOG_LVL_INFO)) {
		buf_reset(&logline);
		report_logline(d, req, &logline);
		log_plain(logline.s, logline.len);
	}
	audit_write(d, req);
	metrics_decision(d, elapsed);
	if (d->learn != LEARN_NONE)
		server_learn(d);
}

/* Write the reply; the conn keeps d as its last. */
static void
conn_send(struct conn *c, struct decision *d)
{
	struct evbuffer	*out;
	char		*p;

	/*
	 * One reply line, whatever the text: the protocol is line based.
	 * Added to the output at once: each add runs the bufferevent's
	 * callback.
	 */
	for (p = d->reply; (p = strpbrk(p, "\r\n")) != NULL; p++)
		*p = ' ';
	buf_reset(&logline);
	buf_add(&logline, "action=", 7);
	buf_adds(&logline, d->reply);
	buf_add(&logline, "\n\n", 2);
	out = bufferevent_get_output(c->bev);
	evbuffer_add(out, logline.s, logline.len);
	decision_free(c->last);
	c->last = d;
	request_reset(c->req);
}

static int	conn_process(struct conn *);

/* Log the decision, write the reply. */
static void
conn_reply(struct conn *c, struct decision *d)
{
	conn_record(c->peer, d, c->req, conn_elapsed(c));
	conn_send(c, d);
}

static void
probe_free(struct probe *p)
{
	TAILQ_REMOVE(&probes, p, entry);
	probes_n--;
	/* Landed or not (stopping), the decision is logged once. */
	conn_record(p->peer, p->d, p->req, p->elapsed);
	spf_run_cancel(p->run);
	request_free(p->req);
	decision_free(p->d);
	free(p);
}

static void
probe_done(const struct spf_verdict *helo, const struct spf_verdict *mailfrom,
    int whitelisted, void *arg)
{
	struct probe	*p = arg;

	p->run = NULL;
	decide_spf(server_config(), p->d, helo, mailfrom, whitelisted);
	probe_free(p);
}

/*
 * Answer a gateway's request now, with d as it stands (its probe not in
 * it), and let the probe run on: d is the probe's from here.
 */
static void
conn_detach(struct conn *c, struct decision *d)
{
	struct probe	*p;

	if (probes_n >= PROBE_MAX) {
		log_debug("%s: %zu NAT probes running already; this one is "
		    "not run", c->peer, probes_n);
		d->spf_need = 0;
		conn_reply(c, d);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->d = d;
	p->req = request_dup(c->req);
	snprintf(p->peer, sizeof(p->peer), "%s", c->peer);
	p->elapsed = conn_elapsed(c);
	TAILQ_INSERT_TAIL(&probes, p, entry);
	probes_n++;
	/* The reply, and the instance's later recipients, from a copy. */
	conn_send(c, decision_repeat(d));
	p->run = spf_run(server_spf(), server_config(), d, probe_done, p);
}

/* The SPF a pending request needed has run: answer, and read on. */
static void
conn_spf_done(const struct spf_verdict *helo,
    const struct spf_verdict *mailfrom, int whitelisted, void *arg)
{
	struct conn	*c = arg;
	struct decision	*d = c->pending;

	c->run = NULL;
	c->pending = NULL;
	if (c->probe_wait != NULL)
		evtimer_del(c->probe_wait);
	decide_spf(server_config(), d, helo, mailfrom, whitelisted);
	conn_reply(c, d);
	/* Requests read meanwhile are answered, even when closing. */
	if (conn_process(c) == 0 && c->pending == NULL &&
	    c->state == CONN_DRAINING)
		conn_drain(c);
}

/* A WARN's probe took PROBE_WAIT: answer without it, the log gets it. */
static void
conn_probe_late(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	struct decision	*d = c->pending;

	(void)fd;
	(void)what;
	spf_run_cancel(c->run);
	c->run = NULL;
	c->pending = NULL;
	conn_detach(c, d);
	if (conn_process(c) == 0 && c->pending == NULL &&
	    c->state == CONN_DRAINING)
		conn_drain(c);
}

/* A complete request: answer it now, or once its SPF has run. */
static void
conn_answer(struct conn *c)
{
	struct decision		*d;
	struct spf_verdict	 v[2];
	const char		*inst;
	int			 want[2], wl;

	conn_clock(&c->started);
	inst = request_get(c->req, "instance");
	if (c->last != NULL && c->last->instance != NULL && inst != NULL &&
	    strcmp(c->last->instance, inst) == 0)
		d = decision_repeat(c->last);
	else
		d = decide(server_config(), server_gateways(), c->req);
	if (d->spf_need == 0) {
		conn_reply(c, d);
		return;
	}
	if (spf_run_cached(server_spf(), server_config(), d, v, want, &wl)) {
		/* Everything cached: no round through the loop. */
		decide_spf(server_config(), d, want[0] ? &v[0] : NULL,
		    want[1] ? &v[1] : NULL, wl);
		conn_reply(c, d);
		return;
	}
	if ((d->spf_need & SPF_NEED_PROBE) && d->action != ACT_WARN) {
		conn_detach(c, d);
		return;
	}
	c->pending = d;
	c->run = spf_run(server_spf(), server_config(), d, conn_spf_done, c);
	if (d->spf_need & SPF_NEED_PROBE) {
		struct timeval	tv = { PROBE_WAIT_MS / 1000,
		    (PROBE_WAIT_MS % 1000) * 1000 };

		if (c->probe_wait == NULL &&
		    (c->probe_wait = evtimer_new(conn_base, conn_probe_late,
		    c)) == NULL)
			fatalx("evtimer_new");
		evtimer_add(c->probe_wait, &tv);
	}
}

/*
 * Take whole lines from the input and answer each complete request, until
 * the input runs dry, the output backs up or the input is bad.  Lines are
 * parsed in place in the input buffer, which is drained once at the end.
 * Returns -1 when the connection was failed (and may be gone).
 */
static int
conn_take(struct conn *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	const char	*why;
	char		*data, *p, *end, *nl;
	size_t		 len;

	if ((len = evbuffer_get_length(in)) == 0)
		return (0);
	if ((data = (char *)evbuffer_pullup(in, -1)) == NULL)
		fatalx("evbuffer_pullup");
	p = data;
	end = data + len;
	while (!c->paused && c->pending == NULL) {
		/* +1 for a CR before the LF. */
		if ((nl = memchr(p, '\n', end - p)) == NULL) {
			if ((size_t)(end - p) > REQ_MAX_LINE + 1) {
				conn_fail(c, "line longer than 8192 bytes");
				return (-1);
			}
			break;
		}
		switch (request_add_line(c->req, p, nl - p, &why)) {
		case REQ_ERROR:
			conn_fail(c, why);
			return (-1);
		case REQ_DONE:
			conn_answer(c);
			if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
			    CONN_OUTPUT_MAX) {
				c->paused = 1;
				bufferevent_disable(c->bev, EV_READ);
			}
			break;
		case REQ_MORE:
			break;
		}
		p = nl + 1;
	}
	evbuffer_drain(in, p - data);
	return (0);
}

/*
 * conn_take(), then the replies it made (or others owed) written.  Returns
 * -1 when the connection was failed (and may be gone), 1 when it was handed
 * over (gone: stopping, and nothing more was owed), 0 otherwise.  The
 * handover is tried here, whichever path wrote the reply, so that a busy
 * connection goes at its first moment with nothing owed, not at the
 * shutdown deadline.
 */
static int
conn_process(struct conn *c)
{
	if (conn_take(c) == -1)
		return (-1);
	conn_flush(c);
	if (conn_try_handover(c))
		return (1);
	return (0);
}

static time_t
conn_now(void)
{
	struct timeval	tv;

	conn_clock(&tv);
	return (tv.tv_sec);
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	c->active = conn_now();
	if (c->state == CONN_READING)
		(void)conn_process(c);
}

/* The output is empty: resume reading, or finish draining. */
static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	c->active = conn_now();
	/* Written: the next replies go out directly again (conn_flush()). */
	bufferevent_disable(bev, EV_WRITE);
	if (c->state == CONN_DRAINING) {
		conn_free(c);
		return;
	}
	if (c->paused) {
		c->paused = 0;
		if (conn_process(c) != 0)
			return;
		if (!c->paused)
			bufferevent_enable(bev, EV_READ);
	}
	(void)conn_try_handover(c);
}

/* Part of a request read (one waiting for SPF is complete, not partial). */
static int
conn_midrequest(struct conn *c)
{
	return (c->pending == NULL && (request_count(c->req) > 0 ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0));
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (what & BEV_EVENT_EOF) {
		if (c->state == CONN_READING && conn_midrequest(c))
			log_warnx("%s: client closed the connection in the "
			    "middle of a request", c->peer);
		else
			log_debug("%s: client closed the connection",
			    c->peer);
		conn_drain(c);
	} else if (what & BEV_EVENT_ERROR) {
		log_warnx("%s: connection error: %s", c->peer,
		    strerror(EVUTIL_SOCKET_ERROR()));
		conn_free(c);
	}
}

/* Nothing read or written for idle_timeout: close. */
static void
conn_idle(struct conn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		log_warnx("%s: client does not read its replies; closing "
		    "connection", c->peer);
		conn_free(c);
		return;
	}
	if (c->state == CONN_READING && conn_midrequest(c))
		log_warnx("%s: idle timeout in the middle of a request; "
		    "closing connection", c->peer);
	else
		log_info("%s: idle timeout; closing connection", c->peer);
	conn_drain(c);
}

/* Called once a second by the server. */
void
conn_sweep(time_t now, time_t idle)
{
	struct conn	*c, *next;

	for (c = TAILQ_FIRST(&conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		/* A pending request is bounded by spf_timeout. */
		if (c->pending == NULL && now - c->active >= idle)
			conn_idle(c);
	}
}

/*
 * How many connections the descriptor limit leaves room for, with
 * CONN_FD_RESERVE kept back (read once: it does not change under us).
 */
static size_t
conn_fd_room(void)
{
	static size_t	room;
	struct rlimit	rl;

	if (room == 0) {
		if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
		    rl.rlim_cur == RLIM_INFINITY)
			room = SIZE_MAX;
		else if (rl.rlim_cur <= 2 * CONN_FD_RESERVE)
			room = rl.rlim_cur / 2;
		else
			room = rl.rlim_cur - CONN_FD_RESERVE;
	}
	return (room);
}

/* A connection accepted by a listener; the conn owns fd from here on. */
void
conn_accept(struct event_base *base, int fd, const char *peer)
{
	const struct config	*cfg = server_config();
	static int		 warned;
	struct timeval		 tv;
	struct conn		*c;

	conn_base = base;
	conn_clock(&tv);

	if (conns_n >= conn_fd_room() && conns_n < cfg->max_connections) {
		if (!warned++)
			log_warnx("descriptor limit: RLIMIT_NOFILE leaves room "
			    "for %zu connections, fewer than max_connections "
			    "= %llu (raise LimitNOFILE= or ulimit -n)",
			    conn_fd_room(),
			    (unsigned long long)cfg->max_connections);
		log_warnx("%s: too many connections (the descriptor limit); "
		    "closing connection", peer);
		close(fd);
		return;
	}
	if (conns_n >= cfg->max_connections) {
		log_warnx("%s: too many connections (max_connections = %llu); "
		    "closing connection", peer,
		    (unsigned long long)cfg->max_connections);
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->req = request_new();
	c->state = CONN_READING;
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_INPUT_MAX);
	c->active = tv.tv_sec;
	/* A new bufferevent has EV_WRITE on: replies go by conn_flush(). */
	bufferevent_disable(c->bev, EV_WRITE);
	bufferevent_enable(c->bev, EV_READ);
	TAILQ_INSERT_TAIL(&conns, c, entry);
	conns_n++;
	log_debug("%s: connected", c->peer);
}

/*
 * Shutting down: answer every request already read in full, then close
 * each connection once its replies are written; with handover (systemd's
 * descriptor store, FDSTORE), keep answering until a connection owes
 * nothing and holds no half request, and hand it over instead.
 */
void
conn_shutdown(int handover)
{
	struct conn	*c, *next;
	int		 rc;

	for (c = TAILQ_FIRST(&conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->state != CONN_READING)
			continue;
		/*
		 * What the client sent before we were told to stop is in
		 * the socket buffer even if no read event has fired yet.
		 */
		while (evbuffer_get_length(bufferevent_get_input(c->bev)) <
		    CONN_INPUT_MAX && evbuffer_read(bufferevent_get_input(
		    c->bev), bufferevent_getfd(c->bev), 4096) > 0)
			;
		do {
			c->paused = 0;
			rc = conn_process(c);
		} while (rc == 0 && c->paused && c->pending == NULL);
		if (rc != 0)
			continue;
		if (!handover) {
			conn_drain(c);
			continue;
		}
		c->handover = 1;
		bufferevent_enable(c->bev, EV_READ);
		(void)conn_try_handover(c);
	}
}

/* Exit: close whatever is left, written or not. */
void
conn_close_all(void)
{
	while (!TAILQ_EMPTY(&conns))
		conn_free(TAILQ_FIRST(&conns));
	/* Probes still running: logged without their result. */
	while (!TAILQ_EMPTY(&probes))
		probe_free(TAILQ_FIRST(&probes));
	buf_free(&logline);
}
