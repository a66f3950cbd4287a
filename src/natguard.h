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

#ifndef NATGUARD_H
#define NATGUARD_H

#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NG_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#define NG_DEAD		__attribute__((noreturn))

/* Limits of the policy protocol (SPEC section 4). */
#define REQ_MAX_LINE	8192
#define REQ_MAX_BYTES	65536
#define REQ_MAX_ATTRS	256

struct event_base;
typedef struct json_t json_t;

/* xmalloc.c: allocation that cannot fail, strict number parsing. */
void		*xmalloc(size_t);
void		*xcalloc(size_t, size_t);
void		*xreallocarray(void *, size_t, size_t);
char		*xstrdup(const char *);
char		*xstrndup(const char *, size_t);
int		 xasprintf(char **, const char *, ...) NG_PRINTF(2, 3);
int		 parse_u64(const char *, uint64_t, uint64_t, uint64_t *);
int		 parse_duration(const char *, uint64_t *);
char		*read_small(const char *);
char		*read_small_len(const char *, size_t *);
char		*read_small_in(const char *, const char *);
/* A growable string; keep one and buf_reset() it to avoid allocation. */
struct buf {
	char	*s;	/* NUL-terminated once anything was added */
	size_t	 len;
	size_t	 size;
};
void		 buf_grow(struct buf *, size_t);
void		 buf_adds(struct buf *, const char *);
void		 buf_reset(struct buf *);
char		*buf_take(struct buf *);
void		 buf_free(struct buf *);

/* Inline: the log line is built from many small pieces per request. */
static inline void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->size)
		buf_grow(b, n);
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* log.c: syslog or stderr, Postfix-style "warning: " prefixes. */
enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARNING,
	LOG_LVL_NOTICE,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG
};
void		 log_open(int, enum log_level, int);
void		 log_set_level(enum log_level);
int		 log_enabled(enum log_level);
void		 log_close(void);
void		 log_flush(void);
void		 log_batch(void (*)(void));
void		 log_error(const char *, ...) NG_PRINTF(1, 2);
void		 log_warnx(const char *, ...) NG_PRINTF(1, 2);
void		 log_notice(const char *, ...) NG_PRINTF(1, 2);
void		 log_info(const char *, ...) NG_PRINTF(1, 2);
void		 log_debug(const char *, ...) NG_PRINTF(1, 2);
void		 log_plain(const char *, size_t);
NG_DEAD void	 fatal(const char *, ...) NG_PRINTF(1, 2);
NG_DEAD void	 fatalx(const char *, ...) NG_PRINTF(1, 2);

/* netaddr.c: addresses and networks; the only user of libcidr. */
struct addr {
	int		family;		/* AF_INET or AF_INET6 */
	unsigned char	bytes[16];	/* IPv4 in bytes[0..3] */
};
struct net {
	struct addr	addr;
	int		prefix;
};
struct netlist;
int		 addr_parse(const char *, struct addr *);
void		 addr_format(const struct addr *, char *, size_t);
int		 addr_hex6(const char *, struct addr *);
int		 net_parse(const char *, struct net *, const char **);
void		 net_format(const struct net *, char *, size_t);
struct netlist	*netlist_new(void);
void		 netlist_free(struct netlist *);
void		 netlist_add(struct netlist *, const struct net *);
size_t		 netlist_count(const struct netlist *);
const struct net *netlist_get(const struct netlist *, size_t);
int		 netlist_find(const struct netlist *, const struct addr *);

