/*
 * The plan: where each local migration stands against a database's history,
 * by the rules Prisma uses, so that `flotilla status` and `prisma migrate
 * status` tell the same story.
 *
 * For each local migration, its rows in _prisma_migrations decide:
 *   a finished, not rolled-back row   -> APPLIED (MODIFIED if the checksum
 *                                        no longer matches the file)
 *   else an unfinished, not rolled-back row -> FAILED (blocks deploy)
 *   else (no rows, or only rolled-back ones) -> PENDING
 * Rows naming migrations that are not in the folder are listed as missing
 * (if applied) or as foreign failures (which block deploy just the same).
 *
 * An unfinished row is also what a deploy leaves while it runs a migration
 * that writes its row first (Prisma's way, and no-transaction files). Only
 * the database's locks tell the two apart: when another session holds the
 * migration lock, fl_plan_mark_running() calls the latest unfinished row
 * running instead of failed.
 *
 * Pure: no I/O. The plan points into the set and the history, which must
 * outlive it.
 */
#ifndef FL_PLAN_H
#define FL_PLAN_H

#include <stddef.h>

#include "driver.h"
#include "migration.h"

enum fl_mstate {
	FL_MSTATE_PENDING = 0,
	FL_MSTATE_APPLIED,
	FL_MSTATE_MODIFIED,
	FL_MSTATE_FAILED,
	FL_MSTATE_RUNNING, /* unfinished while another session holds the migration lock:
	                      a deploy is at it now; set by fl_plan_mark_running */
};

struct fl_plan_entry {
	const struct fl_migration *migration;
	enum fl_mstate state;
	const struct fl_history_row *row; /* the row that decided the state; NULL if pending */
};

struct fl_plan {
	struct fl_plan_entry *entries; /* one per local migration, in apply order */
	size_t count;
	/* Rows of migrations absent from the folder: applied ones, and failed ones. */
	const struct fl_history_row **missing;
	size_t n_missing;
	const struct fl_history_row **foreign_failed;
	size_t n_foreign_failed;
	/* The running row of a migration absent from the folder, or NULL. */
	const struct fl_history_row *foreign_running;
	size_t n_pending, n_applied, n_modified, n_failed;
	size_t n_running; /* 0 or 1: local entries RUNNING, plus foreign_running */
};

void fl_plan_build(const struct fl_migration_set *set, const struct fl_history *history,
                   struct fl_plan *plan);
void fl_plan_fini(struct fl_plan *plan);
/* A deploy holds the migration lock in another session: the latest
 * unfinished row of history (in started_at order), failed so far, is the one
 * it runs. Its entry becomes RUNNING (or, for a migration not in the folder,
 * it moves from foreign_failed to foreign_running). Earlier unfinished rows
 * stay failed: a deploy refuses to start beside them. */
void fl_plan_mark_running(struct fl_plan *plan, const struct fl_history *history);
const char *fl_mstate_name(enum fl_mstate state);

#endif
