/*
 * flotilla-coordinator: load the config, open the store and the peer
 * registry, start the core thread and the two endpoints, then wait for
 * signals on the main thread (SIGHUP reloads; SIGTERM and SIGINT stop).
 * docs/ARCHITECTURE.md, "The coordinator", says how the parts fit.
 *
 * Exit codes: 0 stopped cleanly (or --check-config passed); 1 the daemon
 * failed (cannot listen, store or registry refused); 2 usage or config.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_server.h"
#include "agent_server.h"
#include "coordinator_config.h"
#include "core.h"
#include "envelope.h"
#include "file.h"
#include "http.h"
#include "identity.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "peers.h"
#include "rollout_hooks.h"
#include "sd_notify.h"
#include "store.h"
#include "webhooks.h"
#include "wire.h"

#define DRAIN_MS 3000

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: flotilla-coordinator --config FILE [--check-config] [--ready-file FILE]\n"
	        "                            [--log-level error|warn|info|debug] [--log-json]\n\n"
	        "The coordinator of a flotilla fleet: agents connect to agent_listen, operators'\n"
	        "CLIs to admin_listen (docs/CONFIG.md, \"Coordinator\").\n\n"
	        "  --config FILE       the YAML config (required)\n"
	        "  --check-config      check the config and the key file, then exit\n"
	        "  --ready-file FILE   once listening, write the bound ports there\n"
	        "                      (\"agent_port=N\", \"admin_port=N\", \"pid=N\" lines;\n"
	        "                      \"http_port=N\" with http_listen)\n"
	        "  --log-level LEVEL   error, warn, info (default) or debug\n"
	        "  --log-json          log JSON lines instead of plain ones\n"
	        "  --version           print the version\n"
	        "\nSIGHUP reloads the config (operators, agents, trusted keys, timeouts);\n"
	        "SIGUSR1 logs one line of counters; SIGUSR2 writes an online backup of the store\n"
	        "to STORE.backup; SIGTERM and SIGINT stop after answering\n"
	        "held polls.\n");
}

/* Write the ready file atomically: a reader sees all of it or nothing. */
static int write_ready(const char *path, int agent_port, int admin_port, int http_port)
{
	char tmp[4096], text[160], eb[128];
	int fd, n;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -1;
	n = snprintf(text, sizeof(text), "agent_port=%d\nadmin_port=%d\npid=%ld\n", agent_port,
	             admin_port, (long)getpid());
	if (http_port > 0)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "http_port=%d\n", http_port);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || fl_file_write_all(fd, text, (size_t)n) != FL_OK || fsync(fd) != 0 ||
	    close(fd) != 0 || rename(tmp, path) != 0) {
		fl_log_error(path, "cannot write the ready file: %s",
		             fl_err_errno(errno, eb, sizeof(eb)));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* One line of counters (SIGUSR1, and at exit). */
static void log_stats(struct fl_core *core, struct fl_agent_server *agents, const char *what)
{
#define N(c) (unsigned long long)fl_core_counter(core, c)
	fl_log_info(
	    "coordinator",
	    "%s: held polls: %zu, refused envelopes: %llu, hellos: %llu (%llu refused), "
	    "polls: %llu (%llu held, %llu with work), reports: %llu (%llu again, %llu "
	    "refused), fetches: %llu, enrolled: %llu (%llu refused), tenants claimed twice: "
	    "%llu, admin calls: %llu (%llu denied), errors: %llu",
	    what, fl_core_held_count(core),
	    agents ? (unsigned long long)fl_agent_server_refused(agents) : 0ULL, N(FL_CORE_HELLOS),
	    N(FL_CORE_HELLOS_REFUSED), N(FL_CORE_POLLS), N(FL_CORE_POLLS_HELD),
	    N(FL_CORE_POLLS_WORK), N(FL_CORE_REPORTS), N(FL_CORE_REPORTS_DUPLICATE),
	    N(FL_CORE_REPORTS_REFUSED), N(FL_CORE_FETCHES), N(FL_CORE_ENROLLED),
	    N(FL_CORE_ENROLL_REFUSED), N(FL_CORE_TENANTS_CLAIMED_TWICE), N(FL_CORE_ADMIN_CALLS),
	    N(FL_CORE_ADMIN_DENIED), N(FL_CORE_ERRORS));
#undef N
}

/* Tell systemd (Type=notify) where we are; a failure is only logged. */
static void notify(const char *state)
{
	char eb[FL_ERRBUF_SIZE];

	if (fl_sd_notify(state, eb) != FL_OK)
		fl_log_warn("systemd", "%s", eb);
}

static int check_key(const char *path, char *errbuf)
{
	struct fl_key key;
	enum fl_err rv = fl_key_file_load(path, FL_KEY_COORDINATOR, &key, errbuf);

	fl_key_fini(&key);
	return rv == FL_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 'k'},
	    {"ready-file", required_argument, NULL, 'r'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"log-json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *ready = NULL;
	bool check_only = false;
	struct fl_coordinator_config *cfg = NULL;
	struct fl_identity *self = NULL;
	struct fl_peers *peers = NULL;
	struct fl_envelope *agent_ep = NULL, *admin_ep = NULL;
	struct fl_store *store = NULL;
	struct fl_core *core = NULL;
	struct fl_rollout_hooks *hooks = NULL;
	struct fl_agent_server *agents = NULL;
	struct fl_admin_server *admins = NULL;
	struct fl_http *http = NULL;
	struct fl_metrics *metrics = NULL;
	struct fl_core_params params;
	struct fl_key key;
	struct stat sb;
	char err[FL_ERRBUF_SIZE] = "";
	char *agent_url = NULL, *admin_url = NULL, *http_url = NULL;
	size_t agent_max, admin_max, max_reqs;
	bool store_existed, created = false;
	sigset_t sigs;
	int c, sig, status = 1;

	/* Before any thread exists (nng starts its own): signals come to
	 * sigwait on this thread only. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	fl_log_set_level(FL_LOG_INFO);

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'k':
			check_only = true;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'l':
			if (strcmp(optarg, "error") == 0)
				fl_log_set_level(FL_LOG_ERROR);
			else if (strcmp(optarg, "warn") == 0)
				fl_log_set_level(FL_LOG_WARN);
			else if (strcmp(optarg, "info") == 0)
				fl_log_set_level(FL_LOG_INFO);
			else if (strcmp(optarg, "debug") == 0)
				fl_log_set_level(FL_LOG_DEBUG);
			else {
				fprintf(stderr, "flotilla-coordinator: unknown log level '%s'\n",
				        optarg);
				return 2;
			}
			break;
		case 'j':
			fl_log_set_json(true);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("flotilla-coordinator %s\n", FL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (config == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "flotilla-coordinator: cannot initialise libsodium\n");
		return 1;
	}
	cfg = fl_calloc(1, sizeof(*cfg));
	if (fl_coordinator_config_load(config, cfg, err) != FL_OK) {
		fprintf(stderr, "flotilla-coordinator: %s\n", err);
		free(cfg);
		return 2;
	}
	if (check_only) {
		struct fl_webhooks *wh = NULL;

		status = check_key(cfg->wire.key_file, err) == 0 ? 0 : 2;
		if (status != 0)
			fprintf(stderr, "flotilla-coordinator: '%s': key_file: %s\n", config, err);
		else if (cfg->webhooks.n > 0 && fl_webhooks_new(cfg, &wh, err) != FL_OK) {
			fprintf(stderr, "flotilla-coordinator: '%s': %s\n", config, err);
			status = 2;
		}
		fl_webhooks_free(wh); /* the secrets read; nothing started */
		if (status == 0)
			printf("'%s': ok\n", config);
		fl_coordinator_config_fini(cfg);
		free(cfg);
		return status;
	}

	if (fl_key_file_load(cfg->wire.key_file, FL_KEY_COORDINATOR, &key, err) != FL_OK) {
		fl_log_error("config", "key_file: %s", err);
		status = 2;
		goto out;
	}
	self = fl_identity_new_from_seed(key.seed);
	fl_key_fini(&key);
	if (self == NULL) {
		fl_log_error("identity", "cannot set up the coordinator's key");
		goto out;
	}
	fl_log_info("coordinator", "flotilla-coordinator %s, key %s, project '%s'", FL_VERSION,
	            fl_identity_key_id(self), cfg->project_id);

	store_existed = stat(cfg->store, &sb) == 0;
	if (fl_store_open(cfg->store, &store, &created, err) != FL_OK) {
		fl_log_error("store", "%s", err);
		goto out;
	}
	if (fl_peers_new(self, cfg->wire.peers_state_file, 0,
	                 store_existed && !created ? FL_PEERS_MUST_EXIST : 0, &peers,
	                 err) != FL_OK) {
		fl_log_error("peers", "%s", err);
		goto out;
	}
	agent_ep = fl_envelope_new(self, peers);
	admin_ep = fl_envelope_new(self, peers);
	agent_max = cfg->wire.max_message_size;
	admin_max = cfg->wire.max_release_size + FL_WIRE_RELEASE_SLACK + FL_ENVELOPE_OVERHEAD;
	fl_envelope_set_skew_ms(agent_ep, cfg->wire.clock_skew_ms);
	fl_envelope_set_skew_ms(admin_ep, cfg->wire.clock_skew_ms);
	fl_envelope_set_max_size(agent_ep, agent_max);
	fl_envelope_set_max_size(admin_ep, admin_max);
	fl_envelope_set_enroll_rate(agent_ep, (unsigned)cfg->enroll_rate,
	                            (unsigned)cfg->enroll_rate * 4);
	fl_envelope_set_enroll_rate(admin_ep, 0, 0);
	agent_url = fl_strdup(cfg->agent_listen);
	admin_url = fl_strdup(cfg->admin_listen);
	http_url = cfg->http_listen ? fl_strdup(cfg->http_listen) : NULL;
	max_reqs = (size_t)cfg->max_held_polls;

	params.cfg = cfg;
	params.store = store;
	params.peers = peers;
	params.agent_ep = agent_ep;
	params.admin_ep = admin_ep;
	if (fl_core_new(&params, &core, err) != FL_OK) {
		fl_log_error("coordinator", "%s", err);
		goto out;
	}
	cfg = NULL; /* the core's */
	/* The rollout scheduler (coordinator/rollout_hooks.h). */
	hooks = fl_rollout_hooks_new();
	fl_core_set_scheduler(core, fl_rollout_hooks_ops(), hooks);
	metrics = fl_metrics_new();
	fl_core_set_metrics(core, metrics);
	fl_store_on_commit(store, fl_metrics_store_commit, metrics);
	if (fl_core_start(core, err) != FL_OK) {
		fl_log_error("coordinator", "%s", err);
		goto out;
	}
	if (fl_agent_server_new(core, agent_ep, agent_url, agent_max, max_reqs, &agents, err) !=
	        FL_OK ||
	    fl_admin_server_new(core, admin_ep, admin_url, admin_max, 256, &admins, err) != FL_OK) {
		fl_log_error("coordinator", "%s", err);
		goto stop;
	}
	fl_log_info("coordinator", "listening: agents on %s (port %d), operators on %s (port %d)",
	            agent_url, fl_agent_server_port(agents), admin_url,
	            fl_admin_server_port(admins));
	if (http_url) {
		if (fl_http_new(core, http_url, &http, err) != FL_OK) {
			fl_log_error("coordinator", "%s", err);
			goto stop;
		}
		fl_log_info("coordinator", "http on %s (port %d)%s", http_url, fl_http_port(http),
		            fl_http_needs_token(http) ? ", tokens required" : "");
	}
	if (ready && write_ready(ready, fl_agent_server_port(agents), fl_admin_server_port(admins),
	                         http ? fl_http_port(http) : 0))
		goto stop;
	notify("READY=1");

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			log_stats(core, agents, "stats");
			continue;
		}
		if (sig == SIGUSR2) { /* an online backup of the store: STORE.backup */
			fl_rollout_hooks_request_backup(hooks);
			continue;
		}
		if (sig == SIGHUP) {
			struct fl_coordinator_config *next = fl_calloc(1, sizeof(*next));

			fl_log_info("config", "SIGHUP: reloading '%s'", config);
			notify("RELOADING=1");
			if (fl_coordinator_config_load(config, next, err) != FL_OK) {
				fl_log_error("config",
				             "reload refused, keeping the running config: %s", err);
				free(next);
				notify("READY=1");
				continue;
			}
			fl_core_reload(core, next);
			notify("READY=1");
			continue;
		}
		fl_log_info("coordinator", "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		notify("STOPPING=1");
		break;
	}
	status = 0;
stop:
	if (agents)
		fl_agent_server_stop_accepting(agents);
	if (admins)
		fl_admin_server_stop_accepting(admins);
	fl_http_close(http); /* its requests at the core are answered first */
	if (core)
		fl_core_stop(core);
	if (agents)
		fl_agent_server_drain(agents, DRAIN_MS);
	if (admins)
		fl_admin_server_drain(admins, DRAIN_MS);
	fl_agent_server_free(agents);
	fl_admin_server_free(admins);
	fl_http_free(http);
	if (core)
		log_stats(core, NULL, "stopped");
out:
	fl_core_free(core);
	fl_rollout_hooks_free(hooks); /* before the store closes */
	if (store)
		fl_store_on_commit(store, NULL, NULL);
	fl_store_close(store);
	fl_metrics_free(metrics);
	fl_envelope_free(agent_ep);
	fl_envelope_free(admin_ep);
	fl_peers_free(peers);
	fl_identity_free(self);
	if (cfg) {
		fl_coordinator_config_fini(cfg);
		free(cfg);
	}
	free(agent_url);
	free(admin_url);
	free(http_url);
	return status;
}
