/*
 * Rollout policies (lib/policy.h, docs/POLICY.md).
 *
 * A file is read with the config loader into raw structs that mirror the
 * YAML (int64_t where the policy has uint32_t, `retry: {attempts, backoff}`,
 * `utc: "01:00-05:00"`), then moved into struct fl_policy. The rules live
 * once, over the final types (wave_rules, check_rules, window_rules,
 * policy_rules), and run twice: per list element while the file is read, so
 * an error names the line of the key at fault, and over the whole policy in
 * fl_policy_check, for policies that arrive decoded from a signed order.
 * Each list element's validate function builds a borrowed view of the final
 * struct for the rules to read; loading then moves the view's strings out of
 * the raw struct.
 */
#include "policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "mem.h"
#include "utf8.h"

/* Bounds, shared by the table (files) and the rules (every policy). */
#define MS_S 1000
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)

#define MAX_PARALLEL_MAX      100000
#define PER_AGENT_MAX         1024
#define MAX_FAILURES_MAX      1000000
#define BAKE_MAX              (24 * MS_H)
#define INTERVAL_MIN          MS_S
#define INTERVAL_MAX          MS_H
#define MAX_DURATION_MAX      (24 * MS_H)
#define CHECK_TIMEOUT_MIN     1
#define CHECK_TIMEOUT_MAX     (10 * MS_M)
#define LOCK_TIMEOUT_MIN      1
#define LOCK_TIMEOUT_MAX      MS_M
#define STATEMENT_TIMEOUT_MIN MS_S
#define STATEMENT_TIMEOUT_MAX (24 * MS_H)
#define ATTEMPTS_MAX          20
#define BACKOFF_MIN           10
#define BACKOFF_MAX           MS_M
#define UNREACHABLE_AFTER_MIN MS_M
#define UNREACHABLE_AFTER_MAX (24 * MS_H)
#define MINUTES_PER_DAY       1440

_Static_assert(BACKOFF_MAX <= FL_POLICY_RETRY_MAX_DELAY_MS, "a backoff fits the delay ceiling");

static const char *const gate_names[] = {"auto", "manual", NULL};
static const char *const on_failure_names[] = {"halt", "rollback-wave", "rollback-all", NULL};
static const char *const on_halt_names[] = {"cancel", "finish", NULL};
static const char *const unreachable_names[] = {"wait", "fail", NULL};
static const char *const select_kind_names[] = {"labels", "tenants", "percent", NULL};

#define NAME(arr, v) ((unsigned)(v) < sizeof(arr) / sizeof(arr[0]) - 1 ? arr[(unsigned)(v)] : "?")

const char *fl_gate_name(enum fl_gate g)
{
	return NAME(gate_names, g);
}

const char *fl_on_failure_name(enum fl_on_failure f)
{
	return NAME(on_failure_names, f);
}

const char *fl_on_halt_name(enum fl_on_halt h)
{
	return NAME(on_halt_names, h);
}

const char *fl_unreachable_name(enum fl_unreachable_action a)
{
	return NAME(unreachable_names, a);
}

const char *fl_select_kind_name(enum fl_select_kind k)
{
	return NAME(select_kind_names, k);
}

/* ---- the rules, over the final types ---- */

/* Each returns true, or false with why and *field, the field at fault
 * relative to what it checks ("select.percent"), NULL for the whole. */

static bool bad(char *why, const char **field, const char *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool bad(char *why, const char **field, const char *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, FL_ERRBUF_SIZE, fmt, ap);
	va_end(ap);
	*field = f;
	return false;
}

static bool in_range(int64_t v, int64_t lo, int64_t hi, char *why, const char **field,
                     const char *f, bool duration)
{
	char a[32], b[32], c[32];

	if (v >= lo && v <= hi)
		return true;
	if (!duration)
		return bad(why, field, f, "%lld is out of bounds (%lld to %lld)", (long long)v,
		           (long long)lo, (long long)hi);
	fl_duration_format(v < 0 ? 0 : v, a, sizeof(a));
	fl_duration_format(lo, b, sizeof(b));
	fl_duration_format(hi, c, sizeof(c));
	return bad(why, field, f, "%s%s is out of bounds (%s to %s)", v < 0 ? "-" : "",
	           v < 0 ? "" : a, b, c);
}

/* Policy, wave and check names: 1 to 64 of [A-Za-z0-9._-]. */
static bool name_ok(const char *name, char *why, const char **field, const char *f)
{
	size_t i, len = name ? strlen(name) : 0;
	char q[96];

	if (len == 0)
		return bad(why, field, f, "a name is required");
	if (len > FL_POLICY_NAME_MAX)
		return bad(why, field, f, "'%s' is longer than %d bytes",
		           fl_err_quote(q, sizeof(q), name, len), FL_POLICY_NAME_MAX);
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return bad(why, field, f,
			           "'%s' is not a name: use A-Z, a-z, 0-9, '.', '_', '-'",
			           fl_err_quote(q, sizeof(q), name, len));
	}
	return true;
}

