/*
 * The YAML config loader and the wire table.
 *
 * Data-driven: every tests/data/config/NN_name.yaml is loaded with the table
 * its NN_name.expect names, which then lists either the error substrings
 * expected (one `error: ...` line each) or the values loaded (`key = value`):
 *
 *   # what the case shows
 *   table: wire
 *   error: '20_typo.yaml':3:1: unknown key 'trusted_relase_keys'
 *
 * A value line names a key by its path ("servers[1].tls.verify"); a list of
 * mappings itself shows its length ("servers = 2 items").
 *
 * Files load by bare name (the test runs in that folder), so messages name
 * them as users see them. Other cases (sizes, includes, reload, trust-root
 * files, the docs and example files listing every key) are plain tests below.
 *
 * Docs and examples: every table in `documented` below must have its rows in
 * its section of the docs and its keys in its example files. A daemon that
 * adds a table registers it there with one line (and links the library that
 * defines it into this test, tests/CMakeLists.txt).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "agent_config.h"
#include "buf.h"
#include "config.h"
#include "coordinator_config.h"
#include "duration.h"
#include "mem.h"
#include "policy.h"
#include "testutil.h"
#include "wire_config.h"

#define MAX_CASES 256
#define LINE_MAX_ 4096

/* ---- a table with every type, for the generic loader ---- */

/* An element of the test table's list of mappings. */
struct server {
	char *name;
	char *url;
	char *host;
	int64_t port;
	double weight;
	struct fl_labels labels;
	bool tls_verify;
	int64_t pool_size;
	bool has_host; /* filled by the validate function */
};

struct test_cfg {
	char *name;
	int64_t workers;
	bool verbose;
	int64_t timeout_ms;
	uint64_t buffer;
	int log_format;
	struct fl_config_strings tags;
	struct fl_config_pubkey key;
	struct fl_config_pubkeys keys;
	char *tls_cert;
	bool tls_verify;
	double ratio;
	struct fl_labels labels;
	int64_t db_pool_size;
	int64_t db_pool_idle_ms;
	char *motto;
	struct fl_config_list servers;
};

static const char *const log_formats[] = {"text", "json", NULL};

/* exactly one of url and host; names unique across the list */
static bool server_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	struct server *s = scope->self;
	const struct server *all = scope->items;
	bool url = fl_config_isset(scope, "url"), host = fl_config_isset(scope, "host");

	ck_assert_ptr_eq(s, &all[scope->index]);
	if (url == host) {
		*key = url ? "host" : NULL;
		snprintf(why, FL_ERRBUF_SIZE, "give exactly one of url and host");
		return false;
	}
	for (size_t i = 0; i < scope->index; i++) {
		if (strcmp(all[i].name, s->name) == 0) {
			*key = "name";
			snprintf(why, FL_ERRBUF_SIZE, "'%s' is also servers[%zu]", s->name, i);
			return false;
		}
	}
	s->has_host = host;
	return true;
}

/* inside a section of a list element: runs first, sees its own keys */
static bool server_pool_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	const int64_t *size = scope->self;

	if (fl_config_isset(scope, "size") && *size == 13) {
		*key = "size";
		snprintf(why, FL_ERRBUF_SIZE, "13 is unlucky");
		return false;
	}
	return true;
}

static const struct fl_config_key server_pool_table[] = {
    {.name = "size",
     .type = FL_CONFIG_INT,
     .offset = 0,
     .def = "4",
     .min = 1,
     .max = 100,
     .help = "a key in a section of an element"},
    {.type = FL_CONFIG_END, .validate = server_pool_ok},
};

static const struct fl_config_key server_table[] = {
    {.name = "name",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct server, name),
     .max = 16,
     .help = "a required key of an element"},
    {.name = "url",
     .type = FL_CONFIG_STRING,
     .offset = offsetof(struct server, url),
     .help = "one of url and host"},
    {.name = "host",
     .type = FL_CONFIG_STRING,
     .offset = offsetof(struct server, host),
     .help = "one of url and host"},
    {.name = "port",
     .type = FL_CONFIG_INT,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct server, port),
     .def = "5432",
     .min = 1,
     .max = 65535,
     .help = "a default per element"},
    {.name = "weight",
     .type = FL_CONFIG_FLOAT,
     .offset = offsetof(struct server, weight),
     .def = "1",
     .fmin = 0,
     .fmax = 10,
     .help = "a number"},
    {.name = "labels",
     .type = FL_CONFIG_LABELS,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct server, labels),
     .help = "labels"},
    {.name = "tls.verify",
     .type = FL_CONFIG_BOOL,
     .offset = offsetof(struct server, tls_verify),
     .def = "true",
     .help = "a dotted key in an element"},
    {.name = "pool",
     .type = FL_CONFIG_INCLUDE,
     .offset = offsetof(struct server, pool_size),
     .include = server_pool_table},
    {.type = FL_CONFIG_END, .validate = server_ok},
};

/* a rule over the whole file: no line of its own unless it names a key */
static bool test_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	const struct test_cfg *c = scope->self;

	ck_assert_ptr_null(scope->items);
	if (c->name != NULL && strcmp(c->name, "reject me") == 0) {
		snprintf(why, FL_ERRBUF_SIZE, "refused as a whole");
		return false;
	}
	if (c->verbose && c->workers == 7) {
		*key = "verbose";
		snprintf(why, FL_ERRBUF_SIZE, "not with 7 workers");
		return false;
	}
	return true;
}

