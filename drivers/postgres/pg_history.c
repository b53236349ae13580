#include "pg_history.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "mem.h"

/* Prisma's DDL for PostgreSQL, column for column (create_migrations_table in
 * sql-schema-connector/src/flavour/postgres.rs), with the table qualified. */
#define PRISMA_TABLE_DDL                                                                           \
	"CREATE TABLE %s (\n"                                                                      \
	"    id                      VARCHAR(36) PRIMARY KEY NOT NULL,\n"                          \
	"    checksum                VARCHAR(64) NOT NULL,\n"                                      \
	"    finished_at             TIMESTAMPTZ,\n"                                               \
	"    migration_name          VARCHAR(255) NOT NULL,\n"                                     \
	"    logs                    TEXT,\n"                                                      \
	"    rolled_back_at          TIMESTAMPTZ,\n"                                               \
	"    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),\n"                        \
	"    applied_steps_count     INTEGER NOT NULL DEFAULT 0\n"                                 \
	")"

/* flotilla's own facts, which Prisma keeps nowhere (rollbacks, resolves), live
 * in a schema of their own, one per database, never in the application's
 * schema: Prisma introspects every table there. Rows are keyed by the
 * tenant's schema, so tenants sharing a database share the table. event is
 * 'rolled_back', 'resolved_applied' or 'resolved_rolled_back'. The identity
 * column needs no privilege on its sequence, only INSERT on the table. */
#define EVENTS_SCHEMA "_flotilla"
#define EVENTS_QNAME  "\"_flotilla\".events"
#define EVENTS_TABLE_DDL                                                                           \
	"CREATE TABLE IF NOT EXISTS \"_flotilla\".events (\n"                                      \
	"    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"                   \
	"    at              TIMESTAMPTZ NOT NULL DEFAULT now(),\n"                                \
	"    schema_name     TEXT NOT NULL,\n"                                                     \
	"    migration_name  VARCHAR(255) NOT NULL,\n"                                             \
	"    event           TEXT NOT NULL,\n"                                                     \
	"    checksum        VARCHAR(64),\n"                                                       \
	"    detail          TEXT\n"                                                               \
	");\n"                                                                                     \
	"CREATE INDEX IF NOT EXISTS events_schema_name_idx ON \"_flotilla\".events "               \
	"(schema_name, migration_name)"

/* What older flotilla kept in the application's schema, as it created it. */
#define LEGACY_TABLE "_flotilla_events"

/* Cell (row, col) of r, "" when r has no such cell (or it is NULL): a server
 * that answers otherwise than asked gives wrong data here, never a crash. */
static const char *val(const PGresult *r, int row, int col)
{
	if (r == NULL || row < 0 || row >= PQntuples(r) || col < 0 || col >= PQnfields(r))
		return "";
	return PQgetvalue(r, row, col);
}

static char *sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *sqlf(const char *fmt, ...)
{
	struct fl_buf b = FL_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	fl_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return fl_buf_detach(&b);
}

