#include "resolve.h"

#include <stdio.h>

#include "session_internal.h"
#include "split.h"

/* The failed row of plan entry e that would be called done, or NULL. */
static const struct fl_history_row *partly_applied(const struct fl_session *s, long idx)
{
	const struct fl_plan_entry *e = &s->plan.entries[idx];

	if (e->state != FL_MSTATE_FAILED || e->row == NULL || e->row->applied_steps_count <= 0)
		return NULL;
	return e->row;
}

enum fl_err fl_resolve_applied(struct fl_session *s, const char *id, bool force, char *errbuf)
{
	const struct fl_migration *m = fl_migration_set_find(s->set, id);
	const struct fl_history_row *row;
	long idx = fl_migration_set_index(s->set, id);

	if (m == NULL)
		return fl_errf(errbuf, FL_ENOENT,
		               "migration '%s' could not be found in '%s': give the whole folder "
		               "name",
		               id, s->set->dir);
	/* A no-transaction migration that failed halfway: calling it done would
	 * hide the statements that never ran. */
	if (!force && idx >= 0 && (size_t)idx < s->plan.count &&
	    (row = partly_applied(s, idx)) != NULL) {
		struct fl_sql_script script;
		char of[48] = "";

		if (fl_sql_split(m->sql, &script, NULL) == FL_OK)
			snprintf(of, sizeof(of), " of %zu", script.count);
		fl_sql_script_fini(&script);
		return fl_errf(errbuf, FL_ESTATE,
		               "migration '%s' is only partly applied: %d%s statements ran before "
		               "it failed; run the rest by hand and confirm with 'flotilla resolve "
		               "--applied %s --force', or undo them and run 'flotilla resolve "
		               "--rolled-back %s'",
		               id, row->applied_steps_count, of, id, id);
	}
	return fl_session_bookkeeping(s->driver->mark_applied(s->conn, id, m->checksum, errbuf));
}

enum fl_err fl_resolve_rolled_back(struct fl_session *s, const char *id, char *errbuf)
{
	/* The driver creates what it records in; with no history at all there is
	 * nothing to resolve, and it says so. */
	return fl_session_bookkeeping(s->driver->mark_rolled_back(s->conn, id, errbuf));
}
