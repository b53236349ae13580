/*
 * proto/wire.c: every message of flotilla.proto round-trips with every field
 * set, and unpacking refuses what the rules at the top of flotilla.proto
 * forbid without crashing or leaking on any input (run it under ASan).
 *
 * Most round trips are driven by the generated descriptors: fill() gives
 * every field of a message a value other than its default (two entries in
 * every repeated field, each member of every oneof in turn) and same() compares
 * two messages field by field, so a field added to flotilla.proto is covered
 * without touching this file. Hand-written cases then pin the field names
 * and numbers other modules are written against.
 */
#include <check.h>
#include <sys/resource.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "wire.h"

#define MAX_TYPES 128
/* Variants per body: enough for each member of the largest oneof (AdminRequest). */
#define VARIANTS 19

/* ---- building messages from descriptors ---- */

struct filler {
	unsigned seed;    /* bumped for every value, so values differ */
	unsigned variant; /* each oneof takes member variant % members */
	const ProtobufCMessageDescriptor *seen[MAX_TYPES];
	size_t n_seen;
};

static void note_seen(struct filler *fl, const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < fl->n_seen; i++)
		if (fl->seen[i] == d)
			return;
	ck_assert_uint_lt(fl->n_seen, MAX_TYPES);
	fl->seen[fl->n_seen++] = d;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The naming rule of flotilla.proto, written out independently of wire.c. */
static size_t fixed_len(const char *name)
{
	if (ends_with(name, "public_key"))
		return 32;
	if (ends_with(name, "_hash"))
		return 32;
	if (strcmp(name, "signature") == 0 || ends_with(name, "_signature"))
		return 64;
	return 0;
}

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 4;
	}
}

static ProtobufCMessage *fill(struct filler *fl, const ProtobufCMessageDescriptor *d);

static void fill_value(struct filler *fl, const ProtobufCFieldDescriptor *f, void *p)
{
	unsigned k = ++fl->seed;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *)p = -(int32_t)(k * 7 + 1);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)p = 300000u + k;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		*(int64_t *)p = k % 2 ? -((int64_t)1 << 41) - k : ((int64_t)1 << 41) + k;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *)p = ((uint64_t)1 << 60) + k;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *)p = (float)k + 0.5f;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *)p = (double)k + 0.25;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)p = 1;
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;

		/* Every enum starts with *_UNSPECIFIED = 0; take another value. */
		ck_assert_int_eq(e->values[0].value, 0);
		ck_assert_uint_gt(e->n_values, 1);
		*(int *)p = e->values[1 + k % (e->n_values - 1)].value;
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		char buf[128];

		snprintf(buf, sizeof buf, "%s-%u-\xc3\xa9\xe2\x9c\x93", f->name, k);
		*(char **)p = fl_strdup(buf);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = p;
		size_t n = fixed_len(f->name) ? fixed_len(f->name) : 3 + k % 5;

		b->data = fl_malloc(n);
		b->len = n;
		for (size_t i = 0; i < n; i++)
			b->data[i] = (uint8_t)(k + i * 37); /* NUL bytes included */
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		*(ProtobufCMessage **)p = fill(fl, f->descriptor);
		break;
	}
}

/* A message of type d with every field set; free with free_built(). */
static ProtobufCMessage *fill(struct filler *fl, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = fl_calloc(1, d->sizeof_message);
	char *base = (char *)m;

	d->message_init(m);
	note_seen(fl, d);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = 2, size = elem_size(f->type);
			char *arr = fl_calloc(n, size);

			for (size_t j = 0; j < n; j++)
				fill_value(fl, f, arr + j * size);
			*(size_t *)(base + f->quantifier_offset) = n;
			*(void **)(base + f->offset) = arr;
		} else {
			fill_value(fl, f, base + f->offset);
		}
	}
	/* Each oneof: the members sharing a quantifier_offset; pick one. */
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i], *members[64];
		size_t n = 0;
		bool first = true;

		if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue;
		for (unsigned j = 0; j < i; j++)
			if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			    d->fields[j].quantifier_offset == f->quantifier_offset)
				first = false;
		if (!first)
			continue;
		for (unsigned j = i; j < d->n_fields && n < 64; j++)
			if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			    d->fields[j].quantifier_offset == f->quantifier_offset)
				members[n++] = &d->fields[j];
		f = members[fl->variant % n];
		*(uint32_t *)(base + f->quantifier_offset) = f->id;
		fill_value(fl, f, base + f->offset);
	}
	return m;
}

static void free_built(ProtobufCMessage *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL); /* all of it from malloc */
}

/* A Message whose body is field `body` of Message, filled. */
static Flotilla__V1__Message *build_body(struct filler *fl, const ProtobufCFieldDescriptor *body)
{
	Flotilla__V1__Message *m = fl_malloc(sizeof *m);

	flotilla__v1__message__init(m);
	note_seen(fl, &flotilla__v1__message__descriptor);
	*(uint32_t *)((char *)m + body->quantifier_offset) = body->id;
	*(ProtobufCMessage **)((char *)m + body->offset) = fill(fl, body->descriptor);
	return m;
}

/* ---- comparing field by field ---- */

static void same(const ProtobufCMessage *a, const ProtobufCMessage *b, const char *path);

static void same_value(const ProtobufCFieldDescriptor *f, const void *a, const void *b,
                       const char *path)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		ck_assert_msg(strcmp(*(char *const *)a, *(char *const *)b) == 0, "%s: '%s' != '%s'",
		              path, *(char *const *)a, *(char *const *)b);
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *x = a, *y = b;

		ck_assert_msg(x->len == y->len, "%s: %zu bytes != %zu", path, x->len, y->len);
		ck_assert_msg(x->len == 0 || memcmp(x->data, y->data, x->len) == 0, "%s differs",
		              path);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *x = *(ProtobufCMessage *const *)a;
		const ProtobufCMessage *y = *(ProtobufCMessage *const *)b;

		ck_assert_msg((x == NULL) == (y == NULL), "%s: present on one side only", path);
		if (x)
			same(x, y, path);
		break;
	}
	default:
		ck_assert_msg(memcmp(a, b, elem_size(f->type)) == 0, "%s differs", path);
		break;
	}
}

static void same(const ProtobufCMessage *a, const ProtobufCMessage *b, const char *path)
{
	const ProtobufCMessageDescriptor *d = a->descriptor;
	const char *x = (const char *)a, *y = (const char *)b;

	ck_assert_ptr_eq(a->descriptor, b->descriptor);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char sub[512];

		snprintf(sub, sizeof sub, "%s.%s", path, f->name);
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t ca = *(const uint32_t *)(x + f->quantifier_offset);
			uint32_t cb = *(const uint32_t *)(y + f->quantifier_offset);

			ck_assert_msg(ca == cb, "%s: oneof case %u != %u", sub, ca, cb);
			if (ca != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t na = *(const size_t *)(x + f->quantifier_offset);
			size_t nb = *(const size_t *)(y + f->quantifier_offset);
			const char *ea = *(char *const *)(x + f->offset);
			const char *eb = *(char *const *)(y + f->offset);
			size_t size = elem_size(f->type);

			ck_assert_msg(na == nb, "%s: %zu entries != %zu", sub, na, nb);
			for (size_t j = 0; j < na; j++) {
				char el[600];

				snprintf(el, sizeof el, "%s[%zu]", sub, j);
				same_value(f, ea + j * size, eb + j * size, el);
			}
		} else {
			same_value(f, x + f->offset, y + f->offset, sub);
		}
	}
}

/* ---- helpers ---- */

static void pack(const Flotilla__V1__Message *m, struct fl_buf *out)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	enum fl_err rv = fl_wire_pack(m, out, FL_WIRE_MAX_MESSAGE, errbuf);

	ck_assert_msg(rv == FL_OK, "pack %s: %s", fl_wire_body_name((int)m->body_case), errbuf);
}

static Flotilla__V1__Message *unpack_ok(const struct fl_buf *b)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	Flotilla__V1__Message *m = NULL;
	enum fl_err rv =
	    fl_wire_unpack((const uint8_t *)b->data, b->len, FL_WIRE_MAX_MESSAGE, &m, errbuf);

	ck_assert_msg(rv == FL_OK, "unpack: %s", errbuf);
	ck_assert_ptr_nonnull(m);
	return m;
}

/* Unpacking must fail with err, leave *out NULL and say `says` in errbuf. */
static void unpack_refused(const uint8_t *data, size_t len, enum fl_err err, const char *says)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	Flotilla__V1__Message *m = (Flotilla__V1__Message *)&m; /* not NULL */
	enum fl_err rv = fl_wire_unpack(data, len, FL_WIRE_MAX_MESSAGE, &m, errbuf);

	ck_assert_msg(rv == err, "expected %s, got %s (%s)", fl_strerror(err), fl_strerror(rv),
	              errbuf);
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(errbuf, says) != NULL, "'%s' does not say '%s'", errbuf, says);
}

/* Pack a message as protobuf-c does, without wire.c's checks: the bytes a
 * careless or hostile peer would send. */
static void raw_pack(const ProtobufCMessage *m, struct fl_buf *out)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *tmp = fl_malloc(n);

	ck_assert_uint_eq(protobuf_c_message_pack(m, tmp), n);
	fl_buf_reset(out);
	ck_assert_int_eq(fl_buf_append(out, tmp, n), FL_OK);
	free(tmp);
}

static void put_varint(struct fl_buf *b, uint64_t v)
{
	uint8_t c;

	do {
		c = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			c |= 0x80;
		ck_assert_int_eq(fl_buf_append(b, &c, 1), FL_OK);
	} while (v);
}

/* A length-delimited field: tag, length, bytes. */
static void put_field(struct fl_buf *b, uint32_t field, const void *data, size_t len)
{
	put_varint(b, (uint64_t)field << 3 | 2);
	put_varint(b, len);
	ck_assert_int_eq(fl_buf_append(b, data, len), FL_OK);
}

