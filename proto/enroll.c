/*
 * Enrollment tokens (enroll.h). The table is a small array: at most
 * FL_ENROLL_TOKENS_MAX entries, searched whole on every take so that the
 * time taken says nothing of which hash matched.
 */
#include "enroll.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

#define PREFIX_LEN (sizeof(FL_ENROLL_TOKEN_PREFIX) - 1)

_Static_assert(PREFIX_LEN + 43 == FL_ENROLL_TOKEN_TEXT_LEN, "token text length");

struct fl_enroll_tokens {
	struct fl_enroll_token items[FL_ENROLL_TOKENS_MAX];
	size_t n;
};

static void ensure_sodium(void)
{
	if (sodium_init() < 0)
		abort();
}

void fl_enroll_token_new(char text[FL_ENROLL_TOKEN_TEXT_LEN + 1], uint8_t hash[FL_ENROLL_HASH_LEN])
{
	uint8_t token[FL_ENROLL_TOKEN_BYTES];

	ensure_sodium();
	randombytes_buf(token, sizeof(token));
	memcpy(text, FL_ENROLL_TOKEN_PREFIX, PREFIX_LEN);
	sodium_bin2base64(text + PREFIX_LEN, FL_ENROLL_TOKEN_TEXT_LEN + 1 - PREFIX_LEN, token,
	                  sizeof(token), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	crypto_hash_sha256(hash, token, sizeof(token));
	sodium_memzero(token, sizeof(token));
}

enum fl_err fl_enroll_token_hash(const char *text, uint8_t hash[FL_ENROLL_HASH_LEN], char *errbuf)
{
	uint8_t token[FL_ENROLL_TOKEN_BYTES];
	size_t n = 0;
	const char *end = NULL;

	ensure_sodium();
	if (text == NULL || strlen(text) != FL_ENROLL_TOKEN_TEXT_LEN ||
	    memcmp(text, FL_ENROLL_TOKEN_PREFIX, PREFIX_LEN) != 0 ||
	    sodium_base642bin(token, sizeof(token), text + PREFIX_LEN,
	                      FL_ENROLL_TOKEN_TEXT_LEN - PREFIX_LEN, NULL, &n, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != sizeof(token) || end != text + FL_ENROLL_TOKEN_TEXT_LEN) {
		sodium_memzero(token, sizeof(token));
		return fl_errf(errbuf, FL_EAUTH,
		               "not an enrollment token (expected %s and 43 base64url characters)",
		               FL_ENROLL_TOKEN_PREFIX);
	}
	crypto_hash_sha256(hash, token, sizeof(token));
	sodium_memzero(token, sizeof(token));
	return FL_OK;
}

void fl_enroll_token_fini(struct fl_enroll_token *t)
{
	fl_labels_fini(&t->labels);
	sodium_memzero(t->hash, sizeof(t->hash));
}

struct fl_enroll_tokens *fl_enroll_tokens_new(void)
{
	return fl_calloc(1, sizeof(struct fl_enroll_tokens));
}

static void drop(struct fl_enroll_tokens *t, size_t i)
{
	fl_enroll_token_fini(&t->items[i]);
	t->items[i] = t->items[--t->n];
	memset(&t->items[t->n], 0, sizeof(t->items[0]));
}

void fl_enroll_tokens_free(struct fl_enroll_tokens *t)
{
	if (t == NULL)
		return;
	while (t->n > 0)
		drop(t, t->n - 1);
	sodium_memzero(t, sizeof(*t));
	free(t);
}

static void drop_expired(struct fl_enroll_tokens *t, int64_t now_ms)
{
	for (size_t i = t->n; i-- > 0;)
		if (t->items[i].expires_at_ms <= now_ms)
			drop(t, i);
}

enum fl_err fl_enroll_tokens_add(struct fl_enroll_tokens *t, const uint8_t hash[FL_ENROLL_HASH_LEN],
                                 const char *name, const struct fl_labels *labels,
                                 int64_t expires_at_ms, int64_t now_ms, char *errbuf)
{
	struct fl_enroll_token *e;

	if (!fl_peer_name_valid(name))
		return fl_errf(errbuf, FL_EINVAL,
		               "invalid agent name '%.*s': use 1 to %d of A-Z a-z 0-9 . _ @ : + -",
		               FL_PEER_NAME_MAX, name ? name : "", FL_PEER_NAME_MAX);
	if (expires_at_ms <= now_ms || expires_at_ms - now_ms > FL_ENROLL_TTL_MAX_MS)
		return fl_errf(errbuf, FL_EINVAL,
		               "enrollment token expiry must be after now and within 366 days");
	drop_expired(t, now_ms);
	for (size_t i = 0; i < t->n; i++)
		if (sodium_memcmp(t->items[i].hash, hash, FL_ENROLL_HASH_LEN) == 0)
			return fl_errf(errbuf, FL_ESTATE, "enrollment token kept already");
	if (t->n >= FL_ENROLL_TOKENS_MAX)
		return fl_errf(errbuf, FL_ENOTSUP,
		               "too many outstanding enrollment tokens (limit %d)",
		               FL_ENROLL_TOKENS_MAX);
	e = &t->items[t->n++];
	memcpy(e->hash, hash, FL_ENROLL_HASH_LEN);
	snprintf(e->name, sizeof(e->name), "%s", name);
	if (labels)
		fl_labels_copy(&e->labels, labels);
	else
		fl_labels_init(&e->labels);
	e->expires_at_ms = expires_at_ms;
	return FL_OK;
}

enum fl_err fl_enroll_tokens_take(struct fl_enroll_tokens *t,
                                  const uint8_t hash[FL_ENROLL_HASH_LEN], int64_t now_ms,
                                  struct fl_enroll_token *out, char *errbuf)
{
	long found = -1;

	/* Every entry: no early exit on a (hashed) secret. */
	for (size_t i = 0; i < t->n; i++)
		if (sodium_memcmp(t->items[i].hash, hash, FL_ENROLL_HASH_LEN) == 0)
			found = (long)i;
	if (found < 0)
		return fl_errf(errbuf, FL_EAUTH, "unknown or already used enrollment token");
	if (t->items[found].expires_at_ms <= now_ms) {
		drop(t, (size_t)found);
		return fl_errf(errbuf, FL_EAUTH, "enrollment token expired");
	}
	*out = t->items[found];
	fl_labels_init(&t->items[found].labels); /* moved to out */
	drop(t, (size_t)found);
	return FL_OK;
}

size_t fl_enroll_tokens_count(const struct fl_enroll_tokens *t)
{
	return t->n;
}
