/*
 * Who we are: our Ed25519 key pair and the X25519 secret derived from it, in
 * sodium_malloc memory that is read-only once set up and wiped when freed.
 * The secrets never leave identity.c; callers get signatures and shared keys.
 * Every function may be called from any thread.
 */
#ifndef FL_IDENTITY_H
#define FL_IDENTITY_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FL_PEER_KEY_LEN  32 /* Ed25519 public key */
#define FL_PEER_SEED_LEN 32 /* Ed25519 seed */
#define FL_PEER_ID_LEN   16 /* key id (lib/keys.h fl_key_id): 16 hex digits */

struct fl_identity;

/*
 * Derive our key pair from a 32-byte Ed25519 seed (lib/keys.c reads it from
 * the secret key file). The caller keeps and wipes its copy of the seed.
 * Returns NULL only if libsodium cannot be initialised; aborts on OOM.
 */
struct fl_identity *fl_identity_new_from_seed(const uint8_t seed[FL_PEER_SEED_LEN]);
/* Wipe and free; NULL is a no-op. Free only after every registry using it. */
void fl_identity_free(struct fl_identity *id);
const uint8_t *fl_identity_public_key(const struct fl_identity *id);
const char *fl_identity_key_id(const struct fl_identity *id);
/* Ed25519 detached signature of msg with our key (for envelope.c). */
void fl_identity_sign(const struct fl_identity *id, uint8_t sig[64], const uint8_t *msg,
                      size_t len);
/* The crypto_box shared key (beforenm) between us and the holder of the
 * Ed25519 key peer_pk. FL_EINVAL, key wiped, for a key that is not a usable
 * curve point (small order, non-canonical). */
enum fl_err fl_identity_shared_key(const struct fl_identity *id,
                                   const uint8_t peer_pk[FL_PEER_KEY_LEN],
                                   uint8_t key[crypto_box_BEFORENMBYTES]);

#endif
