/*
 * The coordinator's durable state: releases, agents, tenants (with the
 * history each last reported), reports, assignments, the audit log,
 * enrollment tokens, and the rollout tables the scheduler fills.
 *
 * One implementation today, store_sqlite.c (one file, WAL,
 * synchronous=FULL, foreign keys on); a PostgreSQL store for HA implements
 * this same header later. No SQLite type appears here: the structs below
 * are plain C and own their strings, and every function says what it does
 * in terms of rows, not SQL.
 *
 * Schema: the store carries its own schema version (FL_STORE_SCHEMA_VERSION)
 * and a table of ordered migration steps, each applied in a transaction of
 * its own when the store is opened. A store whose version is newer than the
 * binary's is refused (downgrading the coordinator over a newer store would
 * lose data silently). Steps are appended, never edited once merged.
 *
 * Transactions: fl_store_begin / fl_store_commit / fl_store_rollback wrap
 * several calls into one atomic, durable unit (commit returns once the data
 * is on disk). A write outside a transaction is its own transaction. The
 * coordinator's rule: whatever it writes on an agent's or operator's behalf
 * is committed before the reply leaves, and an assignment is committed
 * before it is sent.
 *
 * Threads: a store belongs to one thread, the coordinator's core thread
 * (coordinator/core.h). Nothing here is thread-safe; nothing here is to be
 * called from an nng callback.
 *
 * Exclusive: the store file is locked by the process that opened it; a
 * second coordinator on the same file is refused at open.
 *
 * Errors: FL_EDB (the database failed: the message names the store file and
 * what SQLite said), FL_ENOENT (no such row), FL_ESTATE (the row conflicts:
 * a name taken, a token used), FL_EINVAL (bad argument), FL_EIO (cannot
 * create or open the file), with errbuf. On any error inside a transaction,
 * the caller rolls it back.
 *
 * Memory: every struct filled by a get or list call is the caller's, freed
 * with its _fini (or the list's _free); _fini of a zeroed struct is a no-op.
 *
 * For the scheduler (engineer S): the tables rollouts, waves,
 * rollout_tenants and assignments exist from schema version 1 (see
 * store_sqlite.c for their columns). The assignment functions below are the
 * ones the agent endpoint needs (a report is taken only for an assignment
 * issued to that agent for that tenant); add the rollout functions in
 * coordinator/store_rollouts.h (declarations, in terms of rows) and
 * coordinator/store_rollouts_sqlite.c (their SQLite implementation, over
 * store_sqlite_int.h), and append any schema step to the `steps` table in
 * store_sqlite.c.
 */
#ifndef FL_STORE_H
#define FL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "label.h"

#define FL_STORE_KEY_LEN  32 /* Ed25519 public keys */
#define FL_STORE_HASH_LEN 32 /* SHA-256 */

struct fl_store;

/* ---- opening ---- */

/* The schema version this binary writes and the newest it can read. */
extern const int FL_STORE_SCHEMA_VERSION;

/*
 * Open (creating, mode 0600) the store at path and bring its schema up to
 * FL_STORE_SCHEMA_VERSION, each missing step in a transaction of its own.
 * *created says whether the file was new (it did not exist, or held no
 * schema yet). Errors: FL_EIO (cannot create the file), FL_EDB (not a
 * SQLite file, not a flotilla store, locked by another process, a step
 * failed), FL_ESTATE (the store's schema is newer than this binary's:
 * "store 'x' has schema version 5; this coordinator knows up to 3: upgrade
 * it").
 */
enum fl_err fl_store_open(const char *path, struct fl_store **out, bool *created, char *errbuf)
    __attribute__((warn_unused_result));
/* Roll back any open transaction, close; NULL is a no-op. */
void fl_store_close(struct fl_store *st);
/* The schema version of the open store (FL_STORE_SCHEMA_VERSION once open). */
int fl_store_schema_version(struct fl_store *st);
/* PRAGMA integrity_check and foreign_key_check: FL_OK, or FL_EDB naming the
 * first problem. For tests and `--check-store`. */
enum fl_err fl_store_check(struct fl_store *st, char *errbuf) __attribute__((warn_unused_result));

