/*
 * Fuzz target: the policy protocol as a connection reads it.  Lines go to
 * the request parser exactly as conn.c hands them over (the newline cut
 * off, over-long lines refused), and every complete request is decided
 * with a fixed configuration and gateway set and written out as the log
 * line and the JSON object: the whole path a client's bytes take, short
 * of DNS.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

static struct config	*cfg;
static struct gwset	*gws;

static void
setup(void)
{
	static const char text[] = "gateways = 172.20.0.1, fd00:cafe::/64\n"
	    "nat_action = warn\nspf_whitelist = 192.0.2.0/24\n";
	struct net	 n;
	const char	*why;
	char		*err;

	if ((cfg = config_parse("fuzz.conf", text, sizeof(text) - 1, &err)) ==
	    NULL)
		abort();
	gws = gwset_new();
	if (net_parse("172.20.0.1", &n, &why) != 0)
		abort();
	gwset_add(gws, &n, GW_DEFAULT_ROUTE, "eth0");
	log_set_level(LOG_LVL_ERROR);
}

static void
decide_one(const struct request *req)
{
	struct decision	*d;
	struct buf	 b = { NULL, 0, 0 };

	d = decide(cfg, gws, req);
	report_logline(d, req, &b);
	json_decref(report_json(d));
	buf_free(&b);
	decision_free(d);
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct request	*req;
	const char	*p = (const char *)data, *end = p + len, *nl, *why;
	size_t		 n;

	if (cfg == NULL)
		setup();
	req = request_new();
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;	/* no whole line: the connection waits */
		n = (size_t)(nl - p);
		if (n > REQ_MAX_LINE)
			break;
		switch (request_add_line(req, p, n, &why)) {
		case REQ_MORE:
			break;
		case REQ_DONE:
			decide_one(req);
			request_reset(req);
			break;
		case REQ_ERROR:
			request_free(req);
			return (0);
		}
		p = nl + 1;
	}
	request_free(req);
	return (0);
}
