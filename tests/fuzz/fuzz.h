/*
 * Shared by the fuzz targets, their replay runner and the corpus generator.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput. Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer binary; linked with replay_main.c it is
 * a regression runner that feeds it every file of its seed corpus and kept
 * crashes, under ctest, with any compiler.
 *
 * The fixture makes envelopes and releases openable: fixed seeds give every
 * run the same keys, a fixed clock keeps sealed seeds inside the skew window
 * forever, and the receiving side is rebuilt for each input, so an input
 * behaves the same whatever ran before it (a crash reproduces from its file).
 */
#ifndef FL_FUZZ_H
#define FL_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "peers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fixed clock of every endpoint: 2023-11-14T22:13:20Z, in microseconds. */
#define FUZZ_NOW_US INT64_C(1700000000000000)

/* Seeds: each key is its byte repeated 32 times. */
enum fuzz_seed {
	FUZZ_RECEIVER = 0x11, /* the coordinator that opens */
	FUZZ_SENDER = 0x22,   /* an approved agent */
	FUZZ_REVOKED = 0x33,  /* an agent approved, then revoked */
	FUZZ_STRANGER = 0x44, /* never approved */
	FUZZ_RELEASE = 0x55,  /* the trusted release key */
	FUZZ_RELEASE_UNTRUSTED = 0x66,
};

/* Ed25519 key pair of a seed (sk is libsodium's 64-byte form). */
void fuzz_keypair(enum fuzz_seed seed, uint8_t pk[32], uint8_t sk[64]);
/* The fixed clock, as fl_wallclock_fn. */
int64_t fuzz_clock(void *arg);

/*
 * The receiving side, fresh: a registry (in memory) for the FUZZ_RECEIVER
 * identity with FUZZ_SENDER approved as agent "fuzz-agent" and FUZZ_REVOKED
 * approved then revoked, and an endpoint on the fixed clock. The identity is
 * made once and kept (it lives in sodium_malloc memory; freeing it each time
 * would only slow fuzzing down). Aborts on any failure: the fixture is not
 * under test.
 */
void fuzz_receiver_new(struct fl_peers **peers, struct fl_envelope **ep);
/* The sending side for seed (FUZZ_SENDER, FUZZ_REVOKED or FUZZ_STRANGER), with
 * FUZZ_RECEIVER approved as its coordinator. */
void fuzz_sender_new(enum fuzz_seed seed, struct fl_peers **peers, struct fl_envelope **ep);
/* Free what the two above made; the identities stay. */
void fuzz_side_free(struct fl_peers *peers, struct fl_envelope *ep);

#endif
