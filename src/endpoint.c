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

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

/*
 * Listen endpoints: inet:IPV4:PORT, inet:[IPV6]:PORT and unix:PATH, as
 * Postfix's check_policy_service names them.  Hosts are numeric: a policy
 * server that binds whatever a name resolves to today is a surprise.
 */

/* Postfix opens policy connections in bursts; the kernel caps it. */
#define LISTEN_BACKLOG	4096

struct endpoint {
	int			 family;
	struct sockaddr_storage	 ss;
	socklen_t		 slen;
	const char		*path;	/* unix, into the spec */
};

static int
endpoint_parse(const char *spec, struct endpoint *ep, const char **why)
{
	char			 host[INET6_ADDRSTRLEN + 2];
	const char		*p, *colon;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ep->ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ep->ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ep->ss;
	uint64_t		 port;
	size_t			 hlen;

	memset(ep, 0, sizeof(*ep));
	*why = "expected inet:IPV4:PORT, inet:[IPV6]:PORT or unix:PATH";
	if (strncmp(spec, "unix:", 5) == 0) {
		p = spec + 5;
		if (*p == '\0' || strlen(p) >= sizeof(sun->sun_path)) {
			*why = "unix socket path empty or too long";
			return (-1);
		}
		ep->family = AF_UNIX;
		ep->path = p;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, p, strlen(p));
		ep->slen = sizeof(*sun);
		return (0);
	}
	if (strncmp(spec, "inet:", 5) != 0)
		return (-1);
	p = spec + 5;
	if ((colon = strrchr(p, ':')) == NULL)
		return (-1);
	if (parse_u64(colon + 1, 0, 65535, &port) != 0) {
		*why = "bad port";
		return (-1);
	}
	hlen = colon - p;
	if (hlen >= 2 && p[0] == '[' && p[hlen - 1] == ']') {
		p++;
		hlen -= 2;
		ep->family = AF_INET6;
	} else
		ep->family = AF_INET;
	if (hlen == 0 || hlen >= sizeof(host))
		return (-1);
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	if (ep->family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*why = "not an IPv6 address";
			return (-1);
		}
		ep->slen = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			*why = "not an IPv4 address (IPv6 goes in brackets)";
			return (-1);
		}
		ep->slen = sizeof(*sin);
	}
	return (0);
}

int
endpoint_check(const char *spec, const char **why)
{
	struct endpoint	ep;

	return (endpoint_parse(spec, &ep, why));
}

