/*
 * The agent's assignment ledger (agent/ledger.c): an assignment id starts
 * once, ever (across reopen and compaction); the per-tenant release
 * sequence; what an order applied and has not reverted since; started but
 * unfinished assignments after a crash; a torn tail cut at every byte; and a
 * child killed with SIGKILL while it records, after which every start it
 * counted as made is there, with its steps and its finish if told.
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "ledger.h"
#include "log.h"
#include "testutil.h"
#include "worker.h"

#define APPLY    1
#define REVERT   2
#define CHECK    3
#define APPLIED  1
#define FAILED   2
#define CANCELED 7

static char root[256];
static char path[512];

static void make_root(void)
{
	fl_test_tmp_root(root, sizeof(root), "check_ledger");
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
	fl_test_fmt(path, sizeof(path), "%s/ledger", sub);
}

static struct fl_ledger *open_ledger(void)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_ledger *l = NULL;

	ck_assert_msg(fl_ledger_open(path, &l, err) == FL_OK, "%s", err);
	return l;
}

static off_t file_size(void)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

static enum fl_err start(struct fl_ledger *l, uint64_t id, const char *tenant, uint8_t order,
                         int kind, uint64_t seq)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_ledger_start s = {0};

	s.assignment_id = id;
	memset(s.order_hash, order, sizeof(s.order_hash));
	memset(s.release_hash, 0xee, sizeof(s.release_hash));
	s.release_sequence = seq;
	s.tenant_id = tenant;
	s.rollout_id = "r-1";
	s.kind = kind;
	s.target = kind == APPLY ? "20250101000000_b" : "";
	s.started_at_ms = 1000 + (int64_t)id;
	return fl_ledger_start(l, &s, err);
}

static void step(struct fl_ledger *l, uint64_t id, bool reverted, const char *m)
{
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(fl_ledger_step(l, id, reverted, m, err) == FL_OK, "%s", err);
}

static void finish(struct fl_ledger *l, uint64_t id, int outcome, uint64_t journal_id)
{
	char err[FL_ERRBUF_SIZE] = "", report[32];

	snprintf(report, sizeof(report), "report of %llu", (unsigned long long)id);
	ck_assert_msg(fl_ledger_finish(l, id, outcome, 5000, journal_id, report, strlen(report),
	                               err) == FL_OK,
	              "%s", err);
}

static void expect_under(struct fl_ledger *l, const char *tenant, uint8_t order, const char *want)
{
	uint8_t h[FL_LEDGER_HASH_LEN];
	char got[512] = "";
	char **ids;
	size_t n, i;

	memset(h, order, sizeof(h));
	fl_ledger_applied_under(l, tenant, h, &ids, &n);
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(got, ",");
		strcat(got, ids[i]);
		free(ids[i]);
	}
	free(ids);
	ck_assert_str_eq(got, want);
}

START_TEST(start_once_ever)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_ledger *l = open_ledger();
	struct fl_ledger_entry e;

	ck_assert(!fl_ledger_find(l, 42, NULL));
	ck_assert_int_eq(start(l, 42, "acme", 1, APPLY, 3), FL_OK);
	ck_assert_int_eq(start(l, 42, "acme", 1, APPLY, 3), FL_ESTATE);
	ck_assert_int_eq(start(l, 42, "other", 2, CHECK, 3), FL_ESTATE);
	step(l, 42, false, "m1");
	step(l, 42, false, "m2");
	finish(l, 42, APPLIED, 7);
	ck_assert_int_eq(fl_ledger_finish(l, 42, FAILED, 1, 8, "x", 1, err), FL_ESTATE);
	ck_assert_int_eq(fl_ledger_step(l, 42, false, "m3", err), FL_ESTATE);
	ck_assert_int_eq(fl_ledger_step(l, 43, false, "m3", err), FL_ESTATE);
	fl_ledger_close(l);

	l = open_ledger();
	ck_assert_int_eq(start(l, 42, "acme", 1, APPLY, 3), FL_ESTATE);
	ck_assert(fl_ledger_find(l, 42, &e));
	ck_assert_str_eq(e.tenant_id, "acme");
	ck_assert_str_eq(e.rollout_id, "r-1");
	ck_assert_str_eq(e.target, "20250101000000_b");
	ck_assert_int_eq(e.kind, APPLY);
	ck_assert_uint_eq(e.release_sequence, 3);
	ck_assert_uint_eq(e.n_applied, 2);
	ck_assert_str_eq(e.applied[1], "m2");
	ck_assert(e.finished);
	ck_assert_int_eq(e.outcome, APPLIED);
	ck_assert_uint_eq(e.journal_id, 7);
	ck_assert_uint_eq(e.report_len, strlen("report of 42"));
	ck_assert_mem_eq(e.report, "report of 42", e.report_len);
	ck_assert_uint_eq(e.order_hash[0], 1);
	fl_ledger_entry_fini(&e);

	/* compaction keeps every fact */
	ck_assert_int_eq(fl_ledger_compact(l, 0, err), FL_OK);
	fl_ledger_close(l);
	l = open_ledger();
	ck_assert_int_eq(start(l, 42, "acme", 1, APPLY, 3), FL_ESTATE);
	ck_assert(fl_ledger_find(l, 42, &e));
	ck_assert_uint_eq(e.n_applied, 2);
	ck_assert_str_eq(e.applied[0], "m1");
	ck_assert_uint_eq(e.journal_id, 7);
	ck_assert_mem_eq(e.report, "report of 42", e.report_len);
	fl_ledger_entry_fini(&e);
	ck_assert_uint_eq(fl_ledger_count(l), 1);
	fl_ledger_close(l);
}
END_TEST

