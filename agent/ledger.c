/* The assignment ledger (see ledger.h). */
#include "ledger.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "recfile.h"

#define REC_START  1
#define REC_STEP   2
#define REC_FINISH 3
#define REC_ENTRY  4
#define REC_FLOOR  5

#define STEP_APPLIED  1
#define STEP_REVERTED 2

/* flotilla.proto values the sequence rule reads (asserted where the agent
 * includes the generated header: agent/report.c). */
#define KIND_APPLY       1
#define OUTCOME_APPLIED  1
#define OUTCOME_SKIPPED  6
#define COMPACT_MIN_RECS 1024
/* An entry is dropped at compaction this long after its order expired: it
 * can never run again (its order is refused), and its tenant's sequence is
 * kept as a FLOOR. The margin covers a clock set back by mistake. */
#define PRUNE_AFTER_MS (INT64_C(7) * 86400 * 1000)

static const char magic[FL_RECFILE_MAGIC_LEN] = "flotilla ldg v1\n";

/* A tenant's release sequence floor. */
struct floor {
	char *tenant; /* NULL: an empty slot */
	uint64_t seq;
};

struct fl_ledger {
	pthread_mutex_t mu;
	struct fl_recfile *file;
	struct fl_ledger_entry *items; /* in the order they started */
	size_t n, cap;
	size_t *slots; /* open addressing: index + 1 into items, 0 empty */
	size_t nslots;
	struct floor *floors; /* open addressing by tenant id */
	size_t n_floors, floor_slots;
	size_t records; /* in the file */
	size_t base;    /* records after the last compaction (or at open) */
};

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void fl_ledger_entry_fini(struct fl_ledger_entry *e)
{
	if (e == NULL)
		return;
	free(e->tenant_id);
	free(e->rollout_id);
	free(e->target);
	strv_free(e->applied, e->n_applied);
	strv_free(e->reverted, e->n_reverted);
	free(e->report);
	memset(e, 0, sizeof(*e));
}

static char **strv_copy(char *const *v, size_t n)
{
	char **out = n ? fl_calloc(n, sizeof(char *)) : NULL;

	for (size_t i = 0; i < n; i++)
		out[i] = fl_strdup(v[i]);
	return out;
}

static void entry_copy(struct fl_ledger_entry *dst, const struct fl_ledger_entry *src)
{
	*dst = *src;
	dst->tenant_id = fl_strdup(src->tenant_id);
	dst->rollout_id = fl_strdup(src->rollout_id);
	dst->target = fl_strdup(src->target);
	dst->applied = strv_copy(src->applied, src->n_applied);
	dst->reverted = strv_copy(src->reverted, src->n_reverted);
	dst->report = NULL;
	if (src->report != NULL) {
		dst->report = fl_malloc(src->report_len ? src->report_len : 1);
		memcpy(dst->report, src->report, src->report_len);
	}
}

static size_t hash_id(uint64_t id)
{
	id ^= id >> 33;
	id *= UINT64_C(0xff51afd7ed558ccd);
	id ^= id >> 33;
	return (size_t)id;
}

static void rehash(struct fl_ledger *l)
{
	size_t i, nslots = l->nslots ? l->nslots * 2 : 256;

	while (nslots < 2 * (l->n + 1))
		nslots *= 2;

	free(l->slots);
	l->slots = fl_calloc(nslots, sizeof(size_t));
	l->nslots = nslots;
	for (i = 0; i < l->n; i++) {
		size_t h = hash_id(l->items[i].assignment_id) & (nslots - 1);

		while (l->slots[h] != 0)
			h = (h + 1) & (nslots - 1);
		l->slots[h] = i + 1;
	}
}

static struct fl_ledger_entry *lookup(struct fl_ledger *l, uint64_t id)
{
	size_t h;

