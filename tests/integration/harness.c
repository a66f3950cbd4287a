#include "config.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/*
 * Each daemon gets a directory under one run directory, which main()
 * removes at the end.  A daemon dies with the test process that started it
 * (PR_SET_PDEATHSIG), so a failed assertion never leaves one behind.
 */

static char	run_dir[256];
static int	daemon_seq;

void
harness_init(void)
{
	snprintf(run_dir, sizeof(run_dir), "/tmp/natguard-test.XXXXXX");
	/* Traversable: a daemon that dropped to "nobody" reports here. */
	if (mkdtemp(run_dir) == NULL || chmod(run_dir, 0755) == -1) {
		perror("mkdtemp");
		exit(99);
	}
	signal(SIGPIPE, SIG_IGN);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return (remove(path));
}

void
harness_cleanup(void)
{
	if (run_dir[0] != '\0')
		nftw(run_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *
harness_dir(void)
{
	return (run_dir);
}

void
write_file(const char *path, const char *text)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) == EOF) {
		fprintf(stderr, "write %s: %s\n", path, strerror(errno));
		abort();
	}
}

static char *
slurp(const char *path)
{
	FILE	*f;
	char	*buf;
	long	 len;

	if ((f = fopen(path, "r")) == NULL)
		return (strdup(""));
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc(len + 1);
	len = (long)fread(buf, 1, len, f);
	buf[len] = '\0';
	fclose(f);
	return (buf);
}

char *
log_text(const struct daemon *d)
{
	return (slurp(d->log));
}

int
log_has(const struct daemon *d, const char *needle)
{
	char	*text = slurp(d->log);
	int	 found = strstr(text, needle) != NULL;

	free(text);
	return (found);
}

/* Whether the line comes within timeout_ms: a log is written when it is. */
int
daemon_log_wait(const struct daemon *d, const char *needle, int timeout_ms)
{
	struct timespec	 ts = { 0, 20 * 1000000 };
	int		 waited;

	for (waited = 0; waited < timeout_ms; waited += 20) {
		if (log_has(d, needle))
			return (1);
		nanosleep(&ts, NULL);
	}
	return (log_has(d, needle));
}

void
daemon_write_config(struct daemon *d, const char *text)
{
	write_file(d->conf, text);
}

