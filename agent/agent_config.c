/* flotilla-agent's config table (docs/CONFIG.md, "Agent") and its rules. */
#include "agent_config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg_url.h"
#include "release.h"
#include "utf8.h"

#define MS_PER_S  INT64_C(1000)
#define MS_PER_H  (INT64_C(3600) * MS_PER_S)
#define NAME_MAX_ 64

static const char *const sslmode_names[] = {"default", "disable",   "allow",       "prefer",
                                            "require", "verify-ca", "verify-full", NULL};
static const char *const kind_names[] = {"databases", "schemas", NULL};
static const char *const shutdown_names[] = {"cancel", "finish", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};

const char *fl_agent_sslmode_name(int mode)
{
	if (mode <= FL_SSLMODE_DEFAULT || mode > FL_SSLMODE_VERIFY_FULL)
		return "";
	return sslmode_names[mode];
}

const char *fl_agent_tenant_id_problem(const char *id)
{
	size_t i, len = id != NULL ? strlen(id) : 0;

	if (len == 0)
		return "empty";
	if (len > FL_AGENT_TENANT_ID_MAX)
		return "longer than 255 bytes";
	if (!fl_utf8_valid(id, len, NULL))
		return "not UTF-8";
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		/* C0, DEL and C1 (U+0080..U+009F, 0xc2 0x80..0x9f in UTF-8) */
		if (c < 0x20 || c == 0x7f ||
		    (c == 0xc2 && i + 1 < len && (unsigned char)id[i + 1] < 0xa0))
			return "holds a control character";
	}
	return NULL;
}

/* Server names: [A-Za-z0-9._-], 1 to 64. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static bool check_server_name(const struct fl_config_key *key, const void *value, char *why)
{
	const char *s = *(const char *const *)value;

	(void)key;
	if (name_ok(s))
		return true;
	snprintf(why, FL_ERRBUF_SIZE, "expected 1 to 64 of A-Z a-z 0-9 . _ -");
	return false;
}

static bool check_tenant_id(const struct fl_config_key *key, const void *value, char *why)
{
	const char *problem = fl_agent_tenant_id_problem(*(const char *const *)value);

	(void)key;
	if (problem == NULL)
		return true;
	snprintf(why, FL_ERRBUF_SIZE, "not a tenant id: %s", problem);
	return false;
}

static bool check_project(const struct fl_config_key *key, const void *value, char *why)
{
	const char *problem = fl_release_project_problem(*(const char *const *)value);

	(void)key;
	if (problem == NULL)
		return true;
	snprintf(why, FL_ERRBUF_SIZE,
	         "not a project id (%s): expected 1 to 64 of A-Z a-z 0-9 . _ -", problem);
	return false;
}

static bool check_agent_name(const struct fl_config_key *key, const void *value, char *why)
{
	const char *s = *(const char *const *)value;
	size_t n = strlen(s);

	(void)key;
	if (n > 0 && n <= FL_AGENT_NAME_MAX &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@:+-") == n)
		return true;
	snprintf(why, FL_ERRBUF_SIZE, "expected 1 to 64 of A-Z a-z 0-9 . _ @ : + -");
	return false;
}

/* A database URL: postgres:// or postgresql://, and never a password in it. */
static bool check_db_url(const struct fl_config_key *key, const void *value, char *why)
{
	const char *url = *(const char *const *)value;
	char *raw, *decoded = NULL;

	(void)key;
	if (strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0) {
		snprintf(why, FL_ERRBUF_SIZE,
		         "expected a URL such as postgresql://user@host:5432/db");
		return false;
	}
	raw = fl_pg_url_password(url, &decoded);
	if (raw != NULL || decoded != NULL) {
		if (raw)
			fl_pg_url_scrub(raw, strlen(raw) + 1);
		free(raw);
		free(decoded);
		snprintf(why, FL_ERRBUF_SIZE,
		         "holds a password: give it with password_file or password_env instead");
		return false;
	}
	return true;
}