	if (l->nslots == 0)
		return NULL;
	for (h = hash_id(id) & (l->nslots - 1); l->slots[h] != 0; h = (h + 1) & (l->nslots - 1))
		if (l->items[l->slots[h] - 1].assignment_id == id)
			return &l->items[l->slots[h] - 1];
	return NULL;
}

/* A new, empty entry for id (not in the ledger yet). */
static struct fl_ledger_entry *add(struct fl_ledger *l, uint64_t id)
{
	struct fl_ledger_entry *e;
	size_t h;

	l->items = fl_grow(l->items, &l->cap, l->n + 1, sizeof(*l->items));
	e = &l->items[l->n++];
	memset(e, 0, sizeof(*e));
	e->assignment_id = id;
	if (l->n * 2 > l->nslots) {
		rehash(l);
	} else {
		for (h = hash_id(id) & (l->nslots - 1); l->slots[h] != 0;
		     h = (h + 1) & (l->nslots - 1))
			;
		l->slots[h] = l->n;
	}
	return e;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
	*v = fl_realloc(*v, (*n + 1) * sizeof(char *));
	(*v)[(*n)++] = fl_strdup(s);
}

/* ---- tenants' sequence floors ---- */

static size_t hash_str(const char *s)
{
	uint64_t h = UINT64_C(1469598103934665603);

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
	return (size_t)h;
}

static struct floor *floor_slot(struct floor *v, size_t nslots, const char *tenant)
{
	size_t h = hash_str(tenant) & (nslots - 1);

	while (v[h].tenant != NULL && strcmp(v[h].tenant, tenant) != 0)
		h = (h + 1) & (nslots - 1);
	return &v[h];
}

/* Raise tenant's floor to seq (never lowers it). */
static void raise_floor(struct fl_ledger *l, const char *tenant, uint64_t seq)
{
	struct floor *f;

	if (seq == 0)
		return;
	if ((l->n_floors + 1) * 2 > l->floor_slots) {
		size_t nslots = l->floor_slots ? l->floor_slots * 2 : 64;
		struct floor *v = fl_calloc(nslots, sizeof(*v));

		for (size_t i = 0; i < l->floor_slots; i++)
			if (l->floors[i].tenant != NULL)
				*floor_slot(v, nslots, l->floors[i].tenant) = l->floors[i];
		free(l->floors);
		l->floors = v;
		l->floor_slots = nslots;
	}
	f = floor_slot(l->floors, l->floor_slots, tenant);
	if (f->tenant == NULL) {
		f->tenant = fl_strdup(tenant);
		l->n_floors++;
	}
	if (seq > f->seq)
		f->seq = seq;
}

/* The highest release sequence applied to tenant_id. l->mu held. */
static uint64_t floor_locked(struct fl_ledger *l, const char *tenant_id)
{
	const struct floor *f;

	if (l->floor_slots == 0)
		return 0;
	f = floor_slot(l->floors, l->floor_slots, tenant_id);
	return f->tenant != NULL ? f->seq : 0;
}

/*
 * The per-tenant sequence counts an APPLY assignment that applied at least
 * one migration, or ended APPLIED or SKIPPED (the tenant reached the
 * release's target): from then on the tenant runs that release.
 */
static void note_floor(struct fl_ledger *l, const struct fl_ledger_entry *e)
{
	if (e->kind == KIND_APPLY &&
	    (e->n_applied > 0 ||
	     (e->finished && (e->outcome == OUTCOME_APPLIED || e->outcome == OUTCOME_SKIPPED))))
		raise_floor(l, e->tenant_id, e->release_sequence);
}

/* ---- payloads ---- */

static void encode_start(struct fl_buf *b, const struct fl_ledger_entry *e)
{
	fl_rec_put_bytes(b, e->order_hash, FL_LEDGER_HASH_LEN);
	fl_rec_put_bytes(b, e->release_hash, FL_LEDGER_HASH_LEN);
	fl_rec_put_u64(b, e->release_sequence);
	fl_rec_put_str(b, e->tenant_id);
	fl_rec_put_str(b, e->rollout_id);
	fl_rec_put_u32(b, (uint32_t)e->kind);
	fl_rec_put_str(b, e->target);
	fl_rec_put_i64(b, e->started_at_ms);
	fl_rec_put_i64(b, e->expires_at_ms);
}

