/*
 * Splitting and classifying SQL with libpg_query: data-driven cases from
 * $FL_TEST_DATA/split (format in its README), plus the helpers around them.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

#include "testutil.h"
#include "split.h"

#define CASES_MAX 1000

static char *cases[CASES_MAX]; /* "NN_name", sorted */
static size_t n_cases;
static char data_dir[4096];

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_cases(void)
{
	const char *root = getenv("FL_TEST_DATA");
	DIR *d;
	struct dirent *e;

	snprintf(data_dir, sizeof(data_dir), "%s/split", root ? root : "tests/data");
	d = opendir(data_dir);
	if (d == NULL) {
		fprintf(stderr, "check_split: cannot open '%s': %s\n", data_dir, strerror(errno));
		exit(EXIT_FAILURE);
	}
	while ((e = readdir(d)) != NULL && n_cases < CASES_MAX) {
		size_t len = strlen(e->d_name);

		if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0)
			cases[n_cases++] = strndup(e->d_name, len - 4);
	}
	closedir(d);
	qsort(cases, n_cases, sizeof(cases[0]), cmp_str);
}

static void free_cases(void)
{
	for (size_t i = 0; i < n_cases; i++)
		free(cases[i]);
}

static void flags_str(unsigned f, char *out)
{
	size_t k = 0;

	if (f & FL_SQL_TX_CONTROL)
		out[k++] = 'T';
	if (f & FL_SQL_NO_TX_BLOCK)
		out[k++] = 'N';
	if (f & FL_SQL_MAYBE_NO_TX)
		out[k++] = 'P';
	if (f & FL_SQL_DDL)
		out[k++] = 'D';
	if (f & FL_SQL_DML)
		out[k++] = 'M';
	if (k == 0)
		out[k++] = '-';
	out[k] = '\0';
}

static char *unescape(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	ck_assert_ptr_nonnull(out);
	for (; *s != '\0'; s++) {
		if (*s != '\\' || s[1] == '\0') {
			*o++ = *s;
			continue;
		}
		s++;
		*o++ = *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s == 't' ? '\t' : *s;
	}
	*o = '\0';
	return out;
}

START_TEST(data_case)
{
	const char *name = cases[_i];
	char path[4200], errbuf[FL_ERRBUF_SIZE] = "";
	char *sql, *expect, *nl;
	struct fl_sql_script s;
	enum fl_err rv;
	size_t next = 0;
	unsigned all = 0;
	bool want_error = false;

	snprintf(path, sizeof(path), "%s/%s.sql", data_dir, name);
	sql = fl_test_read_file(path, NULL);
	ck_assert_msg(sql != NULL, "cannot read '%s'", path);
	snprintf(path, sizeof(path), "%s/%s.expect", data_dir, name);
	expect = fl_test_read_file(path, NULL);
	ck_assert_msg(expect != NULL, "cannot read '%s'", path);

	rv = fl_sql_split(sql, &s, errbuf);
	for (char *ln = expect; ln != NULL && *ln != '\0'; ln = nl ? nl + 1 : NULL) {
		int line, pos = 0;
		char want_flags[8], got_flags[8];

		if ((nl = strchr(ln, '\n')) != NULL)
			*nl = '\0';
		if (ln[0] == '#' || ln[0] == '\0')
			continue;
		if (strncmp(ln, "error ", 6) == 0) {
			char want[FL_ERRBUF_SIZE];

			ck_assert_msg(sscanf(ln + 6, "%d %n", &line, &pos) == 1,
			              "%s: bad line '%s'", name, ln);
			snprintf(want, sizeof(want), "line %d: %s", line, ln + 6 + pos);
			ck_assert_msg(rv == FL_EPARSE, "%s: split gave %d, want FL_EPARSE", name,
			              rv);
			ck_assert_str_eq(errbuf, want);
			ck_assert_uint_eq(s.count, 0);
			ck_assert_ptr_null(s.stmts);
			want_error = true;
			continue;
		}
		ck_assert_msg(rv == FL_OK, "%s: split failed: %s", name, errbuf);
		if (strncmp(ln, "shape ", 6) == 0) {
			ck_assert_str_eq(fl_sql_shape_name(fl_sql_shape_of(&s)), ln + 6);
			continue;
		}
		ck_assert_msg(sscanf(ln, "%d %7s %n", &line, want_flags, &pos) == 2,
		              "%s: bad line '%s'", name, ln);
		ck_assert_msg(next < s.count, "%s: %zu statements, more expected", name, s.count);
		{
			const struct fl_sql_stmt *st = &s.stmts[next++];
			char *want_text = unescape(ln + pos);
			char *got_text = fl_sql_stmt_text(sql, st);

			flags_str(st->flags, got_flags);
			ck_assert_msg(st->line == line, "%s: statement %zu at line %d, want %d",
			              name, next, st->line, line);
			ck_assert_msg(strcmp(got_flags, want_flags) == 0,
			              "%s: statement %zu flags %s, want %s", name, next, got_flags,
			              want_flags);
			ck_assert_msg(strcmp(got_text, want_text) == 0,
			              "%s: statement %zu is [%s], want [%s]", name, next, got_text,
			              want_text);
			/* Text and offset agree: the statement starts at a token. */
			ck_assert_uint_eq(st->len, strlen(got_text));
			all |= st->flags;
			free(want_text);
			free(got_text);
		}
	}
	if (!want_error) {
		ck_assert_msg(rv == FL_OK, "%s: split failed: %s", name, errbuf);
		ck_assert_msg(next == s.count, "%s: %zu statements, want %zu", name, s.count, next);
		ck_assert_uint_eq(s.flags, all);
	}
	fl_sql_script_fini(&s);
	free(sql);
	free(expect);
}
END_TEST

