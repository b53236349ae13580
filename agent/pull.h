/*
 * The pull loop: everything the agent says to the coordinator, through
 * proto/client.h (REQ sockets, nng's resend off, one context per call).
 *
 * - Hello, after starting and after every reconnect, redirect or change of
 *   tenants: the agent's name, version, project, and every tenant with its
 *   history as read from the database now, failed rows, fingerprint and the
 *   ledger's release sequence; split into several Hellos (more_tenants)
 *   when they would not fit one message. With enrollment_token set and no
 *   Hello accepted yet (state_dir/enrolled absent), it carries the token.
 * - Long polls: free slots, running assignment ids; the reply's assignments
 *   go to the pool, its halts to the pool at once.
 * - Reports (the sender thread): each journaled report as soon as it is
 *   made, and every pending one again after a reconnect; a ReportAck naming
 *   a report's journal id drops it from the journal.
 * - FetchRelease for the pool, for a release hash it has not cached.
 * - Redirects, followed only to a key the agent pins (fl_rpc_redirect_check).
 * - Unreachable coordinator: exponential backoff with full jitter, up to
 *   poll.reconnect_max.
 *
 * Nothing the coordinator says is trusted beyond scheduling: the work it
 * hands out is checked by agent/verify.h, the releases by the cache.
 */
#ifndef FL_PULL_H
#define FL_PULL_H

#include <stdint.h>

#include "agent.h"
#include "buf.h"
#include "err.h"

/* The main loop, until the agent stops. */
void fl_pull_run(struct fl_agent *a);

/* The sender thread. */
void *fl_pull_sender_main(void *arg);

/* Send what the journal holds, until it is empty or timeout_ms passed (at
 * shutdown, once the pool is done). */
void fl_pull_flush(struct fl_agent *a, int64_t timeout_ms);

/* FetchRelease (struct fl_worker_hooks.fetch; arg is the agent). */
enum fl_err fl_pull_fetch(void *arg, const uint8_t hash[32], struct fl_buf *out, char *errbuf);

/* One Hello (or its parts). FL_OK once accepted. */
enum fl_err fl_pull_hello(struct fl_agent *a, char *errbuf) __attribute__((warn_unused_result));

/* A delay for the n-th retry in a row: min(max, 250ms * 2^n), with full
 * jitter (uniform in [d/2, d]). */
int64_t fl_pull_backoff(unsigned n, int64_t max_ms);

#endif
