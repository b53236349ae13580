/*
 * Tenant discovery: the static `tenants` list plus, for each `discovery`
 * rule, the databases of a server (pg_database, datname LIKE the pattern,
 * connectable, not templates) or the schemas of one database (pg_namespace,
 * nspname LIKE the pattern, system schemas never), each becoming a tenant
 * whose id is the rule's template with {name} replaced, and whose labels are
 * the rule's, then each matching label rule's in order (later ones win).
 *
 * Ids must be unique across everything: a duplicate refuses the whole new
 * list (the agent keeps its old one), since acting on either would be a
 * guess. A name that does not make a valid tenant id is skipped with a
 * warning. A rule whose server cannot be reached keeps the tenants it found
 * last time (from `prev`), with a warning: a database that is down is still
 * a tenant, and dropping it would tell the coordinator it is gone.
 *
 * Connections: one per rule, through the PostgreSQL driver (libpq's
 * environment kept out, bounded connect), closed after the query.
 *
 * Threads: blocking (database round trips): call from a worker or the main
 * thread, never from a network callback.
 */
#ifndef FL_DISCOVERY_H
#define FL_DISCOVERY_H

#include <stdbool.h>

#include "agent_config.h"
#include "err.h"
#include "log.h"
#include "tenants.h"

/* What one run found, for --check-config and logs. */
struct fl_discovery_stats {
	size_t found;   /* tenants from discovery rules */
	size_t failed;  /* rules whose server could not be queried */
	size_t kept;    /* tenants kept from prev for those */
	size_t skipped; /* names that make no valid tenant id */
};

/*
 * Build the tenant list of cfg into *out (one reference for the caller).
 * prev (may be NULL) is the list in use, for rules that fail. Each failure
 * is logged through log (NULL: process-wide), naming the rule and server.
 * Errors: FL_EINVAL (duplicate ids: errbuf names the id); on error *out is
 * NULL.
 */
enum fl_err fl_discovery_run(const struct fl_agent_config *cfg, const struct fl_tenants *prev,
                             const struct fl_logger *log, struct fl_tenants **out,
                             struct fl_discovery_stats *stats, char *errbuf)
    __attribute__((warn_unused_result));

/* SQL LIKE (backslash escapes, % any run, _ one character; by bytes, as
 * PostgreSQL's LIKE under a C collation), for label rules. */
bool fl_discovery_like(const char *pattern, const char *name);

#endif