/* config.c: the configuration file (SPEC section 3). */
enum nat_action {
	NAT_DEFER,
	NAT_DEFER_IF_PERMIT,
	NAT_WARN
};
enum private_action {
	PRIVATE_DEFER_IF_PERMIT,
	PRIVATE_DEFER,
	PRIVATE_REJECT
};
enum spf_header {
	SPF_HEADER_RECEIVED,
	SPF_HEADER_AR,
	SPF_HEADER_NONE
};
enum spf_receiver {
	SPF_RECEIVER_HOST,		/* RFC 7208 9.1: the verifier's host */
	SPF_RECEIVER_RECIPIENT_DOMAIN	/* policyd-spf's Hide_Receiver = No */
};
#define SPF_SET_FOLLOWS	(1U << 31)	/* spf_helo_reject = $spf_reject */
/* SPF results, in the order of RFC 7208 section 2.6; bit sets use 1 << r. */
enum spf_result {
	SPF_R_NONE,
	SPF_R_NEUTRAL,
	SPF_R_PASS,
	SPF_R_FAIL,
	SPF_R_SOFTFAIL,
	SPF_R_TEMPERROR,
	SPF_R_PERMERROR
};
#define SPF_R_COUNT	7
struct strlist {
	char		**v;
	size_t		  n;
};
struct config {
	char		*file;		/* NULL: built-in defaults */
	struct strlist	 listen;
	unsigned int	 unix_socket_mode;
	char		*user;
	char		*pidfile;
	int		 log_stderr;
	enum log_level	 log_level;
	char		*audit_log;
	struct netlist	*gateways;	/* static entries */
	int		 gateways_auto;
	uint64_t	 gateway_scan_interval;
	enum nat_action	 nat_action;
	char		*nat_reply;
	int		 nat_spf_probe;
	struct netlist	*skip_addresses;
	int		 skip_authenticated;
	int		 spf;
	int		 spf_helo;
	int		 spf_mailfrom;
	unsigned int	 spf_reject;	/* bit set of enum spf_result */
	unsigned int	 spf_defer;
	/* The HELO identity's: the keys' own, or spf_reject's, spf_defer's. */
	unsigned int	 spf_helo_reject;
	unsigned int	 spf_helo_defer;
	unsigned int	 spf_helo_reject_key;	/* SPF_SET_FOLLOWS: "$..." */
	unsigned int	 spf_helo_defer_key;
	int		 spf_helo_null_sender_only;
	struct strlist	 spf_require_pass_domains;
	int		 spf_reject_no_mail_only;
	char		*spf_pass_restriction;		/* "": none */
	char		*spf_helo_pass_restriction;
	int		 spf_enhanced_status_codes;
	char		*spf_reply_text;		/* "": natguard's */
	enum spf_header	 spf_header;
	enum spf_receiver spf_header_receiver;
	int		 spf_trace_header;
	uint64_t	 spf_void_limit;
	char		*spf_prospective;		/* "": the client */
	char		*authserv_id;
	struct netlist	*spf_whitelist;
	struct strlist	 spf_domain_whitelist;
	struct strlist	 spf_helo_whitelist;
	struct strlist	 spf_ptr_whitelist;
	struct strlist	 dns_servers;
	uint64_t	 dns_timeout;
	uint64_t	 spf_timeout;
	uint64_t	 dns_cache_size;
	uint64_t	 max_connections;
	uint64_t	 idle_timeout;
	char		*metrics_listen;
	int		 mynetworks_postfix;	/* "postfix": see below */
	/*
	 * The networks in use: the file's list, or with "postfix" what
	 * postfix_mynetworks() read from postconf (empty until then).
	 */
	struct netlist	*mynetworks;
	char		*mynetworks_warning;	/* why not all, or NULL */
	struct netlist	*private_networks;
	enum private_action private_spf_action;
	int		 hider_learning;
	uint64_t	 hider_threshold;
	uint64_t	 hider_window;
	uint64_t	 hider_expiry;
	char		*state_dir;
	struct config_text *text;	/* private to config.c */
};
struct config	*config_new(void);
void		 config_free(struct config *);
struct config	*config_load(const char *, char **);
struct config	*config_parse(const char *, const char *, size_t, char **);
void		 config_print(const struct config *, FILE *);
int		 config_override(struct config *, const char *, const char *,
		    char **);
int		 config_key_set(const struct config *, const char *);
const char	*spf_result_name(enum spf_result);
const char	*nat_action_name(enum nat_action);
void		 strlist_add(struct strlist *, const char *);
void		 strlist_clear(struct strlist *);
int		 strlist_contains(const struct strlist *, const char *);
int		 strlist_has_name(const struct strlist *, const char *, int);


/* request.c: one policy request, parsed line by line. */
enum req_status {
	REQ_MORE,	/* attribute stored, the request goes on */
	REQ_DONE,	/* the empty line: the request is complete */
	REQ_ERROR	/* malformed: close the connection */
};
struct request;
struct request	*request_new(void);
void		 request_free(struct request *);
struct request	*request_dup(const struct request *);
void		 request_reset(struct request *);
enum req_status	 request_add_line(struct request *, const char *, size_t,
		    const char **);
int		 request_set(struct request *, const char *, const char **);
const char	*request_get(const struct request *, const char *);
size_t		 request_count(const struct request *);

