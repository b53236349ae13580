/*
 * The registry of peers; design and file format in peers.h.
 *
 * Lookup: an open-addressing table of entry indexes keyed by SipHash (random
 * key) of the public key, rebuilt when the entry array grows. Entries are
 * never removed (revocation is a flag), so probing needs no tombstones.
 * Shared keys sit in one sodium_malloc block parallel to the entries, so a
 * registry of thousands of peers costs one guarded allocation, not thousands.
 */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include "peers.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "file.h"
#include "keys.h"
#include "log.h"
#include "mem.h"

_Static_assert(FL_PEER_ID_LEN == FL_KEY_ID_LEN && FL_PEER_KEY_LEN == FL_KEY_PUBLIC_BYTES,
               "key sizes");

#define REC_SIZE     64
#define REC_CHECK_AT 48 /* BLAKE2b-128 of bytes 0..47 follows */
#define FLAG_IN_USE  1u
#define FLAG_REVOKED 2u
#define NO_RECORD    UINT32_MAX

static const char seq_magic[16] = {'f', 'l', 'o', 't', 'i', 'l', 'l', 'a',
                                   ' ', 's', 'e', 'q', ' ', 'v', '1', '\n'};

/*
 * The replay window of one sender (peers.h): every number it ever had
 * accepted is either at or below `floor` or in seen[0..nseen), which holds
 * the highest ones accepted above the floor, ascending. A number is fresh if
 * it is above the floor and not seen; remembering it when the window is full
 * forgets the lowest one and raises the floor to it.
 */
struct entry {
	uint8_t pk[FL_PEER_KEY_LEN];
	char id[FL_PEER_ID_LEN + 1];
	char name[FL_PEER_NAME_MAX + 1];
	enum fl_peer_role role; /* FL_PEER_NONE: loaded from peers.seq or revoked, never added */
	bool revoked;
	uint8_t nseen;      /* numbers in seen */
	uint32_t record;    /* index in peers.seq, NO_RECORD without a file */
	uint64_t last_recv; /* the highest accepted; persisted */
	uint64_t floor;     /* the highest forgotten, or last_recv when loaded; memory only */
	uint64_t last_sent; /* memory only: the clock carries it across restarts */
	uint64_t seen[FL_PEERS_REPLAY_WINDOW]; /* ascending, all above floor */
};
_Static_assert(FL_PEERS_REPLAY_WINDOW > 0 && FL_PEERS_REPLAY_WINDOW <= UINT8_MAX,
               "replay window size");

struct fl_peers {
	pthread_mutex_t lock;
	const struct fl_identity *self;
	size_t max;
	struct entry *entries;
	size_t n, cap;
	uint8_t (*keys)[crypto_box_BEFORENMBYTES]; /* sodium_malloc, cap entries */
	uint32_t *slots;                           /* entry index + 1; 0 empty */
	size_t nslots;                             /* power of two, 2 * cap */
	uint8_t hashkey[crypto_shorthash_KEYBYTES];
	int fd; /* peers.seq, or -1 */
	char *path;
	uint32_t nrecords;
};

/* errno's text, thread-safe (strerror is not): into a buffer per call site. */
#define ERRNO_TEXT(buf) fl_err_errno(errno, (buf), sizeof(buf))

