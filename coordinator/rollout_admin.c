/*
 * The rollout_* admin commands (rollout_admin.h) over the scheduler's model
 * (scheduler_int.h).
 *
 * Replies are protobuf structs built in an arena the reply owns: every
 * allocation for one reply is listed and freed together.
 *
 * A plan (rollout_plan, and rollout_start before it commits to anything)
 * takes the selection from the store (tenants not gone, of agents not
 * revoked, that the order's selector takes), computes waves (waves.h),
 * and compares each tenant's head with the release: tenants at the target
 * are skipped, the others need the release's migrations after their head up
 * to the target; those are what the plan lists, lints, and checks for
 * down.sql.
 */
#include "rollout_admin.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "keys.h"
#include "lint.h"
#include "log.h"
#include "mem.h"
#include "order.h"
#include "release.h"
#include "scheduler_int.h"
#include "waves.h"
#include "wire.h"

#define SC(x)        FLOTILLA__V1__STATUS_CODE__STATUS_CODE_##x
#define RESULT(x)    FLOTILLA__V1__ADMIN_RESPONSE__RESULT_##x
#define CMD(x)       FLOTILLA__V1__ADMIN_REQUEST__COMMAND_##x
#define WARNINGS_MAX 100
#define LIST_DEFAULT 50
#define LIST_MAX     1000
#define ETA_SAMPLES  200
#define REASON_MAX   512

/* ---- replies: protobuf structs in the request's arena ---- */

/* One command being answered. */
struct cmd {
	struct fl_arena *a;
	Flotilla__V1__AdminResponse *resp;
	const char *subject; /* for the audit log: the rollout's id */
};

#define anew   fl_arena_alloc
#define astr   fl_arena_strdup
#define abytes fl_arena_memdup

static char *afmt(struct fl_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *afmt(struct fl_arena *a, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return astr(a, buf);
}

static void set_status(struct cmd *out, int code, const char *msg)
{
	struct fl_arena *a = out->a;
	Flotilla__V1__Status *st = out->resp->status;

	st->code = (Flotilla__V1__StatusCode)code;
	st->message = astr(a, msg);
}

static void refuse(struct cmd *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(struct cmd *out, int code, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	set_status(out, code, buf);
}

bool fl_rollout_admin_handles(Flotilla__V1__AdminRequest__CommandCase c)
{
	return c >= CMD(ROLLOUT_PLAN) && c <= CMD(ROLLOUT_RETRY);
}

static const char *state_name(int st)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&flotilla__v1__rollout_state__descriptor, st);

	/* "ROLLOUT_STATE_RUNNING" -> "running" for messages */
	static _Thread_local char buf[40];
	const char *n = v ? v->name : "?";
	size_t i = 0;

	if (strncmp(n, "ROLLOUT_STATE_", 14) == 0)
		n += 14;
	for (; n[i] && i + 1 < sizeof(buf); i++)
		buf[i] = n[i] == '_' ? ' ' : (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
	buf[i] = '\0';
	return buf;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- building messages ---- */

static Flotilla__V1__Label **labels_msg(struct fl_arena *a, const struct fl_labels *l, size_t *n)
{
	Flotilla__V1__Label **v = anew(a, (l->n ? l->n : 1) * sizeof(*v));

	for (size_t i = 0; i < l->n; i++) {
		v[i] = anew(a, sizeof(**v));
		flotilla__v1__label__init(v[i]);
		v[i]->key = astr(a, l->items[i].key);
		v[i]->value = astr(a, l->items[i].value);
	}
	*n = l->n;
	return v;
}

static Flotilla__V1__TenantSelector *selector_msg(struct fl_arena *a, const struct fl_selector *s)
{
	Flotilla__V1__TenantSelector *m = anew(a, sizeof(*m));

	flotilla__v1__tenant_selector__init(m);
	m->labels = labels_msg(a, &s->labels, &m->n_labels);
	m->n_tenant_ids = s->n_tenant_ids;
	m->tenant_ids = anew(a, (s->n_tenant_ids ? s->n_tenant_ids : 1) * sizeof(char *));
	for (size_t i = 0; i < s->n_tenant_ids; i++)
		m->tenant_ids[i] = astr(a, s->tenant_ids[i]);
	m->all = s->all;
	return m;
}

/* Counts per wave and state, for rollouts that are not in memory. */
struct counts {
	size_t n_w;
	uint32_t (*c)[FL_SCHED_TENANT_STATES];
};

static void count_cb(void *arg, uint32_t wave, int state, uint32_t count)
{
	struct counts *c = arg;

	if (wave < c->n_w && state > 0 && state < FL_SCHED_TENANT_STATES)
		c->c[wave][state] += count;
}

/* "01:00 UTC (in 3h12m)": the opening wait minutes after the minute now_ms
 * falls in, and how long until then (rounded up to a minute). */
static void next_opening(int64_t now_ms, int wait, char *buf, size_t n)
{
	int64_t at = (now_ms / 60000 + wait) * 60000, in = (at - now_ms + 59999) / 60000;
	int m = (int)((at / 60000) % 1440);

	if (in >= 60)
		snprintf(buf, n, "%02d:%02d UTC (in %" PRId64 "h%02" PRId64 "m)", m / 60, m % 60,
		         in / 60, in % 60);
	else
		snprintf(buf, n, "%02d:%02d UTC (in %" PRId64 "m)", m / 60, m % 60, in);
}

/* Why the current wave waits, when something beyond work in progress holds it. */
static const char *waiting_reason(struct fl_arena *a, const struct sched_rollout *r,
                                  const struct sched_wave *w, int64_t now_ms)
{
	int minute = (int)((now_ms / 60000) % 1440), wait = 0;
	uint32_t windowed = 0, pending = 0;
	char next[64];

	if (!r->attached || r->row.state != RS_RUNNING || w->row.state != WS_RUNNING)
		return NULL;
	for (size_t i = 0; i < r->n_t; i++) {
		const struct sched_tenant *t = &r->t[i];
		int m;

		if (t->row.wave != w->row.idx ||
		    (t->row.state != FL_SCHED_PENDING && t->row.state != FL_SCHED_BUSY))
			continue;
		pending++;
		if ((m = fl_policy_next_start(&r->order->policy, &t->row.labels, minute)) > 0) {
			windowed++;
			if (wait == 0 || m < wait)
				wait = m;
		}
	}
	if (windowed == 0)
		return NULL;
	next_opening(now_ms, wait, next, sizeof(next));
	if (windowed == pending)
		return afmt(
		    a,
		    "waiting for window: %u tenants may start only in a maintenance window, "
		    "next opens %s",
		    windowed, next);
	return afmt(a, "%u tenants waiting for window, next opens %s", windowed, next);
}

static Flotilla__V1__RolloutInfo *info_msg(struct fl_arena *a, const struct sched_rollout *r,
                                           const struct counts *cnt, int64_t now_ms)
{
	const struct fl_order *o = r->order;
	Flotilla__V1__RolloutInfo *m = anew(a, sizeof(*m));

	flotilla__v1__rollout_info__init(m);
	m->id = astr(a, r->row.id);
	m->release_hash.data = abytes(a, r->row.release_hash, 32);
	m->release_hash.len = 32;
	m->target_migration_id = astr(a, r->row.target_migration_id);
	m->state = (Flotilla__V1__RolloutState)r->row.state;
	m->current_wave = r->row.current_wave;
	m->policy_name = astr(a, o->policy.name);
	m->on_failure = (Flotilla__V1__FailurePolicy)(o->policy.on_failure + 1);
	m->selector = selector_msg(a, &o->selector);
	m->created_at_ms = r->row.created_at_ms;
	m->updated_at_ms = r->row.updated_at_ms;
	m->created_by = astr(a, r->row.created_by);
	m->state_reason = astr(a, r->row.state_reason);
	m->order_hash.data = abytes(a, r->row.order_hash, 32);
	m->order_hash.len = 32;
	m->project_id = astr(a, r->row.project_id);
	m->expires_at_ms = r->row.expires_at_ms;
	m->tenants_total = r->row.tenants_total;
	m->signed_by = astr(a, r->row.signed_by);
	m->n_waves = r->n_w;
	m->waves = anew(a, (r->n_w ? r->n_w : 1) * sizeof(*m->waves));
	for (size_t i = 0; i < r->n_w; i++) {
		const struct sched_wave *w = &r->w[i];
		const uint32_t *c = cnt ? cnt->c[i] : w->count;
		Flotilla__V1__WaveStatus *ws = anew(a, sizeof(*ws));
		const char *why = waiting_reason(a, r, w, now_ms);
		uint32_t total = 0;

		for (int k = 1; k < FL_SCHED_TENANT_STATES; k++)
			total += c[k];
		flotilla__v1__wave_status__init(ws);
		ws->index = (uint32_t)i;
		ws->name = astr(a, w->pol->name);
		ws->state = (Flotilla__V1__WaveState)w->row.state;
		ws->gate = (Flotilla__V1__Gate)(w->pol->gate + 1);
		ws->tenants_total = total;
		ws->tenants_pending = c[FL_SCHED_PENDING] + c[FL_SCHED_BUSY];
		ws->tenants_running = c[FL_SCHED_ASSIGNED] + c[FL_SCHED_REVERTING];
		ws->tenants_applied = c[FL_SCHED_APPLIED];
		ws->tenants_failed = c[FL_SCHED_FAILED];
		ws->tenants_rolled_back = c[FL_SCHED_ROLLED_BACK];
		ws->tenants_skipped = c[FL_SCHED_SKIPPED];
		ws->tenants_unreachable = c[FL_SCHED_UNREACHABLE];
		ws->started_at_ms = w->row.started_at_ms;
		ws->finished_at_ms = w->row.finished_at_ms;
		ws->bake_until_ms = w->row.state == WS_BAKING ? w->row.bake_until_ms : 0;
		/* paused: its clock stands still, the end moves with it */
		if (ws->bake_until_ms != 0 && w->row.bake_paused_at_ms != 0 &&
		    now_ms > w->row.bake_paused_at_ms)
			ws->bake_until_ms += now_ms - w->row.bake_paused_at_ms;
		ws->state_reason = astr(a, why ? why : w->row.state_reason);
		m->waves[i] = ws;
	}
	return m;
}

/* The RolloutInfo of rollout id, live or finished; NULL with a refusal set. */
static Flotilla__V1__RolloutInfo *info_of(struct fl_scheduler *s, const char *id, int64_t now_ms,
                                          struct cmd *out, enum fl_err *e, char *errbuf)
{
	struct fl_arena *a = out->a;
	struct sched_rollout *r = fl_sched_find(s, id);
	Flotilla__V1__RolloutInfo *m;

	*e = FL_OK;
	if (r != NULL)
		return info_msg(a, r, NULL, now_ms);
	*e = fl_sched_load(s, id, false, now_ms, &r, errbuf);
	if (*e == FL_ENOENT) {
		*e = FL_OK;
		refuse(out, SC(NOT_FOUND), "no rollout '%s'", id);
		return NULL;
	}
	if (*e != FL_OK)
		return NULL;
	m = info_msg(a, r, NULL, now_ms);
	fl_sched_rollout_free(s, r);
	return m;
}

/* ---- plans ---- */

struct sel_tenant {
	char *id;
	struct fl_labels labels;
	uint8_t agent_pk[FL_STORE_KEY_LEN];
	char *head;
	long head_pos; /* in the release; -1 none; -2 not in the release */
	bool failed;   /* a failed migration blocks it, or its history could not be read */
	bool at_target;
	bool offline;
};

struct plan {
	struct sel_tenant *t;
	size_t n, cap;
	struct fl_sched_map revoked; /* agent key hex of revoked agents */
	struct fl_waves waves;
	bool have_waves;
	struct fl_store_release rel;
	bool have_rel;
	long target_pos;
	long from_pos; /* migrations (from_pos, target_pos] are applied somewhere */
	size_t n_at_target, n_blocked;
};

static void plan_fini(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->t[i].id);
		free(p->t[i].head);
		fl_labels_fini(&p->t[i].labels);
	}
	free(p->t);
	fl_sched_map_fini(&p->revoked);
	if (p->have_waves)
		fl_waves_fini(&p->waves);
	fl_store_release_fini(&p->rel);
	memset(p, 0, sizeof(*p));
}

