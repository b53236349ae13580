/*
 * A small JSON writer for the fleet commands' --json output: objects and
 * arrays nest, commas are placed for the caller, strings are escaped by
 * lib/json.c. Field names follow proto/flotilla.proto (snake_case, times as
 * *_at_ms, durations as *_ms), so the coordinator's future /api/v1 can
 * return the same documents; enum values are the spellings the CLI prints
 * ("rolled-back"), hashes lowercase hex, public keys base64.
 *
 * Usage: jw_init, jw_obj(w, NULL) ... jw_end(w), then jw_print (stdout, one
 * line) and jw_fini. A key is given inside objects and NULL inside arrays.
 */
#ifndef FL_CLI_JSONW_H
#define FL_CLI_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JW_DEPTH_MAX 32

struct jw {
	struct fl_buf b;
	int depth;
	bool first[JW_DEPTH_MAX]; /* nothing written yet at this depth */
	char close[JW_DEPTH_MAX]; /* '}' or ']': what ends this depth */
};

void jw_init(struct jw *w);
void jw_fini(struct jw *w);
/* Write the document and a newline to stdout. */
void jw_print(struct jw *w);

void jw_obj(struct jw *w, const char *key);
void jw_arr(struct jw *w, const char *key);
void jw_end(struct jw *w); /* closes the innermost object or array */

void jw_str(struct jw *w, const char *key, const char *s); /* NULL writes null */
void jw_int(struct jw *w, const char *key, int64_t v);
void jw_uint(struct jw *w, const char *key, uint64_t v);
void jw_double(struct jw *w, const char *key, double v);
void jw_bool(struct jw *w, const char *key, bool v);
void jw_null(struct jw *w, const char *key);
/* len bytes as lowercase hex; NULL or len 0 writes null. */
void jw_hex(struct jw *w, const char *key, const uint8_t *data, size_t len);

#endif
