/*
 * Our own key pair. The Ed25519 secret and the X25519 secret derived from it
 * live in one sodium_malloc block, read-only once set up and wiped when
 * freed, and never leave this file: callers get signatures and shared keys.
 */
#include "identity.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "keys.h"
#include "mem.h"

struct id_secret {
	uint8_t sign_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t box_sk[crypto_box_SECRETKEYBYTES];
};

struct fl_identity {
	uint8_t pk[FL_PEER_KEY_LEN];
	char id[FL_PEER_ID_LEN + 1];
	struct id_secret *secret; /* sodium_malloc, read-only after setup */
};

struct fl_identity *fl_identity_new_from_seed(const uint8_t seed[FL_PEER_SEED_LEN])
{
	struct fl_identity *id;

	if (sodium_init() < 0)
		return NULL;
	id = fl_calloc(1, sizeof(*id));
	id->secret = sodium_malloc(sizeof(*id->secret));
	if (id->secret == NULL) {
		fprintf(stderr, "flotilla: out of memory allocating secure memory\n");
		abort();
	}
	crypto_sign_seed_keypair(id->pk, id->secret->sign_sk, seed);
	crypto_sign_ed25519_sk_to_curve25519(id->secret->box_sk, id->secret->sign_sk);
	sodium_mprotect_readonly(id->secret);
	fl_key_id(id->pk, id->id);
	return id;
}

void fl_identity_free(struct fl_identity *id)
{
	if (id == NULL)
		return;
	sodium_free(id->secret); /* makes it writable and zeroes it before unmapping */
	free(id);
}

const uint8_t *fl_identity_public_key(const struct fl_identity *id)
{
	return id->pk;
}

const char *fl_identity_key_id(const struct fl_identity *id)
{
	return id->id;
}

void fl_identity_sign(const struct fl_identity *id, uint8_t sig[64], const uint8_t *msg, size_t len)
{
	crypto_sign_ed25519_detached(sig, NULL, msg, len, id->secret->sign_sk);
}

enum fl_err fl_identity_shared_key(const struct fl_identity *id,
                                   const uint8_t peer_pk[FL_PEER_KEY_LEN],
                                   uint8_t key[crypto_box_BEFORENMBYTES])
{
	uint8_t xpk[crypto_box_PUBLICKEYBYTES];

	/* Both fail on small-order and non-canonical points. */
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, peer_pk) != 0 ||
	    crypto_box_beforenm(key, xpk, id->secret->box_sk) != 0) {
		sodium_memzero(key, crypto_box_BEFORENMBYTES);
		return FL_EINVAL;
	}
	return FL_OK;
}
