/*
 * Labels: `key=value` pairs on tenants (`ring=canary`, `region=eu`), and the
 * selectors that match them. Tenants get their labels from the agent's own
 * config, so an agent can check for itself that a tenant is selected.
 *
 * A label set is kept sorted by key, keys unique, so that two sets compare
 * and pack (protobuf) the same way whatever order a file listed them in.
 * Keys: [a-z0-9] first, then [a-z0-9_.-/], 1 to 63 bytes; values: printable
 * UTF-8 without control characters, 0 to 255 bytes.
 *
 * Ownership: a set owns its strings; fl_labels_fini frees them. No shared
 * state; thread-compatible.
 */
#ifndef FL_LABEL_H
#define FL_LABEL_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define FL_LABEL_KEY_MAX   63
#define FL_LABEL_VALUE_MAX 255
#define FL_LABELS_MAX      64 /* labels on one tenant or in one selector */

struct fl_label {
	char *key;
	char *value;
};

struct fl_labels {
	struct fl_label *items; /* sorted by key, keys unique */
	size_t n;
};

void fl_labels_init(struct fl_labels *l);
void fl_labels_fini(struct fl_labels *l);
/* Add or replace key's value, keeping the set sorted. FL_EINVAL (errbuf says
 * why, naming the key) for a bad key or value, or when the set is full. */
enum fl_err fl_labels_set(struct fl_labels *l, const char *key, const char *value, char *errbuf)
    __attribute__((warn_unused_result));
/* key's value, or NULL. */
const char *fl_labels_get(const struct fl_labels *l, const char *key);
/* Whether every label of want is in have with the same value (an empty want matches). */
bool fl_labels_match(const struct fl_labels *have, const struct fl_labels *want);
void fl_labels_copy(struct fl_labels *dst, const struct fl_labels *src);
/* "ring=canary,region=eu" into out (cut with "..." if too long); returns out. */
const char *fl_labels_format(const struct fl_labels *l, char *out, size_t outlen);
/* Parse "k=v[,k=v...]" (the CLI's --select and --labels). FL_EINVAL with errbuf. */
enum fl_err fl_labels_parse(const char *text, struct fl_labels *out, char *errbuf)
    __attribute__((warn_unused_result));

#endif