static uint8_t key_bytes[64], hash_bytes[64], sig_bytes[64]; /* oversized for bad lengths */

static ProtobufCBinaryData bin(uint8_t *data, size_t len)
{
	ProtobufCBinaryData b = {len, data};

	return b;
}

/* ---- round trips, driven by the descriptors ---- */

/* Round-trip every body with every oneof member, and check each packs the
 * same bytes twice and again after unpacking (canonical, deterministic). */
START_TEST(round_trip_every_body)
{
	const ProtobufCMessageDescriptor *d = &flotilla__v1__message__descriptor;
	struct filler fl = {0};
	struct fl_wire_stats st;
	size_t trips = 0;

	for (unsigned i = 0; i < d->n_fields; i++) {
		if (!(d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue; /* reply_to_seq */
		for (unsigned v = 0; v < VARIANTS; v++) {
			struct fl_buf a = FL_BUF_INIT, b = FL_BUF_INIT, c = FL_BUF_INIT;
			Flotilla__V1__Message *m, *back;

			fl.variant = v;
			m = build_body(&fl, &d->fields[i]);
			m->reply_to_seq = v;
			pack(m, &a);
			pack(m, &b);
			ck_assert_uint_eq(a.len, b.len);
			ck_assert(memcmp(a.data, b.data, a.len) == 0);
			back = unpack_ok(&a);
			/* The pre-scan predicts protobuf-c's allocations exactly. */
			fl_wire_last_stats(&st);
			ck_assert_msg(st.allocated == st.predicted,
			              "%s: allocated %zu, predicted %zu", d->fields[i].name,
			              st.allocated, st.predicted);
			ck_assert_uint_le(st.peak, st.budget);
			ck_assert_int_eq(back->body_case, d->fields[i].id);
			same(&m->base, &back->base, d->fields[i].name);
			pack(back, &c);
			ck_assert_uint_eq(a.len, c.len);
			ck_assert(memcmp(a.data, c.data, a.len) == 0);
			fl_wire_free(back);
			free_built(&m->base);
			fl_buf_fini(&a);
			fl_buf_fini(&b);
			fl_buf_fini(&c);
			trips++;
		}
	}
	ck_assert_uint_eq(trips, 11 * VARIANTS);
}
END_TEST

START_TEST(round_trip_release_files)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct filler fl = {0};
	Flotilla__V1__ReleaseBundle *bundle, *bundle2 = NULL;
	Flotilla__V1__SignedRelease *signed_release, *signed2 = NULL;
	struct fl_buf a = FL_BUF_INIT, b = FL_BUF_INIT;

	bundle =
	    (Flotilla__V1__ReleaseBundle *)fill(&fl, &flotilla__v1__release_bundle__descriptor);
	ck_assert_int_eq(fl_wire_pack_release_bundle(bundle, &a, FL_WIRE_MAX_RELEASE, errbuf),
	                 FL_OK);
	ck_assert_int_eq(fl_wire_unpack_release_bundle((uint8_t *)a.data, a.len,
	                                               FL_WIRE_MAX_RELEASE, &bundle2, errbuf),
	                 FL_OK);
	same(&bundle->base, &bundle2->base, "bundle");
	ck_assert_int_eq(fl_wire_pack_release_bundle(bundle2, &b, FL_WIRE_MAX_RELEASE, errbuf),
	                 FL_OK);
	ck_assert_uint_eq(a.len, b.len);
	ck_assert(memcmp(a.data, b.data, a.len) == 0);
	fl_buf_reset(&a);
	fl_buf_reset(&b);

	signed_release =
	    (Flotilla__V1__SignedRelease *)fill(&fl, &flotilla__v1__signed_release__descriptor);
	ck_assert_int_eq(
	    fl_wire_pack_signed_release(signed_release, &a, FL_WIRE_MAX_RELEASE, errbuf), FL_OK);
	ck_assert_int_eq(fl_wire_unpack_signed_release((uint8_t *)a.data, a.len,
	                                               FL_WIRE_MAX_RELEASE, &signed2, errbuf),
	                 FL_OK);
	same(&signed_release->base, &signed2->base, "signed");
	ck_assert_int_eq(fl_wire_pack_signed_release(signed2, &b, FL_WIRE_MAX_RELEASE, errbuf),
	                 FL_OK);
	ck_assert(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);

	fl_wire_free_release_bundle(bundle2);
	fl_wire_free_signed_release(signed2);
	fl_wire_free_release_bundle(NULL);
	fl_wire_free_signed_release(NULL);
	fl_wire_free(NULL);
	free_built(&bundle->base);
	free_built(&signed_release->base);
	fl_buf_fini(&a);
	fl_buf_fini(&b);
}
END_TEST

/* Every `message` in flotilla.proto was built, packed and compared above. */
START_TEST(every_message_type_covered)
{
	const ProtobufCMessageDescriptor *d = &flotilla__v1__message__descriptor;
	char path[4096], line[512];
	struct filler fl = {0};
	size_t n_messages = 0;
	const char *src = getenv("FL_SOURCE_DIR");
	FILE *f;

	ck_assert_msg(src != NULL, "FL_SOURCE_DIR is not set (run through ctest)");
	for (unsigned i = 0; i < d->n_fields; i++)
		for (unsigned v = 0;
		     v < VARIANTS && (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF); v++) {
			fl.variant = v;
			free_built(&build_body(&fl, &d->fields[i])->base);
		}
	free_built(fill(&fl, &flotilla__v1__signed_release__descriptor));
	free_built(fill(&fl, &flotilla__v1__release_bundle__descriptor));
	free_built(fill(&fl, &flotilla__v1__signed_order__descriptor));
	free_built(fill(&fl, &flotilla__v1__rollout_order__descriptor));
	free_built(fill(&fl, &flotilla__v1__rollback_order__descriptor));

	snprintf(path, sizeof path, "%s/proto/flotilla.proto", src);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open '%s'", path);
	while (fgets(line, sizeof line, f)) {
		char name[128];
		bool found = false;

		if (sscanf(line, "message %127[A-Za-z0-9_] {", name) != 1)
			continue;
		n_messages++;
		for (size_t i = 0; i < fl.n_seen; i++)
			if (strcmp(fl.seen[i]->short_name, name) == 0)
				found = true;
		ck_assert_msg(found, "message %s is never round-tripped", name);
	}
	fclose(f);
	ck_assert_uint_eq(n_messages, fl.n_seen);
	ck_assert_uint_gt(n_messages, 60);
}
END_TEST

/* ---- the names other modules are written against ---- */

START_TEST(hello_by_name)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *back;
	Flotilla__V1__Hello hello = FLOTILLA__V1__HELLO__INIT;
	Flotilla__V1__Tenant tenant = FLOTILLA__V1__TENANT__INIT, *tenants[] = {&tenant};
	Flotilla__V1__Label label = FLOTILLA__V1__LABEL__INIT, *labels[] = {&label};
	Flotilla__V1__AppliedMigration applied = FLOTILLA__V1__APPLIED_MIGRATION__INIT;
	Flotilla__V1__AppliedMigration *applieds[] = {&applied};
	Flotilla__V1__FailedMigration failed = FLOTILLA__V1__FAILED_MIGRATION__INIT;
	Flotilla__V1__FailedMigration *faileds[] = {&failed};
	struct fl_buf b = FL_BUF_INIT;
	const Flotilla__V1__Tenant *t;

	hello.agent_id = "db-eu-1";
	hello.agent_version = "0.1.0";
	hello.protocol_version = 1;
	hello.more_tenants = 1;
	hello.enrollment_token = "tok";
	label.key = "ring";
	label.value = "canary";
	applied.id = "20240101120000_init";
	applied.checksum = "ab";
	applied.started_at_ms = 1704110400000;
	applied.finished_at_ms = 1704110401000;
	applied.applied_steps_count = 1;
	failed.id = "20240201120000_users";
	failed.checksum = "cd";
	failed.started_at_ms = 5;
	failed.applied_steps_count = 2;
	failed.logs = "ERROR: relation \"users\" already exists";
	tenant.id = "acme";
	tenant.database = "tenant_acme";
	tenant.schema = "public";
	tenant.n_labels = 1;
	tenant.labels = labels;
	tenant.n_applied = 1;
	tenant.applied = applieds;
	tenant.n_failed = 1;
	tenant.failed = faileds;
	tenant.fingerprint = "00ff";
	tenant.error = "";
	hello.n_tenants = 1;
	hello.tenants = tenants;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
	m.hello = &hello;

	pack(&m, &b);
	back = unpack_ok(&b);
	ck_assert_int_eq(back->body_case, FLOTILLA__V1__MESSAGE__BODY_HELLO);
	ck_assert_str_eq(back->hello->agent_id, "db-eu-1");
	ck_assert_str_eq(back->hello->agent_version, "0.1.0");
	ck_assert_uint_eq(back->hello->protocol_version, 1);
	ck_assert(back->hello->more_tenants);
	ck_assert_str_eq(back->hello->enrollment_token, "tok");
	ck_assert_uint_eq(back->hello->n_tenants, 1);
	t = back->hello->tenants[0];
	ck_assert_str_eq(t->id, "acme");
	ck_assert_str_eq(t->database, "tenant_acme");
	ck_assert_str_eq(t->schema, "public");
	ck_assert_str_eq(t->labels[0]->key, "ring");
	ck_assert_str_eq(t->labels[0]->value, "canary");
	ck_assert_str_eq(t->applied[0]->id, "20240101120000_init");
	ck_assert_str_eq(t->applied[0]->checksum, "ab");
	ck_assert_int_eq(t->applied[0]->started_at_ms, 1704110400000);
	ck_assert_int_eq(t->applied[0]->finished_at_ms, 1704110401000);
	ck_assert_uint_eq(t->applied[0]->applied_steps_count, 1);
	ck_assert_str_eq(t->failed[0]->id, "20240201120000_users");
	ck_assert_str_eq(t->failed[0]->logs, "ERROR: relation \"users\" already exists");
	ck_assert_uint_eq(t->failed[0]->applied_steps_count, 2);
	ck_assert_str_eq(t->fingerprint, "00ff");
	ck_assert_str_eq(t->error, "");
	ck_assert_str_eq(fl_wire_body_name((int)back->body_case), "hello");
	fl_wire_free(back);
	fl_buf_fini(&b);
}
END_TEST

