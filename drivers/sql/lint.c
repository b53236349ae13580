/*
 * The linter walks migration.sql's top-level statements once, in order, with
 * fl_sql_split's classification alongside each parse node (both come from the
 * same parser on the same text, so statement i is statement i in both).
 *
 * Tables created earlier in the file are remembered by name: every rule about
 * locking or breaking an existing table stays quiet for them, which keeps
 * Prisma's usual "CREATE TABLE, then ALTER TABLE ... ADD CONSTRAINT ... FOREIGN
 * KEY" output clean. Expressions are searched with a generic walk over the
 * protobuf-c descriptors, so no node type is missed by a hand-written visitor.
 */
#include "lint.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "mem.h"
#include "split.h"

typedef PgQuery__Node Node;

enum rule_ix {
	R_DROP_TABLE,
	R_DROP_COLUMN,
	R_RENAME,
	R_ALTER_COLUMN_TYPE,
	R_SET_NOT_NULL,
	R_ADD_COLUMN_NOT_NULL,
	R_ADD_COLUMN_REWRITE,
	R_CREATE_INDEX,
	R_CONCURRENTLY_IN_TX,
	R_NON_TX_IN_TX,
	R_FK_NOT_VALID,
	R_CHECK_NOT_VALID,
	R_UNIQUE_WITHOUT_INDEX,
	R_DDL_WITH_DML,
	R_DROP_SCHEMA,
	R_DROP_INDEX,
	R_REINDEX,
	R_CLUSTER,
	R_VACUUM_FULL,
	R_SET_LOGGED,
	R_SET_UNLOGGED,
	R_DROP_PRIMARY_KEY,
	R_TRUNCATE,
	R_DELETE_ALL,
	R_UPDATE_ALL,
	R_MISSING_DOWN,
	R_PHASE_MISMATCH,
	R_SYNTAX,
	R_DOWN_SYNTAX,
	R_COUNT
};

#define W FL_LINT_WARNING
#define E FL_LINT_ERROR
static const struct fl_lint_rule rules[R_COUNT] = {
    [R_DROP_TABLE] = {"drop-table", E, true,
                      "DROP TABLE of an existing table: loses data, breaks code still reading it"},
    [R_DROP_COLUMN] = {"drop-column", E, true,
                       "ALTER TABLE ... DROP COLUMN: loses data, breaks code still using it"},
    [R_RENAME] = {"rename", E, true,
                  "renaming a table, column, constraint, view, type, schema or enum value breaks "
                  "code using the old name"},
    [R_ALTER_COLUMN_TYPE] = {"alter-column-type", E, true,
                             "ALTER COLUMN ... TYPE: may rewrite the table under an ACCESS "
                             "EXCLUSIVE lock and breaks code expecting the old type"},
    [R_SET_NOT_NULL] = {"set-not-null", W, true,
                        "ALTER COLUMN ... SET NOT NULL: scans the table under an ACCESS EXCLUSIVE "
                        "lock and breaks code writing NULL"},
    [R_ADD_COLUMN_NOT_NULL] = {"add-column-not-null-no-default", E, true,
                               "ADD COLUMN ... NOT NULL without a DEFAULT: fails on a non-empty "
                               "table and breaks code inserting without it"},
    [R_ADD_COLUMN_REWRITE] = {"add-column-rewrite", W, false,
                              "ADD COLUMN with a volatile default (random(), gen_random_uuid(), "
                              "nextval/serial, ...) or STORED generated: rewrites the table under "
                              "an ACCESS EXCLUSIVE lock"},
    [R_CREATE_INDEX] = {"create-index-not-concurrently", W, false,
                        "CREATE INDEX on an existing table without CONCURRENTLY blocks writes "
                        "while it builds"},
    [R_CONCURRENTLY_IN_TX] = {"concurrently-in-transaction", E, false,
                              "a CONCURRENTLY statement in a file that runs in a transaction "
                              "fails: make it the file's only statement or add "
                              "'-- flotilla:no-transaction'"},
    [R_NON_TX_IN_TX] = {"non-transactional-in-transaction", E, false,
                        "a statement that cannot run in a transaction block (VACUUM, CREATE "
                        "DATABASE, ALTER SYSTEM, ...) in a file that runs in one"},
    [R_FK_NOT_VALID] = {"foreign-key-not-valid", W, false,
                        "ADD FOREIGN KEY to an existing table without NOT VALID scans it while "
                        "blocking writes to both tables; VALIDATE CONSTRAINT separately"},
    [R_CHECK_NOT_VALID] = {"check-not-valid", W, false,
                           "ADD CHECK to an existing table without NOT VALID scans it under an "
                           "ACCESS EXCLUSIVE lock; VALIDATE CONSTRAINT separately"},
    [R_UNIQUE_WITHOUT_INDEX] = {"unique-without-index", W, false,
                                "ADD UNIQUE or PRIMARY KEY to an existing table builds its index "
                                "under an ACCESS EXCLUSIVE lock; build it CONCURRENTLY first and "
                                "add the constraint USING INDEX"},
    [R_DDL_WITH_DML] = {"ddl-with-dml", W, false,
                        "bulk UPDATE, DELETE, MERGE, INSERT ... SELECT, COPY or TRUNCATE next to "
                        "schema changes holds their locks for the whole backfill"},
    [R_DROP_SCHEMA] = {"drop-schema", E, true,
                       "DROP SCHEMA: loses every object in it, breaks code still using them"},
    [R_DROP_INDEX] = {"drop-index-not-concurrently", W, false,
                      "DROP INDEX without CONCURRENTLY locks its table against reads and writes "
                      "until the drop ends"},
    [R_REINDEX] = {"reindex-not-concurrently", W, false,
                   "REINDEX without CONCURRENTLY blocks writes to the table, and reads using "
                   "the index, while it rebuilds"},
    [R_CLUSTER] = {"cluster", W, false,
                   "CLUSTER rewrites the table under an ACCESS EXCLUSIVE lock, blocking reads "
                   "and writes throughout"},
    [R_VACUUM_FULL] = {"vacuum-full", W, false,
                       "VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock, blocking "
                       "reads and writes throughout"},
    [R_SET_LOGGED] = {"set-logged", W, false,
                      "ALTER TABLE ... SET LOGGED rewrites the table into the WAL under an ACCESS "
                      "EXCLUSIVE lock"},
    [R_SET_UNLOGGED] = {"set-unlogged", E, false,
                        "ALTER TABLE ... SET UNLOGGED: a crash empties the table, standbys never "
                        "see its rows, and it is rewritten under an ACCESS EXCLUSIVE lock"},
    [R_DROP_PRIMARY_KEY] = {"drop-primary-key", E, true,
                            "DROP CONSTRAINT of a primary key (by name: *_pkey or pk_*): breaks "
                            "code and foreign keys relying on it"},
    [R_TRUNCATE] = {"truncate", E, true,
                    "TRUNCATE of an existing table: deletes every row, under an ACCESS "
                    "EXCLUSIVE lock"},
    [R_DELETE_ALL] = {"delete-without-where", E, true,
                      "DELETE without WHERE on an existing table: deletes every row in one "
                      "transaction"},
    [R_UPDATE_ALL] = {"update-without-where", W, false,
                      "UPDATE without WHERE on an existing table: locks and rewrites every row "
                      "in one transaction; backfill in batches"},
    [R_MISSING_DOWN] = {"missing-down", W, false,
                        "no down.sql: the migration cannot be rolled back"},
    [R_PHASE_MISMATCH] = {"phase-mismatch", E, false,
                          "declared '-- flotilla:phase expand' but a breaking rule fired"},
    [R_SYNTAX] = {"syntax-error", E, false, "migration.sql does not parse"},
    [R_DOWN_SYNTAX] = {"down-syntax-error", E, false, "down.sql does not parse"},
};
#undef W
#undef E

