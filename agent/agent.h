/*
 * flotilla-agent as a whole: what it holds and its life cycle.
 *
 * Threads:
 *   main         the pull loop (agent/pull.c): Hello, then long polls; work
 *                goes to the pool, halts to the pool
 *   sender       sends journaled reports as soon as they are made, and again
 *                after every reconnect, until the coordinator acknowledges them
 *   housekeeping takes the signals (sigwait; no handler runs): SIGTERM and
 *                SIGINT stop the agent, SIGHUP reloads; runs discovery every
 *                discovery_interval and fsyncs peers.seq
 *   workers      the pool (agent/worker.h), plus its watchdog
 *
 * State (state_dir, 0700, locked with flock so two agents never share it):
 *   journal      unsent reports (agent/journal.h)
 *   ledger       assignments run (agent/ledger.h)
 *   releases/    verified release files by hash (agent/releases.h)
 *   enrolled     written once the coordinator accepted a Hello: from then on
 *                the enrollment token is no longer sent
 * peers.seq (the wire's peers_state_file) holds the envelope replay state.
 *
 * Settings and tenants are reference-counted snapshots: a reload or a
 * discovery swaps in new ones under `mu`; work holds the ones it started
 * with (fl_agent_acquire).
 */
#ifndef FL_AGENT_H
#define FL_AGENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "agent_config.h"
#include "envelope.h"
#include "identity.h"
#include "journal.h"
#include "ledger.h"
#include "peers.h"
#include "releases.h"
#include "report.h"
#include "tenants.h"
#include "worker.h"

#define FL_AGENT_EXIT_OK     0
#define FL_AGENT_EXIT_ERROR  1 /* could not start, or stopped on an error */
#define FL_AGENT_EXIT_CONFIG 2 /* the config (or its files) was refused */

/* A settings snapshot: one loaded config, shared while referenced. */
struct fl_agent_cfg {
	atomic_int refs;
	struct fl_agent_config c;
};

/* A reference-counted client of the coordinator (replaced on a redirect). */
struct fl_agent_link {
	atomic_int refs;
	struct fl_client *client;
	char *url;
};

struct fl_agent {
	char *config_path;
	char *agent_id;
	pthread_mutex_t mu;         /* guards cfg, tenants, links, the flags below */
	pthread_cond_t changed;     /* flags changed (stop, kick, hello) */
	struct fl_agent_cfg *cfg;   /* current settings */
	struct fl_tenants *tenants; /* current tenants */
	int64_t discovered_at_ms;   /* monotonic */
	struct fl_agent_link *poll; /* long polls (closed to interrupt one on stop) */
	struct fl_agent_link *rpc;  /* hello, reports, fetches */

	struct fl_key key;
	struct fl_identity *identity;
	struct fl_peers *peers;
	struct fl_envelope *envelope;
	struct fl_journal *journal;
	struct fl_ledger *ledger;
	struct fl_releases *releases;
	struct fl_worker *worker;
	int lock_fd; /* flock on state_dir/agent.lock */

	bool stopping;             /* SIGTERM/SIGINT: take no more work */
	bool hello_ok;             /* the coordinator accepted our latest Hello */
	bool need_hello;           /* tenants changed, a redirect, a reconnect */
	bool kick_sender;          /* a report was made */
	bool enrolled;             /* state_dir/enrolled exists */
	bool journal_full;         /* main thread: taking no work (max_pending_reports) */
	unsigned redirects;        /* main thread: redirects followed in a row */
	uint32_t poll_interval_ms; /* from the HelloReply */
	uint32_t max_poll_wait_ms;

	pthread_t sender, housekeeping;
	bool sender_started, housekeeping_started;
	atomic_bool house_stop;
};

/* Load the config, open the state, the key, peers.seq, discover the tenants
 * and recover from a crash: everything but the threads. Errors print one
 * line naming what failed; *code is the exit code to use. */
enum fl_err fl_agent_open(const char *config_path, struct fl_agent **out, int *code, char *errbuf)
    __attribute__((warn_unused_result));
/* Run until SIGTERM/SIGINT: the exit code. */
int fl_agent_run(struct fl_agent *a);
void fl_agent_free(struct fl_agent *a);

/* --check-config: load and check config_path and its files, list the
 * tenants (discovery included, or why it cannot reach a database), print
 * to stdout; the exit code. */
int fl_agent_check_config(const char *config_path);

/* Snapshot hooks for the pool (struct fl_worker_hooks). */
void fl_agent_acquire(void *arg, struct fl_agent_snapshot *s);
void fl_agent_release(void *arg, struct fl_agent_snapshot *s);

/* Reload the config file (SIGHUP): the keys fl_config_check_reload allows,
 * then discovery; the old settings stay when the new file is refused. */
enum fl_err fl_agent_reload(struct fl_agent *a, char *errbuf) __attribute__((warn_unused_result));

/* The current link (referenced; fl_agent_link_unref), or NULL when stopping. */
struct fl_agent_link *fl_agent_link_get(struct fl_agent *a, bool poll);
void fl_agent_link_unref(struct fl_agent_link *l);

/* Sleep up to ms, waking early when the agent stops. Returns !stopping. */
bool fl_agent_sleep(struct fl_agent *a, int64_t ms);

#endif