struct sel_ctx {
	struct plan *p;
	const struct fl_order *o;
};

static bool select_cb(void *arg, const struct fl_store_tenant *t)
{
	struct sel_ctx *c = arg;
	struct plan *p = c->p;
	struct sel_tenant *x;
	char h[2 * FL_STORE_KEY_LEN + 1];

	hex(t->agent_pk, FL_STORE_KEY_LEN, h);
	if (t->gone || fl_sched_map_get(&p->revoked, h, NULL) ||
	    !fl_selector_matches(&c->o->selector, t->id, &t->labels))
		return true;
	p->t = fl_grow(p->t, &p->cap, p->n + 1, sizeof(*p->t));
	x = &p->t[p->n++];
	memset(x, 0, sizeof(*x));
	x->id = fl_strdup(t->id);
	fl_labels_copy(&x->labels, &t->labels);
	memcpy(x->agent_pk, t->agent_pk, FL_STORE_KEY_LEN);
	x->head = fl_strdup(t->head_migration_id);
	x->failed = t->failed_count > 0 || (t->read_error && t->read_error[0]);
	return true;
}

static long release_pos(const struct fl_store_release *rel, const char *id)
{
	for (size_t i = 0; i < rel->n_migrations; i++)
		if (strcmp(rel->migrations[i].id, id) == 0)
			return (long)i;
	return -2;
}

/*
 * Select, place in waves, compare with the release. Refusals (the release
 * missing...) go to out with *ok false; store failures are returned.
 */
static enum fl_err plan_build(struct fl_scheduler *s, const struct fl_order *o, int64_t now_ms,
                              struct plan *p, struct cmd *out, bool *ok, char *errbuf)
{
	struct fl_store_agent *agents = NULL;
	struct fl_waves_tenant *wt = NULL;
	struct sel_ctx sc = {p, o};
	size_t n_agents = 0;
	char rh[65];
	enum fl_err e;

	*ok = false;
	memset(p, 0, sizeof(*p));
	hex(o->release_hash, 32, rh);
	e = fl_store_release_get(s->st, o->release_hash, FL_STORE_WITH_MIGRATIONS, &p->rel, errbuf);
	if (e == FL_ENOENT) {
		refuse(out, SC(FAILED_PRECONDITION),
		       "release %.16s is not pushed to this coordinator", rh);
		return FL_OK;
	}
	if (e != FL_OK)
		return e;
	p->have_rel = true;
	if (strcmp(p->rel.project_id, o->project_id) != 0) {
		refuse(out, SC(FAILED_PRECONDITION), "release %.16s is of project '%s', not '%s'",
		       rh, p->rel.project_id, o->project_id);
		return FL_OK;
	}
	if ((p->target_pos = release_pos(&p->rel, o->target_migration_id)) < 0) {
		refuse(out, SC(FAILED_PRECONDITION), "target '%s' is not in release %.16s",
		       o->target_migration_id, rh);
		return FL_OK;
	}
	if ((e = fl_store_agent_list(s->st, true, &agents, &n_agents, errbuf)) != FL_OK)
		return e;
	for (size_t i = 0; i < n_agents; i++)
		if (agents[i].state == FL_STORE_AGENT_REVOKED) {
			char h[2 * FL_STORE_KEY_LEN + 1];

			hex(agents[i].pk, FL_STORE_KEY_LEN, h);
			fl_sched_map_put(&p->revoked, h, 1);
		}
	e = fl_store_tenant_each(s->st, "", false, select_cb, &sc, errbuf);
	if (e != FL_OK)
		goto out;
	p->from_pos = p->target_pos;
	for (size_t i = 0; i < p->n; i++) {
		struct sel_tenant *t = &p->t[i];
		struct sched_agent *sa = fl_sched_agent_find(s, t->agent_pk);

		t->head_pos = t->head[0] ? release_pos(&p->rel, t->head) : -1;
		t->at_target = t->head_pos >= p->target_pos && !t->failed;
		if (sa != NULL)
			t->offline = !sa->online;
		else
			for (size_t k = 0; k < n_agents; k++)
				if (memcmp(agents[k].pk, t->agent_pk, FL_STORE_KEY_LEN) == 0)
					t->offline = now_ms - agents[k].last_seen_at_ms >
					             s->offline_after_ms;
		if (t->at_target) {
			p->n_at_target++;
			continue;
		}
		if (t->offline || t->failed)
			p->n_blocked++;
		if ((t->head_pos < 0 ? -1 : t->head_pos) < p->from_pos)
			p->from_pos = t->head_pos < 0 ? -1 : t->head_pos;
	}
	wt = fl_calloc(p->n ? p->n : 1, sizeof(*wt));
	for (size_t i = 0; i < p->n; i++) {
		wt[i].id = p->t[i].id;
		wt[i].labels = &p->t[i].labels;
	}
	if ((e = fl_waves_compute(o->hash, &o->policy, wt, p->n, &p->waves, errbuf)) != FL_OK) {
		refuse(out, SC(INVALID_ARGUMENT), "%s", errbuf);
		e = FL_OK;
		goto out;
	}
	p->have_waves = true;
	*ok = true;
out:
	free(wt);
	fl_store_agents_free(agents, n_agents);
	return e;
}

