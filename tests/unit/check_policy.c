/*
 * Rollout policies (lib/policy.h).
 *
 * Data-driven: every tests/data/policy/NN_name.yaml is loaded with
 * fl_policy_load_file, and NN_name.expect holds, after any leading '#'
 * comment lines, either the one error line expected, whole:
 *
 *   error: '20_percent_down.yaml':5:27: 'waves[1].select.percent': 5 is below 10, ...
 *
 * or the loaded policy's summary (summarize() below), line for line. Files
 * load by bare name (the test runs in that folder), so messages name them as
 * users see them. The docs and example check for policy keys is in
 * check_config.c, with the other documented tables.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "duration.h"
#include "mem.h"
#include "policy.h"
#include "testutil.h"

#define MAX_CASES 256
#define PATH_MAX_ 4096

static const char *data_dir(void)
{
	const char *d = getenv("FL_TEST_DATA");
	ck_assert_msg(d != NULL, "FL_TEST_DATA is not set (run through ctest)");
	return d;
}

static const char *source_dir(void)
{
	const char *d = getenv("FL_SOURCE_DIR");
	ck_assert_msg(d != NULL, "FL_SOURCE_DIR is not set (run through ctest)");
	return d;
}

/* ---- the summary: every field, one line per wave, check and window ---- */

