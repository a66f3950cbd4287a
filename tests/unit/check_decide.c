#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "natguard.h"
#include "unit.h"

/*
 * The decision table of SPEC section 4, steps 1-6 and 8.  The gateway set
 * is 172.20.0.1 (default-route on eth0) and fd00:cafe::1 (bridge-interface
 * on docker0); every request has request=smtpd_access_policy unless it says
 * otherwise.
 */
static const struct {
	const char	*label;
	const char	*config;
	const char	*attrs[6];
	enum action	 action;
	const char	*reason;
	enum client_class class;
	const char	*reply;		/* prefix of the reply */
} cases[] = {
	{ "unknown request", "", { "request=junk",
	    "client_address=172.20.0.1" }, ACT_DUNNO, "unknown-request",
	    CLIENT_EXTERNAL, "DUNNO" },
	{ "missing request", "", { "-request", "client_address=172.20.0.1" },
	    ACT_DUNNO, "unknown-request", CLIENT_EXTERNAL, "DUNNO" },
	{ "missing client address", "", { "sender=a@example.org" },
	    ACT_DUNNO, "bad-client-address", CLIENT_EXTERNAL, "DUNNO" },
	{ "unparsable client address", "", { "client_address=unknown" },
	    ACT_DUNNO, "bad-client-address", CLIENT_EXTERNAL, "DUNNO" },
	{ "skip address", "", { "client_address=127.0.0.1" }, ACT_DUNNO,
	    "skip-address", CLIENT_SKIP, "DUNNO" },
	{ "skip address mapped", "", { "client_address=::ffff:127.0.0.1" },
	    ACT_DUNNO, "skip-address", CLIENT_SKIP, "DUNNO" },
	{ "skip before gateway", "skip_addresses = 172.20.0.0/16\n",
	    { "client_address=172.20.0.1" }, ACT_DUNNO, "skip-address",
	    CLIENT_SKIP, "DUNNO" },
	{ "authenticated", "", { "client_address=172.20.0.1",
	    "sasl_username=alice" }, ACT_DUNNO, "authenticated",
	    CLIENT_EXTERNAL, "DUNNO" },
	{ "authenticated not skipped", "skip_authenticated = no\n",
	    { "client_address=172.20.0.1", "sasl_username=alice" }, ACT_DEFER,
	    "nat-gateway", CLIENT_GATEWAY, "DEFER 4.3.5 Client address hidden "
	    "by NAT on this server; please try again later" },
	{ "empty sasl_username", "", { "client_address=172.20.0.1",
	    "sasl_username=" }, ACT_DEFER, "nat-gateway", CLIENT_GATEWAY,
	    "DEFER 4.3.5 " },
	{ "gateway defer", "", { "client_address=172.20.0.1" }, ACT_DEFER,
	    "nat-gateway", CLIENT_GATEWAY, "DEFER 4.3.5 " },
	{ "gateway mapped", "", { "client_address=::ffff:172.20.0.1" },
	    ACT_DEFER, "nat-gateway", CLIENT_GATEWAY, "DEFER 4.3.5 " },
	{ "gateway IPv6 with zone", "", { "client_address=fd00:cafe::1%br0" },
	    ACT_DEFER, "nat-gateway", CLIENT_GATEWAY, "DEFER 4.3.5 " },
	{ "gateway defer_if_permit", "nat_action = defer_if_permit\n",
	    { "client_address=172.20.0.1" }, ACT_DEFER_IF_PERMIT,
	    "nat-gateway", CLIENT_GATEWAY, "DEFER_IF_PERMIT 4.3.5 " },
	{ "gateway warn", "nat_action = warn\n",
	    { "client_address=172.20.0.1" }, ACT_WARN, "nat-gateway",
	    CLIENT_GATEWAY, "WARN client address 172.20.0.1 is the default "
	    "route's gateway (default-route on eth0)" },
	{ "own nat_reply", "nat_reply = 4.7.0 NAT, see wiki\n",
	    { "client_address=172.20.0.1" }, ACT_DEFER, "nat-gateway",
	    CLIENT_GATEWAY, "DEFER 4.7.0 NAT, see wiki" },
	{ "spf off", "spf = no\n", { "client_address=192.0.2.9" }, ACT_DUNNO,
	    "spf-disabled", CLIENT_EXTERNAL, "DUNNO" },
	{ "spf whitelist", "spf_whitelist = 192.0.2.0/24\n",
	    { "client_address=192.0.2.9" }, ACT_DUNNO, "spf-whitelist",
	    CLIENT_EXTERNAL, "DUNNO" },
	{ "gateway before spf off", "spf = no\n",
	    { "client_address=172.20.0.1" }, ACT_DEFER, "nat-gateway",
	    CLIENT_GATEWAY, "DEFER " },
	{ "external client: SPF next", "", { "client_address=192.0.2.9",
	    "sender=a@example.org", "helo_name=mx.example.org" }, ACT_DUNNO,
	    "spf-pending", CLIENT_EXTERNAL, NULL },
	{ "trace header for a skipped client", "spf_trace_header = yes\n",
	    { "client_address=127.0.0.1", "helo_name=localhost" },
	    ACT_PREPEND, "skip-address", CLIENT_SKIP, "PREPEND X-Comment: SPF "
	    "check N/A for local connections - client-ip=127.0.0.1; "
	    "helo=localhost; envelope-from=<UNKNOWN>; receiver=" },
	{ "trace header, Authentication-Results", "spf_trace_header = yes\n"
	    "spf_header = authentication-results\nauthserv_id = mx.test\n"
	    "spf_whitelist = 192.0.2.0/24\n", { "client_address=192.0.2.9",
	    "sender=a@example.org" }, ACT_PREPEND, "spf-whitelist",
	    CLIENT_EXTERNAL, "PREPEND Authentication-Results: mx.test; none "
	    "(SPF skipped for whitelisted relay - client-ip=192.0.2.9; "
	    "helo=<UNKNOWN>; envelope-from=a@example.org; receiver=mx.test)" },
	{ "neighbour of gateway: SPF next", "",
	    { "client_address=172.20.0.2" }, ACT_DUNNO, "spf-pending",
	    CLIENT_EXTERNAL, NULL },
};

