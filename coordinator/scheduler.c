/*
 * The rollout scheduler (scheduler.h): an in-memory model of the live
 * rollouts over the store's rows, driven by polls, reports, timers and
 * operators' commands (rollout_admin.c).
 *
 * Invariants, checked where they matter:
 * - every change to the model is written to the store in the current
 *   transaction before the entry point returns, so what the caller sends
 *   after committing is never ahead of the store;
 * - a tenant has at most one assignment outstanding, across rollouts
 *   (s->busy), and one is never replaced while outstanding;
 * - assignments outstanding for a wave's tenants never exceed its
 *   max_parallel, nor those of one rollout on one agent its per-agent
 *   limit (checked before every issue);
 * - a rollout only moves on from a wave when none of the wave's tenants
 *   waits for anything.
 */
#include "scheduler.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "mem.h"
#include "policy.h"
#include "scheduler_int.h"

#define DEFAULT_OFFLINE_AFTER_MS 90000
#define DEFAULT_RESEND_AFTER_MS  60000
#define DEFAULT_BUSY_RETRY_MS    30000
#define DEFAULT_PLAN_IDS         20
#define REASON_MAX               512
#define CANCELED_TRIES           3 /* APPLYs of a tenant after which CANCELED waits */

#define OC(x) FLOTILLA__V1__OUTCOME__OUTCOME_##x

const char *fl_sched_tenant_state_name(enum fl_sched_tenant_state st)
{
	switch (st) {
	case FL_SCHED_PENDING:
		return "pending";
	case FL_SCHED_ASSIGNED:
		return "assigned";
	case FL_SCHED_APPLIED:
		return "applied";
	case FL_SCHED_FAILED:
		return "failed";
	case FL_SCHED_SKIPPED:
		return "skipped";
	case FL_SCHED_UNREACHABLE:
		return "unreachable";
	case FL_SCHED_BUSY:
		return "busy";
	case FL_SCHED_REVERTING:
		return "reverting";
	case FL_SCHED_ROLLED_BACK:
		return "rolled_back";
	}
	return "?";
}

/* ---- blobs ---- */

struct fl_sched_blob *fl_sched_blob_new(const void *data, size_t len)
{
	struct fl_sched_blob *b = fl_malloc(sizeof(*b) + (len ? len : 1));

	b->refs = 1;
	b->len = len;
	if (len)
		memcpy(b->data, data, len);
	return b;
}

struct fl_sched_blob *fl_sched_blob_ref(struct fl_sched_blob *b)
{
	if (b)
		b->refs++;
	return b;
}

void fl_sched_blob_unref(struct fl_sched_blob *b)
{
	if (b && --b->refs == 0)
		free(b);
}

/* ---- a string map ---- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static size_t map_slot(const struct fl_sched_map *m, const char *key)
{
	size_t i = (size_t)hash_str(key) & (m->cap - 1);

	while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

bool fl_sched_map_get(const struct fl_sched_map *m, const char *key, uint64_t *val)
{
	size_t i;

	if (m->cap == 0)
		return false;
	i = map_slot(m, key);
	if (m->keys[i] == NULL)
		return false;
	if (val)
		*val = m->vals[i];
	return true;
}

static void map_grow(struct fl_sched_map *m)
{
	struct fl_sched_map n = {0};

	n.cap = m->cap ? m->cap * 2 : 16;
	n.keys = fl_calloc(n.cap, sizeof(char *));
	n.vals = fl_calloc(n.cap, sizeof(uint64_t));
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] != NULL) {
			size_t j = map_slot(&n, m->keys[i]);

			n.keys[j] = m->keys[i];
			n.vals[j] = m->vals[i];
			n.n++;
		}
	free(m->keys);
	free(m->vals);
	*m = n;
}

void fl_sched_map_put(struct fl_sched_map *m, const char *key, uint64_t val)
{
	size_t i;

	if ((m->n + 1) * 4 >= m->cap * 3)
		map_grow(m);
	i = map_slot(m, key);
	if (m->keys[i] == NULL) {
		m->keys[i] = fl_strdup(key);
		m->n++;
	}
	m->vals[i] = val;
}

void fl_sched_map_del(struct fl_sched_map *m, const char *key)
{
	size_t i, j;

	if (m->cap == 0)
		return;
	i = map_slot(m, key);
	if (m->keys[i] == NULL)
		return;
	free(m->keys[i]);
	m->keys[i] = NULL;
	m->n--;
	/* Put back the entries of the cluster after the hole. */
	for (j = (i + 1) & (m->cap - 1); m->keys[j] != NULL; j = (j + 1) & (m->cap - 1)) {
		char *k = m->keys[j];
		uint64_t v = m->vals[j];
		size_t to;

		m->keys[j] = NULL;
		to = map_slot(m, k);
		m->keys[to] = k;
		m->vals[to] = v;
	}
}

void fl_sched_map_fini(struct fl_sched_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- small helpers ---- */

static void pk_hex(const uint8_t pk[FL_STORE_KEY_LEN], char out[2 * FL_STORE_KEY_LEN + 1])
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < FL_STORE_KEY_LEN; i++) {
		out[2 * i] = d[pk[i] >> 4];
		out[2 * i + 1] = d[pk[i] & 15];
	}
	out[2 * FL_STORE_KEY_LEN] = '\0';
}

static void set_str(char **dst, const char *src)
{
	char *n = fl_strdup(src ? src : "");

	free(*dst);
	*dst = n;
}

bool fl_sched_state_live(int state)
{
	return state == RS_PENDING || state == RS_RUNNING || state == RS_PAUSED ||
	       state == RS_HALTED || state == RS_ROLLING_BACK;
}

static bool state_active(int state)
{
	return state == RS_PENDING || state == RS_RUNNING || state == RS_PAUSED ||
	       state == RS_ROLLING_BACK;
}

static const struct fl_policy *policy_of(const struct sched_rollout *r)
{
	return &r->order->policy;
}

uint32_t fl_sched_per_agent(const struct sched_rollout *r, const struct sched_wave *w)
{
	return w->pol->per_agent_parallel ? w->pol->per_agent_parallel
	                                  : policy_of(r)->per_agent_parallel;
}

static int minute_of_day(int64_t now_ms)
{
	int64_t m = (now_ms / 60000) % 1440;

	return (int)(m < 0 ? m + 1440 : m);
}

static bool is_failure(int outcome)
{
	return outcome == OC(FAILED) || outcome == OC(VERIFY_FAILED) ||
	       outcome == OC(HEALTH_FAILED) || outcome == OC(BACKUP_FAILED) ||
	       outcome == OC(REFUSED);
}

static void wake(struct fl_scheduler *s, const struct sched_agent *a)
{
	if (s->wake)
		s->wake(s->wake_arg, a->pk);
}

/* ---- transactions ---- */

enum fl_err fl_sched_tx_begin(struct fl_scheduler *s, bool *own, char *errbuf)
{
	*own = !fl_store_in_transaction(s->st);
	return *own ? fl_store_begin(s->st, errbuf) : FL_OK;
}

enum fl_err fl_sched_tx_end(struct fl_scheduler *s, bool own, enum fl_err e, char *errbuf)
{
	if (e == FL_OK && own)
		e = fl_store_commit(s->st, errbuf);
	else if (e != FL_OK && own)
		fl_store_rollback(s->st);
	if (e != FL_OK)
		s->dirty = true;
	return e;
}

enum fl_err fl_sched_audit(struct fl_scheduler *s, const char *event, const char *subject, int code,
                           const char *detail, int64_t now_ms, char *errbuf)
{
	struct fl_store_audit a = {0};

	a.at_ms = now_ms;
	a.actor_key_id = "";
	a.actor_name = "coordinator";
	a.role = FLOTILLA__V1__ROLE__ROLE_COORDINATOR;
	a.command = (char *)event;
	a.subject = (char *)subject;
	a.code = code;
	a.detail = (char *)(detail ? detail : "");
	return fl_store_audit_add(s->st, &a, NULL, errbuf);
}

/* ---- agents ---- */

struct sched_agent *fl_sched_agent_find(struct fl_scheduler *s, const uint8_t pk[FL_STORE_KEY_LEN])
{
	char hex[2 * FL_STORE_KEY_LEN + 1];
	uint64_t i;

	pk_hex(pk, hex);
	return fl_sched_map_get(&s->agent_idx, hex, &i) ? s->agents[i] : NULL;
}

/* The agent, made on first sight: named as the store has it; online, as if
 * heard from now (a coordinator that just started gives every agent the
 * full grace period before calling it silent). */
static struct sched_agent *agent_get(struct fl_scheduler *s, const uint8_t pk[FL_STORE_KEY_LEN],
                                     int64_t now_ms)
{
	struct sched_agent *a = fl_sched_agent_find(s, pk);
	struct fl_store_agent row;
	char hex[2 * FL_STORE_KEY_LEN + 1], kid[FL_KEY_ID_LEN + 1];

	if (a != NULL)
		return a;
	a = fl_calloc(1, sizeof(*a));
	memcpy(a->pk, pk, FL_STORE_KEY_LEN);
	if (fl_store_agent_get(s->st, pk, &row, NULL) == FL_OK) {
		a->name = row.name;
		row.name = NULL;
		fl_store_agent_fini(&row);
	} else {
		fl_key_id(pk, kid);
		a->name = fl_strdup(kid);
	}
	a->online = true;
	a->last_seen_ms = now_ms;
	pk_hex(pk, hex);
	s->agents = fl_grow(s->agents, &s->cap_agents, s->n_agents + 1, sizeof(*s->agents));
	fl_sched_map_put(&s->agent_idx, hex, s->n_agents);
	s->agents[s->n_agents++] = a;
	return a;
}

/* A tenant left unreachable while its agent was silent, the agent heard from
 * again (or, after a restart, presumed alive): its work is due again, still
 * issued or to be issued. */
static enum fl_err reachable_again(struct fl_scheduler *s, struct sched_rollout *r,
                                   struct sched_tenant *t, int64_t now_ms, char *errbuf)
{
	t->row.since_ms = 0;
	return fl_sched_set_tenant(s, r, t,
	                           t->out_id != 0 && t->out_kind == WK_APPLY ? FL_SCHED_ASSIGNED
	                                                                     : FL_SCHED_PENDING,
	                           now_ms, errbuf);
}

static void agent_unlink(struct sched_agent *a, const struct sched_rollout *r)
{
	for (size_t i = 0; i < a->n_links;)
		if (a->links[i].r == r)
			a->links[i] = a->links[--a->n_links];
		else
			i++;
	for (size_t i = 0; i < a->n_out;)
		if (a->out[i].r == r)
			a->out[i] = a->out[--a->n_out];
		else
			i++;
}

/* ---- outstanding assignments ---- */

static void out_add(struct fl_scheduler *s, struct sched_rollout *r, uint32_t ti, uint64_t id,
                    int kind, int64_t sent)
{
	struct sched_tenant *t = &r->t[ti];
	struct sched_wave *w = &r->w[t->row.wave];
	struct sched_agent *a = r->ra[t->ra].a;

	if (t->out_id != 0)
		abort(); /* a bug: a tenant never has two assignments outstanding */
	t->out_id = id;
	t->out_kind = kind;
	t->out_sent = sent;
	t->halt_sent = 0;
	w->inflight++;
	if (kind == WK_CHECK)
		w->checks_out++;
	r->ra[t->ra].inflight++;
	a->out = fl_grow(a->out, &a->cap_out, a->n_out + 1, sizeof(*a->out));
	a->out[a->n_out].r = r;
	a->out[a->n_out++].t = ti;
	fl_sched_map_put(&s->busy, t->row.tenant_id, id);
	s->outstanding++;
}

static void out_clear(struct fl_scheduler *s, struct sched_rollout *r, uint32_t ti)
{
	struct sched_tenant *t = &r->t[ti];
	struct sched_wave *w = &r->w[t->row.wave];
	struct sched_agent *a = r->ra[t->ra].a;

	if (t->out_id == 0)
		return;
	w->inflight--;
	if (t->out_kind == WK_CHECK)
		w->checks_out--;
	r->ra[t->ra].inflight--;
	for (size_t i = 0; i < a->n_out; i++)
		if (a->out[i].r == r && a->out[i].t == ti) {
			a->out[i] = a->out[--a->n_out];
			break;
		}
	fl_sched_map_del(&s->busy, t->row.tenant_id);
	s->outstanding--;
	t->out_id = 0;
	t->out_kind = 0;
	t->out_sent = 0;
	t->halt_sent = 0;
}

size_t fl_scheduler_outstanding(struct fl_scheduler *s)
{
	return s->outstanding;
}

