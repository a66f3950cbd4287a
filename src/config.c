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

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

/*
 * The configuration file, postconf-like: "name = value" lines, "#" comments,
 * a line that starts with white space continues the previous one.  Defaults
 * are strings run through the same setters as the file, so that `natguard
 * config` prints exactly what the daemon uses.
 */

#define CONFIG_MAX_SIZE	(1024 * 1024)

enum ktype {
	K_STRING,	/* free text, no control characters */
	K_ENDPOINTS,
	K_MODE,
	K_WORD,		/* one of a list of words, stored as its index */
	K_NETS,
	K_GATEWAYS,
	K_DURATION,
	K_RESULTS,
	K_DOMAINS,
	K_DNSSERVERS,
	K_COUNT,
	K_HOSTPORT,
	K_MYNETWORKS,	/* "postfix", "none" or networks */
	K_ADDR,		/* one address, or empty */
	K_CLASS		/* a Postfix restriction class name, or empty */
};

struct key {
	const char		*name;
	enum ktype		 type;
	const char		*def;
	size_t			 off;
	uint64_t		 min;	/* K_COUNT, K_DURATION */
	uint64_t		 max;
	const char *const	*words;	/* K_WORD, in enum order; K_RESULTS:
					   the key "$key" may refer to */
};

/* The words of K_WORD keys, in the order of the enums they set. */
_Static_assert(sizeof(enum log_level) == sizeof(int) &&
    sizeof(enum nat_action) == sizeof(int) &&
    sizeof(enum spf_header) == sizeof(int) &&
    sizeof(enum private_action) == sizeof(int) &&
    sizeof(enum spf_receiver) == sizeof(int), "K_WORD stores an int");
static const char *const w_log[] = { "syslog", "stderr", NULL };
static const char *const w_level[] = {
	"error", "warning", "notice", "info", "debug", NULL
};
static const char *const w_bool[] = { "no", "yes", NULL };
static const char *const w_nat[] = {
	"defer", "defer_if_permit", "warn", NULL
};
static const char *const w_private[] = {
	"defer_if_permit", "defer", "reject", NULL
};
static const char *const w_header[] = {
	"received-spf", "authentication-results", "none", NULL
};
static const char *const w_receiver[] = { "host", "recipient-domain", NULL };
static const char *const r_reject[] = { "spf_reject", NULL };
static const char *const r_defer[] = { "spf_defer", NULL };

