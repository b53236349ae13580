/*
 * The scheduler's store functions over SQLite (store_rollouts.h), on the
 * tables of schema steps 2 and 3 (store_sqlite.c).
 */
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "store_rollouts.h"
#include "store_sqlite_int.h"

#define prep  fl_store_sqlite_prep
#define fail  fl_store_sqlite_fail
#define done  fl_store_sqlite_done
#define text  fl_store_sqlite_text
#define btext fl_store_sqlite_bind_text
#define bblob fl_store_sqlite_bind_blob

/* The wire's RolloutState values of live rollouts: pending 1, running 2,
 * paused 3, halted 5, rolling back 6 (completed 4 and rolled back 7 are
 * finished). */
#define LIVE_STATES "(1, 2, 3, 5, 6)"

static enum fl_err changed_one(struct fl_store *st, enum fl_err e, const char *what, char *errbuf)
{
	if (e == FL_OK && sqlite3_changes(fl_store_sqlite_db(st)) == 0)
		return fl_errf(errbuf, FL_ENOENT, "no such %s", what);
	return e;
}

/* ---- rollouts ---- */

void fl_store_rollout_fini(struct fl_store_rollout *r)
{
	if (r == NULL)
		return;
	free(r->id);
	free(r->signed_order);
	free(r->project_id);
	free(r->target_migration_id);
	free(r->state_reason);
	free(r->created_by);
	free(r->signed_by);
	free(r->rollback_order);
	memset(r, 0, sizeof(*r));
}

void fl_store_rollouts_free(struct fl_store_rollout *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fl_store_rollout_fini(&items[i]);
	free(items);
}

enum fl_err fl_store_rollout_next_seq(struct fl_store *st, uint64_t *seq, char *errbuf)
{
	static const char SQL[] = "SELECT coalesce(max(created_seq), 0) + 1 FROM rollouts";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	*seq = 0;
	if (s == NULL)
		return FL_EDB;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*seq = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? FL_OK : fail(st, rc, "cannot number the rollout", false, errbuf);
}

enum fl_err fl_store_rollout_add(struct fl_store *st, const struct fl_store_rollout *r,
                                 char *errbuf)
{
	static const char SQL[] =
	    "INSERT INTO rollouts (id, created_seq, order_hash, signed_order, release_hash,"
	    " project_id, target_migration_id, state, current_wave, state_reason, created_at,"
	    " updated_at, created_by, signed_by, expires_at, tenants_total, rollback_kind,"
	    " rollback_order, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	    " ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	if (r->signed_order == NULL || r->signed_order_len == 0)
		return fl_errf(errbuf, FL_EINVAL, "rollout '%s' has no signed order", r->id);
	btext(s, 1, r->id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)r->created_seq);
	bblob(s, 3, r->order_hash, FL_STORE_HASH_LEN);
	bblob(s, 4, r->signed_order, r->signed_order_len);
	bblob(s, 5, r->release_hash, FL_STORE_HASH_LEN);
	btext(s, 6, r->project_id);
	btext(s, 7, r->target_migration_id);
	sqlite3_bind_int(s, 8, r->state);
	sqlite3_bind_int64(s, 9, r->current_wave);
	btext(s, 10, r->state_reason);
	sqlite3_bind_int64(s, 11, r->created_at_ms);
	sqlite3_bind_int64(s, 12, r->updated_at_ms);
	btext(s, 13, r->created_by);
	btext(s, 14, r->signed_by);
	sqlite3_bind_int64(s, 15, r->expires_at_ms);
	sqlite3_bind_int64(s, 16, r->tenants_total);
	sqlite3_bind_int(s, 17, (int)r->rollback_kind);
	if (r->rollback_order != NULL)
		bblob(s, 18, r->rollback_order, r->rollback_order_len);
	sqlite3_bind_int64(s, 19, r->finished_at_ms);
	return done(st, s, "cannot add the rollout", errbuf);
}

#define ROLLOUT_COLS                                                                               \
	"id, created_seq, order_hash, release_hash, project_id, target_migration_id, state,"       \
	" current_wave, state_reason, created_at, updated_at, finished_at, created_by, signed_by," \
	" expires_at, tenants_total, rollback_kind"

