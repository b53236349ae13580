/*
 * The history tables: Prisma's `_prisma_migrations`, written exactly as
 * prisma-engines writes it, and flotilla's own `_flotilla_events` for facts
 * Prisma has no column for. Every statement on either table is here.
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

enum fl_err fl_pg_history_ensure(struct fl_conn *c, char *errbuf);
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
	int steps;
};
enum fl_err fl_pg_history_row(struct fl_conn *c, const char *id, struct fl_pg_row_state *st,
                              struct fl_pg_error *e);
/* How many rows name has, of any state. */
enum fl_err fl_pg_history_count(struct fl_conn *c, const char *name, long *count,
                                struct fl_pg_error *e);
/* One statement: delete name's rows and, if there were any, log the
 * rollback in _flotilla_events with detail. *deleted gets the row count. */
enum fl_err fl_pg_history_forget(struct fl_conn *c, const char *name, const char *checksum,
                                 const char *detail, long *deleted, struct fl_pg_error *e);

#endif
