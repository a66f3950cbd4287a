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

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"

/*
 * Counters for metrics_listen: Prometheus text on GET /metrics, "ok" on
 * GET /healthz, over libevent's evhttp on the daemon's own loop.
 */

#define NBUCKETS	10
static const double bucket_le[NBUCKETS] = {
	0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 20
};

struct reqcount {
	const char	*action;	/* static strings */
	const char	*reason;
	uint64_t	 n;
};

static struct {
	struct reqcount	*req;
	size_t		 nreq;
	uint64_t	 spf[SPF_R_COUNT];
	uint64_t	 reloads_ok;
	uint64_t	 reloads_failed;
	uint64_t	 protocol_errors;
	uint64_t	 buckets[NBUCKETS];
	uint64_t	 count;
	double		 sum;
} m;

static struct evhttp	*http;

void
metrics_decision(const struct decision *d, double seconds)
{
	const char	*action = action_name(d->action);
	size_t		 i;

	for (i = 0; i < m.nreq; i++)
		if (m.req[i].action == action && m.req[i].reason == d->reason)
			break;
	if (i == m.nreq) {
		m.req = xreallocarray(m.req, m.nreq + 1, sizeof(*m.req));
		m.req[i].action = action;
		m.req[i].reason = d->reason;
		m.req[i].n = 0;
		m.nreq++;
	}
	m.req[i].n++;
	if (d->has_spf)
		m.spf[d->spf_result]++;
	for (i = 0; i < NBUCKETS; i++)
		if (seconds <= bucket_le[i])
			m.buckets[i]++;
	m.count++;
	m.sum += seconds;
}

void
metrics_protocol_error(void)
{
	m.protocol_errors++;
}

void
metrics_reload(int ok)
{
	if (ok)
		m.reloads_ok++;
	else
		m.reloads_failed++;
}

/*
 * The learned hiders in the set in use, those inside mynetworks, and
 * those on the mail host itself.
 */
static void
hiders_count(size_t *learned, size_t *inside, size_t *host)
{
	const struct gwset	*gs = server_gateways();
	const struct gateway	*g;
	size_t			 i;
	int			 mine;

	*learned = *inside = *host = 0;
	for (i = 0; i < gwset_count(gs); i++) {
		g = gwset_get(gs, i);
		if (g->source != GW_TRAFFIC)
			continue;
		(*learned)++;
		/* spf_whitelist: a relay the administrator vouched for. */
		mine = netlist_find(server_config()->spf_whitelist,
		    &g->net.addr) >= 0;
		if (!mine && netlist_find(server_config()->mynetworks,
		    &g->net.addr) >= 0)
			(*inside)++;
		if (!mine && addr_same_host(gs, &g->net.addr))
			(*host)++;
	}
}