#define OFF(f)	offsetof(struct config, f)
static const struct key keys[] = {
	{ "listen", K_ENDPOINTS, "inet:127.0.0.1:10041", OFF(listen), 0, 0, NULL },
	{ "unix_socket_mode", K_MODE, "0666", OFF(unix_socket_mode), 0, 0, NULL },
	{ "user", K_STRING, "", OFF(user), 0, 0, NULL },
	{ "pidfile", K_STRING, "", OFF(pidfile), 0, 0, NULL },
	{ "log", K_WORD, "syslog", OFF(log_stderr), 0, 0, w_log },
	{ "log_level", K_WORD, "info", OFF(log_level), 0, 0, w_level },
	{ "audit_log", K_STRING, "", OFF(audit_log), 0, 0, NULL },
	{ "gateways", K_GATEWAYS, "auto", OFF(gateways), 0, 0, NULL },
	{ "gateway_scan_interval", K_DURATION, "60s",
	    OFF(gateway_scan_interval), 1, 86400, NULL },
	{ "nat_action", K_WORD, "defer", OFF(nat_action), 0, 0, w_nat },
	{ "nat_reply", K_STRING, "4.3.5 Client address hidden by NAT on this "
	    "server; please try again later", OFF(nat_reply), 0, 0, NULL },
	{ "nat_spf_probe", K_WORD, "yes", OFF(nat_spf_probe), 0, 0, w_bool },
	{ "skip_addresses", K_NETS, "127.0.0.0/8, ::1", OFF(skip_addresses),
	    0, 0, NULL },
	{ "skip_authenticated", K_WORD, "yes", OFF(skip_authenticated), 0, 0,
	    w_bool },
	{ "spf", K_WORD, "yes", OFF(spf), 0, 0, w_bool },
	{ "spf_helo", K_WORD, "yes", OFF(spf_helo), 0, 0, w_bool },
	{ "spf_reject", K_RESULTS, "fail", OFF(spf_reject), 0, 0, NULL },
	{ "spf_defer", K_RESULTS, "temperror", OFF(spf_defer), 0, 0, NULL },
	{ "spf_mailfrom", K_WORD, "yes", OFF(spf_mailfrom), 0, 0, w_bool },
	{ "spf_helo_reject", K_RESULTS, "$spf_reject", OFF(spf_helo_reject_key),
	    0, 0, r_reject },
	{ "spf_helo_defer", K_RESULTS, "$spf_defer", OFF(spf_helo_defer_key),
	    0, 0, r_defer },
	{ "spf_helo_null_sender_only", K_WORD, "no",
	    OFF(spf_helo_null_sender_only), 0, 0, w_bool },
	{ "spf_require_pass_domains", K_DOMAINS, "",
	    OFF(spf_require_pass_domains), 0, 0, NULL },
	{ "spf_reject_no_mail_only", K_WORD, "no",
	    OFF(spf_reject_no_mail_only), 0, 0, w_bool },
	{ "spf_pass_restriction", K_CLASS, "", OFF(spf_pass_restriction), 0,
	    0, NULL },
	{ "spf_helo_pass_restriction", K_CLASS, "",
	    OFF(spf_helo_pass_restriction), 0, 0, NULL },
	{ "spf_enhanced_status_codes", K_WORD, "yes",
	    OFF(spf_enhanced_status_codes), 0, 0, w_bool },
	{ "spf_reply_text", K_STRING, "", OFF(spf_reply_text), 0, 0, NULL },
	{ "spf_header", K_WORD, "received-spf", OFF(spf_header), 0, 0,
	    w_header },
	{ "spf_header_receiver", K_WORD, "host", OFF(spf_header_receiver), 0,
	    0, w_receiver },
	{ "spf_trace_header", K_WORD, "no", OFF(spf_trace_header), 0, 0,
	    w_bool },
	{ "spf_void_limit", K_COUNT, "2", OFF(spf_void_limit), 0, 20, NULL },
	{ "spf_prospective", K_ADDR, "", OFF(spf_prospective), 0, 0, NULL },
	{ "authserv_id", K_STRING, "", OFF(authserv_id), 0, 0, NULL },
	{ "spf_whitelist", K_NETS, "", OFF(spf_whitelist), 0, 0, NULL },
	{ "spf_domain_whitelist", K_DOMAINS, "", OFF(spf_domain_whitelist),
	    0, 0, NULL },
	{ "spf_helo_whitelist", K_DOMAINS, "", OFF(spf_helo_whitelist), 0, 0,
	    NULL },
	{ "spf_ptr_whitelist", K_DOMAINS, "", OFF(spf_ptr_whitelist), 0, 0,
	    NULL },
	{ "dns_servers", K_DNSSERVERS, "", OFF(dns_servers), 0, 0, NULL },
	{ "dns_timeout", K_DURATION, "5s", OFF(dns_timeout), 1, 3600, NULL },
	{ "spf_timeout", K_DURATION, "20s", OFF(spf_timeout), 1, 3600, NULL },
	{ "dns_cache_size", K_COUNT, "10000", OFF(dns_cache_size), 0,
	    10000000, NULL },
	{ "max_connections", K_COUNT, "1000", OFF(max_connections), 1,
	    1000000, NULL },
	{ "idle_timeout", K_DURATION, "600s", OFF(idle_timeout), 1, 86400, NULL },
	{ "metrics_listen", K_HOSTPORT, "", OFF(metrics_listen), 0, 0, NULL },
	{ "mynetworks", K_MYNETWORKS, "postfix", OFF(mynetworks), 0, 0, NULL },
	{ "private_networks", K_NETS, "10.0.0.0/8, 172.16.0.0/12, "
	    "192.168.0.0/16, 100.64.0.0/10, 169.254.0.0/16, fc00::/7, "
	    "fe80::/10", OFF(private_networks), 0, 0, NULL },
	{ "private_spf_action", K_WORD, "defer_if_permit",
	    OFF(private_spf_action), 0, 0, w_private },
	{ "hider_learning", K_WORD, "yes", OFF(hider_learning), 0, 0, w_bool },
	/* HIDER_DOMAINS_MAX (learn.c) domains are kept an address. */
	{ "hider_threshold", K_COUNT, "3", OFF(hider_threshold), 2, 8, NULL },
	{ "hider_window", K_DURATION, "1h", OFF(hider_window), 60, 7 * 86400,
	    NULL },
	{ "hider_expiry", K_DURATION, "7d", OFF(hider_expiry), 3600,
	    365 * 86400, NULL },
	{ "state_dir", K_STRING, "/var/lib/natguard", OFF(state_dir), 0, 0,
	    NULL },
};
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