static bool decode_hash(struct fl_rec_reader *r, uint8_t out[FL_LEDGER_HASH_LEN])
{
	size_t len;
	const uint8_t *p = fl_rec_get_bytes(r, &len);

	if (p == NULL || len != FL_LEDGER_HASH_LEN)
		return false;
	memcpy(out, p, len);
	return true;
}

static bool decode_start(struct fl_rec_reader *r, struct fl_ledger_entry *e)
{
	if (!decode_hash(r, e->order_hash) || !decode_hash(r, e->release_hash))
		return false;
	e->release_sequence = fl_rec_get_u64(r);
	e->tenant_id = fl_rec_get_str(r);
	e->rollout_id = fl_rec_get_str(r);
	e->kind = (int)fl_rec_get_u32(r);
	e->target = fl_rec_get_str(r);
	e->started_at_ms = fl_rec_get_i64(r);
	e->expires_at_ms = fl_rec_get_i64(r);
	return !r->bad && e->tenant_id != NULL && e->rollout_id != NULL && e->target != NULL;
}

static void encode_finish(struct fl_buf *b, const struct fl_ledger_entry *e)
{
	fl_rec_put_u32(b, (uint32_t)e->outcome);
	fl_rec_put_i64(b, e->finished_at_ms);
	fl_rec_put_u64(b, e->journal_id);
	fl_rec_put_bytes(b, e->report, e->report_len);
}

static bool decode_finish(struct fl_rec_reader *r, struct fl_ledger_entry *e)
{
	const uint8_t *p;
	size_t len;

	e->outcome = (int)fl_rec_get_u32(r);
	e->finished_at_ms = fl_rec_get_i64(r);
	e->journal_id = fl_rec_get_u64(r);
	p = fl_rec_get_bytes(r, &len);
	if (r->bad)
		return false;
	free(e->report);
	e->report = NULL;
	e->report_len = 0;
	if (p != NULL) {
		e->report = fl_malloc(len ? len : 1);
		memcpy(e->report, p, len);
		e->report_len = len;
	}
	e->finished = true;
	return true;
}

static void encode_strv(struct fl_buf *b, char *const *v, size_t n)
{
	fl_rec_put_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		fl_rec_put_str(b, v[i]);
}

static bool decode_strv(struct fl_rec_reader *r, char ***v, size_t *n)
{
	uint32_t count = fl_rec_get_u32(r);

	for (uint32_t i = 0; i < count && !r->bad; i++) {
		char *s = fl_rec_get_str(r);

		if (s == NULL)
			return false;
		strv_push(v, n, s);
		free(s);
	}
	return !r->bad;
}