/* engine.c: the container engine natguard runs under, from its traces. */
enum engine {
	ENGINE_NONE,		/* no trace of a container */
	ENGINE_CONTAINER,	/* a container, engine unknown */
	ENGINE_DOCKER,
	ENGINE_DOCKER_ROOTLESS,
	ENGINE_PODMAN,
	ENGINE_PODMAN_ROOTLESS
};
struct engine_evidence {	/* what the engine left; NULL: nothing */
	int		 dockerenv;		/* /.dockerenv exists */
	int		 containerenv;		/* /run/.containerenv exists */
	const char	*containerenv_text;
	const char	*container_env;		/* $container */
	const char	*cgroup;		/* /proc/1/cgroup */
	const char	*systemd_container;	/* /run/systemd/container */
	const char	*uid_map;		/* /proc/self/uid_map */
};
struct engine_info {
	enum engine	kind;
	char		evidence[320];	/* for people: what was found */
	int		kubernetes;	/* a Kubernetes pod */
};
const char	*engine_name(enum engine);
const char	*engine_label(enum engine);
int		 engine_rootless(enum engine);
void		 engine_classify(const struct engine_evidence *,
		    struct engine_info *);
void		 engine_detect(const char *, struct engine_info *);

/* gateway.c: the set of addresses that stand for a NAT/proxy gateway. */
enum gw_source {
	GW_STATIC,
	GW_DEFAULT_ROUTE,
	GW_BRIDGE,
	GW_SUBNET,
	GW_OWN_ADDRESS,		/* rootless Podman's rootlessport */
	GW_SLIRP,		/* rootless Docker's slirp4netns gateway */
	GW_LOOPBACK,		/* any rootless engine */
	GW_TRAFFIC		/* learned from traffic (learn.c) */
};
/* A learned hider's evidence, by value: decisions outlive the table. */
struct hider_evidence {
	unsigned int	count;		/* requests that failed SPF */
	unsigned int	ndomains;	/* unrelated domains among them */
	long long	first;		/* seconds since the epoch */
	long long	last;
	char		domains[200];	/* "a.example, b.example", cut */
};
struct gateway {
	struct net	net;
	enum gw_source	source;
	char		iface[32];	/* empty: none */
	struct hider_evidence ev;	/* GW_TRAFFIC only */
};
struct gwset;
struct gwset	*gwset_new(void);
void		 gwset_free(struct gwset *);
int		 gwset_add(struct gwset *, const struct net *, enum gw_source,
		    const char *);
size_t		 gwset_count(const struct gwset *);
const struct gateway *gwset_get(const struct gwset *, size_t);
const struct gateway *gwset_find(const struct gwset *, const struct addr *);
json_t		*gwset_json(const struct gwset *);
const char	*gw_source_name(enum gw_source);
void		 gw_describe(struct buf *, const struct gateway *);
void		 gwset_set_engine(struct gwset *, const struct engine_info *);
const struct engine_info *gwset_engine(const struct gwset *);
struct gwset	*gateway_scan(const struct config *);
void		 gateway_add_engine(struct gwset *, const struct config *,
		    const struct engine_info *);
int		 gateway_parse_route(struct gwset *, const char *);
void		 gwset_add_local(struct gwset *, const struct net *);
int		 gwset_local(const struct gwset *, const struct addr *);
void		 gwset_add_own(struct gwset *, const struct addr *);
int		 gwset_own(const struct gwset *, const struct addr *);
int		 addr_same_host(const struct gwset *, const struct addr *);
void		 gwset_add_tunnel(struct gwset *, const struct net *);
int		 gwset_tunnel(const struct gwset *, const struct addr *);
struct gwset	*gwset_copy(const struct gwset *);
int		 gwset_add_traffic(struct gwset *, const struct addr *,
		    const struct hider_evidence *);

/* hiders.c: the kinds of hider, a row each; explanations read from it. */
enum hider_kind {
	HK_DOCKER,		/* also natguard on a Docker host, or unknown */
	HK_DOCKER_ROOTLESS,
	HK_DOCKER_SLIRP,	/* the host's own programs only */
	HK_PODMAN_ROOTLESS,
	HK_PODMAN_SLIRP,	/* the host's own programs only */
	HK_PODMAN,		/* the host's own programs only */
	HK_ROOTLESS_LOOPBACK,
	HK_PROXY,		/* a TCP proxy on this host's own network */
	HK_SWARM,
	HK_KUBERNETES,
	HK_ROUTER,		/* NAT beyond this host's networks */
	HK_SAME_HOST,		/* a tunnel or proxy on the mail host */
	HK_VPN_RELAY		/* SNAT at a VPS, over a VPN to this host */
};
#define HK_COUNT	(HK_VPN_RELAY + 1)
struct hider_kind_row {
	const char	*name;		/* lower-case, hyphenated */
	const char	*recognised;	/* how natguard tells it, for docs */
	const char	*cause;		/* what it did to the client address */
	const char	*fix;
	int		 guessed;	/* told from evidence, not seen */
};
const struct hider_kind_row *hider_kind_row(enum hider_kind);
struct hider_program_row {
	const char	*comm;		/* /proc/PID/comm */
	const char	*what;
	const char	*fix;
};
const struct hider_program_row *hider_program(const char *);
const struct hider_program_row *hider_program_get(size_t);
enum hider_kind	 hider_kind_of(const struct gwset *, const struct gateway *);
enum hider_kind	 hider_kind_guess(const struct gwset *, const struct addr *);
int		 gateway_parse_route6(struct gwset *, const char *);

