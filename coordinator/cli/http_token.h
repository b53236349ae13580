/*
 * Bearer tokens for the coordinator's HTTP endpoint (coordinator/http.h) on a
 * non-loopback address: an operator key signs an expiry; the coordinator
 * accepts a token that an operator key of its running config signed, until
 * it expires. `flotilla http-token` makes one. Shared by the CLI and the
 * coordinator (the flotilla_render library). docs/CONFIG.md, "http_listen".
 */
#ifndef FL_HTTP_TOKEN_H
#define FL_HTTP_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "keys.h"

#define FL_HTTP_TOKEN_MAX 256
/* The longest a token may live. */
#define FL_HTTP_TOKEN_TTL_MAX_MS (90LL * 24 * 3600 * 1000)

/* A bearer token for key (an operator key with its seed), valid until
 * expires_at_ms: base64url(expiry "|" key id) "." base64url(Ed25519
 * signature of "flotilla http token v1\0" followed by the first part's
 * decoded text). out holds FL_HTTP_TOKEN_MAX bytes. */
void fl_http_token_make(const struct fl_key *key, int64_t expires_at_ms,
                        char out[FL_HTTP_TOKEN_MAX]);
/* Check token against the operators' keys at now_ms: FL_OK and the signer's
 * index in keys (*which); FL_EAUTH (bad, unknown signer, expired, or lives
 * longer than the maximum) with the reason in errbuf. */
enum fl_err fl_http_token_check(const char *token, const uint8_t (*keys)[FL_KEY_PUBLIC_BYTES],
                                size_t n_keys, int64_t now_ms, size_t *which, char *errbuf)
    __attribute__((warn_unused_result));

#endif
