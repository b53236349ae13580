/*
 * What the agent tells the coordinator about tenants: a Report per
 * assignment, and the Tenant entries of a Hello, from one C view of a
 * tenant's state (its history as read from the database, the truth the
 * coordinator reconciles against) and of an assignment's results.
 *
 * fl_report_pack builds the protobuf Message itself (through proto/wire.c,
 * the only packer) and frees what it built; nothing here keeps protobuf
 * structs around. fl_report_read_tenant reads a tenant's state through the
 * engine (a read-only session: no lock, nothing created).
 *
 * Ownership: every struct here owns its strings; the _fini functions free
 * them. Threads: no shared state.
 */
#ifndef FL_REPORT_H
#define FL_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "flotilla.pb-c.h"
#include "health.h"
#include "log.h"
#include "session.h"
#include "tenants.h"

#define FL_REPORT_LOGS_MAX    4096 /* bytes of a failed row's logs sent */
#define FL_REPORT_MESSAGE_MAX 1024

/* One applied migration, or one failed one, as the history table has it. */
struct fl_history_item {
	char *id;
	char *checksum;
	int64_t started_at_ms;
	int64_t finished_at_ms; /* 0 for a failed one */
	uint32_t steps;
	char *logs; /* failed ones: cut to FL_REPORT_LOGS_MAX; else NULL */
};

/* A tenant as the agent last read it. */
struct fl_tenant_state {
	struct fl_history_item *applied; /* in history order */
	size_t n_applied;
	struct fl_history_item *failed;
	size_t n_failed;
	char fingerprint[FL_CHECKSUM_HEX_LEN + 1]; /* "" when not computed */
	char *error;                               /* NULL when read; else why not */
	int64_t read_at_ms;                        /* monotonic */
};

void fl_tenant_state_fini(struct fl_tenant_state *s);
void fl_tenant_state_copy(struct fl_tenant_state *dst, const struct fl_tenant_state *src);

/* Read tenant state from url through the engine: history (applied and
 * failed rows, by Prisma's rules) and fingerprint. A failure is recorded in
 * s->error (never returned): a tenant that cannot be read is reported so. */
void fl_report_read_tenant(const char *url, const struct fl_engine_opts *opts,
                           const struct fl_logger *log, struct fl_tenant_state *s);

/* The same from an open session (after the work). */
void fl_report_state_from_session(struct fl_session *s, struct fl_tenant_state *out);

/* What became of one migration. */
struct fl_migration_report {
	char *id;
	int outcome; /* Outcome */
	int64_t started_at_ms, finished_at_ms;
	uint32_t attempts;
	char sqlstate[6];
	char *message;
	uint32_t statement_index;
	uint32_t applied_steps;
};

/* One assignment's report. */
struct fl_report {
	char *agent_id;
	char *tenant_id;
	char *rollout_id;
	uint64_t assignment_id;
	int kind;    /* WorkKind */
	int outcome; /* Outcome */
	char message[FL_REPORT_MESSAGE_MAX];
	int64_t started_at_ms, finished_at_ms; /* wall clock */
	struct fl_migration_report *migrations;
	size_t n_migrations;
	struct fl_health_result *health;
	size_t n_health;
	bool have_state; /* state below was read after the work */
	struct fl_tenant_state state;
};

void fl_report_init(struct fl_report *r);
void fl_report_fini(struct fl_report *r);
/* Append a migration result (strings copied); returns it. */
struct fl_migration_report *fl_report_add_migration(struct fl_report *r, const char *id);

/* Pack r as a Message{report} with journal_id into out (replaced), within
 * FL_WIRE_MAX_REPORT (health messages and logs are cut to fit). */
enum fl_err fl_report_pack(const struct fl_report *r, uint64_t journal_id, struct fl_buf *out,
                           char *errbuf) __attribute__((warn_unused_result));

/* A Hello's tenant list, in parts: fills req (a Hello) with tenants
 * [from, to) of t whose states are states[i] (NULL: not read) and release
 * sequences seqs[i]; the caller packs it. Memory lives in *arena until
 * fl_report_arena_free. */
struct fl_report_arena {
	void **ptrs;
	size_t n;
};
void fl_report_hello_tenants(Flotilla__V1__Hello *hello, const struct fl_tenants *t, size_t from,
                             size_t to, const struct fl_tenant_state *const *states,
                             const uint64_t *seqs, struct fl_report_arena *arena);
void fl_report_arena_free(struct fl_report_arena *a);
/* Where the Hello part starting at tenant `from` ends: as many tenants as
 * fit max_bytes packed (at least one), so that a large agent's Hello is
 * split into parts (more_tenants) that each fit a message. */
size_t fl_report_hello_part(const struct fl_tenants *t, size_t from,
                            const struct fl_tenant_state *const *states, const uint64_t *seqs,
                            size_t max_bytes);

/* "applied", "failed", ...: an Outcome's name for logs. */
const char *fl_report_outcome_name(int outcome);

#endif