/* decide.c: request + config + gateway set -> decision, nothing else. */
enum action {
	ACT_DUNNO,
	ACT_DEFER,
	ACT_DEFER_IF_PERMIT,
	ACT_WARN,
	ACT_REJECT,
	ACT_PREPEND,
	ACT_RESTRICTION		/* a Postfix restriction class, by name */
};
enum client_class {
	CLIENT_EXTERNAL,
	CLIENT_SKIP,
	CLIENT_GATEWAY
};
/* What the daemon learns from a decision (learn.c); see decide(). */
enum learn_mark {
	LEARN_NONE,
	LEARN_EVIDENCE,		/* a private client failed SPF: record it */
	LEARN_WATCH,		/* answered without SPF: evaluate aside */
	LEARN_REFRESH		/* a learned hider still carries mail */
};
struct decision {
	enum action		 action;
	char			*reply;		/* what follows "action=" */
	const char		*reason;	/* static */
	char			*explanation;	/* NULL: none */
	enum client_class	 class;
	char			*client;	/* normalised, or as sent */
	int			 has_gateway;
	struct gateway		 gateway;
	int			 has_spf;
	enum spf_result		 spf_result;
	const char		*spf_identity;	/* "helo" or "mailfrom" */
	char			*spf_domain;
	int			 spf_probe;
	char			*spf_explanation;
	int			 spf_helo_reported; /* HELO ran, did not decide */
	enum spf_result		 spf_helo_result;
	char			*instance;	/* NULL: none */
	char			*warning;	/* for the log; NULL: none */
	enum learn_mark		 learn;
	int			 private_client; /* in private_networks, or
						    same_host */
	int			 same_host;	/* loopback, or an address of
						    this host's interfaces */
	int			 hider_guess;	/* enum hider_kind, private */
	/* What SPF the decision still needs: see decide_spf(). */
	unsigned int		 spf_need;	/* SPF_NEED_* */
	struct addr		 spf_addr;
	char			*spf_helo;	/* NULL: HELO is no domain */
	char			*spf_helo_macro; /* as sent, for %{h} */
	char			*spf_mailbox;	/* the MAIL FROM identity */
	int			 spf_null_sender;
	char			*spf_receiver;	/* receiver=; NULL: authserv_id */
	int			 spf_background; /* its SPF only feeds the log */
	size_t			 pool_used;	/* see decision_strdup() */
	char			 pool[512];
};
#define SPF_NEED_HELO		0x1
#define SPF_NEED_MAILFROM	0x2
#define SPF_NEED_PROBE		0x4	/* MAIL FROM, against a gateway */
#define SPF_NEED_DOMAINS	0x8	/* spf_domain_whitelist */
#define SPF_NEED_HELO_WL	0x10	/* spf_helo_whitelist: HELO's addresses */
#define SPF_NEED_PTR_WL		0x20	/* spf_ptr_whitelist: the client's PTR */
/* Which whitelist let the client through (spf_run's "whitelisted"). */
#define SPF_WL_DOMAIN		0x1
#define SPF_WL_HELO		0x2
#define SPF_WL_PTR		0x4
struct spf_verdict {
	enum spf_result	 result;
	char		*domain;
	char		*explanation;	/* NULL: none */
	char		*comment;	/* NULL: none */
	int		 no_mail;	/* the record is "v=spf1 -all" */
	int		 crashed;	/* temperror: the SPF worker died */
};
struct decision	*decision_new(void);
void		 decision_free(struct decision *);
char		*decision_strdup(struct decision *, const char *);
void		 decision_release(struct decision *, char *);
struct decision	*decide(const struct config *, const struct gwset *,
		    const struct request *);
