#include "pg_apply.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "mem.h"
#include "pg_history.h"
#include "retry.h"

#define AGAIN    (-1) /* settle(): the failure was transient; try again now */
#define DONE     (-2) /* settle(): after a reconnect, our history row is finished */
#define BOOL_OID 16   /* pg_type.oid of boolean */

/* Prisma's ApplyMigrationError (P3018), which is what its logs column holds. */
#define PRISMA_P3018                                                                               \
	"A migration failed to apply. New migrations cannot be applied before the error is "       \
	"recovered from. Read more about how to resolve migration issues in a production "         \
	"database: https://pris.ly/d/migrate-resolve"

/* One apply or revert in progress. */
struct run {
	struct fl_conn *c;
	const struct fl_migration *m;
	const struct fl_sql_script *script; /* parsed sql, or NULL (or not parsed) */
	const char *sql;                    /* migration.sql or down.sql */
	const char *file;                   /* "migration.sql" or "down.sql" */
	enum fl_apply_mode mode;
	bool revert;
	struct fl_apply_result *res;
	struct fl_retry retry;
	int64_t lock_ms, stmt_ms; /* effective timeouts, -1: the server's */
	/* Lock timeouts for ordinary statements, and for those that cannot run in a
	 * transaction block (CREATE INDEX CONCURRENTLY...): these wait for other
	 * transactions after committing catalog entries, so a timeout would leave
	 * an invalid index behind. They get only the migration's own directive,
	 * as Prisma sets none, and are never retried. */
	int64_t lock_ms_plain, lock_ms_no_tx;
	int64_t try_started_us;
	bool exhausted;    /* the retry budget ran out */
	bool lock_lost;    /* reconnected, but another deployer took the lock */
	bool session_set;  /* session-level timeouts are in place */
	bool nothing_done; /* stopped after a reconnect: nothing of ours committed */
	bool unknown;      /* the interrupted statement may or may not have run */
	int applied;       /* STATEMENTS: statements committed so far */
	size_t running;    /* STATEMENTS: 1-based statement under way, 0 between them */
	bool sent;         /* ... and it was sent (not only about to be) */
	char id[FL_PG_UUID_LEN + 1];
	char started_at[64];
	struct fl_pg_error err;     /* the failure being reported */
	char cause[FL_ERRBUF_SIZE]; /* ... as one line, without where it happened */
};

/* snprintf for messages that may be cut short, on purpose. */
static void say(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* Sleep ms, waking early on cancel; true if canceled. */
static bool nap(struct fl_conn *c, int64_t ms)
{
	while (ms > 0 && !atomic_load(&c->canceled)) {
		int64_t step = ms < 50 ? ms : 50;

		fl_sleep_ms(step);
		ms -= step;
	}
	return atomic_load(&c->canceled);
}

static long long clamp_ms(int64_t ms)
{
	return ms > INT_MAX ? INT_MAX : (long long)ms;
}

/* "SET [LOCAL] lock_timeout = n; SET [LOCAL] statement_timeout = n", or "". */
static void timeouts_sql(const struct run *a, bool local, char *buf, size_t size)
{
	int n = 0;

	buf[0] = '\0';
	if (a->lock_ms >= 0)
		n = snprintf(buf, size, "SET %slock_timeout = %lld; ", local ? "LOCAL " : "",
		             clamp_ms(a->lock_ms));
	else if (!local && a->lock_ms_plain >= 0)
		n = snprintf(buf, size, "RESET lock_timeout; "); /* undo the plain statements' */
	if (a->stmt_ms >= 0 && n >= 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, "SET %sstatement_timeout = %lld",
		         local ? "LOCAL " : "", clamp_ms(a->stmt_ms));
}

static enum fl_err set_session_timeouts(struct run *a, struct fl_pg_error *e)
{
	char sql[128];
	enum fl_err rv;

	if (a->session_set)
		return FL_OK;
	timeouts_sql(a, false, sql, sizeof(sql));
	if (sql[0] != '\0' && (rv = fl_pg_conn_run(a->c, sql, NULL, e)) != FL_OK)
		return rv;
	a->session_set = true;
	return FL_OK;
}

static void reset_session_timeouts(struct run *a)
{
	struct fl_pg_error ignored;

	if (!a->session_set || PQstatus(a->c->pg) != CONNECTION_OK)
		return;
	a->session_set = false;
	if (a->lock_ms_plain >= 0 || a->lock_ms >= 0)
		(void)fl_pg_conn_run(a->c, "RESET lock_timeout", NULL, &ignored);
	if (a->stmt_ms >= 0)
		(void)fl_pg_conn_run(a->c, "RESET statement_timeout", NULL, &ignored);
}

/* 1-based line of the 1-based character position pos in text (UTF-8). */
static int line_at(const char *text, int pos)
{
	int line = 1, chars = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if ((*p & 0xc0) != 0x80 && ++chars >= pos)
			break;
		if (*p == '\n')
			line++;
	}
	return line;
}

/*
 * Record e as the failure to report: res->message is one line naming where it
 * happened ("migration.sql line 3", "statement 2 of 5 (line 7)"); text, when
 * not NULL, is the file that was sent, to turn the error position into a line.
 */
static void note(struct run *a, const char *where, const char *text, const struct fl_pg_error *e)
{
	char at[64] = "";

	a->err = *e;
	snprintf(a->res->sqlstate, sizeof(a->res->sqlstate), "%s", e->sqlstate);
	fl_pg_error_line(e, a->cause, sizeof(a->cause));
	if (text != NULL && e->position > 0)
		snprintf(at, sizeof(at), " line %d", line_at(text, e->position));
	say(a->res->message, sizeof(a->res->message), "%s%s: %s", where, at, a->cause);
}