static void put(struct fl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct fl_buf *b, const char *fmt, ...)
{
	char line[FL_POLICY_CHECK_SQL_MAX + 512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ck_assert_int_eq(fl_buf_puts(b, line), FL_OK);
}

static const char *dur(int64_t ms, char *out)
{
	fl_duration_format(ms, out, 32);
	return out;
}

static void summarize(const struct fl_policy *p, struct fl_buf *b)
{
	char d1[32], d2[32], d3[32], labels[1024];
	size_t i, j;

	put(b, "name: %s\n", p->name);
	put(b, "per_agent_parallel: %u\n", p->per_agent_parallel);
	put(b, "health: interval %s, max_duration %s\n", dur(p->health_interval_ms, d1),
	    dur(p->max_duration_ms, d2));
	put(b, "lock_timeout: %s\n", dur(p->lock_timeout_ms, d1));
	if (p->statement_timeout_ms < 0)
		put(b, "statement_timeout: %lld\n", (long long)p->statement_timeout_ms);
	else
		put(b, "statement_timeout: %s\n", dur(p->statement_timeout_ms, d1));
	put(b, "retry: attempts %d, base %s, max %s, budget %s\n", p->retry.attempts,
	    dur(p->retry.base_delay_ms, d1), dur(p->retry.max_delay_ms, d2),
	    dur(p->retry.budget_ms, d3));
	put(b, "on_failure: %s\n", fl_on_failure_name(p->on_failure));
	put(b, "on_halt: %s\n", fl_on_halt_name(p->on_halt));
	put(b, "unreachable: %s after %s\n", fl_unreachable_name(p->unreachable),
	    dur(p->unreachable_after_ms, d1));
	for (i = 0; i < p->n_waves; i++) {
		const struct fl_wave *w = &p->waves[i];

		put(b, "wave %s: %s ", w->name, fl_select_kind_name(w->select.kind));
		switch (w->select.kind) {
		case FL_SELECT_LABELS:
			put(b, "%s", fl_labels_format(&w->select.labels, labels, sizeof(labels)));
			break;
		case FL_SELECT_TENANTS:
			for (j = 0; j < w->select.n_tenants; j++)
				put(b, "%s%s", j ? "," : "", w->select.tenants[j]);
			break;
		case FL_SELECT_PERCENT:
			put(b, "%g", w->select.percent);
			break;
		}
		put(b,
		    "; max_parallel %u, per_agent %u, max_failures %lld, rate %g, bake %s%s, %s\n",
		    w->max_parallel, w->per_agent_parallel, (long long)w->max_failures,
		    w->max_failure_rate, dur(w->bake_ms, d1), w->backup ? ", backup" : "",
		    fl_gate_name(w->gate));
		/* only the kind's own fields are set */
		ck_assert(w->select.kind == FL_SELECT_LABELS || w->select.labels.n == 0);
		ck_assert(w->select.kind == FL_SELECT_TENANTS || w->select.n_tenants == 0);
		ck_assert(w->select.kind == FL_SELECT_PERCENT || w->select.percent == 0);
	}
	for (i = 0; i < p->n_checks; i++)
		put(b, "check %s: timeout %s: %s\n", p->checks[i].name,
		    dur(p->checks[i].timeout_ms, d1), p->checks[i].sql);
	for (i = 0; i < p->n_windows; i++)
		put(b, "window %s: %02d:%02d-%02d:%02d\n",
		    p->windows[i].labels.n
		        ? fl_labels_format(&p->windows[i].labels, labels, sizeof(labels))
		        : "(all)",
		    p->windows[i].start_minute / 60, p->windows[i].start_minute % 60,
		    p->windows[i].end_minute / 60, p->windows[i].end_minute % 60);
}

/* ---- the data-driven cases ---- */

static char *cases[MAX_CASES];
static int n_cases;

static int yaml_only(const struct dirent *e)
{
	size_t len = strlen(e->d_name);
	return len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0;
}

static void find_cases(void)
{
	char dir[PATH_MAX_];
	struct dirent **list;
	int i, n;

	snprintf(dir, sizeof(dir), "%s/policy",
	         getenv("FL_TEST_DATA") ? getenv("FL_TEST_DATA") : ".");
	n = scandir(dir, &list, yaml_only, alphasort);
	for (i = 0; i < n; i++) {
		if (n_cases < MAX_CASES)
			cases[n_cases++] = fl_strdup(list[i]->d_name);
		free(list[i]);
	}
	if (n > 0)
		free(list);
}

START_TEST(data_case)
{
	const char *yaml = cases[_i];
	char expect_path[PATH_MAX_], dir[PATH_MAX_], err[FL_ERRBUF_SIZE] = "";
	struct fl_buf got = FL_BUF_INIT;
	struct fl_policy p;
	char *expect, *body, *nl;
	enum fl_err rv;

	fl_test_fmt(dir, sizeof(dir), "%s/policy", data_dir());
	ck_assert_int_eq(chdir(dir), 0);
	fl_test_fmt(expect_path, sizeof(expect_path), "%.*s.expect", (int)(strlen(yaml) - 5), yaml);
	expect = fl_test_read_file(expect_path, NULL);
	ck_assert_msg(expect != NULL, "no %s", expect_path);
	for (body = expect; *body == '#';) /* leading comments */
		body = (nl = strchr(body, '\n')) ? nl + 1 : body + strlen(body);
	memset(&p, 0xa5, sizeof(p)); /* the loader initialises p */
	rv = fl_policy_load_file(yaml, &p, err);
	if (strncmp(body, "error: ", 7) == 0) {
		if ((nl = strchr(body, '\n')) != NULL)
			*nl = '\0';
		ck_assert_msg(rv == FL_EPARSE, "%s: expected an error, got %d (%s)", yaml, (int)rv,
		              err);
		ck_assert_msg(strcmp(err, body + 7) == 0, "%s: error\n  %s\nexpected\n  %s", yaml,
		              err, body + 7);
		/* left initialised and empty */
		ck_assert_ptr_null(p.name);
		ck_assert_ptr_null(p.waves);
		ck_assert_uint_eq(p.n_waves, 0);
		ck_assert_ptr_null(p.checks);
		ck_assert_ptr_null(p.windows);
		ck_assert_int_eq(p.lock_timeout_ms, 500);
	} else {
		ck_assert_msg(rv == FL_OK, "%s: expected it to load, got: %s", yaml, err);
		ck_assert_int_eq(fl_policy_check(&p, err), FL_OK);
		summarize(&p, &got);
		ck_assert_msg(strcmp(fl_buf_str(&got), body) == 0, "%s: loaded\n%s\nexpected\n%s",
		              yaml, fl_buf_str(&got), body);
	}
	fl_policy_fini(&p);
	fl_policy_fini(&p); /* twice is harmless */
	fl_buf_fini(&got);
	free(expect);
}
END_TEST

/* ---- plain cases ---- */

static enum fl_err load(const char *text, struct fl_policy *p, char *err)
{
	return fl_policy_load_buffer(text, strlen(text), "p.yaml", p, err);
}

#define MINIMAL "name: p\nwaves: [{name: all, select: {percent: 100}}]\n"

START_TEST(defaults_match_init)
{
	struct fl_policy a, b;
	char err[FL_ERRBUF_SIZE] = "";

	fl_policy_init(&a);
	ck_assert_int_eq(load(MINIMAL, &b, err), FL_OK);
	/* a file that sets nothing optional holds what fl_policy_init says */
	ck_assert_uint_eq(b.per_agent_parallel, a.per_agent_parallel);
	ck_assert_int_eq(b.health_interval_ms, a.health_interval_ms);
	ck_assert_int_eq(b.max_duration_ms, a.max_duration_ms);
	ck_assert_int_eq(b.lock_timeout_ms, a.lock_timeout_ms);
	ck_assert_int_eq(b.statement_timeout_ms, -1);
	ck_assert_int_eq(b.retry.attempts, a.retry.attempts);
	ck_assert_int_eq(b.retry.base_delay_ms, a.retry.base_delay_ms);
	ck_assert_int_eq(b.retry.max_delay_ms, a.retry.max_delay_ms);
	ck_assert_int_eq(b.retry.budget_ms, a.retry.budget_ms);
	ck_assert_int_eq(b.on_failure, a.on_failure);
	ck_assert_int_eq(b.on_halt, a.on_halt);
	ck_assert_int_eq(b.unreachable, a.unreachable);
	ck_assert_int_eq(b.unreachable_after_ms, a.unreachable_after_ms);
	/* the header's numbers */
	ck_assert_uint_eq(a.per_agent_parallel, 4);
	ck_assert_int_eq(a.health_interval_ms, 30000);
	ck_assert_int_eq(a.lock_timeout_ms, 500);
	ck_assert_int_eq(a.retry.attempts, 5);
	ck_assert_int_eq(a.retry.base_delay_ms, 2000);
	ck_assert_int_eq(a.unreachable_after_ms, 600000);
	ck_assert_uint_eq(b.waves[0].max_parallel, 10);
	ck_assert_uint_eq(b.waves[0].per_agent_parallel, 0);
	ck_assert_int_eq(b.waves[0].max_failures, -1);
	ck_assert(b.waves[0].max_failure_rate < 0);
	ck_assert_int_eq(b.waves[0].bake_ms, 0);
	ck_assert(!b.waves[0].backup);
	ck_assert_int_eq(b.waves[0].gate, FL_GATE_AUTO);
	/* init alone has no waves, which the rules refuse */
	ck_assert_int_eq(fl_policy_check(&a, err), FL_EPARSE);
	ck_assert_str_eq(err, "'name': a name is required");
	fl_policy_fini(&a);
	fl_policy_fini(&b);
}
END_TEST

static struct fl_wave wave(int64_t max_failures, double rate)
{
	struct fl_wave w;

	memset(&w, 0, sizeof(w));
	w.max_failures = max_failures;
	w.max_failure_rate = rate;
	return w;
}

START_TEST(budget_counts_exactly)
{
	struct fl_wave w;

	w = wave(1, -1); /* max_failures: 1 trips on the second failure */
	ck_assert(!fl_wave_budget_exceeded(&w, 0, 10));
	ck_assert(!fl_wave_budget_exceeded(&w, 1, 10));
	ck_assert(fl_wave_budget_exceeded(&w, 2, 10));
	w = wave(0, -1);
	ck_assert(!fl_wave_budget_exceeded(&w, 0, 10));
	ck_assert(fl_wave_budget_exceeded(&w, 1, 10));
	w = wave(-1, -1); /* neither: max_failures 0 */
	ck_assert(!fl_wave_budget_exceeded(&w, 0, 10));
	ck_assert(fl_wave_budget_exceeded(&w, 1, 10));
	w = wave(-1, 0.02); /* failed / total > rate */
	ck_assert(!fl_wave_budget_exceeded(&w, 2, 100));
	ck_assert(fl_wave_budget_exceeded(&w, 3, 100));
	ck_assert(!fl_wave_budget_exceeded(&w, 1, 50));
	ck_assert(fl_wave_budget_exceeded(&w, 2, 50));
	ck_assert(fl_wave_budget_exceeded(&w, 1, 49));
	ck_assert(!fl_wave_budget_exceeded(&w, 0, 0)); /* nothing yet */
	ck_assert(fl_wave_budget_exceeded(&w, 1, 1));
	w = wave(-1, 0.1); /* 0.1 is not exact in binary: 1/10 must still not trip */
	ck_assert(!fl_wave_budget_exceeded(&w, 1, 10));
	ck_assert(!fl_wave_budget_exceeded(&w, 3, 30));
	ck_assert(!fl_wave_budget_exceeded(&w, 100000000, 1000000000));
	ck_assert(fl_wave_budget_exceeded(&w, 100000001, 1000000000));
	w = wave(-1, 0.000001);
	ck_assert(!fl_wave_budget_exceeded(&w, 4294, 4294967295u));
	ck_assert(fl_wave_budget_exceeded(&w, 4295, 4294967295u));
	w = wave(-1, 0); /* a rate of 0 tolerates nothing */
	ck_assert(!fl_wave_budget_exceeded(&w, 0, 10));
	ck_assert(fl_wave_budget_exceeded(&w, 1, 10));
	w = wave(-1, 1); /* a rate of 1 tolerates everything */
	ck_assert(!fl_wave_budget_exceeded(&w, 10, 10));
	w = wave(5, 0.01); /* both: whichever trips first */
	ck_assert(!fl_wave_budget_exceeded(&w, 1, 200));
	ck_assert(fl_wave_budget_exceeded(&w, 3, 200)); /* the rate */
	ck_assert(!fl_wave_budget_exceeded(&w, 5, 1000));
	ck_assert(fl_wave_budget_exceeded(&w, 6, 1000)); /* the count */
}
END_TEST

START_TEST(next_start)
{
	struct fl_policy p;
	struct fl_labels eu, us, other;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(load(MINIMAL
	                      "windows:\n"
	                      "  - {select: {labels: {region: eu}}, utc: \"01:00-05:00\"}\n"
	                      "  - {select: {labels: {region: eu}}, utc: \"22:00-23:00\"}\n"
	                      "  - {select: {labels: {region: us}}, utc: \"23:30-00:30\"}\n",
	                      &p, err),
	                 FL_OK);
	ck_assert_int_eq(fl_labels_parse("region=eu,ring=canary", &eu, err), FL_OK);
	ck_assert_int_eq(fl_labels_parse("region=us", &us, err), FL_OK);
	ck_assert_int_eq(fl_labels_parse("region=ap", &other, err), FL_OK);
	/* open now: 0 */
	ck_assert_int_eq(fl_policy_next_start(&p, &eu, 60), 0);
	ck_assert_int_eq(fl_policy_next_start(&p, &eu, 299), 0);
	ck_assert_int_eq(fl_policy_next_start(&p, &eu, 1379), 0);
	/* several windows: the soonest */
	ck_assert_int_eq(fl_policy_next_start(&p, &eu, 300), 1320 - 300);
	ck_assert_int_eq(fl_policy_next_start(&p, &eu, 1380), 1440 - 1380 + 60);
	ck_assert_int_eq(fl_policy_next_start(&p, &eu, 0), 60);
	ck_assert_int_eq(fl_policy_next_start(&p, &eu, 59), 1);
	/* across midnight */
	ck_assert_int_eq(fl_policy_next_start(&p, &us, 1439), 0);
	ck_assert_int_eq(fl_policy_next_start(&p, &us, 29), 0);
	ck_assert_int_eq(fl_policy_next_start(&p, &us, 30), 1410 - 30);
	ck_assert_int_eq(fl_policy_next_start(&p, &us, 1409), 1);
	/* no window selects it: now, always */
	for (int m = 0; m < 1440; m += 7)
		ck_assert_int_eq(fl_policy_next_start(&p, &other, m), 0);
	/* agrees with fl_policy_may_start everywhere */
	for (int m = 0; m < 1440; m++) {
		ck_assert_int_eq(fl_policy_next_start(&p, &eu, m) == 0,
		                 fl_policy_may_start(&p, &eu, m));
		ck_assert_int_eq(fl_policy_next_start(&p, &us, m) == 0,
		                 fl_policy_may_start(&p, &us, m));
	}
	fl_policy_fini(&p);
	fl_labels_fini(&eu);
	fl_labels_fini(&us);
	fl_labels_fini(&other);
}
END_TEST

#define MIN_MS  60000LL
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS  (24 * HOUR_MS)
/* 2026-12-01, 00:00 UTC */
#define MIDNIGHT 1796083200000LL

START_TEST(window_finish)
{
	struct fl_policy p;
	struct fl_labels eu, us, other;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(MIDNIGHT % DAY_MS, 0);
	ck_assert_int_eq(load(MINIMAL
	                      "windows:\n"
	                      "  - {select: {labels: {region: eu}}, utc: \"01:00-05:00\"}\n"
	                      "  - {select: {labels: {region: us}}, utc: \"23:00-01:00\"}\n",
	                      &p, err),
	                 FL_OK);
	ck_assert_int_eq(fl_labels_parse("region=eu", &eu, err), FL_OK);
	ck_assert_int_eq(fl_labels_parse("region=us", &us, err), FL_OK);
	ck_assert_int_eq(fl_labels_parse("region=ap", &other, err), FL_OK);
	/* no window: start + work */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &other, MIDNIGHT + 7, 3 * DAY_MS),
	                 MIDNIGHT + 7 + 3 * DAY_MS);
	/* nothing to do: now */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &eu, MIDNIGHT + 7, 0), MIDNIGHT + 7);
	/* inside the window, fits: start + work */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &eu, MIDNIGHT + 2 * HOUR_MS, HOUR_MS),
	                 MIDNIGHT + 3 * HOUR_MS);
	/* before it opens: waits for it */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &eu, MIDNIGHT + 30 * MIN_MS, HOUR_MS),
	                 MIDNIGHT + 2 * HOUR_MS);
	/* after it closed: tomorrow's */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &eu, MIDNIGHT + 6 * HOUR_MS, 1000),
	                 MIDNIGHT + DAY_MS + HOUR_MS + 1000);
	/* more than a window holds spills into the next day's: 2 h today, 1 h tomorrow */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &eu, MIDNIGHT + 3 * HOUR_MS, 3 * HOUR_MS),
	                 MIDNIGHT + DAY_MS + 2 * HOUR_MS);
	/* many days: 9 h of 4 h windows = 01:00-05:00 twice, then 1 h on the third day */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &eu, MIDNIGHT, 9 * HOUR_MS),
	                 MIDNIGHT + 2 * DAY_MS + 2 * HOUR_MS);
	/* exactly a window's worth ends as it closes */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &eu, MIDNIGHT, 4 * HOUR_MS),
	                 MIDNIGHT + 5 * HOUR_MS);
	/* a partial minute: started at 04:59:30, 45 s of work: 30 s now, 15 s tomorrow */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &eu, MIDNIGHT + 5 * HOUR_MS - 30000, 45000),
	                 MIDNIGHT + DAY_MS + HOUR_MS + 15000);
	/* across midnight: 23:00-01:00, from 22:00 with 3 h: 23:00-01:00, then 23:00-00:00 */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &us, MIDNIGHT + 22 * HOUR_MS, 3 * HOUR_MS),
	                 MIDNIGHT + 2 * DAY_MS);
	/* 100 days of work in 2 h windows: days are skipped, not walked minute by minute */
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &us, MIDNIGHT + HOUR_MS, 200 * HOUR_MS),
	                 MIDNIGHT + 100 * DAY_MS + HOUR_MS);
	fl_policy_fini(&p);
	/* a window for everyone holds everyone */
	ck_assert_int_eq(load(MINIMAL "windows: [{utc: \"01:00-02:00\"}]\n", &p, err), FL_OK);
	ck_assert_int_eq(fl_policy_window_finish_ms(&p, &other, MIDNIGHT, MIN_MS),
	                 MIDNIGHT + HOUR_MS + MIN_MS);
	fl_policy_fini(&p);
	fl_labels_fini(&eu);
	fl_labels_fini(&us);
	fl_labels_fini(&other);
}
END_TEST

