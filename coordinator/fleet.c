/* The fleet as operators read it (fleet.h). */
#include "fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "wire.h"

#define DRIFT_IDS_DEFAULT 20
#define REPORTS_DEFAULT   10

Flotilla__V1__TenantState fl_fleet_tenant_state(struct fl_core *core,
                                                const struct fl_store_tenant *t)
{
	struct fl_core_agent *a;

	if (t->rollout_state > 0)
		return (Flotilla__V1__TenantState)t->rollout_state;
	a = fl_core_agent(core, t->agent_pk);
	if (a == NULL || !a->online || t->read_error[0] != '\0')
		return FLOTILLA__V1__TENANT_STATE__TENANT_STATE_UNREACHABLE;
	if (t->failed_count > 0)
		return FLOTILLA__V1__TENANT_STATE__TENANT_STATE_FAILED;
	return FLOTILLA__V1__TENANT_STATE__TENANT_STATE_IDLE;
}

/* The majority fingerprint per head, from the store's drift rows (sorted by
 * head, then count descending: the first row of each head wins). */
struct majority {
	struct fl_store_drift_row *rows;
	size_t n;
};

static const struct fl_store_drift_row *majority_of(const struct majority *mj, const char *head,
                                                    bool *several)
{
	size_t lo = 0, hi = mj->n;

	*several = false;
	while (lo < hi) { /* first row with this head */
		size_t mid = (lo + hi) / 2;

		if (strcmp(mj->rows[mid].head_migration_id, head) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= mj->n || strcmp(mj->rows[lo].head_migration_id, head) != 0)
		return NULL;
	*several = lo + 1 < mj->n && strcmp(mj->rows[lo + 1].head_migration_id, head) == 0;
	return &mj->rows[lo];
}

static bool drifted(const struct majority *mj, const struct fl_store_tenant *t)
{
	const struct fl_store_drift_row *r;
	bool several;

	if (t->fingerprint[0] == '\0')
		return false;
	r = majority_of(mj, t->head_migration_id, &several);
	return r != NULL && several && strcmp(r->fingerprint, t->fingerprint) != 0;
}

/* Names of every agent in the store (revoked ones too), by key. */
struct names {
	struct fl_store_agent *agents;
	size_t n;
};

static const char *agent_name(const struct names *nm, const uint8_t pk[FL_PEER_KEY_LEN])
{
	for (size_t i = 0; i < nm->n; i++)
		if (memcmp(nm->agents[i].pk, pk, FL_PEER_KEY_LEN) == 0)
			return nm->agents[i].name;
	return "";
}

static Flotilla__V1__Label **wire_labels(struct fl_arena *ar, const struct fl_labels *l, size_t *n)
{
	Flotilla__V1__Label **out = fl_arena_alloc(ar, (l->n + 1) * sizeof(*out));

	for (size_t i = 0; i < l->n; i++) {
		Flotilla__V1__Label *x = fl_arena_alloc(ar, sizeof(*x));

		flotilla__v1__label__init(x);
		x->key = fl_arena_strdup(ar, l->items[i].key);
		x->value = fl_arena_strdup(ar, l->items[i].value);
		out[i] = x;
	}
	*n = l->n;
	return out;
}

static Flotilla__V1__TenantStatus *tenant_status(struct fl_core *core, struct fl_arena *ar,
                                                 const struct fl_store_tenant *t,
                                                 const struct names *nm, const struct majority *mj)
{
	Flotilla__V1__TenantStatus *s = fl_arena_alloc(ar, sizeof(*s));
	struct fl_core_agent *a = fl_core_agent(core, t->agent_pk);

	flotilla__v1__tenant_status__init(s);
	s->tenant_id = fl_arena_strdup(ar, t->id);
	s->agent_id = fl_arena_strdup(ar, a ? a->name : agent_name(nm, t->agent_pk));
	s->database = fl_arena_strdup(ar, t->database);
	s->schema = fl_arena_strdup(ar, t->schema);
	s->labels = wire_labels(ar, &t->labels, &s->n_labels);
	s->state = fl_fleet_tenant_state(core, t);
	s->head_migration_id = fl_arena_strdup(ar, t->head_migration_id);
	s->applied_count = t->applied_count;
	s->fingerprint = fl_arena_strdup(ar, t->fingerprint);
	s->drifted = drifted(mj, t);
	s->rollout_id = fl_arena_strdup(ar, t->rollout_id);
	s->last_error = fl_arena_strdup(ar, t->read_error[0] ? t->read_error : t->last_error);
	s->updated_at_ms = t->updated_at_ms;
	s->external_changes = t->external_changes;
	return s;
}

static bool labels_match(const struct fl_store_tenant *t, Flotilla__V1__Label **want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = fl_labels_get(&t->labels, want[i]->key);

		if (v == NULL || strcmp(v, want[i]->value) != 0)
			return false;
	}
	return true;
}