/* ---- writing through ---- */

/* Whether the rollout's pending tenants wait for it (it may still start
 * them): not once halted, rolling back or finished. */
static bool queues(int rollout_state)
{
	return rollout_state == RS_PENDING || rollout_state == RS_RUNNING ||
	       rollout_state == RS_PAUSED;
}

/* The fleet view's TenantState for a tenant of a rollout; 0: none (a tenant
 * the rollout never started and no longer will: the fleet's own view). */
static int fleet_state(const struct sched_rollout *r, const struct sched_tenant *t)
{
	switch (t->row.state) {
	case FL_SCHED_PENDING:
	case FL_SCHED_BUSY:
		return queues(r->row.state) ? FLOTILLA__V1__TENANT_STATE__TENANT_STATE_QUEUED : 0;
	case FL_SCHED_ASSIGNED:
	case FL_SCHED_REVERTING:
		return FLOTILLA__V1__TENANT_STATE__TENANT_STATE_RUNNING;
	case FL_SCHED_APPLIED:
		return r->w[t->row.wave].row.state == WS_BAKING
		           ? FLOTILLA__V1__TENANT_STATE__TENANT_STATE_BAKING
		           : FLOTILLA__V1__TENANT_STATE__TENANT_STATE_IDLE;
	case FL_SCHED_FAILED:
		return FLOTILLA__V1__TENANT_STATE__TENANT_STATE_FAILED;
	case FL_SCHED_UNREACHABLE:
		return FLOTILLA__V1__TENANT_STATE__TENANT_STATE_UNREACHABLE;
	case FL_SCHED_ROLLED_BACK:
		return FLOTILLA__V1__TENANT_STATE__TENANT_STATE_ROLLED_BACK;
	default:
		return FLOTILLA__V1__TENANT_STATE__TENANT_STATE_IDLE;
	}
}

static enum fl_err put_tenant(struct fl_scheduler *s, struct sched_rollout *r,
                              struct sched_tenant *t, int64_t now_ms, char *errbuf)
{
	int fs = fleet_state(r, t);
	enum fl_err e;

	t->row.updated_at_ms = now_ms;
	if ((e = fl_store_rollout_tenant_put(s->st, r->row.id, &t->row, errbuf)) != FL_OK)
		return e;
	return fl_store_tenant_set_rollout(
	    s->st, t->row.tenant_id, fs ? r->row.id : "", fs,
	    t->row.state == FL_SCHED_FAILED ? t->row.last_error : NULL, now_ms, errbuf);
}

enum fl_err fl_sched_set_tenant(struct fl_scheduler *s, struct sched_rollout *r,
                                struct sched_tenant *t, int state, int64_t now_ms, char *errbuf)
{
	struct sched_wave *w = &r->w[t->row.wave];

	w->count[t->row.state]--;
	w->count[state]++;
	t->row.state = state;
	if (state != FL_SCHED_APPLIED && t->row.check_due) {
		t->row.check_due = false;
		w->checks_due--;
	}
	if ((state == FL_SCHED_BUSY || state == FL_SCHED_REVERTING) && t->row.not_before_ms > 0 &&
	    (r->next_busy_ms == 0 || t->row.not_before_ms < r->next_busy_ms))
		r->next_busy_ms = t->row.not_before_ms;
	return put_tenant(s, r, t, now_ms, errbuf);
}

static void set_check_due(struct sched_rollout *r, struct sched_tenant *t, bool due)
{
	struct sched_wave *w = &r->w[t->row.wave];

	if (t->row.check_due == due)
		return;
	t->row.check_due = due;
	if (due)
		w->checks_due++;
	else
		w->checks_due--;
}

/* Tell the transition hook (webhooks) that r, or its wave w, went from old
 * to its state now. */
static enum fl_err transition(struct fl_scheduler *s, const struct sched_rollout *r,
                              const struct sched_wave *w, int old, int64_t now_ms, char *errbuf)
{
	struct fl_scheduler_transition t = {0};

	if (s->on_transition == NULL || old == (w ? w->row.state : r->row.state))
		return FL_OK;
	t.rollout_id = r->row.id;
	t.rollout_state = r->row.state;
	t.reason = r->row.state_reason ? r->row.state_reason : "";
	t.current_wave = r->row.current_wave;
	t.n_waves = (uint32_t)r->n_w;
	t.tenants_total = r->row.tenants_total;
	t.wave = w ? &w->row : NULL;
	t.old_state = old;
	t.new_state = w ? w->row.state : r->row.state;
	for (size_t i = 0; i < r->n_w; i++)
		if (w == NULL || &r->w[i] == w)
			for (int k = 0; k < FL_SCHED_TENANT_STATES; k++)
				t.counts[k] += r->w[i].count[k];
	t.at_ms = now_ms;
	return s->on_transition(s->transition_arg, &t, errbuf);
}

void fl_scheduler_set_transition_hook(struct fl_scheduler *s, fl_scheduler_transition_fn fn,
                                      void *arg)
{
	s->on_transition = fn;
	s->transition_arg = arg;
}

enum fl_err fl_sched_set_wave(struct fl_scheduler *s, struct sched_rollout *r, struct sched_wave *w,
                              int state, const char *reason, int64_t now_ms, char *errbuf)
{
	int old = w->row.state;
	enum fl_err e;

	w->row.state = state;
	if (reason != NULL)
		set_str(&w->row.state_reason, reason);
	if (state == WS_RUNNING && w->row.started_at_ms == 0)
		w->row.started_at_ms = now_ms;
	if (state == WS_COMPLETED || state == WS_FAILED)
		w->row.finished_at_ms = now_ms;
	if (state == WS_RUNNING)
		w->row.finished_at_ms = 0;
	if ((e = fl_store_wave_put(s->st, r->row.id, &w->row, errbuf)) != FL_OK)
		return e;
	return transition(s, r, w, old, now_ms, errbuf);
}

/* A baking wave's clock runs only while its rollout runs: stopped when it
 * pauses (a pause during the bake does not eat the bake), and on going on,
 * the bake's end and next check round move by the time it stood still. */
static enum fl_err bake_clock(struct fl_scheduler *s, struct sched_rollout *r, int64_t now_ms,
                              char *errbuf)
{
	struct sched_wave *w;
	int64_t stood;

	if (r->row.current_wave >= r->n_w)
		return FL_OK;
	w = &r->w[r->row.current_wave];
	if (r->row.state == RS_PAUSED) {
		if (w->row.state != WS_BAKING || w->row.bake_paused_at_ms != 0)
			return FL_OK;
		w->row.bake_paused_at_ms = now_ms;
		return fl_store_wave_put(s->st, r->row.id, &w->row, errbuf);
	}
	if (w->row.bake_paused_at_ms == 0)
		return FL_OK;
	stood = now_ms > w->row.bake_paused_at_ms ? now_ms - w->row.bake_paused_at_ms : 0;
	w->row.bake_paused_at_ms = 0;
	if (w->row.state == WS_BAKING) {
		w->row.bake_until_ms += stood;
		if (w->row.next_check_at_ms != 0)
			w->row.next_check_at_ms += stood;
	}
	return fl_store_wave_put(s->st, r->row.id, &w->row, errbuf);
}

enum fl_err fl_sched_set_rollout(struct fl_scheduler *s, struct sched_rollout *r, int state,
                                 const char *reason, int64_t now_ms, char *errbuf)
{
	bool finished = state == RS_COMPLETED || state == RS_ROLLED_BACK;
	bool requeue = queues(state) != queues(r->row.state);
	int old = r->row.state;
	enum fl_err e;

	if (state != r->row.state) /* a new state: a halt it calls for is news */
		for (size_t i = 0; i < r->n_t; i++)
			r->t[i].halt_sent = 0;
	r->row.state = state;
	if (reason != NULL)
		set_str(&r->row.state_reason, reason);
	r->row.updated_at_ms = now_ms;
	if (finished)
		r->row.finished_at_ms = now_ms;
	if ((e = fl_store_rollout_set_state(s->st, r->row.id, state, r->row.current_wave, reason,
	                                    now_ms, finished ? now_ms : 0, errbuf)) != FL_OK ||
	    (e = bake_clock(s, r, now_ms, errbuf)) != FL_OK)
		return e;
	/* tenants it never started: queued in the fleet view while it may start
	 * them, not once it stopped (halted, rolling back, finished) */
	for (size_t i = 0; requeue && i < r->n_t; i++) {
		struct sched_tenant *t = &r->t[i];

		if ((t->row.state == FL_SCHED_PENDING || t->row.state == FL_SCHED_BUSY) &&
		    (e = put_tenant(s, r, t, now_ms, errbuf)) != FL_OK)
			return e;
	}
	return transition(s, r, NULL, old, now_ms, errbuf);
}

/* Re-write the fleet view of a wave's applied tenants (their state there
 * follows the wave's: baking or idle). */
static enum fl_err put_applied(struct fl_scheduler *s, struct sched_rollout *r, uint32_t wave,
                               int64_t now_ms, char *errbuf)
{
	enum fl_err e;

	for (size_t i = 0; i < r->n_t; i++)
		if (r->t[i].row.wave == wave && r->t[i].row.state == FL_SCHED_APPLIED &&
		    (e = put_tenant(s, r, &r->t[i], now_ms, errbuf)) != FL_OK)
			return e;
	return FL_OK;
}

/* ---- loading ---- */

void fl_sched_rollout_free(struct fl_scheduler *s, struct sched_rollout *r)
{
	if (r == NULL)
		return;
	if (r->attached) {
		for (size_t i = 0; i < r->n_t; i++)
			if (r->t[i].out_id != 0)
				out_clear(s, r, (uint32_t)i);
		for (size_t i = 0; i < r->n_ra; i++)
			agent_unlink(r->ra[i].a, r);
	}
	for (size_t i = 0; i < r->n_t; i++)
		fl_store_rollout_tenant_fini(&r->t[i].row);
	free(r->t);
	for (size_t i = 0; i < r->n_w; i++)
		fl_store_wave_fini(&r->w[i].row);
	free(r->w);
	for (size_t i = 0; i < r->n_ra; i++)
		free(r->ra[i].t);
	free(r->ra);
	fl_sched_map_fini(&r->tmap);
	fl_order_free(r->order);
	fl_order_free(r->rb);
	fl_sched_blob_unref(r->order_blob);
	fl_sched_blob_unref(r->rb_blob);
	fl_store_rollout_fini(&r->row);
	free(r);
}

struct load_ctx {
	struct sched_rollout *r;
	size_t cap;
	bool bad;
};

static bool load_tenant(void *arg, const struct fl_store_rollout_tenant *row)
{
	struct load_ctx *c = arg;
	struct sched_rollout *r = c->r;
	struct sched_tenant *t;

	if (row->wave >= r->n_w || row->state < FL_SCHED_PENDING ||
	    row->state >= FL_SCHED_TENANT_STATES) {
		c->bad = true;
		return false;
	}
	r->t = fl_grow(r->t, &c->cap, r->n_t + 1, sizeof(*r->t));
	t = &r->t[r->n_t++];
	memset(t, 0, sizeof(*t));
	t->row = *row;
	t->row.tenant_id = fl_strdup(row->tenant_id);
	t->row.pre_head = fl_strdup(row->pre_head);
	t->row.last_error = fl_strdup(row->last_error);
	fl_labels_copy(&t->row.labels, &row->labels);
	return true;
}

/* At load: an assignment issued to the agent that held the tenant before it
 * moved. Withdrawn (its APPLY counts as maybe applied: fl_sched_withdrawn);
 * the tenant gets its work again from its new agent. Needs a transaction. */
static enum fl_err withdraw_moved(struct fl_scheduler *s, struct sched_rollout *r, uint32_t ti,
                                  const struct fl_store_assignment *as, int64_t now_ms,
                                  char *errbuf)
{
	struct sched_tenant *t = &r->t[ti];
	struct sched_wave *w = &r->w[t->row.wave];
	enum fl_err e;

	fl_log_warn(r->row.id,
	            "tenant '%s' moved to agent '%s': assignment %" PRIu64
	            " issued to its former agent withdrawn",
	            t->row.tenant_id, r->ra[t->ra].a->name, as->id);
	if ((e = fl_store_assignment_set_state(s->st, as->id, FL_STORE_ASSIGNMENT_CANCELED, 0,
	                                       now_ms, errbuf)) != FL_OK)
		return e;
	if (as->kind == WK_APPLY &&
	    (t->row.state == FL_SCHED_ASSIGNED || t->row.state == FL_SCHED_UNREACHABLE))
		return fl_sched_set_tenant(s, r, t, FL_SCHED_PENDING, now_ms, errbuf);
	if (as->kind == WK_CHECK && t->row.state == FL_SCHED_APPLIED && w->row.state == WS_BAKING)
		set_check_due(r, t, true); /* checked again, by the new agent */
	return put_tenant(s, r, t, now_ms, errbuf);
}

