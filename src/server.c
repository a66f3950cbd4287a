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
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <sys/queue.h>

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "natguard.h"

/*
 * The daemon: listeners, signals and timers on one libevent loop.  The loop
 * owns every socket; the configuration and the gateway set are replaced
 * whole on reload, between events, never while a request is being decided.
 */

#define BACKOFF_SECONDS		1
#define SHUTDOWN_SECONDS	10
#define NETWATCH_DEBOUNCE_MS	200	/* a burst of network changes */

struct listener {
	struct evconnlistener	*lev;
	int			 fd;	/* until the event base exists */
	char			*name;
	char			*unix_path;	/* to unlink at exit */
};

static struct event_base	*base;
static struct config		*cfg;
static struct gwset		*gws;
static struct dns		*dns;
static struct spf		*spf;
static const char		*cfg_path;	/* NULL: built-in defaults */
static const char		*opt_listen;	/* -l, kept across reloads */
static int			 opt_debug;	/* -v, likewise */
static struct listener		*listeners;
static size_t			 nlisteners;
static int			 from_systemd;	/* LISTEN_FDS */
/* Connections an earlier process left in systemd's descriptor store. */
static int			*adopt_fds;
static int			 nadopt;
static int			 fdstore;	/* $FDSTORE: hand them over */
static int			 accepting_paused;
static int			 shutting_down;
static struct event		*ev_sig[3];
static struct event		*ev_scan;
static struct netwatch		*netwatch;	/* gateways = auto only */
static struct event		*ev_backoff;
static struct event		*ev_deadline;
static struct event		*ev_logflush;
static struct event		*ev_sweep;
static struct gwset		*gws_scanned;	/* without learned hiders */
static struct learn		*learn;
static struct event		*ev_learn;
static struct event		*ev_learn_save;
static unsigned int		 learn_ticks;

/*
 * The state file is checked for other writers (gateways --forget) every
 * LEARN_TICK_SECONDS; evidence expires and is saved every
 * LEARN_SAVE_TICKS ticks.  At most WATCH_MAX evaluations run aside
 * (LEARN_WATCH) at once: learning must not cost the answers.
 */
#define LEARN_TICK_SECONDS	5
#define LEARN_SAVE_TICKS	12
#define LEARN_SAVE_DELAY	1	/* seconds from a new hider to the file */
#define WATCH_MAX		32

struct watch {
	TAILQ_ENTRY(watch)	 entry;
	struct decision		*d;
	struct spf_run		*run;
};
static TAILQ_HEAD(, watch)	 watches = TAILQ_HEAD_INITIALIZER(watches);
static size_t			 nwatches;

const struct config *
server_config(void)
{
	return (cfg);
}

const struct gwset *
server_gateways(void)
{
	return (gws);
}

struct spf *
server_spf(void)
{
	return (spf);
}

struct dns *
server_dns(void)
{
	return (dns);
}

/* "ADDR:PORT" of an inet peer, the listener's name for a unix one. */
static void
peer_name(const struct sockaddr *sa, const struct listener *l, char *buf,
    size_t len)
{
	char	host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    host, sizeof(host));
		snprintf(buf, len, "%s:%u", host,
		    ntohs(((const struct sockaddr_in *)sa)->sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
		    sizeof(host));
		snprintf(buf, len, "[%s]:%u", host,
		    ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
		break;
	default:
		snprintf(buf, len, "%s", l != NULL ? l->name : "unix");
		break;
	}
}

/*
 * The client connections the previous process handed to systemd's
 * descriptor store as it stopped: served from here on, their next
 * requests already waiting in them.
 */
