/* Append-only checksummed record files (see recfile.h for the layout). */
#include "recfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "mem.h"

static const uint8_t marker[4] = {0xf1, 0x07, 'r', 'c'};

struct fl_recfile {
	int fd;
	char *path;
	char *what;
	char magic[FL_RECFILE_MAGIC_LEN];
	uint32_t unsynced; /* record types the owner appends without a sync (bit = type) */
	uint64_t size;
	uint64_t cut;
	int tmp_fd; /* during a rewrite, else -1 */
	char *tmp_path;
	/* Group commit (fl_recfile_sync_wait). A generation is one file: a
	 * rewrite starts the next, synced whole. Under sync_mu: */
	pthread_mutex_t sync_mu;
	pthread_cond_t sync_cv;
	uint64_t gen;       /* also written under the owner's lock */
	uint64_t synced;    /* bytes of this generation known durable */
	uint64_t requested; /* the furthest end a waiter asked for */
	bool syncing;       /* a waiter is in fdatasync for the others */
	uint64_t syncs;     /* fdatasync calls made for waiters */
};

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static enum fl_err io_err(char *errbuf, const char *verb, const char *path)
{
	char e[128];

	return fl_errf(errbuf, FL_EIO, "cannot %s '%s': %s", verb, path,
	               fl_err_errno(errno, e, sizeof(e)));
}

/* The record for (type, id, payload) into out (reset). */
static enum fl_err frame(struct fl_buf *out, uint8_t type, uint64_t id, const void *payload,
                         size_t len, char *errbuf)
{
	uint8_t head[FL_RECFILE_HEADER_LEN] = {0};
	uint8_t check[FL_RECFILE_CHECK_LEN];

	if (type == 0)
		return fl_errf(errbuf, FL_EINVAL, "record type 0 is reserved");
	if (len > FL_RECFILE_MAX_PAYLOAD)
		return fl_errf(errbuf, FL_EINVAL, "record of %zu bytes exceeds the limit of %u",
		               len, FL_RECFILE_MAX_PAYLOAD);
	memcpy(head, marker, 4);
	put_be32(head + 4, (uint32_t)len);
	head[8] = type;
	put_be64(head + 12, id);
	fl_buf_reset(out);
	if (fl_buf_append(out, head, sizeof(head)) != FL_OK ||
	    (len > 0 && fl_buf_append(out, payload, len) != FL_OK))
		return fl_errf(errbuf, FL_EINVAL, "record too large");
	crypto_generichash(check, sizeof(check), (const uint8_t *)out->data, out->len, NULL, 0);
	if (fl_buf_append(out, check, sizeof(check)) != FL_OK)
		return fl_errf(errbuf, FL_EINVAL, "record too large");
	return FL_OK;
}

/* A new file holding only the header, at path, atomically. */
static enum fl_err create_file(const char *path, const char magic[FL_RECFILE_MAGIC_LEN],
                               char *errbuf)
{
	struct fl_buf tmp = FL_BUF_INIT;
	enum fl_err rv = FL_OK;
	int fd;

	fl_buf_printf(&tmp, "%s.new", path);
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rv = io_err(errbuf, "create", tmp.data);
		goto out;
	}
	if (fl_file_write_all(fd, magic, FL_RECFILE_MAGIC_LEN) != FL_OK || fsync(fd) != 0) {
		rv = io_err(errbuf, "write", tmp.data);
		close(fd);
		unlink(tmp.data);
		goto out;
	}
	close(fd);
	if (rename(tmp.data, path) != 0) {
		rv = io_err(errbuf, "rename into", path);
		unlink(tmp.data);
		goto out;
	}
	fl_file_sync_parent(path);
out:
	fl_buf_fini(&tmp);
	return rv;
}

static enum fl_err read_all(int fd, const char *path, struct fl_buf *out, char *errbuf)
{
	uint8_t chunk[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return io_err(errbuf, "read", path);
		if (n == 0)
			return FL_OK;
		if (fl_buf_append(out, chunk, (size_t)n) != FL_OK)
			return fl_errf(errbuf, FL_EIO, "'%s' is too large", path);
	}
}