/* For tests only: open an existing store without migrating it, and set its
 * schema version to v (to fake a store written by a newer binary). */
enum fl_err fl_store_test_set_version(const char *path, int v, char *errbuf)
    __attribute__((warn_unused_result));

/* ---- transactions ---- */

/* Start a write transaction (BEGIN IMMEDIATE). FL_ESTATE if one is open. */
enum fl_err fl_store_begin(struct fl_store *st, char *errbuf) __attribute__((warn_unused_result));
/* Commit durably. On error the transaction is rolled back. */
enum fl_err fl_store_commit(struct fl_store *st, char *errbuf) __attribute__((warn_unused_result));
/* Roll back the open transaction, if any. */
void fl_store_rollback(struct fl_store *st);
bool fl_store_in_transaction(struct fl_store *st);
/* Call fn with each successful commit's duration in nanoseconds (the store's
 * latency, for /metrics); fn NULL stops. Setup only, before other use. */
typedef void (*fl_store_commit_fn)(void *arg, int64_t ns);
void fl_store_on_commit(struct fl_store *st, fl_store_commit_fn fn, void *arg);

/* ---- releases ---- */

struct fl_store_release_migration {
	char *id;
	bool has_down;
};

struct fl_store_release {
	uint8_t hash[FL_STORE_HASH_LEN]; /* content hash */
	char *project_id;
	uint64_t sequence;
	char *name; /* "" if none */
	char *head_migration_id;
	uint32_t migration_count;
	char *signer_key_ids; /* "id1,id2", the keys whose signatures verified */
	int64_t pushed_at_ms;
	char *pushed_by; /* operator key id */
	/* The release file (packed SignedRelease) as stored; NULL unless asked for. */
	uint8_t *file;
	size_t file_len;
	/* In apply order; NULL unless asked for. */
	struct fl_store_release_migration *migrations;
	size_t n_migrations;
};

void fl_store_release_fini(struct fl_store_release *r);

/* Insert a release, with its migrations. FL_ESTATE if the hash, or the
 * project's sequence number, is taken. */
enum fl_err fl_store_release_add(struct fl_store *st, const struct fl_store_release *r,
                                 char *errbuf) __attribute__((warn_unused_result));
/* Replace the stored file and signer list of release hash (signatures merged
 * by the caller). FL_ENOENT if there is no such release. */
enum fl_err fl_store_release_set_file(struct fl_store *st, const uint8_t hash[FL_STORE_HASH_LEN],
                                      const uint8_t *file, size_t len, const char *signer_key_ids,
                                      char *errbuf) __attribute__((warn_unused_result));
#define FL_STORE_WITH_FILE       1u
#define FL_STORE_WITH_MIGRATIONS 2u
/* Fetch one release; flags say what else to load. FL_ENOENT if absent. */
enum fl_err fl_store_release_get(struct fl_store *st, const uint8_t hash[FL_STORE_HASH_LEN],
                                 unsigned flags, struct fl_store_release *out, char *errbuf)
    __attribute__((warn_unused_result));
/* The project's release with this sequence number: FL_ENOENT if none. */
enum fl_err fl_store_release_by_sequence(struct fl_store *st, const char *project_id,
                                         uint64_t sequence, uint8_t hash[FL_STORE_HASH_LEN],
                                         char *errbuf) __attribute__((warn_unused_result));
/* The project's highest sequence number pushed, 0 if none. */
enum fl_err fl_store_release_max_sequence(struct fl_store *st, const char *project_id,
                                          uint64_t *sequence, char *errbuf)
    __attribute__((warn_unused_result));
/* Up to limit releases, newest sequence first, without files or migrations.
 * *items is the caller's: fl_store_releases_free. */
enum fl_err fl_store_release_list(struct fl_store *st, uint32_t limit,
                                  struct fl_store_release **items, size_t *n, char *errbuf)
    __attribute__((warn_unused_result));
void fl_store_releases_free(struct fl_store_release *items, size_t n);

/* ---- agents ---- */