static const struct fl_config_key test_table[] = {
    {.name = "name",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct test_cfg, name),
     .help = "a required string"},
    {.name = "workers",
     .type = FL_CONFIG_INT,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct test_cfg, workers),
     .def = "4",
     .min = 1,
     .max = 64,
     .help = "an integer"},
    {.name = "verbose",
     .type = FL_CONFIG_BOOL,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct test_cfg, verbose),
     .def = "false",
     .help = "a bool"},
    {.name = "timeout",
     .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct test_cfg, timeout_ms),
     .def = "30s",
     .min = 1000,
     .max = 3600000,
     .help = "a duration"},
    {.name = "buffer",
     .type = FL_CONFIG_SIZE,
     .offset = offsetof(struct test_cfg, buffer),
     .def = "64KiB",
     .min = 1024,
     .max = 1024 * 1024,
     .help = "a size"},
    {.name = "log_format",
     .type = FL_CONFIG_ENUM,
     .offset = offsetof(struct test_cfg, log_format),
     .def = "text",
     .choices = log_formats,
     .help = "an enum"},
    {.name = "tags",
     .type = FL_CONFIG_STRING_LIST,
     .offset = offsetof(struct test_cfg, tags),
     .help = "a string list"},
    {.name = "key",
     .type = FL_CONFIG_PUBKEY,
     .offset = offsetof(struct test_cfg, key),
     .help = "a public key"},
    {.name = "keys",
     .type = FL_CONFIG_PUBKEY_LIST,
     .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct test_cfg, keys),
     .help = "a public key list"},
    {.name = "tls.cert",
     .type = FL_CONFIG_STRING,
     .offset = offsetof(struct test_cfg, tls_cert),
     .help = "a key in a section"},
    {.name = "tls.verify",
     .type = FL_CONFIG_BOOL,
     .offset = offsetof(struct test_cfg, tls_verify),
     .def = "true",
     .help = "another"},
    {.name = "ratio",
     .type = FL_CONFIG_FLOAT,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct test_cfg, ratio),
     .def = "0.5",
     .fmin = 0,
     .fmax = 1,
     .help = "a number from 0 to 1"},
    {.name = "labels",
     .type = FL_CONFIG_LABELS,
     .offset = offsetof(struct test_cfg, labels),
     .help = "labels"},
    {.name = "db.pool.size",
     .type = FL_CONFIG_INT,
     .offset = offsetof(struct test_cfg, db_pool_size),
     .def = "10",
     .min = 1,
     .max = 100,
     .help = "a key two sections deep"},
    {.name = "db.pool.idle",
     .type = FL_CONFIG_DURATION,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct test_cfg, db_pool_idle_ms),
     .def = "1m",
     .help = "another"},
    {.name = "motto",
     .type = FL_CONFIG_STRING,
     .offset = offsetof(struct test_cfg, motto),
     .max = 8,
     .help = "a string of at most 8 bytes"},
    {.name = "servers",
     .type = FL_CONFIG_TABLE_LIST,
     .offset = offsetof(struct test_cfg, servers),
     .include = server_table,
     .elem_size = sizeof(struct server),
     .max = 4,
     .help = "a list of mappings"},
    {.type = FL_CONFIG_END, .validate = test_ok},
};

/* A daemon's table: its own key plus the wire table spliced in. */
struct daemon_cfg {
	int64_t poll;
	struct fl_wire_config wire;
	char *journal;
};

static const struct fl_config_key daemon_table[] = {
    {.name = "poll",
     .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct daemon_cfg, poll),
     .def = "25s",
     .help = "long poll"},
    {.type = FL_CONFIG_INCLUDE,
     .offset = offsetof(struct daemon_cfg, wire),
     .include = fl_wire_config_table},
    {.name = "journal.path",
     .type = FL_CONFIG_STRING,
     .offset = offsetof(struct daemon_cfg, journal),
     .def = "journal",
     .help = "journal"},
    {.type = FL_CONFIG_END},
};

/* ---- helpers ---- */

static const char *data_dir(void)
{
	const char *d = getenv("FL_TEST_DATA");
	ck_assert_msg(d != NULL, "FL_TEST_DATA is not set (run through ctest)");
	return d;
}

static const char *source_dir(void)
{
	const char *d = getenv("FL_SOURCE_DIR");
	ck_assert_msg(d != NULL, "FL_SOURCE_DIR is not set (run through ctest)");
	return d;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "cannot open '%s': %s", path, strerror(errno));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	buf = fl_malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The key at path ("workers", "tls.cert", "servers[1].pool.size") and its
 * field in target, following includes, sections and list elements. */
static const struct fl_config_key *find_key(const struct fl_config_key *t, const char *path,
                                            const unsigned char *target, const void **field)
{
	for (; t->type != FL_CONFIG_END; t++) {
		size_t len = t->name ? strlen(t->name) : 0;

		if (t->type == FL_CONFIG_INCLUDE) {
			const struct fl_config_key *k;

			if (t->name == NULL)
				k = find_key(t->include, path, target + t->offset, field);
			else if (strncmp(path, t->name, len) == 0 && path[len] == '.')
				k = find_key(t->include, path + len + 1, target + t->offset, field);
			else
				k = NULL;
			if (k != NULL)
				return k;
			continue;
		}
		if (strncmp(path, t->name, len) != 0)
			continue;
		if (path[len] == '\0') {
			*field = target + t->offset;
			return t;
		}
		if (t->type == FL_CONFIG_TABLE_LIST && path[len] == '[') {
			const struct fl_config_list *l = (const void *)(target + t->offset);
			char *end;
			unsigned long i = strtoul(path + len + 1, &end, 10);

			if (strncmp(end, "].", 2) != 0 || i >= l->n)
				return NULL;
			return find_key(t->include, end + 2,
			                (const unsigned char *)l->items + i * t->elem_size, field);
		}
	}
	return NULL;
}

