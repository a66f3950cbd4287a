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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#endif

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "natguard.h"

/*
 * The SPF worker: the process that evaluates SPF records, which anyone
 * who can send mail can make natguard read.  As Postfix and OpenSMTPD
 * do, the code that touches hostile data runs apart, holding nothing
 * else, and may die: a bug in libspf2 costs the evaluation it was
 * running, not the daemon.
 *
 * The daemon keeps the DNS, the result cache and the requests; the worker
 * gets one pass at a time (spfmsg.c) and answers each in order.  It is
 * this binary re-executed ("natguard spf-worker", its socket on fd 3),
 * runs as an unprivileged user, with fds 0-2 on /dev/null, and under a
 * seccomp filter that allows reading and writing its socket, memory, and
 * dying (spfw_syscalls[]).
 *
 * When it dies (or stops answering for SPFW_STALL seconds), the pass it
 * was running is answered NULL (spf.c: temperror, spf-worker-crash), the
 * passes sent after it go to the next worker, and a new worker is
 * started: at once, or after a second once it died SPFW_BURST times in
 * SPFW_BURST_SECONDS.
 */

#define SPFW_FD			3
#define SPFW_WINDOW		8	/* passes sent ahead */
#define SPFW_STALL		2	/* seconds without an answer */
#define SPFW_BURST		5
#define SPFW_BURST_SECONDS	10
/*
 * The worker's own backstop: a pass that runs this long ends it by
 * SIGALRM, which the kernel delivers whatever the pass is doing.  A daemon
 * that may not signal it (root without CAP_KILL, the worker being nobody)
 * still sees it go.
 */
#define SPFW_ALARM		(2 * SPFW_STALL + 1)
#define SPFW_ORPHANS		8	/* killed, not yet reaped */

struct spfjob {
	TAILQ_ENTRY(spfjob)	 entry;
	struct spfworker	*w;
	uint32_t		 id;
	struct buf		 msg;		/* the frame, kept to resend */
	char			*domain;	/* the identity's, for the log */
	spfjob_cb		 cb;		/* NULL: cancelled in flight */
	void			*arg;
	int			 flying;
};
TAILQ_HEAD(spfjobs, spfjob);

struct spfworker {
	struct event_base	*base;
	pid_t			 pid;		/* -1: none */
	struct bufferevent	*bev;
	int			 hello;		/* its first frame came */
	struct spfjobs		 flight;	/* sent, oldest first */
	struct spfjobs		 queue;		/* to send */
	size_t			 nflight;
	uint32_t		 next_id;
	struct event		*watchdog;
	struct event		*respawn;
	time_t			 deaths[SPFW_BURST];
	size_t			 ndeaths;
	uint64_t		 crashes;
	char			*sandbox;	/* what the worker said */
	spfworker_crash_cb	 crash_cb;
	void			*crash_arg;
	pid_t			 orphans[SPFW_ORPHANS];
	size_t			 norphans;
};

/* This binary, to re-execute as the worker; -1: fork only (the tests). */
static int	spfw_exe = -1;

static void	worker_spawn(struct spfworker *);
static void	worker_died(struct spfworker *, const char *);

/*
 * main() calls this: the worker is this very binary, opened now, before
 * privileges go.  An upgrade that replaces the file on disk does not
 * change the worker a running daemon starts, nor the messages it speaks.
 */
void
spfworker_exec_self(void)
{
	if (spfw_exe == -1)
		spfw_exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
}

static time_t
mono_now(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return (ts.tv_sec);
}

static void
job_free(struct spfjob *j)
{
	buf_free(&j->msg);
	free(j->domain);
	free(j);
}

/* Send what the window allows. */
static void
worker_feed(struct spfworker *w)
{
	struct spfjob	*j;
	struct timeval	 tv = { SPFW_STALL, 0 };

	if (w->bev == NULL)
		return;
	while (w->nflight < SPFW_WINDOW && (j = TAILQ_FIRST(&w->queue))) {
		TAILQ_REMOVE(&w->queue, j, entry);
		TAILQ_INSERT_TAIL(&w->flight, j, entry);
		j->flying = 1;
		w->nflight++;
		if (bufferevent_write(w->bev, j->msg.s, j->msg.len) == -1)
			fatalx("spf: bufferevent_write");
		if (w->nflight == 1)
			evtimer_add(w->watchdog, &tv);
	}
}

