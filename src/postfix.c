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

#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

/*
 * Postfix's settings as natguard needs them, read with the real postconf
 * (so that main.cf's syntax, $name expansion and defaults are Postfix's
 * own): a NAT gateway inside mynetworks, natguard's place in the
 * restrictions, and the policy timeout against spf_timeout.
 */

#define PF_NPARAMS	7
static const char *const pf_params[PF_NPARAMS] = {
	"mynetworks", "smtpd_recipient_restrictions",
	"smtpd_relay_restrictions", "smtpd_policy_service_timeout",
	"queue_directory", "smtpd_upstream_proxy_protocol",
	"postscreen_upstream_proxy_protocol"
};

/* Postfix's list separators: comma and white space. */
#define PF_SEP	", \t\r\n"

/* A list's words; braces of { inet:..., attr=value } become words too. */
static size_t
split(const char *s, char ***out)
{
	char	*copy, *w, *save = NULL, **v = NULL;
	size_t	 n = 0;

	copy = xstrdup(s != NULL ? s : "");
	for (w = strtok_r(copy, PF_SEP, &save); w != NULL;
	    w = strtok_r(NULL, PF_SEP, &save)) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrdup(w);
	}
	free(copy);
	*out = v;
	return (n);
}

static void
split_free(char **v, size_t n)
{
	while (n > 0)
		free(v[--n]);
	free(v);
}

/* Two networks overlap when one holds the other's first address. */
static int
overlaps(const struct net *a, const struct net *b)
{
	struct netlist	*la = netlist_new(), *lb = netlist_new();
	int		 r;

	netlist_add(la, a);
	netlist_add(lb, b);
	r = netlist_find(la, &b->addr) >= 0 || netlist_find(lb, &a->addr) >= 0;
	netlist_free(la);
	netlist_free(lb);
	return (r);
}

/*
 * A gateway inside mynetworks: every client the proxy carries is then
 * "local", and permit_mynetworks relays for it.  type:table and /file
 * entries are named as not read.
 */
static void
judge_mynetworks(struct doctor *d, const struct gwset *gs, const char *mn)
{
	char			**v, a[INET6_ADDRSTRLEN + 8];
	char			  m[INET6_ADDRSTRLEN + 8];
	const struct gateway	*gw;
	const char		*why;
	struct net		*nets, net;
	struct buf		 skipped = { NULL, 0, 0 };
	size_t			 n, i, j, nn = 0;

	n = split(mn, &v);
	nets = xcalloc(n + 1, sizeof(*nets));
	for (i = 0; i < n; i++) {
		if (net_parse(v[i], &net, &why) == 0)
			nets[nn++] = net;
		else {
			buf_adds(&skipped, skipped.len ? " " : "; not read: ");
			buf_adds(&skipped, v[i]);
		}
	}
	for (i = 0; i < gwset_count(gs); i++) {
		gw = gwset_get(gs, i);
		for (j = 0; j < nn && !overlaps(&gw->net, &nets[j]); j++)
			;
		if (j == nn)
			continue;
		net_format(&gw->net, a, sizeof(a));
		net_format(&nets[j], m, sizeof(m));
		doctor_add(d, DS_FAIL, "postfix-mynetworks", "take the Docker "
		    "networks out of mynetworks (docker-mailserver: "
		    "PERMIT_DOCKER=none), and keep natguard before "
		    "permit_mynetworks", "mynetworks entry %s contains the "
		    "gateway %s (%s): every client that Docker's proxy "
		    "carries in counts as local, and Postfix relays for it",
		    m, a, gw_source_name(gw->source));
		goto out;
	}
	doctor_add(d, DS_OK, "postfix-mynetworks", NULL, "no gateway in "
	    "mynetworks (%s)%s", mn, skipped.len ? skipped.s : "");
out:
	buf_free(&skipped);
	free(nets);
	split_free(v, n);
}

