/*
 * The coordinator's store over SQLite (store.h).
 *
 * One file, opened by one process (locking_mode EXCLUSIVE: a second
 * coordinator on the same file is refused, and WAL then needs no shared
 * memory), journal_mode WAL, synchronous FULL (a commit that returned is on
 * disk, also across power loss), foreign keys on, a busy timeout.
 *
 * Schema: PRAGMA user_version holds the version, PRAGMA application_id marks
 * the file as a flotilla store. `steps` below is the ordered list of schema
 * migrations: step i brings the store from version i to i + 1, in a
 * transaction of its own that also sets user_version, so a crash between
 * steps leaves a store at a well-defined version. Append steps; never edit
 * one that was merged.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"
#include "store.h"
#include "store_sqlite_int.h"

#define APPLICATION_ID  0x464c5443 /* "FLTC" */
#define BUSY_TIMEOUT_MS 5000
#define LOCK_PROBE_MS   200

struct cached {
	const char *sql;
	sqlite3_stmt *stmt;
};

struct fl_store {
	sqlite3 *db;
	char *path;
	struct cached *cache;
	size_t n_cache, cap_cache;
	bool in_tx;
	int version;
	fl_store_commit_fn commit_fn; /* fl_store_on_commit */
	void *commit_arg;
};

/* ---- schema ---- */

static const char STEP1[] =
    /* releases: the signed file as pushed, and what listing them needs */
    "CREATE TABLE releases ("
    " hash BLOB PRIMARY KEY CHECK (length(hash) = 32),"
    " project_id TEXT NOT NULL,"
    " sequence INTEGER NOT NULL,"
    " name TEXT NOT NULL DEFAULT '',"
    " head_migration_id TEXT NOT NULL,"
    " migration_count INTEGER NOT NULL,"
    " signer_key_ids TEXT NOT NULL,"
    " file BLOB NOT NULL,"
    " pushed_at INTEGER NOT NULL,"
    " pushed_by TEXT NOT NULL,"
    " UNIQUE (project_id, sequence)) WITHOUT ROWID;"
    "CREATE TABLE release_migrations ("
    " release_hash BLOB NOT NULL REFERENCES releases(hash) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " id TEXT NOT NULL,"
    " has_down INTEGER NOT NULL,"
    " PRIMARY KEY (release_hash, pos)) WITHOUT ROWID;"
    /* agents: approved (config, admin, token) or revoked for good */
    "CREATE TABLE agents ("
    " pk BLOB PRIMARY KEY CHECK (length(pk) = 32),"
    " name TEXT NOT NULL UNIQUE,"
    " state INTEGER NOT NULL CHECK (state IN (1, 2)),"
    " labels TEXT NOT NULL DEFAULT '',"
    " version TEXT NOT NULL DEFAULT '',"
    " protocol_version INTEGER NOT NULL DEFAULT 0,"
    " last_seen_at INTEGER NOT NULL DEFAULT 0,"
    " approved_at INTEGER NOT NULL,"
    " approved_by TEXT NOT NULL,"
    " revoked_at INTEGER NOT NULL DEFAULT 0,"
    " revoked_by TEXT NOT NULL DEFAULT '',"
    " revoke_reason TEXT NOT NULL DEFAULT '') WITHOUT ROWID;"
    /* tenants: as their agents last reported them */
    "CREATE TABLE tenants ("
    " id TEXT PRIMARY KEY,"
    " agent_pk BLOB NOT NULL REFERENCES agents(pk),"
    " database TEXT NOT NULL,"
    " schema TEXT NOT NULL DEFAULT '',"
    " labels TEXT NOT NULL DEFAULT '',"
    " head_migration_id TEXT NOT NULL DEFAULT '',"
    " applied_count INTEGER NOT NULL DEFAULT 0,"
    " fingerprint TEXT NOT NULL DEFAULT '',"
    " read_error TEXT NOT NULL DEFAULT '',"
    " failed_count INTEGER NOT NULL DEFAULT 0,"
    " release_sequence INTEGER NOT NULL DEFAULT 0,"
    " external_changes INTEGER NOT NULL DEFAULT 0,"
    " gone INTEGER NOT NULL DEFAULT 0,"
    " rollout_id TEXT NOT NULL DEFAULT '',"
    " rollout_state INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " history_digest BLOB,"
    " first_seen_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX tenants_agent ON tenants(agent_pk, id);"
    "CREATE TABLE tenant_applied ("
    " tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " id TEXT NOT NULL,"
    " checksum TEXT NOT NULL,"
    " started_at INTEGER NOT NULL,"
    " finished_at INTEGER NOT NULL,"
    " applied_steps_count INTEGER NOT NULL,"
    " PRIMARY KEY (tenant_id, pos)) WITHOUT ROWID;"
    "CREATE TABLE tenant_failed ("
    " tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " id TEXT NOT NULL,"
    " checksum TEXT NOT NULL,"
    " started_at INTEGER NOT NULL,"
    " applied_steps_count INTEGER NOT NULL,"
    " logs TEXT NOT NULL,"
    " PRIMARY KEY (tenant_id, pos)) WITHOUT ROWID;"
    /* where each migration on a tenant came from (external_changes) */
    "CREATE TABLE tenant_origins ("
    " tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    " migration_id TEXT NOT NULL,"
    " origin INTEGER NOT NULL CHECK (origin IN (1, 2, 3)),"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY (tenant_id, migration_id)) WITHOUT ROWID;"
    /* reports: once per (agent, journal id) */
    "CREATE TABLE reports ("
    " id INTEGER PRIMARY KEY,"
    " agent_pk BLOB NOT NULL,"
    " journal_id INTEGER NOT NULL,"
    " assignment_id INTEGER NOT NULL,"
    " tenant_id TEXT NOT NULL,"
    " outcome INTEGER NOT NULL,"
    " report BLOB NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " UNIQUE (agent_pk, journal_id));"
    "CREATE INDEX reports_tenant ON reports(tenant_id, id);"
    /* audit: AUTOINCREMENT, so an id is never handed out twice */
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " actor_key_id TEXT NOT NULL,"
    " actor_name TEXT NOT NULL,"
    " role INTEGER NOT NULL,"
    " command TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " code INTEGER NOT NULL,"
    " detail TEXT NOT NULL);"
    "CREATE INDEX audit_at ON audit(at);"
    "CREATE INDEX audit_actor ON audit(actor_key_id, id);"
    /* enrollment tokens: only their hash */
    "CREATE TABLE enrollment_tokens ("
    " hash BLOB PRIMARY KEY CHECK (length(hash) = 32),"
    " name TEXT NOT NULL,"
    " labels TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " created_by TEXT NOT NULL,"
    " used_at INTEGER NOT NULL DEFAULT 0,"
    " used_by BLOB) WITHOUT ROWID;"
    /* durable counters (assignment ids) */
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO counters VALUES ('assignment_id', 0);";

/* The scheduler's tables (FLEET.md): the scheduler (coordinator/scheduler.c,
 * store_rollouts_sqlite.c) reads and writes them; the agent endpoint reads
 * assignments to bind reports. `data` columns are the scheduler's own, for
 * what it keeps beyond these columns. */
static const char STEP2[] =
    "CREATE TABLE rollouts ("
    " id TEXT PRIMARY KEY,"
    " created_seq INTEGER NOT NULL UNIQUE,"
    " order_hash BLOB NOT NULL UNIQUE CHECK (length(order_hash) = 32),"
    " signed_order BLOB NOT NULL,"
    " release_hash BLOB NOT NULL REFERENCES releases(hash),"
    " project_id TEXT NOT NULL,"
    " target_migration_id TEXT NOT NULL,"
    " state INTEGER NOT NULL,"
    " current_wave INTEGER NOT NULL DEFAULT 0,"
    " state_reason TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " created_by TEXT NOT NULL,"
    " signed_by TEXT NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " tenants_total INTEGER NOT NULL DEFAULT 0,"
    " rollback_order BLOB,"
    " data BLOB) WITHOUT ROWID;"
    "CREATE TABLE waves ("
    " rollout_id TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,"
    " idx INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " state INTEGER NOT NULL,"
    " started_at INTEGER NOT NULL DEFAULT 0,"
    " finished_at INTEGER NOT NULL DEFAULT 0,"
    " bake_until INTEGER NOT NULL DEFAULT 0,"
    " state_reason TEXT NOT NULL DEFAULT '',"
    " data BLOB,"
    " PRIMARY KEY (rollout_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE rollout_tenants ("
    " rollout_id TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,"
    " tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " wave INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " pre_head TEXT NOT NULL DEFAULT '',"
    " last_error TEXT NOT NULL DEFAULT '',"
    " updated_at INTEGER NOT NULL,"
    " data BLOB,"
    " PRIMARY KEY (rollout_id, tenant_id)) WITHOUT ROWID;"
    "CREATE INDEX rollout_tenants_tenant ON rollout_tenants(tenant_id);"
    "CREATE TABLE assignments ("
    " id INTEGER PRIMARY KEY,"
    " rollout_id TEXT NOT NULL REFERENCES rollouts(id),"
    " wave INTEGER NOT NULL,"
    " tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " agent_pk BLOB NOT NULL REFERENCES agents(pk),"
    " kind INTEGER NOT NULL,"
    " target_migration_id TEXT NOT NULL DEFAULT '',"
    " state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),"
    " issued_at INTEGER NOT NULL,"
    " reported_at INTEGER NOT NULL DEFAULT 0,"
    " outcome INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX assignments_agent ON assignments(agent_pk, state, id);"
    "CREATE INDEX assignments_rollout ON assignments(rollout_id, tenant_id);";

