/*
 * The ledger (state_dir/ledger): every assignment this agent ever started,
 * what it did, and how it ended. It is what lets the agent
 *
 * - never run an assignment id twice: an id is recorded, fsync'd, BEFORE any
 *   SQL runs for it; a replayed id is answered with the recorded report;
 * - refuse a release older than what it applied to a tenant: per tenant,
 *   the highest release sequence it applied (fl_ledger_tenant_sequence);
 * - revert, under the order's own on_failure policy, only what it applied
 *   itself under that order (fl_ledger_applied_under);
 * - after a crash, report an assignment that was started and never finished
 *   as CANCELED (fl_ledger_unfinished), with the tenant's history as it is.
 *
 * Records (agent/recfile.h), magic "flotilla ldg v1\n", id = assignment id;
 * every one fdatasync'd before the call returns:
 *   1 START   order hash, release hash, release sequence, tenant, rollout,
 *             kind, target, started_at, the order's expiry (0 in files
 *             written before it was recorded)
 *   2 STEP    1 = applied / 2 = reverted, migration id (as each one commits)
 *   3 FINISH  outcome, finished_at, journal id, the packed report
 *   4 ENTRY   a whole entry (START + STEPs + FINISH), written by compaction
 *   5 FLOOR   (id 0) tenant, release sequence: written by compaction
 * (payloads use recfile's encoding; strings length-prefixed).
 *
 * The per-tenant sequence counts an APPLY assignment that applied at least
 * one migration, or ended APPLIED or SKIPPED (the tenant reached the
 * release's target): from then on the tenant runs that release. It is kept
 * in memory by tenant (a lookup, not a scan of every assignment) and, at
 * compaction, as a FLOOR record per tenant.
 *
 * An agent runs for months: compaction (at open, and whenever the records
 * are over twice what they fold into) rewrites the file with the floors and
 * one ENTRY per assignment, dropping finished assignments whose order
 * expired over 7 days ago: they can never run again (their order is
 * refused), no revert is bounded by them (that needs their order), and
 * their tenants' floors stay. What the ledger holds is then bounded by the
 * work done under orders still valid, not by the agent's age.
 *
 * Threads: any thread (one mutex). Writes block on fdatasync; a finish that
 * triggers a compaction rewrites the file under the mutex.
 */
#ifndef FL_LEDGER_H
#define FL_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define FL_LEDGER_HASH_LEN 32

/* Work kinds and outcomes are flotilla.proto's WorkKind and Outcome values. */
struct fl_ledger_start {
	uint64_t assignment_id;
	uint8_t order_hash[FL_LEDGER_HASH_LEN];
	uint8_t release_hash[FL_LEDGER_HASH_LEN];
	uint64_t release_sequence;
	const char *tenant_id;
	const char *rollout_id;
	int kind;
	const char *target; /* may be "" */
	int64_t started_at_ms;
	int64_t expires_at_ms; /* the rollout order's expiry (0: never dropped) */
};

/* A copy of one entry, owned by the caller: fl_ledger_entry_fini. */
struct fl_ledger_entry {
	uint64_t assignment_id;
	uint8_t order_hash[FL_LEDGER_HASH_LEN];
	uint8_t release_hash[FL_LEDGER_HASH_LEN];
	uint64_t release_sequence;
	char *tenant_id;
	char *rollout_id;
	int kind;
	char *target;
	int64_t started_at_ms;
	int64_t expires_at_ms;
	char **applied; /* migration ids, in the order they committed */
	size_t n_applied;
	char **reverted;
	size_t n_reverted;
	bool finished;
	int outcome;
	int64_t finished_at_ms;
	uint64_t journal_id;
	uint8_t *report; /* the packed report, NULL until finished */
	size_t report_len;
};

void fl_ledger_entry_fini(struct fl_ledger_entry *e);

struct fl_ledger;

/* Open (or create) the ledger at path and load it; a torn tail is cut with a
 * warning. Errors: FL_EIO, FL_EPARSE. */
enum fl_err fl_ledger_open(const char *path, struct fl_ledger **out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_ledger_close(struct fl_ledger *l); /* NULL is a no-op */

/* Whether assignment id is in the ledger (started, maybe finished); with
 * copy, a copy of its entry (fini it). */
bool fl_ledger_find(struct fl_ledger *l, uint64_t assignment_id, struct fl_ledger_entry *copy);

/* Record that an assignment starts, fsync'd. FL_ESTATE if the id is in the
 * ledger already (never run twice); FL_EAUTH if its release sequence is
 * below the tenant's (checked under the same lock as the write, so a check
 * made earlier, before another assignment for the tenant ran, cannot be
 * stale); FL_EIO. */
enum fl_err fl_ledger_start(struct fl_ledger *l, const struct fl_ledger_start *s, char *errbuf)
    __attribute__((warn_unused_result));
/* A migration of a started assignment committed (reverted: down.sql did). */
enum fl_err fl_ledger_step(struct fl_ledger *l, uint64_t assignment_id, bool reverted,
                           const char *migration_id, char *errbuf)
    __attribute__((warn_unused_result));
/* The assignment ended: its outcome and the report journaled as journal_id.
 * FL_ESTATE if it was not started or is finished already. */
enum fl_err fl_ledger_finish(struct fl_ledger *l, uint64_t assignment_id, int outcome,
                             int64_t finished_at_ms, uint64_t journal_id, const void *report,
                             size_t report_len, char *errbuf) __attribute__((warn_unused_result));

/* The highest release sequence applied to tenant (0: none). */
uint64_t fl_ledger_tenant_sequence(struct fl_ledger *l, const char *tenant_id);

/* Migrations this agent applied to tenant under the order order_hash and has
 * not reverted since (by any assignment), in the order they were applied:
 * heap strings into *ids (free each, then the array). */
void fl_ledger_applied_under(struct fl_ledger *l, const char *tenant_id,
                             const uint8_t order_hash[FL_LEDGER_HASH_LEN], char ***ids, size_t *n);

/* Assignment ids started and not finished, in the order they started. */
void fl_ledger_unfinished(struct fl_ledger *l, uint64_t **ids, size_t *n);

/* Assignment ids finished with a journal id above journal_id, in ledger
 * order (their reports may have been lost by the journal in a crash). */
void fl_ledger_reports_after(struct fl_ledger *l, uint64_t journal_id, uint64_t **ids, size_t *n);

/* Entries in the ledger. */
size_t fl_ledger_count(struct fl_ledger *l);

/* Rewrite the file with the tenants' floors and one ENTRY record per
 * assignment, dropping finished ones whose order expired over 7 days before
 * now_ms (wall clock; <= 0: none). */
enum fl_err fl_ledger_compact(struct fl_ledger *l, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));

#endif