static void rollout_row(sqlite3_stmt *s, struct fl_store_rollout *r)
{
	memset(r, 0, sizeof(*r));
	r->id = text(s, 0);
	r->created_seq = (uint64_t)sqlite3_column_int64(s, 1);
	fl_store_sqlite_blob_into(s, 2, r->order_hash, FL_STORE_HASH_LEN);
	fl_store_sqlite_blob_into(s, 3, r->release_hash, FL_STORE_HASH_LEN);
	r->project_id = text(s, 4);
	r->target_migration_id = text(s, 5);
	r->state = sqlite3_column_int(s, 6);
	r->current_wave = (uint32_t)sqlite3_column_int64(s, 7);
	r->state_reason = text(s, 8);
	r->created_at_ms = sqlite3_column_int64(s, 9);
	r->updated_at_ms = sqlite3_column_int64(s, 10);
	r->finished_at_ms = sqlite3_column_int64(s, 11);
	r->created_by = text(s, 12);
	r->signed_by = text(s, 13);
	r->expires_at_ms = sqlite3_column_int64(s, 14);
	r->tenants_total = (uint32_t)sqlite3_column_int64(s, 15);
	r->rollback_kind = (enum fl_store_rollback_kind)sqlite3_column_int(s, 16);
}

enum fl_err fl_store_rollout_get(struct fl_store *st, const char *id, unsigned flags,
                                 struct fl_store_rollout *out, char *errbuf)
{
	static const char SQL[] = "SELECT " ROLLOUT_COLS ", signed_order, rollback_order"
	                          " FROM rollouts WHERE id = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return FL_EDB;
	btext(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		rollout_row(s, out);
		if (flags & FL_STORE_WITH_ORDER) {
			out->signed_order = fl_store_sqlite_blob(s, 17, &out->signed_order_len);
			if (sqlite3_column_type(s, 18) != SQLITE_NULL)
				out->rollback_order =
				    fl_store_sqlite_blob(s, 18, &out->rollback_order_len);
		}
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return FL_OK;
	return rc == SQLITE_DONE ? fl_errf(errbuf, FL_ENOENT, "no such rollout")
	                         : fail(st, rc, "cannot read the rollout", false, errbuf);
}

enum fl_err fl_store_rollout_by_order(struct fl_store *st, const uint8_t hash[FL_STORE_HASH_LEN],
                                      char **id, char *errbuf)
{
	static const char SQL[] = "SELECT id FROM rollouts WHERE order_hash = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	*id = NULL;
	if (s == NULL)
		return FL_EDB;
	bblob(s, 1, hash, FL_STORE_HASH_LEN);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*id = text(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return FL_OK;
	return rc == SQLITE_DONE ? fl_errf(errbuf, FL_ENOENT, "no rollout under this order")
	                         : fail(st, rc, "cannot look the order up", false, errbuf);
}

enum fl_err fl_store_rollout_set_state(struct fl_store *st, const char *id, int state,
                                       uint32_t current_wave, const char *reason, int64_t at_ms,
                                       int64_t finished_at_ms, char *errbuf)
{
	static const char SQL[] =
	    "UPDATE rollouts SET state = ?2, current_wave = ?3,"
	    " state_reason = coalesce(?4, state_reason), updated_at = ?5,"
	    " finished_at = CASE WHEN ?6 <> 0 THEN ?6 ELSE finished_at END WHERE id = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, id);
	sqlite3_bind_int(s, 2, state);
	sqlite3_bind_int64(s, 3, current_wave);
	if (reason != NULL)
		btext(s, 4, reason);
	sqlite3_bind_int64(s, 5, at_ms);
	sqlite3_bind_int64(s, 6, finished_at_ms);
	return changed_one(st, done(st, s, "cannot update the rollout", errbuf), "rollout", errbuf);
}

enum fl_err fl_store_rollout_set_rollback(struct fl_store *st, const char *id,
                                          enum fl_store_rollback_kind kind, const uint8_t *order,
                                          size_t len, int64_t at_ms, char *errbuf)
{
	static const char SQL[] = "UPDATE rollouts SET rollback_kind = ?2, rollback_order = ?3,"
	                          " updated_at = ?4 WHERE id = ?1";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, id);
	sqlite3_bind_int(s, 2, (int)kind);
	if (order != NULL)
		bblob(s, 3, order, len);
	sqlite3_bind_int64(s, 4, at_ms);
	return changed_one(st, done(st, s, "cannot update the rollout", errbuf), "rollout", errbuf);
}

enum fl_err fl_store_rollout_list(struct fl_store *st, bool include_finished, uint32_t limit,
                                  struct fl_store_rollout **items, size_t *n, char *errbuf)
{
	static const char SQL[] =
	    "SELECT " ROLLOUT_COLS " FROM rollouts"
	    " WHERE ?1 OR state IN " LIVE_STATES " ORDER BY created_seq DESC LIMIT ?2";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*items = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	sqlite3_bind_int(s, 1, include_finished);
	sqlite3_bind_int64(s, 2, limit > 0 ? (sqlite3_int64)limit : -1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*items = fl_grow(*items, &cap, *n + 1, sizeof(**items));
		rollout_row(s, &(*items)[(*n)++]);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fl_store_rollouts_free(*items, *n);
		*items = NULL;
		*n = 0;
		return fail(st, rc, "cannot list rollouts", false, errbuf);
	}
	return FL_OK;
}

/* ---- waves ---- */

void fl_store_wave_fini(struct fl_store_wave *w)
{
	if (w == NULL)
		return;
	free(w->name);
	free(w->state_reason);
	memset(w, 0, sizeof(*w));
}

void fl_store_waves_free(struct fl_store_wave *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fl_store_wave_fini(&items[i]);
	free(items);
}

enum fl_err fl_store_wave_put(struct fl_store *st, const char *rollout_id,
                              const struct fl_store_wave *w, char *errbuf)
{
	static const char SQL[] =
	    "INSERT OR REPLACE INTO waves (rollout_id, idx, name, state, started_at, finished_at,"
	    " bake_until, state_reason, next_check_at, rolled_back, bake_paused_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, rollout_id);
	sqlite3_bind_int64(s, 2, w->idx);
	btext(s, 3, w->name);
	sqlite3_bind_int(s, 4, w->state);
	sqlite3_bind_int64(s, 5, w->started_at_ms);
	sqlite3_bind_int64(s, 6, w->finished_at_ms);
	sqlite3_bind_int64(s, 7, w->bake_until_ms);
	btext(s, 8, w->state_reason);
	sqlite3_bind_int64(s, 9, w->next_check_at_ms);
	sqlite3_bind_int(s, 10, w->rolled_back);
	sqlite3_bind_int64(s, 11, w->bake_paused_at_ms);
	return done(st, s, "cannot store the wave", errbuf);
}

enum fl_err fl_store_wave_list(struct fl_store *st, const char *rollout_id,
                               struct fl_store_wave **items, size_t *n, char *errbuf)
{
	static const char SQL[] =
	    "SELECT idx, name, state, started_at, finished_at, bake_until, state_reason,"
	    " next_check_at, rolled_back, bake_paused_at FROM waves WHERE rollout_id = ?1"
	    " ORDER BY idx";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*items = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	btext(s, 1, rollout_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fl_store_wave *w;

		*items = fl_grow(*items, &cap, *n + 1, sizeof(**items));
		w = &(*items)[(*n)++];
		w->idx = (uint32_t)sqlite3_column_int64(s, 0);
		w->name = text(s, 1);
		w->state = sqlite3_column_int(s, 2);
		w->started_at_ms = sqlite3_column_int64(s, 3);
		w->finished_at_ms = sqlite3_column_int64(s, 4);
		w->bake_until_ms = sqlite3_column_int64(s, 5);
		w->state_reason = text(s, 6);
		w->next_check_at_ms = sqlite3_column_int64(s, 7);
		w->rolled_back = sqlite3_column_int(s, 8) != 0;
		w->bake_paused_at_ms = sqlite3_column_int64(s, 9);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fl_store_waves_free(*items, *n);
		*items = NULL;
		*n = 0;
		return fail(st, rc, "cannot list waves", false, errbuf);
	}
	return FL_OK;
}

/* ---- rollout tenants ---- */

void fl_store_rollout_tenant_fini(struct fl_store_rollout_tenant *t)
{
	if (t == NULL)
		return;
	free(t->tenant_id);
	free(t->pre_head);
	free(t->last_error);
	fl_labels_fini(&t->labels);
	memset(t, 0, sizeof(*t));
}

enum fl_err fl_store_rollout_tenant_put(struct fl_store *st, const char *rollout_id,
                                        const struct fl_store_rollout_tenant *t, char *errbuf)
{
	static const char SQL[] =
	    "INSERT OR REPLACE INTO rollout_tenants (rollout_id, tenant_id, wave, state, attempts,"
	    " pre_head, last_error, updated_at, pos, not_before, since, changed, check_due,"
	    " revert_failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, rollout_id);
	btext(s, 2, t->tenant_id);
	sqlite3_bind_int64(s, 3, t->wave);
	sqlite3_bind_int(s, 4, t->state);
	sqlite3_bind_int64(s, 5, t->attempts);
	btext(s, 6, t->pre_head);
	btext(s, 7, t->last_error);
	sqlite3_bind_int64(s, 8, t->updated_at_ms);
	sqlite3_bind_int64(s, 9, t->pos);
	sqlite3_bind_int64(s, 10, t->not_before_ms);
	sqlite3_bind_int64(s, 11, t->since_ms);
	sqlite3_bind_int(s, 12, t->changed);
	sqlite3_bind_int(s, 13, t->check_due);
	sqlite3_bind_int(s, 14, t->revert_failed);
	return done(st, s, "cannot store the rollout's tenant", errbuf);
}

enum fl_err fl_store_rollout_tenant_each(struct fl_store *st, const char *rollout_id,
                                         fl_store_rollout_tenant_fn fn, void *arg, char *errbuf)
{
	static const char SQL[] =
	    "SELECT r.tenant_id, r.wave, r.pos, r.state, r.attempts, r.pre_head, r.last_error,"
	    " r.updated_at, r.not_before, r.since, r.changed, r.check_due, r.revert_failed,"
	    " t.agent_pk, t.labels FROM rollout_tenants r JOIN tenants t ON t.id = r.tenant_id"
	    " WHERE r.rollout_id = ?1 ORDER BY r.wave, r.pos";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	bool more = true;
	int rc;

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, rollout_id);
	while (more && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fl_store_rollout_tenant t = {0};
		char *labels;

		t.tenant_id = text(s, 0);
		t.wave = (uint32_t)sqlite3_column_int64(s, 1);
		t.pos = (uint32_t)sqlite3_column_int64(s, 2);
		t.state = sqlite3_column_int(s, 3);
		t.attempts = (uint32_t)sqlite3_column_int64(s, 4);
		t.pre_head = text(s, 5);
		t.last_error = text(s, 6);
		t.updated_at_ms = sqlite3_column_int64(s, 7);
		t.not_before_ms = sqlite3_column_int64(s, 8);
		t.since_ms = sqlite3_column_int64(s, 9);
		t.changed = sqlite3_column_int(s, 10) != 0;
		t.check_due = sqlite3_column_int(s, 11) != 0;
		t.revert_failed = sqlite3_column_int(s, 12) != 0;
		fl_store_sqlite_blob_into(s, 13, t.agent_pk, FL_STORE_KEY_LEN);
		labels = text(s, 14);
		if (!fl_store_sqlite_labels_decode(labels, &t.labels))
			fl_labels_init(&t.labels);
		free(labels);
		more = fn(arg, &t);
		fl_store_rollout_tenant_fini(&t);
	}
	sqlite3_reset(s);
	if (more && rc != SQLITE_DONE)
		return fail(st, rc, "cannot list the rollout's tenants", false, errbuf);
	return FL_OK;
}