/* A label set as the rules want it: valid, sorted, keys unique. */
static bool labels_ok(const struct fl_labels *l, char *why, const char **field, const char *f)
{
	char err[FL_ERRBUF_SIZE];
	struct fl_labels probe;
	size_t i;

	if (l->n > FL_LABELS_MAX)
		return bad(why, field, f, "too many labels (at most %d)", FL_LABELS_MAX);
	for (i = 0; i < l->n; i++) {
		bool ok;

		if (l->items[i].key == NULL || l->items[i].value == NULL)
			return bad(why, field, f, "a label without a key or value");
		fl_labels_init(&probe);
		ok = fl_labels_set(&probe, l->items[i].key, l->items[i].value, err) == FL_OK;
		fl_labels_fini(&probe);
		if (!ok)
			return bad(why, field, f, "%s", err);
		if (i > 0 && strcmp(l->items[i - 1].key, l->items[i].key) >= 0)
			return bad(why, field, f, "labels not sorted by key, or a key twice");
	}
	return true;
}

static bool tenant_ok(const char *id, char *why, const char **field)
{
	size_t i, len = id ? strlen(id) : 0;
	char q[96];

	if (len == 0)
		return bad(why, field, "select.tenants", "an empty tenant id");
	if (len > FL_POLICY_TENANT_ID_MAX || !fl_utf8_valid(id, len, NULL))
		return bad(why, field, "select.tenants", "'%s' is not a tenant id",
		           fl_err_quote(q, sizeof(q), id, len));
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c < 0x20 || c == 0x7f ||
		    (c == 0xc2 && i + 1 < len && (unsigned char)id[i + 1] < 0xa0))
			return bad(why, field, "select.tenants", "'%s' is not a tenant id",
			           fl_err_quote(q, sizeof(q), id, len));
	}
	return true;
}

static bool selector_ok(const struct fl_wave_selector *s, char *why, const char **field)
{
	size_t i;

	switch (s->kind) {
	case FL_SELECT_LABELS:
		if (s->labels.n == 0)
			return bad(why, field, "select.labels", "must not be empty");
		return labels_ok(&s->labels, why, field, "select.labels");
	case FL_SELECT_TENANTS:
		if (s->n_tenants == 0 || s->tenants == NULL)
			return bad(why, field, "select.tenants", "must not be empty");
		if (s->n_tenants > FL_POLICY_MAX_TENANTS)
			return bad(why, field, "select.tenants", "too many tenants (at most %d)",
			           FL_POLICY_MAX_TENANTS);
		for (i = 0; i < s->n_tenants; i++) {
			if (!tenant_ok(s->tenants[i], why, field))
				return false;
			if (i > 0 && strcmp(s->tenants[i - 1], s->tenants[i]) == 0)
				return bad(why, field, "select.tenants", "'%s' is listed twice",
				           s->tenants[i]);
			if (i > 0 && strcmp(s->tenants[i - 1], s->tenants[i]) > 0)
				return bad(why, field, "select.tenants", "tenants not sorted");
		}
		return true;
	case FL_SELECT_PERCENT:
		if (!(s->percent > 0 && s->percent <= 100))
			return bad(why, field, "select.percent", "must be above 0 and at most 100");
		return true;
	}
	return bad(why, field, "select", "unknown selector kind %d", (int)s->kind);
}

/* Wave i, against the waves before it. */
static bool wave_rules(const struct fl_wave *waves, size_t i, char *why, const char **field)
{
	const struct fl_wave *w = &waves[i];
	size_t j;

	if (!name_ok(w->name, why, field, "name") || !selector_ok(&w->select, why, field))
		return false;
	for (j = 0; j < i; j++) {
		const struct fl_wave *e = &waves[j];

		if (strcmp(e->name, w->name) == 0)
			return bad(why, field, "name", "'%s' is also the name of waves[%zu]",
			           w->name, j);
		if (e->select.kind == FL_SELECT_PERCENT && e->select.percent >= 100)
			return bad(why, field, NULL,
			           "wave '%s' comes after '%s', which takes every tenant left "
			           "(percent: 100)",
			           w->name, e->name);
		if (w->select.kind == FL_SELECT_PERCENT && e->select.kind == FL_SELECT_PERCENT &&
		    w->select.percent < e->select.percent) {
			char a[32], b[32];

			snprintf(a, sizeof(a), "%g", w->select.percent);
			snprintf(b, sizeof(b), "%g", e->select.percent);
			return bad(why, field, "select.percent",
			           "%s is below %s, the percent of wave '%s' (percents are "
			           "cumulative)",
			           a, b, e->name);
		}
	}
	if (!in_range(w->max_parallel, 1, MAX_PARALLEL_MAX, why, field, "max_parallel", false) ||
	    !in_range(w->per_agent_parallel, 0, PER_AGENT_MAX, why, field, "per_agent_parallel",
	              false) ||
	    (w->max_failures != -1 &&
	     !in_range(w->max_failures, 0, MAX_FAILURES_MAX, why, field, "max_failures", false)) ||
	    !in_range(w->bake_ms, 0, BAKE_MAX, why, field, "bake", true))
		return false;
	if (isnan(w->max_failure_rate) || w->max_failure_rate > 1)
		return bad(why, field, "max_failure_rate", "must be from 0 to 1 (or unset)");
	if (w->gate != FL_GATE_AUTO && w->gate != FL_GATE_MANUAL)
		return bad(why, field, "gate", "unknown gate %d", (int)w->gate);
	return true;
}

