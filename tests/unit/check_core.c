/*
 * The coordinator's core and agent endpoint in one process, driven through
 * the real client (proto/client.h) over TCP with real envelopes, with a
 * scheduler of this test's own plugged in through struct fl_core_scheduler:
 * what the scheduler (engineer S) relies on. A poll with nothing to answer
 * is held; fl_core_wake_agent answers it with the assignment the hook adds,
 * committed before the reply; fl_core_wake_all delivers a halt; the report
 * hook runs once per report however often it is sent; the tick runs; and a
 * stop answers a held poll.
 */
#include <check.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_server.h"
#include "client.h"
#include "clock.h"
#include "coordinator_config.h"
#include "core.h"
#include "identity.h"
#include "keys.h"
#include "log.h"
#include "peers.h"
#include "store.h"
#include "store_sqlite_int.h"
#include "testutil.h"
#include "wire.h"

static char dir[256], err[FL_ERRBUF_SIZE];

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* ---- the test's scheduler ---- */

struct sched {
	struct fl_core *core;
	atomic_bool work, halt;
	atomic_int ticks, reports, hellos, polls;
	uint64_t issued; /* the assignment id handed out */
};

static enum fl_err s_start(void *arg, struct fl_core *core, char *errbuf)
{
	(void)errbuf;
	((struct sched *)arg)->core = core;
	return FL_OK;
}

static enum fl_err s_tick(void *arg, int64_t now_ms, char *errbuf)
{
	(void)now_ms;
	(void)errbuf;
	atomic_fetch_add(&((struct sched *)arg)->ticks, 1);
	return FL_OK;
}

static enum fl_err s_poll(void *arg, struct fl_core_agent *agent, struct fl_core_poll_reply *reply,
                          char *errbuf)
{
	struct sched *s = arg;
	struct fl_store *st = fl_core_store(s->core);
	enum fl_err rv;

	atomic_fetch_add(&s->polls, 1);
	if (atomic_exchange(&s->work, false)) {
		struct fl_store_assignment a = {0};
		Flotilla__V1__WorkAssignment *w = fl_arena_alloc(reply->arena, sizeof(*w));

		if ((rv = fl_store_assignment_next_id(st, &a.id, errbuf)) != FL_OK)
			return rv;
		a.rollout_id = "r-1";
		a.tenant_id = "t1";
		memcpy(a.agent_pk, agent->pk, 32);
		a.kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
		a.target_migration_id = "m2";
		a.issued_at_ms = fl_core_now_ms(s->core);
		if ((rv = fl_store_assignment_add(st, &a, errbuf)) != FL_OK)
			return rv;
		flotilla__v1__work_assignment__init(w);
		w->assignment_id = a.id;
		w->rollout_id = "r-1";
		w->tenant_id = "t1";
		w->release_hash.data = fl_arena_alloc(reply->arena, 32);
		w->release_hash.len = 32;
		memset(w->release_hash.data, 0x11, 32);
		w->target_migration_id = "m2";
		w->kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
		w->signed_order.data = fl_arena_memdup(reply->arena, "order", 5);
		w->signed_order.len = 5;
		fl_arena_push(reply->arena, &reply->assignments, &reply->n_assignments, w);
		s->issued = a.id;
	}
	if (atomic_exchange(&s->halt, false)) {
		Flotilla__V1__Halt *h = fl_arena_alloc(reply->arena, sizeof(*h));

		flotilla__v1__halt__init(h);
		h->rollout_id = "r-1";
		h->reason = "budget";
		fl_arena_push(reply->arena, &reply->halts, &reply->n_halts, h);
	}
	return FL_OK;
}

static enum fl_err s_report(void *arg, struct fl_core_agent *agent,
                            const struct fl_store_assignment *a, const Flotilla__V1__Report *r,
                            char *errbuf)
{
	(void)agent;
	(void)errbuf;
	ck_assert_uint_eq(a->id, r->assignment_id);
	/* the state it had until this report (core.h): issued, not withdrawn */
	ck_assert_int_eq(a->state, FL_STORE_ASSIGNMENT_ISSUED);
	atomic_fetch_add(&((struct sched *)arg)->reports, 1);
	return FL_OK;
}

static enum fl_err s_hello(void *arg, struct fl_core_agent *agent, char *errbuf)
{
	(void)agent;
	(void)errbuf;
	atomic_fetch_add(&((struct sched *)arg)->hellos, 1);
	return FL_OK;
}

static const struct fl_core_scheduler ops = {
    .start = s_start,
    .tick = s_tick,
    .tick_ms = 20,
    .poll = s_poll,
    .report = s_report,
    .hello = s_hello,
};

