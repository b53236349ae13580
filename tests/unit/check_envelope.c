/*
 * The envelope: a round trip, and every refusal docs/WIRE.md lists, each
 * produced the way an attacker (or a broken peer) would produce it. Some
 * envelopes are built here from the spec with libsodium directly (forge()),
 * which also checks that the implementation and the document agree.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envelope.h"
#include "mem.h"
#include "wire.h"
#include "log.h"
#include "peers.h"

#define T0 INT64_C(1700000000000000) /* µs: 2023-11-14 */

struct node {
	uint8_t seed[32];
	uint8_t pk[32], sk[64]; /* the test's own copy, to forge with */
	struct fl_identity *id;
	struct fl_peers *peers;
	struct fl_envelope *ep;
	int64_t now_us;
	char name[16];
};

static char dir[256], seqpath[300], logpath[300];
static struct node A, B, C;

static int64_t node_clock(void *arg)
{
	return ((struct node *)arg)->now_us;
}

static void node_start(struct node *n, const char *path)
{
	char err[FL_ERRBUF_SIZE] = "";

	n->id = fl_identity_new_from_seed(n->seed);
	ck_assert_ptr_nonnull(n->id);
	ck_assert_msg(fl_peers_new(n->id, path, 0, 0, &n->peers, err) == FL_OK, "%s", err);
	n->ep = fl_envelope_new(n->id, n->peers);
	fl_envelope_set_clock(n->ep, node_clock, n);
}

static void node_stop(struct node *n)
{
	fl_envelope_free(n->ep);
	fl_peers_free(n->peers);
	fl_identity_free(n->id);
	n->ep = NULL;
	n->peers = NULL;
	n->id = NULL;
}

static void node_init(struct node *n, uint8_t tag, const char *name, const char *path)
{
	memset(n, 0, sizeof(*n));
	memset(n->seed, tag, sizeof(n->seed));
	crypto_sign_seed_keypair(n->pk, n->sk, n->seed);
	n->now_us = T0;
	snprintf(n->name, sizeof(n->name), "%s", name);
	node_start(n, path);
}

/* a approves b in the role given. */
static void knows(struct node *a, const struct node *b, enum fl_peer_role role)
{
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(fl_peers_add(a->peers, b->pk, role, b->name, err) == FL_OK, "%s", err);
}

/*
 * A: an agent. B: the coordinator, which knows A, and has peers.seq.
 * C: another coordinator-like node that knows A; B does not know C.
 */
/* The folder is made and removed by the parent (an unchecked fixture), so it
 * goes away even when a test fails; each test starts from an empty one. */
static void make_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/check_envelope.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(seqpath, sizeof(seqpath), "%s/peers.seq", dir);
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
}

static void empty_dir(void)
{
	unlink(seqpath);
	unlink(logpath);
}

static void remove_dir(void)
{
	empty_dir();
	rmdir(dir);
}

static void setup(void)
{
	fl_log_set_level(FL_LOG_ERROR);
	empty_dir();
	node_init(&A, 0xa1, "agent-a", NULL);
	node_init(&B, 0xb2, "coord-b", seqpath);
	node_init(&C, 0xc3, "coord-c", NULL);
	knows(&A, &B, FL_PEER_COORDINATOR);
	knows(&A, &C, FL_PEER_COORDINATOR);
	knows(&B, &A, FL_PEER_AGENT);
	knows(&C, &A, FL_PEER_AGENT);
	knows(&C, &B, FL_PEER_COORDINATOR);
}

static void teardown(void)
{
	node_stop(&A);
	node_stop(&B);
	node_stop(&C);
	empty_dir();
}

static void seal(struct node *from, const struct node *to, const char *body, struct fl_buf *out)
{
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(fl_envelope_seal(from->ep, to->pk, body, strlen(body), out, err) == FL_OK,
	              "%s", err);
}

/* Open at `to`; the reason (FL_ENVELOPE_OK when accepted). */
static enum fl_envelope_reason open_at(struct node *to, const void *data, size_t len, size_t max)
{
	struct fl_envelope_opened o;
	enum fl_envelope_reason r = (enum fl_envelope_reason) - 1;
	char err[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;

	fl_envelope_opened_init(&o);
	rv = fl_envelope_open(to->ep, data, len, max, &o, &r, err);
	ck_assert_int_ne((int)r, -1);
	if (r == FL_ENVELOPE_OK) {
		ck_assert_int_eq(rv, FL_OK);
		ck_assert_ptr_nonnull(o.body);
	} else {
		ck_assert_int_eq(rv, r == FL_ENVELOPE_STORE ? FL_EIO : FL_EAUTH);
		ck_assert_ptr_null(o.body);
		ck_assert_uint_eq(o.body_len, 0);
		ck_assert_uint_eq(o.plain.len, 0);
		ck_assert_ptr_nonnull(strstr(err, fl_envelope_reason_name(r)));
	}
	fl_envelope_opened_fini(&o);
	return r;
}

static enum fl_envelope_reason open_buf(struct node *to, const struct fl_buf *b)
{
	return open_at(to, b->data, b->len, 0);
}

/* ---- envelopes built from docs/WIRE.md, field by field ---- */

struct forge {
	uint8_t magic[4];
	uint8_t version;
	const uint8_t *sender; /* outer sender field */
	const uint8_t *box_pk; /* the crypto_box key pair: X25519 of these Ed25519 keys */
	const uint8_t *box_sk;
	uint8_t inner_version;
	const uint8_t *recipient;
	uint64_t seq;
	int64_t ts_ms;
	uint32_t body_len; /* the field; the body's real length is strlen(body) */
	const char *body;
	const uint8_t *sign_sk; /* 64-byte Ed25519 secret key */
};

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

/* An honest envelope from `from` to `to`, to be bent by the caller. */
static struct forge honest(const struct node *from, const struct node *to, uint64_t seq,
                           const char *body)
{
	struct forge f = {
	    .magic = {'F', 'L', 'T', 1},
	    .version = 1,
	    .sender = from->pk,
	    .box_pk = to->pk,
	    .box_sk = from->sk,
	    .inner_version = 1,
	    .recipient = to->pk,
	    .seq = seq,
	    .ts_ms = to->now_us / 1000,
	    .body_len = (uint32_t)strlen(body),
	    .body = body,
	    .sign_sk = from->sk,
	};
	return f;
}

static void forge(const struct forge *f, struct fl_buf *out)
{
	static const char domain[] = "flotilla envelope v1"; /* sizeof includes the NUL */
	size_t blen = strlen(f->body), ilen = 53 + blen + 64;
	uint8_t hdr[61], *inner = malloc(ilen), *msg = malloc(sizeof(domain) + 61 + ilen);
	uint8_t xpk[32], xsk[32], *box = malloc(16 + ilen);

	memcpy(hdr, f->magic, 4);
	hdr[4] = f->version;
	memcpy(hdr + 5, f->sender, 32);
	randombytes_buf(hdr + 37, 24);
	inner[0] = f->inner_version;
	memcpy(inner + 1, f->recipient, 32);
	put64(inner + 33, f->seq);
	put64(inner + 41, (uint64_t)f->ts_ms);
	inner[49] = (uint8_t)(f->body_len >> 24);
	inner[50] = (uint8_t)(f->body_len >> 16);
	inner[51] = (uint8_t)(f->body_len >> 8);
	inner[52] = (uint8_t)f->body_len;
	memcpy(inner + 53, f->body, blen);
	memcpy(msg, domain, sizeof(domain));
	memcpy(msg + sizeof(domain), hdr, 61);
	memcpy(msg + sizeof(domain) + 61, inner, 53 + blen);
	crypto_sign_detached(inner + 53 + blen, NULL, msg, sizeof(domain) + 61 + 53 + blen,
	                     f->sign_sk);
	ck_assert_int_eq(crypto_sign_ed25519_pk_to_curve25519(xpk, f->box_pk), 0);
	crypto_sign_ed25519_sk_to_curve25519(xsk, f->box_sk);
	ck_assert_int_eq(crypto_box_easy(box, inner, ilen, hdr + 37, xpk, xsk), 0);
	fl_buf_reset(out);
	fl_buf_append(out, hdr, 61);
	fl_buf_append(out, box, 16 + ilen);
	free(inner);
	free(msg);
	free(box);
}

/* Decrypt an envelope sent to `to` with the test's own crypto (inner out). */
static bool unbox(const struct node *to, const struct fl_buf *env, uint8_t *inner)
{
	uint8_t xpk[32], xsk[32];
	const uint8_t *d = (const uint8_t *)env->data;

	ck_assert_int_eq(crypto_sign_ed25519_pk_to_curve25519(xpk, d + 5), 0);
	crypto_sign_ed25519_sk_to_curve25519(xsk, to->sk);
	return crypto_box_open_easy(inner, d + 61, env->len - 61, d + 37, xpk, xsk) == 0;
}

/* ---- the tests ---- */

START_TEST(round_trip)
{
	struct fl_buf env = FL_BUF_INIT;
	struct fl_envelope_opened o;
	enum fl_envelope_reason r;
	char err[FL_ERRBUF_SIZE] = "";

	fl_envelope_opened_init(&o);
	seal(&A, &B, "hello coordinator", &env);
	ck_assert_uint_eq(env.len, FL_ENVELOPE_OVERHEAD + 17);
	ck_assert_int_eq(fl_envelope_open(B.ep, env.data, env.len, 0, &o, &r, err), FL_OK);
	ck_assert_int_eq(r, FL_ENVELOPE_OK);
	ck_assert_uint_eq(o.body_len, 17);
	ck_assert_mem_eq(o.body, "hello coordinator", 17);
	ck_assert_mem_eq(o.sender.pk, A.pk, 32);
	ck_assert_str_eq(o.sender.id, fl_identity_key_id(A.id));
	ck_assert_str_eq(o.sender.name, "agent-a");
	ck_assert_int_eq(o.sender.role, FL_PEER_AGENT);
	ck_assert_uint_eq(o.seq, (uint64_t)T0);
	ck_assert_int_eq(o.timestamp_ms, T0 / 1000);

	/* And back, reusing the buffers; an empty body is fine. */
	ck_assert_int_eq(fl_envelope_seal(B.ep, A.pk, NULL, 0, &env, err), FL_OK);
	ck_assert_uint_eq(env.len, FL_ENVELOPE_OVERHEAD);
	ck_assert_int_eq(fl_envelope_open(A.ep, env.data, env.len, 0, &o, NULL, NULL), FL_OK);
	ck_assert_uint_eq(o.body_len, 0);
	ck_assert_int_eq(o.sender.role, FL_PEER_COORDINATOR);

	/* Many in a row through one opened struct. */
	for (int i = 0; i < 50; i++) {
		char body[32];

		snprintf(body, sizeof(body), "message %d", i);
		seal(&A, &B, body, &env);
		ck_assert_int_eq(fl_envelope_open(B.ep, env.data, env.len, 0, &o, &r, err), FL_OK);
		ck_assert_uint_eq(o.body_len, strlen(body));
		ck_assert_mem_eq(o.body, body, strlen(body));
		ck_assert_uint_eq(o.seq, (uint64_t)T0 + 1 + (uint64_t)i);
	}
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_OK), 51);
	ck_assert_uint_eq(fl_envelope_count(A.ep, FL_ENVELOPE_OK), 1);
	fl_envelope_opened_fini(&o);
	fl_buf_fini(&env);
}
END_TEST

