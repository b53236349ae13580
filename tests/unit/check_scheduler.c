/*
 * The rollout scheduler (coordinator/scheduler.h, rollout_admin.h) on a real
 * SQLite store in a temporary folder, driven by synthetic agents: Hellos,
 * Polls with free slots and running lists, Reports with chosen outcomes,
 * and time moved by hand. Reopening the store (a new scheduler over the
 * same file) stands for a coordinator killed and started again.
 *
 * Every poll checks the limits: assignments outstanding for one wave never
 * exceed its max_parallel, those of one rollout on one agent its
 * per-agent limit, and a tenant never has two at once.
 */
#include <check.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "migration.h"
#include "order.h"
#include "policy.h"
#include "release.h"
#include "rollout_admin.h"
#include "scheduler.h"
#include "store.h"
#include "store_rollouts.h"
#include "testutil.h"
#include "wire.h"

#define T0      INT64_C(1700000000000) /* 2023-11-14 22:13:20 UTC: minute 1333 */
#define MINUTE  INT64_C(60000)
#define HOUR    (60 * MINUTE)
#define DAY     (24 * HOUR)
#define MAXA    16
#define MAXOUT  4096
#define PROJECT "acme-app"
#define M1      "20240101000000_init"
#define M2      "20240102000000_add_email"
#define M3      "20240103000000_drop_email"
#define SC(x)   FLOTILLA__V1__STATUS_CODE__STATUS_CODE_##x
#define OC(x)   FLOTILLA__V1__OUTCOME__OUTCOME_##x
#define RS(x)   FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_##x
#define WS(x)   FLOTILLA__V1__WAVE_STATE__WAVE_STATE_##x
#define WK(x)   FLOTILLA__V1__WORK_KIND__WORK_KIND_##x
#define CMD(x)  FLOTILLA__V1__ADMIN_REQUEST__COMMAND_##x

static char err[FL_ERRBUF_SIZE];
static int64_t now;

/* An assignment as the synthetic agent holds it. */
struct asg {
	uint64_t id;
	int agent;
	char rollout[32];
	uint32_t wave;
	char tenant[64];
	int kind;
	char target[128];
	size_t rb_len;    /* signed rollback order's length */
	bool lost;        /* the agent never got it (or went silent with it) */
	bool withdrawn;   /* the scheduler withdrew it (the agent may still run it) */
	uint64_t arrival; /* when the agent got it (an order) */
	bool done;        /* the agent ran it: its report waits in its journal */
};

static struct {
	char dir[256], path[320], mdir[320];
	struct fl_store *st;
	struct fl_scheduler *s;
	struct fl_key rkey;
	uint8_t rhash[32];
	size_t n_agents;
	uint8_t apk[MAXA][32];
	unsigned wakes[MAXA];
	struct asg out[MAXOUT];
	size_t n_out;
	/* the limits of the rollout under test, per wave */
	uint32_t maxpar[8], perag[8];
	/* every assignment id ever received, and how often the same id came */
	uint64_t seen[16384];
	size_t n_seen;
	unsigned resent;
	unsigned journal;
	bool drop_withdrawn; /* the agent endpoint drops reports of withdrawn work */
	/* the assignments of the last poll: ids, and whether each was new */
	uint64_t last_ids[MAXOUT];
	bool last_fresh[MAXOUT];
	size_t n_last;
	uint64_t arrivals;
} fx;

/* ---- fixture ---- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[512];
	FILE *f;

	fl_test_fmt(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void migration(const char *id, const char *up, const char *down)
{
	char d[512];

	fl_test_fmt(d, sizeof(d), "%s/%s", fx.mdir, id);
	ck_assert_int_eq(mkdir(d, 0755), 0);
	write_file(d, "migration.sql", up);
	if (down)
		write_file(d, "down.sql", down);
}

static void wake_cb(void *arg, const uint8_t pk[32])
{
	(void)arg;
	for (size_t i = 0; i < fx.n_agents; i++)
		if (memcmp(fx.apk[i], pk, 32) == 0)
			fx.wakes[i]++;
}

static void sched_new(void)
{
	struct fl_scheduler_config cfg = {0};

	cfg.project_id = PROJECT;
	cfg.trusted_release_keys = (const uint8_t(*)[32])fx.rkey.pk;
	cfg.n_trusted_release_keys = 1;
	cfg.agent_offline_after_ms = 90000;
	cfg.resend_after_ms = 60000;
	cfg.busy_retry_ms = 30000;
	ck_assert_msg(fl_scheduler_new(fx.st, &cfg, wake_cb, NULL, now, &fx.s, err) == FL_OK, "%s",
	              err);
}

/* The store and scheduler, a release of M1..M3 (M3 with down.sql or not). */
static void fx_up(bool m3_down)
{
	struct fl_migration_set set;
	struct fl_store_release r = {0};
	struct fl_store_release_migration migs[3];
	struct fl_buf file = FL_BUF_INIT, signed_file = FL_BUF_INIT;
	char hash[FL_RELEASE_HASH_HEX_LEN + 1];
	bool created;

	memset(&fx, 0, sizeof(fx));
	now = T0;
	err[0] = '\0';
	fl_log_set_level(FL_LOG_ERROR);
	fl_test_tmp_root(fx.dir, sizeof(fx.dir), "check_scheduler");
	fl_test_fmt(fx.path, sizeof(fx.path), "%s/store.db", fx.dir);
	fl_test_fmt(fx.mdir, sizeof(fx.mdir), "%s/migrations", fx.dir);
	ck_assert_int_eq(mkdir(fx.mdir, 0755), 0);
	migration(M1, "CREATE TABLE users (id int PRIMARY KEY);\n", "DROP TABLE users;\n");
	migration(M2, "ALTER TABLE users ADD COLUMN email text;\n",
	          "ALTER TABLE users DROP COLUMN email;\n");
	migration(M3, "-- flotilla:phase contract\nALTER TABLE users DROP COLUMN email;\n",
	          m3_down ? "ALTER TABLE users ADD COLUMN email text;\n" : NULL);
	ck_assert_msg(fl_migration_set_load(fx.mdir, &set, err) == FL_OK, "%s", err);
	ck_assert_msg(fl_release_build(&set, PROJECT, 1, &file, hash, err) == FL_OK, "%s", err);
	fl_key_generate(FL_KEY_RELEASE, NULL, &fx.rkey);
	ck_assert_msg(fl_release_sign(file.data, file.len, &fx.rkey, &signed_file, err) == FL_OK,
	              "%s", err);
	for (int i = 0; i < 32; i++) {
		unsigned v;

		sscanf(hash + 2 * i, "%2x", &v);
		fx.rhash[i] = (uint8_t)v;
	}
	ck_assert_msg(fl_store_open(fx.path, &fx.st, &created, err) == FL_OK, "%s", err);
	migs[0] = (struct fl_store_release_migration){(char *)M1, true};
	migs[1] = (struct fl_store_release_migration){(char *)M2, true};
	migs[2] = (struct fl_store_release_migration){(char *)M3, m3_down};
	memcpy(r.hash, fx.rhash, 32);
	r.project_id = PROJECT;
	r.sequence = 1;
	r.name = "v1";
	r.head_migration_id = M3;
	r.migration_count = 3;
	r.signer_key_ids = "k";
	r.pushed_at_ms = now;
	r.pushed_by = "op";
	r.file = (uint8_t *)signed_file.data;
	r.file_len = signed_file.len;
	r.migrations = migs;
	r.n_migrations = 3;
	ck_assert_msg(fl_store_release_add(fx.st, &r, err) == FL_OK, "%s", err);
	fl_buf_fini(&file);
	fl_buf_fini(&signed_file);
	fl_migration_set_fini(&set);
	sched_new();
}

static void fx_down(void)
{
	fl_scheduler_free(fx.s);
	if (fx.st) {
		ck_assert_msg(fl_store_check(fx.st, err) == FL_OK, "%s", err);
		fl_store_close(fx.st);
	}
	fl_key_fini(&fx.rkey);
	fl_test_rm_rf(fx.dir);
}

/* A coordinator killed and started again: a new scheduler over the file. */
static void fx_restart(void)
{
	bool created;

	fl_scheduler_free(fx.s);
	fl_store_close(fx.st);
	fx.s = NULL;
	ck_assert_msg(fl_store_open(fx.path, &fx.st, &created, err) == FL_OK, "%s", err);
	ck_assert(!created);
	sched_new();
}

/* Agents 0..n-1, each owning per tenants "t<agent><k>": labels ring=canary
 * on the first canary tenants overall, region eu/us alternating; head M1
 * (they need M2 and M3), except the first at_target ones at M3. */
static void fx_fleet(size_t n, size_t per, size_t canary, size_t at_target)
{
	size_t idx = 0;

	fx.n_agents = n;
	for (size_t a = 0; a < n; a++) {
		struct fl_store_agent ag = {0};
		char name[32];

		memset(fx.apk[a], 0, 32);
		fx.apk[a][0] = (uint8_t)(a + 1);
		fx.apk[a][31] = 0x5a;
		fl_test_fmt(name, sizeof(name), "agent%zu", a);
		memcpy(ag.pk, fx.apk[a], 32);
		ag.name = name;
		fl_labels_init(&ag.labels);
		ag.approved_at_ms = now;
		ag.approved_by = "config";
		ck_assert_msg(fl_store_agent_add(fx.st, &ag, err) == FL_OK, "%s", err);
		for (size_t k = 0; k < per; k++, idx++) {
			struct fl_store_tenant t = {0};
			char id[64];

			fl_test_fmt(id, sizeof(id), "t%02zu%03zu", a, k);
			t.id = id;
			memcpy(t.agent_pk, fx.apk[a], 32);
			t.database = "db";
			t.schema = id;
			fl_labels_init(&t.labels);
			ck_assert(fl_labels_set(&t.labels, "region", idx % 2 ? "us" : "eu", err) ==
			          FL_OK);
			if (idx < canary)
				ck_assert(fl_labels_set(&t.labels, "ring", "canary", err) == FL_OK);
			t.head_migration_id = idx < at_target ? M3 : M1;
			t.applied_count = idx < at_target ? 3 : 1;
			t.fingerprint = "";
			t.read_error = "";
			t.first_seen_at_ms = t.updated_at_ms = now;
			ck_assert_msg(fl_store_tenant_put(fx.st, &t, err) == FL_OK, "%s", err);
			fl_labels_fini(&t.labels);
		}
	}
}

/* ---- orders and admin commands ---- */

static void order_for(const char *policy_yaml, const struct fl_selector *sel, int64_t expires,
                      struct fl_buf *out)
{
	struct fl_policy p;
	struct fl_selector all;
	struct fl_rollout_params rp = {0};
	struct fl_buf tmp = FL_BUF_INIT;
	char hash[65];

	ck_assert_msg(fl_policy_load_buffer(policy_yaml, strlen(policy_yaml), "p.yaml", &p, err) ==
	                  FL_OK,
	              "%s", err);
	fl_selector_init(&all);
	all.all = true;
	rp.project_id = PROJECT;
	rp.release_hash = fx.rhash;
	rp.target_migration_id = M3;
	rp.selector = sel ? sel : &all;
	rp.policy = &p;
	rp.created_at_ms = now;
	rp.expires_at_ms = expires ? expires : now + 7 * DAY;
	rp.reason = "test";
	ck_assert_msg(fl_order_build_rollout(&rp, out, hash, err) == FL_OK, "%s", err);
	ck_assert_msg(fl_order_sign(out->data, out->len, FL_ORDER_ROLLOUT, &fx.rkey, &tmp, err) ==
	                  FL_OK,
	              "%s", err);
	fl_buf_fini(out);
	*out = tmp;
	for (size_t w = 0; w < p.n_waves && w < 8; w++) {
		fx.maxpar[w] = p.waves[w].max_parallel;
		fx.perag[w] = p.waves[w].per_agent_parallel ? p.waves[w].per_agent_parallel
		                                            : p.per_agent_parallel;
	}
	fl_selector_fini(&all);
	fl_policy_fini(&p);
}

static const struct fl_rollout_caller op = {"0123456789abcdef", "alice"};

static int admin(Flotilla__V1__AdminRequest *rq, struct fl_rollout_reply *rep)
{
	char e2[FL_ERRBUF_SIZE] = "";
	struct fl_buf packed = FL_BUF_INIT;
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;

	ck_assert_msg(fl_rollout_admin(fx.s, &op, rq, now, rep, e2) == FL_OK, "%s", e2);
	/* whatever the reply, it packs (the wire's rules hold) */
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE;
	m.admin_response = &rep->response;
	m.reply_to_seq = 1;
	ck_assert_msg(fl_wire_pack(&m, &packed, FL_WIRE_MAX_ADMIN_RESPONSE, e2) == FL_OK, "%s", e2);
	fl_buf_fini(&packed);
	return rep->response.status->code;
}

/* Start a rollout of policy_yaml on sel (NULL: all); the rollout's id into
 * id; returns the status code (the message in err). */
static int start(const char *policy_yaml, const struct fl_selector *sel, int64_t expires,
                 char id[32])
{
	Flotilla__V1__AdminRequest rq = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStartRequest sr = FLOTILLA__V1__ROLLOUT_START_REQUEST__INIT;
	struct fl_rollout_reply rep;
	struct fl_buf order = FL_BUF_INIT;
	int code;

	order_for(policy_yaml, sel, expires, &order);
	sr.signed_order.data = (uint8_t *)order.data;
	sr.signed_order.len = order.len;
	rq.command_case = CMD(ROLLOUT_START);
	rq.rollout_start = &sr;
	code = admin(&rq, &rep);
	snprintf(err, sizeof(err), "%s", rep.response.status->message);
	if (id)
		snprintf(id, 32, "%s",
		         code == SC(OK) ? rep.response.rollout_start->rollout_id : "");
	ck_assert_ptr_nonnull(rep.response.rollout_start);
	ck_assert_ptr_nonnull(rep.response.rollout_start->plan);
	fl_rollout_reply_fini(&rep);
	fl_buf_fini(&order);
	return code;
}

static void start_ok(const char *policy_yaml, char id[32])
{
	int code = start(policy_yaml, NULL, 0, id);

	ck_assert_msg(code == SC(OK), "start refused (%d): %s", code, err);
}

/* The rollout's status (the caller finis rep). */
static Flotilla__V1__RolloutInfo *info(const char *id, struct fl_rollout_reply *rep)
{
	Flotilla__V1__AdminRequest rq = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStatusRequest sr = FLOTILLA__V1__ROLLOUT_STATUS_REQUEST__INIT;

	sr.rollout_id = (char *)id;
	rq.command_case = CMD(ROLLOUT_STATUS);
	rq.rollout_status = &sr;
	ck_assert_int_eq(admin(&rq, rep), SC(OK));
	ck_assert_uint_eq(rep->response.rollout_status->n_rollouts, 1);
	return rep->response.rollout_status->rollouts[0];
}

static int rstate(const char *id)
{
	struct fl_rollout_reply rep;
	int st = info(id, &rep)->state;

	fl_rollout_reply_fini(&rep);
	return st;
}

static int wstate(const char *id, uint32_t w)
{
	struct fl_rollout_reply rep;
	int st = info(id, &rep)->waves[w]->state;

	fl_rollout_reply_fini(&rep);
	return st;
}

/* A simple command by case: pause, resume, halt, promote (wave), retry. */
static int command(int c, const char *id, uint32_t wave)
{
	Flotilla__V1__AdminRequest rq = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutPauseRequest pa = FLOTILLA__V1__ROLLOUT_PAUSE_REQUEST__INIT;
	Flotilla__V1__RolloutResumeRequest re = FLOTILLA__V1__ROLLOUT_RESUME_REQUEST__INIT;
	Flotilla__V1__RolloutHaltRequest ha = FLOTILLA__V1__ROLLOUT_HALT_REQUEST__INIT;
	Flotilla__V1__RolloutPromoteRequest pr = FLOTILLA__V1__ROLLOUT_PROMOTE_REQUEST__INIT;
	Flotilla__V1__RolloutRetryRequest rt = FLOTILLA__V1__ROLLOUT_RETRY_REQUEST__INIT;
	struct fl_rollout_reply rep;
	int code;

	rq.command_case = (Flotilla__V1__AdminRequest__CommandCase)c;
	pa.rollout_id = re.rollout_id = ha.rollout_id = pr.rollout_id = rt.rollout_id = (char *)id;
	pa.reason = re.reason = ha.reason = pr.reason = rt.reason = "test";
	pr.wave = wave;
	rq.rollout_pause = &pa;
	if (c == CMD(ROLLOUT_RESUME))
		rq.rollout_resume = &re;
	if (c == CMD(ROLLOUT_HALT))
		rq.rollout_halt = &ha;
	if (c == CMD(ROLLOUT_PROMOTE))
		rq.rollout_promote = &pr;
	if (c == CMD(ROLLOUT_RETRY))
		rq.rollout_retry = &rt;
	code = admin(&rq, &rep);
	snprintf(err, sizeof(err), "%s", rep.response.status->message);
	fl_rollout_reply_fini(&rep);
	return code;
}

/* ---- synthetic agents ---- */

static size_t held_by(int agent)
{
	size_t n = 0;

	for (size_t i = 0; i < fx.n_out; i++)
		n += fx.out[i].agent == agent;
	return n;
}

static void check_limits(void)
{
	size_t outstanding = 0;

	/* what the scheduler withdrew no longer counts (the agent may run it still) */
	for (size_t i = 0; i < fx.n_out; i++) {
		struct fl_store_assignment as;

		if (!fx.out[i].withdrawn) {
			ck_assert(fl_store_assignment_get(fx.st, fx.out[i].id, &as, err) == FL_OK);
			fx.out[i].withdrawn = as.state != FL_STORE_ASSIGNMENT_ISSUED;
			fl_store_assignment_fini(&as);
		}
		outstanding += !fx.out[i].withdrawn;
	}
	for (size_t i = 0; i < fx.n_out; i++) {
		uint32_t in_wave = 0, on_agent = 0;

		if (fx.out[i].withdrawn)
			continue;
		for (size_t k = 0; k < fx.n_out; k++) {
			if (strcmp(fx.out[k].rollout, fx.out[i].rollout) != 0 ||
			    fx.out[k].withdrawn)
				continue;
			in_wave += fx.out[k].wave == fx.out[i].wave;
			on_agent += fx.out[k].agent == fx.out[i].agent;
			if (k != i)
				ck_assert_msg(strcmp(fx.out[k].tenant, fx.out[i].tenant) != 0,
				              "tenant '%s' has two assignments out",
				              fx.out[i].tenant);
		}
		ck_assert_msg(in_wave <= fx.maxpar[fx.out[i].wave],
		              "wave %u: %u out, max_parallel %u", fx.out[i].wave, in_wave,
		              fx.maxpar[fx.out[i].wave]);
		/* per agent: the limit of the wave at hand (one wave runs at once) */
		ck_assert_msg(on_agent <= fx.perag[fx.out[i].wave], "agent %d: %u out, limit %u",
		              fx.out[i].agent, on_agent, fx.perag[fx.out[i].wave]);
	}
	ck_assert_uint_eq(fl_scheduler_outstanding(fx.s), outstanding);
}

struct polled {
	size_t assignments, halts, resent;
	char halt_reason[256];
};

/* Agent a polls with free slots; what it is running is what it holds. */
static struct polled poll_agent(int a, uint32_t free_slots)
{
	struct fl_scheduler_work w;
	uint64_t running[MAXOUT];
	size_t n = 0;
	struct polled p = {0};

