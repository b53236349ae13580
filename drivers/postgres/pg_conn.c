#include "pg_conn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "buf.h"
#include "clock.h"
#include "duration.h"
#include "log.h"
#include "mem.h"
#include "pg_url.h"

#define SLICE_MS 50 /* how often a wait looks at the cancel flag */

/* passfile for connections that keep libpq's environment out: a path that
 * can never exist (/dev/null is no directory), so libpq reads no password
 * file and says nothing about it. */
#define NO_PASSFILE "/dev/null/flotilla-no-passfile"

/* Environment variables libpq sends to the server in the startup packet,
 * ahead of anything a connection string could override. */
static const char *const startup_env[] = {"PGDATESTYLE", "PGTZ", "PGGEQO"};

/* ---- errors ---- */

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
	if (c->abandoned) {
		snprintf(e->message, sizeof(e->message),
		         "canceled, and the server did not answer within %d ms: connection closed",
		         FL_PG_CANCEL_GRACE_MS);
		e->kind = FL_ECANCELED;
		return e->kind;
	}
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

/* ---- waiting, always bounded ---- */

/*
 * The cancel handle, shared by the connection and the threads sending a
 * cancel request with it, freed by the last of them. PQcancel blocks: it
 * connects, sends, then waits for the server to close the connection, with
 * no bound when a middlebox accepts it and never answers. So it never runs
 * under a lock, nor on a thread that must get on: each request is sent by a
 * detached thread of its own, which holds a reference to the handle (the
 * connection may be closed and freed meanwhile). If that thread cannot be
 * started, the request is not sent: the sticky flag and the grace period
 * still end the wait.
 */
struct fl_pg_cancel {
	PGcancel *pg;
	atomic_int refs;
};

static struct fl_pg_cancel *cancel_new(PGcancel *pg)
{
	struct fl_pg_cancel *k;

	if (pg == NULL)
		return NULL;
	k = fl_calloc(1, sizeof(*k));
	k->pg = pg;
	atomic_init(&k->refs, 1);
	return k;
}

static void cancel_put(struct fl_pg_cancel *k)
{
	if (k != NULL && atomic_fetch_sub(&k->refs, 1) == 1) {
		PQfreeCancel(k->pg);
		free(k);
	}
}

/* Swap in the connection's new handle (NULL: none) and drop the old one. */
static void cancel_set(struct fl_conn *c, struct fl_pg_cancel *k)
{
	struct fl_pg_cancel *old;

	pthread_mutex_lock(&c->cancel_mu);
	old = c->cancel;
	c->cancel = k;
	pthread_mutex_unlock(&c->cancel_mu);
	cancel_put(old);
}

static void *cancel_main(void *arg)
{
	struct fl_pg_cancel *k = arg;
	char buf[256];

	(void)PQcancel(k->pg, buf, sizeof(buf)); /* nothing to do if it fails */
	cancel_put(k);
	return NULL;
}

/* Send the cancel request for what runs now, if we have a handle, and
 * return at once. */
static void send_cancel(struct fl_conn *c)
{
	struct fl_pg_cancel *k;
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	pthread_mutex_lock(&c->cancel_mu);
	if ((k = c->cancel) != NULL)
		atomic_fetch_add(&k->refs, 1);
	pthread_mutex_unlock(&c->cancel_mu);
	if (k == NULL)
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&th, &attr, cancel_main, k);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		fl_logger_debug(c->log, c->db, "cannot start a thread to send the cancel request");
		cancel_put(k);
	}
}

/* One statement's wait: when we first saw the cancel flag, and whether we
 * have sent the cancel again ourselves. */
struct wait {
	int64_t seen_us;
	bool resent;
};

/* The server did not answer a cancel: close the socket under libpq, which
 * then sees the connection lost; the server ends the backend (and its
 * transaction, and its locks) when it notices. */
static enum fl_err abandon(struct fl_conn *c, struct fl_pg_error *e)
{
	int sock = PQsocket(c->pg);

	if (sock >= 0)
		(void)shutdown(sock, SHUT_RDWR);
	c->abandoned = true;
	(void)PQconsumeInput(c->pg);
	fl_logger_warn(c->log, c->db,
	               "canceled statement still running after %d ms: closing the connection",
	               FL_PG_CANCEL_GRACE_MS);
	return classify(c, NULL, e);
}

/* Wait until the socket is ready for events, in slices that watch the
 * cancel flag: once canceled, send the cancel again after
 * FL_PG_CANCEL_RESEND_MS (it may have reached the server before our
 * statement did), and give up after FL_PG_CANCEL_GRACE_MS. */
static enum fl_err wait_socket(struct fl_conn *c, short events, struct wait *w,
                               struct fl_pg_error *e)
{
	int sock = PQsocket(c->pg);

