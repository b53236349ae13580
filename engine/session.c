#include "session_internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

void fl_engine_opts_init(struct fl_engine_opts *o)
{
	const struct fl_retry_policy retry = FL_RETRY_POLICY_DEFAULT;

	memset(o, 0, sizeof(*o));
	o->apply.lock_timeout_ms = FL_DEFAULT_LOCK_TIMEOUT_MS;
	o->apply.statement_timeout_ms = -1;
	o->apply.retry = retry;
	o->lock_wait_ms = FL_DEFAULT_LOCK_WAIT_MS;
	fl_conn_opts_init(&o->conn);
}

struct fl_session *fl_session_new(const struct fl_engine_opts *opts, const struct fl_logger *log)
{
	struct fl_session *s = fl_calloc(1, sizeof(*s));

	s->opts = *opts;
	if (log != NULL) {
		s->logger = *log;
		s->logger.context = log->context != NULL ? fl_strdup(log->context) : NULL;
		s->log = &s->logger;
	}
	s->opts.conn.log = s->log;
	pthread_mutex_init(&s->mu, NULL);
	atomic_init(&s->canceled, false);
	return s;
}

void fl_session_free(struct fl_session *s)
{
	if (s == NULL)
		return;
	fl_session_close(s);
	fl_plan_fini(&s->plan);
	fl_history_fini(&s->history);
	pthread_mutex_destroy(&s->mu);
	free((char *)s->logger.context);
	free(s);
}

static void set_conn(struct fl_session *s, struct fl_conn *c)
{
	pthread_mutex_lock(&s->mu);
	s->conn = c;
	pthread_mutex_unlock(&s->mu);
}

enum fl_err fl_session_open(struct fl_session *s, const char *url,
                            const struct fl_migration_set *set, bool lock, char *errbuf)
{
	struct fl_conn *c = NULL;
	enum fl_err rv;

	if (s->opened)
		return fl_errf(errbuf, FL_ESTATE, "the session was opened before");
	s->opened = true;
	s->set = set;
	s->driver = fl_driver_for_url(url);
	if (s->driver == NULL) {
		char *shown = fl_driver_redact_url(url);
		rv = fl_errf(errbuf, FL_EINVAL,
		             "unsupported database url '%s': expected postgresql://", shown);
		free(shown);
		return rv;
	}
	/* Published before connecting, so that a cancel reaches the connect; a
	 * cancel that came before finds the flag. */
	c = s->driver->conn_new(&s->opts.conn);
	set_conn(s, c);
	if (atomic_load(&s->canceled))
		s->driver->cancel(c);
	if ((rv = s->driver->connect(c, url, errbuf)) != FL_OK)
		goto out;
	if (lock) {
		if ((rv = s->driver->lock(s->conn, s->opts.lock_wait_ms, errbuf)) != FL_OK)
			goto out;
		s->locked = true;
	}
	if ((rv = fl_session_refresh(s, errbuf)) != FL_OK)
		goto out;
	if (lock && !s->history.table_exists) {
		bool empty;

		if ((rv = s->driver->schema_empty(s->conn, &empty, errbuf)) != FL_OK)
			goto out;
		s->unbaselined = !empty;
	}
	if (!lock && s->plan.n_failed + s->plan.n_foreign_failed > 0) {
		bool held;

		if ((rv = s->driver->lock_held(s->conn, &held, errbuf)) != FL_OK)
			goto out;
		if (held)
			fl_plan_mark_running(&s->plan, &s->history);
	}
out:
	if (rv != FL_OK)
		fl_session_close(s);
	return fl_session_bookkeeping(rv);
}

/* The history table lives in the tenant's database, where anyone with DDL
 * rights may have made it (or altered it) otherwise than Prisma: a row
 * without what Prisma's DDL makes NOT NULL is refused, as Prisma refuses it,
 * before the plan or any writer reads it. */
static enum fl_err check_history(const struct fl_history *h, char *errbuf)
{
	for (size_t i = 0; i < h->count; i++) {
		const struct fl_history_row *r = &h->rows[i];
		const char *missing = r->id == NULL               ? "id"
		                      : r->migration_name == NULL ? "migration_name"
		                      : r->checksum == NULL       ? "checksum"
		                      : r->started_at == NULL     ? "started_at"
		                                                  : NULL;
		char shown[96];

		if (missing == NULL)
			continue;
		return fl_errf(
		    errbuf, FL_EDB,
		    "the migration history holds a row without a %s (row %zu, id '%s'): "
		    "its table was not written by Prisma or flotilla",
		    missing, i + 1,
		    r->id != NULL ? fl_err_quote(shown, sizeof(shown), r->id, strlen(r->id)) : "");
	}
	return FL_OK;
}

enum fl_err fl_session_refresh(struct fl_session *s, char *errbuf)
{
	enum fl_err rv;

