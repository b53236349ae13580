/*
 * fuzz_release_decode: release files as an agent receives them.
 *
 * Signatures are checked before the bundle is unpacked, so mutated files
 * rarely get past fl_release_verify; fl_release_inspect decodes and checks
 * the same bundle trusting no key, so it is what reaches the decoding and the
 * graph checks. Each input goes through both, and then through
 * fl_release_sign with the trusted key: what sign accepts must then verify.
 * gen_corpus writes seeds built by fl_release_build from real migrations.
 *
 * Oracles besides the sanitizers: nothing is returned on error; verify
 * succeeding implies inspect succeeding with the same hash; a file that sign
 * accepts verifies afterwards, with the same hash.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keys.h"
#include "release.h"

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_release_decode: %s: ", #cond);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static bool ready;
static struct fl_key release_key; /* FUZZ_RELEASE, with its seed: lives for the process */
static uint8_t trusted[2][FL_KEY_PUBLIC_BYTES];

static void setup(void)
{
	uint8_t seed[FL_KEY_SEED_BYTES], sk[64];

	memset(seed, FUZZ_RELEASE, sizeof(seed));
	fl_key_generate(FL_KEY_RELEASE, seed, &release_key);
	memcpy(trusted[0], release_key.pk, FL_KEY_PUBLIC_BYTES);
	fuzz_keypair(FUZZ_SENDER, trusted[1], sk); /* a second trusted key that signs nothing */
	ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fl_release *inspected = NULL, *verified = NULL, *again = NULL;
	struct fl_buf signed_file = FL_BUF_INIT;
	char err[FL_ERRBUF_SIZE];
	enum fl_err irv, vrv;

	if (!ready)
		setup();

	irv = fl_release_inspect(data, size, &inspected, err);
	CHECK((irv == FL_OK) == (inspected != NULL), "inspect: %d", (int)irv);
	CHECK(irv != FL_EAUTH, "inspect trusts no key, yet: %s", err);

	vrv = fl_release_verify(data, size, (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])trusted, 2, NULL,
	                        NULL, &verified, err);
	CHECK((vrv == FL_OK) == (verified != NULL), "verify: %d", (int)vrv);
	if (vrv == FL_OK) {
		CHECK(verified->verified, "verify succeeded, but verified is false");
		CHECK(verified->verified_by < verified->n_signers, "verified_by out of range");
		CHECK(irv == FL_OK, "verify accepted what inspect refused");
		CHECK(strcmp(inspected->hash, verified->hash) == 0, "two hashes for one file");
	}
	if (irv == FL_OK)
		CHECK(!inspected->verified, "inspect claims verified");

	if (irv == FL_OK && fl_release_sign(data, size, &release_key, &signed_file, err) == FL_OK) {
		vrv = fl_release_verify(signed_file.data, signed_file.len,
		                        (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])trusted, 1, NULL,
		                        NULL, &again, err);
		CHECK(vrv == FL_OK, "signed by the trusted key, yet refused: %s", err);
		CHECK(strcmp(again->hash, inspected->hash) == 0, "signing changed the hash");
	}

	fl_release_free(again);
	fl_release_free(verified);
	fl_release_free(inspected);
	fl_buf_fini(&signed_file);
	return 0;
}
