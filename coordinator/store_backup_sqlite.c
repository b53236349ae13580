/* Online backups of the store with SQLite's backup API (store_backup.h). */
#include "store_backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "mem.h"
#include "store_sqlite_int.h"

struct fl_store_backup {
	sqlite3 *dest;
	sqlite3_backup *b;
	char *path, *tmp;
};

void fl_store_backup_abort(struct fl_store_backup *b)
{
	if (b == NULL)
		return;
	if (b->b != NULL)
		sqlite3_backup_finish(b->b);
	if (b->dest != NULL)
		sqlite3_close(b->dest);
	unlink(b->tmp);
	free(b->path);
	free(b->tmp);
	free(b);
}

enum fl_err fl_store_backup_begin(struct fl_store *st, const char *path,
                                  struct fl_store_backup **out, char *errbuf)
{
	struct fl_store_backup *b = fl_calloc(1, sizeof(*b));
	size_t n = strlen(path) + 5;
	char eb[128];
	int fd;

	*out = NULL;
	b->path = fl_strdup(path);
	b->tmp = fl_malloc(n);
	snprintf(b->tmp, n, "%s.tmp", path);
	unlink(b->tmp); /* a backup that died half way */
	/* created here so it is 0600 whatever the umask: it holds the audit log */
	fd = open(b->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fl_errf(errbuf, FL_EIO, "backup: cannot create '%s': %s", b->tmp,
		        fl_err_errno(errno, eb, sizeof(eb)));
		free(b->path);
		free(b->tmp);
		free(b);
		return FL_EIO;
	}
	close(fd);
	if (sqlite3_open_v2(b->tmp, &b->dest, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    (b->b = sqlite3_backup_init(b->dest, "main", fl_store_sqlite_db(st), "main")) == NULL) {
		fl_errf(errbuf, FL_EDB, "backup: cannot start a backup into '%s': %s", b->tmp,
		        b->dest ? sqlite3_errmsg(b->dest) : "out of memory");
		fl_store_backup_abort(b);
		return FL_EDB;
	}
	*out = b;
	return FL_OK;
}

enum fl_err fl_store_backup_step(struct fl_store_backup *b, int pages, bool *done, char *errbuf)
{
	char eb[128];
	int rc, fd;

	*done = false;
	rc = sqlite3_backup_step(b->b, pages);
	if (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return FL_OK; /* more to copy (or try again at the next step) */
	if (rc != SQLITE_DONE) {
		fl_errf(errbuf, FL_EDB, "backup into '%s': %s", b->tmp, sqlite3_errstr(rc));
		fl_store_backup_abort(b);
		return FL_EDB;
	}
	rc = sqlite3_backup_finish(b->b);
	b->b = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_close(b->dest);
	else
		sqlite3_close(b->dest);
	b->dest = NULL;
	if (rc != SQLITE_OK) {
		fl_errf(errbuf, FL_EDB, "backup into '%s': %s", b->tmp, sqlite3_errstr(rc));
		fl_store_backup_abort(b);
		return FL_EDB;
	}
	fd = open(b->tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0 || rename(b->tmp, b->path) != 0) {
		fl_errf(errbuf, FL_EIO, "backup: cannot put '%s' in place: %s", b->path,
		        fl_err_errno(errno, eb, sizeof(eb)));
		if (fd >= 0)
			close(fd);
		fl_store_backup_abort(b);
		return FL_EIO;
	}
	close(fd);
	fl_file_sync_parent(b->path);
	free(b->path);
	free(b->tmp);
	free(b);
	*done = true;
	return FL_OK;
}