/* The scheduler's columns beyond STEP2 (coordinator/store_rollouts.h says
 * what each means), and indexes for what it reads at start-up. */
static const char STEP3[] =
    "ALTER TABLE rollouts ADD COLUMN rollback_kind INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollouts ADD COLUMN finished_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE waves ADD COLUMN next_check_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE waves ADD COLUMN rolled_back INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollout_tenants ADD COLUMN pos INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollout_tenants ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollout_tenants ADD COLUMN since INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollout_tenants ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollout_tenants ADD COLUMN check_due INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rollout_tenants ADD COLUMN revert_failed INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX rollouts_state ON rollouts(state);"
    "CREATE INDEX assignments_issued ON assignments(rollout_id, id) WHERE state = 1;"
    "CREATE INDEX reports_outcome ON reports(outcome, id);";

/* When a baking wave's clock stopped: its rollout paused (0: it runs). */
static const char STEP4[] =
    "ALTER TABLE waves ADD COLUMN bake_paused_at INTEGER NOT NULL DEFAULT 0;";

static const char *const steps[] = {STEP1, STEP2, STEP3, STEP4};
const int FL_STORE_SCHEMA_VERSION = (int)(sizeof(steps) / sizeof(steps[0]));

/* ---- helpers ---- */

enum fl_err fl_store_sqlite_fail(struct fl_store *st, int rc, const char *what,
                                 bool constraint_is_state, char *errbuf)
{
	const char *msg = st && st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);

	if (constraint_is_state && (rc & 0xff) == SQLITE_CONSTRAINT)
		return fl_errf(errbuf, FL_ESTATE, "store '%s': %s: %s", st ? st->path : "?", what,
		               msg);
	return fl_errf(errbuf, FL_EDB, "store '%s': %s: %s", st ? st->path : "?", what, msg);
}

sqlite3 *fl_store_sqlite_db(struct fl_store *st)
{
	return st->db;
}

sqlite3_stmt *fl_store_sqlite_prep(struct fl_store *st, const char *sql, char *errbuf)
{
	sqlite3_stmt *s;
	int rc;

	for (size_t i = 0; i < st->n_cache; i++)
		if (st->cache[i].sql == sql) {
			sqlite3_reset(st->cache[i].stmt);
			sqlite3_clear_bindings(st->cache[i].stmt);
			return st->cache[i].stmt;
		}
	rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK) {
		(void)fl_store_sqlite_fail(st, rc, "cannot prepare a statement", false, errbuf);
		return NULL;
	}
	st->cache = fl_grow(st->cache, &st->cap_cache, st->n_cache + 1, sizeof(*st->cache));
	st->cache[st->n_cache].sql = sql;
	st->cache[st->n_cache++].stmt = s;
	return s;
}

enum fl_err fl_store_sqlite_done(struct fl_store *st, sqlite3_stmt *s, const char *what,
                                 char *errbuf)
{
	int rc = sqlite3_step(s);
	enum fl_err e = FL_OK;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		e = fl_store_sqlite_fail(st, rc, what, true, errbuf);
	sqlite3_reset(s);
	return e;
}

char *fl_store_sqlite_text(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	return fl_strdup(t ? (const char *)t : "");
}

uint8_t *fl_store_sqlite_blob(sqlite3_stmt *s, int col, size_t *len)
{
	const void *p = sqlite3_column_blob(s, col);
	int n = sqlite3_column_bytes(s, col);
	uint8_t *out = fl_malloc(n > 0 ? (size_t)n : 1);

	if (n > 0)
		memcpy(out, p, (size_t)n);
	*len = n > 0 ? (size_t)n : 0;
	return out;
}

bool fl_store_sqlite_blob_into(sqlite3_stmt *s, int col, void *out, size_t n)
{
	const void *p = sqlite3_column_blob(s, col);

	if (p == NULL || (size_t)sqlite3_column_bytes(s, col) != n) {
		memset(out, 0, n);
		return false;
	}
	memcpy(out, p, n);
	return true;
}

int fl_store_sqlite_bind_text(sqlite3_stmt *s, int idx, const char *text)
{
	return sqlite3_bind_text(s, idx, text ? text : "", -1, SQLITE_TRANSIENT);
}

int fl_store_sqlite_bind_blob(sqlite3_stmt *s, int idx, const void *p, size_t n)
{
	return sqlite3_bind_blob64(s, idx, n ? p : "", n, SQLITE_TRANSIENT);
}

char *fl_store_sqlite_labels_encode(const struct fl_labels *l)
{
	struct fl_buf b = FL_BUF_INIT;

	for (size_t i = 0; l && i < l->n; i++)
		(void)fl_buf_printf(&b, "%s\x1f%s\x1e", l->items[i].key, l->items[i].value);
	return fl_buf_detach(&b);
}

bool fl_store_sqlite_labels_decode(const char *text, struct fl_labels *out)
{
	const char *p = text ? text : "";

	fl_labels_init(out);
	while (*p != '\0') {
		const char *us = strchr(p, '\x1f'), *rs = us ? strchr(us, '\x1e') : NULL;
		char *k, *v;
		enum fl_err rv;

		if (us == NULL || rs == NULL)
			goto bad;
		k = fl_strndup(p, (size_t)(us - p));
		v = fl_strndup(us + 1, (size_t)(rs - us - 1));
		rv = fl_labels_set(out, k, v, NULL);
		free(k);
		free(v);
		if (rv != FL_OK)
			goto bad;
		p = rs + 1;
	}
	return true;
bad:
	fl_labels_fini(out);
	return false;
}

/* Short names for this file. */
#define prep  fl_store_sqlite_prep
#define fail  fl_store_sqlite_fail
#define done  fl_store_sqlite_done
#define text  fl_store_sqlite_text
#define btext fl_store_sqlite_bind_text
#define bblob fl_store_sqlite_bind_blob

static enum fl_err exec(struct fl_store *st, const char *sql, const char *what, char *errbuf)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? FL_OK : fail(st, rc, what, false, errbuf);
}

static enum fl_err pragma_int(struct fl_store *st, const char *sql, int *out, char *errbuf)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return fail(st, rc, "cannot read the schema version", false, errbuf);
	rc = sqlite3_step(s);
	*out = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(st, rc, "cannot read the schema version", false, errbuf);
	return FL_OK;
}

/* ---- opening ---- */

static void close_db(struct fl_store *st)
{
	for (size_t i = 0; i < st->n_cache; i++)
		sqlite3_finalize(st->cache[i].stmt);
	free(st->cache);
	st->cache = NULL;
	st->n_cache = st->cap_cache = 0;
	if (st->db)
		sqlite3_close(st->db);
	st->db = NULL;
}

void fl_store_close(struct fl_store *st)
{
	if (st == NULL)
		return;
	if (st->in_tx)
		fl_store_rollback(st);
	close_db(st);
	free(st->path);
	free(st);
}

/* Create the file with mode 0600 before SQLite does (it would use 0644 less
 * the umask): it holds token hashes and the audit log. */
static enum fl_err create_file(const char *path, bool *created, char *errbuf)
{
	char eb[128];
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd >= 0) {
		close(fd);
		*created = true;
		return FL_OK;
	}
	if (errno == EEXIST) {
		*created = false;
		return FL_OK;
	}
	return fl_errf(errbuf, FL_EIO, "cannot create store '%s': %s", path,
	               fl_err_errno(errno, eb, sizeof(eb)));
}

static enum fl_err open_db(struct fl_store *st, char *errbuf)
{
	int rc =
	    sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	enum fl_err e;

	if (rc != SQLITE_OK)
		return fail(st, rc, "cannot open", false, errbuf);
	sqlite3_extended_result_codes(st->db, 1);
	/* Short until the lock is ours: a second coordinator fails at once (a
	 * dead holder's lock is gone at once too). */
	sqlite3_busy_timeout(st->db, LOCK_PROBE_MS);
	/* Exclusive before the first WAL access: one process, no shared memory. */
	if ((e = exec(st, "PRAGMA locking_mode = EXCLUSIVE", "cannot set the locking mode",
	              errbuf)) != FL_OK ||
	    (e = exec(st, "PRAGMA journal_mode = WAL", "cannot turn on WAL", errbuf)) != FL_OK ||
	    (e = exec(st, "PRAGMA synchronous = FULL", "cannot set synchronous", errbuf)) !=
	        FL_OK ||
	    (e = exec(st, "PRAGMA foreign_keys = ON", "cannot turn on foreign keys", errbuf)) !=
	        FL_OK ||
	    (e = exec(st, "PRAGMA trusted_schema = OFF", "cannot set trusted_schema", errbuf)) !=
	        FL_OK)
		return e;
	/* Take the lock now: a second coordinator fails here, not later. */
	if ((e = exec(st, "BEGIN IMMEDIATE; COMMIT",
	              "cannot lock the store (another coordinator running on it?)", errbuf)) !=
	    FL_OK)
		return e;
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	return FL_OK;
}

static enum fl_err migrate(struct fl_store *st, char *errbuf)
{
	int version, app;
	enum fl_err e;
	char sql[64];