/*
 * What each key was set to, as text, and where (0: built-in default, -1:
 * the command line).
 */
struct config_text {
	char	*value[NKEYS];
	int	 line[NKEYS];
};

static const char *results_allowed_reject =
    "fail, softfail, neutral, none, permerror";

void
strlist_add(struct strlist *l, const char *s)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

void
strlist_clear(struct strlist *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int
strlist_contains(const struct strlist *l, const char *s)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], s) == 0)
			return (1);
	return (0);
}

/* A host name in l, or with subdomains a name in or under a domain of l. */
int
strlist_has_name(const struct strlist *l, const char *name, int subdomains)
{
	size_t	i, n, ln;

	if (name == NULL)
		return (0);
	n = strlen(name);
	for (i = 0; i < l->n; i++) {
		if (strcasecmp(name, l->v[i]) == 0)
			return (1);
		ln = strlen(l->v[i]);
		if (subdomains && n > ln && name[n - ln - 1] == '.' &&
		    strcasecmp(name + n - ln, l->v[i]) == 0)
			return (1);
	}
	return (0);
}

static const char *spf_result_names[SPF_R_COUNT] = {
	[SPF_R_NONE] = "none",
	[SPF_R_NEUTRAL] = "neutral",
	[SPF_R_PASS] = "pass",
	[SPF_R_FAIL] = "fail",
	[SPF_R_SOFTFAIL] = "softfail",
	[SPF_R_TEMPERROR] = "temperror",
	[SPF_R_PERMERROR] = "permerror",
};

const char *
spf_result_name(enum spf_result r)
{
	return (spf_result_names[r]);
}

static int
spf_result_parse(const char *s, enum spf_result *out)
{
	int	i;

	for (i = 0; i < SPF_R_COUNT; i++) {
		if (strcmp(s, spf_result_names[i]) == 0) {
			*out = i;
			return (0);
		}
	}
	return (-1);
}

const char *
nat_action_name(enum nat_action a)
{
	switch (a) {
	case NAT_DEFER:
		return ("defer");
	case NAT_DEFER_IF_PERMIT:
		return ("defer_if_permit");
	case NAT_WARN:
		return ("warn");
	}
	return ("?");
}

/* Split a list value on commas and white space, in place. */
static size_t
split_list(char *s, char **out, size_t max)
{
	size_t	 n = 0;
	char	*tok, *save;

	for (tok = strtok_r(s, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (n == max)
			return (max + 1);
		out[n++] = tok;
	}
	return (n);
}

static int
is_domain(const char *s)
{
	size_t	len = strlen(s), label = 0;

	if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-')
		return (0);
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return (0);
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return (0);
		if (++label > 63)
			return (0);
	}
	return (1);
}

