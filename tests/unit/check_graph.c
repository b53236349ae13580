/* The migration graph: deps, deterministic order, and the errors it names. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "graph.h"
#include "mem.h"

/*
 * Append a migration to s (in Prisma's order) with the given requires, NULL-ended.
 * The items array doubles when count reaches a power of two, so n adds copy O(n) items
 * in all: a realloc per add is quadratic, and slow enough under ASan (which moves every
 * reallocated block) to exceed a test's timeout for a long history.
 */
static void add(struct fl_migration_set *s, const char *id, ...)
{
	struct fl_migration *m;
	const char *r;
	va_list ap;

	if ((s->count & (s->count - 1)) == 0) /* 0, 1, 2, 4...: full */
		s->items = fl_realloc(s->items, (s->count ? 2 * s->count : 1) * sizeof(*s->items));
	m = &s->items[s->count++];
	memset(m, 0, sizeof(*m));
	m->id = fl_strdup(id);
	m->lock_timeout_ms = m->statement_timeout_ms = -1;
	va_start(ap, id);
	while ((r = va_arg(ap, const char *)) != NULL) {
		m->requires = fl_realloc(m->requires, (m->n_requires + 1) * sizeof(char *));
		m->requires[m->n_requires++] = fl_strdup(r);
	}
	va_end(ap);
}

static void ck_deps(const struct fl_migration *m, size_t n, ...)
{
	va_list ap;
	size_t i;

	ck_assert_msg(m->n_deps == n, "%s: %zu deps, want %zu", m->id, m->n_deps, n);
	va_start(ap, n);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(m->deps[i], va_arg(ap, size_t));
	va_end(ap);
}

START_TEST(empty_set_sorts)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(fl_graph_sort(&s, err), FL_OK);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(linear_history_follows_prisma_order)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE];

	add(&s, "20240101000000_a", NULL);
	add(&s, "20240102000000_b", NULL);
	add(&s, "20240103000000_c", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_OK);
	ck_assert_str_eq(s.items[0].id, "20240101000000_a");
	ck_assert_str_eq(s.items[1].id, "20240102000000_b");
	ck_assert_str_eq(s.items[2].id, "20240103000000_c");
	ck_deps(&s.items[0], 0);
	ck_deps(&s.items[1], 1, (size_t)0);
	ck_deps(&s.items[2], 1, (size_t)1);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(requires_add_edges_without_duplicates)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE];

	add(&s, "a", NULL);
	add(&s, "b", NULL);
	add(&s, "c", "a", "b", NULL); /* "b" is the predecessor already */
	add(&s, "d", "a", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_OK);
	ck_deps(&s.items[2], 2, (size_t)1, (size_t)0);
	ck_deps(&s.items[3], 2, (size_t)2, (size_t)0);
	ck_assert_int_eq(fl_migration_set_index(&s, "d"), 3);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(sorting_again_is_stable_and_frees_old_deps)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE];

	add(&s, "a", NULL);
	add(&s, "b", NULL);
	add(&s, "c", "a", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_OK);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_OK);
	ck_assert_str_eq(s.items[2].id, "c");
	ck_deps(&s.items[2], 2, (size_t)1, (size_t)0);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(unknown_requires_is_an_error)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE];

	add(&s, "20240101000000_a", NULL);
	add(&s, "20240102000000_b", "20240101000000_x", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_EGRAPH);
	ck_assert_str_eq(err, "migration '20240102000000_b' requires unknown '20240101000000_x'");
	/* Unchanged on error. */
	ck_assert_uint_eq(s.count, 2);
	ck_assert_str_eq(s.items[1].id, "20240102000000_b");
	ck_assert_ptr_null(s.items[1].deps);
	ck_assert_uint_eq(s.items[1].n_deps, 0);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(duplicate_id_is_an_error)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE];

	add(&s, "a", NULL);
	add(&s, "b", NULL);
	add(&s, "a", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_EGRAPH);
	ck_assert_str_eq(err, "duplicate migration id 'a'");
	ck_assert_ptr_null(s.items[0].deps);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(cycle_is_named_in_apply_order)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE];

	/* a requires c, but c follows b follows a. */
	add(&s, "20240101000000_a", "20240103000000_c", NULL);
	add(&s, "20240102000000_b", NULL);
	add(&s, "20240103000000_c", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_EGRAPH);
	ck_assert_str_eq(err, "cycle: 20240101000000_a -> 20240102000000_b -> 20240103000000_c -> "
	                      "20240101000000_a");
	ck_assert_str_eq(s.items[0].id, "20240101000000_a");
	ck_assert_ptr_null(s.items[0].deps);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(cycle_inside_a_longer_history)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE];

	add(&s, "a", NULL);
	add(&s, "b", "d", NULL); /* b..d loop; a is fine, e only waits on it */
	add(&s, "c", NULL);
	add(&s, "d", NULL);
	add(&s, "e", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_EGRAPH);
	ck_assert_str_eq(err, "cycle: b -> c -> d -> b");
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(self_requires_is_a_cycle)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE];

	add(&s, "a", NULL);
	add(&s, "b", "b", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_EGRAPH);
	ck_assert_str_eq(err, "cycle: b -> b");
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(first_cycle_in_prisma_order_is_reported)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE];

	add(&s, "a", NULL);
	add(&s, "b", NULL);
	add(&s, "c", "c", NULL);
	add(&s, "d", "e", NULL);
	add(&s, "e", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_EGRAPH);
	ck_assert_str_eq(err, "cycle: c -> c");
	fl_migration_set_fini(&s);
}
END_TEST

