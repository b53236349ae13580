/*
 * Rollout policies: how a release reaches a fleet. A release manager writes
 * one in YAML (docs/POLICY.md), signs it inside a rollout order, and both the
 * coordinator (which schedules within it) and every agent (which refuses work
 * it does not cover, and runs only its health checks) read the same struct.
 *
 *   name: standard-canary
 *   waves:
 *     - {name: canary, select: {labels: {ring: canary}}, max_parallel: 5, max_failures: 0,
 *        bake: 5m, backup: true}
 *     - {name: early, select: {percent: 10}, max_parallel: 50, max_failure_rate: 0.02,
 *        bake: 10m, gate: manual}
 *     - {name: rest, select: {percent: 100}, max_parallel: 200, max_failure_rate: 0.01}
 *   per_agent_parallel: 4
 *   health:
 *     interval: 30s
 *     max_duration: 30m
 *     checks:
 *       - {name: users-readable, sql: "SELECT count(*) >= 0 FROM users", timeout: 5s}
 *   lock_timeout: 500ms
 *   retry: {attempts: 5, backoff: 2s}
 *   on_failure: halt
 *   on_halt: cancel
 *   unreachable: {action: fail, after: 10m}
 *   windows:
 *     - {select: {labels: {region: eu}}, utc: "01:00-05:00"}
 *
 * Waves, in order, split the rollout's selection: a tenant belongs to the
 * first wave whose selector takes it. A wave selects by exactly one of
 * labels, explicit tenant ids, or a cumulative percent of the whole selection
 * (the coordinator fills percent waves from a stable order of the tenants,
 * hashed with the rollout order, so the same order always picks the same
 * tenants).
 *
 * Failure budget, counted exactly: a wave trips when its failed tenants
 * exceed max_failures (max_failures: 1 trips on the second failure), or when
 * failed / tenants in the wave exceeds max_failure_rate. Neither given means
 * max_failures: 0.
 *
 * Windows: a tenant that one or more windows select may start only while one
 * of those is open; a tenant no window selects may start at any time
 * (fl_policy_may_start).
 *
 * Ownership: a policy owns every string in it; fl_policy_fini frees them.
 * No shared state; thread-compatible.
 */
#ifndef FL_POLICY_H
#define FL_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "label.h"
#include "retry.h"

#define FL_POLICY_MAX_WAVES     64
#define FL_POLICY_MAX_CHECKS    64
#define FL_POLICY_MAX_WINDOWS   64
#define FL_POLICY_MAX_TENANTS   10000 /* explicit tenant ids in one wave */
#define FL_POLICY_NAME_MAX      64    /* policy, wave and check names: [A-Za-z0-9._-] */
#define FL_POLICY_CHECK_SQL_MAX 16384 /* bytes of one health check's SQL */
#define FL_POLICY_TENANT_ID_MAX 255   /* bytes of one tenant id in a wave's selector */
/* What `retry: {attempts, backoff}` leaves to the policy: each wait between
 * tries is at most this long, and a statement is not tried again once this
 * long has passed since its first try. */
#define FL_POLICY_RETRY_MAX_DELAY_MS 60000
#define FL_POLICY_RETRY_BUDGET_MS    600000

enum fl_gate {
	FL_GATE_AUTO = 0,   /* the next wave starts once this one is done and baked */
	FL_GATE_MANUAL = 1, /* the rollout waits for `flotilla rollout promote` */
};

enum fl_on_failure {
	FL_ON_FAILURE_HALT = 0,          /* stop everywhere; people decide */
	FL_ON_FAILURE_ROLLBACK_WAVE = 1, /* revert the failing wave's tenants, then halt */
	FL_ON_FAILURE_ROLLBACK_ALL = 2,  /* revert every tenant the rollout changed, then halt */
};

enum fl_on_halt {
	FL_ON_HALT_CANCEL = 0, /* cancel running statements (a transaction rolls back) */
	FL_ON_HALT_FINISH = 1, /* let running migrations finish; start nothing new */
};

enum fl_unreachable_action {
	FL_UNREACHABLE_WAIT = 0, /* wait for the agent to come back, however long */
	FL_UNREACHABLE_FAIL = 1, /* after `after`, count its tenants as failed */
};

enum fl_select_kind {
	FL_SELECT_LABELS = 0,  /* tenants carrying every label */
	FL_SELECT_TENANTS = 1, /* these tenant ids */
	FL_SELECT_PERCENT = 2, /* cumulative percent of the rollout's selection */
};

struct fl_wave_selector {
	enum fl_select_kind kind;
	struct fl_labels labels; /* FL_SELECT_LABELS */
	char **tenants;          /* FL_SELECT_TENANTS, sorted, unique */
	size_t n_tenants;
	double percent; /* FL_SELECT_PERCENT: (0, 100], not below an earlier wave's */
};

struct fl_wave {
	char *name;
	struct fl_wave_selector select;
	uint32_t max_parallel;       /* tenants at once, fleet-wide; default 10 */
	uint32_t per_agent_parallel; /* 0: the policy's */
	int64_t max_failures;        /* -1: not set */
	double max_failure_rate;     /* [0, 1]; < 0: not set */
	int64_t bake_ms;             /* soak time with health checks repeating; 0 = none */
	bool backup;                 /* the agent backs each tenant up before touching it */
	enum fl_gate gate;
};

struct fl_health_check {
	char *name;
	char *sql;          /* one statement that must return one true */
	int64_t timeout_ms; /* statement timeout; default 5s */
};

