/* Deploy: apply pending migrations in order, as `prisma migrate deploy` does,
 * refusing up front (nothing applied) when the history or a file is wrong. */
#ifndef FL_DEPLOY_H
#define FL_DEPLOY_H

#include "session.h"

struct fl_deploy_summary {
	size_t applied; /* migrations applied by this call */
	size_t pending; /* still pending afterwards (past --to, or after a failure) */
	int64_t duration_us;
};

/*
 * Apply every pending migration of the locked session s, in apply order, up to
 * and including `to` (NULL: all). Refuses before applying anything if the
 * schema has objects but no history yet (FL_ESTATE: baseline it first), a
 * migration failed earlier (FL_EFAILED), an applied one was edited
 * (FL_ECHECKSUM), `to` is unknown (FL_ENOENT) or a pending file cannot run
 * safely (FL_EPARSE). Stops at the first failure with the driver's error
 * (FL_EBUSY: nothing applied or recorded, run again).
 *
 * After the driver reconnected, another deployer may have moved on while our
 * lock was gone: the history is read and checked again as at the start, and
 * what is still pending is applied; a migration lost before anything of it
 * committed is tried again, at most retry.attempts times per deploy.
 */
enum fl_err fl_deploy(struct fl_session *s, const char *to, struct fl_deploy_summary *sum,
                      char *errbuf) __attribute__((warn_unused_result));

#endif
