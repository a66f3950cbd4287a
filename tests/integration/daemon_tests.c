/*
 * The daemon, started for real, spoken to over inet (IPv4, IPv6) and unix
 * sockets: requests, pipelining, every kind of malformed input, limits,
 * timeouts, signals.  After each bad input the daemon must still answer,
 * and it must exit 0 with no sanitizer report.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include <check.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define NELEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define T		5000	/* ms: a reply that takes longer is lost */

/*
 * No SPF here (tests/integration/dns_tests.c has it): no DNS traffic.
 * Two listeners: IPv4 and IPv6 loopback (IPv4 twice without ::1).
 */
static const char *
base_config(void)
{
	static char	text[256];

	if (text[0] == '\0')
		snprintf(text, sizeof(text), "listen = inet:127.0.0.1:0, %s\n"
		    "gateways = 172.20.0.1, fd00:cafe::1\n"
		    "spf = no\nnat_spf_probe = no\n", loopback6_endpoint());
	return (text);
}

static const char *defer_reply = "action=DEFER 4.3.5 Client address hidden "
    "by NAT on this server; please try again later";

static struct daemon	D;

static void
start(const char *extra)
{
	char	*text;

	ck_assert(asprintf(&text, "%s%s", base_config(), extra) != -1);
	memset(&D, 0, sizeof(D));
	ck_assert_msg(daemon_start(&D, text) == 0, "daemon did not start");
	free(text);
}

static void
stop(void)
{
	ck_assert_msg(daemon_stop(&D) == 0, "daemon did not exit cleanly");
}

/* One request on a connection, its reply. */
static char *
ask(int fd, const char *client, const char *instance)
{
	char	*req = policy_request(client, instance), *reply;

	ck_assert_int_eq(send_str(fd, req), 0);
	free(req);
	reply = read_reply(fd, T);
	ck_assert_msg(reply != NULL, "no reply for %s", client);
	return (reply);
}

static void
assert_serves(const char *endpoint)
{
	int	 fd = conn_open(endpoint);
	char	*r;

	ck_assert_msg(fd != -1, "cannot connect to %s", endpoint);
	r = ask(fd, "172.20.0.1", "i1");
	ck_assert_str_eq(r, defer_reply);
	free(r);
	close(fd);
}

/* The transports: each answers the same way. */
static const struct {
	const char	*label;
	const char	*client;
	const char	*reply;
} transport_cases[] = {
	{ "gateway IPv4", "172.20.0.1", NULL },
	{ "gateway IPv4-mapped", "::ffff:172.20.0.1", NULL },
	{ "gateway IPv6", "fd00:cafe::1", NULL },
	{ "external client", "192.0.2.10", "action=DUNNO" },
	{ "loopback skipped", "127.0.0.1", "action=DUNNO" },
};

START_TEST(test_transport)
{
	const char	*kind[] = { "inet:127.", "inet:[::1]", "unix:" };
	char		*extra, *r, inst[16];
	size_t		 i;
	int		 fd, k;

	ck_assert(asprintf(&extra, "listen = inet:127.0.0.1:0, "
	    "%s, unix:%s/ng.sock\n", loopback6_endpoint(), harness_dir()) !=
	    -1);
	memset(&D, 0, sizeof(D));
	/* listen is given twice otherwise: build the file by hand. */
	{
		char	*text;

		ck_assert(asprintf(&text, "%sgateways = 172.20.0.1, "
		    "fd00:cafe::1\nspf = no\nnat_spf_probe = no\n", extra) !=
		    -1);
		ck_assert(daemon_start(&D, text) == 0);
		free(text);
	}
	free(extra);
	ck_assert_int_eq(D.nlisten, 3);
	for (k = 0; k < 3; k++) {
		const char	*ep = NULL;

		if (k == 1 && !have_loopback6())
			continue;	/* said SKIP */
		for (i = 0; i < (size_t)D.nlisten; i++)
			if (strncmp(D.listen[i], kind[k], strlen(kind[k])) == 0)
				ep = D.listen[i];
		ck_assert_msg(ep != NULL, "no %s listener", kind[k]);
		fd = conn_open(ep);
		ck_assert_msg(fd != -1, "connect %s", ep);
		/* Many requests on one connection, as Postfix sends them. */
		for (i = 0; i < NELEMS(transport_cases); i++) {
			snprintf(inst, sizeof(inst), "%d.%zu", k, i);
			r = ask(fd, transport_cases[i].client, inst);
			ck_assert_msg(strcmp(r, transport_cases[i].reply ?
			    transport_cases[i].reply : defer_reply) == 0,
			    "%s over %s: %s", transport_cases[i].label, ep, r);
			free(r);
		}
		close(fd);
	}
	ck_assert(log_has(&D, "NOQUEUE: action=DEFER reason=nat-gateway "
	    "client=172.20.0.1 gateway_source=static helo=mail.example.org "
	    "from=<a@example.org> to=<b@example.com> instance=0.0 "
	    "explanation=\"client address 172.20.0.1 is listed in the "
	    "gateways setting"));
	ck_assert(log_has(&D, "action=DEFER reason=nat-gateway "
	    "client=fd00:cafe::1 gateway_source=static"));
	ck_assert(log_has(&D, "action=DUNNO reason=skip-address "
	    "client=127.0.0.1"));
	stop();
}
END_TEST

START_TEST(test_unix_mode)
{
	struct stat	 st;
	char		*text, path[300];

	snprintf(path, sizeof(path), "%s/mode.sock", harness_dir());
	ck_assert(asprintf(&text, "listen = unix:%s\nunix_socket_mode = 0660\n"
	    "gateways = 172.20.0.1\nspf = no\nnat_spf_probe = no\n", path) !=
	    -1);
	memset(&D, 0, sizeof(D));
	ck_assert(daemon_start(&D, text) == 0);
	free(text);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0660);
	stop();
	/* Removed at exit. */
	ck_assert_int_eq(stat(path, &st), -1);
}
END_TEST

