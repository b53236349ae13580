/*
 * proto/enroll.c: enrollment tokens, and the whole enrollment of an agent
 * through the envelope (fl_envelope_open_enroll), the token table and the
 * registry (fl_peers_enroll), as the coordinator will run it.
 */
#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enroll.h"
#include "envelope.h"
#include "log.h"
#include "rpc.h"
#include "wire.h"

#define NOW INT64_C(1700000000000) /* ms */

static int64_t now_us = NOW * 1000;

static int64_t clock_fn(void *arg)
{
	(void)arg;
	return now_us;
}

START_TEST(token_text_and_hash)
{
	char a[FL_ENROLL_TOKEN_TEXT_LEN + 1], b[FL_ENROLL_TOKEN_TEXT_LEN + 1];
	uint8_t ha[32], hb[32], h[32];
	char err[FL_ERRBUF_SIZE] = "";

	fl_enroll_token_new(a, ha);
	fl_enroll_token_new(b, hb);
	ck_assert_uint_eq(strlen(a), FL_ENROLL_TOKEN_TEXT_LEN);
	ck_assert(strncmp(a, "fle1.", 5) == 0);
	ck_assert_uint_eq(
	    strspn(a + 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
	ck_assert_str_ne(a, b);
	ck_assert(memcmp(ha, hb, 32) != 0);
	ck_assert_int_eq(fl_enroll_token_hash(a, h, err), FL_OK);
	ck_assert_mem_eq(h, ha, 32);
	/* Its hash is SHA-256 of the 32 bytes the text encodes. */
	{
		uint8_t raw[32], d[32];
		size_t n = 0;

		ck_assert_int_eq(sodium_base642bin(raw, 32, a + 5, 43, NULL, &n, NULL,
		                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
		                 0);
		ck_assert_uint_eq(n, 32);
		crypto_hash_sha256(d, raw, 32);
		ck_assert_mem_eq(d, ha, 32);
	}
}
END_TEST

START_TEST(token_text_refused)
{
	char good[FL_ENROLL_TOKEN_TEXT_LEN + 1], bad[64];
	uint8_t h[32], hash[32];
	char err[FL_ERRBUF_SIZE] = "";
	static const char *const junk[] = {"", "fle1.", "secret-token", "fle2.AAAA"};

	fl_enroll_token_new(good, hash);
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		ck_assert_int_eq(fl_enroll_token_hash(junk[i], h, err), FL_EAUTH);
		ck_assert_ptr_null(strstr(err, "secret"));
	}
	ck_assert_int_eq(fl_enroll_token_hash(NULL, h, err), FL_EAUTH);
	snprintf(bad, sizeof(bad), "%s", good);
	bad[20] = '+'; /* standard base64, not base64url */
	ck_assert_int_eq(fl_enroll_token_hash(bad, h, err), FL_EAUTH);
	snprintf(bad, sizeof(bad), "%sA", good); /* too long */
	ck_assert_int_eq(fl_enroll_token_hash(bad, h, err), FL_EAUTH);
	snprintf(bad, sizeof(bad), "FLE1.%s", good + 5);
	ck_assert_int_eq(fl_enroll_token_hash(bad, h, err), FL_EAUTH);
	ck_assert_str_eq(err,
	                 "not an enrollment token (expected fle1. and 43 base64url characters)");
}
END_TEST

START_TEST(tokens_are_taken_once)
{
	struct fl_enroll_tokens *t = fl_enroll_tokens_new();
	struct fl_enroll_token got;
	struct fl_labels labels;
	char text[FL_ENROLL_TOKEN_TEXT_LEN + 1], err[FL_ERRBUF_SIZE] = "";
	uint8_t hash[32], other[32];

	fl_labels_init(&labels);
	ck_assert_int_eq(fl_labels_set(&labels, "region", "eu", err), FL_OK);
	fl_enroll_token_new(text, hash);
	ck_assert_int_eq(fl_enroll_tokens_add(t, hash, "db-eu-1", &labels, NOW + 60000, NOW, err),
	                 FL_OK);
	ck_assert_int_eq(fl_enroll_tokens_add(t, hash, "db-eu-1", NULL, NOW + 60000, NOW, err),
	                 FL_ESTATE);
	ck_assert_int_eq(fl_enroll_tokens_add(t, hash, "bad name", NULL, NOW + 60000, NOW, err),
	                 FL_EINVAL);
	ck_assert_int_eq(fl_enroll_tokens_add(t, hash, "x", NULL, NOW, NOW, err), FL_EINVAL);
	ck_assert_int_eq(
	    fl_enroll_tokens_add(t, hash, "x", NULL, NOW + FL_ENROLL_TTL_MAX_MS + 1, NOW, err),
	    FL_EINVAL);
	memset(other, 7, sizeof(other));
	ck_assert_int_eq(fl_enroll_tokens_take(t, other, NOW, &got, err), FL_EAUTH);
	ck_assert_str_eq(err, "unknown or already used enrollment token");
	ck_assert_int_eq(fl_enroll_tokens_take(t, hash, NOW, &got, err), FL_OK);
	ck_assert_str_eq(got.name, "db-eu-1");
	ck_assert_str_eq(fl_labels_get(&got.labels, "region"), "eu");
	ck_assert_int_eq(got.expires_at_ms, NOW + 60000);
	fl_enroll_token_fini(&got);
	ck_assert_int_eq(fl_enroll_tokens_take(t, hash, NOW, &got, err), FL_EAUTH);
	ck_assert_uint_eq(fl_enroll_tokens_count(t), 0);

	/* Expired: refused and dropped. */
	ck_assert_int_eq(fl_enroll_tokens_add(t, hash, "db-eu-1", NULL, NOW + 1000, NOW, err),
	                 FL_OK);
	ck_assert_int_eq(fl_enroll_tokens_take(t, hash, NOW + 1000, &got, err), FL_EAUTH);
	ck_assert_str_eq(err, "enrollment token expired");
	ck_assert_int_eq(fl_enroll_tokens_take(t, hash, NOW, &got, err), FL_EAUTH);
	ck_assert_str_eq(err, "unknown or already used enrollment token");
	fl_labels_fini(&labels);
	fl_enroll_tokens_free(t);
	fl_enroll_tokens_free(NULL);
}
END_TEST

/* The coordinator's store keeps tokens; a restarted coordinator restores
 * them, and the agent's token still works. */
START_TEST(tokens_survive_a_restart)
{
	struct fl_enroll_tokens *t = fl_enroll_tokens_new();
	struct fl_enroll_token got;
	struct {
		uint8_t hash[32];
		char name[16];
		int64_t expires;
	} store[3];
	char text[3][FL_ENROLL_TOKEN_TEXT_LEN + 1], err[FL_ERRBUF_SIZE] = "";
	uint8_t h[32];

	for (int i = 0; i < 3; i++) {
		fl_enroll_token_new(text[i], store[i].hash);
		snprintf(store[i].name, sizeof(store[i].name), "db-%d", i);
		store[i].expires = NOW + 60000;
		ck_assert_int_eq(fl_enroll_tokens_add(t, store[i].hash, store[i].name, NULL,
		                                      store[i].expires, NOW, err),
		                 FL_OK);
	}
	fl_enroll_tokens_free(t); /* the coordinator stops */
	t = fl_enroll_tokens_new();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(fl_enroll_tokens_add(t, store[i].hash, store[i].name, NULL,
		                                      store[i].expires, NOW + 1000, err),
		                 FL_OK);
	ck_assert_int_eq(fl_enroll_token_hash(text[1], h, err), FL_OK);
	ck_assert_int_eq(fl_enroll_tokens_take(t, h, NOW + 2000, &got, err), FL_OK);
	ck_assert_str_eq(got.name, "db-1");
	fl_enroll_token_fini(&got);
	fl_enroll_tokens_free(t);
}
END_TEST

START_TEST(tokens_are_capped)
{
	struct fl_enroll_tokens *t = fl_enroll_tokens_new();
	char text[FL_ENROLL_TOKEN_TEXT_LEN + 1], err[FL_ERRBUF_SIZE] = "";
	uint8_t hash[32];

	for (int i = 0; i < FL_ENROLL_TOKENS_MAX; i++) {
		fl_enroll_token_new(text, hash);
		ck_assert_int_eq(fl_enroll_tokens_add(t, hash, "a", NULL, NOW + 1000, NOW, err),
		                 FL_OK);
	}
	fl_enroll_token_new(text, hash);
	ck_assert_int_eq(fl_enroll_tokens_add(t, hash, "a", NULL, NOW + 1000, NOW, err),
	                 FL_ENOTSUP);
	/* Expired ones make room. */
	ck_assert_int_eq(fl_enroll_tokens_add(t, hash, "a", NULL, NOW + 5000, NOW + 1000, err),
	                 FL_OK);
	ck_assert_uint_eq(fl_enroll_tokens_count(t), 1);
	fl_enroll_tokens_free(t);
}
END_TEST

/* The whole enrollment, as the coordinator runs it, and the agent's side. */
START_TEST(an_agent_enrolls)
{
	uint8_t cseed[32], aseed[32], hash[32], h[32];
	struct fl_identity *cid, *aid;
	struct fl_peers *cp = NULL, *ap = NULL;
	struct fl_envelope *cep, *aep;
	struct fl_enroll_tokens *tokens = fl_enroll_tokens_new();
	struct fl_enroll_token got;
	struct fl_envelope_opened o, ao;
	enum fl_envelope_reason reason;
	Flotilla__V1__Message hello = FLOTILLA__V1__MESSAGE__INIT, *in = NULL, *back = NULL;
	Flotilla__V1__Message reply = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Hello h1 = FLOTILLA__V1__HELLO__INIT;
	Flotilla__V1__HelloReply hr = FLOTILLA__V1__HELLO_REPLY__INIT;
	struct fl_buf env = FL_BUF_INIT, renv = FL_BUF_INIT;
	char text[FL_ENROLL_TOKEN_TEXT_LEN + 1], err[FL_ERRBUF_SIZE] = "";
	struct fl_peer_info info;
	uint64_t seq = 0;

	fl_log_set_level(FL_LOG_ERROR);
	memset(cseed, 0xc0, 32);
	memset(aseed, 0xa9, 32);
	cid = fl_identity_new_from_seed(cseed);
	aid = fl_identity_new_from_seed(aseed);
	ck_assert_int_eq(fl_peers_new(cid, NULL, 0, 0, &cp, err), FL_OK);
	ck_assert_int_eq(fl_peers_new(aid, NULL, 0, 0, &ap, err), FL_OK);
	ck_assert_int_eq(
	    fl_peers_add(ap, fl_identity_public_key(cid), FL_PEER_COORDINATOR, "coord", err),
	    FL_OK);
	cep = fl_envelope_new(cid, cp);
	aep = fl_envelope_new(aid, ap);
	fl_envelope_set_clock(cep, clock_fn, NULL);
	fl_envelope_set_clock(aep, clock_fn, NULL);
	fl_envelope_set_enroll_rate(cep, FL_ENVELOPE_ENROLL_RATE, FL_ENVELOPE_ENROLL_BURST);
	fl_envelope_opened_init(&o);
	fl_envelope_opened_init(&ao);

	/* An admin made a token; the agent's config holds its text. */
	fl_enroll_token_new(text, hash);
	ck_assert_int_eq(fl_enroll_tokens_add(tokens, hash, "db-new", NULL, NOW + 60000, NOW, err),
	                 FL_OK);
	h1.agent_id = "db-new";
	h1.enrollment_token = text;
	h1.project_id = "acme-app";
	hello.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
	hello.hello = &h1;
	ck_assert_int_eq(
	    fl_rpc_seal_request(aep, fl_identity_public_key(cid), &hello, &env, &seq, err), FL_OK);

	/* The coordinator: open refuses (unknown), open_enroll accepts. */
	ck_assert_int_eq(fl_rpc_open_request(cep, env.data, env.len, 0, &o, &in, &reason, err),
	                 FL_EAUTH);
	ck_assert_int_eq(reason, FL_ENVELOPE_UNKNOWN_SENDER);
	ck_assert_int_eq(fl_envelope_open_enroll(cep, env.data, env.len, &o, &in, &reason, err),
	                 FL_OK);
	ck_assert_uint_eq(o.seq, seq);
	ck_assert_int_eq(fl_enroll_token_hash(in->hello->enrollment_token, h, err), FL_OK);
	ck_assert_int_eq(fl_enroll_tokens_take(tokens, h, NOW, &got, err), FL_OK);
	ck_assert_int_eq(fl_peers_enroll(cp, o.sender.pk, got.name, o.seq, err), FL_OK);
	fl_enroll_token_fini(&got);
	fl_wire_free(in);
	in = NULL;

	/* It answers the request it opened. */
	hr.accepted = 1;
	hr.agent_name = "db-new";
	reply.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO_REPLY;
	reply.hello_reply = &hr;
	ck_assert_int_eq(fl_rpc_seal_reply(cep, o.sender.pk, o.seq, &reply, &renv, err), FL_OK);
	ck_assert_int_eq(fl_rpc_open_reply(aep, renv.data, renv.len, 0, fl_identity_public_key(cid),
	                                   seq, &ao, &back, &reason, err),
	                 FL_OK);
	ck_assert(back->hello_reply->accepted);
	fl_wire_free(back);

	/* The same Hello again: a replay, and its token is spent. */
	ck_assert_int_eq(fl_rpc_open_request(cep, env.data, env.len, 0, &o, &in, &reason, err),
	                 FL_EAUTH);
	ck_assert_int_eq(reason, FL_ENVELOPE_REPLAY);
	ck_assert_int_eq(fl_enroll_tokens_take(tokens, h, NOW, &got, err), FL_EAUTH);
	ck_assert_int_eq(fl_peers_find(cp, fl_identity_public_key(aid), &info), FL_OK);
	ck_assert_str_eq(info.name, "db-new");
	ck_assert_int_eq(info.role, FL_PEER_AGENT);

	fl_envelope_opened_fini(&o);
	fl_envelope_opened_fini(&ao);
	fl_buf_fini(&env);
	fl_buf_fini(&renv);
	fl_enroll_tokens_free(tokens);
	fl_envelope_free(cep);
	fl_envelope_free(aep);
	fl_peers_free(cp);
	fl_peers_free(ap);
	fl_identity_free(cid);
	fl_identity_free(aid);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("enroll");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, token_text_and_hash);
	tcase_add_test(tc, token_text_refused);
	tcase_add_test(tc, tokens_are_taken_once);
	tcase_add_test(tc, tokens_survive_a_restart);
	tcase_add_test(tc, tokens_are_capped);
	tcase_add_test(tc, an_agent_enrolls);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
