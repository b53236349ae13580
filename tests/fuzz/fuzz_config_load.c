/*
 * fuzz_config_load: YAML config files, through a table with every key type,
 * sections one and two deep, a list of mappings whose elements have a section
 * and rules of their own, and the wire table spliced in (so each code path of
 * the loader has a key to reach it). Seeds: tests/fuzz/corpus/config_load/,
 * taken from tests/data/config/ and deploy/examples/.
 *
 * Oracles besides the sanitizers (which also catch leaks on every path):
 * every failure explains itself and names the file; a loaded config compares
 * equal to itself on reload; releasing it twice is harmless.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "wire_config.h"

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_config_load: %s: ", #cond);                          \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct fuzz_cfg {
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
	int64_t deep;
	struct fl_config_list servers;
	struct fl_wire_config wire;
};

struct fuzz_server {
	char *name;
	char *host;
	int64_t port;
	struct fl_labels labels;
	double weight;
	bool verify;
};

/* exactly one of name and host; names unique across the list */
static bool server_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	const struct fuzz_server *s = scope->self, *all = scope->items;

	if (fl_config_isset(scope, "name") == fl_config_isset(scope, "host")) {
		*key = fl_config_isset(scope, "host") ? "host" : NULL;
		snprintf(why, FL_ERRBUF_SIZE, "one of name and host");
		return false;
	}
	for (size_t i = 0; s->name != NULL && i < scope->index; i++) {
		if (all[i].name != NULL && strcmp(all[i].name, s->name) == 0) {
			*key = "name";
			snprintf(why, FL_ERRBUF_SIZE, "twice");
			return false;
		}
	}
	return true;
}

static const struct fl_config_key server_table[] = {
    {.name = "name",
     .type = FL_CONFIG_STRING,
     .offset = offsetof(struct fuzz_server, name),
     .max = 16},
    {.name = "host", .type = FL_CONFIG_STRING, .offset = offsetof(struct fuzz_server, host)},
    {.name = "port",
     .type = FL_CONFIG_INT,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fuzz_server, port),
     .def = "5432",
     .min = 1,
     .max = 65535},
    {.name = "labels", .type = FL_CONFIG_LABELS, .offset = offsetof(struct fuzz_server, labels)},
    {.name = "weight",
     .type = FL_CONFIG_FLOAT,
     .offset = offsetof(struct fuzz_server, weight),
     .def = "1",
     .fmin = -10,
     .fmax = 10},
    {.name = "tls.verify",
     .type = FL_CONFIG_BOOL,
     .offset = offsetof(struct fuzz_server, verify),
     .def = "true"},
    {.type = FL_CONFIG_END, .validate = server_ok},
};

static const char *const log_formats[] = {"text", "json", NULL};

static const struct fl_config_key fuzz_table[] = {
    {.name = "name", .type = FL_CONFIG_STRING, .offset = offsetof(struct fuzz_cfg, name)},
    {.name = "workers",
     .type = FL_CONFIG_INT,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fuzz_cfg, workers),
     .def = "4",
     .min = -5,
     .max = 64},
    {.name = "verbose",
     .type = FL_CONFIG_BOOL,
     .offset = offsetof(struct fuzz_cfg, verbose),
     .def = "false"},
    {.name = "timeout",
     .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct fuzz_cfg, timeout_ms),
     .def = "30s",
     .min = 0,
     .max = 3600000},
    {.name = "buffer",
     .type = FL_CONFIG_SIZE,
     .offset = offsetof(struct fuzz_cfg, buffer),
     .def = "64KiB",
     .min = 1024,
     .max = 1024 * 1024},
    {.name = "log_format",
     .type = FL_CONFIG_ENUM,
     .offset = offsetof(struct fuzz_cfg, log_format),
     .def = "text",
     .choices = log_formats},
    {.name = "tags",
     .type = FL_CONFIG_STRING_LIST,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fuzz_cfg, tags)},
    {.name = "key", .type = FL_CONFIG_PUBKEY, .offset = offsetof(struct fuzz_cfg, key)},
    {.name = "keys",
     .type = FL_CONFIG_PUBKEY_LIST,
     .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fuzz_cfg, keys)},
    {.name = "tls.cert",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fuzz_cfg, tls_cert)},
    {.name = "tls.verify",
     .type = FL_CONFIG_BOOL,
     .offset = offsetof(struct fuzz_cfg, tls_verify),
     .def = "true"},
    {.name = "ratio",
     .type = FL_CONFIG_FLOAT,
     .offset = offsetof(struct fuzz_cfg, ratio),
     .def = "0.5",
     .fmin = 0,
     .fmax = 1},
    {.name = "labels",
     .type = FL_CONFIG_LABELS,
     .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fuzz_cfg, labels)},
    {.name = "db.pool.size", .type = FL_CONFIG_INT, .offset = offsetof(struct fuzz_cfg, deep)},
    {.name = "servers",
     .type = FL_CONFIG_TABLE_LIST,
     .offset = offsetof(struct fuzz_cfg, servers),
     .include = server_table,
     .elem_size = sizeof(struct fuzz_server),
     .max = 8},
    {.type = FL_CONFIG_INCLUDE,
     .offset = offsetof(struct fuzz_cfg, wire),
     .include = fl_wire_config_table},
    {.type = FL_CONFIG_END},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fuzz_cfg cfg;
	enum fl_err rv;

	memset(&cfg, 0xa5, sizeof(cfg)); /* the loader must set every field */
	rv = fl_config_load_buffer((const char *)data, size, "fuzz.yaml", fuzz_table, &cfg, err);
	if (rv != FL_OK) {
		CHECK(rv == FL_EPARSE, "error %d: %s", (int)rv, err);
		CHECK(strncmp(err, "'fuzz.yaml'", 11) == 0,
		      "the message does not name the file: %s", err);
		CHECK(cfg.name == NULL && cfg.tags.items == NULL && cfg.wire.key_file == NULL &&
		          cfg.servers.items == NULL && cfg.labels.items == NULL,
		      "a failed load left values behind");
		return 0;
	}
	CHECK(err[0] == '\0', "success with a message: %s", err);
	CHECK(cfg.wire.key_file != NULL && cfg.wire.key_file[0] != '\0', "required key unset");
	CHECK(cfg.wire.max_message_size >= 4096 && cfg.wire.max_message_size <= 64u << 20,
	      "max_message_size out of bounds: %llu",
	      (unsigned long long)cfg.wire.max_message_size);
	CHECK(cfg.workers >= -5 && cfg.workers <= 64, "workers out of bounds");
	CHECK(cfg.log_format == 0 || cfg.log_format == 1, "enum out of range");
	CHECK(cfg.ratio >= 0 && cfg.ratio <= 1, "ratio out of bounds");
	CHECK(cfg.servers.n <= 8, "more servers than the cap");
	for (size_t i = 0; i < cfg.servers.n; i++) {
		const struct fuzz_server *s = (const struct fuzz_server *)cfg.servers.items + i;

		CHECK((s->name == NULL) != (s->host == NULL), "server %zu broke its rule", i);
		CHECK(s->port >= 1 && s->port <= 65535, "port out of bounds");
	}
	for (size_t i = 1; i < cfg.labels.n; i++)
		CHECK(strcmp(cfg.labels.items[i - 1].key, cfg.labels.items[i].key) < 0,
		      "labels not sorted");
	CHECK(fl_config_check_reload(fuzz_table, &cfg, &cfg, err) == FL_OK, "reload: %s", err);
	fl_config_fini(fuzz_table, &cfg);
	fl_config_fini(fuzz_table, &cfg);
	return 0;
}
