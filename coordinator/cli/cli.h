/*
 * What every `flotilla` command shares: exit codes scripts can rely on, the
 * database and migrations-folder options, error printing.
 */
#ifndef FL_CLI_H
#define FL_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "err.h"
#include "log.h"
#include "migration.h"
#include "session.h"

/* Exit codes: stable, documented in README.md. */
enum cli_exit {
	CLI_OK = 0,
	CLI_ERROR = 1,      /* anything not below: I/O, a request the history does not allow */
	CLI_USAGE = 2,      /* bad command line */
	CLI_INVALID = 3,    /* the migrations folder is invalid (parse, graph, missing file) */
	CLI_FAILED = 4,     /* a migration failed, or a failed one blocks deploy */
	CLI_DRIFT = 5,      /* checksum mismatch: applied migration edited, or missing locally */
	CLI_CONNECT = 6,    /* cannot connect or authenticate */
	CLI_LOCKED = 7,     /* another deployer held the migration lock too long */
	CLI_LINT = 8,       /* lint found errors */
	CLI_PENDING = 9,    /* status: migrations are waiting to be applied */
	CLI_UNTRUSTED = 10, /* release: no signature by a trusted key verifies */
	CLI_RUNNING = 11,   /* status: a migration is running (another session holds the lock) */
	/* the coordinator's answers (coordinator/cli/admin.h) */
	CLI_DENIED = 12,       /* the operator key's role may not run the command */
	CLI_NOT_FOUND = 13,    /* no such rollout, release, tenant or agent */
	CLI_CONFLICT = 14,     /* not in the current state (failed precondition, exists, a race) */
	CLI_HALTED = 15,       /* rollout watch/--wait: the rollout halted */
	CLI_ROLLED_BACK = 16,  /* rollout watch/--wait: the rollout was rolled back */
	CLI_EXPIRED = 17,      /* rollout watch/--wait: its order expired before it completed */
	CLI_BLOCKED = 18,      /* rollout watch --exit-on-blocked: waiting for a human */
	CLI_WAIT_TIMEOUT = 19, /* rollout watch --wait-timeout: still going when it ran out */
	CLI_BUSY = 20, /* tables stayed locked past the retries; nothing applied: run again */
	/* 128 + the signal's number (130 SIGINT, 143 SIGTERM): interrupted, the
	 * work canceled on the server, the lock released */
	CLI_SIGNALED = 128,
};

/* Long options shared by commands, returned by getopt_long as these codes. */
enum {
	OPT_DATABASE_URL = 1000,
	OPT_DIR,
	OPT_JSON,
	OPT_LOCK_TIMEOUT,
	OPT_STATEMENT_TIMEOUT,
	OPT_LOCK_WAIT,
	OPT_RETRY_ATTEMPTS,
	OPT_RETRY_BUDGET,
	OPT_LOG_JSON,
	OPT_CONNECT_TIMEOUT,
	OPT_LIBPQ_ENV,
	OPT_FLAG, /* a command's one boolean option, handled by cli_own_flag */
};

#define CLI_DIR_OPTIONS                                                                            \
	{"dir", required_argument, NULL, OPT_DIR},                                                 \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}
#define CLI_DB_OPTIONS                                                                             \
	CLI_DIR_OPTIONS, {"database-url", required_argument, NULL, OPT_DATABASE_URL},              \
	    {"verbose", no_argument, NULL, 'v'},                                                   \
	    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},                     \
	    {"libpq-env", no_argument, NULL, OPT_LIBPQ_ENV},                                       \
	{                                                                                          \
		"log-json", no_argument, NULL, OPT_LOG_JSON                                        \
	}