static struct gwset *
test_gateways(void)
{
	struct gwset	*gs = gwset_new();
	struct net	 n;
	const char	*why;

	ck_assert_int_eq(net_parse("172.20.0.1", &n, &why), 0);
	gwset_add(gs, &n, GW_DEFAULT_ROUTE, "eth0");
	ck_assert_int_eq(net_parse("fd00:cafe::1", &n, &why), 0);
	gwset_add(gs, &n, GW_BRIDGE, "docker0");
	return (gs);
}

static struct request *
test_request(const char *const *attrs)
{
	struct request	*req = request_new();
	const char	*why;
	int		 i, with_request = 1;

	for (i = 0; i < 6 && attrs[i] != NULL; i++) {
		if (strcmp(attrs[i], "-request") == 0)
			with_request = 0;
		else if (request_set(req, attrs[i], &why) != 0)
			ck_abort_msg("%s: %s", attrs[i], why);
	}
	if (with_request && request_get(req, "request") == NULL)
		request_set(req, "request=smtpd_access_policy", &why);
	return (req);
}

START_TEST(test_decide)
{
	struct config	*cfg;
	struct gwset	*gs = test_gateways();
	struct request	*req = test_request(cases[_i].attrs);
	struct decision	*d;
	char		*err;

	cfg = config_parse("t", cases[_i].config, strlen(cases[_i].config),
	    &err);
	ck_assert_msg(cfg != NULL, "%s: %s", cases[_i].label, err);
	d = decide(cfg, gs, req);
	ck_assert_msg(d->action == cases[_i].action, "%s: action %s",
	    cases[_i].label, action_name(d->action));
	ck_assert_msg(strcmp(d->reason, cases[_i].reason) == 0, "%s: %s",
	    cases[_i].label, d->reason);
	ck_assert_msg(d->class == cases[_i].class, "%s: class %s",
	    cases[_i].label, client_class_name(d->class));
	if (cases[_i].reply == NULL) {
		/* Step 7: the caller runs SPF, decide_spf() answers. */
		ck_assert_msg(d->spf_need & SPF_NEED_MAILFROM, "%s",
		    cases[_i].label);
		ck_assert_msg(d->reply == NULL, "%s", cases[_i].label);
		goto done;
	}
	ck_assert_msg(strncmp(d->reply, cases[_i].reply,
	    strlen(cases[_i].reply)) == 0, "%s: reply %s", cases[_i].label,
	    d->reply);
	ck_assert_msg(strchr(d->reply, '\n') == NULL, "%s", cases[_i].label);
	ck_assert_msg(d->explanation != NULL, "%s", cases[_i].label);
	/* The gateway probe: SPF runs (not with spf = no), the action stands. */
	ck_assert_msg((d->spf_need != 0) == (d->class == CLIENT_GATEWAY &&
	    strstr(cases[_i].config, "spf = no") == NULL),
	    "%s: spf_need %u", cases[_i].label, d->spf_need);
	ck_assert_msg(d->has_gateway == (d->class == CLIENT_GATEWAY), "%s",
	    cases[_i].label);
	if (strcmp(d->reason, "unknown-request") == 0 ||
	    strcmp(d->reason, "bad-client-address") == 0)
		ck_assert_msg(d->warning != NULL, "%s: no warning",
		    cases[_i].label);
	else
		ck_assert_msg(d->warning == NULL, "%s: warning %s",
		    cases[_i].label, d->warning);
done:
	decision_free(d);
	request_free(req);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

/* The explanation says what happened and how to fix it. */
START_TEST(test_explanation)
{
	static const char *words[] = {
		"172.20.0.1", "default-route", "eth0", "real SMTP client address",
		"SPF", "\"ip6tables\": true", "\"experimental\": true",
		"/etc/docker/daemon.json", "enable_ipv6: true", "IPv6 subnet",
		"userland-proxy",
	};
	struct config	*cfg = config_new();
	struct gwset	*gs = test_gateways();
	const char	*attrs[6] = { "client_address=172.20.0.1" };
	struct request	*req = test_request(attrs);
	struct decision	*d = decide(cfg, gs, req);
	size_t		 i;

	for (i = 0; i < NELEMS(words); i++)
		ck_assert_msg(strstr(d->explanation, words[i]) != NULL,
		    "explanation lacks %s: %s", words[i], d->explanation);
	ck_assert_str_eq(d->client, "172.20.0.1");
	ck_assert_str_eq(d->gateway.iface, "eth0");
	decision_free(d);
	request_free(req);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

/*
 * Under each engine the explanation names that engine's fix, as measured
 * (README "Container engines"), and loopback is judged, not skipped, where
 * a rootless engine may hand the internet over from it.
 */
static const struct {
	const char	*label;
	enum engine	 kind;
	const char	*config;
	const char	*gateway;	/* "address source iface", or NULL */
	const char	*client;
	enum action	 action;
	const char	*words[5];	/* in the explanation */
	const char	*not;		/* not in it */
} engine_cases[] = {
	{ "rootless Podman: rootlessport's own address", ENGINE_PODMAN_ROOTLESS,
	    "", "10.0.2.100 own tap0", "10.0.2.100", ACT_DEFER,
	    { "10.0.2.100 is this container's own address in a rootless "
	    "Podman container (own-address on tap0)", "rootlessport",
	    "port_handler=slirp4netns", "--network pasta", "rootful Podman" },
	    "daemon.json" },
	{ "rootless Podman: a bridge network's own address",
	    ENGINE_PODMAN_ROOTLESS, "nat_action = warn\n",
	    "10.89.0.2 own eth0", "10.89.0.2", ACT_WARN,
	    { "own-address on eth0", "rootlessport" }, "userland-proxy" },
	{ "rootless Podman: loopback judged", ENGINE_PODMAN_ROOTLESS, "",
	    NULL, "127.0.0.1", ACT_DEFER,
	    { "127.0.0.1 is loopback in a rootless Podman container "
	    "(loopback on lo)", "remote clients", "port_handler=slirp4netns",
	    "list it in skip_addresses" }, "daemon.json" },
	{ "rootless Docker: IPv6 loopback judged", ENGINE_DOCKER_ROOTLESS, "",
	    NULL, "::1", ACT_DEFER, { "::1 is loopback in a rootless Docker",
	    "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns" }, NULL },
	{ "rootless, skip_addresses by hand: loopback skipped",
	    ENGINE_PODMAN_ROOTLESS, "skip_addresses = 127.0.0.0/8\n", NULL,
	    "127.0.0.1", ACT_DUNNO, { "skip_addresses" }, NULL },
	{ "rootless Docker: the builtin port driver's gateway",
	    ENGINE_DOCKER_ROOTLESS, "", "172.17.0.1 route eth0", "172.17.0.1",
	    ACT_DEFER, { "default-route on eth0", "rootlesskit's builtin",
	    "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns",
	    "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns",
	    "systemctl --user edit docker" }, "userland-proxy" },
	{ "rootless Docker: its slirp4netns gateway, the host's programs",
	    ENGINE_DOCKER_ROOTLESS, "", "10.0.2.2 slirp -", "10.0.2.2",
	    ACT_DEFER, { "10.0.2.2 is the gateway of rootless Docker's "
	    "slirp4netns network (slirp4netns)", "from the host itself",
	    "authenticate (SASL)", "skip_addresses" }, "rootlesskit's builtin" },
	{ "rootless Podman: slirp4netns's gateway, the host's programs",
	    ENGINE_PODMAN_ROOTLESS, "", "10.0.2.2 route tap0", "10.0.2.2",
	    ACT_DEFER, { "default-route on tap0", "rootless Podman hands "
	    "connections from the host itself", "skip_addresses" },
	    "rootlessport" },
	{ "Podman rootful: the gateway, the host's programs", ENGINE_PODMAN,
	    "", "10.88.0.1 route eth0", "10.88.0.1", ACT_DEFER,
	    { "Podman hands connections from the host itself",
	    "netavark's DNAT", "skip_addresses" }, "rootlessport" },
	{ "Podman rootful: loopback skipped", ENGINE_PODMAN, "", NULL,
	    "127.0.0.1", ACT_DUNNO, { "skip_addresses" }, NULL },
	{ "Docker: the SPEC's fix", ENGINE_DOCKER, "", "172.17.0.1 route eth0",
	    "172.17.0.1", ACT_DEFER, { "userland proxy", "\"ip6tables\": true",
	    "enable_ipv6: true" }, "rootless" },
	{ "no engine: the SPEC's fix", ENGINE_NONE, "",
	    "172.17.0.1 bridge docker0", "172.17.0.1", ACT_DEFER,
	    { "bridge-interface on docker0", "\"userland-proxy\": false" },
	    "rootless" },
};

START_TEST(test_engine)
{
	struct engine_info	 info = { engine_cases[_i].kind, "test", 0 };
	struct config		*cfg;
	struct gwset		*gs = gwset_new();
	struct request		*req;
	struct decision		*d;
	struct net		 n;
	const char		*attrs[6] = { NULL }, *why, *label;
	char			 addr[64], src[16], iface[16], *err, *ca;
	size_t			 i;

	label = engine_cases[_i].label;
	cfg = config_parse("t", engine_cases[_i].config,
	    strlen(engine_cases[_i].config), &err);
	ck_assert_msg(cfg != NULL, "%s: %s", label, err);
	if (engine_cases[_i].gateway != NULL) {
		ck_assert_int_eq(sscanf(engine_cases[_i].gateway,
		    "%63s %15s %15s", addr, src, iface), 3);
		ck_assert_int_eq(net_parse(addr, &n, &why), 0);
		gwset_add(gs, &n, strcmp(src, "own") == 0 ? GW_OWN_ADDRESS :
		    strcmp(src, "route") == 0 ? GW_DEFAULT_ROUTE :
		    strcmp(src, "slirp") == 0 ? GW_SLIRP : GW_BRIDGE,
		    strcmp(iface, "-") == 0 ? NULL : iface);
	}
	gateway_add_engine(gs, cfg, &info);
	xasprintf(&ca, "client_address=%s", engine_cases[_i].client);
	attrs[0] = ca;
	req = test_request(attrs);
	d = decide(cfg, gs, req);
	ck_assert_msg(d->action == engine_cases[_i].action, "%s: action %s",
	    label, action_name(d->action));
	for (i = 0; i < 5 && engine_cases[_i].words[i] != NULL; i++)
		ck_assert_msg(strstr(d->explanation, engine_cases[_i].words[i])
		    != NULL, "%s: explanation lacks %s: %s", label,
		    engine_cases[_i].words[i], d->explanation);
	if (engine_cases[_i].not != NULL)
		ck_assert_msg(strstr(d->explanation, engine_cases[_i].not) ==
		    NULL, "%s: explanation has %s: %s", label,
		    engine_cases[_i].not, d->explanation);
	if (d->action == ACT_WARN)
		ck_assert_msg(strstr(d->reply, "rootlessport") != NULL, "%s",
		    label);
	ck_assert_msg(strchr(d->explanation, '\n') == NULL, "%s", label);
	decision_free(d);
	request_free(req);
	free(ca);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

/* Step 8: the same instance gets the same answer; a header only once. */
START_TEST(test_repeat)
{
	struct decision	*d, *r;

	d = decision_new();
	d->action = ACT_DEFER;
	d->reply = xstrdup("DEFER 4.3.5 x");
	d->reason = "nat-gateway";
	d->explanation = xstrdup("why");
	d->client = xstrdup("172.20.0.1");
	d->instance = xstrdup("5B6A.6F1C2E.8A1F5.0");
	/* Strings only the first decision owns (a double free otherwise). */
	d->spf_receiver = xstrdup("rcpt.test");
	d->spf_helo = xstrdup("mx.example.org");
	d->spf_mailbox = xstrdup("a@example.org");
	r = decision_repeat(d);
	ck_assert_ptr_null(r->spf_receiver);
	ck_assert_int_eq(r->action, ACT_DEFER);
	ck_assert_str_eq(r->reply, "DEFER 4.3.5 x");
	ck_assert_str_eq(r->reason, "nat-gateway");
	ck_assert_str_eq(r->instance, d->instance);
	decision_free(r);

	free(d->reply);
	d->action = ACT_PREPEND;
	d->reply = xstrdup("PREPEND Received-SPF: pass");
	d->reason = "spf-pass";
	r = decision_repeat(d);
	ck_assert_int_eq(r->action, ACT_DUNNO);
	ck_assert_str_eq(r->reply, "DUNNO");
	ck_assert_str_eq(r->reason, "already-answered");
	decision_free(r);
	decision_free(d);
	decision_free(NULL);
}
END_TEST

/*
 * Step 7 once SPF has run: the verdicts (HELO, MAIL FROM) and the
 * configuration make the answer.
 */
static const struct {
	const char	*label;
	const char	*config;
	const char	*helo_name;
	const char	*sender;
	int		 helo;		/* -1: not evaluated */
	int		 mailfrom;
	enum action	 action;
	const char	*reason;
	const char	*reply;
	const char	*identity;
} spf_table[] = {
	{ "pass: Received-SPF", "", "mx.example.org", "a@example.org",
	    SPF_R_PASS, SPF_R_PASS, ACT_PREPEND, "spf-pass",
	    "PREPEND Received-SPF: pass (why) client-ip=192.0.2.9; "
	    "envelope-from=\"a@example.org\"; helo=mx.example.org; "
	    "receiver=mx.test; identity=mailfrom", "mailfrom" },
	{ "pass: Authentication-Results",
	    "spf_header = authentication-results\n", "mx.example.org",
	    "a@example.org", SPF_R_PASS, SPF_R_PASS, ACT_PREPEND, "spf-pass",
	    "PREPEND Authentication-Results: mx.test; spf=pass (why) "
	    "smtp.mailfrom=a@example.org", "mailfrom" },
	{ "pass: no header", "spf_header = none\n", "mx.example.org",
	    "a@example.org", SPF_R_PASS, SPF_R_PASS, ACT_DUNNO, "spf-pass",
	    "DUNNO", "mailfrom" },
	{ "fail", "", "mx.example.org", "a@example.org", SPF_R_NONE,
	    SPF_R_FAIL, ACT_REJECT, "spf-fail",
	    "550 5.7.23 SPF fail for example.org: not allowed", "mailfrom" },
	{ "permerror: a header by default", "", "mx.example.org",
	    "a@example.org", SPF_R_NONE, SPF_R_PERMERROR, ACT_PREPEND,
	    "spf-permerror", "PREPEND Received-SPF: permerror", "mailfrom" },
	{ "permerror rejected when asked", "spf_reject = fail permerror\n",
	    "mx.example.org", "a@example.org", SPF_R_NONE, SPF_R_PERMERROR,
	    ACT_REJECT, "spf-permerror",
	    "550 5.7.24 SPF permerror for example.org", "mailfrom" },
	{ "temperror", "", "mx.example.org", "a@example.org", SPF_R_NONE,
	    SPF_R_TEMPERROR, ACT_DEFER_IF_PERMIT, "spf-temperror",
	    "DEFER_IF_PERMIT 4.7.24 SPF temperror for example.org",
	    "mailfrom" },
	{ "softfail not rejected by default", "", "mx.example.org",
	    "a@example.org", SPF_R_NONE, SPF_R_SOFTFAIL, ACT_PREPEND,
	    "spf-softfail", "PREPEND Received-SPF: softfail", "mailfrom" },
	{ "softfail rejected when asked", "spf_reject = fail softfail\n",
	    "mx.example.org", "a@example.org", SPF_R_NONE, SPF_R_SOFTFAIL,
	    ACT_REJECT, "spf-softfail", "550 5.7.23 SPF softfail",
	    "mailfrom" },
	{ "HELO fail decides first", "", "mx.example.org", "a@example.org",
	    SPF_R_FAIL, SPF_R_PASS, ACT_REJECT, "spf-fail",
	    "550 5.7.23 SPF fail for mx.example.org", "helo" },
	{ "HELO not a domain: MAIL FROM only", "", "A2345678",
	    "a@example.org", -1, SPF_R_PASS, ACT_PREPEND, "spf-pass",
	    "PREPEND Received-SPF: pass", "mailfrom" },
	{ "spf_helo = no", "spf_helo = no\n", "mx.example.org",
	    "a@example.org", -1, SPF_R_FAIL, ACT_REJECT, "spf-fail",
	    "550 5.7.23", "mailfrom" },
	{ "null sender: postmaster@helo, judged as HELO", "", "mx.example.org",
	    "", SPF_R_PASS, SPF_R_PASS, ACT_PREPEND, "spf-pass",
	    "PREPEND Received-SPF: pass (why) client-ip=192.0.2.9; "
	    "envelope-from=\"postmaster@mx.example.org\"", "helo" },
	/* policyd-spf's options (issue 17), one row or two each. */
	{ "spf_helo_reject empty: HELO fail only reported",
	    "spf_helo_reject =\n", "mx.example.org", "a@example.org",
	    SPF_R_FAIL, SPF_R_PASS, ACT_PREPEND, "spf-pass",
	    "PREPEND Received-SPF: pass", "mailfrom" },
	{ "spf_helo_reject softfail, spf_reject fail",
	    "spf_helo_reject = fail softfail\n", "mx.example.org",
	    "a@example.org", SPF_R_SOFTFAIL, SPF_R_NONE, ACT_REJECT,
	    "spf-softfail", "550 5.7.23 SPF softfail for mx.example.org",
	    "helo" },
	{ "spf_helo_reject follows spf_reject", "spf_reject = fail softfail\n",
	    "mx.example.org", "a@example.org", SPF_R_SOFTFAIL, SPF_R_PASS,
	    ACT_REJECT, "spf-softfail", "550 5.7.23 SPF softfail", "helo" },
	{ "spf_helo_null_sender_only, a sender",
	    "spf_helo_null_sender_only = yes\n", "mx.example.org",
	    "a@example.org", SPF_R_FAIL, SPF_R_PASS, ACT_PREPEND, "spf-pass",
	    "PREPEND Received-SPF: pass", "mailfrom" },
	{ "spf_helo_null_sender_only, the null sender",
	    "spf_helo_null_sender_only = yes\n", "mx.example.org", "",
	    SPF_R_FAIL, SPF_R_FAIL, ACT_REJECT, "spf-fail",
	    "550 5.7.23 SPF fail for mx.example.org", "helo" },
	{ "spf_mailfrom = no: HELO decides", "spf_mailfrom = no\n",
	    "mx.example.org", "a@example.org", SPF_R_PASS, SPF_R_FAIL,
	    ACT_PREPEND, "spf-pass", "PREPEND Received-SPF: pass (why) "
	    "client-ip=192.0.2.9; envelope-from=\"a@example.org\"; "
	    "helo=mx.example.org; receiver=mx.test; identity=helo", "helo" },
	{ "spf_pass_restriction", "spf_pass_restriction = spf_ok\n",
	    "mx.example.org", "a@example.org", SPF_R_NONE, SPF_R_PASS,
	    ACT_RESTRICTION, "spf-pass", "spf_ok", "mailfrom" },
	{ "spf_pass_restriction, no pass", "spf_pass_restriction = spf_ok\n",
	    "mx.example.org", "a@example.org", SPF_R_NONE, SPF_R_NEUTRAL,
	    ACT_PREPEND, "spf-neutral", "PREPEND Received-SPF: neutral",
	    "mailfrom" },
	{ "spf_helo_pass_restriction over a MAIL FROM softfail",
	    "spf_helo_pass_restriction = helo_ok\n", "mx.example.org",
	    "a@example.org", SPF_R_PASS, SPF_R_SOFTFAIL, ACT_RESTRICTION,
	    "spf-pass", "helo_ok", "helo" },
	{ "spf_helo_pass_restriction, MAIL FROM fail rejects",
	    "spf_helo_pass_restriction = helo_ok\n", "mx.example.org",
	    "a@example.org", SPF_R_PASS, SPF_R_FAIL, ACT_REJECT, "spf-fail",
	    "550 5.7.23 SPF fail for example.org", "mailfrom" },
	{ "spf_require_pass_domains: softfail rejected",
	    "spf_require_pass_domains = example.org\n", "mx.example.org",
	    "a@example.org", SPF_R_NONE, SPF_R_SOFTFAIL, ACT_REJECT,
	    "spf-softfail", "550 5.7.23 SPF softfail for example.org: the "
	    "receiver requires SPF pass for this domain", "mailfrom" },
	{ "spf_require_pass_domains: neutral of a subdomain",
	    "spf_require_pass_domains = example.org\n", "mx.example.org",
	    "a@sub.example.org", SPF_R_NONE, SPF_R_NEUTRAL, ACT_REJECT,
	    "spf-neutral", "550 5.7.23 SPF neutral for sub.example.org",
	    "mailfrom" },
	{ "spf_require_pass_domains: none is not rejected",
	    "spf_require_pass_domains = example.org\n", "mx.example.org",
	    "a@example.org", SPF_R_NONE, SPF_R_NONE, ACT_PREPEND, "spf-none",
	    "PREPEND Received-SPF: none", "mailfrom" },
	{ "spf_require_pass_domains: another domain",
	    "spf_require_pass_domains = example.org\n", "mx.example.org",
	    "a@example.net", SPF_R_NONE, SPF_R_SOFTFAIL, ACT_PREPEND,
	    "spf-softfail", "PREPEND Received-SPF: softfail", "mailfrom" },
	{ "spf_enhanced_status_codes = no", "spf_enhanced_status_codes = no\n",
	    "mx.example.org", "a@example.org", SPF_R_NONE, SPF_R_FAIL,
	    ACT_REJECT, "spf-fail", "550 SPF fail for example.org",
	    "mailfrom" },
	{ "spf_enhanced_status_codes = no, temperror",
	    "spf_enhanced_status_codes = no\n", "mx.example.org",
	    "a@example.org", SPF_R_NONE, SPF_R_TEMPERROR, ACT_DEFER_IF_PERMIT,
	    "spf-temperror", "DEFER_IF_PERMIT SPF temperror", "mailfrom" },
	{ "spf_reply_text, policyd-spf's default",
	    "spf_reply_text = Message {rejectdefer} due to: {spf}. Please see "
	    "{url}\n", "mx.example.org", "a@example.org", SPF_R_NONE,
	    SPF_R_FAIL, ACT_REJECT, "spf-fail", "550 5.7.23 Message rejected "
	    "due to: not allowed. Please see https://www.open-spf.org/Why?"
	    "s=mfrom;id=a@example.org;ip=192.0.2.9", "mailfrom" },
	{ "spf_reply_text, natguard's words and an unknown one",
	    "spf_reply_text = {result} {domain} {identity} {other}\n",
	    "mx.example.org", "a@example.org", SPF_R_NONE, SPF_R_TEMPERROR,
	    ACT_DEFER_IF_PERMIT, "spf-temperror", "DEFER_IF_PERMIT 4.7.24 "
	    "temperror example.org a@example.org {other}", "mailfrom" },
	{ "spf_reject_no_mail_only: a domain that sends mail",
	    "spf_reject_no_mail_only = yes\n", "mx.example.org",
	    "a@example.org", SPF_R_NONE, SPF_R_FAIL, ACT_PREPEND, "spf-fail",
	    "PREPEND Received-SPF: fail", "mailfrom" },
	{ "spf_reject_no_mail_only: v=spf1 -all",
	    "spf_reject_no_mail_only = yes\n", "mx.example.org",
	    "a@nomail.example.org", SPF_R_NONE, SPF_R_FAIL, ACT_REJECT,
	    "spf-fail", "550 5.7.23 SPF fail for nomail.example.org",
	    "mailfrom" },
	{ "spf_header_receiver = recipient-domain",
	    "spf_header_receiver = recipient-domain\n", "mx.example.org",
	    "a@example.org", SPF_R_NONE, SPF_R_PASS, ACT_PREPEND, "spf-pass",
	    "PREPEND Received-SPF: pass (why) client-ip=192.0.2.9; "
	    "envelope-from=\"a@example.org\"; helo=mx.example.org; "
	    "receiver=rcpt.example; identity=mailfrom", "mailfrom" },
	{ "spf_prospective: no header for outgoing mail",
	    "spf_prospective = 198.51.100.7\n", "mx.example.org",
	    "a@example.org", SPF_R_NONE, SPF_R_PASS, ACT_DUNNO, "spf-pass",
	    "DUNNO", "mailfrom" },
	{ "spf_prospective: a fail still rejects",
	    "spf_prospective = 198.51.100.7\n", "mx.example.org",
	    "a@example.org", SPF_R_NONE, SPF_R_FAIL, ACT_REJECT, "spf-fail",
	    "550 5.7.23", "mailfrom" },
};

static void
verdict(struct spf_verdict *v, int result, const char *domain)
{
	memset(v, 0, sizeof(*v));
	v->result = result;
	v->domain = xstrdup(domain);
	if (result == SPF_R_FAIL || result == SPF_R_SOFTFAIL)
		v->explanation = xstrdup("not allowed");
	if (result == SPF_R_PASS)
		v->comment = xstrdup("why");
	v->no_mail = strncmp(domain, "nomail.", 7) == 0;
}

START_TEST(test_decide_spf)
{
	struct config		*cfg;
	struct gwset		*gs = test_gateways();
	struct request		*req;
	struct decision		*d;
	struct spf_verdict	 h, m;
	const char		*attrs[6] = { "client_address=192.0.2.9",
	    NULL, NULL, "recipient=b@rcpt.example" };
	char			*err, *text, helo[128], sender[128];
	const char		*at;

	snprintf(helo, sizeof(helo), "helo_name=%s", spf_table[_i].helo_name);
	snprintf(sender, sizeof(sender), "sender=%s", spf_table[_i].sender);
	attrs[1] = helo;
	attrs[2] = sender;
	req = test_request(attrs);
	ck_assert(asprintf(&text, "authserv_id = mx.test\n%s",
	    spf_table[_i].config) != -1);
	cfg = config_parse("t", text, strlen(text), &err);
	ck_assert_msg(cfg != NULL, "%s", err);
	free(text);
	d = decide(cfg, gs, req);
	ck_assert_msg(((d->spf_need & SPF_NEED_HELO) != 0) ==
	    (spf_table[_i].helo != -1), "%s: HELO need %u",
	    spf_table[_i].label, d->spf_need);
	verdict(&h, spf_table[_i].helo, spf_table[_i].helo_name);
	at = strchr(d->spf_mailbox, '@');
	verdict(&m, spf_table[_i].mailfrom, at ? at + 1 : "?");
	decide_spf(cfg, d, spf_table[_i].helo != -1 ? &h : NULL, &m, 0);
	ck_assert_msg(d->action == spf_table[_i].action, "%s: %s",
	    spf_table[_i].label, action_name(d->action));
	ck_assert_str_eq(d->reason, spf_table[_i].reason);
	ck_assert_msg(strncmp(d->reply, spf_table[_i].reply,
	    strlen(spf_table[_i].reply)) == 0, "%s:\n got %s\nwant %s",
	    spf_table[_i].label, d->reply, spf_table[_i].reply);
	ck_assert_str_eq(d->spf_identity, spf_table[_i].identity);
	ck_assert(d->has_spf && !d->spf_probe && d->spf_need == 0);
	spf_verdict_clear(&h);
	spf_verdict_clear(&m);
	decision_free(d);
	request_free(req);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

/*
 * Every pair of HELO and MAIL FROM results, default spf_reject (fail) and
 * spf_defer (temperror): which identity decides (SPEC 4 step 7, RFC 7208
 * 2.3).  Rows: HELO result, columns: MAIL FROM result, both in enum
 * order: none neutral pass fail softfail temperror permerror.  H: HELO
 * decides; M: MAIL FROM decides and the HELO result is only reported.
 */
static const char *const helo_pairs[SPF_R_COUNT] = {
	/*	  none neutral pass fail softfail temperror permerror */
	"MMMMMMM",	/* HELO none */
	"MMMMMMM",	/* HELO neutral */
	"MMMMMMM",	/* HELO pass */
	"HHHHHHH",	/* HELO fail: rejects whatever MAIL FROM says */
	"MMMMMMM",	/* HELO softfail */
	"HHMMHHH",	/* HELO temperror: not over pass, not over fail */
	"MMMMMMM",	/* HELO permerror (not in spf_defer or spf_reject) */
};

START_TEST(test_helo_pairs)
{
	struct config		*cfg;
	struct gwset		*gs = test_gateways();
	struct request		*req;
	struct decision		*d;
	struct spf_verdict	 h, m;
	const char		*attrs[6] = { "client_address=192.0.2.9",
	    "helo_name=mx.example.org", "sender=a@example.org" };
	struct buf		 b = { NULL, 0, 0 };
	char			*err, *log, want[32];
	int			 hr = _i / SPF_R_COUNT, mr = _i % SPF_R_COUNT;
	int			 by_helo = helo_pairs[hr][mr] == 'H';

	req = test_request(attrs);
	cfg = config_parse("t", "", 0, &err);
	ck_assert_msg(cfg != NULL, "%s", err);
	d = decide(cfg, gs, req);
	ck_assert(d->spf_need & SPF_NEED_HELO);
	verdict(&h, hr, "mx.example.org");
	verdict(&m, mr, "example.org");
	decide_spf(cfg, d, &h, &m, 0);
	ck_assert_msg(strcmp(d->spf_identity, by_helo ? "helo" : "mailfrom")
	    == 0, "HELO %s, MAIL FROM %s: %s decides",
	    spf_result_name(hr), spf_result_name(mr), d->spf_identity);
	ck_assert_int_eq(d->spf_result, by_helo ? hr : mr);
	ck_assert_int_eq(d->spf_helo_reported, !by_helo);
	if (!by_helo) {
		/* The HELO result, reported in the log line. */
		ck_assert_int_eq(d->spf_helo_result, hr);
		report_logline(d, req, &b);
		log = buf_take(&b);
		snprintf(want, sizeof(want), " spf_helo=%s ",
		    spf_result_name(hr));
		ck_assert_msg(strstr(log, want) != NULL, "%s", log);
		free(log);
	}
	spf_verdict_clear(&h);
	spf_verdict_clear(&m);
	decision_free(d);
	request_free(req);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

/* The NAT probe: reported in the explanation, the action unchanged. */
START_TEST(test_probe)
{
	struct config		*cfg;
	struct gwset		*gs = test_gateways();
	const char		*attrs[6] = { "client_address=172.20.0.1",
	    "sender=a@example.org" };
	struct request		*req = test_request(attrs);
	struct decision		*d;
	struct spf_verdict	 m;
	char			*err;

	cfg = config_parse("t", "nat_action = warn\n", 18, &err);
	d = decide(cfg, gs, req);
	ck_assert_int_eq(d->spf_need, SPF_NEED_PROBE);
	verdict(&m, SPF_R_FAIL, "example.org");
	decide_spf(cfg, d, NULL, &m, 0);
	ck_assert_int_eq(d->action, ACT_WARN);
	ck_assert_str_eq(d->reason, "nat-gateway");
	ck_assert(d->has_spf && d->spf_probe);
	ck_assert_int_eq(d->spf_result, SPF_R_FAIL);
	ck_assert(strstr(d->explanation, "SPF for example.org evaluated "
	    "against the gateway address says fail") != NULL);
	ck_assert(strstr(d->reply, "says fail") != NULL);
	spf_verdict_clear(&m);
	decision_free(d);
	request_free(req);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

Suite *
decide_suite(void)
{
	Suite	*s = suite_create("decide");
	TCase	*tc = tcase_create("decide");

	tcase_add_loop_test(tc, test_decide, 0, NELEMS(cases));
	tcase_add_test(tc, test_explanation);
	tcase_add_loop_test(tc, test_engine, 0, NELEMS(engine_cases));
	tcase_add_loop_test(tc, test_decide_spf, 0, NELEMS(spf_table));
	tcase_add_loop_test(tc, test_helo_pairs, 0,
	    SPF_R_COUNT * SPF_R_COUNT);
	tcase_add_test(tc, test_probe);
	tcase_add_test(tc, test_repeat);
	suite_add_tcase(s, tc);
	return (s);
}
