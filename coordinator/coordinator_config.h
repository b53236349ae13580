/*
 * flotilla-coordinator's configuration: one declarative table
 * (fl_coordinator_config_table, lib/config.h) that splices in the wire table
 * (lib/wire_config.h) and adds the coordinator's own keys. docs/CONFIG.md,
 * "Coordinator", lists every key, and deploy/examples/coordinator.yaml names
 * each (tests/unit/check_config.c checks both).
 *
 * The file's name says which config this is: lib/config.h is the loader.
 *
 * Reloadable on SIGHUP (fl_config_check_reload refuses a new file that
 * changes anything else): operators, agents, trusted_release_keys, the
 * timeouts (poll_hold, agent_offline_after, enrollment_token_ttl), the list
 * limit, and the wire caps. Listening addresses, the store, the key and the
 * project are fixed for the life of the process.
 *
 * Thread-compatible: a config belongs to whoever loaded it (the coordinator's
 * core thread holds the live one).
 */
#ifndef FL_COORDINATOR_CONFIG_H
#define FL_COORDINATOR_CONFIG_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "label.h"
#include "peers.h"
#include "wire_config.h"

#define FL_COORDINATOR_DEFAULT_AGENT_LISTEN "tcp://0.0.0.0:7400"
#define FL_COORDINATOR_DEFAULT_ADMIN_LISTEN "tcp://127.0.0.1:7401"

/* operators[].role, in the order of the spellings "viewer", "release-manager", "admin". */
enum fl_coordinator_role {
	FL_COORDINATOR_VIEWER = 0,
	FL_COORDINATOR_RELEASE_MANAGER = 1,
	FL_COORDINATOR_ADMIN = 2,
};

struct fl_coordinator_operator {
	char *name;
	struct fl_config_pubkey public_key;
	int role; /* enum fl_coordinator_role */
};

struct fl_coordinator_agent {
	char *name;
	struct fl_config_pubkey public_key;
	struct fl_labels labels;
};

/* webhooks[]: where rollout transitions are POSTed (coordinator/webhooks.h). */
struct fl_coordinator_webhook {
	char *url;                       /* http://host[:port]/path */
	char *secret_file;               /* the HMAC key, read at start */
	struct fl_config_strings events; /* names from fl_coordinator_webhook_events; none: all */
	int64_t attempts;
	int64_t timeout_ms;
};

/* The event names webhooks[].events may list, NULL-terminated. */
extern const char *const fl_coordinator_webhook_events[];

struct fl_coordinator_config {
	struct fl_wire_config wire;
	char *project_id;
	char *agent_listen; /* never NULL once loaded: coordinator_url or the default */
	char *admin_listen;
	char *http_listen;               /* NULL: no HTTP endpoint (http.h) */
	struct fl_config_list operators; /* struct fl_coordinator_operator */
	struct fl_config_list agents;    /* struct fl_coordinator_agent */
	struct fl_config_list webhooks;  /* struct fl_coordinator_webhook */
	char *store;
	int64_t poll_hold_ms;
	int64_t agent_offline_after_ms;
	int64_t enrollment_token_ttl_ms;
	int64_t max_held_polls;
	int64_t enroll_rate; /* enrollment envelopes opened per second; 0: enrollment off */
	int64_t list_limit;  /* default page size of fleet status, audit, lists */
};

extern const struct fl_config_key fl_coordinator_config_table[];

/* Load path into cfg (fl_config_load_file with the table); release with
 * fl_coordinator_config_fini. Errors as fl_config_load_file. */
enum fl_err fl_coordinator_config_load(const char *path, struct fl_coordinator_config *cfg,
                                       char *errbuf) __attribute__((warn_unused_result));
void fl_coordinator_config_fini(struct fl_coordinator_config *cfg);

/* The peer role of an operator's configured role. */
enum fl_peer_role fl_coordinator_role_to_peer(int role);

/* The operator with this key, or NULL. */
const struct fl_coordinator_operator *
fl_coordinator_config_operator(const struct fl_coordinator_config *cfg,
                               const uint8_t pk[FL_PEER_KEY_LEN]);

#endif
