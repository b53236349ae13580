/*
 * Splitting and classifying a SQL script with PostgreSQL's own parser
 * (libpg_query): comments, quotes, E'' escapes, dollar quotes and BEGIN ATOMIC
 * bodies are right by construction; there is no hand-written lexer.
 *
 * The classification tells the driver how a file must run: inside our own
 * transaction, statement by statement, or the way Prisma runs it (one simple
 * query) when the file manages its own transaction.
 */
#ifndef FL_SQL_SPLIT_H
#define FL_SQL_SPLIT_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum fl_sql_stmt_flags {
	FL_SQL_TX_CONTROL = 1u << 0,  /* BEGIN, START TRANSACTION, COMMIT, ROLLBACK, END, ... */
	FL_SQL_NO_TX_BLOCK = 1u << 1, /* cannot run inside a transaction block (CREATE INDEX
					 CONCURRENTLY, VACUUM, CREATE DATABASE, ...) */
	FL_SQL_DDL = 1u << 2,         /* changes the schema */
	FL_SQL_DML = 1u << 3,         /* INSERT, UPDATE, DELETE, MERGE, COPY */
};

struct fl_sql_stmt {
	size_t offset; /* byte offset of the statement's first token in the script */
	size_t len;    /* bytes up to, not including, the terminating ';' */
	int line;      /* 1-based line of the first token */
	unsigned flags;
};

struct fl_sql_script {
	struct fl_sql_stmt *stmts; /* owned */
	size_t count;              /* 0 for a file of only comments and blanks */
	unsigned flags;            /* OR of all statements' flags */
};

/*
 * Split sql (NUL-terminated) into statements and classify each. A syntax error
 * returns FL_EPARSE with "line N: <parser message>" in errbuf and leaves
 * *out empty. Thread-safe (libpg_query keeps per-thread memory contexts).
 */
enum fl_err fl_sql_split(const char *sql, struct fl_sql_script *out, char *errbuf)
	__attribute__((warn_unused_result));
void fl_sql_script_fini(struct fl_sql_script *s);

/* Copy statement i into a fresh NUL-terminated heap string. */
char *fl_sql_stmt_text(const char *sql, const struct fl_sql_stmt *st);

#endif
