/*
 * Splitting and classifying a SQL script with PostgreSQL's own parser
 * (libpg_query): comments, quotes, E'' escapes, dollar quotes and BEGIN ATOMIC
 * bodies are right by construction; there is no hand-written lexer.
 *
 * The classification tells the driver how a file must run: inside our own
 * transaction, statement by statement, or the way Prisma runs it (one simple
 * query) when the file manages its own transaction.
 *
 * The parser is PostgreSQL 15's with its defaults (standard_conforming_strings
 * on): a script that turns standard_conforming_strings off and then relies on
 * backslash escapes in '' strings is read as the server would read it by
 * default, not as it would after the SET.
 */
#ifndef FL_SQL_SPLIT_H
#define FL_SQL_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Hard cap on a script's size: libpg_query counts offsets in int. */
#define FL_SQL_MAX (64u * 1024 * 1024)
/* The most flotilla hands to the parser at once. The parse tree of a script
 * takes about thirty times its size: a bigger script is split by the scanner
 * and parsed statement by statement, and one statement over this is not
 * parsed at all (a split error: such a file runs as Prisma runs it). */
#define FL_SQL_PIECE_MAX ((size_t)1024 * 1024)

enum fl_sql_stmt_flags {
	FL_SQL_TX_CONTROL = 1u << 0,  /* BEGIN, START TRANSACTION, COMMIT, ROLLBACK, END,
	                                 SAVEPOINT, RELEASE, PREPARE TRANSACTION, ... */
	FL_SQL_NO_TX_BLOCK = 1u << 1, /* cannot run inside a transaction block (CREATE INDEX
	                                 CONCURRENTLY, VACUUM, CREATE DATABASE, ...) */
	FL_SQL_DDL = 1u << 2,         /* changes the schema (CREATE, ALTER, DROP, GRANT, ...) */
	FL_SQL_DML = 1u << 3,         /* INSERT, UPDATE, DELETE, MERGE, COPY FROM, TRUNCATE */
	FL_SQL_MAYBE_NO_TX = 1u << 4, /* may not run in a transaction block, depending on the
	                                 server or on objects the text does not show: DROP
	                                 SUBSCRIPTION (with a slot), REINDEX or CLUSTER of a
	                                 table (partitioned), ALTER TYPE ... ADD VALUE (before
	                                 PostgreSQL 12) */
};

struct fl_sql_stmt {
	size_t offset; /* byte offset of the statement's first token in the script */
	size_t len;    /* bytes up to the end of its last token: no terminating ';',
	                  no trailing blanks or comments */
	int line;      /* 1-based line of the first token */
	unsigned flags;
};

struct fl_sql_script {
	struct fl_sql_stmt *stmts; /* owned */
	size_t count;              /* 0 for a file of only comments, blanks and ';' */
	unsigned flags;            /* OR of all statements' flags */
	bool parsed;               /* fl_sql_split read it; false: nothing is known of it */
};

/*
 * How a script can run, from its statements' flags. A lone statement runs
 * outside any transaction block, as Prisma runs it, so LONE_NO_TX also covers a
 * lone statement that only may need that (FL_SQL_MAYBE_NO_TX); a MAYBE among
 * others runs in one transaction, and fails there exactly as it does in Prisma.
 */
enum fl_sql_shape {
	FL_SQL_SHAPE_PLAIN,           /* fits in one transaction of ours */
	FL_SQL_SHAPE_OWN_TRANSACTION, /* has a TX_CONTROL statement: it manages its own */
	FL_SQL_SHAPE_LONE_NO_TX,      /* exactly one statement, and it is (maybe) NO_TX_BLOCK */
	FL_SQL_SHAPE_MIXED_NO_TX,     /* a NO_TX_BLOCK statement among others: no single
	                                 transaction can hold it */
};

/*
 * Split sql (NUL-terminated) into statements and classify each. A syntax error
 * returns FL_EPARSE with "line N: <parser message>" in errbuf and leaves
 * *out empty; so does a statement over FL_SQL_PIECE_MAX bytes; a script over
 * FL_SQL_MAX bytes returns FL_EINVAL. Memory: about thirty times
 * FL_SQL_PIECE_MAX for the parser at most, whatever the script's size. Statements
 * nested in CREATE RULE actions or BEGIN ATOMIC bodies are part of their
 * enclosing statement. Thread-safe: libpg_query keeps a memory context per
 * thread, freed when the thread ends and reachable (not leaked) until then.
 * Never call pg_query_exit(): in libpg_query 15-4.0 it crashes on a thread that
 * has not parsed, breaks later parsing on the same thread, and frees the
 * context twice on a thread that then ends.
 *
 * Remembers (split_cache.c): the result of a script split before, by a hash
 * of its bytes, is copied rather than parsed again (an agent splits one
 * release's migrations for each of its tenants); fl_sql_split_cache_stats
 * counts the splits it answered so and those it parsed.
 */
enum fl_err fl_sql_split(const char *sql, struct fl_sql_script *out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_sql_split_cache_stats(uint64_t *hits, uint64_t *misses);
/* fl_sql_split with other limits (for tests): a script of at most `whole`
 * bytes is parsed at once, a bigger one statement by statement, none of more
 * than `limit` bytes (fl_sql_split: both FL_SQL_PIECE_MAX). */
enum fl_err fl_sql_split_limited(const char *sql, size_t whole, size_t limit,
                                 struct fl_sql_script *out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_sql_script_fini(struct fl_sql_script *s);

/* Copy statement st of sql into a fresh NUL-terminated heap string. */
char *fl_sql_stmt_text(const char *sql, const struct fl_sql_stmt *st);

enum fl_sql_shape fl_sql_shape_of(const struct fl_sql_script *s);
/* "plain", "own-transaction", "lone-no-tx", "mixed-no-tx". */
const char *fl_sql_shape_name(enum fl_sql_shape shape);

/*
 * Where and what a libpg_query error (PgQueryError) is, for people.
 * fl_sql_error_line gives the 1-based line of its cursorpos, which counts
 * characters (UTF-8 code points, as the server counts them), not bytes, from
 * 1; a position at the end of input names the last line with text, and 0 (no
 * position) gives 0. fl_sql_error_message copies its message into out on one
 * line (newlines, returns and tabs escaped as \n, \r, \t), cut with "..." on
 * a character boundary to fit outsz bytes (more than 4).
 */
#define FL_SQL_ERROR_MAX 256 /* a good outsz: keeps "at or near" excerpts short */
int fl_sql_error_line(const char *sql, int cursorpos);
void fl_sql_error_message(const char *message, char *out, size_t outsz);

#endif
