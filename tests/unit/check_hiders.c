#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"
#include "unit.h"

/*
 * Hiders beyond the engines (SPEC sections 4 and 5): mynetworks, private
 * clients, hiders learned from traffic, their kinds, and the learning
 * table's bounds and state file.  The gateway set is 172.20.0.1
 * (default-route), the learned hider 10.0.0.5 (traffic) and local subnets
 * 10.0.0.0/24 (Swarm's ingress range) and 172.29.8.0/24.
 */

static struct gwset *
hider_gateways(int kubernetes)
{
	struct gwset		*gs = gwset_new();
	struct hider_evidence	 ev;
	struct engine_info	 info;
	struct net		 n;
	struct addr		 a;
	const char		*why;

	memset(&info, 0, sizeof(info));
	info.kind = ENGINE_DOCKER;
	info.kubernetes = kubernetes;
	gwset_set_engine(gs, &info);
	ck_assert_int_eq(net_parse("172.20.0.1", &n, &why), 0);
	gwset_add(gs, &n, GW_DEFAULT_ROUTE, "eth0");
	ck_assert_int_eq(net_parse("10.0.0.0/24", &n, &why), 0);
	gwset_add_local(gs, &n);
	ck_assert_int_eq(net_parse("172.29.8.0/24", &n, &why), 0);
	gwset_add_local(gs, &n);
	/* A WireGuard or Tailscale peer's network. */
	ck_assert_int_eq(net_parse("10.8.0.0/24", &n, &why), 0);
	gwset_add_local(gs, &n);
	gwset_add_tunnel(gs, &n);
	ck_assert_int_eq(net_parse("100.64.0.0/10", &n, &why), 0);
	gwset_add_tunnel(gs, &n);
	memset(&ev, 0, sizeof(ev));
	ev.count = 4;
	ev.ndomains = 3;
	ev.first = 1764633600;	/* 2025-12-02 00:00:00Z */
	ev.last = 1764637200;
	snprintf(ev.domains, sizeof(ev.domains), "a.test, b.test, c.test");
	ck_assert_int_eq(addr_parse("10.0.0.5", &a), 0);
	ck_assert_int_eq(gwset_add_traffic(gs, &a, &ev), 0);
	/* On the mail host: a public address of its own, a tunnel learned. */
	ck_assert_int_eq(addr_parse("198.51.100.1", &a), 0);
	gwset_add_own(gs, &a);
	ck_assert_int_eq(addr_parse("127.0.0.2", &a), 0);
	ck_assert_int_eq(gwset_add_traffic(gs, &a, &ev), 0);
	return (gs);
}

static struct request *
req_of(const char *client, const char *sender)
{
	struct request	*req = request_new();
	const char	*why;
	char		*s;

	request_set(req, "request=smtpd_access_policy", &why);
	xasprintf(&s, "client_address=%s", client);
	request_set(req, s, &why);
	free(s);
	xasprintf(&s, "sender=%s", sender);
	request_set(req, s, &why);
	free(s);
	request_set(req, "helo_name=A2345678", &why);
	return (req);
}