/* Mean duration of earlier applies, from stored reports; 0 if none. */
static int64_t apply_mean_ms(struct fl_scheduler *s, size_t *samples)
{
	struct fl_store_report *rs = NULL;
	size_t n = 0;
	int64_t sum = 0;

	*samples = 0;
	if (fl_store_report_recent(s->st, FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED, ETA_SAMPLES, &rs,
	                           &n, NULL) != FL_OK)
		return 0;
	for (size_t i = 0; i < n; i++) {
		ProtobufCMessage *m = NULL;
		Flotilla__V1__Report *r;

		if (fl_wire_unpack_message(&flotilla__v1__report__descriptor, 0, rs[i].packed,
		                           rs[i].len, FL_WIRE_MAX_REPORT, &m, NULL) != FL_OK)
			continue;
		r = (Flotilla__V1__Report *)m;
		if (r->kind == FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY &&
		    r->finished_at_ms > r->started_at_ms) {
			sum += r->finished_at_ms - r->started_at_ms;
			(*samples)++;
		}
		fl_wire_free_message(m);
	}
	fl_store_reports_free(rs, n);
	return *samples ? sum / (int64_t)*samples : 0;
}

static void warn(struct fl_arena *a, Flotilla__V1__RolloutPlan *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warn(struct fl_arena *a, Flotilla__V1__RolloutPlan *m, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (m->n_warnings >= WARNINGS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	m->warnings[m->n_warnings++] = astr(a, buf);
}

/* Lint findings and contract steps among the migrations the rollout applies. */
static void lint_warnings(struct fl_scheduler *s, struct fl_arena *a, const struct plan *p,
                          Flotilla__V1__RolloutPlan *m)
{
	struct fl_store_release rel = {0};
	struct fl_release *dec = NULL;

	if (fl_store_release_get(s->st, p->rel.hash, FL_STORE_WITH_FILE, &rel, NULL) != FL_OK)
		return;
	if (fl_release_inspect(rel.file, rel.file_len, &dec, NULL) != FL_OK) {
		warn(a, m, "the release file does not decode: no lint");
		goto out;
	}
	for (long i = p->from_pos + 1; i <= p->target_pos && (size_t)i < dec->set.count; i++) {
		const struct fl_migration *mg = &dec->set.items[i];
		struct fl_lint_report lr;
		bool contract = mg->phase == FL_PHASE_CONTRACT;

		if (fl_lint_migration(mg, &lr, NULL) == FL_OK) {
			contract = contract || lr.breaking;
			for (size_t k = 0; k < lr.count; k++)
				warn(a, m, "lint: '%s' %s:%d: %s %s: %s", mg->id,
				     lr.findings[k].file, lr.findings[k].line,
				     fl_lint_severity_name(lr.findings[k].severity),
				     lr.findings[k].rule, lr.findings[k].message);
			fl_lint_report_fini(&lr);
		}
		if (contract)
			warn(
			    a, m,
			    "'%s' is a contract step: run it only once no code reads what it drops "
			    "or changes",
			    mg->id);
	}
out:
	fl_release_free(dec);
	fl_store_release_fini(&rel);
}

/* The RolloutPlan of p. */
static Flotilla__V1__RolloutPlan *plan_msg(struct fl_scheduler *s, struct fl_arena *a,
                                           const struct fl_order *o, const struct plan *p,
                                           int64_t now_ms)
{
	Flotilla__V1__RolloutPlan *m = anew(a, sizeof(*m));
	const struct fl_policy *pol = &o->policy;
	size_t samples = 0, none = 0;
	int64_t mean, eta, plain = 0, end = now_ms;
	const struct fl_labels **todo_labels;

	flotilla__v1__rollout_plan__init(m);
	m->policy_name = astr(a, pol->name);
	m->on_failure = (Flotilla__V1__FailurePolicy)(pol->on_failure + 1);
	m->warnings = anew(a, WARNINGS_MAX * sizeof(char *));
	m->tenant_count = (uint32_t)p->n;
	m->tenants_at_target = (uint32_t)p->n_at_target;
	m->tenants_blocked = (uint32_t)p->n_blocked;
	m->waves = anew(a, pol->n_waves * sizeof(*m->waves));
	m->n_waves = pol->n_waves;
	mean = apply_mean_ms(s, &samples);
	todo_labels = anew(a, (p->n ? p->n : 1) * sizeof(*todo_labels));
	for (size_t w = 0; w < pol->n_waves; w++) {
		const struct fl_wave *pw = &pol->waves[w];
		Flotilla__V1__WavePlan *wp = anew(a, sizeof(*wp));
		size_t count = p->have_waves ? p->waves.counts[w] : 0, todo = 0, listed = 0;

		flotilla__v1__wave_plan__init(wp);
		wp->index = (uint32_t)w;
		wp->name = astr(a, pw->name);
		wp->tenant_count = (uint32_t)count;
		wp->tenant_ids = anew(a, (s->plan_tenant_ids + 1) * sizeof(char *));
		for (size_t k = 0; p->have_waves && k < p->n; k++) {
			size_t i = p->waves.order[k];

			if (p->waves.wave[i] != w)
				continue;
			if (!p->t[i].at_target)
				todo_labels[todo++] = &p->t[i].labels;
			if (listed < s->plan_tenant_ids)
				wp->tenant_ids[listed++] = astr(a, p->t[i].id);
		}
		wp->n_tenant_ids = listed;
		wp->tenant_ids_truncated = listed < count;
		wp->max_parallel = pw->max_parallel;
		if (pw->max_failures >= 0)
			wp->max_failures = (uint32_t)pw->max_failures;
		else if (pw->max_failure_rate >= 0)
			wp->max_failures = (uint32_t)floor(pw->max_failure_rate * (double)count);
		wp->max_failure_rate = pw->max_failure_rate >= 0 ? pw->max_failure_rate : 0;
		wp->bake_ms = pw->bake_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)pw->bake_ms;
		wp->gate = (Flotilla__V1__Gate)(pw->gate + 1);
		m->waves[w] = wp;
		if (mean > 0 && todo > 0) {
			size_t par = pw->max_parallel < todo ? pw->max_parallel : todo;

			/* waves run one after another; a wave's windowed tenants run only
			 * while their windows are open (fl_wave_finish_ms) */
			plain += (int64_t)((todo + par - 1) / par) * mean + pw->bake_ms;
			end =
			    fl_wave_finish_ms(pol, pw->max_parallel, todo_labels, todo, end, mean) +
			    pw->bake_ms;
		}
	}
	eta = end - now_ms;
	m->eta_ms = eta;
	if (p->have_rel) {
		size_t n = p->target_pos >= p->from_pos ? (size_t)(p->target_pos - p->from_pos) : 0;

		m->migration_ids = anew(a, (n ? n : 1) * sizeof(char *));
		m->rollback_blockers = anew(a, (n ? n : 1) * sizeof(char *));
		for (long i = p->from_pos + 1; i <= p->target_pos; i++) {
			m->migration_ids[m->n_migration_ids++] = astr(a, p->rel.migrations[i].id);
			if (!p->rel.migrations[i].has_down)
				m->rollback_blockers[m->n_rollback_blockers++] =
				    astr(a, p->rel.migrations[i].id);
		}
		m->rollback_possible = m->n_rollback_blockers == 0;
	}
	if (p->n == 0)
		warn(a, m, "the order's selector matches no tenant");
	if (p->have_waves && (none = p->waves.n_none) > 0)
		warn(a, m, "%zu tenants fall in no wave: end with a wave of percent: 100", none);
	if (p->n_blocked > 0)
		warn(a, m,
		     "%zu tenants are blocked (agent offline, or a failed migration in their "
		     "history)",
		     p->n_blocked);
	if (!m->rollback_possible && pol->on_failure != FL_ON_FAILURE_HALT)
		warn(
		    a, m,
		    "on_failure is %s but %zu migrations have no down.sql (first: '%s'): the start "
		    "will be refused",
		    fl_on_failure_name(pol->on_failure), m->n_rollback_blockers,
		    m->rollback_blockers[0]);
	else if (!m->rollback_possible)
		warn(a, m, "%zu migrations have no down.sql (first: '%s'): no rollback possible",
		     m->n_rollback_blockers, m->rollback_blockers[0]);
	if (now_ms >= o->expires_at_ms)
		warn(a, m, "the order expired");
	for (size_t i = 0; i < p->n; i++) {
		struct sched_rollout *h = fl_sched_active_holder(s, p->t[i].id, NULL);

		if (h != NULL) {
			warn(a, m,
			     "tenant '%s' is in active rollout '%s': the start will be refused",
			     p->t[i].id, h->row.id);
			break;
		}
	}
	if (mean > 0)
		warn(a, m,
		     "eta: about %" PRId64 " s (earlier applies took %" PRId64
		     " ms on average, %zu timed%s)",
		     (eta + 999) / 1000, mean, samples,
		     eta > plain ? "; waiting for maintenance windows included" : "");
	if (p->have_rel && p->target_pos > p->from_pos)
		lint_warnings(s, a, p, m);
	return m;
}

/* ---- the commands ---- */

static enum fl_err cmd_plan(struct fl_scheduler *s, const Flotilla__V1__RolloutPlanRequest *rq,
                            int64_t now_ms, struct cmd *out, char *errbuf)
{
	struct fl_arena *a = out->a;
	struct fl_order *o = NULL;
	Flotilla__V1__RolloutPlanResponse *res;
	struct plan p;
	char err[FL_ERRBUF_SIZE];
	enum fl_err e;
	bool ok;

	if (fl_order_inspect(rq->signed_order.data, rq->signed_order.len, FL_ORDER_ROLLOUT, &o,
	                     err) != FL_OK) {
		refuse(out, SC(INVALID_ARGUMENT), "order: %s", err);
		return FL_OK;
	}
	if (strcmp(o->project_id, s->project_id) != 0) {
		refuse(out, SC(FAILED_PRECONDITION), "the order is for project '%s', not '%s'",
		       o->project_id, s->project_id);
		fl_order_free(o);
		return FL_OK;
	}
	e = plan_build(s, o, now_ms, &p, out, &ok, errbuf);
	if (e == FL_OK && ok) {
		res = anew(a, sizeof(*res));
		flotilla__v1__rollout_plan_response__init(res);
		res->plan = plan_msg(s, a, o, &p, now_ms);
		out->resp->result_case = RESULT(ROLLOUT_PLAN);
		out->resp->rollout_plan = res;
		set_status(out, SC(OK), "");
	}
	plan_fini(&p);
	fl_order_free(o);
	return e;
}

static const char *verify_problem(enum fl_err e)
{
	return e == FL_EPARSE ? "is malformed" : "does not verify";
}

static enum fl_err cmd_start(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                             const Flotilla__V1__RolloutStartRequest *rq, int64_t now_ms,
                             struct cmd *out, char *errbuf)
{
	struct fl_arena *a = out->a;
	struct fl_order *o = NULL;
	Flotilla__V1__RolloutStartResponse *res = anew(a, sizeof(*res));
	struct fl_store_rollout row = {0};
	struct sched_rollout *r = NULL;
	struct plan p = {0};
	char err[FL_ERRBUF_SIZE], id[32], kid[FL_KEY_ID_LEN + 1], rh[65], *other = NULL;
	enum fl_err e = FL_OK, v;
	bool ok = false, own = false, tx = false;
	uint64_t seq;

	flotilla__v1__rollout_start_response__init(res);
	res->rollout_id = astr(a, "");
	out->resp->result_case = RESULT(ROLLOUT_START);
	out->resp->rollout_start = res;
	v = fl_order_verify(rq->signed_order.data, rq->signed_order.len, FL_ORDER_ROLLOUT,
	                    (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])s->trusted, s->n_trusted,
	                    s->project_id, now_ms, &o, err);
	if (v != FL_OK) {
		refuse(out, v == FL_EPARSE ? SC(INVALID_ARGUMENT) : SC(FAILED_PRECONDITION),
		       "the rollout order %s: %s", verify_problem(v), err);
		goto empty_plan;
	}
	if ((e = fl_store_rollout_by_order(s->st, o->hash, &other, errbuf)) == FL_OK) {
		refuse(out, SC(ALREADY_EXISTS), "this order started rollout '%s' already", other);
		free(other);
		goto empty_plan;
	}
	if (e != FL_ENOENT)
		goto out;
	if ((e = plan_build(s, o, now_ms, &p, out, &ok, errbuf)) != FL_OK)
		goto out;
	if (!ok)
		goto empty_plan;
	res->plan = plan_msg(s, a, o, &p, now_ms);
	if (p.n == 0) {
		refuse(out, SC(FAILED_PRECONDITION), "the order's selector matches no tenant");
		goto out;
	}
	if (p.waves.n_none > 0) {
		refuse(out, SC(FAILED_PRECONDITION),
		       "%zu tenants fall in no wave: end with a wave of percent: 100",
		       p.waves.n_none);
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		struct sched_rollout *h = fl_sched_active_holder(s, p.t[i].id, NULL);

		if (h != NULL) {
			refuse(
			    out, SC(FAILED_PRECONDITION),
			    "tenant '%s' is in active rollout '%s': one active rollout per tenant",
			    p.t[i].id, h->row.id);
			goto out;
		}
	}
	if (o->policy.on_failure != FL_ON_FAILURE_HALT && !res->plan->rollback_possible) {
		refuse(out, SC(FAILED_PRECONDITION),
		       "on_failure is %s, but migration '%s' has no down.sql: a rollback could "
		       "not be done",
		       fl_on_failure_name(o->policy.on_failure), res->plan->rollback_blockers[0]);
		goto out;
	}
	/* Every tenant's wave is one an agent accepts (it checks labels and ids). */
	for (size_t i = 0; i < p.n; i++)
		if (fl_order_wave_check(o, p.waves.wave[i], p.t[i].id, &p.t[i].labels, err) !=
		    FL_OK) {
			refuse(out, SC(INTERNAL), "wave of tenant '%s': %s", p.t[i].id, err);
			goto out;
		}
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		goto out;
	tx = true;
	if ((e = fl_store_rollout_next_seq(s->st, &seq, errbuf)) != FL_OK)
		goto out;
	snprintf(id, sizeof(id), "r-%" PRIu64, seq);
	fl_key_id(o->signers[o->verified_by].pk, kid);
	row.id = id;
	row.created_seq = seq;
	memcpy(row.order_hash, o->hash, 32);
	row.signed_order = rq->signed_order.data;
	row.signed_order_len = rq->signed_order.len;
	memcpy(row.release_hash, o->release_hash, 32);
	row.project_id = o->project_id;
	row.target_migration_id = o->target_migration_id;
	row.state = RS_PENDING;
	row.state_reason = "";
	row.created_at_ms = row.updated_at_ms = now_ms;
	row.created_by = (char *)(who && who->key_id ? who->key_id : "");
	row.signed_by = kid;
	row.expires_at_ms = o->expires_at_ms;
	row.tenants_total = (uint32_t)p.n;
	if ((e = fl_store_rollout_add(s->st, &row, errbuf)) != FL_OK)
		goto out;
	for (size_t w = 0; w < o->policy.n_waves; w++) {
		struct fl_store_wave wr = {0};

		wr.idx = (uint32_t)w;
		wr.name = o->policy.waves[w].name;
		wr.state = WS_PENDING;
		wr.state_reason = "";
		if ((e = fl_store_wave_put(s->st, id, &wr, errbuf)) != FL_OK)
			goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		struct fl_store_rollout_tenant t = {0};

		t.tenant_id = p.t[i].id;
		t.wave = p.waves.wave[i];
		t.pos = p.waves.pos[i];
		t.state = p.t[i].at_target ? FL_SCHED_SKIPPED : FL_SCHED_PENDING;
		t.pre_head = p.t[i].head;
		t.last_error = "";
		t.updated_at_ms = now_ms;
		if ((e = fl_store_rollout_tenant_put(s->st, id, &t, errbuf)) != FL_OK ||
		    (e = fl_store_tenant_set_rollout(
		         s->st, t.tenant_id, id,
		         p.t[i].at_target ? FLOTILLA__V1__TENANT_STATE__TENANT_STATE_IDLE
		                          : FLOTILLA__V1__TENANT_STATE__TENANT_STATE_QUEUED,
		         NULL, now_ms, errbuf)) != FL_OK)
			goto out;
	}
	if ((e = fl_sched_load(s, id, true, now_ms, &r, errbuf)) != FL_OK)
		goto out;
	fl_sched_attach(s, r);
	if ((e = fl_sched_set_rollout(s, r, RS_RUNNING, "", now_ms, errbuf)) != FL_OK ||
	    (e = fl_sched_advance(s, r, now_ms, errbuf)) != FL_OK)
		goto out;
	hex(o->release_hash, 32, rh);
	fl_log_info(id, "started by %s: release %.16s to '%s' on %zu tenants in %zu waves",
	            who && who->name ? who->name : "?", rh, o->target_migration_id, p.n,
	            o->policy.n_waves);
	res->rollout_id = astr(a, id);
	out->subject = res->rollout_id;
	set_status(out, SC(OK), "");
	goto out;
empty_plan:
	res->plan = anew(a, sizeof(*res->plan));
	flotilla__v1__rollout_plan__init(res->plan);
out:
	if (res->plan == NULL) {
		res->plan = anew(a, sizeof(*res->plan));
		flotilla__v1__rollout_plan__init(res->plan);
	}
	if (tx)
		e = fl_sched_tx_end(s, own, e, errbuf);
	plan_fini(&p);
	fl_order_free(o);
	return e;
}

