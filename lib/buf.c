#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

void fl_buf_init(struct fl_buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void fl_buf_fini(struct fl_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void fl_buf_reset(struct fl_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static enum fl_err reserve(struct fl_buf *b, size_t extra)
{
	size_t want;

	if (extra > (size_t)-1 - b->len - 1)
		return FL_EINVAL;
	want = b->len + extra + 1;
	if (b->max && want > b->max + 1)
		return FL_EINVAL;
	b->data = fl_grow(b->data, &b->cap, want, 1);
	return FL_OK;
}

enum fl_err fl_buf_append(struct fl_buf *b, const void *data, size_t len)
{
	if (reserve(b, len) != FL_OK)
		return FL_EINVAL;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return FL_OK;
}

enum fl_err fl_buf_puts(struct fl_buf *b, const char *s)
{
	return fl_buf_append(b, s, strlen(s));
}

enum fl_err fl_buf_vprintf(struct fl_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || reserve(b, (size_t)n) != FL_OK)
		return FL_EINVAL;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return FL_OK;
}

enum fl_err fl_buf_printf(struct fl_buf *b, const char *fmt, ...)
{
	va_list ap;
	enum fl_err rv;

	va_start(ap, fmt);
	rv = fl_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rv;
}

const char *fl_buf_str(const struct fl_buf *b)
{
	return b->data ? b->data : "";
}

char *fl_buf_detach(struct fl_buf *b)
{
	char *s = b->data ? b->data : fl_strdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}