static bool check_rules(const struct fl_health_check *checks, size_t i, char *why,
                        const char **field)
{
	const struct fl_health_check *c = &checks[i];
	size_t j, len = c->sql ? strlen(c->sql) : 0;

	if (!name_ok(c->name, why, field, "name"))
		return false;
	for (j = 0; j < i; j++)
		if (strcmp(checks[j].name, c->name) == 0)
			return bad(why, field, "name",
			           "'%s' is also the name of health.checks[%zu]", c->name, j);
	if (len == 0)
		return bad(why, field, "sql", "must not be empty");
	if (len > FL_POLICY_CHECK_SQL_MAX)
		return bad(why, field, "sql", "longer than %d bytes", FL_POLICY_CHECK_SQL_MAX);
	if (!fl_utf8_valid(c->sql, len, NULL))
		return bad(why, field, "sql", "not UTF-8");
	return in_range(c->timeout_ms, CHECK_TIMEOUT_MIN, CHECK_TIMEOUT_MAX, why, field, "timeout",
	                true);
}

static bool window_rules(const struct fl_window *w, char *why, const char **field)
{
	if (!labels_ok(&w->labels, why, field, "select.labels"))
		return false;
	if (w->start_minute < 0 || w->start_minute >= MINUTES_PER_DAY || w->end_minute < 0 ||
	    w->end_minute >= MINUTES_PER_DAY)
		return bad(why, field, "utc", "minutes out of bounds (0 to 1439)");
	if (w->start_minute == w->end_minute)
		return bad(why, field, "utc",
		           "empty: it starts where it ends (for all day, leave the window out)");
	return true;
}

/* Everything but the list elements, which the callers check one by one. */
static bool top_rules(const struct fl_policy *p, char *why, const char **field)
{
	const struct fl_retry_policy *r = &p->retry;

	if (!name_ok(p->name, why, field, "name"))
		return false;
	if (p->n_waves == 0 || p->waves == NULL)
		return bad(why, field, "waves", "at least one wave is required");
	if (p->n_waves > FL_POLICY_MAX_WAVES)
		return bad(why, field, "waves", "too many waves (at most %d)", FL_POLICY_MAX_WAVES);
	if (p->n_checks > FL_POLICY_MAX_CHECKS || (p->n_checks > 0 && p->checks == NULL))
		return bad(why, field, "health.checks", "too many checks (at most %d)",
		           FL_POLICY_MAX_CHECKS);
	if (p->n_windows > FL_POLICY_MAX_WINDOWS || (p->n_windows > 0 && p->windows == NULL))
		return bad(why, field, "windows", "too many windows (at most %d)",
		           FL_POLICY_MAX_WINDOWS);
	if (p->lock_timeout_ms == 0)
		return bad(why, field, "lock_timeout",
		           "must not be 0: without a lock timeout, a migration waiting for a lock "
		           "blocks every query queued behind it");
	if (!in_range(p->per_agent_parallel, 1, PER_AGENT_MAX, why, field, "per_agent_parallel",
	              false) ||
	    !in_range(p->health_interval_ms, INTERVAL_MIN, INTERVAL_MAX, why, field,
	              "health.interval", true) ||
	    !in_range(p->max_duration_ms, 0, MAX_DURATION_MAX, why, field, "health.max_duration",
	              true) ||
	    !in_range(p->lock_timeout_ms, LOCK_TIMEOUT_MIN, LOCK_TIMEOUT_MAX, why, field,
	              "lock_timeout", true) ||
	    (p->statement_timeout_ms != -1 &&
	     !in_range(p->statement_timeout_ms, STATEMENT_TIMEOUT_MIN, STATEMENT_TIMEOUT_MAX, why,
	               field, "statement_timeout", true)) ||
	    !in_range(r->attempts, 1, ATTEMPTS_MAX, why, field, "retry.attempts", false) ||
	    !in_range(r->base_delay_ms, BACKOFF_MIN, BACKOFF_MAX, why, field, "retry.backoff",
	              true) ||
	    !in_range(r->max_delay_ms, r->base_delay_ms, FL_POLICY_RETRY_MAX_DELAY_MS, why, field,
	              "retry", true) ||
	    !in_range(r->budget_ms, 0, FL_POLICY_RETRY_BUDGET_MS, why, field, "retry", true))
		return false;
	if ((unsigned)p->on_failure > FL_ON_FAILURE_ROLLBACK_ALL)
		return bad(why, field, "on_failure", "unknown value %d", (int)p->on_failure);
	if ((unsigned)p->on_halt > FL_ON_HALT_FINISH)
		return bad(why, field, "on_halt", "unknown value %d", (int)p->on_halt);
	if ((unsigned)p->unreachable > FL_UNREACHABLE_FAIL)
		return bad(why, field, "unreachable.action", "unknown value %d",
		           (int)p->unreachable);
	return in_range(p->unreachable_after_ms, UNREACHABLE_AFTER_MIN, UNREACHABLE_AFTER_MAX, why,
	                field, "unreachable.after", true);
}

/* All rules; path gets the field at fault ("waves[2].select.percent"). */
static bool policy_rules(const struct fl_policy *p, char *why, char *path, size_t pathlen)
{
	const char *field = NULL, *list = NULL;
	size_t i = 0;
	bool ok = top_rules(p, why, &field);

	for (i = 0; ok && i < p->n_waves; i++)
		if (!(ok = wave_rules(p->waves, i, why, &field)))
			list = "waves";
	for (i = ok ? 0 : i; ok && i < p->n_checks; i++)
		if (!(ok = check_rules(p->checks, i, why, &field)))
			list = "health.checks";
	for (i = ok ? 0 : i; ok && i < p->n_windows; i++)
		if (!(ok = window_rules(&p->windows[i], why, &field)))
			list = "windows";
	if (ok)
		return true;
	if (list == NULL)
		snprintf(path, pathlen, "%s", field ? field : "");
	else
		snprintf(path, pathlen, "%s[%zu]%s%s", list, i - 1, field ? "." : "",
		         field ? field : "");
	return false;
}