static enum fl_err cmd_status(struct fl_scheduler *s, const Flotilla__V1__RolloutStatusRequest *rq,
                              int64_t now_ms, struct cmd *out, char *errbuf)
{
	struct fl_arena *a = out->a;
	Flotilla__V1__RolloutStatusResponse *res = anew(a, sizeof(*res));
	struct fl_store_rollout *rows = NULL;
	size_t n = 0;
	uint32_t limit = rq->limit ? rq->limit : LIST_DEFAULT;
	enum fl_err e = FL_OK;

	flotilla__v1__rollout_status_response__init(res);
	if (limit > LIST_MAX)
		limit = LIST_MAX;
	if (rq->rollout_id && rq->rollout_id[0]) {
		Flotilla__V1__RolloutInfo *m = info_of(s, rq->rollout_id, now_ms, out, &e, errbuf);

		if (m == NULL)
			return e;
		res->rollouts = anew(a, sizeof(*res->rollouts));
		res->rollouts[0] = m;
		res->n_rollouts = 1;
	} else {
		if ((e = fl_store_rollout_list(s->st, rq->include_finished, limit, &rows, &n,
		                               errbuf)) != FL_OK)
			return e;
		res->rollouts = anew(a, (n ? n : 1) * sizeof(*res->rollouts));
		for (size_t i = 0; i < n; i++) {
			struct sched_rollout *r = fl_sched_find(s, rows[i].id);
			struct counts cnt = {0};

			if (r != NULL) {
				res->rollouts[res->n_rollouts++] = info_msg(a, r, NULL, now_ms);
				continue;
			}
			/* finished: waves and counts from the store, not every row */
			r = fl_calloc(1, sizeof(*r));
			r->row = rows[i];
			memset(&rows[i], 0, sizeof(rows[i]));
			{
				struct fl_store_rollout full;
				struct fl_store_wave *ws = NULL;
				size_t nw = 0;

				if ((e = fl_store_rollout_get(s->st, r->row.id, FL_STORE_WITH_ORDER,
				                              &full, errbuf)) != FL_OK) {
					fl_sched_rollout_free(s, r);
					break;
				}
				if (fl_order_inspect(full.signed_order, full.signed_order_len,
				                     FL_ORDER_ROLLOUT, &r->order, NULL) != FL_OK ||
				    (e = fl_store_wave_list(s->st, r->row.id, &ws, &nw, errbuf)) !=
				        FL_OK ||
				    nw != r->order->policy.n_waves) {
					fl_store_rollout_fini(&full);
					fl_store_waves_free(ws, nw);
					fl_sched_rollout_free(s, r);
					if (e != FL_OK)
						break;
					continue; /* an unreadable row: leave it out */
				}
				fl_store_rollout_fini(&full);
				r->w = fl_calloc(nw, sizeof(*r->w));
				r->n_w = nw;
				for (size_t k = 0; k < nw; k++) {
					r->w[k].row = ws[k];
					r->w[k].pol = &r->order->policy.waves[k];
				}
				free(ws);
				cnt.n_w = nw;
				cnt.c = fl_calloc(nw, sizeof(*cnt.c));
				if ((e = fl_store_rollout_tenant_counts(s->st, r->row.id, count_cb,
				                                        &cnt, errbuf)) == FL_OK)
					res->rollouts[res->n_rollouts++] =
					    info_msg(a, r, &cnt, now_ms);
				free(cnt.c);
				fl_sched_rollout_free(s, r);
				if (e != FL_OK)
					break;
			}
		}
		fl_store_rollouts_free(rows, n);
		if (e != FL_OK)
			return e;
	}
	out->resp->result_case = RESULT(ROLLOUT_STATUS);
	out->resp->rollout_status = res;
	set_status(out, SC(OK), "");
	return FL_OK;
}