static bool check_pattern(const struct fl_config_key *key, const void *value, char *why)
{
	const char *s = *(const char *const *)value;
	size_t n = strlen(s);

	(void)key;
	if (n > 0 && n <= 255 && fl_utf8_valid(s, n, NULL))
		return true;
	snprintf(why, FL_ERRBUF_SIZE, "expected a LIKE pattern of 1 to 255 bytes");
	return false;
}

static bool check_id_template(const struct fl_config_key *key, const void *value, char *why)
{
	const char *s = *(const char *const *)value;

	(void)key;
	if (strstr(s, "{name}") != NULL && strlen(s) <= 128)
		return true;
	snprintf(why, FL_ERRBUF_SIZE, "must hold '{name}', the name found (at most 128 bytes)");
	return false;
}

static bool database_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	const struct fl_agent_database *d = scope->self;
	const struct fl_agent_database *all = scope->items;
	static const char *const parts[] = {"host",   "port",    "user",
	                                    "dbname", "sslmode", "sslrootcert"};
	size_t i;

	for (i = 0; i < scope->index; i++)
		if (strcmp(all[i].name, d->name) == 0) {
			*key = "name";
			snprintf(why, FL_ERRBUF_SIZE, "'%s' is the name of databases[%zu] too",
			         d->name, i);
			return false;
		}
	if (d->url != NULL)
		for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
			if (fl_config_isset(scope, parts[i])) {
				*key = parts[i];
				snprintf(why, FL_ERRBUF_SIZE,
				         "give either url or host, port, user, dbname, sslmode and "
				         "sslrootcert, not both");
				return false;
			}
	if (d->password_file != NULL && d->password_env != NULL) {
		*key = "password_env";
		snprintf(why, FL_ERRBUF_SIZE, "give password_file or password_env, not both");
		return false;
	}
	return true;
}

static bool tenant_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	const struct fl_agent_tenant *t = scope->self;
	const struct fl_agent_tenant *all = scope->items;
	size_t i;

	for (i = 0; i < scope->index; i++)
		if (strcmp(all[i].id, t->id) == 0) {
			*key = "id";
			snprintf(why, FL_ERRBUF_SIZE, "tenant '%s' is listed twice (tenants[%zu])",
			         t->id, i);
			return false;
		}
	return true;
}

static bool discovery_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	const struct fl_agent_discovery *d = scope->self;

	if (d->kind == FL_DISCOVER_SCHEMAS && d->database == NULL) {
		*key = "kind";
		snprintf(why, FL_ERRBUF_SIZE, "kind schemas needs database: the one holding them");
		return false;
	}
	if (d->kind == FL_DISCOVER_DATABASES && d->database != NULL) {
		*key = "database";
		snprintf(why, FL_ERRBUF_SIZE,
		         "only with kind: schemas (kind databases finds databases by name)");
		return false;
	}
	return true;
}