static void same_split(const char *name, size_t limit, const struct fl_sql_script *a,
                       const struct fl_sql_script *b)
{
	ck_assert_msg(a->count == b->count, "%s (limit %zu): %zu statements, in pieces %zu", name,
	              limit, a->count, b->count);
	ck_assert_uint_eq(a->flags, b->flags);
	ck_assert(a->parsed == b->parsed);
	for (size_t i = 0; i < a->count; i++)
		ck_assert_msg(a->stmts[i].offset == b->stmts[i].offset &&
		                  a->stmts[i].len == b->stmts[i].len &&
		                  a->stmts[i].line == b->stmts[i].line &&
		                  a->stmts[i].flags == b->stmts[i].flags,
		              "%s (limit %zu): statement %zu differs in pieces", name, limit,
		              i + 1);
}

/*
 * Every case again, split as a big script is: in windows of the limit and
 * statement by statement, with limits from tiny (windows cut through
 * strings, comments and BEGIN ATOMIC bodies) to the whole file. Either the
 * same statements, lines and flags as parsed whole, the same error, or, when
 * the limit is below a statement's size, the error that says so.
 */
START_TEST(data_case_in_pieces)
{
	const char *name = cases[_i];
	char path[4200], errbuf[FL_ERRBUF_SIZE] = "", errbuf2[FL_ERRBUF_SIZE] = "";
	struct fl_sql_script whole, pieces;
	enum fl_err rv, rv2;
	size_t len;
	char *sql;

	snprintf(path, sizeof(path), "%s/%s.sql", data_dir, name);
	sql = fl_test_read_file(path, NULL);
	ck_assert_msg(sql != NULL, "cannot read '%s'", path);
	len = strlen(sql);
	rv = fl_sql_split(sql, &whole, errbuf);
	for (size_t limit = 8;; limit *= 2) {
		rv2 = fl_sql_split_limited(sql, 0, limit, &pieces, errbuf2);
		if (rv2 == FL_EPARSE && strstr(errbuf2, "more than flotilla hands") != NULL &&
		    limit < len) {
			ck_assert(!pieces.parsed);
			continue;
		}
		ck_assert_msg(rv == rv2, "%s (limit %zu): %d whole (%s), %d in pieces (%s)", name,
		              limit, rv, errbuf, rv2, errbuf2);
		if (rv == FL_OK)
			same_split(name, limit, &whole, &pieces);
		else
			ck_assert_str_eq(errbuf, errbuf2);
		fl_sql_script_fini(&pieces);
		if (limit >= len)
			break;
	}
	fl_sql_script_fini(&whole);
	free(sql);
}
END_TEST

