/*
 * The driver interface: everything flotilla does to one database. One ops
 * table per engine (PostgreSQL now, SQLite next), chosen by URL scheme, as nng
 * transports and curl's vtls backends are.
 *
 * The history lives in Prisma's `_prisma_migrations` table, written exactly as
 * Prisma writes it, so `prisma migrate status` and flotilla agree on every
 * database. flotilla keeps facts Prisma has no column for (rollbacks,
 * resolves) in a table of its own.
 *
 * Threads: a connection is used by one thread at a time; only cancel() may be
 * called from another thread, at any moment from conn_new() until close()
 * begins (the engine's session serialises the two).
 *
 * Bounds: every operation ends by itself. Connecting and reconnecting have a
 * deadline; a silent peer is given up by TCP keepalives and tcp_user_timeout;
 * a canceled statement whose server does not answer is abandoned.
 */
#ifndef FL_DRIVER_H
#define FL_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "migration.h"
#include "retry.h"
#include "split.h"

#define FL_DEFAULT_LOCK_TIMEOUT_MS    500   /* as pgroll chose: never queue the app for long */
#define FL_DEFAULT_LOCK_WAIT_MS       60000 /* waiting for another deployer's migration lock */
#define FL_DEFAULT_CONNECT_TIMEOUT_MS 10000 /* connect or reconnect, handshake included */
#define FL_DEFAULT_TCP_TIMEOUT_MS     60000 /* a silent peer is given up after this */

struct fl_conn; /* a driver's connection; opaque */

/* How a connection is made and bounded. fl_conn_opts_init() gives the defaults. */
struct fl_conn_opts {
	/* The whole of connecting (and of each reconnect): TCP, TLS,
	 * authentication. Host names are resolved by the system resolver within
	 * its own timeouts (resolv.conf), before this clock runs out or not. A
	 * `connect_timeout` in the URL (seconds, as Prisma reads it) wins. */
	int64_t connect_timeout_ms;
	/* TCP keepalives and tcp_user_timeout: a peer that stops answering is
	 * given up after about this long, even while we wait for a lock. Not
	 * used on unix sockets. URL parameters of the same names win. */
	int64_t tcp_timeout_ms;
	/* Let libpq read its environment (PGHOST, PGPASSWORD, PGOPTIONS,
	 * PGSSLMODE, PGSERVICE...), ~/.pgpass and pg_service.conf. When false
	 * (the default), only the URL decides where and how we connect. */
	bool use_libpq_env;
	/* Where the driver's warnings and infos go; NULL: the process-wide
	 * logger. Borrowed: it must outlive the connection. */
	const struct fl_logger *log;
};

void fl_conn_opts_init(struct fl_conn_opts *o);

/* One row of _prisma_migrations. Strings are owned by the history. */
struct fl_history_row {
	char *id; /* UUID v4 */
	char *checksum;
	char *migration_name;
	char *logs;           /* NULL when NULL */
	char *started_at;     /* as the server prints timestamptz */
	char *finished_at;    /* NULL when NULL */
	char *rolled_back_at; /* NULL when NULL */
	int applied_steps_count;
};

struct fl_history {
	bool table_exists;
	struct fl_history_row *rows; /* ordered by started_at, then id */
	size_t count;
};

void fl_history_fini(struct fl_history *h);

/* How a migration runs; the engine chooses from the directives and the parse. */
enum fl_apply_mode {
	/* One transaction holding the history row, the script and verify.sql:
	 * all or nothing. The default for every file that does not manage its
	 * own transaction. */
	FL_APPLY_TRANSACTION,
	/* `-- flotilla:no-transaction`: each statement committed on its own;
	 * applied_steps_count counts them; a failure names the statement. */
	FL_APPLY_STATEMENTS,
	/* As Prisma runs it: history row written first, the whole file sent as one
	 * simple query. For files with their own BEGIN/COMMIT, a lone statement that
	 * cannot run in a transaction block, or one our parser cannot read. */
	FL_APPLY_SCRIPT,
};

