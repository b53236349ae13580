/*
 * The history: Prisma's `_prisma_migrations`, written exactly as
 * prisma-engines writes it, in the target schema; and flotilla's own records
 * (rollbacks, resolves: facts Prisma has no column for) in `_flotilla.events`,
 * a schema of their own, one per database, rows keyed by the target schema's
 * name. The application's schema holds nothing Prisma would not have put
 * there: Prisma introspects every table in it. Every statement on either
 * table is here.
 *
 * What Prisma does, and we mirror (schema-engine, sql-schema-connector):
 * - the table is created with Prisma's DDL in the target schema, after the
 *   schema itself when it is missing (flavour/postgres.rs);
 * - a migration starts with INSERT (id, checksum, started_at, migration_name),
 *   the id a random UUID v4; success adds one to applied_steps_count, then sets
 *   finished_at; failure writes the error into logs and leaves finished_at NULL
 *   (sql_migration_persistence.rs, core/commands/apply_migrations.rs);
 * - resolve --applied refuses a migration with a finished row, marks its
 *   failed rows rolled back and inserts a row with logs '' and started_at =
 *   finished_at; resolve --rolled-back refuses a migration with no rows or only
 *   finished ones, and sets rolled_back_at on its failed rows
 *   (core/commands/mark_migration_applied.rs, mark_migration_rolled_back.rs).
 *
 * `_flotilla` is created when first written (rollback, resolve), never by
 * deploy; a role that cannot create it or write to it is refused, with the
 * privilege it lacks named, before anything changes. Older flotilla kept its
 * events in `_flotilla_events` beside `_prisma_migrations`: a writer (holding
 * the migration lock) that finds that table moves its rows into
 * `_flotilla.events` and drops it, or warns when it cannot; readers warn.
 *
 * Bookkeeping helpers used by apply are idempotent (ON CONFLICT, guarded
 * UPDATEs), so a retry after a lost acknowledgement does no harm. They return
 * FL_OK or the kind of e (see pg_conn.h).
 */
#ifndef FL_PG_HISTORY_H
#define FL_PG_HISTORY_H

#include <stdbool.h>

#include "driver.h"
#include "pg_conn.h"

#define FL_PG_UUID_LEN 36

/* Create `_prisma_migrations` (and the target schema) when missing. */
enum fl_err fl_pg_history_ensure(struct fl_conn *c, char *errbuf);
/* Make `_flotilla.events` ready to take this role's records, creating it
 * when missing, and move an older flotilla's `_flotilla_events` into it.
 * FL_EDB naming the privilege the role lacks, before anything changed. */
enum fl_err fl_pg_history_ensure_events(struct fl_conn *c, char *errbuf)
    __attribute__((warn_unused_result));
/* Read `_prisma_migrations`; under the migration lock, also move an older
 * flotilla's `_flotilla_events` out of the application's schema. */
enum fl_err fl_pg_history_read(struct fl_conn *c, struct fl_history *out, char *errbuf);
enum fl_err fl_pg_history_mark_applied(struct fl_conn *c, const char *name, const char *checksum,
                                       char *errbuf) __attribute__((warn_unused_result));
enum fl_err fl_pg_history_mark_rolled_back(struct fl_conn *c, const char *name, char *errbuf)
    __attribute__((warn_unused_result));

/* A random UUID v4, lowercase 8-4-4-4-12, as Prisma's Uuid::new_v4(). */
void fl_pg_history_new_id(char out[FL_PG_UUID_LEN + 1]);

/* INSERT the row of a started migration; started_at (>= 64 bytes) receives
 * the server's text for it, "" when the row already existed. */
enum fl_err fl_pg_history_start(struct fl_conn *c, const char *id, const char *name,
                                const char *checksum, char *started_at, struct fl_pg_error *e);
/* applied_steps_count = steps. */
enum fl_err fl_pg_history_set_steps(struct fl_conn *c, const char *id, int steps,
                                    struct fl_pg_error *e);
/* The INSERT of fl_pg_history_start (RETURNING started_at) and the UPDATE of
 * fl_pg_history_finish (one step counted) as SQL text, appended to out, for
 * a batch sent as one simple query. FL_EINVAL: name cannot be quoted in the
 * client encoding (out unchanged); use the functions above then. */
enum fl_err fl_pg_history_start_sql(struct fl_conn *c, const char *id, const char *name,
                                    const char *checksum, struct fl_buf *out)
    __attribute__((warn_unused_result));
void fl_pg_history_finish_sql(struct fl_conn *c, const char *id, struct fl_buf *out);
/* SQL (heap) that sets applied_steps_count = steps, to send in the same
 * simple query as the statement it counts. */
char *fl_pg_history_steps_sql(struct fl_conn *c, const char *id, int steps);
/* finished_at = clock_timestamp(), plus one step when count_step. */
enum fl_err fl_pg_history_finish(struct fl_conn *c, const char *id, bool count_step,
                                 struct fl_pg_error *e);
/* logs = logs, on a started row that stays unfinished. */
enum fl_err fl_pg_history_fail(struct fl_conn *c, const char *id, const char *logs,
                               struct fl_pg_error *e);
/* INSERT a failed row (finished_at NULL, applied_steps_count 0); started_at
 * as the server printed it, or NULL for now(). If the row exists unfinished
 * (a script's own COMMIT took it out of our transaction), set its logs. */
enum fl_err fl_pg_history_insert_failed(struct fl_conn *c, const char *id, const char *name,
                                        const char *checksum, const char *started_at,
                                        const char *logs, struct fl_pg_error *e);

struct fl_pg_row_state {
	bool exists;
	bool finished;
	bool rolled_back;
	int steps;
};
enum fl_err fl_pg_history_row(struct fl_conn *c, const char *id, struct fl_pg_row_state *st,
                              struct fl_pg_error *e);
/* How many rows name has, of any state. */
enum fl_err fl_pg_history_count(struct fl_conn *c, const char *name, long *count,
                                struct fl_pg_error *e);
/* One statement: delete name's rows and, if there were any, log the
 * rollback in _flotilla.events with detail (fl_pg_history_ensure_events
 * first). *deleted gets the row count. */
enum fl_err fl_pg_history_forget(struct fl_conn *c, const char *name, const char *checksum,
                                 const char *detail, long *deleted, struct fl_pg_error *e);
/* Delete our started row id while nothing of it is recorded applied
 * (unfinished, no step counted): a try that applied nothing leaves no trace. */
enum fl_err fl_pg_history_discard(struct fl_conn *c, const char *id, struct fl_pg_error *e);

#endif
