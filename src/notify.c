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
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

/*
 * The readiness protocol of systemd's Type=notify ("READY=1", "RELOADING=1",
 * "STOPPING=1", "STATUS=..."), spoken directly: a datagram to the unix
 * socket named by $NOTIFY_SOCKET.  The test suite listens there too, so it
 * waits for the daemon to be ready instead of sleeping.  The socket does
 * not block: a supervisor that stops reading (its queue full after a storm
 * of SIGHUPs, say) loses a status message, not the daemon's event loop.
 */
/* $NOTIFY_SOCKET's address; 0 when there is none (or it is unusable). */
static socklen_t
notify_addr(struct sockaddr_un *sun)
{
	const char	*path;

	if ((path = getenv("NOTIFY_SOCKET")) == NULL || *path == '\0')
		return (0);
	if ((path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun->sun_path))
		return (0);
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, strlen(path));
	if (path[0] == '@')
		sun->sun_path[0] = '\0';	/* abstract namespace */
	return (offsetof(struct sockaddr_un, sun_path) + strlen(path));
}

void
notify(const char *fmt, ...)
{
	struct sockaddr_un	 sun;
	char			*msg;
	va_list			 ap;
	socklen_t		 slen;
	int			 fd, n;

	if ((slen = notify_addr(&sun)) == 0)
		return;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) != -1) {
		(void)sendto(fd, msg, n, MSG_NOSIGNAL,
		    (struct sockaddr *)&sun, slen);
		close(fd);
	}
	free(msg);
}

#define NOTIFY_FD_TRIES		20
#define NOTIFY_FD_WAIT_MS	50

/*
 * Hand a descriptor to the supervisor's file descriptor store ("FDSTORE=1"
 * with the descriptor attached, SCM_RIGHTS): systemd keeps it open and
 * passes it to the next process (LISTEN_FDS).  Returns 0 once sent, -1
 * when it could not be (then the caller still owns what it holds).
 */
int
notify_fd(const char *msg, int sendfd)
{
	struct sockaddr_un	 sun;
	struct msghdr		 mh;
	struct iovec		 iov;
	struct cmsghdr		*cm;
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(sizeof(int))];
	}			 ctl;
	struct pollfd		 pfd;
	socklen_t		 slen;
	ssize_t			 n = -1;
	int			 fd, tries;

	if ((slen = notify_addr(&sun)) == 0)
		return (-1);
	/* Connected, so that poll() can wait for room in systemd's queue. */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return (-1);
	if (connect(fd, (struct sockaddr *)&sun, slen) == -1) {
		close(fd);
		return (-1);
	}
	memset(&mh, 0, sizeof(mh));
	memset(&ctl, 0, sizeof(ctl));
	iov.iov_base = (void *)msg;
	iov.iov_len = strlen(msg);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &sendfd, sizeof(int));
	/*
	 * A stopping process hands many connections over at once, and a
	 * unix datagram queue holds net.unix.max_dgram_qlen (10 where
	 * systemd's sysctl.d does not raise it): wait for room, a while.
	 */
	pfd.fd = fd;
	pfd.events = POLLOUT;
	for (tries = 0; tries < NOTIFY_FD_TRIES; tries++) {
		if ((n = sendmsg(fd, &mh, MSG_NOSIGNAL)) != -1 ||
		    (errno != EAGAIN && errno != EWOULDBLOCK))
			break;
		(void)poll(&pfd, 1, NOTIFY_FD_WAIT_MS);
	}
	close(fd);
	return (n == (ssize_t)iov.iov_len ? 0 : -1);
}
