#include "pg_conn.h"

#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "pg_url.h"
#include "retry.h"

void fl_pg_first_line(const char *s, char *buf, size_t size)
{
	size_t n = 0;

	if (size == 0)
		return;
	if (s == NULL)
		s = "";
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	while (s[n] != '\0' && s[n] != '\n' && s[n] != '\r' && n + 1 < size)
		n++;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	memcpy(buf, s, n);
	buf[n] = '\0';
}

void fl_pg_error_line(const struct fl_pg_error *e, char *buf, size_t size)
{
	if (e->sqlstate[0] != '\0')
		snprintf(buf, size, "%s (SQLSTATE %s)", e->message, e->sqlstate);
	else
		snprintf(buf, size, "%s", e->message);
}

static bool state_lost(const char *st)
{
	return strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
	       strcmp(st, "57P03") == 0;
}

static bool state_transient(const char *st)
{
	return strcmp(st, "55P03") == 0 || strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0;
}

static void copy_field(char *dst, size_t size, const PGresult *res, int field)
{
	const char *v = res != NULL ? PQresultErrorField(res, field) : NULL;

	fl_pg_first_line(v, dst, size);
}

/* Fill e from a failed result (or the connection when res is NULL). */
static enum fl_err classify(struct fl_conn *c, const PGresult *res, struct fl_pg_error *e)
{
	const char *pos;

	memset(e, 0, sizeof(*e));
	if (res != NULL) {
		copy_field(e->sqlstate, sizeof(e->sqlstate), res, PG_DIAG_SQLSTATE);
		copy_field(e->message, sizeof(e->message), res, PG_DIAG_MESSAGE_PRIMARY);
		copy_field(e->detail, sizeof(e->detail), res, PG_DIAG_MESSAGE_DETAIL);
		copy_field(e->hint, sizeof(e->hint), res, PG_DIAG_MESSAGE_HINT);
		pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
		if (pos != NULL)
			e->position = (int)strtol(pos, NULL, 10);
	}
	if (e->message[0] == '\0')
		fl_pg_first_line(res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c->pg),
		                 e->message, sizeof(e->message));
	if (e->message[0] == '\0')
		snprintf(e->message, sizeof(e->message), "unknown error");

	if (PQstatus(c->pg) == CONNECTION_BAD || state_lost(e->sqlstate))
		e->kind = FL_ECONNLOST;
	else if (strcmp(e->sqlstate, "57014") == 0 && atomic_load(&c->canceled))
		e->kind = FL_ECANCELED;
	else if (state_transient(e->sqlstate))
		e->kind = FL_ERETRY;
	else
		e->kind = FL_ESQL;
	return e->kind;
}

enum fl_err fl_pg_conn_run(struct fl_conn *c, const char *sql, PGresult **last,
                           struct fl_pg_error *e)
{
	PGresult *r, *keep = NULL, *failed = NULL;

	if (last != NULL)
		*last = NULL;
	memset(e, 0, sizeof(*e));
	if (!PQsendQuery(c->pg, sql))
		return classify(c, NULL, e);
	while ((r = PQgetResult(c->pg)) != NULL) {
		switch (PQresultStatus(r)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
		case PGRES_EMPTY_QUERY:
		case PGRES_SINGLE_TUPLE:
			PQclear(keep);
			keep = r;
			break;
		case PGRES_COPY_IN:
			/* No data to send: have the server fail the COPY, as Prisma's
			 * simple_query would. */
			PQclear(r);
			PQputCopyEnd(c->pg, "COPY FROM STDIN is not supported in a migration");
			break;
		case PGRES_COPY_OUT: {
			char *buf;

			PQclear(r);
			while (PQgetCopyData(c->pg, &buf, 0) > 0)
				PQfreemem(buf);
			break;
		}
		default:
			if (failed == NULL)
				failed = r;
			else
				PQclear(r);
			break;
		}
	}
	if (failed != NULL) {
		classify(c, failed, e);
		PQclear(failed);
		PQclear(keep);
		return e->kind;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		PQclear(keep);
		return classify(c, NULL, e);
	}
	if (last != NULL)
		*last = keep;
	else
		PQclear(keep);
	return FL_OK;
}

