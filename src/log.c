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

#include <sys/uio.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <paths.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "natguard.h"

/*
 * Until log_open() is called everything goes to stderr, so that start-up
 * errors are seen by whoever started us.  Severity is written as Postfix
 * writes it ("warning: ..."), which is what mail administrators grep for.
 */
static int		log_syslog;
static int		log_echo;	/* syslog, and stderr too */
static int		log_unheard;	/* no syslog socket: stderr too */
static time_t		log_probed;	/* when log_unheard was last tried */
static enum log_level	log_max = LOG_LVL_INFO;
static long		log_pid;	/* 0: ask getpid() */

/*
 * Decision lines to stderr may be held back until the end of an event loop
 * iteration and written together: one write(2) for many requests.  Any
 * other line writes them first, so the order in the log is kept.
 */
#define LOG_BATCH_MAX	65536
static char		 log_pending[LOG_BATCH_MAX];
static size_t		 log_npending;
static void		(*log_kick)(void);

static const struct {
	const char	*prefix;
	int		 priority;
} log_levels[] = {
	[LOG_LVL_ERROR] = { "error: ", LOG_ERR },
	[LOG_LVL_WARNING] = { "warning: ", LOG_WARNING },
	[LOG_LVL_NOTICE] = { "", LOG_NOTICE },
	[LOG_LVL_INFO] = { "", LOG_INFO },
	[LOG_LVL_DEBUG] = { "debug: ", LOG_DEBUG },
};

/*
 * A daemon started before the syslog daemon (docker-mailserver starts its
 * rsyslog after its supervisord's programs; early boot) would have its
 * start-up lines dropped by syslog(3) without a word.  While the syslog
 * socket cannot be reached, every line goes to stderr as well (supervisord
 * and systemd keep it); syslog(3) itself reconnects once the socket is
 * there, and so, every second at most, does this probe.
 */
static int
syslog_reachable(char *why, size_t len)
{
	struct sockaddr_un	 sun;
	int			 fd, type, ok;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, _PATH_LOG, sizeof(_PATH_LOG));
	/* syslog(3) tries a datagram socket first, then a stream one. */
	for (type = SOCK_DGRAM;; type = SOCK_STREAM) {
		if ((fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) == -1)
			break;
		ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		if (!ok)
			snprintf(why, len, "%s: %s", _PATH_LOG,
			    strerror(errno));
		close(fd);
		if (ok)
			return (1);
		if (errno != EPROTOTYPE || type == SOCK_STREAM)
			break;
	}
	return (0);
}

static void
log_hearing(void)
{
	struct timespec	ts;
	char		why[160] = "no socket";

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (log_unheard && ts.tv_sec == log_probed)
		return;
	log_probed = ts.tv_sec;
	if (syslog_reachable(why, sizeof(why))) {
		if (log_unheard) {
			/* Said while still unheard: to stderr too. */
			log_notice("syslog is reachable: logging there alone "
			    "from now on");
			log_unheard = 0;
		}
		return;
	}
	if (!log_unheard) {
		log_unheard = 1;
		log_warnx("syslog: %s; logging to stderr as well until "
		    "syslog is reachable", why);
	}
}

void
log_open(int to_stderr, enum log_level level, int echo)
{
	log_max = level;
	log_pid = (long)getpid();
	if (to_stderr) {
		log_syslog = 0;
		return;
	}
	openlog("natguard", LOG_PID | LOG_NDELAY, LOG_MAIL);
	log_syslog = 1;
	log_echo = echo;
	log_unheard = 0;
	log_hearing();
}

void
log_set_level(enum log_level level)
{
	log_max = level;
}

int
log_enabled(enum log_level level)
{
	return (level <= log_max);
}

void
log_close(void)
{
	log_flush();
	log_kick = NULL;
	if (log_syslog)
		closelog();
	log_syslog = 0;
}

