/*
 * Signed orders (docs/WIRE.md, "Orders"): what a release manager signs,
 * besides releases, so that a coordinator can schedule only within it.
 *
 * A rollout order names the project, the release (by hash), the target
 * migration, the tenants it may touch (a selector), the whole policy (waves,
 * health checks, on_failure...), an expiry and a random nonce. A rollback
 * order names the rollout order it undoes (by hash), its release, a target
 * (or none: undo what the rollout applied), a selector, an expiry and a
 * nonce. An order file is a packed SignedOrder: the packed order bytes and
 * Ed25519 signatures by release keys over
 *
 *   "flotilla rollout order v1\0" || SHA-256(order bytes)     (rollout)
 *   "flotilla rollback order v1\0" || SHA-256(order bytes)    (rollback)
 *
 * The order's hash, SHA-256 of its packed bytes, names it (rollback orders
 * and agents' ledgers refer to it). The contexts keep a signature on one kind
 * from ever passing for the other, or for a release.
 *
 * Decoding trusts nothing, in the order that exposes the least code: the
 * size cap; the SignedOrder (strict: unknown fields refused anywhere);
 * signatures over the hash, before the order is unpacked (a trusted key's
 * signature that does not verify refuses the order; one by a trusted key
 * must verify); the order itself (strict, and canonical: packed again it
 * gives exactly the signed bytes, so what is decoded is all that was
 * signed); then its meaning: format version, project (the one expected),
 * ids, hashes, nonce, times, the selector (struct fl_selector, sorted and
 * unique) and the policy (struct fl_policy, checked with fl_policy_check);
 * last, expiry against the caller's clock.
 *
 * Ownership: a struct fl_order is the caller's after a successful call,
 * freed with fl_order_free; on error nothing is returned. Pure functions,
 * no shared state: any thread.
 */
#ifndef FL_ORDER_H
#define FL_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "keys.h"
#include "label.h"
#include "policy.h"

#define FL_ORDER_FORMAT_VERSION   1
#define FL_ORDER_HASH_LEN         32
#define FL_ORDER_HASH_HEX_LEN     64
#define FL_ORDER_NONCE_LEN        16
#define FL_ORDER_FILE_MAX         (1u << 20) /* a packed SignedOrder (FL_WIRE_MAX_ORDER) */
#define FL_ORDER_SIGNATURES_MAX   16
#define FL_ORDER_TENANTS_MAX      100000 /* tenant ids in one selector */
#define FL_ORDER_REASON_MAX       1024   /* bytes of the reason */
#define FL_ORDER_LIFETIME_MAX_MS  (INT64_C(366) * 24 * 3600 * 1000)
#define FL_ORDER_ROLLOUT_CONTEXT  "flotilla rollout order v1"  /* signed with its NUL */
#define FL_ORDER_ROLLBACK_CONTEXT "flotilla rollback order v1" /* signed with its NUL */

enum fl_order_kind {
	FL_ORDER_ROLLOUT = 1,  /* a RolloutOrder */
	FL_ORDER_ROLLBACK = 2, /* a RollbackOrder */
};

/*
 * Which tenants an order may touch: a tenant is selected when it carries
 * every label and, if tenant_ids is not empty, its id is listed; with both
 * empty, `all` must be set (an empty selector never means the whole fleet by
 * accident), and `all` goes with nothing else. Labels sorted by key (struct
 * fl_labels), tenant ids sorted (strcmp) and unique. Owns its strings.
 */
struct fl_selector {
	struct fl_labels labels;
	char **tenant_ids;
	size_t n_tenant_ids;
	bool all;
};

void fl_selector_init(struct fl_selector *s);
void fl_selector_fini(struct fl_selector *s);
/* Deep copy; dst is initialised by the call. */
void fl_selector_copy(struct fl_selector *dst, const struct fl_selector *src);
/* Add a tenant id, keeping the list sorted and unique (a repeat is a no-op).
 * FL_EINVAL (errbuf says why) for an id that is not one, or a full list. */
enum fl_err fl_selector_add_tenant(struct fl_selector *s, const char *tenant_id, char *errbuf)
    __attribute__((warn_unused_result));
/* The rules above: FL_EINVAL naming what is wrong. */
enum fl_err fl_selector_check(const struct fl_selector *s, char *errbuf)
    __attribute__((warn_unused_result));
/* Whether the tenant (its id, its labels from the agent's config) is selected. */
bool fl_selector_matches(const struct fl_selector *s, const char *tenant_id,
                         const struct fl_labels *labels);

struct fl_order_signer {
	uint8_t pk[FL_KEY_PUBLIC_BYTES];
	bool valid;   /* its signature verifies */
	bool trusted; /* pk is one of the keys fl_order_verify was given */
};

struct fl_order {
	enum fl_order_kind kind;
	uint8_t hash[FL_ORDER_HASH_LEN]; /* SHA-256 of the packed order: its name */
	char hash_hex[FL_ORDER_HASH_HEX_LEN + 1];
	char *project_id;
	uint8_t release_hash[FL_ORDER_HASH_LEN];
	/* Rollout: the migration to bring tenants to, never empty. Rollback:
	 * revert the release's migrations applied after it; "" = undo what the
	 * rollout applied on each tenant. */
	char *target_migration_id;
	struct fl_selector selector;
	struct fl_policy policy;                       /* rollout only; empty for a rollback */
	uint8_t rollout_order_hash[FL_ORDER_HASH_LEN]; /* rollback only: the order undone */
	int64_t created_at_ms;
	int64_t expires_at_ms; /* refused at or after this */
	uint8_t nonce[FL_ORDER_NONCE_LEN];
	char *reason;                    /* for the audit log; may be "" */
	struct fl_order_signer *signers; /* one per signature, in file order */
	size_t n_signers;
	/* Set by fl_order_verify only: a trusted key's signature verified, and
	 * signers[verified_by] is the first such. */
	bool verified;
	size_t verified_by;
};

