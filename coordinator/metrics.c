/* Counters and histograms for /metrics (metrics.h). */
#include "metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "mem.h"

#define MAX_BUCKETS 16

struct histogram {
	const char *name, *help;
	const double *le; /* upper bounds in seconds, ascending */
	size_t n;
	atomic_uint_least64_t count[MAX_BUCKETS + 1]; /* per bucket, the last is +Inf */
	atomic_uint_least64_t sum_us;
};

static const double migration_le[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
static const double health_le[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30};
static const double commit_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,   0.25,   0.5,   1,    5};

#define HTTP_CLASSES 6 /* 1xx..5xx and other */

struct fl_metrics {
	struct histogram migration, health, commit;
	atomic_uint_least64_t refused[2][FL_METRICS_WRONG_ROLE + 1];
	atomic_uint_least64_t http[HTTP_CLASSES];
};

static void hist_init(struct histogram *h, const char *name, const char *help, const double *le,
                      size_t n)
{
	h->name = name;
	h->help = help;
	h->le = le;
	h->n = n;
	for (size_t i = 0; i <= MAX_BUCKETS; i++)
		atomic_init(&h->count[i], 0);
	atomic_init(&h->sum_us, 0);
}

static void observe(struct histogram *h, int64_t us)
{
	size_t i = 0;

	if (us < 0)
		us = 0;
	while (i < h->n && (double)us > h->le[i] * 1e6)
		i++;
	atomic_fetch_add(&h->count[i], 1);
	atomic_fetch_add(&h->sum_us, (uint64_t)us);
}

struct fl_metrics *fl_metrics_new(void)
{
	struct fl_metrics *m = fl_calloc(1, sizeof(*m));

	hist_init(&m->migration, "flotilla_migration_duration_seconds",
	          "Time one migration took on a tenant, from agents' reports.", migration_le,
	          sizeof(migration_le) / sizeof(migration_le[0]));
	hist_init(&m->health, "flotilla_health_check_duration_seconds",
	          "Time one health check took on a tenant, from agents' reports.", health_le,
	          sizeof(health_le) / sizeof(health_le[0]));
	hist_init(&m->commit, "flotilla_store_commit_duration_seconds",
	          "Time a store transaction's commit took (the coordinator's store latency).",
	          commit_le, sizeof(commit_le) / sizeof(commit_le[0]));
	for (size_t e = 0; e < 2; e++)
		for (size_t r = 0; r <= FL_METRICS_WRONG_ROLE; r++)
			atomic_init(&m->refused[e][r], 0);
	for (size_t i = 0; i < HTTP_CLASSES; i++)
		atomic_init(&m->http[i], 0);
	return m;
}

void fl_metrics_free(struct fl_metrics *m)
{
	free(m);
}

void fl_metrics_report(struct fl_metrics *m, const Flotilla__V1__Report *r)
{
	if (m == NULL || r == NULL)
		return;
	for (size_t i = 0; i < r->n_migrations; i++) {
		const Flotilla__V1__MigrationResult *x = r->migrations[i];

		if (x->started_at_ms > 0 && x->finished_at_ms >= x->started_at_ms)
			observe(&m->migration, (x->finished_at_ms - x->started_at_ms) * 1000);
	}
	for (size_t i = 0; i < r->n_health; i++)
		observe(&m->health, (int64_t)r->health[i]->duration_ms * 1000);
}

void fl_metrics_refused(struct fl_metrics *m, enum fl_metrics_endpoint ep, int reason)
{
	if (m == NULL || (ep != FL_METRICS_AGENT && ep != FL_METRICS_ADMIN) || reason < 0 ||
	    reason > FL_METRICS_WRONG_ROLE)
		return;
	atomic_fetch_add(&m->refused[ep][reason], 1);
}

void fl_metrics_store_commit(void *arg, int64_t ns)
{
	struct fl_metrics *m = arg;

	if (m != NULL)
		observe(&m->commit, ns / 1000);
}

void fl_metrics_http(struct fl_metrics *m, int status)
{
	int k = status / 100;

	if (m == NULL)
		return;
	atomic_fetch_add(&m->http[k >= 1 && k <= 5 ? k - 1 : 5], 1);
}

void fl_metrics_label(struct fl_buf *out, const char *value)
{
	fl_buf_puts(out, "\"");
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\\')
			fl_buf_puts(out, "\\\\");
		else if (*p == '"')
			fl_buf_puts(out, "\\\"");
		else if (*p == '\n')
			fl_buf_puts(out, "\\n");
		else
			fl_buf_printf(out, "%c", *p);
	}
	fl_buf_puts(out, "\"");
}

void fl_metrics_head(struct fl_buf *out, const char *name, const char *type, const char *help)
{
	fl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_hist(struct histogram *h, struct fl_buf *out)
{
	uint64_t cum = 0;

	fl_metrics_head(out, h->name, "histogram", h->help);
	for (size_t i = 0; i <= h->n; i++) {
		cum += atomic_load(&h->count[i]);
		if (i < h->n)
			fl_buf_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", h->name, h->le[i],
			              cum);
		else
			fl_buf_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", h->name, cum);
	}
	fl_buf_printf(out, "%s_sum %.6f\n%s_count %" PRIu64 "\n", h->name,
	              (double)atomic_load(&h->sum_us) / 1e6, h->name, cum);
}

void fl_metrics_render(struct fl_metrics *m, struct fl_buf *out)
{
	static const char *const eps[2] = {"agent", "admin"};
	static const char *const classes[HTTP_CLASSES] = {"1xx", "2xx", "3xx",
	                                                  "4xx", "5xx", "other"};

	render_hist(&m->migration, out);
	render_hist(&m->health, out);
	render_hist(&m->commit, out);
	fl_metrics_head(out, "flotilla_envelope_refusals_total", "counter",
	                "Envelopes refused, by endpoint and reason (docs/WIRE.md).");
	for (size_t e = 0; e < 2; e++)
		for (int r = 0; r <= FL_METRICS_WRONG_ROLE; r++) {
			if (r == FL_ENVELOPE_OK)
				continue;
			fl_buf_printf(
			    out,
			    "flotilla_envelope_refusals_total{endpoint=\"%s\",reason=\"%s\"} "
			    "%" PRIu64 "\n",
			    eps[e],
			    r == FL_METRICS_WRONG_ROLE ? "wrong-role" : fl_envelope_reason_name(r),
			    atomic_load(&m->refused[e][r]));
		}
	fl_metrics_head(out, "flotilla_http_responses_total", "counter",
	                "HTTP responses of this endpoint, by status class.");
	for (size_t i = 0; i < HTTP_CLASSES; i++)
		fl_buf_printf(out, "flotilla_http_responses_total{code=\"%s\"} %" PRIu64 "\n",
		              classes[i], atomic_load(&m->http[i]));
}
