/*
 * The coordinator's core thread (core.h): a job queue, the agent model, held
 * polls in a heap by deadline, timers, and the scheduler's hooks.
 *
 * Invariants: only the core thread touches the model, the store and the
 * scratch buffers; other threads only fl_core_submit, fl_core_reload,
 * fl_core_stop and the atomic counters. An agent is in `agents` and `map`
 * exactly when it is approved (config, store or enrollment) and not revoked.
 * A held poll is in the heap exactly when its agent's `held` points to it.
 */
#include "core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "enroll.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "rep.h"
#include "rpc.h"
#include "wire.h"

#define OFFLINE_CHECK_MS 1000
#define SEEN_FLUSH_MS    5000
#define PEERS_SYNC_MS    2000

struct fl_core_held {
	struct fl_rep_req *req;
	struct fl_core_agent *agent;
	uint64_t seq;
	int64_t deadline; /* monotonic ms */
	size_t idx;       /* in the heap */
};

/* The model's entry: the public part first, so a struct fl_core_agent *
 * converts back. */
struct entry {
	struct fl_core_agent pub;
	bool wake_pending;
	bool seen_dirty; /* last_seen_ms not yet in the store */
};

struct fl_core {
	struct fl_coordinator_config *cfg;
	struct fl_metrics *metrics; /* fl_core_set_metrics; not owned */
	struct fl_store *store;
	struct fl_peers *peers;
	struct fl_envelope *agent_ep, *admin_ep;
	struct fl_enroll_tokens *tokens;
	const struct fl_core_scheduler *sched;
	void *sched_arg;

	pthread_t thread;
	bool started;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct fl_core_job *head, *tail;
	bool stopping;
	struct fl_coordinator_config *reload_cfg;

	struct entry **agents;
	size_t n_agents, cap_agents;
	size_t *map; /* open addressing over agents: index + 1, 0 empty */
	size_t map_cap;

	struct fl_core_held **heap;
	size_t n_held, cap_held;
	struct entry **wakes;
	size_t n_wakes, cap_wakes;

	int64_t next_offline_check, next_flush, next_sync, next_tick;
	struct fl_buf sealed; /* the reply being handed to nng */
	atomic_uint_least64_t counters[FL_CORE_COUNTER_COUNT];
	atomic_size_t held_count;
};

/* ---- small things ---- */

void fl_core_count(struct fl_core *core, enum fl_core_counter c)
{
	atomic_fetch_add(&core->counters[c], 1);
}

uint64_t fl_core_counter(struct fl_core *core, enum fl_core_counter c)
{
	return atomic_load(&core->counters[c]);
}

size_t fl_core_held_count(struct fl_core *core)
{
	return atomic_load(&core->held_count);
}

struct fl_store *fl_core_store(struct fl_core *core)
{
	return core->store;
}

const struct fl_core_scheduler *fl_core_scheduler(struct fl_core *core, void **arg)
{
	*arg = core->sched_arg;
	return core->sched;
}

const struct fl_coordinator_config *fl_core_config(struct fl_core *core)
{
	return core->cfg;
}

struct fl_peers *fl_core_peers(struct fl_core *core)
{
	return core->peers;
}

struct fl_enroll_tokens *fl_core_enroll_tokens(struct fl_core *core)
{
	return core->tokens;
}

int64_t fl_core_now_ms(struct fl_core *core)
{
	(void)core;
	return fl_wallclock_us(NULL) / 1000;
}

/* ---- the agent map ---- */

static size_t hash_pk(const uint8_t *pk)
{
	size_t h = 0;

	memcpy(&h, pk, sizeof(h) < FL_PEER_KEY_LEN ? sizeof(h) : FL_PEER_KEY_LEN);
	return h;
}

static void map_rebuild(struct fl_core *core)
{
	size_t cap = 64;

	while (cap < core->n_agents * 2 + 1)
		cap *= 2;
	free(core->map);
	core->map = fl_calloc(cap, sizeof(*core->map));
	core->map_cap = cap;
	for (size_t i = 0; i < core->n_agents; i++) {
		size_t h = hash_pk(core->agents[i]->pub.pk) & (cap - 1);

		while (core->map[h] != 0)
			h = (h + 1) & (cap - 1);
		core->map[h] = i + 1;
	}
}

struct fl_core_agent *fl_core_agent(struct fl_core *core, const uint8_t pk[FL_PEER_KEY_LEN])
{
	size_t h;

