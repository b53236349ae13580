/*
 * Signed orders: build, sign, verify, inspect, and the coverage checks
 * agents make (order.h, docs/WIRE.md "Orders").
 *
 * The wire types (RolloutOrder, RolloutPolicy, TenantSelector...) and the C
 * types (struct fl_policy, struct fl_selector) meet only here, in both
 * directions: to_* builds the protobuf view of a C struct (pointing into it,
 * owning nothing but the arrays of pointers, which a `struct arena` frees),
 * from_* decodes into a C struct and refuses anything the C struct cannot
 * say exactly (a field of another selector kind, an unspecified enum value),
 * so that decoding then packing again is the identity on every accepted
 * order. All packing and unpacking goes through wire.c, in strict mode.
 */
#include "order.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "mem.h"
#include "migration.h"
#include "release.h"
#include "utf8.h"
#include "wire.h"

typedef Flotilla__V1__SignedOrder SignedOrder;
typedef Flotilla__V1__RolloutOrder RolloutOrder;
typedef Flotilla__V1__RollbackOrder RollbackOrder;
typedef Flotilla__V1__RolloutPolicy RolloutPolicy;
typedef Flotilla__V1__WavePolicy WavePolicy;
typedef Flotilla__V1__WaveSelector WaveSelector;
typedef Flotilla__V1__HealthCheck HealthCheck;
typedef Flotilla__V1__MaintenanceWindow MaintenanceWindow;
typedef Flotilla__V1__RetryPolicy RetryPolicy;
typedef Flotilla__V1__TenantSelector TenantSelector;
typedef Flotilla__V1__Label Label;
typedef Flotilla__V1__ReleaseSignature ReleaseSignature;

#define SHOW_MAX 96

_Static_assert(FL_ORDER_FILE_MAX == FL_WIRE_MAX_ORDER, "order cap");
_Static_assert(FL_ORDER_SIGNATURES_MAX == FL_WIRE_MAX_SIGNATURES, "order signatures");

static void ensure_sodium(void)
{
	if (sodium_init() < 0)
		abort();
}

/* ---- selectors ---- */

void fl_selector_init(struct fl_selector *s)
{
	memset(s, 0, sizeof(*s));
	fl_labels_init(&s->labels);
}

void fl_selector_fini(struct fl_selector *s)
{
	fl_labels_fini(&s->labels);
	for (size_t i = 0; i < s->n_tenant_ids; i++)
		free(s->tenant_ids[i]);
	free(s->tenant_ids);
	memset(s, 0, sizeof(*s));
}

void fl_selector_copy(struct fl_selector *dst, const struct fl_selector *src)
{
	fl_selector_init(dst);
	fl_labels_copy(&dst->labels, &src->labels);
	if (src->n_tenant_ids > 0) {
		dst->tenant_ids = fl_calloc(src->n_tenant_ids, sizeof(char *));
		for (size_t i = 0; i < src->n_tenant_ids; i++)
			dst->tenant_ids[i] = fl_strdup(src->tenant_ids[i]);
	}
	dst->n_tenant_ids = src->n_tenant_ids;
	dst->all = src->all;
}

/* NULL when id is a tenant id (as a policy's selector wants one), else why not. */
static const char *tenant_problem(const char *id)
{
	size_t len = id ? strlen(id) : 0;

	if (len == 0)
		return "empty";
	if (len > FL_POLICY_TENANT_ID_MAX)
		return "longer than 255 bytes";
	if (!fl_utf8_valid(id, len, NULL))
		return "not UTF-8";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c < 0x20 || c == 0x7f ||
		    (c == 0xc2 && i + 1 < len && (unsigned char)id[i + 1] < 0xa0))
			return "a control character";
	}
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum fl_err fl_selector_add_tenant(struct fl_selector *s, const char *tenant_id, char *errbuf)
{
	const char *why = tenant_problem(tenant_id);
	char shown[SHOW_MAX];
	size_t lo = 0, hi = s->n_tenant_ids;

	if (why != NULL)
		return fl_errf(errbuf, FL_EINVAL, "invalid tenant id '%s': %s",
		               fl_err_quote(shown, sizeof(shown), tenant_id ? tenant_id : "",
		                            tenant_id ? strlen(tenant_id) : 0),
		               why);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->tenant_ids[mid], tenant_id);

		if (c == 0)
			return FL_OK;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (s->n_tenant_ids >= FL_ORDER_TENANTS_MAX)
		return fl_errf(errbuf, FL_EINVAL, "more than %d tenant ids", FL_ORDER_TENANTS_MAX);
	s->tenant_ids = fl_realloc(s->tenant_ids, (s->n_tenant_ids + 1) * sizeof(char *));
	memmove(&s->tenant_ids[lo + 1], &s->tenant_ids[lo],
	        (s->n_tenant_ids - lo) * sizeof(char *));
	s->tenant_ids[lo] = fl_strdup(tenant_id);
	s->n_tenant_ids++;
	return FL_OK;
}

/* Labels as a set must hold them: each valid, keys strictly increasing. */
static const char *labels_problem(const struct fl_labels *l, char *err)
{
	if (l->n > FL_LABELS_MAX)
		return "too many labels";
	for (size_t i = 0; i < l->n; i++) {
		struct fl_labels probe;
		bool ok;

		if (l->items[i].key == NULL || l->items[i].value == NULL)
			return "a label without a key or value";
		fl_labels_init(&probe);
		ok = fl_labels_set(&probe, l->items[i].key, l->items[i].value, err) == FL_OK;
		fl_labels_fini(&probe);
		if (!ok)
			return err;
		if (i > 0 && strcmp(l->items[i - 1].key, l->items[i].key) >= 0)
			return "labels not sorted by key, or a key twice";
	}
	return NULL;
}

enum fl_err fl_selector_check(const struct fl_selector *s, char *errbuf)
{
	char err[FL_ERRBUF_SIZE], shown[SHOW_MAX];
	const char *why;