struct decision	*decision_repeat(const struct decision *);
void		 decide_spf(const struct config *, struct decision *,
		    const struct spf_verdict *, const struct spf_verdict *, int);
void		 spf_verdict_copy(struct spf_verdict *,
		    const struct spf_verdict *);
void		 spf_verdict_clear(struct spf_verdict *);
const char	*action_name(enum action);
const char	*client_class_name(enum client_class);

/* learn.c: hiders learned from traffic, their evidence and state file. */
#define HIDER_ADDRS_MAX		1024	/* addresses with evidence */
#define HIDER_DOMAINS_MAX	8	/* domains kept an address */
#define HIDER_LEARNED_MAX	256	/* learned hiders kept */
struct learn;
struct learn	*learn_new(const struct config *);
void		 learn_free(struct learn *);
void		 learn_config(struct learn *, const struct config *);
int		 learn_load(struct learn *, const char *, char **);
int		 learn_save(struct learn *, char **);
int		 learn_sync(struct learn *, char **);
int		 learn_record(struct learn *, const struct addr *, int,
		    const char *, long long);
void		 learn_refresh(struct learn *, const struct addr *, long long);
int		 learn_expire(struct learn *, long long);
int		 learn_forget(struct learn *, const struct addr *);
void		 learn_gateways(const struct learn *, struct gwset *);
size_t		 learn_count(const struct learn *);
size_t		 learn_tracked(const struct learn *);
int		 learn_dirty(const struct learn *);
char		*learn_state_path(const struct config *);
const char	*registrable_domain(const char *, char *, size_t);

/* report.c: a decision as a log line, an audit record, a JSON object. */
void		 report_logline(const struct decision *, const struct request *,
		    struct buf *);
json_t		*report_audit(const struct decision *, const struct request *,
		    time_t);
json_t		*report_json(const struct decision *);
void		 report_quote(struct buf *, const char *);

/* audit.c: the audit_log file, one JSON object per decision. */
void		 audit_open(const char *);
void		 audit_close(void);
void		 audit_write(const struct decision *, const struct request *);

/* metrics.c: counters, and HTTP /metrics and /healthz. */
void		 metrics_start(struct event_base *, const char *);
void		 metrics_stop(void);
void		 metrics_decision(const struct decision *, double);
void		 metrics_protocol_error(void);
void		 metrics_reload(int);

/* notify.c: readiness and status for a supervisor ($NOTIFY_SOCKET). */
/* The FDNAME of a client connection handed to systemd's store. */
#define NOTIFY_CONN_NAME	"connection"
void		 notify(const char *, ...) NG_PRINTF(1, 2);
int		 notify_fd(const char *, int);

/* sockdiag.c: this host's TCP sockets and who holds them. */
#define SOCKDIAG_ESTABLISHED	(1U << 1)	/* TCP_ESTABLISHED */
#define SOCKDIAG_LISTEN		(1U << 10)	/* TCP_LISTEN */
struct sockent {
	struct addr	 src, dst;
	uint16_t	 sport, dport;
	int		 state;
	unsigned int	 uid;
	unsigned long	 inode;
};
struct sockowner {
	pid_t		 pid;
	char		 comm[32];
};
int		 sockdiag_tcp(uint32_t, struct sockent **, size_t *);
int		 sockdiag_owner(const char *, unsigned long, struct sockowner *,
		    int *);
int		 sockdiag_peer_of(const char *, const struct addr *,
		    struct sockowner *);
int		 sockdiag_same_addr(const struct addr *, const struct addr *);
int		 sockdiag_postfix(const char *);

/* netwatch.c: address, route and link changes (rtnetlink), debounced. */
struct netwatch;
typedef void	(*netwatch_cb)(unsigned long, void *);
struct netwatch	*netwatch_new(struct event_base *, int, netwatch_cb, void *);
void		 netwatch_free(struct netwatch *);