#define MSG_MAX   512 /* a finding's message; longer ones are cut */
#define QNAME_MAX 200 /* a qualified name in a message */

struct relname {
	const char *schema; /* "" when not qualified */
	const char *rel;
};

/* Names created earlier in the file (pointing into the parse tree). */
struct names {
	const char **v;
	size_t n, cap;
};

static void names_add(struct names *ns, const char *name)
{
	if (name == NULL || name[0] == '\0')
		return;
	ns->v = fl_grow(ns->v, &ns->cap, ns->n + 1, sizeof(*ns->v));
	ns->v[ns->n++] = name;
}

static bool names_has(const struct names *ns, const char *name)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i], name) == 0)
			return true;
	return false;
}

struct lint {
	const struct fl_migration *m;
	struct fl_lint_report *out;
	size_t cap;
	struct relname *created; /* points into the parse tree */
	size_t n_created, cap_created;
	struct names created_indexes; /* index names, unqualified */
	struct names created_schemas;
	const struct fl_sql_script *script;
	bool in_tx; /* migration.sql runs inside one transaction block */
	int line;   /* the current statement's */
};

static void emit(struct lint *l, enum rule_ix r, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void emit(struct lint *l, enum rule_ix r, const char *file, int line, const char *fmt, ...)
{
	struct fl_lint_report *out = l->out;
	struct fl_lint_finding *f;
	char msg[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	out->findings = fl_grow(out->findings, &l->cap, out->count + 1, sizeof(*out->findings));
	f = &out->findings[out->count++];
	f->rule = rules[r].id;
	f->severity = rules[r].severity;
	f->file = file;
	f->line = line;
	f->message = fl_strdup(msg);
	if (f->severity == FL_LINT_ERROR)
		out->n_errors++;
	else
		out->n_warnings++;
	if (rules[r].breaking)
		out->breaking = true;
}

#define stmt_emit(l, r, ...) emit((l), (r), "migration.sql", (l)->line, __VA_ARGS__)

static bool empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static const char *qualify(const PgQuery__RangeVar *rv, char *buf)
{
	if (rv == NULL)
		return "?";
	if (empty(rv->schemaname))
		snprintf(buf, QNAME_MAX, "%s", rv->relname);
	else
		snprintf(buf, QNAME_MAX, "%s.%s", rv->schemaname, rv->relname);
	return buf;
}

/* A dotted name from a List of String nodes (DROP TABLE a.b, ALTER TYPE x). */
static const char *list_name(const Node *n, char *buf)
{
	size_t len = 0;

	buf[0] = '\0';
	if (n == NULL)
		return "?";
	if (n->node_case == PG_QUERY__NODE__NODE_STRING)
		return n->string->sval;
	if (n->node_case != PG_QUERY__NODE__NODE_LIST)
		return "?";
	for (size_t i = 0; i < n->list->n_items && len < QNAME_MAX; i++) {
		const Node *it = n->list->items[i];

		if (it->node_case != PG_QUERY__NODE__NODE_STRING)
			continue;
		len += (size_t)snprintf(buf + len, QNAME_MAX - len, "%s%s", len ? "." : "",
		                        it->string->sval);
	}
	return buf;
}

static bool same_rel(const struct relname *a, const char *schema, const char *rel)
{
	if (strcmp(a->rel, rel) != 0)
		return false;
	return empty(a->schema) || empty(schema) || strcmp(a->schema, schema) == 0;
}

static bool created_here(const struct lint *l, const char *schema, const char *rel)
{
	for (size_t i = 0; i < l->n_created; i++)
		if (same_rel(&l->created[i], schema, rel))
			return true;
	return false;
}

static bool existing(const struct lint *l, const PgQuery__RangeVar *rv)
{
	return rv != NULL && !created_here(l, rv->schemaname, rv->relname);
}

static void remember(struct lint *l, const PgQuery__RangeVar *rv)
{
	if (rv == NULL || empty(rv->relname))
		return;
	l->created = fl_grow(l->created, &l->cap_created, l->n_created + 1, sizeof(*l->created));
	l->created[l->n_created].schema = rv->schemaname ? rv->schemaname : "";
	l->created[l->n_created].rel = rv->relname;
	l->n_created++;
}

/*
 * Depth-first search of any parse message for a Node that pred accepts,
 * following the protobuf-c descriptors (a Node's oneof holds its one child).
 */
typedef bool (*node_pred)(const Node *n);

static bool walk(const ProtobufCMessage *msg, node_pred pred, int depth)
{
	const ProtobufCMessageDescriptor *d;

	if (msg == NULL || depth > 1000) /* the parser's own stack check bounds real trees */
		return false;
	d = msg->descriptor;
	if (d == &pg_query__node__descriptor && pred((const Node *)msg))
		return true;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)msg;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *arr =
			    *(ProtobufCMessage *const *const *)(base + f->offset);

			for (size_t k = 0; k < n; k++)
				if (walk(arr[k], pred, depth + 1))
					return true;
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (walk(*(ProtobufCMessage *const *)(base + f->offset), pred, depth + 1))
			return true;
	}
	return false;
}

