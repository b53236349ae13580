/*
 * An append-only file of checksummed records, the one on-disk format of the
 * agent's journal and ledger. Layout, integers big-endian:
 *
 *   header  16  the file's magic ("flotilla jnl v1\n", "flotilla ldg v1\n")
 *   record  4   marker 0xf1 0x07 'r' 'c'
 *           4   payload length (at most FL_RECFILE_MAX_PAYLOAD)
 *           1   type (the owner's; never 0)
 *           3   zero
 *           8   id (the owner's)
 *           n   payload
 *           16  BLAKE2b-128 (crypto_generichash) of the 20 + n bytes before it
 *
 * Appends are one write(2) of a whole record at the end of the file,
 * followed by fdatasync when the caller asks (the journal and the ledger ask
 * before a report or an assignment counts as made). A crash can therefore
 * leave torn only what was appended since the last sync: the last record,
 * or a few records of the types the owner appends without a sync. Opening
 * reads every record in order and, at the first one that is short, too
 * long, wrongly marked or fails its checksum, looks for a good record after
 * it of a type the owner syncs: there is none after a torn write, so the
 * file is cut there (ftruncate, fsync) with a warning naming the file, the
 * offset and the bytes dropped; if there is one, the file was damaged
 * otherwise (a disk, a hand), and cutting would silently drop good records
 * (for the ledger: assignments run, tenants' release sequences), so the
 * open is refused (FL_EPARSE) with the offset and how to cut it on purpose.
 *
 * A file is created (and compacted) by writing a temporary file in the same
 * folder, fsync'ing it, renaming it over the old one and fsync'ing the
 * folder: readers see the old file or the new one, never a mix.
 *
 * Payload helpers: a tiny encoding the owners use inside payloads (u8, u32,
 * u64, length-prefixed bytes), with a reader that refuses to read past the
 * end, so a corrupt payload that passed its checksum (a bug) is an error,
 * never a crash.
 *
 * Threads: a struct fl_recfile is used by one thread at a time (the owners
 * lock around it), but for fl_recfile_sync_wait and fl_recfile_syncs, which
 * any thread may call without that lock. Blocking I/O: never call from a
 * network callback.
 */
#ifndef FL_RECFILE_H
#define FL_RECFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define FL_RECFILE_MAGIC_LEN   16
#define FL_RECFILE_HEADER_LEN  20
#define FL_RECFILE_CHECK_LEN   16
#define FL_RECFILE_MAX_PAYLOAD (16u << 20)

struct fl_recfile;

/* Called by open for each good record, in file order. Returning an error
 * stops the open with it (the owner refuses the file). */
typedef enum fl_err (*fl_recfile_fn)(void *arg, uint8_t type, uint64_t id, const uint8_t *payload,
                                     size_t len, char *errbuf);

/*
 * Open the file at path, creating it (0600) with only its header if it does
 * not exist. Reads every record through fn, cutting a torn tail (logged as
 * a warning, about `what`: "journal"); unsynced_types has bit t set for
 * each record type t (< 32) the owner appends without a sync. A file whose
 * header is not magic is refused (FL_EPARSE), unless it is shorter than the
 * header (it is then started again, with a warning). Errors: FL_EIO (cannot open, read, cut or
 * create), FL_EPARSE (not this kind of file, or damaged before its end), or fn's error. On success
 * the caller owns *out: fl_recfile_close.
 */
