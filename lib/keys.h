/*
 * Ed25519 keys as docs/WIRE.md fixes them: public keys as 44 characters of
 * standard base64, key ids (16 hex digits, for humans and logs only: trust is
 * always decided on the full 32 bytes), and secret key files:
 *
 *   # flotilla secret key: keep it private
 *   kind: agent
 *   public: <base64 public key>
 *   secret: <base64 of the 32-byte Ed25519 seed>
 *
 * Secrets live only in sodium_malloc memory (guard pages, mlocked where the
 * system allows, read-only while held) and are wiped on release; they never
 * appear in an error message. Everything here is thread-compatible (no shared
 * state) once sodium_init has run; the functions below call it themselves.
 */
#ifndef FL_KEYS_H
#define FL_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FL_KEY_PUBLIC_BYTES    32
#define FL_KEY_SEED_BYTES      32
#define FL_KEY_SIGNATURE_BYTES 64
#define FL_KEY_PUBLIC_TEXT_LEN 44   /* base64 of 32 bytes, with padding */
#define FL_KEY_ID_LEN          16   /* hex digits */
#define FL_KEY_FILE_MAX        4096 /* a secret key file is ~150 bytes */

enum fl_key_kind {
	FL_KEY_COORDINATOR = 0, /* the coordinator host: envelopes, pinned by agents */
	FL_KEY_AGENT,           /* each agent host: envelopes, enrolled and revocable */
	FL_KEY_OPERATOR,        /* a release manager's laptop or CI: the admin endpoint */
	FL_KEY_RELEASE,         /* signs release bundles; never held by the coordinator */
};

/*
 * A key pair. seed is NULL for a public key alone; otherwise it points to
 * FL_KEY_SEED_BYTES of sodium_malloc memory (read-only) that the struct owns
 * and fl_key_fini wipes and frees.
 */
struct fl_key {
	enum fl_key_kind kind;
	uint8_t pk[FL_KEY_PUBLIC_BYTES];
	uint8_t *seed;
};

/* "coordinator", "agent", "operator", "release"; "?" for anything else. */
const char *fl_key_kind_name(enum fl_key_kind kind);
/* The kind named name. Errors: FL_EINVAL (errbuf lists the kinds). */
enum fl_err fl_key_kind_parse(const char *name, enum fl_key_kind *kind, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Standard base64 with padding (libsodium's ORIGINAL variant).
 * fl_base64_encode writes the text and its NUL into out, which must hold
 * fl_base64_encoded_size(len) bytes. fl_base64_decode decodes exactly
 * text[0..len) (no whitespace, canonical padding and trailing bits) into at
 * most max bytes; errors: FL_EPARSE (not base64, or longer than max).
 */
size_t fl_base64_encoded_size(size_t len);
void fl_base64_encode(const void *bin, size_t len, char *out);
enum fl_err fl_base64_decode(const char *text, size_t len, void *out, size_t max, size_t *out_len)
    __attribute__((warn_unused_result));

/* First 8 bytes of SHA-256 of the public key, lowercase hex, NUL-terminated. */
void fl_key_id(const uint8_t pk[FL_KEY_PUBLIC_BYTES], char out[FL_KEY_ID_LEN + 1]);
/* The public key as text: 44 characters of base64 and a NUL. */
void fl_key_public_text(const uint8_t pk[FL_KEY_PUBLIC_BYTES],
                        char out[FL_KEY_PUBLIC_TEXT_LEN + 1]);
/*
 * Parse public key text (exactly 44 base64 characters). Errors: FL_EPARSE,
 * with errbuf saying what is wrong (the text is quoted only if it is short
 * and printable).
 */
enum fl_err fl_key_public_parse(const char *text, uint8_t pk[FL_KEY_PUBLIC_BYTES], char *errbuf)
    __attribute__((warn_unused_result));

/*
 * A fresh key pair of this kind (seed NULL: random, else the key pair from
 * those FL_KEY_SEED_BYTES). The caller owns *key: fl_key_fini.
 */
void fl_key_generate(enum fl_key_kind kind, const uint8_t *seed, struct fl_key *key);
/* Wipe and free the seed; the struct may be reused. NULL is a no-op. */
void fl_key_fini(struct fl_key *key);

/*
 * Write key (which must hold a seed) as a secret key file at path: created
 * with O_CREAT|O_EXCL and mode 0600, never overwriting, fsync'd with its
 * folder. On error nothing is left at path that we created.
 * Errors: FL_EINVAL (no seed), FL_EIO (exists, cannot create or write).
 */
enum fl_err fl_key_file_write(const char *path, const struct fl_key *key, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Load the secret key file at path, which must be of kind want. Refuses a
 * file that is not a regular file, is larger than FL_KEY_FILE_MAX, that group
 * or others may read or write, of another kind, with a line other than
 * comments, blank lines and the three keys once each, or whose seed does not
 * give its public key. On success *key holds the seed (the caller owns it:
 * fl_key_fini); on error *key is empty (seed NULL).
 * Errors: FL_ENOENT (no such file), FL_EIO (cannot read it, or its permissions
 * let others at it), FL_EPARSE (contents, with file:line; never the secret).
 */
enum fl_err fl_key_file_load(const char *path, enum fl_key_kind want, struct fl_key *key,
                             char *errbuf) __attribute__((warn_unused_result));

/* Ed25519 signature of msg[0..len) by key (which must hold a seed). */
void fl_key_sign(const struct fl_key *key, const void *msg, size_t len,
                 uint8_t sig[FL_KEY_SIGNATURE_BYTES]);
/* True if sig is pk's Ed25519 signature of msg[0..len). */
bool fl_key_verify(const uint8_t pk[FL_KEY_PUBLIC_BYTES], const void *msg, size_t len,
                   const uint8_t sig[FL_KEY_SIGNATURE_BYTES]) __attribute__((warn_unused_result));

#endif