START_TEST(wave_finish)
{
	struct fl_policy p;
	struct fl_labels l[6];
	const struct fl_labels *t[6];
	const char *spec[6] = {"region=eu", "region=ap", "region=eu,ring=canary",
	                       "region=ap", "region=eu", "region=us"};
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(load(MINIMAL
	                      "windows:\n"
	                      "  - {select: {labels: {region: eu}}, utc: \"01:00-05:00\"}\n"
	                      "  - {select: {labels: {region: us}}, utc: \"23:00-01:00\"}\n",
	                      &p, err),
	                 FL_OK);
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(fl_labels_parse(spec[i], &l[i], err), FL_OK);
		t[i] = &l[i];
	}
	/* nothing to do, or no pace known: the start */
	ck_assert_int_eq(fl_wave_finish_ms(&p, 10, t, 0, MIDNIGHT, MIN_MS), MIDNIGHT);
	ck_assert_int_eq(fl_wave_finish_ms(&p, 10, t, 6, MIDNIGHT, 0), MIDNIGHT);
	/* only tenants no window selects: rounds of max_parallel */
	{
		const struct fl_labels *ap[2] = {&l[1], &l[3]};

		ck_assert_int_eq(fl_wave_finish_ms(&p, 1, ap, 2, MIDNIGHT + 7, MIN_MS),
		                 MIDNIGHT + 7 + 2 * MIN_MS);
		ck_assert_int_eq(fl_wave_finish_ms(&p, 5, ap, 2, MIDNIGHT + 7, MIN_MS),
		                 MIDNIGHT + 7 + MIN_MS);
	}
	/* at 12:00: ap is done at once, eu (3 tenants, 2 at once: 2 rounds of 3 h) starts at
	 * 01:00 tomorrow, runs 4 h, spills 2 h into the day after; us 23:00-01:00 and 23:00-00:00
	 */
	ck_assert_int_eq(fl_wave_finish_ms(&p, 2, t, 6, MIDNIGHT + 12 * HOUR_MS, 3 * HOUR_MS),
	                 MIDNIGHT + 2 * DAY_MS + 3 * HOUR_MS);
	/* at 00:30 with 10 at once: one round each; eu 01:00-04:00; us 00:30-01:00, then
	 * 23:00-01:00 (2.5 h by then), then 23:00-23:30 the next day: the last */
	ck_assert_int_eq(fl_wave_finish_ms(&p, 10, t, 6, MIDNIGHT + 30 * MIN_MS, 3 * HOUR_MS),
	                 MIDNIGHT + 2 * DAY_MS - HOUR_MS + 30 * MIN_MS);
	/* max_parallel 0 counts as 1 */
	ck_assert_int_eq(fl_wave_finish_ms(&p, 0, t + 1, 1, MIDNIGHT, MIN_MS), MIDNIGHT + MIN_MS);
	for (int i = 0; i < 6; i++)
		fl_labels_fini(&l[i]);
	fl_policy_fini(&p);
}
END_TEST