enum fl_err fl_policy_check(const struct fl_policy *p, char *errbuf)
{
	char why[FL_ERRBUF_SIZE], path[256];

	if (policy_rules(p, why, path, sizeof(path)))
		return FL_OK;
	if (path[0] == '\0')
		return fl_errf(errbuf, FL_EPARSE, "%s", why);
	return fl_errf(errbuf, FL_EPARSE, "'%s': %s", path, why);
}

/* ---- budget and windows ---- */

bool fl_wave_budget_exceeded(const struct fl_wave *w, uint32_t failed, uint32_t total)
{
	bool count = w->max_failures >= 0, rate = w->max_failure_rate >= 0;

	if (!count && !rate)
		return failed > 0;
	if (count && (int64_t)failed > w->max_failures)
		return true;
	/* Both sides are the double nearest their exact value; rates have at most
	 * 6 decimals in files, so two different fractions never round together. */
	return rate && total > 0 && (double)failed / (double)total > w->max_failure_rate;
}

bool fl_window_open(const struct fl_window *w, int m)
{
	if (m < 0 || m >= MINUTES_PER_DAY)
		return false;
	if (w->start_minute < w->end_minute)
		return m >= w->start_minute && m < w->end_minute;
	if (w->start_minute > w->end_minute) /* spans midnight */
		return m >= w->start_minute || m < w->end_minute;
	return false;
}

bool fl_policy_may_start(const struct fl_policy *p, const struct fl_labels *tenant, int m)
{
	bool selected = false;
	size_t i;

	for (i = 0; i < p->n_windows; i++) {
		if (!fl_labels_match(tenant, &p->windows[i].labels))
			continue;
		if (fl_window_open(&p->windows[i], m))
			return true;
		selected = true;
	}
	return !selected;
}