	for (size_t i = 0; i < fx.n_out; i++)
		if (fx.out[i].agent == a && !fx.out[i].lost && !fx.out[i].done)
			running[n++] = fx.out[i].id;
	ck_assert_msg(fl_scheduler_poll(fx.s, fx.apk[a], free_slots, running, n, now, &w, err) ==
	                  FL_OK,
	              "%s", err);
	ck_assert_uint_le(w.n_assignments, free_slots);
	fx.n_last = 0;
	for (size_t i = 0; i < w.n_assignments; i++) {
		const Flotilla__V1__WorkAssignment *x = w.assignments[i];
		struct fl_order *o = NULL;
		bool known = false, was_lost = false;

		for (size_t k = 0; k < fx.n_out; k++)
			if (fx.out[k].id == x->assignment_id) {
				ck_assert_msg(fx.out[k].lost || fx.out[k].done,
				              "assignment %" PRIu64 " sent while listed as running",
				              x->assignment_id);
				fx.out[k] = fx.out[--fx.n_out];
				was_lost = true;
				break;
			}
		(void)was_lost;
		/* the signed order, exactly as signed, verifies */
		ck_assert_msg(fl_order_verify(x->signed_order.data, x->signed_order.len,
		                              FL_ORDER_ROLLOUT, (const uint8_t(*)[32])fx.rkey.pk, 1,
		                              PROJECT, now, &o, err) == FL_OK,
		              "%s", err);
		ck_assert(memcmp(x->release_hash.data, fx.rhash, 32) == 0);
		if (x->kind == WK(APPLY))
			ck_assert_str_eq(x->target_migration_id, M3);
		if (x->kind == WK(CHECK))
			ck_assert_str_eq(x->target_migration_id, "");
		fl_order_free(o);
		for (size_t k = 0; k < fx.n_seen; k++)
			if (fx.seen[k] == x->assignment_id) {
				p.resent++;
				fx.resent++;
				known = true;
			}
		if (!known) {
			ck_assert_uint_lt(fx.n_seen, sizeof(fx.seen) / sizeof(fx.seen[0]));
			fx.seen[fx.n_seen++] = x->assignment_id;
		}
		fx.last_ids[fx.n_last] = x->assignment_id;
		fx.last_fresh[fx.n_last++] = !known;
		ck_assert_uint_lt(fx.n_out, MAXOUT);
		fx.out[fx.n_out] = (struct asg){.id = x->assignment_id,
		                                .agent = a,
		                                .wave = x->wave,
		                                .kind = x->kind,
		                                .rb_len = x->signed_rollback_order.len,
		                                .arrival = ++fx.arrivals};
		snprintf(fx.out[fx.n_out].rollout, 32, "%s", x->rollout_id);
		snprintf(fx.out[fx.n_out].tenant, 64, "%s", x->tenant_id);
		snprintf(fx.out[fx.n_out].target, 128, "%s", x->target_migration_id);
		fx.n_out++;
	}
	p.assignments = w.n_assignments;
	p.halts = w.n_halts;
	if (w.n_halts)
		snprintf(p.halt_reason, sizeof(p.halt_reason), "%s", w.halts[0]->reason);
	fl_scheduler_work_fini(&w);
	check_limits();
	return p;
}

/*
 * What the agent endpoint (agent_server.c) does with a report, in its
 * transaction: bound to the assignment issued to this agent for this tenant,
 * taken once: an assignment still issued, or withdrawn by the scheduler (its
 * late report proves what the agent did), is marked reported and the
 * scheduler hears of it; one reported already is a duplicate. With
 * fx.drop_withdrawn, a withdrawn one is dropped (the endpoint before
 * it passed them on). Returns whether the scheduler heard of it.
 */
static bool endpoint_report(const struct asg *a, int outcome, bool applied, const char *message)
{
	Flotilla__V1__Report r = FLOTILLA__V1__REPORT__INIT;
	Flotilla__V1__MigrationResult mr = FLOTILLA__V1__MIGRATION_RESULT__INIT, *mrs[] = {&mr};
	struct fl_store_assignment as, as2;
	bool heard = false;

	r.agent_id = "agent";
	r.tenant_id = (char *)a->tenant;
	r.rollout_id = (char *)a->rollout;
	r.assignment_id = a->id;
	r.kind = (Flotilla__V1__WorkKind)a->kind;
	r.outcome = (Flotilla__V1__Outcome)outcome;
	r.message = (char *)(message                                            ? message
	                     : outcome == OC(APPLIED) || outcome == OC(HEALTHY) ? ""
	                                                                        : "it went wrong");
	r.started_at_ms = now - 1000;
	r.finished_at_ms = now;
	r.journal_id = ++fx.journal;
	if (applied) {
		mr.migration_id = M2;
		mr.outcome = OC(APPLIED);
		r.migrations = mrs;
		r.n_migrations = 1;
	}
	ck_assert_msg(fl_store_begin(fx.st, err) == FL_OK, "%s", err);
	ck_assert_msg(fl_store_assignment_get(fx.st, a->id, &as, err) == FL_OK, "%s", err);
	ck_assert(memcmp(as.agent_pk, fx.apk[a->agent], 32) == 0);
	ck_assert_str_eq(as.tenant_id, a->tenant);
	if (as.state == FL_STORE_ASSIGNMENT_ISSUED ||
	    (as.state == FL_STORE_ASSIGNMENT_CANCELED && !fx.drop_withdrawn)) {
		/* as the endpoint does: the scheduler first, then marked reported */
		ck_assert_msg(fl_scheduler_report(fx.s, &as, &r, now, err) == FL_OK, "%s", err);
		ck_assert(fl_store_assignment_set_state(fx.st, as.id, FL_STORE_ASSIGNMENT_REPORTED,
		                                        outcome, now, err) == FL_OK);
		heard = true;
	}
	ck_assert_msg(fl_store_commit(fx.st, err) == FL_OK, "%s", err);
	if (heard) {
		ck_assert(fl_store_assignment_get(fx.st, a->id, &as2, err) == FL_OK);
		ck_assert_int_eq(as2.state, FL_STORE_ASSIGNMENT_REPORTED);
		fl_store_assignment_fini(&as2);
	}
	fl_store_assignment_fini(&as);
	return heard;
}

/* Report assignment out[i] with this outcome, and drop it. */
static void report_at(size_t i, int outcome)
{
	struct asg a = fx.out[i];

	fx.out[i] = fx.out[--fx.n_out];
	endpoint_report(
	    &a, outcome,
	    a.kind == WK(APPLY) && (outcome == OC(APPLIED) || outcome == OC(HEALTH_FAILED)), NULL);
}

/* Report everything outstanding, the outcome by fn (NULL: success). */
typedef int (*outcome_fn)(const struct asg *a);

static void report_all(outcome_fn fn)
{
	for (size_t i = 0; i < fx.n_out;) {
		int o;

		if (fx.out[i].lost) {
			i++;
			continue;
		}
		o = fn ? fn(&fx.out[i]) : 0;
		if (o == 0)
			o = fx.out[i].kind == WK(APPLY)   ? OC(APPLIED)
			    : fx.out[i].kind == WK(CHECK) ? OC(HEALTHY)
			                                  : OC(ROLLED_BACK);
		report_at(i, o);
	}
}

/* Agent a loses what it holds (its reply never came, or it went silent). */
static void lose(int a)
{
	for (size_t i = 0; i < fx.n_out; i++)
		if (fx.out[i].agent == a)
			fx.out[i].lost = true;
}

static size_t live_out(void)
{
	size_t n = 0;

	for (size_t i = 0; i < fx.n_out; i++)
		n += !fx.out[i].lost;
	return n;
}

/* Rounds of: tick, every agent polls (free slots cap), every assignment is
 * reported (outcome by fn), a second passes; until nothing moves. Returns
 * the number of assignments issued. */
static size_t run(outcome_fn fn, uint32_t cap, int rounds)
{
	size_t issued = 0;

	for (int r = 0; r < rounds; r++) {
		size_t got = 0;

		ck_assert_msg(fl_scheduler_tick(fx.s, now, err) == FL_OK, "%s", err);
		for (size_t a = 0; a < fx.n_agents; a++)
			got += poll_agent((int)a, cap - (uint32_t)held_by((int)a)).assignments;
		issued += got;
		if (got == 0 && live_out() == 0)
			break;
		report_all(fn);
		now += 1000;
	}
	return issued;
}

/* Move time on by step until t, ticking and letting agents poll and report. */
static size_t run_until(int64_t t, int64_t step, outcome_fn fn, uint32_t cap)
{
	size_t issued = 0;

	while (now < t) {
		now = now + step < t ? now + step : t;
		ck_assert_msg(fl_scheduler_tick(fx.s, now, err) == FL_OK, "%s", err);
		for (size_t a = 0; a < fx.n_agents; a++)
			issued += poll_agent((int)a, cap - (uint32_t)held_by((int)a)).assignments;
		report_all(fn);
	}
	return issued;
}

/* Rollout tenants in a state, from the store. */
struct cnt_ctx {
	int state;
	int wave; /* -1: any */
	int n;
};

static bool cnt_cb(void *arg, const struct fl_store_rollout_tenant *t)
{
	struct cnt_ctx *c = arg;

	if (t->state == c->state && (c->wave < 0 || (int)t->wave == c->wave))
		c->n++;
	return true;
}

static int tenants_in(const char *rollout, int state, int wave)
{
	struct cnt_ctx c = {state, wave, 0};

	ck_assert(fl_store_rollout_tenant_each(fx.st, rollout, cnt_cb, &c, err) == FL_OK);
	return c.n;
}

static int audits(const char *command)
{
	struct fl_store_audit *a;
	size_t n;
	int k = 0;

	ck_assert(fl_store_audit_query(fx.st, 0, 0, "", 100000, &a, &n, err) == FL_OK);
	for (size_t i = 0; i < n; i++)
		k += strcmp(a[i].command, command) == 0;
	fl_store_audits_free(a, n);
	return k;
}

/* ---- policies ---- */

#define POLICY(waves, extra) "name: p\nwaves:\n" waves "per_agent_parallel: 2\n" extra

static const char three_waves[] =
    POLICY("  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 2}\n"
           "  - {name: early, select: {percent: 50}, max_parallel: 3}\n"
           "  - {name: rest, select: {percent: 100}, max_parallel: 5}\n",
           "");

/* ---- tests ---- */

START_TEST(happy_path)
{
	char id[32];
	size_t issued;
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri;
	struct fl_store_tenant t;

	fx_up(true);
	fx_fleet(3, 8, 4, 2); /* 24 tenants: 4 canaries, 2 at the target already */
	start_ok(three_waves, id);
	ck_assert_str_eq(id, "r-1");
	ck_assert_int_eq(rstate(id), RS(RUNNING));
	issued = run(NULL, 3, 200);
	ck_assert_uint_eq(issued, 22); /* the two at target are skipped, no work */
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	ri = info(id, &rep);
	ck_assert_uint_eq(ri->n_waves, 3);
	ck_assert_uint_eq(ri->waves[0]->tenants_total, 4);
	ck_assert_uint_eq(ri->waves[0]->tenants_total + ri->waves[1]->tenants_total, 12);
	ck_assert_uint_eq(ri->tenants_total, 24);
	for (size_t w = 0; w < 3; w++)
		ck_assert_int_eq(ri->waves[w]->state, WS(COMPLETED));
	ck_assert_uint_eq(ri->waves[0]->tenants_skipped + ri->waves[1]->tenants_skipped +
	                      ri->waves[2]->tenants_skipped,
	                  2);
	fl_rollout_reply_fini(&rep);
	ck_assert_int_eq(audits("completed"), 1);
	ck_assert_uint_eq(fx.resent, 0);
	/* the fleet view: out of the rollout, idle */
	ck_assert(fl_store_tenant_get(fx.st, "t00005", 0, &t, err) == FL_OK);
	ck_assert_str_eq(t.rollout_id, "");
	ck_assert_int_eq(t.rollout_state, FLOTILLA__V1__TENANT_STATE__TENANT_STATE_IDLE);
	fl_store_tenant_fini(&t);
	fx_down();
}
END_TEST

/* The canaries only, until the canary wave is done. */
START_TEST(waves_in_order)
{
	char id[32];

	fx_up(true);
	fx_fleet(2, 10, 3, 0);
	/* per agent 10: one agent alone could fill a wave, max_parallel stops it */
	start_ok(POLICY("  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 2, "
	                "per_agent_parallel: 10}\n"
	                "  - {name: early, select: {percent: 50}, max_parallel: 3, "
	                "per_agent_parallel: 10}\n"
	                "  - {name: rest, select: {percent: 100}, max_parallel: 5}\n",
	                ""),
	         id);
	for (size_t a = 0; a < 2; a++)
		poll_agent((int)a, 10);
	ck_assert_uint_eq(fx.n_out, 2); /* max_parallel 2 of the canary wave */
	for (size_t i = 0; i < fx.n_out; i++)
		ck_assert_uint_eq(fx.out[i].wave, 0);
	report_all(NULL);
	for (size_t a = 0; a < 2; a++)
		poll_agent((int)a, 10);
	ck_assert_uint_eq(fx.n_out, 1); /* the third canary; wave 1 waits */
	ck_assert_uint_eq(fx.out[0].wave, 0);
	report_all(NULL);
	for (size_t a = 0; a < 2; a++)
		poll_agent((int)a, 10);
	for (size_t i = 0; i < fx.n_out; i++)
		ck_assert_uint_eq(fx.out[i].wave, 1);
	ck_assert_uint_eq(fx.n_out, 3);
	ck_assert_int_eq(wstate(id, 0), WS(COMPLETED));
	ck_assert_int_eq(wstate(id, 1), WS(RUNNING));
	fx_down();
}
END_TEST

/* max_failures: 0 trips on the first failure; 1 on the second, not the first. */
static int fail_first_n;
static int fail_count;
static int fail_some(const struct asg *a)
{
	if (a->kind == WK(APPLY) && fail_count < fail_first_n) {
		fail_count++;
		return OC(FAILED);
	}
	return 0;
}

static void budget_case(const char *limit, int failures, bool trips)
{
	char id[32], pol[512];

	fx_up(true);
	fx_fleet(1, 10, 0, 0);
	snprintf(pol, sizeof(pol),
	         POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1, %s}\n", ""),
	         limit);
	start_ok(pol, id);
	fail_first_n = failures;
	fail_count = 0;
	run(fail_some, 1, 100);
	ck_assert_int_eq(fail_count, failures);
	ck_assert_int_eq(rstate(id), trips ? RS(HALTED) : RS(COMPLETED));
	ck_assert_int_eq(wstate(id, 0), trips ? WS(FAILED) : WS(COMPLETED));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_FAILED, -1), failures);
	ck_assert_int_eq(audits("wave_failed"), trips);
	ck_assert_int_eq(audits("halted"), trips);
	if (trips) /* nothing started after the trip: the rest stay pending */
		ck_assert_int_eq(tenants_in(id, FL_SCHED_PENDING, -1), 10 - failures);
	fx_down();
}

START_TEST(budget_zero)
{
	budget_case("max_failures: 0", 1, true);
}
END_TEST

START_TEST(budget_neither_is_zero)
{
	budget_case("bake: 0s", 1, true);
}
END_TEST

START_TEST(budget_one_tolerates_one)
{
	budget_case("max_failures: 1", 1, false);
}
END_TEST

START_TEST(budget_one_trips_on_second)
{
	budget_case("max_failures: 1", 2, true);
}
END_TEST

START_TEST(budget_rate)
{
	/* 10 tenants at 0.2: 2 failures are within (0.2 is not above 0.2), 3 trip */
	budget_case("max_failure_rate: 0.2", 2, false);
}
END_TEST

START_TEST(budget_rate_trips)
{
	budget_case("max_failure_rate: 0.2", 3, true);
}
END_TEST

/* REFUSED counts as a failure and is audited loudly. */
static int refuse_one(const struct asg *a)
{
	return a->kind == WK(APPLY) && strcmp(a->tenant, "t00003") == 0 ? OC(REFUSED) : 0;
}

START_TEST(refused_is_failure)
{
	char id[32];

	fx_up(true);
	fx_fleet(1, 5, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 5, max_failures: 0}\n",
	           ""),
	    id);
	run(refuse_one, 5, 50);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_eq(audits("work_refused"), 1);
	fx_down();
}
END_TEST

START_TEST(manual_gate_and_promote)
{
	char id[32];
	size_t before;

	fx_up(true);
	fx_fleet(2, 5, 2, 0);
	start_ok(POLICY("  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 5, "
	                "gate: manual}\n"
	                "  - {name: rest, select: {percent: 100}, max_parallel: 5, gate: manual}\n",
	                ""),
	         id);
	run(NULL, 5, 20);
	ck_assert_int_eq(wstate(id, 0), WS(AWAITING_PROMOTE));
	ck_assert_int_eq(rstate(id), RS(RUNNING));
	before = fx.n_seen;
	run(NULL, 5, 5);
	ck_assert_uint_eq(fx.n_seen, before); /* nothing past the gate */
	/* promote the wrong wave: refused, nothing moves */
	ck_assert_int_eq(command(CMD(ROLLOUT_PROMOTE), id, 1), SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, "not waiting") != NULL, "%s", err);
	ck_assert_int_eq(command(CMD(ROLLOUT_PROMOTE), id, 7), SC(INVALID_ARGUMENT));
	ck_assert_int_eq(wstate(id, 0), WS(AWAITING_PROMOTE));
	ck_assert_int_eq(command(CMD(ROLLOUT_PROMOTE), id, 0), SC(OK));
	ck_assert_int_eq(wstate(id, 0), WS(COMPLETED));
	/* a repeated promote of wave 0 never skips wave 1 */
	ck_assert_int_eq(command(CMD(ROLLOUT_PROMOTE), id, 0), SC(FAILED_PRECONDITION));
	run(NULL, 5, 20);
	ck_assert_int_eq(wstate(id, 1), WS(AWAITING_PROMOTE));
	ck_assert_int_eq(command(CMD(ROLLOUT_PROMOTE), id, 1), SC(OK));
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	ck_assert_int_eq(command(CMD(ROLLOUT_PROMOTE), id, 1), SC(FAILED_PRECONDITION));
	fx_down();
}
END_TEST

/* Bake 5m, checks every 1m: rounds at +1..+4 and the last at +5. */
static const char bake_policy[] =
    POLICY("  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 5, bake: 5m, "
           "max_failures: 0}\n"
           "  - {name: rest, select: {percent: 100}, max_parallel: 5}\n",
           "health:\n  interval: 1m\n  checks:\n"
           "    - {name: ok, sql: \"SELECT true\", timeout: 1s}\n");

static int checks_seen;
static int count_checks(const struct asg *a)
{
	if (a->kind == WK(CHECK))
		checks_seen++;
	return 0;
}