static void
worker_answer(struct spfworker *w, struct spf_passed *o)
{
	struct spfjob	*j = TAILQ_FIRST(&w->flight);
	struct timeval	 tv = { SPFW_STALL, 0 };

	TAILQ_REMOVE(&w->flight, j, entry);
	w->nflight--;
	if (w->nflight > 0)
		evtimer_add(w->watchdog, &tv);
	else
		evtimer_del(w->watchdog);
	if (j->cb != NULL)
		j->cb(o, j->arg);
	job_free(j);
}

static void
worker_read(struct bufferevent *bev, void *arg)
{
	struct spfworker	*w = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct spf_passed	 o;
	struct spfjob		*j;
	unsigned char		*p;
	uint32_t		 len, id;
	int			 rc;

	while (w->bev != NULL && evbuffer_get_length(in) >= 4) {
		evbuffer_copyout(in, &len, sizeof(len));
		if (len < 4 || len > SPFMSG_MAX) {
			worker_died(w, "wrote a malformed frame");
			return;
		}
		if (evbuffer_get_length(in) < 4 + (size_t)len)
			return;
		evbuffer_drain(in, 4);
		if ((p = evbuffer_pullup(in, len)) == NULL)
			fatalx("spf: evbuffer_pullup");
		rc = spfmsg_passed_get(p, len, &id, &o);
		evbuffer_drain(in, len);
		j = TAILQ_FIRST(&w->flight);
		if (rc != 0 || (!w->hello && id != 0) ||
		    (w->hello && (j == NULL || j->id != id))) {
			if (rc == 0)
				spf_passed_clear(&o);
			worker_died(w, "wrote a malformed frame");
			return;
		}
		if (!w->hello) {
			/* Its first frame says how it is sandboxed. */
			w->hello = 1;
			if (w->sandbox == NULL || o.error == NULL ||
			    strcmp(w->sandbox, o.error) != 0)
				log_info("spf: SPF worker (pid %ld): %s",
				    (long)w->pid, o.error ? o.error : "?");
			free(w->sandbox);
			w->sandbox = o.error;
			o.error = NULL;
			spf_passed_clear(&o);
			continue;
		}
		worker_answer(w, &o);
		spf_passed_clear(&o);
		worker_feed(w);
	}
}

static void
worker_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	worker_died(arg, (what & BEV_EVENT_EOF) ? "exited" :
	    "closed its socket");
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	char	why[64];

	(void)fd;
	(void)what;
	snprintf(why, sizeof(why), "stopped answering for %d s", SPFW_STALL);
	worker_died(arg, why);
}

static void
respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_spawn(arg);
}

static void	status_text(int, char *, size_t);

/* "killed by signal 11 (Segmentation fault)" and the like. */
static void
wait_status(pid_t pid, char *dst, size_t size)
{
	int	st;

	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			snprintf(dst, size, "waitpid: %s", strerror(errno));
			return;
		}
	status_text(st, dst, size);
}

static void
status_text(int st, char *dst, size_t size)
{
	if (WIFSIGNALED(st))
		snprintf(dst, size, "killed by signal %d (%s)%s",
		    WTERMSIG(st), strsignal(WTERMSIG(st)),
		    WTERMSIG(st) == SIGSYS ? ": its sandbox refused a system "
		    "call" : "");
	else
		snprintf(dst, size, "exit status %d", WEXITSTATUS(st));
}

/* Orphans that have ended since: reaped; with block, all of them. */
static void
orphans_reap(struct spfworker *w, int block)
{
	size_t	i = 0;
	pid_t	r;
	int	st;

	while (i < w->norphans) {
		r = waitpid(w->orphans[i], &st, block ? 0 : WNOHANG);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == 0) {
			i++;
			continue;
		}
		/* Reaped (or, -1, not ours to reap). */
		w->orphans[i] = w->orphans[--w->norphans];
	}
}