/* A stale socket is removed; any other file in the way is an error. */
static int
unix_prepare(const char *path, char **err)
{
	struct stat	st;

	if (lstat(path, &st) == -1)
		return (errno == ENOENT ? 0 : -1);
	if (!S_ISSOCK(st.st_mode)) {
		xasprintf(err, "%s exists and is not a socket", path);
		return (-1);
	}
	if (unlink(path) == -1) {
		xasprintf(err, "unlink %s: %s", path, strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * A connected, blocking socket to the endpoint within timeout_ms, or -1
 * and *err: for natguard doctor, which asks the running daemon.
 */
int
endpoint_connect(const char *spec, int timeout_ms, char **err)
{
	struct endpoint	 ep;
	struct pollfd	 pfd;
	const char	*why;
	socklen_t	 len = sizeof(int);
	int		 fd, e = 0;

	if (endpoint_parse(spec, &ep, &why) != 0) {
		xasprintf(err, "%s", why);
		return (-1);
	}
	if ((fd = socket(ep.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		xasprintf(err, "socket: %s", strerror(errno));
		return (-1);
	}
	if (connect(fd, (struct sockaddr *)&ep.ss, ep.slen) == -1) {
		if (errno != EINPROGRESS) {
			e = errno;
			goto fail;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, timeout_ms) != 1) {
			e = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
			e = errno;
		if (e != 0)
			goto fail;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == -1) {
		e = errno;
		goto fail;
	}
	return (fd);
fail:
	close(fd);
	xasprintf(err, "connect: %s", strerror(e));
	return (-1);
}

/* A listening, non-blocking socket for the endpoint, or -1 and *err. */
int
endpoint_bind(const char *spec, unsigned int mode, char **err)
{
	struct endpoint	 ep;
	const char	*why;
	int		 fd, one = 1;

	*err = NULL;
	if (endpoint_parse(spec, &ep, &why) != 0) {
		xasprintf(err, "%s: %s", spec, why);
		return (-1);
	}
	if (ep.family == AF_UNIX && unix_prepare(ep.path, err) != 0) {
		if (*err == NULL)
			xasprintf(err, "%s: %s", spec, strerror(errno));
		return (-1);
	}
	fd = socket(ep.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		xasprintf(err, "%s: socket: %s", spec, strerror(errno));
		return (-1);
	}
	if (ep.family != AF_UNIX)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
	if (ep.family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, (struct sockaddr *)&ep.ss, ep.slen) == -1) {
		xasprintf(err, "%s: bind: %s", spec, strerror(errno));
		close(fd);
		return (-1);
	}
	if (ep.family == AF_UNIX && chmod(ep.path, mode) == -1) {
		xasprintf(err, "%s: chmod: %s", spec, strerror(errno));
		close(fd);
		return (-1);
	}
	if (listen(fd, LISTEN_BACKLOG) == -1) {
		xasprintf(err, "%s: listen: %s", spec, strerror(errno));
		close(fd);
		return (-1);
	}
	return (fd);
}

/* The endpoint a listening socket is bound to, in listen syntax. */
char *
endpoint_name(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 slen = sizeof(ss);
	char			 host[INET6_ADDRSTRLEN], *s;

	if (getsockname(fd, (struct sockaddr *)&ss, &slen) == -1)
		return (xstrdup("?"));
	switch (ss.ss_family) {
	case AF_INET:
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
		    host, sizeof(host));
		xasprintf(&s, "inet:%s:%u", host,
		    ntohs(((struct sockaddr_in *)&ss)->sin_port));
		return (s);
	case AF_INET6:
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    host, sizeof(host));
		xasprintf(&s, "inet:[%s]:%u", host,
		    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		return (s);
	case AF_UNIX:
		xasprintf(&s, "unix:%s", ((struct sockaddr_un *)&ss)->sun_path);
		return (s);
	}
	return (xstrdup("?"));
}

/*
 * Sockets handed over by systemd (sd_listen_fds(3)'s protocol, without
 * libsystemd): LISTEN_PID is ours and LISTEN_FDS descriptors start at 3.
 * A listening stream socket is a listener (natguard.socket's); a
 * connected one a client connection an earlier process stored in
 * systemd's descriptor store (FDSTORE) when it stopped.  The variables
 * are removed, so that nothing natguard starts takes them for its own.
 * Returns how many listeners (0: not started so), the connections in
 * *conns and *nconns, or -1 with *err.
 */
#define LISTEN_FDS_START	3

int
endpoint_inherited(int **fdsp, int **connsp, int *nconns, char **err)
{
	const char	*pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
	uint64_t	 p, count, i;
	int		*fds, *conns, fd, listening, type, flags, nl = 0;
	socklen_t	 len;

	*fdsp = *connsp = NULL;
	*nconns = 0;
	if (pid == NULL || n == NULL)
		return (0);
	if (parse_u64(pid, 1, UINT32_MAX, &p) != 0 || (pid_t)p != getpid())
		return (0);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (parse_u64(n, 0, 65536, &count) != 0) {
		xasprintf(err, "LISTEN_FDS=%s: expected a count", n);
		return (-1);
	}
	fds = xcalloc(count > 0 ? count : 1, sizeof(*fds));
	conns = xcalloc(count > 0 ? count : 1, sizeof(*conns));
	for (i = 0; i < count; i++) {
		fd = LISTEN_FDS_START + (int)i;
		len = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
		    type != SOCK_STREAM) {
			xasprintf(err, "descriptor %d from systemd is not a "
			    "stream socket (ListenStream=)", fd);
			goto bad;
		}
		len = sizeof(listening);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
		    &len) == -1) {
			xasprintf(err, "descriptor %d from systemd: %s", fd,
			    strerror(errno));
			goto bad;
		}
		if ((flags = fcntl(fd, F_GETFL)) == -1 ||
		    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
			xasprintf(err, "descriptor %d from systemd: %s", fd,
			    strerror(errno));
			goto bad;
		}
		if (listening)
			fds[nl++] = fd;
		else
			conns[(*nconns)++] = fd;
	}
	*fdsp = fds;
	*connsp = conns;
	return (nl);
bad:
	free(fds);
	free(conns);
	*nconns = 0;
	return (-1);
}