/* The same numbers as the wire's AgentState. */
enum fl_store_agent_state {
	FL_STORE_AGENT_APPROVED = 1, /* its envelopes are accepted */
	FL_STORE_AGENT_REVOKED = 2,  /* refused, for good: the key never comes back */
};

struct fl_store_agent {
	uint8_t pk[FL_STORE_KEY_LEN];
	char *name; /* unique */
	enum fl_store_agent_state state;
	struct fl_labels labels;
	char *version;             /* from its last Hello; "" if never seen */
	uint32_t protocol_version; /* likewise; 0 */
	int64_t last_seen_at_ms;   /* 0 if never */
	int64_t approved_at_ms;    /* when approved */
	char *approved_by;         /* admin key id, "config", or "token" */
	int64_t revoked_at_ms;     /* 0 unless revoked */
	char *revoked_by;          /* admin key id; "" unless revoked */
	char *revoke_reason;       /* "" unless revoked */
	uint32_t tenant_count;     /* filled by get and list: tenants it owns, not gone */
};

void fl_store_agent_fini(struct fl_store_agent *a);
void fl_store_agents_free(struct fl_store_agent *items, size_t n);

/* Insert an approved agent. FL_ESTATE if the key is known already (approved
 * or revoked) or the name is taken. */
enum fl_err fl_store_agent_add(struct fl_store *st, const struct fl_store_agent *a, char *errbuf)
    __attribute__((warn_unused_result));
/* FL_ENOENT if the key is unknown. */
enum fl_err fl_store_agent_get(struct fl_store *st, const uint8_t pk[FL_STORE_KEY_LEN],
                               struct fl_store_agent *out, char *errbuf)
    __attribute__((warn_unused_result));
/* Every agent, by name; revoked ones only with include_revoked. */
enum fl_err fl_store_agent_list(struct fl_store *st, bool include_revoked,
                                struct fl_store_agent **items, size_t *n, char *errbuf)
    __attribute__((warn_unused_result));
/* Mark revoked (at, by, reason). FL_ENOENT if unknown; revoking twice is FL_OK. */
enum fl_err fl_store_agent_revoke(struct fl_store *st, const uint8_t pk[FL_STORE_KEY_LEN],
                                  int64_t at_ms, const char *by, const char *reason, char *errbuf)
    __attribute__((warn_unused_result));
/* Record what its Hello said and when it was last heard from. */
enum fl_err fl_store_agent_seen(struct fl_store *st, const uint8_t pk[FL_STORE_KEY_LEN],
                                const char *version, uint32_t protocol_version, int64_t at_ms,
                                char *errbuf) __attribute__((warn_unused_result));

/* ---- tenants ---- */

struct fl_store_applied {
	char *id;
	char *checksum;
	int64_t started_at_ms;
	int64_t finished_at_ms;
	uint32_t applied_steps_count;
};

struct fl_store_failed {
	char *id;
	char *checksum;
	int64_t started_at_ms;
	uint32_t applied_steps_count;
	char *logs;
};

struct fl_store_tenant {
	char *id;
	uint8_t agent_pk[FL_STORE_KEY_LEN]; /* the agent that owns it */
	char *database;
	char *schema; /* "" for the default */
	struct fl_labels labels;
	char *head_migration_id; /* last applied; "" if none */
	uint32_t applied_count;
	char *fingerprint; /* "" if unknown */
	char *read_error;  /* the agent could not read its history: why; "" */
	uint32_t failed_count;
	uint64_t release_sequence; /* highest the agent applied (its ledger) */
	bool external_changes;     /* history holds migrations flotilla did not apply */
	bool gone;                 /* its agent no longer lists it; history kept */
	/* Set by the scheduler: the rollout working on it and the wire's
	 * TenantState it is in there (0 and "": none). */
	char *rollout_id;
	int rollout_state;
	char *last_error; /* the last failure for it (a report, a rollout); "" */
	int64_t first_seen_at_ms;
	int64_t updated_at_ms;
	/* The history as last reported, in history order, and the failed rows;
	 * NULL unless asked for (FL_STORE_WITH_HISTORY). */
	struct fl_store_applied *applied;
	size_t n_applied;
	struct fl_store_failed *failed;
	size_t n_failed;
};

