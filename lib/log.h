/*
 * One line per event. Two ways in:
 *
 * - fl_log_*(about, fmt, ...): the process-wide logger of the CLI, to stderr,
 *   plain or as JSON lines (fl_log_set_json), above fl_log_threshold.
 * - fl_logger_*(lg, about, fmt, ...): a logger the caller passes in, so that
 *   code serving many tenants at once (the engine and drivers inside the
 *   agent) has no global that differs per tenant. A struct fl_logger carries
 *   its own threshold, a sink (callback + arg) and a context (the tenant) that
 *   every line is about. lg NULL means the process-wide logger.
 *
 * In both, the level is checked before the arguments are evaluated. `about`
 * names what the line is about within the context (a migration, a database)
 * and may be NULL.
 *
 * Threads: fl_log_* may be called from any thread (one fputs per line). A
 * logger's sink is called on whichever thread logs, including a thread that
 * cancels a session; it must be safe for that. The logger must outlive
 * every object it was given to.
 */
#ifndef FL_LOG_H
#define FL_LOG_H

#include <stdbool.h>
#include <stddef.h>

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

/* A finished line: context is the logger's (may be NULL), about the caller's
 * (may be NULL), msg the formatted text (one line, at most 2047 bytes). */
typedef void (*fl_log_sink_fn)(void *arg, enum fl_log_level level, const char *context,
                               const char *about, const char *msg);

struct fl_logger {
	enum fl_log_level level; /* lines above it are dropped unformatted */
	fl_log_sink_fn sink;     /* NULL: stderr, formatted as fl_log_emit does */
	void *arg;               /* for sink */
	const char *context;     /* e.g. the tenant; every line is about it; may be NULL */
};

/* A logger that writes to stderr as fl_log_* does, warnings and errors only. */
#define FL_LOGGER_INIT                                                                             \
	{                                                                                          \
		FL_LOG_WARN, NULL, NULL, NULL                                                      \
	}

/* Whether lg (NULL: the process-wide logger) wants lines at level. */
static inline bool fl_logger_wants(const struct fl_logger *lg, enum fl_log_level level)
{
	return level <= (lg != NULL ? lg->level : fl_log_threshold);
}

/* Format and hand the line to lg's sink (NULL lg: fl_log_emit). Call through
 * the macros below, which check the level first. */
void fl_logger_emit(const struct fl_logger *lg, enum fl_log_level level, const char *about,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define fl_logger_at(lg, level, about, ...)                                                        \
	do {                                                                                       \
		const struct fl_logger *fl_lg_ = (lg);                                             \
		if (fl_logger_wants(fl_lg_, (level)))                                              \
			fl_logger_emit(fl_lg_, (level), (about), __VA_ARGS__);                     \
	} while (0)
#define fl_logger_error(lg, about, ...) fl_logger_at(lg, FL_LOG_ERROR, about, __VA_ARGS__)
#define fl_logger_warn(lg, about, ...)  fl_logger_at(lg, FL_LOG_WARN, about, __VA_ARGS__)
#define fl_logger_info(lg, about, ...)  fl_logger_at(lg, FL_LOG_INFO, about, __VA_ARGS__)
#define fl_logger_debug(lg, about, ...) fl_logger_at(lg, FL_LOG_DEBUG, about, __VA_ARGS__)

#endif
