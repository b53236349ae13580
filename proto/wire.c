/*
 * Packing and unpacking of flotilla's protobuf messages (see wire.h).
 *
 * The checks are driven by protobuf-c's descriptors rather than written per
 * message, so a field added to flotilla.proto is checked from the day it is
 * added, by its type and name:
 * - check_msg() walks a message struct: declared enum values, valid UTF-8,
 *   fixed sizes of bytes fields by name, oneofs set, repeated counts, plus
 *   the few per-field rules of `rules` (always-present submessages, tighter
 *   caps) and semantic checks that protect against accidents (selectors).
 * - scan() walks the raw bytes before protobuf-c decodes them: it counts
 *   repeated entries and submessages against their caps (two bytes of input
 *   can cost protobuf-c an allocation of tens of bytes, so counts are refused
 *   before anything is allocated), and finds NUL inside strings: protobuf-c
 *   copies strings as C strings, so "a\0b" would silently arrive as "a".
 * flotilla.proto has no recursive message, so the depth of both walks is
 * bounded by the schema; MAX_DEPTH is a second guard. Neither allocates.
 */
#include "wire.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "utf8.h"

#define MAX_DEPTH 32
/* Submessages and repeated entries in one message, counted before protobuf-c
 * allocates anything: each costs it an allocation of tens of bytes for two
 * bytes of input, so this bounds what a peer can make us allocate. */
#define MAX_ELEMENTS (4 * FL_WIRE_MAX_REPEATED)
#define MAX_FIELDS   128 /* per-field counters in scan(); more fields: no per-field cap */

enum rule_kind {
	RULE_PRESENT,   /* a singular submessage field must be set */
	RULE_MAX_COUNT, /* a repeated field holds at most n entries */
};

struct rule {
	const ProtobufCMessageDescriptor *desc;
	const char *field;
	enum rule_kind kind;
	size_t n;
};

/* The fields flotilla.proto calls "always present", and tighter caps. Each
 * rule must name a real field (asserted), so a rename cannot drop a check. */
static const struct rule rules[] = {
    {&flotilla__v1__admin_response__descriptor, "status", RULE_PRESENT, 0},
    {&flotilla__v1__signed_release__descriptor, "signatures", RULE_MAX_COUNT,
     FL_WIRE_MAX_SIGNATURES},
    {&flotilla__v1__signed_order__descriptor, "signatures", RULE_MAX_COUNT, FL_WIRE_MAX_SIGNATURES},
    {&flotilla__v1__rollout_order__descriptor, "selector", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_order__descriptor, "policy", RULE_PRESENT, 0},
    {&flotilla__v1__rollback_order__descriptor, "selector", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_policy__descriptor, "retry", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_policy__descriptor, "waves", RULE_MAX_COUNT, FL_WIRE_MAX_WAVES},
    {&flotilla__v1__rollout_policy__descriptor, "checks", RULE_MAX_COUNT,
     FL_WIRE_MAX_HEALTH_CHECKS},
    {&flotilla__v1__rollout_policy__descriptor, "windows", RULE_MAX_COUNT, FL_WIRE_MAX_WINDOWS},
    {&flotilla__v1__wave_policy__descriptor, "select", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_info__descriptor, "selector", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_plan_request__descriptor, "order", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_plan_response__descriptor, "plan", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_start_response__descriptor, "plan", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_pause_response__descriptor, "rollout", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_resume_response__descriptor, "rollout", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_promote_response__descriptor, "rollout", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_halt_response__descriptor, "rollout", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_rollback_response__descriptor, "rollout", RULE_PRESENT, 0},
    {&flotilla__v1__rollout_retry_response__descriptor, "rollout", RULE_PRESENT, 0},
    {&flotilla__v1__release_push_response__descriptor, "release", RULE_PRESENT, 0},
    {&flotilla__v1__agent_approve_response__descriptor, "agent", RULE_PRESENT, 0},
    {&flotilla__v1__agent_revoke_response__descriptor, "agent", RULE_PRESENT, 0},
    {&flotilla__v1__stored_report__descriptor, "report", RULE_PRESENT, 0},
    {&flotilla__v1__tenant_show_response__descriptor, "tenant", RULE_PRESENT, 0},
};

