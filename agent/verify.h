/*
 * The trust checks (FLEET.md "Trust", docs/WIRE.md "What an agent checks"):
 * everything an assignment from the coordinator must pass before any SQL
 * runs for it. The coordinator is not trusted with SQL: every field of a
 * WorkAssignment is either checked against what a release manager signed
 * or only names things (rollout_id, for reports and logs).
 *
 * Two steps. fl_verify_assignment, before the agent connects to the tenant,
 * in this order, refusing at the first failure:
 *
 *   0. shape: an assignment id, a kind, a tenant, a signed order;
 *   1. the signed order verifies (proto/order.h fl_order_verify) against
 *      trusted_release_keys, as a rollout order of the agent's project, not
 *      expired by the agent's clock;
 *   2. the assignment's release hash is the order's; the release (cached or
 *      fetched by that hash) verifies against trusted_release_keys, with
 *      that hash and the agent's project (agent/releases.h); its sequence is
 *      not below the highest the agent's ledger applied to the tenant;
 *   3. the tenant is one of the agent's (its own discovery), the order
 *      selects it by the agent's own labels (fl_order_covers), and the wave
 *      index is consistent (fl_order_wave_check);
 *   4. by kind: APPLY: the target is the order's (and in the release);
 *      CHECK: no target (only the order's checks run: an assignment carries
 *      no SQL of its own); REVERT: either a signed rollback order that
 *      verifies (trusted keys, project, expiry) and names this order, its
 *      release and project and selects the tenant (fl_order_rollback_check),
 *      the target then being the rollback order's; or no rollback order and
 *      the order's own policy says on_failure rollback-wave or rollback-all,
 *      the work then bounded by the ledger (step two).
 *
 * The assignment id is looked up in the ledger by the caller first: an id
 * run before is never run again (its recorded report is sent instead).
 *
 * fl_verify_history, once the session is open and locked and the tenant's
 * history read, before any migration SQL:
 *
 *   5. every migration applied on the tenant is in the release, with the
 *      release's checksum (else the tenant runs something newer or other);
 *   6. REVERT: what is to be reverted: after the rollback order's target, or
 *      exactly what the ledger says this agent applied to the tenant under
 *      this order (and not since reverted), which must be the newest
 *      migrations applied there; and every one of them has down.sql.
 *
 * Each refusal is FL_EAUTH with a one-line reason; the caller reports
 * OUTCOME_REFUSED with it, logs it, and runs nothing.
 *
 * Threads: the functions are reentrant; the ledger and release cache they
 * use are thread-safe.
 */
#ifndef FL_VERIFY_H
#define FL_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "flotilla.pb-c.h"
#include "keys.h"
#include "ledger.h"
#include "order.h"
#include "plan.h"
#include "releases.h"
#include "tenants.h"

struct fl_verify_ctx {
	const uint8_t (*trusted)[FL_KEY_PUBLIC_BYTES]; /* trusted_release_keys */
	size_t n_trusted;
	const char *project_id;
	int64_t now_ms; /* the agent's wall clock */
	const struct fl_tenants *tenants;
	struct fl_ledger *ledger;
	struct fl_releases *releases;
	fl_releases_fetch_fn fetch; /* may be NULL: only cached releases */
	void *fetch_arg;
};

/* What step one established; fl_verified_fini releases it. */
struct fl_verified {
	uint64_t assignment_id;
	int kind;                       /* FLOTILLA__V1__WORK_KIND__* */
	struct fl_order *order;         /* the verified rollout order */
	struct fl_order *rollback;      /* the verified rollback order, or NULL */
	struct fl_release_ref *release; /* verified */
	const struct fl_tenant *tenant; /* in ctx->tenants: keep a reference to them */
	const struct fl_wave *wave;     /* in order->policy */
	uint32_t wave_index;
	const char *target;       /* APPLY: the order's; REVERT: the rollback order's, or NULL */
	uint64_t tenant_sequence; /* what the ledger had for the tenant */
};

void fl_verified_fini(struct fl_verified *v);

/*
 * Step one. FL_OK: *v holds what the work may do. FL_EAUTH: refused, reason
 * (FL_ERRBUF_SIZE) says why. Other errors are not refusals but failures to
 * decide (the release could not be fetched: FL_ECONNECT, FL_ETIMEDOUT...):
 * nothing runs, and the work may be tried again.
 */
enum fl_err fl_verify_assignment(const struct fl_verify_ctx *ctx,
                                 const Flotilla__V1__WorkAssignment *a, struct fl_verified *v,
                                 char *reason) __attribute__((warn_unused_result));

/* What a REVERT reverts, for fl_rollback: after `to`, or the last `steps`.
 * nothing: there is nothing to revert (the assignment is SKIPPED). */
struct fl_revert_plan {
	const char *to; /* in the release set; NULL: use steps */
	size_t steps;
	bool nothing;
};

/*
 * Step two, on the plan of the locked session (the release's migrations
 * against the tenant's history). FL_EAUTH with reason to refuse; for a
 * REVERT, *rp says what to revert.
 */
enum fl_err fl_verify_history(const struct fl_verified *v, const struct fl_plan *plan,
                              struct fl_ledger *ledger, struct fl_revert_plan *rp, char *reason)
    __attribute__((warn_unused_result));

/* "apply", "revert", "check"; "unknown". */
const char *fl_verify_kind_name(int kind);

#endif
