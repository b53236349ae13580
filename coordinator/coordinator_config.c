/* flotilla-coordinator's configuration table (coordinator_config.h, docs/CONFIG.md). */
#include "coordinator_config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "mem.h"

#define SECOND INT64_C(1000)
#define MINUTE (60 * SECOND)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

static const char *const role_names[] = {"viewer", "release-manager", "admin", NULL};

/* Names of peers: what proto/peers.h accepts, so every configured name can be
 * a registry name. */
static bool check_peer_name(const struct fl_config_key *key, const void *value, char *why)
{
	const char *s = *(const char *const *)value;
	size_t n = strlen(s);

	(void)key;
	if (n == 0 || n > FL_PEER_NAME_MAX ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@:+-") !=
	        n) {
		snprintf(why, FL_ERRBUF_SIZE, "expected 1 to %d of A-Z a-z 0-9 . _ @ : + -",
		         FL_PEER_NAME_MAX);
		return false;
	}
	return true;
}

/* nng URLs, as the wire table checks coordinator_url. */
static bool check_url(const struct fl_config_key *key, const void *value, char *why)
{
	const char *url = *(const char *const *)value, *sep = strstr(url, "://");

	(void)key;
	if (sep == NULL || sep == url || sep[3] == '\0' ||
	    strspn(url, "abcdefghijklmnopqrstuvwxyz0123456789+") != (size_t)(sep - url)) {
		snprintf(why, FL_ERRBUF_SIZE, "expected a URL such as tcp://0.0.0.0:7400");
		return false;
	}
	return true;
}

static bool check_http_url(const struct fl_config_key *key, const void *value, char *why)
{
	const char *url = *(const char *const *)value;

	(void)key;
	if (strncmp(url, "http://", 7) != 0 || url[7] == '\0' || strchr(url + 7, ':') == NULL) {
		snprintf(why, FL_ERRBUF_SIZE, "expected a URL such as http://127.0.0.1:7402");
		return false;
	}
	return true;
}

/* Project ids: as the wire carries them, a short printable name. */
static bool check_project(const struct fl_config_key *key, const void *value, char *why)
{
	const char *s = *(const char *const *)value;

	(void)key;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			snprintf(why, FL_ERRBUF_SIZE, "no spaces or control characters");
			return false;
		}
	return true;
}

static const struct fl_config_key operator_table[] = {
    {.name = "name",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_coordinator_operator, name),
     .check = check_peer_name,
     .help = "the operator's name, for logs and the audit log"},
    {.name = "public_key",
     .type = FL_CONFIG_PUBKEY,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_TRUST_ROOT,
     .offset = offsetof(struct fl_coordinator_operator, public_key),
     .help = "the operator's key (flotilla keygen --kind operator)"},
    {.name = "role",
     .type = FL_CONFIG_ENUM,
     .flags = FL_CONFIG_REQUIRED,
     .offset = offsetof(struct fl_coordinator_operator, role),
     .choices = role_names,
     .help = "viewer, release-manager or admin (docs/WIRE.md, \"Roles\")"},
    {.type = FL_CONFIG_END},
};

static const struct fl_config_key agent_table[] = {
    {.name = "name",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_coordinator_agent, name),
     .check = check_peer_name,
     .help = "the agent's name, unique"},
    {.name = "public_key",
     .type = FL_CONFIG_PUBKEY,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_TRUST_ROOT,
     .offset = offsetof(struct fl_coordinator_agent, public_key),
     .help = "the agent's key (flotilla keygen --kind agent)"},
    {.name = "labels",
     .type = FL_CONFIG_LABELS,
     .offset = offsetof(struct fl_coordinator_agent, labels),
     .help = "labels of the agent"},
    {.type = FL_CONFIG_END},
};

/* ---- webhooks ---- */

const char *const fl_coordinator_webhook_events[] = {
    "started", "wave_started", "wave_completed", "wave_failed", "gate_waiting", "paused",
    "resumed", "halted",       "rolling_back",   "rolled_back", "completed",    NULL,
};

/* http://host[:port]/path: what coordinator/webhooks.c can POST to, no
 * spaces, quotes or control characters (it is quoted in the audit log). */
static bool check_webhook_url(const struct fl_config_key *key, const void *value, char *why)
{
	const char *url = *(const char *const *)value;

	(void)key;
	if (strncmp(url, "http://", 7) != 0 || url[7] == '\0' || url[7] == '/' ||
	    strlen(url) > 2048) {
		snprintf(why, FL_ERRBUF_SIZE,
		         "expected http://host[:port]/path (https is not supported yet)");
		return false;
	}
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\'' || *p == '"') {
			snprintf(why, FL_ERRBUF_SIZE, "no spaces, quotes or control characters");
			return false;
		}
	return true;
}