/*
 * Let the worker go: its socket shut (an EOF it sees at once, even while
 * libevent still holds the descriptor), SIGKILL, and its status reaped.
 * A worker this process may not signal (EPERM: root without CAP_KILL, as
 * a unit's CapabilityBoundingSet may leave it) and that has not ended yet
 * is not waited for here, which would stop the event loop: it ends at
 * the EOF, or by its alarm (SPFW_ALARM), and is reaped later.
 */
static void
worker_stop(struct spfworker *w, char *how, size_t size)
{
	pid_t	pid = w->pid;
	int	st, signalled, why;

	(void)shutdown(bufferevent_getfd(w->bev), SHUT_RDWR);
	bufferevent_free(w->bev);
	w->bev = NULL;
	w->pid = -1;
	signalled = kill(pid, SIGKILL) == 0;
	why = errno;
	if (signalled || waitpid(pid, &st, WNOHANG) == pid) {
		if (signalled)
			wait_status(pid, how, size);
		else
			status_text(st, how, size);
	} else {
		log_warnx("spf: cannot kill the SPF worker (pid %ld): %s; "
		    "it ends by itself within %d s", (long)pid,
		    strerror(why), SPFW_ALARM);
		snprintf(how, size, "not killed (%s)", strerror(why));
		if (w->norphans == SPFW_ORPHANS)
			orphans_reap(w, 1);
		w->orphans[w->norphans++] = pid;
	}
	orphans_reap(w, 0);
}

/* The worker is gone, or must go: its pass in hand pays, no other. */
static void
worker_died(struct spfworker *w, const char *what)
{
	struct spfjob	*j, *last;
	struct timeval	 second = { 1, 0 };
	char		 how[160];
	time_t		 now = mono_now();
	size_t		 i;
	pid_t		 pid = w->pid;

	if (w->bev == NULL)
		return;
	worker_stop(w, how, sizeof(how));
	w->hello = 0;
	evtimer_del(w->watchdog);
	w->crashes++;
	if ((j = TAILQ_FIRST(&w->flight)) != NULL) {
		TAILQ_REMOVE(&w->flight, j, entry);
		w->nflight--;
		log_warnx("spf: the SPF worker (pid %ld) %s, %s, evaluating "
		    "the SPF record of %s: that evaluation is answered "
		    "temperror (spf-worker-crash), and %s for a while; "
		    "%zu other evaluations go to a new worker", (long)pid,
		    what, how, j->domain, j->domain, w->nflight);
		w->crash_cb(j->domain, how, w->crash_arg);
		if (j->cb != NULL)
			j->cb(NULL, j->arg);
		job_free(j);
	} else
		log_warnx("spf: the SPF worker (pid %ld) %s, %s, while idle; "
		    "a new one is started", (long)pid, what, how);
	/* The rest were only sent: to the next worker, first, in order. */
	while ((last = TAILQ_LAST(&w->flight, spfjobs)) != NULL) {
		TAILQ_REMOVE(&w->flight, last, entry);
		last->flying = 0;
		if (last->cb == NULL)
			job_free(last);
		else
			TAILQ_INSERT_HEAD(&w->queue, last, entry);
	}
	w->nflight = 0;
	/* A worker that dies at once, again and again: not in a tight loop. */
	if (w->ndeaths == SPFW_BURST) {
		memmove(w->deaths, w->deaths + 1,
		    (SPFW_BURST - 1) * sizeof(*w->deaths));
		w->ndeaths--;
	}
	w->deaths[w->ndeaths++] = now;
	i = w->ndeaths;
	if (i == SPFW_BURST && now - w->deaths[0] < SPFW_BURST_SECONDS) {
		log_warnx("spf: the SPF worker died %d times in %d s: the "
		    "next one starts in a second", SPFW_BURST,
		    SPFW_BURST_SECONDS);
		evtimer_add(w->respawn, &second);
	} else
		worker_spawn(w);
}

