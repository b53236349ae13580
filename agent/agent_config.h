/*
 * flotilla-agent's configuration: one declarative table (lib/config.h) with
 * the wire table spliced in, documented in docs/CONFIG.md ("Agent") and
 * deploy/examples/agent*.yaml (tests/unit/check_config.c keeps all three in
 * step).
 *
 * The file holds the agent's trust roots (pinned coordinator keys, trusted
 * release keys, project id), so the loader refuses it unless it is owned by
 * the agent's user or root and writable by nobody else.
 *
 * Database servers are `databases` (how to reach one PostgreSQL: a URL
 * without a password, or host/port/user/dbname; the password from a file or
 * an environment variable, read each time a connection is made, never
 * logged). Tenants are a static list (`tenants`) and/or found by
 * `discovery` rules over a server's databases or one database's schemas,
 * each with labels. SIGHUP reloads what fl_config_check_reload allows:
 * trusted release keys, tenants, discovery, labels, the health-check role,
 * backup, shutdown and log settings; never the identity, the pinned keys,
 * the project, the state folder, the servers or the pool size.
 *
 * Ownership: fl_agent_config_load fills a struct the caller releases with
 * fl_agent_config_fini. Thread-compatible.
 */
#ifndef FL_AGENT_CONFIG_H
#define FL_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "label.h"
#include "wire_config.h"

#define FL_AGENT_MAX_DATABASES 256
#define FL_AGENT_MAX_TENANTS   100000 /* static tenants, and tenants in all */
#define FL_AGENT_MAX_DISCOVERY 64
#define FL_AGENT_MAX_RULES     256 /* label rules of one discovery */
#define FL_AGENT_MAX_PARALLEL  256
#define FL_AGENT_PASSWORD_MAX  1024 /* bytes of a password file */
#define FL_AGENT_TENANT_ID_MAX 255
#define FL_AGENT_NAME_MAX      64

enum fl_agent_sslmode {
	FL_SSLMODE_DEFAULT = 0, /* libpq's: prefer */
	FL_SSLMODE_DISABLE,
	FL_SSLMODE_ALLOW,
	FL_SSLMODE_PREFER,
	FL_SSLMODE_REQUIRE,
	FL_SSLMODE_VERIFY_CA,
	FL_SSLMODE_VERIFY_FULL,
};

enum fl_discovery_kind {
	FL_DISCOVER_DATABASES = 0, /* each database whose name is LIKE the pattern */
	FL_DISCOVER_SCHEMAS = 1,   /* each schema of one database LIKE the pattern */
};

enum fl_shutdown_mode {
	FL_SHUTDOWN_CANCEL = 0, /* cancel running work (its transaction rolls back) */
	FL_SHUTDOWN_FINISH = 1, /* let it finish, within shutdown.timeout */
};

/* One PostgreSQL server (databases[]). */
struct fl_agent_database {
	char *name;
	char *url;    /* NULL, or a postgres:// URL without a password */
	char *host;   /* NULL: libpq's default */
	int64_t port; /* 0: libpq's default */
	char *user;
	char *dbname; /* what discovery of databases connects to; default "postgres" */
	int sslmode;  /* enum fl_agent_sslmode */
	char *sslrootcert;
	char *password_file;
	char *password_env;
	int64_t max_parallel;
	int64_t connect_timeout_ms;
};

/* One static tenant (tenants[]). */
struct fl_agent_tenant {
	char *id;
	char *server;   /* a databases[].name */
	char *database; /* the database's name on that server */
	char *schema;   /* NULL: the default (public) */
	struct fl_labels labels;
};

/* One label rule of a discovery: names LIKE match get these labels. */
struct fl_agent_rule {
	char *match;
	struct fl_labels labels;
};

/* One discovery (discovery[]). */
struct fl_agent_discovery {
	char *server;
	int kind;                    /* enum fl_discovery_kind */
	char *database;              /* FL_DISCOVER_SCHEMAS: the database holding the schemas */
	char *like;                  /* a LIKE pattern over names */
	char *id;                    /* tenant id template; "{name}" is the found name */
	struct fl_labels labels;     /* on every tenant found */
	struct fl_config_list rules; /* struct fl_agent_rule, in order; later ones win */
};

struct fl_agent_config {
	struct fl_wire_config wire;
	char *project_id;
	char *agent_name; /* NULL: the host name */
	char *state_dir;
	char *enrollment_token;
	int64_t max_parallel;
	struct fl_config_list databases; /* struct fl_agent_database */
	struct fl_config_list tenants;   /* struct fl_agent_tenant */
	struct fl_config_list discovery; /* struct fl_agent_discovery */
	int64_t discovery_interval_ms;
	char *health_check_role;
	char *backup_command;
	char *backup_dir;
	int64_t backup_timeout_ms;
	int shutdown_mode; /* enum fl_shutdown_mode */
	int64_t shutdown_timeout_ms;
	int64_t poll_wait_ms;
	int64_t request_timeout_ms;
	int64_t reconnect_max_ms;
	int64_t max_pending_reports; /* journaled, unacknowledged: then no new work */
	int log_level;               /* enum fl_log_level */
	bool log_json;
};

extern const struct fl_config_key fl_agent_config_table[];

/*
 * Load path into cfg (uninitialised storage), with the trust-root file check
 * and every rule between keys: names unique, references known, one way to
 * reach each server, a password source at most once, agents' required wire
 * keys (coordinator_url, coordinator_public_keys, trusted_release_keys).
 * Errors as fl_config_load_file; on error cfg is empty.
 */
enum fl_err fl_agent_config_load(const char *path, struct fl_agent_config *cfg, char *errbuf)
    __attribute__((warn_unused_result));
void fl_agent_config_fini(struct fl_agent_config *cfg);

/* The server named name, or NULL. */
const struct fl_agent_database *fl_agent_config_database(const struct fl_agent_config *cfg,
                                                         const char *name);

/* NULL when id can be a tenant id (1 to 255 bytes of UTF-8 without control
 * characters), else why not. */
const char *fl_agent_tenant_id_problem(const char *id);

/* "disable", "prefer"...; "" for FL_SSLMODE_DEFAULT. */
const char *fl_agent_sslmode_name(int mode);

#endif