int fl_policy_next_start(const struct fl_policy *p, const struct fl_labels *tenant, int m)
{
	int best = 0;
	size_t i;

	if (m < 0 || m >= MINUTES_PER_DAY)
		m = ((m % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY;
	for (i = 0; i < p->n_windows; i++) {
		const struct fl_window *w = &p->windows[i];
		int wait;

		if (!fl_labels_match(tenant, &w->labels))
			continue;
		if (fl_window_open(w, m))
			return 0;
		wait = (w->start_minute - m + MINUTES_PER_DAY) % MINUTES_PER_DAY;
		if (wait > 0 && (best == 0 || wait < best))
			best = wait;
	}
	return best;
}

#define MS_MIN (60 * MS_S)
#define MS_DAY ((int64_t)MINUTES_PER_DAY * MS_MIN)

/* Minute of the day (UTC) that instant t (ms since the epoch) falls in. */
static int minute_of(int64_t t)
{
	int64_t m = t / MS_MIN;

	if (t < 0 && t % MS_MIN != 0)
		m--;
	return (int)(((m % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY);
}

int64_t fl_policy_window_finish_ms(const struct fl_policy *p, const struct fl_labels *tenant,
                                   int64_t start_ms, int64_t work_ms)
{
	int64_t t = start_ms, per_day;
	int open = 0;

	if (work_ms <= 0)
		return start_ms;
	for (int m = 0; m < MINUTES_PER_DAY; m++)
		open += fl_policy_may_start(p, tenant, m);
	if (open == MINUTES_PER_DAY || open == 0) /* no window, or none that opens: not held */
		return start_ms + work_ms;
	per_day = (int64_t)open * MS_MIN;
	for (;;) {
		int64_t minute_end = t - (((t % MS_MIN) + MS_MIN) % MS_MIN) + MS_MIN, step;

		if (fl_policy_may_start(p, tenant, minute_of(t))) {
			step = minute_end - t < work_ms ? minute_end - t : work_ms;
			work_ms -= step;
			t += step;
			if (work_ms == 0)
				return t;
		} else {
			t = minute_end;
		}
		/* at a minute's start, each whole day ahead holds per_day of open time */
		if (work_ms > per_day) {
			int64_t days = (work_ms - 1) / per_day;

			t += days * MS_DAY;
			work_ms -= days * per_day;
		}
	}
}

int64_t fl_wave_finish_ms(const struct fl_policy *p, uint32_t max_parallel,
                          const struct fl_labels *const *tenants, size_t n, int64_t start_ms,
                          int64_t apply_ms)
{
	int64_t end = start_ms;
	bool *done;
	size_t i, j;

	if (n == 0 || apply_ms <= 0)
		return start_ms;
	if (max_parallel == 0)
		max_parallel = 1;
	done = fl_calloc(n, sizeof(*done));
	for (i = 0; i < n; i++) {
		size_t count = 0, par;
		int64_t work, fin;

		if (done[i])
			continue;
		/* the group of tenants the same windows select */
		for (j = i; j < n; j++) {
			size_t k;
			bool same = true;

			if (done[j])
				continue;
			for (k = 0; same && k < p->n_windows; k++)
				same = fl_labels_match(tenants[i], &p->windows[k].labels) ==
				       fl_labels_match(tenants[j], &p->windows[k].labels);
			if (same) {
				done[j] = true;
				count++;
			}
		}
		par = count < max_parallel ? count : max_parallel;
		work = (int64_t)((count + par - 1) / par) * apply_ms;
		fin = fl_policy_window_finish_ms(p, tenants[i], start_ms, work);
		if (fin > end)
			end = fin;
	}
	free(done);
	return end;
}

/* ---- init, fini, copy ---- */

void fl_policy_init(struct fl_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->per_agent_parallel = 4;
	p->health_interval_ms = 30 * MS_S;
	p->max_duration_ms = 0;
	p->lock_timeout_ms = 500;
	p->statement_timeout_ms = -1;
	p->retry.attempts = 5;
	p->retry.base_delay_ms = 2 * MS_S;
	p->retry.max_delay_ms = FL_POLICY_RETRY_MAX_DELAY_MS;
	p->retry.budget_ms = FL_POLICY_RETRY_BUDGET_MS;
	p->on_failure = FL_ON_FAILURE_HALT;
	p->on_halt = FL_ON_HALT_CANCEL;
	p->unreachable = FL_UNREACHABLE_WAIT;
	p->unreachable_after_ms = 10 * MS_M;
}

static void wave_fini(struct fl_wave *w)
{
	size_t i;

	free(w->name);
	fl_labels_fini(&w->select.labels);
	for (i = 0; i < w->select.n_tenants; i++)
		free(w->select.tenants[i]);
	free(w->select.tenants);
}

void fl_policy_fini(struct fl_policy *p)
{
	size_t i;

	free(p->name);
	for (i = 0; i < p->n_waves; i++)
		wave_fini(&p->waves[i]);
	free(p->waves);
	for (i = 0; i < p->n_checks; i++) {
		free(p->checks[i].name);
		free(p->checks[i].sql);
	}
	free(p->checks);
	for (i = 0; i < p->n_windows; i++)
		fl_labels_fini(&p->windows[i].labels);
	free(p->windows);
	fl_policy_init(p);
}

static char *dup_or_null(const char *s)
{
	return s ? fl_strdup(s) : NULL;
}

void fl_policy_copy(struct fl_policy *dst, const struct fl_policy *src)
{
	size_t i, j;

	*dst = *src;
	dst->name = dup_or_null(src->name);
	dst->waves = src->n_waves ? fl_calloc(src->n_waves, sizeof(*dst->waves)) : NULL;
	for (i = 0; i < src->n_waves; i++) {
		const struct fl_wave_selector *s = &src->waves[i].select;
		struct fl_wave_selector *d = &dst->waves[i].select;

		dst->waves[i] = src->waves[i];
		dst->waves[i].name = dup_or_null(src->waves[i].name);
		fl_labels_copy(&d->labels, &s->labels);
		d->tenants = s->n_tenants ? fl_calloc(s->n_tenants, sizeof(char *)) : NULL;
		for (j = 0; j < s->n_tenants; j++)
			d->tenants[j] = dup_or_null(s->tenants[j]);
	}
	dst->checks = src->n_checks ? fl_calloc(src->n_checks, sizeof(*dst->checks)) : NULL;
	for (i = 0; i < src->n_checks; i++) {
		dst->checks[i] = src->checks[i];
		dst->checks[i].name = dup_or_null(src->checks[i].name);
		dst->checks[i].sql = dup_or_null(src->checks[i].sql);
	}
	dst->windows = src->n_windows ? fl_calloc(src->n_windows, sizeof(*dst->windows)) : NULL;
	for (i = 0; i < src->n_windows; i++) {
		dst->windows[i] = src->windows[i];
		fl_labels_copy(&dst->windows[i].labels, &src->windows[i].labels);
	}
}

/* ---- the file: raw structs, as the YAML is written ---- */

struct raw_selector {
	struct fl_labels labels;
	struct fl_config_strings tenants;
	double percent;
};

struct raw_wave {
	char *name;
	struct raw_selector select;
	int64_t max_parallel, per_agent_parallel, max_failures;
	double max_failure_rate;
	int64_t bake_ms;
	bool backup;
	int gate;
	struct fl_wave view; /* built by raw_wave_ok, borrowing the strings above */
};

struct raw_check {
	char *name;
	char *sql;
	int64_t timeout_ms;
	struct fl_health_check view;
};

struct raw_window {
	struct fl_labels labels;
	char *utc;
	struct fl_window view;
};

struct raw_policy {
	char *name;
	struct fl_config_list waves;
	int64_t per_agent_parallel;
	int64_t health_interval_ms, max_duration_ms;
	struct fl_config_list checks;
	int64_t lock_timeout_ms, statement_timeout_ms;
	int64_t retry_attempts, retry_backoff_ms;
	int on_failure, on_halt, unreachable;
	int64_t unreachable_after_ms;
	struct fl_config_list windows;
};

static bool raw_selector_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	int n = fl_config_isset(scope, "labels") + fl_config_isset(scope, "tenants") +
	        fl_config_isset(scope, "percent");

	if (n == 1)
		return true;
	*key = n == 0 ? NULL : fl_config_isset(scope, "percent") ? "percent" : "tenants";
	snprintf(why, FL_ERRBUF_SIZE, "give exactly one of labels, tenants or percent");
	return false;
}

static int strcmp_p(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool raw_wave_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	struct raw_wave *r = scope->self;
	const struct raw_wave *all = scope->items;
	struct fl_wave *w = &r->view;
	struct fl_wave *views;
	const char *field = NULL;
	size_t i;
	bool ok;

	memset(w, 0, sizeof(*w));
	w->name = r->name;
	if (fl_config_isset(scope, "select.labels")) {
		w->select.kind = FL_SELECT_LABELS;
		w->select.labels = r->select.labels;
	} else if (fl_config_isset(scope, "select.tenants")) {
		w->select.kind = FL_SELECT_TENANTS;
		qsort(r->select.tenants.items, r->select.tenants.n, sizeof(char *), strcmp_p);
		w->select.tenants = r->select.tenants.items;
		w->select.n_tenants = r->select.tenants.n;
	} else {
		w->select.kind = FL_SELECT_PERCENT;
		w->select.percent = r->select.percent;
	}
	w->max_parallel = (uint32_t)r->max_parallel;
	w->per_agent_parallel = (uint32_t)r->per_agent_parallel;
	w->max_failures = fl_config_isset(scope, "max_failures") ? r->max_failures : -1;
	w->max_failure_rate = fl_config_isset(scope, "max_failure_rate") ? r->max_failure_rate : -1;
	w->bake_ms = r->bake_ms;
	w->backup = r->backup;
	w->gate = (enum fl_gate)r->gate;
	/* the rules read the waves before this one as an array of views */
	views = fl_calloc(scope->index + 1, sizeof(*views));
	for (i = 0; i < scope->index; i++)
		views[i] = all[i].view;
	views[scope->index] = *w;
	ok = wave_rules(views, scope->index, why, &field);
	free(views);
	*key = field;
	return ok;
}

static bool raw_check_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	struct raw_check *r = scope->self;
	const struct raw_check *all = scope->items;
	struct fl_health_check *views;
	const char *field = NULL;
	size_t i;
	bool ok;

	r->view.name = r->name;
	r->view.sql = r->sql;
	r->view.timeout_ms = r->timeout_ms;
	views = fl_calloc(scope->index + 1, sizeof(*views));
	for (i = 0; i <= scope->index; i++)
		views[i] = all[i].view;
	ok = check_rules(views, scope->index, why, &field);
	free(views);
	*key = field;
	return ok;
}

/* "HH:MM" at s (5 bytes); end allows "24:00", the end of the day. */
static bool parse_hhmm(const char *s, bool end, int *minute)
{
	int h, m;

	if (!(s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] == ':' &&
	      s[3] >= '0' && s[3] <= '5' && s[4] >= '0' && s[4] <= '9'))
		return false;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 24 || (h == 24 && (!end || m != 0)))
		return false;
	*minute = (h * 60 + m) % MINUTES_PER_DAY;
	return true;
}

