/*
 * The admin endpoint: a second nng REP socket, for operators' CLIs.
 *
 * On nng's threads: open the envelope with the admin endpoint (no
 * enrollment here: unknown keys are refused) and decode the body with the
 * role table of the sender's registry role (fl_wire_unpack_from), which
 * refuses a command the role may not run before protobuf-c allocates
 * anything; the request then goes to the core.
 *
 * On the core thread, every call is audited in the store before the reply
 * leaves, refusals included:
 * - the key must be an operator of the running config (its role from
 *   there); an operator key no longer configured is answered
 *   PERMISSION_DENIED, any other key (an agent's) the plain refusal;
 * - the command must be one the role may run (proto/roles.h); else
 *   PERMISSION_DENIED ("a viewer may not run agent_approve");
 * - the handler runs in a store transaction, committed with the audit
 *   entry (a failed command's changes are rolled back, its audit entry
 *   written in a transaction of its own).
 *
 * Commands: release_push, release_list, agent_list, agent_approve,
 * agent_revoke, enrollment_token_create, audit_query here; fleet_status,
 * fleet_drift, tenant_show in fleet.c; the rollout_* commands go to the
 * scheduler's admin hook (core.h), UNIMPLEMENTED without one.
 */
#ifndef FL_ADMIN_SERVER_H
#define FL_ADMIN_SERVER_H

#include <stddef.h>

#include "core.h"
#include "envelope.h"
#include "err.h"

struct fl_admin_server;

/* Listen on url. ep: the admin endpoint (enrollment off); max_message: the
 * largest envelope taken (a release push is as large as a release). */
enum fl_err fl_admin_server_new(struct fl_core *core, struct fl_envelope *ep, const char *url,
                                size_t max_message, size_t max_reqs, struct fl_admin_server **out,
                                char *errbuf) __attribute__((warn_unused_result));
int fl_admin_server_port(struct fl_admin_server *s);
void fl_admin_server_stop_accepting(struct fl_admin_server *s);
void fl_admin_server_drain(struct fl_admin_server *s, int64_t timeout_ms);
void fl_admin_server_free(struct fl_admin_server *s);

/*
 * Core thread only: answer a read command (one a viewer may run) with the
 * handlers operators' requests use, as caller, for the HTTP endpoint
 * (http.c). The handler runs in a store transaction that is rolled back
 * (reads change nothing) and the call is not audited. reply: arena and
 * response set by the caller (code INTERNAL, message "" to start); *owned:
 * messages to free with fl_wire_free_message after use. A command a viewer
 * may not run is answered PERMISSION_DENIED. Errors: as the handlers' (store).
 */
enum fl_err fl_admin_server_read(struct fl_core *core, const struct fl_core_caller *caller,
                                 const Flotilla__V1__AdminRequest *req,
                                 struct fl_core_admin_reply *reply, ProtobufCMessage ***owned,
                                 size_t *n_owned, char *eb) __attribute__((warn_unused_result));

#endif