/* Postfix's "inet:localhost:10041" is natguard's "inet:127.0.0.1:10041". */
static int
same_endpoint(const char *pf, const char *ng, const char *queue_dir)
{
	char		 full[4096];
	const char	*p;
	static const char *const local[] = { "localhost", "127.0.0.1",
	    "[::1]", NULL };
	size_t		 i, hl;

	if (strcmp(pf, ng) == 0)
		return (1);
	if (strncmp(pf, "unix:", 5) == 0 && strncmp(ng, "unix:", 5) == 0 &&
	    pf[5] != '/' && queue_dir != NULL) {
		/* Postfix's relative unix: paths are in queue_directory. */
		snprintf(full, sizeof(full), "%s/%s", queue_dir, pf + 5);
		return (strcmp(full, ng + 5) == 0);
	}
	if (strncmp(pf, "inet:", 5) != 0 || strncmp(ng, "inet:", 5) != 0)
		return (0);
	if ((p = strrchr(pf, ':')) == NULL || strcmp(p, strrchr(ng, ':')) != 0)
		return (0);
	hl = (size_t)(p - (pf + 5));
	for (i = 0; local[i] != NULL; i++) {
		if (strlen(local[i]) == hl &&
		    strncmp(pf + 5, local[i], hl) == 0)
			break;
	}
	if (local[i] == NULL)
		return (0);
	for (i = 0; local[i] != NULL; i++) {
		if (strncmp(ng + 5, local[i], strlen(local[i])) == 0 &&
		    ng[5 + strlen(local[i])] == ':')
			return (1);
	}
	return (0);
}

/* Where natguard and permit_mynetworks stand in one restriction list. */
static int
find_policy(const struct config *cfg, char **v, size_t n,
    const char *queue_dir, size_t *at, size_t *mynet, char **other)
{
	size_t	i, j, k;
	int	found = 0;

	*mynet = n;
	*other = NULL;
	for (i = 0; i < n; i++) {
		if (strcmp(v[i], "permit_mynetworks") == 0 && *mynet == n)
			*mynet = i;
		if (strcmp(v[i], "check_policy_service") != 0 || i + 1 == n)
			continue;
		j = i + 1;
		if (strcmp(v[j], "{") == 0 && j + 1 < n)
			j++;
		for (k = 0; k < cfg->listen.n && !found; k++) {
			if (same_endpoint(v[j], cfg->listen.v[k], queue_dir)) {
				*at = i;
				found = 1;
			}
		}
		if (!found && *other == NULL)
			*other = v[j];
	}
	return (found);
}

static void
judge_restrictions(struct doctor *d, const struct config *cfg,
    const struct pf_settings *pf, int gw_in_mynetworks)
{
	char		**v, *other, *seen = NULL;
	const char	 *list = "smtpd_recipient_restrictions";
	size_t		  n, at = 0, mynet;
	int		  found;

	n = split(pf->recipient_restrictions, &v);
	found = find_policy(cfg, v, n, pf->queue_directory, &at, &mynet,
	    &other);
	if (!found) {
		/* Not there: perhaps in the relay restrictions. */
		seen = other != NULL ? xstrdup(other) : NULL;
		split_free(v, n);
		list = "smtpd_relay_restrictions";
		n = split(pf->relay_restrictions, &v);
		found = find_policy(cfg, v, n, pf->queue_directory, &at,
		    &mynet, &other);
		if (seen == NULL && other != NULL)
			seen = xstrdup(other);
	}
	if (!found) {
		doctor_add(d, DS_FAIL, "postfix-policy", "add check_policy_"
		    "service with natguard's listen endpoint to "
		    "smtpd_recipient_restrictions, before permit_mynetworks "
		    "(conf/postfix/main.cf.natguard)", "Postfix does not ask "
		    "natguard (listen = %s)%s%s", cfg->listen.n ?
		    cfg->listen.v[0] : "", seen ? "; it asks a policy "
		    "service at " : "", seen ? seen : "");
	} else if (mynet < at) {
		doctor_add(d, gw_in_mynetworks ? DS_FAIL : DS_WARN,
		    "postfix-policy", "move check_policy_service before "
		    "permit_mynetworks", "natguard is in %s but after "
		    "permit_mynetworks: %s", list, gw_in_mynetworks ?
		    "a gateway in mynetworks is let through (and relayed for) "
		    "before natguard is asked" : "a gateway ever added to "
		    "mynetworks would be let through before natguard is asked");
	} else
		doctor_add(d, DS_OK, "postfix-policy", NULL, "natguard is in "
		    "%s (%s %s)%s", list, v[at], v[at + 1], mynet < n ?
		    ", before permit_mynetworks" : "");
	free(seen);
	split_free(v, n);
}