START_TEST(work_assignment_by_name)
{
	static const uint8_t order[] = {0x0a, 0x03, 'a', 'b', 'c'};
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *back;
	Flotilla__V1__PollReply reply = FLOTILLA__V1__POLL_REPLY__INIT;
	Flotilla__V1__WorkAssignment work = FLOTILLA__V1__WORK_ASSIGNMENT__INIT, *works[] = {&work};
	Flotilla__V1__Halt halt = FLOTILLA__V1__HALT__INIT, *halts[] = {&halt};
	struct fl_buf b = FL_BUF_INIT;
	const Flotilla__V1__WorkAssignment *w;

	work.assignment_id = 77;
	work.rollout_id = "r-42";
	work.wave = 2;
	work.tenant_id = "acme";
	work.release_hash = bin(hash_bytes, 32);
	work.target_migration_id = "20240301_x";
	work.kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_REVERT;
	work.signed_order.data = (uint8_t *)order;
	work.signed_order.len = sizeof(order);
	halt.rollout_id = "r-41";
	halt.reason = "failure budget of wave 'canary' exhausted";
	reply.n_assignments = 1;
	reply.assignments = works;
	reply.n_halts = 1;
	reply.halts = halts;
	reply.poll_again_ms = 1000;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY;
	m.poll_reply = &reply;

	pack(&m, &b);
	back = unpack_ok(&b);
	ck_assert_uint_eq(back->poll_reply->n_assignments, 1);
	w = back->poll_reply->assignments[0];
	ck_assert_uint_eq(w->assignment_id, 77);
	ck_assert_str_eq(w->rollout_id, "r-42");
	ck_assert_uint_eq(w->wave, 2);
	ck_assert_str_eq(w->tenant_id, "acme");
	ck_assert_uint_eq(w->release_hash.len, FL_WIRE_HASH_LEN);
	ck_assert(memcmp(w->release_hash.data, hash_bytes, 32) == 0);
	ck_assert_str_eq(w->target_migration_id, "20240301_x");
	ck_assert_int_eq(w->kind, FLOTILLA__V1__WORK_KIND__WORK_KIND_REVERT);
	ck_assert_uint_eq(w->signed_order.len, sizeof(order));
	ck_assert(memcmp(w->signed_order.data, order, sizeof(order)) == 0);
	ck_assert_uint_eq(w->signed_rollback_order.len, 0);
	ck_assert_uint_eq(back->poll_reply->n_halts, 1);
	ck_assert_str_eq(back->poll_reply->halts[0]->rollout_id, "r-41");
	ck_assert_uint_eq(back->poll_reply->poll_again_ms, 1000);
	ck_assert_ptr_null(back->poll_reply->redirect);
	fl_wire_free(back);
	fl_buf_fini(&b);
}
END_TEST

START_TEST(report_by_name)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *back;
	Flotilla__V1__Report r = FLOTILLA__V1__REPORT__INIT;
	Flotilla__V1__HealthResult h = FLOTILLA__V1__HEALTH_RESULT__INIT, *hs[] = {&h, &h};
	Flotilla__V1__MigrationResult mr = FLOTILLA__V1__MIGRATION_RESULT__INIT, *mrs[] = {&mr};
	struct fl_buf b = FL_BUF_INIT;
	const Flotilla__V1__Report *x;

	r.agent_id = "db-eu-1";
	r.tenant_id = "acme";
	r.rollout_id = "r-42";
	r.assignment_id = 77;
	r.kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
	r.outcome = FLOTILLA__V1__OUTCOME__OUTCOME_VERIFY_FAILED;
	r.message = "verify.sql of '20240301_x' returned false";
	r.started_at_ms = 10;
	r.finished_at_ms = 20;
	mr.migration_id = "20240301_x";
	mr.outcome = FLOTILLA__V1__OUTCOME__OUTCOME_VERIFY_FAILED;
	mr.started_at_ms = 11;
	mr.finished_at_ms = 19;
	mr.attempts = 3;
	mr.sqlstate = "55P03";
	mr.message = "lock timeout";
	mr.statement_index = 4;
	mr.applied_steps_count = 3;
	r.n_migrations = 1;
	r.migrations = mrs;
	h.name = "users-readable";
	h.ok = 1;
	h.message = "";
	h.duration_ms = 12;
	h.checked_at_ms = 15;
	r.n_health = 2;
	r.health = hs;
	r.fingerprint = "beef";
	r.journal_id = 9;
	r.head_migration_id = "20240201_y";
	r.applied_count = 12;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_REPORT;
	m.report = &r;

	pack(&m, &b);
	back = unpack_ok(&b);
	x = back->report;
	ck_assert_int_eq(x->outcome, FLOTILLA__V1__OUTCOME__OUTCOME_VERIFY_FAILED);
	ck_assert_int_eq(x->kind, FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY);
	ck_assert_uint_eq(x->assignment_id, 77);
	ck_assert_int_eq(x->started_at_ms, 10);
	ck_assert_int_eq(x->finished_at_ms, 20);
	ck_assert_uint_eq(x->n_migrations, 1);
	ck_assert_str_eq(x->migrations[0]->migration_id, "20240301_x");
	ck_assert_str_eq(x->migrations[0]->sqlstate, "55P03");
	ck_assert_str_eq(x->migrations[0]->message, "lock timeout");
	ck_assert_uint_eq(x->migrations[0]->statement_index, 4);
	ck_assert_uint_eq(x->migrations[0]->attempts, 3);
	ck_assert_uint_eq(x->migrations[0]->applied_steps_count, 3);
	ck_assert_uint_eq(x->n_health, 2);
	ck_assert(x->health[1]->ok);
	ck_assert_uint_eq(x->health[1]->duration_ms, 12);
	ck_assert_uint_eq(x->journal_id, 9);
	ck_assert_str_eq(x->fingerprint, "beef");
	ck_assert_str_eq(x->head_migration_id, "20240201_y");
	ck_assert_uint_eq(x->applied_count, 12);
	fl_wire_free(back);
	fl_buf_fini(&b);
}
END_TEST

/* docs/WIRE.md and proto/release.c depend on these exact numbers and types. */
START_TEST(release_format_is_fixed)
{
	static const struct {
		const ProtobufCMessageDescriptor *desc;
		const char *name;
		unsigned id;
		ProtobufCType type;
		ProtobufCLabel label;
	} fields[] = {
	    {&flotilla__v1__release_migration__descriptor, "id", 1, PROTOBUF_C_TYPE_STRING,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_migration__descriptor, "checksum", 2, PROTOBUF_C_TYPE_STRING,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_migration__descriptor, "sql", 3, PROTOBUF_C_TYPE_BYTES,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_migration__descriptor, "down_sql", 4, PROTOBUF_C_TYPE_BYTES,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_migration__descriptor, "has_down", 5, PROTOBUF_C_TYPE_BOOL,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_migration__descriptor, "verify_sql", 6, PROTOBUF_C_TYPE_BYTES,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_migration__descriptor, "has_verify", 7, PROTOBUF_C_TYPE_BOOL,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_migration__descriptor, "no_transaction", 8,
	     PROTOBUF_C_TYPE_BOOL, PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_migration__descriptor, "requires", 9, PROTOBUF_C_TYPE_STRING,
	     PROTOBUF_C_LABEL_REPEATED},
	    {&flotilla__v1__release_migration__descriptor, "lock_timeout_ms", 10,
	     PROTOBUF_C_TYPE_INT64, PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_migration__descriptor, "statement_timeout_ms", 11,
	     PROTOBUF_C_TYPE_INT64, PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_migration__descriptor, "phase", 12, PROTOBUF_C_TYPE_ENUM,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_bundle__descriptor, "format_version", 1, PROTOBUF_C_TYPE_UINT32,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_bundle__descriptor, "migrations", 2, PROTOBUF_C_TYPE_MESSAGE,
	     PROTOBUF_C_LABEL_REPEATED},
	    {&flotilla__v1__release_bundle__descriptor, "provider", 3, PROTOBUF_C_TYPE_STRING,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_bundle__descriptor, "project_id", 4, PROTOBUF_C_TYPE_STRING,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_bundle__descriptor, "sequence", 5, PROTOBUF_C_TYPE_UINT64,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_signature__descriptor, "public_key", 1, PROTOBUF_C_TYPE_BYTES,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__release_signature__descriptor, "signature", 2, PROTOBUF_C_TYPE_BYTES,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__signed_release__descriptor, "bundle", 1, PROTOBUF_C_TYPE_BYTES,
	     PROTOBUF_C_LABEL_NONE},
	    {&flotilla__v1__signed_release__descriptor, "signatures", 2, PROTOBUF_C_TYPE_MESSAGE,
	     PROTOBUF_C_LABEL_REPEATED},
	};

	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(fields[i].desc, fields[i].name);

		ck_assert_msg(f != NULL, "%s.%s missing", fields[i].desc->name, fields[i].name);
		ck_assert_uint_eq(f->id, fields[i].id);
		ck_assert_int_eq(f->type, fields[i].type);
		ck_assert_int_eq(f->label, fields[i].label);
	}
	ck_assert_uint_eq(flotilla__v1__release_migration__descriptor.n_fields, 12);
	ck_assert_uint_eq(flotilla__v1__release_bundle__descriptor.n_fields, 5);
	ck_assert_uint_eq(flotilla__v1__release_signature__descriptor.n_fields, 2);
	ck_assert_uint_eq(flotilla__v1__signed_release__descriptor.n_fields, 2);
	ck_assert_int_eq(FLOTILLA__V1__PHASE__PHASE_UNSPECIFIED, 0);
	ck_assert_int_eq(FLOTILLA__V1__PHASE__PHASE_EXPAND, 1);
	ck_assert_int_eq(FLOTILLA__V1__PHASE__PHASE_CONTRACT, 2);
}
END_TEST

