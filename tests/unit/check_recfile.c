/*
 * Group commit of the agent's record files (agent/recfile.c): a waiter
 * whose record a sync since already covered makes no fdatasync of its own
 * (another waiter's sync, an append with sync, a compaction's rewrite);
 * and threads appending and waiting at once lose no record and deadlock
 * nowhere. Torn tails and damage are check_ledger's and check_journal's.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "recfile.h"
#include "testutil.h"

#define REC_PLAIN  1
#define THREADS    8
#define PER_THREAD 200

static const char magic[FL_RECFILE_MAGIC_LEN] = "flotilla tst v1\n";
static char root[256];
static char path[512];

static void make_root(void)
{
	fl_test_tmp_root(root, sizeof(root), "check_recfile");
}

static void remove_root(void)
{
	fl_test_rm_rf(root);
}

static void setup(void)
{
	char sub[512];

	fl_log_set_level(FL_LOG_ERROR);
	fl_test_fmt(sub, sizeof(sub), "%s/t", root);
	fl_test_rm_rf(sub);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	fl_test_fmt(path, sizeof(path), "%s/file", sub);
}

static enum fl_err count_record(void *arg, uint8_t type, uint64_t id, const uint8_t *payload,
                                size_t len, char *errbuf)
{
	(void)type, (void)id, (void)payload, (void)len, (void)errbuf;
	(*(size_t *)arg)++;
	return FL_OK;
}

static struct fl_recfile *open_file(size_t *records)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_recfile *f = NULL;

	*records = 0;
	ck_assert_msg(fl_recfile_open(path, "test", magic, 1u << REC_PLAIN, count_record, records,
	                              &f, err) == FL_OK,
	              "%s", err);
	return f;
}

static struct fl_recfile_ticket append(struct fl_recfile *f, uint64_t id, bool sync)
{
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(fl_recfile_append(f, REC_PLAIN, id, "payload", 7, sync, err) == FL_OK, "%s",
	              err);
	return fl_recfile_sync_ticket(f);
}

static void wait_ok(struct fl_recfile *f, struct fl_recfile_ticket t)
{
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(fl_recfile_sync_wait(f, t, err) == FL_OK, "%s", err);
}

START_TEST(a_sync_covers_what_came_before)
{
	struct fl_recfile_ticket a, b, c, d;
	struct fl_recfile *f;
	char err[FL_ERRBUF_SIZE] = "";
	size_t n;

	f = open_file(&n);
	a = append(f, 1, false);
	b = append(f, 2, false);
	ck_assert_uint_lt(a.end, b.end);
	wait_ok(f, b);
	ck_assert_uint_eq(fl_recfile_syncs(f), 1);
	wait_ok(f, a); /* b's sync wrote a too */
	wait_ok(f, b);
	ck_assert_uint_eq(fl_recfile_syncs(f), 1);

	c = append(f, 3, false);
	(void)append(f, 4, true); /* an append with sync covers c */
	wait_ok(f, c);
	ck_assert_uint_eq(fl_recfile_syncs(f), 1);

	d = append(f, 5, false);
	ck_assert_int_eq(fl_recfile_rewrite_begin(f, err), FL_OK);
	ck_assert_int_eq(fl_recfile_rewrite_add(f, REC_PLAIN, 5, "payload", 7, err), FL_OK);
	ck_assert_int_eq(fl_recfile_rewrite_commit(f, err), FL_OK);
	wait_ok(f, d); /* the rewrite synced what it kept */
	ck_assert_uint_eq(fl_recfile_syncs(f), 1);

	d = append(f, 6, false); /* the new file's own end */
	wait_ok(f, d);
	ck_assert_uint_eq(fl_recfile_syncs(f), 2);
	fl_recfile_close(f);

	f = open_file(&n);
	ck_assert_uint_eq(n, 2);
	fl_recfile_close(f);
}
END_TEST

struct writer {
	struct fl_recfile *f;
	pthread_mutex_t *mu; /* the owner's lock */
	uint64_t first_id;
};

static void *write_and_wait(void *arg)
{
	struct writer *w = arg;
	char err[FL_ERRBUF_SIZE] = "";

	for (uint64_t i = 0; i < PER_THREAD; i++) {
		struct fl_recfile_ticket t;
		enum fl_err rv;

		pthread_mutex_lock(w->mu);
		rv = fl_recfile_append(w->f, REC_PLAIN, w->first_id + i, "payload", 7, false, err);
		t = fl_recfile_sync_ticket(w->f);
		pthread_mutex_unlock(w->mu);
		if (rv != FL_OK || fl_recfile_sync_wait(w->f, t, err) != FL_OK)
			return strdup(err);
	}
	return NULL;
}

START_TEST(threads_appending_and_waiting_lose_nothing)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct writer w[THREADS];
	pthread_t th[THREADS];
	struct fl_recfile *f;
	size_t n;

	f = open_file(&n);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){.f = f, .mu = &mu, .first_id = (uint64_t)i * PER_THREAD + 1};
		ck_assert_int_eq(pthread_create(&th[i], NULL, write_and_wait, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		void *failed = NULL;

		ck_assert_int_eq(pthread_join(th[i], &failed), 0);
		ck_assert_msg(failed == NULL, "thread %d: %s", i, (char *)failed);
	}
	/* never more syncs than waits; at least one */
	ck_assert_uint_ge(fl_recfile_syncs(f), 1);
	ck_assert_uint_le(fl_recfile_syncs(f), THREADS * PER_THREAD);
	fl_recfile_close(f);

	f = open_file(&n);
	ck_assert_uint_eq(n, THREADS * PER_THREAD);
	fl_recfile_close(f);
}
END_TEST

static Suite *recfile_suite(void)
{
	Suite *s = suite_create("recfile");
	TCase *tc = tcase_create("group commit");

	tcase_add_unchecked_fixture(tc, make_root, remove_root);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_sync_covers_what_came_before);
	tcase_add_test(tc, threads_appending_and_waiting_lose_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(recfile_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
