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
void
notify(const char *fmt, ...)
{
	struct sockaddr_un	 sun;
	const char		*path;
	char			*msg;
	va_list			 ap;
	socklen_t		 slen;
	int			 fd, n;

	if ((path = getenv("NOTIFY_SOCKET")) == NULL || *path == '\0')
		return;
	if ((path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';	/* abstract namespace */
	slen = offsetof(struct sockaddr_un, sun_path) + strlen(path);
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