/* IP, IP:PORT, [IPV6]:PORT or a bare IPv6 address. */
static int
dns_server_check(const char *s)
{
	char		 buf[INET6_ADDRSTRLEN + 16];
	struct addr	 a;
	char		*colon, *end;
	uint64_t	 port;

	if (strlen(s) >= sizeof(buf))
		return (-1);
	strcpy(buf, s);
	if (buf[0] == '[') {
		if ((end = strchr(buf, ']')) == NULL)
			return (-1);
		*end++ = '\0';
		if (*end != '\0' && (*end != ':' ||
		    parse_u64(end + 1, 1, 65535, &port) != 0))
			return (-1);
		return (addr_parse(buf + 1, &a) == 0 && a.family == AF_INET6 ?
		    0 : -1);
	}
	if (addr_parse(buf, &a) == 0)
		return (0);
	if ((colon = strrchr(buf, ':')) == NULL)
		return (-1);
	*colon = '\0';
	if (parse_u64(colon + 1, 1, 65535, &port) != 0)
		return (-1);
	return (addr_parse(buf, &a) == 0 && a.family == AF_INET ? 0 : -1);
}

/* HOST:PORT where HOST is an address, [IPV6] or a name. */
static int
hostport_check(const char *s)
{
	const char	*colon;
	uint64_t	 port;

	if ((colon = strrchr(s, ':')) == NULL || colon == s)
		return (-1);
	if (s[0] == '[' && colon[-1] != ']')
		return (-1);
	return (parse_u64(colon + 1, 1, 65535, &port));
}

static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return (1);
	return (0);
}

/* A K_WORD key: the index of the word, or "expected a, b or c". */
static char *
word_set(const struct key *k, const char *value, void *p)
{
	struct buf	b = { NULL, 0, 0 };
	int		i;

	for (i = 0; k->words[i] != NULL; i++) {
		if (strcmp(value, k->words[i]) == 0) {
			/* Every K_WORD field is an int or an int-sized enum. */
			*(int *)p = i;
			return (NULL);
		}
	}
	buf_add(&b, "\"", 1);
	buf_adds(&b, value);
	buf_adds(&b, "\": expected ");
	for (i = 0; k->words[i] != NULL; i++) {
		if (i > 0)
			buf_adds(&b, k->words[i + 1] == NULL ? " or " : ", ");
		buf_adds(&b, k->words[i]);
	}
	return (buf_take(&b));
}

/*
 * Set one key from its text.  On error, returns a message (allocated) that
 * says what is wrong with the value.
 */