	if (sock < 0)
		return classify(c, NULL, e);
	for (;;) {
		struct pollfd p = {sock, events, 0};
		int n;

		if (atomic_load(&c->canceled)) {
			int64_t now = fl_now_us();

			if (w->seen_us == 0)
				w->seen_us = now;
			if (!w->resent &&
			    now - w->seen_us >= FL_PG_CANCEL_RESEND_MS * INT64_C(1000)) {
				w->resent = true;
				send_cancel(c);
			}
			if (now - w->seen_us >= FL_PG_CANCEL_GRACE_MS * INT64_C(1000))
				return abandon(c, e);
		}
		n = poll(&p, 1, SLICE_MS);
		if (n > 0)
			return FL_OK;
		if (n < 0 && errno != EINTR) {
			(void)shutdown(sock, SHUT_RDWR);
			(void)PQconsumeInput(c->pg);
			return classify(c, NULL, e);
		}
	}
}

/* Send what is queued and wait until a result can be read without blocking. */
static enum fl_err await_idle(struct fl_conn *c, struct wait *w, struct fl_pg_error *e)
{
	enum fl_err rv;

	for (;;) {
		int f = PQflush(c->pg);

		if (f < 0)
			return classify(c, NULL, e);
		if (f == 0 && !PQisBusy(c->pg))
			return FL_OK;
		if ((rv = wait_socket(c, (short)(POLLIN | (f > 0 ? POLLOUT : 0)), w, e)) != FL_OK)
			return rv;
		if (!PQconsumeInput(c->pg))
			return classify(c, NULL, e);
	}
}

enum fl_err fl_pg_conn_await(struct fl_conn *c, struct fl_pg_error *e)
{
	struct wait w = {0, false};

	memset(e, 0, sizeof(*e));
	return await_idle(c, &w, e);
}

/* COPY FROM STDIN: no data to send; have the server fail the COPY, as
 * Prisma's simple_query would. */
static enum fl_err end_copy_in(struct fl_conn *c, struct wait *w, struct fl_pg_error *e)
{
	enum fl_err rv;
	int n;

	while ((n = PQputCopyEnd(c->pg, "COPY FROM STDIN is not supported in a migration")) == 0)
		if ((rv = wait_socket(c, POLLOUT, w, e)) != FL_OK)
			return rv;
	return n < 0 ? classify(c, NULL, e) : FL_OK;
}

/* COPY TO STDOUT: read and drop the rows. */
static enum fl_err drain_copy_out(struct fl_conn *c, struct wait *w, struct fl_pg_error *e)
{
	enum fl_err rv;
	char *buf;
	int n;

	while ((n = PQgetCopyData(c->pg, &buf, 1)) >= 0) {
		if (n > 0) {
			PQfreemem(buf);
			continue;
		}
		if ((rv = wait_socket(c, POLLIN, w, e)) != FL_OK)
			return rv;
		if (!PQconsumeInput(c->pg))
			return classify(c, NULL, e);
	}
	return FL_OK; /* -1: done, -2: the error comes with the next result */
}

/* Read every result of what was sent: the last good one to *last, the first
 * failure into e. Leaves the connection idle, or dead. With done, count the
 * statements that completed before the failure; with nth, keep the result
 * of statement want (0-based) there. */
static enum fl_err collect(struct fl_conn *c, PGresult **last, int want, PGresult **nth, int *done,
                           struct fl_pg_error *e)
{
	PGresult *r, *keep = NULL, *failed = NULL;
	struct wait w = {0, false};
	enum fl_err rv = FL_OK;
	int n = 0;

	for (;;) {
		if ((rv = await_idle(c, &w, e)) != FL_OK)
			goto out;
		if ((r = PQgetResult(c->pg)) == NULL)
			break;
		switch (PQresultStatus(r)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
		case PGRES_EMPTY_QUERY:
		case PGRES_SINGLE_TUPLE:
			if (nth != NULL && n == want) {
				*nth = r; /* the caller's now */
			} else {
				PQclear(keep);
				keep = r;
			}
			if (failed == NULL)
				n++;
			break;
		case PGRES_COPY_IN:
			PQclear(r);
			if ((rv = end_copy_in(c, &w, e)) != FL_OK)
				goto out;
			break;
		case PGRES_COPY_OUT:
			PQclear(r);
			if ((rv = drain_copy_out(c, &w, e)) != FL_OK)
				goto out;
			break;
		default:
			if (failed == NULL)
				failed = r;
			else
				PQclear(r);
			break;
		}
	}
	if (failed != NULL)
		rv = classify(c, failed, e);
	else if (PQstatus(c->pg) == CONNECTION_BAD)
		rv = classify(c, NULL, e);
out:
	PQclear(failed);
	if (rv == FL_OK && last != NULL)
		*last = keep;
	else
		PQclear(keep);
	if (done != NULL)
		*done = n;
	return rv;
}

/* ---- running SQL ---- */

enum fl_err fl_pg_conn_run(struct fl_conn *c, const char *sql, PGresult **last,
                           struct fl_pg_error *e)
{
	if (last != NULL)
		*last = NULL;
	memset(e, 0, sizeof(*e));
	if (!PQsendQuery(c->pg, sql))
		return classify(c, NULL, e);
	return collect(c, last, -1, NULL, NULL, e);
}