/* A job that runs on the core thread: set the flags, wake. */
struct wake_job {
	struct fl_core_job job;
	struct sched *s;
	uint8_t pk[32];
	bool all;
};

static void run_wake(struct fl_core *core, struct fl_core_job *job)
{
	struct wake_job *w = (struct wake_job *)job;

	if (w->all)
		fl_core_wake_all(core);
	else
		fl_core_wake_agent(core, w->pk);
	free(w);
}

/* ---- the rig ---- */

struct rig {
	struct fl_store *store;
	struct fl_identity *coord, *agent;
	struct fl_peers *coord_peers, *agent_peers;
	struct fl_envelope *agent_ep, *admin_ep, *client_ep;
	struct fl_core *core;
	struct fl_agent_server *srv;
	struct fl_client *client;
	struct sched sched;
	uint8_t agent_pk[32], coord_pk[32];
};

static struct rig R;

static void setup(void)
{
	struct fl_coordinator_config *cfg = calloc(1, sizeof(*cfg));
	struct fl_core_params p;
	struct fl_key ck, ak;
	char yaml[2048], pk[FL_KEY_PUBLIC_TEXT_LEN + 1], store[400], url[64];
	sqlite3_stmt *s;

	fl_log_set_level(FL_LOG_ERROR);
	ck_assert(sodium_init() >= 0);
	memset(&R, 0, sizeof(R));
	fl_test_tmp_root(dir, sizeof(dir), "check_core");
	fl_key_generate(FL_KEY_COORDINATOR, NULL, &ck);
	fl_key_generate(FL_KEY_AGENT, NULL, &ak);
	memcpy(R.coord_pk, ck.pk, 32);
	memcpy(R.agent_pk, ak.pk, 32);
	R.coord = fl_identity_new_from_seed(ck.seed);
	R.agent = fl_identity_new_from_seed(ak.seed);
	fl_key_fini(&ck);
	fl_key_fini(&ak);

	fl_key_public_text(R.agent_pk, pk);
	fl_test_fmt(store, sizeof(store), "%s/store.db", dir);
	fl_test_fmt(yaml, sizeof(yaml),
	            "key_file: unused\nproject_id: acme\nstore: \"%s\"\npoll_hold: 20s\n"
	            "agents:\n  - {name: a1, public_key: \"%s\"}\n",
	            store, pk);
	ck_assert_msg(fl_config_load_buffer(yaml, strlen(yaml), "t.yaml",
	                                    fl_coordinator_config_table, cfg, err) == FL_OK,
	              "%s", err);
	ck_assert_msg(fl_store_open(store, &R.store, NULL, err) == FL_OK, "%s", err);
	/* what the scheduler's own functions would have written: a release
	 * and a rollout for the assignments to belong to */
	s = fl_store_sqlite_prep(
	    R.store,
	    "INSERT INTO releases (hash, project_id, sequence, head_migration_id, migration_count,"
	    " signer_key_ids, file, pushed_at, pushed_by)"
	    " VALUES (zeroblob(32), 'acme', 1, 'm2', 2, '', x'00', 1, 'op')",
	    err);
	ck_assert_msg(s && fl_store_sqlite_done(R.store, s, "release", err) == FL_OK, "%s", err);
	s = fl_store_sqlite_prep(
	    R.store,
	    "INSERT INTO rollouts (id, created_seq, order_hash, signed_order, release_hash,"
	    " project_id, target_migration_id, state, created_at, updated_at, created_by, "
	    "signed_by,"
	    " expires_at) VALUES ('r-1', 1, randomblob(32), x'00', zeroblob(32), 'acme', 'm2', 2,"
	    " 1, 1, 'op', 'rk', 9)",
	    err);
	ck_assert_msg(s && fl_store_sqlite_done(R.store, s, "rollout", err) == FL_OK, "%s", err);

	ck_assert(fl_peers_new(R.coord, NULL, 0, 0, &R.coord_peers, err) == FL_OK);
	R.agent_ep = fl_envelope_new(R.coord, R.coord_peers);
	R.admin_ep = fl_envelope_new(R.coord, R.coord_peers);
	p.cfg = cfg;
	p.store = R.store;
	p.peers = R.coord_peers;
	p.agent_ep = R.agent_ep;
	p.admin_ep = R.admin_ep;
	ck_assert_msg(fl_core_new(&p, &R.core, err) == FL_OK, "%s", err);
	fl_core_set_scheduler(R.core, &ops, &R.sched);
	ck_assert_msg(fl_core_start(R.core, err) == FL_OK, "%s", err);
	ck_assert_msg(fl_agent_server_new(R.core, R.agent_ep, "tcp://127.0.0.1:0", 1 << 20, 64,
	                                  &R.srv, err) == FL_OK,
	              "%s", err);

	ck_assert(fl_peers_new(R.agent, NULL, 0, 0, &R.agent_peers, err) == FL_OK);
	ck_assert(fl_peers_add(R.agent_peers, R.coord_pk, FL_PEER_COORDINATOR, "c", err) == FL_OK);
	R.client_ep = fl_envelope_new(R.agent, R.agent_peers);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", fl_agent_server_port(R.srv));
	ck_assert_msg(fl_client_new(R.client_ep, url, (const uint8_t(*)[32])R.coord_pk, 1,
	                            &R.client, err) == FL_OK,
	              "%s", err);
}