/* What seal writes is what the document says, checked with plain libsodium. */
START_TEST(seal_follows_the_spec)
{
	static const char domain[] = "flotilla envelope v1";
	struct fl_buf env = FL_BUF_INIT;
	uint8_t inner[53 + 5 + 64], msg[sizeof(domain) + 61 + 53 + 5];
	const uint8_t *d;

	A.now_us = T0 + 123456;
	seal(&A, &B, "abcde", &env);
	d = (const uint8_t *)env.data;
	ck_assert_uint_eq(env.len, 61 + 16 + sizeof(inner));
	ck_assert_mem_eq(d, "FLT\x01\x01", 5);
	ck_assert_mem_eq(d + 5, A.pk, 32);
	ck_assert(unbox(&B, &env, inner));
	ck_assert_int_eq(inner[0], 1);
	ck_assert_mem_eq(inner + 1, B.pk, 32);
	ck_assert_uint_eq(get64(inner + 33), (uint64_t)(T0 + 123456));
	ck_assert_uint_eq(get64(inner + 41), (uint64_t)((T0 + 123456) / 1000));
	ck_assert_mem_eq(inner + 49,
	                 "\0\0\0\x05"
	                 "abcde",
	                 9);
	memcpy(msg, domain, sizeof(domain));
	memcpy(msg + sizeof(domain), d, 61);
	memcpy(msg + sizeof(domain) + 61, inner, 53 + 5);
	ck_assert_int_eq(crypto_sign_verify_detached(inner + 58, msg, sizeof(msg), A.pk), 0);
	fl_buf_fini(&env);
}
END_TEST

/* ... and what forge() builds from the document, open accepts. */
START_TEST(forged_by_the_spec_opens)
{
	struct fl_buf env = FL_BUF_INIT;
	struct forge f = honest(&A, &B, 42, "by the book");

	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_OK);
	fl_buf_fini(&env);
}
END_TEST

/* Flip each bit of a sealed envelope in turn: every one is refused, with the
 * reason of the part it lands in, and the original still opens afterwards. */
START_TEST(every_flipped_bit_refused)
{
	struct fl_buf env = FL_BUF_INIT;
	uint8_t *copy;

	seal(&A, &B, "SELECT 1; -- a body of some length", &env);
	copy = malloc(env.len);
	for (size_t bit = 0; bit < env.len * 8; bit++) {
		size_t at = bit / 8;
		enum fl_envelope_reason want, got;

		memcpy(copy, env.data, env.len);
		copy[at] ^= (uint8_t)(1u << (bit % 8));
		if (at < 4)
			want = FL_ENVELOPE_BAD_MAGIC;
		else if (at < 5)
			want = FL_ENVELOPE_VERSION;
		else if (at < 37)
			want = FL_ENVELOPE_UNKNOWN_SENDER;
		else
			want = FL_ENVELOPE_DECRYPT; /* nonce, tag, ciphertext */
		got = open_at(&B, copy, env.len, 0);
		ck_assert_msg(got == want, "bit %zu: %s, want %s", bit,
		              fl_envelope_reason_name(got), fl_envelope_reason_name(want));
	}
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_OK), 0);
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_DECRYPT), (env.len - 37) * 8);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_OK);
	free(copy);
	fl_buf_fini(&env);
}
END_TEST

START_TEST(every_truncation_refused)
{
	struct fl_buf env = FL_BUF_INIT;
	uint8_t *copy;

	seal(&A, &B, "truncate me, every way you can", &env);
	copy = malloc(env.len + 1);
	memcpy(copy, env.data, env.len);
	for (size_t len = 0; len < env.len; len++) {
		enum fl_envelope_reason want =
		    len < FL_ENVELOPE_OVERHEAD ? FL_ENVELOPE_TRUNCATED : FL_ENVELOPE_DECRYPT;
		/* A fresh copy of exactly len bytes, so ASan sees any overread. */
		uint8_t *part = malloc(len ? len : 1);

		memcpy(part, copy, len);
		ck_assert_int_eq(open_at(&B, part, len, 0), want);
		free(part);
	}
	ck_assert_int_eq(open_at(&B, NULL, 0, 0), FL_ENVELOPE_TRUNCATED);
	copy[env.len] = 0;
	ck_assert_int_eq(open_at(&B, copy, env.len + 1, 0), FL_ENVELOPE_DECRYPT); /* extended */
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_OK);
	free(copy);
	fl_buf_fini(&env);
}
END_TEST