/* dns.c: asynchronous DNS (c-ares in the event loop) with a cache. */
#define DNS_T_A		1
#define DNS_T_PTR	12
#define DNS_T_MX	15
#define DNS_T_TXT	16
#define DNS_T_AAAA	28
enum dns_status {
	DNS_OK,
	DNS_NXDOMAIN,
	DNS_NODATA,
	DNS_TEMPFAIL	/* timeout, SERVFAIL, malformed: not cached */
};
struct dns_rr {
	uint32_t	 ttl;
	uint16_t	 pref;		/* MX */
	size_t		 len;
	char		*data;		/* A/AAAA: bytes; TXT: the strings
					   joined; MX, PTR: a name.  Always
					   NUL-terminated. */
};
struct dns_answer {
	enum dns_status	 status;
	int		 type;
	size_t		 n;
	struct dns_rr	*rr;
	time_t		 expires;	/* monotonic seconds */
	const char	*error;		/* DNS_TEMPFAIL: why */
	int		 refs;
};
struct dns;
struct dns_waiter;
typedef void	(*dns_cb)(struct dns_answer *, void *);
struct dns	*dns_new(struct event_base *, const struct config *, char **);
void		 dns_free(struct dns *);
struct dns_answer *dns_cached(struct dns *, const char *, int);
struct dns_waiter *dns_query(struct dns *, const char *, int, dns_cb, void *);
struct dns_waiter *dns_query_prio(struct dns *, const char *, int, int,
		    dns_cb, void *);
void		 dns_cancel(struct dns_waiter *);
void		 dns_answer_unref(struct dns_answer *);
struct dns_answer *dns_answer_parse(const unsigned char *, size_t, int, int,
		    uint32_t *);
void		 dns_stats(const struct dns *, uint64_t *, uint64_t *,
		    uint64_t *);
int		 dns_caching(const struct dns *);
const char	*dns_status_name(enum dns_status);
char		*dns_name(const char *);

/* spf.c: SPF (RFC 7208) on libspf2, its DNS answered by dns.c. */
enum spf_identity {
	SPF_ID_HELO,
	SPF_ID_MAILFROM
};
struct spf_outcome {
	enum spf_result		 result;
	enum spf_identity	 identity;
	const char		*domain;	/* the identity's domain */
	const char		*explanation;	/* for the SMTP client */
	const char		*comment;	/* for a header */
	int			 no_mail;	/* record "v=spf1 -all" */
	int			 crashed;	/* the SPF worker died on it */
};
struct spf;
struct spf_query;
typedef void	(*spf_cb)(const struct spf_outcome *, void *);
struct spf	*spf_new(struct event_base *, struct dns *,
		    const struct config *);
void		 spf_free(struct spf *);
void		 spf_config(struct spf *, const struct config *);
struct spf_query *spf_check(struct spf *, const struct addr *, const char *,
		    const char *, enum spf_identity, int, spf_cb, void *);
void		 spf_cancel(struct spf_query *);
#define SPF_CRASH_FILE	"spf-worker-crashes"	/* in state_dir */
uint64_t	 spf_worker_crashes(const struct spf *);
const char	*spf_worker_sandbox(const struct spf *);
struct spf_run;
typedef void	(*spf_run_cb)(const struct spf_verdict *,
		    const struct spf_verdict *, int, void *);
struct spf_run	*spf_run(struct spf *, const struct config *,
		    const struct decision *, spf_run_cb, void *);
void		 spf_run_cancel(struct spf_run *);
int		 spf_run_cached(struct spf *, const struct config *,
		    const struct decision *, struct spf_verdict [2], int [2],
		    int *);

/*
 * spfeval.c: one pass of libspf2 over the answers at hand, in the SPF
 * worker.  A pass reads only its input; what it lacks comes back as needs.
 */
#define SPF_MAX_TERMS	10	/* RFC 7208 4.6.4: DNS terms */
#define SPF_MAX_PTR_NAMES 10	/* RFC 7208 4.6.4 */
struct spf_pin {
	char			*name;		/* as dns_name() writes it */
	int			 type;
	struct dns_answer	*answer;	/* a reference of the pin's */
};
struct spf_need {
	char			*name;
	int			 type;
};
struct spf_pass {
	struct addr		 client;
	char			*helo;		/* as sent, for %{h}; NULL */
	char			*mailbox;	/* the identity */
	char			*rec_dom;	/* %{r}, the header's */
	uint64_t		 void_limit;
	struct spf_pin		*pins;
	size_t			 npins;
};
struct spf_passed {
	enum spf_result		 result;	/* reached without the needs */
	int			 failed;	/* libspf2's internal error */
	char			*explanation;
	char			*comment;
	char			*why;		/* a record refused: why */
	char			*error;		/* libspf2's error message */
	struct spf_need		*needs;		/* names the pass lacked */
	size_t			 nneeds;
};
struct spfeval;
struct spfeval	*spfeval_new(void);
void		 spfeval_free(struct spfeval *);
void		 spfeval_run(struct spfeval *, const struct spf_pass *,
		    struct spf_passed *);
void		 spf_passed_clear(struct spf_passed *);
struct dns_answer *spf_pins_find(const struct spf_pin *, size_t,
		    const char *, int);