int64_t fl_wallclock_us(void *unused)
{
	struct timespec ts;

	(void)unused;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- roles and names ---- */

static const char *const role_names[] = {"none",   "coordinator",     "agent",
                                         "viewer", "release-manager", "admin"};

const char *fl_peer_role_name(enum fl_peer_role role)
{
	if ((unsigned)role < sizeof(role_names) / sizeof(role_names[0]))
		return role_names[role];
	return "unknown";
}

enum fl_err fl_peer_role_parse(const char *name, enum fl_peer_role *role, char *errbuf)
{
	for (int r = FL_PEER_COORDINATOR; r <= FL_PEER_ADMIN; r++) {
		if (name && strcmp(name, role_names[r]) == 0) {
			*role = (enum fl_peer_role)r;
			return FL_OK;
		}
	}
	return fl_errf(
	    errbuf, FL_EINVAL,
	    "unknown role '%s' (use coordinator, agent, viewer, release-manager or admin)",
	    name ? name : "");
}

static bool valid_role(enum fl_peer_role role)
{
	return role >= FL_PEER_COORDINATOR && role <= FL_PEER_ADMIN;
}

/* Names go into log lines and JSON: a small safe alphabet, no escaping needed. */
bool fl_peer_name_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= FL_PEER_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '@' || c == ':' || c == '+' || c == '-'))
			return false;
	}
	return n > 0;
}

/* ---- the table ---- */

static size_t slot_of(const struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];

	crypto_shorthash(h, pk, FL_PEER_KEY_LEN, p->hashkey);
	return (size_t)fl_load_be64(h) & (p->nslots - 1);
}

/* Index of pk's entry, or -1. Public keys are public: plain memcmp. */
static long lookup(const struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN])
{
	size_t s;

	if (p->nslots == 0)
		return -1;
	for (s = slot_of(p, pk); p->slots[s] != 0; s = (s + 1) & (p->nslots - 1)) {
		const struct entry *e = &p->entries[p->slots[s] - 1];

		if (memcmp(e->pk, pk, FL_PEER_KEY_LEN) == 0)
			return (long)(p->slots[s] - 1);
	}
	return -1;
}

static void slot_put(struct fl_peers *p, size_t idx)
{
	size_t s;

	for (s = slot_of(p, p->entries[idx].pk); p->slots[s] != 0; s = (s + 1) & (p->nslots - 1))
		;
	p->slots[s] = (uint32_t)idx + 1;
}

static void grow(struct fl_peers *p)
{
	size_t cap = p->cap ? p->cap * 2 : 16;
	uint8_t(*keys)[crypto_box_BEFORENMBYTES];

	p->entries = fl_realloc(p->entries, cap * sizeof(p->entries[0]));
	keys = sodium_malloc(cap * sizeof(keys[0]));
	if (keys == NULL) {
		fprintf(stderr, "flotilla: out of memory allocating secure memory\n");
		abort();
	}
	sodium_memzero(keys, cap * sizeof(keys[0]));
	if (p->keys) {
		memcpy(keys, p->keys, p->n * sizeof(keys[0]));
		sodium_free(p->keys);
	}
	sodium_mprotect_readonly(keys);
	p->keys = keys;
	p->cap = cap;
	free(p->slots);
	p->nslots = cap * 2;
	p->slots = fl_calloc(p->nslots, sizeof(p->slots[0]));
	for (size_t i = 0; i < p->n; i++)
		slot_put(p, i);
}

/* A new entry for pk; the caller checked that it is absent and there is room. */
static struct entry *insert(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN])
{
	struct entry *e;

	if (p->n == p->cap)
		grow(p);
	e = &p->entries[p->n];
	memset(e, 0, sizeof(*e));
	memcpy(e->pk, pk, FL_PEER_KEY_LEN);
	fl_key_id(pk, e->id);
	e->record = NO_RECORD;
	slot_put(p, p->n);
	p->n++;
	return e;
}

static void set_key(struct fl_peers *p, size_t idx, const uint8_t *key)
{
	sodium_mprotect_readwrite(p->keys);
	if (key)
		memcpy(p->keys[idx], key, sizeof(p->keys[idx]));
	else
		sodium_memzero(p->keys[idx], sizeof(p->keys[idx]));
	sodium_mprotect_readonly(p->keys);
}

static void info_of(const struct entry *e, struct fl_peer_info *info)
{
	memcpy(info->pk, e->pk, FL_PEER_KEY_LEN);
	memcpy(info->id, e->id, sizeof(info->id));
	memcpy(info->name, e->name, sizeof(info->name));
	info->role = e->role;
	info->revoked = e->revoked;
	info->last_seq = e->last_recv;
}