static uint32_t page_limit(struct fl_core *core, uint32_t asked)
{
	uint32_t max = (uint32_t)fl_core_config(core)->list_limit;

	return asked == 0 || asked > max ? max : asked;
}

/* ---- fleet_status ---- */

struct status_walk {
	struct fl_core *core;
	const Flotilla__V1__FleetStatusRequest *req;
	struct fl_core_admin_reply *reply;
	Flotilla__V1__FleetStatusResponse *resp;
	const struct names *nm;
	const struct majority *mj;
	uint32_t limit;
	uint32_t counts[FLOTILLA__V1__TENANT_STATE__TENANT_STATE_UNREACHABLE + 1];
	bool more;
};

static bool status_one(void *arg, const struct fl_store_tenant *t)
{
	struct status_walk *w = arg;
	Flotilla__V1__TenantState state;
	bool want = w->req->n_states == 0;

	if (!labels_match(t, w->req->labels, w->req->n_labels))
		return true;
	state = fl_fleet_tenant_state(w->core, t);
	for (size_t i = 0; i < w->req->n_states && !want; i++)
		want = w->req->states[i] == state;
	if (!want)
		return true;
	w->resp->total_count++;
	if ((unsigned)state < sizeof(w->counts) / sizeof(w->counts[0]))
		w->counts[state]++;
	if (strcmp(t->id, w->req->after_tenant_id) <= 0)
		return true;
	if (w->resp->n_tenants < w->limit)
		fl_arena_push(w->reply->arena, &w->resp->tenants, &w->resp->n_tenants,
		              tenant_status(w->core, w->reply->arena, t, w->nm, w->mj));
	else
		w->more = true;
	return true;
}

static enum fl_err load_context(struct fl_core *core, struct names *nm, struct majority *mj,
                                char *errbuf)
{
	enum fl_err rv;

	memset(nm, 0, sizeof(*nm));
	memset(mj, 0, sizeof(*mj));
	if ((rv = fl_store_agent_list(fl_core_store(core), true, &nm->agents, &nm->n, errbuf)) !=
	    FL_OK)
		return rv;
	if ((rv = fl_store_drift_rows(fl_core_store(core), &mj->rows, &mj->n, errbuf)) != FL_OK) {
		fl_store_agents_free(nm->agents, nm->n);
		memset(nm, 0, sizeof(*nm));
	}
	return rv;
}

static void free_context(struct names *nm, struct majority *mj)
{
	fl_store_agents_free(nm->agents, nm->n);
	fl_store_drift_rows_free(mj->rows, mj->n);
}

enum fl_err fl_fleet_status(struct fl_core *core, const Flotilla__V1__FleetStatusRequest *req,
                            struct fl_core_admin_reply *reply, char *errbuf)
{
	struct fl_arena *ar = reply->arena;
	Flotilla__V1__FleetStatusResponse *resp = fl_arena_alloc(ar, sizeof(*resp));
	struct status_walk w = {0};
	struct names nm;
	struct majority mj;
	enum fl_err rv;

	flotilla__v1__fleet_status_response__init(resp);
	if ((rv = load_context(core, &nm, &mj, errbuf)) != FL_OK)
		return rv;
	w.core = core;
	w.req = req;
	w.reply = reply;
	w.resp = resp;
	w.nm = &nm;
	w.mj = &mj;
	w.limit = page_limit(core, req->limit);
	rv = fl_store_tenant_each(fl_core_store(core), "", false, status_one, &w, errbuf);
	free_context(&nm, &mj);
	if (rv != FL_OK)
		return rv;
	if (w.more && resp->n_tenants > 0)
		resp->next_after_tenant_id =
		    fl_arena_strdup(ar, resp->tenants[resp->n_tenants - 1]->tenant_id);
	for (size_t s = 1; s < sizeof(w.counts) / sizeof(w.counts[0]); s++) {
		Flotilla__V1__TenantStateCount *c;

		if (w.counts[s] == 0)
			continue;
		c = fl_arena_alloc(ar, sizeof(*c));
		flotilla__v1__tenant_state_count__init(c);
		c->state = (Flotilla__V1__TenantState)s;
		c->count = w.counts[s];
		fl_arena_push(ar, &resp->counts, &resp->n_counts, c);
	}
	reply->code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	reply->response->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_FLEET_STATUS;
	reply->response->fleet_status = resp;
	return FL_OK;
}

