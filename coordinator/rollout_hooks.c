/*
 * The scheduler on the coordinator's core (rollout_hooks.h): a thin layer
 * that turns the core's hooks into scheduler calls and copies what comes
 * back into the core's arenas.
 */
#include "rollout_hooks.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "log.h"
#include "mem.h"
#include "rollout_admin.h"
#include "scheduler.h"
#include "store_backup.h"
#include "webhooks.h"

struct fl_rollout_hooks {
	struct fl_core *core;
	struct fl_scheduler *s;
	const struct fl_coordinator_config *cfg; /* the config the scheduler has */
	struct fl_webhooks *wh;                  /* or NULL: none configured */
	atomic_bool backup_wanted;               /* SIGUSR2 */
	struct fl_store_backup *backup;          /* under way, or NULL */
	int64_t backup_started_ms;
};

struct fl_rollout_hooks *fl_rollout_hooks_new(void)
{
	return fl_calloc(1, sizeof(struct fl_rollout_hooks));
}

void fl_rollout_hooks_free(struct fl_rollout_hooks *h)
{
	if (h == NULL)
		return;
	fl_webhooks_free(h->wh);
	fl_store_backup_abort(h->backup);
	fl_scheduler_free(h->s);
	free(h);
}

static void config_of(const struct fl_coordinator_config *cfg, struct fl_scheduler_config *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->project_id = cfg->project_id;
	sc->trusted_release_keys =
	    (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])cfg->wire.trusted_release_keys.keys;
	sc->n_trusted_release_keys = cfg->wire.trusted_release_keys.n;
	sc->agent_offline_after_ms = cfg->agent_offline_after_ms;
	/* an assignment not listed as running for a whole long poll and more is lost */
	sc->resend_after_ms = cfg->poll_hold_ms * 2 > 0 ? cfg->poll_hold_ms * 2 : 0;
}

/* After a SIGHUP the core holds a new config: trusted keys may have changed. */
static void refresh(struct fl_rollout_hooks *h)
{
	const struct fl_coordinator_config *cfg = fl_core_config(h->core);
	struct fl_scheduler_config sc;

	if (cfg == h->cfg)
		return;
	config_of(cfg, &sc);
	fl_scheduler_set_config(h->s, &sc);
	h->cfg = cfg;
}

static void wake(void *arg, const uint8_t pk[FL_STORE_KEY_LEN])
{
	struct fl_rollout_hooks *h = arg;

	fl_core_wake_agent(h->core, pk);
}

static enum fl_err start(void *arg, struct fl_core *core, char *errbuf)
{
	struct fl_rollout_hooks *h = arg;
	struct fl_scheduler_config sc;
	enum fl_err e;

	h->core = core;
	h->cfg = fl_core_config(core);
	config_of(h->cfg, &sc);
	if ((e = fl_scheduler_new(fl_core_store(core), &sc, wake, h, fl_core_now_ms(core), &h->s,
	                          errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "scheduler");
		return e;
	}
	/* rollout transitions to webhooks (coordinator/webhooks.h) */
	if (h->cfg->webhooks.n > 0) {
		if ((e = fl_webhooks_new(h->cfg, &h->wh, errbuf)) != FL_OK ||
		    (e = fl_webhooks_start(h->wh, fl_core_store(core), fl_core_now_ms(core),
		                           errbuf)) != FL_OK)
			return e;
		fl_scheduler_set_transition_hook(h->s, fl_webhooks_transition, h->wh);
	}
	return FL_OK;
}

static void stop(void *arg)
{
	struct fl_rollout_hooks *h = arg;

	fl_webhooks_free(h->wh);
	h->wh = NULL;
	fl_store_backup_abort(h->backup); /* before the store closes */
	h->backup = NULL;
	fl_scheduler_free(h->s);
	h->s = NULL;
}

void fl_rollout_hooks_request_backup(struct fl_rollout_hooks *h)
{
	atomic_store(&h->backup_wanted, true);
}

#define BACKUP_PAGES 4096 /* per tick: 16 MiB of 4 KiB pages */

/* The online backup (store_backup.h): started on request, a step per tick.
 * Its errors are logged, never the tick's. */
static void backup_tick(struct fl_rollout_hooks *h, int64_t now_ms)
{
	struct fl_store *st = fl_core_store(h->core);
	char err[FL_ERRBUF_SIZE], eb[FL_ERRBUF_SIZE], path[4096];
	bool done = false, in_tx;
	enum fl_err rv;

	if (h->backup == NULL && atomic_exchange(&h->backup_wanted, false)) {
		snprintf(path, sizeof(path), "%s.backup", h->cfg->store);
		if (fl_store_backup_begin(st, path, &h->backup, err) != FL_OK) {
			fl_log_error("store", "%s", err);
			return;
		}
		h->backup_started_ms = now_ms;
		fl_log_info("store", "backup into '%s' started", path);
	}
	if (h->backup == NULL)
		return;
	/* SQLite copies nothing while the source is in a write transaction, and
	 * the core opened one for the tick: nothing is written in it yet, so
	 * commit it, step, and open the next for the rest of the tick */
	in_tx = fl_store_in_transaction(st);
	if (in_tx && fl_store_commit(st, err) != FL_OK) {
		fl_log_error("store", "backup: %s", err);
		return;
	}
	rv = fl_store_backup_step(h->backup, BACKUP_PAGES, &done, err);
	if (in_tx && fl_store_begin(st, eb) != FL_OK)
		fl_log_error("store", "backup: %s", eb);
	if (rv != FL_OK) {
		h->backup = NULL; /* freed by the failed step */
		fl_log_error("store", "%s", err);
	} else if (done) {
		h->backup = NULL;
		fl_log_info("store", "backup into '%s.backup' done in %lldms", h->cfg->store,
		            (long long)(now_ms - h->backup_started_ms));
	}
}

static enum fl_err tick(void *arg, int64_t now_ms, char *errbuf)
{
	struct fl_rollout_hooks *h = arg;