static const struct {
	const char	*label;
	const char	*config;
	const char	*client;
	enum action	 action;
	const char	*reason;
	enum client_class class;
	enum learn_mark	 learn;
	const char	*words[3];	/* in the explanation */
	int		 warning;	/* logged as a warning */
} steps[] = {
	{ "LAN host in mynetworks: DUNNO, watched",
	    "mynetworks = 192.168.1.0/24\n", "192.168.1.10", ACT_DUNNO,
	    "mynetworks", CLIENT_SKIP, LEARN_WATCH,
	    { "192.168.1.10 is in mynetworks", "permit_mynetworks" }, 0 },
	{ "public host in mynetworks: DUNNO, not watched",
	    "mynetworks = 192.0.2.0/24\n", "192.0.2.9", ACT_DUNNO,
	    "mynetworks", CLIENT_SKIP, LEARN_NONE, { "mynetworks" }, 0 },
	{ "mynetworks, learning off: not watched",
	    "mynetworks = 192.168.1.0/24\nhider_learning = no\n",
	    "192.168.1.10", ACT_DUNNO, "mynetworks", CLIENT_SKIP, LEARN_NONE,
	    { "mynetworks" }, 0 },
	{ "mynetworks, in spf_whitelist: not watched",
	    "mynetworks = 192.168.1.0/24\nspf_whitelist = 192.168.1.10\n",
	    "192.168.1.10", ACT_DUNNO, "mynetworks", CLIENT_SKIP, LEARN_NONE,
	    { "mynetworks" }, 0 },
	{ "detected gateway inside mynetworks: still deferred",
	    "mynetworks = 172.20.0.0/16\n", "172.20.0.1", ACT_DEFER,
	    "nat-gateway", CLIENT_GATEWAY, LEARN_NONE,
	    { "default-route" }, 0 },
	{ "learned hider: nat_action, with its evidence", "", "10.0.0.5",
	    ACT_DEFER, "nat-gateway", CLIENT_GATEWAY, LEARN_REFRESH,
	    { "a hider learned from traffic (traffic): 4 requests from it "
	    "failed SPF for 3 unrelated sender domains (a.test, b.test, "
	    "c.test) between 2025-12-02 00:00:00Z and 2025-12-02 01:00:00Z",
	    "probably swarm-routing-mesh", "mode: host" }, 0 },
	{ "learned hider, warn", "nat_action = warn\n", "10.0.0.5", ACT_WARN,
	    "nat-gateway", CLIENT_GATEWAY, LEARN_REFRESH,
	    { "learned from traffic" }, 0 },
	{ "learned hider inside mynetworks: DUNNO, said loudly",
	    "mynetworks = 10.0.0.0/8\n", "10.0.0.5", ACT_DUNNO, "mynetworks",
	    CLIENT_GATEWAY, LEARN_WATCH, { "open relay",
	    "spf_whitelist = 10.0.0.5", "3 unrelated sender domains" }, 1 },
	{ "learned hider in mynetworks and spf_whitelist: your relay",
	    "mynetworks = 10.0.0.0/8\nspf_whitelist = 10.0.0.5\n", "10.0.0.5",
	    ACT_DUNNO, "mynetworks", CLIENT_SKIP, LEARN_NONE,
	    { "permit_mynetworks decides" }, 0 },
	{ "mynetworks = none", "mynetworks = none\n", "192.168.1.10",
	    ACT_DUNNO, "spf-pending", CLIENT_EXTERNAL, LEARN_NONE, { NULL },
	    0 },
	{ "skip before mynetworks, loopback watched",
	    "mynetworks = 127.0.0.0/8\n", "127.0.0.1", ACT_DUNNO,
	    "skip-address", CLIENT_SKIP, LEARN_WATCH, { "skip_addresses" },
	    0 },
	{ "::1 in the default skip_addresses: DUNNO, watched", "", "::1",
	    ACT_DUNNO, "skip-address", CLIENT_SKIP, LEARN_WATCH,
	    { "skip_addresses" }, 0 },
	{ "skip_addresses set by hand: the admin's word, not watched",
	    "skip_addresses = 127.0.0.0/8\n", "127.0.0.1", ACT_DUNNO,
	    "skip-address", CLIENT_SKIP, LEARN_NONE, { "skip_addresses" }, 0 },
	{ "loopback in spf_whitelist: not watched",
	    "spf_whitelist = 127.0.0.1\n", "127.0.0.1", ACT_DUNNO,
	    "skip-address", CLIENT_SKIP, LEARN_NONE, { "skip_addresses" }, 0 },
	{ "loopback, learning off: not watched", "hider_learning = no\n",
	    "127.0.0.1", ACT_DUNNO, "skip-address", CLIENT_SKIP, LEARN_NONE,
	    { "skip_addresses" }, 0 },
	{ "learned loopback hider in skip_addresses: DUNNO, said loudly",
	    "mynetworks = none\n", "127.0.0.2", ACT_DUNNO, "skip-address",
	    CLIENT_GATEWAY, LEARN_WATCH, { "127.0.0.2 is loopback",
	    "every client is hidden and SPF is skipped for all of them "
	    "(skip_addresses)", "probably same-host" }, 1 },
	{ "learned loopback hider in mynetworks: the open relay said",
	    "skip_addresses =\nmynetworks = 127.0.0.0/8\n", "127.0.0.2",
	    ACT_DUNNO, "mynetworks", CLIENT_GATEWAY, LEARN_WATCH,
	    { "(mynetworks)", "relays for anyone who reaches the tunnel",
	    "spf_whitelist" }, 1 },
	{ "learned loopback hider in spf_whitelist: yours, quiet",
	    "spf_whitelist = 127.0.0.2\n", "127.0.0.2", ACT_DUNNO,
	    "skip-address", CLIENT_SKIP, LEARN_NONE, { "skip_addresses" }, 0 },
	{ "learned loopback, neither skipped nor trusted: SPF, reported",
	    "skip_addresses =\nmynetworks = none\n", "127.0.0.2", ACT_DUNNO,
	    "spf-pending", CLIENT_EXTERNAL, LEARN_NONE, { NULL }, 1 },
	{ "the host's public address in mynetworks: watched",
	    "mynetworks = 198.51.100.0/24\n", "198.51.100.1", ACT_DUNNO,
	    "mynetworks", CLIENT_SKIP, LEARN_WATCH, { "mynetworks" }, 0 },
};

