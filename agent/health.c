/* Health checks (see health.h). */
#include "health.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "mem.h"
#include "pg_conn.h"

#define BOOLOID 16

struct fl_health {
	pthread_mutex_t mu;
	struct fl_conn *conn; /* guarded by mu: cancel reaches it */
	atomic_bool canceled;
	struct fl_conn_opts opts;
	char *role;
};

struct fl_health *fl_health_new(const struct fl_conn_opts *opts, const char *role)
{
	struct fl_health *h = fl_calloc(1, sizeof(*h));

	pthread_mutex_init(&h->mu, NULL);
	atomic_init(&h->canceled, false);
	if (opts != NULL)
		h->opts = *opts;
	else
		fl_conn_opts_init(&h->opts);
	h->role = role ? fl_strdup(role) : NULL;
	h->conn = fl_pg_conn_new(&h->opts);
	return h;
}

void fl_health_free(struct fl_health *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	fl_pg_conn_close(h->conn);
	h->conn = NULL;
	pthread_mutex_unlock(&h->mu);
	free(h->role);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void fl_health_cancel(struct fl_health *h)
{
	atomic_store(&h->canceled, true);
	pthread_mutex_lock(&h->mu);
	if (h->conn != NULL)
		fl_pg_conn_cancel(h->conn);
	pthread_mutex_unlock(&h->mu);
}

/* One line for e: "message (SQLSTATE xxxxx)". */
static void err_line(const struct fl_pg_error *e, char *out, size_t size)
{
	fl_pg_error_line(e, out, size);
}

static void run_one(struct fl_health *h, const struct fl_health_check *chk,
                    struct fl_health_result *r)
{
	struct fl_pg_error e;
	PGresult *res = NULL;
	char timeout[32], line[FL_HEALTH_MESSAGE_MAX];
	const char *params[1];
	enum fl_err rv;
	int64_t t0;

	r->checked_at_ms = fl_wall_ms();
	t0 = fl_now_ms();
	if (atomic_load(&h->canceled)) {
		r->inconclusive = true;
		snprintf(r->message, sizeof(r->message), "%s", "canceled");
		return;
	}
	if ((rv = fl_pg_conn_run(h->conn, "BEGIN READ ONLY", NULL, &e)) != FL_OK) {
		err_line(&e, line, sizeof(line));
		r->inconclusive = true;
		snprintf(r->message, sizeof(r->message),
		         "cannot begin a read-only transaction: %.400s", line);
		goto out;
	}
	snprintf(timeout, sizeof(timeout), "%lldms", (long long)chk->timeout_ms);
	params[0] = timeout;
	if ((rv = fl_pg_conn_query(h->conn,
	                           "SELECT pg_catalog.set_config('statement_timeout', $1, true)", 1,
	                           params, NULL, &e)) != FL_OK) {
		err_line(&e, line, sizeof(line));
		r->inconclusive = true;
		snprintf(r->message, sizeof(r->message), "cannot set the statement timeout: %.400s",
		         line);
		goto out;
	}
	if (h->role != NULL) {
		params[0] = h->role;
		if ((rv =
		         fl_pg_conn_query(h->conn, "SELECT pg_catalog.set_config('role', $1, true)",
		                          1, params, NULL, &e)) != FL_OK) {
			err_line(&e, line, sizeof(line));
			r->inconclusive = true;
			snprintf(r->message, sizeof(r->message),
			         "cannot run as role '%.63s': %.400s", h->role, line);
			goto out;
		}
	}
	/* the check itself: one statement, extended protocol, no parameters */
	rv = fl_pg_conn_query(h->conn, chk->sql, 0, NULL, &res, &e);
	if (rv == FL_ECONNLOST || rv == FL_ECANCELED) {
		err_line(&e, line, sizeof(line));
		r->inconclusive = true;
		snprintf(r->message, sizeof(r->message), "%s: %.400s",
		         rv == FL_ECANCELED ? "canceled" : "connection lost", line);
		goto out;
	}
	if (rv != FL_OK) {
		err_line(&e, line, sizeof(line));
		if (strcmp(e.sqlstate, "57014") == 0)
			snprintf(r->message, sizeof(r->message), "timeout after %lldms: %.400s",
			         (long long)chk->timeout_ms, line);
		else
			snprintf(r->message, sizeof(r->message), "%s", line);
		goto out;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 1) {
		snprintf(r->message, sizeof(r->message), "%s",
		         "expected one boolean column, got no rows or several columns");
	} else if (PQftype(res, 0) != BOOLOID) {
		snprintf(r->message, sizeof(r->message), "%s", "expected a boolean column");
	} else if (PQntuples(res) != 1) {
		snprintf(r->message, sizeof(r->message), "expected one row, got %d",
		         PQntuples(res));
	} else if (PQgetisnull(res, 0, 0)) {
		snprintf(r->message, sizeof(r->message), "%s", "returned NULL");
	} else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		snprintf(r->message, sizeof(r->message), "%s", "returned false");
	} else {
		r->ok = true;
	}
out:
	PQclear(res);
	fl_pg_conn_rollback(h->conn);
	r->duration_ms = (uint32_t)(fl_now_ms() - t0);
}

size_t fl_health_run(struct fl_health *h, const char *url, const struct fl_health_check *checks,
                     size_t n, struct fl_health_result *results, size_t *n_inconclusive)
{
	char err[FL_ERRBUF_SIZE] = "";
	size_t i, failed = 0, inconclusive = 0;
	enum fl_err rv;

	for (i = 0; i < n; i++) {
		memset(&results[i], 0, sizeof(results[i]));
		results[i].name = checks[i].name;
	}
	rv = atomic_load(&h->canceled) ? FL_ECANCELED : fl_pg_conn_connect(h->conn, url, err);
	for (i = 0; i < n; i++) {
		struct fl_health_result *r = &results[i];

		if (rv != FL_OK) {
			r->checked_at_ms = fl_wall_ms();
			r->inconclusive = true;
			snprintf(r->message, sizeof(r->message), "cannot connect: %.440s",
			         rv == FL_ECANCELED ? "canceled" : err);
		} else {
			run_one(h, &checks[i], r);
		}
		if (r->inconclusive)
			inconclusive++;
		else if (!r->ok)
			failed++;
	}
	if (n_inconclusive != NULL)
		*n_inconclusive = inconclusive;
	return failed;
}