static void note_statement(struct run *a, size_t k, const char *text, const struct fl_pg_error *e)
{
	const struct fl_sql_stmt *st = &a->script->stmts[k];
	char where[96];
	int line = st->line;

	if (e->position > 0)
		line = st->line + line_at(text, e->position) - 1;
	snprintf(where, sizeof(where), "%sstatement %zu of %zu (line %d)",
	         a->revert ? "down.sql " : "", k + 1, a->script->count, line);
	note(a, where, NULL, e);
	a->res->statement = (int)k + 1;
}

/* A failure that is not the server's error: message and cause alike. */
static void tell(struct run *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tell(struct run *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->cause, sizeof(a->cause), fmt, ap);
	va_end(ap);
	memcpy(a->res->message, a->cause, sizeof(a->res->message));
}

/* Prefix res->message, keeping it one line within its buffer. */
static void prefix(struct run *a, const char *what)
{
	char old[sizeof(a->res->message)];

	memcpy(old, a->res->message, sizeof(old));
	say(a->res->message, sizeof(a->res->message), "%s: %s", what, old);
}

/* A bookkeeping statement failed: say so; the database refusing it (FL_ESQL)
 * is FL_EDB, not a failed migration. */
static enum fl_err book(struct run *a, enum fl_err rv, const struct fl_pg_error *e)
{
	note(a, "_prisma_migrations", NULL, e);
	return rv == FL_ESQL ? FL_EDB : rv;
}

/*
 * Reconnect within the retry budget (after a backoff each time); line is the
 * last error, for the log. FL_OK, or FL_ECONNLOST (budget spent), FL_ELOCKED
 * (another deployer took the lock meanwhile), FL_ECANCELED.
 */
static enum fl_err reconnect(struct run *a, char *line, size_t size)
{
	char errbuf[FL_ERRBUF_SIZE];
	int64_t delay;
	enum fl_err rv;

	for (;;) {
		if (!fl_retry_next(&a->retry, &delay)) {
			a->exhausted = true;
			return FL_ECONNLOST;
		}
		fl_logger_info(a->c->log, a->m->id,
		               "%s; reconnecting in %lld ms (attempt %d of %d)", line,
		               (long long)delay, a->retry.attempt + 1, a->retry.policy.attempts);
		if (nap(a->c, delay))
			return FL_ECANCELED;
		a->session_set = false;
		/* TODO(A1): fl_pg_conn_clean() is not needed here: a new session
		 * starts clean. */
		switch ((rv = fl_pg_conn_reset(a->c, errbuf))) {
		case FL_OK:
			a->res->reconnected = true;
			return FL_OK;
		case FL_ECONNLOST:
			fl_pg_first_line(errbuf, line, size);
			continue;
		case FL_ELOCKED:
			a->lock_lost = true;
			tell(a, "connection lost, and on reconnecting: %s", errbuf);
			return FL_ELOCKED;
		case FL_ECANCELED:
			return FL_ECANCELED;
		default:
			/* Whatever else went wrong on reconnecting is what we report. */
			tell(a, "connection lost, and on reconnecting: %s", errbuf);
			return rv;
		}
	}
}

/*
 * After a reconnect while applying, our history row tells what happened while
 * we were away (the lock was free from the moment our session died):
 * - finished: the commit we never heard back from went through: DONE;
 * - there and unfinished: it was committed while we held the lock, and it
 *   blocks every other deployer (Prisma's P3009), so nobody moved on: AGAIN;
 * - not there (or resolved meanwhile): nothing of ours is committed, and
 *   another deployer may have changed the history: stop with FL_ECONNLOST,
 *   record nothing, and let the engine read the history again.
 */
static int recheck(struct run *a)
{
	struct fl_pg_row_state st;
	struct fl_pg_error e;
	char line[FL_ERRBUF_SIZE];
	enum fl_err rv;

	while ((rv = fl_pg_history_row(a->c, a->id, &st, &e)) != FL_OK) {
		if (rv != FL_ECONNLOST)
			return book(a, rv, &e);
		fl_pg_error_line(&e, line, sizeof(line));
		if ((rv = reconnect(a, line, sizeof(line))) != FL_OK)
			return rv;
	}
	if (st.finished)
		return DONE;
	if (st.exists && !st.rolled_back)
		return AGAIN;
	a->nothing_done = true;
	tell(a,
	     "connection lost before %s committed; reconnected: nothing of it was applied, and "
	     "the history must be read again before going on",
	     a->file);
	return FL_ECONNLOST;
}

/*
 * After a failed statement: FL_OK when rv is FL_OK, AGAIN when the failure was
 * transient and another try may start now (after the backoff, and after a
 * reconnect when the connection was lost), DONE when a reconnect showed the
 * work committed, else the error to give up with.
 */
static int settle(struct run *a, enum fl_err rv, const struct fl_pg_error *e)
{
	char line[FL_ERRBUF_SIZE];
	int64_t delay;
	enum fl_err r;
	int s;

	if (rv == FL_OK)
		return FL_OK;
	if (atomic_load(&a->c->canceled))
		return FL_ECANCELED;
	if (rv != FL_ERETRY && rv != FL_ECONNLOST)
		return rv;
	fl_pg_error_line(e, line, sizeof(line));
	if (rv == FL_ECONNLOST) {
		if ((r = reconnect(a, line, sizeof(line))) != FL_OK)
			return r;
		if (!a->revert && (s = recheck(a)) != AGAIN)
			return s;
	} else {
		if (!fl_retry_next(&a->retry, &delay)) {
			a->exhausted = true;
			return rv;
		}
		fl_logger_info(a->c->log, a->m->id, "%s; retrying in %lld ms (attempt %d of %d)",
		               line, (long long)delay, a->retry.attempt + 1,
		               a->retry.policy.attempts);
		if (nap(a->c, delay))
			return FL_ECANCELED;
	}
	a->res->attempts++;
	a->try_started_us = fl_now_us();
	return AGAIN;
}

/* After a lost connection whose work may or may not have happened: reconnect
 * (to record the failure), and say so. */