static void
metrics_text(struct evbuffer *b)
{
	uint64_t	q = 0, h = 0, fl = 0;
	size_t		i, learned, inside, host;

	evbuffer_add_printf(b, "# HELP natguard_requests_total Policy "
	    "requests answered, by action and reason.\n"
	    "# TYPE natguard_requests_total counter\n");
	for (i = 0; i < m.nreq; i++)
		evbuffer_add_printf(b, "natguard_requests_total{action=\"%s\","
		    "reason=\"%s\"} %llu\n", m.req[i].action, m.req[i].reason,
		    (unsigned long long)m.req[i].n);
	evbuffer_add_printf(b, "# HELP natguard_connections Policy "
	    "connections open.\n# TYPE natguard_connections gauge\n"
	    "natguard_connections %zu\n", conn_count());
	evbuffer_add_printf(b, "# HELP natguard_spf_results_total SPF "
	    "results, by result.\n# TYPE natguard_spf_results_total counter\n");
	for (i = 0; i < SPF_R_COUNT; i++)
		evbuffer_add_printf(b, "natguard_spf_results_total{result="
		    "\"%s\"} %llu\n", spf_result_name(i),
		    (unsigned long long)m.spf[i]);
	if (server_dns() != NULL)
		dns_stats(server_dns(), &q, &h, &fl);
	evbuffer_add_printf(b, "# HELP natguard_dns_queries_total DNS "
	    "queries sent.\n# TYPE natguard_dns_queries_total counter\n"
	    "natguard_dns_queries_total %llu\n"
	    "# HELP natguard_dns_cache_hits_total DNS answers from the "
	    "cache.\n# TYPE natguard_dns_cache_hits_total counter\n"
	    "natguard_dns_cache_hits_total %llu\n"
	    "# HELP natguard_dns_failures_total DNS questions that ended in "
	    "a temporary failure (timeout, SERVFAIL, REFUSED, a malformed "
	    "answer).\n# TYPE natguard_dns_failures_total counter\n"
	    "natguard_dns_failures_total %llu\n",
	    (unsigned long long)q, (unsigned long long)h,
	    (unsigned long long)fl);
	evbuffer_add_printf(b, "# HELP natguard_gateways Addresses and "
	    "networks in the gateway set.\n# TYPE natguard_gateways gauge\n"
	    "natguard_gateways %zu\n", gwset_count(server_gateways()));
	evbuffer_add_printf(b, "# HELP natguard_spf_worker_crashes_total "
	    "SPF worker processes that died (each costs the evaluation it "
	    "was running).\n# TYPE natguard_spf_worker_crashes_total "
	    "counter\nnatguard_spf_worker_crashes_total %llu\n",
	    (unsigned long long)spf_worker_crashes(server_spf()));
	hiders_count(&learned, &inside, &host);
	evbuffer_add_printf(b, "# HELP natguard_learned_hiders Hiders "
	    "learned from traffic (gateway source traffic).\n"
	    "# TYPE natguard_learned_hiders gauge\n"
	    "natguard_learned_hiders %zu\n"
	    "# HELP natguard_learned_hiders_mynetworks Learned hiders inside "
	    "mynetworks: a relay trusted on purpose, or an open relay.\n"
	    "# TYPE natguard_learned_hiders_mynetworks gauge\n"
	    "natguard_learned_hiders_mynetworks %zu\n"
	    "# HELP natguard_learned_hiders_same_host Learned hiders on the "
	    "mail host itself (loopback, its own addresses): a tunnel or "
	    "proxy hides every client.\n"
	    "# TYPE natguard_learned_hiders_same_host gauge\n"
	    "natguard_learned_hiders_same_host %zu\n", learned, inside, host);
	evbuffer_add_printf(b, "# HELP natguard_config_reloads_total "
	    "Configuration reloads, by outcome.\n"
	    "# TYPE natguard_config_reloads_total counter\n"
	    "natguard_config_reloads_total{outcome=\"ok\"} %llu\n"
	    "natguard_config_reloads_total{outcome=\"failed\"} %llu\n",
	    (unsigned long long)m.reloads_ok,
	    (unsigned long long)m.reloads_failed);
	evbuffer_add_printf(b, "# HELP natguard_protocol_errors_total "
	    "Connections closed for malformed input.\n"
	    "# TYPE natguard_protocol_errors_total counter\n"
	    "natguard_protocol_errors_total %llu\n",
	    (unsigned long long)m.protocol_errors);
	evbuffer_add_printf(b, "# HELP natguard_request_duration_seconds "
	    "Time from a complete request to its reply.\n"
	    "# TYPE natguard_request_duration_seconds histogram\n");
	for (i = 0; i < NBUCKETS; i++)
		evbuffer_add_printf(b, "natguard_request_duration_seconds_bucket"
		    "{le=\"%g\"} %llu\n", bucket_le[i],
		    (unsigned long long)m.buckets[i]);
	evbuffer_add_printf(b, "natguard_request_duration_seconds_bucket"
	    "{le=\"+Inf\"} %llu\nnatguard_request_duration_seconds_sum %.6f\n"
	    "natguard_request_duration_seconds_count %llu\n",
	    (unsigned long long)m.count, m.sum, (unsigned long long)m.count);
}

static void
metrics_http(struct evhttp_request *req, void *arg)
{
	struct evbuffer	*b;
	const char	*uri = evhttp_request_get_uri(req);

	(void)arg;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	if ((b = evbuffer_new()) == NULL)
		fatalx("evbuffer_new");
	if (strcmp(uri, "/metrics") == 0) {
		metrics_text(b);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "text/plain; version=0.0.4");
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/healthz") == 0) {
		evbuffer_add_printf(b, "ok\n");
		evhttp_send_reply(req, 200, "OK", b);
	} else
		evhttp_send_error(req, 404, "Not Found");
	evbuffer_free(b);
}

/* Listen on HOST:PORT ([IPV6]:PORT); fatal on failure, at startup. */
void
metrics_start(struct event_base *base, const char *hostport)
{
	char		*host, *colon;
	uint64_t	 port;

	if (hostport == NULL || *hostport == '\0')
		return;
	host = xstrdup(hostport);
	colon = strrchr(host, ':');
	*colon = '\0';
	if (parse_u64(colon + 1, 1, 65535, &port) != 0)
		fatalx("metrics_listen %s: bad port", hostport);
	if (host[0] == '[') {
		host[strlen(host) - 1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	if ((http = evhttp_new(base)) == NULL)
		fatalx("evhttp_new");
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(http, metrics_http, NULL);
	if (evhttp_bind_socket(http, host, (uint16_t)port) != 0)
		fatalx("cannot listen on metrics_listen %s", hostport);
	free(host);
	log_info("metrics on http://%s/metrics", hostport);
}

void
metrics_stop(void)
{
	if (http != NULL)
		evhttp_free(http);
	http = NULL;
	free(m.req);
	memset(&m, 0, sizeof(m));
}