static enum fl_err load(void *arg, uint8_t type, uint64_t id, const uint8_t *payload, size_t len,
                        char *errbuf)
{
	struct fl_ledger *l = arg;
	struct fl_rec_reader r;
	struct fl_ledger_entry *e = lookup(l, id);
	uint8_t step;
	char *mid;

	fl_rec_reader_init(&r, payload, len);
	l->records++;
	switch (type) {
	case REC_START:
	case REC_ENTRY:
		if (id == 0)
			goto bad;
		if (e != NULL)
			return fl_errf(errbuf, FL_EPARSE, "ledger: assignment %llu started twice",
			               (unsigned long long)id);
		e = add(l, id);
		if (!decode_start(&r, e))
			goto bad;
		if (type == REC_START)
			return FL_OK;
		if (!decode_strv(&r, &e->applied, &e->n_applied) ||
		    !decode_strv(&r, &e->reverted, &e->n_reverted))
			goto bad;
		if (fl_rec_get_u8(&r) != 0 && !decode_finish(&r, e))
			goto bad;
		if (r.bad)
			return fl_errf(errbuf, FL_EPARSE, "ledger: bad entry %llu",
			               (unsigned long long)id);
		note_floor(l, e);
		return FL_OK;
	case REC_FLOOR: {
		char *tenant = fl_rec_get_str(&r);
		uint64_t seq = fl_rec_get_u64(&r);

		if (tenant == NULL || r.bad) {
			free(tenant);
			goto bad;
		}
		raise_floor(l, tenant, seq);
		free(tenant);
		return FL_OK;
	}
	case REC_STEP:
		if (e == NULL)
			return fl_errf(errbuf, FL_EPARSE,
			               "ledger: a step of assignment %llu, never started",
			               (unsigned long long)id);
		step = fl_rec_get_u8(&r);
		mid = fl_rec_get_str(&r);
		if (mid == NULL || (step != STEP_APPLIED && step != STEP_REVERTED)) {
			free(mid);
			goto bad;
		}
		if (step == STEP_APPLIED)
			strv_push(&e->applied, &e->n_applied, mid);
		else
			strv_push(&e->reverted, &e->n_reverted, mid);
		free(mid);
		note_floor(l, e);
		return FL_OK;
	case REC_FINISH:
		if (e == NULL)
			return fl_errf(errbuf, FL_EPARSE,
			               "ledger: assignment %llu finished, never started",
			               (unsigned long long)id);
		if (!decode_finish(&r, e))
			goto bad;
		note_floor(l, e);
		return FL_OK;
	default:
		return fl_errf(errbuf, FL_EPARSE, "ledger: unknown record type %u", type);
	}
bad:
	return fl_errf(errbuf, FL_EPARSE, "ledger: malformed record (type %u) for assignment %llu",
	               type, (unsigned long long)id);
}

static bool prunable(const struct fl_ledger_entry *e, int64_t now_ms)
{
	return now_ms > 0 && e->finished && e->expires_at_ms > 0 &&
	       e->expires_at_ms < now_ms - PRUNE_AFTER_MS;
}

/* Rewrite the file: every tenant's floor, then one ENTRY per assignment kept
 * (those whose order expired long before now_ms are dropped; now_ms <= 0:
 * none). l->mu held. */
static enum fl_err compact_locked(struct fl_ledger *l, int64_t now_ms, char *errbuf)
{
	struct fl_buf b = FL_BUF_INIT;
	enum fl_err rv;
	size_t i, kept = 0, floors = 0;

	if ((rv = fl_recfile_rewrite_begin(l->file, errbuf)) != FL_OK)
		return rv;
	for (i = 0; rv == FL_OK && i < l->floor_slots; i++) {
		if (l->floors[i].tenant == NULL)
			continue;
		fl_buf_reset(&b);
		fl_rec_put_str(&b, l->floors[i].tenant);
		fl_rec_put_u64(&b, l->floors[i].seq);
		rv = fl_recfile_rewrite_add(l->file, REC_FLOOR, 0, b.data, b.len, errbuf);
		floors++;
	}
	for (i = 0; rv == FL_OK && i < l->n; i++) {
		const struct fl_ledger_entry *e = &l->items[i];

		if (prunable(e, now_ms))
			continue;
		fl_buf_reset(&b);
		encode_start(&b, e);
		encode_strv(&b, e->applied, e->n_applied);
		encode_strv(&b, e->reverted, e->n_reverted);
		fl_rec_put_u8(&b, e->finished);
		if (e->finished)
			encode_finish(&b, e);
		rv = fl_recfile_rewrite_add(l->file, REC_ENTRY, e->assignment_id, b.data, b.len,
		                            errbuf);
	}
	fl_buf_fini(&b);
	if (rv != FL_OK) {
		fl_recfile_rewrite_abort(l->file);
		return rv;
	}
	if ((rv = fl_recfile_rewrite_commit(l->file, errbuf)) != FL_OK)
		return rv;
	/* the file holds what memory should: drop the pruned entries there too */
	for (i = 0; i < l->n; i++) {
		if (prunable(&l->items[i], now_ms))
			fl_ledger_entry_fini(&l->items[i]);
		else
			l->items[kept++] = l->items[i];
	}
	if (kept != l->n) {
		fl_log_info("ledger",
		            "dropped %zu assignments whose orders expired over %lld days ago",
		            l->n - kept, (long long)(PRUNE_AFTER_MS / 86400000));
		l->n = kept;
		free(l->slots);
		l->slots = NULL;
		l->nslots = 0;
		rehash(l);
	}
	l->records = l->base = floors + l->n;
	return FL_OK;
}