START_TEST(bad_magic_and_version)
{
	struct fl_buf env = FL_BUF_INIT;
	struct forge f;

	seal(&A, &B, "x", &env);
	env.data[0] = 'G';
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_BAD_MAGIC);
	env.data[0] = 'F';
	env.data[4] = 2;
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_VERSION);
	env.data[4] = 0;
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_VERSION);
	/* A well-formed, signed envelope of a version we do not speak. */
	f = honest(&A, &B, 1, "from the future");
	f.version = 2;
	f.inner_version = 2;
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_VERSION);
	f.magic[3] = 2;
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_BAD_MAGIC);
	fl_buf_fini(&env);
}
END_TEST

START_TEST(unknown_sender)
{
	struct fl_buf env = FL_BUF_INIT;
	struct forge f;

	/* C knows B, B does not know C. */
	seal(&C, &B, "let me in", &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_UNKNOWN_SENDER);
	/* A forged envelope claiming a key nobody approved. */
	f = honest(&C, &B, 1, "let me in");
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_UNKNOWN_SENDER);
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_UNKNOWN_SENDER), 2);
	fl_buf_fini(&env);
}
END_TEST

START_TEST(revoked_sender)
{
	struct fl_buf before = FL_BUF_INIT, after = FL_BUF_INIT;
	char err[FL_ERRBUF_SIZE] = "";

	seal(&A, &B, "sealed before revocation", &before);
	ck_assert_int_eq(fl_peers_revoke(B.peers, A.pk, err), FL_OK);
	seal(&A, &B, "sealed after", &after); /* A does not know */
	ck_assert_int_eq(open_buf(&B, &before), FL_ENVELOPE_REVOKED);
	ck_assert_int_eq(open_buf(&B, &after), FL_ENVELOPE_REVOKED);
	/* B can no longer seal to A either. */
	ck_assert_int_eq(fl_envelope_seal(B.ep, A.pk, "x", 1, &after, err), FL_ESTATE);
	ck_assert_uint_eq(after.len, 0);
	/* Still refused after a restart. */
	node_stop(&B);
	node_start(&B, seqpath);
	ck_assert_int_eq(fl_peers_add(B.peers, A.pk, FL_PEER_AGENT, "agent-a", err), FL_ESTATE);
	ck_assert_int_eq(open_buf(&B, &before), FL_ENVELOPE_REVOKED);
	fl_buf_fini(&before);
	fl_buf_fini(&after);
}
END_TEST

/* A seals for C; B cannot open it: the shared key is A-C's, not A-B's. */
START_TEST(sealed_for_another_receiver)
{
	struct fl_buf env = FL_BUF_INIT;

	seal(&A, &C, "for C only", &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_DECRYPT);
	ck_assert_int_eq(open_buf(&C, &env), FL_ENVELOPE_OK);
	fl_buf_fini(&env);
}
END_TEST

/*
 * A and B share one crypto_box key. An attacker reflects A's message to B
 * back at A with the sender field set to B: A decrypts it with the A-B key,
 * and only the signed recipient field catches it.
 */
START_TEST(reflection_refused_by_recipient)
{
	struct fl_buf env = FL_BUF_INIT;
	struct forge f;

	seal(&A, &B, "to B", &env);
	memcpy(env.data + 5, B.pk, 32);
	ck_assert_int_eq(open_buf(&A, &env), FL_ENVELOPE_RECIPIENT);
	/* A signed message to C, boxed for B (a confused or malicious A). */
	f = honest(&A, &B, 7, "meant for C");
	f.recipient = C.pk;
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_RECIPIENT);
	fl_buf_fini(&env);
}
END_TEST

START_TEST(bad_signatures)
{
	struct fl_buf env = FL_BUF_INIT;
	uint8_t inner[512], xpk[32], xsk[32];
	struct forge f;
	size_t ilen;

	/* Header says A, box is A-B's, but the signature is C's. */
	f = honest(&A, &B, 1, "signed by the wrong key");
	f.sign_sk = C.sk;
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_SIGNATURE);
	/* B itself can box as A (same shared key) but cannot sign as A. */
	f = honest(&A, &B, 2, "B impersonating A to B");
	f.box_pk = A.pk;
	f.box_sk = B.sk;
	f.sign_sk = B.sk;
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_SIGNATURE);
	/* A holder of the box key re-encrypts A's message with a bumped seq. */
	seal(&A, &B, "run this once", &env);
	ilen = env.len - 77;
	ck_assert(unbox(&B, &env, inner));
	put64(inner + 33, get64(inner + 33) + 1000);
	ck_assert_int_eq(crypto_sign_ed25519_pk_to_curve25519(xpk, A.pk), 0);
	crypto_sign_ed25519_sk_to_curve25519(xsk, B.sk);
	ck_assert_int_eq(crypto_box_easy((uint8_t *)env.data + 61, inner, ilen,
	                                 (uint8_t *)env.data + 37, xpk, xsk),
	                 0);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_SIGNATURE);
	/* The signature covers the nonce too (a re-boxed copy under a new nonce). */
	seal(&A, &B, "nonce", &env);
	ilen = env.len - 77;
	ck_assert(unbox(&B, &env, inner));
	env.data[40] ^= 1;
	ck_assert_int_eq(crypto_box_easy((uint8_t *)env.data + 61, inner, ilen,
	                                 (uint8_t *)env.data + 37, xpk, xsk),
	                 0);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_SIGNATURE);
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_SIGNATURE), 4);
	fl_buf_fini(&env);
}
END_TEST

START_TEST(malformed_inner)
{
	struct fl_buf env = FL_BUF_INIT;
	struct forge f;

	f = honest(&A, &B, 1, "inner says version 2");
	f.inner_version = 2;
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_MALFORMED);
	f = honest(&A, &B, 2, "body_len one short");
	f.body_len--;
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_MALFORMED);
	f.body_len += 2;
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_MALFORMED);
	f.body_len = UINT32_MAX;
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_MALFORMED);
	f = honest(&A, &B, 3, "and a good one after all that");
	forge(&f, &env);
	ck_assert_int_eq(open_buf(&B, &env), FL_ENVELOPE_OK);
	fl_buf_fini(&env);
}
END_TEST

START_TEST(replays_refused)
{
	struct fl_buf m1 = FL_BUF_INIT, m2 = FL_BUF_INIT;
	struct forge f;

	seal(&A, &B, "first", &m1);
	seal(&A, &B, "second", &m2);
	ck_assert_int_eq(open_buf(&B, &m1), FL_ENVELOPE_OK);
	ck_assert_int_eq(open_buf(&B, &m1), FL_ENVELOPE_REPLAY); /* the same twice */
	ck_assert_int_eq(open_buf(&B, &m2), FL_ENVELOPE_OK);
	/* A lower sequence number arriving late: accepted, once (the window). */
	seal(&A, &B, "third", &m1);
	seal(&A, &B, "fourth", &m2);
	ck_assert_int_eq(open_buf(&B, &m2), FL_ENVELOPE_OK);
	ck_assert_int_eq(open_buf(&B, &m1), FL_ENVELOPE_OK);
	ck_assert_int_eq(open_buf(&B, &m1), FL_ENVELOPE_REPLAY);
	ck_assert_int_eq(open_buf(&B, &m2), FL_ENVELOPE_REPLAY);
	/* Equal to the last, and zero, freshly signed. */
	f = honest(&A, &B, (uint64_t)T0 + 3, "equal");
	forge(&f, &m1);
	ck_assert_int_eq(open_buf(&B, &m1), FL_ENVELOPE_REPLAY);
	f = honest(&A, &B, 0, "zero");
	forge(&f, &m1);
	ck_assert_int_eq(open_buf(&B, &m1), FL_ENVELOPE_REPLAY);
	f = honest(&A, &B, (uint64_t)T0 + 4, "next");
	forge(&f, &m1);
	ck_assert_int_eq(open_buf(&B, &m1), FL_ENVELOPE_OK);
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_REPLAY), 5);
	fl_buf_fini(&m1);
	fl_buf_fini(&m2);
}
END_TEST

