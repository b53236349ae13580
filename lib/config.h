/*
 * Declarative YAML configuration, in the manner of pgbouncer's CF tables: each
 * config is one table of keys (name, type, default, bounds, flags, help) with
 * the offset of each value in the caller's struct. The loader reads one YAML
 * document whose top level is a mapping and fills the struct; nothing else in
 * flotilla reads config or policy files.
 *
 * Strictness is the point: an unknown key, a duplicate, a wrong type, a value
 * out of bounds or a missing required key is an error naming the file, the
 * line and column, and the key's path ("health.checks[0].timeout"). Anchors,
 * aliases and tags are refused (no billion laughs), files are capped at
 * FL_CONFIG_MAX_FILE bytes, nesting at FL_CONFIG_MAX_DEPTH and lists at
 * FL_CONFIG_MAX_LIST items (or a key's own .max).
 *
 * Sections: a dotted name ("tls.cert", "health.interval") is read from
 * nested mappings (`tls: {cert: ...}`), or written dotted in the file at the
 * top of a table (`tls.cert: ...`). A table can splice in another table
 * (FL_CONFIG_INCLUDE): without a name (a daemon's table embeds
 * fl_wire_config_table), or with one, as a section (`select: {...}`).
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
 *   FL_CONFIG_FLOAT        double                 ("0.02", "10", "-1.5": no exponent)
 *   FL_CONFIG_LABELS       struct fl_labels       (`{ring: canary}`, lib/label.h rules)
 *   FL_CONFIG_TABLE_LIST   struct fl_config_list  (a list of mappings, each read with
 *                                                  the sub-table .include into a struct
 *                                                  of .elem_size bytes)
 *
 * A list of mappings, e.g. an agent's databases:
 *
 *   struct database { char *name; char *url; int64_t max_parallel; };
 *   static const struct fl_config_key database_table[] = {
 *       {.name = "name", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_REQUIRED,
 *        .offset = offsetof(struct database, name), .help = "..."},
 *       {.name = "url", ...},
 *       {.name = "max_parallel", .type = FL_CONFIG_INT, .def = "4", .min = 1, .max = 64, ...},
 *       {.type = FL_CONFIG_END, .validate = database_ok},   (optional cross-field rules)
 *   };
 *   struct agent_config { ...; struct fl_config_list databases; };
 *   {.name = "databases", .type = FL_CONFIG_TABLE_LIST, .flags = FL_CONFIG_NONEMPTY,
 *    .offset = offsetof(struct agent_config, databases), .include = database_table,
 *    .elem_size = sizeof(struct database), .max = 256, .help = "..."},
 *
 *   databases:
 *     - {name: main, url: "postgresql:///app"}
 *     - name: reports
 *       url: postgresql:///reports
 *       max_parallel: 2
 *
 *   const struct database *db = cfg.databases.items;   (db[0] .. db[cfg.databases.n - 1])
 *
 * Each element starts from the sub-table's defaults, its required keys are
 * required per element ("'a.yaml':9:7: missing required key 'databases[1].url'"),
 * and fl_config_fini frees every element's strings, then the array.
 *
 * Cross-field rules: a table's closing FL_CONFIG_END entry may name a
 * .validate function. It runs once the table's keys are read, wherever the
 * table is used (the whole file, a named section, each list element; inner
 * tables first), also when the file did not mention the section, and may
 * fill fields derived from the others. fl_config_isset says what the file
 * set. A refusal is an error at the key the function names, or at the
 * section or element when it names none. fl_config_defaults runs none.
 *
 *   static bool database_ok(const struct fl_config_scope *s, const char **key, char *why)
 *   {
 *       const struct database *all = s->items;    (earlier elements, for uniqueness)
 *
 *       if (fl_config_isset(s, "password_file") && fl_config_isset(s, "password_env")) {
 *           *key = "password_env";                 (the error points at this key)
 *           snprintf(why, FL_ERRBUF_SIZE, "give one of password_file and password_env");
 *           return false;
 *       }
 *       ...
 *   }
 *
 *   "'agent.yaml':12:9: 'databases[1].password_env': give one of password_file and ..."
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
#include "label.h"

#define FL_CONFIG_MAX_FILE   (1024 * 1024) /* bytes of YAML */
#define FL_CONFIG_MAX_LIST   1024          /* items in one list, unless its key says .max */
#define FL_CONFIG_MAX_DEPTH  6             /* nested mappings and lists, the top one included */
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
	FL_CONFIG_INCLUDE, /* splice `include` in, its offsets relative to `offset`; with
	                      a name, as a section of that name */
	FL_CONFIG_FLOAT,
	FL_CONFIG_LABELS,
	FL_CONFIG_TABLE_LIST,
};

