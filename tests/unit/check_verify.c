/*
 * agent/verify.c: every trust rule an assignment must pass before any SQL,
 * each shown refusing with crafted signed orders and releases (test keys,
 * real signatures), plus the checks against the tenant's history (a plan
 * built from a history given by hand) and what a revert may undo.
 *
 * The "coordinator" here is the fetch function and the assignment: both
 * are hostile in the refusing cases; nothing they say is taken on trust.
 */
#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "ledger.h"
#include "log.h"
#include "mem.h"
#include "order.h"
#include "plan.h"
#include "policy.h"
#include "release.h"
#include "releases.h"
#include "tenants.h"
#include "testutil.h"
#include "verify.h"

#define NOW INT64_C(1750000000000)
#define DAY INT64_C(86400000)
#define M_A "20250101000000_a"
#define M_B "20250102000000_b"
#define M_C "20250103000000_c"

#define APPLY  FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY
#define REVERT FLOTILLA__V1__WORK_KIND__WORK_KIND_REVERT
#define CHECK  FLOTILLA__V1__WORK_KIND__WORK_KIND_CHECK

static const char policy_halt[] =
    "name: canary-first\n"
    "waves:\n"
    "  - {name: canary, select: {labels: {ring: canary}}, max_failures: 0, backup: true}\n"
    "  - {name: vip, select: {tenants: [delta]}}\n"
    "  - {name: rest, select: {percent: 100}}\n"
    "health:\n"
    "  checks:\n"
    "    - {name: ok, sql: \"SELECT true\", timeout: 1s}\n"
    "on_failure: halt\n";

static const char policy_rollback[] = "name: undo-on-failure\n"
                                      "waves:\n"
                                      "  - {name: all, select: {percent: 100}}\n"
                                      "on_failure: rollback-all\n";

static char root[256];
static struct fl_key rk, evil; /* release keys: trusted, not */
static uint8_t trusted[1][32];
static struct fl_migration_set set;
static struct fl_tenants *tenants;
static struct fl_ledger *ledger;
static struct fl_releases *cache;

/* What the hostile coordinator serves for FetchRelease: hash -> bytes. */
static struct served {
	uint8_t hash[32];
	struct fl_buf bytes;
} served[8];
static int n_served;
static enum fl_err fetch_error;

static enum fl_err fetch(void *arg, const uint8_t hash[32], struct fl_buf *out, char *errbuf)
{
	(void)arg;
	if (fetch_error != FL_OK)
		return fl_errf(errbuf, fetch_error, "coordinator unreachable");
	for (int i = 0; i < n_served; i++)
		if (memcmp(served[i].hash, hash, 32) == 0) {
			fl_buf_reset(out);
			ck_assert_int_eq(
			    fl_buf_append(out, served[i].bytes.data, served[i].bytes.len), FL_OK);
			return FL_OK;
		}
	return fl_errf(errbuf, FL_ENOENT, "no such release");
}