/* Open at `to` and return errbuf's text (the envelope must be refused). */
static void refused_why(struct node *to, const struct fl_buf *b, char *err)
{
	struct fl_envelope_opened o;

	fl_envelope_opened_init(&o);
	ck_assert_int_eq(fl_envelope_open(to->ep, b->data, b->len, 0, &o, NULL, err), FL_EAUTH);
	fl_envelope_opened_fini(&o);
}

/*
 * One sender with several requests in flight: they may be opened in another
 * order than sealed (two sockets, two TCP connections, parallel opening
 * threads). Up to FL_PEERS_REPLAY_WINDOW later ones may overtake a message;
 * each is accepted exactly once. Before the window, every overtaken one was
 * refused as a replay.
 */
START_TEST(out_of_order_within_the_window)
{
	enum { W = FL_PEERS_REPLAY_WINDOW };
	struct fl_buf m[W + 2];
	char err[FL_ERRBUF_SIZE] = "", want[256];
	uint64_t first;

	for (int i = 0; i < W + 2; i++)
		fl_buf_init(&m[i], 0);
	/* Sealed 0 .. W, opened W .. 0: the first is overtaken by W. */
	for (int i = 0; i <= W; i++)
		seal(&A, &B, "in flight", &m[i]);
	for (int i = W; i >= 0; i--)
		ck_assert_msg(open_buf(&B, &m[i]) == FL_ENVELOPE_OK, "message %d", i);
	for (int i = 0; i <= W; i++)
		ck_assert_msg(open_buf(&B, &m[i]) == FL_ENVELOPE_REPLAY, "message %d again", i);
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_OK), W + 1);
	refused_why(&B, &m[5], err);
	snprintf(want, sizeof(want), "seq %llu accepted already (highest accepted %llu)",
	         (unsigned long long)T0 + 5, (unsigned long long)T0 + W);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);

	/* Sealed 0 .. W + 1; the first comes after the W + 1 others: refused
	 * (older than the window), and the sender has to seal it again. */
	for (int i = 0; i < W + 2; i++)
		seal(&A, &B, "in flight", &m[i]);
	first = (uint64_t)T0 + W + 1;
	for (int i = 1; i < W + 2; i++)
		ck_assert_int_eq(open_buf(&B, &m[i]), FL_ENVELOPE_OK);
	ck_assert_int_eq(open_buf(&B, &m[0]), FL_ENVELOPE_REPLAY);
	refused_why(&B, &m[0], err);
	snprintf(
	    want, sizeof(want),
	    "seq %llu older than the replay window (refused up to %llu, highest accepted %llu)",
	    (unsigned long long)first, (unsigned long long)first + 1,
	    (unsigned long long)first + W + 1);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);

	/* Replies the other way, to an agent's two sockets, the same. */
	seal(&B, &A, "reply to the report", &m[0]);
	seal(&B, &A, "reply to the poll", &m[1]);
	ck_assert_int_eq(open_buf(&A, &m[1]), FL_ENVELOPE_OK);
	ck_assert_int_eq(open_buf(&A, &m[0]), FL_ENVELOPE_OK);
	ck_assert_int_eq(open_buf(&A, &m[0]), FL_ENVELOPE_REPLAY);
	ck_assert_int_eq(open_buf(&A, &m[1]), FL_ENVELOPE_REPLAY);
	for (int i = 0; i < W + 2; i++)
		fl_buf_fini(&m[i]);
}
END_TEST

START_TEST(replay_across_restart)
{
	struct fl_buf m1 = FL_BUF_INIT, m2 = FL_BUF_INIT;

	seal(&A, &B, "before restart", &m1);
	seal(&A, &B, "also before, never delivered", &m2);
	ck_assert_int_eq(open_buf(&B, &m2), FL_ENVELOPE_OK);
	node_stop(&B);
	node_start(&B, seqpath);
	knows(&B, &A, FL_PEER_AGENT);
	ck_assert_int_eq(open_buf(&B, &m2), FL_ENVELOPE_REPLAY);
	ck_assert_int_eq(open_buf(&B, &m1), FL_ENVELOPE_REPLAY);
	seal(&A, &B, "after restart", &m1);
	ck_assert_int_eq(open_buf(&B, &m1), FL_ENVELOPE_OK);
	fl_buf_fini(&m1);
	fl_buf_fini(&m2);
}
END_TEST

/* The receiver dies right after accepting (no sync, no close). */
START_TEST(replay_across_crash)
{
	struct fl_buf m = FL_BUF_INIT;
	pid_t pid;
	int status;

	seal(&A, &B, "accepted, then the receiver crashed", &m);
	node_stop(&B); /* the child opens the file afresh */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct fl_envelope_opened o;
		struct fl_peers *p = NULL;
		struct fl_identity *id = fl_identity_new_from_seed(B.seed);
		struct fl_envelope *ep;

		if (fl_peers_new(id, seqpath, 0, 0, &p, NULL) != FL_OK ||
		    fl_peers_add(p, A.pk, FL_PEER_AGENT, "agent-a", NULL) != FL_OK)
			_exit(1);
		ep = fl_envelope_new(id, p);
		fl_envelope_set_clock(ep, node_clock, &B);
		fl_envelope_opened_init(&o);
		_exit(fl_envelope_open(ep, m.data, m.len, 0, &o, NULL, NULL) == FL_OK ? 0 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	node_start(&B, seqpath);
	knows(&B, &A, FL_PEER_AGENT);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_REPLAY);
	fl_buf_fini(&m);
}
END_TEST

START_TEST(skew_both_ways)
{
	struct fl_buf m = FL_BUF_INIT;
	struct fl_peer_info info;
	const int64_t w = (int64_t)FL_ENVELOPE_SKEW_MS * 1000;

	ck_assert_int_eq(FL_ENVELOPE_SKEW_MS, 300000);
	A.now_us = T0 - w - 1000; /* sender 5 min + 1 ms behind */
	seal(&A, &B, "from the past", &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_SKEW);
	ck_assert_int_eq(fl_peers_find(B.peers, A.pk, &info), FL_OK);
	ck_assert_uint_eq(info.last_seq, 0); /* a skewed message does not count */
	A.now_us = T0 + w + 1000;            /* ahead */
	seal(&A, &B, "from the future", &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_SKEW);
	/* Exactly at the edges: accepted. */
	A.now_us = T0 - w;
	seal(&A, &B, "just in time", &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_OK);
	A.now_us = T0 + w;
	seal(&A, &B, "just early enough", &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_OK);
	/* The receiver's clock moves instead: the same bytes go stale. */
	seal(&A, &B, "delayed in transit", &m);
	B.now_us = T0 + 2 * w + 1000;
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_SKEW);
	/* A narrower window. */
	fl_envelope_set_skew_ms(B.ep, 1000);
	B.now_us = T0;
	A.now_us = T0 + w + 2000000;
	seal(&A, &B, "two seconds ahead", &m);
	B.now_us = A.now_us - 2000000;
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_SKEW);
	B.now_us = A.now_us - 1000000;
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_OK);
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_SKEW), 4);
	fl_buf_fini(&m);
}
END_TEST

START_TEST(extreme_timestamps)
{
	struct fl_buf m = FL_BUF_INIT;
	struct forge f;

	f = honest(&A, &B, 1, "min");
	f.ts_ms = INT64_MIN;
	forge(&f, &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_SKEW);
	f = honest(&A, &B, 2, "max");
	f.ts_ms = INT64_MAX;
	forge(&f, &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_SKEW);
	B.now_us = INT64_MIN + 1;
	f.ts_ms = INT64_MAX;
	forge(&f, &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_SKEW);
	fl_buf_fini(&m);
}
END_TEST

