/*
 * Requests and replies over envelopes (docs/WIRE.md, "Reply numbering"):
 * pack and seal, open and unpack, with the role table and reply numbering
 * applied the same way on both sides.
 *
 * Every request (hello, poll, report, fetch_release, admin_request) carries
 * Message.reply_to_seq 0; the reply to it carries the request envelope's
 * sequence number. A requester accepts a reply only from the key it sent the
 * request to and only with its request's number, so a reply recorded earlier
 * (or meant for another request in flight) is never taken for this one's.
 *
 * Thread-safety as the envelope's: any thread.
 */
#ifndef FL_RPC_H
#define FL_RPC_H

#include <stdint.h>

#include "envelope.h"
#include "flotilla.pb-c.h"
#include "peers.h"

/*
 * Seal request m for the peer `to`: m->reply_to_seq must be 0 and the body a
 * request. out (reset) gets the envelope, *seq its sequence number, which
 * the reply must name. Errors: FL_EINVAL (m is no request, or does not pack),
 * then as fl_envelope_seal.
 */
enum fl_err fl_rpc_seal_request(struct fl_envelope *ep, const uint8_t to[FL_PEER_KEY_LEN],
                                const Flotilla__V1__Message *m, struct fl_buf *out, uint64_t *seq,
                                char *errbuf) __attribute__((warn_unused_result));

/*
 * Seal m as the reply to the request numbered request_seq (> 0) from `to`:
 * sets m->reply_to_seq. Errors: FL_EINVAL (request_seq 0, m is no reply, or
 * does not pack), then as fl_envelope_seal.
 */
enum fl_err fl_rpc_seal_reply(struct fl_envelope *ep, const uint8_t to[FL_PEER_KEY_LEN],
                              uint64_t request_seq, Flotilla__V1__Message *m, struct fl_buf *out,
                              char *errbuf) __attribute__((warn_unused_result));

/*
 * Open a request: fl_envelope_open (max_size as there), then
 * fl_wire_unpack_from the sender's role (the table: bodies, commands, caps;
 * reply_to_seq 0). On FL_OK, *m is the request (fl_wire_free it) and
 * o->seq the number its reply must name. Errors: as fl_envelope_open
 * (reason set), then as fl_wire_unpack_from (*reason FL_ENVELOPE_OK: the
 * envelope was fine, its content refused; the sender's seq is spent).
 */
enum fl_err fl_rpc_open_request(struct fl_envelope *ep, const void *data, size_t len,
                                size_t max_size, struct fl_envelope_opened *o,
                                Flotilla__V1__Message **m, enum fl_envelope_reason *reason,
                                char *errbuf) __attribute__((warn_unused_result));

/*
 * Open the reply to the request numbered request_seq sent to `from`: the
 * envelope must come from that key, hold a body its role may send, and
 * name request_seq in reply_to_seq. Errors: as fl_envelope_open, FL_EAUTH
 * (another sender, another request's reply), then as fl_wire_unpack_from.
 */
enum fl_err fl_rpc_open_reply(struct fl_envelope *ep, const void *data, size_t len, size_t max_size,
                              const uint8_t from[FL_PEER_KEY_LEN], uint64_t request_seq,
                              struct fl_envelope_opened *o, Flotilla__V1__Message **m,
                              enum fl_envelope_reason *reason, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Whether to follow a Redirect: only to a key the agent already pins as a
 * coordinator (a live peer of role coordinator in its registry, from its
 * coordinator_public_keys). FL_EAUTH otherwise, naming the key id.
 */
enum fl_err fl_rpc_redirect_check(struct fl_peers *peers, const Flotilla__V1__Redirect *r,
                                  char *errbuf) __attribute__((warn_unused_result));

#endif