static bool raw_window_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	struct raw_window *r = scope->self;
	const char *field = NULL;
	char q[96];

	r->view.labels = r->labels;
	if (strlen(r->utc) != 11 || r->utc[5] != '-' ||
	    !parse_hhmm(r->utc, false, &r->view.start_minute) ||
	    !parse_hhmm(r->utc + 6, true, &r->view.end_minute)) {
		*key = "utc";
		snprintf(why, FL_ERRBUF_SIZE,
		         "'%s' is not a window: expected HH:MM-HH:MM in UTC, such as 01:00-05:00",
		         fl_err_quote(q, sizeof(q), r->utc, strlen(r->utc)));
		return false;
	}
	if (window_rules(&r->view, why, &field))
		return true;
	*key = field;
	return false;
}

static bool raw_policy_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	struct raw_policy *r = scope->self;

	if (fl_config_isset(scope, "unreachable.after") && r->unreachable != FL_UNREACHABLE_FAIL) {
		*key = "unreachable.after";
		snprintf(why, FL_ERRBUF_SIZE,
		         "only with action: fail (with wait, agents are waited for however long)");
		return false;
	}
	if (!fl_config_isset(scope, "statement_timeout"))
		r->statement_timeout_ms = -1;
	return true;
}

/* clang-format off */
static const struct fl_config_key selector_table[] = {
    {.name = "labels", .type = FL_CONFIG_LABELS, .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct raw_selector, labels),
     .help = "tenants carrying every one of these labels"},
    {.name = "tenants", .type = FL_CONFIG_STRING_LIST, .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct raw_selector, tenants), .max = FL_POLICY_MAX_TENANTS,
     .help = "these tenant ids"},
    {.name = "percent", .type = FL_CONFIG_FLOAT,
     .offset = offsetof(struct raw_selector, percent), .fmin = 0, .fmax = 100,
     .help = "this percent of the rollout's selection, cumulative, above 0"},
    {.type = FL_CONFIG_END, .validate = raw_selector_ok},
};

