/*
 * One-time enrollment tokens (Hello.enrollment_token): "fle1." then 43
 * base64url characters without padding (32 random bytes). The coordinator
 * shows a token once, when it is created, and keeps only the SHA-256 of its
 * text. When B's proto/enroll.h lands with the same format, these two
 * functions give way to it.
 *
 * Pure functions; any thread.
 */
#ifndef FL_ENROLL_TOKEN_H
#define FL_ENROLL_TOKEN_H

#include <stdint.h>

#include "err.h"

#define FL_ENROLL_TOKEN_PREFIX "fle1."
#define FL_ENROLL_TOKEN_LEN    48 /* prefix 5 + 43 */

/* A new random token into text (NUL-terminated) and its hash. */
void fl_enroll_token_new(char text[FL_ENROLL_TOKEN_LEN + 1], uint8_t hash[32]);
/* The hash of a token's text; FL_EPARSE when text is not a token's shape. */
enum fl_err fl_enroll_token_hash(const char *text, uint8_t hash[32])
    __attribute__((warn_unused_result));

#endif