START_TEST(bake_repeats_checks)
{
	char id[32];
	int64_t t0;

	fx_up(true);
	fx_fleet(1, 6, 3, 0);
	start_ok(bake_policy, id);
	checks_seen = 0;
	if (getenv("DEBUG_SCHED"))
		fl_log_set_level(FL_LOG_DEBUG);
	run(count_checks, 5, 5); /* the canaries apply */
	ck_assert_int_eq(wstate(id, 0), WS(BAKING));
	ck_assert_int_eq(checks_seen, 0);
	t0 = now;
	run_until(t0 + 5 * MINUTE - 2000, 10000, count_checks, 5);
	ck_assert_int_eq(wstate(id, 0), WS(BAKING));
	ck_assert_int_eq(checks_seen, 4 * 3); /* rounds at +1..+4 min, 3 canaries each */
	ck_assert_uint_lt(fl_scheduler_next_tick(fx.s), INT64_MAX);
	run_until(t0 + 6 * MINUTE, 10000, count_checks, 5);
	ck_assert_int_eq(checks_seen, 5 * 3); /* and the last one at the end of the bake */
	ck_assert_int_ne(wstate(id, 0), WS(BAKING));
	run(NULL, 5, 20);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* A pause during a bake stops its clock (across a restart too): after the
 * resume, the bake still has what it had left. */
START_TEST(bake_pause_stops_clock)
{
	char id[32];
	int64_t t0, t1;

	fx_up(true);
	fx_fleet(1, 6, 3, 0);
	start_ok(bake_policy, id);
	run(NULL, 5, 5); /* the canaries apply */
	ck_assert_int_eq(wstate(id, 0), WS(BAKING));
	t0 = now;
	run_until(t0 + 2 * MINUTE, 10000, NULL, 5);
	ck_assert_int_eq(command(CMD(ROLLOUT_PAUSE), id, 0), SC(OK));
	run_until(t0 + 7 * MINUTE, 10000, NULL, 5);
	fx_restart();
	run_until(t0 + 12 * MINUTE, 10000, NULL, 5);
	ck_assert_int_eq(wstate(id, 0), WS(BAKING));
	t1 = now;
	ck_assert_int_eq(command(CMD(ROLLOUT_RESUME), id, 0), SC(OK));
	/* 3 of its 5 minutes left */
	run_until(t1 + 3 * MINUTE - 20000, 10000, NULL, 5);
	ck_assert_int_eq(wstate(id, 0), WS(BAKING));
	run_until(t1 + 4 * MINUTE, 10000, NULL, 5);
	ck_assert_int_ne(wstate(id, 0), WS(BAKING));
	run(NULL, 5, 20);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

static int fail_checks_of_t00001(const struct asg *a)
{
	return a->kind == WK(CHECK) && strcmp(a->tenant, "t00001") == 0 ? OC(HEALTH_FAILED) : 0;
}

START_TEST(bake_check_failure_counts)
{
	char id[32];

	fx_up(true);
	fx_fleet(1, 6, 3, 0);
	start_ok(bake_policy, id);
	run(NULL, 5, 5);
	ck_assert_int_eq(wstate(id, 0), WS(BAKING));
	run_until(now + 2 * MINUTE, 10000, fail_checks_of_t00001, 5);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_eq(wstate(id, 0), WS(FAILED));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_FAILED, 0), 1);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_PENDING, 1), 3); /* the rest never started */
	fx_down();
}
END_TEST

static int inconclusive_once;
static int inconclusive(const struct asg *a)
{
	if (a->kind == WK(CHECK) && inconclusive_once == 0) {
		inconclusive_once = 1;
		return OC(INCONCLUSIVE);
	}
	return 0;
}

START_TEST(inconclusive_pauses)
{
	char id[32];
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri;
	size_t before;

	fx_up(true);
	fx_fleet(1, 6, 3, 0);
	start_ok(bake_policy, id);
	run(NULL, 5, 5);
	inconclusive_once = 0;
	run_until(now + 70000, 10000, inconclusive, 5);
	ck_assert_int_eq(rstate(id), RS(PAUSED));
	ri = info(id, &rep);
	ck_assert_msg(strstr(ri->state_reason, "inconclusive") != NULL, "%s", ri->state_reason);
	ck_assert_msg(strstr(ri->waves[0]->state_reason, "inconclusive") != NULL, "%s",
	              ri->waves[0]->state_reason);
	fl_rollout_reply_fini(&rep);
	ck_assert_int_eq(audits("paused"), 1);
	/* paused: no new checks, no new wave, however long */
	before = fx.n_seen;
	run_until(now + 30 * MINUTE, MINUTE, NULL, 5);
	ck_assert_uint_eq(fx.n_seen, before);
	ck_assert_int_eq(rstate(id), RS(PAUSED));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_FAILED, -1), 0); /* counted against nothing */
	ck_assert_int_eq(command(CMD(ROLLOUT_RESUME), id, 0), SC(OK));
	run_until(now + 10 * MINUTE, 10000, NULL, 5);
	run(NULL, 5, 20);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

static int busy_left;
static int busy_twice(const struct asg *a)
{
	if (a->kind == WK(APPLY) && strcmp(a->tenant, "t00002") == 0 && busy_left > 0) {
		busy_left--;
		return OC(BUSY);
	}
	return 0;
}

START_TEST(busy_requeued)
{
	char id[32];
	int attempts = 0;

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4, max_failures: 0}\n",
	           ""),
	    id);
	busy_left = 2;
	run(busy_twice, 4, 3);
	ck_assert_int_eq(busy_left, 1);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_BUSY, -1), 1);
	ck_assert_int_eq(rstate(id), RS(RUNNING)); /* not a failure */
	/* not tried again before busy_retry (30 s) */
	run_until(now + 20000, 5000, busy_twice, 4);
	ck_assert_int_eq(busy_left, 1);
	ck_assert_uint_lt(fl_scheduler_next_tick(fx.s), now + 30000);
	run_until(now + 40000, 5000, busy_twice, 4);
	ck_assert_int_eq(busy_left, 0);
	run_until(now + 40000, 5000, busy_twice, 4);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	for (size_t k = 0; k < fx.n_seen; k++)
		attempts++;
	ck_assert_int_eq(attempts, 4 + 2); /* three tries for t00002 */
	ck_assert_int_eq(tenants_in(id, FL_SCHED_FAILED, -1), 0);
	fx_down();
}
END_TEST

/* A one-wave rollout over two agents' 3 tenants each, with unreachable:
 * wait; agent 1 never polls again while hours pass and agent 0 applies all
 * of its own. Agent 1's tenants are then unreachable. */
static void agent_one_silent(char id[32])
{
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri;

	fx_up(true);
	fx_fleet(2, 3, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1, max_failures: 0}\n",
	           ""),
	    id);
	for (int i = 0; i < 200; i++) {
		now += MINUTE;
		ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
		poll_agent(0, 2 - (uint32_t)held_by(0));
		for (size_t k = 0; k < fx.n_out;)
			if (fx.out[k].agent == 0)
				report_at(k, OC(APPLIED));
			else
				k++;
	}
	ri = info(id, &rep);
	ck_assert_int_eq(ri->state, RS(RUNNING));
	ck_assert_uint_eq(ri->waves[0]->tenants_applied, 3);
	ck_assert_uint_eq(ri->waves[0]->tenants_unreachable, 3);
	ck_assert_uint_eq(ri->waves[0]->tenants_failed, 0);
	fl_rollout_reply_fini(&rep);
}

/* An agent goes silent: with wait, its tenants wait however long. */
START_TEST(unreachable_wait)
{
	char id[32];

	agent_one_silent(id);
	/* it comes back: its tenants go on */
	ck_assert(fl_scheduler_hello(fx.s, fx.apk[1], now, err) == FL_OK);
	run(NULL, 2, 50);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* The coordinator restarts while an agent is silent: its tenants, stored as
 * unreachable, go on when it is heard from again (the fault suite found them
 * left unreachable for good: the new process had never called it silent). */
START_TEST(unreachable_survives_restart)
{
	char id[32];
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri;

	agent_one_silent(id);
	fx_restart();
	ck_assert(fl_scheduler_hello(fx.s, fx.apk[1], now, err) == FL_OK);
	ri = info(id, &rep);
	ck_assert_uint_eq(ri->waves[0]->tenants_unreachable, 0);
	fl_rollout_reply_fini(&rep);
	run(NULL, 2, 50);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* A transaction rolled back (a full disk) leaves the model to be reloaded at
 * the next call: a report must find its own assignment outstanding then (the
 * reload reads the report's transaction, so the endpoint marks it reported
 * only after the scheduler heard it), or its tenant waits for it forever. */
START_TEST(report_after_a_rollback_moves_its_tenant_on)
{
	char id[32];

	fx_up(true);
	fx_fleet(1, 2, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2}\n", ""), id);
	poll_agent(0, 2);
	ck_assert_uint_eq(fx.n_out, 2);
	fl_scheduler_invalidate(fx.s);
	report_at(0, OC(APPLIED));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_APPLIED, -1), 1);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_ASSIGNED, -1), 1);
	report_all(NULL);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

START_TEST(unreachable_fail)
{
	char id[32];
	int64_t t0;

	fx_up(true);
	fx_fleet(2, 3, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 6, max_failures: 2}\n",
	           "unreachable: {action: fail, after: 10m}\n"),
	    id);
	/* agent 1 takes work and goes silent with it */
	poll_agent(1, 2);
	ck_assert_uint_eq(fx.n_out, 2);
	lose(1); /* it goes silent with them */
	t0 = now;
	while (now < t0 + 9 * MINUTE) {
		now += 30000;
		ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
		poll_agent(0, 2 - (uint32_t)held_by(0));
		report_all(NULL);
	}
	ck_assert_int_eq(rstate(id), RS(RUNNING));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_UNREACHABLE, -1), 3);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_FAILED, -1), 0);
	/* silent for 10 minutes: its 3 tenants fail, over max_failures 2 */
	now = t0 + 11 * MINUTE;
	ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_ge(tenants_in(id, FL_SCHED_FAILED, -1), 3);
	ck_assert_int_eq(audits("wave_failed"), 1);
	/* its work was withdrawn: only agent 0's may be out */
	ck_assert_uint_eq(fl_scheduler_outstanding(fx.s), live_out());
	fx_down();
}
END_TEST

START_TEST(order_expiry)
{
	char id[32];
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri;
	size_t before;

	fx_up(true);
	fx_fleet(1, 6, 0, 0);
	ck_assert_int_eq(
	    start(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2}\n", ""), NULL,
	          now + HOUR, id),
	    SC(OK));
	run(NULL, 2, 1);
	now += HOUR;
	before = fx.n_seen;
	/* a poll after the expiry gets nothing new, even before the tick */
	poll_agent(0, 2);
	ck_assert_uint_eq(fx.n_seen, before);
	ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
	ri = info(id, &rep);
	ck_assert_int_eq(ri->state, RS(HALTED));
	ck_assert_str_eq(ri->state_reason, "order expired");
	fl_rollout_reply_fini(&rep);
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(FAILED_PRECONDITION));
	fx_down();
}
END_TEST

START_TEST(pause_resume)
{
	char id[32];
	size_t before;

	fx_up(true);
	fx_fleet(1, 6, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2}\n", ""), id);
	poll_agent(0, 2);
	ck_assert_int_eq(command(CMD(ROLLOUT_PAUSE), id, 0), SC(OK));
	ck_assert_int_eq(rstate(id), RS(PAUSED));
	report_all(NULL); /* work under way finishes */
	before = fx.n_seen;
	run(NULL, 2, 5);
	ck_assert_uint_eq(fx.n_seen, before);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_APPLIED, -1), 2);
	ck_assert_int_eq(command(CMD(ROLLOUT_RESUME), id, 0), SC(OK));
	run(NULL, 2, 20);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	ck_assert_int_eq(command(CMD(ROLLOUT_PAUSE), id, 0), SC(FAILED_PRECONDITION));
	ck_assert_int_eq(command(CMD(ROLLOUT_RESUME), "r-99", 0), SC(NOT_FOUND));
	fx_down();
}
END_TEST

START_TEST(halt_answers_held_polls)
{
	char id[32];
	struct polled p;
	unsigned w0, w1;

	fx_up(true);
	fx_fleet(2, 4, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4}\n", ""), id);
	poll_agent(0, 1);
	poll_agent(1, 1);
	ck_assert_uint_eq(fx.n_out, 2);
	w0 = fx.wakes[0];
	w1 = fx.wakes[1];
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	/* both agents' held polls are answered at once */
	ck_assert_uint_gt(fx.wakes[0], w0);
	ck_assert_uint_gt(fx.wakes[1], w1);
	p = poll_agent(0, 4);
	ck_assert_uint_eq(p.halts, 1);
	ck_assert_uint_eq(p.assignments, 0);
	ck_assert_msg(strstr(p.halt_reason, "halted by alice") != NULL, "%s", p.halt_reason);
	/* the agent cancels its work; no more halts, no new work */
	for (size_t k = 0; k < fx.n_out;)
		if (fx.out[k].agent == 0)
			report_at(k, OC(CANCELED));
		else
			k++;
	p = poll_agent(0, 4);
	ck_assert_uint_eq(p.halts, 0);
	ck_assert_uint_eq(p.assignments, 0);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	/* retry: back to running, the rest goes on */
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
	ck_assert_int_eq(rstate(id), RS(RUNNING));
	run(NULL, 4, 20);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/*
 * A halt reaches each agent once, not on every poll: with its work still
 * running (on_halt: finish) the agent's next polls are held, not answered
 * with the same halt at once (they would spin until its report). Sent again
 * after its Hello (a restart) or resend_after (a lost reply), and when the
 * rollout halts anew.
 */
START_TEST(halt_delivered_once)
{
	char id[32];
	struct polled p;

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4}\n",
	                "on_halt: finish\n"),
	         id);
	poll_agent(0, 2);
	ck_assert_uint_eq(fx.n_out, 2);
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	p = poll_agent(0, 0);
	ck_assert_uint_eq(p.halts, 1);
	/* the agent finishes its work: its polls list it as running */
	for (int k = 0; k < 5; k++) {
		now += 1000;
		p = poll_agent(0, 0);
		ck_assert_uint_eq(p.halts, 0);
		ck_assert_uint_eq(p.assignments, 0);
	}
	/* a reply lost: sent again after resend_after (60 s here) */
	now += 60000;
	ck_assert_uint_eq(poll_agent(0, 0).halts, 1);
	ck_assert_uint_eq(poll_agent(0, 0).halts, 0);
	/* the agent restarted */
	now += 1000;
	ck_assert(fl_scheduler_hello(fx.s, fx.apk[0], now, err) == FL_OK);
	ck_assert_uint_eq(poll_agent(0, 0).halts, 1);
	ck_assert_uint_eq(poll_agent(0, 0).halts, 0);
	/* retried while one is still running, then halted again: heard again */
	report_at(0, OC(APPLIED));
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
	ck_assert_int_eq(rstate(id), RS(RUNNING));
	ck_assert_uint_eq(poll_agent(0, 0).halts, 0);
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	ck_assert_uint_eq(poll_agent(0, 0).halts, 1);
	ck_assert_uint_eq(poll_agent(0, 0).halts, 0);
	report_all(NULL);
	ck_assert_uint_eq(poll_agent(0, 4).halts, 0);
	fx_down();
}
END_TEST

/* The fleet view: tenants a halted rollout never started are not "queued"
 * (nor in the rollout): rollout status leaves them out too; queued again
 * when a retry makes it run. */
static int fleet_view(const char *tenant, char *rollout, size_t n)
{
	struct fl_store_tenant t;
	int state;

	ck_assert_msg(fl_store_tenant_get(fx.st, tenant, 0, &t, err) == FL_OK, "%s", err);
	state = t.rollout_state;
	snprintf(rollout, n, "%s", t.rollout_id);
	fl_store_tenant_fini(&t);
	return state;
}

START_TEST(halted_not_queued)
{
	char id[32], in[32];

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1}\n", ""), id);
	poll_agent(0, 1);
	ck_assert_uint_eq(fx.n_out, 1);
	for (int k = 0; k < 4; k++) {
		char tenant[16];

		snprintf(tenant, sizeof(tenant), "t00%03d", k);
		if (strcmp(tenant, fx.out[0].tenant) == 0)
			continue;
		ck_assert_int_eq(fleet_view(tenant, in, sizeof(in)),
		                 FLOTILLA__V1__TENANT_STATE__TENANT_STATE_QUEUED);
		ck_assert_str_eq(in, id);
	}
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	for (int k = 0; k < 4; k++) {
		char tenant[16];

		snprintf(tenant, sizeof(tenant), "t00%03d", k);
		if (strcmp(tenant, fx.out[0].tenant) == 0) {
			ck_assert_int_eq(fleet_view(tenant, in, sizeof(in)),
			                 FLOTILLA__V1__TENANT_STATE__TENANT_STATE_RUNNING);
			continue;
		}
		ck_assert_int_eq(fleet_view(tenant, in, sizeof(in)), 0);
		ck_assert_str_eq(in, "");
	}
	{
		struct asg done = fx.out[0];
		int queued = 0;

		report_all(NULL);
		ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
		ck_assert_int_eq(rstate(id), RS(RUNNING));
		for (int k = 0; k < 4; k++) {
			char tenant[16];

			snprintf(tenant, sizeof(tenant), "t00%03d", k);
			if (strcmp(tenant, done.tenant) == 0)
				continue;
			queued += fleet_view(tenant, in, sizeof(in)) ==
			          FLOTILLA__V1__TENANT_STATE__TENANT_STATE_QUEUED;
		}
		ck_assert_int_eq(queued, 3);
	}
	fx_down();
}
END_TEST

/* Wave 0 completes; wave 1 fails: only wave 1's changed tenants revert. */
static int fail_in_wave1;
static int wave1_fails(const struct asg *a)
{
	if (a->kind == WK(APPLY) && a->wave == 1 && fail_in_wave1 > 0) {
		fail_in_wave1--;
		return OC(FAILED);
	}
	return 0;
}

START_TEST(rollback_wave_only_that_wave)
{
	char id[32];
	int reverts_w0 = 0, reverts_w1 = 0;

	fx_up(true);
	fx_fleet(2, 6, 4, 0);
	start_ok(
	    POLICY("  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 4}\n"
	           "  - {name: rest, select: {percent: 100}, max_parallel: 1, max_failures: 0}\n",
	           "on_failure: rollback-wave\n"),
	    id);
	fail_in_wave1 = 0;
	run(NULL, 4, 2);
	ck_assert_int_eq(wstate(id, 0), WS(COMPLETED));
	/* wave 1: one tenant applied, then one fails */
	run(NULL, 1, 1);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_APPLIED, 1), 1);
	fail_in_wave1 = 1;
	for (int i = 0; i < 40 && rstate(id) == RS(RUNNING); i++) {
		for (size_t a = 0; a < fx.n_agents; a++)
			poll_agent((int)a, 1 - (uint32_t)held_by((int)a));
		report_all(wave1_fails);
		now += 1000;
	}
	ck_assert_int_eq(rstate(id), RS(ROLLING_BACK));
	/* the reverts */
	for (int i = 0; i < 40 && rstate(id) == RS(ROLLING_BACK); i++) {
		for (size_t a = 0; a < fx.n_agents; a++)
			poll_agent((int)a, 4 - (uint32_t)held_by((int)a));
		for (size_t k = 0; k < fx.n_out; k++) {
			ck_assert_int_eq(fx.out[k].kind, WK(REVERT));
			ck_assert_str_eq(fx.out[k].target,
			                 ""); /* what it applied under the order */
			ck_assert_uint_eq(fx.out[k].rb_len,
			                  0); /* the order's policy authorises it */
			if (fx.out[k].wave == 0)
				reverts_w0++;
			else
				reverts_w1++;
		}
		report_all(NULL);
		now += 1000;
	}
	ck_assert_int_eq(reverts_w0, 0);
	ck_assert_int_eq(reverts_w1, 1); /* the one applied; the failed one changed nothing */
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_APPLIED, 0), 4); /* canaries untouched */
	ck_assert_int_eq(tenants_in(id, FL_SCHED_ROLLED_BACK, 1), 1);
	ck_assert_int_eq(audits("wave_failed"), 1);
	ck_assert_int_eq(audits("rolling_back"), 1);
	/* retry after a rollback-wave: the wave's failed and rolled back tenants again */
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
	run(NULL, 4, 40);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