/* Over the piece limit, a statement is not parsed: an error naming its line. */
START_TEST(statement_over_the_piece_limit)
{
	static const char sql[] = "SELECT 1;\nSELECT 'a long one';\nSELECT 2;\n";
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_sql_script s;

	ck_assert_int_eq(fl_sql_split_limited(sql, 0, 12, &s, errbuf), FL_EPARSE);
	ck_assert_str_eq(errbuf, "line 2: a statement of more than 12 bytes (or a quote or "
	                         "parenthesis never closed): more than flotilla hands to the "
	                         "parser at once");
	ck_assert(!s.parsed);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_int_eq(fl_sql_split_limited(sql, 0, 40, &s, errbuf), FL_OK);
	ck_assert_uint_eq(s.count, 3);
	ck_assert_int_eq(s.stmts[2].line, 3);
	fl_sql_script_fini(&s);
}
END_TEST

START_TEST(error_line_counts_characters)
{
	/* "é" is 2 bytes and "😀" 4, but each is one character to the parser. */
	const char *sql = "é😀\nx\n\n";

	ck_assert_int_eq(fl_sql_error_line(sql, 0), 0);
	ck_assert_int_eq(fl_sql_error_line(sql, 1), 1);
	ck_assert_int_eq(fl_sql_error_line(sql, 3), 1); /* the newline itself */
	ck_assert_int_eq(fl_sql_error_line(sql, 4), 2); /* x */
	ck_assert_int_eq(fl_sql_error_line(sql, 6), 3);
	/* At or past the end: the last line with text. */
	ck_assert_int_eq(fl_sql_error_line(sql, 8), 2);
	ck_assert_int_eq(fl_sql_error_line(sql, 100), 2);
}
END_TEST