#define FL_STORE_WITH_HISTORY 4u

void fl_store_tenant_fini(struct fl_store_tenant *t);

/* Fetch one tenant (gone or not). FL_ENOENT if never seen. */
enum fl_err fl_store_tenant_get(struct fl_store *st, const char *id, unsigned flags,
                                struct fl_store_tenant *out, char *errbuf)
    __attribute__((warn_unused_result));
/*
 * Insert or update tenant t as its agent reports it: every field but
 * rollout_id, rollout_state, last_error and first_seen_at_ms (kept; set on
 * insert), gone cleared. The history rows (t->applied, t->failed) replace
 * the stored ones, unless they hash the same (nothing rewritten then).
 */
enum fl_err fl_store_tenant_put(struct fl_store *st, const struct fl_store_tenant *t, char *errbuf)
    __attribute__((warn_unused_result));
/* Ids of the tenants agent pk owns and that are not gone, sorted. The
 * caller frees each id and the array. */
enum fl_err fl_store_tenant_ids_of_agent(struct fl_store *st, const uint8_t pk[FL_STORE_KEY_LEN],
                                         char ***ids, size_t *n, char *errbuf)
    __attribute__((warn_unused_result));
/* Mark a tenant gone (at): its agent no longer lists it. */
enum fl_err fl_store_tenant_set_gone(struct fl_store *st, const char *id, int64_t at_ms,
                                     char *errbuf) __attribute__((warn_unused_result));
/* For the scheduler: the rollout working on the tenant and its state there
 * (NULL/0: none), and its last error (NULL: unchanged). */
enum fl_err fl_store_tenant_set_rollout(struct fl_store *st, const char *id, const char *rollout_id,
                                        int rollout_state, const char *last_error, int64_t at_ms,
                                        char *errbuf) __attribute__((warn_unused_result));
/* After a report: the tenant's head, count, fingerprint and last error as
 * the report says (NULL: unchanged). */
enum fl_err fl_store_tenant_set_after_report(struct fl_store *st, const char *id, const char *head,
                                             uint32_t applied_count, const char *fingerprint,
                                             const char *last_error, int64_t at_ms, char *errbuf)
    __attribute__((warn_unused_result));

/* What one report changes in a tenant's stored history. */
struct fl_store_history_change {
	/* Appended after the stored rows, in this order; one whose id is there
	 * already is left as it is. */
	const struct fl_store_applied *applied;
	size_t n_applied;
	/* Taken out of the stored history (reverted). */
	const char *const *removed;
	size_t n_removed;
	/* With replace_failed: the tenant's failed rows (and failed_count) now. */
	const struct fl_store_failed *failed;
	size_t n_failed;
	bool replace_failed;
};
/*
 * After a report, in its transaction: the stored history as the report says
 * it changed (removed first, then appended), so it agrees with the head and
 * count fl_store_tenant_set_after_report writes until the next Hello reads
 * the history from the tenant again (and replaces it: the history's digest
 * is forgotten here). FL_ENOENT for an unknown tenant (nothing written).
 */
enum fl_err fl_store_tenant_history_after_report(struct fl_store *st, const char *id,
                                                 const struct fl_store_history_change *c,
                                                 int64_t at_ms, char *errbuf)
    __attribute__((warn_unused_result));

/* Calls fn for every tenant, by id, starting after after_id ("" from the
 * start), without history, until fn returns false. gone ones only with
 * include_gone. The struct fn gets is valid during the call only. */
typedef bool (*fl_store_tenant_fn)(void *arg, const struct fl_store_tenant *t);
enum fl_err fl_store_tenant_each(struct fl_store *st, const char *after_id, bool include_gone,
                                 fl_store_tenant_fn fn, void *arg, char *errbuf)
    __attribute__((warn_unused_result));

/* Which migrations on a tenant flotilla knows the origin of. */
enum fl_store_origin {
	FL_STORE_ORIGIN_BASELINE = 1, /* in the history when the tenant was first seen */
	FL_STORE_ORIGIN_FLOTILLA = 2, /* applied by an assignment (a report said so) */
	FL_STORE_ORIGIN_EXTERNAL = 3, /* appeared later without a flotilla report: by hand */
};
/* Record a migration's origin on a tenant; an origin recorded earlier is kept
 * unless the new one is FLOTILLA (a report proves it). */
