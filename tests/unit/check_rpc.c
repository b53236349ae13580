/*
 * proto/rpc.c: requests and replies, numbered; several pinned coordinators;
 * redirects only to a pinned coordinator key.
 *
 * A: an agent pinning two coordinator keys, B and C. B and C each know A.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "rpc.h"
#include "wire.h"

static int64_t now_us = INT64_C(1700000000000000);

static int64_t clock_fn(void *arg)
{
	(void)arg;
	return now_us++; /* every seal a new microsecond: numbers grow */
}

struct node {
	struct fl_identity *id;
	struct fl_peers *peers;
	struct fl_envelope *ep;
};

static struct node A, B, C;

static void start(struct node *n, uint8_t tag)
{
	uint8_t seed[32];
	char err[FL_ERRBUF_SIZE] = "";

	memset(seed, tag, sizeof(seed));
	n->id = fl_identity_new_from_seed(seed);
	ck_assert_int_eq(fl_peers_new(n->id, NULL, 0, 0, &n->peers, err), FL_OK);
	n->ep = fl_envelope_new(n->id, n->peers);
	fl_envelope_set_clock(n->ep, clock_fn, NULL);
}

static void stop(struct node *n)
{
	fl_envelope_free(n->ep);
	fl_peers_free(n->peers);
	fl_identity_free(n->id);
}

static const uint8_t *pk(const struct node *n)
{
	return fl_identity_public_key(n->id);
}

static void knows(struct node *a, const struct node *b, enum fl_peer_role role, const char *name)
{
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(fl_peers_add(a->peers, pk(b), role, name, err) == FL_OK, "%s", err);
}

static void setup(void)
{
	fl_log_set_level(FL_LOG_ERROR);
	start(&A, 0xa1);
	start(&B, 0xb2);
	start(&C, 0xc3);
	knows(&A, &B, FL_PEER_COORDINATOR, "coord-b");
	knows(&A, &C, FL_PEER_COORDINATOR, "coord-c");
	knows(&B, &A, FL_PEER_AGENT, "agent-a");
	knows(&C, &A, FL_PEER_AGENT, "agent-a");
}

static void teardown(void)
{
	stop(&A);
	stop(&B);
	stop(&C);
}

static void poll_request(struct node *from, const struct node *to, struct fl_buf *out,
                         uint64_t *seq)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Poll p = FLOTILLA__V1__POLL__INIT;
	char err[FL_ERRBUF_SIZE] = "";

	p.agent_id = "db-1";
	p.free_slots = 2;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
	m.poll = &p;
	ck_assert_msg(fl_rpc_seal_request(from->ep, pk(to), &m, out, seq, err) == FL_OK, "%s", err);
}

static void poll_reply(struct node *from, const struct node *to, uint64_t request_seq,
                       uint32_t again_ms, struct fl_buf *out)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__PollReply r = FLOTILLA__V1__POLL_REPLY__INIT;
	char err[FL_ERRBUF_SIZE] = "";

	r.poll_again_ms = again_ms;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY;
	m.poll_reply = &r;
	ck_assert_msg(fl_rpc_seal_reply(from->ep, pk(to), request_seq, &m, out, err) == FL_OK, "%s",
	              err);
	ck_assert_uint_eq(m.reply_to_seq, request_seq);
}

/* Open a reply at A to the request numbered seq sent to `to`. */
static enum fl_err open_reply(const struct fl_buf *b, const struct node *to, uint64_t seq,
                              uint32_t *again_ms, char *err)
{
	struct fl_envelope_opened o;
	Flotilla__V1__Message *m = NULL;
	enum fl_envelope_reason reason;
	enum fl_err rv;

	fl_envelope_opened_init(&o);
	rv = fl_rpc_open_reply(A.ep, b->data, b->len, 0, pk(to), seq, &o, &m, &reason, err);
	if (rv == FL_OK) {
		ck_assert_int_eq(m->body_case, FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY);
		*again_ms = m->poll_reply->poll_again_ms;
	} else {
		ck_assert_ptr_null(m);
	}
	fl_wire_free(m);
	fl_envelope_opened_fini(&o);
	return rv;
}