static void
adopt_connections(void)
{
	struct sockaddr_storage	 ss;
	socklen_t		 slen;
	char			 peer[128];
	int			 i, n = 0;

	for (i = 0; i < nadopt; i++) {
		slen = sizeof(ss);
		if (getpeername(adopt_fds[i], (struct sockaddr *)&ss,
		    &slen) == -1) {
			log_warnx("descriptor %d from systemd: %s; closing it",
			    adopt_fds[i], strerror(errno));
			close(adopt_fds[i]);
			continue;
		}
		peer_name((struct sockaddr *)&ss, NULL, peer, sizeof(peer));
		conn_accept(base, adopt_fds[i], peer);
		n++;
	}
	if (n > 0)
		log_notice("took over %d connections from the previous "
		    "process", n);
	/*
	 * systemd keeps its copy of each stored descriptor until it sees
	 * POLLHUP, so our closes would not reach the client: they are ours
	 * now.  The store held them all, under one name; all are ours.
	 */
	if (nadopt > 0)
		notify("FDSTOREREMOVE=1\nFDNAME=" NOTIFY_CONN_NAME);
	free(adopt_fds);
	adopt_fds = NULL;
	nadopt = 0;
}

static void
listeners_enable(int on)
{
	size_t	i;

	for (i = 0; i < nlisteners; i++) {
		if (on)
			evconnlistener_enable(listeners[i].lev);
		else
			evconnlistener_disable(listeners[i].lev);
	}
	accepting_paused = !on;
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int slen, void *arg)
{
	char	peer[128];

	(void)lev;
	(void)slen;
	peer_name(sa, arg, peer, sizeof(peer));
	conn_accept(base, fd, peer);
}

/*
 * Out of descriptors: stop accepting for a moment instead of spinning on a
 * listener that stays readable.  Accepting resumes when a connection
 * closes or after BACKOFF_SECONDS, whichever comes first.
 */
static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct timeval	tv = { BACKOFF_SECONDS, 0 };
	int		err = EVUTIL_SOCKET_ERROR();

	(void)lev;
	(void)arg;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		if (!accepting_paused)
			log_warnx("accept: %s; pausing new connections",
			    strerror(err));
		listeners_enable(0);
		evtimer_add(ev_backoff, &tv);
		return;
	}
	log_warnx("accept: %s", strerror(err));
}

static void
backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (accepting_paused && !shutting_down) {
		log_info("resuming new connections");
		listeners_enable(1);
	}
}

void
server_conn_closed(void)
{
	if (shutting_down && conn_count() == 0 && base != NULL)
		event_base_loopbreak(base);
	else if (accepting_paused && !shutting_down && ev_backoff != NULL)
		event_active(ev_backoff, EV_TIMEOUT, 0);
}

/* A line per gateway, when the set changed. */
static char *
gwset_describe(const struct gwset *gs)
{
	const struct gateway	*g;
	char			*s = xstrdup(""), *t, buf[INET6_ADDRSTRLEN + 8];
	size_t			 i;

	for (i = 0; i < gwset_count(gs); i++) {
		g = gwset_get(gs, i);
		net_format(&g->net, buf, sizeof(buf));
		xasprintf(&t, "%s%s%s (%s%s%s)", s, i ? ", " : "", buf,
		    gw_source_name(g->source), g->iface[0] ? " on " : "",
		    g->iface);
		free(s);
		s = t;
	}
	return (s);
}

static void	netwatch_changed(unsigned long, void *);

/* mynetworks = postfix: asked of postconf at start and on SIGHUP. */
static void
mynetworks_read(struct config *c)
{
	char	*msg, *value;

	if ((msg = postfix_mynetworks(c, &value)) != NULL) {
		log_warnx("%s", msg);
		free(msg);
	}
	if (value != NULL)
		log_info("mynetworks: %s (postconf -h mynetworks)", value);
	free(value);
}

/* The set in use: the scanned one and the hiders learned from traffic. */
static void
gateways_compose(void)
{
	struct gwset	*next;

	next = gwset_copy(gws_scanned);
	if (cfg->hider_learning)
		learn_gateways(learn, next);
	gwset_free(gws);
	gws = next;
}

static void
learn_save_now(void)
{
	char	*err;

	if (learn_save(learn, &err) != 0) {
		log_error("state file: %s; learned hiders are kept in memory "
		    "only until it can be written", err);
		free(err);
	}
}

/*
 * Who holds the hidden connections, as this process can see it: after
 * dropping privileges, other users' processes are out of its sight, and
 * it says so (doctor, as root, names them).
 */
