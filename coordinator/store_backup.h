/*
 * Online backups of the coordinator's store. The store is opened with
 * exclusive locking (one process per file), so no other process can read it
 * while the coordinator runs: the coordinator copies it itself, with
 * SQLite's backup API, a few thousand pages per step on the core thread, so
 * agents and operators are never held up for long. Pages changed by the core
 * between steps are copied again by SQLite (same connection), so the result
 * is the store as of the last step: consistent, WAL included.
 *
 * The copy goes to PATH.tmp (mode 0600) and is renamed to PATH once complete
 * and synced: PATH is always a whole backup, the previous one until then.
 *
 * Core thread only (the store's), like every store function.
 */
#ifndef FL_STORE_BACKUP_H
#define FL_STORE_BACKUP_H

#include <stdbool.h>

#include "err.h"
#include "store.h"

struct fl_store_backup;

/* Start a backup of st into path. Errors: FL_EIO (cannot create PATH.tmp),
 * FL_EDB, with errbuf. */
enum fl_err fl_store_backup_begin(struct fl_store *st, const char *path,
                                  struct fl_store_backup **out, char *errbuf)
    __attribute__((warn_unused_result));
/* Copy up to pages pages; *done once all are copied and PATH is in place
 * (then the backup is freed). On error the backup is freed, PATH.tmp
 * removed and PATH left as it was. Errors: FL_EDB, FL_EIO. */
enum fl_err fl_store_backup_step(struct fl_store_backup *b, int pages, bool *done, char *errbuf)
    __attribute__((warn_unused_result));
/* Give up a backup under way (PATH.tmp removed). NULL is a no-op. */
void fl_store_backup_abort(struct fl_store_backup *b);

#endif