static void lost(struct run *a, const struct fl_pg_error *e, const char *what)
{
	char line[FL_ERRBUF_SIZE];

	a->unknown = true;
	fl_pg_error_line(e, line, sizeof(line));
	if (!atomic_load(&a->c->canceled))
		(void)reconnect(a, line, sizeof(line));
	if (what != NULL)
		prefix(a, what);
}

/* Run a bookkeeping call (idempotent) until it succeeds or fails for good. */
#define KEEP_TRYING(a, rv, e, call)                                                                \
	do {                                                                                       \
		int s_;                                                                            \
		while ((s_ = settle((a), (call), (e))) == AGAIN)                                   \
			;                                                                          \
		(rv) = s_ == DONE ? FL_OK : (enum fl_err)s_;                                       \
	} while (0)

/* The text that goes into logs: our one line, then Prisma's P3018 text. */
static char *make_logs(const struct run *a, bool sql_error)
{
	struct fl_buf b = FL_BUF_INIT;
	const struct fl_pg_error *e = &a->err;

	fl_buf_printf(&b,
	              "%s\n\n%s\n\nMigration name: %s\n\nDatabase error code: %s\n\n"
	              "Database error:\n",
	              a->res->message, PRISMA_P3018, a->m->id,
	              sql_error && e->sqlstate[0] != '\0' ? e->sqlstate : "none");
	if (sql_error) {
		fl_buf_printf(&b, "ERROR: %s\n", e->message);
		if (e->detail[0] != '\0')
			fl_buf_printf(&b, "DETAIL: %s\n", e->detail);
		if (e->hint[0] != '\0')
			fl_buf_printf(&b, "HINT: %s\n", e->hint);
	} else {
		fl_buf_printf(&b, "%s\n", a->res->message);
	}
	return fl_buf_detach(&b);
}

/*
 * Leave a failed row behind, as Prisma does: for TRANSACTION mode a new row
 * (the started one rolled back with the script), otherwise logs on the
 * started row. Best effort: one reconnect, then a warning.
 *
 * A TRANSACTION migration applied nothing when it fails, and when it failed
 * through a lost connection other deployers may have moved on since: no row
 * then, so nothing false blocks them (the engine reads the history again).
 */
static void record_failure(struct run *a, enum fl_err rv)
{
	struct fl_pg_error e;
	char errbuf[FL_ERRBUF_SIZE];
	bool sql_error = rv == FL_ESQL || rv == FL_ERETRY || rv == FL_ECANCELED ||
	                 (rv == FL_EVERIFY && a->err.sqlstate[0] != '\0');
	char *logs;
	enum fl_err wr;

	if (a->nothing_done || rv == FL_EBUSY || rv == FL_EDB)
		return;
	if (a->lock_lost) {
		fl_logger_warn(a->c->log, a->m->id,
		               "not recording the failure: the migration lock is lost");
		return;
	}
	if (a->mode == FL_APPLY_TRANSACTION &&
	    (rv == FL_ECONNLOST || PQstatus(a->c->pg) != CONNECTION_OK))
		return;
	/* Canceled (Ctrl-C, an agent halting or shutting down) in one transaction:
	 * the server rolled it back, nothing was applied, so there is nothing to
	 * resolve. A failed row would latch the tenant (every later deploy refused
	 * until someone runs resolve), as a busy table's would: leave none. */
	if (a->mode == FL_APPLY_TRANSACTION && rv == FL_ECANCELED)
		return;
	if (PQstatus(a->c->pg) != CONNECTION_OK) {
		if (fl_pg_conn_reset(a->c, errbuf) != FL_OK) {
			fl_logger_warn(a->c->log, a->m->id,
			               "cannot record the failure in _prisma_migrations: %s",
			               errbuf);
			return;
		}
		a->res->reconnected = true;
	}
	fl_pg_conn_rollback(a->c);
	logs = make_logs(a, sql_error);
	if (a->mode == FL_APPLY_TRANSACTION)
		wr = fl_pg_history_insert_failed(a->c, a->id, a->m->id, a->m->checksum,
		                                 a->started_at, logs, &e);
	else
		wr = fl_pg_history_fail(a->c, a->id, logs, &e);
	free(logs);
	if (wr != FL_OK) {
		fl_pg_error_line(&e, errbuf, sizeof(errbuf));
		fl_logger_warn(a->c->log, a->m->id,
		               "cannot record the failure in _prisma_migrations: %s", errbuf);
	}
}

/*
 * Out of retries on a busy table (lock timeouts, deadlocks, serialization
 * failures) with nothing applied: there is nothing to resolve, so leave no
 * failed row (it would block every later deploy) and say the deploy can
 * simply run again: FL_EBUSY. Our started row, when it was committed ahead of
 * the work (STATEMENTS, SCRIPT), goes too.
 */
static enum fl_err busy(struct run *a, enum fl_err rv, bool nothing_applied)
{
	struct fl_pg_error e;
	char line[FL_ERRBUF_SIZE];

	if (rv != FL_ERETRY || !a->exhausted || !nothing_applied)
		return rv;
	if (!a->revert && a->mode != FL_APPLY_TRANSACTION &&
	    fl_pg_history_discard(a->c, a->id, &e) != FL_OK) {
		fl_pg_error_line(&e, line, sizeof(line));
		fl_logger_warn(a->c->log, a->m->id,
		               "cannot remove the row of a try that applied nothing: %s", line);
		return rv;
	}
	return FL_EBUSY;
}

/* Whether a file sent as one simple query runs as one transaction: it parsed,
 * and has no transaction control, or only at its first and last statements. */
