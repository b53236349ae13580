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
#define REC_ACKED  4

static const char magic[FL_RECFILE_MAGIC_LEN] = "flotilla jnl v1\n";

struct pending {
	uint64_t id;
	uint8_t *bytes;
	size_t len;
};

/* A set of journal ids (sorted array). */
struct idset {
	uint64_t *v;
	size_t n, cap;
};

struct fl_journal {
	pthread_mutex_t mu;
	struct fl_recfile *file;
	struct pending *items; /* by id, ascending */
	size_t n, cap;
	uint64_t low;      /* every id up to this one was journaled (pending or acked) */
	struct idset seen; /* ids above low with a REPORT record in the file */
	struct idset out;  /* ids reserved in this process, not journaled yet */
	size_t bytes;      /* of the pending reports */
	uint64_t max_id;   /* highest id given or seen */
	size_t acked;      /* ACK records (and acknowledged reports) in the file */
	uint64_t reserved; /* highest id reserved in this process */
};

static size_t idset_find(const struct idset *s, uint64_t id, bool *found)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < s->n && s->v[lo] == id;
	return lo;
}

static void idset_add(struct idset *s, uint64_t id)
{
	bool found;
	size_t at = idset_find(s, id, &found);

	if (found)
		return;
	s->v = fl_grow(s->v, &s->cap, s->n + 1, sizeof(*s->v));
	memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof(*s->v));
	s->v[at] = id;
	s->n++;
}

static void idset_del(struct idset *s, uint64_t id)
{
	bool found;
	size_t at = idset_find(s, id, &found);

	if (!found)
		return;
	memmove(&s->v[at], &s->v[at + 1], (s->n - at - 1) * sizeof(*s->v));
	s->n--;
}

static bool idset_has(const struct idset *s, uint64_t id)
{
	bool found;

	idset_find(s, id, &found);
	return found;
}

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
		if (id > j->low)
			idset_add(&j->seen, id);
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
	case REC_BASE: {
		/* payload: the low mark (files written before it: none, the id
		 * stands for it) */
		struct fl_rec_reader r;
		uint64_t low;

		fl_rec_reader_init(&r, payload, len);
		low = len >= 8 ? fl_rec_get_u64(&r) : id;
		j->low = low < id ? low : id;
		j->seen.n = 0;
		return FL_OK;
	}
	case REC_ACKED: /* acknowledged, listed by a compaction: journaled */
		if (id > j->low)
			idset_add(&j->seen, id);
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
	free(j->seen.v);
	free(j->out.v);
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
	idset_add(&j->out, id);
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
	idset_del(&j->out, id);
	if (id > j->low)
		idset_add(&j->seen, id);
	if (id > j->max_id)
		j->max_id = id;
out:
	pthread_mutex_unlock(&j->mu);
	return rv;
}

/*
 * BASE (id: the highest id given; payload: the low mark), the pending
 * reports, and an ACKED record for each report acknowledged above the mark.
 * The mark is below every id reserved and not journaled yet: the ledger may
 * hold such a report, and a crash lose it before it is journaled, so an id
 * above the mark that the file does not list was never journaled
 * (fl_journal_lost).
 */
static enum fl_err compact_locked(struct fl_journal *j, char *errbuf)
{
	struct fl_buf b = FL_BUF_INIT;
	uint64_t low = j->out.n > 0 && j->out.v[0] - 1 < j->max_id ? j->out.v[0] - 1 : j->max_id;
	enum fl_err rv;
	size_t i;

	if ((rv = fl_recfile_rewrite_begin(j->file, errbuf)) != FL_OK)
		return rv;
	fl_rec_put_u64(&b, low);
	rv = fl_recfile_rewrite_add(j->file, REC_BASE, j->max_id, b.data, b.len, errbuf);
	fl_buf_fini(&b);
	for (i = 0; rv == FL_OK && i < j->n; i++)
		rv = fl_recfile_rewrite_add(j->file, REC_REPORT, j->items[i].id, j->items[i].bytes,
		                            j->items[i].len, errbuf);
	for (i = 0; rv == FL_OK && i < j->seen.n; i++) {
		bool pending;

		find(j, j->seen.v[i], &pending);
		if (j->seen.v[i] > low && !pending)
			rv = fl_recfile_rewrite_add(j->file, REC_ACKED, j->seen.v[i], NULL, 0,
			                            errbuf);
	}
	if (rv != FL_OK) {
		fl_recfile_rewrite_abort(j->file);
		return rv;
	}
	if ((rv = fl_recfile_rewrite_commit(j->file, errbuf)) != FL_OK)
		return rv;
	j->acked = 0;
	j->low = low;
	for (i = 0; i < j->seen.n;) /* at or below the mark: journaled, by the mark */
		if (j->seen.v[i] <= low)
			idset_del(&j->seen, j->seen.v[i]);
		else
			i++;
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

void fl_journal_unreserve(struct fl_journal *j, uint64_t id)
{
	pthread_mutex_lock(&j->mu);
	idset_del(&j->out, id);
	pthread_mutex_unlock(&j->mu);
}

uint64_t fl_journal_low(struct fl_journal *j)
{
	uint64_t low;

	pthread_mutex_lock(&j->mu);
	low = j->low;
	pthread_mutex_unlock(&j->mu);
	return low;
}

bool fl_journal_lost(struct fl_journal *j, uint64_t id)
{
	bool lost;

	pthread_mutex_lock(&j->mu);
	lost = id > j->low && !idset_has(&j->seen, id);
	pthread_mutex_unlock(&j->mu);
	return lost;
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