START_TEST(rollback_all)
{
	char id[32];
	int reverts = 0;

	fx_up(true);
	fx_fleet(2, 6, 4, 0);
	start_ok(
	    POLICY("  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 4}\n"
	           "  - {name: rest, select: {percent: 100}, max_parallel: 1, max_failures: 0}\n",
	           "on_failure: rollback-all\n"),
	    id);
	fail_in_wave1 = 0;
	run(NULL, 4, 2);
	run(NULL, 1, 2);
	fail_in_wave1 = 1;
	for (int i = 0; i < 80 && rstate(id) != RS(ROLLED_BACK) && rstate(id) != RS(HALTED); i++) {
		for (size_t a = 0; a < fx.n_agents; a++)
			poll_agent((int)a, 1 - (uint32_t)held_by((int)a));
		for (size_t k = 0; k < fx.n_out; k++)
			reverts += fx.out[k].kind == WK(REVERT);
		report_all(wave1_fails);
		now += 1000;
	}
	ck_assert_int_eq(rstate(id), RS(ROLLED_BACK));
	ck_assert_int_eq(reverts, 4 + 2); /* the canaries and the two applied in wave 1 */
	ck_assert_int_eq(tenants_in(id, FL_SCHED_ROLLED_BACK, -1), 6);
	ck_assert_int_eq(audits("rolled_back"), 1);
	fx_down();
}
END_TEST

START_TEST(retry_new_ids)
{
	char id[32];
	uint64_t first_ids[4];
	size_t nf = 0;

	fx_up(true);
	fx_fleet(1, 6, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 6, max_failures: 1}\n",
	           ""),
	    id);
	poll_agent(0, 6);
	/* two fail: over budget */
	for (size_t k = 0; k < 2; k++)
		first_ids[nf++] = fx.out[0].id, report_at(0, OC(FAILED));
	ck_assert_int_eq(rstate(id), RS(HALTED));
	report_all(NULL);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_FAILED, -1), 2);
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
	ck_assert_int_eq(rstate(id), RS(RUNNING));
	ck_assert_int_eq(wstate(id, 0), WS(RUNNING));
	poll_agent(0, 6);
	ck_assert_uint_eq(fx.n_out, 2);
	for (size_t k = 0; k < fx.n_out; k++)
		for (size_t f = 0; f < nf; f++)
			ck_assert_uint_ne(fx.out[k].id, first_ids[f]);
	report_all(NULL);
	run(NULL, 6, 5);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	ck_assert_uint_eq(fx.resent, 0);
	fx_down();
}
END_TEST

START_TEST(one_active_rollout_per_tenant)
{
	char id[32], id2[32];
	struct fl_selector sel;

	fx_up(true);
	fx_fleet(2, 3, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2}\n", ""), id);
	fl_selector_init(&sel);
	ck_assert(fl_selector_add_tenant(&sel, "t01001", err) == FL_OK);
	ck_assert_int_eq(
	    start(POLICY("  - {name: all, select: {percent: 100}}\n", ""), &sel, 0, id2),
	    SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, "t01001") && strstr(err, "r-1"), "%s", err);
	/* the same order twice */
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	/* halted: not active any more; a new rollout may take its tenants */
	ck_assert_int_eq(
	    start(POLICY("  - {name: all, select: {percent: 100}}\n", ""), &sel, 0, id2), SC(OK));
	ck_assert_str_eq(id2, "r-2");
	/* and then the halted one cannot retry that tenant */
	fl_selector_fini(&sel);
	fx_down();
}
END_TEST

START_TEST(windows_hold_starts)
{
	char id[32];
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri;
	int64_t open_at;

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	/* T0 is 22:13 UTC; eu tenants (t00000, t00002) only 23:00-23:30 */
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4}\n",
	                "windows:\n  - {select: {labels: {region: eu}}, utc: \"23:00-23:30\"}\n"),
	         id);
	run(NULL, 4, 5);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_APPLIED, -1), 2);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_PENDING, -1), 2);
	ri = info(id, &rep);
	/* ~22:13:25: the next opening, and how long until it (rounded up) */
	ck_assert_msg(
	    strstr(ri->waves[0]->state_reason,
	           "waiting for window: 2 tenants may start only in a maintenance window, "
	           "next opens 23:00 UTC (in 47m)") != NULL,
	    "%s", ri->waves[0]->state_reason);
	fl_rollout_reply_fini(&rep);
	open_at = T0 - (T0 % DAY) + 23 * HOUR;
	ck_assert_uint_le(fl_scheduler_next_tick(fx.s), now + MINUTE);
	run_until(open_at - MINUTE, 5 * MINUTE, NULL, 4);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_PENDING, -1), 2);
	run_until(open_at + MINUTE, MINUTE, NULL, 4);
	run(NULL, 4, 5);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* Some tenants may start now, others wait: how many, and when their window
 * opens, hours away. */
START_TEST(windows_reason_names_opening)
{
	char id[32];
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri;

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	/* T0 is 22:13:20 UTC; eu tenants only 01:00-05:00: 2h46m40s away */
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1}\n",
	                "windows:\n  - {select: {labels: {region: eu}}, utc: \"01:00-05:00\"}\n"),
	         id);
	ri = info(id, &rep);
	ck_assert_msg(strcmp(ri->waves[0]->state_reason,
	                     "2 tenants waiting for window, next opens 01:00 UTC (in 2h47m)") == 0,
	              "%s", ri->waves[0]->state_reason);
	fl_rollout_reply_fini(&rep);
	/* the us tenants done, only eu ones left */
	run(NULL, 4, 10);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_PENDING, -1), 2);
	ri = info(id, &rep);
	ck_assert_msg(strstr(ri->waves[0]->state_reason, "waiting for window: 2 tenants") != NULL &&
	                  strstr(ri->waves[0]->state_reason, "next opens 01:00 UTC (in 2h4") !=
	                      NULL,
	              "%s", ri->waves[0]->state_reason);
	fl_rollout_reply_fini(&rep);
	/* inside the window: no reason */
	run_until(T0 - (T0 % DAY) + DAY + HOUR, 10 * MINUTE, NULL, 4);
	run(NULL, 4, 10);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

START_TEST(limits_never_exceeded)
{
	char id[32];

	fx_up(true);
	fx_fleet(6, 20, 10, 0);
	start_ok(POLICY("  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 3}\n"
	                "  - {name: early, select: {percent: 30}, max_parallel: 7, "
	                "per_agent_parallel: 1}\n"
	                "  - {name: rest, select: {percent: 100}, max_parallel: 11}\n",
	                ""),
	         id);
	/* agents with room for many; report only some each round, so limits bite */
	for (int r = 0; r < 400 && rstate(id) == RS(RUNNING); r++) {
		for (size_t a = 0; a < fx.n_agents; a++)
			poll_agent((int)a, 8 - (uint32_t)held_by((int)a));
		if (fx.n_out > 0)
			report_at((size_t)r % fx.n_out, OC(APPLIED));
		now += 100;
	}
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	ck_assert_uint_eq(fx.n_seen, 120);
	fx_down();
}
END_TEST

/* Killed mid-rollout: outstanding assignments survive, are sent again with
 * the same ids, never replaced; nobody gets the same work twice. */
START_TEST(restart_resumes)
{
	char id[32];
	uint64_t held[64];
	size_t n_held = 0, applies = 0, n_lost;
	struct polled p;
	int x;

	fx_up(true);
	fx_fleet(2, 8, 2, 0);
	start_ok(three_waves, id);
	run(NULL, 3, 3); /* canaries done, wave 1 under way */
	poll_agent(0, 3);
	poll_agent(1, 3);
	ck_assert_uint_gt(fx.n_out, 0);
	for (size_t k = 0; k < fx.n_out; k++)
		held[n_held++] = fx.out[k].id;
	/* agent x's reply was lost with the coordinator: it never got its work */
	x = fx.out[0].agent;
	n_lost = held_by(x);
	lose(x);
	fx_restart();
	ck_assert_uint_eq(fl_scheduler_outstanding(fx.s), n_held);
	ck_assert_int_eq(rstate(id), RS(RUNNING));
	/* the other lists its work as running: nothing again */
	p = poll_agent(1 - x, 0);
	ck_assert_uint_eq(p.assignments, 0);
	/* agent x lists nothing: its assignments again, the same ids */
	p = poll_agent(x, (uint32_t)n_lost);
	ck_assert_uint_eq(p.assignments, n_lost);
	ck_assert_uint_eq(p.resent, n_lost);
	for (size_t k = 0; k < fx.n_out; k++) {
		bool was = false;

		for (size_t h = 0; h < n_held; h++)
			was = was || held[h] == fx.out[k].id;
		ck_assert_msg(was, "assignment %" PRIu64 " is new", fx.out[k].id);
	}
	run(NULL, 3, 100);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	/* one APPLY per tenant, ever: 16 ids for 16 tenants */
	for (size_t k = 0; k < fx.n_seen; k++)
		applies++;
	ck_assert_uint_eq(applies, 16);
	fx_down();
}
END_TEST

/* Restarted between a report and nothing else: state is what was committed. */
START_TEST(restart_keeps_states)
{
	char id[32];

	fx_up(true);
	fx_fleet(1, 6, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2, max_failures: 0, "
	                "gate: manual}\n",
	                ""),
	         id);
	run(NULL, 2, 20);
	ck_assert_int_eq(wstate(id, 0), WS(AWAITING_PROMOTE));
	fx_restart();
	ck_assert_int_eq(wstate(id, 0), WS(AWAITING_PROMOTE));
	ck_assert_int_eq(command(CMD(ROLLOUT_PROMOTE), id, 0), SC(OK));
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_restart();
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* A lost assignment: sent again after resend_after, with the same id. */
START_TEST(lost_reply_resent)
{
	char id[32];
	uint64_t lost;
	struct polled p;

	fx_up(true);
	fx_fleet(1, 2, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1}\n", ""), id);
	poll_agent(0, 1);
	lost = fx.out[0].id;
	lose(0); /* the PollReply never arrived */
	now += 30000;
	p = poll_agent(0, 1);
	ck_assert_uint_eq(p.assignments, 0); /* not yet: its report may be on the way */
	now += 31000;
	p = poll_agent(0, 1);
	ck_assert_uint_eq(p.assignments, 1);
	ck_assert_uint_eq(fx.out[0].id, lost);
	/* a Hello: sent again at once */
	lose(0);
	now += 1000;
	ck_assert(fl_scheduler_hello(fx.s, fx.apk[0], now, err) == FL_OK);
	p = poll_agent(0, 1);
	ck_assert_uint_eq(p.assignments, 1);
	ck_assert_uint_eq(fx.out[0].id, lost);
	report_all(NULL);
	run(NULL, 1, 10);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* Starts refused, with reasons. */
START_TEST(start_refusals)
{
	char id[32];
	struct fl_selector none;
	struct fl_key other;

	fx_up(false); /* M3 has no down.sql */
	fx_fleet(1, 5, 2, 0);
	ck_assert_int_eq(
	    start(POLICY("  - {name: c, select: {labels: {ring: canary}}}\n", ""), NULL, 0, id),
	    SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, "3 tenants fall in no wave") &&
	                  strstr(err, "end with a wave of percent: 100"),
	              "%s", err);
	fl_selector_init(&none);
	ck_assert(fl_labels_set(&none.labels, "ring", "nope", err) == FL_OK);
	ck_assert_int_eq(start(POLICY("  - {name: a, select: {percent: 100}}\n", ""), &none, 0, id),
	                 SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, "matches no tenant"), "%s", err);
	fl_selector_fini(&none);
	ck_assert_int_eq(
	    start(POLICY("  - {name: a, select: {percent: 100}}\n", "on_failure: rollback-wave\n"),
	          NULL, 0, id),
	    SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, M3) && strstr(err, "down.sql"), "%s", err);
	/* an order signed by a key the coordinator does not trust */
	fl_key_generate(FL_KEY_RELEASE, NULL, &other);
	{
		struct fl_key keep = fx.rkey;

		fx.rkey = other;
		ck_assert_int_eq(
		    start(POLICY("  - {name: a, select: {percent: 100}}\n", ""), NULL, 0, id),
		    SC(FAILED_PRECONDITION));
		fx.rkey = keep;
	}
	ck_assert_msg(strstr(err, "does not verify"), "%s", err);
	fl_key_fini(&other);
	fx_down();
}
END_TEST

static void plan(const char *policy_yaml, struct fl_rollout_reply *rep)
{
	Flotilla__V1__AdminRequest rq = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutPlanRequest pr = FLOTILLA__V1__ROLLOUT_PLAN_REQUEST__INIT;
	struct fl_buf order = FL_BUF_INIT;

	order_for(policy_yaml, NULL, 0, &order);
	pr.signed_order.data = (uint8_t *)order.data;
	pr.signed_order.len = order.len;
	rq.command_case = CMD(ROLLOUT_PLAN);
	rq.rollout_plan = &pr;
	ck_assert_int_eq(admin(&rq, rep), SC(OK));
	fl_buf_fini(&order);
}

static bool has_warning(const Flotilla__V1__RolloutPlan *p, const char *needle)
{
	for (size_t i = 0; i < p->n_warnings; i++)
		if (strstr(p->warnings[i], needle))
			return true;
	return false;
}

START_TEST(plan_dry_run)
{
	struct fl_rollout_reply rep;
	const Flotilla__V1__RolloutPlan *p;
	Flotilla__V1__Report r = FLOTILLA__V1__REPORT__INIT;
	struct fl_buf packed = FL_BUF_INIT;
	bool dup;

	fx_up(false);
	fx_fleet(2, 10, 2, 3);
	plan(three_waves, &rep);
	p = rep.response.rollout_plan->plan;
	ck_assert_uint_eq(p->tenant_count, 20);
	ck_assert_uint_eq(p->tenants_at_target, 3);
	ck_assert_uint_eq(p->n_waves, 3);
	ck_assert_uint_eq(p->waves[0]->tenant_count, 2);
	ck_assert_uint_eq(p->waves[1]->tenant_count, 8);
	ck_assert_uint_eq(p->waves[2]->tenant_count, 10);
	ck_assert_uint_eq(p->waves[2]->n_tenant_ids, 10);
	ck_assert_uint_eq(p->n_migration_ids, 2);
	ck_assert_str_eq(p->migration_ids[0], M2);
	ck_assert(!p->rollback_possible);
	ck_assert_uint_eq(p->n_rollback_blockers, 1);
	ck_assert_str_eq(p->rollback_blockers[0], M3);
	ck_assert(has_warning(p, "contract step"));
	ck_assert(has_warning(p, "lint:"));
	ck_assert_int_eq(p->eta_ms, 0); /* nothing timed yet */
	fl_rollout_reply_fini(&rep);
	/* nothing was started */
	ck_assert_int_eq(tenants_in("r-1", FL_SCHED_PENDING, -1), 0);
	/* with an apply timed (10 s), an ETA */
	r.agent_id = "a";
	r.tenant_id = "t00000";
	r.rollout_id = "r-0";
	r.kind = WK(APPLY);
	r.outcome = OC(APPLIED);
	r.message = "";
	r.started_at_ms = now - 10000;
	r.finished_at_ms = now;
	ck_assert(fl_wire_pack_message(&r.base, &packed, FL_WIRE_MAX_REPORT, err) == FL_OK);
	ck_assert(fl_store_report_add(fx.st, fx.apk[0], 1, 1, "t00000", OC(APPLIED),
	                              (uint8_t *)packed.data, packed.len, now, &dup, err) == FL_OK);
	fl_buf_fini(&packed);
	plan(three_waves, &rep);
	p = rep.response.rollout_plan->plan;
	/* 17 to apply: canary 2 at 2 (1 batch), early up to 8 at 3, rest at 5 */
	ck_assert_int_gt(p->eta_ms, 3 * 10000);
	ck_assert(has_warning(p, "eta"));
	fl_rollout_reply_fini(&rep);
	fx_down();
}
END_TEST

/* One apply of 10 s on record, as if timed by an earlier rollout. */
static void time_an_apply(void)
{
	Flotilla__V1__Report r = FLOTILLA__V1__REPORT__INIT;
	struct fl_buf packed = FL_BUF_INIT;
	bool dup;

	r.agent_id = "a";
	r.tenant_id = "t00000";
	r.rollout_id = "r-0";
	r.kind = WK(APPLY);
	r.outcome = OC(APPLIED);
	r.message = "";
	r.started_at_ms = now - 10000;
	r.finished_at_ms = now;
	ck_assert(fl_wire_pack_message(&r.base, &packed, FL_WIRE_MAX_REPORT, err) == FL_OK);
	ck_assert(fl_store_report_add(fx.st, fx.apk[0], 1, 1, "t00000", OC(APPLIED),
	                              (uint8_t *)packed.data, packed.len, now, &dup, err) == FL_OK);
	fl_buf_fini(&packed);
}

/* The plan's ETA waits for maintenance windows, and spills work that does not
 * fit in an opening into the next day's. */
START_TEST(plan_eta_windows)
{
	struct fl_rollout_reply rep;
	const Flotilla__V1__RolloutPlan *p;
	int64_t midnight;

	fx_up(false);
	midnight = now - (now % DAY);
	fx_fleet(1, 20, 0, 0); /* 10 eu, 10 us */
	time_an_apply();
	/* no window: 20 rounds of 10 s */
	plan(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1}\n", ""), &rep);
	p = rep.response.rollout_plan->plan;
	ck_assert_int_eq(p->eta_ms, 20 * 10000);
	ck_assert(has_warning(p, "eta: about 200 s"));
	ck_assert(!has_warning(p, "maintenance windows"));
	fl_rollout_reply_fini(&rep);
	/* eu 23:00-23:30: us done in 100 s, eu waits for 23:00 and takes 100 s */
	plan(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1}\n",
	            "windows:\n  - {select: {labels: {region: eu}}, utc: \"23:00-23:30\"}\n"),
	     &rep);
	p = rep.response.rollout_plan->plan;
	ck_assert_int_eq(p->eta_ms, midnight + 23 * HOUR + 100000 - now);
	ck_assert(has_warning(p, "waiting for maintenance windows included"));
	fl_rollout_reply_fini(&rep);
	/* a one-minute window holds 60 s of the 100: the rest at 23:00 tomorrow; the
	 * bake and the next wave come after */
	plan(POLICY("  - {name: eu, select: {labels: {region: eu}}, max_parallel: 1, bake: 1m}\n"
	            "  - {name: rest, select: {percent: 100}, max_parallel: 2}\n",
	            "windows:\n  - {select: {labels: {region: eu}}, utc: \"23:00-23:01\"}\n"),
	     &rep);
	p = rep.response.rollout_plan->plan;
	ck_assert_int_eq(p->eta_ms, midnight + DAY + 23 * HOUR + 40000 + MINUTE + 5 * 10000 - now);
	fl_rollout_reply_fini(&rep);
	fx_down();
}
END_TEST

/* Manual rollback under a signed rollback order. */
static void rollback_order(const char *rollout, const struct fl_selector *sel, const char *target,
                           struct fl_buf *out)
{
	struct fl_store_rollout row;
	struct fl_rollback_params rp = {0};
	struct fl_selector all;
	struct fl_buf tmp = FL_BUF_INIT;
	char hash[65];

	ck_assert(fl_store_rollout_get(fx.st, rollout, 0, &row, err) == FL_OK);
	fl_selector_init(&all);
	all.all = true;
	rp.project_id = PROJECT;
	rp.rollout_order_hash = row.order_hash;
	rp.release_hash = fx.rhash;
	rp.target_migration_id = target;
	rp.selector = sel ? sel : &all;
	rp.created_at_ms = now;
	rp.expires_at_ms = now + DAY;
	rp.reason = "undo";
	ck_assert_msg(fl_order_build_rollback(&rp, out, hash, err) == FL_OK, "%s", err);
	ck_assert(fl_order_sign(out->data, out->len, FL_ORDER_ROLLBACK, &fx.rkey, &tmp, err) ==
	          FL_OK);
	fl_buf_fini(out);
	*out = tmp;
	fl_selector_fini(&all);
	fl_store_rollout_fini(&row);
}

