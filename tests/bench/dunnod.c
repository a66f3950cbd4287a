/*
 * The floor: a policy server that answers DUNNO to every request and does
 * nothing else, on the same libevent machinery as natguard.  Whatever
 * natguard does beyond this shows as the gap between the two in `make
 * bench`.  It listens on 127.0.0.1 (port from argv, 0 = any) and speaks
 * the readiness protocol so that loadgen can start it.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	char		*line;
	size_t		 len;

	(void)arg;
	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		if (len == 0)
			evbuffer_add(bufferevent_get_output(bev),
			    "action=DUNNO\n\n", 14);
		free(line);
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int slen, void *arg)
{
	struct bufferevent	*bev;

	(void)sa;
	(void)slen;
	(void)arg;
	bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
	    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, read_cb, NULL, event_cb, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
term_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

static void
notify_ready(int port)
{
	struct sockaddr_un	 sun;
	const char		*path = getenv("NOTIFY_SOCKET");
	char			 msg[128];
	int			 fd, n;

	if (path == NULL || strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	n = snprintf(msg, sizeof(msg), "READY=1\nSTATUS=listening on "
	    "inet:127.0.0.1:%d", port);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) == -1)
		return;
	sendto(fd, msg, (size_t)n, 0, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
}

int
main(int argc, char **argv)
{
	struct event_base	*base = event_base_new();
	struct evconnlistener	*l;
	struct sockaddr_in	 sin;
	struct event		*term;
	socklen_t		 slen = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(argc > 1 ? (uint16_t)atoi(argv[1]) : 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	signal(SIGPIPE, SIG_IGN);
	l = evconnlistener_new_bind(base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 512,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL) {
		perror("dunnod: listen");
		return (1);
	}
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &slen);
	term = evsignal_new(base, SIGTERM, term_cb, base);
	evsignal_add(term, NULL);
	notify_ready(ntohs(sin.sin_port));
	event_base_dispatch(base);
	evconnlistener_free(l);
	event_free(term);
	event_base_free(base);
	return (0);
}
