/*
 * Webhooks: rollout transitions (started, wave_completed, gate_waiting,
 * halted, rolled_back, completed...) POSTed as signed JSON to the HTTP
 * endpoints of the coordinator's `webhooks` config (docs/CONFIG.md,
 * docs/OPERATIONS.md "Webhooks").
 *
 * The audit log is the queue. The scheduler's transition hook
 * (fl_webhooks_transition) writes each event, once per endpoint that wants
 * it, as an audit entry `webhook_event` (subject: the rollout, detail: "to
 * 'URL': " and the JSON body) in the same transaction as the change itself,
 * so an event exists exactly when its transition was committed, and says
 * where it goes. Every tick, the core hands the events committed
 * since the last tick to a sender thread of its own (fl_webhooks_tick), which
 * POSTs them, in order per endpoint, with exponential backoff; the outcome of
 * every attempt comes back to the core and is written to the audit log
 * (`webhook_delivered`, `webhook_failed`, `webhook_gave_up`, detail "event
 * ID 'NAME' to 'URL': attempt N of M: ..."). At start, events of the last
 * 24 hours with no final outcome are queued again (for endpoints still
 * configured), so a restart loses no delivery (and may repeat one whose outcome was not yet
 * written: receivers dedupe by X-Flotilla-Event-Id).
 *
 * HTTP: a small HTTP/1.1 client of our own (plain http://, one request per
 * connection, every wait bounded by the endpoint's timeout and by stop),
 * rather than nng's supplemental HTTP client: that one wants an aio state
 * machine for a single blocking POST on a thread that has nothing else to
 * do, and its TLS depends on how the system's nng was built.
 *
 * Threads: everything here but the sender thread runs on the core thread.
 */
#ifndef FL_WEBHOOKS_H
#define FL_WEBHOOKS_H

#include <stdint.h>

#include "coordinator_config.h"
#include "err.h"
#include "scheduler.h"
#include "store.h"

struct fl_webhooks;

/* Set up the endpoints of cfg->webhooks (at least one), reading each
 * secret_file (mode 0600 or stricter, 1 byte to 4 KiB; one trailing newline
 * is not part of the key). Errors: FL_EIO, FL_ENOENT, FL_EINVAL, with errbuf. */
enum fl_err fl_webhooks_new(const struct fl_coordinator_config *cfg, struct fl_webhooks **out,
                            char *errbuf) __attribute__((warn_unused_result));

/* Core thread, once, with the store open: queue what the last 24 hours left
 * undelivered, then start the sender thread. Errors: FL_EDB. */
enum fl_err fl_webhooks_start(struct fl_webhooks *wh, struct fl_store *st, int64_t now_ms,
                              char *errbuf) __attribute__((warn_unused_result));

/* fl_scheduler_transition_fn: record the event (arg: the fl_webhooks). */
enum fl_err fl_webhooks_transition(void *arg, const struct fl_scheduler_transition *t,
                                   char *errbuf);

/* Core thread, every tick, in a transaction nothing was written in yet:
 * hand events committed since the last tick to the sender, then audit the
 * outcomes of its attempts. Errors: FL_EDB. */
enum fl_err fl_webhooks_tick(struct fl_webhooks *wh, struct fl_store *st, int64_t now_ms,
                             char *errbuf) __attribute__((warn_unused_result));

/* Stop the sender (a POST under way is abandoned at once) and free
 * everything; outcomes not yet audited are lost (the event is sent again at
 * the next start). NULL is a no-op. */
void fl_webhooks_free(struct fl_webhooks *wh);

#endif