START_TEST(oversize)
{
	struct fl_buf m = FL_BUF_INIT;
	size_t big = FL_ENVELOPE_MAX_SIZE - FL_ENVELOPE_OVERHEAD;
	char *body = malloc(big + 2), err[FL_ERRBUF_SIZE] = "";

	memset(body, 'q', big + 1);
	body[big + 1] = '\0';
	/* Exactly 1 MiB passes the default cap; one byte more does not. */
	ck_assert_int_eq(fl_envelope_seal(A.ep, B.pk, body, big, &m, err), FL_OK);
	ck_assert_uint_eq(m.len, FL_ENVELOPE_MAX_SIZE);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_OK);
	seal(&A, &B, body, &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_OVERSIZE);
	ck_assert_int_eq(open_at(&B, m.data, m.len, FL_ENVELOPE_MAX_SIZE_BUNDLE), FL_ENVELOPE_OK);
	/* A caller's own cap, and the endpoint's default changed. */
	seal(&A, &B, "small", &m);
	ck_assert_int_eq(open_at(&B, m.data, m.len, m.len - 1), FL_ENVELOPE_OVERSIZE);
	ck_assert_int_eq(open_at(&B, m.data, m.len, m.len), FL_ENVELOPE_OK);
	fl_envelope_set_max_size(B.ep, FL_ENVELOPE_OVERHEAD + 4);
	seal(&A, &B, "small", &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_OVERSIZE);
	/* Oversize is checked before anything is decrypted: garbage of that size. */
	memset(m.data + 4, 0xee, m.len - 4);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_OVERSIZE);
	free(body);
	fl_buf_fini(&m);
}
END_TEST

START_TEST(seal_errors)
{
	struct fl_buf m = FL_BUF_INIT, small;
	char err[FL_ERRBUF_SIZE] = "";

	/* B does not know C. */
	ck_assert_int_eq(fl_envelope_seal(B.ep, C.pk, "x", 1, &m, err), FL_ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "unknown recipient"));
	ck_assert_int_eq(fl_envelope_seal(A.ep, B.pk, "x", FL_ENVELOPE_MAX_SIZE_BUNDLE, &m, err),
	                 FL_EINVAL);
	ck_assert_int_eq(fl_envelope_seal(A.ep, B.pk, NULL, 5, &m, err), FL_EINVAL);
	fl_buf_init(&small, 100);
	ck_assert_int_eq(fl_envelope_seal(A.ep, B.pk, "x", 1, &small, err), FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "does not fit"));
	ck_assert_uint_eq(small.len, 0);
	fl_buf_fini(&small);
	fl_buf_fini(&m);
}
END_TEST

START_TEST(sequence_numbers_follow_the_clock)
{
	struct fl_buf m = FL_BUF_INIT;
	uint8_t inner[256];
	uint64_t seqs[5];
	const int64_t clocks[5] = {T0, T0, T0 - 10000000, T0 + 5000000, T0 + 5000000};

	for (int i = 0; i < 5; i++) {
		A.now_us = clocks[i];
		seal(&A, &B, "n", &m);
		ck_assert(unbox(&B, &m, inner));
		seqs[i] = get64(inner + 33);
	}
	ck_assert_uint_eq(seqs[0], (uint64_t)T0);
	ck_assert_uint_eq(seqs[1], (uint64_t)T0 + 1);
	ck_assert_uint_eq(seqs[2], (uint64_t)T0 + 2); /* clock went back: still up */
	ck_assert_uint_eq(seqs[3], (uint64_t)T0 + 5000000);
	ck_assert_uint_eq(seqs[4], (uint64_t)T0 + 5000001);
	/* A sender restart (fresh memory) stays above thanks to the clock. */
	node_stop(&A);
	node_start(&A, NULL);
	knows(&A, &B, FL_PEER_COORDINATOR);
	A.now_us = T0 + 6000000;
	seal(&A, &B, "after restart", &m);
	ck_assert(unbox(&B, &m, inner));
	ck_assert_uint_eq(get64(inner + 33), (uint64_t)T0 + 6000000);
	fl_buf_fini(&m);
}
END_TEST

/* The peer gets the same few bytes whatever went wrong. */
START_TEST(refusal_is_constant)
{
	struct fl_buf m = FL_BUF_INIT, r1 = FL_BUF_INIT, r2 = FL_BUF_INIT;
	struct fl_envelope_opened o;
	enum fl_envelope_reason why;

	fl_envelope_opened_init(&o);
	ck_assert_int_eq(fl_envelope_refusal(&r1), FL_OK);
	ck_assert_uint_eq(r1.len, 5);
	ck_assert_mem_eq(r1.data, "FLT\x01\x00", 5);
	ck_assert(fl_envelope_is_refusal(r1.data, r1.len));
	for (int i = 0; i < 4; i++) {
		seal(&A, &B, "x", &m);
		if (i == 0)
			m.data[0] ^= 1;
		else if (i == 1)
			m.data[70] ^= 1;
		else if (i == 2)
			m.len = 10;
		if (i == 3) /* accepted once, then replayed */
			ck_assert_int_eq(fl_envelope_open(B.ep, m.data, m.len, 0, &o, &why, NULL),
			                 FL_OK);
		ck_assert_int_eq(fl_envelope_open(B.ep, m.data, m.len, 0, &o, &why, NULL),
		                 FL_EAUTH);
		ck_assert_int_ne(why, FL_ENVELOPE_OK);
		ck_assert_int_eq(fl_envelope_refusal(&r2), FL_OK);
		ck_assert_uint_eq(r2.len, r1.len);
		ck_assert_mem_eq(r2.data, r1.data, r1.len);
	}
	/* The refusal is not an envelope, and not mistaken for one. */
	ck_assert_int_eq(open_at(&A, r1.data, r1.len, 0), FL_ENVELOPE_TRUNCATED);
	seal(&A, &B, "x", &m);
	ck_assert(!fl_envelope_is_refusal(m.data, m.len));
	ck_assert(!fl_envelope_is_refusal(r1.data, 4));
	fl_envelope_opened_fini(&o);
	fl_buf_fini(&m);
	fl_buf_fini(&r1);
	fl_buf_fini(&r2);
}
END_TEST

START_TEST(reasons_stable_and_counted)
{
	static const char *const names[FL_ENVELOPE_REASON_COUNT] = {
	    "ok",      "truncated", "oversize",     "bad-magic",     "version",   "unknown-sender",
	    "revoked", "decrypt",   "malformed",    "recipient",     "signature", "replay",
	    "skew",    "store",     "rate-limited", "not-enrollment"};

	for (int i = 0; i < FL_ENVELOPE_REASON_COUNT; i++)
		ck_assert_str_eq(fl_envelope_reason_name((enum fl_envelope_reason)i), names[i]);
	ck_assert_str_eq(fl_envelope_reason_name((enum fl_envelope_reason)99), "unknown");
	ck_assert_int_eq(FL_ENVELOPE_SKEW, 12);
	ck_assert_int_eq(FL_ENVELOPE_STORE, 13);
	ck_assert_int_eq(FL_ENVELOPE_RATE_LIMITED, 14);
	ck_assert_int_eq(FL_ENVELOPE_NOT_ENROLLMENT, 15);
	ck_assert_uint_eq(fl_envelope_count(B.ep, (enum fl_envelope_reason)99), 0);
	for (int i = 0; i < FL_ENVELOPE_REASON_COUNT; i++)
		ck_assert_uint_eq(fl_envelope_count(B.ep, (enum fl_envelope_reason)i), 0);
	ck_assert_int_eq(open_at(&B, "FLT", 3, 0), FL_ENVELOPE_TRUNCATED);
	ck_assert_int_eq(open_at(&B, "FLT", 3, 0), FL_ENVELOPE_TRUNCATED);
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_TRUNCATED), 2);
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_OK), 0);
}
END_TEST

