/*
 * The worker pool (see worker.h).
 *
 * One mutex guards the job list, the per-server and per-order counts and
 * each job's state; a job's own mutex guards what cancellation reaches
 * (session, health runner, backup), so a cancel never meets an object being
 * freed. Jobs are taken in arrival order: the first ready one whose limits
 * allow, else the first new one to prepare; a worker never waits on a limit.
 * Jobs of one tenant run one at a time in the order they came: a ready job
 * waits while an earlier one of its tenant is in the pool (new, being
 * prepared, ready or running), as if that were one more limit.
 */
#include "worker.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "clock.h"
#include "deploy.h"
#include "health.h"
#include "log.h"
#include "mem.h"
#include "rollback.h"
#include "session.h"
#include "verify.h"
#include "wire.h"

#define O_APPLIED       FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED
#define O_FAILED        FLOTILLA__V1__OUTCOME__OUTCOME_FAILED
#define O_ROLLED_BACK   FLOTILLA__V1__OUTCOME__OUTCOME_ROLLED_BACK
#define O_VERIFY_FAILED FLOTILLA__V1__OUTCOME__OUTCOME_VERIFY_FAILED
#define O_HEALTH_FAILED FLOTILLA__V1__OUTCOME__OUTCOME_HEALTH_FAILED
#define O_SKIPPED       FLOTILLA__V1__OUTCOME__OUTCOME_SKIPPED
#define O_CANCELED      FLOTILLA__V1__OUTCOME__OUTCOME_CANCELED
#define O_REFUSED       FLOTILLA__V1__OUTCOME__OUTCOME_REFUSED
#define O_INCONCLUSIVE  FLOTILLA__V1__OUTCOME__OUTCOME_INCONCLUSIVE
#define O_BACKUP_FAILED FLOTILLA__V1__OUTCOME__OUTCOME_BACKUP_FAILED
#define O_BUSY          FLOTILLA__V1__OUTCOME__OUTCOME_BUSY
#define O_HEALTHY       FLOTILLA__V1__OUTCOME__OUTCOME_HEALTHY
#define K_APPLY         FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY
#define K_REVERT        FLOTILLA__V1__WORK_KIND__WORK_KIND_REVERT
#define K_CHECK         FLOTILLA__V1__WORK_KIND__WORK_KIND_CHECK

_Static_assert(O_APPLIED == 1 && O_SKIPPED == 6, "ledger.c reads these values");
_Static_assert(K_APPLY == 1, "ledger.c reads this value");

#define QUEUE_FACTOR 4 /* jobs held at most: threads x this (a coordinator ignoring free_slots) */
#define WATCH_MS     250
/* Bytes of assignments held before a worker checks them, whatever the
 * coordinator sends: one poll reply's worth. */
#define QUEUED_BYTES_MAX FL_WIRE_MAX_POLL_REPLY
/* Names the coordinator gives (rollout, tenant, target) are kept to this. */
#define NAME_MAX_ 255

enum job_state {
	J_NEW,       /* in the list, waiting for a worker to prepare it */
	J_PREPARING, /* a worker checks it (ledger, trust) */
	J_READY,     /* verified, waiting for its server's and order's slots */
	J_RUNNING,   /* a worker runs it; counted in its server and order */
};

enum cancel_why {
	WHY_NONE = 0,
	WHY_HALT,     /* the rollout was halted */
	WHY_SHUTDOWN, /* the agent stops */
	WHY_DEADLINE, /* past the policy's max_duration */
	WHY_LEDGER,   /* the ledger could not record a step */
};

struct job {
	struct job *next;
	struct fl_worker *w;
	uint64_t id;
	char *rollout_id;
	char *tenant_id; /* as named (cut to 255 bytes), for the report */
	int kind;
	uint8_t *packed; /* the assignment as received, until a worker unpacks it */
	size_t len;
	char *refusal; /* refused as it came (too large): why; nothing else kept */
	enum job_state state;
	enum cancel_why why; /* set once, under the pool's mutex */
	char why_text[256];

	Flotilla__V1__WorkAssignment *a; /* unpacked by its worker */
	struct fl_agent_snapshot snap;
	bool have_snap;
	struct fl_verified v;
	char *server;
	size_t server_limit;
	uint8_t order_hash[32];
	size_t order_limit;
	int64_t deadline_ms; /* monotonic; 0: none */

	pthread_mutex_t mu; /* guards the three below */
	struct fl_session *session;
	struct fl_health *health;
	struct fl_backup *backup;

	struct fl_logger log;
	char log_context[300];
	char rollout_shown[128]; /* rollout_id quoted for logs: the coordinator's text */
	struct fl_report report;
	struct fl_migration_report *current; /* the migration being worked on */
	int64_t current_started_ms;
};

struct count {
	char *server; /* or NULL for an order count */
	uint8_t order[32];
	size_t n;
};

struct fl_worker {
	struct fl_worker_deps d;
	char *agent_id;
	pthread_mutex_t mu;
	pthread_cond_t work; /* something to do, or stopping */
	pthread_cond_t done; /* a job left the pool */
	struct job *jobs;    /* arrival order */
	size_t n_jobs;
	size_t queued_bytes; /* packed assignments not unpacked yet */
	struct count *counts;
	size_t n_counts;
	bool stopping; /* take nothing new; workers exit when no job is left */
	pthread_t *threads;
	size_t n_threads;
	pthread_t watchdog;
	bool watch_stop;
	pthread_cond_t watch;
};

/* ---- small helpers ---- */

static const char *why_name(enum cancel_why w)
{
	switch (w) {
	case WHY_HALT:
		return "halted";
	case WHY_SHUTDOWN:
		return "the agent is shutting down";
	case WHY_DEADLINE:
		return "past the policy's max_duration";
	case WHY_LEDGER:
		return "the ledger could not record a step";
	case WHY_NONE:
		break;
	}
	return "canceled";
}

static struct count *count_of(struct fl_worker *w, const char *server, const uint8_t *order)
{
	size_t i;

	for (i = 0; i < w->n_counts; i++) {
		struct count *c = &w->counts[i];

		if (server != NULL ? (c->server && strcmp(c->server, server) == 0)
		                   : (c->server == NULL && memcmp(c->order, order, 32) == 0))
			return c;
	}
	w->counts = fl_realloc(w->counts, (w->n_counts + 1) * sizeof(*w->counts));
	memset(&w->counts[w->n_counts], 0, sizeof(*w->counts));
	if (server != NULL)
		w->counts[w->n_counts].server = fl_strdup(server);
	else
		memcpy(w->counts[w->n_counts].order, order, 32);
	return &w->counts[w->n_counts++];
}

