/*
 * The PostgreSQL driver against a real server (deploy/pg-throwaway.sh run).
 *
 * Every case makes its own database through DATABASE_URL and drops it at the
 * end, so cases are independent. Migrations and parsed scripts are built by
 * hand here: the loader and the splitter are tested on their own.
 * Waiting is on server state (pg_stat_activity), never on fixed sleeps.
 */
#include <check.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "driver.h"
#include "log.h"
#include "mode.h"
#include "pg_conn.h"
#include "pg_url.h"
#include "postgres.h"

static const struct fl_driver_ops *drv = &fl_postgres_driver;

/* ---- helpers: databases, URLs, raw SQL ---- */

static const char *base_url(void)
{
	const char *u = getenv("DATABASE_URL");

	ck_assert_msg(u != NULL, "DATABASE_URL is not set: run under deploy/pg-throwaway.sh");
	return u;
}

/* DATABASE_URL with its user info, database and extra query replaced. */
static char *make_url(const char *userinfo, const char *db, const char *extra)
{
	const char *u = base_url(), *a = strstr(u, "://") + 3, *slash = strchr(a, '/');
	const char *at = memchr(a, '@', (size_t)(slash - a)), *host = at ? at + 1 : a;
	const char *q = strchr(slash, '?');
	size_t n = strlen(u) + strlen(userinfo) + strlen(db) + strlen(extra) + 16;
	char *out = malloc(n);

	snprintf(out, n, "postgresql://%s@%.*s/%s%s%s", userinfo, (int)(slash - host), host, db,
	         q ? q : "", extra);
	return out;
}

static PGconn *raw_connect(const char *url)
{
	PGconn *pg = PQconnectdb(url);

	ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "raw connect: %s", PQerrorMessage(pg));
	return pg;
}

static void raw_exec(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(r);

	ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
	              PQresultErrorMessage(r));
	PQclear(r);
}

/* First value of the first row, or NULL (SQL NULL or no row); caller frees. */
static char *raw_value(PGconn *pg, const char *fmt, ...)
{
	char sql[4096], *v = NULL;
	PGresult *r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	r = PQexec(pg, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

struct tdb {
	char name[32];
	char *url;  /* the driver's URL for it */
	PGconn *pg; /* a raw connection to it, for checks */
};

static void tdb_open(struct tdb *t, const char *extra)
{
	unsigned char r[6];
	char sql[96];
	PGconn *admin = raw_connect(base_url());

	randombytes_buf(r, sizeof(r));
	snprintf(t->name, sizeof(t->name), "fl_%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
	         r[4], r[5]);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", t->name);
	raw_exec(admin, sql);
	PQfinish(admin);
	t->url = make_url("postgres", t->name, extra);
	{
		char *plain = make_url("postgres", t->name, "");

		t->pg = raw_connect(plain);
		free(plain);
	}
}

static void tdb_close(struct tdb *t)
{
	char sql[96];
	PGconn *admin;

	PQfinish(t->pg);
	free(t->url);
	admin = raw_connect(base_url());
	snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", t->name);
	raw_exec(admin, sql);
	PQfinish(admin);
}

static struct fl_conn *dconnect(const char *url)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_conn *c = NULL;
	enum fl_err rv = fl_pg_conn_open(url, NULL, &c, errbuf);

	ck_assert_msg(rv == FL_OK, "connect: %s", errbuf);
	return c;
}

/* A migration built by hand; checksum is the SHA-256 of sql, as Prisma's. */
static struct fl_migration mig(const char *id, const char *sql)
{
	struct fl_migration m;
	unsigned char h[crypto_hash_sha256_BYTES];

	memset(&m, 0, sizeof(m));
	m.id = (char *)id;
	m.sql = (char *)sql;
	m.sql_len = strlen(sql);
	m.lock_timeout_ms = -1;
	m.statement_timeout_ms = -1;
	crypto_hash_sha256(h, (const unsigned char *)sql, m.sql_len);
	sodium_bin2hex(m.checksum, sizeof(m.checksum), h, sizeof(h));
	return m;
}

/* A parsed script by hand: stmts are substrings of sql, in order. */
struct tscript {
	struct fl_sql_stmt st[16];
	struct fl_sql_script s;
};

static void script_of(struct tscript *t, const char *sql, const char *const *stmts,
                      const unsigned *flags, size_t n)
{
	const char *from = sql;

	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < n; i++) {
		const char *p = strstr(from, stmts[i]);
		int line = 1;

		ck_assert_msg(p != NULL, "statement '%s' not in script", stmts[i]);
		for (const char *q = sql; q < p; q++)
			line += *q == '\n';
		t->st[i].offset = (size_t)(p - sql);
		t->st[i].len = strlen(stmts[i]);
		t->st[i].line = line;
		t->st[i].flags = flags ? flags[i] : FL_SQL_DDL;
		t->s.flags |= t->st[i].flags;
		from = p + strlen(stmts[i]);
	}
	t->s.stmts = t->st;
	t->s.count = n;
	t->s.parsed = true;
}

static struct fl_apply_opts opts(void)
{
	struct fl_apply_opts o = {-1, -1, {3, 10, 50, 20000}};

	return o;
}

/* Rows of _prisma_migrations in schema for name. */
static long rows_of(struct tdb *t, const char *schema, const char *name)
{
	char *v = raw_value(t->pg,
	                    "SELECT count(*) FROM \"%s\"._prisma_migrations WHERE "
	                    "migration_name = '%s'",
	                    schema, name);
	long n = strtol(v, NULL, 10);

	free(v);
	return n;
}

static char *row_field(struct tdb *t, const char *name, const char *expr)
{
	return raw_value(t->pg,
	                 "SELECT %s FROM public._prisma_migrations WHERE migration_name = '%s' "
	                 "ORDER BY started_at DESC, id LIMIT 1",
	                 expr, name);
}

static bool relation_exists(struct tdb *t, const char *qname)
{
	char *v = raw_value(t->pg, "SELECT to_regclass('%s') IS NOT NULL", qname);
	bool yes = strcmp(v, "t") == 0;

	free(v);
	return yes;
}

