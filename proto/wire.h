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
 * consumers can rely on them without checking again. Meaning (does the
 * rollout exist, is this agent allowed to send this body) is the consumer's.
 * Unknown fields are ignored.
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

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "flotilla.pb-c.h"

/* Size caps (docs/WIRE.md): one envelope body, and a release file or bundle.
 * A Message carrying a release (ReleaseBundleReply, a release_push request)
 * needs FL_WIRE_MAX_RELEASE plus a little room for its own fields. */
#define FL_WIRE_MAX_MESSAGE (1u << 20)
#define FL_WIRE_MAX_RELEASE (64u << 20)

/* Entries in any one repeated field, and the tighter caps of some. */
#define FL_WIRE_MAX_REPEATED      100000
#define FL_WIRE_MAX_SIGNATURES    16 /* SignedRelease.signatures, SignedOrder.signatures */
#define FL_WIRE_MAX_WAVES         64 /* RolloutPolicy.waves */
#define FL_WIRE_MAX_HEALTH_CHECKS 64 /* RolloutPolicy.checks */
#define FL_WIRE_MAX_WINDOWS       64 /* RolloutPolicy.windows */

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
 * Message, or break a rule (no body set, bad key length, bad UTF-8, ...).
 * On error *out is NULL. data may be NULL when len is 0.
 */
enum fl_err fl_wire_unpack(const uint8_t *data, size_t len, size_t max, Flotilla__V1__Message **out,
                           char *errbuf) __attribute__((warn_unused_result));

/* Free a Message from fl_wire_unpack; NULL is a no-op. */
void fl_wire_free(Flotilla__V1__Message *m);

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

/* The least role allowed to run an AdminRequest command. ROLE_ADMIN for
 * NOT_SET or an unknown case, so a mistake never lowers the bar. */
Flotilla__V1__Role fl_wire_admin_command_role(int command_case);

#endif