	if ((why = labels_problem(&s->labels, err)) != NULL)
		return fl_errf(errbuf, FL_EINVAL, "selector labels: %s", why);
	if (s->n_tenant_ids > FL_ORDER_TENANTS_MAX)
		return fl_errf(errbuf, FL_EINVAL, "selector: more than %d tenant ids",
		               FL_ORDER_TENANTS_MAX);
	for (size_t i = 0; i < s->n_tenant_ids; i++) {
		const char *id = s->tenant_ids[i];

		if ((why = tenant_problem(id)) != NULL)
			return fl_errf(
			    errbuf, FL_EINVAL, "selector: invalid tenant id '%s': %s",
			    fl_err_quote(shown, sizeof(shown), id ? id : "", id ? strlen(id) : 0),
			    why);
		if (i > 0 && strcmp(s->tenant_ids[i - 1], id) >= 0)
			return fl_errf(errbuf, FL_EINVAL,
			               "selector: tenant ids not sorted, or '%s' twice",
			               fl_err_quote(shown, sizeof(shown), id, strlen(id)));
	}
	if (s->all && (s->labels.n > 0 || s->n_tenant_ids > 0))
		return fl_errf(errbuf, FL_EINVAL,
		               "selector: 'all' with labels or tenant ids (give one or the other)");
	if (!s->all && s->labels.n == 0 && s->n_tenant_ids == 0)
		return fl_errf(errbuf, FL_EINVAL,
		               "selector selects no tenant: give labels, tenant ids or all");
	return FL_OK;
}

static bool listed(char *const *ids, size_t n, const char *id)
{
	return n > 0 && bsearch(&id, ids, n, sizeof(char *), cmp_str) != NULL;
}

bool fl_selector_matches(const struct fl_selector *s, const char *tenant_id,
                         const struct fl_labels *labels)
{
	if (tenant_id == NULL)
		return false;
	if (s->all)
		return true;
	if (s->labels.n == 0 && s->n_tenant_ids == 0)
		return false; /* selects nothing, never everything */
	if (s->labels.n > 0 && (labels == NULL || !fl_labels_match(labels, &s->labels)))
		return false;
	return s->n_tenant_ids == 0 || listed(s->tenant_ids, s->n_tenant_ids, tenant_id);
}

/* ---- C structs to their wire view ---- */

/* Allocations of a wire view, freed together. */
struct arena {
	void **p;
	size_t n, cap;
};

static void *arena_alloc(struct arena *a, size_t n, size_t size)
{
	void *p = fl_calloc(n ? n : 1, size);

	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		a->p = fl_realloc(a->p, a->cap * sizeof(void *));
	}
	a->p[a->n++] = p;
	return p;
}

static void arena_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->p[i]);
	free(a->p);
	memset(a, 0, sizeof(*a));
}

static Label **to_labels(struct arena *a, const struct fl_labels *l)
{
	Label *items = arena_alloc(a, l->n, sizeof(Label));
	Label **ptrs = arena_alloc(a, l->n, sizeof(Label *));

	for (size_t i = 0; i < l->n; i++) {
		flotilla__v1__label__init(&items[i]);
		items[i].key = l->items[i].key;
		items[i].value = l->items[i].value;
		ptrs[i] = &items[i];
	}
	return ptrs;
}

static TenantSelector *to_selector(struct arena *a, const struct fl_selector *s)
{
	TenantSelector *t = arena_alloc(a, 1, sizeof(*t));

	flotilla__v1__tenant_selector__init(t);
	t->labels = to_labels(a, &s->labels);
	t->n_labels = s->labels.n;
	t->tenant_ids = s->tenant_ids;
	t->n_tenant_ids = s->n_tenant_ids;
	t->all = s->all;
	return t;
}

/* A value that must fit the wire's uint32. */
static bool fits_u32(int64_t v)
{
	return v >= 0 && v <= UINT32_MAX;
}

static enum fl_err to_policy(struct arena *a, const struct fl_policy *p, RolloutPolicy **out,
                             char *errbuf)
{
	RolloutPolicy *rp = arena_alloc(a, 1, sizeof(*rp));
	RetryPolicy *retry = arena_alloc(a, 1, sizeof(*retry));
	WavePolicy *waves = arena_alloc(a, p->n_waves, sizeof(WavePolicy));
	WaveSelector *sels = arena_alloc(a, p->n_waves, sizeof(WaveSelector));
	HealthCheck *checks = arena_alloc(a, p->n_checks, sizeof(HealthCheck));
	MaintenanceWindow *wins = arena_alloc(a, p->n_windows, sizeof(MaintenanceWindow));
	enum fl_err rv;

	if ((rv = fl_policy_check(p, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "policy");
		return FL_EINVAL;
	}
	flotilla__v1__rollout_policy__init(rp);
	flotilla__v1__retry_policy__init(retry);
	rp->name = p->name;
	rp->per_agent_parallel = p->per_agent_parallel;
	rp->health_interval_ms = p->health_interval_ms;
	rp->max_duration_ms = p->max_duration_ms;
	rp->lock_timeout_ms = p->lock_timeout_ms;
	rp->statement_timeout_ms = p->statement_timeout_ms;
	if (!fits_u32(p->retry.attempts) || !fits_u32(p->retry.base_delay_ms) ||
	    !fits_u32(p->retry.max_delay_ms) || !fits_u32(p->retry.budget_ms))
		return fl_errf(errbuf, FL_EINVAL, "policy: retry values out of range");
	retry->attempts = (uint32_t)p->retry.attempts;
	retry->base_delay_ms = (uint32_t)p->retry.base_delay_ms;
	retry->max_delay_ms = (uint32_t)p->retry.max_delay_ms;
	retry->budget_ms = (uint32_t)p->retry.budget_ms;
	rp->retry = retry;
	/* The wire's enums are the C ones plus one: 0 is "unspecified". */
	rp->on_failure = (Flotilla__V1__FailurePolicy)(p->on_failure + 1);
	rp->on_halt = (Flotilla__V1__OnHalt)(p->on_halt + 1);
	rp->unreachable = (Flotilla__V1__UnreachableAction)(p->unreachable + 1);
	rp->unreachable_after_ms = p->unreachable_after_ms;

	rp->waves = arena_alloc(a, p->n_waves, sizeof(WavePolicy *));
	rp->n_waves = p->n_waves;
	for (size_t i = 0; i < p->n_waves; i++) {
		const struct fl_wave *w = &p->waves[i];
		WavePolicy *wp = &waves[i];
		WaveSelector *ws = &sels[i];

		flotilla__v1__wave_policy__init(wp);
		flotilla__v1__wave_selector__init(ws);
		ws->kind = (Flotilla__V1__SelectKind)(w->select.kind + 1);
		switch (w->select.kind) {
		case FL_SELECT_LABELS:
			ws->labels = to_labels(a, &w->select.labels);
			ws->n_labels = w->select.labels.n;
			break;
		case FL_SELECT_TENANTS:
			ws->tenant_ids = w->select.tenants;
			ws->n_tenant_ids = w->select.n_tenants;
			break;
		case FL_SELECT_PERCENT:
			ws->percent = w->select.percent;
			break;
		}
		wp->name = w->name;
		wp->select = ws;
		wp->max_parallel = w->max_parallel;
		wp->per_agent_parallel = w->per_agent_parallel;
		wp->max_failures = w->max_failures;
		/* One spelling of "not set", so the same policy packs alike. */
		wp->max_failure_rate = w->max_failure_rate < 0 ? -1 : w->max_failure_rate;
		wp->bake_ms = w->bake_ms;
		wp->backup = w->backup;
		wp->gate = (Flotilla__V1__Gate)(w->gate + 1);
		rp->waves[i] = wp;
	}
	rp->checks = arena_alloc(a, p->n_checks, sizeof(HealthCheck *));
	rp->n_checks = p->n_checks;
	for (size_t i = 0; i < p->n_checks; i++) {
		flotilla__v1__health_check__init(&checks[i]);
		checks[i].name = p->checks[i].name;
		checks[i].sql = p->checks[i].sql;
		if (!fits_u32(p->checks[i].timeout_ms))
			return fl_errf(errbuf, FL_EINVAL,
			               "policy: health check timeout out of range");
		checks[i].timeout_ms = (uint32_t)p->checks[i].timeout_ms;
		rp->checks[i] = &checks[i];
	}
	rp->windows = arena_alloc(a, p->n_windows, sizeof(MaintenanceWindow *));
	rp->n_windows = p->n_windows;
	for (size_t i = 0; i < p->n_windows; i++) {
		flotilla__v1__maintenance_window__init(&wins[i]);
		wins[i].labels = to_labels(a, &p->windows[i].labels);
		wins[i].n_labels = p->windows[i].labels.n;
		wins[i].start_minute = (uint32_t)p->windows[i].start_minute;
		wins[i].end_minute = (uint32_t)p->windows[i].end_minute;
		rp->windows[i] = &wins[i];
	}
	*out = rp;
	return FL_OK;
}

/* ---- the wire view to C structs ---- */

/* Labels from the wire, which must already be a set: sorted, unique, valid. */
static enum fl_err from_labels(Label *const *items, size_t n, struct fl_labels *out,
                               const char *what, char *errbuf)
{
	char err[FL_ERRBUF_SIZE];

	if (n > FL_LABELS_MAX)
		return fl_errf(errbuf, FL_EPARSE, "%s: more than %d labels", what, FL_LABELS_MAX);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(items[i - 1]->key, items[i]->key) >= 0)
			return fl_errf(errbuf, FL_EPARSE,
			               "%s: labels not sorted by key, or a key twice", what);
		if (fl_labels_set(out, items[i]->key, items[i]->value, err) != FL_OK)
			return fl_errf(errbuf, FL_EPARSE, "%s: %s", what, err);
	}
	return FL_OK;
}

