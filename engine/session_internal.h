/*
 * The session's insides, for the .c files of engine/ only (deploy, rollback, resolve and
 * session itself); everyone else goes through session.h.
 *
 * Invariants:
 * - conn is written only by the driving thread, under mu; fl_session_cancel
 *   reads it under mu, so a cancel never sees a connection being freed.
 * - canceled is sticky; once set, open refuses to start and the driver's
 *   own sticky flag stops lock, apply and revert.
 * - log is NULL (the process-wide logger) or points at logger, whose context
 *   is a heap copy owned here.
 */
#ifndef FL_SESSION_INTERNAL_H
#define FL_SESSION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "session.h"

struct fl_session {
	const struct fl_driver_ops *driver;
	struct fl_conn *conn; /* guarded by mu; NULL when closed */
	const struct fl_migration_set *set;
	struct fl_engine_opts opts;
	struct fl_logger logger;
	const struct fl_logger *log; /* &logger, or NULL */
	bool opened;                 /* open was called: a session opens once */
	bool locked;
	/* Opened locked on a schema with objects but no history table: deploy
	 * must not start a history there (Prisma's P3005). */
	bool unbaselined;
	struct fl_history history;
	struct fl_plan plan;
	fl_event_fn on_event;
	void *event_arg;
	pthread_mutex_t mu;
	atomic_bool canceled;
};

void fl_session_emit(const struct fl_session *s, enum fl_event_kind kind, bool revert,
                     const struct fl_migration *m, enum fl_apply_mode mode,
                     const struct fl_apply_result *res, enum fl_err err);

#endif
