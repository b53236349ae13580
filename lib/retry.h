/*
 * Bounded retry with exponential backoff and full jitter, for transient
 * failures (lock timeout, serialization failure, deadlock, lost connection).
 * Bounded twice: by attempts and by total elapsed time, so a migration can
 * never wait forever on a busy table.
 */
#ifndef FL_RETRY_H
#define FL_RETRY_H

#include <stdbool.h>
#include <stdint.h>

struct fl_retry_policy {
	int attempts;          /* total tries, first included; 1 = no retry */
	int64_t base_delay_ms; /* first backoff ceiling; doubles each time */
	int64_t max_delay_ms;  /* ceiling for one backoff */
	int64_t budget_ms;     /* total time across tries; 0 = unbounded */
};

#define FL_RETRY_POLICY_DEFAULT                                                                    \
	{                                                                                          \
		10, 100, 5000, 120000                                                              \
	}

struct fl_retry {
	struct fl_retry_policy policy;
	int attempt;        /* tries made so far */
	int64_t started_ms; /* monotonic */
};

void fl_retry_start(struct fl_retry *r, const struct fl_retry_policy *policy);
/* Count a failed try. True, with the delay to wait, if another one fits. */
bool fl_retry_next(struct fl_retry *r, int64_t *delay_ms);

#endif
