/*
 * The YAML config loader. Each table is flattened once per load into a
 * layout (includes spliced in, section names joined with dots, the tables'
 * validate functions in the order they run); a frame is one table being
 * filled: the whole file, or one element of a list of mappings, with where
 * the file set each of its keys and sections. The file is read as a stream of
 * libyaml events, never as a document tree: the shape the table expects is
 * enforced event by event and loading stops at the first surprise, so deep
 * nesting, aliases and huge lists never get far. Nesting is bounded by the
 * table itself (asserted against FL_CONFIG_MAX_DEPTH), since every
 * collection the loader enters is one the table asked for.
 *
 * Every value is parsed into a temporary first and stored only when it is
 * valid, after releasing the default it replaces; on any error the whole
 * target is released, so callers never see a half-loaded config. A list of
 * mappings is built in its temporary: each element starts from its table's
 * defaults and is counted before it is read, so releasing the temporary
 * releases a half-read element too.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "duration.h"
#include "file.h"
#include "mem.h"

#define NAME_LEN          128 /* a key's name in its table, sections included: "select.percent" */
#define PATH_LEN          512 /* a key's path in the file: "windows[12].select.labels" */
#define QUOTE_MAX         64  /* bytes of the user's text quoted back in a message */
#define SHOW_LEN          (QUOTE_MAX + 4)
#define FLOAT_INT_DIGITS  9 /* so that every FLOAT is exact: mantissa < 2^53 */
#define FLOAT_FRAC_DIGITS 6

_Static_assert(FL_CONFIG_PUBKEY_LEN == crypto_sign_PUBLICKEYBYTES, "Ed25519 public keys");

/* ---- layouts: tables flattened ---- */

struct slot {
	const struct fl_config_key *key;
	size_t offset;       /* into the table's struct, includes resolved */
	char name[NAME_LEN]; /* "clock_skew", "tls.cert", "select.percent" */
};

struct rule {
	fl_config_validate_fn fn;
	size_t offset;          /* of the validated table's struct */
	char section[NAME_LEN]; /* its section, "" for the table itself */
};

struct layout {
	const struct fl_config_key *table;
	struct slot *slots;
	size_t nslots;
	char (*sections)[NAME_LEN]; /* every name that holds keys: "tls", "health" */
	size_t nsections;
	struct rule *rules; /* inner tables first */
	size_t nrules;
	struct layout *next; /* the loader's cache */
};

/* Where the file set something, 1-based; line 0: not in the file. */
struct pos {
	size_t line, column;
};

/* One table being filled: the whole file, or one list element. */
struct frame {
	const struct layout *lay;
	unsigned char *target;
	char path[PATH_LEN]; /* "" at the top, "waves[1]": what messages put first */
	bool top;            /* the whole file: its messages name no line of their own */
	struct pos start;    /* where its mapping began */
	struct pos *keys;    /* per slot */
	struct pos *secs;    /* per section */
	const void *items;   /* a list element: the list and its index */
	size_t index;
};

struct loader {
	const char *file; /* names the input in messages */
	char *errbuf;
	struct layout *layouts;
	int depth; /* collections open */
	yaml_parser_t parser;
	yaml_event_t ev;
	bool have_ev;
};

/* What fl_config_scope.priv points to. */
struct scope_priv {
	const struct frame *f;
	const char *section;
};

union value {
	char *str;
	int64_t i;
	uint64_t u;
	bool b;
	int e;
	double f;
	struct fl_config_strings strs;
	struct fl_config_pubkey pk;
	struct fl_config_pubkeys pks;
	struct fl_labels labels;
	struct fl_config_list list;
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

/* "prefix.name", or name alone when prefix is empty; false if it does not fit
 * (then out holds what fits). */
static bool join(char *out, size_t outlen, const char *prefix, const char *name)
{
	size_t lp = strlen(prefix), ln = strlen(name), dot = lp > 0 && ln > 0, n = 0;
	bool fits = lp + dot + ln < outlen;

	assert(outlen > 0);
	n = lp < outlen - 1 ? lp : outlen - 1;
	memmove(out, prefix, n);
	if (dot && n < outlen - 1)
		out[n++] = '.';
	ln = ln < outlen - 1 - n ? ln : outlen - 1 - n;
	memmove(out + n, name, ln);
	out[n + ln] = '\0';
	return fits;
}

/* "name[index]" into out (PATH_LEN bytes), cut if too long. */
static void elem_name(char *out, const char *name, size_t index)
{
	char idx[32];
	size_t ln = strlen(name), li;

	li = (size_t)snprintf(idx, sizeof(idx), "[%zu]", index);
	if (ln + li >= PATH_LEN)
		ln = PATH_LEN - 1 - li;
	memmove(out, name, ln);
	memcpy(out + ln, idx, li + 1);
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
	case FL_CONFIG_FLOAT:
		return sizeof(double);
	case FL_CONFIG_LABELS:
		return sizeof(struct fl_labels);
	case FL_CONFIG_TABLE_LIST:
		return sizeof(struct fl_config_list);
	case FL_CONFIG_END:
	case FL_CONFIG_INCLUDE:
		break;
	}
	assert(!"no field for this config type");
	return 0;
}

static bool is_list(enum fl_config_type type)
{
	return type == FL_CONFIG_STRING_LIST || type == FL_CONFIG_PUBKEY_LIST ||
	       type == FL_CONFIG_TABLE_LIST;
}