/* Compact (fold the START, STEPs and FINISH of each assignment into one
 * record, drop what expired) once the file holds twice the records it held
 * after the last compaction: amortized, each record is rewritten a bounded
 * number of times. l->mu held. */
static enum fl_err maybe_compact(struct fl_ledger *l, char *errbuf)
{
	if (l->records <= COMPACT_MIN_RECS || l->records <= 2 * l->base)
		return FL_OK;
	return compact_locked(l, fl_wall_ms(), errbuf);
}

enum fl_err fl_ledger_open(const char *path, struct fl_ledger **out, char *errbuf)
{
	struct fl_ledger *l = fl_calloc(1, sizeof(*l));
	enum fl_err rv;

	*out = NULL;
	pthread_mutex_init(&l->mu, NULL);
	rehash(l);
	/* STEPs are synced in groups (fl_ledger_step): several may be torn at
	 * the tail after a crash, all of them after every synced record */
	if ((rv = fl_recfile_open(path, "ledger", magic, UINT32_C(1) << REC_STEP, load, l, &l->file,
	                          errbuf)) != FL_OK) {
		fl_ledger_close(l);
		return rv;
	}
	/* folded at open when it is mostly small records; else from now on */
	l->base = l->records > 2 * (l->n + l->n_floors) ? 0 : l->records;
	if ((rv = maybe_compact(l, errbuf)) != FL_OK) {
		fl_ledger_close(l);
		return rv;
	}
	*out = l;
	return FL_OK;
}