struct fl_apply_opts {
	int64_t lock_timeout_ms;      /* SET lock_timeout; -1 leaves the server's */
	int64_t statement_timeout_ms; /* SET statement_timeout; -1 leaves the server's */
	struct fl_retry_policy
	    retry; /* for lock timeouts, serialization failures, lost connections */
};

struct fl_apply_result {
	char sqlstate[6];             /* of the last error, "" if none */
	int statement;                /* 1-based failing statement (STATEMENTS mode), else 0 */
	int statements;               /* statements in the script, when known */
	int attempts;                 /* tries made, 1 when nothing was retried */
	int64_t duration_us;          /* wall time of the last try */
	char message[FL_ERRBUF_SIZE]; /* one line for humans; also what went into logs */
	/* The connection was lost and re-established during the call: other
	 * deployers may have changed the history meanwhile, so read it again
	 * before the next step (with FL_OK too: the commit may have landed). */
	bool reconnected;
};

struct fl_driver_ops {
	const char *name;

	/* A connection object, not connected yet, so that cancel() can reach a
	 * connect in progress. No I/O; opts are copied (opts->log borrowed);
	 * NULL opts: the defaults. Aborts only on out-of-memory. */
	struct fl_conn *(*conn_new)(const struct fl_conn_opts *opts);
	/* Connect c to url, once. Errors: FL_EINVAL (malformed URL, or a libpq
	 * environment variable that cannot be kept out), FL_ECONNECT (unreachable,
	 * timed out), FL_EAUTH, FL_ECANCELED; a one-line reason that never
	 * contains the password. On error c is left for close(). */
	enum fl_err (*connect)(struct fl_conn *c, const char *url, char *errbuf);
	void (*close)(struct fl_conn *c); /* frees; NULL is a no-op */

	/* The migration lock, held by this connection until unlock or close;
	 * waits up to wait_ms (<= 0: tries once), then FL_ELOCKED. On
	 * PostgreSQL: Prisma's key in shared mode (pg_advisory_lock_shared
	 * (72707369)), so `prisma migrate deploy` (exclusive) and flotilla
	 * exclude each other, plus an exclusive key for the target schema, so
	 * flotilla deployers of different schemas of one database run side by
	 * side. Re-taken by the driver after a reconnect. */
	enum fl_err (*lock)(struct fl_conn *c, int64_t wait_ms, char *errbuf);
	enum fl_err (*unlock)(struct fl_conn *c, char *errbuf);
	/* Whether another session holds the migration lock of c's schema (or
	 * Prisma's, exclusively): a deploy is running there. */
	enum fl_err (*lock_held)(struct fl_conn *c, bool *held, char *errbuf);

	/* Read _prisma_migrations; a missing table is FL_OK with no rows. */
	enum fl_err (*history_read)(struct fl_conn *c, struct fl_history *out, char *errbuf);
	/* Whether the target schema holds no object of the user's, history
	 * tables aside: deploy refuses to start a history in a non-empty schema
	 * (Prisma's P3005) until it is baselined with resolve --applied. */
	enum fl_err (*schema_empty)(struct fl_conn *c, bool *empty, char *errbuf);
	/* Create _prisma_migrations with Prisma's DDL (and the schema) when
	 * missing. flotilla's own table is created by the calls that write it. */
	enum fl_err (*history_ensure)(struct fl_conn *c, char *errbuf);