/* The live rollout named, or NULL with a refusal (not found, or finished). */
static struct sched_rollout *live_or_refuse(struct fl_scheduler *s, const char *id,
                                            const char *verb, struct cmd *out, enum fl_err *e,
                                            char *errbuf)
{
	struct sched_rollout *r = fl_sched_find(s, id ? id : "");
	struct fl_store_rollout row;

	*e = FL_OK;
	if (r != NULL)
		return r;
	*e = fl_store_rollout_get(s->st, id ? id : "", 0, &row, errbuf);
	if (*e == FL_ENOENT) {
		*e = FL_OK;
		refuse(out, SC(NOT_FOUND), "no rollout '%s'", id ? id : "");
		return NULL;
	}
	if (*e != FL_OK)
		return NULL;
	refuse(out, SC(FAILED_PRECONDITION), "cannot %s rollout '%s': it is %s", verb, id,
	       state_name(row.state));
	fl_store_rollout_fini(&row);
	return NULL;
}

static void who_reason(char *buf, size_t n, const struct fl_rollout_caller *who, const char *what,
                       const char *reason)
{
	snprintf(buf, n, "%s by %s%s%s", what, who && who->name ? who->name : "an operator",
	         reason && reason[0] ? ": " : "", reason ? reason : "");
}

/* Finish a state command: the rollout's info as the result (field by case). */
static void info_result(struct cmd *out, struct fl_scheduler *s, struct sched_rollout *r,
                        int64_t now_ms, Flotilla__V1__AdminRequest__CommandCase c)
{
	struct fl_arena *a = out->a;
	Flotilla__V1__RolloutInfo *m = info_msg(a, r, NULL, now_ms);

	(void)s;
	out->subject = m->id;
	/* Every state command's response is the rollout's info alone. */
#define STATE_RESULT(UPPER, lower, Type)                                                           \
	case CMD(UPPER): {                                                                         \
		Flotilla__V1__##Type *x = anew(a, sizeof(*x));                                     \
                                                                                                   \
		flotilla__v1__##lower##_response__init(x);                                         \
		x->rollout = m;                                                                    \
		out->resp->result_case = RESULT(UPPER);                                            \
		out->resp->lower = x;                                                              \
		break;                                                                             \
	}
	switch (c) {
		STATE_RESULT(ROLLOUT_PAUSE, rollout_pause, RolloutPauseResponse)
		STATE_RESULT(ROLLOUT_RESUME, rollout_resume, RolloutResumeResponse)
		STATE_RESULT(ROLLOUT_PROMOTE, rollout_promote, RolloutPromoteResponse)
		STATE_RESULT(ROLLOUT_HALT, rollout_halt, RolloutHaltResponse)
		STATE_RESULT(ROLLOUT_ROLLBACK, rollout_rollback, RolloutRollbackResponse)
	default:
		break;
	}
#undef STATE_RESULT
	set_status(out, SC(OK), "");
}

