/*
 * The operator's side of the admin endpoint: what every fleet command
 * (`release push`, `rollout ...`, `fleet ...`, `tenant show`, `agents ...`,
 * `enroll-token create`, `audit`) shares.
 *
 * A command holds one struct cli_admin: the coordinator's URL, the
 * coordinator keys it pins, the operator key it speaks with. Options and
 * environment, the options winning:
 *
 *   --coordinator URL        FLOTILLA_COORDINATOR      (default tcp://127.0.0.1:7401)
 *   --coordinator-key B64    FLOTILLA_COORDINATOR_KEY  (repeatable; comma-separated in
 *                                                       the variable: several coordinators)
 *   --key FILE, or           FLOTILLA_KEY              (an operator key, kind operator;
 *   --operator-key FILE                                 `agents approve/revoke` take --key
 *                                                       for the agent's public key)
 *   --timeout DUR                                      (one request; default 30s)
 *
 * cli_admin_call sends one AdminRequest through proto/client.h (sealed for
 * the pinned key, the reply checked against the request) and maps what
 * comes back to one line on stderr and an exit code (cli.h): unreachable,
 * a connection lost mid-request and refused keys CLI_CONNECT, a role that
 * may not run the command CLI_DENIED (naming the roles that may),
 * CLI_NOT_FOUND, CLI_CONFLICT (failed precondition, already exists,
 * aborted), CLI_USAGE (invalid argument), CLI_ERROR for the rest.
 *
 * Single-threaded: one command, one connection, requests one at a time.
 */
#ifndef FL_CLI_ADMIN_H
#define FL_CLI_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "client.h"
#include "flotilla.pb-c.h"
#include "jsonw.h"
#include "render.h"
#include "keys.h"
#include "label.h"

#define CLI_ADMIN_DEFAULT_URL     "tcp://127.0.0.1:7401"
#define CLI_ADMIN_TIMEOUT_MS      30000
#define CLI_ADMIN_CONNECT_WAIT_MS 5000 /* give up on an unreachable coordinator after this */

/* Option codes of the admin options (beyond cli.h's). */
enum {
	OPT_COORDINATOR = 2000,
	OPT_COORDINATOR_KEY,
	OPT_OPERATOR_KEY,
	OPT_ADMIN_TIMEOUT,
	OPT_ADMIN_FIRST_FREE, /* commands number their own options from here */
};

#define CLI_ADMIN_OPTIONS                                                                          \
	{"coordinator", required_argument, NULL, OPT_COORDINATOR},                                 \
	    {"coordinator-key", required_argument, NULL, OPT_COORDINATOR_KEY},                     \
	    {"operator-key", required_argument, NULL, OPT_OPERATOR_KEY},                           \
	    {"timeout", required_argument, NULL, OPT_ADMIN_TIMEOUT},                               \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}
/* --key FILE as the operator key: every command but agents approve/revoke. */
#define CLI_ADMIN_KEY_OPTION                                                                       \
	{                                                                                          \
		"key", required_argument, NULL, OPT_OPERATOR_KEY                                   \
	}

#define CLI_ADMIN_HELP                                                                             \
	"  --coordinator URL      the coordinator's admin endpoint (default:\n"                    \
	"                         $FLOTILLA_COORDINATOR, else " CLI_ADMIN_DEFAULT_URL ")\n"        \
	"  --coordinator-key B64  the coordinator's public key, pinned (default:\n"                \
	"                         $FLOTILLA_COORDINATOR_KEY); repeatable\n"                        \
	"  --key FILE             your operator key (default: $FLOTILLA_KEY)\n"                    \
	"  --timeout DUR          give up on one request after DUR (default 30s)\n"

struct cli_admin {
	const char *url;
	const char *key_file;
	uint8_t keys[FL_CLIENT_MAX_KEYS][FL_KEY_PUBLIC_BYTES]; /* pinned coordinator keys */
	size_t n_keys;
	bool keys_from_options; /* --coordinator-key replaces the variable's list */
	int64_t timeout_ms;
	const char *what; /* the command for messages: "rollout start" */
	/* once connected */
	struct fl_key key;
	struct fl_identity *id;
	struct fl_peers *peers;
	struct fl_envelope *ep;
	struct fl_client *client;
	uint64_t request_id;
};

/* Defaults from the environment; nothing is opened. what: the command's
 * words for messages ("rollout start"). */
void cli_admin_init(struct cli_admin *a, const char *what);
/* Handle an admin option: CLI_OK, CLI_USAGE after saying why, or -1 when
 * opt is not one. */
