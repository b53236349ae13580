#include "err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

const char *fl_strerror(enum fl_err err)
{
	switch (err) {
	case FL_OK:
		return "ok";
	case FL_EINVAL:
		return "invalid argument";
	case FL_ENOENT:
		return "not found";
	case FL_EIO:
		return "input/output error";
	case FL_EPARSE:
		return "parse error";
	case FL_EGRAPH:
		return "invalid migration graph";
	case FL_ECONNECT:
		return "cannot connect to the database";
	case FL_EAUTH:
		return "authentication failed";
	case FL_ESQL:
		return "SQL error";
	case FL_ERETRY:
		return "transient failure";
	case FL_ECONNLOST:
		return "connection lost";
	case FL_ETIMEDOUT:
		return "timed out";
	case FL_EFAILED:
		return "a failed migration blocks deploy";
	case FL_ECHECKSUM:
		return "migration modified after it was applied";
	case FL_EVERIFY:
		return "verification failed";
	case FL_ESTATE:
		return "not possible in the current state";
	case FL_ENOTSUP:
		return "not supported";
	case FL_ECANCELED:
		return "canceled";
	case FL_ELOCKED:
		return "migration lock held by another deployer";
	case FL_EDB:
		return "database error in flotilla's bookkeeping";
	case FL_EBUSY:
		return "the database stayed busy: nothing applied, try again";
	case FL_EREFUSED:
		return "the peer refused our envelope";
	}
	return "unknown error";
}

enum fl_err fl_errf(char *errbuf, enum fl_err err, const char *fmt, ...)
{
	va_list ap;

	if (errbuf == NULL)
		return err;
	va_start(ap, fmt);
	vsnprintf(errbuf, FL_ERRBUF_SIZE, fmt, ap);
	va_end(ap);
	return err;
}

const char *fl_err_errno(int errnum, char *buf, size_t size)
{
	if (strerror_r(errnum, buf, size) != 0)
		snprintf(buf, size, "error %d", errnum);
	return buf;
}

void fl_err_prefix(char *errbuf, const char *fmt, ...)
{
	char old[FL_ERRBUF_SIZE];
	va_list ap;
	int n;

	if (errbuf == NULL)
		return;
	memcpy(old, errbuf, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	va_start(ap, fmt);
	n = vsnprintf(errbuf, FL_ERRBUF_SIZE, fmt, ap);
	va_end(ap);
	if (n < 0 || old[0] == '\0' || (size_t)n + 3 >= FL_ERRBUF_SIZE)
		return;
	/* Append ": old", cut to fit: a long message loses its tail, never the buffer. */
	size_t used = (size_t)n, room = FL_ERRBUF_SIZE - used - 3, len = strlen(old);
	memcpy(errbuf + used, ": ", 2);
	memcpy(errbuf + used + 2, old, len < room ? len : room);
	errbuf[used + 2 + (len < room ? len : room)] = '\0';
}

const char *fl_err_quote(char *out, size_t outlen, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	bool utf8 = fl_utf8_valid(s, len, NULL);
	size_t i, n = 0, esc = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		/* Cut only between characters; 12 leaves room for one more, escaped. */
		if ((!utf8 || (c & 0xc0) != 0x80) && n + 12 >= outlen) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		/* C1 controls U+0080..U+009F are C2 80..C2 9F: escape both bytes. */
		if (utf8 && c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)
			esc = 2;
		if (esc || c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 0xf];
			if (esc)
				esc--;
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return out;
}