void fl_ledger_close(struct fl_ledger *l)
{
	size_t i;

	if (l == NULL)
		return;
	fl_recfile_close(l->file);
	for (i = 0; i < l->n; i++)
		fl_ledger_entry_fini(&l->items[i]);
	for (i = 0; i < l->floor_slots; i++)
		free(l->floors[i].tenant);
	free(l->floors);
	free(l->items);
	free(l->slots);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

bool fl_ledger_find(struct fl_ledger *l, uint64_t assignment_id, struct fl_ledger_entry *copy)
{
	struct fl_ledger_entry *e;

	pthread_mutex_lock(&l->mu);
	e = lookup(l, assignment_id);
	if (e != NULL && copy != NULL)
		entry_copy(copy, e);
	pthread_mutex_unlock(&l->mu);
	return e != NULL;
}

enum fl_err fl_ledger_start(struct fl_ledger *l, const struct fl_ledger_start *s, char *errbuf)
{
	struct fl_ledger_entry tmp = {0}, *e;
	struct fl_buf b = FL_BUF_INIT;
	uint64_t floor;
	enum fl_err rv;

	pthread_mutex_lock(&l->mu);
	if (lookup(l, s->assignment_id) != NULL) {
		rv = fl_errf(errbuf, FL_ESTATE, "assignment %llu was run before",
		             (unsigned long long)s->assignment_id);
		goto out;
	}
	/* the floor again, under the lock that moves it: what was checked
	 * before the work waited for its tenant may be stale by now */
	if ((floor = floor_locked(l, s->tenant_id)) > s->release_sequence) {
		rv = fl_errf(errbuf, FL_EAUTH,
		             "release sequence %llu is older than sequence %llu, which this agent "
		             "applied to tenant '%s'",
		             (unsigned long long)s->release_sequence, (unsigned long long)floor,
		             s->tenant_id);
		goto out;
	}
	tmp.assignment_id = s->assignment_id;
	memcpy(tmp.order_hash, s->order_hash, FL_LEDGER_HASH_LEN);
	memcpy(tmp.release_hash, s->release_hash, FL_LEDGER_HASH_LEN);
	tmp.release_sequence = s->release_sequence;
	tmp.tenant_id = (char *)s->tenant_id;
	tmp.rollout_id = (char *)(s->rollout_id ? s->rollout_id : "");
	tmp.kind = s->kind;
	tmp.target = (char *)(s->target ? s->target : "");
	tmp.started_at_ms = s->started_at_ms;
	tmp.expires_at_ms = s->expires_at_ms;
	encode_start(&b, &tmp);
	if ((rv = fl_recfile_append(l->file, REC_START, s->assignment_id, b.data, b.len, true,
	                            errbuf)) != FL_OK)
		goto out;
	l->records++;
	e = add(l, s->assignment_id);
	entry_copy(e, &tmp);
out:
	pthread_mutex_unlock(&l->mu);
	fl_buf_fini(&b);
	return rv;
}

enum fl_err fl_ledger_step(struct fl_ledger *l, uint64_t assignment_id, bool reverted,
                           const char *migration_id, char *errbuf)
{
	struct fl_buf b = FL_BUF_INIT;
	struct fl_recfile_ticket ticket = {0};
	struct fl_ledger_entry *e;
	enum fl_err rv;

	pthread_mutex_lock(&l->mu);
	e = lookup(l, assignment_id);
	if (e == NULL || e->finished) {
		rv = fl_errf(errbuf, FL_ESTATE, "assignment %llu is not running",
		             (unsigned long long)assignment_id);
		goto out;
	}
	fl_rec_put_u8(&b, reverted ? STEP_REVERTED : STEP_APPLIED);
	fl_rec_put_str(&b, migration_id);
	/* Synced outside the lock, in groups (fl_recfile_sync_wait): every
	 * worker records a step per migration, and one fdatasync after another
	 * under the lock was most of the agent's cost per tenant (tests/bench).
	 * The step is true once the migration committed, synced or not. */
	if ((rv = fl_recfile_append(l->file, REC_STEP, assignment_id, b.data, b.len, false,
	                            errbuf)) != FL_OK)
		goto out;
	l->records++;
	if (reverted)
		strv_push(&e->reverted, &e->n_reverted, migration_id);
	else
		strv_push(&e->applied, &e->n_applied, migration_id);
	note_floor(l, e);
	ticket = fl_recfile_sync_ticket(l->file);
out:
	pthread_mutex_unlock(&l->mu);
	fl_buf_fini(&b);
	if (rv == FL_OK)
		rv = fl_recfile_sync_wait(l->file, ticket, errbuf);
	return rv;
}

enum fl_err fl_ledger_finish(struct fl_ledger *l, uint64_t assignment_id, int outcome,
                             int64_t finished_at_ms, uint64_t journal_id, const void *report,
                             size_t report_len, char *errbuf)
{
	struct fl_ledger_entry tmp = {0}, *e;
	struct fl_buf b = FL_BUF_INIT;
	enum fl_err rv;

	pthread_mutex_lock(&l->mu);
	e = lookup(l, assignment_id);
	if (e == NULL || e->finished) {
		rv = fl_errf(errbuf, FL_ESTATE, "assignment %llu is not running",
		             (unsigned long long)assignment_id);
		goto out;
	}
	tmp.outcome = outcome;
	tmp.finished_at_ms = finished_at_ms;
	tmp.journal_id = journal_id;
	tmp.report = (uint8_t *)report;
	tmp.report_len = report_len;
	encode_finish(&b, &tmp);
	if ((rv = fl_recfile_append(l->file, REC_FINISH, assignment_id, b.data, b.len, true,
	                            errbuf)) != FL_OK)
		goto out;
	l->records++;
	e->outcome = outcome;
	e->finished_at_ms = finished_at_ms;
	e->journal_id = journal_id;
	e->report = fl_malloc(report_len ? report_len : 1);
	if (report_len)
		memcpy(e->report, report, report_len);
	e->report_len = report_len;
	e->finished = true;
	note_floor(l, e);
	{
		char cerr[FL_ERRBUF_SIZE] = "";

		/* the finish is made; a compaction that fails leaves the file as it was */
		if (maybe_compact(l, cerr) != FL_OK)
			fl_log_warn("ledger", "cannot compact: %s", cerr);
	}
out:
	pthread_mutex_unlock(&l->mu);
	fl_buf_fini(&b);
	return rv;
}

uint64_t fl_ledger_tenant_sequence(struct fl_ledger *l, const char *tenant_id)
{
	uint64_t seq;

	pthread_mutex_lock(&l->mu);
	seq = floor_locked(l, tenant_id);
	pthread_mutex_unlock(&l->mu);
	return seq;
}

static void strv_remove(char **v, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(v[i], s) == 0) {
			free(v[i]);
			memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(char *));
			(*n)--;
			return;
		}
}

