/*
 * `flotilla`: the command table. Each family lives in cmd_<family>.c and
 * parses its own options (getopt_long, --help everywhere), as git's builtins.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
    {"deploy", cmd_deploy, "apply pending migrations to one database"},
    {"status", cmd_status, "show applied, pending, failed and modified migrations"},
    {"resolve", cmd_resolve, "mark a failed migration applied or rolled back"},
    {"rollback", cmd_rollback, "undo applied migrations with their down.sql"},
    {"fingerprint", cmd_fingerprint, "hash the database schema (--dump shows it)"},
    {"lint", cmd_lint, "flag dangerous changes in migrations"},
    {"graph", cmd_graph, "show the migration graph (--dot for Graphviz)"},
    {"new", cmd_new, "create a timestamped migration folder"},
    {"keygen", cmd_keygen, "create a key pair (release, agent, operator, coordinator)"},
    {"release", cmd_release, "build, sign, verify and show signed release files; push, list"},
    {"rollout", cmd_rollout, "plan, start, watch and steer rollouts across the fleet"},
    {"fleet", cmd_fleet, "tenants by state and version; drift"},
    {"tenant", cmd_tenant, "one tenant: history, reports, errors"},
    {"agents", cmd_agents, "list, approve and revoke agent keys"},
    {"enroll-token", cmd_enroll, "create a one-time enrollment token for an agent"},
    {"audit", cmd_audit, "the coordinator's audit log"},
    {"http-token", cmd_http_token, "a token for the coordinator's HTTP endpoint"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: flotilla <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'flotilla <command> --help' describes a command and its options.\n");
}

int main(int argc, char **argv)
{
	struct sigaction ignore;

	/* A reader that goes away (| head) must not kill a deploy halfway:
	 * writes fail with EPIPE instead, and the work goes on. */
	memset(&ignore, 0, sizeof(ignore));
	ignore.sa_handler = SIG_IGN;
	sigemptyset(&ignore.sa_mask);
	sigaction(SIGPIPE, &ignore, NULL);
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("flotilla %s\n", FL_VERSION);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "flotilla: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_USAGE;
}
