/*
 * The fleet as operators read it: fleet_status (tenants with their state,
 * filtered by labels and states, in pages by tenant id, with counts per
 * state over all pages), fleet_drift (tenants at one head migration with
 * other fingerprints than the majority there) and tenant_show (one tenant,
 * its history as last reported, its recent reports).
 *
 * A tenant's state: the scheduler's, while a rollout works on it; else
 * UNREACHABLE when its agent is revoked or offline or could not read its
 * history; FAILED when a failed migration blocks it; IDLE otherwise. Gone
 * tenants are not listed (tenant_show still shows one).
 *
 * Core thread only (the store and the agent model); memory from the arena.
 */
#ifndef FL_FLEET_H
#define FL_FLEET_H

#include "core.h"
#include "err.h"
#include "flotilla.pb-c.h"

/* Each fills reply (code, message, subject, response->result) from req;
 * FL_EDB when the store failed. limit_max caps pages (list_limit). */
enum fl_err fl_fleet_status(struct fl_core *core, const Flotilla__V1__FleetStatusRequest *req,
                            struct fl_core_admin_reply *reply, char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_fleet_drift(struct fl_core *core, const Flotilla__V1__FleetDriftRequest *req,
                           struct fl_core_admin_reply *reply, char *errbuf)
    __attribute__((warn_unused_result));
/* Decoded reports put into the reply are listed in *owned (arena array) for
 * the caller to free with fl_wire_free_message once the reply is packed. */
enum fl_err fl_fleet_tenant_show(struct fl_core *core, const Flotilla__V1__TenantShowRequest *req,
                                 struct fl_core_admin_reply *reply, ProtobufCMessage ***owned,
                                 size_t *n_owned, char *errbuf) __attribute__((warn_unused_result));

/* The wire's TenantState of a stored tenant, as above. */
Flotilla__V1__TenantState fl_fleet_tenant_state(struct fl_core *core,
                                                const struct fl_store_tenant *t);

#endif