	if (core->map_cap == 0)
		return NULL;
	for (h = hash_pk(pk) & (core->map_cap - 1); core->map[h] != 0;
	     h = (h + 1) & (core->map_cap - 1)) {
		struct entry *e = core->agents[core->map[h] - 1];

		if (memcmp(e->pub.pk, pk, FL_PEER_KEY_LEN) == 0)
			return &e->pub;
	}
	return NULL;
}

size_t fl_core_agent_count(struct fl_core *core)
{
	return core->n_agents;
}

struct fl_core_agent *fl_core_agent_at(struct fl_core *core, size_t i)
{
	return i < core->n_agents ? &core->agents[i]->pub : NULL;
}

struct fl_core_agent *fl_core_agent_add(struct fl_core *core, const uint8_t pk[FL_PEER_KEY_LEN],
                                        const char *name, const struct fl_labels *labels)
{
	struct fl_core_agent *a = fl_core_agent(core, pk);
	struct entry *e;

	if (a == NULL) {
		e = fl_calloc(1, sizeof(*e));
		memcpy(e->pub.pk, pk, FL_PEER_KEY_LEN);
		fl_key_id(pk, e->pub.key_id);
		fl_labels_init(&e->pub.labels);
		core->agents = fl_grow(core->agents, &core->cap_agents, core->n_agents + 1,
		                       sizeof(*core->agents));
		core->agents[core->n_agents++] = e;
		if (core->n_agents * 2 + 1 > core->map_cap)
			map_rebuild(core);
		else {
			size_t h = hash_pk(pk) & (core->map_cap - 1);

			while (core->map[h] != 0)
				h = (h + 1) & (core->map_cap - 1);
			core->map[h] = core->n_agents;
		}
		a = &e->pub;
	}
	snprintf(a->name, sizeof(a->name), "%s", name);
	if (labels != NULL) {
		fl_labels_fini(&a->labels);
		fl_labels_copy(&a->labels, labels);
	}
	return a;
}

/* ---- the heap of held polls ---- */

static void heap_swap(struct fl_core *core, size_t i, size_t j)
{
	struct fl_core_held *t = core->heap[i];

	core->heap[i] = core->heap[j];
	core->heap[j] = t;
	core->heap[i]->idx = i;
	core->heap[j]->idx = j;
}

static void heap_up(struct fl_core *core, size_t i)
{
	while (i > 0 && core->heap[(i - 1) / 2]->deadline > core->heap[i]->deadline) {
		heap_swap(core, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct fl_core *core, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < core->n_held && core->heap[l]->deadline < core->heap[m]->deadline)
			m = l;
		if (r < core->n_held && core->heap[r]->deadline < core->heap[m]->deadline)
			m = r;
		if (m == i)
			return;
		heap_swap(core, i, m);
		i = m;
	}
}

static void heap_push(struct fl_core *core, struct fl_core_held *h)
{
	core->heap = fl_grow(core->heap, &core->cap_held, core->n_held + 1, sizeof(*core->heap));
	h->idx = core->n_held;
	core->heap[core->n_held++] = h;
	heap_up(core, h->idx);
	atomic_store(&core->held_count, core->n_held);
}

static void heap_remove(struct fl_core *core, struct fl_core_held *h)
{
	size_t i = h->idx, last = core->n_held - 1;

	if (i != last) {
		heap_swap(core, i, last);
		core->n_held--;
		heap_down(core, i);
		heap_up(core, i);
	} else {
		core->n_held--;
	}
	atomic_store(&core->held_count, core->n_held);
}

/* Take agent's held poll out (the caller answers or drops it). */
static struct fl_core_held *unhold(struct fl_core *core, struct fl_core_agent *agent)
{
	struct fl_core_held *h = agent->held;

	if (h != NULL) {
		heap_remove(core, h);
		agent->held = NULL;
	}
	return h;
}

/* ---- replies ---- */

void fl_core_refuse(struct fl_core *core, struct fl_rep_req *req)
{
	if (fl_envelope_refusal(&core->sealed) != FL_OK)
		fl_rep_drop(req);
	else
		fl_rep_reply(req, core->sealed.data, core->sealed.len);
}

