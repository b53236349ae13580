/* The wire and trust settings: one table, documented in docs/CONFIG.md. */
#include "wire_config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define KiB (INT64_C(1) << 10)
#define MiB (INT64_C(1) << 20)
#define GiB (INT64_C(1) << 30)

/* nng URLs: "tcp://host:7400", "tls+tcp://host:7400", "ipc:///run/x.sock". */
static bool check_url(const struct fl_config_key *key, const void *value, char *why)
{
	const char *url = *(const char *const *)value, *sep = strstr(url, "://");
	size_t i;

	(void)key;
	if (sep == NULL || sep == url || sep[3] == '\0')
		goto bad;
	for (i = 0; url + i < sep; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyz0123456789+", url[i]) == NULL)
			goto bad;
	return true;
bad:
	snprintf(why, FL_ERRBUF_SIZE, "expected a URL such as tcp://host:7400");
	return false;
}

const struct fl_config_key fl_wire_config_table[] = {
    {
        .name = "key_file",
        .type = FL_CONFIG_STRING,
        .flags = FL_CONFIG_REQUIRED | FL_CONFIG_NONEMPTY,
        .offset = offsetof(struct fl_wire_config, key_file),
        .help = "this daemon's secret key file (flotilla keygen), mode 0600",
    },
    {
        .name = "coordinator_url",
        .type = FL_CONFIG_STRING,
        .flags = FL_CONFIG_NONEMPTY,
        .offset = offsetof(struct fl_wire_config, coordinator_url),
        .check = check_url,
        .help = "where agents dial the coordinator and where it listens (tcp://host:7400)",
    },
    {
        .name = "coordinator_public_keys",
        .type = FL_CONFIG_PUBKEY_LIST,
        .flags = FL_CONFIG_NONEMPTY | FL_CONFIG_TRUST_ROOT,
        .offset = offsetof(struct fl_wire_config, coordinator_public_keys),
        .max = FL_WIRE_MAX_COORDINATOR_KEYS,
        .help = "the coordinators' public keys, pinned by agents",
    },
    {
        .name = "trusted_release_keys",
        .type = FL_CONFIG_PUBKEY_LIST,
        .flags = FL_CONFIG_RELOADABLE | FL_CONFIG_TRUST_ROOT,
        .offset = offsetof(struct fl_wire_config, trusted_release_keys),
        .help = "public keys whose release signatures agents accept",
    },
    {
        .name = "max_message_size",
        .type = FL_CONFIG_SIZE,
        .flags = FL_CONFIG_RELOADABLE,
        .offset = offsetof(struct fl_wire_config, max_message_size),
        .def = "1MiB",
        .min = 4 * KiB,
        .max = 64 * MiB,
        .help = "largest envelope accepted from a peer",
    },
    {
        .name = "max_release_size",
        .type = FL_CONFIG_SIZE,
        .flags = FL_CONFIG_RELOADABLE,
        .offset = offsetof(struct fl_wire_config, max_release_size),
        .def = "64MiB",
        .min = 1 * MiB,
        .max = 64 * MiB, /* the hard cap of a release file and a bundle envelope */
        .help = "largest release bundle accepted",
    },
    {
        .name = "clock_skew",
        .type = FL_CONFIG_DURATION,
        .flags = FL_CONFIG_RELOADABLE,
        .offset = offsetof(struct fl_wire_config, clock_skew_ms),
        .def = "5m",
        .min = 1000,
        .max = 3600 * 1000,
        .help = "how far a peer's envelope timestamp may be from our clock",
    },
    {
        .name = "peers_state_file",
        .type = FL_CONFIG_STRING,
        .flags = FL_CONFIG_NONEMPTY,
        .offset = offsetof(struct fl_wire_config, peers_state_file),
        .def = "peers.seq",
        .help = "last sequence number seen per peer, kept across restarts",
    },
    {.type = FL_CONFIG_END},
};
