/*
 * Wave membership (coordinator/waves.h).
 *
 * The stable order is checked against keys and orders computed apart from
 * this code (Python's hashlib, noted by each golden value), so the same
 * order gives the same waves on any machine. Then a table of policies and
 * fleets, each with the tenants every wave must hold: cumulative percent
 * waves counting every earlier wave, empty waves, rounding, labels and
 * tenant-id waves, tenants left in no wave.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "label.h"
#include "mem.h"
#include "policy.h"
#include "testutil.h"
#include "waves.h"

static char err[FL_ERRBUF_SIZE];

static void hash_seq(uint8_t h[32], uint8_t first)
{
	for (int i = 0; i < 32; i++)
		h[i] = (uint8_t)(first == 0xff ? 0xff : first + i);
}

static void load_policy(struct fl_policy *p, const char *yaml)
{
	ck_assert_msg(fl_policy_load_buffer(yaml, strlen(yaml), "test.yaml", p, err) == FL_OK, "%s",
	              err);
}

/* A fleet of n tenants "t00".., each labelled ring=canary when its number is
 * in canary (a comma-separated list of numbers, NULL for none), region=eu
 * when even and region=us when odd. */
struct fleet {
	size_t n;
	char **ids;
	struct fl_labels *labels;
	struct fl_waves_tenant *t;
};

static void fleet_make(struct fleet *f, size_t n, const char *canary)
{
	f->n = n;
	f->ids = fl_calloc(n, sizeof(char *));
	f->labels = fl_calloc(n, sizeof(struct fl_labels));
	f->t = fl_calloc(n, sizeof(struct fl_waves_tenant));
	for (size_t i = 0; i < n; i++) {
		char id[16], num[16];
		const char *p = canary;

		fl_test_fmt(id, sizeof(id), n > 100 ? "t%04zu" : "t%02zu", i);
		f->ids[i] = fl_strdup(id);
		fl_labels_init(&f->labels[i]);
		ck_assert(fl_labels_set(&f->labels[i], "region", i % 2 ? "us" : "eu", err) ==
		          FL_OK);
		fl_test_fmt(num, sizeof(num), "%zu", i);
		while (p != NULL && *p != '\0') {
			size_t len = strcspn(p, ",");

			if (len == strlen(num) && strncmp(p, num, len) == 0)
				ck_assert(fl_labels_set(&f->labels[i], "ring", "canary", err) ==
				          FL_OK);
			p += len;
			if (*p == ',')
				p++;
		}
		f->t[i].id = f->ids[i];
		f->t[i].labels = &f->labels[i];
	}
}

static void fleet_free(struct fleet *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->ids[i]);
		fl_labels_fini(&f->labels[i]);
	}
	free(f->ids);
	free(f->labels);
	free(f->t);
}

START_TEST(key_matches_sha256)
{
	/* python3: hashlib.sha256(bytes(range(1, 33)) + b"t00").hexdigest() */
	static const char want[] =
	    "e061bf779dc3528d607bb290200dfd4fc614a1cc444a9b5a1ec5930ce773fb82";
	uint8_t h[32], key[FL_WAVES_KEY_LEN];
	char hex[65];

	hash_seq(h, 1);
	fl_waves_key(h, "t00", key);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	ck_assert_str_eq(hex, want);
}
END_TEST

START_TEST(stable_order_golden)
{
	/* python3: sorted(ids, key=lambda i: (sha256(h + i.encode()).digest(), i)) */
	static const char *const want1[] = {"t07", "t01", "t10", "t09", "t06", "t08",
	                                    "t03", "t04", "t00", "t05", "t02", "t11"};
	static const char *const want2[] = {"t07", "t05", "t00", "t11", "t06", "t09",
	                                    "t02", "t08", "t01", "t10", "t04", "t03"};
	struct fl_policy p;
	struct fleet f;
	struct fl_waves w;
	uint8_t h[32];

	load_policy(&p, "name: p\nwaves:\n  - {name: all, select: {percent: 100}}\n");
	fleet_make(&f, 12, NULL);
	hash_seq(h, 1);
	ck_assert_msg(fl_waves_compute(h, &p, f.t, f.n, &w, err) == FL_OK, "%s", err);
	for (size_t i = 0; i < 12; i++) {
		ck_assert_str_eq(f.ids[w.order[i]], want1[i]);
		ck_assert_uint_eq(w.pos[w.order[i]], i);
	}
	fl_waves_fini(&w);
	/* another order hash: another order */
	hash_seq(h, 0xff);
	ck_assert_msg(fl_waves_compute(h, &p, f.t, f.n, &w, err) == FL_OK, "%s", err);
	for (size_t i = 0; i < 12; i++)
		ck_assert_str_eq(f.ids[w.order[i]], want2[i]);
	fl_waves_fini(&w);
	fleet_free(&f);
	fl_policy_fini(&p);
}
END_TEST

