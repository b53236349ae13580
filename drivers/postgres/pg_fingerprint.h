/*
 * The schema fingerprint: SHA-256 over a canonical dump of the target
 * schema's catalog, so that tenants at the same version can be compared.
 *
 * The dump is one line per object, "kind<TAB>name<TAB>definition", sorted
 * bytewise under a version header: tables and composite types, columns
 * (type, not null, default, identity, generated, collation when not the
 * type's), constraints, indexes, enums (labels in their order), domains,
 * ranges, sequences (type, increment, bounds, start, cache, cycle; never the
 * current value), views and materialized views, functions, procedures and
 * aggregates, triggers, policies, and extensions installed in the schema.
 *
 * Deterministic across databases: no OIDs, no current values; definitions are
 * printed under search_path = the schema, and the schema's own name is
 * replaced by "<schema>", so tenants in differently named schemas compare
 * equal. Column order is not part of it (lines are sorted). Excluded: the
 * history tables with their indexes, constraints and sequence, and objects
 * that belong to an extension. Newlines and backslashes in definitions are
 * escaped, so an object is always one line.
 */
#ifndef FL_PG_FINGERPRINT_H
#define FL_PG_FINGERPRINT_H

#include <stdbool.h>

#include "buf.h"
#include "migration.h"
#include "pg_conn.h"

/* hex gets the lowercase SHA-256 of the dump; dump (if not NULL) is reset and
 * receives it. Errors: those of the connection (FL_ESQL, FL_ECONNLOST, ...). */
enum fl_err fl_pg_fingerprint_compute(struct fl_conn *c, struct fl_buf *dump,
                                      char hex[FL_CHECKSUM_HEX_LEN + 1], char *errbuf);

/* Whether the schema holds no object of the user's (history tables aside). */
enum fl_err fl_pg_schema_empty(struct fl_conn *c, bool *empty, char *errbuf);

#endif