static enum fl_err cmd_pause(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                             const Flotilla__V1__RolloutPauseRequest *rq, int64_t now_ms,
                             struct cmd *out, char *errbuf)
{
	struct sched_rollout *r;
	char reason[REASON_MAX];
	enum fl_err e;
	bool own;

	if ((r = live_or_refuse(s, rq->rollout_id, "pause", out, &e, errbuf)) == NULL)
		return e;
	if (r->row.state == RS_PAUSED) {
		info_result(out, s, r, now_ms, CMD(ROLLOUT_PAUSE));
		return FL_OK;
	}
	if (r->row.state != RS_RUNNING) {
		refuse(out, SC(FAILED_PRECONDITION), "cannot pause rollout '%s': it is %s",
		       r->row.id, state_name(r->row.state));
		return FL_OK;
	}
	who_reason(reason, sizeof(reason), who, "paused", rq->reason);
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		return e;
	e = fl_sched_set_rollout(s, r, RS_PAUSED, reason, now_ms, errbuf);
	if ((e = fl_sched_tx_end(s, own, e, errbuf)) != FL_OK)
		return e;
	info_result(out, s, r, now_ms, CMD(ROLLOUT_PAUSE));
	return FL_OK;
}

static enum fl_err cmd_resume(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                              const Flotilla__V1__RolloutResumeRequest *rq, int64_t now_ms,
                              struct cmd *out, char *errbuf)
{
	struct sched_rollout *r;
	struct sched_wave *w;
	char reason[REASON_MAX];
	enum fl_err e;
	bool own;

	if ((r = live_or_refuse(s, rq->rollout_id, "resume", out, &e, errbuf)) == NULL)
		return e;
	if (r->row.state == RS_RUNNING) {
		info_result(out, s, r, now_ms, CMD(ROLLOUT_RESUME));
		return FL_OK;
	}
	if (r->row.state != RS_PAUSED) {
		refuse(out, SC(FAILED_PRECONDITION), "cannot resume rollout '%s': it is %s%s",
		       r->row.id, state_name(r->row.state),
		       r->row.state == RS_HALTED ? " (retry goes on after a halt)" : "");
		return FL_OK;
	}
	if (now_ms >= r->row.expires_at_ms) {
		/* nothing written: a refusal's transaction is rolled back; the tick halts it */
		refuse(out, SC(FAILED_PRECONDITION),
		       "cannot resume rollout '%s': its order expired (start a new one)",
		       r->row.id);
		return FL_OK;
	}
	who_reason(reason, sizeof(reason), who, "resumed", rq->reason);
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		return e;
	w = r->row.current_wave < r->n_w ? &r->w[r->row.current_wave] : NULL;
	e = fl_sched_set_rollout(s, r, RS_RUNNING, reason, now_ms, errbuf);
	if (e == FL_OK && w != NULL && strstr(w->row.state_reason, "inconclusive") != NULL)
		e = fl_sched_set_wave(s, r, w, w->row.state, "", now_ms, errbuf);
	if (e == FL_OK)
		e = fl_sched_advance(s, r, now_ms, errbuf);
	fl_sched_wake_rollout(s, r);
	if ((e = fl_sched_tx_end(s, own, e, errbuf)) != FL_OK)
		return e;
	info_result(out, s, r, now_ms, CMD(ROLLOUT_RESUME));
	return FL_OK;
}

static enum fl_err cmd_promote(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                               const Flotilla__V1__RolloutPromoteRequest *rq, int64_t now_ms,
                               struct cmd *out, char *errbuf)
{
	struct sched_rollout *r;
	struct sched_wave *w;
	char reason[REASON_MAX];
	enum fl_err e;
	bool own;

	if ((r = live_or_refuse(s, rq->rollout_id, "promote", out, &e, errbuf)) == NULL)
		return e;
	w = r->row.current_wave < r->n_w ? &r->w[r->row.current_wave] : NULL;
	if (rq->wave >= r->n_w) {
		refuse(out, SC(INVALID_ARGUMENT), "rollout '%s' has no wave %u (it has %zu)",
		       r->row.id, rq->wave, r->n_w);
		return FL_OK;
	}
	if (r->row.state != RS_RUNNING || w == NULL || w->row.state != WS_AWAITING ||
	    rq->wave != r->row.current_wave) {
		if (w != NULL && w->row.state == WS_AWAITING && r->row.state == RS_RUNNING)
			refuse(out, SC(FAILED_PRECONDITION),
			       "wave %u ('%s') is not waiting for promote: wave %u ('%s') is",
			       rq->wave, r->w[rq->wave].pol->name, w->row.idx, w->pol->name);
		else
			refuse(out, SC(FAILED_PRECONDITION),
			       "wave %u ('%s') is not waiting for promote: rollout '%s' is %s%s%s",
			       rq->wave, r->w[rq->wave].pol->name, r->row.id,
			       state_name(r->row.state), w ? ", its current wave " : "",
			       w ? w->pol->name : "");
		return FL_OK;
	}
	who_reason(reason, sizeof(reason), who, "promoted", rq->reason);
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		return e;
	e = fl_sched_set_wave(s, r, w, WS_COMPLETED, reason, now_ms, errbuf);
	if (e == FL_OK)
		e = fl_sched_advance(s, r, now_ms, errbuf);
	if ((e = fl_sched_tx_end(s, own, e, errbuf)) != FL_OK)
		return e;
	info_result(out, s, r, now_ms, CMD(ROLLOUT_PROMOTE));
	return FL_OK;
}

static enum fl_err cmd_halt(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                            const Flotilla__V1__RolloutHaltRequest *rq, int64_t now_ms,
                            struct cmd *out, char *errbuf)
{
	struct sched_rollout *r;
	char reason[REASON_MAX];
	enum fl_err e;
	bool own;

	if ((r = live_or_refuse(s, rq->rollout_id, "halt", out, &e, errbuf)) == NULL)
		return e;
	if (r->row.state == RS_HALTED) {
		info_result(out, s, r, now_ms, CMD(ROLLOUT_HALT));
		return FL_OK;
	}
	who_reason(reason, sizeof(reason), who, "halted", rq->reason);
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		return e;
	e = fl_sched_halt(s, r, reason, false, now_ms, errbuf);
	if ((e = fl_sched_tx_end(s, own, e, errbuf)) != FL_OK)
		return e;
	info_result(out, s, r, now_ms, CMD(ROLLOUT_HALT));
	return FL_OK;
}

static enum fl_err cmd_retry(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                             const Flotilla__V1__RolloutRetryRequest *rq, int64_t now_ms,
                             struct cmd *out, char *errbuf)
{
	struct fl_arena *a = out->a;
	Flotilla__V1__RolloutRetryResponse *res;
	struct sched_rollout *r;
	struct sched_wave *w;
	bool *pick = NULL, own = false;
	char reason[REASON_MAX], what[64];
	uint32_t n = 0, failed_left = 0;
	enum fl_err e;