void fl_core_reply(struct fl_core *core, struct fl_envelope *ep, struct fl_rep_req *req,
                   const uint8_t recipient[FL_PEER_KEY_LEN], Flotilla__V1__Message *m, size_t max)
{
	char eb[FL_ERRBUF_SIZE] = "", id[FL_KEY_ID_LEN + 1];
	enum fl_err rv = fl_rpc_seal_reply(ep, recipient, m->reply_to_seq, m, &core->sealed, eb);

	/* The reply's own cap, which the requester applies too (proto/roles.h). */
	if (rv == FL_OK && core->sealed.len - FL_ENVELOPE_OVERHEAD > max)
		rv = fl_errf(eb, FL_EINVAL, "%zu bytes, over the %zu a %s may have",
		             core->sealed.len - FL_ENVELOPE_OVERHEAD, max,
		             fl_wire_body_name(m->body_case));
	if (rv != FL_OK) {
		fl_key_id(recipient, id);
		fl_log_error(id, "cannot send a %s reply: %s", fl_wire_body_name(m->body_case), eb);
		fl_core_count(core, FL_CORE_ERRORS);
		fl_core_refuse(core, req);
		return;
	}
	fl_rep_reply(req, core->sealed.data, core->sealed.len);
}

/* An empty PollReply for seq. */
static void reply_poll_empty(struct fl_core *core, struct fl_core_agent *agent,
                             struct fl_rep_req *req, uint64_t seq)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__PollReply pr = FLOTILLA__V1__POLL_REPLY__INIT;

	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY;
	m.poll_reply = &pr;
	m.reply_to_seq = seq;
	fl_core_reply(core, core->agent_ep, req, agent->pk, &m, FL_WIRE_MAX_POLL_REPLY);
}

static void reply_status(struct fl_core *core, struct fl_core_agent *agent, struct fl_rep_req *req,
                         uint64_t seq, Flotilla__V1__StatusCode code, const char *msg)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Status st = FLOTILLA__V1__STATUS__INIT;

	st.code = code;
	st.message = (char *)msg;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ERROR;
	m.error = &st;
	m.reply_to_seq = seq;
	fl_core_reply(core, core->agent_ep, req, agent->pk, &m, FL_WIRE_MAX_SMALL);
}

/* ---- polls ---- */

bool fl_core_poll_now(struct fl_core *core, struct fl_core_agent *agent, struct fl_rep_req *req,
                      uint64_t seq, bool force)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__PollReply pr = FLOTILLA__V1__POLL_REPLY__INIT;
	struct fl_core_poll_reply reply = {0};
	char eb[FL_ERRBUF_SIZE] = "";
	struct fl_arena arena;
	enum fl_err rv;

	if (core->sched == NULL || core->sched->poll == NULL) {
		if (force)
			reply_poll_empty(core, agent, req, seq);
		return force;
	}
	fl_arena_init(&arena);
	reply.arena = &arena;
	if ((rv = fl_store_begin(core->store, eb)) == FL_OK &&
	    (rv = core->sched->poll(core->sched_arg, agent, &reply, eb)) == FL_OK)
		rv = fl_store_commit(core->store, eb);
	else
		fl_store_rollback(core->store);
	if (rv != FL_OK) {
		fl_log_error(agent->name, "cannot answer its poll: %s", eb);
		fl_core_count(core, FL_CORE_ERRORS);
		reply_status(core, agent, req, seq,
		             FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNAVAILABLE,
		             "the coordinator could not schedule work; poll again");
		fl_arena_fini(&arena);
		return true;
	}
	if (reply.n_assignments == 0 && reply.n_halts == 0 && !force) {
		fl_arena_fini(&arena);
		return false;
	}
	if (reply.n_assignments || reply.n_halts)
		fl_core_count(core, FL_CORE_POLLS_WORK);
	pr.assignments = reply.assignments;
	pr.n_assignments = reply.n_assignments;
	pr.halts = reply.halts;
	pr.n_halts = reply.n_halts;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY;
	m.poll_reply = &pr;
	m.reply_to_seq = seq;
	fl_core_reply(core, core->agent_ep, req, agent->pk, &m, FL_WIRE_MAX_POLL_REPLY);
	fl_arena_fini(&arena);
	return true;
}

void fl_core_hold(struct fl_core *core, struct fl_core_agent *agent, struct fl_rep_req *req,
                  uint64_t seq, int64_t hold_ms)
{
	struct fl_core_held *old = unhold(core, agent), *h;

	if (old != NULL) {
		/* One long poll per agent: the older one is not waited on any more. */
		reply_poll_empty(core, agent, old->req, old->seq);
		free(old);
	}
	h = fl_calloc(1, sizeof(*h));
	h->req = req;
	h->agent = agent;
	h->seq = seq;
	h->deadline = fl_now_ms() + hold_ms;
	agent->held = h;
	heap_push(core, h);
	fl_core_count(core, FL_CORE_POLLS_HELD);
}