/* ---- the replay window ---- */

/* Never accepted from e: above the floor, and not one of the numbers seen. */
static bool window_fresh(const struct entry *e, uint64_t seq)
{
	if (seq <= e->floor)
		return false;
	if (seq > e->last_recv) /* in order: above all seen */
		return true;
	for (size_t i = e->nseen; i-- > 0 && e->seen[i] >= seq;)
		if (e->seen[i] == seq)
			return false;
	return true;
}

/* Record seq, fresh (window_fresh), as accepted. */
static void window_remember(struct entry *e, uint64_t seq)
{
	size_t pos = e->nseen; /* where seq goes: after every lower number */

	while (pos > 0 && e->seen[pos - 1] > seq)
		pos--;
	if (seq > e->last_recv)
		e->last_recv = seq;
	if (e->nseen < FL_PEERS_REPLAY_WINDOW) {
		memmove(&e->seen[pos + 1], &e->seen[pos], (e->nseen - pos) * sizeof(e->seen[0]));
		e->seen[pos] = seq;
		e->nseen++;
		return;
	}
	/* Full: the lowest of the window and seq is forgotten, and the floor
	 * rises to it, so it stays refused. */
	if (pos == 0) {
		e->floor = seq;
		return;
	}
	e->floor = e->seen[0];
	memmove(&e->seen[0], &e->seen[1], (pos - 1) * sizeof(e->seen[0]));
	e->seen[pos - 1] = seq;
}

/* ---- peers.seq ---- */

static void seal_record(uint8_t rec[REC_SIZE])
{
	crypto_generichash(rec + REC_CHECK_AT, REC_SIZE - REC_CHECK_AT, rec, REC_CHECK_AT, NULL, 0);
}

static bool record_ok(const uint8_t rec[REC_SIZE])
{
	uint8_t check[REC_SIZE - REC_CHECK_AT];

	crypto_generichash(check, sizeof(check), rec, REC_CHECK_AT, NULL, 0);
	return memcmp(check, rec + REC_CHECK_AT, sizeof(check)) == 0;
}

