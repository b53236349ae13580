/*
 * Label sets: a sorted array of owned key/value strings, keys unique. Sets are
 * small (at most FL_LABELS_MAX), so insertion shifts the array and lookup is
 * a binary search; the order is what makes two sets compare, format and pack
 * the same whatever order they were written in.
 */
#include "label.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "utf8.h"

#define QUOTE_LEN 96 /* bytes of user text quoted back in a message */

void fl_labels_init(struct fl_labels *l)
{
	l->items = NULL;
	l->n = 0;
}

void fl_labels_fini(struct fl_labels *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	fl_labels_init(l);
}

static bool key_char(unsigned char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	return !first && (c == '_' || c == '.' || c == '-' || c == '/');
}

static enum fl_err check_key(const char *key, size_t len, char *errbuf)
{
	char q[QUOTE_LEN];
	size_t i;

	if (len == 0)
		return fl_errf(errbuf, FL_EINVAL, "empty label key");
	if (len > FL_LABEL_KEY_MAX)
		return fl_errf(errbuf, FL_EINVAL, "label key '%s' is longer than %d bytes",
		               fl_err_quote(q, sizeof(q), key, len), FL_LABEL_KEY_MAX);
	for (i = 0; i < len; i++)
		if (!key_char((unsigned char)key[i], i == 0))
			return fl_errf(errbuf, FL_EINVAL,
			               "invalid label key '%s': expected a-z and 0-9, then also "
			               "'_', '.', '-' and '/'",
			               fl_err_quote(q, sizeof(q), key, len));
	return FL_OK;
}

static enum fl_err check_value(const char *key, const char *value, size_t len, char *errbuf)
{
	char q[QUOTE_LEN];
	size_t i;

	if (len > FL_LABEL_VALUE_MAX)
		return fl_errf(errbuf, FL_EINVAL, "label '%s': value longer than %d bytes", key,
		               FL_LABEL_VALUE_MAX);
	if (!fl_utf8_valid(value, len, NULL))
		return fl_errf(errbuf, FL_EINVAL, "label '%s': value '%s' is not UTF-8", key,
		               fl_err_quote(q, sizeof(q), value, len));
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];

		/* C0, DEL, and C1 (U+0080..U+009F, which is C2 80..C2 9F in UTF-8) */
		if (c < 0x20 || c == 0x7f ||
		    (c == 0xc2 && i + 1 < len && (unsigned char)value[i + 1] < 0xa0))
			return fl_errf(errbuf, FL_EINVAL,
			               "label '%s': value '%s' has a control character", key,
			               fl_err_quote(q, sizeof(q), value, len));
	}
	return FL_OK;
}

/* Where key is, or where it would go (*found false). */
static size_t find(const struct fl_labels *l, const char *key, bool *found)
{
	size_t lo = 0, hi = l->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->items[mid].key, key);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* key and value are key_len and value_len bytes, not NUL-terminated. A key
 * already in the set gets the new value, or is an error unless replace. */
static enum fl_err set_n(struct fl_labels *l, const char *key, size_t key_len, const char *value,
                         size_t value_len, bool replace, char *errbuf)
{
	char *k;
	size_t at;
	bool found;
	enum fl_err rv;

	if ((rv = check_key(key, key_len, errbuf)) != FL_OK)
		return rv;
	k = fl_strndup(key, key_len); /* a valid key holds no NUL */
	if ((rv = check_value(k, value, value_len, errbuf)) != FL_OK)
		goto out;
	at = find(l, k, &found);
	if (found && !replace) {
		rv = fl_errf(errbuf, FL_EINVAL, "label '%s' is given twice", k);
		goto out;
	}
	if (found) {
		free(l->items[at].value);
		l->items[at].value = fl_strndup(value, value_len);
		goto out;
	}
	if (l->n >= FL_LABELS_MAX) {
		rv = fl_errf(errbuf, FL_EINVAL, "label '%s': too many labels (at most %d)", k,
		             FL_LABELS_MAX);
		goto out;
	}
	l->items = fl_realloc(l->items, (l->n + 1) * sizeof(*l->items));
	memmove(&l->items[at + 1], &l->items[at], (l->n - at) * sizeof(*l->items));
	l->items[at].key = k;
	l->items[at].value = fl_strndup(value, value_len);
	l->n++;
	return FL_OK;
out:
	free(k);
	return rv;
}