static void
same_host_program(const struct addr *a, char *dst, size_t size)
{
	const struct hider_program_row	*r;
	struct sockowner		 o;

	switch (sockdiag_peer_of("/proc", a, &o)) {
	case 0:
		r = hider_program(o.comm);
		snprintf(dst, size, "the program holding its connections to "
		    "this host is %s (pid %d)%s%s", o.comm, (int)o.pid,
		    r != NULL ? ": fix: " : "", r != NULL ? r->fix : "");
		break;
	case -2:
		snprintf(dst, size, "natguard runs unprivileged and cannot see "
		    "which program holds those connections: natguard doctor, "
		    "as root, names it");
		break;
	default:
		snprintf(dst, size, "no connection from it is open now: "
		    "natguard doctor, as root, names the program while one is");
		break;
	}
}

/*
 * Evidence from a private client, or one on the mail host (host): maybe
 * a hider learned, said loudly.
 */
static void
learn_evidence(const struct addr *a, int host, const char *client,
    const char *domain)
{
	const struct gateway	*gw;
	struct buf		 b = { NULL, 0, 0 };
	struct timeval		 tv = { LEARN_SAVE_DELAY, 0 };
	char			 prog[512];

	if (learn_record(learn, a, host, domain, (long long)time(NULL)) != 1)
		return;
	gateways_compose();
	/* Soon, once for a burst: a flood of hiders is one write. */
	if (!evtimer_pending(ev_learn_save, NULL))
		evtimer_add(ev_learn_save, &tv);
	if ((gw = gwset_find(gws, a)) == NULL || gw->source != GW_TRAFFIC)
		return;
	buf_adds(&b, gw->ev.domains);
	if (host) {
		same_host_program(a, prog, sizeof(prog));
		log_warnx("learned hider %s on the mail host (probably %s): "
		    "%u requests failed SPF for %u unrelated domains (%s): a "
		    "tunnel or proxy here hands every client over from it, so "
		    "every client is hidden%s; %s; if these are your own "
		    "programs (a content filter, webmail), say so with "
		    "spf_whitelist = %s", client,
		    hider_kind_row(hider_kind_of(gws, gw))->name,
		    gw->ev.count, gw->ev.ndomains, b.s,
		    netlist_find(cfg->mynetworks, a) >= 0 ? ", and with it in "
		    "mynetworks this server relays for anyone who reaches the "
		    "tunnel or proxy" : "", prog, client);
	} else if (netlist_find(cfg->mynetworks, a) >= 0)
		log_warnx("learned hider %s inside mynetworks: %u requests "
		    "failed SPF for %u unrelated domains (%s): if it is a "
		    "proxy or NAT, this is an open relay; if it is your own "
		    "relay or filter, say so with spf_whitelist = %s", client,
		    gw->ev.count, gw->ev.ndomains, b.s, client);
	else
		log_warnx("learned hider %s (probably %s): %u requests "
		    "failed SPF for %u unrelated domains (%s); its clients "
		    "are answered by nat_action = %s from now on", client,
		    hider_kind_row(hider_kind_of(gws, gw))->name,
		    gw->ev.count, gw->ev.ndomains, b.s,
		    nat_action_name(cfg->nat_action));
	buf_free(&b);
}

static void
watch_free(struct watch *w)
{
	TAILQ_REMOVE(&watches, w, entry);
	nwatches--;
	spf_run_cancel(w->run);
	decision_free(w->d);
	free(w);
}

/* An evaluation aside has run: a failing result is evidence. */
static void
watch_done(const struct spf_verdict *helo, const struct spf_verdict *mailfrom,
    int whitelisted, void *arg)
{
	struct watch	*w = arg;

	(void)helo;
	(void)whitelisted;
	w->run = NULL;
	if (mailfrom != NULL && (cfg->spf_reject & (1U << mailfrom->result)))
		learn_evidence(&w->d->spf_addr, w->d->same_host,
		    w->d->client, mailfrom->domain);
	watch_free(w);
}

/*
 * A client answered without SPF (mynetworks, or skip_addresses on the mail
 * host): its MAIL FROM, aside.
 */
