#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fl_test_fmt(char *out, size_t n, const char *f, ...)
{
	va_list ap;
	int r;

	va_start(ap, f);
	r = vsnprintf(out, n, f, ap);
	va_end(ap);
	ck_assert_msg(r >= 0 && (size_t)r < n, "path too long");
}

void fl_test_rm_rf(const char *path)
{
	struct stat st;
	struct dirent *e;
	char sub[4096];
	DIR *d;

	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			fl_test_fmt(sub, sizeof(sub), "%s/%s", path, e->d_name);
			fl_test_rm_rf(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

void fl_test_tmp_root(char *out, size_t n, const char *name)
{
	const char *base = getenv("TMPDIR");

	fl_test_fmt(out, n, "%s/%s.XXXXXX", base && *base ? base : "/tmp", name);
	ck_assert_ptr_nonnull(mkdtemp(out));
}

char *fl_test_read_file(const char *path, size_t *len)
{
	const size_t max = 1024 * 1024;
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = malloc(max + 1);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, max + 1, f);
	fclose(f);
	ck_assert_msg(n <= max, "'%s' is over the test's size cap", path);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}
