/*
 * gen_corpus: writes the seed corpora that need real keys, and checks them.
 *
 *   gen_corpus envelope_open OUTDIR            sealed envelopes, in the three
 *                                              input forms of fuzz_envelope_open
 *   gen_corpus release_decode OUTDIR MIGRATIONS release files built from a
 *                                              migrations folder and a small
 *                                              one of its own
 *   gen_corpus order_decode OUTDIR POLICY      signed orders built with a policy
 *                                              file, in fuzz_order_decode's form
 *   gen_corpus --check CORPUS                  the ok_* seeds still open and
 *                                              verify (ctest: fuzz/seeds_valid)
 *
 * Valid seeds are what lets a fuzzer past MACs and signatures; when the
 * envelope or release format changes, --check fails and the seeds must be
 * written again:
 *
 *   build/tests/fuzz/gen_corpus envelope_open tests/fuzz/corpus/envelope_open
 *   build/tests/fuzz/gen_corpus release_decode tests/fuzz/corpus/release_decode \
 *       deploy/examples/migrations
 *   build/tests/fuzz/gen_corpus order_decode tests/fuzz/corpus/order_decode \
 *       deploy/examples/policies/standard-canary.yaml
 *
 * Keys and clock come from the fixture (fuzz.h), so the seeds stay valid
 * forever; files are named ok_* when they must be accepted.
 */
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fuzz.h"
#include "keys.h"
#include "migration.h"
#include "order.h"
#include "policy.h"
#include "release.h"
#include "wire.h"

#define OUTER_LEN 61
#define MAC_LEN   16

static void die(const char *what, const char *err)
{
	fprintf(stderr, "gen_corpus: %s: %s\n", what, err);
	exit(1);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
		die(path, strerror(errno));
	printf("%s (%zu bytes)\n", path, len);
}

/* A seed for mode `mode` of fuzz_envelope_open: the mode byte, then data. */
static void write_seed(const char *dir, const char *name, int mode, const void *data, size_t len)
{
	uint8_t *buf = malloc(len + 1);

	buf[0] = (uint8_t)mode;
	memcpy(buf + 1, data, len);
	write_file(dir, name, buf, len + 1);
	free(buf);
}

static void read_file(const char *path, struct fl_buf *out)
{
	char chunk[65536];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		die(path, strerror(errno));
	fl_buf_reset(out);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (fl_buf_append(out, chunk, n) != FL_OK)
			die(path, "too large");
	fclose(f);
}

/* ---- envelopes ---- */

static void pack(const Flotilla__V1__Message *m, struct fl_buf *out)
{
	char err[FL_ERRBUF_SIZE] = "";

	fl_buf_reset(out);
	if (fl_wire_pack(m, out, FL_WIRE_MAX_MESSAGE, err) != FL_OK)
		die("fl_wire_pack", err);
}

static void poll_body(struct fl_buf *out)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Poll poll = FLOTILLA__V1__POLL__INIT;
	uint64_t running[] = {41, 42};

	poll.agent_id = "db-eu-1";
	poll.n_running_assignment_ids = 2;
	poll.running_assignment_ids = running;
	poll.free_slots = 4;
	poll.max_wait_ms = 25000;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
	m.poll = &poll;
	pack(&m, out);
}

static void hello_body(struct fl_buf *out)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Hello hello = FLOTILLA__V1__HELLO__INIT;
	Flotilla__V1__Tenant tenant = FLOTILLA__V1__TENANT__INIT, *tenants[] = {&tenant};
	Flotilla__V1__Label label = FLOTILLA__V1__LABEL__INIT, *labels[] = {&label};
	Flotilla__V1__AppliedMigration applied = FLOTILLA__V1__APPLIED_MIGRATION__INIT;
	Flotilla__V1__AppliedMigration *applieds[] = {&applied};

	label.key = "ring";
	label.value = "canary";
	applied.id = "20250101090000_init";
	applied.checksum = "6f1ed002ab5595859014ebf0951522d9a0cd3e8d2d8b9d4b3c1e0f1a2b3c4d5e";
	applied.finished_at_ms = 1699999990000;
	applied.started_at_ms = 1699999980000;
	applied.applied_steps_count = 1;
	tenant.id = "acme";
	tenant.database = "tenant_acme";
	tenant.n_labels = 1;
	tenant.labels = labels;
	tenant.n_applied = 1;
	tenant.applied = applieds;
	tenant.fingerprint = "0123456789abcdef";
	hello.agent_id = "db-eu-1";
	hello.agent_version = "0.1.0";
	hello.protocol_version = FL_PROTOCOL_VERSION;
	hello.n_tenants = 1;
	hello.tenants = tenants;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
	m.hello = &hello;
	pack(&m, out);
}