static bool webhook_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	const struct fl_coordinator_webhook *w = scope->self;

	for (size_t i = 0; i < w->events.n; i++) {
		size_t k = 0;

		while (fl_coordinator_webhook_events[k] != NULL &&
		       strcmp(fl_coordinator_webhook_events[k], w->events.items[i]) != 0)
			k++;
		if (fl_coordinator_webhook_events[k] == NULL) {
			snprintf(
			    why, FL_ERRBUF_SIZE,
			    "unknown event '%s' (started, wave_started, wave_completed, "
			    "wave_failed, gate_waiting, paused, resumed, halted, rolling_back, "
			    "rolled_back, completed)",
			    w->events.items[i]);
			*key = "events";
			return false;
		}
	}
	return true;
}

static const struct fl_config_key webhook_table[] = {
    {.name = "url",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_coordinator_webhook, url),
     .check = check_webhook_url,
     .help = "where events are POSTed: http://host[:port]/path"},
    {.name = "secret_file",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_coordinator_webhook, secret_file),
     .help = "file holding the HMAC-SHA-256 key that signs each body, mode 0600"},
    {.name = "events",
     .type = FL_CONFIG_STRING_LIST,
     .offset = offsetof(struct fl_coordinator_webhook, events),
     .help = "the events sent (docs/OPERATIONS.md, \"Webhooks\"); empty: all"},
    {.name = "attempts",
     .type = FL_CONFIG_INT,
     .offset = offsetof(struct fl_coordinator_webhook, attempts),
     .def = "8",
     .min = 1,
     .max = 100,
     .help = "tries per event, with backoff from 1s doubling up to 5m"},
    {.name = "timeout",
     .type = FL_CONFIG_DURATION,
     .offset = offsetof(struct fl_coordinator_webhook, timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 5 * MINUTE,
     .help = "longest one try may take, connect to answer"},
    {.type = FL_CONFIG_END, .validate = webhook_ok},
};

/* Across keys: each key and name once among operators and agents, and the
 * listening address from coordinator_url when agent_listen is not given. */
static bool whole_ok(const struct fl_config_scope *scope, const char **key, char *why)
{
	struct fl_coordinator_config *c = scope->self;
	const struct fl_coordinator_operator *ops = c->operators.items;
	const struct fl_coordinator_agent *ags = c->agents.items;
	size_t nk = c->operators.n + c->agents.n, k = 0;
	const uint8_t **keys = fl_calloc(nk + 1, sizeof(*keys));
	const char **names = fl_calloc(nk + 1, sizeof(*names));
	bool ok = true;

	for (size_t i = 0; i < c->operators.n; i++, k++) {
		keys[k] = ops[i].public_key.key;
		names[k] = ops[i].name;
	}
	for (size_t i = 0; i < c->agents.n; i++, k++) {
		keys[k] = ags[i].public_key.key;
		names[k] = ags[i].name;
	}
	for (size_t i = 0; ok && i < nk; i++)
		for (size_t j = 0; ok && j < i; j++) {
			bool agent = i >= c->operators.n, other = j >= c->operators.n;
			size_t at = agent ? i - c->operators.n : i,
			       jat = other ? j - c->operators.n : j;
			const char *list = agent ? "agents" : "operators";

			if (memcmp(keys[i], keys[j], FL_CONFIG_PUBKEY_LEN) == 0) {
				snprintf(why, FL_ERRBUF_SIZE, "%s[%zu] has the key of %s[%zu]",
				         list, at, other ? "agents" : "operators", jat);
				*key = list;
				ok = false;
			} else if (other == agent && strcmp(names[i], names[j]) == 0) {
				snprintf(why, FL_ERRBUF_SIZE,
				         "%s[%zu] has the name of %s[%zu], '%s'", list, at, list,
				         jat, names[i]);
				*key = list;
				ok = false;
			}
		}
	free(keys);
	free(names);
	if (!ok)
		return false;
	if (c->agent_listen == NULL)
		c->agent_listen =
		    fl_strdup(c->wire.coordinator_url ? c->wire.coordinator_url
		                                      : FL_COORDINATOR_DEFAULT_AGENT_LISTEN);
	if (strcmp(c->agent_listen, c->admin_listen) == 0 &&
	    !(strlen(c->agent_listen) > 2 &&
	      strcmp(c->agent_listen + strlen(c->agent_listen) - 2, ":0") == 0)) {
		snprintf(why, FL_ERRBUF_SIZE, "the admin endpoint needs its own address");
		*key = "admin_listen";
		return false;
	}
	return true;
}