START_TEST(tenant_sequence)
{
	struct fl_ledger *l = open_ledger();

	ck_assert_uint_eq(fl_ledger_tenant_sequence(l, "acme"), 0);
	/* a check, a refusal, a revert: none counts */
	ck_assert_int_eq(start(l, 1, "acme", 1, CHECK, 9), FL_OK);
	finish(l, 1, 12, 1);
	ck_assert_int_eq(start(l, 2, "acme", 1, APPLY, 9), FL_OK);
	finish(l, 2, 8 /* REFUSED */, 2);
	ck_assert_int_eq(start(l, 3, "acme", 1, REVERT, 9), FL_OK);
	step(l, 3, true, "m1");
	finish(l, 3, 3, 3);
	ck_assert_uint_eq(fl_ledger_tenant_sequence(l, "acme"), 0);
	/* an apply that applied something counts, finished or not */
	ck_assert_int_eq(start(l, 4, "acme", 1, APPLY, 4), FL_OK);
	step(l, 4, false, "m1");
	ck_assert_uint_eq(fl_ledger_tenant_sequence(l, "acme"), 4);
	/* one that applied nothing but reached the target (skipped) counts */
	ck_assert_int_eq(start(l, 5, "acme", 1, APPLY, 6), FL_OK);
	finish(l, 5, 6 /* SKIPPED */, 5);
	ck_assert_uint_eq(fl_ledger_tenant_sequence(l, "acme"), 6);
	/* a failed one that applied nothing does not */
	ck_assert_int_eq(start(l, 6, "acme", 1, APPLY, 8), FL_OK);
	finish(l, 6, FAILED, 6);
	ck_assert_uint_eq(fl_ledger_tenant_sequence(l, "acme"), 6);
	ck_assert_uint_eq(fl_ledger_tenant_sequence(l, "other"), 0);
	fl_ledger_close(l);
	l = open_ledger();
	ck_assert_uint_eq(fl_ledger_tenant_sequence(l, "acme"), 6);
	fl_ledger_close(l);
}
END_TEST

/* The floor is checked again when the start is written, under the ledger's
 * lock: an assignment verified while another one for the tenant ran (and
 * moved it to a newer release) is refused there, not run. */
