/*
 * The JSON documents of the admin read commands, written once for both
 * readers: the CLI's --json output (cmd_rollout.c, cmd_fleet.c,
 * cmd_tenant.c, cmd_agents.c, cmd_audit.c) and the coordinator's /api/v1
 * (coordinator/http_api.c). Each takes the protobuf message the coordinator
 * answers (proto/flotilla.proto) and writes it with jsonw.h; field names are
 * the proto's, enum values the CLI's spellings (jr_enum: "rolled-back").
 *
 * Built as the small library flotilla_render (jsonw.c, render.c) that the
 * `flotilla` CLI and flotilla_coord both link.
 */
#ifndef FL_CLI_RENDER_H
#define FL_CLI_RENDER_H

#include <stddef.h>

#include "flotilla.pb-c.h"
#include "jsonw.h"

/* Longest enum spelling jr_enum writes, with its NUL. */
#define JR_ENUM_MAX 64

/* The value's name without the enum's prefix, lowercase, '_' as '-'
 * ("ROLLOUT_STATE_ROLLED_BACK" -> "rolled-back"); "?" for an unknown value. */
const char *jr_enum(const ProtobufCEnumDescriptor *d, int value, char *buf, size_t n);

/* An object of labels: {"key": "value", ...}. */
void jr_labels(struct jw *w, const char *key, Flotilla__V1__Label *const *labels, size_t n);
/* One tenant as fleet status lists it. */
void jr_tenant(struct jw *w, const char *key, const Flotilla__V1__TenantStatus *t);
/* {"idle": N, ...}: a fleet status page's counts by state. */
void jr_state_counts(struct jw *w, const char *key, Flotilla__V1__TenantStateCount *const *counts,
                     size_t n);
/* One agent (agents list, approve, revoke). */
void jr_agent(struct jw *w, const char *key, const Flotilla__V1__AgentInfo *ai);
/* One audit entry. */
void jr_audit_entry(struct jw *w, const char *key, const Flotilla__V1__AuditEntry *e);
/* One rollout with its selector and waves (rollout status, list, watch). */
void jr_rollout(struct jw *w, const char *key, const Flotilla__V1__RolloutInfo *r);
/* The `agents list` and `rollout list` documents: {"agents": [...]}, {"rollouts": [...]}. */
void jr_agent_list(struct jw *w, Flotilla__V1__AgentInfo *const *agents, size_t n);
void jr_rollout_list(struct jw *w, Flotilla__V1__RolloutInfo *const *rollouts, size_t n);
/* The whole `tenant show` document. */
void jr_tenant_show(struct jw *w, const Flotilla__V1__TenantShowResponse *t);
/* The whole `fleet drift` document. */
void jr_drift(struct jw *w, const Flotilla__V1__FleetDriftResponse *d);

#endif
