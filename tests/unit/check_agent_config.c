/*
 * The agent's config (agent/agent_config.c): its rules between keys, the
 * trust-root file check, what SIGHUP may change; and what is built from it
 * without a database: connection URLs and passwords (agent/tenants.c), the
 * LIKE of discovery's label rules, the reconnect backoff, a Hello split in
 * parts, a report packed and read back.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_config.h"
#include "discovery.h"
#include "log.h"
#include "mem.h"
#include "pull.h"
#include "report.h"
#include "tenants.h"
#include "testutil.h"
#include "wire.h"

#define KEY1 "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
#define KEY2 "gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q="

static const char base[] = "key_file: /etc/flotilla/agent.key\n"
                           "coordinator_url: tcp://coord:7400\n"
                           "coordinator_public_keys: [" KEY1 "]\n"
                           "trusted_release_keys: [" KEY2 "]\n"
                           "project_id: acme-app\n"
                           "state_dir: /var/lib/flotilla-agent\n";

static char root[256];

static void setup(void)
{
	fl_log_set_level(FL_LOG_ERROR);
	fl_test_tmp_root(root, sizeof(root), "check_agent_config");
}

static void teardown(void)
{
	fl_test_rm_rf(root);
}

/* Load base + extra from memory: FL_OK, or the error with err holding want. */
static enum fl_err load(const char *extra, struct fl_agent_config *c, char *err)
{
	struct fl_buf b = FL_BUF_INIT;
	enum fl_err rv;

	fl_buf_puts(&b, base);
	fl_buf_puts(&b, extra);
	rv = fl_config_load_buffer(b.data, b.len, "agent.yaml", fl_agent_config_table, c, err);
	fl_buf_fini(&b);
	return rv;
}

static void refused(const char *extra, const char *want)
{
	struct fl_agent_config c;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(load(extra, &c, err) == FL_EPARSE, "accepted: %s", extra);
	ck_assert_msg(strstr(err, want) != NULL, "'%s' lacks '%s'", err, want);
}

static const char one_db[] = "databases:\n  - {name: main, host: /run/pg, user: flotilla}\n";

START_TEST(accepts_a_full_config)
{
	struct fl_agent_config c;
	char err[FL_ERRBUF_SIZE] = "";
	const struct fl_agent_database *d;
	const struct fl_agent_discovery *disc;

	ck_assert_msg(
	    load("databases:\n"
	         "  - {name: main, host: /run/pg, port: 5433, user: flotilla, sslmode: require,"
	         " password_file: /etc/pw, max_parallel: 2}\n"
	         "  - {name: other, url: 'postgresql://u@h:5432/postgres?sslmode=verify-full',"
	         " password_env: PW}\n"
	         "tenants:\n"
	         "  - {id: acme, server: main, database: acme, labels: {ring: canary}}\n"
	         "  - {id: beta, server: other, database: shared, schema: beta}\n"
	         "discovery:\n"
	         "  - server: main\n"
	         "    kind: schemas\n"
	         "    database: shared\n"
	         "    like: 'tenant\\_%'\n"
	         "    id: 'eu-{name}'\n"
	         "    rules: [{match: 'tenant\\_a%', labels: {ring: canary}}]\n"
	         "backup: {command: 'pg_dump -Fc -f \"$FLOTILLA_BACKUP_PATH\"', dir: /b}\n"
	         "shutdown: {mode: finish, timeout: 5m}\n"
	         "health_check_role: flotilla_health\n",
	         &c, err) == FL_OK,
	    "%s", err);
	ck_assert_uint_eq(c.databases.n, 2);
	d = fl_agent_config_database(&c, "main");
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->port, 5433);
	ck_assert_int_eq(d->sslmode, FL_SSLMODE_REQUIRE);
	ck_assert_int_eq(d->max_parallel, 2);
	ck_assert_str_eq(d->dbname, "postgres");
	ck_assert_ptr_null(fl_agent_config_database(&c, "nope"));
	ck_assert_uint_eq(c.tenants.n, 2);
	disc = c.discovery.items;
	ck_assert_int_eq(disc[0].kind, FL_DISCOVER_SCHEMAS);
	ck_assert_str_eq(disc[0].like, "tenant\\_%");
	ck_assert_int_eq(c.shutdown_mode, FL_SHUTDOWN_FINISH);
	ck_assert_int_eq(c.shutdown_timeout_ms, 300000);
	ck_assert_int_eq(c.max_parallel, 4);
	ck_assert_int_eq(c.poll_wait_ms, 25000);
	fl_agent_config_fini(&c);
}
END_TEST

