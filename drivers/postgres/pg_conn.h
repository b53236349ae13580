/*
 * One libpq connection as the PostgreSQL driver sees it: how it is made and
 * bounded, the target schema, the migration lock, reconnection,
 * cancellation, and running SQL with every failure sorted into one of four
 * kinds (see struct fl_pg_error).
 *
 * Invariants:
 * - Every table flotilla touches is named through qmig/qevents, quoted and
 *   schema-qualified, because a migration may change search_path.
 * - `locked` says whether this session should hold the migration lock: Prisma's
 *   key in shared mode and our key for the schema, exclusively;
 *   fl_pg_conn_reset() takes both again on the new session.
 * - The password is never stored here: libpq keeps its own copy for reset.
 * - Nothing waits without a bound. libpq runs non-blocking; every wait is a
 *   poll() in short slices that watches the sticky `canceled` flag. Connect
 *   and reset have a deadline (opts.connect_timeout_ms); TCP keepalives and
 *   tcp_user_timeout end a connection whose peer went silent; a statement
 *   still running FL_PG_CANCEL_GRACE_MS after a cancel (a server that does
 *   not answer) is abandoned by closing the socket.
 * - libpq's environment (PG* variables, ~/.pgpass, pg_service.conf) is kept
 *   out unless opts.use_libpq_env: every option whose environment variable
 *   is set gets an explicit value (libpq's compiled default), passfile points
 *   nowhere, and PGDATESTYLE/PGTZ/PGGEQO, which libpq sends to the server
 *   with no way to override them, are refused.
 *
 * Threads: one thread uses a connection at a time; only fl_pg_conn_cancel()
 * may be called from another thread (the cancel handle is behind a mutex),
 * from fl_pg_conn_new() until fl_pg_conn_close() begins.
 */
#ifndef FL_PG_CONN_H
#define FL_PG_CONN_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "err.h"
#include "log.h"

/* Prisma Migrate's advisory lock key (prisma-engines, flavour/postgres.rs). */
#define FL_PG_LOCK_KEY 72707369
/* The first key of flotilla's per-schema lock, pg_advisory_lock(class,
 * hashtext(schema)): 'flot' in ASCII. In pg_locks: classid = this, objid =
 * hashtext(schema) as an oid, objsubid = 2 (Prisma's bigint key shows
 * classid 0, objid 72707369, objsubid 1). */
#define FL_PG_SCHEMA_LOCK_CLASS 1718382452
#define FL_PG_MIGRATIONS_TABLE  "_prisma_migrations"
#define FL_PG_EVENTS_TABLE      "_flotilla_events"

#define FL_PG_CANCEL_GRACE_MS  5000 /* after a cancel, how long a statement may still run */
#define FL_PG_CANCEL_RESEND_MS 1000 /* ...and when we send the cancel again ourselves */

struct fl_pg_cancel; /* pg_conn.c: a cancel handle and its reference count */

struct fl_conn {
	PGconn *pg;
	struct fl_conn_opts opts;
	const struct fl_logger *log; /* opts.log: NULL is the process-wide logger */
	char *schema; /* target schema, from the URL's `schema` parameter; "public" by default */
	bool schema_given;          /* the URL named it: search_path is set to it, as Prisma does */
	char *qschema;              /* the same, quoted as an identifier */
	char *lschema;              /* the same, quoted as a literal */
	char *qmig;                 /* "schema"."_prisma_migrations" */
	char *qevents;              /* "schema"."_flotilla_events" */
	char *shown;                /* the URL with its password redacted, for messages */
	char *db;                   /* database name, for messages */
	int64_t connect_timeout_ms; /* opts', or the URL's connect_timeout */

	bool locked;          /* the session holds (or must hold again) the migration lock */
	int64_t lock_wait_ms; /* how long lock() waited; reused when re-taking it */

	/* The backend we run on, so that after a reconnect we can end our own
	 * orphaned session (it may still hold the lock or run our migration):
	 * its pid, and a server time it was running at. Its backend_start is no
	 * later; a backend that reuses the pid starts after it ended. */
	int backend_pid;
	char backend_alive_at[64];

	pthread_mutex_t cancel_mu;
	struct fl_pg_cancel *cancel; /* guarded by cancel_mu; shared with cancel senders */
	atomic_bool canceled;        /* set by fl_pg_conn_cancel(); sticky */
	bool abandoned;              /* we closed the socket after a cancel went unanswered */
};

/*
 * Why a statement failed:
 * FL_ESQL      the server rejected it; never retried
 * FL_ERETRY    lock timeout (55P03), serialization failure (40001), deadlock (40P01)
 * FL_ECONNLOST the connection dropped (class 08, 57P01-57P03, or the socket died)
 * FL_ECANCELED fl_pg_conn_cancel() stopped it
 */
struct fl_pg_error {
	enum fl_err kind;
	char sqlstate[6];  /* "" when the server sent none */
	int position;      /* 1-based character position in the query text, 0 if unknown */
	char message[512]; /* primary message, one line */
	char detail[512];
	char hint[256];
};