enum fl_err fl_store_rollout_tenant_set_changed(struct fl_store *st, const char *rollout_id,
                                                const char *tenant_id, int64_t at_ms, char *errbuf)
{
	static const char SQL[] = "UPDATE rollout_tenants SET changed = 1, updated_at = ?3"
	                          " WHERE rollout_id = ?1 AND tenant_id = ?2";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, rollout_id);
	btext(s, 2, tenant_id);
	sqlite3_bind_int64(s, 3, at_ms);
	return changed_one(st, done(st, s, "cannot update the rollout's tenant", errbuf),
	                   "rollout tenant", errbuf);
}

enum fl_err fl_store_rollout_tenant_counts(struct fl_store *st, const char *rollout_id,
                                           fl_store_rollout_count_fn fn, void *arg, char *errbuf)
{
	static const char SQL[] = "SELECT wave, state, count(*) FROM rollout_tenants"
	                          " WHERE rollout_id = ?1 GROUP BY wave, state";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	int rc;

	if (s == NULL)
		return FL_EDB;
	btext(s, 1, rollout_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(arg, (uint32_t)sqlite3_column_int64(s, 0), sqlite3_column_int(s, 1),
		   (uint32_t)sqlite3_column_int64(s, 2));
	sqlite3_reset(s);
	return rc == SQLITE_DONE
	           ? FL_OK
	           : fail(st, rc, "cannot count the rollout's tenants", false, errbuf);
}

/* ---- transactions ---- */

void fl_store_on_rollback(struct fl_store *st, fl_store_rollback_fn fn, void *arg)
{
	sqlite3_rollback_hook(fl_store_sqlite_db(st), fn, fn ? arg : NULL);
}

/* ---- assignments and reports ---- */

enum fl_err fl_store_assignment_issued_in(struct fl_store *st, const char *rollout_id,
                                          struct fl_store_assignment **items, size_t *n,
                                          char *errbuf)
{
	static const char SQL[] =
	    "SELECT id, rollout_id, wave, tenant_id, agent_pk, kind, target_migration_id, state,"
	    " issued_at, reported_at, outcome FROM assignments"
	    " WHERE rollout_id = ?1 AND state = 1 ORDER BY id";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*items = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	btext(s, 1, rollout_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fl_store_assignment *a;

		*items = fl_grow(*items, &cap, *n + 1, sizeof(**items));
		a = &(*items)[(*n)++];
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
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		fl_store_assignments_free(*items, *n);
		*items = NULL;
		*n = 0;
		return fail(st, rc, "cannot list assignments", false, errbuf);
	}
	return FL_OK;
}

enum fl_err fl_store_assignment_withdrawn_in(struct fl_store *st, const char *rollout_id, int kind,
                                             char ***ids, size_t *n, char *errbuf)
{
	static const char SQL[] = "SELECT DISTINCT tenant_id FROM assignments"
	                          " WHERE rollout_id = ?1 AND kind = ?2 AND state = 3"
	                          " ORDER BY tenant_id";
	sqlite3_stmt *s = prep(st, SQL, errbuf);
	size_t cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	btext(s, 1, rollout_id);
	sqlite3_bind_int(s, 2, kind);
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
		return fail(st, rc, "cannot list withdrawn assignments", false, errbuf);
	}
	return FL_OK;
}

enum fl_err fl_store_report_recent(struct fl_store *st, int outcome, uint32_t limit,
                                   struct fl_store_report **items, size_t *n, char *errbuf)
{
	static const char SQL[] = "SELECT report, received_at FROM reports WHERE outcome = ?1"
	                          " ORDER BY id DESC LIMIT ?2";
	sqlite3_stmt *s = prep(st, SQL, errbuf);

	*items = NULL;
	*n = 0;
	if (s == NULL)
		return FL_EDB;
	sqlite3_bind_int(s, 1, outcome);
	sqlite3_bind_int64(s, 2, limit);
	return fl_store_sqlite_reports(st, s, items, n, errbuf);
}
