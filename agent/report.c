/* Reports and Hello tenants from tenant states (see report.h). */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "mem.h"
#include "plan.h"
#include "utf8.h"
#include "wire.h"

const char *fl_report_outcome_name(int outcome)
{
	static const char *const names[] = {
	    "unspecified",   "applied", "failed",   "rolled back", "verify failed",
	    "health failed", "skipped", "canceled", "refused",     "inconclusive",
	    "backup failed", "busy",    "healthy"};

	if (outcome < 0 || (size_t)outcome >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[outcome];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* PostgreSQL's ISO timestamptz text ("2025-01-01 12:00:00.123456+00",
 * "+05:30" offsets) in ms since the epoch; 0 when it is not that. */
static int64_t parse_ts(const char *s)
{
	int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0;
	int64_t ms = 0, scale = 100;
	const char *p;
	char sign;

	if (s == NULL ||
	    sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return 0;
	p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			ms += (*p - '0') * scale;
	sign = *p;
	if (sign == '+' || sign == '-') {
		if (sscanf(p + 1, "%2d", &oh) != 1)
			return 0;
		if (p[3] == ':')
			(void)sscanf(p + 4, "%2d", &om);
		if (sign == '-') {
			oh = -oh;
			om = -om;
		}
	}
	return ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
	        (int64_t)(oh * 3600 + om * 60)) *
	           1000 +
	       ms;
}

static void item_fini(struct fl_history_item *it)
{
	free(it->id);
	free(it->checksum);
	free(it->logs);
}

void fl_tenant_state_fini(struct fl_tenant_state *s)
{
	size_t i;

	for (i = 0; i < s->n_applied; i++)
		item_fini(&s->applied[i]);
	for (i = 0; i < s->n_failed; i++)
		item_fini(&s->failed[i]);
	free(s->applied);
	free(s->failed);
	free(s->error);
	memset(s, 0, sizeof(*s));
}

static void item_copy(struct fl_history_item *d, const struct fl_history_item *s)
{
	*d = *s;
	d->id = fl_strdup(s->id);
	d->checksum = fl_strdup(s->checksum);
	d->logs = s->logs ? fl_strdup(s->logs) : NULL;
}

void fl_tenant_state_copy(struct fl_tenant_state *dst, const struct fl_tenant_state *src)
{
	size_t i;

	*dst = *src;
	dst->applied = src->n_applied ? fl_calloc(src->n_applied, sizeof(*dst->applied)) : NULL;
	dst->failed = src->n_failed ? fl_calloc(src->n_failed, sizeof(*dst->failed)) : NULL;
	for (i = 0; i < src->n_applied; i++)
		item_copy(&dst->applied[i], &src->applied[i]);
	for (i = 0; i < src->n_failed; i++)
		item_copy(&dst->failed[i], &src->failed[i]);
	dst->error = src->error ? fl_strdup(src->error) : NULL;
}

static void add_row(struct fl_history_item **v, size_t *n, const struct fl_history_row *r,
                    bool failed)
{
	struct fl_history_item *it;

	*v = fl_realloc(*v, (*n + 1) * sizeof(**v));
	it = &(*v)[(*n)++];
	memset(it, 0, sizeof(*it));
	it->id = fl_strdup(r->migration_name);
	it->checksum = fl_strdup(r->checksum);
	it->started_at_ms = parse_ts(r->started_at);
	it->finished_at_ms = failed ? 0 : parse_ts(r->finished_at);
	it->steps = r->applied_steps_count > 0 ? (uint32_t)r->applied_steps_count : 0;
	if (failed && r->logs != NULL)
		it->logs = fl_strndup(r->logs, strnlen(r->logs, FL_REPORT_LOGS_MAX));
}

/* The plan of an empty migration set puts every applied row among the
 * "missing" and every failed one among the foreign failures, by Prisma's
 * rules, in history order. */
void fl_report_state_from_session(struct fl_session *s, struct fl_tenant_state *out)
{
	static const struct fl_migration_set empty = {"(none)", NULL, NULL, 0};
	const struct fl_history *h = fl_session_history(s);
	struct fl_plan plan;
	char err[FL_ERRBUF_SIZE] = "";
	size_t i;

	memset(out, 0, sizeof(*out));
	out->read_at_ms = fl_now_ms();
	fl_plan_build(&empty, h, &plan);
	for (i = 0; i < plan.n_missing; i++)
		add_row(&out->applied, &out->n_applied, plan.missing[i], false);
	for (i = 0; i < plan.n_foreign_failed; i++)
		add_row(&out->failed, &out->n_failed, plan.foreign_failed[i], true);
	fl_plan_fini(&plan);
	if (fl_session_fingerprint(s, NULL, out->fingerprint, err) != FL_OK)
		out->fingerprint[0] = '\0';
}

void fl_report_read_tenant(const char *url, const struct fl_engine_opts *opts,
                           const struct fl_logger *log, struct fl_tenant_state *s)
{
	static const struct fl_migration_set empty = {"(none)", NULL, NULL, 0};
	struct fl_session *sess = fl_session_new(opts, log);
	char err[FL_ERRBUF_SIZE] = "";

	memset(s, 0, sizeof(*s));
	if (fl_session_open(sess, url, &empty, false, err) != FL_OK) {
		s->error = fl_strdup(err[0] ? err : "cannot read the history");
		s->read_at_ms = fl_now_ms();
	} else {
		fl_report_state_from_session(sess, s);
	}
	fl_session_close(sess);
	fl_session_free(sess);
}

void fl_report_init(struct fl_report *r)
{
	memset(r, 0, sizeof(*r));
}

void fl_report_fini(struct fl_report *r)
{
	size_t i;

	free(r->agent_id);
	free(r->tenant_id);
	free(r->rollout_id);
	for (i = 0; i < r->n_migrations; i++) {
		free(r->migrations[i].id);
		free(r->migrations[i].message);
	}
	free(r->migrations);
	free(r->health);
	fl_tenant_state_fini(&r->state);
	memset(r, 0, sizeof(*r));
}

struct fl_migration_report *fl_report_add_migration(struct fl_report *r, const char *id)
{
	struct fl_migration_report *m;

	r->migrations = fl_realloc(r->migrations, (r->n_migrations + 1) * sizeof(*r->migrations));
	m = &r->migrations[r->n_migrations++];
	memset(m, 0, sizeof(*m));
	m->id = fl_strdup(id);
	return m;
}

/* ---- building protobuf messages ---- */

static void *arena_alloc(struct fl_report_arena *a, size_t size)
{
	void *p = fl_calloc(1, size ? size : 1);

	a->ptrs = fl_realloc(a->ptrs, (a->n + 1) * sizeof(void *));
	a->ptrs[a->n++] = p;
	return p;
}

/* Text from a database may be in another encoding than UTF-8, which the
 * wire refuses: such bytes become '?'. */
static void clean_utf8(char *d, size_t n)
{
	if (fl_utf8_valid(d, n, NULL))
		return;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)d[i] >= 0x80)
			d[i] = '?';
}