enum fl_err fl_sched_load(struct fl_scheduler *s, const char *id, bool attach, int64_t now_ms,
                          struct sched_rollout **out, char *errbuf)
{
	struct sched_rollout *r = fl_calloc(1, sizeof(*r));
	struct fl_store_assignment *as = NULL;
	struct fl_store_wave *ws = NULL;
	struct load_ctx lc = {r, 0, false};
	struct fl_sched_map ramap = {0};
	size_t n_as = 0, n_ws = 0;
	enum fl_err e;

	*out = NULL;
	if ((e = fl_store_rollout_get(s->st, id, FL_STORE_WITH_ORDER, &r->row, errbuf)) != FL_OK)
		goto fail;
	r->order_blob = fl_sched_blob_new(r->row.signed_order, r->row.signed_order_len);
	if ((e = fl_order_inspect(r->row.signed_order, r->row.signed_order_len, FL_ORDER_ROLLOUT,
	                          &r->order, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "rollout '%s': stored order", id);
		goto fail;
	}
	if (r->row.rollback_order != NULL) {
		r->rb_blob = fl_sched_blob_new(r->row.rollback_order, r->row.rollback_order_len);
		if ((e = fl_order_inspect(r->row.rollback_order, r->row.rollback_order_len,
		                          FL_ORDER_ROLLBACK, &r->rb, errbuf)) != FL_OK) {
			fl_err_prefix(errbuf, "rollout '%s': stored rollback order", id);
			goto fail;
		}
	}
	free(r->row.signed_order);
	free(r->row.rollback_order);
	r->row.signed_order = r->row.rollback_order = NULL;
	if ((e = fl_store_wave_list(s->st, id, &ws, &n_ws, errbuf)) != FL_OK)
		goto fail;
	if (n_ws != r->order->policy.n_waves) {
		e = fl_errf(errbuf, FL_EPARSE, "rollout '%s': %zu waves stored, the policy has %zu",
		            id, n_ws, r->order->policy.n_waves);
		goto fail;
	}
	r->w = fl_calloc(n_ws, sizeof(*r->w));
	r->n_w = n_ws;
	for (size_t i = 0; i < n_ws; i++) {
		r->w[i].row = ws[i];
		r->w[i].pol = &r->order->policy.waves[i];
		memset(&ws[i], 0, sizeof(ws[i]));
	}
	if ((e = fl_store_rollout_tenant_each(s->st, id, load_tenant, &lc, errbuf)) != FL_OK)
		goto fail;
	if (lc.bad) {
		e = fl_errf(errbuf, FL_EPARSE, "rollout '%s': a tenant row is out of range", id);
		goto fail;
	}
	for (size_t i = 0; i < r->n_t; i++) {
		struct sched_tenant *t = &r->t[i];
		struct sched_wave *w = &r->w[t->row.wave];

		fl_sched_map_put(&r->tmap, t->row.tenant_id, i);
		w->total++;
		w->count[t->row.state]++;
		if (t->row.check_due)
			w->checks_due++;
		if (t->row.not_before_ms > 0 &&
		    (t->row.state == FL_SCHED_BUSY || t->row.state == FL_SCHED_REVERTING) &&
		    (r->next_busy_ms == 0 || t->row.not_before_ms < r->next_busy_ms))
			r->next_busy_ms = t->row.not_before_ms;
		if (attach) {
			char hex[2 * FL_STORE_KEY_LEN + 1];
			uint64_t k;

			pk_hex(t->row.agent_pk, hex);
			if (!fl_sched_map_get(&ramap, hex, &k)) {
				struct sched_agent *a = agent_get(s, t->row.agent_pk, now_ms);

				k = r->n_ra;
				r->ra = fl_realloc(r->ra, (r->n_ra + 1) * sizeof(*r->ra));
				memset(&r->ra[k], 0, sizeof(r->ra[k]));
				r->ra[k].a = a;
				r->n_ra++;
				fl_sched_map_put(&ramap, hex, k);
				a->links = fl_grow(a->links, &a->cap_links, a->n_links + 1,
				                   sizeof(*a->links));
				a->links[a->n_links].r = r;
				a->links[a->n_links++].ra = (uint32_t)k;
			}
			t->ra = (uint32_t)k;
			r->ra[k].t =
			    fl_grow(r->ra[k].t, &r->ra[k].cap, r->ra[k].n + 1, sizeof(uint32_t));
			r->ra[k].t[r->ra[k].n++] = (uint32_t)i;
		}
	}
	if (attach) {
		r->attached = true;
		if ((e = fl_store_assignment_issued_in(s->st, id, &as, &n_as, errbuf)) != FL_OK)
			goto fail;
		for (size_t i = 0; i < n_as; i++) {
			uint64_t ti;

			if (!fl_sched_map_get(&r->tmap, as[i].tenant_id, &ti) ||
			    r->t[ti].out_id != 0 ||
			    fl_sched_map_get(&s->busy, as[i].tenant_id, NULL)) {
				e = fl_errf(errbuf, FL_EPARSE,
				            "rollout '%s': assignment %" PRIu64
				            " outstanding for tenant '%s', which has another or is "
				            "not in it",
				            id, as[i].id, as[i].tenant_id);
				goto fail;
			}
			if (memcmp(as[i].agent_pk, r->ra[r->t[ti].ra].a->pk, FL_STORE_KEY_LEN) !=
			    0) {
				/* The tenant moved to another agent since: this work is
				 * never sent to the new one (it was issued to the old,
				 * whose report the endpoint no longer takes for it). */
				if ((e = withdraw_moved(s, r, (uint32_t)ti, &as[i], now_ms,
				                        errbuf)) != FL_OK)
					goto fail;
				continue;
			}
			out_add(s, r, (uint32_t)ti, as[i].id, as[i].kind, 0);
		}
		/* Unreachable as stored, its agent online here (a coordinator that
		 * just started presumes every agent alive, agent_get): waiting
		 * again. Else nothing would: agent_seen acts only on an agent it
		 * had called silent, and the silence was the previous process's. */
		for (size_t i = 0; i < r->n_t; i++)
			if (r->t[i].row.state == FL_SCHED_UNREACHABLE &&
			    r->ra[r->t[i].ra].a->online &&
			    (e = reachable_again(s, r, &r->t[i], now_ms, errbuf)) != FL_OK)
				goto fail;
	}
	*out = r;
	e = FL_OK;
	goto done;
fail:
	fl_sched_rollout_free(s, r);
done:
	fl_store_assignments_free(as, n_as);
	fl_store_waves_free(ws, n_ws);
	fl_sched_map_fini(&ramap);
	return e;
}

static void free_all(struct fl_scheduler *s)
{
	while (s->live != NULL) {
		struct sched_rollout *r = s->live;

		s->live = r->next;
		fl_sched_rollout_free(s, r);
	}
}

void fl_sched_attach(struct fl_scheduler *s, struct sched_rollout *r)
{
	struct sched_rollout **p = &s->live;

	/* oldest first: older rollouts fill first */
	while (*p != NULL)
		p = &(*p)->next;
	r->next = NULL;
	*p = r;
}

/* Load every live rollout, in the caller's transaction or one of its own
 * (loading may withdraw work issued to a tenant's former agent). */
static enum fl_err load_all(struct fl_scheduler *s, int64_t now_ms, char *errbuf)
{
	struct fl_store_rollout *rows = NULL;
	size_t n = 0;
	enum fl_err e;
	bool own;

	free_all(s);
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		return e;
	if ((e = fl_store_rollout_list(s->st, false, 0, &rows, &n, errbuf)) != FL_OK)
		goto out;
	for (size_t i = n; i-- > 0;) {
		struct sched_rollout *r;

		e = fl_sched_load(s, rows[i].id, true, now_ms, &r, errbuf);
		if (e == FL_EPARSE) {
			/* A row that does not make sense (edited by hand, written by a
			 * tool) stops that rollout, not the coordinator. */
			fl_log_error(rows[i].id, "cannot schedule this rollout: %s", errbuf);
			e = FL_OK;
			continue;
		}
		if (e != FL_OK)
			break;
		fl_sched_attach(s, r);
	}
	fl_store_rollouts_free(rows, n);
out:
	e = fl_sched_tx_end(s, own, e, errbuf);
	if (e != FL_OK)
		free_all(s);
	return e;
}

enum fl_err fl_sched_ensure(struct fl_scheduler *s, int64_t now_ms, char *errbuf)
{
	enum fl_err e;

	if (now_ms > s->now_ms)
		s->now_ms = now_ms;
	if (!s->dirty)
		return FL_OK;
	if ((e = load_all(s, now_ms, errbuf)) == FL_OK)
		s->dirty = false;
	return e;
}

void fl_scheduler_invalidate(struct fl_scheduler *s)
{
	s->dirty = true;
}

/* A transaction was rolled back: whatever the model took from it is gone
 * from the store, so the model is read again before it is used. */
static void on_rollback(void *arg)
{
	((struct fl_scheduler *)arg)->dirty = true;
}

/* Drop finished rollouts from the live list (after an entry point's work:
 * nothing refers to them then but assignments, which hold their blobs). */
static void sweep(struct fl_scheduler *s)
{
	struct sched_rollout **p = &s->live;

	while (*p != NULL) {
		struct sched_rollout *r = *p;

		if (fl_sched_state_live(r->row.state)) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		fl_sched_rollout_free(s, r);
	}
}

struct sched_rollout *fl_sched_find(struct fl_scheduler *s, const char *id)
{
	for (struct sched_rollout *r = s->live; r != NULL; r = r->next)
		if (strcmp(r->row.id, id) == 0)
			return r;
	return NULL;
}

long fl_sched_tenant_index(const struct sched_rollout *r, const char *tenant_id)
{
	uint64_t i;

	return fl_sched_map_get(&r->tmap, tenant_id, &i) ? (long)i : -1;
}

struct sched_rollout *fl_sched_active_holder(struct fl_scheduler *s, const char *tenant_id,
                                             const struct sched_rollout *except)
{
	for (struct sched_rollout *r = s->live; r != NULL; r = r->next)
		if (r != except && state_active(r->row.state) &&
		    fl_sched_map_get(&r->tmap, tenant_id, NULL))
			return r;
	return NULL;
}

void fl_sched_wake_rollout(struct fl_scheduler *s, struct sched_rollout *r)
{
	for (size_t i = 0; i < r->n_ra; i++)
		wake(s, r->ra[i].a);
}

/* ---- agents coming and going ---- */

/* Tenants with work to do in the current wave of a rollout that schedules
 * (running or paused) whose agent is silent are unreachable. */
static bool waits_for_agent(const struct sched_tenant *t)
{
	return t->row.state == FL_SCHED_PENDING || t->row.state == FL_SCHED_BUSY ||
	       t->row.state == FL_SCHED_ASSIGNED;
}

static enum fl_err mark_unreachable(struct fl_scheduler *s, struct sched_rollout *r,
                                    struct sched_ragent *ra, int64_t now_ms, char *errbuf)
{
	enum fl_err e;