enum fl_err fl_pg_conn_query(struct fl_conn *c, const char *sql, int nparams,
                             const char *const *params, PGresult **out, struct fl_pg_error *e)
{
	PGresult *r = PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);

	if (out != NULL)
		*out = NULL;
	memset(e, 0, sizeof(*e));
	if (r == NULL)
		return classify(c, NULL, e);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		classify(c, r, e);
		PQclear(r);
		return e->kind;
	}
	if (out != NULL)
		*out = r;
	else
		PQclear(r);
	return FL_OK;
}

void fl_pg_conn_rollback(struct fl_conn *c)
{
	PGTransactionStatusType st = PQtransactionStatus(c->pg);

	if (st == PQTRANS_INTRANS || st == PQTRANS_INERROR)
		PQclear(PQexec(c->pg, "ROLLBACK"));
}

static void on_notice(void *arg, const char *message)
{
	struct fl_conn *c = arg;
	char line[512];

	fl_pg_first_line(message, line, sizeof(line));
	fl_log_debug(c->db, "server says: %s", line);
}

static void refresh_cancel(struct fl_conn *c)
{
	PGcancel *fresh = PQgetCancel(c->pg), *old;

	pthread_mutex_lock(&c->cancel_mu);
	old = c->cancel;
	c->cancel = fresh;
	pthread_mutex_unlock(&c->cancel_mu);
	PQfreeCancel(old);
}

/* Per-session state: search_path as Prisma sets it, who we are, how to cancel. */
static enum fl_err setup_session(struct fl_conn *c, struct fl_pg_error *e)
{
	PGresult *r = NULL;
	enum fl_err rv;