#ifndef HAVE_CLOSEFROM
static void
closefrom(int lowfd)
{
	long	max = sysconf(_SC_OPEN_MAX), fd;

	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = lowfd; fd < max; fd++)
		(void)close((int)fd);
}
#endif

static int	worker_serve(void);

/* In the child: fd 3 the socket, 0-2 /dev/null, nothing else; then run. */
static NG_DEAD void
worker_child(int fd)
{
	char		*argv[] = { "natguard", "spf-worker", NULL };
	extern char	**environ;
	sigset_t	 none;
	int		 null, exe = -1;

	/* Both out of the way first: either may sit on fd 3 or 4. */
	if ((fd = fcntl(fd, F_DUPFD, 10)) == -1 || (spfw_exe != -1 &&
	    (exe = fcntl(spfw_exe, F_DUPFD, 10)) == -1))
		_exit(127);
	if (dup2(fd, SPFW_FD) == -1)
		_exit(127);
	if (exe != -1 && (dup2(exe, SPFW_FD + 1) == -1 ||
	    fcntl(SPFW_FD + 1, F_SETFD, FD_CLOEXEC) == -1))
		_exit(127);
	if ((null = open("/dev/null", O_RDWR)) != -1) {
		(void)dup2(null, 0);
		(void)dup2(null, 1);
		(void)dup2(null, 2);
	}
	closefrom(spfw_exe != -1 ? SPFW_FD + 2 : SPFW_FD + 1);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	/*
	 * Stopping is the daemon's: systemd's SIGTERM goes to the whole
	 * cgroup, and a worker it killed would be a crash (logged, counted,
	 * its domain held).  The worker ends at its socket's EOF, when the
	 * daemon exits or lets it go, however the daemon ended.
	 */
	(void)signal(SIGHUP, SIG_IGN);
	(void)signal(SIGTERM, SIG_IGN);
	(void)signal(SIGINT, SIG_IGN);
	(void)signal(SIGALRM, SIG_DFL);
	if (spfw_exe != -1) {
		/* Close-on-exec: the worker does not hold its own binary. */
		fexecve(SPFW_FD + 1, argv, environ);
		_exit(127);
	}
	_exit(worker_serve());
}

static void
worker_spawn(struct spfworker *w)
{
	struct timeval	 second = { 1, 0 };
	int		 sv[2];
	pid_t		 pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_error("spf: cannot start the SPF worker: socketpair: %s",
		    strerror(errno));
		evtimer_add(w->respawn, &second);
		return;
	}
	if ((pid = fork()) == -1) {
		log_error("spf: cannot start the SPF worker: fork: %s",
		    strerror(errno));
		close(sv[0]);
		close(sv[1]);
		evtimer_add(w->respawn, &second);
		return;
	}
	if (pid == 0)
		worker_child(sv[1]);
	close(sv[1]);
	if (evutil_make_socket_nonblocking(sv[0]) == -1)
		fatal("spf: nonblocking");
	w->pid = pid;
	w->bev = bufferevent_socket_new(w->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	if (w->bev == NULL)
		fatalx("spf: bufferevent_socket_new");
	bufferevent_setcb(w->bev, worker_read, NULL, worker_event, w);
	if (bufferevent_enable(w->bev, EV_READ | EV_WRITE) == -1)
		fatalx("spf: bufferevent_enable");
	worker_feed(w);
}

struct spfworker *
spfworker_new(struct event_base *base, spfworker_crash_cb crash_cb,
    void *arg)
{
	struct spfworker	*w;

	w = xcalloc(1, sizeof(*w));
	w->base = base;
	w->pid = -1;
	w->crash_cb = crash_cb;
	w->crash_arg = arg;
	TAILQ_INIT(&w->flight);
	TAILQ_INIT(&w->queue);
	w->next_id = 1;
	if ((w->watchdog = evtimer_new(base, watchdog_cb, w)) == NULL ||
	    (w->respawn = evtimer_new(base, respawn_cb, w)) == NULL)
		fatalx("spf: evtimer_new");
	worker_spawn(w);
	return (w);
}

