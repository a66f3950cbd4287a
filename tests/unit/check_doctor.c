#include "config.h"

#include <sys/socket.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"
#include "unit.h"

/*
 * natguard doctor's checks on fixtures: daemon.json and compose files (the
 * good one and each classic mistake), fixture root trees for the machine
 * checks, and Postfix settings as postconf would print them.  Each case
 * names the checks it expects and their status; a check not named may be
 * anything.
 */

#define W	DS_WARN
#define F	DS_FAIL
#define O	DS_OK

struct expect {
	const char	*name;
	int		 status;
	const char	*evidence;	/* a substring of it, or NULL */
};

static char *
data(const char *file)
{
	char	*p;

	ck_assert(asprintf(&p, "%s/doctor/%s", getenv("TESTDATA"), file) !=
	    -1);
	return (p);
}

static void
expect_all(const struct doctor *d, const char *label,
    const struct expect *e, size_t n)
{
	const char	*ev;
	size_t		 i;
	int		 st;

	for (i = 0; i < n && e[i].name != NULL; i++) {
		ev = NULL;
		st = doctor_find(d, e[i].name, &ev);
		ck_assert_msg(st == e[i].status, "%s: %s: status %d, "
		    "expected %d (%s)", label, e[i].name, st, e[i].status,
		    ev ? ev : "no such check");
		if (e[i].evidence != NULL)
			ck_assert_msg(strstr(ev, e[i].evidence) != NULL,
			    "%s: %s: \"%s\" lacks \"%s\"", label, e[i].name,
			    ev, e[i].evidence);
	}
}

static const struct {
	const char	*label;
	const char	*file;
	struct expect	 e[7];
} daemon_cases[] = {
	{ "everything right", "daemon-good.json", {
	    { "docker-daemon-json", O, NULL },
	    { "docker-ipv6", O, NULL }, { "docker-ip6tables", O, NULL },
	    { "docker-experimental", O, NULL },
	    { "docker-userland-proxy", O, "DNAT" },
	    { "docker-address-pools", O, "fd00:cafe::/48" } } },
	{ "ip6tables off: the proxy carries IPv6", "daemon-proxied.json", {
	    { "docker-ipv6", O, NULL },
	    { "docker-ip6tables", F, "\"ip6tables\": false" },
	    { "docker-userland-proxy", W, NULL },
	    { "docker-address-pools", O, "no \"default-address-pools\"" } } },
	{ "defaults", "daemon-empty.json", {
	    { "docker-ipv6", W, NULL },
	    { "docker-ip6tables", W, "since Docker 27" },
	    { "docker-experimental", O, NULL },
	    { "docker-userland-proxy", W, NULL } } },
	{ "broken JSON names its line", "daemon-broken.json", {
	    { "docker-daemon-json", F, "daemon-broken.json:3:" },
	    { "docker-ipv6", -1, NULL } } },
	{ "strings are not booleans", "daemon-strings.json", {
	    { "docker-ipv6", F, "not a boolean" },
	    { "docker-ip6tables", O, NULL } } },
	{ "ipv6 without an IPv6 pool", "daemon-v4pools.json", {
	    { "docker-experimental", W, "before 27" },
	    { "docker-address-pools", W, "no IPv6 pool" } } },
	{ "not an object", "daemon-array.json", {
	    { "docker-daemon-json", F, "not a JSON object" } } },
	{ "missing file given", "no-such.json", {
	    { "docker-daemon-json", F, "No such file" } } },
};

START_TEST(test_daemon_json)
{
	struct doctor	*d = doctor_new();
	char		*path = data(daemon_cases[_i].file);

	docker_daemon_json(d, path, 1);
	expect_all(d, daemon_cases[_i].label, daemon_cases[_i].e, 7);
	free(path);
	doctor_free(d);
}
END_TEST

START_TEST(test_daemon_json_default_absent)
{
	struct doctor	*d = doctor_new();
	char		*path = data("no-such.json");

	/* The default path may be absent: not a Docker host. */
	docker_daemon_json(d, path, 0);
	ck_assert_int_eq(doctor_find(d, "docker-daemon-json", NULL), DS_OK);
	ck_assert_int_eq(doctor_status(d), DS_OK);
	free(path);
	doctor_free(d);
}
END_TEST

