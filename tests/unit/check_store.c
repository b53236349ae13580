/*
 * The coordinator's store (coordinator/store.h) on a real SQLite file in a
 * temporary folder: schema migrations from empty, reopening, a newer schema
 * refused, a second process refused, every table's functions, and a writer
 * killed with SIGKILL between commits losing nothing that was committed.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store_rollouts.h"
#include "store_sqlite_int.h"
#include "testutil.h"

static char dir[256];
static char path[320];
static char err[FL_ERRBUF_SIZE];

static void setup(void)
{
	fl_log_set_level(FL_LOG_ERROR);
	fl_test_tmp_root(dir, sizeof(dir), "check_store");
	fl_test_fmt(path, sizeof(path), "%s/store.db", dir);
	err[0] = '\0';
}

static void teardown(void)
{
	fl_test_rm_rf(dir);
}

static struct fl_store *open_ok(bool *created)
{
	struct fl_store *st = NULL;
	bool c = false;

	ck_assert_msg(fl_store_open(path, &st, &c, err) == FL_OK, "%s", err);
	if (created)
		*created = c;
	return st;
}

static void key(uint8_t pk[32], int n)
{
	memset(pk, 0, 32);
	pk[0] = (uint8_t)n;
	pk[31] = 0xa5;
}

static void add_agent(struct fl_store *st, int n, const char *name)
{
	struct fl_store_agent a = {0};

	key(a.pk, n);
	a.name = (char *)name;
	fl_labels_init(&a.labels);
	a.approved_at_ms = 1000;
	a.approved_by = "config";
	ck_assert_msg(fl_store_agent_add(st, &a, err) == FL_OK, "%s", err);
}

START_TEST(migrations_from_empty)
{
	struct fl_store *st;
	struct stat sb;
	bool created;

	st = open_ok(&created);
	ck_assert(created);
	ck_assert_int_eq(fl_store_schema_version(st), FL_STORE_SCHEMA_VERSION);
	ck_assert_int_ge(FL_STORE_SCHEMA_VERSION, 2);
	ck_assert_msg(fl_store_check(st, err) == FL_OK, "%s", err);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 077, 0); /* token hashes, audit: ours only */
	add_agent(st, 1, "a1");
	fl_store_close(st);
}
END_TEST

START_TEST(reopen_keeps_data)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_agent a;
	bool created = true;
	uint8_t pk[32];
	uint64_t id1, id2;

	add_agent(st, 1, "a1");
	ck_assert(fl_store_assignment_next_id(st, &id1, err) == FL_OK);
	fl_store_close(st);

	st = open_ok(&created);
	ck_assert(!created);
	key(pk, 1);
	ck_assert_msg(fl_store_agent_get(st, pk, &a, err) == FL_OK, "%s", err);
	ck_assert_str_eq(a.name, "a1");
	ck_assert_int_eq(a.state, FL_STORE_AGENT_APPROVED);
	fl_store_agent_fini(&a);
	/* ids are never handed out twice, across reopening too */
	ck_assert(fl_store_assignment_next_id(st, &id2, err) == FL_OK);
	ck_assert_uint_gt(id2, id1);
	fl_store_close(st);
}
END_TEST

START_TEST(newer_schema_refused)
{
	struct fl_store *st = open_ok(NULL);
	bool created;

	fl_store_close(st);
	ck_assert_msg(fl_store_test_set_version(path, FL_STORE_SCHEMA_VERSION + 1, err) == FL_OK,
	              "%s", err);
	ck_assert_int_eq(fl_store_open(path, &st, &created, err), FL_ESTATE);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(err, "newer") || strstr(err, "upgrade"), "%s", err);
	ck_assert_msg(strstr(err, path) != NULL, "%s", err);
}
END_TEST

/* A store written by schema 3 (before waves.bake_paused_at) opens as
 * schema 4: the step adds the column, the rows stay, the clock runs. */