/* user = nobody: the daemon runs as nobody, its socket is nobody's. */
START_TEST(test_user)
{
	struct stat	 st;
	char		*text, path[300], status[64], line[256];
	FILE		*f;
	long		 uid = -1;

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: test_user needs root\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/user.%d.sock", harness_dir(),
	    (int)getpid());
	ck_assert(asprintf(&text, "listen = unix:%s\nuser = nobody\n"
	    "gateways = 172.20.0.1\nspf = no\nnat_spf_probe = no\n", path) !=
	    -1);
	memset(&D, 0, sizeof(D));
	ck_assert(daemon_start(&D, text) == 0);
	free(text);
	snprintf(status, sizeof(status), "/proc/%ld/status", (long)D.pid);
	ck_assert_ptr_ne(f = fopen(status, "r"), NULL);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Uid: %ld", &uid) == 1)
			break;
	fclose(f);
	ck_assert_int_ne(uid, -1);
	ck_assert_int_ne(uid, 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq((long)st.st_uid, uid);
	ck_assert(log_has(&D, "running as nobody"));
	assert_serves(D.listen[0]);
	stop();
}
END_TEST

/* A line of /proc/PID/status, after its "Name:". */
static void
proc_status(pid_t pid, const char *name, char *out, size_t len)
{
	char	 path[64], line[512];
	FILE	*f;

	*out = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, strlen(name)) == 0) {
			snprintf(out, len, "%s", line + strlen(name));
			out[strcspn(out, "\n")] = '\0';
			break;
		}
	fclose(f);
}

/* A free TCP port below 1024 on 127.0.0.1, or 0. */
static int
privileged_port(void)
{
	struct sockaddr_in	sin;
	int			fd, port;

	for (port = 1000; port > 900; port--) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			close(fd);
			return (port);
		}
		close(fd);
	}
	return (0);
}

/*
 * As Postfix's layout has it: a unix socket in a private directory owned
 * by the user, a port below 1024, user = nobody.  natguard binds as root,
 * then runs as nobody with nobody's groups only; the socket is nobody's,
 * with unix_socket_mode; at exit nobody can remove it.
 */
START_TEST(test_privileges)
{
	struct stat	 st;
	struct passwd	*pw;
	gid_t		 groups[64];
	int		 ng = 64, port, i;
	char		*text, dir[300], sock[340], want[512], got[512];
	char		 ep[64];

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: test_privileges needs root\n");
		return;
	}
	ck_assert_ptr_ne(pw = getpwnam("nobody"), NULL);
	snprintf(dir, sizeof(dir), "%s/spool.%d", harness_dir(), (int)getpid());
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	strncat(dir, "/private", sizeof(dir) - strlen(dir) - 1);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(chown(dir, pw->pw_uid, pw->pw_gid), 0);
	/* The harness's own directory must let nobody through. */
	ck_assert_int_eq(chmod(harness_dir(), 0711), 0);
	snprintf(sock, sizeof(sock), "%s/natguard", dir);
	ck_assert_int_ne(port = privileged_port(), 0);
	ck_assert(asprintf(&text, "listen = unix:%s, inet:127.0.0.1:%d\n"
	    "unix_socket_mode = 0660\nuser = nobody\ngateways = 172.20.0.1\n"
	    "spf = no\nnat_spf_probe = no\n", sock, port) != -1);
	memset(&D, 0, sizeof(D));
	ck_assert(daemon_start(&D, text) == 0);
	free(text);

	proc_status(D.pid, "Uid:", got, sizeof(got));
	snprintf(want, sizeof(want), "\t%ld\t%ld\t%ld\t%ld", (long)pw->pw_uid,
	    (long)pw->pw_uid, (long)pw->pw_uid, (long)pw->pw_uid);
	ck_assert_str_eq(got, want);
	proc_status(D.pid, "Gid:", got, sizeof(got));
	snprintf(want, sizeof(want), "\t%ld\t%ld\t%ld\t%ld", (long)pw->pw_gid,
	    (long)pw->pw_gid, (long)pw->pw_gid, (long)pw->pw_gid);
	ck_assert_str_eq(got, want);
	/* Root's groups are gone; nobody's are there. */
	ck_assert_int_ne(getgrouplist("nobody", pw->pw_gid, groups, &ng), -1);
	want[0] = '\t';
	want[1] = '\0';
	for (i = 0; i < ng; i++)
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
		    "%ld ", (long)groups[i]);
	proc_status(D.pid, "Groups:", got, sizeof(got));
	ck_assert_msg(strcmp(got, want) == 0 || (ng == 1 &&
	    strtol(got + 1, NULL, 10) == (long)groups[0]),
	    "groups \"%s\", expected \"%s\"", got, want);

	ck_assert_int_eq(stat(sock, &st), 0);
	ck_assert_int_eq((long)st.st_uid, (long)pw->pw_uid);
	ck_assert_int_eq(st.st_mode & 0777, 0660);
	snprintf(ep, sizeof(ep), "inet:127.0.0.1:%d", port);
	assert_serves(ep);
	snprintf(want, sizeof(want), "unix:%s", sock);
	assert_serves(want);
	stop();
	ck_assert_msg(stat(sock, &st) == -1, "the socket outlived the daemon");
	chmod(harness_dir(), 0700);
}
END_TEST

