/*
 * The YAML config loader. The table is flattened first (includes spliced in,
 * section names joined with a dot) into an array of slots that also remember
 * where the file set each key, for duplicates and required keys. The file is
 * then read as a stream of libyaml events, never as a document tree: the
 * expected shape (a mapping of scalars and lists of scalars, one level of
 * sections) is enforced event by event and loading stops at the first
 * surprise, so deep nesting, aliases and huge lists never get far.
 *
 * Every value is parsed into a temporary first and stored only when it is
 * valid, after releasing the default it replaces; on any error the whole
 * target is released, so callers never see a half-loaded config.
 */
#include "config.h"

#include <assert.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "duration.h"
#include "file.h"
#include "mem.h"

#define NAME_LEN  128 /* a flattened key name, section included */
#define QUOTE_MAX 64  /* bytes of the user's text quoted back in a message */
#define SHOW_LEN  (QUOTE_MAX + 4)

struct slot {
	const struct fl_config_key *key;
	size_t offset;       /* into the target, includes resolved */
	char name[NAME_LEN]; /* "clock_skew", "tls.cert" */
	size_t line, column; /* where the file set it, 1-based; 0: not set */
	size_t section_line; /* first slot of a section: where the section began */
};

struct loader {
	const char *file; /* names the input in messages */
	char *errbuf;
	struct slot *slots;
	size_t nslots;
	unsigned char *target;
	yaml_parser_t parser;
	yaml_event_t ev;
	bool have_ev;
};

_Static_assert(FL_CONFIG_PUBKEY_LEN == crypto_sign_PUBLICKEYBYTES, "Ed25519 public keys");

union value {
	char *str;
	int64_t i;
	uint64_t u;
	bool b;
	int e;
	struct fl_config_strings strs;
	struct fl_config_pubkey pk;
	struct fl_config_pubkeys pks;
};

/* ---- helpers ---- */

