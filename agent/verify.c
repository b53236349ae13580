/* The trust checks before any SQL (see verify.h). */
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

#define KIND_APPLY  FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY
#define KIND_REVERT FLOTILLA__V1__WORK_KIND__WORK_KIND_REVERT
#define KIND_CHECK  FLOTILLA__V1__WORK_KIND__WORK_KIND_CHECK

void fl_verified_fini(struct fl_verified *v)
{
	fl_order_free(v->order);
	fl_order_free(v->rollback);
	fl_releases_unref(v->release);
	memset(v, 0, sizeof(*v));
}

static const char *kind_name(int kind)
{
	switch (kind) {
	case KIND_APPLY:
		return "apply";
	case KIND_REVERT:
		return "revert";
	case KIND_CHECK:
		return "check";
	}
	return "unknown";
}

/* reason = "what: detail", detail being what a callee wrote into reason. */
static enum fl_err refuse_with(char *reason, const char *what)
{
	char detail[FL_ERRBUF_SIZE];

	snprintf(detail, sizeof(detail), "%s", reason);
	return fl_errf(reason, FL_EAUTH, "%s: %s", what, detail);
}

static void hex16(const uint8_t *p, char out[17])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 8; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[16] = '\0';
}

enum fl_err fl_verify_assignment(const struct fl_verify_ctx *ctx,
                                 const Flotilla__V1__WorkAssignment *a, struct fl_verified *v,
                                 char *reason)
{
	const struct fl_migration_set *set;
	const char *target = a->target_migration_id ? a->target_migration_id : "";
	char shown[96], h1[17], h2[17];
	uint64_t seq;
	enum fl_err rv;

	memset(v, 0, sizeof(*v));
	reason[0] = '\0';
	v->assignment_id = a->assignment_id;
	v->kind = (int)a->kind;
	v->wave_index = a->wave;

	/* 0. shape */
	if (a->assignment_id == 0)
		return fl_errf(reason, FL_EAUTH, "assignment id 0");
	if (a->kind != KIND_APPLY && a->kind != KIND_REVERT && a->kind != KIND_CHECK)
		return fl_errf(reason, FL_EAUTH, "no work kind");
	if (a->tenant_id == NULL || a->tenant_id[0] == '\0')
		return fl_errf(reason, FL_EAUTH, "no tenant");
	if (a->signed_order.len == 0)
		return fl_errf(reason, FL_EAUTH, "no signed order");
	if (a->release_hash.len != FL_ORDER_HASH_LEN)
		return fl_errf(reason, FL_EAUTH, "no release hash");

	/* 1. the order */
	rv = fl_order_verify(a->signed_order.data, a->signed_order.len, FL_ORDER_ROLLOUT,
	                     ctx->trusted, ctx->n_trusted, ctx->project_id, ctx->now_ms, &v->order,
	                     reason);
	if (rv != FL_OK)
		return refuse_with(reason, "rollout order");

	/* 2. the release */
	if (memcmp(a->release_hash.data, v->order->release_hash, FL_ORDER_HASH_LEN) != 0) {
		hex16(a->release_hash.data, h1);
		hex16(v->order->release_hash, h2);
		return fl_errf(reason, FL_EAUTH,
		               "release %s is not the release of order %.16s (%s)", h1,
		               v->order->hash_hex, h2);
	}
	rv = fl_releases_get(ctx->releases, v->order->release_hash, ctx->fetch, ctx->fetch_arg,
	                     &v->release, reason);
	if (rv == FL_EAUTH || rv == FL_EPARSE || rv == FL_ECHECKSUM || rv == FL_EGRAPH)
		return refuse_with(reason, "release");
	if (rv != FL_OK) {
		fl_err_prefix(reason, "cannot get release %.16s", v->order->hash_hex);
		return rv;
	}
	set = &v->release->release->set;
	seq = fl_ledger_tenant_sequence(ctx->ledger, a->tenant_id);
	v->tenant_sequence = seq;
	if (v->release->release->sequence < seq)
		return fl_errf(
		    reason, FL_EAUTH,
		    "release sequence %llu is older than sequence %llu, which this agent "
		    "applied to tenant '%s'",
		    (unsigned long long)v->release->release->sequence, (unsigned long long)seq,
		    fl_err_quote(shown, sizeof(shown), a->tenant_id, strlen(a->tenant_id)));

	/* 3. the tenant, the order's selection, the wave */
	v->tenant = fl_tenants_find(ctx->tenants, a->tenant_id);
	if (v->tenant == NULL)
		return fl_errf(
		    reason, FL_EAUTH, "tenant '%s' is not one of this agent's",
		    fl_err_quote(shown, sizeof(shown), a->tenant_id, strlen(a->tenant_id)));
	if (fl_order_covers(v->order, v->tenant->id, &v->tenant->labels, reason) != FL_OK)
		return FL_EAUTH;
	if (fl_order_wave_check(v->order, a->wave, v->tenant->id, &v->tenant->labels, reason) !=
	    FL_OK)
		return FL_EAUTH;
	v->wave = &v->order->policy.waves[a->wave];

	/* 4. what the kind may do */
	switch (a->kind) {
	case KIND_APPLY:
		if (strcmp(target, v->order->target_migration_id) != 0)
			return fl_errf(reason, FL_EAUTH,
			               "apply target '%s' is not the order's target '%s'",
			               fl_err_quote(shown, sizeof(shown), target, strlen(target)),
			               v->order->target_migration_id);
		if (fl_migration_set_find(set, target) == NULL)
			return fl_errf(reason, FL_EAUTH,
			               "the order's target '%s' is not in release %.16s", target,
			               v->release->release->hash);
		v->target = v->order->target_migration_id;
		break;
	case KIND_CHECK:
		if (target[0] != '\0')
			return fl_errf(reason, FL_EAUTH, "a check names no target (got '%s')",
			               fl_err_quote(shown, sizeof(shown), target, strlen(target)));
		break;
	case KIND_REVERT:
		if (a->signed_rollback_order.len > 0) {
			rv = fl_order_verify(a->signed_rollback_order.data,
			                     a->signed_rollback_order.len, FL_ORDER_ROLLBACK,
			                     ctx->trusted, ctx->n_trusted, ctx->project_id,
			                     ctx->now_ms, &v->rollback, reason);
			if (rv != FL_OK)
				return refuse_with(reason, "rollback order");
			if (fl_order_rollback_check(v->rollback, v->order, v->tenant->id,
			                            &v->tenant->labels, reason) != FL_OK)
				return FL_EAUTH;
			if (strcmp(target, v->rollback->target_migration_id) != 0)
				return fl_errf(
				    reason, FL_EAUTH,
				    "revert target '%s' is not the rollback order's ('%s')",
				    fl_err_quote(shown, sizeof(shown), target, strlen(target)),
				    v->rollback->target_migration_id);
		} else if (v->order->policy.on_failure != FL_ON_FAILURE_ROLLBACK_WAVE &&
		           v->order->policy.on_failure != FL_ON_FAILURE_ROLLBACK_ALL) {
			return fl_errf(
			    reason, FL_EAUTH,
			    "revert without authorisation: no signed rollback order, and "
			    "order %.16s says on_failure: %s",
			    v->order->hash_hex, fl_on_failure_name(v->order->policy.on_failure));
		}
		if (target[0] != '\0') {
			if (fl_migration_set_find(set, target) == NULL)
				return fl_errf(
				    reason, FL_EAUTH, "revert target '%s' is not in release %.16s",
				    fl_err_quote(shown, sizeof(shown), target, strlen(target)),
				    v->release->release->hash);
			v->target = target;
		}
		break;
	default:
		return fl_errf(reason, FL_EAUTH, "no work kind");
	}
	return FL_OK;
}

