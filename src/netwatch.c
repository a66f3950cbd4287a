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
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

/*
 * Address, route and link changes, as the kernel announces them on
 * rtnetlink: a new Docker network (its bridge and address), one removed,
 * a container's routes.  Announcements come in bursts (one container start
 * is a dozen), so the callback runs once the burst has been quiet for the
 * debounce interval, told how many changes it covers.  Only the kernel's
 * messages count; an overrun of the socket's buffer (ENOBUFS: changes
 * were lost) counts as a change too.
 */

#define NETWATCH_RCVBUF		(1024 * 1024)

struct netwatch {
	int			 fd;
	struct event		*ev;
	struct event		*timer;
	struct timeval		 debounce;
	unsigned long		 changes;
	netwatch_cb		 cb;
	void			*arg;
};

/* The messages of one datagram that say the gateway set may change. */
static unsigned long
count_changes(const void *buf, size_t len)
{
	const struct nlmsghdr	*nh;
	unsigned long		 n = 0;
	int			 left = (int)len;

	for (nh = buf; NLMSG_OK(nh, left); nh = NLMSG_NEXT(nh, left)) {
		switch (nh->nlmsg_type) {
		case RTM_NEWLINK:
		case RTM_DELLINK:
		case RTM_NEWADDR:
		case RTM_DELADDR:
		case RTM_NEWROUTE:
		case RTM_DELROUTE:
			n++;
			break;
		}
	}
	return (n);
}

static void
netwatch_read(evutil_socket_t fd, short what, void *arg)
{
	struct netwatch		*nw = arg;
	struct sockaddr_nl	 from;
	socklen_t		 fromlen;
	unsigned char		 buf[16384];
	ssize_t			 n;

	(void)what;
	for (;;) {
		fromlen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&from, &fromlen);
		if (n == -1 && errno == ENOBUFS) {
			nw->changes++;		/* some were lost */
			continue;
		}
		if (n == -1)
			break;		/* EAGAIN: drained */
		if (fromlen != sizeof(from) || from.nl_pid != 0)
			continue;	/* not the kernel */
		nw->changes += count_changes(buf, (size_t)n);
	}
	if (nw->changes > 0 && !evtimer_pending(nw->timer, NULL))
		evtimer_add(nw->timer, &nw->debounce);
}

static void
netwatch_fire(evutil_socket_t fd, short what, void *arg)
{
	struct netwatch	*nw = arg;
	unsigned long	 n = nw->changes;

	(void)fd;
	(void)what;
	nw->changes = 0;
	nw->cb(n, nw->arg);
}

/*
 * Watch for changes; cb runs from the loop debounce_ms after the first
 * change of a burst.  NULL (with the reason logged) where the kernel
 * refuses the socket: the periodic re-scan still runs.
 */
struct netwatch *
netwatch_new(struct event_base *base, int debounce_ms, netwatch_cb cb,
    void *arg)
{
	struct netwatch		*nw;
	struct sockaddr_nl	 sa;
	int			 fd, size = NETWATCH_RCVBUF;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    NETLINK_ROUTE);
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
	    RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		log_warnx("gateways: no rtnetlink (%s): network changes are "
		    "seen at the next gateway_scan_interval", strerror(errno));
		if (fd != -1)
			close(fd);
		return (NULL);
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	nw = xcalloc(1, sizeof(*nw));
	nw->fd = fd;
	nw->cb = cb;
	nw->arg = arg;
	nw->debounce.tv_sec = debounce_ms / 1000;
	nw->debounce.tv_usec = (debounce_ms % 1000) * 1000;
	nw->ev = event_new(base, fd, EV_READ | EV_PERSIST, netwatch_read, nw);
	nw->timer = evtimer_new(base, netwatch_fire, nw);
	if (nw->ev == NULL || nw->timer == NULL || event_add(nw->ev, NULL) ==
	    -1)
		fatalx("netwatch: event_new");
	return (nw);
}

void
netwatch_free(struct netwatch *nw)
{
	if (nw == NULL)
		return;
	event_free(nw->ev);
	event_free(nw->timer);
	close(nw->fd);
	free(nw);
}