START_TEST(refuses_what_breaks_a_rule)
{
	refused(one_db, "no tenants: give tenants, discovery, or both");
	refused("databases:\n  - {name: main, url: 'postgresql://u:secret@h/db'}\n"
	        "tenants: [{id: a, server: main, database: a}]\n",
	        "holds a password");
	refused("databases:\n  - {name: main, url: 'postgresql://h/db?password=x'}\n"
	        "tenants: [{id: a, server: main, database: a}]\n",
	        "holds a password");
	refused("databases:\n  - {name: main, url: 'postgresql://h/db', host: h}\n"
	        "tenants: [{id: a, server: main, database: a}]\n",
	        "give either url or host");
	refused("databases:\n  - {name: main, password_file: /a, password_env: B}\n"
	        "tenants: [{id: a, server: main, database: a}]\n",
	        "password_file or password_env, not both");
	refused("databases:\n  - {name: main}\n  - {name: main}\n"
	        "tenants: [{id: a, server: main, database: a}]\n",
	        "'main' is the name of databases[0] too");
	refused("databases:\n  - {name: 'a b'}\n", "expected 1 to 64 of");
	refused("databases:\n  - {name: main, url: 'mysql://h/db'}\n", "expected a URL such as");
	refused(
	    "databases:\n  - {name: main}\n"
	    "tenants: [{id: a, server: main, database: a}, {id: a, server: main, database: b}]\n",
	    "tenant 'a' is listed twice");
	refused("databases:\n  - {name: main}\n"
	        "tenants: [{id: a, server: elsewhere, database: a}]\n",
	        "tenants[0].server: no database named 'elsewhere'");
	refused("databases:\n  - {name: main}\n"
	        "discovery: [{server: nope, like: 't%'}]\n",
	        "discovery[0].server: no database named 'nope'");
	refused("databases:\n  - {name: main}\n"
	        "discovery: [{server: main, kind: schemas, like: 't%'}]\n",
	        "kind schemas needs database");
	refused("databases:\n  - {name: main}\n"
	        "discovery: [{server: main, database: x, like: 't%'}]\n",
	        "only with kind: schemas");
	refused("databases:\n  - {name: main}\n"
	        "discovery: [{server: main, like: 't%', id: fixed}]\n",
	        "must hold '{name}'");
	refused("databases:\n  - {name: main}\n"
	        "tenants: [{id: a, server: main, database: a}]\n"
	        "backup: {command: 'pg_dump'}\n",
	        "needs backup.dir");
	refused("databases:\n  - {name: main}\n"
	        "tenants: [{id: \"a\\tb\", server: main, database: a}]\n",
	        "not a tenant id");
	refused("databases:\n  - {name: main}\n"
	        "tenants: [{id: a, server: main, database: a}]\n"
	        "project_id: other\n",
	        "duplicate key");
}
END_TEST

