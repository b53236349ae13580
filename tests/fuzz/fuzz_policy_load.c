/*
 * fuzz_policy_load: rollout policy files through fl_policy_load_buffer, so
 * the config loader's lists of mappings, labels, numbers, sections and table
 * rules run as policies use them. Seeds: tests/fuzz/corpus/policy_load/,
 * from deploy/examples/policies/ and tests/data/policy/.
 *
 * Oracles besides the sanitizers (which also catch leaks on every path):
 * every failure explains itself, names the file and leaves the policy empty;
 * every policy that loads passes fl_policy_check, copies into one that does
 * too, and answers the budget and window questions consistently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "policy.h"

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_policy_load: %s: ", #cond);                          \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void check_loaded(const struct fl_policy *p)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_policy c;
	size_t i;
	int m;

	CHECK(fl_policy_check(p, err) == FL_OK, "loaded but refused: %s", err);
	CHECK(p->n_waves > 0 && p->name != NULL, "no waves or no name");
	fl_policy_copy(&c, p);
	CHECK(fl_policy_check(&c, err) == FL_OK, "the copy is refused: %s", err);
	CHECK(c.n_waves == p->n_waves && c.waves != p->waves, "a shallow copy");
	fl_policy_fini(&c);
	for (i = 0; i < p->n_waves; i++) {
		const struct fl_wave *w = &p->waves[i];

		/* one more failure never un-trips a budget */
		for (uint32_t f = 0; f < 8; f++)
			CHECK(!fl_wave_budget_exceeded(w, f, 7) ||
			          fl_wave_budget_exceeded(w, f + 1, 7),
			      "budget of wave %zu not monotonic at %u", i, f);
		CHECK(!fl_wave_budget_exceeded(w, 0, 0) && !fl_wave_budget_exceeded(w, 0, 100),
		      "wave %zu trips with no failure", i);
	}
	for (i = 0; i < p->n_windows; i++) {
		const struct fl_window *w = &p->windows[i];
		int open = 0, want = (w->end_minute - w->start_minute + 1440) % 1440;

		for (m = 0; m < 1440; m++)
			open += fl_window_open(w, m);
		CHECK(open == want, "window %zu open %d minutes, expected %d", i, open, want);
		CHECK(!fl_window_open(w, -1) && !fl_window_open(w, 1440), "minute out of the day");
		/* a tenant with the window's labels may start while it is open */
		for (m = 0; m < 1440; m += 7)
			CHECK(!fl_window_open(w, m) || fl_policy_may_start(p, &w->labels, m),
			      "window %zu is open at %d, yet its tenants may not start", i, m);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_policy p;
	enum fl_err rv;

	memset(&p, 0xa5, sizeof(p)); /* the loader initialises p */
	rv = fl_policy_load_buffer((const char *)data, size, "fuzz.yaml", &p, err);
	if (rv != FL_OK) {
		CHECK(rv == FL_EPARSE, "error %d: %s", (int)rv, err);
		CHECK(strncmp(err, "'fuzz.yaml'", 11) == 0,
		      "the message does not name the file: %s", err);
		CHECK(strchr(err, '\n') == NULL, "a message of more than one line: %s", err);
		CHECK(p.name == NULL && p.waves == NULL && p.n_waves == 0 && p.checks == NULL &&
		          p.windows == NULL,
		      "a failed load left values behind");
		fl_policy_fini(&p);
		return 0;
	}
	CHECK(err[0] == '\0', "success with a message: %s", err);
	check_loaded(&p);
	fl_policy_fini(&p);
	fl_policy_fini(&p);
	return 0;
}