enum fl_err fl_pg_conn_run_counted(struct fl_conn *c, const char *sql, int want, PGresult **nth,
                                   int *done, struct fl_pg_error *e)
{
	*nth = NULL;
	*done = 0;
	memset(e, 0, sizeof(*e));
	if (!PQsendQuery(c->pg, sql))
		return classify(c, NULL, e);
	return collect(c, NULL, want, nth, done, e);
}

enum fl_err fl_pg_conn_query(struct fl_conn *c, const char *sql, int nparams,
                             const char *const *params, PGresult **out, struct fl_pg_error *e)
{
	if (out != NULL)
		*out = NULL;
	memset(e, 0, sizeof(*e));
	if (!PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0))
		return classify(c, NULL, e);
	return collect(c, out, -1, NULL, NULL, e);
}

void fl_pg_conn_rollback(struct fl_conn *c)
{
	PGTransactionStatusType st = PQtransactionStatus(c->pg);
	struct fl_pg_error ignored;

	if (st == PQTRANS_INTRANS || st == PQTRANS_INERROR)
		(void)fl_pg_conn_run(c, "ROLLBACK", NULL, &ignored);
}

/* One value of a result with the shape we asked for, or NULL: a server that
 * answers otherwise is an error, never a crash. */
static const char *value_at(const PGresult *r, int row, int col)
{
	if (r == NULL || row >= PQntuples(r) || col >= PQnfields(r) || PQgetisnull(r, row, col))
		return NULL;
	return PQgetvalue(r, row, col);
}

/* ---- the session ---- */

static void on_notice(void *arg, const char *message)
{
	struct fl_conn *c = arg;
	char line[512];

	fl_pg_first_line(message, line, sizeof(line));
	fl_logger_debug(c->log, c->db, "server says: %s", line);
}

static void refresh_cancel(struct fl_conn *c)
{
	cancel_set(c, cancel_new(PQgetCancel(c->pg)));
}

/* Per-session state, in one round trip: search_path as Prisma sets it, and
 * who we are (to end this backend if we lose it); then the cancel handle.
 * Not our backend_start: reading any row of pg_stat_activity copies every
 * backend's, which costs a fresh backend more than all the rest here. */
static enum fl_err setup_session(struct fl_conn *c, struct fl_pg_error *e)
{
	static const char who[] =
	    "SELECT pg_catalog.pg_backend_pid(), pg_catalog.statement_timestamp()";
	struct fl_buf sql = FL_BUF_INIT;
	const char *pid, *start;
	PGresult *r = NULL;
	enum fl_err rv;

	if (PQsetnonblocking(c->pg, 1) != 0)
		return classify(c, NULL, e);
	if (c->schema_given)
		fl_buf_printf(&sql, "SET search_path = %s; ", c->qschema);
	fl_buf_puts(&sql, who);
	rv = fl_pg_conn_run(c, fl_buf_str(&sql), &r, e);
	fl_buf_fini(&sql);
	if (rv != FL_OK)
		return rv;
	pid = value_at(r, 0, 0);
	start = value_at(r, 0, 1);
	c->backend_pid = pid != NULL ? (int)strtol(pid, NULL, 10) : 0;
	snprintf(c->backend_alive_at, sizeof(c->backend_alive_at), "%s",
	         start != NULL ? start : "");
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

/* libpq refused an option before any I/O: a malformed URL, not a network
 * problem ("invalid integer value", "invalid port number", "invalid
 * sslmode value", "could not match 2 host names to 1 hostaddr values"). */
static bool is_option_error(const char *msg)
{
	return strncmp(msg, "invalid ", 8) == 0 || strncmp(msg, "could not match ", 16) == 0;
}

static char *quote_with(PGconn *pg, const char *name, bool literal)
{
	char *q = literal ? PQescapeLiteral(pg, name, strlen(name))
	                  : PQescapeIdentifier(pg, name, strlen(name)),
	     *copy;

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

/* ---- connection parameters ---- */

/* key='value' for a libpq connection string. */
static void put_option(struct fl_buf *b, const char *key, const char *value)
{
	fl_buf_printf(b, "%s%s='", b->len > 0 ? " " : "", key);
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\'' || *p == '\\')
			fl_buf_append(b, "\\", 1);
		fl_buf_append(b, p, 1);
	}
	fl_buf_puts(b, "'");
}

static const PQconninfoOption *option(const PQconninfoOption *opts, const char *key)
{
	for (const PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0)
			return o;
	return NULL;
}

static bool given(const PQconninfoOption *opts, const char *key)
{
	const PQconninfoOption *o = option(opts, key);

	return o != NULL && o->val != NULL;
}

/* What libpq would take from the environment against the caller's wish, and
 * cannot be overridden from a connection string: refuse it. */
static enum fl_err refuse_startup_env(const struct fl_conn *c, char *errbuf)
{
	for (size_t i = 0; i < sizeof(startup_env) / sizeof(startup_env[0]); i++) {
		const char *v = getenv(startup_env[i]);

		if (v != NULL && strcasecmp(v, "default") != 0)
			return fl_errf(errbuf, FL_EINVAL,
			               "cannot connect to '%s': %s is set in the environment, and "
			               "libpq would send it to the server; flotilla keeps libpq's "
			               "environment out unless told to use it (--libpq-env): unset "
			               "it",
			               c->shown, startup_env[i]);
	}
	return FL_OK;
}

