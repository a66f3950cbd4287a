/*
 * Fuzz target: the configuration parser, and printing what it accepted
 * (natguard config): a file an administrator wrote, or a broken one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "natguard.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct config	*cfg;
	char		*err = NULL;
	FILE		*f;

	cfg = config_parse("fuzz.conf", (const char *)data, len, &err);
	if (cfg == NULL) {
		if (err == NULL)
			abort();	/* every refusal says why */
		free(err);
		return (0);
	}
	if ((f = fopen("/dev/null", "w")) == NULL)
		abort();
	config_print(cfg, f);
	fclose(f);
	config_free(cfg);
	return (0);
}