/* A connection object with a copy of opts (NULL: defaults), not connected. */
struct fl_conn *fl_pg_conn_new(const struct fl_conn_opts *opts);
/* Connect c to url (postgres:// or postgresql://), once. Errors: FL_EINVAL
 * (malformed URL, refused environment), FL_EAUTH, FL_ECONNECT (unreachable,
 * timed out), FL_ECANCELED; errbuf never contains the password. */
enum fl_err fl_pg_conn_connect(struct fl_conn *c, const char *url, char *errbuf);
/* new + connect; on error *out is NULL and nothing is left. */
enum fl_err fl_pg_conn_open(const char *url, const struct fl_conn_opts *opts, struct fl_conn **out,
                            char *errbuf) __attribute__((warn_unused_result));
void fl_pg_conn_close(struct fl_conn *c); /* NULL is a no-op */

/* Reconnect after a lost connection, within the connect deadline: same
 * parameters, search_path again, our orphaned backend ended and waited for
 * (at most the connect deadline again: it may hold the lock), and the
 * migration lock re-taken if it was held.
 * Errors: FL_ECONNLOST, FL_ELOCKED, FL_ECANCELED. */
enum fl_err fl_pg_conn_reset(struct fl_conn *c, char *errbuf) __attribute__((warn_unused_result));

/* The migration lock (see driver.h), waiting at most wait_ms in all (<= 0:
 * try once). Errors: FL_ELOCKED, FL_ECONNLOST, FL_ECANCELED, FL_ESQL. */
enum fl_err fl_pg_conn_lock(struct fl_conn *c, int64_t wait_ms, char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_pg_conn_unlock(struct fl_conn *c, char *errbuf);
/* Whether another backend holds our schema's key, or Prisma's key
 * exclusively, in this database. */
enum fl_err fl_pg_conn_lock_held(struct fl_conn *c, bool *held, char *errbuf)
    __attribute__((warn_unused_result));

/* Any thread: ask the server to cancel what runs now, abandon a connect in
 * progress, and make every later connect, reset, apply, revert or lock on
 * this connection stop with FL_ECANCELED. Returns at once: the request is
 * sent by a thread of its own (PQcancel may block without a bound). */
void fl_pg_conn_cancel(struct fl_conn *c);

/*
 * Put the session back as it was right after connecting, in one round trip,
 * keeping the migration lock: ends a transaction left open, RESET ALL, SET
 * SESSION AUTHORIZATION DEFAULT and RESET ROLE, closes cursors, drops
 * prepared statements (named ones too: prepare again after), LISTENs, temp
 * tables, cached plans and sequence state, and sets search_path to the URL's
 * schema again. Session-level settings made before (lock_timeout,
 * statement_timeout) are gone: set them after. Errors as fl_pg_conn_run.
 */
enum fl_err fl_pg_conn_clean(struct fl_conn *c, struct fl_pg_error *e)
    __attribute__((warn_unused_result));
/* The statements of fl_pg_conn_clean (for an idle session, no ROLLBACK), for
 * a caller that sends them in a batch of its own, even inside a transaction
 * block: appended to out, ';'-separated, no trailing ';'. Returns how many. */
int fl_pg_conn_clean_sql(const struct fl_conn *c, struct fl_buf *out);

/*
 * Run sql (one or more statements) with the simple query protocol, exactly
 * as given, as Prisma does. On success *last (if not NULL) gets the result
 * of the last statement, for the caller to PQclear. COPY FROM STDIN is
 * refused by the server on our request; COPY TO STDOUT output is discarded.
 */
enum fl_err fl_pg_conn_run(struct fl_conn *c, const char *sql, PGresult **last,
                           struct fl_pg_error *e);

/*
 * fl_pg_conn_run for a batch whose results the caller tells apart: *done
 * gets how many statements completed before the first failure (all of them
 * on success), and *nth the result of statement `want` (0-based) if it
 * completed, for the caller to PQclear (NULL otherwise).
 */
enum fl_err fl_pg_conn_run_counted(struct fl_conn *c, const char *sql, int want, PGresult **nth,
                                   int *done, struct fl_pg_error *e);

/* One statement with text parameters (extended protocol). On success *out
 * (if not NULL) gets the result, for the caller to PQclear. */
enum fl_err fl_pg_conn_query(struct fl_conn *c, const char *sql, int nparams,
                             const char *const *params, PGresult **out, struct fl_pg_error *e);

/*
 * For callers that drive libpq's asynchronous calls themselves (pipeline
 * mode): send what is queued and wait until PQgetResult() will not block,
 * minding cancel and its grace. FL_OK, or FL_ECONNLOST / FL_ECANCELED with e
 * filled in (the connection is then unusable).
 */
enum fl_err fl_pg_conn_await(struct fl_conn *c, struct fl_pg_error *e);

/* End the transaction block a failure left open, if any. */
void fl_pg_conn_rollback(struct fl_conn *c);

/* e as one line: "message (SQLSTATE xxxxx)". */
void fl_pg_error_line(const struct fl_pg_error *e, char *buf, size_t size);

/* The first line of s, trimmed, into buf. */
void fl_pg_first_line(const char *s, char *buf, size_t size);

#endif
