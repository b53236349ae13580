/*
 * Statement boundaries come from the parser (RawStmt.stmt_location/stmt_len);
 * they include the blanks and comments before a statement and, for the last
 * one, everything up to the end of input. The scanner's tokens (comments are
 * tokens there) trim each range: it starts at its first real token and ends
 * before the comments and blanks that follow its last one. Only token starts
 * are trusted, as libpg_query 15-4.0 reports wrong ends for U&'' and U&""
 * tokens. Nothing here reads SQL syntax from the text itself.
 *
 * Classification is by parse node type, with the options that matter read
 * from the node: CONCURRENTLY, VACUUM vs ANALYZE, DISCARD ALL, and so on. The
 * NO_TX_BLOCK list follows PostgreSQL 15's PreventInTransactionBlock() callers.
 */
#include "split.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "mem.h"

typedef PgQuery__Node Node;

static const char *def_name(const Node *n)
{
	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
		return NULL;
	return n->def_elem->defname;
}

/* A boolean option as defGetBoolean reads it; dflt when absent. */
static bool opt_bool(Node **opts, size_t n, const char *name, bool dflt)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = NULL;
		const Node *arg;

		if (def_name(opts[i]) == NULL || strcmp(def_name(opts[i]), name) != 0)
			continue;
		arg = opts[i]->def_elem->arg;
		if (arg == NULL)
			return true;
		switch (arg->node_case) {
		case PG_QUERY__NODE__NODE_STRING:
			s = arg->string->sval;
			break;
		case PG_QUERY__NODE__NODE_INTEGER:
			return arg->integer->ival != 0;
		case PG_QUERY__NODE__NODE_BOOLEAN:
			return arg->boolean->boolval;
		case PG_QUERY__NODE__NODE_A_CONST:
			if (arg->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL)
				s = arg->a_const->sval->sval;
			else if (arg->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL)
				return arg->a_const->ival->ival != 0;
			else if (arg->a_const->val_case == PG_QUERY__A__CONST__VAL_BOOLVAL)
				return arg->a_const->boolval->boolval;
			break;
		case PG_QUERY__NODE__NODE_TYPE_NAME: /* `= off` parses as a type name */
			if (arg->type_name->n_names == 1 &&
			    arg->type_name->names[0]->node_case == PG_QUERY__NODE__NODE_STRING)
				s = arg->type_name->names[0]->string->sval;
			break;
		default:
			break;
		}
		if (s == NULL)
			return dflt;
		if (strcasecmp(s, "false") == 0 || strcasecmp(s, "off") == 0 ||
		    strcasecmp(s, "no") == 0 || strcmp(s, "0") == 0)
			return false;
		return true;
	}
	return dflt;
}

static bool has_opt(Node **opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (def_name(opts[i]) != NULL && strcmp(def_name(opts[i]), name) == 0)
			return true;
	return false;
}

static bool with_has_dml(const PgQuery__WithClause *w);

static unsigned classify_select(const PgQuery__SelectStmt *s)
{
	if (s == NULL)
		return 0;
	/* SELECT ... INTO creates a table. */
	if (s->into_clause != NULL)
		return FL_SQL_DDL;
	if (with_has_dml(s->with_clause))
		return FL_SQL_DML;
	return classify_select(s->larg) | classify_select(s->rarg);
}

/* WITH x AS (DELETE ...) SELECT ...: a data-modifying CTE. */
static bool with_has_dml(const PgQuery__WithClause *w)
{
	if (w == NULL)
		return false;
	for (size_t i = 0; i < w->n_ctes; i++) {
		const Node *c = w->ctes[i];
		const Node *q;

		if (c->node_case != PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR)
			continue;
		q = c->common_table_expr->ctequery;
		if (q == NULL)
			continue;
		switch (q->node_case) {
		case PG_QUERY__NODE__NODE_INSERT_STMT:
		case PG_QUERY__NODE__NODE_UPDATE_STMT:
		case PG_QUERY__NODE__NODE_DELETE_STMT:
		case PG_QUERY__NODE__NODE_MERGE_STMT:
			return true;
		case PG_QUERY__NODE__NODE_SELECT_STMT:
			if (classify_select(q->select_stmt) & FL_SQL_DML)
				return true;
			break;
		default:
			break;
		}
	}
	return false;
}