	/*
	 * Apply m (script is its parsed migration.sql, required for STATEMENTS),
	 * from a clean session (nothing an earlier migration SET). Transient
	 * failures are retried within opts->retry; after a lost connection the
	 * driver reconnects, re-takes the lock, reads its history row to learn
	 * whether the migration had committed, and sets res->reconnected.
	 * Success: a finished history row. Failure: FL_ESQL, FL_EVERIFY,
	 * FL_ERETRY (budget spent, something applied), FL_ECONNLOST,
	 * FL_ECANCELED, with a failed row (finished_at NULL, logs saying why,
	 * and how far an interrupted migration got) as Prisma leaves one, and
	 * res filled in. A TRANSACTION-mode failure leaves nothing else behind.
	 * No row at all: FL_EBUSY (retries spent on a busy table, nothing
	 * applied: run again), FL_EDB (the database refused the bookkeeping),
	 * FL_ECONNLOST with res->reconnected when nothing of it had committed
	 * (read the history again: another deployer may have moved on), and
	 * FL_ELOCKED (after a reconnect another deployer held the lock). On
	 * success res->message is "" and res->statement 0; res->sqlstate keeps
	 * the last error a retry overcame.
	 */
	enum fl_err (*apply)(struct fl_conn *c, const struct fl_migration *m,
	                     enum fl_apply_mode mode, const struct fl_sql_script *script,
	                     const struct fl_apply_opts *opts, struct fl_apply_result *res)
	    __attribute__((warn_unused_result));

	/*
	 * Roll m back: run down.sql and delete its _prisma_migrations rows in one
	 * transaction (mode TRANSACTION; for SCRIPT or STATEMENTS the rows are
	 * deleted once down.sql succeeded), and log the rollback in flotilla's own
	 * table (PostgreSQL: _flotilla.events, made writable before down.sql
	 * runs, or FL_EDB naming the privilege missing). Deleting the rows is
	 * what makes both `prisma migrate status` and `prisma migrate deploy`
	 * call the migration not applied.
	 * FL_ESTATE (down.sql not run) when the migration has no rows at all.
	 * A failed down.sql leaves the rows as they were.
	 */
	enum fl_err (*revert)(struct fl_conn *c, const struct fl_migration *m,
	                      enum fl_apply_mode mode, const struct fl_sql_script *down,
	                      const struct fl_apply_opts *opts, struct fl_apply_result *res)
	    __attribute__((warn_unused_result));

	/* `migrate resolve --applied`: mark failed rows of name rolled back and
	 * insert a finished row with checksum, applied_steps_count 0. Creates the
	 * history table if missing, as Prisma does for a baseline. FL_ESTATE, as
	 * Prisma refuses, when name already has a finished row. */
	enum fl_err (*mark_applied)(struct fl_conn *c, const char *name, const char *checksum,
	                            char *errbuf) __attribute__((warn_unused_result));
	/* `migrate resolve --rolled-back`: set rolled_back_at on name's failed rows.
	 * FL_ESTATE, as Prisma refuses, when name has no rows or only finished
	 * ones; FL_OK changing nothing when its failed rows are rolled back already. */
	enum fl_err (*mark_rolled_back)(struct fl_conn *c, const char *name, char *errbuf)
	    __attribute__((warn_unused_result));

	/* SHA-256 (hex) over a canonical, sorted dump of the schema's catalog,
	 * history tables excluded; the dump itself goes to dump if not NULL. */
	enum fl_err (*fingerprint)(struct fl_conn *c, struct fl_buf *dump,
	                           char hex[FL_CHECKSUM_HEX_LEN + 1], char *errbuf);

	/* Any thread: abandon a connect in progress, ask the server to cancel
	 * what this connection runs now. Sticky: afterwards connect, lock,
	 * apply and revert on this connection return FL_ECANCELED (retries and
	 * reconnects stop too); bookkeeping queries still run, bounded. May
	 * block until the cancel request is delivered (TCP bounds apply). */
	void (*cancel)(struct fl_conn *c);
};

/* The driver for url's scheme (postgres://, postgresql://), or NULL. */
const struct fl_driver_ops *fl_driver_for_url(const char *url);

/* url with any password replaced by "***", for messages; caller frees. */
char *fl_driver_redact_url(const char *url);

#endif