/* What the coordinator sends an agent: a PollReply with one assignment (a
 * reply: reply_to_seq set), whose unknown fields are refused. */
static void poll_reply_body(struct fl_buf *out)
{
	static uint8_t hash[32] = {7}, order[] = {0x0a, 0x02, 0x08, 0x01};
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__PollReply reply = FLOTILLA__V1__POLL_REPLY__INIT;
	Flotilla__V1__WorkAssignment work = FLOTILLA__V1__WORK_ASSIGNMENT__INIT, *works[] = {&work};

	work.assignment_id = 77;
	work.rollout_id = "r-1";
	work.wave = 1;
	work.tenant_id = "acme";
	work.release_hash.data = hash;
	work.release_hash.len = sizeof(hash);
	work.target_migration_id = "20250101090000_init";
	work.kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
	work.signed_order.data = order;
	work.signed_order.len = sizeof(order);
	reply.n_assignments = 1;
	reply.assignments = works;
	reply.poll_again_ms = 1000;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY;
	m.poll_reply = &reply;
	m.reply_to_seq = 9;
	pack(&m, out);
}

/* What an operator sends: an AdminRequest whose command only some roles may run. */
static void admin_body(struct fl_buf *out)
{
	static uint8_t order[] = {0x0a, 0x02, 0x08, 0x01};
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStartRequest start = FLOTILLA__V1__ROLLOUT_START_REQUEST__INIT;

	start.signed_order.data = order;
	start.signed_order.len = sizeof(order);
	req.request_id = 3;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_START;
	req.rollout_start = &start;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST;
	m.admin_request = &req;
	pack(&m, out);
}

static void seal(enum fuzz_seed from, const struct fl_buf *body, struct fl_buf *out)
{
	uint8_t rpk[32], rsk[64];
	struct fl_envelope *ep;
	struct fl_peers *peers;
	char err[FL_ERRBUF_SIZE] = "";

	fuzz_keypair(FUZZ_RECEIVER, rpk, rsk);
	fuzz_sender_new(from, &peers, &ep);
	if (fl_envelope_seal(ep, rpk, body->data, body->len, out, err) != FL_OK)
		die("fl_envelope_seal", err);
	fuzz_side_free(peers, ep);
}

/* The mode-1 form of a sealed envelope: its nonce and decrypted inner part. */
static void write_inner(const char *dir, const char *name, const struct fl_buf *env)
{
	uint8_t spk[32], ssk[64], rpk[32], rsk[64], xpk[32], xsk[32], k[32];
	size_t ilen = env->len - OUTER_LEN - MAC_LEN;
	const uint8_t *d = (const uint8_t *)env->data;
	uint8_t *seed = malloc(24 + ilen);

	fuzz_keypair(FUZZ_SENDER, spk, ssk);
	fuzz_keypair(FUZZ_RECEIVER, rpk, rsk);
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, spk) != 0 ||
	    crypto_sign_ed25519_sk_to_curve25519(xsk, rsk) != 0 || crypto_box_beforenm(k, xpk, xsk))
		die("keys", "cannot convert");
	memcpy(seed, d + 37, 24);
	if (crypto_box_open_detached_afternm(seed + 24, d + OUTER_LEN + MAC_LEN, d + OUTER_LEN,
	                                     ilen, d + 37, k) != 0)
		die(name, "cannot decrypt our own envelope");
	write_seed(dir, name, 1, seed, 24 + ilen);
	free(seed);
}