void fl_ledger_applied_under(struct fl_ledger *l, const char *tenant_id,
                             const uint8_t order_hash[FL_LEDGER_HASH_LEN], char ***ids, size_t *n)
{
	size_t i, j;

	*ids = NULL;
	*n = 0;
	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->n; i++) {
		const struct fl_ledger_entry *e = &l->items[i];

		if (strcmp(e->tenant_id, tenant_id) != 0)
			continue;
		/* a migration reverted by any assignment is no longer applied; one
		 * applied again under this order is again */
		for (j = 0; j < e->n_reverted; j++)
			strv_remove(*ids, n, e->reverted[j]);
		if (memcmp(e->order_hash, order_hash, FL_LEDGER_HASH_LEN) != 0)
			continue;
		for (j = 0; j < e->n_applied; j++) {
			strv_remove(*ids, n, e->applied[j]);
			strv_push(ids, n, e->applied[j]);
		}
	}
	pthread_mutex_unlock(&l->mu);
}

void fl_ledger_unfinished(struct fl_ledger *l, uint64_t **ids, size_t *n)
{
	size_t i;

	*ids = NULL;
	*n = 0;
	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->n; i++)
		if (!l->items[i].finished) {
			*ids = fl_realloc(*ids, (*n + 1) * sizeof(uint64_t));
			(*ids)[(*n)++] = l->items[i].assignment_id;
		}
	pthread_mutex_unlock(&l->mu);
}

void fl_ledger_reports_after(struct fl_ledger *l, uint64_t journal_id, uint64_t **ids, size_t *n)
{
	size_t i;

	*ids = NULL;
	*n = 0;
	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->n; i++)
		if (l->items[i].finished && l->items[i].journal_id > journal_id &&
		    l->items[i].report != NULL) {
			*ids = fl_realloc(*ids, (*n + 1) * sizeof(uint64_t));
			(*ids)[(*n)++] = l->items[i].assignment_id;
		}
	pthread_mutex_unlock(&l->mu);
}

size_t fl_ledger_count(struct fl_ledger *l)
{
	size_t n;

	pthread_mutex_lock(&l->mu);
	n = l->n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

enum fl_err fl_ledger_compact(struct fl_ledger *l, int64_t now_ms, char *errbuf)
{
	enum fl_err rv;

	pthread_mutex_lock(&l->mu);
	rv = compact_locked(l, now_ms, errbuf);
	pthread_mutex_unlock(&l->mu);
	return rv;
}
