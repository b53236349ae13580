/*
 * Enrollment tokens (docs/WIRE.md, "Enrollment"): one-time secrets an admin
 * creates for a new agent, which the agent puts in its first Hello.
 *
 * A token is 32 random bytes, written as "fle1." and 43 base64url
 * characters. Only its SHA-256 is kept, with the name and labels the agent
 * will get and an expiry. The flow on the coordinator:
 *
 *   1. admin: fl_enroll_token_new -> text shown once, hash stored (the
 *      coordinator's store first, then fl_enroll_tokens_add);
 *   2. agent: Hello{enrollment_token} from a key that is no peer, opened with
 *      fl_envelope_open_enroll (rate-limited, stores nothing);
 *   3. fl_enroll_token_hash(hello->enrollment_token) and
 *      fl_enroll_tokens_take: the token, unexpired, is removed; the store
 *      deletes it and approves the agent in one transaction (on failure,
 *      fl_enroll_tokens_add puts it back);
 *   4. fl_peers_enroll(pk, name, opened.seq): the key is a peer, and the
 *      enrollment envelope a replay from now on; then the HelloReply.
 *
 * Tokens survive a restart because the coordinator's store holds them: at
 * start it calls fl_enroll_tokens_add for each stored token (restore).
 * fl_enroll_tokens is the in-memory view, not the truth.
 *
 * struct fl_enroll_tokens is thread-compatible: one thread (the
 * coordinator's core) owns it. The token functions are pure.
 */
#ifndef FL_ENROLL_H
#define FL_ENROLL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "label.h"
#include "peers.h"

#define FL_ENROLL_TOKEN_BYTES    32
#define FL_ENROLL_TOKEN_PREFIX   "fle1."
#define FL_ENROLL_TOKEN_TEXT_LEN 48 /* prefix 5 + 43 base64url characters, no padding */
#define FL_ENROLL_HASH_LEN       32 /* SHA-256 of the 32 token bytes */
#define FL_ENROLL_TOKENS_MAX     1024
#define FL_ENROLL_TTL_MAX_MS     (INT64_C(366) * 24 * 3600 * 1000)

/* A fresh token: its text, for the admin (shown once, never stored), and its
 * hash, which is all that is kept. */
void fl_enroll_token_new(char text[FL_ENROLL_TOKEN_TEXT_LEN + 1], uint8_t hash[FL_ENROLL_HASH_LEN]);

/* The hash of a token given as text (a Hello's enrollment_token). FL_EAUTH
 * when text is not a token's text (errbuf never quotes it: it may be a
 * secret mistyped). */
enum fl_err fl_enroll_token_hash(const char *text, uint8_t hash[FL_ENROLL_HASH_LEN], char *errbuf)
    __attribute__((warn_unused_result));

/* An outstanding token, as kept (and as the store keeps it). */
struct fl_enroll_token {
	uint8_t hash[FL_ENROLL_HASH_LEN];
	char name[FL_PEER_NAME_MAX + 1]; /* the agent's name once enrolled */
	struct fl_labels labels;         /* the agent's labels once enrolled */
	int64_t expires_at_ms;           /* wall clock */
};

/* Free the labels of a token filled by fl_enroll_tokens_take. */
void fl_enroll_token_fini(struct fl_enroll_token *t);

struct fl_enroll_tokens;

struct fl_enroll_tokens *fl_enroll_tokens_new(void);
void fl_enroll_tokens_free(struct fl_enroll_tokens *t); /* wipes the hashes; NULL is a no-op */

/*
 * Keep a token (new, or restored from the store at start); labels may be
 * NULL (none). Tokens expired at now_ms are dropped first. Errors: FL_EINVAL
 * (a name fl_peers_add would refuse, an expiry not after now_ms or more than
 * FL_ENROLL_TTL_MAX_MS ahead), FL_ESTATE (this hash is kept already),
 * FL_ENOTSUP (FL_ENROLL_TOKENS_MAX outstanding).
 */
enum fl_err fl_enroll_tokens_add(struct fl_enroll_tokens *t, const uint8_t hash[FL_ENROLL_HASH_LEN],
                                 const char *name, const struct fl_labels *labels,
                                 int64_t expires_at_ms, int64_t now_ms, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Take the token with this hash: if kept and unexpired at now_ms, it is
 * removed and copied to *out (fl_enroll_token_fini it). Every kept hash is
 * compared (no early exit). Errors: FL_EAUTH ("unknown or already used
 * enrollment token", or "enrollment token expired", which is dropped too).
 */
enum fl_err fl_enroll_tokens_take(struct fl_enroll_tokens *t,
                                  const uint8_t hash[FL_ENROLL_HASH_LEN], int64_t now_ms,
                                  struct fl_enroll_token *out, char *errbuf)
    __attribute__((warn_unused_result));

/* Tokens kept (expired ones included until the next add or take). */
size_t fl_enroll_tokens_count(const struct fl_enroll_tokens *t);

#endif