static int rollback_cmd(const char *id, const struct fl_buf *order)
{
	Flotilla__V1__AdminRequest rq = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutRollbackRequest rr = FLOTILLA__V1__ROLLOUT_ROLLBACK_REQUEST__INIT;
	struct fl_rollout_reply rep;
	int code;

	rr.rollout_id = (char *)id;
	rr.reason = "undo";
	rr.signed_rollback_order.data = (uint8_t *)order->data;
	rr.signed_rollback_order.len = order->len;
	rq.command_case = CMD(ROLLOUT_ROLLBACK);
	rq.rollout_rollback = &rr;
	code = admin(&rq, &rep);
	snprintf(err, sizeof(err), "%s", rep.response.status->message);
	fl_rollout_reply_fini(&rep);
	return code;
}

START_TEST(manual_rollback)
{
	char id[32], id2[32];
	struct fl_buf ord = FL_BUF_INIT;
	struct fl_selector eu;
	int reverts = 0;

	fx_up(true);
	fx_fleet(1, 6, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 6}\n", ""), id);
	run(NULL, 6, 10);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	/* an order for another rollout is refused */
	start_ok(POLICY("  - {name: other, select: {percent: 100}}\n", ""), id2);
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id2, 0), SC(OK));
	rollback_order(id2, NULL, "", &ord);
	ck_assert_int_eq(rollback_cmd(id, &ord), SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, "another rollout order"), "%s", err);
	fl_buf_fini(&ord);
	/* the eu tenants of the completed rollout */
	fl_selector_init(&eu);
	ck_assert(fl_labels_set(&eu.labels, "region", "eu", err) == FL_OK);
	rollback_order(id, &eu, "", &ord);
	ck_assert_int_eq(rollback_cmd(id, &ord), SC(OK));
	ck_assert_int_eq(rstate(id), RS(ROLLING_BACK));
	ck_assert_int_eq(rollback_cmd(id, &ord), SC(FAILED_PRECONDITION));
	for (int i = 0; i < 20 && rstate(id) == RS(ROLLING_BACK); i++) {
		poll_agent(0, 6 - (uint32_t)held_by(0));
		for (size_t k = 0; k < fx.n_out; k++) {
			ck_assert_int_eq(fx.out[k].kind, WK(REVERT));
			ck_assert_uint_eq(fx.out[k].rb_len, ord.len);
			reverts++;
		}
		report_all(NULL);
		now += 1000;
	}
	ck_assert_int_eq(reverts, 3);
	ck_assert_int_eq(rstate(id), RS(ROLLED_BACK));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_ROLLED_BACK, -1), 3);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_APPLIED, -1), 3);
	fl_buf_fini(&ord);
	fl_selector_fini(&eu);
	fx_down();
}
END_TEST

START_TEST(manual_rollback_needs_down)
{
	char id[32];
	struct fl_buf ord = FL_BUF_INIT;

	fx_up(false);
	fx_fleet(1, 4, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4}\n", ""), id);
	run(NULL, 4, 10);
	rollback_order(id, NULL, "", &ord);
	ck_assert_int_eq(rollback_cmd(id, &ord), SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, M3) && strstr(err, "no down.sql"), "%s", err);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fl_buf_fini(&ord);
	/* to M2: only M3 would be reverted, which has no down.sql either */
	rollback_order(id, NULL, M2, &ord);
	ck_assert_int_eq(rollback_cmd(id, &ord), SC(FAILED_PRECONDITION));
	fl_buf_fini(&ord);
	fx_down();
}
END_TEST

START_TEST(status_lists)
{
	char id[32], id2[32];
	Flotilla__V1__AdminRequest rq = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStatusRequest sr = FLOTILLA__V1__ROLLOUT_STATUS_REQUEST__INIT;
	struct fl_rollout_reply rep;
	struct fl_selector one;

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	fl_selector_init(&one);
	ck_assert(fl_selector_add_tenant(&one, "t00000", err) == FL_OK);
	ck_assert_int_eq(start(POLICY("  - {name: a, select: {percent: 100}}\n", ""), &one, 0, id),
	                 SC(OK));
	run(NULL, 1, 5);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	start_ok(POLICY("  - {name: a, select: {percent: 100}, max_parallel: 1}\n", ""), id2);
	rq.command_case = CMD(ROLLOUT_STATUS);
	rq.rollout_status = &sr;
	ck_assert_int_eq(admin(&rq, &rep), SC(OK));
	ck_assert_uint_eq(rep.response.rollout_status->n_rollouts, 1); /* the live one */
	ck_assert_str_eq(rep.response.rollout_status->rollouts[0]->id, "r-2");
	fl_rollout_reply_fini(&rep);
	sr.include_finished = true;
	ck_assert_int_eq(admin(&rq, &rep), SC(OK));
	ck_assert_uint_eq(rep.response.rollout_status->n_rollouts, 2);
	ck_assert_str_eq(rep.response.rollout_status->rollouts[1]->id, "r-1");
	ck_assert_uint_eq(rep.response.rollout_status->rollouts[1]->waves[0]->tenants_applied, 1);
	ck_assert_int_eq(rep.response.rollout_status->rollouts[1]->state, RS(COMPLETED));
	fl_rollout_reply_fini(&rep);
	sr.rollout_id = "r-7";
	ck_assert_int_eq(admin(&rq, &rep), SC(NOT_FOUND));
	fl_rollout_reply_fini(&rep);
	fl_selector_fini(&one);
	fx_down();
}
END_TEST

/* A rollout row that does not decode stops that rollout, not the scheduler. */
START_TEST(bad_row_skipped)
{
	struct fl_store_rollout row = {0};
	uint8_t junk = 0;
	char id[32];

	fx_up(true);
	fx_fleet(1, 3, 0, 0);
	row.id = "r-9";
	row.created_seq = 9;
	memset(row.order_hash, 7, 32);
	row.signed_order = &junk;
	row.signed_order_len = 1;
	memcpy(row.release_hash, fx.rhash, 32);
	row.project_id = PROJECT;
	row.target_migration_id = M3;
	row.state = RS(RUNNING);
	row.state_reason = "";
	row.created_by = row.signed_by = "x";
	row.expires_at_ms = now + DAY;
	ck_assert_msg(fl_store_rollout_add(fx.st, &row, err) == FL_OK, "%s", err);
	fx_restart();
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 3}\n", ""), id);
	ck_assert_str_eq(id, "r-10");
	run(NULL, 3, 10);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* The caller's transaction rolled back after a poll: the model follows the
 * store, and the work it never sent is handed out again. */
START_TEST(rollback_reloads_model)
{
	char id[32];

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4}\n", ""), id);
	ck_assert(fl_store_begin(fx.st, err) == FL_OK);
	poll_agent(0, 2);
	ck_assert_uint_eq(fx.n_out, 2);
	fl_store_rollback(fx.st); /* e.g. the core's commit failed: nothing was sent */
	fx.n_out = 0;
	fx.n_seen = 0;
	ck_assert_int_eq(tenants_in(id, FL_SCHED_ASSIGNED, -1), 0);
	/* reloaded first: room for 2 (per_agent_parallel), not 0 as the stale model has */
	poll_agent(0, 4);
	ck_assert_uint_eq(fx.n_out, 2);
	run(NULL, 4, 10);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* The order expires during an automatic rollback: what is left fails, the
 * rollout halts (a signed rollback order can finish the job). */
START_TEST(rollback_order_expires)
{
	char id[32];

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	ck_assert_int_eq(start(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4, "
	                              "max_failures: 0}\n",
	                              "on_failure: rollback-all\n"),
	                       NULL, now + HOUR, id),
	                 SC(OK));
	poll_agent(0, 2);
	report_at(0, OC(APPLIED));
	report_at(0, OC(FAILED));
	ck_assert_int_eq(rstate(id), RS(ROLLING_BACK));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_REVERTING, -1), 1);
	ck_assert_int_le(fl_scheduler_next_tick(fx.s), now + HOUR);
	now += HOUR;
	poll_agent(0, 2); /* nothing: agents would refuse it */
	ck_assert_uint_eq(fx.n_out, 0);
	ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_FAILED, -1), 2);
	fx_down();
}
END_TEST

/* ---- review (R3): orderings of events ---- */

/* The rollout's row for a tenant, from the store. */
struct row_ctx {
	const char *tenant;
	struct fl_store_rollout_tenant row;
	bool found;
};

static bool row_cb(void *arg, const struct fl_store_rollout_tenant *t)
{
	struct row_ctx *c = arg;

	if (strcmp(t->tenant_id, c->tenant) != 0)
		return true;
	c->row = *t;
	c->row.tenant_id = fl_strdup(t->tenant_id);
	c->row.pre_head = fl_strdup(t->pre_head);
	c->row.last_error = fl_strdup(t->last_error);
	fl_labels_copy(&c->row.labels, &t->labels);
	c->found = true;
	return false;
}

static struct fl_store_rollout_tenant tenant_row(const char *rollout, const char *tenant)
{
	struct row_ctx c = {tenant, {0}, false};

	ck_assert(fl_store_rollout_tenant_each(fx.st, rollout, row_cb, &c, err) == FL_OK);
	ck_assert_msg(c.found, "no row for tenant '%s' in '%s'", tenant, rollout);
	return c.row;
}

static int tenant_state(const char *rollout, const char *tenant)
{
	struct fl_store_rollout_tenant t = tenant_row(rollout, tenant);
	int st = t.state;

	fl_store_rollout_tenant_fini(&t);
	return st;
}

/* The index in fx.out of the assignment held for this tenant, or -1. */
static long held_for(const char *tenant)
{
	for (size_t i = 0; i < fx.n_out; i++)
		if (strcmp(fx.out[i].tenant, tenant) == 0)
			return (long)i;
	return -1;
}

/* The tenant now belongs to agent a (its old agent stopped listing it, the
 * new one listed it in a Hello: reconcile's doing). */
static void move_tenant(const char *tenant, int a)
{
	struct fl_store_tenant t;

	ck_assert(fl_store_tenant_get(fx.st, tenant, 0, &t, err) == FL_OK);
	memcpy(t.agent_pk, fx.apk[a], 32);
	ck_assert_msg(fl_store_tenant_put(fx.st, &t, err) == FL_OK, "%s", err);
	fl_store_tenant_fini(&t);
}

static int retry_tenants(const char *id, const char **tenants, size_t n)
{
	Flotilla__V1__AdminRequest rq = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutRetryRequest rt = FLOTILLA__V1__ROLLOUT_RETRY_REQUEST__INIT;
	struct fl_rollout_reply rep;
	int code;

	rt.rollout_id = (char *)id;
	rt.reason = "test";
	rt.tenant_ids = (char **)tenants;
	rt.n_tenant_ids = n;
	rq.command_case = CMD(ROLLOUT_RETRY);
	rq.rollout_retry = &rt;
	code = admin(&rq, &rep);
	snprintf(err, sizeof(err), "%s", rep.response.status->message);
	fl_rollout_reply_fini(&rep);
	return code;
}

/*
 * An agent goes silent holding APPLYs it did run: with unreachable: fail its
 * tenants fail, their work is withdrawn and the budget trips a
 * rollback-wave. Those tenants may carry the release (nobody heard
 * otherwise): they are reverted too, once their agent is back, and the
 * rollback waits for them.
 */
START_TEST(withdrawn_apply_is_reverted)
{
	char id[32];
	struct asg held[2];
	int reverts[2] = {0, 0};

	fx_up(true);
	fx_fleet(2, 3, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 6, max_failures: 0, "
	                "per_agent_parallel: 3}\n",
	                "on_failure: rollback-wave\nunreachable: {action: fail, after: 1m}\n"),
	         id);
	poll_agent(1, 2);
	ck_assert_uint_eq(fx.n_out, 2);
	held[0] = fx.out[0];
	held[1] = fx.out[1];
	lose(1); /* it runs them (applies), then goes silent before reporting */
	poll_agent(0, 3);
	report_all(NULL);
	for (int i = 0; i < 10 && rstate(id) == RS(RUNNING); i++) {
		now += 30000;
		ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
		poll_agent(0, 0);
	}
	ck_assert_int_eq(rstate(id), RS(ROLLING_BACK));
	/* agent 0's three applied, and agent 1's two that may have applied */
	ck_assert_int_eq(tenants_in(id, FL_SCHED_REVERTING, -1), 5);
	ck_assert_int_eq(tenant_state(id, held[0].tenant), FL_SCHED_REVERTING);
	ck_assert_int_eq(tenant_state(id, held[1].tenant), FL_SCHED_REVERTING);
	/* agent 0's go; the rollback waits for agent 1 */
	for (int i = 0; i < 5; i++) {
		poll_agent(0, 3 - (uint32_t)held_by(0));
		report_all(NULL);
		now += 1000;
	}
	ck_assert_int_eq(rstate(id), RS(ROLLING_BACK));
	/* agent 1 is back: its journal's reports arrive, and it gets the reverts */
	ck_assert(fl_scheduler_hello(fx.s, fx.apk[1], now, err) == FL_OK);
	for (size_t k = 0; k < 2; k++) {
		long i = held_for(held[k].tenant);

		ck_assert_int_ge(i, 0);
		report_at((size_t)i, OC(APPLIED));
	}
	for (int i = 0; i < 10 && rstate(id) == RS(ROLLING_BACK); i++) {
		poll_agent(1, 3 - (uint32_t)held_by(1));
		for (size_t k = 0; k < fx.n_out; k++) {
			ck_assert_int_eq(fx.out[k].kind, WK(REVERT));
			for (size_t h = 0; h < 2; h++)
				reverts[h] += strcmp(fx.out[k].tenant, held[h].tenant) == 0;
		}
		report_all(NULL);
		now += 1000;
	}
	ck_assert_int_eq(reverts[0], 1);
	ck_assert_int_eq(reverts[1], 1);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_ROLLED_BACK, -1), 5);
	fx_down();
}
END_TEST

/* The same, when the endpoint never passes the late reports on: the
 * scheduler still reverts what may have been applied (agents revert only
 * what their ledger says they applied, so a revert of nothing is harmless). */
START_TEST(withdrawn_apply_reverted_without_late_report)
{
	char id[32];
	struct fl_buf ord = FL_BUF_INIT;
	const char *tenant;

	fx_up(true);
	fx_fleet(1, 2, 0, 0);
	fx.drop_withdrawn = true;
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1}\n", ""), id);
	poll_agent(0, 1);
	tenant = fx.out[0].tenant;
	lose(0); /* the reply is lost... or so the coordinator must assume */
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	now += 61000;
	poll_agent(0, 1); /* not listed, not wanted: withdrawn */
	ck_assert_uint_eq(fl_scheduler_outstanding(fx.s), 0);
	ck_assert_int_eq(tenant_state(id, tenant), FL_SCHED_PENDING);
	/* ... but the agent had run it: its report comes late, and is dropped */
	ck_assert(!endpoint_report(&fx.out[0], OC(APPLIED), true, NULL));
	fx.n_out = 0;
	rollback_order(id, NULL, "", &ord);
	ck_assert_msg(rollback_cmd(id, &ord) == SC(OK), "%s", err);
	ck_assert_int_eq(tenant_state(id, tenant), FL_SCHED_REVERTING);
	poll_agent(0, 1);
	ck_assert_uint_eq(fx.n_out, 1);
	ck_assert_int_eq(fx.out[0].kind, WK(REVERT));
	ck_assert_str_eq(fx.out[0].tenant, tenant);
	report_all(NULL);
	ck_assert_int_eq(rstate(id), RS(ROLLED_BACK));
	fl_buf_fini(&ord);
	fx_down();
}
END_TEST

static int skipped(const struct asg *a)
{
	return a->kind == WK(APPLY) ? OC(SKIPPED) : 0;
}

/* A report that arrives after its rollout finished still records what it
 * proves applied: a later rollback reverts that tenant. */
START_TEST(late_report_after_finish_counts)
{
	char id[32];
	struct asg first[2];
	struct fl_store_rollout_tenant row;
	struct fl_buf ord = FL_BUF_INIT;

	fx_up(true);
	fx_fleet(1, 2, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2}\n", ""), id);
	poll_agent(0, 2);
	first[0] = fx.out[0];
	first[1] = fx.out[1];
	lose(0);
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	now += 61000;
	poll_agent(0, 2); /* withdrawn */
	fx.n_out = 0;
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
	poll_agent(0, 2);
	ck_assert_uint_eq(fx.n_out, 2);
	/* the first attempts had applied: the new ones find the target */
	report_all(skipped);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	/* now the first attempts' reports arrive */
	for (size_t k = 0; k < 2; k++)
		ck_assert(endpoint_report(&first[k], OC(APPLIED), true, NULL));
	row = tenant_row(id, first[0].tenant);
	ck_assert(row.changed);
	fl_store_rollout_tenant_fini(&row);
	rollback_order(id, NULL, "", &ord);
	ck_assert_msg(rollback_cmd(id, &ord) == SC(OK), "%s", err);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_REVERTING, -1), 2);
	fl_buf_fini(&ord);
	fx_down();
}
END_TEST

/* rollback-all whose revert fails halts; retry must not take the rollout
 * forward again (re-apply the reverted wave, start the next ones): the
 * policy said roll everything back. A signed rollback order finishes it. */
static int revert_fails_once;
static int fail_a_revert(const struct asg *a)
{
	if (a->kind == WK(REVERT) && revert_fails_once > 0) {
		revert_fails_once--;
		return OC(FAILED);
	}
	return wave1_fails(a);
}

START_TEST(retry_refused_after_rollback_all)
{
	char id[32];
	size_t seen;

	fx_up(true);
	fx_fleet(2, 6, 4, 0);
	start_ok(
	    POLICY("  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 4}\n"
	           "  - {name: early, select: {percent: 50}, max_parallel: 1, max_failures: 0}\n"
	           "  - {name: rest, select: {percent: 100}, max_parallel: 4}\n",
	           "on_failure: rollback-all\n"),
	    id);
	fail_in_wave1 = 0;
	run(NULL, 4, 2);
	run(NULL, 1, 1);
	fail_in_wave1 = 1;
	revert_fails_once = 1;
	for (int i = 0; i < 80 && (rstate(id) == RS(RUNNING) || rstate(id) == RS(ROLLING_BACK));
	     i++) {
		for (size_t a = 0; a < fx.n_agents; a++)
			poll_agent((int)a, 1 - (uint32_t)held_by((int)a));
		report_all(fail_a_revert);
		now += 1000;
	}
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_eq(revert_fails_once, 0);
	seen = fx.n_seen;
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, "rollback") != NULL, "%s", err);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	run(NULL, 4, 20);
	ck_assert_uint_eq(fx.n_seen, seen); /* nothing more, and no APPLY in wave 2 */
	ck_assert_int_eq(wstate(id, 2), WS(PENDING));
	fx_down();
}
END_TEST

/* An operator halts a rollback-wave half way: tenants are left to revert.
 * retry would set the wave running with tenants that only a REVERT moves
 * on (the wave could never finish): refused until the rollback is done. */
