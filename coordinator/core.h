/*
 * The coordinator's core: ONE thread that owns the store and the in-memory
 * model (agents, their held polls, counters), and everything that changes
 * either.
 *
 * Why one thread: every state change is a store transaction committed before
 * the reply (or assignment) that depends on it leaves; with one writer there
 * is no lock order to get wrong and no transaction to retry. The network
 * never waits on it: nng callbacks (agent_server.c, admin_server.c) open
 * envelopes and decode messages on nng's threads (CPU only), then hand a job
 * to the core with fl_core_submit. The core runs jobs in order, commits,
 * seals the reply and hands it back to nng, which sends it asynchronously.
 *
 * Held polls cost no thread: a Poll with nothing to answer parks its nng
 * context (struct fl_rep_req) on the agent's entry until work or a halt
 * appears (fl_core_wake_agent), or its hold ends (a deadline in a heap). An
 * agent has at most one held poll: a new Poll answers the old one empty.
 *
 * Timers run on the core between jobs: the hold deadlines, offline
 * detection (agent_offline_after), last_seen flushes, peers.seq fsync, and
 * the scheduler's tick.
 *
 * Shutdown (fl_core_stop): the jobs already queued run, every held poll is
 * answered (empty), last_seen is flushed, peers.seq is synced, the thread
 * exits; the caller then closes the sockets and the store.
 *
 * ---- The scheduler (engineer S) ----
 *
 * The scheduler plugs in through struct fl_core_scheduler, registered once
 * before fl_core_start (coordinator/main.c: fl_core_set_scheduler). Every
 * hook runs on the core thread, inside a store transaction the core opened:
 * the core commits it after the hook returns FL_OK (before any reply that
 * depends on it is sealed), and rolls it back when a hook fails (then the
 * agent gets a Status error, an operator INTERNAL, and the failure is
 * logged). A hook may call any store function, fl_core_wake_agent,
 * fl_core_wake_all and fl_core_audit; it must not block on anything but the
 * store. Memory a hook puts into a reply comes from the request's arena
 * (fl_arena_*), freed by the core once the reply is packed.
 *
 * Without a scheduler, polls are held until their hold ends and answered
 * empty, reports are stored and acknowledged, and the rollout_* commands
 * answer UNIMPLEMENTED.
 */
#ifndef FL_CORE_H
#define FL_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "coordinator_config.h"
#include "envelope.h"
#include "err.h"
#include "flotilla.pb-c.h"
#include "label.h"
#include "peers.h"
#include "store.h"

struct fl_core;
struct fl_rep_req;
struct fl_enroll_tokens;

/* ---- the model ---- */

/* An agent as the core knows it: approved ones from config and store. */
struct fl_core_agent {
	uint8_t pk[FL_PEER_KEY_LEN];
	char key_id[FL_PEER_ID_LEN + 1];
	char name[FL_PEER_NAME_MAX + 1];
	struct fl_labels labels;
	bool online;          /* heard from within agent_offline_after */
	int64_t last_seen_ms; /* wall clock, 0 if never */
	bool reconciled;      /* a complete Hello was reconciled since it came online */
	uint32_t free_slots;  /* from its last Poll */
	uint64_t *running;    /* running_assignment_ids of its last Poll */
	size_t n_running;
	struct fl_core_held *held; /* its parked poll, or NULL (core.c's) */
	void *hello_parts;         /* Hellos with more_tenants so far (reconcile.c's) */
	void *sched;               /* the scheduler's per-agent data, or NULL */
};

/* Who sent an admin request: an operator of the current config. */
struct fl_core_caller {
	uint8_t pk[FL_PEER_KEY_LEN];
	char key_id[FL_PEER_ID_LEN + 1];
	char name[FL_PEER_NAME_MAX + 1];
	enum fl_peer_role role;
};

/* What a Poll gets back: the scheduler appends to these (arena memory). */
struct fl_core_poll_reply {
	struct fl_arena *arena;
	Flotilla__V1__WorkAssignment **assignments; /* at most the Poll's free_slots */
	size_t n_assignments;
	Flotilla__V1__Halt **halts;
	size_t n_halts;
};

/* What an admin command answers: the hook sets code (a StatusCode), message
 * (arena or static), subject (for the audit log: rollout id...), and the
 * response's result case. */
struct fl_core_admin_reply {
	struct fl_arena *arena;
	Flotilla__V1__StatusCode code;
	const char *message;
	const char *subject;
	Flotilla__V1__AdminResponse *response; /* set response->result_case and the member */
};