static const char *func_name(const PgQuery__FuncCall *fc)
{
	const Node *last;

	if (fc->n_funcname == 0)
		return "";
	last = fc->funcname[fc->n_funcname - 1];
	return last->node_case == PG_QUERY__NODE__NODE_STRING ? last->string->sval : "";
}

static bool is_volatile_call(const Node *n)
{
	static const char *const volatile_funcs[] = {
	    "random",           "gen_random_uuid",  "uuid_generate_v1", "uuid_generate_v1mc",
	    "uuid_generate_v4", "clock_timestamp",  "timeofday",        "nextval",
	    "txid_current",     "gen_random_bytes",
	};
	const char *name;

	if (n->node_case != PG_QUERY__NODE__NODE_FUNC_CALL)
		return false;
	name = func_name(n->func_call);
	for (size_t i = 0; i < sizeof(volatile_funcs) / sizeof(volatile_funcs[0]); i++)
		if (strcmp(name, volatile_funcs[i]) == 0)
			return true;
	return false;
}

static bool is_serial(const PgQuery__TypeName *t)
{
	static const char *const serials[] = {"smallserial", "serial",  "bigserial",
	                                      "serial2",     "serial4", "serial8"};
	const Node *last;

	if (t == NULL || t->n_names == 0)
		return false;
	last = t->names[t->n_names - 1];
	if (last->node_case != PG_QUERY__NODE__NODE_STRING)
		return false;
	for (size_t i = 0; i < sizeof(serials) / sizeof(serials[0]); i++)
		if (strcmp(last->string->sval, serials[i]) == 0)
			return true;
	return false;
}