static void
judge_timeout(struct doctor *d, const struct config *cfg, const char *t)
{
	uint64_t	secs;

	if (parse_duration(t, &secs) != 0) {
		doctor_add(d, DS_WARN, "postfix-policy-timeout", "give "
		    "smtpd_policy_service_timeout as a number of seconds "
		    "(100s)", "smtpd_policy_service_timeout = %s is not "
		    "understood", t);
	} else if (secs <= cfg->spf_timeout) {
		doctor_add(d, DS_WARN, "postfix-policy-timeout", "set "
		    "smtpd_policy_service_timeout longer than spf_timeout "
		    "(100s is Postfix's default)", "smtpd_policy_service_"
		    "timeout = %s is not longer than natguard's spf_timeout "
		    "(%llus): on a slow DNS zone Postfix gives up first and "
		    "answers \"451 4.3.5 Server configuration problem\"", t,
		    (unsigned long long)cfg->spf_timeout);
	} else
		doctor_add(d, DS_OK, "postfix-policy-timeout", NULL,
		    "smtpd_policy_service_timeout = %s, longer than "
		    "spf_timeout (%llus)", t,
		    (unsigned long long)cfg->spf_timeout);
}

/* The checks, on settings already read: pure, for the tests. */
void
postfix_judge(struct doctor *d, const struct config *cfg,
    const struct gwset *gs, const struct pf_settings *pf)
{
	judge_mynetworks(d, gs, pf->mynetworks);
	judge_restrictions(d, cfg, pf, doctor_find(d, "postfix-mynetworks",
	    NULL) == DS_FAIL);
	judge_timeout(d, cfg, pf->policy_timeout);
}

static const char *
postconf_path(void)
{
	static const char *const paths[] = { "/usr/sbin/postconf",
	    "/usr/local/sbin/postconf", "/sbin/postconf", NULL };
	size_t	i;

	for (i = 0; paths[i] != NULL; i++) {
		if (access(paths[i], X_OK) == 0)
			return (paths[i]);
	}
	return (NULL);
}

/*
 * Run postconf -h for our parameters: one value per line, in order.
 * Returns its output, or NULL and *err.
 */
static char *
run_postconf_mode(const char *prog, const char *dir, const char *mode,
    const char *const *params, size_t nparams, char **err)
{
	const char	*argv[4 + PF_NPARAMS + 1];
	struct buf	 out = { NULL, 0, 0 };
	char		 chunk[4096];
	ssize_t		 n;
	size_t		 i, ac = 0;
	pid_t		 pid;
	int		 fds[2], status;

	argv[ac++] = prog;
	if (dir != NULL) {
		argv[ac++] = "-c";
		argv[ac++] = dir;
	}
	argv[ac++] = mode;
	for (i = 0; i < nparams && i < PF_NPARAMS; i++)
		argv[ac++] = params[i];
	argv[ac] = NULL;
	if (pipe2(fds, O_CLOEXEC) == -1)
		fatal("pipe2");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		/* postconf's complaints go with ours, on standard error. */
		if (dup2(fds[1], STDOUT_FILENO) == -1)
			_exit(127);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], chunk, sizeof(chunk))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		buf_add(&out, chunk, (size_t)n);
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		xasprintf(err, "%s%s%s failed (exit %d)", prog,
		    dir ? " -c " : "", dir ? dir : "",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		buf_free(&out);
		return (NULL);
	}
	return (out.s != NULL ? buf_take(&out) : xstrdup(""));
}

static char *
run_postconf(const char *prog, const char *dir, const char *const *params,
    size_t nparams, char **err)
{
	return (run_postconf_mode(prog, dir, "-xh", params, nparams, err));
}

/* Is a learned hider of kind tcp-proxy in the set?  Its address in a. */
static int
proxy_hider(const struct gwset *gs, char *a, size_t len)
{
	const struct gateway	*gw;
	size_t			 i;

	for (i = 0; i < gwset_count(gs); i++) {
		gw = gwset_get(gs, i);
		if (gw->source == GW_TRAFFIC &&
		    hider_kind_of(gs, gw) == HK_PROXY) {
			addr_format(&gw->net.addr, a, len);
			return (1);
		}
	}
	return (0);
}