START_TEST(error_message_is_one_line_and_capped)
{
	char out[16];

	fl_sql_error_message("a\nb\tc", out, sizeof(out));
	ck_assert_str_eq(out, "a\\nb\\tc");
	fl_sql_error_message("0123456789abcdefghij", out, sizeof(out));
	ck_assert_str_eq(out, "0123456789ab...");
	/* Never cut inside a character: "é" is 2 bytes at 11..12. */
	fl_sql_error_message("0123456789aé-rest", out, sizeof(out));
	ck_assert_str_eq(out, "0123456789a...");
	fl_sql_error_message("0123456789é-rest", out, sizeof(out));
	ck_assert_str_eq(out, "0123456789é...");
	/* A buffer too small for "..." gets nothing, and no abort. */
	fl_sql_error_message("abc", out, 4);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(error_without_errbuf)
{
	struct fl_sql_script s;

	ck_assert_int_eq(fl_sql_split("SELECT FROM WHERE;", &s, NULL), FL_EPARSE);
	ck_assert_uint_eq(s.count, 0);
}
END_TEST

START_TEST(over_size_cap)
{
	char *big = malloc(FL_SQL_MAX + 2);
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_sql_script s;

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', FL_SQL_MAX + 1);
	big[FL_SQL_MAX + 1] = '\0';
	ck_assert_int_eq(fl_sql_split(big, &s, errbuf), FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(errbuf, "limit"));
	ck_assert_uint_eq(s.count, 0);
	free(big);
}
END_TEST

START_TEST(shape_rules)
{
	struct fl_sql_stmt st[3] = {{0}};
	struct fl_sql_script s = {.stmts = st};

	ck_assert_int_eq(fl_sql_shape_of(&s), FL_SQL_SHAPE_PLAIN);
	s.count = 1;
	s.flags = st[0].flags = FL_SQL_DDL | FL_SQL_MAYBE_NO_TX;
	ck_assert_int_eq(fl_sql_shape_of(&s), FL_SQL_SHAPE_LONE_NO_TX);
	s.count = 2;
	ck_assert_int_eq(fl_sql_shape_of(&s), FL_SQL_SHAPE_PLAIN);
	s.flags |= st[1].flags = FL_SQL_NO_TX_BLOCK;
	ck_assert_int_eq(fl_sql_shape_of(&s), FL_SQL_SHAPE_MIXED_NO_TX);
	s.flags |= st[2].flags = FL_SQL_TX_CONTROL;
	s.count = 3;
	ck_assert_int_eq(fl_sql_shape_of(&s), FL_SQL_SHAPE_OWN_TRANSACTION);
	ck_assert_str_eq(fl_sql_shape_name(FL_SQL_SHAPE_MIXED_NO_TX), "mixed-no-tx");
	fl_sql_script_fini(NULL);
}
END_TEST

static void *split_many(void *arg)
{
	const char *sql = "CREATE TABLE t (id int); -- x\nCREATE INDEX CONCURRENTLY i ON t (id);";
	bool ok = true;

	(void)arg;
	for (int i = 0; i < 200 && ok; i++) {
		struct fl_sql_script s;

		ok = fl_sql_split(sql, &s, NULL) == FL_OK && s.count == 2 && s.stmts[1].line == 2 &&
		     fl_sql_shape_of(&s) == FL_SQL_SHAPE_MIXED_NO_TX;
		fl_sql_script_fini(&s);
	}
	return ok ? arg : NULL;
}

START_TEST(threads_split_concurrently)
{
	static int tag;
	pthread_t th[4];
	void *res;

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, split_many, &tag), 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(th[i], &res), 0);
		ck_assert_ptr_eq(res, &tag);
	}
}
END_TEST

/* ---- the cache in front of the parser (split_cache.c) ---- */

static bool same_script(const struct fl_sql_script *a, const struct fl_sql_script *b)
{
	return a->count == b->count && a->flags == b->flags && a->parsed == b->parsed &&
	       (a->count == 0 || memcmp(a->stmts, b->stmts, a->count * sizeof(*a->stmts)) == 0);
}

START_TEST(a_script_split_again_is_remembered)
{
	/* the same length, different statements */
	const char *x = "CREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY i ON a (id);";
	const char *y = "CREATE TABLE a (id int);\nCREATE INDEX  i  ON  a  ( id )  ;  ; ;";
	const char *bad = "CREATE TABLE (;";
	struct fl_sql_script s1, s2, s3, direct;
	char e1[FL_ERRBUF_SIZE] = "", e2[FL_ERRBUF_SIZE] = "";
	uint64_t h0, m0, h, m;

	ck_assert_uint_eq(strlen(x), strlen(y));
	fl_sql_split_cache_stats(&h0, &m0);
	ck_assert_int_eq(fl_sql_split(x, &s1, NULL), FL_OK);
	ck_assert_int_eq(fl_sql_split(x, &s2, NULL), FL_OK);
	fl_sql_split_cache_stats(&h, &m);
	ck_assert_uint_eq(m - m0, 1);
	ck_assert_uint_eq(h - h0, 1);
	ck_assert(same_script(&s1, &s2));
	ck_assert_ptr_ne(s1.stmts, s2.stmts); /* each caller owns its copy */
	ck_assert_int_eq(fl_sql_split_limited(x, FL_SQL_PIECE_MAX, FL_SQL_PIECE_MAX, &direct, NULL),
	                 FL_OK);
	ck_assert(same_script(&s2, &direct));

	ck_assert_int_eq(fl_sql_split(y, &s3, NULL), FL_OK);
	ck_assert(!same_script(&s1, &s3));
	ck_assert_uint_eq(s3.flags & FL_SQL_NO_TX_BLOCK, 0);
	ck_assert_uint_ne(s1.flags & FL_SQL_NO_TX_BLOCK, 0);
	fl_sql_script_fini(&s3);

	/* failures are parsed again, and say the same */
	ck_assert_int_eq(fl_sql_split(bad, &s3, e1), FL_EPARSE);
	ck_assert_int_eq(fl_sql_split(bad, &s3, e2), FL_EPARSE);
	ck_assert_str_eq(e1, e2);
	fl_sql_split_cache_stats(&h, &m);
	ck_assert_uint_eq(m - m0, 4);
	ck_assert_uint_eq(h - h0, 1);
	fl_sql_script_fini(&s1);
	fl_sql_script_fini(&s2);
	fl_sql_script_fini(&direct);
}
END_TEST