static void add_column(struct lint *l, const PgQuery__RangeVar *rel, const PgQuery__ColumnDef *cd)
{
	bool not_null = false, has_default = false, rewrite = false;
	char name[QNAME_MAX];

	if (is_serial(cd->type_name)) {
		has_default = true;
		rewrite = true;
	}
	for (size_t i = 0; i < cd->n_constraints; i++) {
		const PgQuery__Constraint *c;

		if (cd->constraints[i]->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
			continue;
		c = cd->constraints[i]->constraint;
		switch (c->contype) {
		case PG_QUERY__CONSTR_TYPE__CONSTR_NOTNULL:
		case PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY:
			not_null = true;
			break;
		case PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT:
			has_default = true;
			if (walk((const ProtobufCMessage *)c->raw_expr, is_volatile_call, 0))
				rewrite = true;
			break;
		case PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY:
			has_default = true;
			rewrite = true;
			break;
		case PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED:
			has_default = true;
			rewrite = true;
			break;
		default:
			break;
		}
	}
	if (not_null && !has_default)
		stmt_emit(l, R_ADD_COLUMN_NOT_NULL,
		          "adds column '%s' to '%s' as NOT NULL without a DEFAULT: add it nullable "
		          "(or with a default), backfill, then set NOT NULL",
		          cd->colname, qualify(rel, name));
	if (rewrite)
		stmt_emit(
		    l, R_ADD_COLUMN_REWRITE,
		    "adds column '%s' to '%s' with a volatile default, identity or stored "
		    "generated value: the whole table is rewritten under an ACCESS EXCLUSIVE lock",
		    cd->colname, qualify(rel, name));
}

static void add_constraint(struct lint *l, const PgQuery__RangeVar *rel,
                           const PgQuery__Constraint *c)
{
	char name[QNAME_MAX];
	const char *con = empty(c->conname) ? "(unnamed)" : c->conname;

	switch (c->contype) {
	case PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN:
		if (!c->skip_validation)
			stmt_emit(
			    l, R_FK_NOT_VALID,
			    "adds foreign key '%s' to '%s' without NOT VALID: add it NOT VALID, "
			    "then VALIDATE CONSTRAINT in a later step",
			    con, qualify(rel, name));
		break;
	case PG_QUERY__CONSTR_TYPE__CONSTR_CHECK:
		if (!c->skip_validation)
			stmt_emit(
			    l, R_CHECK_NOT_VALID,
			    "adds check constraint '%s' to '%s' without NOT VALID: add it NOT "
			    "VALID, then VALIDATE CONSTRAINT in a later step",
			    con, qualify(rel, name));
		break;
	case PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY:
	case PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE:
		if (empty(c->indexname))
			stmt_emit(
			    l, R_UNIQUE_WITHOUT_INDEX,
			    "adds %s constraint '%s' to '%s' without USING INDEX: CREATE UNIQUE "
			    "INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX",
			    c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY ? "primary key"
			                                                        : "unique",
			    con, qualify(rel, name));
		break;
	default:
		break;
	}
}

/*
 * Whether a constraint is a primary key, from its name alone: the parse tree has
 * nothing else, and the catalog is not at hand. PostgreSQL names a primary key
 * <table>_pkey, and so does Prisma; TypeORM names it PK_<hash>. So: a name ending
 * in "_pkey", or starting with "pk_", in any case. A primary key named otherwise
 * is missed; another constraint named so is reported.
 */
static bool pkey_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return (n > 5 && strcasecmp(name + n - 5, "_pkey") == 0) ||
	       (n > 3 && strncasecmp(name, "pk_", 3) == 0);
}