static bool agent_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	const struct fl_agent_config *c = scope->self;
	const struct fl_agent_tenant *t = c->tenants.items;
	const struct fl_agent_discovery *d = c->discovery.items;
	size_t i;

	if (c->wire.coordinator_url == NULL) {
		*key = "coordinator_url";
		snprintf(why, FL_ERRBUF_SIZE, "an agent needs coordinator_url");
		return false;
	}
	if (c->wire.coordinator_public_keys.n == 0) {
		*key = "coordinator_public_keys";
		snprintf(why, FL_ERRBUF_SIZE, "an agent needs the coordinator's public key");
		return false;
	}
	if (c->wire.trusted_release_keys.n == 0) {
		*key = "trusted_release_keys";
		snprintf(why, FL_ERRBUF_SIZE,
		         "an agent needs at least one release key to trust: without, it applies "
		         "nothing");
		return false;
	}
	for (i = 0; i < c->tenants.n; i++)
		if (fl_agent_config_database(c, t[i].server) == NULL) {
			*key = "tenants";
			snprintf(why, FL_ERRBUF_SIZE, "tenants[%zu].server: no database named '%s'",
			         i, t[i].server);
			return false;
		}
	for (i = 0; i < c->discovery.n; i++)
		if (fl_agent_config_database(c, d[i].server) == NULL) {
			*key = "discovery";
			snprintf(why, FL_ERRBUF_SIZE,
			         "discovery[%zu].server: no database named '%s'", i, d[i].server);
			return false;
		}
	if (c->tenants.n == 0 && c->discovery.n == 0) {
		*key = NULL;
		snprintf(why, FL_ERRBUF_SIZE, "no tenants: give tenants, discovery, or both");
		return false;
	}
	if (c->backup_command != NULL && c->backup_dir == NULL) {
		*key = "backup.command";
		snprintf(why, FL_ERRBUF_SIZE, "needs backup.dir, where backups are written");
		return false;
	}
	return true;
}

/* clang-format off */
static const struct fl_config_key database_table[] = {
    {.name = "name", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_REQUIRED,
     .offset = offsetof(struct fl_agent_database, name), .check = check_server_name,
     .help = "the server's name, which tenants and discovery refer to"},
    {.name = "url", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_database, url), .check = check_db_url, .max = 4096,
     .help = "postgresql://user@host:port/dbname?sslmode=..., without a password"},
    {.name = "host", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_database, host), .max = 1024,
     .help = "host name, address or unix socket folder; unset: libpq's default"},
    {.name = "port", .type = FL_CONFIG_INT, .offset = offsetof(struct fl_agent_database, port),
     .def = "5432", .min = 1, .max = 65535, .help = "TCP port (or the socket's number)"},
    {.name = "user", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_database, user), .max = 255,
     .help = "the role the agent connects as; unset: the agent's system user"},
    {.name = "dbname", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_database, dbname), .def = "postgres", .max = 255,
     .help = "the database that discovery of databases connects to"},
    {.name = "sslmode", .type = FL_CONFIG_ENUM,
     .offset = offsetof(struct fl_agent_database, sslmode), .def = "default",
     .choices = sslmode_names, .help = "libpq's sslmode; default: libpq's (prefer)"},
    {.name = "sslrootcert", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_database, sslrootcert),
     .help = "CA certificate file for verify-ca and verify-full"},
    {.name = "password_file", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_database, password_file),
     .help = "file holding the password (not readable by others), read at each connect"},
    {.name = "password_env", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_database, password_env), .max = 255,
     .help = "environment variable holding the password"},
    {.name = "max_parallel", .type = FL_CONFIG_INT, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_database, max_parallel), .def = "4", .min = 1,
     .max = FL_AGENT_MAX_PARALLEL, .help = "tenants of this server worked on at once"},
    {.name = "connect_timeout", .type = FL_CONFIG_DURATION, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_database, connect_timeout_ms), .def = "10s",
     .min = MS_PER_S, .max = 10 * 60 * MS_PER_S, .help = "longest a connection may take"},
    {.type = FL_CONFIG_END, .validate = database_ok},
};

static const struct fl_config_key tenant_table[] = {
    {.name = "id", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_REQUIRED,
     .offset = offsetof(struct fl_agent_tenant, id), .check = check_tenant_id,
     .help = "the tenant's id, unique across the fleet"},
    {.name = "server", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_REQUIRED,
     .offset = offsetof(struct fl_agent_tenant, server), .check = check_server_name,
     .help = "the databases[].name it lives on"},
    {.name = "database", .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_tenant, database), .max = 255,
     .help = "its database on that server"},
    {.name = "schema", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_tenant, schema), .max = 255,
     .help = "its schema, for one schema per tenant; unset: public"},
    {.name = "labels", .type = FL_CONFIG_LABELS, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_tenant, labels),
     .help = "its labels, which orders select by"},
    {.type = FL_CONFIG_END, .validate = tenant_ok},
};