static char *arena_str(struct fl_report_arena *a, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	char *d = arena_alloc(a, n + 1);

	if (n)
		memcpy(d, s, n);
	clean_utf8(d, n);
	return d;
}

void fl_report_arena_free(struct fl_report_arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->ptrs[i]);
	free(a->ptrs);
	a->ptrs = NULL;
	a->n = 0;
}

/* The longest prefix of s, at most max bytes, that ends on a UTF-8 character. */
static char *arena_cut(struct fl_report_arena *a, const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	char *d;

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	d = arena_alloc(a, n + 1);
	if (n)
		memcpy(d, s, n);
	clean_utf8(d, n);
	return d;
}

static Flotilla__V1__FailedMigration **failed_pb(struct fl_report_arena *a,
                                                 const struct fl_tenant_state *s)
{
	Flotilla__V1__FailedMigration **v = arena_alloc(a, s->n_failed * sizeof(*v));

	for (size_t i = 0; i < s->n_failed; i++) {
		Flotilla__V1__FailedMigration *f = arena_alloc(a, sizeof(*f));

		flotilla__v1__failed_migration__init(f);
		f->id = arena_str(a, s->failed[i].id);
		f->checksum = arena_str(a, s->failed[i].checksum);
		f->started_at_ms = s->failed[i].started_at_ms;
		f->applied_steps_count = s->failed[i].steps;
		f->logs = arena_cut(a, s->failed[i].logs, FL_REPORT_LOGS_MAX);
		v[i] = f;
	}
	return v;
}