START_TEST(retry_refused_while_reverts_left)
{
	char id[32];
	struct fl_buf ord = FL_BUF_INIT;

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4, max_failures: 0, "
	                "per_agent_parallel: 4}\n",
	                "on_failure: rollback-wave\n"),
	         id);
	poll_agent(0, 4);
	report_at(0, OC(APPLIED));
	report_at(0, OC(APPLIED));
	report_at(0, OC(FAILED));
	ck_assert_int_eq(rstate(id), RS(ROLLING_BACK));
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	report_all(NULL); /* the last APPLY: it went through */
	ck_assert_int_eq(tenants_in(id, FL_SCHED_REVERTING, -1), 3);
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, "revert") != NULL, "%s", err);
	/* a signed rollback order finishes the job */
	rollback_order(id, NULL, "", &ord);
	ck_assert_msg(rollback_cmd(id, &ord) == SC(OK), "%s", err);
	for (int i = 0; i < 10 && rstate(id) == RS(ROLLING_BACK); i++) {
		poll_agent(0, 4 - (uint32_t)held_by(0));
		report_all(NULL);
		now += 1000;
	}
	ck_assert_int_eq(rstate(id), RS(ROLLED_BACK));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_ROLLED_BACK, -1), 3);
	fl_buf_fini(&ord);
	fx_down();
}
END_TEST

/* A halted rollout is not active: another may take its tenants. Retrying it
 * then would put those tenants in two active rollouts. */
START_TEST(retry_keeps_one_active_rollout)
{
	char id[32], id2[32];
	struct fl_selector sel;

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1}\n", ""), id);
	poll_agent(0, 1);
	report_all(NULL);
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	fl_selector_init(&sel);
	ck_assert(fl_selector_add_tenant(&sel, "t00003", err) == FL_OK);
	ck_assert_int_eq(
	    start(POLICY("  - {name: all, select: {percent: 100}}\n", ""), &sel, 0, id2), SC(OK));
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, "t00003") && strstr(err, id2), "%s", err);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	/* once the other is done, the retry goes on */
	run(NULL, 4, 20);
	ck_assert_int_eq(rstate(id2), RS(COMPLETED));
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
	run(NULL, 4, 20);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fl_selector_fini(&sel);
	fx_down();
}
END_TEST

/* Whether any assignment agent a holds was issued to another agent. */
static void assert_own_assignments(int a)
{
	for (size_t k = 0; k < fx.n_out; k++) {
		struct fl_store_assignment as;

		if (fx.out[k].agent != a)
			continue;
		ck_assert(fl_store_assignment_get(fx.st, fx.out[k].id, &as, err) == FL_OK);
		ck_assert_msg(memcmp(as.agent_pk, fx.apk[a], 32) == 0,
		              "assignment %" PRIu64 " for '%s' was issued to another agent",
		              fx.out[k].id, fx.out[k].tenant);
		fl_store_assignment_fini(&as);
	}
}

/* A tenant moves to another agent while work for it is out, and the
 * coordinator restarts: the work issued to the old agent is never sent to
 * the new one (its report would be refused, the tenant stuck); it is
 * withdrawn, and the new agent gets work of its own for the tenant. */
START_TEST(moved_tenant_after_restart)
{
	char id[32];
	long i;

	fx_up(true);
	fx_fleet(2, 2, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4}\n", ""), id);
	poll_agent(0, 2);
	ck_assert_uint_eq(fx.n_out, 2);
	move_tenant("t00000", 1);
	fx_restart();
	ck_assert(fl_scheduler_hello(fx.s, fx.apk[1], now, err) == FL_OK);
	poll_agent(1, 4);
	assert_own_assignments(1);
	i = held_for("t00000");
	ck_assert_int_ge(i, 0); /* the old agent's entry is still in fx.out */
	/* the old agent's assignment for it: withdrawn */
	{
		struct fl_store_assignment as;
		uint64_t old = 0;

		for (size_t k = 0; k < fx.n_out; k++)
			if (fx.out[k].agent == 0 && strcmp(fx.out[k].tenant, "t00000") == 0)
				old = fx.out[k].id;
		ck_assert_uint_ne(old, 0);
		ck_assert(fl_store_assignment_get(fx.st, old, &as, err) == FL_OK);
		ck_assert_int_eq(as.state, FL_STORE_ASSIGNMENT_CANCELED);
		fl_store_assignment_fini(&as);
	}
	for (size_t k = 0; k < fx.n_out;)
		if (fx.out[k].agent == 0 && strcmp(fx.out[k].tenant, "t00000") == 0)
			fx.out[k] = fx.out[--fx.n_out];
		else
			k++;
	run(NULL, 4, 20);
	assert_own_assignments(1);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	ck_assert_int_eq(tenant_state(id, "t00000"), FL_SCHED_APPLIED);
	fx_down();
}
END_TEST

/* The same without a restart: the move is noticed at the new agent's Hello. */
START_TEST(moved_tenant_followed)
{
	char id[32];
	bool got = false;

	fx_up(true);
	fx_fleet(2, 2, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4, "
	                "per_agent_parallel: 4}\n",
	                ""),
	         id);
	poll_agent(0, 2);
	move_tenant("t00000", 1);
	ck_assert(fl_scheduler_hello(fx.s, fx.apk[1], now, err) == FL_OK);
	poll_agent(1, 4);
	assert_own_assignments(1);
	for (size_t k = 0; k < fx.n_out; k++)
		got = got || (fx.out[k].agent == 1 && strcmp(fx.out[k].tenant, "t00000") == 0);
	ck_assert_msg(got, "the new agent got no work for the tenant it now holds");
	/* the old agent's report of it is refused by the endpoint: drop it */
	for (size_t k = 0; k < fx.n_out;)
		if (fx.out[k].agent == 0 && strcmp(fx.out[k].tenant, "t00000") == 0)
			fx.out[k] = fx.out[--fx.n_out];
		else
			k++;
	run(NULL, 4, 20);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* A report's own kind is the agent's word; the assignment's is the
 * coordinator's: an APPLY reported APPLIED (its report saying CHECK) still
 * changed the tenant. */
START_TEST(report_kind_is_the_assignments)
{
	char id[32];
	struct asg a;
	struct fl_store_rollout_tenant row;

	fx_up(true);
	fx_fleet(1, 2, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2}\n", ""), id);
	poll_agent(0, 1);
	a = fx.out[0];
	fx.n_out = 0;
	a.kind = WK(CHECK); /* what the report says */
	endpoint_report(&a, OC(APPLIED), false, NULL);
	row = tenant_row(id, a.tenant);
	ck_assert(row.changed);
	ck_assert_int_eq(row.state, FL_SCHED_APPLIED);
	fl_store_rollout_tenant_fini(&row);
	fx_down();
}
END_TEST

/* A retry of some failed tenants would leave the others failed over the
 * wave's budget: refused (the wave would go on with its budget exceeded). */
START_TEST(retry_keeps_the_budget)
{
	char id[32], keep[64];
	const char *one[1] = {keep};

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	start_ok(POLICY("  - {name: a, select: {percent: 50}, max_parallel: 2, max_failures: 0}\n"
	                "  - {name: b, select: {percent: 100}, max_parallel: 2}\n",
	                ""),
	         id);
	poll_agent(0, 2);
	ck_assert_uint_eq(fx.n_out, 2);
	snprintf(keep, sizeof(keep), "%s", fx.out[0].tenant);
	report_at(0, OC(FAILED));
	report_at(0, OC(FAILED));
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_eq(retry_tenants(id, one, 1), SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, "budget") != NULL, "%s", err);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	poll_agent(0, 2);
	ck_assert_uint_eq(fx.n_out, 0);
	/* all of them: fine */
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
	run(NULL, 2, 20);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* What an agent says is quoted before it reaches a terminal. */
START_TEST(agent_text_is_quoted)
{
	char id[32];
	struct asg a;
	struct fl_store_rollout_tenant row;
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri;

	fx_up(true);
	fx_fleet(1, 2, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2, max_failures: 0}\n",
	           ""),
	    id);
	poll_agent(0, 1);
	a = fx.out[0];
	fx.n_out = 0;
	endpoint_report(&a, OC(FAILED), false, "bad\x1b]0;owned\x07\r\nthing");
	row = tenant_row(id, a.tenant);
	for (const char *p = row.last_error; *p; p++)
		ck_assert_msg((unsigned char)*p >= 0x20 && *p != 0x7f, "control byte in '%s'",
		              row.last_error);
	ck_assert_msg(strstr(row.last_error, "\\x1b") != NULL, "%s", row.last_error);
	fl_store_rollout_tenant_fini(&row);
	ri = info(id, &rep);
	ck_assert_int_eq(ri->state, RS(HALTED));
	for (const char *p = ri->state_reason; *p; p++)
		ck_assert((unsigned char)*p >= 0x20);
	fl_rollout_reply_fini(&rep);
	fx_down();
}
END_TEST

/* unreachable: fail, the agent still silent: a retry puts its tenants back
 * as unreachable (they fail again after the deadline), not as pending for
 * ever. */
START_TEST(retry_with_agent_still_silent)
{
	char id[32];

	fx_up(true);
	fx_fleet(2, 2, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 4, max_failures: 1}\n",
	           "unreachable: {action: fail, after: 1m}\n"),
	    id);
	poll_agent(0, 2);
	report_all(NULL);
	for (int i = 0; i < 10 && rstate(id) == RS(RUNNING); i++) {
		now += 30000;
		ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
		poll_agent(0, 2);
	}
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_PENDING, -1), 0);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_UNREACHABLE, -1), 2);
	now += 1000;
	ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	fx_down();
}
END_TEST

/* A rollback starts while a retried APPLY is out; the tenant's first APPLY
 * ran but was withdrawn before its report came (the rollout was halted).
 * The retried one finds the target and says SKIPPED: the tenant holds the
 * release, by the first attempt. It is reverted, not called rolled back. */
START_TEST(skipped_while_reverting_is_reverted)
{
	char id[32];
	struct asg first;
	long x, z;
	int reverts = 0;

	fx_up(true);
	fx_fleet(1, 3, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2, max_failures: 0}\n",
	           "on_failure: rollback-all\n"),
	    id);
	poll_agent(0, 2);
	first = fx.out[0]; /* runs, applies; its report waits in the journal */
	fx.out[0].lost = true;
	report_at(1, OC(APPLIED));
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	now += 61000;
	poll_agent(0, 2); /* the first is not listed: withdrawn */
	ck_assert_uint_eq(fl_scheduler_outstanding(fx.s), 0);
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
	poll_agent(0, 2);
	x = -1;
	z = -1;
	for (size_t k = 0; k < fx.n_out; k++)
		if (!fx.out[k].lost && strcmp(fx.out[k].tenant, first.tenant) == 0)
			x = (long)k;
		else if (!fx.out[k].lost)
			z = (long)k;
	ck_assert_int_ge(x, 0);
	ck_assert_int_ge(z, 0);
	report_at((size_t)z, OC(FAILED)); /* the budget trips: rollback-all */
	ck_assert_int_eq(rstate(id), RS(ROLLING_BACK));
	x = held_for(first.tenant);
	while (x >= 0 && fx.out[x].lost)
		fx.out[x] = fx.out[--fx.n_out], x = held_for(first.tenant);
	ck_assert_int_ge(x, 0);
	report_at((size_t)x, OC(SKIPPED)); /* it ran before the halt reached it */
	ck_assert_int_eq(tenant_state(id, first.tenant), FL_SCHED_REVERTING);
	for (int i = 0; i < 10 && rstate(id) == RS(ROLLING_BACK); i++) {
		poll_agent(0, 2 - (uint32_t)held_by(0));
		for (size_t k = 0; k < fx.n_out; k++)
			reverts += fx.out[k].kind == WK(REVERT) &&
			           strcmp(fx.out[k].tenant, first.tenant) == 0;
		report_all(NULL);
		now += 1000;
	}
	ck_assert_int_eq(reverts, 1);
	ck_assert_int_eq(rstate(id), RS(ROLLED_BACK));
	fx_down();
}
END_TEST

/* An agent cut off (still running an APPLY) is failed past unreachable.after
 * and its work withdrawn; a rollback-wave follows. When it is back, it
 * still lists the APPLY as running: no REVERT is sent for that tenant until
 * the APPLY is over (an agent holding both could run the REVERT first). */
START_TEST(no_work_while_withdrawn_held)
{
	char id[32], x[64];
	long i;
	int reverts = 0;

	fx_up(true);
	fx_fleet(2, 1, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2, max_failures: 0}\n",
	           "on_failure: rollback-wave\nunreachable: {action: fail, after: 1m}\n"),
	    id);
	poll_agent(1, 1);
	ck_assert_uint_eq(fx.n_out, 1);
	snprintf(x, sizeof(x), "%s", fx.out[0].tenant);
	poll_agent(0, 1);
	i = held_for("t00000");
	ck_assert_int_ge(i, 0);
	report_at((size_t)i, OC(APPLIED)); /* agent 0's applied */
	/* agent 1 is cut off, its APPLY running on; 2 minutes pass */
	for (int k = 0; k < 6 && rstate(id) == RS(RUNNING); k++) {
		now += 30000;
		ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
		poll_agent(0, 0);
	}
	ck_assert_int_eq(rstate(id), RS(ROLLING_BACK));
	ck_assert_int_eq(tenant_state(id, x), FL_SCHED_REVERTING);
	/* back, listing its APPLY as running: nothing for that tenant yet */
	for (int k = 0; k < 3; k++) {
		poll_agent(1, 1);
		for (size_t n = 0; n < fx.n_out; n++)
			ck_assert_msg(fx.out[n].kind != WK(REVERT) ||
			                  strcmp(fx.out[n].tenant, x) != 0,
			              "a REVERT for '%s' while its APPLY runs there", x);
		now += 1000;
	}
	/* the APPLY ends (applied) and is reported; then the REVERT */
	i = held_for(x);
	ck_assert_int_ge(i, 0);
	report_at((size_t)i, OC(APPLIED));
	for (int k = 0; k < 10 && rstate(id) == RS(ROLLING_BACK); k++) {
		for (int a = 0; a < 2; a++)
			poll_agent(a, 1 - (uint32_t)held_by(a));
		for (size_t n = 0; n < fx.n_out; n++)
			reverts += fx.out[n].kind == WK(REVERT) && strcmp(fx.out[n].tenant, x) == 0;
		report_all(NULL);
		now += 1000;
	}
	ck_assert_int_eq(reverts, 1);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_ROLLED_BACK, -1), 2);
	fx_down();
}
END_TEST

/* A REVERT the agent lost is not sent again once the order authorising it
 * expired (the agent would refuse it); it is withdrawn and the tenant left
 * to a new rollback order. A signed rollback of a rollout whose order
 * expired is refused up front: agents check the rollout order on every
 * assignment, REVERTs included. */
START_TEST(no_revert_after_expiry)
{
	char id[32];
	struct fl_buf ord = FL_BUF_INIT;

	fx_up(true);
	fx_fleet(1, 4, 0, 0);
	ck_assert_int_eq(start(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2, "
	                              "max_failures: 0}\n",
	                              "on_failure: rollback-all\n"),
	                       NULL, now + HOUR, id),
	                 SC(OK));
	poll_agent(0, 2);
	report_at(0, OC(APPLIED));
	report_at(0, OC(FAILED));
	ck_assert_int_eq(rstate(id), RS(ROLLING_BACK));
	poll_agent(0, 2);
	ck_assert_uint_eq(fx.n_out, 1);
	ck_assert_int_eq(fx.out[0].kind, WK(REVERT));
	lose(0);
	now += HOUR;
	poll_agent(0, 2); /* lost, and expired: not sent again */
	for (size_t k = 0; k < fx.n_out; k++)
		ck_assert(fx.out[k].lost);
	ck_assert_uint_eq(fl_scheduler_outstanding(fx.s), 0);
	ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
	ck_assert_int_eq(rstate(id), RS(HALTED));
	rollback_order(id, NULL, "", &ord);
	ck_assert_int_eq(rollback_cmd(id, &ord), SC(FAILED_PRECONDITION));
	ck_assert_msg(strstr(err, "expired") != NULL, "%s", err);
	fl_buf_fini(&ord);
	fx_down();
}
END_TEST

static int fail_checks(const struct asg *a)
{
	return a->kind == WK(CHECK) ? OC(HEALTH_FAILED) : 0;
}

/* A tenant fails its health check after applying; retry sends it an APPLY
 * again, which finds the target (SKIPPED: the agent runs no check then).
 * It is checked before its wave moves on, not let through unchecked. */
START_TEST(retry_rechecks_a_health_failure)
{
	char id[32], x[64];
	int checks = 0;

	fx_up(true);
	fx_fleet(1, 2, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 2, max_failures: 0}\n",
	           "health:\n  checks:\n    - {name: ok, sql: \"SELECT true\", timeout: 1s}\n"),
	    id);
	poll_agent(0, 2);
	snprintf(x, sizeof(x), "%s", fx.out[0].tenant);
	report_at(0, OC(HEALTH_FAILED));
	ck_assert_int_eq(rstate(id), RS(HALTED));
	report_all(NULL);
	ck_assert_int_eq(command(CMD(ROLLOUT_RETRY), id, 0), SC(OK));
	poll_agent(0, 2);
	ck_assert_uint_eq(fx.n_out, 1);
	ck_assert_int_eq(fx.out[0].kind, WK(APPLY));
	report_at(0, OC(SKIPPED)); /* applied already, by the first attempt */
	ck_assert_int_eq(rstate(id), RS(RUNNING));
	ck_assert_int_ne(wstate(id, 0), WS(COMPLETED));
	for (int i = 0; i < 5 && rstate(id) == RS(RUNNING); i++) {
		poll_agent(0, 2 - (uint32_t)held_by(0));
		for (size_t k = 0; k < fx.n_out; k++) {
			ck_assert_int_eq(fx.out[k].kind, WK(CHECK));
			ck_assert_str_eq(fx.out[k].tenant, x);
			checks++;
		}
		report_all(fail_checks);
		now += 1000;
	}
	ck_assert_int_eq(checks, 1);
	ck_assert_int_eq(rstate(id), RS(HALTED)); /* still unhealthy */
	ck_assert_int_eq(tenant_state(id, x), FL_SCHED_FAILED);
	fx_down();
}
END_TEST

/* An automatic rollback halted half way, then a signed rollback order for
 * the eu tenants only: the us tenants left to revert are not sent REVERTs
 * carrying an order that does not cover them (agents would refuse each);
 * they are failed, not reverted, with the reason. */
START_TEST(manual_rollback_after_halted_rollback)
{
	char id[32];
	struct fl_buf ord = FL_BUF_INIT;
	struct fl_selector eu;
	int eu_reverts = 0;

	fx_up(true);
	fx_fleet(1, 6, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 6, max_failures: 0, "
	                "per_agent_parallel: 6}\n",
	                "on_failure: rollback-all\n"),
	         id);
	poll_agent(0, 6);
	ck_assert_uint_eq(fx.n_out, 6);
	for (int k = 0; k < 5; k++)
		report_at(0, OC(APPLIED));
	report_at(0, OC(FAILED));
	ck_assert_int_eq(rstate(id), RS(ROLLING_BACK));
	ck_assert_int_eq(command(CMD(ROLLOUT_HALT), id, 0), SC(OK));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_REVERTING, -1), 5);
	fl_selector_init(&eu);
	ck_assert(fl_labels_set(&eu.labels, "region", "eu", err) == FL_OK);
	rollback_order(id, &eu, "", &ord);
	ck_assert_msg(rollback_cmd(id, &ord) == SC(OK), "%s", err);
	for (int i = 0; i < 10 && rstate(id) == RS(ROLLING_BACK); i++) {
		poll_agent(0, 6 - (uint32_t)held_by(0));
		for (size_t k = 0; k < fx.n_out; k++) {
			struct fl_store_tenant t;

			ck_assert_int_eq(fx.out[k].kind, WK(REVERT));
			ck_assert(fl_store_tenant_get(fx.st, fx.out[k].tenant, 0, &t, err) ==
			          FL_OK);
			ck_assert_msg(strcmp(fl_labels_get(&t.labels, "region"), "eu") == 0,
			              "a REVERT for '%s', which the order does not cover",
			              fx.out[k].tenant);
			fl_store_tenant_fini(&t);
			eu_reverts++;
		}
		report_all(NULL);
		now += 1000;
	}
	ck_assert_int_gt(eu_reverts, 0);
	ck_assert_int_eq(rstate(id), RS(HALTED)); /* some were not reverted */
	ck_assert_int_eq(tenants_in(id, FL_SCHED_ROLLED_BACK, -1), eu_reverts);
	fl_selector_fini(&eu);
	fl_buf_fini(&ord);
	fx_down();
}
END_TEST