void
spfworker_free(struct spfworker *w)
{
	struct spfjob	*j;
	char		 how[160];

	if (w == NULL)
		return;
	if (w->bev != NULL)
		worker_stop(w, how, sizeof(how));
	orphans_reap(w, 1);
	while ((j = TAILQ_FIRST(&w->flight)) != NULL) {
		TAILQ_REMOVE(&w->flight, j, entry);
		job_free(j);
	}
	while ((j = TAILQ_FIRST(&w->queue)) != NULL) {
		TAILQ_REMOVE(&w->queue, j, entry);
		job_free(j);
	}
	event_free(w->watchdog);
	event_free(w->respawn);
	free(w->sandbox);
	free(w);
}

/*
 * Queue a pass: msg is its frame from spfmsg_pass_put() with id 0, which
 * this fills in; the job takes msg's storage.  domain is the identity's,
 * named in the log if the worker dies on it.  cb is called once, unless
 * the job is cancelled first.
 */
struct spfjob *
spfworker_submit(struct spfworker *w, struct buf *msg, const char *domain,
    spfjob_cb cb, void *arg)
{
	struct spfjob	*j;

	j = xcalloc(1, sizeof(*j));
	j->w = w;
	j->id = w->next_id++;
	if (w->next_id == 0)
		w->next_id = 1;	/* 0 is the worker's hello */
	j->msg = *msg;
	memset(msg, 0, sizeof(*msg));
	memcpy(j->msg.s + 4, &j->id, sizeof(j->id));
	j->domain = xstrdup(domain);
	j->cb = cb;
	j->arg = arg;
	TAILQ_INSERT_TAIL(&w->queue, j, entry);
	worker_feed(w);
	return (j);
}

/* A sent pass is answered all the same (in order): only its cb goes. */
void
spfworker_cancel(struct spfjob *j)
{
	if (j == NULL)
		return;
	if (j->flying) {
		j->cb = NULL;
		return;
	}
	TAILQ_REMOVE(&j->w->queue, j, entry);
	job_free(j);
}

uint64_t
spfworker_crashes(const struct spfworker *w)
{
	return (w != NULL ? w->crashes : 0);
}

const char *
spfworker_sandbox(const struct spfworker *w)
{
	return (w != NULL && w->sandbox != NULL ? w->sandbox : "starting");
}

/* --- the worker ------------------------------------------------------ */

#ifdef __linux__
#if defined(__x86_64__)
#define SPFW_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SPFW_ARCH	AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define SPFW_ARCH	AUDIT_ARCH_I386
#endif
#endif

#ifdef SPFW_ARCH
enum spfw_rule {
	SC_ALLOW,
	SC_NOEXEC,	/* allowed unless arg 2 asks PROT_EXEC */
	SC_SELF,	/* allowed with arg 0 our own pid */
	SC_EACCES	/* refused, not fatal: glibc's abort() path tries */
};

/*
 * What the worker may do once its sandbox is on: read and write its
 * socket, manage memory (never executable), and die, by abort() too.
 * Anything else kills it (SIGSYS), and the daemon says so.
 */
