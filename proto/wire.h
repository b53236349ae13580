/*
 * The one module that packs and unpacks flotilla's protobuf messages
 * (proto/flotilla.proto): the top-level Message that envelopes carry, and the
 * SignedRelease and ReleaseBundle of release files. Nothing else calls
 * protobuf-c's pack or unpack.
 *
 * Unpacking is the trust boundary for a message's shape. Besides protobuf's
 * own decoding, every unpack checks, in this order: the size cap (before a
 * byte is read), the protobuf encoding, then the rules at the top of
 * flotilla.proto — strings valid UTF-8 without NUL, enum values declared,
 * every oneof set (AdminResponse.result only with an OK status), fixed sizes
 * of keys, hashes and signatures, "always present" submessages, repeated
 * counts. A message breaking any of them is refused whole, with the path of
 * the offending field in errbuf ("hello.tenants[3].labels[0].key: ..."), so
 * consumers can rely on them without checking again. fl_wire_unpack_from
 * also applies the role table (proto/roles.h): who may send this body, how
 * large. Meaning (does the rollout exist) is the consumer's. Unknown fields
 * are ignored, except in a WorkAssignment and in signed content (orders,
 * release bundles), where they are refused.
 *
 * Memory: the raw bytes are pre-scanned and counted before protobuf-c
 * allocates anything, and protobuf-c decodes through an allocator with a
 * budget predicted from them and at most FL_WIRE_MEMORY(len): no input makes
 * an unpack allocate more (fl_wire_last_stats shows what it did).
 *
 * Packing checks the same rules, so we never send what a peer refuses, and
 * packs deterministically: the same message gives the same bytes (fields in
 * number order, no maps), which the release content hash relies on.
 *
 * Ownership: an unpacked message belongs to the caller, who frees it with the
 * matching fl_wire_free*() (NULL is a no-op). Messages the caller builds
 * itself (with the generated *__INIT macros) are never passed to these
 * free functions. Allocation aborts on out-of-memory (lib/mem.h).
 * Every function may be called from any thread; none keeps state.
 */
#ifndef FL_WIRE_H
#define FL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "flotilla.pb-c.h"
#include "peers.h"

/* Size caps (docs/WIRE.md). FL_WIRE_MAX_MESSAGE is the default for a
 * Message; FL_WIRE_MAX_RELEASE for a release file or bundle. A Message
 * carrying a release (ReleaseBundleReply, a release_push request) may be
 * FL_WIRE_MAX_RELEASE_MESSAGE: the release plus room for its own fields. */
#define FL_WIRE_MAX_MESSAGE         (1u << 20)
#define FL_WIRE_MAX_RELEASE         (64u << 20)
#define FL_WIRE_RELEASE_SLACK       (64u << 10)
#define FL_WIRE_MAX_RELEASE_MESSAGE (FL_WIRE_MAX_RELEASE + FL_WIRE_RELEASE_SLACK)
#define FL_WIRE_MAX_ORDER           (1u << 20) /* a packed SignedOrder */

/* What each body may weigh, as a whole packed Message, by body (and admin
 * command): the table in proto/roles.c applies them per sender. */
#define FL_WIRE_MAX_SMALL          (64u << 10) /* fetch_release, poll, replies, most commands */
#define FL_WIRE_MAX_HELLO          (4u << 20)  /* many tenants: split with more_tenants */
#define FL_WIRE_MAX_REPORT         (4u << 20)  /* per-migration results of one assignment */
#define FL_WIRE_MAX_POLL_REPLY     (16u << 20) /* assignments carry their signed orders */
#define FL_WIRE_MAX_REPORT_ACK     (1u << 20)
#define FL_WIRE_MAX_ORDER_MESSAGE  (FL_WIRE_MAX_ORDER + FL_WIRE_MAX_SMALL)
#define FL_WIRE_MAX_ADMIN_RESPONSE (16u << 20) /* pages of fleet status, audit, plans */

/* Entries in any one repeated field, and the tighter caps of some. */
#define FL_WIRE_MAX_REPEATED      100000
#define FL_WIRE_MAX_SIGNATURES    16 /* SignedRelease.signatures, SignedOrder.signatures */
#define FL_WIRE_MAX_WAVES         64 /* RolloutPolicy.waves */
#define FL_WIRE_MAX_HEALTH_CHECKS 64 /* RolloutPolicy.checks */
#define FL_WIRE_MAX_WINDOWS       64 /* RolloutPolicy.windows */

/* What the pre-scan counts before protobuf-c allocates anything: every field
 * occurrence (known, unknown, each entry of a packed field) in one unpack,
 * and the unknown ones among them. */
#define FL_WIRE_MAX_OCCURRENCES (2u << 20)
#define FL_WIRE_MAX_UNKNOWN     65536

/* Memory. The pre-scan predicts what protobuf-c will allocate to decode the
 * input (every struct, array, string and protobuf-c's own bookkeeping, read
 * from protobuf-c 1.4's unpack) and refuses an input whose decoding would
 * take more than FL_WIRE_MEMORY(len) bytes: real messages take a few times
 * their size, hostile ones made of tiny submessages (2 bytes of input, a
 * struct of a hundred bytes and more) take tens of times theirs. protobuf-c
 * then decodes through an allocator whose budget is the prediction plus a
 * margin, and which fails any allocation past it: protobuf-c then frees what
 * it built and returns NULL (protobuf-c.c checks every allocation), so a
 * mistake in the prediction costs a refusal, never memory. */
#define FL_WIRE_MEMORY_FACTOR 8u
#define FL_WIRE_MEMORY_SLACK  (1u << 20)
#define FL_WIRE_MEMORY(len)   ((size_t)(len)*FL_WIRE_MEMORY_FACTOR + FL_WIRE_MEMORY_SLACK)

