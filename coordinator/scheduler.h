/*
 * The rollout scheduler (docs/ARCHITECTURE.md, "The scheduler"; FLEET.md):
 * it brings a release to a fleet in waves within a signed rollout order,
 * hands agents their work when they poll, takes their reports, bakes,
 * gates, counts failures against each wave's budget and halts or rolls
 * back when the budget trips.
 *
 * State machines (all states are stored; every transition is written to
 * the store before anything it causes leaves the coordinator):
 *
 *   rollout  pending -> running(wave k) <-> paused -> completed
 *            running|paused -> halted (budget with on_failure: halt, an
 *            operator, the order expired) -> running (retry)
 *            running|paused|halted|completed -> rolling_back -> rolled_back
 *            (or halted: rollback-wave, or a revert failed)
 *   wave     pending -> running -> baking -> awaiting_promote (gate manual)
 *            -> completed; running|baking -> failed (budget) -> running (retry)
 *   tenant   below (enum fl_sched_tenant_state)
 *
 * Durability: the scheduler keeps an in-memory model of the live rollouts
 * (loaded from the store when it is made) and writes every change through
 * to the store in the same transaction as the event that caused it. Each
 * entry point below runs in the caller's transaction when one is open
 * (fl_store_in_transaction), else in one of its own that it commits before
 * it returns: either way, work it returns is committed (or will be, by the
 * caller) before the caller sends it. If the caller's transaction is then
 * rolled back, the model is reloaded from the store at the next call (the
 * scheduler watches the store's rollbacks: fl_store_on_rollback; one may
 * also say so with fl_scheduler_invalidate). An entry point that fails
 * leaves the model to be reloaded the same way (and, in its own
 * transaction, rolls back).
 *
 * Restarts: assignments issued and not reported stay outstanding across
 * restarts. One is sent again, with the same id, when the agent's Poll does
 * not list it as running and it was last sent before the agent's latest
 * Hello, before this scheduler was made, or resend_after_ms ago; it is
 * never replaced by a new assignment while outstanding. A tenant never has
 * two assignments outstanding at once, across rollouts.
 *
 * Time: every entry point takes now_ms (wall clock, ms since the epoch), so
 * tests drive time; maintenance windows use its UTC minute of day.
 *
 * Threads: the coordinator's core thread only (it owns the store).
 */
#ifndef FL_SCHEDULER_H
#define FL_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "flotilla.pb-c.h"
#include "keys.h"
#include "store.h"

/* Where a tenant is within one rollout (rollout_tenants.state). */
enum fl_sched_tenant_state {
	FL_SCHED_PENDING = 1,     /* waits for its wave, a slot, its agent or a window */
	FL_SCHED_ASSIGNED = 2,    /* an APPLY is outstanding; its report moves it on */
	FL_SCHED_APPLIED = 3,     /* applied, or its APPLY found the target (then checked
	                             before its wave moves on); gets CHECKs while its
	                             wave bakes */
	FL_SCHED_FAILED = 4,      /* counted against its wave's budget; retry requeues */
	FL_SCHED_SKIPPED = 5,     /* at the target per its history when the rollout
	                             started: done, not failed */
	FL_SCHED_UNREACHABLE = 6, /* its agent went silent with work to do here: waits for
	                             the agent, or fails after unreachable.after */
	FL_SCHED_BUSY = 7,        /* lock timeouts outlasted retries: requeued at not_before */
	FL_SCHED_REVERTING = 8,   /* to be reverted: a REVERT is outstanding or comes next */
	FL_SCHED_ROLLED_BACK = 9, /* reverted (or had nothing to revert) */
};
#define FL_SCHED_TENANT_STATES 10 /* array size for per-state counts */

const char *fl_sched_tenant_state_name(enum fl_sched_tenant_state s); /* "pending"... */

struct fl_scheduler_config {
	const char *project_id; /* the coordinator's */
	/* Release keys orders must be signed by (copied). */
	const uint8_t (*trusted_release_keys)[FL_KEY_PUBLIC_BYTES];
	size_t n_trusted_release_keys;
	int64_t agent_offline_after_ms; /* silent this long: offline; 0 = 90 s */
	int64_t resend_after_ms;        /* an outstanding assignment not listed as running is
	                                   sent again after this long; 0 = 60 s */
	int64_t busy_retry_ms;          /* a BUSY tenant is tried again after; 0 = 30 s */
	uint32_t plan_tenant_ids;       /* tenant ids listed per wave in plans; 0 = 20 */
};

/* Called when an agent may have something new: work, or a halt. The core
 * answers that agent's held poll (calling fl_scheduler_poll again). May be
 * called during any entry point; must not call back into the scheduler. */
typedef void (*fl_scheduler_wake_fn)(void *arg, const uint8_t agent_pk[FL_STORE_KEY_LEN]);

struct fl_scheduler;

/*
 * Make a scheduler over store st (which must outlive it) and load the live
 * rollouts. cfg is copied. Errors: FL_EDB (the store), FL_EPARSE (a stored
 * order no longer decodes: the store was edited), with errbuf.
 */
