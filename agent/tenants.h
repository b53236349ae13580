/*
 * The agent's tenants: an immutable, reference-counted snapshot (sorted by
 * id, ids unique) that discovery builds and the agent swaps in whole, so the
 * pull loop, the trust checks and the workers each read one consistent list
 * without holding a lock while they use it.
 *
 * And how to reach a tenant: its libpq URL, built from its server's settings
 * (agent/agent_config.h), with the password read at that moment from the server's
 * password_file or password_env. A URL holding a password is a secret: the
 * caller wipes it (fl_tenants_url_free) and never logs it; messages use
 * fl_driver_redact_url.
 *
 * Threads: a snapshot is read-only once built; fl_tenants_ref/unref may be
 * called from any thread. URL functions are thread-safe (getenv only).
 */
#ifndef FL_TENANTS_H
#define FL_TENANTS_H

#include <stdatomic.h>
#include <stddef.h>

#include "agent_config.h"
#include "err.h"
#include "label.h"

struct fl_tenant {
	char *id;
	char *server;   /* a databases[].name */
	char *database; /* its database on that server */
	char *schema;   /* NULL: the default (public) */
	struct fl_labels labels;
	int origin; /* -1: the static list; else the index of the discovery that found it */
};

struct fl_tenants {
	atomic_int refs;
	struct fl_tenant *items; /* sorted by id (strcmp), ids unique */
	size_t n;
};

/* An empty snapshot (one reference). */
struct fl_tenants *fl_tenants_new(void);
struct fl_tenants *fl_tenants_ref(struct fl_tenants *t);
void fl_tenants_unref(struct fl_tenants *t); /* NULL is a no-op */

/* Append a copy of tenant (not sorted yet); for builders only. */
void fl_tenants_add(struct fl_tenants *t, const struct fl_tenant *tenant);
/* Sort by id; FL_EINVAL naming the first id listed twice (and where each
 * came from). */
enum fl_err fl_tenants_seal(struct fl_tenants *t, char *errbuf) __attribute__((warn_unused_result));

/* The tenant with this id, or NULL. */
const struct fl_tenant *fl_tenants_find(const struct fl_tenants *t, const char *id);

/* The password of server db from its file or environment variable (heap,
 * for fl_tenants_url_free), or NULL without one. Errors: FL_EIO (unreadable
 * file, readable by others, empty), FL_ENOENT (environment variable unset). */
enum fl_err fl_tenants_password(const struct fl_agent_database *db, char **password, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * The URL for database dbname (schema: NULL for none) on server db, with its
 * password: "postgresql:///dbname?host=...&port=...&user=...&password=...",
 * or the server's url with its path replaced by dbname and the password
 * added. Every value is percent-encoded. Errors as fl_tenants_password.
 */
enum fl_err fl_tenants_url(const struct fl_agent_database *db, const char *dbname,
                           const char *schema, char **url, char *errbuf)
    __attribute__((warn_unused_result));
/* Wipe and free a URL or password; NULL is a no-op. */
void fl_tenants_url_free(char *url);

/* libpq's view of a URL without a schema parameter (host, port, user,
 * dbname, password, sslmode, sslrootcert), heap strings or NULL, for
 * commands that take them from the environment (backups). */
struct fl_conn_params {
	char *host, *port, *user, *dbname, *password, *sslmode, *sslrootcert;
};
enum fl_err fl_tenants_conn_params(const char *url, struct fl_conn_params *out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_tenants_conn_params_fini(struct fl_conn_params *p);

#endif
