/*
 * The agent endpoint: an nng REP socket (rep.h) where agents send Hello,
 * Poll, Report and FetchRelease.
 *
 * On nng's threads (CPU only): open the envelope with the agent endpoint
 * (proto/envelope.h; an unknown key may only enroll: a Hello with a token,
 * fl_envelope_open_enroll), refuse anything but an agent key, decode the
 * body with the role table (fl_wire_unpack_from), and hand the request to
 * the core. Refused envelopes are answered with fl_envelope_refusal().
 *
 * On the core thread:
 * - Hello: the project and protocol must match; reconcile (reconcile.h);
 *   HelloReply. With a token from an unknown key: the token must exist, be
 *   unused and unexpired; it is used, the agent stored as approved (by
 *   "token") and added to the registry, all before the reply.
 * - Poll: the agent must have said Hello since the coordinator last saw it
 *   (else Status FAILED_PRECONDITION "hello first"); then the scheduler is
 *   asked for work; with none the poll is held (core.h).
 * - Report: taken only for a tenant of this agent and an assignment issued
 *   to this agent for that tenant (else Status PERMISSION_DENIED, logged,
 *   counted); stored once per (agent, journal_id), the assignment marked
 *   reported, the tenant updated, the scheduler told, all in one
 *   transaction committed before the ReportAck.
 * - FetchRelease: the stored release file, or Status NOT_FOUND.
 * Every reply carries the request's sequence number in reply_to_seq.
 */
#ifndef FL_AGENT_SERVER_H
#define FL_AGENT_SERVER_H

#include <stddef.h>

#include "core.h"
#include "envelope.h"
#include "err.h"

struct fl_agent_server;

/* Listen on url. ep: the agent endpoint (enrollment per its rate); max_message:
 * the largest envelope taken; max_reqs: requests held or in work at once. */
enum fl_err fl_agent_server_new(struct fl_core *core, struct fl_envelope *ep, const char *url,
                                size_t max_message, size_t max_reqs, struct fl_agent_server **out,
                                char *errbuf) __attribute__((warn_unused_result));
int fl_agent_server_port(struct fl_agent_server *s);
/* See rep.h: stop taking requests (and wait for handlers), drain replies. */
void fl_agent_server_stop_accepting(struct fl_agent_server *s);
void fl_agent_server_drain(struct fl_agent_server *s, int64_t timeout_ms);
/* Close and free; NULL is a no-op. */
void fl_agent_server_free(struct fl_agent_server *s);
/* Requests received so far whose envelope was refused. */
uint64_t fl_agent_server_refused(struct fl_agent_server *s);

#endif