const struct fl_config_key fl_coordinator_config_table[] = {
    {.type = FL_CONFIG_INCLUDE,
     .offset = offsetof(struct fl_coordinator_config, wire),
     .include = fl_wire_config_table},
    {.name = "project_id",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY | FL_CONFIG_TRUST_ROOT,
     .offset = offsetof(struct fl_coordinator_config, project_id),
     .max = 255,
     .check = check_project,
     .help = "the project whose releases and rollouts this coordinator serves"},
    {.name = "agent_listen",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_coordinator_config, agent_listen),
     .check = check_url,
     .help = "where agents connect (default: coordinator_url, else tcp://0.0.0.0:7400)"},
    {.name = "admin_listen",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_coordinator_config, admin_listen),
     .def = FL_COORDINATOR_DEFAULT_ADMIN_LISTEN,
     .check = check_url,
     .help = "where operators' CLIs connect"},
    {.name = "http_listen",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_coordinator_config, http_listen),
     .check = check_http_url,
     .help = "where /metrics, /api/v1 and the dashboard are served (off when unset; a "
             "non-loopback address needs tokens)"},
    {.name = "operators",
     .type = FL_CONFIG_TABLE_LIST,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_coordinator_config, operators),
     .include = operator_table,
     .elem_size = sizeof(struct fl_coordinator_operator),
     .max = 1024,
     .help = "operator keys and their roles"},
    {.name = "agents",
     .type = FL_CONFIG_TABLE_LIST,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_coordinator_config, agents),
     .include = agent_table,
     .elem_size = sizeof(struct fl_coordinator_agent),
     .max = 65536,
     .help = "agent keys approved from the start"},
    {.name = "webhooks",
     .type = FL_CONFIG_TABLE_LIST,
     .offset = offsetof(struct fl_coordinator_config, webhooks),
     .include = webhook_table,
     .elem_size = sizeof(struct fl_coordinator_webhook),
     .max = 16,
     .help = "HTTP endpoints told of rollout transitions"},
    {.name = "store",
     .type = FL_CONFIG_STRING,
     .flags = FL_CONFIG_NONEMPTY,
     .offset = offsetof(struct fl_coordinator_config, store),
     .def = "coordinator.db",
     .help = "the SQLite file holding the coordinator's state"},
    {.name = "poll_hold",
     .type = FL_CONFIG_DURATION,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_coordinator_config, poll_hold_ms),
     .def = "25s",
     .min = 1 * SECOND,
     .max = 5 * MINUTE,
     .help = "how long an agent's poll is held open"},
    {.name = "agent_offline_after",
     .type = FL_CONFIG_DURATION,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_coordinator_config, agent_offline_after_ms),
     .def = "90s",
     .min = 2 * SECOND,
     .max = 1 * HOUR,
     .help = "an agent not heard from for this long is offline"},
    {.name = "enrollment_token_ttl",
     .type = FL_CONFIG_DURATION,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_coordinator_config, enrollment_token_ttl_ms),
     .def = "24h",
     .min = 1 * MINUTE,
     .max = 30 * DAY,
     .help = "lifetime of an enrollment token when the request gives none"},
    {.name = "max_held_polls",
     .type = FL_CONFIG_INT,
     .offset = offsetof(struct fl_coordinator_config, max_held_polls),
     .def = "20000",
     .min = 16,
     .max = 1000000,
     .help = "requests held or in work at once, per endpoint"},
    {.name = "enroll_rate",
     .type = FL_CONFIG_INT,
     .offset = offsetof(struct fl_coordinator_config, enroll_rate),
     .def = "5",
     .min = 0,
     .max = 1000,
     .help = "enrollment attempts opened per second; 0 turns enrollment off"},
    {.name = "list_limit",
     .type = FL_CONFIG_INT,
     .flags = FL_CONFIG_RELOADABLE,
     .offset = offsetof(struct fl_coordinator_config, list_limit),
     .def = "500",
     .min = 1,
     .max = 10000,
     .help = "default and largest page of fleet status, audit and lists"},
    {.type = FL_CONFIG_END, .validate = whole_ok},
};

enum fl_err fl_coordinator_config_load(const char *path, struct fl_coordinator_config *cfg,
                                       char *errbuf)
{
	return fl_config_load_file(path, fl_coordinator_config_table, cfg, errbuf);
}

void fl_coordinator_config_fini(struct fl_coordinator_config *cfg)
{
	fl_config_fini(fl_coordinator_config_table, cfg);
}

enum fl_peer_role fl_coordinator_role_to_peer(int role)
{
	switch (role) {
	case FL_COORDINATOR_VIEWER:
		return FL_PEER_VIEWER;
	case FL_COORDINATOR_RELEASE_MANAGER:
		return FL_PEER_RELEASE_MANAGER;
	case FL_COORDINATOR_ADMIN:
		return FL_PEER_ADMIN;
	}
	return FL_PEER_NONE;
}

const struct fl_coordinator_operator *
fl_coordinator_config_operator(const struct fl_coordinator_config *cfg,
                               const uint8_t pk[FL_PEER_KEY_LEN])
{
	const struct fl_coordinator_operator *ops = cfg->operators.items;

	for (size_t i = 0; i < cfg->operators.n; i++)
		if (memcmp(ops[i].public_key.key, pk, FL_PEER_KEY_LEN) == 0)
			return &ops[i];
	return NULL;
}
