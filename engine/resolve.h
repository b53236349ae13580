/* Resolve: record by hand what happened to a failed migration, exactly as
 * `prisma migrate resolve --applied | --rolled-back` does. */
#ifndef FL_RESOLVE_H
#define FL_RESOLVE_H

#include <stdbool.h>

#include "session.h"

/* Mark `id` applied without running it (its failed rows marked rolled back).
 * FL_ENOENT if `id` is not in the folder; FL_ESTATE if already applied, or
 * if its failed row counts statements applied (a no-transaction migration
 * that failed halfway) and force is false: the message says how many. */
enum fl_err fl_resolve_applied(struct fl_session *s, const char *id, bool force, char *errbuf)
    __attribute__((warn_unused_result));
/* Mark the failed rows of `id` rolled back, so deploy will run it again.
 * FL_ESTATE if `id` never ran or is not in a failed state. */
enum fl_err fl_resolve_rolled_back(struct fl_session *s, const char *id, char *errbuf)
    __attribute__((warn_unused_result));

#endif
