/*
 * A load generator for policy servers, on libevent.  Each of N connections
 * behaves like Postfix's policy client: one request, wait for the reply,
 * the next.  It starts the server itself (the command after "--") with
 * $NOTIFY_SOCKET set, waits for READY=1 and takes the address from the
 * STATUS= line, runs for the given time, stops the server and prints
 *
 *	LABEL: N requests in S s: R req/s, p50 X ms, p99 Y ms, server CPU
 *
 * With -N COUNT it measures COUNT requests instead of a time, -R PASSES
 * times over the same senders (the second pass finds a warm cache), and
 * with -d DOMAINS the senders cycle over user@dK.bench.test.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct client {
	struct bufferevent	*bev;
	uint64_t		 sent_ns;
	unsigned long		 seq;
	int			 id;
};

static struct event_base	*base;
static const char		*client_addr = "172.20.0.1";
static uint32_t			*lat_us;
static size_t			 nlat, caplat;
static int			 measuring, stopping;
static unsigned long		 errors;
static pid_t			 server_pid;
static double			 cpu_start, cpu_end;
static unsigned long		 count_target;	/* -N: requests per pass */
static unsigned long		 issued, answered;
static unsigned long		 ndomains;	/* -d */
static const char		*zone = "bench.test";	/* -z */

/* The server's CPU time so far (user + system), in seconds. */
static double
server_cpu(void)
{
	char	path[64], buf[1024], *p;
	double	utime = 0, stime = 0;
	FILE	*f;
	int	i;

	if (server_pid <= 0)
		return (0);
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)server_pid);
	if ((f = fopen(path, "r")) == NULL)
		return (0);
	if (fgets(buf, sizeof(buf), f) == NULL) {
		fclose(f);
		return (0);
	}
	fclose(f);
	/* Fields 14 and 15, counted after the ")" that ends the name. */
	if ((p = strrchr(buf, ')')) == NULL)
		return (0);
	for (i = 2; i < 14 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %lf %lf", &utime, &stime) != 2)
		return (0);
	return ((utime + stime) / (double)sysconf(_SC_CLK_TCK));
}

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

static void
send_request(struct client *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);

	char		 sender[64];

	c->seq++;
	if (ndomains > 0)
		snprintf(sender, sizeof(sender), "user@d%lu.%s",
		    issued % ndomains, zone);
	else
		snprintf(sender, sizeof(sender), "user%d@example.org", c->id);
	issued++;
	evbuffer_add_printf(out, "request=smtpd_access_policy\n"
	    "protocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=%s\n"
	    "client_name=unknown\nreverse_client_name=unknown\n"
	    "helo_name=mail.bench.test\nsender=%s\n"
	    "recipient=rcpt@example.com\nrecipient_count=0\nqueue_id=\n"
	    "instance=%x.%lx.0\nsize=0\nsasl_method=\nsasl_username=\n"
	    "sasl_sender=\nccert_subject=\nccert_issuer=\n"
	    "ccert_fingerprint=\nencryption_protocol=\nencryption_cipher=\n"
	    "encryption_keysize=0\netrn_domain=\nstress=\n\n", client_addr,
	    sender, c->id, c->seq);
	c->sent_ns = now_ns();
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct client		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 p;
	uint64_t		 dt;

	for (;;) {
		p = evbuffer_search(in, "\n\n", 2, NULL);
		if (p.pos == -1)
			return;
		evbuffer_drain(in, (size_t)p.pos + 2);
		dt = (now_ns() - c->sent_ns) / 1000;
		if (measuring) {
			if (nlat == caplat) {
				caplat = caplat ? caplat * 2 : 1 << 20;
				lat_us = realloc(lat_us, caplat *
				    sizeof(*lat_us));
			}
			lat_us[nlat++] = dt > UINT32_MAX ? UINT32_MAX :
			    (uint32_t)dt;
		}
		if (count_target > 0 && ++answered == count_target) {
			cpu_end = server_cpu();
			event_base_loopbreak(base);
			return;
		}
		if (!stopping && (count_target == 0 || issued < count_target))
			send_request(c);
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		errors++;
		if (!stopping)
			fprintf(stderr, "loadgen: connection lost\n");
	}
}

