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
#include <sys/types.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

/*
 * Who holds a TCP socket on this host: the kernel's socket table
 * (NETLINK_SOCK_DIAG, as ss(8) reads it: no library, no /proc/net
 * parsing) and the process whose descriptor names the socket's inode
 * (/proc/PID/fd).  For the hiders on the mail host itself: the program at
 * the other end of Postfix's connections from loopback, and the one
 * holding a public SMTP port.  Reading another user's /proc/PID/fd needs
 * root (or CAP_SYS_PTRACE): the daemon, once it has dropped privileges,
 * may see the sockets but not their owners, and says so.
 */

#define DIAG_BUF	16384

/* A dual-stack socket's IPv4 peer (::ffff:a.b.c.d) is IPv4. */
static void
unmap(struct addr *a)
{
	static const uint8_t	v4mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (a->family == AF_INET6 && memcmp(a->bytes, v4mapped, 12) == 0) {
		a->family = AF_INET;
		memmove(a->bytes, a->bytes + 12, 4);
		memset(a->bytes + 4, 0, sizeof(a->bytes) - 4);
	}
}

/* One dump of the family's TCP sockets in the states of the mask. */
static int
dump_family(int family, uint32_t states, struct sockent **v, size_t *n,
    size_t *cap)
{
	struct {
		struct nlmsghdr		nlh;
		struct inet_diag_req_v2	r;
	} req;
	struct sockaddr_nl	 sa = { .nl_family = AF_NETLINK };
	struct nlmsghdr		*h;
	struct inet_diag_msg	*m;
	struct sockent		*e;
	char			*buf;
	ssize_t			 len;
	int			 fd, done = 0, rc = -1, alen;

	if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
	    NETLINK_SOCK_DIAG)) == -1)
		return (-1);
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.r.sdiag_family = family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = states;
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa,
	    sizeof(sa)) == -1) {
		close(fd);
		return (-1);
	}
	buf = xmalloc(DIAG_BUF);
	alen = family == AF_INET ? 4 : 16;
	while (!done) {
		if ((len = recv(fd, buf, DIAG_BUF, 0)) <= 0)
			goto out;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
		    h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				done = 1;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				errno = EPROTO;
				goto out;
			}
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				continue;
			m = NLMSG_DATA(h);
			if (*n == *cap) {
				*cap = *cap ? *cap * 2 : 64;
				*v = xreallocarray(*v, *cap, sizeof(**v));
			}
			e = &(*v)[(*n)++];
			memset(e, 0, sizeof(*e));
			e->src.family = e->dst.family = family;
			memcpy(e->src.bytes, m->id.idiag_src, alen);
			memcpy(e->dst.bytes, m->id.idiag_dst, alen);
			e->sport = ntohs(m->id.idiag_sport);
			e->dport = ntohs(m->id.idiag_dport);
			e->state = m->idiag_state;
			e->uid = m->idiag_uid;
			e->inode = m->idiag_inode;
		}
	}
	rc = 0;
out:
	free(buf);
	close(fd);
	return (rc);
}

/*
 * This host's TCP sockets (IPv4 and IPv6) in the states of the mask
 * (SOCKDIAG_LISTEN, SOCKDIAG_ESTABLISHED), into *v (malloc()ed, *n of
 * them; the caller frees it).  An IPv4-mapped address on an IPv6 socket
 * is given as IPv4.  Returns -1 with errno when the kernel will not say.
 */
int
sockdiag_tcp(uint32_t states, struct sockent **v, size_t *n)
{
	size_t	cap = 0, i;

	*v = NULL;
	*n = 0;
	if (dump_family(AF_INET, states, v, n, &cap) == -1 ||
	    dump_family(AF_INET6, states, v, n, &cap) == -1) {
		free(*v);
		*v = NULL;
		*n = 0;
		return (-1);
	}
	for (i = 0; i < *n; i++) {
		unmap(&(*v)[i].src);
		unmap(&(*v)[i].dst);
	}
	return (0);
}

/* "socket:[INODE]" */
static int
fd_is_socket(const char *path, unsigned long inode)
{
	char	link[64], want[40];
	ssize_t	len;

	if ((len = readlink(path, link, sizeof(link) - 1)) <= 0)
		return (0);
	link[len] = '\0';
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	return (strcmp(link, want) == 0);
}