/*
 * A long history sorts, in Prisma's order, with every dependency in place. The
 * checks run in plain C and are asserted once: each passing ck_assert writes a
 * checkpoint to Check's pipe, and thousands of them dominate the test's time.
 */
START_TEST(long_history_sorts)
{
	struct fl_migration_set s = {0};
	char err[FL_ERRBUF_SIZE], id[32], req[32];
	size_t i, k, n = 5000, misplaced = 0, bad_deps = 0, first_bad = 0;

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%014zu_m", i);
		snprintf(req, sizeof(req), "%014zu_m", i / 2);
		if (i % 7 == 3)
			add(&s, id, req, NULL);
		else
			add(&s, id, NULL);
	}
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_OK);
	ck_assert_uint_eq(s.count, n);
	for (i = 0; i < n; i++) {
		const struct fl_migration *m = &s.items[i];
		size_t want = (i > 0) + (i % 7 == 3 && i / 2 != i - 1);

		snprintf(id, sizeof(id), "%014zu_m", i);
		if (strcmp(m->id, id) != 0 && misplaced++ == 0)
			first_bad = i;
		/* Every dependency is placed earlier; the predecessor comes first. */
		for (k = 0; k < m->n_deps; k++)
			if (m->deps[k] >= i)
				bad_deps++;
		if (m->n_deps != want || (i > 0 && m->deps[0] != i - 1))
			bad_deps++;
	}
	ck_assert_msg(misplaced == 0, "%zu migrations out of order, the first at %zu", misplaced,
	              first_bad);
	ck_assert_msg(bad_deps == 0, "%zu bad dependency lists", bad_deps);
	ck_deps(&s.items[10], 2, (size_t)9, (size_t)5);
	ck_deps(&s.items[4999], 1, (size_t)4998);
	fl_migration_set_fini(&s);
}
END_TEST

/* A migration requiring thousands, most of them twice: each becomes one edge, in the
 * order first required, after the predecessor; render marks exactly those edges. */