/* One line per refusal, precise, naming the sender, never the body. */
START_TEST(refusal_logged_once_without_the_body)
{
	struct fl_buf m = FL_BUF_INIT;
	char log[4096] = "", err[FL_ERRBUF_SIZE] = "", want[256];
	struct fl_envelope_opened o;
	int saved = dup(2), fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;
	int lines = 0;

	fl_envelope_opened_init(&o);
	fl_log_set_level(FL_LOG_WARN);
	seal(&A, &B, "SECRET-BODY-TEXT", &m);
	ck_assert_int_eq(fl_envelope_open(B.ep, m.data, m.len, 0, &o, NULL, err), FL_OK);
	fflush(stderr);
	ck_assert_int_ge(dup2(fd, 2), 0);
	ck_assert_int_ne(fl_envelope_open(B.ep, m.data, m.len, 0, &o, NULL, err), FL_OK);
	m.data[5] ^= 0x80;
	ck_assert_int_ne(fl_envelope_open(B.ep, m.data, m.len, 0, &o, NULL, NULL), FL_OK);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	fd = open(logpath, O_RDONLY);
	n = read(fd, log, sizeof(log) - 1);
	close(fd);
	ck_assert_int_gt(n, 0);
	for (char *c = log; *c; c++)
		lines += *c == '\n';
	ck_assert_int_eq(lines, 2);
	snprintf(want, sizeof(want),
	         "agent 'agent-a' (%s): envelope refused: replay: seq %lld accepted already "
	         "(highest accepted %lld)",
	         fl_identity_key_id(A.id), (long long)T0, (long long)T0);
	ck_assert_str_eq(err, want);
	ck_assert_msg(strncmp(log, "flotilla: warning: ", 19) == 0, "%s", log);
	ck_assert_msg(strncmp(log + 19, want, strlen(want)) == 0 && log[19 + strlen(want)] == '\n',
	              "%s", log);
	ck_assert_ptr_nonnull(strstr(log, "(unverified): envelope refused: unknown-sender"));
	ck_assert_ptr_null(strstr(log, "SECRET"));
	fl_envelope_opened_fini(&o);
	fl_buf_fini(&m);
}
END_TEST

/* Anyone who can reach the port can cause refusals: every one is counted, but
 * their log lines are rate-limited so they cannot flood the log. */
START_TEST(refusal_logging_is_rate_limited)
{
	static const uint8_t junk[8] = "FLT\x01\x01xyz";
	char log[16384] = "";
	struct fl_envelope_opened o;
	int saved = dup(2), fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	uint64_t before = fl_envelope_count(B.ep, FL_ENVELOPE_TRUNCATED);
	ssize_t n;
	int lines = 0;

	fl_envelope_opened_init(&o);
	fl_log_set_level(FL_LOG_WARN);
	fflush(stderr);
	ck_assert_int_ge(dup2(fd, 2), 0);
	for (int i = 0; i < 200; i++)
		ck_assert_int_ne(fl_envelope_open(B.ep, junk, sizeof(junk), 0, &o, NULL, NULL),
		                 FL_OK);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	fd = open(logpath, O_RDONLY);
	n = read(fd, log, sizeof(log) - 1);
	close(fd);
	ck_assert_int_gt(n, 0);
	for (char *c = log; *c; c++)
		lines += *c == '\n';
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_TRUNCATED) - before, 200);
	/* At most two windows' worth (the loop may straddle a second), plus the
	 * "not logged" line that opens the second window. */
	ck_assert_int_le(lines, 21);
	ck_assert_int_ge(lines, 10);
	fl_envelope_opened_fini(&o);
}
END_TEST

/* A packed Message{hello{agent_id, enrollment_token}} (token NULL: none), or a poll. */
static void hello_body(const char *token, bool poll, struct fl_buf *out)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Hello h = FLOTILLA__V1__HELLO__INIT;
	Flotilla__V1__Poll p = FLOTILLA__V1__POLL__INIT;
	char err[FL_ERRBUF_SIZE] = "";

	h.agent_id = "db-new";
	h.enrollment_token = token ? (char *)token : (char *)"";
	if (poll) {
		m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
		m.poll = &p;
	} else {
		m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
		m.hello = &h;
	}
	fl_buf_reset(out);
	ck_assert_msg(fl_wire_pack(&m, out, FL_WIRE_MAX_MESSAGE, err) == FL_OK, "%s", err);
}

static void seal_body(struct node *from, const struct node *to, const struct fl_buf *body,
                      struct fl_buf *out)
{
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(fl_envelope_seal(from->ep, to->pk, body->data, body->len, out, err) == FL_OK,
	              "%s", err);
}

/* Try to enroll with the envelope in b at `to`; the reason. *seq gets the
 * envelope's sequence number when accepted. */
static enum fl_envelope_reason enroll_at(struct node *to, const struct fl_buf *b, uint64_t *seq)
{
	struct fl_envelope_opened o;
	Flotilla__V1__Message *hello = (Flotilla__V1__Message *)&o; /* not NULL */
	enum fl_envelope_reason r = (enum fl_envelope_reason) - 1;
	char err[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;

	fl_envelope_opened_init(&o);
	rv = fl_envelope_open_enroll(to->ep, b->data, b->len, &o, &hello, &r, err);
	ck_assert_int_ne((int)r, -1);
	if (r == FL_ENVELOPE_OK) {
		ck_assert_int_eq(rv, FL_OK);
		ck_assert_ptr_nonnull(hello);
		ck_assert_int_eq(hello->body_case, FLOTILLA__V1__MESSAGE__BODY_HELLO);
		ck_assert_str_eq(hello->hello->enrollment_token, "fle1.the-token");
		ck_assert_int_eq(o.sender.role, FL_PEER_NONE);
		ck_assert_ptr_nonnull(o.body);
		if (seq)
			*seq = o.seq;
	} else {
		ck_assert_int_eq(rv, FL_EAUTH);
		ck_assert_ptr_null(hello);
		ck_assert_ptr_null(o.body);
		ck_assert_ptr_nonnull(strstr(err, fl_envelope_reason_name(r)));
	}
	fl_wire_free(hello);
	fl_envelope_opened_fini(&o);
	return r;
}

/* An agent whose key is not enrolled could never enroll: its Hello, token
 * and all, was refused as unknown-sender before anyone read the token.
 * open_enroll opens it with the claimed key, and stores nothing until the
 * caller has consumed the token and approved the key. */
START_TEST(enrollment_opens_an_unknown_keys_hello)
{
	struct fl_buf body = FL_BUF_INIT, m = FL_BUF_INIT, reply = FL_BUF_INIT;
	struct fl_peer_info info;
	struct node D;
	size_t peers_before;
	uint64_t seq = 0;
	char err[FL_ERRBUF_SIZE] = "";

	fl_envelope_set_enroll_rate(B.ep, FL_ENVELOPE_ENROLL_RATE, FL_ENVELOPE_ENROLL_BURST);
	node_init(&D, 0xd4, "agent-d", NULL);
	knows(&D, &B, FL_PEER_COORDINATOR);
	hello_body("fle1.the-token", false, &body);
	seal_body(&D, &B, &body, &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_UNKNOWN_SENDER);
	peers_before = fl_peers_count(B.peers);
	ck_assert_int_eq(enroll_at(&B, &m, &seq), FL_ENVELOPE_OK);
	ck_assert_uint_gt(seq, 0);
	/* Nothing kept: not a peer, no record, and the same bytes open again. */
	ck_assert_int_eq(fl_peers_find(B.peers, D.pk, &info), FL_ENOENT);
	ck_assert_uint_eq(fl_peers_count(B.peers), peers_before);
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_OK);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_UNKNOWN_SENDER);
	/* The token checked out (the caller's job): approved with that seq. */
	ck_assert_int_eq(fl_peers_enroll(B.peers, D.pk, "agent-d", seq, err), FL_OK);
	ck_assert_int_eq(fl_peers_find(B.peers, D.pk, &info), FL_OK);
	ck_assert_int_eq(info.role, FL_PEER_AGENT);
	ck_assert_uint_eq(info.last_seq, seq);
	/* The enrollment envelope is spent both ways. */
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_NOT_ENROLLMENT);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_REPLAY);
	/* A second enrollment of the key is refused; the agent now talks. */
	ck_assert_int_eq(fl_peers_enroll(B.peers, D.pk, "agent-d", seq + 1, err), FL_ESTATE);
	D.now_us += 1000;
	seal(&D, &B, "poll", &m);
	ck_assert_int_eq(open_buf(&B, &m), FL_ENVELOPE_OK);
	ck_assert_int_eq(fl_envelope_seal(B.ep, D.pk, "ok", 2, &reply, err), FL_OK);
	ck_assert_int_eq(open_buf(&D, &reply), FL_ENVELOPE_OK);
	node_stop(&D);
	fl_buf_fini(&body);
	fl_buf_fini(&m);
	fl_buf_fini(&reply);
}
END_TEST

