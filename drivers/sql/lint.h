/*
 * Linting a migration for what hurts a live fleet: locks held over table
 * scans or rewrites, statements that cannot run where they will run, and
 * changes that break the code still running against the old schema.
 *
 * Every rule reads PostgreSQL's parse tree (libpg_query), never the text. Only
 * top-level statements are linted: the bodies of DO blocks, functions and
 * rules are opaque. "An existing table" is one not created earlier in the same
 * migration.sql: changes to a table the migration itself creates are safe, and
 * so are dropping or rebuilding an index or schema it created.
 *
 * A migration is breaking (a contract step) when any rule marked breaking
 * fires; otherwise it is backward compatible (an expand step). Breaking means
 * code still running against the old schema fails or loses what it reads:
 * dropping or renaming what it uses, and deleting its rows (TRUNCATE, DELETE
 * without WHERE). Long locks and rewrites (CLUSTER, VACUUM FULL, REINDEX, SET
 * LOGGED) and backfills (UPDATE without WHERE) are not breaking: they belong in
 * either phase, and are warned about for their locks.
 */
#ifndef FL_SQL_LINT_H
#define FL_SQL_LINT_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "migration.h"

enum fl_lint_severity {
	FL_LINT_WARNING = 1, /* risky on a busy database; review it */
	FL_LINT_ERROR = 2,   /* fails, loses data or breaks running code */
};

struct fl_lint_rule {
	const char *id; /* stable kebab-case id, e.g. "drop-column" */
	enum fl_lint_severity severity;
	bool breaking;       /* firing makes the migration a contract step */
	const char *summary; /* one line, for `flotilla lint --rules` */
};

struct fl_lint_finding {
	const char *rule; /* the rule's id (static storage) */
	enum fl_lint_severity severity;
	const char *file; /* "migration.sql" or "down.sql" (static storage) */
	int line;         /* 1-based line of the statement; 0 for the whole migration */
	char *message;    /* owned; names the object, says why and what to do instead */
};

struct fl_lint_report {
	struct fl_lint_finding *findings; /* owned; in statement order, whole-migration
	                                     findings last */
	size_t count;
	size_t n_errors;
	size_t n_warnings;
	bool breaking; /* a breaking rule fired */
};

/*
 * Lint migration m (its sql, down_sql, no_transaction and phase) into *out,
 * which the caller finis. A migration.sql or down.sql that does not parse is a
 * finding ("syntax-error", "down-syntax-error"), not an error. Errors: FL_EINVAL
 * (a file over FL_SQL_MAX bytes), FL_EPARSE (libpg_query's output could not be
 * decoded); *out is then empty. Thread-safe, as fl_sql_split.
 */
enum fl_err fl_lint_migration(const struct fl_migration *m, struct fl_lint_report *out,
                              char *errbuf) __attribute__((warn_unused_result));
void fl_lint_report_fini(struct fl_lint_report *r);

/* Every rule, in a stable order; *n is set to their number. */
const struct fl_lint_rule *fl_lint_rules(size_t *n);
/* The rule with this id, or NULL. */
const struct fl_lint_rule *fl_lint_rule_find(const char *id);

/* "warning" or "error". */
const char *fl_lint_severity_name(enum fl_lint_severity s);

#endif
