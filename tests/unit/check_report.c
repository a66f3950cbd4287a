#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"
#include "unit.h"

/* Values as the log line writes them (SPEC section 7). */
static const struct {
	const char	*label;
	const char	*in;
	const char	*out;
} quotes[] = {
	{ "plain word", "DEFER", "DEFER" },
	{ "with space", "a b", "\"a b\"" },
	{ "with quote", "say \"hi\"", "\"say \\\"hi\\\"\"" },
	{ "with backslash", "a\\b", "\"a\\\\b\"" },
	{ "empty", "", "\"\"" },
	{ "control characters", "a\tb\rc", "a?b?c" },
	{ "DEL", "a\177", "a?" },
	{ "UTF-8 kept", "b\xc3\xa4r", "b\xc3\xa4r" },
	{ "mixed", "a \"b\"\tc\\", "\"a \\\"b\\\"?c\\\\\"" },
};

START_TEST(test_quote)
{
	struct buf	b = { NULL, 0, 0 };

	report_quote(&b, quotes[_i].in);
	ck_assert_msg(strcmp(b.s, quotes[_i].out) == 0, "%s: %s",
	    quotes[_i].label, b.s);
	buf_free(&b);
}
END_TEST

static struct decision *
gateway_decision(void)
{
	struct decision	*d = decision_new();

	d->action = ACT_DEFER;
	d->reply = xstrdup("DEFER 4.3.5 hidden");
	d->reason = "nat-gateway";
	d->explanation = xstrdup("client address 172.20.0.1 is \"x\"");
	d->class = CLIENT_GATEWAY;
	d->client = xstrdup("172.20.0.1");
	d->has_gateway = 1;
	addr_parse("172.20.0.1", &d->gateway.net.addr);
	d->gateway.net.prefix = 32;
	d->gateway.source = GW_DEFAULT_ROUTE;
	d->instance = xstrdup("5B6A.6F1C2E.8A1F5.0");
	return (d);
}

static struct request *
gateway_request(const char *queue_id)
{
	struct request	*req = request_new();
	const char	*why;
	char		*qid;

	request_set(req, "request=smtpd_access_policy", &why);
	request_set(req, "client_address=172.20.0.1", &why);
	request_set(req, "helo_name=mail.example.org", &why);
	request_set(req, "sender=a@example.org", &why);
	request_set(req, "recipient=b@example.com", &why);
	xasprintf(&qid, "queue_id=%s", queue_id);
	request_set(req, qid, &why);
	free(qid);
	return (req);
}

START_TEST(test_logline)
{
	struct decision	*d = gateway_decision();
	struct request	*req = gateway_request("");
	struct buf	 b = { NULL, 0, 0 };
	char		*line;

	report_logline(d, req, &b);
	line = buf_take(&b);
	ck_assert_str_eq(line, "NOQUEUE: action=DEFER reason=nat-gateway "
	    "client=172.20.0.1 gateway_source=default-route "
	    "helo=mail.example.org from=<a@example.org> to=<b@example.com> "
	    "instance=5B6A.6F1C2E.8A1F5.0 explanation=\"client address "
	    "172.20.0.1 is \\\"x\\\"\"");
	free(line);
	request_free(req);
	req = gateway_request("4F2A1C");
	request_set(req, "sender=", NULL);
	report_logline(d, req, &b);
	line = buf_take(&b);
	ck_assert(strncmp(line, "4F2A1C: action=DEFER", 20) == 0);
	ck_assert(strstr(line, " from=<> ") != NULL);
	free(line);
	request_free(req);
	decision_free(d);
}
END_TEST

START_TEST(test_audit)
{
	struct decision	*d = gateway_decision();
	struct request	*req = gateway_request("4F2A1C");
	json_t		*o;

	o = report_audit(d, req, 0);
	ck_assert_str_eq(json_string_value(json_object_get(o, "time")),
	    "1970-01-01T00:00:00Z");
	ck_assert_str_eq(json_string_value(json_object_get(o, "queue_id")),
	    "4F2A1C");
	ck_assert_str_eq(json_string_value(json_object_get(o, "action")),
	    "DEFER");
	ck_assert_str_eq(json_string_value(json_object_get(o,
	    "gateway_source")), "default-route");
	ck_assert_str_eq(json_string_value(json_object_get(o, "from")),
	    "a@example.org");
	ck_assert_str_eq(json_string_value(json_object_get(o, "explanation")),
	    "client address 172.20.0.1 is \"x\"");
	json_decref(o);

	/* Invalid UTF-8 from a client still makes a valid record. */
	request_set(req, "helo_name=\xff\xfe", NULL);
	o = report_audit(d, req, 0);
	ck_assert_str_eq(json_string_value(json_object_get(o, "helo")), "??");
	json_decref(o);
	request_free(req);
	decision_free(d);
}
END_TEST

START_TEST(test_json)
{
	struct decision	*d = gateway_decision();
	json_t		*o, *c, *g;

	o = report_json(d);
	ck_assert_str_eq(json_string_value(json_object_get(o, "action")),
	    "DEFER");
	ck_assert_str_eq(json_string_value(json_object_get(o, "reply")),
	    "DEFER 4.3.5 hidden");
	ck_assert_str_eq(json_string_value(json_object_get(o, "reason")),
	    "nat-gateway");
	ck_assert(json_is_string(json_object_get(o, "explanation")));
	c = json_object_get(o, "client");
	ck_assert_str_eq(json_string_value(json_object_get(c, "address")),
	    "172.20.0.1");
	ck_assert_str_eq(json_string_value(json_object_get(c, "class")),
	    "gateway");
	g = json_object_get(o, "gateway");
	ck_assert_str_eq(json_string_value(json_object_get(g, "source")),
	    "default-route");
	ck_assert(json_is_null(json_object_get(o, "spf")));
	json_decref(o);

	d->has_gateway = 0;
	d->class = CLIENT_SKIP;
	o = report_json(d);
	ck_assert(json_is_null(json_object_get(o, "gateway")));
	json_decref(o);
	decision_free(d);
}
END_TEST

Suite *
report_suite(void)
{
	Suite	*s = suite_create("report");
	TCase	*tc = tcase_create("report");

	tcase_add_loop_test(tc, test_quote, 0, NELEMS(quotes));
	tcase_add_test(tc, test_logline);
	tcase_add_test(tc, test_audit);
	tcase_add_test(tc, test_json);
	suite_add_tcase(s, tc);
	return (s);
}