START_TEST(many_requires_each_once)
{
	struct fl_migration_set s = {0};
	struct fl_buf out = FL_BUF_INIT;
	char err[FL_ERRBUF_SIZE], id[32];
	size_t i, n = 3000, wrong = 0;
	struct fl_migration *last;

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%014zu_m", i);
		add(&s, id, NULL);
	}
	add(&s, "99999999999999_all", NULL);
	last = &s.items[n];
	last->requires = fl_malloc(2 * n * sizeof(char *));
	for (i = 0; i < 2 * n; i++) { /* n-1, n-2, ..., 0, then 0, 1, ..., n-1 again */
		snprintf(id, sizeof(id), "%014zu_m", i < n ? n - 1 - i : i - n);
		last->requires[last->n_requires++] = fl_strdup(id);
	}
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_OK);
	last = &s.items[n];
	ck_assert_uint_eq(last->n_deps, n);
	/* The predecessor (n-1) first, then n-2 down to 0, as first required. */
	for (i = 0; i < n; i++)
		if (last->deps[i] != n - 1 - i)
			wrong++;
	ck_assert_msg(wrong == 0, "%zu deps out of place", wrong);
	fl_graph_render(&s, 1, &out);
	wrong = 0;
	for (const char *p = fl_buf_str(&out); (p = strstr(p, "[style=dashed")) != NULL; p++)
		wrong++;
	ck_assert_uint_eq(wrong, n); /* every edge into the last one is a requires edge */
	fl_buf_fini(&out);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(render_text)
{
	struct fl_migration_set s = {0};
	struct fl_buf out = FL_BUF_INIT;
	char err[FL_ERRBUF_SIZE];

	add(&s, "20240101_init", NULL);
	add(&s, "20240102000000_add users", NULL);
	add(&s, "20240103000000_c", "20240101_init", "20240102000000_add users", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_OK);
	fl_graph_render(&s, 0, &out);
	ck_assert_str_eq(fl_buf_str(&out), "20240101_init\n"
	                                   "20240102000000_add users\n"
	                                   "20240103000000_c  (requires 20240101_init, "
	                                   "20240102000000_add users)\n");
	fl_buf_fini(&out);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(render_dot)
{
	struct fl_migration_set s = {0};
	struct fl_buf out = FL_BUF_INIT;
	char err[FL_ERRBUF_SIZE];

	add(&s, "a", NULL);
	add(&s, "b \"quoted\" \\", NULL);
	add(&s, "c", "a", NULL);
	ck_assert_int_eq(fl_graph_sort(&s, err), FL_OK);
	fl_graph_render(&s, 1, &out);
	ck_assert_str_eq(fl_buf_str(&out), "digraph migrations {\n"
	                                   "\tnode [shape=box];\n"
	                                   "\t\"a\";\n"
	                                   "\t\"b \\\"quoted\\\" \\\\\";\n"
	                                   "\t\"c\";\n"
	                                   "\t\"a\" -> \"b \\\"quoted\\\" \\\\\";\n"
	                                   "\t\"b \\\"quoted\\\" \\\\\" -> \"c\";\n"
	                                   "\t\"a\" -> \"c\" [style=dashed, label=\"requires\"];\n"
	                                   "}\n");
	fl_buf_fini(&out);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(render_empty)
{
	struct fl_migration_set s = {0};
	struct fl_buf out = FL_BUF_INIT;

	fl_graph_render(&s, 0, &out);
	ck_assert_str_eq(fl_buf_str(&out), "");
	fl_graph_render(&s, 1, &out);
	ck_assert_str_eq(fl_buf_str(&out), "digraph migrations {\n\tnode [shape=box];\n}\n");
	fl_buf_fini(&out);
}
END_TEST

static Suite *graph_suite(void)
{
	Suite *s = suite_create("graph");
	TCase *tc = tcase_create("sort");
	TCase *tr = tcase_create("render");
	TCase *big = tcase_create("big");

	tcase_add_test(tc, empty_set_sorts);
	tcase_add_test(tc, linear_history_follows_prisma_order);
	tcase_add_test(tc, requires_add_edges_without_duplicates);
	tcase_add_test(tc, sorting_again_is_stable_and_frees_old_deps);
	tcase_add_test(tc, unknown_requires_is_an_error);
	tcase_add_test(tc, duplicate_id_is_an_error);
	tcase_add_test(tc, cycle_is_named_in_apply_order);
	tcase_add_test(tc, cycle_inside_a_longer_history);
	tcase_add_test(tc, self_requires_is_a_cycle);
	tcase_add_test(tc, first_cycle_in_prisma_order_is_reported);
	suite_add_tcase(s, tc);
	/* Thousands of migrations: a few milliseconds, but ASan and a loaded CI machine can
	 * stretch that well past Check's default of 4 s; ctest's timeout still bounds it. */
	tcase_set_timeout(big, 60);
	tcase_add_test(big, long_history_sorts);
	tcase_add_test(big, many_requires_each_once);
	suite_add_tcase(s, big);
	tcase_add_test(tr, render_text);
	tcase_add_test(tr, render_dot);
	tcase_add_test(tr, render_empty);
	suite_add_tcase(s, tr);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(graph_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
