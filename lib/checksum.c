/*
 * Prisma's checksum, as prisma-engines computes and compares it
 * (schema-engine/connectors/schema-connector/src/checksum.rs):
 *
 * - recorded as lowercase hex SHA-256 of the script, two digits per byte;
 * - a recorded checksum matches if the script hashes to it as is, with every
 *   "\r\n" turned into "\n", or with every "\n" turned into "\r\n" (git may
 *   have changed line endings since the migration was applied);
 * - a recorded checksum that is not empty and not 64 characters long was
 *   written by an old engine that printed each byte without zero padding
 *   (prisma-engines#1887), so it is compared in that format.
 *
 * The line-ending variants are hashed as streams, without copying the script.
 */
#include "checksum.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

enum eol {
	EOL_ASIS,    /* the bytes as they are */
	EOL_TO_LF,   /* "\r\n" -> "\n" */
	EOL_TO_CRLF, /* "\n" -> "\r\n", also after an existing "\r", as Rust's str::replace */
};

static void ensure_sodium(void)
{
	/* Idempotent and thread-safe; hashing needs no randomness, but the API
	 * asks for it before any other call. */
	if (sodium_init() < 0)
		abort();
}

static void digest(const unsigned char *p, size_t len, enum eol eol,
                   unsigned char out[crypto_hash_sha256_BYTES])
{
	crypto_hash_sha256_state st;
	size_t start = 0, i;

	crypto_hash_sha256_init(&st);
	if (eol == EOL_ASIS) {
		crypto_hash_sha256_update(&st, p, len);
	} else {
		for (i = 0; i < len; i++) {
			if (p[i] != '\n')
				continue;
			if (eol == EOL_TO_LF) {
				if (i > start && p[i - 1] == '\r') {
					crypto_hash_sha256_update(&st, p + start, i - 1 - start);
					start = i; /* the '\n' goes out with the next run */
				}
			} else {
				crypto_hash_sha256_update(&st, p + start, i - start);
				crypto_hash_sha256_update(&st, (const unsigned char *)"\r", 1);
				start = i;
			}
		}
		crypto_hash_sha256_update(&st, p + start, len - start);
	}
	crypto_hash_sha256_final(&st, out);
}

static void format_hex(const unsigned char *d, char out[FL_CHECKSUM_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < crypto_hash_sha256_BYTES; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 0xf];
	}
	out[FL_CHECKSUM_HEX_LEN] = '\0';
}

/* The pre-#1887 format: each byte as {:x}, so 0x0a is "a" and 0x00 is "0". */
static void format_legacy(const unsigned char *d, char out[FL_CHECKSUM_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = 0;

	for (i = 0; i < crypto_hash_sha256_BYTES; i++) {
		if (d[i] >> 4)
			out[n++] = hex[d[i] >> 4];
		out[n++] = hex[d[i] & 0xf];
	}
	out[n] = '\0';
}

void fl_checksum_compute(const void *bytes, size_t len, char out[FL_CHECKSUM_HEX_LEN + 1])
{
	unsigned char d[crypto_hash_sha256_BYTES];

	ensure_sodium();
	digest(bytes, len, EOL_ASIS, d);
	format_hex(d, out);
}

bool fl_checksum_matches(const char *script, size_t len, const char *recorded)
{
	static const enum eol variants[] = {EOL_ASIS, EOL_TO_LF, EOL_TO_CRLF};
	const unsigned char *p = (const unsigned char *)script;
	unsigned char d[crypto_hash_sha256_BYTES];
	char text[FL_CHECKSUM_HEX_LEN + 1];
	size_t rlen, v;
	bool legacy, has_lf;

	if (recorded == NULL)
		return false;
	rlen = strlen(recorded);
	legacy = rlen != 0 && rlen != FL_CHECKSUM_HEX_LEN;
	if (rlen > FL_CHECKSUM_HEX_LEN)
		return false; /* neither format is that long */
	has_lf = memchr(script, '\n', len) != NULL;
	ensure_sodium();
	for (v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		if (variants[v] != EOL_ASIS && !has_lf)
			break; /* same bytes as the first try */
		digest(p, len, variants[v], d);
		if (legacy)
			format_legacy(d, text);
		else
			format_hex(d, text);
		if (strcmp(text, recorded) == 0)
			return true;
	}
	return false;
}