START_TEST(start_refuses_below_floor)
{
	struct fl_ledger *l = open_ledger();
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_ledger_start s = {0};

	/* both verified against floor 0; the newer one runs first */
	ck_assert_int_eq(start(l, 1, "acme", 1, APPLY, 5), FL_OK);
	step(l, 1, false, "m1");
	finish(l, 1, APPLIED, 1);
	ck_assert_int_eq(start(l, 2, "acme", 2, APPLY, 3), FL_EAUTH);
	ck_assert(!fl_ledger_find(l, 2, NULL));
	/* every kind: a revert or a check under an older release alike */
	ck_assert_int_eq(start(l, 3, "acme", 2, REVERT, 4), FL_EAUTH);
	ck_assert_int_eq(start(l, 4, "acme", 2, CHECK, 4), FL_EAUTH);
	/* the same sequence, a newer one, another tenant: fine */
	ck_assert_int_eq(start(l, 5, "acme", 1, CHECK, 5), FL_OK);
	ck_assert_int_eq(start(l, 6, "acme", 3, APPLY, 7), FL_OK);
	ck_assert_int_eq(start(l, 7, "beta", 2, APPLY, 3), FL_OK);
	/* the message names both sequences */
	s.assignment_id = 8;
	s.release_sequence = 2;
	s.tenant_id = "acme";
	s.kind = APPLY;
	ck_assert_int_eq(fl_ledger_start(l, &s, err), FL_EAUTH);
	ck_assert_msg(strstr(err, "sequence 2 is older than sequence 5") != NULL, "%s", err);
	fl_ledger_close(l);
}
END_TEST

START_TEST(applied_under_order)
{
	struct fl_ledger *l = open_ledger();

	/* order 1 applies m1, m2 on acme; m3 on beta */
	ck_assert_int_eq(start(l, 1, "acme", 1, APPLY, 1), FL_OK);
	step(l, 1, false, "m1");
	step(l, 1, false, "m2");
	finish(l, 1, APPLIED, 1);
	ck_assert_int_eq(start(l, 2, "beta", 1, APPLY, 1), FL_OK);
	step(l, 2, false, "m3");
	/* order 2 (of the same release) applies m4 on acme */
	ck_assert_int_eq(start(l, 3, "acme", 2, APPLY, 1), FL_OK);
	step(l, 3, false, "m4");
	finish(l, 3, APPLIED, 3);
	expect_under(l, "acme", 1, "m1,m2");
	expect_under(l, "acme", 2, "m4");
	expect_under(l, "beta", 1, "m3");
	expect_under(l, "acme", 3, "");
	/* a revert under any order takes a migration off */
	ck_assert_int_eq(start(l, 4, "acme", 2, REVERT, 1), FL_OK);
	step(l, 4, true, "m4");
	step(l, 4, true, "m2");
	finish(l, 4, 3, 4);
	expect_under(l, "acme", 1, "m1");
	expect_under(l, "acme", 2, "");
	/* applied again under order 1: it is its again */
	ck_assert_int_eq(start(l, 5, "acme", 1, APPLY, 1), FL_OK);
	step(l, 5, false, "m2");
	finish(l, 5, APPLIED, 5);
	expect_under(l, "acme", 1, "m1,m2");
	fl_ledger_close(l);
	l = open_ledger();
	expect_under(l, "acme", 1, "m1,m2");
	expect_under(l, "beta", 1, "m3");
	fl_ledger_close(l);
}
END_TEST