START_TEST(test_steps)
{
	struct config	*cfg;
	struct gwset	*gs = hider_gateways(0);
	struct request	*req = req_of(steps[_i].client, "a@example.org");
	struct decision	*d;
	char		*err;
	int		 i;

	cfg = config_parse("t", steps[_i].config, strlen(steps[_i].config),
	    &err);
	ck_assert_msg(cfg != NULL, "%s: %s", steps[_i].label, err);
	d = decide(cfg, gs, req);
	ck_assert_msg(d->action == steps[_i].action, "%s: action %s",
	    steps[_i].label, action_name(d->action));
	ck_assert_msg(strcmp(d->reason, steps[_i].reason) == 0, "%s: %s",
	    steps[_i].label, d->reason);
	ck_assert_msg(d->class == steps[_i].class, "%s: class %s",
	    steps[_i].label, client_class_name(d->class));
	ck_assert_msg(d->learn == steps[_i].learn, "%s: learn %d",
	    steps[_i].label, d->learn);
	for (i = 0; i < 3 && steps[_i].words[i] != NULL; i++)
		ck_assert_msg(d->explanation != NULL &&
		    strstr(d->explanation, steps[_i].words[i]) != NULL,
		    "%s: explanation lacks \"%s\": %s", steps[_i].label,
		    steps[_i].words[i], d->explanation);
	ck_assert_msg((d->warning != NULL) == steps[_i].warning,
	    "%s: warning %s", steps[_i].label, d->warning);
	/* Answered at once: a watched client's SPF runs aside. */
	if (d->learn == LEARN_WATCH)
		ck_assert_msg(d->spf_need == 0 && d->spf_mailbox != NULL,
		    "%s", steps[_i].label);
	decision_free(d);
	request_free(req);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

/* Step 7 for a private client: never a 550 unless asked for. */
static const struct {
	const char	*label;
	const char	*config;
	const char	*client;
	int		 result;
	int		 kubernetes;
	enum action	 action;
	const char	*reason;
	const char	*reply;		/* prefix */
	enum learn_mark	 learn;
	const char	*kind;		/* in the explanation */
} privates[] = {
	{ "proxy on a local subnet: DEFER_IF_PERMIT", "", "172.29.8.3",
	    SPF_R_FAIL, 0, ACT_DEFER_IF_PERMIT, "private-client",
	    "DEFER_IF_PERMIT 4.7.23 SPF fail for example.org from private "
	    "address 172.29.8.3: a proxy or NAT probably hides the real "
	    "client", LEARN_EVIDENCE, "probably tcp-proxy" },
	{ "private_spf_action = defer", "private_spf_action = defer\n",
	    "172.29.8.3", SPF_R_FAIL, 0, ACT_DEFER, "private-client",
	    "DEFER 4.7.23 ", LEARN_EVIDENCE, "send-proxy" },
	{ "private_spf_action = reject: the 550, still evidence",
	    "private_spf_action = reject\n", "172.29.8.3", SPF_R_FAIL, 0,
	    ACT_REJECT, "spf-fail", "550 5.7.23 ", LEARN_EVIDENCE, NULL },
	{ "a router's NAT: not on a local subnet", "", "192.168.1.10",
	    SPF_R_FAIL, 0, ACT_DEFER_IF_PERMIT, "private-client",
	    "DEFER_IF_PERMIT 4.7.23 ", LEARN_EVIDENCE, "probably nat-router" },
	{ "Swarm's ingress", "", "10.0.0.7", SPF_R_FAIL, 0,
	    ACT_DEFER_IF_PERMIT, "private-client", "DEFER_IF_PERMIT ",
	    LEARN_EVIDENCE, "probably swarm-routing-mesh" },
	{ "in a pod: kube-proxy", "", "10.244.1.1", SPF_R_FAIL, 1,
	    ACT_DEFER_IF_PERMIT, "private-client", "DEFER_IF_PERMIT ",
	    LEARN_EVIDENCE, "externalTrafficPolicy: Local" },
	{ "CGNAT 100.64/10", "", "100.64.3.3", SPF_R_FAIL, 0,
	    ACT_DEFER_IF_PERMIT, "private-client", "DEFER_IF_PERMIT ",
	    LEARN_EVIDENCE, NULL },
	{ "ULA", "", "fd12:3456::9", SPF_R_FAIL, 0, ACT_DEFER_IF_PERMIT,
	    "private-client", "DEFER_IF_PERMIT ", LEARN_EVIDENCE, NULL },
	{ "permerror rejected: 4.7.24", "spf_reject = fail permerror\n",
	    "172.29.8.3", SPF_R_PERMERROR, 0, ACT_DEFER_IF_PERMIT,
	    "private-client", "DEFER_IF_PERMIT 4.7.24 ", LEARN_EVIDENCE,
	    NULL },
	{ "learning off: no evidence", "hider_learning = no\n", "172.29.8.3",
	    SPF_R_FAIL, 0, ACT_DEFER_IF_PERMIT, "private-client",
	    "DEFER_IF_PERMIT ", LEARN_NONE, NULL },
	{ "private pass: a header", "", "172.29.8.3", SPF_R_PASS, 0,
	    ACT_PREPEND, "spf-pass", "PREPEND Received-SPF: pass",
	    LEARN_NONE, NULL },
	{ "private softfail: a header", "", "172.29.8.3", SPF_R_SOFTFAIL, 0,
	    ACT_PREPEND, "spf-softfail", "PREPEND ", LEARN_NONE, NULL },
	{ "public fail: the 550", "", "192.0.2.9", SPF_R_FAIL, 0, ACT_REJECT,
	    "spf-fail", "550 5.7.23 ", LEARN_NONE, NULL },
	{ "private_networks emptied: the 550", "private_networks =\n",
	    "172.29.8.3", SPF_R_FAIL, 0, ACT_REJECT, "spf-fail",
	    "550 5.7.23 ", LEARN_NONE, NULL },
	{ "the host's own public address: never the 550", "",
	    "198.51.100.1", SPF_R_FAIL, 0, ACT_DEFER_IF_PERMIT,
	    "private-client", "DEFER_IF_PERMIT 4.7.23 SPF fail for "
	    "example.org from this host's address 198.51.100.1: a tunnel or "
	    "proxy on the mail host probably hides the real client",
	    LEARN_EVIDENCE, "probably same-host" },
	{ "the host's own address, private_networks emptied: still no 550",
	    "private_networks =\n", "198.51.100.1", SPF_R_FAIL, 0,
	    ACT_DEFER_IF_PERMIT, "private-client", "DEFER_IF_PERMIT ",
	    LEARN_EVIDENCE, "send-proxy" },
	{ "loopback, not skipped: never the 550", "skip_addresses =\n",
	    "127.0.0.1", SPF_R_FAIL, 0, ACT_DEFER_IF_PERMIT, "private-client",
	    "DEFER_IF_PERMIT 4.7.23 SPF fail for example.org from this "
	    "host's address 127.0.0.1", LEARN_EVIDENCE, "cannot send it" },
	{ "a VPS's SNAT over WireGuard: vpn-relay", "", "10.8.0.2",
	    SPF_R_FAIL, 0, ACT_DEFER_IF_PERMIT, "private-client",
	    "DEFER_IF_PERMIT 4.7.23 ", LEARN_EVIDENCE, "probably vpn-relay" },
	{ "a tailnet routed over tailscale0: vpn-relay, with its fix", "",
	    "100.101.102.103", SPF_R_FAIL, 0, ACT_DEFER_IF_PERMIT,
	    "private-client", "DEFER_IF_PERMIT ", LEARN_EVIDENCE,
	    "DNAT without SNAT on the VPS" },
	{ "a Kubernetes pod's own address: same-host, not kube-proxy", "",
	    "198.51.100.1", SPF_R_FAIL, 1, ACT_DEFER_IF_PERMIT,
	    "private-client", "DEFER_IF_PERMIT ", LEARN_EVIDENCE,
	    "probably same-host" },
};

START_TEST(test_private)
{
	struct config		*cfg;
	struct gwset		*gs = hider_gateways(privates[_i].kubernetes);
	struct request		*req = req_of(privates[_i].client,
	    "a@example.org");
	struct decision		*d;
	struct spf_verdict	 v;
	char			*err;

	cfg = config_parse("t", privates[_i].config,
	    strlen(privates[_i].config), &err);
	ck_assert_msg(cfg != NULL, "%s: %s", privates[_i].label, err);
	d = decide(cfg, gs, req);
	ck_assert_msg(d->spf_need & SPF_NEED_MAILFROM, "%s",
	    privates[_i].label);
	memset(&v, 0, sizeof(v));
	v.result = privates[_i].result;
	v.domain = xstrdup("example.org");
	decide_spf(cfg, d, NULL, &v, 0);
	ck_assert_msg(d->action == privates[_i].action, "%s: action %s",
	    privates[_i].label, action_name(d->action));
	ck_assert_msg(strcmp(d->reason, privates[_i].reason) == 0, "%s: %s",
	    privates[_i].label, d->reason);
	ck_assert_msg(strncmp(d->reply, privates[_i].reply,
	    strlen(privates[_i].reply)) == 0, "%s: reply %s",
	    privates[_i].label, d->reply);
	ck_assert_msg(d->learn == privates[_i].learn, "%s: learn %d",
	    privates[_i].label, d->learn);
	if (privates[_i].kind != NULL)
		ck_assert_msg(strstr(d->explanation, privates[_i].kind) !=
		    NULL, "%s: explanation lacks %s: %s", privates[_i].label,
		    privates[_i].kind, d->explanation);
	if ((d->action == ACT_DEFER_IF_PERMIT || d->action == ACT_DEFER) &&
	    d->same_host)
		ck_assert_msg(strstr(d->explanation, "a program on the mail "
		    "host") != NULL && strstr(d->explanation, "spf_whitelist")
		    != NULL, "%s: %s", privates[_i].label, d->explanation);
	else if (d->action == ACT_DEFER_IF_PERMIT || d->action == ACT_DEFER)
		ck_assert_msg(strstr(d->explanation, "mynetworks") != NULL &&
		    strstr(d->explanation, "private_networks") != NULL,
		    "%s: %s", privates[_i].label, d->explanation);
	spf_verdict_clear(&v);
	decision_free(d);
	request_free(req);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

/* Every kind has a name, a cause and a fix, and the manual has each. */
START_TEST(test_kind_rows)
{
	const char	*dir = getenv("TESTDATA");
	char		*path, *man;
	int		 k;

	ck_assert_msg(dir != NULL, "TESTDATA is not set");
	xasprintf(&path, "%s/../../man/natguard.conf.5", dir);
	man = read_small(path);
	ck_assert_msg(man != NULL, "%s", path);
	for (k = 0; k < HK_COUNT; k++) {
		const struct hider_kind_row *r = hider_kind_row(k);

		ck_assert_msg(r->name != NULL && r->cause != NULL &&
		    r->fix != NULL && r->recognised != NULL, "kind %d", k);
		ck_assert_msg(strstr(man, r->name) != NULL,
		    "natguard.conf(5) does not name hider kind %s", r->name);
	}
	/* And every program of the mail host's own, with its fix. */
	for (k = 0; hider_program_get(k) != NULL; k++) {
		const struct hider_program_row *p = hider_program_get(k);
		char	*b1, *b2;

		ck_assert_msg(p->what != NULL && p->fix != NULL, "%s",
		    p->comm);
		ck_assert_ptr_eq(hider_program(p->comm), p);
		xasprintf(&b1, ".BR %s ", p->comm);
		xasprintf(&b2, ".B %s\n", p->comm);
		ck_assert_msg(strstr(man, b1) != NULL ||
		    strstr(man, b2) != NULL,
		    "natguard.conf(5) does not name program %s", p->comm);
		free(b1);
		free(b2);
	}
	ck_assert_ptr_null(hider_program("postfix"));
	free(man);
	free(path);
}
END_TEST

/* The registrable domain decides what is "unrelated". */
static const struct {
	const char	*name;
	const char	*reg;
} regs[] = {
	{ "example.org", "example.org" },
	{ "mail.Example.ORG.", "example.org" },
	{ "a.b.example.co.uk", "example.co.uk" },
	{ "co.uk", "co.uk" },
	{ "localhost", "localhost" },
	{ "x.github.io", "x.github.io" },
};

START_TEST(test_registrable)
{
	char	buf[256];

	ck_assert_str_eq(registrable_domain(regs[_i].name, buf, sizeof(buf)),
	    regs[_i].reg);
	ck_assert_ptr_null(registrable_domain("", buf, sizeof(buf)));
	ck_assert_ptr_null(registrable_domain(NULL, buf, sizeof(buf)));
}
END_TEST

static void
write_text(const char *path, const char *text)
{
	FILE	*f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static struct config *
learn_cfg(const char *extra)
{
	struct config	*cfg;
	char		*text, *err;
	static char	 dir[] = "/tmp/ng-learn.XXXXXX";
	static int	 made;

	if (!made) {
		ck_assert_ptr_nonnull(mkdtemp(dir));
		made = 1;
	}
	xasprintf(&text, "state_dir = %s\n%s", dir, extra);
	cfg = config_parse("t", text, strlen(text), &err);
	ck_assert_msg(cfg != NULL, "%s", err);
	free(text);
	return (cfg);
}

static struct addr
A(const char *s)
{
	struct addr	a;

	ck_assert_int_eq(addr_parse(s, &a), 0);
	return (a);
}

START_TEST(test_learn_threshold)
{
	struct config	*cfg = learn_cfg("");
	struct learn	*l = learn_new(cfg);
	struct addr	 a = A("172.29.8.3"), pub = A("192.0.2.9");
	struct gwset	*gs = gwset_new();
	long long	 t = 1000000;

	ck_assert_int_eq(learn_record(l, &pub, 0, "a.test", t), -1);
	ck_assert_int_eq(learn_record(l, &a, 0, NULL, t), -1);
	ck_assert_int_eq(learn_record(l, &a, 0, "x.a.example.org", t), 0);
	/* The same registrable domain again is no new evidence. */
	ck_assert_int_eq(learn_record(l, &a, 0, "y.a.example.org", t + 1), 0);
	ck_assert_int_eq(learn_record(l, &a, 0, "Example.ORG", t + 2), 0);
	ck_assert_int_eq(learn_record(l, &a, 0, "b.example.net", t + 3), 0);
	ck_assert_uint_eq(learn_count(l), 0);
	ck_assert_int_eq(learn_record(l, &a, 0, "c.example.com", t + 4), 1);
	ck_assert_uint_eq(learn_count(l), 1);
	ck_assert_int_eq(learn_record(l, &a, 0, "d.example.com", t + 5), 0);
	learn_gateways(l, gs);
	ck_assert_uint_eq(gwset_count(gs), 1);
	ck_assert_int_eq(gwset_get(gs, 0)->source, GW_TRAFFIC);
	ck_assert_uint_eq(gwset_get(gs, 0)->ev.count, 6);
	ck_assert_uint_eq(gwset_get(gs, 0)->ev.ndomains, 3);
	ck_assert_str_eq(gwset_get(gs, 0)->ev.domains,
	    "example.org, example.net, example.com");
	ck_assert_int_eq(gwset_get(gs, 0)->ev.first, t);
	ck_assert_int_eq(gwset_get(gs, 0)->ev.last, t + 5);
	gwset_free(gs);
	learn_free(l);
	config_free(cfg);
}
END_TEST

START_TEST(test_learn_window)
{
	struct config	*cfg = learn_cfg("hider_window = 10m\n"
	    "hider_expiry = 1h\n");
	struct learn	*l = learn_new(cfg);
	struct addr	 a = A("10.1.1.1");
	long long	 t = 1000000;

	ck_assert_int_eq(learn_record(l, &a, 0, "a.test", t), 0);
	ck_assert_int_eq(learn_record(l, &a, 0, "b.test", t + 300), 0);
	/* a.test is past the window: two fresh domains, not three. */
	ck_assert_int_eq(learn_record(l, &a, 0, "c.test", t + 700), 0);
	ck_assert_int_eq(learn_record(l, &a, 0, "d.test", t + 800), 1);
	/* Evidence keeps it; none for hider_expiry forgets it. */
	learn_refresh(l, &a, t + 3000);
	ck_assert_int_eq(learn_expire(l, t + 3000 + 3599), 0);
	ck_assert_uint_eq(learn_count(l), 1);
	ck_assert_int_eq(learn_expire(l, t + 3000 + 3601), 1);
	ck_assert_uint_eq(learn_count(l), 0);
	/* Evidence still gathering goes once all of it is old. */
	ck_assert_int_eq(learn_record(l, &a, 0, "a.test", t), 0);
	ck_assert_uint_eq(learn_tracked(l), 1);
	ck_assert_int_eq(learn_expire(l, t + 601), 0);
	ck_assert_uint_eq(learn_tracked(l), 0);
	learn_free(l);
	config_free(cfg);
}
END_TEST

/* Floods: memory stays within the stated bounds, nothing public learned. */
START_TEST(test_learn_bounds)
{
	struct config	*cfg = learn_cfg("");
	struct learn	*l = learn_new(cfg);
	struct addr	 a = A("10.9.9.9"), b;
	char		 dom[64];
	long long	 t = 1000000;
	unsigned int	 i;
	int		 learned = 0;

	/* One address, 10000 forged sender domains. */
	for (i = 0; i < 10000; i++) {
		snprintf(dom, sizeof(dom), "forged%u.test", i);
		learned += learn_record(l, &a, 0, dom, t + i) == 1;
	}
	ck_assert_int_eq(learned, 1);
	ck_assert_uint_eq(learn_tracked(l), 1);
	/* 20k addresses (20 times the table), each failing for one to three
	 * domains. */
	b = A("10.0.0.0");
	for (i = 0; i < 20000; i++) {
		b.bytes[1] = (unsigned char)(i >> 16);
		b.bytes[2] = (unsigned char)(i >> 8);
		b.bytes[3] = (unsigned char)i;
		learn_record(l, &b, 0, "a.test", t + i);
		if (i % 10 == 0) {
			learn_record(l, &b, 0, "b.test", t + i);
			learn_record(l, &b, 0, "c.test", t + i);
		}
		if (i % 997 == 0) {
			ck_assert_uint_le(learn_tracked(l), HIDER_ADDRS_MAX);
			ck_assert_uint_le(learn_count(l), HIDER_LEARNED_MAX);
		}
	}
	ck_assert_uint_eq(learn_count(l), HIDER_LEARNED_MAX);
	ck_assert_uint_eq(learn_tracked(l), HIDER_ADDRS_MAX);
	/* A public address, however much it fails, is never tracked. */
	b = A("198.51.100.7");
	for (i = 0; i < 100; i++) {
		snprintf(dom, sizeof(dom), "p%u.test", i);
		ck_assert_int_eq(learn_record(l, &b, 0, dom, t), -1);
	}
	learn_free(l);
	config_free(cfg);
}
END_TEST

static void
learn_three_host(struct learn *l, const char *addr, int host, long long t)
{
	struct addr	a = A(addr);

	learn_record(l, &a, host, "a.test", t);
	learn_record(l, &a, host, "b.test", t + 1);
	ck_assert_int_eq(learn_record(l, &a, host, "c.test", t + 2), 1);
}

static void
learn_three(struct learn *l, const char *addr, long long t)
{
	learn_three_host(l, addr, 0, t);
}

START_TEST(test_learn_state)
{
	struct config	*cfg = learn_cfg("");
	struct learn	*l = learn_new(cfg), *m;
	struct gwset	*gs = gwset_new();
	struct addr	 a = A("10.2.2.2");
	char		*err, *path = learn_state_path(cfg);

	unlink(path);
	ck_assert_int_eq(learn_load(l, NULL, &err), 0);	/* none yet */
	learn_three(l, "10.2.2.2", 2000000);
	learn_three(l, "fd00:9::9", 2000000);
	/* The mail host's public address: learned, as decide() says. */
	learn_three_host(l, "198.51.100.1", 1, 2000000);
	ck_assert_int_eq(learn_save(l, &err), 0);
	ck_assert_int_eq(learn_dirty(l), 0);
	/* A restart reads them back, evidence and all. */
	m = learn_new(cfg);
	ck_assert_int_eq(learn_load(m, NULL, &err), 0);
	ck_assert_uint_eq(learn_count(m), 3);
	learn_gateways(m, gs);
	ck_assert_str_eq(gwset_get(gs, 0)->ev.domains,
	    "a.test, b.test, c.test");
	ck_assert_uint_eq(gwset_get(gs, 0)->ev.count, 3);
	/* Another writer (gateways --forget) is noticed and followed. */
	ck_assert_int_eq(learn_forget(m, &a), 0);
	ck_assert_int_eq(learn_forget(m, &a), -1);
	sleep(1);	/* a new mtime, whatever the file system's grain */
	ck_assert_int_eq(learn_save(m, &err), 0);
	ck_assert_int_eq(learn_sync(l, &err), 1);
	ck_assert_uint_eq(learn_count(l), 2);
	ck_assert_int_eq(learn_sync(l, &err), 0);
	/*
	 * A private_networks without the address drops it on load; the mail
	 * host's own stays, whatever private_networks says.
	 */
	config_free(cfg);
	cfg = learn_cfg("private_networks = fd00::/8\n");
	learn_free(m);
	m = learn_new(cfg);
	ck_assert_int_eq(learn_load(m, NULL, &err), 0);
	ck_assert_uint_eq(learn_count(m), 2);
	unlink(path);
	free(path);
	gwset_free(gs);
	learn_free(l);
	learn_free(m);
	config_free(cfg);
}
END_TEST

/* A corrupt or foreign state file: said, ignored, nothing of it taken. */
static const struct {
	const char	*label;
	const char	*text;
	const char	*error;
} bad_states[] = {
	{ "garbage", "\x01\x02not json", "line 1" },
	{ "truncated", "{\"format\": \"natguard-hiders\", \"version\": 1, "
	    "\"hiders\": [{\"address\"", "line 1" },
	{ "another program's JSON", "{\"gateways\": []}",
	    "not a natguard state file" },
	{ "a later version", "{\"format\": \"natguard-hiders\", "
	    "\"version\": 2, \"hiders\": []}", "not a natguard state file" },
	{ "bad address", "{\"format\": \"natguard-hiders\", \"version\": 1, "
	    "\"hiders\": [{\"address\": \"10.0.0.300\", \"learned\": 1, "
	    "\"first\": 1, \"last\": 1, \"count\": 1, \"domains\": []}]}",
	    "hider 1: an entry without a valid address" },
	{ "negative time", "{\"format\": \"natguard-hiders\", \"version\": 1, "
	    "\"hiders\": [{\"address\": \"10.0.0.3\", \"learned\": -5, "
	    "\"first\": 1, \"last\": 1, \"count\": 1, \"domains\": []}]}",
	    "bad learned" },
	{ "too many domains", "{\"format\": \"natguard-hiders\", "
	    "\"version\": 1, \"hiders\": [{\"address\": \"10.0.0.3\", "
	    "\"learned\": 1, \"first\": 1, \"last\": 1, \"count\": 1, "
	    "\"domains\": [{},{},{},{},{},{},{},{},{}]}]}", "bad domain list" },
	{ "a domain with a quote", "{\"format\": \"natguard-hiders\", "
	    "\"version\": 1, \"hiders\": [{\"address\": \"10.0.0.3\", "
	    "\"learned\": 1, \"first\": 1, \"last\": 1, \"count\": 1, "
	    "\"domains\": [{\"name\": \"a\\\"b\", \"seen\": 1}]}]}",
	    "bad domain" },
	{ "duplicate keys", "{\"format\": \"natguard-hiders\", "
	    "\"format\": \"x\", \"version\": 1, \"hiders\": []}", "line 1" },
	{ "a host flag that is no boolean", "{\"format\": "
	    "\"natguard-hiders\", \"version\": 1, \"hiders\": [{\"address\": "
	    "\"127.0.0.1\", \"learned\": 1, \"first\": 1, \"last\": 1, "
	    "\"count\": 1, \"domains\": [], \"host\": 1}]}", "bad host flag" },
};

START_TEST(test_learn_corrupt)
{
	struct config	*cfg = learn_cfg("");
	struct learn	*l = learn_new(cfg);
	char		*err, *path = learn_state_path(cfg);

	learn_three(l, "10.3.3.3", 3000000);
	write_text(path, bad_states[_i].text);
	ck_assert_int_eq(learn_load(l, NULL, &err), -1);
	ck_assert_msg(err != NULL && strstr(err, bad_states[_i].error) !=
	    NULL && strstr(err, path) != NULL, "%s: %s", bad_states[_i].label,
	    err);
	/* What was learned before stays. */
	ck_assert_uint_eq(learn_count(l), 1);
	free(err);
	unlink(path);
	free(path);
	learn_free(l);
	config_free(cfg);
}
END_TEST

/* doctor: learned hiders, and PROXY protocol's two ends. */
static const struct {
	const char	*label;
	const char	*mynetworks;
	const char	*learned;	/* a learned hider, or NULL */
	struct pf_proxy	 px;
	enum dstatus	 hiders;
	const char	*hiders_words;
	enum dstatus	 proxy;
	const char	*proxy_words;
} doctors[] = {
	{ "nothing learned, no PROXY", "none", NULL,
	    { "", "", "smtp inet n - n - - smtpd\n", "" }, DS_OK,
	    "no hider learned", DS_OK, "no PROXY protocol" },
	{ "a proxy learned, Postfix not set", "none", "172.29.8.3",
	    { "", "", "smtp inet n - n - - smtpd\n", "" }, DS_WARN,
	    "probably tcp-proxy", DS_WARN, "both ends need it" },
	{ "a proxy learned, Postfix set: half done", "none", "172.29.8.3",
	    { "haproxy", "", "smtp inet n - n - - smtpd\n", "" }, DS_WARN,
	    "probably tcp-proxy", DS_WARN, "half done: smtpd expects" },
	{ "set with -o on smtp/inet", "none", NULL,
	    { "", "", "smtp inet n - n - - smtpd\n",
	    "smtp/inet/smtpd_upstream_proxy_protocol = haproxy\n" }, DS_OK,
	    NULL, DS_OK, "smtpd expects PROXY protocol" },
	{ "postscreen on 25, main.cf's smtpd set: half done", "none", NULL,
	    { "haproxy", "", "smtp inet n - y - 1 postscreen\n", "" }, DS_OK,
	    NULL, DS_WARN, "postscreen listens on port 25" },
	{ "postscreen on 25, postscreen set", "none", NULL,
	    { "", "haproxy", "smtp inet n - y - 1 postscreen\n", "" },
	    DS_OK, NULL, DS_OK, "postscreen expects" },
	{ "learned inside mynetworks: the open relay", "10.0.0.0/8",
	    "10.0.0.5", { "", "", "", "" }, DS_WARN, "open relay", DS_OK,
	    NULL },
	{ "learned inside mynetworks, in spf_whitelist", "10.0.0.0/8\n"
	    "spf_whitelist = 10.0.0.5", "10.0.0.5", { "", "", "", "" }, DS_OK,
	    "your own relay", DS_OK, NULL },
	{ "a router learned: no PROXY advice", "none", "192.168.1.1",
	    { "", "", "", "" }, DS_WARN, "probably nat-router", DS_OK, NULL },
	{ "a tunnel on the mail host, loopback in mynetworks", "127.0.0.0/8",
	    "127.0.0.1", { "", "", "", "" }, DS_WARN, "is on the mail host "
	    "and carries mail whose SPF fails for 3 unrelated domains (a.test, "
	    "b.test, c.test; 5 requests): probably same-host", DS_OK, NULL },
	{ "a tunnel on the mail host: the open relay said",
	    "127.0.0.0/8, ::1", "::1", { "", "", "", "" }, DS_WARN, "this server relays for "
	    "anyone who reaches the tunnel", DS_OK, NULL },
	{ "a tunnel on the mail host, in spf_whitelist: your own",
	    "127.0.0.0/8\nspf_whitelist = 127.0.0.1", "127.0.0.1",
	    { "", "", "", "" }, DS_OK, "your own relay", DS_OK, NULL },
};

START_TEST(test_doctor)
{
	struct config		*cfg;
	struct gwset		*gs = gwset_new();
	struct doctor		*d = doctor_new();
	struct hider_evidence	 ev;
	struct net		 n;
	struct addr		 a;
	const char		*why, *ev_text;
	char			*text, *err;

	xasprintf(&text, "mynetworks = %s\n", doctors[_i].mynetworks);
	cfg = config_parse("t", text, strlen(text), &err);
	ck_assert_msg(cfg != NULL, "%s", err);
	free(text);
	ck_assert_int_eq(net_parse("172.29.8.0/24", &n, &why), 0);
	gwset_add_local(gs, &n);
	ck_assert_int_eq(net_parse("10.0.0.0/8", &n, &why), 0);
	gwset_add_local(gs, &n);
	if (doctors[_i].learned != NULL) {
		memset(&ev, 0, sizeof(ev));
		ev.count = 5;
		ev.ndomains = 3;
		snprintf(ev.domains, sizeof(ev.domains), "a.test, b.test, "
		    "c.test");
		ck_assert_int_eq(addr_parse(doctors[_i].learned, &a), 0);
		gwset_add_traffic(gs, &a, &ev);
	}
	doctor_hiders(d, cfg, gs);
	postfix_judge_proxy(d, gs, &doctors[_i].px);
	ck_assert_msg(doctor_find(d, "learned-hiders", &ev_text) ==
	    (int)doctors[_i].hiders, "%s: learned-hiders %s",
	    doctors[_i].label, ev_text);
	if (doctors[_i].hiders_words != NULL)
		ck_assert_msg(strstr(ev_text, doctors[_i].hiders_words) !=
		    NULL, "%s: %s", doctors[_i].label, ev_text);
	ck_assert_msg(doctor_find(d, "postfix-proxy-protocol", &ev_text) ==
	    (int)doctors[_i].proxy, "%s: postfix-proxy-protocol %s",
	    doctors[_i].label, ev_text);
	if (doctors[_i].proxy_words != NULL)
		ck_assert_msg(strstr(ev_text, doctors[_i].proxy_words) != NULL,
		    "%s: %s", doctors[_i].label, ev_text);
	doctor_free(d);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

/*
 * The kernel's socket table and /proc, for real: a listener and a
 * connection to it made here are found, and this process is their owner.
 */
START_TEST(test_sockdiag)
{
	struct sockaddr_in	 sin;
	struct sockent		*v;
	struct sockowner	 o;
	socklen_t		 len = sizeof(sin);
	size_t			 n, i, listen_i = SIZE_MAX, conn_i = SIZE_MAX;
	int			 l, c, denied;
	uint16_t		 port;

	l = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	c = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (sockdiag_tcp(SOCKDIAG_LISTEN | SOCKDIAG_ESTABLISHED, &v, &n) != 0)
		ck_abort_msg("sockdiag_tcp: %s", strerror(errno));
	for (i = 0; i < n; i++) {
		if (v[i].sport == port && v[i].state == 10)
			listen_i = i;
		if (v[i].dport == port && v[i].state == 1)
			conn_i = i;
	}
	ck_assert_msg(listen_i != SIZE_MAX, "the listener on %u", port);
	ck_assert_msg(conn_i != SIZE_MAX, "the connection to %u", port);
	ck_assert(addr_same_host(NULL, &v[conn_i].src));
	ck_assert_int_eq(sockdiag_owner("/proc", v[conn_i].inode, &o,
	    &denied), 0);
	ck_assert_int_eq(o.pid, getpid());
	ck_assert_msg(strlen(o.comm) > 0, "a name");
	ck_assert_int_eq(sockdiag_owner("/proc", 0, &o, &denied), -1);
	free(v);
	close(c);
	close(l);
}
END_TEST

Suite *
hiders_suite(void)
{
	Suite	*s = suite_create("hiders");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_steps, 0, NELEMS(steps));
	tcase_add_loop_test(tc, test_private, 0, NELEMS(privates));
	tcase_add_test(tc, test_kind_rows);
	tcase_add_loop_test(tc, test_registrable, 0, NELEMS(regs));
	tcase_add_test(tc, test_learn_threshold);
	tcase_add_test(tc, test_learn_window);
	tcase_add_test(tc, test_learn_bounds);
	tcase_add_test(tc, test_learn_state);
	tcase_add_loop_test(tc, test_learn_corrupt, 0, NELEMS(bad_states));
	tcase_add_loop_test(tc, test_doctor, 0, NELEMS(doctors));
	tcase_add_test(tc, test_sockdiag);
	suite_add_tcase(s, tc);
	return (s);
}