static void
watch_start(const struct decision *d)
{
	struct watch	*w;

	if (nwatches >= WATCH_MAX || shutting_down) {
		log_debug("%s: learning: %zu evaluations aside already; not "
		    "watched", d->client, nwatches);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->d = decision_new();
	w->d->client = decision_strdup(w->d, d->client);
	w->d->spf_addr = d->spf_addr;
	w->d->same_host = d->same_host;
	w->d->spf_helo_macro = decision_strdup(w->d, d->spf_helo_macro);
	w->d->spf_mailbox = decision_strdup(w->d, d->spf_mailbox);
	w->d->spf_need = SPF_NEED_MAILFROM;
	w->d->spf_background = 1;
	TAILQ_INSERT_TAIL(&watches, w, entry);
	nwatches++;
	w->run = spf_run(spf, cfg, w->d, watch_done, w);
}

/* What a decision teaches (decide() marked it; see enum learn_mark). */
void
server_learn(const struct decision *d)
{
	struct addr	a;

	if (learn == NULL || !cfg->hider_learning ||
	    addr_parse(d->client, &a) != 0)
		return;
	switch (d->learn) {
	case LEARN_EVIDENCE:
		learn_evidence(&a, d->same_host, d->client, d->spf_domain);
		break;
	case LEARN_REFRESH:
		/* Still carrying mail whose SPF fails (or unprobed mail). */
		if (!d->spf_probe ||
		    (cfg->spf_reject & (1U << d->spf_result)))
			learn_refresh(learn, &a, (long long)time(NULL));
		break;
	case LEARN_WATCH:
		watch_start(d);
		break;
	case LEARN_NONE:
		break;
	}
}

static void
learn_sync_now(void)
{
	char	*err;
	int	 rc;

	if ((rc = learn_sync(learn, &err)) == 1) {
		log_info("state file changed by another writer: %zu learned "
		    "hiders", learn_count(learn));
		gateways_compose();
	} else if (rc == -1) {
		log_error("state file: %s; ignored", err);
		free(err);
	}
}

static void
learn_save_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (learn_dirty(learn))
		learn_save_now();
}

static void
learn_cb(evutil_socket_t fd, short what, void *arg)
{
	int	gone;

	(void)fd;
	(void)what;
	(void)arg;
	learn_sync_now();
	if (++learn_ticks % LEARN_SAVE_TICKS != 0)
		return;
	if ((gone = learn_expire(learn, (long long)time(NULL))) > 0) {
		log_info("%d learned hiders expired (no evidence for "
		    "hider_expiry)", gone);
		gateways_compose();
	}
	if (learn_dirty(learn))
		learn_save_now();
}

/*
 * The state at start: state_dir made if missing (and given to the user
 * we become), the learned hiders read; a file that cannot be taken is
 * moved aside, said, and never read again.
 */
static void
learn_start(const struct passwd *pw)
{
	struct stat	 st;
	char		*err, *aside, *path;

	learn = learn_new(cfg);
	if (cfg->state_dir[0] == '\0')
		return;
	if (mkdir(cfg->state_dir, 0750) == -1 && errno != EEXIST) {
		log_warnx("state_dir %s: %s; learned hiders are kept in "
		    "memory only", cfg->state_dir, strerror(errno));
	} else if (pw != NULL && stat(cfg->state_dir, &st) == 0 &&
	    st.st_uid != pw->pw_uid &&
	    chown(cfg->state_dir, pw->pw_uid, pw->pw_gid) == -1) {
		/* Ours to write after the drop (systemd's StateDirectory is
		 * made for the unit's user, root). */
		log_warnx("state_dir %s: chown to %s: %s", cfg->state_dir,
		    pw->pw_name, strerror(errno));
	}
	if (learn_load(learn, NULL, &err) == 0) {
		if (learn_count(learn) > 0)
			log_info("state file: %zu learned hiders",
			    learn_count(learn));
		return;
	}
	path = learn_state_path(cfg);
	xasprintf(&aside, "%s.corrupt", path);
	if (rename(path, aside) == 0)
		log_error("state file %s; ignored, and kept as %s", err,
		    aside);
	else
		log_error("state file %s; ignored", err);
	free(aside);
	free(path);
	free(err);
}

