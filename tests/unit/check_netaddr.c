#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>

#include <string.h>

#include "natguard.h"
#include "unit.h"

/* Client addresses as Postfix may send them, and their normal form. */
static const struct {
	const char	*label;
	const char	*in;
	const char	*out;	/* NULL: refused */
} addrs[] = {
	{ "IPv4", "172.20.0.1", "172.20.0.1" },
	{ "IPv4 zeros", "0.0.0.0", "0.0.0.0" },
	{ "IPv4 all ones", "255.255.255.255", "255.255.255.255" },
	{ "IPv4 digit counts", "100.64.10.9", "100.64.10.9" },
	{ "IPv6", "2001:db8::25", "2001:db8::25" },
	{ "IPv6 uncompressed", "2001:0db8:0000:0000:0000:0000:0000:0025",
	    "2001:db8::25" },
	{ "IPv4-mapped", "::ffff:172.20.0.1", "172.20.0.1" },
	{ "IPv4-mapped upper case", "::FFFF:10.0.0.1", "10.0.0.1" },
	{ "IPv4-mapped hex", "::ffff:ac14:1", "172.20.0.1" },
	{ "zone dropped", "fe80::1%eth0", "fe80::1" },
	{ "IPv4-compatible is IPv6", "::172.20.0.1", "::172.20.0.1" },
	{ "inet_aton short form", "10.1", NULL },
	{ "inet_aton CIDR-ish", "10/8", NULL },
	{ "leading zeros", "010.001.002.003", NULL },
	{ "hostname", "mail.example.org", NULL },
	{ "empty", "", NULL },
	{ "only zone", "%eth0", NULL },
	{ "unknown", "unknown", NULL },
	{ "trailing space", "10.0.0.1 ", NULL },
	{ "brackets", "[10.0.0.1]", NULL },
	{ "too long", "1111:2222:3333:4444:5555:6666:7777:8888:9999", NULL },
	{ "short string", "1", NULL },
};

START_TEST(test_addr)
{
	struct addr	a;
	char		buf[INET6_ADDRSTRLEN];
	int		rc = addr_parse(addrs[_i].in, &a);

	if (addrs[_i].out == NULL) {
		ck_assert_msg(rc == -1, "%s: accepted", addrs[_i].label);
		return;
	}
	ck_assert_msg(rc == 0, "%s: refused", addrs[_i].label);
	addr_format(&a, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, addrs[_i].out) == 0, "%s: %s",
	    addrs[_i].label, buf);
}
END_TEST

/* A network list, and which addresses fall in it. */
static const char *nets[] = {
	"10.0.0.0/8", "172.20.0.1", "2001:db8::/32", "::ffff:192.168.0.0/112",
	"fd00::1",
};

static const struct {
	const char	*label;
	const char	*addr;
	int		 index;	/* -1: none */
} matches[] = {
	{ "inside /8", "10.200.3.4", 0 },
	{ "edge of /8", "10.255.255.255", 0 },
	{ "outside /8", "11.0.0.0", -1 },
	{ "host entry", "172.20.0.1", 1 },
	{ "next to host entry", "172.20.0.2", -1 },
	{ "IPv6 /32", "2001:db8:ffff::1", 2 },
	{ "outside IPv6 /32", "2001:db9::1", -1 },
	{ "mapped client in IPv4 net", "::ffff:10.1.1.1", 0 },
	{ "mapped net, IPv4 client", "192.168.3.3", 3 },
	{ "IPv6 host", "fd00::1", 4 },
	{ "IPv4 never matches IPv6", "0.0.0.1", -1 },
};

START_TEST(test_match)
{
	struct netlist	*nl = netlist_new();
	struct net	 n;
	struct addr	 a;
	const char	*why;
	size_t		 i;

	for (i = 0; i < NELEMS(nets); i++) {
		ck_assert_msg(net_parse(nets[i], &n, &why) == 0, "%s: %s",
		    nets[i], why);
		netlist_add(nl, &n);
	}
	ck_assert_int_eq(netlist_count(nl), NELEMS(nets));
	ck_assert_int_eq(addr_parse(matches[_i].addr, &a), 0);
	ck_assert_msg(netlist_find(nl, &a) == matches[_i].index, "%s: %d",
	    matches[_i].label, netlist_find(nl, &a));
	netlist_free(nl);
}
END_TEST

static const struct {
	const char	*label;
	const char	*in;
	const char	*out;	/* net_format; NULL: refused */
} netspecs[] = {
	{ "host", "192.0.2.1", "192.0.2.1" },
	{ "host /32", "192.0.2.1/32", "192.0.2.1" },
	{ "network", "192.0.2.0/24", "192.0.2.0/24" },
	{ "everything", "0.0.0.0/0", "0.0.0.0/0" },
	{ "IPv6 everything", "::/0", "::/0" },
	{ "mapped network", "::ffff:10.0.0.0/104", "10.0.0.0/8" },
	{ "mapped prefix too short", "::ffff:10.0.0.0/95", NULL },
	{ "bracketed", "[fd00::]/8", "fd00::/8" },
	{ "host bits", "192.0.2.1/24", NULL },
	{ "IPv6 host bits", "fd00::1/64", NULL },
	{ "empty prefix", "10.0.0.0/", NULL },
	{ "prefix 33", "10.0.0.0/33", NULL },
	{ "prefix 129", "::/129", NULL },
	{ "zone", "fe80::1%eth0", NULL },
};

START_TEST(test_net)
{
	struct net	 n;
	const char	*why;
	char		 buf[64];
	int		 rc = net_parse(netspecs[_i].in, &n, &why);

	if (netspecs[_i].out == NULL) {
		ck_assert_msg(rc == -1, "%s: accepted", netspecs[_i].label);
		return;
	}
	ck_assert_msg(rc == 0, "%s: %s", netspecs[_i].label, why);
	net_format(&n, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, netspecs[_i].out) == 0, "%s: %s",
	    netspecs[_i].label, buf);
}
END_TEST

START_TEST(test_everything)
{
	struct netlist	*nl = netlist_new();
	struct net	 n;
	struct addr	 a;
	const char	*why;

	ck_assert_int_eq(net_parse("0.0.0.0/0", &n, &why), 0);
	netlist_add(nl, &n);
	ck_assert_int_eq(addr_parse("203.0.113.9", &a), 0);
	ck_assert_int_eq(netlist_find(nl, &a), 0);
	ck_assert_int_eq(addr_parse("2001:db8::1", &a), 0);
	ck_assert_int_eq(netlist_find(nl, &a), -1);
	ck_assert_int_eq(netlist_find(NULL, &a), -1);
	netlist_free(nl);
	netlist_free(NULL);
}
END_TEST

Suite *
netaddr_suite(void)
{
	Suite	*s = suite_create("netaddr");
	TCase	*tc = tcase_create("netaddr");

	tcase_add_loop_test(tc, test_addr, 0, NELEMS(addrs));
	tcase_add_loop_test(tc, test_match, 0, NELEMS(matches));
	tcase_add_loop_test(tc, test_net, 0, NELEMS(netspecs));
	tcase_add_test(tc, test_everything);
	suite_add_tcase(s, tc);
	return (s);
}