static void teardown(void)
{
	fl_client_free(R.client);
	if (R.srv)
		fl_agent_server_stop_accepting(R.srv);
	if (R.core)
		fl_core_stop(R.core);
	fl_agent_server_free(R.srv);
	fl_core_free(R.core);
	fl_store_close(R.store);
	fl_envelope_free(R.agent_ep);
	fl_envelope_free(R.admin_ep);
	fl_envelope_free(R.client_ep);
	fl_peers_free(R.coord_peers);
	fl_peers_free(R.agent_peers);
	fl_identity_free(R.coord);
	fl_identity_free(R.agent);
	fl_test_rm_rf(dir);
}

static Flotilla__V1__Message *call(Flotilla__V1__Message *m, int64_t timeout_ms)
{
	Flotilla__V1__Message *reply = NULL;

	ck_assert_msg(fl_client_call(R.client, m, FL_WIRE_MAX_HELLO, 0, timeout_ms, &reply, err) ==
	                  FL_OK,
	              "%s", err);
	return reply;
}

static void hello(void)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *r;
	Flotilla__V1__Hello h = FLOTILLA__V1__HELLO__INIT;
	Flotilla__V1__Tenant t = FLOTILLA__V1__TENANT__INIT, *tp = &t;

	t.id = "t1";
	t.database = "t1";
	h.agent_id = "a1";
	h.agent_version = "test";
	h.protocol_version = FL_PROTOCOL_VERSION;
	h.project_id = "acme";
	h.tenants = &tp;
	h.n_tenants = 1;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
	m.hello = &h;
	r = call(&m, 10000);
	ck_assert_int_eq(r->body_case, FLOTILLA__V1__MESSAGE__BODY_HELLO_REPLY);
	ck_assert(r->hello_reply->accepted);
	fl_wire_free(r);
}

/* A poll on a thread of its own: it is held until woken. */
struct held_poll {
	pthread_t th;
	Flotilla__V1__Message *reply;
	enum fl_err rv;
};

static void *poll_thread(void *arg)
{
	struct held_poll *hp = arg;
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Poll p = FLOTILLA__V1__POLL__INIT;
	char e[FL_ERRBUF_SIZE];

	p.agent_id = "a1";
	p.free_slots = 2;
	p.max_wait_ms = 15000;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
	m.poll = &p;
	hp->rv = fl_client_call(R.client, &m, FL_WIRE_MAX_SMALL, 0, 20000, &hp->reply, e);
	return NULL;
}

static void wait_held(size_t n)
{
	int64_t deadline = fl_now_ms() + 10000;

	while (fl_core_held_count(R.core) != n) {
		ck_assert_msg(fl_now_ms() < deadline, "%zu polls held, not %zu",
		              fl_core_held_count(R.core), n);
		sleep_ms(2);
	}
}

static void wake(bool all)
{
	struct wake_job *w = calloc(1, sizeof(*w));

	w->job.run = run_wake;
	w->s = &R.sched;
	w->all = all;
	memcpy(w->pk, R.agent_pk, 32);
	fl_core_submit(R.core, &w->job);
}

/* Read an assignment's state on the core thread. */
struct read_job {
	struct fl_core_job job;
	uint64_t id;
	int state;
	atomic_bool done;
};

static void run_read(struct fl_core *core, struct fl_core_job *job)
{
	struct read_job *r = (struct read_job *)job;
	struct fl_store_assignment a;
	char e[FL_ERRBUF_SIZE];

	r->state = -1;
	if (fl_store_assignment_get(fl_core_store(core), r->id, &a, e) == FL_OK) {
		r->state = (int)a.state;
		fl_store_assignment_fini(&a);
	}
	atomic_store(&r->done, true);
}

static int assignment_state(uint64_t id)
{
	struct read_job r = {.job.run = run_read, .id = id};
	int64_t deadline = fl_now_ms() + 10000;

	atomic_init(&r.done, false);
	fl_core_submit(R.core, &r.job);
	while (!atomic_load(&r.done)) {
		ck_assert(fl_now_ms() < deadline);
		sleep_ms(1);
	}
	return r.state;
}