/* An agent that cancels every APPLY it gets (buggy, or hostile) does not
 * get a new one on every poll for ever: after a few, the tenant waits as a
 * busy one does (a row per try would fill the coordinator's store). */
/* A tenant reverted by rollback-wave no longer counts as changed: a later
 * rollback (here a signed one, of everything the rollout applied) does not
 * revert it again. */
START_TEST(reverted_not_reverted_again)
{
	char id[32];
	int reverts_w0 = 0, reverts_w1 = 0;
	struct fl_buf order = FL_BUF_INIT;

	fx_up(true);
	fx_fleet(2, 6, 4, 0);
	start_ok(
	    POLICY("  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 4}\n"
	           "  - {name: rest, select: {percent: 100}, max_parallel: 1, max_failures: 0}\n",
	           "on_failure: rollback-wave\n"),
	    id);
	fail_in_wave1 = 0;
	run(NULL, 4, 2);
	ck_assert_int_eq(wstate(id, 0), WS(COMPLETED));
	run(NULL, 1, 1);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_APPLIED, 1), 1);
	fail_in_wave1 = 1;
	for (int i = 0; i < 40 && rstate(id) != RS(HALTED); i++) {
		for (size_t a = 0; a < fx.n_agents; a++)
			poll_agent((int)a, 1 - (uint32_t)held_by((int)a));
		report_all(wave1_fails);
		now += 1000;
	}
	ck_assert_int_eq(rstate(id), RS(HALTED));
	ck_assert_int_eq(tenants_in(id, FL_SCHED_ROLLED_BACK, 1), 1);
	for (size_t i = 0; i < 12; i++) {
		char tenant[16];
		struct fl_store_rollout_tenant row;

		snprintf(tenant, sizeof(tenant), "t%02zu%03zu", i / 6, i % 6);
		row = tenant_row(id, tenant);
		if (row.state == FL_SCHED_ROLLED_BACK)
			ck_assert_msg(!row.changed, "'%s' reverted, still changed", tenant);
		fl_store_rollout_tenant_fini(&row);
	}
	rollback_order(id, NULL, "", &order);
	ck_assert_int_eq(rollback_cmd(id, &order), SC(OK));
	fl_buf_fini(&order);
	for (int i = 0; i < 40 && rstate(id) == RS(ROLLING_BACK); i++) {
		for (size_t a = 0; a < fx.n_agents; a++)
			poll_agent((int)a, 4 - (uint32_t)held_by((int)a));
		for (size_t k = 0; k < fx.n_out; k++) {
			ck_assert_int_eq(fx.out[k].kind, WK(REVERT));
			if (fx.out[k].wave == 0)
				reverts_w0++;
			else
				reverts_w1++;
		}
		report_all(NULL);
		now += 1000;
	}
	ck_assert_int_eq(rstate(id), RS(ROLLED_BACK));
	ck_assert_int_eq(reverts_w0, 4); /* the canaries */
	ck_assert_int_eq(reverts_w1, 0); /* reverted already */
	fx_down();
}
END_TEST

START_TEST(canceled_loop_backs_off)
{
	char id[32];
	size_t issued = 0;

	fx_up(true);
	fx_fleet(1, 1, 0, 0);
	start_ok(POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1}\n", ""), id);
	for (int i = 0; i < 20; i++) {
		issued += poll_agent(0, 1).assignments;
		if (fx.n_out > 0)
			report_at(0, OC(CANCELED));
		now += 100;
	}
	ck_assert_uint_le(issued, 4);
	ck_assert_int_eq(tenants_in(id, FL_SCHED_BUSY, -1), 1);
	now += 30000;
	ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
	run(NULL, 1, 5);
	ck_assert_int_eq(rstate(id), RS(COMPLETED));
	fx_down();
}
END_TEST

/* ---- a property test: random orderings of events, invariants after each ---- */

/*
 * Simulated agents that behave like flotilla-agent (agent/worker.c,
 * ledger.c, journal.c): they run what they hold one tenant at a time, keep
 * a ledger (an id run before is answered from it, never run again) and a
 * journal of reports they send when they can; they lose replies, go silent
 * (still working), restart (running work is reported CANCELED), cancel
 * what a halt names; they revert only what they applied under the order.
 * The coordinator is restarted, its transactions rolled back; operators
 * pause, resume, halt, promote and retry at random. After every step:
 *
 * - the limits: per wave max_parallel, per agent per_agent_parallel, never
 *   two assignments outstanding for a tenant, the model's count of
 *   outstanding work is the store's;
 * - new APPLY only for a selected tenant of the current wave, rollout and
 *   wave running, its window open; CHECK only for an applied tenant of a
 *   baking wave; REVERT only while rolling back (rollback-wave: only the
 *   failing wave's tenants);
 * - a running or paused rollout has no wave over its failure budget;
 * - the model's counts are the store's;
 * - after a restart, the same assignments are outstanding.
 *
 * A seed replays the same run (keys and nonces come from it too):
 * FL_SCHED_SEED=<first> FL_SCHED_SEEDS=<how many> (24 from 1 by default),
 * FL_SCHED_VERBOSE=1 to see each seed and how it ended.
 *
 * Then everything is let settle (agents back, reports delivered, work
 * succeeding) and: a rolled back rollout left no tenant carrying what it
 * applied; a wave rolled back (rollback-wave) neither; a completed one
 * applied every tenant it says it applied, and no other.
 */
#define PT_AGENTS  3
#define PT_PER     5
#define PT_TENANTS (PT_AGENTS * PT_PER)
#define PT_LEDGER  4096

struct pt_rep {
	struct asg a;
	int outcome;
	bool applied;
};

static struct {
	uint64_t rng;
	struct fl_policy pol;
	bool selected[PT_TENANTS];
	bool truth[PT_TENANTS]; /* the tenant carries what the rollout applies */
	bool at_target[PT_TENANTS];
	bool silent[PT_AGENTS];
	struct pt_rep journal[PT_AGENTS][512];
	size_t n_journal[PT_AGENTS];
	struct pt_rep ledger[PT_LEDGER]; /* every assignment run, with its report */
	size_t n_ledger;
	bool windows;
	char id[32];
	unsigned steps, restarts, rollbacks_tx, late, halts;
	bool manual;       /* a signed rollback order was taken */
	uint32_t trouble;  /* percent of work that does not simply succeed */
	bool quiet;        /* operators rarely step in */
	bool signs;        /* a release manager may sign a rollback */
	unsigned ended[8]; /* final rollout states, over seeds */
	unsigned rolling_back;
} pt;

static uint32_t pt_rand(uint32_t n)
{
	/* xorshift64*: reproducible per seed */
	pt.rng ^= pt.rng >> 12;
	pt.rng ^= pt.rng << 25;
	pt.rng ^= pt.rng >> 27;
	return (uint32_t)((pt.rng * 2685821657736338717ULL) >> 33) % (n ? n : 1);
}

static bool pt_chance(uint32_t percent)
{
	return pt_rand(100) < percent;
}

static int pt_index(const char *tenant)
{
	unsigned a, k;

	ck_assert(sscanf(tenant, "t%2u%3u", &a, &k) == 2);
	ck_assert_uint_lt(a, PT_AGENTS);
	ck_assert_uint_lt(k, PT_PER);
	return (int)(a * PT_PER + k);
}

static const struct pt_rep *pt_ledger_find(uint64_t id)
{
	for (size_t i = 0; i < pt.n_ledger; i++)
		if (pt.ledger[i].a.id == id)
			return &pt.ledger[i];
	return NULL;
}

static void pt_journal(int a, const struct asg *as, int outcome, bool applied)
{
	ck_assert_uint_lt(pt.n_journal[a], 512);
	pt.journal[a][pt.n_journal[a]++] = (struct pt_rep){*as, outcome, applied};
	if (pt_ledger_find(as->id) == NULL) {
		ck_assert_uint_lt(pt.n_ledger, PT_LEDGER);
		pt.ledger[pt.n_ledger++] = (struct pt_rep){*as, outcome, applied};
	}
}

/* Agent a runs out[i] (one it really holds): the outcome decided here, the
 * truth changed as it would be, the report journaled. */
static void pt_run(size_t i, bool good)
{
	struct asg as;

	/* one tenant at a time, in the order they came (agent/worker.c) */
	for (size_t k = 0; k < fx.n_out; k++)
		if (fx.out[k].agent == fx.out[i].agent && !fx.out[k].lost && !fx.out[k].done &&
		    strcmp(fx.out[k].tenant, fx.out[i].tenant) == 0 &&
		    fx.out[k].arrival < fx.out[i].arrival)
			i = k;
	as = fx.out[i];
	const struct pt_rep *done = pt_ledger_find(as.id);
	int ti = pt_index(as.tenant), o;
	bool applied = false;

	fx.out[i].done = true;
	if (done != NULL) { /* run before: answered from the ledger */
		pt_journal(as.agent, &as, done->outcome, done->applied);
		return;
	}
	if (as.kind == WK(APPLY)) {
		/* the rest of the outcomes, spread over what is not APPLIED */
		uint32_t x = 66 + (pt_chance(pt.trouble) ? pt_rand(34) : 0);

		if (pt.truth[ti] || pt.at_target[ti])
			o = OC(SKIPPED);
		else if (good || x < 66 || x == 66)
			o = OC(APPLIED);
		else if (x < 74)
			o = OC(FAILED);
		else if (x < 77)
			o = OC(REFUSED);
		else if (x < 80)
			o = OC(BACKUP_FAILED);
		else if (x < 88)
			o = OC(BUSY);
		else if (x < 93)
			o = OC(HEALTH_FAILED);
		else if (x < 98)
			o = OC(CANCELED);
		else
			o = OC(INCONCLUSIVE);
		applied = o == OC(APPLIED) || o == OC(HEALTH_FAILED) || o == OC(INCONCLUSIVE);
		if (applied)
			pt.truth[ti] = true;
	} else if (as.kind == WK(CHECK)) {
		uint32_t x = pt_chance(pt.trouble) ? 88 + pt_rand(12) : 0;

		o = good || x < 88 ? OC(HEALTHY) : x < 97 ? OC(HEALTH_FAILED) : OC(INCONCLUSIVE);
	} else {
		if (!pt.truth[ti])
			o = OC(SKIPPED); /* nothing this agent applied under the order */
		else if (good || pt_chance(95))
			o = OC(ROLLED_BACK), pt.truth[ti] = false;
		else
			o = OC(FAILED);
	}
	pt_journal(as.agent, &as, o, applied);
}

/* Agent a cancels what it holds (a halt; the ledger records CANCELED). */
static void pt_cancel_held(int a, const uint64_t *except, size_t n_except)
{
	for (size_t i = 0; i < fx.n_out;) {
		bool keep = fx.out[i].agent != a || fx.out[i].lost || fx.out[i].done;

		for (size_t k = 0; k < n_except && !keep; k++)
			keep = fx.out[i].id == except[k];
		if (!keep && pt_ledger_find(fx.out[i].id) == NULL) {
			pt_journal(a, &fx.out[i], OC(CANCELED), false);
			fx.out[i].done = true;
		}
		i++;
	}
}

static void pt_deliver(int a, size_t j, bool abort_tx)
{
	struct pt_rep r = pt.journal[a][j];
	struct fl_store_assignment as;

	if (abort_tx) {
		/* the endpoint's transaction fails after the scheduler took it:
		 * rolled back, the report stays in the journal */
		ck_assert(fl_store_begin(fx.st, err) == FL_OK);
		ck_assert(fl_store_assignment_get(fx.st, r.a.id, &as, err) == FL_OK);
		if (as.state != FL_STORE_ASSIGNMENT_REPORTED) {
			Flotilla__V1__Report rp = FLOTILLA__V1__REPORT__INIT;

			rp.tenant_id = r.a.tenant;
			rp.rollout_id = r.a.rollout;
			rp.assignment_id = r.a.id;
			rp.kind = (Flotilla__V1__WorkKind)r.a.kind;
			rp.outcome = (Flotilla__V1__Outcome)r.outcome;
			rp.message = "";
			/* as the endpoint: the scheduler first, then marked reported */
			ck_assert_msg(fl_scheduler_report(fx.s, &as, &rp, now, err) == FL_OK, "%s",
			              err);
			ck_assert(fl_store_assignment_set_state(fx.st, as.id,
			                                        FL_STORE_ASSIGNMENT_REPORTED,
			                                        r.outcome, now, err) == FL_OK);
		}
		fl_store_rollback(fx.st);
		fl_store_assignment_fini(&as);
		pt.rollbacks_tx++;
		return;
	}
	ck_assert(fl_store_assignment_get(fx.st, r.a.id, &as, err) == FL_OK);
	pt.late += as.state == FL_STORE_ASSIGNMENT_CANCELED;
	fl_store_assignment_fini(&as);
	endpoint_report(&r.a, r.outcome, r.applied, NULL);
	pt.journal[a][j] = pt.journal[a][--pt.n_journal[a]];
	for (size_t i = 0; i < fx.n_out;)
		if (fx.out[i].id == r.a.id && fx.out[i].done)
			fx.out[i] = fx.out[--fx.n_out];
		else
			i++;
}

/* Agent a restarts: what it ran before is in its ledger and journal; what
 * was running is reported CANCELED; what was queued it forgets. */
static void pt_restart_agent(int a)
{
	for (size_t i = 0; i < fx.n_out; i++) {
		if (fx.out[i].agent != a || fx.out[i].lost || fx.out[i].done)
			continue;
		if (pt_chance(50) && pt_ledger_find(fx.out[i].id) == NULL) {
			pt_journal(a, &fx.out[i], OC(CANCELED), false); /* it was running */
			fx.out[i].done = true;
		} else {
			fx.out[i].lost = true; /* queued: forgotten */
		}
	}
	ck_assert(fl_scheduler_hello(fx.s, fx.apk[a], now, err) == FL_OK);
}

static struct fl_store_assignment *pt_issued(size_t *n)
{
	struct fl_store_assignment *as = NULL;

	ck_assert(fl_store_assignment_issued_in(fx.st, pt.id, &as, n, err) == FL_OK);
	return as;
}

/* The invariants on what one poll handed out. */
static void pt_check_poll(int a, const Flotilla__V1__RolloutInfo *ri)
{
	int minute = (int)((now / 60000) % 1440);

	for (size_t i = 0; i < fx.n_last; i++) {
		const struct asg *as = NULL;
		int ti, st;

		for (size_t k = 0; k < fx.n_out; k++)
			if (fx.out[k].id == fx.last_ids[i])
				as = &fx.out[k];
		ck_assert_ptr_nonnull(as);
		ck_assert_int_eq(as->agent, a);
		ti = pt_index(as->tenant);
		ck_assert_msg(pt.selected[ti], "tenant '%s' is not selected", as->tenant);
		if (!fx.last_fresh[i])
			continue; /* sent again: checked when first issued */
		st = tenant_state(pt.id, as->tenant);
		if (as->kind == WK(APPLY)) {
			ck_assert_int_eq(ri->state, RS(RUNNING));
			ck_assert_uint_eq(as->wave, ri->current_wave);
			ck_assert_int_eq(ri->waves[as->wave]->state, WS(RUNNING));
			ck_assert_int_eq(st, FL_SCHED_ASSIGNED);
			ck_assert(!pt.at_target[ti]);
			if (pt.windows && ti % 2 == 0) /* eu: 22:00-23:30 */
				ck_assert_msg(minute >= 1320 && minute < 1410,
				              "'%s' started at minute %d", as->tenant, minute);
		} else if (as->kind == WK(CHECK)) {
			ck_assert_int_eq(ri->state, RS(RUNNING));
			ck_assert_uint_eq(as->wave, ri->current_wave);
			/* baking; or running: a tenant an earlier attempt applied */
			ck_assert(ri->waves[as->wave]->state == WS(BAKING) ||
			          ri->waves[as->wave]->state == WS(RUNNING));
			ck_assert_int_eq(st, FL_SCHED_APPLIED);
		} else {
			ck_assert_int_eq(ri->state, RS(ROLLING_BACK));
			ck_assert_int_eq(st, FL_SCHED_REVERTING);
			if (pt.pol.on_failure == FL_ON_FAILURE_ROLLBACK_WAVE && !pt.manual)
				ck_assert_uint_eq(as->wave, ri->current_wave);
		}
	}
}

struct pt_counts {
	uint32_t c[8][FL_SCHED_TENANT_STATES];
};

static void pt_count_cb(void *arg, uint32_t wave, int state, uint32_t count)
{
	struct pt_counts *c = arg;

	ck_assert_uint_lt(wave, 8);
	c->c[wave][state] += count;
}

/* The invariants that hold between any two events. */
static void pt_check(void)
{
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri = info(pt.id, &rep);
	struct pt_counts sc = {0};
	struct fl_store_assignment *as;
	size_t n_as;

	check_limits();
	as = pt_issued(&n_as);
	ck_assert_uint_eq(fl_scheduler_outstanding(fx.s), n_as);
	fl_store_assignments_free(as, n_as);
	ck_assert(fl_store_rollout_tenant_counts(fx.st, pt.id, pt_count_cb, &sc, err) == FL_OK);
	for (size_t w = 0; w < ri->n_waves; w++) {
		const Flotilla__V1__WaveStatus *ws = ri->waves[w];

		ck_assert_uint_eq(ws->tenants_failed, sc.c[w][FL_SCHED_FAILED]);
		ck_assert_uint_eq(ws->tenants_applied, sc.c[w][FL_SCHED_APPLIED]);
		ck_assert_uint_eq(ws->tenants_pending,
		                  sc.c[w][FL_SCHED_PENDING] + sc.c[w][FL_SCHED_BUSY]);
		ck_assert_uint_eq(ws->tenants_running,
		                  sc.c[w][FL_SCHED_ASSIGNED] + sc.c[w][FL_SCHED_REVERTING]);
		ck_assert_uint_eq(ws->tenants_rolled_back, sc.c[w][FL_SCHED_ROLLED_BACK]);
		ck_assert_uint_eq(ws->tenants_unreachable, sc.c[w][FL_SCHED_UNREACHABLE]);
		/* running or paused: no wave worked on is over its budget */
		if ((ri->state == RS(RUNNING) || ri->state == RS(PAUSED)) &&
		    w <= ri->current_wave && ws->state != WS(PENDING))
			ck_assert_msg(!fl_wave_budget_exceeded(&pt.pol.waves[w], ws->tenants_failed,
			                                       ws->tenants_total),
			              "wave %zu: %u of %u failed, rollout %d, wave state %d", w,
			              ws->tenants_failed, ws->tenants_total, ri->state, ws->state);
	}
	fl_rollout_reply_fini(&rep);
}