/* A Hello with an enrollment token, for mode 3. */
static void enroll_body(struct fl_buf *out)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Hello hello = FLOTILLA__V1__HELLO__INIT;

	hello.agent_id = "db-new";
	hello.agent_version = "0.1.0";
	hello.protocol_version = FL_PROTOCOL_VERSION;
	hello.enrollment_token = "fle1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	hello.project_id = "fuzz-app";
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
	m.hello = &hello;
	pack(&m, out);
}

static void write_message_as(const char *dir, const char *name, int mode, uint64_t seq,
                             int32_t delta_ms, const struct fl_buf *body);

/* The mode-2 form: seq, timestamp offset, body. */
static void write_message(const char *dir, const char *name, uint64_t seq, int32_t delta_ms,
                          const struct fl_buf *body)
{
	write_message_as(dir, name, 2, seq, delta_ms, body);
}

/* The mode-2 or -3 form. */
static void write_message_as(const char *dir, const char *name, int mode, uint64_t seq,
                             int32_t delta_ms, const struct fl_buf *body)
{
	uint8_t *seed = malloc(12 + body->len);
	uint32_t d = (uint32_t)delta_ms;

	for (int i = 0; i < 8; i++)
		seed[i] = (uint8_t)(seq >> (56 - 8 * i));
	seed[8] = (uint8_t)(d >> 24);
	seed[9] = (uint8_t)(d >> 16);
	seed[10] = (uint8_t)(d >> 8);
	seed[11] = (uint8_t)d;
	memcpy(seed + 12, body->data, body->len);
	write_seed(dir, name, mode, seed, 12 + body->len);
	free(seed);
}

static void gen_envelopes(const char *dir)
{
	struct fl_buf poll = FL_BUF_INIT, hello = FL_BUF_INIT, empty = FL_BUF_INIT,
	              env = FL_BUF_INIT;

	poll_body(&poll);
	hello_body(&hello);

	seal(FUZZ_SENDER, &poll, &env);
	write_seed(dir, "ok_wire_poll", 0, env.data, env.len);
	write_inner(dir, "ok_inner_poll", &env);
	env.data[OUTER_LEN + MAC_LEN + 10] ^= 0x20; /* one flipped bit: decrypt */
	write_seed(dir, "wire_flipped", 0, env.data, env.len);
	write_seed(dir, "wire_truncated", 0, env.data, 150);

	seal(FUZZ_SENDER, &hello, &env);
	write_seed(dir, "ok_wire_hello", 0, env.data, env.len);
	write_inner(dir, "ok_inner_hello", &env);

	seal(FUZZ_SENDER, &empty, &env);
	write_seed(dir, "ok_wire_empty", 0, env.data, env.len);

	seal(FUZZ_REVOKED, &poll, &env);
	write_seed(dir, "wire_revoked", 0, env.data, env.len);
	seal(FUZZ_STRANGER, &poll, &env);
	write_seed(dir, "wire_stranger", 0, env.data, env.len);

	write_message(dir, "message_poll", 1, 0, &poll);
	write_message(dir, "message_hello", 2, -1000, &hello);
	write_message(dir, "message_replay", 0, 0, &poll);
	write_message(dir, "message_skew", 7, 400000, &poll);
	enroll_body(&hello);
	write_message_as(dir, "enroll_hello", 3, 5, -2000, &hello);
	write_message_as(dir, "enroll_poll", 3, 6, 0, &poll);
	/* Bodies other roles send: the harness decodes each as every role's. */
	poll_reply_body(&poll);
	write_message(dir, "message_poll_reply", 3, 0, &poll);
	admin_body(&poll);
	write_message(dir, "message_admin_request", 4, 0, &poll);

	fl_buf_fini(&poll);
	fl_buf_fini(&hello);
	fl_buf_fini(&empty);
	fl_buf_fini(&env);
}

/* ---- releases ---- */