/* A user that cannot be become, or does not exist: no daemon, exit 1. */
START_TEST(test_privileges_refused)
{
	char	 conf[64], *cmd, *out;
	int	 st, port = 0;	/* any: the daemon never gets to serve */
	FILE	*f;

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: test_privileges_refused needs root\n");
		return;
	}
	/* Readable by nobody, who runs natguard below. */
	snprintf(conf, sizeof(conf), "/tmp/natguard-priv.%d.conf",
	    (int)getpid());
	ck_assert_ptr_ne(f = fopen(conf, "w"), NULL);
	fprintf(f, "listen = inet:127.0.0.1:%d\nlog = stderr\nuser = daemon\n"
	    "gateways = none\nspf = no\n", port);
	fclose(f);
	chmod(conf, 0644);
	ck_assert(asprintf(&cmd, "setpriv --reuid=nobody --regid=nogroup "
	    "--clear-groups %s -c %s 2>&1", getenv("NATGUARD"), conf) != -1);
	out = run_cmd(cmd, &st);
	free(cmd);
	ck_assert_msg(st == 1, "exit %d: %s", st, out);
	ck_assert_msg(strstr(out, "cannot drop privileges to daemon") != NULL,
	    "%s", out);
	free(out);

	f = fopen(conf, "w");
	fprintf(f, "listen = inet:127.0.0.1:%d\nlog = stderr\n"
	    "user = no-such-user-here\ngateways = none\nspf = no\n", port);
	fclose(f);
	ck_assert(asprintf(&cmd, "%s -c %s 2>&1", getenv("NATGUARD"), conf) !=
	    -1);
	out = run_cmd(cmd, &st);
	free(cmd);
	ck_assert_msg(st == 1, "exit %d: %s", st, out);
	ck_assert_msg(strstr(out, "user no-such-user-here: no such user") !=
	    NULL, "%s", out);
	free(out);
	unlink(conf);
}
END_TEST

/* Several requests in one write are answered in order. */
START_TEST(test_pipelined)
{
	static const char *clients[] = {
		"172.20.0.1", "192.0.2.1", "fd00:cafe::1", "127.0.0.1",
		"172.20.0.1",
	};
	static const int deferred[] = { 1, 0, 1, 0, 1 };
	char	*all = strdup(""), *req, *tmp, *r, inst[8];
	size_t	 i;
	int	 fd;

	start("");
	for (i = 0; i < NELEMS(clients); i++) {
		snprintf(inst, sizeof(inst), "p%zu", i);
		req = policy_request(clients[i], inst);
		ck_assert(asprintf(&tmp, "%s%s", all, req) != -1);
		free(all);
		free(req);
		all = tmp;
	}
	fd = conn_open(D.listen[0]);
	ck_assert_int_eq(send_str(fd, all), 0);
	for (i = 0; i < NELEMS(clients); i++) {
		r = read_reply(fd, T);
		ck_assert_msg(r != NULL, "reply %zu missing", i);
		ck_assert_str_eq(r, deferred[i] ? defer_reply : "action=DUNNO");
		free(r);
	}
	free(all);
	close(fd);
	stop();
}
END_TEST

/* A request dribbled in one byte at a time. */
START_TEST(test_byte_by_byte)
{
	char	*req = policy_request("172.20.0.1", "b1"), *r;
	size_t	 i;
	int	 fd;

	start("");
	fd = conn_open(D.listen[1]);
	for (i = 0; req[i] != '\0'; i++)
		ck_assert_int_eq(send_buf(fd, req + i, 1), 0);
	r = read_reply(fd, T);
	ck_assert_ptr_ne(r, NULL);
	ck_assert_str_eq(r, defer_reply);
	free(r);
	free(req);
	close(fd);
	stop();
}
END_TEST

/* Recipients of one message (same instance): the same decision. */
START_TEST(test_instance)
{
	char	*r1, *r2, *r3;
	int	 fd;

	start("nat_action = warn\n");
	fd = conn_open(D.listen[0]);
	r1 = ask(fd, "172.20.0.1", "5B6A.6F1C2E.8A1F5.0");
	r2 = ask(fd, "172.20.0.1", "5B6A.6F1C2E.8A1F5.0");
	r3 = ask(fd, "192.0.2.1", "5B6A.6F1C2E.8A1F5.1");
	ck_assert(strncmp(r1, "action=WARN client address 172.20.0.1", 37) ==
	    0);
	ck_assert_str_eq(r1, r2);
	ck_assert_str_eq(r3, "action=DUNNO");
	free(r1);
	free(r2);
	free(r3);
	close(fd);
	stop();
}
END_TEST

/*
 * Malformed input: no reply, a log line naming the peer and the fault, the
 * connection closed, and the daemon still serving.  "prefix" is sent
 * first and must be answered (a reply is never lost to a later fault).
 */
