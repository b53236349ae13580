#include "json.h"

void fl_json_string(struct fl_buf *out, const char *s)
{
	fl_buf_puts(out, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fl_buf_puts(out, "\\\"");
			break;
		case '\\':
			fl_buf_puts(out, "\\\\");
			break;
		case '\n':
			fl_buf_puts(out, "\\n");
			break;
		case '\r':
			fl_buf_puts(out, "\\r");
			break;
		case '\t':
			fl_buf_puts(out, "\\t");
			break;
		default:
			if (*p < 0x20)
				fl_buf_printf(out, "\\u%04x", *p);
			else
				fl_buf_append(out, p, 1);
		}
	}
	fl_buf_puts(out, "\"");
}