static Flotilla__V1__Label **labels_pb(struct fl_report_arena *a, const struct fl_labels *l)
{
	Flotilla__V1__Label **v = arena_alloc(a, l->n * sizeof(*v));

	for (size_t i = 0; i < l->n; i++) {
		Flotilla__V1__Label *x = arena_alloc(a, sizeof(*x));

		flotilla__v1__label__init(x);
		x->key = arena_str(a, l->items[i].key);
		x->value = arena_str(a, l->items[i].value);
		v[i] = x;
	}
	return v;
}

void fl_report_hello_tenants(Flotilla__V1__Hello *hello, const struct fl_tenants *t, size_t from,
                             size_t to, const struct fl_tenant_state *const *states,
                             const uint64_t *seqs, struct fl_report_arena *a)
{
	size_t i, j, n = to - from;

	hello->tenants = arena_alloc(a, n * sizeof(*hello->tenants));
	hello->n_tenants = n;
	for (i = 0; i < n; i++) {
		const struct fl_tenant *tt = &t->items[from + i];
		const struct fl_tenant_state *s = states[from + i];
		Flotilla__V1__Tenant *x = arena_alloc(a, sizeof(*x));

		flotilla__v1__tenant__init(x);
		x->id = arena_str(a, tt->id);
		x->database = arena_str(a, tt->database);
		x->schema = arena_str(a, tt->schema ? tt->schema : "");
		x->labels = labels_pb(a, &tt->labels);
		x->n_labels = tt->labels.n;
		x->release_sequence = seqs ? seqs[from + i] : 0;
		x->fingerprint = arena_str(a, "");
		x->error = arena_str(a, "");
		if (s == NULL) {
			x->error = arena_str(a, "not read yet");
		} else if (s->error != NULL) {
			x->error = arena_cut(a, s->error, 512);
		} else {
			x->applied = arena_alloc(a, s->n_applied * sizeof(*x->applied));
			x->n_applied = s->n_applied;
			for (j = 0; j < s->n_applied; j++) {
				Flotilla__V1__AppliedMigration *m = arena_alloc(a, sizeof(*m));

				flotilla__v1__applied_migration__init(m);
				m->id = arena_str(a, s->applied[j].id);
				m->checksum = arena_str(a, s->applied[j].checksum);
				m->finished_at_ms = s->applied[j].finished_at_ms;
				m->started_at_ms = s->applied[j].started_at_ms;
				m->applied_steps_count = s->applied[j].steps;
				x->applied[j] = m;
			}
			x->failed = failed_pb(a, s);
			x->n_failed = s->n_failed;
			x->fingerprint = arena_str(a, s->fingerprint);
		}
		hello->tenants[i] = x;
	}
}

size_t fl_report_hello_part(const struct fl_tenants *t, size_t from,
                            const struct fl_tenant_state *const *states, const uint64_t *seqs,
                            size_t max_bytes)
{
	size_t to = from, bytes = 0;

	while (to < t->n) {
		Flotilla__V1__Hello one = FLOTILLA__V1__HELLO__INIT;
		struct fl_report_arena tmp = {NULL, 0};
		size_t sz;

		fl_report_hello_tenants(&one, t, to, to + 1, states, seqs, &tmp);
		/* the tenant and its field tag and length */
		sz = protobuf_c_message_get_packed_size(&one.tenants[0]->base) + 8;
		fl_report_arena_free(&tmp);
		if (to > from && bytes + sz > max_bytes)
			break;
		bytes += sz;
		to++;
	}
	return to;
}