	if ((e = pragma_int(st, "PRAGMA user_version", &version, errbuf)) != FL_OK ||
	    (e = pragma_int(st, "PRAGMA application_id", &app, errbuf)) != FL_OK)
		return e;
	if (version > 0 && app != APPLICATION_ID)
		return fl_errf(errbuf, FL_EDB, "store '%s' is not a flotilla store", st->path);
	if (version == 0 && app != 0 && app != APPLICATION_ID)
		return fl_errf(errbuf, FL_EDB, "store '%s' is not a flotilla store", st->path);
	if (version > FL_STORE_SCHEMA_VERSION)
		return fl_errf(errbuf, FL_ESTATE,
		               "store '%s' has schema version %d; this coordinator knows up to %d: "
		               "upgrade it",
		               st->path, version, FL_STORE_SCHEMA_VERSION);
	if (version == 0) {
		/* A file with tables but no version was not made by us. */
		int tables;

		if ((e = pragma_int(st, "SELECT count(*) FROM sqlite_schema", &tables, errbuf)) !=
		    FL_OK)
			return e;
		if (tables > 0)
			return fl_errf(errbuf, FL_EDB, "store '%s' is not a flotilla store",
			               st->path);
	}
	for (; version < FL_STORE_SCHEMA_VERSION; version++) {
		if ((e = exec(st, "BEGIN IMMEDIATE", "cannot begin a schema step", errbuf)) !=
		    FL_OK)
			return e;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		if ((e = exec(st, steps[version], "schema step failed", errbuf)) != FL_OK ||
		    (e = exec(st, sql, "cannot set the schema version", errbuf)) != FL_OK ||
		    (e = exec(st, "PRAGMA application_id = 1179407427" /* APPLICATION_ID */,
		              "cannot mark the store", errbuf)) != FL_OK ||
		    (e = exec(st, "COMMIT", "cannot commit a schema step", errbuf)) != FL_OK) {
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			fl_err_prefix(errbuf, "schema version %d", version + 1);
			return e;
		}
	}
	st->version = version;
	return FL_OK;
}

_Static_assert(APPLICATION_ID == 1179407427, "application id spelled in migrate()");

enum fl_err fl_store_open(const char *path, struct fl_store **out, bool *created, char *errbuf)
{
	struct fl_store *st;
	int version = 0;
	bool fresh = false;
	enum fl_err e;

	*out = NULL;
	if (path == NULL || *path == '\0')
		return fl_errf(errbuf, FL_EINVAL, "no store path");
	if ((e = create_file(path, &fresh, errbuf)) != FL_OK)
		return e;
	st = fl_calloc(1, sizeof(*st));
	st->path = fl_strdup(path);
	if ((e = open_db(st, errbuf)) != FL_OK)
		goto fail;
	if ((e = pragma_int(st, "PRAGMA user_version", &version, errbuf)) != FL_OK)
		goto fail;
	if ((e = migrate(st, errbuf)) != FL_OK)
		goto fail;
	if (created)
		*created = fresh || version == 0;
	*out = st;
	return FL_OK;
fail:
	fl_store_close(st);
	return e;
}

int fl_store_schema_version(struct fl_store *st)
{
	return st->version;
}

enum fl_err fl_store_check(struct fl_store *st, char *errbuf)
{
	sqlite3_stmt *s;
	enum fl_err e = FL_OK;
	int rc;

	rc = sqlite3_prepare_v2(st->db, "PRAGMA integrity_check", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return fail(st, rc, "integrity check", false, errbuf);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW)
		e = fail(st, rc, "integrity check", false, errbuf);
	else if (strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0)
		e = fl_errf(errbuf, FL_EDB, "store '%s': integrity check: %s", st->path,
		            (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	if (e != FL_OK)
		return e;
	rc = sqlite3_prepare_v2(st->db, "PRAGMA foreign_key_check", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return fail(st, rc, "foreign key check", false, errbuf);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		e = fl_errf(errbuf, FL_EDB,
		            "store '%s': foreign key check: a row of '%s' points nowhere", st->path,
		            (const char *)sqlite3_column_text(s, 0));
	else if (rc != SQLITE_DONE)
		e = fail(st, rc, "foreign key check", false, errbuf);
	sqlite3_finalize(s);
	return e;
}

enum fl_err fl_store_test_set_version(const char *path, int v, char *errbuf)
{
	struct fl_store st = {.path = (char *)path};
	char sql[64];
	enum fl_err e;

	if ((e = open_db(&st, errbuf)) == FL_OK) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
		e = exec(&st, sql, "cannot set the schema version", errbuf);
	}
	close_db(&st);
	return e;
}

/* ---- transactions ---- */

enum fl_err fl_store_begin(struct fl_store *st, char *errbuf)
{
	enum fl_err e;

	if (st->in_tx)
		return fl_errf(errbuf, FL_ESTATE, "store '%s': a transaction is open already",
		               st->path);
	if ((e = exec(st, "BEGIN IMMEDIATE", "cannot begin", errbuf)) == FL_OK)
		st->in_tx = true;
	return e;
}

enum fl_err fl_store_commit(struct fl_store *st, char *errbuf)
{
	struct timespec t0, t1;
	enum fl_err e;

	if (!st->in_tx)
		return fl_errf(errbuf, FL_ESTATE, "store '%s': no transaction to commit", st->path);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((e = exec(st, "COMMIT", "cannot commit", errbuf)) != FL_OK) {
		fl_store_rollback(st);
		return e;
	}
	st->in_tx = false;
	if (st->commit_fn) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		st->commit_fn(st->commit_arg, (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 +
		                                  (t1.tv_nsec - t0.tv_nsec));
	}
	return FL_OK;
}

void fl_store_on_commit(struct fl_store *st, fl_store_commit_fn fn, void *arg)
{
	st->commit_fn = fn;
	st->commit_arg = arg;
}

void fl_store_rollback(struct fl_store *st)
{
	if (st->in_tx || !sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	st->in_tx = false;
}

bool fl_store_in_transaction(struct fl_store *st)
{
	return st->in_tx;
}

/* Several writes as one unit even when the caller opened no transaction. */
static enum fl_err sub_begin(struct fl_store *st, bool *own, char *errbuf)
{
	*own = !st->in_tx;
	return *own ? fl_store_begin(st, errbuf) : FL_OK;
}

static enum fl_err sub_end(struct fl_store *st, bool own, enum fl_err e, char *errbuf)
{
	if (!own)
		return e;
	if (e != FL_OK) {
		fl_store_rollback(st);
		return e;
	}
	return fl_store_commit(st, errbuf);
}

/* ---- releases ---- */

void fl_store_release_fini(struct fl_store_release *r)
{
	if (r == NULL)
		return;
	free(r->project_id);
	free(r->name);
	free(r->head_migration_id);
	free(r->signer_key_ids);
	free(r->pushed_by);
	free(r->file);
	for (size_t i = 0; i < r->n_migrations; i++)
		free(r->migrations[i].id);
	free(r->migrations);
	memset(r, 0, sizeof(*r));
}

void fl_store_releases_free(struct fl_store_release *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fl_store_release_fini(&items[i]);
	free(items);
}

enum fl_err fl_store_release_add(struct fl_store *st, const struct fl_store_release *r,
                                 char *errbuf)
{
	static const char INS[] =
	    "INSERT INTO releases (hash, project_id, sequence, name, head_migration_id,"
	    " migration_count, signer_key_ids, file, pushed_at, pushed_by)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	static const char MIG[] = "INSERT INTO release_migrations (release_hash, pos, id, "
	                          "has_down) VALUES (?1, ?2, ?3, ?4)";
	sqlite3_stmt *s;
	enum fl_err e;
	bool own;

	if ((e = sub_begin(st, &own, errbuf)) != FL_OK)
		return e;
	if ((s = prep(st, INS, errbuf)) == NULL) {
		e = FL_EDB;
		goto out;
	}
	bblob(s, 1, r->hash, FL_STORE_HASH_LEN);
	btext(s, 2, r->project_id);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)r->sequence);
	btext(s, 4, r->name);
	btext(s, 5, r->head_migration_id);
	sqlite3_bind_int64(s, 6, r->migration_count);
	btext(s, 7, r->signer_key_ids);
	bblob(s, 8, r->file, r->file_len);
	sqlite3_bind_int64(s, 9, r->pushed_at_ms);
	btext(s, 10, r->pushed_by);
	if ((e = done(st, s, "cannot add the release", errbuf)) != FL_OK)
		goto out;
	for (size_t i = 0; i < r->n_migrations; i++) {
		if ((s = prep(st, MIG, errbuf)) == NULL) {
			e = FL_EDB;
			goto out;
		}
		bblob(s, 1, r->hash, FL_STORE_HASH_LEN);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
		btext(s, 3, r->migrations[i].id);
		sqlite3_bind_int(s, 4, r->migrations[i].has_down);
		if ((e = done(st, s, "cannot add the release's migrations", errbuf)) != FL_OK)
			goto out;
	}
out:
	return sub_end(st, own, e, errbuf);
}

enum fl_err fl_store_release_set_file(struct fl_store *st, const uint8_t hash[FL_STORE_HASH_LEN],
                                      const uint8_t *file, size_t len, const char *signer_key_ids,
                                      char *errbuf)
{
	static const char SQL[] =
	    "UPDATE releases SET file = ?2, signer_key_ids = ?3 WHERE hash = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	enum fl_err e;

	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, hash, FL_STORE_HASH_LEN);
	bblob(s, 2, file, len);
	btext(s, 3, signer_key_ids);
	if ((e = done(st, s, "cannot update the release", errbuf)) != FL_OK)
		return e;
	if (sqlite3_changes(st->db) == 0)
		return fl_errf(errbuf, FL_ENOENT, "no such release");
	return FL_OK;
}

#define RELEASE_COLS                                                                               \
	"hash, project_id, sequence, name, head_migration_id, migration_count, signer_key_ids,"    \
	" pushed_at, pushed_by, length(file)"

static void release_row(sqlite3_stmt *s, struct fl_store_release *r)
{
	memset(r, 0, sizeof(*r));
	fl_store_sqlite_blob_into(s, 0, r->hash, FL_STORE_HASH_LEN);
	r->project_id = text(s, 1);
	r->sequence = (uint64_t)sqlite3_column_int64(s, 2);
	r->name = text(s, 3);
	r->head_migration_id = text(s, 4);
	r->migration_count = (uint32_t)sqlite3_column_int64(s, 5);
	r->signer_key_ids = text(s, 6);
	r->pushed_at_ms = sqlite3_column_int64(s, 7);
	r->pushed_by = text(s, 8);
	r->file_len = (size_t)sqlite3_column_int64(s, 9);
}

enum fl_err fl_store_release_get(struct fl_store *st, const uint8_t hash[FL_STORE_HASH_LEN],
                                 unsigned flags, struct fl_store_release *out, char *errbuf)
{
	static const char SQL[] = "SELECT " RELEASE_COLS " FROM releases WHERE hash = ?1";
	static const char FILE_[] = "SELECT file FROM releases WHERE hash = ?1";
	static const char MIG[] =
	    "SELECT id, has_down FROM release_migrations WHERE release_hash = ?1 ORDER BY pos";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, hash, FL_STORE_HASH_LEN);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		sqlite3_reset(s);
		return rc == SQLITE_DONE ? fl_errf(errbuf, FL_ENOENT, "no such release")
		                         : fail(st, rc, "cannot read the release", false, errbuf);
	}
	release_row(s, out);
	sqlite3_reset(s);
	if (flags & FL_STORE_WITH_FILE) {
		if ((s = prep(st, FILE_, errbuf)) == NULL)
			goto db;
		bblob(s, 1, hash, FL_STORE_HASH_LEN);
		if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
			sqlite3_reset(s);
			fail(st, rc, "cannot read the release file", false, errbuf);
			goto db;
		}
		out->file = fl_store_sqlite_blob(s, 0, &out->file_len);
		sqlite3_reset(s);
	}
	if (flags & FL_STORE_WITH_MIGRATIONS) {
		size_t cap = 0;

		if ((s = prep(st, MIG, errbuf)) == NULL)
			goto db;
		bblob(s, 1, hash, FL_STORE_HASH_LEN);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			out->migrations = fl_grow(out->migrations, &cap, out->n_migrations + 1,
			                          sizeof(*out->migrations));
			out->migrations[out->n_migrations].id = text(s, 0);
			out->migrations[out->n_migrations++].has_down =
			    sqlite3_column_int(s, 1) != 0;
		}
		sqlite3_reset(s);
		if (rc != SQLITE_DONE) {
			fail(st, rc, "cannot read the release's migrations", false, errbuf);
			goto db;
		}
	}
	return FL_OK;