/* A bundle built by hand packs to the same bytes every time, and back. */
START_TEST(release_bundle_deterministic)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	Flotilla__V1__ReleaseBundle bundle = FLOTILLA__V1__RELEASE_BUNDLE__INIT, *back = NULL;
	Flotilla__V1__ReleaseMigration m1 = FLOTILLA__V1__RELEASE_MIGRATION__INIT;
	Flotilla__V1__ReleaseMigration m2 = FLOTILLA__V1__RELEASE_MIGRATION__INIT;
	Flotilla__V1__ReleaseMigration *ms[] = {&m1, &m2};
	char *requires[] = {"20240101120000_init"};
	uint8_t sql[] = "CREATE TABLE users (id int);\n", down[] = "DROP TABLE users;\n";
	uint8_t verify[] = "SELECT true";
	struct fl_buf a = FL_BUF_INIT, b = FL_BUF_INIT, c = FL_BUF_INIT;

	m1.id = "20240101120000_init";
	m1.checksum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	m1.sql = bin(sql, sizeof sql - 1);
	m1.down_sql = bin(down, sizeof down - 1);
	m1.has_down = 1;
	m1.verify_sql = bin(verify, sizeof verify - 1);
	m1.has_verify = 1;
	m1.lock_timeout_ms = -1;
	m1.statement_timeout_ms = -1;
	m1.phase = FLOTILLA__V1__PHASE__PHASE_EXPAND;
	m2.id = "20240201120000_idx";
	m2.checksum = "00";
	m2.sql = bin(sql, 3);
	m2.no_transaction = 1;
	m2.n_requires = 1;
	m2.requires = requires;
	m2.lock_timeout_ms = 5000;
	m2.statement_timeout_ms = 600000;
	m2.phase = FLOTILLA__V1__PHASE__PHASE_CONTRACT;
	bundle.format_version = 1;
	bundle.n_migrations = 2;
	bundle.migrations = ms;
	bundle.provider = "postgresql";

	ck_assert_int_eq(fl_wire_pack_release_bundle(&bundle, &a, FL_WIRE_MAX_RELEASE, errbuf),
	                 FL_OK);
	ck_assert_int_eq(fl_wire_pack_release_bundle(&bundle, &b, FL_WIRE_MAX_RELEASE, errbuf),
	                 FL_OK);
	ck_assert_uint_eq(a.len, b.len);
	ck_assert(memcmp(a.data, b.data, a.len) == 0);
	ck_assert_int_eq(fl_wire_unpack_release_bundle((uint8_t *)a.data, a.len,
	                                               FL_WIRE_MAX_RELEASE, &back, errbuf),
	                 FL_OK);
	ck_assert_uint_eq(back->format_version, 1);
	ck_assert_str_eq(back->provider, "postgresql");
	ck_assert_uint_eq(back->n_migrations, 2);
	ck_assert_str_eq(back->migrations[0]->id, "20240101120000_init");
	ck_assert_uint_eq(back->migrations[0]->sql.len, sizeof sql - 1);
	ck_assert(memcmp(back->migrations[0]->sql.data, sql, sizeof sql - 1) == 0);
	ck_assert(back->migrations[0]->has_down && back->migrations[0]->has_verify);
	ck_assert_int_eq(back->migrations[0]->lock_timeout_ms, -1);
	ck_assert_int_eq(back->migrations[0]->phase, FLOTILLA__V1__PHASE__PHASE_EXPAND);
	ck_assert(back->migrations[1]->no_transaction);
	ck_assert_str_eq(back->migrations[1]->requires[0], "20240101120000_init");
	ck_assert_int_eq(back->migrations[1]->statement_timeout_ms, 600000);
	ck_assert(!back->migrations[1]->has_down);
	same(&bundle.base, &back->base, "bundle");
	ck_assert_int_eq(fl_wire_pack_release_bundle(back, &c, FL_WIRE_MAX_RELEASE, errbuf), FL_OK);
	ck_assert(a.len == c.len && memcmp(a.data, c.data, a.len) == 0);
	fl_wire_free_release_bundle(back);
	fl_buf_fini(&a);
	fl_buf_fini(&b);
	fl_buf_fini(&c);
}
END_TEST

START_TEST(admin_by_name)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *back;
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStartRequest start = FLOTILLA__V1__ROLLOUT_START_REQUEST__INIT;
	static const uint8_t order[] = {0x0a, 0x03, 'a', 'b', 'c'};
	Flotilla__V1__AdminResponse resp = FLOTILLA__V1__ADMIN_RESPONSE__INIT;
	Flotilla__V1__Status status = FLOTILLA__V1__STATUS__INIT;
	struct fl_buf b = FL_BUF_INIT;

	start.signed_order.data = (uint8_t *)order;
	start.signed_order.len = sizeof(order);
	req.request_id = 5;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_START;
	req.rollout_start = &start;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST;
	m.admin_request = &req;
	pack(&m, &b);
	back = unpack_ok(&b);
	ck_assert_uint_eq(back->admin_request->request_id, 5);
	ck_assert_str_eq(fl_wire_admin_command_name((int)back->admin_request->command_case),
	                 "rollout_start");
	ck_assert_uint_eq(back->admin_request->rollout_start->signed_order.len, sizeof(order));
	fl_wire_free(back);

	/* A failed command may come without a result. */
	status.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED;
	status.message = "role viewer may not start rollouts";
	resp.request_id = 5;
	resp.status = &status;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE;
	m.admin_response = &resp;
	fl_buf_reset(&b);
	pack(&m, &b);
	back = unpack_ok(&b);
	ck_assert_int_eq(back->admin_response->result_case,
	                 FLOTILLA__V1__ADMIN_RESPONSE__RESULT__NOT_SET);
	ck_assert_int_eq(back->admin_response->status->code,
	                 FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED);
	fl_wire_free(back);

	/* A successful one may not. */
	status.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	fl_buf_reset(&b);
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, NULL), FL_EINVAL);
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE, "admin_response: none of");
	fl_buf_fini(&b);
}
END_TEST

/* Requests and responses pair by name and number (roles: check_roles.c). */
START_TEST(admin_commands_pair)
{
	const ProtobufCMessageDescriptor *rq = &flotilla__v1__admin_request__descriptor;
	const ProtobufCMessageDescriptor *rs = &flotilla__v1__admin_response__descriptor;
	size_t commands = 0;

	for (unsigned i = 0; i < rq->n_fields; i++) {
		const ProtobufCFieldDescriptor *q = &rq->fields[i], *r;
		const ProtobufCMessageDescriptor *qt = q->descriptor, *rt;
		char want[256];

		if (!(q->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue;
		commands++;
		r = protobuf_c_message_descriptor_get_field(rs, q->id);
		ck_assert_msg(r != NULL, "no result for %s", q->name);
		ck_assert_str_eq(r->name, q->name);
		ck_assert(r->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
		rt = r->descriptor;
		ck_assert(ends_with(qt->short_name, "Request"));
		snprintf(want, sizeof want, "%.*sResponse",
		         (int)(strlen(qt->short_name) - strlen("Request")), qt->short_name);
		ck_assert_str_eq(rt->short_name, want);
		ck_assert_str_eq(fl_wire_admin_command_name((int)q->id), q->name);
	}
	ck_assert_uint_eq(commands, 19);
	ck_assert_uint_eq(commands + 2, rs->n_fields); /* request_id, status */
	ck_assert_str_eq(fl_wire_admin_command_name(0), "none");
	ck_assert_str_eq(fl_wire_admin_command_name(1), "unknown"); /* request_id */
	ck_assert_str_eq(fl_wire_admin_command_name(-3), "unknown");
}
END_TEST

START_TEST(body_names)
{
	ck_assert_str_eq(fl_wire_body_name(FLOTILLA__V1__MESSAGE__BODY__NOT_SET), "none");
	ck_assert_str_eq(fl_wire_body_name(FLOTILLA__V1__MESSAGE__BODY_HELLO), "hello");
	ck_assert_str_eq(fl_wire_body_name(FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY), "poll_reply");
	ck_assert_str_eq(fl_wire_body_name(FLOTILLA__V1__MESSAGE__BODY_ERROR), "error");
	ck_assert_str_eq(fl_wire_body_name(FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE),
	                 "admin_response");
	ck_assert_str_eq(fl_wire_body_name(12), "unknown");
	ck_assert_str_eq(fl_wire_body_name(-1), "unknown");
	ck_assert_str_eq(fl_wire_body_name(1 << 30), "unknown");
}
END_TEST

/* ---- what unpacking refuses ---- */

/* Fields a newer peer added are skipped, at the top and deep inside. */
START_TEST(unknown_fields_ignored)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *back;
	Flotilla__V1__Hello hello = FLOTILLA__V1__HELLO__INIT;
	Flotilla__V1__Tenant tenant = FLOTILLA__V1__TENANT__INIT;
	struct fl_buf b = FL_BUF_INIT, t = FL_BUF_INIT, h = FL_BUF_INIT;
	uint8_t varint_field[] = {0xb8, 0x3e, 0x2a};      /* field 999, varint 42 */
	uint8_t fixed_field[] = {0xc5, 0x3e, 1, 2, 3, 4}; /* field 1000, fixed32 */
	const uint8_t extra[] = "from the future";

	hello.agent_id = "db-1";
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
	m.hello = &hello;
	pack(&m, &b);
	ck_assert_int_eq(fl_buf_append(&b, varint_field, sizeof varint_field), FL_OK);
	ck_assert_int_eq(fl_buf_append(&b, fixed_field, sizeof fixed_field), FL_OK);
	put_field(&b, 1001, extra, sizeof extra - 1);
	back = unpack_ok(&b);
	ck_assert_str_eq(back->hello->agent_id, "db-1");
	fl_wire_free(back);

	/* Message{hello: Hello{tenants: [Tenant{id, field 77}]}} by hand. */
	tenant.id = "acme";
	raw_pack(&tenant.base, &t);
	put_field(&t, 77, extra, sizeof extra - 1);
	put_field(&h, 4, t.data, t.len);
	fl_buf_reset(&b);
	put_field(&b, 1, h.data, h.len);
	back = unpack_ok(&b);
	ck_assert_uint_eq(back->hello->n_tenants, 1);
	ck_assert_str_eq(back->hello->tenants[0]->id, "acme");
	fl_wire_free(back);

	/* A body this build does not know is no body at all. */
	fl_buf_reset(&b);
	put_field(&b, 15, extra, sizeof extra - 1);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE, "none of hello, hello_reply");
	fl_buf_fini(&b);
	fl_buf_fini(&t);
	fl_buf_fini(&h);
}
END_TEST

START_TEST(empty_body_refused)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_buf b = FL_BUF_INIT;

	unpack_refused(NULL, 0, FL_EPARSE, "invalid flotilla.v1.Message: none of hello");
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, errbuf), FL_EINVAL);
	ck_assert_uint_eq(b.len, 0);

	/* Nested oneofs too: an AdminRequest with no command. */
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST;
	m.admin_request = &req;
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, errbuf), FL_EINVAL);
	ck_assert_ptr_nonnull(
	    strstr(errbuf, "invalid flotilla.v1.Message: admin_request: none of release_push, "
	                   "release_list, "));
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE, "admin_request: none of release_push");

	/* A oneof member set to nothing, or a case that is no member. */
	m.admin_request = NULL;
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, errbuf), FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(errbuf, "admin_request: set but empty"));
	m.body_case = (Flotilla__V1__Message__BodyCase)12;
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, errbuf), FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(errbuf, "oneof case 12 is none of"));
	fl_buf_fini(&b);
}
END_TEST