	if (r->row.state != RS_RUNNING && r->row.state != RS_PAUSED)
		return FL_OK;
	for (size_t k = 0; k < ra->n; k++) {
		struct sched_tenant *t = &r->t[ra->t[k]];

		if (t->row.wave != r->row.current_wave || !waits_for_agent(t))
			continue;
		t->row.since_ms = ra->a->last_seen_ms;
		if ((e = fl_sched_set_tenant(s, r, t, FL_SCHED_UNREACHABLE, now_ms, errbuf)) !=
		    FL_OK)
			return e;
	}
	return FL_OK;
}

enum fl_err fl_sched_mark_unreachable(struct fl_scheduler *s, struct sched_rollout *r,
                                      int64_t now_ms, char *errbuf)
{
	enum fl_err e;

	for (size_t i = 0; i < r->n_ra; i++)
		if (!r->ra[i].a->online &&
		    (e = mark_unreachable(s, r, &r->ra[i], now_ms, errbuf)) != FL_OK)
			return e;
	return FL_OK;
}

static enum fl_err agent_offline(struct fl_scheduler *s, struct sched_agent *a, int64_t now_ms,
                                 char *errbuf)
{
	enum fl_err e;

	if (!a->online)
		return FL_OK;
	a->online = false;
	fl_log_warn(a->name, "agent silent since %" PRId64 " ms ago: its tenants are unreachable",
	            now_ms - a->last_seen_ms);
	for (size_t i = 0; i < a->n_links; i++)
		if ((e = mark_unreachable(s, a->links[i].r, &a->links[i].r->ra[a->links[i].ra],
		                          now_ms, errbuf)) != FL_OK)
			return e;
	return FL_OK;
}

static enum fl_err agent_seen(struct fl_scheduler *s, struct sched_agent *a, int64_t now_ms,
                              char *errbuf)
{
	enum fl_err e;

	if (now_ms > a->last_seen_ms)
		a->last_seen_ms = now_ms;
	if (a->online)
		return FL_OK;
	a->online = true;
	fl_log_info(a->name, "agent back");
	for (size_t i = 0; i < a->n_links; i++) {
		struct sched_rollout *r = a->links[i].r;
		struct sched_ragent *ra = &r->ra[a->links[i].ra];

		for (size_t k = 0; k < ra->n; k++) {
			struct sched_tenant *t = &r->t[ra->t[k]];

			if (t->row.state == FL_SCHED_UNREACHABLE &&
			    (e = reachable_again(s, r, t, now_ms, errbuf)) != FL_OK)
				return e;
		}
	}
	return FL_OK;
}

/*
 * A tenant an agent now holds (reconcile gave it to this agent: its former
 * agent stopped listing it, or was revoked) that a live rollout still links
 * to another agent: the rollout follows it. The model is read again, which
 * links the tenant to this agent and withdraws work issued to the former
 * (withdraw_moved); the tenant gets its work from this agent.
 */
static enum fl_err follow_moves(struct fl_scheduler *s, struct sched_agent *a, int64_t now_ms,
                                char *errbuf)
{
	char **ids = NULL;
	size_t n = 0;
	bool moved = false;
	enum fl_err e;

	if (s->live == NULL)
		return FL_OK;
	if ((e = fl_store_tenant_ids_of_agent(s->st, a->pk, &ids, &n, errbuf)) != FL_OK)
		return e;
	for (size_t i = 0; i < n && !moved; i++)
		for (struct sched_rollout *r = s->live; r != NULL && !moved; r = r->next) {
			long ti = fl_sched_tenant_index(r, ids[i]);

			moved = ti >= 0 && r->ra[r->t[ti].ra].a != a;
		}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return moved ? load_all(s, now_ms, errbuf) : FL_OK;
}

enum fl_err fl_scheduler_hello(struct fl_scheduler *s, const uint8_t agent_pk[FL_STORE_KEY_LEN],
                               int64_t now_ms, char *errbuf)
{
	struct sched_agent *a;
	enum fl_err e;
	bool own;

	if ((e = fl_sched_ensure(s, now_ms, errbuf)) != FL_OK)
		return e;
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		return e;
	a = agent_get(s, agent_pk, now_ms);
	a->hello_at_ms = now_ms;
	if ((e = follow_moves(s, a, now_ms, errbuf)) == FL_OK)
		e = agent_seen(s, a, now_ms, errbuf);
	return fl_sched_tx_end(s, own, e, errbuf);
}

enum fl_err fl_scheduler_agent_state(struct fl_scheduler *s,
                                     const uint8_t agent_pk[FL_STORE_KEY_LEN], bool online,
                                     int64_t last_seen_ms, int64_t now_ms, char *errbuf)
{
	struct sched_agent *a;
	enum fl_err e;
	bool own;

	if ((e = fl_sched_ensure(s, now_ms, errbuf)) != FL_OK)
		return e;
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		return e;
	a = agent_get(s, agent_pk, now_ms);
	if (online) {
		e = agent_seen(s, a, now_ms, errbuf);
	} else {
		if (last_seen_ms > 0)
			a->last_seen_ms = last_seen_ms;
		e = agent_offline(s, a, now_ms, errbuf);
	}
	return fl_sched_tx_end(s, own, e, errbuf);
}

/* ---- the failure budget, halts, rollbacks ---- */

static enum fl_err trip(struct fl_scheduler *s, struct sched_rollout *r, struct sched_wave *w,
                        int64_t now_ms, char *errbuf)
{
	char reason[REASON_MAX], lim[96] = "";
	uint32_t failed = w->count[FL_SCHED_FAILED];
	enum fl_err e;

	if (w->pol->max_failures >= 0)
		snprintf(lim, sizeof(lim), ", max_failures %" PRId64, w->pol->max_failures);
	if (w->pol->max_failure_rate >= 0)
		snprintf(lim + strlen(lim), sizeof(lim) - strlen(lim), ", max_failure_rate %g",
		         w->pol->max_failure_rate);
	if (lim[0] == '\0')
		snprintf(lim, sizeof(lim), ", max_failures 0");
	snprintf(reason, sizeof(reason), "failure budget of wave '%s' exceeded: %u of %u failed%s",
	         w->pol->name, failed, w->total, lim);
	fl_log_warn(r->row.id, "%s", reason);
	if ((e = fl_sched_set_wave(s, r, w, WS_FAILED, reason, now_ms, errbuf)) != FL_OK ||
	    (e = fl_sched_audit(s, "wave_failed", r->row.id,
	                        FLOTILLA__V1__STATUS_CODE__STATUS_CODE_ABORTED, reason, now_ms,
	                        errbuf)) != FL_OK)
		return e;
	switch (policy_of(r)->on_failure) {
	case FL_ON_FAILURE_ROLLBACK_WAVE:
		return fl_sched_rollback(s, r, FL_STORE_ROLLBACK_WAVE, NULL, reason, now_ms,
		                         errbuf);
	case FL_ON_FAILURE_ROLLBACK_ALL:
		return fl_sched_rollback(s, r, FL_STORE_ROLLBACK_ALL, NULL, reason, now_ms, errbuf);
	default:
		return fl_sched_halt(s, r, reason, true, now_ms, errbuf);
	}
}

/* A tenant of r just failed: trip its wave's budget if that is too much. */
static enum fl_err budget(struct fl_scheduler *s, struct sched_rollout *r, struct sched_tenant *t,
                          int64_t now_ms, char *errbuf)
{
	struct sched_wave *w = &r->w[t->row.wave];

	if (r->row.state != RS_RUNNING && r->row.state != RS_PAUSED)
		return FL_OK;
	if (t->row.wave != r->row.current_wave ||
	    (w->row.state != WS_RUNNING && w->row.state != WS_BAKING))
		return FL_OK;
	if (!fl_wave_budget_exceeded(w->pol, w->count[FL_SCHED_FAILED], w->total))
		return FL_OK;
	return trip(s, r, w, now_ms, errbuf);
}

enum fl_err fl_sched_halt(struct fl_scheduler *s, struct sched_rollout *r, const char *reason,
                          bool audit, int64_t now_ms, char *errbuf)
{
	enum fl_err e;

	if ((e = fl_sched_set_rollout(s, r, RS_HALTED, reason, now_ms, errbuf)) != FL_OK)
		return e;
	if (audit && (e = fl_sched_audit(s, "halted", r->row.id,
	                                 FLOTILLA__V1__STATUS_CODE__STATUS_CODE_ABORTED, reason,
	                                 now_ms, errbuf)) != FL_OK)
		return e;
	fl_log_warn(r->row.id, "halted: %s", reason);
	/* Held polls of agents with work in it are answered now, with the halt. */
	for (size_t i = 0; i < r->n_ra; i++)
		if (r->ra[i].inflight > 0)
			wake(s, r->ra[i].a);
	return FL_OK;
}

enum fl_err fl_sched_withdrawn(struct fl_scheduler *s, const struct sched_rollout *r,
                               struct fl_sched_map *out, char *errbuf)
{
	char **ids = NULL;
	size_t n = 0;
	enum fl_err e;

	if ((e = fl_store_assignment_withdrawn_in(s->st, r->row.id, WK_APPLY, &ids, &n, errbuf)) !=
	    FL_OK)
		return e;
	for (size_t i = 0; i < n; i++) {
		fl_sched_map_put(out, ids[i], 1);
		free(ids[i]);
	}
	free(ids);
	return FL_OK;
}

bool fl_sched_touched(const struct sched_rollout *r, const struct sched_tenant *t,
                      const struct fl_sched_map *withdrawn)
{
	(void)r;
	return t->row.changed || (t->out_id != 0 && t->out_kind == WK_APPLY) ||
	       fl_sched_map_get(withdrawn, t->row.tenant_id, NULL);
}

enum fl_err fl_sched_rollback(struct fl_scheduler *s, struct sched_rollout *r,
                              enum fl_store_rollback_kind kind, const bool *which,
                              const char *reason, int64_t now_ms, char *errbuf)
{
	uint32_t cur = r->row.current_wave;
	struct fl_sched_map withdrawn = {0};
	enum fl_err e;

	/* Work withdrawn before any report (its agent went silent, the reply
	 * was lost) may have run: those tenants are reverted too. An agent
	 * reverts only what its ledger says it applied under the order, so a
	 * revert of work that never ran changes nothing. */
	if (kind != FL_STORE_ROLLBACK_MANUAL &&
	    (e = fl_sched_withdrawn(s, r, &withdrawn, errbuf)) != FL_OK)
		return e;
	if ((e = fl_store_rollout_set_rollback(
	         s->st, r->row.id, kind,
	         kind == FL_STORE_ROLLBACK_MANUAL && r->rb_blob ? r->rb_blob->data : NULL,
	         kind == FL_STORE_ROLLBACK_MANUAL && r->rb_blob ? r->rb_blob->len : 0, now_ms,
	         errbuf)) != FL_OK)
		goto out;
	r->row.rollback_kind = kind;
	if ((e = fl_sched_set_rollout(s, r, RS_ROLLING_BACK, reason, now_ms, errbuf)) != FL_OK)
		goto out;
	for (size_t i = 0; i < r->n_t; i++) {
		struct sched_tenant *t = &r->t[i];
		bool in;

		if (kind == FL_STORE_ROLLBACK_MANUAL)
			in = which != NULL && which[i];
		else
			in = (kind == FL_STORE_ROLLBACK_ALL || t->row.wave == cur) &&
			     fl_sched_touched(r, t, &withdrawn);
		if (!in && kind == FL_STORE_ROLLBACK_MANUAL && t->row.state == FL_SCHED_REVERTING &&
		    t->out_id == 0) {
			/* Left to revert by an earlier rollback (halted), and this
			 * order does not cover it: its REVERTs would now carry an
			 * order that does not authorise them, and be refused. */
			set_str(&t->row.last_error,
			        "not reverted: the rollback order does not cover this tenant");
			t->row.revert_failed = true;
			if ((e = fl_sched_set_tenant(s, r, t, FL_SCHED_FAILED, now_ms, errbuf)) !=
			    FL_OK)
				goto out;
			continue;
		}
		if (!in || t->row.state == FL_SCHED_REVERTING)
			continue;
		t->row.not_before_ms = 0;
		t->row.revert_failed = false;
		if ((e = fl_sched_set_tenant(s, r, t, FL_SCHED_REVERTING, now_ms, errbuf)) != FL_OK)
			goto out;
	}
	fl_sched_map_fini(&withdrawn);
	if (kind == FL_STORE_ROLLBACK_WAVE) {
		r->w[cur].row.rolled_back = true;
		if ((e = fl_store_wave_put(s->st, r->row.id, &r->w[cur].row, errbuf)) != FL_OK)
			return e;
	}
	if (kind != FL_STORE_ROLLBACK_MANUAL &&
	    (e = fl_sched_audit(s, "rolling_back", r->row.id, SC_OK, reason, now_ms, errbuf)) !=
	        FL_OK)
		return e;
	fl_log_warn(r->row.id, "rolling back (%s): %s",
	            kind == FL_STORE_ROLLBACK_MANUAL ? "signed rollback order"
	            : kind == FL_STORE_ROLLBACK_WAVE ? "rollback-wave"
	                                             : "rollback-all",
	            reason);
	fl_sched_wake_rollout(s, r);
	return fl_sched_advance(s, r, now_ms, errbuf);
out:
	fl_sched_map_fini(&withdrawn);
	return e;
}

/* Every tenant the rollback covered is settled: end it. */
static enum fl_err finish_rollback(struct fl_scheduler *s, struct sched_rollout *r, int64_t now_ms,
                                   char *errbuf)
{
	char reason[REASON_MAX];
	uint32_t failed = 0, reverted = 0;
	enum fl_err e;

	for (size_t i = 0; i < r->n_t; i++) {
		failed += r->t[i].row.revert_failed;
		reverted += r->t[i].row.state == FL_SCHED_ROLLED_BACK;
	}
	if (failed > 0) {
		snprintf(reason, sizeof(reason),
		         "rollback failed on %u tenants (%u rolled back): see their last errors",
		         failed, reverted);
		return fl_sched_halt(s, r, reason, true, now_ms, errbuf);
	}
	if (r->row.rollback_kind == FL_STORE_ROLLBACK_WAVE) {
		snprintf(reason, sizeof(reason), "wave '%s' rolled back (%u tenants) after: %s",
		         r->w[r->row.current_wave].pol->name, reverted, r->row.state_reason);
		return fl_sched_halt(s, r, reason, true, now_ms, errbuf);
	}
	snprintf(reason, sizeof(reason), "rolled back: %u tenants reverted", reverted);
	if ((e = fl_sched_set_rollout(s, r, RS_ROLLED_BACK, NULL, now_ms, errbuf)) != FL_OK ||
	    (e = fl_sched_audit(s, "rolled_back", r->row.id, SC_OK, reason, now_ms, errbuf)) !=
	        FL_OK)
		return e;
	fl_log_info(r->row.id, "%s", reason);
	/* The tenants are no longer in a rollout. */
	for (size_t i = 0; i < r->n_t; i++) {
		struct sched_tenant *t = &r->t[i];

		if ((e = fl_store_tenant_set_rollout(s->st, t->row.tenant_id, "", fleet_state(r, t),
		                                     NULL, now_ms, errbuf)) != FL_OK)
			return e;
	}
	return FL_OK;
}

static enum fl_err complete(struct fl_scheduler *s, struct sched_rollout *r, int64_t now_ms,
                            char *errbuf)
{
	char detail[REASON_MAX];
	uint32_t n[FL_SCHED_TENANT_STATES] = {0};
	enum fl_err e;

	for (size_t i = 0; i < r->n_t; i++)
		n[r->t[i].row.state]++;
	snprintf(detail, sizeof(detail), "%u applied, %u skipped, %u failed", n[FL_SCHED_APPLIED],
	         n[FL_SCHED_SKIPPED], n[FL_SCHED_FAILED]);
	if ((e = fl_sched_set_rollout(s, r, RS_COMPLETED, "", now_ms, errbuf)) != FL_OK ||
	    (e = fl_sched_audit(s, "completed", r->row.id, SC_OK, detail, now_ms, errbuf)) != FL_OK)
		return e;
	fl_log_info(r->row.id, "completed: %s", detail);
	for (size_t i = 0; i < r->n_t; i++) {
		struct sched_tenant *t = &r->t[i];
		int fs = t->row.state == FL_SCHED_FAILED
		             ? FLOTILLA__V1__TENANT_STATE__TENANT_STATE_FAILED
		             : FLOTILLA__V1__TENANT_STATE__TENANT_STATE_IDLE;

		if ((e = fl_store_tenant_set_rollout(s->st, t->row.tenant_id, "", fs, NULL, now_ms,
		                                     errbuf)) != FL_OK)
			return e;
	}
	return FL_OK;
}

/* ---- moving on ---- */

static bool wave_done(const struct sched_wave *w)
{
	return w->count[FL_SCHED_PENDING] + w->count[FL_SCHED_ASSIGNED] +
	               w->count[FL_SCHED_UNREACHABLE] + w->count[FL_SCHED_BUSY] +
	               w->count[FL_SCHED_REVERTING] ==
	           0 &&
	       w->inflight == 0 && w->checks_due == 0;
}

static enum fl_err start_wave(struct fl_scheduler *s, struct sched_rollout *r, struct sched_wave *w,
                              int64_t now_ms, char *errbuf)
{
	enum fl_err e;

	if ((e = fl_sched_set_wave(s, r, w, WS_RUNNING, "", now_ms, errbuf)) != FL_OK)
		return e;
	fl_log_info(r->row.id, "wave %u '%s' started: %u tenants", w->row.idx, w->pol->name,
	            w->total);
	for (size_t i = 0; i < r->n_ra; i++) {
		struct sched_ragent *ra = &r->ra[i];

		if (!ra->a->online) {
			if ((e = mark_unreachable(s, r, ra, now_ms, errbuf)) != FL_OK)
				return e;
		} else {
			wake(s, ra->a);
		}
	}
	return FL_OK;
}

/* Start a round of checks: every applied tenant of the wave gets a CHECK. */
static enum fl_err check_round(struct fl_scheduler *s, struct sched_rollout *r,
                               struct sched_wave *w, int64_t now_ms, char *errbuf)
{
	int64_t interval = policy_of(r)->health_interval_ms;
	enum fl_err e;

