/*
 * One error enum for all of flotilla. Values are stable (scripts and the wire
 * may carry them); fl_strerror() gives the text. Detail for humans (path and
 * line, SQLSTATE, the server's message) travels in an optional error buffer of
 * FL_ERRBUF_SIZE bytes that the caller passes in, as curl's ERRORBUFFER does.
 */
#ifndef FL_ERR_H
#define FL_ERR_H

#include <stddef.h>

#define FL_ERRBUF_SIZE 1024

enum fl_err {
	FL_OK = 0,
	FL_EINVAL = 1,     /* bad argument or usage */
	FL_ENOENT = 2,     /* file, migration or row not found */
	FL_EIO = 3,        /* reading or writing a file failed */
	FL_EPARSE = 4,     /* malformed migration, SQL, directive or config */
	FL_EGRAPH = 5,     /* duplicate id, unknown requires, cycle */
	FL_ECONNECT = 6,   /* cannot reach the database */
	FL_EAUTH = 7,      /* the database refused our credentials */
	FL_ESQL = 8,       /* the server rejected a statement (not retryable) */
	FL_ERETRY = 9,     /* lock timeout, serialization failure, deadlock: try again */
	FL_ECONNLOST = 10, /* the connection dropped mid-work */
	FL_ETIMEDOUT = 11, /* a bounded wait ran out */
	FL_EFAILED = 12,   /* a failed migration blocks further work until resolved */
	FL_ECHECKSUM = 13, /* an applied migration was edited afterwards */
	FL_EVERIFY = 14,   /* verify.sql did not return true */
	FL_ESTATE = 15,    /* the request does not fit the history (resolve, rollback) */
	FL_ENOTSUP = 16,   /* not supported, e.g. rollback without down.sql */
	FL_ECANCELED = 17, /* stopped on request */
	FL_ELOCKED = 18,   /* another deployer holds the migration lock */
	FL_EDB = 19,       /* the database refused flotilla's own bookkeeping (history,
	                      lock, catalog queries): not a migration failure */
	FL_EBUSY = 20,     /* the tables a migration needs stayed locked (or deadlocked, or
	                      in serialization conflicts) for the whole retry budget; nothing
	                      was applied or recorded, so simply run again later */
	FL_EREFUSED = 21,  /* the peer answered with the envelope refusal (docs/WIRE.md): it
	                      could not open our request (key unknown or revoked, or not
	                      the key we sealed for) and did not act on it */
};

const char *fl_strerror(enum fl_err err);

/* Write a formatted message into errbuf (FL_ERRBUF_SIZE bytes) if errbuf is
 * not NULL; returns err so callers can write `return fl_errf(buf, FL_EIO, ...)`. */
enum fl_err fl_errf(char *errbuf, enum fl_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The text of errno value errnum (strerror_r, so any thread may call it),
 * written into buf[0..size), or "error N" when there is none; returns buf. */
const char *fl_err_errno(int errnum, char *buf, size_t size);

/* Prefix what errbuf already says with more context: "ctx: old message". */
void fl_err_prefix(char *errbuf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s[0..len), quoted safely into out (outlen >= 16 bytes) for a message:
 * control characters (C0, DEL, C1) and, in text that is not UTF-8, every
 * byte >= 0x80 written as \xNN; cut with "..." between characters. */
const char *fl_err_quote(char *out, size_t outlen, const char *s, size_t len);

#endif