static enum fl_err write_at(struct fl_peers *p, const uint8_t *data, size_t len, off_t off,
                            char *errbuf)
{
	char eb[128];

	while (len > 0) {
		ssize_t w = pwrite(p->fd, data, len, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return fl_errf(errbuf, FL_EIO, "cannot write sequence file '%s': %s",
			               p->path, w < 0 ? ERRNO_TEXT(eb) : "short write");
		data += w;
		len -= (size_t)w;
		off += w;
	}
	return FL_OK;
}

/* Write e's record in place, or append one for it (e->record is set only
 * once it is on disk, so a failed append is retried at the same index). */
static enum fl_err record_write(struct fl_peers *p, struct entry *e, char *errbuf)
{
	uint8_t rec[REC_SIZE] = {0};
	uint32_t idx = e->record == NO_RECORD ? p->nrecords : e->record;
	enum fl_err rv;

	if (p->fd < 0)
		return FL_OK;
	memcpy(rec, e->pk, FL_PEER_KEY_LEN);
	fl_store_be64(rec + 32, e->last_recv);
	fl_store_be32(rec + 40, FLAG_IN_USE | (e->revoked ? FLAG_REVOKED : 0));
	seal_record(rec);
	rv = write_at(p, rec, sizeof(rec), (off_t)REC_SIZE * (1 + (off_t)idx), errbuf);
	if (rv == FL_OK && e->record == NO_RECORD) {
		e->record = idx;
		p->nrecords++;
	}
	return rv;
}

static enum fl_err seq_load(struct fl_peers *p, const uint8_t *buf, size_t size, char *errbuf)
{
	uint8_t want[REC_SIZE] = {0};
	size_t nrec = size / REC_SIZE - 1;

	memcpy(want, seq_magic, sizeof(seq_magic));
	fl_store_be32(want + 16, REC_SIZE);
	seal_record(want);
	if (memcmp(buf, want, REC_SIZE) != 0)
		return fl_errf(errbuf, FL_EPARSE, "corrupt sequence file '%s': bad header",
		               p->path);
	for (size_t i = 0; i < nrec; i++) {
		const uint8_t *rec = buf + REC_SIZE * (i + 1);
		uint32_t flags = fl_load_be32(rec + 40);
		struct entry *e;
		char id[FL_PEER_ID_LEN + 1];

		if (!record_ok(rec))
			return fl_errf(errbuf, FL_EPARSE,
			               "corrupt sequence file '%s': record %zu: checksum mismatch",
			               p->path, i);
		if (flags != FLAG_IN_USE && flags != (FLAG_IN_USE | FLAG_REVOKED))
			return fl_errf(errbuf, FL_EPARSE,
			               "corrupt sequence file '%s': record %zu: unknown flags 0x%x",
			               p->path, i, (unsigned)flags);
		if (fl_load_be32(rec + 44) != 0)
			return fl_errf(errbuf, FL_EPARSE,
			               "corrupt sequence file '%s': record %zu: reserved bytes set",
			               p->path, i);
		if (lookup(p, rec) >= 0) {
			fl_key_id(rec, id);
			return fl_errf(
			    errbuf, FL_EPARSE,
			    "corrupt sequence file '%s': record %zu: key %s listed twice", p->path,
			    i, id);
		}
		e = insert(p, rec);
		/* Only the highest is on disk: all below it stay refused. */
		e->last_recv = fl_load_be64(rec + 32);
		e->floor = e->last_recv;
		e->revoked = (flags & FLAG_REVOKED) != 0;
		e->record = (uint32_t)i;
	}
	p->nrecords = (uint32_t)nrec;
	return FL_OK;
}

/* For tests: called by seq_open between opening the file and locking it,
 * where another process may still be writing it. */
static void (*before_lock_hook)(void *);
static void *before_lock_arg;

void fl_peers_test_hook_before_lock(void (*fn)(void *), void *arg)
{
	before_lock_hook = fn;
	before_lock_arg = arg;
}

static enum fl_err seq_open(struct fl_peers *p, const char *path, unsigned flags, char *errbuf)
{
	struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct stat st;
	uint8_t *buf = NULL;
	size_t size, got = 0;
	enum fl_err rv = FL_OK;
	char eb[128];
	int oflags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;

	p->path = fl_strdup(path);
	if (!(flags & FL_PEERS_MUST_EXIST))
		oflags |= O_CREAT;
	p->fd = open(path, oflags, 0600);
	if (p->fd < 0 && errno == ENOENT && (flags & FL_PEERS_MUST_EXIST))
		return fl_errf(
		    errbuf, FL_ENOENT,
		    "sequence file '%s' is missing, yet this process ran before: refusing "
		    "to start with an empty one, which would accept replays (restore it, "
		    "or reset the whole state folder to start over)",
		    path);
	if (p->fd < 0)
		return fl_errf(errbuf, FL_EIO, "cannot open sequence file '%s': %s", path,
		               ERRNO_TEXT(eb));
	if (before_lock_hook)
		before_lock_hook(before_lock_arg);
	/* Lock first, then look: the size read before the lock could be that of
	 * a file another process is still appending to (a revocation would be
	 * lost, and overwritten by our next record). An open-file-description
	 * lock, not a process one: a second registry on the same file in this
	 * process is refused too, and closing one descriptor cannot drop
	 * another's lock. */
	if (fcntl(p->fd, F_OFD_SETLK, &lk) != 0) {
		if (errno == EAGAIN || errno == EACCES)
			return fl_errf(errbuf, FL_EIO,
			               "sequence file '%s' is in use by another registry", path);
		return fl_errf(errbuf, FL_EIO, "cannot lock sequence file '%s': %s", path,
		               ERRNO_TEXT(eb));
	}
	if (fstat(p->fd, &st) != 0)
		return fl_errf(errbuf, FL_EIO, "cannot stat sequence file '%s': %s", path,
		               ERRNO_TEXT(eb));
	if (!S_ISREG(st.st_mode))
		return fl_errf(errbuf, FL_EIO, "sequence file '%s' is not a regular file", path);
	/* Whoever can rewrite it can reopen the replay window or undo a revocation. */
	if (st.st_uid != geteuid())
		return fl_errf(errbuf, FL_EIO,
		               "sequence file '%s' belongs to uid %u, not to us (uid %u)", path,
		               (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return fl_errf(errbuf, FL_EIO,
		               "sequence file '%s' is writable by group or others (chmod 600 it)",
		               path);
	if (st.st_size == 0 && (flags & FL_PEERS_MUST_EXIST))
		return fl_errf(errbuf, FL_EPARSE,
		               "sequence file '%s' is empty, yet this process ran before: refusing "
		               "to start with no replay state",
		               path);
	if (st.st_size == 0) {
		uint8_t hdr[REC_SIZE] = {0};

		memcpy(hdr, seq_magic, sizeof(seq_magic));
		fl_store_be32(hdr + 16, REC_SIZE);
		seal_record(hdr);
		if ((rv = write_at(p, hdr, sizeof(hdr), 0, errbuf)) != FL_OK)
			return rv;
		if (fsync(p->fd) != 0)
			return fl_errf(errbuf, FL_EIO, "cannot sync sequence file '%s': %s", path,
			               ERRNO_TEXT(eb));
		fl_file_sync_parent(path); /* the new name too: a crash must not lose it */
		return FL_OK;
	}
	if (st.st_size < REC_SIZE || st.st_size % REC_SIZE != 0)
		return fl_errf(errbuf, FL_EPARSE,
		               "corrupt sequence file '%s': size %lld is not a header and whole "
		               "records of %d bytes",
		               path, (long long)st.st_size, REC_SIZE);
	if ((uint64_t)st.st_size / REC_SIZE - 1 > p->max)
		return fl_errf(
		    errbuf, FL_EPARSE,
		    "corrupt sequence file '%s': %llu records, more than the limit of %zu "
		    "peers",
		    path, (unsigned long long)(st.st_size / REC_SIZE - 1), p->max);
	size = (size_t)st.st_size;
	buf = fl_malloc(size);
	while (got < size) {
		ssize_t r = pread(p->fd, buf + got, size - got, (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rv = fl_errf(errbuf, FL_EIO, "cannot read sequence file '%s': %s", path,
			             r < 0 ? ERRNO_TEXT(eb) : "file shrank while reading");
			goto out;
		}
		got += (size_t)r;
	}
	rv = seq_load(p, buf, size, errbuf);
out:
	free(buf);
	return rv;
}

/* ---- the registry ---- */

enum fl_err fl_peers_new(const struct fl_identity *self, const char *seq_path, size_t max_peers,
                         unsigned flags, struct fl_peers **out, char *errbuf)
{
	struct fl_peers *p;
	enum fl_err rv;

	*out = NULL;
	if (self == NULL || max_peers > UINT32_MAX / 2 || (flags & ~FL_PEERS_MUST_EXIST) ||
	    ((flags & FL_PEERS_MUST_EXIST) && seq_path == NULL))
		return fl_errf(errbuf, FL_EINVAL, "invalid peer registry settings");
	p = fl_calloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->self = self;
	p->max = max_peers ? max_peers : FL_PEERS_MAX_DEFAULT;
	p->fd = -1;
	randombytes_buf(p->hashkey, sizeof(p->hashkey));
	grow(p);
	if (seq_path && (rv = seq_open(p, seq_path, flags, errbuf)) != FL_OK) {
		if (p->fd >= 0) /* never written to: nothing to sync */
			close(p->fd);
		p->fd = -1;
		fl_peers_free(p);
		return rv;
	}
	*out = p;
	return FL_OK;
}

void fl_peers_free(struct fl_peers *p)
{
	char err[FL_ERRBUF_SIZE];

	if (p == NULL)
		return;
	if (p->fd >= 0) {
		if (fl_peers_sync(p, err) != FL_OK)
			fl_log_error("peers", "%s", err);
		close(p->fd);
	}
	sodium_free(p->keys);
	free(p->entries);
	free(p->slots);
	free(p->path);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

const struct fl_identity *fl_peers_identity(const struct fl_peers *p)
{
	return p->self;
}

/* Validate a would-be peer and compute its shared key (no lock needed: the
 * identity's secret is read-only). */
static enum fl_err prepare(const struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                           enum fl_peer_role role, const char *name,
                           uint8_t key[crypto_box_BEFORENMBYTES], char *errbuf)
{
	char id[FL_PEER_ID_LEN + 1];

	if (!valid_role(role))
		return fl_errf(errbuf, FL_EINVAL, "invalid peer role %d", (int)role);
	if (!fl_peer_name_valid(name))
		return fl_errf(errbuf, FL_EINVAL,
		               "invalid peer name '%.*s': use 1 to %d of A-Z a-z 0-9 . _ @ : + -",
		               FL_PEER_NAME_MAX, name ? name : "", FL_PEER_NAME_MAX);
	fl_key_id(pk, id);
	if (memcmp(pk, fl_identity_public_key(p->self), FL_PEER_KEY_LEN) == 0)
		return fl_errf(errbuf, FL_EINVAL, "cannot add our own key %s as a peer", id);
	if (fl_identity_shared_key(p->self, pk, key) != FL_OK) {
		sodium_memzero(key, crypto_box_BEFORENMBYTES);
		return fl_errf(errbuf, FL_EINVAL, "key %s is not a usable Ed25519 public key", id);
	}
	return FL_OK;
}

/* Under the lock. require_new: refuse a key already approved. */
static enum fl_err add_locked(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                              enum fl_peer_role role, const char *name, const uint8_t *key,
                              bool require_new, char *errbuf)
{
	long idx = lookup(p, pk);
	struct entry *e;
	enum fl_err rv;

	if (idx >= 0) {
		e = &p->entries[idx];
		if (e->revoked)
			return fl_errf(errbuf, FL_ESTATE, "key %s was revoked", e->id);
		if (require_new && e->role != FL_PEER_NONE)
			return fl_errf(errbuf, FL_ESTATE, "key %s is already enrolled as '%s'",
			               e->id, e->name);
	} else {
		struct entry tmp = {.record = NO_RECORD};

		if (p->n >= p->max)
			return fl_errf(errbuf, FL_ENOTSUP, "too many peers (limit %zu)", p->max);
		memcpy(tmp.pk, pk, FL_PEER_KEY_LEN);
		if ((rv = record_write(p, &tmp, errbuf)) != FL_OK) /* on disk before it counts */
			return rv;
		e = insert(p, pk);
		e->record = tmp.record;
		idx = (long)(e - p->entries);
	}
	e->role = role;
	snprintf(e->name, sizeof(e->name), "%s", name);
	set_key(p, (size_t)idx, key);
	return FL_OK;
}

enum fl_err fl_peers_add(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                         enum fl_peer_role role, const char *name, char *errbuf)
{
	uint8_t key[crypto_box_BEFORENMBYTES];
	enum fl_err rv;

	if ((rv = prepare(p, pk, role, name, key, errbuf)) != FL_OK)
		return rv;
	pthread_mutex_lock(&p->lock);
	rv = add_locked(p, pk, role, name, key, false, errbuf);
	pthread_mutex_unlock(&p->lock);
	sodium_memzero(key, sizeof(key));
	return rv;
}

enum fl_err fl_peers_revoke(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN], char *errbuf)
{
	struct entry *e;
	enum fl_err rv = FL_OK;
	long idx;

	pthread_mutex_lock(&p->lock);
	idx = lookup(p, pk);
	if (idx < 0) {
		struct entry tmp = {.record = NO_RECORD, .revoked = true};

		if (p->n >= p->max) {
			rv = fl_errf(errbuf, FL_ENOTSUP, "too many peers (limit %zu)", p->max);
			goto out;
		}
		memcpy(tmp.pk, pk, FL_PEER_KEY_LEN);
		if ((rv = record_write(p, &tmp, errbuf)) != FL_OK)
			goto out;
		e = insert(p, pk);
		e->revoked = true;
		e->record = tmp.record;
		goto out;
	}
	e = &p->entries[idx];
	e->revoked = true;
	set_key(p, (size_t)idx, NULL);
	rv = record_write(p, e, errbuf);
out:
	/* Rare and security-critical: on disk before we say it is done, so a
	 * crash cannot bring a revoked key back through a stale config. */
	if (rv == FL_OK && p->fd >= 0 && fdatasync(p->fd) != 0) {
		char eb[128];

		rv = fl_errf(errbuf, FL_EIO, "cannot sync sequence file '%s': %s", p->path,
		             ERRNO_TEXT(eb));
	}
	pthread_mutex_unlock(&p->lock);
	return rv;
}

enum fl_err fl_peers_find(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                          struct fl_peer_info *info)
{
	enum fl_err rv = FL_ENOENT;
	long idx;

	pthread_mutex_lock(&p->lock);
	idx = lookup(p, pk);
	if (idx >= 0 && (p->entries[idx].role != FL_PEER_NONE || p->entries[idx].revoked)) {
		info_of(&p->entries[idx], info);
		rv = FL_OK;
	}
	pthread_mutex_unlock(&p->lock);
	return rv;
}

size_t fl_peers_count(struct fl_peers *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->n;
	pthread_mutex_unlock(&p->lock);
	return n;
}

enum fl_err fl_peers_get(struct fl_peers *p, size_t i, struct fl_peer_info *info)
{
	enum fl_err rv = FL_ENOENT;

	pthread_mutex_lock(&p->lock);
	if (i < p->n) {
		info_of(&p->entries[i], info);
		rv = FL_OK;
	}
	pthread_mutex_unlock(&p->lock);
	return rv;
}

enum fl_err fl_peers_sync(struct fl_peers *p, char *errbuf)
{
	char eb[128];

	if (p->fd >= 0 && fsync(p->fd) != 0)
		return fl_errf(errbuf, FL_EIO, "cannot sync sequence file '%s': %s", p->path,
		               ERRNO_TEXT(eb));
	return FL_OK;
}

/* ---- enrollment ---- */

enum fl_err fl_peers_enroll(struct fl_peers *p, const uint8_t agent_pk[FL_PEER_KEY_LEN],
                            const char *name, uint64_t seq, char *errbuf)
{
	uint8_t key[crypto_box_BEFORENMBYTES];
	struct entry *e;
	enum fl_err rv;
	long idx;

	if ((rv = prepare(p, agent_pk, FL_PEER_AGENT, name, key, errbuf)) != FL_OK)
		return rv;
	pthread_mutex_lock(&p->lock);
	if ((rv = add_locked(p, agent_pk, FL_PEER_AGENT, name, key, true, errbuf)) != FL_OK)
		goto out;
	/* The enrollment envelope was accepted: its number is spent, so the
	 * same bytes are a replay from now on. */
	idx = lookup(p, agent_pk);
	assert(idx >= 0);
	e = &p->entries[idx];
	/* Nothing was accepted from the key before (it was no peer, its window
	 * is empty): everything up to this number is refused from now on. */
	if (seq > e->floor)
		e->floor = seq;
	if (seq > e->last_recv) {
		char err[FL_ERRBUF_SIZE];

		e->last_recv = seq;
		if (record_write(p, e, err) != FL_OK)
			fl_log_error("peers", "%s", err); /* recorded in memory: fail closed */
	}
out:
	pthread_mutex_unlock(&p->lock);
	sodium_memzero(key, sizeof(key));
	return rv;
}

/* ---- per message ---- */

enum fl_peer_check fl_peers_recv_begin(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                                       uint8_t key[32], struct fl_peer_info *info)
{
	enum fl_peer_check rv = FL_PEER_OK;
	const struct entry *e;
	long idx;

	pthread_mutex_lock(&p->lock);
	idx = lookup(p, pk);
	if (idx < 0) {
		rv = FL_PEER_UNKNOWN;
		goto out;
	}
	e = &p->entries[idx];
	info_of(e, info);
	if (e->revoked)
		rv = FL_PEER_REVOKED;
	else if (e->role == FL_PEER_NONE)
		rv = FL_PEER_UNKNOWN;
	else
		memcpy(key, p->keys[idx], crypto_box_BEFORENMBYTES);
out:
	pthread_mutex_unlock(&p->lock);
	return rv;
}

enum fl_peer_check fl_peers_recv_commit(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                                        uint64_t seq, bool in_skew, uint64_t *last, uint64_t *floor)
{
	enum fl_peer_check rv = FL_PEER_OK;
	char err[FL_ERRBUF_SIZE];
	struct entry *e;
	bool raise;
	long idx;

	pthread_mutex_lock(&p->lock);
	idx = lookup(p, pk);
	if (idx < 0) { /* entries are never removed: cannot happen after recv_begin */
		rv = FL_PEER_UNKNOWN;
		goto out;
	}
	e = &p->entries[idx];
	*last = e->last_recv;
	*floor = e->floor;
	if (e->revoked)
		rv = FL_PEER_REVOKED;
	else if (!window_fresh(e, seq))
		rv = FL_PEER_REPLAY;
	else if (!in_skew)
		rv = FL_PEER_SKEW;
	if (rv != FL_PEER_OK)
		goto out;
	/* In memory first: even if the file write fails, this seq is spent. A
	 * number below the highest needs no write: the file's highest already
	 * keeps it refused after a restart. */
	raise = seq > e->last_recv;
	window_remember(e, seq);
	if (raise && record_write(p, e, err) != FL_OK) {
		fl_log_error("peers", "%s", err);
		rv = FL_PEER_STORE;
	}
out:
	pthread_mutex_unlock(&p->lock);
	return rv;
}

enum fl_err fl_peers_send_begin(struct fl_peers *p, const uint8_t pk[FL_PEER_KEY_LEN],
                                int64_t now_us, uint8_t key[32], uint64_t *seq, char *errbuf)
{
	enum fl_err rv = FL_OK;
	char id[FL_PEER_ID_LEN + 1];
	struct entry *e;
	long idx;

	pthread_mutex_lock(&p->lock);
	idx = lookup(p, pk);
	if (idx < 0 || (p->entries[idx].role == FL_PEER_NONE && !p->entries[idx].revoked)) {
		fl_key_id(pk, id);
		rv = fl_errf(errbuf, FL_ENOENT, "unknown recipient %s", id);
		goto out;
	}
	e = &p->entries[idx];
	if (e->revoked) {
		rv = fl_errf(errbuf, FL_ESTATE, "recipient %s was revoked", e->id);
		goto out;
	}
	if (e->last_sent == UINT64_MAX) {
		rv = fl_errf(errbuf, FL_EINVAL, "sequence numbers to %s exhausted", e->id);
		goto out;
	}
	*seq = e->last_sent + 1;
	if (now_us > 0 && (uint64_t)now_us > *seq)
		*seq = (uint64_t)now_us;
	e->last_sent = *seq;
	memcpy(key, p->keys[idx], crypto_box_BEFORENMBYTES);
out:
	pthread_mutex_unlock(&p->lock);
	return rv;
}