db:
	fl_store_release_fini(out);
	return FL_EDB;
}

enum fl_err fl_store_release_by_sequence(struct fl_store *st, const char *project_id,
                                         uint64_t sequence, uint8_t hash[FL_STORE_HASH_LEN],
                                         char *errbuf)
{
	static const char SQL[] =
	    "SELECT hash FROM releases WHERE project_id = ?1 AND sequence = ?2";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, project_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)sequence);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		fl_store_sqlite_blob_into(s, 0, hash, FL_STORE_HASH_LEN);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return FL_OK;
	return rc == SQLITE_DONE ? fl_errf(errbuf, FL_ENOENT, "no such release")
	                         : fail(st, rc, "cannot read releases", false, errbuf);
}

enum fl_err fl_store_release_max_sequence(struct fl_store *st, const char *project_id,
                                          uint64_t *sequence, char *errbuf)
{
	static const char SQL[] =
	    "SELECT coalesce(max(sequence), 0) FROM releases WHERE project_id = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	*sequence = 0;
	if (s == NULL)
		return FL_EDB;
	btext(s, 1, project_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*sequence = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? FL_OK : fail(st, rc, "cannot read releases", false, errbuf);
}

enum fl_err fl_store_release_list(struct fl_store *st, uint32_t limit,
                                  struct fl_store_release **items, size_t *n, char *errbuf)
{
	static const char SQL[] =
	    "SELECT " RELEASE_COLS " FROM releases ORDER BY sequence DESC, pushed_at DESC LIMIT ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*items = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	sqlite3_bind_int64(s, 1, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*items = fl_grow(*items, &cap, *n + 1, sizeof(**items));
		release_row(s, &(*items)[(*n)++]);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fl_store_releases_free(*items, *n);
		*items = NULL;
		*n = 0;
		return fail(st, rc, "cannot list releases", false, errbuf);
	}
	return FL_OK;
}

/* ---- agents ---- */

void fl_store_agent_fini(struct fl_store_agent *a)
{
	if (a == NULL)
		return;
	free(a->name);
	fl_labels_fini(&a->labels);
	free(a->version);
	free(a->approved_by);
	free(a->revoked_by);
	free(a->revoke_reason);
	memset(a, 0, sizeof(*a));
}

void fl_store_agents_free(struct fl_store_agent *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fl_store_agent_fini(&items[i]);
	free(items);
}

enum fl_err fl_store_agent_add(struct fl_store *st, const struct fl_store_agent *a, char *errbuf)
{
	static const char SQL[] =
	    "INSERT INTO agents (pk, name, state, labels, approved_at, approved_by)"
	    " VALUES (?1, ?2, 1, ?3, ?4, ?5)";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	char *labels;
	enum fl_err e;

	if (s == NULL)
		return FL_EDB;
	labels = fl_store_sqlite_labels_encode(&a->labels);
	bblob(s, 1, a->pk, FL_STORE_KEY_LEN);
	btext(s, 2, a->name);
	btext(s, 3, labels);
	sqlite3_bind_int64(s, 4, a->approved_at_ms);
	btext(s, 5, a->approved_by);
	e = done(st, s, "cannot add the agent", errbuf);
	free(labels);
	return e;
}

#define AGENT_COLS                                                                                 \
	"a.pk, a.name, a.state, a.labels, a.version, a.protocol_version, a.last_seen_at,"          \
	" a.approved_at, a.approved_by, a.revoked_at, a.revoked_by, a.revoke_reason,"              \
	" (SELECT count(*) FROM tenants t WHERE t.agent_pk = a.pk AND t.gone = 0)"

static void agent_row(sqlite3_stmt *s, struct fl_store_agent *a)
{
	char *labels;

	memset(a, 0, sizeof(*a));
	fl_store_sqlite_blob_into(s, 0, a->pk, FL_STORE_KEY_LEN);
	a->name = text(s, 1);
	a->state = (enum fl_store_agent_state)sqlite3_column_int(s, 2);
	labels = text(s, 3);
	if (!fl_store_sqlite_labels_decode(labels, &a->labels))
		fl_labels_init(&a->labels);
	free(labels);
	a->version = text(s, 4);
	a->protocol_version = (uint32_t)sqlite3_column_int64(s, 5);
	a->last_seen_at_ms = sqlite3_column_int64(s, 6);
	a->approved_at_ms = sqlite3_column_int64(s, 7);
	a->approved_by = text(s, 8);
	a->revoked_at_ms = sqlite3_column_int64(s, 9);
	a->revoked_by = text(s, 10);
	a->revoke_reason = text(s, 11);
	a->tenant_count = (uint32_t)sqlite3_column_int64(s, 12);
}

enum fl_err fl_store_agent_get(struct fl_store *st, const uint8_t pk[FL_STORE_KEY_LEN],
                               struct fl_store_agent *out, char *errbuf)
{
	static const char SQL[] = "SELECT " AGENT_COLS " FROM agents a WHERE a.pk = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, pk, FL_STORE_KEY_LEN);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		agent_row(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return FL_OK;
	return rc == SQLITE_DONE ? fl_errf(errbuf, FL_ENOENT, "no such agent")
	                         : fail(st, rc, "cannot read the agent", false, errbuf);
}

enum fl_err fl_store_agent_list(struct fl_store *st, bool include_revoked,
                                struct fl_store_agent **items, size_t *n, char *errbuf)
{
	static const char SQL[] =
	    "SELECT " AGENT_COLS " FROM agents a WHERE ?1 OR a.state = 1 ORDER BY a.name";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*items = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	sqlite3_bind_int(s, 1, include_revoked);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*items = fl_grow(*items, &cap, *n + 1, sizeof(**items));
		agent_row(s, &(*items)[(*n)++]);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fl_store_agents_free(*items, *n);
		*items = NULL;
		*n = 0;
		return fail(st, rc, "cannot list agents", false, errbuf);
	}
	return FL_OK;
}

enum fl_err fl_store_agent_revoke(struct fl_store *st, const uint8_t pk[FL_STORE_KEY_LEN],
                                  int64_t at_ms, const char *by, const char *reason, char *errbuf)
{
	static const char SQL[] =
	    "UPDATE agents SET state = 2, revoked_at = ?2, revoked_by = ?3, revoke_reason = ?4"
	    " WHERE pk = ?1 AND state = 1";
	static const char EXISTS[] = "SELECT 1 FROM agents WHERE pk = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	enum fl_err e;
	int rc;

	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, pk, FL_STORE_KEY_LEN);
	sqlite3_bind_int64(s, 2, at_ms);
	btext(s, 3, by);
	btext(s, 4, reason);
	if ((e = done(st, s, "cannot revoke the agent", errbuf)) != FL_OK)
		return e;
	if (sqlite3_changes(st->db) > 0)
		return FL_OK;
	if ((s = prep(st, EXISTS, errbuf)) == NULL)
		return FL_EDB;
	bblob(s, 1, pk, FL_STORE_KEY_LEN);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return FL_OK;
	return rc == SQLITE_DONE ? fl_errf(errbuf, FL_ENOENT, "no such agent")
	                         : fail(st, rc, "cannot read the agent", false, errbuf);
}