enum fl_err fl_scheduler_new(struct fl_store *st, const struct fl_scheduler_config *cfg,
                             fl_scheduler_wake_fn wake, void *wake_arg, int64_t now_ms,
                             struct fl_scheduler **out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_scheduler_free(struct fl_scheduler *s);
/* Replace the configuration (SIGHUP reload); cfg is copied. */
void fl_scheduler_set_config(struct fl_scheduler *s, const struct fl_scheduler_config *cfg);
/* The caller's transaction was rolled back after a scheduler call: reload
 * the model from the store at the next call. */
void fl_scheduler_invalidate(struct fl_scheduler *s);

/* A rollout or one of its waves changed state (webhooks: coordinator/
 * webhooks.h). wave is NULL for the rollout's own state; counts are the
 * wave's tenants by enum fl_sched_tenant_state (index 0 unused), or the
 * whole rollout's when wave is NULL. Pointers live for the call only. */
struct fl_scheduler_transition {
	const char *rollout_id;
	int rollout_state;     /* the wire's RolloutState, after the change */
	const char *reason;    /* the rollout's state reason; "" */
	uint32_t current_wave; /* the wave worked on, or last worked on */
	uint32_t n_waves;
	uint32_t tenants_total;
	const struct fl_store_wave *wave; /* the wave that changed, or NULL */
	int old_state;                    /* the rollout's or the wave's, before */
	int new_state;                    /* ... and after */
	uint32_t counts[FL_SCHED_TENANT_STATES];
	int64_t at_ms;
};

/* Called on the core thread inside the transaction that records the change,
 * after the store was written; an error fails (and rolls back) the caller's
 * whole transaction. */
typedef enum fl_err (*fl_scheduler_transition_fn)(void *arg,
                                                  const struct fl_scheduler_transition *t,
                                                  char *errbuf);
/* Install (or with fn NULL, remove) the transition hook. */
void fl_scheduler_set_transition_hook(struct fl_scheduler *s, fl_scheduler_transition_fn fn,
                                      void *arg);

/* ---- agents ---- */

/*
 * The agent said Hello (after its tenants were reconciled and committed):
 * it is online, and its outstanding assignments it does not list as running
 * in its next Poll are sent again.
 */
enum fl_err fl_scheduler_hello(struct fl_scheduler *s, const uint8_t agent_pk[FL_STORE_KEY_LEN],
                               int64_t now_ms, char *errbuf) __attribute__((warn_unused_result));

/*
 * The agent went silent (online false: last heard from at last_seen_ms) or
 * came back (true). The scheduler also notices silence itself at its tick
 * (agent_offline_after_ms): either way its tenants with work to do in a
 * current wave become unreachable, and back when it is heard from again.
 */
enum fl_err fl_scheduler_agent_state(struct fl_scheduler *s,
                                     const uint8_t agent_pk[FL_STORE_KEY_LEN], bool online,
                                     int64_t last_seen_ms, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * What to send an agent that polls: work and halts. Assignment and halt
 * messages are owned by the struct (fl_scheduler_work_fini frees them),
 * their bytes included, and stay valid whatever the scheduler does next.
 */
struct fl_scheduler_work {
	Flotilla__V1__WorkAssignment **assignments;
	size_t n_assignments;
	Flotilla__V1__Halt **halts;
	size_t n_halts;
	void *priv; /* storage */
};

void fl_scheduler_work_fini(struct fl_scheduler_work *w);

/*
 * An agent polls with free_slots and the ids of the assignments it is
 * running. Fills *out (initialised by the call) with: halts for rollouts it
 * has work in that must stop; outstanding assignments it lost (sent again,
 * same ids); new assignments, at most free_slots in all, within the
 * rollouts' limits. New assignments are committed before this returns (or
 * by the caller's transaction). An empty result means: hold the poll until
 * a wake or the hold ends, then call again.
 */
enum fl_err fl_scheduler_poll(struct fl_scheduler *s, const uint8_t agent_pk[FL_STORE_KEY_LEN],
                              uint32_t free_slots, const uint64_t *running, size_t n_running,
                              int64_t now_ms, struct fl_scheduler_work *out, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * A report about assignment a, after the agent endpoint bound it (issued to
 * this agent, for this tenant) and stored it once per (agent, journal_id).
 * a is the assignment as stored, ISSUED or CANCELED: the caller marks it
 * REPORTED after this returns, in the same transaction (a model reloaded
 * in here must read the work as still outstanding). The tenant moves on
 * and the wave's budget is checked. A report for an assignment no longer
 * outstanding (reported already, withdrawn) changes nothing but what it
 * proves applied.
 */
enum fl_err fl_scheduler_report(struct fl_scheduler *s, const struct fl_store_assignment *a,
                                const Flotilla__V1__Report *r, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Timers: agents gone silent, unreachable deadlines, bakes and their check
 * rounds, busy tenants due again, windows opening, orders expiring. Call it
 * at fl_scheduler_next_tick (or every second: it is cheap when there is
 * nothing to do).
 */
enum fl_err fl_scheduler_tick(struct fl_scheduler *s, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));
/* When tick has something to do next (ms since the epoch); INT64_MAX: nothing. */
int64_t fl_scheduler_next_tick(struct fl_scheduler *s);

/* For tests and metrics: assignments outstanding now (all rollouts). */
size_t fl_scheduler_outstanding(struct fl_scheduler *s);

#endif
