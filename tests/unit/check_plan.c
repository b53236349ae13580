/* The plan: each local migration's state from history rows, by Prisma's rules. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"
#include "plan.h"

static struct fl_migration items[3];
static struct fl_migration_set set = {.dir = "migrations", .items = items, .count = 3};
static char *const ids[] = {"20250101000000_a", "20250102000000_b", "20250103000000_c"};
static char *const sqls[] = {"CREATE TABLE a (id int);\n", "ALTER TABLE a ADD b int;\n",
                             "CREATE TABLE c (id int);\r\n"};

static void setup(void)
{
	memset(items, 0, sizeof(items));
	for (int i = 0; i < 3; i++) {
		items[i].id = ids[i];
		items[i].sql = sqls[i];
		items[i].sql_len = strlen(sqls[i]);
		fl_checksum_compute(sqls[i], items[i].sql_len, items[i].checksum);
	}
}

static struct fl_history_row row(const char *name, const char *checksum, const char *finished,
                                 const char *rolled_back)
{
	struct fl_history_row r = {0};
	r.id = "00000000-0000-4000-8000-000000000000";
	r.migration_name = (char *)name;
	r.checksum = (char *)checksum;
	r.started_at = "2025-01-01 00:00:00+00";
	r.finished_at = (char *)finished;
	r.rolled_back_at = (char *)rolled_back;
	return r;
}

START_TEST(empty_history_is_all_pending)
{
	struct fl_history h = {0};
	struct fl_plan p;

	fl_plan_build(&set, &h, &p);
	ck_assert_uint_eq(p.count, 3);
	ck_assert_uint_eq(p.n_pending, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(p.entries[i].state, FL_MSTATE_PENDING);
		ck_assert_ptr_null(p.entries[i].row);
	}
	fl_plan_fini(&p);
}
END_TEST

START_TEST(states_follow_prisma_rules)
{
	struct fl_history_row rows[] = {
	    row(ids[0], items[0].checksum, "2025-01-01", NULL),
	    row(ids[1], "0000000000000000000000000000000000000000000000000000000000000000",
	        "2025-01-01", NULL),
	    row(ids[2], items[2].checksum, NULL, NULL),
	};
	struct fl_history h = {true, rows, 3};
	struct fl_plan p;

	fl_plan_build(&set, &h, &p);
	ck_assert_int_eq(p.entries[0].state, FL_MSTATE_APPLIED);
	ck_assert_int_eq(p.entries[1].state, FL_MSTATE_MODIFIED);
	ck_assert_int_eq(p.entries[2].state, FL_MSTATE_FAILED);
	ck_assert_ptr_eq(p.entries[2].row, &rows[2]);
	ck_assert_uint_eq(p.n_applied, 1);
	ck_assert_uint_eq(p.n_modified, 1);
	ck_assert_uint_eq(p.n_failed, 1);
	ck_assert_uint_eq(p.n_pending, 0);
	fl_plan_fini(&p);
}
END_TEST

START_TEST(rolled_back_rows_count_as_not_applied)
{
	struct fl_history_row rows[] = {
	    row(ids[0], items[0].checksum, NULL, "2025-01-02"),
	    row(ids[1], items[1].checksum, "2025-01-01", "2025-01-02"),
	};
	struct fl_history h = {true, rows, 2};
	struct fl_plan p;

	fl_plan_build(&set, &h, &p);
	ck_assert_int_eq(p.entries[0].state, FL_MSTATE_PENDING);
	ck_assert_int_eq(p.entries[1].state, FL_MSTATE_PENDING);
	ck_assert_uint_eq(p.n_pending, 3);
	fl_plan_fini(&p);
}
END_TEST

START_TEST(resolved_applied_after_failure_is_applied)
{
	/* resolve --applied: the failed row is marked rolled back, a finished one added. */
	struct fl_history_row rows[] = {
	    row(ids[0], items[0].checksum, NULL, "2025-01-02"),
	    row(ids[0], items[0].checksum, "2025-01-02", NULL),
	};
	struct fl_history h = {true, rows, 2};
	struct fl_plan p;

	fl_plan_build(&set, &h, &p);
	ck_assert_int_eq(p.entries[0].state, FL_MSTATE_APPLIED);
	ck_assert_ptr_eq(p.entries[0].row, &rows[1]);
	fl_plan_fini(&p);
}
END_TEST

START_TEST(crlf_file_matches_lf_checksum)
{
	/* Prisma accepts a file whose line endings were converted after apply. */
	char lf[FL_CHECKSUM_HEX_LEN + 1];
	const char *text = "CREATE TABLE c (id int);\n";
	struct fl_history_row rows[1];
	struct fl_history h = {true, rows, 1};
	struct fl_plan p;

	fl_checksum_compute(text, strlen(text), lf);
	rows[0] = row(ids[2], lf, "2025-01-01", NULL);
	fl_plan_build(&set, &h, &p);
	ck_assert_int_eq(p.entries[2].state, FL_MSTATE_APPLIED);
	fl_plan_fini(&p);
}
END_TEST