/* ---- fleet_drift ---- */

struct drift_item {
	char *head, *fp, *id;
};

struct drift_walk {
	const Flotilla__V1__FleetDriftRequest *req;
	struct drift_item *items;
	size_t n, cap;
};

static bool drift_one(void *arg, const struct fl_store_tenant *t)
{
	struct drift_walk *w = arg;

	if (t->fingerprint[0] == '\0' || !labels_match(t, w->req->labels, w->req->n_labels))
		return true;
	w->items = fl_grow(w->items, &w->cap, w->n + 1, sizeof(*w->items));
	w->items[w->n].head = fl_strdup(t->head_migration_id);
	w->items[w->n].fp = fl_strdup(t->fingerprint);
	w->items[w->n++].id = fl_strdup(t->id);
	return true;
}

static int cmp_drift(const void *a, const void *b)
{
	const struct drift_item *x = a, *y = b;
	int c = strcmp(x->head, y->head);

	if (c == 0)
		c = strcmp(x->fp, y->fp);
	return c ? c : strcmp(x->id, y->id);
}

enum fl_err fl_fleet_drift(struct fl_core *core, const Flotilla__V1__FleetDriftRequest *req,
                           struct fl_core_admin_reply *reply, char *errbuf)
{
	struct fl_arena *ar = reply->arena;
	Flotilla__V1__FleetDriftResponse *resp = fl_arena_alloc(ar, sizeof(*resp));
	struct drift_walk w = {req, NULL, 0, 0};
	uint32_t ids_max = req->limit ? page_limit(core, req->limit) : DRIFT_IDS_DEFAULT;
	enum fl_err rv;
	size_t i = 0;

	flotilla__v1__fleet_drift_response__init(resp);
	rv = fl_store_tenant_each(fl_core_store(core), "", false, drift_one, &w, errbuf);
	if (rv != FL_OK)
		goto out;
	if (w.n > 1)
		qsort(w.items, w.n, sizeof(*w.items), cmp_drift);
	while (i < w.n) { /* one head at a time */
		size_t end = i, first_group, best = 0, best_count = 0, groups = 0;

		while (end < w.n && strcmp(w.items[end].head, w.items[i].head) == 0)
			end++;
		first_group = resp->n_groups;
		for (size_t g = i; g < end;) {
			Flotilla__V1__DriftGroup *dg = fl_arena_alloc(ar, sizeof(*dg));
			size_t ge = g;

			flotilla__v1__drift_group__init(dg);
			while (ge < end && strcmp(w.items[ge].fp, w.items[g].fp) == 0)
				ge++;
			dg->head_migration_id = fl_arena_strdup(ar, w.items[g].head);
			dg->fingerprint = fl_arena_strdup(ar, w.items[g].fp);
			dg->tenant_count = (uint32_t)(ge - g);
			for (size_t k = g; k < ge && k - g < ids_max; k++)
				fl_arena_push(ar, &dg->tenant_ids, &dg->n_tenant_ids,
				              fl_arena_strdup(ar, w.items[k].id));
			if (dg->tenant_count > best_count) {
				best_count = dg->tenant_count;
				best = groups;
			}
			fl_arena_push(ar, &resp->groups, &resp->n_groups, dg);
			groups++;
			g = ge;
		}
		if (groups < 2) { /* one fingerprint at this head: no drift */
			resp->n_groups = first_group;
		} else {
			Flotilla__V1__DriftGroup *tmp;

			resp->groups[first_group + best]->majority = true;
			/* majority first */
			tmp = resp->groups[first_group];
			resp->groups[first_group] = resp->groups[first_group + best];
			resp->groups[first_group + best] = tmp;
			resp->drifted_tenants += (uint32_t)(end - i - best_count);
		}
		i = end;
	}
	reply->code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	reply->response->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_FLEET_DRIFT;
	reply->response->fleet_drift = resp;
out:
	for (size_t k = 0; k < w.n; k++) {
		free(w.items[k].head);
		free(w.items[k].fp);
		free(w.items[k].id);
	}
	free(w.items);
	return rv;
}