static bool atomic_script(const struct fl_sql_script *s)
{
	if (s == NULL || !s->parsed || (s->flags & FL_SQL_NO_TX_BLOCK))
		return false;
	for (size_t i = 0; i < s->count; i++)
		if ((s->stmts[i].flags & FL_SQL_TX_CONTROL) && i != 0 && i + 1 != s->count)
			return false;
	if (s->count > 0 && (s->stmts[0].flags & FL_SQL_TX_CONTROL) &&
	    !(s->stmts[s->count - 1].flags & FL_SQL_TX_CONTROL))
		return false;
	return true;
}

/*
 * An interrupted migration (canceled, or a connection lost with its outcome
 * unknown) says how far it got: "interrupted during statement 4 of 7 (line
 * 12): 3 applied; <cause>", in res->message and so in the history row's logs.
 */
static void interrupted(struct run *a, enum fl_err rv)
{
	char gave[64] = "";
	const char *cause = a->cause[0] != '\0' ? a->cause : fl_strerror(rv);
	const char *down = a->revert ? "down.sql " : "";

	if (a->exhausted)
		snprintf(gave, sizeof(gave), "gave up after %d attempts: ", a->res->attempts);
	if (a->mode == FL_APPLY_STATEMENTS && a->running > 0) {
		const struct fl_sql_stmt *st = &a->script->stmts[a->running - 1];

		say(a->res->message, sizeof(a->res->message),
		    "%sinterrupted %s statement %zu of %zu (line %d): %d applied; %s%s%s", down,
		    a->sent ? "during" : "before", a->running, a->script->count, st->line,
		    a->applied, gave, a->unknown ? "it may or may not have been applied: " : "",
		    cause);
	} else if (a->mode == FL_APPLY_STATEMENTS) {
		say(a->res->message, sizeof(a->res->message),
		    "%sinterrupted with %d of %zu statements applied; %s%s", down, a->applied,
		    a->script->count, gave, cause);
	} else if (a->mode == FL_APPLY_TRANSACTION) {
		say(a->res->message, sizeof(a->res->message),
		    "%sinterrupted: nothing applied, its transaction was rolled back; %s%s", down,
		    gave, cause);
	} else if (!a->unknown) {
		/* SCRIPT, stopped by the server or while waiting to retry. */
		say(a->res->message, sizeof(a->res->message), "%sinterrupted: %s; %s%s", down,
		    atomic_script(a->script)
		        ? "nothing applied, the file runs as one transaction"
		        : "it may be partly applied, as the file commits part of its work",
		    gave, cause);
	}
	/* SCRIPT with its connection lost says so already (lost()). */
}

/* Say why we gave up, once the error itself is in res->message. */
static void final_words(struct run *a, enum fl_err rv)
{
	char what[64];

	if (a->nothing_done)
		return;
	if (rv == FL_ECANCELED || rv == FL_ECONNLOST) {
		interrupted(a, rv);
	} else if (a->exhausted) {
		snprintf(what, sizeof(what), "gave up after %d attempts", a->res->attempts);
		prefix(a, what);
	}
	if (a->res->message[0] == '\0')
		tell(a, "%s", fl_strerror(rv));
}

/*
 * verify.sql: exactly one row of one boolean, true. A server error in it is
 * FL_EVERIFY unless transient; e describes the failure either way.
 */
static enum fl_err verify(struct run *a, struct fl_pg_error *e)
{
	const char *m;
	PGresult *r = NULL;
	enum fl_err rv;

	if ((rv = fl_pg_conn_run(a->c, a->m->verify_sql, &r, e)) != FL_OK) {
		note(a, "verify.sql", a->m->verify_sql, e);
		if (rv == FL_ESQL) {
			e->kind = FL_EVERIFY;
			return FL_EVERIFY;
		}
		return rv;
	}
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
	    PQnfields(r) != 1 || PQftype(r, 0) != BOOL_OID)
		m = "must return one row with one boolean column";
	else if (PQgetisnull(r, 0, 0))
		m = "returned NULL";
	else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0)
		m = "returned false";
	else
		m = NULL;
	PQclear(r);
	if (m == NULL)
		return FL_OK;
	memset(e, 0, sizeof(*e));
	e->kind = FL_EVERIFY;
	snprintf(e->message, sizeof(e->message), "%s", m);
	note(a, "verify.sql", NULL, e);
	return FL_EVERIFY;
}

static enum fl_err verify_retrying(struct run *a)
{
	struct fl_pg_error e;
	int s;

	if (a->m->verify_sql == NULL)
		return FL_OK;
	while ((s = settle(a, verify(a, &e), &e)) == AGAIN)
		;
	return s == DONE ? FL_OK : (enum fl_err)s;
}

/* ---- TRANSACTION: script and history row in one transaction ---- */

static enum fl_err tx_try(struct run *a, struct fl_pg_error *e)
{
	struct fl_conn *c = a->c;
	char set[128];
	enum fl_err rv;

	memset(e, 0, sizeof(*e));
	if ((rv = fl_pg_conn_run(c, "BEGIN", NULL, e)) != FL_OK)
		goto book;
	timeouts_sql(a, true, set, sizeof(set));
	if (set[0] != '\0' && (rv = fl_pg_conn_run(c, set, NULL, e)) != FL_OK)
		goto book;
	if ((rv = fl_pg_history_start(c, a->id, a->m->id, a->m->checksum, a->started_at, e)) !=
	    FL_OK)
		goto book;
	if ((rv = fl_pg_conn_run(c, a->sql, NULL, e)) != FL_OK) {
		note(a, a->file, a->sql, e);
		goto out;
	}
	if (PQtransactionStatus(c->pg) == PQTRANS_IDLE)
		fl_logger_warn(a->c->log, a->m->id,
		               "migration.sql ended flotilla's transaction with its own "
		               "COMMIT: the rest ran outside it (use SCRIPT mode for such files)");
	if (a->m->verify_sql != NULL && (rv = verify(a, e)) != FL_OK)
		goto out;
	if ((rv = fl_pg_history_finish(c, a->id, true, e)) != FL_OK)
		goto book;
	if (PQtransactionStatus(c->pg) != PQTRANS_IDLE &&
	    (rv = fl_pg_conn_run(c, "COMMIT", NULL, e)) != FL_OK) {
		note(a, "COMMIT", NULL, e); /* deferred constraints fail here */
		goto out;
	}
	return FL_OK;
book:
	rv = book(a, rv, e);
out:
	if (PQstatus(c->pg) == CONNECTION_OK)
		fl_pg_conn_rollback(c);
	return rv;
}

