#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "natguard.h"
#include "unit.h"

/* Files that parse, and what one key then holds. */
static const struct {
	const char	*label;
	const char	*text;
	const char	*key;		/* in `natguard config` output */
	const char	*printed;
} good[] = {
	{ "empty file", "", "listen", "inet:127.0.0.1:10041" },
	{ "comments and blanks", "# c\n\n   # indented\nlog = stderr\n",
	    "log", "stderr" },
	{ "trailing comment", "log_level = debug  # chatty\n", "log_level",
	    "debug" },
	{ "hash inside a word", "nat_reply = 4.3.5 see x#y\n", "nat_reply",
	    "4.3.5 see x#y" },
	{ "continuation", "skip_addresses = 127.0.0.0/8,\n  ::1\n"
	    "\t10.0.0.0/8\n", "skip_addresses", "127.0.0.0/8, ::1 10.0.0.0/8" },
	{ "continuation over a comment", "gateways = auto\n# x\n 10.1.0.0/16\n",
	    "gateways", "auto 10.1.0.0/16" },
	{ "no space around =", "nat_action=warn\n", "nat_action", "warn" },
	{ "no final newline", "spf = no", "spf", "no" },
	{ "CRLF line ends", "spf_helo = no\r\nlog = stderr\r\n", "spf_helo",
	    "no" },
	{ "duration minutes", "idle_timeout = 5m\n", "idle_timeout", "5m" },
	{ "duration hours", "gateway_scan_interval = 1h\n",
	    "gateway_scan_interval", "1h" },
	{ "bare seconds", "dns_timeout = 3\n", "dns_timeout", "3" },
	{ "listen list", "listen = inet:127.0.0.1:1, inet:[::1]:2 "
	    "unix:/run/ng.sock\n", "listen",
	    "inet:127.0.0.1:1, inet:[::1]:2 unix:/run/ng.sock" },
	{ "gateways none", "gateways = none\n", "gateways", "none" },
	{ "gateways static only", "gateways = 172.20.0.1, fd00::/64\n",
	    "gateways", "172.20.0.1, fd00::/64" },
	{ "IPv4-mapped network", "spf_whitelist = ::ffff:10.0.0.0/104\n",
	    "spf_whitelist", "::ffff:10.0.0.0/104" },
	{ "bracketed IPv6 network", "spf_whitelist = [2001:db8::]/32\n",
	    "spf_whitelist", "[2001:db8::]/32" },
	{ "empty list", "skip_addresses =\n", "skip_addresses", "" },
	{ "spf results", "spf_reject = fail softfail permerror\n",
	    "spf_reject", "fail softfail permerror" },
	{ "empty spf_defer", "spf_defer =\n", "spf_defer", "" },
	{ "dns servers", "dns_servers = 127.0.0.1, 127.0.0.1:5353, ::1, "
	    "[::1]:53\n", "dns_servers",
	    "127.0.0.1, 127.0.0.1:5353, ::1, [::1]:53" },
	{ "domains", "spf_domain_whitelist = example.org, mx.example.net\n",
	    "spf_domain_whitelist", "example.org, mx.example.net" },
	{ "metrics", "metrics_listen = 127.0.0.1:9100\n", "metrics_listen",
	    "127.0.0.1:9100" },
	{ "unix mode", "unix_socket_mode = 0660\n", "unix_socket_mode",
	    "0660" },
	{ "authserv_id", "authserv_id = mx.example.org\n", "authserv_id",
	    "mx.example.org" },
	{ "max connections", "max_connections = 5\n", "max_connections",
	    "5" },
	{ "cache off", "dns_cache_size = 0\n", "dns_cache_size", "0" },
};