START_TEST(windows_open)
{
	struct fl_window day = {.start_minute = 60, .end_minute = 300};         /* 01:00-05:00 */
	struct fl_window night = {.start_minute = 1320, .end_minute = 120};     /* 22:00-02:00 */
	struct fl_window to_midnight = {.start_minute = 1320, .end_minute = 0}; /* 22:00-24:00 */
	struct fl_window empty = {.start_minute = 60, .end_minute = 60};

	ck_assert(!fl_window_open(&day, 59));
	ck_assert(fl_window_open(&day, 60));
	ck_assert(fl_window_open(&day, 299));
	ck_assert(!fl_window_open(&day, 300)); /* end excluded */
	ck_assert(!fl_window_open(&day, 1439));
	ck_assert(fl_window_open(&night, 1320));
	ck_assert(fl_window_open(&night, 1439));
	ck_assert(fl_window_open(&night, 0));
	ck_assert(fl_window_open(&night, 119));
	ck_assert(!fl_window_open(&night, 120));
	ck_assert(!fl_window_open(&night, 1319));
	ck_assert(!fl_window_open(&night, 600));
	ck_assert(fl_window_open(&to_midnight, 1439));
	ck_assert(!fl_window_open(&to_midnight, 0));
	ck_assert(!fl_window_open(&empty, 60));
	ck_assert(!fl_window_open(&day, -1)); /* not a minute of the day */
	ck_assert(!fl_window_open(&night, 1440));
	ck_assert(!fl_window_open(&night, -1));
}
END_TEST

