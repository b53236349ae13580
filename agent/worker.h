/*
 * The worker pool: the agent's threads that do the work the coordinator
 * hands out, each assignment from its trust checks to its journaled report.
 *
 * An assignment goes through:
 *
 *   new        submitted by the pull loop; counts against free slots
 *   preparing  on a worker: the ledger (an id run before is answered with
 *              its recorded report, never run again), then the trust checks
 *              (agent/verify.h, step one; may fetch the release): a refusal
 *              ends it REFUSED, nothing run, nothing in the ledger
 *   ready      verified; waits for its server's slot (databases[].max_parallel)
 *              and its order's (the wave's per_agent_parallel, else the
 *              policy's), and for its tenant to be free of other work and
 *              of work that came before it (a tenant's work runs in the
 *              order it came), so one busy server, rollout or tenant never
 *              blocks the rest
 *   running    the ledger records the start (fsync'd) before any SQL; then
 *              CHECK: the order's health checks; APPLY/REVERT: one engine
 *              session (migration lock), the history checks (verify.h, step
 *              two), a backup when the wave asks, deploy or rollback, the
 *              tenant's state read again, the health checks after an apply
 *   done       the report is journaled (fsync'd) and the ledger records how
 *              it ended; the pull loop is told to send it
 *
 * Threads: max_parallel workers (each holds at most one tenant connection
 * at a time) and a watchdog that cancels work running past the policy's
 * max_duration. Cancellation (halt, shutdown, max_duration) reaches whatever
 * the work is doing: the engine session (fl_session_cancel), the health
 * checks, the backup command. Every function below may be called from any
 * thread.
 */
#ifndef FL_WORKER_H
#define FL_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_config.h"
#include "err.h"
#include "flotilla.pb-c.h"
#include "journal.h"
#include "ledger.h"
#include "releases.h"
#include "report.h"
#include "tenants.h"

/* The agent's settings and tenants as they are when a job starts, held for
 * the job (a reload swaps in new ones without touching running work). */
struct fl_agent_snapshot {
	const struct fl_agent_config *cfg;
	struct fl_tenants *tenants;
	void *priv; /* the agent's */
};

struct fl_worker_hooks {
	void *arg;
	void (*acquire)(void *arg, struct fl_agent_snapshot *s);
	void (*release)(void *arg, struct fl_agent_snapshot *s);
	/* FetchRelease through the pull loop's client; NULL: cached only */
	fl_releases_fetch_fn fetch;
	/* a report was journaled: send it */
	void (*reported)(void *arg);
	/* the tenant's state after the work, for the next Hello; may be NULL */
	void (*tenant_read)(void *arg, const char *tenant_id, const struct fl_tenant_state *st);
};

struct fl_worker_deps {
	struct fl_journal *journal;
	struct fl_ledger *ledger;
	struct fl_releases *releases;
	const char *agent_id;
	size_t threads; /* max_parallel */
	struct fl_worker_hooks hooks;
};

struct fl_worker;

/* Start the pool (threads and watchdog). deps are copied; what they point
 * to must outlive the pool. */
struct fl_worker *fl_worker_new(const struct fl_worker_deps *deps);
/* Stop (as fl_worker_shutdown with cancel) if needed, join, free; NULL: no-op. */
void fl_worker_free(struct fl_worker *w);

/*
 * Take an assignment (copied). FL_OK: queued, or a duplicate of one in the
 * pool (ignored), or dropped because the pool is full (threads x 4
 * assignments, or a poll reply's worth of bytes not checked yet: the
 * coordinator sends it again). One with an order over FL_WIRE_MAX_ORDER or
 * a rollout, tenant or target name over 255 bytes is kept without its bulk
 * and refused. *taken (may be NULL) says whether it was queued: a new job.
 * FL_ECANCELED: the pool is shutting down. Never blocks on I/O: the ledger
 * and the trust checks run on the workers.
 */
enum fl_err fl_worker_submit(struct fl_worker *w, const Flotilla__V1__WorkAssignment *a,
                             bool *taken);

/* Halt a rollout: its work not started yet ends CANCELED now; running work
 * is canceled or finishes as its order's on_halt says. Returns how many
 * assignments it stopped (a halt for work the agent does not have: 0, and
 * logged at debug only). */
size_t fl_worker_halt(struct fl_worker *w, const char *rollout_id, const char *reason);

/* How many more assignments the pool takes now (threads minus those in it). */
size_t fl_worker_free_slots(struct fl_worker *w);
/* Assignment ids in the pool (received, not reported yet): heap array. */
void fl_worker_running(struct fl_worker *w, uint64_t **ids, size_t *n);
/* Whether the pool holds nothing. */
bool fl_worker_idle(struct fl_worker *w);

/* Cancel everything the pool is doing now (a second SIGTERM during a
 * shutdown that lets work finish). Any thread. */
void fl_worker_cancel_all(struct fl_worker *w);

/*
 * Shut down: take nothing new; work not started ends CANCELED; running work
 * is canceled now (cancel) or allowed timeout_ms to finish and then
 * canceled; returns once every job has reported and every thread ended.
 */
void fl_worker_shutdown(struct fl_worker *w, bool cancel, int64_t timeout_ms);

/*
 * After a crash: every assignment the ledger shows started and never
 * finished is reported CANCELED ("the agent stopped while it ran"), with the
 * tenant's history as it is now (read with url_for), and finished in the
 * ledger. Reports the ledger has that the journal lost are journaled again.
 * Run before the pool takes work.
 */
void fl_worker_recover(const struct fl_worker_deps *deps);

#endif
