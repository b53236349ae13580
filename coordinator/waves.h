/*
 * Wave membership (docs/POLICY.md, "Waves and selection"): which wave of a
 * rollout's policy each selected tenant belongs to. Pure: no store, no
 * clock, no I/O; the scheduler calls it once, at start, on the selection it
 * took then (a snapshot: tenants appearing later are not part of it).
 *
 * The selection is put in a stable order: by key = SHA-256(order hash ||
 * tenant id), ties (never seen) by tenant id. The same order always gives
 * the same membership, on any machine; another order (a new nonce, another
 * release) gives another, so the same tenants are not always first.
 *
 * Then each wave, in policy order, takes from the tenants no earlier wave
 * took:
 *   - labels: those carrying every label;
 *   - tenants: those listed;
 *   - percent: the next ones in the stable order until ceil(percent * N /
 *     100) of the selection's N tenants are in this wave or an earlier one,
 *     of any kind (after a canary wave holding 2% of N, `percent: 10` adds
 *     8%); none when earlier waves hold that many already.
 * Tenants no wave takes are counted in n_none: the scheduler refuses such a
 * start ("end with a wave of percent: 100").
 *
 * Ownership: struct fl_waves owns its arrays; fl_waves_fini frees them.
 * Thread-compatible, no shared state.
 */
#ifndef FL_WAVES_H
#define FL_WAVES_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "label.h"
#include "policy.h"

#define FL_WAVES_KEY_LEN 32
#define FL_WAVES_NONE    UINT32_MAX /* wave[] of a tenant no wave takes */

/* One selected tenant: its id and its labels (the agent's config's). */
struct fl_waves_tenant {
	const char *id;
	const struct fl_labels *labels;
};

struct fl_waves {
	size_t n;       /* tenants given */
	uint32_t *wave; /* per tenant given: its wave index, or FL_WAVES_NONE */
	uint32_t *pos;  /* per tenant given: its place in the stable order, from 0 */
	size_t *order;  /* the tenants given (indices), in the stable order */
	size_t *counts; /* per wave of the policy: tenants it took */
	size_t n_waves; /* the policy's */
	size_t n_none;  /* tenants no wave took */
};

/*
 * Compute membership for the n selected tenants t under policy p and the
 * order whose hash is order_hash; out is initialised by the call. Errors:
 * FL_EINVAL (a tenant id given twice or empty, more than UINT32_MAX - 1
 * tenants, a policy with no wave: errbuf names it); out is then empty.
 */
enum fl_err fl_waves_compute(const uint8_t order_hash[32], const struct fl_policy *p,
                             const struct fl_waves_tenant *t, size_t n, struct fl_waves *out,
                             char *errbuf) __attribute__((warn_unused_result));
void fl_waves_fini(struct fl_waves *w);

/* The sort key of a tenant: SHA-256(order_hash || tenant_id). */
void fl_waves_key(const uint8_t order_hash[32], const char *tenant_id,
                  uint8_t key[FL_WAVES_KEY_LEN]);

/*
 * ceil(percent * n / 100), at most n: how many of n tenants a cumulative
 * `percent` covers. Percents are written in decimal and most are not exact
 * in binary (14.3 is 14.300000000000000710...): a product within a
 * billionth of a whole number counts as that number, so 14.3% of 1000 is
 * 143, not 144.
 */
size_t fl_waves_percent_count(double percent, size_t n);

#endif
