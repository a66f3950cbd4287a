/*
 * The plain driver: every file of a fuzz target's seed corpus through its
 * LLVMFuzzerTestOneInput, on every build (make check), so the corpora
 * stay meaningful without clang.  The corpus is $FUZZ_CORPUS/NAME, or the
 * files and directories given as arguments.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

static int	files;

static int
one(const char *path)
{
	unsigned char	*buf;
	struct stat	 sb;
	FILE		*f;
	size_t		 n;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &sb) == -1) {
		perror(path);
		return (-1);
	}
	/* Exactly the file's size: an over-read is the sanitizer's to see. */
	buf = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1);
	n = fread(buf, 1, (size_t)sb.st_size, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	files++;
	return (0);
}

static int
walk(const char *path)
{
	struct dirent	*de;
	struct stat	 sb;
	DIR		*d;
	char		 sub[4096];
	int		 rc = 0;

	if (stat(path, &sb) == -1) {
		perror(path);
		return (-1);
	}
	if (!S_ISDIR(sb.st_mode))
		return (one(path));
	if ((d = opendir(path)) == NULL) {
		perror(path);
		return (-1);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (walk(sub) != 0)
			rc = -1;
	}
	closedir(d);
	return (rc);
}

int
main(int argc, char **argv)
{
	char	 dir[4096];
	int	 i, rc = 0;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			if (walk(argv[i]) != 0)
				rc = 1;
	} else {
		if (getenv("FUZZ_CORPUS") == NULL) {
			fprintf(stderr, "FUZZ_CORPUS is not set\n");
			return (1);
		}
		snprintf(dir, sizeof(dir), "%s/%s", getenv("FUZZ_CORPUS"),
		    FUZZ_NAME);
		rc = walk(dir) != 0;
	}
	printf("fuzz-%s: %d passed, %d failed\n", FUZZ_NAME, files, rc);
	return (rc);
}