/* Cut the file at off (a torn or corrupt tail). */
static enum fl_err cut_at(struct fl_recfile *f, uint64_t off, uint64_t total, const char *why,
                          char *errbuf)
{
	fl_log_warn(f->what, "'%s': cutting %llu bytes at offset %llu: %s (a crash while writing)",
	            f->path, (unsigned long long)(total - off), (unsigned long long)off, why);
	if (ftruncate(f->fd, (off_t)off) != 0 || fsync(f->fd) != 0)
		return io_err(errbuf, "cut", f->path);
	f->cut = total - off;
	return FL_OK;
}

/* Why the bytes at off (of total) are not a good record, or NULL when they
 * are one (*len gets its payload length). */
static const char *bad_record(const uint8_t *p, uint64_t off, uint64_t total, uint32_t *len)
{
	uint8_t check[FL_RECFILE_CHECK_LEN];
	uint64_t left = total - off;

	if (left < FL_RECFILE_HEADER_LEN + FL_RECFILE_CHECK_LEN)
		return "short record";
	if (memcmp(p + off, marker, 4) != 0)
		return "no record marker";
	if ((*len = get_be32(p + off + 4)) > FL_RECFILE_MAX_PAYLOAD)
		return "record length out of range";
	if (left < (uint64_t)FL_RECFILE_HEADER_LEN + *len + FL_RECFILE_CHECK_LEN)
		return "short record";
	crypto_generichash(check, sizeof(check), p + off, FL_RECFILE_HEADER_LEN + *len, NULL, 0);
	if (sodium_memcmp(check, p + off + FL_RECFILE_HEADER_LEN + *len, sizeof(check)) != 0)
		return "checksum mismatch";
	if (p[off + 8] == 0 || p[off + 9] || p[off + 10] || p[off + 11])
		return "bad record type";
	return NULL;
}

/*
 * A crash leaves at most the records appended since the last sync torn:
 * the last one, or (for records the owner does not sync) a few at the end.
 * The offset of a good record after the bad one at off that no crash can
 * explain (of a type the owner syncs), or 0 when there is none.
 */
static uint64_t good_record_after(const struct fl_recfile *f, const uint8_t *p, uint64_t off,
                                  uint64_t total)
{
	for (uint64_t k = off + 1; k + FL_RECFILE_HEADER_LEN + FL_RECFILE_CHECK_LEN <= total; k++) {
		const uint8_t *m = memchr(p + k, marker[0], (size_t)(total - k));
		uint32_t len;

		if (m == NULL)
			break;
		k = (uint64_t)(m - p);
		if (bad_record(p, k, total, &len) == NULL && p[k + 8] < 32 &&
		    (f->unsynced & (UINT32_C(1) << p[k + 8])) == 0)
			return k;
	}
	return 0;
}

static enum fl_err scan(struct fl_recfile *f, fl_recfile_fn fn, void *arg, char *errbuf)
{
	struct fl_buf all = FL_BUF_INIT;
	const uint8_t *p;
	uint64_t off, total = 0;
	enum fl_err rv;

	if (lseek(f->fd, 0, SEEK_SET) < 0)
		return io_err(errbuf, "read", f->path);
	if ((rv = read_all(f->fd, f->path, &all, errbuf)) != FL_OK)
		goto out;
	p = (const uint8_t *)all.data;
	total = all.len;
	if (total < FL_RECFILE_MAGIC_LEN || memcmp(p, f->magic, FL_RECFILE_MAGIC_LEN) != 0) {
		rv = fl_errf(errbuf, FL_EPARSE, "'%s' is not a flotilla %s file", f->path, f->what);
		goto out;
	}
	off = FL_RECFILE_MAGIC_LEN;
	while (off < total) {
		uint32_t len = 0;
		const char *why = bad_record(p, off, total, &len);
		uint64_t good;

		if (why != NULL && (good = good_record_after(f, p, off, total)) != 0) {
			/* damage, not a torn write: cutting would drop good records */
			rv =
			    fl_errf(errbuf, FL_EPARSE,
			            "'%s': the record at offset %llu is damaged (%s) and good "
			            "records follow it (at offset %llu): not a torn write; restore "
			            "the file, or cut it there on purpose (losing what follows) "
			            "with 'truncate -s %llu %s'",
			            f->path, (unsigned long long)off, why, (unsigned long long)good,
			            (unsigned long long)off, f->path);
			goto out;
		}
		if (why != NULL) {
			rv = cut_at(f, off, total, why, errbuf);
			total = off;
			goto out;
		}
		if (fn != NULL && (rv = fn(arg, p[off + 8], get_be64(p + off + 12),
		                           p + off + FL_RECFILE_HEADER_LEN, len, errbuf)) != FL_OK)
			goto out;
		off += FL_RECFILE_HEADER_LEN + (uint64_t)len + FL_RECFILE_CHECK_LEN;
	}
	rv = FL_OK;
out:
	f->size = total;
	if (rv == FL_OK && lseek(f->fd, 0, SEEK_END) < 0)
		rv = io_err(errbuf, "seek", f->path);
	fl_buf_fini(&all);
	return rv;
}