void fl_core_answer_held(struct fl_core *core, struct fl_core_agent *agent)
{
	struct fl_core_held *h = unhold(core, agent);

	if (h == NULL)
		return;
	fl_core_poll_now(core, agent, h->req, h->seq, true);
	free(h);
}

void fl_core_wake_agent(struct fl_core *core, const uint8_t pk[FL_PEER_KEY_LEN])
{
	struct fl_core_agent *a = fl_core_agent(core, pk);
	struct entry *e = (struct entry *)a;

	if (e == NULL || e->wake_pending || a->held == NULL)
		return;
	e->wake_pending = true;
	core->wakes =
	    fl_grow(core->wakes, &core->cap_wakes, core->n_wakes + 1, sizeof(*core->wakes));
	core->wakes[core->n_wakes++] = e;
}

void fl_core_wake_all(struct fl_core *core)
{
	for (size_t i = 0; i < core->n_held; i++)
		fl_core_wake_agent(core, core->heap[i]->agent->pk);
}

static void run_wakes(struct fl_core *core)
{
	while (core->n_wakes > 0) {
		struct entry *e = core->wakes[--core->n_wakes];
		struct fl_core_held *h;

		e->wake_pending = false;
		if ((h = unhold(core, &e->pub)) == NULL)
			continue;
		if (fl_core_poll_now(core, &e->pub, h->req, h->seq, false)) {
			free(h);
		} else {
			e->pub.held = h;
			heap_push(core, h);
		}
	}
}

static void expire_held(struct fl_core *core, int64_t now)
{
	while (core->n_held > 0 && core->heap[0]->deadline <= now) {
		struct fl_core_held *h = core->heap[0];
		struct fl_core_agent *a = h->agent;

		unhold(core, a);
		reply_poll_empty(core, a, h->req, h->seq);
		free(h);
	}
}

void fl_core_agent_remove(struct fl_core *core, const uint8_t pk[FL_PEER_KEY_LEN])
{
	struct fl_core_agent *a = fl_core_agent(core, pk);
	struct fl_core_held *h;
	char eb[FL_ERRBUF_SIZE] = "";

	if (a == NULL)
		return;
	if ((h = unhold(core, a)) != NULL) {
		/* answered at once with the refusal its later requests get too: a
		 * dropped context would leave the agent waiting out its poll */
		fl_core_refuse(core, h->req);
		free(h);
	}
	if (core->sched && core->sched->agent_state && a->online &&
	    core->sched->agent_state(core->sched_arg, a, false, eb) != FL_OK)
		fl_log_error(a->name, "scheduler: %s", eb);
	for (size_t i = 0; i < core->n_wakes; i++)
		if (&core->wakes[i]->pub == a)
			core->wakes[i--] = core->wakes[--core->n_wakes];
	for (size_t i = 0; i < core->n_agents; i++) {
		if (&core->agents[i]->pub != a)
			continue;
		fl_labels_fini(&a->labels);
		free(a->running);
		free(core->agents[i]);
		core->agents[i] = core->agents[--core->n_agents];
		break;
	}
	map_rebuild(core);
}

/* ---- audit ---- */

enum fl_err fl_core_audit(struct fl_core *core, const char *command, const char *subject,
                          Flotilla__V1__StatusCode code, const char *detail, char *errbuf)
{
	struct fl_store_audit a = {0};

	a.at_ms = fl_core_now_ms(core);
	a.actor_key_id = "";
	a.actor_name = "coordinator";
	a.role = FLOTILLA__V1__ROLE__ROLE_COORDINATOR;
	a.command = (char *)command;
	a.subject = (char *)(subject ? subject : "");
	a.code = code;
	a.detail = (char *)(detail ? detail : "");
	return fl_store_audit_add(core->store, &a, NULL, errbuf);
}

/* ---- timers ---- */

