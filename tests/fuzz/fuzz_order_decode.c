/*
 * fuzz_order_decode: signed orders as an agent (or the coordinator)
 * receives them. The first byte picks the kind (even: rollout, odd:
 * rollback); the rest is the order file (a packed SignedOrder).
 *
 * Signatures are checked before the order is unpacked, so mutated files
 * rarely get past fl_order_verify; fl_order_inspect decodes the same order
 * trusting no key, so it is what reaches the strict unpacking, the
 * canonical-form check, the selector and the policy. Then every input goes
 * through fl_order_sign with the trusted key: what sign accepts must verify.
 * gen_corpus writes seeds built by fl_order_build_* and signed.
 *
 * Oracles besides the sanitizers: nothing is returned on error; verify
 * succeeding implies inspect succeeding with the same hash; a decoded order
 * passes fl_selector_check (and fl_policy_check for a rollout), and the
 * coverage checks answer without crashing for any wave index; a file that
 * sign accepts verifies afterwards, with the same hash.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keys.h"
#include "order.h"

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_order_decode: %s: ", #cond);                         \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static bool ready;
static struct fl_key release_key; /* FUZZ_RELEASE, with its seed: lives for the process */
static uint8_t trusted[2][FL_KEY_PUBLIC_BYTES];
static struct fl_labels canary, none;

static void setup(void)
{
	uint8_t seed[FL_KEY_SEED_BYTES], sk[64];
	char err[FL_ERRBUF_SIZE];

	memset(seed, FUZZ_RELEASE, sizeof(seed));
	fl_key_generate(FL_KEY_RELEASE, seed, &release_key);
	memcpy(trusted[0], release_key.pk, FL_KEY_PUBLIC_BYTES);
	fuzz_keypair(FUZZ_SENDER, trusted[1], sk); /* a second trusted key that signs nothing */
	fl_labels_init(&canary);
	fl_labels_init(&none);
	if (fl_labels_set(&canary, "ring", "canary", err) != FL_OK)
		abort();
	ready = true;
}

static void exercise(const struct fl_order *o)
{
	char err[FL_ERRBUF_SIZE];
	static const char *const tenants[] = {"acme", "globex", "t1", ""};

	CHECK(fl_selector_check(&o->selector, err) == FL_OK, "decoded selector refused: %s", err);
	if (o->kind == FL_ORDER_ROLLOUT)
		CHECK(fl_policy_check(&o->policy, err) == FL_OK, "decoded policy refused: %s", err);
	for (size_t t = 0; t < sizeof(tenants) / sizeof(tenants[0]); t++) {
		enum fl_err a, b;

		for (uint32_t w = 0; w <= o->policy.n_waves + 1; w++) {
			enum fl_err rv = fl_order_wave_check(o, w, tenants[t], &canary, err);

			CHECK(rv == FL_OK || rv == FL_EAUTH, "wave check: %d", (int)rv);
			CHECK(o->kind == FL_ORDER_ROLLOUT || rv == FL_EAUTH, "wave of a rollback");
		}
		a = fl_order_covers(o, tenants[t], &none, err);
		b = fl_order_covers(o, tenants[t], &canary, err);

		CHECK((a == FL_OK) == fl_selector_matches(&o->selector, tenants[t], &none) &&
		          (b == FL_OK) == fl_selector_matches(&o->selector, tenants[t], &canary),
		      "covers and matches disagree");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fl_order *inspected = NULL, *verified = NULL, *again = NULL;
	struct fl_buf signed_file = FL_BUF_INIT;
	enum fl_order_kind kind;
	char err[FL_ERRBUF_SIZE];
	enum fl_err irv, vrv;

	if (size < 1)
		return 0;
	if (!ready)
		setup();
	kind = data[0] & 1 ? FL_ORDER_ROLLBACK : FL_ORDER_ROLLOUT;
	data++;
	size--;

	irv = fl_order_inspect(data, size, kind, &inspected, err);
	CHECK((irv == FL_OK) == (inspected != NULL), "inspect: %d", (int)irv);
	CHECK(irv != FL_EAUTH, "inspect trusts no key, yet: %s", err);
	vrv = fl_order_verify(data, size, kind, (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])trusted, 2,
	                      "fuzz-app", FUZZ_NOW_US / 1000, &verified, err);
	CHECK((vrv == FL_OK) == (verified != NULL), "verify: %d", (int)vrv);
	if (vrv == FL_OK) {
		CHECK(verified->verified, "verify succeeded, but verified is false");
		CHECK(verified->verified_by < verified->n_signers, "verified_by out of range");
		CHECK(irv == FL_OK, "verify accepted what inspect refused");
		CHECK(strcmp(inspected->hash_hex, verified->hash_hex) == 0,
		      "two hashes for one file");
	}
	if (irv == FL_OK) {
		CHECK(!inspected->verified, "inspect claims verified");
		exercise(inspected);
		if (fl_order_sign(data, size, kind, &release_key, &signed_file, err) == FL_OK) {
			vrv = fl_order_verify(signed_file.data, signed_file.len, kind,
			                      (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])trusted, 1,
			                      inspected->project_id, inspected->created_at_ms,
			                      &again, err);
			CHECK(vrv == FL_OK, "signed by the trusted key, yet refused: %s", err);
			CHECK(strcmp(again->hash_hex, inspected->hash_hex) == 0,
			      "signing changed the hash");
		}
	}
	fl_order_free(again);
	fl_order_free(verified);
	fl_order_free(inspected);
	fl_buf_fini(&signed_file);
	return 0;
}
