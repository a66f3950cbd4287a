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
	P_NOT_APPLICABLE	/* the milter front end, or nothing to do */
};

struct popt {
	const char	*name;
	const char	*values;	/* for the docs table */
	const char	*natguard;	/* key = value, for the docs table */
	enum pstatus	 status;
	const char	*why;		/* what natguard does instead */
	const char	*def;		/* policyd-spf's default; NULL: none */
};

static const struct popt popts[] = {
	{ "debugLevel", "-1 .. 5", "log_level = error .. debug", P_CARRIED,
	    NULL, "1" },
	{ "TestOnly", "0, 1", "0: spf_reject, spf_helo_reject, spf_defer, "
	    "spf_helo_defer and the restriction classes empty", P_CARRIED,
	    NULL, "1" },
	{ "defaultSeedOnly", "0, 1", "as TestOnly", P_CARRIED, NULL, NULL },
	{ "HELO_reject", "SPF_Not_Pass, Softfail, Fail, Null, False, "
	    "No_Check", "spf_helo_reject = fail softfail neutral, fail "
	    "softfail, fail; Null: spf_helo_null_sender_only = yes; False: "
	    "spf_helo_reject =, spf_helo_defer =; No_Check: spf_helo = no",
	    P_CARRIED, NULL, "Fail" },
	{ "Mail_From_reject", "SPF_Not_Pass, Softfail, Fail, False, No_Check",
	    "spf_reject, as HELO_reject; False: spf_reject =, spf_defer =; "
	    "No_Check: spf_mailfrom = no", P_CARRIED, NULL, "Fail" },
	{ "PermError_reject", "True, False", "permerror in spf_reject and "
	    "spf_helo_reject", P_CARRIED, NULL, "False" },
	{ "TempError_Defer", "True, False", "spf_defer, spf_helo_defer = "
	    "temperror, or empty", P_CARRIED, NULL, "False" },
	{ "skip_addresses", "networks", "skip_addresses, spf_trace_header = "
	    "yes", P_CARRIED, NULL, "127.0.0.0/8,::ffff:127.0.0.0/104,::1" },
	{ "Whitelist", "networks", "spf_whitelist", P_CARRIED, NULL, NULL },
	{ "Domain_Whitelist", "domains", "spf_domain_whitelist", P_CARRIED,
	    NULL, NULL },
	{ "Domain_Whitelist_PTR", "domains", "spf_ptr_whitelist", P_CARRIED,
	    NULL, NULL },
	{ "HELO_Whitelist", "host names", "spf_helo_whitelist", P_CARRIED,
	    NULL, NULL },
	{ "Header_Type", "SPF, AR, None", "spf_header = received-spf, "
	    "authentication-results, none", P_CARRIED, NULL, "SPF" },
	{ "Authserv_Id", "a name, HOSTNAME", "authserv_id", P_CARRIED, NULL,
	    "HOSTNAME" },
	{ "Lookup_Time", "seconds", "spf_timeout", P_CARRIED, NULL, "20" },
	{ "Whitelist_Lookup_Time", "seconds", "dns_timeout (each lookup)",
	    P_CARRIED, NULL, "10" },
	{ "Hide_Receiver", "Yes, No", "spf_header_receiver = host, "
	    "recipient-domain", P_CARRIED, NULL, "No" },
	{ "HELO_pass_restriction", "a restriction class",
	    "spf_helo_pass_restriction", P_CARRIED, NULL, NULL },
	{ "Mail_From_pass_restriction", "a restriction class",
	    "spf_pass_restriction", P_CARRIED, NULL, NULL },
	{ "No_Mail", "True, False", "spf_reject_no_mail_only", P_CARRIED,
	    NULL, "False" },
	{ "Reject_Not_Pass_Domains", "domains", "spf_require_pass_domains",
	    P_CARRIED, NULL, NULL },
	{ "Prospective", "an address", "spf_prospective", P_CARRIED, NULL,
	    NULL },
	{ "SPF_Enhanced_Status_Codes", "Yes, No", "spf_enhanced_status_codes",
	    P_CARRIED, NULL, "Yes" },
	{ "Reason_Message", "a template", "spf_reply_text", P_CARRIED, NULL,
	    "Message {rejectdefer} due to: {spf}. Please see {url}" },
	{ "Void_Limit", "a count", "spf_void_limit", P_CARRIED, NULL, "2" },
	{ "Per_User", "text,FILE", "Postfix's restriction classes, one "
	    "natguard each", P_NOT_APPLICABLE, "per-recipient settings are "
	    "Postfix's to choose: a check_recipient_access map sends each "
	    "recipient to a restriction class whose check_policy_service is "
	    "a natguard with that recipient's settings (natguard.conf(5), "
	    "MIGRATING)", NULL },
	{ "Mock", "True, False", "-", P_NOT_APPLICABLE, "a fixed answer for "
	    "testing the milter", "False" },
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
		if (strcmp(v, words[i]) == 0)
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
	struct addr	 a;
	uint64_t	 n;

	if ((strcmp(name, "HELO_pass_restriction") == 0 ||
	    strcmp(name, "Mail_From_pass_restriction") == 0) &&
	    (*v == '\0' || strspn(v, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(v)))
		return ("expected a Postfix restriction class name");
	if (strcmp(name, "Void_Limit") == 0 && parse_u64(v, 0, 20, &n) != 0)
		return ("expected a count of lookups from 0 to 20");
	if (strcmp(name, "Prospective") == 0 && addr_parse(v, &a) != 0)
		return ("expected an IP address");
	if (strcmp(name, "HELO_reject") == 0 && one_of(v, rej) < 0)
		return ("expected SPF_Not_Pass, Softfail, Fail, Null, False or "
		    "No_Check");
	if (strcmp(name, "Mail_From_reject") == 0 && (one_of(v, rej) < 0 ||
	    strcmp(v, "Null") == 0))
		return ("expected SPF_Not_Pass, Softfail, Fail, False or "
		    "No_Check");
	if ((strcmp(name, "PermError_reject") == 0 ||
	    strcmp(name, "TempError_Defer") == 0 ||
	    strcmp(name, "No_Mail") == 0 || strcmp(name, "Mock") == 0 ||
	    strcmp(name, "Hide_Receiver") == 0 ||
	    strcmp(name, "SPF_Enhanced_Status_Codes") == 0) &&
	    one_of(v, tf) < 0)
		return ("expected True or False, as written (policyd-spf "
		    "compares exactly: any other word is False to it)");
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
	    strcmp(name, "Whitelist_Lookup_Time") == 0) &&
	    parse_u64(v, 1, 3600, &n) != 0)
		return ("expected a whole number of seconds");
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