enum fl_err fl_recfile_open(const char *path, const char *what,
                            const char magic[FL_RECFILE_MAGIC_LEN], uint32_t unsynced_types,
                            fl_recfile_fn fn, void *arg, struct fl_recfile **out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_recfile_close(struct fl_recfile *f); /* NULL is a no-op */

/* Append one record; with sync, fdatasync before returning. A failed append
 * leaves the file as it was (a partial write is cut again). Errors: FL_EIO,
 * FL_EINVAL (type 0, payload too large). */
enum fl_err fl_recfile_append(struct fl_recfile *f, uint8_t type, uint64_t id, const void *payload,
                              size_t len, bool sync, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Group commit: make what was appended so far durable without holding the
 * caller's lock across the fdatasync, and with as few of them as the
 * threads appending allow. fl_recfile_sync_ticket, under the caller's lock
 * right after an append, names the file's end; fl_recfile_sync_wait,
 * outside it, returns once that end is durable: at once if a sync since
 * (another waiter's, an append with sync, a compaction's rewrite) covered
 * it, else after one fdatasync that it makes for every waiter so far or
 * that one of them makes while it waits (leader and followers, as
 * PostgreSQL flushes its WAL). A record appended this way is in the file
 * whether the sync succeeds or not: only for records whose fact is true
 * either way, and of a type opened as unsynced (a crash may tear it while
 * a later one survives). Errors: FL_EIO, for each waiter whose sync failed.
 */
struct fl_recfile_ticket {
	uint64_t gen; /* the file's generation: each compaction starts one */
	uint64_t end; /* bytes to be durable */
};
struct fl_recfile_ticket fl_recfile_sync_ticket(const struct fl_recfile *f);
enum fl_err fl_recfile_sync_wait(struct fl_recfile *f, struct fl_recfile_ticket t, char *errbuf)
    __attribute__((warn_unused_result));
/* fdatasync calls fl_recfile_sync_wait made (for tests and figures). */
uint64_t fl_recfile_syncs(struct fl_recfile *f);

/* Bytes in the file now. */
uint64_t fl_recfile_size(const struct fl_recfile *f);
/* Bytes cut from the tail when it was opened (0 for a clean file). */
uint64_t fl_recfile_cut(const struct fl_recfile *f);

/*
 * Compaction: begin a new file (a temporary beside the old one), add the
 * records it keeps, then commit (fsync, rename over the old file, fsync the
 * folder; appends then go to the new file) or abort (removed). Between
 * begin and commit/abort, only rewrite_add may be called.
 */
enum fl_err fl_recfile_rewrite_begin(struct fl_recfile *f, char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_recfile_rewrite_add(struct fl_recfile *f, uint8_t type, uint64_t id,
                                   const void *payload, size_t len, char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_recfile_rewrite_commit(struct fl_recfile *f, char *errbuf)
    __attribute__((warn_unused_result));
void fl_recfile_rewrite_abort(struct fl_recfile *f);

/* ---- payload encoding ---- */

void fl_rec_put_u8(struct fl_buf *b, uint8_t v);
void fl_rec_put_u32(struct fl_buf *b, uint32_t v);
void fl_rec_put_u64(struct fl_buf *b, uint64_t v);
void fl_rec_put_i64(struct fl_buf *b, int64_t v);
/* u32 length, then the bytes; NULL is written as length 0xffffffff. */
void fl_rec_put_bytes(struct fl_buf *b, const void *p, size_t len);
void fl_rec_put_str(struct fl_buf *b, const char *s);

struct fl_rec_reader {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool bad; /* a read went past the end, or a string was not one */
};

void fl_rec_reader_init(struct fl_rec_reader *r, const uint8_t *p, size_t len);
uint8_t fl_rec_get_u8(struct fl_rec_reader *r);
uint32_t fl_rec_get_u32(struct fl_rec_reader *r);
uint64_t fl_rec_get_u64(struct fl_rec_reader *r);
int64_t fl_rec_get_i64(struct fl_rec_reader *r);
/* Points into the payload; *len gets its length; NULL for a NULL or bad one. */
const uint8_t *fl_rec_get_bytes(struct fl_rec_reader *r, size_t *len);
/* A heap copy (NUL-terminated) of a string written with fl_rec_put_str;
 * NULL for NULL; a string holding a NUL marks the reader bad. */
char *fl_rec_get_str(struct fl_rec_reader *r);

#endif
