/*
 * Reconcile on Hello: the tenants' own history tables are the truth, and the
 * coordinator's view of an agent's tenants is replaced by what its Hello
 * says.
 *
 * For each tenant listed: a tenant id owned by another approved agent (and
 * not gone) is refused for this one (logged, counted); otherwise the
 * tenant, its applied history, failed rows, fingerprint and read error are
 * written. Every applied migration gets an origin (store.h): on a tenant
 * seen for the first time its history is the baseline; a migration that
 * appears later without a flotilla report that applied it is external (a
 * `prisma migrate deploy` by hand), which sets external_changes. A tenant
 * the agent listed before and no longer lists is marked gone (its history
 * stays). Drift (same head, other fingerprints) is computed from the stored
 * fingerprints when asked (fleet.c).
 *
 * An agent with many tenants sends several Hellos (more_tenants); they are
 * kept on the agent's entry until the last one, then reconciled at once.
 *
 * Core thread only.
 */
#ifndef FL_RECONCILE_H
#define FL_RECONCILE_H

#include <stdbool.h>

#include "core.h"
#include "err.h"
#include "flotilla.pb-c.h"

#define FL_RECONCILE_MAX_PARTS 1024 /* Hellos with more_tenants before the last */

struct fl_reconcile_stats {
	size_t tenants;  /* written */
	size_t refused;  /* claimed by another agent, or invalid */
	size_t gone;     /* no longer listed */
	size_t external; /* with migrations applied outside flotilla */
};

/*
 * Take hello (a decoded Message with a Hello body; taken over). If it says
 * more_tenants, keep it and set *done false. Otherwise reconcile it with the
 * parts kept, in one store transaction that also runs the scheduler's hello
 * hook, and set *done. Errors: FL_EDB (nothing changed), FL_EINVAL (too many
 * parts: the parts are dropped).
 */
enum fl_err fl_reconcile_hello(struct fl_core *core, struct fl_core_agent *agent,
                               Flotilla__V1__Message *hello, bool *done,
                               struct fl_reconcile_stats *stats, char *errbuf)
    __attribute__((warn_unused_result));

/* Drop the parts kept for agent (it went away, or was revoked). */
void fl_reconcile_discard(struct fl_core_agent *agent);

#endif