/* Where a walk is, kept as frames and formatted only when a check fails. */
struct frame {
	const char *name;
	size_t index; /* SIZE_MAX: not an element of a repeated field */
};

struct walk {
	char *errbuf;
	enum fl_err err;  /* FL_EPARSE unpacking a peer's bytes, FL_EINVAL packing ours */
	const char *what; /* full name of the top message, "flotilla.v1.Message" */
	struct frame frames[MAX_DEPTH * 2];
	size_t depth;
	size_t elements; /* repeated entries and submessages seen by scan() */
};

static void walk_init(struct walk *w, char *errbuf, enum fl_err err, const char *what)
{
	w->errbuf = errbuf;
	w->err = err;
	w->what = what;
	w->depth = 0;
	w->elements = 0;
}

static bool push(struct walk *w, const char *name, size_t index)
{
	if (w->depth >= sizeof w->frames / sizeof w->frames[0])
		return false;
	w->frames[w->depth].name = name;
	w->frames[w->depth].index = index;
	w->depth++;
	return true;
}

static void pop(struct walk *w)
{
	assert(w->depth > 0);
	w->depth--;
}

static enum fl_err fail(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum fl_err fail(struct walk *w, const char *fmt, ...)
{
	char path[512], msg[512];
	size_t len = 0;
	va_list ap;

	path[0] = '\0';
	for (size_t i = 0; i < w->depth && len < sizeof path; i++) {
		const struct frame *f = &w->frames[i];
		int n;

		if (f->index == SIZE_MAX)
			n = snprintf(path + len, sizeof path - len, "%s%s", i ? "." : "", f->name);
		else
			n = snprintf(path + len, sizeof path - len, "%s%s[%zu]", i ? "." : "",
			             f->name, f->index);
		if (n < 0)
			break;
		len += (size_t)n;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (w->depth == 0)
		return fl_errf(w->errbuf, w->err, "invalid %s: %s", w->what, msg);
	return fl_errf(w->errbuf, w->err, "invalid %s: %s: %s", w->what, path, msg);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The size a bytes field must have, by the naming rule of flotilla.proto;
 * 0 for any size. */
static size_t fixed_len(const char *name)
{
	if (ends_with(name, "public_key"))
		return FL_WIRE_KEY_LEN;
	if (ends_with(name, "_hash"))
		return FL_WIRE_HASH_LEN;
	if (strcmp(name, "signature") == 0 || ends_with(name, "_signature"))
		return FL_WIRE_SIGNATURE_LEN;
	return 0;
}

static enum fl_err check_msg(struct walk *w, const ProtobufCMessage *m);

/* One value of field f at p: a singular field, or one element of a repeated one. */
static enum fl_err check_value(struct walk *w, const ProtobufCFieldDescriptor *f, const void *p,
                               bool must_be_set)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_ENUM: {
		int v;

		memcpy(&v, p, sizeof v);
		if (protobuf_c_enum_descriptor_get_value(f->descriptor, v) == NULL)
			return fail(w, "%d is not a value of %s", v,
			            ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
		return FL_OK;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		size_t bad;

		/* NULL packs as "" (protobuf-c); unpacked strings are never NULL. */
		if (s != NULL && !fl_utf8_valid(s, strlen(s), &bad))
			return fail(w, "not valid UTF-8 at byte %zu", bad);
		return FL_OK;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		size_t want = fixed_len(f->name);

		if (b->len > 0 && b->data == NULL)
			return fail(w, "%zu bytes without data", b->len);
		if (want && b->len != want)
			return fail(w, "%zu bytes where %zu are needed", b->len, want);
		return FL_OK;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;

		if (sub == NULL)
			return must_be_set ? fail(w, "set but empty") : FL_OK;
		if (sub->descriptor != f->descriptor)
			return fail(w, "a %s where a %s belongs", sub->descriptor->name,
			            ((const ProtobufCMessageDescriptor *)f->descriptor)->name);
		return check_msg(w, sub);
	}
	default:
		return FL_OK;
	}
}

/* Bytes per element of a repeated field of type t. */
static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
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
	}
	assert(!"unknown protobuf-c type");
	return 0;
}