static enum fl_err from_selector(const TenantSelector *t, struct fl_selector *out, char *errbuf)
{
	enum fl_err rv;

	if ((rv = from_labels(t->labels, t->n_labels, &out->labels, "selector", errbuf)) != FL_OK)
		return rv;
	if (t->n_tenant_ids > 0) {
		out->tenant_ids = fl_calloc(t->n_tenant_ids, sizeof(char *));
		for (size_t i = 0; i < t->n_tenant_ids; i++) {
			out->tenant_ids[i] = fl_strdup(t->tenant_ids[i]);
			out->n_tenant_ids++;
		}
	}
	out->all = t->all != 0;
	if (fl_selector_check(out, errbuf) != FL_OK)
		return FL_EPARSE;
	return FL_OK;
}

/* A wire enum value minus one into [0, max]: the C value; -1 if unspecified
 * or unknown. */
static int from_enum(int v, int max)
{
	return v >= 1 && v - 1 <= max ? v - 1 : -1;
}

static enum fl_err from_wave(const WavePolicy *wp, struct fl_wave *w, size_t i, char *errbuf)
{
	const WaveSelector *ws = wp->select;
	char what[64];
	int kind = from_enum((int)ws->kind, FL_SELECT_PERCENT), gate;
	enum fl_err rv;

	snprintf(what, sizeof(what), "policy waves[%zu].select", i);
	if (kind < 0)
		return fl_errf(errbuf, FL_EPARSE, "%s: kind not given", what);
	/* Only the fields of its kind: anything else would be signed but
	 * ignored. */
	if ((kind != FL_SELECT_LABELS && ws->n_labels > 0) ||
	    (kind != FL_SELECT_TENANTS && ws->n_tenant_ids > 0) ||
	    (kind != FL_SELECT_PERCENT && ws->percent != 0))
		return fl_errf(errbuf, FL_EPARSE, "%s: fields of another kind than %s", what,
		               fl_select_kind_name((enum fl_select_kind)kind));
	w->select.kind = (enum fl_select_kind)kind;
	if ((rv = from_labels(ws->labels, ws->n_labels, &w->select.labels, what, errbuf)) != FL_OK)
		return rv;
	if (ws->n_tenant_ids > 0) {
		w->select.tenants = fl_calloc(ws->n_tenant_ids, sizeof(char *));
		for (size_t k = 0; k < ws->n_tenant_ids; k++) {
			w->select.tenants[k] = fl_strdup(ws->tenant_ids[k]);
			w->select.n_tenants++;
		}
	}
	w->select.percent = ws->percent;
	w->name = fl_strdup(wp->name);
	w->max_parallel = wp->max_parallel;
	w->per_agent_parallel = wp->per_agent_parallel;
	w->max_failures = wp->max_failures;
	if (wp->max_failure_rate != -1 && !(wp->max_failure_rate >= 0 && wp->max_failure_rate <= 1))
		return fl_errf(
		    errbuf, FL_EPARSE,
		    "policy waves[%zu].max_failure_rate: neither -1 (not set) nor 0 to 1", i);
	w->max_failure_rate = wp->max_failure_rate;
	w->bake_ms = wp->bake_ms;
	w->backup = wp->backup != 0;
	if ((gate = from_enum((int)wp->gate, FL_GATE_MANUAL)) < 0)
		return fl_errf(errbuf, FL_EPARSE, "policy waves[%zu].gate: not given", i);
	w->gate = (enum fl_gate)gate;
	return FL_OK;
}

