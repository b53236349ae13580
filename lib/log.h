/*
 * One line per event to stderr, plain or as JSON lines. The level is checked
 * before the arguments are evaluated. `about` names what the line is about
 * (a migration, a tenant, an agent) and may be NULL.
 */
#ifndef FL_LOG_H
#define FL_LOG_H

#include <stdbool.h>

enum fl_log_level {
	FL_LOG_ERROR = 0,
	FL_LOG_WARN = 1,
	FL_LOG_INFO = 2,
	FL_LOG_DEBUG = 3,
};

extern enum fl_log_level fl_log_threshold;

void fl_log_set_level(enum fl_log_level level);
void fl_log_set_json(bool json);
void fl_log_emit(enum fl_log_level level, const char *about, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define fl_log_at(level, about, ...)                                                               \
	do {                                                                                       \
		if ((level) <= fl_log_threshold)                                                   \
			fl_log_emit((level), (about), __VA_ARGS__);                                \
	} while (0)
#define fl_log_error(about, ...) fl_log_at(FL_LOG_ERROR, about, __VA_ARGS__)
#define fl_log_warn(about, ...)  fl_log_at(FL_LOG_WARN, about, __VA_ARGS__)
#define fl_log_info(about, ...)  fl_log_at(FL_LOG_INFO, about, __VA_ARGS__)
#define fl_log_debug(about, ...) fl_log_at(FL_LOG_DEBUG, about, __VA_ARGS__)

#endif