static const struct {
	int		nr;
	enum spfw_rule	rule;
} spfw_syscalls[] = {
	{ __NR_read, SC_ALLOW },
	{ __NR_write, SC_ALLOW },
	{ __NR_readv, SC_ALLOW },
	{ __NR_writev, SC_ALLOW },
	{ __NR_close, SC_ALLOW },
	{ __NR_brk, SC_ALLOW },
	{ __NR_mmap, SC_NOEXEC },
	{ __NR_mprotect, SC_NOEXEC },
	{ __NR_munmap, SC_ALLOW },
	{ __NR_mremap, SC_ALLOW },
	{ __NR_madvise, SC_ALLOW },
	{ __NR_futex, SC_ALLOW },
	{ __NR_clock_gettime, SC_ALLOW },
	{ __NR_gettimeofday, SC_ALLOW },
	{ __NR_getrandom, SC_ALLOW },
	{ __NR_rt_sigreturn, SC_ALLOW },
	{ __NR_rt_sigprocmask, SC_ALLOW },
	{ __NR_rt_sigaction, SC_ALLOW },
	{ __NR_sigaltstack, SC_ALLOW },
	{ __NR_restart_syscall, SC_ALLOW },
	{ __NR_getpid, SC_ALLOW },
	{ __NR_getuid, SC_ALLOW },	/* libspf2 */
	{ __NR_geteuid, SC_ALLOW },
	{ __NR_getgid, SC_ALLOW },
	{ __NR_getegid, SC_ALLOW },
	{ __NR_gettid, SC_ALLOW },
	{ __NR_tgkill, SC_SELF },
	{ __NR_exit, SC_ALLOW },
	{ __NR_exit_group, SC_ALLOW },
	{ __NR_openat, SC_EACCES },
#ifdef __NR_open
	{ __NR_open, SC_EACCES },
#endif
#ifdef __NR_time
	{ __NR_time, SC_ALLOW },
#endif
	/* alarm(2): the worker's own backstop (SPFW_ALARM). */
#ifdef __NR_alarm
	{ __NR_alarm, SC_ALLOW },
#endif
	{ __NR_setitimer, SC_ALLOW },
};
#define SPFW_NSYSCALLS	(sizeof(spfw_syscalls) / sizeof(spfw_syscalls[0]))

static size_t
seccomp_allowed(void)
{
	size_t	i, n = 0;

	for (i = 0; i < SPFW_NSYSCALLS; i++)
		n += spfw_syscalls[i].rule != SC_EACCES;
	return (n);
}

#define SC_STMT(c, k)	((struct sock_filter)BPF_STMT((c), (k)))
#define SC_LD(off)	SC_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define SC_JEQ(k, t, f)	\
	((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f)))
#define SC_JSET(k, t, f) \
	((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (k), (t), (f)))
#define SC_RET(k)	SC_STMT(BPF_RET | BPF_K, (k))
#define SC_ARG(n)	(offsetof(struct seccomp_data, args[n]))

/* The filter of spfw_syscalls[]; 0, or -1 with errno. */
static int
seccomp_on(void)
{
	struct sock_filter	 f[8 + 6 * SPFW_NSYSCALLS], *p = f;
	struct sock_fprog	 prog;
	size_t			 i;
	uint32_t		 self = (uint32_t)getpid();

	*p++ = SC_LD(offsetof(struct seccomp_data, arch));
	*p++ = SC_JEQ(SPFW_ARCH, 1, 0);
	*p++ = SC_RET(SECCOMP_RET_KILL_PROCESS);
	*p++ = SC_LD(offsetof(struct seccomp_data, nr));
	for (i = 0; i < SPFW_NSYSCALLS; i++) {
		switch (spfw_syscalls[i].rule) {
		case SC_ALLOW:
			*p++ = SC_JEQ((uint32_t)spfw_syscalls[i].nr, 0, 1);
			*p++ = SC_RET(SECCOMP_RET_ALLOW);
			break;
		case SC_EACCES:
			*p++ = SC_JEQ((uint32_t)spfw_syscalls[i].nr, 0, 1);
			*p++ = SC_RET(SECCOMP_RET_ERRNO | EACCES);
			break;
		case SC_NOEXEC:
			*p++ = SC_JEQ((uint32_t)spfw_syscalls[i].nr, 0, 4);
			*p++ = SC_LD(SC_ARG(2));
			*p++ = SC_JSET(PROT_EXEC, 0, 1);
			*p++ = SC_RET(SECCOMP_RET_KILL_PROCESS);
			*p++ = SC_RET(SECCOMP_RET_ALLOW);
			break;
		case SC_SELF:
			*p++ = SC_JEQ((uint32_t)spfw_syscalls[i].nr, 0, 4);
			*p++ = SC_LD(SC_ARG(0));
			*p++ = SC_JEQ(self, 1, 0);
			*p++ = SC_RET(SECCOMP_RET_KILL_PROCESS);
			*p++ = SC_RET(SECCOMP_RET_ALLOW);
			break;
		}
	}
	*p++ = SC_RET(SECCOMP_RET_KILL_PROCESS);
	prog.len = (unsigned short)(p - f);
	prog.filter = f;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return (-1);
	return (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog));
}
#endif