START_TEST(may_start)
{
	struct fl_policy p;
	struct fl_labels eu, us, other;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(load(MINIMAL
	                      "windows:\n"
	                      "  - {select: {labels: {region: eu}}, utc: \"01:00-05:00\"}\n"
	                      "  - {select: {labels: {region: eu}}, utc: \"22:00-23:00\"}\n"
	                      "  - {select: {labels: {region: us}}, utc: \"06:00-12:00\"}\n",
	                      &p, err),
	                 FL_OK);
	ck_assert_int_eq(fl_labels_parse("region=eu,ring=canary", &eu, err), FL_OK);
	ck_assert_int_eq(fl_labels_parse("region=us", &us, err), FL_OK);
	ck_assert_int_eq(fl_labels_parse("region=ap", &other, err), FL_OK);
	ck_assert(fl_policy_may_start(&p, &eu, 120));
	ck_assert(fl_policy_may_start(&p, &eu, 1350)); /* the second window */
	ck_assert(!fl_policy_may_start(&p, &eu, 400));
	ck_assert(!fl_policy_may_start(&p, &us, 120));
	ck_assert(fl_policy_may_start(&p, &us, 400));
	ck_assert(fl_policy_may_start(&p, &other, 400)); /* no window selects it */
	ck_assert(fl_policy_may_start(&p, &other, 0));
	fl_policy_fini(&p);
	/* a window for everyone */
	ck_assert_int_eq(load(MINIMAL "windows: [{utc: \"01:00-02:00\"}]\n", &p, err), FL_OK);
	ck_assert(fl_policy_may_start(&p, &other, 60));
	ck_assert(!fl_policy_may_start(&p, &other, 120));
	fl_policy_fini(&p);
	/* no windows: always */
	ck_assert_int_eq(load(MINIMAL, &p, err), FL_OK);
	ck_assert(fl_policy_may_start(&p, &eu, 400));
	fl_policy_fini(&p);
	fl_labels_fini(&eu);
	fl_labels_fini(&us);
	fl_labels_fini(&other);
}
END_TEST