/* One datagram from the daemon on $NOTIFY_SOCKET, or NULL on timeout. */
static char *
notify_recv(struct daemon *d, int timeout_ms)
{
	struct pollfd	pfd = { d->notify_fd, POLLIN, 0 };
	char		buf[1024];
	ssize_t		n;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return (NULL);
	if ((n = recv(d->notify_fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return (NULL);
	buf[n] = '\0';
	return (strdup(buf));
}

/* Wait for a notify message that has "want" in it. */
static char *
notify_wait(struct daemon *d, const char *want, int timeout_ms)
{
	char	*msg;

	while ((msg = notify_recv(d, timeout_ms)) != NULL) {
		if (strstr(msg, want) != NULL)
			return (msg);
		free(msg);
	}
	return (NULL);
}

static void
parse_status(struct daemon *d, const char *msg)
{
	const char	*p;
	char		 copy[1024], *tok, *save;

	d->nlisten = 0;
	if ((p = strstr(msg, "STATUS=listening on ")) == NULL)
		return;
	snprintf(copy, sizeof(copy), "%s", p + 20);
	copy[strcspn(copy, "\n")] = '\0';
	for (tok = strtok_r(copy, " ", &save); tok != NULL &&
	    d->nlisten < MAX_LISTEN; tok = strtok_r(NULL, " ", &save))
		snprintf(d->listen[d->nlisten++], sizeof(d->listen[0]), "%s",
		    tok);
}

/*
 * make check-valgrind sets NG_VALGRIND to a directory and NATGUARD to
 * tests/valgrind.sh: every natguard runs under memcheck.
 */
int
under_valgrind(void)
{
	return (getenv("NG_VALGRIND") != NULL);
}

/* memcheck's report on this daemon, printed when it has one; -1 then. */
static int
valgrind_report(pid_t pid)
{
	char	 path[320], buf[4096];
	FILE	*f;
	size_t	 n;
	int	 found = 0;

	if (!under_valgrind())
		return (0);
	snprintf(path, sizeof(path), "%s/vg.%ld.log", getenv("NG_VALGRIND"),
	    (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return (0);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (!found)
			fprintf(stderr, "valgrind report (%s):\n", path);
		found = 1;
		fwrite(buf, 1, n, stderr);
	}
	fclose(f);
	return (found ? -1 : 0);
}

/*
 * Start natguard with this configuration (log = stderr is added), and
 * wait for READY=1.  Returns 0, or -1 if it did not come up.
 */
int
daemon_start(struct daemon *d, const char *config)
{
	struct sockaddr_un	 sun;
	const char		*bin = getenv("NATGUARD");
	char			 path[300], *msg, *text;
	struct rlimit		 rl;
	int			 fd;

	d->pid = -1;
	if ((size_t)snprintf(d->dir, sizeof(d->dir), "%s/d%d.%ld", run_dir,
	    ++daemon_seq, (long)getpid()) >= sizeof(d->dir))
		return (-1);
	if (mkdir(d->dir, 0755) == -1)
		return (-1);
	snprintf(d->conf, sizeof(d->conf), "%s/natguard.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/stderr.log", d->dir);
	/* Learned hiders stay with this daemon, unless the test says. */
	if (asprintf(&text, "log = stderr\n%s%s%s\n%s", strstr(config,
	    "state_dir") ? "" : "state_dir = ", strstr(config, "state_dir") ?
	    "" : d->dir, strstr(config, "state_dir") ? "" : "/state",
	    config) == -1)
		return (-1);
	write_file(d->conf, text);
	free(text);

	snprintf(path, sizeof(path), "%s/notify", d->dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
	    path) >= sizeof(sun.sun_path))
		return (-1);
	d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (d->notify_fd == -1 ||
	    bind(d->notify_fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, 0666) == -1)
		return (-1);

	if ((d->pid = fork()) == -1)
		return (-1);
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644)) ==
		    -1)
			_exit(98);
		dup2(fd, STDERR_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
		if (d->nofile > 0) {
			rl.rlim_cur = rl.rlim_max = (rlim_t)d->nofile;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		setenv("NOTIFY_SOCKET", path, 1);
		execl(bin, "natguard", "-c", d->conf, (char *)NULL);
		_exit(97);
	}
	if ((msg = notify_wait(d, "READY=1", under_valgrind() ? 60000 :
	    10000)) == NULL) {
		text = log_text(d);
		fprintf(stderr, "daemon did not start; its log:\n%s\n", text);
		free(text);
		return (-1);
	}
	parse_status(d, msg);
	free(msg);
	return (0);
}

/* SIGHUP, and wait until the reload is done. */
int
daemon_reload(struct daemon *d)
{
	char	*msg;

	if (kill(d->pid, SIGHUP) == -1)
		return (-1);
	if ((msg = notify_wait(d, "RELOADING=1", 10000)) == NULL)
		return (-1);
	free(msg);
	if ((msg = notify_wait(d, "READY=1", 10000)) == NULL)
		return (-1);
	free(msg);
	return (0);
}

/*
 * SIGTERM and wait (at most 20 s) for the exit.  Returns the exit status,
 * or -1 for a signal, a timeout or a sanitizer report in the log.
 */
int
daemon_stop(struct daemon *d)
{
	struct pollfd	 pfd;
	int		 status, pidfd, rc = -1;
	pid_t		 p = 0;

	if (d->pid <= 0)
		return (-1);
	/* A pidfd becomes readable when the process exits. */
	pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
	kill(d->pid, SIGTERM);
	if (pidfd != -1) {
		pfd.fd = pidfd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 20000) == 1)
			p = waitpid(d->pid, &status, 0);
		close(pidfd);
	} else
		p = waitpid(d->pid, &status, 0);
	if (p == d->pid && WIFEXITED(status))
		rc = WEXITSTATUS(status);
	if (p != d->pid) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &status, 0);
	}
	if (valgrind_report(d->pid) != 0)
		rc = -1;
	d->pid = -1;
	close(d->notify_fd);
	if (log_has(d, "Sanitizer") || log_has(d, "runtime error:")) {
		char	*text = log_text(d);

		fprintf(stderr, "sanitizer report:\n%s\n", text);
		free(text);
		return (-1);
	}
	return (rc);
}

/* A socket of this type bound to a free loopback port; the port in *port. */
int
loopback_socket(int type, int *port)
{
	struct sockaddr_in	sin;
	socklen_t		slen = sizeof(sin);
	int			fd;

	fd = socket(AF_INET, type, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		abort();
	getsockname(fd, (struct sockaddr *)&sin, &slen);
	*port = ntohs(sin.sin_port);
	return (fd);
}

/*
 * The IPv6 loopback listener, or a second IPv4 one where ::1 cannot be
 * bound: a container without Docker's IPv6 has no ::1 on lo, and the
 * tests that want "a second listener" still run there.  Says SKIP once
 * for what is not tested.
 */
const char *
loopback6_endpoint(void)
{
	static int		 have = -1;
	struct sockaddr_in6	 sin6;
	int			 fd;

	if (have == -1) {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_addr = in6addr_loopback;
		fd = socket(AF_INET6, SOCK_STREAM, 0);
		have = fd != -1 &&
		    bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
		if (fd != -1)
			close(fd);
		if (!have)
			printf("SKIP: IPv6 transport: no ::1 on this "
			    "machine's loopback; the second listener is "
			    "127.0.0.1\n");
	}
	return (have ? "inet:[::1]:0" : "inet:127.0.0.1:0");
}

int
have_loopback6(void)
{
	return (strcmp(loopback6_endpoint(), "inet:[::1]:0") == 0);
}

/* A free loopback port, released for a server the test starts next. */
int
free_port(int type)
{
	int	port;

	close(loopback_socket(type, &port));
	return (port);
}

int
conn_open(const char *endpoint)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ss;
	char			 host[128], *colon;
	socklen_t		 slen;
	int			 fd;

	memset(&ss, 0, sizeof(ss));
	if (strncmp(endpoint, "unix:", 5) == 0) {
		sun->sun_family = AF_UNIX;
		snprintf(sun->sun_path, sizeof(sun->sun_path), "%s",
		    endpoint + 5);
		slen = sizeof(*sun);
	} else {
		snprintf(host, sizeof(host), "%s", endpoint + 5);
		colon = strrchr(host, ':');
		*colon = '\0';
		if (host[0] == '[') {
			host[strlen(host) - 1] = '\0';
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(atoi(colon + 1));
			inet_pton(AF_INET6, host + 1, &sin6->sin6_addr);
			slen = sizeof(*sin6);
		} else {
			sin->sin_family = AF_INET;
			sin->sin_port = htons(atoi(colon + 1));
			inet_pton(AF_INET, host, &sin->sin_addr);
			slen = sizeof(*sin);
		}
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return (-1);
	if (connect(fd, (struct sockaddr *)&ss, slen) == -1) {
		close(fd);
		return (-1);
	}
	return (fd);
}

int
send_buf(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) <= 0)
			return (-1);
		p += n;
		len -= (size_t)n;
	}
	return (0);
}