/* Whether TRANSACTION tries go as one batch: the script's statements are
 * counted (it parsed), no verify.sql result must be read in between, and the
 * script is small enough to copy into the batch. */
static bool batched(const struct run *a)
{
	return a->mode == FL_APPLY_TRANSACTION && !a->revert && a->script != NULL &&
	       a->script->parsed && a->m->verify_sql == NULL && a->m->sql_len <= FL_SQL_PIECE_MAX;
}

/* Characters (UTF-8) in s[0, n): error positions count them. */
static int chars_in(const char *s, size_t n)
{
	int k = 0;

	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xc0) != 0x80;
	return k;
}

/*
 * One TRANSACTION try in one round trip: BEGIN, the session cleaned (as
 * fl_pg_conn_clean, inside the transaction: rolled back with it, and done
 * again by the next try), the timeouts, the history row, the script, the row
 * finished, COMMIT, all in one simple query, which the server stops at the
 * first error. How many statements completed says whose error it was. The
 * rules are tx_try's; only the round trips differ. FL_EINVAL (nothing sent):
 * the migration's name cannot be quoted; use tx_try.
 */
static enum fl_err tx_batch(struct run *a, struct fl_pg_error *e)
{
	struct fl_buf q = FL_BUF_INIT;
	PGresult *row = NULL;
	int clean_n, head, done = 0, n = (int)a->script->count;
	size_t script_at;
	enum fl_err rv;

	memset(e, 0, sizeof(*e));
	fl_buf_puts(&q, "BEGIN; ");
	clean_n = fl_pg_conn_clean_sql(a->c, &q);
	head = 1 + clean_n;
	if (a->lock_ms >= 0) {
		fl_buf_printf(&q, "; SET LOCAL lock_timeout = %lld", clamp_ms(a->lock_ms));
		head++;
	}
	if (a->stmt_ms >= 0) {
		fl_buf_printf(&q, "; SET LOCAL statement_timeout = %lld", clamp_ms(a->stmt_ms));
		head++;
	}
	fl_buf_puts(&q, "; ");
	if (fl_pg_history_start_sql(a->c, a->id, a->m->id, a->m->checksum, &q) != FL_OK) {
		fl_buf_fini(&q);
		return FL_EINVAL;
	}
	/* The newlines end a trailing "--" comment before our ';'. */
	fl_buf_puts(&q, ";\n");
	script_at = q.len;
	fl_buf_append(&q, a->sql, a->m->sql_len);
	fl_buf_puts(&q, "\n;\n");
	fl_pg_history_finish_sql(a->c, a->id, &q);
	fl_buf_puts(&q, ";\nCOMMIT");
	rv = fl_pg_conn_run_counted(a->c, fl_buf_str(&q), head, &row, &done, e);
	if (row != NULL && PQntuples(row) == 1 && PQnfields(row) == 1)
		snprintf(a->started_at, sizeof(a->started_at), "%s", PQgetvalue(row, 0, 0));
	PQclear(row);
	if (rv != FL_OK) {
		if (done < 1 + clean_n) {
			note(a, "resetting the session", NULL, e);
			rv = rv == FL_ESQL ? FL_EDB : rv;
		} else if (done <= head) {
			rv = book(a, rv, e); /* the timeouts, the history row */
		} else if (done <= head + n) {
			e->position -= e->position > 0 ? chars_in(q.data, script_at) : 0;
			e->position = e->position > 0 ? e->position : 0;
			note(a, a->file, a->sql, e);
		} else if (done == head + n + 1) {
			rv = book(a, rv, e); /* finishing the history row */
		} else {
			note(a, "COMMIT", NULL, e); /* deferred constraints fail here */
		}
		if (PQstatus(a->c->pg) == CONNECTION_OK)
			fl_pg_conn_rollback(a->c);
	}
	fl_buf_fini(&q);
	return rv;
}

static enum fl_err apply_tx(struct run *a)
{
	struct fl_pg_error e;
	enum fl_err rv;
	int s;

	for (;;) {
		rv = batched(a) ? tx_batch(a, &e) : FL_EINVAL;
		if (rv == FL_EINVAL)
			rv = tx_try(a, &e);
		if (rv == FL_OK)
			return FL_OK;
		if (rv == FL_EDB)
			break; /* flotilla may not write its bookkeeping: nothing ran */
		s = settle(a, rv, &e);
		if (s == DONE) {
			fl_logger_info(a->c->log, a->m->id,
			               "the connection dropped after the commit went through");
			return FL_OK;
		}
		if (s != AGAIN) {
			rv = (enum fl_err)s;
			break;
		}
	}
	rv = busy(a, rv, true);
	final_words(a, rv);
	record_failure(a, rv);
	return rv;
}

/* ---- STATEMENTS: one statement at a time, each committed and counted ---- */

static bool combinable(const struct fl_sql_stmt *st)
{
	return !(st->flags & (FL_SQL_TX_CONTROL | FL_SQL_NO_TX_BLOCK));
}

/* Run statement k of a->script; counted says to count it in the history row
 * in the same implicit transaction. */
static enum fl_err run_statement(struct run *a, size_t k, const char *text, bool counted,
                                 struct fl_pg_error *e)
{
	enum fl_err rv;
	char *steps, *q;
	size_t n;
	int64_t want =
	    (a->script->stmts[k].flags & FL_SQL_NO_TX_BLOCK) ? a->lock_ms_no_tx : a->lock_ms_plain;

