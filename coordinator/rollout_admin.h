/*
 * The rollout_* admin commands (proto/flotilla.proto, AdminRequest fields
 * 20-28): plan, start, status/list, pause, resume, promote, halt, rollback,
 * retry, over the scheduler (scheduler.h).
 *
 * The admin endpoint has already opened the envelope, checked the caller's
 * role (proto/roles.c) and will audit the call; this module checks
 * everything about the request itself: signed orders (signature against the
 * trusted release keys, project, expiry, the release pushed and of the
 * project, the target in it), states (a promote of a wave that is not
 * waiting is refused, so a repeated promote never skips a wave), coverage
 * (a rollback refused up front when a migration to revert has no down.sql,
 * a start refused when tenants fall in no wave or are in another active
 * rollout).
 *
 * Every change is written to the store in the caller's transaction when one
 * is open, else in one of this module's own, committed before the call
 * returns: the reply never runs ahead of the store.
 *
 * Threads: the core thread, as the scheduler.
 */
#ifndef FL_ROLLOUT_ADMIN_H
#define FL_ROLLOUT_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "err.h"
#include "flotilla.pb-c.h"
#include "scheduler.h"

/* Who sent the command (from the envelope): recorded as the rollout's
 * created_by and in reasons. */
struct fl_rollout_caller {
	const char *key_id; /* the operator key's id */
	const char *name;   /* the operator's name, for reasons ("paused by alice: ...") */
};

/* A response: status and result, owned by the struct (request_id is the
 * request's). Free with fl_rollout_reply_fini. */
struct fl_rollout_reply {
	Flotilla__V1__AdminResponse response;
	void *priv;
};

/* Whether this module handles the command (rollout_plan .. rollout_retry). */
bool fl_rollout_admin_handles(Flotilla__V1__AdminRequest__CommandCase c);

/*
 * Run one rollout command. out is always filled (initialised by the call):
 * OK with the result, or a refusal (INVALID_ARGUMENT, NOT_FOUND,
 * ALREADY_EXISTS, FAILED_PRECONDITION; UNAVAILABLE or INTERNAL when the
 * store failed) with a one-line message and, for a refused start, the plan
 * saying why. Returns FL_OK, or the store's error (FL_EDB...) when it
 * failed: the reply then says UNAVAILABLE and nothing was changed.
 */
enum fl_err fl_rollout_admin(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                             const Flotilla__V1__AdminRequest *req, int64_t now_ms,
                             struct fl_rollout_reply *out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_rollout_reply_fini(struct fl_rollout_reply *r);

/*
 * The same into memory the caller owns: resp (initialised by the caller)
 * gets request_id, status and result, all of it in arena; *subject (if not
 * NULL) the rollout the command was about, for the audit log ("" if none).
 */
enum fl_err fl_rollout_admin_run(struct fl_scheduler *s, const struct fl_rollout_caller *who,
                                 const Flotilla__V1__AdminRequest *req, int64_t now_ms,
                                 struct fl_arena *arena, Flotilla__V1__AdminResponse *resp,
                                 const char **subject, char *errbuf)
    __attribute__((warn_unused_result));

#endif
