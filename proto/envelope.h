/*
 * The envelope every message travels in: signed by the sender, bound to one
 * recipient, encrypted with crypto_box, numbered against replay and stamped
 * against delay. Byte layout and the order of the checks: docs/WIRE.md.
 *
 * An endpoint is our identity, the peer registry (shared keys, sequence
 * numbers), settings and counters. It owns neither the identity nor the
 * registry: free the endpoint first. seal and open may be called from any
 * thread at once (the registry has its own lock, counters are atomic); the
 * setters are for setup, before the endpoint is shared.
 *
 * open refuses with a reason. Each refusal is counted, logged once at warning
 * level with the sender's key id when the bytes hold one (marked unverified
 * until the signature has checked out), and the peer must be answered with
 * fl_envelope_refusal() whatever the reason: nothing an attacker can use.
 */
#ifndef FL_ENVELOPE_H
#define FL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "flotilla.pb-c.h"
#include "peers.h"

#define FL_PROTOCOL_VERSION  1
#define FL_ENVELOPE_OVERHEAD 194        /* outer 61 + MAC 16 + inner fixed 53 + signature 64 */
#define FL_ENVELOPE_MAX_SIZE (1u << 20) /* default cap on a whole envelope */
/* The cap for an envelope carrying a release (FL_WIRE_MAX_RELEASE_MESSAGE:
 * a 64 MiB release file and its message's own fields), asserted in roles.c. */
#define FL_ENVELOPE_MAX_SIZE_BUNDLE ((64u << 20) + (64u << 10) + FL_ENVELOPE_OVERHEAD)
#define FL_ENVELOPE_SKEW_MS         (5 * 60 * 1000)
/* Enrollment (fl_envelope_open_enroll): envelopes from unknown keys are
 * opened at most this often per endpoint (a token bucket), and only this
 * large: each costs a key exchange before anything is known of the sender. */
#define FL_ENVELOPE_ENROLL_RATE  5 /* per second */
#define FL_ENVELOPE_ENROLL_BURST 20
#define FL_ENVELOPE_ENROLL_MAX   ((64u << 10) + FL_ENVELOPE_OVERHEAD)

/* Why open refused. Values are stable (metrics, logs); names from
 * fl_envelope_reason_name(). In the order open checks them. */
enum fl_envelope_reason {
	FL_ENVELOPE_OK = 0,              /* "ok": accepted */
	FL_ENVELOPE_TRUNCATED = 1,       /* "truncated": shorter than the fixed parts */
	FL_ENVELOPE_OVERSIZE = 2,        /* "oversize": over the caller's cap */
	FL_ENVELOPE_BAD_MAGIC = 3,       /* "bad-magic" */
	FL_ENVELOPE_VERSION = 4,         /* "version": unknown protocol version */
	FL_ENVELOPE_UNKNOWN_SENDER = 5,  /* "unknown-sender": key not approved */
	FL_ENVELOPE_REVOKED = 6,         /* "revoked" */
	FL_ENVELOPE_DECRYPT = 7,         /* "decrypt": MAC failure */
	FL_ENVELOPE_MALFORMED = 8,       /* "malformed": inner version or body length wrong */
	FL_ENVELOPE_RECIPIENT = 9,       /* "recipient": not for us */
	FL_ENVELOPE_SIGNATURE = 10,      /* "signature" */
	FL_ENVELOPE_REPLAY = 11,         /* "replay": seq accepted already, or too old */
	FL_ENVELOPE_SKEW = 12,           /* "skew": timestamp outside the window */
	FL_ENVELOPE_STORE = 13,          /* "store": peers.seq write failed; fail closed */
	FL_ENVELOPE_RATE_LIMITED = 14,   /* "rate-limited": enrollment attempts over the rate */
	FL_ENVELOPE_NOT_ENROLLMENT = 15, /* "not-enrollment": an unknown key's envelope that is
	                                    not an enrollment Hello (or a known key's) */
};
#define FL_ENVELOPE_REASON_COUNT 16

const char *fl_envelope_reason_name(enum fl_envelope_reason reason);

struct fl_envelope;

/* An endpoint for `self` over `peers` (built for the same identity). */
struct fl_envelope *fl_envelope_new(const struct fl_identity *self, struct fl_peers *peers);
void fl_envelope_free(struct fl_envelope *ep); /* NULL is a no-op */

/* Setup only. skew_ms > 0; max_size: the cap when open is given 0 (>= the
 * overhead); clock NULL restores the wall clock (microseconds since the epoch:
 * it gives both the timestamp and the floor of the sequence number, and
 * refills the enrollment token bucket); enroll_rate: enrollment envelopes
 * opened per second and the burst allowed (defaults FL_ENVELOPE_ENROLL_RATE
 * and _BURST; rate 0 turns enrollment off). */
void fl_envelope_set_skew_ms(struct fl_envelope *ep, int64_t skew_ms);
void fl_envelope_set_max_size(struct fl_envelope *ep, size_t max_size);
void fl_envelope_set_clock(struct fl_envelope *ep, fl_wallclock_fn fn, void *arg);
void fl_envelope_set_enroll_rate(struct fl_envelope *ep, unsigned per_second, unsigned burst);

