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
	size_t rb_len; /* signed rollback order's length */
	bool lost;     /* the agent never got it (or went silent with it) */
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
	for (size_t i = 0; i < fx.n_out; i++) {
		uint32_t in_wave = 0, on_agent = 0;

		for (size_t k = 0; k < fx.n_out; k++) {
			if (strcmp(fx.out[k].rollout, fx.out[i].rollout) != 0)
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
	ck_assert_uint_eq(fl_scheduler_outstanding(fx.s), fx.n_out);
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
		if (fx.out[i].agent == a && !fx.out[i].lost)
			running[n++] = fx.out[i].id;
	ck_assert_msg(fl_scheduler_poll(fx.s, fx.apk[a], free_slots, running, n, now, &w, err) ==
	                  FL_OK,
	              "%s", err);
	ck_assert_uint_le(w.n_assignments, free_slots);
	for (size_t i = 0; i < w.n_assignments; i++) {
		const Flotilla__V1__WorkAssignment *x = w.assignments[i];
		struct fl_order *o = NULL;
		bool known = false, was_lost = false;

		for (size_t k = 0; k < fx.n_out; k++)
			if (fx.out[k].id == x->assignment_id) {
				ck_assert_msg(fx.out[k].lost,
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
		ck_assert_uint_lt(fx.n_out, MAXOUT);
		fx.out[fx.n_out] = (struct asg){.id = x->assignment_id,
		                                .agent = a,
		                                .wave = x->wave,
		                                .kind = x->kind,
		                                .rb_len = x->signed_rollback_order.len};
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

/* Report assignment out[i] with this outcome, and drop it. */
static void report_at(size_t i, int outcome)
{
	Flotilla__V1__Report r = FLOTILLA__V1__REPORT__INIT;
	Flotilla__V1__MigrationResult mr = FLOTILLA__V1__MIGRATION_RESULT__INIT, *mrs[] = {&mr};
	struct fl_store_assignment as, as2;
	struct asg a = fx.out[i];

	r.agent_id = "agent";
	r.tenant_id = a.tenant;
	r.rollout_id = a.rollout;
	r.assignment_id = a.id;
	r.kind = (Flotilla__V1__WorkKind)a.kind;
	r.outcome = (Flotilla__V1__Outcome)outcome;
	r.message = outcome == OC(APPLIED) || outcome == OC(HEALTHY) ? "" : "it went wrong";
	r.started_at_ms = now - 1000;
	r.finished_at_ms = now;
	r.journal_id = ++fx.journal;
	if (a.kind == WK(APPLY) && (outcome == OC(APPLIED) || outcome == OC(HEALTH_FAILED))) {
		mr.migration_id = M2;
		mr.outcome = OC(APPLIED);
		r.migrations = mrs;
		r.n_migrations = 1;
	}
	fx.out[i] = fx.out[--fx.n_out];
	/* as the agent endpoint does: bound to the assignment issued to this agent */
	ck_assert_msg(fl_store_assignment_get(fx.st, a.id, &as, err) == FL_OK, "%s", err);
	ck_assert(memcmp(as.agent_pk, fx.apk[a.agent], 32) == 0);
	ck_assert_str_eq(as.tenant_id, a.tenant);
	ck_assert_msg(fl_scheduler_report(fx.s, &as, &r, now, err) == FL_OK, "%s", err);
	ck_assert(fl_store_assignment_get(fx.st, a.id, &as2, err) == FL_OK);
	ck_assert_int_eq(as2.state, FL_STORE_ASSIGNMENT_REPORTED);
	fl_store_assignment_fini(&as);
	fl_store_assignment_fini(&as2);
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

/* An agent goes silent: with wait, its tenants wait however long. */
START_TEST(unreachable_wait)
{
	char id[32];
	struct fl_rollout_reply rep;
	Flotilla__V1__RolloutInfo *ri;

	fx_up(true);
	fx_fleet(2, 3, 0, 0);
	start_ok(
	    POLICY("  - {name: all, select: {percent: 100}, max_parallel: 1, max_failures: 0}\n",
	           ""),
	    id);
	/* agent 1 never polls again: hours pass while agent 0 polls */
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
	/* it comes back: its tenants go on */
	ck_assert(fl_scheduler_hello(fx.s, fx.apk[1], now, err) == FL_OK);
	run(NULL, 2, 50);
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
	ck_assert_msg(strstr(ri->waves[0]->state_reason, "waiting for window") != NULL, "%s",
	              ri->waves[0]->state_reason);
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
	tcase_add_test(tc, bake_check_failure_counts);
	tcase_add_test(tc, inconclusive_pauses);
	tcase_add_test(tc, busy_requeued);
	tcase_add_test(tc, unreachable_wait);
	tcase_add_test(tc, unreachable_fail);
	tcase_add_test(tc, order_expiry);
	tcase_add_test(tc, pause_resume);
	tcase_add_test(tc, halt_answers_held_polls);
	tcase_add_test(tc, rollback_wave_only_that_wave);
	tcase_add_test(tc, rollback_all);
	tcase_add_test(tc, retry_new_ids);
	tcase_add_test(tc, one_active_rollout_per_tenant);
	tcase_add_test(tc, windows_hold_starts);
	tcase_add_test(tc, limits_never_exceeded);
	tcase_add_test(tc, restart_resumes);
	tcase_add_test(tc, restart_keeps_states);
	tcase_add_test(tc, lost_reply_resent);
	tcase_add_test(tc, start_refusals);
	tcase_add_test(tc, plan_dry_run);
	tcase_add_test(tc, manual_rollback);
	tcase_add_test(tc, manual_rollback_needs_down);
	tcase_add_test(tc, status_lists);
	tcase_add_test(tc, bad_row_skipped);
	tcase_add_test(tc, rollback_reloads_model);
	tcase_add_test(tc, rollback_order_expires);
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
