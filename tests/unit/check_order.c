/*
 * proto/order.c: signed rollout and rollback orders.
 *
 * Orders are built from policies loaded the way users write them (YAML), and
 * checked against docs/WIRE.md with libsodium directly (sign_raw): the
 * signing message is the kind's context, its NUL and SHA-256 of the packed
 * order. Hostile orders are made by hand and signed by a trusted key, so the
 * refusals shown are those of the decoder, not of the signature check.
 */
#include <check.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "mem.h"
#include "order.h"
#include "wire.h"

#define NOW INT64_C(1700000000000) /* ms */
#define DAY INT64_C(86400000)

static const uint8_t release_hash[32] = {0x5e, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                         11,   12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                         22,   23, 24, 25, 26, 27, 28, 29, 30, 31};

static const char policy_yaml[] =
    "name: standard-canary\n"
    "waves:\n"
    "  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 5, max_failures: 0,"
    " bake: 5m, backup: true}\n"
    "  - {name: vip, select: {tenants: [acme, globex]}, max_parallel: 2, gate: manual}\n"
    "  - {name: early, select: {percent: 10}, max_parallel: 50, max_failure_rate: 0.02}\n"
    "  - {name: rest, select: {percent: 100}, max_parallel: 200, max_failure_rate: 0.01}\n"
    "per_agent_parallel: 4\n"
    "health:\n"
    "  interval: 30s\n"
    "  checks:\n"
    "    - {name: users-readable, sql: \"SELECT count(*) >= 0 FROM users\", timeout: 5s}\n"
    "lock_timeout: 500ms\n"
    "retry: {attempts: 5, backoff: 2s}\n"
    "on_failure: rollback-wave\n"
    "on_halt: finish\n"
    "unreachable: {action: fail, after: 10m}\n"
    "windows:\n"
    "  - {select: {labels: {region: eu}}, utc: \"01:00-05:00\"}\n";

static struct fl_key key, other; /* release keys: trusted, not trusted */
static uint8_t trusted[1][32];
static struct fl_policy policy;
static struct fl_selector everyone;

static void setup(void)
{
	char err[FL_ERRBUF_SIZE] = "";

	fl_log_set_level(FL_LOG_ERROR);
	fl_key_generate(FL_KEY_RELEASE, NULL, &key);
	fl_key_generate(FL_KEY_RELEASE, NULL, &other);
	memcpy(trusted[0], key.pk, 32);
	ck_assert_msg(fl_policy_load_buffer(policy_yaml, strlen(policy_yaml), "p.yaml", &policy,
	                                    err) == FL_OK,
	              "%s", err);
	fl_selector_init(&everyone);
	everyone.all = true;
}

static void teardown(void)
{
	fl_key_fini(&key);
	fl_key_fini(&other);
	fl_policy_fini(&policy);
	fl_selector_fini(&everyone);
}

static struct fl_rollout_params rollout_params(void)
{
	struct fl_rollout_params p = {
	    .project_id = "acme-app",
	    .release_hash = release_hash,
	    .target_migration_id = "20250301000000_add_index",
	    .selector = &everyone,
	    .policy = &policy,
	    .created_at_ms = NOW,
	    .expires_at_ms = NOW + 7 * DAY,
	    .reason = "OPS-123",
	};
	return p;
}

/* A signed rollout order (by `by`, or unsigned when NULL) into out. */
static void rollout(const struct fl_rollout_params *p, const struct fl_key *by, struct fl_buf *out,
                    char hash[65])
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_buf tmp = FL_BUF_INIT;

	ck_assert_msg(fl_order_build_rollout(p, out, hash, err) == FL_OK, "%s", err);
	if (by) {
		ck_assert_msg(fl_order_sign(out->data, out->len, FL_ORDER_ROLLOUT, by, &tmp, err) ==
		                  FL_OK,
		              "%s", err);
		fl_buf_fini(out);
		*out = tmp;
	}
}

static enum fl_err verify(const struct fl_buf *b, enum fl_order_kind kind, const char *project,
                          int64_t now, struct fl_order **o, char *err)
{
	enum fl_err rv = fl_order_verify(b->data, b->len, kind, (const uint8_t(*)[32])trusted, 1,
	                                 project, now, o, err);

	ck_assert(rv == FL_OK ? *o != NULL : *o == NULL);
	return rv;
}

/* A SignedOrder of these order bytes with one signature over the context
 * given, made with libsodium from docs/WIRE.md alone. */
static void sign_raw(const void *order, size_t len, const char *context, const struct fl_key *by,
                     struct fl_buf *out)
{
	Flotilla__V1__SignedOrder so = FLOTILLA__V1__SIGNED_ORDER__INIT;
	Flotilla__V1__ReleaseSignature s = FLOTILLA__V1__RELEASE_SIGNATURE__INIT, *ss[] = {&s};
	uint8_t msg[64], sig[64], sk[64], pk[32];
	size_t clen = strlen(context) + 1;
	char err[FL_ERRBUF_SIZE] = "";