/*
 * The connection string: what the URL says (parsed by libpq itself), our
 * bounds where the URL is silent, and, unless the environment is allowed,
 * an explicit value for every option libpq would otherwise take from it.
 */
static enum fl_err conninfo(struct fl_conn *c, const char *lurl, struct fl_buf *out, char *errbuf)
{
	static const char *const ours[] = {
	    "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
	    "keepalives_count", "tcp_user_timeout", "passfile"};
	PQconninfoOption *opts, *defs = NULL;
	int64_t tcp_s = c->opts.tcp_timeout_ms / 1000;
	char *perr = NULL, num[32], line[FL_ERRBUF_SIZE];
	enum fl_err rv = FL_OK;

	if ((opts = PQconninfoParse(lurl, &perr)) == NULL) {
		fl_pg_first_line(perr != NULL ? perr : "out of memory", line, sizeof(line));
		PQfreemem(perr);
		return fl_errf(errbuf, FL_EINVAL, "malformed database URL '%s': %s", c->shown,
		               line);
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (o->val != NULL)
			put_option(out, o->keyword, o->val);

	c->connect_timeout_ms = c->opts.connect_timeout_ms;
	if (given(opts, "connect_timeout")) {
		long s = strtol(option(opts, "connect_timeout")->val, NULL, 10);

		if (s > 0 && s <= INT_MAX / 1000)
			c->connect_timeout_ms = s * 1000;
	} else {
		/* Not libpq's clock (it runs only in blocking connects) but ours,
		 * and a valid value in case PGCONNECT_TIMEOUT is set. */
		snprintf(num, sizeof(num), "%lld", (long long)(c->connect_timeout_ms + 999) / 1000);
		put_option(out, "connect_timeout", num);
	}
	if (tcp_s < 4)
		tcp_s = 4;
	if (!given(opts, "keepalives"))
		put_option(out, "keepalives", "1");
	/* Idle half the time, then 3 probes over the other half. */
	snprintf(num, sizeof(num), "%lld", (long long)tcp_s / 2);
	if (!given(opts, "keepalives_idle"))
		put_option(out, "keepalives_idle", num);
	snprintf(num, sizeof(num), "%lld", (long long)tcp_s / 6 > 0 ? (long long)tcp_s / 6 : 1);
	if (!given(opts, "keepalives_interval"))
		put_option(out, "keepalives_interval", num);
	if (!given(opts, "keepalives_count"))
		put_option(out, "keepalives_count", "3");
	snprintf(num, sizeof(num), "%lld", (long long)tcp_s * 1000);
	if (!given(opts, "tcp_user_timeout"))
		put_option(out, "tcp_user_timeout", num);

	if (c->opts.use_libpq_env)
		goto out;
	if (!given(opts, "passfile"))
		put_option(out, "passfile", NO_PASSFILE);
	if ((defs = PQconndefaults()) == NULL) {
		rv = fl_errf(errbuf, FL_ECONNECT, "cannot read libpq's connection options");
		goto out;
	}
	for (const PQconninfoOption *d = defs; d->keyword != NULL; d++) {
		bool from_env =
		    getenv("PGSERVICE") != NULL || /* a service may set anything */
		    (d->envvar != NULL && getenv(d->envvar) != NULL) ||
		    (strcmp(d->keyword, "sslmode") == 0 && getenv("PGREQUIRESSL") != NULL);
		bool ours_already = false;

		for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
			ours_already |= strcmp(ours[i], d->keyword) == 0;
		/* `service` itself cannot be blanked (libpq looks up the empty name);
		 * with every other option set, a service can change nothing. */
		if (!from_env || ours_already || given(opts, d->keyword) ||
		    strcmp(d->keyword, "service") == 0)
			continue;
		put_option(out, d->keyword, d->compiled != NULL ? d->compiled : "");
	}
out:
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (o->val != NULL && strcmp(o->keyword, "password") == 0)
			sodium_memzero(o->val, strlen(o->val));
	PQconninfoFree(opts);
	PQconninfoFree(defs);
	return rv;
}

/* ---- connecting, with a deadline ---- */

/*
 * Drive PQconnectPoll (or PQresetPoll) until the connection is made, fails,
 * runs out of time or is canceled. FL_OK, FL_ECANCELED, FL_ETIMEDOUT, or
 * FL_ECONNECT (libpq's reason in PQerrorMessage).
 */
static enum fl_err poll_connect(struct fl_conn *c, bool reset)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	int64_t end = fl_now_ms() + c->connect_timeout_ms;