static Flotilla__V1__Message *report(uint64_t assignment, uint64_t journal)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Report r = FLOTILLA__V1__REPORT__INIT;

	r.agent_id = "a1";
	r.tenant_id = "t1";
	r.rollout_id = "r-1";
	r.assignment_id = assignment;
	r.kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
	r.outcome = FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED;
	r.journal_id = journal;
	r.head_migration_id = "m2";
	r.applied_count = 2;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_REPORT;
	m.report = &r;
	return call(&m, 10000);
}

START_TEST(held_poll_woken_with_work)
{
	struct held_poll hp = {0};
	Flotilla__V1__Message *r;

	hello();
	ck_assert_int_eq(atomic_load(&R.sched.hellos), 1);
	pthread_create(&hp.th, NULL, poll_thread, &hp);
	wait_held(1);
	ck_assert_int_ge(atomic_load(&R.sched.polls), 1); /* asked, and nothing came */
	atomic_store(&R.sched.work, true);
	wake(false);
	pthread_join(hp.th, NULL);
	ck_assert_int_eq(hp.rv, FL_OK);
	ck_assert_int_eq(hp.reply->body_case, FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY);
	ck_assert_uint_eq(hp.reply->poll_reply->n_assignments, 1);
	ck_assert_uint_eq(hp.reply->poll_reply->assignments[0]->assignment_id, R.sched.issued);
	fl_wire_free(hp.reply);
	wait_held(0);
	/* committed before the reply left: the store has it (read on the core,
	 * the store's one thread) */
	ck_assert_int_eq(assignment_state(R.sched.issued), FL_STORE_ASSIGNMENT_ISSUED);

	/* the report hook runs once, however often the report comes */
	r = report(R.sched.issued, 7);
	ck_assert_int_eq(r->body_case, FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK);
	fl_wire_free(r);
	r = report(R.sched.issued, 7);
	ck_assert_int_eq(r->body_case, FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK);
	fl_wire_free(r);
	ck_assert_int_eq(atomic_load(&R.sched.reports), 1);
	ck_assert_int_eq(assignment_state(R.sched.issued), FL_STORE_ASSIGNMENT_REPORTED);
	ck_assert_uint_eq(fl_core_counter(R.core, FL_CORE_REPORTS_DUPLICATE), 1);
	ck_assert_int_gt(atomic_load(&R.sched.ticks), 0);
}
END_TEST

START_TEST(halt_reaches_held_polls)
{
	struct held_poll hp = {0};

	hello();
	pthread_create(&hp.th, NULL, poll_thread, &hp);
	wait_held(1);
	atomic_store(&R.sched.halt, true);
	wake(true);
	pthread_join(hp.th, NULL);
	ck_assert_int_eq(hp.rv, FL_OK);
	ck_assert_uint_eq(hp.reply->poll_reply->n_halts, 1);
	ck_assert_str_eq(hp.reply->poll_reply->halts[0]->rollout_id, "r-1");
	fl_wire_free(hp.reply);
}
END_TEST

START_TEST(stop_answers_held_polls)
{
	struct held_poll hp = {0};
	int64_t t0;

	hello();
	pthread_create(&hp.th, NULL, poll_thread, &hp);
	wait_held(1);
	t0 = fl_now_ms();
	fl_agent_server_stop_accepting(R.srv);
	fl_core_stop(R.core);
	fl_agent_server_drain(R.srv, 5000);
	pthread_join(hp.th, NULL);
	ck_assert_int_eq(hp.rv, FL_OK);
	ck_assert_uint_eq(hp.reply->poll_reply->n_assignments, 0);
	ck_assert_int_lt(fl_now_ms() - t0, 10000); /* not the 15 s the poll asked for */
	fl_wire_free(hp.reply);
}
END_TEST

START_TEST(poll_before_hello_refused)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *r;
	Flotilla__V1__Poll p = FLOTILLA__V1__POLL__INIT;

	p.agent_id = "a1";
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
	m.poll = &p;
	r = call(&m, 10000);
	ck_assert_int_eq(r->body_case, FLOTILLA__V1__MESSAGE__BODY_ERROR);
	ck_assert_int_eq(r->error->code,
	                 FLOTILLA__V1__STATUS_CODE__STATUS_CODE_FAILED_PRECONDITION);
	fl_wire_free(r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, held_poll_woken_with_work);
	tcase_add_test(tc, halt_reaches_held_polls);
	tcase_add_test(tc, stop_answers_held_polls);
	tcase_add_test(tc, poll_before_hello_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
