/*
 * A growable byte buffer, always NUL-terminated, as git's strbuf and curl's
 * dynbuf. `max` caps growth for buffers fed by a peer or a file: appends past
 * it fail with FL_EINVAL and leave the buffer unchanged. Storage is the
 * caller's: FL_BUF_INIT, then fl_buf_fini.
 */
#ifndef FL_BUF_H
#define FL_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

struct fl_buf {
	char *data; /* NULL until the first append */
	size_t len;
	size_t cap;
	size_t max; /* 0: unlimited */
};

#define FL_BUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0, 0                                                                      \
	}

void fl_buf_init(struct fl_buf *b, size_t max);
void fl_buf_fini(struct fl_buf *b);
void fl_buf_reset(struct fl_buf *b);
enum fl_err fl_buf_append(struct fl_buf *b, const void *data, size_t len);
enum fl_err fl_buf_puts(struct fl_buf *b, const char *s);
enum fl_err fl_buf_printf(struct fl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum fl_err fl_buf_vprintf(struct fl_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* The contents as a C string; "" for an empty buffer, never NULL. */
const char *fl_buf_str(const struct fl_buf *b);
/* Hand the heap string to the caller (never NULL) and reset the buffer. */
char *fl_buf_detach(struct fl_buf *b);

#endif