static char *
repeat(const char *unit, size_t n, const char *tail)
{
	size_t	 ul = strlen(unit), i;
	char	*s = malloc(ul * n + strlen(tail) + 1);

	for (i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	strcpy(s + ul * n, tail);
	return (s);
}

enum bad_kind {
	BAD_NOEQ, BAD_NUL, BAD_LONGLINE, BAD_LONGLINE_NOEOL, BAD_BIG,
	BAD_ATTRS, BAD_BINARY, BAD_AFTER_GOOD, BAD_EMPTY, BAD_NONAME
};

static const struct {
	const char	*label;
	enum bad_kind	 kind;
	const char	*fault;
} bad_cases[] = {
	{ "line without =", BAD_NOEQ, "line without \"=\"" },
	{ "NUL byte", BAD_NUL, "NUL byte in request" },
	{ "line over 8 KiB", BAD_LONGLINE, "line longer than 8192 bytes" },
	{ "line over 8 KiB, no newline yet", BAD_LONGLINE_NOEOL,
	    "line longer than 8192 bytes" },
	{ "request over 64 KiB", BAD_BIG, "request larger than 65536 bytes" },
	{ "257 attributes", BAD_ATTRS, "more than 256 attributes" },
	{ "binary garbage", BAD_BINARY, "NUL byte in request" },
	{ "fault after a good request", BAD_AFTER_GOOD,
	    "line without \"=\"" },
	{ "empty request", BAD_EMPTY, "empty request" },
	{ "attribute without a name", BAD_NONAME,
	    "attribute without a name" },
};

static size_t
bad_input(enum bad_kind kind, char **out)
{
	char	*s, *line, *req;
	size_t	 i, len;

	switch (kind) {
	case BAD_NOEQ:
		s = strdup("request=smtpd_access_policy\nhello world\n\n");
		break;
	case BAD_NUL:
		s = strdup("request=smtpd_access_policy\nsender=a@b#c\n\n");
		len = strlen(s);
		s[strchr(s, '#') - s] = '\0';
		*out = s;
		return (len);
	case BAD_LONGLINE:
		line = repeat("x", 9000, "\n\n");
		memcpy(line, "sender=", 7);
		s = line;
		break;
	case BAD_LONGLINE_NOEOL:
		s = repeat("y", 20000, "");
		memcpy(s, "helo_name=", 10);
		break;
	case BAD_BIG:
		line = repeat("z", 8000, "\n");
		s = strdup("");
		for (i = 0; i < 9; i++) {
			line[0] = 'a' + i;
			line[1] = '=';
			req = s;
			if (asprintf(&s, "%s%s", req, line) == -1)
				abort();
			free(req);
		}
		free(line);
		break;
	case BAD_ATTRS:
		s = strdup("");
		for (i = 0; i < 257; i++) {
			req = s;
			if (asprintf(&s, "%sx%zu=1\n", req, i) == -1)
				abort();
			free(req);
		}
		break;
	case BAD_BINARY:
		s = malloc(512);
		for (i = 0; i < 512; i++)
			s[i] = (char)((i * 7919) & 0xff);
		*out = s;
		return (512);
	case BAD_AFTER_GOOD:
		req = policy_request("172.20.0.1", "g1");
		if (asprintf(&s, "%sgarbage\n\n", req) == -1)
			abort();
		free(req);
		break;
	case BAD_EMPTY:
		s = strdup("\n");
		break;
	case BAD_NONAME:
		s = strdup("=value\n\n");
		break;
	default:
		abort();
	}
	*out = s;
	return (strlen(s));
}

START_TEST(test_bad_input)
{
	char	*buf, *peer, *want, *r;
	size_t	 len;
	int	 fd;

	start("");
	fd = conn_open(D.listen[_i % 2]);
	peer = local_name(fd);
	len = bad_input(bad_cases[_i].kind, &buf);
	/* The daemon may close before all is sent: that is fine. */
	(void)send_buf(fd, buf, len);
	if (bad_cases[_i].kind == BAD_AFTER_GOOD) {
		r = read_reply(fd, T);
		ck_assert_msg(r != NULL, "%s: good reply lost",
		    bad_cases[_i].label);
		ck_assert_str_eq(r, defer_reply);
		free(r);
	}
	ck_assert_msg(wait_closed(fd, T) == 1, "%s: not closed, or replied",
	    bad_cases[_i].label);
	close(fd);
	ck_assert(asprintf(&want, "warning: %s: %s; closing connection", peer,
	    bad_cases[_i].fault) != -1);
	ck_assert_msg(log_has(&D, want), "%s: log lacks \"%s\"",
	    bad_cases[_i].label, want);
	free(want);
	free(peer);
	free(buf);
	assert_serves(D.listen[0]);
	assert_serves(D.listen[1]);
	stop();
}
END_TEST

/* Odd but well-formed requests: DUNNO and a warning, never a crash. */
static const struct {
	const char	*label;
	const char	*request;
	const char	*warning;
} odd_cases[] = {
	{ "unknown request type", "request=junk_policy\nclient_address="
	    "172.20.0.1\n\n", "unknown request=junk_policy" },
	{ "no request attribute", "client_address=172.20.0.1\n\n",
	    "unknown request=(none)" },
	{ "unparsable client", "request=smtpd_access_policy\n"
	    "client_address=300.1.1.1\n\n",
	    "unparsable client_address=300.1.1.1" },
	{ "no client address", "request=smtpd_access_policy\n"
	    "sender=a@example.org\n\n", "unparsable client_address=(none)" },
	{ "unknown attributes", "request=smtpd_access_policy\nfoo=bar\n"
	    "client_address=192.0.2.3\nccert_subject=\n\n", NULL },
};

START_TEST(test_odd_request)
{
	char	*r;
	int	 fd;

	start("");
	fd = conn_open(D.listen[0]);
	ck_assert_int_eq(send_str(fd, odd_cases[_i].request), 0);
	r = read_reply(fd, T);
	ck_assert_msg(r != NULL, "%s: no reply", odd_cases[_i].label);
	ck_assert_str_eq(r, "action=DUNNO");
	free(r);
	if (odd_cases[_i].warning != NULL)
		ck_assert_msg(log_has(&D, odd_cases[_i].warning), "%s",
		    odd_cases[_i].label);
	/* The connection goes on. */
	free(ask(fd, "192.0.2.1", "o2"));
	close(fd);
	stop();
}
END_TEST

START_TEST(test_closed_midrequest)
{
	char	*peer, *want;
	int	 fd;

	start("");
	fd = conn_open(D.listen[0]);
	peer = local_name(fd);
	ck_assert_int_eq(send_str(fd, "request=smtpd_access_policy\n"
	    "client_address=172.20.0.1\n"), 0);
	shutdown(fd, SHUT_WR);
	ck_assert_int_eq(wait_closed(fd, T), 1);
	close(fd);
	ck_assert(asprintf(&want, "warning: %s: client closed the connection "
	    "in the middle of a request", peer) != -1);
	ck_assert_msg(log_has(&D, want), "log lacks %s", want);
	free(want);
	free(peer);
	assert_serves(D.listen[0]);
	stop();
}
END_TEST

/* Half a request, then silence: closed at idle_timeout. */
START_TEST(test_idle_timeout)
{
	char	*peer, *want;
	int	 fd, idle;

	start("idle_timeout = 1s\n");
	fd = conn_open(D.listen[0]);
	idle = conn_open(D.listen[1]);
	peer = local_name(fd);
	ck_assert_int_eq(send_str(fd, "request=smtpd_access_policy\n"), 0);
	ck_assert_int_eq(wait_closed(fd, T), 1);
	ck_assert_int_eq(wait_closed(idle, T), 1);
	ck_assert(asprintf(&want, "warning: %s: idle timeout in the middle "
	    "of a request; closing connection", peer) != -1);
	ck_assert_msg(log_has(&D, want), "log lacks %s", want);
	ck_assert(log_has(&D, "idle timeout; closing connection"));
	free(want);
	free(peer);
	close(fd);
	close(idle);
	assert_serves(D.listen[0]);
	stop();
}
END_TEST

START_TEST(test_max_connections)
{
	int	 fds[3], extra, again, i;
	char	*r;

	start("max_connections = 3\n");
	for (i = 0; i < 3; i++) {
		fds[i] = conn_open(D.listen[0]);
		r = ask(fds[i], "192.0.2.1", "m");	/* accepted for sure */
		free(r);
	}
	extra = conn_open(D.listen[0]);
	ck_assert_int_ne(extra, -1);
	ck_assert_int_eq(wait_closed(extra, T), 1);
	close(extra);
	ck_assert(log_has(&D, "too many connections (max_connections = 3); "
	    "closing connection"));
	/* The ones inside are still served. */
	for (i = 0; i < 3; i++)
		free(ask(fds[i], "192.0.2.1", "m2"));
	/* One closed by the daemon makes room for one more. */
	ck_assert_int_eq(send_str(fds[0], "junk\n"), 0);
	ck_assert_int_eq(wait_closed(fds[0], T), 1);
	close(fds[0]);
	again = conn_open(D.listen[0]);
	r = ask(again, "172.20.0.1", "m3");
	ck_assert_str_eq(r, defer_reply);
	free(r);
	close(again);
	close(fds[1]);
	close(fds[2]);
	stop();
}
END_TEST

START_TEST(test_reload)
{
	char	*r, *text;
	int	 fd;

	start("");
	fd = conn_open(D.listen[0]);
	r = ask(fd, "172.20.0.1", "r1");
	ck_assert_str_eq(r, defer_reply);
	free(r);

	/* A good file: takes effect, open connections included. */
	ck_assert(asprintf(&text, "log = stderr\n%snat_action = warn\n",
	    base_config()) != -1);
	daemon_write_config(&D, text);
	free(text);
	ck_assert_int_eq(daemon_reload(&D), 0);
	ck_assert(log_has(&D, "reload: configuration"));
	r = ask(fd, "172.20.0.1", "r2");
	ck_assert(strncmp(r, "action=WARN ", 12) == 0);
	free(r);

	/* A broken file: logged with file and line, the running one kept. */
	ck_assert(asprintf(&text, "log = stderr\n%snat_actoin = defer\n",
	    base_config()) != -1);
	daemon_write_config(&D, text);
	free(text);
	ck_assert_int_eq(daemon_reload(&D), 0);
	/* Line 6: "log = stderr", four of base_config, then this one. */
	ck_assert(asprintf(&text, "error: reload: %s:6: unknown key "
	    "\"nat_actoin\" (did you mean \"nat_action\"?); keeping the "
	    "running configuration", D.conf) != -1);
	ck_assert_msg(log_has(&D, text), "log lacks %s", text);
	free(text);
	r = ask(fd, "172.20.0.1", "r3");
	ck_assert(strncmp(r, "action=WARN ", 12) == 0);
	free(r);
	close(fd);
	stop();
}
END_TEST

/* SIGTERM: stop accepting, answer what was read, close, exit 0. */
START_TEST(test_sigterm)
{
	char	*req, *r;
	int	 busy, idle;

	start("");
	idle = conn_open(D.listen[0]);
	busy = conn_open(D.listen[1]);
	free(ask(idle, "192.0.2.1", "t0"));
	req = policy_request("172.20.0.1", "t1");
	ck_assert_int_eq(send_str(busy, req), 0);
	free(req);
	ck_assert_int_eq(daemon_stop(&D), 0);
	r = read_reply(busy, T);
	ck_assert_msg(r != NULL, "request sent before SIGTERM not answered");
	ck_assert_str_eq(r, defer_reply);
	free(r);
	ck_assert_int_eq(wait_closed(busy, T), 1);
	ck_assert_int_eq(wait_closed(idle, T), 1);
	ck_assert(log_has(&D, "shutting down"));
	ck_assert(log_has(&D, "exiting"));
	close(busy);
	close(idle);
}
END_TEST

/*
 * A storm of SIGHUPs while clients keep asking: every request answered
 * correctly, the daemon reloads (signals coalesce), and a reload after the
 * storm still works.
 */
START_TEST(test_sighup_storm)
{
	char	*r, inst[16];
	int	 fd, i, n = 0;

	start("");
	fd = conn_open(D.listen[0]);
	for (i = 0; i < 200; i++) {
		kill(D.pid, SIGHUP);
		if (i % 4 == 0) {
			snprintf(inst, sizeof(inst), "s%d", i);
			r = ask(fd, i % 8 ? "172.20.0.1" : "192.0.2.1", inst);
			ck_assert_str_eq(r, i % 8 ? defer_reply :
			    "action=DUNNO");
			free(r);
			n++;
		}
	}
	ck_assert_int_eq(daemon_reload(&D), 0);
	r = ask(fd, "172.20.0.1", "after");
	ck_assert_str_eq(r, defer_reply);
	free(r);
	ck_assert(log_has(&D, "reload: configuration"));
	close(fd);
	stop();
	printf("SIGHUP storm: 200 signals, %d requests answered\n", n + 1);
}
END_TEST

/* Lines of the log that contain s. */
static int
log_count(const char *s)
{
	char	*text = log_text(&D), *p;
	int	 n = 0;

	for (p = text; (p = strstr(p, s)) != NULL; p += strlen(s))
		n++;
	free(text);
	return (n);
}

/*
 * SIGTERM under load: 20 connections with 200 pipelined requests each.
 * Whatever the daemon decided (one log line per decision) was delivered:
 * the replies the clients got are complete, in order, and as many as the
 * decisions logged; the daemon exits 0.
 */
START_TEST(test_sigterm_load)
{
	enum { NC = 20, NR = 200 };
	char	*one, *all, *r, inst[16];
	int	 fds[NC], got[NC], i, k, total = 0;
	size_t	 ol;

	start("");
	one = policy_request("172.20.0.1", "load");
	ol = strlen(one);
	all = malloc(ol * NR + 1);
	for (k = 0; k < NR; k++)
		memcpy(all + k * ol, one, ol);
	all[ol * NR] = '\0';
	for (i = 0; i < NC; i++) {
		fds[i] = conn_open(D.listen[i % 2]);
		ck_assert_int_eq(send_str(fds[i], all), 0);
	}
	/* The first reply on each: the daemon is busy with all of them. */
	for (i = 0; i < NC; i++) {
		r = read_reply(fds[i], T);
		ck_assert_msg(r != NULL && strcmp(r, defer_reply) == 0,
		    "connection %d: %s", i, r ? r : "no reply");
		free(r);
		got[i] = 1;
	}
	ck_assert_int_eq(daemon_stop(&D), 0);
	for (i = 0; i < NC; i++) {
		while ((r = read_reply(fds[i], T)) != NULL) {
			ck_assert_msg(strcmp(r, defer_reply) == 0,
			    "connection %d, reply %d: %s", i, got[i], r);
			free(r);
			got[i]++;
		}
		ck_assert_msg(got[i] <= NR, "connection %d: %d replies", i,
		    got[i]);
		total += got[i];
		close(fds[i]);
	}
	snprintf(inst, sizeof(inst), "instance=load");
	ck_assert_msg(log_count(inst) == total, "%d decisions logged, %d "
	    "replies delivered", log_count(inst), total);
	ck_assert(log_has(&D, "exiting"));
	printf("SIGTERM under load: %d of %d requests decided and answered "
	    "before exit\n", total, NC * NR);
	free(one);
	free(all);
}
END_TEST

START_TEST(test_audit_log)
{
	char		 path[300], *text, line[8192];
	json_t		*o;
	json_error_t	 jerr;
	FILE		*f;
	int		 fd;

	snprintf(path, sizeof(path), "%s/audit.%d.json", harness_dir(),
	    (int)getpid());
	ck_assert(asprintf(&text, "audit_log = %s\n", path) != -1);
	start(text);
	free(text);
	fd = conn_open(D.listen[0]);
	free(ask(fd, "172.20.0.1", "a1"));
	free(ask(fd, "192.0.2.5", "a2"));
	close(fd);
	stop();
	ck_assert_ptr_ne(f = fopen(path, "r"), NULL);
	ck_assert_ptr_ne(fgets(line, sizeof(line), f), NULL);
	o = json_loads(line, 0, &jerr);
	ck_assert_msg(o != NULL, "bad JSON: %s", jerr.text);
	ck_assert_str_eq(json_string_value(json_object_get(o, "action")),
	    "DEFER");
	ck_assert_str_eq(json_string_value(json_object_get(o, "reason")),
	    "nat-gateway");
	ck_assert_str_eq(json_string_value(json_object_get(o,
	    "gateway_source")), "static");
	ck_assert_str_eq(json_string_value(json_object_get(o, "queue_id")),
	    "NOQUEUE");
	ck_assert(json_is_string(json_object_get(o, "time")));
	json_decref(o);
	ck_assert_ptr_ne(fgets(line, sizeof(line), f), NULL);
	ck_assert(strstr(line, "\"reason\":\"spf-disabled\"") != NULL);
	ck_assert_ptr_eq(fgets(line, sizeof(line), f), NULL);
	fclose(f);
}
END_TEST

/* Out of descriptors: accepting pauses, and resumes once one closes. */
START_TEST(test_emfile)
{
	int	 fds[32], n = 0, i, closed = -1;
	char	*r;

	/* valgrind needs descriptors of its own below the limit. */
	if (under_valgrind())
		return;
	memset(&D, 0, sizeof(D));
	D.nofile = 16;
	ck_assert(daemon_start(&D, "listen = inet:127.0.0.1:0\n"
	    "gateways = 172.20.0.1\nspf = no\nnat_spf_probe = no\n") == 0);
	/* Connect until one is left waiting in the backlog, unanswered. */
	for (n = 0; n < 32; n++) {
		fds[n] = conn_open(D.listen[0]);
		ck_assert_int_ne(fds[n], -1);
		r = policy_request("172.20.0.1", "e");
		send_str(fds[n], r);
		free(r);
		if ((r = read_reply(fds[n], 1000)) == NULL) {
			n++;
			break;
		}
		free(r);
	}
	ck_assert_msg(n < 32, "never ran out of descriptors");
	ck_assert(log_has(&D, "accept: Too many open files; pausing new "
	    "connections"));
	/* Free one slot: the daemon closes a connection after bad input. */
	send_str(fds[0], "junk\n");
	ck_assert_int_eq(wait_closed(fds[0], T), 1);
	closed = 0;
	r = read_reply(fds[n - 1], T);
	ck_assert_msg(r != NULL, "waiting connection never served");
	ck_assert_str_eq(r, defer_reply);
	free(r);
	for (i = 0; i < n; i++)
		if (i != closed)
			close(fds[i]);
	close(fds[closed]);
	stop();
}
END_TEST

/* One HTTP/1.0 exchange: the whole response. */
static char *
http(int port, const char *request)
{
	char	ep[64], buf[65536];
	size_t	len = 0;
	ssize_t	n;
	int	fd;

	snprintf(ep, sizeof(ep), "inet:127.0.0.1:%d", port);
	ck_assert_int_ne(fd = conn_open(ep), -1);
	ck_assert_int_eq(send_str(fd, request), 0);
	while (len < sizeof(buf) - 1 &&
	    (n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	return (strdup(buf));
}

/* metrics_listen: counters after known traffic, /healthz, GET only. */
START_TEST(test_metrics)
{
	static const char *want[] = {
		"HTTP/1.0 200",
		"natguard_requests_total{action=\"DEFER\",reason=\"nat-gateway\"} 2\n",
		"natguard_requests_total{action=\"DUNNO\",reason=\"skip-address\"} 1\n",
		"natguard_connections 1\n",
		"natguard_gateways 2\n",
		"natguard_protocol_errors_total 1\n",
		"natguard_config_reloads_total{outcome=\"ok\"} 1\n",
		"natguard_config_reloads_total{outcome=\"failed\"} 0\n",
		"natguard_spf_results_total{result=\"pass\"} 0\n",
		"natguard_dns_queries_total 0\n",
		"natguard_dns_failures_total 0\n",
		"natguard_request_duration_seconds_count 3\n",
		"natguard_request_duration_seconds_bucket{le=\"+Inf\"} 3\n",
	};
	char	*extra, *r;
	size_t	 i;
	int	 port = free_port(SOCK_STREAM), fd, bad;

	ck_assert(asprintf(&extra, "metrics_listen = 127.0.0.1:%d\n", port) !=
	    -1);
	start(extra);
	free(extra);
	fd = conn_open(D.listen[0]);
	free(ask(fd, "172.20.0.1", "x1"));
	free(ask(fd, "fd00:cafe::1", "x2"));
	free(ask(fd, "127.0.0.1", "x3"));
	bad = conn_open(D.listen[0]);
	send_str(bad, "junk\n");
	ck_assert_int_eq(wait_closed(bad, T), 1);
	close(bad);
	ck_assert_int_eq(daemon_reload(&D), 0);
	r = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
	for (i = 0; i < NELEMS(want); i++)
		ck_assert_msg(strstr(r, want[i]) != NULL, "lacks %s in:\n%s",
		    want[i], r);
	free(r);
	r = http(port, "GET /healthz HTTP/1.0\r\n\r\n");
	ck_assert(strncmp(r, "HTTP/1.0 200", 12) == 0 &&
	    strstr(r, "\r\n\r\nok\n") != NULL);
	free(r);
	r = http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
	ck_assert_msg(strncmp(r, "HTTP/1.", 7) == 0 &&
	    strncmp(r + 8, " 405 ", 5) == 0, "%s", r);
	free(r);
	r = http(port, "GET /nope HTTP/1.0\r\n\r\n");
	ck_assert_msg(strncmp(r, "HTTP/1.", 7) == 0 &&
	    strncmp(r + 8, " 404 ", 5) == 0, "%s", r);
	free(r);
	close(fd);
	stop();
}
END_TEST

/* The subcommands share the daemon's code and the SPEC's formats. */
START_TEST(test_commands)
{
	char	*cmd, *out, conf[300];
	json_t	*o;
	int	 st;

	snprintf(conf, sizeof(conf), "%s/cmd.%d.conf", harness_dir(),
	    (int)getpid());
	write_file(conf, "gateways = 172.20.0.1\nnat_action = warn\n"
	    "spf = no\nnat_spf_probe = no\n");

	ck_assert(asprintf(&cmd, "%s check -c %s --json client_address="
	    "172.20.0.1 sender=a@example.org", getenv("NATGUARD"), conf) !=
	    -1);
	out = run_cmd(cmd, &st);
	free(cmd);
	ck_assert_int_eq(st, 0);
	o = json_loads(out, 0, NULL);
	ck_assert_msg(o != NULL, "not JSON: %s", out);
	ck_assert_str_eq(json_string_value(json_object_get(o, "action")),
	    "WARN");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o,
	    "gateway"), "source")), "static");
	json_decref(o);
	free(out);

	ck_assert(asprintf(&cmd, "printf 'request=smtpd_access_policy\\n"
	    "client_address=192.0.2.1\\n\\n' | %s check -c %s",
	    getenv("NATGUARD"), conf) != -1);
	out = run_cmd(cmd, &st);
	free(cmd);
	ck_assert_int_eq(st, 0);
	ck_assert(strncmp(out, "action=DUNNO\n", 13) == 0);
	free(out);

	ck_assert(asprintf(&cmd, "%s config -c %s", getenv("NATGUARD"), conf)
	    != -1);
	out = run_cmd(cmd, &st);
	free(cmd);
	ck_assert_int_eq(st, 0);
	ck_assert(strstr(out, "nat_action = warn\n") != NULL);
	ck_assert(strstr(out, "metrics_listen = \n") != NULL);
	free(out);

	ck_assert(asprintf(&cmd, "%s gateways -c %s --json",
	    getenv("NATGUARD"), conf) != -1);
	out = run_cmd(cmd, &st);
	free(cmd);
	ck_assert_int_eq(st, 0);
	ck_assert(strstr(out, "\"source\": \"static\"") != NULL);
	free(out);

	/* Configuration errors: exit 2, FILE:LINE: on stderr. */
	write_file(conf, "log = stderr\nidle_timeout = forever\n");
	ck_assert(asprintf(&cmd, "%s -c %s 2>&1", getenv("NATGUARD"), conf) !=
	    -1);
	out = run_cmd(cmd, &st);
	free(cmd);
	ck_assert_int_eq(st, 2);
	ck_assert(strstr(out, "natguard: ") == out);
	ck_assert(strstr(out, ":2: idle_timeout: \"forever\"") != NULL);
	free(out);
	ck_assert(asprintf(&cmd, "%s check -c /nonexistent.conf 2>&1",
	    getenv("NATGUARD")) != -1);
	out = run_cmd(cmd, &st);
	free(cmd);
	ck_assert_int_eq(st, 2);
	free(out);
	ck_assert(asprintf(&cmd, "%s --bogus 2>/dev/null", getenv("NATGUARD"))
	    != -1);
	out = run_cmd(cmd, &st);
	free(cmd);
	ck_assert_int_eq(st, 2);
	free(out);
}
END_TEST