START_TEST(unfinished_after_crash)
{
	struct fl_ledger *l = open_ledger();
	uint64_t *ids;
	size_t n;

	ck_assert_int_eq(start(l, 10, "a", 1, APPLY, 1), FL_OK);
	finish(l, 10, APPLIED, 1);
	ck_assert_int_eq(start(l, 11, "b", 1, APPLY, 1), FL_OK);
	step(l, 11, false, "m1");
	ck_assert_int_eq(start(l, 12, "c", 1, CHECK, 1), FL_OK);
	fl_ledger_close(l); /* as if the agent died here */
	l = open_ledger();
	fl_ledger_unfinished(l, &ids, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(ids[0], 11);
	ck_assert_uint_eq(ids[1], 12);
	free(ids);
	finish(l, 11, CANCELED, 2);
	fl_ledger_unfinished(l, &ids, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(ids[0], 12);
	free(ids);
	fl_ledger_close(l);
}
END_TEST

START_TEST(torn_tail_every_offset)
{
	struct fl_ledger *l = open_ledger();
	off_t good, full, at;
	int fd;

	ck_assert_int_eq(start(l, 1, "acme", 1, APPLY, 1), FL_OK);
	step(l, 1, false, "m1");
	good = file_size();
	finish(l, 1, APPLIED, 9);
	full = file_size();
	fl_ledger_close(l);
	for (at = good; at < full; at++) {
		struct fl_ledger_entry e;

		ck_assert_int_eq(truncate(path, good), 0);
		l = open_ledger();
		finish(l, 1, APPLIED, 9);
		fl_ledger_close(l);
		ck_assert_int_eq(file_size(), full);
		fd = open(path, O_WRONLY);
		ck_assert_int_eq(ftruncate(fd, at), 0);
		close(fd);

		l = open_ledger();
		ck_assert(fl_ledger_find(l, 1, &e));
		ck_assert(!e.finished);
		ck_assert_uint_eq(e.n_applied, 1);
		fl_ledger_entry_fini(&e);
		ck_assert_int_eq(file_size(), good);
		fl_ledger_close(l);
	}
}
END_TEST

/* A damaged record with good ones after it is no torn write (every ledger
 * record but a STEP is synced before the next is written): cutting there would make
 * the agent forget assignments it ran and the release sequences of its
 * tenants, so the ledger is refused as it is, with the offset to cut at on
 * purpose. Before, the cut dropped the newer floor and the agent took an
 * older release again. */
START_TEST(damage_before_good_records_refused)
{
	struct fl_ledger *l = open_ledger();
	char err[FL_ERRBUF_SIZE] = "", want[64];
	off_t one, size;
	char byte;
	int fd;

	ck_assert_int_eq(start(l, 1, "acme", 1, APPLY, 1), FL_OK);
	step(l, 1, false, "m1");
	finish(l, 1, APPLIED, 1);
	one = file_size();
	ck_assert_int_eq(start(l, 2, "acme", 1, CHECK, 1), FL_OK);
	finish(l, 2, 12, 2);
	ck_assert_int_eq(start(l, 3, "acme", 2, APPLY, 7), FL_OK);
	step(l, 3, false, "m2");
	finish(l, 3, APPLIED, 3);
	fl_ledger_close(l);
	size = file_size();

	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &byte, 1, one + 30), 1);
	byte ^= 0x04;
	ck_assert_int_eq(pwrite(fd, &byte, 1, one + 30), 1);
	close(fd);
	l = NULL;
	ck_assert_int_eq(fl_ledger_open(path, &l, err), FL_EPARSE);
	ck_assert_ptr_null(l);
	snprintf(want, sizeof(want), "truncate -s %lld ", (long long)one);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	ck_assert_int_eq(file_size(), size);
	ck_assert_int_eq(fl_ledger_open(path, &l, err), FL_EPARSE); /* and again */
	ck_assert_int_eq(file_size(), size);
}
END_TEST

/* Steps are synced in groups, outside the ledger's lock (workers share the
 * disk's flushes): a crash may tear several at the tail, the earlier one
 * and not the later. That is a torn tail, cut, not damage: the agent must
 * start. Before, any bad record followed by a good one was refused. */
START_TEST(steps_torn_in_a_group_are_cut)
{
	struct fl_ledger *l = open_ledger();
	struct fl_ledger_entry e;
	off_t before, middle;
	char byte;
	int fd;

	ck_assert_int_eq(start(l, 1, "acme", 1, APPLY, 1), FL_OK);
	ck_assert_int_eq(start(l, 2, "beta", 1, APPLY, 1), FL_OK);
	step(l, 1, false, "m1");
	before = file_size();
	step(l, 2, false, "m1"); /* torn */
	middle = file_size();
	step(l, 1, false, "m2"); /* written, after it */
	fl_ledger_close(l);

	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &byte, 1, before + (middle - before) / 2), 1);
	byte ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &byte, 1, before + (middle - before) / 2), 1);
	close(fd);

	l = open_ledger();
	ck_assert_int_eq(file_size(), before);
	ck_assert(fl_ledger_find(l, 1, &e));
	ck_assert_uint_eq(e.n_applied, 1);
	fl_ledger_entry_fini(&e);
	ck_assert(fl_ledger_find(l, 2, &e));
	ck_assert_uint_eq(e.n_applied, 0);
	fl_ledger_entry_fini(&e);
	fl_ledger_close(l);
}
END_TEST

