/* One-time enrollment tokens (enroll_token.h). */
#include "enroll_token.h"

#include <sodium.h>
#include <string.h>

#define RAW_LEN 32

void fl_enroll_token_new(char text[FL_ENROLL_TOKEN_LEN + 1], uint8_t hash[32])
{
	uint8_t raw[RAW_LEN];

	randombytes_buf(raw, sizeof(raw));
	memcpy(text, FL_ENROLL_TOKEN_PREFIX, strlen(FL_ENROLL_TOKEN_PREFIX));
	sodium_bin2base64(text + strlen(FL_ENROLL_TOKEN_PREFIX),
	                  FL_ENROLL_TOKEN_LEN + 1 - strlen(FL_ENROLL_TOKEN_PREFIX), raw,
	                  sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	crypto_hash_sha256(hash, (const uint8_t *)text, FL_ENROLL_TOKEN_LEN);
}

enum fl_err fl_enroll_token_hash(const char *text, uint8_t hash[32])
{
	size_t plen = strlen(FL_ENROLL_TOKEN_PREFIX);
	uint8_t raw[RAW_LEN];
	size_t n = 0;

	if (text == NULL || strlen(text) != FL_ENROLL_TOKEN_LEN ||
	    strncmp(text, FL_ENROLL_TOKEN_PREFIX, plen) != 0 ||
	    sodium_base642bin(raw, sizeof(raw), text + plen, FL_ENROLL_TOKEN_LEN - plen, NULL, &n,
	                      NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != RAW_LEN)
		return FL_EPARSE;
	sodium_memzero(raw, sizeof(raw));
	crypto_hash_sha256(hash, (const uint8_t *)text, FL_ENROLL_TOKEN_LEN);
	return FL_OK;
}