/* natguard doctor --json: one check's status and evidence. */
static const char *
doctor_check(json_t *o, const char *name, const char **evidence)
{
	json_t	*c;
	size_t	 i;

	json_array_foreach(json_object_get(o, "checks"), i, c) {
		if (strcmp(json_string_value(json_object_get(c, "name")),
		    name) == 0) {
			*evidence = json_string_value(json_object_get(c,
			    "evidence"));
			return (json_string_value(json_object_get(c,
			    "status")));
		}
	}
	*evidence = "";
	return ("absent");
}

/*
 * doctor asks the running daemon on each listen endpoint; with the fixes
 * all in (Docker's files, a Postfix directory that asks natguard) it
 * exits 0, and 1 once the daemon is gone.
 */
START_TEST(test_doctor)
{
	char		*cmd, *out, conf[300], pfdir[300], path[400];
	const char	*st, *ev, *data = getenv("TESTDATA");
	int		 rc, postfix = access("/usr/sbin/postconf", X_OK) == 0;
	json_t		*o;

	start("");
	snprintf(conf, sizeof(conf), "%s/doctor.%d.conf", harness_dir(),
	    (int)getpid());
	ck_assert(asprintf(&out, "listen = %s, %s\ngateways = 172.20.0.1\n"
	    "spf = no\n", D.listen[0], D.listen[1]) != -1);
	write_file(conf, out);
	free(out);
	snprintf(pfdir, sizeof(pfdir), "%s/postfix.%d", harness_dir(),
	    (int)getpid());
	ck_assert_int_eq(mkdir(pfdir, 0755), 0);
	snprintf(path, sizeof(path), "%s/main.cf", pfdir);
	ck_assert(asprintf(&out, "compatibility_level = 3.6\n"
	    "mynetworks = 127.0.0.0/8\nsmtpd_recipient_restrictions = "
	    "check_policy_service %s, permit_mynetworks, "
	    "reject_unauth_destination\n", D.listen[0]) != -1);
	write_file(path, out);
	free(out);
	snprintf(path, sizeof(path), "%s/master.cf", pfdir);
	write_file(path, "smtp inet n - n - - smtpd\n");

	ck_assert(asprintf(&cmd, "%s doctor -c %s --json --daemon-json "
	    "%s/doctor/daemon-good.json --compose %s/doctor/compose-good.yaml"
	    " %s%s", getenv("NATGUARD"), conf, data, data,
	    postfix ? "--postfix-dir " : "", postfix ? pfdir : "") != -1);
	out = run_cmd(cmd, &rc);
	o = json_loads(out, 0, NULL);
	ck_assert_msg(o != NULL, "not JSON: %s", out);
	st = doctor_check(o, "daemon-listen", &ev);
	ck_assert_msg(strcmp(st, "ok") == 0, "daemon-listen %s: %s", st, ev);
	ck_assert_msg(strstr(ev, "answered action=DUNNO") != NULL, "%s", ev);
	ck_assert_msg(strstr(ev, D.listen[1]) != NULL, "%s", ev);
	if (postfix) {
		st = doctor_check(o, "postfix-policy", &ev);
		ck_assert_msg(strcmp(st, "ok") == 0, "postfix-policy %s: %s",
		    st, ev);
	}
	ck_assert_msg(rc == 0, "exit %d with nothing failing: %s", rc, out);
	ck_assert_str_ne(json_string_value(json_object_get(o, "status")),
	    "fail");
	json_decref(o);
	free(out);
	/* The daemon logged the probe as what it is. */
	ck_assert(log_has(&D, "reason=skip-address client=127.0.0.1 "
	    "helo=natguard-doctor"));
	stop();

	out = run_cmd(cmd, &rc);
	free(cmd);
	o = json_loads(out, 0, NULL);
	ck_assert_msg(o != NULL, "not JSON: %s", out);
	st = doctor_check(o, "daemon-listen", &ev);
	ck_assert_msg(strcmp(st, "fail") == 0, "daemon-listen %s: %s", st, ev);
	ck_assert_msg(strstr(ev, "Connection refused") != NULL, "%s", ev);
	ck_assert_int_eq(rc, 1);
	ck_assert_str_eq(json_string_value(json_object_get(o, "status")),
	    "fail");
	json_decref(o);
	free(out);
}
END_TEST