static enum fl_err check_repeated(struct walk *w, const ProtobufCFieldDescriptor *f,
                                  const char *base)
{
	size_t n, size = elem_size(f->type);
	const char *arr;
	enum fl_err rv;

	memcpy(&n, base + f->quantifier_offset, sizeof n);
	memcpy(&arr, base + f->offset, sizeof arr);
	if (n > FL_WIRE_MAX_REPEATED)
		return fail(w, "%zu entries, more than the limit of %d", n, FL_WIRE_MAX_REPEATED);
	if (n > 0 && arr == NULL)
		return fail(w, "%zu entries without data", n);
	/* Only these types have values to check. */
	if (f->type != PROTOBUF_C_TYPE_ENUM && f->type != PROTOBUF_C_TYPE_STRING &&
	    f->type != PROTOBUF_C_TYPE_BYTES && f->type != PROTOBUF_C_TYPE_MESSAGE)
		return FL_OK;
	for (size_t i = 0; i < n; i++) {
		w->frames[w->depth - 1].index = i;
		if ((rv = check_value(w, f, arr + i * size, true)) != FL_OK)
			return rv;
	}
	w->frames[w->depth - 1].index = SIZE_MAX;
	return FL_OK;
}

static uint32_t oneof_case(const char *base, const ProtobufCFieldDescriptor *f)
{
	uint32_t c;

	memcpy(&c, base + f->quantifier_offset, sizeof c);
	return c;
}

/* Whether a message may leave this oneof unset: only AdminResponse.result,
 * when the status says the command failed. */
static bool oneof_may_be_empty(const ProtobufCMessage *m)
{
	if (m->descriptor == &flotilla__v1__admin_response__descriptor) {
		const Flotilla__V1__AdminResponse *r = (const Flotilla__V1__AdminResponse *)m;

		return r->status == NULL ||
		       r->status->code != FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	}
	return false;
}

/* Whether fields f and g belong to the same oneof: its members share the
 * quantifier_offset, where the case is kept. */
static bool same_oneof(const ProtobufCFieldDescriptor *f, const ProtobufCFieldDescriptor *g)
{
	return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
	       (g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
	       f->quantifier_offset == g->quantifier_offset;
}

/* Every oneof of m is set to one of its members; its first member stands
 * for it. The members' names are gathered only for the message. */
static enum fl_err check_oneofs(struct walk *w, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		bool first = true, member = false;
		char names[512];
		size_t len = 0;
		uint32_t c;

		if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue;
		for (unsigned j = 0; j < i && first; j++)
			first = !same_oneof(&d->fields[j], f);
		if (!first)
			continue;
		c = oneof_case(base, f);
		for (unsigned j = i; j < d->n_fields && !member; j++)
			member = same_oneof(&d->fields[j], f) && d->fields[j].id == c;
		if (member || (c == 0 && oneof_may_be_empty(m)))
			continue;
		names[0] = '\0';
		for (unsigned j = i; j < d->n_fields && len < sizeof names; j++) {
			int n;

			if (!same_oneof(&d->fields[j], f))
				continue;
			n = snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "",
			             d->fields[j].name);
			if (n < 0)
				break;
			len += (size_t)n;
		}
		if (c == 0)
			return fail(w, "none of %s is set", names);
		return fail(w, "oneof case %u is none of %s", (unsigned)c, names);
	}
	return FL_OK;
}

static enum fl_err check_rules(struct walk *w, const ProtobufCMessage *m)
{
	const char *base = (const char *)m;
	enum fl_err rv = FL_OK;

	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		const struct rule *r = &rules[i];
		const ProtobufCFieldDescriptor *f;
		const void *sub;
		size_t n;