START_TEST(agents_need_their_trust_roots)
{
	static const char *const cases[][2] = {
	    {"coordinator_public_keys: [" KEY1 "]\n", "an agent needs coordinator_url"},
	    {"coordinator_url: tcp://c:1\n", "an agent needs the coordinator's public key"},
	};
	struct fl_agent_config c;
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_buf b = FL_BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fl_buf_reset(&b);
		fl_buf_printf(&b,
		              "key_file: k\n%strusted_release_keys: [" KEY2 "]\nproject_id: p\n"
		              "state_dir: s\n%s"
		              "tenants: [{id: a, server: main, database: a}]\n",
		              cases[i][0], one_db);
		ck_assert_int_eq(
		    fl_config_load_buffer(b.data, b.len, "a.yaml", fl_agent_config_table, &c, err),
		    FL_EPARSE);
		ck_assert_msg(strstr(err, cases[i][1]) != NULL, "%s", err);
	}
	fl_buf_reset(&b);
	fl_buf_printf(&b,
	              "key_file: k\ncoordinator_url: tcp://c:1\ncoordinator_public_keys: [" KEY1
	              "]\nproject_id: p\nstate_dir: s\n%stenants: [{id: a, server: main, "
	              "database: a}]\n",
	              one_db);
	ck_assert_int_eq(
	    fl_config_load_buffer(b.data, b.len, "a.yaml", fl_agent_config_table, &c, err),
	    FL_EPARSE);
	ck_assert_msg(strstr(err, "at least one release key") != NULL, "%s", err);
	refused("databases:\n  - {name: main}\ntenants: [{id: a, server: main, database: a}]\n"
	        "trusted_release_keys: []\n",
	        "duplicate key");
	fl_buf_fini(&b);

	/* the file holds trust roots: writable by its group, refused */
	{
		char path[512];
		FILE *f;

		fl_test_fmt(path, sizeof(path), "%s/agent.yaml", root);
		f = fopen(path, "w");
		fputs(base, f);
		fputs(one_db, f);
		fputs("tenants: [{id: a, server: main, database: a}]\n", f);
		fclose(f);
		ck_assert_int_eq(chmod(path, 0664), 0);
		ck_assert_int_eq(fl_agent_config_load(path, &c, err), FL_EIO);
		ck_assert_msg(strstr(err, "it holds trust roots") != NULL, "%s", err);
		ck_assert_int_eq(chmod(path, 0644), 0);
		ck_assert_msg(fl_agent_config_load(path, &c, err) == FL_OK, "%s", err);
		fl_agent_config_fini(&c);
	}
}
END_TEST

/* What SIGHUP may change: fl_config_check_reload over two loads. */
static enum fl_err reload(const char *before, const char *after, char *err)
{
	struct fl_agent_config a, b;
	enum fl_err rv;

	ck_assert_msg(load(before, &a, err) == FL_OK, "%s", err);
	ck_assert_msg(load(after, &b, err) == FL_OK, "%s", err);
	rv = fl_config_check_reload(fl_agent_config_table, &a, &b, err);
	fl_agent_config_fini(&a);
	fl_agent_config_fini(&b);
	return rv;
}

START_TEST(reload_rules)
{
	static const char cfg[] =
	    "databases:\n  - {name: main, host: h, password_env: A, max_parallel: 2}\n"
	    "tenants: [{id: a, server: main, database: a, labels: {ring: canary}}]\n"
	    "discovery: [{server: main, like: 't%'}]\n";
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(reload(cfg, cfg, err), FL_OK);
	/* tenants, labels, discovery, the role, log: yes */
	ck_assert_msg(
	    reload(
	        cfg,
	        "databases:\n  - {name: main, host: h, password_env: B, max_parallel: 3}\n"
	        "tenants: [{id: a, server: main, database: a, labels: {ring: main}},"
	        " {id: b, server: main, database: b}]\n"
	        "discovery: [{server: main, like: 'u%', rules: [{match: 'u1', labels: {x: y}}]}]\n"
	        "health_check_role: r\nlog: {level: debug}\ndiscovery_interval: 1m\n",
	        err) == FL_OK,
	    "%s", err);
	/* the pool, a server's address, the project, the state: no */
	{
		struct fl_buf b = FL_BUF_INIT;

		fl_buf_printf(&b, "%smax_parallel: 8\n", cfg);
		ck_assert_int_eq(reload(cfg, b.data, err), FL_ESTATE);
		ck_assert_msg(strstr(err, "'max_parallel' cannot change on reload") != NULL, "%s",
		              err);
		fl_buf_fini(&b);
	}
	ck_assert_int_eq(reload(cfg,
	                        "databases:\n  - {name: main, host: elsewhere, password_env: A}\n"
	                        "tenants: [{id: a, server: main, database: a}]\n",
	                        err),
	                 FL_ESTATE);
	ck_assert_msg(strstr(err, "'databases[0].host' cannot change") != NULL, "%s", err);
}
END_TEST