#define CACHED_SCRIPTS 600 /* more than the cache's slots: evictions */

static char *cached_script(int i)
{
	char buf[512];
	int n = 0;

	for (int k = 0; k <= i % 4; k++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
		              "%sCREATE %sINDEX %s i%d_%d ON t (c);\n", k ? "-- next\n" : "",
		              i % 3 == 0 ? "UNIQUE " : "", i % 5 == 0 ? "CONCURRENTLY" : "", i, k);
	return strdup(buf);
}

static void *split_cached(void *arg)
{
	int start = *(int *)arg;
	bool ok = true;

	for (int round = 0; round < 3 && ok; round++)
		for (int j = 0; j < CACHED_SCRIPTS && ok; j++) {
			int i = (start + j * 7 + round) % CACHED_SCRIPTS;
			char *sql = cached_script(i);
			struct fl_sql_script a, b;

			ok = fl_sql_split(sql, &a, NULL) == FL_OK &&
			     fl_sql_split_limited(sql, FL_SQL_PIECE_MAX, FL_SQL_PIECE_MAX, &b,
			                          NULL) == FL_OK &&
			     same_script(&a, &b) && a.count == (size_t)(i % 4 + 1);
			fl_sql_script_fini(&a);
			fl_sql_script_fini(&b);
			free(sql);
		}
	return ok ? arg : NULL;
}

START_TEST(threads_share_the_cache)
{
	pthread_t th[8];
	int start[8];
	uint64_t h, m;
	void *res;

	for (int i = 0; i < 8; i++) {
		start[i] = i * 75;
		ck_assert_int_eq(pthread_create(&th[i], NULL, split_cached, &start[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(pthread_join(th[i], &res), 0);
		ck_assert_msg(res == &start[i], "thread %d got a result the parser would not give",
		              i);
	}
	fl_sql_split_cache_stats(&h, &m);
	ck_assert_uint_gt(h, 0);
	ck_assert_uint_ge(m, CACHED_SCRIPTS);
}
END_TEST

static Suite *split_suite(void)
{
	Suite *s = suite_create("split");
	TCase *data = tcase_create("data");
	TCase *api = tcase_create("api");

	tcase_add_loop_test(data, data_case, 0, (int)n_cases);
	tcase_add_loop_test(data, data_case_in_pieces, 0, (int)n_cases);
	tcase_add_test(data, statement_over_the_piece_limit);
	suite_add_tcase(s, data);

	tcase_add_test(api, error_line_counts_characters);
	tcase_add_test(api, error_message_is_one_line_and_capped);
	tcase_add_test(api, error_without_errbuf);
	tcase_add_test(api, over_size_cap);
	tcase_add_test(api, shape_rules);
	tcase_add_test(api, threads_split_concurrently);
	tcase_add_test(api, a_script_split_again_is_remembered);
	tcase_add_test(api, threads_share_the_cache);
	suite_add_tcase(s, api);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	load_cases();
	if (n_cases < 40) {
		fprintf(stderr, "check_split: only %zu cases in '%s'\n", n_cases, data_dir);
		return EXIT_FAILURE;
	}
	sr = srunner_create(split_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free_cases();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
