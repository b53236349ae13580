/* The release cache (see releases.h). */
#include "releases.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "mem.h"

struct slot {
	struct fl_release_ref *ref; /* one reference held by the cache */
	uint64_t used;              /* for eviction: higher is more recent */
};

struct fl_releases {
	pthread_mutex_t mu;
	pthread_cond_t fetched;
	char *dir;
	uint8_t (*keys)[FL_KEY_PUBLIC_BYTES];
	size_t n_keys;
	char *project;
	size_t max_size;
	uint64_t generation; /* bumped by set_trust */
	struct slot slots[FL_RELEASES_IN_MEMORY];
	uint64_t clock;
	uint8_t (*busy)[32]; /* hashes being loaded or fetched */
	size_t n_busy;
};

static void hex_of(const uint8_t hash[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[hash[i] >> 4];
		out[2 * i + 1] = digits[hash[i] & 15];
	}
	out[64] = '\0';
}

enum fl_err fl_releases_open(const char *dir, struct fl_releases **out, char *errbuf)
{
	struct fl_releases *rs;
	struct stat st;
	char e[128];

	*out = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return fl_errf(errbuf, FL_EIO, "cannot create '%s': %s", dir,
		               fl_err_errno(errno, e, sizeof(e)));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return fl_errf(errbuf, FL_EIO, "'%s' is not a folder", dir);
	rs = fl_calloc(1, sizeof(*rs));
	pthread_mutex_init(&rs->mu, NULL);
	pthread_cond_init(&rs->fetched, NULL);
	rs->dir = fl_strdup(dir);
	rs->project = fl_strdup("");
	rs->max_size = FL_RELEASE_FILE_MAX;
	*out = rs;
	return FL_OK;
}

static void drop_memory(struct fl_releases *rs)
{
	for (int i = 0; i < FL_RELEASES_IN_MEMORY; i++) {
		fl_releases_unref(rs->slots[i].ref);
		rs->slots[i].ref = NULL;
	}
}

void fl_releases_close(struct fl_releases *rs)
{
	if (rs == NULL)
		return;
	drop_memory(rs);
	free(rs->keys);
	free(rs->project);
	free(rs->dir);
	free(rs->busy);
	pthread_cond_destroy(&rs->fetched);
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}

void fl_releases_set_trust(struct fl_releases *rs, const uint8_t (*keys)[FL_KEY_PUBLIC_BYTES],
                           size_t n, const char *project_id, size_t max_size)
{
	pthread_mutex_lock(&rs->mu);
	free(rs->keys);
	rs->keys = n ? fl_calloc(n, FL_KEY_PUBLIC_BYTES) : NULL;
	if (n)
		memcpy(rs->keys, keys, n * FL_KEY_PUBLIC_BYTES);
	rs->n_keys = n;
	free(rs->project);
	rs->project = fl_strdup(project_id);
	rs->max_size = max_size > FL_RELEASE_FILE_MAX ? FL_RELEASE_FILE_MAX : max_size;
	rs->generation++;
	drop_memory(rs);
	pthread_mutex_unlock(&rs->mu);
}

void fl_releases_unref(struct fl_release_ref *ref)
{
	if (ref == NULL || atomic_fetch_sub(&ref->refs, 1) != 1)
		return;
	fl_release_free(ref->release);
	free(ref);
}

static struct fl_release_ref *lookup(struct fl_releases *rs, const uint8_t hash[32])
{
	for (int i = 0; i < FL_RELEASES_IN_MEMORY; i++)
		if (rs->slots[i].ref != NULL && memcmp(rs->slots[i].ref->hash, hash, 32) == 0) {
			rs->slots[i].used = ++rs->clock;
			atomic_fetch_add(&rs->slots[i].ref->refs, 1);
			return rs->slots[i].ref;
		}
	return NULL;
}

static void remember(struct fl_releases *rs, struct fl_release_ref *ref)
{
	int i, victim = 0;

	for (i = 0; i < FL_RELEASES_IN_MEMORY; i++) {
		if (rs->slots[i].ref == NULL) {
			victim = i;
			break;
		}
		if (rs->slots[i].used < rs->slots[victim].used)
			victim = i;
	}
	fl_releases_unref(rs->slots[victim].ref);
	atomic_fetch_add(&ref->refs, 1);
	rs->slots[victim].ref = ref;
	rs->slots[victim].used = ++rs->clock;
}

static bool is_busy(const struct fl_releases *rs, const uint8_t hash[32], size_t *at)
{
	for (size_t i = 0; i < rs->n_busy; i++)
		if (memcmp(rs->busy[i], hash, 32) == 0) {
			if (at)
				*at = i;
			return true;
		}
	return false;
}

