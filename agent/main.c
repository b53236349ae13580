/* flotilla-agent: the daemon beside the tenant databases (agent/agent.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "sd_notify.h"

static void usage(FILE *to)
{
	fprintf(to, "usage: flotilla-agent --config FILE [--check-config]\n\n"
	            "Pull work from the coordinator, check it against what release managers\n"
	            "signed, apply it to the tenant databases, and report.\n\n"
	            "  -c, --config FILE   the agent's config (docs/CONFIG.md, \"Agent\")\n"
	            "      --check-config  check FILE and list the tenants, then exit\n"
	            "  -h, --help          this help\n"
	            "      --version       print the version\n\n"
	            "Signals: SIGTERM/SIGINT stop (shutdown.mode; a second one cancels running\n"
	            "work), SIGHUP reloads the config.\n"
	            "Exit status: 0 stopped cleanly, 1 error, 2 bad config or usage.\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	char err[FL_ERRBUF_SIZE] = "";
	const char *config = NULL;
	struct fl_agent *a = NULL;
	int opt, check = 0, code;

	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'k':
			check = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("flotilla-agent %s\n", FL_VERSION);
			return 0;
		default:
			usage(stderr);
			return FL_AGENT_EXIT_CONFIG;
		}
	}
	if (config == NULL || optind != argc) {
		fprintf(stderr, "flotilla-agent: %s\n",
		        config == NULL ? "--config FILE is required" : "unexpected argument");
		usage(stderr);
		return FL_AGENT_EXIT_CONFIG;
	}
	if (check)
		return fl_agent_check_config(config);
	fl_log_set_level(FL_LOG_INFO);
	if (fl_agent_open(config, &a, &code, err) != FL_OK) {
		fprintf(stderr, "flotilla-agent: %s\n", err);
		return code;
	}
	/* open: config, keys, state dir, journal and tenants are in place;
	 * fl_agent_run dials the coordinator (systemd, Type=notify) */
	if (fl_sd_notify("READY=1", err) != FL_OK)
		fl_log_warn("systemd", "%s", err);
	code = fl_agent_run(a);
	fl_agent_free(a);
	return code;
}