static int
pid_holds(const char *proc, const char *pid, unsigned long inode,
    int *denied)
{
	DIR		*d;
	struct dirent	*de;
	char		*path, *fdpath;
	int		 found = 0;

	xasprintf(&path, "%s/%s/fd", proc, pid);
	if ((d = opendir(path)) == NULL) {
		if (errno == EACCES || errno == EPERM)
			*denied = 1;
		free(path);
		return (0);
	}
	while (!found && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		xasprintf(&fdpath, "%s/%s", path, de->d_name);
		found = fd_is_socket(fdpath, inode);
		free(fdpath);
	}
	closedir(d);
	free(path);
	return (found);
}

/*
 * The process holding the socket with that inode, from PROC (/proc, or a
 * fixture tree): its pid and name (/proc/PID/comm).  Returns 0 when found;
 * -1 when not, with *denied set when some process's descriptors could
 * not be read (natguard is not root there).
 */
int
sockdiag_owner(const char *proc, unsigned long inode, struct sockowner *o,
    int *denied)
{
	DIR		*d;
	struct dirent	*de;
	char		*path, *comm;
	uint64_t	 pid;

	*denied = 0;
	memset(o, 0, sizeof(*o));
	if (inode == 0 || (d = opendir(proc)) == NULL)
		return (-1);
	while ((de = readdir(d)) != NULL) {
		if (strspn(de->d_name, "0123456789") != strlen(de->d_name) ||
		    !pid_holds(proc, de->d_name, inode, denied))
			continue;
		if (parse_u64(de->d_name, 1, INT32_MAX, &pid) == 0)
			o->pid = (pid_t)pid;
		xasprintf(&path, "%s/%s/comm", proc, de->d_name);
		if ((comm = read_small(path)) != NULL) {
			comm[strcspn(comm, "\n")] = '\0';
			snprintf(o->comm, sizeof(o->comm), "%s", comm);
			free(comm);
		}
		free(path);
		closedir(d);
		return (0);
	}
	closedir(d);
	return (-1);
}

int
sockdiag_same_addr(const struct addr *a, const struct addr *b)
{
	return (a->family == b->family &&
	    memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0);
}

static int
any_addr(const struct addr *a)
{
	static const uint8_t	zero[16];

	return (memcmp(a->bytes, zero, a->family == AF_INET ? 4 : 16) == 0);
}

/*
 * Postfix's own processes, and natguard: their connections to a local
 * listener are no hider's.  master holds the listening sockets and hands
 * them to its children, so any of Postfix's may be found holding one.
 */
int
sockdiag_postfix(const char *comm)
{
	static const char	*names[] = { "master", "smtpd", "smtp", "lmtp",
	    "postscreen", "tlsproxy", NULL };
	int			 i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(comm, names[i]) == 0)
			return (1);
	return (0);
}

/*
 * The program holding connections from address a (loopback, this host's
 * own) to a listener of this host, as the daemon can see it: its name
 * and pid in *o.  Returns 0 when found, -1 when there is none, -2 when
 * some owner could not be seen (not root).
 */
int
sockdiag_peer_of(const char *proc, const struct addr *a, struct sockowner *o)
{
	struct sockent	*v;
	size_t		 n, i, j;
	int		 denied = 0, d, rc = -1;

	if (sockdiag_tcp(SOCKDIAG_LISTEN | SOCKDIAG_ESTABLISHED, &v, &n) != 0)
		return (-1);
	for (i = 0; i < n && rc != 0; i++) {
		if (v[i].state != 1 || !sockdiag_same_addr(&v[i].src, a))
			continue;
		for (j = 0; j < n; j++)
			if (v[j].state == 10 && v[j].sport == v[i].dport &&
			    (sockdiag_same_addr(&v[j].src, &v[i].dst) ||
			    (any_addr(&v[j].src) &&
			    v[j].src.family == v[i].dst.family)))
				break;
		if (j == n)
			continue;
		/*
		 * The socket is there and nobody visible holds it: its owner
		 * is out of sight (another user's, or /proc hides it).
		 */
		if (sockdiag_owner(proc, v[i].inode, o, &d) != 0) {
			denied = 1;
			continue;
		}
		if (!sockdiag_postfix(o->comm) &&
		    strcmp(o->comm, "natguard") != 0)
			rc = 0;
	}
	free(v);
	return (rc == 0 ? 0 : denied ? -2 : -1);
}
