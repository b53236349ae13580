#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "buf.h"
#include "json.h"

#define LINE_MAX_BYTES 2048

enum fl_log_level fl_log_threshold = FL_LOG_WARN;
static bool json_lines;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void fl_log_set_level(enum fl_log_level level)
{
	fl_log_threshold = level;
}

void fl_log_set_json(bool json)
{
	json_lines = json;
}

/* The stderr sink: "flotilla: warning: context: about: msg", or a JSON line. */
static void to_stderr(enum fl_log_level level, const char *context, const char *about,
                      const char *msg)
{
	struct fl_buf line = FL_BUF_INIT;

	if (json_lines) {
		struct timespec ts;
		struct tm tm;
		char when[40];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fl_buf_printf(&line, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\"", when,
		              ts.tv_nsec / 1000000, level_names[level]);
		if (context) {
			fl_buf_puts(&line, ",\"context\":");
			fl_json_string(&line, context);
		}
		if (about) {
			fl_buf_puts(&line, ",\"about\":");
			fl_json_string(&line, about);
		}
		fl_buf_puts(&line, ",\"msg\":");
		fl_json_string(&line, msg);
		fl_buf_puts(&line, "}\n");
	} else {
		fl_buf_puts(&line, "flotilla: ");
		if (level != FL_LOG_INFO)
			fl_buf_printf(&line, "%s: ", level_names[level]);
		if (context)
			fl_buf_printf(&line, "%s: ", context);
		if (about)
			fl_buf_printf(&line, "%s: ", about);
		fl_buf_printf(&line, "%s\n", msg);
	}
	fputs(fl_buf_str(&line), stderr);
	fl_buf_fini(&line);
}

void fl_log_emit(enum fl_log_level level, const char *about, const char *fmt, ...)
{
	char msg[LINE_MAX_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	to_stderr(level, NULL, about, msg);
}

void fl_logger_emit(const struct fl_logger *lg, enum fl_log_level level, const char *about,
                    const char *fmt, ...)
{
	char msg[LINE_MAX_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (lg != NULL && lg->sink != NULL)
		lg->sink(lg->arg, level, lg->context, about, msg);
	else
		to_stderr(level, lg != NULL ? lg->context : NULL, about, msg);
}