static void alter_table(struct lint *l, const PgQuery__AlterTableStmt *a)
{
	const PgQuery__RangeVar *rel = a->relation;
	char name[QNAME_MAX];

	if (a->objtype != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE || !existing(l, rel))
		return;
	for (size_t i = 0; i < a->n_cmds; i++) {
		const PgQuery__AlterTableCmd *c;

		if (a->cmds[i]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
			continue;
		c = a->cmds[i]->alter_table_cmd;
		switch (c->subtype) {
		case PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn:
			stmt_emit(
			    l, R_DROP_COLUMN,
			    "drops column '%s' of '%s': stop using it first, drop it in a later "
			    "contract step",
			    c->name, qualify(rel, name));
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType:
			stmt_emit(
			    l, R_ALTER_COLUMN_TYPE,
			    "changes the type of column '%s' of '%s': add a new column, backfill "
			    "and switch readers instead",
			    c->name, qualify(rel, name));
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull:
			stmt_emit(
			    l, R_SET_NOT_NULL,
			    "sets column '%s' of '%s' NOT NULL: add a CHECK (%s IS NOT NULL) NOT "
			    "VALID and validate it first",
			    c->name, qualify(rel, name), c->name);
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn:
			if (c->def != NULL && c->def->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF)
				add_column(l, rel, c->def->column_def);
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint:
			if (c->def != NULL && c->def->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
				add_constraint(l, rel, c->def->constraint);
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraint:
			if (pkey_name(c->name))
				stmt_emit(l, R_DROP_PRIMARY_KEY,
				          "drops constraint '%s' of '%s', a primary key by its "
				          "name: code "
				          "and foreign keys relying on it break; add the new key "
				          "alongside "
				          "(unique index CONCURRENTLY, then USING INDEX), drop the "
				          "old one "
				          "in a later contract step",
				          c->name, qualify(rel, name));
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_SetLogged:
			stmt_emit(
			    l, R_SET_LOGGED,
			    "sets '%s' LOGGED: rewrites it into the WAL under an ACCESS "
			    "EXCLUSIVE lock, blocking reads and writes throughout; do it in a "
			    "maintenance window, outside a rollout",
			    qualify(rel, name));
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_SetUnLogged:
			stmt_emit(l, R_SET_UNLOGGED,
			          "sets '%s' UNLOGGED: a crash empties it, standbys never see its "
			          "rows, and it is rewritten under an ACCESS EXCLUSIVE lock; keep "
			          "tables whose data matters LOGGED",
			          qualify(rel, name));
			break;
		default:
			break;
		}
	}
}

/* The last name of a dotted List of String nodes (DROP INDEX s.i: "i"), or "". */
static const char *last_name(const Node *n)
{
	const Node *last;

	if (n == NULL)
		return "";
	if (n->node_case == PG_QUERY__NODE__NODE_STRING)
		return n->string->sval;
	if (n->node_case != PG_QUERY__NODE__NODE_LIST || n->list->n_items == 0)
		return "";
	last = n->list->items[n->list->n_items - 1];
	return last->node_case == PG_QUERY__NODE__NODE_STRING ? last->string->sval : "";
}

static void drop_schema(struct lint *l, const PgQuery__DropStmt *d)
{
	bool cascade = d->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;

	for (size_t i = 0; i < d->n_objects; i++) {
		const char *schema = last_name(d->objects[i]);

		if (names_has(&l->created_schemas, schema))
			continue;
		stmt_emit(l, R_DROP_SCHEMA,
		          "drops schema '%s'%s: loses every object in it and breaks code using "
		          "them; stop using it first, drop it in a later contract step",
		          schema, cascade ? " with CASCADE" : "");
	}
}

static void drop_index(struct lint *l, const PgQuery__DropStmt *d)
{
	char name[QNAME_MAX];

	if (d->concurrent)
		return;
	for (size_t i = 0; i < d->n_objects; i++) {
		if (names_has(&l->created_indexes, last_name(d->objects[i])))
			continue;
		stmt_emit(l, R_DROP_INDEX,
		          "drops index '%s' without CONCURRENTLY: its table is locked against "
		          "reads and writes until the drop ends; use DROP INDEX CONCURRENTLY in a "
		          "file of its own",
		          list_name(d->objects[i], name));
	}
}

static void drop(struct lint *l, const PgQuery__DropStmt *d)
{
	char name[QNAME_MAX];

	if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_SCHEMA) {
		drop_schema(l, d);
		return;
	}
	if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_INDEX) {
		drop_index(l, d);
		return;
	}
	if (d->remove_type != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
		return;
	for (size_t i = 0; i < d->n_objects; i++) {
		const Node *o = d->objects[i];
		const char *schema = "", *rel;

		if (o->node_case != PG_QUERY__NODE__NODE_LIST || o->list->n_items == 0)
			continue;
		rel = o->list->items[o->list->n_items - 1]->node_case == PG_QUERY__NODE__NODE_STRING
		          ? o->list->items[o->list->n_items - 1]->string->sval
		          : "";
		if (o->list->n_items >= 2 &&
		    o->list->items[o->list->n_items - 2]->node_case == PG_QUERY__NODE__NODE_STRING)
			schema = o->list->items[o->list->n_items - 2]->string->sval;
		if (created_here(l, schema, rel))
			continue;
		stmt_emit(l, R_DROP_TABLE,
		          "drops table '%s': stop using it first, drop it in a later contract step",
		          list_name(o, name));
	}
}

static void lint_rename(struct lint *l, const PgQuery__RenameStmt *r)
{
	char name[QNAME_MAX];
	const char *what;

	switch (r->rename_type) {
	case PG_QUERY__OBJECT_TYPE__OBJECT_TABLE:
	case PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE:
		what = "table";
		break;
	case PG_QUERY__OBJECT_TYPE__OBJECT_VIEW:
		what = "view";
		break;
	case PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW:
		what = "materialized view";
		break;
	case PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN:
		what = "column";
		break;
	case PG_QUERY__OBJECT_TYPE__OBJECT_TABCONSTRAINT:
		what = "constraint";
		break;
	case PG_QUERY__OBJECT_TYPE__OBJECT_TYPE:
		stmt_emit(l, R_RENAME, "renames type '%s' to '%s': code casting to it breaks",
		          list_name(r->object, name), r->newname);
		return;
	case PG_QUERY__OBJECT_TYPE__OBJECT_SCHEMA:
		stmt_emit(l, R_RENAME, "renames schema '%s' to '%s': code using it breaks",
		          r->subname, r->newname);
		return;
	default:
		return; /* indexes, sequences, functions...: not names code relies on */
	}
	if (r->relation != NULL && !existing(l, r->relation))
		return;
	if (empty(r->subname))
		stmt_emit(l, R_RENAME,
		          "renames %s '%s' to '%s': code using the old name breaks; add the new "
		          "name alongside (a view) and switch readers first",
		          what, qualify(r->relation, name), r->newname);
	else
		stmt_emit(l, R_RENAME,
		          "renames %s '%s' of '%s' to '%s': code using the old name breaks; add, "
		          "backfill and switch instead",
		          what, r->subname, qualify(r->relation, name), r->newname);
}

static bool uses_concurrently(const Node *n)
{
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_INDEX_STMT:
		return n->index_stmt->concurrent;
	case PG_QUERY__NODE__NODE_DROP_STMT:
		return n->drop_stmt->concurrent;
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		return true; /* DETACH PARTITION ... CONCURRENTLY is its only NO_TX_BLOCK form */
	case PG_QUERY__NODE__NODE_REINDEX_STMT:
		for (size_t i = 0; i < n->reindex_stmt->n_params; i++) {
			const Node *p = n->reindex_stmt->params[i];

			if (p->node_case == PG_QUERY__NODE__NODE_DEF_ELEM &&
			    strcmp(p->def_elem->defname, "concurrently") == 0)
				return true;
		}
		return false;
	default:
		return false;
	}
}

/* What a non-transactional statement is, for messages: its first two words. */
static const char *stmt_kind(const Node *n)
{
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_INDEX_STMT:
		return "CREATE INDEX CONCURRENTLY";
	case PG_QUERY__NODE__NODE_DROP_STMT:
		return "DROP INDEX CONCURRENTLY";
	case PG_QUERY__NODE__NODE_REINDEX_STMT:
		return "REINDEX";
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		return "DETACH PARTITION CONCURRENTLY";
	case PG_QUERY__NODE__NODE_VACUUM_STMT:
		return "VACUUM";
	case PG_QUERY__NODE__NODE_CREATEDB_STMT:
		return "CREATE DATABASE";
	case PG_QUERY__NODE__NODE_DROPDB_STMT:
		return "DROP DATABASE";
	case PG_QUERY__NODE__NODE_ALTER_DATABASE_STMT:
		return "ALTER DATABASE SET TABLESPACE";
	case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
		return "CREATE TABLESPACE";
	case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
		return "DROP TABLESPACE";
	case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
		return "ALTER SYSTEM";
	case PG_QUERY__NODE__NODE_CLUSTER_STMT:
		return "CLUSTER";
	case PG_QUERY__NODE__NODE_DISCARD_STMT:
		return "DISCARD ALL";
	case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
		return "COMMIT/ROLLBACK PREPARED";
	case PG_QUERY__NODE__NODE_CREATE_SUBSCRIPTION_STMT:
	case PG_QUERY__NODE__NODE_ALTER_SUBSCRIPTION_STMT:
		return "a subscription change";
	default:
		return "this statement";
	}
}

