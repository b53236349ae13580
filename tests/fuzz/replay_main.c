/*
 * The regression runner: feeds every file named on the command line, or found
 * in a folder named there, to LLVMFuzzerTestOneInput, once each, in name
 * order. Names starting with '.' and README files are skipped (.gitkeep keeps
 * an empty crashes/ folder in git). ctest runs one per target over its seed
 * corpus and its kept crash inputs, so both stay fixed in every build, with
 * any compiler; under FL_SANITIZE the sanitizers judge each input.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define INPUT_MAX (256u << 20) /* a bound for the runner itself, not a test */

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf;
	size_t n;

	if (f == NULL || fstat(fileno(f), &st) != 0 || st.st_size < 0 ||
	    (unsigned long long)st.st_size > INPUT_MAX) {
		fprintf(stderr, "replay: cannot read '%s': %s\n", path,
		        f ? "too large" : strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	n = (size_t)st.st_size;
	buf = malloc(n ? n : 1); /* exactly n bytes: an overread is caught */
	if (buf == NULL || fread(buf, 1, n, f) != n) {
		fprintf(stderr, "replay: cannot read '%s'\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int skip(const struct dirent *e)
{
	return e->d_name[0] != '.' && strncmp(e->d_name, "README", 6) != 0;
}

static int run_path(const char *path, unsigned *count)
{
	struct dirent **names;
	struct stat st;
	int n, i, rv = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	n = scandir(path, &names, skip, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: cannot read '%s': %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		size_t len = strlen(path) + strlen(names[i]->d_name) + 2;
		char *child = malloc(len);

		snprintf(child, len, "%s/%s", path, names[i]->d_name);
		if (stat(child, &st) == 0 && S_ISREG(st.st_mode)) {
			(*count)++;
			if (run_file(child) != 0)
				rv = -1;
		}
		free(child);
		free(names[i]);
	}
	free(names);
	return rv;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int rv = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &count) != 0)
			rv = 1;
	fprintf(stderr, "replay: %u inputs, %s\n", count, rv ? "some unreadable" : "no crash");
	return rv;
}
