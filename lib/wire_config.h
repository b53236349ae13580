/*
 * The wire and trust settings every daemon reads (agent and coordinator
 * alike): its own key, where the coordinator is, which keys it trusts and the
 * caps on what peers may send. A daemon's own table splices this one in:
 *
 *   struct agent_config { struct fl_wire_config wire; ... };
 *   {.type = FL_CONFIG_INCLUDE, .offset = offsetof(struct agent_config, wire),
 *    .include = fl_wire_config_table},
 *
 * Which keys a role needs beyond `key_file` is the daemon's to check: agents
 * need coordinator_url, coordinator_public_keys and trusted_release_keys.
 * The pinned and trusted keys are trust roots (FL_CONFIG_TRUST_ROOT): a file
 * loaded with this table must be owned by the daemon's user or root and
 * writable by nobody else.
 * docs/CONFIG.md describes every key; tests/unit/check_config.c fails when a
 * key is missing from it or from deploy/examples/{agent,coordinator}.yaml.
 */
#ifndef FL_WIRE_CONFIG_H
#define FL_WIRE_CONFIG_H

#include <stdint.h>

#define FL_WIRE_MAX_COORDINATOR_KEYS 16

#include "config.h"

struct fl_wire_config {
	char *key_file;                                   /* required */
	char *coordinator_url;                            /* NULL if unset */
	struct fl_config_pubkeys coordinator_public_keys; /* empty if unset; else 1 to 16 */
	struct fl_config_pubkeys trusted_release_keys;    /* may be empty */
	uint64_t max_message_size;                        /* bytes */
	uint64_t max_release_size;                        /* bytes */
	int64_t clock_skew_ms;                            /* milliseconds */
	char *peers_state_file;
};

/* Terminated by FL_CONFIG_END; load with fl_config_load_file and release with
 * fl_config_fini(fl_wire_config_table, &cfg). */
extern const struct fl_config_key fl_wire_config_table[];

#endif