enum fl_err fl_store_agent_seen(struct fl_store *st, const uint8_t pk[FL_STORE_KEY_LEN],
                                const char *version, uint32_t protocol_version, int64_t at_ms,
                                char *errbuf)
{
	static const char SQL[] =
	    "UPDATE agents SET version = coalesce(?2, version),"
	    " protocol_version = CASE WHEN ?3 > 0 THEN ?3 ELSE protocol_version END,"
	    " last_seen_at = max(last_seen_at, ?4) WHERE pk = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, pk, FL_STORE_KEY_LEN);
	if (version)
		btext(s, 2, version);
	sqlite3_bind_int64(s, 3, protocol_version);
	sqlite3_bind_int64(s, 4, at_ms);
	return done(st, s, "cannot update the agent", errbuf);
}

/* ---- tenants ---- */

void fl_store_tenant_fini(struct fl_store_tenant *t)
{
	if (t == NULL)
		return;
	free(t->id);
	free(t->database);
	free(t->schema);
	fl_labels_fini(&t->labels);
	free(t->head_migration_id);
	free(t->fingerprint);
	free(t->read_error);
	free(t->rollout_id);
	free(t->last_error);
	for (size_t i = 0; i < t->n_applied; i++) {
		free(t->applied[i].id);
		free(t->applied[i].checksum);
	}
	free(t->applied);
	for (size_t i = 0; i < t->n_failed; i++) {
		free(t->failed[i].id);
		free(t->failed[i].checksum);
		free(t->failed[i].logs);
	}
	free(t->failed);
	memset(t, 0, sizeof(*t));
}

#define TENANT_COLS                                                                                \
	"id, agent_pk, database, schema, labels, head_migration_id, applied_count, fingerprint,"   \
	" read_error, failed_count, release_sequence, external_changes, gone, rollout_id,"         \
	" rollout_state, last_error, first_seen_at, updated_at"

static void tenant_row(sqlite3_stmt *s, struct fl_store_tenant *t)
{
	char *labels;

	memset(t, 0, sizeof(*t));
	t->id = text(s, 0);
	fl_store_sqlite_blob_into(s, 1, t->agent_pk, FL_STORE_KEY_LEN);
	t->database = text(s, 2);
	t->schema = text(s, 3);
	labels = text(s, 4);
	if (!fl_store_sqlite_labels_decode(labels, &t->labels))
		fl_labels_init(&t->labels);
	free(labels);
	t->head_migration_id = text(s, 5);
	t->applied_count = (uint32_t)sqlite3_column_int64(s, 6);
	t->fingerprint = text(s, 7);
	t->read_error = text(s, 8);
	t->failed_count = (uint32_t)sqlite3_column_int64(s, 9);
	t->release_sequence = (uint64_t)sqlite3_column_int64(s, 10);
	t->external_changes = sqlite3_column_int(s, 11) != 0;
	t->gone = sqlite3_column_int(s, 12) != 0;
	t->rollout_id = text(s, 13);
	t->rollout_state = sqlite3_column_int(s, 14);
	t->last_error = text(s, 15);
	t->first_seen_at_ms = sqlite3_column_int64(s, 16);
	t->updated_at_ms = sqlite3_column_int64(s, 17);
}

static enum fl_err tenant_history(struct fl_store *st, struct fl_store_tenant *t, char *errbuf)
{
	static const char APP[] =
	    "SELECT id, checksum, started_at, finished_at, applied_steps_count"
	    " FROM tenant_applied WHERE tenant_id = ?1 ORDER BY pos";
	static const char FAILED[] = "SELECT id, checksum, started_at, applied_steps_count, logs"
	                             " FROM tenant_failed WHERE tenant_id = ?1 ORDER BY pos";
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc;

	if ((s = prep(st, APP, errbuf)) == NULL)
		return FL_EDB;
	btext(s, 1, t->id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fl_store_applied *a;

		t->applied = fl_grow(t->applied, &cap, t->n_applied + 1, sizeof(*t->applied));
		a = &t->applied[t->n_applied++];
		a->id = text(s, 0);
		a->checksum = text(s, 1);
		a->started_at_ms = sqlite3_column_int64(s, 2);
		a->finished_at_ms = sqlite3_column_int64(s, 3);
		a->applied_steps_count = (uint32_t)sqlite3_column_int64(s, 4);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return fail(st, rc, "cannot read the tenant's history", false, errbuf);
	cap = 0;
	if ((s = prep(st, FAILED, errbuf)) == NULL)
		return FL_EDB;
	btext(s, 1, t->id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fl_store_failed *f;

		t->failed = fl_grow(t->failed, &cap, t->n_failed + 1, sizeof(*t->failed));
		f = &t->failed[t->n_failed++];
		f->id = text(s, 0);
		f->checksum = text(s, 1);
		f->started_at_ms = sqlite3_column_int64(s, 2);
		f->applied_steps_count = (uint32_t)sqlite3_column_int64(s, 3);
		f->logs = text(s, 4);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return fail(st, rc, "cannot read the tenant's failed migrations", false, errbuf);
	return FL_OK;
}

enum fl_err fl_store_tenant_get(struct fl_store *st, const char *id, unsigned flags,
                                struct fl_store_tenant *out, char *errbuf)
{
	static const char SQL[] = "SELECT " TENANT_COLS " FROM tenants WHERE id = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	enum fl_err e;
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return FL_EDB;
	btext(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		tenant_row(s, out);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? fl_errf(errbuf, FL_ENOENT, "no such tenant")
		                         : fail(st, rc, "cannot read the tenant", false, errbuf);
	if ((flags & FL_STORE_WITH_HISTORY) && (e = tenant_history(st, out, errbuf)) != FL_OK) {
		fl_store_tenant_fini(out);
		return e;
	}
	return FL_OK;
}

/* A digest of the history rows, so an unchanged history is not rewritten
 * on every Hello. */
static void history_digest(const struct fl_store_tenant *t, uint8_t out[32])
{
	crypto_generichash_state h;
	char num[64];

	crypto_generichash_init(&h, NULL, 0, 32);
#define PUT(s) crypto_generichash_update(&h, (const uint8_t *)(s), strlen(s) + 1)
	for (size_t i = 0; i < t->n_applied; i++) {
		const struct fl_store_applied *a = &t->applied[i];

		snprintf(num, sizeof(num), "a %lld %lld %u", (long long)a->started_at_ms,
		         (long long)a->finished_at_ms, a->applied_steps_count);
		PUT(num);
		PUT(a->id);
		PUT(a->checksum);
	}
	for (size_t i = 0; i < t->n_failed; i++) {
		const struct fl_store_failed *f = &t->failed[i];

		snprintf(num, sizeof(num), "f %lld %u", (long long)f->started_at_ms,
		         f->applied_steps_count);
		PUT(num);
		PUT(f->id);
		PUT(f->checksum);
		PUT(f->logs ? f->logs : "");
	}
#undef PUT
	crypto_generichash_final(&h, out, 32);
}

enum fl_err fl_store_tenant_put(struct fl_store *st, const struct fl_store_tenant *t, char *errbuf)
{
	static const char UPSERT[] =
	    "INSERT INTO tenants (id, agent_pk, database, schema, labels, head_migration_id,"
	    " applied_count, fingerprint, read_error, failed_count, release_sequence,"
	    " external_changes, gone, first_seen_at, updated_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, ?13, ?13)"
	    " ON CONFLICT (id) DO UPDATE SET agent_pk = ?2, database = ?3, schema = ?4,"
	    " labels = ?5, head_migration_id = ?6, applied_count = ?7, fingerprint = ?8,"
	    " read_error = ?9, failed_count = ?10, release_sequence = ?11, external_changes = ?12,"
	    " gone = 0, updated_at = ?13";
	static const char DIGEST[] = "SELECT history_digest FROM tenants WHERE id = ?1";
	static const char SET_DIGEST[] = "UPDATE tenants SET history_digest = ?2 WHERE id = ?1";
	static const char DEL_APP[] = "DELETE FROM tenant_applied WHERE tenant_id = ?1";
	static const char DEL_FAILED[] = "DELETE FROM tenant_failed WHERE tenant_id = ?1";
	static const char INS_APP[] =
	    "INSERT INTO tenant_applied (tenant_id, pos, id, checksum, started_at, finished_at,"
	    " applied_steps_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	static const char INS_FAILED[] =
	    "INSERT INTO tenant_failed (tenant_id, pos, id, checksum, started_at,"
	    " applied_steps_count, logs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	uint8_t digest[32], old[32];
	bool same = false, own;
	sqlite3_stmt *s;
	char *labels;
	enum fl_err e;

	if ((e = sub_begin(st, &own, errbuf)) != FL_OK)
		return e;
	history_digest(t, digest);
	if ((s = prep(st, DIGEST, errbuf)) == NULL)
		goto db;
	btext(s, 1, t->id);
	if (sqlite3_step(s) == SQLITE_ROW && fl_store_sqlite_blob_into(s, 0, old, sizeof(old)))
		same = memcmp(old, digest, sizeof(old)) == 0;
	sqlite3_reset(s);

	if ((s = prep(st, UPSERT, errbuf)) == NULL)
		goto db;
	labels = fl_store_sqlite_labels_encode(&t->labels);
	btext(s, 1, t->id);
	bblob(s, 2, t->agent_pk, FL_STORE_KEY_LEN);
	btext(s, 3, t->database);
	btext(s, 4, t->schema);
	btext(s, 5, labels);
	btext(s, 6, t->head_migration_id);
	sqlite3_bind_int64(s, 7, t->applied_count);
	btext(s, 8, t->fingerprint);
	btext(s, 9, t->read_error);
	sqlite3_bind_int64(s, 10, t->failed_count);
	sqlite3_bind_int64(s, 11, (sqlite3_int64)t->release_sequence);
	sqlite3_bind_int(s, 12, t->external_changes);
	sqlite3_bind_int64(s, 13, t->updated_at_ms);
	e = done(st, s, "cannot write the tenant", errbuf);
	free(labels);
	if (e != FL_OK || same)
		goto out;

	if ((s = prep(st, DEL_APP, errbuf)) == NULL)
		goto db;
	btext(s, 1, t->id);
	if ((e = done(st, s, "cannot replace the tenant's history", errbuf)) != FL_OK)
		goto out;
	if ((s = prep(st, DEL_FAILED, errbuf)) == NULL)
		goto db;
	btext(s, 1, t->id);
	if ((e = done(st, s, "cannot replace the tenant's history", errbuf)) != FL_OK)
		goto out;
	for (size_t i = 0; i < t->n_applied; i++) {
		const struct fl_store_applied *a = &t->applied[i];

		if ((s = prep(st, INS_APP, errbuf)) == NULL)
			goto db;
		btext(s, 1, t->id);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
		btext(s, 3, a->id);
		btext(s, 4, a->checksum);
		sqlite3_bind_int64(s, 5, a->started_at_ms);
		sqlite3_bind_int64(s, 6, a->finished_at_ms);
		sqlite3_bind_int64(s, 7, a->applied_steps_count);
		if ((e = done(st, s, "cannot write the tenant's history", errbuf)) != FL_OK)
			goto out;
	}
	for (size_t i = 0; i < t->n_failed; i++) {
		const struct fl_store_failed *f = &t->failed[i];

		if ((s = prep(st, INS_FAILED, errbuf)) == NULL)
			goto db;
		btext(s, 1, t->id);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
		btext(s, 3, f->id);
		btext(s, 4, f->checksum);
		sqlite3_bind_int64(s, 5, f->started_at_ms);
		sqlite3_bind_int64(s, 6, f->applied_steps_count);
		btext(s, 7, f->logs);
		if ((e = done(st, s, "cannot write the tenant's failed migrations", errbuf)) !=
		    FL_OK)
			goto out;
	}
	if ((s = prep(st, SET_DIGEST, errbuf)) == NULL)
		goto db;
	btext(s, 1, t->id);
	bblob(s, 2, digest, sizeof(digest));
	e = done(st, s, "cannot write the tenant", errbuf);
	goto out;
db:
	e = FL_EDB;
out:
	return sub_end(st, own, e, errbuf);
}

enum fl_err fl_store_tenant_ids_of_agent(struct fl_store *st, const uint8_t pk[FL_STORE_KEY_LEN],
                                         char ***ids, size_t *n, char *errbuf)
{
	static const char SQL[] =
	    "SELECT id FROM tenants WHERE agent_pk = ?1 AND gone = 0 ORDER BY id";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, pk, FL_STORE_KEY_LEN);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*ids = fl_grow(*ids, &cap, *n + 1, sizeof(**ids));
		(*ids)[(*n)++] = text(s, 0);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < *n; i++)
			free((*ids)[i]);
		free(*ids);
		*ids = NULL;
		*n = 0;
		return fail(st, rc, "cannot list the agent's tenants", false, errbuf);
	}
	return FL_OK;
}