	enum fl_err e;

	refresh(h);
	backup_tick(h, now_ms);
	if (h->wh != NULL &&
	    (e = fl_webhooks_tick(h->wh, fl_core_store(h->core), now_ms, errbuf)) != FL_OK)
		return e;
	return fl_scheduler_tick(h->s, now_ms, errbuf);
}

static enum fl_err poll_hook(void *arg, struct fl_core_agent *agent,
                             struct fl_core_poll_reply *reply, char *errbuf)
{
	struct fl_rollout_hooks *h = arg;
	struct fl_scheduler_work w;
	struct fl_arena *ar = reply->arena;
	enum fl_err e;

	if ((e = fl_scheduler_poll(h->s, agent->pk, agent->free_slots, agent->running,
	                           agent->n_running, fl_core_now_ms(h->core), &w, errbuf)) !=
	    FL_OK) {
		fl_scheduler_work_fini(&w);
		return e;
	}
	for (size_t i = 0; i < w.n_assignments; i++) {
		const Flotilla__V1__WorkAssignment *x = w.assignments[i];
		Flotilla__V1__WorkAssignment *y = fl_arena_memdup(ar, x, sizeof(*x));

		y->rollout_id = fl_arena_strdup(ar, x->rollout_id);
		y->tenant_id = fl_arena_strdup(ar, x->tenant_id);
		y->target_migration_id = fl_arena_strdup(ar, x->target_migration_id);
		y->release_hash.data =
		    fl_arena_memdup(ar, x->release_hash.data, x->release_hash.len);
		y->signed_order.data =
		    fl_arena_memdup(ar, x->signed_order.data, x->signed_order.len);
		if (x->signed_rollback_order.len > 0)
			y->signed_rollback_order.data = fl_arena_memdup(
			    ar, x->signed_rollback_order.data, x->signed_rollback_order.len);
		fl_arena_push(ar, &reply->assignments, &reply->n_assignments, y);
	}
	for (size_t i = 0; i < w.n_halts; i++) {
		Flotilla__V1__Halt *y = fl_arena_memdup(ar, w.halts[i], sizeof(*w.halts[i]));

		y->rollout_id = fl_arena_strdup(ar, w.halts[i]->rollout_id);
		y->reason = fl_arena_strdup(ar, w.halts[i]->reason);
		fl_arena_push(ar, &reply->halts, &reply->n_halts, y);
	}
	fl_scheduler_work_fini(&w);
	return FL_OK;
}

static enum fl_err report_hook(void *arg, struct fl_core_agent *agent,
                               const struct fl_store_assignment *a,
                               const Flotilla__V1__Report *report, char *errbuf)
{
	struct fl_rollout_hooks *h = arg;

	(void)agent;
	return fl_scheduler_report(h->s, a, report, fl_core_now_ms(h->core), errbuf);
}

static enum fl_err hello_hook(void *arg, struct fl_core_agent *agent, char *errbuf)
{
	struct fl_rollout_hooks *h = arg;

	return fl_scheduler_hello(h->s, agent->pk, fl_core_now_ms(h->core), errbuf);
}

static enum fl_err agent_state(void *arg, struct fl_core_agent *agent, bool online, char *errbuf)
{
	struct fl_rollout_hooks *h = arg;

	return fl_scheduler_agent_state(h->s, agent->pk, online, agent->last_seen_ms,
	                                fl_core_now_ms(h->core), errbuf);
}

static enum fl_err admin(void *arg, const struct fl_core_caller *caller,
                         const Flotilla__V1__AdminRequest *req, struct fl_core_admin_reply *reply,
                         char *errbuf)
{
	struct fl_rollout_hooks *h = arg;
	struct fl_rollout_caller who = {caller->key_id, caller->name};
	const char *subject = "";
	enum fl_err e;

	refresh(h);
	e = fl_rollout_admin_run(h->s, &who, req, fl_core_now_ms(h->core), reply->arena,
	                         reply->response, &subject, errbuf);
	reply->code = reply->response->status->code;
	reply->message = reply->response->status->message;
	reply->subject = subject;
	return e;
}

static const struct fl_core_scheduler ops = {
    .start = start,
    .stop = stop,
    .tick = tick,
    .tick_ms = FL_ROLLOUT_TICK_MS,
    .poll = poll_hook,
    .report = report_hook,
    .hello = hello_hook,
    .agent_state = agent_state,
    .admin = admin,
};

const struct fl_core_scheduler *fl_rollout_hooks_ops(void)
{
	return &ops;
}
