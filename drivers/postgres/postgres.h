/*
 * The PostgreSQL driver (libpq): Prisma's history table, advisory lock and
 * apply semantics, with flotilla's transactional and statement-by-statement
 * modes and bounded retries. See driver.h for the contract; the pieces are
 * pg_url (URLs), pg_conn (connection, lock, cancel), pg_history (the history
 * tables), pg_apply (apply and revert) and pg_fingerprint (schema hash).
 */
#ifndef FL_POSTGRES_H
#define FL_POSTGRES_H

#include "driver.h"

extern const struct fl_driver_ops fl_postgres_driver;

#endif