	for (size_t i = 0; i < r->n_t; i++) {
		struct sched_tenant *t = &r->t[i];

		if (t->row.wave != w->row.idx || t->row.state != FL_SCHED_APPLIED || t->out_id != 0)
			continue;
		set_check_due(r, t, true);
		if ((e = put_tenant(s, r, t, now_ms, errbuf)) != FL_OK)
			return e;
		wake(s, r->ra[t->ra].a);
	}
	if (w->row.next_check_at_ms >= w->row.bake_until_ms)
		w->row.next_check_at_ms = 0; /* that was the last round */
	else
		w->row.next_check_at_ms = now_ms + interval < w->row.bake_until_ms
		                              ? now_ms + interval
		                              : w->row.bake_until_ms;
	return fl_store_wave_put(s->st, r->row.id, &w->row, errbuf);
}

/* The wave is done (and baked): through its gate. */
static enum fl_err gate(struct fl_scheduler *s, struct sched_rollout *r, struct sched_wave *w,
                        int64_t now_ms, char *errbuf)
{
	bool baked = w->row.state == WS_BAKING;
	enum fl_err e;

	w->row.bake_until_ms = baked ? w->row.bake_until_ms : 0;
	if (w->pol->gate == FL_GATE_MANUAL) {
		e = fl_sched_set_wave(s, r, w, WS_AWAITING, "waiting for promote", now_ms, errbuf);
		fl_log_info(r->row.id, "wave %u '%s' done: waiting for promote", w->row.idx,
		            w->pol->name);
	} else {
		e = fl_sched_set_wave(s, r, w, WS_COMPLETED, "", now_ms, errbuf);
	}
	if (e == FL_OK && baked)
		e = put_applied(s, r, w->row.idx, now_ms, errbuf);
	return e;
}

enum fl_err fl_sched_advance(struct fl_scheduler *s, struct sched_rollout *r, int64_t now_ms,
                             char *errbuf)
{
	enum fl_err e;

	for (;;) {
		struct sched_wave *w;

		if (r->row.state == RS_ROLLING_BACK) {
			/* settled: nothing left to revert, no work of it still out */
			for (size_t i = 0; i < r->n_w; i++)
				if (r->w[i].count[FL_SCHED_REVERTING] > 0 || r->w[i].inflight > 0)
					return FL_OK;
			return finish_rollback(s, r, now_ms, errbuf);
		}
		if (r->row.state == RS_PENDING)
			return FL_OK;
		if (r->row.state != RS_RUNNING)
			return FL_OK;
		if (r->row.current_wave >= r->n_w)
			return complete(s, r, now_ms, errbuf);
		w = &r->w[r->row.current_wave];
		switch (w->row.state) {
		case WS_PENDING:
			if ((e = start_wave(s, r, w, now_ms, errbuf)) != FL_OK)
				return e;
			continue;
		case WS_RUNNING:
			if (!wave_done(w))
				return FL_OK;
			/* A wave never passes with its budget exceeded (failures taken
			 * while halted and left by a retry of some tenants). */
			if (fl_wave_budget_exceeded(w->pol, w->count[FL_SCHED_FAILED], w->total))
				return trip(s, r, w, now_ms, errbuf);
			if (w->pol->bake_ms > 0 && w->count[FL_SCHED_APPLIED] > 0) {
				w->row.bake_until_ms = now_ms + w->pol->bake_ms;
				w->row.next_check_at_ms =
				    policy_of(r)->n_checks == 0 ? 0
				    : now_ms + policy_of(r)->health_interval_ms <
				            w->row.bake_until_ms
				        ? now_ms + policy_of(r)->health_interval_ms
				        : w->row.bake_until_ms;
				if ((e = fl_sched_set_wave(s, r, w, WS_BAKING, "", now_ms,
				                           errbuf)) != FL_OK ||
				    (e = put_applied(s, r, w->row.idx, now_ms, errbuf)) != FL_OK)
					return e;
				fl_log_info(r->row.id, "wave %u '%s' baking for %" PRId64 " ms",
				            w->row.idx, w->pol->name, w->pol->bake_ms);
				continue;
			}
			if ((e = gate(s, r, w, now_ms, errbuf)) != FL_OK)
				return e;
			continue;
		case WS_BAKING:
			if (policy_of(r)->n_checks > 0 && w->row.next_check_at_ms != 0 &&
			    now_ms >= w->row.next_check_at_ms && w->checks_due == 0 &&
			    w->checks_out == 0) {
				if ((e = check_round(s, r, w, now_ms, errbuf)) != FL_OK)
					return e;
			}
			if (now_ms < w->row.bake_until_ms || w->checks_due > 0 ||
			    w->checks_out > 0 ||
			    (policy_of(r)->n_checks > 0 && w->row.next_check_at_ms != 0 &&
			     w->count[FL_SCHED_APPLIED] > 0))
				return FL_OK;
			if (!wave_done(w))
				return FL_OK;
			if (fl_wave_budget_exceeded(w->pol, w->count[FL_SCHED_FAILED], w->total))
				return trip(s, r, w, now_ms, errbuf);
			if ((e = gate(s, r, w, now_ms, errbuf)) != FL_OK)
				return e;
			continue;
		case WS_COMPLETED:
			r->row.current_wave++;
			if (r->row.current_wave >= r->n_w)
				return complete(s, r, now_ms, errbuf);
			if ((e = fl_sched_set_rollout(s, r, RS_RUNNING, NULL, now_ms, errbuf)) !=
			    FL_OK)
				return e;
			continue;
		default: /* awaiting promote, failed */
			return FL_OK;
		}
	}
}

/* ---- work ---- */

struct work_priv {
	struct fl_sched_blob **blobs;
	size_t n_blobs, cap_blobs;
	size_t cap_a, cap_h;
};

void fl_scheduler_work_fini(struct fl_scheduler_work *w)
{
	struct work_priv *p = w->priv;

	for (size_t i = 0; i < w->n_assignments; i++) {
		Flotilla__V1__WorkAssignment *a = w->assignments[i];

		free(a->rollout_id);
		free(a->tenant_id);
		free(a->release_hash.data);
		free(a->target_migration_id);
		free(a);
	}
	free(w->assignments);
	for (size_t i = 0; i < w->n_halts; i++) {
		free(w->halts[i]->rollout_id);
		free(w->halts[i]->reason);
		free(w->halts[i]);
	}
	free(w->halts);
	if (p != NULL) {
		for (size_t i = 0; i < p->n_blobs; i++)
			fl_sched_blob_unref(p->blobs[i]);
		free(p->blobs);
		free(p);
	}
	memset(w, 0, sizeof(*w));
}

static void work_keep(struct fl_scheduler_work *w, struct fl_sched_blob *b)
{
	struct work_priv *p = w->priv;

	p->blobs = fl_grow(p->blobs, &p->cap_blobs, p->n_blobs + 1, sizeof(*p->blobs));
	p->blobs[p->n_blobs++] = fl_sched_blob_ref(b);
}

static void work_add(struct fl_scheduler_work *w, const struct sched_rollout *r,
                     const struct sched_tenant *t)
{
	struct work_priv *p = w->priv;
	Flotilla__V1__WorkAssignment *a = fl_malloc(sizeof(*a));
	const char *target = "";

	flotilla__v1__work_assignment__init(a);
	a->assignment_id = t->out_id;
	a->rollout_id = fl_strdup(r->row.id);
	a->wave = t->row.wave;
	a->tenant_id = fl_strdup(t->row.tenant_id);
	a->release_hash.data = fl_malloc(FL_STORE_HASH_LEN);
	memcpy(a->release_hash.data, r->row.release_hash, FL_STORE_HASH_LEN);
	a->release_hash.len = FL_STORE_HASH_LEN;
	a->kind = (Flotilla__V1__WorkKind)t->out_kind;
	if (t->out_kind == WK_APPLY)
		target = r->row.target_migration_id;
	else if (t->out_kind == WK_REVERT && r->row.rollback_kind == FL_STORE_ROLLBACK_MANUAL &&
	         r->rb != NULL)
		target = r->rb->target_migration_id;
	a->target_migration_id = fl_strdup(target);
	a->signed_order.data = r->order_blob->data;
	a->signed_order.len = r->order_blob->len;
	work_keep(w, r->order_blob);
	if (t->out_kind == WK_REVERT && r->row.rollback_kind == FL_STORE_ROLLBACK_MANUAL &&
	    r->rb_blob != NULL) {
		a->signed_rollback_order.data = r->rb_blob->data;
		a->signed_rollback_order.len = r->rb_blob->len;
		work_keep(w, r->rb_blob);
	}
	w->assignments =
	    fl_grow(w->assignments, &p->cap_a, w->n_assignments + 1, sizeof(*w->assignments));
	w->assignments[w->n_assignments++] = a;
}

static void halt_add(struct fl_scheduler_work *w, const struct sched_rollout *r)
{
	struct work_priv *p = w->priv;
	Flotilla__V1__Halt *h;

	for (size_t i = 0; i < w->n_halts; i++)
		if (strcmp(w->halts[i]->rollout_id, r->row.id) == 0)
			return;
	h = fl_malloc(sizeof(*h));
	flotilla__v1__halt__init(h);
	h->rollout_id = fl_strdup(r->row.id);
	h->reason = fl_strdup(r->row.state_reason[0] ? r->row.state_reason : "halted");
	w->halts = fl_grow(w->halts, &p->cap_h, w->n_halts + 1, sizeof(*w->halts));
	w->halts[w->n_halts++] = h;
}

static bool halted_here(const struct fl_scheduler_work *w, const struct sched_rollout *r)
{
	for (size_t i = 0; i < w->n_halts; i++)
		if (strcmp(w->halts[i]->rollout_id, r->row.id) == 0)
			return true;
	return false;
}

/* Whether outstanding work of this kind must stop in a rollout in this state. */
static bool must_stop(const struct sched_rollout *r, int kind)
{
	if (r->row.state == RS_HALTED)
		return true;
	return r->row.state == RS_ROLLING_BACK && kind != WK_REVERT;
}

/*
 * Whether the agent must hear (again) that t's outstanding work must stop.
 * A Halt is sent once: the agent stops or finishes the work as the order's
 * on_halt says and reports it; sent on every poll, a halt answers each poll
 * at once and the agent's polls spin until that report. Sent again after
 * the agent's Hello (it restarted: the work may be running again), or once
 * resend_after_ms passed (the reply that carried it may have been lost) but
 * not while rolling back, where a second halt would also cancel the REVERTs
 * of the rollout sent since the first.
 */
static bool halt_due(const struct fl_scheduler *s, const struct sched_agent *a,
                     const struct sched_rollout *r, const struct sched_tenant *t, int64_t now_ms)
{
	if (!must_stop(r, t->out_kind))
		return false;
	if (t->halt_sent == 0 || t->halt_sent < a->hello_at_ms)
		return true;
	return r->row.state != RS_ROLLING_BACK && now_ms - t->halt_sent >= s->resend_after_ms;
}

/* Whether agents would refuse the rollback's REVERTs: the rollout order
 * expired (agents check it for every assignment, REVERTs under a signed
 * rollback order included), or the rollback order did. */
static bool rollback_expired_at(const struct sched_rollout *r, int64_t now_ms)
{
	if (now_ms >= r->row.expires_at_ms)
		return true;
	return r->row.rollback_kind == FL_STORE_ROLLBACK_MANUAL &&
	       (r->rb == NULL || now_ms >= r->rb->expires_at_ms);
}

/* Whether the rollout still wants work of this kind done (and an agent
 * would take it: the order authorising it has not expired). */
static bool wanted(const struct sched_rollout *r, int kind, int64_t now_ms)
{
	if (kind == WK_REVERT)
		return r->row.state == RS_ROLLING_BACK && !rollback_expired_at(r, now_ms);
	return (r->row.state == RS_RUNNING || r->row.state == RS_PAUSED) &&
	       now_ms < r->row.expires_at_ms;
}

/* Issue an assignment of kind for tenant ti: committed with the rest of the
 * transaction before the caller sends it. */
static enum fl_err issue(struct fl_scheduler *s, struct sched_rollout *r, uint32_t ti, int kind,
                         int64_t now_ms, struct fl_scheduler_work *out, char *errbuf)
{
	struct sched_tenant *t = &r->t[ti];
	struct fl_store_assignment a = {0};
	enum fl_err e;

	if ((e = fl_store_assignment_next_id(s->st, &a.id, errbuf)) != FL_OK)
		return e;
	a.rollout_id = r->row.id;
	a.wave = t->row.wave;
	a.tenant_id = t->row.tenant_id;
	memcpy(a.agent_pk, r->ra[t->ra].a->pk, FL_STORE_KEY_LEN);
	a.kind = kind;
	a.target_migration_id =
	    kind == WK_APPLY ? r->row.target_migration_id
	    : kind == WK_REVERT && r->row.rollback_kind == FL_STORE_ROLLBACK_MANUAL && r->rb
	        ? r->rb->target_migration_id
	        : "";
	a.state = FL_STORE_ASSIGNMENT_ISSUED;
	a.issued_at_ms = now_ms;
	if ((e = fl_store_assignment_add(s->st, &a, errbuf)) != FL_OK)
		return e;
	out_add(s, r, ti, a.id, kind, now_ms);
	if (kind == WK_APPLY) {
		t->row.attempts++;
		t->row.not_before_ms = 0;
		e = fl_sched_set_tenant(s, r, t, FL_SCHED_ASSIGNED, now_ms, errbuf);
	} else {
		if (kind == WK_CHECK)
			set_check_due(r, t, false);
		t->row.not_before_ms = 0;
		e = put_tenant(s, r, t, now_ms, errbuf);
	}
	if (e != FL_OK)
		return e;
	work_add(out, r, t);
	fl_log_debug(r->row.id, "assignment %" PRIu64 " (%s) for tenant '%s' on agent '%s'", a.id,
	             kind == WK_APPLY   ? "apply"
	             : kind == WK_CHECK ? "check"
	                                : "revert",
	             t->row.tenant_id, r->ra[t->ra].a->name);
	return FL_OK;
}

/* Whether a tenant of wave w may get one more assignment now. */
static bool room(const struct sched_rollout *r, const struct sched_ragent *ra,
                 const struct sched_wave *w)
{
	return w->inflight < w->pol->max_parallel && ra->inflight < fl_sched_per_agent(r, w);
}

/* New work for one agent in one rollout, up to *free. */
static enum fl_err fill(struct fl_scheduler *s, struct sched_rollout *r, struct sched_ragent *ra,
                        const struct fl_sched_map *held, uint32_t *free_slots, int64_t now_ms,
                        struct fl_scheduler_work *out, char *errbuf)
{
	int minute = minute_of_day(now_ms);
	enum fl_err e;