/* The order does not depend on the order the tenants are given in. */
START_TEST(order_independent_of_input)
{
	struct fl_policy p;
	struct fleet f;
	struct fl_waves a, b;
	struct fl_waves_tenant *rev;
	uint8_t h[32];

	load_policy(&p, "name: p\nwaves:\n  - {name: a, select: {percent: 25}}\n"
	                "  - {name: b, select: {percent: 100}}\n");
	fleet_make(&f, 40, NULL);
	rev = fl_calloc(f.n, sizeof(*rev));
	for (size_t i = 0; i < f.n; i++)
		rev[i] = f.t[f.n - 1 - i];
	hash_seq(h, 7);
	ck_assert(fl_waves_compute(h, &p, f.t, f.n, &a, err) == FL_OK);
	ck_assert(fl_waves_compute(h, &p, rev, f.n, &b, err) == FL_OK);
	for (size_t i = 0; i < f.n; i++) {
		ck_assert_str_eq(f.t[a.order[i]].id, rev[b.order[i]].id);
		ck_assert_uint_eq(a.wave[i], b.wave[f.n - 1 - i]);
	}
	ck_assert_uint_eq(a.counts[0], 10);
	ck_assert_uint_eq(a.counts[1], 30);
	fl_waves_fini(&a);
	fl_waves_fini(&b);
	free(rev);
	fleet_free(&f);
	fl_policy_fini(&p);
}
END_TEST

struct wcase {
	const char *name;
	const char *policy; /* YAML */
	size_t n;           /* fleet size */
	const char *canary; /* tenant numbers labelled ring=canary */
	size_t counts[4];   /* tenants per wave, then */
	size_t n_none;
};

#define P(...) "name: p\nwaves:\n" __VA_ARGS__

static const struct wcase cases[] = {
    {"cumulative after a labels canary (2%, then +8%, then the rest)",
     P("  - {name: c, select: {labels: {ring: canary}}}\n"
       "  - {name: e, select: {percent: 10}}\n"
       "  - {name: r, select: {percent: 100}}\n"),
     100,
     "3,50",
     {2, 8, 90},
     0},
    {"percent waves alone",
     P("  - {name: a, select: {percent: 10}}\n  - {name: b, select: {percent: 50}}\n"
       "  - {name: c, select: {percent: 100}}\n"),
     100,
     NULL,
     {10, 40, 50},
     0},
    {"an earlier wave already holding the percent: empty wave",
     P("  - {name: c, select: {labels: {ring: canary}}}\n"
       "  - {name: e, select: {percent: 10}}\n  - {name: r, select: {percent: 100}}\n"),
     10,
     "0,1,2",
     {3, 0, 7},
     0},
    {"rounding up: 10% of 31 is 4",
     P("  - {name: a, select: {percent: 10}}\n  - {name: b, select: {percent: 100}}\n"),
     31,
     NULL,
     {4, 27},
     0},
    {"rounding: 14.3% of 1000 is 143, not 144",
     P("  - {name: a, select: {percent: 14.3}}\n  - {name: b, select: {percent: 100}}\n"),
     1000,
     NULL,
     {143, 857},
     0},
    {"rounding: a sliver is one tenant",
     P("  - {name: a, select: {percent: 0.1}}\n  - {name: b, select: {percent: 100}}\n"),
     5,
     NULL,
     {1, 4},
     0},
    {"rounding: 66.7% of 3 is 3 (2.001 rounds up)",
     P("  - {name: a, select: {percent: 33.3}}\n  - {name: b, select: {percent: 66.7}}\n"),
     3,
     NULL,
     {1, 2},
     0},
    {"equal percents: the second is empty",
     P("  - {name: a, select: {percent: 50}}\n  - {name: b, select: {percent: 50}}\n"
       "  - {name: c, select: {percent: 100}}\n"),
     8,
     NULL,
     {4, 0, 4},
     0},
    {"labels only: the rest fall in no wave",
     P("  - {name: eu, select: {labels: {region: eu}}}\n"),
     9,
     NULL,
     {5},
     4},
    {"a labels wave takes only what earlier waves left",
     P("  - {name: c, select: {labels: {ring: canary}}}\n"
       "  - {name: eu, select: {labels: {region: eu}}}\n"
       "  - {name: r, select: {percent: 100}}\n"),
     10,
     "0,1,3",
     {3, 4, 3},
     0},
    {"tenant ids, then percent",
     P("  - {name: vip, select: {tenants: [t01, t05, t99]}}\n"
       "  - {name: r, select: {percent: 100}}\n"),
     10,
     NULL,
     {2, 8},
     0},
    {"percent, then labels, then percent: the labels wave takes from the rest",
     P("  - {name: a, select: {percent: 20}}\n  - {name: eu, select: {labels: {region: eu}}}\n"
       "  - {name: r, select: {percent: 100}}\n"),
     20,
     NULL,
     {4, 0 /* checked below */, 0},
     0},
    {"an empty selection", P("  - {name: a, select: {percent: 100}}\n"), 0, NULL, {0}, 0},
    {"one tenant, 1%",
     P("  - {name: a, select: {percent: 1}}\n  - {name: b, select: {percent: 100}}\n"),
     1,
     NULL,
     {1, 0},
     0},
};

