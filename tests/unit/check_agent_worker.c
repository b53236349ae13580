/*
 * The agent's worker pool (agent/worker.c) against a hostile coordinator,
 * without a database: what it keeps of what it is handed. Workers are held
 * inside the `reported` hook (after a refusal was journaled), so that what
 * the pool holds meanwhile can be counted exactly, whatever the machine's
 * speed.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_config.h"
#include "journal.h"
#include "ledger.h"
#include "log.h"
#include "mem.h"
#include "releases.h"
#include "testutil.h"
#include "wire.h"
#include "worker.h"

#define THREADS 8
#define REFUSED FLOTILLA__V1__OUTCOME__OUTCOME_REFUSED

static char root[256];
static struct fl_journal *journal;
static struct fl_ledger *ledger;
static struct fl_releases *releases;
static struct fl_agent_config cfg;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int held; /* workers waiting in the hook */

static void acquire(void *arg, struct fl_agent_snapshot *s)
{
	(void)arg;
	s->cfg = &cfg;
	s->tenants = fl_tenants_new();
	s->priv = NULL;
}

static void release(void *arg, struct fl_agent_snapshot *s)
{
	(void)arg;
	fl_tenants_unref(s->tenants);
	memset(s, 0, sizeof(*s));
}

static void reported(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	held++;
	pthread_cond_broadcast(&cv);
	while (!gate_open)
		pthread_cond_wait(&cv, &mu);
	held--;
	pthread_mutex_unlock(&mu);
}