/* The value of PARAM for master.cf's SERVICE/inet, -o or main.cf's. */
static const char *
service_param(const struct pf_proxy *px, const char *service,
    const char *param, const char *maincf, char *buf, size_t len)
{
	const char	*p, *nl;
	char		 key[128];
	size_t		 n;

	n = (size_t)snprintf(key, sizeof(key), "%s/inet/%s = ", service,
	    param);
	for (p = px->overrides; p != NULL && *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (strncmp(p, key, n) == 0) {
			snprintf(buf, len, "%.*s", (int)((nl ? nl : p +
			    strlen(p)) - p - n), p + n);
			return (buf);
		}
		if (nl == NULL)
			break;
	}
	return (maincf != NULL ? maincf : "");
}

/* The master.cf inet service on port 25 ("smtp"), and its program. */
static int
postscreen_on_25(const struct pf_proxy *px)
{
	const char	*p, *nl;
	char		 svc[64], type[16], cmd[64], f[5][16];

	for (p = px->master; p != NULL && *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (sscanf(p, "%63s %15s %15s %15s %15s %15s %15s %63s", svc,
		    type, f[0], f[1], f[2], f[3], f[4], cmd) == 8 &&
		    strcmp(type, "inet") == 0 && (strcmp(svc, "smtp") == 0 ||
		    strcmp(svc, "25") == 0 || (strlen(svc) > 3 &&
		    strcmp(svc + strlen(svc) - 3, ":25") == 0) ||
		    (strlen(svc) > 5 && strcmp(svc + strlen(svc) - 5,
		    ":smtp") == 0)))
			return (strcmp(cmd, "postscreen") == 0);
		if (nl == NULL)
			break;
	}
	return (0);
}

/*
 * PROXY protocol, Postfix's side: the service on port 25 expects it
 * (smtpd_upstream_proxy_protocol, or postscreen_upstream_proxy_protocol
 * where postscreen listens), against what traffic showed (a learned
 * tcp-proxy hider).  Half of the fix, either end, is said.  Pure.
 */
void
postfix_judge_proxy(struct doctor *d, const struct gwset *gs,
    const struct pf_proxy *px)
{
	const char	*name = "postfix-proxy-protocol", *v;
	char		 a[INET6_ADDRSTRLEN], buf[64];
	int		 screen = postscreen_on_25(px), on, hider;

	hider = proxy_hider(gs, a, sizeof(a));
	v = service_param(px, "smtp", screen ? "postscreen_upstream_proxy_"
	    "protocol" : "smtpd_upstream_proxy_protocol", screen ?
	    px->postscreen : px->smtpd, buf, sizeof(buf));
	on = strcmp(v, "haproxy") == 0;
	if (screen && px->smtpd != NULL && strcmp(px->smtpd, "haproxy") ==
	    0 && !on) {
		doctor_add(d, DS_WARN, name, "set postscreen_upstream_proxy_"
		    "protocol = haproxy, and smtpd_upstream_proxy_protocol "
		    "only with -o on a service the proxy connects to",
		    "half done: postscreen listens on port 25 and does not "
		    "expect PROXY protocol, while smtpd_upstream_proxy_"
		    "protocol = haproxy in main.cf makes the smtpd behind "
		    "postscreen (and submission) expect it");
		return;
	}
	if (on && hider)
		doctor_add(d, DS_WARN, name, "make the proxy send PROXY "
		    "protocol to this port (HAProxy \"send-proxy\", Traefik "
		    "\"proxyProtocol\", nginx \"proxy_protocol on\"), then "
		    "natguard gateways --forget the proxy's address",
		    "half done: %s expects PROXY protocol (%s = haproxy) on "
		    "port 25, yet natguard learned the proxy %s from traffic "
		    "(from before the change, or the proxy does not send it, "
		    "and Postfix then drops its connections)", screen ?
		    "postscreen" : "smtpd", screen ? "postscreen_upstream_"
		    "proxy_protocol" : "smtpd_upstream_proxy_protocol", a);
	else if (hider)
		doctor_add(d, DS_WARN, name, hider_kind_row(HK_PROXY)->fix,
		    "the proxy %s hides the real clients (learned from "
		    "traffic) and Postfix does not expect PROXY protocol on "
		    "port 25 (%s is empty): both ends need it", a, screen ?
		    "postscreen_upstream_proxy_protocol" :
		    "smtpd_upstream_proxy_protocol");
	else if (on)
		doctor_add(d, DS_OK, name, NULL, "%s expects PROXY protocol "
		    "on port 25: the proxy in front must send it (HAProxy "
		    "\"send-proxy\"), or Postfix drops its connections",
		    screen ? "postscreen" : "smtpd");
	else
		doctor_add(d, DS_OK, name, NULL, "no PROXY protocol on port "
		    "25, and no proxy learned from traffic");
}