/* B opens a request; its number in *seq. */
static enum fl_err open_request(struct node *at, const struct fl_buf *b, uint64_t *seq, char *err)
{
	struct fl_envelope_opened o;
	Flotilla__V1__Message *m = NULL;
	enum fl_envelope_reason reason;
	enum fl_err rv;

	fl_envelope_opened_init(&o);
	rv = fl_rpc_open_request(at->ep, b->data, b->len, 0, &o, &m, &reason, err);
	if (rv == FL_OK) {
		ck_assert_uint_eq(m->reply_to_seq, 0);
		*seq = o.seq;
	} else {
		ck_assert_ptr_null(m);
	}
	fl_wire_free(m);
	fl_envelope_opened_fini(&o);
	return rv;
}

START_TEST(a_reply_names_its_request)
{
	struct fl_buf q1 = FL_BUF_INIT, q2 = FL_BUF_INIT, r1 = FL_BUF_INIT, r2 = FL_BUF_INIT;
	uint64_t s1, s2, b1, b2;
	uint32_t again = 0;
	char err[FL_ERRBUF_SIZE] = "";

	/* Two requests in flight. */
	poll_request(&A, &B, &q1, &s1);
	poll_request(&A, &B, &q2, &s2);
	ck_assert_uint_gt(s2, s1);
	ck_assert_int_eq(open_request(&B, &q1, &b1, err), FL_OK);
	ck_assert_int_eq(open_request(&B, &q2, &b2, err), FL_OK);
	ck_assert_uint_eq(b1, s1);
	ck_assert_uint_eq(b2, s2);
	poll_reply(&B, &A, b1, 111, &r1);
	poll_reply(&B, &A, b2, 222, &r2);
	/* The reply to the first is refused as the reply to the second... */
	ck_assert_int_eq(open_reply(&r1, &B, s2, &again, err), FL_EAUTH);
	ck_assert_msg(strstr(err, "not ours") != NULL, "%s", err);
	/* ...and, its envelope number spent, can never be read again. */
	ck_assert_int_eq(open_reply(&r1, &B, s1, &again, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "replay"));
	ck_assert_int_eq(open_reply(&r2, &B, s2, &again, err), FL_OK);
	ck_assert_uint_eq(again, 222);
	fl_buf_fini(&q1);
	fl_buf_fini(&q2);
	fl_buf_fini(&r1);
	fl_buf_fini(&r2);
}
END_TEST

START_TEST(replies_come_from_the_peer_asked)
{
	struct fl_buf q = FL_BUF_INIT, r = FL_BUF_INIT;
	uint64_t s, sc;
	uint32_t again = 0;
	char err[FL_ERRBUF_SIZE] = "";

	/* Both pinned coordinators are heard... */
	poll_request(&A, &C, &q, &s);
	ck_assert_int_eq(open_request(&C, &q, &sc, err), FL_OK);
	poll_reply(&C, &A, sc, 5, &r);
	ck_assert_int_eq(open_reply(&r, &C, s, &again, err), FL_OK);
	/* ...but a request to B is answered by B only. */
	poll_request(&A, &B, &q, &s);
	poll_reply(&C, &A, s, 5, &r);
	ck_assert_int_eq(open_reply(&r, &B, s, &again, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "but the request went to"));
	fl_buf_fini(&q);
	fl_buf_fini(&r);
}
END_TEST