static const struct {
	const char	*label;
	const char	*file;
	struct expect	 e[4];
} compose_cases[] = {
	{ "the fix, with anchors and merge keys", "compose-good.yaml", {
	    { "compose-networks", O, "mail (fd00:cafe:face::/64)" },
	    { "compose-mail-service", O, "25:25, [::]:587:587/tcp, 465" },
	    { "compose-file", -1, NULL } } },
	{ "port 25 on a network without IPv6", "compose-proxied.yaml", {
	    { "compose-networks", W, "no network with IPv6" },
	    { "compose-mail-service", F, "service mailserver publishes "
		"25:25, 587:587" } } },
	{ "half of IPv6", "compose-half.yaml", {
	    { "compose-networks", W, "only half" },
	    { "compose-mail-service", F, "service mx" } } },
	{ "the default network", "compose-default.yaml", {
	    { "compose-networks", O, NULL },
	    { "compose-mail-service", O, "network default" } } },
	{ "host networking", "compose-host.yaml", {
	    { "compose-mail-service", O, "host's network" } } },
	{ "bad indentation", "compose-broken.yaml", {
	    { "compose-file", F, "line 4" } } },
	{ "billion laughs", "compose-bomb.yaml", {
	    { "compose-file", F, "more than 100000 nodes" } } },
	{ "no mail service", "compose-nomail.yaml", {
	    { "compose-mail-service", W, "no service publishes" } } },
	{ "missing file", "no-such.yaml", {
	    { "compose-file", F, "No such file" } } },
	{ "odd shapes everywhere", "compose-odd.yaml", {
	    { "compose-networks", W, NULL },
	    { "compose-mail-service", O, "service mail publishes no SMTP" },
	    { "compose-file", -1, NULL } } },
	{ "services as a list", "compose-list.yaml", {
	    { "compose-file", F, "no services" } } },
};

START_TEST(test_compose)
{
	struct doctor	*d = doctor_new();
	char		*path = data(compose_cases[_i].file);

	docker_compose(d, path);
	expect_all(d, compose_cases[_i].label, compose_cases[_i].e, 4);
	free(path);
	doctor_free(d);
}
END_TEST

static const struct {
	const char	*label;
	const char	*root;
	struct expect	 e[4];
} root_cases[] = {
	{ "Docker container without IPv6", "root-docker", {
	    { "container", O, "/.dockerenv" },
	    { "ipv6-address", W, "docker-proxy" },
	    { "ipv6-route", W, NULL } } },
	{ "Docker container with IPv6", "root-fixed", {
	    { "container", O, "/.dockerenv" },
	    { "ipv6-address", O, "fd00:cafe:face::2/64 on eth0" },
	    { "ipv6-route", O, "via fd00:cafe:face::1 on eth0" } } },
	{ "host, link-local router", "root-host", {
	    { "container", O, "not in a container" },
	    { "ipv6-address", O, "2001:db8::5/64" },
	    { "ipv6-route", O, "via fe80::1 on eth0" } } },
	{ "Podman", "root-podman", {
	    { "container", O, "Podman" },
	    { "ipv6-address", W, NULL } } },
	{ "cgroup", "root-cgroup", {
	    { "container", O, "/docker/0123abcd4567" } } },
	{ "systemd's marker", "root-systemd", {
	    { "container", O, "\"lxc\"" } } },
};

START_TEST(test_root)
{
	struct doctor	*d = doctor_new();
	char		*root = data(root_cases[_i].root);

	doctor_container(d, root);
	doctor_ipv6(d, root);
	expect_all(d, root_cases[_i].label, root_cases[_i].e, 4);
	free(root);
	doctor_free(d);
}
END_TEST

/* Who holds the listening sockets: natguard.socket, or natguard. */
static const struct {
	const char	*label;
	const char	*root;
	const char	*conf;
	int		 systemd;
	struct expect	 e[1];
	const char	*first;		/* the first endpoint, or NULL */
} socket_cases[] = {
	{ "natguard.socket as shipped", "root-sd", "", 1, {
	    { "listen-sockets", O, "natguard.socket): inet:127.0.0.1:10041, "
		"across restarts" } }, "inet:127.0.0.1:10041" },
	{ "a drop-in moves it to Postfix's queue directory",
	    "root-sk", "", 1, {
	    { "listen-sockets", W, "listen = inet:127.0.0.1:10041 in "
		"natguard.conf is not used" } },
	    "unix:/var/spool/postfix/private/natguard" },
	{ "and listen says the same", "root-sk",
	    "listen = unix:/var/spool/postfix/private/natguard\n", 1, {
	    { "listen-sockets", O, "unix:/var/spool/postfix/private/natguard" } },
	    "unix:/var/spool/postfix/private/natguard" },
	{ "installed, not enabled", "root-so", "", 0, {
	    { "listen-sockets", O, "natguard binds listen itself" } }, NULL },
	{ "no systemd at all", "root-docker", "", 0, {
	    { "listen-sockets", O, "natguard binds listen itself" } }, NULL },
};