/* Postfix's checks; dir is a config directory (postconf -c), or NULL. */
void
postfix_doctor(struct doctor *d, const struct config *cfg,
    const struct gwset *gs, const char *dir)
{
	struct pf_settings	 pf;
	struct pf_proxy		 px;
	const char		*prog, *val[PF_NPARAMS];
	char			*out, *err, *p, *nl, *master, *overrides;
	size_t			 i;

	if ((prog = postconf_path()) == NULL) {
		doctor_add(d, dir != NULL ? DS_FAIL : DS_OK, "postfix",
		    "install Postfix or run doctor where it runs",
		    "postconf not found: Postfix's settings not checked");
		return;
	}
	if ((out = run_postconf(prog, dir, pf_params, PF_NPARAMS, &err)) ==
	    NULL) {
		/*
		 * Postfix installed but not set up here (no main.cf: Debian's
		 * "No configuration") is no fault of a Docker host's; a
		 * directory the administrator named is.
		 */
		doctor_add(d, dir != NULL ? DS_FAIL : DS_WARN, "postfix",
		    "see postconf's message above; run doctor where Postfix "
		    "runs, or give --postfix-dir DIR", "%s: Postfix's settings "
		    "not checked", err);
		free(err);
		return;
	}
	p = out;
	for (i = 0; i < PF_NPARAMS; i++) {
		val[i] = p;
		if ((nl = strchr(p, '\n')) != NULL) {
			*nl = '\0';
			p = nl + 1;
		} else
			p += strlen(p);
	}
	doctor_add(d, DS_OK, "postfix", NULL, "read Postfix's settings with "
	    "%s%s%s", prog, dir ? " -c " : "", dir ? dir : "");
	pf.mynetworks = val[0];
	pf.recipient_restrictions = val[1];
	pf.relay_restrictions = val[2];
	pf.policy_timeout = val[3];
	pf.queue_directory = val[4];
	postfix_judge(d, cfg, gs, &pf);
	px.smtpd = val[5];
	px.postscreen = val[6];
	px.master = master = run_postconf_mode(prog, dir, "-M", NULL, 0,
	    &err);
	if (master == NULL)
		free(err);
	px.overrides = overrides = run_postconf_mode(prog, dir, "-P", NULL, 0,
	    &err);
	if (overrides == NULL)
		free(err);
	postfix_judge_proxy(d, gs, &px);
	free(master);
	free(overrides);
	free(out);
}

/* One network of a Postfix list, host bits allowed (Postfix masks them). */
static int
pf_net(const char *w, struct net *n)
{
	const char	*why, *slash;
	char		 buf[INET6_ADDRSTRLEN + 8];
	uint64_t	 plen;
	int		 i, bits;

	if ((slash = strchr(w, '/')) == NULL)
		return (net_parse(w, n, &why));
	if ((size_t)(slash - w) >= sizeof(buf))
		return (-1);
	memcpy(buf, w, slash - w);
	buf[slash - w] = '\0';
	if (net_parse(buf, n, &why) != 0)
		return (-1);
	bits = n->prefix;
	if (parse_u64(slash + 1, 0, (uint64_t)bits, &plen) != 0)
		return (-1);
	n->prefix = (int)plen;
	for (i = n->prefix; i < bits; i++)
		n->addr.bytes[i / 8] &= ~(0x80 >> (i % 8));
	return (0);
}