/*
 * The container engine, said once: it decides which fix the explanations
 * give.  Loopback left unchecked where the engine may hand the internet
 * over from it is a choice the administrator made; it is said each time.
 */
static void
engine_changed(const struct engine_info *was, const struct engine_info *now)
{
	if (was == NULL || was->kind != now->kind)
		log_info("container engine: %s (%s)", engine_label(now->kind),
		    now->evidence);
	if (engine_rootless(now->kind) && cfg->gateways_auto &&
	    config_key_set(cfg, "skip_addresses") &&
	    (was == NULL || was->kind != now->kind))
		log_warnx("skip_addresses is set: loopback clients are "
		    "skipped although %s can hand remote clients over from "
		    "loopback", engine_label(now->kind));
}

static void
gateways_rescan(void)
{
	struct gwset	*next;
	char		*was, *now;
	struct timeval	 tv;

	next = gateway_scan(cfg);
	engine_changed(gwset_engine(gws_scanned), gwset_engine(next));
	was = gwset_describe(gws_scanned);
	now = gwset_describe(next);
	if (gws_scanned == NULL || strcmp(was, now) != 0)
		log_info("gateways: %s", gwset_count(next) ? now : "none");
	free(was);
	free(now);
	gwset_free(gws_scanned);
	gws_scanned = next;
	gateways_compose();
	if (cfg->gateways_auto) {
		tv.tv_sec = (time_t)cfg->gateway_scan_interval;
		tv.tv_usec = 0;
		evtimer_add(ev_scan, &tv);
		if (netwatch == NULL)
			netwatch = netwatch_new(base, NETWATCH_DEBOUNCE_MS,
			    netwatch_changed, NULL);
	} else {
		evtimer_del(ev_scan);
		netwatch_free(netwatch);
		netwatch = NULL;
	}
}

/*
 * The kernel announced address, route or link changes (a Docker network
 * created or removed, say): re-scan now, not at the next interval, so that
 * no mail is judged against a stale gateway set.  gateway_scan_interval
 * stays the backstop.
 */
static void
netwatch_changed(unsigned long changes, void *arg)
{
	(void)arg;
	log_debug("gateways: re-scan after %lu network changes", changes);
	gateways_rescan();
}

static void
scan_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	gateways_rescan();
}

static int
strlist_equal(const struct strlist *a, const struct strlist *b)
{
	size_t	i;

	if (a->n != b->n)
		return (0);
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return (0);
	return (1);
}

/* SIGHUP: a new configuration if it parses, and a gateway re-scan. */
static void
reload(void)
{
	struct config	*next;
	char		*err;

	notify("RELOADING=1");
	if (cfg_path == NULL)
		next = config_new();
	else
		next = config_load(cfg_path, &err);
	if (next != NULL && opt_listen != NULL &&
	    config_override(next, "listen", opt_listen, &err) != 0) {
		config_free(next);
		next = NULL;
	}
	if (next != NULL)
		mynetworks_read(next);
	metrics_reload(next != NULL);
	if (next == NULL) {
		log_error("reload: %s; keeping the running configuration",
		    err);
		free(err);
	} else {
		if (opt_debug)
			next->log_level = LOG_LVL_DEBUG;
		if (!strlist_equal(&next->listen, &cfg->listen) ||
		    strcmp(next->user, cfg->user) != 0 ||
		    next->log_stderr != cfg->log_stderr)
			log_warnx("reload: listen, user and log take effect "
			    "at the next restart");
		if (!strlist_equal(&next->dns_servers, &cfg->dns_servers) ||
		    next->dns_timeout != cfg->dns_timeout ||
		    next->dns_cache_size != cfg->dns_cache_size ||
		    next->spf_timeout != cfg->spf_timeout ||
		    strcmp(next->authserv_id, cfg->authserv_id) != 0)
			log_warnx("reload: dns_servers, dns_timeout, "
			    "dns_cache_size, spf_timeout and authserv_id take "
			    "effect at the next restart");
		config_free(cfg);
		cfg = next;
		if (spf != NULL)
			spf_config(spf, cfg);
		learn_config(learn, cfg);
		learn_sync_now();
		log_set_level(cfg->log_level);
		audit_open(cfg->audit_log);
		log_info("reload: configuration %s loaded",
		    cfg_path ? cfg_path : "(built-in defaults)");
	}
	gateways_rescan();
	notify("READY=1");
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_warnx("shutdown: %zu connections still open; closing them",
	    conn_count());
	event_base_loopbreak(base);
}