START_TEST(migrates_from_schema_3)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_wave *waves;
	struct fl_store_agent a;
	uint8_t pk[32];
	size_t n;
	bool created = true;

	ck_assert_int_eq(FL_STORE_SCHEMA_VERSION, 4);
	add_agent(st, 1, "a1");
	/* back to schema 3 as it was: no bake_paused_at; a baking wave */
	ck_assert_int_eq(sqlite3_exec(fl_store_sqlite_db(st),
	                              "PRAGMA foreign_keys = OFF;"
	                              "ALTER TABLE waves DROP COLUMN bake_paused_at;"
	                              "INSERT INTO waves (rollout_id, idx, name, state, bake_until,"
	                              " next_check_at) VALUES ('r-1', 0, 'canary', 3, 5000, 2000);",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	fl_store_close(st);
	ck_assert_msg(fl_store_test_set_version(path, 3, err) == FL_OK, "%s", err);

	st = open_ok(&created);
	ck_assert(!created);
	ck_assert_int_eq(fl_store_schema_version(st), 4);
	key(pk, 1);
	ck_assert_msg(fl_store_agent_get(st, pk, &a, err) == FL_OK, "%s", err);
	fl_store_agent_fini(&a);
	ck_assert_msg(fl_store_wave_list(st, "r-1", &waves, &n, err) == FL_OK, "%s", err);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(waves[0].bake_until_ms, 5000);
	ck_assert_int_eq(waves[0].next_check_at_ms, 2000);
	ck_assert_int_eq(waves[0].bake_paused_at_ms, 0);
	fl_store_waves_free(waves, n);
	ck_assert_int_eq(
	    sqlite3_exec(fl_store_sqlite_db(st), "DELETE FROM waves", NULL, NULL, NULL), SQLITE_OK);
	fl_store_close(st);
}
END_TEST

START_TEST(not_a_store_refused)
{
	struct fl_store *st;
	FILE *f;

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not a database, but it is long enough to look like a header of one\n", f);
	for (int i = 0; i < 100; i++)
		fputs("padding padding padding padding padding padding\n", f);
	fclose(f);
	ck_assert_int_eq(fl_store_open(path, &st, NULL, err), FL_EDB);
	ck_assert_msg(strstr(err, path) != NULL, "%s", err);
}
END_TEST

START_TEST(second_process_refused)
{
	struct fl_store *st = open_ok(NULL);
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct fl_store *other = NULL;
		char e[FL_ERRBUF_SIZE] = "";

		_exit(fl_store_open(path, &other, NULL, e) == FL_EDB && other == NULL ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fl_store_close(st);
}
END_TEST

START_TEST(rollback_discards)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_agent a;
	uint8_t pk[32];

	ck_assert(fl_store_begin(st, err) == FL_OK);
	ck_assert(fl_store_in_transaction(st));
	ck_assert_int_eq(fl_store_begin(st, err), FL_ESTATE);
	add_agent(st, 2, "a2");
	fl_store_rollback(st);
	ck_assert(!fl_store_in_transaction(st));
	key(pk, 2);
	ck_assert_int_eq(fl_store_agent_get(st, pk, &a, err), FL_ENOENT);
	ck_assert(fl_store_begin(st, err) == FL_OK);
	add_agent(st, 2, "a2");
	ck_assert(fl_store_commit(st, err) == FL_OK);
	ck_assert(fl_store_agent_get(st, pk, &a, err) == FL_OK);
	fl_store_agent_fini(&a);
	fl_store_close(st);
}
END_TEST

START_TEST(releases)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_release_migration migs[2] = {{"m1", true}, {"m2", false}};
	struct fl_store_release r = {0}, got, *list;
	uint8_t file[3] = {1, 2, 3}, file2[4] = {9, 9, 9, 9}, h[32];
	uint64_t seq;
	size_t n;

	memset(r.hash, 0x11, 32);
	r.project_id = "acme";
	r.sequence = 7;
	r.name = "v7";
	r.head_migration_id = "m2";
	r.migration_count = 2;
	r.signer_key_ids = "aaaa";
	r.pushed_at_ms = 5;
	r.pushed_by = "op";
	r.file = file;
	r.file_len = sizeof(file);
	r.migrations = migs;
	r.n_migrations = 2;
	ck_assert_msg(fl_store_release_add(st, &r, err) == FL_OK, "%s", err);
	/* the same hash, or the same project sequence, is taken */
	ck_assert_int_eq(fl_store_release_add(st, &r, err), FL_ESTATE);
	memset(r.hash, 0x22, 32);
	ck_assert_int_eq(fl_store_release_add(st, &r, err), FL_ESTATE);
	r.sequence = 9;
	r.n_migrations = 0;
	ck_assert_msg(fl_store_release_add(st, &r, err) == FL_OK, "%s", err);

	memset(h, 0x11, 32);
	ck_assert(fl_store_release_get(st, h, FL_STORE_WITH_FILE | FL_STORE_WITH_MIGRATIONS, &got,
	                               err) == FL_OK);
	ck_assert_uint_eq(got.sequence, 7);
	ck_assert_uint_eq(got.file_len, 3);
	ck_assert_mem_eq(got.file, file, 3);
	ck_assert_uint_eq(got.n_migrations, 2);
	ck_assert_str_eq(got.migrations[1].id, "m2");
	ck_assert(got.migrations[0].has_down && !got.migrations[1].has_down);
	fl_store_release_fini(&got);
	ck_assert(fl_store_release_set_file(st, h, file2, 4, "aaaa,bbbb", err) == FL_OK);
	ck_assert(fl_store_release_get(st, h, FL_STORE_WITH_FILE, &got, err) == FL_OK);
	ck_assert_uint_eq(got.file_len, 4);
	ck_assert_str_eq(got.signer_key_ids, "aaaa,bbbb");
	fl_store_release_fini(&got);

	ck_assert(fl_store_release_max_sequence(st, "acme", &seq, err) == FL_OK);
	ck_assert_uint_eq(seq, 9);
	ck_assert(fl_store_release_max_sequence(st, "other", &seq, err) == FL_OK);
	ck_assert_uint_eq(seq, 0);
	ck_assert(fl_store_release_by_sequence(st, "acme", 7, h, err) == FL_OK);
	ck_assert_int_eq(h[0], 0x11);
	ck_assert_int_eq(fl_store_release_by_sequence(st, "acme", 8, h, err), FL_ENOENT);
	ck_assert(fl_store_release_list(st, 10, &list, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(list[0].sequence, 9); /* newest first */
	ck_assert_ptr_null(list[0].file);
	fl_store_releases_free(list, n);
	memset(h, 0x33, 32);
	ck_assert_int_eq(fl_store_release_get(st, h, 0, &got, err), FL_ENOENT);
	fl_store_close(st);
}
END_TEST

START_TEST(agents)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_agent a = {0}, got, *list;
	uint8_t pk[32];
	size_t n;

	add_agent(st, 1, "a1");
	add_agent(st, 2, "a2");
	/* a known key, or a name taken */
	key(a.pk, 1);
	a.name = "other";
	a.approved_by = "x";
	ck_assert_int_eq(fl_store_agent_add(st, &a, err), FL_ESTATE);
	key(a.pk, 3);
	a.name = "a1";
	ck_assert_int_eq(fl_store_agent_add(st, &a, err), FL_ESTATE);

	key(pk, 2);
	ck_assert(fl_store_agent_seen(st, pk, "0.1.0", 1, 4242, err) == FL_OK);
	ck_assert(fl_store_agent_revoke(st, pk, 50, "admin1", "lost laptop", err) == FL_OK);
	ck_assert(fl_store_agent_revoke(st, pk, 60, "admin1", "again", err) == FL_OK);
	ck_assert(fl_store_agent_get(st, pk, &got, err) == FL_OK);
	ck_assert_int_eq(got.state, FL_STORE_AGENT_REVOKED);
	ck_assert_int_eq(got.revoked_at_ms, 50); /* the first revocation stands */
	ck_assert_str_eq(got.revoke_reason, "lost laptop");
	ck_assert_str_eq(got.version, "0.1.0");
	ck_assert_int_eq(got.last_seen_at_ms, 4242);
	fl_store_agent_fini(&got);
	key(pk, 9);
	ck_assert_int_eq(fl_store_agent_revoke(st, pk, 1, "a", "b", err), FL_ENOENT);

	ck_assert(fl_store_agent_list(st, false, &list, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(list[0].name, "a1");
	fl_store_agents_free(list, n);
	ck_assert(fl_store_agent_list(st, true, &list, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 2);
	fl_store_agents_free(list, n);
	fl_store_close(st);
}
END_TEST

static void tenant(struct fl_store_tenant *t, const char *id, int agent, size_t n_applied)
{
	static struct fl_store_applied applied[8];
	static struct fl_store_failed failed[1] = {{"m9", "ff", 5, 1, "boom"}};
	static char ids[8][32];

	memset(t, 0, sizeof(*t));
	t->id = (char *)id;
	key(t->agent_pk, agent);
	t->database = "db";
	t->schema = "";
	fl_labels_init(&t->labels);
	for (size_t i = 0; i < n_applied; i++) {
		snprintf(ids[i], sizeof(ids[i]), "m%zu", i + 1);
		applied[i].id = ids[i];
		applied[i].checksum = "c";
		applied[i].started_at_ms = (int64_t)i;
		applied[i].finished_at_ms = (int64_t)i + 1;
		applied[i].applied_steps_count = 1;
	}
	t->applied = applied;
	t->n_applied = n_applied;
	t->applied_count = (uint32_t)n_applied;
	t->head_migration_id = n_applied ? ids[n_applied - 1] : "";
	t->failed = failed;
	t->n_failed = 1;
	t->failed_count = 1;
	t->fingerprint = "fp";
	t->updated_at_ms = 100;
}

static bool count_tenant(void *arg, const struct fl_store_tenant *t)
{
	(void)t;
	(*(int *)arg)++;
	return true;
}

START_TEST(tenants)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_tenant t, got;
	struct fl_store_drift_row *rows;
	enum fl_store_origin origin;
	uint8_t pk[32];
	char **ids;
	size_t n;
	int count = 0;

	add_agent(st, 1, "a1");
	tenant(&t, "acme", 1, 3);
	ck_assert(fl_labels_set(&t.labels, "ring", "canary", err) == FL_OK);
	ck_assert_msg(fl_store_tenant_put(st, &t, err) == FL_OK, "%s", err);
	fl_labels_fini(&t.labels);
	tenant(&t, "beta", 1, 3);
	t.fingerprint = "other";
	ck_assert(fl_store_tenant_put(st, &t, err) == FL_OK);
	tenant(&t, "gamma", 1, 3);
	ck_assert(fl_store_tenant_put(st, &t, err) == FL_OK);
	/* a tenant of an agent that is not in the store: refused */
	tenant(&t, "orphan", 7, 1);
	ck_assert_int_ne(fl_store_tenant_put(st, &t, err), FL_OK);

	ck_assert(fl_store_tenant_get(st, "acme", FL_STORE_WITH_HISTORY, &got, err) == FL_OK);
	ck_assert_uint_eq(got.n_applied, 3);
	ck_assert_str_eq(got.applied[2].id, "m3");
	ck_assert_str_eq(got.head_migration_id, "m3");
	ck_assert_uint_eq(got.n_failed, 1);
	ck_assert_str_eq(got.failed[0].logs, "boom");
	ck_assert_str_eq(fl_labels_get(&got.labels, "ring"), "canary");
	ck_assert_int_eq(got.first_seen_at_ms, 100);
	fl_store_tenant_fini(&got);

	/* a shorter history replaces the longer one */
	tenant(&t, "acme", 1, 1);
	t.updated_at_ms = 200;
	ck_assert(fl_store_tenant_put(st, &t, err) == FL_OK);
	ck_assert(fl_store_tenant_get(st, "acme", FL_STORE_WITH_HISTORY, &got, err) == FL_OK);
	ck_assert_uint_eq(got.n_applied, 1);
	ck_assert_int_eq(got.first_seen_at_ms, 100);
	ck_assert_int_eq(got.updated_at_ms, 200);
	fl_store_tenant_fini(&got);

	ck_assert(fl_store_tenant_set_rollout(st, "acme", "r-1", 3, "x failed", 300, err) == FL_OK);
	ck_assert_int_eq(fl_store_tenant_set_rollout(st, "nope", "r-1", 3, NULL, 300, err),
	                 FL_ENOENT);
	ck_assert(fl_store_tenant_set_after_report(st, "acme", "m2", 2, NULL, NULL, 310, err) ==
	          FL_OK);
	ck_assert(fl_store_tenant_get(st, "acme", 0, &got, err) == FL_OK);
	ck_assert_str_eq(got.rollout_id, "r-1");
	ck_assert_int_eq(got.rollout_state, 3);
	ck_assert_str_eq(got.last_error, "x failed");
	ck_assert_str_eq(got.head_migration_id, "m2");
	ck_assert_str_eq(got.fingerprint, "fp");
	fl_store_tenant_fini(&got);

	key(pk, 1);
	ck_assert(fl_store_tenant_ids_of_agent(st, pk, &ids, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(ids[0], "acme");
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	ck_assert(fl_store_tenant_set_gone(st, "gamma", 400, err) == FL_OK);
	ck_assert(fl_store_tenant_ids_of_agent(st, pk, &ids, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	ck_assert(fl_store_tenant_each(st, "", false, count_tenant, &count, err) == FL_OK);
	ck_assert_int_eq(count, 2);
	count = 0;
	ck_assert(fl_store_tenant_each(st, "acme", true, count_tenant, &count, err) == FL_OK);
	ck_assert_int_eq(count, 2); /* beta, gamma */

	/* drift: acme (m2, fp) and beta (m3, other) */
	ck_assert(fl_store_drift_rows(st, &rows, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 2);
	fl_store_drift_rows_free(rows, n);

	/* origins: a report's FLOTILLA wins over what was guessed before */
	ck_assert(fl_store_origin_set(st, "acme", "m1", FL_STORE_ORIGIN_BASELINE, 1, err) == FL_OK);
	ck_assert(fl_store_origin_set(st, "acme", "m2", FL_STORE_ORIGIN_EXTERNAL, 1, err) == FL_OK);
	ck_assert(fl_store_origin_set(st, "acme", "m2", FL_STORE_ORIGIN_FLOTILLA, 2, err) == FL_OK);
	ck_assert(fl_store_origin_set(st, "acme", "m2", FL_STORE_ORIGIN_EXTERNAL, 3, err) == FL_OK);
	ck_assert(fl_store_origin_get(st, "acme", "m2", &origin, err) == FL_OK);
	ck_assert_int_eq(origin, FL_STORE_ORIGIN_FLOTILLA);
	ck_assert(fl_store_origin_get(st, "acme", "m1", &origin, err) == FL_OK);
	ck_assert_int_eq(origin, FL_STORE_ORIGIN_BASELINE);
	ck_assert(fl_store_origin_get(st, "acme", "m7", &origin, err) == FL_OK);
	ck_assert_int_eq(origin, 0);
	ck_assert_msg(fl_store_check(st, err) == FL_OK, "%s", err);
	fl_store_close(st);
}
END_TEST

START_TEST(reports_once)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_report *list;
	uint8_t pk[32], body[2] = {8, 1};
	bool dup;
	uint64_t n64;
	size_t n;

	key(pk, 1);
	ck_assert(fl_store_report_add(st, pk, 7, 1, "acme", 1, body, 2, 10, &dup, err) == FL_OK);
	ck_assert(!dup);
	ck_assert(fl_store_report_add(st, pk, 7, 1, "acme", 1, body, 2, 11, &dup, err) == FL_OK);
	ck_assert(dup);
	key(pk, 2); /* another agent's journal id 7 is another report */
	ck_assert(fl_store_report_add(st, pk, 7, 2, "acme", 2, body, 2, 12, &dup, err) == FL_OK);
	ck_assert(!dup);
	ck_assert(fl_store_report_count(st, &n64, err) == FL_OK);
	ck_assert_uint_eq(n64, 2);
	ck_assert(fl_store_report_list(st, "acme", 1, &list, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(list[0].received_at_ms, 12); /* newest first */
	ck_assert_uint_eq(list[0].len, 2);
	fl_store_reports_free(list, n);
	fl_store_close(st);
}
END_TEST

/* The scheduler writes rollouts through functions of its own; a bare row,
 * through the store's internal header, is all this test needs. */
static void add_rollout(struct fl_store *st)
{
	static const char SQL[] =
	    "INSERT INTO rollouts (id, created_seq, order_hash, signed_order, release_hash,"
	    " project_id, target_migration_id, state, created_at, updated_at, created_by,"
	    " signed_by, expires_at) VALUES ('r-1', 1, zeroblob(32), x'00', ?1, 'acme', 'm1',"
	    " 2, 1, 1, 'op', 'rk', 9)";
	sqlite3_stmt *s = fl_store_sqlite_prep(st, SQL, err);
	uint8_t h[32];

	ck_assert_msg(s != NULL, "%s", err);
	memset(h, 0x11, 32);
	fl_store_sqlite_bind_blob(s, 1, h, 32);
	ck_assert_msg(fl_store_sqlite_done(st, s, "add a rollout", err) == FL_OK, "%s", err);
}

START_TEST(assignments)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_assignment a = {0}, got, *list;
	struct fl_store_release r = {0};
	struct fl_store_tenant t;
	uint8_t file[1] = {0};
	size_t n;
	char sql_err[FL_ERRBUF_SIZE];

	add_agent(st, 1, "a1");
	tenant(&t, "acme", 1, 1);
	ck_assert(fl_store_tenant_put(st, &t, err) == FL_OK);
	ck_assert(fl_store_assignment_next_id(st, &a.id, err) == FL_OK);
	a.rollout_id = "r-1";
	a.tenant_id = "acme";
	key(a.agent_pk, 1);
	a.kind = 1;
	a.target_migration_id = "m1";
	a.issued_at_ms = 5;
	/* no such rollout: the foreign key refuses it */
	ck_assert_int_ne(fl_store_assignment_add(st, &a, sql_err), FL_OK);

	memset(r.hash, 0x11, 32);
	r.project_id = "acme";
	r.sequence = 1;
	r.head_migration_id = "m1";
	r.signer_key_ids = "";
	r.pushed_by = "op";
	r.file = file;
	r.file_len = 1;
	ck_assert(fl_store_release_add(st, &r, err) == FL_OK);
	add_rollout(st);
	ck_assert_msg(fl_store_assignment_add(st, &a, err) == FL_OK, "%s", err);
	ck_assert_int_eq(fl_store_assignment_add(st, &a, err), FL_ESTATE);
	ck_assert(fl_store_assignment_outstanding(st, a.agent_pk, &list, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(list[0].id, a.id);
	fl_store_assignments_free(list, n);
	ck_assert(fl_store_assignment_set_state(st, a.id, FL_STORE_ASSIGNMENT_REPORTED, 1, 9,
	                                        err) == FL_OK);
	ck_assert(fl_store_assignment_get(st, a.id, &got, err) == FL_OK);
	ck_assert_int_eq(got.state, FL_STORE_ASSIGNMENT_REPORTED);
	ck_assert_int_eq(got.outcome, 1);
	ck_assert_str_eq(got.tenant_id, "acme");
	fl_store_assignment_fini(&got);
	ck_assert(fl_store_assignment_outstanding(st, a.agent_pk, &list, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 0);
	free(list);
	ck_assert_int_eq(fl_store_assignment_get(st, 999, &got, err), FL_ENOENT);
	fl_store_close(st);
}
END_TEST

START_TEST(audit_pages)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_audit a = {0}, *list;
	uint64_t id, first = 0;
	size_t n;

	for (int i = 0; i < 5; i++) {
		a.at_ms = 100 + i;
		a.actor_key_id = i % 2 ? "k1" : "k2";
		a.actor_name = "op";
		a.role = 5;
		a.command = "agent_list";
		a.subject = "";
		a.code = 1;
		a.detail = "";
		ck_assert(fl_store_audit_add(st, &a, &id, err) == FL_OK);
		if (i == 0)
			first = id;
	}
	ck_assert(fl_store_audit_query(st, 0, 0, "", 2, &list, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(list[0].id, first);
	id = list[1].id;
	fl_store_audits_free(list, n);
	ck_assert(fl_store_audit_query(st, 0, id, "", 10, &list, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 3);
	fl_store_audits_free(list, n);
	ck_assert(fl_store_audit_query(st, 0, 0, "k1", 10, &list, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 2);
	fl_store_audits_free(list, n);
	ck_assert(fl_store_audit_query(st, 103, 0, "", 10, &list, &n, err) == FL_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(list[0].at_ms, 103);
	fl_store_audits_free(list, n);
	fl_store_close(st);
}
END_TEST

START_TEST(tokens_once)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_token t = {0}, got;
	uint8_t pk[32];

	memset(t.hash, 0x77, 32);
	t.name = "new-agent";
	fl_labels_init(&t.labels);
	ck_assert(fl_labels_set(&t.labels, "region", "eu", err) == FL_OK);
	t.created_at_ms = 1;
	t.expires_at_ms = 1000;
	t.created_by = "admin";
	ck_assert(fl_store_token_add(st, &t, err) == FL_OK);
	ck_assert_int_eq(fl_store_token_add(st, &t, err), FL_ESTATE);
	fl_labels_fini(&t.labels);
	{
		struct fl_store_token *list;
		size_t n;

		ck_assert(fl_store_token_outstanding(st, 999, &list, &n, err) == FL_OK);
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(list[0].name, "new-agent");
		fl_store_tokens_free(list, n);
		ck_assert(fl_store_token_outstanding(st, 1000, &list, &n, err) == FL_OK);
		ck_assert_uint_eq(n, 0); /* expired at 1000 */
		free(list);
	}
	key(pk, 4);
	ck_assert(fl_store_token_use(st, t.hash, pk, 50, err) == FL_OK);
	ck_assert_int_eq(fl_store_token_use(st, t.hash, pk, 51, err), FL_ESTATE);
	{
		struct fl_store_token *list;
		size_t n;

		ck_assert(fl_store_token_outstanding(st, 0, &list, &n, err) == FL_OK);
		ck_assert_uint_eq(n, 0); /* used */
		free(list);
	}
	ck_assert(fl_store_token_get(st, t.hash, &got, err) == FL_OK);
	ck_assert_int_eq(got.used_at_ms, 50);
	ck_assert_mem_eq(got.used_by, pk, 32);
	ck_assert_str_eq(fl_labels_get(&got.labels, "region"), "eu");
	fl_store_token_fini(&got);
	memset(t.hash, 0x78, 32);
	ck_assert_int_eq(fl_store_token_get(st, t.hash, &got, err), FL_ENOENT);
	fl_store_close(st);
}
END_TEST

/*
 * A child writes in a loop, one transaction per round (an audit entry and a
 * report), and tells the parent each round it committed. The parent kills
 * it with SIGKILL mid-loop, then reopens: the store is intact and holds at
 * least every round the child saw committed.
 */
START_TEST(kill9_loses_nothing_committed)
{
	int fds[2], status;
	uint32_t committed = 0, got;
	pid_t pid;
	struct fl_store *st;
	struct fl_store_audit *list;
	uint64_t reports;
	size_t n;

	st = open_ok(NULL); /* the schema first, so the child only writes */
	fl_store_close(st);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct fl_store *w = NULL;
		char e[FL_ERRBUF_SIZE];
		uint8_t pk[32], body[64];

		close(fds[0]);
		if (fl_store_open(path, &w, NULL, e) != FL_OK)
			_exit(2);
		key(pk, 1);
		memset(body, 0x42, sizeof(body));
		for (uint32_t i = 1;; i++) {
			struct fl_store_audit a = {0};
			bool dup;

			a.at_ms = i;
			a.actor_key_id = "k";
			a.actor_name = "loop";
			a.command = "write";
			a.subject = "";
			a.detail = "";
			if (fl_store_begin(w, e) != FL_OK ||
			    fl_store_audit_add(w, &a, NULL, e) != FL_OK ||
			    fl_store_report_add(w, pk, i, i, "t", 1, body, sizeof(body), i, &dup,
			                        e) != FL_OK ||
			    fl_store_commit(w, e) != FL_OK)
				_exit(3);
			if (write(fds[1], &i, sizeof(i)) != sizeof(i))
				_exit(4);
		}
	}
	close(fds[1]);
	while (committed < 200 && read(fds[0], &got, sizeof(got)) == sizeof(got))
		committed = got;
	ck_assert_uint_ge(committed, 200);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* what the child saw committed after the last read is committed too */
	while (read(fds[0], &got, sizeof(got)) == sizeof(got))
		committed = got;
	close(fds[0]);

	st = open_ok(NULL);
	ck_assert_msg(fl_store_check(st, err) == FL_OK, "%s", err);
	ck_assert(fl_store_report_count(st, &reports, err) == FL_OK);
	ck_assert_uint_ge(reports, committed);
	ck_assert(fl_store_audit_query(st, 0, 0, "k", 1000000, &list, &n, err) == FL_OK);
	ck_assert_uint_ge(n, committed);
	ck_assert_uint_eq(n, reports); /* each round whole, or not at all */
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(list[i].at_ms, (int64_t)i + 1);
	fl_store_audits_free(list, n);
	fl_store_close(st);
}
END_TEST

/* A report between Hellos: its applied migrations appended (one there already
 * left as it is), its reverted ones taken out, its failed rows replaced; the
 * next Hello's history is written again (the digest was forgotten). */
START_TEST(history_after_report)
{
	struct fl_store *st = open_ok(NULL);
	struct fl_store_tenant t, got;
	struct fl_store_applied add[2] = {{"m3", "", 10, 11, 1}, {"m2", "", 12, 13, 1}};
	const char *removed[] = {"m1"};
	struct fl_store_history_change c = {0};

	add_agent(st, 1, "a1");
	tenant(&t, "acme", 1, 2);
	ck_assert(fl_store_tenant_put(st, &t, err) == FL_OK);

	c.applied = add;
	c.n_applied = 2;
	ck_assert_msg(fl_store_tenant_history_after_report(st, "acme", &c, 500, err) == FL_OK, "%s",
	              err);
	ck_assert(fl_store_tenant_get(st, "acme", FL_STORE_WITH_HISTORY, &got, err) == FL_OK);
	ck_assert_uint_eq(got.n_applied, 3);
	ck_assert_str_eq(got.applied[0].id, "m1");
	ck_assert_str_eq(got.applied[1].id, "m2");
	ck_assert_str_eq(got.applied[1].checksum, "c"); /* already there: kept */
	ck_assert_str_eq(got.applied[2].id, "m3");
	ck_assert_int_eq(got.applied[2].finished_at_ms, 11);
	ck_assert_uint_eq(got.n_failed, 1); /* not replaced without replace_failed */
	ck_assert_int_eq(got.updated_at_ms, 500);
	fl_store_tenant_fini(&got);

	memset(&c, 0, sizeof(c));
	c.removed = removed;
	c.n_removed = 1;
	c.replace_failed = true; /* none now */
	ck_assert(fl_store_tenant_history_after_report(st, "acme", &c, 600, err) == FL_OK);
	ck_assert(fl_store_tenant_get(st, "acme", FL_STORE_WITH_HISTORY, &got, err) == FL_OK);
	ck_assert_uint_eq(got.n_applied, 2);
	ck_assert_str_eq(got.applied[0].id, "m2");
	ck_assert_str_eq(got.applied[1].id, "m3");
	ck_assert_uint_eq(got.n_failed, 0);
	ck_assert_uint_eq(got.failed_count, 0);
	fl_store_tenant_fini(&got);

	/* the Hello's history (the same as the first put) replaces it again */
	ck_assert(fl_store_tenant_put(st, &t, err) == FL_OK);
	ck_assert(fl_store_tenant_get(st, "acme", FL_STORE_WITH_HISTORY, &got, err) == FL_OK);
	ck_assert_uint_eq(got.n_applied, 2);
	ck_assert_str_eq(got.applied[0].id, "m1");
	ck_assert_uint_eq(got.n_failed, 1);
	fl_store_tenant_fini(&got);

	ck_assert_int_eq(fl_store_tenant_history_after_report(st, "nope", &c, 700, err), FL_ENOENT);
	fl_store_close(st);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, migrations_from_empty);
	tcase_add_test(tc, reopen_keeps_data);
	tcase_add_test(tc, newer_schema_refused);
	tcase_add_test(tc, migrates_from_schema_3);
	tcase_add_test(tc, not_a_store_refused);
	tcase_add_test(tc, second_process_refused);
	tcase_add_test(tc, rollback_discards);
	tcase_add_test(tc, releases);
	tcase_add_test(tc, agents);
	tcase_add_test(tc, tenants);
	tcase_add_test(tc, history_after_report);
	tcase_add_test(tc, reports_once);
	tcase_add_test(tc, assignments);
	tcase_add_test(tc, audit_pages);
	tcase_add_test(tc, tokens_once);
	tcase_add_test(tc, kill9_loses_nothing_committed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
