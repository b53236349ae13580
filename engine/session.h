/*
 * A session: one database, its driver connection, the local migration set,
 * the history as last read and the plan built from both. Writers (deploy,
 * rollback, resolve) open it locked: they hold the migration lock from
 * before they read the history until they close, so two deployers, or
 * flotilla and `prisma migrate deploy`, never act on a stale view.
 *
 * The session is opaque outside engine/ (its definition is in
 * session_internal.h): programs embedding the engine (the CLI, the agent)
 * use the functions below.
 *
 * Life cycle and threads:
 *
 *   s = fl_session_new(opts, logger);     no I/O
 *   fl_session_open(s, url, set, lock);   connect, lock, read the history
 *   fl_deploy(s, ...) / fl_rollback / fl_resolve_* / fl_session_fingerprint
 *   fl_session_close(s);                  unlock, disconnect
 *   fl_session_free(s);
 *
 * One thread drives a session at a time. fl_session_cancel() alone may be
 * called from any other thread, at any moment from fl_session_new() until
 * fl_session_free() begins: before open, during connect, while waiting for
 * the lock, during a reconnect, while a migration runs, during or after
 * close. The caller must make sure no cancel is still running, or can still
 * start, when it calls fl_session_free() (e.g. join its signal thread first).
 *
 * Owns the connection, history, plan and a copy of the logger (its context
 * string included); borrows the migration set, which must outlive it.
 */
#ifndef FL_SESSION_H
#define FL_SESSION_H

#include <stdbool.h>

#include "buf.h"
#include "driver.h"
#include "log.h"
#include "plan.h"

struct fl_engine_opts {
	struct fl_apply_opts apply; /* lock/statement timeouts, retry policy */
	int64_t lock_wait_ms;       /* how long to wait for another deployer */
	/* Connect deadline, TCP bounds, libpq's environment (off by default);
	 * conn.log is ignored: the session's logger is used. */
	struct fl_conn_opts conn;
};

void fl_engine_opts_init(struct fl_engine_opts *o);

/* Progress of deploy and rollback, one event per migration step. */
enum fl_event_kind {
	FL_EVENT_START, /* about to apply or revert */
	FL_EVENT_DONE,  /* applied or reverted; res has timings */
	FL_EVENT_FAILED /* res and err say why */
};

struct fl_event {
	enum fl_event_kind kind;
	bool revert; /* rollback rather than apply */
	const struct fl_migration *migration;
	enum fl_apply_mode mode;
	const struct fl_apply_result *res; /* NULL for START */
	enum fl_err err;
};

typedef void (*fl_event_fn)(const struct fl_event *ev, void *arg);

struct fl_session;

/* A closed session with a copy of opts and of log (NULL: the process-wide
 * logger of lib/log.h). No I/O; aborts only on out-of-memory. */
struct fl_session *fl_session_new(const struct fl_engine_opts *opts, const struct fl_logger *log);
/* Close (if open) and free. NULL is a no-op. Not concurrently with a cancel. */
void fl_session_free(struct fl_session *s);

/*
 * Connect to url, with `lock` take the migration lock, then read the history
 * and build the plan. Creates no history where there is none: writers create
 * it when they first write (deploy after its checks, resolve in the driver);
 * flotilla's own table is created by the driver calls that write it
 * (rollback, resolve). A session is opened once.
 * Read-only sessions (no lock) that find an unfinished row ask whether
 * another session holds the migration lock: if so, that migration is
 * RUNNING in the plan, not failed.
 * Errors: FL_EINVAL (unknown URL scheme, malformed URL), FL_ECONNECT,
 * FL_EAUTH, FL_ELOCKED, FL_EDB, FL_ECANCELED (canceled before or during).
 * On error the session is closed (and may be freed).
 */
enum fl_err fl_session_open(struct fl_session *s, const char *url,
                            const struct fl_migration_set *set, bool lock, char *errbuf)
    __attribute__((warn_unused_result));
/* Release the lock and disconnect; idempotent. The history and plan stay
 * readable until fl_session_free. */
void fl_session_close(struct fl_session *s);

/*
 * Any thread, any time (see the rules above): stop what the session does
 * and will do. A connect in progress is abandoned; a statement running on
 * the server is canceled there (the server rolls back its transaction);
 * waits for the lock end; retries and reconnects stop. Sticky: afterwards
 * open, lock, apply and revert return FL_ECANCELED. What the engine does
 * next is bounded and only bookkeeping: record the failure as it is, release
 * the lock, disconnect. Returns once the cancel request is on its way.
 */
void fl_session_cancel(struct fl_session *s);
/* Whether fl_session_cancel was called. Any thread. */
bool fl_session_canceled(const struct fl_session *s);

/* Progress callback for deploy and rollback, called on the driving thread. */
void fl_session_on_event(struct fl_session *s, fl_event_fn fn, void *arg);

/* What open read: valid from a successful open until free. */
const struct fl_plan *fl_session_plan(const struct fl_session *s);
const struct fl_history *fl_session_history(const struct fl_session *s);
/* The session's logger (NULL: the process-wide one). */
const struct fl_logger *fl_session_logger(const struct fl_session *s);

/* Read the history again (refused as at open when a row lacks what Prisma
 * makes NOT NULL) and rebuild the plan: after the driver reconnected, or
 * after a deploy, to report the tenant as it is now on the connection (and
 * under the lock) that changed it. Errors are the driver's (raw: FL_ESQL is
 * not yet FL_EDB) or FL_EDB. */
enum fl_err fl_session_refresh(struct fl_session *s, char *errbuf)
    __attribute__((warn_unused_result));

/* SHA-256 (hex) of the schema's catalog; the dump it hashes goes to dump if
 * not NULL. Errors: FL_EDB, FL_ECONNLOST, FL_ECANCELED. */
enum fl_err fl_session_fingerprint(struct fl_session *s, struct fl_buf *dump,
                                   char hex[FL_CHECKSUM_HEX_LEN + 1], char *errbuf)
    __attribute__((warn_unused_result));

/* FL_EFAILED naming the first failed migration and how to resolve it, else FL_OK. */
enum fl_err fl_session_check_failed(const struct fl_session *s, char *errbuf)
    __attribute__((warn_unused_result));
/* Create the history table when it is missing (idempotent): deploy, before
 * its first migration. */
enum fl_err fl_session_ensure_history(struct fl_session *s, char *errbuf)
    __attribute__((warn_unused_result));
/* FL_ESTATE when the schema needs a baseline before a first deploy, else FL_OK. */
enum fl_err fl_session_check_baselined(const struct fl_session *s, char *errbuf)
    __attribute__((warn_unused_result));
/* FL_ECHECKSUM naming the first migration edited after it was applied, else FL_OK. */
enum fl_err fl_session_check_modified(const struct fl_session *s, char *errbuf)
    __attribute__((warn_unused_result));

/* A driver's error from bookkeeping (not from running a migration's SQL):
 * FL_ESQL there means the database refused flotilla, not that a migration
 * failed, so it becomes FL_EDB; anything else is returned as it is. */
enum fl_err fl_session_bookkeeping(enum fl_err rv);

#endif
