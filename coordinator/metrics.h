/*
 * What /metrics counts as it happens (http.c renders it with what the core
 * knows at the scrape): histograms of migration and health-check durations
 * from reports, of store commits, and envelope refusals by endpoint and
 * reason. Everything is an atomic counter: any thread may observe, and a
 * scrape reads without a lock (a scrape may see a histogram's count one
 * observation ahead of its sum; Prometheus tolerates that).
 *
 * Names follow Prometheus' conventions (docs/ARCHITECTURE.md, "HTTP"): the
 * flotilla_ prefix, _total counters, _seconds histograms.
 */
#ifndef FL_METRICS_H
#define FL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "envelope.h"
#include "flotilla.pb-c.h"

struct fl_metrics;

enum fl_metrics_endpoint {
	FL_METRICS_AGENT = 0,
	FL_METRICS_ADMIN = 1,
};

/* Refusals that are not an envelope reason: a key of the wrong role. */
#define FL_METRICS_WRONG_ROLE FL_ENVELOPE_REASON_COUNT

struct fl_metrics *fl_metrics_new(void);
void fl_metrics_free(struct fl_metrics *m); /* NULL is a no-op */

/* A report stored for the first time: its migrations' and health checks'
 * durations. */
void fl_metrics_report(struct fl_metrics *m, const Flotilla__V1__Report *r);
/* An envelope refused on an endpoint: reason is an enum fl_envelope_reason
 * or FL_METRICS_WRONG_ROLE. */
void fl_metrics_refused(struct fl_metrics *m, enum fl_metrics_endpoint ep, int reason);
/* One store commit took this long (fl_store_on_commit's callback shape). */
void fl_metrics_store_commit(void *m, int64_t ns);
/* An HTTP request answered with this status. */
void fl_metrics_http(struct fl_metrics *m, int status);

/* Append the counters and histograms in the Prometheus text format (HELP,
 * TYPE, samples). */
void fl_metrics_render(struct fl_metrics *m, struct fl_buf *out);

/* Prometheus text helpers for the rest of /metrics. A label value escaped
 * (backslash, quote, newline). */
void fl_metrics_label(struct fl_buf *out, const char *value);
/* "# HELP name help\n# TYPE name type\n" */
void fl_metrics_head(struct fl_buf *out, const char *name, const char *type, const char *help);

#endif
