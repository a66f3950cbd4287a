#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"
#include "unit.h"

/*
 * natguard migrate --from-policyd-spf: Debian's shipped file, the man
 * page's examples together, and broken files.  The output must be a
 * natguard.conf that natguard reads, with the settings that behave as
 * policyd-spf did, and name what it does not carry.
 */

static const struct {
	const char	*label;
	const char	*file;
	int		 rc;
	unsigned int	 reject;	/* spf_reject's bits */
	unsigned int	 defer;
	int		 helo;		/* spf_helo */
	const char	*words[6];	/* in the output (rc 0) or the error */
} cases[] = {
	{ "Debian's shipped file", "debian.conf", 0, 1U << SPF_R_FAIL, 0, 1,
	    { "# TempError_Defer = False (line 10)\n", "spf_defer =\n",
	    "skip_addresses = 127.0.0.0/8, ::ffff:127.0.0.0/104, ::1",
	    "# Every option set is carried.",
	    "check_policy_service inet:127.0.0.1:10041" } },
	{ "the man page's examples", "examples.conf", 0, (1U << SPF_R_FAIL) |
	    (1U << SPF_R_SOFTFAIL) | (1U << SPF_R_NEUTRAL) |
	    (1U << SPF_R_PERMERROR), 1U << SPF_R_TEMPERROR, 1,
	    { "spf_header = authentication-results",
	    "spf_helo_whitelist = relay.example.com, sender.example.org",
	    "#   Socket = inet:8890@localhost: the milter front end",
	    "spf_void_limit = 3" } },
	{ "every option natguard carries", "options.conf", 0,
	    (1U << SPF_R_FAIL) | (1U << SPF_R_SOFTFAIL) |
	    (1U << SPF_R_PERMERROR), 0, 1,
	    { "spf_helo_reject = fail permerror\n"
	    "spf_helo_defer =\nspf_helo_null_sender_only = yes\n",
	    "spf_pass_restriction = mfrom_passed_spf\n",
	    "spf_enhanced_status_codes = no\n",
	    "#   Per_User = text,/etc/postfix-policyd-spf-python/users: "
	    "per-recipient settings are Postfix's" } },
	{ "the rest of it", "options.conf", 0,
	    (1U << SPF_R_FAIL) | (1U << SPF_R_SOFTFAIL) |
	    (1U << SPF_R_PERMERROR), 0, 1,
	    { "spf_helo_pass_restriction = helo_passed_spf\n",
	    "spf_reject_no_mail_only = yes\n", "spf_prospective = 192.0.2.25\n",
	    "spf_header_receiver = recipient-domain\n" } },
	{ "MAIL FROM not checked (nor acted upon)", "nocheck.conf", 0, 0, 0,
	    1,
	    { "spf_helo_reject = fail softfail neutral\n"
	    "spf_helo_defer = temperror\n", "spf_mailfrom = no\n" } },
	{ "HELO False", "false.conf", 0,
	    1U << SPF_R_FAIL, 1U << SPF_R_TEMPERROR, 1,
	    { "spf_helo_reject =\nspf_helo_defer =\n" } },
	{ "TestOnly = 0, HELO not checked", "testonly.conf", 0, 0, 0, 0,
	    { "spf_reject =\n", "spf_helo = no", "spf_header = none" } },
	{ "HELO_reject unlike Mail_From_reject", "split.conf", 0,
	    1U << SPF_R_FAIL, 0, 1, { "spf_reject = fail\n",
	    "spf_helo_reject = fail softfail neutral\n" } },
	{ "no '='", "bad-syntax.conf", 2, 0, 0, 0,
	    { "bad-syntax.conf:1: expected \"name = value\"" } },
	{ "an unknown name", "bad-name.conf", 2, 0, 0, 0,
	    { "bad-name.conf:2: HELO_rejekt: not an option" } },
	{ "a bad value", "bad-value.conf", 2, 0, 0, 0,
	    { "bad-value.conf:3: HELO_reject = Sometimes: expected" } },
	{ "\"true\", which policyd-spf takes for False", "bad-case.conf", 2, 0,
	    0, 0, { "bad-case.conf:1: TempError_Defer = true: expected True or "
	    "False" } },
	{ "two '='", "bad-twice.conf", 2, 0, 0, 0,
	    { "bad-twice.conf:1: expected" } },
	{ "no such file", "missing.conf", 2, 0, 0, 0,
	    { "missing.conf: No such file or directory" } },
};

