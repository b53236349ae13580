/*
 * The scheduler's part of the store (store.h): rollouts, their waves, the
 * tenants each rollout selected, and the queries over assignments and
 * reports the scheduler needs beyond store.h's. In terms of rows; the SQLite
 * implementation is store_rollouts_sqlite.c (schema steps 2 and 3 of
 * store_sqlite.c).
 *
 * State columns hold the scheduler's enums (coordinator/scheduler.h): a
 * rollout's state is the wire's RolloutState, a wave's the wire's
 * WaveState, a rollout tenant's enum fl_sched_tenant_state. The store does
 * not interpret them, except to tell live rollouts (pending, running,
 * paused, halted, rolling back) from finished ones (completed, rolled back).
 *
 * Threads, transactions, errors and memory as store.h says: the core
 * thread only; FL_EDB, FL_ENOENT, FL_ESTATE, with errbuf; structs filled by
 * a get or list are the caller's, freed with their _fini or _free.
 */
#ifndef FL_STORE_ROLLOUTS_H
#define FL_STORE_ROLLOUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "label.h"
#include "store.h"

/* ---- rollouts ---- */

/* Who authorised reverting a rollout's tenants (rollouts.rollback_kind). */
enum fl_store_rollback_kind {
	FL_STORE_ROLLBACK_NONE = 0,
	FL_STORE_ROLLBACK_MANUAL = 1, /* a signed rollback order (rollback_order) */
	FL_STORE_ROLLBACK_WAVE = 2,   /* the order's policy, on_failure: rollback-wave */
	FL_STORE_ROLLBACK_ALL = 3,    /* the order's policy, on_failure: rollback-all */
};

struct fl_store_rollout {
	char *id;             /* "r-<created_seq>" */
	uint64_t created_seq; /* grows with every rollout */
	uint8_t order_hash[FL_STORE_HASH_LEN];
	uint8_t *signed_order; /* the packed SignedOrder as the release manager signed it;
	                          NULL unless FL_STORE_WITH_ORDER */
	size_t signed_order_len;
	uint8_t release_hash[FL_STORE_HASH_LEN];
	char *project_id;
	char *target_migration_id;
	int state;             /* the wire's RolloutState */
	uint32_t current_wave; /* the wave worked on, or last worked on */
	char *state_reason;    /* why paused, halted, rolling back; "" */
	int64_t created_at_ms;
	int64_t updated_at_ms;
	int64_t finished_at_ms; /* completed or rolled back; 0 before */
	char *created_by;       /* operator key id */
	char *signed_by;        /* release key id of the order's verifying signature */
	int64_t expires_at_ms;  /* the order's */
	uint32_t tenants_total; /* selected at start */
	enum fl_store_rollback_kind rollback_kind;
	/* The packed SignedOrder of a manual rollback (FL_STORE_ROLLBACK_MANUAL);
	 * NULL when none or unless FL_STORE_WITH_ORDER. */
	uint8_t *rollback_order;
	size_t rollback_order_len;
};

#define FL_STORE_WITH_ORDER 8u

void fl_store_rollout_fini(struct fl_store_rollout *r);
void fl_store_rollouts_free(struct fl_store_rollout *items, size_t n);

/* The next created_seq (one above the highest used; 1 for the first). */
enum fl_err fl_store_rollout_next_seq(struct fl_store *st, uint64_t *seq, char *errbuf)
    __attribute__((warn_unused_result));
/* Insert (with its signed order, which must be given). FL_ESTATE if the id,
 * the created_seq or the order hash is taken. */
enum fl_err fl_store_rollout_add(struct fl_store *st, const struct fl_store_rollout *r,
                                 char *errbuf) __attribute__((warn_unused_result));
/* FL_ENOENT if there is no such rollout. */
enum fl_err fl_store_rollout_get(struct fl_store *st, const char *id, unsigned flags,
                                 struct fl_store_rollout *out, char *errbuf)
    __attribute__((warn_unused_result));
/* The id of the rollout started under this order hash into id (heap, the
 * caller's); FL_ENOENT if none. */
enum fl_err fl_store_rollout_by_order(struct fl_store *st, const uint8_t hash[FL_STORE_HASH_LEN],
                                      char **id, char *errbuf) __attribute__((warn_unused_result));
/* Set state, current wave, reason (NULL: unchanged), updated_at = at_ms and,
 * when finished_at_ms is not 0, finished_at. FL_ENOENT if absent. */
enum fl_err fl_store_rollout_set_state(struct fl_store *st, const char *id, int state,
                                       uint32_t current_wave, const char *reason, int64_t at_ms,
                                       int64_t finished_at_ms, char *errbuf)
    __attribute__((warn_unused_result));
/* Record who authorised reverting (and the rollback order, or NULL). */
enum fl_err fl_store_rollout_set_rollback(struct fl_store *st, const char *id,
                                          enum fl_store_rollback_kind kind, const uint8_t *order,
                                          size_t len, int64_t at_ms, char *errbuf)
    __attribute__((warn_unused_result));
/* Rollouts without their orders, newest first, at most limit (0: all):
 * the live ones only (pending, running, paused, halted, rolling back), or
 * every one with include_finished. */
enum fl_err fl_store_rollout_list(struct fl_store *st, bool include_finished, uint32_t limit,
                                  struct fl_store_rollout **items, size_t *n, char *errbuf)
    __attribute__((warn_unused_result));

/* ---- waves ---- */