START_TEST(rows_missing_from_the_folder)
{
	struct fl_history_row rows[] = {
	    row("20240101000000_gone", "x", "2025-01-01", NULL),
	    row("20240101000000_gone", "x", "2025-01-01", NULL),
	    row("20240102000000_broken", "x", NULL, NULL),
	    row("20240103000000_undone", "x", "2025-01-01", "2025-01-02"),
	};
	struct fl_history h = {true, rows, 4};
	struct fl_plan p;

	fl_plan_build(&set, &h, &p);
	ck_assert_uint_eq(p.n_missing, 1);
	ck_assert_str_eq(p.missing[0]->migration_name, "20240101000000_gone");
	ck_assert_uint_eq(p.n_foreign_failed, 1);
	ck_assert_str_eq(p.foreign_failed[0]->migration_name, "20240102000000_broken");
	ck_assert_uint_eq(p.n_pending, 3);
	fl_plan_fini(&p);
}
END_TEST

/* A deploy holds the lock elsewhere: the latest unfinished row is what it
 * runs, not a failure; earlier unfinished rows stay failed. */
START_TEST(latest_unfinished_row_is_running)
{
	struct fl_history_row rows[] = {
	    row(ids[0], items[0].checksum, "2025-01-01", NULL),
	    row(ids[1], items[1].checksum, NULL, NULL),
	};
	struct fl_history h = {true, rows, 2};
	struct fl_plan p;

	fl_plan_build(&set, &h, &p);
	ck_assert_int_eq(p.entries[1].state, FL_MSTATE_FAILED);
	ck_assert_uint_eq(p.n_failed, 1);
	fl_plan_mark_running(&p, &h);
	ck_assert_int_eq(p.entries[1].state, FL_MSTATE_RUNNING);
	ck_assert_str_eq(fl_mstate_name(p.entries[1].state), "running");
	ck_assert_uint_eq(p.n_failed, 0);
	ck_assert_uint_eq(p.n_running, 1);
	fl_plan_mark_running(&p, &h); /* idempotent */
	ck_assert_uint_eq(p.n_running, 1);
	ck_assert_uint_eq(p.n_failed, 0);
	fl_plan_fini(&p);
}
END_TEST

START_TEST(only_the_latest_unfinished_row_runs)
{
	struct fl_history_row rows[] = {
	    row(ids[0], items[0].checksum, NULL, NULL),
	    row("20240101000000_elsewhere", "x", NULL, NULL),
	};
	struct fl_history h = {true, rows, 2};
	struct fl_plan p;

	fl_plan_build(&set, &h, &p);
	ck_assert_uint_eq(p.n_failed, 1);
	ck_assert_uint_eq(p.n_foreign_failed, 1);
	fl_plan_mark_running(&p, &h);
	/* The newest is a migration this folder does not have. */
	ck_assert_ptr_eq(p.foreign_running, &rows[1]);
	ck_assert_uint_eq(p.n_foreign_failed, 0);
	ck_assert_uint_eq(p.n_running, 1);
	ck_assert_int_eq(p.entries[0].state, FL_MSTATE_FAILED);
	ck_assert_uint_eq(p.n_failed, 1);
	fl_plan_fini(&p);
}
END_TEST

START_TEST(nothing_unfinished_nothing_running)
{
	struct fl_history_row rows[] = {
	    row(ids[0], items[0].checksum, "2025-01-01", NULL),
	    row(ids[1], items[1].checksum, NULL, "2025-01-02"),
	};
	struct fl_history h = {true, rows, 2};
	struct fl_plan p;

	fl_plan_build(&set, &h, &p);
	fl_plan_mark_running(&p, &h);
	ck_assert_uint_eq(p.n_running, 0);
	ck_assert_ptr_null(p.foreign_running);
	ck_assert_int_eq(p.entries[1].state, FL_MSTATE_PENDING);
	fl_plan_fini(&p);
}
END_TEST

static Suite *plan_suite(void)
{
	Suite *s = suite_create("plan");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, empty_history_is_all_pending);
	tcase_add_test(tc, states_follow_prisma_rules);
	tcase_add_test(tc, rolled_back_rows_count_as_not_applied);
	tcase_add_test(tc, resolved_applied_after_failure_is_applied);
	tcase_add_test(tc, crlf_file_matches_lf_checksum);
	tcase_add_test(tc, rows_missing_from_the_folder);
	tcase_add_test(tc, latest_unfinished_row_is_running);
	tcase_add_test(tc, only_the_latest_unfinished_row_runs);
	tcase_add_test(tc, nothing_unfinished_nothing_running);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(plan_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
