/*
 * One libpq connection as the PostgreSQL driver sees it: the target schema,
 * Prisma's advisory lock, reconnection, cancellation, and running SQL with
 * every failure sorted into one of four kinds (see struct fl_pg_error).
 *
 * Invariants:
 * - Every table flotilla touches is named through qmig/qevents, quoted and
 *   schema-qualified, because a migration may change search_path.
 * - `locked` says whether this session should hold pg_advisory_lock(72707369);
 *   fl_pg_conn_reset() takes it again on the new session.
 * - The password is never stored here: libpq keeps its own copy for PQreset.
 *
 * Threads: one thread uses a connection at a time; only fl_pg_conn_cancel()
 * may be called from another thread (the cancel handle is behind a mutex).
 */
#ifndef FL_PG_CONN_H
#define FL_PG_CONN_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* Prisma Migrate's advisory lock key (prisma-engines, flavour/postgres.rs). */
#define FL_PG_LOCK_KEY         72707369
#define FL_PG_MIGRATIONS_TABLE "_prisma_migrations"
#define FL_PG_EVENTS_TABLE     "_flotilla_events"

struct fl_conn {
	PGconn *pg;
	char *schema; /* target schema, from the URL's `schema` parameter; "public" by default */
	bool schema_given; /* the URL named it: search_path is set to it, as Prisma does */
	char *qschema;     /* the same, quoted as an identifier */
	char *qmig;        /* "schema"."_prisma_migrations" */
	char *qevents;     /* "schema"."_flotilla_events" */
	char *shown;       /* the URL with its password redacted, for messages */
	char *db;          /* database name, for messages */

	bool locked;          /* the session holds (or must hold again) the migration lock */
	int64_t lock_wait_ms; /* how long lock() waited; reused when re-taking it */

	/* The backend we run on, so that after a reconnect we can end our own
	 * orphaned session (it may still hold the lock or run our migration). */
	int backend_pid;
	char backend_start[64];

	pthread_mutex_t cancel_mu;
	PGcancel *cancel;     /* guarded by cancel_mu */
	atomic_bool canceled; /* set by fl_pg_conn_cancel(); sticky */
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

/* Connect to url (postgres:// or postgresql://). Errors: FL_EINVAL (bad URL),
 * FL_EAUTH, FL_ECONNECT; errbuf never contains the password. */
enum fl_err fl_pg_conn_open(const char *url, struct fl_conn **out, char *errbuf);
void fl_pg_conn_close(struct fl_conn *c); /* NULL is a no-op */

/* Reconnect after a lost connection: same parameters, search_path again, our
 * orphaned backend ended, and the migration lock re-taken if it was held.
 * Errors: FL_ECONNLOST, FL_ELOCKED, FL_ECANCELED. */
enum fl_err fl_pg_conn_reset(struct fl_conn *c, char *errbuf);

/* pg_advisory_lock(72707369), waiting at most wait_ms (<= 0: try once).
 * Errors: FL_ELOCKED, FL_ECONNLOST, FL_ECANCELED, FL_ESQL. */
enum fl_err fl_pg_conn_lock(struct fl_conn *c, int64_t wait_ms, char *errbuf);
enum fl_err fl_pg_conn_unlock(struct fl_conn *c, char *errbuf);

/* Any thread: ask the server to cancel what runs now, and make every later
 * apply, revert or lock on this connection stop with FL_ECANCELED. */
void fl_pg_conn_cancel(struct fl_conn *c);

/*
 * Run sql (one or more statements) with the simple query protocol, exactly
 * as given, as Prisma does. On success *last (if not NULL) gets the result
 * of the last statement, for the caller to PQclear. COPY FROM STDIN is
 * refused by the server on our request; COPY TO STDOUT output is discarded.
 */
enum fl_err fl_pg_conn_run(struct fl_conn *c, const char *sql, PGresult **last,
                           struct fl_pg_error *e);

/* One statement with text parameters (extended protocol). On success *out
 * (if not NULL) gets the result, for the caller to PQclear. */
enum fl_err fl_pg_conn_query(struct fl_conn *c, const char *sql, int nparams,
                             const char *const *params, PGresult **out, struct fl_pg_error *e);

/* End the transaction block a failure left open, if any. */
void fl_pg_conn_rollback(struct fl_conn *c);

/* e as one line: "message (SQLSTATE xxxxx)". */
void fl_pg_error_line(const struct fl_pg_error *e, char *buf, size_t size);

/* The first line of s, trimmed, into buf. */
void fl_pg_first_line(const char *s, char *buf, size_t size);

#endif
