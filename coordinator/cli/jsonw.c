/* The --json writer (jsonw.h). */
#include "jsonw.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "json.h"

void jw_init(struct jw *w)
{
	fl_buf_init(&w->b, 0);
	w->depth = 0;
	w->first[0] = true;
	w->close[0] = '\0';
}

void jw_fini(struct jw *w)
{
	fl_buf_fini(&w->b);
}

void jw_print(struct jw *w)
{
	assert(w->depth == 0);
	printf("%s\n", fl_buf_str(&w->b));
	fflush(stdout);
}

/* The comma and the key, if any, before a value. */
static void lead(struct jw *w, const char *key)
{
	if (!w->first[w->depth])
		fl_buf_puts(&w->b, ",");
	w->first[w->depth] = false;
	if (key != NULL) {
		fl_json_string(&w->b, key);
		fl_buf_puts(&w->b, ":");
	}
}

static void open_level(struct jw *w, const char *key, char open, char close)
{
	lead(w, key);
	fl_buf_printf(&w->b, "%c", open);
	assert(w->depth + 1 < JW_DEPTH_MAX);
	w->depth++;
	w->first[w->depth] = true;
	w->close[w->depth] = close;
}

void jw_obj(struct jw *w, const char *key)
{
	open_level(w, key, '{', '}');
}

void jw_arr(struct jw *w, const char *key)
{
	open_level(w, key, '[', ']');
}

void jw_end(struct jw *w)
{
	assert(w->depth > 0);
	fl_buf_printf(&w->b, "%c", w->close[w->depth]);
	w->depth--;
}

void jw_str(struct jw *w, const char *key, const char *s)
{
	lead(w, key);
	if (s == NULL)
		fl_buf_puts(&w->b, "null");
	else
		fl_json_string(&w->b, s);
}

void jw_int(struct jw *w, const char *key, int64_t v)
{
	lead(w, key);
	fl_buf_printf(&w->b, "%" PRId64, v);
}

void jw_uint(struct jw *w, const char *key, uint64_t v)
{
	lead(w, key);
	fl_buf_printf(&w->b, "%" PRIu64, v);
}

void jw_double(struct jw *w, const char *key, double v)
{
	lead(w, key);
	if (isfinite(v))
		fl_buf_printf(&w->b, "%.15g", v);
	else
		fl_buf_puts(&w->b, "null");
}

void jw_bool(struct jw *w, const char *key, bool v)
{
	lead(w, key);
	fl_buf_puts(&w->b, v ? "true" : "false");
}

void jw_null(struct jw *w, const char *key)
{
	lead(w, key);
	fl_buf_puts(&w->b, "null");
}

void jw_hex(struct jw *w, const char *key, const uint8_t *data, size_t len)
{
	lead(w, key);
	if (data == NULL || len == 0) {
		fl_buf_puts(&w->b, "null");
		return;
	}
	fl_buf_puts(&w->b, "\"");
	for (size_t i = 0; i < len; i++)
		fl_buf_printf(&w->b, "%02x", data[i]);
	fl_buf_puts(&w->b, "\"");
}