struct fl_core_scheduler {
	/* After the store is open and agents are loaded, before any request:
	 * load what the scheduler keeps in memory. */
	enum fl_err (*start)(void *arg, struct fl_core *core, char *errbuf);
	/* At shutdown, after the last job; free everything. */
	void (*stop)(void *arg);
	/* Called every tick_ms (> 0) on the core thread. */
	enum fl_err (*tick)(void *arg, int64_t now_ms, char *errbuf);
	int64_t tick_ms;
	/* A Poll from agent (reply->... empty): append work and halts. Leaving
	 * both empty holds the poll (until fl_core_wake_agent or its hold
	 * ends). Assignments added are committed by the core before the reply
	 * is sealed. Also called when a held poll is woken. */
	enum fl_err (*poll)(void *arg, struct fl_core_agent *agent,
	                    struct fl_core_poll_reply *reply, char *errbuf);
	/* A report stored for the first time, about assignment a (issued to
	 * this agent for this tenant): ISSUED, outstanding, or CANCELED,
	 * withdrawn by the scheduler before (a late report: what it applied
	 * still counts), here and in the store. Marking it REPORTED is the
	 * caller's, after this returns, in the same transaction: a model
	 * reloaded in here reads the store as it was before the report. */
	enum fl_err (*report)(void *arg, struct fl_core_agent *agent,
	                      const struct fl_store_assignment *a,
	                      const Flotilla__V1__Report *report, char *errbuf);
	/* After agent's Hello was reconciled (its tenants are in the store). */
	enum fl_err (*hello)(void *arg, struct fl_core_agent *agent, char *errbuf);
	/* agent went offline (online false) or came back (true). */
	enum fl_err (*agent_state)(void *arg, struct fl_core_agent *agent, bool online,
	                           char *errbuf);
	/* An AdminRequest whose command is a rollout_* one (the role table has
	 * been applied already). The core audits it with reply->code. */
	enum fl_err (*admin)(void *arg, const struct fl_core_caller *caller,
	                     const Flotilla__V1__AdminRequest *req,
	                     struct fl_core_admin_reply *reply, char *errbuf);
};

/* ---- life cycle (main thread) ---- */

struct fl_core_params {
	struct fl_coordinator_config *cfg; /* taken over on success: the core frees it */
	struct fl_store *store;            /* borrowed: closed by the caller after fl_core_stop */
	struct fl_peers *peers;            /* borrowed */
	struct fl_envelope *agent_ep;      /* borrowed: seals replies to agents */
	struct fl_envelope *admin_ep;      /* borrowed: seals replies to operators */
};

/*
 * Build the model: add the config's operators and agents to the registry
 * (and the agents to the store, approved by "config"), then every agent the
 * store holds (approved: added; revoked: revoked in the registry too).
 * Errors: FL_EDB (store), FL_EINVAL (a configured key the registry refuses).
 */
enum fl_err fl_core_new(const struct fl_core_params *p, struct fl_core **out, char *errbuf)
    __attribute__((warn_unused_result));
void fl_core_set_scheduler(struct fl_core *core, const struct fl_core_scheduler *ops, void *arg);
/* Start the core thread (calls the scheduler's start first, on it). */
enum fl_err fl_core_start(struct fl_core *core, char *errbuf) __attribute__((warn_unused_result));
/* Finish as described above and join the thread. */
void fl_core_stop(struct fl_core *core);
/* Free (after fl_core_stop); NULL is a no-op. */
void fl_core_free(struct fl_core *core);

/* ---- jobs (any thread) ---- */

struct fl_core_job {
	/* Runs on the core thread and owns job from then on (frees it). */
	void (*run)(struct fl_core *core, struct fl_core_job *job);
	struct fl_core_job *next;
};

/* Queue job for the core. Never blocks on the core's work. */
void fl_core_submit(struct fl_core *core, struct fl_core_job *job);

/* Ask the core to reload its config from new_cfg (taken over), as main does
 * on SIGHUP after fl_config_check_reload passed. */
void fl_core_reload(struct fl_core *core, struct fl_coordinator_config *new_cfg);

/* ---- for jobs and the scheduler (core thread only) ---- */

struct fl_store *fl_core_store(struct fl_core *core);
/* The scheduler registered (NULL if none) and its arg. */
const struct fl_core_scheduler *fl_core_scheduler(struct fl_core *core, void **arg);
const struct fl_coordinator_config *fl_core_config(struct fl_core *core);
struct fl_peers *fl_core_peers(struct fl_core *core);
/* The outstanding enrollment tokens (proto/enroll.h), restored from the store
 * at start; the store stays the truth. */
struct fl_enroll_tokens *fl_core_enroll_tokens(struct fl_core *core);
/* Wall clock, ms since the epoch. */
int64_t fl_core_now_ms(struct fl_core *core);

/* The agent with this key (approved, or revoked while the process runs), or NULL. */
struct fl_core_agent *fl_core_agent(struct fl_core *core, const uint8_t pk[FL_PEER_KEY_LEN]);
/* Agents in the model, for iteration: index 0 .. fl_core_agent_count - 1. */
size_t fl_core_agent_count(struct fl_core *core);
struct fl_core_agent *fl_core_agent_at(struct fl_core *core, size_t i);
/* Add (or rename, relabel) an approved agent in the model; its registry
 * entry is the caller's. */