static int64_t wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum fl_err start_exp(struct fl_ledger *l, uint64_t id, const char *tenant, uint8_t order,
                             int kind, uint64_t seq, int64_t expires)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_ledger_start s = {0};

	s.assignment_id = id;
	memset(s.order_hash, order, sizeof(s.order_hash));
	s.release_sequence = seq;
	s.tenant_id = tenant;
	s.rollout_id = "r-1";
	s.kind = kind;
	s.target = "";
	s.started_at_ms = expires - 1000;
	s.expires_at_ms = expires;
	return fl_ledger_start(l, &s, err);
}

/* An agent that runs for months: assignments whose orders expired long ago
 * are dropped as the ledger compacts itself, while the tenants' sequence
 * floors, unfinished work and work under valid orders stay. Before, every
 * assignment ever run stayed in memory and in the file, and every floor
 * lookup scanned them all. */
START_TEST(expired_assignments_dropped)
{
	struct fl_ledger *l = open_ledger();
	int64_t now = wall_now(), old = now - INT64_C(30) * 86400000;
	char tenant[16];
	uint64_t id;

	ck_assert_int_eq(start_exp(l, 1, "acme", 7, APPLY, 9, old), FL_OK);
	step(l, 1, false, "m1");
	finish(l, 1, APPLIED, 1);
	ck_assert_int_eq(start_exp(l, 2, "acme", 7, APPLY, 9, old), FL_OK); /* unfinished */
	ck_assert_int_eq(start_exp(l, 3, "acme", 8, APPLY, 9, now + 86400000), FL_OK);
	step(l, 3, false, "m2");
	finish(l, 3, APPLIED, 3);
	ck_assert_int_eq(start(l, 4, "acme", 9, CHECK, 9), FL_OK); /* no expiry known */
	finish(l, 4, 12, 4);
	/* months of checks under orders long expired */
	for (id = 100; id < 3100; id++) {
		snprintf(tenant, sizeof(tenant), "t%llu", (unsigned long long)(id % 50));
		ck_assert_int_eq(start_exp(l, id, tenant, 7, CHECK, 1, old), FL_OK);
		finish(l, id, 12, id);
	}
	ck_assert_uint_lt(fl_ledger_count(l), 1000);
	for (int pass = 0; pass < 2; pass++) {
		ck_assert(!fl_ledger_find(l, 1, NULL)); /* dropped */
		ck_assert(fl_ledger_find(l, 2, NULL));  /* unfinished: kept */
		ck_assert(fl_ledger_find(l, 3, NULL));  /* its order is valid */
		ck_assert(fl_ledger_find(l, 4, NULL));  /* no expiry recorded */
		ck_assert(fl_ledger_find(l, 3099, NULL) || fl_ledger_count(l) < 10);
		ck_assert_uint_eq(fl_ledger_tenant_sequence(l, "acme"), 9);
		expect_under(l, "acme", 8, "m2");
		/* what the dropped entry applied no revert can be bounded by */
		expect_under(l, "acme", 7, "");
		ck_assert_int_eq(start(l, 5 + (uint64_t)pass, "acme", 7, APPLY, 8), FL_EAUTH);
		fl_ledger_close(l);
		l = open_ledger();
	}
	/* an explicit compaction at a time when everything finished expired */
	ck_assert_int_eq(fl_ledger_compact(l, now + INT64_C(30) * 86400000, NULL), FL_OK);
	ck_assert(!fl_ledger_find(l, 3, NULL));
	ck_assert(fl_ledger_find(l, 2, NULL));
	ck_assert_uint_eq(fl_ledger_count(l), 2);
	fl_ledger_close(l);
	l = open_ledger();
	ck_assert_uint_eq(fl_ledger_tenant_sequence(l, "acme"), 9);
	ck_assert_uint_eq(fl_ledger_count(l), 2);
	fl_ledger_close(l);
}
END_TEST

/* The child starts assignments 1, 2, 3... each with two steps, finishing
 * even ones, and tells the parent after each call returns. */
