#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"
#include "unit.h"

/* A fixture from tests/data ($TESTDATA), whole, NUL-terminated. */
char *
fixture(const char *name)
{
	const char	*dir = getenv("TESTDATA");
	char		 path[1024], *buf;
	FILE		*f;
	long		 len;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/data", name);
	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "fixture %s: cannot open\n", path);
		abort();
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = xmalloc((size_t)len + 1);
	if (fread(buf, 1, (size_t)len, f) != (size_t)len)
		abort();
	buf[len] = '\0';
	fclose(f);
	return (buf);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(config_suite());
	srunner_add_suite(sr, request_suite());
	srunner_add_suite(sr, netaddr_suite());
	srunner_add_suite(sr, gateway_suite());
	srunner_add_suite(sr, decide_suite());
	srunner_add_suite(sr, report_suite());
	srunner_add_suite(sr, spfrecord_suite());
	srunner_add_suite(sr, logscan_suite());
	srunner_add_suite(sr, doctor_suite());
	srunner_add_suite(sr, engine_suite());
	srunner_add_suite(sr, hiders_suite());
	srunner_add_suite(sr, migrate_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
