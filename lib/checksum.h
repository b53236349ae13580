/*
 * Prisma's migration checksum: lowercase hex SHA-256 of the exact bytes of
 * migration.sql. Matching follows Prisma's engine: a recorded checksum also
 * matches the script with CRLF turned into LF, and a legacy checksum written
 * without zero-padding of each byte (prisma-engines#1887) still matches.
 */
#ifndef FL_CHECKSUM_H
#define FL_CHECKSUM_H

#include <stdbool.h>
#include <stddef.h>

#include "migration.h"

void fl_checksum_compute(const void *bytes, size_t len, char out[FL_CHECKSUM_HEX_LEN + 1]);
bool fl_checksum_matches(const char *script, size_t len, const char *recorded);

#endif