	if (r->row.state == RS_RUNNING && now_ms < r->row.expires_at_ms &&
	    r->row.current_wave < r->n_w) {
		struct sched_wave *w = &r->w[r->row.current_wave];
		bool baking = w->row.state == WS_BAKING;

		if (w->row.state != WS_RUNNING && !baking)
			return FL_OK;
		for (size_t k = 0; k<ra->n && * free_slots> 0 && room(r, ra, w); k++) {
			uint32_t ti = ra->t[k];
			struct sched_tenant *t = &r->t[ti];
			int kind;

			if (t->row.wave != w->row.idx || t->out_id != 0)
				continue;
			if (t->row.state == FL_SCHED_APPLIED && t->row.check_due)
				kind = WK_CHECK; /* baking, or applied by an earlier attempt */
			else if (!baking && (t->row.state == FL_SCHED_PENDING ||
			                     (t->row.state == FL_SCHED_BUSY &&
			                      now_ms >= t->row.not_before_ms)))
				kind = WK_APPLY;
			else
				continue;
			if (fl_sched_map_get(&s->busy, t->row.tenant_id, NULL) ||
			    fl_sched_map_get(held, t->row.tenant_id, NULL))
				continue; /* other work is outstanding there, or still held */
			if (kind == WK_APPLY &&
			    !fl_policy_may_start(policy_of(r), &t->row.labels, minute))
				continue;
			if ((e = issue(s, r, ti, kind, now_ms, out, errbuf)) != FL_OK)
				return e;
			(*free_slots)--;
		}
		return FL_OK;
	}
	if (r->row.state == RS_ROLLING_BACK) {
		if (rollback_expired_at(r, now_ms))
			return FL_OK; /* agents would refuse it: the order expired */
		for (size_t k = 0; k<ra->n && * free_slots> 0; k++) {
			uint32_t ti = ra->t[k];
			struct sched_tenant *t = &r->t[ti];

			if (t->row.state != FL_SCHED_REVERTING || t->out_id != 0 ||
			    now_ms < t->row.not_before_ms ||
			    fl_sched_map_get(&s->busy, t->row.tenant_id, NULL) ||
			    fl_sched_map_get(held, t->row.tenant_id, NULL) ||
			    !room(r, ra, &r->w[t->row.wave]))
				continue;
			if ((e = issue(s, r, ti, WK_REVERT, now_ms, out, errbuf)) != FL_OK)
				return e;
			(*free_slots)--;
		}
	}
	return FL_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Withdraw an outstanding assignment: it will not be sent again, and a
 * report for it later changes nothing but what it proves applied. */
static enum fl_err withdraw(struct fl_scheduler *s, struct sched_rollout *r, uint32_t ti,
                            int64_t now_ms, char *errbuf)
{
	struct sched_tenant *t = &r->t[ti];
	int kind = t->out_kind;
	enum fl_err e;

	if ((e = fl_store_assignment_set_state(s->st, t->out_id, FL_STORE_ASSIGNMENT_CANCELED, 0,
	                                       now_ms, errbuf)) != FL_OK)
		return e;
	out_clear(s, r, ti);
	if (kind == WK_APPLY && t->row.state == FL_SCHED_ASSIGNED)
		return fl_sched_set_tenant(s, r, t, FL_SCHED_PENDING, now_ms, errbuf);
	return put_tenant(s, r, t, now_ms, errbuf);
}

/*
 * Tenants for which the agent lists as running an assignment the scheduler
 * withdrew (it went silent with it, it moved): nothing new is sent for them
 * until it is no longer listed, so the agent never holds two assignments
 * for one tenant (a REVERT must not overtake the APPLY it is to undo).
 * Ids the scheduler has outstanding for the agent are skipped; so are ids
 * not issued to this agent.
 */
static enum fl_err held_withdrawn(struct fl_scheduler *s, const struct sched_agent *a,
                                  const uint64_t *ids, size_t n, struct fl_sched_map *held,
                                  char *errbuf)
{
	enum fl_err e;

	for (size_t i = 0; i < n; i++) {
		struct fl_store_assignment as;
		bool mine = false;

		if (i > 0 && ids[i] == ids[i - 1])
			continue;
		for (size_t k = 0; k < a->n_out && !mine; k++)
			mine = a->out[k].r->t[a->out[k].t].out_id == ids[i];
		if (mine)
			continue;
		e = fl_store_assignment_get(s->st, ids[i], &as, errbuf);
		if (e == FL_ENOENT)
			continue;
		if (e != FL_OK)
			return e;
		if (as.state == FL_STORE_ASSIGNMENT_CANCELED &&
		    memcmp(as.agent_pk, a->pk, FL_STORE_KEY_LEN) == 0)
			fl_sched_map_put(held, as.tenant_id, ids[i]);
		fl_store_assignment_fini(&as);
	}
	return FL_OK;
}

enum fl_err fl_scheduler_poll(struct fl_scheduler *s, const uint8_t agent_pk[FL_STORE_KEY_LEN],
                              uint32_t free_slots, const uint64_t *running, size_t n_running,
                              int64_t now_ms, struct fl_scheduler_work *out, char *errbuf)
{
	struct sched_agent *a;
	struct fl_sched_map held = {0};
	uint64_t *ids = NULL;
	enum fl_err e;
	bool own;

	memset(out, 0, sizeof(*out));
	out->priv = fl_calloc(1, sizeof(struct work_priv));
	if ((e = fl_sched_ensure(s, now_ms, errbuf)) != FL_OK)
		return e;
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		return e;
	a = agent_get(s, agent_pk, now_ms);
	if ((e = agent_seen(s, a, now_ms, errbuf)) != FL_OK)
		goto out;
	if (n_running > 0) {
		ids = fl_malloc(n_running * sizeof(*ids));
		memcpy(ids, running, n_running * sizeof(*ids));
		qsort(ids, n_running, sizeof(*ids), cmp_u64);
	}
	/* Halts first: a rollout halted here gets no new work in this reply. */
	for (size_t i = 0; i < a->n_out; i++) {
		struct sched_rollout *r = a->out[i].r;

		if (halt_due(s, a, r, &r->t[a->out[i].t], now_ms))
			halt_add(out, r);
	}
	for (size_t i = 0; i < a->n_out; i++) {
		struct sched_rollout *r = a->out[i].r;
		struct sched_tenant *t = &r->t[a->out[i].t];

		if (must_stop(r, t->out_kind) && halted_here(out, r))
			t->halt_sent = now_ms;
	}
	if ((e = held_withdrawn(s, a, ids, n_running, &held, errbuf)) != FL_OK)
		goto out;
	/* Lost assignments: sent again with the same id, or withdrawn when no
	 * longer wanted. */
	for (size_t i = 0; i < a->n_out;) {
		struct sched_rollout *r = a->out[i].r;
		uint32_t ti = a->out[i].t;
		struct sched_tenant *t = &r->t[ti];
		bool listed = ids && bsearch(&t->out_id, ids, n_running, sizeof(*ids), cmp_u64);
		bool lost = !listed && (t->out_sent == 0 || t->out_sent < a->hello_at_ms ||
		                        now_ms - t->out_sent >= s->resend_after_ms);

		if (!lost) {
			i++;
			continue;
		}
		if (!wanted(r, t->out_kind, now_ms)) {
			fl_log_info(r->row.id,
			            "assignment %" PRIu64 " for tenant '%s' lost by agent '%s' and "
			            "no longer wanted: withdrawn",
			            t->out_id, t->row.tenant_id, a->name);
			if ((e = withdraw(s, r, ti, now_ms, errbuf)) != FL_OK)
				goto out;
			continue; /* out[i] now holds another entry */
		}
		i++;
		if (free_slots == 0 || halted_here(out, r))
			continue;
		fl_log_info(r->row.id,
		            "assignment %" PRIu64 " for tenant '%s' sent again to agent '%s'",
		            t->out_id, t->row.tenant_id, a->name);
		t->out_sent = now_ms;
		work_add(out, r, t);
		free_slots--;
	}
	for (size_t i = 0; i < a->n_links && free_slots > 0; i++) {
		struct sched_rollout *r = a->links[i].r;

		if (halted_here(out, r))
			continue;
		if ((e = fill(s, r, &r->ra[a->links[i].ra], &held, &free_slots, now_ms, out,
		              errbuf)) != FL_OK)
			goto out;
	}
out:
	free(ids);
	fl_sched_map_fini(&held);
	e = fl_sched_tx_end(s, own, e, errbuf);
	if (e != FL_OK) {
		fl_scheduler_work_fini(out);
		out->priv = fl_calloc(1, sizeof(struct work_priv));
	}
	sweep(s);
	return e;
}

/* ---- reports ---- */

/* Whether a report about an assignment of this kind (the coordinator's
 * record, not what the report says it is) proves a migration applied. */
static bool report_changed(const Flotilla__V1__Report *rp, int kind)
{
	if (rp->outcome == OC(APPLIED) || rp->outcome == OC(HEALTH_FAILED) ||
	    rp->outcome == OC(INCONCLUSIVE))
		return kind == WK_APPLY;
	for (size_t i = 0; i < rp->n_migrations; i++)
		if (rp->migrations[i]->outcome == OC(APPLIED))
			return true;
	return false;
}

static const char *outcome_name(int o)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&flotilla__v1__outcome__descriptor, o);

