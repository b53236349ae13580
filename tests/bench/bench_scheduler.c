/*
 * bench_scheduler: what the rollout scheduler costs per Poll and per Report
 * with 10,000 tenants in the store (100 agents of 100 tenants), one rollout
 * over all of them (waves: 1%, 10%, 100%; max_parallel 500, 4 per agent),
 * driven to completion by synthetic agents that poll, take their work and
 * report it applied at once.
 *
 *   build/tests/bench/bench_scheduler [agents, default 100] [tenants per agent, default 100]
 *
 * The store goes to $TMPDIR (default /tmp): put it on the disk whose fsync
 * you want measured.
 *
 * Two runs of the same rollout:
 *   - "committed": every Poll and Report in a transaction of its own,
 *     committed durably (synchronous=FULL, as the coordinator runs): what a
 *     request costs the core thread, fsync included;
 *   - "in memory": the calls batched 200 to a transaction, so what remains is
 *     the scheduler's own work (model, SQL statements) without the fsync.
 * Printed: start (plan, waves, rows for 10,000 tenants), reload of the model
 * (a restart), and per call mean, p50, p99 and max in microseconds. Times
 * depend on the machine and its disk; compare runs on one machine.
 *
 * Exit status: 0, or 1 if something failed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

#define PROJECT "bench"
#define M1      "20240101000000_init"
#define M2      "20240102000000_add_email"
#define BATCH   200

static char err[FL_ERRBUF_SIZE];

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "bench_scheduler: %s:%d: %s: %s\n", __FILE__, __LINE__,    \
			        #x, err);                                                          \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

struct samples {
	double *v;
	size_t n, cap;
};

static void add(struct samples *s, double us)
{
	s->v = fl_grow(s->v, &s->cap, s->n + 1, sizeof(*s->v));
	s->v[s->n++] = us;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void show(const char *what, struct samples *s)
{
	double sum = 0;

	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_d);
	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i];
	printf("  %-22s %7zu calls  mean %8.1f us  p50 %8.1f  p99 %8.1f  max %9.1f\n", what, s->n,
	       sum / (double)s->n, s->v[s->n / 2], s->v[s->n * 99 / 100], s->v[s->n - 1]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

struct held {
	uint64_t id;
	char tenant[32];
	int agent;
};

static struct fl_store *st;
static struct fl_scheduler *sched;
static struct fl_key rkey;
static uint8_t rhash[32];
static size_t n_agents, per_agent;
static uint8_t (*apk)[32];

static void sched_new(int64_t now)
{
	struct fl_scheduler_config cfg = {0};

	cfg.project_id = PROJECT;
	cfg.trusted_release_keys = (const uint8_t(*)[32])rkey.pk;
	cfg.n_trusted_release_keys = 1;
	CHECK(fl_scheduler_new(st, &cfg, NULL, NULL, now, &sched, err) == FL_OK);
}

static void setup(const char *dir)
{
	char mdir[512], p[600];
	struct fl_migration_set set;
	struct fl_buf file = FL_BUF_INIT, signed_file = FL_BUF_INIT;
	struct fl_store_release r = {0};
	struct fl_store_release_migration migs[2] = {{(char *)M1, true}, {(char *)M2, true}};
	char hash[FL_RELEASE_HASH_HEX_LEN + 1];
	bool created;

	snprintf(mdir, sizeof(mdir), "%s/migs", dir);
	CHECK(mkdir(mdir, 0755) == 0);
	snprintf(p, sizeof(p), "%s/%s", mdir, M1);
	CHECK(mkdir(p, 0755) == 0);
	snprintf(p, sizeof(p), "%s/%s/migration.sql", mdir, M1);
	write_file(p, "CREATE TABLE users (id int);\n");
	snprintf(p, sizeof(p), "%s/%s/down.sql", mdir, M1);
	write_file(p, "DROP TABLE users;\n");
	snprintf(p, sizeof(p), "%s/%s", mdir, M2);
	CHECK(mkdir(p, 0755) == 0);
	snprintf(p, sizeof(p), "%s/%s/migration.sql", mdir, M2);
	write_file(p, "ALTER TABLE users ADD COLUMN email text;\n");
	snprintf(p, sizeof(p), "%s/%s/down.sql", mdir, M2);
	write_file(p, "ALTER TABLE users DROP COLUMN email;\n");
	CHECK(fl_migration_set_load(mdir, &set, err) == FL_OK);
	CHECK(fl_release_build(&set, PROJECT, 1, &file, hash, err) == FL_OK);
	fl_key_generate(FL_KEY_RELEASE, NULL, &rkey);
	CHECK(fl_release_sign(file.data, file.len, &rkey, &signed_file, err) == FL_OK);
	for (int i = 0; i < 32; i++) {
		unsigned v;

		sscanf(hash + 2 * i, "%2x", &v);
		rhash[i] = (uint8_t)v;
	}
	snprintf(p, sizeof(p), "%s/store.db", dir);
	CHECK(fl_store_open(p, &st, &created, err) == FL_OK);
	memcpy(r.hash, rhash, 32);
	r.project_id = PROJECT;
	r.sequence = 1;
	r.name = "v1";
	r.head_migration_id = M2;
	r.migration_count = 2;
	r.signer_key_ids = "k";
	r.pushed_by = "op";
	r.file = (uint8_t *)signed_file.data;
	r.file_len = signed_file.len;
	r.migrations = migs;
	r.n_migrations = 2;
	CHECK(fl_store_release_add(st, &r, err) == FL_OK);
	fl_buf_fini(&file);
	fl_buf_fini(&signed_file);
	fl_migration_set_fini(&set);

	apk = fl_calloc(n_agents, sizeof(*apk));
	CHECK(fl_store_begin(st, err) == FL_OK);
	for (size_t a = 0; a < n_agents; a++) {
		struct fl_store_agent ag = {0};
		char name[32];

		apk[a][0] = (uint8_t)(a & 0xff);
		apk[a][1] = (uint8_t)(a >> 8);
		apk[a][31] = 0x77;
		snprintf(name, sizeof(name), "agent%zu", a);
		memcpy(ag.pk, apk[a], 32);
		ag.name = name;
		fl_labels_init(&ag.labels);
		ag.approved_by = "config";
		CHECK(fl_store_agent_add(st, &ag, err) == FL_OK);
		for (size_t k = 0; k < per_agent; k++) {
			struct fl_store_tenant t = {0};
			char id[64];

			snprintf(id, sizeof(id), "t%03zu_%04zu", a, k);
			t.id = id;
			memcpy(t.agent_pk, apk[a], 32);
			t.database = "db";
			t.schema = id;
			fl_labels_init(&t.labels);
			CHECK(fl_labels_set(&t.labels, "region", k % 2 ? "us" : "eu", err) ==
			      FL_OK);
			t.head_migration_id = M1;
			t.applied_count = 1;
			t.fingerprint = t.read_error = "";
			CHECK(fl_store_tenant_put(st, &t, err) == FL_OK);
			fl_labels_fini(&t.labels);
		}
	}
	CHECK(fl_store_commit(st, err) == FL_OK);
}

static const char policy_yaml[] =
    "name: bench\nwaves:\n"
    "  - {name: canary, select: {percent: 1}, max_parallel: 500}\n"
    "  - {name: early, select: {percent: 10}, max_parallel: 500}\n"
    "  - {name: rest, select: {percent: 100}, max_parallel: 500, max_failure_rate: 0.01}\n"
    "per_agent_parallel: 4\n";

static void start_rollout(int64_t now, char id[32])
{
	struct fl_policy p;
	struct fl_selector all;
	struct fl_rollout_params rp = {0};
	struct fl_buf order = FL_BUF_INIT, tmp = FL_BUF_INIT;
	Flotilla__V1__AdminRequest rq = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStartRequest sr = FLOTILLA__V1__ROLLOUT_START_REQUEST__INIT;
	struct fl_rollout_caller who = {"bench", "bench"};
	struct fl_rollout_reply rep;
	char hash[65];

	CHECK(fl_policy_load_buffer(policy_yaml, strlen(policy_yaml), "p", &p, err) == FL_OK);
	fl_selector_init(&all);
	all.all = true;
	rp.project_id = PROJECT;
	rp.release_hash = rhash;
	rp.target_migration_id = M2;
	rp.selector = &all;
	rp.policy = &p;
	rp.created_at_ms = now;
	rp.expires_at_ms = now + 86400000;
	CHECK(fl_order_build_rollout(&rp, &order, hash, err) == FL_OK);
	CHECK(fl_order_sign(order.data, order.len, FL_ORDER_ROLLOUT, &rkey, &tmp, err) == FL_OK);
	sr.signed_order.data = (uint8_t *)tmp.data;
	sr.signed_order.len = tmp.len;
	rq.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_START;
	rq.rollout_start = &sr;
	CHECK(fl_rollout_admin(sched, &who, &rq, now, &rep, err) == FL_OK);
	snprintf(err, sizeof(err), "%s", rep.response.status->message);
	CHECK(rep.response.status->code == FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK);
	snprintf(id, 32, "%s", rep.response.rollout_start->rollout_id);
	fl_rollout_reply_fini(&rep);
	fl_buf_fini(&order);
	fl_buf_fini(&tmp);
	fl_selector_fini(&all);
	fl_policy_fini(&p);
}

/* Drive the rollout to its end; batch > 1: calls share transactions. */
static void drive(int64_t *now, int batch, struct samples *polls, struct samples *reports)
{
	struct held *h = fl_calloc(n_agents * 8, sizeof(*h));
	size_t n_h = 0, calls = 0;
	bool busy = true;

	while (busy) {
		busy = false;
		for (size_t a = 0; a < n_agents; a++) {
			struct fl_scheduler_work w;
			double t0;

			if (batch > 1 && calls++ % (size_t)batch == 0) {
				if (fl_store_in_transaction(st))
					CHECK(fl_store_commit(st, err) == FL_OK);
				CHECK(fl_store_begin(st, err) == FL_OK);
			}
			t0 = now_us();
			CHECK(fl_scheduler_poll(sched, apk[a], 4, NULL, 0, *now, &w, err) == FL_OK);
			add(polls, now_us() - t0);
			for (size_t i = 0; i < w.n_assignments; i++) {
				h[n_h].id = w.assignments[i]->assignment_id;
				snprintf(h[n_h].tenant, sizeof(h[n_h].tenant), "%s",
				         w.assignments[i]->tenant_id);
				h[n_h++].agent = (int)a;
			}
			busy = busy || w.n_assignments > 0;
			fl_scheduler_work_fini(&w);
		}
		for (size_t i = 0; i < n_h; i++) {
			Flotilla__V1__Report r = FLOTILLA__V1__REPORT__INIT;
			Flotilla__V1__MigrationResult mr = FLOTILLA__V1__MIGRATION_RESULT__INIT;
			Flotilla__V1__MigrationResult *mrs[] = {&mr};
			struct fl_store_assignment as;
			double t0;

			if (batch > 1 && calls++ % (size_t)batch == 0) {
				if (fl_store_in_transaction(st))
					CHECK(fl_store_commit(st, err) == FL_OK);
				CHECK(fl_store_begin(st, err) == FL_OK);
			}
			CHECK(fl_store_assignment_get(st, h[i].id, &as, err) == FL_OK);
			r.agent_id = "a";
			r.tenant_id = h[i].tenant;
			r.rollout_id = as.rollout_id;
			r.assignment_id = h[i].id;
			r.kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
			r.outcome = FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED;
			r.message = "";
			mr.migration_id = M2;
			mr.outcome = FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED;
			r.migrations = mrs;
			r.n_migrations = 1;
			t0 = now_us();
			CHECK(fl_scheduler_report(sched, &as, &r, *now, err) == FL_OK);
			add(reports, now_us() - t0);
			/* the endpoint's part: marked reported after the scheduler */
			CHECK(fl_store_assignment_set_state(st, as.id, FL_STORE_ASSIGNMENT_REPORTED,
			                                    r.outcome, *now, err) == FL_OK);
			fl_store_assignment_fini(&as);
		}
		busy = busy || n_h > 0;
		n_h = 0;
		*now += 1000;
	}
	if (fl_store_in_transaction(st))
		CHECK(fl_store_commit(st, err) == FL_OK);
	free(h);
}