static void write_file(const char *dir, const char *id, const char *name, const char *text)
{
	char path[600];
	FILE *f;

	fl_test_fmt(path, sizeof(path), "%s/%s", dir, id);
	mkdir(path, 0700);
	fl_test_fmt(path, sizeof(path), "%s/%s/%s", dir, id, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void add_tenant(const char *id, const char *labels)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_tenant t = {(char *)id, "main", (char *)id, NULL, {NULL, 0}, -1};

	fl_labels_init(&t.labels);
	if (labels != NULL)
		ck_assert_msg(fl_labels_parse(labels, &t.labels, err) == FL_OK, "%s", err);
	fl_tenants_add(tenants, &t);
	fl_labels_fini(&t.labels);
}

static void setup(void)
{
	char err[FL_ERRBUF_SIZE] = "", dir[400], path[400];

	fl_log_set_level(FL_LOG_ERROR);
	fl_test_tmp_root(root, sizeof(root), "check_verify");
	fl_key_generate(FL_KEY_RELEASE, NULL, &rk);
	fl_key_generate(FL_KEY_RELEASE, NULL, &evil);
	memcpy(trusted[0], rk.pk, 32);

	fl_test_fmt(dir, sizeof(dir), "%s/migrations", root);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	write_file(dir, M_A, "migration.sql", "CREATE TABLE a (id int);\n");
	write_file(dir, M_A, "down.sql", "DROP TABLE a;\n");
	write_file(dir, M_B, "migration.sql", "CREATE TABLE b (id int);\n");
	write_file(dir, M_B, "down.sql", "DROP TABLE b;\n");
	write_file(dir, M_C, "migration.sql", "CREATE TABLE c (id int);\n");
	ck_assert_msg(fl_migration_set_load(dir, &set, err) == FL_OK, "%s", err);

	tenants = fl_tenants_new();
	add_tenant("acme", "ring=canary,region=eu");
	add_tenant("beta", "ring=main,region=eu");
	add_tenant("delta", "ring=main,region=us");
	add_tenant("gamma", "ring=main,region=us");
	ck_assert_int_eq(fl_tenants_seal(tenants, err), FL_OK);

	fl_test_fmt(path, sizeof(path), "%s/ledger", root);
	ck_assert_msg(fl_ledger_open(path, &ledger, err) == FL_OK, "%s", err);
	fl_test_fmt(path, sizeof(path), "%s/releases", root);
	ck_assert_msg(fl_releases_open(path, &cache, err) == FL_OK, "%s", err);
	fl_releases_set_trust(cache, (const uint8_t(*)[32])trusted, 1, "acme-app",
	                      FL_RELEASE_FILE_MAX);
	n_served = 0;
	fetch_error = FL_OK;
}

static void teardown(void)
{
	for (int i = 0; i < n_served; i++)
		fl_buf_fini(&served[i].bytes);
	fl_releases_close(cache);
	fl_ledger_close(ledger);
	fl_tenants_unref(tenants);
	fl_migration_set_fini(&set);
	fl_key_fini(&rk);
	fl_key_fini(&evil);
	fl_test_rm_rf(root);
}

/* A release of set (signed by `by`, NULL: unsigned), served by the
 * coordinator under its hash; the raw hash into hash. */
static void make_release(const char *project, uint64_t seq, const struct fl_key *by,
                         uint8_t hash[32])
{
	char err[FL_ERRBUF_SIZE] = "", hex[65];
	struct fl_buf b = FL_BUF_INIT, signed_ = FL_BUF_INIT;
	struct served *s = &served[n_served++];

	ck_assert_msg(fl_release_build(&set, project, seq, &b, hex, err) == FL_OK, "%s", err);
	if (by != NULL) {
		ck_assert_msg(fl_release_sign(b.data, b.len, by, &signed_, err) == FL_OK, "%s",
		              err);
		fl_buf_fini(&b);
		b = signed_;
	}
	ck_assert_int_eq(sodium_hex2bin(hash, 32, hex, 64, NULL, NULL, NULL), 0);
	memcpy(s->hash, hash, 32);
	s->bytes = b;
}

struct order_spec {
	const char *policy;
	const char *project;
	const uint8_t *release;
	const char *target;
	const char *select_labels; /* NULL: all */
	int64_t expires;
	const struct fl_key *by;
};

static void make_order(const struct order_spec *o, struct fl_buf *out, uint8_t hash[32])
{
	char err[FL_ERRBUF_SIZE] = "", hex[65];
	struct fl_policy p;
	struct fl_selector sel;
	struct fl_buf tmp = FL_BUF_INIT;
	struct fl_rollout_params rp = {0};

	ck_assert_msg(fl_policy_load_buffer(o->policy, strlen(o->policy), "p.yaml", &p, err) ==
	                  FL_OK,
	              "%s", err);
	fl_selector_init(&sel);
	if (o->select_labels != NULL)
		ck_assert_int_eq(fl_labels_parse(o->select_labels, &sel.labels, err), FL_OK);
	else
		sel.all = true;
	rp.project_id = o->project ? o->project : "acme-app";
	rp.release_hash = o->release;
	rp.target_migration_id = o->target ? o->target : M_B;
	rp.selector = &sel;
	rp.policy = &p;
	rp.created_at_ms = NOW - DAY;
	rp.expires_at_ms = o->expires ? o->expires : NOW + DAY;
	ck_assert_msg(fl_order_build_rollout(&rp, out, hex, err) == FL_OK, "%s", err);
	ck_assert_msg(fl_order_sign(out->data, out->len, FL_ORDER_ROLLOUT, o->by ? o->by : &rk,
	                            &tmp, err) == FL_OK,
	              "%s", err);
	fl_buf_fini(out);
	*out = tmp;
	ck_assert_int_eq(sodium_hex2bin(hash, 32, hex, 64, NULL, NULL, NULL), 0);
	fl_selector_fini(&sel);
	fl_policy_fini(&p);
}

static void make_rollback(const uint8_t order_hash[32], const uint8_t release[32],
                          const char *target, const char *select_labels, const struct fl_key *by,
                          struct fl_buf *out)
{
	char err[FL_ERRBUF_SIZE] = "", hex[65];
	struct fl_selector sel;
	struct fl_buf tmp = FL_BUF_INIT;
	struct fl_rollback_params bp = {0};

	fl_selector_init(&sel);
	if (select_labels != NULL)
		ck_assert_int_eq(fl_labels_parse(select_labels, &sel.labels, err), FL_OK);
	else
		sel.all = true;
	bp.project_id = "acme-app";
	bp.rollout_order_hash = order_hash;
	bp.release_hash = release;
	bp.target_migration_id = target;
	bp.selector = &sel;
	bp.created_at_ms = NOW - DAY;
	bp.expires_at_ms = NOW + DAY;
	ck_assert_msg(fl_order_build_rollback(&bp, out, hex, err) == FL_OK, "%s", err);
	ck_assert_msg(fl_order_sign(out->data, out->len, FL_ORDER_ROLLBACK, by, &tmp, err) == FL_OK,
	              "%s", err);
	fl_buf_fini(out);
	*out = tmp;
	fl_selector_fini(&sel);
}

static Flotilla__V1__WorkAssignment assignment(uint64_t id, int kind, const char *tenant,
                                               uint32_t wave, const uint8_t *release,
                                               const char *target, const struct fl_buf *order)
{
	Flotilla__V1__WorkAssignment a = FLOTILLA__V1__WORK_ASSIGNMENT__INIT;

	a.assignment_id = id;
	a.rollout_id = "r-1";
	a.wave = wave;
	a.tenant_id = (char *)tenant;
	a.release_hash.data = (uint8_t *)release;
	a.release_hash.len = 32;
	a.target_migration_id = (char *)(target ? target : "");
	a.kind = (Flotilla__V1__WorkKind)kind;
	a.signed_order.data = (uint8_t *)order->data;
	a.signed_order.len = order->len;
	return a;
}

static struct fl_verify_ctx ctx(void)
{
	struct fl_verify_ctx c = {
	    (const uint8_t(*)[32])trusted, 1, "acme-app", NOW, tenants, ledger, cache, fetch, NULL};
	return c;
}

/* Run step one; expect rv, and (when refused) the reason to hold want. */
static void expect(const Flotilla__V1__WorkAssignment *a, enum fl_err want_rv, const char *want)
{
	struct fl_verify_ctx c = ctx();
	struct fl_verified v;
	char reason[FL_ERRBUF_SIZE];
	enum fl_err rv = fl_verify_assignment(&c, a, &v, reason);

	ck_assert_msg(rv == want_rv, "got %d (%s), wanted %d", rv, reason, want_rv);
	if (want != NULL)
		ck_assert_msg(strstr(reason, want) != NULL, "reason '%s' lacks '%s'", reason, want);
	fl_verified_fini(&v);
}

/* ---- step one ---- */

START_TEST(apply_covered_passes)
{
	struct fl_verify_ctx c = ctx();
	struct fl_buf order = FL_BUF_INIT;
	uint8_t rel[32], oh[32];
	struct fl_verified v;
	char reason[FL_ERRBUF_SIZE];
	struct order_spec os = {policy_halt, NULL, NULL, NULL, NULL, 0, NULL};
	Flotilla__V1__WorkAssignment a;

	make_release("acme-app", 5, &rk, rel);
	os.release = rel;
	make_order(&os, &order, oh);
	a = assignment(1, APPLY, "acme", 0, rel, M_B, &order);
	ck_assert_msg(fl_verify_assignment(&c, &a, &v, reason) == FL_OK, "%s", reason);
	ck_assert_str_eq(v.target, M_B);
	ck_assert_str_eq(v.tenant->id, "acme");
	ck_assert_str_eq(v.wave->name, "canary");
	ck_assert(v.wave->backup);
	ck_assert_mem_eq(v.order->hash, oh, 32);
	ck_assert_uint_eq(v.release->release->sequence, 5);
	ck_assert_ptr_null(v.rollback);
	fl_verified_fini(&v);
	/* cached now: the coordinator need not be asked again */
	fetch_error = FL_ECONNECT;
	a = assignment(2, CHECK, "beta", 2, rel, NULL, &order);
	expect(&a, FL_OK, NULL);
	/* delta is wave 1's by name */
	a = assignment(3, APPLY, "delta", 1, rel, M_B, &order);
	expect(&a, FL_OK, NULL);
	fl_buf_fini(&order);
}
END_TEST

START_TEST(order_untrusted_expired_other_project)
{
	struct fl_buf order = FL_BUF_INIT;
	uint8_t rel[32], oh[32];
	struct order_spec os = {policy_halt, NULL, NULL, NULL, NULL, 0, &evil};
	Flotilla__V1__WorkAssignment a;

	make_release("acme-app", 5, &rk, rel);
	os.release = rel;
	make_order(&os, &order, oh); /* signed by a key the agent does not trust */
	a = assignment(1, APPLY, "acme", 0, rel, M_B, &order);
	expect(&a, FL_EAUTH, "rollout order:");
	fl_buf_fini(&order);

	os.by = NULL;
	os.expires = NOW - 1; /* expired by the agent's clock */
	make_order(&os, &order, oh);
	a = assignment(2, APPLY, "acme", 0, rel, M_B, &order);
	expect(&a, FL_EAUTH, "expired");
	fl_buf_fini(&order);

	os.expires = 0;
	os.project = "other-app";
	make_order(&os, &order, oh);
	a = assignment(3, APPLY, "acme", 0, rel, M_B, &order);
	expect(&a, FL_EAUTH, "project");
	fl_buf_fini(&order);

	/* no order at all */
	order.data = NULL;
	order.len = 0;
	a = assignment(4, APPLY, "acme", 0, rel, M_B, &order);
	expect(&a, FL_EAUTH, "no signed order");
	/* garbage */
	order.data = "not an order";
	order.len = 12;
	a = assignment(5, APPLY, "acme", 0, rel, M_B, &order);
	expect(&a, FL_EAUTH, "rollout order:");
}
END_TEST

START_TEST(release_hash_signer_project_sequence)
{
	struct fl_buf order = FL_BUF_INIT;
	uint8_t rel[32], old[32], evil_rel[32], other_rel[32], oh[32];
	struct order_spec os = {policy_halt, NULL, NULL, NULL, NULL, 0, NULL};
	Flotilla__V1__WorkAssignment a;
	char err[FL_ERRBUF_SIZE];
	struct fl_ledger_start ls = {0};

	make_release("acme-app", 5, &rk, rel);
	make_release("acme-app", 3, &rk, old);
	make_release("acme-app", 9, &evil, evil_rel);
	make_release("other-app", 9, &rk, other_rel);

	/* the assignment names another release than its order */
	os.release = rel;
	make_order(&os, &order, oh);
	a = assignment(1, APPLY, "acme", 0, old, M_B, &order);
	expect(&a, FL_EAUTH, "is not the release of order");
	fl_buf_fini(&order);

	/* a release signed by an untrusted key, even under a good order */
	os.release = evil_rel;
	make_order(&os, &order, oh);
	a = assignment(2, APPLY, "acme", 0, evil_rel, M_B, &order);
	expect(&a, FL_EAUTH, "release:");
	fl_buf_fini(&order);

	/* another project's release */
	os.release = other_rel;
	make_order(&os, &order, oh);
	a = assignment(3, APPLY, "acme", 0, other_rel, M_B, &order);
	expect(&a, FL_EAUTH, "release:");
	fl_buf_fini(&order);

	/* the coordinator serves other bytes than the hash asked for */
	memcpy(served[0].hash, old, 32);
	memcpy(served[1].hash, rel, 32);
	os.release = rel;
	make_order(&os, &order, oh);
	a = assignment(4, APPLY, "acme", 0, rel, M_B, &order);
	expect(&a, FL_EAUTH, "release:");
	memcpy(served[0].hash, rel, 32);
	memcpy(served[1].hash, old, 32);

	/* older than what this agent applied to the tenant */
	ls.assignment_id = 100;
	ls.release_sequence = 6;
	ls.tenant_id = "acme";
	ls.kind = APPLY;
	ck_assert_int_eq(fl_ledger_start(ledger, &ls, err), FL_OK);
	ck_assert_int_eq(fl_ledger_step(ledger, 100, false, M_A, err), FL_OK);
	a = assignment(5, APPLY, "acme", 0, rel, M_B, &order);
	expect(&a, FL_EAUTH, "older than sequence 6");
	/* another tenant is not held back by acme's */
	a = assignment(6, CHECK, "beta", 2, rel, NULL, &order);
	expect(&a, FL_OK, NULL);
	fl_buf_fini(&order);

	/* the coordinator cannot be reached: not a refusal, nothing runs */
	os.release = old;
	fetch_error = FL_ECONNECT;
	make_order(&os, &order, oh);
	a = assignment(7, APPLY, "beta", 2, old, M_B, &order);
	expect(&a, FL_ECONNECT, NULL);
	fl_buf_fini(&order);
}
END_TEST

START_TEST(tenant_selection_and_waves)
{
	struct fl_buf order = FL_BUF_INIT;
	uint8_t rel[32], oh[32];
	struct order_spec os = {policy_halt, NULL, NULL, NULL, "region=eu", 0, NULL};
	Flotilla__V1__WorkAssignment a;

	make_release("acme-app", 5, &rk, rel);
	os.release = rel;
	make_order(&os, &order, oh);
	/* not one of this agent's tenants */
	a = assignment(1, APPLY, "zeta", 2, rel, M_B, &order);
	expect(&a, FL_EAUTH, "not one of this agent's");
	/* one of its tenants, outside the order's selection (region=us) */
	a = assignment(2, APPLY, "gamma", 2, rel, M_B, &order);
	expect(&a, FL_EAUTH, "not selected by");
	/* acme is a canary: wave 0, not the percent wave */
	a = assignment(3, APPLY, "acme", 2, rel, M_B, &order);
	expect(&a, FL_EAUTH, "belongs to wave 0");
	/* beta is no canary: not wave 0 */
	a = assignment(4, APPLY, "beta", 0, rel, M_B, &order);
	expect(&a, FL_EAUTH, "not selected by wave 0");
	/* no such wave */
	a = assignment(5, APPLY, "beta", 7, rel, M_B, &order);
	expect(&a, FL_EAUTH, "wave 7");
	a = assignment(6, APPLY, "beta", 2, rel, M_B, &order);
	expect(&a, FL_OK, NULL);
	fl_buf_fini(&order);
}
END_TEST

START_TEST(kinds_targets_and_checks)
{
	struct fl_buf order = FL_BUF_INIT;
	uint8_t rel[32], oh[32];
	struct order_spec os = {policy_halt, NULL, NULL, NULL, NULL, 0, NULL};
	Flotilla__V1__WorkAssignment a;

	make_release("acme-app", 5, &rk, rel);
	os.release = rel;
	make_order(&os, &order, oh);
	a = assignment(1, APPLY, "beta", 2, rel, M_C, &order);
	expect(&a, FL_EAUTH, "is not the order's target");
	a = assignment(2, APPLY, "beta", 2, rel, "", &order);
	expect(&a, FL_EAUTH, "is not the order's target");
	a = assignment(3, CHECK, "beta", 2, rel, M_A, &order);
	expect(&a, FL_EAUTH, "a check names no target");
	a = assignment(4, 0, "beta", 2, rel, M_B, &order);
	expect(&a, FL_EAUTH, "no work kind");
	a = assignment(0, APPLY, "beta", 2, rel, M_B, &order);
	expect(&a, FL_EAUTH, "assignment id 0");
	/* a revert with no rollback order, under on_failure: halt */
	a = assignment(5, REVERT, "beta", 2, rel, "", &order);
	expect(&a, FL_EAUTH, "revert without authorisation");
	a = assignment(6, REVERT, "beta", 2, rel, M_A, &order);
	expect(&a, FL_EAUTH, "revert without authorisation");
	fl_buf_fini(&order);
	/* an order whose target is not in its release */
	os.target = "20250109000000_elsewhere";
	make_order(&os, &order, oh);
	a = assignment(7, APPLY, "beta", 2, rel, "20250109000000_elsewhere", &order);
	expect(&a, FL_EAUTH, "is not in release");
	fl_buf_fini(&order);
}
END_TEST

START_TEST(revert_by_rollback_order)
{
	struct fl_buf order = FL_BUF_INIT, rb = FL_BUF_INIT;
	uint8_t rel[32], oh[32], other_oh[32];
	struct order_spec os = {policy_halt, NULL, NULL, NULL, NULL, 0, NULL};
	Flotilla__V1__WorkAssignment a;

	make_release("acme-app", 5, &rk, rel);
	os.release = rel;
	make_order(&os, &order, oh);
	memset(other_oh, 0x42, 32);

	/* signed by an untrusted key */
	make_rollback(oh, rel, M_A, NULL, &evil, &rb);
	a = assignment(1, REVERT, "beta", 2, rel, M_A, &order);
	a.signed_rollback_order.data = (uint8_t *)rb.data;
	a.signed_rollback_order.len = rb.len;
	expect(&a, FL_EAUTH, "rollback order:");
	fl_buf_fini(&rb);
	/* for another rollout order */
	make_rollback(other_oh, rel, M_A, NULL, &rk, &rb);
	a.signed_rollback_order.data = (uint8_t *)rb.data;
	a.signed_rollback_order.len = rb.len;
	expect(&a, FL_EAUTH, "undoes another rollout order");
	fl_buf_fini(&rb);
	/* not selecting this tenant */
	make_rollback(oh, rel, M_A, "region=us", &rk, &rb);
	a.signed_rollback_order.data = (uint8_t *)rb.data;
	a.signed_rollback_order.len = rb.len;
	expect(&a, FL_EAUTH, "not selected by rollback order");
	fl_buf_fini(&rb);
	/* another target than the rollback order's */
	make_rollback(oh, rel, M_A, NULL, &rk, &rb);
	a = assignment(2, REVERT, "beta", 2, rel, "", &order);
	a.signed_rollback_order.data = (uint8_t *)rb.data;
	a.signed_rollback_order.len = rb.len;
	expect(&a, FL_EAUTH, "is not the rollback order's");
	/* a rollout order passed off as a rollback order */
	a.signed_rollback_order.data = (uint8_t *)order.data;
	a.signed_rollback_order.len = order.len;
	expect(&a, FL_EAUTH, "rollback order:");
	/* as signed */
	a = assignment(3, REVERT, "beta", 2, rel, M_A, &order);
	a.signed_rollback_order.data = (uint8_t *)rb.data;
	a.signed_rollback_order.len = rb.len;
	expect(&a, FL_OK, NULL);
	fl_buf_fini(&rb);
	fl_buf_fini(&order);
}
END_TEST

/* ---- step two: the tenant's history ---- */

static void history_of(struct fl_history *h, const char *const *ids, const char *const *sums,
                       size_t n)
{
	memset(h, 0, sizeof(*h));
	h->table_exists = true;
	h->rows = fl_calloc(n + 1, sizeof(*h->rows));
	for (size_t i = 0; i < n; i++) {
		const struct fl_migration *m = fl_migration_set_find(&set, ids[i]);
		char id[32];

		snprintf(id, sizeof(id), "row%zu", i);
		h->rows[i].id = fl_strdup(id);
		h->rows[i].migration_name = fl_strdup(ids[i]);
		h->rows[i].checksum = fl_strdup(sums && sums[i] ? sums[i] : m ? m->checksum : "00");
		h->rows[i].started_at = fl_strdup("2025-01-01 00:00:00+00");
		h->rows[i].finished_at = fl_strdup("2025-01-01 00:00:01+00");
		h->rows[i].applied_steps_count = 1;
	}
	h->count = n;
}

/* Step one (must pass), then step two on a tenant with this history. */
static enum fl_err step_two(const Flotilla__V1__WorkAssignment *a, const char *const *ids,
                            const char *const *sums, size_t n, struct fl_revert_plan *rp,
                            char *reason)
{
	struct fl_verify_ctx c = ctx();
	struct fl_verified v;
	struct fl_history h;
	struct fl_plan plan;
	enum fl_err rv;

	ck_assert_msg(fl_verify_assignment(&c, a, &v, reason) == FL_OK, "%s", reason);
	history_of(&h, ids, sums, n);
	fl_plan_build(&v.release->release->set, &h, &plan);
	rv = fl_verify_history(&v, &plan, ledger, rp, reason);
	fl_plan_fini(&plan);
	fl_history_fini(&h);
	fl_verified_fini(&v);
	return rv;
}

static void ledger_applied(uint64_t id, const uint8_t oh[32], const char *tenant,
                           const char *const *ids, size_t n)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_ledger_start ls = {0};

	ls.assignment_id = id;
	memcpy(ls.order_hash, oh, 32);
	ls.release_sequence = 5;
	ls.tenant_id = tenant;
	ls.kind = APPLY;
	ck_assert_int_eq(fl_ledger_start(ledger, &ls, err), FL_OK);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(fl_ledger_step(ledger, id, false, ids[i], err), FL_OK);
	ck_assert_int_eq(fl_ledger_finish(ledger, id, 1, NOW, id, "r", 1, err), FL_OK);
}