static void wait_held(int n)
{
	pthread_mutex_lock(&mu);
	while (held < n)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void open_gate(void)
{
	pthread_mutex_lock(&mu);
	gate_open = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void setup(void)
{
	char err[FL_ERRBUF_SIZE] = "", path[400];

	fl_log_set_level(FL_LOG_ERROR);
	fl_test_tmp_root(root, sizeof(root), "check_agent_worker");
	fl_test_fmt(path, sizeof(path), "%s/journal", root);
	ck_assert_msg(fl_journal_open(path, &journal, err) == FL_OK, "%s", err);
	fl_test_fmt(path, sizeof(path), "%s/ledger", root);
	ck_assert_msg(fl_ledger_open(path, &ledger, err) == FL_OK, "%s", err);
	fl_test_fmt(path, sizeof(path), "%s/releases", root);
	ck_assert_msg(fl_releases_open(path, &releases, err) == FL_OK, "%s", err);
	memset(&cfg, 0, sizeof(cfg));
	cfg.project_id = "acme-app";
	gate_open = false;
	held = 0;
}

static void teardown(void)
{
	fl_releases_close(releases);
	fl_ledger_close(ledger);
	fl_journal_close(journal);
	fl_test_rm_rf(root);
}

static struct fl_worker *pool(void)
{
	struct fl_worker_deps d;

	memset(&d, 0, sizeof(d));
	d.journal = journal;
	d.ledger = ledger;
	d.releases = releases;
	d.agent_id = "agent";
	d.threads = THREADS;
	d.hooks.acquire = acquire;
	d.hooks.release = release;
	d.hooks.reported = reported;
	return fl_worker_new(&d);
}

static size_t in_pool(struct fl_worker *w)
{
	uint64_t *ids;
	size_t n;

	fl_worker_running(w, &ids, &n);
	free(ids);
	return n;
}

/* An assignment for tenant t with no order (refused by the checks), or
 * with junk orders of the given sizes. */
static void submit(struct fl_worker *w, uint64_t id, const char *rollout, const char *t,
                   size_t order, size_t rollback)
{
	Flotilla__V1__WorkAssignment a = FLOTILLA__V1__WORK_ASSIGNMENT__INIT;
	uint8_t hash[32] = {1};
	uint8_t *o = fl_calloc(1, order + 1), *r = fl_calloc(1, rollback + 1);

	a.assignment_id = id;
	a.rollout_id = (char *)rollout;
	a.tenant_id = (char *)t;
	a.kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
	a.release_hash.data = hash;
	a.release_hash.len = 32;
	a.target_migration_id = "20250101000000_a";
	a.signed_order.data = o;
	a.signed_order.len = order;
	a.signed_rollback_order.data = r;
	a.signed_rollback_order.len = rollback;
	ck_assert_int_eq(fl_worker_submit(w, &a, NULL), FL_OK);
	free(o);
	free(r);
}

/* The report journaled for assignment id: its message and outcome. */
static bool journaled(uint64_t id, int *outcome, char *message, size_t size, char *rollout,
                      size_t rsize)
{
	struct fl_buf b = FL_BUF_INIT;
	uint64_t jid, after = 0;
	bool found = false;

	while (!found && fl_journal_next(journal, after, &jid, &b)) {
		Flotilla__V1__Message *m = NULL;
		char err[FL_ERRBUF_SIZE];

		after = jid;
		ck_assert_int_eq(
		    fl_wire_unpack((const uint8_t *)b.data, b.len, FL_WIRE_MAX_REPORT, &m, err),
		    FL_OK);
		if (m->report->assignment_id == id) {
			found = true;
			*outcome = m->report->outcome;
			snprintf(message, size, "%s", m->report->message);
			snprintf(rollout, rsize, "%s", m->report->rollout_id);
		}
		fl_wire_free(m);
	}
	fl_buf_fini(&b);
	return found;
}

/* Every worker busy (held in the hook): what the pool keeps is bounded by
 * bytes as well as by count. Before, it kept threads x 4 assignments
 * whatever their size (each up to a 16 MiB poll reply). */
START_TEST(held_bytes_are_bounded)
{
	struct fl_worker *w = pool();
	size_t n;

	for (uint64_t id = 1; id <= THREADS; id++)
		submit(w, id, "r-1", "acme", 0, 0);
	wait_held(THREADS);
	ck_assert_uint_eq(in_pool(w), THREADS);
	/* each about 2 MiB: the pool takes what fits in 16 MiB, not 24 of them */
	for (uint64_t id = 100; id < 124; id++)
		submit(w, id, "r-1", "acme", FL_WIRE_MAX_ORDER - 1024, FL_WIRE_MAX_ORDER - 1024);
	n = in_pool(w) - THREADS;
	ck_assert_msg(n >= 7 && n <= 8, "%zu assignments of 2 MiB held", n);
	ck_assert_uint_eq(fl_worker_free_slots(w), 0);
	open_gate();
	fl_worker_free(w);
}
END_TEST

/* An order over FL_WIRE_MAX_ORDER, or a name over 255 bytes, is refused as
 * it comes and kept without its bulk: many of them take little room. */
START_TEST(oversize_refused_without_its_bulk)
{
	struct fl_worker *w = pool();
	char message[1100], rollout[300], *long_id = fl_calloc(1, 5000);
	int outcome = 0;

	memset(long_id, 'r', 4999);
	for (uint64_t id = 1; id <= THREADS; id++)
		submit(w, id, "r-1", "acme", 0, 0);
	wait_held(THREADS);
	/* 3 MiB orders, ten of them: all kept (small), none dropped */
	for (uint64_t id = 200; id < 210; id++)
		submit(w, id, "r-1", "acme", 3u << 20, 0);
	submit(w, 210, "r-1", "acme", 0, 2u << 20);
	submit(w, 211, long_id, "acme", 0, 0);
	ck_assert_uint_eq(in_pool(w), THREADS + 12);
	open_gate();
	fl_worker_free(w);

	ck_assert(journaled(200, &outcome, message, sizeof(message), rollout, sizeof(rollout)));
	ck_assert_int_eq(outcome, REFUSED);
	ck_assert_msg(strstr(message, "too large: a signed order of 3145728 bytes") != NULL, "%s",
	              message);
	ck_assert(journaled(210, &outcome, message, sizeof(message), rollout, sizeof(rollout)));
	ck_assert_msg(strstr(message, "signed rollback order of 2097152 bytes") != NULL, "%s",
	              message);
	ck_assert(journaled(211, &outcome, message, sizeof(message), rollout, sizeof(rollout)));
	ck_assert_int_eq(outcome, REFUSED);
	ck_assert_msg(strstr(message, "a rollout id of 4999 bytes") != NULL, "%s", message);
	ck_assert_uint_eq(strlen(rollout), 255); /* the report names it cut */
	free(long_id);
}
END_TEST

static Suite *worker_suite(void)
{
	Suite *s = suite_create("agent_worker");
	TCase *tc = tcase_create("worker");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, held_bytes_are_bounded);
	tcase_add_test(tc, oversize_refused_without_its_bulk);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(worker_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
