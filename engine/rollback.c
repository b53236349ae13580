#include "rollback.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mem.h"
#include "mode.h"
#include "session_internal.h"

static bool applied(const struct fl_plan_entry *e)
{
	return e->state == FL_MSTATE_APPLIED || e->state == FL_MSTATE_MODIFIED;
}

/* Collect the entries to undo, last applied first. */
static enum fl_err choose(const struct fl_session *s, const char *to, size_t steps,
                          const struct fl_plan_entry ***out, size_t *n, char *errbuf)
{
	const struct fl_plan *p = &s->plan;
	const struct fl_plan_entry **list = fl_calloc(p->count ? p->count : 1, sizeof(*list));
	size_t first = 0, k = 0;

	if (to != NULL) {
		long idx = fl_migration_set_index(s->set, to);

		if (idx < 0) {
			free(list);
			return fl_errf(errbuf, FL_ENOENT, "unknown migration '%s': not in '%s'", to,
			               s->set->dir);
		}
		if (!applied(&p->entries[idx])) {
			free(list);
			return fl_errf(errbuf, FL_ESTATE,
			               "cannot roll back to '%s': it is %s, not applied", to,
			               fl_mstate_name(p->entries[idx].state));
		}
		first = (size_t)idx + 1;
	}
	for (size_t i = p->count; i-- > first;) {
		if (!applied(&p->entries[i]))
			continue;
		if (to == NULL && k == steps)
			break;
		list[k++] = &p->entries[i];
	}
	if (to == NULL && k < steps) {
		free(list);
		return fl_errf(errbuf, FL_ESTATE,
		               "cannot roll back %zu migrations: only %zu applied", steps, k);
	}
	*out = list;
	*n = k;
	return FL_OK;
}

static enum fl_err refuse_unsafe(const struct fl_session *s, const struct fl_plan_entry **list,
                                 size_t n, char *errbuf)
{
	struct fl_buf names = FL_BUF_INIT;
	enum fl_err rv = FL_OK;

	if (s->plan.n_missing > 0)
		return fl_errf(errbuf, FL_ESTATE,
		               "cannot roll back: migration '%s' is applied but not in '%s'",
		               s->plan.missing[0]->migration_name, s->set->dir);
	for (size_t i = 0; i < n; i++)
		if (list[i]->state == FL_MSTATE_MODIFIED)
			return fl_errf(errbuf, FL_ECHECKSUM,
			               "cannot roll back '%s': it was modified after it was "
			               "applied, so its down.sql may not undo what ran",
			               list[i]->migration->id);
	for (size_t i = 0; i < n; i++)
		if (list[i]->migration->down_sql == NULL)
			fl_buf_printf(&names, "%s'%s'", names.len ? ", " : "",
			              list[i]->migration->id);
	if (names.len > 0)
		rv = fl_errf(errbuf, FL_ENOTSUP, "cannot roll back: no down.sql for %s",
		             fl_buf_str(&names));
	fl_buf_fini(&names);
	return rv;
}

/*
 * The driver reconnected: another deployer may have changed the history
 * while our session was gone. Read it again; go on only if what is left to
 * undo (rest, n entries) is exactly what the request would undo now. The
 * entries of rest are re-pointed into the new plan.
 */
static enum fl_err still_the_same(struct fl_session *s, const char *to, size_t steps,
                                  const struct fl_plan_entry **rest, size_t n, size_t reverted,
                                  char *errbuf)
{
	const struct fl_plan_entry **now = NULL;
	const struct fl_migration **want = fl_calloc(n, sizeof(*want));
	size_t k = 0;
	enum fl_err rv;
	bool same;

	for (size_t i = 0; i < n; i++)
		want[i] = rest[i]->migration;
	if ((rv = fl_session_refresh(s, errbuf)) != FL_OK) {
		free(want);
		return fl_session_bookkeeping(rv);
	}
	same = fl_session_check_failed(s, NULL) == FL_OK &&
	       choose(s, to, to != NULL ? 0 : steps - reverted, &now, &k, NULL) == FL_OK && k == n;
	for (size_t i = 0; same && i < n; i++)
		same = now[i]->migration == want[i];
	for (size_t i = 0; same && i < n; i++)
		rest[i] = now[i];
	free(now);
	free(want);
	if (same)
		return FL_OK;
	return fl_errf(errbuf, FL_ESTATE,
	               "the connection was lost and re-established, and the migration history "
	               "changed meanwhile (another deployer?): %zu rolled back; check 'flotilla "
	               "status', then run rollback again",
	               reverted);
}

enum fl_err fl_rollback(struct fl_session *s, const char *to, size_t steps, size_t *reverted,
                        char *errbuf)
{
	const struct fl_plan_entry **list = NULL;
	struct fl_sql_script *scripts = NULL;
	enum fl_apply_mode *modes = NULL;
	size_t n = 0, parsed = 0;
	enum fl_err rv;

	*reverted = 0;
	if ((rv = fl_session_check_failed(s, errbuf)) != FL_OK ||
	    (rv = choose(s, to, steps, &list, &n, errbuf)) != FL_OK)
		return rv;
	if ((rv = refuse_unsafe(s, list, n, errbuf)) != FL_OK)
		goto out;

	scripts = fl_calloc(n ? n : 1, sizeof(*scripts));
	modes = fl_calloc(n ? n : 1, sizeof(*modes));
	for (; parsed < n; parsed++) {
		const struct fl_migration *m = list[parsed]->migration;

		if ((rv = fl_mode_choose(m, m->down_sql, "down.sql", &scripts[parsed],
		                         &modes[parsed], s->log, errbuf)) != FL_OK)
			goto out;
	}

	/* The driver makes sure flotilla's own records can be written before the
	 * first down.sql runs. */
	for (size_t i = 0; i < n; i++) {
		const struct fl_migration *m = list[i]->migration;
		struct fl_apply_result res;

		memset(&res, 0, sizeof(res));
		fl_session_emit(s, FL_EVENT_START, true, m, modes[i], NULL, FL_OK);
		rv = s->driver->revert(s->conn, m, modes[i], &scripts[i], &s->opts.apply, &res);
		if (rv != FL_OK) {
			fl_session_emit(s, FL_EVENT_FAILED, true, m, modes[i], &res, rv);
			fl_errf(errbuf, rv, "rolling back '%s' failed: %s", m->id,
			        res.message[0] ? res.message : fl_strerror(rv));
			goto out;
		}
		fl_session_emit(s, FL_EVENT_DONE, true, m, modes[i], &res, FL_OK);
		(*reverted)++;
		if (res.reconnected && i + 1 < n &&
		    (rv = still_the_same(s, to, steps, list + i + 1, n - i - 1, *reverted,
		                         errbuf)) != FL_OK)
			goto out;
	}
out:
	for (size_t i = 0; i < parsed && scripts; i++)
		fl_sql_script_fini(&scripts[i]);
	free(scripts);
	free(modes);
	free(list);
	return rv;
}