static void flush_seen(struct fl_core *core)
{
	char eb[FL_ERRBUF_SIZE] = "";
	bool any = false;

	for (size_t i = 0; i < core->n_agents && !any; i++)
		any = core->agents[i]->seen_dirty;
	if (!any)
		return;
	if (fl_store_begin(core->store, eb) != FL_OK)
		goto fail;
	for (size_t i = 0; i < core->n_agents; i++) {
		struct entry *e = core->agents[i];

		if (e->seen_dirty && fl_store_agent_seen(core->store, e->pub.pk, NULL, 0,
		                                         e->pub.last_seen_ms, eb) != FL_OK) {
			fl_store_rollback(core->store);
			goto fail;
		}
	}
	if (fl_store_commit(core->store, eb) != FL_OK)
		goto fail;
	for (size_t i = 0; i < core->n_agents; i++)
		core->agents[i]->seen_dirty = false;
	return;
fail:
	fl_log_error("store", "cannot record when agents were last seen: %s", eb);
}

static void check_offline(struct fl_core *core, int64_t wall)
{
	char eb[FL_ERRBUF_SIZE] = "";

	for (size_t i = 0; i < core->n_agents; i++) {
		struct fl_core_agent *a = &core->agents[i]->pub;

		if (!a->online || a->held != NULL ||
		    wall - a->last_seen_ms < core->cfg->agent_offline_after_ms)
			continue;
		a->online = false;
		a->reconciled = false;
		fl_log_warn(a->name, "offline: not heard from for %llds",
		            (long long)((wall - a->last_seen_ms) / 1000));
		if (core->sched && core->sched->agent_state) {
			enum fl_err rv = fl_store_begin(core->store, eb);

			if (rv == FL_OK &&
			    (rv = core->sched->agent_state(core->sched_arg, a, false, eb)) == FL_OK)
				rv = fl_store_commit(core->store, eb);
			else
				fl_store_rollback(core->store);
			if (rv != FL_OK)
				fl_log_error(a->name, "scheduler, agent offline: %s", eb);
		}
	}
}

void fl_core_agent_seen(struct fl_core *core, struct fl_core_agent *a)
{
	struct entry *e = (struct entry *)a;
	char eb[FL_ERRBUF_SIZE] = "";

	a->last_seen_ms = fl_core_now_ms(core);
	e->seen_dirty = true;
	if (a->online)
		return;
	a->online = true;
	fl_log_info(a->name, "online");
	if (core->sched && core->sched->agent_state) {
		enum fl_err rv = fl_store_begin(core->store, eb);

		if (rv == FL_OK &&
		    (rv = core->sched->agent_state(core->sched_arg, a, true, eb)) == FL_OK)
			rv = fl_store_commit(core->store, eb);
		else
			fl_store_rollback(core->store);
		if (rv != FL_OK)
			fl_log_error(a->name, "scheduler, agent online: %s", eb);
	}
}

static void run_timers(struct fl_core *core)
{
	int64_t now = fl_now_ms(), wall = fl_core_now_ms(core);
	char eb[FL_ERRBUF_SIZE] = "";

	expire_held(core, now);
	if (now >= core->next_offline_check) {
		check_offline(core, wall);
		core->next_offline_check = now + OFFLINE_CHECK_MS;
	}
	if (now >= core->next_flush) {
		flush_seen(core);
		core->next_flush = now + SEEN_FLUSH_MS;
	}
	if (now >= core->next_sync) {
		if (fl_peers_sync(core->peers, eb) != FL_OK)
			fl_log_error("peers", "%s", eb);
		core->next_sync = now + PEERS_SYNC_MS;
	}
	if (core->sched && core->sched->tick && core->sched->tick_ms > 0 &&
	    now >= core->next_tick) {
		enum fl_err rv = fl_store_begin(core->store, eb);

		if (rv == FL_OK && (rv = core->sched->tick(core->sched_arg, wall, eb)) == FL_OK)
			rv = fl_store_commit(core->store, eb);
		else
			fl_store_rollback(core->store);
		if (rv != FL_OK)
			fl_log_error("scheduler", "tick: %s", eb);
		core->next_tick = now + core->sched->tick_ms;
	}
	run_wakes(core);
}

static int64_t next_deadline(struct fl_core *core)
{
	int64_t d = core->next_offline_check;

	if (core->next_flush < d)
		d = core->next_flush;
	if (core->next_sync < d)
		d = core->next_sync;
	if (core->sched && core->sched->tick && core->sched->tick_ms > 0 && core->next_tick < d)
		d = core->next_tick;
	if (core->n_held > 0 && core->heap[0]->deadline < d)
		d = core->heap[0]->deadline;
	return d;
}