START_TEST(enrollment_refuses_anything_else)
{
	struct fl_buf body = FL_BUF_INIT, m = FL_BUF_INIT;
	struct node D;
	char *big;
	char err[FL_ERRBUF_SIZE] = "";

	node_init(&D, 0xd4, "agent-d", NULL);
	knows(&D, &B, FL_PEER_COORDINATOR);
	hello_body("fle1.the-token", false, &body);
	seal_body(&D, &B, &body, &m);
	/* Off unless the endpoint turns it on (agents never do). */
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_RATE_LIMITED);
	fl_envelope_set_enroll_rate(B.ep, 1000, 1000);
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_OK);
	/* Only a Hello carrying a token. */
	hello_body(NULL, false, &body);
	seal_body(&D, &B, &body, &m);
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_NOT_ENROLLMENT);
	hello_body(NULL, true, &body);
	seal_body(&D, &B, &body, &m);
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_NOT_ENROLLMENT);
	seal(&D, &B, "not protobuf at all", &m);
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_NOT_ENROLLMENT);
	/* Checked like any envelope: a flipped bit, another recipient, skew. */
	hello_body("fle1.the-token", false, &body);
	seal_body(&D, &B, &body, &m);
	m.data[m.len - 1] ^= 1;
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_DECRYPT);
	knows(&D, &C, FL_PEER_COORDINATOR);
	seal_body(&D, &C, &body, &m);
	ck_assert_int_ne(enroll_at(&B, &m, NULL), FL_ENVELOPE_OK);
	D.now_us = T0 + (int64_t)FL_ENVELOPE_SKEW_MS * 1000 + 1000000;
	seal_body(&D, &B, &body, &m);
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_SKEW);
	D.now_us = T0;
	/* Small: no unknown sender makes us decrypt megabytes. */
	big = fl_malloc(FL_ENVELOPE_ENROLL_MAX);
	memset(big, 'x', FL_ENVELOPE_ENROLL_MAX - 1);
	big[FL_ENVELOPE_ENROLL_MAX - 1] = '\0';
	seal(&D, &B, big, &m);
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_OVERSIZE);
	free(big);
	/* A known key uses open; a revoked one cannot come back this way. */
	seal_body(&A, &B, &body, &m);
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_NOT_ENROLLMENT);
	ck_assert_int_eq(fl_peers_revoke(B.peers, D.pk, err), FL_OK);
	seal_body(&D, &B, &body, &m);
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_REVOKED);
	ck_assert_int_eq(fl_peers_enroll(B.peers, D.pk, "agent-d", 1, err), FL_ESTATE);
	node_stop(&D);
	fl_buf_fini(&body);
	fl_buf_fini(&m);
}
END_TEST

/* Each attempt costs a key exchange before anything is known of the sender:
 * 5 a second, bursts of 20, per endpoint, on the endpoint's clock. */
START_TEST(enrollment_rate_limited)
{
	struct fl_buf m = FL_BUF_INIT;
	int ok = 0;

	fl_envelope_set_enroll_rate(B.ep, FL_ENVELOPE_ENROLL_RATE, FL_ENVELOPE_ENROLL_BURST);
	seal(&A, &B, "x", &m);
	m.len = 100; /* truncated: refused right after the bucket */
	for (int i = 0; i < 100; i++)
		if (enroll_at(&B, &m, NULL) == FL_ENVELOPE_TRUNCATED)
			ok++;
	ck_assert_int_eq(ok, 20);
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_RATE_LIMITED), 80);
	/* 200 ms later: one more; a second later: five. */
	B.now_us += 200000;
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_TRUNCATED);
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_RATE_LIMITED);
	B.now_us += 1000000;
	for (ok = 0; ok < 10 && enroll_at(&B, &m, NULL) == FL_ENVELOPE_TRUNCATED; ok++)
		;
	ck_assert_int_eq(ok, 5);
	/* An hour idle refills the burst, no more; a clock stepped back adds none. */
	B.now_us += INT64_C(3600) * 1000000;
	for (ok = 0; ok < 100 && enroll_at(&B, &m, NULL) == FL_ENVELOPE_TRUNCATED; ok++)
		;
	ck_assert_int_eq(ok, 20);
	B.now_us -= INT64_C(60) * 1000000;
	ck_assert_int_eq(enroll_at(&B, &m, NULL), FL_ENVELOPE_RATE_LIMITED);
	fl_buf_fini(&m);
}
END_TEST

/* A sender's role caps its envelopes before they are decrypted: an agent
 * sends nothing over FL_WIRE_MAX_HELLO, whatever the caller allows. */
START_TEST(role_caps_envelopes)
{
	struct fl_buf m = FL_BUF_INIT;
	size_t n = FL_WIRE_MAX_HELLO + 1;
	char *body = fl_malloc(n + 1);

	memset(body, 'x', n);
	body[n] = '\0';
	seal(&A, &B, body, &m);
	ck_assert_int_eq(open_at(&B, m.data, m.len, FL_ENVELOPE_MAX_SIZE_BUNDLE),
	                 FL_ENVELOPE_OVERSIZE);
	body[n - 1] = '\0';
	seal(&A, &B, body, &m);
	ck_assert_int_eq(open_at(&B, m.data, m.len, FL_ENVELOPE_MAX_SIZE_BUNDLE), FL_ENVELOPE_OK);
	/* The coordinator's largest message holds a whole release. */
	free(body);
	n = FL_WIRE_MAX_RELEASE_MESSAGE;
	body = fl_malloc(n + 1);
	memset(body, 'y', n);
	body[n] = '\0';
	seal(&B, &A, body, &m);
	ck_assert_uint_eq(m.len, FL_ENVELOPE_MAX_SIZE_BUNDLE);
	ck_assert_int_eq(open_at(&A, m.data, m.len, FL_ENVELOPE_MAX_SIZE_BUNDLE), FL_ENVELOPE_OK);
	free(body);
	fl_buf_fini(&m);
}
END_TEST

/* Several senders into one endpoint from several threads at once. */
struct sender_job {
	struct node n;
	int ok;
};

static void *send_many(void *arg)
{
	struct sender_job *j = arg;
	struct fl_buf m = FL_BUF_INIT;
	struct fl_envelope_opened o;
	char body[64];

	fl_envelope_opened_init(&o);
	for (int i = 0; i < 200; i++) {
		snprintf(body, sizeof(body), "%s %d", j->n.name, i);
		if (fl_envelope_seal(j->n.ep, B.pk, body, strlen(body), &m, NULL) != FL_OK)
			break;
		if (fl_envelope_open(B.ep, m.data, m.len, 0, &o, NULL, NULL) != FL_OK ||
		    o.body_len != strlen(body) || memcmp(o.body, body, o.body_len) != 0)
			break;
		j->ok++;
	}
	fl_envelope_opened_fini(&o);
	fl_buf_fini(&m);
	return NULL;
}

START_TEST(concurrent_senders)
{
	struct sender_job jobs[4];
	pthread_t t[4];
	char name[16];

	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "agent-t%d", i);
		node_init(&jobs[i].n, (uint8_t)(0x10 + i), name, NULL);
		jobs[i].ok = 0;
		knows(&jobs[i].n, &B, FL_PEER_COORDINATOR);
		knows(&B, &jobs[i].n, FL_PEER_AGENT);
	}
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, send_many, &jobs[i]), 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(jobs[i].ok, 200);
		node_stop(&jobs[i].n);
	}
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_OK), 800);
}
END_TEST

/*
 * Several threads seal to one receiver with one sender key, and several
 * threads of the receiver open what they sealed in a random order, each
 * envelope twice (a replay racing its original). Flow control as a real
 * sender's: a message is sealed only while fewer than W sealed before it
 * are still unopened, so none is overtaken by more than the window holds,
 * however the threads are scheduled. Every envelope must be accepted
 * exactly once, every copy refused as a replay, and nothing else refused.
 */