	if (c->schema_given) {
		size_t n = strlen(c->qschema) + 32;
		char *sql = fl_malloc(n);

		snprintf(sql, n, "SET search_path = %s", c->qschema);
		rv = fl_pg_conn_run(c, sql, NULL, e);
		free(sql);
		if (rv != FL_OK)
			return rv;
	}
	rv = fl_pg_conn_query(c,
	                      "SELECT pg_backend_pid(), backend_start FROM pg_stat_activity "
	                      "WHERE pid = pg_backend_pid()",
	                      0, NULL, &r, e);
	if (rv != FL_OK)
		return rv;
	c->backend_pid = 0;
	c->backend_start[0] = '\0';
	if (PQntuples(r) == 1) {
		c->backend_pid = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
		snprintf(c->backend_start, sizeof(c->backend_start), "%s", PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	refresh_cancel(c);
	return FL_OK;
}

static bool is_auth_failure(const char *msg)
{
	return strstr(msg, "authentication failed") != NULL ||
	       strstr(msg, "no password supplied") != NULL ||
	       (strstr(msg, "role \"") != NULL && strstr(msg, "\" does not exist") != NULL);
}

static char *quote_ident(PGconn *pg, const char *name)
{
	char *q = PQescapeIdentifier(pg, name, strlen(name)), *copy;

	if (q == NULL)
		return NULL;
	copy = fl_strdup(q);
	PQfreemem(q);
	return copy;
}

static char *qualify(const char *qschema, const char *table)
{
	size_t n = strlen(qschema) + strlen(table) + 4;
	char *s = fl_malloc(n);

	snprintf(s, n, "%s.\"%s\"", qschema, table);
	return s;
}

static void scrub_password(const char *url, char *errbuf)
{
	char *decoded = NULL, *raw = fl_pg_url_password(url, &decoded);

	if (raw != NULL) {
		fl_pg_url_scrub(errbuf, FL_ERRBUF_SIZE, raw);
		fl_pg_url_scrub(errbuf, FL_ERRBUF_SIZE, decoded);
		sodium_memzero(raw, strlen(raw));
		free(raw);
	}
	if (decoded != NULL) {
		sodium_memzero(decoded, strlen(decoded));
		free(decoded);
	}
}

enum fl_err fl_pg_conn_open(const char *url, struct fl_conn **out, char *errbuf)
{
	struct fl_conn *c = NULL;
	struct fl_pg_error e;
	char *lurl = NULL, *schema = NULL, line[FL_ERRBUF_SIZE];
	enum fl_err rv = FL_OK;

	*out = NULL;
	if (sodium_init() < 0)
		return fl_errf(errbuf, FL_ECONNECT, "cannot initialise libsodium");
	c = fl_calloc(1, sizeof(*c));
	pthread_mutex_init(&c->cancel_mu, NULL);
	atomic_init(&c->canceled, false);
	c->shown = fl_pg_url_redact(url);
	if ((rv = fl_pg_url_rewrite(url, &lurl, &schema, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "cannot connect to '%s'", c->shown);
		goto out;
	}
	c->schema_given = schema != NULL;
	c->schema = schema != NULL ? schema : fl_strdup("public");
	c->pg = PQconnectdb(lurl);
	sodium_memzero(lurl, strlen(lurl));
	free(lurl);
	if (c->pg == NULL) {
		rv =
		    fl_errf(errbuf, FL_ECONNECT, "cannot connect to '%s': out of memory", c->shown);
		goto out;
	}
	if (PQstatus(c->pg) != CONNECTION_OK && fl_pg_url_userinfo_unencoded(url)) {
		/* libpq read the URL another way; its message may quote the password. */
		rv = fl_errf(errbuf, FL_ECONNECT,
		             "cannot connect to '%s': the URL does not parse as meant: "
		             "percent-encode '?', '#', '/' and '@' in the user name and password "
		             "(e.g. '?' as %%3F)",
		             c->shown);
		goto out;
	}
	if (PQstatus(c->pg) != CONNECTION_OK) {
		fl_pg_first_line(PQerrorMessage(c->pg), line, sizeof(line));
		rv = fl_errf(errbuf, is_auth_failure(line) ? FL_EAUTH : FL_ECONNECT,
		             "cannot connect to '%s': %s", c->shown, line);
		goto out;
	}
	c->db = fl_strdup(PQdb(c->pg));
	PQsetNoticeProcessor(c->pg, on_notice, c);
	if ((c->qschema = quote_ident(c->pg, c->schema)) == NULL) {
		rv =
		    fl_errf(errbuf, FL_EINVAL, "cannot connect to '%s': bad schema name", c->shown);
		goto out;
	}
	c->qmig = qualify(c->qschema, FL_PG_MIGRATIONS_TABLE);
	c->qevents = qualify(c->qschema, FL_PG_EVENTS_TABLE);
	if (setup_session(c, &e) != FL_OK) {
		fl_pg_error_line(&e, line, sizeof(line));
		rv = fl_errf(errbuf, FL_ECONNECT, "cannot connect to '%s': %s", c->shown, line);
		goto out;
	}
	*out = c;
	c = NULL;
out:
	if (rv != FL_OK)
		scrub_password(url, errbuf);
	fl_pg_conn_close(c);
	return rv;
}

void fl_pg_conn_close(struct fl_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->cancel_mu);
	PQfreeCancel(c->cancel);
	c->cancel = NULL;
	pthread_mutex_unlock(&c->cancel_mu);
	PQfinish(c->pg);
	pthread_mutex_destroy(&c->cancel_mu);
	free(c->schema);
	free(c->qschema);
	free(c->qmig);
	free(c->qevents);
	free(c->shown);
	free(c->db);
	free(c);
}

/* The session we lost may live on in the server (a half-open TCP
 * connection), holding the migration lock or still running our SQL. End it,
 * so what follows waits on nothing of ours and finds a settled state. */
static void end_orphan(struct fl_conn *c, int pid, const char *started)
{
	char spid[16];
	const char *params[2] = {spid, started};
	struct fl_pg_error e;

	if (pid <= 0 || started[0] == '\0' || pid == c->backend_pid)
		return;
	snprintf(spid, sizeof(spid), "%d", pid);
	if (fl_pg_conn_query(c,
	                     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	                     "WHERE pid = $1::int AND backend_start = $2::timestamptz",
	                     2, params, NULL, &e) != FL_OK)
		fl_log_debug(c->db, "cannot end our previous session (pid %d): %s", pid, e.message);
}

enum fl_err fl_pg_conn_reset(struct fl_conn *c, char *errbuf)
{
	struct fl_pg_error e;
	char old_start[sizeof(c->backend_start)], line[FL_ERRBUF_SIZE];
	int old_pid = c->backend_pid;

	if (atomic_load(&c->canceled))
		return fl_errf(errbuf, FL_ECANCELED, "canceled");
	memcpy(old_start, c->backend_start, sizeof(old_start));
	PQreset(c->pg);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		fl_pg_first_line(PQerrorMessage(c->pg), line, sizeof(line));
		return fl_errf(errbuf, FL_ECONNLOST, "cannot reconnect to '%s': %s", c->shown,
		               line);
	}
	if (setup_session(c, &e) != FL_OK) {
		fl_pg_error_line(&e, line, sizeof(line));
		return fl_errf(errbuf, FL_ECONNLOST, "cannot reconnect to '%s': %s", c->shown,
		               line);
	}
	end_orphan(c, old_pid, old_start);
	fl_log_info(c->db, "reconnected to '%s'", c->shown);
	if (c->locked) {
		c->locked = false;
		return fl_pg_conn_lock(c, c->lock_wait_ms, errbuf);
	}
	return FL_OK;
}

static enum fl_err lock_error(struct fl_conn *c, const struct fl_pg_error *e, char *errbuf)
{
	char line[FL_ERRBUF_SIZE];