int main(int argc, char **argv)
{
	char dir[256], id[32], cmd[600];
	struct samples polls = {0}, reports = {0};
	int64_t now = INT64_C(1700000000000);
	double t0;

	n_agents = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 100;
	per_agent = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 100;
	if (n_agents == 0 || n_agents > 60000 || per_agent == 0) {
		fprintf(stderr, "usage: bench_scheduler [agents] [tenants per agent]\n");
		return 2;
	}
	fl_log_set_level(FL_LOG_ERROR);
	snprintf(dir, sizeof(dir), "%s/bench_scheduler.XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	CHECK(mkdtemp(dir) != NULL);
	setup(dir);
	sched_new(now);
	printf("bench_scheduler: %zu tenants (%zu agents x %zu), store in %s\n",
	       n_agents * per_agent, n_agents, per_agent, dir);

	for (int run = 0; run < 2; run++) {
		int batch = run == 0 ? 1 : BATCH;

		t0 = now_us();
		start_rollout(now, id);
		printf("%s (%s):\n  start: %.1f ms\n", id,
		       batch == 1 ? "committed: one transaction per call"
		                  : "in memory: 200 calls per transaction",
		       (now_us() - t0) / 1000);
		if (run == 0) {
			/* a restart with the rollout loaded, before any work */
			fl_scheduler_free(sched);
			t0 = now_us();
			sched_new(now);
			printf("  reload of the model (restart): %.1f ms\n",
			       (now_us() - t0) / 1000);
		}
		drive(&now, batch, &polls, &reports);
		show("poll", &polls);
		show("report", &reports);
	}
	fl_scheduler_free(sched);
	fl_store_close(st);
	fl_key_fini(&rkey);
	free(apk);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return 0;
}
