/*
 * Fuzz target: natguard audit's reading of logs, line by line, in any of
 * the syslog forms or audit_log JSON, and the summary it prints.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "natguard.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct audit_sum	*s = audit_sum_new(0);
	char			*text, *line, *save = NULL;

	text = xstrndup((const char *)data, len);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		audit_sum_line(s, line);
	json_decref(audit_sum_json(s));
	audit_sum_free(s);
	free(text);
	return (0);
}