	if (e->kind == FL_ECANCELED)
		return fl_errf(errbuf, FL_ECANCELED,
		               "canceled while waiting for the migration lock");
	if (strcmp(e->sqlstate, "57014") == 0 || strcmp(e->sqlstate, "55P03") == 0)
		return fl_errf(errbuf, FL_ELOCKED,
		               "another deployer holds the migration lock (pg_advisory_lock %d) on "
		               "'%s'",
		               FL_PG_LOCK_KEY, c->db);
	fl_pg_error_line(e, line, sizeof(line));
	return fl_errf(errbuf, e->kind, "cannot take the migration lock on '%s': %s", c->db, line);
}

enum fl_err fl_pg_conn_lock(struct fl_conn *c, int64_t wait_ms, char *errbuf)
{
	struct fl_pg_error e;
	PGresult *r = NULL;
	char sql[96];
	enum fl_err rv;
	bool got;

	if (c->locked)
		return FL_OK;
	if (atomic_load(&c->canceled))
		return fl_errf(errbuf, FL_ECANCELED, "canceled");
	c->lock_wait_ms = wait_ms;
	if (wait_ms <= 0) {
		rv = fl_pg_conn_query(c, "SELECT pg_try_advisory_lock(72707369)", 0, NULL, &r, &e);
	} else {
		/* Prisma waits on pg_advisory_lock() under a client-side timeout; a
		 * statement_timeout does the same and wakes us the moment it frees. */
		snprintf(sql, sizeof(sql), "SET statement_timeout = %lld; SET lock_timeout = 0",
		         (long long)(wait_ms > INT_MAX ? INT_MAX : wait_ms));
		if ((rv = fl_pg_conn_run(c, sql, NULL, &e)) == FL_OK) {
			rv = fl_pg_conn_query(c, "SELECT pg_advisory_lock(72707369)::text", 0, NULL,
			                      &r, &e);
			if (PQstatus(c->pg) == CONNECTION_OK) {
				struct fl_pg_error ignored;

				(void)fl_pg_conn_run(c,
				                     "RESET statement_timeout; RESET lock_timeout",
				                     NULL, &ignored);
			}
		}
	}
	if (rv != FL_OK)
		return lock_error(c, &e, errbuf);
	got = wait_ms > 0 || (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0);
	PQclear(r);
	if (!got)
		return fl_errf(errbuf, FL_ELOCKED,
		               "another deployer holds the migration lock (pg_advisory_lock %d) on "
		               "'%s'",
		               FL_PG_LOCK_KEY, c->db);
	c->locked = true;
	return FL_OK;
}

enum fl_err fl_pg_conn_unlock(struct fl_conn *c, char *errbuf)
{
	struct fl_pg_error e;
	char line[FL_ERRBUF_SIZE];

	if (!c->locked)
		return FL_OK;
	c->locked = false;
	if (PQstatus(c->pg) != CONNECTION_OK)
		return FL_OK; /* the session, and its lock, are gone */
	if (fl_pg_conn_query(c, "SELECT pg_advisory_unlock(72707369)", 0, NULL, NULL, &e) !=
	    FL_OK) {
		fl_pg_error_line(&e, line, sizeof(line));
		return fl_errf(errbuf, e.kind, "cannot release the migration lock on '%s': %s",
		               c->db, line);
	}
	return FL_OK;
}

void fl_pg_conn_cancel(struct fl_conn *c)
{
	char buf[256];

	if (c == NULL)
		return;
	atomic_store(&c->canceled, true);
	pthread_mutex_lock(&c->cancel_mu);
	if (c->cancel != NULL && !PQcancel(c->cancel, buf, sizeof(buf)))
		fl_log_debug(c->db, "cancel request failed: %s", buf);
	pthread_mutex_unlock(&c->cancel_mu);
}