struct fl_core_agent *fl_core_agent_add(struct fl_core *core, const uint8_t pk[FL_PEER_KEY_LEN],
                                        const char *name, const struct fl_labels *labels);
/* The agent endpoint heard from it now: last_seen, and online again if it
 * was not (the scheduler's agent_state hook runs). */
void fl_core_agent_seen(struct fl_core *core, struct fl_core_agent *agent);
/* Take an agent out of the model (revoked): its held poll is answered at
 * once with the refusal (docs/WIRE.md), as its later requests are, and
 * pointers to it are invalid from then on (the scheduler keys its own
 * records by public key). */
void fl_core_agent_remove(struct fl_core *core, const uint8_t pk[FL_PEER_KEY_LEN]);

/* Work or a halt may be there for this agent: if it has a held poll, ask the
 * scheduler now and answer the poll if anything came. Safe from inside a
 * hook: the answer is sent after the hook's transaction commits. */
void fl_core_wake_agent(struct fl_core *core, const uint8_t pk[FL_PEER_KEY_LEN]);
/* The same for every agent with a held poll (halts). */
void fl_core_wake_all(struct fl_core *core);
/* Answer agent's held poll now, if it has one: with what the scheduler has
 * for what that poll said (free slots, running work), else empty, so the
 * agent polls again at once with what it has now (after a Report: the slot
 * its work held is free). */
void fl_core_answer_held(struct fl_core *core, struct fl_core_agent *agent);

/* Append an audit entry for a decision of the coordinator itself (actor
 * "coordinator"), in the current transaction. */
enum fl_err fl_core_audit(struct fl_core *core, const char *command, const char *subject,
                          Flotilla__V1__StatusCode code, const char *detail, char *errbuf)
    __attribute__((warn_unused_result));

/* ---- replies (core thread) ---- */

/* Seal m (reply_to_seq set by the caller) for recipient on endpoint ep and
 * hand it to nng on req. With a sealing failure the requester gets the
 * refusal. max: the packed size cap. */
void fl_core_reply(struct fl_core *core, struct fl_envelope *ep, struct fl_rep_req *req,
                   const uint8_t recipient[FL_PEER_KEY_LEN], Flotilla__V1__Message *m, size_t max);
/* Answer req with the constant refusal (docs/WIRE.md). */
void fl_core_refuse(struct fl_core *core, struct fl_rep_req *req);

/* Park req as agent's held poll (seq: the Poll's envelope sequence number,
 * hold_ms from now). An older held poll of the agent is answered empty. */
void fl_core_hold(struct fl_core *core, struct fl_core_agent *agent, struct fl_rep_req *req,
                  uint64_t seq, int64_t hold_ms);
/* Run the scheduler's poll hook for agent now, in a transaction; if it added
 * anything (or force), commit and answer req with a PollReply. Returns true
 * when req was answered (or failed and was answered with an error); false
 * when nothing came and req is still the caller's to hold. */
bool fl_core_poll_now(struct fl_core *core, struct fl_core_agent *agent, struct fl_rep_req *req,
                      uint64_t seq, bool force);

/* ---- counters, for logs now and /metrics later (any thread) ---- */

enum fl_core_counter {
	FL_CORE_HELLOS,
	FL_CORE_HELLOS_REFUSED,
	FL_CORE_POLLS,
	FL_CORE_POLLS_HELD,
	FL_CORE_POLLS_WORK, /* answered with work or halts */
	FL_CORE_REPORTS,
	FL_CORE_REPORTS_DUPLICATE,
	FL_CORE_REPORTS_REFUSED, /* not this agent's tenant or assignment */
	FL_CORE_FETCHES,
	FL_CORE_ENROLLED,
	FL_CORE_ENROLL_REFUSED,
	FL_CORE_TENANTS_CLAIMED_TWICE,
	FL_CORE_ADMIN_CALLS,
	FL_CORE_ADMIN_DENIED,
	FL_CORE_ERRORS, /* store or internal failures answered with an error */
	FL_CORE_COUNTER_COUNT
};
void fl_core_count(struct fl_core *core, enum fl_core_counter c);
uint64_t fl_core_counter(struct fl_core *core, enum fl_core_counter c);
/* Polls parked right now. */
size_t fl_core_held_count(struct fl_core *core);

/* What /metrics counts (metrics.h), set once before fl_core_start (main.c);
 * NULL when none. Any thread. */
struct fl_metrics;
void fl_core_set_metrics(struct fl_core *core, struct fl_metrics *m);
struct fl_metrics *fl_core_metrics(struct fl_core *core);

#endif
