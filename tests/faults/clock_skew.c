/*
 * clock_skew: an LD_PRELOAD shim for the fault suite (tests/faults/run_faults.sh)
 * that moves a process's wall clock by FL_FAULT_SKEW_MS milliseconds (may be
 * negative): clock_gettime on CLOCK_REALTIME and its coarse variant,
 * gettimeofday and time. Monotonic clocks are left alone, as a skewed host's
 * are. The project has no clock hook of its own, and faketime is not
 * installed: this gives a real agent a skewed clock without either.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static long long skew_ms(void)
{
	const char *s = getenv("FL_FAULT_SKEW_MS");

	return s != NULL ? strtoll(s, NULL, 10) : 0;
}

static int real_clock_gettime(clockid_t id, struct timespec *ts)
{
	static clock_gettime_fn fn;

	if (fn == NULL)
		fn = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
	return fn(id, ts);
}

static void shift(struct timespec *ts)
{
	long long ns = (long long)ts->tv_nsec + (skew_ms() % 1000) * 1000000LL;

	ts->tv_sec += (time_t)(skew_ms() / 1000);
	while (ns < 0) {
		ns += 1000000000LL;
		ts->tv_sec--;
	}
	while (ns >= 1000000000LL) {
		ns -= 1000000000LL;
		ts->tv_sec++;
	}
	ts->tv_nsec = (long)ns;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int rv = real_clock_gettime(id, ts);

	if (rv == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		shift(ts);
	return rv;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec ts;

	(void)tz;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return -1;
	tv->tv_sec = ts.tv_sec; /* glibc declares tv nonnull */
	tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
	return 0;
}

time_t time(time_t *out)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return (time_t)-1;
	if (out != NULL)
		*out = ts.tv_sec;
	return ts.tv_sec;
}