enum fl_err fl_store_origin_set(struct fl_store *st, const char *tenant_id,
                                const char *migration_id, enum fl_store_origin origin,
                                int64_t at_ms, char *errbuf) __attribute__((warn_unused_result));
/* The origin recorded, or 0 when none is. */
enum fl_err fl_store_origin_get(struct fl_store *st, const char *tenant_id,
                                const char *migration_id, enum fl_store_origin *origin,
                                char *errbuf) __attribute__((warn_unused_result));

/* Tenants (not gone, with a fingerprint) per (head, fingerprint), for drift:
 * sorted by head, then count descending, then fingerprint. */
struct fl_store_drift_row {
	char *head_migration_id;
	char *fingerprint;
	uint32_t count;
};
enum fl_err fl_store_drift_rows(struct fl_store *st, struct fl_store_drift_row **rows, size_t *n,
                                char *errbuf) __attribute__((warn_unused_result));
void fl_store_drift_rows_free(struct fl_store_drift_row *rows, size_t n);

/* ---- reports ---- */

/*
 * Store a report (the packed Report bytes as received) once per (agent,
 * journal_id): *duplicate is set, and nothing written, when that pair is
 * stored already.
 */
enum fl_err fl_store_report_add(struct fl_store *st, const uint8_t agent_pk[FL_STORE_KEY_LEN],
                                uint64_t journal_id, uint64_t assignment_id, const char *tenant_id,
                                int outcome, const uint8_t *packed, size_t len,
                                int64_t received_at_ms, bool *duplicate, char *errbuf)
    __attribute__((warn_unused_result));

struct fl_store_report {
	uint8_t *packed; /* a packed Report */
	size_t len;
	int64_t received_at_ms;
};
/* Up to limit reports about tenant, newest first. */
enum fl_err fl_store_report_list(struct fl_store *st, const char *tenant_id, uint32_t limit,
                                 struct fl_store_report **items, size_t *n, char *errbuf)
    __attribute__((warn_unused_result));
void fl_store_reports_free(struct fl_store_report *items, size_t n);
/* Reports stored in all (tests, metrics). */
enum fl_err fl_store_report_count(struct fl_store *st, uint64_t *n, char *errbuf)
    __attribute__((warn_unused_result));

/* ---- assignments ---- */

/* Where an assignment is. */
enum fl_store_assignment_state {
	FL_STORE_ASSIGNMENT_ISSUED = 1,   /* committed and sent (or about to be); no report yet */
	FL_STORE_ASSIGNMENT_REPORTED = 2, /* a report for it was stored */
	FL_STORE_ASSIGNMENT_CANCELED = 3, /* withdrawn by the scheduler before any report */
};

struct fl_store_assignment {
	uint64_t id; /* unique, never reused (fl_store_assignment_next_id) */
	char *rollout_id;
	uint32_t wave;
	char *tenant_id;
	uint8_t agent_pk[FL_STORE_KEY_LEN]; /* the agent it was issued to */
	int kind;                           /* the wire's WorkKind */
	char *target_migration_id;          /* "" for CHECK */
	enum fl_store_assignment_state state;
	int64_t issued_at_ms;
	int64_t reported_at_ms; /* 0 until reported */
	int outcome;            /* the wire's Outcome of the report; 0 until reported */
};

void fl_store_assignment_fini(struct fl_store_assignment *a);
void fl_store_assignments_free(struct fl_store_assignment *items, size_t n);

/* The next assignment id (a durable counter: ids are never handed out
 * twice, even across crashes, once the transaction commits). */
enum fl_err fl_store_assignment_next_id(struct fl_store *st, uint64_t *id, char *errbuf)
    __attribute__((warn_unused_result));
/* Insert; a->rollout_id must name a rollout. FL_ESTATE if the id is taken. */
enum fl_err fl_store_assignment_add(struct fl_store *st, const struct fl_store_assignment *a,
                                    char *errbuf) __attribute__((warn_unused_result));