static void ensure(struct fl_conn *c)
{
	char errbuf[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(drv->history_ensure(c, errbuf) == FL_OK, "ensure: %s", errbuf);
}

static bool is_uuid_v4(const char *s)
{
	if (s == NULL || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* ---- URLs ---- */

START_TEST(url_rewrite_and_redact)
{
	char errbuf[FL_ERRBUF_SIZE], *u = NULL, *schema = NULL, *r, *raw, *dec;

	ck_assert_int_eq(fl_pg_url_rewrite("postgresql://u:p@h:5432/db?schema=tenant%5F1&"
	                                   "connection_limit=5&pool_timeout=2&pgbouncer=true&"
	                                   "sslmode=require&sslcert=ca.pem&statement_cache_size=0",
	                                   NULL, &u, &schema, errbuf),
	                 FL_OK);
	ck_assert_str_eq(schema, "tenant_1");
	ck_assert_str_eq(u, "postgresql://u:p@h:5432/db?sslmode=require&sslrootcert=ca.pem&"
	                    "application_name=flotilla");
	free(u);
	free(schema);

	ck_assert_int_eq(fl_pg_url_rewrite("postgres://h/db?application_name=me&connect_timeout=9&"
	                                   "sslaccept=strict",
	                                   NULL, &u, &schema, errbuf),
	                 FL_OK);
	ck_assert_ptr_null(schema);
	ck_assert_str_eq(u, "postgres://h/db?application_name=me&connect_timeout=9&"
	                    "sslmode=verify-full");
	free(u);
	ck_assert_int_eq(fl_pg_url_rewrite("mysql://h/db", NULL, &u, &schema, errbuf), FL_EINVAL);
	ck_assert_int_eq(fl_pg_url_rewrite("postgres://h/db?schema=%zz", NULL, &u, &schema, errbuf),
	                 FL_EINVAL);

	r = fl_driver_redact_url("postgresql://alice:s3cr%40t@db.example:5432/app?schema=x&"
	                         "password=other");
	ck_assert_str_eq(r, "postgresql://alice:***@db.example:5432/app?schema=x&password=***");
	free(r);
	r = fl_driver_redact_url("host=/tmp user=bob password='a b\\'c' dbname=x");
	ck_assert_str_eq(r, "host=/tmp user=bob password=*** dbname=x");
	free(r);
	r = fl_driver_redact_url("postgresql://bob@/db?host=/tmp");
	ck_assert_str_eq(r, "postgresql://bob@/db?host=/tmp");
	free(r);

	raw = fl_pg_url_password("postgresql://alice:s3cr%40t@h/db", &dec);
	ck_assert_str_eq(raw, "s3cr%40t");
	ck_assert_str_eq(dec, "s3cr@t");
	free(raw);
	free(dec);

	ck_assert_ptr_eq(fl_driver_for_url("postgres://h/db"), &fl_postgres_driver);
	ck_assert_ptr_eq(fl_driver_for_url("PostgreSQL://h/db"), &fl_postgres_driver);
	ck_assert_ptr_null(fl_driver_for_url("sqlite:///x.db"));
	ck_assert_ptr_null(fl_driver_for_url("postgresx://h"));
}
END_TEST

/* ---- connecting ---- */

START_TEST(connect_auth_failure_and_unreachable)
{
	struct tdb t;
	char errbuf[FL_ERRBUF_SIZE] = "", sql[128], user[64], want[128], *url;
	struct fl_conn *c = NULL;

	tdb_open(&t, "");
	snprintf(user, sizeof(user), "%s_bob", t.name); /* roles are cluster-wide */
	snprintf(sql, sizeof(sql), "CREATE ROLE %s LOGIN PASSWORD 'Right-Pw-4711'", user);
	raw_exec(t.pg, sql);

	snprintf(want, sizeof(want), "%s:Wrong-Pw-0815", user);
	url = make_url(want, t.name, "");
	ck_assert_int_eq(fl_pg_conn_open(url, NULL, &c, errbuf), FL_EAUTH);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(errbuf, "Wrong-Pw-0815") == NULL, "password in '%s'", errbuf);
	snprintf(want, sizeof(want), "cannot connect to 'postgresql://%s:***@", user);
	ck_assert_msg(strncmp(errbuf, want, strlen(want)) == 0, "%s", errbuf);
	ck_assert_msg(strstr(errbuf, "password authentication failed") != NULL, "%s", errbuf);
	ck_assert_ptr_null(strchr(errbuf, '\n'));
	free(url);

	snprintf(want, sizeof(want), "%s:Right-Pw-4711", user);
	url = make_url(want, t.name, "");
	c = dconnect(url);
	drv->close(c);
	free(url);

	url = make_url(user, t.name, ""); /* no password at all */
	ck_assert_int_eq(fl_pg_conn_open(url, NULL, &c, errbuf), FL_EAUTH);
	free(url);

	url = strdup("postgresql://bob:Right-Pw-4711@/x?host=/nonexistent/flotilla&port=1");
	ck_assert_int_eq(fl_pg_conn_open(url, NULL, &c, errbuf), FL_ECONNECT);
	ck_assert_msg(strstr(errbuf, "Right-Pw-4711") == NULL, "password in '%s'", errbuf);
	ck_assert_msg(strstr(errbuf, "cannot connect to 'postgresql://bob:***@/x?") == errbuf, "%s",
	              errbuf);
	free(url);
	snprintf(sql, sizeof(sql), "DROP ROLE %s", user);
	raw_exec(t.pg, sql);
	tdb_close(&t);
}
END_TEST

/* ---- the history table ---- */

START_TEST(history_ddl_is_prismas)
{
	static const char *const expected[] = {
	    "id|character varying|36|NO|",
	    "checksum|character varying|64|NO|",
	    "finished_at|timestamp with time zone||YES|",
	    "migration_name|character varying|255|NO|",
	    "logs|text||YES|",
	    "rolled_back_at|timestamp with time zone||YES|",
	    "started_at|timestamp with time zone||NO|now()",
	    "applied_steps_count|integer||NO|0",
	};
	struct tdb t;
	struct fl_history h;
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_conn *c;
	PGresult *r;
	char *v;

	tdb_open(&t, "");
	c = dconnect(t.url);
	ck_assert_int_eq(drv->history_read(c, &h, errbuf), FL_OK);
	ck_assert(!h.table_exists);
	ck_assert_int_eq(h.count, 0);
	fl_history_fini(&h);

	ensure(c);
	ensure(c); /* idempotent */
	r = PQexec(t.pg,
	           "SELECT column_name || '|' || data_type || '|' || "
	           "coalesce(character_maximum_length::text, '') || '|' || is_nullable || '|' "
	           "|| coalesce(column_default, '') FROM information_schema.columns "
	           "WHERE table_schema = 'public' AND table_name = '_prisma_migrations' "
	           "ORDER BY ordinal_position");
	ck_assert_int_eq(PQntuples(r), 8);
	for (int i = 0; i < 8; i++)
		ck_assert_str_eq(PQgetvalue(r, i, 0), expected[i]);
	PQclear(r);
	v = raw_value(t.pg,
	              "SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ',') "
	              "FROM pg_constraint WHERE conrelid = 'public._prisma_migrations'::regclass");
	ck_assert_str_eq(v, "_prisma_migrations_pkey PRIMARY KEY (id)");
	free(v);
	/* Nothing of flotilla's own in the application's schema, and deploy's
	 * ensure creates no schema of ours either. */
	ck_assert(!relation_exists(&t, "public._flotilla_events"));
	v = raw_value(t.pg, "SELECT count(*) FROM pg_namespace WHERE nspname = '_flotilla'");
	ck_assert_str_eq(v, "0");
	free(v);

	ck_assert_int_eq(drv->history_read(c, &h, errbuf), FL_OK);
	ck_assert(h.table_exists);
	ck_assert_int_eq(h.count, 0);
	fl_history_fini(&h);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

START_TEST(history_in_url_schema)
{
	struct tdb t;
	struct fl_migration m = mig("20240101000000_init", "CREATE TABLE things (id int)");
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct fl_history h;
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_conn *c;
	char *v;

	tdb_open(&t, "&schema=Tenant%20One&connection_limit=1");
	c = dconnect(t.url);
	ensure(c); /* creates the schema too, as Prisma does */
	ck_assert(relation_exists(&t, "\"Tenant One\"._prisma_migrations"));
	ck_assert(!relation_exists(&t, "\"Tenant One\"._flotilla_events"));
	ck_assert(!relation_exists(&t, "public._prisma_migrations"));

	/* search_path is the schema: unqualified names land there. */
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_OK);
	ck_assert(relation_exists(&t, "\"Tenant One\".things"));
	ck_assert_int_eq(rows_of(&t, "Tenant One", m.id), 1);

	/* A migration that moves search_path does not move the history. */
	struct fl_migration m2 = mig("20240102000000_move", "CREATE SCHEMA elsewhere; "
	                                                    "SET search_path = elsewhere; "
	                                                    "CREATE TABLE other (id int)");
	ck_assert_int_eq(drv->apply(c, &m2, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_OK);
	ck_assert(relation_exists(&t, "elsewhere.other"));
	ck_assert_int_eq(drv->history_read(c, &h, errbuf), FL_OK);
	ck_assert_int_eq(h.count, 2);
	ck_assert_str_eq(h.rows[0].migration_name, m.id);
	ck_assert_str_eq(h.rows[1].migration_name, m2.id);
	fl_history_fini(&h);
	v = raw_value(t.pg, "SELECT count(*) FROM \"Tenant One\"._prisma_migrations");
	ck_assert_str_eq(v, "2");
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

/* ---- TRANSACTION mode ---- */

START_TEST(tx_success_row)
{
	struct tdb t;
	struct fl_migration m = mig("20240101000000_init", "CREATE TABLE a (id int PRIMARY KEY);\n"
	                                                   "CREATE TABLE b (id int);\n");
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct fl_history h;
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_conn *c;

	m.verify_sql = "SELECT count(*) = 0 FROM a";
	tdb_open(&t, "");
	c = dconnect(t.url);
	ck_assert_int_eq(drv->lock(c, 1000, errbuf), FL_OK);
	ensure(c);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_OK);
	ck_assert_int_eq(res.attempts, 1);
	ck_assert_str_eq(res.sqlstate, "");
	ck_assert(relation_exists(&t, "a") && relation_exists(&t, "b"));

	ck_assert_int_eq(drv->history_read(c, &h, errbuf), FL_OK);
	ck_assert_int_eq(h.count, 1);
	ck_assert(is_uuid_v4(h.rows[0].id));
	ck_assert_str_eq(h.rows[0].checksum, m.checksum);
	ck_assert_str_eq(h.rows[0].migration_name, m.id);
	ck_assert_ptr_null(h.rows[0].logs);
	ck_assert_ptr_null(h.rows[0].rolled_back_at);
	ck_assert_ptr_nonnull(h.rows[0].finished_at);
	ck_assert_ptr_nonnull(h.rows[0].started_at);
	ck_assert_int_eq(h.rows[0].applied_steps_count, 1);
	fl_history_fini(&h);
	ck_assert_int_eq(drv->unlock(c, errbuf), FL_OK);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

START_TEST(tx_failure_leaves_one_failed_row)
{
	struct tdb t;
	struct fl_migration m = mig("20240101000000_bad", "CREATE TABLE a (id int);\n"
	                                                  "-- a comment\n"
	                                                  "SELECT * FROM nope;\n");
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct fl_conn *c;
	char *v;

	tdb_open(&t, "");
	c = dconnect(t.url);
	ensure(c);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_ESQL);
	ck_assert_str_eq(res.sqlstate, "42P01");
	ck_assert_int_eq(res.attempts, 1);
	ck_assert_msg(strstr(res.message, "migration.sql line 3: relation \"nope\" does not exist "
	                                  "(SQLSTATE 42P01)") != NULL,
	              "%s", res.message);
	ck_assert(!relation_exists(&t, "a"));
	ck_assert_int_eq(rows_of(&t, "public", m.id), 1);
	v = row_field(&t, m.id,
	              "finished_at IS NULL AND rolled_back_at IS NULL AND "
	              "applied_steps_count = 0");
	ck_assert_str_eq(v, "t");
	free(v);
	v = row_field(&t, m.id, "logs");
	ck_assert_msg(strstr(v, "Database error code: 42P01") != NULL, "%s", v);
	ck_assert_msg(strstr(v, "relation \"nope\" does not exist") != NULL, "%s", v);
	ck_assert_msg(strstr(v, "Migration name: 20240101000000_bad") != NULL, "%s", v);
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

START_TEST(verify_false_rolls_back)
{
	struct tdb t;
	struct fl_migration m = mig("20240101000000_v", "CREATE TABLE a (id int)");
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct fl_conn *c;
	char *v;

	m.verify_sql = "SELECT count(*) > 0 FROM a";
	tdb_open(&t, "");
	c = dconnect(t.url);
	ensure(c);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_EVERIFY);
	ck_assert_str_eq(res.message, "verify.sql: returned false");
	ck_assert(!relation_exists(&t, "a"));
	v = row_field(&t, m.id, "finished_at IS NULL");
	ck_assert_str_eq(v, "t");
	free(v);
	v = row_field(&t, m.id, "logs");
	ck_assert_msg(strncmp(v, "verify.sql: returned false\n", 27) == 0, "%s", v);
	free(v);

	/* Not a single boolean: refused too. */
	struct fl_migration m2 = mig("20240101000001_v2", "CREATE TABLE a2 (id int)");
	m2.verify_sql = "SELECT 1, 2";
	ck_assert_int_eq(drv->apply(c, &m2, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_EVERIFY);
	ck_assert(!relation_exists(&t, "a2"));
	drv->close(c);
	tdb_close(&t);
}
END_TEST

/* ---- STATEMENTS mode ---- */

START_TEST(statements_fail_at_3_of_5)
{
	static const char sql[] = "CREATE TABLE s1 (id int);\n"
	                          "CREATE TABLE s2 (id int);\n"
	                          "INSERT INTO missing VALUES (1);\n"
	                          "CREATE TABLE s4 (id int);\n"
	                          "CREATE TABLE s5 (id int);\n";
	static const char *const stmts[] = {
	    "CREATE TABLE s1 (id int)",       "CREATE TABLE s2 (id int)",
	    "INSERT INTO missing VALUES (1)", "CREATE TABLE s4 (id int)",
	    "CREATE TABLE s5 (id int)",
	};
	struct tdb t;
	struct tscript ts;
	struct fl_migration m = mig("20240101000000_nt", sql);
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct fl_conn *c;
	char *v;

	m.no_transaction = true;
	script_of(&ts, sql, stmts, NULL, 5);
	tdb_open(&t, "");
	c = dconnect(t.url);
	ensure(c);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_STATEMENTS, &ts.s, &o, &res), FL_ESQL);
	ck_assert_int_eq(res.statement, 3);
	ck_assert_int_eq(res.statements, 5);
	ck_assert_str_eq(res.sqlstate, "42P01");
	ck_assert_msg(strncmp(res.message, "statement 3 of 5 (line 3): relation \"missing\"", 45) ==
	                  0,
	              "%s", res.message);
	ck_assert(relation_exists(&t, "s1") && relation_exists(&t, "s2"));
	ck_assert(!relation_exists(&t, "s4") && !relation_exists(&t, "s5"));
	ck_assert_int_eq(rows_of(&t, "public", m.id), 1);
	v = row_field(&t, m.id, "finished_at IS NULL AND rolled_back_at IS NULL");
	ck_assert_str_eq(v, "t");
	free(v);
	v = row_field(&t, m.id, "applied_steps_count");
	ck_assert_str_eq(v, "2");
	free(v);
	v = row_field(&t, m.id, "logs");
	ck_assert_msg(strstr(v, "statement 3 of 5 (line 3)") != NULL, "%s", v);
	ck_assert_msg(strstr(v, "Database error code: 42P01") != NULL, "%s", v);
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

START_TEST(statements_success_with_concurrent_index)
{
	static const char sql[] = "CREATE TABLE s (id int, v text);\n"
	                          "CREATE INDEX CONCURRENTLY s_v ON s (v);\n"
	                          "INSERT INTO s VALUES (1, 'x')\n";
	static const char *const stmts[] = {
	    "CREATE TABLE s (id int, v text)",
	    "CREATE INDEX CONCURRENTLY s_v ON s (v)",
	    "INSERT INTO s VALUES (1, 'x')",
	};
	static const unsigned flags[] = {FL_SQL_DDL, FL_SQL_DDL | FL_SQL_NO_TX_BLOCK, FL_SQL_DML};
	struct tdb t;
	struct tscript ts;
	struct fl_migration m = mig("20240101000000_nt", sql);
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct fl_conn *c;
	char *v;

	m.verify_sql = "SELECT count(*) = 1 FROM s";
	m.lock_timeout_ms = 2000;
	script_of(&ts, sql, stmts, flags, 3);
	tdb_open(&t, "");
	c = dconnect(t.url);
	ensure(c);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_STATEMENTS, &ts.s, &o, &res), FL_OK);
	ck_assert(relation_exists(&t, "s_v"));
	v = row_field(&t, m.id, "(finished_at IS NOT NULL)::text || applied_steps_count");
	ck_assert_str_eq(v, "true3");
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

/* ---- SCRIPT mode ---- */

START_TEST(script_mode_as_prisma)
{
	static const char own_tx[] = "BEGIN;\nCREATE TABLE s (id int);\nCOMMIT;\n";
	static const char lone[] = "-- CreateIndex\nCREATE INDEX CONCURRENTLY s_id ON s (id);\n";
	struct tdb t;
	struct fl_migration m1 = mig("20240101000000_own_tx", own_tx);
	struct fl_migration m2 = mig("20240101000001_concurrently", lone);
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct fl_conn *c;
	char *v;

	o.lock_timeout_ms = 1000;
	tdb_open(&t, "");
	c = dconnect(t.url);
	ensure(c);
	ck_assert_int_eq(drv->apply(c, &m1, FL_APPLY_SCRIPT, NULL, &o, &res), FL_OK);
	ck_assert(relation_exists(&t, "s"));
	/* What TRANSACTION mode would do with the lone statement, and why SCRIPT exists. */
	ck_assert_int_eq(drv->apply(c, &m2, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_ESQL);
	ck_assert_str_eq(res.sqlstate, "25001");
	ck_assert_int_eq(drv->apply(c, &m2, FL_APPLY_SCRIPT, NULL, &o, &res), FL_OK);
	ck_assert(relation_exists(&t, "s_id"));
	v = row_field(&t, m1.id, "(finished_at IS NOT NULL)::text || applied_steps_count");
	ck_assert_str_eq(v, "true1");
	free(v);
	v = row_field(&t, m2.id, "(finished_at IS NOT NULL)::text || applied_steps_count");
	ck_assert_str_eq(v, "true1");
	free(v);
	/* The session timeout is back to the server's. */
	v = raw_value(t.pg, "SELECT 1"); /* keep the raw connection alive */
	free(v);

	/* A failing script leaves its started row failed, with logs. */
	struct fl_migration m3 = mig("20240101000002_bad", "BEGIN;\nCREATE TABLE z (id int);\n"
	                                                   "CREATE TABLE z (id int);\nCOMMIT;\n");
	ck_assert_int_eq(drv->apply(c, &m3, FL_APPLY_SCRIPT, NULL, &o, &res), FL_ESQL);
	ck_assert_str_eq(res.sqlstate, "42P07");
	ck_assert(!relation_exists(&t, "z"));
	v = row_field(&t, m3.id, "(finished_at IS NULL)::text || applied_steps_count");
	ck_assert_str_eq(v, "true0");
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

/* ---- retries ---- */

struct holder {
	const char *url;
	atomic_int released; /* 0 starting, -1 holding the lock, 1 released */
};

/* Wait (on server state) until the flotilla session has waited on a lock,
 * stopped waiting (lock timeout, backoff) and waits again: the first retry.
 * Then release the lock it waits on. */
static void *release_after_first_retry(void *arg)
{
	struct holder *h = arg;
	PGconn *locker = raw_connect(h->url), *watch = raw_connect(h->url);
	int phase = 0;

	raw_exec(locker, "BEGIN");
	raw_exec(locker, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
	atomic_store(&h->released, -1);
	for (int i = 0; i < 3000 && phase < 3; i++) {
		char *v =
		    raw_value(watch, "SELECT count(*) FROM pg_stat_activity WHERE "
		                     "application_name = 'flotilla' AND wait_event_type = 'Lock'");
		bool waiting = strcmp(v, "0") != 0;

		free(v);
		if ((phase == 0 && waiting) || (phase == 1 && !waiting) || (phase == 2 && waiting))
			phase++;
		else
			fl_sleep_ms(5);
	}
	raw_exec(locker, "COMMIT");
	atomic_store(&h->released, 1);
	PQfinish(watch);
	PQfinish(locker);
	return NULL;
}

START_TEST(lock_timeout_retried_then_success)
{
	struct tdb t;
	struct fl_migration m = mig("20240101000000_alter", "ALTER TABLE t ADD COLUMN x int");
	struct fl_apply_opts o = {200, -1, {10, 50, 100, 60000}};
	struct fl_apply_result res;
	struct holder h;
	pthread_t th;
	struct fl_conn *c;
	char *v;

	tdb_open(&t, "");
	raw_exec(t.pg, "CREATE TABLE t (id int)");
	c = dconnect(t.url);
	ensure(c);
	h.url = t.url;
	atomic_init(&h.released, 0);
	pthread_create(&th, NULL, release_after_first_retry, &h);
	while (atomic_load(&h.released) == 0)
		fl_sleep_ms(1);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_OK);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&h.released), 1);
	ck_assert_int_ge(res.attempts, 2);
	v = raw_value(t.pg, "SELECT count(*) FROM information_schema.columns WHERE "
	                    "table_name = 't' AND column_name = 'x'");
	ck_assert_str_eq(v, "1");
	free(v);
	ck_assert_int_eq(rows_of(&t, "public", m.id), 1);
	v = row_field(&t, m.id, "finished_at IS NOT NULL");
	ck_assert_str_eq(v, "t");
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

START_TEST(lock_timeout_budget_spent)
{
	struct tdb t;
	struct fl_migration m = mig("20240101000000_alter", "ALTER TABLE t ADD COLUMN x int");
	struct fl_apply_opts o = {50, -1, {2, 10, 20, 60000}};
	struct fl_apply_result res;
	struct fl_conn *c;
	PGconn *locker;

	tdb_open(&t, "");
	raw_exec(t.pg, "CREATE TABLE t (id int)");
	locker = raw_connect(t.url);
	raw_exec(locker, "BEGIN");
	raw_exec(locker, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
	c = dconnect(t.url);
	ensure(c);
	/* Nothing was applied: no failed row to block later deploys, and FL_EBUSY
	 * says to simply run again. */
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_EBUSY);
	ck_assert_int_eq(res.attempts, 2);
	ck_assert_str_eq(res.sqlstate, "55P03");
	ck_assert_msg(strncmp(res.message, "gave up after 2 attempts: migration.sql", 39) == 0,
	              "%s", res.message);
	ck_assert_int_eq(rows_of(&t, "public", m.id), 0);
	raw_exec(locker, "ROLLBACK");
	PQfinish(locker);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

struct killer {
	const char *url;
	const char *marker;
};

/* Terminate the flotilla backend once it runs a query containing marker. */
static void *kill_when_running(void *arg)
{
	struct killer *k = arg;
	PGconn *watch = raw_connect(k->url);

	for (int i = 0; i < 4000; i++) {
		char *v = raw_value(watch,
		                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		                    "WHERE application_name = 'flotilla' AND query LIKE '%%%s%%' "
		                    "AND state = 'active'",
		                    k->marker);

		if (v != NULL) {
			free(v);
			break;
		}
		fl_sleep_ms(5);
	}
	PQfinish(watch);
	return NULL;
}

START_TEST(connection_loss_reconnects_and_relocks)
{
	struct tdb t;
	struct fl_migration m =
	    mig("20240101000000_slow", "CREATE TABLE z (id int);\n"
	                               "SELECT pg_sleep(0.5) AS first_try_marker;\n");
	struct fl_apply_opts o = {-1, -1, {5, 20, 100, 60000}};
	struct fl_apply_result res;
	struct killer k = {NULL, "first_try_marker"};
	char errbuf[FL_ERRBUF_SIZE];
	pthread_t th;
	struct fl_conn *c;
	char *v;

	tdb_open(&t, "");
	c = dconnect(t.url);
	ck_assert_int_eq(drv->lock(c, 1000, errbuf), FL_OK);
	ensure(c);
	k.url = t.url;
	pthread_create(&th, NULL, kill_when_running, &k);
	/* Nothing committed: the driver stops, records nothing (another deployer
	 * may have moved on while the lock was free) and says it reconnected, so
	 * that the engine reads the history again. */
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_ECONNLOST);
	pthread_join(th, NULL);
	ck_assert(res.reconnected);
	ck_assert_msg(strstr(res.message, "nothing of it was applied") != NULL, "%s", res.message);
	ck_assert(!relation_exists(&t, "z"));
	ck_assert_int_eq(rows_of(&t, "public", m.id), 0);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_OK);
	ck_assert(!res.reconnected);
	ck_assert(relation_exists(&t, "z"));
	ck_assert_int_eq(rows_of(&t, "public", m.id), 1);
	/* The lock is held again, by the new session. */
	v = raw_value(t.pg, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
	                    "WHERE l.locktype = 'advisory' AND l.objid = 72707369 AND l.granted "
	                    "AND a.application_name = 'flotilla'");
	ck_assert_str_eq(v, "1");
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

START_TEST(statements_retry_one_statement_and_resume_after_loss)
{
	static const char sql[] = "CREATE TABLE s1 (id int);\n"
	                          "ALTER TABLE t ADD COLUMN x int;\n"
	                          "SELECT pg_sleep(0.4) AS stmt3_marker;\n"
	                          "CREATE TABLE s4 (id int);\n";
	static const char *const stmts[] = {
	    "CREATE TABLE s1 (id int)",
	    "ALTER TABLE t ADD COLUMN x int",
	    "SELECT pg_sleep(0.4) AS stmt3_marker",
	    "CREATE TABLE s4 (id int)",
	};
	struct tdb t;
	struct tscript ts;
	struct fl_migration m = mig("20240101000000_nt", sql);
	struct fl_apply_opts o = {200, -1, {10, 50, 100, 60000}};
	struct fl_apply_result res;
	struct holder h;
	struct killer k = {NULL, "stmt3_marker"};
	pthread_t th1, th2;
	struct fl_conn *c;
	char *v;

	script_of(&ts, sql, stmts, NULL, 4);
	tdb_open(&t, "");
	raw_exec(t.pg, "CREATE TABLE t (id int)");
	c = dconnect(t.url);
	ensure(c);
	h.url = t.url;
	atomic_init(&h.released, 0);
	k.url = t.url;
	pthread_create(&th1, NULL, release_after_first_retry, &h);
	while (atomic_load(&h.released) == 0)
		fl_sleep_ms(1);
	pthread_create(&th2, NULL, kill_when_running, &k);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_STATEMENTS, &ts.s, &o, &res), FL_OK);
	pthread_join(th1, NULL);
	pthread_join(th2, NULL);
	ck_assert_int_ge(res.attempts, 3); /* a lock timeout, then a lost connection */
	ck_assert_str_eq(res.message, "");
	ck_assert(relation_exists(&t, "s1") && relation_exists(&t, "s4"));
	ck_assert_int_eq(rows_of(&t, "public", m.id), 1);
	v = row_field(&t, m.id, "(finished_at IS NOT NULL)::text || applied_steps_count");
	ck_assert_str_eq(v, "true4");
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

START_TEST(script_connection_loss_is_not_retried)
{
	struct tdb t;
	struct fl_migration m = mig("20240101000000_s", "CREATE TABLE w (id int);\n"
	                                                "SELECT pg_sleep(0.5) AS script_marker;\n");
	struct fl_apply_opts o = {-1, -1, {5, 20, 100, 60000}};
	struct fl_apply_result res;
	struct killer k = {NULL, "script_marker"};
	pthread_t th;
	struct fl_conn *c;
	char *v;

	tdb_open(&t, "");
	c = dconnect(t.url);
	ensure(c);
	k.url = t.url;
	pthread_create(&th, NULL, kill_when_running, &k);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_SCRIPT, NULL, &o, &res), FL_ECONNLOST);
	pthread_join(th, NULL);
	ck_assert_msg(strncmp(res.message, "connection lost; it may be partly applied: ", 43) == 0,
	              "%s", res.message);
	v = row_field(&t, m.id, "(finished_at IS NULL)::text || (logs LIKE 'connection lost%')");
	ck_assert_str_eq(v, "truetrue");
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

struct canceler {
	struct fl_conn *c;
	const char *url;
};

static void *cancel_when_sleeping(void *arg)
{
	struct canceler *k = arg;
	PGconn *watch = raw_connect(k->url);

	for (int i = 0; i < 4000; i++) {
		char *v =
		    raw_value(watch, "SELECT 1 FROM pg_stat_activity WHERE application_name = "
		                     "'flotilla' AND query LIKE '%%pg_sleep(30)%%' AND "
		                     "state = 'active'");

		if (v != NULL) {
			free(v);
			break;
		}
		fl_sleep_ms(5);
	}
	drv->cancel(k->c);
	PQfinish(watch);
	return NULL;
}

START_TEST(cancel_stops_a_running_migration)
{
	struct tdb t;
	struct fl_migration m = mig("20240101000000_forever", "CREATE TABLE y (id int);\n"
	                                                      "SELECT pg_sleep(30);\n");
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct canceler k;
	pthread_t th;
	struct fl_conn *c;
	int64_t t0;

	tdb_open(&t, "");
	c = dconnect(t.url);
	ensure(c);
	k.c = c;
	k.url = t.url;
	pthread_create(&th, NULL, cancel_when_sleeping, &k);
	t0 = fl_now_ms();
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_ECANCELED);
	pthread_join(th, NULL);
	ck_assert_int_lt(fl_now_ms() - t0, 20000);
	ck_assert_msg(strncmp(res.message,
	                      "interrupted: nothing applied, its transaction was rolled back; ",
	                      63) == 0,
	              "%s", res.message);
	ck_assert(!relation_exists(&t, "y"));
	/* Nothing applied, so no failed row latches the database: deploy can run again. */
	ck_assert_int_eq(rows_of(&t, "public", m.id), 0);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

/* ---- the migration lock ---- */

START_TEST(advisory_lock_excludes_a_second_deployer)
{
	struct tdb t;
	char errbuf[FL_ERRBUF_SIZE], want[256];
	struct fl_conn *a, *b;

	tdb_open(&t, "");
	a = dconnect(t.url);
	b = dconnect(t.url);
	ck_assert_int_eq(drv->lock(a, 1000, errbuf), FL_OK);
	ck_assert_int_eq(drv->lock(a, 1000, errbuf), FL_OK); /* held: no-op */
	ck_assert_int_eq(drv->lock(b, 100, errbuf), FL_ELOCKED);
	snprintf(want, sizeof(want),
	         "another deployer holds the migration lock of schema 'public' "
	         "(pg_advisory_lock(1718382452, hashtext('public'))) on '%s'",
	         t.name);
	ck_assert_str_eq(errbuf, want);
	ck_assert_int_eq(drv->lock(b, 0, errbuf), FL_ELOCKED);
	ck_assert_int_eq(drv->unlock(a, errbuf), FL_OK);
	ck_assert_int_eq(drv->lock(b, 1000, errbuf), FL_OK);
	drv->close(b);
	drv->close(a);
	tdb_close(&t);
}
END_TEST

/* ---- revert ---- */

START_TEST(revert_deletes_rows_and_undoes_schema)
{
	static const char down2[] = "DROP TABLE r2b;\nDROP TABLE r2a;\n";
	static const char *const down2_stmts[] = {"DROP TABLE r2b", "DROP TABLE r2a"};
	struct tdb t;
	struct fl_migration m = mig("20240101000000_r", "CREATE TABLE r (id int)");
	struct fl_migration m2 = mig("20240101000001_r2", "CREATE TABLE r2a (id int);"
	                                                  "CREATE TABLE r2b (id int)");
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct tscript ts;
	struct fl_conn *c;
	char *v;

	m.down_sql = "DROP TABLE r";
	m2.down_sql = (char *)down2;
	script_of(&ts, down2, down2_stmts, NULL, 2);
	tdb_open(&t, "");
	c = dconnect(t.url);
	ensure(c);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_OK);
	ck_assert_int_eq(drv->apply(c, &m2, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_OK);

	ck_assert_int_eq(drv->revert(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_OK);
	ck_assert(!relation_exists(&t, "r"));
	ck_assert_int_eq(rows_of(&t, "public", m.id), 0);
	v = raw_value(t.pg, "SELECT event || ' ' || checksum FROM _flotilla.events "
	                    "WHERE migration_name = '20240101000000_r' AND schema_name = 'public'");
	ck_assert_str_eq(v + 12, m.checksum);
	ck_assert(strncmp(v, "rolled_back ", 12) == 0);
	free(v);
	/* Nothing left to revert: refused, and down.sql did not run. */
	ck_assert_int_eq(drv->revert(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_ESTATE);

	ck_assert_int_eq(drv->revert(c, &m2, FL_APPLY_STATEMENTS, &ts.s, &o, &res), FL_OK);
	ck_assert(!relation_exists(&t, "r2a") && !relation_exists(&t, "r2b"));
	ck_assert_int_eq(rows_of(&t, "public", m2.id), 0);

	/* A failing down.sql changes nothing: the rows stay. */
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_OK);
	m.down_sql = "DROP TABLE r; DROP TABLE not_there";
	ck_assert_int_eq(drv->revert(c, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_ESQL);
	ck_assert(relation_exists(&t, "r"));
	ck_assert_int_eq(rows_of(&t, "public", m.id), 1);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

/* ---- resolve ---- */

START_TEST(resolve_both_ways_with_refusals)
{
	struct tdb t;
	struct fl_migration bad = mig("20240101000000_bad", "SELECT * FROM nope");
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_conn *c;
	char *v;

	tdb_open(&t, "");
	c = dconnect(t.url);

	/* --applied on a fresh database: creates the table, as Prisma's baseline. */
	ck_assert_int_eq(drv->mark_applied(c, "20230101000000_base", bad.checksum, errbuf), FL_OK);
	v = row_field(
	    &t, "20230101000000_base",
	    "(started_at = finished_at)::text || '|' || logs || '|' || applied_steps_count");
	ck_assert_str_eq(v, "true||0");
	free(v);
	ck_assert_int_eq(drv->mark_applied(c, "20230101000000_base", bad.checksum, errbuf),
	                 FL_ESTATE);
	ck_assert_str_eq(errbuf, "migration '20230101000000_base' is already recorded as applied "
	                         "in the database");

	/* --rolled-back refusals. */
	ck_assert_int_eq(drv->mark_rolled_back(c, "20230101000000_base", errbuf), FL_ESTATE);
	ck_assert_msg(strstr(errbuf, "not in a failed state") != NULL, "%s", errbuf);
	ck_assert_int_eq(drv->mark_rolled_back(c, "20990101000000_unknown", errbuf), FL_ESTATE);
	ck_assert_msg(strstr(errbuf, "never applied") != NULL, "%s", errbuf);

	/* A failed migration, resolved --rolled-back. */
	ck_assert_int_eq(drv->apply(c, &bad, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_ESQL);
	ck_assert_int_eq(drv->mark_rolled_back(c, bad.id, errbuf), FL_OK);
	v = row_field(&t, bad.id, "rolled_back_at IS NOT NULL AND finished_at IS NULL");
	ck_assert_str_eq(v, "t");
	free(v);
	/* Again: its failed rows are all rolled back; Prisma succeeds, changing nothing. */
	ck_assert_int_eq(drv->mark_rolled_back(c, bad.id, errbuf), FL_OK);

	/* Failed again, then resolved --applied: the failed row is marked rolled
	 * back and a finished row added. */
	ck_assert_int_eq(drv->apply(c, &bad, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_ESQL);
	ck_assert_int_eq(drv->mark_applied(c, bad.id, bad.checksum, errbuf), FL_OK);
	ck_assert_int_eq(rows_of(&t, "public", bad.id), 3);
	v = raw_value(t.pg,
	              "SELECT count(*) FILTER (WHERE rolled_back_at IS NOT NULL) || '/' || "
	              "count(*) FILTER (WHERE finished_at IS NOT NULL) FROM _prisma_migrations "
	              "WHERE migration_name = '20240101000000_bad'");
	ck_assert_str_eq(v, "2/1");
	free(v);
	v = raw_value(t.pg, "SELECT string_agg(event, ',' ORDER BY id) FROM _flotilla.events "
	                    "WHERE schema_name = 'public'");
	ck_assert_str_eq(v, "resolved_applied,resolved_rolled_back,resolved_applied");
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

/* ---- fingerprint ---- */

static const char schema_sql[] =
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');\n"
    "CREATE DOMAIN posint AS int CHECK (VALUE > 0);\n"
    "CREATE SEQUENCE counter INCREMENT 5 START 100;\n"
    "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE,\n"
    "  mood mood DEFAULT 'ok', n posint, g int GENERATED ALWAYS AS (id * 2) STORED,\n"
    "  k bigint GENERATED BY DEFAULT AS IDENTITY, name text COLLATE \"C\",\n"
    "  CHECK (email <> ''));\n"
    "CREATE TABLE posts (id int PRIMARY KEY, user_id int REFERENCES users(id) ON DELETE "
    "CASCADE);\n"
    "CREATE INDEX posts_user ON posts (user_id) WHERE user_id > 0;\n"
    "CREATE VIEW happy AS SELECT id FROM users WHERE mood = 'happy';\n"
    "CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n FROM posts;\n"
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN\n  RETURN NEW;\nEND $$;\n"
    "CREATE TRIGGER posts_touch BEFORE UPDATE ON posts FOR EACH ROW EXECUTE FUNCTION "
    "touch();\n"
    "ALTER TABLE posts ENABLE ROW LEVEL SECURITY;\n"
    "CREATE POLICY own ON posts USING (user_id > 0);\n";

static void fingerprint(struct fl_conn *c, char hex[65], struct fl_buf *dump)
{
	char errbuf[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(drv->fingerprint(c, dump, hex, errbuf) == FL_OK, "fingerprint: %s", errbuf);
	ck_assert_int_eq(strlen(hex), 64);
}

START_TEST(fingerprint_equal_then_drifts)
{
	struct tdb t1, t2;
	struct fl_migration m = mig("20240101000000_schema", schema_sql);
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct fl_buf d1 = FL_BUF_INIT, d2 = FL_BUF_INIT;
	char h1[65], h2[65], h3[65];
	struct fl_conn *c1, *c2;

	tdb_open(&t1, "");
	tdb_open(&t2, "");
	c1 = dconnect(t1.url);
	c2 = dconnect(t2.url);
	ensure(c1);
	ck_assert_int_eq(drv->apply(c1, &m, FL_APPLY_TRANSACTION, NULL, &o, &res), FL_OK);
	/* Same schema without history on the second: the history is not schema. */
	raw_exec(t2.pg, "SET search_path = public");
	raw_exec(t2.pg, schema_sql);
	fingerprint(c1, h1, &d1);
	fingerprint(c2, h2, &d2);
	ck_assert_str_eq(fl_buf_str(&d1), fl_buf_str(&d2));
	ck_assert_str_eq(h1, h2);
	ck_assert_msg(strstr(fl_buf_str(&d1), "_prisma_migrations") == NULL, "%s", fl_buf_str(&d1));
	ck_assert_msg(strstr(fl_buf_str(&d1), "\nenum\tmood\t{sad,ok,happy}\n") != NULL, "%s",
	              fl_buf_str(&d1));
	ck_assert_msg(strstr(fl_buf_str(&d1), "CREATE INDEX posts_user ON <schema>.posts") != NULL,
	              "%s", fl_buf_str(&d1));
	fingerprint(c1, h3, NULL);
	ck_assert_str_eq(h1, h3); /* stable */

	raw_exec(t2.pg, "ALTER TABLE posts ADD COLUMN title text");
	fingerprint(c2, h2, NULL);
	ck_assert_str_ne(h1, h2);
	raw_exec(t2.pg, "ALTER TABLE posts DROP COLUMN title");
	fingerprint(c2, h2, NULL);
	ck_assert_str_eq(h1, h2);
	raw_exec(t2.pg, "ALTER SEQUENCE counter RESTART WITH 7; SELECT nextval('counter')");
	fingerprint(c2, h2, NULL);
	ck_assert_str_eq(h1, h2); /* current values are data, not schema */
	raw_exec(t2.pg, "ALTER TYPE mood ADD VALUE 'meh'");
	fingerprint(c2, h2, NULL);
	ck_assert_str_ne(h1, h2);

	fl_buf_fini(&d1);
	fl_buf_fini(&d2);
	drv->close(c1);
	drv->close(c2);
	tdb_close(&t1);
	tdb_close(&t2);
}
END_TEST

START_TEST(fingerprint_ignores_the_schema_name)
{
	struct tdb t;
	char h1[65], h2[65], h3[65], *u1, *u2, *u3;
	struct fl_conn *c1, *c2, *c3;

	tdb_open(&t, "");
	raw_exec(t.pg, "CREATE SCHEMA tenant_a; SET search_path = tenant_a");
	raw_exec(t.pg, schema_sql);
	raw_exec(t.pg, "CREATE SCHEMA tenant_b; SET search_path = tenant_b");
	raw_exec(t.pg, schema_sql);
	u1 = make_url("postgres", t.name, "&schema=tenant_a");
	u2 = make_url("postgres", t.name, "&schema=tenant_b");
	c1 = dconnect(u1);
	c2 = dconnect(u2);
	fingerprint(c1, h1, NULL);
	fingerprint(c2, h2, NULL);
	ck_assert_str_eq(h1, h2);
	/* A name the server quotes (in a function's header, say) is the same
	 * "<schema>." too. */
	raw_exec(t.pg, "CREATE SCHEMA \"Tenant C\"; SET search_path = \"Tenant C\"");
	raw_exec(t.pg, schema_sql);
	u3 = make_url("postgres", t.name, "&schema=Tenant%20C");
	c3 = dconnect(u3);
	fingerprint(c3, h3, NULL);
	ck_assert_str_eq(h1, h3);
	drv->close(c3);
	free(u3);
	/* It reads the schema it is given: neither public (empty here) ... */
	c3 = dconnect(t.url);
	fingerprint(c3, h3, NULL);
	ck_assert_str_ne(h1, h3);
	/* ... nor the other tenant's. */
	raw_exec(t.pg, "ALTER TABLE tenant_b.posts ADD COLUMN title text");
	fingerprint(c1, h3, NULL);
	ck_assert_str_eq(h1, h3);
	fingerprint(c2, h2, NULL);
	ck_assert_str_ne(h1, h2);
	drv->close(c1);
	drv->close(c2);
	drv->close(c3);
	free(u1);
	free(u2);
	tdb_close(&t);
}
END_TEST

/* A first deploy's emptiness check reads less of the catalog than the
 * fingerprint: each kind of object makes both say "not empty", and only
 * history tables (or nothing) make both say "empty". */
START_TEST(schema_empty_agrees_with_the_fingerprint)
{
	static const struct {
		const char *sql;
		bool empty;
	} cases[] = {
	    {"", true},
	    {"CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY); "
	     "CREATE TABLE _flotilla_events (id serial PRIMARY KEY)",
	     true},
	    {"CREATE TABLE t (id int)", false},
	    {"CREATE TABLE p (a int) PARTITION BY RANGE (a)", false},
	    {"CREATE UNLOGGED TABLE u (a int)", false},
	    {"CREATE VIEW v AS SELECT 1 AS x", false},
	    {"CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x", false},
	    {"CREATE TYPE e AS ENUM ('a')", false},
	    {"CREATE DOMAIN d AS int CHECK (VALUE > 0)", false},
	    {"CREATE TYPE r AS RANGE (subtype = float8)", false},
	    {"CREATE TYPE c AS (a int)", false},
	    {"CREATE SEQUENCE s", false},
	    {"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", false},
	    {"CREATE AGGREGATE agg(int) (sfunc = int4pl, stype = int)", false},
	    {"CREATE EXTENSION citext", false}, /* into the first schema of search_path */
	};
	char errbuf[FL_ERRBUF_SIZE] = "", hex[65], sql[512], schema[16], *url;
	struct fl_buf dump = FL_BUF_INIT;
	struct tdb t;

	tdb_open(&t, "");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fl_conn *c;
		bool empty = !cases[i].empty;
		size_t dump_lines = 0;

		snprintf(schema, sizeof(schema), "e%zu", i);
		snprintf(sql, sizeof(sql), "CREATE SCHEMA %s; SET search_path = %s", schema,
		         schema);
		raw_exec(t.pg, sql);
		if (cases[i].sql[0] != '\0')
			raw_exec(t.pg, cases[i].sql);
		snprintf(sql, sizeof(sql), "&schema=%s", schema);
		url = make_url("postgres", t.name, sql);
		c = dconnect(url);
		ck_assert_msg(drv->schema_empty(c, &empty, errbuf) == FL_OK, "%s", errbuf);
		fingerprint(c, hex, &dump);
		for (const char *p = fl_buf_str(&dump); *p != '\0'; p++)
			dump_lines += *p == '\n';
		ck_assert_msg(empty == cases[i].empty, "'%s': empty is %d", cases[i].sql, empty);
		ck_assert_msg((dump_lines == 1) == empty, "'%s': empty %d, fingerprint:\n%s",
		              cases[i].sql, empty, fl_buf_str(&dump));
		drv->close(c);
		free(url);
	}
	/* no such schema: nothing in it */
	{
		struct fl_conn *c;
		bool empty = false;

		url = make_url("postgres", t.name, "&schema=nowhere");
		c = dconnect(url);
		ck_assert_msg(drv->schema_empty(c, &empty, errbuf) == FL_OK, "%s", errbuf);
		ck_assert(empty);
		drv->close(c);
		free(url);
	}
	fl_buf_fini(&dump);
	tdb_close(&t);
}
END_TEST

/* ---- TRANSACTION in one round trip ---- */

/* A parsed script goes as one batch (BEGIN ... COMMIT in one simple query):
 * the same rows and the same messages as statement by statement, errors
 * placed in the script, the bookkeeping or the COMMIT. */
START_TEST(tx_batch_says_whose_error)
{
	struct tdb t;
	struct fl_migration ok =
	    mig("20240101000000_it's ok", "-- CreateTable\n"
	                                  "CREATE TABLE a (id int PRIMARY KEY);\n"
	                                  "INSERT INTO a VALUES (1) -- one");
	struct fl_migration bad = mig("20240101000001_bad", "CREATE TABLE b (id int);\n"
	                                                    "-- a comment\n"
	                                                    "SELECT * FROM nope;\n");
	struct fl_migration late =
	    mig("20240101000002_late", "CREATE TABLE c (id int REFERENCES a DEFERRABLE "
	                               "INITIALLY DEFERRED);\nINSERT INTO c VALUES (2);\n");
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct fl_sql_script s1, s2, s3;
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_conn *c;
	char *v;

	ck_assert_int_eq(fl_sql_split(ok.sql, &s1, errbuf), FL_OK);
	ck_assert_int_eq(fl_sql_split(bad.sql, &s2, errbuf), FL_OK);
	ck_assert_int_eq(fl_sql_split(late.sql, &s3, errbuf), FL_OK);
	tdb_open(&t, "");
	c = dconnect(t.url);
	ensure(c);
	ck_assert_int_eq(drv->apply(c, &ok, FL_APPLY_TRANSACTION, &s1, &o, &res), FL_OK);
	v = raw_value(t.pg, "SELECT (finished_at IS NOT NULL)::text || applied_steps_count || "
	                    "coalesce(logs, 'null') FROM _prisma_migrations WHERE migration_name = "
	                    "'20240101000000_it''s ok'");
	ck_assert_str_eq(v, "true1null");
	free(v);
	v = raw_value(t.pg, "SELECT count(*) FROM a");
	ck_assert_str_eq(v, "1");
	free(v);

	ck_assert_int_eq(drv->apply(c, &bad, FL_APPLY_TRANSACTION, &s2, &o, &res), FL_ESQL);
	ck_assert_msg(strstr(res.message, "migration.sql line 3: relation \"nope\" does not exist "
	                                  "(SQLSTATE 42P01)") != NULL,
	              "%s", res.message);
	ck_assert(!relation_exists(&t, "b"));
	v = row_field(&t, bad.id, "(finished_at IS NULL)::text || applied_steps_count");
	ck_assert_str_eq(v, "true0");
	free(v);

	ck_assert_int_eq(drv->apply(c, &late, FL_APPLY_TRANSACTION, &s3, &o, &res), FL_ESQL);
	ck_assert_msg(strncmp(res.message, "COMMIT: ", 8) == 0, "%s", res.message);
	ck_assert_str_eq(res.sqlstate, "23503");
	ck_assert(!relation_exists(&t, "c"));

	fl_sql_script_fini(&s1);
	fl_sql_script_fini(&s2);
	fl_sql_script_fini(&s3);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

/* ---- regressions ---- */

/* A file our parser cannot read runs as one script; it is never known to be
 * atomic, so a lock timeout is not retried: its committed part ran once.
 * Our parser reads strings as standard_conforming_strings = on has them;
 * this database says off (split case 51). */
START_TEST(unparsed_script_is_never_retried)
{
	struct tdb t;
	struct fl_migration m = mig("20240101000000_scs", "SELECT 'a\\'b';\n"
	                                                  "INSERT INTO runs VALUES (1);\n"
	                                                  "COMMIT;\n"
	                                                  "ALTER TABLE t ADD COLUMN x int;\n");
	struct fl_apply_opts o = {50, -1, {6, 10, 20, 60000}};
	struct fl_apply_result res;
	struct fl_sql_script script;
	enum fl_apply_mode mode;
	char errbuf[FL_ERRBUF_SIZE], sql[128];
	struct fl_conn *c;
	PGconn *locker;
	enum fl_err rv;
	char *v;

	ck_assert_int_eq(fl_mode_choose(&m, m.sql, "migration.sql", &script, &mode, NULL, errbuf),
	                 FL_OK);
	ck_assert_int_eq(mode, FL_APPLY_SCRIPT);
	ck_assert(!script.parsed);
	tdb_open(&t, "");
	snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET standard_conforming_strings = off",
	         t.name);
	raw_exec(t.pg, sql);
	raw_exec(t.pg, "CREATE TABLE runs (n int); CREATE TABLE t (id int)");
	locker = raw_connect(t.url);
	raw_exec(locker, "BEGIN");
	raw_exec(locker, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
	c = dconnect(t.url);
	ensure(c);
	rv = drv->apply(c, &m, mode, &script, &o, &res);
	ck_assert_msg(rv == FL_ERETRY, "%d %s", rv, res.message);
	ck_assert_int_eq(res.attempts, 1);
	ck_assert_msg(strstr(res.message, "not retried, as the file did not parse") != NULL, "%s",
	              res.message);
	v = raw_value(t.pg, "SELECT count(*) FROM runs");
	ck_assert_str_eq(v, "1");
	free(v);
	/* It may be partly applied: a failed row, for a human to check. */
	v = row_field(&t, m.id, "(finished_at IS NULL)::text");
	ck_assert_str_eq(v, "true");
	free(v);
	raw_exec(locker, "ROLLBACK");
	PQfinish(locker);
	fl_sql_script_fini(&script);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

/* A migration interrupted halfway says how far it got, in the result and in
 * the history row's logs. */
START_TEST(interrupted_statements_say_how_far)
{
	static const char sql[] = "CREATE TABLE i1 (id int);\n"
	                          "CREATE TABLE i2 (id int);\n"
	                          "SELECT pg_sleep(30);\n"
	                          "CREATE TABLE i4 (id int);\n";
	static const char *const stmts[] = {
	    "CREATE TABLE i1 (id int)",
	    "CREATE TABLE i2 (id int)",
	    "SELECT pg_sleep(30)",
	    "CREATE TABLE i4 (id int)",
	};
	static const char want[] = "interrupted during statement 3 of 4 (line 3): 2 applied; ";
	struct tdb t;
	struct tscript ts;
	struct fl_migration m = mig("20240101000000_long", sql);
	struct fl_apply_opts o = opts();
	struct fl_apply_result res;
	struct canceler k;
	pthread_t th;
	struct fl_conn *c;
	char *v;

	m.no_transaction = true;
	script_of(&ts, sql, stmts, NULL, 4);
	tdb_open(&t, "");
	c = dconnect(t.url);
	ensure(c);
	k.c = c;
	k.url = t.url;
	pthread_create(&th, NULL, cancel_when_sleeping, &k);
	ck_assert_int_eq(drv->apply(c, &m, FL_APPLY_STATEMENTS, &ts.s, &o, &res), FL_ECANCELED);
	pthread_join(th, NULL);
	ck_assert_msg(strncmp(res.message, want, strlen(want)) == 0, "%s", res.message);
	ck_assert_msg(strstr(res.message, "57014") != NULL, "%s", res.message);
	ck_assert(relation_exists(&t, "i2") && !relation_exists(&t, "i4"));
	v = row_field(&t, m.id, "applied_steps_count || ' ' || (finished_at IS NULL)");
	ck_assert_str_eq(v, "2 true");
	free(v);
	v = row_field(&t, m.id, "logs");
	ck_assert_msg(strncmp(v, want, strlen(want)) == 0, "%s", v);
	free(v);
	drv->close(c);
	tdb_close(&t);
}
END_TEST

static Suite *postgres_suite(void)
{
	Suite *s = suite_create("postgres");
	TCase *tc = tcase_create("driver");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, url_rewrite_and_redact);
	tcase_add_test(tc, connect_auth_failure_and_unreachable);
	tcase_add_test(tc, history_ddl_is_prismas);
	tcase_add_test(tc, history_in_url_schema);
	tcase_add_test(tc, tx_success_row);
	tcase_add_test(tc, tx_failure_leaves_one_failed_row);
	tcase_add_test(tc, verify_false_rolls_back);
	tcase_add_test(tc, statements_fail_at_3_of_5);
	tcase_add_test(tc, statements_success_with_concurrent_index);
	tcase_add_test(tc, script_mode_as_prisma);
	tcase_add_test(tc, lock_timeout_retried_then_success);
	tcase_add_test(tc, lock_timeout_budget_spent);
	tcase_add_test(tc, connection_loss_reconnects_and_relocks);
	tcase_add_test(tc, statements_retry_one_statement_and_resume_after_loss);
	tcase_add_test(tc, script_connection_loss_is_not_retried);
	tcase_add_test(tc, cancel_stops_a_running_migration);
	tcase_add_test(tc, advisory_lock_excludes_a_second_deployer);
	tcase_add_test(tc, revert_deletes_rows_and_undoes_schema);
	tcase_add_test(tc, resolve_both_ways_with_refusals);
	tcase_add_test(tc, fingerprint_equal_then_drifts);
	tcase_add_test(tc, fingerprint_ignores_the_schema_name);
	tcase_add_test(tc, schema_empty_agrees_with_the_fingerprint);
	tcase_add_test(tc, tx_batch_says_whose_error);
	tcase_add_test(tc, unparsed_script_is_never_retried);
	tcase_add_test(tc, interrupted_statements_say_how_far);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	if (getenv("FL_TEST_LOG") != NULL) /* FL_TEST_LOG=1 shows the driver's retries */
		fl_log_set_level(FL_LOG_DEBUG);
	sr = srunner_create(postgres_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