static const char *const examples[] = {"standard-canary", "expand-contract-friendly",
                                       "fast-staging"};

START_TEST(copy_is_deep)
{
	struct fl_policy p, c;
	struct fl_buf a = FL_BUF_INIT, b = FL_BUF_INIT;
	char path[PATH_MAX_], err[FL_ERRBUF_SIZE] = "";

	fl_test_fmt(path, sizeof(path), "%s/deploy/examples/policies/%s.yaml", source_dir(),
	            examples[1]);
	ck_assert_msg(fl_policy_load_file(path, &p, err) == FL_OK, "%s", err);
	summarize(&p, &a);
	memset(&c, 0xa5, sizeof(c));
	fl_policy_copy(&c, &p);
	fl_policy_fini(&p); /* the copy shares nothing with it */
	summarize(&c, &b);
	ck_assert_str_eq(fl_buf_str(&a), fl_buf_str(&b));
	ck_assert_int_eq(fl_policy_check(&c, err), FL_OK);
	fl_policy_fini(&c);
	/* an empty policy copies too */
	fl_policy_init(&p);
	fl_policy_copy(&c, &p);
	ck_assert_ptr_null(c.waves);
	fl_policy_fini(&c);
	fl_policy_fini(&p);
	fl_buf_fini(&a);
	fl_buf_fini(&b);
}
END_TEST

START_TEST(examples_load)
{
	struct fl_policy p;
	char path[PATH_MAX_], err[FL_ERRBUF_SIZE] = "";

	fl_test_fmt(path, sizeof(path), "%s/deploy/examples/policies/%s.yaml", source_dir(),
	            examples[_i]);
	ck_assert_msg(fl_policy_load_file(path, &p, err) == FL_OK, "%s", err);
	ck_assert_str_eq(p.name, examples[_i]); /* named as their file */
	ck_assert_int_eq(fl_policy_check(&p, err), FL_OK);
	ck_assert(p.n_waves > 0);
	fl_policy_fini(&p);
}
END_TEST

START_TEST(load_errors)
{
	struct fl_policy p;
	char err[FL_ERRBUF_SIZE] = "";

	memset(&p, 0xa5, sizeof(p));
	ck_assert_int_eq(fl_policy_load_file("/nonexistent/p.yaml", &p, err), FL_ENOENT);
	ck_assert_str_eq(err, "cannot open '/nonexistent/p.yaml': No such file or directory");
	ck_assert_ptr_null(p.waves);
	fl_policy_fini(&p);
	ck_assert_int_eq(fl_policy_load_file("/", &p, err), FL_EIO);
	ck_assert_int_eq(fl_policy_load_buffer(MINIMAL, strlen(MINIMAL), NULL, &p, err), FL_OK);
	fl_policy_fini(&p);
	ck_assert_int_eq(fl_policy_load_buffer("name: p\n", 8, NULL, &p, err), FL_EPARSE);
	ck_assert_str_eq(err, "'(policy)': missing required key 'waves'");
}
END_TEST