	if (want != a->lock_ms) {
		a->lock_ms = want;
		a->session_set = false;
	}
	if ((rv = set_session_timeouts(a, e)) != FL_OK)
		return rv;
	a->sent = true;
	if (!counted)
		return fl_pg_conn_run(a->c, text, NULL, e);
	/* The newline ends a trailing "--" comment before our ';'. */
	steps = fl_pg_history_steps_sql(a->c, a->id, (int)k + 1);
	n = strlen(text) + strlen(steps) + 8;
	q = fl_malloc(n);
	snprintf(q, n, "%s\n;\n%s", text, steps);
	rv = fl_pg_conn_run(a->c, q, NULL, e);
	free(q);
	free(steps);
	return rv;
}

/* Run a->script statement by statement; with count set, keep the history
 * row's applied_steps_count in step. On failure res names the statement. */
static enum fl_err run_statements(struct run *a, bool count)
{
	const struct fl_sql_script *s = a->script;
	struct fl_pg_row_state st;
	struct fl_pg_error e;
	size_t k = 0;
	bool no_combine = false, own_tx = (s->flags & FL_SQL_TX_CONTROL) != 0;
	enum fl_err rv = FL_OK;

	while (k < s->count) {
		bool counted = count && combinable(&s->stmts[k]) && !no_combine;
		char *text;
		bool in_tx;
		int r;

		a->running = k + 1;
		a->sent = false;
		if (atomic_load(&a->c->canceled)) {
			memset(&e, 0, sizeof(e));
			e.kind = FL_ECANCELED;
			snprintf(e.message, sizeof(e.message), "canceled");
			note_statement(a, k, "", &e);
			return FL_ECANCELED;
		}
		text = fl_strndup(a->sql + s->stmts[k].offset, s->stmts[k].len);
		rv = run_statement(a, k, text, counted, &e);
		if (rv == FL_OK) {
			free(text);
			no_combine = false;
			/* Inside the file's own BEGIN, nothing is committed until its COMMIT. */
			if (PQtransactionStatus(a->c->pg) == PQTRANS_IDLE)
				a->applied = (int)k + 1;
			if (count && !counted) {
				KEEP_TRYING(a, rv, &e,
				            fl_pg_history_set_steps(a->c, a->id, (int)k + 1, &e));
				if (rv != FL_OK)
					return a->nothing_done ? rv : book(a, rv, &e);
			}
			k++;
			continue;
		}
		note_statement(a, k, text, &e);
		free(text);
		/* Not flagged, but refused in a transaction block: run it alone. */
		if (counted && strcmp(e.sqlstate, "25001") == 0) {
			no_combine = true;
			continue;
		}
		in_tx = PQstatus(a->c->pg) == CONNECTION_OK &&
		        PQtransactionStatus(a->c->pg) != PQTRANS_IDLE;
		if (in_tx) {
			fl_pg_conn_rollback(a->c); /* the file's own BEGIN: its block is undone */
			a->session_set = false;
		}
		if (rv == FL_ECONNLOST && !counted) {
			/* Unknown whether it ran: never run it twice. */
			lost(a, &e, NULL);
			return FL_ECONNLOST;
		}
		if (rv == FL_ERETRY && (s->stmts[k].flags & FL_SQL_NO_TX_BLOCK)) {
			prefix(a, "not retried: it may have left work behind (an invalid index)");
			return rv;
		}
		/* Inside the file's own BEGIN..COMMIT, a retry must restart at its
		 * BEGIN: only the history row can say where that is. */
		if (rv == FL_ERETRY && own_tx && !count) {
			prefix(a, "not retried, as the file manages its own transaction");
			return rv;
		}
		if ((r = settle(a, rv, &e)) != AGAIN)
			return r == DONE ? FL_OK : (enum fl_err)r;
		if (count && (rv == FL_ECONNLOST || in_tx || own_tx)) {
			KEEP_TRYING(a, rv, &e, fl_pg_history_row(a->c, a->id, &st, &e));
			if (rv != FL_OK)
				return a->nothing_done ? rv : book(a, rv, &e);
			k = st.steps >= 0 && (size_t)st.steps <= k ? (size_t)st.steps : k;
			a->applied = (int)k;
		}
	}
	a->running = 0;
	return FL_OK;
}

static enum fl_err apply_statements(struct run *a)
{
	struct fl_pg_error e;
	enum fl_err rv;

	KEEP_TRYING(a, rv, &e,
	            fl_pg_history_start(a->c, a->id, a->m->id, a->m->checksum, a->started_at, &e));
	if (rv != FL_OK) {
		if (!a->nothing_done)
			rv = book(a, rv, &e);
		final_words(a, rv);
		return rv;
	}
	if ((rv = run_statements(a, true)) != FL_OK)
		goto fail;
	reset_session_timeouts(a);
	if ((rv = verify_retrying(a)) != FL_OK)
		goto fail;
	KEEP_TRYING(a, rv, &e, fl_pg_history_finish(a->c, a->id, false, &e));
	if (rv != FL_OK) {
		if (!a->nothing_done)
			rv = book(a, rv, &e);
		goto fail;
	}
	return FL_OK;
fail:
	reset_session_timeouts(a);
	rv = busy(a, rv, a->applied == 0 && !a->unknown);
	final_words(a, rv);
	record_failure(a, rv);
	return rv;
}

/* ---- SCRIPT: as Prisma runs it ---- */

/* Send the whole file as one simple query, retrying a lock timeout only when
 * the file is known to be atomic (it parsed, and commits nothing halfway). */
static enum fl_err run_script(struct run *a)
{
	bool atomic = atomic_script(a->script);
	struct fl_pg_error e;
	enum fl_err rv;
	int s;

