/*
 * Reading whole files under a hard size cap, and the pieces of writing files
 * that survive a crash. Every message names the file and says what failed
 * first, as "cannot open '%s': %s"; the wording is the one the callers'
 * tests check, so change it only with them. Thread-compatible (no shared
 * state); every call blocks on the filesystem, so keep them off event threads.
 */
#ifndef FL_FILE_H
#define FL_FILE_H

#include <stddef.h>
#include <sys/stat.h>

#include "buf.h"
#include "err.h"

/* Flags for fl_file_open and fl_file_read. */
enum {
	/* No such file is no error: FL_ENOENT, with errbuf left alone. */
	FL_FILE_MISSING_OK = 1 << 0,
	/* Only a regular file will do: the open neither blocks on a FIFO nor
	 * takes a controlling terminal (O_NONBLOCK | O_NOCTTY). fl_file_read
	 * then refuses anything else; fl_file_open leaves that check, and its
	 * wording, to the caller. */
	FL_FILE_REGULAR = 1 << 1,
};

/*
 * Open path read-only (close-on-exec) and fstat it into *st. On success the
 * caller owns *fd and closes it; on error *fd is -1.
 * Errors: FL_ENOENT (no such file), FL_EIO (cannot open or stat).
 */
enum fl_err fl_file_open(const char *path, unsigned flags, int *fd, struct stat *st, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Read fd into buf[0..cap) until end of file or until buf is full, retrying
 * on EINTR; *len says how many bytes came. A caller that must tell a file
 * that fits from one that does not passes one byte more than it accepts.
 * path names the file in messages. Errors: FL_EIO.
 */
enum fl_err fl_file_read_fd(int fd, const char *path, void *buf, size_t cap, size_t *len,
                            char *errbuf) __attribute__((warn_unused_result));

/*
 * Read the whole file at path into out (replaced; empty on error), refusing
 * one over max bytes or over out's own max, and a folder. The size fstat
 * gives is only a hint: the file may grow under us, the cap is what counts.
 * Errors: FL_ENOENT (see FL_FILE_MISSING_OK), FL_EIO, and FL_EPARSE only for a
 * file over the cap ("'%s' is larger than the limit of 64 MiB", in KiB when
 * max is not whole MiB), so a caller may word that one its own way.
 */
enum fl_err fl_file_read(const char *path, size_t max, unsigned flags, struct fl_buf *out,
                         char *errbuf) __attribute__((warn_unused_result));

/* Write p[0..len) to fd whole, retrying on EINTR and short writes.
 * Errors: FL_EIO, with errno saying why. */
enum fl_err fl_file_write_all(int fd, const void *p, size_t len)
    __attribute__((warn_unused_result));

/* fsync the folder holding path, so that a file just created or renamed
 * there survives a crash. Best effort: some filesystems refuse it on folders. */
void fl_file_sync_parent(const char *path);

#endif
