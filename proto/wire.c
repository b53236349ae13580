/*
 * Packing and unpacking of flotilla's protobuf messages (see wire.h).
 *
 * The checks are driven by protobuf-c's descriptors rather than written per
 * message, so a field added to flotilla.proto is checked from the day it is
 * added, by its type and name:
 * - scan() walks the raw bytes before protobuf-c decodes them. It counts
 *   every field occurrence (known, unknown, and each entry of a packed
 *   field) against FL_WIRE_MAX_OCCURRENCES, unknown ones against
 *   FL_WIRE_MAX_UNKNOWN and repeated entries against their caps, refuses a
 *   singular field or a oneof given twice (protobuf-c would merge or
 *   reallocate), refuses unknown fields in strict messages, finds NUL inside
 *   strings (protobuf-c copies strings as C strings, so "a\0b" would silently
 *   arrive as "a"), and, for fl_wire_unpack_from, asks the role table
 *   whether the sender may send this body (and command) at this size. All of
 *   it before a byte is allocated: two bytes of input can cost protobuf-c an
 *   allocation of a hundred.
 * - The same walk predicts every byte protobuf-c will allocate (structs,
 *   arrays, strings, copies of unknown fields, its scanned-member slabs:
 *   read from protobuf-c.c 1.4's unpack), and an input that would take more
 *   than FL_WIRE_MEMORY(len) is refused. protobuf-c then decodes through an
 *   allocator whose budget is that prediction (and a margin), which fails an
 *   allocation past it: protobuf-c then frees what it built and returns NULL
 *   (every do_alloc result is checked), so a shape the prediction got wrong
 *   costs a refusal, never memory.
 * - check_msg() walks the decoded struct: declared enum values, valid UTF-8,
 *   fixed sizes of bytes fields by name, oneofs set, repeated counts, plus
 *   the few per-field rules of `rules` (always-present submessages, non-empty
 *   bytes, tighter caps, messages that refuse unknown fields) and semantic
 *   checks that protect against accidents (selectors).
 * flotilla.proto has no recursive message, so the depth of both walks is
 * bounded by the schema; MAX_DEPTH is a second guard. Neither walk allocates.
 */
#include "wire.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "roles.h"
#include "utf8.h"

#define MAX_DEPTH  32
#define MAX_FIELDS 128 /* fields per message scan() tracks (asserted in tests) */
#define MAX_ONEOFS 8   /* oneofs per message */
#define ALLOC_HDR  16  /* bytes before each block: its size, keeping 16-byte alignment */
/* protobuf-c 1.4's scanned-member slabs (protobuf-c.c): 16 members on its
 * stack, then allocations doubling from 32; each member 32 bytes on LP64. */
#define SLAB_FIRST          16
#define SCANNED_MEMBER_SIZE (4 + 1 + 1 + 2 + 3 * sizeof(void *))

enum rule_kind {
	RULE_PRESENT,    /* a singular submessage field must be set */
	RULE_MAX_COUNT,  /* a repeated field holds at most n entries */
	RULE_NONEMPTY,   /* a bytes field must not be empty */
	RULE_NO_UNKNOWN, /* the message refuses unknown fields (field: NULL) */
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
    /* Every field of an assignment decides what runs: none may be dropped
     * unseen by an agent that does not know it. */
    {&flotilla__v1__work_assignment__descriptor, NULL, RULE_NO_UNKNOWN, 0},
    {&flotilla__v1__work_assignment__descriptor, "signed_order", RULE_NONEMPTY, 0},
    {&flotilla__v1__signed_release__descriptor, "signatures", RULE_MAX_COUNT,
     FL_WIRE_MAX_SIGNATURES},
    {&flotilla__v1__signed_order__descriptor, "signatures", RULE_MAX_COUNT, FL_WIRE_MAX_SIGNATURES},
    {&flotilla__v1__signed_order__descriptor, "order", RULE_NONEMPTY, 0},
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
    {&flotilla__v1__rollout_plan_request__descriptor, "signed_order", RULE_NONEMPTY, 0},
    {&flotilla__v1__rollout_start_request__descriptor, "signed_order", RULE_NONEMPTY, 0},
    {&flotilla__v1__rollout_rollback_request__descriptor, "signed_rollback_order", RULE_NONEMPTY,
     0},
    {&flotilla__v1__release_push_request__descriptor, "signed_release", RULE_NONEMPTY, 0},
    {&flotilla__v1__release_bundle_reply__descriptor, "signed_release", RULE_NONEMPTY, 0},
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
	unsigned flags;              /* FL_WIRE_STRICT */
	size_t total;                /* bytes of the whole input (role caps apply to it) */
	size_t occurrences, unknown; /* counted by scan() */
	size_t predicted;            /* bytes protobuf-c will allocate, by scan() */
	/* fl_wire_unpack_from: the sender, and what scan() found at the top. */
	bool by_role;
	enum fl_peer_role role;
	int body_case, command_case;
};

