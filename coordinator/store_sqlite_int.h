/*
 * Inside the SQLite store: for the files that implement store functions over
 * SQLite (store_sqlite.c; the scheduler's store_rollouts_sqlite.c), and for
 * nothing else. SQLite types stop at these files: store.h and every header a
 * caller includes stay free of them.
 *
 * Statements are prepared once per SQL text (the cache is keyed by the
 * pointer of a string constant, so each call site passes its own `static
 * const char SQL[]`) and come back reset, bindings cleared.
 */
#ifndef FL_STORE_SQLITE_INT_H
#define FL_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "label.h"
#include "store.h"

/* The connection (for sqlite3_* calls the helpers below do not cover). */
sqlite3 *fl_store_sqlite_db(struct fl_store *st);

/* The cached statement for sql (a string constant), reset; NULL with errbuf
 * set (FL_EDB) when it does not prepare. */
sqlite3_stmt *fl_store_sqlite_prep(struct fl_store *st, const char *sql, char *errbuf);

/* FL_EDB with "store 'path': what: sqlite's message" in errbuf; returns FL_EDB
 * (or FL_ESTATE for a constraint violation when `constraint_is_state`). */
enum fl_err fl_store_sqlite_fail(struct fl_store *st, int rc, const char *what,
                                 bool constraint_is_state, char *errbuf);

/* Run a statement that returns no rows to completion, then reset it. */
enum fl_err fl_store_sqlite_done(struct fl_store *st, sqlite3_stmt *s, const char *what,
                                 char *errbuf);

/* Step s (columns: the packed report, received_at) into a fresh array of
 * reports, then reset it; on error nothing is returned. */
enum fl_err fl_store_sqlite_reports(struct fl_store *st, sqlite3_stmt *s,
                                    struct fl_store_report **items, size_t *n, char *errbuf);

/* Column and binding helpers. Text columns come back as heap strings, ""
 * for NULL; blobs as heap copies. */
char *fl_store_sqlite_text(sqlite3_stmt *s, int col);
uint8_t *fl_store_sqlite_blob(sqlite3_stmt *s, int col, size_t *len);
/* Copy a blob column of exactly n bytes into out; false if its size differs. */
bool fl_store_sqlite_blob_into(sqlite3_stmt *s, int col, void *out, size_t n);
int fl_store_sqlite_bind_text(sqlite3_stmt *s, int idx, const char *text); /* NULL: "" */
int fl_store_sqlite_bind_blob(sqlite3_stmt *s, int idx, const void *p, size_t n);

/* Labels as one TEXT column: "key\x1fvalue\x1e" per label, in key order
 * (label values hold no control characters, so the separators are safe). */
char *fl_store_sqlite_labels_encode(const struct fl_labels *l);
/* Decode into out (initialised by the call); false for a column that does
 * not decode (the store was edited by hand). */
bool fl_store_sqlite_labels_decode(const char *text, struct fl_labels *out);

#endif
