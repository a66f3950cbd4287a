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

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "natguard.h"

/*
 * natguard migrate --from-policyd-spf FILE: postfix-policyd-spf-python's
 * policyd-spf.conf (Debian 12: 3.0.4) as a natguard.conf that behaves as
 * it did, each key commented with the options it came from, what cannot
 * be carried named, and the Postfix lines to change.  The options are one
 * table (popts[]): natguard.conf(5)'s migration table reads as it does.
 *
 * The file is read as policyd-spf reads it: "name = value", "#" to the
 * end of the line; a line it would log as an error (no "=", two, an
 * unknown name, a value out of range) is an error here, FILE:LINE.
 */

enum pstatus {
	P_CARRIED,	/* a natguard key does the same */
	P_NOT_YET,	/* natguard lacks the behaviour (issue 17) */
	P_NOT_APPLICABLE	/* the milter front end, or nothing to do */
};

struct popt {
	const char	*name;
	const char	*values;	/* for the docs table */
	const char	*natguard;	/* key = value, for the docs table */
	enum pstatus	 status;
	const char	*why;		/* what natguard does instead, or lacks */
	const char	*def;		/* policyd-spf's default; NULL: none */
};

static const struct popt popts[] = {
	{ "debugLevel", "-1 .. 5", "log_level = error .. debug", P_CARRIED,
	    NULL, "1" },
	{ "TestOnly", "0, 1", "spf_reject =, spf_defer = (0)", P_CARRIED,
	    NULL, "1" },
	{ "defaultSeedOnly", "0, 1", "as TestOnly", P_CARRIED, NULL, NULL },
	{ "HELO_reject", "SPF_Not_Pass, Softfail, Fail, Null, False, "
	    "No_Check", "spf_reject (one list for both identities), "
	    "spf_helo = no (No_Check)", P_CARRIED, "natguard has one "
	    "spf_reject list for HELO and MAIL FROM; Null, and HELO_reject "
	    "unlike Mail_From_reject, are not carried yet", "Fail" },
	{ "Mail_From_reject", "SPF_Not_Pass, Softfail, Fail, False, No_Check",
	    "spf_reject", P_CARRIED, "No_Check is not carried: natguard "
	    "always checks MAIL FROM", "Fail" },
	{ "PermError_reject", "True, False", "spf_reject += permerror",
	    P_CARRIED, NULL, "False" },
	{ "TempError_Defer", "True, False", "spf_defer = temperror or empty",
	    P_CARRIED, NULL, "False" },
	{ "skip_addresses", "networks", "skip_addresses", P_CARRIED, NULL,
	    "127.0.0.0/8,::ffff:127.0.0.0/104,::1" },
	{ "Whitelist", "networks", "spf_whitelist", P_CARRIED, NULL, NULL },
	{ "Domain_Whitelist", "domains", "spf_domain_whitelist", P_CARRIED,
	    NULL, NULL },
	{ "Header_Type", "SPF, AR, None", "spf_header = received-spf, "
	    "authentication-results, none", P_CARRIED, NULL, "SPF" },
	{ "Authserv_Id", "a name, HOSTNAME", "authserv_id", P_CARRIED, NULL,
	    "HOSTNAME" },
	{ "Lookup_Time", "seconds", "spf_timeout", P_CARRIED, NULL, "20" },
	{ "Hide_Receiver", "Yes, No", "(always: receiver= is natguard's "
	    "host)", P_CARRIED, "natguard's header names its own host as "
	    "receiver, never a recipient: Yes is what it does; No is not "
	    "carried", "No" },
	{ "HELO_pass_restriction", "a restriction class", "-", P_NOT_YET,
	    "a restriction class on HELO pass", NULL },
	{ "Mail_From_pass_restriction", "a restriction class", "-",
	    P_NOT_YET, "a restriction class on MAIL FROM pass", NULL },
	{ "No_Mail", "True, False", "-", P_NOT_YET, "rejecting only for "
	    "\"v=spf1 -all\"", "False" },
	{ "Reject_Not_Pass_Domains", "domains", "-", P_NOT_YET, "rejecting "
	    "neutral and softfail for listed domains", NULL },
	{ "Prospective", "an address", "-", P_NOT_YET, "checking an "
	    "outbound address instead of the client's", NULL },
	{ "HELO_Whitelist", "host names", "-", P_NOT_YET, "skipping SPF for "
	    "listed, forward-confirmed HELO names", NULL },
	{ "Domain_Whitelist_PTR", "domains", "-", P_NOT_YET, "skipping SPF "
	    "for clients whose PTR is in the listed domains", NULL },
	{ "SPF_Enhanced_Status_Codes", "Yes, No", "(always Yes: 5.7.23, "
	    "5.7.24)", P_CARRIED, "natguard always answers RFC 7372's codes; "
	    "No is not carried", "Yes" },
	{ "Reason_Message", "a template", "-", P_NOT_YET, "the reject text "
	    "template", "Message {rejectdefer} due to: {spf}. Please see {url}" },
	{ "Whitelist_Lookup_Time", "seconds", "-", P_NOT_YET, "a time limit "
	    "of its own for the whitelists' DNS", "10" },
	{ "Void_Limit", "a count", "(always 2, RFC 7208 4.6.4)", P_CARRIED,
	    "natguard enforces RFC 7208's 2; another limit is not carried",
	    "2" },
	{ "Per_User", "a file", "-", P_NOT_YET, "per-recipient settings",
	    NULL },
	{ "Mock", "True, False", "-", P_NOT_YET, "a fixed first header for "
	    "milters", "False" },
	{ "Socket", "milter", "-", P_NOT_APPLICABLE, "the milter front end; "
	    "natguard is a policy server", NULL },
	{ "PidFile", "milter", "-", P_NOT_APPLICABLE, "the milter front end "
	    "(natguard's own is pidfile)", NULL },
	{ "UserID", "milter", "-", P_NOT_APPLICABLE, "the milter front end "
	    "(natguard's own is user)", NULL },
	{ "UMask", "milter", "-", P_NOT_APPLICABLE, "the milter front end",
	    NULL },
	{ "InternalHosts", "milter", "-", P_NOT_APPLICABLE, "the milter "
	    "front end", NULL },
	{ "IntHosts", "milter", "-", P_NOT_APPLICABLE, "the milter front "
	    "end", NULL },
	{ "MacroList", "milter", "-", P_NOT_APPLICABLE, "the milter front "
	    "end", NULL },
};
#define NPOPTS	(sizeof(popts) / sizeof(popts[0]))