START_TEST(requests_and_replies_are_what_they_say)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__PollReply pr = FLOTILLA__V1__POLL_REPLY__INIT;
	Flotilla__V1__Poll p = FLOTILLA__V1__POLL__INIT;
	Flotilla__V1__AdminRequest ar = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__AgentListRequest al = FLOTILLA__V1__AGENT_LIST_REQUEST__INIT;
	struct fl_buf b = FL_BUF_INIT;
	uint64_t seq;
	char err[FL_ERRBUF_SIZE] = "";

	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY;
	m.poll_reply = &pr;
	ck_assert_int_eq(fl_rpc_seal_request(B.ep, pk(&A), &m, &b, &seq, err), FL_EINVAL);
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
	m.poll = &p;
	ck_assert_int_eq(fl_rpc_seal_reply(B.ep, pk(&A), 9, &m, &b, err), FL_EINVAL);
	m.reply_to_seq = 3;
	ck_assert_int_eq(fl_rpc_seal_request(A.ep, pk(&B), &m, &b, &seq, err), FL_EINVAL);
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY;
	m.poll_reply = &pr;
	ck_assert_int_eq(fl_rpc_seal_reply(B.ep, pk(&A), 0, &m, &b, err), FL_EINVAL);
	/* An agent key asking for an admin command: refused before decoding. */
	m.reply_to_seq = 0;
	ar.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST;
	ar.agent_list = &al;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST;
	m.admin_request = &ar;
	ck_assert_int_eq(fl_rpc_seal_request(A.ep, pk(&B), &m, &b, &seq, err), FL_OK);
	ck_assert_int_eq(open_request(&B, &b, &seq, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "an agent may not send admin_request"));
	/* A coordinator's reply is no request. */
	knows(&B, &C, FL_PEER_COORDINATOR, "coord-c");
	knows(&C, &B, FL_PEER_COORDINATOR, "coord-b");
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY;
	m.poll_reply = &pr;
	ck_assert_int_eq(fl_rpc_seal_reply(C.ep, pk(&B), 1, &m, &b, err), FL_OK);
	ck_assert_int_eq(open_request(&B, &b, &seq, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "where a request belongs"));
	fl_buf_fini(&b);
}
END_TEST

START_TEST(redirect_only_to_a_pinned_coordinator)
{
	Flotilla__V1__Redirect r = FLOTILLA__V1__REDIRECT__INIT;
	char err[FL_ERRBUF_SIZE] = "";
	uint8_t stranger[32];

	r.coordinator_url = "tcp://coord-c:7400";
	r.leader_public_key.data = (uint8_t *)pk(&C);
	r.leader_public_key.len = 32;
	ck_assert_int_eq(fl_rpc_redirect_check(A.peers, &r, err), FL_OK);
	/* To a key never pinned (an attacker's coordinator). */
	memset(stranger, 0x5a, sizeof(stranger));
	r.leader_public_key.data = stranger;
	ck_assert_int_eq(fl_rpc_redirect_check(A.peers, &r, err), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(err, "is not pinned here: not followed"));
	/* To a peer that is no coordinator. */
	knows(&A, &C, FL_PEER_COORDINATOR, "coord-c"); /* no change */
	r.leader_public_key.data = (uint8_t *)pk(&B);
	ck_assert_int_eq(fl_rpc_redirect_check(A.peers, &r, err), FL_OK);
	ck_assert_int_eq(fl_peers_add(A.peers, pk(&B), FL_PEER_AGENT, "coord-b", err), FL_OK);
	ck_assert_int_eq(fl_rpc_redirect_check(A.peers, &r, err), FL_EAUTH);
	/* To a revoked one. */
	r.leader_public_key.data = (uint8_t *)pk(&C);
	ck_assert_int_eq(fl_peers_revoke(A.peers, pk(&C), err), FL_OK);
	ck_assert_int_eq(fl_rpc_redirect_check(A.peers, &r, err), FL_EAUTH);
	r.leader_public_key.len = 0;
	ck_assert_int_eq(fl_rpc_redirect_check(A.peers, &r, err), FL_EAUTH);
	ck_assert_int_eq(fl_rpc_redirect_check(A.peers, NULL, err), FL_EAUTH);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rpc");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_reply_names_its_request);
	tcase_add_test(tc, replies_come_from_the_peer_asked);
	tcase_add_test(tc, requests_and_replies_are_what_they_say);
	tcase_add_test(tc, redirect_only_to_a_pinned_coordinator);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
