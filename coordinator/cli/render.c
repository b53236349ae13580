/* The admin read commands' JSON documents (render.h). */
#include "render.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "keys.h"

const char *jr_enum(const ProtobufCEnumDescriptor *d, int value, char *buf, size_t n)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
	const ProtobufCEnumValue *zero = protobuf_c_enum_descriptor_get_value(d, 0);
	size_t skip = 0, k = 0;
	const char *s;

	if (v == NULL || n == 0) {
		snprintf(buf, n, "?");
		return buf;
	}
	/* Every enum of flotilla.proto has PREFIX_UNSPECIFIED = 0. */
	if (zero != NULL && strlen(zero->name) > strlen("UNSPECIFIED"))
		skip = strlen(zero->name) - strlen("UNSPECIFIED");
	s = strlen(v->name) > skip ? v->name + skip : v->name;
	for (; *s != '\0' && k + 1 < n; s++)
		buf[k++] = *s == '_' ? '-' : (char)tolower((unsigned char)*s);
	buf[k] = '\0';
	return buf;
}

void jr_labels(struct jw *w, const char *key, Flotilla__V1__Label *const *labels, size_t n)
{
	jw_obj(w, key);
	for (size_t i = 0; i < n; i++)
		jw_str(w, labels[i]->key, labels[i]->value);
	jw_end(w);
}

void jr_tenant(struct jw *w, const char *key, const Flotilla__V1__TenantStatus *t)
{
	char b[JR_ENUM_MAX];

	jw_obj(w, key);
	jw_str(w, "tenant_id", t->tenant_id);
	jw_str(w, "agent_id", t->agent_id);
	jw_str(w, "database", t->database);
	jw_str(w, "schema", t->schema);
	jr_labels(w, "labels", t->labels, t->n_labels);
	jw_str(w, "state",
	       jr_enum(&flotilla__v1__tenant_state__descriptor, t->state, b, sizeof(b)));
	jw_str(w, "head_migration_id", t->head_migration_id);
	jw_uint(w, "applied_count", t->applied_count);
	jw_str(w, "fingerprint", t->fingerprint);
	jw_bool(w, "drifted", t->drifted);
	jw_bool(w, "external_changes", t->external_changes);
	jw_str(w, "rollout_id", t->rollout_id);
	jw_str(w, "last_error", t->last_error);
	jw_int(w, "updated_at_ms", t->updated_at_ms);
	jw_end(w);
}

void jr_state_counts(struct jw *w, const char *key, Flotilla__V1__TenantStateCount *const *counts,
                     size_t n)
{
	char b[JR_ENUM_MAX];

	jw_obj(w, key);
	for (size_t i = 0; i < n; i++)
		jw_uint(w,
		        jr_enum(&flotilla__v1__tenant_state__descriptor, counts[i]->state, b,
		                sizeof(b)),
		        counts[i]->count);
	jw_end(w);
}

void jr_agent(struct jw *w, const char *key, const Flotilla__V1__AgentInfo *ai)
{
	char id[FL_KEY_ID_LEN + 1], pub[FL_KEY_PUBLIC_TEXT_LEN + 1], b[JR_ENUM_MAX];

	jw_obj(w, key);
	jw_str(w, "name", ai->name);
	if (ai->public_key.len == FL_KEY_PUBLIC_BYTES) {
		fl_key_public_text(ai->public_key.data, pub);
		jw_str(w, "public_key", pub);
		fl_key_id(ai->public_key.data, id);
		jw_str(w, "key_id", id);
	} else {
		jw_null(w, "public_key");
		jw_str(w, "key_id", "-");
	}
	jr_labels(w, "labels", ai->labels, ai->n_labels);
	jw_str(w, "state",
	       jr_enum(&flotilla__v1__agent_state__descriptor, ai->state, b, sizeof(b)));
	jw_str(w, "agent_version", ai->agent_version);
	jw_uint(w, "protocol_version", ai->protocol_version);
	jw_uint(w, "tenant_count", ai->tenant_count);
	jw_int(w, "last_seen_at_ms", ai->last_seen_at_ms);
	jw_int(w, "approved_at_ms", ai->approved_at_ms);
	jw_str(w, "approved_by", ai->approved_by);
	jw_end(w);
}

void jr_audit_entry(struct jw *w, const char *key, const Flotilla__V1__AuditEntry *e)
{
	char b[JR_ENUM_MAX];

	jw_obj(w, key);
	jw_uint(w, "id", e->id);
	jw_int(w, "at_ms", e->at_ms);
	jw_str(w, "actor_key_id", e->actor_key_id);
	jw_str(w, "actor_name", e->actor_name);
	jw_str(w, "role", jr_enum(&flotilla__v1__role__descriptor, e->role, b, sizeof(b)));
	jw_str(w, "command", e->command);
	jw_str(w, "subject", e->subject);
	jw_str(w, "code", jr_enum(&flotilla__v1__status_code__descriptor, e->code, b, sizeof(b)));
	jw_str(w, "detail", e->detail);
	jw_end(w);
}