static enum fl_err from_policy(const RolloutPolicy *rp, struct fl_policy *p, char *errbuf)
{
	char err[FL_ERRBUF_SIZE];
	int on_failure, on_halt, unreachable;
	enum fl_err rv;

	/* fl_policy_init's defaults are all replaced: the order says everything. */
	free(p->name);
	p->name = fl_strdup(rp->name);
	p->per_agent_parallel = rp->per_agent_parallel;
	p->health_interval_ms = rp->health_interval_ms;
	p->max_duration_ms = rp->max_duration_ms;
	p->lock_timeout_ms = rp->lock_timeout_ms;
	p->statement_timeout_ms = rp->statement_timeout_ms;
	p->retry.attempts = (int)rp->retry->attempts;
	if (rp->retry->attempts > INT32_MAX)
		return fl_errf(errbuf, FL_EPARSE, "policy retry.attempts: out of range");
	p->retry.base_delay_ms = rp->retry->base_delay_ms;
	p->retry.max_delay_ms = rp->retry->max_delay_ms;
	p->retry.budget_ms = rp->retry->budget_ms;
	if ((on_failure = from_enum((int)rp->on_failure, FL_ON_FAILURE_ROLLBACK_ALL)) < 0)
		return fl_errf(errbuf, FL_EPARSE, "policy on_failure: not given");
	if ((on_halt = from_enum((int)rp->on_halt, FL_ON_HALT_FINISH)) < 0)
		return fl_errf(errbuf, FL_EPARSE, "policy on_halt: not given");
	if ((unreachable = from_enum((int)rp->unreachable, FL_UNREACHABLE_FAIL)) < 0)
		return fl_errf(errbuf, FL_EPARSE, "policy unreachable: not given");
	p->on_failure = (enum fl_on_failure)on_failure;
	p->on_halt = (enum fl_on_halt)on_halt;
	p->unreachable = (enum fl_unreachable_action)unreachable;
	p->unreachable_after_ms = rp->unreachable_after_ms;

	/* The wire already capped these lists (FL_WIRE_MAX_WAVES...). */
	p->waves = fl_calloc(rp->n_waves ? rp->n_waves : 1, sizeof(*p->waves));
	for (size_t i = 0; i < rp->n_waves; i++) {
		fl_labels_init(&p->waves[i].select.labels);
		p->n_waves++;
		if ((rv = from_wave(rp->waves[i], &p->waves[i], i, errbuf)) != FL_OK)
			return rv;
	}
	p->checks = fl_calloc(rp->n_checks ? rp->n_checks : 1, sizeof(*p->checks));
	for (size_t i = 0; i < rp->n_checks; i++) {
		p->checks[i].name = fl_strdup(rp->checks[i]->name);
		p->checks[i].sql = fl_strdup(rp->checks[i]->sql);
		p->checks[i].timeout_ms = rp->checks[i]->timeout_ms;
		p->n_checks++;
	}
	p->windows = fl_calloc(rp->n_windows ? rp->n_windows : 1, sizeof(*p->windows));
	for (size_t i = 0; i < rp->n_windows; i++) {
		const MaintenanceWindow *mw = rp->windows[i];
		char what[64];

		fl_labels_init(&p->windows[i].labels);
		p->n_windows++;
		snprintf(what, sizeof(what), "policy windows[%zu]", i);
		if ((rv = from_labels(mw->labels, mw->n_labels, &p->windows[i].labels, what,
		                      errbuf)) != FL_OK)
			return rv;
		if (mw->start_minute > INT32_MAX || mw->end_minute > INT32_MAX)
			return fl_errf(errbuf, FL_EPARSE, "%s: minutes out of range", what);
		p->windows[i].start_minute = (int)mw->start_minute;
		p->windows[i].end_minute = (int)mw->end_minute;
	}
	if (fl_policy_check(p, err) != FL_OK)
		return fl_errf(errbuf, FL_EPARSE, "policy: %s", err);
	return FL_OK;
}

/* ---- decoding ---- */

static void order_init(struct fl_order *o)
{
	memset(o, 0, sizeof(*o));
	fl_selector_init(&o->selector);
	fl_policy_init(&o->policy);
}

void fl_order_free(struct fl_order *o)
{
	if (o == NULL)
		return;
	free(o->project_id);
	free(o->target_migration_id);
	fl_selector_fini(&o->selector);
	fl_policy_fini(&o->policy);
	free(o->reason);
	free(o->signers);
	free(o);
}

static const char *context_of(enum fl_order_kind kind, size_t *len)
{
	static const char rollout[] = FL_ORDER_ROLLOUT_CONTEXT,
	                  rollback[] = FL_ORDER_ROLLBACK_CONTEXT;

	*len = kind == FL_ORDER_ROLLOUT ? sizeof(rollout) : sizeof(rollback); /* with the NUL */
	return kind == FL_ORDER_ROLLOUT ? rollout : rollback;
}

/* What a signature signs: the kind's context, its NUL, then the hash. */
static size_t signing_message(enum fl_order_kind kind, const uint8_t hash[FL_ORDER_HASH_LEN],
                              uint8_t msg[64])
{
	size_t clen;
	const char *ctx = context_of(kind, &clen);

	memcpy(msg, ctx, clen);
	memcpy(msg + clen, hash, FL_ORDER_HASH_LEN);
	return clen + FL_ORDER_HASH_LEN;
}

static const char *kind_name(enum fl_order_kind kind)
{
	return kind == FL_ORDER_ROLLOUT ? "rollout" : "rollback";
}

