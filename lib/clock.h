/*
 * Time: the monotonic clock for durations and deadlines, a sleep, and the
 * absolute time a pthread_cond_timedwait takes.
 */
#ifndef FL_CLOCK_H
#define FL_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t fl_now_ms(void); /* monotonic clock */
int64_t fl_now_us(void); /* monotonic clock */
void fl_sleep_ms(int64_t ms);
int64_t fl_wall_ms(void); /* CLOCK_REALTIME: ms since the epoch, for timestamps */

/* The time ms (>= 0) from now on clock, as pthread_cond_timedwait wants it:
 * clock is the one the condition variable was made with (CLOCK_REALTIME
 * unless its attributes chose CLOCK_MONOTONIC). */
struct timespec fl_timespec_in(clockid_t clock, int64_t ms);

#endif