static void
shutdown_begin(void)
{
	/* Long enough for an SPF evaluation already under way. */
	struct timeval	tv = { SHUTDOWN_SECONDS + (time_t)cfg->spf_timeout, 0 };

	if (shutting_down)
		return;
	shutting_down = 1;
	notify("STOPPING=1");
	log_info("shutting down");
	listeners_enable(0);
	evtimer_del(ev_scan);
	evtimer_del(ev_backoff);
	conn_shutdown(fdstore);
	if (conn_count() == 0)
		event_base_loopbreak(base);
	else
		evtimer_add(ev_deadline, &tv);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (sig == SIGHUP && !shutting_down)
		reload();
	else if (sig == SIGTERM || sig == SIGINT)
		shutdown_begin();
}

/*
 * The listening sockets systemd holds across restarts (natguard.socket),
 * if it started us so; they replace listen.  systemd owns them: a unix
 * one is not removed at exit.
 */
static int
listen_inherited(void)
{
	char	*err;
	int	*fds, n, i;

	if ((n = endpoint_inherited(&fds, &adopt_fds, &nadopt, &err)) == -1)
		fatalx("socket activation: %s", err);
	if (n == 0) {
		free(fds);
		return (0);
	}
	nlisteners = (size_t)n;
	listeners = xcalloc(nlisteners, sizeof(*listeners));
	for (i = 0; i < n; i++) {
		listeners[i].fd = fds[i];
		listeners[i].name = endpoint_name(fds[i]);
	}
	free(fds);
	from_systemd = 1;
	return (1);
}

/*
 * systemd keeps descriptors for the next process (FileDescriptorStoreMax=,
 * announced as $FDSTORE): then stopping hands idle connections over.
 */
static int
fdstore_enabled(void)
{
	const char	*v = getenv("FDSTORE"), *ns = getenv("NOTIFY_SOCKET");
	uint64_t	 n;

	return (v != NULL && ns != NULL && *ns != '\0' &&
	    parse_u64(v, 1, UINT32_MAX, &n) == 0);
}

/*
 * An admin who changed listen in natguard.conf and kept natguard.socket
 * would have Postfix knock at the old door: say so.
 */
static void
listen_compare(const char *names)
{
	size_t	i, j;

	for (i = 0; i < cfg->listen.n; i++) {
		for (j = 0; j < nlisteners; j++)
			if (strcmp(cfg->listen.v[i], listeners[j].name) == 0)
				break;
		if (j == nlisteners)
			log_warnx("listen = %s is not used: systemd gives %s; "
			    "change ListenStream= with systemctl edit "
			    "natguard.socket", cfg->listen.v[i], names);
	}
}

static void
listen_all(void)
{
	struct sockaddr_un	 sun;
	socklen_t		 slen = sizeof(sun);
	char			*err;
	size_t			 i;
	int			 fd;

	if (listen_inherited())
		return;
	nlisteners = cfg->listen.n;
	listeners = xcalloc(nlisteners, sizeof(*listeners));
	for (i = 0; i < nlisteners; i++) {
		if ((fd = endpoint_bind(cfg->listen.v[i],
		    cfg->unix_socket_mode, &err)) == -1)
			fatalx("cannot listen on %s", err);
		listeners[i].name = endpoint_name(fd);
		if (getsockname(fd, (struct sockaddr *)&sun, &slen) == 0 &&
		    sun.sun_family == AF_UNIX)
			listeners[i].unix_path = xstrdup(sun.sun_path);
		listeners[i].fd = fd;
	}
}

