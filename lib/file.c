#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"

#define MIB (1024 * 1024)

enum fl_err fl_file_open(const char *path, unsigned flags, int *fd, struct stat *st, char *errbuf)
{
	int oflags = O_RDONLY | O_CLOEXEC;
	char eb[128];

	/* A FIFO at path must not hang us; regular files ignore O_NONBLOCK. */
	if (flags & FL_FILE_REGULAR)
		oflags |= O_NOCTTY | O_NONBLOCK;
	*fd = open(path, oflags);
	if (*fd < 0) {
		if (errno == ENOENT && (flags & FL_FILE_MISSING_OK))
			return FL_ENOENT;
		return fl_errf(errbuf, errno == ENOENT ? FL_ENOENT : FL_EIO, "cannot open '%s': %s",
		               path, fl_err_errno(errno, eb, sizeof(eb)));
	}
	if (fstat(*fd, st) != 0) {
		fl_errf(errbuf, FL_EIO, "cannot stat '%s': %s", path,
		        fl_err_errno(errno, eb, sizeof(eb)));
		close(*fd);
		*fd = -1;
		return FL_EIO;
	}
	return FL_OK;
}

enum fl_err fl_file_read_fd(int fd, const char *path, void *buf, size_t cap, size_t *len,
                            char *errbuf)
{
	char eb[128];
	size_t n = 0;

	while (n < cap) {
		ssize_t got = read(fd, (char *)buf + n, cap - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			*len = n;
			return fl_errf(errbuf, FL_EIO, "cannot read '%s': %s", path,
			               fl_err_errno(errno, eb, sizeof(eb)));
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	*len = n;
	return FL_OK;
}

enum fl_err fl_file_read(const char *path, size_t max, unsigned flags, struct fl_buf *out,
                         char *errbuf)
{
	char eb[128], chunk[65536];
	struct stat st;
	enum fl_err rv;
	size_t n;
	int fd;

	fl_buf_reset(out);
	if ((rv = fl_file_open(path, flags, &fd, &st, errbuf)) != FL_OK)
		return rv;
	if ((flags & FL_FILE_REGULAR) && !S_ISREG(st.st_mode)) {
		rv = fl_errf(errbuf, FL_EIO, "cannot read '%s': not a regular file", path);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rv = fl_errf(errbuf, FL_EIO, "cannot read '%s': %s", path,
		             fl_err_errno(EISDIR, eb, sizeof(eb)));
		goto out;
	}
	if (st.st_size > 0 && (unsigned long long)st.st_size > max)
		goto too_big;
	do {
		if ((rv = fl_file_read_fd(fd, path, chunk, sizeof(chunk), &n, errbuf)) != FL_OK)
			goto out;
		if (out->len + n > max)
			goto too_big;
		if (n > 0 && fl_buf_append(out, chunk, n) != FL_OK)
			goto too_big; /* out's own max */
	} while (n == sizeof(chunk));
	goto out;
too_big:
	if (max % MIB == 0)
		rv = fl_errf(errbuf, FL_EPARSE, "'%s' is larger than the limit of %zu MiB", path,
		             max / MIB);
	else
		rv = fl_errf(errbuf, FL_EPARSE, "'%s' is larger than the limit of %zu KiB", path,
		             max / 1024);
out:
	if (rv != FL_OK)
		fl_buf_reset(out);
	close(fd);
	return rv;
}

enum fl_err fl_file_write_all(int fd, const void *p, size_t len)
{
	const char *s = p;

	while (len > 0) {
		ssize_t n = write(fd, s, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return FL_EIO;
		}
		s += n;
		len -= (size_t)n;
	}
	return FL_OK;
}

void fl_file_sync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	if (slash == NULL)
		dir = fl_strdup(".");
	else
		dir = fl_strndup(path, slash == path ? 1 : (size_t)(slash - path));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd); /* best effort: some filesystems refuse it on folders */
		close(fd);
	}
	free(dir);
}