/*
 * Whether the utility option name (a DefElem: VACUUM (FULL), REINDEX (CONCURRENTLY))
 * is given and on. VACUUM FULL and (FULL) and (FULL true) are on; (FULL false),
 * (FULL off) and (FULL 0) are not.
 */
static bool option_on(PgQuery__Node *const *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		const PgQuery__DefElem *de;
		const char *v;

		if (opts[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM ||
		    strcmp(opts[i]->def_elem->defname, name) != 0)
			continue;
		de = opts[i]->def_elem;
		if (de->arg == NULL)
			return true;
		switch (de->arg->node_case) {
		case PG_QUERY__NODE__NODE_BOOLEAN:
			return de->arg->boolean->boolval;
		case PG_QUERY__NODE__NODE_INTEGER:
			return de->arg->integer->ival != 0;
		case PG_QUERY__NODE__NODE_STRING:
			v = de->arg->string->sval;
			return !(strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0 ||
			         strcasecmp(v, "no") == 0 || strcmp(v, "0") == 0);
		default:
			return true;
		}
	}
	return false;
}

static void lint_reindex(struct lint *l, const PgQuery__ReindexStmt *r)
{
	char name[QNAME_MAX];
	const char *what, *subject;

	if (option_on(r->params, r->n_params, "concurrently"))
		return;
	switch (r->kind) {
	case PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_INDEX:
		what = "index";
		if (r->relation != NULL && names_has(&l->created_indexes, r->relation->relname))
			return;
		subject = qualify(r->relation, name);
		break;
	case PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_TABLE:
		what = "table";
		if (!existing(l, r->relation))
			return;
		subject = qualify(r->relation, name);
		break;
	case PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SCHEMA:
		what = "schema";
		subject = r->name;
		break;
	default:
		what = "database";
		subject = empty(r->name) ? "(current)" : r->name;
		break;
	}
	stmt_emit(l, R_REINDEX,
	          "reindexes %s '%s' without CONCURRENTLY: writes block, and reads using the "
	          "index, until the rebuild ends; use REINDEX ... CONCURRENTLY in a file of its "
	          "own",
	          what, subject);
}

static void lint_cluster(struct lint *l, const PgQuery__ClusterStmt *c)
{
	char name[QNAME_MAX];

	if (c->relation != NULL && !existing(l, c->relation))
		return;
	stmt_emit(l, R_CLUSTER,
	          "clusters %s%s%s: rewrites under an ACCESS EXCLUSIVE lock, blocking reads and "
	          "writes throughout; use pg_repack, or a maintenance window, outside migrations",
	          c->relation ? "'" : "",
	          c->relation ? qualify(c->relation, name) : "every table clustered before",
	          c->relation ? "'" : "");
}

static void lint_vacuum(struct lint *l, const PgQuery__VacuumStmt *v)
{
	char name[QNAME_MAX];
	size_t existing_rels = 0;
	const PgQuery__RangeVar *first = NULL;

	if (!v->is_vacuumcmd || !option_on(v->options, v->n_options, "full"))
		return;
	for (size_t i = 0; i < v->n_rels; i++) {
		const Node *r = v->rels[i];

		if (r->node_case != PG_QUERY__NODE__NODE_VACUUM_RELATION ||
		    !existing(l, r->vacuum_relation->relation))
			continue;
		if (existing_rels++ == 0)
			first = r->vacuum_relation->relation;
	}
	if (v->n_rels > 0 && existing_rels == 0)
		return; /* only tables this file created: empty */
	stmt_emit(l, R_VACUUM_FULL,
	          "runs VACUUM FULL on %s%s%s: rewrites under an ACCESS EXCLUSIVE lock, blocking "
	          "reads and writes throughout; use plain VACUUM, or pg_repack, outside migrations",
	          first ? "'" : "", first ? qualify(first, name) : "every table", first ? "'" : "");
}

static void lint_truncate(struct lint *l, const PgQuery__TruncateStmt *t)
{
	char name[QNAME_MAX];

	for (size_t i = 0; i < t->n_relations; i++) {
		const Node *r = t->relations[i];

		if (r->node_case != PG_QUERY__NODE__NODE_RANGE_VAR || !existing(l, r->range_var))
			continue;
		stmt_emit(
		    l, R_TRUNCATE,
		    "truncates '%s': deletes every row, under an ACCESS EXCLUSIVE lock; if "
		    "the data must go, delete it in batches in a step of its own, once nothing "
		    "reads it",
		    qualify(r->range_var, name));
	}
}