/* Run a formatted, parameterless statement. */
static enum fl_err runf(struct fl_conn *c, struct fl_pg_error *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum fl_err runf(struct fl_conn *c, struct fl_pg_error *e, const char *fmt, ...)
{
	struct fl_buf b = FL_BUF_INIT;
	enum fl_err rv;
	va_list ap;

	va_start(ap, fmt);
	fl_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	rv = fl_pg_conn_run(c, fl_buf_str(&b), NULL, e);
	fl_buf_fini(&b);
	return rv;
}

static enum fl_err query(struct fl_conn *c, char *sql, int n, const char *const *params,
                         PGresult **out, struct fl_pg_error *e)
{
	enum fl_err rv = fl_pg_conn_query(c, sql, n, params, out, e);

	free(sql);
	return rv;
}

static enum fl_err fail(char *errbuf, const struct fl_pg_error *e, const char *what,
                        const char *name)
{
	char line[FL_ERRBUF_SIZE];

	fl_pg_error_line(e, line, sizeof(line));
	if (name != NULL)
		return fl_errf(errbuf, e->kind, "cannot %s '%s': %s", what, name, line);
	return fl_errf(errbuf, e->kind, "cannot %s: %s", what, line);
}

/* Whether a relation exists, by its quoted qualified name. */
static enum fl_err exists(struct fl_conn *c, const char *qname, bool *yes, struct fl_pg_error *e)
{
	const char *params[1] = {qname};
	PGresult *r;
	enum fl_err rv;

	rv = fl_pg_conn_query(c, "SELECT to_regclass($1) IS NOT NULL", 1, params, &r, e);
	if (rv != FL_OK)
		return rv;
	*yes = strcmp(val(r, 0, 0), "t") == 0;
	PQclear(r);
	return FL_OK;
}

/* "schema"."_flotilla_events", where older flotilla kept its events; caller frees. */
static char *legacy_qname(const struct fl_conn *c)
{
	return sqlf("%s.\"" LEGACY_TABLE "\"", c->qschema);
}

enum fl_err fl_pg_history_ensure(struct fl_conn *c, char *errbuf)
{
	const char *params[2] = {c->schema, c->qmig};
	struct fl_pg_error e;
	PGresult *r = NULL;
	bool have_schema, have_table;
	enum fl_err rv;

	/* The common case, everything there, in one round trip. */
	rv = fl_pg_conn_query(c,
	                      "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), "
	                      "to_regclass($2) IS NOT NULL",
	                      2, params, &r, &e);
	if (rv != FL_OK)
		goto out;
	have_schema = strcmp(val(r, 0, 0), "t") == 0;
	have_table = strcmp(val(r, 0, 1), "t") == 0;
	PQclear(r);
	if (have_schema && have_table)
		return FL_OK;
	if ((rv = fl_pg_conn_run(c, "BEGIN", NULL, &e)) != FL_OK)
		goto out;
	/* As Prisma's setup_connection: create the schema when it is missing. */
	if (!have_schema &&
	    (rv = runf(c, &e, "CREATE SCHEMA IF NOT EXISTS %s", c->qschema)) != FL_OK)
		goto out;
	if ((rv = exists(c, c->qmig, &have_table, &e)) != FL_OK)
		goto out;
	if (!have_table && (rv = runf(c, &e, PRISMA_TABLE_DDL, c->qmig)) != FL_OK)
		goto out;
	rv = fl_pg_conn_run(c, "COMMIT", NULL, &e);
out:
	if (rv != FL_OK) {
		fl_pg_conn_rollback(c);
		return fail(errbuf, &e, "create the history table in schema", c->schema);
	}
	return FL_OK;
}

/* One row of facts about our events schema, the role and the database. */
static const char events_state_sql[] =
    "SELECT n.oid IS NOT NULL, t.oid IS NOT NULL,"
    " has_database_privilege(current_database(), 'CREATE'),"
    " n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE'),"
    " n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'CREATE'),"
    " t.oid IS NOT NULL AND has_table_privilege(t.oid, 'INSERT'),"
    " current_database(), current_user "
    "FROM (SELECT 1) one"
    " LEFT JOIN pg_namespace n ON n.nspname = '" EVENTS_SCHEMA "'"
    " LEFT JOIN pg_class t ON t.relnamespace = n.oid AND t.relname = 'events'";

/* The privilege the role lacks to record events, as a message; FL_OK if none. */
static enum fl_err events_refusal(const PGresult *r, char *errbuf)
{
	bool schema = strcmp(val(r, 0, 0), "t") == 0;
	bool table = strcmp(val(r, 0, 1), "t") == 0;
	bool db_create = strcmp(val(r, 0, 2), "t") == 0;
	bool usage = strcmp(val(r, 0, 3), "t") == 0;
	bool schema_create = strcmp(val(r, 0, 4), "t") == 0;
	bool insert = strcmp(val(r, 0, 5), "t") == 0;
	char db[200], role[200];
	const char *v;

	v = val(r, 0, 6);
	fl_err_quote(db, sizeof(db), v, strlen(v));
	v = val(r, 0, 7);
	fl_err_quote(role, sizeof(role), v, strlen(v));
	if (!schema && !db_create)
		return fl_errf(errbuf, FL_EDB,
		               "cannot create schema '" EVENTS_SCHEMA
		               "' for flotilla's own records: "
		               "permission denied for database '%s' (role '%s' needs CREATE on the "
		               "database); grant it, or have an administrator run 'CREATE "
		               "SCHEMA " EVENTS_SCHEMA "' and grant '%s' USAGE and CREATE on it",
		               db, role, role);
	if (schema && !usage)
		return fl_errf(errbuf, FL_EDB,
		               "cannot use schema '" EVENTS_SCHEMA "' for flotilla's own records: "
		               "permission denied (role '%s' needs USAGE on schema '" EVENTS_SCHEMA
		               "')",
		               role);
	if (schema && !table && !schema_create)
		return fl_errf(
		    errbuf, FL_EDB,
		    "cannot create table '" EVENTS_SCHEMA ".events' for flotilla's own "
		    "records: permission denied (role '%s' needs CREATE on schema '" EVENTS_SCHEMA
		    "')",
		    role);
	if (table && !insert)
		return fl_errf(errbuf, FL_EDB,
		               "cannot write to '" EVENTS_SCHEMA
		               ".events', flotilla's own records: "
		               "permission denied (role '%s' needs INSERT on table '" EVENTS_SCHEMA
		               ".events')",
		               role);
	return FL_OK;
}

/* Move what an older flotilla kept in the application's schema into our own
 * table, and drop it there. One transaction: all of it or none. */
static enum fl_err move_legacy(struct fl_conn *c, struct fl_pg_error *e)
{
	const char *params[1] = {c->schema};
	char *legacy = legacy_qname(c);
	PGresult *r = NULL;
	enum fl_err rv;

	if ((rv = fl_pg_conn_run(c, "BEGIN", NULL, e)) != FL_OK)
		goto out;
	rv = query(c,
	           sqlf("INSERT INTO " EVENTS_QNAME " (at, schema_name, migration_name, event, "
	                "checksum, detail) SELECT at, $1, migration_name, event, checksum, detail "
	                "FROM %s ORDER BY id",
	                legacy),
	           1, params, &r, e);
	if (rv != FL_OK)
		goto out;
	fl_logger_info(c->log, c->db, "moved %s event(s) from %s to " EVENTS_QNAME, PQcmdTuples(r),
	               legacy);
	PQclear(r);
	if ((rv = runf(c, e, "DROP TABLE %s", legacy)) != FL_OK)
		goto out;
	rv = fl_pg_conn_run(c, "COMMIT", NULL, e);
out:
	if (rv != FL_OK)
		fl_pg_conn_rollback(c);
	free(legacy);
	return rv;
}

/* Create what is missing of schema and table, as the state row r says. */
static enum fl_err create_events(struct fl_conn *c, const PGresult *r, struct fl_pg_error *e)
{
	enum fl_err rv;

	/* CREATE ... IF NOT EXISTS checks the privilege before the existence:
	 * only ask for what is missing. */
	if ((rv = fl_pg_conn_run(c, "BEGIN", NULL, e)) != FL_OK)
		goto out;
	if (strcmp(val(r, 0, 0), "t") != 0 &&
	    (rv = fl_pg_conn_run(c, "CREATE SCHEMA IF NOT EXISTS \"" EVENTS_SCHEMA "\"", NULL,
	                         e)) != FL_OK)
		goto out;
	if ((rv = fl_pg_conn_run(c, EVENTS_TABLE_DDL, NULL, e)) != FL_OK)
		goto out;
	rv = fl_pg_conn_run(c, "COMMIT", NULL, e);
out:
	if (rv != FL_OK)
		fl_pg_conn_rollback(c);
	return rv;
}

enum fl_err fl_pg_history_ensure_events(struct fl_conn *c, char *errbuf)
{
	struct fl_pg_error e;
	PGresult *r = NULL;
	char *legacy = legacy_qname(c);
	bool ready = false, have_legacy = false;
	enum fl_err rv;

	/* Two tenants of one database may race to create it: the loser meets a
	 * duplicate (23505 in the catalog, 42P06, 42P07), looks again and finds
	 * it there. */
	for (int tries = 0; !ready; tries++) {
		if ((rv = fl_pg_conn_query(c, events_state_sql, 0, NULL, &r, &e)) != FL_OK)
			goto fail;
		if ((rv = events_refusal(r, errbuf)) != FL_OK)
			goto out;
		ready = strcmp(val(r, 0, 1), "t") == 0;
		if (!ready && (rv = create_events(c, r, &e)) != FL_OK &&
		    (tries > 0 ||
		     (strcmp(e.sqlstate, "23505") != 0 && strcmp(e.sqlstate, "42P06") != 0 &&
		      strcmp(e.sqlstate, "42P07") != 0)))
			goto fail;
		ready = ready || rv == FL_OK;
		PQclear(r);
		r = NULL;
	}
	if ((rv = exists(c, legacy, &have_legacy, &e)) != FL_OK)
		goto fail;
	if (have_legacy && (rv = move_legacy(c, &e)) != FL_OK)
		goto fail;
	goto out;
fail:
	rv = fail(errbuf, &e, "prepare flotilla's own records in schema", EVENTS_SCHEMA);
out:
	PQclear(r);
	free(legacy);
	return rv;
}

static char *dup_value(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : fl_strdup(val(r, row, col));
}

/* An older flotilla's table in the application's schema: writers (under the
 * migration lock) move it into our own schema; readers say it is there. */
static void legacy_events(struct fl_conn *c, bool present)
{
	char errbuf[FL_ERRBUF_SIZE];

	if (!present)
		return;
	if (!c->locked) {
		fl_logger_warn(c->log, c->db,
		               "schema '%s' holds '" LEGACY_TABLE
		               "' from an older flotilla: the next "
		               "deploy, rollback or resolve moves its rows to '" EVENTS_SCHEMA
		               ".events' and drops it",
		               c->schema);
		return;
	}
	if (fl_pg_history_ensure_events(c, errbuf) != FL_OK)
		fl_logger_warn(c->log, c->db, "'" LEGACY_TABLE "' stays in schema '%s': %s",
		               c->schema, errbuf);
}

enum fl_err fl_pg_history_read(struct fl_conn *c, struct fl_history *out, char *errbuf)
{
	struct fl_pg_error e;
	PGresult *r = NULL;
	char *legacy = legacy_qname(c);
	const char *params[2] = {c->qmig, legacy};
	enum fl_err rv;
	bool have, have_legacy;
	int n;

	memset(out, 0, sizeof(*out));
	rv = fl_pg_conn_query(c, "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL",
	                      2, params, &r, &e);
	free(legacy);
	if (rv != FL_OK)
		return fail(errbuf, &e, "read the migration history of", c->db);
	have = strcmp(val(r, 0, 0), "t") == 0;
	have_legacy = strcmp(val(r, 0, 1), "t") == 0;
	PQclear(r);
	legacy_events(c, have_legacy);
	if (!have)
		return FL_OK;
	rv = query(c,
	           sqlf("SELECT id, checksum, migration_name, logs, started_at, finished_at, "
	                "rolled_back_at, applied_steps_count FROM %s ORDER BY started_at, id",
	                c->qmig),
	           0, NULL, &r, &e);
	if (rv != FL_OK)
		return fail(errbuf, &e, "read the migration history of", c->db);
	out->table_exists = true;
	n = PQntuples(r);
	out->rows = fl_calloc((size_t)n, sizeof(*out->rows));
	out->count = (size_t)n;
	for (int i = 0; i < n; i++) {
		struct fl_history_row *row = &out->rows[i];

		row->id = dup_value(r, i, 0);
		row->checksum = dup_value(r, i, 1);
		row->migration_name = dup_value(r, i, 2);
		row->logs = dup_value(r, i, 3);
		row->started_at = dup_value(r, i, 4);
		row->finished_at = dup_value(r, i, 5);
		row->rolled_back_at = dup_value(r, i, 6);
		row->applied_steps_count = (int)strtol(val(r, i, 7), NULL, 10);
	}
	PQclear(r);
	return FL_OK;
}

static enum fl_err add_event(struct fl_conn *c, const char *name, const char *event,
                             const char *checksum, const char *detail, struct fl_pg_error *e)
{
	const char *params[5] = {c->schema, name, event, checksum, detail};

	return fl_pg_conn_query(c,
	                        "INSERT INTO " EVENTS_QNAME " (schema_name, migration_name, event, "
	                        "checksum, detail) VALUES ($1, $2, $3, $4, $5)",
	                        5, params, NULL, e);
}

enum fl_err fl_pg_history_mark_applied(struct fl_conn *c, const char *name, const char *checksum,
                                       char *errbuf)
{
	const char *params[3] = {name, NULL, NULL};
	char id[FL_PG_UUID_LEN + 1], detail[64];
	struct fl_pg_error e;
	PGresult *r = NULL;
	long finished, marked;
	enum fl_err rv;

	/* Prisma creates the table here when it is missing (baseline_initialize);
	 * our own records must be writable before anything changes. */
	if ((rv = fl_pg_history_ensure(c, errbuf)) != FL_OK ||
	    (rv = fl_pg_history_ensure_events(c, errbuf)) != FL_OK)
		return rv;
	if ((rv = fl_pg_conn_run(c, "BEGIN", NULL, &e)) != FL_OK)
		goto fail;
	rv = query(c,
	           sqlf("SELECT count(*) FILTER (WHERE finished_at IS NOT NULL) FROM %s "
	                "WHERE migration_name = $1",
	                c->qmig),
	           1, params, &r, &e);
	if (rv != FL_OK)
		goto fail;
	finished = strtol(val(r, 0, 0), NULL, 10);
	PQclear(r);
	if (finished > 0) {
		fl_pg_conn_rollback(c);
		return fl_errf(errbuf, FL_ESTATE,
		               "migration '%s' is already recorded as applied in the database",
		               name);
	}
	rv = query(c,
	           sqlf("UPDATE %s SET rolled_back_at = now() WHERE migration_name = $1 "
	                "AND finished_at IS NULL AND rolled_back_at IS NULL",
	                c->qmig),
	           1, params, &r, &e);
	if (rv != FL_OK)
		goto fail;
	marked = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	fl_pg_history_new_id(id);
	params[0] = id;
	params[1] = checksum;
	params[2] = name;
	rv = query(c,
	           sqlf("INSERT INTO %s (id, checksum, logs, started_at, finished_at, "
	                "migration_name) VALUES ($1, $2, '', now(), now(), $3)",
	                c->qmig),
	           3, params, NULL, &e);
	if (rv != FL_OK)
		goto fail;
	snprintf(detail, sizeof(detail), "%ld failed row(s) marked rolled back", marked);
	if ((rv = add_event(c, name, "resolved_applied", checksum, detail, &e)) != FL_OK ||
	    (rv = fl_pg_conn_run(c, "COMMIT", NULL, &e)) != FL_OK)
		goto fail;
	return FL_OK;
fail:
	fl_pg_conn_rollback(c);
	return fail(errbuf, &e, "mark applied", name);
}

enum fl_err fl_pg_history_mark_rolled_back(struct fl_conn *c, const char *name, char *errbuf)
{
	const char *params[1] = {name};
	struct fl_pg_error e;
	PGresult *r = NULL;
	long total, unfinished, marked;
	enum fl_err rv;
	bool have;

	if ((rv = exists(c, c->qmig, &have, &e)) != FL_OK)
		goto fail;
	if (!have)
		return fl_errf(errbuf, FL_ESTATE,
		               "migration '%s' cannot be marked rolled back: it was never applied "
		               "to the database",
		               name);
	if ((rv = fl_pg_history_ensure_events(c, errbuf)) != FL_OK)
		return rv;
	if ((rv = fl_pg_conn_run(c, "BEGIN", NULL, &e)) != FL_OK)
		goto fail;
	rv = query(c,
	           sqlf("SELECT count(*), count(*) FILTER (WHERE finished_at IS NULL) FROM %s "
	                "WHERE migration_name = $1",
	                c->qmig),
	           1, params, &r, &e);
	if (rv != FL_OK)
		goto fail;
	total = strtol(val(r, 0, 0), NULL, 10);
	unfinished = strtol(val(r, 0, 1), NULL, 10);
	PQclear(r);
	if (total == 0 || unfinished == 0) {
		fl_pg_conn_rollback(c);
		return fl_errf(errbuf, FL_ESTATE, "migration '%s' cannot be marked rolled back: %s",
		               name,
		               total == 0 ? "it was never applied to the database"
		                          : "it is not in a failed state");
	}
	rv = query(c,
	           sqlf("UPDATE %s SET rolled_back_at = now() WHERE migration_name = $1 "
	                "AND finished_at IS NULL AND rolled_back_at IS NULL",
	                c->qmig),
	           1, params, &r, &e);
	if (rv != FL_OK)
		goto fail;
	marked = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	/* Failed rows that were all rolled back already: Prisma succeeds, changing nothing. */
	if (marked > 0) {
		char detail[64];

		snprintf(detail, sizeof(detail), "%ld failed row(s) marked rolled back", marked);
		if ((rv = add_event(c, name, "resolved_rolled_back", NULL, detail, &e)) != FL_OK)
			goto fail;
	} else {
		fl_logger_info(c->log, name, "no failed rows left to mark rolled back");
	}
	if ((rv = fl_pg_conn_run(c, "COMMIT", NULL, &e)) != FL_OK)
		goto fail;
	return FL_OK;
fail:
	fl_pg_conn_rollback(c);
	return fail(errbuf, &e, "mark rolled back", name);
}

void fl_pg_history_new_id(char out[FL_PG_UUID_LEN + 1])
{
	unsigned char b[16];

	randombytes_buf(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 (RFC 4122) */
	snprintf(out, FL_PG_UUID_LEN + 1,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
	         b[15]);
}

enum fl_err fl_pg_history_start(struct fl_conn *c, const char *id, const char *name,
                                const char *checksum, char *started_at, struct fl_pg_error *e)
{
	const char *params[3] = {id, checksum, name};
	PGresult *r = NULL;
	enum fl_err rv;

	started_at[0] = '\0';
	rv = query(c,
	           sqlf("INSERT INTO %s (id, checksum, migration_name) VALUES ($1, $2, $3) "
	                "ON CONFLICT (id) DO NOTHING RETURNING started_at",
	                c->qmig),
	           3, params, &r, e);
	if (rv != FL_OK)
		return rv;
	if (PQntuples(r) == 1)
		snprintf(started_at, 64, "%s", val(r, 0, 0));
	PQclear(r);
	return FL_OK;
}

enum fl_err fl_pg_history_start_sql(struct fl_conn *c, const char *id, const char *name,
                                    const char *checksum, struct fl_buf *out)
{
	char *lname = PQescapeLiteral(c->pg, name, strlen(name));

	/* id and checksum are ours: hex digits and dashes, safe as literals. The
	 * name libpq quotes, or refuses (not valid in the client encoding). */
	if (lname == NULL)
		return FL_EINVAL;
	fl_buf_printf(out,
	              "INSERT INTO %s (id, checksum, migration_name) VALUES ('%s', '%s', %s) "
	              "ON CONFLICT (id) DO NOTHING RETURNING started_at",
	              c->qmig, id, checksum, lname);
	PQfreemem(lname);
	return FL_OK;
}

void fl_pg_history_finish_sql(struct fl_conn *c, const char *id, struct fl_buf *out)
{
	fl_buf_printf(out,
	              "UPDATE %s SET finished_at = clock_timestamp(), "
	              "applied_steps_count = applied_steps_count + 1 "
	              "WHERE id = '%s' AND finished_at IS NULL",
	              c->qmig, id);
}

char *fl_pg_history_steps_sql(struct fl_conn *c, const char *id, int steps)
{
	/* id is our own UUID: hex digits and dashes, safe as a literal. */
	return sqlf("UPDATE %s SET applied_steps_count = %d WHERE id = '%s'", c->qmig, steps, id);
}

enum fl_err fl_pg_history_set_steps(struct fl_conn *c, const char *id, int steps,
                                    struct fl_pg_error *e)
{
	char n[16];
	const char *params[2] = {id, n};

	snprintf(n, sizeof(n), "%d", steps);
	return query(c, sqlf("UPDATE %s SET applied_steps_count = $2::int WHERE id = $1", c->qmig),
	             2, params, NULL, e);
}

enum fl_err fl_pg_history_finish(struct fl_conn *c, const char *id, bool count_step,
                                 struct fl_pg_error *e)
{
	const char *params[1] = {id};

	/* Guarded by finished_at IS NULL: repeating it after a lost reply is harmless. */
	return query(c,
	             sqlf("UPDATE %s SET finished_at = clock_timestamp(), "
	                  "applied_steps_count = applied_steps_count + %d "
	                  "WHERE id = $1 AND finished_at IS NULL",
	                  c->qmig, count_step ? 1 : 0),
	             1, params, NULL, e);
}

enum fl_err fl_pg_history_fail(struct fl_conn *c, const char *id, const char *logs,
                               struct fl_pg_error *e)
{
	const char *params[2] = {id, logs};

	return query(c, sqlf("UPDATE %s SET logs = $2 WHERE id = $1", c->qmig), 2, params, NULL, e);
}

enum fl_err fl_pg_history_insert_failed(struct fl_conn *c, const char *id, const char *name,
                                        const char *checksum, const char *started_at,
                                        const char *logs, struct fl_pg_error *e)
{
	const char *params[5] = {id, checksum, name, logs,
	                         started_at != NULL && started_at[0] != '\0' ? started_at : NULL};

	return query(c,
	             sqlf("INSERT INTO %s (id, checksum, migration_name, logs, started_at) "
	                  "VALUES ($1, $2, $3, $4, coalesce($5::timestamptz, now())) "
	                  "ON CONFLICT (id) DO UPDATE SET logs = EXCLUDED.logs "
	                  "WHERE %s.finished_at IS NULL",
	                  c->qmig, c->qmig),
	             5, params, NULL, e);
}

enum fl_err fl_pg_history_row(struct fl_conn *c, const char *id, struct fl_pg_row_state *st,
                              struct fl_pg_error *e)
{
	const char *params[1] = {id};
	PGresult *r = NULL;
	enum fl_err rv;

	memset(st, 0, sizeof(*st));
	rv = query(c,
	           sqlf("SELECT finished_at IS NOT NULL, applied_steps_count, "
	                "rolled_back_at IS NOT NULL FROM %s WHERE id = $1",
	                c->qmig),
	           1, params, &r, e);
	if (rv != FL_OK)
		return rv;
	if (PQntuples(r) == 1) {
		st->exists = true;
		st->finished = strcmp(val(r, 0, 0), "t") == 0;
		st->steps = (int)strtol(val(r, 0, 1), NULL, 10);
		st->rolled_back = strcmp(val(r, 0, 2), "t") == 0;
	}
	PQclear(r);
	return FL_OK;
}

enum fl_err fl_pg_history_count(struct fl_conn *c, const char *name, long *count,
                                struct fl_pg_error *e)
{
	const char *params[1] = {name};
	PGresult *r = NULL;
	enum fl_err rv;

	*count = 0;
	rv = query(c, sqlf("SELECT count(*) FROM %s WHERE migration_name = $1", c->qmig), 1, params,
	           &r, e);
	if (rv != FL_OK)
		return rv;
	*count = strtol(val(r, 0, 0), NULL, 10);
	PQclear(r);
	return FL_OK;
}

enum fl_err fl_pg_history_forget(struct fl_conn *c, const char *name, const char *checksum,
                                 const char *detail, long *deleted, struct fl_pg_error *e)
{
	const char *params[4] = {name, checksum, detail, c->schema};
	PGresult *r = NULL;
	enum fl_err rv;

	*deleted = 0;
	/* One statement, so that it is atomic on its own and a repeat after a lost
	 * reply deletes nothing and logs nothing. */
	rv = query(c,
	           sqlf("WITH gone AS (DELETE FROM %s WHERE migration_name = $1 RETURNING 1), "
	                "n AS (SELECT count(*) AS rows FROM gone), "
	                "ev AS (INSERT INTO " EVENTS_QNAME " (schema_name, migration_name, event, "
	                "checksum, detail) SELECT $4, $1, 'rolled_back', $2, $3 || ' (' || rows || "
	                "' history row(s) deleted)' FROM n WHERE rows > 0) "
	                "SELECT rows FROM n",
	                c->qmig),
	           4, params, &r, e);
	if (rv != FL_OK)
		return rv;
	*deleted = strtol(val(r, 0, 0), NULL, 10);
	PQclear(r);
	return FL_OK;
}

enum fl_err fl_pg_history_discard(struct fl_conn *c, const char *id, struct fl_pg_error *e)
{
	const char *params[1] = {id};

	return query(c,
	             sqlf("DELETE FROM %s WHERE id = $1 AND finished_at IS NULL "
	                  "AND applied_steps_count = 0",
	                  c->qmig),
	             1, params, NULL, e);
}