/* Cancel what j is doing now and whatever it does next. Pool mutex held. */
static void cancel_job(struct job *j, enum cancel_why why, const char *text)
{
	if (j->why == WHY_NONE) {
		j->why = why;
		snprintf(j->why_text, sizeof(j->why_text), "%s", text ? text : "");
	}
	pthread_mutex_lock(&j->mu);
	if (j->session)
		fl_session_cancel(j->session);
	if (j->health)
		fl_health_cancel(j->health);
	if (j->backup)
		fl_backup_cancel(j->backup);
	pthread_mutex_unlock(&j->mu);
}

static enum cancel_why job_why(struct fl_worker *w, struct job *j)
{
	enum cancel_why why;

	pthread_mutex_lock(&w->mu);
	why = j->why;
	pthread_mutex_unlock(&w->mu);
	return why;
}

static void free_job(struct job *j)
{
	if (j->a != NULL)
		fl_wire_free_message(&j->a->base);
	fl_verified_fini(&j->v);
	fl_report_fini(&j->report);
	free(j->rollout_id);
	free(j->tenant_id);
	free(j->packed);
	free(j->refusal);
	free(j->server);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

/* ---- reporting ---- */

/* Journal the report (reserve an id, pack, ledger FINISH if started, journal
 * put) and tell the pull loop. */
static void finish(struct fl_worker *w, struct job *j, bool started)
{
	struct fl_report *r = &j->report;
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_buf packed = FL_BUF_INIT;
	uint64_t jid;

	r->finished_at_ms = fl_wall_ms();
	if (r->started_at_ms == 0)
		r->started_at_ms = r->finished_at_ms;
	jid = fl_journal_reserve(w->d.journal);
	if (fl_report_pack(r, jid, &packed, err) != FL_OK) {
		fl_logger_error(&j->log, NULL, "assignment %llu: cannot pack its report: %s",
		                (unsigned long long)j->id, err);
		fl_journal_unreserve(w->d.journal, jid);
		goto out;
	}
	/* the ledger first: a crash between the two is mended at the next start
	 * (fl_worker_recover journals what the ledger has and the journal lacks) */
	if (started && fl_ledger_finish(w->d.ledger, j->id, r->outcome, r->finished_at_ms, jid,
	                                packed.data, packed.len, err) != FL_OK) {
		fl_logger_error(&j->log, NULL, "assignment %llu: %s", (unsigned long long)j->id,
		                err);
		started = false;
	}
	if (!started) /* no ledger holds it: nothing could mend a failed put */
		fl_journal_unreserve(w->d.journal, jid);
	if (fl_journal_put(w->d.journal, jid, packed.data, packed.len, err) != FL_OK) {
		fl_logger_error(&j->log, NULL, "assignment %llu: cannot journal its report: %s",
		                (unsigned long long)j->id, err);
		goto out;
	}
	fl_logger_at(&j->log,
	             r->outcome == O_APPLIED || r->outcome == O_ROLLED_BACK ||
	                     r->outcome == O_HEALTHY || r->outcome == O_SKIPPED
	                 ? FL_LOG_INFO
	                 : FL_LOG_WARN,
	             NULL, "assignment %llu (%s, rollout '%s'): %s%s%s", (unsigned long long)j->id,
	             fl_verify_kind_name(r->kind), j->rollout_shown,
	             fl_report_outcome_name(r->outcome), r->message[0] ? ": " : "", r->message);
	if (w->d.hooks.reported)
		w->d.hooks.reported(w->d.hooks.arg);
out:
	fl_buf_fini(&packed);
}

static void set_outcome(struct job *j, int outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_outcome(struct job *j, int outcome, const char *fmt, ...)
{
	va_list ap;

	j->report.outcome = outcome;
	if (fmt == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(j->report.message, sizeof(j->report.message), fmt, ap);
	va_end(ap);
}

/* The outcome of a job stopped by a cancel, by why it was. */
static void canceled_outcome(struct job *j, enum cancel_why why, const char *what)
{
	if (why == WHY_DEADLINE)
		set_outcome(
		    j, O_FAILED, "%s: canceled after the policy's max_duration (%llds)", what,
		    (long long)(j->v.order ? j->v.order->policy.max_duration_ms / 1000 : 0));
	else if (why == WHY_HALT)
		set_outcome(j, O_CANCELED, "halted: %s (%s)", j->why_text, what);
	else
		set_outcome(j, O_CANCELED, "%s (%s)", why_name(why), what);
}

/* ---- the engine's events and log lines ---- */

static void on_event(const struct fl_event *ev, void *arg)
{
	struct job *j = arg;
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_migration_report *m;
	int64_t now = fl_wall_ms();

	if (ev->kind == FL_EVENT_START) {
		j->current = fl_report_add_migration(&j->report, ev->migration->id);
		j->current->started_at_ms = now;
		j->current->attempts = 1;
		return;
	}
	m = j->current != NULL && strcmp(j->current->id, ev->migration->id) == 0
	        ? j->current
	        : fl_report_add_migration(&j->report, ev->migration->id);
	j->current = NULL;
	m->finished_at_ms = now;
	if (m->started_at_ms == 0)
		m->started_at_ms = now;
	if (ev->res != NULL) {
		m->attempts = ev->res->attempts > 0 ? (uint32_t)ev->res->attempts : 1;
		snprintf(m->sqlstate, sizeof(m->sqlstate), "%s", ev->res->sqlstate);
		m->statement_index = ev->res->statement > 0 ? (uint32_t)ev->res->statement : 0;
	}
	if (ev->kind == FL_EVENT_DONE) {
		m->outcome = ev->revert ? O_ROLLED_BACK : O_APPLIED;
		m->applied_steps =
		    ev->mode == FL_APPLY_STATEMENTS && ev->res && ev->res->statements > 0
		        ? (uint32_t)ev->res->statements
		        : 1;
		m->sqlstate[0] = '\0';
		m->statement_index = 0;
		/* recorded as it commits: the ledger knows what this agent applied
		 * (a revert under the policy undoes only that) */
		if (fl_ledger_step(j->w->d.ledger, j->id, ev->revert, ev->migration->id, err) !=
		    FL_OK) {
			fl_logger_error(&j->log, ev->migration->id, "%s: stopping", err);
			pthread_mutex_lock(&j->w->mu);
			cancel_job(j, WHY_LEDGER, err);
			pthread_mutex_unlock(&j->w->mu);
		}
		return;
	}
	switch (ev->err) {
	case FL_EVERIFY:
		m->outcome = O_VERIFY_FAILED;
		break;
	case FL_ECANCELED:
		m->outcome = O_CANCELED;
		break;
	case FL_EBUSY: /* nothing of it applied or recorded */
		m->outcome = O_BUSY;
		break;
	default:
		m->outcome = O_FAILED;
		break;
	}
	if (m->statement_index > 0)
		m->applied_steps = m->statement_index - 1;
	free(m->message);
	m->message =
	    fl_strdup(ev->res && ev->res->message[0] ? ev->res->message : fl_strerror(ev->err));
}

/* ---- preparing: ledger and trust ---- */

static enum fl_err fetch_hook(void *arg, const uint8_t hash[32], struct fl_buf *out, char *errbuf)
{
	struct fl_worker *w = arg;

	if (w->d.hooks.fetch == NULL)
		return fl_errf(errbuf, FL_ENOENT, "release not cached, and no coordinator to ask");
	return w->d.hooks.fetch(w->d.hooks.arg, hash, out, errbuf);
}

static void report_basics(struct fl_worker *w, struct job *j)
{
	struct fl_report *r = &j->report;

	r->agent_id = fl_strdup(w->agent_id);
	r->assignment_id = j->id;
	r->rollout_id = fl_strdup(j->rollout_id);
	r->tenant_id = fl_strdup(j->tenant_id);
	r->kind = j->kind;
	r->started_at_ms = fl_wall_ms();
	{
		char q[200];

		snprintf(j->log_context, sizeof(j->log_context), "tenant '%s'",
		         fl_err_quote(q, sizeof(q), r->tenant_id, strlen(r->tenant_id)));
		fl_err_quote(j->rollout_shown, sizeof(j->rollout_shown), j->rollout_id,
		             strlen(j->rollout_id));
	}
	j->log.level = fl_log_threshold;
	j->log.sink = NULL;
	j->log.arg = NULL;
	j->log.context = j->log_context;
}

/* Ledger and trust. Returns true when the job is ready to run; false when it
 * ended here (its report, if any, made). */
static bool prepare(struct fl_worker *w, struct job *j)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_ledger_entry e;
	struct fl_verify_ctx ctx;
	const struct fl_agent_database *db;
	enum cancel_why why;
	enum fl_err rv;

	report_basics(w, j);
	if (j->refusal != NULL) {
		set_outcome(j, O_REFUSED, "too large: %s", j->refusal);
		finish(w, j, false);
		return false;
	}
	rv = fl_wire_unpack_message(&flotilla__v1__work_assignment__descriptor, FL_WIRE_STRICT,
	                            j->packed, j->len, FL_WIRE_MAX_POLL_REPLY,
	                            (ProtobufCMessage **)&j->a, err);
	pthread_mutex_lock(&w->mu);
	w->queued_bytes -= j->len;
	pthread_mutex_unlock(&w->mu);
	free(j->packed);
	j->packed = NULL;
	if (rv != FL_OK) {
		set_outcome(j, O_REFUSED, "malformed assignment: %s", err);
		finish(w, j, false);
		return false;
	}

	/* never run twice: an id in the ledger is answered with its report */
	if (fl_ledger_find(w->d.ledger, j->id, &e)) {
		if (e.finished && e.report != NULL) {
			fl_logger_warn(
			    &j->log, NULL,
			    "assignment %llu was run before: sending its report (journal id "
			    "%llu) again, running nothing",
			    (unsigned long long)j->id, (unsigned long long)e.journal_id);
			if (fl_journal_put(w->d.journal, e.journal_id, e.report, e.report_len,
			                   err) != FL_OK)
				fl_logger_error(&j->log, NULL, "%s", err);
			else if (w->d.hooks.reported)
				w->d.hooks.reported(w->d.hooks.arg);
		} else {
			fl_logger_warn(
			    &j->log, NULL,
			    "assignment %llu was started before and is not finished: running "
			    "nothing",
			    (unsigned long long)j->id);
		}
		fl_ledger_entry_fini(&e);
		return false;
	}

	if ((why = job_why(w, j)) != WHY_NONE) { /* halted or stopping already */
		canceled_outcome(j, why, "not started");
		finish(w, j, false);
		return false;
	}
	w->d.hooks.acquire(w->d.hooks.arg, &j->snap);
	j->have_snap = true;
	ctx.trusted =
	    (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])j->snap.cfg->wire.trusted_release_keys.keys;
	ctx.n_trusted = j->snap.cfg->wire.trusted_release_keys.n;
	ctx.project_id = j->snap.cfg->project_id;
	ctx.now_ms = fl_wall_ms();
	ctx.tenants = j->snap.tenants;
	ctx.ledger = w->d.ledger;
	ctx.releases = w->d.releases;
	ctx.fetch = fetch_hook;
	ctx.fetch_arg = w;
	rv = fl_verify_assignment(&ctx, j->a, &j->v, err);
	if (rv == FL_EAUTH) {
		set_outcome(j, O_REFUSED, "%s", err);
		finish(w, j, false);
		return false;
	}
	if (rv != FL_OK) {
		/* not a refusal: the agent could not decide (no release); nothing ran */
		set_outcome(j, O_BUSY, "%s", err);
		finish(w, j, false);
		return false;
	}
	if ((why = job_why(w, j)) != WHY_NONE) {
		canceled_outcome(j, why, "not started");
		finish(w, j, false);
		return false;
	}
	db = fl_agent_config_database(j->snap.cfg, j->v.tenant->server);
	j->server = fl_strdup(j->v.tenant->server);
	j->server_limit = db != NULL ? (size_t)db->max_parallel : 1;
	memcpy(j->order_hash, j->v.order->hash, 32);
	j->order_limit = j->v.wave->per_agent_parallel > 0 ? j->v.wave->per_agent_parallel
	                                                   : j->v.order->policy.per_agent_parallel;
	if (j->order_limit == 0)
		j->order_limit = 1;
	fl_logger_debug(&j->log, NULL,
	                "assignment %llu: checks passed (%s under order %.16s, release %.16s, "
	                "sequence %llu); waiting for its turn",
	                (unsigned long long)j->id, fl_verify_kind_name(j->v.kind),
	                j->v.order->hash_hex, j->v.release->release->hash,
	                (unsigned long long)j->v.release->release->sequence);
	return true;
}

/* ---- running ---- */

static void engine_opts(const struct job *j, const struct fl_agent_database *db,
                        struct fl_engine_opts *o)
{
	const struct fl_policy *p = &j->v.order->policy;

	fl_engine_opts_init(o);
	o->apply.lock_timeout_ms = p->lock_timeout_ms;
	o->apply.statement_timeout_ms = p->statement_timeout_ms;
	o->apply.retry = p->retry;
	if (db != NULL)
		o->conn.connect_timeout_ms = db->connect_timeout_ms;
	if (p->max_duration_ms > 0 && o->lock_wait_ms > p->max_duration_ms)
		o->lock_wait_ms = p->max_duration_ms;
}

/* What the engine's error makes of the whole assignment. Busy (another
 * deployer holds the migration lock, or the tables a migration needs stayed
 * locked past the retries): nothing of that migration applied, tried again
 * later, not a failure the wave's budget counts. */
static int outcome_for(enum fl_err rv)
{
	switch (rv) {
	case FL_EVERIFY:
		return O_VERIFY_FAILED;
	case FL_ELOCKED:
	case FL_EBUSY:
	case FL_ECONNLOST: /* and no reconnecting: the next try re-reads the history */
		return O_BUSY;
	case FL_ECANCELED:
		return O_CANCELED;
	default:
		return O_FAILED;
	}
}

static void run_health(struct job *j, const char *url, const struct fl_agent_database *db)
{
	const struct fl_policy *p = &j->v.order->policy;
	struct fl_conn_opts co;
	struct fl_health *h;
	size_t failed, inconclusive = 0;
	enum cancel_why why;

	if (p->n_checks == 0)
		return;
	fl_conn_opts_init(&co);
	if (db != NULL)
		co.connect_timeout_ms = db->connect_timeout_ms;
	co.log = &j->log;
	h = fl_health_new(&co, j->snap.cfg->health_check_role);
	pthread_mutex_lock(&j->mu);
	j->health = h;
	pthread_mutex_unlock(&j->mu);
	if (job_why(j->w, j) != WHY_NONE)
		fl_health_cancel(h);
	j->report.health = fl_calloc(p->n_checks, sizeof(*j->report.health));
	j->report.n_health = p->n_checks;
	failed = fl_health_run(h, url, p->checks, p->n_checks, j->report.health, &inconclusive);
	pthread_mutex_lock(&j->mu);
	j->health = NULL;
	pthread_mutex_unlock(&j->mu);
	fl_health_free(h);
	for (size_t i = 0; i < j->report.n_health; i++)
		if (!j->report.health[i].ok)
			fl_logger_warn(&j->log, j->report.health[i].name, "health check %s: %s",
			               j->report.health[i].inconclusive ? "inconclusive" : "failed",
			               j->report.health[i].message);
	/* Checks stopped by a halt or a shutdown are not inconclusive: that
	 * pauses the wave for a human, and nobody needs to look at a tenant
	 * whose checks were merely canceled. CANCELED gets it checked again. */
	why = job_why(j->w, j);
	if (failed > 0)
		set_outcome(j, O_HEALTH_FAILED, "%zu of %zu health checks failed", failed,
		            p->n_checks);
	else if (inconclusive > 0 && why != WHY_NONE)
		canceled_outcome(j, why, "health checks");
	else if (inconclusive > 0)
		set_outcome(j, O_INCONCLUSIVE, "%zu of %zu health checks could not run",
		            inconclusive, p->n_checks);
}

static bool run_backup(struct job *j, const struct fl_agent_database *db)
{
	const struct fl_agent_config *cfg = j->snap.cfg;
	struct fl_backup_spec spec;
	struct fl_backup *b;
	char err[FL_ERRBUF_SIZE] = "", path[4096], *url = NULL;
	enum fl_err rv;

	if (cfg->backup_command == NULL) {
		set_outcome(j, O_BACKUP_FAILED,
		            "wave '%s' asks for a backup and this agent has no backup.command",
		            j->v.wave->name);
		return false;
	}
	if ((rv = fl_tenants_url(db, j->v.tenant->database, NULL, &url, err)) != FL_OK) {
		set_outcome(j, O_BACKUP_FAILED, "backup: %s", err);
		return false;
	}
	spec.command = cfg->backup_command;
	spec.dir = cfg->backup_dir;
	spec.timeout_ms = cfg->backup_timeout_ms;
	spec.url = url;
	spec.tenant_id = j->v.tenant->id;
	spec.schema = j->v.tenant->schema;
	spec.release_hex = j->v.release->release->hash;
	b = fl_backup_new();
	pthread_mutex_lock(&j->mu);
	j->backup = b;
	pthread_mutex_unlock(&j->mu);
	if (job_why(j->w, j) != WHY_NONE)
		fl_backup_cancel(b);
	rv = fl_backup_run(b, &spec, &j->log, path, err);
	pthread_mutex_lock(&j->mu);
	j->backup = NULL;
	pthread_mutex_unlock(&j->mu);
	fl_backup_free(b);
	fl_tenants_url_free(url);
	if (rv == FL_OK) {
		fl_logger_info(&j->log, NULL, "backup written to '%s'", path);
		return true;
	}
	if (rv == FL_ECANCELED)
		canceled_outcome(j, job_why(j->w, j), "backup");
	else
		set_outcome(j, O_BACKUP_FAILED, "%s", err);
	return false;
}

/* Whether every migration of the plan up to and including target is
 * applied. A failed one (a failed row in the history, as a migration
 * canceled or failing leaves) is not: the tenant is not at the target. */
static bool at_target(const struct fl_plan *plan, const char *target)
{
	for (size_t i = 0; i < plan->count; i++) {
		if (plan->entries[i].state != FL_MSTATE_APPLIED)
			return false;
		if (strcmp(plan->entries[i].migration->id, target) == 0)
			break;
	}
	return true;
}

/* A tenant's database that cannot be reached just now (restarting, in
 * recovery, out of connection slots, a network blip) is tried again within
 * the job, CONNECT_TRIES times in all with a doubling pause; still not,
 * the work is BUSY: nothing ran, and the coordinator sends it again later.
 * A refused login (FL_EAUTH) or a database that does not exist is no blip. */
#define CONNECT_TRIES    5
#define CONNECT_PAUSE_MS 250 /* then 500, 1000, 2000: about 4 s in all */

static bool connect_blip(enum fl_err rv, const char *err)
{
	return rv == FL_ECONNECT && strstr(err, "\" does not exist") == NULL;
}

/* Sleep ms, or less when the job is canceled meanwhile. */
static void job_nap(struct job *j, int64_t ms)
{
	int64_t until = fl_now_ms() + ms, left;

	while (job_why(j->w, j) == WHY_NONE && (left = until - fl_now_ms()) > 0)
		(void)poll(NULL, 0, left > 50 ? 50 : (int)left);
}

/* A session the job's cancel reaches. */
static struct fl_session *session_start(struct job *j, const struct fl_engine_opts *opts)
{
	struct fl_session *s = fl_session_new(opts, &j->log);

	fl_session_on_event(s, on_event, j);
	pthread_mutex_lock(&j->mu);
	j->session = s;
	pthread_mutex_unlock(&j->mu);
	if (job_why(j->w, j) != WHY_NONE)
		fl_session_cancel(s);
	return s;
}

static void session_end(struct job *j, struct fl_session *s)
{
	pthread_mutex_lock(&j->mu);
	j->session = NULL;
	pthread_mutex_unlock(&j->mu);
	fl_session_close(s);
	fl_session_free(s);
}

/* Open the tenant (connect, lock, read the history) into *out, which the
 * caller ends with session_end whatever this returns. */
static enum fl_err session_open(struct job *j, const char *url, const struct fl_engine_opts *opts,
                                struct fl_session **out, char *err)
{
	enum fl_err rv;

	for (int tries = 1;; tries++) {
		*out = session_start(j, opts);
		rv = fl_session_open(*out, url, &j->v.release->release->set, true, err);
		if (!connect_blip(rv, err) || tries == CONNECT_TRIES)
			return rv;
		fl_logger_warn(&j->log, NULL, "%s: trying again", err);
		session_end(j, *out);
		/* a cancel meanwhile: the next open says so */
		job_nap(j, (int64_t)CONNECT_PAUSE_MS << (tries - 1));
	}
}

/* APPLY or REVERT on one engine session. */
static void run_migrations(struct job *j, const char *url, const struct fl_agent_database *db)
{
	struct fl_engine_opts opts;
	struct fl_revert_plan rp;
	struct fl_session *s;
	char err[FL_ERRBUF_SIZE] = "";
	bool worked = false, opened = false;
	enum cancel_why why;
	enum fl_err rv;

	engine_opts(j, db, &opts);
	opts.conn.log = &j->log;
	rv = session_open(j, url, &opts, &s, err);
	if (rv != FL_OK) {
		if (rv == FL_ECANCELED)
			canceled_outcome(j, job_why(j->w, j), "before it started");
		else if (rv == FL_ELOCKED)
			set_outcome(j, O_BUSY, "%s", err);
		else if (connect_blip(rv, err))
			set_outcome(j, O_BUSY, "the database is unreachable (tried %d times): %s",
			            CONNECT_TRIES, err);
		else
			set_outcome(j, O_FAILED, "cannot open the tenant: %s", err);
		goto out;
	}
	opened = true;
	/* step two of the trust checks: the tenant's history */
	if (fl_verify_history(&j->v, fl_session_plan(s), j->w->d.ledger, &rp, err) != FL_OK) {
		set_outcome(j, O_REFUSED, "%s", err);
		goto out;
	}
	if (j->v.kind == K_APPLY ? at_target(fl_session_plan(s), j->v.target) : rp.nothing) {
		set_outcome(j, O_SKIPPED, "nothing to %s",
		            j->v.kind == K_APPLY ? "apply: at the target already" : "revert");
		goto out;
	}
	if ((rv = fl_session_check_failed(s, err)) != FL_OK) {
		set_outcome(j, O_FAILED, "%s", err);
		goto out;
	}
	if (j->v.wave->backup && !run_backup(j, db))
		goto out;
	worked = true;
	if (j->v.kind == K_APPLY) {
		struct fl_deploy_summary sum;

		rv = fl_deploy(s, j->v.target, &sum, err);
		if (rv == FL_OK)
			set_outcome(j, O_APPLIED, NULL);
	} else {
		size_t reverted = 0;

		rv = fl_rollback(s, rp.to, rp.steps, &reverted, err);
		if (rv == FL_OK)
			set_outcome(j, O_ROLLED_BACK, NULL);
	}
	if (rv != FL_OK) {
		why = job_why(j->w, j);
		if (rv == FL_ECANCELED && why != WHY_NONE)
			canceled_outcome(j, why, err);
		else
			set_outcome(j, outcome_for(rv), "%s", err);
	}
out:
	/* the tenant as it is now, from a fresh read: the history is the truth.
	 * On the session that did the work, still locked (no connection more
	 * per tenant); on a new one when that one is canceled or broken. */
	if (opened && !fl_session_canceled(s) && fl_session_refresh(s, err) == FL_OK) {
		fl_report_state_from_session(s, &j->report.state);
		j->report.have_state = true;
	}
	session_end(j, s);
	if (opened) {
		if (!j->report.have_state)
			fl_report_read_tenant(url, &opts, &j->log, &j->report.state);
		j->report.have_state = true;
		if (j->w->d.hooks.tenant_read)
			j->w->d.hooks.tenant_read(j->w->d.hooks.arg, j->v.tenant->id,
			                          &j->report.state);
	}
	if (worked && j->report.outcome == O_APPLIED) {
		/* stopped between the deploy and the checks: not checked, so not
		 * APPLIED (that would let the tenant through unchecked) */
		why = job_why(j->w, j);
		if (why != WHY_NONE && j->v.order->policy.n_checks > 0)
			canceled_outcome(j, why, "applied; health checks not run");
		else if (why == WHY_NONE)
			run_health(j, url, db);
	}
}

static void run(struct fl_worker *w, struct job *j)
{
	const struct fl_agent_database *db;
	struct fl_ledger_start ls;
	char err[FL_ERRBUF_SIZE] = "", *url = NULL;
	enum cancel_why why;
	enum fl_err rv;

	if ((why = job_why(w, j)) != WHY_NONE) {
		canceled_outcome(j, why, "not started");
		finish(w, j, false);
		return;
	}
	/* recorded, fsync'd, before any SQL runs */
	memset(&ls, 0, sizeof(ls));
	ls.assignment_id = j->id;
	memcpy(ls.order_hash, j->v.order->hash, 32);
	memcpy(ls.release_hash, j->v.release->hash, 32);
	ls.release_sequence = j->v.release->release->sequence;
	ls.tenant_id = j->v.tenant->id;
	ls.rollout_id = j->rollout_id;
	ls.kind = j->v.kind;
	ls.target = j->v.target ? j->v.target : "";
	ls.started_at_ms = j->report.started_at_ms;
	ls.expires_at_ms = j->v.order->expires_at_ms;
	rv = fl_ledger_start(w->d.ledger, &ls, err);
	if (rv == FL_ESTATE) /* another copy of it got there first */
		return;
	if (rv == FL_EAUTH) { /* the tenant moved on while this waited for it */
		set_outcome(j, O_REFUSED, "%s", err);
		finish(w, j, false);
		return;
	}
	if (rv != FL_OK) {
		set_outcome(j, O_FAILED, "cannot record the assignment in the ledger: %s", err);
		finish(w, j, false);
		return;
	}
	fl_logger_info(&j->log, NULL, "assignment %llu: %s%s%s (rollout '%s', wave '%s')",
	               (unsigned long long)j->id, fl_verify_kind_name(j->v.kind),
	               j->v.target ? " to " : "", j->v.target ? j->v.target : "", j->rollout_shown,
	               j->v.wave->name);

	db = fl_agent_config_database(j->snap.cfg, j->v.tenant->server);
	if (db == NULL ||
	    fl_tenants_url(db, j->v.tenant->database, j->v.tenant->schema, &url, err) != FL_OK) {
		set_outcome(j, O_FAILED, "cannot reach the tenant: %s",
		            db == NULL ? "its database server is no longer configured" : err);
		goto out;
	}
	if (j->v.kind == K_CHECK) {
		set_outcome(j, O_HEALTHY, NULL);
		run_health(j, url, db);
		if (job_why(w, j) != WHY_NONE && j->report.outcome != O_HEALTHY)
			canceled_outcome(j, job_why(w, j), "health checks");
	} else {
		run_migrations(j, url, db);
	}
out:
	fl_tenants_url_free(url);
	finish(w, j, true);
}

/* ---- threads ---- */

/* A job may start when its server and its order have room, no job of its
 * tenant came before it and is still in the pool (whatever its state: work
 * for one tenant runs in the order it came, so a CHECK or REVERT never
 * overtakes the APPLY before it, not even one still waiting for its own
 * order's slot or being checked), and no other job works on its tenant (one
 * connection per tenant at work; two would only wait on each other's
 * migration lock). Pool mutex held. */
static bool limits_allow(struct fl_worker *w, const struct job *j)
{
	bool earlier = true;

	for (const struct job *o = w->jobs; o != NULL; o = o->next) {
		if (o == j) {
			earlier = false;
			continue;
		}
		if (earlier && strcmp(o->tenant_id, j->tenant_id) == 0)
			return false;
		if (o->state == J_RUNNING && o->v.tenant != NULL &&
		    strcmp(o->v.tenant->id, j->v.tenant->id) == 0)
			return false;
	}
	return count_of(w, j->server, NULL)->n < j->server_limit &&
	       count_of(w, NULL, j->order_hash)->n < j->order_limit;
}

static void remove_job(struct fl_worker *w, struct job *j)
{
	struct job **p;

	for (p = &w->jobs; *p != NULL; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			w->n_jobs--;
			break;
		}
	pthread_cond_broadcast(&w->done);
	pthread_cond_broadcast(&w->work);
}

static void drop_snapshot(struct fl_worker *w, struct job *j)
{
	if (j->have_snap) {
		w->d.hooks.release(w->d.hooks.arg, &j->snap);
		j->have_snap = false;
	}
}

static void *worker_main(void *arg)
{
	struct fl_worker *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct job *j, *pick = NULL;

		for (j = w->jobs; j != NULL && pick == NULL; j = j->next)
			if (j->state == J_READY && (j->why != WHY_NONE || limits_allow(w, j)))
				pick = j;
		if (pick != NULL) {
			pick->state = J_RUNNING;
			count_of(w, pick->server, NULL)->n++;
			count_of(w, NULL, pick->order_hash)->n++;
			if (pick->v.order->policy.max_duration_ms > 0)
				pick->deadline_ms =
				    fl_now_ms() + pick->v.order->policy.max_duration_ms;
			pthread_mutex_unlock(&w->mu);
			run(w, pick);
			pthread_mutex_lock(&w->mu);
			count_of(w, pick->server, NULL)->n--;
			count_of(w, NULL, pick->order_hash)->n--;
			remove_job(w, pick);
			pthread_mutex_unlock(&w->mu);
			drop_snapshot(w, pick);
			free_job(pick);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		for (j = w->jobs; j != NULL && pick == NULL; j = j->next)
			if (j->state == J_NEW)
				pick = j;
		if (pick != NULL) {
			bool ready;

			pick->state = J_PREPARING;
			pthread_mutex_unlock(&w->mu);
			ready = prepare(w, pick);
			pthread_mutex_lock(&w->mu);
			if (ready) {
				pick->state = J_READY;
				pthread_cond_broadcast(&w->work);
				continue;
			}
			remove_job(w, pick);
			pthread_mutex_unlock(&w->mu);
			drop_snapshot(w, pick);
			free_job(pick);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (w->stopping && w->jobs == NULL)
			break;
		pthread_cond_wait(&w->work, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Cancels work past its deadline (the policy's max_duration). */
static void *watchdog_main(void *arg)
{
	struct fl_worker *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->watch_stop) {
		struct timespec ts;
		int64_t now = fl_now_ms();

		for (struct job *j = w->jobs; j != NULL; j = j->next)
			if (j->state == J_RUNNING && j->deadline_ms != 0 && now >= j->deadline_ms &&
			    j->why == WHY_NONE) {
				fl_logger_warn(
				    &j->log, NULL,
				    "assignment %llu: past the policy's max_duration: canceling",
				    (unsigned long long)j->id);
				cancel_job(j, WHY_DEADLINE, NULL);
			}
		ts = fl_timespec_in(CLOCK_REALTIME, WATCH_MS);
		pthread_cond_timedwait(&w->watch, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct fl_worker *fl_worker_new(const struct fl_worker_deps *deps)
{
	struct fl_worker *w = fl_calloc(1, sizeof(*w));
	sigset_t all, old;

	w->d = *deps;
	w->agent_id = fl_strdup(deps->agent_id);
	w->d.agent_id = w->agent_id;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->done, NULL);
	pthread_cond_init(&w->watch, NULL);
	w->n_threads = deps->threads > 0 ? deps->threads : 1;
	w->threads = fl_calloc(w->n_threads, sizeof(pthread_t));
	/* workers take no signals: the agent's signal thread does */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (size_t i = 0; i < w->n_threads; i++)
		if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0)
			abort();
	if (pthread_create(&w->watchdog, NULL, watchdog_main, w) != 0)
		abort();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return w;
}

/* s cut to at most max bytes, on a UTF-8 character's boundary (heap). */
static char *cut_name(const char *s, size_t max)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	return fl_strndup(s != NULL ? s : "", n);
}

/* Why a is refused before anything of it is kept, or NULL. */
static const char *too_large(const Flotilla__V1__WorkAssignment *a, char *why, size_t size)
{
	if (a->signed_order.len > FL_WIRE_MAX_ORDER)
		snprintf(why, size, "a signed order of %zu bytes (at most %u)", a->signed_order.len,
		         FL_WIRE_MAX_ORDER);
	else if (a->signed_rollback_order.len > FL_WIRE_MAX_ORDER)
		snprintf(why, size, "a signed rollback order of %zu bytes (at most %u)",
		         a->signed_rollback_order.len, FL_WIRE_MAX_ORDER);
	else if (a->rollout_id != NULL && strlen(a->rollout_id) > NAME_MAX_)
		snprintf(why, size, "a rollout id of %zu bytes (at most %d)", strlen(a->rollout_id),
		         NAME_MAX_);
	else if (a->tenant_id != NULL && strlen(a->tenant_id) > NAME_MAX_)
		snprintf(why, size, "a tenant id of %zu bytes (at most %d)", strlen(a->tenant_id),
		         NAME_MAX_);
	else if (a->target_migration_id != NULL && strlen(a->target_migration_id) > NAME_MAX_)
		snprintf(why, size, "a target of %zu bytes (at most %d)",
		         strlen(a->target_migration_id), NAME_MAX_);
	else
		return NULL;
	return why;
}

enum fl_err fl_worker_submit(struct fl_worker *w, const Flotilla__V1__WorkAssignment *a,
                             bool *taken)
{
	char why[160], q[128];
	const char *refusal = too_large(a, why, sizeof(why));
	struct job *j, **tail;
	size_t len = refusal == NULL ? protobuf_c_message_get_packed_size(&a->base) : 0;

	if (taken != NULL)
		*taken = false;
	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mu);
		return FL_ECANCELED;
	}
	for (j = w->jobs; j != NULL; j = j->next)
		if (j->id == a->assignment_id) {
			pthread_mutex_unlock(&w->mu);
			return FL_OK; /* sent again while we work on it */
		}
	if (w->n_jobs >= w->n_threads * QUEUE_FACTOR || w->queued_bytes + len > QUEUED_BYTES_MAX) {
		size_t held = w->n_jobs, bytes = w->queued_bytes;

		pthread_mutex_unlock(&w->mu);
		fl_log_warn("agent",
		            "assignment %llu for tenant '%s': the agent is full (%zu assignments "
		            "held, %zu bytes not checked yet): dropped; the coordinator sends it "
		            "again",
		            (unsigned long long)a->assignment_id,
		            fl_err_quote(q, sizeof(q), a->tenant_id ? a->tenant_id : "",
		                         a->tenant_id ? strlen(a->tenant_id) : 0),
		            held, bytes);
		return FL_OK;
	}
	j = fl_calloc(1, sizeof(*j));
	j->w = w;
	pthread_mutex_init(&j->mu, NULL);
	j->id = a->assignment_id;
	j->rollout_id = cut_name(a->rollout_id, NAME_MAX_);
	j->tenant_id = cut_name(a->tenant_id, NAME_MAX_);
	j->kind = (int)a->kind;
	if (refusal != NULL) { /* refused as it came: nothing else of it kept */
		j->refusal = fl_strdup(refusal);
	} else {
		j->packed = fl_malloc(len ? len : 1);
		j->len = protobuf_c_message_pack(&a->base, j->packed);
		w->queued_bytes += j->len;
	}
	j->state = J_NEW;
	for (tail = &w->jobs; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = j;
	w->n_jobs++;
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->mu);
	if (taken != NULL)
		*taken = true;
	return FL_OK;
}

size_t fl_worker_halt(struct fl_worker *w, const char *rollout_id, const char *reason)
{
	size_t n = 0;

	pthread_mutex_lock(&w->mu);
	for (struct job *j = w->jobs; j != NULL; j = j->next) {
		if (strcmp(j->rollout_id, rollout_id) != 0 || j->why != WHY_NONE)
			continue;
		/* running with on_halt: finish, it finishes; everything else stops */
		if (j->state == J_RUNNING && j->v.order != NULL &&
		    j->v.order->policy.on_halt == FL_ON_HALT_FINISH) {
			snprintf(j->why_text, sizeof(j->why_text), "%s", reason);
			continue;
		}
		cancel_job(j, WHY_HALT, reason);
		n++;
	}
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->mu);
	{
		char qr[128], qw[256];

		/* a coordinator may name any rollout: only what stopped work is worth
		 * a line at the default level */
		fl_log_at(n > 0 ? FL_LOG_WARN : FL_LOG_DEBUG, "agent",
		          "rollout '%s' halted (%s): %zu assignment%s stopped",
		          fl_err_quote(qr, sizeof(qr), rollout_id, strlen(rollout_id)),
		          fl_err_quote(qw, sizeof(qw), reason, strlen(reason)), n,
		          n == 1 ? "" : "s");
	}
	return n;
}

size_t fl_worker_free_slots(struct fl_worker *w)
{
	size_t n;

	pthread_mutex_lock(&w->mu);
	n = w->stopping || w->n_jobs >= w->n_threads ? 0 : w->n_threads - w->n_jobs;
	pthread_mutex_unlock(&w->mu);
	return n;
}

void fl_worker_running(struct fl_worker *w, uint64_t **ids, size_t *n)
{
	size_t i = 0;

	pthread_mutex_lock(&w->mu);
	*ids = fl_calloc(w->n_jobs + 1, sizeof(uint64_t));
	for (struct job *j = w->jobs; j != NULL; j = j->next)
		(*ids)[i++] = j->id;
	*n = i;
	pthread_mutex_unlock(&w->mu);
}

bool fl_worker_idle(struct fl_worker *w)
{
	bool idle;

	pthread_mutex_lock(&w->mu);
	idle = w->jobs == NULL;
	pthread_mutex_unlock(&w->mu);
	return idle;
}

static void cancel_all(struct fl_worker *w)
{
	for (struct job *j = w->jobs; j != NULL; j = j->next)
		cancel_job(j, WHY_SHUTDOWN, NULL);
}

void fl_worker_cancel_all(struct fl_worker *w)
{
	pthread_mutex_lock(&w->mu);
	cancel_all(w);
	pthread_mutex_unlock(&w->mu);
}

void fl_worker_shutdown(struct fl_worker *w, bool cancel, int64_t timeout_ms)
{
	struct timespec ts;
	int64_t deadline = fl_now_ms() + timeout_ms;

	pthread_mutex_lock(&w->mu);
	if (w->threads == NULL) {
		pthread_mutex_unlock(&w->mu);
		return;
	}
	w->stopping = true;
	/* work not started: canceled now, whatever the mode */
	for (struct job *j = w->jobs; j != NULL; j = j->next)
		if (j->state == J_NEW || j->state == J_READY)
			cancel_job(j, WHY_SHUTDOWN, NULL);
	if (cancel)
		cancel_all(w);
	pthread_cond_broadcast(&w->work);
	while (w->jobs != NULL) {
		if (!cancel && fl_now_ms() >= deadline) {
			fl_log_warn("agent",
			            "shutdown.timeout passed with %zu assignment%s running: "
			            "canceling",
			            w->n_jobs, w->n_jobs == 1 ? "" : "s");
			cancel_all(w);
			cancel = true;
		}
		ts = fl_timespec_in(CLOCK_REALTIME, 1000);
		pthread_cond_timedwait(&w->done, &w->mu, &ts);
	}
	w->watch_stop = true;
	pthread_cond_broadcast(&w->watch);
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	pthread_join(w->watchdog, NULL);
	pthread_mutex_lock(&w->mu);
	free(w->threads);
	w->threads = NULL;
	pthread_mutex_unlock(&w->mu);
}

void fl_worker_free(struct fl_worker *w)
{
	if (w == NULL)
		return;
	fl_worker_shutdown(w, true, 0);
	for (size_t i = 0; i < w->n_counts; i++)
		free(w->counts[i].server);
	free(w->counts);
	free(w->agent_id);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->done);
	pthread_cond_destroy(&w->watch);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* ---- after a crash ---- */

void fl_worker_recover(const struct fl_worker_deps *d)
{
	struct fl_agent_snapshot snap;
	uint64_t *ids = NULL;
	size_t n = 0, i;
	char err[FL_ERRBUF_SIZE] = "";

	/* reports the ledger holds and the journal never had (a crash, or a
	 * failed write, between the two) */
	fl_ledger_reports_after(d->ledger, fl_journal_low(d->journal), &ids, &n);
	for (i = 0; i < n; i++) {
		struct fl_ledger_entry e;

		if (!fl_ledger_find(d->ledger, ids[i], &e))
			continue;
		if (!fl_journal_lost(d->journal, e.journal_id)) {
			fl_ledger_entry_fini(&e);
			continue;
		}
		if (fl_journal_put(d->journal, e.journal_id, e.report, e.report_len, err) != FL_OK)
			fl_log_error("agent", "assignment %llu: %s", (unsigned long long)ids[i],
			             err);
		fl_ledger_entry_fini(&e);
	}
	free(ids);

	/* started and never finished: CANCELED, with the history as it is */
	fl_ledger_unfinished(d->ledger, &ids, &n);
	if (n == 0) {
		free(ids);
		return;
	}
	d->hooks.acquire(d->hooks.arg, &snap);
	for (i = 0; i < n; i++) {
		struct fl_ledger_entry e;
		struct fl_report r;
		struct fl_buf packed = FL_BUF_INIT;
		const struct fl_tenant *t;
		const struct fl_agent_database *db;
		char *url = NULL;
		uint64_t jid;

		if (!fl_ledger_find(d->ledger, ids[i], &e))
			continue;
		fl_report_init(&r);
		r.agent_id = fl_strdup(d->agent_id);
		r.tenant_id = fl_strdup(e.tenant_id);
		r.rollout_id = fl_strdup(e.rollout_id);
		r.assignment_id = e.assignment_id;
		r.kind = e.kind;
		r.outcome = O_CANCELED;
		snprintf(
		    r.message, sizeof(r.message),
		    "the agent stopped while this ran (%zu migration%s %s before): the tenant's "
		    "history is as it is now",
		    e.kind == K_REVERT ? e.n_reverted : e.n_applied,
		    (e.kind == K_REVERT ? e.n_reverted : e.n_applied) == 1 ? "" : "s",
		    e.kind == K_REVERT ? "reverted" : "applied");
		r.started_at_ms = e.started_at_ms;
		for (size_t k = 0; k < e.n_applied; k++)
			fl_report_add_migration(&r, e.applied[k])->outcome = O_APPLIED;
		for (size_t k = 0; k < e.n_reverted; k++)
			fl_report_add_migration(&r, e.reverted[k])->outcome = O_ROLLED_BACK;
		t = fl_tenants_find(snap.tenants, e.tenant_id);
		db = t ? fl_agent_config_database(snap.cfg, t->server) : NULL;
		if (e.kind != K_CHECK && db != NULL &&
		    fl_tenants_url(db, t->database, t->schema, &url, err) == FL_OK) {
			struct fl_engine_opts opts;

			fl_engine_opts_init(&opts);
			opts.conn.connect_timeout_ms = db->connect_timeout_ms;
			fl_report_read_tenant(url, &opts, NULL, &r.state);
			r.have_state = true;
			if (d->hooks.tenant_read)
				d->hooks.tenant_read(d->hooks.arg, e.tenant_id, &r.state);
		}
		fl_tenants_url_free(url);
		r.finished_at_ms = fl_wall_ms();
		jid = fl_journal_reserve(d->journal);
		if (fl_report_pack(&r, jid, &packed, err) != FL_OK ||
		    fl_ledger_finish(d->ledger, e.assignment_id, O_CANCELED, r.finished_at_ms, jid,
		                     packed.data, packed.len, err) != FL_OK) {
			fl_journal_unreserve(d->journal, jid);
			fl_log_error("agent", "assignment %llu: %s",
			             (unsigned long long)e.assignment_id, err);
		} else if (fl_journal_put(d->journal, jid, packed.data, packed.len, err) != FL_OK)
			fl_log_error("agent", "assignment %llu: %s",
			             (unsigned long long)e.assignment_id, err);
		else
			fl_log_warn(e.tenant_id,
			            "assignment %llu was running when the agent stopped: reported "
			            "canceled",
			            (unsigned long long)e.assignment_id);
		fl_buf_fini(&packed);
		fl_report_fini(&r);
		fl_ledger_entry_fini(&e);
	}
	d->hooks.release(d->hooks.arg, &snap);
	free(ids);
}