START_TEST(urls_and_passwords)
{
	struct fl_agent_database d;
	struct fl_conn_params p;
	char err[FL_ERRBUF_SIZE] = "", path[512], *url = NULL, *pw = NULL;
	FILE *f;

	memset(&d, 0, sizeof(d));
	d.name = "main";
	d.host = "/run/post gres";
	d.port = 5433;
	d.user = "flo+tilla";
	d.sslmode = FL_SSLMODE_VERIFY_FULL;
	ck_assert_int_eq(fl_tenants_url(&d, "my db", "tenant_a", &url, err), FL_OK);
	ck_assert_str_eq(url, "postgresql:///my%20db?host=%2Frun%2Fpost%20gres&port=5433&"
	                      "user=flo%2Btilla&sslmode=verify-full&schema=tenant_a");
	fl_tenants_url_free(url);

	/* a password from the environment, percent-encoded, never logged */
	setenv("FL_TEST_PW", "p@ss word&=?", 1);
	d.password_env = "FL_TEST_PW";
	ck_assert_int_eq(fl_tenants_url(&d, "db", NULL, &url, err), FL_OK);
	ck_assert_ptr_nonnull(strstr(url, "&password=p%40ss%20word%26%3D%3F"));
	ck_assert_int_eq(fl_tenants_conn_params(url, &p, err), FL_OK);
	ck_assert_str_eq(p.password, "p@ss word&=?");
	ck_assert_str_eq(p.host, "/run/post gres");
	ck_assert_str_eq(p.port, "5433");
	ck_assert_str_eq(p.user, "flo+tilla");
	ck_assert_str_eq(p.dbname, "db");
	ck_assert_str_eq(p.sslmode, "verify-full");
	fl_tenants_conn_params_fini(&p);
	fl_tenants_url_free(url);
	unsetenv("FL_TEST_PW");
	ck_assert_int_eq(fl_tenants_url(&d, "db", NULL, &url, err), FL_ENOENT);
	ck_assert_msg(strstr(err, "'FL_TEST_PW' is not set") != NULL, "%s", err);

	/* from a file: its first line; a file others may read is refused */
	d.password_env = NULL;
	fl_test_fmt(path, sizeof(path), "%s/pw", root);
	d.password_file = path;
	f = fopen(path, "w");
	fputs("s3cret\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(fl_tenants_password(&d, &pw, err), FL_EIO);
	ck_assert_msg(strstr(err, "readable or writable by others") != NULL, "%s", err);
	ck_assert_ptr_null(strstr(err, "s3cret"));
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(fl_tenants_password(&d, &pw, err), FL_OK);
	ck_assert_str_eq(pw, "s3cret");
	fl_tenants_url_free(pw);
	f = fopen(path, "w");
	fclose(f);
	ck_assert_int_eq(fl_tenants_password(&d, &pw, err), FL_EIO);

	/* the url form: the path becomes the database; its query stays */
	memset(&d, 0, sizeof(d));
	d.name = "u";
	d.url = "postgresql://flotilla@db2:5432/postgres?sslmode=require";
	ck_assert_int_eq(fl_tenants_url(&d, "acme", "s", &url, err), FL_OK);
	ck_assert_str_eq(url, "postgresql://flotilla@db2:5432/acme?sslmode=require&schema=s");
	fl_tenants_url_free(url);
	d.url = "postgres://db2";
	ck_assert_int_eq(fl_tenants_url(&d, "acme", NULL, &url, err), FL_OK);
	ck_assert_str_eq(url, "postgres://db2/acme");
	fl_tenants_url_free(url);
}
END_TEST

START_TEST(tenant_lists)
{
	struct fl_tenants *t = fl_tenants_new();
	struct fl_tenant x = {"b", "main", "b", NULL, {NULL, 0}, -1};
	char err[FL_ERRBUF_SIZE] = "";

	fl_tenants_add(t, &x);
	x.id = "a";
	x.origin = 0;
	fl_tenants_add(t, &x);
	ck_assert_int_eq(fl_tenants_seal(t, err), FL_OK);
	ck_assert_str_eq(t->items[0].id, "a");
	ck_assert_ptr_nonnull(fl_tenants_find(t, "b"));
	ck_assert_ptr_null(fl_tenants_find(t, "c"));
	x.id = "b";
	x.origin = 2;
	fl_tenants_add(t, &x);
	ck_assert_int_eq(fl_tenants_seal(t, err), FL_EINVAL);
	ck_assert_msg(strstr(err, "tenant id 'b' is given twice (by tenants and discovery[2])") !=
	                  NULL,
	              "%s", err);
	fl_tenants_unref(t);
	ck_assert_ptr_null(fl_agent_tenant_id_problem("acme/eu 1"));
	ck_assert_str_eq(fl_agent_tenant_id_problem(""), "empty");
	ck_assert_str_eq(fl_agent_tenant_id_problem("a\x7f"), "holds a control character");
}
END_TEST

START_TEST(like_patterns)
{
	ck_assert(fl_discovery_like("tenant_%", "tenant_a"));
	ck_assert(fl_discovery_like("tenant_%", "tenantXa"));
	ck_assert(!fl_discovery_like("tenant\\_%", "tenantXa"));
	ck_assert(fl_discovery_like("tenant\\_%", "tenant_"));
	ck_assert(fl_discovery_like("%", ""));
	ck_assert(!fl_discovery_like("_", ""));
	ck_assert(fl_discovery_like("a%b%c", "axxbyyc"));
	ck_assert(!fl_discovery_like("a%b%c", "axxbyy"));
	ck_assert(fl_discovery_like("%%x", "yyx"));
	ck_assert(fl_discovery_like("100\\%", "100%"));
	ck_assert(!fl_discovery_like("100\\%", "1000"));
	ck_assert(!fl_discovery_like("abc", "abcd"));
}
END_TEST

START_TEST(backoff_bounds)
{
	for (unsigned n = 0; n < 40; n++) {
		int64_t d = fl_pull_backoff(n, 60000), full = 250;

		for (unsigned k = 0; k < n && full < 60000; k++)
			full *= 2;
		if (full > 60000)
			full = 60000;
		ck_assert_int_ge(d, full / 2);
		ck_assert_int_le(d, full);
	}
}
END_TEST

START_TEST(hello_in_parts)
{
	struct fl_tenants *t = fl_tenants_new();
	struct fl_tenant_state *states = fl_calloc(100, sizeof(*states));
	const struct fl_tenant_state **ptrs = fl_calloc(100, sizeof(*ptrs));
	uint64_t seqs[100] = {0};
	size_t from = 0, parts = 0, total = 0, i;
	char err[FL_ERRBUF_SIZE] = "";

	for (i = 0; i < 100; i++) {
		char id[16];
		struct fl_tenant x = {id, "main", id, NULL, {NULL, 0}, -1};

		snprintf(id, sizeof(id), "t%03zu", i);
		fl_tenants_add(t, &x);
		states[i].applied = fl_calloc(1, sizeof(*states[i].applied));
		states[i].applied[0].id = fl_strdup("20250101000000_a_rather_long_migration_name");
		states[i].applied[0].checksum = fl_strdup("00");
		states[i].n_applied = 1;
		ptrs[i] = &states[i];
	}
	ck_assert_int_eq(fl_tenants_seal(t, err), FL_OK);
	/* about 80 bytes a tenant: parts of at most 1000 bytes hold about 12 */
	while (from < t->n) {
		Flotilla__V1__Hello h = FLOTILLA__V1__HELLO__INIT;
		struct fl_report_arena a = {NULL, 0};
		size_t to = fl_report_hello_part(t, from, ptrs, seqs, 1000), sz;

		ck_assert_uint_gt(to, from);
		fl_report_hello_tenants(&h, t, from, to, ptrs, seqs, &a);
		sz = protobuf_c_message_get_packed_size(&h.base);
		ck_assert_uint_le(sz, 1000);
		ck_assert_uint_eq(h.n_tenants, to - from);
		fl_report_arena_free(&a);
		total += to - from;
		from = to;
		parts++;
	}
	ck_assert_uint_eq(total, 100);
	ck_assert_uint_gt(parts, 5);
	/* one tenant larger than a part still goes, alone */
	ck_assert_uint_eq(fl_report_hello_part(t, 0, ptrs, seqs, 10), 1);
	for (i = 0; i < 100; i++)
		fl_tenant_state_fini(&states[i]);
	free(states);
	free(ptrs);
	fl_tenants_unref(t);
}
END_TEST

START_TEST(report_round_trip)
{
	struct fl_report r;
	struct fl_buf b = FL_BUF_INIT;
	Flotilla__V1__Message *m = NULL;
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_migration_report *mr;

	fl_report_init(&r);
	r.agent_id = fl_strdup("agent");
	r.tenant_id = fl_strdup("acme");
	r.rollout_id = fl_strdup("r-1");
	r.assignment_id = 7;
	r.kind = 1;
	r.outcome = 2;
	snprintf(r.message, sizeof(r.message), "bad byte \xff here");
	mr = fl_report_add_migration(&r, "m1");
	mr->outcome = 2;
	mr->message = fl_strdup("relation \"x\" does not exist");
	snprintf(mr->sqlstate, sizeof(mr->sqlstate), "42P01");
	r.have_state = true;
	r.state.applied = fl_calloc(1, sizeof(*r.state.applied));
	r.state.applied[0].id = fl_strdup("m0");
	r.state.applied[0].checksum = fl_strdup("ab");
	r.state.n_applied = 1;
	ck_assert_msg(fl_report_pack(&r, 42, &b, err) == FL_OK, "%s", err);
	ck_assert_int_eq(
	    fl_wire_unpack((const uint8_t *)b.data, b.len, FL_WIRE_MAX_REPORT, &m, err), FL_OK);
	ck_assert_int_eq(m->body_case, FLOTILLA__V1__MESSAGE__BODY_REPORT);
	ck_assert_uint_eq(m->report->journal_id, 42);
	ck_assert_uint_eq(m->report->assignment_id, 7);
	ck_assert_str_eq(m->report->head_migration_id, "m0");
	ck_assert_uint_eq(m->report->applied_count, 1);
	ck_assert_str_eq(m->report->message, "bad byte ? here"); /* valid UTF-8 on the wire */
	ck_assert_str_eq(m->report->migrations[0]->sqlstate, "42P01");
	fl_wire_free(m);
	fl_buf_fini(&b);
	fl_report_fini(&r);
}
END_TEST

static Suite *agent_config_suite(void)
{
	Suite *s = suite_create("agent_config");
	TCase *tc = tcase_create("agent_config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, accepts_a_full_config);
	tcase_add_test(tc, refuses_what_breaks_a_rule);
	tcase_add_test(tc, agents_need_their_trust_roots);
	tcase_add_test(tc, reload_rules);
	tcase_add_test(tc, urls_and_passwords);
	tcase_add_test(tc, tenant_lists);
	tcase_add_test(tc, like_patterns);
	tcase_add_test(tc, backoff_bounds);
	tcase_add_test(tc, hello_in_parts);
	tcase_add_test(tc, report_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(agent_config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