static Flotilla__V1__Redirect redirect = FLOTILLA__V1__REDIRECT__INIT;
static Flotilla__V1__PollReply redirect_reply = FLOTILLA__V1__POLL_REPLY__INIT;

static Flotilla__V1__Message redirect_message(size_t key_len)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;

	redirect.coordinator_url = "tcp://coord-2:7400";
	redirect.leader_public_key = bin(key_bytes, key_len);
	redirect_reply.redirect = &redirect;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY;
	m.poll_reply = &redirect_reply;
	return m;
}

START_TEST(bad_key_length_refused)
{
	static const size_t lens[] = {0, 1, 31, 33, 64};
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_buf b = FL_BUF_INIT;
	Flotilla__V1__Message m;

	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		char want[128];

		m = redirect_message(lens[i]);
		ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, errbuf), FL_EINVAL);
		snprintf(want, sizeof want,
		         "poll_reply.redirect.leader_public_key: %zu bytes where 32 are needed",
		         lens[i]);
		ck_assert_ptr_nonnull(strstr(errbuf, want));
		ck_assert_uint_eq(b.len, 0);
		raw_pack(&m.base, &b);
		unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE, want);
		fl_buf_reset(&b);
	}
	m = redirect_message(32);
	pack(&m, &b);
	fl_wire_free(unpack_ok(&b));
	fl_buf_fini(&b);
}
END_TEST

START_TEST(bad_hash_and_signature_length_refused)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__FetchRelease fetch = FLOTILLA__V1__FETCH_RELEASE__INIT;
	Flotilla__V1__SignedRelease sr = FLOTILLA__V1__SIGNED_RELEASE__INIT, *back = NULL;
	Flotilla__V1__ReleaseSignature sig = FLOTILLA__V1__RELEASE_SIGNATURE__INIT,
	                               *sigs[] = {&sig};
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_buf b = FL_BUF_INIT;

	fetch.release_hash = bin(hash_bytes, 20);
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_FETCH_RELEASE;
	m.fetch_release = &fetch;
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE,
	               "fetch_release.release_hash: 20 bytes where 32 are needed");

	sig.public_key = bin(key_bytes, 32);
	sig.signature = bin(sig_bytes, 63);
	sr.n_signatures = 1;
	sr.signatures = sigs;
	raw_pack(&sr.base, &b);
	ck_assert_int_eq(fl_wire_unpack_signed_release((uint8_t *)b.data, b.len,
	                                               FL_WIRE_MAX_RELEASE, &back, errbuf),
	                 FL_EPARSE);
	ck_assert_ptr_null(back);
	ck_assert_str_eq(errbuf, "invalid flotilla.v1.SignedRelease: signatures[0].signature: 63 "
	                         "bytes where 64 are needed");
	sig.signature = bin(sig_bytes, 64);
	raw_pack(&sr.base, &b);
	ck_assert_int_eq(fl_wire_unpack_signed_release((uint8_t *)b.data, b.len,
	                                               FL_WIRE_MAX_RELEASE, &back, errbuf),
	                 FL_OK);
	ck_assert(memcmp(back->signatures[0]->signature.data, sig_bytes, 64) == 0);
	fl_wire_free_signed_release(back);
	fl_buf_fini(&b);
}
END_TEST

START_TEST(bad_strings_refused)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Hello hello = FLOTILLA__V1__HELLO__INIT;
	Flotilla__V1__Tenant tenant = FLOTILLA__V1__TENANT__INIT, *tenants[] = {&tenant, &tenant};
	Flotilla__V1__Label label = FLOTILLA__V1__LABEL__INIT, *labels[] = {&label};
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_buf b = FL_BUF_INIT, t = FL_BUF_INIT, h = FL_BUF_INIT;
	const uint8_t nul[] = {'a', 0, 'b'};

	/* Invalid UTF-8 (an overlong '/'), deep inside, with the path to it. */
	label.key = "ring";
	label.value = "ca\xc0\xafnary";
	tenant.id = "acme";
	tenant.n_labels = 1;
	tenant.labels = labels;
	hello.n_tenants = 2;
	hello.tenants = tenants;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
	m.hello = &hello;
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, errbuf), FL_EINVAL);
	ck_assert_str_eq(errbuf, "invalid flotilla.v1.Message: hello.tenants[0].labels[0].value: "
	                         "not valid UTF-8 at byte 2");
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE,
	               "hello.tenants[0].labels[0].value: not valid UTF-8 at byte 2");

	/* A NUL inside a string would otherwise arrive cut short as "a". */
	fl_buf_reset(&b);
	put_field(&t, 1, nul, sizeof nul); /* Tenant.id */
	put_field(&h, 4, t.data, t.len);   /* Hello.tenants */
	put_field(&b, 1, h.data, h.len);   /* Message.hello */
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE,
	               "hello.tenants.id: NUL byte in a string");

	/* Bytes fields may hold NUL: they are not strings. */
	fl_buf_reset(&b);
	{
		Flotilla__V1__ReleaseBundleReply r = FLOTILLA__V1__RELEASE_BUNDLE_REPLY__INIT;
		Flotilla__V1__Message *back;

		r.release_hash = bin(hash_bytes, 32);
		r.signed_release = bin((uint8_t *)nul, sizeof nul);
		m.body_case = FLOTILLA__V1__MESSAGE__BODY_RELEASE_BUNDLE_REPLY;
		m.release_bundle_reply = &r;
		pack(&m, &b);
		back = unpack_ok(&b);
		ck_assert_uint_eq(back->release_bundle_reply->signed_release.len, 3);
		fl_wire_free(back);
	}
	fl_buf_fini(&b);
	fl_buf_fini(&t);
	fl_buf_fini(&h);
}
END_TEST

START_TEST(unknown_enum_value_refused)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Report r = FLOTILLA__V1__REPORT__INIT;
	Flotilla__V1__FleetStatusRequest fs = FLOTILLA__V1__FLEET_STATUS_REQUEST__INIT;
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__TenantState states[] = {FLOTILLA__V1__TENANT_STATE__TENANT_STATE_FAILED,
	                                      (Flotilla__V1__TenantState)42};
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_buf b = FL_BUF_INIT;

	r.outcome = (Flotilla__V1__Outcome)99;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_REPORT;
	m.report = &r;
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, errbuf), FL_EINVAL);
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE,
	               "report.outcome: 99 is not a value of flotilla.v1.Outcome");
	r.outcome = (Flotilla__V1__Outcome)-1;
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE, "report.outcome: -1 is not a value");

	/* In a packed repeated enum too. */
	fs.n_states = 2;
	fs.states = states;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_STATUS;
	req.fleet_status = &fs;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST;
	m.admin_request = &req;
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE,
	               "admin_request.fleet_status.states[1]: 42 is not a value");
	fl_buf_fini(&b);
}
END_TEST

START_TEST(missing_required_parts_refused)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__AdminResponse resp = FLOTILLA__V1__ADMIN_RESPONSE__INIT;
	Flotilla__V1__Status status = FLOTILLA__V1__STATUS__INIT;
	Flotilla__V1__RolloutStatusResponse rs = FLOTILLA__V1__ROLLOUT_STATUS_RESPONSE__INIT;
	Flotilla__V1__RolloutInfo info = FLOTILLA__V1__ROLLOUT_INFO__INIT, *infos[] = {&info};
	Flotilla__V1__TenantSelector sel = FLOTILLA__V1__TENANT_SELECTOR__INIT;
	struct fl_buf b = FL_BUF_INIT;

	/* AdminResponse.status is always present. */
	info.release_hash = bin(hash_bytes, 32);
	info.order_hash = bin(hash_bytes, 32);
	info.selector = &sel;
	sel.all = 1;
	rs.n_rollouts = 1;
	rs.rollouts = infos;
	resp.result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ROLLOUT_STATUS;
	resp.rollout_status = &rs;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE;
	m.admin_response = &resp;
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE, "admin_response.status: missing");

	/* So is RolloutInfo.selector. */
	status.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	resp.status = &status;
	info.selector = NULL;
	sel.all = 0;
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE,
	               "admin_response.rollout_status.rollouts[0].selector: missing");

	/* A selector that selects nothing never means everything. */
	info.selector = &sel;
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE,
	               "admin_response.rollout_status.rollouts[0].selector: selects no tenant");
	sel.all = 1;
	fl_buf_reset(&b);
	pack(&m, &b);
	fl_wire_free(unpack_ok(&b));
	fl_buf_fini(&b);
}
END_TEST