/* ---- registry and model from config and store ---- */

static enum fl_err add_config_peers(struct fl_core *core, const struct fl_coordinator_config *cfg,
                                    bool reload, char *errbuf)
{
	const struct fl_coordinator_operator *ops = cfg->operators.items;
	const struct fl_coordinator_agent *ags = cfg->agents.items;
	char eb[FL_ERRBUF_SIZE] = "", id[FL_KEY_ID_LEN + 1];
	enum fl_err rv;

	for (size_t i = 0; i < cfg->operators.n; i++) {
		rv = fl_peers_add(core->peers, ops[i].public_key.key,
		                  fl_coordinator_role_to_peer(ops[i].role), ops[i].name, eb);
		if (rv == FL_ESTATE) {
			fl_key_id(ops[i].public_key.key, id);
			fl_log_warn(ops[i].name, "operator key %s was revoked: refused", id);
		} else if (rv != FL_OK) {
			return fl_errf(errbuf, rv, "operators[%zu] '%s': %s", i, ops[i].name, eb);
		}
	}
	for (size_t i = 0; i < cfg->agents.n; i++) {
		struct fl_store_agent sa = {0}, got;
		const uint8_t *pk = ags[i].public_key.key;

		fl_key_id(pk, id);
		rv = fl_store_agent_get(core->store, pk, &got, eb);
		if (rv == FL_OK) {
			bool revoked = got.state == FL_STORE_AGENT_REVOKED;

			fl_store_agent_fini(&got);
			if (revoked) {
				fl_log_warn(ags[i].name,
				            "agent key %s is revoked in the store: refused", id);
				continue;
			}
		} else if (rv == FL_ENOENT) {
			memcpy(sa.pk, pk, FL_PEER_KEY_LEN);
			sa.name = ags[i].name;
			sa.labels = ags[i].labels;
			sa.approved_at_ms = fl_core_now_ms(core);
			sa.approved_by = "config";
			if ((rv = fl_store_agent_add(core->store, &sa, eb)) != FL_OK)
				return fl_errf(errbuf, rv, "agents[%zu] '%s': %s", i, ags[i].name,
				               eb);
			if (reload)
				fl_log_info(ags[i].name, "agent %s approved by the config", id);
		} else {
			return fl_errf(errbuf, rv, "%s", eb);
		}
		rv = fl_peers_add(core->peers, pk, FL_PEER_AGENT, ags[i].name, eb);
		if (rv == FL_ESTATE) {
			fl_log_warn(ags[i].name, "agent key %s was revoked: refused", id);
			continue;
		}
		if (rv != FL_OK)
			return fl_errf(errbuf, rv, "agents[%zu] '%s': %s", i, ags[i].name, eb);
		fl_core_agent_add(core, pk, ags[i].name, &ags[i].labels);
	}
	return FL_OK;
}

static enum fl_err load_store_agents(struct fl_core *core, char *errbuf)
{
	struct fl_store_agent *list;
	char eb[FL_ERRBUF_SIZE] = "";
	size_t n;
	enum fl_err rv;

	if ((rv = fl_store_agent_list(core->store, true, &list, &n, errbuf)) != FL_OK)
		return rv;
	for (size_t i = 0; i < n && rv == FL_OK; i++) {
		struct fl_store_agent *a = &list[i];

		if (a->state == FL_STORE_AGENT_REVOKED) {
			if ((rv = fl_peers_revoke(core->peers, a->pk, eb)) != FL_OK)
				rv = fl_errf(errbuf, rv, "cannot revoke agent '%s': %s", a->name,
				             eb);
			fl_core_agent_remove(core, a->pk);
			continue;
		}
		rv = fl_peers_add(core->peers, a->pk, FL_PEER_AGENT, a->name, eb);
		if (rv == FL_ESTATE) { /* peers.seq says revoked: it wins */
			fl_log_warn(a->name, "agent is revoked in the peers state file: refused");
			rv = FL_OK;
			continue;
		}
		if (rv != FL_OK) {
			rv = fl_errf(errbuf, rv, "agent '%s': %s", a->name, eb);
			break;
		}
		fl_core_agent_add(core, a->pk, a->name, &a->labels)->last_seen_ms =
		    a->last_seen_at_ms;
	}
	fl_store_agents_free(list, n);
	return rv;
}