#define CC_TOTAL   1500
#define CC_THREADS 4

struct cc {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct fl_buf env[CC_TOTAL];
	int pool[2 * CC_TOTAL]; /* indexes of envelopes waiting to be opened */
	size_t npool, sealed, taken, low, expected;
	bool accepted[CC_TOTAL];
	int oks[CC_TOTAL], replays[CC_TOTAL], fails[CC_TOTAL], others;
	uint64_t seq[CC_TOTAL];
};

static struct cc *cc;

static void *cc_seal(void *arg)
{
	char body[32], err[FL_ERRBUF_SIZE];

	(void)arg;
	pthread_mutex_lock(&cc->mu);
	for (;;) {
		size_t i;

		while (cc->sealed < CC_TOTAL && cc->sealed >= cc->low + FL_PEERS_REPLAY_WINDOW)
			pthread_cond_wait(&cc->cv, &cc->mu);
		if (cc->sealed == CC_TOTAL)
			break;
		i = cc->sealed++;
		/* Under the lock, so index order is sequence number order. */
		snprintf(body, sizeof(body), "request %zu", i);
		if (fl_envelope_seal_seq(A.ep, B.pk, body, strlen(body), &cc->env[i], &cc->seq[i],
		                         err) != FL_OK) {
			cc->others++; /* and let the others finish */
			cc->accepted[i] = true;
			cc->expected -= 2;
			while (cc->low < CC_TOTAL && cc->accepted[cc->low])
				cc->low++;
		} else {
			cc->pool[cc->npool++] = (int)i;
			cc->pool[cc->npool++] = (int)i;
		}
		pthread_cond_broadcast(&cc->cv);
	}
	pthread_mutex_unlock(&cc->mu);
	return NULL;
}

static void *cc_open(void *arg)
{
	struct fl_envelope_opened o;
	enum fl_envelope_reason r;
	char body[32];

	(void)arg;
	fl_envelope_opened_init(&o);
	pthread_mutex_lock(&cc->mu);
	for (;;) {
		size_t j;
		int i;
		bool ok;

		while (cc->npool == 0 && cc->taken < cc->expected)
			pthread_cond_wait(&cc->cv, &cc->mu);
		if (cc->npool == 0)
			break;
		j = randombytes_uniform((uint32_t)cc->npool);
		i = cc->pool[j];
		cc->pool[j] = cc->pool[--cc->npool];
		cc->taken++;
		pthread_mutex_unlock(&cc->mu);

		snprintf(body, sizeof(body), "request %d", i);
		r = (enum fl_envelope_reason) - 1;
		ok = fl_envelope_open(B.ep, cc->env[i].data, cc->env[i].len, 0, &o, &r, NULL) ==
		         FL_OK &&
		     o.seq == cc->seq[i] && o.body_len == strlen(body) &&
		     memcmp(o.body, body, o.body_len) == 0;

		pthread_mutex_lock(&cc->mu);
		if (ok) {
			cc->oks[i]++;
			cc->accepted[i] = true;
			while (cc->low < CC_TOTAL && cc->accepted[cc->low])
				cc->low++;
		} else {
			if (r == FL_ENVELOPE_REPLAY)
				cc->replays[i]++;
			else
				cc->others++;
			/* Both copies refused: lost. Let the sealers go on, so
			 * that the test fails rather than hangs. */
			if (++cc->fails[i] == 2) {
				cc->accepted[i] = true;
				while (cc->low < CC_TOTAL && cc->accepted[cc->low])
					cc->low++;
			}
		}
		pthread_cond_broadcast(&cc->cv);
	}
	pthread_cond_broadcast(&cc->cv);
	pthread_mutex_unlock(&cc->mu);
	fl_envelope_opened_fini(&o);
	return NULL;
}

START_TEST(concurrent_out_of_order_opens)
{
	pthread_t sealers[CC_THREADS], openers[CC_THREADS];

	cc = fl_calloc(1, sizeof(*cc));
	pthread_mutex_init(&cc->mu, NULL);
	pthread_cond_init(&cc->cv, NULL);
	cc->expected = 2 * CC_TOTAL;
	for (int i = 0; i < CC_TOTAL; i++)
		fl_buf_init(&cc->env[i], 0);
	for (int t = 0; t < CC_THREADS; t++) {
		ck_assert_int_eq(pthread_create(&sealers[t], NULL, cc_seal, NULL), 0);
		ck_assert_int_eq(pthread_create(&openers[t], NULL, cc_open, NULL), 0);
	}
	for (int t = 0; t < CC_THREADS; t++) {
		ck_assert_int_eq(pthread_join(sealers[t], NULL), 0);
		ck_assert_int_eq(pthread_join(openers[t], NULL), 0);
	}
	ck_assert_int_eq(cc->others, 0);
	for (int i = 0; i < CC_TOTAL; i++) {
		ck_assert_msg(cc->oks[i] == 1, "envelope %d accepted %d times", i, cc->oks[i]);
		ck_assert_msg(cc->replays[i] == 1, "envelope %d: %d replays", i, cc->replays[i]);
		if (i > 0)
			ck_assert_uint_gt(cc->seq[i], cc->seq[i - 1]);
	}
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_OK), CC_TOTAL);
	ck_assert_uint_eq(fl_envelope_count(B.ep, FL_ENVELOPE_REPLAY), CC_TOTAL);
	for (int r = FL_ENVELOPE_TRUNCATED; r < FL_ENVELOPE_REASON_COUNT; r++)
		if (r != FL_ENVELOPE_REPLAY)
			ck_assert_uint_eq(fl_envelope_count(B.ep, (enum fl_envelope_reason)r), 0);
	/* And after a restart, none of them opens again. */
	node_stop(&B);
	node_start(&B, seqpath);
	knows(&B, &A, FL_PEER_AGENT);
	for (int i = 0; i < CC_TOTAL; i++)
		ck_assert_int_eq(open_at(&B, cc->env[i].data, cc->env[i].len, 0),
		                 FL_ENVELOPE_REPLAY);
	for (int i = 0; i < CC_TOTAL; i++)
		fl_buf_fini(&cc->env[i]);
	pthread_cond_destroy(&cc->cv);
	pthread_mutex_destroy(&cc->mu);
	free(cc);
	cc = NULL;
}
END_TEST

static Suite *envelope_suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, make_dir, remove_dir);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 100);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, seal_follows_the_spec);
	tcase_add_test(tc, forged_by_the_spec_opens);
	tcase_add_test(tc, every_flipped_bit_refused);
	tcase_add_test(tc, every_truncation_refused);
	tcase_add_test(tc, bad_magic_and_version);
	tcase_add_test(tc, unknown_sender);
	tcase_add_test(tc, revoked_sender);
	tcase_add_test(tc, sealed_for_another_receiver);
	tcase_add_test(tc, reflection_refused_by_recipient);
	tcase_add_test(tc, bad_signatures);
	tcase_add_test(tc, malformed_inner);
	tcase_add_test(tc, replays_refused);
	tcase_add_test(tc, out_of_order_within_the_window);
	tcase_add_test(tc, replay_across_restart);
	tcase_add_test(tc, replay_across_crash);
	tcase_add_test(tc, skew_both_ways);
	tcase_add_test(tc, extreme_timestamps);
	tcase_add_test(tc, oversize);
	tcase_add_test(tc, seal_errors);
	tcase_add_test(tc, sequence_numbers_follow_the_clock);
	tcase_add_test(tc, refusal_is_constant);
	tcase_add_test(tc, reasons_stable_and_counted);
	tcase_add_test(tc, refusal_logged_once_without_the_body);
	tcase_add_test(tc, refusal_logging_is_rate_limited);
	tcase_add_test(tc, enrollment_opens_an_unknown_keys_hello);
	tcase_add_test(tc, enrollment_refuses_anything_else);
	tcase_add_test(tc, enrollment_rate_limited);
	tcase_add_test(tc, role_caps_envelopes);
	tcase_add_test(tc, concurrent_senders);
	tcase_add_test(tc, concurrent_out_of_order_opens);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(envelope_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
