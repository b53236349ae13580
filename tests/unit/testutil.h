/* Helpers shared by the Check suites: temporary folders and paths. */
#ifndef FL_TESTUTIL_H
#define FL_TESTUTIL_H

#include <stddef.h>

/* snprintf into out that fails the test when the result does not fit. */
void fl_test_fmt(char *out, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
/* Remove path and everything under it; missing is fine. */
void fl_test_rm_rf(const char *path);
/* Create a fresh folder $TMPDIR/<name>.XXXXXX (TMPDIR defaults to /tmp) into out. */
void fl_test_tmp_root(char *out, size_t n, const char *name);
/* The whole file, NUL-terminated (at most 1 MiB, else the test fails), its
 * length in *len if len is not NULL; NULL if it cannot be opened. Caller frees. */
char *fl_test_read_file(const char *path, size_t *len);

#endif