/* The fields both kinds share, already unpacked. */
static enum fl_err take_common(struct fl_order *o, uint32_t version, const char *project,
                               const ProtobufCBinaryData *release_hash, int64_t created,
                               int64_t expires, const ProtobufCBinaryData *nonce,
                               const char *reason, char *errbuf)
{
	char shown[SHOW_MAX];
	const char *why;

	if (version != FL_ORDER_FORMAT_VERSION)
		return fl_errf(errbuf, FL_EPARSE,
		               "order format version %u is not supported (this flotilla reads %d)",
		               version, FL_ORDER_FORMAT_VERSION);
	if ((why = fl_release_project_problem(project)) != NULL)
		return fl_errf(errbuf, FL_EPARSE, "invalid project id '%s': %s",
		               fl_err_quote(shown, sizeof(shown), project, strlen(project)), why);
	o->project_id = fl_strdup(project);
	if (release_hash->len != FL_ORDER_HASH_LEN) /* the wire checks it too, by name */
		return fl_errf(errbuf, FL_EPARSE, "release_hash: not 32 bytes");
	memcpy(o->release_hash, release_hash->data, FL_ORDER_HASH_LEN);
	if (nonce->len != FL_ORDER_NONCE_LEN)
		return fl_errf(errbuf, FL_EPARSE, "nonce: %zu bytes, not %d", nonce->len,
		               FL_ORDER_NONCE_LEN);
	memcpy(o->nonce, nonce->data, FL_ORDER_NONCE_LEN);
	if (created <= 0 || expires <= created || expires - created > FL_ORDER_LIFETIME_MAX_MS)
		return fl_errf(errbuf, FL_EPARSE,
		               "times: created %lld, expires %lld: an order expires after it is "
		               "created, within 366 days",
		               (long long)created, (long long)expires);
	o->created_at_ms = created;
	o->expires_at_ms = expires;
	if (strlen(reason) > FL_ORDER_REASON_MAX)
		return fl_errf(errbuf, FL_EPARSE, "reason: longer than %d bytes",
		               FL_ORDER_REASON_MAX);
	o->reason = fl_strdup(reason);
	return FL_OK;
}

static enum fl_err take_target(struct fl_order *o, const char *target, bool required, char *errbuf)
{
	char shown[SHOW_MAX];
	const char *why;

	if (target[0] == '\0' && !required) {
		o->target_migration_id = fl_strdup("");
		return FL_OK;
	}
	if ((why = fl_migration_id_problem(target, strlen(target))) != NULL)
		return fl_errf(errbuf, FL_EPARSE, "invalid target migration id '%s': %s",
		               fl_err_quote(shown, sizeof(shown), target, strlen(target)), why);
	o->target_migration_id = fl_strdup(target);
	return FL_OK;
}

/* Unpack the order bytes of this kind (strict), check they are canonical,
 * and decode them into o. */
