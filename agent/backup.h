/*
 * Backups: the agent's own backup.command (from its config; the coordinator
 * never names a command), run before a tenant is touched when the order's
 * wave asks for one. The command runs as `/bin/sh -c COMMAND`, in a session
 * of its own (so a timeout or cancel ends it and everything it started),
 * with stdin from /dev/null and its output captured for the log, and with
 * the tenant's connection details in its ENVIRONMENT, never on its command
 * line (where ps would show a password):
 *
 *   PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD PGSSLMODE PGSSLROOTCERT
 *   FLOTILLA_TENANT FLOTILLA_SCHEMA FLOTILLA_RELEASE FLOTILLA_BACKUP_PATH
 *
 * plus PATH, HOME, LANG, LC_ALL, TZ and TMPDIR as the agent has them;
 * nothing else of the agent's environment. FLOTILLA_BACKUP_PATH is
 * backup.dir/<tenant>-<release hash, 12 digits>-<UTC time>.dump (the tenant
 * id with characters other than A-Z a-z 0-9 . _ - as _, then ~ and 8 hex
 * digits of its SHA-256 when it had any; -2, -3... before .dump when the
 * name is taken), for a command such as `pg_dump -Fc -f
 * "$FLOTILLA_BACKUP_PATH"`. Its output is logged line by line (a line over
 * 1 KiB cut: what is held stays bounded); once it exits, whatever it left in
 * its process group is killed.
 *
 * Exit status 0 within backup.timeout is success; anything else (non-zero,
 * a signal, the timeout, a cancel) is a failure: the tenant is not touched
 * and the assignment ends BACKUP_FAILED.
 *
 * Threads: fl_backup_cancel from any thread between new and free.
 */
#ifndef FL_BACKUP_H
#define FL_BACKUP_H

#include <stdint.h>

#include "err.h"
#include "log.h"

struct fl_backup_spec {
	const char *command;
	const char *dir;
	int64_t timeout_ms;
	const char *url; /* the tenant's URL (password included), without its schema */
	const char *tenant_id;
	const char *schema;      /* may be NULL */
	const char *release_hex; /* the release's content hash */
};

struct fl_backup;

struct fl_backup *fl_backup_new(void);
void fl_backup_free(struct fl_backup *b); /* NULL is a no-op */
/* Any thread: end the command now (SIGTERM to its process group, SIGKILL
 * a few seconds later); the run fails with FL_ECANCELED. */
void fl_backup_cancel(struct fl_backup *b);

/*
 * Run the backup, logging its output through log (about the tenant).
 * path (at least 4096 bytes) gets FLOTILLA_BACKUP_PATH. Errors: FL_EFAILED
 * (non-zero exit or a signal: errbuf says which and its last line of
 * output), FL_ETIMEDOUT, FL_ECANCELED, FL_EIO (could not start it),
 * FL_EINVAL (the URL cannot be read).
 */
enum fl_err fl_backup_run(struct fl_backup *b, const struct fl_backup_spec *spec,
                          const struct fl_logger *log, char *path, char *errbuf)
    __attribute__((warn_unused_result));

#endif