enum fl_err fl_store_tenant_set_gone(struct fl_store *st, const char *id, int64_t at_ms,
                                     char *errbuf)
{
	static const char SQL[] = "UPDATE tenants SET gone = 1, updated_at = ?2 WHERE id = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, id);
	sqlite3_bind_int64(s, 2, at_ms);
	return done(st, s, "cannot mark the tenant gone", errbuf);
}

static enum fl_err changed_one(struct fl_store *st, enum fl_err e, const char *what, char *errbuf)
{
	if (e == FL_OK && sqlite3_changes(st->db) == 0)
		return fl_errf(errbuf, FL_ENOENT, "no such %s", what);
	return e;
}

enum fl_err fl_store_tenant_set_rollout(struct fl_store *st, const char *id, const char *rollout_id,
                                        int rollout_state, const char *last_error, int64_t at_ms,
                                        char *errbuf)
{
	static const char SQL[] =
	    "UPDATE tenants SET rollout_id = ?2, rollout_state = ?3,"
	    " last_error = coalesce(?4, last_error), updated_at = ?5 WHERE id = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, id);
	btext(s, 2, rollout_id);
	sqlite3_bind_int(s, 3, rollout_state);
	if (last_error)
		btext(s, 4, last_error);
	sqlite3_bind_int64(s, 5, at_ms);
	return changed_one(st, done(st, s, "cannot update the tenant", errbuf), "tenant", errbuf);
}

enum fl_err fl_store_tenant_set_after_report(struct fl_store *st, const char *id, const char *head,
                                             uint32_t applied_count, const char *fingerprint,
                                             const char *last_error, int64_t at_ms, char *errbuf)
{
	static const char SQL[] =
	    "UPDATE tenants SET head_migration_id = coalesce(?2, head_migration_id),"
	    " applied_count = CASE WHEN ?2 IS NULL THEN applied_count ELSE ?3 END,"
	    " fingerprint = coalesce(?4, fingerprint), last_error = coalesce(?5, last_error),"
	    " updated_at = ?6 WHERE id = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, id);
	if (head)
		btext(s, 2, head);
	sqlite3_bind_int64(s, 3, applied_count);
	if (fingerprint)
		btext(s, 4, fingerprint);
	if (last_error)
		btext(s, 5, last_error);
	sqlite3_bind_int64(s, 6, at_ms);
	return changed_one(st, done(st, s, "cannot update the tenant", errbuf), "tenant", errbuf);
}

enum fl_err fl_store_tenant_history_after_report(struct fl_store *st, const char *id,
                                                 const struct fl_store_history_change *c,
                                                 int64_t at_ms, char *errbuf)
{
	static const char APPEND[] =
	    "INSERT INTO tenant_applied (tenant_id, pos, id, checksum, started_at, finished_at,"
	    " applied_steps_count) SELECT ?1,"
	    " (SELECT coalesce(max(pos), -1) + 1 FROM tenant_applied WHERE tenant_id = ?1),"
	    " ?2, ?3, ?4, ?5, ?6"
	    " WHERE NOT EXISTS (SELECT 1 FROM tenant_applied WHERE tenant_id = ?1 AND id = ?2)";
	static const char REMOVE[] = "DELETE FROM tenant_applied WHERE tenant_id = ?1 AND id = ?2";
	static const char DEL_FAILED[] = "DELETE FROM tenant_failed WHERE tenant_id = ?1";
	static const char INS_FAILED[] =
	    "INSERT INTO tenant_failed (tenant_id, pos, id, checksum, started_at,"
	    " applied_steps_count, logs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	static const char TENANT[] =
	    "UPDATE tenants SET history_digest = NULL, updated_at = ?2,"
	    " failed_count = CASE WHEN ?3 < 0 THEN failed_count ELSE ?3 END WHERE id = ?1";
	sqlite3_stmt *s;
	enum fl_err e;
	bool own;

	if ((e = sub_begin(st, &own, errbuf)) != FL_OK)
		return e;
	/* the tenant first: FL_ENOENT before anything is written */
	if ((s = prep(st, TENANT, errbuf)) == NULL)
		goto db;
	btext(s, 1, id);
	sqlite3_bind_int64(s, 2, at_ms);
	sqlite3_bind_int64(s, 3, c->replace_failed ? (sqlite3_int64)c->n_failed : -1);
	if ((e = changed_one(st, done(st, s, "cannot update the tenant", errbuf), "tenant",
	                     errbuf)) != FL_OK)
		goto out;
	for (size_t i = 0; i < c->n_removed; i++) {
		if ((s = prep(st, REMOVE, errbuf)) == NULL)
			goto db;
		btext(s, 1, id);
		btext(s, 2, c->removed[i]);
		if ((e = done(st, s, "cannot update the tenant's history", errbuf)) != FL_OK)
			goto out;
	}
	for (size_t i = 0; i < c->n_applied; i++) {
		const struct fl_store_applied *a = &c->applied[i];

		if ((s = prep(st, APPEND, errbuf)) == NULL)
			goto db;
		btext(s, 1, id);
		btext(s, 2, a->id);
		btext(s, 3, a->checksum);
		sqlite3_bind_int64(s, 4, a->started_at_ms);
		sqlite3_bind_int64(s, 5, a->finished_at_ms);
		sqlite3_bind_int64(s, 6, a->applied_steps_count);
		if ((e = done(st, s, "cannot update the tenant's history", errbuf)) != FL_OK)
			goto out;
	}
	if (c->replace_failed) {
		if ((s = prep(st, DEL_FAILED, errbuf)) == NULL)
			goto db;
		btext(s, 1, id);
		if ((e = done(st, s, "cannot update the tenant's failed migrations", errbuf)) !=
		    FL_OK)
			goto out;
		for (size_t i = 0; i < c->n_failed; i++) {
			const struct fl_store_failed *f = &c->failed[i];

			if ((s = prep(st, INS_FAILED, errbuf)) == NULL)
				goto db;
			btext(s, 1, id);
			sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
			btext(s, 3, f->id);
			btext(s, 4, f->checksum);
			sqlite3_bind_int64(s, 5, f->started_at_ms);
			sqlite3_bind_int64(s, 6, f->applied_steps_count);
			btext(s, 7, f->logs);
			if ((e = done(st, s, "cannot update the tenant's failed migrations",
			              errbuf)) != FL_OK)
				goto out;
		}
	}
	goto out;
db:
	e = FL_EDB;
out:
	return sub_end(st, own, e, errbuf);
}

