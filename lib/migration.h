/*
 * The migration model: a Prisma-style folder of migrations, loaded, checked
 * and put in apply order.
 *
 * A migration is `<dir>/<id>/migration.sql` plus optional `down.sql` and
 * `verify.sql`. The id is the folder name, exactly Prisma's migration_name.
 * Options are `-- flotilla:` comment directives at the top of migration.sql.
 *
 * Ownership: a loaded set owns every string in it; fl_migration_set_fini()
 * frees them. Nothing here touches a database; all functions are
 * thread-compatible (no shared state).
 */
#ifndef FL_MIGRATION_H
#define FL_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FL_CHECKSUM_HEX_LEN 64
/* Hard caps on what a file may feed us. */
#define FL_MIGRATION_FILE_MAX (64u * 1024 * 1024)
#define FL_MIGRATION_ID_MAX   255 /* _prisma_migrations.migration_name is varchar(255) */

enum fl_phase {
	FL_PHASE_UNSET = 0,
	FL_PHASE_EXPAND,   /* backward compatible: old code keeps working */
	FL_PHASE_CONTRACT, /* breaking: only after every reader moved on */
};

struct fl_migration {
	char *id;   /* folder name, e.g. "20240101120000_init" */
	char *path; /* path of the folder */
	char *sql;  /* migration.sql bytes, NUL-terminated (a NUL inside is refused) */
	size_t sql_len;
	char *down_sql; /* down.sql or NULL */
	size_t down_len;
	char *verify_sql; /* verify.sql or NULL */
	size_t verify_len;
	char checksum[FL_CHECKSUM_HEX_LEN + 1]; /* Prisma's checksum of migration.sql */

	/* Directives from the leading comment block of migration.sql. */
	bool no_transaction;
	char **requires; /* ids this one requires besides its predecessor */
	size_t n_requires;
	int64_t lock_timeout_ms;      /* -1 when not set */
	int64_t statement_timeout_ms; /* -1 when not set */
	enum fl_phase phase;

	/* Filled by fl_graph_sort: indices into the set's items. */
	size_t *deps; /* direct predecessors: previous migration plus requires */
	size_t n_deps;
};

struct fl_migration_set {
	char *dir;                  /* the migrations folder as given */
	char *provider;             /* from migration_lock.toml, or NULL without one */
	struct fl_migration *items; /* in apply (topological) order */
	size_t count;
};

/*
 * Load every migration under dir, in Prisma's order, parse directives, compute
 * checksums and sort the graph. As in Prisma, every subfolder is a migration
 * (hidden ones too; symlinks and files are not: a symlink to a folder is
 * skipped with a warning on the log); no subfolder is no error (count 0).
 * On error, errbuf names the path (and line for directives and file
 * contents) and the rule broken, and *set is left empty.
 * Errors: FL_ENOENT (no such folder, missing migration.sql), FL_EIO, FL_EPARSE
 * (bad directive, invalid UTF-8, NUL byte, over the size cap, bad name,
 * provider mismatch), FL_EGRAPH (duplicate, unknown requires, cycle).
 */
enum fl_err fl_migration_set_load(const char *dir, struct fl_migration_set *set, char *errbuf)
    __attribute__((warn_unused_result));
void fl_migration_set_fini(struct fl_migration_set *set);

/* The migration with this id, or NULL. */
const struct fl_migration *fl_migration_set_find(const struct fl_migration_set *set,
                                                 const char *id);
/* Its position in apply order, or -1. */
long fl_migration_set_index(const struct fl_migration_set *set, const char *id);

/*
 * Parse the `-- flotilla:` directives at the top of a migration.sql into m.
 * Directives are read from the leading block of comment and blank lines; a
 * `-- flotilla:` line after the first statement, or an unknown directive, is
 * an error naming `file:line`.
 * Reads m->sql/m->sql_len; file only names it in messages. Sets the directive
 * fields (no_transaction, requires, timeouts, phase), freeing an earlier
 * requires list: m->requires must be NULL or owned. On error they are reset
 * to "not set".
 */
enum fl_err fl_migration_parse_directives(struct fl_migration *m, const char *file, char *errbuf)
    __attribute__((warn_unused_result));

/* Why s[0..len) cannot be a migration id (empty, "." or "..", over 255
 * bytes, invalid UTF-8, '/', a control character), or NULL if it can. */
const char *fl_migration_id_problem(const char *s, size_t len);

/*
 * Prisma's folder order (for qsort). Prisma 6.6 and later sort folder names
 * with JavaScript's localeCompare, i.e. ICU collation, not bytes: spaces and
 * punctuation before digits before letters, case only breaking ties, so
 * "20240101_a" < "20240101120000_b" and "x_a" < "x_B" < "x_b2". This
 * reproduces that exactly for ASCII names; characters beyond ASCII sort after
 * ASCII by code point. Equal only for equal strings.
 */
int fl_migration_id_cmp(const char *a, const char *b);

#endif
