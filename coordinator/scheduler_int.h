/*
 * Inside the scheduler: the in-memory model that scheduler.c keeps and
 * rollout_admin.c reads and drives. Nothing else includes this.
 *
 * The model mirrors the store's rows for the live rollouts (pending,
 * running, paused, halted, rolling back): each struct sched_* holds its row
 * (struct fl_store_*), plus what is only worth keeping in memory: counts per
 * state, assignments outstanding, per agent indexes. Every change to a row
 * goes through a function here that writes it to the store at once, inside
 * the current transaction.
 */
#ifndef FL_SCHEDULER_INT_H
#define FL_SCHEDULER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "order.h"
#include "scheduler.h"
#include "store.h"
#include "store_rollouts.h"

/* Short names for the wire's enums the scheduler switches on. */
#define RS_PENDING      FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_PENDING
#define RS_RUNNING      FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_RUNNING
#define RS_PAUSED       FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_PAUSED
#define RS_COMPLETED    FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_COMPLETED
#define RS_HALTED       FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_HALTED
#define RS_ROLLING_BACK FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_ROLLING_BACK
#define RS_ROLLED_BACK  FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_ROLLED_BACK
#define WS_PENDING      FLOTILLA__V1__WAVE_STATE__WAVE_STATE_PENDING
#define WS_RUNNING      FLOTILLA__V1__WAVE_STATE__WAVE_STATE_RUNNING
#define WS_BAKING       FLOTILLA__V1__WAVE_STATE__WAVE_STATE_BAKING
#define WS_AWAITING     FLOTILLA__V1__WAVE_STATE__WAVE_STATE_AWAITING_PROMOTE
#define WS_COMPLETED    FLOTILLA__V1__WAVE_STATE__WAVE_STATE_COMPLETED
#define WS_FAILED       FLOTILLA__V1__WAVE_STATE__WAVE_STATE_FAILED
#define WK_APPLY        FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY
#define WK_REVERT       FLOTILLA__V1__WORK_KIND__WORK_KIND_REVERT
#define WK_CHECK        FLOTILLA__V1__WORK_KIND__WORK_KIND_CHECK
#define SC_OK           FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK

/* A reference-counted byte string (signed orders): assignments handed out
 * keep theirs alive whatever happens to the rollout. */
struct fl_sched_blob {
	size_t refs;
	size_t len;
	uint8_t data[];
};

struct fl_sched_blob *fl_sched_blob_new(const void *data, size_t len);
struct fl_sched_blob *fl_sched_blob_ref(struct fl_sched_blob *b);
void fl_sched_blob_unref(struct fl_sched_blob *b);

/* String keys to 64-bit values, open addressing. */
struct fl_sched_map {
	char **keys;
	uint64_t *vals;
	size_t cap, n;
};
bool fl_sched_map_get(const struct fl_sched_map *m, const char *key, uint64_t *val);
void fl_sched_map_put(struct fl_sched_map *m, const char *key, uint64_t val);
void fl_sched_map_del(struct fl_sched_map *m, const char *key);
void fl_sched_map_fini(struct fl_sched_map *m);

struct sched_rollout;

/* One place an agent has tenants: (rollout, index of its sched_ragent). */
struct sched_link {
	struct sched_rollout *r;
	uint32_t ra;
};

/* An outstanding assignment of an agent: (rollout, tenant index). */
struct sched_out {
	struct sched_rollout *r;
	uint32_t t;
};

struct sched_agent {
	uint8_t pk[FL_STORE_KEY_LEN];
	char *name;           /* as approved; the key id when unknown */
	bool online;          /* heard from within agent_offline_after */
	int64_t last_seen_ms; /* last Hello, Poll or Report */
	int64_t hello_at_ms;  /* last Hello */
	struct sched_link *links;
	size_t n_links, cap_links;
	struct sched_out *out;
	size_t n_out, cap_out;
};

/* One agent's tenants in one rollout. */
struct sched_ragent {
	struct sched_agent *a;
	uint32_t *t; /* tenant indices, by (wave, pos) */
	size_t n, cap;
	uint32_t inflight; /* outstanding assignments of this rollout on this agent */
};

struct sched_tenant {
	struct fl_store_rollout_tenant row;
	uint32_t ra;      /* its agent's sched_ragent */
	uint64_t out_id;  /* outstanding assignment, 0 if none */
	int out_kind;     /* its WorkKind */
	int64_t out_sent; /* when last sent by this process; 0: not since it started */
	/* When a Halt for its outstanding work last went to its agent; 0: none
	 * since the assignment was sent or the rollout's state last changed. */
	int64_t halt_sent;
};

struct sched_wave {
	struct fl_store_wave row;
	const struct fl_wave *pol; /* the order's policy's */
	uint32_t total;
	uint32_t count[FL_SCHED_TENANT_STATES];
	uint32_t inflight;   /* assignments outstanding for its tenants, any kind */
	uint32_t checks_due; /* applied tenants with check_due */
	uint32_t checks_out; /* CHECK assignments outstanding */
};

struct sched_rollout {
	struct fl_store_rollout row; /* without its blobs (below) */
	struct fl_sched_blob *order_blob;
	struct fl_order *order; /* decoded (fl_order_inspect: verified at start) */
	struct fl_sched_blob *rb_blob;
	struct fl_order *rb; /* a manual rollback's order, or NULL */
	struct sched_wave *w;
	size_t n_w;
	struct sched_tenant *t;
	size_t n_t;
	struct fl_sched_map tmap; /* tenant id -> index in t */
	struct sched_ragent *ra;
	size_t n_ra;
	bool attached;        /* in the scheduler's live list, linked to its agents */
	int64_t next_busy_ms; /* earliest not_before among busy tenants; 0: none */
	struct sched_rollout *next;
};