START_TEST(table)
{
	const struct wcase *c = &cases[_i];
	struct fl_policy p;
	struct fleet f;
	struct fl_waves w;
	uint8_t h[32];
	size_t total = 0;

	load_policy(&p, c->policy);
	fleet_make(&f, c->n, c->canary);
	hash_seq(h, 3);
	ck_assert_msg(fl_waves_compute(h, &p, f.t, f.n, &w, err) == FL_OK, "%s: %s", c->name, err);
	ck_assert_uint_eq(w.n_waves, p.n_waves);
	if (strstr(c->name, "then labels, then percent") != NULL) {
		/* 4 by percent; the eu tenants among the other 16; the rest */
		size_t eu_left = 0;

		for (size_t i = 0; i < f.n; i++)
			if (w.wave[i] != 0 &&
			    strcmp(fl_labels_get(&f.labels[i], "region"), "eu") == 0)
				eu_left++;
		ck_assert_uint_eq(w.counts[0], 4);
		ck_assert_uint_eq(w.counts[1], eu_left);
		ck_assert_uint_eq(w.counts[2], 16 - eu_left);
	} else {
		for (size_t k = 0; k < p.n_waves; k++)
			ck_assert_msg(w.counts[k] == c->counts[k], "%s: wave %zu has %zu, not %zu",
			              c->name, k, w.counts[k], c->counts[k]);
	}
	ck_assert_msg(w.n_none == c->n_none, "%s: %zu in no wave", c->name, w.n_none);
	/* counts agree with the per-tenant waves */
	for (size_t k = 0; k < p.n_waves; k++) {
		size_t m = 0;

		for (size_t i = 0; i < f.n; i++)
			m += w.wave[i] == k;
		ck_assert_uint_eq(m, w.counts[k]);
		total += m;
	}
	ck_assert_uint_eq(total + w.n_none, f.n);
	/* every tenant is in the first wave whose labels or ids take it */
	for (size_t i = 0; i < f.n; i++)
		for (size_t k = 0; k < p.n_waves && k < w.wave[i]; k++) {
			const struct fl_wave_selector *s = &p.waves[k].select;

			if (s->kind == FL_SELECT_LABELS)
				ck_assert(!fl_labels_match(&f.labels[i], &s->labels));
		}
	/* percent waves take tenants in the stable order: no tenant in a later
	 * percent wave comes before one of an earlier percent wave */
	for (size_t a = 0; a < f.n; a++)
		for (size_t b = 0; b < f.n; b++) {
			uint32_t wa = w.wave[a], wb = w.wave[b];

			if (wa == FL_WAVES_NONE || wb == FL_WAVES_NONE || wa >= wb)
				continue;
			if (p.waves[wa].select.kind == FL_SELECT_PERCENT &&
			    p.waves[wb].select.kind == FL_SELECT_PERCENT)
				ck_assert_uint_lt(w.pos[a], w.pos[b]);
		}
	fl_waves_fini(&w);
	fleet_free(&f);
	fl_policy_fini(&p);
}
END_TEST