/* A valid policy built by hand, as one decoded from an order would be. */
static void build(struct fl_policy *p)
{
	static char *tenants[] = {"a", "b", "c"};
	char err[FL_ERRBUF_SIZE];

	fl_policy_init(p);
	p->name = fl_strdup("hand");
	p->n_waves = 3;
	p->waves = fl_calloc(3, sizeof(*p->waves));
	p->waves[0].name = fl_strdup("one");
	p->waves[0].select.kind = FL_SELECT_TENANTS;
	p->waves[0].select.tenants = fl_calloc(3, sizeof(char *));
	for (int i = 0; i < 3; i++)
		p->waves[0].select.tenants[i] = fl_strdup(tenants[i]);
	p->waves[0].select.n_tenants = 3;
	p->waves[1].name = fl_strdup("two");
	p->waves[1].select.kind = FL_SELECT_PERCENT;
	p->waves[1].select.percent = 10;
	p->waves[2].name = fl_strdup("three");
	p->waves[2].select.kind = FL_SELECT_LABELS;
	ck_assert_int_eq(fl_labels_set(&p->waves[2].select.labels, "ring", "late", err), FL_OK);
	for (int i = 0; i < 3; i++) {
		p->waves[i].max_parallel = 10;
		p->waves[i].max_failures = -1;
		p->waves[i].max_failure_rate = -1;
	}
	p->n_checks = 1;
	p->checks = fl_calloc(1, sizeof(*p->checks));
	p->checks[0].name = fl_strdup("c");
	p->checks[0].sql = fl_strdup("SELECT true");
	p->checks[0].timeout_ms = 5000;
	p->n_windows = 1;
	p->windows = fl_calloc(1, sizeof(*p->windows));
	p->windows[0].start_minute = 60;
	p->windows[0].end_minute = 120;
}

static void swap_str(char **slot, const char *text)
{
	free(*slot);
	*slot = text ? fl_strdup(text) : NULL;
}

/* Each breaks one rule of a hand-built policy; what fl_policy_check says. */
static void break_rule(struct fl_policy *p, int i)
{
	char err[FL_ERRBUF_SIZE];

	switch (i) {
	case 0:
		p->lock_timeout_ms = 0;
		break;
	case 1:
		p->waves[1].max_failure_rate = NAN;
		break;
	case 2:
		swap_str(&p->waves[0].select.tenants[1], "a");
		break;
	case 3:
		swap_str(&p->waves[0].select.tenants[0], "z");
		break;
	case 4:
		p->windows[0].end_minute = 60;
		break;
	case 5:
		p->waves[2].select.kind = FL_SELECT_PERCENT;
		p->waves[2].select.percent = 5;
		fl_labels_fini(&p->waves[2].select.labels);
		break;
	case 6:
		swap_str(&p->waves[2].name, "one");
		break;
	case 7:
		p->waves[1].select.kind = (enum fl_select_kind)7;
		break;
	case 8:
		p->waves[1].select.percent = 0;
		break;
	case 9:
		p->waves[1].select.percent = 100;
		break;
	case 10:
		fl_labels_fini(&p->waves[2].select.labels);
		break;
	case 11:
		swap_str(&p->checks[0].sql, "");
		break;
	case 12:
		p->retry.attempts = 0;
		break;
	case 13:
		p->on_failure = (enum fl_on_failure)3;
		break;
	case 14:
		swap_str(&p->waves[0].name, "bad name");
		break;
	case 15:
		p->statement_timeout_ms = 0;
		break;
	case 16:
		p->windows[0].start_minute = 1440;
		break;
	case 17:
		swap_str(&p->waves[0].select.tenants[2], "c\x1b");
		break;
	case 18:
		ck_assert_int_eq(fl_labels_set(&p->windows[0].labels, "r", "v", err), FL_OK);
		swap_str(&p->windows[0].labels.items[0].key, "R");
		break;
	case 19:
		p->waves[0].max_parallel = 0;
		break;
	case 20:
		p->retry.max_delay_ms = 10;
		break;
	case 21:
		swap_str(&p->checks[0].name, NULL);
		break;
	}
}

static const char *const rule_msgs[] = {
    "'lock_timeout': must not be 0: without a lock timeout, a migration waiting for a lock "
    "blocks every query queued behind it",
    "'waves[1].max_failure_rate': must be from 0 to 1 (or unset)",
    "'waves[0].select.tenants': 'a' is listed twice",
    "'waves[0].select.tenants': tenants not sorted",
    "'windows[0].utc': empty: it starts where it ends (for all day, leave the window out)",
    "'waves[2].select.percent': 5 is below 10, the percent of wave 'two' (percents are "
    "cumulative)",
    "'waves[2].name': 'one' is also the name of waves[0]",
    "'waves[1].select': unknown selector kind 7",
    "'waves[1].select.percent': must be above 0 and at most 100",
    "'waves[2]': wave 'three' comes after 'two', which takes every tenant left (percent: 100)",
    "'waves[2].select.labels': must not be empty",
    "'health.checks[0].sql': must not be empty",
    "'retry.attempts': 0 is out of bounds (1 to 20)",
    "'on_failure': unknown value 3",
    "'waves[0].name': 'bad name' is not a name: use A-Z, a-z, 0-9, '.', '_', '-'",
    "'statement_timeout': 0 is out of bounds (1s to 24h)",
    "'windows[0].utc': minutes out of bounds (0 to 1439)",
    "'waves[0].select.tenants': 'c\\x1b' is not a tenant id",
    "'windows[0].select.labels': invalid label key 'R': expected a-z and 0-9, then also '_', "
    "'.', '-' and '/'",
    "'waves[0].max_parallel': 0 is out of bounds (1 to 100000)",
    "'retry': 10ms is out of bounds (2s to 1m)",
    "'health.checks[0].name': a name is required",
};