/* Outstanding tokens survive a restart: the store has them. */
static enum fl_err load_store_tokens(struct fl_core *core, char *errbuf)
{
	struct fl_store_token *list;
	int64_t now = fl_core_now_ms(core);
	char eb[FL_ERRBUF_SIZE];
	size_t n;
	enum fl_err rv;

	if ((rv = fl_store_token_outstanding(core->store, now, &list, &n, errbuf)) != FL_OK)
		return rv;
	for (size_t i = 0; i < n; i++)
		if (fl_enroll_tokens_add(core->tokens, list[i].hash, list[i].name, &list[i].labels,
		                         list[i].expires_at_ms, now, eb) != FL_OK)
			fl_log_warn(list[i].name, "enrollment token not restored: %s", eb);
	fl_store_tokens_free(list, n);
	return FL_OK;
}

enum fl_err fl_core_new(const struct fl_core_params *p, struct fl_core **out, char *errbuf)
{
	struct fl_core *core = fl_calloc(1, sizeof(*core));
	pthread_condattr_t ca;
	enum fl_err rv;

	*out = NULL;
	core->cfg = p->cfg;
	core->store = p->store;
	core->peers = p->peers;
	core->agent_ep = p->agent_ep;
	core->admin_ep = p->admin_ep;
	pthread_mutex_init(&core->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&core->cond, &ca);
	pthread_condattr_destroy(&ca);
	for (int i = 0; i < FL_CORE_COUNTER_COUNT; i++)
		atomic_init(&core->counters[i], 0);
	atomic_init(&core->held_count, 0);
	fl_buf_init(&core->sealed, 0);
	map_rebuild(core);
	core->tokens = fl_enroll_tokens_new();

	if ((rv = fl_store_begin(core->store, errbuf)) != FL_OK)
		goto fail;
	if ((rv = add_config_peers(core, core->cfg, false, errbuf)) != FL_OK ||
	    (rv = fl_store_commit(core->store, errbuf)) != FL_OK) {
		fl_store_rollback(core->store);
		goto fail;
	}
	if ((rv = load_store_agents(core, errbuf)) != FL_OK ||
	    (rv = load_store_tokens(core, errbuf)) != FL_OK)
		goto fail;
	*out = core;
	return FL_OK;
fail:
	core->cfg = NULL; /* the caller's still on failure */
	fl_core_free(core);
	return rv;
}

void fl_core_set_scheduler(struct fl_core *core, const struct fl_core_scheduler *ops, void *arg)
{
	core->sched = ops;
	core->sched_arg = arg;
}

/* ---- the thread ---- */

