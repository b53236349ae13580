/*
 * The request side of the wire: what every client of the coordinator (the
 * agent, the `flotilla` CLI, tests/tools/fl-testclient) uses to send one
 * Message and get its reply.
 *
 * A client is one nng REQ socket dialed to one URL (in the background: the
 * coordinator may come up later; nng reconnects), our envelope endpoint, and
 * the coordinator keys we pin. A call:
 *
 *   1. packs the request (fl_wire_pack) and seals it for the current pinned
 *      key, keeping the envelope's sequence number;
 *   2. sends it on a context of its own (nng_ctx: one per call, so several
 *      threads may each have a call in flight, e.g. an agent's long poll
 *      while it sends a report) and waits for the reply until the deadline;
 *   3. opens the reply (proto/rpc.h, fl_rpc_open_reply): it must be an
 *      envelope from the very key we sealed for (a coordinator peer), decode
 *      as a reply a coordinator may send, and name our request's sequence
 *      number in reply_to_seq, so a reply cannot be replayed as the answer
 *      to another request.
 *
 * nng's automatic resend is off (NNG_OPT_REQ_RESENDTIME =
 * NNG_DURATION_INFINITE, on the socket and every context): a byte-identical
 * resend would be refused as a replay. A request is retried only by sealing
 * it again, and only when the coordinator answered with the refusal (which
 * proves it did not act on it: it could not open it), moving on to the next
 * pinned key each time (several coordinators, each with its own key, may
 * sit behind one URL): each key once, plus one more try.
 * nng itself still resends the same bytes once if the connection drops
 * while a request is out; the coordinator then refuses the copy as a replay
 * if it had the first, and the client seals the request again: a request
 * may therefore be acted on twice when a connection breaks, as with any
 * RPC (reports carry a journal id, so they are counted once).
 *
 * With FL_CLIENT_IDEMPOTENT, a reply our envelope endpoint refuses as a
 * replay (another thread opened a later reply from the same coordinator
 * first: the coordinator seals in order, but two threads may open out of
 * order) makes the call send the request again, sealed again; without it
 * the call fails with FL_EAUTH.
 *
 * Threads: fl_client_call and the raw functions may be called from any number
 * of threads at once; fl_client_free only once no call runs. The envelope
 * endpoint (and its identity and registry) must outlive the client; each
 * pinned key must be a peer of its registry with role coordinator.
 *
 * Errors, the same for every call: FL_ECONNECT (the coordinator is
 * unreachable: no connection to the URL before the deadline), FL_ETIMEDOUT
 * (connected and sent, but no reply before the deadline), FL_EAUTH (the
 * coordinator refused the request every time, or its reply did not open or
 * is not ours: another key, a replay, a bad signature, another request's
 * number; with FL_CLIENT_REFUSAL, the refusal is FL_EREFUSED), FL_EPARSE (the reply opened but is
 * malformed), FL_EINVAL (the request breaks a rule of flotilla.proto, or is over max), FL_ECANCELED
 * (fl_client_close was called), FL_EIO (nng failed otherwise). errbuf says which URL and what
 * happened.
 */
#ifndef FL_CLIENT_H
#define FL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "envelope.h"
#include "err.h"
#include "flotilla.pb-c.h"
#include "peers.h"

#define FL_CLIENT_MAX_KEYS 16 /* pinned coordinator keys (FL_WIRE_MAX_COORDINATOR_KEYS) */
#define FL_CLIENT_ATTEMPTS 17 /* at most, tries per call: each key once, plus one */

/* fl_client_call flags. */
#define FL_CLIENT_IDEMPOTENT 1u /* may be sent again after a reply refused as replay */
/* The coordinator's refusal (docs/WIRE.md: it could not open the request, and
 * did not act on it), for every pinned key, fails the call with FL_EREFUSED
 * rather than FL_EAUTH, so the caller tells it from a reply that does not
 * open or is not ours without reading errbuf. */
#define FL_CLIENT_REFUSAL 2u

struct fl_client;

/*
 * A client of the coordinator at url (an nng URL: tcp://host:7400, or
 * ipc:///path), pinning keys[0..n_keys) (1 to FL_CLIENT_MAX_KEYS), each of
 * which must be a coordinator peer of ep's registry: a reply from any other
 * key or role is refused. Dials in the background and returns at once.
 * Errors: FL_EINVAL (bad url, no key or too many), FL_EIO (nng cannot open
 * the socket).
 */
enum fl_err fl_client_new(struct fl_envelope *ep, const char *url,
                          const uint8_t (*keys)[FL_PEER_KEY_LEN], size_t n_keys,
                          struct fl_client **out, char *errbuf) __attribute__((warn_unused_result));

/* Close the socket: calls in flight (and later ones) fail with FL_ECANCELED.
 * Any thread, any number of times. */
void fl_client_close(struct fl_client *c);

/* Close and free; NULL is a no-op. No call may be running. */
void fl_client_free(struct fl_client *c);

/*
 * Send req (a request: reply_to_seq 0) and return its reply in *reply (the
 * caller frees it with fl_wire_free), within timeout_ms (> 0) in all,
 * retries included. max_request caps the packed request (e.g.
 * FL_WIRE_MAX_SMALL; FL_WIRE_MAX_RELEASE_MESSAGE for a release push).
 * A reply whose body is `error` (a Status) is a reply like any other: the
 * caller reads it. Errors as above; *reply is NULL on error.
 */
enum fl_err fl_client_call(struct fl_client *c, const Flotilla__V1__Message *req,
                           size_t max_request, unsigned flags, int64_t timeout_ms,
                           Flotilla__V1__Message **reply, char *errbuf)
    __attribute__((warn_unused_result));

/* The pinned key requests are sealed for now (it moves on after a refusal). */
void fl_client_current_key(struct fl_client *c, uint8_t pk[FL_PEER_KEY_LEN]);

/* Whether the socket has a connection to the coordinator now. */
int fl_client_connected(struct fl_client *c);

/* ---- lower level, for tests (replayed and tampered envelopes) ---- */

/* Pack and seal req for the current key into out (replaced); *seq gets the
 * envelope's sequence number. Errors: FL_EINVAL. */
enum fl_err fl_client_seal(struct fl_client *c, const Flotilla__V1__Message *req,
                           size_t max_request, struct fl_buf *out, uint64_t *seq, char *errbuf)
    __attribute__((warn_unused_result));

/* Send data[0..len) as it is (no sealing, no retry) and put the raw reply in
 * reply (replaced). Errors: FL_ECONNECT, FL_ETIMEDOUT, FL_ECANCELED, FL_EIO. */
enum fl_err fl_client_send_raw(struct fl_client *c, const void *data, size_t len,
                               int64_t timeout_ms, struct fl_buf *reply, char *errbuf)
    __attribute__((warn_unused_result));

/* Open a raw reply to the request sealed with sequence number seq, as
 * fl_client_call does. Errors: FL_EAUTH (the refusal, or an envelope that
 * does not open), FL_EPARSE. */
enum fl_err fl_client_open_reply(struct fl_client *c, const void *data, size_t len, uint64_t seq,
                                 Flotilla__V1__Message **reply, char *errbuf)
    __attribute__((warn_unused_result));

#endif