START_TEST(test_sockets)
{
	struct doctor	*d = doctor_new();
	struct strlist	 eps = { NULL, 0 };
	struct config	*cfg;
	char		*root = data(socket_cases[_i].root), *err;

	cfg = config_parse("t", socket_cases[_i].conf,
	    strlen(socket_cases[_i].conf), &err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(doctor_sockets(d, cfg, root, &eps),
	    socket_cases[_i].systemd);
	expect_all(d, socket_cases[_i].label, socket_cases[_i].e, 1);
	if (socket_cases[_i].first != NULL) {
		ck_assert_uint_eq(eps.n, 1);
		ck_assert_str_eq(eps.v[0], socket_cases[_i].first);
	} else
		ck_assert_uint_eq(eps.n, 0);
	strlist_clear(&eps);
	config_free(cfg);
	free(root);
	doctor_free(d);
}
END_TEST

/* The engine's defaults: rootless ones hide clients, with their fix. */
static const struct {
	const char	*label;
	enum engine	 kind;
	const char	*conf;
	struct expect	 e[1];
	const char	*fix;		/* a substring of it, or NULL */
} engine_cases[] = {
	{ "rootless Podman", ENGINE_PODMAN_ROOTLESS, "", {
	    { "container-engine", W, "rootlessport, hands every client over "
		"from the container's own address" } },
	    "port_handler=slirp4netns" },
	{ "rootless Podman, loopback skipped by hand", ENGINE_PODMAN_ROOTLESS,
	    "skip_addresses = 127.0.0.1\n", {
	    { "container-engine", W, "skip_addresses is set" } }, "pasta" },
	{ "rootless Docker", ENGINE_DOCKER_ROOTLESS, "", {
	    { "container-engine", W, "rootlesskit's builtin" } },
	    "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns" },
	{ "Docker", ENGINE_DOCKER, "", {
	    { "container-engine", O, "Docker (test)" } }, NULL },
	{ "Podman", ENGINE_PODMAN, "", {
	    { "container-engine", O, "keep IPv4 clients' addresses" } }, NULL },
};

START_TEST(test_engine)
{
	struct doctor		*d = doctor_new();
	struct engine_info	 info = { engine_cases[_i].kind, "test", 0 };
	struct config		*cfg;
	const char		*ev;
	char			*err;
	json_t			*j, *fix;

	cfg = config_parse("t", engine_cases[_i].conf,
	    strlen(engine_cases[_i].conf), &err);
	ck_assert_msg(cfg != NULL, "%s: %s", engine_cases[_i].label, err);
	doctor_engine(d, cfg, &info);
	expect_all(d, engine_cases[_i].label, engine_cases[_i].e, 1);
	ck_assert(doctor_find(d, "container-engine", &ev) >= 0);
	j = doctor_json(d);
	fix = json_object_get(json_array_get(json_object_get(j, "checks"), 0),
	    "fix");
	if (engine_cases[_i].fix == NULL)
		ck_assert_msg(json_is_null(fix), "%s", engine_cases[_i].label);
	else
		ck_assert_msg(json_is_string(fix) && strstr(json_string_value(
		    fix), engine_cases[_i].fix) != NULL, "%s: fix",
		    engine_cases[_i].label);
	json_decref(j);
	config_free(cfg);
	doctor_free(d);
}
END_TEST

/* No container, no engine check. */
START_TEST(test_engine_none)
{
	struct doctor		*d = doctor_new();
	struct engine_info	 info = { ENGINE_NONE, "test", 0 };
	struct config		*cfg = config_new();

	doctor_engine(d, cfg, &info);
	ck_assert_int_eq(doctor_find(d, "container-engine", NULL), -1);
	config_free(cfg);
	doctor_free(d);
}
END_TEST

/* Postfix's settings as postconf -xh prints them. */
static const struct {
	const char		*label;
	const char		*conf;	/* natguard.conf lines */
	struct pf_settings	 pf;
	struct expect		 e[4];
} pf_cases[] = {
	{ "as conf/postfix says", "", {
	    "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128",
	    "reject_non_fqdn_recipient, check_policy_service "
	    "inet:127.0.0.1:10041, permit_mynetworks, reject_unauth_destination",
	    "permit_mynetworks, defer_unauth_destination", "100s",
	    "/var/spool/postfix" }, {
	    { "postfix-mynetworks", O, NULL },
	    { "postfix-policy", O, "before permit_mynetworks" },
	    { "postfix-policy-timeout", O, NULL } } },
	{ "the open-relay trap", "", {
	    "127.0.0.0/8 172.16.0.0/12",
	    "permit_mynetworks, check_policy_service inet:127.0.0.1:10041",
	    "", "10s", "/var/spool/postfix" }, {
	    { "postfix-mynetworks", F, "172.16.0.0/12 contains the gateway "
		"172.20.0.1" },
	    { "postfix-policy", F, "after permit_mynetworks" },
	    { "postfix-policy-timeout", W, "not longer" } } },
	{ "after permit_mynetworks, no gateway in it", "", {
	    "127.0.0.0/8", "permit_mynetworks check_policy_service "
	    "inet:localhost:10041", "", "2m", "/var/spool/postfix" }, {
	    { "postfix-mynetworks", O, NULL },
	    { "postfix-policy", W, "after permit_mynetworks" },
	    { "postfix-policy-timeout", O, NULL } } },
	{ "another policy service", "", {
	    "hash:/etc/postfix/network_table 127.0.0.0/8",
	    "check_policy_service unix:private/policyd-spf", "", "20",
	    "/var/spool/postfix" }, {
	    { "postfix-mynetworks", O, "not read: hash:/etc/postfix/" },
	    { "postfix-policy", F, "unix:private/policyd-spf" },
	    { "postfix-policy-timeout", W, NULL } } },
	{ "unix socket under the queue directory",
	    "listen = unix:/var/spool/postfix/private/natguard\n", {
	    "127.0.0.0/8", "check_policy_service { unix:private/natguard, "
	    "timeout=10s }, permit_mynetworks", "", "1h",
	    "/var/spool/postfix" }, {
	    { "postfix-policy", O, NULL } } },
	{ "in the relay restrictions", "", {
	    "[::1]/128", "", "check_policy_service inet:127.0.0.1:10041, "
	    "permit_mynetworks", "soon", "/var/spool/postfix" }, {
	    { "postfix-policy", O, "smtpd_relay_restrictions" },
	    { "postfix-policy-timeout", W, "not understood" } } },
	{ "IPv6 gateway in mynetworks", "", {
	    "[fd00:cafe::]/64", "check_policy_service inet:127.0.0.1:10041",
	    "", "100s", "/var/spool/postfix" }, {
	    { "postfix-mynetworks", F, "fd00:cafe::1" } } },
};

START_TEST(test_postfix)
{
	struct config	*cfg;
	struct gwset	*gs;
	struct doctor	*d = doctor_new();
	struct net	 n;
	const char	*why;
	char		*conf, *err = NULL;

	ck_assert(asprintf(&conf, "gateways = none\n%s", pf_cases[_i].conf) !=
	    -1);
	cfg = config_parse("test.conf", conf, strlen(conf), &err);
	ck_assert_msg(cfg != NULL, "%s", err);
	gs = gwset_new();
	ck_assert_int_eq(net_parse("172.20.0.1", &n, &why), 0);
	gwset_add(gs, &n, GW_DEFAULT_ROUTE, "eth0");
	ck_assert_int_eq(net_parse("fd00:cafe::1", &n, &why), 0);
	gwset_add(gs, &n, GW_DEFAULT_ROUTE, "eth0");
	postfix_judge(d, cfg, gs, &pf_cases[_i].pf);
	expect_all(d, pf_cases[_i].label, pf_cases[_i].e, 4);
	doctor_free(d);
	gwset_free(gs);
	config_free(cfg);
	free(conf);
}
END_TEST

START_TEST(test_json)
{
	struct doctor	*d = doctor_new();
	json_t		*o, *c;

	doctor_add(d, DS_OK, "one", "never shown", "fine");
	doctor_add(d, DS_WARN, "two", "do this", "hmm");
	o = doctor_json(d);
	ck_assert_str_eq(json_string_value(json_object_get(o, "status")),
	    "warn");
	c = json_array_get(json_object_get(o, "checks"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(c, "status")), "ok");
	ck_assert(json_is_null(json_object_get(c, "fix")));
	c = json_array_get(json_object_get(o, "checks"), 1);
	ck_assert_str_eq(json_string_value(json_object_get(c, "name")), "two");
	ck_assert_str_eq(json_string_value(json_object_get(c, "fix")),
	    "do this");
	json_decref(o);
	doctor_add(d, DS_FAIL, "three", "fix", "broken");
	ck_assert_int_eq(doctor_status(d), DS_FAIL);
	doctor_free(d);
	doctor_free(NULL);
}
END_TEST

Suite *
doctor_suite(void)
{
	Suite	*s = suite_create("doctor");
	TCase	*tc = tcase_create("doctor");

	tcase_add_loop_test(tc, test_daemon_json, 0, NELEMS(daemon_cases));
	tcase_add_test(tc, test_daemon_json_default_absent);
	tcase_add_loop_test(tc, test_compose, 0, NELEMS(compose_cases));
	tcase_add_loop_test(tc, test_root, 0, NELEMS(root_cases));
	tcase_add_loop_test(tc, test_sockets, 0, NELEMS(socket_cases));
	tcase_add_loop_test(tc, test_engine, 0, NELEMS(engine_cases));
	tcase_add_test(tc, test_engine_none);
	tcase_add_loop_test(tc, test_postfix, 0, NELEMS(pf_cases));
	tcase_add_test(tc, test_json);
	suite_add_tcase(s, tc);
	return (s);
}