/*
 * Two bytes (an empty entry) per signature would cost protobuf-c an allocation
 * of tens of bytes each: a release file of empty signatures, refused by its
 * count before anything is decoded, must not make us allocate gigabytes
 * before the signature check (a coordinator is not trusted with releases).
 */
START_TEST(amplification_refused_before_decoding)
{
	Flotilla__V1__SignedRelease *back = NULL;
	Flotilla__V1__Message *mback = NULL;
	size_t n = 8u << 20; /* 8 MiB of 0x12 0x00: 4 Mi empty signatures */
	uint8_t *data = fl_malloc(n);
	char errbuf[FL_ERRBUF_SIZE];
	struct rusage before, after;

	for (size_t i = 0; i < n; i += 2) {
		data[i] = 0x12;
		data[i + 1] = 0x00;
	}
	getrusage(RUSAGE_SELF, &before);
	ck_assert_int_eq(fl_wire_unpack_signed_release(data, n, FL_WIRE_MAX_RELEASE, &back, errbuf),
	                 FL_EPARSE);
	ck_assert_ptr_null(back);
	ck_assert_ptr_nonnull(strstr(errbuf, "signatures: 17 entries, more than the limit of 16"));
	/* The same in any message: 4 Mi empty bodies, a singular field given
	 * again and again, refused at the second. */
	for (size_t i = 0; i < n; i += 2)
		data[i] = (uint8_t)(FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK << 3 | 2);
	ck_assert_int_eq(fl_wire_unpack(data, n, n, &mback, errbuf), FL_EPARSE);
	ck_assert_ptr_null(mback);
	ck_assert_str_eq(errbuf, "invalid flotilla.v1.Message: report_ack: given twice");
	getrusage(RUSAGE_SELF, &after);
	/* Refused by counting: no growth near the ~200 MiB decoding would take. */
	ck_assert_int_lt(after.ru_maxrss - before.ru_maxrss, 64 * 1024);
	free(data);
}
END_TEST

/* 60 MiB of unknown fields (3 bytes each: field 20, varint 0) put where each
 * receiver would meet them. protobuf-c keeps every unknown field (a scanned
 * member, a record and a copy each): ~2.7 GiB for this input, which aborted
 * the process before the pre-scan counted unknown fields. Now it stops
 * after FL_WIRE_MAX_UNKNOWN of them, before anything is allocated. */
START_TEST(unknown_fields_flood_refused)
{
	size_t n = (60u << 20) / 3 * 3, hdr = 0;
	uint8_t *data = fl_malloc(n + 16);
	Flotilla__V1__Message *m = NULL;
	Flotilla__V1__SignedRelease *sr = NULL;
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_wire_stats st;

	for (size_t i = 16; i < n + 16; i += 3) {
		data[i] = 0xa0;
		data[i + 1] = 0x01;
		data[i + 2] = 0x00;
	}
	/* In a Message, at the top. */
	ck_assert_int_eq(fl_wire_unpack(data + 16, n, FL_WIRE_MAX_RELEASE_MESSAGE, &m, errbuf),
	                 FL_EPARSE);
	ck_assert_ptr_null(m);
	ck_assert_str_eq(errbuf, "invalid flotilla.v1.Message: more than 65536 unknown fields");
	fl_wire_last_stats(&st);
	ck_assert_uint_eq(st.allocated, 0);
	ck_assert_uint_eq(st.peak, 0);
	ck_assert_uint_le(st.occurrences, FL_WIRE_MAX_UNKNOWN + 1);

	/* Inside the one body that may be this large: a coordinator's
	 * release_bundle_reply (field 8), reply_to_seq last. */
	{
		struct fl_buf b = FL_BUF_INIT;

		put_varint(&b, 8 << 3 | 2);
		put_varint(&b, n);
		hdr = b.len;
		ck_assert_uint_le(hdr, 16);
		memcpy(data + 16 - hdr, b.data, hdr);
		fl_buf_fini(&b);
	}
	ck_assert_int_eq(
	    fl_wire_unpack_from(FL_PEER_COORDINATOR, data + 16 - hdr, n + hdr, &m, errbuf),
	    FL_EPARSE);
	ck_assert_str_eq(errbuf, "invalid flotilla.v1.Message: release_bundle_reply: more than "
	                         "65536 unknown fields");
	fl_wire_last_stats(&st);
	ck_assert_uint_eq(st.allocated, 0);
	/* From an agent, the same bytes are refused for their size alone. */
	ck_assert_int_eq(fl_wire_unpack_from(FL_PEER_AGENT, data + 16 - hdr, n + hdr, &m, errbuf),
	                 FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(errbuf, "exceeds the limit of 4194304 for an agent"));

	/* A release file made of them: the same, before any allocation. */
	ck_assert_int_eq(
	    fl_wire_unpack_signed_release(data + 16, n, FL_WIRE_MAX_RELEASE, &sr, errbuf),
	    FL_EPARSE);
	ck_assert_ptr_null(sr);
	fl_wire_last_stats(&st);
	ck_assert_uint_eq(st.allocated, 0);
	free(data);
}
END_TEST

/* A packed field's entries are counted one by one: 60 MiB of one-byte
 * varints in ReportAck.journal_ids are 60 Mi uint64 (480 MiB) to protobuf-c.
 * The pre-scan used to count the whole packed field as one entry. */
START_TEST(packed_entries_counted)
{
	size_t n = 60u << 20;
	struct fl_buf b = FL_BUF_INIT, inner = FL_BUF_INIT;
	Flotilla__V1__Message *m = NULL;
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_wire_stats st;
	uint8_t *ids = fl_malloc(n);

	memset(ids, 0x01, n);
	put_field(&inner, 1, ids, n); /* journal_ids */
	put_field(&b, FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK, inner.data, inner.len); /* body */
	free(ids);
	fl_buf_fini(&inner);
	ck_assert_int_eq(fl_wire_unpack((uint8_t *)b.data, b.len, b.len, &m, errbuf), FL_EPARSE);
	ck_assert_str_eq(errbuf, "invalid flotilla.v1.Message: report_ack: more than 2097152 "
	                         "fields and entries");
	fl_wire_last_stats(&st);
	ck_assert_uint_eq(st.allocated, 0);
	fl_buf_fini(&b);
}
END_TEST

/* 100000 empty tenants in a Hello: 200 KB of input, within every count,
 * that would take protobuf-c ~30 MB (a struct, a pointer and its scanned-member
 * bookkeeping per 2 bytes). Refused by the prediction, nothing allocated. */
START_TEST(memory_predicted_and_bounded)
{
	struct fl_buf b = FL_BUF_INIT, hello = FL_BUF_INIT;
	Flotilla__V1__Message *m = NULL;
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_wire_stats st;

	for (size_t i = 0; i < 100000; i++)
		ck_assert_int_eq(fl_buf_append(&hello, "\x22\x00", 2), FL_OK);
	put_field(&b, FLOTILLA__V1__MESSAGE__BODY_HELLO, hello.data, hello.len);
	ck_assert_int_eq(fl_wire_unpack_from(FL_PEER_AGENT, (uint8_t *)b.data, b.len, &m, errbuf),
	                 FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(errbuf, "bytes of memory to decode, more than the limit"));
	fl_wire_last_stats(&st);
	ck_assert_uint_gt(st.predicted, 10u << 20);
	ck_assert_uint_gt(st.predicted, FL_WIRE_MEMORY(b.len));
	ck_assert_uint_eq(st.allocated, 0);

	/* 2000 of them fit the slack: decoded, and exactly as predicted. */
	fl_buf_reset(&b);
	put_field(&b, FLOTILLA__V1__MESSAGE__BODY_HELLO, hello.data, 4000);
	ck_assert_int_eq(fl_wire_unpack_from(FL_PEER_AGENT, (uint8_t *)b.data, b.len, &m, errbuf),
	                 FL_OK);
	ck_assert_uint_eq(m->hello->n_tenants, 2000);
	fl_wire_last_stats(&st);
	ck_assert_uint_eq(st.allocated, st.predicted);
	ck_assert_uint_le(st.peak, st.budget);
	fl_wire_free(m);

	/* The allocator holds protobuf-c to the budget whatever the prediction
	 * said: shrink it under what decoding needs, and the unpack is refused,
	 * with everything it had allocated freed (ASan would see a leak). */
	fl_wire_test_budget_delta = -(long)(st.predicted / 2 + st.predicted / 8 + 4096);
	ck_assert_int_eq(fl_wire_unpack_from(FL_PEER_AGENT, (uint8_t *)b.data, b.len, &m, errbuf),
	                 FL_EPARSE);
	fl_wire_test_budget_delta = 0;
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(strstr(errbuf, "it needs more than"));
	fl_wire_last_stats(&st);
	ck_assert(st.over_budget);
	ck_assert_uint_le(st.peak, st.budget);
	ck_assert_uint_gt(st.peak, 0);
	fl_buf_fini(&b);
	fl_buf_fini(&hello);
}
END_TEST

/* A real Hello (tenants with labels, applied migrations, fingerprints)
 * takes a few times its size: far inside the limit. */
