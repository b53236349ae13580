/* Minimal JSON writing for --json output and JSON log lines. */
#ifndef FL_JSON_H
#define FL_JSON_H

#include "buf.h"

/* Append s as a quoted JSON string, escaping as RFC 8259 requires. */
void fl_json_string(struct fl_buf *out, const char *s);

#endif