START_TEST(history_must_be_in_release)
{
	static const char *const foreign[] = {M_A, "20250101120000_hotfix"};
	static const char *const edited[] = {M_A, M_B};
	static const char *const sums[] = {
	    NULL, "0000000000000000000000000000000000000000000000000000000000000000"};
	static const char *const fine[] = {M_A};
	struct fl_buf order = FL_BUF_INIT;
	uint8_t rel[32], oh[32];
	struct order_spec os = {policy_halt, NULL, NULL, NULL, NULL, 0, NULL};
	Flotilla__V1__WorkAssignment a;
	struct fl_revert_plan rp;
	char reason[FL_ERRBUF_SIZE];

	make_release("acme-app", 5, &rk, rel);
	os.release = rel;
	make_order(&os, &order, oh);
	a = assignment(1, APPLY, "beta", 2, rel, M_B, &order);
	ck_assert_int_eq(step_two(&a, foreign, NULL, 2, &rp, reason), FL_EAUTH);
	ck_assert_msg(strstr(reason, "'20250101120000_hotfix' applied, which release") != NULL,
	              "%s", reason);
	ck_assert_int_eq(step_two(&a, edited, sums, 2, &rp, reason), FL_EAUTH);
	ck_assert_msg(strstr(reason, "another checksum") != NULL, "%s", reason);
	ck_assert_int_eq(step_two(&a, fine, NULL, 1, &rp, reason), FL_OK);
	fl_buf_fini(&order);
}
END_TEST