static enum fl_err take_order(struct fl_order *o, enum fl_order_kind kind,
                              const ProtobufCBinaryData *bytes, char *errbuf)
{
	const ProtobufCMessageDescriptor *d = kind == FL_ORDER_ROLLOUT
	                                          ? &flotilla__v1__rollout_order__descriptor
	                                          : &flotilla__v1__rollback_order__descriptor;
	struct fl_buf again = FL_BUF_INIT;
	ProtobufCMessage *m = NULL;
	char eb[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;

	if (fl_wire_unpack_message(d, FL_WIRE_STRICT, bytes->data, bytes->len, FL_ORDER_FILE_MAX,
	                           &m, eb) != FL_OK)
		return fl_errf(errbuf, FL_EPARSE, "malformed %s order: %s", kind_name(kind), eb);
	/* One content, one encoding: what is decoded is all that was signed. */
	fl_buf_init(&again, FL_ORDER_FILE_MAX);
	if (fl_wire_pack_message(m, &again, FL_ORDER_FILE_MAX, eb) != FL_OK ||
	    again.len != bytes->len || memcmp(again.data, bytes->data, bytes->len) != 0) {
		rv = fl_errf(errbuf, FL_EPARSE,
		             "%s order is not in canonical form (re-packing it gives other bytes)",
		             kind_name(kind));
		goto out;
	}
	if (kind == FL_ORDER_ROLLOUT) {
		const RolloutOrder *r = (const RolloutOrder *)m;

		if ((rv = take_common(o, r->format_version, r->project_id, &r->release_hash,
		                      r->created_at_ms, r->expires_at_ms, &r->nonce, r->reason,
		                      errbuf)) != FL_OK ||
		    (rv = take_target(o, r->target_migration_id, true, errbuf)) != FL_OK ||
		    (rv = from_selector(r->selector, &o->selector, errbuf)) != FL_OK ||
		    (rv = from_policy(r->policy, &o->policy, errbuf)) != FL_OK)
			goto out;
	} else {
		const RollbackOrder *r = (const RollbackOrder *)m;

		if ((rv = take_common(o, r->format_version, r->project_id, &r->release_hash,
		                      r->created_at_ms, r->expires_at_ms, &r->nonce, r->reason,
		                      errbuf)) != FL_OK ||
		    (rv = take_target(o, r->target_migration_id, false, errbuf)) != FL_OK ||
		    (rv = from_selector(r->selector, &o->selector, errbuf)) != FL_OK)
			goto out;
		memcpy(o->rollout_order_hash, r->rollout_order_hash.data, FL_ORDER_HASH_LEN);
	}
	rv = FL_OK;
out:
	fl_buf_fini(&again);
	fl_wire_free_message(m);
	return rv;
}

static void add_key_id(struct fl_buf *b, const uint8_t pk[FL_KEY_PUBLIC_BYTES], bool first)
{
	char id[FL_KEY_ID_LEN + 1];

	fl_key_id(pk, id);
	fl_buf_printf(b, "%s%s", first ? "" : ", ", id);
}

/*
 * Decode data[0..len) as an order of this kind. With trusted (n_trusted >
 * 0), require a verifying signature by a trusted key; with signer (the key
 * about to sign), require every signature to verify, none by signer, and
 * room for one more. Both before the order is unpacked. *so_out, when not
 * NULL, gets the unpacked SignedOrder (the caller frees it).
 */
static enum fl_err decode(const void *data, size_t len, enum fl_order_kind kind,
                          const uint8_t (*trusted)[FL_KEY_PUBLIC_BYTES], size_t n_trusted,
                          const uint8_t *signer, struct fl_order **out, SignedOrder **so_out,
                          char *errbuf)
{
	char eb[FL_ERRBUF_SIZE] = "", id[FL_KEY_ID_LEN + 1];
	struct fl_order *o = NULL;
	SignedOrder *so = NULL;
	uint8_t msg[64];
	size_t mlen, i, j;
	enum fl_err rv = FL_OK;

	*out = NULL;
	if (so_out)
		*so_out = NULL;
	ensure_sodium();
	if (kind != FL_ORDER_ROLLOUT && kind != FL_ORDER_ROLLBACK)
		return fl_errf(errbuf, FL_EINVAL, "unknown order kind %d", (int)kind);
	if (len > FL_ORDER_FILE_MAX)
		return fl_errf(errbuf, FL_EPARSE, "order of %zu bytes, larger than the limit of %u",
		               len, FL_ORDER_FILE_MAX);
	if (len == 0)
		return fl_errf(errbuf, FL_EPARSE, "empty: not an order");
	if (fl_wire_unpack_message(&flotilla__v1__signed_order__descriptor, FL_WIRE_STRICT, data,
	                           len, FL_ORDER_FILE_MAX, (ProtobufCMessage **)&so, eb) != FL_OK)
		return fl_errf(errbuf, FL_EPARSE, "malformed: %s", eb);

	o = fl_malloc(sizeof(*o));
	order_init(o);
	o->kind = kind;
	crypto_hash_sha256(o->hash, so->order.data, so->order.len);
	sodium_bin2hex(o->hash_hex, sizeof(o->hash_hex), o->hash, FL_ORDER_HASH_LEN);
	mlen = signing_message(kind, o->hash, msg);
	o->signers = fl_calloc(so->n_signatures ? so->n_signatures : 1, sizeof(*o->signers));
	for (i = 0; i < so->n_signatures; i++) {
		const ReleaseSignature *s = so->signatures[i];
		struct fl_order_signer *g = &o->signers[i];

		memcpy(g->pk, s->public_key.data, FL_KEY_PUBLIC_BYTES); /* sizes: the wire's */
		for (j = 0; j < i; j++) {
			if (memcmp(o->signers[j].pk, g->pk, FL_KEY_PUBLIC_BYTES) == 0) {
				fl_key_id(g->pk, id);
				rv = fl_errf(errbuf, FL_EPARSE, "signed twice by %s", id);
				goto out;
			}
		}
		o->n_signers++;
		g->valid = fl_key_verify(g->pk, msg, mlen, s->signature.data);
		if (signer && !g->valid) {
			fl_key_id(g->pk, id);
			rv = fl_errf(errbuf, FL_EAUTH,
			             "signature by %s does not verify: refusing to add mine", id);
			goto out;
		}
		if (signer && memcmp(signer, g->pk, FL_KEY_PUBLIC_BYTES) == 0) {
			fl_key_id(g->pk, id);
			rv = fl_errf(errbuf, FL_ESTATE, "already signed by %s", id);
			goto out;
		}
		for (j = 0; j < n_trusted; j++)
			if (memcmp(trusted[j], g->pk, FL_KEY_PUBLIC_BYTES) == 0)
				g->trusted = true;
	}
	if (signer && o->n_signers >= FL_ORDER_SIGNATURES_MAX) {
		rv = fl_errf(errbuf, FL_ESTATE, "already %zu signatures, the limit", o->n_signers);
		goto out;
	}
	if (n_trusted > 0) {
		struct fl_buf b = FL_BUF_INIT;

		for (i = 0; i < o->n_signers; i++) {
			if (o->signers[i].trusted && !o->signers[i].valid) {
				fl_key_id(o->signers[i].pk, id);
				rv = fl_errf(
				    errbuf, FL_EAUTH,
				    "signature by trusted key %s does not verify: the %s "
				    "order was altered after it was signed, or is of another "
				    "kind",
				    id, kind_name(kind));
				goto out;
			}
			if (o->signers[i].trusted && !o->verified) {
				o->verified = true;
				o->verified_by = i;
			}
		}
		if (!o->verified) {
			fl_buf_puts(&b, o->n_signers ? "signed by " : "not signed");
			for (i = 0; i < o->n_signers; i++)
				add_key_id(&b, o->signers[i].pk, i == 0);
			fl_buf_puts(&b, "; trusted: ");
			for (i = 0; i < n_trusted; i++)
				add_key_id(&b, trusted[i], i == 0);
			rv = fl_errf(errbuf, FL_EAUTH,
			             "%s order %.16s: no signature by a trusted key (%s)",
			             kind_name(kind), o->hash_hex, fl_buf_str(&b));
			fl_buf_fini(&b);
			goto out;
		}
	}
	if ((rv = take_order(o, kind, &so->order, errbuf)) != FL_OK)
		goto out;
	*out = o;
	o = NULL;
	if (so_out) {
		*so_out = so;
		so = NULL;
	}
out:
	fl_order_free(o);
	fl_wire_free_message(so ? &so->base : NULL);
	return rv;
}

enum fl_err fl_order_verify(const void *data, size_t len, enum fl_order_kind kind,
                            const uint8_t (*trusted)[FL_KEY_PUBLIC_BYTES], size_t n_trusted,
                            const char *project_id, int64_t now_ms, struct fl_order **out,
                            char *errbuf)
{
	struct fl_order *o = NULL;
	char a[SHOW_MAX], b[SHOW_MAX];
	enum fl_err rv;

	*out = NULL;
	if (trusted == NULL || n_trusted == 0)
		return fl_errf(errbuf, FL_EINVAL, "no trusted release keys given");
	if (project_id == NULL)
		return fl_errf(errbuf, FL_EINVAL, "no project given");
	if ((rv = decode(data, len, kind, trusted, n_trusted, NULL, &o, NULL, errbuf)) != FL_OK)
		return rv;
	if (strcmp(o->project_id, project_id) != 0) {
		rv = fl_errf(errbuf, FL_EAUTH, "%s order %.16s is of project '%s', not of '%s'",
		             kind_name(kind), o->hash_hex,
		             fl_err_quote(a, sizeof(a), o->project_id, strlen(o->project_id)),
		             fl_err_quote(b, sizeof(b), project_id, strlen(project_id)));
		fl_order_free(o);
		return rv;
	}
	if (now_ms >= o->expires_at_ms) {
		rv = fl_errf(errbuf, FL_EAUTH, "%s order %.16s expired %lld s ago", kind_name(kind),
		             o->hash_hex, (long long)((now_ms - o->expires_at_ms) / 1000));
		fl_order_free(o);
		return rv;
	}
	*out = o;
	return FL_OK;
}

enum fl_err fl_order_inspect(const void *data, size_t len, enum fl_order_kind kind,
                             struct fl_order **out, char *errbuf)
{
	return decode(data, len, kind, NULL, 0, NULL, out, NULL, errbuf);
}

/* ---- building and signing ---- */

static int64_t wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Wrap packed order bytes in a SignedOrder without signatures, into out,
 * and check the result decodes. */
static enum fl_err wrap(enum fl_order_kind kind, const struct fl_buf *order, struct fl_buf *out,
                        char hash_hex[FL_ORDER_HASH_HEX_LEN + 1], char *errbuf)
{
	SignedOrder so = FLOTILLA__V1__SIGNED_ORDER__INIT;
	struct fl_order *check = NULL;
	enum fl_err rv;

	so.order.data = (uint8_t *)order->data;
	so.order.len = order->len;
	if ((rv = fl_wire_pack_message(&so.base, out, FL_ORDER_FILE_MAX, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "cannot pack the order");
		return FL_EINVAL;
	}
	if ((rv = fl_order_inspect(out->data, out->len, kind, &check, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "the built order does not decode");
		return FL_EINVAL;
	}
	memcpy(hash_hex, check->hash_hex, sizeof(check->hash_hex));
	fl_order_free(check);
	return FL_OK;
}

/* The checks decoding makes, made on the parameters first for clear errors. */
static enum fl_err check_params(const char *project, const uint8_t *release_hash,
                                const struct fl_selector *selector, int64_t created,
                                int64_t expires, const char *reason, char *errbuf)
{
	char shown[SHOW_MAX];
	const char *why;

	if ((why = fl_release_project_problem(project)) != NULL)
		return fl_errf(errbuf, FL_EINVAL, "invalid project id '%s': %s",
		               fl_err_quote(shown, sizeof(shown), project ? project : "",
		                            project ? strlen(project) : 0),
		               why);
	if (release_hash == NULL)
		return fl_errf(errbuf, FL_EINVAL, "no release hash given");
	if (selector == NULL)
		return fl_errf(errbuf, FL_EINVAL, "no selector given");
	if (fl_selector_check(selector, errbuf) != FL_OK)
		return FL_EINVAL;
	if (expires <= created || expires - created > FL_ORDER_LIFETIME_MAX_MS)
		return fl_errf(errbuf, FL_EINVAL,
		               "an order expires after it is created, within 366 days");
	if (reason && strlen(reason) > FL_ORDER_REASON_MAX)
		return fl_errf(errbuf, FL_EINVAL, "reason: longer than %d bytes",
		               FL_ORDER_REASON_MAX);
	if (reason && !fl_utf8_valid(reason, strlen(reason), NULL))
		return fl_errf(errbuf, FL_EINVAL, "reason: not UTF-8");
	return FL_OK;
}

enum fl_err fl_order_build_rollout(const struct fl_rollout_params *p, struct fl_buf *out,
                                   char hash_hex[FL_ORDER_HASH_HEX_LEN + 1], char *errbuf)
{
	RolloutOrder r = FLOTILLA__V1__ROLLOUT_ORDER__INIT;
	struct fl_buf packed = FL_BUF_INIT;
	struct arena a = {0};
	uint8_t nonce[FL_ORDER_NONCE_LEN];
	int64_t created = p->created_at_ms ? p->created_at_ms : wall_ms();
	char shown[SHOW_MAX];
	const char *why;
	enum fl_err rv;

	ensure_sodium();
	fl_buf_reset(out);
	if ((rv = check_params(p->project_id, p->release_hash, p->selector, created,
	                       p->expires_at_ms, p->reason, errbuf)) != FL_OK)
		return rv;
	if (p->target_migration_id == NULL ||
	    (why = fl_migration_id_problem(p->target_migration_id,
	                                   strlen(p->target_migration_id))) != NULL)
		return fl_errf(
		    errbuf, FL_EINVAL, "invalid target migration id '%s': %s",
		    fl_err_quote(shown, sizeof(shown),
		                 p->target_migration_id ? p->target_migration_id : "",
		                 p->target_migration_id ? strlen(p->target_migration_id) : 0),
		    p->target_migration_id ? why : "empty");
	if (p->policy == NULL)
		return fl_errf(errbuf, FL_EINVAL, "no policy given");
	randombytes_buf(nonce, sizeof(nonce));
	r.format_version = FL_ORDER_FORMAT_VERSION;
	r.project_id = (char *)p->project_id;
	r.release_hash.data = (uint8_t *)p->release_hash;
	r.release_hash.len = FL_ORDER_HASH_LEN;
	r.target_migration_id = (char *)p->target_migration_id;
	r.selector = to_selector(&a, p->selector);
	if ((rv = to_policy(&a, p->policy, &r.policy, errbuf)) != FL_OK)
		goto out;
	r.created_at_ms = created;
	r.expires_at_ms = p->expires_at_ms;
	r.nonce.data = nonce;
	r.nonce.len = sizeof(nonce);
	r.reason = p->reason ? (char *)p->reason : (char *)"";
	fl_buf_init(&packed, FL_ORDER_FILE_MAX);
	if ((rv = fl_wire_pack_message(&r.base, &packed, FL_ORDER_FILE_MAX, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "cannot pack the rollout order");
		goto out;
	}
	rv = wrap(FL_ORDER_ROLLOUT, &packed, out, hash_hex, errbuf);
out:
	if (rv != FL_OK)
		fl_buf_reset(out);
	fl_buf_fini(&packed);
	arena_free(&a);
	return rv;
}

enum fl_err fl_order_build_rollback(const struct fl_rollback_params *p, struct fl_buf *out,
                                    char hash_hex[FL_ORDER_HASH_HEX_LEN + 1], char *errbuf)
{
	RollbackOrder r = FLOTILLA__V1__ROLLBACK_ORDER__INIT;
	struct fl_buf packed = FL_BUF_INIT;
	struct arena a = {0};
	uint8_t nonce[FL_ORDER_NONCE_LEN];
	int64_t created = p->created_at_ms ? p->created_at_ms : wall_ms();
	const char *target = p->target_migration_id ? p->target_migration_id : "";
	char shown[SHOW_MAX];
	const char *why;
	enum fl_err rv;

	ensure_sodium();
	fl_buf_reset(out);
	if ((rv = check_params(p->project_id, p->release_hash, p->selector, created,
	                       p->expires_at_ms, p->reason, errbuf)) != FL_OK)
		return rv;
	if (p->rollout_order_hash == NULL)
		return fl_errf(errbuf, FL_EINVAL, "no rollout order hash given");
	if (target[0] && (why = fl_migration_id_problem(target, strlen(target))) != NULL)
		return fl_errf(errbuf, FL_EINVAL, "invalid target migration id '%s': %s",
		               fl_err_quote(shown, sizeof(shown), target, strlen(target)), why);
	randombytes_buf(nonce, sizeof(nonce));
	r.format_version = FL_ORDER_FORMAT_VERSION;
	r.project_id = (char *)p->project_id;
	r.rollout_order_hash.data = (uint8_t *)p->rollout_order_hash;
	r.rollout_order_hash.len = FL_ORDER_HASH_LEN;
	r.release_hash.data = (uint8_t *)p->release_hash;
	r.release_hash.len = FL_ORDER_HASH_LEN;
	r.target_migration_id = (char *)target;
	r.selector = to_selector(&a, p->selector);
	r.created_at_ms = created;
	r.expires_at_ms = p->expires_at_ms;
	r.nonce.data = nonce;
	r.nonce.len = sizeof(nonce);
	r.reason = p->reason ? (char *)p->reason : (char *)"";
	fl_buf_init(&packed, FL_ORDER_FILE_MAX);
	if ((rv = fl_wire_pack_message(&r.base, &packed, FL_ORDER_FILE_MAX, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "cannot pack the rollback order");
		goto out;
	}
	rv = wrap(FL_ORDER_ROLLBACK, &packed, out, hash_hex, errbuf);
out:
	if (rv != FL_OK)
		fl_buf_reset(out);
	fl_buf_fini(&packed);
	arena_free(&a);
	return rv;
}

enum fl_err fl_order_sign(const void *data, size_t len, enum fl_order_kind kind,
                          const struct fl_key *key, struct fl_buf *out, char *errbuf)
{
	uint8_t msg[64], sig[FL_KEY_SIGNATURE_BYTES];
	ReleaseSignature mine = FLOTILLA__V1__RELEASE_SIGNATURE__INIT, **sigs = NULL;
	SignedOrder *so = NULL, next = FLOTILLA__V1__SIGNED_ORDER__INIT;
	struct fl_order *o = NULL;
	size_t mlen, i;
	enum fl_err rv;

	fl_buf_reset(out);
	if (key->kind != FL_KEY_RELEASE || key->seed == NULL)
		return fl_errf(errbuf, FL_EINVAL, "not a release key: %s key%s",
		               fl_key_kind_name(key->kind), key->seed ? "" : " without its secret");
	if ((rv = decode(data, len, kind, NULL, 0, key->pk, &o, &so, errbuf)) != FL_OK)
		return rv;
	mlen = signing_message(kind, o->hash, msg);
	fl_key_sign(key, msg, mlen, sig);
	mine.public_key.data = (uint8_t *)key->pk;
	mine.public_key.len = FL_KEY_PUBLIC_BYTES;
	mine.signature.data = sig;
	mine.signature.len = sizeof(sig);
	sigs = fl_calloc(so->n_signatures + 1, sizeof(*sigs));
	for (i = 0; i < so->n_signatures; i++)
		sigs[i] = so->signatures[i];
	sigs[i] = &mine;
	next.order = so->order;
	next.signatures = sigs;
	next.n_signatures = so->n_signatures + 1;
	if ((rv = fl_wire_pack_message(&next.base, out, FL_ORDER_FILE_MAX, errbuf)) != FL_OK)
		fl_err_prefix(errbuf, "cannot pack the order");
	free(sigs);
	fl_wire_free_message(&so->base);
	fl_order_free(o);
	return rv;
}

/* ---- what an order covers ---- */

static bool wave_takes(const struct fl_wave *w, const char *tenant_id,
                       const struct fl_labels *labels)
{
	switch (w->select.kind) {
	case FL_SELECT_LABELS:
		return labels != NULL && fl_labels_match(labels, &w->select.labels);
	case FL_SELECT_TENANTS:
		return listed(w->select.tenants, w->select.n_tenants, tenant_id);
	case FL_SELECT_PERCENT:
		break;
	}
	return false;
}

enum fl_err fl_order_covers(const struct fl_order *o, const char *tenant_id,
                            const struct fl_labels *labels, char *errbuf)
{
	char shown[SHOW_MAX];

	if (fl_selector_matches(&o->selector, tenant_id, labels))
		return FL_OK;
	return fl_errf(errbuf, FL_EAUTH, "tenant '%s' is not selected by %s order %.16s",
	               fl_err_quote(shown, sizeof(shown), tenant_id ? tenant_id : "",
	                            tenant_id ? strlen(tenant_id) : 0),
	               kind_name(o->kind), o->hash_hex);
}

enum fl_err fl_order_wave_check(const struct fl_order *rollout, uint32_t wave,
                                const char *tenant_id, const struct fl_labels *labels, char *errbuf)
{
	const struct fl_policy *p = &rollout->policy;
	char shown[SHOW_MAX];
	const char *t = fl_err_quote(shown, sizeof(shown), tenant_id ? tenant_id : "",
	                             tenant_id ? strlen(tenant_id) : 0);

	if (rollout->kind != FL_ORDER_ROLLOUT)
		return fl_errf(errbuf, FL_EAUTH, "not a rollout order");
	if (wave >= p->n_waves)
		return fl_errf(errbuf, FL_EAUTH, "wave %u: the policy of order %.16s has %zu waves",
		               wave, rollout->hash_hex, p->n_waves);
	for (uint32_t i = 0; i < wave; i++)
		if (wave_takes(&p->waves[i], tenant_id, labels))
			return fl_errf(errbuf, FL_EAUTH,
			               "tenant '%s' belongs to wave %u ('%s'), not to wave %u", t,
			               i, p->waves[i].name, wave);
	if (p->waves[wave].select.kind != FL_SELECT_PERCENT &&
	    !wave_takes(&p->waves[wave], tenant_id, labels))
		return fl_errf(errbuf, FL_EAUTH, "tenant '%s' is not selected by wave %u ('%s')", t,
		               wave, p->waves[wave].name);
	return FL_OK;
}

enum fl_err fl_order_rollback_check(const struct fl_order *rollback, const struct fl_order *rollout,
                                    const char *tenant_id, const struct fl_labels *labels,
                                    char *errbuf)
{
	if (rollback->kind != FL_ORDER_ROLLBACK || rollout->kind != FL_ORDER_ROLLOUT)
		return fl_errf(errbuf, FL_EAUTH, "orders of the wrong kinds");
	if (memcmp(rollback->rollout_order_hash, rollout->hash, FL_ORDER_HASH_LEN) != 0)
		return fl_errf(errbuf, FL_EAUTH,
		               "rollback order %.16s undoes another rollout order",
		               rollback->hash_hex);
	if (memcmp(rollback->release_hash, rollout->release_hash, FL_ORDER_HASH_LEN) != 0 ||
	    strcmp(rollback->project_id, rollout->project_id) != 0)
		return fl_errf(errbuf, FL_EAUTH,
		               "rollback order %.16s names another release or project than order "
		               "%.16s",
		               rollback->hash_hex, rollout->hash_hex);
	return fl_order_covers(rollback, tenant_id, labels, errbuf);
}
