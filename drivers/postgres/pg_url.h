/*
 * Turning a Prisma DATABASE_URL into a URL libpq accepts.
 *
 * Prisma's URLs carry query parameters libpq rejects ("invalid URI query
 * parameter"). We keep every parameter libpq knows (asked of PQconndefaults(),
 * so the list follows the installed libpq), take `schema` out (it is the target
 * schema, as in Prisma), translate the TLS ones whose meaning differs, and drop
 * the rest (pool settings and the like), as Prisma discards what it does not
 * know. Added when absent: application_name=flotilla. (The connect deadline,
 * keepalives and the rest of the connection's bounds are pg_conn's.)
 *
 * Prisma's TLS parameters: `sslcert` is the server's CA certificate (libpq's
 * sslrootcert); `sslaccept=strict` asks for full verification (libpq's
 * sslmode=verify-full); `sslidentity` (a PKCS#12 bundle) and its
 * `sslpassword` have no libpq equivalent and are dropped with a warning.
 */
#ifndef FL_PG_URL_H
#define FL_PG_URL_H

#include <stdbool.h>

#include "err.h"
#include "log.h"

/*
 * Rewrite url. On success *libpq_url is a heap string for the caller, to be
 * wiped with sodium_memzero (it may hold the password) before it is freed, and
 * *schema the `schema` parameter (heap, decoded) or NULL when the URL has none
 * (Prisma then leaves search_path alone and uses "public"). Parameters
 * dropped for a reason the user should know go to log as warnings.
 * Errors: FL_EINVAL (not a postgres:// URL, a bad percent-escape anywhere in
 * the user info or the parameters: refused here, so that libpq never quotes a
 * password back in its message).
 */
enum fl_err fl_pg_url_rewrite(const char *url, const struct fl_logger *log, char **libpq_url,
                              char **schema, char *errbuf) __attribute__((warn_unused_result));

/* url with the password of its user info and any `password`/`sslpassword`
 * parameter replaced by "***", for messages; caller frees. Works for any
 * scheme://user:password@host URL and for key=value connection strings. */
char *fl_pg_url_redact(const char *url);

/* Whether the password holds a '?', '#', '/' or '@' that should have been
 * percent-encoded: libpq then splits the URL elsewhere, and its messages may
 * quote pieces of the password. */
bool fl_pg_url_userinfo_unencoded(const char *url);

/* The password in url's user info or `password` parameter, raw and
 * percent-decoded, or NULL. Caller wipes and frees. */
char *fl_pg_url_password(const char *url, char **decoded);

/*
 * Hide the password fields in a message (buf: NUL-terminated, size bytes,
 * cut to fit): the password of every scheme://user:password@host URL in it
 * and the value of every password= or sslpassword= key. Only those fields:
 * the password's text elsewhere (a user or database named like it, a port
 * number that contains it) is left alone, so that the message stays true and
 * does not tell what the password is.
 */
void fl_pg_url_scrub(char *buf, size_t size);

#endif