	if (PQstatus(c->pg) == CONNECTION_BAD)
		return FL_ECONNECT;
	for (;;) {
		struct pollfd p;
		int64_t left;
		int n;

		if (st == PGRES_POLLING_OK)
			return FL_OK;
		if (st == PGRES_POLLING_FAILED)
			return FL_ECONNECT;
		if (atomic_load(&c->canceled))
			return FL_ECANCELED;
		if ((left = end - fl_now_ms()) <= 0)
			return FL_ETIMEDOUT;
		p.fd = PQsocket(c->pg);
		p.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		p.revents = 0;
		if (p.fd < 0)
			return FL_ECONNECT;
		n = poll(&p, 1, (int)(left < SLICE_MS ? left : SLICE_MS));
		if (n < 0 && errno != EINTR)
			return FL_ECONNECT;
		if (n > 0)
			st = reset ? PQresetPoll(c->pg) : PQconnectPoll(c->pg);
	}
}

/* Why a connect failed, as one line into line. */
static void connect_reason(struct fl_conn *c, enum fl_err rv, char *line, size_t size)
{
	char ms[32];

	if (rv == FL_ETIMEDOUT) {
		fl_duration_format(c->connect_timeout_ms, ms, sizeof(ms));
		snprintf(line, size, "timed out after %s", ms);
	} else if (rv == FL_ECANCELED) {
		snprintf(line, size, "canceled");
	} else {
		fl_pg_first_line(PQerrorMessage(c->pg), line, size);
		if (line[0] == '\0')
			snprintf(line, size, "connection failed");
	}
}

struct fl_conn *fl_pg_conn_new(const struct fl_conn_opts *opts)
{
	struct fl_conn *c = fl_calloc(1, sizeof(*c));

	if (opts != NULL)
		c->opts = *opts;
	else
		fl_conn_opts_init(&c->opts);
	c->log = c->opts.log;
	c->connect_timeout_ms = c->opts.connect_timeout_ms;
	pthread_mutex_init(&c->cancel_mu, NULL);
	atomic_init(&c->canceled, false);
	return c;
}

/* A hint when the password libpq would have used came from where we do not look. */
static const char *auth_hint(const struct fl_conn *c)
{
	if (c->opts.use_libpq_env || (getenv("PGPASSWORD") == NULL &&
	                              getenv("PGPASSFILE") == NULL && getenv("PGSERVICE") == NULL))
		return "";
	return " (PGPASSWORD, PGPASSFILE and PGSERVICE are ignored unless libpq's environment is "
	       "allowed: put the password in the URL)";
}

enum fl_err fl_pg_conn_connect(struct fl_conn *c, const char *url, char *errbuf)
{
	struct fl_buf info = FL_BUF_INIT;
	struct fl_pg_error e;
	char *lurl = NULL, *schema = NULL, line[FL_ERRBUF_SIZE];
	enum fl_err rv = FL_OK;