enum fl_err fl_recfile_open(const char *path, const char *what,
                            const char magic[FL_RECFILE_MAGIC_LEN], uint32_t unsynced_types,
                            fl_recfile_fn fn, void *arg, struct fl_recfile **out, char *errbuf)
{
	struct fl_recfile *f;
	struct stat st;
	enum fl_err rv;

	*out = NULL;
	f = fl_calloc(1, sizeof(*f));
	f->fd = -1;
	f->tmp_fd = -1;
	pthread_mutex_init(&f->sync_mu, NULL);
	pthread_cond_init(&f->sync_cv, NULL);
	f->path = fl_strdup(path);
	f->what = fl_strdup(what);
	memcpy(f->magic, magic, FL_RECFILE_MAGIC_LEN);
	f->unsynced = unsynced_types;
	f->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (f->fd < 0 && errno == ENOENT) {
		if ((rv = create_file(path, magic, errbuf)) != FL_OK)
			goto fail;
		f->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	}
	if (f->fd < 0) {
		rv = io_err(errbuf, "open", path);
		goto fail;
	}
	if (fstat(f->fd, &st) != 0) {
		rv = io_err(errbuf, "stat", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rv = fl_errf(errbuf, FL_EIO, "'%s' is not a regular file", path);
		goto fail;
	}
	if ((st.st_mode & 022) != 0) {
		rv = fl_errf(errbuf, FL_EIO, "refusing '%s': writable by others (mode %04o)", path,
		             (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size < FL_RECFILE_MAGIC_LEN) {
		/* only a crash between creating and renaming... or a truncation: start over */
		if (st.st_size > 0)
			fl_log_warn(what,
			            "'%s': %lld bytes, shorter than its header: starting it again",
			            path, (long long)st.st_size);
		close(f->fd);
		f->fd = -1;
		if ((rv = create_file(path, magic, errbuf)) != FL_OK)
			goto fail;
		f->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (f->fd < 0) {
			rv = io_err(errbuf, "open", path);
			goto fail;
		}
	}
	if ((rv = scan(f, fn, arg, errbuf)) != FL_OK)
		goto fail;
	*out = f;
	return FL_OK;
fail:
	fl_recfile_close(f);
	return rv;
}

void fl_recfile_close(struct fl_recfile *f)
{
	if (f == NULL)
		return;
	fl_recfile_rewrite_abort(f);
	if (f->fd >= 0) {
		if (fsync(f->fd) != 0)
			fl_log_warn(f->what, "cannot fsync '%s'", f->path);
		close(f->fd);
	}
	pthread_cond_destroy(&f->sync_cv);
	pthread_mutex_destroy(&f->sync_mu);
	free(f->path);
	free(f->what);
	free(f);
}

/* What is durable now reaches at least `end` of the current generation. */
static void note_synced(struct fl_recfile *f, uint64_t end)
{
	pthread_mutex_lock(&f->sync_mu);
	if (f->synced < end)
		f->synced = end;
	pthread_cond_broadcast(&f->sync_cv);
	pthread_mutex_unlock(&f->sync_mu);
}

enum fl_err fl_recfile_append(struct fl_recfile *f, uint8_t type, uint64_t id, const void *payload,
                              size_t len, bool sync, char *errbuf)
{
	struct fl_buf rec = FL_BUF_INIT;
	enum fl_err rv;
	ssize_t n;

	if ((rv = frame(&rec, type, id, payload, len, errbuf)) != FL_OK)
		goto out;
	/* one write at the end; pwrite at our own idea of the end, so that a
	 * failed earlier write that left bytes behind is overwritten */
	do
		n = pwrite(f->fd, rec.data, rec.len, (off_t)f->size);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)rec.len) {
		if (n >= 0)
			errno = ENOSPC;
		rv = io_err(errbuf, "append to", f->path);
		if (ftruncate(f->fd, (off_t)f->size) != 0)
			fl_log_warn(f->what, "cannot cut a partial record from '%s'", f->path);
		goto out;
	}
	if (sync && fdatasync(f->fd) != 0) {
		rv = io_err(errbuf, "sync", f->path);
		/* the record may or may not be on disk: drop it so that we never
		 * count as made what might not be */
		if (ftruncate(f->fd, (off_t)f->size) != 0)
			fl_log_warn(f->what, "cannot cut an unsynced record from '%s'", f->path);
		goto out;
	}
	f->size += rec.len;
	if (sync)
		note_synced(f, f->size);
out:
	fl_buf_fini(&rec);
	return rv;
}

struct fl_recfile_ticket fl_recfile_sync_ticket(const struct fl_recfile *f)
{
	return (struct fl_recfile_ticket){.gen = f->gen, .end = f->size};
}

enum fl_err fl_recfile_sync_wait(struct fl_recfile *f, struct fl_recfile_ticket t, char *errbuf)
{
	enum fl_err rv = FL_OK;

	pthread_mutex_lock(&f->sync_mu);
	if (f->requested < t.end && f->gen == t.gen)
		f->requested = t.end;
	/* A new generation was written whole and synced by its rewrite. */
	while (f->gen == t.gen && f->synced < t.end) {
		uint64_t covers = f->requested;
		int fd, failed = 0;

		if (f->syncing) { /* a sync under way may cover us; else the next will */
			pthread_cond_wait(&f->sync_cv, &f->sync_mu);
			continue;
		}
		/* Lead: every waiter's record so far was written before it asked,
		 * so one fdatasync now makes all of them durable. Our own
		 * descriptor: a rewrite may swap the file's meanwhile. */
		f->syncing = true;
		f->syncs++;
		fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
		pthread_mutex_unlock(&f->sync_mu);
		if (fd < 0 || fdatasync(fd) != 0)
			failed = errno; /* before the calls below */
		if (fd >= 0)
			close(fd);
		pthread_mutex_lock(&f->sync_mu);
		f->syncing = false;
		pthread_cond_broadcast(&f->sync_cv);
		if (failed) {
			/* those who waited on this sync find out with their own */
			errno = failed;
			rv = io_err(errbuf, "sync", f->path);
			break;
		}
		if (f->gen == t.gen && f->synced < covers)
			f->synced = covers;
	}
	pthread_mutex_unlock(&f->sync_mu);
	return rv;
}

uint64_t fl_recfile_syncs(struct fl_recfile *f)
{
	uint64_t n;

	pthread_mutex_lock(&f->sync_mu);
	n = f->syncs;
	pthread_mutex_unlock(&f->sync_mu);
	return n;
}

uint64_t fl_recfile_size(const struct fl_recfile *f)
{
	return f->size;
}

uint64_t fl_recfile_cut(const struct fl_recfile *f)
{
	return f->cut;
}

enum fl_err fl_recfile_rewrite_begin(struct fl_recfile *f, char *errbuf)
{
	struct fl_buf tmp = FL_BUF_INIT;

	fl_recfile_rewrite_abort(f);
	fl_buf_printf(&tmp, "%s.new", f->path);
	f->tmp_path = fl_buf_detach(&tmp);
	f->tmp_fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f->tmp_fd < 0) {
		enum fl_err rv = io_err(errbuf, "create", f->tmp_path);

		free(f->tmp_path);
		f->tmp_path = NULL;
		return rv;
	}
	if (fl_file_write_all(f->tmp_fd, f->magic, FL_RECFILE_MAGIC_LEN) != FL_OK) {
		enum fl_err rv = io_err(errbuf, "write", f->tmp_path);

		fl_recfile_rewrite_abort(f);
		return rv;
	}
	return FL_OK;
}