/* A small folder that uses every feature a bundle carries. */
static const struct {
	const char *dir, *file, *text;
} small[] = {
    {"20250101000000_init", "migration.sql", "CREATE TABLE t (id int PRIMARY KEY);\n"},
    {"20250101000000_init", "down.sql", "DROP TABLE t;\n"},
    {"20250102000000_index", "migration.sql",
     "-- flotilla:no-transaction\n-- flotilla:lock-timeout 5s\n"
     "CREATE INDEX CONCURRENTLY t_id ON t (id);\n"},
    {"20250103000000_col", "migration.sql",
     "-- flotilla:requires 20250101000000_init\n-- flotilla:phase expand\n"
     "-- flotilla:statement-timeout 10m\nALTER TABLE t ADD COLUMN n text;\n"},
    {"20250103000000_col", "verify.sql", "SELECT true\n"},
};
#define N_SMALL (sizeof(small) / sizeof(small[0]))

/* Write (make) or remove (!make) the small folder under root. */
static void small_migrations(const char *root, bool make)
{
	char path[4096];
	size_t i;

	for (i = 0; i < N_SMALL; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", root, small[i].dir);
		if (make && mkdir(path, 0700) != 0 && errno != EEXIST)
			die(path, strerror(errno));
		snprintf(path, sizeof(path), "%s/%s/%s", root, small[i].dir, small[i].file);
		if (!make) {
			unlink(path);
			continue;
		}
		f = fopen(path, "w");
		if (f == NULL || fputs(small[i].text, f) < 0 || fclose(f) != 0)
			die(path, strerror(errno));
	}
	for (i = 0; !make && i < N_SMALL; i++) {
		snprintf(path, sizeof(path), "%s/%s", root, small[i].dir);
		rmdir(path);
	}
	if (!make)
		rmdir(root);
}

static void build(const char *migrations, struct fl_buf *out)
{
	struct fl_migration_set set = {0};
	char err[FL_ERRBUF_SIZE] = "", hash[FL_RELEASE_HASH_HEX_LEN + 1];

	if (fl_migration_set_load(migrations, &set, err) != FL_OK)
		die("fl_migration_set_load", err);
	if (fl_release_build(&set, "fuzz-app", 1, out, hash, err) != FL_OK)
		die("fl_release_build", err);
	fl_migration_set_fini(&set);
}

static void sign(enum fuzz_seed seed, const struct fl_buf *in, struct fl_buf *out)
{
	uint8_t s[FL_KEY_SEED_BYTES];
	struct fl_key key;
	char err[FL_ERRBUF_SIZE] = "";

	memset(s, (int)seed, sizeof(s));
	fl_key_generate(FL_KEY_RELEASE, s, &key);
	if (fl_release_sign(in->data, in->len, &key, out, err) != FL_OK)
		die("fl_release_sign", err);
	fl_key_fini(&key);
}

static void gen_releases(const char *dir, const char *migrations)
{
	struct fl_buf unsigned_ = FL_BUF_INIT, one = FL_BUF_INIT, two = FL_BUF_INIT;
	char tmp[] = "/tmp/fl_gen_corpus_XXXXXX";

	build(migrations, &unsigned_);
	sign(FUZZ_RELEASE, &unsigned_, &one);
	write_file(dir, "ok_examples", one.data, one.len);

	if (mkdtemp(tmp) == NULL)
		die("mkdtemp", strerror(errno));
	small_migrations(tmp, true);
	build(tmp, &unsigned_);
	small_migrations(tmp, false);
	write_file(dir, "unsigned_small", unsigned_.data, unsigned_.len);
	sign(FUZZ_RELEASE, &unsigned_, &one);
	write_file(dir, "ok_small", one.data, one.len);
	sign(FUZZ_RELEASE_UNTRUSTED, &unsigned_, &two);
	write_file(dir, "untrusted_small", two.data, two.len);
	sign(FUZZ_RELEASE, &two, &one);
	write_file(dir, "ok_small_two_signers", one.data, one.len);
	fl_buf_fini(&unsigned_);
	fl_buf_fini(&one);
	fl_buf_fini(&two);
}

/* ---- orders ---- */

static const uint8_t order_release_hash[32] = {
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};