	memcpy(msg, context, clen);
	crypto_hash_sha256(msg + clen, order, len);
	crypto_sign_seed_keypair(pk, sk, by->seed);
	crypto_sign_detached(sig, NULL, msg, clen + 32, sk);
	sodium_memzero(sk, sizeof(sk));
	s.public_key.data = pk;
	s.public_key.len = 32;
	s.signature.data = sig;
	s.signature.len = 64;
	so.order.data = (uint8_t *)order;
	so.order.len = len;
	so.signatures = ss;
	so.n_signatures = by ? 1 : 0;
	fl_buf_reset(out);
	ck_assert_msg(fl_wire_pack_message(&so.base, out, FL_ORDER_FILE_MAX, err) == FL_OK, "%s",
	              err);
}

/* The packed order bytes inside an order file. */
static void order_bytes(const struct fl_buf *file, struct fl_buf *out)
{
	Flotilla__V1__SignedOrder *so = NULL;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(fl_wire_unpack_message(&flotilla__v1__signed_order__descriptor, 0,
	                                        (const uint8_t *)file->data, file->len,
	                                        FL_ORDER_FILE_MAX, (ProtobufCMessage **)&so, err),
	                 FL_OK);
	fl_buf_reset(out);
	ck_assert_int_eq(fl_buf_append(out, so->order.data, so->order.len), FL_OK);
	fl_wire_free_message(&so->base);
}

static void labels_of(struct fl_labels *l, const char *text)
{
	char err[FL_ERRBUF_SIZE] = "";

	fl_labels_init(l);
	if (text && *text)
		ck_assert_msg(fl_labels_parse(text, l, err) == FL_OK, "%s", err);
}

/* ---- round trips ---- */

