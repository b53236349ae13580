#include "retry.h"

#include <sodium.h>

#include "clock.h"

void fl_retry_start(struct fl_retry *r, const struct fl_retry_policy *policy)
{
	r->policy = *policy;
	if (r->policy.attempts < 1)
		r->policy.attempts = 1;
	r->attempt = 0;
	r->started_ms = fl_now_ms();
}

bool fl_retry_next(struct fl_retry *r, int64_t *delay_ms)
{
	int64_t ceiling = r->policy.base_delay_ms, elapsed, delay;

	r->attempt++;
	if (r->attempt >= r->policy.attempts)
		return false;
	for (int i = 1; i < r->attempt && ceiling < r->policy.max_delay_ms; i++)
		ceiling *= 2;
	if (ceiling > r->policy.max_delay_ms)
		ceiling = r->policy.max_delay_ms;
	/* Full jitter, with a floor of half the ceiling so retries still back off. */
	delay = ceiling / 2 +
	        (ceiling > 1 ? (int64_t)randombytes_uniform((uint32_t)(ceiling / 2 + 1)) : 0);
	elapsed = fl_now_ms() - r->started_ms;
	if (r->policy.budget_ms > 0 && elapsed + delay > r->policy.budget_ms)
		return false;
	*delay_ms = delay;
	return true;
}
