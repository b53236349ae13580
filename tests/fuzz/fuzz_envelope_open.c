/*
 * fuzz_envelope_open: fl_envelope_open on bytes from a peer.
 *
 * A MAC covers everything past the outer header, so a mutated envelope never
 * gets past decryption. The first byte of the input (mod 4) says how the rest
 * is used, so that every layer is fuzzed:
 *   0  wire: the rest is the envelope as it came off the wire;
 *   1  inner: the rest is a nonce (24 bytes) and the plaintext inside the
 *      box; the harness puts the approved sender's outer header on it and
 *      encrypts it with the shared key, so the inner layout (version,
 *      recipient, lengths, signature) is fuzzed. A sealed envelope, decrypted,
 *      gives an input that rebuilds it exactly, signature and all;
 *   2  message: the rest is seq (8 bytes, big-endian), the timestamp's offset
 *      from the fixed clock in ms (4 bytes, big-endian, signed) and the body;
 *      the harness builds a correctly addressed, signed and encrypted
 *      envelope, so replay, skew and the body's protobuf decoding (what a
 *      receiver does next: fl_wire_unpack_from the sender's role) are fuzzed;
 *   3  enrollment: as 2, but from a key the receiver never approved, with
 *      enrollment on: fl_envelope_open must refuse it as unknown-sender, and
 *      fl_envelope_open_enroll decides (and the body's decoding as an
 *      agent's Hello is fuzzed).
 * gen_corpus writes seeds of each kind, the wire ones sealed by
 * fl_envelope_seal.
 *
 * FL_FUZZ_VERBOSE=1 in the environment prints each input's outcome.
 *
 * Oracles besides the sanitizers: a refusal leaves no body; an accepted
 * envelope opened again is refused as a replay; a mode-2 message with seq >= 1
 * and a timestamp inside the window is accepted with its body intact, one
 * with seq 0 is a replay and one far outside the window is skew; a mode-3
 * message enrolls only as a Hello with a token, with its body intact, and
 * leaves the registry as it was. An accepted body is decoded as every kind
 * of sender would send it: what unpack_from accepts, the role table allows
 * and is numbered as a request or a reply, and the pre-scan's memory
 * prediction never falls short of what protobuf-c allocates.
 */
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz.h"
#include "roles.h"
#include "wire.h"

#define CTX_LEN   21 /* "flotilla envelope v1" and its NUL */
#define OUTER_LEN 61 /* magic 4, version 1, sender 32, nonce 24 */
#define MAC_LEN   16
#define SIG_LEN   64
#define MAX_SIZE  4096 /* the endpoint's cap: small, so that inputs can go over it */

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_envelope_open: %s: ", #cond);                        \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static bool ready, verbose;
static uint8_t receiver_pk[32];

/* A signing key and its shared key with the receiver. */
struct from {
	uint8_t pk[32], sk[64], shared[32];
};
static struct from sender, stranger;

static void keys_of(enum fuzz_seed seed, struct from *f)
{
	uint8_t xpk[32], xsk[32];

	fuzz_keypair(seed, f->pk, f->sk);
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, receiver_pk) != 0 ||
	    crypto_sign_ed25519_sk_to_curve25519(xsk, f->sk) != 0 ||
	    crypto_box_beforenm(f->shared, xpk, xsk) != 0)
		abort();
}