	fl_plan_fini(&s->plan);
	fl_history_fini(&s->history);
	if ((rv = s->driver->history_read(s->conn, &s->history, errbuf)) != FL_OK)
		return rv;
	if ((rv = check_history(&s->history, errbuf)) != FL_OK) {
		fl_history_fini(&s->history);
		return rv;
	}
	fl_plan_build(s->set, &s->history, &s->plan);
	return FL_OK;
}

void fl_session_close(struct fl_session *s)
{
	struct fl_conn *c = s->conn;

	if (c == NULL)
		return;
	if (s->locked) {
		char ignored[FL_ERRBUF_SIZE];
		/* Closing the connection frees the lock anyway; unlock is a courtesy. */
		(void)s->driver->unlock(c, ignored);
		s->locked = false;
	}
	set_conn(s, NULL);
	s->driver->close(c);
}

void fl_session_cancel(struct fl_session *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->canceled, true);
	pthread_mutex_lock(&s->mu);
	if (s->conn != NULL)
		s->driver->cancel(s->conn);
	pthread_mutex_unlock(&s->mu);
}

bool fl_session_canceled(const struct fl_session *s)
{
	return atomic_load(&s->canceled);
}

void fl_session_on_event(struct fl_session *s, fl_event_fn fn, void *arg)
{
	s->on_event = fn;
	s->event_arg = arg;
}

const struct fl_plan *fl_session_plan(const struct fl_session *s)
{
	return &s->plan;
}

const struct fl_history *fl_session_history(const struct fl_session *s)
{
	return &s->history;
}

const struct fl_logger *fl_session_logger(const struct fl_session *s)
{
	return s->log;
}

enum fl_err fl_session_fingerprint(struct fl_session *s, struct fl_buf *dump,
                                   char hex[FL_CHECKSUM_HEX_LEN + 1], char *errbuf)
{
	if (s->conn == NULL)
		return fl_errf(errbuf, FL_ESTATE, "the session is not open");
	return fl_session_bookkeeping(s->driver->fingerprint(s->conn, dump, hex, errbuf));
}

static const char *first_line(const char *s, char *out, size_t outlen)
{
	size_t n = 0;

	if (s == NULL)
		return "";
	while (*s == '\n' || *s == ' ')
		s++;
	while (s[n] && s[n] != '\n' && n + 1 < outlen)
		n++;
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

enum fl_err fl_session_check_failed(const struct fl_session *s, char *errbuf)
{
	const struct fl_history_row *r = NULL;
	char logs[300];

	/* As Prisma's P3009: any unfinished row not rolled back blocks, even one
	 * beside a finished row of the same migration. */
	for (size_t i = 0; i < s->history.count && r == NULL; i++)
		if (s->history.rows[i].finished_at == NULL &&
		    s->history.rows[i].rolled_back_at == NULL)
			r = &s->history.rows[i];
	if (r == NULL)
		return FL_OK;
	return fl_errf(errbuf, FL_EFAILED,
	               "migration '%s' failed (started %s): %s; fix the database, then run "
	               "'flotilla resolve --rolled-back %s' or 'flotilla resolve --applied %s'",
	               r->migration_name, r->started_at, first_line(r->logs, logs, sizeof(logs)),
	               r->migration_name, r->migration_name);
}

enum fl_err fl_session_ensure_history(struct fl_session *s, char *errbuf)
{
	return fl_session_bookkeeping(s->driver->history_ensure(s->conn, errbuf));
}

enum fl_err fl_session_check_baselined(const struct fl_session *s, char *errbuf)
{
	if (!s->unbaselined)
		return FL_OK;
	return fl_errf(errbuf, FL_ESTATE,
	               "the schema is not empty but has no migration history: baseline it first "
	               "with 'flotilla resolve --applied ID' for each migration it already "
	               "contains (Prisma's P3005)");
}

enum fl_err fl_session_check_modified(const struct fl_session *s, char *errbuf)
{
	for (size_t i = 0; i < s->plan.count; i++) {
		const struct fl_plan_entry *e = &s->plan.entries[i];

		if (e->state == FL_MSTATE_MODIFIED)
			return fl_errf(errbuf, FL_ECHECKSUM,
			               "migration '%s' was modified after it was applied "
			               "(checksum recorded %s, file has %s); restore the file or "
			               "add a new migration",
			               e->migration->id, e->row->checksum, e->migration->checksum);
	}
	return FL_OK;
}

enum fl_err fl_session_bookkeeping(enum fl_err rv)
{
	return rv == FL_ESQL ? FL_EDB : rv;
}

void fl_session_emit(const struct fl_session *s, enum fl_event_kind kind, bool revert,
                     const struct fl_migration *m, enum fl_apply_mode mode,
                     const struct fl_apply_result *res, enum fl_err err)
{
	struct fl_event ev = {kind, revert, m, mode, res, err};

	if (s->on_event != NULL)
		s->on_event(&ev, s->event_arg);
}
