/* Reconcile on Hello (reconcile.h). */
#include "reconcile.h"

#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "mem.h"
#include "wire.h"

struct parts {
	Flotilla__V1__Message **msgs;
	size_t n, cap;
};

void fl_reconcile_discard(struct fl_core_agent *agent)
{
	struct parts *p = agent->hello_parts;

	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		fl_wire_free(p->msgs[i]);
	free(p->msgs);
	free(p);
	agent->hello_parts = NULL;
}

/* A listed tenant, in Hello order. */
struct listed {
	const char *id; /* first: sorted as a string */
	size_t order;
	const Flotilla__V1__Tenant *t;
};

static int cmp_listed(const void *a, const void *b)
{
	const struct listed *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* Labels from the wire into a set; false (logged) when one is invalid. */
static bool wire_labels(const struct fl_core_agent *agent, const char *tenant,
                        Flotilla__V1__Label **labels, size_t n, struct fl_labels *out)
{
	char eb[FL_ERRBUF_SIZE] = "";

	fl_labels_init(out);
	for (size_t i = 0; i < n; i++)
		if (fl_labels_set(out, labels[i]->key, labels[i]->value, eb) != FL_OK) {
			fl_log_warn(agent->name, "tenant '%s' refused: %s", tenant, eb);
			fl_labels_fini(out);
			return false;
		}
	return true;
}

static enum fl_err one_tenant(struct fl_core *core, struct fl_core_agent *agent,
                              const Flotilla__V1__Tenant *wt, int64_t now,
                              struct fl_reconcile_stats *stats, char *errbuf)
{
	struct fl_store *st = fl_core_store(core);
	struct fl_store_tenant old, t = {0};
	struct fl_store_applied *applied = NULL;
	struct fl_store_failed *failed = NULL;
	enum fl_store_origin *origins = NULL;
	bool first, ext = false;
	enum fl_err rv;
	char eb[FL_ERRBUF_SIZE] = "";

	rv = fl_store_tenant_get(st, wt->id, FL_STORE_WITH_HISTORY, &old, errbuf);
	if (rv != FL_OK && rv != FL_ENOENT)
		return rv;
	first = rv == FL_ENOENT;
	if (!first && !old.gone && memcmp(old.agent_pk, agent->pk, FL_PEER_KEY_LEN) != 0 &&
	    fl_core_agent(core, old.agent_pk) != NULL) {
		struct fl_core_agent *owner = fl_core_agent(core, old.agent_pk);

		fl_log_warn(agent->name, "tenant '%s' refused: it is agent '%s''s", wt->id,
		            owner->name);
		fl_core_count(core, FL_CORE_TENANTS_CLAIMED_TWICE);
		stats->refused++;
		fl_store_tenant_fini(&old);
		return FL_OK;
	}
	if (!wire_labels(agent, wt->id, wt->labels, wt->n_labels, &t.labels)) {
		stats->refused++;
		fl_store_tenant_fini(&old);
		return FL_OK;
	}
	t.id = wt->id;
	memcpy(t.agent_pk, agent->pk, FL_PEER_KEY_LEN);
	t.database = wt->database;
	t.schema = wt->schema;
	t.release_sequence = wt->release_sequence;
	t.read_error = wt->error;
	t.updated_at_ms = now;
	if (wt->error[0] != '\0' && !first) {
		/* The agent could not read the history: keep what was known. */
		t.head_migration_id = old.head_migration_id;
		t.applied_count = old.applied_count;
		t.fingerprint = old.fingerprint;
		t.applied = old.applied;
		t.n_applied = old.n_applied;
		t.failed = old.failed;
		t.n_failed = old.n_failed;
		t.failed_count = old.failed_count;
		t.external_changes = old.external_changes;
		rv = fl_store_tenant_put(st, &t, errbuf);
		goto out;
	}
	applied = fl_calloc(wt->n_applied + 1, sizeof(*applied));
	origins = fl_calloc(wt->n_applied + 1, sizeof(*origins));
	for (size_t i = 0; i < wt->n_applied; i++) {
		const Flotilla__V1__AppliedMigration *a = wt->applied[i];

		applied[i].id = a->id;
		applied[i].checksum = a->checksum;
		applied[i].started_at_ms = a->started_at_ms;
		applied[i].finished_at_ms = a->finished_at_ms;
		applied[i].applied_steps_count = a->applied_steps_count;
		if (!first &&
		    (rv = fl_store_origin_get(st, wt->id, a->id, &origins[i], errbuf)) != FL_OK)
			goto out;
		if (origins[i] == FL_STORE_ORIGIN_EXTERNAL)
			ext = true;
	}
	failed = fl_calloc(wt->n_failed + 1, sizeof(*failed));
	for (size_t i = 0; i < wt->n_failed; i++) {
		const Flotilla__V1__FailedMigration *f = wt->failed[i];

		failed[i].id = f->id;
		failed[i].checksum = f->checksum;
		failed[i].started_at_ms = f->started_at_ms;
		failed[i].applied_steps_count = f->applied_steps_count;
		failed[i].logs = f->logs;
	}
	for (size_t i = 0; i < wt->n_applied; i++)
		if (origins[i] == 0 && !first)
			ext = true; /* new, and no report of ours applied it */
	t.applied = applied;
	t.n_applied = wt->n_applied;
	t.applied_count = (uint32_t)wt->n_applied;
	t.head_migration_id = wt->n_applied ? wt->applied[wt->n_applied - 1]->id : "";
	t.failed = failed;
	t.n_failed = wt->n_failed;
	t.failed_count = (uint32_t)wt->n_failed;
	t.fingerprint = wt->fingerprint;
	t.external_changes = ext;
	if ((rv = fl_store_tenant_put(st, &t, errbuf)) != FL_OK)
		goto out;
	for (size_t i = 0; i < wt->n_applied; i++) {
		if (origins[i] != 0)
			continue;
		if (!first)
			fl_log_warn(agent->name,
			            "tenant '%s': migration '%s' was applied outside flotilla",
			            wt->id, wt->applied[i]->id);
		rv = fl_store_origin_set(
		    st, wt->id, wt->applied[i]->id,
		    first ? FL_STORE_ORIGIN_BASELINE : FL_STORE_ORIGIN_EXTERNAL, now, errbuf);
		if (rv != FL_OK)
			goto out;
	}
	if (ext)
		stats->external++;
	if (first)
		fl_log_info(agent->name, "tenant '%s' seen first: %zu migrations applied", wt->id,
		            wt->n_applied);
	(void)eb;
out:
	if (rv == FL_OK)
		stats->tenants++;
	fl_labels_fini(&t.labels);
	free(applied);
	free(failed);
	free(origins);
	if (!first)
		fl_store_tenant_fini(&old);
	return rv;
}

static enum fl_err reconcile_all(struct fl_core *core, struct fl_core_agent *agent,
                                 Flotilla__V1__Message **msgs, size_t n_msgs,
                                 struct fl_reconcile_stats *stats, char *errbuf)
{
	struct fl_store *st = fl_core_store(core);
	const Flotilla__V1__Hello *last = msgs[n_msgs - 1]->hello;
	int64_t now = fl_core_now_ms(core);
	struct listed *listed = NULL;
	size_t n_listed = 0, cap = 0, n_old = 0, j = 0;
	char **old = NULL;
	enum fl_err rv = FL_OK;

	for (size_t m = 0; m < n_msgs; m++) {
		const Flotilla__V1__Hello *h = msgs[m]->hello;

		for (size_t i = 0; i < h->n_tenants; i++) {
			listed = fl_grow(listed, &cap, n_listed + 1, sizeof(*listed));
			listed[n_listed].id = h->tenants[i]->id;
			listed[n_listed].order = n_listed;
			listed[n_listed].t = h->tenants[i];
			n_listed++;
		}
	}
	if (n_listed > 1)
		qsort(listed, n_listed, sizeof(*listed), cmp_listed);
	for (size_t i = 0; i < n_listed && rv == FL_OK; i++) {
		if (i > 0 && strcmp(listed[i - 1].id, listed[i].id) == 0) {
			fl_log_warn(agent->name, "tenant '%s' listed twice: the first one counts",
			            listed[i].id);
			continue;
		}
		rv = one_tenant(core, agent, listed[i].t, now, stats, errbuf);
	}
	if (rv != FL_OK)
		goto out;
	/* tenants it no longer lists (both lists sorted by id) */
	if ((rv = fl_store_tenant_ids_of_agent(st, agent->pk, &old, &n_old, errbuf)) != FL_OK)
		goto out;
	for (size_t i = 0; i < n_old && rv == FL_OK; i++) {
		while (j < n_listed && strcmp(listed[j].id, old[i]) < 0)
			j++;
		if (j < n_listed && strcmp(listed[j].id, old[i]) == 0)
			continue;
		fl_log_info(agent->name, "tenant '%s' gone: no longer listed", old[i]);
		rv = fl_store_tenant_set_gone(st, old[i], now, errbuf);
		stats->gone++;
	}
	if (rv == FL_OK)
		rv = fl_store_agent_seen(st, agent->pk, last->agent_version, last->protocol_version,
		                         now, errbuf);
out:
	for (size_t i = 0; i < n_old; i++)
		free(old[i]);
	free(old);
	free(listed);
	return rv;
}

enum fl_err fl_reconcile_hello(struct fl_core *core, struct fl_core_agent *agent,
                               Flotilla__V1__Message *hello, bool *done,
                               struct fl_reconcile_stats *stats, char *errbuf)
{
	struct parts *p = agent->hello_parts;
	const struct fl_core_scheduler *sched;
	struct fl_store *st = fl_core_store(core);
	void *arg = NULL;
	enum fl_err rv;

	memset(stats, 0, sizeof(*stats));
	*done = false;
	if (p == NULL) {
		p = fl_calloc(1, sizeof(*p));
		agent->hello_parts = p;
	}
	if (p->n >= FL_RECONCILE_MAX_PARTS) {
		fl_wire_free(hello);
		fl_reconcile_discard(agent);
		return fl_errf(errbuf, FL_EINVAL, "more than %d Hellos with more_tenants",
		               FL_RECONCILE_MAX_PARTS);
	}
	p->msgs = fl_grow(p->msgs, &p->cap, p->n + 1, sizeof(*p->msgs));
	p->msgs[p->n++] = hello;
	if (hello->hello->more_tenants)
		return FL_OK;

	if ((rv = fl_store_begin(st, errbuf)) != FL_OK)
		goto out;
	rv = reconcile_all(core, agent, p->msgs, p->n, stats, errbuf);
	/* the scheduler's hook, in the same transaction */
	sched = fl_core_scheduler(core, &arg);
	if (rv == FL_OK && sched && sched->hello)
		rv = sched->hello(arg, agent, errbuf);
	if (rv == FL_OK)
		rv = fl_store_commit(st, errbuf);
	else
		fl_store_rollback(st);
	if (rv == FL_OK) {
		*done = true;
		agent->reconciled = true;
	}
out:
	fl_reconcile_discard(agent);
	return rv;
}