	if (c->pg != NULL || c->shown != NULL)
		return fl_errf(errbuf, FL_ESTATE, "the connection was opened before");
	c->shown = fl_pg_url_redact(url);
	if (atomic_load(&c->canceled))
		return fl_errf(errbuf, FL_ECANCELED, "cannot connect to '%s': canceled", c->shown);
	if (sodium_init() < 0)
		return fl_errf(errbuf, FL_ECONNECT, "cannot initialise libsodium");
	if (!c->opts.use_libpq_env && (rv = refuse_startup_env(c, errbuf)) != FL_OK)
		goto out;
	if ((rv = fl_pg_url_rewrite(url, c->log, &lurl, &schema, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "malformed database URL '%s'", c->shown);
		goto out;
	}
	c->schema_given = schema != NULL;
	c->schema = schema != NULL ? schema : fl_strdup("public");
	rv = conninfo(c, lurl, &info, errbuf);
	sodium_memzero(lurl, strlen(lurl));
	free(lurl);
	if (rv != FL_OK)
		goto out;
	c->pg = PQconnectStart(fl_buf_str(&info));
	if (c->pg == NULL) {
		rv =
		    fl_errf(errbuf, FL_ECONNECT, "cannot connect to '%s': out of memory", c->shown);
		goto out;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		fl_pg_first_line(PQerrorMessage(c->pg), line, sizeof(line));
		if (is_option_error(line)) {
			rv = fl_errf(errbuf, FL_EINVAL, "malformed database URL '%s': %s", c->shown,
			             line);
			goto out;
		}
	}
	rv = poll_connect(c, false);
	if (rv != FL_OK) {
		connect_reason(c, rv, line, sizeof(line));
		if (rv == FL_ETIMEDOUT)
			rv = FL_ECONNECT;
		else if (rv == FL_ECONNECT && is_auth_failure(line))
			rv = FL_EAUTH;
		rv = fl_errf(errbuf, rv, "cannot connect to '%s': %s%s", c->shown, line,
		             rv == FL_EAUTH ? auth_hint(c) : "");
		goto out;
	}
	c->db = fl_strdup(PQdb(c->pg));
	PQsetNoticeProcessor(c->pg, on_notice, c);
	if ((c->qschema = quote_with(c->pg, c->schema, false)) == NULL ||
	    (c->lschema = quote_with(c->pg, c->schema, true)) == NULL) {
		rv = fl_errf(errbuf, FL_EINVAL, "malformed database URL '%s': bad schema name",
		             c->shown);
		goto out;
	}
	c->qmig = qualify(c->qschema, FL_PG_MIGRATIONS_TABLE);
	c->qevents = qualify(c->qschema, FL_PG_EVENTS_TABLE);
	if ((rv = setup_session(c, &e)) != FL_OK) {
		fl_pg_error_line(&e, line, sizeof(line));
		rv = fl_errf(errbuf, rv == FL_ECANCELED ? FL_ECANCELED : FL_ECONNECT,
		             "cannot connect to '%s': %s", c->shown, line);
		goto out;
	}
out:
	if (info.data != NULL)
		sodium_memzero(info.data, info.cap);
	fl_buf_fini(&info);
	if (rv != FL_OK && rv != FL_ECANCELED && fl_pg_url_userinfo_unencoded(url))
		/* We, or libpq, read the URL another way than meant; a message
		 * about it may quote a piece of the password. */
		rv = fl_errf(errbuf, FL_EINVAL,
		             "malformed database URL '%s': it does not parse as meant: "
		             "percent-encode '?', '#', '/' and '@' in the user name and password "
		             "(e.g. '?' as %%3F)",
		             c->shown);
	if (rv != FL_OK)
		fl_pg_url_scrub(errbuf, FL_ERRBUF_SIZE);
	return rv;
}

enum fl_err fl_pg_conn_open(const char *url, const struct fl_conn_opts *opts, struct fl_conn **out,
                            char *errbuf)
{
	struct fl_conn *c = fl_pg_conn_new(opts);
	enum fl_err rv = fl_pg_conn_connect(c, url, errbuf);

	if (rv != FL_OK) {
		fl_pg_conn_close(c);
		c = NULL;
	}
	*out = c;
	return rv;
}

void fl_pg_conn_close(struct fl_conn *c)
{
	if (c == NULL)
		return;
	cancel_set(c, NULL);
	if (c->pg != NULL)
		PQfinish(c->pg);
	pthread_mutex_destroy(&c->cancel_mu);
	free(c->schema);
	free(c->qschema);
	free(c->lschema);
	free(c->qmig);
	free(c->qevents);
	free(c->shown);
	free(c->db);
	free(c);
}

/* The session we lost may live on in the server (a half-open TCP
 * connection), holding the migration lock or still running our SQL. End it,
 * and wait (within the connect deadline) until it is gone, so what follows
 * waits on nothing of ours and finds a settled state: pg_terminate_backend
 * only signals, and a backend lets go of its advisory locks on its way out,
 * before it leaves pg_stat_activity. Without the wait, taking the lock again
 * at once (--lock-wait 0) would find our own old session holding it. */
static void end_orphan(struct fl_conn *c, int pid, const char *alive_at)
{
	char spid[16];
	const char *params[2] = {spid, alive_at}, *v;
	struct fl_pg_error e;
	PGresult *r = NULL;
	int64_t end;
	bool signaled;

	if (pid <= 0 || alive_at[0] == '\0' || pid == c->backend_pid)
		return;
	snprintf(spid, sizeof(spid), "%d", pid);
	if (fl_pg_conn_query(c,
	                     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	                     "WHERE pid = $1::int AND backend_start <= $2::timestamptz",
	                     2, params, &r, &e) != FL_OK) {
		fl_logger_debug(c->log, c->db, "cannot end our previous session (pid %d): %s", pid,
		                e.message);
		return;
	}
	signaled = (v = value_at(r, 0, 0)) != NULL && strcmp(v, "t") == 0;
	PQclear(r);
	end = fl_now_ms() + c->connect_timeout_ms;
	while (signaled && !atomic_load(&c->canceled)) {
		bool gone;

		if (fl_pg_conn_query(
		        c,
		        "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1::int "
		        "AND backend_start <= $2::timestamptz "
		        "/* flotilla: waiting for our previous session to end */",
		        2, params, &r, &e) != FL_OK)
			return;
		gone = (v = value_at(r, 0, 0)) != NULL && strcmp(v, "t") == 0;
		PQclear(r);
		if (gone)
			return;
		if (fl_now_ms() >= end) {
			fl_logger_warn(
			    c->log, c->db,
			    "our previous session (pid %d) has not ended yet: it may still "
			    "hold the migration lock",
			    pid);
			return;
		}
		(void)poll(NULL, 0, SLICE_MS);
	}
}

enum fl_err fl_pg_conn_reset(struct fl_conn *c, char *errbuf)
{
	struct fl_pg_error e;
	char old_alive_at[sizeof(c->backend_alive_at)], line[FL_ERRBUF_SIZE];
	int old_pid = c->backend_pid;
	enum fl_err rv;

