#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "natguard.h"
#include "unit.h"

/*
 * What the engines leave in a container, as measured on Debian 12 (docker.io
 * 20.10 rootful and rootless, podman 4.3 rootful and rootless), and what
 * engine_classify() makes of it.
 */
#define ID_MAP		"         0          0 4294967295\n"
#define ROOTLESS_MAP	"         0       1001          1\n" \
			"         1     100000      65536\n"
#define REMAP_MAP	"         0     165536      65536\n"

static const struct {
	const char		*label;
	struct engine_evidence	 ev;
	enum engine		 want;
	const char		*evidence;	/* in the words */
} cases[] = {
	{ "no trace: a host", { 0, 0, NULL, NULL, "0::/init.scope\n", NULL,
	    ID_MAP }, ENGINE_NONE, "no /.dockerenv" },
	{ "a user namespace is no container", { 0, 0, NULL, NULL, NULL, NULL,
	    ROOTLESS_MAP }, ENGINE_NONE, "no /.dockerenv" },
	{ "Docker", { 1, 0, NULL, NULL, "0::/\n", NULL, ID_MAP },
	    ENGINE_DOCKER, "/.dockerenv exists" },
	{ "rootless Docker", { 1, 0, NULL, NULL, "0::/\n", NULL,
	    ROOTLESS_MAP }, ENGINE_DOCKER_ROOTLESS, "uid 0 is uid 1001 outside" },
	{ "Docker with userns-remap is rootful", { 1, 0, NULL, NULL, NULL,
	    NULL, REMAP_MAP }, ENGINE_DOCKER, "/.dockerenv exists" },
	{ "Podman", { 0, 1, "", "podman", NULL, NULL, ID_MAP },
	    ENGINE_PODMAN, "/run/.containerenv exists" },
	{ "rootless Podman", { 0, 1, "", "podman", NULL, NULL, ROOTLESS_MAP },
	    ENGINE_PODMAN_ROOTLESS, "uid 0 is uid 1001 outside" },
	{ "rootless Podman, privileged: .containerenv says", { 0, 1,
	    "engine=\"podman-4.3.1\"\nrootless=1\n", "podman", NULL, NULL,
	    ID_MAP }, ENGINE_PODMAN_ROOTLESS, "rootless=1" },
	{ "Podman by $container alone", { 0, 0, NULL, "podman", NULL, NULL,
	    NULL }, ENGINE_PODMAN, "container=podman" },
	{ "another engine's $container", { 0, 0, NULL, "oci", NULL, NULL,
	    ROOTLESS_MAP }, ENGINE_CONTAINER, "container=oci" },
	{ "Docker by cgroup", { 0, 0, NULL, NULL,
	    "12:pids:/docker/0123abcd4567\n", NULL, ID_MAP }, ENGINE_DOCKER,
	    "/docker/0123abcd4567" },
	{ "Podman by cgroup", { 0, 0, NULL, NULL,
	    "0::/machine.slice/libpod-0123abcd.scope\n", NULL, ROOTLESS_MAP },
	    ENGINE_PODMAN_ROOTLESS, "libpod-0123abcd" },
	{ "Kubernetes by cgroup", { 0, 0, NULL, NULL,
	    "1:cpu:/kubepods/pod1/abc\n", NULL, ID_MAP }, ENGINE_CONTAINER,
	    "kubepods" },
	{ "systemd's marker", { 0, 0, NULL, NULL, NULL, "lxc", ID_MAP },
	    ENGINE_CONTAINER, "\"lxc\"" },
	{ "garbage uid_map", { 1, 0, NULL, NULL, NULL, NULL, "x y z\n0 a\n" },
	    ENGINE_DOCKER, "/.dockerenv exists" },
};

START_TEST(test_classify)
{
	struct engine_info	info;

	engine_classify(&cases[_i].ev, &info);
	ck_assert_msg(info.kind == cases[_i].want, "%s: %s", cases[_i].label,
	    engine_name(info.kind));
	ck_assert_msg(strstr(info.evidence, cases[_i].evidence) != NULL,
	    "%s: evidence %s", cases[_i].label, info.evidence);
}
END_TEST