/* Files that do not, and the exact message (after "t.conf:"). */
static const struct {
	const char	*label;
	const char	*text;
	const char	*error;
} bad[] = {
	{ "unknown key with hint", "listn = inet:127.0.0.1:1\n",
	    "1: unknown key \"listn\" (did you mean \"listen\"?)" },
	{ "unknown key far off", "frobnicate = 1\n",
	    "1: unknown key \"frobnicate\"" },
	{ "hint for a swapped word", "spf_header_style = none\n",
	    "1: unknown key \"spf_header_style\" (did you mean \"spf_header\"?)" },
	{ "duplicate key", "log = stderr\n\nlog = syslog\n",
	    "3: log: duplicate key (first set on line 1)" },
	{ "no equals sign", "log stderr\n",
	    "1: expected \"name = value\", got \"log stderr\"" },
	{ "no key name", " \n= x\n", "2: missing key name before \"=\"" },
	{ "continuation first", "  listen = x\n",
	    "1: continuation line without a preceding \"name = value\" line" },
	{ "NUL byte", "log = std\0err\n", "1: NUL byte in line" },
	{ "bad endpoint", "listen = tcp:1.2.3.4:5\n",
	    "1: listen: \"tcp:1.2.3.4:5\": expected inet:IPV4:PORT, "
	    "inet:[IPV6]:PORT or unix:PATH" },
	{ "endpoint name", "listen = inet:localhost:10041\n",
	    "1: listen: \"inet:localhost:10041\": not an IPv4 address "
	    "(IPv6 goes in brackets)" },
	{ "endpoint port", "listen = inet:127.0.0.1:65536\n",
	    "1: listen: \"inet:127.0.0.1:65536\": bad port" },
	{ "no endpoints", "listen =\n",
	    "1: listen: at least one endpoint is needed" },
	{ "mode not octal", "unix_socket_mode = 0668\n",
	    "1: unix_socket_mode: \"0668\" is not an octal mode" },
	{ "log target", "log = file\n",
	    "1: log: \"file\": expected syslog or stderr" },
	{ "log level", "log_level = loud\n",
	    "1: log_level: \"loud\": expected error, warning, notice, info "
	    "or debug" },
	{ "gateway garbage", "gateways = auto, gw1\n",
	    "1: gateways: \"gw1\": not an IPv4 or IPv6 address" },
	{ "inet_aton style", "gateways = 10/8\n",
	    "1: gateways: \"10/8\": not an IPv4 or IPv6 address" },
	{ "none with more", "gateways = none, 10.0.0.1\n",
	    "1: gateways: \"none\" cannot be combined with other entries" },
	{ "host bits", "skip_addresses = 10.1.2.3/8\n",
	    "1: skip_addresses: \"10.1.2.3/8\": host bits set after the "
	    "prefix length" },
	{ "prefix too long", "spf_whitelist = 10.0.0.0/33\n",
	    "1: spf_whitelist: \"10.0.0.0/33\": bad prefix length" },
	{ "prefix with sign", "spf_whitelist = 10.0.0.0/+8\n",
	    "1: spf_whitelist: \"10.0.0.0/+8\": bad prefix length" },
	{ "duration suffix", "idle_timeout = 10d\n",
	    "1: idle_timeout: \"10d\": expected a duration from 1s to 86400s "
	    "(suffix s, m, h or d)" },
	{ "duration zero", "dns_timeout = 0\n",
	    "1: dns_timeout: \"0\": expected a duration from 1s to 3600s "
	    "(suffix s, m, h or d)" },
	{ "duration negative", "spf_timeout = -5\n",
	    "1: spf_timeout: \"-5\": expected a duration from 1s to 3600s "
	    "(suffix s, m, h or d)" },
	{ "count garbage", "max_connections = 10k\n",
	    "1: max_connections: \"10k\": expected a whole number from 1 to "
	    "1000000" },
	{ "count zero", "max_connections = 0\n",
	    "1: max_connections: \"0\": expected a whole number from 1 to "
	    "1000000" },
	{ "count overflow", "dns_cache_size = 99999999999999999999999\n",
	    "1: dns_cache_size: \"99999999999999999999999\": expected a whole "
	    "number from 0 to 10000000" },
	{ "nat action", "nat_action = reject\n",
	    "1: nat_action: \"reject\": expected defer, defer_if_permit or "
	    "warn" },
	{ "boolean", "spf = true\n", "1: spf: \"true\": expected no or yes" },
	{ "empty boolean", "nat_spf_probe =\n",
	    "1: nat_spf_probe: \"\": expected no or yes" },
	{ "pass rejected", "spf_reject = fail pass\n",
	    "1: spf_reject: \"pass\": expected a list of fail, softfail, "
	    "neutral, none, permerror or temperror" },
	{ "unknown result", "spf_defer = maybe\n",
	    "1: spf_defer: \"maybe\": expected a list of fail, softfail, "
	    "neutral, none, permerror or temperror" },
	{ "result in both lists", "spf_reject = fail temperror\n",
	    "1: spf_defer: a result is in both spf_reject and spf_defer" },
	{ "header style", "spf_header = x-spf\n",
	    "1: spf_header: \"x-spf\": expected received-spf, "
	    "authentication-results or none" },
	{ "bad domain", "spf_domain_whitelist = exa mple..org\n",
	    "1: spf_domain_whitelist: \"mple..org\" is not a domain name" },
	{ "bad dns server", "dns_servers = 127.0.0.1:0\n",
	    "1: dns_servers: \"127.0.0.1:0\": expected IP, IP:PORT or "
	    "[IPV6]:PORT" },
	{ "dns server name", "dns_servers = ns1.example\n",
	    "1: dns_servers: \"ns1.example\": expected IP, IP:PORT or "
	    "[IPV6]:PORT" },
	{ "metrics port", "metrics_listen = 127.0.0.1\n",
	    "1: metrics_listen: \"127.0.0.1\": expected HOST:PORT" },
	{ "control character", "nat_reply = 4.3.5 a\tb\n",
	    "1: nat_reply: control characters in value" },
	{ "error on a continued line", "log = stderr\nskip_addresses = ::1\n"
	    "  10.0.0.300\n",
	    "2: skip_addresses: \"10.0.0.300\": not an IPv4 or IPv6 address" },
};