START_TEST(build_sign_verify_round_trip)
{
	struct fl_rollout_params p = rollout_params();
	struct fl_buf f = FL_BUF_INIT, bytes = FL_BUF_INIT;
	struct fl_order *o = NULL;
	char hash[65], hex[65], err[FL_ERRBUF_SIZE] = "";
	uint8_t d[32];

	rollout(&p, &key, &f, hash);
	ck_assert_int_eq(verify(&f, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_OK);
	ck_assert(o->verified);
	ck_assert_uint_eq(o->n_signers, 1);
	ck_assert(o->signers[0].valid && o->signers[0].trusted);
	/* The hash names the order: SHA-256 of its packed bytes. */
	order_bytes(&f, &bytes);
	crypto_hash_sha256(d, (uint8_t *)bytes.data, bytes.len);
	sodium_bin2hex(hex, sizeof(hex), d, 32);
	ck_assert_str_eq(o->hash_hex, hex);
	ck_assert_str_eq(hash, hex);
	ck_assert_mem_eq(o->hash, d, 32);
	ck_assert_int_eq(o->kind, FL_ORDER_ROLLOUT);
	ck_assert_str_eq(o->project_id, "acme-app");
	ck_assert_mem_eq(o->release_hash, release_hash, 32);
	ck_assert_str_eq(o->target_migration_id, "20250301000000_add_index");
	ck_assert(o->selector.all);
	ck_assert_int_eq(o->created_at_ms, NOW);
	ck_assert_int_eq(o->expires_at_ms, NOW + 7 * DAY);
	ck_assert_str_eq(o->reason, "OPS-123");
	/* The policy comes back whole: what the agent runs is what was signed. */
	ck_assert_str_eq(o->policy.name, "standard-canary");
	ck_assert_uint_eq(o->policy.n_waves, 4);
	ck_assert_int_eq(o->policy.waves[0].select.kind, FL_SELECT_LABELS);
	ck_assert_str_eq(fl_labels_get(&o->policy.waves[0].select.labels, "ring"), "canary");
	ck_assert(o->policy.waves[0].backup);
	ck_assert_int_eq(o->policy.waves[0].max_failures, 0);
	ck_assert_int_eq(o->policy.waves[1].select.kind, FL_SELECT_TENANTS);
	ck_assert_uint_eq(o->policy.waves[1].select.n_tenants, 2);
	ck_assert_str_eq(o->policy.waves[1].select.tenants[1], "globex");
	ck_assert_int_eq(o->policy.waves[1].gate, FL_GATE_MANUAL);
	ck_assert(o->policy.waves[2].select.percent == 10);
	ck_assert(o->policy.waves[2].max_failure_rate == 0.02);
	ck_assert(o->policy.waves[1].max_failure_rate < 0);
	ck_assert_uint_eq(o->policy.n_checks, 1);
	ck_assert_str_eq(o->policy.checks[0].sql, "SELECT count(*) >= 0 FROM users");
	ck_assert_int_eq(o->policy.checks[0].timeout_ms, 5000);
	ck_assert_int_eq(o->policy.on_failure, FL_ON_FAILURE_ROLLBACK_WAVE);
	ck_assert_int_eq(o->policy.on_halt, FL_ON_HALT_FINISH);
	ck_assert_int_eq(o->policy.unreachable, FL_UNREACHABLE_FAIL);
	ck_assert_int_eq(o->policy.retry.attempts, policy.retry.attempts);
	ck_assert_int_eq(o->policy.retry.max_delay_ms, policy.retry.max_delay_ms);
	ck_assert_uint_eq(o->policy.n_windows, 1);
	ck_assert_int_eq(o->policy.windows[0].start_minute, 60);
	ck_assert_int_eq(fl_policy_check(&o->policy, err), FL_OK);
	fl_order_free(o);

	/* A new nonce each time: two builds, two orders. */
	{
		struct fl_buf g = FL_BUF_INIT;
		char hash2[65];

		rollout(&p, NULL, &g, hash2);
		ck_assert_str_ne(hash, hash2);
		fl_buf_fini(&g);
	}
	/* Inspecting trusts no key and looks at no clock or project. */
	ck_assert_int_eq(fl_order_inspect(f.data, f.len, FL_ORDER_ROLLOUT, &o, err), FL_OK);
	ck_assert(!o->verified);
	fl_order_free(o);
	fl_order_free(NULL);
	fl_buf_fini(&f);
	fl_buf_fini(&bytes);
}
END_TEST

START_TEST(rollback_round_trip_and_check)
{
	struct fl_rollout_params rp = rollout_params();
	struct fl_rollback_params bp;
	struct fl_selector only;
	struct fl_buf f = FL_BUF_INIT, g = FL_BUF_INIT, tmp = FL_BUF_INIT;
	struct fl_order *ro = NULL, *bo = NULL;
	struct fl_labels none;
	char hash[65], bhash[65], err[FL_ERRBUF_SIZE] = "";

	rollout(&rp, &key, &f, hash);
	ck_assert_int_eq(verify(&f, FL_ORDER_ROLLOUT, "acme-app", NOW, &ro, err), FL_OK);
	fl_selector_init(&only);
	ck_assert_int_eq(fl_selector_add_tenant(&only, "globex", err), FL_OK);
	ck_assert_int_eq(fl_selector_add_tenant(&only, "acme", err), FL_OK);
	bp = (struct fl_rollback_params){
	    .project_id = "acme-app",
	    .rollout_order_hash = ro->hash,
	    .release_hash = release_hash,
	    .selector = &only,
	    .created_at_ms = NOW,
	    .expires_at_ms = NOW + DAY,
	    .reason = "undo OPS-123",
	};
	ck_assert_msg(fl_order_build_rollback(&bp, &g, bhash, err) == FL_OK, "%s", err);
	ck_assert_int_eq(fl_order_sign(g.data, g.len, FL_ORDER_ROLLBACK, &key, &tmp, err), FL_OK);
	ck_assert_int_eq(verify(&tmp, FL_ORDER_ROLLBACK, "acme-app", NOW, &bo, err), FL_OK);
	ck_assert_int_eq(bo->kind, FL_ORDER_ROLLBACK);
	ck_assert_str_eq(bo->hash_hex, bhash);
	ck_assert_mem_eq(bo->rollout_order_hash, ro->hash, 32);
	ck_assert_str_eq(bo->target_migration_id, "");
	ck_assert_uint_eq(bo->selector.n_tenant_ids, 2);
	ck_assert_str_eq(bo->selector.tenant_ids[0], "acme");
	ck_assert_uint_eq(bo->policy.n_waves, 0);
	labels_of(&none, NULL);
	ck_assert_int_eq(fl_order_rollback_check(bo, ro, "acme", &none, err), FL_OK);
	ck_assert_int_eq(fl_order_rollback_check(bo, ro, "initech", &none, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "tenant 'initech' is not selected by rollback order"));
	ck_assert_int_eq(fl_order_rollback_check(ro, bo, "acme", &none, err), FL_EAUTH);
	/* A rollback order for another rollout authorises nothing here. */
	ro->hash[0] ^= 1;
	ck_assert_int_eq(fl_order_rollback_check(bo, ro, "acme", &none, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "undoes another rollout order"));
	ro->hash[0] ^= 1;
	ro->release_hash[0] ^= 1;
	ck_assert_int_eq(fl_order_rollback_check(bo, ro, "acme", &none, err), FL_EAUTH);
	/* With a target. */
	bp.target_migration_id = "20250101000000_init";
	ck_assert_int_eq(fl_order_build_rollback(&bp, &g, bhash, err), FL_OK);
	fl_order_free(bo);
	ck_assert_int_eq(fl_order_inspect(g.data, g.len, FL_ORDER_ROLLBACK, &bo, err), FL_OK);
	ck_assert_str_eq(bo->target_migration_id, "20250101000000_init");
	fl_order_free(bo);
	fl_order_free(ro);
	fl_labels_fini(&none);
	fl_selector_fini(&only);
	fl_buf_fini(&f);
	fl_buf_fini(&g);
	fl_buf_fini(&tmp);
}
END_TEST

/* ---- trust ---- */

START_TEST(trust_project_and_expiry)
{
	struct fl_rollout_params p = rollout_params();
	struct fl_buf f = FL_BUF_INIT, u = FL_BUF_INIT, s2 = FL_BUF_INIT;
	struct fl_order *o = NULL;
	char hash[65], err[FL_ERRBUF_SIZE] = "", want[256], kid[17];

	rollout(&p, NULL, &u, hash);
	ck_assert_int_eq(verify(&u, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "no signature by a trusted key (not signed; trusted: "));
	ck_assert_int_eq(fl_order_sign(u.data, u.len, FL_ORDER_ROLLOUT, &other, &f, err), FL_OK);
	ck_assert_int_eq(verify(&f, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_EAUTH);
	fl_key_id(other.pk, kid);
	snprintf(want, sizeof(want), "signed by %s;", kid);
	ck_assert_ptr_nonnull(strstr(err, want));
	/* Two signers, one trusted: fine, and verified_by says which. */
	ck_assert_int_eq(fl_order_sign(f.data, f.len, FL_ORDER_ROLLOUT, &key, &s2, err), FL_OK);
	ck_assert_int_eq(verify(&s2, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_OK);
	ck_assert_uint_eq(o->verified_by, 1);
	fl_order_free(o);
	/* Another project's order. */
	ck_assert_int_eq(verify(&s2, FL_ORDER_ROLLOUT, "acme-web", NOW, &o, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "is of project 'acme-app', not of 'acme-web'"));
	/* The agent's clock: good until the last millisecond, refused from expiry on. */
	ck_assert_int_eq(verify(&s2, FL_ORDER_ROLLOUT, "acme-app", NOW + 7 * DAY - 1, &o, err),
	                 FL_OK);
	fl_order_free(o);
	ck_assert_int_eq(verify(&s2, FL_ORDER_ROLLOUT, "acme-app", NOW + 7 * DAY, &o, err),
	                 FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "expired 0 s ago"));
	ck_assert_int_eq(
	    fl_order_verify(s2.data, s2.len, FL_ORDER_ROLLOUT, NULL, 0, "acme-app", NOW, &o, err),
	    FL_EINVAL);
	ck_assert_int_eq(fl_order_verify(s2.data, s2.len, FL_ORDER_ROLLOUT,
	                                 (const uint8_t(*)[32])trusted, 1, NULL, NOW, &o, err),
	                 FL_EINVAL);
	fl_buf_fini(&f);
	fl_buf_fini(&u);
	fl_buf_fini(&s2);
}
END_TEST

/* A signature is bound to its kind: a rollout order's never passes for a
 * rollback order's or a release's, whatever the bytes. */
START_TEST(contexts_are_separate)
{
	struct fl_rollout_params p = rollout_params();
	struct fl_buf f = FL_BUF_INIT, bytes = FL_BUF_INIT, g = FL_BUF_INIT;
	struct fl_order *o = NULL;
	char hash[65], err[FL_ERRBUF_SIZE] = "";

	rollout(&p, &key, &f, hash);
	ck_assert_int_eq(verify(&f, FL_ORDER_ROLLBACK, "acme-app", NOW, &o, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "does not verify"));
	/* Signed by hand, as the spec says: accepted. */
	order_bytes(&f, &bytes);
	sign_raw(bytes.data, bytes.len, FL_ORDER_ROLLOUT_CONTEXT, &key, &g);
	ck_assert_int_eq(verify(&g, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_OK);
	fl_order_free(o);
	/* Over the release context, or the rollback one: refused. */
	sign_raw(bytes.data, bytes.len, "flotilla release v1", &key, &g);
	ck_assert_int_eq(verify(&g, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_EAUTH);
	sign_raw(bytes.data, bytes.len, FL_ORDER_ROLLBACK_CONTEXT, &key, &g);
	ck_assert_int_eq(verify(&g, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_EAUTH);
	/* ...and a rollout order signed as a rollback one does not decode as one. */
	ck_assert_int_eq(verify(&g, FL_ORDER_ROLLBACK, "acme-app", NOW, &o, err), FL_EPARSE);
	fl_buf_fini(&f);
	fl_buf_fini(&bytes);
	fl_buf_fini(&g);
}
END_TEST

START_TEST(every_flip_and_truncation_refused)
{
	struct fl_rollout_params p = rollout_params();
	struct fl_buf f = FL_BUF_INIT;
	struct fl_order *o = NULL;
	char hash[65], err[FL_ERRBUF_SIZE] = "";
	uint8_t *copy;

	rollout(&p, &key, &f, hash);
	copy = fl_malloc(f.len);
	for (size_t i = 0; i < f.len; i++) {
		memcpy(copy, f.data, f.len);
		copy[i] ^= 0x01;
		ck_assert_msg(fl_order_verify(copy, f.len, FL_ORDER_ROLLOUT,
		                              (const uint8_t(*)[32])trusted, 1, "acme-app", NOW, &o,
		                              err) != FL_OK,
		              "accepted with byte %zu flipped", i);
		ck_assert_ptr_null(o);
	}
	for (size_t n = 0; n < f.len; n++) {
		ck_assert(fl_order_verify(f.data, n, FL_ORDER_ROLLOUT,
		                          (const uint8_t(*)[32])trusted, 1, "acme-app", NOW, &o,
		                          err) != FL_OK);
		ck_assert_ptr_null(o);
	}
	free(copy);
	fl_buf_fini(&f);
}
END_TEST

/* ---- what is signed is all that is decoded ---- */

/* Bytes a trusted key signed, but which no build would make: refused by the
 * decoder, whatever the signature says. */
START_TEST(signed_but_malformed_refused)
{
	struct fl_rollout_params p = rollout_params();
	struct fl_buf f = FL_BUF_INIT, bytes = FL_BUF_INIT, g = FL_BUF_INIT, x = FL_BUF_INIT;
	Flotilla__V1__RolloutOrder *r = NULL;
	struct fl_order *o = NULL;
	char hash[65], err[FL_ERRBUF_SIZE] = "";

	rollout(&p, &key, &f, hash);
	order_bytes(&f, &bytes);

	/* An unknown field, at the end: ignored anywhere else, refused here. */
	fl_buf_reset(&x);
	ck_assert_int_eq(fl_buf_append(&x, bytes.data, bytes.len), FL_OK);
	ck_assert_int_eq(fl_buf_append(&x, "\xa2\x06\x01x", 4), FL_OK); /* field 100, "x" */
	sign_raw(x.data, x.len, FL_ORDER_ROLLOUT_CONTEXT, &key, &g);
	ck_assert_int_eq(verify(&g, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "unknown field 100: refused here"));

	/* Inside the policy: the same. */
	ck_assert_int_eq(fl_wire_unpack_message(&flotilla__v1__rollout_order__descriptor, 0,
	                                        (uint8_t *)bytes.data, bytes.len, FL_ORDER_FILE_MAX,
	                                        (ProtobufCMessage **)&r, err),
	                 FL_OK);
	{
		ProtobufCMessageUnknownField u = {77, PROTOBUF_C_WIRE_TYPE_VARINT, 1,
		                                  (uint8_t *)"\x01"};
		ProtobufCMessageUnknownField *keep = r->policy->base.unknown_fields;

		r->policy->base.unknown_fields = &u;
		r->policy->base.n_unknown_fields = 1;
		fl_buf_reset(&x);
		ck_assert_uint_gt(protobuf_c_message_get_packed_size(&r->base), 0);
		{
			size_t n = protobuf_c_message_get_packed_size(&r->base);
			uint8_t *tmp = fl_malloc(n);

			protobuf_c_message_pack(&r->base, tmp);
			ck_assert_int_eq(fl_buf_append(&x, tmp, n), FL_OK);
			free(tmp);
		}
		r->policy->base.unknown_fields = keep;
		r->policy->base.n_unknown_fields = 0;
	}
	sign_raw(x.data, x.len, FL_ORDER_ROLLOUT_CONTEXT, &key, &g);
	ck_assert_int_eq(verify(&g, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "policy: unknown field 77"));

	/* Not canonical: the same fields in another order. */
	{
		size_t n = protobuf_c_message_get_packed_size(&r->base);
		uint8_t *tmp = fl_malloc(n);
		Flotilla__V1__RolloutOrder first = FLOTILLA__V1__ROLLOUT_ORDER__INIT;

		first.format_version = r->format_version;
		protobuf_c_message_pack(&r->base, tmp);
		/* project_id (field 2) first, then the rest without it. */
		fl_buf_reset(&x);
		ck_assert_int_eq(fl_buf_append(&x,
		                               "\x12\x08"
		                               "acme-app",
		                               10),
		                 FL_OK);
		ck_assert(memcmp(tmp + 2,
		                 "\x12\x08"
		                 "acme-app",
		                 10) == 0);
		ck_assert_int_eq(fl_buf_append(&x, tmp, 2), FL_OK); /* format_version */
		ck_assert_int_eq(fl_buf_append(&x, tmp + 12, n - 12), FL_OK);
		free(tmp);
		(void)first;
	}
	sign_raw(x.data, x.len, FL_ORDER_ROLLOUT_CONTEXT, &key, &g);
	ck_assert_int_eq(verify(&g, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "not in canonical form"));

	/* Fields breaking a rule, each signed. */
	{
		static const char *const says[] = {
		    "format version 2 is not supported",
		    "nonce: 3 bytes, not 16",
		    "times: created",
		    "invalid target migration id",
		    "selector: 'all' with labels or tenant ids",
		    "policy waves[1].select: fields of another kind than tenants",
		    "policy on_halt: not given",
		    "policy: 'waves[2].select.percent'",
		    "invalid project id 'a/b'",
		};
		Flotilla__V1__Label l = FLOTILLA__V1__LABEL__INIT, *ls[] = {&l};

		l.key = "ring";
		l.value = "canary";
		for (size_t i = 0; i < sizeof(says) / sizeof(says[0]); i++) {
			Flotilla__V1__RolloutOrder *c = NULL;
			size_t n;
			uint8_t *tmp;

			ck_assert_int_eq(
			    fl_wire_unpack_message(&flotilla__v1__rollout_order__descriptor, 0,
			                           (uint8_t *)bytes.data, bytes.len,
			                           FL_ORDER_FILE_MAX, (ProtobufCMessage **)&c, err),
			    FL_OK);
			switch (i) {
			case 0:
				c->format_version = 2;
				break;
			case 1:
				c->nonce.len = 3;
				break;
			case 2:
				c->expires_at_ms = c->created_at_ms;
				break;
			case 3:
				c->target_migration_id[0] = '\0';
				break;
			case 4:
				c->selector->labels = ls;
				c->selector->n_labels = 1;
				break;
			case 5:
				c->policy->waves[1]->select->percent = 5;
				break;
			case 6:
				c->policy->on_halt = FLOTILLA__V1__ON_HALT__ON_HALT_UNSPECIFIED;
				break;
			case 7:
				c->policy->waves[2]->select->percent = 200;
				break;
			case 8:
				c->project_id[1] = '/';
				c->project_id[2] = 'b';
				c->project_id[3] = '\0';
				break;
			}
			n = protobuf_c_message_get_packed_size(&c->base);
			tmp = fl_malloc(n);
			protobuf_c_message_pack(&c->base, tmp);
			sign_raw(tmp, n, FL_ORDER_ROLLOUT_CONTEXT, &key, &g);
			ck_assert_int_eq(verify(&g, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err),
			                 FL_EPARSE);
			ck_assert_msg(strstr(err, says[i]) != NULL, "case %zu: %s", i, err);
			free(tmp);
			if (i == 4) {
				c->selector->labels = NULL;
				c->selector->n_labels = 0;
			}
			fl_wire_free_message(&c->base);
		}
	}
	fl_wire_free_message(&r->base);
	fl_buf_fini(&f);
	fl_buf_fini(&bytes);
	fl_buf_fini(&g);
	fl_buf_fini(&x);
}
END_TEST

START_TEST(build_refuses_bad_parameters)
{
	struct fl_rollout_params p;
	struct fl_selector nobody, unsorted;
	struct fl_policy bad;
	struct fl_buf f = FL_BUF_INIT;
	char hash[65], err[FL_ERRBUF_SIZE] = "";

	fl_selector_init(&nobody);
	p = rollout_params();
	p.project_id = "";
	ck_assert_int_eq(fl_order_build_rollout(&p, &f, hash, err), FL_EINVAL);
	ck_assert_str_eq(err, "invalid project id '': empty");
	ck_assert_uint_eq(f.len, 0);
	p = rollout_params();
	p.target_migration_id = "../x";
	ck_assert_int_eq(fl_order_build_rollout(&p, &f, hash, err), FL_EINVAL);
	p.target_migration_id = NULL;
	ck_assert_int_eq(fl_order_build_rollout(&p, &f, hash, err), FL_EINVAL);
	p = rollout_params();
	p.selector = &nobody;
	ck_assert_int_eq(fl_order_build_rollout(&p, &f, hash, err), FL_EINVAL);
	ck_assert_str_eq(err, "selector selects no tenant: give labels, tenant ids or all");
	p = rollout_params();
	p.expires_at_ms = p.created_at_ms;
	ck_assert_int_eq(fl_order_build_rollout(&p, &f, hash, err), FL_EINVAL);
	p.expires_at_ms = p.created_at_ms + FL_ORDER_LIFETIME_MAX_MS + 1;
	ck_assert_int_eq(fl_order_build_rollout(&p, &f, hash, err), FL_EINVAL);
	p = rollout_params();
	fl_policy_init(&bad); /* no waves */
	p.policy = &bad;
	ck_assert_int_eq(fl_order_build_rollout(&p, &f, hash, err), FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "policy: "));
	fl_policy_fini(&bad);
	/* A selector put together by hand must still be sorted. */
	fl_selector_init(&unsorted);
	unsorted.tenant_ids = fl_calloc(2, sizeof(char *));
	unsorted.tenant_ids[0] = fl_strdup("zeta");
	unsorted.tenant_ids[1] = fl_strdup("alpha");
	unsorted.n_tenant_ids = 2;
	p = rollout_params();
	p.selector = &unsorted;
	ck_assert_int_eq(fl_order_build_rollout(&p, &f, hash, err), FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "not sorted"));
	fl_selector_fini(&unsorted);
	fl_selector_fini(&nobody);
	fl_buf_fini(&f);
}
END_TEST

START_TEST(sign_refusals)
{
	struct fl_rollout_params p = rollout_params();
	struct fl_buf f = FL_BUF_INIT, g = FL_BUF_INIT, bytes = FL_BUF_INIT;
	struct fl_key agent;
	char hash[65], err[FL_ERRBUF_SIZE] = "";

	rollout(&p, &key, &f, hash);
	ck_assert_int_eq(fl_order_sign(f.data, f.len, FL_ORDER_ROLLOUT, &key, &g, err), FL_ESTATE);
	ck_assert_ptr_nonnull(strstr(err, "already signed by"));
	fl_key_generate(FL_KEY_AGENT, NULL, &agent);
	ck_assert_int_eq(fl_order_sign(f.data, f.len, FL_ORDER_ROLLOUT, &agent, &g, err),
	                 FL_EINVAL);
	fl_key_fini(&agent);
	/* A file carrying a bad signature is signed by nobody else. */
	order_bytes(&f, &bytes);
	sign_raw(bytes.data, bytes.len, FL_ORDER_ROLLBACK_CONTEXT, &key, &g);
	ck_assert_int_eq(fl_order_sign(g.data, g.len, FL_ORDER_ROLLOUT, &other, &f, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "does not verify: refusing to add mine"));
	fl_buf_fini(&f);
	fl_buf_fini(&g);
	fl_buf_fini(&bytes);
}
END_TEST

START_TEST(size_and_garbage_refused)
{
	struct fl_order *o = NULL;
	char err[FL_ERRBUF_SIZE] = "";
	uint8_t *big = fl_calloc(1, FL_ORDER_FILE_MAX + 1);

	ck_assert_int_eq(fl_order_inspect(big, FL_ORDER_FILE_MAX + 1, FL_ORDER_ROLLOUT, &o, err),
	                 FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "larger than the limit"));
	ck_assert_int_eq(fl_order_inspect("", 0, FL_ORDER_ROLLOUT, &o, err), FL_EPARSE);
	ck_assert_int_eq(fl_order_inspect("\xff\xff\xff", 3, FL_ORDER_ROLLOUT, &o, err), FL_EPARSE);
	ck_assert_int_eq(fl_order_inspect("\x0a\x00", 2, FL_ORDER_ROLLOUT, &o, err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "order: empty"));
	ck_assert_int_eq(fl_order_inspect("\x0a\x00", 2, (enum fl_order_kind)9, &o, err),
	                 FL_EINVAL);
	ck_assert_ptr_null(o);
	free(big);
}
END_TEST

/* ---- selectors and waves: what the agent checks ---- */

START_TEST(selectors_match)
{
	struct fl_selector s;
	struct fl_labels canary, eu_canary, none;
	char err[FL_ERRBUF_SIZE] = "";

	labels_of(&canary, "ring=canary");
	labels_of(&eu_canary, "ring=canary,region=eu");
	labels_of(&none, NULL);
	fl_selector_init(&s);
	ck_assert(!fl_selector_matches(&s, "acme", &none)); /* empty selects nothing */
	ck_assert_int_eq(fl_selector_check(&s, err), FL_EINVAL);
	ck_assert_int_eq(fl_labels_set(&s.labels, "ring", "canary", err), FL_OK);
	ck_assert(fl_selector_matches(&s, "acme", &canary));
	ck_assert(fl_selector_matches(&s, "acme", &eu_canary));
	ck_assert(!fl_selector_matches(&s, "acme", &none));
	ck_assert(!fl_selector_matches(&s, "acme", NULL));
	/* Labels and ids: both must hold. */
	ck_assert_int_eq(fl_selector_add_tenant(&s, "globex", err), FL_OK);
	ck_assert_int_eq(fl_selector_add_tenant(&s, "acme", err), FL_OK);
	ck_assert_int_eq(fl_selector_add_tenant(&s, "acme", err), FL_OK); /* once */
	ck_assert_uint_eq(s.n_tenant_ids, 2);
	ck_assert_str_eq(s.tenant_ids[0], "acme");
	ck_assert_int_eq(fl_selector_add_tenant(&s, "", err), FL_EINVAL);
	ck_assert_int_eq(fl_selector_add_tenant(&s, "a\nb", err), FL_EINVAL);
	ck_assert_int_eq(fl_selector_check(&s, err), FL_OK);
	ck_assert(fl_selector_matches(&s, "acme", &canary));
	ck_assert(!fl_selector_matches(&s, "initech", &canary));
	ck_assert(!fl_selector_matches(&s, "globex", &none));
	ck_assert(!fl_selector_matches(&s, NULL, &canary));
	s.all = true;
	ck_assert_int_eq(fl_selector_check(&s, err), FL_EINVAL);
	fl_selector_fini(&s);
	fl_selector_init(&s);
	s.all = true;
	ck_assert(fl_selector_matches(&s, "anyone", &none));
	fl_selector_fini(&s);
	fl_labels_fini(&canary);
	fl_labels_fini(&eu_canary);
	fl_labels_fini(&none);
}
END_TEST

/* FLEET.md point 3: no earlier labels/tenants wave takes the tenant, and a
 * labels/tenants wave must take it; percent waves pass. */
START_TEST(wave_index_consistency)
{
	struct fl_rollout_params p = rollout_params();
	struct fl_buf f = FL_BUF_INIT;
	struct fl_order *o = NULL;
	struct fl_labels canary, plain;
	char hash[65], err[FL_ERRBUF_SIZE] = "";
	static const struct {
		const char *tenant;
		bool canary;
		uint32_t wave;
		bool ok;
	} cases[] = {
	    /* canary-labelled tenants belong to wave 0 */
	    {"t1", true, 0, true},
	    {"t1", true, 1, false},
	    {"t1", true, 2, false},
	    {"acme", true, 1, false}, /* listed in wave 1, but wave 0 took it */
	    /* acme and globex, unlabelled: wave 1 */
	    {"acme", false, 0, false},
	    {"acme", false, 1, true},
	    {"globex", false, 2, false},
	    {"acme", false, 3, false},
	    /* the rest: percent waves, which the agent cannot judge */
	    {"initech", false, 0, false},
	    {"initech", false, 1, false},
	    {"initech", false, 2, true},
	    {"initech", false, 3, true},
	    {"initech", false, 4, false}, /* no such wave */
	    {"initech", false, UINT32_MAX, false},
	};

	labels_of(&canary, "ring=canary,region=eu");
	labels_of(&plain, "region=us");
	rollout(&p, &key, &f, hash);
	ck_assert_int_eq(verify(&f, FL_ORDER_ROLLOUT, "acme-app", NOW, &o, err), FL_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum fl_err rv = fl_order_wave_check(o, cases[i].wave, cases[i].tenant,
		                                     cases[i].canary ? &canary : &plain, err);

		ck_assert_msg((rv == FL_OK) == cases[i].ok, "case %zu (%s, wave %u): %s", i,
		              cases[i].tenant, cases[i].wave, rv == FL_OK ? "accepted" : err);
		if (rv != FL_OK)
			ck_assert_int_eq(rv, FL_EAUTH);
	}
	ck_assert_int_eq(fl_order_wave_check(o, 1, "t1", &canary, err), FL_EAUTH);
	ck_assert_str_eq(err, "tenant 't1' belongs to wave 0 ('canary'), not to wave 1");
	ck_assert_int_eq(fl_order_wave_check(o, 1, "initech", &plain, err), FL_EAUTH);
	ck_assert_str_eq(err, "tenant 'initech' is not selected by wave 1 ('vip')");
	ck_assert_int_eq(fl_order_covers(o, "anyone", &plain, err), FL_OK);
	fl_order_free(o);
	fl_labels_fini(&canary);
	fl_labels_fini(&plain);
	fl_buf_fini(&f);
}
END_TEST

/* Health checks come only from the signed policy: nothing the coordinator
 * sends an agent holds SQL, or any text the agent runs. Every string and
 * bytes field reachable from the bodies it sends is listed here, by what it
 * is; a new one fails this test until someone decides what it carries. */
static const char *const coordinator_text[] = {
    "HelloReply.reason",
    "HelloReply.agent_name",
    "Redirect.coordinator_url",
    "Redirect.leader_public_key",
    "WorkAssignment.rollout_id",
    "WorkAssignment.tenant_id",
    "WorkAssignment.release_hash",
    "WorkAssignment.target_migration_id",
    "WorkAssignment.signed_order",          /* signed: checked with fl_order_verify */
    "WorkAssignment.signed_rollback_order", /* signed: likewise */
    "Halt.rollout_id",
    "Halt.reason",
    "Status.message",
    "ReleaseBundleReply.release_hash",
    "ReleaseBundleReply.signed_release", /* signed: checked with fl_release_verify */
};

#define N_TEXT (sizeof(coordinator_text) / sizeof(coordinator_text[0]))

static void walk_text(const ProtobufCMessageDescriptor *d, bool found[N_TEXT], int depth)
{
	ck_assert_int_lt(depth, 16);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char name[256];
		bool known = false;

		if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			walk_text(f->descriptor, found, depth + 1);
			continue;
		}
		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES)
			continue;
		snprintf(name, sizeof(name), "%s.%s", d->short_name, f->name);
		for (size_t k = 0; k < N_TEXT; k++)
			if (strcmp(coordinator_text[k], name) == 0)
				known = found[k] = true;
		ck_assert_msg(known, "%s: text the coordinator sends agents; does it carry SQL?",
		              name);
	}
}