static char *
config_set(struct config *cfg, const struct key *k, const char *value)
{
	void		*p = (char *)cfg + k->off;
	char		*copy, *items[1024], *err = NULL;
	const char	*why;
	struct net	 net;
	struct addr	 a;
	enum spf_result	 r;
	uint64_t	 v;
	size_t		 n, i;
	unsigned int	 set = 0;

	copy = xstrdup(value);
	n = split_list(copy, items, 1023);
	if (n > 1023) {
		xasprintf(&err, "too many list items");
		goto out;
	}

	switch (k->type) {
	case K_STRING:
		if (has_control(value)) {
			xasprintf(&err, "control characters in value");
			break;
		}
		free(*(char **)p);
		*(char **)p = xstrdup(value);
		break;
	case K_ENDPOINTS:
		if (n == 0) {
			xasprintf(&err, "at least one endpoint is needed");
			break;
		}
		for (i = 0; i < n; i++) {
			if (endpoint_check(items[i], &why) != 0) {
				xasprintf(&err, "\"%s\": %s", items[i], why);
				goto out;
			}
		}
		strlist_clear(p);
		for (i = 0; i < n; i++)
			strlist_add(p, items[i]);
		break;
	case K_MODE:
		if (strspn(value, "01234567") != strlen(value) ||
		    strlen(value) == 0 || strlen(value) > 4) {
			xasprintf(&err, "\"%s\" is not an octal mode", value);
			break;
		}
		*(unsigned int *)p = (unsigned int)strtoul(value, NULL, 8) &
		    0777;
		break;
	case K_WORD:
		err = word_set(k, value, p);
		break;
	case K_NETS:
	case K_GATEWAYS:
	case K_MYNETWORKS:
		if (k->type == K_GATEWAYS)
			cfg->gateways_auto = 0;
		if (k->type == K_MYNETWORKS)
			cfg->mynetworks_postfix = 0;
		netlist_free(*(struct netlist **)p);
		*(struct netlist **)p = netlist_new();
		for (i = 0; i < n; i++) {
			if (k->type == K_GATEWAYS &&
			    strcmp(items[i], "auto") == 0) {
				cfg->gateways_auto = 1;
				continue;
			}
			if (k->type == K_MYNETWORKS &&
			    strcmp(items[i], "postfix") == 0) {
				if (n != 1) {
					xasprintf(&err, "\"postfix\" cannot "
					    "be combined with other entries");
					goto out;
				}
				cfg->mynetworks_postfix = 1;
				continue;
			}
			if (k->type != K_NETS &&
			    strcmp(items[i], "none") == 0) {
				if (n != 1) {
					xasprintf(&err, "\"none\" cannot be "
					    "combined with other entries");
					goto out;
				}
				continue;
			}
			if (net_parse(items[i], &net, &why) != 0) {
				xasprintf(&err, "\"%s\": %s", items[i], why);
				goto out;
			}
			netlist_add(*(struct netlist **)p, &net);
		}
		break;
	case K_DURATION:
		if (parse_duration(value, &v) != 0 || v < k->min ||
		    v > k->max)
			xasprintf(&err, "\"%s\": expected a duration from "
			    "%llus to %llus (suffix s, m, h or d)", value,
			    (unsigned long long)k->min,
			    (unsigned long long)k->max);
		else
			*(uint64_t *)p = v;
		break;
	case K_COUNT:
		if (parse_u64(value, k->min, k->max, &v) != 0)
			xasprintf(&err, "\"%s\": expected a whole number from "
			    "%llu to %llu", value, (unsigned long long)k->min,
			    (unsigned long long)k->max);
		else
			*(uint64_t *)p = v;
		break;
	case K_RESULTS:
		/* "$spf_reject": the other key's value, as postconf writes. */
		if (k->words != NULL && n == 1 && items[0][0] == '$') {
			if (strcmp(items[0] + 1, k->words[0]) != 0) {
				xasprintf(&err, "\"%s\": the only reference "
				    "allowed is $%s", items[0], k->words[0]);
				goto out;
			}
			*(unsigned int *)p = SPF_SET_FOLLOWS;
			break;
		}
		for (i = 0; i < n; i++) {
			if (spf_result_parse(items[i], &r) != 0 ||
			    r == SPF_R_PASS) {
				xasprintf(&err, "\"%s\": expected a list of %s "
				    "or temperror", items[i],
				    results_allowed_reject);
				goto out;
			}
			set |= 1U << r;
		}
		*(unsigned int *)p = set;
		break;
	case K_DOMAINS:
	case K_DNSSERVERS:
		for (i = 0; i < n; i++) {
			if (k->type == K_DOMAINS && !is_domain(items[i])) {
				xasprintf(&err, "\"%s\" is not a domain name",
				    items[i]);
				goto out;
			}
			if (k->type == K_DNSSERVERS &&
			    dns_server_check(items[i]) != 0) {
				xasprintf(&err, "\"%s\": expected IP, IP:PORT "
				    "or [IPV6]:PORT", items[i]);
				goto out;
			}
		}
		strlist_clear(p);
		for (i = 0; i < n; i++)
			strlist_add(p, items[i]);
		break;
	case K_ADDR:
		if (value[0] != '\0' && addr_parse(value, &a) != 0) {
			xasprintf(&err, "\"%s\" is not an IP address", value);
			break;
		}
		free(*(char **)p);
		*(char **)p = xstrdup(value);
		break;
	case K_CLASS:
		/* smtpd_restriction_classes names: letters, digits, _ and -. */
		if (strspn(value, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(value)) {
			xasprintf(&err, "\"%s\" is not a Postfix restriction "
			    "class name", value);
			break;
		}
		free(*(char **)p);
		*(char **)p = xstrdup(value);
		break;
	case K_HOSTPORT:
		if (value[0] != '\0' && hostport_check(value) != 0) {
			xasprintf(&err, "\"%s\": expected HOST:PORT", value);
			break;
		}
		free(*(char **)p);
		*(char **)p = xstrdup(value);
		break;
	}
out:
	free(copy);
	return (err);
}

/* Defaults that depend on the machine, not the file. */
static void
config_finish(struct config *cfg)
{
	char	host[256];
	size_t	i;

	cfg->spf_helo_reject = cfg->spf_helo_reject_key == SPF_SET_FOLLOWS ?
	    cfg->spf_reject : cfg->spf_helo_reject_key;
	cfg->spf_helo_defer = cfg->spf_helo_defer_key == SPF_SET_FOLLOWS ?
	    cfg->spf_defer : cfg->spf_helo_defer_key;
	if (cfg->authserv_id[0] != '\0')
		return;
	if (gethostname(host, sizeof(host) - 1) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	free(cfg->authserv_id);
	cfg->authserv_id = xstrdup(host);
	for (i = 0; i < NKEYS; i++) {
		if (keys[i].off == OFF(authserv_id)) {
			free(cfg->text->value[i]);
			cfg->text->value[i] = xstrdup(host);
		}
	}
}

struct config *
config_new(void)
{
	struct config	*cfg;
	char		*err;
	size_t		 i;

	cfg = xcalloc(1, sizeof(*cfg));
	cfg->text = xcalloc(1, sizeof(struct config_text));
	for (i = 0; i < NKEYS; i++) {
		if ((err = config_set(cfg, &keys[i], keys[i].def)) != NULL)
			fatalx("default of %s: %s", keys[i].name, err);
		cfg->text->value[i] = xstrdup(keys[i].def);
	}
	config_finish(cfg);
	return (cfg);
}

void
config_free(struct config *cfg)
{
	size_t	i;

	if (cfg == NULL)
		return;
	for (i = 0; i < NKEYS; i++) {
		switch (keys[i].type) {
		case K_STRING:
		case K_HOSTPORT:
		case K_ADDR:
		case K_CLASS:
			free(*(char **)((char *)cfg + keys[i].off));
			break;
		case K_ENDPOINTS:
		case K_DOMAINS:
		case K_DNSSERVERS:
			strlist_clear((void *)((char *)cfg + keys[i].off));
			break;
		case K_NETS:
		case K_GATEWAYS:
		case K_MYNETWORKS:
			netlist_free(*(struct netlist **)((char *)cfg +
			    keys[i].off));
			break;
		default:
			break;
		}
		free(cfg->text->value[i]);
	}
	free(cfg->text);
	free(cfg->file);
	free(cfg->mynetworks_warning);
	free(cfg);
}

/* Levenshtein distance, for "did you mean". Key names are short. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b), i, j;
	size_t	row[64], prev, tmp, best;

	if (la >= 64 || lb >= 64)
		return (SIZE_MAX);
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = tmp;
		}
	}
	return (row[lb]);
}

static const struct key *
key_find(const char *name, size_t *idx)
{
	size_t	i;

	for (i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].name, name) == 0) {
			*idx = i;
			return (&keys[i]);
		}
	}
	return (NULL);
}

static const char *
key_near(const char *name)
{
	size_t	i, d, best = SIZE_MAX, limit;
	const char *near = NULL;

	limit = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;
	for (i = 0; i < NKEYS; i++) {
		d = edit_distance(name, keys[i].name);
		if (d < best) {
			best = d;
			near = keys[i].name;
		}
	}
	if (best <= limit)
		return (near);
	/* "spf_header_style" for "spf_header": a word too many. */
	near = NULL;
	for (i = 0; i < NKEYS; i++)
		if (strncmp(name, keys[i].name, strlen(keys[i].name)) == 0 &&
		    (near == NULL || strlen(keys[i].name) > strlen(near)))
			near = keys[i].name;
	return (near);
}

static void
trim(char **s, size_t *len)
{
	while (*len > 0 && isspace((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/*
 * "#" at the start of a line, or after white space, starts a comment;
 * a "#" inside a word (a URL fragment, say) does not.
 */
static size_t
strip_comment(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (s[i] == '#' && (i == 0 || isspace((unsigned char)s[i - 1])))
			return (i);
	return (len);
}

/* One logical line: "name = value". */
static char *
config_line(struct config *cfg, char *text, int line)
{
	const struct key *k;
	const char	*near;
	char		*eq, *name, *value, *err;
	size_t		 nlen, vlen, idx;

	if ((eq = strchr(text, '=')) == NULL) {
		xasprintf(&err, "expected \"name = value\", got \"%.40s\"",
		    text);
		return (err);
	}
	name = text;
	nlen = eq - text;
	trim(&name, &nlen);
	name[nlen] = '\0';
	value = eq + 1;
	vlen = strlen(value);
	trim(&value, &vlen);
	value[vlen] = '\0';
	if (nlen == 0) {
		xasprintf(&err, "missing key name before \"=\"");
		return (err);
	}
	if ((k = key_find(name, &idx)) == NULL) {
		if ((near = key_near(name)) != NULL)
			xasprintf(&err, "unknown key \"%s\" (did you mean "
			    "\"%s\"?)", name, near);
		else
			xasprintf(&err, "unknown key \"%s\"", name);
		return (err);
	}
	if (cfg->text->line[idx] != 0) {
		xasprintf(&err, "%s: duplicate key (first set on line %d)",
		    name, cfg->text->line[idx]);
		return (err);
	}
	if ((err = config_set(cfg, k, value)) != NULL) {
		char	*full;

		xasprintf(&full, "%s: %s", name, err);
		free(err);
		return (full);
	}
	cfg->text->line[idx] = line;
	free(cfg->text->value[idx]);
	cfg->text->value[idx] = xstrdup(value);
	return (NULL);
}

/* Keys that only make sense together. */
static char *
config_cross_check(struct config *cfg)
{
	char	*err;

	if (cfg->spf_reject & cfg->spf_defer) {
		xasprintf(&err, "spf_defer: a result is in both spf_reject "
		    "and spf_defer");
		return (err);
	}
	if ((cfg->spf_helo_reject_key == SPF_SET_FOLLOWS ? cfg->spf_reject :
	    cfg->spf_helo_reject_key) & (cfg->spf_helo_defer_key ==
	    SPF_SET_FOLLOWS ? cfg->spf_defer : cfg->spf_helo_defer_key)) {
		xasprintf(&err, "spf_helo_defer: a result is in both "
		    "spf_helo_reject and spf_helo_defer");
		return (err);
	}
	if (!cfg->spf_mailfrom && !cfg->spf_helo) {
		xasprintf(&err, "spf_mailfrom: with spf_helo = no too, no "
		    "identity is checked (spf = no says that)");
		return (err);
	}
	return (NULL);
}

/* Flush a finished logical line. */
static char *
config_flush(struct config *cfg, char **logical, int line)
{
	char	*err;

	if (*logical == NULL)
		return (NULL);
	err = config_line(cfg, *logical, line);
	free(*logical);
	*logical = NULL;
	return (err);
}

/*
 * Parse a whole file's text; "label" names it in messages.  On error returns
 * NULL and *errp is "FILE:LINE: KEY: what is wrong".
 */
struct config *
config_parse(const char *label, const char *text, size_t len, char **errp)
{
	struct config	*cfg;
	char		*logical = NULL, *err = NULL, *t;
	const char	*p = text, *end = text + len, *nl;
	size_t		 llen, tl, loglen = 0;
	int		 line = 0, start = 0, errline = 0;

	cfg = config_new();
	free(cfg->file);
	cfg->file = xstrdup(label);
	*errp = NULL;
	for (; p < end && err == NULL; p = nl + 1) {
		nl = memchr(p, '\n', end - p);
		llen = (nl != NULL ? nl : end) - p;
		line++;
		errline = line;
		if (memchr(p, '\0', llen) != NULL) {
			xasprintf(&err, "NUL byte in line");
			break;
		}
		t = (char *)p;
		tl = strip_comment(p, llen);
		trim(&t, &tl);
		if (tl == 0) {
			/* Blank or comment: continuation goes on past it. */
		} else if (isspace((unsigned char)p[0])) {
			if (logical == NULL) {
				xasprintf(&err, "continuation line without a "
				    "preceding \"name = value\" line");
				break;
			}
			logical = xreallocarray(logical, loglen + tl + 2, 1);
			logical[loglen++] = ' ';
			memcpy(logical + loglen, t, tl);
			loglen += tl;
			logical[loglen] = '\0';
		} else {
			errline = start;
			if ((err = config_flush(cfg, &logical, start)) != NULL)
				break;
			logical = xstrndup(t, tl);
			loglen = tl;
			start = line;
		}
		if (nl == NULL)
			break;
	}
	if (err == NULL) {
		errline = start;
		err = config_flush(cfg, &logical, start);
	}
	free(logical);
	if (err == NULL) {
		errline = line;
		err = config_cross_check(cfg);
	}
	if (err != NULL) {
		xasprintf(errp, "%s:%d: %s", label, errline, err);
		free(err);
		config_free(cfg);
		return (NULL);
	}
	config_finish(cfg);
	return (cfg);
}

/*
 * Read and parse a file (or /dev/null, a pipe: anything that reads).  On
 * error returns NULL and *errp says why.
 */
struct config *
config_load(const char *path, char **errp)
{
	struct config	*cfg;
	char		*buf;
	size_t		 got = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		xasprintf(errp, "%s: %s", path, strerror(errno));
		return (NULL);
	}
	buf = xmalloc(CONFIG_MAX_SIZE + 1);
	for (;;) {
		n = read(fd, buf + got, CONFIG_MAX_SIZE + 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got > CONFIG_MAX_SIZE)
			break;
	}
	close(fd);
	if (n == -1 || got > CONFIG_MAX_SIZE) {
		xasprintf(errp, "%s: %s", path, n == -1 ? strerror(errno) :
		    "larger than 1 MiB");
		free(buf);
		return (NULL);
	}
	cfg = config_parse(path, buf, got, errp);
	free(buf);
	return (cfg);
}

/* Set a key from the command line (-l): as in a file, but no duplicates. */
int
config_override(struct config *cfg, const char *name, const char *value,
    char **errp)
{
	const struct key	*k;
	size_t			 idx;
	char			*err;

	if ((k = key_find(name, &idx)) == NULL)
		fatalx("config_override: %s", name);
	if ((err = config_set(cfg, k, value)) != NULL) {
		xasprintf(errp, "%s: %s", name, err);
		free(err);
		return (-1);
	}
	free(cfg->text->value[idx]);
	cfg->text->value[idx] = xstrdup(value);
	cfg->text->line[idx] = -1;
	return (0);
}

/* Whether the file or the command line set a key: it was chosen. */
int
config_key_set(const struct config *cfg, const char *name)
{
	size_t	idx;

	if (key_find(name, &idx) == NULL)
		fatalx("config_key_set: %s", name);
	return (cfg->text->line[idx] != 0);
}

/* Every key and its effective value, like postconf. */
void
config_print(const struct config *cfg, FILE *f)
{
	size_t	i;

	for (i = 0; i < NKEYS; i++)
		fprintf(f, "%s = %s\n", keys[i].name, cfg->text->value[i]);
}
