/* The fuzz fixture: fixed keys and clock (see fuzz.h). */
#include "fuzz.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

#define N_IDENTITIES 256

static struct fl_identity *identities[N_IDENTITIES];

static void die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz fixture: %s: %s\n", what, err);
	abort();
}

void fuzz_keypair(enum fuzz_seed seed, uint8_t pk[32], uint8_t sk[64])
{
	uint8_t s[32];

	if (sodium_init() < 0)
		die("sodium_init", "failed");
	memset(s, (int)seed, sizeof(s));
	crypto_sign_seed_keypair(pk, sk, s);
}

int64_t fuzz_clock(void *arg)
{
	(void)arg;
	return FUZZ_NOW_US;
}

static const struct fl_identity *identity(enum fuzz_seed seed)
{
	uint8_t s[32];

	if (identities[seed] == NULL) {
		/* Refusals are logged at warning level: keep the fuzzer's output readable. */
		fl_log_set_level(FL_LOG_ERROR);
		memset(s, (int)seed, sizeof(s));
		identities[seed] = fl_identity_new_from_seed(s);
		if (identities[seed] == NULL)
			die("fl_identity_new_from_seed", "failed");
	}
	return identities[seed];
}

static struct fl_envelope *endpoint(const struct fl_identity *self, struct fl_peers *peers)
{
	struct fl_envelope *ep = fl_envelope_new(self, peers);

	fl_envelope_set_clock(ep, fuzz_clock, NULL);
	return ep;
}

void fuzz_receiver_new(struct fl_peers **peers, struct fl_envelope **ep)
{
	const struct fl_identity *self = identity(FUZZ_RECEIVER);
	char err[FL_ERRBUF_SIZE] = "";

	if (fl_peers_new(self, NULL, 0, 0, peers, err) != FL_OK)
		die("fl_peers_new", err);
	if (fl_peers_add(*peers, fl_identity_public_key(identity(FUZZ_SENDER)), FL_PEER_AGENT,
	                 "fuzz-agent", err) != FL_OK)
		die("fl_peers_add", err);
	if (fl_peers_add(*peers, fl_identity_public_key(identity(FUZZ_REVOKED)), FL_PEER_AGENT,
	                 "fuzz-revoked", err) != FL_OK)
		die("fl_peers_add", err);
	if (fl_peers_revoke(*peers, fl_identity_public_key(identity(FUZZ_REVOKED)), err) != FL_OK)
		die("fl_peers_revoke", err);
	*ep = endpoint(self, *peers);
}

void fuzz_sender_new(enum fuzz_seed seed, struct fl_peers **peers, struct fl_envelope **ep)
{
	const struct fl_identity *self = identity(seed);
	char err[FL_ERRBUF_SIZE] = "";

	if (fl_peers_new(self, NULL, 0, 0, peers, err) != FL_OK)
		die("fl_peers_new", err);
	if (fl_peers_add(*peers, fl_identity_public_key(identity(FUZZ_RECEIVER)),
	                 FL_PEER_COORDINATOR, "fuzz-coordinator", err) != FL_OK)
		die("fl_peers_add", err);
	*ep = endpoint(self, *peers);
}

void fuzz_side_free(struct fl_peers *peers, struct fl_envelope *ep)
{
	fl_envelope_free(ep);
	fl_peers_free(peers);
}