static void selector(struct jw *w, const char *key, const Flotilla__V1__TenantSelector *s)
{
	jw_obj(w, key);
	if (s != NULL) {
		jr_labels(w, "labels", s->labels, s->n_labels);
		jw_arr(w, "tenant_ids");
		for (size_t i = 0; i < s->n_tenant_ids; i++)
			jw_str(w, NULL, s->tenant_ids[i]);
		jw_end(w);
		jw_bool(w, "all", s->all);
	}
	jw_end(w);
}

static void wave(struct jw *w, const Flotilla__V1__WaveStatus *ws)
{
	char b[JR_ENUM_MAX];

	jw_obj(w, NULL);
	jw_uint(w, "index", ws->index);
	jw_str(w, "name", ws->name);
	jw_str(w, "state", jr_enum(&flotilla__v1__wave_state__descriptor, ws->state, b, sizeof(b)));
	jw_str(w, "gate", jr_enum(&flotilla__v1__gate__descriptor, ws->gate, b, sizeof(b)));
	jw_uint(w, "tenants_total", ws->tenants_total);
	jw_uint(w, "tenants_pending", ws->tenants_pending);
	jw_uint(w, "tenants_running", ws->tenants_running);
	jw_uint(w, "tenants_applied", ws->tenants_applied);
	jw_uint(w, "tenants_failed", ws->tenants_failed);
	jw_uint(w, "tenants_rolled_back", ws->tenants_rolled_back);
	jw_uint(w, "tenants_skipped", ws->tenants_skipped);
	jw_uint(w, "tenants_unreachable", ws->tenants_unreachable);
	jw_int(w, "started_at_ms", ws->started_at_ms);
	jw_int(w, "finished_at_ms", ws->finished_at_ms);
	jw_int(w, "bake_until_ms", ws->bake_until_ms);
	jw_str(w, "state_reason", ws->state_reason);
	jw_end(w);
}

void jr_rollout(struct jw *w, const char *key, const Flotilla__V1__RolloutInfo *r)
{
	char b[JR_ENUM_MAX];

	jw_obj(w, key);
	jw_str(w, "id", r->id);
	jw_str(w, "state",
	       jr_enum(&flotilla__v1__rollout_state__descriptor, r->state, b, sizeof(b)));
	jw_str(w, "state_reason", r->state_reason);
	jw_uint(w, "current_wave", r->current_wave);
	jw_str(w, "project_id", r->project_id);
	jw_hex(w, "release_hash", r->release_hash.data, r->release_hash.len);
	jw_str(w, "target_migration_id", r->target_migration_id);
	jw_hex(w, "order_hash", r->order_hash.data, r->order_hash.len);
	jw_str(w, "policy_name", r->policy_name);
	jw_str(w, "on_failure",
	       jr_enum(&flotilla__v1__failure_policy__descriptor, r->on_failure, b, sizeof(b)));
	selector(w, "selector", r->selector);
	jw_uint(w, "tenants_total", r->tenants_total);
	jw_int(w, "created_at_ms", r->created_at_ms);
	jw_int(w, "updated_at_ms", r->updated_at_ms);
	jw_int(w, "expires_at_ms", r->expires_at_ms);
	jw_str(w, "created_by", r->created_by);
	jw_str(w, "signed_by", r->signed_by);
	jw_arr(w, "waves");
	for (size_t i = 0; i < r->n_waves; i++)
		wave(w, r->waves[i]);
	jw_end(w);
	jw_end(w);
}

