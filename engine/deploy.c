#include "deploy.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "mode.h"
#include "session_internal.h"

struct step {
	const struct fl_migration *m;
	size_t index; /* in apply order, and so in the plan */
	struct fl_sql_script script;
	enum fl_apply_mode mode;
};

static void steps_free(struct step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fl_sql_script_fini(&steps[i].script);
	free(steps);
}

static enum fl_err targets(const struct fl_session *s, const char *to, size_t *last, char *errbuf)
{
	long idx;

	*last = s->plan.count;
	if (to == NULL)
		return FL_OK;
	idx = fl_migration_set_index(s->set, to);
	if (idx < 0)
		return fl_errf(errbuf, FL_ENOENT, "unknown migration '%s': not in '%s'", to,
		               s->set->dir);
	*last = (size_t)idx + 1;
	return FL_OK;
}

/*
 * The driver reconnected while applying: another deployer may have applied,
 * failed or edited migrations while our session was gone. Read the history
 * again and re-check it as at the start; the caller goes on with what is
 * still pending.
 */
static enum fl_err replan(struct fl_session *s, char *errbuf)
{
	enum fl_err rv;

	if ((rv = fl_session_refresh(s, errbuf)) != FL_OK)
		return fl_session_bookkeeping(rv);
	if ((rv = fl_session_check_failed(s, errbuf)) != FL_OK ||
	    (rv = fl_session_check_modified(s, errbuf)) != FL_OK)
		return rv;
	return FL_OK;
}

static void failed(struct fl_session *s, const struct step *st, const struct fl_apply_result *res,
                   enum fl_err rv, char *errbuf)
{
	const char *why = res->message[0] ? res->message : fl_strerror(rv);

	fl_session_emit(s, FL_EVENT_FAILED, false, st->m, st->mode, res, rv);
	if (rv == FL_EBUSY)
		fl_errf(errbuf, rv,
		        "migration '%s' was not applied: %s; nothing was applied or recorded: run "
		        "deploy again when the database is less busy",
		        st->m->id, why);
	else
		fl_errf(errbuf, rv, "migration '%s' failed: %s", st->m->id, why);
}

enum fl_err fl_deploy(struct fl_session *s, const char *to, struct fl_deploy_summary *sum,
                      char *errbuf)
{
	struct step *steps = NULL;
	size_t n = 0, last, latest_applied = 0, i, since_plan = 0;
	int64_t t0 = fl_now_us();
	int replans = 0, max_replans = s->opts.apply.retry.attempts;
	enum fl_err rv;

	memset(sum, 0, sizeof(*sum));
	if ((rv = fl_session_check_baselined(s, errbuf)) != FL_OK ||
	    (rv = fl_session_check_failed(s, errbuf)) != FL_OK ||
	    (rv = fl_session_check_modified(s, errbuf)) != FL_OK ||
	    (rv = targets(s, to, &last, errbuf)) != FL_OK)
		return rv;
	for (i = 0; i < s->plan.n_missing; i++)
		fl_logger_warn(s->log, s->plan.missing[i]->migration_name,
		               "applied to the database but not in '%s'", s->set->dir);
	for (i = 0; i < s->plan.count; i++)
		if (s->plan.entries[i].state != FL_MSTATE_PENDING)
			latest_applied = i + 1;

	/* Check every file before touching the database: nothing half-applied. */
	steps = fl_calloc(last ? last : 1, sizeof(*steps));
	for (i = 0; i < last; i++) {
		const struct fl_plan_entry *e = &s->plan.entries[i];
		struct step *st = &steps[n];

		if (e->state != FL_MSTATE_PENDING)
			continue;
		st->m = e->migration;
		st->index = i;
		n++;
		if ((rv = fl_mode_choose(st->m, st->m->sql, "migration.sql", &st->script, &st->mode,
		                         s->log, errbuf)) != FL_OK)
			goto out;
	}

	if (n > 0 && (rv = fl_session_ensure_history(s, errbuf)) != FL_OK)
		goto out;
	for (i = 0; i < n; i++) {
		struct step *st = &steps[i];
		struct fl_apply_result res;
		enum fl_err r2;

		/* After a replan, what another deployer applied meanwhile is done. */
		if (s->plan.entries[st->index].state != FL_MSTATE_PENDING)
			continue;
		if (st->index < latest_applied)
			fl_logger_info(s->log, st->m->id,
			               "applying out of order: later migrations are already "
			               "applied");
		memset(&res, 0, sizeof(res));
		fl_session_emit(s, FL_EVENT_START, false, st->m, st->mode, NULL, FL_OK);
		rv = s->driver->apply(s->conn, st->m, st->mode, &st->script, &s->opts.apply, &res);
		if (rv == FL_OK) {
			fl_session_emit(s, FL_EVENT_DONE, false, st->m, st->mode, &res, FL_OK);
			sum->applied++;
			since_plan++;
		}
		if (!res.reconnected) {
			if (rv != FL_OK) {
				failed(s, st, &res, rv, errbuf);
				goto out;
			}
			continue;
		}
		/* Reconnected: the history may have moved while we were away. */
		fl_logger_info(s->log, st->m->id,
		               "reconnected: reading the migration history again");
		if ((r2 = replan(s, errbuf)) != FL_OK) {
			/* errbuf names what now blocks us: a failed row (maybe ours, when
			 * the statement that was running may or may not have run), an
			 * edited migration, or the history unreadable. */
			if (rv != FL_OK)
				fl_session_emit(s, FL_EVENT_FAILED, false, st->m, st->mode, &res,
				                rv);
			rv = r2;
			goto out;
		}
		since_plan = 0;
		/* Lost before anything of it committed, no failed row: start over from
		 * what is pending now, a bounded number of times. */
		if (rv == FL_ECONNLOST && ++replans <= max_replans) {
			i = (size_t)-1;
			continue;
		}
		if (rv != FL_OK) {
			failed(s, st, &res, rv, errbuf);
			goto out;
		}
		i = (size_t)-1;
	}
	rv = FL_OK;
out:
	steps_free(steps, n);
	sum->duration_us = fl_now_us() - t0;
	sum->pending = s->plan.n_pending > since_plan ? s->plan.n_pending - since_plan : 0;
	return rv;
}
