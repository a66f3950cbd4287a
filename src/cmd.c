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
#include <arpa/inet.h>

#include <event2/event.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "natguard.h"

/*
 * The commands a mail administrator runs by hand.  `check` runs exactly the
 * daemon's decision on one request, so that what it prints is what Postfix
 * would have been told.
 */

static void
json_print(json_t *o)
{
	char	*s;

	if ((s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
		fatalx("json_dumps");
	printf("%s\n", s);
	free(s);
	json_decref(o);
}

/* A request block on standard input, as Postfix would send it. */
static int
read_request(struct request *req)
{
	char		*line = NULL;
	const char	*why;
	size_t		 cap = 0;
	ssize_t		 n;
	int		 lineno = 0;

	while ((n = getline(&line, &cap, stdin)) != -1) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			n--;
		if (n == 0 && request_count(req) == 0)
			continue;
		switch (request_add_line(req, line, (size_t)n, &why)) {
		case REQ_ERROR:
			fprintf(stderr, "natguard: stdin:%d: %s\n", lineno,
			    why);
			free(line);
			return (-1);
		case REQ_DONE:
			free(line);
			return (0);
		case REQ_MORE:
			break;
		}
	}
	free(line);
	return (0);
}

struct check_wait {
	struct event_base	*base;
	struct spf_verdict	 v[2];
	int			 have[2];
	int			 whitelisted;
	int			 done;
};

static void
check_spf_done(const struct spf_verdict *helo,
    const struct spf_verdict *mailfrom, int whitelisted, void *arg)
{
	struct check_wait	*w = arg;
	const struct spf_verdict *in[2] = { helo, mailfrom };
	int			 i;

	for (i = 0; i < 2; i++) {
		if (in[i] == NULL)
			continue;
		w->have[i] = 1;
		spf_verdict_copy(&w->v[i], in[i]);
	}
	w->whitelisted = whitelisted;
	w->done = 1;
	event_base_loopbreak(w->base);
}

/* The SPF a decision needs, run on a loop of its own: DNS included. */
static int
check_spf(const struct config *cfg, struct decision *d)
{
	struct check_wait	 w;
	struct dns		*dns;
	struct spf		*spf;
	char			*err;

	memset(&w, 0, sizeof(w));
	if ((w.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((dns = dns_new(w.base, cfg, &err)) == NULL) {
		fprintf(stderr, "natguard: %s\n", err);
		free(err);
		event_base_free(w.base);
		return (-1);
	}
	spf = spf_new(w.base, dns, cfg);
	spf_run(spf, cfg, d, check_spf_done, &w);
	event_base_dispatch(w.base);
	decide_spf(cfg, d, w.have[0] ? &w.v[0] : NULL,
	    w.have[1] ? &w.v[1] : NULL, w.whitelisted);
	spf_verdict_clear(&w.v[0]);
	spf_verdict_clear(&w.v[1]);
	spf_free(spf);
	dns_free(dns);
	event_base_free(w.base);
	return (0);
}

/*
 * The gateway set as the daemon has it: scanned now, and the hiders it
 * learned from traffic, read from state_dir (never written here).
 */
static struct gwset *
scan_all(const struct config *cfg)
{
	struct gwset	*gs;
	struct learn	*l;
	char		*err;

	gs = gateway_scan(cfg);
	if (!cfg->hider_learning)
		return (gs);
	l = learn_new(cfg);
	if (learn_load(l, NULL, &err) != 0) {
		fprintf(stderr, "natguard: state file %s; learned hiders not "
		    "shown\n", err);
		free(err);
	} else
		learn_gateways(l, gs);
	learn_free(l);
	return (gs);
}

int
cmd_check(const struct config *cfg, int json, int argc, char **argv)
{
	struct request	*req;
	struct gwset	*gs;
	struct decision	*d;
	const char	*why;
	int		 i;

	req = request_new();
	for (i = 0; i < argc; i++) {
		if (request_set(req, argv[i], &why) != 0) {
			fprintf(stderr, "natguard: check: \"%s\": %s\n",
			    argv[i], why);
			request_free(req);
			return (2);
		}
	}
	if (argc == 0 && read_request(req) != 0) {
		request_free(req);
		return (2);
	}
	/* What Postfix always sends, so that a short command line works. */
	if (request_get(req, "request") == NULL)
		(void)request_set(req, "request=smtpd_access_policy", &why);
	if (request_get(req, "protocol_state") == NULL)
		(void)request_set(req, "protocol_state=RCPT", &why);

	gs = scan_all(cfg);
	d = decide(cfg, gs, req);
	if (d->spf_need != 0 && check_spf(cfg, d) != 0) {
		decision_free(d);
		gwset_free(gs);
		request_free(req);
		return (1);
	}
	if (json)
		json_print(report_json(d));
	else {
		printf("action=%s\n", d->reply);
		printf("reason: %s\n", d->reason);
		if (d->explanation != NULL)
			printf("explanation: %s\n", d->explanation);
	}
	decision_free(d);
	gwset_free(gs);
	request_free(req);
	return (0);
}

/* gateways --forget ADDR: out of the state file; the daemon follows. */
static int
forget(const struct config *cfg, const char *what)
{
	struct learn	*l;
	struct addr	 a;
	char		*err, *path;
	int		 rc = 1;

	if (addr_parse(what, &a) != 0) {
		fprintf(stderr, "natguard: gateways --forget %s: not an IPv4 "
		    "or IPv6 address\n", what);
		return (2);
	}
	if ((path = learn_state_path(cfg)) == NULL) {
		fprintf(stderr, "natguard: gateways --forget: state_dir is "
		    "empty: learned hiders live in the daemon's memory only; "
		    "restart it to forget them\n");
		return (1);
	}
	l = learn_new(cfg);
	if (learn_load(l, NULL, &err) != 0) {
		fprintf(stderr, "natguard: state file %s\n", err);
		free(err);
	} else if (learn_forget(l, &a) != 0)
		fprintf(stderr, "natguard: %s is not a learned hider in %s "
		    "(natguard gateways lists them)\n", what, path);
	else if (learn_save(l, &err) != 0) {
		fprintf(stderr, "natguard: state file %s\n", err);
		free(err);
	} else {
		printf("forgot %s; a running daemon takes it up within a few "
		    "seconds (it is learned again if the evidence comes "
		    "back)\n", what);
		rc = 0;
	}
	learn_free(l);
	free(path);
	return (rc);
}

/* A learned hider's evidence, under its line. */
static void
print_evidence(const struct gwset *gs, const struct gateway *g)
{
	char		 t1[32], t2[32];
	time_t		 a = (time_t)g->ev.first, b = (time_t)g->ev.last;
	struct tm	 tm;

	strftime(t1, sizeof(t1), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&a, &tm));
	strftime(t2, sizeof(t2), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&b, &tm));
	printf("    evidence: %u requests failed SPF for %u unrelated "
	    "domains (%s), first %s, last %s; probably %s\n", g->ev.count,
	    g->ev.ndomains, g->ev.domains, t1, t2,
	    hider_kind_row(hider_kind_of(gs, g))->name);
}

int
cmd_gateways(const struct config *cfg, int json, const char *forget_addr)
{
	struct gwset		*gs;
	const struct gateway	*g;
	char			 buf[INET6_ADDRSTRLEN];
	size_t			 i;

	if (forget_addr != NULL)
		return (forget(cfg, forget_addr));
	gs = scan_all(cfg);
	if (json)
		json_print(gwset_json(gs));
	else if (gwset_count(gs) == 0)
		printf("no gateways%s\n", cfg->gateways_auto ? " detected" :
		    " (gateways = none)");
	else {
		printf("%-40s %-6s %-16s %s\n", "ADDRESS", "PREFIX", "SOURCE",
		    "INTERFACE");
		for (i = 0; i < gwset_count(gs); i++) {
			g = gwset_get(gs, i);
			addr_format(&g->net.addr, buf, sizeof(buf));
			printf("%-40s %-6d %-16s %s\n", buf, g->net.prefix,
			    gw_source_name(g->source),
			    g->iface[0] ? g->iface : "-");
			if (g->source == GW_TRAFFIC)
				print_evidence(gs, g);
		}
	}
	gwset_free(gs);
	return (0);
}

/*
 * natguard doctor: this machine, Docker's files when given or present,
 * Postfix through postconf, and the running daemon.  Exit 1 on any FAIL.
 */
int
cmd_doctor(const struct config *cfg, int json, const char *daemon_json,
    const char *compose, const char *postfix_dir)
{
	struct doctor	*d;
	struct gwset	*gs;
	struct strlist	 eps = { NULL, 0 };
	int		 rc;

	d = doctor_new();
	gs = scan_all(cfg);
	doctor_container(d, "");
	doctor_engine(d, cfg, gwset_engine(gs));
	doctor_gateways(d, cfg, gs);
	doctor_hiders(d, cfg, gs);
	doctor_mynetworks(d, cfg);
	doctor_ipv6(d, "");
	docker_daemon_json(d, daemon_json != NULL ? daemon_json :
	    "/etc/docker/daemon.json", daemon_json != NULL);
	if (compose != NULL)
		docker_compose(d, compose);
	postfix_doctor(d, cfg, gs, postfix_dir);
	doctor_smtp_ports(d, gs, "/proc");
	(void)doctor_sockets(d, cfg, "", &eps);
	doctor_listen(d, cfg, &eps);
	doctor_spf_worker(d, cfg);
	strlist_clear(&eps);
	rc = doctor_status(d) == DS_FAIL ? 1 : 0;
	if (json)
		json_print(doctor_json(d));
	else
		doctor_print(d, stdout);
	gwset_free(gs);
	doctor_free(d);
	return (rc);
}

int
cmd_config(const struct config *cfg)
{
	struct doctor	*d = doctor_new();
	struct strlist	 eps = { NULL, 0 };
	size_t		 i;

	config_print(cfg, stdout);
	/* Who listens, on standard error: the output stays a config. */
	if (doctor_sockets(d, cfg, "", &eps) && eps.n > 0) {
		fprintf(stderr, "natguard: natguard.socket is enabled: systemd "
		    "holds");
		for (i = 0; i < eps.n; i++)
			fprintf(stderr, "%s %s", i ? "," : "", eps.v[i]);
		fprintf(stderr, ", which natguard serves in place of listen\n");
	}
	strlist_clear(&eps);
	doctor_free(d);
	return (0);
}

/* Text for a counter object: "a 3, b 1", largest first. */
static void
print_counts(const char *label, json_t *o)
{
	const char	*key, *best;
	json_t		*v, *copy = json_deep_copy(o);
	json_int_t	 n;
	int		 first = 1;

	printf("%s:", label);
	while (json_object_size(copy) > 0) {
		best = NULL;
		n = -1;
		json_object_foreach(copy, key, v) {
			if (json_integer_value(v) > n) {
				n = json_integer_value(v);
				best = key;
			}
		}
		printf("%s %s %lld", first ? "" : ",", best, (long long)n);
		first = 0;
		json_object_del(copy, best);
	}
	printf("%s\n", first ? " none" : "");
	json_decref(copy);
}

static int
audit_file(struct audit_sum *s, FILE *f)
{
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	while ((n = getline(&line, &cap, f)) != -1) {
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		audit_sum_line(s, line);
	}
	free(line);
	return (ferror(f) ? -1 : 0);
}

/* natguard audit [--json] [--since TIME] [LOGFILE ...] */
/* Suspected hiders, and the mail they cost: whom to ask to resend. */
static void
print_hiders(json_t *o)
{
	json_t		*sus = json_object_get(o, "suspected_hiders"), *v, *r;
	const char	*k;
	size_t		 i, n = 0;

	printf("suspected hiders: ");
	json_object_foreach(sus, k, v)
		printf("%s%s (%lld refused, %lld unrelated domains)",
		    n++ > 0 ? ", " : "", k, (long long)json_integer_value(
		    json_object_get(v, "refused")), (long long)
		    json_integer_value(json_object_get(v, "domains")));
	printf("%s\n", n == 0 ? "none" : "");
	if (n == 0)
		return;
	printf("mail they cost (time, client, from, to, reply):\n");
	json_array_foreach(json_object_get(o, "refused_mail"), i, r)
		printf("  %s %s <%s> <%s> %s\n",
		    json_string_value(json_object_get(r, "time")) ?
		    json_string_value(json_object_get(r, "time")) : "-",
		    json_string_value(json_object_get(r, "client")),
		    json_string_value(json_object_get(r, "from")) ?
		    json_string_value(json_object_get(r, "from")) : "",
		    json_string_value(json_object_get(r, "to")) ?
		    json_string_value(json_object_get(r, "to")) : "",
		    json_string_value(json_object_get(r, "reply")) ?
		    json_string_value(json_object_get(r, "reply")) : "");
	if (json_object_get(o, "refused_mail_not_listed") != NULL)
		printf("  ... and %lld more not listed\n", (long long)
		    json_integer_value(json_object_get(o,
		    "refused_mail_not_listed")));
}

int
cmd_audit(int json, time_t since, int argc, char **argv)
{
	struct audit_sum	*s = audit_sum_new(since);
	json_t			*o;
	FILE			*f;
	int			 i, rc = 0;

	if (argc == 0 && audit_file(s, stdin) != 0)
		rc = 1;
	for (i = 0; i < argc; i++) {
		if ((f = fopen(argv[i], "r")) == NULL ||
		    audit_file(s, f) != 0) {
			fprintf(stderr, "natguard: %s: %s\n", argv[i],
			    strerror(errno));
			rc = 1;
		}
		if (f != NULL)
			fclose(f);
	}
	o = audit_sum_json(s);
	if (json)
		json_print(json_incref(o));
	else {
		printf("decisions: %lld (%s .. %s)\n",
		    (long long)json_integer_value(json_object_get(o,
		    "decisions")),
		    json_string_value(json_object_get(o, "first")) ?
		    json_string_value(json_object_get(o, "first")) : "-",
		    json_string_value(json_object_get(o, "last")) ?
		    json_string_value(json_object_get(o, "last")) : "-");
		print_counts("by action", json_object_get(o, "by_action"));
		print_counts("by reason", json_object_get(o, "by_reason"));
		print_counts("NAT gateways", json_object_get(o, "gateways"));
		print_counts("sender domains behind NAT",
		    json_object_get(o, "sender_domains"));
		print_counts("SPF against the gateway would have said",
		    json_object_get(o, "spf_probe"));
		printf("Postfix's own SPF rejections of a gateway address: "
		    "%lld\n", (long long)json_integer_value(json_object_get(o,
		    "postfix_symptoms")));
		print_hiders(o);
	}
	json_decref(o);
	audit_sum_free(s);
	return (rc);
}