	if (atomic_load(&c->canceled))
		return fl_errf(errbuf, FL_ECANCELED, "canceled");
	memcpy(old_alive_at, c->backend_alive_at, sizeof(old_alive_at));
	/* No handle for a session that is gone: a cancel now must not reach
	 * whichever backend reuses its pid. */
	cancel_set(c, NULL);
	c->abandoned = false;
	rv = PQresetStart(c->pg) ? poll_connect(c, true) : FL_ECONNECT;
	if (rv == FL_ECANCELED)
		return fl_errf(errbuf, FL_ECANCELED, "canceled while reconnecting to '%s'",
		               c->shown);
	if (rv != FL_OK) {
		connect_reason(c, rv, line, sizeof(line));
		fl_pg_url_scrub(line, sizeof(line));
		return fl_errf(errbuf, FL_ECONNLOST, "cannot reconnect to '%s': %s", c->shown,
		               line);
	}
	if ((rv = setup_session(c, &e)) != FL_OK) {
		fl_pg_error_line(&e, line, sizeof(line));
		return fl_errf(errbuf, rv == FL_ECANCELED ? FL_ECANCELED : FL_ECONNLOST,
		               "cannot reconnect to '%s': %s", c->shown, line);
	}
	end_orphan(c, old_pid, old_alive_at);
	fl_logger_info(c->log, c->db, "reconnected to '%s'", c->shown);
	if (c->locked) {
		c->locked = false;
		return fl_pg_conn_lock(c, c->lock_wait_ms, errbuf);
	}
	return FL_OK;
}

/* ---- the migration lock ---- */

static enum fl_err lock_error(struct fl_conn *c, const struct fl_pg_error *e, bool schema_key,
                              char *errbuf)
{
	char line[FL_ERRBUF_SIZE];

	if (e->kind == FL_ECANCELED)
		return fl_errf(errbuf, FL_ECANCELED,
		               "canceled while waiting for the migration lock");
	if (strcmp(e->sqlstate, "57014") == 0 || strcmp(e->sqlstate, "55P03") == 0) {
		if (schema_key)
			return fl_errf(errbuf, FL_ELOCKED,
			               "another deployer holds the migration lock of schema '%s' "
			               "(pg_advisory_lock(%d, hashtext(%s))) on '%s'",
			               c->schema, FL_PG_SCHEMA_LOCK_CLASS, c->lschema, c->db);
		return fl_errf(errbuf, FL_ELOCKED,
		               "another deployer holds the migration lock (pg_advisory_lock %d) on "
		               "'%s'",
		               FL_PG_LOCK_KEY, c->db);
	}
	fl_pg_error_line(e, line, sizeof(line));
	return fl_errf(errbuf, e->kind, "cannot take the migration lock on '%s': %s", c->db, line);
}

/* Run sql, whose one result is one boolean; *yes gets it. */
static enum fl_err ask(struct fl_conn *c, const char *sql, bool *yes, struct fl_pg_error *e)
{
	const char *v;
	PGresult *r = NULL;
	enum fl_err rv;

	*yes = false;
	if ((rv = fl_pg_conn_run(c, sql, &r, e)) != FL_OK)
		return rv;
	v = value_at(r, 0, 0);
	*yes = v != NULL && strcmp(v, "t") == 0;
	PQclear(r);
	return FL_OK;
}

/* Wait for one key, at most wait_ms; with wait_ms <= 0, try once. */
static enum fl_err take(struct fl_conn *c, const char *key, int64_t wait_ms, bool *got,
                        struct fl_pg_error *e)
{
	char sql[512];

	if (wait_ms <= 0) {
		snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock%s", key);
		return ask(c, sql, got, e);
	}
	/* Prisma waits on pg_advisory_lock() under a client-side timeout; a
	 * statement_timeout does the same and wakes us the moment it frees. */
	snprintf(sql, sizeof(sql),
	         "SET statement_timeout = %lld; SET lock_timeout = 0; SELECT pg_advisory_lock%s",
	         (long long)(wait_ms > INT_MAX ? INT_MAX : wait_ms), key);
	*got = fl_pg_conn_run(c, sql, NULL, e) == FL_OK;
	return *got ? FL_OK : e->kind;
}

enum fl_err fl_pg_conn_lock(struct fl_conn *c, int64_t wait_ms, char *errbuf)
{
	struct fl_pg_error e, ignored;
	char shared[64], mine[256];
	int64_t t0 = fl_now_ms(), left;
	bool got = false, got_shared = false;
	enum fl_err rv;