static char *
root_of(const char *name)
{
	char	*p;

	xasprintf(&p, "%s/doctor/%s", getenv("TESTDATA"), name);
	return (p);
}

/* engine_detect() reads the same from a root of fixtures. */
START_TEST(test_detect)
{
	struct engine_info	 info;
	char			*root = root_of("root-podman");

	engine_detect(root, &info);
	ck_assert_msg(info.kind == ENGINE_PODMAN_ROOTLESS, "%s: %s",
	    engine_name(info.kind), info.evidence);
	ck_assert_msg(strstr(info.evidence, "container=podman") == NULL,
	    "%s", info.evidence);
	free(root);
	root = root_of("root-host");
	engine_detect(root, &info);
	ck_assert_int_eq(info.kind, ENGINE_NONE);
	free(root);
}
END_TEST

/*
 * Under a rootless engine loopback joins an auto set (source loopback),
 * unless skip_addresses was chosen by hand; never under the others.
 * Rootless Docker adds its slirp4netns gateway (source slirp4netns).
 */
static const struct {
	const char	*label;
	enum engine	 kind;
	const char	*config;
	size_t		 loopback;	/* entries added, by source */
	size_t		 slirp;
} added_cases[] = {
	{ "rootless Podman", ENGINE_PODMAN_ROOTLESS, "", 2, 0 },
	{ "rootless Docker", ENGINE_DOCKER_ROOTLESS, "", 2, 2 },
	{ "rootless, skip_addresses by hand", ENGINE_PODMAN_ROOTLESS,
	    "skip_addresses = 127.0.0.0/8, ::1\n", 0, 0 },
	{ "rootless Docker, skip_addresses emptied", ENGINE_DOCKER_ROOTLESS,
	    "skip_addresses =\n", 0, 2 },
	{ "Docker", ENGINE_DOCKER, "", 0, 0 },
	{ "Podman", ENGINE_PODMAN, "", 0, 0 },
	{ "no container", ENGINE_NONE, "", 0, 0 },
};

START_TEST(test_added)
{
	struct engine_info	 info = { added_cases[_i].kind, "test", 0 };
	struct config		*cfg;
	struct gwset		*gs = gwset_new();
	char			*err;
	size_t			 i, lo = 0, slirp = 0;

	cfg = config_parse("t", added_cases[_i].config,
	    strlen(added_cases[_i].config), &err);
	ck_assert_msg(cfg != NULL, "%s: %s", added_cases[_i].label, err);
	gateway_add_engine(gs, cfg, &info);
	for (i = 0; i < gwset_count(gs); i++) {
		if (gwset_get(gs, i)->source == GW_LOOPBACK)
			lo++;
		else if (gwset_get(gs, i)->source == GW_SLIRP)
			slirp++;
		else
			ck_abort_msg("%s: source %s", added_cases[_i].label,
			    gw_source_name(gwset_get(gs, i)->source));
	}
	ck_assert_msg(lo == added_cases[_i].loopback && slirp ==
	    added_cases[_i].slirp, "%s: %zu loopback, %zu slirp4netns",
	    added_cases[_i].label, lo, slirp);
	ck_assert_str_eq(gw_source_name(GW_LOOPBACK), "loopback");
	ck_assert_str_eq(gw_source_name(GW_SLIRP), "slirp4netns");
	ck_assert_int_eq(gwset_engine(gs)->kind, added_cases[_i].kind);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

Suite *
engine_suite(void)
{
	Suite	*s = suite_create("engine");
	TCase	*tc = tcase_create("engine");

	tcase_add_loop_test(tc, test_classify, 0, NELEMS(cases));
	tcase_add_test(tc, test_detect);
	tcase_add_loop_test(tc, test_added, 0, NELEMS(added_cases));
	suite_add_tcase(s, tc);
	return (s);
}