/* The user's text, cut and with control characters replaced, for a message. */
static const char *show(const char *s, size_t len, char out[SHOW_LEN])
{
	size_t i, n = len > QUOTE_MAX ? QUOTE_MAX : len;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (n < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

static size_t field_size(enum fl_config_type type)
{
	switch (type) {
	case FL_CONFIG_STRING:
		return sizeof(char *);
	case FL_CONFIG_INT:
	case FL_CONFIG_DURATION:
		return sizeof(int64_t);
	case FL_CONFIG_SIZE:
		return sizeof(uint64_t);
	case FL_CONFIG_BOOL:
		return sizeof(bool);
	case FL_CONFIG_ENUM:
		return sizeof(int);
	case FL_CONFIG_STRING_LIST:
		return sizeof(struct fl_config_strings);
	case FL_CONFIG_PUBKEY:
		return sizeof(struct fl_config_pubkey);
	case FL_CONFIG_PUBKEY_LIST:
		return sizeof(struct fl_config_pubkeys);
	case FL_CONFIG_END:
	case FL_CONFIG_INCLUDE:
		break;
	}
	assert(!"no field for this config type");
	return 0;
}

static bool is_list(enum fl_config_type type)
{
	return type == FL_CONFIG_STRING_LIST || type == FL_CONFIG_PUBKEY_LIST;
}

const char *fl_config_type_name(enum fl_config_type type)
{
	switch (type) {
	case FL_CONFIG_STRING:
		return "string";
	case FL_CONFIG_INT:
		return "integer";
	case FL_CONFIG_BOOL:
		return "bool";
	case FL_CONFIG_DURATION:
		return "duration";
	case FL_CONFIG_SIZE:
		return "size";
	case FL_CONFIG_ENUM:
		return "enum";
	case FL_CONFIG_STRING_LIST:
		return "string list";
	case FL_CONFIG_PUBKEY:
		return "public key";
	case FL_CONFIG_PUBKEY_LIST:
		return "public key list";
	case FL_CONFIG_END:
	case FL_CONFIG_INCLUDE:
		break;
	}
	return "?";
}

/* What a value of this type looks like, for "expected ..., got ...". */
static const char *expected(enum fl_config_type type)
{
	switch (type) {
	case FL_CONFIG_STRING:
		return "a string";
	case FL_CONFIG_INT:
		return "an integer";
	case FL_CONFIG_BOOL:
		return "true or false";
	case FL_CONFIG_DURATION:
		return "a duration such as 30s or 5m";
	case FL_CONFIG_SIZE:
		return "a size such as 64KiB or 1MiB";
	case FL_CONFIG_ENUM:
		return "one of its choices";
	case FL_CONFIG_STRING_LIST:
		return "a list of strings";
	case FL_CONFIG_PUBKEY:
		return "a public key";
	case FL_CONFIG_PUBKEY_LIST:
		return "a list of public keys";
	case FL_CONFIG_END:
	case FL_CONFIG_INCLUDE:
		break;
	}
	return "?";
}

void fl_config_format_size(uint64_t bytes, char *out, size_t outlen)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	int u = -1;

	while (u < 3 && bytes != 0 && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	snprintf(out, outlen, "%llu%s", (unsigned long long)bytes, u < 0 ? "" : units[u]);
}

static void format_value(const struct fl_config_key *k, int64_t v, char *out, size_t outlen)
{
	if (k->type == FL_CONFIG_DURATION)
		fl_duration_format(v, out, (unsigned)outlen);
	else if (k->type == FL_CONFIG_SIZE)
		fl_config_format_size((uint64_t)v, out, outlen);
	else
		snprintf(out, outlen, "%lld", (long long)v);
}

/* ---- parsing one value ---- */

static bool parse_int(const char *s, int64_t *out)
{
	bool neg = *s == '-';
	uint64_t n = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

	if (neg)
		s++;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (n > (limit - (uint64_t)(*s - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*out = neg ? (int64_t)(0 - n) : (int64_t)n;
	return true;
}

static bool parse_size(const char *text, uint64_t *out, char *why)
{
	static const struct {
		const char *name;
		unsigned shift;
	} units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
	const char *p = text;
	char q[SHOW_LEN];
	uint64_t n = 0;
	size_t u;

	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			goto big;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	for (u = 0; u < sizeof(units) / sizeof(units[0]); u++)
		if (strcmp(p, units[u].name) == 0)
			break;
	if (u == sizeof(units) / sizeof(units[0]))
		goto bad;
	if (n > (UINT64_MAX >> units[u].shift))
		goto big;
	*out = n << units[u].shift;
	return true;
bad:
	snprintf(why, FL_ERRBUF_SIZE,
	         "invalid size '%s' (a number of bytes, or with KiB, MiB or GiB)",
	         show(text, strlen(text), q));
	return false;
big:
	snprintf(why, FL_ERRBUF_SIZE, "invalid size '%s': too large", show(text, strlen(text), q));
	return false;
}

static bool parse_pubkey(const char *text, size_t len, uint8_t key[FL_CONFIG_PUBKEY_LEN], char *why)
{
	size_t bin_len = 0;

	if (len != 44) {
		snprintf(why, FL_ERRBUF_SIZE,
		         "not a public key: expected 44 characters of base64, got %zu", len);
		return false;
	}
	if (sodium_base642bin(key, FL_CONFIG_PUBKEY_LEN, text, len, NULL, &bin_len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    bin_len != FL_CONFIG_PUBKEY_LEN) {
		snprintf(why, FL_ERRBUF_SIZE, "not a public key: invalid base64");
		return false;
	}
	if (!crypto_core_ed25519_is_valid_point(key)) {
		snprintf(why, FL_ERRBUF_SIZE, "not a valid Ed25519 public key");
		return false;
	}
	return true;
}

/* Plain YAML nulls: "key:", "key: ~", "key: null". */
static bool is_null(const char *text, size_t len, bool plain)
{
	return plain && (len == 0 || strcmp(text, "~") == 0 || strcmp(text, "null") == 0 ||
	                 strcmp(text, "Null") == 0 || strcmp(text, "NULL") == 0);
}

/*
 * Parse one scalar for a scalar-typed key into v (a string is copied to the
 * heap: the caller owns v->str on success). text is NUL-terminated, len long.
 * On failure, why says what is wrong without naming the key.
 */
static bool parse_scalar(const struct fl_config_key *k, const char *text, size_t len,
                         union value *v, char *why)
{
	char q[SHOW_LEN];
	int64_t lo = k->min, hi = k->max;
	bool bounded = lo != 0 || hi != 0, below = false, above = false;

	memset(v, 0, sizeof(*v));
	if (memchr(text, '\0', len) != NULL) {
		snprintf(why, FL_ERRBUF_SIZE, "contains a NUL byte");
		return false;
	}
	/* Only strings may hold control characters; no parser below quotes them back raw. */
	for (size_t i = 0; i < len && k->type != FL_CONFIG_STRING; i++) {
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) {
			snprintf(why, FL_ERRBUF_SIZE, "expected %s, got '%s'", expected(k->type),
			         show(text, len, q));
			return false;
		}
	}
	switch (k->type) {
	case FL_CONFIG_STRING:
		if (len == 0 && (k->flags & FL_CONFIG_NONEMPTY)) {
			snprintf(why, FL_ERRBUF_SIZE, "must not be empty");
			return false;
		}
		v->str = fl_strndup(text, len);
		break;
	case FL_CONFIG_INT:
		if (!parse_int(text, &v->i)) {
			snprintf(why, FL_ERRBUF_SIZE, "expected an integer, got '%s'",
			         show(text, len, q));
			return false;
		}
		below = bounded && v->i < lo;
		above = bounded && v->i > hi;
		break;
	case FL_CONFIG_DURATION:
		if (fl_duration_parse(text, &v->i, why) != FL_OK)
			return false;
		below = bounded && v->i < lo;
		above = bounded && v->i > hi;
		break;
	case FL_CONFIG_SIZE:
		if (!parse_size(text, &v->u, why))
			return false;
		below = bounded && v->u < (uint64_t)lo;
		above = bounded && v->u > (uint64_t)hi;
		break;
	case FL_CONFIG_BOOL:
		if (strcmp(text, "true") == 0) {
			v->b = true;
		} else if (strcmp(text, "false") != 0) {
			snprintf(why, FL_ERRBUF_SIZE, "expected true or false, got '%s'",
			         show(text, len, q));
			return false;
		}
		break;
	case FL_CONFIG_ENUM: {
		size_t used;
		int i;

		for (i = 0; k->choices[i] != NULL; i++)
			if (strcmp(text, k->choices[i]) == 0)
				break;
		if (k->choices[i] != NULL) {
			v->e = i;
			break;
		}
		used = (size_t)snprintf(why, FL_ERRBUF_SIZE, "expected one of ");
		for (i = 0; k->choices[i] != NULL && used < FL_ERRBUF_SIZE; i++)
			used += (size_t)snprintf(why + used, FL_ERRBUF_SIZE - used, "%s%s",
			                         i ? ", " : "", k->choices[i]);
		if (used < FL_ERRBUF_SIZE)
			snprintf(why + used, FL_ERRBUF_SIZE - used, "; got '%s'",
			         show(text, len, q));
		return false;
	}
	case FL_CONFIG_PUBKEY:
		if (!parse_pubkey(text, len, v->pk.key, why))
			return false;
		v->pk.set = true;
		break;
	case FL_CONFIG_STRING_LIST:
	case FL_CONFIG_PUBKEY_LIST:
	case FL_CONFIG_END:
	case FL_CONFIG_INCLUDE:
		assert(!"not a scalar type");
		return false;
	}
	if (below || above) {
		char got[64], bound[64];

		format_value(k, k->type == FL_CONFIG_SIZE ? (int64_t)v->u : v->i, got, sizeof(got));
		format_value(k, below ? lo : hi, bound, sizeof(bound));
		/* A size too large for int64_t formats wrong; say it from the text. */
		snprintf(why, FL_ERRBUF_SIZE, "%s is %s the %s %s",
		         k->type == FL_CONFIG_SIZE && v->u > INT64_MAX ? show(text, len, q) : got,
		         below ? "below" : "above", below ? "minimum" : "maximum", bound);
		return false;
	}
	return true;
}

/* ---- the target ---- */

static void release_value(enum fl_config_type type, union value *v)
{
	size_t i;

	switch (type) {
	case FL_CONFIG_STRING:
		free(v->str);
		break;
	case FL_CONFIG_STRING_LIST:
		for (i = 0; i < v->strs.n; i++)
			free(v->strs.items[i]);
		free(v->strs.items);
		break;
	case FL_CONFIG_PUBKEY_LIST:
		free(v->pks.keys);
		break;
	default:
		break;
	}
	memset(v, 0, sizeof(*v));
}

static void release_field(const struct fl_config_key *k, void *field)
{
	union value v;

	memset(&v, 0, sizeof(v));
	memcpy(&v, field, field_size(k->type));
	release_value(k->type, &v);
	memset(field, 0, field_size(k->type));
}

/* Replace the field's value by v, which the target now owns. */
static void store(const struct fl_config_key *k, void *field, const union value *v)
{
	release_field(k, field);
	memcpy(field, v, field_size(k->type));
}

/* ---- the table ---- */

static size_t count_keys(const struct fl_config_key *t)
{
	size_t n = 0;

	for (; t->type != FL_CONFIG_END; t++)
		n += t->type == FL_CONFIG_INCLUDE ? count_keys(t->include) : 1;
	return n;
}

static void flatten(const struct fl_config_key *t, size_t base, const char *section,
                    struct slot *slots, size_t *n)
{
	for (; t->type != FL_CONFIG_END; t++) {
		struct slot *s;
		int len;

		if (t->type == FL_CONFIG_INCLUDE) {
			assert(t->include != NULL);
			assert(t->name == NULL || section == NULL); /* one level of sections */
			flatten(t->include, base + t->offset, t->name ? t->name : section, slots,
			        n);
			continue;
		}
		assert(t->name != NULL && t->name[0] != '\0');
		assert(t->type != FL_CONFIG_ENUM || t->choices != NULL);
		assert(!is_list(t->type) || t->def == NULL);
		assert(!(t->flags & FL_CONFIG_REQUIRED) || t->def == NULL);
		s = &slots[(*n)++];
		memset(s, 0, sizeof(*s));
		s->key = t;
		s->offset = base + t->offset;
		len = snprintf(s->name, sizeof(s->name), "%s%s%s", section ? section : "",
		               section ? "." : "", t->name);
		assert(len > 0 && (size_t)len < sizeof(s->name));
		(void)len;
	}
}

/* The table as slots; checks the table's own consistency (bugs abort). */
static struct slot *slots_new(const struct fl_config_key *table, size_t *n)
{
	size_t count = count_keys(table), i, j;
	struct slot *slots = fl_calloc(count, sizeof(*slots));

	*n = 0;
	flatten(table, 0, NULL, slots, n);
	assert(*n == count);
	for (i = 0; i < count; i++) {
		const char *dot = strchr(slots[i].name, '.');

		assert(dot == NULL || strchr(dot + 1, '.') == NULL); /* one level */
		for (j = 0; j < count; j++) {
			size_t len = strlen(slots[j].name);

			/* unique, and no key is also a section ("tls" and "tls.cert") */
			assert(i == j || strcmp(slots[i].name, slots[j].name) != 0);
			assert(i == j || strncmp(slots[i].name, slots[j].name, len) != 0 ||
			       slots[i].name[len] != '.');
			(void)len;
		}
		(void)dot;
	}
	return slots;
}

static struct slot *find_slot(struct slot *slots, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(slots[i].name, name) == 0)
			return &slots[i];
	return NULL;
}

/* The first slot of section `name`, or NULL if there is no such section. */
static struct slot *find_section(struct slot *slots, size_t n, const char *name)
{
	size_t i, len = strlen(name);

	for (i = 0; i < n; i++)
		if (strncmp(slots[i].name, name, len) == 0 && slots[i].name[len] == '.')
			return &slots[i];
	return NULL;
}

static void set_defaults(struct slot *slots, size_t n, unsigned char *target)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct fl_config_key *k = slots[i].key;
		char why[FL_ERRBUF_SIZE];
		union value v;

		memset(target + slots[i].offset, 0, field_size(k->type));
		if (k->def == NULL)
			continue;
		if (!parse_scalar(k, k->def, strlen(k->def), &v, why) ||
		    (k->check && !k->check(k, &v, why))) {
			fprintf(stderr, "flotilla: bad default for config key '%s': %s\n",
			        slots[i].name, why);
			abort();
		}
		store(k, target + slots[i].offset, &v);
	}
}

void fl_config_defaults(const struct fl_config_key *table, void *target)
{
	size_t n;
	struct slot *slots = slots_new(table, &n);

	set_defaults(slots, n, target);
	free(slots);
}

static void release_all(const struct fl_config_key *t, unsigned char *target)
{
	for (; t->type != FL_CONFIG_END; t++) {
		if (t->type == FL_CONFIG_INCLUDE)
			release_all(t->include, target + t->offset);
		else
			release_field(t, target + t->offset);
	}
}

void fl_config_fini(const struct fl_config_key *table, void *target)
{
	if (table != NULL && target != NULL)
		release_all(table, target);
}

/* ---- messages ---- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t prev[NAME_LEN + 1], cur[NAME_LEN + 1];

	if (la > NAME_LEN || lb > NAME_LEN)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

/* "'agent.yaml':7:3: " then the message, at mark. */
__attribute__((format(printf, 3, 0))) static enum fl_err vat(struct loader *l, yaml_mark_t mark,
                                                             const char *fmt, va_list ap)
{
	char msg[FL_ERRBUF_SIZE];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return fl_errf(l->errbuf, FL_EPARSE, "'%s':%zu:%zu: %s", l->file, mark.line + 1,
	               mark.column + 1, msg);
}

/* An error at the current event. */
__attribute__((format(printf, 2, 3))) static enum fl_err at(struct loader *l, const char *fmt, ...)
{
	enum fl_err rv;
	va_list ap;

	va_start(ap, fmt);
	rv = vat(l, l->ev.start_mark, fmt, ap);
	va_end(ap);
	return rv;
}

/* An error at an earlier event: where a list began. */
__attribute__((format(printf, 3, 4))) static enum fl_err at_mark(struct loader *l, yaml_mark_t mark,
                                                                 const char *fmt, ...)
{
	enum fl_err rv;
	va_list ap;

	va_start(ap, fmt);
	rv = vat(l, mark, fmt, ap);
	va_end(ap);
	return rv;
}

static enum fl_err syntax_error(struct loader *l)
{
	const yaml_parser_t *p = &l->parser;
	const char *problem = p->problem ? p->problem : "unknown error";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		fprintf(stderr, "flotilla: out of memory parsing '%s'\n", l->file);
		abort();
	case YAML_READER_ERROR:
		return fl_errf(l->errbuf, FL_EPARSE, "'%s': invalid YAML: %s at byte %zu", l->file,
		               problem, p->problem_offset);
	default:
		if (p->context != NULL)
			return fl_errf(l->errbuf, FL_EPARSE,
			               "'%s':%zu:%zu: invalid YAML: %s (%s at line %zu)", l->file,
			               p->problem_mark.line + 1, p->problem_mark.column + 1,
			               problem, p->context, p->context_mark.line + 1);
		return fl_errf(l->errbuf, FL_EPARSE, "'%s':%zu:%zu: invalid YAML: %s", l->file,
		               p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
	}
}

/* ---- the event stream ---- */

static const char *event_kind(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return "a string";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	default:
		return "nothing";
	}
}

/* The next event, with aliases, anchors and tags refused. */
static enum fl_err next(struct loader *l)
{
	const yaml_char_t *anchor = NULL, *tag = NULL;
	char q[SHOW_LEN];

	if (l->have_ev) {
		yaml_event_delete(&l->ev);
		l->have_ev = false;
	}
	if (!yaml_parser_parse(&l->parser, &l->ev))
		return syntax_error(l);
	l->have_ev = true;
	switch (l->ev.type) {
	case YAML_ALIAS_EVENT:
		return at(l, "aliases are not allowed");
	case YAML_SCALAR_EVENT:
		anchor = l->ev.data.scalar.anchor;
		tag = l->ev.data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = l->ev.data.sequence_start.anchor;
		tag = l->ev.data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = l->ev.data.mapping_start.anchor;
		tag = l->ev.data.mapping_start.tag;
		break;
	default:
		break;
	}
	if (anchor != NULL)
		return at(l, "anchors are not allowed ('&%s')",
		          show((const char *)anchor, strlen((const char *)anchor), q));
	if (tag != NULL)
		return at(l, "tags are not allowed ('%s')",
		          show((const char *)tag, strlen((const char *)tag), q));
	return FL_OK;
}

static enum fl_err parse_list(struct loader *l, struct slot *s, union value *v)
{
	const struct fl_config_key *k = s->key;
	size_t cap = 0;
	enum fl_err rv;
	char why[FL_ERRBUF_SIZE], q[SHOW_LEN];

	memset(v, 0, sizeof(*v));
	for (;;) {
		const char *text;
		size_t len, i, *n = k->type == FL_CONFIG_STRING_LIST ? &v->strs.n : &v->pks.n;

		if ((rv = next(l)) != FL_OK)
			return rv;
		if (l->ev.type == YAML_SEQUENCE_END_EVENT)
			return FL_OK;
		if (l->ev.type != YAML_SCALAR_EVENT)
			return at(l, "'%s': expected %s, got a list of %ss", s->name,
			          expected(k->type),
			          l->ev.type == YAML_SEQUENCE_START_EVENT ? "list" : "mapping");
		if (*n == FL_CONFIG_MAX_LIST)
			return at(l, "'%s': too many items (at most %d)", s->name,
			          FL_CONFIG_MAX_LIST);
		text = (const char *)l->ev.data.scalar.value;
		len = l->ev.data.scalar.length;
		if (is_null(text, len, l->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
			return at(l, "'%s': empty list item", s->name);
		if (memchr(text, '\0', len) != NULL)
			return at(l, "'%s': contains a NUL byte", s->name);
		if (k->type == FL_CONFIG_STRING_LIST) {
			v->strs.items = fl_grow(v->strs.items, &cap, *n + 1, sizeof(char *));
			v->strs.items[(*n)++] = fl_strndup(text, len);
			continue;
		}
		v->pks.keys = fl_grow(v->pks.keys, &cap, *n + 1, sizeof(*v->pks.keys));
		if (!parse_pubkey(text, len, v->pks.keys[*n], why))
			return at(l, "'%s': %s", s->name, why);
		for (i = 0; i < *n; i++)
			if (memcmp(v->pks.keys[i], v->pks.keys[*n], FL_CONFIG_PUBKEY_LEN) == 0)
				return at(l, "'%s': '%s' is listed twice", s->name,
				          show(text, len, q));
		(*n)++;
	}
}

/* The value of key s, starting at the current event. */
static enum fl_err parse_value(struct loader *l, struct slot *s)
{
	const struct fl_config_key *k = s->key;
	yaml_mark_t start = l->ev.start_mark;
	char why[FL_ERRBUF_SIZE];
	union value v;
	enum fl_err rv;

	memset(&v, 0, sizeof(v));
	if (l->ev.type == YAML_SCALAR_EVENT) {
		const char *text = (const char *)l->ev.data.scalar.value;
		size_t len = l->ev.data.scalar.length;

		if (is_null(text, len, l->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
			return at(l, "'%s': no value (leave the key out to use the default)",
			          s->name);
		if (is_list(k->type))
			return at(l,
			          "'%s': expected %s, got a string (write [a, b] or one '- item' "
			          "per line)",
			          s->name, expected(k->type));
		if (!parse_scalar(k, text, len, &v, why))
			return at(l, "'%s': %s", s->name, why);
	} else if (l->ev.type == YAML_SEQUENCE_START_EVENT && is_list(k->type)) {
		if ((rv = parse_list(l, s, &v)) != FL_OK) {
			release_value(k->type, &v);
			return rv;
		}
		if ((k->flags & FL_CONFIG_NONEMPTY) &&
		    (k->type == FL_CONFIG_STRING_LIST ? v.strs.n : v.pks.n) == 0)
			return at_mark(l, start, "'%s': must not be empty", s->name);
	} else {
		return at(l, "'%s': expected %s, got %s", s->name, expected(k->type),
		          event_kind(&l->ev));
	}
	if (k->check != NULL && !k->check(k, &v, why)) {
		release_value(k->type, &v);
		return at_mark(l, start, "'%s': %s", s->name, why);
	}
	store(k, l->target + s->offset, &v);
	return FL_OK;
}

static enum fl_err unknown_key(struct loader *l, const char *name)
{
	size_t i, best = (size_t)-1, limit = strlen(name) >= 12 ? 3 : 2;
	const char *guess = NULL;
	char q[SHOW_LEN];

	for (i = 0; i < l->nslots; i++) {
		size_t d = edit_distance(name, l->slots[i].name);
		if (d <= limit && d < best) {
			best = d;
			guess = l->slots[i].name;
		}
	}
	if (guess != NULL)
		return at(l, "unknown key '%s' (did you mean '%s'?)", show(name, strlen(name), q),
		          guess);
	return at(l, "unknown key '%s'", show(name, strlen(name), q));
}

/* The pairs of a mapping whose MAPPING_START is the current event. */
static enum fl_err parse_mapping(struct loader *l, const char *section, int depth)
{
	enum fl_err rv;
	char q[SHOW_LEN];

	assert(depth <= FL_CONFIG_MAX_DEPTH);
	for (;;) {
		char name[NAME_LEN];
		const char *key;
		size_t len, line, column;
		struct slot *s;

		if ((rv = next(l)) != FL_OK)
			return rv;
		if (l->ev.type == YAML_MAPPING_END_EVENT)
			return FL_OK;
		if (l->ev.type != YAML_SCALAR_EVENT)
			return at(l, "expected a key, got %s", event_kind(&l->ev));
		key = (const char *)l->ev.data.scalar.value;
		len = l->ev.data.scalar.length;
		/* "tls.cert: x" at the top level is the same key as "tls: {cert: x}". */
		if (len == 0 || memchr(key, '\0', len) != NULL || len >= NAME_LEN ||
		    (section != NULL && strchr(key, '.') != NULL) ||
		    (size_t)snprintf(name, sizeof(name), "%s%s%s", section ? section : "",
		                     section ? "." : "", key) >= sizeof(name))
			return at(l, "unknown key '%s'", show(key, len, q));
		line = l->ev.start_mark.line + 1;
		column = l->ev.start_mark.column + 1;
		if ((s = find_slot(l->slots, l->nslots, name)) != NULL) {
			if (s->line != 0)
				return at(l, "duplicate key '%s' (first set at line %zu)", name,
				          s->line);
			s->line = line;
			s->column = column;
			if ((rv = next(l)) != FL_OK)
				return rv;
			if ((rv = parse_value(l, s)) != FL_OK)
				return rv;
			continue;
		}
		if (section != NULL || (s = find_section(l->slots, l->nslots, name)) == NULL)
			return unknown_key(l, name);
		if (s->section_line != 0)
			return at(l, "duplicate section '%s' (first at line %zu)", name,
			          s->section_line);
		s->section_line = line;
		if ((rv = next(l)) != FL_OK)
			return rv;
		if (l->ev.type != YAML_MAPPING_START_EVENT)
			return at(l, "'%s': expected a mapping of keys, got %s", name,
			          event_kind(&l->ev));
		if ((rv = parse_mapping(l, name, depth + 1)) != FL_OK)
			return rv;
	}
}

static enum fl_err parse_stream(struct loader *l)
{
	enum fl_err rv;

	if ((rv = next(l)) != FL_OK) /* STREAM_START */
		return rv;
	if ((rv = next(l)) != FL_OK)
		return rv;
	if (l->ev.type == YAML_STREAM_END_EVENT) /* empty, or only comments */
		return FL_OK;
	assert(l->ev.type == YAML_DOCUMENT_START_EVENT);
	if ((rv = next(l)) != FL_OK)
		return rv;
	if (l->ev.type == YAML_MAPPING_START_EVENT) {
		if ((rv = parse_mapping(l, NULL, 1)) != FL_OK)
			return rv;
	} else if (l->ev.type != YAML_SCALAR_EVENT ||
	           !is_null((const char *)l->ev.data.scalar.value, l->ev.data.scalar.length,
	                    l->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
		return at(l, "expected a mapping of keys (key: value) at the top level, got %s",
		          event_kind(&l->ev));
	}
	if ((rv = next(l)) != FL_OK) /* DOCUMENT_END */
		return rv;
	if ((rv = next(l)) != FL_OK)
		return rv;
	if (l->ev.type != YAML_STREAM_END_EVENT)
		return at(l, "only one YAML document is allowed");
	return FL_OK;
}

/* ---- entry points ---- */

enum fl_err fl_config_load_buffer(const char *text, size_t len, const char *name,
                                  const struct fl_config_key *table, void *target, char *errbuf)
{
	struct loader l;
	enum fl_err rv = FL_OK;
	size_t i;

	memset(&l, 0, sizeof(l));
	l.file = name ? name : "(config)";
	l.errbuf = errbuf;
	l.target = target;
	l.slots = slots_new(table, &l.nslots);
	set_defaults(l.slots, l.nslots, l.target);
	if (len > FL_CONFIG_MAX_FILE) {
		rv = fl_errf(errbuf, FL_EPARSE, "'%s': too large (over %d bytes)", l.file,
		             FL_CONFIG_MAX_FILE);
		goto out;
	}
	if (sodium_init() < 0) {
		rv = fl_errf(errbuf, FL_EIO, "'%s': cannot initialise libsodium", l.file);
		goto out;
	}
	if (!yaml_parser_initialize(&l.parser)) {
		fprintf(stderr, "flotilla: out of memory parsing '%s'\n", l.file);
		abort();
	}
	yaml_parser_set_input_string(&l.parser, (const unsigned char *)text, len);
	rv = parse_stream(&l);
	if (l.have_ev)
		yaml_event_delete(&l.ev);
	yaml_parser_delete(&l.parser);
	if (rv != FL_OK)
		goto out;
	for (i = 0; i < l.nslots; i++) {
		if ((l.slots[i].key->flags & FL_CONFIG_REQUIRED) && l.slots[i].line == 0) {
			rv = fl_errf(errbuf, FL_EPARSE, "'%s': missing required key '%s'", l.file,
			             l.slots[i].name);
			goto out;
		}
	}
out:
	if (rv != FL_OK)
		fl_config_fini(table, target);
	free(l.slots);
	return rv;
}

enum fl_err fl_config_load_file(const char *path, const struct fl_config_key *table, void *target,
                                char *errbuf)
{
	struct fl_buf buf = FL_BUF_INIT;
	enum fl_err rv;

	rv = fl_file_read(path, FL_CONFIG_MAX_FILE, 0, &buf, errbuf);
	if (rv == FL_EPARSE) /* too large: say so as fl_config_load_buffer does */
		fl_errf(errbuf, rv, "'%s': too large (over %d bytes)", path, FL_CONFIG_MAX_FILE);
	if (rv != FL_OK) {
		fl_buf_fini(&buf);
		/* The contract: target's fields are set (to nothing) even on failure. */
		fl_config_defaults(table, target);
		fl_config_fini(table, target);
		return rv;
	}
	rv = fl_config_load_buffer(fl_buf_str(&buf), buf.len, path, table, target, errbuf);
	fl_buf_fini(&buf);
	return rv;
}

/* ---- reload ---- */

static bool same(const struct fl_config_key *k, const void *a, const void *b)
{
	union value x, y;
	size_t i;

	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	memcpy(&x, a, field_size(k->type));
	memcpy(&y, b, field_size(k->type));
	switch (k->type) {
	case FL_CONFIG_STRING:
		return x.str == y.str || (x.str && y.str && strcmp(x.str, y.str) == 0);
	case FL_CONFIG_STRING_LIST:
		if (x.strs.n != y.strs.n)
			return false;
		for (i = 0; i < x.strs.n; i++)
			if (strcmp(x.strs.items[i], y.strs.items[i]) != 0)
				return false;
		return true;
	case FL_CONFIG_PUBKEY_LIST:
		return x.pks.n == y.pks.n &&
		       (x.pks.n == 0 ||
		        memcmp(x.pks.keys, y.pks.keys, x.pks.n * sizeof(*x.pks.keys)) == 0);
	case FL_CONFIG_PUBKEY:
		return x.pk.set == y.pk.set && memcmp(x.pk.key, y.pk.key, sizeof(x.pk.key)) == 0;
	default:
		return memcmp(&x, &y, field_size(k->type)) == 0;
	}
}

static enum fl_err check_reload(const struct fl_config_key *t, const char *section,
                                const unsigned char *cur, const unsigned char *next_cfg,
                                char *errbuf)
{
	enum fl_err rv;

	for (; t->type != FL_CONFIG_END; t++) {
		if (t->type == FL_CONFIG_INCLUDE) {
			rv = check_reload(t->include, t->name ? t->name : section, cur + t->offset,
			                  next_cfg + t->offset, errbuf);
			if (rv != FL_OK)
				return rv;
			continue;
		}
		if (!(t->flags & FL_CONFIG_RELOADABLE) &&
		    !same(t, cur + t->offset, next_cfg + t->offset))
			return fl_errf(errbuf, FL_ESTATE,
			               "'%s%s%s' cannot change on reload: restart instead",
			               section ? section : "", section ? "." : "", t->name);
	}
	return FL_OK;
}

enum fl_err fl_config_check_reload(const struct fl_config_key *table, const void *cur,
                                   const void *next_cfg, char *errbuf)
{
	return check_reload(table, NULL, cur, next_cfg, errbuf);
}