static void report(struct jw *w, const Flotilla__V1__StoredReport *sr)
{
	const Flotilla__V1__Report *r = sr->report;
	char b[JR_ENUM_MAX];

	jw_obj(w, NULL);
	jw_int(w, "received_at_ms", sr->received_at_ms);
	jw_str(w, "agent_id", r->agent_id);
	jw_str(w, "rollout_id", r->rollout_id);
	jw_uint(w, "assignment_id", r->assignment_id);
	jw_str(w, "kind", jr_enum(&flotilla__v1__work_kind__descriptor, r->kind, b, sizeof(b)));
	jw_str(w, "outcome", jr_enum(&flotilla__v1__outcome__descriptor, r->outcome, b, sizeof(b)));
	jw_str(w, "message", r->message);
	jw_int(w, "started_at_ms", r->started_at_ms);
	jw_int(w, "finished_at_ms", r->finished_at_ms);
	jw_str(w, "head_migration_id", r->head_migration_id);
	jw_uint(w, "applied_count", r->applied_count);
	jw_str(w, "fingerprint", r->fingerprint);
	jw_arr(w, "migrations");
	for (size_t i = 0; i < r->n_migrations; i++) {
		const Flotilla__V1__MigrationResult *m = r->migrations[i];

		jw_obj(w, NULL);
		jw_str(w, "migration_id", m->migration_id);
		jw_str(w, "outcome",
		       jr_enum(&flotilla__v1__outcome__descriptor, m->outcome, b, sizeof(b)));
		jw_int(w, "started_at_ms", m->started_at_ms);
		jw_int(w, "finished_at_ms", m->finished_at_ms);
		jw_uint(w, "attempts", m->attempts);
		jw_str(w, "sqlstate", m->sqlstate);
		jw_str(w, "message", m->message);
		jw_uint(w, "statement_index", m->statement_index);
		jw_uint(w, "applied_steps_count", m->applied_steps_count);
		jw_end(w);
	}
	jw_end(w);
	jw_arr(w, "health");
	for (size_t i = 0; i < r->n_health; i++) {
		const Flotilla__V1__HealthResult *h = r->health[i];

		jw_obj(w, NULL);
		jw_str(w, "name", h->name);
		jw_bool(w, "ok", h->ok);
		jw_bool(w, "inconclusive", h->inconclusive);
		jw_str(w, "message", h->message);
		jw_uint(w, "duration_ms", h->duration_ms);
		jw_int(w, "checked_at_ms", h->checked_at_ms);
		jw_end(w);
	}
	jw_end(w);
	jw_end(w);
}

void jr_tenant_show(struct jw *w, const Flotilla__V1__TenantShowResponse *t)
{
	jw_obj(w, NULL);
	jr_tenant(w, "tenant", t->tenant);
	jw_arr(w, "applied");
	for (size_t i = 0; i < t->n_applied; i++) {
		jw_obj(w, NULL);
		jw_str(w, "id", t->applied[i]->id);
		jw_str(w, "checksum", t->applied[i]->checksum);
		jw_int(w, "started_at_ms", t->applied[i]->started_at_ms);
		jw_int(w, "finished_at_ms", t->applied[i]->finished_at_ms);
		jw_uint(w, "applied_steps_count", t->applied[i]->applied_steps_count);
		jw_end(w);
	}
	jw_end(w);
	jw_arr(w, "failed");
	for (size_t i = 0; i < t->n_failed; i++) {
		jw_obj(w, NULL);
		jw_str(w, "id", t->failed[i]->id);
		jw_str(w, "checksum", t->failed[i]->checksum);
		jw_int(w, "started_at_ms", t->failed[i]->started_at_ms);
		jw_uint(w, "applied_steps_count", t->failed[i]->applied_steps_count);
		jw_str(w, "logs", t->failed[i]->logs);
		jw_end(w);
	}
	jw_end(w);
	jw_arr(w, "reports");
	for (size_t i = 0; i < t->n_reports; i++)
		report(w, t->reports[i]);
	jw_end(w);
	jw_end(w);
}

void jr_agent_list(struct jw *w, Flotilla__V1__AgentInfo *const *agents, size_t n)
{
	jw_obj(w, NULL);
	jw_arr(w, "agents");
	for (size_t i = 0; i < n; i++)
		jr_agent(w, NULL, agents[i]);
	jw_end(w);
	jw_end(w);
}

void jr_rollout_list(struct jw *w, Flotilla__V1__RolloutInfo *const *rollouts, size_t n)
{
	jw_obj(w, NULL);
	jw_arr(w, "rollouts");
	for (size_t i = 0; i < n; i++)
		jr_rollout(w, NULL, rollouts[i]);
	jw_end(w);
	jw_end(w);
}

void jr_drift(struct jw *w, const Flotilla__V1__FleetDriftResponse *d)
{
	jw_obj(w, NULL);
	jw_uint(w, "drifted_tenants", d->drifted_tenants);
	jw_arr(w, "groups");
	for (size_t i = 0; i < d->n_groups; i++) {
		const Flotilla__V1__DriftGroup *g = d->groups[i];

		jw_obj(w, NULL);
		jw_str(w, "head_migration_id", g->head_migration_id);
		jw_str(w, "fingerprint", g->fingerprint);
		jw_uint(w, "tenant_count", g->tenant_count);
		jw_bool(w, "majority", g->majority);
		jw_arr(w, "tenant_ids");
		for (size_t k = 0; k < g->n_tenant_ids; k++)
			jw_str(w, NULL, g->tenant_ids[k]);
		jw_end(w);
		jw_end(w);
	}
	jw_end(w);
	jw_end(w);
}