/* Fixed sizes of bytes fields, by their name (flotilla.proto). */
#define FL_WIRE_KEY_LEN       32 /* *public_key: Ed25519 public key */
#define FL_WIRE_HASH_LEN      32 /* *_hash: SHA-256 */
#define FL_WIRE_SIGNATURE_LEN 64 /* signature, *_signature: Ed25519 */

/*
 * Pack m and append the bytes to out (so a caller may put a header first).
 * FL_EINVAL, with out unchanged, when m breaks a rule of flotilla.proto, when
 * the packed size is over max ("message of N bytes exceeds the limit of M"),
 * or when out's own cap is too small.
 */
enum fl_err fl_wire_pack(const Flotilla__V1__Message *m, struct fl_buf *out, size_t max,
                         char *errbuf) __attribute__((warn_unused_result));

/*
 * Unpack and check len bytes at data into a new Message in *out.
 * FL_EINVAL when len is over max; FL_EPARSE when the bytes are not a
 * Message, or break a rule (no body set, bad key length, bad UTF-8, ...),
 * or would need more memory than FL_WIRE_MEMORY(len) to decode.
 * On error *out is NULL. data may be NULL when len is 0. This checks the
 * message's shape only: a receiver uses fl_wire_unpack_from.
 */
enum fl_err fl_wire_unpack(const uint8_t *data, size_t len, size_t max, Flotilla__V1__Message **out,
                           char *errbuf) __attribute__((warn_unused_result));

/*
 * What a receiver calls on an opened envelope's body: fl_wire_unpack for a
 * message from a sender of role `sender` (the envelope's, verified), with
 * the role table (proto/roles.h) applied by the pre-scan, before protobuf-c
 * allocates anything: the body (and admin command) must be one the role may
 * send, the message within that body's cap (fl_roles_max_size), and
 * reply_to_seq 0 in a request, set in a reply.
 * Errors: FL_EAUTH (the role may not send this body or run this command:
 * errbuf says which, e.g. "a viewer may not run rollout_start"), FL_EINVAL
 * (over the role's or the body's size cap), FL_EPARSE (as fl_wire_unpack).
 */
enum fl_err fl_wire_unpack_from(enum fl_peer_role sender, const uint8_t *data, size_t len,
                                Flotilla__V1__Message **out, char *errbuf)
    __attribute__((warn_unused_result));

/* What the last unpack on the calling thread saw and allocated (for tests
 * and metrics): input size; field occurrences and unknown fields counted by
 * the pre-scan and the bytes it predicted decoding takes; the allocator's
 * budget; the peak and total bytes protobuf-c allocated through it (16-byte
 * block headers included; 0 when the pre-scan refused); whether an
 * allocation was refused for the budget. */
struct fl_wire_stats {
	size_t len;
	size_t occurrences;
	size_t unknown;
	size_t predicted;
	size_t budget;
	size_t peak;
	size_t allocated;
	bool over_budget;
};

/* For tests only: bytes added to (or, negative, taken from) the allocator's
 * budget of unpacks on the calling thread, so that its refusal can be seen. */
extern _Thread_local long fl_wire_test_budget_delta;
void fl_wire_last_stats(struct fl_wire_stats *out);

/* Free a Message from fl_wire_unpack or fl_wire_unpack_from; NULL is a no-op. */
void fl_wire_free(Flotilla__V1__Message *m);

/* Any message type of flotilla.proto, for modules with a format of their own
 * (proto/order.c: SignedOrder, RolloutOrder, RollbackOrder). With
 * FL_WIRE_STRICT, unknown fields anywhere in the message are refused: signed
 * content whose every field decides what runs. Free with
 * fl_wire_free_message. */
#define FL_WIRE_STRICT 1u
enum fl_err fl_wire_pack_message(const ProtobufCMessage *m, struct fl_buf *out, size_t max,
                                 char *errbuf) __attribute__((warn_unused_result));
enum fl_err fl_wire_unpack_message(const ProtobufCMessageDescriptor *d, unsigned flags,
                                   const uint8_t *data, size_t len, size_t max,
                                   ProtobufCMessage **out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_wire_free_message(ProtobufCMessage *m);

/* The same three for a release file's SignedRelease (max: FL_WIRE_MAX_RELEASE). */
enum fl_err fl_wire_pack_signed_release(const Flotilla__V1__SignedRelease *m, struct fl_buf *out,
                                        size_t max, char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_wire_unpack_signed_release(const uint8_t *data, size_t len, size_t max,
                                          Flotilla__V1__SignedRelease **out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_wire_free_signed_release(Flotilla__V1__SignedRelease *m);

/* And for the ReleaseBundle inside it, whose packed bytes are content-hashed. */
enum fl_err fl_wire_pack_release_bundle(const Flotilla__V1__ReleaseBundle *m, struct fl_buf *out,
                                        size_t max, char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_wire_unpack_release_bundle(const uint8_t *data, size_t len, size_t max,
                                          Flotilla__V1__ReleaseBundle **out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_wire_free_release_bundle(Flotilla__V1__ReleaseBundle *m);

/* The name of a Message body case for logs ("hello", "admin_request");
 * "none" for NOT_SET, "unknown" for anything else. Never NULL. */
const char *fl_wire_body_name(int body_case);

/* The name of an AdminRequest command case (the same as its AdminResponse
 * result case) for logs and the audit log ("rollout_start"); "none" for
 * NOT_SET, "unknown" for anything else. Never NULL. */
const char *fl_wire_admin_command_name(int command_case);

#endif