/* Valid at the fixture's clock: made a day before it, expiring 300 days after. */
#define ORDER_CREATED (FUZZ_NOW_US / 1000 - INT64_C(86400000))
#define ORDER_EXPIRES (FUZZ_NOW_US / 1000 + INT64_C(300) * 86400000)

static void sign_order(enum fuzz_seed seed, enum fl_order_kind kind, const struct fl_buf *in,
                       struct fl_buf *out)
{
	uint8_t s[FL_KEY_SEED_BYTES];
	struct fl_key key;
	char err[FL_ERRBUF_SIZE] = "";

	memset(s, (int)seed, sizeof(s));
	fl_key_generate(FL_KEY_RELEASE, s, &key);
	if (fl_order_sign(in->data, in->len, kind, &key, out, err) != FL_OK)
		die("fl_order_sign", err);
	fl_key_fini(&key);
}

static void gen_orders(const char *dir, const char *policy_path)
{
	struct fl_buf unsigned_ = FL_BUF_INIT, one = FL_BUF_INIT, two = FL_BUF_INIT;
	struct fl_policy policy;
	struct fl_selector sel, some;
	struct fl_order *o = NULL;
	char err[FL_ERRBUF_SIZE] = "", hash[FL_ORDER_HASH_HEX_LEN + 1];
	struct fl_rollout_params rp;
	struct fl_rollback_params bp;

	if (fl_policy_load_file(policy_path, &policy, err) != FL_OK)
		die("fl_policy_load_file", err);
	fl_selector_init(&sel);
	if (fl_labels_set(&sel.labels, "region", "eu", err) != FL_OK)
		die("fl_labels_set", err);
	rp = (struct fl_rollout_params){.project_id = "fuzz-app",
	                                .release_hash = order_release_hash,
	                                .target_migration_id = "20250101090000_init",
	                                .selector = &sel,
	                                .policy = &policy,
	                                .created_at_ms = ORDER_CREATED,
	                                .expires_at_ms = ORDER_EXPIRES,
	                                .reason = "OPS-1"};
	if (fl_order_build_rollout(&rp, &unsigned_, hash, err) != FL_OK)
		die("fl_order_build_rollout", err);
	write_seed(dir, "rollout_unsigned", 0, unsigned_.data, unsigned_.len);
	sign_order(FUZZ_RELEASE, FL_ORDER_ROLLOUT, &unsigned_, &one);
	write_seed(dir, "ok_rollout", 0, one.data, one.len);
	sign_order(FUZZ_RELEASE_UNTRUSTED, FL_ORDER_ROLLOUT, &unsigned_, &two);
	write_seed(dir, "rollout_untrusted", 0, two.data, two.len);
	sign_order(FUZZ_RELEASE, FL_ORDER_ROLLOUT, &two, &one);
	write_seed(dir, "ok_rollout_two_signers", 0, one.data, one.len);

	if (fl_order_inspect(unsigned_.data, unsigned_.len, FL_ORDER_ROLLOUT, &o, err) != FL_OK)
		die("fl_order_inspect", err);
	fl_selector_init(&some);
	if (fl_selector_add_tenant(&some, "acme", err) != FL_OK)
		die("fl_selector_add_tenant", err);
	bp = (struct fl_rollback_params){.project_id = "fuzz-app",
	                                 .rollout_order_hash = o->hash,
	                                 .release_hash = order_release_hash,
	                                 .target_migration_id = "20250101090000_init",
	                                 .selector = &some,
	                                 .created_at_ms = ORDER_CREATED,
	                                 .expires_at_ms = ORDER_EXPIRES,
	                                 .reason = "undo OPS-1"};
	if (fl_order_build_rollback(&bp, &unsigned_, hash, err) != FL_OK)
		die("fl_order_build_rollback", err);
	sign_order(FUZZ_RELEASE, FL_ORDER_ROLLBACK, &unsigned_, &one);
	write_seed(dir, "ok_rollback", 1, one.data, one.len);
	write_seed(dir, "rollback_as_rollout", 0, one.data, one.len);
	fl_order_free(o);
	fl_selector_fini(&sel);
	fl_selector_fini(&some);
	fl_policy_fini(&policy);
	fl_buf_fini(&unsigned_);
	fl_buf_fini(&one);
	fl_buf_fini(&two);
}