enum fl_err fl_labels_set(struct fl_labels *l, const char *key, const char *value, char *errbuf)
{
	if (key == NULL || value == NULL)
		return fl_errf(errbuf, FL_EINVAL, "label without a key or value");
	return set_n(l, key, strlen(key), value, strlen(value), true, errbuf);
}

const char *fl_labels_get(const struct fl_labels *l, const char *key)
{
	bool found;
	size_t at = find(l, key, &found);

	return found ? l->items[at].value : NULL;
}

bool fl_labels_match(const struct fl_labels *have, const struct fl_labels *want)
{
	size_t i;

	for (i = 0; i < want->n; i++) {
		const char *v = fl_labels_get(have, want->items[i].key);

		if (v == NULL || strcmp(v, want->items[i].value) != 0)
			return false;
	}
	return true;
}

void fl_labels_copy(struct fl_labels *dst, const struct fl_labels *src)
{
	size_t i;

	fl_labels_init(dst);
	if (src->n == 0)
		return;
	dst->items = fl_calloc(src->n, sizeof(*dst->items));
	for (i = 0; i < src->n; i++) {
		dst->items[i].key = fl_strdup(src->items[i].key);
		dst->items[i].value = fl_strdup(src->items[i].value);
	}
	dst->n = src->n;
}

/* Append s to out[*used..outlen - 1); false once something did not fit. */
static bool put(char *out, size_t outlen, size_t *used, const char *s)
{
	size_t len = strlen(s), room = outlen - 1 - *used;

	if (len > room) {
		memcpy(out + *used, s, room);
		*used += room;
		return false;
	}
	memcpy(out + *used, s, len);
	*used += len;
	return true;
}

const char *fl_labels_format(const struct fl_labels *l, char *out, size_t outlen)
{
	size_t used = 0, keep, i;
	bool whole = true;

	if (outlen == 0)
		return out;
	for (i = 0; i < l->n && whole; i++)
		whole = (i == 0 || put(out, outlen, &used, ",")) &&
		        put(out, outlen, &used, l->items[i].key) && put(out, outlen, &used, "=") &&
		        put(out, outlen, &used, l->items[i].value);
	out[used] = '\0';
	if (whole)
		return out;
	if (outlen < 4) {
		out[0] = '\0';
		return out;
	}
	/* Cut between UTF-8 characters, leaving room for "...". */
	keep = used > outlen - 4 ? outlen - 4 : used;
	while (keep > 0 && ((unsigned char)out[keep] & 0xc0) == 0x80)
		keep--;
	memcpy(out + keep, "...", 4);
	return out;
}

enum fl_err fl_labels_parse(const char *text, struct fl_labels *out, char *errbuf)
{
	const char *p = text;
	enum fl_err rv = FL_OK;
	char q[QUOTE_LEN];

	fl_labels_init(out);
	if (text == NULL || *text == '\0')
		return FL_OK;
	for (;;) {
		const char *end = strchr(p, ','), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);

		eq = memchr(p, '=', len);
		if (eq == NULL) {
			rv = fl_errf(errbuf, FL_EINVAL, "'%s': expected key=value",
			             fl_err_quote(q, sizeof(q), p, len));
			goto fail;
		}
		rv = set_n(out, p, (size_t)(eq - p), eq + 1, len - (size_t)(eq - p) - 1, false,
		           errbuf);
		if (rv != FL_OK)
			goto fail;
		if (end == NULL)
			return FL_OK;
		p = end + 1;
	}
fail:
	fl_labels_fini(out);
	return rv;
}