static void pt_poll(int a, uint32_t slots)
{
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri;
	struct polled p = poll_agent(a, slots);

	ri = info(pt.id, &rep);
	pt_check_poll(a, ri);
	fl_rollout_reply_fini(&rep);
	if (p.halts > 0) {
		pt.halts++;
		pt_cancel_held(a, fx.last_ids, fx.n_last);
	}
	if (fx.n_last > 0 && pt_chance(8)) /* the reply is lost on the way */
		for (size_t i = 0; i < fx.n_out; i++)
			for (size_t k = 0; k < fx.n_last; k++)
				if (fx.out[i].id == fx.last_ids[k])
					fx.out[i].lost = true;
}

static uint32_t pt_free(int a)
{
	uint32_t held = 0;

	for (size_t i = 0; i < fx.n_out; i++)
		held += fx.out[i].agent == a && !fx.out[i].lost && !fx.out[i].done;
	return held >= 4 ? 0 : 4 - held;
}

static void pt_step(void)
{
	int a = (int)pt_rand(PT_AGENTS);
	uint32_t x = pt_rand(1000);

	pt.steps++;
	if (x >= 845 && pt.quiet && !pt_chance(10))
		x = 0; /* operators who mostly leave it alone */
	if (x < 250) { /* time passes, the core ticks */
		now += pt_chance(85) ? 200 + pt_rand(5000) : 30000 + pt_rand(150000);
		ck_assert_msg(fl_scheduler_tick(fx.s, now, err) == FL_OK, "%s", err);
	} else if (x < 450) {
		if (!pt.silent[a])
			pt_poll(a, pt_rand(5) == 0 ? 0 : pt_free(a));
	} else if (x < 600) { /* run something held (silent agents work too) */
		for (size_t i = 0; i < fx.n_out; i++)
			if (fx.out[i].agent == a && !fx.out[i].lost && !fx.out[i].done) {
				pt_run(i, false);
				break;
			}
	} else if (x < 760) { /* send a journaled report */
		if (!pt.silent[a] && pt.n_journal[a] > 0)
			pt_deliver(a, pt_rand((uint32_t)pt.n_journal[a]), pt_chance(5));
	} else if (x < 790) {
		pt.silent[a] = !pt.silent[a];
		if (!pt.silent[a] && pt_chance(50))
			ck_assert(fl_scheduler_hello(fx.s, fx.apk[a], now, err) == FL_OK);
	} else if (x < 805) {
		pt_restart_agent(a);
	} else if (x < 820) { /* the coordinator killed and started again */
		struct fl_store_assignment *before, *after;
		size_t nb, na;

		before = pt_issued(&nb);
		fx_restart();
		pt.restarts++;
		after = pt_issued(&na);
		ck_assert_uint_eq(nb, na);
		ck_assert_uint_eq(fl_scheduler_outstanding(fx.s), na);
		for (size_t i = 0; i < na; i++)
			ck_assert_uint_eq(before[i].id, after[i].id);
		fl_store_assignments_free(before, nb);
		fl_store_assignments_free(after, na);
	} else if (x < 840) { /* the core's transaction fails after a poll or tick */
		struct fl_scheduler_work w;
		uint64_t none = 0;

		ck_assert(fl_store_begin(fx.st, err) == FL_OK);
		if (pt_chance(50))
			ck_assert(fl_scheduler_poll(fx.s, fx.apk[a], 4, &none, 0, now, &w, err) ==
			          FL_OK);
		else
			memset(&w, 0, sizeof(w)),
			    ck_assert(fl_scheduler_tick(fx.s, now + 60000, err) == FL_OK);
		fl_scheduler_work_fini(&w);
		fl_store_rollback(fx.st);
		pt.rollbacks_tx++;
	} else if (x < 845 && pt.signs && pt_chance(30)) { /* a release manager signs a rollback */
		struct fl_buf ord = FL_BUF_INIT;

		rollback_order(pt.id, NULL, "", &ord);
		pt.manual = pt.manual || rollback_cmd(pt.id, &ord) == SC(OK);
		fl_buf_fini(&ord);
	} else { /* an operator */
		static const int cmds[] = {CMD(ROLLOUT_PAUSE),   CMD(ROLLOUT_RESUME),
		                           CMD(ROLLOUT_HALT),    CMD(ROLLOUT_RETRY),
		                           CMD(ROLLOUT_PROMOTE), CMD(ROLLOUT_RETRY),
		                           CMD(ROLLOUT_RESUME),  CMD(ROLLOUT_PROMOTE)};
		struct fl_rollout_reply rep;
		uint32_t cur = info(pt.id, &rep)->current_wave;

		fl_rollout_reply_fini(&rep);
		command(cmds[pt_rand(8)], pt.id, pt_chance(80) ? cur : pt_rand(4));
	}
	pt_check();
}

/* Let everything settle: agents back, reports in, work succeeding, gates
 * promoted, paused rollouts resumed; until nothing moves. */
static void pt_settle(void)
{
	for (int a = 0; a < PT_AGENTS; a++)
		if (pt.silent[a]) {
			pt.silent[a] = false;
			ck_assert(fl_scheduler_hello(fx.s, fx.apk[a], now, err) == FL_OK);
		}
	for (int round = 0; round < 3000; round++) {
		bool busy = false;
		struct fl_rollout_reply rep;
		Flotilla__V1__RolloutInfo *ri;
		int st;

		now += round < 200 ? 2000 : 10 * MINUTE;
		ck_assert(fl_scheduler_tick(fx.s, now, err) == FL_OK);
		for (int a = 0; a < PT_AGENTS; a++) {
			pt_poll(a, pt_free(a));
			for (size_t i = 0; i < fx.n_out; i++)
				if (fx.out[i].agent == a && !fx.out[i].lost && !fx.out[i].done)
					pt_run(i, true);
			while (pt.n_journal[a] > 0)
				pt_deliver(a, 0, false);
			busy = busy || fx.n_last > 0;
		}
		pt_check();
		ri = info(pt.id, &rep);
		st = ri->state;
		if (st == RS(PAUSED))
			command(CMD(ROLLOUT_RESUME), pt.id, 0);
		else if (st == RS(HALTED) && strncmp(ri->state_reason, "halted by", 9) == 0 &&
		         command(CMD(ROLLOUT_RETRY), pt.id, 0) == SC(OK))
			busy = true; /* an operator's halt, lifted */
		else if (st == RS(RUNNING) && ri->current_wave < ri->n_waves &&
		         ri->waves[ri->current_wave]->state == WS(AWAITING_PROMOTE))
			command(CMD(ROLLOUT_PROMOTE), pt.id, ri->current_wave);
		fl_rollout_reply_fini(&rep);
		if (!busy && fl_scheduler_outstanding(fx.s) == 0 &&
		    (st == RS(COMPLETED) || st == RS(ROLLED_BACK) || st == RS(HALTED)))
			return;
	}
	ck_abort_msg("rollout '%s' does not settle (state %d)", pt.id, rstate(pt.id));
}

static void pt_final(void)
{
	struct fl_store_wave *ws = NULL;
	size_t nw = 0;
	int st = rstate(pt.id);
	bool revert_failed = false, reverting = false;

	for (int i = 0; i < PT_TENANTS; i++) {
		char tid[16];
		struct fl_store_rollout_tenant row;

		if (!pt.selected[i])
			continue;
		snprintf(tid, sizeof(tid), "t%02d%03d", i / PT_PER, i % PT_PER);
		row = tenant_row(pt.id, tid);
		revert_failed = revert_failed || row.revert_failed;
		reverting = reverting || row.state == FL_SCHED_REVERTING;
		/* what the rollout says it applied, it applied */
		if (row.state == FL_SCHED_APPLIED)
			ck_assert_msg(pt.truth[i], "'%s' applied by the books, not in truth", tid);
		if (st == RS(ROLLED_BACK))
			ck_assert_msg(!pt.truth[i], "'%s' still carries the release after rollback",
			              tid);
		if (st == RS(COMPLETED))
			ck_assert_msg(pt.truth[i] ==
			                  (row.state == FL_SCHED_APPLIED ||
			                   (row.state == FL_SCHED_SKIPPED && !pt.at_target[i]) ||
			                   (row.state == FL_SCHED_FAILED && pt.truth[i])),
			              "'%s' state %d, truth %d", tid, row.state, pt.truth[i]);
		fl_store_rollout_tenant_fini(&row);
	}
	/* a wave rolled back (rollback-wave), the rollback done: none of its
	 * tenants carries the release */
	ck_assert(fl_store_wave_list(fx.st, pt.id, &ws, &nw, err) == FL_OK);
	for (size_t w = 0; w < nw; w++) {
		if (!ws[w].rolled_back || st != RS(HALTED) || revert_failed || reverting)
			continue;
		for (int i = 0; i < PT_TENANTS; i++) {
			char tid[16];
			struct fl_store_rollout_tenant row;

			if (!pt.selected[i])
				continue;
			snprintf(tid, sizeof(tid), "t%02d%03d", i / PT_PER, i % PT_PER);
			row = tenant_row(pt.id, tid);
			if (row.wave == w && strstr(ws[w].state_reason, "failure budget") != NULL)
				ck_assert_msg(!pt.truth[i] || row.state != FL_SCHED_ROLLED_BACK,
				              "'%s' rolled back by the books, not in truth", tid);
			fl_store_rollout_tenant_fini(&row);
		}
	}
	fl_store_waves_free(ws, nw);
}

/* Randomness for keys and nonces from the seed too (libsodium's is
 * replaced while the test runs), so a seed replays the same run: the same
 * orders, hence the same waves. */
static uint8_t pt_sodium_seed[randombytes_SEEDBYTES];
static uint64_t pt_sodium_n;

static void pt_sodium_buf(void *buf, size_t n)
{
	uint8_t k[randombytes_SEEDBYTES];

	memcpy(k, pt_sodium_seed, sizeof(k));
	memcpy(k, &pt_sodium_n, sizeof(pt_sodium_n));
	pt_sodium_n++;
	randombytes_buf_deterministic(buf, n, k);
}

static uint32_t pt_sodium_random(void)
{
	uint32_t x;

	pt_sodium_buf(&x, sizeof(x));
	return x;
}

static const char *pt_sodium_name(void)
{
	return "check_scheduler";
}

static randombytes_implementation pt_sodium = {
    .implementation_name = pt_sodium_name,
    .random = pt_sodium_random,
    .buf = pt_sodium_buf,
};

static void pt_run_seed(uint64_t seed, int steps)
{
	char pol[2048];
	static const char *fails[] = {"halt", "rollback-wave", "rollback-all"};
	struct fl_selector sel;
	const char *budget[] = {"max_failures: 0", "max_failures: 1", "max_failures: 2",
	                        "max_failure_rate: 0.3"};

	memset(pt_sodium_seed, 0, sizeof(pt_sodium_seed));
	memcpy(pt_sodium_seed + 8, &seed, sizeof(seed));
	pt_sodium_n = 0;
	randombytes_set_implementation(&pt_sodium);
	fx_up(true);
	memset(&pt, 0, sizeof(pt));
	pt.rng = seed * 0x9e3779b97f4a7c15ULL + 1;
	pt.trouble = (uint32_t[]){3, 12, 34}[pt_rand(3)];
	pt.quiet = pt_chance(50);
	pt.signs = pt_chance(30);
	fx.drop_withdrawn = pt_chance(30);
	fx_fleet(PT_AGENTS, PT_PER, 3, pt_chance(50) ? 2 : 0);
	pt.windows = pt_chance(25);
	snprintf(pol, sizeof(pol),
	         "name: p\nwaves:\n"
	         "  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 2, %s, "
	         "bake: %s, gate: %s}\n"
	         "  - {name: early, select: {percent: 40}, max_parallel: 3, per_agent_parallel: "
	         "%d, %s, bake: %s}\n"
	         "  - {name: rest, select: {percent: 100}, max_parallel: 4, %s, gate: %s}\n"
	         "per_agent_parallel: 2\n"
	         "health:\n  interval: 30s\n  checks:\n"
	         "    - {name: ok, sql: \"SELECT true\", timeout: 1s}\n"
	         "on_failure: %s\n%s%s",
	         budget[pt_rand(4)], pt_chance(50) ? "2m" : "0s", pt_chance(30) ? "manual" : "auto",
	         (int)pt_rand(3), budget[pt_rand(4)], pt_chance(50) ? "1m" : "0s",
	         budget[pt_rand(4)], pt_chance(20) ? "manual" : "auto", fails[pt_rand(3)],
	         pt_chance(50) ? "unreachable: {action: fail, after: 1m}\n" : "",
	         pt.windows
	             ? "windows:\n  - {select: {labels: {region: eu}}, utc: \"22:00-23:30\"}\n"
	             : "");
	ck_assert_msg(fl_policy_load_buffer(pol, strlen(pol), "p.yaml", &pt.pol, err) == FL_OK,
	              "%s", err);
	/* the selection: all but two tenants */
	fl_selector_init(&sel);
	for (int i = 0; i < PT_TENANTS; i++) {
		char tid[16];

		pt.selected[i] = i != 4 && i != 13;
		snprintf(tid, sizeof(tid), "t%02d%03d", i / PT_PER, i % PT_PER);
		if (pt.selected[i])
			ck_assert(fl_selector_add_tenant(&sel, tid, err) == FL_OK);
	}
	{
		/* fx_fleet puts the first at_target tenants (by creation) at M3 */
		struct fl_store_tenant t;

		for (int i = 0; i < PT_TENANTS; i++) {
			char tid[16];

			snprintf(tid, sizeof(tid), "t%02d%03d", i / PT_PER, i % PT_PER);
			ck_assert(fl_store_tenant_get(fx.st, tid, 0, &t, err) == FL_OK);
			pt.at_target[i] = strcmp(t.head_migration_id, M3) == 0;
			fl_store_tenant_fini(&t);
		}
	}
	ck_assert_msg(start(pol, &sel,
	                    pt_chance(25) ? now + 20 * MINUTE + pt_rand(100) * MINUTE : 0,
	                    pt.id) == SC(OK),
	              "seed %" PRIu64 ": %s", seed, err);
	fl_selector_fini(&sel);
	for (int i = 0; i < steps; i++)
		pt_step();
	pt_settle();
	pt_final();
	pt.ended[rstate(pt.id) & 7]++;
	if (getenv("FL_SCHED_VERBOSE")) {
		struct fl_rollout_reply rep;

		fprintf(stderr, "random_orderings: ended %d: %s\n", rstate(pt.id),
		        info(pt.id, &rep)->state_reason);
		fl_rollout_reply_fini(&rep);
	}
	pt.rolling_back += (unsigned)audits("rolling_back");
	fl_policy_fini(&pt.pol);
	fx_down();
	randombytes_set_implementation(&randombytes_sysrandom_implementation);
}

START_TEST(random_orderings)
{
	const char *env = getenv("FL_SCHED_SEEDS"), *base_env = getenv("FL_SCHED_SEED");
	int seeds = env ? (int)strtol(env, NULL, 10) : 24;
	uint64_t base = base_env ? strtoull(base_env, NULL, 10) : 1;
	unsigned steps = 0, restarts = 0, txr = 0, late = 0, halts = 0, ended[8] = {0}, rb = 0;

	for (int k = 0; k < seeds; k++) {
		uint64_t seed = base + (uint64_t)k;

		if (getenv("FL_SCHED_VERBOSE"))
			fprintf(stderr, "random_orderings: seed %" PRIu64 "\n", seed);
		pt_run_seed(seed, 400);
		steps += pt.steps;
		restarts += pt.restarts;
		txr += pt.rollbacks_tx;
		late += pt.late;
		halts += pt.halts;
		rb += pt.rolling_back;
		for (int i = 0; i < 8; i++)
			ended[i] += pt.ended[i];
	}
	fprintf(stderr,
	        "random_orderings: %d seeds from %" PRIu64 ", %u steps, %u restarts, %u "
	        "transactions rolled back, %u late reports, %u halts sent, %u automatic rollbacks; "
	        "ended completed %u, halted %u, rolled back %u\n",
	        seeds, base, steps, restarts, txr, late, halts, rb, ended[RS(COMPLETED)],
	        ended[RS(HALTED)], ended[RS(ROLLED_BACK)]);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("scheduler");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, happy_path);
	tcase_add_test(tc, waves_in_order);
	tcase_add_test(tc, budget_zero);
	tcase_add_test(tc, budget_neither_is_zero);
	tcase_add_test(tc, budget_one_tolerates_one);
	tcase_add_test(tc, budget_one_trips_on_second);
	tcase_add_test(tc, budget_rate);
	tcase_add_test(tc, budget_rate_trips);
	tcase_add_test(tc, refused_is_failure);
	tcase_add_test(tc, manual_gate_and_promote);
	tcase_add_test(tc, bake_repeats_checks);
	tcase_add_test(tc, bake_pause_stops_clock);
	tcase_add_test(tc, bake_check_failure_counts);
	tcase_add_test(tc, inconclusive_pauses);
	tcase_add_test(tc, busy_requeued);
	tcase_add_test(tc, unreachable_wait);
	tcase_add_test(tc, unreachable_survives_restart);
	tcase_add_test(tc, report_after_a_rollback_moves_its_tenant_on);
	tcase_add_test(tc, unreachable_fail);
	tcase_add_test(tc, order_expiry);
	tcase_add_test(tc, pause_resume);
	tcase_add_test(tc, halt_answers_held_polls);
	tcase_add_test(tc, halt_delivered_once);
	tcase_add_test(tc, halted_not_queued);
	tcase_add_test(tc, rollback_wave_only_that_wave);
	tcase_add_test(tc, reverted_not_reverted_again);
	tcase_add_test(tc, rollback_all);
	tcase_add_test(tc, retry_new_ids);
	tcase_add_test(tc, one_active_rollout_per_tenant);
	tcase_add_test(tc, windows_hold_starts);
	tcase_add_test(tc, windows_reason_names_opening);
	tcase_add_test(tc, limits_never_exceeded);
	tcase_add_test(tc, restart_resumes);
	tcase_add_test(tc, restart_keeps_states);
	tcase_add_test(tc, lost_reply_resent);
	tcase_add_test(tc, start_refusals);
	tcase_add_test(tc, plan_dry_run);
	tcase_add_test(tc, plan_eta_windows);
	tcase_add_test(tc, manual_rollback);
	tcase_add_test(tc, manual_rollback_needs_down);
	tcase_add_test(tc, status_lists);
	tcase_add_test(tc, bad_row_skipped);
	tcase_add_test(tc, rollback_reloads_model);
	tcase_add_test(tc, rollback_order_expires);
	tcase_add_test(tc, withdrawn_apply_is_reverted);
	tcase_add_test(tc, withdrawn_apply_reverted_without_late_report);
	tcase_add_test(tc, late_report_after_finish_counts);
	tcase_add_test(tc, retry_refused_after_rollback_all);
	tcase_add_test(tc, retry_refused_while_reverts_left);
	tcase_add_test(tc, retry_keeps_one_active_rollout);
	tcase_add_test(tc, moved_tenant_after_restart);
	tcase_add_test(tc, moved_tenant_followed);
	tcase_add_test(tc, report_kind_is_the_assignments);
	tcase_add_test(tc, retry_keeps_the_budget);
	tcase_add_test(tc, agent_text_is_quoted);
	tcase_add_test(tc, retry_with_agent_still_silent);
	tcase_add_test(tc, skipped_while_reverting_is_reverted);
	tcase_add_test(tc, no_work_while_withdrawn_held);
	tcase_add_test(tc, no_revert_after_expiry);
	tcase_add_test(tc, retry_rechecks_a_health_failure);
	tcase_add_test(tc, manual_rollback_after_halted_rollback);
	tcase_add_test(tc, canceled_loop_backs_off);
	suite_add_tcase(s, tc);
	tc = tcase_create("random");
	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, random_orderings);
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
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