/*
 * policyd-spf compares these words exactly: "True" is true, "true" is
 * not (its _get_resultcodes() and main loop test == 'True', != 'No').
 */
static int
truth(const char *v)
{
	return (strcmp(v, "True") == 0);
}

/* The results a *_reject value rejects (Null: fail); NULL for none. */
static const char *
reject_set(const char *v)
{
	if (strcmp(v, "Fail") == 0 || strcmp(v, "Null") == 0)
		return ("fail");
	if (strcmp(v, "Softfail") == 0)
		return ("fail softfail");
	if (strcmp(v, "SPF_Not_Pass") == 0)
		return ("fail softfail neutral");
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

/*
 * One identity's sets, as policyd-spf's _get_resultcodes() makes them:
 * the *_reject value's results, permerror with PermError_reject and
 * temperror deferred with TempError_Defer, neither for False or No_Check
 * (a result natguard still evaluates, RFC 7208 2.4, only reported).
 */
static void
identity_sets(const struct pfile *pf, const char *v, int test,
    struct buf *reject, struct buf *defer)
{
	const char	*set = reject_set(v);

	if (test || strcmp(v, "False") == 0 || strcmp(v, "No_Check") == 0)
		return;
	if (set != NULL)
		buf_adds(reject, set);
	if (truth(val(pf, "PermError_reject")))
		buf_adds(reject, set != NULL ? " permerror" : "permerror");
	if (truth(val(pf, "TempError_Defer")))
		buf_adds(defer, "temperror");
}

/* The reject and defer keys, the identities checked, the classes. */
static void
emit_spf(struct buf *b, const struct pfile *pf)
{
	const char	*helo = val(pf, "HELO_reject");
	const char	*mf = val(pf, "Mail_From_reject");
	const char	*v;
	struct buf	 rej = { NULL, 0, 0 }, def = { NULL, 0, 0 };
	struct buf	 hrej = { NULL, 0, 0 }, hdef = { NULL, 0, 0 };
	int		 test = strcmp(val(pf, "TestOnly"), "0") == 0 ||
			    (pf->value[popt_find("defaultSeedOnly")] != NULL &&
			    strcmp(val(pf, "defaultSeedOnly"), "0") == 0);
	int		 hnc = strcmp(helo, "No_Check") == 0;
	int		 mnc = strcmp(mf, "No_Check") == 0;

	from(b, pf, "HELO_reject");
	from(b, pf, "Mail_From_reject");
	from(b, pf, "PermError_reject");
	from(b, pf, "TempError_Defer");
	from(b, pf, "TestOnly");
	if (test)
		buf_adds(b, "# TestOnly = 0: nothing is rejected or deferred "
		    "for SPF, headers only\n");
	if (hnc && mnc) {
		buf_adds(b, "# both No_Check: no identity is checked\n"
		    "spf = no\n");
		return;
	}
	identity_sets(pf, mf, test, &rej, &def);
	identity_sets(pf, helo, test, &hrej, &hdef);
	setting(b, "spf_reject", rej.s != NULL ? rej.s : "");
	setting(b, "spf_defer", def.s != NULL ? def.s : "");
	if (hnc)
		setting(b, "spf_helo", "no");
	else {
		setting(b, "spf_helo_reject", hrej.s != NULL ? hrej.s : "");
		setting(b, "spf_helo_defer", hdef.s != NULL ? hdef.s : "");
		if (strcmp(helo, "Null") == 0)
			setting(b, "spf_helo_null_sender_only", "yes");
	}
	if (mnc)
		setting(b, "spf_mailfrom", "no");
	buf_free(&rej);
	buf_free(&def);
	buf_free(&hrej);
	buf_free(&hdef);
	/* TestOnly = 0 answers a class DUNNO too: not carried then. */
	if (!test && (v = val(pf, "Mail_From_pass_restriction")) != NULL) {
		from(b, pf, "Mail_From_pass_restriction");
		setting(b, "spf_pass_restriction", v);
	}
	if (!test && (v = val(pf, "HELO_pass_restriction")) != NULL) {
		from(b, pf, "HELO_pass_restriction");
		setting(b, "spf_helo_pass_restriction", v);
	}
	if (truth(val(pf, "No_Mail"))) {
		from(b, pf, "No_Mail");
		setting(b, "spf_reject_no_mail_only", "yes");
	}
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

/* "key = VALUE" from an option whose value natguard takes as it is. */
static void
emit_value(struct buf *b, const struct pfile *pf, const char *name,
    const char *key, const char *suffix)
{
	const char	*v = pf->value[popt_find(name)];

	if (v == NULL)
		return;
	from(b, pf, name);
	buf_adds(b, key);
	buf_adds(b, " = ");
	buf_adds(b, v);
	buf_adds(b, suffix);
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
	emit_list(b, pf, "HELO_Whitelist", "spf_helo_whitelist");
	emit_list(b, pf, "Domain_Whitelist_PTR", "spf_ptr_whitelist");
	emit_list(b, pf, "Reject_Not_Pass_Domains", "spf_require_pass_domains");
	if (pf->value[popt_find("Whitelist_Lookup_Time")] != NULL) {
		from(b, pf, "Whitelist_Lookup_Time");
		buf_adds(b, "# natguard's whitelist lookups run beside the SPF "
		    "evaluation, each within\n# dns_timeout, all within "
		    "spf_timeout\n");
	}
	v = val(pf, "Header_Type");
	from(b, pf, "Header_Type");
	buf_adds(b, "spf_header = ");
	buf_adds(b, strcmp(v, "AR") == 0 ? "authentication-results" :
	    strcmp(v, "None") == 0 ? "none" : "received-spf");
	buf_adds(b, "\n");
	buf_adds(b, "# policyd-spf prepends X-Comment (or an "
	    "Authentication-Results none) for\n# skipped and whitelisted "
	    "clients\nspf_trace_header = yes\n");
	if ((v = val(pf, "Authserv_Id")) != NULL &&
	    strcmp(v, "HOSTNAME") != 0) {
		from(b, pf, "Authserv_Id");
		setting(b, "authserv_id", v);
	}
	from(b, pf, "Lookup_Time");
	buf_adds(b, "spf_timeout = ");
	buf_adds(b, val(pf, "Lookup_Time"));
	buf_adds(b, "s\n");
	/* Anything but Yes is No to policyd-spf (its default: No). */
	from(b, pf, "Hide_Receiver");
	setting(b, "spf_header_receiver", strcmp(val(pf, "Hide_Receiver"),
	    "Yes") == 0 ? "host" : "recipient-domain");
	if (strcmp(val(pf, "SPF_Enhanced_Status_Codes"), "No") == 0) {
		from(b, pf, "SPF_Enhanced_Status_Codes");
		setting(b, "spf_enhanced_status_codes", "no");
	}
	emit_value(b, pf, "Reason_Message", "spf_reply_text", "");
	emit_value(b, pf, "Void_Limit", "spf_void_limit", "");
	emit_value(b, pf, "Prospective", "spf_prospective", "");
	for (i = 0; i < NPOPTS; i++) {
		if (pf->value[i] == NULL || popts[i].status == P_CARRIED)
			continue;
		/* Set to what policyd-spf does anyway: nothing to carry. */
		if (popts[i].def != NULL &&
		    strcmp(pf->value[i], popts[i].def) == 0)
			continue;
		not_carried(nc, popts[i].name, pf->value[i], popts[i].why);
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
	emit_spf(&b, &pf);
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