static void apply_reload(struct fl_core *core, struct fl_coordinator_config *next)
{
	char eb[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;

	if ((rv = fl_config_check_reload(fl_coordinator_config_table, core->cfg, next, eb)) !=
	    FL_OK) {
		fl_log_error("config", "reload refused, keeping the running config: %s", eb);
		fl_coordinator_config_fini(next);
		free(next);
		return;
	}
	if ((rv = fl_store_begin(core->store, eb)) == FL_OK &&
	    (rv = add_config_peers(core, next, true, eb)) == FL_OK)
		rv = fl_store_commit(core->store, eb);
	else
		fl_store_rollback(core->store);
	if (rv != FL_OK) {
		fl_log_error("config", "reload refused, keeping the running config: %s", eb);
		fl_coordinator_config_fini(next);
		free(next);
		return;
	}
	fl_coordinator_config_fini(core->cfg);
	free(core->cfg);
	core->cfg = next;
	fl_log_info("config",
	            "reloaded: %zu operators, %zu agents in the config, %zu trusted release "
	            "keys",
	            next->operators.n, next->agents.n, next->wire.trusted_release_keys.n);
}

static void finish(struct fl_core *core)
{
	char eb[FL_ERRBUF_SIZE] = "";

	/* every held poll answered */
	while (core->n_held > 0) {
		struct fl_core_held *h = core->heap[0];
		struct fl_core_agent *a = h->agent;

		unhold(core, a);
		reply_poll_empty(core, a, h->req, h->seq);
		free(h);
	}
	flush_seen(core);
	if (core->sched && core->sched->stop)
		core->sched->stop(core->sched_arg);
	if (fl_peers_sync(core->peers, eb) != FL_OK)
		fl_log_error("peers", "%s", eb);
}

static void *core_main(void *arg)
{
	struct fl_core *core = arg;
	int64_t now = fl_now_ms();

	core->next_offline_check = now + OFFLINE_CHECK_MS;
	core->next_flush = now + SEEN_FLUSH_MS;
	core->next_sync = now + PEERS_SYNC_MS;
	core->next_tick = now;
	pthread_mutex_lock(&core->mtx);
	for (;;) {
		struct fl_core_job *jobs;
		struct fl_coordinator_config *reload;

		while (core->head == NULL && core->reload_cfg == NULL && !core->stopping) {
			int64_t wait = next_deadline(core) - fl_now_ms();
			struct timespec ts;

			if (wait <= 0)
				break;
			ts = fl_timespec_in(CLOCK_MONOTONIC, wait); /* the cond's clock */
			pthread_cond_timedwait(&core->cond, &core->mtx, &ts);
		}
		jobs = core->head;
		core->head = core->tail = NULL;
		reload = core->reload_cfg;
		core->reload_cfg = NULL;
		if (jobs == NULL && reload == NULL && core->stopping)
			break;
		pthread_mutex_unlock(&core->mtx);

		while (jobs != NULL) {
			struct fl_core_job *j = jobs;

			jobs = j->next;
			j->run(core, j);
			run_wakes(core);
		}
		if (reload)
			apply_reload(core, reload);
		run_timers(core);
		pthread_mutex_lock(&core->mtx);
	}
	pthread_mutex_unlock(&core->mtx);
	finish(core);
	return NULL;
}

enum fl_err fl_core_start(struct fl_core *core, char *errbuf)
{
	enum fl_err rv;

	if (core->sched && core->sched->start) {
		if ((rv = fl_store_begin(core->store, errbuf)) != FL_OK)
			return rv;
		if ((rv = core->sched->start(core->sched_arg, core, errbuf)) != FL_OK ||
		    (rv = fl_store_commit(core->store, errbuf)) != FL_OK) {
			fl_store_rollback(core->store);
			return rv;
		}
	}
	if (pthread_create(&core->thread, NULL, core_main, core) != 0)
		return fl_errf(errbuf, FL_EIO, "cannot start the core thread");
	core->started = true;
	return FL_OK;
}

void fl_core_submit(struct fl_core *core, struct fl_core_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&core->mtx);
	if (core->tail)
		core->tail->next = job;
	else
		core->head = job;
	core->tail = job;
	pthread_cond_signal(&core->cond);
	pthread_mutex_unlock(&core->mtx);
}

void fl_core_reload(struct fl_core *core, struct fl_coordinator_config *new_cfg)
{
	struct fl_coordinator_config *old;

	pthread_mutex_lock(&core->mtx);
	old = core->reload_cfg;
	core->reload_cfg = new_cfg;
	pthread_cond_signal(&core->cond);
	pthread_mutex_unlock(&core->mtx);
	if (old) { /* two reloads before the core took one: the newer wins */
		fl_coordinator_config_fini(old);
		free(old);
	}
}

void fl_core_stop(struct fl_core *core)
{
	if (!core->started)
		return;
	pthread_mutex_lock(&core->mtx);
	core->stopping = true;
	pthread_cond_signal(&core->cond);
	pthread_mutex_unlock(&core->mtx);
	pthread_join(core->thread, NULL);
	core->started = false;
}

void fl_core_free(struct fl_core *core)
{
	if (core == NULL)
		return;
	for (size_t i = 0; i < core->n_held; i++)
		free(core->heap[i]);
	free(core->heap);
	for (size_t i = 0; i < core->n_agents; i++) {
		fl_labels_fini(&core->agents[i]->pub.labels);
		free(core->agents[i]->pub.running);
		free(core->agents[i]);
	}
	free(core->agents);
	free(core->map);
	free(core->wakes);
	if (core->reload_cfg) {
		fl_coordinator_config_fini(core->reload_cfg);
		free(core->reload_cfg);
	}
	if (core->cfg) {
		fl_coordinator_config_fini(core->cfg);
		free(core->cfg);
	}
	fl_enroll_tokens_free(core->tokens);
	fl_buf_fini(&core->sealed);
	pthread_mutex_destroy(&core->mtx);
	pthread_cond_destroy(&core->cond);
	free(core);
}

void fl_core_set_metrics(struct fl_core *core, struct fl_metrics *m)
{
	core->metrics = m;
}

struct fl_metrics *fl_core_metrics(struct fl_core *core)
{
	return core->metrics;
}
