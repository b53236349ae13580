/*
 * A listening nng REP socket served by a pool of contexts, each with its own
 * aio: no thread per request, and a request may stay unanswered as long as
 * its handler likes (a held poll) without holding anything but its context.
 *
 * A fixed number of contexts wait to receive (FL_REP_RECEIVERS). When one
 * receives a request it becomes the request's (struct fl_rep_req) and
 * another starts receiving in its place, from the free list or newly opened,
 * up to max_reqs contexts in all; past that, no context receives and nng
 * stops reading from the peers (backpressure) until replies free some.
 * Contexts go back to the free list after their reply is sent.
 *
 * The handler runs on an nng thread for each request. It must not block;
 * the request is then its owner's until exactly one fl_rep_reply or
 * fl_rep_drop, from any thread. data is valid during the call only.
 *
 * Stopping: fl_rep_stop_accepting makes the socket drop requests from then
 * on (unanswered: a REQ peer sends them again once it reconnects, to the
 * next process) and waits for handlers running to return, so nothing new
 * reaches the core after it; fl_rep_drain waits for replies in flight;
 * fl_rep_free closes the socket and frees every context.
 */
#ifndef FL_REP_H
#define FL_REP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FL_REP_RECEIVERS 16    /* contexts waiting to receive */
#define FL_REP_SEND_MS   30000 /* a reply not taken by the peer within this is dropped */

struct fl_rep;
struct fl_rep_req;

typedef void (*fl_rep_fn)(void *arg, struct fl_rep_req *req, const uint8_t *data, size_t len);

/*
 * Listen on url (tcp://host:port, port 0 for any; ipc:///path), accepting
 * messages up to max_recv bytes, with at most max_reqs requests in work at
 * once. name names the endpoint in logs ("agent", "admin").
 * Errors: FL_EINVAL (bad URL), FL_EIO (cannot listen: errbuf says why).
 */
enum fl_err fl_rep_new(const char *name, const char *url, size_t max_recv, size_t max_reqs,
                       fl_rep_fn fn, void *arg, struct fl_rep **out, char *errbuf)
    __attribute__((warn_unused_result));
/* The TCP port bound (useful with port 0), or 0 for other transports. */
int fl_rep_port(struct fl_rep *r);

/* Send data[0..len) as req's reply and recycle req. Any thread. */
void fl_rep_reply(struct fl_rep_req *req, const void *data, size_t len);
/* Recycle req without a reply. Any thread. */
void fl_rep_drop(struct fl_rep_req *req);
/* The endpoint a request came from. */
struct fl_rep *fl_rep_of(struct fl_rep_req *req);

/* Drop new requests from now on and wait for running handlers to return. */
void fl_rep_stop_accepting(struct fl_rep *r);
/* Wait up to timeout_ms for every request to be answered and sent. */
void fl_rep_drain(struct fl_rep *r, int64_t timeout_ms);
/* Close the socket and free everything; NULL is a no-op. Requests still
 * unanswered are dropped: call after whoever holds them stopped. */
void fl_rep_free(struct fl_rep *r);

/* Requests in work now (received, not yet answered and sent). */
size_t fl_rep_busy(struct fl_rep *r);
/* Contexts opened so far. */
size_t fl_rep_contexts(struct fl_rep *r);

#endif
