#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "natguard.h"
#include "unit.h"

/*
 * Requests as a sequence of lines; the status the last line gives, and
 * for errors the reason.  "%N" in a line stands for a NUL byte.
 */
static const struct {
	const char	*label;
	const char	*lines[4];
	enum req_status	 status;
	const char	*why;
} cases[] = {
	{ "one attribute", { "request=smtpd_access_policy" }, REQ_MORE,
	    NULL },
	{ "end of request", { "a=b", "" }, REQ_DONE, NULL },
	{ "CR before LF", { "a=b\r", "\r" }, REQ_DONE, NULL },
	{ "empty value", { "sender=" }, REQ_MORE, NULL },
	{ "value with =", { "a=b=c" }, REQ_MORE, NULL },
	{ "no equals", { "hello" }, REQ_ERROR, "line without \"=\"" },
	{ "no name", { "=x" }, REQ_ERROR, "attribute without a name" },
	{ "NUL byte", { "a=b%Nc" }, REQ_ERROR, "NUL byte in request" },
	{ "empty request", { "" }, REQ_ERROR, "empty request" },
	{ "bare CR line first", { "\r" }, REQ_ERROR, "empty request" },
};

START_TEST(test_lines)
{
	struct request	*req = request_new();
	enum req_status	 st = REQ_MORE;
	const char	*why = NULL;
	char		 buf[64], *p;
	size_t		 i, len;

	for (i = 0; i < 4 && cases[_i].lines[i] != NULL; i++) {
		snprintf(buf, sizeof(buf), "%s", cases[_i].lines[i]);
		len = strlen(buf);
		if ((p = strstr(buf, "%N")) != NULL) {
			p[0] = '\0';
			memmove(p + 1, p + 2, strlen(p + 2) + 1);
			len--;
		}
		st = request_add_line(req, buf, len, &why);
	}
	ck_assert_msg(st == cases[_i].status, "%s: status %d", cases[_i].label,
	    st);
	if (cases[_i].why != NULL)
		ck_assert_msg(strcmp(why, cases[_i].why) == 0, "%s: %s",
		    cases[_i].label, why);
	request_free(req);
}
END_TEST

START_TEST(test_values)
{
	struct request	*req = request_new();
	const char	*why;

	ck_assert_int_eq(request_add_line(req, "a=1", 3, &why), REQ_MORE);
	ck_assert_int_eq(request_add_line(req, "b=x=y", 5, &why), REQ_MORE);
	ck_assert_int_eq(request_add_line(req, "a=2", 3, &why), REQ_MORE);
	ck_assert_str_eq(request_get(req, "a"), "2");
	ck_assert_str_eq(request_get(req, "b"), "x=y");
	ck_assert_ptr_eq(request_get(req, "c"), NULL);
	ck_assert_int_eq(request_count(req), 2);
	request_reset(req);
	ck_assert_int_eq(request_count(req), 0);
	ck_assert_ptr_eq(request_get(req, "a"), NULL);
	ck_assert_int_eq(request_set(req, "sender=a@b", &why), 0);
	ck_assert_int_eq(request_set(req, "nonsense", &why), -1);
	request_free(req);
	request_free(NULL);
}
END_TEST

START_TEST(test_long_line)
{
	struct request	*req = request_new();
	const char	*why;
	char		*line = xmalloc(REQ_MAX_LINE + 2);

	memset(line, 'x', REQ_MAX_LINE + 1);
	line[0] = 'a';
	line[1] = '=';
	ck_assert_int_eq(request_add_line(req, line, REQ_MAX_LINE, &why),
	    REQ_MORE);
	ck_assert_int_eq(request_add_line(req, line, REQ_MAX_LINE + 1, &why),
	    REQ_ERROR);
	ck_assert_str_eq(why, "line longer than 8192 bytes");
	free(line);
	request_free(req);
}
END_TEST

START_TEST(test_attr_limit)
{
	struct request	*req = request_new();
	const char	*why;
	char		 buf[32];
	int		 i, len;

	for (i = 0; i < REQ_MAX_ATTRS; i++) {
		len = snprintf(buf, sizeof(buf), "a%d=1", i);
		ck_assert_int_eq(request_add_line(req, buf, len, &why),
		    REQ_MORE);
	}
	ck_assert_int_eq(request_add_line(req, "z=1", 3, &why), REQ_ERROR);
	ck_assert_str_eq(why, "more than 256 attributes");
	request_free(req);
}
END_TEST

START_TEST(test_size_limit)
{
	struct request	*req = request_new();
	const char	*why;
	char		*line = xmalloc(8000);
	int		 i;

	memset(line, 'v', 8000);
	line[1] = '=';
	/* Eight lines of 8000 bytes are 64008 bytes with newlines. */
	for (i = 0; i < 8; i++) {
		line[0] = 'a' + i;
		ck_assert_int_eq(request_add_line(req, line, 8000, &why),
		    REQ_MORE);
	}
	line[0] = 'z';
	ck_assert_int_eq(request_add_line(req, line, 8000, &why), REQ_ERROR);
	ck_assert_str_eq(why, "request larger than 65536 bytes");
	free(line);
	request_free(req);
}
END_TEST

Suite *
request_suite(void)
{
	Suite	*s = suite_create("request");
	TCase	*tc = tcase_create("request");

	tcase_add_loop_test(tc, test_lines, 0, NELEMS(cases));
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_attr_limit);
	tcase_add_test(tc, test_size_limit);
	suite_add_tcase(s, tc);
	return (s);
}