START_TEST(percent_takes_the_first_in_order)
{
	struct fl_policy p;
	struct fleet f;
	struct fl_waves w;
	uint8_t h[32];

	/* golden order for hash 1..32 (above): t07 t01 t10 t09 t06 ... */
	load_policy(&p, P("  - {name: c, select: {tenants: [t01]}}\n"
	                  "  - {name: a, select: {percent: 25}}\n"
	                  "  - {name: r, select: {percent: 100}}\n"));
	fleet_make(&f, 12, NULL);
	hash_seq(h, 1);
	ck_assert(fl_waves_compute(h, &p, f.t, f.n, &w, err) == FL_OK);
	ck_assert_uint_eq(w.wave[1], 0);   /* t01, by id */
	ck_assert_uint_eq(w.counts[1], 2); /* ceil(25% of 12) = 3, minus t01 */
	ck_assert_uint_eq(w.wave[7], 1);   /* t07: first in order */
	ck_assert_uint_eq(w.wave[10], 1);  /* t10: next after t01 (taken) */
	ck_assert_uint_eq(w.wave[9], 2);
	fl_waves_fini(&w);
	fleet_free(&f);
	fl_policy_fini(&p);
}
END_TEST

START_TEST(percent_counts)
{
	ck_assert_uint_eq(fl_waves_percent_count(10, 30), 3);
	ck_assert_uint_eq(fl_waves_percent_count(10, 31), 4);
	ck_assert_uint_eq(fl_waves_percent_count(14.3, 1000), 143);
	ck_assert_uint_eq(fl_waves_percent_count(0.1, 10000), 10);
	ck_assert_uint_eq(fl_waves_percent_count(0.01, 10000), 1);
	ck_assert_uint_eq(fl_waves_percent_count(0.011, 10000), 2);
	ck_assert_uint_eq(fl_waves_percent_count(100, 7), 7);
	ck_assert_uint_eq(fl_waves_percent_count(99.99, 7), 7);
	ck_assert_uint_eq(fl_waves_percent_count(50, 0), 0);
	ck_assert_uint_eq(fl_waves_percent_count(0, 10), 0);
	ck_assert_uint_eq(fl_waves_percent_count(1, 1), 1);
	ck_assert_uint_eq(fl_waves_percent_count(33.3, 3), 1);
	ck_assert_uint_eq(fl_waves_percent_count(70, 10), 7);
	ck_assert_uint_eq(fl_waves_percent_count(0.7, 1000), 7);
	ck_assert_uint_eq(fl_waves_percent_count(2.3, 100), 3); /* 2.3 * 100 = 229.99999999999997 */
	ck_assert_uint_eq(fl_waves_percent_count(5.1, 100), 6);
}
END_TEST

START_TEST(duplicate_refused)
{
	struct fl_policy p;
	struct fl_waves w;
	struct fl_waves_tenant t[3] = {{"a", NULL}, {"b", NULL}, {"a", NULL}};
	uint8_t h[32];

	load_policy(&p, P("  - {name: a, select: {percent: 100}}\n"));
	hash_seq(h, 1);
	ck_assert_int_eq(fl_waves_compute(h, &p, t, 3, &w, err), FL_EINVAL);
	ck_assert_msg(strstr(err, "'a'") != NULL && strstr(err, "twice") != NULL, "%s", err);
	ck_assert_ptr_null(w.wave);
	t[2].id = "";
	ck_assert_int_eq(fl_waves_compute(h, &p, t, 3, &w, err), FL_EINVAL);
	fl_policy_fini(&p);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("waves");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, key_matches_sha256);
	tcase_add_test(tc, stable_order_golden);
	tcase_add_test(tc, order_independent_of_input);
	tcase_add_loop_test(tc, table, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, percent_takes_the_first_in_order);
	tcase_add_test(tc, percent_counts);
	tcase_add_test(tc, duplicate_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