int cli_admin_option(struct cli_admin *a, struct cli *c, int opt, const char *arg);
/* Load the operator key and dial the coordinator (in the background: the
 * first call waits for the connection). CLI_OK or an exit code, printed. */
int cli_admin_connect(struct cli_admin *a, struct cli *c);
void cli_admin_fini(struct cli_admin *a);

/*
 * Send req (its command set; request_id is filled in) and wait for the
 * answer. CLI_OK: *reply is the Message (fl_wire_free it) and *resp its
 * AdminResponse, status OK, result of req's command. Otherwise an exit
 * code, the reason printed on stderr, *reply NULL. With quiet_not_found, a
 * NOT_FOUND answer is returned as CLI_NOT_FOUND without a message.
 */
int cli_admin_call(struct cli_admin *a, Flotilla__V1__AdminRequest *req, bool quiet_not_found,
                   Flotilla__V1__Message **reply, Flotilla__V1__AdminResponse **resp);
/* The same, giving up on the coordinator quietly: CLI_CONNECT without a
 * message when it cannot be reached (watch retries). */
int cli_admin_call_retryable(struct cli_admin *a, Flotilla__V1__AdminRequest *req,
                             Flotilla__V1__Message **reply, Flotilla__V1__AdminResponse **resp,
                             char *errbuf);

/* ---- what the fleet commands share for reading and showing ---- */

/* An enum value as the CLI spells it: the proto name without its prefix,
 * lowercase, '-' for '_' ("ROLLOUT_STATE_ROLLED_BACK" -> "rolled-back");
 * "?" for a value the descriptor does not know. Static storage per call
 * site is not needed: the result points into buf. */
const char *cli_enum_name(const ProtobufCEnumDescriptor *d, int value, char *buf, size_t n);
/* The reverse, for options (--state rolled-back): FL_EINVAL if unknown. */
enum fl_err cli_enum_parse(const ProtobufCEnumDescriptor *d, const char *name, int *value);
#define CLI_ENUM_NAME_MAX 64

/* "2025-11-24 12:00:03Z" (UTC); "-" for 0. */
const char *cli_time(int64_t at_ms, char *buf, size_t n);
/* "3m12s ago", "in 5m"; "never" for 0. */
const char *cli_ago(int64_t at_ms, int64_t now_ms, char *buf, size_t n);
/* A duration given as "7d", "1d12h", "90m", "5s" (days on top of lib/duration's
 * units): FL_EPARSE with errbuf saying why. */
enum fl_err cli_duration_days(const char *text, int64_t *ms, char *errbuf);
/* A time for --since: a duration back from now ("1h", "7d") or a UTC date
 * "2025-11-24" / "2025-11-24T12:00:00Z". */
enum fl_err cli_since(const char *text, int64_t now_ms, int64_t *at_ms, char *errbuf);

/* The first 12 hex digits of a 32-byte hash ("-" when empty). */
const char *cli_short_hash(const ProtobufCBinaryData *h, char *buf, size_t n);
/* Key id of a 32-byte public key ("-" when not 32 bytes). */
const char *cli_key_id(const ProtobufCBinaryData *pk, char buf[FL_KEY_ID_LEN + 1]);

/* Labels: into proto form (an array of pointers into storage the struct
 * owns) and out of it. */
struct cli_labels {
	Flotilla__V1__Label *items;
	Flotilla__V1__Label **ptrs;
	size_t n;
	struct fl_labels set;
};
/* "k=v,k=v" (one or more options, merged); CLI_OK or CLI_USAGE printed. */
int cli_labels_add(struct cli *c, struct cli_labels *l, const char *option, const char *text);
/* Fill items/ptrs from set; call once all options are in. */
void cli_labels_seal(struct cli_labels *l);
void cli_labels_fini(struct cli_labels *l);
/* "ring=canary,region=eu" ("-" for none) into buf. */
const char *cli_labels_text(Flotilla__V1__Label *const *labels, size_t n, char *buf, size_t len);
void cli_labels_json(struct jw *w, const char *key, Flotilla__V1__Label *const *labels, size_t n);

/* A TenantStatus as fleet status and tenant show write it. */
void cli_tenant_json(struct jw *w, const char *key, const Flotilla__V1__TenantStatus *t);

/* Whether stdout is a terminal that may be drawn on, and in color. */
bool cli_tty(void);
bool cli_color(void);

#endif
