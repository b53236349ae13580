/*
 * Durations: one or more <digits><unit> parts, units h, m, s, ms, each at most
 * once and from largest to smallest ("1h30m", "1m30s", "500ms"); "0" alone is
 * zero. No sign, no fractions, no spaces: a config typo fails loudly rather
 * than meaning something else. Values are milliseconds in an int64_t and
 * overflow is an error.
 */
#include "duration.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define QUOTE_MAX 64 /* longest input quoted back in a message */

static const struct unit {
	const char *name;
	int64_t ms;
} units[] = {
    {"h", 3600000},
    {"m", 60000},
    {"s", 1000},
    {"ms", 1},
};
#define N_UNITS (sizeof(units) / sizeof(units[0]))

static enum fl_err bad(char *errbuf, const char *text, const char *why)
{
	return fl_errf(errbuf, FL_EPARSE, "invalid duration '%.*s': %s", QUOTE_MAX, text, why);
}

enum fl_err fl_duration_parse(const char *text, int64_t *ms, char *errbuf)
{
	const char *p = text;
	int64_t total = 0;
	size_t next_unit = 0; /* units before this one are used up */

	if (text == NULL || *text == '\0')
		return fl_errf(errbuf, FL_EPARSE, "invalid duration '': empty");
	if (*p == '-')
		return bad(errbuf, text, "negative");
	if (strcmp(text, "0") == 0) {
		*ms = 0;
		return FL_OK;
	}
	while (*p != '\0') {
		int64_t n = 0;
		size_t len, u;

		if (*p < '0' || *p > '9')
			return bad(errbuf, text, "expected a number");
		while (*p >= '0' && *p <= '9') {
			if (n > (INT64_MAX - (*p - '0')) / 10)
				return bad(errbuf, text, "too large");
			n = n * 10 + (*p - '0');
			p++;
		}
		len = strcspn(p, "0123456789");
		if (len == 0)
			return bad(errbuf, text, "missing unit");
		for (u = 0; u < N_UNITS; u++)
			if (strlen(units[u].name) == len && memcmp(units[u].name, p, len) == 0)
				break;
		if (u == N_UNITS) {
			char why[64];
			snprintf(why, sizeof(why), "unknown unit '%.*s' (use h, m, s or ms)",
			         (int)(len > 16 ? 16 : len), p);
			return bad(errbuf, text, why);
		}
		if (u < next_unit)
			return bad(errbuf, text,
			           "units must go from largest to smallest, once each");
		if (n > INT64_MAX / units[u].ms || total > INT64_MAX - n * units[u].ms)
			return bad(errbuf, text, "too large");
		total += n * units[u].ms;
		next_unit = u + 1;
		p += len;
	}
	*ms = total;
	return FL_OK;
}

void fl_duration_format(int64_t ms, char *out, unsigned outlen)
{
	uint64_t v, h, m, s;
	size_t used = 0;
	int n;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (ms == 0) {
		snprintf(out, outlen, "0");
		return;
	}
	/* Negative values are never parsed, but say what they are rather than wrap. */
	if (ms < 0) {
		v = (uint64_t)(-(ms + 1)) + 1;
		n = snprintf(out, outlen, "-");
		used = (size_t)n;
	} else {
		v = (uint64_t)ms;
	}
	h = v / 3600000;
	m = v / 60000 % 60;
	s = v / 1000 % 60;
	v %= 1000;
	if (h && used < outlen)
		used += (size_t)snprintf(out + used, outlen - used, "%lluh", (unsigned long long)h);
	if (m && used < outlen)
		used += (size_t)snprintf(out + used, outlen - used, "%llum", (unsigned long long)m);
	if (s && used < outlen)
		used += (size_t)snprintf(out + used, outlen - used, "%llus", (unsigned long long)s);
	if (v && used < outlen)
		snprintf(out + used, outlen - used, "%llums", (unsigned long long)v);
}

enum fl_err fl_duration_check_range(const char *what, int64_t ms, int64_t min, int64_t max,
                                    char *errbuf)
{
	char v[48], lo[48], hi[48];

	if (ms >= min && ms <= max)
		return FL_OK;
	fl_duration_format(ms, v, sizeof(v));
	fl_duration_format(min, lo, sizeof(lo));
	fl_duration_format(max, hi, sizeof(hi));
	return fl_errf(errbuf, FL_EPARSE, "%s %s is out of range: give one from %s to %s", what, v,
	               lo, hi);
}

enum fl_err fl_duration_check_lock_timeout(int64_t ms, char *errbuf)
{
	if (ms == 0)
		return fl_errf(errbuf, FL_EPARSE,
		               "lock timeout 0 would turn the lock timeout off: give one from 1ms "
		               "to 1h");
	return fl_duration_check_range("lock timeout", ms, 1, FL_LOCK_TIMEOUT_MAX_MS, errbuf);
}