/* cmd_migrate()'s standard output and error, and its exit status. */
static int
migrate(const char *path, char **out, char **err)
{
	FILE	*o = tmpfile(), *e = tmpfile(), *saved;
	int	 rc, fd;
	long	 n;

	ck_assert_ptr_nonnull(o);
	ck_assert_ptr_nonnull(e);
	fflush(stderr);
	fd = dup(fileno(stderr));
	dup2(fileno(e), fileno(stderr));
	saved = stderr;
	rc = cmd_migrate(path, o);
	fflush(stderr);
	dup2(fd, fileno(saved));
	close(fd);
	n = ftell(o);
	*out = xcalloc(1, (size_t)n + 1);
	rewind(o);
	ck_assert_uint_eq(fread(*out, 1, (size_t)n, o), (size_t)n);
	n = ftell(e);
	*err = xcalloc(1, (size_t)n + 1);
	rewind(e);
	ck_assert_uint_eq(fread(*err, 1, (size_t)n, e), (size_t)n);
	fclose(o);
	fclose(e);
	return (rc);
}

START_TEST(test_migrate)
{
	struct config	*cfg;
	char		*path, *out, *err, *why;
	int		 rc, i;

	xasprintf(&path, "%s/policyd-spf/%s", getenv("TESTDATA"),
	    cases[_i].file);
	rc = migrate(path, &out, &err);
	ck_assert_msg(rc == cases[_i].rc, "%s: exit %d: %s", cases[_i].label,
	    rc, err);
	for (i = 0; i < 6 && cases[_i].words[i] != NULL; i++)
		ck_assert_msg(strstr(rc == 0 ? out : err, cases[_i].words[i]) !=
		    NULL, "%s: lacks \"%s\": %s", cases[_i].label,
		    cases[_i].words[i], rc == 0 ? out : err);
	if (rc == 0) {
		cfg = config_parse("migrated", out, strlen(out), &why);
		ck_assert_msg(cfg != NULL, "%s: %s", cases[_i].label, why);
		ck_assert_msg(cfg->spf_reject == cases[_i].reject,
		    "%s: spf_reject %#x", cases[_i].label, cfg->spf_reject);
		ck_assert_msg(cfg->spf_defer == cases[_i].defer,
		    "%s: spf_defer %#x", cases[_i].label, cfg->spf_defer);
		ck_assert_int_eq(cfg->spf_helo, cases[_i].helo);
		config_free(cfg);
	} else
		ck_assert_msg(strncmp(err, "natguard: ", 10) == 0, "%s", err);
	free(out);
	free(err);
	free(path);
}
END_TEST

/* Every option of the table is in natguard.conf(5)'s migration table. */
START_TEST(test_table_documented)
{
	const char	**names;
	char		 *path, *man;
	size_t		  i, n = migrate_options(&names);

	xasprintf(&path, "%s/../../man/natguard.conf.5", getenv("TESTDATA"));
	man = read_small(path);
	ck_assert_ptr_nonnull(man);
	ck_assert_uint_ge(n, 30);
	for (i = 0; i < n; i++)
		ck_assert_msg(strstr(man, names[i]) != NULL, "natguard.conf(5) "
		    "does not name policyd-spf's %s", names[i]);
	free(man);
	free(path);
}
END_TEST

Suite *
migrate_suite(void)
{
	Suite	*s = suite_create("migrate");
	TCase	*tc = tcase_create("core");

	tcase_add_loop_test(tc, test_migrate, 0, NELEMS(cases));
	tcase_add_test(tc, test_table_documented);
	suite_add_tcase(s, tc);
	return (s);
}
