/*
 * Health checks, exactly as the signed policy gives them and FLEET.md says
 * they run: each check's SQL as ONE statement with the extended protocol
 * (PQsendQueryParams, no parameters: a text of several statements is an
 * error from the server, never run), inside BEGIN READ ONLY, under SET LOCAL
 * statement_timeout = the check's timeout, as the agent's health_check_role
 * when configured (SET LOCAL ROLE, through set_config(.., true)), rolled
 * back afterwards. It must return exactly one row of one boolean column,
 * true.
 *
 *   passed        true
 *   failed        false, NULL, another shape, an SQL error, the timeout
 *   inconclusive  cannot connect, the role cannot be set (missing, not
 *                 granted), the connection lost, canceled: neither pass nor
 *                 fail; the scheduler pauses the wave for a human (checks
 *                 canceled by a halt or a shutdown excepted: the worker
 *                 reports that work CANCELED)
 *
 * One connection (the tenant's URL, through the PostgreSQL driver: libpq's
 * environment kept out, bounded), all checks on it in order. A check never
 * changes anything: READ ONLY refuses writes, and the transaction is rolled
 * back whatever happened.
 *
 * Threads: fl_health_cancel may be called from any thread from
 * fl_health_new until fl_health_free begins; everything else on one thread.
 */
#ifndef FL_HEALTH_H
#define FL_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "err.h"
#include "log.h"
#include "policy.h"

#define FL_HEALTH_MESSAGE_MAX 512

struct fl_health_result {
	const char *name; /* the check's; borrowed from the checks given */
	bool ok;
	bool inconclusive;
	char message[FL_HEALTH_MESSAGE_MAX]; /* why not, one line; "" when ok */
	uint32_t duration_ms;
	int64_t checked_at_ms; /* wall clock */
};

struct fl_health;

/* A runner for url (not connected; no I/O). opts: connect bounds (copied);
 * role NULL: the connecting role. */
struct fl_health *fl_health_new(const struct fl_conn_opts *opts, const char *role);
void fl_health_free(struct fl_health *h); /* NULL is a no-op */
/* Any thread: stop now; checks not run yet, or running, are inconclusive. */
void fl_health_cancel(struct fl_health *h);

/*
 * Connect to url and run the n checks in order, one result each into
 * results (n entries). Never fails as a whole: a connection that cannot be
 * made makes every check inconclusive. Returns how many failed; *n_inconclusive
 * how many were inconclusive.
 */
size_t fl_health_run(struct fl_health *h, const char *url, const struct fl_health_check *checks,
                     size_t n, struct fl_health_result *results, size_t *n_inconclusive);

#endif