static const struct fl_config_key wave_table[] = {
    {.name = "name", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_REQUIRED,
     .offset = offsetof(struct raw_wave, name), .max = FL_POLICY_NAME_MAX,
     .help = "the wave's name, unique in the policy"},
    {.name = "select", .type = FL_CONFIG_INCLUDE,
     .offset = offsetof(struct raw_wave, select), .include = selector_table},
    {.name = "max_parallel", .type = FL_CONFIG_INT,
     .offset = offsetof(struct raw_wave, max_parallel), .def = "10", .min = 1,
     .max = MAX_PARALLEL_MAX, .help = "tenants migrating at once, fleet-wide"},
    {.name = "per_agent_parallel", .type = FL_CONFIG_INT,
     .offset = offsetof(struct raw_wave, per_agent_parallel), .def = "0", .min = 0,
     .max = PER_AGENT_MAX, .help = "tenants at once per agent; 0: the policy's"},
    {.name = "max_failures", .type = FL_CONFIG_INT,
     .offset = offsetof(struct raw_wave, max_failures), .min = 0, .max = MAX_FAILURES_MAX,
     .help = "failed tenants the wave tolerates"},
    {.name = "max_failure_rate", .type = FL_CONFIG_FLOAT,
     .offset = offsetof(struct raw_wave, max_failure_rate), .fmin = 0, .fmax = 1,
     .help = "failed share of the wave's tenants it tolerates"},
    {.name = "bake", .type = FL_CONFIG_DURATION, .offset = offsetof(struct raw_wave, bake_ms),
     .def = "0", .min = 0, .max = BAKE_MAX,
     .help = "soak time after the wave, health checks repeating"},
    {.name = "backup", .type = FL_CONFIG_BOOL, .offset = offsetof(struct raw_wave, backup),
     .def = "false", .help = "agents back each tenant up before touching it"},
    {.name = "gate", .type = FL_CONFIG_ENUM, .offset = offsetof(struct raw_wave, gate),
     .def = "auto", .choices = gate_names,
     .help = "manual: wait for `flotilla rollout promote` before the next wave"},
    {.type = FL_CONFIG_END, .validate = raw_wave_ok},
};

static const struct fl_config_key check_table[] = {
    {.name = "name", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_REQUIRED,
     .offset = offsetof(struct raw_check, name), .max = FL_POLICY_NAME_MAX,
     .help = "the check's name, unique in the policy"},
    {.name = "sql", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct raw_check, sql), .max = FL_POLICY_CHECK_SQL_MAX,
     .help = "one read-only statement that must return one row holding true"},
    {.name = "timeout", .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct raw_check, timeout_ms), .def = "5s", .min = CHECK_TIMEOUT_MIN,
     .max = CHECK_TIMEOUT_MAX, .help = "the check's statement timeout"},
    {.type = FL_CONFIG_END, .validate = raw_check_ok},
};

static const struct fl_config_key window_table[] = {
    {.name = "select.labels", .type = FL_CONFIG_LABELS,
     .offset = offsetof(struct raw_window, labels),
     .help = "tenants the window is for; all when left out"},
    {.name = "utc", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_REQUIRED,
     .offset = offsetof(struct raw_window, utc),
     .help = "HH:MM-HH:MM in UTC; may span midnight (22:00-02:00)"},
    {.type = FL_CONFIG_END, .validate = raw_window_ok},
};

const struct fl_config_key fl_policy_config_table[] = {
    {.name = "name", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_REQUIRED,
     .offset = offsetof(struct raw_policy, name), .max = FL_POLICY_NAME_MAX,
     .help = "the policy's name"},
    {.name = "waves", .type = FL_CONFIG_TABLE_LIST,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct raw_policy, waves), .include = wave_table,
     .elem_size = sizeof(struct raw_wave), .max = FL_POLICY_MAX_WAVES,
     .help = "the waves, in order"},
    {.name = "per_agent_parallel", .type = FL_CONFIG_INT,
     .offset = offsetof(struct raw_policy, per_agent_parallel), .def = "4", .min = 1,
     .max = PER_AGENT_MAX, .help = "tenants at once per agent, in every wave"},
    {.name = "health.interval", .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct raw_policy, health_interval_ms), .def = "30s",
     .min = INTERVAL_MIN, .max = INTERVAL_MAX, .help = "how often checks repeat while baking"},
    {.name = "health.max_duration", .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct raw_policy, max_duration_ms), .def = "0", .min = 0,
     .max = MAX_DURATION_MAX, .help = "longest one tenant's apply may take; 0: no limit"},
    {.name = "health.checks", .type = FL_CONFIG_TABLE_LIST,
     .offset = offsetof(struct raw_policy, checks), .include = check_table,
     .elem_size = sizeof(struct raw_check), .max = FL_POLICY_MAX_CHECKS,
     .help = "SQL health checks, run after apply and while baking"},
    {.name = "lock_timeout", .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct raw_policy, lock_timeout_ms), .def = "500ms",
     .min = LOCK_TIMEOUT_MIN, .max = LOCK_TIMEOUT_MAX,
     .help = "longest wait for a lock, per statement; then retried"},
    {.name = "statement_timeout", .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct raw_policy, statement_timeout_ms),
     .min = STATEMENT_TIMEOUT_MIN, .max = STATEMENT_TIMEOUT_MAX,
     .help = "longest one migration statement may run; unset: the server's"},
    {.name = "retry.attempts", .type = FL_CONFIG_INT,
     .offset = offsetof(struct raw_policy, retry_attempts), .def = "5", .min = 1,
     .max = ATTEMPTS_MAX, .help = "tries per migration after a lock timeout or lost connection"},
    {.name = "retry.backoff", .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct raw_policy, retry_backoff_ms), .def = "2s", .min = BACKOFF_MIN,
     .max = BACKOFF_MAX, .help = "first wait between tries; doubles each time"},
    {.name = "on_failure", .type = FL_CONFIG_ENUM,
     .offset = offsetof(struct raw_policy, on_failure), .def = "halt",
     .choices = on_failure_names, .help = "what a tripped failure budget does"},
    {.name = "on_halt", .type = FL_CONFIG_ENUM, .offset = offsetof(struct raw_policy, on_halt),
     .def = "cancel", .choices = on_halt_names,
     .help = "what a halt does to migrations already running"},
    {.name = "unreachable.action", .type = FL_CONFIG_ENUM,
     .offset = offsetof(struct raw_policy, unreachable), .def = "wait",
     .choices = unreachable_names, .help = "what to do about tenants of an agent gone silent"},
    {.name = "unreachable.after", .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct raw_policy, unreachable_after_ms), .def = "10m",
     .min = UNREACHABLE_AFTER_MIN, .max = UNREACHABLE_AFTER_MAX,
     .help = "with action: fail, how long until they count as failed"},
    {.name = "windows", .type = FL_CONFIG_TABLE_LIST,
     .offset = offsetof(struct raw_policy, windows), .include = window_table,
     .elem_size = sizeof(struct raw_window), .max = FL_POLICY_MAX_WINDOWS,
     .help = "when tenants may start, by label"},
    {.type = FL_CONFIG_END, .validate = raw_policy_ok},
};
/* clang-format on */