START_TEST(coordinator_sends_agents_no_sql)
{
	const ProtobufCMessageDescriptor *bodies[] = {
	    &flotilla__v1__hello_reply__descriptor, &flotilla__v1__poll_reply__descriptor,
	    &flotilla__v1__report_ack__descriptor, &flotilla__v1__release_bundle_reply__descriptor,
	    &flotilla__v1__status__descriptor};
	bool found[N_TEXT] = {false};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		walk_text(bodies[i], found, 0);
	for (size_t k = 0; k < N_TEXT; k++)
		ck_assert_msg(found[k], "%s is no longer sent", coordinator_text[k]);
	ck_assert_ptr_null(protobuf_c_message_descriptor_get_field_by_name(
	    &flotilla__v1__work_assignment__descriptor, "health_checks"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("order");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, build_sign_verify_round_trip);
	tcase_add_test(tc, rollback_round_trip_and_check);
	tcase_add_test(tc, trust_project_and_expiry);
	tcase_add_test(tc, contexts_are_separate);
	tcase_add_test(tc, every_flip_and_truncation_refused);
	tcase_add_test(tc, signed_but_malformed_refused);
	tcase_add_test(tc, build_refuses_bad_parameters);
	tcase_add_test(tc, sign_refusals);
	tcase_add_test(tc, size_and_garbage_refused);
	tcase_add_test(tc, selectors_match);
	tcase_add_test(tc, wave_index_consistency);
	tcase_add_test(tc, coordinator_sends_agents_no_sql);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