static void
listen_start(void)
{
	size_t	i;

	for (i = 0; i < nlisteners; i++) {
		listeners[i].lev = evconnlistener_new(base, accept_cb,
		    &listeners[i], LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
		    -1, listeners[i].fd);
		if (listeners[i].lev == NULL)
			fatalx("evconnlistener_new");
		evconnlistener_set_error_cb(listeners[i].lev,
		    accept_error_cb);
	}
}

static void
listen_close(void)
{
	size_t	i;

	for (i = 0; i < nlisteners; i++) {
		if (listeners[i].lev != NULL)
			evconnlistener_free(listeners[i].lev);
		else
			close(listeners[i].fd);
		if (listeners[i].unix_path != NULL)
			(void)unlink(listeners[i].unix_path);
		free(listeners[i].unix_path);
		free(listeners[i].name);
	}
	free(listeners);
	listeners = NULL;
	nlisteners = 0;
}

/*
 * Before binding: the user to become, looked up while we still can, and
 * copied (getpwnam's storage is not ours to keep).
 */
static struct passwd *
lookup_user(const char *user)
{
	static struct passwd	 copy;
	struct passwd		*pw;

	if (*user == '\0')
		return (NULL);
	if ((pw = getpwnam(user)) == NULL)
		fatalx("user %s: no such user", user);
	copy.pw_uid = pw->pw_uid;
	copy.pw_gid = pw->pw_gid;
	copy.pw_name = xstrdup(pw->pw_name);
	return (&copy);
}

/*
 * After binding: our unix sockets and pidfile become the user's (so that
 * it can remove them at exit), then we become the user and its groups, or
 * refuse to go on.
 */
static void
drop_privileges(const struct passwd *pw)
{
	size_t	i;

	if (pw == NULL)
		return;
	for (i = 0; i < nlisteners; i++)
		if (listeners[i].unix_path != NULL &&
		    chown(listeners[i].unix_path, pw->pw_uid, pw->pw_gid) == -1)
			fatal("chown %s", listeners[i].unix_path);
	if (*cfg->pidfile != '\0' &&
	    chown(cfg->pidfile, pw->pw_uid, pw->pw_gid) == -1)
		fatal("chown %s", cfg->pidfile);
	if (initgroups(pw->pw_name, pw->pw_gid) == -1 ||
	    setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", pw->pw_name);
	if (pw->pw_uid != 0 && (setuid(0) != -1 || geteuid() == 0))
		fatalx("privileges to %s were not dropped", pw->pw_name);
	log_info("running as %s", pw->pw_name);
}

static void
pidfile_write(const char *path)
{
	FILE	*f;

	if (*path == '\0')
		return;
	if ((f = fopen(path, "w")) == NULL)
		fatal("pidfile %s", path);
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) == EOF)
		fatal("pidfile %s", path);
}

static char *
listen_names(void)
{
	char	*s = xstrdup(""), *t;
	size_t	 i;

	for (i = 0; i < nlisteners; i++) {
		xasprintf(&t, "%s%s%s", s, i ? " " : "", listeners[i].name);
		free(s);
		s = t;
	}
	return (s);
}

/* Decision lines held back during this loop iteration are written now. */
static void
logflush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_flush();
}

static void
logflush_kick(void)
{
	event_active(ev_logflush, EV_TIMEOUT, 0);
}

/* Once a second: connections idle for idle_timeout are closed. */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv;

	(void)fd;
	(void)what;
	(void)arg;
	/* Idleness on the monotonic clock, as conn.c keeps it. */
	if (event_gettime_monotonic(base, &tv) == -1)
		fatalx("event_gettime_monotonic");
	conn_sweep(tv.tv_sec, (time_t)cfg->idle_timeout);
}