/* Move what the raw policy holds into p (initialised), leaving raw with
 * only what fl_config_fini still frees. */
static void take(struct raw_policy *r, struct fl_policy *p)
{
	struct raw_wave *waves = r->waves.items;
	struct raw_check *checks = r->checks.items;
	struct raw_window *windows = r->windows.items;
	size_t i;

	p->name = r->name;
	r->name = NULL;
	p->n_waves = r->waves.n;
	p->waves = p->n_waves ? fl_calloc(p->n_waves, sizeof(*p->waves)) : NULL;
	for (i = 0; i < r->waves.n; i++) {
		p->waves[i] = waves[i].view; /* borrowed the strings below: now owns them */
		waves[i].name = NULL;
		fl_labels_init(&waves[i].select.labels);
		waves[i].select.tenants.items = NULL;
		waves[i].select.tenants.n = 0;
	}
	p->per_agent_parallel = (uint32_t)r->per_agent_parallel;
	p->health_interval_ms = r->health_interval_ms;
	p->max_duration_ms = r->max_duration_ms;
	p->n_checks = r->checks.n;
	p->checks = p->n_checks ? fl_calloc(p->n_checks, sizeof(*p->checks)) : NULL;
	for (i = 0; i < r->checks.n; i++) {
		p->checks[i] = checks[i].view;
		checks[i].name = NULL;
		checks[i].sql = NULL;
	}
	p->lock_timeout_ms = r->lock_timeout_ms;
	p->statement_timeout_ms = r->statement_timeout_ms;
	p->retry.attempts = (int)r->retry_attempts;
	p->retry.base_delay_ms = r->retry_backoff_ms;
	p->retry.max_delay_ms = FL_POLICY_RETRY_MAX_DELAY_MS;
	p->retry.budget_ms = FL_POLICY_RETRY_BUDGET_MS;
	p->on_failure = (enum fl_on_failure)r->on_failure;
	p->on_halt = (enum fl_on_halt)r->on_halt;
	p->unreachable = (enum fl_unreachable_action)r->unreachable;
	p->unreachable_after_ms = r->unreachable_after_ms;
	p->n_windows = r->windows.n;
	p->windows = p->n_windows ? fl_calloc(p->n_windows, sizeof(*p->windows)) : NULL;
	for (i = 0; i < r->windows.n; i++) {
		p->windows[i] = windows[i].view;
		fl_labels_init(&windows[i].labels);
	}
}

/* After the loader: move into p and check the whole (a bug if it fails: the
 * loader ran the same rules, with lines). */
static enum fl_err finish(struct raw_policy *raw, const char *name, struct fl_policy *p,
                          char *errbuf)
{
	char why[FL_ERRBUF_SIZE], path[256];

	take(raw, p);
	fl_config_fini(fl_policy_config_table, raw);
	if (policy_rules(p, why, path, sizeof(path)))
		return FL_OK;
	fl_policy_fini(p);
	if (path[0] == '\0')
		return fl_errf(errbuf, FL_EPARSE, "'%s': %s", name, why);
	return fl_errf(errbuf, FL_EPARSE, "'%s': '%s': %s", name, path, why);
}

enum fl_err fl_policy_load_buffer(const char *text, size_t len, const char *name,
                                  struct fl_policy *p, char *errbuf)
{
	struct raw_policy raw;
	enum fl_err rv;

	fl_policy_init(p);
	if (name == NULL)
		name = "(policy)";
	rv = fl_config_load_buffer(text, len, name, fl_policy_config_table, &raw, errbuf);
	if (rv != FL_OK)
		return rv;
	return finish(&raw, name, p, errbuf);
}

enum fl_err fl_policy_load_file(const char *path, struct fl_policy *p, char *errbuf)
{
	struct raw_policy raw;
	enum fl_err rv;

	fl_policy_init(p);
	rv = fl_config_load_file(path, fl_policy_config_table, &raw, errbuf);
	if (rv != FL_OK)
		return rv;
	return finish(&raw, path, p, errbuf);
}
