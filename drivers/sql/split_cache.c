/*
 * fl_sql_split, remembering: an agent deploys the same release to every
 * tenant it owns, and parsing each migration again for each tenant was a
 * tenth of its CPU (tests/bench). Splitting depends on the text alone, so
 * the result of a script split before is taken by the BLAKE2b-256 of its
 * bytes (and its length), which costs a few microseconds where parsing it
 * costs a hundred or more.
 *
 * A small direct-mapped table: a script's slot is a function of its hash, a
 * new one evicts whatever held the slot. Failures are not kept (the error
 * text would have to be), nor scripts of many statements (memory).
 */
#include "split.h"

#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

#define SLOTS          256 /* power of two */
#define MAX_STATEMENTS 4096

struct slot {
	uint8_t key[crypto_generichash_BYTES];
	size_t len;                /* of the script */
	struct fl_sql_stmt *stmts; /* NULL: an empty slot */
	size_t count;
	unsigned flags;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[SLOTS];
static uint64_t hits, misses;

static struct fl_sql_stmt *stmts_copy(const struct fl_sql_stmt *s, size_t n)
{
	struct fl_sql_stmt *c = fl_calloc(n ? n : 1, sizeof(*c));

	if (n)
		memcpy(c, s, n * sizeof(*c));
	return c;
}

enum fl_err fl_sql_split(const char *sql, struct fl_sql_script *out, char *errbuf)
{
	uint8_t key[crypto_generichash_BYTES];
	size_t len = strlen(sql);
	struct slot *sl;
	enum fl_err rv;

	crypto_generichash(key, sizeof(key), (const unsigned char *)sql, len, NULL, 0);
	sl = &slots[(key[0] | (size_t)key[1] << 8) & (SLOTS - 1)];
	pthread_mutex_lock(&mu);
	if (sl->stmts != NULL && sl->len == len && memcmp(sl->key, key, sizeof(key)) == 0) {
		memset(out, 0, sizeof(*out));
		out->stmts = stmts_copy(sl->stmts, sl->count);
		out->count = sl->count;
		out->flags = sl->flags;
		out->parsed = true;
		hits++;
		pthread_mutex_unlock(&mu);
		return FL_OK;
	}
	misses++;
	pthread_mutex_unlock(&mu);

	rv = fl_sql_split_limited(sql, FL_SQL_PIECE_MAX, FL_SQL_PIECE_MAX, out, errbuf);
	if (rv != FL_OK || out->count > MAX_STATEMENTS)
		return rv;
	pthread_mutex_lock(&mu);
	free(sl->stmts);
	memcpy(sl->key, key, sizeof(key));
	sl->len = len;
	sl->stmts = stmts_copy(out->stmts, out->count);
	sl->count = out->count;
	sl->flags = out->flags;
	pthread_mutex_unlock(&mu);
	return FL_OK;
}

void fl_sql_split_cache_stats(uint64_t *hit, uint64_t *miss)
{
	pthread_mutex_lock(&mu);
	*hit = hits;
	*miss = misses;
	pthread_mutex_unlock(&mu);
}