static void child_writer(int wfd)
{
	char err[FL_ERRBUF_SIZE], line[64];
	struct fl_ledger *l = NULL;
	uint64_t id;
	int n;

	if (fl_ledger_open(path, &l, err) != FL_OK)
		_exit(2);
	for (id = 1;; id++) {
		if (start(l, id, id % 2 ? "odd" : "even", 1, APPLY, id) != FL_OK)
			_exit(3);
		n = snprintf(line, sizeof(line), "s %llu\n", (unsigned long long)id);
		if (write(wfd, line, (size_t)n) != n)
			_exit(4);
		if (fl_ledger_step(l, id, false, "m1", err) != FL_OK ||
		    fl_ledger_step(l, id, false, "m2", err) != FL_OK)
			_exit(5);
		n = snprintf(line, sizeof(line), "t %llu\n", (unsigned long long)id);
		if (write(wfd, line, (size_t)n) != n)
			_exit(6);
		if (id % 2 == 0) {
			if (fl_ledger_finish(l, id, APPLIED, 1, id, "r", 1, err) != FL_OK)
				_exit(7);
			n = snprintf(line, sizeof(line), "f %llu\n", (unsigned long long)id);
			if (write(wfd, line, (size_t)n) != n)
				_exit(8);
		}
	}
}

START_TEST(sigkill_while_writing)
{
	enum { WANT = 300 };
	static char state[100000];
	unsigned long long id, max = 0, even_seq = 0;
	struct fl_ledger *l;
	int fds[2], status;
	char kind;
	FILE *in;
	pid_t pid;

	memset(state, 0, sizeof(state));
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		child_writer(fds[1]);
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	while (max < WANT && fscanf(in, " %c %llu", &kind, &id) == 2) {
		ck_assert_uint_lt(id, sizeof(state));
		state[id] = kind;
		if (id > max)
			max = id;
	}
	kill(pid, SIGKILL);
	while (fscanf(in, " %c %llu", &kind, &id) == 2) {
		ck_assert_uint_lt(id, sizeof(state));
		state[id] = kind;
		if (id > max)
			max = id;
	}
	fclose(in);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));

	l = open_ledger();
	for (id = 1; id <= max; id++) {
		struct fl_ledger_entry e;

		ck_assert_msg(fl_ledger_find(l, id, &e), "assignment %llu lost", id);
		ck_assert_str_eq(e.tenant_id, id % 2 ? "odd" : "even");
		if (state[id] == 't' || state[id] == 'f')
			ck_assert_uint_eq(e.n_applied, 2);
		if (state[id] == 'f') {
			ck_assert(e.finished);
			ck_assert_uint_eq(e.journal_id, id);
		}
		if (id < max) /* the child moved on: everything before was done */
			ck_assert_uint_eq(e.finished, id % 2 == 0);
		if (id % 2 == 0 && (e.n_applied > 0 || e.finished))
			even_seq = id;
		fl_ledger_entry_fini(&e);
		/* never run twice, even after the crash */
		ck_assert_int_eq(start(l, id, "x", 1, APPLY, 1), FL_ESTATE);
	}
	ck_assert_uint_ge(even_seq, max - 2);
	ck_assert_uint_eq(fl_ledger_tenant_sequence(l, "even"), even_seq);
	fl_ledger_close(l);
}
END_TEST

/* A crash between the ledger's FINISH and the journal's REPORT: the next
 * start journals the report the ledger holds, under its own journal id, and
 * gives no later report that id. */
START_TEST(recover_journals_a_lost_report)
{
	char err[FL_ERRBUF_SIZE] = "", jpath[600];
	struct fl_ledger *l = open_ledger();
	struct fl_journal *j = NULL;
	struct fl_worker_deps d;
	struct fl_buf b = FL_BUF_INIT;
	uint64_t id;

	fl_test_fmt(jpath, sizeof(jpath), "%s.journal", path);
	ck_assert_int_eq(fl_journal_open(jpath, &j, err), FL_OK);
	ck_assert_int_eq(start(l, 1, "acme", 1, APPLY, 1), FL_OK);
	finish(l, 1, APPLIED, 5); /* journal id 5, never journaled */
	ck_assert_int_eq(start(l, 2, "acme", 1, APPLY, 1), FL_OK);
	finish(l, 2, APPLIED, 4); /* id 4 journaled and acknowledged long ago */
	ck_assert_int_eq(fl_journal_put(j, 4, "report of 2", 11, err), FL_OK);
	ck_assert_int_eq(fl_journal_ack(j, 4, err), FL_OK);
	memset(&d, 0, sizeof(d));
	d.journal = j;
	d.ledger = l;
	d.agent_id = "agent";
	fl_worker_recover(&d);
	ck_assert(fl_journal_pending(j, 5));
	ck_assert(!fl_journal_pending(j, 4));
	ck_assert(fl_journal_next(j, 0, &id, &b));
	ck_assert_uint_eq(id, 5);
	ck_assert_mem_eq(b.data, "report of 1", b.len);
	ck_assert_uint_eq(fl_journal_reserve(j), 6);
	fl_buf_fini(&b);
	fl_journal_close(j);
	fl_ledger_close(l);
}
END_TEST