static unsigned classify_alter_table(const PgQuery__AlterTableStmt *a)
{
	unsigned f = FL_SQL_DDL;

	for (size_t i = 0; i < a->n_cmds; i++) {
		const PgQuery__AlterTableCmd *c;

		if (a->cmds[i]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
			continue;
		c = a->cmds[i]->alter_table_cmd;
		if (c->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartition &&
		    c->def != NULL && c->def->node_case == PG_QUERY__NODE__NODE_PARTITION_CMD &&
		    c->def->partition_cmd->concurrent)
			f |= FL_SQL_NO_TX_BLOCK;
	}
	return f;
}

static unsigned classify_subscription(const Node *n)
{
	if (n->node_case == PG_QUERY__NODE__NODE_CREATE_SUBSCRIPTION_STMT) {
		const PgQuery__CreateSubscriptionStmt *s = n->create_subscription_stmt;
		/* connect = false makes create_slot default to false. */
		bool connect = opt_bool(s->options, s->n_options, "connect", true);

		if (opt_bool(s->options, s->n_options, "create_slot", connect))
			return FL_SQL_DDL | FL_SQL_NO_TX_BLOCK;
		return FL_SQL_DDL;
	}
	if (n->node_case == PG_QUERY__NODE__NODE_ALTER_SUBSCRIPTION_STMT) {
		const PgQuery__AlterSubscriptionStmt *s = n->alter_subscription_stmt;

		switch (s->kind) {
		case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_REFRESH:
			return FL_SQL_DDL | FL_SQL_NO_TX_BLOCK;
		case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_SET_PUBLICATION:
		case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_ADD_PUBLICATION:
		case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_DROP_PUBLICATION:
			if (opt_bool(s->options, s->n_options, "refresh", true))
				return FL_SQL_DDL | FL_SQL_NO_TX_BLOCK;
			return FL_SQL_DDL;
		default:
			return FL_SQL_DDL;
		}
	}
	/* DROP SUBSCRIPTION: only when the subscription has a slot. */
	return FL_SQL_DDL | FL_SQL_MAYBE_NO_TX;
}

static unsigned classify(const Node *n)
{
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
		switch (n->transaction_stmt->kind) {
		case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
		case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
			return FL_SQL_TX_CONTROL | FL_SQL_NO_TX_BLOCK;
		default:
			return FL_SQL_TX_CONTROL;
		}

	case PG_QUERY__NODE__NODE_INSERT_STMT:
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
	case PG_QUERY__NODE__NODE_DELETE_STMT:
	case PG_QUERY__NODE__NODE_MERGE_STMT:
	case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
		return FL_SQL_DML;
	case PG_QUERY__NODE__NODE_COPY_STMT:
		return n->copy_stmt->is_from ? FL_SQL_DML : 0;
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		return classify_select(n->select_stmt);
	case PG_QUERY__NODE__NODE_EXPLAIN_STMT: {
		const PgQuery__ExplainStmt *e = n->explain_stmt;

		/* EXPLAIN ANALYZE runs the statement. */
		if (e->query != NULL && opt_bool(e->options, e->n_options, "analyze", false))
			return classify(e->query) & (FL_SQL_DML | FL_SQL_DDL);
		return 0;
	}

	/* Run in a transaction, change no schema. */
	case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
	case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
	case PG_QUERY__NODE__NODE_LOCK_STMT:
	case PG_QUERY__NODE__NODE_CHECK_POINT_STMT:
	case PG_QUERY__NODE__NODE_NOTIFY_STMT:
	case PG_QUERY__NODE__NODE_LISTEN_STMT:
	case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
	case PG_QUERY__NODE__NODE_PREPARE_STMT:
	case PG_QUERY__NODE__NODE_EXECUTE_STMT:
	case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
	case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
	case PG_QUERY__NODE__NODE_FETCH_STMT:
	case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
	case PG_QUERY__NODE__NODE_LOAD_STMT:
	case PG_QUERY__NODE__NODE_CONSTRAINTS_SET_STMT:
	case PG_QUERY__NODE__NODE_REFRESH_MAT_VIEW_STMT:
	case PG_QUERY__NODE__NODE_DO_STMT: /* opaque: its body is plpgsql */
	case PG_QUERY__NODE__NODE_CALL_STMT:
		return 0;
	case PG_QUERY__NODE__NODE_DISCARD_STMT:
		return n->discard_stmt->target == PG_QUERY__DISCARD_MODE__DISCARD_ALL
		           ? FL_SQL_NO_TX_BLOCK
		           : 0;
	case PG_QUERY__NODE__NODE_VACUUM_STMT:
		return n->vacuum_stmt->is_vacuumcmd ? FL_SQL_NO_TX_BLOCK : 0;
	case PG_QUERY__NODE__NODE_CLUSTER_STMT:
		/* Without a table it clusters them all, one transaction each. */
		return n->cluster_stmt->relation == NULL ? FL_SQL_NO_TX_BLOCK : FL_SQL_MAYBE_NO_TX;
	case PG_QUERY__NODE__NODE_REINDEX_STMT: {
		const PgQuery__ReindexStmt *r = n->reindex_stmt;

		if (opt_bool(r->params, r->n_params, "concurrently", false))
			return FL_SQL_NO_TX_BLOCK;
		switch (r->kind) {
		case PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SCHEMA:
		case PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SYSTEM:
		case PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_DATABASE:
			return FL_SQL_NO_TX_BLOCK;
		default:
			return FL_SQL_MAYBE_NO_TX;
		}
	}
	case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
		return FL_SQL_NO_TX_BLOCK;

	case PG_QUERY__NODE__NODE_INDEX_STMT:
		return FL_SQL_DDL | (n->index_stmt->concurrent ? FL_SQL_NO_TX_BLOCK : 0);
	case PG_QUERY__NODE__NODE_DROP_STMT:
		return FL_SQL_DDL | (n->drop_stmt->concurrent ? FL_SQL_NO_TX_BLOCK : 0);
	case PG_QUERY__NODE__NODE_CREATEDB_STMT:
	case PG_QUERY__NODE__NODE_DROPDB_STMT:
	case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
	case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
		return FL_SQL_DDL | FL_SQL_NO_TX_BLOCK;
	case PG_QUERY__NODE__NODE_ALTER_DATABASE_STMT: {
		const PgQuery__AlterDatabaseStmt *a = n->alter_database_stmt;

		return FL_SQL_DDL |
		       (has_opt(a->options, a->n_options, "tablespace") ? FL_SQL_NO_TX_BLOCK : 0);
	}
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		return classify_alter_table(n->alter_table_stmt);
	case PG_QUERY__NODE__NODE_ALTER_ENUM_STMT:
		/* ADD VALUE (not RENAME VALUE) was refused in a block before 12. */
		return FL_SQL_DDL | (n->alter_enum_stmt->old_val == NULL ||
		                             n->alter_enum_stmt->old_val[0] == '\0'
		                         ? FL_SQL_MAYBE_NO_TX
		                         : 0);
	case PG_QUERY__NODE__NODE_CREATE_SUBSCRIPTION_STMT:
	case PG_QUERY__NODE__NODE_ALTER_SUBSCRIPTION_STMT:
	case PG_QUERY__NODE__NODE_DROP_SUBSCRIPTION_STMT:
		return classify_subscription(n);

	default:
		/* Every other statement changes the catalog. */
		return FL_SQL_DDL;
	}
}