	return v ? v->name : "?";
}

/* What went wrong, by the agent's words: quoted (an agent's text never puts
 * a control character in a state reason, an audit entry or a terminal). */
static void error_of(const Flotilla__V1__Report *rp, char *out, size_t n)
{
	const char *m = rp->message && rp->message[0] ? rp->message : "";
	char q[REASON_MAX];

	if (m[0] == '\0')
		for (size_t i = 0; i < rp->n_migrations; i++)
			if (rp->migrations[i]->message && rp->migrations[i]->message[0]) {
				m = rp->migrations[i]->message;
				break;
			}
	if (m[0] == '\0')
		for (size_t i = 0; i < rp->n_health; i++)
			if (!rp->health[i]->ok && rp->health[i]->message) {
				m = rp->health[i]->message;
				break;
			}
	fl_err_quote(q, sizeof(q), m, strlen(m));
	snprintf(out, n, "%s%s%s", outcome_name(rp->outcome), q[0] ? ": " : "", q);
}

static enum fl_err pause_for(struct fl_scheduler *s, struct sched_rollout *r,
                             const struct sched_tenant *t, const Flotilla__V1__Report *rp,
                             int64_t now_ms, char *errbuf)
{
	char reason[REASON_MAX], err[256];
	struct sched_wave *w = &r->w[t->row.wave];
	enum fl_err e;

	if (r->row.state != RS_RUNNING)
		return FL_OK;
	error_of(rp, err, sizeof(err));
	snprintf(reason, sizeof(reason), "health check inconclusive on '%s': paused (%s)",
	         t->row.tenant_id, err);
	if ((e = fl_sched_set_rollout(s, r, RS_PAUSED, reason, now_ms, errbuf)) != FL_OK ||
	    (e = fl_sched_set_wave(s, r, w, w->row.state, reason, now_ms, errbuf)) != FL_OK ||
	    (e = fl_sched_audit(s, "paused", r->row.id, SC_OK, reason, now_ms, errbuf)) != FL_OK)
		return e;
	fl_log_warn(r->row.id, "%s", reason);
	return FL_OK;
}

static enum fl_err on_apply(struct fl_scheduler *s, struct sched_rollout *r, struct sched_tenant *t,
                            const Flotilla__V1__Report *rp, int64_t now_ms, char *errbuf)
{
	char err[FL_ERRBUF_SIZE];
	int o = rp->outcome;
	enum fl_err e;

	if (t->row.state == FL_SCHED_REVERTING) {
		/* A rollback began while this ran: revert it if it changed anything,
		 * or may have: SKIPPED says the tenant holds the target (it did not
		 * when the rollout started: an earlier attempt got there), and an
		 * attempt withdrawn unreported may have run. */
		if (t->row.changed || o == OC(SKIPPED))
			return put_tenant(s, r, t, now_ms, errbuf);
		{
			struct fl_sched_map wd = {0};
			bool maybe;

			if ((e = fl_sched_withdrawn(s, r, &wd, errbuf)) != FL_OK)
				return e;
			maybe = fl_sched_map_get(&wd, t->row.tenant_id, NULL);
			fl_sched_map_fini(&wd);
			if (maybe)
				return put_tenant(s, r, t, now_ms, errbuf);
		}
		if (is_failure(o)) {
			error_of(rp, err, sizeof(err));
			set_str(&t->row.last_error, err);
		}
		return fl_sched_set_tenant(s, r, t,
		                           is_failure(o) ? FL_SCHED_FAILED : FL_SCHED_ROLLED_BACK,
		                           now_ms, errbuf);
	}
	if (o == OC(APPLIED) || o == OC(HEALTHY))
		return fl_sched_set_tenant(s, r, t, FL_SCHED_APPLIED, now_ms, errbuf);
	if (o == OC(SKIPPED)) {
		/* The tenant holds the target, which it did not when the rollout
		 * started: an earlier attempt got there (its health checks failed,
		 * or its report never came), or someone did by hand. The agent ran
		 * no check for this APPLY: the tenant counts as applied and is
		 * checked before its wave moves on, so a retry never lets a tenant
		 * that failed its checks through unchecked. */
		if (policy_of(r)->n_checks > 0)
			set_check_due(r, t, true);
		if ((e = fl_sched_set_tenant(s, r, t, FL_SCHED_APPLIED, now_ms, errbuf)) != FL_OK)
			return e;
		if (t->row.check_due)
			wake(s, r->ra[t->ra].a);
		return FL_OK;
	}
	if (o == OC(BUSY)) {
		t->row.not_before_ms = now_ms + s->busy_retry_ms;
		return fl_sched_set_tenant(s, r, t, FL_SCHED_BUSY, now_ms, errbuf);
	}
	if (o == OC(CANCELED)) {
		if (!r->ra[t->ra].a->online)
			return fl_sched_set_tenant(s, r, t, FL_SCHED_UNREACHABLE, now_ms, errbuf);
		/* Tried again at once (a halt, an agent restarting), but not in a
		 * loop: an agent that cancels every try waits like a busy one. */
		if (t->row.attempts >= CANCELED_TRIES) {
			t->row.not_before_ms = now_ms + s->busy_retry_ms;
			return fl_sched_set_tenant(s, r, t, FL_SCHED_BUSY, now_ms, errbuf);
		}
		return fl_sched_set_tenant(s, r, t, FL_SCHED_PENDING, now_ms, errbuf);
	}
	if (o == OC(INCONCLUSIVE)) {
		if ((e = fl_sched_set_tenant(s, r, t, FL_SCHED_APPLIED, now_ms, errbuf)) != FL_OK)
			return e;
		return pause_for(s, r, t, rp, now_ms, errbuf);
	}
	/* a failure (or an outcome that makes no sense for APPLY: one too) */
	error_of(rp, err, sizeof(err));
	set_str(&t->row.last_error, err);
	if ((e = fl_sched_set_tenant(s, r, t, FL_SCHED_FAILED, now_ms, errbuf)) != FL_OK)
		return e;
	return budget(s, r, t, now_ms, errbuf);
}

static enum fl_err on_check(struct fl_scheduler *s, struct sched_rollout *r, struct sched_tenant *t,
                            const Flotilla__V1__Report *rp, int64_t now_ms, char *errbuf)
{
	char err[FL_ERRBUF_SIZE];
	int o = rp->outcome;
	enum fl_err e;

	if (t->row.state != FL_SCHED_APPLIED)
		return put_tenant(s, r, t, now_ms, errbuf); /* reverting, failed meanwhile */
	if (o == OC(HEALTHY) || o == OC(APPLIED) || o == OC(SKIPPED))
		return put_tenant(s, r, t, now_ms, errbuf);
	if (o == OC(BUSY) || o == OC(CANCELED)) {
		/* try again this round, while the wave bakes (or runs: a check
		 * of a tenant applied by an earlier attempt) */
		if (r->w[t->row.wave].row.state == WS_BAKING ||
		    r->w[t->row.wave].row.state == WS_RUNNING)
			set_check_due(r, t, true);
		return put_tenant(s, r, t, now_ms, errbuf);
	}
	if (o == OC(INCONCLUSIVE))
		return pause_for(s, r, t, rp, now_ms, errbuf);
	error_of(rp, err, sizeof(err));
	set_str(&t->row.last_error, err);
	if ((e = fl_sched_set_tenant(s, r, t, FL_SCHED_FAILED, now_ms, errbuf)) != FL_OK)
		return e;
	return budget(s, r, t, now_ms, errbuf);
}

static enum fl_err on_revert(struct fl_scheduler *s, struct sched_rollout *r,
                             struct sched_tenant *t, const Flotilla__V1__Report *rp, int64_t now_ms,
                             char *errbuf)
{
	char err[FL_ERRBUF_SIZE], msg[FL_ERRBUF_SIZE + 32];
	int o = rp->outcome;

	if (t->row.state != FL_SCHED_REVERTING)
		return put_tenant(s, r, t, now_ms, errbuf);
	if (o == OC(ROLLED_BACK) || o == OC(SKIPPED) || o == OC(INCONCLUSIVE) || o == OC(HEALTHY)) {
		/* what the rollout changed there is undone: a later rollback (a
		 * signed one after rollback-wave) does not revert it again */
		t->row.changed = false;
		return fl_sched_set_tenant(s, r, t, FL_SCHED_ROLLED_BACK, now_ms, errbuf);
	}
	if (o == OC(BUSY) || o == OC(CANCELED)) {
		t->row.not_before_ms = o == OC(BUSY) ? now_ms + s->busy_retry_ms : 0;
		return fl_sched_set_tenant(s, r, t, FL_SCHED_REVERTING, now_ms, errbuf);
	}
	error_of(rp, err, sizeof(err));
	snprintf(msg, sizeof(msg), "rollback failed: %s", err);
	set_str(&t->row.last_error, msg);
	t->row.revert_failed = true;
	return fl_sched_set_tenant(s, r, t, FL_SCHED_FAILED, now_ms, errbuf);
}