static bool is_applied(const struct fl_plan_entry *e)
{
	return e->state == FL_MSTATE_APPLIED || e->state == FL_MSTATE_MODIFIED;
}

static bool listed(char *const *ids, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

/* Every migration to revert has down.sql; list those that do not. */
static enum fl_err downs_present(const struct fl_plan_entry *const *list, size_t n, char *reason)
{
	struct fl_buf names = FL_BUF_INIT;
	enum fl_err rv = FL_OK;

	for (size_t i = 0; i < n; i++)
		if (list[i]->migration->down_sql == NULL)
			fl_buf_printf(&names, "%s'%s'", names.len ? ", " : "",
			              list[i]->migration->id);
	if (names.len > 0)
		rv = fl_errf(reason, FL_EAUTH, "cannot revert: no down.sql for %.800s",
		             fl_buf_str(&names));
	fl_buf_fini(&names);
	return rv;
}

static enum fl_err plan_revert(const struct fl_verified *v, const struct fl_plan *plan,
                               struct fl_ledger *ledger, struct fl_revert_plan *rp, char *reason)
{
	const struct fl_plan_entry **list = fl_calloc(plan->count + 1, sizeof(*list));
	char **mine = NULL;
	size_t n = 0, n_mine = 0, i, applied_mine = 0;
	bool bounded = v->rollback == NULL || v->rollback->target_migration_id[0] == '\0';
	enum fl_err rv = FL_OK;

	if (bounded)
		fl_ledger_applied_under(ledger, v->tenant->id, v->order->hash, &mine, &n_mine);
	if (v->target != NULL) {
		long at = -1;

		for (i = 0; i < plan->count; i++)
			if (strcmp(plan->entries[i].migration->id, v->target) == 0)
				at = (long)i;
		for (i = (size_t)(at + 1); i < plan->count; i++)
			if (is_applied(&plan->entries[i]))
				list[n++] = &plan->entries[i];
		if (n > 0 && !is_applied(&plan->entries[at])) {
			rv = fl_errf(
			    reason, FL_EAUTH,
			    "cannot revert to '%s': it is not applied, while later ones are",
			    v->target);
			goto out;
		}
		rp->to = v->target;
		/* bounded by the ledger: only what this agent applied under the order */
		for (i = 0; bounded && i < n; i++)
			if (!listed(mine, n_mine, list[i]->migration->id)) {
				rv = fl_errf(
				    reason, FL_EAUTH,
				    "revert would undo '%s', which this agent did not apply under "
				    "order %.16s",
				    list[i]->migration->id, v->order->hash_hex);
				goto out;
			}
	} else {
		/* exactly what the ledger says the order applied here, which must be
		 * the newest migrations applied on the tenant */
		for (i = 0; i < plan->count; i++)
			if (is_applied(&plan->entries[i]) &&
			    listed(mine, n_mine, plan->entries[i].migration->id))
				applied_mine++;
		for (i = plan->count; i-- > 0 && n < applied_mine;)
			if (is_applied(&plan->entries[i])) {
				if (!listed(mine, n_mine, plan->entries[i].migration->id)) {
					rv = fl_errf(
					    reason, FL_EAUTH,
					    "cannot revert what order %.16s applied: '%s', applied "
					    "after it by something else, would have to go first",
					    v->order->hash_hex, plan->entries[i].migration->id);
					goto out;
				}
				list[n++] = &plan->entries[i];
			}
		rp->to = NULL;
		rp->steps = n;
	}
	rp->nothing = n == 0;
	rv = downs_present(list, n, reason);
out:
	for (i = 0; i < n_mine; i++)
		free(mine[i]);
	free(mine);
	free(list);
	return rv;
}

enum fl_err fl_verify_history(const struct fl_verified *v, const struct fl_plan *plan,
                              struct fl_ledger *ledger, struct fl_revert_plan *rp, char *reason)
{
	size_t i;

	memset(rp, 0, sizeof(*rp));
	reason[0] = '\0';
	/* 5. the tenant runs nothing the release lacks */
	if (plan->n_missing > 0)
		return fl_errf(reason, FL_EAUTH,
		               "tenant has migration '%s' applied, which release %.16s lacks "
		               "(it runs something newer or other)",
		               plan->missing[0]->migration_name, v->release->release->hash);
	if (plan->n_foreign_failed > 0)
		return fl_errf(reason, FL_EAUTH,
		               "tenant has a failed migration '%s', which release %.16s lacks",
		               plan->foreign_failed[0]->migration_name, v->release->release->hash);
	for (i = 0; i < plan->count; i++)
		if (plan->entries[i].state == FL_MSTATE_MODIFIED)
			return fl_errf(
			    reason, FL_EAUTH,
			    "tenant has migration '%s' applied with another checksum than "
			    "release %.16s's",
			    plan->entries[i].migration->id, v->release->release->hash);
	if (v->kind != KIND_REVERT)
		return FL_OK;
	/* 6. what a revert may undo */
	return plan_revert(v, plan, ledger, rp, reason);
}

const char *fl_verify_kind_name(int kind)
{
	return kind_name(kind);
}