/* ---- --check ---- */

static int check(const char *corpus)
{
	static const char *const envelopes[] = {"ok_wire_poll", "ok_wire_hello", "ok_wire_empty"};
	static const char *const releases[] = {"ok_examples", "ok_small", "ok_small_two_signers"};
	static const char *const orders[] = {"ok_rollout", "ok_rollout_two_signers", "ok_rollback"};
	struct fl_buf data = FL_BUF_INIT;
	uint8_t trusted[1][32], sk[64];
	char path[4096], err[FL_ERRBUF_SIZE];
	int failed = 0;

	for (size_t i = 0; i < sizeof(envelopes) / sizeof(envelopes[0]); i++) {
		struct fl_envelope_opened o;
		struct fl_envelope *ep;
		struct fl_peers *peers;

		snprintf(path, sizeof(path), "%s/envelope_open/%s", corpus, envelopes[i]);
		read_file(path, &data);
		fuzz_receiver_new(&peers, &ep);
		fl_envelope_opened_init(&o);
		if (data.len < 1 ||
		    fl_envelope_open(ep, data.data + 1, data.len - 1, 0, &o, NULL, err) != FL_OK) {
			fprintf(stderr, "gen_corpus: '%s' no longer opens: %s\n", path, err);
			failed = 1;
		}
		fl_envelope_opened_fini(&o);
		fuzz_side_free(peers, ep);
	}
	fuzz_keypair(FUZZ_RELEASE, trusted[0], sk);
	for (size_t i = 0; i < sizeof(releases) / sizeof(releases[0]); i++) {
		struct fl_release *r = NULL;

		snprintf(path, sizeof(path), "%s/release_decode/%s", corpus, releases[i]);
		read_file(path, &data);
		if (fl_release_verify(data.data, data.len, (const uint8_t(*)[32])trusted, 1, NULL,
		                      NULL, &r, err) != FL_OK) {
			fprintf(stderr, "gen_corpus: '%s' no longer verifies: %s\n", path, err);
			failed = 1;
		}
		fl_release_free(r);
	}
	for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++) {
		struct fl_order *o = NULL;

		snprintf(path, sizeof(path), "%s/order_decode/%s", corpus, orders[i]);
		read_file(path, &data);
		if (data.len < 1 ||
		    fl_order_verify(data.data + 1, data.len - 1,
		                    data.data[0] & 1 ? FL_ORDER_ROLLBACK : FL_ORDER_ROLLOUT,
		                    (const uint8_t(*)[32])trusted, 1, "fuzz-app",
		                    FUZZ_NOW_US / 1000, &o, err) != FL_OK) {
			fprintf(stderr, "gen_corpus: '%s' no longer verifies: %s\n", path, err);
			failed = 1;
		}
		fl_order_free(o);
	}
	fl_buf_fini(&data);
	if (failed)
		fprintf(stderr, "gen_corpus: write the seeds again (see the top of "
		                "tests/fuzz/gen_corpus.c)\n");
	else
		printf("gen_corpus: %zu envelope, %zu release and %zu order seeds valid\n",
		       sizeof(envelopes) / sizeof(envelopes[0]),
		       sizeof(releases) / sizeof(releases[0]), sizeof(orders) / sizeof(orders[0]));
	return failed;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--check") == 0)
		return check(argv[2]);
	if (argc == 3 && strcmp(argv[1], "envelope_open") == 0) {
		gen_envelopes(argv[2]);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "release_decode") == 0) {
		gen_releases(argv[2], argv[3]);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "order_decode") == 0) {
		gen_orders(argv[2], argv[3]);
		return 0;
	}
	fprintf(stderr, "usage: gen_corpus envelope_open OUTDIR\n"
	                "       gen_corpus release_decode OUTDIR MIGRATIONS_DIR\n"
	                "       gen_corpus order_decode OUTDIR POLICY_FILE\n"
	                "       gen_corpus --check CORPUS_DIR\n");
	return 2;
}
