/* Rollback: run down.sql of applied migrations in reverse apply order (a
 * reverse topological order of the graph). Refused up front, with nothing
 * done, when any migration to undo lacks down.sql or cannot be undone safely. */
#ifndef FL_ROLLBACK_H
#define FL_ROLLBACK_H

#include "session.h"

/*
 * Undo, in the locked session s, either every applied migration after `to`
 * (to != NULL; `to` itself stays applied) or the last `steps` applied ones.
 * *reverted counts what was undone. Errors: FL_ENOENT (unknown `to`),
 * FL_ESTATE (`to` not applied, too many steps, applied migrations missing from
 * the folder), FL_EFAILED, FL_ECHECKSUM (a target was edited after apply),
 * FL_ENOTSUP (no down.sql), FL_EPARSE, or the driver's error.
 */
enum fl_err fl_rollback(struct fl_session *s, const char *to, size_t steps, size_t *reverted,
                        char *errbuf) __attribute__((warn_unused_result));

#endif
