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

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "natguard.h"

/*
 * The audit_log: one JSON object per line per decision, appended.  The file
 * is reopened on SIGHUP so that logrotate can move it away.  A write error
 * is logged, never fatal: the mail must flow even when the disk is full.
 */

static int	audit_fd = -1;

void
audit_open(const char *path)
{
	audit_close();
	if (path == NULL || *path == '\0')
		return;
	audit_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (audit_fd == -1)
		log_error("audit_log %s: %s", path, strerror(errno));
}

void
audit_close(void)
{
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = -1;
}

void
audit_write(const struct decision *d, const struct request *req)
{
	json_t	*o;
	char	*s, *line;
	ssize_t	 n;
	int	 len;

	if (audit_fd == -1)
		return;
	o = report_audit(d, req, time(NULL));
	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		fatalx("json_dumps");
	json_decref(o);
	len = xasprintf(&line, "%s\n", s);
	free(s);
	/* O_APPEND: one write per record keeps records whole. */
	n = write(audit_fd, line, len);
	if (n != len)
		log_error("audit_log write: %s",
		    n == -1 ? strerror(errno) : "short write");
	free(line);
}