START_TEST(check_rules)
{
	struct fl_policy p;
	char err[FL_ERRBUF_SIZE] = "";

	build(&p);
	ck_assert_msg(fl_policy_check(&p, err) == FL_OK, "%s", err);
	break_rule(&p, _i);
	ck_assert_int_eq(fl_policy_check(&p, err), FL_EPARSE);
	ck_assert_str_eq(err, rule_msgs[_i]);
	fl_policy_fini(&p);
}
END_TEST

START_TEST(names)
{
	ck_assert_str_eq(fl_gate_name(FL_GATE_AUTO), "auto");
	ck_assert_str_eq(fl_gate_name(FL_GATE_MANUAL), "manual");
	ck_assert_str_eq(fl_gate_name((enum fl_gate)2), "?");
	ck_assert_str_eq(fl_on_failure_name(FL_ON_FAILURE_HALT), "halt");
	ck_assert_str_eq(fl_on_failure_name(FL_ON_FAILURE_ROLLBACK_WAVE), "rollback-wave");
	ck_assert_str_eq(fl_on_failure_name(FL_ON_FAILURE_ROLLBACK_ALL), "rollback-all");
	ck_assert_str_eq(fl_on_failure_name((enum fl_on_failure) - 1), "?");
	ck_assert_str_eq(fl_on_halt_name(FL_ON_HALT_CANCEL), "cancel");
	ck_assert_str_eq(fl_on_halt_name(FL_ON_HALT_FINISH), "finish");
	ck_assert_str_eq(fl_unreachable_name(FL_UNREACHABLE_WAIT), "wait");
	ck_assert_str_eq(fl_unreachable_name(FL_UNREACHABLE_FAIL), "fail");
	ck_assert_str_eq(fl_select_kind_name(FL_SELECT_LABELS), "labels");
	ck_assert_str_eq(fl_select_kind_name(FL_SELECT_TENANTS), "tenants");
	ck_assert_str_eq(fl_select_kind_name(FL_SELECT_PERCENT), "percent");
	ck_assert_str_eq(fl_select_kind_name((enum fl_select_kind)3), "?");
}
END_TEST

START_TEST(many_tenants)
{
	struct fl_buf b = FL_BUF_INIT;
	struct fl_policy p;
	char err[FL_ERRBUF_SIZE] = "";
	int i;

	/* FL_POLICY_MAX_TENANTS is above the loader's default list cap */
	ck_assert_int_eq(fl_buf_puts(&b, "name: p\nwaves:\n  - name: w\n    select:\n"
	                                 "      tenants:\n"),
	                 FL_OK);
	for (i = FL_POLICY_MAX_TENANTS; i > 0; i--)
		ck_assert_int_eq(fl_buf_printf(&b, "        - t%05d\n", i), FL_OK);
	ck_assert_int_eq(load(fl_buf_str(&b), &p, err), FL_OK);
	ck_assert_uint_eq(p.waves[0].select.n_tenants, FL_POLICY_MAX_TENANTS);
	ck_assert_str_eq(p.waves[0].select.tenants[0], "t00001"); /* sorted */
	ck_assert_str_eq(p.waves[0].select.tenants[FL_POLICY_MAX_TENANTS - 1], "t10000");
	fl_policy_fini(&p);
	ck_assert_int_eq(fl_buf_puts(&b, "        - t10001\n"), FL_OK);
	ck_assert_int_eq(load(fl_buf_str(&b), &p, err), FL_EPARSE);
	ck_assert_str_eq(err, "'p.yaml':10006:11: 'waves[0].select.tenants': too many items (at "
	                      "most 10000)");
	fl_buf_fini(&b);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");

	tcase_add_loop_test(tc, data_case, 0, n_cases);
	tcase_add_test(tc, defaults_match_init);
	tcase_add_test(tc, budget_counts_exactly);
	tcase_add_test(tc, windows_open);
	tcase_add_test(tc, may_start);
	tcase_add_test(tc, next_start);
	tcase_add_test(tc, window_finish);
	tcase_add_test(tc, wave_finish);
	tcase_add_test(tc, copy_is_deep);
	tcase_add_loop_test(tc, examples_load, 0, (int)(sizeof(examples) / sizeof(examples[0])));
	tcase_add_test(tc, load_errors);
	tcase_add_loop_test(tc, check_rules, 0, (int)(sizeof(rule_msgs) / sizeof(rule_msgs[0])));
	tcase_add_test(tc, names);
	tcase_add_test(tc, many_tenants);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	find_cases();
	if (n_cases == 0) {
		fprintf(stderr, "check_policy: no cases in $FL_TEST_DATA/policy\n");
		return 1;
	}
	sr = srunner_create(policy_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	for (int i = 0; i < n_cases; i++)
		free(cases[i]);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