START_TEST(test_good)
{
	struct config	*cfg;
	char		*err, *out = NULL, *want;
	size_t		 len = 0;
	FILE		*f;

	cfg = config_parse("t.conf", good[_i].text, strlen(good[_i].text),
	    &err);
	ck_assert_msg(cfg != NULL, "%s: %s", good[_i].label, err);
	f = open_memstream(&out, &len);
	config_print(cfg, f);
	fclose(f);
	xasprintf(&want, "\n%s = %s\n", good[_i].key, good[_i].printed);
	ck_assert_msg(strstr(out, want) != NULL || strncmp(out, want + 1,
	    strlen(want + 1)) == 0, "%s: want %s in:\n%s", good[_i].label,
	    want, out);
	free(want);
	free(out);
	config_free(cfg);
}
END_TEST

START_TEST(test_bad)
{
	struct config	*cfg;
	char		*err, *want;
	size_t		 len;

	/* Lengths explicit: one case has a NUL inside. */
	len = strlen(bad[_i].text);
	if (strcmp(bad[_i].label, "NUL byte") == 0)
		len = 14;
	cfg = config_parse("t.conf", bad[_i].text, len, &err);
	ck_assert_msg(cfg == NULL, "%s: parsed", bad[_i].label);
	xasprintf(&want, "t.conf:%s", bad[_i].error);
	ck_assert_msg(strcmp(err, want) == 0, "%s:\n got %s\nwant %s",
	    bad[_i].label, err, want);
	free(want);
	free(err);
}
END_TEST

START_TEST(test_defaults)
{
	struct config	*cfg = config_new();

	ck_assert_int_eq(cfg->listen.n, 1);
	ck_assert_str_eq(cfg->listen.v[0], "inet:127.0.0.1:10041");
	ck_assert_int_eq(cfg->gateways_auto, 1);
	ck_assert_int_eq(cfg->nat_action, NAT_DEFER);
	ck_assert_int_eq(cfg->idle_timeout, 600);
	ck_assert_int_eq(cfg->gateway_scan_interval, 60);
	ck_assert_int_eq(cfg->spf_reject, 1U << SPF_R_FAIL);
	ck_assert_int_eq(cfg->spf_defer, 1U << SPF_R_TEMPERROR);
	ck_assert_int_eq(cfg->max_connections, 1000);
	ck_assert_int_eq(cfg->unix_socket_mode, 0666);
	ck_assert_int_eq(netlist_count(cfg->skip_addresses), 2);
	ck_assert(cfg->authserv_id[0] != '\0');
	config_free(cfg);
	config_free(NULL);
}
END_TEST

START_TEST(test_load_missing)
{
	char	*err;

	ck_assert_ptr_eq(config_load("/nonexistent/natguard.conf", &err),
	    NULL);
	ck_assert_str_eq(err, "/nonexistent/natguard.conf: No such file or "
	    "directory");
	free(err);
}
END_TEST

START_TEST(test_override)
{
	struct config	*cfg = config_new();
	char		*err;

	ck_assert_int_eq(config_override(cfg, "listen", "unix:/tmp/x.sock",
	    &err), 0);
	ck_assert_str_eq(cfg->listen.v[0], "unix:/tmp/x.sock");
	ck_assert_int_eq(config_override(cfg, "listen", "inet:x:1", &err),
	    -1);
	ck_assert(strstr(err, "listen: \"inet:x:1\"") == err);
	free(err);
	config_free(cfg);
}
END_TEST

static const struct {
	const char	*label;
	const char	*in;
	int		 ok;
	uint64_t	 value;
} numbers[] = {
	{ "plain", "42", 1, 42 },
	{ "seconds", "42s", 1, 42 },
	{ "minutes", "2m", 1, 120 },
	{ "hours", "1h", 1, 3600 },
	{ "days, as Postfix writes them", "2d", 1, 172800 },
	{ "weeks", "1w", 1, 604800 },
	{ "more than a year", "53w", 0, 0 },
	{ "empty", "", 0, 0 },
	{ "suffix only", "s", 0, 0 },
	{ "sign", "+1", 0, 0 },
	{ "space", " 1", 0, 0 },
	{ "hex", "0x10", 0, 0 },
	{ "two suffixes", "1ms", 0, 0 },
	{ "overflow", "18446744073709551616", 0, 0 },
};

START_TEST(test_duration)
{
	uint64_t	v = 0;
	int		rc = parse_duration(numbers[_i].in, &v);

	ck_assert_msg((rc == 0) == numbers[_i].ok, "%s", numbers[_i].label);
	if (numbers[_i].ok)
		ck_assert_msg(v == numbers[_i].value, "%s", numbers[_i].label);
}
END_TEST

Suite *
config_suite(void)
{
	Suite	*s = suite_create("config");
	TCase	*tc = tcase_create("config");

	tcase_add_loop_test(tc, test_good, 0, NELEMS(good));
	tcase_add_loop_test(tc, test_bad, 0, NELEMS(bad));
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_load_missing);
	tcase_add_test(tc, test_override);
	tcase_add_loop_test(tc, test_duration, 0, NELEMS(numbers));
	suite_add_tcase(s, tc);
	return (s);
}
