/* HTTP bearer tokens (http_token.h). */
#include "http_token.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_CONTEXT     "flotilla http token v1"
#define TOKEN_PAYLOAD_MAX 96

static size_t signed_text(const char *payload, size_t n, uint8_t *out)
{
	memcpy(out, TOKEN_CONTEXT, sizeof(TOKEN_CONTEXT)); /* with its NUL */
	memcpy(out + sizeof(TOKEN_CONTEXT), payload, n);
	return sizeof(TOKEN_CONTEXT) + n;
}

void fl_http_token_make(const struct fl_key *key, int64_t expires_at_ms,
                        char out[FL_HTTP_TOKEN_MAX])
{
	char payload[TOKEN_PAYLOAD_MAX], id[FL_KEY_ID_LEN + 1];
	uint8_t msg[sizeof(TOKEN_CONTEXT) + TOKEN_PAYLOAD_MAX], sig[FL_KEY_SIGNATURE_BYTES];
	size_t n, k;

	fl_key_id(key->pk, id);
	n = (size_t)snprintf(payload, sizeof(payload), "%lld|%s", (long long)expires_at_ms, id);
	fl_key_sign(key, msg, signed_text(payload, n, msg), sig);
	sodium_bin2base64(out, FL_HTTP_TOKEN_MAX, (const uint8_t *)payload, n,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	k = strlen(out);
	out[k++] = '.';
	sodium_bin2base64(out + k, FL_HTTP_TOKEN_MAX - k, sig, sizeof(sig),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

enum fl_err fl_http_token_check(const char *token, const uint8_t (*keys)[FL_KEY_PUBLIC_BYTES],
                                size_t n_keys, int64_t now_ms, size_t *which, char *errbuf)
{
	const char *dot = strchr(token, '.');
	char payload[TOKEN_PAYLOAD_MAX + 1], id[FL_KEY_ID_LEN + 1], *end;
	uint8_t sig[FL_KEY_SIGNATURE_BYTES], msg[sizeof(TOKEN_CONTEXT) + TOKEN_PAYLOAD_MAX];
	size_t n = 0, ns = 0;
	long long expiry;
	const char *bar;

	if (dot == NULL ||
	    sodium_base642bin((uint8_t *)payload, TOKEN_PAYLOAD_MAX, token, (size_t)(dot - token),
	                      NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    sodium_base642bin(sig, sizeof(sig), dot + 1, strlen(dot + 1), NULL, &ns, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    ns != sizeof(sig))
		return fl_errf(errbuf, FL_EAUTH, "token: not a flotilla http token");
	payload[n] = '\0';
	bar = memchr(payload, '|', n);
	if (bar == NULL || payload[0] < '1' || payload[0] > '9' ||
	    strlen(bar + 1) != FL_KEY_ID_LEN || strlen(payload) != n)
		return fl_errf(errbuf, FL_EAUTH, "token: not a flotilla http token");
	expiry = strtoll(payload, &end, 10);
	if (end != bar)
		return fl_errf(errbuf, FL_EAUTH, "token: not a flotilla http token");
	for (size_t i = 0; i < n_keys; i++) {
		fl_key_id(keys[i], id);
		if (strcmp(id, bar + 1) != 0)
			continue;
		if (!fl_key_verify(keys[i], msg, signed_text(payload, n, msg), sig))
			return fl_errf(errbuf, FL_EAUTH, "token: signature of %s does not verify",
			               id);
		if (expiry <= now_ms)
			return fl_errf(errbuf, FL_EAUTH, "token: expired");
		if (expiry - now_ms > FL_HTTP_TOKEN_TTL_MAX_MS)
			return fl_errf(errbuf, FL_EAUTH, "token: lives longer than 90 days");
		*which = i;
		return FL_OK;
	}
	return fl_errf(errbuf, FL_EAUTH, "token: signed by %s, not an operator of this coordinator",
	               bar + 1);
}