int		 spf_name_valid(const char *);
void		 spf_reverse_name(const struct addr *, char *, size_t);

/* spfmsg.c: the SPF worker's frames, a pass and what it found. */
#define SPFMSG_MAX	(16 * 1024 * 1024)	/* a frame's payload */
#define SPFMSG_MAX_NEEDS 100
void		 spfmsg_pass_put(struct buf *, uint32_t,
		    const struct spf_pass *, const struct spf_pin *, size_t);
int		 spfmsg_pass_get(const void *, size_t, uint32_t *,
		    struct spf_pass *);
void		 spf_pass_clear(struct spf_pass *);
void		 spfmsg_passed_put(struct buf *, uint32_t,
		    const struct spf_passed *);
int		 spfmsg_passed_get(const void *, size_t, uint32_t *,
		    struct spf_passed *);

/*
 * spfworker.c: the process that runs the passes, sandboxed, and its life:
 * started, fed, watched, restarted.  A job's cb gets NULL when the worker
 * died on it; the crash callback names the domain it was evaluating.
 */
struct spfworker;
struct spfjob;
typedef void	(*spfjob_cb)(const struct spf_passed *, void *);
typedef void	(*spfworker_crash_cb)(const char *, const char *, void *);
void		 spfworker_exec_self(void);
struct spfworker *spfworker_new(struct event_base *, spfworker_crash_cb,
		    void *);
void		 spfworker_free(struct spfworker *);
struct spfjob	*spfworker_submit(struct spfworker *, struct buf *,
		    const char *, spfjob_cb, void *);
void		 spfworker_cancel(struct spfjob *);
uint64_t	 spfworker_crashes(const struct spfworker *);
const char	*spfworker_sandbox(const struct spfworker *);
int		 spfworker_main(void);
int		 spfworker_selftest(char **);

/* spfrecord.c: RFC 7208's grammar of an SPF record, strictly. */
#define SPF_RECORD_INVALID	"v=spf1 invalid:record"	/* libspf2: permerror */
/*
 * An a or mx term of prefix length 0 (which libspf2 refuses) is handed to
 * it with this suffix on its domain and no length; spf.c's DNS layer
 * answers such names for what /0 means.  .invalid never resolves (RFC
 * 2606), so no real name is taken.
 */
#define SPF_CIDR0_SUFFIX	".cidr0.natguard.invalid"
/*
 * What RFC 7208 7.3's macros expand to, for the record of domain.  p is
 * asked only when a macro needs it; NULL from it: not known yet.
 */
struct spf_macros {
	const char	*sender;	/* s, l, o */
	const char	*domain;	/* d */
	const char	*ip;		/* i: dotted, or IPv6's nibbles */
	const char	*helo;		/* h, as sent; NULL: none */
	int		 v6;		/* v */
	const char	*(*p)(void *, const char *);
	void		*arg;
};
/*
 * What normalising says beyond the record.  A record too long for
 * libspf2's compiled budget goes to it in chunks chained by redirect=:
 * chunk is given each chunk's text (NUL-terminated) and returns the name
 * to redirect= to, which the DNS layer then answers with that text.  why
 * says why a record became a permerror past libspf2's bounds ("": it did
 * not, or the grammar alone said so).
 */
struct spf_norm {
	const char	*(*chunk)(void *, const char *);
	void		*arg;
	char		 why[160];
};
#define SPF_CHUNK_SUFFIX	".chunk.natguard.invalid"
int		 spf_record_check(const char *, int *, const char **);
int		 spf_text_safe(const char *);
char		*spf_record_normalise(const char *, size_t, int,
		    const struct spf_macros *, struct spf_norm *);
char		*spf_macro_expand(const char *, size_t,
		    const struct spf_macros *);

/* endpoint.c: the listen endpoints. */
int		 endpoint_check(const char *, const char **);
int		 endpoint_bind(const char *, unsigned int, char **);
char		*endpoint_name(int);
int		 endpoint_inherited(int **, int **, int *, char **);
int		 endpoint_connect(const char *, int, char **);

/* conn.c: one client connection of the policy protocol. */
void		 conn_accept(struct event_base *, int, const char *);
void		 conn_shutdown(int);
void		 conn_close_all(void);
void		 conn_sweep(time_t, time_t);
size_t		 conn_count(void);

/* server.c: the daemon, its listeners, signals and timers. */
int		 server_main(struct config *, const char *, int, int,
		    const char *);