static void setup(void)
{
	uint8_t receiver_sk[64];

	fuzz_keypair(FUZZ_RECEIVER, receiver_pk, receiver_sk);
	keys_of(FUZZ_SENDER, &sender);
	keys_of(FUZZ_STRANGER, &stranger);
	verbose = getenv("FL_FUZZ_VERBOSE") != NULL;
	ready = true;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* outer header || MAC || box(inner), from f: a new heap buffer of exactly
 * *len bytes. */
static uint8_t *wrap(const struct from *f, const uint8_t nonce[24], const uint8_t *inner,
                     size_t ilen, size_t *len)
{
	uint8_t *env = malloc(OUTER_LEN + MAC_LEN + ilen + 1);

	memcpy(env, "FLT\x01", 4);
	env[4] = FL_PROTOCOL_VERSION;
	memcpy(env + 5, f->pk, 32);
	memcpy(env + 37, nonce, 24);
	if (ilen > 0)
		memcpy(env + OUTER_LEN + MAC_LEN, inner, ilen);
	crypto_box_detached_afternm(env + OUTER_LEN + MAC_LEN, env + OUTER_LEN,
	                            env + OUTER_LEN + MAC_LEN, ilen, env + 37, f->shared);
	*len = OUTER_LEN + MAC_LEN + ilen;
	return env;
}

/* A signed inner part from f for seq, ts and body, wrapped. */
static uint8_t *message(const struct from *f, uint64_t seq, int64_t ts_ms, const uint8_t *body,
                        size_t blen, size_t *len)
{
	size_t ilen = 53 + blen + SIG_LEN;
	uint8_t *signed_bytes = malloc(CTX_LEN + OUTER_LEN + ilen), *inner, *env;

	/* The signature covers the outer header, so build it as wrap() will. */
	memcpy(signed_bytes, "flotilla envelope v1", CTX_LEN);
	memcpy(signed_bytes + CTX_LEN, "FLT\x01", 4);
	signed_bytes[CTX_LEN + 4] = FL_PROTOCOL_VERSION;
	memcpy(signed_bytes + CTX_LEN + 5, f->pk, 32);
	memset(signed_bytes + CTX_LEN + 37, 0, 24); /* nonce: any will do */
	inner = signed_bytes + CTX_LEN + OUTER_LEN;
	inner[0] = FL_PROTOCOL_VERSION;
	memcpy(inner + 1, receiver_pk, 32);
	put64(inner + 33, seq);
	put64(inner + 41, (uint64_t)ts_ms);
	inner[49] = (uint8_t)(blen >> 24);
	inner[50] = (uint8_t)(blen >> 16);
	inner[51] = (uint8_t)(blen >> 8);
	inner[52] = (uint8_t)blen;
	if (blen > 0)
		memcpy(inner + 53, body, blen);
	crypto_sign_detached(inner + 53 + blen, NULL, signed_bytes, CTX_LEN + OUTER_LEN + 53 + blen,
	                     f->sk);
	env = wrap(f, signed_bytes + CTX_LEN + 37, inner, ilen, len);
	free(signed_bytes);
	return env;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fl_envelope_opened o;
	enum fl_envelope_reason reason = FL_ENVELOPE_REASON_COUNT, again;
	struct fl_envelope *ep;
	struct fl_peers *peers;
	char err[FL_ERRBUF_SIZE];
	uint8_t *env = NULL;
	size_t len = 0;
	int mode;
	enum fl_err rv;
	uint64_t seq = 0;
	int64_t delta = 0;

	if (size < 1)
		return 0;
	if (!ready)
		setup();
	mode = data[0] % 4;
	data++;
	size--;
	if (mode == 0) {
		env = malloc(size ? size : 1); /* exact size: overreads are caught */
		if (size > 0)
			memcpy(env, data, size);
		len = size;
	} else if (mode == 1) {
		if (size < 24)
			return 0;
		env = wrap(&sender, data, data + 24, size - 24, &len);
	} else {
		if (size < 12)
			return 0;
		seq = get64(data);
		delta = (int32_t)((uint32_t)data[8] << 24 | (uint32_t)data[9] << 16 |
		                  (uint32_t)data[10] << 8 | data[11]);
		env = message(mode == 3 ? &stranger : &sender, seq, FUZZ_NOW_US / 1000 + delta,
		              data + 12, size - 12, &len);
	}

	fuzz_receiver_new(&peers, &ep);
	fl_envelope_set_max_size(ep, MAX_SIZE);
	fl_envelope_opened_init(&o);
	rv = fl_envelope_open(ep, env, len, 0, &o, &reason, err);
	CHECK((rv == FL_OK) == (reason == FL_ENVELOPE_OK), "rv %d, reason %s", (int)rv,
	      fl_envelope_reason_name(reason));
	if (rv == FL_OK) {
		Flotilla__V1__Message *m = NULL;

		CHECK(o.body != NULL || o.body_len == 0, "accepted without a body");
		CHECK(o.seq > 0, "accepted seq 0");
		CHECK(mode != 2 ||
		          (o.seq == seq && o.body_len == size - 12 &&
		           (o.body_len == 0 || memcmp(o.body, data + 12, o.body_len) == 0)),
		      "the body or seq changed on the way");
		if (fl_wire_unpack(o.body, o.body_len, FL_WIRE_MAX_MESSAGE, &m, err) == FL_OK)
			fl_wire_free(m);
		m = NULL;
		/* The body as each kind of sender would send it: the role table and
		 * the caps of every role, not only the agent's. */
		for (int role = FL_PEER_NONE; role <= FL_PEER_ADMIN; role++) {
			struct fl_wire_stats st;

			m = NULL;
			rv = fl_wire_unpack_from((enum fl_peer_role)role, o.body, o.body_len, &m,
			                         err);
			fl_wire_last_stats(&st);
			if (verbose)
				fprintf(stderr, "fuzz_envelope_open: as %s: %s\n",
				        fl_peer_role_name((enum fl_peer_role)role),
				        rv == FL_OK ? "accepted" : err);
			CHECK((rv == FL_OK) == (m != NULL), "unpack_from: %d", (int)rv);
			CHECK(rv != FL_OK || fl_roles_may_send((enum fl_peer_role)role, m),
			      "role table disagrees for role %d", role);
			CHECK(rv != FL_OK ||
			          (m->reply_to_seq != 0) == fl_roles_is_reply((int)m->body_case),
			      "reply numbering not checked");
			/* The pre-scan's prediction is exact: the budget never
			 * refuses what the checks would accept. */
			CHECK(!st.over_budget, "predicted %zu, budget %zu, peak %zu", st.predicted,
			      st.budget, st.peak);
			fl_wire_free(m);
		}
		CHECK(fl_envelope_open(ep, env, len, 0, &o, &again, err) != FL_OK &&
		          again == FL_ENVELOPE_REPLAY,
		      "opened twice: %s", fl_envelope_reason_name(again));
	} else {
		CHECK(rv == FL_EAUTH, "refused with %d", (int)rv);
		CHECK(o.body == NULL && o.body_len == 0, "a refusal left a body");
	}
	if (verbose)
		fprintf(stderr, "fuzz_envelope_open: mode %d: %s\n", mode,
		        fl_envelope_reason_name(reason));
	if (mode == 2 && len <= MAX_SIZE) {
		int64_t window = FL_ENVELOPE_SKEW_MS;

		if (seq == 0)
			CHECK(reason == FL_ENVELOPE_REPLAY, "seq 0: %s",
			      fl_envelope_reason_name(reason));
		else if (delta > -window && delta < window)
			CHECK(reason == FL_ENVELOPE_OK, "seq %llu, %lld ms off: %s (%s)",
			      (unsigned long long)seq, (long long)delta,
			      fl_envelope_reason_name(reason), err);
		else if (delta < -window - 1 || delta > window + 1)
			CHECK(reason == FL_ENVELOPE_SKEW, "%lld ms off: %s", (long long)delta,
			      fl_envelope_reason_name(reason));
	}
	if (mode == 3) {
		Flotilla__V1__Message *hello = NULL;
		struct fl_peer_info info;
		size_t before = fl_peers_count(peers);

		CHECK(reason == FL_ENVELOPE_UNKNOWN_SENDER || reason == FL_ENVELOPE_OVERSIZE,
		      "a stranger's envelope: %s", fl_envelope_reason_name(reason));
		fl_envelope_set_enroll_rate(ep, FL_ENVELOPE_ENROLL_RATE, FL_ENVELOPE_ENROLL_BURST);
		rv = fl_envelope_open_enroll(ep, env, len, &o, &hello, &reason, err);
		CHECK((rv == FL_OK) == (hello != NULL) &&
		          (rv == FL_OK) == (reason == FL_ENVELOPE_OK),
		      "enroll: rv %d, reason %s", (int)rv, fl_envelope_reason_name(reason));
		if (rv == FL_OK) {
			CHECK(hello->body_case == FLOTILLA__V1__MESSAGE__BODY_HELLO &&
			          hello->hello->enrollment_token[0] != '\0',
			      "enrolled without a token");
			CHECK(o.seq == seq && seq > 0, "enrolled with another seq");
			CHECK(o.body_len == size - 12 && memcmp(o.body, data + 12, o.body_len) == 0,
			      "the body changed on the way");
			CHECK(delta >= -FL_ENVELOPE_SKEW_MS && delta <= FL_ENVELOPE_SKEW_MS,
			      "enrolled %lld ms off", (long long)delta);
		} else {
			CHECK(o.body == NULL, "a refused enrollment left a body");
		}
		if (verbose)
			fprintf(stderr, "fuzz_envelope_open: enroll: %s\n",
			        fl_envelope_reason_name(reason));
		CHECK(fl_peers_count(peers) == before &&
		          fl_peers_find(peers, stranger.pk, &info) == FL_ENOENT,
		      "enrollment stored something");
		fl_wire_free(hello);
	}
	fl_envelope_opened_fini(&o);
	fuzz_side_free(peers, ep);
	free(env);
	return 0;
}
