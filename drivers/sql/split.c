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

#include <stdio.h>
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

/* The script being split, and where line counting has got to. */
struct splitter {
	const char *sql; /* the whole script */
	size_t len;
	struct fl_sql_script *out;
	size_t cap; /* room in out->stmts */
	int line;   /* 1-based line of sql[at] */
	size_t at;
};

static void add_stmt(struct splitter *sp, size_t first, size_t last, unsigned flags)
{
	struct fl_sql_stmt *st;

	if (sp->out->count == sp->cap)
		sp->out->stmts =
		    fl_grow(sp->out->stmts, &sp->cap, sp->out->count + 1, sizeof(*sp->out->stmts));
	for (; sp->at < first; sp->at++)
		sp->line += sp->sql[sp->at] == '\n';
	st = &sp->out->stmts[sp->out->count++];
	st->offset = first;
	st->len = last - first;
	st->line = sp->line;
	st->flags = flags;
	sp->out->flags |= flags;
}

/* A parser error in piece, which starts at byte base of the script. */
static enum fl_err piece_error(const struct splitter *sp, const char *piece, size_t base,
                               const PgQueryError *e, char *errbuf)
{
	char msg[FL_SQL_ERROR_MAX];
	int line = fl_sql_error_line(piece, e->cursorpos);

	fl_sql_error_message(e->message, msg, sizeof(msg));
	if (line > 0)
		return fl_errf(errbuf, FL_EPARSE, "line %d: %s", line + line_at(sp->sql, base) - 1,
		               msg);
	return fl_errf(errbuf, FL_EPARSE, "%s", msg);
}

/*
 * Parse piece, the bytes of the script from base on (NUL-terminated; the
 * script itself when base is 0), and add its statements. On a parse error
 * nothing is added, and *cut_short (if not NULL) says whether the parser
 * ran out of input (a statement cut short).
 */
static enum fl_err parse_piece(struct splitter *sp, const char *piece, size_t base, bool *cut_short,
                               char *errbuf)
{
	PgQueryProtobufParseResult pr = {0};
	PgQueryScanResult sr = {0};
	PgQuery__ParseResult *tree = NULL;
	PgQuery__ScanResult *scan = NULL;
	size_t len = strlen(piece), t = 0, added = sp->out->count;
	enum fl_err rv = FL_OK;

	pr = pg_query_parse_protobuf(piece);
	if (cut_short != NULL)
		*cut_short = false;
	if (pr.error != NULL) {
		rv = piece_error(sp, piece, base, pr.error, errbuf);
		if (cut_short != NULL)
			*cut_short = strstr(pr.error->message, "end of input") != NULL;
		goto out;
	}
	tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
	                                      (const uint8_t *)pr.parse_tree.data);
	if (tree == NULL) {
		rv = fl_errf(errbuf, FL_EPARSE, "cannot decode libpg_query's parse tree");
		goto out;
	}
	/* The scanner accepts whatever the parser accepted. */
	sr = pg_query_scan(piece);
	if (sr.error != NULL) {
		rv = piece_error(sp, piece, base, sr.error, errbuf);
		goto out;
	}
	scan = pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
	if (scan == NULL) {
		rv = fl_errf(errbuf, FL_EPARSE, "cannot decode libpg_query's tokens");
		goto out;
	}
	for (size_t i = 0; i < tree->n_stmts; i++) {
		const PgQuery__RawStmt *raw = tree->stmts[i];
		size_t start = (size_t)raw->stmt_location;
		size_t end = raw->stmt_len > 0 ? start + (size_t)raw->stmt_len : len;
		size_t first = 0, last = 0;

		if (raw->stmt == NULL || raw->stmt_location < 0 || raw->stmt_len < 0 || end > len ||
		    !trim(piece, scan, &t, start, end, &first, &last)) {
			rv = fl_errf(errbuf, FL_EPARSE,
			             "libpg_query gave statement %zu bounds that hold no token",
			             sp->out->count + 1);
			goto out;
		}
		add_stmt(sp, base + first, base + last, classify(raw->stmt));
	}
out:
	if (rv != FL_OK)
		sp->out->count = added;
	if (scan != NULL)
		pg_query__scan_result__free_unpacked(scan, NULL);
	if (tree != NULL)
		pg_query__parse_result__free_unpacked(tree, NULL);
	pg_query_free_scan_result(sr);
	pg_query_free_protobuf_parse_result(pr);
	return rv;
}

/* Byte offset of the 1-based character position pos in text (UTF-8). */
static size_t byte_at(const char *text, size_t len, int pos)
{
	size_t off = 0;

	for (int ch = 1; ch < pos && off < len; ch++)
		off += utf8_len((unsigned char)text[off]);
	return off < len ? off : len;
}

/*
 * Where statements end in text, a window of the script starting at a
 * statement's start: the scanner's ends that a ';' closes, and the end of
 * text when it is the end of the script. In a window cut short the last
 * statement runs into the cut (or into an unterminated string the cut made:
 * the scanner stops there, and what came before is scanned again).
 * *ends is heap, *n may be 0.
 */