/*
 * Seal body (a packed protobuf message, len <= FL_ENVELOPE_MAX_SIZE_BUNDLE -
 * FL_ENVELOPE_OVERHEAD) for recipient: out is reset and receives the whole
 * envelope. Reusing out across calls avoids allocation. Errors: FL_ENOENT
 * (recipient not a peer), FL_ESTATE (recipient revoked), FL_EINVAL (body too
 * large, out's max too small); out is left empty on error.
 */
enum fl_err fl_envelope_seal(struct fl_envelope *ep, const uint8_t recipient[FL_PEER_KEY_LEN],
                             const void *body, size_t len, struct fl_buf *out, char *errbuf)
    __attribute__((warn_unused_result));
/* The same, and *seq gets the envelope's sequence number: what the reply to
 * a request must name in its reply_to_seq (proto/rpc.h). */
enum fl_err fl_envelope_seal_seq(struct fl_envelope *ep, const uint8_t recipient[FL_PEER_KEY_LEN],
                                 const void *body, size_t len, struct fl_buf *out, uint64_t *seq,
                                 char *errbuf) __attribute__((warn_unused_result));

/*
 * What open accepted. The caller owns it: fl_envelope_opened_init once,
 * reuse it for any number of opens (no allocation once warm), then
 * fl_envelope_opened_fini. `body` points into `plain` and stays valid until
 * the next open with this struct or fini; after a refusal body is NULL and
 * the decrypted bytes are wiped. Do not touch `plain`.
 */
struct fl_envelope_opened {
	struct fl_peer_info sender; /* verified: key, id, name, role */
	uint64_t seq;
	int64_t timestamp_ms;
	const uint8_t *body;
	size_t body_len;
	struct fl_buf plain; /* domain string, outer header, inner: the signed bytes */
};

void fl_envelope_opened_init(struct fl_envelope_opened *o);
void fl_envelope_opened_fini(struct fl_envelope_opened *o);

/*
 * Check and open one envelope of len bytes (max_size: the cap, 0 for the
 * endpoint's default; a release bundle passes FL_ENVELOPE_MAX_SIZE_BUNDLE).
 * Once the sender is known, its role's cap applies too (fl_roles_max_message
 * plus the overhead), before decryption. FL_OK: o describes the message and
 * the sender's sequence number is recorded. Refused: FL_EAUTH, or FL_EIO for
 * FL_ENVELOPE_STORE; *reason (if not NULL) says why and errbuf gives the
 * detail that was logged. Decode the body with fl_wire_unpack_from(o->
 * sender.role, ...), which applies the role table (or use proto/rpc.h).
 * With enrollment on, an unknown sender's refusal is counted but not logged:
 * the caller tries fl_envelope_open_enroll next, which logs.
 */
enum fl_err fl_envelope_open(struct fl_envelope *ep, const void *data, size_t len, size_t max_size,
                             struct fl_envelope_opened *o, enum fl_envelope_reason *reason,
                             char *errbuf) __attribute__((warn_unused_result));

/*
 * Open an envelope from a key that is not a peer, as the one way in for an
 * agent enrolling with a token (docs/WIRE.md, "Enrollment"). Call it only
 * after fl_envelope_open refused the same bytes as unknown-sender. In order:
 * the endpoint's token bucket (refused as rate-limited before any crypto),
 * size (FL_ENVELOPE_ENROLL_MAX), magic and version, the sender must be no
 * peer (known: not-enrollment; revoked: revoked), the shared key computed for
 * the claimed key on the fly and never kept, decryption, inner layout,
 * recipient, signature by the claimed key, timestamp within the skew window,
 * and the body must be a Hello with an enrollment token (fl_wire_unpack_from
 * as an agent): else not-enrollment. Nothing is stored: the sequence number
 * is not recorded and the key is not added. On FL_OK, o describes the
 * message (o->sender: the claimed key, role FL_PEER_NONE) and *hello is the
 * decoded Message (the caller frees it with fl_wire_free). The caller then
 * verifies and consumes the token (proto/enroll.h) and approves the key with
 * fl_peers_enroll(..., o->seq): only then may it reply (sealed to the new
 * peer). Errors as fl_envelope_open.
 */
enum fl_err fl_envelope_open_enroll(struct fl_envelope *ep, const void *data, size_t len,
                                    struct fl_envelope_opened *o, Flotilla__V1__Message **hello,
                                    enum fl_envelope_reason *reason, char *errbuf)
    __attribute__((warn_unused_result));

/* Envelopes opened with this reason (FL_ENVELOPE_OK: accepted) since new. */
uint64_t fl_envelope_count(const struct fl_envelope *ep, enum fl_envelope_reason reason);

/* The one answer to any refused envelope: out is reset to the constant bytes
 * "FLT\x01" 0x00 (docs/WIRE.md). FL_EINVAL if out's max is too small. */
enum fl_err fl_envelope_refusal(struct fl_buf *out);
/* Is this reply the refusal? It carries no authentication: treat it as
 * "failed, reason unknown", never as proof of anything. */
bool fl_envelope_is_refusal(const void *data, size_t len);

#endif
