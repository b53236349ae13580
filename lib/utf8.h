/* UTF-8 validation for files a user hands us. */
#ifndef FL_UTF8_H
#define FL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True if s[0..len) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF).
 * On false, *bad_offset (if not NULL) is the offset of the first bad byte. */
bool fl_utf8_valid(const char *s, size_t len, size_t *bad_offset);

#endif