		if (r->desc != m->descriptor)
			continue;
		f = protobuf_c_message_descriptor_get_field_by_name(r->desc, r->field);
		assert(f != NULL);
		if (!push(w, f->name, SIZE_MAX))
			return fail(w, "nested too deeply");
		switch (r->kind) {
		case RULE_PRESENT:
			assert(f->type == PROTOBUF_C_TYPE_MESSAGE &&
			       f->label == PROTOBUF_C_LABEL_NONE &&
			       !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF));
			memcpy(&sub, base + f->offset, sizeof sub);
			if (sub == NULL)
				rv = fail(w, "missing");
			break;
		case RULE_MAX_COUNT:
			assert(f->label == PROTOBUF_C_LABEL_REPEATED);
			memcpy(&n, base + f->quantifier_offset, sizeof n);
			if (n > r->n)
				rv = fail(w, "%zu entries, more than the limit of %zu", n, r->n);
			break;
		}
		pop(w);
		if (rv != FL_OK)
			return rv;
	}
	return FL_OK;
}

/* Checks no descriptor can express. */
static enum fl_err check_meaning(struct walk *w, const ProtobufCMessage *m)
{
	if (m->descriptor == &flotilla__v1__tenant_selector__descriptor) {
		const Flotilla__V1__TenantSelector *s = (const Flotilla__V1__TenantSelector *)m;

		/* An empty selector never means the whole fleet by accident. */
		if (s->n_labels == 0 && s->n_tenant_ids == 0 && !s->all)
			return fail(w, "selects no tenant: give labels, tenant ids or all");
	}
	return FL_OK;
}

static enum fl_err check_msg(struct walk *w, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	enum fl_err rv;

	if (w->depth >= MAX_DEPTH)
		return fail(w, "nested too deeply");
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		bool oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;

		/* proto3 only: no proto2 optional or required fields. */
		assert(f->label == PROTOBUF_C_LABEL_NONE || f->label == PROTOBUF_C_LABEL_REPEATED);
		if (oneof && oneof_case(base, f) != f->id)
			continue;
		if (!push(w, f->name, SIZE_MAX))
			return fail(w, "nested too deeply");
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			rv = check_repeated(w, f, base);
		else
			rv = check_value(w, f, base + f->offset, oneof);
		pop(w);
		if (rv != FL_OK)
			return rv;
	}
	if ((rv = check_oneofs(w, m)) != FL_OK || (rv = check_rules(w, m)) != FL_OK)
		return rv;
	return check_meaning(w, m);
}

/* A varint at p[*i..len), moving *i past it. */
static bool varint(const uint8_t *p, size_t len, size_t *i, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *i < len; shift += 7) {
		uint8_t b = p[(*i)++];

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

/* The most entries a repeated field f of d may hold. */
static size_t repeated_cap(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].desc == d && rules[i].kind == RULE_MAX_COUNT &&
		    strcmp(rules[i].field, f->name) == 0)
			return rules[i].n;
	return FL_WIRE_MAX_REPEATED;
}

/* Count one occurrence of field f in a message of type d; fail past its cap. */
static enum fl_err count(struct walk *w, const ProtobufCMessageDescriptor *d,
                         const ProtobufCFieldDescriptor *f, size_t counts[MAX_FIELDS])
{
	size_t idx = (size_t)(f - d->fields);

	if (f->label != PROTOBUF_C_LABEL_REPEATED && f->type != PROTOBUF_C_TYPE_MESSAGE)
		return FL_OK;
	if (++w->elements > MAX_ELEMENTS)
		return fail(w, "more than %d submessages and repeated entries", MAX_ELEMENTS);
	if (f->label == PROTOBUF_C_LABEL_REPEATED && idx < MAX_FIELDS &&
	    ++counts[idx] > repeated_cap(d, f))
		return fail(w, "%s: %zu entries, more than the limit of %zu", f->name, counts[idx],
		            repeated_cap(d, f));
	return FL_OK;
}

/* Walk the raw bytes of a message of type d before protobuf-c decodes them:
 * count repeated entries and submessages against their caps, so that a few
 * bytes of input can never make us allocate much, and find NUL inside string
 * fields, which protobuf-c would silently cut. */
static enum fl_err scan(struct walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                        size_t len)
{
	size_t i = 0, counts[MAX_FIELDS] = {0};

