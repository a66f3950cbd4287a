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
	{ "external client", "", { "client_address=192.0.2.9",
	    "sender=a@example.org" }, ACT_DUNNO, "spf-unavailable",
	    CLIENT_EXTERNAL, "DUNNO" },
	{ "neighbour of gateway", "", { "client_address=172.20.0.2" },
	    ACT_DUNNO, "spf-unavailable", CLIENT_EXTERNAL, "DUNNO" },
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
	ck_assert_msg(strncmp(d->reply, cases[_i].reply,
	    strlen(cases[_i].reply)) == 0, "%s: reply %s", cases[_i].label,
	    d->reply);
	ck_assert_msg(strchr(d->reply, '\n') == NULL, "%s", cases[_i].label);
	ck_assert_msg(d->explanation != NULL, "%s", cases[_i].label);
	ck_assert_msg(d->has_gateway == (d->class == CLIENT_GATEWAY), "%s",
	    cases[_i].label);
	if (strcmp(d->reason, "unknown-request") == 0 ||
	    strcmp(d->reason, "bad-client-address") == 0)
		ck_assert_msg(d->warning != NULL, "%s: no warning",
		    cases[_i].label);
	else
		ck_assert_msg(d->warning == NULL, "%s: warning %s",
		    cases[_i].label, d->warning);
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
	r = decision_repeat(d);
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

Suite *
decide_suite(void)
{
	Suite	*s = suite_create("decide");
	TCase	*tc = tcase_create("decide");

	tcase_add_loop_test(tc, test_decide, 0, NELEMS(cases));
	tcase_add_test(tc, test_explanation);
	tcase_add_test(tc, test_repeat);
	suite_add_tcase(s, tc);
	return (s);
}