	if ((r = live_or_refuse(s, rq->rollout_id, "retry", out, &e, errbuf)) == NULL)
		return e;
	if (r->row.state != RS_HALTED && r->row.state != RS_RUNNING && r->row.state != RS_PAUSED) {
		refuse(out, SC(FAILED_PRECONDITION), "cannot retry rollout '%s': it is %s",
		       r->row.id, state_name(r->row.state));
		return FL_OK;
	}
	if (now_ms >= r->row.expires_at_ms) {
		refuse(out, SC(FAILED_PRECONDITION),
		       "cannot retry rollout '%s': its order expired (start a new one)", r->row.id);
		return FL_OK;
	}
	/* A rollback was decided (rollback-all, a signed rollback order): going
	 * forward again is not a retry but a new rollout. */
	if (r->row.rollback_kind == FL_STORE_ROLLBACK_ALL ||
	    r->row.rollback_kind == FL_STORE_ROLLBACK_MANUAL) {
		refuse(out, SC(FAILED_PRECONDITION),
		       "cannot retry rollout '%s': it is being rolled back (%s); finish the "
		       "rollback with a signed rollback order, or start a new rollout",
		       r->row.id,
		       r->row.rollback_kind == FL_STORE_ROLLBACK_ALL ? "on_failure: rollback-all"
		                                                     : "a signed rollback order");
		return FL_OK;
	}
	for (size_t i = 0; i < r->n_t; i++)
		if (r->t[i].row.state == FL_SCHED_REVERTING) {
			refuse(out, SC(FAILED_PRECONDITION),
			       "cannot retry rollout '%s': tenant '%s' is still to revert (the "
			       "rollback was halted); finish the rollback with a signed rollback "
			       "order",
			       r->row.id, r->t[i].row.tenant_id);
			return FL_OK;
		}
	w = &r->w[r->row.current_wave < r->n_w ? r->row.current_wave : r->n_w - 1];
	pick = fl_calloc(r->n_t ? r->n_t : 1, sizeof(*pick));
	for (size_t i = 0; i < rq->n_tenant_ids; i++) {
		long ti = fl_sched_tenant_index(r, rq->tenant_ids[i]);
		const struct sched_tenant *t = ti >= 0 ? &r->t[ti] : NULL;

		if (t == NULL || t->row.wave != w->row.idx ||
		    (t->row.state != FL_SCHED_FAILED && t->row.state != FL_SCHED_ROLLED_BACK)) {
			refuse(
			    out, SC(FAILED_PRECONDITION),
			    "tenant '%s' is not a failed tenant of wave %u ('%s') of rollout '%s'",
			    rq->tenant_ids[i], w->row.idx, w->pol->name, r->row.id);
			goto out;
		}
		pick[ti] = true;
	}
	for (size_t i = 0; i < r->n_t; i++) {
		const struct sched_tenant *t = &r->t[i];
		struct sched_rollout *h;

		if (rq->n_tenant_ids == 0)
			pick[i] = t->row.wave == w->row.idx &&
			          (t->row.state == FL_SCHED_FAILED ||
			           (w->row.rolled_back && t->row.state == FL_SCHED_ROLLED_BACK));
		n += pick[i];
		failed_left +=
		    t->row.wave == w->row.idx && t->row.state == FL_SCHED_FAILED && !pick[i];
		/* Every tenant, not only those picked: a halted rollout is not
		 * active, another may have taken some of its tenants since, and
		 * this one would go on with them (or revert them, on_failure). */
		if ((h = fl_sched_active_holder(s, t->row.tenant_id, r)) != NULL) {
			refuse(out, SC(FAILED_PRECONDITION),
			       "tenant '%s' is in active rollout '%s' now: one active rollout per "
			       "tenant",
			       t->row.tenant_id, h->row.id);
			goto out;
		}
	}
	if (fl_wave_budget_exceeded(w->pol, failed_left, w->total)) {
		refuse(
		    out, SC(FAILED_PRECONDITION),
		    "cannot retry only these: %u failed tenants left in wave %u ('%s') exceed its "
		    "failure budget (retry them all)",
		    failed_left, w->row.idx, w->pol->name);
		goto out;
	}
	snprintf(what, sizeof(what), "%u tenants requeued", n);
	who_reason(reason, sizeof(reason), who, "retried", what);
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		goto out;
	for (size_t i = 0; i < r->n_t && e == FL_OK; i++) {
		struct sched_tenant *t = &r->t[i];

		if (!pick[i])
			continue;
		t->row.revert_failed = false;
		t->row.not_before_ms = 0;
		free(t->row.last_error);
		t->row.last_error = fl_strdup("");
		e = fl_sched_set_tenant(s, r, t, FL_SCHED_PENDING, now_ms, errbuf);
	}
	if (e == FL_OK && (n > 0 || w->row.state == WS_FAILED)) {
		w->row.rolled_back = false;
		w->row.bake_until_ms = 0;
		w->row.next_check_at_ms = 0;
		e = fl_sched_set_wave(s, r, w, WS_RUNNING, "", now_ms, errbuf);
	}
	if (e == FL_OK && r->row.state == RS_HALTED)
		e = fl_sched_set_rollout(s, r, RS_RUNNING, reason, now_ms, errbuf);
	/* tenants of a silent agent wait for it (or fail again after the deadline) */
	if (e == FL_OK)
		e = fl_sched_mark_unreachable(s, r, now_ms, errbuf);
	if (e == FL_OK)
		e = fl_sched_advance(s, r, now_ms, errbuf);
	fl_sched_wake_rollout(s, r);
	if ((e = fl_sched_tx_end(s, own, e, errbuf)) != FL_OK)
		goto out;
	res = anew(a, sizeof(*res));
	flotilla__v1__rollout_retry_response__init(res);
	res->rollout = info_msg(a, r, NULL, now_ms);
	res->tenants_requeued = n;
	out->subject = res->rollout->id;
	out->resp->result_case = RESULT(ROLLOUT_RETRY);
	out->resp->rollout_retry = res;
	set_status(out, SC(OK), "");
out:
	free(pick);
	return e;
}

static enum fl_err cmd_rollback(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                                const Flotilla__V1__RolloutRollbackRequest *rq, int64_t now_ms,
                                struct cmd *out, char *errbuf)
{
	struct sched_rollout *r = fl_sched_find(s, rq->rollout_id ? rq->rollout_id : "");
	struct fl_store_release rel = {0};
	struct fl_order *rb = NULL;
	struct fl_sched_map withdrawn = {0};
	bool *pick = NULL, loaded = false, own = false;
	char err[FL_ERRBUF_SIZE], reason[REASON_MAX];
	long target_pos, rb_pos = -1, top;
	uint32_t n = 0;
	enum fl_err e = FL_OK, v;