struct fl_store_wave {
	uint32_t idx; /* in the policy, from 0 */
	char *name;   /* the policy's */
	int state;    /* the wire's WaveState */
	int64_t started_at_ms;
	int64_t finished_at_ms;
	int64_t bake_until_ms;
	int64_t next_check_at_ms; /* baking: when the next round of checks starts; 0: the
	                             last round started */
	char *state_reason;
	bool rolled_back; /* its tenants were reverted by on_failure: rollback-wave */
	/* baking: when its rollout paused (the bake's clock stopped until it
	 * runs again); 0: the clock runs */
	int64_t bake_paused_at_ms;
};

void fl_store_wave_fini(struct fl_store_wave *w);
void fl_store_waves_free(struct fl_store_wave *items, size_t n);
/* Insert or replace wave w->idx of the rollout. */
enum fl_err fl_store_wave_put(struct fl_store *st, const char *rollout_id,
                              const struct fl_store_wave *w, char *errbuf)
    __attribute__((warn_unused_result));
/* The rollout's waves, by index. */
enum fl_err fl_store_wave_list(struct fl_store *st, const char *rollout_id,
                               struct fl_store_wave **items, size_t *n, char *errbuf)
    __attribute__((warn_unused_result));

/* ---- rollout tenants ---- */

struct fl_store_rollout_tenant {
	char *tenant_id;
	uint32_t wave;     /* its wave's index */
	uint32_t pos;      /* its place in the rollout's stable order (waves.h) */
	int state;         /* enum fl_sched_tenant_state */
	uint32_t attempts; /* APPLY assignments issued for it */
	char *pre_head;    /* its head migration when the rollout started; "" */
	char *last_error;  /* the last failure; "" */
	int64_t updated_at_ms;
	int64_t not_before_ms; /* busy: not started again before this */
	int64_t since_ms;      /* unreachable: its agent silent since */
	bool changed;          /* the rollout applied a migration there */
	bool check_due;        /* baking: a CHECK is to be issued this round */
	bool revert_failed;    /* a REVERT for it failed */
	/* Filled by fl_store_rollout_tenant_each from the tenants table;
	 * ignored by put. */
	uint8_t agent_pk[FL_STORE_KEY_LEN];
	struct fl_labels labels;
};

void fl_store_rollout_tenant_fini(struct fl_store_rollout_tenant *t);
/* Insert or replace the rollout's row for t->tenant_id (which must be a
 * tenant). */
enum fl_err fl_store_rollout_tenant_put(struct fl_store *st, const char *rollout_id,
                                        const struct fl_store_rollout_tenant *t, char *errbuf)
    __attribute__((warn_unused_result));
/* Calls fn for each of the rollout's tenants, by wave then pos, until fn
 * returns false. The struct is valid during the call only; fn must not call
 * into the store. */
typedef bool (*fl_store_rollout_tenant_fn)(void *arg, const struct fl_store_rollout_tenant *t);
enum fl_err fl_store_rollout_tenant_each(struct fl_store *st, const char *rollout_id,
                                         fl_store_rollout_tenant_fn fn, void *arg, char *errbuf)
    __attribute__((warn_unused_result));

/* Mark the rollout's row for the tenant changed (a report proved the rollout
 * applied a migration there), whatever the rollout's state: for a report
 * that arrives after its assignment was withdrawn or the rollout finished.
 * FL_ENOENT if the rollout has no such tenant. */
enum fl_err fl_store_rollout_tenant_set_changed(struct fl_store *st, const char *rollout_id,
                                                const char *tenant_id, int64_t at_ms, char *errbuf)
    __attribute__((warn_unused_result));

/* Calls fn once per (wave, state) of the rollout's tenants with how many
 * are there: counts without loading every row. */
typedef void (*fl_store_rollout_count_fn)(void *arg, uint32_t wave, int state, uint32_t count);
enum fl_err fl_store_rollout_tenant_counts(struct fl_store *st, const char *rollout_id,
                                           fl_store_rollout_count_fn fn, void *arg, char *errbuf)
    __attribute__((warn_unused_result));

/* ---- transactions ---- */

/*
 * Call fn(arg) whenever a transaction on st is rolled back: an explicit
 * rollback (fl_store_rollback, by anyone) or one a failed commit caused.
 * For the scheduler, whose in-memory model runs ahead of the store while a
 * transaction is open and must be reloaded if it never commits. One
 * watcher per store; fn NULL removes it. fn must not call into the store.
 */
typedef void (*fl_store_rollback_fn)(void *arg);
void fl_store_on_rollback(struct fl_store *st, fl_store_rollback_fn fn, void *arg);

/* ---- assignments and reports ---- */

/* The rollout's assignments still ISSUED (outstanding), by id. */
enum fl_err fl_store_assignment_issued_in(struct fl_store *st, const char *rollout_id,
                                          struct fl_store_assignment **items, size_t *n,
                                          char *errbuf) __attribute__((warn_unused_result));
/* The ids of the tenants (each once, sorted) with an assignment of this kind
 * in the rollout that was withdrawn (CANCELED) and never reported: work the
 * agent may still have done. The caller frees each id and the array. */
enum fl_err fl_store_assignment_withdrawn_in(struct fl_store *st, const char *rollout_id, int kind,
                                             char ***ids, size_t *n, char *errbuf)
    __attribute__((warn_unused_result));
/* Up to limit stored reports with this outcome (the wire's), newest first. */
enum fl_err fl_store_report_recent(struct fl_store *st, int outcome, uint32_t limit,
                                   struct fl_store_report **items, size_t *n, char *errbuf)
    __attribute__((warn_unused_result));

#endif