enum fl_err fl_recfile_rewrite_add(struct fl_recfile *f, uint8_t type, uint64_t id,
                                   const void *payload, size_t len, char *errbuf)
{
	struct fl_buf rec = FL_BUF_INIT;
	enum fl_err rv;

	if ((rv = frame(&rec, type, id, payload, len, errbuf)) == FL_OK &&
	    fl_file_write_all(f->tmp_fd, rec.data, rec.len) != FL_OK)
		rv = io_err(errbuf, "write", f->tmp_path);
	fl_buf_fini(&rec);
	return rv;
}

enum fl_err fl_recfile_rewrite_commit(struct fl_recfile *f, char *errbuf)
{
	struct stat st;
	enum fl_err rv;

	if (fsync(f->tmp_fd) != 0 || fstat(f->tmp_fd, &st) != 0) {
		rv = io_err(errbuf, "sync", f->tmp_path);
		fl_recfile_rewrite_abort(f);
		return rv;
	}
	if (rename(f->tmp_path, f->path) != 0) {
		rv = io_err(errbuf, "rename into", f->path);
		fl_recfile_rewrite_abort(f);
		return rv;
	}
	fl_file_sync_parent(f->path);
	/* the new file is open for writing already; reopen it read-write */
	close(f->tmp_fd);
	f->tmp_fd = -1;
	free(f->tmp_path);
	f->tmp_path = NULL;
	pthread_mutex_lock(&f->sync_mu); /* a leader dups f->fd under it */
	close(f->fd);
	f->fd = open(f->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	f->gen++;
	f->synced = f->requested = (uint64_t)st.st_size;
	pthread_cond_broadcast(&f->sync_cv);
	pthread_mutex_unlock(&f->sync_mu);
	if (f->fd < 0)
		return io_err(errbuf, "reopen", f->path);
	f->size = (uint64_t)st.st_size;
	return FL_OK;
}

void fl_recfile_rewrite_abort(struct fl_recfile *f)
{
	if (f->tmp_fd >= 0) {
		close(f->tmp_fd);
		f->tmp_fd = -1;
	}
	if (f->tmp_path != NULL) {
		unlink(f->tmp_path);
		free(f->tmp_path);
		f->tmp_path = NULL;
	}
}

/* ---- payload encoding ---- */

void fl_rec_put_u8(struct fl_buf *b, uint8_t v)
{
	if (fl_buf_append(b, &v, 1) != FL_OK)
		abort(); /* unbounded buffers only */
}

void fl_rec_put_u32(struct fl_buf *b, uint32_t v)
{
	uint8_t p[4];

	put_be32(p, v);
	if (fl_buf_append(b, p, 4) != FL_OK)
		abort();
}

void fl_rec_put_u64(struct fl_buf *b, uint64_t v)
{
	uint8_t p[8];

	put_be64(p, v);
	if (fl_buf_append(b, p, 8) != FL_OK)
		abort();
}

void fl_rec_put_i64(struct fl_buf *b, int64_t v)
{
	fl_rec_put_u64(b, (uint64_t)v);
}

void fl_rec_put_bytes(struct fl_buf *b, const void *p, size_t len)
{
	if (p == NULL) {
		fl_rec_put_u32(b, UINT32_MAX);
		return;
	}
	fl_rec_put_u32(b, (uint32_t)len);
	if (len > 0 && fl_buf_append(b, p, len) != FL_OK)
		abort();
}

void fl_rec_put_str(struct fl_buf *b, const char *s)
{
	fl_rec_put_bytes(b, s, s != NULL ? strlen(s) : 0);
}

void fl_rec_reader_init(struct fl_rec_reader *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->bad = false;
}

static const uint8_t *take(struct fl_rec_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t fl_rec_get_u8(struct fl_rec_reader *r)
{
	const uint8_t *p = take(r, 1);
	return p ? p[0] : 0;
}

uint32_t fl_rec_get_u32(struct fl_rec_reader *r)
{
	const uint8_t *p = take(r, 4);
	return p ? get_be32(p) : 0;
}

uint64_t fl_rec_get_u64(struct fl_rec_reader *r)
{
	const uint8_t *p = take(r, 8);
	return p ? get_be64(p) : 0;
}

int64_t fl_rec_get_i64(struct fl_rec_reader *r)
{
	return (int64_t)fl_rec_get_u64(r);
}

const uint8_t *fl_rec_get_bytes(struct fl_rec_reader *r, size_t *len)
{
	uint32_t n = fl_rec_get_u32(r);
	const uint8_t *p;

	*len = 0;
	if (r->bad || n == UINT32_MAX)
		return NULL;
	p = take(r, n);
	if (p != NULL)
		*len = n;
	return p;
}

char *fl_rec_get_str(struct fl_rec_reader *r)
{
	size_t n;
	const uint8_t *p = fl_rec_get_bytes(r, &n);

	if (p == NULL)
		return NULL;
	if (memchr(p, '\0', n) != NULL) {
		r->bad = true;
		return NULL;
	}
	return fl_strndup((const char *)p, n);
}