static Suite *
daemon_suite(void)
{
	Suite	*s = suite_create("daemon");
	TCase	*tc = tcase_create("protocol");
	TCase	*tb = tcase_create("bad-input");
	TCase	*tl = tcase_create("lifecycle");

	tcase_set_timeout(tc, 60);
	tcase_set_timeout(tb, 60);
	tcase_set_timeout(tl, 60);
	tcase_add_test(tc, test_transport);
	tcase_add_test(tc, test_unix_mode);
	tcase_add_test(tc, test_user);
	tcase_add_test(tc, test_pipelined);
	tcase_add_test(tc, test_byte_by_byte);
	tcase_add_test(tc, test_instance);
	tcase_add_test(tc, test_audit_log);
	tcase_add_test(tc, test_commands);
	tcase_add_test(tc, test_metrics);
	tcase_add_test(tc, test_doctor);
	tcase_add_loop_test(tb, test_bad_input, 0, NELEMS(bad_cases));
	tcase_add_loop_test(tb, test_odd_request, 0, NELEMS(odd_cases));
	tcase_add_test(tb, test_closed_midrequest);
	tcase_add_test(tb, test_idle_timeout);
	tcase_add_test(tb, test_max_connections);
	tcase_add_test(tl, test_reload);
	tcase_add_test(tl, test_sigterm);
	tcase_add_test(tl, test_privileges);
	tcase_add_test(tl, test_privileges_refused);
	tcase_add_test(tl, test_sighup_storm);
	tcase_add_test(tl, test_sigterm_load);
	tcase_add_test(tl, test_emfile);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tb);
	suite_add_tcase(s, tl);
	return (s);
}

int
main(void)
{
	/* Probed once, before Check forks a process per test. */
	(void)loopback6_endpoint();
	return (harness_run(daemon_suite()));
}