struct fl_scheduler {
	struct fl_store *st;
	char *project_id;
	uint8_t (*trusted)[FL_KEY_PUBLIC_BYTES];
	size_t n_trusted;
	int64_t offline_after_ms;
	int64_t resend_after_ms;
	int64_t busy_retry_ms;
	uint32_t plan_tenant_ids;
	fl_scheduler_wake_fn wake;
	void *wake_arg;
	fl_scheduler_transition_fn on_transition; /* or NULL (webhooks) */
	void *transition_arg;
	struct sched_rollout *live; /* attached rollouts, newest first */
	struct sched_agent **agents;
	size_t n_agents, cap_agents;
	struct fl_sched_map agent_idx; /* hex key -> index in agents */
	struct fl_sched_map busy;      /* tenant id -> its outstanding assignment id */
	bool dirty;                    /* reload from the store before the next call */
	int last_minute;               /* UTC minute of day of the last tick */
	int64_t now_ms;                /* the latest time an entry point was given */
	size_t outstanding;
};

/* ---- for rollout_admin.c ---- */

/* The agent if the scheduler knows it, else NULL. */
struct sched_agent *fl_sched_agent_find(struct fl_scheduler *s, const uint8_t pk[FL_STORE_KEY_LEN]);
/* Make r live: in the list, linked to its agents (it was loaded attached). */
void fl_sched_attach(struct fl_scheduler *s, struct sched_rollout *r);

/* Whether a rollout in this state is live (kept in memory). */
bool fl_sched_state_live(int rollout_state);
/* The live rollout with this id, or NULL. */
struct sched_rollout *fl_sched_find(struct fl_scheduler *s, const char *id);
/* The tenant's index in r, or -1. */
long fl_sched_tenant_index(const struct sched_rollout *r, const char *tenant_id);
/* Load a rollout from the store; attach: make it live (linked to agents,
 * counted) rather than a detached copy for reading (status of a finished
 * rollout), freed with fl_sched_rollout_free. */
enum fl_err fl_sched_load(struct fl_scheduler *s, const char *id, bool attach, int64_t now_ms,
                          struct sched_rollout **out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_sched_rollout_free(struct fl_scheduler *s, struct sched_rollout *r);
/* Reload everything if the model is dirty. */
enum fl_err fl_sched_ensure(struct fl_scheduler *s, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));
/* The live rollout, other than except, holding the tenant (it is in an
 * active rollout: pending, running, paused, rolling back), or NULL. */
struct sched_rollout *fl_sched_active_holder(struct fl_scheduler *s, const char *tenant_id,
                                             const struct sched_rollout *except);

/* Transitions (write through to the store; wake agents as needed). */
enum fl_err fl_sched_set_rollout(struct fl_scheduler *s, struct sched_rollout *r, int state,
                                 const char *reason, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_sched_set_wave(struct fl_scheduler *s, struct sched_rollout *r, struct sched_wave *w,
                              int state, const char *reason, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_sched_set_tenant(struct fl_scheduler *s, struct sched_rollout *r,
                                struct sched_tenant *t, int state, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));
/* Halt: state halted with reason, current wave failed or not; agents with
 * work in it hear at once. */
enum fl_err fl_sched_halt(struct fl_scheduler *s, struct sched_rollout *r, const char *reason,
                          bool audit, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));
/* Start reverting: kind (manual with the rollback order r->rb set, wave,
 * all); tenants to revert are marked (only: those whose index has
 * which[i] set, or NULL: all the kind covers). */
enum fl_err fl_sched_rollback(struct fl_scheduler *s, struct sched_rollout *r,
                              enum fl_store_rollback_kind kind, const bool *which,
                              const char *reason, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));
/* The tenants of r (ids into out) with an APPLY withdrawn and never
 * reported: the agent may have run it, so they may carry the release. */
enum fl_err fl_sched_withdrawn(struct fl_scheduler *s, const struct sched_rollout *r,
                               struct fl_sched_map *out, char *errbuf)
    __attribute__((warn_unused_result));
/* Whether the rollout may have changed t: a report said so, an APPLY is out
 * there, or one was withdrawn unreported (withdrawn: fl_sched_withdrawn's). */
bool fl_sched_touched(const struct sched_rollout *r, const struct sched_tenant *t,
                      const struct fl_sched_map *withdrawn);
/* Tenants of r's current wave waiting for an agent that is silent are
 * unreachable (after a retry: they were failed or pending). */
enum fl_err fl_sched_mark_unreachable(struct fl_scheduler *s, struct sched_rollout *r,
                                      int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));
/* Move the rollout on as far as it goes now (start waves, end bakes, gate,
 * complete, finish a rollback). */
enum fl_err fl_sched_advance(struct fl_scheduler *s, struct sched_rollout *r, int64_t now_ms,
                             char *errbuf) __attribute__((warn_unused_result));
/* Wake every agent with tenants in r (all: any; else those with work to
 * start or stop). */
void fl_sched_wake_rollout(struct fl_scheduler *s, struct sched_rollout *r);
/* Append an audit entry by the coordinator itself. */
enum fl_err fl_sched_audit(struct fl_scheduler *s, const char *event, const char *subject, int code,
                           const char *detail, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));
/* Run fn in a transaction (the caller's if open, else one of its own):
 * commit on success, roll back and mark the model dirty on error. */
enum fl_err fl_sched_tx_begin(struct fl_scheduler *s, bool *own, char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_sched_tx_end(struct fl_scheduler *s, bool own, enum fl_err e, char *errbuf)
    __attribute__((warn_unused_result));

/* Effective per-agent limit of a wave. */
uint32_t fl_sched_per_agent(const struct sched_rollout *r, const struct sched_wave *w);

#endif