START_TEST(real_messages_fit_the_memory_limit)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *back = NULL;
	Flotilla__V1__Hello hello = FLOTILLA__V1__HELLO__INIT;
	Flotilla__V1__Tenant tenant = FLOTILLA__V1__TENANT__INIT, *tenants[500];
	Flotilla__V1__Label l1 = FLOTILLA__V1__LABEL__INIT, l2 = FLOTILLA__V1__LABEL__INIT;
	Flotilla__V1__Label *labels[] = {&l1, &l2};
	Flotilla__V1__AppliedMigration a = FLOTILLA__V1__APPLIED_MIGRATION__INIT, *as[50];
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_buf b = FL_BUF_INIT;
	struct fl_wire_stats st;

	a.id = "20240101120000_add_users_table";
	a.checksum = "6f1ed002ab5595859014ebf0951522d9a0cd3e8d2d8b9d4b3c1e0f1a2b3c4d5e";
	a.started_at_ms = 1704110400000;
	a.finished_at_ms = 1704110401000;
	a.applied_steps_count = 1;
	for (size_t i = 0; i < 50; i++)
		as[i] = &a;
	l1.key = "ring";
	l1.value = "canary";
	l2.key = "region";
	l2.value = "eu";
	tenant.id = "acme-corp";
	tenant.database = "tenant_acme_corp";
	tenant.n_labels = 2;
	tenant.labels = labels;
	tenant.n_applied = 50;
	tenant.applied = as;
	tenant.fingerprint = a.checksum;
	for (size_t i = 0; i < 500; i++)
		tenants[i] = &tenant;
	hello.agent_id = "db-eu-1";
	hello.n_tenants = 500;
	hello.tenants = tenants;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
	m.hello = &hello;
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_HELLO, errbuf), FL_OK);
	ck_assert_int_eq(
	    fl_wire_unpack_from(FL_PEER_AGENT, (uint8_t *)b.data, b.len, &back, errbuf), FL_OK);
	fl_wire_last_stats(&st);
	ck_assert_uint_eq(st.allocated, st.predicted);
	ck_assert_uint_lt(st.predicted, 4 * b.len);
	fl_wire_free(back);
	fl_buf_fini(&b);
}
END_TEST

/* A field given twice, or two members of a oneof: protobuf-c would merge
 * or replace (allocating again each time); no encoder writes it. */
START_TEST(duplicates_refused)
{
	struct fl_buf b = FL_BUF_INIT, poll = FL_BUF_INIT;

	put_varint(&poll, 3 << 3); /* free_slots: 1, then 2 */
	put_varint(&poll, 1);
	put_varint(&poll, 3 << 3);
	put_varint(&poll, 2);
	put_field(&b, FLOTILLA__V1__MESSAGE__BODY_POLL, poll.data, poll.len);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE, "poll.free_slots: given twice");
	fl_buf_reset(&b);
	put_field(&b, FLOTILLA__V1__MESSAGE__BODY_POLL, "", 0);
	put_field(&b, FLOTILLA__V1__MESSAGE__BODY_HELLO, "", 0);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE,
	               "invalid flotilla.v1.Message: hello: a second member of its oneof");
	fl_buf_fini(&b);
	fl_buf_fini(&poll);
}
END_TEST

/* Unknown fields are ignored on the wire, except inside a WorkAssignment,
 * whose every field decides what runs, and in strict (signed) messages. */
START_TEST(unknown_fields_refused_in_assignments)
{
	static const uint8_t order[] = {1, 2, 3};
	Flotilla__V1__WorkAssignment w = FLOTILLA__V1__WORK_ASSIGNMENT__INIT;
	Flotilla__V1__SignedOrder so = FLOTILLA__V1__SIGNED_ORDER__INIT;
	ProtobufCMessage *back = NULL;
	struct fl_buf b = FL_BUF_INIT, work = FL_BUF_INIT, reply = FL_BUF_INIT;
	char errbuf[FL_ERRBUF_SIZE];
	size_t known;

	w.assignment_id = 1;
	w.release_hash = bin(hash_bytes, 32);
	w.signed_order.data = (uint8_t *)order;
	w.signed_order.len = sizeof order;
	raw_pack(&w.base, &work);
	put_field(&reply, 5, work.data, work.len); /* assignments */
	put_field(&b, FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY, reply.data, reply.len);
	fl_wire_free(unpack_ok(&b));
	known = work.len;
	put_field(&work, 99, "x", 1); /* a field this build does not know */
	fl_buf_reset(&reply);
	put_field(&reply, 5, work.data, work.len);
	fl_buf_reset(&b);
	put_field(&b, FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY, reply.data, reply.len);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE,
	               "poll_reply.assignments: unknown field 99: refused here");
	/* The same field beside the assignments, in the PollReply: ignored. */
	fl_buf_reset(&reply);
	put_field(&reply, 5, work.data, known);
	put_field(&reply, 99, "x", 1);
	fl_buf_reset(&b);
	put_field(&b, FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY, reply.data, reply.len);
	fl_wire_free(unpack_ok(&b));

	/* Strict: anywhere in the message. */
	so.order.data = (uint8_t *)order;
	so.order.len = sizeof order;
	raw_pack(&so.base, &b);
	ck_assert_int_eq(fl_wire_unpack_message(&flotilla__v1__signed_order__descriptor,
	                                        FL_WIRE_STRICT, (uint8_t *)b.data, b.len,
	                                        FL_WIRE_MAX_ORDER, &back, errbuf),
	                 FL_OK);
	fl_wire_free_message(back);
	put_field(&b, 7, "x", 1);
	ck_assert_int_eq(fl_wire_unpack_message(&flotilla__v1__signed_order__descriptor, 0,
	                                        (uint8_t *)b.data, b.len, FL_WIRE_MAX_ORDER, &back,
	                                        errbuf),
	                 FL_OK);
	fl_wire_free_message(back);
	ck_assert_int_eq(fl_wire_unpack_message(&flotilla__v1__signed_order__descriptor,
	                                        FL_WIRE_STRICT, (uint8_t *)b.data, b.len,
	                                        FL_WIRE_MAX_ORDER, &back, errbuf),
	                 FL_EPARSE);
	ck_assert_ptr_null(back);
	ck_assert_str_eq(errbuf, "invalid flotilla.v1.SignedOrder: unknown field 7: refused here, "
	                         "every field decides what runs");
	fl_buf_fini(&b);
	fl_buf_fini(&work);
	fl_buf_fini(&reply);
}
END_TEST

START_TEST(repeated_counts_bounded)
{
	Flotilla__V1__SignedRelease sr = FLOTILLA__V1__SIGNED_RELEASE__INIT, *back = NULL;
	Flotilla__V1__ReleaseSignature sig = FLOTILLA__V1__RELEASE_SIGNATURE__INIT;
	Flotilla__V1__ReleaseSignature *sigs[FL_WIRE_MAX_SIGNATURES + 1];
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__ReportAck ack = FLOTILLA__V1__REPORT_ACK__INIT;
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_buf b = FL_BUF_INIT;

	sig.public_key = bin(key_bytes, 32);
	sig.signature = bin(sig_bytes, 64);
	for (size_t i = 0; i < FL_WIRE_MAX_SIGNATURES + 1; i++)
		sigs[i] = &sig;
	sr.signatures = sigs;
	sr.n_signatures = FL_WIRE_MAX_SIGNATURES;
	ck_assert_int_eq(fl_wire_pack_signed_release(&sr, &b, FL_WIRE_MAX_RELEASE, errbuf), FL_OK);
	ck_assert_int_eq(fl_wire_unpack_signed_release((uint8_t *)b.data, b.len,
	                                               FL_WIRE_MAX_RELEASE, &back, errbuf),
	                 FL_OK);
	fl_wire_free_signed_release(back);
	sr.n_signatures = FL_WIRE_MAX_SIGNATURES + 1;
	raw_pack(&sr.base, &b);
	ck_assert_int_eq(fl_wire_unpack_signed_release((uint8_t *)b.data, b.len,
	                                               FL_WIRE_MAX_RELEASE, &back, errbuf),
	                 FL_EPARSE);
	ck_assert_str_eq(errbuf, "invalid flotilla.v1.SignedRelease: signatures: 17 entries, more "
	                         "than the limit of 16");

	/* The general cap: a packed repeated uint64 of 1-byte entries. */
	ack.n_journal_ids = FL_WIRE_MAX_REPEATED + 1;
	ack.journal_ids = fl_calloc(ack.n_journal_ids, sizeof *ack.journal_ids);
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK;
	m.report_ack = &ack;
	fl_buf_reset(&b);
	ck_assert_int_eq(fl_wire_pack(&m, &b, FL_WIRE_MAX_MESSAGE, errbuf), FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(errbuf, "report_ack.journal_ids: 100001 entries"));
	raw_pack(&m.base, &b);
	unpack_refused((uint8_t *)b.data, b.len, FL_EPARSE,
	               "report_ack.journal_ids: 100001 entries, more than the limit of 100000");
	ack.n_journal_ids = FL_WIRE_MAX_REPEATED;
	fl_buf_reset(&b);
	pack(&m, &b);
	fl_wire_free(unpack_ok(&b));
	free(ack.journal_ids);
	fl_buf_fini(&b);
}
END_TEST