static const struct fl_config_key rule_table[] = {
    {.name = "match", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_REQUIRED,
     .offset = offsetof(struct fl_agent_rule, match), .check = check_pattern,
     .help = "a LIKE pattern over the name found"},
    {.name = "labels", .type = FL_CONFIG_LABELS,
     .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_rule, labels),
     .help = "labels for the names it matches"},
    {.type = FL_CONFIG_END},
};

static const struct fl_config_key discovery_table[] = {
    {.name = "server", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_REQUIRED,
     .offset = offsetof(struct fl_agent_discovery, server), .check = check_server_name,
     .help = "the databases[].name to look on"},
    {.name = "kind", .type = FL_CONFIG_ENUM, .flags = FL_CONFIG_RELOADABLE, .offset = offsetof(struct fl_agent_discovery, kind),
     .def = "databases", .choices = kind_names,
     .help = "databases: one tenant per database; schemas: one per schema of database"},
    {.name = "database", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_discovery, database), .max = 255,
     .help = "kind schemas: the database holding the tenants' schemas"},
    {.name = "like", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_REQUIRED,
     .offset = offsetof(struct fl_agent_discovery, like), .check = check_pattern,
     .help = "a LIKE pattern: names it matches are tenants ('tenant_%')"},
    {.name = "id", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_discovery, id), .def = "{name}",
     .check = check_id_template, .help = "the tenant id, '{name}' standing for the name found"},
    {.name = "labels", .type = FL_CONFIG_LABELS, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_discovery, labels),
     .help = "labels on every tenant found"},
    {.name = "rules", .type = FL_CONFIG_TABLE_LIST, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_discovery, rules), .include = rule_table,
     .elem_size = sizeof(struct fl_agent_rule), .max = FL_AGENT_MAX_RULES,
     .help = "more labels by name, in order, later rules winning"},
    {.type = FL_CONFIG_END, .validate = discovery_ok},
};