/* Bytes in the character led by c, as PostgreSQL's pg_utf_mblen counts them. */
static size_t utf8_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 1;
}

static bool blank(char c)
{
	/* The scanner's `space`: [ \t\n\r\f\v] */
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int line_at(const char *sql, size_t off)
{
	int line = 1;

	for (size_t i = 0; i < off; i++)
		if (sql[i] == '\n')
			line++;
	return line;
}

int fl_sql_error_line(const char *sql, int cursorpos)
{
	size_t off = 0;

	if (cursorpos <= 0)
		return 0;
	for (int ch = 1; ch < cursorpos && sql[off] != '\0'; ch++)
		for (size_t k = utf8_len((unsigned char)sql[off]); k > 0 && sql[off] != '\0'; k--)
			off++;
	/* "at end of input" points past the last blank: name the last line with text. */
	if (sql[off] == '\0')
		while (off > 0 && blank(sql[off - 1]))
			off--;
	return line_at(sql, off);
}

void fl_sql_error_message(const char *message, char *out, size_t outsz)
{
	static const char more[] = "...";
	size_t o = 0;

	if (outsz <= sizeof(more)) { /* too small for anything useful: say nothing */
		if (outsz > 0)
			out[0] = '\0';
		return;
	}
	for (const char *p = message; *p != '\0'; p++) {
		char esc = *p == '\n' ? 'n' : *p == '\r' ? 'r' : *p == '\t' ? 't' : 0;
		size_t need = esc ? 2 : 1;

		if (o + need + sizeof(more) > outsz) {
			/* Cut on a character boundary: drop a last character copied in part. */
			size_t lead = o;

			while (lead > 0 && ((unsigned char)out[lead - 1] & 0xc0) == 0x80)
				lead--;
			if (lead > 0 && lead - 1 + utf8_len((unsigned char)out[lead - 1]) > o)
				o = lead - 1;
			memcpy(out + o, more, sizeof(more));
			return;
		}
		if (esc) {
			out[o++] = '\\';
			out[o++] = esc;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

static enum fl_err parse_error(const char *sql, const PgQueryError *e, char *errbuf)
{
	char msg[FL_SQL_ERROR_MAX];
	int line = fl_sql_error_line(sql, e->cursorpos);

	fl_sql_error_message(e->message, msg, sizeof(msg));
	if (line > 0)
		return fl_errf(errbuf, FL_EPARSE, "line %d: %s", line, msg);
	return fl_errf(errbuf, FL_EPARSE, "%s", msg);
}

static bool is_comment(const PgQuery__ScanToken *t)
{
	return t->token == PG_QUERY__TOKEN__SQL_COMMENT || t->token == PG_QUERY__TOKEN__C_COMMENT;
}

/*
 * Trim [start, end) to [first, last): from its first non-comment token to the
 * end of its last one. The scanner's token ends are wrong for U&'' strings and
 * U&"" identifiers, so the end is found from the other side: before any
 * comments that follow the last token, then before blanks. *t is a cursor into
 * the tokens, which are in input order as the statements are.
 */
static bool trim(const char *sql, const PgQuery__ScanResult *scan, size_t *t, size_t start,
                 size_t end, size_t *first, size_t *last)
{
	bool found = false;
	size_t cut = end;

	while (*t < scan->n_tokens && (size_t)scan->tokens[*t]->start < start)
		(*t)++;
	for (; *t < scan->n_tokens && (size_t)scan->tokens[*t]->start < end; (*t)++) {
		const PgQuery__ScanToken *tok = scan->tokens[*t];

		if (!is_comment(tok)) {
			if (!found)
				*first = (size_t)tok->start;
			found = true;
			cut = end;
		} else if (found && cut == end) {
			cut = (size_t)tok->start;
		}
	}
	if (!found)
		return false;
	while (cut > *first && blank(sql[cut - 1]))
		cut--;
	*last = cut;
	return true;
}

enum fl_err fl_sql_split(const char *sql, struct fl_sql_script *out, char *errbuf)
{
	PgQueryProtobufParseResult pr = {0};
	PgQueryScanResult sr = {0};
	PgQuery__ParseResult *tree = NULL;
	PgQuery__ScanResult *scan = NULL;
	size_t sql_len = strlen(sql);
	size_t t = 0, nl_at = 0;
	int line = 1;
	enum fl_err rv = FL_OK;

	memset(out, 0, sizeof(*out));
	if (sql_len > FL_SQL_MAX)
		return fl_errf(errbuf, FL_EINVAL, "script of %zu bytes is over the %u byte limit",
		               sql_len, FL_SQL_MAX);

	pr = pg_query_parse_protobuf(sql);
	if (pr.error != NULL) {
		rv = parse_error(sql, pr.error, errbuf);
		goto out;
	}
	tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
	                                      (const uint8_t *)pr.parse_tree.data);
	if (tree == NULL) {
		rv = fl_errf(errbuf, FL_EPARSE, "cannot decode libpg_query's parse tree");
		goto out;
	}
	/* The scanner accepts whatever the parser accepted. */
	sr = pg_query_scan(sql);
	if (sr.error != NULL) {
		rv = parse_error(sql, sr.error, errbuf);
		goto out;
	}
	scan = pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
	if (scan == NULL) {
		rv = fl_errf(errbuf, FL_EPARSE, "cannot decode libpg_query's tokens");
		goto out;
	}

	out->stmts = fl_calloc(tree->n_stmts, sizeof(*out->stmts));
	for (size_t i = 0; i < tree->n_stmts; i++) {
		const PgQuery__RawStmt *raw = tree->stmts[i];
		size_t start = (size_t)raw->stmt_location;
		size_t end = raw->stmt_len > 0 ? start + (size_t)raw->stmt_len : sql_len;
		struct fl_sql_stmt *st;
		size_t first = 0, last = 0;

		if (raw->stmt == NULL || raw->stmt_location < 0 || raw->stmt_len < 0 ||
		    end > sql_len || !trim(sql, scan, &t, start, end, &first, &last)) {
			rv = fl_errf(errbuf, FL_EPARSE,
			             "libpg_query gave statement %zu bounds that hold no token",
			             i + 1);
			goto out;
		}
		line += line_at(sql + nl_at, first - nl_at) - 1;
		nl_at = first;
		st = &out->stmts[out->count++];
		st->offset = first;
		st->len = last - first;
		st->line = line;
		st->flags = classify(raw->stmt);
		out->flags |= st->flags;
	}

	out->parsed = true;
out:
	if (rv != FL_OK)
		fl_sql_script_fini(out);
	if (scan != NULL)
		pg_query__scan_result__free_unpacked(scan, NULL);
	if (tree != NULL)
		pg_query__parse_result__free_unpacked(tree, NULL);
	pg_query_free_scan_result(sr);
	pg_query_free_protobuf_parse_result(pr);
	return rv;
}

void fl_sql_script_fini(struct fl_sql_script *s)
{
	if (s == NULL)
		return;
	free(s->stmts);
	memset(s, 0, sizeof(*s));
}

char *fl_sql_stmt_text(const char *sql, const struct fl_sql_stmt *st)
{
	return fl_strndup(sql + st->offset, st->len);
}

enum fl_sql_shape fl_sql_shape_of(const struct fl_sql_script *s)
{
	if (s->flags & FL_SQL_TX_CONTROL)
		return FL_SQL_SHAPE_OWN_TRANSACTION;
	if (s->count == 1 && (s->flags & (FL_SQL_NO_TX_BLOCK | FL_SQL_MAYBE_NO_TX)))
		return FL_SQL_SHAPE_LONE_NO_TX;
	if (s->flags & FL_SQL_NO_TX_BLOCK)
		return FL_SQL_SHAPE_MIXED_NO_TX;
	return FL_SQL_SHAPE_PLAIN;
}

const char *fl_sql_shape_name(enum fl_sql_shape shape)
{
	switch (shape) {
	case FL_SQL_SHAPE_PLAIN:
		return "plain";
	case FL_SQL_SHAPE_OWN_TRANSACTION:
		return "own-transaction";
	case FL_SQL_SHAPE_LONE_NO_TX:
		return "lone-no-tx";
	case FL_SQL_SHAPE_MIXED_NO_TX:
		return "mixed-no-tx";
	}
	return "unknown";
}