static void
events_setup(void)
{
	struct timeval	 second = { 1, 0 };
	struct timeval	 tick = { LEARN_TICK_SECONDS, 0 };
	static const int	 sigs[3] = { SIGHUP, SIGTERM, SIGINT };
	int			 i;

	for (i = 0; i < 3; i++) {
		ev_sig[i] = evsignal_new(base, sigs[i], signal_cb, NULL);
		if (ev_sig[i] == NULL || evsignal_add(ev_sig[i], NULL) == -1)
			fatalx("evsignal_new");
	}
	ev_scan = evtimer_new(base, scan_cb, NULL);
	ev_backoff = evtimer_new(base, backoff_cb, NULL);
	ev_deadline = evtimer_new(base, deadline_cb, NULL);
	ev_logflush = event_new(base, -1, 0, logflush_cb, NULL);
	if (ev_scan == NULL || ev_backoff == NULL || ev_deadline == NULL ||
	    ev_logflush == NULL)
		fatalx("evtimer_new");
	log_batch(logflush_kick);
	ev_sweep = event_new(base, -1, EV_PERSIST, sweep_cb, NULL);
	if (ev_sweep == NULL || event_add(ev_sweep, &second) == -1)
		fatalx("event_new");
	ev_learn = event_new(base, -1, EV_PERSIST, learn_cb, NULL);
	ev_learn_save = evtimer_new(base, learn_save_cb, NULL);
	if (ev_learn == NULL || ev_learn_save == NULL ||
	    event_add(ev_learn, &tick) == -1)
		fatalx("event_new");
}

static void
events_free(void)
{
	int	i;

	for (i = 0; i < 3; i++)
		event_free(ev_sig[i]);
	event_free(ev_scan);
	event_free(ev_backoff);
	event_free(ev_deadline);
	log_batch(NULL);
	event_free(ev_logflush);
	event_free(ev_sweep);
	event_free(ev_learn);
	event_free(ev_learn_save);
}

/*
 * Run the daemon.  Takes ownership of the configuration; path is the file
 * to re-read on SIGHUP, NULL for built-in defaults; debug and listen are
 * the command line's -v and -l, which outlive reloads.
 */
int
server_main(struct config *config, const char *path, int daemonize,
    int debug, const char *listen)
{
	struct passwd	*pw;
	char		*names, *err;
	int		 echo;

	cfg = config;
	cfg_path = path;
	opt_debug = debug;
	opt_listen = listen;
	if (debug)
		cfg->log_level = LOG_LVL_DEBUG;
	signal(SIGPIPE, SIG_IGN);
	pw = lookup_user(cfg->user);
	listen_all();
	if (daemonize && daemon(0, 0) == -1)
		fatal("daemon");
	echo = !daemonize && isatty(STDERR_FILENO);
	log_open(cfg->log_stderr, cfg->log_level, echo);
	pidfile_write(cfg->pidfile);
	mynetworks_read(cfg);
	learn_start(pw);
	drop_privileges(pw);

	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	listen_start();
	events_setup();
	if ((dns = dns_new(base, cfg, &err)) == NULL)
		fatalx("%s", err);
	spf = spf_new(base, dns, cfg);
	metrics_start(base, cfg->metrics_listen);
	audit_open(cfg->audit_log);
	gateways_rescan();

	adopt_connections();
	fdstore = fdstore_enabled();
	names = listen_names();
	if (from_systemd) {
		log_notice("listening on %s, sockets from systemd (listen is "
		    "not used)", names);
		listen_compare(names);
	} else
		log_info("listening on %s", names);
	notify("READY=1\nSTATUS=listening on %s\nMAINPID=%ld", names,
	    (long)getpid());
	free(names);

	event_base_dispatch(base);

	conn_close_all();
	while (!TAILQ_EMPTY(&watches))
		watch_free(TAILQ_FIRST(&watches));
	if (learn_dirty(learn))
		learn_save_now();
	learn_free(learn);
	learn = NULL;
	metrics_stop();
	spf_free(spf);
	dns_free(dns);
	listen_close();
	events_free();
	if (*cfg->pidfile != '\0')
		(void)unlink(cfg->pidfile);
	log_info("exiting");
	netwatch_free(netwatch);
	netwatch = NULL;
	gwset_free(gws);
	gwset_free(gws_scanned);
	config_free(cfg);
	if (pw != NULL)
		free(pw->pw_name);
	event_base_free(base);
	libevent_global_shutdown();
	audit_close();
	log_close();
	return (0);
}
