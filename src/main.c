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

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natguard.h"

#ifndef NATGUARD_CONF
#define NATGUARD_CONF	"/etc/natguard/natguard.conf"
#endif

static NG_DEAD void
usage(int status)
{
	FILE	*f = status == 0 ? stdout : stderr;

	fprintf(f,
	    "usage: natguard [-c FILE] [-l ENDPOINT]... [-d] [-v]...\n"
	    "       natguard check [-c FILE] [--json] [NAME=VALUE ...]\n"
	    "       natguard gateways [-c FILE] [--json] [--forget ADDR]\n"
	    "       natguard config [-c FILE]\n"
	    "       natguard doctor [-c FILE] [--json] [--daemon-json FILE] "
	    "[--compose FILE]\n"
	    "                       [--postfix-dir DIR]\n"
	    "       natguard audit [--json] [--since TIME] [LOGFILE ...]\n"
	    "       natguard migrate --from-policyd-spf FILE\n"
	    "       natguard -V | --version | -h | --help\n"
	    "default configuration file: %s\n", NATGUARD_CONF);
	exit(status);
}

/*
 * The configuration: -c FILE must exist; the default file may be missing,
 * which means built-in defaults.  Errors exit 2 with FILE:LINE.
 */
static struct config *
load(const char *path, const char **used)
{
	struct config	*cfg;
	char		*err;

	if (path == NULL && access(NATGUARD_CONF, F_OK) == -1 &&
	    errno == ENOENT) {
		*used = NULL;
		return (config_new());
	}
	*used = path ? path : NATGUARD_CONF;
	if ((cfg = config_load(*used, &err)) == NULL) {
		fprintf(stderr, "natguard: %s\n", err);
		free(err);
		exit(2);
	}
	return (cfg);
}

enum { OPT_JSON = 256, OPT_SINCE, OPT_DAEMON_JSON, OPT_COMPOSE, OPT_POSTFIX,
    OPT_FORGET, OPT_FROM_POLICYD_SPF };

static const struct option longopts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "daemon-json", required_argument, NULL, OPT_DAEMON_JSON },
	{ "compose", required_argument, NULL, OPT_COMPOSE },
	{ "postfix-dir", required_argument, NULL, OPT_POSTFIX },
	{ "forget", required_argument, NULL, OPT_FORGET },
	{ "from-policyd-spf", required_argument, NULL, OPT_FROM_POLICYD_SPF },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* natguard check|gateways|config|doctor|audit [-c FILE] [OPTIONS] [ARGS] */
static int
subcommand(const char *name, int argc, char **argv)
{
	struct config	*cfg;
	const char	*path = NULL, *used;
	const char	*daemon_json = NULL, *compose = NULL, *pfdir = NULL;
	const char	*forget = NULL, *policyd_spf = NULL;
	time_t		 since = 0;
	int		 ch, json = 0, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case OPT_JSON:
			if (strcmp(name, "config") == 0)
				usage(2);
			json = 1;
			break;
		case OPT_SINCE:
			if (strcmp(name, "audit") != 0 ||
			    audit_parse_time(optarg, &since) != 0) {
				fprintf(stderr, "natguard: --since %s: expected "
				    "YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS\n",
				    optarg);
				exit(2);
			}
			break;
		case OPT_DAEMON_JSON:
		case OPT_COMPOSE:
		case OPT_POSTFIX:
			if (strcmp(name, "doctor") != 0)
				usage(2);
			if (ch == OPT_DAEMON_JSON)
				daemon_json = optarg;
			else if (ch == OPT_COMPOSE)
				compose = optarg;
			else
				pfdir = optarg;
			break;
		case OPT_FORGET:
			if (strcmp(name, "gateways") != 0)
				usage(2);
			forget = optarg;
			break;
		case OPT_FROM_POLICYD_SPF:
			if (strcmp(name, "migrate") != 0)
				usage(2);
			policyd_spf = optarg;
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	argc -= optind;
	argv += optind;
	if (strcmp(name, "audit") == 0)
		return (cmd_audit(json, since, argc, argv));
	if (strcmp(name, "migrate") == 0) {
		if (argc > 0 || json || policyd_spf == NULL)
			usage(2);
		return (cmd_migrate(policyd_spf, stdout));
	}
	if (argc > 0 && strcmp(name, "check") != 0)
		usage(2);
	cfg = load(path, &used);
	log_set_level(LOG_LVL_WARNING);
	if (strcmp(name, "config") != 0) {
		char	*msg, *value;

		/* doctor --postfix-dir: that Postfix's mynetworks too. */
		if (pfdir != NULL && setenv("MAIL_CONFIG", pfdir, 1) == -1)
			fatal("setenv");
		/* doctor says it as a check of its own. */
		if ((msg = postfix_mynetworks(cfg, &value)) != NULL &&
		    strcmp(name, "doctor") != 0)
			log_warnx("%s", msg);
		free(msg);
		free(value);
	}
	if (strcmp(name, "check") == 0)
		rc = cmd_check(cfg, json, argc, argv);
	else if (strcmp(name, "gateways") == 0)
		rc = cmd_gateways(cfg, json, forget);
	else if (strcmp(name, "doctor") == 0)
		rc = cmd_doctor(cfg, json, daemon_json, compose, pfdir);
	else
		rc = cmd_config(cfg);
	config_free(cfg);
	return (rc);
}

int
main(int argc, char **argv)
{
	struct config	*cfg;
	const char	*path = NULL, *used;
	char		*listen = NULL, *t, *err;
	const char	*why;
	int		 ch, daemonize = 0, verbose = 0, rc;

	if (argc == 2 && strcmp(argv[1], "spf-worker") == 0)
		return (spfworker_main());
	spfworker_exec_self();
	if (argc > 1 && (strcmp(argv[1], "check") == 0 ||
	    strcmp(argv[1], "gateways") == 0 ||
	    strcmp(argv[1], "config") == 0 || strcmp(argv[1], "audit") == 0 ||
	    strcmp(argv[1], "migrate") == 0 ||
	    strcmp(argv[1], "doctor") == 0))
		return (subcommand(argv[1], argc - 1, argv + 1));

	while ((ch = getopt_long(argc, argv, "c:l:dvVh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'l':
			if (endpoint_check(optarg, &why) != 0) {
				fprintf(stderr, "natguard: -l %s: %s\n",
				    optarg, why);
				exit(2);
			}
			if (listen == NULL)
				listen = xstrdup(optarg);
			else {
				xasprintf(&t, "%s, %s", listen, optarg);
				free(listen);
				listen = t;
			}
			break;
		case 'd':
			daemonize = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("natguard %s\n", PACKAGE_VERSION);
			return (0);
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);

	cfg = load(path, &used);
	if (listen != NULL) {
		if (config_override(cfg, "listen", listen, &err) != 0) {
			fprintf(stderr, "natguard: -l: %s\n", err);
			exit(2);
		}
	}
	rc = server_main(cfg, used, daemonize, verbose > 0, listen);
	free(listen);
	return (rc);
}