/* The DML that rewrites many rows, as opposed to INSERT ... VALUES of seed data. */
static const char *bulk_dml(const Node *n)
{
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
		return n->update_stmt->where_clause ? "UPDATE" : "UPDATE of every row";
	case PG_QUERY__NODE__NODE_DELETE_STMT:
		return n->delete_stmt->where_clause ? "DELETE" : "DELETE of every row";
	case PG_QUERY__NODE__NODE_MERGE_STMT:
		return "MERGE";
	case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
		return "TRUNCATE";
	case PG_QUERY__NODE__NODE_COPY_STMT:
		return n->copy_stmt->is_from ? "COPY FROM" : NULL;
	case PG_QUERY__NODE__NODE_INSERT_STMT: {
		const Node *s = n->insert_stmt->select_stmt;

		if (s != NULL && s->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
		    s->select_stmt->n_values_lists == 0)
			return "INSERT ... SELECT";
		return NULL;
	}
	default:
		return NULL;
	}
}

static void lint_stmt(struct lint *l, const Node *n, const struct fl_sql_stmt *st)
{
	const char *dml;

	l->line = st->line;
	if ((st->flags & FL_SQL_NO_TX_BLOCK) && l->in_tx) {
		if (uses_concurrently(n))
			stmt_emit(
			    l, R_CONCURRENTLY_IN_TX,
			    "'%s' cannot run inside a transaction block, and this file runs in "
			    "one: "
			    "make it the file's only statement or add '-- flotilla:no-transaction'",
			    stmt_kind(n));
		else
			stmt_emit(
			    l, R_NON_TX_IN_TX,
			    "'%s' cannot run inside a transaction block, and this file runs in "
			    "one: "
			    "make it the file's only statement or add '-- flotilla:no-transaction'",
			    stmt_kind(n));
	}
	if ((l->script->flags & FL_SQL_DDL) && (dml = bulk_dml(n)) != NULL)
		stmt_emit(l, R_DDL_WITH_DML,
		          "bulk %s in a migration that also changes the schema: the schema "
		          "change's locks "
		          "are held for the whole backfill; backfill in batches, in its own step",
		          dml);

	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_CREATE_STMT:
		remember(l, n->create_stmt->relation);
		break;
	case PG_QUERY__NODE__NODE_CREATE_SCHEMA_STMT:
		names_add(&l->created_schemas, n->create_schema_stmt->schemaname);
		break;
	case PG_QUERY__NODE__NODE_REINDEX_STMT:
		lint_reindex(l, n->reindex_stmt);
		break;
	case PG_QUERY__NODE__NODE_CLUSTER_STMT:
		lint_cluster(l, n->cluster_stmt);
		break;
	case PG_QUERY__NODE__NODE_VACUUM_STMT:
		lint_vacuum(l, n->vacuum_stmt);
		break;
	case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
		lint_truncate(l, n->truncate_stmt);
		break;
	case PG_QUERY__NODE__NODE_DELETE_STMT: {
		char name[QNAME_MAX];

		if (n->delete_stmt->where_clause == NULL && existing(l, n->delete_stmt->relation))
			stmt_emit(
			    l, R_DELETE_ALL,
			    "deletes every row of '%s' (no WHERE) in one transaction: the data "
			    "is lost and every row locked; add the WHERE you mean, or delete in "
			    "batches in a step of its own",
			    qualify(n->delete_stmt->relation, name));
		break;
	}
	case PG_QUERY__NODE__NODE_UPDATE_STMT: {
		char name[QNAME_MAX];

		if (n->update_stmt->where_clause == NULL && existing(l, n->update_stmt->relation))
			stmt_emit(
			    l, R_UPDATE_ALL,
			    "updates every row of '%s' (no WHERE) in one transaction, locking "
			    "and rewriting them all at once; backfill in batches (WHERE on key "
			    "ranges) in a step of its own",
			    qualify(n->update_stmt->relation, name));
		break;
	}
	case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
		if (n->create_table_as_stmt->into != NULL)
			remember(l, n->create_table_as_stmt->into->rel);
		break;
	case PG_QUERY__NODE__NODE_DROP_STMT:
		drop(l, n->drop_stmt);
		break;
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		alter_table(l, n->alter_table_stmt);
		break;
	case PG_QUERY__NODE__NODE_RENAME_STMT:
		lint_rename(l, n->rename_stmt);
		break;
	case PG_QUERY__NODE__NODE_ALTER_ENUM_STMT: {
		const PgQuery__AlterEnumStmt *e = n->alter_enum_stmt;
		char name[QNAME_MAX];

		if (!empty(e->old_val)) {
			Node list = PG_QUERY__NODE__INIT;
			PgQuery__List items = PG_QUERY__LIST__INIT;

			items.n_items = e->n_type_name;
			items.items = e->type_name;
			list.node_case = PG_QUERY__NODE__NODE_LIST;
			list.list = &items;
			stmt_emit(
			    l, R_RENAME,
			    "renames value '%s' of enum '%s' to '%s': code using the old label "
			    "breaks; add the new value and migrate rows instead",
			    e->old_val, list_name(&list, name), e->new_val);
		}
		break;
	}
	case PG_QUERY__NODE__NODE_INDEX_STMT: {
		const PgQuery__IndexStmt *ix = n->index_stmt;
		char name[QNAME_MAX];

		names_add(&l->created_indexes, ix->idxname);
		if (!ix->concurrent && existing(l, ix->relation))
			stmt_emit(
			    l, R_CREATE_INDEX,
			    "creates index %s%s%son '%s' without CONCURRENTLY: writes to it block "
			    "until the build ends; use CREATE INDEX CONCURRENTLY in a file of its "
			    "own",
			    empty(ix->idxname) ? "" : "'", empty(ix->idxname) ? "" : ix->idxname,
			    empty(ix->idxname) ? "" : "' ", qualify(ix->relation, name));
		break;
	}
	default:
		break;
	}
}