static void walk_init(struct walk *w, char *errbuf, enum fl_err err, const char *what)
{
	memset(w, 0, sizeof(*w));
	w->errbuf = errbuf;
	w->err = err;
	w->what = what;
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

static enum fl_err fail_as(struct walk *w, enum fl_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum fl_err vfail(struct walk *w, enum fl_err err, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static enum fl_err vfail(struct walk *w, enum fl_err err, const char *fmt, va_list ap)
{
	char path[512], msg[512];
	size_t len = 0;

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
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (w->depth == 0)
		return fl_errf(w->errbuf, err, "invalid %s: %s", w->what, msg);
	return fl_errf(w->errbuf, err, "invalid %s: %s: %s", w->what, path, msg);
}

static enum fl_err fail_as(struct walk *w, enum fl_err err, const char *fmt, ...)
{
	va_list ap;
	enum fl_err rv;

	va_start(ap, fmt);
	rv = vfail(w, err, fmt, ap);
	va_end(ap);
	return rv;
}

static enum fl_err fail(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum fl_err fail(struct walk *w, const char *fmt, ...)
{
	va_list ap;
	enum fl_err rv;

	va_start(ap, fmt);
	rv = vfail(w, w->err, fmt, ap);
	va_end(ap);
	return rv;
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

/* Whether messages of type d refuse unknown fields (always, or in strict mode). */
static bool strict_type(const struct walk *w, const ProtobufCMessageDescriptor *d)
{
	if (w->flags & FL_WIRE_STRICT)
		return true;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		if (rules[i].desc == d && rules[i].kind == RULE_NO_UNKNOWN)
			return true;
	return false;
}

static enum fl_err check_rules(struct walk *w, const ProtobufCMessage *m)
{
	const char *base = (const char *)m;
	enum fl_err rv = FL_OK;

	if (m->n_unknown_fields > 0 && strict_type(w, m->descriptor))
		return fail(w, "unknown field %u: refused here, every field decides what runs",
		            (unsigned)m->unknown_fields[0].tag);
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		const struct rule *r = &rules[i];
		const ProtobufCFieldDescriptor *f;
		const ProtobufCBinaryData *bd;
		const void *sub;
		size_t n;

		if (r->desc != m->descriptor || r->kind == RULE_NO_UNKNOWN)
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
		case RULE_NONEMPTY:
			assert(f->type == PROTOBUF_C_TYPE_BYTES &&
			       f->label == PROTOBUF_C_LABEL_NONE);
			bd = (const ProtobufCBinaryData *)(base + f->offset);
			if (bd->len == 0)
				rv = fail(w, "empty");
			break;
		case RULE_NO_UNKNOWN:
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

static bool packable(ProtobufCType t)
{
	return t != PROTOBUF_C_TYPE_STRING && t != PROTOBUF_C_TYPE_BYTES &&
	       t != PROTOBUF_C_TYPE_MESSAGE;
}

/* Entries in the packed field of type t at p[0..n): what protobuf-c will
 * allocate elements for. False when it will refuse them anyway. */
static bool packed_entries(ProtobufCType t, const uint8_t *p, size_t n, size_t *entries)
{
	size_t k = 0;

	switch (t) {
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		*entries = n / 4;
		return n % 4 == 0;
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		*entries = n / 8;
		return n % 8 == 0;
	default: /* varints: one ends at each byte without the continuation bit */
		for (size_t i = 0; i < n; i++)
			k += (p[i] & 0x80) == 0;
		*entries = k;
		return n == 0 || (p[n - 1] & 0x80) == 0;
	}
}

/* Count n more occurrences in this unpack; fail past the cap. */
static enum fl_err occur(struct walk *w, size_t n)
{
	if (n > FL_WIRE_MAX_OCCURRENCES - w->occurrences)
		return fail(w, "more than %u fields and entries", FL_WIRE_MAX_OCCURRENCES);
	w->occurrences += n;
	return FL_OK;
}

/* "an agent", "a viewer": the sender in messages. */
static const char *a_role(enum fl_peer_role role)
{
	switch (role) {
	case FL_PEER_AGENT:
		return "an agent";
	case FL_PEER_ADMIN:
		return "an admin";
	case FL_PEER_COORDINATOR:
		return "a coordinator";
	case FL_PEER_VIEWER:
		return "a viewer";
	case FL_PEER_RELEASE_MANAGER:
		return "a release-manager";
	case FL_PEER_NONE:
		break;
	}
	return "an unknown sender";
}

/* At the top of a Message from a known role: may it send this body, and is
 * the message within that body's cap? */
static enum fl_err check_body(struct walk *w, const ProtobufCFieldDescriptor *f)
{
	size_t cap;

	w->body_case = (int)f->id;
	if (!fl_roles_may_send_body(w->role, (int)f->id))
		return fail_as(w, FL_EAUTH, "%s may not send %s", a_role(w->role), f->name);
	if (f->id == FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST)
		return FL_OK; /* its cap depends on the command, found inside */
	cap = fl_roles_max_size(w->role, (int)f->id, 0);
	if (w->total > cap)
		return fail_as(w, FL_EINVAL, "%s of %zu bytes exceeds the limit of %zu for %s",
		               f->name, w->total, cap, a_role(w->role));
	return FL_OK;
}

/* Inside the admin_request of a Message from a known role: may it run this
 * command, and is the message within its cap? */
static enum fl_err check_command(struct walk *w, const ProtobufCFieldDescriptor *f)
{
	size_t cap;

	w->command_case = (int)f->id;
	if (!fl_roles_may_run(w->role, (int)f->id))
		return fail_as(w, FL_EAUTH, "%s may not run %s", a_role(w->role), f->name);
	cap = fl_roles_max_size(w->role, FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST, (int)f->id);
	if (w->total > cap)
		return fail_as(w, FL_EINVAL, "%s of %zu bytes exceeds the limit of %zu", f->name,
		               w->total, cap);
	return FL_OK;
}

/* What scan() remembers about one message while walking its bytes. */
struct seen {
	size_t counts[MAX_FIELDS];   /* occurrences (entries, for repeated fields) */
	unsigned oneofs[MAX_ONEOFS]; /* quantifier offsets of oneofs met */
	size_t n_oneofs;
};

/* One occurrence of known field f (index idx in d), whose packed entries are
 * `entries` (1 unless packed). */
static enum fl_err count_known(struct walk *w, const ProtobufCMessageDescriptor *d,
                               const ProtobufCFieldDescriptor *f, struct seen *s, size_t entries)
{
	size_t idx = (size_t)(f - d->fields), cap;
	enum fl_err rv = FL_OK;

	assert(idx < MAX_FIELDS);
	if (!push(w, f->name, SIZE_MAX))
		return fail(w, "nested too deeply");
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		cap = repeated_cap(d, f);
		/* Both terms are bounded by the input's size: no overflow. */
		if (s->counts[idx] + entries > cap)
			rv = fail(w, "%zu entries, more than the limit of %zu",
			          s->counts[idx] + entries, cap);
		s->counts[idx] += entries;
	} else if (++s->counts[idx] > 1) {
		/* A singular field or oneof twice: protobuf-c would merge or
		 * replace, and no encoder of ours ever writes it. */
		rv = fail(w, "given twice");
	} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		for (size_t i = 0; i < s->n_oneofs && rv == FL_OK; i++)
			if (s->oneofs[i] == f->quantifier_offset)
				rv = fail(w, "a second member of its oneof");
		if (rv == FL_OK) {
			assert(s->n_oneofs < MAX_ONEOFS);
			s->oneofs[s->n_oneofs++] = f->quantifier_offset;
		}
	}
	pop(w);
	if (rv != FL_OK || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || !w->by_role)
		return rv;
	if (d == &flotilla__v1__message__descriptor)
		return check_body(w, f);
	if (d == &flotilla__v1__admin_request__descriptor)
		return check_command(w, f);
	return FL_OK;
}

/* Walk the raw bytes of a message of type d before protobuf-c decodes them:
 * count what protobuf-c will allocate for, against the caps, so that a few
 * bytes of input can never make us allocate much; find NUL inside string
 * fields, which protobuf-c would silently cut; apply the role table. */
static enum fl_err scan(struct walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                        size_t len)
{
	struct seen s;
	size_t i = 0, members = 0, unknown = 0, cap = SLAB_FIRST;

	if (w->depth >= MAX_DEPTH)
		return fail(w, "nested too deeply");
	memset(&s, 0, sizeof(s));
	w->predicted += d->sizeof_message + ALLOC_HDR;
	while (i < len) {
		const ProtobufCFieldDescriptor *f;
		uint64_t key, n;
		size_t entries = 1, start;
		bool counted = false;
		enum fl_err rv = FL_OK;

		if (!varint(p, len, &i, &key))
			return fail(w, "malformed tag at byte %zu", i);
		f = (key >> 3) <= UINT32_MAX
		        ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
		        : NULL;
		if ((rv = occur(w, 1)) != FL_OK)
			return rv;
		/* protobuf-c's scanned-member slabs: 16 on its stack, then
		 * doubling allocations. */
		if (++members > cap) {
			size_t k = cap + SLAB_FIRST; /* the next slab's entries */

			w->predicted += k * SCANNED_MEMBER_SIZE + ALLOC_HDR;
			cap += k;
		}
		if (f == NULL) {
			if (strict_type(w, d))
				return fail(w,
				            "unknown field %llu: refused here, every field "
				            "decides what runs",
				            (unsigned long long)(key >> 3));
			if (++w->unknown > FL_WIRE_MAX_UNKNOWN)
				return fail(w, "more than %d unknown fields", FL_WIRE_MAX_UNKNOWN);
			unknown++;
		}
		start = i;
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
			if (f != NULL && f->label == PROTOBUF_C_LABEL_REPEATED &&
			    packable(f->type)) {
				if (!packed_entries(f->type, p + i, (size_t)n, &entries))
					return fail(w, "%s: malformed packed entries", f->name);
				if (entries > 0 && (rv = occur(w, entries - 1)) != FL_OK)
					return rv;
			}
			if (f != NULL && (rv = count_known(w, d, f, &s, entries)) != FL_OK)
				return rv;
			if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING)
				w->predicted += (size_t)n + 1 + ALLOC_HDR;
			else if (f != NULL && f->type == PROTOBUF_C_TYPE_BYTES && n > 0)
				w->predicted += (size_t)n + ALLOC_HDR;
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
			counted = true;
			break;
		default:
			return fail(w, "unsupported wire type %u", (unsigned)(key & 7));
		}
		/* An unknown field's bytes are copied, its length prefix included. */
		if (f == NULL)
			w->predicted += i - start + ALLOC_HDR;
		else if (!counted && (rv = count_known(w, d, f, &s, 1)) != FL_OK)
			return rv;
	}
	if (unknown > 0)
		w->predicted += unknown * sizeof(ProtobufCMessageUnknownField) + ALLOC_HDR;
	/* The arrays of repeated fields, one allocation each. */
	for (unsigned k = 0; k < d->n_fields; k++)
		if (d->fields[k].label == PROTOBUF_C_LABEL_REPEATED && s.counts[k] > 0)
			w->predicted += s.counts[k] * elem_size(d->fields[k].type) + ALLOC_HDR;
	return FL_OK;
}

/* The allocator protobuf-c decodes with. Each block carries its size in a
 * header, so that frees are counted; during an unpack, `data` is the budget
 * and an allocation past it fails (protobuf-c then returns NULL). Messages
 * are freed later with no budget. Out-of-memory still aborts (fl_malloc). */
struct budget {
	size_t limit, used, peak, total;
	bool over;
};

static void *pb_alloc(void *data, size_t size)
{
	struct budget *b = data;
	char *p;

	if (b != NULL) {
		if (size > b->limit || size + ALLOC_HDR > b->limit - b->used) {
			b->over = true;
			return NULL;
		}
		b->used += size + ALLOC_HDR;
		b->total += size + ALLOC_HDR;
		if (b->used > b->peak)
			b->peak = b->used;
	}
	p = fl_malloc(size + ALLOC_HDR);
	memcpy(p, &size, sizeof size);
	return p + ALLOC_HDR;
}

static void pb_free(void *data, void *ptr)
{
	struct budget *b = data;
	char *p = (char *)ptr - ALLOC_HDR;
	size_t size;

	memcpy(&size, p, sizeof size);
	if (b != NULL) {
		assert(b->used >= size + ALLOC_HDR);
		b->used -= size + ALLOC_HDR;
	}
	free(p);
}

static ProtobufCAllocator allocator = {pb_alloc, pb_free, NULL};

static _Thread_local struct fl_wire_stats last_stats;

void fl_wire_last_stats(struct fl_wire_stats *out)
{
	*out = last_stats;
}

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

_Thread_local long fl_wire_test_budget_delta;

/* Unpack with walk w set up (role, flags); see scan() and the allocator. */
static enum fl_err unpack_walk(struct walk *w, const ProtobufCMessageDescriptor *d,
                               const uint8_t *data, size_t len, ProtobufCMessage **out)
{
	static const uint8_t none[1];
	struct budget b = {0};
	ProtobufCAllocator budgeted = {pb_alloc, pb_free, &b};
	size_t limit = FL_WIRE_MEMORY(len);
	ProtobufCMessage *m;
	enum fl_err rv;

	assert(data != NULL || len == 0);
	if (data == NULL)
		data = none;
	memset(&last_stats, 0, sizeof(last_stats));
	last_stats.len = len;
	w->total = len;
	rv = scan(w, d, data, len);
	last_stats.occurrences = w->occurrences;
	last_stats.unknown = w->unknown;
	last_stats.predicted = w->predicted;
	if (rv != FL_OK)
		return rv;
	if (w->by_role && d == &flotilla__v1__message__descriptor && w->body_case == 0)
		return fail(w, "no body this build knows");
	/* Nor a command: it has no row in the table, hence no cap of its own. */
	if (w->by_role && w->body_case == FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST &&
	    w->command_case == 0)
		return fail(w, "admin_request: no command this build knows");
	if (w->predicted > limit)
		return fl_errf(w->errbuf, FL_EPARSE,
		               "invalid %s: %zu bytes would take %zu bytes of memory to decode, "
		               "more than the limit of %zu",
		               d->name, len, w->predicted, limit);
	/* The prediction is exact for protobuf-c 1.4; the margin absorbs a
	 * library that allocates a little differently. */
	b.limit = w->predicted + w->predicted / 8 + 4096;
	if (fl_wire_test_budget_delta < 0 && (size_t)-fl_wire_test_budget_delta < b.limit)
		b.limit -= (size_t)-fl_wire_test_budget_delta;
	else if (fl_wire_test_budget_delta > 0)
		b.limit += (size_t)fl_wire_test_budget_delta;
	last_stats.budget = b.limit;
	m = protobuf_c_message_unpack(d, &budgeted, len, data);
	last_stats.peak = b.peak;
	last_stats.allocated = b.total;
	last_stats.over_budget = b.over;
	if (m == NULL && b.over)
		return fl_errf(w->errbuf, FL_EPARSE,
		               "cannot decode %s of %zu bytes: it needs more than %zu bytes of "
		               "memory",
		               d->name, len, b.limit);
	if (m == NULL)
		return fl_errf(w->errbuf, FL_EPARSE,
		               "cannot decode %s of %zu bytes: malformed protobuf", d->name, len);
	if ((rv = check_msg(w, m)) != FL_OK) {
		protobuf_c_message_free_unpacked(m, &budgeted);
		return rv;
	}
	*out = m;
	return FL_OK;
}

static enum fl_err unpack_any(const ProtobufCMessageDescriptor *d, unsigned flags,
                              const uint8_t *data, size_t len, size_t max, ProtobufCMessage **out,
                              char *errbuf)
{
	struct walk w;

	*out = NULL;
	if (len > max)
		return fl_errf(errbuf, FL_EINVAL, "message of %zu bytes exceeds the limit of %zu",
		               len, max);
	walk_init(&w, errbuf, FL_EPARSE, d->name);
	w.flags = flags;
	return unpack_walk(&w, d, data, len, out);
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
	return unpack_any(&flotilla__v1__message__descriptor, 0, data, len, max,
	                  (ProtobufCMessage **)out, errbuf);
}

void fl_wire_free(Flotilla__V1__Message *m)
{
	free_any(m ? &m->base : NULL);
}

enum fl_err fl_wire_unpack_from(enum fl_peer_role sender, const uint8_t *data, size_t len,
                                Flotilla__V1__Message **out, char *errbuf)
{
	const ProtobufCMessageDescriptor *d = &flotilla__v1__message__descriptor;
	size_t cap = fl_roles_max_message(sender);
	Flotilla__V1__Message *m = NULL;
	struct walk w;
	enum fl_err rv;

	*out = NULL;
	if (cap == 0)
		return fl_errf(errbuf, FL_EAUTH, "%s may send no message", a_role(sender));
	if (len > cap)
		return fl_errf(errbuf, FL_EINVAL,
		               "message of %zu bytes exceeds the limit of %zu for %s", len, cap,
		               a_role(sender));
	walk_init(&w, errbuf, FL_EPARSE, d->name);
	w.by_role = true;
	w.role = sender;
	if ((rv = unpack_walk(&w, d, data, len, (ProtobufCMessage **)&m)) != FL_OK)
		return rv;
	if (fl_roles_is_reply((int)m->body_case) != (m->reply_to_seq != 0)) {
		rv = fl_errf(errbuf, FL_EPARSE, "invalid %s: reply_to_seq %s in a %s", d->name,
		             m->reply_to_seq ? "set" : "missing",
		             fl_wire_body_name((int)m->body_case));
		fl_wire_free(m);
		return rv;
	}
	*out = m;
	return FL_OK;
}

enum fl_err fl_wire_pack_message(const ProtobufCMessage *m, struct fl_buf *out, size_t max,
                                 char *errbuf)
{
	return pack_any(m, out, max, errbuf);
}

enum fl_err fl_wire_unpack_message(const ProtobufCMessageDescriptor *d, unsigned flags,
                                   const uint8_t *data, size_t len, size_t max,
                                   ProtobufCMessage **out, char *errbuf)
{
	return unpack_any(d, flags, data, len, max, out, errbuf);
}

void fl_wire_free_message(ProtobufCMessage *m)
{
	free_any(m);
}

enum fl_err fl_wire_pack_signed_release(const Flotilla__V1__SignedRelease *m, struct fl_buf *out,
                                        size_t max, char *errbuf)
{
	return pack_any(&m->base, out, max, errbuf);
}

enum fl_err fl_wire_unpack_signed_release(const uint8_t *data, size_t len, size_t max,
                                          Flotilla__V1__SignedRelease **out, char *errbuf)
{
	return unpack_any(&flotilla__v1__signed_release__descriptor, 0, data, len, max,
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
	return unpack_any(&flotilla__v1__release_bundle__descriptor, 0, data, len, max,
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