/* What the file said: a value and a line per option (0: not set). */
struct pfile {
	const char	*path;
	char		*value[NPOPTS];
	int		 line[NPOPTS];
};

static int
popt_find(const char *name)
{
	size_t	i;

	for (i = 0; i < NPOPTS; i++)
		if (strcmp(popts[i].name, name) == 0)
			return ((int)i);
	return (-1);
}

/* The value in effect: the file's, or policyd-spf's default. */
static const char *
val(const struct pfile *pf, const char *name)
{
	int	i = popt_find(name);

	if (i < 0)
		fatalx("migrate: no option %s", name);
	return (pf->value[i] != NULL ? pf->value[i] : popts[i].def);
}

static char *
trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return (s);
}

static int
one_of(const char *v, const char *const *words)
{
	size_t	i;

	for (i = 0; words[i] != NULL; i++)
		if (strcasecmp(v, words[i]) == 0)
			return ((int)i);
	return (-1);
}

/* A value out of policyd-spf's range: NULL, or why. */
static const char *
check_value(const char *name, const char *v)
{
	static const char *const rej[] = { "SPF_Not_Pass", "Softfail", "Fail",
	    "Null", "False", "No_Check", NULL };
	static const char *const tf[] = { "True", "False", "Yes", "No", "1",
	    "0", NULL };
	static const char *const hdr[] = { "SPF", "AR", "None", NULL };
	uint64_t	 n;

	if (strcmp(name, "HELO_reject") == 0 && one_of(v, rej) < 0)
		return ("expected SPF_Not_Pass, Softfail, Fail, Null, False or "
		    "No_Check");
	if (strcmp(name, "Mail_From_reject") == 0 && (one_of(v, rej) < 0 ||
	    strcasecmp(v, "Null") == 0))
		return ("expected SPF_Not_Pass, Softfail, Fail, False or "
		    "No_Check");
	if ((strcmp(name, "PermError_reject") == 0 ||
	    strcmp(name, "TempError_Defer") == 0 ||
	    strcmp(name, "No_Mail") == 0 || strcmp(name, "Mock") == 0 ||
	    strcmp(name, "Hide_Receiver") == 0 ||
	    strcmp(name, "SPF_Enhanced_Status_Codes") == 0) &&
	    one_of(v, tf) < 0)
		return ("expected True or False (Yes or No)");
	if (strcmp(name, "Header_Type") == 0 && one_of(v, hdr) < 0)
		return ("expected SPF, AR or None");
	if ((strcmp(name, "TestOnly") == 0 ||
	    strcmp(name, "defaultSeedOnly") == 0) &&
	    strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
		return ("expected 0 or 1");
	if (strcmp(name, "debugLevel") == 0 && strcmp(v, "-1") != 0 &&
	    parse_u64(v, 0, 1000, &n) != 0)
		return ("expected a number from -1");
	if ((strcmp(name, "Lookup_Time") == 0 ||
	    strcmp(name, "Whitelist_Lookup_Time") == 0 ||
	    strcmp(name, "Void_Limit") == 0) && parse_u64(v, 1, 3600, &n) != 0)
		return ("expected a whole number of seconds (or lookups)");
	return (NULL);
}

/*
 * Read FILE.  Returns 0, or -1 with *err as "FILE:LINE: what" (or
 * "FILE: why" when it cannot be read).
 */
static int
pfile_read(struct pfile *pf, const char *path, char **err)
{
	char		*text, *line, *next, *eq, *name, *v, *hash;
	const char	*why;
	int		 lineno = 0, i;

	memset(pf, 0, sizeof(*pf));
	pf->path = path;
	if ((text = read_small(path)) == NULL) {
		xasprintf(err, "%s: %s", path, strerror(errno));
		return (-1);
	}
	for (line = text; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		if (*(line = trim(line)) == '\0')
			continue;
		if ((eq = strchr(line, '=')) == NULL ||
		    strchr(eq + 1, '=') != NULL) {
			xasprintf(err, "%s:%d: expected \"name = value\" (a "
			    "line policyd-spf ignores with an error)", path,
			    lineno);
			goto bad;
		}
		*eq = '\0';
		name = trim(line);
		v = trim(eq + 1);
		if ((i = popt_find(name)) < 0) {
			xasprintf(err, "%s:%d: %s: not an option of "
			    "postfix-policyd-spf-python 3.0.4", path, lineno,
			    name);
			goto bad;
		}
		if ((why = check_value(name, v)) != NULL) {
			xasprintf(err, "%s:%d: %s = %s: %s", path, lineno,
			    name, v, why);
			goto bad;
		}
		/* policyd-spf takes the last one, as a dict does. */
		free(pf->value[i]);
		pf->value[i] = xstrdup(v);
		pf->line[i] = lineno;
	}
	free(text);
	return (0);
bad:
	free(text);
	return (-1);
}

static void
pfile_free(struct pfile *pf)
{
	size_t	i;

	for (i = 0; i < NPOPTS; i++)
		free(pf->value[i]);
}

static int
truth(const char *v)
{
	return (strcasecmp(v, "True") == 0 || strcasecmp(v, "Yes") == 0 ||
	    strcmp(v, "1") == 0);
}

/* "fail softfail" for a *_reject value; NULL for False, No_Check, Null. */
static const char *
reject_set(const char *v)
{
	if (strcasecmp(v, "Fail") == 0)
		return ("fail");
	if (strcasecmp(v, "Softfail") == 0)
		return ("fail softfail");
	if (strcasecmp(v, "SPF_Not_Pass") == 0)
		return ("fail softfail neutral permerror");
	return (NULL);
}

/* "# NAME = VALUE (line N)" or "(policyd-spf's default)". */
static void
from(struct buf *b, const struct pfile *pf, const char *name)
{
	int	 i = popt_find(name);
	char	 line[32];

	buf_adds(b, "# ");
	buf_adds(b, name);
	buf_adds(b, " = ");
	buf_adds(b, val(pf, name) != NULL ? val(pf, name) : "");
	if (pf->line[i] != 0) {
		snprintf(line, sizeof(line), " (line %d)", pf->line[i]);
		buf_adds(b, line);
	} else
		buf_adds(b, " (policyd-spf's default)");
	buf_adds(b, "\n");
}

/* "key = value", or "key =" for an empty list. */
static void
setting(struct buf *b, const char *key, const char *value)
{
	buf_adds(b, key);
	buf_adds(b, *value != '\0' ? " = " : " =");
	buf_adds(b, value);
	buf_adds(b, "\n");
}

static void
not_carried(struct buf *nc, const char *name, const char *value,
    const char *why)
{
	buf_adds(nc, "#   ");
	buf_adds(nc, name);
	buf_adds(nc, " = ");
	buf_adds(nc, value);
	buf_adds(nc, ": ");
	buf_adds(nc, why);
	buf_adds(nc, "\n");
}

/* spf_reject, spf_defer and spf_helo: the options that interact. */
static void
emit_spf(struct buf *b, struct buf *nc, const struct pfile *pf)
{
	const char	*helo = val(pf, "HELO_reject");
	const char	*mf = val(pf, "Mail_From_reject");
	const char	*hs, *ms, *set;
	struct buf	 reject = { NULL, 0, 0 };
	int		 test = strcmp(val(pf, "TestOnly"), "0") == 0 ||
			    (pf->value[popt_find("defaultSeedOnly")] != NULL &&
			    strcmp(val(pf, "defaultSeedOnly"), "0") == 0);
	int		 nocheck = strcasecmp(helo, "No_Check") == 0;

	hs = reject_set(helo);
	ms = reject_set(mf);
	if (strcasecmp(mf, "No_Check") == 0)
		not_carried(nc, "Mail_From_reject", mf, "natguard always "
		    "checks MAIL FROM (RFC 7208 requires it where HELO does "
		    "not decide)");
	if (strcasecmp(helo, "Null") == 0)
		not_carried(nc, "HELO_reject", helo, "rejecting HELO fail for "
		    "the null sender only: natguard's spf_reject applies to "
		    "every sender");
	/* One list for both identities: the MAIL FROM one decides most mail. */
	set = ms;
	if (!nocheck && strcasecmp(helo, "Null") != 0 &&
	    strcmp(hs != NULL ? hs : "", ms != NULL ? ms : "") != 0)
		not_carried(nc, "HELO_reject", helo, "unlike Mail_From_reject: "
		    "natguard has one spf_reject list for both identities; the "
		    "MAIL FROM one is used");
	if (set != NULL)
		buf_adds(&reject, set);
	if (truth(val(pf, "PermError_reject")) && set != NULL &&
	    strstr(set, "permerror") == NULL)
		buf_adds(&reject, " permerror");
	from(b, pf, "HELO_reject");
	from(b, pf, "Mail_From_reject");
	from(b, pf, "PermError_reject");
	from(b, pf, "TestOnly");
	if (test)
		buf_adds(b, "# TestOnly = 0: nothing is rejected or deferred "
		    "for SPF, headers only\n");
	setting(b, "spf_reject", test || reject.s == NULL ? "" : reject.s);
	from(b, pf, "TempError_Defer");
	setting(b, "spf_defer", !test && truth(val(pf, "TempError_Defer")) &&
	    set != NULL ? "temperror" : "");
	if (nocheck)
		buf_adds(b, "# HELO_reject = No_Check\nspf_helo = no\n");
	buf_free(&reject);
}

/* A list of policyd-spf's (commas, no spaces) as natguard writes it. */
static void
emit_list(struct buf *b, const struct pfile *pf, const char *name,
    const char *key)
{
	const char	*v = val(pf, name), *p;

	if (v == NULL && pf->value[popt_find(name)] == NULL)
		return;
	from(b, pf, name);
	buf_adds(b, key);
	buf_adds(b, " =");
	for (p = v != NULL ? v : ""; *p != '\0'; ) {
		size_t	n = strcspn(p, ", \t");

		if (n > 0) {
			buf_adds(b, " ");
			buf_add(b, p, n);
			if (p[n] != '\0' && p[n + strspn(p + n, ", \t")] !=
			    '\0')
				buf_adds(b, ",");
		}
		p += n;
		p += strspn(p, ", \t");
	}
	buf_adds(b, "\n");
}

static void
emit_rest(struct buf *b, struct buf *nc, const struct pfile *pf)
{
	static const char *const levels[] = { "error", "warning", "info",
	    "debug" };
	const char	*v;
	long		 n;
	size_t		 i;

	n = strtol(val(pf, "debugLevel"), NULL, 10);
	from(b, pf, "debugLevel");
	buf_adds(b, "log_level = ");
	buf_adds(b, levels[n < 0 ? 0 : n == 0 ? 1 : n == 1 ? 2 : 3]);
	buf_adds(b, "\n");
	emit_list(b, pf, "skip_addresses", "skip_addresses");
	emit_list(b, pf, "Whitelist", "spf_whitelist");
	emit_list(b, pf, "Domain_Whitelist", "spf_domain_whitelist");
	v = val(pf, "Header_Type");
	from(b, pf, "Header_Type");
	buf_adds(b, "spf_header = ");
	buf_adds(b, strcasecmp(v, "AR") == 0 ? "authentication-results" :
	    strcasecmp(v, "None") == 0 ? "none" : "received-spf");
	buf_adds(b, "\n");
	if ((v = val(pf, "Authserv_Id")) != NULL &&
	    strcmp(v, "HOSTNAME") != 0) {
		from(b, pf, "Authserv_Id");
		buf_adds(b, "authserv_id = ");
		buf_adds(b, v);
		buf_adds(b, "\n");
	}
	from(b, pf, "Lookup_Time");
	buf_adds(b, "spf_timeout = ");
	buf_adds(b, val(pf, "Lookup_Time"));
	buf_adds(b, "s\n");
	if (!truth(val(pf, "Hide_Receiver")) &&
	    pf->value[popt_find("Hide_Receiver")] != NULL)
		not_carried(nc, "Hide_Receiver", val(pf, "Hide_Receiver"),
		    "natguard's header never names a recipient (receiver= is "
		    "its own host)");
	if (!truth(val(pf, "SPF_Enhanced_Status_Codes")))
		not_carried(nc, "SPF_Enhanced_Status_Codes",
		    val(pf, "SPF_Enhanced_Status_Codes"), "natguard always "
		    "answers RFC 7372's 5.7.23 and 5.7.24");
	if (strcmp(val(pf, "Void_Limit"), "2") != 0)
		not_carried(nc, "Void_Limit", val(pf, "Void_Limit"), "natguard "
		    "enforces RFC 7208's limit of 2");
	for (i = 0; i < NPOPTS; i++) {
		if (pf->value[i] == NULL || popts[i].status == P_CARRIED)
			continue;
		/* Set to what policyd-spf does anyway: nothing to carry. */
		if (popts[i].def != NULL &&
		    strcasecmp(pf->value[i], popts[i].def) == 0)
			continue;
		not_carried(nc, popts[i].name, pf->value[i],
		    popts[i].status == P_NOT_APPLICABLE ? popts[i].why :
		    "not yet in natguard");
		if (popts[i].status == P_NOT_YET) {
			buf_adds(nc, "#     (");
			buf_adds(nc, popts[i].why);
			buf_adds(nc, ")\n");
		}
	}
}

/* What to change in Postfix, as comments: the output stays a config. */
static void
emit_postfix(struct buf *b)
{
	buf_adds(b,
	    "\n# Postfix: what to change (then postfix reload).\n"
	    "#   master.cf: remove the policyd-spf service, e.g.\n"
	    "#     policyd-spf  unix  -  n  n  -  0  spawn\n"
	    "#       user=policyd-spf argv=/usr/bin/policyd-spf\n"
	    "#   main.cf: remove policyd-spf_time_limit (natguard is no "
	    "spawned process);\n"
	    "#   in smtpd_recipient_restrictions replace\n"
	    "#     check_policy_service unix:private/policyd-spf\n"
	    "#   with natguard's endpoint, before permit_mynetworks:\n"
	    "#     check_policy_service inet:127.0.0.1:10041\n"
	    "#   and give Postfix longer than spf_timeout:\n"
	    "#     smtpd_policy_service_timeout = 100s\n"
	    "#   natguard then answers a client in mynetworks DUNNO (mynetworks "
	    "= postfix),\n"
	    "#   as permit_mynetworks before policyd-spf did, but still "
	    "defers a NAT gateway.\n");
}

/*
 * Print a natguard.conf for the policyd-spf.conf at path.  Returns 0,
 * or 2 with a message "natguard: FILE[:LINE]: ..." on standard error.
 */
int
cmd_migrate(const char *path, FILE *out)
{
	struct pfile	 pf;
	struct buf	 b = { NULL, 0, 0 }, nc = { NULL, 0, 0 };
	struct config	*cfg;
	char		*err;
	int		 rc = 0;

	if (pfile_read(&pf, path, &err) != 0) {
		fprintf(stderr, "natguard: %s\n", err);
		free(err);
		pfile_free(&pf);
		return (2);
	}
	buf_adds(&b, "# natguard.conf from ");
	buf_adds(&b, path);
	buf_adds(&b, " (postfix-policyd-spf-python)\n"
	    "# by natguard migrate; each key says what it came from.\n\n");
	emit_spf(&b, &nc, &pf);
	emit_rest(&b, &nc, &pf);
	if (nc.len > 0) {
		buf_adds(&b, "\n# Not carried:\n");
		buf_adds(&b, nc.s);
	} else
		buf_adds(&b, "\n# Every option set is carried.\n");
	emit_postfix(&b);
	/* What is printed must be a natguard.conf natguard reads. */
	if ((cfg = config_parse("migrate", b.s, b.len, &err)) == NULL) {
		fprintf(stderr, "natguard: migrate: the result does not parse: "
		    "%s\n", err);
		free(err);
		rc = 1;
	} else {
		fputs(b.s, out);
		config_free(cfg);
	}
	buf_free(&b);
	buf_free(&nc);
	pfile_free(&pf);
	return (rc);
}

/* The migration table, for natguard.conf(5)'s test. */
size_t
migrate_options(const char ***names)
{
	static const char	*v[NPOPTS];
	size_t			 i;

	for (i = 0; i < NPOPTS; i++)
		v[i] = popts[i].name;
	*names = v;
	return (NPOPTS);
}