static void
write_all(const char *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = write(STDERR_FILENO, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

void
log_flush(void)
{
	if (log_npending > 0)
		write_all(log_pending, log_npending);
	log_npending = 0;
}

/* kick is called when a line is held back; it must see to log_flush(). */
void
log_batch(void (*kick)(void))
{
	log_flush();
	log_kick = kick;
}

/* "natguard[PID]: ", made once. */
static const char *
log_ident(size_t *len)
{
	static char	ident[64];
	static long	pid;
	long		now = log_pid ? log_pid : (long)getpid();

	if (pid != now) {
		pid = now;
		snprintf(ident, sizeof(ident), "natguard[%ld]: ", pid);
	}
	*len = strlen(ident);
	return (ident);
}

/*
 * One line, written whole (one write(2), or a part of one batch), so that
 * lines from a busy daemon never interleave.
 */
static void
log_stderr(const char *prefix, const char *msg, size_t mlen, int batch)
{
	struct iovec	 iov[4];
	const char	*ident;
	size_t		 ilen, plen = strlen(prefix), total;
	char		*p;

	ident = log_ident(&ilen);
	total = ilen + plen + mlen + 1;
	if (!batch || log_kick == NULL || total > sizeof(log_pending)) {
		log_flush();
		iov[0].iov_base = (void *)ident;
		iov[0].iov_len = ilen;
		iov[1].iov_base = (void *)prefix;
		iov[1].iov_len = plen;
		iov[2].iov_base = (void *)msg;
		iov[2].iov_len = mlen;
		iov[3].iov_base = (void *)"\n";
		iov[3].iov_len = 1;
		(void)writev(STDERR_FILENO, iov, 4);
		return;
	}
	if (log_npending + total > sizeof(log_pending))
		log_flush();
	if (log_npending == 0)
		log_kick();
	p = log_pending + log_npending;
	memcpy(p, ident, ilen);
	memcpy(p + ilen, prefix, plen);
	memcpy(p + ilen + plen, msg, mlen);
	p[total - 1] = '\n';
	log_npending += total;
}

static void
log_emit(enum log_level level, const char *msg, size_t len, int batch)
{
	if (level > log_max)
		return;
	if (log_syslog) {
		if (log_unheard)
			log_hearing();
		syslog(log_levels[level].priority, "%s%s",
		    log_levels[level].prefix, msg);
		if (!log_echo && !log_unheard)
			return;
	}
	log_stderr(log_levels[level].prefix, msg, len, batch);
}

/*
 * Messages carry what clients sent (an unknown request=, a client_address
 * that does not parse): a control character becomes "?", so that no CR,
 * escape sequence or newline of theirs reaches a terminal or a log file.
 * Decision lines are quoted by report.c already.
 */
static void
log_defang(char *msg)
{
	unsigned char	*p;

	for (p = (unsigned char *)msg; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
}

static void
log_vemit(enum log_level level, const char *fmt, va_list ap)
{
	char	*msg;

	if (level > log_max)
		return;
	if (vasprintf(&msg, fmt, ap) == -1)
		return;
	log_defang(msg);
	log_emit(level, msg, strlen(msg), 0);
	free(msg);
}

#define LOG_FUNC(fn, level)				\
void							\
fn(const char *fmt, ...)				\
{							\
	va_list	ap;					\
							\
	va_start(ap, fmt);				\
	log_vemit(level, fmt, ap);			\
	va_end(ap);					\
}
LOG_FUNC(log_error, LOG_LVL_ERROR)
LOG_FUNC(log_warnx, LOG_LVL_WARNING)
LOG_FUNC(log_notice, LOG_LVL_NOTICE)
LOG_FUNC(log_info, LOG_LVL_INFO)
LOG_FUNC(log_debug, LOG_LVL_DEBUG)

/* A decision line: info level, no severity prefix (SPEC section 7). */
void
log_plain(const char *msg, size_t len)
{
	log_emit(LOG_LVL_INFO, msg, len, 1);
}

static NG_DEAD void
vfatal(int with_errno, const char *fmt, va_list ap)
{
	char	*msg, *full;
	int	 saved = errno;

	if (vasprintf(&msg, fmt, ap) == -1)
		exit(1);
	if (with_errno) {
		if (asprintf(&full, "%s: %s", msg, strerror(saved)) == -1)
			exit(1);
		free(msg);
		msg = full;
	}
	if (log_syslog)
		syslog(LOG_CRIT, "fatal: %s", msg);
	log_stderr("fatal: ", msg, strlen(msg), 0);
	free(msg);
	exit(1);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vfatal(1, fmt, ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vfatal(0, fmt, ap);
}