const struct config *server_config(void);
const struct gwset *server_gateways(void);
struct spf	*server_spf(void);
struct dns	*server_dns(void);
void		 server_conn_closed(void);
void		 server_learn(const struct decision *);

/* logscan.c: natguard audit's reading of logs. */
struct audit_sum;
struct audit_sum *audit_sum_new(time_t);
void		 audit_sum_free(struct audit_sum *);
void		 audit_sum_line(struct audit_sum *, const char *);
json_t		*audit_sum_json(const struct audit_sum *);
int		 audit_parse_time(const char *, time_t *);

/* yaml.c: a YAML document as a tree (libyaml's only user). */
enum ynode_type {
	YNODE_SCALAR,
	YNODE_MAP,
	YNODE_SEQ
};
struct ynode;
struct ynode	*yaml_load(const char *, char **);
void		 ynode_free(struct ynode *);
enum ynode_type	 ynode_type(const struct ynode *);
unsigned long	 ynode_line(const struct ynode *);
const char	*ynode_str(const struct ynode *);
size_t		 ynode_len(const struct ynode *);
const struct ynode *ynode_at(const struct ynode *, size_t);
const char	*ynode_key(const struct ynode *, size_t);
const struct ynode *ynode_get(const struct ynode *, const char *);
int		 ynode_true(const struct ynode *);

/* doctor.c: natguard doctor's checks, each OK, WARN or FAIL. */
enum dstatus {
	DS_OK,
	DS_WARN,
	DS_FAIL
};
struct doctor;
struct doctor	*doctor_new(void);
void		 doctor_free(struct doctor *);
void		 doctor_add(struct doctor *, enum dstatus, const char *,
		    const char *, const char *, ...) NG_PRINTF(5, 6);
enum dstatus	 doctor_status(const struct doctor *);
int		 doctor_find(const struct doctor *, const char *,
		    const char **);
json_t		*doctor_json(const struct doctor *);
void		 doctor_print(const struct doctor *, FILE *);
void		 doctor_container(struct doctor *, const char *);
void		 doctor_engine(struct doctor *, const struct config *,
		    const struct engine_info *);
void		 doctor_ipv6(struct doctor *, const char *);
void		 doctor_gateways(struct doctor *, const struct config *,
		    const struct gwset *);
int		 doctor_sockets(struct doctor *, const struct config *,
		    const char *, struct strlist *);
void		 doctor_spf_worker(struct doctor *, const struct config *);
void		 doctor_listen(struct doctor *, const struct config *,
		    const struct strlist *);
void		 doctor_hiders(struct doctor *, const struct config *,
		    const struct gwset *);
void		 doctor_mynetworks(struct doctor *, const struct config *);
void		 doctor_smtp_ports(struct doctor *, const struct gwset *,
		    const char *);

/* docker.c: Docker's daemon.json and compose files, for doctor. */
void		 docker_daemon_json(struct doctor *, const char *, int);
void		 docker_compose(struct doctor *, const char *);

/* postfix.c: Postfix's settings as natguard needs them, for doctor. */
struct pf_settings {
	const char	*mynetworks;
	const char	*recipient_restrictions;
	const char	*relay_restrictions;
	const char	*policy_timeout;
	const char	*queue_directory;
};
void		 postfix_doctor(struct doctor *, const struct config *,
		    const struct gwset *, const char *);
void		 postfix_judge(struct doctor *, const struct config *,
		    const struct gwset *, const struct pf_settings *);
struct pf_proxy {		/* PROXY protocol's settings */
	const char	*smtpd;		/* smtpd_upstream_proxy_protocol */
	const char	*postscreen;	/* postscreen_upstream_proxy_protocol */
	const char	*master;	/* postconf -M */
	const char	*overrides;	/* postconf -P */
};
void		 postfix_judge_proxy(struct doctor *, const struct gwset *,
		    const struct pf_proxy *);
size_t		 postfix_parse_networks(const char *, struct netlist *,
		    struct buf *);
char		*postfix_mynetworks(struct config *, char **);

/* cmd.c: the subcommands a mail administrator runs by hand. */
int		 cmd_check(const struct config *, int, int, char **);
int		 cmd_gateways(const struct config *, int, const char *);
int		 cmd_config(const struct config *);
int		 cmd_audit(int, time_t, int, char **);
int		 cmd_doctor(const struct config *, int, const char *,
		    const char *, const char *);

/* migrate.c: another policy server's settings as a natguard.conf. */
int		 cmd_migrate(const char *, FILE *);
size_t		 migrate_options(const char ***);

#endif /* NATGUARD_H */