	for (;;) {
		if ((rv = set_session_timeouts(a, &e)) == FL_OK)
			rv = fl_pg_conn_run(a->c, a->sql, NULL, &e);
		if (rv == FL_OK) {
			if (PQtransactionStatus(a->c->pg) == PQTRANS_IDLE)
				return FL_OK;
			fl_pg_conn_rollback(a->c);
			memset(&e, 0, sizeof(e));
			snprintf(e.message, sizeof(e.message),
			         "left a transaction open (BEGIN without COMMIT); rolled back");
			note(a, a->file, NULL, &e);
			return FL_ESQL;
		}
		note(a, a->file, a->sql, &e);
		if (PQstatus(a->c->pg) == CONNECTION_OK)
			fl_pg_conn_rollback(a->c);
		a->session_set = false;
		if (rv == FL_ECONNLOST) {
			lost(a, &e, "connection lost; it may be partly applied");
			return FL_ECONNLOST;
		}
		if (rv == FL_ERETRY && !atomic) {
			prefix(a,
			       a->script != NULL && a->script->parsed
			           ? "not retried, as the file commits part of its work"
			           : "not retried, as the file did not parse: it may commit part "
			             "of its work");
			return rv;
		}
		if ((s = settle(a, rv, &e)) != AGAIN)
			return s == DONE ? FL_OK : (enum fl_err)s;
	}
}

static enum fl_err apply_script(struct run *a)
{
	struct fl_pg_error e;
	enum fl_err rv;

	KEEP_TRYING(a, rv, &e,
	            fl_pg_history_start(a->c, a->id, a->m->id, a->m->checksum, a->started_at, &e));
	if (rv != FL_OK) {
		if (!a->nothing_done)
			rv = book(a, rv, &e);
		final_words(a, rv);
		return rv;
	}
	if ((rv = run_script(a)) != FL_OK)
		goto fail;
	reset_session_timeouts(a);
	if ((rv = verify_retrying(a)) != FL_OK)
		goto fail;
	/* Prisma: record_successful_step, then record_migration_finished. */
	KEEP_TRYING(a, rv, &e, fl_pg_history_finish(a->c, a->id, true, &e));
	if (rv != FL_OK) {
		if (!a->nothing_done)
			rv = book(a, rv, &e);
		goto fail;
	}
	return FL_OK;
fail:
	reset_session_timeouts(a);
	rv = busy(a, rv, atomic_script(a->script));
	final_words(a, rv);
	record_failure(a, rv);
	return rv;
}

static enum fl_err start(struct run *a, struct fl_conn *c, const struct fl_migration *m,
                         enum fl_apply_mode mode, const struct fl_sql_script *script,
                         const struct fl_apply_opts *opts, struct fl_apply_result *res, bool down)
{
	memset(a, 0, sizeof(*a));
	memset(res, 0, sizeof(*res));
	res->attempts = 1;
	a->c = c;
	a->m = m;
	a->mode = mode;
	a->revert = down;
	a->script = script;
	a->res = res;
	a->file = down ? "down.sql" : "migration.sql";
	if (m == NULL || opts == NULL || (a->sql = down ? m->down_sql : m->sql) == NULL)
		return fl_errf(res->message, FL_EINVAL, "%s: nothing to run", a->file);
	if (mode == FL_APPLY_STATEMENTS && (script == NULL || !script->parsed))
		return fl_errf(res->message, FL_EINVAL,
		               "statement-by-statement mode needs the parsed %s", a->file);
	res->statements = script != NULL ? (int)script->count : 0;
	a->lock_ms_plain = m->lock_timeout_ms >= 0 ? m->lock_timeout_ms : opts->lock_timeout_ms;
	a->lock_ms_no_tx = m->lock_timeout_ms;
	a->lock_ms = script != NULL && (script->flags & FL_SQL_NO_TX_BLOCK) && script->count == 1
	                 ? a->lock_ms_no_tx
	                 : a->lock_ms_plain;
	a->stmt_ms =
	    m->statement_timeout_ms >= 0 ? m->statement_timeout_ms : opts->statement_timeout_ms;
	a->try_started_us = fl_now_us();
	fl_retry_start(&a->retry, &opts->retry);
	fl_pg_history_new_id(a->id);
	if (atomic_load(&c->canceled))
		return fl_errf(res->message, FL_ECANCELED, "canceled before %s started", a->file);
	return FL_OK;
}

/* Start from the session state right after connecting: a SET search_path or
 * SET ROLE of the migration before must not leak into this one, so that the
 * result never depends on how migrations were batched into deploys. */
static enum fl_err clean(struct run *a)
{
	struct fl_pg_error e;
	int s;

	while ((s = settle(a, fl_pg_conn_clean(a->c, &e), &e)) == AGAIN)
		;
	if (s == FL_OK || s == DONE)
		return FL_OK;
	if (!a->nothing_done) {
		note(a, "resetting the session", NULL, &e);
		return s == FL_ESQL ? FL_EDB : (enum fl_err)s;
	}
	return (enum fl_err)s;
}

/* What every apply and revert does at its end. */
static enum fl_err finish(struct run *a, enum fl_err rv)
{
	a->res->duration_us = fl_now_us() - a->try_started_us;
	if (rv == FL_OK) {
		/* Errors overcome by a retry stay only in sqlstate and attempts. */
		a->res->message[0] = '\0';
		a->res->statement = 0;
	} else if (a->res->message[0] == '\0') {
		tell(a, "%s: %s", a->file, fl_strerror(rv));
	}
	return rv;
}

enum fl_err fl_pg_apply_run(struct fl_conn *c, const struct fl_migration *m,
                            enum fl_apply_mode mode, const struct fl_sql_script *script,
                            const struct fl_apply_opts *opts, struct fl_apply_result *res)
{
	struct run a;
	enum fl_err rv;

	if ((rv = start(&a, c, m, mode, script, opts, res, false)) != FL_OK)
		return rv;
	/* A batched TRANSACTION try cleans the session itself. */
	if (!batched(&a) && (rv = clean(&a)) != FL_OK)
		return finish(&a, rv);
	switch (mode) {
	case FL_APPLY_TRANSACTION:
		rv = apply_tx(&a);
		break;
	case FL_APPLY_STATEMENTS:
		rv = apply_statements(&a);
		break;
	case FL_APPLY_SCRIPT:
		rv = apply_script(&a);
		break;
	default:
		return fl_errf(res->message, FL_EINVAL, "unknown apply mode %d", (int)mode);
	}
	return finish(&a, rv);
}

