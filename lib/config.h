/*
 * Declarative YAML configuration, in the manner of pgbouncer's CF tables: each
 * config is one table of keys (name, type, default, bounds, flags, help) with
 * the offset of each value in the caller's struct. The loader reads one YAML
 * document whose top level is a mapping and fills the struct; nothing else in
 * flotilla reads config files.
 *
 * Strictness is the point: an unknown key, a duplicate, a wrong type, a value
 * out of bounds or a missing required key is an error naming the file, the
 * line and column, and the key. Anchors, aliases and tags are refused (no
 * billion laughs), files are capped at FL_CONFIG_MAX_FILE bytes and lists at
 * FL_CONFIG_MAX_LIST items. Keys are flat; a name with one dot ("tls.cert")
 * is read from a one-level section (`tls: {cert: ...}`). A table can splice
 * in another table (FL_CONFIG_INCLUDE), so a daemon's table embeds the shared
 * ones, e.g. fl_wire_config_table.
 *
 * Target field types, by key type:
 *   FL_CONFIG_STRING       char *                 (heap; NULL when unset)
 *   FL_CONFIG_INT          int64_t
 *   FL_CONFIG_BOOL         bool                   (true | false)
 *   FL_CONFIG_DURATION     int64_t milliseconds   ("500ms", "5m", "1h30m")
 *   FL_CONFIG_SIZE         uint64_t bytes         ("4096", "4KiB", "64MiB", "1GiB")
 *   FL_CONFIG_ENUM         int                    (index into choices)
 *   FL_CONFIG_STRING_LIST  struct fl_config_strings
 *   FL_CONFIG_PUBKEY       struct fl_config_pubkey  (44-char base64 Ed25519)
 *   FL_CONFIG_PUBKEY_LIST  struct fl_config_pubkeys (no duplicates)
 *
 * Thread safety: the functions keep no global state; a target belongs to one
 * thread while it is loaded or freed.
 */
#ifndef FL_CONFIG_H
#define FL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FL_CONFIG_MAX_FILE   (1024 * 1024) /* bytes of YAML */
#define FL_CONFIG_MAX_LIST   1024          /* items in one list */
#define FL_CONFIG_MAX_DEPTH  2             /* top-level mapping plus one section */
#define FL_CONFIG_PUBKEY_LEN 32            /* crypto_sign_PUBLICKEYBYTES */

enum fl_config_type {
	FL_CONFIG_END = 0, /* terminates a table */
	FL_CONFIG_STRING,
	FL_CONFIG_INT,
	FL_CONFIG_BOOL,
	FL_CONFIG_DURATION,
	FL_CONFIG_SIZE,
	FL_CONFIG_ENUM,
	FL_CONFIG_STRING_LIST,
	FL_CONFIG_PUBKEY,
	FL_CONFIG_PUBKEY_LIST,
	FL_CONFIG_INCLUDE, /* splice `include` in, its offsets relative to `offset` */
};

/* Key flags. */
#define FL_CONFIG_REQUIRED   0x1u /* the file must set it; `def` is then NULL */
#define FL_CONFIG_RELOADABLE 0x2u /* may change on SIGHUP (see fl_config_check_reload) */
#define FL_CONFIG_NONEMPTY   0x4u /* strings and lists: "" or [] is an error */

struct fl_config_strings {
	char **items; /* heap, each heap */
	size_t n;
};

struct fl_config_pubkey {
	bool set;
	uint8_t key[FL_CONFIG_PUBKEY_LEN];
};

struct fl_config_pubkeys {
	/* heap: n contiguous keys, the layout fl_release_verify takes */
	uint8_t (*keys)[FL_CONFIG_PUBKEY_LEN];
	size_t n;
};

struct fl_config_key;

/* An extra check on a parsed value; `value` points to a value of the key's
 * target type. Returns false to refuse it, with a short reason in `why`
 * (FL_ERRBUF_SIZE bytes), e.g. "expected a URL such as tcp://host:7400". */
typedef bool (*fl_config_check_fn)(const struct fl_config_key *key, const void *value, char *why);

struct fl_config_key {
	const char *name; /* "clock_skew", or "section.key" */
	enum fl_config_type type;
	unsigned flags;
	size_t offset; /* offsetof(struct target, field) */
	/* The default, written as in a file ("1MiB", "5m", "peers.seq"); parsed
	 * and checked like a file's value. NULL: no default (zero, NULL, unset).
	 * Lists always start empty: NULL. */
	const char *def;
	/* Bounds, inclusive, for INT, DURATION (ms) and SIZE (bytes); ignored
	 * when both are 0. */
	int64_t min, max;
	const char *const *choices;          /* ENUM: NULL-terminated spellings */
	fl_config_check_fn check;            /* optional */
	const char *help;                    /* one line, for docs and --help */
	const struct fl_config_key *include; /* INCLUDE only */
};

/*
 * Load `path` (at most FL_CONFIG_MAX_FILE bytes) into target. target is
 * uninitialised storage for the table's fields: every field is set, first to
 * its default, then from the file. On success the caller owns what target
 * holds and releases it with fl_config_fini. On failure target's fields are
 * already released (and zero), and errbuf says
 * "'agent.yaml':7:1: unknown key 'trusted_relase_keys'".
 *
 * Errors: FL_EIO (cannot read), FL_EPARSE (everything about the contents).
 */
enum fl_err fl_config_load_file(const char *path, const struct fl_config_key *table, void *target,
                                char *errbuf) __attribute__((warn_unused_result));

/* The same from memory; `name` stands for the file in messages. text need not
 * be NUL-terminated. */
enum fl_err fl_config_load_buffer(const char *text, size_t len, const char *name,
                                  const struct fl_config_key *table, void *target, char *errbuf)
    __attribute__((warn_unused_result));

/* Set every field of target to its default, as loading an empty file would
 * (required keys stay unset); release with fl_config_fini. A default that
 * does not parse is a bug in the table and aborts. */
void fl_config_defaults(const struct fl_config_key *table, void *target);

/* Free the strings and lists target holds and zero them; safe to repeat. */
void fl_config_fini(const struct fl_config_key *table, void *target);

/* Before swapping in a reloaded config: FL_ESTATE if a key without
 * FL_CONFIG_RELOADABLE differs between cur and next, with errbuf naming it
 * ("'key_file' cannot change on reload: restart instead"). */
enum fl_err fl_config_check_reload(const struct fl_config_key *table, const void *cur,
                                   const void *next, char *errbuf)
    __attribute__((warn_unused_result));

/* Formatting for messages and docs: "64MiB", "4096" (largest exact unit). */
void fl_config_format_size(uint64_t bytes, char *out, size_t outlen);

/* "string", "size", "public key list"...: the type as docs name it. */
const char *fl_config_type_name(enum fl_config_type type);

#endif