	if (w->depth >= MAX_DEPTH)
		return fail(w, "nested too deeply");
	while (i < len) {
		const ProtobufCFieldDescriptor *f;
		uint64_t key, n;
		enum fl_err rv = FL_OK;

		if (!varint(p, len, &i, &key))
			return fail(w, "malformed tag at byte %zu", i);
		f = (key >> 3) <= UINT32_MAX
		        ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
		        : NULL;
		if (f != NULL && (rv = count(w, d, f, counts)) != FL_OK)
			return rv;
		switch (key & 7) {
		case 0: /* varint */
			if (!varint(p, len, &i, &n))
				return fail(w, "malformed varint at byte %zu", i);
			break;
		case 1: /* 64-bit */
			if (len - i < 8)
				return fail(w, "truncated at byte %zu", i);
			i += 8;
			break;
		case 5: /* 32-bit */
			if (len - i < 4)
				return fail(w, "truncated at byte %zu", i);
			i += 4;
			break;
		case 2: /* length-delimited */
			if (!varint(p, len, &i, &n) || n > len - i)
				return fail(w, "truncated at byte %zu", i);
			if (f != NULL && (f->type == PROTOBUF_C_TYPE_STRING ||
			                  f->type == PROTOBUF_C_TYPE_MESSAGE)) {
				if (!push(w, f->name, SIZE_MAX))
					return fail(w, "nested too deeply");
				if (f->type == PROTOBUF_C_TYPE_STRING &&
				    memchr(p + i, 0, (size_t)n))
					rv = fail(w, "NUL byte in a string");
				else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
					rv = scan(w, f->descriptor, p + i, (size_t)n);
				pop(w);
				if (rv != FL_OK)
					return rv;
			}
			i += (size_t)n;
			break;
		default:
			return fail(w, "unsupported wire type %u", (unsigned)(key & 7));
		}
	}
	return FL_OK;
}

/* protobuf-c allocates through fl_malloc, so NULL from unpack always means
 * malformed input, never out-of-memory. */
static void *pb_alloc(void *data, size_t size)
{
	(void)data;
	return fl_malloc(size);
}

static void pb_free(void *data, void *p)
{
	(void)data;
	free(p);
}

static ProtobufCAllocator allocator = {pb_alloc, pb_free, NULL};

struct sink {
	ProtobufCBuffer base; /* first: protobuf-c hands us &base */
	struct fl_buf *out;
	bool failed;
};

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	struct sink *s = (struct sink *)b;

	if (!s->failed && fl_buf_append(s->out, data, len) != FL_OK)
		s->failed = true;
}

static enum fl_err pack_any(const ProtobufCMessage *m, struct fl_buf *out, size_t max, char *errbuf)
{
	struct sink s = {{sink_append}, out, false};
	size_t start = out->len, size, packed;
	struct walk w;
	enum fl_err rv;

	walk_init(&w, errbuf, FL_EINVAL, m->descriptor->name);
	if ((rv = check_msg(&w, m)) != FL_OK)
		return rv;
	size = protobuf_c_message_get_packed_size(m);
	if (size > max)
		return fl_errf(errbuf, FL_EINVAL, "message of %zu bytes exceeds the limit of %zu",
		               size, max);
	if (out->max && (out->len > out->max || size > out->max - out->len))
		return fl_errf(errbuf, FL_EINVAL,
		               "message of %zu bytes does not fit the output buffer", size);
	packed = protobuf_c_message_pack_to_buffer(m, &s.base);
	if (s.failed) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
		return fl_errf(errbuf, FL_EINVAL,
		               "message of %zu bytes does not fit the output buffer", size);
	}
	assert(packed == size);
	return FL_OK;
}

static enum fl_err unpack_any(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                              size_t max, ProtobufCMessage **out, char *errbuf)
{
	static const uint8_t none[1];
	ProtobufCMessage *m;
	struct walk w;
	enum fl_err rv;

	*out = NULL;
	if (len > max)
		return fl_errf(errbuf, FL_EINVAL, "message of %zu bytes exceeds the limit of %zu",
		               len, max);
	assert(data != NULL || len == 0);
	if (data == NULL)
		data = none;
	walk_init(&w, errbuf, FL_EPARSE, d->name);
	if ((rv = scan(&w, d, data, len)) != FL_OK)
		return rv;
	m = protobuf_c_message_unpack(d, &allocator, len, data);
	if (m == NULL)
		return fl_errf(errbuf, FL_EPARSE,
		               "cannot decode %s of %zu bytes: malformed protobuf", d->name, len);
	if ((rv = check_msg(&w, m)) != FL_OK) {
		protobuf_c_message_free_unpacked(m, &allocator);
		return rv;
	}
	*out = m;
	return FL_OK;
}

