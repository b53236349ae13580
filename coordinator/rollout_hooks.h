/*
 * The scheduler (scheduler.h) and the rollout commands (rollout_admin.h)
 * plugged into the coordinator's core (core.h, struct fl_core_scheduler):
 * each hook runs on the core thread, inside the transaction the core
 * opened and commits after it; work and replies are copied into the
 * request's arena; wakes go to fl_core_wake_agent (answered after the
 * commit). main.c registers it:
 *
 *   struct fl_rollout_hooks *h = fl_rollout_hooks_new();
 *   fl_core_set_scheduler(core, fl_rollout_hooks_ops(), h);
 *   ... fl_core_stop, fl_core_free ...
 *   fl_rollout_hooks_free(h);
 */
#ifndef FL_ROLLOUT_HOOKS_H
#define FL_ROLLOUT_HOOKS_H

#include "core.h"

/* How often the core calls the scheduler's tick. */
#define FL_ROLLOUT_TICK_MS 1000

struct fl_rollout_hooks;

struct fl_rollout_hooks *fl_rollout_hooks_new(void);
/* After fl_core_stop (which frees the scheduler through the stop hook); NULL
 * is a no-op. */
void fl_rollout_hooks_free(struct fl_rollout_hooks *h);
/* Ask for an online backup of the store into STORE.backup (store_backup.h),
 * made on the core thread from the next tick on, a few thousand pages per
 * tick; logged when done. Any thread (main.c: SIGUSR2). */
void fl_rollout_hooks_request_backup(struct fl_rollout_hooks *h);
/* The hook table (static storage); its arg is a struct fl_rollout_hooks. */
const struct fl_core_scheduler *fl_rollout_hooks_ops(void);

#endif