static void pubkey_text(const uint8_t *key, char *out, size_t outlen)
{
	sodium_bin2base64(out, outlen, key, FL_CONFIG_PUBKEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

/* The value of key k at field, as an .expect file writes it. */
static void format_field(const struct fl_config_key *k, const void *field_, char *out, size_t n)
{
	const unsigned char *field = field_;
	size_t used = 0, i;

	out[0] = '\0';
	switch (k->type) {
	case FL_CONFIG_STRING: {
		const char *s = *(char *const *)field;
		snprintf(out, n, "%s", s ? s : "(null)");
		break;
	}
	case FL_CONFIG_INT:
		snprintf(out, n, "%lld", (long long)*(const int64_t *)field);
		break;
	case FL_CONFIG_BOOL:
		snprintf(out, n, "%s", *(const bool *)field ? "true" : "false");
		break;
	case FL_CONFIG_DURATION:
		fl_duration_format(*(const int64_t *)field, out, (unsigned)n);
		break;
	case FL_CONFIG_SIZE:
		fl_config_format_size(*(const uint64_t *)field, out, n);
		break;
	case FL_CONFIG_ENUM:
		snprintf(out, n, "%s", k->choices[*(const int *)field]);
		break;
	case FL_CONFIG_STRING_LIST: {
		const struct fl_config_strings *l = (const void *)field;
		for (i = 0; i < l->n && used < n; i++)
			used += (size_t)snprintf(out + used, n - used, "%s%s", i ? ", " : "",
			                         l->items[i]);
		if (l->n == 0)
			snprintf(out, n, "[]");
		break;
	}
	case FL_CONFIG_PUBKEY: {
		const struct fl_config_pubkey *p = (const void *)field;
		if (p->set)
			pubkey_text(p->key, out, n);
		else
			snprintf(out, n, "(unset)");
		break;
	}
	case FL_CONFIG_PUBKEY_LIST: {
		const struct fl_config_pubkeys *l = (const void *)field;
		for (i = 0; i < l->n && used + 50 < n; i++) {
			used += (size_t)snprintf(out + used, n - used, "%s", i ? ", " : "");
			pubkey_text(l->keys[i], out + used, n - used);
			used += strlen(out + used);
		}
		if (l->n == 0)
			snprintf(out, n, "[]");
		break;
	}
	case FL_CONFIG_FLOAT:
		snprintf(out, n, "%g", *(const double *)field);
		break;
	case FL_CONFIG_LABELS:
		fl_labels_format((const struct fl_labels *)field, out, n);
		if (out[0] == '\0')
			snprintf(out, n, "{}");
		break;
	case FL_CONFIG_TABLE_LIST:
		snprintf(out, n, "%zu items", ((const struct fl_config_list *)field)->n);
		break;
	default:
		ck_abort_msg("no format for key '%s'", k->name);
	}
}

/* ---- the data-driven cases ---- */

static char *cases[MAX_CASES];
static int n_cases;

static int yaml_only(const struct dirent *e)
{
	size_t len = strlen(e->d_name);
	return len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0;
}

static void find_cases(void)
{
	char dir[LINE_MAX_];
	struct dirent **list;
	int i, n;

	snprintf(dir, sizeof(dir), "%s/config",
	         getenv("FL_TEST_DATA") ? getenv("FL_TEST_DATA") : ".");
	n = scandir(dir, &list, yaml_only, alphasort);
	for (i = 0; i < n; i++) {
		if (n_cases < MAX_CASES)
			cases[n_cases++] = fl_strdup(list[i]->d_name);
		free(list[i]);
	}
	if (n > 0)
		free(list);
}

static void free_cases(void)
{
	for (int i = 0; i < n_cases; i++)
		free(cases[i]);
}

START_TEST(data_case)
{
	const char *yaml = cases[_i];
	char expect_path[LINE_MAX_], dir[LINE_MAX_], err[FL_ERRBUF_SIZE] = "";
	const struct fl_config_key *table = NULL;
	union {
		struct test_cfg t;
		struct fl_wire_config w;
	} target;
	char *expect, *line, *next, *text;
	size_t text_len;
	int n_errors = 0, n_values = 0;
	enum fl_err rv;

	snprintf(dir, sizeof(dir), "%s/config", data_dir());
	ck_assert_int_eq(chdir(dir), 0);
	snprintf(expect_path, sizeof(expect_path), "%.*s.expect", (int)(strlen(yaml) - 5), yaml);
	expect = slurp(expect_path);
	memset(&target, 0xa5, sizeof(target)); /* the loader must set every field */

	/* First pass: the table. */
	for (line = expect; line != NULL;) {
		char *nl = strchr(line, '\n');
		if (strncmp(line, "table: ", 7) == 0) {
			if (strncmp(line + 7, "wire", 4) == 0)
				table = fl_wire_config_table;
			else if (strncmp(line + 7, "test", 4) == 0)
				table = test_table;
		}
		line = nl ? nl + 1 : NULL;
	}
	ck_assert_msg(table != NULL, "%s: no 'table: wire|test' line", expect_path);
	/* from memory: a checkout's file modes (umask 002 makes them group-writable) must
	 * not decide the cases of tables with trust roots; trust_root_file_protected
	 * covers files */
	text = fl_test_read_file(yaml, &text_len);
	ck_assert_ptr_nonnull(text);
	rv = fl_config_load_buffer(text, text_len, yaml, table, &target, err);
	free(text);

	for (line = expect, next = NULL; line != NULL; line = next) {
		char *nl = strchr(line, '\n');

		next = nl ? nl + 1 : NULL;
		if (nl != NULL)
			*nl = '\0';
		if (line[0] == '#' || line[0] == '\0' || strncmp(line, "table: ", 7) == 0)
			continue;
		if (strncmp(line, "error: ", 7) == 0) {
			ck_assert_msg(rv != FL_OK, "%s: loaded, but expected an error '%s'", yaml,
			              line + 7);
			ck_assert_msg(strstr(err, line + 7) != NULL,
			              "%s: error\n  '%s'\ndoes not contain\n  '%s'", yaml, err,
			              line + 7);
			n_errors++;
			continue;
		}
		char *eq = strstr(line, " = ");
		ck_assert_msg(eq != NULL, "%s: bad line '%s'", expect_path, line);
		*eq = '\0';
		ck_assert_msg(rv == FL_OK, "%s: expected it to load, got: %s", yaml, err);
		const void *field = NULL;
		const struct fl_config_key *k =
		    find_key(table, line, (const unsigned char *)&target, &field);
		char got[LINE_MAX_];
		ck_assert_msg(k != NULL, "%s: no key '%s' in the table", expect_path, line);
		format_field(k, field, got, sizeof(got));
		ck_assert_msg(strcmp(got, eq + 3) == 0, "%s: %s is '%s', expected '%s'", yaml, line,
		              got, eq + 3);
		n_values++;
	}
	ck_assert_msg(n_errors + n_values > 0, "%s: expects nothing", expect_path);
	if (n_errors > 0) {
		ck_assert_int_eq(rv, FL_EPARSE);
	} else {
		ck_assert_str_eq(err, "");
		fl_config_fini(table, &target);
	}
	/* After a failed load the target holds nothing; fini stays safe. */
	fl_config_fini(table, &target);
	free(expect);
}
END_TEST

/* ---- plain cases ---- */

static enum fl_err load_text(const char *text, const struct fl_config_key *table, void *target,
                             char *err)
{
	return fl_config_load_buffer(text, strlen(text), "t.yaml", table, target, err);
}

START_TEST(wire_defaults)
{
	struct fl_wire_config c;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(load_text("key_file: a.key\n", fl_wire_config_table, &c, err), FL_OK);
	ck_assert_str_eq(c.key_file, "a.key");
	ck_assert_ptr_null(c.coordinator_url);
	ck_assert_uint_eq(c.coordinator_public_keys.n, 0);
	ck_assert_uint_eq(c.trusted_release_keys.n, 0);
	ck_assert_uint_eq(c.max_message_size, 1024 * 1024);
	ck_assert_uint_eq(c.max_release_size, 64 * 1024 * 1024);
	ck_assert_int_eq(c.clock_skew_ms, 5 * 60 * 1000);
	ck_assert_str_eq(c.peers_state_file, "peers.seq");
	fl_config_fini(fl_wire_config_table, &c);
	fl_config_fini(fl_wire_config_table, &c);
	ck_assert_ptr_null(c.key_file);
}
END_TEST

START_TEST(include_and_sections)
{
	struct daemon_cfg c;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(load_text("poll: 10s\nkey_file: k\nclock_skew: 1m\njournal:\n  path: /j\n",
	                           daemon_table, &c, err),
	                 FL_OK);
	ck_assert_int_eq(c.poll, 10000);
	ck_assert_str_eq(c.wire.key_file, "k");
	ck_assert_int_eq(c.wire.clock_skew_ms, 60000);
	ck_assert_str_eq(c.wire.peers_state_file, "peers.seq");
	ck_assert_str_eq(c.journal, "/j");
	fl_config_fini(daemon_table, &c);

	/* the wire table's required key is required in the daemon's table too */
	ck_assert_int_eq(load_text("poll: 10s\n", daemon_table, &c, err), FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml': missing required key 'key_file'");
	ck_assert_int_eq(load_text("key_file: k\nmax_message_size: 2KiB\n", daemon_table, &c, err),
	                 FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml':2:19: 'max_message_size': 2KiB is below the minimum 4KiB");
	/* dotted at the top level and as a section are the same key */
	ck_assert_int_eq(
	    load_text("key_file: k\njournal.path: a\njournal: {path: b}\n", daemon_table, &c, err),
	    FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml':3:11: duplicate key 'journal.path' (first set at line 2)");
}
END_TEST

START_TEST(defaults_only)
{
	struct test_cfg c;

	memset(&c, 0x5a, sizeof(c));
	fl_config_defaults(test_table, &c);
	ck_assert_ptr_null(c.name);
	ck_assert_int_eq(c.workers, 4);
	ck_assert(!c.verbose);
	ck_assert_int_eq(c.timeout_ms, 30000);
	ck_assert_uint_eq(c.buffer, 65536);
	ck_assert_int_eq(c.log_format, 0);
	ck_assert_uint_eq(c.tags.n, 0);
	ck_assert(!c.key.set);
	ck_assert_ptr_null(c.tls_cert);
	ck_assert(c.tls_verify);
	fl_config_fini(test_table, &c);
}
END_TEST

START_TEST(too_large)
{
	size_t n = FL_CONFIG_MAX_FILE + 1;
	char *big = fl_malloc(n), err[FL_ERRBUF_SIZE] = "", path[] = "/tmp/fl_config_XXXXXX";
	struct fl_wire_config c;
	int fd;

	memset(big, '#', n);
	ck_assert_int_eq(fl_config_load_buffer(big, n, "big.yaml", fl_wire_config_table, &c, err),
	                 FL_EPARSE);
	ck_assert_str_eq(err, "'big.yaml': too large (over 1048576 bytes)");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, big, n), (ssize_t)n);
	close(fd);
	ck_assert_int_eq(fl_config_load_file(path, fl_wire_config_table, &c, err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "too large (over 1048576 bytes)"));
	/* exactly at the cap: comments only, so the required key is what fails */
	ck_assert_int_eq(truncate(path, FL_CONFIG_MAX_FILE), 0);
	ck_assert_int_eq(fl_config_load_file(path, fl_wire_config_table, &c, err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "missing required key 'key_file'"));
	unlink(path);
	free(big);
}
END_TEST

START_TEST(list_cap)
{
	struct fl_buf b = FL_BUF_INIT;
	struct test_cfg c;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(fl_buf_puts(&b, "name: x\ntags:\n"), FL_OK);
	for (int i = 0; i < FL_CONFIG_MAX_LIST; i++)
		ck_assert_int_eq(fl_buf_printf(&b, "  - t%d\n", i), FL_OK);
	ck_assert_int_eq(load_text(fl_buf_str(&b), test_table, &c, err), FL_OK);
	ck_assert_uint_eq(c.tags.n, FL_CONFIG_MAX_LIST);
	ck_assert_str_eq(c.tags.items[1023], "t1023");
	fl_config_fini(test_table, &c);
	ck_assert_int_eq(fl_buf_puts(&b, "  - one-too-many\n"), FL_OK);
	ck_assert_int_eq(load_text(fl_buf_str(&b), test_table, &c, err), FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml':1027:5: 'tags': too many items (at most 1024)");
	fl_buf_fini(&b);
}
END_TEST

START_TEST(deep_nesting)
{
	size_t n = 100000;
	char *deep = fl_malloc(2 * n + 32), err[FL_ERRBUF_SIZE] = "";
	struct test_cfg c;

	memcpy(deep, "name: x\ntags: ", 14);
	memset(deep + 14, '[', n);
	memset(deep + 14 + n, ']', n);
	ck_assert_int_eq(fl_config_load_buffer(deep, 14 + 2 * n, "d.yaml", test_table, &c, err),
	                 FL_EPARSE);
	ck_assert_str_eq(err,
	                 "'d.yaml':2:8: 'tags': expected a list of strings, got a list of lists");
	free(deep);
}
END_TEST

START_TEST(missing_file)
{
	struct fl_wire_config c;
	char err[FL_ERRBUF_SIZE] = "";

	memset(&c, 0xa5, sizeof(c));
	ck_assert_int_eq(
	    fl_config_load_file("/nonexistent/agent.yaml", fl_wire_config_table, &c, err),
	    FL_ENOENT);
	ck_assert_str_eq(err, "cannot open '/nonexistent/agent.yaml': No such file or directory");
	ck_assert_ptr_null(c.key_file);
	fl_config_fini(fl_wire_config_table, &c);
	ck_assert_int_eq(fl_config_load_file("/", fl_wire_config_table, &c, err), FL_EIO);
	ck_assert_str_eq(err, "cannot read '/': Is a directory");
}
END_TEST

START_TEST(reload)
{
	struct fl_wire_config a, b;
	char err[FL_ERRBUF_SIZE] = "";
	const char *base = "key_file: k\ntrusted_release_keys: "
	                   "[iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=]\n";

	ck_assert_int_eq(load_text(base, fl_wire_config_table, &a, err), FL_OK);
	ck_assert_int_eq(load_text("key_file: k\nclock_skew: 1m\nmax_message_size: 2MiB\n",
	                           fl_wire_config_table, &b, err),
	                 FL_OK);
	ck_assert_int_eq(fl_config_check_reload(fl_wire_config_table, &a, &b, err), FL_OK);
	ck_assert_int_eq(fl_config_check_reload(fl_wire_config_table, &a, &a, err), FL_OK);
	fl_config_fini(fl_wire_config_table, &b);
	ck_assert_int_eq(load_text("key_file: other\n", fl_wire_config_table, &b, err), FL_OK);
	ck_assert_int_eq(fl_config_check_reload(fl_wire_config_table, &a, &b, err), FL_ESTATE);
	ck_assert_str_eq(err, "'key_file' cannot change on reload: restart instead");
	fl_config_fini(fl_wire_config_table, &b);
	ck_assert_int_eq(load_text("key_file: k\ncoordinator_public_keys: "
	                           "[gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q=]\n",
	                           fl_wire_config_table, &b, err),
	                 FL_OK);
	ck_assert_int_eq(fl_config_check_reload(fl_wire_config_table, &a, &b, err), FL_ESTATE);
	ck_assert_str_eq(err, "'coordinator_public_keys' cannot change on reload: restart instead");
	fl_config_fini(fl_wire_config_table, &a);
	fl_config_fini(fl_wire_config_table, &b);
}
END_TEST

/* ---- lists of mappings, labels, numbers ---- */

START_TEST(table_list_owns_its_elements)
{
	struct test_cfg c;
	const struct server *s;
	char err[FL_ERRBUF_SIZE] = "";

	memset(&c, 0x5a, sizeof(c));
	fl_config_defaults(test_table, &c);
	ck_assert_uint_eq(c.servers.n, 0);
	ck_assert_ptr_null(c.servers.items);
	ck_assert_uint_eq(c.labels.n, 0);
	ck_assert(c.ratio == 0.5);
	ck_assert_int_eq(c.db_pool_size, 10);
	fl_config_fini(test_table, &c);
	ck_assert_int_eq(load_text("name: x\nkeys: [7UkoxijRwsbq6QM4kFmVYSlZJzpcY/k2NsFGFKyHN9E=]\n"
	                           "servers:\n"
	                           "  - {name: a, url: u, labels: {ring: canary}}\n"
	                           "  - {name: b, host: h, pool: {size: 9}}\n",
	                           test_table, &c, err),
	                 FL_OK);
	ck_assert_uint_eq(c.servers.n, 2);
	s = c.servers.items;
	ck_assert_str_eq(s[0].name, "a");
	ck_assert(!s[0].has_host); /* the validate function filled it */
	ck_assert(s[1].has_host);
	ck_assert_str_eq(fl_labels_get(&s[0].labels, "ring"), "canary");
	ck_assert_int_eq(s[0].pool_size, 4);
	ck_assert_int_eq(s[1].pool_size, 9);
	fl_config_fini(test_table, &c); /* ASan: every element's strings freed */
	ck_assert_ptr_null(c.servers.items);
	ck_assert_uint_eq(c.servers.n, 0);
	fl_config_fini(test_table, &c);
}
END_TEST

/* A list of mappings with the default cap, for growth and the cap. */
struct item {
	int64_t n;
	char *s;
};
struct items_cfg {
	struct fl_config_list items;
};
static const struct fl_config_key item_table[] = {
    {.name = "n",
     .type = FL_CONFIG_INT,
     .flags = FL_CONFIG_REQUIRED,
     .offset = offsetof(struct item, n)},
    {.name = "s", .type = FL_CONFIG_STRING, .offset = offsetof(struct item, s), .def = "d"},
    {.type = FL_CONFIG_END},
};
static const struct fl_config_key items_table[] = {
    {.name = "items",
     .type = FL_CONFIG_TABLE_LIST,
     .offset = offsetof(struct items_cfg, items),
     .include = item_table,
     .elem_size = sizeof(struct item)},
    {.type = FL_CONFIG_END},
};

START_TEST(table_list_cap)
{
	struct fl_buf b = FL_BUF_INIT;
	struct items_cfg c;
	const struct item *it;
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(fl_buf_puts(&b, "items:\n"), FL_OK);
	for (int i = 0; i < FL_CONFIG_MAX_LIST; i++)
		ck_assert_int_eq(
		    fl_buf_printf(&b, i % 2 ? "  - {n: %d}\n" : "  - n: %d\n    s: x\n", i), FL_OK);
	ck_assert_int_eq(load_text(fl_buf_str(&b), items_table, &c, err), FL_OK);
	ck_assert_uint_eq(c.items.n, FL_CONFIG_MAX_LIST);
	it = c.items.items;
	for (int i = 0; i < FL_CONFIG_MAX_LIST; i++) {
		ck_assert_int_eq(it[i].n, i);
		ck_assert_str_eq(it[i].s, i % 2 ? "d" : "x");
	}
	fl_config_fini(items_table, &c);
	/* one more, half read when the cap stops it: nothing leaks */
	ck_assert_int_eq(fl_buf_puts(&b, "  - {n: 1, s: x}\n"), FL_OK);
	ck_assert_int_eq(load_text(fl_buf_str(&b), items_table, &c, err), FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml':1538:5: 'items': too many items (at most 1024)");
	ck_assert_ptr_null(c.items.items);
	/* an error inside an element, after others were read */
	ck_assert_int_eq(
	    load_text("items: [{n: 1, s: a}, {n: 2, s: b}, {n: x, s: c}]\n", items_table, &c, err),
	    FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml':1:41: 'items[2].n': expected an integer, got 'x'");
	ck_assert_int_eq(load_text("items: [{n: 1, s: a}, {s: b}]\n", items_table, &c, err),
	                 FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml':1:23: missing required key 'items[1].n'");
	ck_assert_int_eq(load_text("items:\n", items_table, &c, err), FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml':1:7: 'items': no value (leave the key out to use the "
	                      "default)");
	ck_assert_int_eq(load_text("items: [{n: 1}, [2]]\n", items_table, &c, err), FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml':1:17: 'items[1]': expected a mapping (key: value), got a "
	                      "list");
	fl_buf_fini(&b);
}
END_TEST

/* A table whose rule names a key the table lacks: a bug, which aborts. */
static bool names_unknown(const struct fl_config_scope *scope, const char **key, char *why)
{
	(void)why;
	*key = "nope";
	return fl_config_isset(scope, "n");
}
static const struct fl_config_key buggy_item_table[] = {
    {.name = "n", .type = FL_CONFIG_INT, .offset = offsetof(struct item, n)},
    {.type = FL_CONFIG_END, .validate = names_unknown},
};
static const struct fl_config_key buggy_table[] = {
    {.name = "items",
     .type = FL_CONFIG_TABLE_LIST,
     .offset = offsetof(struct items_cfg, items),
     .include = buggy_item_table,
     .elem_size = sizeof(struct item)},
    {.type = FL_CONFIG_END},
};

START_TEST(validate_naming_no_key_aborts)
{
	struct items_cfg c;
	char err[FL_ERRBUF_SIZE] = "";

	/* n set: the rule passes; n missing: it names a key that does not exist */
	ck_assert_int_eq(load_text("items: [{n: 1}]\n", buggy_table, &c, err), FL_OK);
	fl_config_fini(buggy_table, &c);
	(void)load_text("items: [{}]\n", buggy_table, &c, err);
	ck_abort_msg("not reached: %s", err);
}
END_TEST

/* ---- trust roots ---- */

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(trust_root_file_protected)
{
	char root[512], path[600], err[FL_ERRBUF_SIZE] = "", want[1024];
	struct fl_wire_config w;
	struct test_cfg t;

	fl_test_tmp_root(root, sizeof(root), "fl_config_trust");
	fl_test_fmt(path, sizeof(path), "%s/agent.yaml", root);
	write_file(path, "key_file: k\n", 0644);
	ck_assert_msg(fl_config_load_file(path, fl_wire_config_table, &w, err) == FL_OK, "%s", err);
	fl_config_fini(fl_wire_config_table, &w);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(fl_config_load_file(path, fl_wire_config_table, &w, err), FL_OK);
	fl_config_fini(fl_wire_config_table, &w);

	ck_assert_int_eq(chmod(path, 0664), 0);
	memset(&w, 0xa5, sizeof(w));
	ck_assert_int_eq(fl_config_load_file(path, fl_wire_config_table, &w, err), FL_EIO);
	fl_test_fmt(want, sizeof(want),
	            "refusing '%s': writable by its group (mode 0664); it holds trust roots: "
	            "chmod go-w it",
	            path);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(w.key_file); /* set, to nothing */
	ck_assert_int_eq(chmod(path, 0646), 0);
	ck_assert_int_eq(fl_config_load_file(path, fl_wire_config_table, &w, err), FL_EIO);
	fl_test_fmt(want, sizeof(want),
	            "refusing '%s': writable by others (mode 0646); it holds trust roots: "
	            "chmod go-w it",
	            path);
	ck_assert_str_eq(err, want);
	/* a table without trust roots reads any file it can */
	write_file(path, "name: x\nkeys: [7UkoxijRwsbq6QM4kFmVYSlZJzpcY/k2NsFGFKyHN9E=]\n", 0666);
	ck_assert_int_eq(fl_config_load_file(path, test_table, &t, err), FL_OK);
	fl_config_fini(test_table, &t);
	/* the buffer entry point has no file to check */
	ck_assert_int_eq(load_text("key_file: k\n", fl_wire_config_table, &w, err), FL_OK);
	fl_config_fini(fl_wire_config_table, &w);

	/* owned by someone else: only root can make such a file here */
	write_file(path, "key_file: k\n", 0644);
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(path, 65534, 65534), 0);
		ck_assert_int_eq(fl_config_load_file(path, fl_wire_config_table, &w, err), FL_EIO);
		fl_test_fmt(
		    want, sizeof(want),
		    "refusing '%s': owned by uid 65534, not by this user (uid 0) or root; it "
		    "holds trust roots",
		    path);
		ck_assert_str_eq(err, want);
	} else {
		/* root's files are fine for anyone */
		ck_assert_int_eq(fl_config_load_file("/etc/passwd", fl_wire_config_table, &w, err),
		                 FL_EPARSE);
		ck_assert_ptr_null(strstr(err, "refusing"));
	}
	fl_test_rm_rf(root);
}
END_TEST

START_TEST(not_a_regular_file)
{
	char root[512], path[600], err[FL_ERRBUF_SIZE] = "", want[1024];
	struct fl_wire_config w;

	fl_test_tmp_root(root, sizeof(root), "fl_config_fifo");
	fl_test_fmt(path, sizeof(path), "%s/fifo.yaml", root);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	/* opened without blocking, then refused */
	ck_assert_int_eq(fl_config_load_file(path, fl_wire_config_table, &w, err), FL_EIO);
	fl_test_fmt(want, sizeof(want), "cannot read '%s': not a regular file", path);
	ck_assert_str_eq(err, want);
	fl_test_rm_rf(root);
}
END_TEST

START_TEST(reload_new_types)
{
	struct test_cfg a, b;
	char err[FL_ERRBUF_SIZE] = "";
	const char *base = "name: x\nkeys: [7UkoxijRwsbq6QM4kFmVYSlZJzpcY/k2NsFGFKyHN9E=]\n";
	char text[1024];

#define LOAD(cfg, extra)                                                                           \
	do {                                                                                       \
		fl_test_fmt(text, sizeof(text), "%s%s", base, extra);                              \
		ck_assert_msg(load_text(text, test_table, &(cfg), err) == FL_OK, "%s", err);       \
	} while (0)

	LOAD(a, "ratio: 0.1\nlabels: {ring: a}\nservers: [{name: s, host: h, port: 1}]\n");
	LOAD(b, "ratio: 0.2\nlabels: {ring: a}\nservers: [{name: s, host: h, port: 2, "
	        "labels: {x: y}}]\ndb: {pool: {idle: 5s}}\n");
	/* ratio, an element's port and labels and db.pool.idle may change */
	ck_assert_msg(fl_config_check_reload(test_table, &a, &b, err) == FL_OK, "%s", err);
	fl_config_fini(test_table, &b);
	LOAD(b, "ratio: 0.1\nlabels: {ring: b}\nservers: [{name: s, host: h, port: 1}]\n");
	ck_assert_int_eq(fl_config_check_reload(test_table, &a, &b, err), FL_ESTATE);
	ck_assert_str_eq(err, "'labels' cannot change on reload: restart instead");
	fl_config_fini(test_table, &b);
	LOAD(b, "ratio: 0.1\nlabels: {ring: a}\nservers: [{name: s, host: h2, port: 1}]\n");
	ck_assert_int_eq(fl_config_check_reload(test_table, &a, &b, err), FL_ESTATE);
	ck_assert_str_eq(err, "'servers[0].host' cannot change on reload: restart instead");
	fl_config_fini(test_table, &b);
	LOAD(b, "ratio: 0.1\nlabels: {ring: a}\nservers: [{name: s, host: h, port: 1, "
	        "pool: {size: 5}}]\n");
	ck_assert_int_eq(fl_config_check_reload(test_table, &a, &b, err), FL_ESTATE);
	ck_assert_str_eq(err, "'servers[0].pool.size' cannot change on reload: restart instead");
	fl_config_fini(test_table, &b);
	LOAD(b, "ratio: 0.1\nlabels: {ring: a}\nservers: [{name: s, host: h, port: 1}, "
	        "{name: t, url: u}]\n");
	ck_assert_int_eq(fl_config_check_reload(test_table, &a, &b, err), FL_ESTATE);
	ck_assert_str_eq(err, "'servers' cannot change on reload: restart instead");
	fl_config_fini(test_table, &b);
	LOAD(b, "ratio: 0.1\nlabels: {ring: a}\nservers: [{name: s, host: h, port: 1}]\n"
	        "db: {pool: {size: 11}}\n");
	ck_assert_int_eq(fl_config_check_reload(test_table, &a, &b, err), FL_ESTATE);
	ck_assert_str_eq(err, "'db.pool.size' cannot change on reload: restart instead");
	fl_config_fini(test_table, &b);
	ck_assert_int_eq(fl_config_check_reload(test_table, &a, &a, err), FL_OK);
	fl_config_fini(test_table, &a);
#undef LOAD
}
END_TEST

static bool collect(void *arg, const char *path, const struct fl_config_key *k)
{
	struct fl_buf *b = arg;

	ck_assert_int_eq(fl_buf_printf(b, "%s%s;", path, k->type == FL_CONFIG_INCLUDE ? "/" : ""),
	                 FL_OK);
	return k->type != FL_CONFIG_INCLUDE || k->name != NULL; /* skip unnamed includes */
}

START_TEST(walk_and_doc_rows)
{
	struct fl_buf b = FL_BUF_INIT;
	char row[512];

	fl_config_walk(test_table, collect, &b);
	ck_assert_str_eq(fl_buf_str(&b),
	                 "name;workers;verbose;timeout;buffer;log_format;tags;key;keys;tls.cert;"
	                 "tls.verify;ratio;labels;db.pool.size;db.pool.idle;motto;servers;"
	                 "servers[].name;servers[].url;servers[].host;servers[].port;"
	                 "servers[].weight;servers[].labels;servers[].tls.verify;servers[].pool/;"
	                 "servers[].pool.size;");
	fl_buf_reset(&b);
	fl_config_walk(daemon_table, collect, &b);
	ck_assert_str_eq(fl_buf_str(&b), "poll;/;journal.path;");
	fl_config_doc_row("ratio", &test_table[11], true, row, sizeof(row));
	ck_assert_str_eq(row, "| `ratio` | number | `0.5` | 0 to 1 | yes | a number from 0 to 1 |");
	fl_config_doc_row("servers", &test_table[16], false, row, sizeof(row));
	ck_assert_str_eq(row, "| `servers` | list of mappings | empty | 0 to 4 items | a list of "
	                      "mappings |");
	fl_config_doc_row("motto", &test_table[15], false, row, sizeof(row));
	ck_assert_str_eq(row, "| `motto` | string | unset | at most 8 bytes | a string of at most "
	                      "8 bytes |");
	fl_config_doc_row("labels", &test_table[12], false, row, sizeof(row));
	ck_assert_str_eq(row, "| `labels` | labels | empty | 0 to 64 labels | labels |");
	ck_assert_str_eq(fl_config_type_name(FL_CONFIG_FLOAT), "number");
	ck_assert_str_eq(fl_config_type_name(FL_CONFIG_LABELS), "labels");
	ck_assert_str_eq(fl_config_type_name(FL_CONFIG_TABLE_LIST), "list of mappings");
	fl_buf_fini(&b);
}
END_TEST

START_TEST(no_guess_from_nothing)
{
	struct test_cfg c;
	char err[FL_ERRBUF_SIZE] = "";

	/* "a" is two edits from "db" (a section), but that is no suggestion */
	ck_assert_int_eq(load_text("a: 1\n", test_table, &c, err), FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml':1:1: unknown key 'a'");
	ck_assert_int_eq(load_text("dbs: {}\n", test_table, &c, err), FL_EPARSE);
	ck_assert_str_eq(err, "'t.yaml':1:1: unknown key 'dbs' (did you mean 'db'?)");
}
END_TEST

START_TEST(format_size)
{
	char out[32];

	fl_config_format_size(0, out, sizeof(out));
	ck_assert_str_eq(out, "0");
	fl_config_format_size(1000, out, sizeof(out));
	ck_assert_str_eq(out, "1000");
	fl_config_format_size(4096, out, sizeof(out));
	ck_assert_str_eq(out, "4KiB");
	fl_config_format_size(1536 * 1024, out, sizeof(out));
	ck_assert_str_eq(out, "1536KiB");
	fl_config_format_size(UINT64_C(1) << 50, out, sizeof(out));
	ck_assert_str_eq(out, "1024TiB");
}
END_TEST

/* ---- every key documented ---- */

/*
 * The tables whose keys users read about: each has its rows under `heading`
 * in `doc` (up to the next heading as deep), and its keys in its examples,
 * which load with it. For a daemon config, every example names every key
 * (set, or commented out with its default: "# clock_skew: 5m"); for
 * policies, the examples together do. A table spliced into another without a
 * name (the wire table into a daemon's) is documented by its own entry.
 *
 * A daemon that gets its own table (including the wire one) registers it
 * here with one line, e.g.
 *   {"agent", fl_agent_config_table, "docs/CONFIG.md", "## Agent", true, true,
 *    {"deploy/examples/agent.yaml"}},
 * and takes its example off the wire entry, which then lists none.
 */
struct documented {
	const char *name;
	const struct fl_config_key *table;
	const char *doc, *heading;
	bool reload;       /* the rows have the reloadable column */
	bool each_example; /* every example names every key, not only all together */
	const char *examples[4];
};

static const struct documented documented[] = {
    {"wire", fl_wire_config_table, "docs/CONFIG.md", "## Wire and trust", true, true, {NULL}},
    {"coordinator",
     fl_coordinator_config_table,
     "docs/CONFIG.md",
     "## Coordinator",
     true,
     true,
     {"deploy/examples/coordinator.yaml"}},
    {"policy",
     fl_policy_config_table,
     "docs/POLICY.md",
     "## Keys",
     false,
     false,
     {"deploy/examples/policies/standard-canary.yaml",
      "deploy/examples/policies/expand-contract-friendly.yaml",
      "deploy/examples/policies/fast-staging.yaml"}},
    {"agent",
     fl_agent_config_table,
     "docs/CONFIG.md",
     "## Agent",
     true,
     true,
     {"deploy/examples/agent.yaml", "deploy/examples/agent-schemas.yaml"}},
};
#define N_DOCUMENTED ((int)(sizeof(documented) / sizeof(documented[0])))

static bool registered(const struct fl_config_key *table)
{
	for (int i = 0; i < N_DOCUMENTED; i++)
		if (documented[i].table == table)
			return true;
	return false;
}

struct doc_walk {
	const struct documented *d;
	const char *section, *section_end; /* of the docs */
	int rows;
};

static bool doc_key(void *arg, const char *path, const struct fl_config_key *k)
{
	struct doc_walk *w = arg;
	char row[LINE_MAX_], prefix[LINE_MAX_];
	const char *at, *end;

	if (k->type == FL_CONFIG_INCLUDE) /* a section has no row; another table its own */
		return k->name != NULL || !registered(k->include);
	fl_config_doc_row(path, k, w->d->reload, row, sizeof(row));
	snprintf(prefix, sizeof(prefix), "\n| `%s` |", path);
	at = strstr(w->section, prefix);
	ck_assert_msg(at != NULL && at < w->section_end,
	              "%s, under '%s', does not list '%s'; add the row\n%s", w->d->doc,
	              w->d->heading, path, row);
	at++;
	end = strchr(at, '\n');
	ck_assert_msg(
	    end != NULL && (size_t)(end - at) == strlen(row) && memcmp(at, row, strlen(row)) == 0,
	    "%s: the row for '%s' differs from the table; expected\n%s", w->d->doc, path, row);
	w->rows++;
	return true;
}

START_TEST(docs_list_every_key)
{
	const struct documented *d = &documented[_i];
	char path[LINE_MAX_], heading[256];
	struct doc_walk w = {d, NULL, NULL, 0};
	size_t level = strspn(d->heading, "#");
	const char *p;
	char *doc;

	fl_test_fmt(path, sizeof(path), "%s/%s", source_dir(), d->doc);
	doc = slurp(path);
	fl_test_fmt(heading, sizeof(heading), "\n%s", d->heading);
	w.section = strstr(doc, heading);
	ck_assert_msg(w.section != NULL, "%s has no heading '%s'", d->doc, d->heading);
	/* up to the next heading as deep or deeper in the outline */
	for (p = strstr(w.section + 1, "\n#"); p != NULL; p = strstr(p + 1, "\n#"))
		if (strspn(p + 1, "#") <= level && p[1 + strspn(p + 1, "#")] == ' ')
			break;
	w.section_end = p ? p : doc + strlen(doc);
	fl_config_walk(d->table, doc_key, &w);
	ck_assert_int_gt(w.rows, 0);
	free(doc);
}
END_TEST

/* Whether text names key path: a top-level key at the start of a line,
 * maybe commented out ("\n# clock_skew:"); a nested one ("waves[].bake")
 * by its last part, as a key anywhere ("  bake:", "{bake:", ", bake:"). */
static bool mentions(const char *text, const char *path)
{
	const char *leaf = strrchr(path, '.'), *at;
	char want[256];

	if (leaf == NULL && strchr(path, '[') == NULL) {
		fl_test_fmt(want, sizeof(want), "\n%s:", path);
		if (strstr(text, want) || strncmp(text, want + 1, strlen(want + 1)) == 0)
			return true;
		fl_test_fmt(want, sizeof(want), "\n# %s:", path);
		return strstr(text, want) != NULL;
	}
	fl_test_fmt(want, sizeof(want), "%s:", leaf ? leaf + 1 : path);
	for (at = strstr(text, want); at != NULL; at = strstr(at + 1, want))
		if (at > text && strchr(" \t{,", at[-1]) != NULL)
			return true;
	return false;
}

struct example_walk {
	const struct documented *d;
	char *texts[4];
	const char *names[4];
	int n;
};

static bool example_key(void *arg, const char *path, const struct fl_config_key *k)
{
	struct example_walk *w = arg;
	int i, found = 0;

	if (k->type == FL_CONFIG_INCLUDE)
		return true;
	for (i = 0; i < w->n; i++) {
		bool here = mentions(w->texts[i], path);

		ck_assert_msg(here || !w->d->each_example,
		              "%s does not mention '%s' (as a key, or commented out: '# %s:')",
		              w->names[i], path, path);
		found += here;
	}
	ck_assert_msg(found > 0, "no example of '%s' mentions '%s' (%s...)", w->d->name, path,
	              w->names[0]);
	return true;
}

START_TEST(examples_list_every_key)
{
	const struct documented *d = &documented[_i];
	struct example_walk w = {d, {NULL}, {NULL}, 0};
	char path[LINE_MAX_], err[FL_ERRBUF_SIZE] = "";
	static _Alignas(max_align_t) unsigned char target[65536]; /* any config's struct */
	int i;

	for (i = 0; i < 4 && d->examples[i] != NULL; i++) {
		fl_test_fmt(path, sizeof(path), "%s/%s", source_dir(), d->examples[i]);
		w.texts[w.n] = slurp(path);
		w.names[w.n++] = d->examples[i];
		memset(target, 0xa5, sizeof(target));
		/* from memory, as data_case does: not the checkout's file modes */
		ck_assert_msg(fl_config_load_buffer(w.texts[w.n - 1], strlen(w.texts[w.n - 1]),
		                                    path, d->table, target, err) == FL_OK,
		              "%s", err);
		fl_config_fini(d->table, target);
	}
	if (w.n > 0)
		fl_config_walk(d->table, example_key, &w);
	for (i = 0; i < w.n; i++)
		free(w.texts[i]);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_loop_test(tc, data_case, 0, n_cases);
	tcase_add_test(tc, wire_defaults);
	tcase_add_test(tc, include_and_sections);
	tcase_add_test(tc, defaults_only);
	tcase_add_test(tc, too_large);
	tcase_add_test(tc, list_cap);
	tcase_add_test(tc, deep_nesting);
	tcase_add_test(tc, missing_file);
	tcase_add_test(tc, reload);
	tcase_add_test(tc, format_size);
	tcase_add_test(tc, no_guess_from_nothing);
	tcase_add_test(tc, table_list_owns_its_elements);
	tcase_add_test(tc, table_list_cap);
	tcase_add_test_raise_signal(tc, validate_naming_no_key_aborts, SIGABRT);
	tcase_add_test(tc, trust_root_file_protected);
	tcase_add_test(tc, not_a_regular_file);
	tcase_add_test(tc, reload_new_types);
	tcase_add_test(tc, walk_and_doc_rows);
	tcase_add_loop_test(tc, docs_list_every_key, 0, N_DOCUMENTED);
	tcase_add_loop_test(tc, examples_list_every_key, 0, N_DOCUMENTED);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	find_cases();
	if (n_cases == 0) {
		fprintf(stderr, "check_config: no cases in $FL_TEST_DATA/config\n");
		return 1;
	}
	sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free_cases();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