static void free_any(ProtobufCMessage *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, &allocator);
}

enum fl_err fl_wire_pack(const Flotilla__V1__Message *m, struct fl_buf *out, size_t max,
                         char *errbuf)
{
	return pack_any(&m->base, out, max, errbuf);
}

enum fl_err fl_wire_unpack(const uint8_t *data, size_t len, size_t max, Flotilla__V1__Message **out,
                           char *errbuf)
{
	return unpack_any(&flotilla__v1__message__descriptor, data, len, max,
	                  (ProtobufCMessage **)out, errbuf);
}

void fl_wire_free(Flotilla__V1__Message *m)
{
	free_any(m ? &m->base : NULL);
}

enum fl_err fl_wire_pack_signed_release(const Flotilla__V1__SignedRelease *m, struct fl_buf *out,
                                        size_t max, char *errbuf)
{
	return pack_any(&m->base, out, max, errbuf);
}

enum fl_err fl_wire_unpack_signed_release(const uint8_t *data, size_t len, size_t max,
                                          Flotilla__V1__SignedRelease **out, char *errbuf)
{
	return unpack_any(&flotilla__v1__signed_release__descriptor, data, len, max,
	                  (ProtobufCMessage **)out, errbuf);
}

void fl_wire_free_signed_release(Flotilla__V1__SignedRelease *m)
{
	free_any(m ? &m->base : NULL);
}

enum fl_err fl_wire_pack_release_bundle(const Flotilla__V1__ReleaseBundle *m, struct fl_buf *out,
                                        size_t max, char *errbuf)
{
	return pack_any(&m->base, out, max, errbuf);
}

enum fl_err fl_wire_unpack_release_bundle(const uint8_t *data, size_t len, size_t max,
                                          Flotilla__V1__ReleaseBundle **out, char *errbuf)
{
	return unpack_any(&flotilla__v1__release_bundle__descriptor, data, len, max,
	                  (ProtobufCMessage **)out, errbuf);
}

void fl_wire_free_release_bundle(Flotilla__V1__ReleaseBundle *m)
{
	free_any(m ? &m->base : NULL);
}

static const char *case_name(const ProtobufCMessageDescriptor *d, int c)
{
	const ProtobufCFieldDescriptor *f;

	if (c == 0)
		return "none";
	if (c < 0)
		return "unknown";
	f = protobuf_c_message_descriptor_get_field(d, (unsigned)c);
	if (f == NULL || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
		return "unknown";
	return f->name;
}

const char *fl_wire_body_name(int body_case)
{
	return case_name(&flotilla__v1__message__descriptor, body_case);
}

const char *fl_wire_admin_command_name(int command_case)
{
	return case_name(&flotilla__v1__admin_request__descriptor, command_case);
}

Flotilla__V1__Role fl_wire_admin_command_role(int command_case)
{
	/* No default: -Wswitch names a command added without a role here. The
	 * comments on AdminRequest's fields say the same (a test compares). */
	switch ((Flotilla__V1__AdminRequest__CommandCase)command_case) {
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_LIST:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PLAN:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_STATUS:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_DRIFT:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_TENANT_SHOW:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AUDIT_QUERY:
		return FLOTILLA__V1__ROLE__ROLE_VIEWER;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_PUSH:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_START:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PAUSE:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_RESUME:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PROMOTE:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_HALT:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_ROLLBACK:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_RETRY:
		return FLOTILLA__V1__ROLE__ROLE_RELEASE_MANAGER;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_APPROVE:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_REVOKE:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ENROLLMENT_TOKEN_CREATE:
		return FLOTILLA__V1__ROLE__ROLE_ADMIN;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND__NOT_SET:
	case _FLOTILLA__V1__ADMIN_REQUEST__COMMAND__CASE_IS_INT_SIZE:
		break;
	}
	return FLOTILLA__V1__ROLE__ROLE_ADMIN;
}