/* Root's worker becomes nobody: it needs no one's rights. */
static int
drop_root(void)
{
	struct passwd	*pw;
	uid_t		 uid = 65534;
	gid_t		 gid = 65534;

	if (getuid() != 0 && geteuid() != 0)
		return (0);
	if ((pw = getpwnam("nobody")) != NULL) {
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	endpwent();
	if (setgroups(0, NULL) == -1 || setgid(gid) == -1 ||
	    setuid(uid) == -1 || setuid(0) != -1)
		return (-1);
	return (0);
}

/* Sandboxed as far as this host allows; what: how, for the daemon. */
static void
sandbox(char *what, size_t size)
{
	const char	*pre = getenv("LD_PRELOAD");
	int		 dropped = drop_root();

	if (dropped == -1) {
		snprintf(what, size, "cannot drop root: %s; not started",
		    strerror(errno));
		return;
	}
#ifdef SPFW_ARCH
	if (pre != NULL && strstr(pre, "vgpreload") != NULL)
		snprintf(what, size, "uid %ld, no seccomp filter: running "
		    "under valgrind", (long)getuid());
	else if (seccomp_on() == -1)
		snprintf(what, size, "uid %ld, no seccomp filter: %s",
		    (long)getuid(), strerror(errno));
	else
		snprintf(what, size, "uid %ld, seccomp filter allowing %zu "
		    "system calls", (long)getuid(), seccomp_allowed());
#else
	(void)pre;
	snprintf(what, size, "uid %ld, no seccomp filter on this system",
	    (long)getuid());
#endif
}

static int
write_full(int fd, const void *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return (-1);
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return (0);
}

/*
 * The worker's loop: a pass in, what it found out, until the daemon
 * closes the socket.  It exits with _exit(): nothing to flush, and a
 * sanitizer's exit-time checks would need more than the sandbox allows.
 */
/*
 * The worker's loop.  It reads what the socket holds (the daemon sends up
 * to SPFW_WINDOW passes ahead: a cold burst costs a read a batch, not two
 * a pass) and answers every whole pass in it, each as soon as it is
 * evaluated: the daemon blames a death on the oldest pass unanswered, so
 * an answer held back would make an innocent pass the culprit.
 */
static int
worker_serve(void)
{
	struct spfeval		*e;
	struct spf_pass		 in;
	struct spf_passed	 out;
	struct buf		 b = { NULL, 0, 0 }, rd = { NULL, 0, 0 };
	char			 what[160];
	uint32_t		 len, id;
	size_t			 off;
	ssize_t			 r;

	e = spfeval_new();
	sandbox(what, sizeof(what));
	memset(&out, 0, sizeof(out));
	out.error = what;
	spfmsg_passed_put(&b, 0, &out);
	if (write_full(SPFW_FD, b.s, b.len) == -1 ||
	    strstr(what, "not started") != NULL)
		_exit(1);
	for (;;) {
		for (off = 0; rd.len - off >= sizeof(len); off += 4 + len) {
			memcpy(&len, rd.s + off, sizeof(len));
			if (len < 4 || len > SPFMSG_MAX)
				_exit(3);
			if (rd.len - off - sizeof(len) < len)
				break;
			if (spfmsg_pass_get(rd.s + off + sizeof(len), len,
			    &id, &in) != 0)
				_exit(3);
			(void)alarm(SPFW_ALARM);
			spfeval_run(e, &in, &out);
			(void)alarm(0);
			buf_reset(&b);
			spfmsg_passed_put(&b, id, &out);
			spf_passed_clear(&out);
			spf_pass_clear(&in);
			if (write_full(SPFW_FD, b.s, b.len) == -1)
				_exit(0);
		}
		if (off > 0) {
			memmove(rd.s, rd.s + off, rd.len - off);
			rd.len -= off;
		}
		if (rd.size < rd.len + 65536 + 1)
			buf_grow(&rd, 65536);
		while ((r = read(SPFW_FD, rd.s + rd.len, rd.size - rd.len - 1))
		    == -1 && errno == EINTR)
			;
		if (r <= 0)
			_exit(0);
		rd.len += (size_t)r;
	}
}

/* "natguard spf-worker": only as the daemon starts it. */
int
spfworker_main(void)
{
	struct stat	st;

	if (fstat(SPFW_FD, &st) == -1 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "natguard: spf-worker is the daemon's SPF "
		    "worker, started by the daemon only\n");
		return (2);
	}
	return (worker_serve());
}