struct fl_window {
	struct fl_labels labels; /* tenants carrying every label */
	int start_minute;        /* UTC, minutes after midnight, 0..1439 */
	int end_minute;          /* exclusive; may be below start (spans midnight) */
};

struct fl_policy {
	char *name;
	struct fl_wave *waves;
	size_t n_waves;
	uint32_t per_agent_parallel; /* default 4 */
	/* health */
	int64_t health_interval_ms; /* default 30s */
	int64_t max_duration_ms;    /* one tenant's apply; 0 = no limit */
	struct fl_health_check *checks;
	size_t n_checks;
	/* how SQL runs */
	int64_t lock_timeout_ms;      /* default 500ms; never 0 */
	int64_t statement_timeout_ms; /* -1: the server's */
	struct fl_retry_policy retry; /* attempts default 5, backoff (base delay) 2s,
	                                 max delay and budget FL_POLICY_RETRY_* */
	/* what happens when things go wrong */
	enum fl_on_failure on_failure;
	enum fl_on_halt on_halt;
	enum fl_unreachable_action unreachable;
	int64_t unreachable_after_ms; /* FL_UNREACHABLE_FAIL: default 10m */
	struct fl_window *windows;
	size_t n_windows;
};

/* A policy with every default and no waves (fl_policy_check refuses it). */
void fl_policy_init(struct fl_policy *p);
void fl_policy_fini(struct fl_policy *p);

/*
 * Load a policy file (YAML, at most 1 MiB) into p, which the call
 * initialises. Unknown keys, wrong types, values out of bounds and rule
 * breaks (fl_policy_check) are FL_EPARSE with errbuf naming the file, line
 * and key: "'canary.yaml':4:7: 'waves[1].max_failure_rate': 1.5 is above the
 * maximum 1". FL_ENOENT when there is no such file, FL_EIO when it cannot be
 * read. On error p is left initialised and empty.
 */
enum fl_err fl_policy_load_file(const char *path, struct fl_policy *p, char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_policy_load_buffer(const char *text, size_t len, const char *name,
                                  struct fl_policy *p, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * The rules every policy obeys, however it arrived (a file, or decoded from a
 * signed order): at least one wave; names present, valid and unique (waves,
 * checks); percent waves not decreasing, none after one at 100; each bound;
 * selectors (exactly one kind, valid labels, tenants sorted and unique); a
 * window's times valid. FL_EPARSE naming the field
 * ("'waves[2].select.percent': 5 is below 10, the percent of wave 'early'").
 */
enum fl_err fl_policy_check(const struct fl_policy *p, char *errbuf)
    __attribute__((warn_unused_result));

/* Deep copy; dst is initialised by the call. */
void fl_policy_copy(struct fl_policy *dst, const struct fl_policy *src);

/* Whether wave w's failures trip its budget: failed > max_failures, or
 * failed / total > max_failure_rate (total > 0). */
bool fl_wave_budget_exceeded(const struct fl_wave *w, uint32_t failed, uint32_t total);

/* Whether minute-of-day m (UTC) is inside window w. */
bool fl_window_open(const struct fl_window *w, int minute_of_day);

/* Whether a tenant with these labels may start at minute-of-day m (UTC):
 * true when no window selects it, else when one of those that do is open. */
bool fl_policy_may_start(const struct fl_policy *p, const struct fl_labels *tenant,
                         int minute_of_day);

/* Minutes from minute-of-day m (UTC) until a tenant with these labels may
 * start: 0 when it may start now (no window selects it, or one that does is
 * open), else until the soonest of those windows opens (1..1439). */
int fl_policy_next_start(const struct fl_policy *p, const struct fl_labels *tenant,
                         int minute_of_day);

/*
 * Planning, not scheduling: when a tenant with these labels that is ready at
 * start_ms (ms since the epoch, UTC) has had work_ms of time it may run in.
 * start_ms + work_ms when no window selects it; else work counts only while
 * one of its windows is open, so work longer than an opening spills into the
 * next one (the next day's). The scheduler only holds back starts (a running
 * migration goes on after its window closes), so this errs late.
 */
int64_t fl_policy_window_finish_ms(const struct fl_policy *p, const struct fl_labels *tenant,
                                   int64_t start_ms, int64_t work_ms);

/*
 * When a wave of n tenants (their labels), started at start_ms, is done if
 * each apply takes apply_ms and at most max_parallel run at once: the
 * tenants are grouped by the windows that select them, each group runs
 * ceil(count / min(count, max_parallel)) rounds of apply_ms inside its
 * windows (fl_policy_window_finish_ms), and the wave ends with its last
 * group. Groups are taken as if each had max_parallel to itself (an
 * estimate). start_ms when n is 0 or apply_ms is not positive.
 */
int64_t fl_wave_finish_ms(const struct fl_policy *p, uint32_t max_parallel,
                          const struct fl_labels *const *tenants, size_t n, int64_t start_ms,
                          int64_t apply_ms);

/* Spellings as policy files write them; "?" for a value out of range. */
const char *fl_gate_name(enum fl_gate g);                      /* "auto", "manual" */
const char *fl_on_failure_name(enum fl_on_failure f);          /* "halt", "rollback-wave", ... */
const char *fl_on_halt_name(enum fl_on_halt h);                /* "cancel", "finish" */
const char *fl_unreachable_name(enum fl_unreachable_action a); /* "wait", "fail" */
const char *fl_select_kind_name(enum fl_select_kind k);        /* "labels", "tenants", "percent" */

/* The table policy files are read with, for the docs and example checks
 * (tests/unit/check_config.c); load policies with fl_policy_load_*. */
extern const struct fl_config_key fl_policy_config_table[];

#endif