/* Key flags. */
#define FL_CONFIG_REQUIRED   0x1u /* the file must set it; `def` is then NULL */
#define FL_CONFIG_RELOADABLE 0x2u /* may change on SIGHUP (see fl_config_check_reload) */
#define FL_CONFIG_NONEMPTY   0x4u /* strings, lists, labels: "", [] or {} is an error */
/* The key is a trust root (pinned keys, trusted keys, project id): the file
 * holding a table with such a key is refused by fl_config_load_file unless
 * it is owned by this process's effective user or root and writable by
 * nobody else, as secret key files are (checked on the open descriptor). */
#define FL_CONFIG_TRUST_ROOT 0x8u

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

/* FL_CONFIG_TABLE_LIST: heap, n contiguous elements of the key's elem_size
 * bytes, in file order. Elements may move while the loader reads the list,
 * so a struct never points into itself. */
struct fl_config_list {
	void *items;
	size_t n;
};

struct fl_config_key;

/* What a table's .validate function is given. */
struct fl_config_scope {
	void *self;        /* the struct the table fills (a section's, an element's) */
	const void *items; /* in a list element: the list's first element, and... */
	size_t index;      /* ...this element's index (items before it are complete); else
	                      NULL and 0 */
	const void *priv;  /* the loader's, for fl_config_isset */
};

/* Cross-field rules for one table (see the top of this file). Returns false
 * to refuse, with a short reason in `why` (FL_ERRBUF_SIZE bytes) and *key set
 * to the key it is about, relative to the table ("percent", "select.labels"),
 * or left NULL for the table as a whole. */
typedef bool (*fl_config_validate_fn)(const struct fl_config_scope *scope, const char **key,
                                      char *why);

/* Whether the file set key (relative to the validated table; a key or a
 * section), for .validate functions only. A key the table lacks is a bug. */
bool fl_config_isset(const struct fl_config_scope *scope, const char *key);

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
	 * when both are 0. STRING: max is the longest value in bytes, when not
	 * 0. Lists: max is the most items, when not 0 (else FL_CONFIG_MAX_LIST). */
	int64_t min, max;
	double fmin, fmax;                   /* FLOAT bounds, inclusive; ignored when both 0 */
	const char *const *choices;          /* ENUM: NULL-terminated spellings */
	fl_config_check_fn check;            /* optional; runs after the bounds */
	const char *help;                    /* one line, for docs and --help */
	const struct fl_config_key *include; /* INCLUDE: the table; TABLE_LIST: an element's */
	size_t elem_size;                    /* TABLE_LIST: sizeof an element */
	fl_config_validate_fn validate;      /* END only: the table's cross-field rules */
};

/*
 * Load `path` (at most FL_CONFIG_MAX_FILE bytes, a regular file) into target.
 * target is uninitialised storage for the table's fields: every field is set,
 * first to its default, then from the file. On success the caller owns what
 * target holds and releases it with fl_config_fini. On failure target's
 * fields are already released (and zero), and errbuf says
 * "'agent.yaml':7:1: unknown key 'trusted_relase_keys'".
 *
 * When the table holds a FL_CONFIG_TRUST_ROOT key, the open file is checked
 * before it is read: "refusing 'agent.yaml': writable by others (mode 0666);
 * it holds trust roots: chmod go-w it" (FL_EIO).
 *
 * Errors: FL_ENOENT (no such file), FL_EIO (cannot read, not protected),
 * FL_EPARSE (everything about the contents).
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
 * ("'key_file' cannot change on reload: restart instead"). A list of
 * mappings without the flag must keep its length, and its elements are
 * compared key by key by their own table's flags ("'databases[1].url' ..."). */
enum fl_err fl_config_check_reload(const struct fl_config_key *table, const void *cur,
                                   const void *next, char *errbuf)
    __attribute__((warn_unused_result));

/* Formatting for messages and docs: "64MiB", "4096" (largest exact unit). */
void fl_config_format_size(uint64_t bytes, char *out, size_t outlen);

/* "string", "size", "public key list"...: the type as docs name it. */
const char *fl_config_type_name(enum fl_config_type type);

/*
 * For docs checks and --help. fl_config_walk calls fn for every key of table
 * in table order, depth first, with its path as docs write it: "clock_skew",
 * "tls.cert", "waves[].select.percent" (a list's elements as "[]"). fn also
 * sees each FL_CONFIG_INCLUDE entry (path: its section, or "" unnamed) and
 * each list of mappings before its elements' keys; returning false there
 * skips what is inside. fl_config_doc_row writes the key's row in the docs'
 * key tables: "| `path` | type | default | bounds | reloadable | help |",
 * without the reloadable column when reload is false.
 */
typedef bool (*fl_config_walk_fn)(void *arg, const char *path, const struct fl_config_key *key);
void fl_config_walk(const struct fl_config_key *table, fl_config_walk_fn fn, void *arg);
void fl_config_doc_row(const char *path, const struct fl_config_key *key, bool reload, char *out,
                       size_t outlen);

#endif