/* ---- revert: down.sql, then the history rows go ---- */

static enum fl_err nothing_to_revert(struct run *a)
{
	return fl_errf(a->res->message, FL_ESTATE,
	               "migration '%s' is not recorded in the database: nothing to roll back",
	               a->m->id);
}

/* One try of a transactional revert; *gone says the rows were already gone
 * (a previous try committed). */
static enum fl_err revert_tx_try(struct run *a, const char *detail, bool *gone,
                                 struct fl_pg_error *e)
{
	struct fl_conn *c = a->c;
	char set[128];
	long rows;
	enum fl_err rv;

	*gone = false;
	if ((rv = fl_pg_conn_run(c, "BEGIN", NULL, e)) != FL_OK)
		goto book;
	timeouts_sql(a, true, set, sizeof(set));
	if (set[0] != '\0' && (rv = fl_pg_conn_run(c, set, NULL, e)) != FL_OK)
		goto book;
	if ((rv = fl_pg_history_count(c, a->m->id, &rows, e)) != FL_OK)
		goto book;
	if (rows == 0) {
		fl_pg_conn_rollback(c);
		*gone = true;
		return FL_OK;
	}
	if ((rv = fl_pg_conn_run(c, a->sql, NULL, e)) != FL_OK) {
		note(a, a->file, a->sql, e);
		goto out;
	}
	if (PQtransactionStatus(c->pg) == PQTRANS_IDLE)
		fl_logger_warn(a->c->log, a->m->id,
		               "down.sql ended flotilla's transaction with its own COMMIT");
	if ((rv = fl_pg_history_forget(c, a->m->id, a->m->checksum, detail, &rows, e)) != FL_OK)
		goto book;
	if (PQtransactionStatus(c->pg) != PQTRANS_IDLE &&
	    (rv = fl_pg_conn_run(c, "COMMIT", NULL, e)) != FL_OK) {
		note(a, "COMMIT", NULL, e);
		goto out;
	}
	return FL_OK;
book:
	rv = book(a, rv, e);
out:
	if (PQstatus(c->pg) == CONNECTION_OK)
		fl_pg_conn_rollback(c);
	return rv;
}

static enum fl_err revert_tx(struct run *a)
{
	struct fl_pg_error e;
	bool gone, first = true;
	enum fl_err rv;
	int s;

	for (;;) {
		rv = revert_tx_try(a, "down.sql in one transaction", &gone, &e);
		if (rv == FL_OK && gone) {
			if (first)
				return nothing_to_revert(a);
			fl_logger_info(a->c->log, a->m->id,
			               "the connection dropped after the commit went through");
			return FL_OK;
		}
		if (rv == FL_OK)
			return FL_OK;
		if (rv == FL_EDB)
			break;
		if ((s = settle(a, rv, &e)) != AGAIN) {
			rv = (enum fl_err)s;
			break;
		}
		first = first && rv != FL_ECONNLOST;
	}
	rv = busy(a, rv, true);
	final_words(a, rv);
	return rv;
}

static enum fl_err revert_outside_tx(struct run *a)
{
	struct fl_pg_error e;
	long rows = 0;
	enum fl_err rv;

	KEEP_TRYING(a, rv, &e, fl_pg_history_count(a->c, a->m->id, &rows, &e));
	if (rv != FL_OK) {
		rv = book(a, rv, &e);
		goto out;
	}
	if (rows == 0)
		return nothing_to_revert(a);
	rv = a->mode == FL_APPLY_STATEMENTS ? run_statements(a, false) : run_script(a);
	reset_session_timeouts(a);
	if (rv != FL_OK) {
		rv = busy(a, rv,
		          a->mode == FL_APPLY_STATEMENTS ? a->applied == 0 && !a->unknown
		                                         : atomic_script(a->script));
		goto out;
	}
	KEEP_TRYING(a, rv, &e,
	            fl_pg_history_forget(a->c, a->m->id, a->m->checksum,
	                                 a->mode == FL_APPLY_STATEMENTS
	                                     ? "down.sql statement by statement"
	                                     : "down.sql as one script",
	                                 &rows, &e));
	if (rv != FL_OK)
		rv = book(a, rv, &e);
out:
	if (rv != FL_OK)
		final_words(a, rv);
	return rv;
}

enum fl_err fl_pg_apply_revert(struct fl_conn *c, const struct fl_migration *m,
                               enum fl_apply_mode mode, const struct fl_sql_script *down,
                               const struct fl_apply_opts *opts, struct fl_apply_result *res)
{
	struct run a;
	enum fl_err rv;

	if ((rv = start(&a, c, m, mode, down, opts, res, true)) != FL_OK)
		return rv;
	if ((rv = clean(&a)) != FL_OK)
		return finish(&a, rv);
	/* The rollback is recorded in our own table: make sure we may write
	 * there before down.sql changes anything. */
	if ((rv = fl_pg_history_ensure_events(c, res->message)) != FL_OK)
		return rv;
	switch (mode) {
	case FL_APPLY_TRANSACTION:
		rv = revert_tx(&a);
		break;
	case FL_APPLY_STATEMENTS:
	case FL_APPLY_SCRIPT:
		rv = revert_outside_tx(&a);
		break;
	default:
		return fl_errf(res->message, FL_EINVAL, "unknown apply mode %d", (int)mode);
	}
	rv = finish(&a, rv);
	if (rv == FL_OK)
		fl_logger_info(c->log, m->id, "rolled back");
	return rv;
}
