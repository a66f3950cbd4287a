#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"
#include "unit.h"

/* Routing tables from tests/data and the default gateways in them. */
static const struct {
	const char	*label;
	const char	*file;
	int		 v6;
	const char	*want[3];	/* "address iface" */
} tables[] = {
	{ "IPv4 in a container", "route-docker.txt", 0,
	    { "172.20.0.1 eth0" } },
	{ "IPv4 without a default route", "route-nodefault.txt", 0, { NULL } },
	{ "IPv6 in a container", "ipv6_route-docker.txt", 1,
	    { "fdca:fe00::1 eth0" } },
	{ "IPv6 garbage", "ipv6_route-garbage.txt", 1, { NULL } },
};

START_TEST(test_routes)
{
	struct gwset		*gs = gwset_new();
	const struct gateway	*g;
	char			*text, buf[INET6_ADDRSTRLEN], got[80];
	size_t			 i, n = 0;

	text = fixture(tables[_i].file);
	if (tables[_i].v6)
		gateway_parse_route6(gs, text);
	else
		gateway_parse_route(gs, text);
	while (n < 3 && tables[_i].want[n] != NULL)
		n++;
	ck_assert_msg(gwset_count(gs) == n, "%s: %zu gateways",
	    tables[_i].label, gwset_count(gs));
	for (i = 0; i < n; i++) {
		g = gwset_get(gs, i);
		addr_format(&g->net.addr, buf, sizeof(buf));
		snprintf(got, sizeof(got), "%s %s", buf, g->iface);
		ck_assert_msg(strcmp(got, tables[_i].want[i]) == 0, "%s: %s",
		    tables[_i].label, got);
		ck_assert_int_eq(g->source, GW_DEFAULT_ROUTE);
		ck_assert_int_eq(g->net.prefix, tables[_i].v6 ? 128 : 32);
	}
	free(text);
	gwset_free(gs);
}
END_TEST

START_TEST(test_set)
{
	struct gwset		*gs = gwset_new();
	const struct gateway	*g;
	struct net		 n;
	struct addr		 a;
	const char		*why;
	json_t			*j, *e;

	ck_assert_int_eq(net_parse("172.20.0.0/16", &n, &why), 0);
	ck_assert_int_eq(gwset_add(gs, &n, GW_STATIC, NULL), 0);
	ck_assert_int_eq(gwset_add(gs, &n, GW_SUBNET, "eth0"), -1);
	ck_assert_int_eq(net_parse("fd00::1", &n, &why), 0);
	ck_assert_int_eq(gwset_add(gs, &n, GW_BRIDGE, "docker0"), 0);
	ck_assert_int_eq(gwset_count(gs), 2);

	ck_assert_int_eq(addr_parse("::ffff:172.20.9.9", &a), 0);
	ck_assert_ptr_ne(g = gwset_find(gs, &a), NULL);
	ck_assert_int_eq(g->source, GW_STATIC);
	ck_assert_int_eq(addr_parse("fd00::1", &a), 0);
	ck_assert_ptr_ne(g = gwset_find(gs, &a), NULL);
	ck_assert_str_eq(g->iface, "docker0");
	ck_assert_int_eq(addr_parse("fd00::2", &a), 0);
	ck_assert_ptr_eq(gwset_find(gs, &a), NULL);

	j = gwset_json(gs);
	e = json_array_get(json_object_get(j, "gateways"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(e, "address")),
	    "172.20.0.0");
	ck_assert_int_eq(json_integer_value(json_object_get(e, "prefix")), 16);
	ck_assert_str_eq(json_string_value(json_object_get(e, "source")),
	    "static");
	ck_assert(json_is_null(json_object_get(e, "interface")));
	e = json_array_get(json_object_get(j, "gateways"), 1);
	ck_assert_str_eq(json_string_value(json_object_get(e, "interface")),
	    "docker0");
	ck_assert_str_eq(json_string_value(json_object_get(e, "source")),
	    "bridge-interface");
	json_decref(j);
	gwset_free(gs);
	gwset_free(NULL);
}
END_TEST

/* gateways = none scans nothing at all; static entries come first. */
START_TEST(test_scan_config)
{
	struct config	*cfg;
	struct gwset	*gs;
	char		*err;
	const char	*none = "gateways = none\n";
	const char	*stat = "gateways = 198.51.100.7\n";

	cfg = config_parse("t", none, strlen(none), &err);
	gs = gateway_scan(cfg);
	ck_assert_int_eq(gwset_count(gs), 0);
	gwset_free(gs);
	config_free(cfg);

	cfg = config_parse("t", stat, strlen(stat), &err);
	gs = gateway_scan(cfg);
	ck_assert_int_eq(gwset_count(gs), 1);
	ck_assert_int_eq(gwset_get(gs, 0)->source, GW_STATIC);
	gwset_free(gs);
	config_free(cfg);
}
END_TEST

Suite *
gateway_suite(void)
{
	Suite	*s = suite_create("gateway");
	TCase	*tc = tcase_create("gateway");

	tcase_add_loop_test(tc, test_routes, 0, NELEMS(tables));
	tcase_add_test(tc, test_set);
	tcase_add_test(tc, test_scan_config);
	suite_add_tcase(s, tc);
	return (s);
}