	if (r == NULL) {
		/* a completed rollout can be rolled back too: bring it back to life */
		struct fl_store_rollout row;

		e = fl_store_rollout_get(s->st, rq->rollout_id ? rq->rollout_id : "", 0, &row,
		                         errbuf);
		if (e == FL_ENOENT) {
			refuse(out, SC(NOT_FOUND), "no rollout '%s'", rq->rollout_id);
			return FL_OK;
		}
		if (e != FL_OK)
			return e;
		if (row.state != RS_COMPLETED) {
			refuse(out, SC(FAILED_PRECONDITION),
			       "cannot roll back rollout '%s': it is %s", row.id,
			       state_name(row.state));
			fl_store_rollout_fini(&row);
			return FL_OK;
		}
		fl_store_rollout_fini(&row);
		if ((e = fl_sched_load(s, rq->rollout_id, true, now_ms, &r, errbuf)) != FL_OK)
			return e;
		loaded = true;
	}
	if (r->row.state == RS_ROLLING_BACK || r->row.state == RS_PENDING) {
		refuse(out, SC(FAILED_PRECONDITION), "cannot roll back rollout '%s': it is %s",
		       r->row.id, state_name(r->row.state));
		goto out;
	}
	if (now_ms >= r->row.expires_at_ms) {
		/* agents check the rollout order on every assignment, REVERTs too */
		refuse(
		    out, SC(FAILED_PRECONDITION),
		    "cannot roll back rollout '%s': its rollout order expired, and agents refuse "
		    "work under an expired order",
		    r->row.id);
		goto out;
	}
	v = fl_order_verify(rq->signed_rollback_order.data, rq->signed_rollback_order.len,
	                    FL_ORDER_ROLLBACK, (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])s->trusted,
	                    s->n_trusted, s->project_id, now_ms, &rb, err);
	if (v != FL_OK) {
		refuse(out, v == FL_EPARSE ? SC(INVALID_ARGUMENT) : SC(FAILED_PRECONDITION),
		       "the rollback order %s: %s", verify_problem(v), err);
		goto out;
	}
	if (memcmp(rb->rollout_order_hash, r->row.order_hash, 32) != 0 ||
	    memcmp(rb->release_hash, r->row.release_hash, 32) != 0) {
		refuse(out, SC(FAILED_PRECONDITION),
		       "the rollback order is for another rollout order (or release) than rollout "
		       "'%s'",
		       r->row.id);
		goto out;
	}
	if ((e = fl_store_release_get(s->st, r->row.release_hash, FL_STORE_WITH_MIGRATIONS, &rel,
	                              errbuf)) != FL_OK)
		goto out;
	target_pos = release_pos(&rel, r->row.target_migration_id);
	if (rb->target_migration_id[0] != '\0' &&
	    (rb_pos = release_pos(&rel, rb->target_migration_id)) < 0) {
		refuse(out, SC(FAILED_PRECONDITION), "rollback target '%s' is not in the release",
		       rb->target_migration_id);
		goto out;
	}
	/* Which tenants, and every migration to revert has down.sql. */
	if ((e = fl_sched_withdrawn(s, r, &withdrawn, errbuf)) != FL_OK)
		goto out;
	pick = fl_calloc(r->n_t ? r->n_t : 1, sizeof(*pick));
	for (size_t i = 0; i < r->n_t; i++) {
		const struct sched_tenant *t = &r->t[i];
		bool touched = fl_sched_touched(r, t, &withdrawn);
		struct sched_rollout *h;
		long from;

		if (fl_order_rollback_check(rb, r->order, t->row.tenant_id, &t->row.labels, NULL) !=
		    FL_OK)
			continue;
		if (rb_pos < 0
		        ? !touched
		        : !(touched || t->row.state == FL_SCHED_APPLIED ||
		            t->row.state == FL_SCHED_SKIPPED || t->row.state == FL_SCHED_FAILED))
			continue;
		if ((h = fl_sched_active_holder(s, t->row.tenant_id, r)) != NULL) {
			refuse(out, SC(FAILED_PRECONDITION),
			       "tenant '%s' is in active rollout '%s' now: one active rollout per "
			       "tenant",
			       t->row.tenant_id, h->row.id);
			goto out;
		}
		if (rb_pos >= 0) {
			from = rb_pos;
		} else {
			from = t->row.pre_head[0] ? release_pos(&rel, t->row.pre_head) : -1;
			if (from < -1)
				from = -1;
		}
		top = target_pos;
		for (long k = from + 1; k <= top && k < (long)rel.n_migrations; k++)
			if (!rel.migrations[k].has_down) {
				refuse(
				    out, SC(FAILED_PRECONDITION),
				    "migration '%s' has no down.sql: rollback refused (nothing was "
				    "reverted)",
				    rel.migrations[k].id);
				goto out;
			}
		pick[i] = true;
		n++;
	}
	if (n == 0) {
		refuse(out, SC(FAILED_PRECONDITION),
		       "no tenant of rollout '%s' to revert under this rollback order", r->row.id);
		goto out;
	}
	who_reason(reason, sizeof(reason), who, "rollback", rq->reason);
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		goto out;
	if (loaded) {
		fl_sched_attach(s, r);
		loaded = false;
	}
	fl_order_free(r->rb);
	fl_sched_blob_unref(r->rb_blob);
	r->rb = rb;
	rb = NULL;
	r->rb_blob =
	    fl_sched_blob_new(rq->signed_rollback_order.data, rq->signed_rollback_order.len);
	e = fl_sched_rollback(s, r, FL_STORE_ROLLBACK_MANUAL, pick, reason, now_ms, errbuf);
	if ((e = fl_sched_tx_end(s, own, e, errbuf)) != FL_OK)
		goto out;
	info_result(out, s, r, now_ms, CMD(ROLLOUT_ROLLBACK));
out:
	if (loaded)
		fl_sched_rollout_free(s, r);
	fl_sched_map_fini(&withdrawn);
	free(pick);
	fl_order_free(rb);
	fl_store_release_fini(&rel);
	return e;
}

enum fl_err fl_rollout_admin_run(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                                 const Flotilla__V1__AdminRequest *req, int64_t now_ms,
                                 struct fl_arena *arena, Flotilla__V1__AdminResponse *resp,
                                 const char **subject, char *errbuf)
{
	char local[FL_ERRBUF_SIZE] = "";
	struct cmd c = {arena, resp, ""}, *out = &c;
	enum fl_err e;

	if (errbuf == NULL)
		errbuf = local;
	resp->request_id = req->request_id;
	resp->status = anew(arena, sizeof(*resp->status));
	flotilla__v1__status__init(resp->status);
	refuse(out, SC(INTERNAL), "no result");
	if ((e = fl_sched_ensure(s, now_ms, errbuf)) != FL_OK)
		goto failed;
	switch (req->command_case) {
	case CMD(ROLLOUT_PLAN):
		e = cmd_plan(s, req->rollout_plan, now_ms, out, errbuf);
		break;
	case CMD(ROLLOUT_START):
		e = cmd_start(s, who, req->rollout_start, now_ms, out, errbuf);
		break;
	case CMD(ROLLOUT_STATUS):
		e = cmd_status(s, req->rollout_status, now_ms, out, errbuf);
		break;
	case CMD(ROLLOUT_PAUSE):
		e = cmd_pause(s, who, req->rollout_pause, now_ms, out, errbuf);
		break;
	case CMD(ROLLOUT_RESUME):
		e = cmd_resume(s, who, req->rollout_resume, now_ms, out, errbuf);
		break;
	case CMD(ROLLOUT_PROMOTE):
		e = cmd_promote(s, who, req->rollout_promote, now_ms, out, errbuf);
		break;
	case CMD(ROLLOUT_HALT):
		e = cmd_halt(s, who, req->rollout_halt, now_ms, out, errbuf);
		break;
	case CMD(ROLLOUT_ROLLBACK):
		e = cmd_rollback(s, who, req->rollout_rollback, now_ms, out, errbuf);
		break;
	case CMD(ROLLOUT_RETRY):
		e = cmd_retry(s, who, req->rollout_retry, now_ms, out, errbuf);
		break;
	default:
		refuse(out, SC(UNIMPLEMENTED), "not a rollout command");
		e = FL_OK;
		break;
	}
	if (subject)
		*subject = c.subject ? c.subject : "";
	if (e == FL_OK)
		return FL_OK;
failed:
	/* The store failed: nothing of it is kept (rolled back, model reloaded). */
	s->dirty = true;
	resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT__NOT_SET;
	refuse(out, SC(UNAVAILABLE), "the coordinator's store failed: %s", errbuf);
	fl_log_error("scheduler", "%s: %s", fl_wire_admin_command_name((int)req->command_case),
	             errbuf);
	if (subject)
		*subject = "";
	return e;
}

enum fl_err fl_rollout_admin(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                             const Flotilla__V1__AdminRequest *req, int64_t now_ms,
                             struct fl_rollout_reply *out, char *errbuf)
{
	struct fl_arena *a = fl_calloc(1, sizeof(*a));

	fl_arena_init(a);
	memset(out, 0, sizeof(*out));
	out->priv = a;
	flotilla__v1__admin_response__init(&out->response);
	return fl_rollout_admin_run(s, who, req, now_ms, a, &out->response, NULL, errbuf);
}

void fl_rollout_reply_fini(struct fl_rollout_reply *r)
{
	struct fl_arena *a = r->priv;

	if (a != NULL) {
		fl_arena_fini(a);
		free(a);
	}
	memset(r, 0, sizeof(*r));
}
