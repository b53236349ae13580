/*
 * A session: one database, its driver connection, the local migration set,
 * the history as last read and the plan built from both. Writers (deploy,
 * rollback, resolve) open it locked: they hold Prisma's migration lock from
 * before they read the history until they close, so two deployers, or
 * flotilla and `prisma migrate deploy`, never act on a stale view.
 *
 * Owns the connection, history and plan; borrows the set.
 */
#ifndef FL_SESSION_H
#define FL_SESSION_H

#include <stdbool.h>

#include "driver.h"
#include "plan.h"

struct fl_engine_opts {
	struct fl_apply_opts apply; /* lock/statement timeouts, retry policy */
	int64_t lock_wait_ms;       /* how long to wait for another deployer */
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

struct fl_session {
	const struct fl_driver_ops *driver;
	struct fl_conn *conn;
	const struct fl_migration_set *set;
	struct fl_engine_opts opts;
	bool locked;
	/* Opened locked on a schema with objects but no history table: deploy
	 * must not start a history there (Prisma's P3005). */
	bool unbaselined;
	struct fl_history history;
	struct fl_plan plan;
	fl_event_fn on_event;
	void *event_arg;
};

/*
 * Connect to url, with `lock` take the migration lock, then read the history
 * and build the plan. Creates no history where there is none: writers create
 * it when they first write (deploy after its checks, resolve in the driver);
 * rollback and resolve --rolled-back add flotilla's own table beside a history
 * Prisma started (fl_session_ensure_history).
 * Errors: FL_EINVAL (unknown URL scheme), FL_ECONNECT, FL_EAUTH, FL_ELOCKED,
 * FL_ESQL. On error the session is closed.
 */
enum fl_err fl_session_open(struct fl_session *s, const char *url,
                            const struct fl_migration_set *set, const struct fl_engine_opts *opts,
                            bool lock, char *errbuf) __attribute__((warn_unused_result));
void fl_session_close(struct fl_session *s);

/* FL_EFAILED naming the first failed migration and how to resolve it, else FL_OK. */
enum fl_err fl_session_check_failed(const struct fl_session *s, char *errbuf);
/* Create the history tables that are missing (idempotent), for writers that
 * record in flotilla's own table. */
enum fl_err fl_session_ensure_history(struct fl_session *s, char *errbuf)
    __attribute__((warn_unused_result));
/* FL_ESTATE when the schema needs a baseline before a first deploy, else FL_OK. */
enum fl_err fl_session_check_baselined(const struct fl_session *s, char *errbuf);
/* FL_ECHECKSUM naming the first migration edited after it was applied, else FL_OK. */
enum fl_err fl_session_check_modified(const struct fl_session *s, char *errbuf);

/* A driver's error from bookkeeping (not from running a migration's SQL):
 * FL_ESQL there means the database refused flotilla, not that a migration
 * failed, so it becomes FL_EDB; anything else is returned as it is. */
enum fl_err fl_session_bookkeeping(enum fl_err rv);

void fl_session_emit(const struct fl_session *s, enum fl_event_kind kind, bool revert,
                     const struct fl_migration *m, enum fl_apply_mode mode,
                     const struct fl_apply_result *res, enum fl_err err);

#endif