static void
phase_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	if (arg == NULL) {
		measuring = 1;
		cpu_start = server_cpu();
	} else {
		cpu_end = server_cpu();
		stopping = 1;
		measuring = 0;
		event_base_loopexit(base, NULL);
	}
}

static int	cmp_u32(const void *, const void *);

static void
report(const char *label, int pass, double elapsed)
{
	char	name[128];

	if (pass > 0)
		snprintf(name, sizeof(name), "%s-pass%d", label, pass);
	else
		snprintf(name, sizeof(name), "%s", label);
	qsort(lat_us, nlat, sizeof(*lat_us), cmp_u32);
	printf("%s: %zu requests in %.1f s: %.0f req/s, p50 %.2f ms, "
	    "p99 %.2f ms, server CPU %.1f us/request\n", name, nlat, elapsed,
	    (double)nlat / elapsed, nlat ? lat_us[nlat / 2] / 1000.0 : 0.0,
	    nlat ? lat_us[nlat * 99 / 100] / 1000.0 : 0.0,
	    nlat ? (cpu_end - cpu_start) * 1e6 / (double)nlat : 0.0);
	fflush(stdout);
}

/* The server's peak resident memory (its own process). */
static void
report_rss(void)
{
	char	path[64], line[256];
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)server_pid);
	if (server_pid <= 0 || (f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			printf("server peak RSS:%s", line + 6);
	fclose(f);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x < y ? -1 : x > y);
}

/* Start the server, wait for READY=1, return its "inet:HOST:PORT". */
static pid_t
start_server(char **argv, char *endpoint, size_t len)
{
	struct sockaddr_un	 sun;
	struct pollfd		 pfd;
	char			 path[64], buf[1024], *p;
	ssize_t			 n;
	pid_t			 pid;
	int			 fd;

	snprintf(path, sizeof(path), "/tmp/loadgen-notify.%ld",
	    (long)getpid());
	unlink(path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		perror("loadgen: notify socket");
		exit(1);
	}
	if ((pid = fork()) == 0) {
		setenv("NOTIFY_SOCKET", path, 1);
		execvp(argv[0], argv);
		perror(argv[0]);
		_exit(127);
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, 10000) != 1) {
			fprintf(stderr, "loadgen: %s did not become ready\n",
			    argv[0]);
			kill(pid, SIGKILL);
			exit(1);
		}
		if ((n = recv(fd, buf, sizeof(buf) - 1, 0)) <= 0)
			continue;
		buf[n] = '\0';
		if (strstr(buf, "READY=1") == NULL ||
		    (p = strstr(buf, "STATUS=listening on ")) == NULL)
			continue;
		p += 20;
		p[strcspn(p, " \n")] = '\0';
		snprintf(endpoint, len, "%s", p);
		break;
	}
	close(fd);
	unlink(path);
	return (pid);
}