int
send_str(int fd, const char *s)
{
	return (send_buf(fd, s, strlen(s)));
}

/*
 * One reply: everything up to the empty line, without it.  NULL when the
 * connection closes first or nothing comes within timeout_ms.
 */
char *
read_reply(int fd, int timeout_ms)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	char		 buf[16384];
	size_t		 len = 0;
	ssize_t		 n;

	while (len < sizeof(buf) - 1) {
		if (poll(&pfd, 1, timeout_ms) != 1)
			return (NULL);
		/* Byte by byte: a reply must not swallow the next one. */
		if ((n = recv(fd, buf + len, 1, 0)) <= 0)
			return (NULL);
		len++;
		if (len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n') {
			buf[len - 2] = '\0';
			return (strdup(buf));
		}
	}
	return (NULL);
}

/*
 * 1 when the peer closed without sending anything more, 0 when data came,
 * -1 on timeout.
 */
int
wait_closed(int fd, int timeout_ms)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	char		c;
	ssize_t		n;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return (-1);
	n = recv(fd, &c, 1, 0);
	if (n == 0 || (n == -1 && errno == ECONNRESET))
		return (1);
	return (0);
}

/* "127.0.0.1:PORT" or "[::1]:PORT": how the daemon names this client. */
char *
local_name(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 slen = sizeof(ss);
	char			 host[64], *s = NULL;

	getsockname(fd, (struct sockaddr *)&ss, &slen);
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
		    host, sizeof(host));
		if (asprintf(&s, "%s:%u", host,
		    ntohs(((struct sockaddr_in *)&ss)->sin_port)) == -1)
			abort();
	} else if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    host, sizeof(host));
		if (asprintf(&s, "[%s]:%u", host,
		    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)) == -1)
			abort();
	} else
		s = strdup("unix:");
	return (s);
}

/* Run a shell command; its stdout, and its exit status in *status. */
char *
run_cmd(const char *cmd, int *status)
{
	FILE	*p;
	char	*out = NULL;
	size_t	 len = 0, cap = 0;
	char	 buf[4096];
	size_t	 n;
	int	 st;

	if ((p = popen(cmd, "r")) == NULL)
		abort();
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			out = realloc(out, cap);
		}
		memcpy(out + len, buf, n);
		len += n;
	}
	if (out == NULL)
		out = calloc(1, 1);
	else
		out[len] = '\0';
	st = pclose(p);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return (out);
}

/* A request as Postfix sends it, for this client and instance. */
char *
policy_request(const char *client, const char *instance)
{
	char	*s;

	if (asprintf(&s, "request=smtpd_access_policy\nprotocol_state=RCPT\n"
	    "protocol_name=ESMTP\nclient_address=%s\nclient_name=unknown\n"
	    "helo_name=mail.example.org\nsender=a@example.org\n"
	    "recipient=b@example.com\nqueue_id=\ninstance=%s\n"
	    "sasl_username=\n\n", client, instance) == -1)
		abort();
	return (s);
}

/*
 * main() of a suite that talks to the daemon: NATGUARD must name it, the
 * harness directory exists for the run; the exit status make check wants.
 */
int
harness_run(Suite *s)
{
	SRunner	*sr;
	int	 failed;

	if (getenv("NATGUARD") == NULL) {
		fprintf(stderr, "NATGUARD (the binary to test) is not set\n");
		return (99);
	}
	harness_init();
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}

/* The resident set of a process, in kB; -1 when it is gone. */
long
rss_kb(pid_t pid)
{
	char	 path[64], line[256];
	FILE	*f;
	long	 kb = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return (kb);
}