/* A file of networks: "#" comments run to the end of the line. */
static void
strip_comments(char *p)
{
	while ((p = strchr(p, '#')) != NULL)
		while (*p != '\0' && *p != '\n')
			*p++ = ' ';
}

/*
 * Postfix's mynetworks syntax (postconf(5)): networks, [IPv6]/len,
 * /file/name with more of the same, and what natguard cannot follow
 * (host names, type:table lookups, !exclusions), which is named in
 * skipped.  Returns the number of networks added.
 */
size_t
postfix_parse_networks(const char *value, struct netlist *out,
    struct buf *skipped)
{
	char	**v, *text;
	size_t	  n, i, added = 0;
	struct net net;
	static int depth;

	n = split(value, &v);
	for (i = 0; i < n; i++) {
		if (v[i][0] == '/' && depth == 0) {
			if ((text = read_small(v[i])) == NULL) {
				buf_adds(skipped, skipped->len ? " " : "");
				buf_adds(skipped, v[i]);
				continue;
			}
			strip_comments(text);
			depth++;
			added += postfix_parse_networks(text, out, skipped);
			depth--;
			free(text);
			continue;
		}
		if (pf_net(v[i], &net) == 0) {
			netlist_add(out, &net);
			added++;
			continue;
		}
		buf_adds(skipped, skipped->len ? " " : "");
		buf_adds(skipped, v[i]);
	}
	split_free(v, n);
	return (added);
}

/*
 * mynetworks = postfix: Postfix's own value, asked of postconf (which
 * honours MAIL_CONFIG), into cfg->mynetworks.  Where Postfix is not
 * installed or not set up here the list stays empty.  Returns what the
 * log should say (NULL: nothing), and the value read in *value.
 */
static char *
mynetworks_ask(struct config *cfg, char **value)
{
	static const char *const param[] = { "mynetworks" };
	struct buf	 skipped = { NULL, 0, 0 };
	const char	*prog, *dir;
	char		*out, *err, *msg = NULL, *nl, *maincf;

	*value = NULL;
	if (!cfg->mynetworks_postfix)
		return (NULL);
	netlist_free(cfg->mynetworks);
	cfg->mynetworks = netlist_new();
	if ((prog = postconf_path()) == NULL) {
		return (xstrdup("mynetworks = postfix, but postconf is not "
		    "installed here: no client is treated as Postfix's "
		    "mynetworks; set mynetworks in natguard.conf where "
		    "Postfix runs elsewhere"));
	}
	/* Debian's "No configuration": installed, not set up here. */
	if ((dir = getenv("MAIL_CONFIG")) == NULL || *dir == '\0')
		dir = "/etc/postfix";
	xasprintf(&maincf, "%s/main.cf", dir);
	if (access(maincf, F_OK) == -1) {
		xasprintf(&msg, "mynetworks = postfix, but Postfix is not set "
		    "up here (no %s): no client is treated as Postfix's "
		    "mynetworks; set mynetworks in natguard.conf where Postfix "
		    "runs elsewhere", maincf);
		free(maincf);
		return (msg);
	}
	free(maincf);
	if ((out = run_postconf(prog, NULL, param, 1, &err)) == NULL) {
		xasprintf(&msg, "mynetworks = postfix: %s: no client is "
		    "treated as Postfix's mynetworks; set mynetworks in "
		    "natguard.conf where Postfix runs elsewhere", err);
		free(err);
		return (msg);
	}
	if ((nl = strchr(out, '\n')) != NULL)
		*nl = '\0';
	postfix_parse_networks(out, cfg->mynetworks, &skipped);
	if (skipped.len > 0)
		xasprintf(&msg, "mynetworks: natguard cannot follow %s in "
		    "Postfix's mynetworks: clients they match are checked "
		    "as any other; list their networks in natguard.conf's "
		    "mynetworks", skipped.s);
	buf_free(&skipped);
	*value = out;
	return (msg);
}

/* The same, with what the log should say kept in cfg for doctor. */
char *
postfix_mynetworks(struct config *cfg, char **value)
{
	char	*msg;

	msg = mynetworks_ask(cfg, value);
	free(cfg->mynetworks_warning);
	cfg->mynetworks_warning = msg != NULL ? xstrdup(msg) : NULL;
	return (msg);
}