START_TEST(revert_bounded_by_ledger)
{
	static const char *const ab[] = {M_A, M_B};
	static const char *const a_only[] = {M_A};
	static const char *const b_only[] = {M_B};
	static const char *const abc[] = {M_A, M_B, M_C};
	struct fl_buf order = FL_BUF_INIT, order_c = FL_BUF_INIT;
	uint8_t rel[32], oh[32], oh_c[32];
	struct order_spec os = {policy_rollback, NULL, NULL, NULL, NULL, 0, NULL};
	Flotilla__V1__WorkAssignment a;
	struct fl_revert_plan rp;
	char reason[FL_ERRBUF_SIZE];

	make_release("acme-app", 5, &rk, rel);
	os.release = rel;
	make_order(&os, &order, oh);
	os.target = M_C;
	make_order(&os, &order_c, oh_c);

	/* on_failure: rollback-all authorises the revert in step one */
	a = assignment(1, REVERT, "beta", 0, rel, "", &order);
	expect(&a, FL_OK, NULL);
	/* nothing in the ledger under this order: nothing to revert */
	ck_assert_int_eq(step_two(&a, ab, NULL, 2, &rp, reason), FL_OK);
	ck_assert(rp.nothing);
	/* the agent applied b under the order (a was there before) */
	ledger_applied(50, oh, "beta", b_only, 1);
	ck_assert_int_eq(step_two(&a, ab, NULL, 2, &rp, reason), FL_OK);
	ck_assert(!rp.nothing);
	ck_assert_ptr_null(rp.to);
	ck_assert_uint_eq(rp.steps, 1);
	/* a target inside what the order applied */
	a = assignment(2, REVERT, "beta", 0, rel, M_A, &order);
	ck_assert_int_eq(step_two(&a, ab, NULL, 2, &rp, reason), FL_OK);
	ck_assert_str_eq(rp.to, M_A);
	/* c applied on top by something else: b cannot go first */
	a = assignment(3, REVERT, "beta", 0, rel, "", &order);
	ck_assert_int_eq(step_two(&a, abc, NULL, 3, &rp, reason), FL_EAUTH);
	ck_assert_msg(strstr(reason, "would have to go first") != NULL, "%s", reason);
	/* a target asking for more than the order applied here: on acme the
	 * agent applied only a under it, b came from elsewhere */
	ledger_applied(52, oh, "acme", a_only, 1);
	a = assignment(6, REVERT, "acme", 0, rel, M_A, &order);
	ck_assert_int_eq(step_two(&a, ab, NULL, 2, &rp, reason), FL_EAUTH);
	ck_assert_msg(strstr(reason, "did not apply under order") != NULL, "%s", reason);
	/* another tenant: nothing applied there by the agent */
	a = assignment(4, REVERT, "gamma", 0, rel, "", &order);
	ck_assert_int_eq(step_two(&a, ab, NULL, 2, &rp, reason), FL_OK);
	ck_assert(rp.nothing);

	/* every migration to revert needs down.sql: c has none */
	ledger_applied(60, oh_c, "delta", abc, 3);
	a = assignment(5, REVERT, "delta", 0, rel, "", &order_c);
	ck_assert_int_eq(step_two(&a, abc, NULL, 3, &rp, reason), FL_EAUTH);
	ck_assert_msg(strstr(reason, "no down.sql for '" M_C "'") != NULL, "%s", reason);
	fl_buf_fini(&order);
	fl_buf_fini(&order_c);
}
END_TEST