/* Two workers finish at once: the second journals its report, the agent
 * dies before the first one's put (its report is in the ledger). Recovery
 * looked only above the journal's highest id, and lost the first one for
 * good; across a compaction (acknowledgements while the first waited) too. */
START_TEST(recover_out_of_order_report)
{
	char err[FL_ERRBUF_SIZE] = "", jpath[600], text[32];
	struct fl_ledger *l = open_ledger();
	struct fl_journal *j = NULL;
	struct fl_worker_deps d;
	uint64_t a, b, c;

	fl_test_fmt(jpath, sizeof(jpath), "%s.journal", path);
	ck_assert_int_eq(fl_journal_open(jpath, &j, err), FL_OK);
	a = fl_journal_reserve(j); /* the first worker */
	b = fl_journal_reserve(j); /* the second */
	ck_assert_int_eq(start(l, 1, "acme", 1, APPLY, 1), FL_OK);
	ck_assert_int_eq(start(l, 2, "beta", 1, APPLY, 1), FL_OK);
	finish(l, 1, APPLIED, a);
	finish(l, 2, APPLIED, b);
	ck_assert_int_eq(fl_journal_put(j, b, "report of 2", 11, err), FL_OK);
	/* many more reports, acknowledged: the journal compacts meanwhile */
	for (uint64_t id = 10; id < 10 + FL_JOURNAL_COMPACT_AFTER + 5; id++) {
		c = fl_journal_reserve(j);
		ck_assert_int_eq(start(l, id, "gamma", 1, CHECK, 1), FL_OK);
		finish(l, id, 12, c);
		snprintf(text, sizeof(text), "report of %llu", (unsigned long long)id);
		ck_assert_int_eq(fl_journal_put(j, c, text, strlen(text), err), FL_OK);
		ck_assert_int_eq(fl_journal_ack(j, c, err), FL_OK);
	}
	fl_journal_close(j); /* the crash: a never journaled */
	fl_ledger_close(l);

	l = open_ledger();
	ck_assert_int_eq(fl_journal_open(jpath, &j, err), FL_OK);
	memset(&d, 0, sizeof(d));
	d.journal = j;
	d.ledger = l;
	d.agent_id = "agent";
	fl_worker_recover(&d);
	ck_assert_msg(fl_journal_pending(j, a), "the first report was lost");
	ck_assert(fl_journal_pending(j, b));
	ck_assert_uint_eq(fl_journal_count(j), 2); /* the acknowledged ones stay so */
	ck_assert_uint_gt(fl_journal_reserve(j), c);
	fl_journal_close(j);
	fl_ledger_close(l);
}
END_TEST

static Suite *ledger_suite(void)
{
	Suite *s = suite_create("ledger");
	TCase *tc = tcase_create("ledger");

	tcase_add_unchecked_fixture(tc, make_root, remove_root);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, start_once_ever);
	tcase_add_test(tc, tenant_sequence);
	tcase_add_test(tc, start_refuses_below_floor);
	tcase_add_test(tc, applied_under_order);
	tcase_add_test(tc, unfinished_after_crash);
	tcase_add_test(tc, torn_tail_every_offset);
	tcase_add_test(tc, steps_torn_in_a_group_are_cut);
	tcase_add_test(tc, damage_before_good_records_refused);
	tcase_add_test(tc, expired_assignments_dropped);
	tcase_add_test(tc, sigkill_while_writing);
	tcase_add_test(tc, recover_journals_a_lost_report);
	tcase_add_test(tc, recover_out_of_order_report);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ledger_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