static void
connect_client(struct client *c, const char *endpoint)
{
	struct sockaddr_in	sin;
	char			host[128], *colon;

	memset(&sin, 0, sizeof(sin));
	snprintf(host, sizeof(host), "%s", endpoint + 5);
	colon = strrchr(host, ':');
	*colon = '\0';
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, host, &sin.sin_addr);
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin,
	    sizeof(sin)) == -1) {
		fprintf(stderr, "loadgen: connect %s failed\n", endpoint);
		exit(1);
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: loadgen [-c CONNS] [-t SECONDS] [-w WARMUP] "
	    "[-N COUNT [-R PASSES]] [-d DOMAINS] [-a CLIENT] [-l LABEL]\n"
	    "               (-e inet:HOST:PORT | -- SERVER [ARGS...])\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct client	*clients;
	struct event	*warm, *end;
	struct timeval	 tv_warm, tv_end;
	const char	*label = "server";
	char		 endpoint[128];
	double		 secs = 5, warmup = 0.5, elapsed;
	int		 warm_given = 0;
	int		 passes = 1, pass;
	const char	*given = NULL;	/* -e: a server already running */
	uint64_t	 t0 = 0;
	pid_t		 pid;
	int		 ch, nconn = 50, i, status;

	while ((ch = getopt(argc, argv, "c:t:w:a:l:N:R:d:e:z:")) != -1) {
		switch (ch) {
		case 'c':
			nconn = atoi(optarg);
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'w':
			warmup = atof(optarg);
			warm_given = 1;
			break;
		case 'a':
			client_addr = optarg;
			break;
		case 'l':
			label = optarg;
			break;
		case 'N':
			count_target = strtoul(optarg, NULL, 10);
			break;
		case 'R':
			passes = atoi(optarg);
			break;
		case 'd':
			ndomains = strtoul(optarg, NULL, 10);
			break;
		case 'e':
			given = optarg;
			break;
		case 'z':
			zone = optarg;
			break;
		default:
			usage();
		}
	}
	if ((optind >= argc && given == NULL) || nconn <= 0 || secs <= 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (given != NULL) {
		snprintf(endpoint, sizeof(endpoint), "%s", given);
		pid = 0;
	} else
		pid = start_server(argv + optind, endpoint, sizeof(endpoint));
	server_pid = pid;

	base = event_base_new();
	clients = calloc((size_t)nconn, sizeof(*clients));
	if (count_target > 0) {
		/* Counted passes: every sender once per pass. */
		for (i = 0; i < nconn; i++) {
			clients[i].id = i;
			connect_client(&clients[i], endpoint);
		}
		/*
		 * -w here: that long idle, connected, before the first pass
		 * (a server's start-up out of the measure).
		 */
		if (warm_given && warmup > 0) {
			tv_warm.tv_sec = (time_t)warmup;
			tv_warm.tv_usec = (suseconds_t)((warmup -
			    (long)warmup) * 1e6);
			event_base_loopexit(base, &tv_warm);
			event_base_dispatch(base);
		}
		measuring = 1;
		for (pass = 1; pass <= passes; pass++) {
			issued = answered = 0;
			nlat = 0;
			cpu_start = server_cpu();
			t0 = now_ns();
			for (i = 0; i < nconn && issued < count_target; i++)
				send_request(&clients[i]);
			event_base_dispatch(base);
			elapsed = (double)(now_ns() - t0) / 1e9;
			report(label, pass, elapsed);
		}
		warm = end = NULL;
		goto done;
	}
	for (i = 0; i < nconn; i++) {
		clients[i].id = i;
		connect_client(&clients[i], endpoint);
		send_request(&clients[i]);
	}
	/* A warm-up, then the measured period. */
	warm = evtimer_new(base, phase_cb, NULL);
	end = evtimer_new(base, phase_cb, base);
	tv_warm.tv_sec = (time_t)warmup;
	tv_warm.tv_usec = (suseconds_t)((warmup - (long)warmup) * 1e6);
	tv_end.tv_sec = (time_t)(warmup + secs);
	tv_end.tv_usec = (suseconds_t)((warmup + secs -
	    (long)(warmup + secs)) * 1e6);
	evtimer_add(warm, &tv_warm);
	evtimer_add(end, &tv_end);
	t0 = now_ns();
	event_base_dispatch(base);
	elapsed = (double)(now_ns() - t0) / 1e9 - warmup;
	report(label, 0, elapsed);
done:
	report_rss();
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
	}
	for (i = 0; i < nconn; i++)
		bufferevent_free(clients[i].bev);
	free(clients);
	free(lat_us);
	if (warm != NULL)
		event_free(warm);
	if (end != NULL)
		event_free(end);
	event_base_free(base);
	return (errors > (unsigned long)nconn ? 1 : 0);
}