enum fl_err fl_store_tenant_each(struct fl_store *st, const char *after_id, bool include_gone,
                                 fl_store_tenant_fn fn, void *arg, char *errbuf)
{
	/* Not a cached statement: fn may call into the store while we step. */
	static const char SQL[] =
	    "SELECT " TENANT_COLS " FROM tenants WHERE id > ?1 AND (?2 OR gone = 0) ORDER BY id";
	struct fl_store_tenant t;
	sqlite3_stmt *s;
	bool more = true;
	int rc;

	rc = sqlite3_prepare_v2(st->db, SQL, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return fail(st, rc, "cannot list tenants", false, errbuf);
	btext(s, 1, after_id ? after_id : "");
	sqlite3_bind_int(s, 2, include_gone);
	while (more && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		tenant_row(s, &t);
		more = fn(arg, &t);
		fl_store_tenant_fini(&t);
	}
	sqlite3_finalize(s);
	if (more && rc != SQLITE_DONE)
		return fail(st, rc, "cannot list tenants", false, errbuf);
	return FL_OK;
}

enum fl_err fl_store_origin_set(struct fl_store *st, const char *tenant_id,
                                const char *migration_id, enum fl_store_origin origin,
                                int64_t at_ms, char *errbuf)
{
	static const char SQL[] =
	    "INSERT INTO tenant_origins (tenant_id, migration_id, origin, at) VALUES (?1, ?2, ?3, "
	    "?4)"
	    " ON CONFLICT (tenant_id, migration_id) DO UPDATE SET origin = ?3, at = ?4"
	    " WHERE ?3 = 2 AND origin <> 2";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, tenant_id);
	btext(s, 2, migration_id);
	sqlite3_bind_int(s, 3, (int)origin);
	sqlite3_bind_int64(s, 4, at_ms);
	return done(st, s, "cannot record a migration's origin", errbuf);
}

enum fl_err fl_store_origin_get(struct fl_store *st, const char *tenant_id,
                                const char *migration_id, enum fl_store_origin *origin,
                                char *errbuf)
{
	static const char SQL[] =
	    "SELECT origin FROM tenant_origins WHERE tenant_id = ?1 AND migration_id = ?2";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	*origin = 0;
	if (s == NULL)
		return FL_EDB;
	btext(s, 1, tenant_id);
	btext(s, 2, migration_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*origin = (enum fl_store_origin)sqlite3_column_int(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(st, rc, "cannot read a migration's origin", false, errbuf);
	return FL_OK;
}

void fl_store_drift_rows_free(struct fl_store_drift_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].head_migration_id);
		free(rows[i].fingerprint);
	}
	free(rows);
}

enum fl_err fl_store_drift_rows(struct fl_store *st, struct fl_store_drift_row **rows, size_t *n,
                                char *errbuf)
{
	static const char SQL[] =
	    "SELECT head_migration_id, fingerprint, count(*) AS c FROM tenants"
	    " WHERE gone = 0 AND fingerprint <> '' GROUP BY head_migration_id, fingerprint"
	    " ORDER BY head_migration_id, c DESC, fingerprint";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*rows = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*rows = fl_grow(*rows, &cap, *n + 1, sizeof(**rows));
		(*rows)[*n].head_migration_id = text(s, 0);
		(*rows)[*n].fingerprint = text(s, 1);
		(*rows)[(*n)++].count = (uint32_t)sqlite3_column_int64(s, 2);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fl_store_drift_rows_free(*rows, *n);
		*rows = NULL;
		*n = 0;
		return fail(st, rc, "cannot group tenants by fingerprint", false, errbuf);
	}
	return FL_OK;
}

/* ---- reports ---- */

enum fl_err fl_store_report_add(struct fl_store *st, const uint8_t agent_pk[FL_STORE_KEY_LEN],
                                uint64_t journal_id, uint64_t assignment_id, const char *tenant_id,
                                int outcome, const uint8_t *packed, size_t len,
                                int64_t received_at_ms, bool *duplicate, char *errbuf)
{
	static const char SQL[] =
	    "INSERT INTO reports (agent_pk, journal_id, assignment_id, tenant_id, outcome, report,"
	    " received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	    " ON CONFLICT (agent_pk, journal_id) DO NOTHING";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	enum fl_err e;

	*duplicate = false;
	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, agent_pk, FL_STORE_KEY_LEN);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)journal_id);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)assignment_id);
	btext(s, 4, tenant_id);
	sqlite3_bind_int(s, 5, outcome);
	bblob(s, 6, packed, len);
	sqlite3_bind_int64(s, 7, received_at_ms);
	if ((e = done(st, s, "cannot store the report", errbuf)) != FL_OK)
		return e;
	*duplicate = sqlite3_changes(st->db) == 0;
	return FL_OK;
}

void fl_store_reports_free(struct fl_store_report *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(items[i].packed);
	free(items);
}

enum fl_err fl_store_sqlite_reports(struct fl_store *st, sqlite3_stmt *s,
                                    struct fl_store_report **items, size_t *n, char *errbuf)
{
	size_t cap = 0;
	int rc;

	*items = NULL;
	*n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*items = fl_grow(*items, &cap, *n + 1, sizeof(**items));
		(*items)[*n].packed = fl_store_sqlite_blob(s, 0, &(*items)[*n].len);
		(*items)[(*n)++].received_at_ms = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fl_store_reports_free(*items, *n);
		*items = NULL;
		*n = 0;
		return fail(st, rc, "cannot list reports", false, errbuf);
	}
	return FL_OK;
}

enum fl_err fl_store_report_list(struct fl_store *st, const char *tenant_id, uint32_t limit,
                                 struct fl_store_report **items, size_t *n, char *errbuf)
{
	static const char SQL[] = "SELECT report, received_at FROM reports WHERE tenant_id = ?1"
	                          " ORDER BY id DESC LIMIT ?2";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	*items = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	btext(s, 1, tenant_id);
	sqlite3_bind_int64(s, 2, limit);
	return fl_store_sqlite_reports(st, s, items, n, errbuf);
}

enum fl_err fl_store_report_count(struct fl_store *st, uint64_t *n, char *errbuf)
{
	static const char SQL[] = "SELECT count(*) FROM reports";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	*n = 0;
	if (s == NULL)
		return FL_EDB;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? FL_OK : fail(st, rc, "cannot count reports", false, errbuf);
}

/* ---- assignments ---- */

void fl_store_assignment_fini(struct fl_store_assignment *a)
{
	if (a == NULL)
		return;
	free(a->rollout_id);
	free(a->tenant_id);
	free(a->target_migration_id);
	memset(a, 0, sizeof(*a));
}

void fl_store_assignments_free(struct fl_store_assignment *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fl_store_assignment_fini(&items[i]);
	free(items);
}

enum fl_err fl_store_assignment_next_id(struct fl_store *st, uint64_t *id, char *errbuf)
{
	static const char SQL[] =
	    "UPDATE counters SET value = value + 1 WHERE name = 'assignment_id' RETURNING value";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	*id = 0;
	if (s == NULL)
		return FL_EDB;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*id = (uint64_t)sqlite3_column_int64(s, 0);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE || *id == 0)
		return fail(st, rc, "cannot take an assignment id", false, errbuf);
	return FL_OK;
}

enum fl_err fl_store_assignment_add(struct fl_store *st, const struct fl_store_assignment *a,
                                    char *errbuf)
{
	static const char SQL[] =
	    "INSERT INTO assignments (id, rollout_id, wave, tenant_id, agent_pk, kind,"
	    " target_migration_id, state, issued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)a->id);
	btext(s, 2, a->rollout_id);
	sqlite3_bind_int64(s, 3, a->wave);
	btext(s, 4, a->tenant_id);
	bblob(s, 5, a->agent_pk, FL_STORE_KEY_LEN);
	sqlite3_bind_int(s, 6, a->kind);
	btext(s, 7, a->target_migration_id);
	sqlite3_bind_int(s, 8, a->state ? (int)a->state : FL_STORE_ASSIGNMENT_ISSUED);
	sqlite3_bind_int64(s, 9, a->issued_at_ms);
	return done(st, s, "cannot add the assignment", errbuf);
}

#define ASSIGNMENT_COLS                                                                            \
	"id, rollout_id, wave, tenant_id, agent_pk, kind, target_migration_id, state, issued_at,"  \
	" reported_at, outcome"

static void assignment_row(sqlite3_stmt *s, struct fl_store_assignment *a)
{
	memset(a, 0, sizeof(*a));
	a->id = (uint64_t)sqlite3_column_int64(s, 0);
	a->rollout_id = text(s, 1);
	a->wave = (uint32_t)sqlite3_column_int64(s, 2);
	a->tenant_id = text(s, 3);
	fl_store_sqlite_blob_into(s, 4, a->agent_pk, FL_STORE_KEY_LEN);
	a->kind = sqlite3_column_int(s, 5);
	a->target_migration_id = text(s, 6);
	a->state = (enum fl_store_assignment_state)sqlite3_column_int(s, 7);
	a->issued_at_ms = sqlite3_column_int64(s, 8);
	a->reported_at_ms = sqlite3_column_int64(s, 9);
	a->outcome = sqlite3_column_int(s, 10);
}