/* Types whose value is a collection, never a scalar. */
static bool is_collection(enum fl_config_type type)
{
	return is_list(type) || type == FL_CONFIG_LABELS;
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
	case FL_CONFIG_FLOAT:
		return "number";
	case FL_CONFIG_LABELS:
		return "labels";
	case FL_CONFIG_TABLE_LIST:
		return "list of mappings";
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
	case FL_CONFIG_FLOAT:
		return "a number such as 0.02";
	case FL_CONFIG_LABELS:
		return "a mapping of labels such as {ring: canary}";
	case FL_CONFIG_TABLE_LIST:
		return "a list of mappings";
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

/* A FLOAT as the file would write it: "0.02", "100", "-1.5". */
static void format_float(double v, char *out, size_t outlen)
{
	size_t n;

	snprintf(out, outlen, "%.*f", FLOAT_FRAC_DIGITS, v);
	if (strchr(out, '.') == NULL)
		return;
	n = strlen(out);
	while (n > 0 && out[n - 1] == '0')
		out[--n] = '\0';
	if (n > 0 && out[n - 1] == '.')
		out[--n] = '\0';
	if (strcmp(out, "-0") == 0)
		snprintf(out, outlen, "0");
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

/*
 * Numbers as a config file writes them: an optional '-', 1 to 9 digits, then
 * optionally '.' and 1 to 6 digits. No exponent, no '+', no "inf": and few
 * enough digits that the value is exact (mantissa and power of ten both below
 * 2^53, divided once: correctly rounded, as strtod would, without its locale).
 */
static bool parse_float(const char *s, double *out)
{
	static const double pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
	bool neg = *s == '-';
	uint64_t mant = 0;
	int digits = 0, frac = 0;

	if (neg)
		s++;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (++digits > FLOAT_INT_DIGITS)
			return false;
		mant = mant * 10 + (uint64_t)(*s - '0');
	}
	if (digits == 0)
		return false;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			if (++frac > FLOAT_FRAC_DIGITS)
				return false;
			mant = mant * 10 + (uint64_t)(*s - '0');
		}
		if (frac == 0)
			return false;
	}
	if (*s != '\0')
		return false;
	*out = mant == 0 ? 0.0 : (neg ? -1.0 : 1.0) * ((double)mant / pow10[frac]);
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
	bool fbounded = k->fmin != 0 || k->fmax != 0;

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
		if (k->max > 0 && len > (uint64_t)k->max) {
			snprintf(why, FL_ERRBUF_SIZE, "longer than %lld bytes", (long long)k->max);
			return false;
		}
		v->str = fl_strndup(text, len);
		break;
	case FL_CONFIG_FLOAT:
		if (!parse_float(text, &v->f)) {
			snprintf(
			    why, FL_ERRBUF_SIZE,
			    "expected a number such as 0.02 (at most %d digits after the point), "
			    "got '%s'",
			    FLOAT_FRAC_DIGITS, show(text, len, q));
			return false;
		}
		if (fbounded && (v->f < k->fmin || v->f > k->fmax)) {
			char got[64], bound[64];

			below = v->f < k->fmin;
			format_float(v->f, got, sizeof(got));
			format_float(below ? k->fmin : k->fmax, bound, sizeof(bound));
			snprintf(why, FL_ERRBUF_SIZE, "%s is %s the %s %s", got,
			         below ? "below" : "above", below ? "minimum" : "maximum", bound);
			return false;
		}
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
	case FL_CONFIG_LABELS:
	case FL_CONFIG_TABLE_LIST:
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

static void release_all(const struct fl_config_key *t, unsigned char *target);