const struct fl_config_key fl_agent_config_table[] = {
    {.type = FL_CONFIG_INCLUDE, .offset = offsetof(struct fl_agent_config, wire),
     .include = fl_wire_config_table},
    {.name = "project_id", .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_TRUST_ROOT,
     .offset = offsetof(struct fl_agent_config, project_id), .check = check_project,
     .help = "the project whose releases and orders this agent accepts"},
    {.name = "agent_name", .type = FL_CONFIG_STRING,
     .offset = offsetof(struct fl_agent_config, agent_name), .check = check_agent_name,
     .help = "the agent's name for humans; unset: the host name"},
    {.name = "state_dir", .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_config, state_dir),
     .help = "folder for the journal, the ledger and the release cache"},
    {.name = "enrollment_token", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_config, enrollment_token), .max = 128,
     .help = "one-time token to enroll this agent's key (flotilla enroll-token create)"},
    {.name = "max_parallel", .type = FL_CONFIG_INT,
     .offset = offsetof(struct fl_agent_config, max_parallel), .def = "4", .min = 1,
     .max = FL_AGENT_MAX_PARALLEL, .help = "tenants worked on at once by this agent"},
    {.name = "databases", .type = FL_CONFIG_TABLE_LIST,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_config, databases), .include = database_table,
     .elem_size = sizeof(struct fl_agent_database), .max = FL_AGENT_MAX_DATABASES,
     .help = "the PostgreSQL servers holding the tenants"},
    {.name = "tenants", .type = FL_CONFIG_TABLE_LIST, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, tenants), .include = tenant_table,
     .elem_size = sizeof(struct fl_agent_tenant), .max = FL_AGENT_MAX_TENANTS,
     .help = "tenants listed one by one"},
    {.name = "discovery", .type = FL_CONFIG_TABLE_LIST, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, discovery), .include = discovery_table,
     .elem_size = sizeof(struct fl_agent_discovery), .max = FL_AGENT_MAX_DISCOVERY,
     .help = "tenants found by name: databases of a server, or schemas of a database"},
    {.name = "discovery_interval", .type = FL_CONFIG_DURATION, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, discovery_interval_ms), .def = "5m",
     .min = MS_PER_S, .max = 24 * MS_PER_H, .help = "how often discovery runs again"},
    {.name = "health_check_role", .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_config, health_check_role), .max = 63,
     .help = "role health checks run as (SET LOCAL ROLE); unset: the connecting one"},
    {.name = "backup.command", .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_config, backup_command), .max = 4096,
     .help = "shell command backing a tenant up; connection details in its environment"},
    {.name = "backup.dir", .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_agent_config, backup_dir), .max = 1024,
     .help = "folder the backup path (FLOTILLA_BACKUP_PATH) points into"},
    {.name = "backup.timeout", .type = FL_CONFIG_DURATION, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, backup_timeout_ms), .def = "1h",
     .min = MS_PER_S, .max = 24 * MS_PER_H, .help = "longest a backup may take"},
    {.name = "shutdown.mode", .type = FL_CONFIG_ENUM, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, shutdown_mode), .def = "cancel",
     .choices = shutdown_names, .help = "on SIGTERM, cancel running work or let it finish"},
    {.name = "shutdown.timeout", .type = FL_CONFIG_DURATION, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, shutdown_timeout_ms), .def = "1m",
     .min = MS_PER_S, .max = 24 * MS_PER_H,
     .help = "with finish, how long to wait before canceling after all"},
    {.name = "poll.wait", .type = FL_CONFIG_DURATION, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, poll_wait_ms), .def = "25s",
     .min = MS_PER_S, .max = 10 * 60 * MS_PER_S,
     .help = "longest a poll waits for work (the coordinator may cap it)"},
    {.name = "poll.request_timeout", .type = FL_CONFIG_DURATION, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, request_timeout_ms), .def = "30s",
     .min = MS_PER_S, .max = 10 * 60 * MS_PER_S,
     .help = "longest any other request to the coordinator may take"},
    {.name = "poll.reconnect_max", .type = FL_CONFIG_DURATION, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, reconnect_max_ms), .def = "1m",
     .min = 100, .max = MS_PER_H,
     .help = "longest wait between tries to reach the coordinator"},
    {.name = "poll.max_pending_reports", .type = FL_CONFIG_INT, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, max_pending_reports), .def = "10000",
     .min = 1, .max = 1000000,
     .help = "reports not acknowledged yet beyond which the agent takes no new work"},
    {.name = "log.level", .type = FL_CONFIG_ENUM, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, log_level), .def = "info",
     .choices = level_names, .help = "least severe lines logged"},
    {.name = "log.json", .type = FL_CONFIG_BOOL, .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_agent_config, log_json), .def = "false",
     .help = "log JSON lines instead of plain ones"},
    {.type = FL_CONFIG_END, .validate = agent_ok},
};
/* clang-format on */

_Static_assert(FL_LOG_ERROR == 0 && FL_LOG_DEBUG == 3, "log.level's choices follow the enum");

enum fl_err fl_agent_config_load(const char *path, struct fl_agent_config *cfg, char *errbuf)
{
	return fl_config_load_file(path, fl_agent_config_table, cfg, errbuf);
}

void fl_agent_config_fini(struct fl_agent_config *cfg)
{
	fl_config_fini(fl_agent_config_table, cfg);
}

const struct fl_agent_database *fl_agent_config_database(const struct fl_agent_config *cfg,
                                                         const char *name)
{
	const struct fl_agent_database *d = cfg->databases.items;
	size_t i;

	for (i = 0; name != NULL && i < cfg->databases.n; i++)
		if (strcmp(d[i].name, name) == 0)
			return &d[i];
	return NULL;
}