/* Parse sql; on a syntax error, *err_line and *err_msg (owned) say where and what. */
static enum fl_err parse(const char *sql, PgQuery__ParseResult **tree, int *err_line,
                         char **err_msg, char *errbuf)
{
	PgQueryProtobufParseResult pr;
	enum fl_err rv = FL_OK;

	*tree = NULL;
	*err_msg = NULL;
	if (strlen(sql) > FL_SQL_MAX)
		return fl_errf(errbuf, FL_EINVAL, "script is over the %u byte limit", FL_SQL_MAX);
	pr = pg_query_parse_protobuf(sql);
	if (pr.error != NULL) {
		char msg[FL_SQL_ERROR_MAX];

		fl_sql_error_message(pr.error->message, msg, sizeof(msg));
		*err_line = fl_sql_error_line(sql, pr.error->cursorpos);
		*err_msg = fl_strdup(msg);
	} else {
		*tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
		                                       (const uint8_t *)pr.parse_tree.data);
		if (*tree == NULL)
			rv = fl_errf(errbuf, FL_EPARSE, "cannot decode libpg_query's parse tree");
	}
	pg_query_free_protobuf_parse_result(pr);
	return rv;
}

static enum fl_err lint_up(struct lint *l, char *errbuf)
{
	const struct fl_migration *m = l->m;
	PgQuery__ParseResult *tree = NULL;
	struct fl_sql_script script = {0};
	char *err_msg = NULL;
	int err_line = 0;
	enum fl_err rv;

	if ((rv = parse(m->sql, &tree, &err_line, &err_msg, errbuf)) != FL_OK)
		goto out;
	if (err_msg != NULL) {
		emit(l, R_SYNTAX, "migration.sql", err_line, "%s", err_msg);
		goto out;
	}
	if ((rv = fl_sql_split(m->sql, &script, errbuf)) != FL_OK)
		goto out;
	if (script.count != tree->n_stmts) {
		rv = fl_errf(errbuf, FL_EPARSE, "libpg_query gave %zu statements, then %zu",
		             tree->n_stmts, script.count);
		goto out;
	}
	l->script = &script;
	/* A lone statement runs outside any block; several share the implicit one. */
	l->in_tx = !m->no_transaction && script.count > 1;
	for (size_t i = 0; i < script.count; i++)
		lint_stmt(l, tree->stmts[i]->stmt, &script.stmts[i]);
	l->script = NULL;

out:
	free(err_msg);
	fl_sql_script_fini(&script);
	if (tree != NULL)
		pg_query__parse_result__free_unpacked(tree, NULL);
	return rv;
}

static enum fl_err lint_down(struct lint *l, char *errbuf)
{
	PgQuery__ParseResult *tree = NULL;
	char *err_msg = NULL;
	int err_line = 0;
	enum fl_err rv;

	if (l->m->down_sql == NULL) {
		emit(l, R_MISSING_DOWN, "migration.sql", 0,
		     "no down.sql: a rollout including this migration cannot be rolled back");
		return FL_OK;
	}
	rv = parse(l->m->down_sql, &tree, &err_line, &err_msg, errbuf);
	if (rv == FL_OK && err_msg != NULL)
		emit(l, R_DOWN_SYNTAX, "down.sql", err_line, "%s", err_msg);
	free(err_msg);
	if (tree != NULL)
		pg_query__parse_result__free_unpacked(tree, NULL);
	return rv;
}

enum fl_err fl_lint_migration(const struct fl_migration *m, struct fl_lint_report *out,
                              char *errbuf)
{
	struct lint l = {.m = m, .out = out};
	enum fl_err rv;

	assert(m != NULL && m->sql != NULL);
	memset(out, 0, sizeof(*out));
	if ((rv = lint_up(&l, errbuf)) != FL_OK)
		goto out;
	if ((rv = lint_down(&l, errbuf)) != FL_OK)
		goto out;
	if (m->phase == FL_PHASE_EXPAND && out->breaking) {
		const char *why = "?";

		for (size_t i = 0; i < out->count; i++) {
			const struct fl_lint_rule *r = fl_lint_rule_find(out->findings[i].rule);

			if (r != NULL && r->breaking) {
				why = r->id;
				break;
			}
		}
		emit(
		    &l, R_PHASE_MISMATCH, "migration.sql", 0,
		    "declared 'phase expand' but it is breaking (%s): mark it 'phase contract' and "
		    "apply it only after every reader has moved on",
		    why);
	}

out:
	free(l.created);
	free(l.created_indexes.v);
	free(l.created_schemas.v);
	if (rv != FL_OK)
		fl_lint_report_fini(out);
	return rv;
}

void fl_lint_report_fini(struct fl_lint_report *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->count; i++)
		free(r->findings[i].message);
	free(r->findings);
	memset(r, 0, sizeof(*r));
}

const struct fl_lint_rule *fl_lint_rules(size_t *n)
{
	*n = R_COUNT;
	return rules;
}

const struct fl_lint_rule *fl_lint_rule_find(const char *id)
{
	for (size_t i = 0; i < R_COUNT; i++)
		if (strcmp(rules[i].id, id) == 0)
			return &rules[i];
	return NULL;
}

const char *fl_lint_severity_name(enum fl_lint_severity s)
{
	return s == FL_LINT_ERROR ? "error" : "warning";
}
