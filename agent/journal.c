/* The report journal (see journal.h). */
#include "journal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "recfile.h"

#define REC_REPORT 1
#define REC_ACK    2
#define REC_BASE   3

static const char magic[FL_RECFILE_MAGIC_LEN] = "flotilla jnl v1\n";

struct pending {
	uint64_t id;
	uint8_t *bytes;
	size_t len;
};

struct fl_journal {
	pthread_mutex_t mu;
	struct fl_recfile *file;
	struct pending *items; /* by id, ascending */
	size_t n, cap;
	size_t bytes;      /* of the pending reports */
	uint64_t max_id;   /* highest id given or seen */
	size_t acked;      /* ACK records (and acknowledged reports) in the file */
	uint64_t reserved; /* highest id reserved in this process */
};

/* Index of id in items, or where it would go. */
static size_t find(const struct fl_journal *j, uint64_t id, bool *found)
{
	size_t lo = 0, hi = j->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (j->items[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < j->n && j->items[lo].id == id;
	return lo;
}

static void insert(struct fl_journal *j, uint64_t id, const uint8_t *p, size_t len)
{
	bool found;
	size_t at = find(j, id, &found);

	if (found)
		return;
	j->items = fl_grow(j->items, &j->cap, j->n + 1, sizeof(*j->items));
	memmove(&j->items[at + 1], &j->items[at], (j->n - at) * sizeof(*j->items));
	j->items[at].id = id;
	j->items[at].bytes = fl_malloc(len > 0 ? len : 1);
	if (len > 0)
		memcpy(j->items[at].bytes, p, len);
	j->items[at].len = len;
	j->n++;
	j->bytes += len;
}

static bool drop(struct fl_journal *j, uint64_t id)
{
	bool found;
	size_t at = find(j, id, &found);

	if (!found)
		return false;
	j->bytes -= j->items[at].len;
	free(j->items[at].bytes);
	memmove(&j->items[at], &j->items[at + 1], (j->n - at - 1) * sizeof(*j->items));
	j->n--;
	return true;
}

static enum fl_err load(void *arg, uint8_t type, uint64_t id, const uint8_t *payload, size_t len,
                        char *errbuf)
{
	struct fl_journal *j = arg;
	bool found;

	if (id > j->max_id)
		j->max_id = id;
	switch (type) {
	case REC_REPORT:
		if (id == 0)
			return fl_errf(errbuf, FL_EPARSE, "journal: a report with id 0");
		find(j, id, &found);
		if (found)
			fl_log_warn("journal",
			            "report %llu is in the journal twice; keeping the first",
			            (unsigned long long)id);
		insert(j, id, payload, len);
		return FL_OK;
	case REC_ACK:
		drop(j, id);
		j->acked++;
		return FL_OK;
	case REC_BASE:
		return FL_OK;
	default:
		return fl_errf(errbuf, FL_EPARSE, "journal: unknown record type %u", type);
	}
}

enum fl_err fl_journal_open(const char *path, struct fl_journal **out, char *errbuf)
{
	struct fl_journal *j = fl_calloc(1, sizeof(*j));
	enum fl_err rv;

	*out = NULL;
	pthread_mutex_init(&j->mu, NULL);
	if ((rv = fl_recfile_open(path, "journal", magic, UINT32_C(1) << REC_ACK, load, j, &j->file,
	                          errbuf)) != FL_OK) {
		fl_journal_close(j);
		return rv;
	}
	j->reserved = j->max_id;
	*out = j;
	return FL_OK;
}

void fl_journal_close(struct fl_journal *j)
{
	size_t i;

	if (j == NULL)
		return;
	fl_recfile_close(j->file);
	for (i = 0; i < j->n; i++)
		free(j->items[i].bytes);
	free(j->items);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

uint64_t fl_journal_reserve(struct fl_journal *j)
{
	uint64_t id;

	pthread_mutex_lock(&j->mu);
	if (j->reserved < j->max_id)
		j->reserved = j->max_id;
	id = ++j->reserved;
	pthread_mutex_unlock(&j->mu);
	return id;
}

uint64_t fl_journal_max_id(struct fl_journal *j)
{
	uint64_t id;

	pthread_mutex_lock(&j->mu);
	id = j->max_id;
	pthread_mutex_unlock(&j->mu);
	return id;
}

enum fl_err fl_journal_put(struct fl_journal *j, uint64_t id, const void *report, size_t len,
                           char *errbuf)
{
	enum fl_err rv;
	bool found;

	if (id == 0)
		return fl_errf(errbuf, FL_EINVAL, "journal id 0");
	pthread_mutex_lock(&j->mu);
	find(j, id, &found);
	if (found) {
		rv = FL_OK;
		goto out;
	}
	rv = fl_recfile_append(j->file, REC_REPORT, id, report, len, true, errbuf);
	if (rv != FL_OK)
		goto out;
	insert(j, id, report, len);
	if (id > j->max_id)
		j->max_id = id;
out:
	pthread_mutex_unlock(&j->mu);
	return rv;
}

static enum fl_err compact_locked(struct fl_journal *j, char *errbuf)
{
	enum fl_err rv;
	size_t i;

	if ((rv = fl_recfile_rewrite_begin(j->file, errbuf)) != FL_OK)
		return rv;
	rv = fl_recfile_rewrite_add(j->file, REC_BASE, j->max_id, NULL, 0, errbuf);
	for (i = 0; rv == FL_OK && i < j->n; i++)
		rv = fl_recfile_rewrite_add(j->file, REC_REPORT, j->items[i].id, j->items[i].bytes,
		                            j->items[i].len, errbuf);
	if (rv != FL_OK) {
		fl_recfile_rewrite_abort(j->file);
		return rv;
	}
	if ((rv = fl_recfile_rewrite_commit(j->file, errbuf)) != FL_OK)
		return rv;
	j->acked = 0;
	return FL_OK;
}

enum fl_err fl_journal_ack(struct fl_journal *j, uint64_t id, char *errbuf)
{
	enum fl_err rv = FL_OK;

	pthread_mutex_lock(&j->mu);
	if (!drop(j, id))
		goto out;
	j->acked++;
	if ((rv = fl_recfile_append(j->file, REC_ACK, id, NULL, 0, false, errbuf)) != FL_OK)
		goto out;
	if (j->acked >= FL_JOURNAL_COMPACT_AFTER && j->acked >= j->n)
		rv = compact_locked(j, errbuf);
out:
	pthread_mutex_unlock(&j->mu);
	return rv;
}

bool fl_journal_next(struct fl_journal *j, uint64_t after, uint64_t *id, struct fl_buf *out)
{
	bool found, ok = false;
	size_t at;

	pthread_mutex_lock(&j->mu);
	at = find(j, after + 1, &found);
	if (after < UINT64_MAX && at < j->n) {
		*id = j->items[at].id;
		fl_buf_reset(out);
		if (fl_buf_append(out, j->items[at].bytes, j->items[at].len) == FL_OK)
			ok = true;
	}
	pthread_mutex_unlock(&j->mu);
	return ok;
}

bool fl_journal_pending(struct fl_journal *j, uint64_t id)
{
	bool found;

	pthread_mutex_lock(&j->mu);
	find(j, id, &found);
	pthread_mutex_unlock(&j->mu);
	return found;
}

size_t fl_journal_count(struct fl_journal *j)
{
	size_t n;

	pthread_mutex_lock(&j->mu);
	n = j->n;
	pthread_mutex_unlock(&j->mu);
	return n;
}

size_t fl_journal_bytes(struct fl_journal *j)
{
	size_t n;

	pthread_mutex_lock(&j->mu);
	n = j->bytes;
	pthread_mutex_unlock(&j->mu);
	return n;
}

enum fl_err fl_journal_compact(struct fl_journal *j, char *errbuf)
{
	enum fl_err rv;

	pthread_mutex_lock(&j->mu);
	rv = compact_locked(j, errbuf);
	pthread_mutex_unlock(&j->mu);
	return rv;
}