	if (c->locked)
		return FL_OK;
	if (atomic_load(&c->canceled))
		return fl_errf(errbuf, FL_ECANCELED, "canceled");
	c->lock_wait_ms = wait_ms;
	snprintf(shared, sizeof(shared), "_shared(%d)", FL_PG_LOCK_KEY);
	snprintf(mine, sizeof(mine), "(%d, hashtext(%s))", FL_PG_SCHEMA_LOCK_CLASS, c->lschema);
	if ((rv = take(c, shared, wait_ms, &got_shared, &e)) != FL_OK || !got_shared) {
		if (rv == FL_OK)
			rv = fl_errf(errbuf, FL_ELOCKED,
			             "another deployer holds the migration lock (pg_advisory_lock "
			             "%d) on '%s'",
			             FL_PG_LOCK_KEY, c->db);
		else
			rv = lock_error(c, &e, false, errbuf);
		goto out;
	}
	left = wait_ms > 0 ? wait_ms - (fl_now_ms() - t0) : 0;
	if (wait_ms > 0 && left < 1)
		left = 1;
	if ((rv = take(c, mine, left, &got, &e)) != FL_OK || !got) {
		if (rv == FL_OK)
			rv = fl_errf(errbuf, FL_ELOCKED,
			             "another deployer holds the migration lock of schema '%s' "
			             "(pg_advisory_lock(%d, hashtext(%s))) on '%s'",
			             c->schema, FL_PG_SCHEMA_LOCK_CLASS, c->lschema, c->db);
		else
			rv = lock_error(c, &e, true, errbuf);
		goto out;
	}
	c->locked = true;
out:
	if (wait_ms > 0 && PQstatus(c->pg) == CONNECTION_OK)
		(void)fl_pg_conn_run(c, "RESET statement_timeout; RESET lock_timeout", NULL,
		                     &ignored);
	if (rv != FL_OK && got_shared && PQstatus(c->pg) == CONNECTION_OK) {
		char sql[64];

		snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock_shared(%d)", FL_PG_LOCK_KEY);
		(void)fl_pg_conn_run(c, sql, NULL, &ignored);
	}
	return rv;
}

enum fl_err fl_pg_conn_unlock(struct fl_conn *c, char *errbuf)
{
	struct fl_pg_error e;
	char line[FL_ERRBUF_SIZE], sql[256];

	if (!c->locked)
		return FL_OK;
	c->locked = false;
	if (PQstatus(c->pg) != CONNECTION_OK)
		return FL_OK; /* the session, and its lock, are gone */
	snprintf(sql, sizeof(sql),
	         "SELECT pg_advisory_unlock(%d, hashtext(%s)), pg_advisory_unlock_shared(%d)",
	         FL_PG_SCHEMA_LOCK_CLASS, c->lschema, FL_PG_LOCK_KEY);
	if (fl_pg_conn_run(c, sql, NULL, &e) != FL_OK) {
		fl_pg_error_line(&e, line, sizeof(line));
		return fl_errf(errbuf, e.kind, "cannot release the migration lock on '%s': %s",
		               c->db, line);
	}
	return FL_OK;
}

enum fl_err fl_pg_conn_lock_held(struct fl_conn *c, bool *held, char *errbuf)
{
	const char *params[1] = {c->schema};
	struct fl_pg_error e;
	char sql[1024], line[FL_ERRBUF_SIZE];
	const char *v;
	PGresult *r = NULL;

	*held = false;
	/* A two-int4 key shows as classid = key1, objid = key2 (as an oid),
	 * objsubid 2; Prisma's bigint key as classid 0, objid = key, objsubid 1. */
	snprintf(sql, sizeof(sql),
	         "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
	         "AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database "
	         "WHERE datname = current_database()) AND ((classid = %d AND objid = "
	         "(hashtext($1)::bigint & 4294967295)::oid AND objsubid = 2) OR (classid = 0 AND "
	         "objid = %d AND objsubid = 1 AND mode = 'ExclusiveLock')))",
	         FL_PG_SCHEMA_LOCK_CLASS, FL_PG_LOCK_KEY);
	if (fl_pg_conn_query(c, sql, 1, params, &r, &e) != FL_OK) {
		fl_pg_error_line(&e, line, sizeof(line));
		return fl_errf(errbuf, e.kind, "cannot read the locks of '%s': %s", c->db, line);
	}
	v = value_at(r, 0, 0);
	*held = v != NULL && strcmp(v, "t") == 0;
	PQclear(r);
	return FL_OK;
}

/* ---- between migrations ---- */

int fl_pg_conn_clean_sql(const struct fl_conn *c, struct fl_buf *out)
{
	/* DISCARD ALL less pg_advisory_unlock_all(), which would drop our lock;
	 * and not DISCARD ALL itself, which cannot run in the implicit
	 * transaction of a multi-statement query. */
	fl_buf_puts(out, "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; "
	                 "DEALLOCATE ALL; UNLISTEN *; DISCARD PLANS; DISCARD SEQUENCES; "
	                 "DISCARD TEMP");
	if (!c->schema_given)
		return 9;
	fl_buf_printf(out, "; SET search_path = %s", c->qschema);
	return 10;
}

enum fl_err fl_pg_conn_clean(struct fl_conn *c, struct fl_pg_error *e)
{
	struct fl_buf sql = FL_BUF_INIT;
	PGTransactionStatusType st = PQtransactionStatus(c->pg);
	enum fl_err rv;

	if (st == PQTRANS_INTRANS || st == PQTRANS_INERROR)
		fl_buf_puts(&sql, "ROLLBACK; ");
	(void)fl_pg_conn_clean_sql(c, &sql);
	rv = fl_pg_conn_run(c, fl_buf_str(&sql), NULL, e);
	fl_buf_fini(&sql);
	return rv;
}

/* ---- cancel ---- */

void fl_pg_conn_cancel(struct fl_conn *c)
{
	if (c == NULL)
		return;
	atomic_store(&c->canceled, true);
	send_cancel(c);
}