static enum fl_err find_ends(const struct splitter *sp, char *text, size_t len, size_t base,
                             bool last, size_t **ends, size_t *n, char *errbuf)
{
	PgQuerySplitResult cut = pg_query_split_with_scanner(text);
	size_t cap = 0, keep = len;
	enum fl_err rv = FL_OK;

	*ends = NULL;
	*n = 0;
	if (cut.error != NULL) {
		size_t at = byte_at(text, len, cut.error->cursorpos);

		if (last) {
			rv = piece_error(sp, text, base, cut.error, errbuf);
			goto out;
		}
		if (at == 0)
			goto out; /* the first statement runs past the window */
		pg_query_free_split_result(cut);
		keep = at;
		text[keep] = '\0';
		cut = pg_query_split_with_scanner(text);
		if (cut.error != NULL)
			goto out; /* no end found: the caller says why */
	}
	for (int i = 0; i < cut.n_stmts; i++) {
		size_t end = (size_t)cut.stmts[i]->stmt_location + (size_t)cut.stmts[i]->stmt_len;

		if (end >= keep || text[end] != ';')
			continue; /* runs into the end of the window */
		*ends = fl_grow(*ends, &cap, *n + 1, sizeof(**ends));
		(*ends)[(*n)++] = end;
	}
	if (last && (*n == 0 || (*ends)[*n - 1] + 1 < len)) {
		*ends = fl_grow(*ends, &cap, *n + 1, sizeof(**ends));
		(*ends)[(*n)++] = len;
	}
out:
	pg_query_free_split_result(cut);
	return rv;
}

/*
 * Parse the statements of the script's window that starts at base (a
 * statement's start) and spans the piece limit and one byte, so that it holds
 * any statement within the limit whole. *next gets where the next window
 * starts: past the last statement parsed.
 */
static enum fl_err split_window(struct splitter *sp, size_t base, size_t limit, size_t *next,
                                char *errbuf)
{
	size_t len = sp->len - base < limit + 1 ? sp->len - base : limit + 1;
	bool last = base + len == sp->len;
	char *text = fl_strndup(sp->sql + base, len);
	char first[FL_ERRBUF_SIZE], eb[FL_ERRBUF_SIZE] = "";
	size_t *ends = NULL, n = 0, b = 0, i = 0;
	enum fl_err rv;

	if ((rv = find_ends(sp, text, len, base, last, &ends, &n, errbuf)) != FL_OK)
		goto out;
	while (i < n) {
		size_t j = i;

		first[0] = '\0';
		for (;;) {
			bool cut_short = false;
			/* With its ';': "WHERE;" fails at the ';', as in the whole script. */
			size_t stop = ends[j] < len ? ends[j] + 1 : ends[j];
			char *piece = fl_strndup(sp->sql + base + b, stop - b);

			rv = parse_piece(sp, piece, base + b, &cut_short, eb);
			free(piece);
			if (rv == FL_OK)
				break;
			if (first[0] == '\0')
				snprintf(first, sizeof(first), "%s", eb);
			/* Only a statement cut short at a ';' inside it (a BEGIN ATOMIC
			 * body) is joined with what follows; any other error stands. */
			if (!cut_short || (++j >= n && last)) {
				rv = fl_errf(errbuf, FL_EPARSE, "%s", first);
				goto out;
			}
			if (j >= n)
				goto done; /* the rest of it is in the next window */
		}
		b = ends[j] < len ? ends[j] + 1 : ends[j];
		i = j + 1;
	}
done:
	*next = base + b;
	if (b == 0 && !(last && n > 0)) {
		size_t at = base;

		while (at < sp->len && blank(sp->sql[at]))
			at++;
		rv = fl_errf(errbuf, FL_EPARSE,
		             "line %d: a statement of more than %zu bytes (or a quote or "
		             "parenthesis never closed): more than flotilla hands to the parser "
		             "at once",
		             line_at(sp->sql, at), limit);
	}
out:
	free(ends);
	free(text);
	return rv;
}

/*
 * A script over the piece limit, in windows of about the limit: the scanner
 * finds where statements end (it sees quotes, comments and parentheses, not
 * the grammar), and the text between two ends is parsed on its own, so every
 * byte is parsed once. The scanner ends a statement at every ';' outside
 * parentheses, also inside a BEGIN ATOMIC body: a piece cut short there is
 * joined with the next until it parses. Memory stays bounded by the limit,
 * not by the script.
 */
static enum fl_err split_in_pieces(struct splitter *sp, size_t limit, char *errbuf)
{
	size_t base = 0, next;
	enum fl_err rv;

	while (base < sp->len) {
		if ((rv = split_window(sp, base, limit, &next, errbuf)) != FL_OK)
			return rv;
		base = next;
	}
	return FL_OK;
}

enum fl_err fl_sql_split_limited(const char *sql, size_t whole, size_t limit,
                                 struct fl_sql_script *out, char *errbuf)
{
	struct splitter sp = {sql, strlen(sql), out, 0, 1, 0};
	enum fl_err rv;

	memset(out, 0, sizeof(*out));
	if (sp.len > FL_SQL_MAX)
		return fl_errf(errbuf, FL_EINVAL, "script of %zu bytes is over the %u byte limit",
		               sp.len, FL_SQL_MAX);
	if (sp.len <= whole)
		rv = parse_piece(&sp, sql, 0, NULL, errbuf);
	else
		rv = split_in_pieces(&sp, limit, errbuf);
	if (rv != FL_OK) {
		fl_sql_script_fini(out);
		return rv;
	}
	out->parsed = true;
	return FL_OK;
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