/* FL_ENOENT if there is no such assignment. */
enum fl_err fl_store_assignment_get(struct fl_store *st, uint64_t id,
                                    struct fl_store_assignment *out, char *errbuf)
    __attribute__((warn_unused_result));
/* Move to REPORTED (or CANCELED) with the outcome. */
enum fl_err fl_store_assignment_set_state(struct fl_store *st, uint64_t id,
                                          enum fl_store_assignment_state state, int outcome,
                                          int64_t at_ms, char *errbuf)
    __attribute__((warn_unused_result));
/* Assignments issued to agent pk and not reported, by id. */
enum fl_err fl_store_assignment_outstanding(struct fl_store *st, const uint8_t pk[FL_STORE_KEY_LEN],
                                            struct fl_store_assignment **items, size_t *n,
                                            char *errbuf) __attribute__((warn_unused_result));

/* ---- audit ---- */

struct fl_store_audit {
	uint64_t id; /* assigned by fl_store_audit_add */
	int64_t at_ms;
	char *actor_key_id; /* "" for the coordinator's own decisions */
	char *actor_name;   /* operator name, or "coordinator" */
	int role;           /* the wire's Role */
	char *command;      /* "agent_approve", "rollout_start", or an event name */
	char *subject;      /* rollout id, release hash, agent key id; "" */
	int code;           /* the wire's StatusCode */
	char *detail;       /* status message, reason given; "" */
};

void fl_store_audit_fini(struct fl_store_audit *a);
void fl_store_audits_free(struct fl_store_audit *items, size_t n);
/* Append an entry; *id (if not NULL) gets its id. */
enum fl_err fl_store_audit_add(struct fl_store *st, const struct fl_store_audit *a, uint64_t *id,
                               char *errbuf) __attribute__((warn_unused_result));
/* Up to limit entries with at_ms >= since_ms and id > after_id, by actor key
 * id when actor is not empty, oldest first. */
enum fl_err fl_store_audit_query(struct fl_store *st, int64_t since_ms, uint64_t after_id,
                                 const char *actor, uint32_t limit, struct fl_store_audit **items,
                                 size_t *n, char *errbuf) __attribute__((warn_unused_result));

/* ---- enrollment tokens ---- */

struct fl_store_token {
	uint8_t hash[FL_STORE_HASH_LEN]; /* SHA-256 of the token text; the token itself is never
	                                    stored */
	char *name;                      /* the agent's name once enrolled */
	struct fl_labels labels;
	int64_t created_at_ms;
	int64_t expires_at_ms;
	char *created_by;                  /* admin key id */
	int64_t used_at_ms;                /* 0 while unused */
	uint8_t used_by[FL_STORE_KEY_LEN]; /* the agent key that used it */
};

void fl_store_token_fini(struct fl_store_token *t);
/* FL_ESTATE if the hash exists (a collision: a bug). */
enum fl_err fl_store_token_add(struct fl_store *st, const struct fl_store_token *t, char *errbuf)
    __attribute__((warn_unused_result));
/* FL_ENOENT if no token has this hash. */
enum fl_err fl_store_token_get(struct fl_store *st, const uint8_t hash[FL_STORE_HASH_LEN],
                               struct fl_store_token *out, char *errbuf)
    __attribute__((warn_unused_result));
/* Tokens not used and expiring after now_ms, oldest first (to restore the
 * in-memory view, proto/enroll.h, at start). Free with fl_store_tokens_free. */
enum fl_err fl_store_token_outstanding(struct fl_store *st, int64_t now_ms,
                                       struct fl_store_token **items, size_t *n, char *errbuf)
    __attribute__((warn_unused_result));
void fl_store_tokens_free(struct fl_store_token *items, size_t n);
/* Mark used by agent pk at at_ms; FL_ESTATE if it was used already. */
enum fl_err fl_store_token_use(struct fl_store *st, const uint8_t hash[FL_STORE_HASH_LEN],
                               const uint8_t pk[FL_STORE_KEY_LEN], int64_t at_ms, char *errbuf)
    __attribute__((warn_unused_result));

#endif