START_TEST(oversize_refused)
{
	struct filler fl = {0};
	Flotilla__V1__Message *m, *back = (Flotilla__V1__Message *)&fl;
	Flotilla__V1__SignedRelease *sr = NULL;
	char errbuf[FL_ERRBUF_SIZE], want[128];
	struct fl_buf b = FL_BUF_INIT, capped;
	uint8_t byte = 0;

	fl.variant = 0;
	m = build_body(&fl, &flotilla__v1__message__descriptor.fields[0]);
	pack(m, &b);
	ck_assert_uint_gt(b.len, 100);

	/* Packing: over max, and over the output buffer's own cap. */
	fl_buf_init(&capped, 0);
	ck_assert_int_eq(fl_wire_pack(m, &capped, b.len - 1, errbuf), FL_EINVAL);
	snprintf(want, sizeof want, "message of %zu bytes exceeds the limit of %zu", b.len,
	         b.len - 1);
	ck_assert_str_eq(errbuf, want);
	ck_assert_uint_eq(capped.len, 0);
	ck_assert_int_eq(fl_wire_pack(m, &capped, b.len, errbuf), FL_OK);
	fl_buf_fini(&capped);
	fl_buf_init(&capped, b.len + 3);
	ck_assert_int_eq(fl_buf_append(&capped, "hdr", 3), FL_OK);
	ck_assert_int_eq(fl_wire_pack(m, &capped, FL_WIRE_MAX_MESSAGE, errbuf), FL_OK);
	ck_assert_uint_eq(capped.len, b.len + 3); /* appended after the header */
	ck_assert(memcmp(capped.data, "hdr", 3) == 0 &&
	          memcmp(capped.data + 3, b.data, b.len) == 0);
	fl_buf_reset(&capped);
	ck_assert_int_eq(fl_buf_append(&capped, "hdrx", 4), FL_OK);
	ck_assert_int_eq(fl_wire_pack(m, &capped, FL_WIRE_MAX_MESSAGE, errbuf), FL_EINVAL);
	ck_assert_ptr_nonnull(strstr(errbuf, "does not fit the output buffer"));
	ck_assert_uint_eq(capped.len, 4);
	ck_assert_str_eq(capped.data, "hdrx");
	fl_buf_fini(&capped);

	/* Unpacking: the cap is checked before a byte is read. */
	ck_assert_int_eq(fl_wire_unpack((uint8_t *)b.data, b.len, b.len - 1, &back, errbuf),
	                 FL_EINVAL);
	ck_assert_ptr_null(back);
	ck_assert_str_eq(errbuf, want);
	ck_assert_int_eq(fl_wire_unpack(&byte, (size_t)1 << 40, FL_WIRE_MAX_MESSAGE, &back, errbuf),
	                 FL_EINVAL);
	snprintf(want, sizeof want, "message of %zu bytes exceeds the limit of %u", (size_t)1 << 40,
	         FL_WIRE_MAX_MESSAGE);
	ck_assert_str_eq(errbuf, want);
	ck_assert_int_eq(fl_wire_unpack_signed_release(&byte, (size_t)FL_WIRE_MAX_RELEASE + 1,
	                                               FL_WIRE_MAX_RELEASE, &sr, errbuf),
	                 FL_EINVAL);
	ck_assert_ptr_null(sr);
	ck_assert_int_eq(fl_wire_unpack((uint8_t *)b.data, b.len, b.len, &back, errbuf), FL_OK);
	fl_wire_free(back);
	free_built(&m->base);
	fl_buf_fini(&b);
}
END_TEST

/* Every prefix of every body either decodes or fails cleanly; so does every
 * single-byte corruption. Nothing leaks or crashes (ASan). */
START_TEST(truncated_and_corrupted_input)
{
	const ProtobufCMessageDescriptor *d = &flotilla__v1__message__descriptor;
	struct filler fl = {0};
	size_t refused = 0, decoded = 0, inner_decoded = 0;

	for (unsigned i = 0; i < d->n_fields; i++) {
		if (!(d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue; /* reply_to_seq */
		unsigned variants =
		    d->fields[i].descriptor == &flotilla__v1__admin_request__descriptor ||
		            d->fields[i].descriptor == &flotilla__v1__admin_response__descriptor
		        ? VARIANTS
		        : 4;

		for (unsigned v = 0; v < variants; v++) {
			struct fl_buf b = FL_BUF_INIT;
			Flotilla__V1__Message *m, *back;
			char errbuf[FL_ERRBUF_SIZE];
			uint8_t *copy;

			fl.variant = v;
			m = build_body(&fl, &d->fields[i]);
			pack(m, &b);
			for (size_t len = 0; len < b.len; len++) {
				back = NULL;
				if (fl_wire_unpack((uint8_t *)b.data, len, FL_WIRE_MAX_MESSAGE,
				                   &back, errbuf) == FL_OK) {
					ck_assert_ptr_nonnull(back);
					decoded++;
				} else {
					ck_assert_ptr_null(back);
					ck_assert(errbuf[0] != '\0');
					refused++;
				}
				fl_wire_free(back);
			}
			/* Every prefix of the body inside a well-formed Message:
			 * the body decodes as far as it goes, then the rules judge. */
			{
				const ProtobufCMessage *body =
				    *(ProtobufCMessage *const *)((const char *)m +
				                                 d->fields[i].offset);
				struct fl_buf raw = FL_BUF_INIT, outer = FL_BUF_INIT;

				raw_pack(body, &raw);
				for (size_t len = 0; len <= raw.len; len++) {
					fl_buf_reset(&outer);
					put_field(&outer, d->fields[i].id, raw.data, len);
					back = NULL;
					if (fl_wire_unpack((uint8_t *)outer.data, outer.len,
					                   FL_WIRE_MAX_MESSAGE, &back,
					                   errbuf) == FL_OK)
						inner_decoded++;
					else
						ck_assert_ptr_null(back);
					fl_wire_free(back);
				}
				fl_buf_fini(&raw);
				fl_buf_fini(&outer);
			}
			/* An exact-length copy, so ASan sees any read past the end. */
			copy = fl_malloc(b.len);
			for (size_t at = 0; at < b.len; at++) {
				static const uint8_t flips[] = {0x00, 0xff, 0x80, 0x7f};

				for (size_t k = 0; k < sizeof flips; k++) {
					memcpy(copy, b.data, b.len);
					copy[at] ^= flips[k] ? flips[k] : copy[at];
					back = NULL;
					if (fl_wire_unpack(copy, b.len, FL_WIRE_MAX_MESSAGE, &back,
					                   errbuf) != FL_OK)
						ck_assert_ptr_null(back);
					fl_wire_free(back);
				}
			}
			free(copy);
			free_built(&m->base);
			fl_buf_fini(&b);
		}
	}
	/* A Message has one top-level field, so no proper prefix holds a body. */
	ck_assert_uint_gt(refused, 1000);
	ck_assert_uint_eq(decoded, 0);
	ck_assert_uint_gt(inner_decoded, 11); /* at least every whole body */
}
END_TEST

/* The same for release files, where a prefix may end between two fields. */
START_TEST(truncated_release_files)
{
	struct filler fl = {0};
	Flotilla__V1__ReleaseBundle *bundle, *bb;
	Flotilla__V1__SignedRelease *sr, *sb;
	struct fl_buf a = FL_BUF_INIT, b = FL_BUF_INIT;
	char errbuf[FL_ERRBUF_SIZE];
	size_t decoded = 0;

	bundle =
	    (Flotilla__V1__ReleaseBundle *)fill(&fl, &flotilla__v1__release_bundle__descriptor);
	sr = (Flotilla__V1__SignedRelease *)fill(&fl, &flotilla__v1__signed_release__descriptor);
	ck_assert_int_eq(fl_wire_pack_release_bundle(bundle, &a, FL_WIRE_MAX_RELEASE, errbuf),
	                 FL_OK);
	ck_assert_int_eq(fl_wire_pack_signed_release(sr, &b, FL_WIRE_MAX_RELEASE, errbuf), FL_OK);
	for (size_t len = 0; len <= a.len; len++) {
		uint8_t *copy = fl_malloc(len);

		memcpy(copy, a.data, len);
		bb = NULL;
		if (fl_wire_unpack_release_bundle(copy, len, FL_WIRE_MAX_RELEASE, &bb, errbuf) ==
		    FL_OK)
			decoded++;
		else
			ck_assert_ptr_null(bb);
		fl_wire_free_release_bundle(bb);
		free(copy);
	}
	for (size_t len = 0; len <= b.len; len++) {
		uint8_t *copy = fl_malloc(len);

		memcpy(copy, b.data, len);
		sb = NULL;
		if (fl_wire_unpack_signed_release(copy, len, FL_WIRE_MAX_RELEASE, &sb, errbuf) ==
		    FL_OK)
			decoded++;
		else
			ck_assert_ptr_null(sb);
		fl_wire_free_signed_release(sb);
		free(copy);
	}
	/* The empty prefix, those ending between fields, and the whole. */
	ck_assert_uint_gt(decoded, 4);
	free_built(&bundle->base);
	free_built(&sr->base);
	fl_buf_fini(&a);
	fl_buf_fini(&b);
}
END_TEST

static Suite *wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("core");

	memset(key_bytes, 0x11, sizeof key_bytes);
	memset(hash_bytes, 0x22, sizeof hash_bytes);
	memset(sig_bytes, 0x33, sizeof sig_bytes);
	tcase_set_timeout(tc, 100);
	tcase_add_test(tc, round_trip_every_body);
	tcase_add_test(tc, round_trip_release_files);
	tcase_add_test(tc, every_message_type_covered);
	tcase_add_test(tc, hello_by_name);
	tcase_add_test(tc, work_assignment_by_name);
	tcase_add_test(tc, report_by_name);
	tcase_add_test(tc, release_format_is_fixed);
	tcase_add_test(tc, release_bundle_deterministic);
	tcase_add_test(tc, admin_by_name);
	tcase_add_test(tc, admin_commands_pair);
	tcase_add_test(tc, body_names);
	tcase_add_test(tc, unknown_fields_ignored);
	tcase_add_test(tc, empty_body_refused);
	tcase_add_test(tc, bad_key_length_refused);
	tcase_add_test(tc, bad_hash_and_signature_length_refused);
	tcase_add_test(tc, bad_strings_refused);
	tcase_add_test(tc, unknown_enum_value_refused);
	tcase_add_test(tc, missing_required_parts_refused);
	tcase_add_test(tc, repeated_counts_bounded);
	tcase_add_test(tc, amplification_refused_before_decoding);
	tcase_add_test(tc, unknown_fields_flood_refused);
	tcase_add_test(tc, packed_entries_counted);
	tcase_add_test(tc, memory_predicted_and_bounded);
	tcase_add_test(tc, real_messages_fit_the_memory_limit);
	tcase_add_test(tc, duplicates_refused);
	tcase_add_test(tc, unknown_fields_refused_in_assignments);
	tcase_add_test(tc, oversize_refused);
	tcase_add_test(tc, truncated_and_corrupted_input);
	tcase_add_test(tc, truncated_release_files);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wire_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