/* --- doctor ------------------------------------------------------------ */

struct selftest {
	struct event_base	*base;
	int			 done;
	enum spf_result		 result;
};

static void
selftest_got(const struct spf_passed *o, void *arg)
{
	struct selftest	*t = arg;

	t->done = o != NULL ? 1 : -1;
	if (o != NULL)
		t->result = o->result;
	event_base_loopexit(t->base, NULL);
}

static void
selftest_crash(const char *domain, const char *how, void *arg)
{
	(void)domain;
	(void)how;
	(void)arg;
}

/*
 * For doctor: a worker started as the daemon starts one, given a record
 * that passes.  Returns 0 with *what saying how it is sandboxed, or -1
 * with *what saying what went wrong.  The caller frees *what.
 */
int
spfworker_selftest(char **what)
{
	struct selftest		 t = { NULL, 0, SPF_R_NONE };
	struct spfworker	*w;
	struct spf_pass		 in;
	struct spf_pin		 pin;
	struct dns_answer	 a;
	struct dns_rr		 rr;
	struct buf		 b = { NULL, 0, 0 };
	struct timeval		 tv = { 5, 0 };
	char			 text[] = "v=spf1 ip4:192.0.2.1 -all";
	int			 rc = -1;

	if ((t.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	w = spfworker_new(t.base, selftest_crash, NULL);
	memset(&in, 0, sizeof(in));
	memset(&a, 0, sizeof(a));
	memset(&rr, 0, sizeof(rr));
	in.client.family = AF_INET;
	memcpy(in.client.bytes, "\xc0\x00\x02\x01", 4);
	in.mailbox = "postmaster@selftest.natguard.invalid";
	in.rec_dom = "localhost";
	in.void_limit = 2;
	rr.ttl = 60;
	rr.len = strlen(text);
	rr.data = text;
	a.status = DNS_OK;
	a.type = DNS_T_TXT;
	a.n = 1;
	a.rr = &rr;
	a.refs = 1;
	pin.name = "selftest.natguard.invalid";
	pin.type = DNS_T_TXT;
	pin.answer = &a;
	in.pins = &pin;
	in.npins = 1;
	spfmsg_pass_put(&b, 0, &in, NULL, 0);
	(void)spfworker_submit(w, &b, "selftest.natguard.invalid",
	    selftest_got, &t);
	event_base_loopexit(t.base, &tv);
	event_base_dispatch(t.base);
	if (t.done == 1 && t.result == SPF_R_PASS) {
		xasprintf(what, "the SPF worker runs (%s) and evaluates a "
		    "record", spfworker_sandbox(w));
		rc = 0;
	} else if (t.done == 1)
		xasprintf(what, "the SPF worker answered %s for a record that "
		    "passes", spf_result_name(t.result));
	else if (t.done == -1)
		xasprintf(what, "the SPF worker died on a record that passes "
		    "(%s)", spfworker_sandbox(w));
	else
		xasprintf(what, "the SPF worker did not answer within 5 s");
	spfworker_free(w);
	event_base_free(t.base);
	return (rc);
}
