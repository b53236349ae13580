#include "plan.h"

#include <stdlib.h>
#include <string.h>

#include "checksum.h"
#include "mem.h"

const char *fl_mstate_name(enum fl_mstate state)
{
	switch (state) {
	case FL_MSTATE_PENDING:
		return "pending";
	case FL_MSTATE_APPLIED:
		return "applied";
	case FL_MSTATE_MODIFIED:
		return "modified";
	case FL_MSTATE_FAILED:
		return "failed";
	case FL_MSTATE_RUNNING:
		return "running";
	}
	return "unknown";
}

static int live(const struct fl_history_row *r)
{
	return r->rolled_back_at == NULL;
}

static void classify(struct fl_plan_entry *e, const struct fl_history *h)
{
	const struct fl_migration *m = e->migration;
	const struct fl_history_row *failed = NULL;

	e->state = FL_MSTATE_PENDING;
	e->row = NULL;
	/* The latest applied row wins: a migration resolved --applied after a
	 * failure has both a rolled-back row and a finished one. */
	for (size_t i = h->count; i-- > 0;) {
		const struct fl_history_row *r = &h->rows[i];

		if (strcmp(r->migration_name, m->id) != 0 || !live(r))
			continue;
		if (r->finished_at != NULL) {
			e->row = r;
			e->state = fl_checksum_matches(m->sql, m->sql_len, r->checksum)
			               ? FL_MSTATE_APPLIED
			               : FL_MSTATE_MODIFIED;
			return;
		}
		if (failed == NULL)
			failed = r;
	}
	if (failed != NULL) {
		e->row = failed;
		e->state = FL_MSTATE_FAILED;
	}
}

static int already_listed(const struct fl_history_row **list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i]->migration_name, name) == 0)
			return 1;
	return 0;
}

void fl_plan_build(const struct fl_migration_set *set, const struct fl_history *history,
                   struct fl_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	plan->entries = fl_calloc(set->count, sizeof(*plan->entries));
	plan->count = set->count;
	for (size_t i = 0; i < set->count; i++) {
		struct fl_plan_entry *e = &plan->entries[i];

		e->migration = &set->items[i];
		classify(e, history);
		switch (e->state) {
		case FL_MSTATE_PENDING:
			plan->n_pending++;
			break;
		case FL_MSTATE_APPLIED:
			plan->n_applied++;
			break;
		case FL_MSTATE_MODIFIED:
			plan->n_modified++;
			break;
		case FL_MSTATE_FAILED:
			plan->n_failed++;
			break;
		case FL_MSTATE_RUNNING:
			break; /* only fl_plan_mark_running sets it */
		}
	}

	plan->missing = fl_calloc(history->count, sizeof(*plan->missing));
	plan->foreign_failed = fl_calloc(history->count, sizeof(*plan->foreign_failed));
	for (size_t i = 0; i < history->count; i++) {
		const struct fl_history_row *r = &history->rows[i];

		if (!live(r) || fl_migration_set_find(set, r->migration_name) != NULL)
			continue;
		if (r->finished_at == NULL)
			plan->foreign_failed[plan->n_foreign_failed++] = r;
		else if (!already_listed(plan->missing, plan->n_missing, r->migration_name))
			plan->missing[plan->n_missing++] = r;
	}
}

void fl_plan_fini(struct fl_plan *plan)
{
	free(plan->entries);
	free(plan->missing);
	free(plan->foreign_failed);
	memset(plan, 0, sizeof(*plan));
}

void fl_plan_mark_running(struct fl_plan *plan, const struct fl_history *history)
{
	const struct fl_history_row *r = NULL;

	for (size_t i = history->count; i-- > 0 && r == NULL;)
		if (live(&history->rows[i]) && history->rows[i].finished_at == NULL)
			r = &history->rows[i];
	if (r == NULL || plan->n_running > 0)
		return;
	for (size_t i = 0; i < plan->count; i++) {
		struct fl_plan_entry *e = &plan->entries[i];

		if (e->row == r && e->state == FL_MSTATE_FAILED) {
			e->state = FL_MSTATE_RUNNING;
			plan->n_failed--;
			plan->n_running++;
			return;
		}
	}
	for (size_t i = 0; i < plan->n_foreign_failed; i++) {
		if (plan->foreign_failed[i] != r)
			continue;
		memmove(&plan->foreign_failed[i], &plan->foreign_failed[i + 1],
		        (plan->n_foreign_failed - i - 1) * sizeof(plan->foreign_failed[0]));
		plan->n_foreign_failed--;
		plan->foreign_running = r;
		plan->n_running++;
		return;
	}
}