enum fl_err fl_report_pack(const struct fl_report *r, uint64_t journal_id, struct fl_buf *out,
                           char *errbuf)
{
	Flotilla__V1__Message msg = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Report rep = FLOTILLA__V1__REPORT__INIT;
	struct fl_report_arena a = {NULL, 0};
	size_t i, cut = 512;
	enum fl_err rv;

	msg.body_case = FLOTILLA__V1__MESSAGE__BODY_REPORT;
	msg.report = &rep;
	rep.agent_id = arena_str(&a, r->agent_id);
	rep.tenant_id = arena_str(&a, r->tenant_id);
	rep.rollout_id = arena_str(&a, r->rollout_id);
	rep.assignment_id = r->assignment_id;
	rep.kind = (Flotilla__V1__WorkKind)r->kind;
	rep.outcome = (Flotilla__V1__Outcome)r->outcome;
	rep.message = arena_cut(&a, r->message, FL_REPORT_MESSAGE_MAX);
	rep.started_at_ms = r->started_at_ms;
	rep.finished_at_ms = r->finished_at_ms;
	rep.journal_id = journal_id;
	rep.fingerprint = arena_str(&a, "");
	rep.head_migration_id = arena_str(&a, "");
again:
	rep.migrations = arena_alloc(&a, r->n_migrations * sizeof(*rep.migrations));
	rep.n_migrations = r->n_migrations;
	for (i = 0; i < r->n_migrations; i++) {
		const struct fl_migration_report *m = &r->migrations[i];
		Flotilla__V1__MigrationResult *x = arena_alloc(&a, sizeof(*x));

		flotilla__v1__migration_result__init(x);
		x->migration_id = arena_str(&a, m->id);
		x->outcome = (Flotilla__V1__Outcome)m->outcome;
		x->started_at_ms = m->started_at_ms;
		x->finished_at_ms = m->finished_at_ms;
		x->attempts = m->attempts;
		x->sqlstate = arena_str(&a, m->sqlstate);
		x->message = arena_cut(&a, m->message, cut);
		x->statement_index = m->statement_index;
		x->applied_steps_count = m->applied_steps;
		rep.migrations[i] = x;
	}
	rep.health = arena_alloc(&a, r->n_health * sizeof(*rep.health));
	rep.n_health = r->n_health;
	for (i = 0; i < r->n_health; i++) {
		const struct fl_health_result *h = &r->health[i];
		Flotilla__V1__HealthResult *x = arena_alloc(&a, sizeof(*x));

		flotilla__v1__health_result__init(x);
		x->name = arena_str(&a, h->name);
		x->ok = h->ok;
		x->message = arena_cut(&a, h->message, cut);
		x->duration_ms = h->duration_ms;
		x->checked_at_ms = h->checked_at_ms;
		x->inconclusive = h->inconclusive;
		rep.health[i] = x;
	}
	if (r->have_state && r->state.error == NULL) {
		rep.fingerprint = arena_str(&a, r->state.fingerprint);
		if (r->state.n_applied > 0)
			rep.head_migration_id =
			    arena_str(&a, r->state.applied[r->state.n_applied - 1].id);
		rep.applied_count = (uint32_t)r->state.n_applied;
		rep.failed = failed_pb(&a, &r->state);
		rep.n_failed = r->state.n_failed;
	}
	fl_buf_reset(out);
	rv = fl_wire_pack(&msg, out, FL_WIRE_MAX_REPORT, errbuf);
	if (rv == FL_EINVAL && cut > 64 && out->len == 0) {
		/* too large: cut the per-item messages harder and try again */
		cut = 64;
		goto again;
	}
	fl_report_arena_free(&a);
	return rv;
}