enum fl_err fl_scheduler_report(struct fl_scheduler *s, const struct fl_store_assignment *as,
                                const Flotilla__V1__Report *rp, int64_t now_ms, char *errbuf)
{
	struct sched_rollout *r;
	struct sched_tenant *t = NULL;
	struct sched_agent *a;
	long ti = -1;
	enum fl_err e;
	bool own;

	if ((e = fl_sched_ensure(s, now_ms, errbuf)) != FL_OK)
		return e;
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		return e;
	a = agent_get(s, as->agent_pk, now_ms);
	if ((e = agent_seen(s, a, now_ms, errbuf)) != FL_OK)
		goto out;
	r = fl_sched_find(s, as->rollout_id);
	if (r != NULL && (ti = fl_sched_tenant_index(r, as->tenant_id)) >= 0)
		t = &r->t[ti];
	if (t == NULL || t->out_id != as->id) {
		/* Reported already, or withdrawn: only what it proves applied counts,
		 * also once the rollout finished (a rollback of it reverts that). */
		if (as->kind != WK_APPLY || !report_changed(rp, as->kind))
			goto out;
		if (t != NULL && !t->row.changed) {
			t->row.changed = true;
			e = put_tenant(s, r, t, now_ms, errbuf);
		} else if (r == NULL && as->rollout_id[0] != '\0') {
			e = fl_store_rollout_tenant_set_changed(s->st, as->rollout_id,
			                                        as->tenant_id, now_ms, errbuf);
			if (e == FL_ENOENT)
				e = FL_OK; /* not a rollout's work */
		}
		goto out;
	}
	out_clear(s, r, (uint32_t)ti);
	if (as->kind == WK_APPLY && report_changed(rp, as->kind))
		t->row.changed = true;
	if (rp->outcome == OC(REFUSED)) {
		char detail[REASON_MAX], q[REASON_MAX / 2];

		fl_err_quote(q, sizeof(q), rp->message ? rp->message : "",
		             rp->message ? strlen(rp->message) : 0);
		snprintf(detail, sizeof(detail),
		         "agent '%s' refused assignment %" PRIu64 " for tenant '%s': %s", a->name,
		         as->id, as->tenant_id, q);
		fl_log_error(r->row.id, "%s", detail);
		if ((e = fl_sched_audit(s, "work_refused", r->row.id,
		                        FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED,
		                        detail, now_ms, errbuf)) != FL_OK)
			goto out;
	}
	if (as->kind == WK_APPLY)
		e = on_apply(s, r, t, rp, now_ms, errbuf);
	else if (as->kind == WK_CHECK)
		e = on_check(s, r, t, rp, now_ms, errbuf);
	else
		e = on_revert(s, r, t, rp, now_ms, errbuf);
	if (e == FL_OK)
		e = fl_sched_advance(s, r, now_ms, errbuf);
	/* freed slots: the agent may have more to do (here or in other rollouts) */
	wake(s, a);
out:
	e = fl_sched_tx_end(s, own, e, errbuf);
	sweep(s);
	return e;
}

/* ---- timers ---- */

static enum fl_err fail_unreachable(struct fl_scheduler *s, struct sched_rollout *r,
                                    struct sched_ragent *ra, int64_t now_ms, char *errbuf)
{
	uint32_t cur = r->row.current_wave;
	enum fl_err e;

	for (size_t k = 0; k < ra->n; k++) {
		uint32_t ti = ra->t[k];
		struct sched_tenant *t = &r->t[ti];
		char msg[REASON_MAX];

		if (r->row.state != RS_RUNNING && r->row.state != RS_PAUSED)
			return FL_OK; /* the budget tripped */
		if (t->row.wave != cur)
			continue;
		if (!(t->row.state == FL_SCHED_UNREACHABLE ||
		      (t->row.state == FL_SCHED_APPLIED && (t->row.check_due || t->out_id != 0))))
			continue;
		if (t->out_id != 0 && (e = withdraw(s, r, ti, now_ms, errbuf)) != FL_OK)
			return e;
		snprintf(msg, sizeof(msg), "agent '%s' unreachable for %" PRId64 " s", ra->a->name,
		         (now_ms - ra->a->last_seen_ms) / 1000);
		set_str(&t->row.last_error, msg);
		if ((e = fl_sched_set_tenant(s, r, t, FL_SCHED_FAILED, now_ms, errbuf)) != FL_OK ||
		    (e = budget(s, r, t, now_ms, errbuf)) != FL_OK)
			return e;
	}
	return FL_OK;
}

/* The order authorising the rollback expired: agents would refuse every
 * REVERT. What is left to revert fails (a new signed rollback order picks it
 * up); once nothing is out, the rollout halts. */
static enum fl_err rollback_expired(struct fl_scheduler *s, struct sched_rollout *r, int64_t now_ms,
                                    char *errbuf)
{
	enum fl_err e;

	for (size_t i = 0; i < r->n_t; i++) {
		struct sched_tenant *t = &r->t[i];

		if (t->row.state != FL_SCHED_REVERTING || t->out_id != 0)
			continue;
		set_str(&t->row.last_error, "not reverted: the order authorising it expired");
		t->row.revert_failed = true;
		if ((e = fl_sched_set_tenant(s, r, t, FL_SCHED_FAILED, now_ms, errbuf)) != FL_OK)
			return e;
	}
	return fl_sched_advance(s, r, now_ms, errbuf);
}

static enum fl_err tick_rollout(struct fl_scheduler *s, struct sched_rollout *r, int64_t now_ms,
                                bool new_minute, char *errbuf)
{
	const struct fl_policy *p = policy_of(r);
	enum fl_err e;

	if ((r->row.state == RS_RUNNING || r->row.state == RS_PAUSED) &&
	    now_ms >= r->row.expires_at_ms)
		return fl_sched_halt(s, r, "order expired", true, now_ms, errbuf);
	if (r->row.state == RS_ROLLING_BACK && rollback_expired_at(r, now_ms))
		return rollback_expired(s, r, now_ms, errbuf);
	if ((r->row.state == RS_RUNNING || r->row.state == RS_PAUSED) &&
	    p->unreachable == FL_UNREACHABLE_FAIL)
		for (size_t i = 0; i < r->n_ra; i++) {
			struct sched_ragent *ra = &r->ra[i];

			if (!ra->a->online &&
			    now_ms - ra->a->last_seen_ms >= p->unreachable_after_ms &&
			    (e = fail_unreachable(s, r, ra, now_ms, errbuf)) != FL_OK)
				return e;
		}
	if (r->next_busy_ms != 0 && now_ms >= r->next_busy_ms) {
		int64_t next = 0;

		for (size_t i = 0; i < r->n_t; i++) {
			struct sched_tenant *t = &r->t[i];

			if (t->row.not_before_ms == 0 ||
			    (t->row.state != FL_SCHED_BUSY && t->row.state != FL_SCHED_REVERTING))
				continue;
			if (t->row.not_before_ms <= now_ms)
				wake(s, r->ra[t->ra].a);
			else if (next == 0 || t->row.not_before_ms < next)
				next = t->row.not_before_ms;
		}
		r->next_busy_ms = next;
	}
	if (new_minute && p->n_windows > 0 && r->row.state == RS_RUNNING)
		fl_sched_wake_rollout(s, r);
	return fl_sched_advance(s, r, now_ms, errbuf);
}

enum fl_err fl_scheduler_tick(struct fl_scheduler *s, int64_t now_ms, char *errbuf)
{
	int minute = minute_of_day(now_ms);
	bool new_minute = minute != s->last_minute;
	enum fl_err e = FL_OK;
	bool own;

	if ((e = fl_sched_ensure(s, now_ms, errbuf)) != FL_OK)
		return e;
	if ((e = fl_sched_tx_begin(s, &own, errbuf)) != FL_OK)
		return e;
	s->last_minute = minute;
	for (size_t i = 0; i < s->n_agents && e == FL_OK; i++) {
		struct sched_agent *a = s->agents[i];

		if (a->online && now_ms - a->last_seen_ms >= s->offline_after_ms)
			e = agent_offline(s, a, now_ms, errbuf);
	}
	for (struct sched_rollout *r = s->live; r != NULL && e == FL_OK; r = r->next)
		e = tick_rollout(s, r, now_ms, new_minute, errbuf);
	e = fl_sched_tx_end(s, own, e, errbuf);
	sweep(s);
	return e;
}

static void at_most(int64_t *next, int64_t t)
{
	if (t > 0 && t < *next)
		*next = t;
}

int64_t fl_scheduler_next_tick(struct fl_scheduler *s)
{
	int64_t next = INT64_MAX;

	if (s->dirty)
		return 0;
	for (size_t i = 0; i < s->n_agents; i++)
		if (s->agents[i]->online && s->agents[i]->n_links > 0)
			at_most(&next, s->agents[i]->last_seen_ms + s->offline_after_ms);
	for (struct sched_rollout *r = s->live; r != NULL; r = r->next) {
		const struct fl_policy *p = policy_of(r);

		at_most(&next, r->next_busy_ms);
		if (r->row.state == RS_ROLLING_BACK)
			at_most(&next, r->row.rollback_kind == FL_STORE_ROLLBACK_MANUAL && r->rb &&
			                       r->rb->expires_at_ms < r->row.expires_at_ms
			                   ? r->rb->expires_at_ms
			                   : r->row.expires_at_ms);
		if (r->row.state != RS_RUNNING && r->row.state != RS_PAUSED)
			continue;
		at_most(&next, r->row.expires_at_ms);
		if (p->unreachable == FL_UNREACHABLE_FAIL)
			for (size_t i = 0; i < r->n_ra; i++)
				if (!r->ra[i].a->online)
					at_most(&next,
					        r->ra[i].a->last_seen_ms + p->unreachable_after_ms);
		if (r->row.state != RS_RUNNING || r->row.current_wave >= r->n_w)
			continue;
		if (r->w[r->row.current_wave].row.state == WS_BAKING) {
			at_most(&next, r->w[r->row.current_wave].row.next_check_at_ms);
			at_most(&next, r->w[r->row.current_wave].row.bake_until_ms);
		}
		if (p->n_windows > 0 && r->w[r->row.current_wave].row.state == WS_RUNNING)
			at_most(&next, (s->now_ms / 60000 + 1) * 60000); /* a window may open */
	}
	return next;
}

/* ---- making ---- */

static void take_config(struct fl_scheduler *s, const struct fl_scheduler_config *cfg)
{
	free(s->project_id);
	free(s->trusted);
	s->project_id = fl_strdup(cfg->project_id ? cfg->project_id : "");
	s->n_trusted = cfg->n_trusted_release_keys;
	s->trusted = fl_calloc(s->n_trusted ? s->n_trusted : 1, sizeof(*s->trusted));
	if (s->n_trusted)
		memcpy(s->trusted, cfg->trusted_release_keys, s->n_trusted * sizeof(*s->trusted));
	s->offline_after_ms = cfg->agent_offline_after_ms > 0 ? cfg->agent_offline_after_ms
	                                                      : DEFAULT_OFFLINE_AFTER_MS;
	s->resend_after_ms =
	    cfg->resend_after_ms > 0 ? cfg->resend_after_ms : DEFAULT_RESEND_AFTER_MS;
	s->busy_retry_ms = cfg->busy_retry_ms > 0 ? cfg->busy_retry_ms : DEFAULT_BUSY_RETRY_MS;
	s->plan_tenant_ids = cfg->plan_tenant_ids > 0 ? cfg->plan_tenant_ids : DEFAULT_PLAN_IDS;
}

void fl_scheduler_set_config(struct fl_scheduler *s, const struct fl_scheduler_config *cfg)
{
	take_config(s, cfg);
}

enum fl_err fl_scheduler_new(struct fl_store *st, const struct fl_scheduler_config *cfg,
                             fl_scheduler_wake_fn wakefn, void *wake_arg, int64_t now_ms,
                             struct fl_scheduler **out, char *errbuf)
{
	struct fl_scheduler *s = fl_calloc(1, sizeof(*s));
	enum fl_err e;

	*out = NULL;
	s->st = st;
	s->wake = wakefn;
	s->wake_arg = wake_arg;
	s->last_minute = minute_of_day(now_ms);
	s->now_ms = now_ms;
	take_config(s, cfg);
	if ((e = load_all(s, now_ms, errbuf)) != FL_OK) {
		fl_scheduler_free(s);
		return e;
	}
	fl_store_on_rollback(st, on_rollback, s);
	*out = s;
	return FL_OK;
}

void fl_scheduler_free(struct fl_scheduler *s)
{
	if (s == NULL)
		return;
	if (s->st != NULL)
		fl_store_on_rollback(s->st, NULL, NULL);
	free_all(s);
	for (size_t i = 0; i < s->n_agents; i++) {
		free(s->agents[i]->name);
		free(s->agents[i]->links);
		free(s->agents[i]->out);
		free(s->agents[i]);
	}
	free(s->agents);
	fl_sched_map_fini(&s->agent_idx);
	fl_sched_map_fini(&s->busy);
	free(s->project_id);
	free(s->trusted);
	free(s);
}