/* What a release manager puts in a rollout order. The policy must pass
 * fl_policy_check; created_at_ms 0 means now (wall clock). */
struct fl_rollout_params {
	const char *project_id;
	const uint8_t *release_hash; /* 32 bytes */
	const char *target_migration_id;
	const struct fl_selector *selector;
	const struct fl_policy *policy;
	int64_t created_at_ms;
	int64_t expires_at_ms;
	const char *reason; /* NULL: "" */
};

struct fl_rollback_params {
	const char *project_id;
	const uint8_t *rollout_order_hash; /* 32 bytes: the order whose work is undone */
	const uint8_t *release_hash;       /* 32 bytes: that order's release */
	const char *target_migration_id;   /* NULL or "": undo what the rollout applied */
	const struct fl_selector *selector;
	int64_t created_at_ms;
	int64_t expires_at_ms;
	const char *reason;
};

/*
 * Build an order with a fresh random nonce: out (replaced) gets a packed
 * SignedOrder holding it, without signatures, and hash_hex its hash (hex).
 * Everything decoding checks is checked first, and the result is decoded
 * again before it is returned. Errors: FL_EINVAL (a parameter breaks a rule:
 * errbuf names it; over FL_ORDER_FILE_MAX; out's max too small).
 */
enum fl_err fl_order_build_rollout(const struct fl_rollout_params *p, struct fl_buf *out,
                                   char hash_hex[FL_ORDER_HASH_HEX_LEN + 1], char *errbuf)
    __attribute__((warn_unused_result));
enum fl_err fl_order_build_rollback(const struct fl_rollback_params *p, struct fl_buf *out,
                                    char hash_hex[FL_ORDER_HASH_HEX_LEN + 1], char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Add key's signature to the order file data[0..len) of the given kind,
 * writing the whole new file to out (replaced). key must be a release key
 * holding its seed. The order is decoded and checked first (everything but
 * trust and expiry): nothing invalid is signed, nor a file carrying a
 * signature that does not verify. Errors: FL_EINVAL (not a release key),
 * FL_ESTATE (already signed by this key, or the cap reached), FL_EAUTH (a
 * signature in the file does not verify), FL_EPARSE (as decoding).
 */
enum fl_err fl_order_sign(const void *data, size_t len, enum fl_order_kind kind,
                          const struct fl_key *key, struct fl_buf *out, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Decode the order file data[0..len) as an order of this kind, and accept it
 * only if a signature by one of the n_trusted keys verifies (and none by a
 * trusted key fails), its project is project_id (never NULL: an agent is
 * pinned to one), and now_ms (the caller's wall clock, ms) is before its
 * expiry. On success *out is the verified, decoded order.
 * Errors: FL_EAUTH (no verifying trusted signature, another project's,
 * expired: errbuf says which), FL_EPARSE (over the cap, malformed, unknown
 * fields, not canonical, another kind or format version, a field breaking a
 * rule, a policy fl_policy_check refuses), FL_EINVAL (no trusted keys or
 * project given).
 */
enum fl_err fl_order_verify(const void *data, size_t len, enum fl_order_kind kind,
                            const uint8_t (*trusted)[FL_KEY_PUBLIC_BYTES], size_t n_trusted,
                            const char *project_id, int64_t now_ms, struct fl_order **out,
                            char *errbuf) __attribute__((warn_unused_result));

/* Decode and check as fl_order_verify does, trusting no key and ignoring
 * expiry and project: for showing an order and for plans, never for acting
 * on one (verified stays false). Errors as fl_order_verify, without FL_EAUTH. */
enum fl_err fl_order_inspect(const void *data, size_t len, enum fl_order_kind kind,
                             struct fl_order **out, char *errbuf)
    __attribute__((warn_unused_result));

/* Free an order and everything in it; NULL is a no-op. */
void fl_order_free(struct fl_order *o);

/*
 * The checks an agent makes of an assignment before any SQL runs (FLEET.md,
 * "Trust"), as pure functions the coordinator shares. Each returns FL_OK, or
 * FL_EAUTH with errbuf saying why the order does not cover the work.
 */

/* The tenant is selected by the order's selector. */
enum fl_err fl_order_covers(const struct fl_order *o, const char *tenant_id,
                            const struct fl_labels *labels, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * The wave index given for the tenant is consistent with the rollout order's
 * policy, as far as the agent can tell: the wave exists; no earlier wave
 * selecting by labels or tenant ids takes the tenant (it would be in that
 * wave); and if this wave selects by labels or tenant ids, it takes the
 * tenant. Percent waves depend on the whole fleet, which the agent cannot
 * see: they pass.
 */
enum fl_err fl_order_wave_check(const struct fl_order *rollout, uint32_t wave,
                                const char *tenant_id, const struct fl_labels *labels, char *errbuf)
    __attribute__((warn_unused_result));

/* A rollback order authorises reverting this tenant's work under this
 * rollout order: it names the order's hash, release and project, and its
 * own selector takes the tenant. */
enum fl_err fl_order_rollback_check(const struct fl_order *rollback, const struct fl_order *rollout,
                                    const char *tenant_id, const struct fl_labels *labels,
                                    char *errbuf) __attribute__((warn_unused_result));

#endif
