/*
 * Applying and reverting one migration on PostgreSQL, in the three modes of
 * driver.h, with Prisma's history rows and bounded retries.
 *
 * Retries follow one rule: repeat only what is known not to have happened.
 * - Bookkeeping statements are idempotent (pg_history.h): always repeatable.
 * - TRANSACTION: the history row commits with the script, so after a lost
 *   connection the row says whether the try committed.
 * - STATEMENTS: a statement that may run in a transaction block is sent in
 *   one simple query with the UPDATE that counts it (one implicit
 *   transaction), so applied_steps_count says where to resume. A statement
 *   that cannot (CREATE INDEX CONCURRENTLY, ...) has an unknown outcome when
 *   the connection drops under it: the migration fails with FL_ECONNLOST and
 *   a failed row, for a human to check.
 * - SCRIPT: a lock timeout is retried only when the file is atomic (no
 *   transaction control, or one BEGIN ... COMMIT around everything); a lost
 *   connection always fails, as its outcome is unknown.
 * Lock timeouts, serialization failures and deadlocks are retried; SQL
 * errors never are.
 */
#ifndef FL_PG_APPLY_H
#define FL_PG_APPLY_H

#include "driver.h"
#include "pg_conn.h"

enum fl_err fl_pg_apply_run(struct fl_conn *c, const struct fl_migration *m,
                            enum fl_apply_mode mode, const struct fl_sql_script *script,
                            const struct fl_apply_opts *opts, struct fl_apply_result *res)
    __attribute__((warn_unused_result));

enum fl_err fl_pg_apply_revert(struct fl_conn *c, const struct fl_migration *m,
                               enum fl_apply_mode mode, const struct fl_sql_script *down,
                               const struct fl_apply_opts *opts, struct fl_apply_result *res)
    __attribute__((warn_unused_result));

#endif
