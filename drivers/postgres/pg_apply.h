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
 * - SCRIPT: a lock timeout is retried only when the file is known to be
 *   atomic (it parsed, and has no transaction control or one BEGIN ...
 *   COMMIT around everything); a file that did not parse never is. A lost
 *   connection always fails, as its outcome is unknown.
 * Lock timeouts, serialization failures and deadlocks are retried; SQL
 * errors never are.
 *
 * After a reconnect (res->reconnected) the lock was free for a while, and
 * another deployer may have moved on. Our history row decides: finished
 * means our commit landed (FL_OK); committed but unfinished (STATEMENTS,
 * SCRIPT) means it blocked everyone else, so we resume; absent means nothing
 * of ours committed, so we stop with FL_ECONNLOST and write nothing, and the
 * engine reads the history again before going on. A TRANSACTION migration
 * is never retried in here after a reconnect, and never gets a failed row
 * for a lost connection: it applied nothing.
 *
 * What a failure leaves:
 * - FL_EBUSY: the retries ran out on lock timeouts, deadlocks or
 *   serialization failures and nothing was applied: no row at all (our
 *   started row is discarded), nothing to resolve; run again.
 * - FL_EDB: the database refused our bookkeeping (e.g. no INSERT on
 *   _prisma_migrations): not a failed migration, no failed row.
 * - FL_ECANCELED, FL_ECONNLOST with the outcome unknown: res->message (and
 *   the row's logs) say how far it got, "interrupted during statement 4 of 7
 *   (line 12): 3 applied; <cause>".
 * - otherwise a failed row, as Prisma leaves one.
 *
 * Reverting records in flotilla's own table, which must be writable before
 * down.sql runs (fl_pg_history_ensure_events).
 *
 * Every apply and revert starts from a clean session (fl_pg_conn_clean). A
 * TRANSACTION try whose script parsed (and has no verify.sql, and is at most
 * FL_SQL_PIECE_MAX) is one round trip: BEGIN, the clean statements, the
 * timeouts, the history row, the script, the row finished, COMMIT, in one
 * simple query; the count of statements completed says whose an error was.
 * It is one transaction like the other TRANSACTION tries, so every rule
 * above holds for it unchanged.
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