START_TEST(revert_to_rollback_target)
{
	static const char *const ab[] = {M_A, M_B};
	static const char *const abc[] = {M_A, M_B, M_C};
	struct fl_buf order = FL_BUF_INIT, rb = FL_BUF_INIT;
	uint8_t rel[32], oh[32];
	struct order_spec os = {policy_halt, NULL, NULL, NULL, NULL, 0, NULL};
	Flotilla__V1__WorkAssignment a;
	struct fl_revert_plan rp;
	char reason[FL_ERRBUF_SIZE];

	make_release("acme-app", 5, &rk, rel);
	os.release = rel;
	make_order(&os, &order, oh);
	make_rollback(oh, rel, M_A, NULL, &rk, &rb);
	a = assignment(1, REVERT, "beta", 2, rel, M_A, &order);
	a.signed_rollback_order.data = (uint8_t *)rb.data;
	a.signed_rollback_order.len = rb.len;
	/* bounded by its target, not by the ledger: b goes */
	ck_assert_int_eq(step_two(&a, ab, NULL, 2, &rp, reason), FL_OK);
	ck_assert_str_eq(rp.to, M_A);
	ck_assert(!rp.nothing);
	/* c too, which has no down.sql: refused up front */
	ck_assert_int_eq(step_two(&a, abc, NULL, 3, &rp, reason), FL_EAUTH);
	ck_assert_msg(strstr(reason, "no down.sql") != NULL, "%s", reason);
	fl_buf_fini(&rb);
	fl_buf_fini(&order);
}
END_TEST

static Suite *verify_suite(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("verify");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, apply_covered_passes);
	tcase_add_test(tc, order_untrusted_expired_other_project);
	tcase_add_test(tc, release_hash_signer_project_sequence);
	tcase_add_test(tc, tenant_selection_and_waves);
	tcase_add_test(tc, kinds_targets_and_checks);
	tcase_add_test(tc, revert_by_rollback_order);
	tcase_add_test(tc, history_must_be_in_release);
	tcase_add_test(tc, revert_bounded_by_ledger);
	tcase_add_test(tc, revert_to_rollback_target);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(verify_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
