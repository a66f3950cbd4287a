#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"
#include "unit.h"

/*
 * natguard audit over the same decisions logged four ways: the counts
 * must be exactly the same.  Traditional syslog stamps carry no year (the
 * current one is assumed), so their times are not compared.
 */
static const struct {
	const char	*file;
	int		 times;
	int		 symptoms;
} logs[] = {
	{ "audit-syslog.txt", 0, 1 },
	{ "audit-rfc5424.txt", 1, 1 },
	{ "audit-journal.txt", 1, 1 },
	{ "audit.json", 1, 0 },
};

static json_t *
scan(const char *file, time_t since)
{
	struct audit_sum	*s = audit_sum_new(since);
	char			*text = fixture(file), *line, *save;
	json_t			*o;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		audit_sum_line(s, line);
	o = audit_sum_json(s);
	audit_sum_free(s);
	free(text);
	return (o);
}

static json_int_t
num(json_t *o, const char *obj, const char *key)
{
	return (json_integer_value(json_object_get(obj ? json_object_get(o,
	    obj) : o, key)));
}

START_TEST(test_formats)
{
	json_t	*o = scan(logs[_i].file, 0);

	ck_assert_int_eq(num(o, NULL, "decisions"), 4);
	ck_assert_int_eq(num(o, "by_action", "DEFER"), 2);
	ck_assert_int_eq(num(o, "by_action", "PREPEND"), 1);
	ck_assert_int_eq(num(o, "by_action", "DUNNO"), 1);
	ck_assert_int_eq(num(o, "by_reason", "nat-gateway"), 2);
	ck_assert_int_eq(num(o, "by_reason", "skip-address"), 1);
	ck_assert_int_eq(num(o, "gateways", "172.20.0.1"), 2);
	ck_assert_int_eq(json_object_size(json_object_get(o, "gateways")), 1);
	ck_assert_int_eq(num(o, "sender_domains", "example.org"), 1);
	ck_assert_int_eq(num(o, "sender_domains", "example.net"), 1);
	ck_assert_int_eq(num(o, "spf_probe", "fail"), 1);
	ck_assert_int_eq(num(o, "spf_probe", "pass"), 1);
	ck_assert_int_eq(num(o, NULL, "postfix_symptoms"), logs[_i].symptoms);
	if (logs[_i].times) {
		ck_assert_str_eq(json_string_value(json_object_get(o, "first")),
		    "2026-11-26T05:22:13Z");
		ck_assert_str_eq(json_string_value(json_object_get(o, "last")),
		    "2026-11-26T05:24:00Z");
	}
	json_decref(o);
}
END_TEST

START_TEST(test_since)
{
	time_t	 t;
	json_t	*o;

	ck_assert_int_eq(audit_parse_time("2026-11-26T05:23:00", &t), 0);
	o = scan("audit-rfc5424.txt", t);
	ck_assert_int_eq(num(o, NULL, "decisions"), 2);
	ck_assert_int_eq(num(o, "by_reason", "nat-gateway"), 0);
	ck_assert_int_eq(num(o, NULL, "postfix_symptoms"), 1);
	json_decref(o);
	ck_assert_int_eq(audit_parse_time("yesterday", &t), -1);
	ck_assert_int_eq(audit_parse_time("2026-11-26", &t), 0);
}
END_TEST

/*
 * Suspected hiders: a private client refused for three unrelated sender
 * domains (one.example.org and lists.example.org are one), in Postfix's
 * own log as policyd-spf's and natguard's replies are logged there, and
 * natguard's.  Public clients and refusals that are not SPF's are not.
 * Loopback that carried mail of many unrelated domains is, refused or
 * not.
 */
START_TEST(test_hiders)
{
	json_t		*o = scan("audit-hiders-maillog.txt", 0), *sus, *ref, *r;
	size_t		 i, n = 0;

	sus = json_object_get(o, "suspected_hiders");
	ref = json_object_get(o, "refused_mail");
	ck_assert_int_eq(num(sus, "172.29.8.3", "refused"), 4);
	ck_assert_int_eq(num(sus, "172.29.8.3", "domains"), 3);
	ck_assert_msg(json_object_get(sus, "198.51.100.9") == NULL,
	    "a public client is no hider");
	ck_assert_msg(json_object_get(sus, "192.168.1.10") == NULL,
	    "one domain is no hider");
	ck_assert_msg(json_object_get(sus, "10.0.0.7") == NULL,
	    "two domains (relay denial and a pass not counted)");
	/*
	 * Loopback answered without SPF for three unrelated domains (old
	 * logs, before natguard watched it): a tunnel's suspect, nothing
	 * refused; ::1 for one registrable domain is not.
	 */
	ck_assert_int_eq(num(sus, "127.0.0.1", "refused"), 0);
	ck_assert_int_eq(num(sus, "127.0.0.1", "domains"), 3);
	ck_assert_msg(json_object_get(sus, "::1") == NULL,
	    "one registrable domain is no hider");
	ck_assert_int_eq(json_array_size(ref), 4);
	json_array_foreach(ref, i, r) {
		ck_assert_str_eq(json_string_value(json_object_get(r,
		    "client")), "172.29.8.3");
		ck_assert_str_eq(json_string_value(json_object_get(r, "to")),
		    "postmaster@example.test");
		ck_assert_ptr_nonnull(json_string_value(json_object_get(r,
		    "time")));
		if (strstr(json_string_value(json_object_get(r, "reply")),
		    "4.3.5") != NULL)
			n++;
	}
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ref,
	    0), "from")), "a@one.example.org");
	ck_assert_msg(strncmp(json_string_value(json_object_get(
	    json_array_get(ref, 0), "reply")), "550 5.7.23 <postmaster", 22) ==
	    0, "%s", json_string_value(json_object_get(json_array_get(ref, 0),
	    "reply")));
	ck_assert_int_eq(n, 1);
	json_decref(o);
}
END_TEST

Suite *
logscan_suite(void)
{
	Suite	*s = suite_create("logscan");
	TCase	*tc = tcase_create("logscan");

	tcase_add_loop_test(tc, test_formats, 0, NELEMS(logs));
	tcase_add_test(tc, test_hiders);
	tcase_add_test(tc, test_since);
	suite_add_tcase(s, tc);
	return (s);
}