static void release_value(const struct fl_config_key *k, union value *v)
{
	size_t i;

	switch (k->type) {
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
	case FL_CONFIG_LABELS:
		fl_labels_fini(&v->labels);
		break;
	case FL_CONFIG_TABLE_LIST:
		for (i = 0; i < v->list.n; i++)
			release_all(k->include, (unsigned char *)v->list.items + i * k->elem_size);
		free(v->list.items);
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
	release_value(k, &v);
	memset(field, 0, field_size(k->type));
}

/* Replace the field's value by v, which the target now owns. */
static void store(const struct fl_config_key *k, void *field, const union value *v)
{
	release_field(k, field);
	memcpy(field, v, field_size(k->type));
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

/* ---- layouts ---- */

static void add_section(struct layout *lay, size_t *cap, const char *name)
{
	size_t i;

	for (i = 0; i < lay->nsections; i++)
		if (strcmp(lay->sections[i], name) == 0)
			return;
	lay->sections = fl_grow(lay->sections, cap, lay->nsections + 1, sizeof(*lay->sections));
	snprintf(lay->sections[lay->nsections++], NAME_LEN, "%s", name);
}

static void flatten(struct layout *lay, size_t *slot_cap, size_t *rule_cap,
                    const struct fl_config_key *t, size_t base, const char *section)
{
	for (; t->type != FL_CONFIG_END; t++) {
		char name[NAME_LEN];
		struct slot *s;

		if (t->type == FL_CONFIG_INCLUDE) {
			assert(t->include != NULL);
			assert(t->name == NULL || (t->name[0] != '\0' && t->name[0] != '.'));
			if (!join(name, sizeof(name), section, t->name ? t->name : ""))
				assert(!"config section name too long");
			flatten(lay, slot_cap, rule_cap, t->include, base + t->offset, name);
			continue;
		}
		assert(t->name != NULL && t->name[0] != '\0');
		assert(strchr(t->name, '[') == NULL && t->name[strlen(t->name) - 1] != '.');
		assert(t->type != FL_CONFIG_ENUM || t->choices != NULL);
		assert(!is_collection(t->type) || t->def == NULL); /* collections start empty */
		assert(!(t->flags & FL_CONFIG_REQUIRED) || t->def == NULL);
		assert(t->type != FL_CONFIG_TABLE_LIST || (t->include != NULL && t->elem_size > 0));
		assert(t->validate == NULL);
		if (!join(name, sizeof(name), section, t->name))
			assert(!"config key name too long");
		lay->slots = fl_grow(lay->slots, slot_cap, lay->nslots + 1, sizeof(*lay->slots));
		s = &lay->slots[lay->nslots++];
		memset(s, 0, sizeof(*s));
		s->key = t;
		s->offset = base + t->offset;
		memcpy(s->name, name, sizeof(name));
	}
	if (t->validate != NULL) {
		struct rule *r;

		lay->rules = fl_grow(lay->rules, rule_cap, lay->nrules + 1, sizeof(*lay->rules));
		r = &lay->rules[lay->nrules++];
		r->fn = t->validate;
		r->offset = base;
		snprintf(r->section, sizeof(r->section), "%s", section);
	}
}

static const struct layout *get_layout(struct loader *l, const struct fl_config_key *table);

static struct layout *layout_new(const struct fl_config_key *table)
{
	struct layout *lay = fl_calloc(1, sizeof(*lay));
	size_t slot_cap = 0, rule_cap = 0, sec_cap = 0, i, j;

	lay->table = table;
	flatten(lay, &slot_cap, &rule_cap, table, 0, "");
	for (i = 0; i < lay->nslots; i++) {
		char name[NAME_LEN], *dot;

		/* every section that holds this key: "a.b.c" is in "a" and "a.b" */
		memcpy(name, lay->slots[i].name, NAME_LEN);
		for (dot = strchr(name, '.'); dot != NULL; dot = strchr(dot + 1, '.')) {
			*dot = '\0';
			add_section(lay, &sec_cap, name);
			*dot = '.';
		}
		for (j = 0; j < lay->nslots; j++) /* unique */
			assert(i == j || strcmp(lay->slots[i].name, lay->slots[j].name) != 0);
	}
	for (i = 0; i < lay->nrules; i++)
		if (lay->rules[i].section[0] != '\0')
			add_section(lay, &sec_cap, lay->rules[i].section);
	for (i = 0; i < lay->nsections; i++) /* no key is also a section */
		for (j = 0; j < lay->nslots; j++)
			assert(strcmp(lay->sections[i], lay->slots[j].name) != 0);
	return lay;
}

static void layouts_free(struct layout *lay)
{
	while (lay != NULL) {
		struct layout *next = lay->next;

		free(lay->slots);
		free(lay->sections);
		free(lay->rules);
		free(lay);
		lay = next;
	}
}

static const struct layout *get_layout(struct loader *l, const struct fl_config_key *table)
{
	struct layout *lay;

	for (lay = l->layouts; lay != NULL; lay = lay->next)
		if (lay->table == table)
			return lay;
	lay = layout_new(table);
	lay->next = l->layouts;
	l->layouts = lay;
	return lay;
}

/* How many collections deep a file for this table can go, its own mapping
 * included: each section, list and label mapping is one more. */
static int table_depth(const struct fl_config_key *table, int guard)
{
	struct layout *lay = layout_new(table);
	int need = 1;
	size_t i;

	assert(guard <= FL_CONFIG_MAX_DEPTH); /* a table inside itself */
	for (i = 0; i < lay->nslots; i++) {
		const struct fl_config_key *k = lay->slots[i].key;
		int d = 1;

		for (const char *p = lay->slots[i].name; *p != '\0'; p++)
			d += *p == '.';
		if (k->type == FL_CONFIG_TABLE_LIST)
			d += 1 + table_depth(k->include, guard + 2);
		else if (is_collection(k->type))
			d += 1;
		if (d > need)
			need = d;
	}
	layouts_free(lay);
	return need;
}

static int find_slot(const struct layout *lay, const char *name)
{
	size_t i;

	for (i = 0; i < lay->nslots; i++)
		if (strcmp(lay->slots[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int find_section(const struct layout *lay, const char *name)
{
	size_t i;

	for (i = 0; i < lay->nsections; i++)
		if (strcmp(lay->sections[i], name) == 0)
			return (int)i;
	return -1;
}

static void set_defaults(const struct layout *lay, unsigned char *target)
{
	size_t i;

	for (i = 0; i < lay->nslots; i++) {
		const struct fl_config_key *k = lay->slots[i].key;
		char why[FL_ERRBUF_SIZE];
		union value v;

		memset(target + lay->slots[i].offset, 0, field_size(k->type));
		if (k->def == NULL)
			continue;
		if (!parse_scalar(k, k->def, strlen(k->def), &v, why) ||
		    (k->check && !k->check(k, &v, why))) {
			fprintf(stderr, "flotilla: bad default for config key '%s': %s\n",
			        lay->slots[i].name, why);
			abort();
		}
		store(k, target + lay->slots[i].offset, &v);
	}
}

void fl_config_defaults(const struct fl_config_key *table, void *target)
{
	struct layout *lay = layout_new(table);

	set_defaults(lay, target);
	layouts_free(lay);
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

static struct pos pos_of(yaml_mark_t mark)
{
	struct pos p = {mark.line + 1, mark.column + 1};

	return p;
}

/* "'agent.yaml':7:3: " then the message; without a line, "'agent.yaml': ". */
__attribute__((format(printf, 3, 0))) static enum fl_err vat(struct loader *l, struct pos p,
                                                             const char *fmt, va_list ap)
{
	char msg[FL_ERRBUF_SIZE];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (p.line == 0)
		return fl_errf(l->errbuf, FL_EPARSE, "'%s': %s", l->file, msg);
	return fl_errf(l->errbuf, FL_EPARSE, "'%s':%zu:%zu: %s", l->file, p.line, p.column, msg);
}

/* An error at the current event. */
__attribute__((format(printf, 2, 3))) static enum fl_err at(struct loader *l, const char *fmt, ...)
{
	enum fl_err rv;
	va_list ap;

	va_start(ap, fmt);
	rv = vat(l, pos_of(l->ev.start_mark), fmt, ap);
	va_end(ap);
	return rv;
}

/* An error at an earlier place: where a list began, where a key was set. */
__attribute__((format(printf, 3, 4))) static enum fl_err at_pos(struct loader *l, struct pos p,
                                                                const char *fmt, ...)
{
	enum fl_err rv;
	va_list ap;

	va_start(ap, fmt);
	rv = vat(l, p, fmt, ap);
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

/* ---- frames ---- */

static void frame_init(struct frame *f, const struct layout *lay, unsigned char *target,
                       const char *path, bool top)
{
	memset(f, 0, sizeof(*f));
	f->lay = lay;
	f->target = target;
	f->top = top;
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->keys = fl_calloc(lay->nslots ? lay->nslots : 1, sizeof(*f->keys));
	f->secs = fl_calloc(lay->nsections ? lay->nsections : 1, sizeof(*f->secs));
}

static void frame_fini(struct frame *f)
{
	free(f->keys);
	free(f->secs);
}

/* name (relative to f's table) as messages show it: "waves[1].select.percent". */
static const char *full_name(const struct frame *f, const char *name, char out[PATH_LEN])
{
	join(out, PATH_LEN, f->path, name); /* a path too long to show is cut */
	return out;
}

static size_t list_cap(const struct fl_config_key *k)
{
	return k->max > 0 ? (size_t)k->max : FL_CONFIG_MAX_LIST;
}

static enum fl_err parse_mapping(struct loader *l, struct frame *f, const char *section);
static enum fl_err finish_frame(struct loader *l, struct frame *f);

/* A list of strings or public keys; the current event is its SEQUENCE_START. */
static enum fl_err parse_list(struct loader *l, const struct fl_config_key *k, const char *name,
                              union value *v)
{
	size_t cap = 0, max = list_cap(k);
	enum fl_err rv;
	char why[FL_ERRBUF_SIZE], q[SHOW_LEN];

	for (;;) {
		const char *text;
		size_t len, i, *n = k->type == FL_CONFIG_STRING_LIST ? &v->strs.n : &v->pks.n;

		if ((rv = next(l)) != FL_OK)
			return rv;
		if (l->ev.type == YAML_SEQUENCE_END_EVENT)
			return FL_OK;
		if (l->ev.type != YAML_SCALAR_EVENT)
			return at(l, "'%s': expected %s, got a list of %ss", name,
			          expected(k->type),
			          l->ev.type == YAML_SEQUENCE_START_EVENT ? "list" : "mapping");
		if (*n == max)
			return at(l, "'%s': too many items (at most %zu)", name, max);
		text = (const char *)l->ev.data.scalar.value;
		len = l->ev.data.scalar.length;
		if (is_null(text, len, l->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
			return at(l, "'%s': empty list item", name);
		if (memchr(text, '\0', len) != NULL)
			return at(l, "'%s': contains a NUL byte", name);
		if (k->type == FL_CONFIG_STRING_LIST) {
			v->strs.items = fl_grow(v->strs.items, &cap, *n + 1, sizeof(char *));
			v->strs.items[(*n)++] = fl_strndup(text, len);
			continue;
		}
		v->pks.keys = fl_grow(v->pks.keys, &cap, *n + 1, sizeof(*v->pks.keys));
		if (!parse_pubkey(text, len, v->pks.keys[*n], why))
			return at(l, "'%s': %s", name, why);
		for (i = 0; i < *n; i++)
			if (memcmp(v->pks.keys[i], v->pks.keys[*n], FL_CONFIG_PUBKEY_LEN) == 0)
				return at(l, "'%s': '%s' is listed twice", name,
				          show(text, len, q));
		(*n)++;
	}
}

/* `{ring: canary, region: eu}`; the current event is its MAPPING_START. */
static enum fl_err parse_labels(struct loader *l, const char *name, union value *v)
{
	char why[FL_ERRBUF_SIZE], q[SHOW_LEN], *key = NULL;
	struct fl_labels probe;
	enum fl_err rv;

	fl_labels_init(&v->labels);
	for (;;) {
		const char *text;
		size_t len;
		struct pos key_pos;

		if ((rv = next(l)) != FL_OK)
			goto out;
		if (l->ev.type == YAML_MAPPING_END_EVENT)
			goto out;
		if (l->ev.type != YAML_SCALAR_EVENT) {
			rv = at(l, "'%s': expected a label name, got %s", name, event_kind(&l->ev));
			goto out;
		}
		text = (const char *)l->ev.data.scalar.value;
		len = l->ev.data.scalar.length;
		key_pos = pos_of(l->ev.start_mark);
		if (memchr(text, '\0', len) != NULL) {
			rv = at(l, "'%s': a label name contains a NUL byte", name);
			goto out;
		}
		/* the name alone first, so that its error points at it */
		fl_labels_init(&probe);
		rv = fl_labels_set(&probe, text, "", why);
		fl_labels_fini(&probe);
		if (rv != FL_OK) {
			rv = at(l, "'%s': %s", name, why);
			goto out;
		}
		if (fl_labels_get(&v->labels, text) != NULL) {
			rv = at(l, "'%s': label '%s' is given twice", name, show(text, len, q));
			goto out;
		}
		key = fl_strndup(text, len);
		if ((rv = next(l)) != FL_OK)
			goto out;
		if (l->ev.type != YAML_SCALAR_EVENT) {
			rv = at(l, "'%s': label '%s': expected a string, got %s", name, key,
			        event_kind(&l->ev));
			goto out;
		}
		text = (const char *)l->ev.data.scalar.value;
		len = l->ev.data.scalar.length;
		if (is_null(text, len, l->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
			rv = at(l, "'%s': label '%s' has no value (write \"\" for an empty one)",
			        name, key);
			goto out;
		}
		if (memchr(text, '\0', len) != NULL) {
			rv = at(l, "'%s': label '%s': contains a NUL byte", name, key);
			goto out;
		}
		if (fl_labels_set(&v->labels, key, text, why) != FL_OK) {
			/* too many labels is about the name; a bad value, the value */
			rv = v->labels.n >= FL_LABELS_MAX && fl_labels_get(&v->labels, key) == NULL
			         ? at_pos(l, key_pos, "'%s': %s", name, why)
			         : at(l, "'%s': %s", name, why);
			goto out;
		}
		free(key);
		key = NULL;
	}
out:
	free(key);
	return rv;
}

/* A list of mappings; the current event is its SEQUENCE_START. */
static enum fl_err parse_table_list(struct loader *l, const struct fl_config_key *k,
                                    const char *name, union value *v)
{
	const struct layout *sub = get_layout(l, k->include);
	size_t cap = 0, max = list_cap(k);
	enum fl_err rv;

	for (;;) {
		char path[PATH_LEN];
		unsigned char *elem;
		struct frame ef;

		if ((rv = next(l)) != FL_OK)
			return rv;
		if (l->ev.type == YAML_SEQUENCE_END_EVENT)
			return FL_OK;
		elem_name(path, name, v->list.n);
		if (l->ev.type != YAML_MAPPING_START_EVENT)
			return at(l, "'%s': expected a mapping (key: value), got %s", path,
			          event_kind(&l->ev));
		if (v->list.n == max)
			return at(l, "'%s': too many items (at most %zu)", name, max);
		v->list.items = fl_grow(v->list.items, &cap, v->list.n + 1, k->elem_size);
		elem = (unsigned char *)v->list.items + v->list.n * k->elem_size;
		memset(elem, 0, k->elem_size);
		set_defaults(sub, elem);
		v->list.n++; /* counted now: an error below releases it with the rest */
		frame_init(&ef, sub, elem, path, false);
		ef.start = pos_of(l->ev.start_mark);
		ef.items = v->list.items;
		ef.index = v->list.n - 1;
		l->depth++;
		rv = parse_mapping(l, &ef, "");
		l->depth--;
		if (rv == FL_OK)
			rv = finish_frame(l, &ef);
		frame_fini(&ef);
		if (rv != FL_OK)
			return rv;
	}
}

/* The value of slot idx of f, starting at the current event. */
static enum fl_err parse_value(struct loader *l, struct frame *f, int idx)
{
	const struct slot *s = &f->lay->slots[idx];
	const struct fl_config_key *k = s->key;
	struct pos start = pos_of(l->ev.start_mark);
	char why[FL_ERRBUF_SIZE], name[PATH_LEN];
	union value v;
	enum fl_err rv = FL_OK;
	size_t n = 0;

	full_name(f, s->name, name);
	memset(&v, 0, sizeof(v));
	if (l->ev.type == YAML_SCALAR_EVENT) {
		const char *text = (const char *)l->ev.data.scalar.value;
		size_t len = l->ev.data.scalar.length;

		if (is_null(text, len, l->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
			return at(l, "'%s': no value (leave the key out to use the default)", name);
		if (k->type == FL_CONFIG_TABLE_LIST)
			return at(l,
			          "'%s': expected %s, got a string (write one '- {key: value}' per "
			          "item)",
			          name, expected(k->type));
		if (is_list(k->type))
			return at(l,
			          "'%s': expected %s, got a string (write [a, b] or one '- item' "
			          "per line)",
			          name, expected(k->type));
		if (k->type == FL_CONFIG_LABELS)
			return at(l, "'%s': expected %s, got a string", name, expected(k->type));
		if (!parse_scalar(k, text, len, &v, why))
			return at(l, "'%s': %s", name, why);
	} else if (l->ev.type == YAML_SEQUENCE_START_EVENT && is_list(k->type)) {
		l->depth++;
		assert(l->depth <= FL_CONFIG_MAX_DEPTH);
		if (k->type == FL_CONFIG_TABLE_LIST) {
			rv = parse_table_list(l, k, name, &v);
			n = v.list.n;
		} else {
			rv = parse_list(l, k, name, &v);
			n = k->type == FL_CONFIG_STRING_LIST ? v.strs.n : v.pks.n;
		}
		l->depth--;
	} else if (l->ev.type == YAML_MAPPING_START_EVENT && k->type == FL_CONFIG_LABELS) {
		l->depth++;
		assert(l->depth <= FL_CONFIG_MAX_DEPTH);
		rv = parse_labels(l, name, &v);
		n = v.labels.n;
		l->depth--;
	} else {
		return at(l, "'%s': expected %s, got %s", name, expected(k->type),
		          event_kind(&l->ev));
	}
	if (rv == FL_OK && is_collection(k->type) && n == 0 && (k->flags & FL_CONFIG_NONEMPTY))
		rv = at_pos(l, start, "'%s': must not be empty", name);
	if (rv == FL_OK && k->check != NULL && !k->check(k, &v, why))
		rv = at_pos(l, start, "'%s': %s", name, why);
	if (rv != FL_OK) {
		release_value(k, &v);
		return rv;
	}
	store(k, f->target + s->offset, &v);
	return FL_OK;
}

static enum fl_err unknown_key(struct loader *l, const struct frame *f, const char *name)
{
	const struct layout *lay = f->lay;
	size_t i, best = (size_t)-1, limit = strlen(name) >= 12 ? 3 : 2;
	const char *guess = NULL;
	char q[SHOW_LEN], full[PATH_LEN], guess_full[PATH_LEN];

	for (i = 0; i < lay->nslots + lay->nsections; i++) {
		const char *cand =
		    i < lay->nslots ? lay->slots[i].name : lay->sections[i - lay->nslots];
		size_t d = edit_distance(name, cand);

		/* close, and not a guess from nothing ("a" is not "db") */
		if (d <= limit && d < best && d < strlen(name)) {
			best = d;
			guess = cand;
		}
	}
	full_name(f, name, full);
	if (guess != NULL)
		return at(l, "unknown key '%s' (did you mean '%s'?)", show(full, strlen(full), q),
		          full_name(f, guess, guess_full));
	return at(l, "unknown key '%s'", show(full, strlen(full), q));
}

/* The pairs of a mapping whose MAPPING_START is the current event, for the
 * keys of f's table under section ("" at the table's top, where a key may
 * also be written dotted: "tls.cert: x" is "tls: {cert: x}"). */
static enum fl_err parse_mapping(struct loader *l, struct frame *f, const char *section)
{
	enum fl_err rv;
	char q[SHOW_LEN], full[PATH_LEN];

	for (;;) {
		char name[NAME_LEN];
		const char *key;
		size_t len;
		struct pos p;
		int i;

		if ((rv = next(l)) != FL_OK)
			return rv;
		if (l->ev.type == YAML_MAPPING_END_EVENT)
			return FL_OK;
		if (l->ev.type != YAML_SCALAR_EVENT)
			return at(l, "expected a key, got %s", event_kind(&l->ev));
		key = (const char *)l->ev.data.scalar.value;
		len = l->ev.data.scalar.length;
		p = pos_of(l->ev.start_mark);
		if (len == 0 || memchr(key, '\0', len) != NULL || len >= NAME_LEN ||
		    (section[0] != '\0' && strchr(key, '.') != NULL) ||
		    !join(name, sizeof(name), section, key)) {
			char shown[PATH_LEN];

			snprintf(shown, sizeof(shown), "%s%s%.*s", section, section[0] ? "." : "",
			         (int)(len > QUOTE_MAX ? QUOTE_MAX + 1 : len), key);
			full_name(f, shown, full);
			return at(l, "unknown key '%s'", show(full, strlen(full), q));
		}
		if ((i = find_slot(f->lay, name)) >= 0) {
			if (f->keys[i].line != 0)
				return at(l, "duplicate key '%s' (first set at line %zu)",
				          full_name(f, name, full), f->keys[i].line);
			f->keys[i] = p;
			if ((rv = next(l)) != FL_OK)
				return rv;
			if ((rv = parse_value(l, f, i)) != FL_OK)
				return rv;
			continue;
		}
		if ((i = find_section(f->lay, name)) < 0)
			return unknown_key(l, f, name);
		if (f->secs[i].line != 0)
			return at(l, "duplicate section '%s' (first at line %zu)",
			          full_name(f, name, full), f->secs[i].line);
		f->secs[i] = p;
		if ((rv = next(l)) != FL_OK)
			return rv;
		if (l->ev.type != YAML_MAPPING_START_EVENT)
			return at(l, "'%s': expected a mapping of keys, got %s",
			          full_name(f, name, full), event_kind(&l->ev));
		l->depth++;
		assert(l->depth <= FL_CONFIG_MAX_DEPTH);
		rv = parse_mapping(l, f, name);
		l->depth--;
		if (rv != FL_OK)
			return rv;
	}
}

/* ---- cross-field rules ---- */

/* Where the file set name (a key or a section of f's table), or a zero pos. */
static struct pos where(const struct frame *f, const char *name)
{
	struct pos none = {0, 0};
	int i;

	if ((i = find_slot(f->lay, name)) >= 0)
		return f->keys[i];
	if ((i = find_section(f->lay, name)) >= 0)
		return f->secs[i];
	return none;
}

bool fl_config_isset(const struct fl_config_scope *scope, const char *key)
{
	const struct scope_priv *sp = scope->priv;
	char name[NAME_LEN];

	if (!join(name, sizeof(name), sp->section, key))
		assert(!"config key name too long");
	assert(find_slot(sp->f->lay, name) >= 0 || find_section(sp->f->lay, name) >= 0);
	return where(sp->f, name).line != 0;
}

/* After f's mapping: its required keys, then its tables' rules, inner first. */
static enum fl_err finish_frame(struct loader *l, struct frame *f)
{
	const struct layout *lay = f->lay;
	struct pos none = {0, 0};
	char full[PATH_LEN];
	size_t i;

	for (i = 0; i < lay->nslots; i++)
		if ((lay->slots[i].key->flags & FL_CONFIG_REQUIRED) && f->keys[i].line == 0)
			return at_pos(l, f->top ? none : f->start, "missing required key '%s'",
			              full_name(f, lay->slots[i].name, full));
	for (i = 0; i < lay->nrules; i++) {
		const struct rule *r = &lay->rules[i];
		struct scope_priv sp = {f, r->section};
		struct fl_config_scope scope = {f->target + r->offset, f->items, f->index, &sp};
		char why[FL_ERRBUF_SIZE] = "", name[NAME_LEN];
		const char *key = NULL;
		struct pos p = none;

		if (r->fn(&scope, &key, why))
			continue;
		if (!join(name, sizeof(name), r->section, key ? key : ""))
			assert(!"config key name too long");
		assert(key == NULL || find_slot(lay, name) >= 0 || find_section(lay, name) >= 0);
		/* at the key; else where its section or element began */
		if (key != NULL)
			p = where(f, name);
		if (p.line == 0 && r->section[0] != '\0')
			p = where(f, r->section);
		if (p.line == 0 && !f->top)
			p = f->start;
		full_name(f, name, full);
		if (full[0] == '\0')
			return at_pos(l, p, "%s", why);
		return at_pos(l, p, "'%s': %s", full, why);
	}
	return FL_OK;
}

static enum fl_err parse_stream(struct loader *l, struct frame *top)
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
		top->start = pos_of(l->ev.start_mark);
		l->depth = 1;
		if ((rv = parse_mapping(l, top, "")) != FL_OK)
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
	struct frame top;
	enum fl_err rv = FL_OK;

	assert(table_depth(table, 0) <= FL_CONFIG_MAX_DEPTH);
	memset(&l, 0, sizeof(l));
	l.file = name ? name : "(config)";
	l.errbuf = errbuf;
	frame_init(&top, get_layout(&l, table), target, "", true);
	set_defaults(top.lay, target);
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
	rv = parse_stream(&l, &top);
	if (l.have_ev)
		yaml_event_delete(&l.ev);
	yaml_parser_delete(&l.parser);
	if (rv == FL_OK)
		rv = finish_frame(&l, &top);
out:
	if (rv != FL_OK)
		fl_config_fini(table, target);
	frame_fini(&top);
	layouts_free(l.layouts);
	return rv;
}

static bool has_trust_root(const struct fl_config_key *t)
{
	for (; t->type != FL_CONFIG_END; t++) {
		if ((t->type == FL_CONFIG_INCLUDE || t->type == FL_CONFIG_TABLE_LIST) &&
		    has_trust_root(t->include))
			return true;
		if (t->flags & FL_CONFIG_TRUST_ROOT)
			return true;
	}
	return false;
}

/* As lib/keys.c does for secret key files, on the open file: whoever may
 * write this file decides which keys we trust. */
static enum fl_err check_protected(const char *path, const struct stat *st, char *errbuf)
{
	uid_t euid = geteuid();

	if (st->st_uid != euid && st->st_uid != 0)
		return fl_errf(errbuf, FL_EIO,
		               "refusing '%s': owned by uid %u, not by this user (uid %u) or root; "
		               "it holds trust roots",
		               path, (unsigned)st->st_uid, (unsigned)euid);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return fl_errf(errbuf, FL_EIO,
		               "refusing '%s': writable by %s (mode %04o); it holds trust roots: "
		               "chmod go-w it",
		               path, st->st_mode & S_IWOTH ? "others" : "its group",
		               (unsigned)(st->st_mode & 07777));
	return FL_OK;
}

enum fl_err fl_config_load_file(const char *path, const struct fl_config_key *table, void *target,
                                char *errbuf)
{
	char *text = NULL, eb[128];
	struct stat st;
	enum fl_err rv;
	size_t len = 0;
	int fd;

	if ((rv = fl_file_open(path, FL_FILE_REGULAR, &fd, &st, errbuf)) != FL_OK)
		goto fail;
	if (S_ISDIR(st.st_mode))
		rv = fl_errf(errbuf, FL_EIO, "cannot read '%s': %s", path,
		             fl_err_errno(EISDIR, eb, sizeof(eb)));
	else if (!S_ISREG(st.st_mode))
		rv = fl_errf(errbuf, FL_EIO, "cannot read '%s': not a regular file", path);
	else if (has_trust_root(table))
		rv = check_protected(path, &st, errbuf);
	if (rv == FL_OK) {
		/* one byte more than allowed, to tell a file at the cap from one above */
		text = fl_malloc(FL_CONFIG_MAX_FILE + 1);
		rv = fl_file_read_fd(fd, path, text, FL_CONFIG_MAX_FILE + 1, &len, errbuf);
		if (rv == FL_OK && len > FL_CONFIG_MAX_FILE)
			rv = fl_errf(errbuf, FL_EPARSE, "'%s': too large (over %d bytes)", path,
			             FL_CONFIG_MAX_FILE);
	}
	close(fd);
	if (rv != FL_OK)
		goto fail;
	rv = fl_config_load_buffer(text, len, path, table, target, errbuf);
	free(text);
	return rv;
fail:
	free(text);
	/* The contract: target's fields are set (to nothing) even on failure. */
	fl_config_defaults(table, target);
	fl_config_fini(table, target);
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
	case FL_CONFIG_FLOAT:
		return x.f == y.f;
	case FL_CONFIG_LABELS:
		if (x.labels.n != y.labels.n)
			return false;
		for (i = 0; i < x.labels.n; i++)
			if (strcmp(x.labels.items[i].key, y.labels.items[i].key) != 0 ||
			    strcmp(x.labels.items[i].value, y.labels.items[i].value) != 0)
				return false;
		return true;
	default:
		return memcmp(&x, &y, field_size(k->type)) == 0;
	}
}

static enum fl_err check_reload(const struct fl_config_key *t, const char *prefix,
                                const unsigned char *cur, const unsigned char *next_cfg,
                                char *errbuf)
{
	char name[PATH_LEN];
	enum fl_err rv;
	size_t i;

	for (; t->type != FL_CONFIG_END; t++) {
		join(name, sizeof(name), prefix, t->name ? t->name : "");
		if (t->type == FL_CONFIG_INCLUDE) {
			rv = check_reload(t->include, name, cur + t->offset, next_cfg + t->offset,
			                  errbuf);
			if (rv != FL_OK)
				return rv;
			continue;
		}
		if (t->flags & FL_CONFIG_RELOADABLE)
			continue;
		if (t->type == FL_CONFIG_TABLE_LIST) {
			const struct fl_config_list *a = (const void *)(cur + t->offset);
			const struct fl_config_list *b = (const void *)(next_cfg + t->offset);

			if (a->n != b->n)
				goto changed;
			for (i = 0; i < a->n; i++) {
				char elem[PATH_LEN];

				elem_name(elem, name, i);
				rv = check_reload(
				    t->include, elem,
				    (const unsigned char *)a->items + i * t->elem_size,
				    (const unsigned char *)b->items + i * t->elem_size, errbuf);
				if (rv != FL_OK)
					return rv;
			}
			continue;
		}
		if (!same(t, cur + t->offset, next_cfg + t->offset))
			goto changed;
	}
	return FL_OK;
changed:
	return fl_errf(errbuf, FL_ESTATE, "'%s' cannot change on reload: restart instead", name);
}

enum fl_err fl_config_check_reload(const struct fl_config_key *table, const void *cur,
                                   const void *next_cfg, char *errbuf)
{
	return check_reload(table, "", cur, next_cfg, errbuf);
}

/* ---- docs ---- */

static void walk(const struct fl_config_key *t, const char *prefix, fl_config_walk_fn fn, void *arg)
{
	for (; t->type != FL_CONFIG_END; t++) {
		char path[PATH_LEN], elems[PATH_LEN + 2];

		join(path, sizeof(path), prefix, t->name ? t->name : "");
		if (t->type == FL_CONFIG_INCLUDE) {
			if (fn(arg, path, t))
				walk(t->include, path, fn, arg);
		} else if (t->type == FL_CONFIG_TABLE_LIST) {
			snprintf(elems, sizeof(elems), "%s[]", path);
			if (fn(arg, path, t))
				walk(t->include, elems, fn, arg);
		} else {
			fn(arg, path, t);
		}
	}
}

void fl_config_walk(const struct fl_config_key *table, fl_config_walk_fn fn, void *arg)
{
	walk(table, "", fn, arg);
}

static void format_bounds(const struct fl_config_key *k, char *out, size_t n)
{
	char lo[64], hi[64];

	out[0] = '\0';
	switch (k->type) {
	case FL_CONFIG_INT:
	case FL_CONFIG_DURATION:
	case FL_CONFIG_SIZE:
		if (k->min == 0 && k->max == 0)
			return;
		format_value(k, k->min, lo, sizeof(lo));
		format_value(k, k->max, hi, sizeof(hi));
		snprintf(out, n, "%s to %s", lo, hi);
		return;
	case FL_CONFIG_FLOAT:
		if (k->fmin == 0 && k->fmax == 0)
			return;
		format_float(k->fmin, lo, sizeof(lo));
		format_float(k->fmax, hi, sizeof(hi));
		snprintf(out, n, "%s to %s", lo, hi);
		return;
	case FL_CONFIG_STRING:
		if (k->max > 0)
			snprintf(out, n, "%s%lld bytes",
			         k->flags & FL_CONFIG_NONEMPTY ? "1 to " : "at most ",
			         (long long)k->max);
		return;
	case FL_CONFIG_STRING_LIST:
	case FL_CONFIG_PUBKEY_LIST:
	case FL_CONFIG_TABLE_LIST:
		if (k->max > 0 || (k->flags & FL_CONFIG_NONEMPTY))
			snprintf(out, n, "%d to %zu items", k->flags & FL_CONFIG_NONEMPTY ? 1 : 0,
			         list_cap(k));
		return;
	case FL_CONFIG_LABELS:
		snprintf(out, n, "%d to %d labels", k->flags & FL_CONFIG_NONEMPTY ? 1 : 0,
		         FL_LABELS_MAX);
		return;
	default:
		return;
	}
}

void fl_config_doc_row(const char *path, const struct fl_config_key *k, bool reload, char *out,
                       size_t outlen)
{
	char def[128], bounds[160];

	if (k->flags & FL_CONFIG_REQUIRED)
		snprintf(def, sizeof(def), "required");
	else if (k->def != NULL)
		snprintf(def, sizeof(def), "`%s`", k->def);
	else if (is_collection(k->type))
		snprintf(def, sizeof(def), "empty");
	else
		snprintf(def, sizeof(def), "unset");
	format_bounds(k, bounds, sizeof(bounds));
	if (reload)
		snprintf(out, outlen, "| `%s` | %s | %s | %s | %s | %s |", path,
		         fl_config_type_name(k->type), def, bounds,
		         (k->flags & FL_CONFIG_RELOADABLE) ? "yes" : "no", k->help ? k->help : "");
	else
		snprintf(out, outlen, "| `%s` | %s | %s | %s | %s |", path,
		         fl_config_type_name(k->type), def, bounds, k->help ? k->help : "");
}