/* Verify data against the trust as it was when we started (keys copied by
 * the caller), expecting hash. */
static enum fl_err verify(const uint8_t (*keys)[FL_KEY_PUBLIC_BYTES], size_t n_keys,
                          const char *project, size_t max_size, const uint8_t hash[32],
                          const struct fl_buf *data, struct fl_release_ref **out, char *errbuf)
{
	struct fl_release *r = NULL;
	struct fl_release_ref *ref;
	enum fl_err rv;

	if (data->len > max_size)
		return fl_errf(errbuf, FL_EPARSE,
		               "release of %zu bytes exceeds max_release_size (%zu bytes)",
		               data->len, max_size);
	if (n_keys == 0)
		return fl_errf(errbuf, FL_EAUTH, "no trusted release keys");
	rv = fl_release_verify(data->data, data->len, keys, n_keys, hash, project, &r, errbuf);
	if (rv != FL_OK)
		return rv;
	ref = fl_calloc(1, sizeof(*ref));
	atomic_init(&ref->refs, 1);
	ref->release = r;
	memcpy(ref->hash, hash, 32);
	*out = ref;
	return FL_OK;
}

enum fl_err fl_releases_get(struct fl_releases *rs, const uint8_t hash[32],
                            fl_releases_fetch_fn fetch, void *arg, struct fl_release_ref **out,
                            char *errbuf)
{
	uint8_t(*keys)[FL_KEY_PUBLIC_BYTES] = NULL;
	struct fl_buf data = FL_BUF_INIT, path = FL_BUF_INIT;
	struct fl_release_ref *ref = NULL;
	char hex[65], *project = NULL;
	size_t n_keys, max_size, at;
	uint64_t generation;
	enum fl_err rv;

	*out = NULL;
	hex_of(hash, hex);
	pthread_mutex_lock(&rs->mu);
	for (;;) {
		if ((ref = lookup(rs, hash)) != NULL) {
			pthread_mutex_unlock(&rs->mu);
			*out = ref;
			return FL_OK;
		}
		if (!is_busy(rs, hash, NULL))
			break;
		pthread_cond_wait(&rs->fetched, &rs->mu);
	}
	rs->busy = fl_realloc(rs->busy, (rs->n_busy + 1) * 32);
	memcpy(rs->busy[rs->n_busy++], hash, 32);
	n_keys = rs->n_keys;
	keys = n_keys ? fl_calloc(n_keys, FL_KEY_PUBLIC_BYTES) : NULL;
	if (n_keys)
		memcpy(keys, rs->keys, n_keys * FL_KEY_PUBLIC_BYTES);
	project = fl_strdup(rs->project);
	max_size = rs->max_size;
	generation = rs->generation;
	pthread_mutex_unlock(&rs->mu);

	fl_buf_printf(&path, "%s/%s.release", rs->dir, hex);
	rv = fl_release_file_read(path.data, &data, errbuf);
	if (rv == FL_OK) {
		rv = verify(keys, n_keys, project, max_size, hash, &data, &ref, errbuf);
		if (rv != FL_OK)
			fl_err_prefix(errbuf, "cached release '%s'", path.data);
	} else if (rv == FL_ENOENT) {
		if (fetch == NULL) {
			rv = fl_errf(errbuf, FL_ENOENT, "release %.16s is not cached", hex);
		} else if ((rv = fetch(arg, hash, &data, errbuf)) == FL_OK &&
		           (rv = verify(keys, n_keys, project, max_size, hash, &data, &ref,
		                        errbuf)) == FL_OK) {
			rv = fl_release_file_write(path.data, data.data, data.len, errbuf);
			if (rv != FL_OK) {
				fl_releases_unref(ref);
				ref = NULL;
			}
		}
	}

	pthread_mutex_lock(&rs->mu);
	if (is_busy(rs, hash, &at)) {
		memmove(&rs->busy[at], &rs->busy[at + 1], (rs->n_busy - at - 1) * 32);
		rs->n_busy--;
	}
	/* trust changed while we verified: keep the result out of the cache */
	if (rv == FL_OK && generation == rs->generation)
		remember(rs, ref);
	pthread_cond_broadcast(&rs->fetched);
	pthread_mutex_unlock(&rs->mu);

	free(keys);
	free(project);
	fl_buf_fini(&data);
	fl_buf_fini(&path);
	if (rv == FL_OK)
		*out = ref;
	return rv;
}