enum fl_err fl_store_assignment_get(struct fl_store *st, uint64_t id,
                                    struct fl_store_assignment *out, char *errbuf)
{
	static const char SQL[] = "SELECT " ASSIGNMENT_COLS " FROM assignments WHERE id = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return FL_EDB;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		assignment_row(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return FL_OK;
	return rc == SQLITE_DONE ? fl_errf(errbuf, FL_ENOENT, "no such assignment")
	                         : fail(st, rc, "cannot read the assignment", false, errbuf);
}

enum fl_err fl_store_assignment_set_state(struct fl_store *st, uint64_t id,
                                          enum fl_store_assignment_state state, int outcome,
                                          int64_t at_ms, char *errbuf)
{
	static const char SQL[] =
	    "UPDATE assignments SET state = ?2, outcome = ?3, reported_at = ?4 WHERE id = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
	sqlite3_bind_int(s, 2, (int)state);
	sqlite3_bind_int(s, 3, outcome);
	sqlite3_bind_int64(s, 4, at_ms);
	return changed_one(st, done(st, s, "cannot update the assignment", errbuf), "assignment",
	                   errbuf);
}

enum fl_err fl_store_assignment_outstanding(struct fl_store *st, const uint8_t pk[FL_STORE_KEY_LEN],
                                            struct fl_store_assignment **items, size_t *n,
                                            char *errbuf)
{
	static const char SQL[] = "SELECT " ASSIGNMENT_COLS
	                          " FROM assignments WHERE agent_pk = ?1 AND state = 1 ORDER BY id";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*items = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, pk, FL_STORE_KEY_LEN);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*items = fl_grow(*items, &cap, *n + 1, sizeof(**items));
		assignment_row(s, &(*items)[(*n)++]);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fl_store_assignments_free(*items, *n);
		*items = NULL;
		*n = 0;
		return fail(st, rc, "cannot list assignments", false, errbuf);
	}
	return FL_OK;
}

/* ---- audit ---- */

void fl_store_audit_fini(struct fl_store_audit *a)
{
	if (a == NULL)
		return;
	free(a->actor_key_id);
	free(a->actor_name);
	free(a->command);
	free(a->subject);
	free(a->detail);
	memset(a, 0, sizeof(*a));
}

void fl_store_audits_free(struct fl_store_audit *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fl_store_audit_fini(&items[i]);
	free(items);
}

enum fl_err fl_store_audit_add(struct fl_store *st, const struct fl_store_audit *a, uint64_t *id,
                               char *errbuf)
{
	static const char SQL[] =
	    "INSERT INTO audit (at, actor_key_id, actor_name, role, command, subject, code, detail)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	enum fl_err e;

	if (s == NULL)
		return FL_EDB;
	sqlite3_bind_int64(s, 1, a->at_ms);
	btext(s, 2, a->actor_key_id);
	btext(s, 3, a->actor_name);
	sqlite3_bind_int(s, 4, a->role);
	btext(s, 5, a->command);
	btext(s, 6, a->subject);
	sqlite3_bind_int(s, 7, a->code);
	btext(s, 8, a->detail);
	if ((e = done(st, s, "cannot write the audit log", errbuf)) == FL_OK && id != NULL)
		*id = (uint64_t)sqlite3_last_insert_rowid(st->db);
	return e;
}

enum fl_err fl_store_audit_query(struct fl_store *st, int64_t since_ms, uint64_t after_id,
                                 const char *actor, uint32_t limit, struct fl_store_audit **items,
                                 size_t *n, char *errbuf)
{
	static const char SQL[] =
	    "SELECT id, at, actor_key_id, actor_name, role, command, subject, code, detail"
	    " FROM audit WHERE at >= ?1 AND id > ?2 AND (?3 = '' OR actor_key_id = ?3)"
	    " ORDER BY id LIMIT ?4";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*items = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	sqlite3_bind_int64(s, 1, since_ms);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)after_id);
	btext(s, 3, actor);
	sqlite3_bind_int64(s, 4, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fl_store_audit *a;

		*items = fl_grow(*items, &cap, *n + 1, sizeof(**items));
		a = &(*items)[(*n)++];
		a->id = (uint64_t)sqlite3_column_int64(s, 0);
		a->at_ms = sqlite3_column_int64(s, 1);
		a->actor_key_id = text(s, 2);
		a->actor_name = text(s, 3);
		a->role = sqlite3_column_int(s, 4);
		a->command = text(s, 5);
		a->subject = text(s, 6);
		a->code = sqlite3_column_int(s, 7);
		a->detail = text(s, 8);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fl_store_audits_free(*items, *n);
		*items = NULL;
		*n = 0;
		return fail(st, rc, "cannot read the audit log", false, errbuf);
	}
	return FL_OK;
}

/* ---- enrollment tokens ---- */

void fl_store_token_fini(struct fl_store_token *t)
{
	if (t == NULL)
		return;
	free(t->name);
	fl_labels_fini(&t->labels);
	free(t->created_by);
	memset(t, 0, sizeof(*t));
}

enum fl_err fl_store_token_add(struct fl_store *st, const struct fl_store_token *t, char *errbuf)
{
	static const char SQL[] =
	    "INSERT INTO enrollment_tokens (hash, name, labels, created_at, expires_at, created_by)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	char *labels;
	enum fl_err e;

	if (s == NULL)
		return FL_EDB;
	labels = fl_store_sqlite_labels_encode(&t->labels);
	bblob(s, 1, t->hash, FL_STORE_HASH_LEN);
	btext(s, 2, t->name);
	btext(s, 3, labels);
	sqlite3_bind_int64(s, 4, t->created_at_ms);
	sqlite3_bind_int64(s, 5, t->expires_at_ms);
	btext(s, 6, t->created_by);
	e = done(st, s, "cannot store the token", errbuf);
	free(labels);
	return e;
}

enum fl_err fl_store_token_get(struct fl_store *st, const uint8_t hash[FL_STORE_HASH_LEN],
                               struct fl_store_token *out, char *errbuf)
{
	static const char SQL[] =
	    "SELECT name, labels, created_at, expires_at, created_by, used_at, used_by"
	    " FROM enrollment_tokens WHERE hash = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	char *labels;
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, hash, FL_STORE_HASH_LEN);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		memcpy(out->hash, hash, FL_STORE_HASH_LEN);
		out->name = text(s, 0);
		labels = text(s, 1);
		if (!fl_store_sqlite_labels_decode(labels, &out->labels))
			fl_labels_init(&out->labels);
		free(labels);
		out->created_at_ms = sqlite3_column_int64(s, 2);
		out->expires_at_ms = sqlite3_column_int64(s, 3);
		out->created_by = text(s, 4);
		out->used_at_ms = sqlite3_column_int64(s, 5);
		fl_store_sqlite_blob_into(s, 6, out->used_by, FL_STORE_KEY_LEN);
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return FL_OK;
	return rc == SQLITE_DONE ? fl_errf(errbuf, FL_ENOENT, "no such token")
	                         : fail(st, rc, "cannot read the token", false, errbuf);
}

void fl_store_tokens_free(struct fl_store_token *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fl_store_token_fini(&items[i]);
	free(items);
}

enum fl_err fl_store_token_outstanding(struct fl_store *st, int64_t now_ms,
                                       struct fl_store_token **items, size_t *n, char *errbuf)
{
	static const char SQL[] =
	    "SELECT hash, name, labels, created_at, expires_at, created_by FROM enrollment_tokens"
	    " WHERE used_at = 0 AND expires_at > ?1 ORDER BY created_at";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*items = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	sqlite3_bind_int64(s, 1, now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fl_store_token *t;
		char *labels;

		*items = fl_grow(*items, &cap, *n + 1, sizeof(**items));
		t = &(*items)[(*n)++];
		memset(t, 0, sizeof(*t));
		fl_store_sqlite_blob_into(s, 0, t->hash, FL_STORE_HASH_LEN);
		t->name = text(s, 1);
		labels = text(s, 2);
		if (!fl_store_sqlite_labels_decode(labels, &t->labels))
			fl_labels_init(&t->labels);
		free(labels);
		t->created_at_ms = sqlite3_column_int64(s, 3);
		t->expires_at_ms = sqlite3_column_int64(s, 4);
		t->created_by = text(s, 5);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fl_store_tokens_free(*items, *n);
		*items = NULL;
		*n = 0;
		return fail(st, rc, "cannot list enrollment tokens", false, errbuf);
	}
	return FL_OK;
}

enum fl_err fl_store_token_use(struct fl_store *st, const uint8_t hash[FL_STORE_HASH_LEN],
                               const uint8_t pk[FL_STORE_KEY_LEN], int64_t at_ms, char *errbuf)
{
	static const char SQL[] = "UPDATE enrollment_tokens SET used_at = ?2, used_by = ?3"
	                          " WHERE hash = ?1 AND used_at = 0";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	enum fl_err e;

	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, hash, FL_STORE_HASH_LEN);
	sqlite3_bind_int64(s, 2, at_ms > 0 ? at_ms : 1);
	bblob(s, 3, pk, FL_STORE_KEY_LEN);
	if ((e = done(st, s, "cannot use the token", errbuf)) != FL_OK)
		return e;
	if (sqlite3_changes(st->db) == 0)
		return fl_errf(errbuf, FL_ESTATE, "token used already, or unknown");
	return FL_OK;
}