#define CLI_APPLY_OPTIONS                                                                          \
	{"lock-timeout", required_argument, NULL, OPT_LOCK_TIMEOUT},                               \
	    {"statement-timeout", required_argument, NULL, OPT_STATEMENT_TIMEOUT},                 \
	    {"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},                                 \
	    {"retry-attempts", required_argument, NULL, OPT_RETRY_ATTEMPTS},                       \
	{                                                                                          \
		"retry-budget", required_argument, NULL, OPT_RETRY_BUDGET                          \
	}

#define CLI_DB_HELP                                                                                \
	"  --database-url URL     PostgreSQL URL (default: $DATABASE_URL)\n"                       \
	"  --dir DIR              migrations folder (default: ./migrations, else\n"                \
	"                         ./prisma/migrations)\n"                                          \
	"  --connect-timeout DUR  give up connecting after DUR (default 10s)\n"                    \
	"  --libpq-env            let PG* variables, ~/.pgpass and pg_service.conf\n"              \
	"                         apply (default: only the URL counts, as in Prisma)\n"            \
	"  -v, --verbose          log progress and retries to stderr\n"                            \
	"  --log-json             log as JSON lines\n"
#define CLI_APPLY_HELP                                                                             \
	"  --lock-timeout DUR     per-statement lock timeout, 1ms to 1h (default 500ms);\n"        \
	"                         a lock timeout is retried with backoff, not a failure\n"         \
	"  --statement-timeout DUR  per-statement time limit (default: none)\n"                    \
	"  --lock-wait DUR        wait for another deployer's lock (default 60s)\n"                \
	"  --retry-attempts N     tries per migration on transient errors (default 10)\n"          \
	"  --retry-budget DUR     total time for those tries (default 2m)\n"

struct cli {
	const char *cmd; /* the command's name, for messages */
	const char *url;
	const char *dir;
	bool json;
	struct fl_engine_opts opts;
	struct fl_logger log; /* what the session logs through: stderr, as fl_log_* */
	char **args;          /* positional arguments after cli_parse */
	int nargs;
	bool help; /* --help was printed: exit CLI_OK */
};

/* A command's own options: return CLI_OK, an exit code, or -1 if not its own. */
typedef int (*cli_own_fn)(struct cli *c, int opt, const char *arg, void *ctx);

void cli_init(struct cli *c, const char *cmd);
/* Handle a shared option; returns CLI_OK, CLI_USAGE after printing why, or -1
 * if opt is not a shared one. */
int cli_option(struct cli *c, int opt, const char *arg);
/* An own-option handler for commands whose one option of their own is a
 * flag declared with code OPT_FLAG: sets *(int *)ctx to 1. */
int cli_own_flag(struct cli *c, int opt, const char *arg, void *ctx);

/*
 * Parse argv: shared options go to cli_option, the others to own (may be
 * NULL). At most max_args positional arguments. Returns CLI_OK (check
 * c->help) or an exit code to return at once.
 */
int cli_parse(struct cli *c, int argc, char **argv, const struct option *options, cli_own_fn own,
              void *ctx, void (*usage)(void), int max_args);
/* Print "flotilla <cmd>: <fmt>" and a hint, return CLI_USAGE. */
int cli_usage_error(const struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print errbuf (or the error's text) as one line ("error: ..." or, after a
 * signal, "interrupted by SIGINT: ..."); return the exit code for rv. */
int cli_fail(enum fl_err rv, const char *errbuf);
int cli_exit_for(enum fl_err rv);

/* ./migrations, or ./prisma/migrations when only that one exists. */
const char *cli_default_dir(void);
/* Load and check the migrations folder. CLI_OK or an exit code (printed). */
int cli_load(struct cli *c, struct fl_migration_set *set);
/*
 * Make a session and open it on the database (locked for writers): CLI_OK
 * with *s to pass to cli_close, or an exit code (printed; *s is NULL).
 * From here until cli_close, SIGINT and SIGTERM cancel the session (a
 * dedicated thread waits for them with sigwait) instead of killing the
 * process: the server stops the statement and rolls it back, the engine
 * records what is true, the lock is released.
 */
int cli_open(struct cli *c, const struct fl_migration_set *set, bool lock, struct fl_session **s);
/* Close and free s (NULL: nothing). Returns code, or CLI_SIGNALED + signal
 * after saying so when a signal interrupted the work. */
int cli_close(struct cli *c, struct fl_session *s, int code);

/* The commands. */
int cmd_agents(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_deploy(int argc, char **argv);
int cmd_enroll(int argc, char **argv);
int cmd_http_token(int argc, char **argv);
int cmd_fleet(int argc, char **argv);
int cmd_fingerprint(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_lint(int argc, char **argv);
int cmd_new(int argc, char **argv);
int cmd_release(int argc, char **argv);
int cmd_resolve(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_rollout(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_tenant(int argc, char **argv);
/* `release push` and `release list` (cmd_release_push.c): the exit code, or
 * -1 when argv[1] is neither and cmd_release goes on. */
int cmd_release_remote(int argc, char **argv);

/* Print one line per migration step of deploy and rollback (an fl_event_fn). */
void cli_print_event(const struct fl_event *ev, void *arg);

#endif
