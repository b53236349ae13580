/*
 * Choosing how a script runs, from its directives and its parse tree, so that
 * every migration.sql Prisma applies runs unchanged:
 *   `-- flotilla:no-transaction`        -> statement by statement
 *   its own BEGIN/COMMIT                -> as Prisma: one simple query
 *   a lone CREATE INDEX CONCURRENTLY    -> as Prisma: one simple query
 *   a statement that cannot run in a transaction among others
 *                                       -> refused before anything runs
 *   a file our parser cannot read (newer syntax, or a statement over
 *   FL_SQL_PIECE_MAX, 1 MiB, that we do not hand to the parser)
 *                                       -> as Prisma, with a warning, and never
 *                                          retried (not known to be atomic)
 *   anything else                       -> one transaction, history row included
 */
#ifndef FL_MODE_H
#define FL_MODE_H

#include "driver.h"
#include "log.h"
#include "split.h"

/*
 * Parse sql (migration.sql or down.sql of m; which names the file in messages)
 * into *script and choose *mode. *script is always initialised; the caller
 * finis it. A warning (a file run as Prisma would) goes to log. FL_EPARSE for a file that cannot
 * run safely, with errbuf saying what to do about it.
 */
enum fl_err fl_mode_choose(const struct fl_migration *m, const char *sql, const char *which,
                           struct fl_sql_script *script, enum fl_apply_mode *mode,
                           const struct fl_logger *log, char *errbuf)
    __attribute__((warn_unused_result));

const char *fl_mode_name(enum fl_apply_mode mode);

#endif
