/* Durations as users write them: "500ms", "5s", "10m", "1h", "1m30s"; "0" is zero. */
#ifndef FL_DURATION_H
#define FL_DURATION_H

#include <stdint.h>

#include "err.h"

/* Parse into milliseconds. FL_EPARSE on anything else, with the reason in errbuf. */
enum fl_err fl_duration_parse(const char *text, int64_t *ms, char *errbuf)
    __attribute__((warn_unused_result));
/* Format ms compactly ("500ms", "5s", "2m30s") into out. */
void fl_duration_format(int64_t ms, char *out, unsigned outlen);

#define FL_LOCK_TIMEOUT_MAX_MS 3600000    /* 1h: longer is not a lock timeout */
#define FL_PG_TIMEOUT_MAX_MS   2147483647 /* the most PostgreSQL's timeouts take (24d20h) */

/*
 * Range checks, for every place a duration is read (flags, directives,
 * config): a value out of range is refused, never clamped. FL_EPARSE with
 * errbuf naming what (e.g. "lock timeout") and the range, for the caller to
 * prefix with where it came from.
 */
enum fl_err fl_duration_check_range(const char *what, int64_t ms, int64_t min, int64_t max,
                                    char *errbuf) __attribute__((warn_unused_result));
/* A lock timeout (--lock-timeout, `-- flotilla:lock-timeout`): 1ms to 1h.
 * 0 would turn the lock timeout off, the main safety promise: refused. */
enum fl_err fl_duration_check_lock_timeout(int64_t ms, char *errbuf)
    __attribute__((warn_unused_result));

#endif