/* ---- tenant_show ---- */

enum fl_err fl_fleet_tenant_show(struct fl_core *core, const Flotilla__V1__TenantShowRequest *req,
                                 struct fl_core_admin_reply *reply, ProtobufCMessage ***owned,
                                 size_t *n_owned, char *errbuf)
{
	struct fl_arena *ar = reply->arena;
	Flotilla__V1__TenantShowResponse *resp = fl_arena_alloc(ar, sizeof(*resp));
	struct fl_store_report *reports = NULL;
	struct fl_store_tenant t;
	struct names nm;
	struct majority mj;
	size_t n_reports = 0;
	uint32_t limit = req->report_limit ? page_limit(core, req->report_limit) : REPORTS_DEFAULT;
	enum fl_err rv;
	char eb[FL_ERRBUF_SIZE];

	flotilla__v1__tenant_show_response__init(resp);
	reply->subject = fl_arena_strdup(ar, req->tenant_id);
	rv = fl_store_tenant_get(fl_core_store(core), req->tenant_id, FL_STORE_WITH_HISTORY, &t,
	                         errbuf);
	if (rv == FL_ENOENT) {
		char q[300];

		reply->code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_NOT_FOUND;
		snprintf(q, sizeof(q), "no tenant '%s'", req->tenant_id);
		reply->message = fl_arena_strdup(ar, q);
		return FL_OK;
	}
	if (rv != FL_OK)
		return rv;
	if ((rv = load_context(core, &nm, &mj, errbuf)) != FL_OK) {
		fl_store_tenant_fini(&t);
		return rv;
	}
	resp->tenant = tenant_status(core, ar, &t, &nm, &mj);
	free_context(&nm, &mj);
	for (size_t i = 0; i < t.n_applied; i++) {
		Flotilla__V1__AppliedMigration *a = fl_arena_alloc(ar, sizeof(*a));

		flotilla__v1__applied_migration__init(a);
		a->id = fl_arena_strdup(ar, t.applied[i].id);
		a->checksum = fl_arena_strdup(ar, t.applied[i].checksum);
		a->started_at_ms = t.applied[i].started_at_ms;
		a->finished_at_ms = t.applied[i].finished_at_ms;
		a->applied_steps_count = t.applied[i].applied_steps_count;
		fl_arena_push(ar, &resp->applied, &resp->n_applied, a);
	}
	for (size_t i = 0; i < t.n_failed; i++) {
		Flotilla__V1__FailedMigration *f = fl_arena_alloc(ar, sizeof(*f));

		flotilla__v1__failed_migration__init(f);
		f->id = fl_arena_strdup(ar, t.failed[i].id);
		f->checksum = fl_arena_strdup(ar, t.failed[i].checksum);
		f->started_at_ms = t.failed[i].started_at_ms;
		f->applied_steps_count = t.failed[i].applied_steps_count;
		f->logs = fl_arena_strdup(ar, t.failed[i].logs);
		fl_arena_push(ar, &resp->failed, &resp->n_failed, f);
	}
	fl_store_tenant_fini(&t);
	if ((rv = fl_store_report_list(fl_core_store(core), req->tenant_id, limit, &reports,
	                               &n_reports, errbuf)) != FL_OK)
		return rv;
	for (size_t i = 0; i < n_reports; i++) {
		ProtobufCMessage *m = NULL;
		Flotilla__V1__StoredReport *sr;

		if (fl_wire_unpack_message(&flotilla__v1__report__descriptor, 0, reports[i].packed,
		                           reports[i].len, FL_WIRE_MAX_REPORT, &m, eb) != FL_OK)
			continue; /* stored as received; a newer format is skipped */
		fl_arena_push(ar, owned, n_owned, m);
		sr = fl_arena_alloc(ar, sizeof(*sr));
		flotilla__v1__stored_report__init(sr);
		sr->report = (Flotilla__V1__Report *)m;
		sr->received_at_ms = reports[i].received_at_ms;
		fl_arena_push(ar, &resp->reports, &resp->n_reports, sr);
	}
	fl_store_reports_free(reports, n_reports);
	reply->code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	reply->response->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_TENANT_SHOW;
	reply->response->tenant_show = resp;
	return FL_OK;
}
