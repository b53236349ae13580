/* The admin endpoint (admin_server.h). */
#include "admin_server.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enroll.h"
#include "fleet.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "reconcile.h"
#include "release.h"
#include "rep.h"
#include "roles.h"
#include "wire.h"

#define MAX_TOKEN_TTL_MS (30LL * 24 * 3600 * 1000)

struct fl_admin_server {
	struct fl_core *core;
	struct fl_envelope *ep;
	struct fl_rep *rep;
	size_t max_message;
};

/* One admin request on its way to the core. */
struct admin_job {
	struct fl_core_job job;
	struct fl_admin_server *srv;
	struct fl_rep_req *req;
	struct fl_peer_info sender; /* as the registry knew it when the envelope opened */
	uint64_t seq;
	Flotilla__V1__Message *m; /* NULL: refused by the role table, or malformed */
	bool denied;              /* the role table refused it */
	char command[64];         /* the command's name, when known */
	char why[FL_ERRBUF_SIZE];
};

/* One call being served on the core. */
struct call {
	struct fl_core *core;
	struct admin_job *job;
	struct fl_core_caller caller;
	const Flotilla__V1__AdminRequest *req;
	struct fl_core_admin_reply reply;
	/* run after the transaction committed (registry changes that must not
	 * happen for a call that did not commit) */
	void (*after_commit)(struct call *c);
	/* run when it did not (undo what a handler did outside the store) */
	void (*after_rollback)(struct call *c);
	uint8_t pk[FL_PEER_KEY_LEN];
	char name[FL_PEER_NAME_MAX + 1];
	struct fl_labels labels;
};

static void set_status(struct call *c, Flotilla__V1__StatusCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_status(struct call *c, Flotilla__V1__StatusCode code, const char *fmt, ...)
{
	char buf[FL_ERRBUF_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	c->reply.code = code;
	c->reply.message = fl_arena_strdup(c->reply.arena, buf);
}

static void hexkey(const uint8_t *p, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, p, n);
}

static Flotilla__V1__Label **wire_labels(struct fl_arena *ar, const struct fl_labels *l, size_t *n)
{
	Flotilla__V1__Label **out = fl_arena_alloc(ar, (l->n + 1) * sizeof(*out));

	for (size_t i = 0; i < l->n; i++) {
		Flotilla__V1__Label *x = fl_arena_alloc(ar, sizeof(*x));

		flotilla__v1__label__init(x);
		x->key = fl_arena_strdup(ar, l->items[i].key);
		x->value = fl_arena_strdup(ar, l->items[i].value);
		out[i] = x;
	}
	*n = l->n;
	return out;
}

/* Labels from a request; false with the status set when one is invalid. */
static bool req_labels(struct call *c, Flotilla__V1__Label **in, size_t n, struct fl_labels *out)
{
	char eb[FL_ERRBUF_SIZE] = "";

	fl_labels_init(out);
	for (size_t i = 0; i < n; i++)
		if (fl_labels_set(out, in[i]->key, in[i]->value, eb) != FL_OK) {
			set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT, "%s",
			           eb);
			fl_labels_fini(out);
			return false;
		}
	return true;
}

static bool peer_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= FL_PEER_NAME_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@:+-") ==
	           n;
}

/* ---- releases ---- */

static Flotilla__V1__ReleaseInfo *release_info(struct fl_arena *ar,
                                               const struct fl_store_release *r)
{
	Flotilla__V1__ReleaseInfo *ri = fl_arena_alloc(ar, sizeof(*ri));
	const char *p = r->signer_key_ids, *comma;

	flotilla__v1__release_info__init(ri);
	ri->release_hash.data = fl_arena_memdup(ar, r->hash, FL_STORE_HASH_LEN);
	ri->release_hash.len = FL_STORE_HASH_LEN;
	ri->name = fl_arena_strdup(ar, r->name);
	ri->migration_count = r->migration_count;
	ri->head_migration_id = fl_arena_strdup(ar, r->head_migration_id);
	for (; p != NULL && *p != '\0'; p = comma ? comma + 1 : NULL) {
		size_t n = (comma = strchr(p, ',')) ? (size_t)(comma - p) : strlen(p);
		char *id = fl_arena_alloc(ar, n + 1);

		memcpy(id, p, n);
		fl_arena_push(ar, &ri->signer_key_ids, &ri->n_signer_key_ids, id);
	}
	ri->pushed_at_ms = r->pushed_at_ms;
	ri->pushed_by = fl_arena_strdup(ar, r->pushed_by);
	ri->size_bytes = r->file_len;
	ri->project_id = fl_arena_strdup(ar, r->project_id);
	ri->sequence = r->sequence;
	return ri;
}

/* Key ids of the signers whose signatures verify, "id1,id2". */
static char *valid_signers(const struct fl_release *rel)
{
	struct fl_buf b = FL_BUF_INIT;
	char id[FL_KEY_ID_LEN + 1];

	for (size_t i = 0; i < rel->n_signers; i++) {
		if (!rel->signers[i].valid)
			continue;
		fl_key_id(rel->signers[i].pk, id);
		(void)fl_buf_printf(&b, "%s%s", b.len ? "," : "", id);
	}
	return fl_buf_detach(&b);
}

/*
 * The stored file plus the new file's valid signatures by keys it lacks (at
 * most FL_RELEASE_SIGNATURES_MAX in all), into out. *added: how many.
 */
static enum fl_err merge_signatures(const uint8_t *old, size_t old_len, const uint8_t *new_,
                                    size_t new_len, const struct fl_release *new_rel,
                                    struct fl_buf *out, size_t *added, char *eb)
{
	Flotilla__V1__SignedRelease *a = NULL, *b = NULL,
	                            merged = FLOTILLA__V1__SIGNED_RELEASE__INIT;
	Flotilla__V1__ReleaseSignature **sigs = NULL;
	size_t n = 0;
	enum fl_err rv;

	*added = 0;
	if ((rv = fl_wire_unpack_signed_release(old, old_len, FL_WIRE_MAX_RELEASE, &a, eb)) !=
	        FL_OK ||
	    (rv = fl_wire_unpack_signed_release(new_, new_len, FL_WIRE_MAX_RELEASE, &b, eb)) !=
	        FL_OK)
		goto out;
	sigs = fl_calloc(a->n_signatures + b->n_signatures + 1, sizeof(*sigs));
	for (size_t i = 0; i < a->n_signatures; i++)
		sigs[n++] = a->signatures[i];
	for (size_t i = 0; i < b->n_signatures && n < FL_RELEASE_SIGNATURES_MAX; i++) {
		bool have = false, valid = false;

		for (size_t k = 0; k < a->n_signatures && !have; k++)
			have = memcmp(a->signatures[k]->public_key.data,
			              b->signatures[i]->public_key.data, FL_KEY_PUBLIC_BYTES) == 0;
		/* the decoder lists signers in file order: the i-th is this one */
		valid = i < new_rel->n_signers && new_rel->signers[i].valid;
		if (!have && valid) {
			sigs[n++] = b->signatures[i];
			(*added)++;
		}
	}
	merged.bundle = a->bundle;
	merged.signatures = sigs;
	merged.n_signatures = n;
	fl_buf_reset(out);
	rv = fl_wire_pack_signed_release(&merged, out, FL_WIRE_MAX_RELEASE, eb);
out:
	free(sigs);
	fl_wire_free_signed_release(a);
	fl_wire_free_signed_release(b);
	return rv;
}

static enum fl_err release_push(struct call *c, char *eb)
{
	const struct fl_coordinator_config *cfg = fl_core_config(c->core);
	const Flotilla__V1__ReleasePushRequest *rq = c->req->release_push;
	Flotilla__V1__ReleasePushResponse *resp = fl_arena_alloc(c->reply.arena, sizeof(*resp));
	struct fl_store *st = fl_core_store(c->core);
	struct fl_store_release rec = {0}, old = {0};
	struct fl_release *rel = NULL;
	struct fl_buf merged = FL_BUF_INIT;
	uint8_t hash[FL_STORE_HASH_LEN], other[FL_STORE_HASH_LEN];
	char ve[FL_ERRBUF_SIZE] = "", hex[65];
	uint64_t max_seq = 0;
	enum fl_err rv = FL_OK;

	flotilla__v1__release_push_response__init(resp);
	if (rq->signed_release.len > cfg->wire.max_release_size) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT,
		           "release of %zu bytes exceeds max_release_size (%llu)",
		           rq->signed_release.len, (unsigned long long)cfg->wire.max_release_size);
		return FL_OK;
	}
	if (cfg->wire.trusted_release_keys.n == 0) {
		set_status(
		    c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_FAILED_PRECONDITION,
		    "no trusted_release_keys in the coordinator's config: nothing can verify");
		return FL_OK;
	}
	rv = fl_release_verify(
	    rq->signed_release.data, rq->signed_release.len,
	    (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])cfg->wire.trusted_release_keys.keys,
	    cfg->wire.trusted_release_keys.n, NULL, NULL, &rel, ve);
	if (rv == FL_EAUTH) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_FAILED_PRECONDITION,
		           "release not signed by a trusted key: %s", ve);
		return FL_OK;
	}
	if (rv != FL_OK) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT,
		           "not a valid release: %s", ve);
		return FL_OK;
	}
	c->reply.subject = fl_arena_strdup(c->reply.arena, rel->hash);
	if (strcmp(rel->project_id, cfg->project_id) != 0) {
		char q[80];

		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_FAILED_PRECONDITION,
		           "release is of project '%s', not '%s'",
		           fl_err_quote(q, sizeof(q), rel->project_id, strlen(rel->project_id)),
		           cfg->project_id);
		goto out;
	}
	sodium_hex2bin(hash, sizeof(hash), rel->hash, FL_RELEASE_HASH_HEX_LEN, NULL, NULL, NULL);

	rv = fl_store_release_get(st, hash, FL_STORE_WITH_FILE, &old, eb);
	if (rv == FL_OK) { /* the same content again: merge new signatures */
		size_t added = 0;
		struct fl_release *check = NULL;
		char *signers;

		rv = FL_OK;
		if (merge_signatures(old.file, old.file_len, rq->signed_release.data,
		                     rq->signed_release.len, rel, &merged, &added, ve) != FL_OK) {
			set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT,
			           "cannot merge signatures: %s", ve);
			goto out;
		}
		if (added > 0) {
			if (fl_release_verify(merged.data, merged.len,
			                      (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])
			                          cfg->wire.trusted_release_keys.keys,
			                      cfg->wire.trusted_release_keys.n, hash,
			                      rel->project_id, &check, ve) != FL_OK) {
				set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INTERNAL,
				           "merged release does not verify: %s", ve);
				goto out;
			}
			signers = valid_signers(check);
			fl_release_free(check);
			rv = fl_store_release_set_file(st, hash, (const uint8_t *)merged.data,
			                               merged.len, signers, eb);
			free(signers);
			if (rv != FL_OK)
				goto out;
			fl_store_release_fini(&old);
			if ((rv = fl_store_release_get(st, hash, 0, &old, eb)) != FL_OK)
				goto out;
		}
		resp->already_present = true;
		resp->release = release_info(c->reply.arena, &old);
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK, "%s", "");
		c->reply.message = added ? "signatures added" : "";
		goto done;
	}
	if (rv != FL_ENOENT)
		goto out;
	rv = fl_store_release_by_sequence(st, rel->project_id, rel->sequence, other, eb);
	if (rv == FL_OK) {
		hexkey(other, sizeof(other), hex);
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_ALREADY_EXISTS,
		           "sequence %llu of project '%s' is release %s already",
		           (unsigned long long)rel->sequence, rel->project_id, hex);
		rv = FL_OK;
		goto out;
	}
	if (rv != FL_ENOENT)
		goto out;
	if ((rv = fl_store_release_max_sequence(st, rel->project_id, &max_seq, eb)) != FL_OK)
		goto out;
	if (rel->sequence < max_seq) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_FAILED_PRECONDITION,
		           "release sequence %llu is below the newest pushed, %llu",
		           (unsigned long long)rel->sequence, (unsigned long long)max_seq);
		goto out;
	}
	memcpy(rec.hash, hash, sizeof(hash));
	rec.project_id = rel->project_id;
	rec.sequence = rel->sequence;
	rec.name = rq->name;
	rec.migration_count = (uint32_t)rel->set.count;
	rec.head_migration_id = rel->set.count ? rel->set.items[rel->set.count - 1].id : "";
	rec.signer_key_ids = valid_signers(rel);
	rec.pushed_at_ms = fl_core_now_ms(c->core);
	rec.pushed_by = c->caller.key_id;
	rec.file = rq->signed_release.data;
	rec.file_len = rq->signed_release.len;
	rec.migrations = fl_calloc(rel->set.count + 1, sizeof(*rec.migrations));
	rec.n_migrations = rel->set.count;
	for (size_t i = 0; i < rel->set.count; i++) {
		rec.migrations[i].id = rel->set.items[i].id;
		rec.migrations[i].has_down = rel->set.items[i].down_sql != NULL;
	}
	rv = fl_store_release_add(st, &rec, eb);
	if (rv == FL_OK)
		resp->release = release_info(c->reply.arena, &rec);
	free(rec.signer_key_ids);
	free(rec.migrations);
	if (rv != FL_OK)
		goto out;
	set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK, "%s", "");
	fl_log_info(c->caller.name,
	            "release %s pushed: project '%s', sequence %llu, %zu migrations", rel->hash,
	            rel->project_id, (unsigned long long)rel->sequence, rel->set.count);
done:
	resp->release_hash.data = fl_arena_memdup(c->reply.arena, hash, sizeof(hash));
	resp->release_hash.len = sizeof(hash);
	c->reply.response->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_RELEASE_PUSH;
	c->reply.response->release_push = resp;
out:
	fl_buf_fini(&merged);
	fl_store_release_fini(&old);
	fl_release_free(rel);
	return rv;
}

static uint32_t page(struct call *c, uint32_t asked)
{
	uint32_t max = (uint32_t)fl_core_config(c->core)->list_limit;

	return asked == 0 || asked > max ? max : asked;
}

static enum fl_err release_list(struct call *c, char *eb)
{
	Flotilla__V1__ReleaseListResponse *resp = fl_arena_alloc(c->reply.arena, sizeof(*resp));
	struct fl_store_release *list;
	size_t n;
	enum fl_err rv;

	flotilla__v1__release_list_response__init(resp);
	rv = fl_store_release_list(fl_core_store(c->core), page(c, c->req->release_list->limit),
	                           &list, &n, eb);
	if (rv != FL_OK)
		return rv;
	for (size_t i = 0; i < n; i++)
		fl_arena_push(c->reply.arena, &resp->releases, &resp->n_releases,
		              release_info(c->reply.arena, &list[i]));
	fl_store_releases_free(list, n);
	c->reply.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	c->reply.response->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_RELEASE_LIST;
	c->reply.response->release_list = resp;
	return FL_OK;
}

/* ---- agents ---- */

static Flotilla__V1__AgentInfo *agent_info(struct call *c, const struct fl_store_agent *a)
{
	struct fl_arena *ar = c->reply.arena;
	Flotilla__V1__AgentInfo *ai = fl_arena_alloc(ar, sizeof(*ai));
	struct fl_core_agent *live = fl_core_agent(c->core, a->pk);

	flotilla__v1__agent_info__init(ai);
	ai->name = fl_arena_strdup(ar, a->name);
	ai->public_key.data = fl_arena_memdup(ar, a->pk, FL_STORE_KEY_LEN);
	ai->public_key.len = FL_STORE_KEY_LEN;
	ai->labels = wire_labels(ar, &a->labels, &ai->n_labels);
	ai->state = a->state == FL_STORE_AGENT_REVOKED
	                ? FLOTILLA__V1__AGENT_STATE__AGENT_STATE_REVOKED
	                : FLOTILLA__V1__AGENT_STATE__AGENT_STATE_APPROVED;
	ai->agent_version = fl_arena_strdup(ar, a->version);
	ai->protocol_version = a->protocol_version;
	ai->tenant_count = a->tenant_count;
	ai->last_seen_at_ms = live && live->last_seen_ms > a->last_seen_at_ms ? live->last_seen_ms
	                                                                      : a->last_seen_at_ms;
	ai->approved_at_ms = a->approved_at_ms;
	ai->approved_by = fl_arena_strdup(ar, a->approved_by);
	return ai;
}

static enum fl_err agent_list(struct call *c, char *eb)
{
	Flotilla__V1__AgentListResponse *resp = fl_arena_alloc(c->reply.arena, sizeof(*resp));
	struct fl_store_agent *list;
	size_t n;
	enum fl_err rv;

	flotilla__v1__agent_list_response__init(resp);
	rv = fl_store_agent_list(fl_core_store(c->core), c->req->agent_list->include_revoked, &list,
	                         &n, eb);
	if (rv != FL_OK)
		return rv;
	for (size_t i = 0; i < n; i++)
		fl_arena_push(c->reply.arena, &resp->agents, &resp->n_agents,
		              agent_info(c, &list[i]));
	fl_store_agents_free(list, n);
	c->reply.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	c->reply.response->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_AGENT_LIST;
	c->reply.response->agent_list = resp;
	return FL_OK;
}

static void approve_after(struct call *c)
{
	char eb[FL_ERRBUF_SIZE] = "";

	if (fl_peers_add(fl_core_peers(c->core), c->pk, FL_PEER_AGENT, c->name, eb) != FL_OK) {
		fl_log_error(c->name, "approved in the store, but the registry refused it: %s", eb);
		return;
	}
	fl_core_agent_add(c->core, c->pk, c->name, &c->labels);
}

static enum fl_err agent_approve(struct call *c, char *eb)
{
	const Flotilla__V1__AgentApproveRequest *rq = c->req->agent_approve;
	Flotilla__V1__AgentApproveResponse *resp = fl_arena_alloc(c->reply.arena, sizeof(*resp));
	struct fl_store *st = fl_core_store(c->core);
	struct fl_store_agent a = {0}, got;
	struct fl_peer_info info;
	char id[FL_KEY_ID_LEN + 1];
	enum fl_err rv;

	flotilla__v1__agent_approve_response__init(resp);
	fl_key_id(rq->public_key.data, id);
	c->reply.subject = fl_arena_strdup(c->reply.arena, id);
	if (!peer_name_ok(rq->name)) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT,
		           "agent name: expected 1 to %d of A-Z a-z 0-9 . _ @ : + -",
		           FL_PEER_NAME_MAX);
		return FL_OK;
	}
	if (fl_peers_find(fl_core_peers(c->core), rq->public_key.data, &info) == FL_OK) {
		if (info.revoked)
			set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_FAILED_PRECONDITION,
			           "key %s was revoked: a revoked key never comes back", id);
		else if (info.role != FL_PEER_AGENT)
			set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT,
			           "key %s is a %s key", id, fl_peer_role_name(info.role));
		else
			set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_ALREADY_EXISTS,
			           "agent %s is approved already, as '%s'", id, info.name);
		return FL_OK;
	}
	if (memcmp(rq->public_key.data,
	           fl_identity_public_key(fl_peers_identity(fl_core_peers(c->core))),
	           FL_PEER_KEY_LEN) == 0) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT,
		           "key %s is this coordinator's", id);
		return FL_OK;
	}
	if (!req_labels(c, rq->labels, rq->n_labels, &c->labels))
		return FL_OK;
	memcpy(a.pk, rq->public_key.data, FL_PEER_KEY_LEN);
	a.name = rq->name;
	a.labels = c->labels;
	a.approved_at_ms = fl_core_now_ms(c->core);
	a.approved_by = c->caller.key_id;
	rv = fl_store_agent_add(st, &a, eb);
	if (rv == FL_ESTATE) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_ALREADY_EXISTS,
		           "an agent named '%s', or key %s, is in the store already", rq->name, id);
		return FL_OK;
	}
	if (rv != FL_OK || (rv = fl_store_agent_get(st, a.pk, &got, eb)) != FL_OK)
		return rv;
	resp->agent = agent_info(c, &got);
	fl_store_agent_fini(&got);
	memcpy(c->pk, a.pk, FL_PEER_KEY_LEN);
	snprintf(c->name, sizeof(c->name), "%s", rq->name);
	c->after_commit = approve_after;
	c->reply.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	c->reply.response->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_AGENT_APPROVE;
	c->reply.response->agent_approve = resp;
	return FL_OK;
}

static enum fl_err agent_revoke(struct call *c, char *eb)
{
	const Flotilla__V1__AgentRevokeRequest *rq = c->req->agent_revoke;
	Flotilla__V1__AgentRevokeResponse *resp = fl_arena_alloc(c->reply.arena, sizeof(*resp));
	struct fl_store *st = fl_core_store(c->core);
	struct fl_core_agent *live;
	struct fl_store_agent got;
	char id[FL_KEY_ID_LEN + 1];
	enum fl_err rv;

	flotilla__v1__agent_revoke_response__init(resp);
	fl_key_id(rq->public_key.data, id);
	c->reply.subject = fl_arena_strdup(c->reply.arena, id);
	rv = fl_store_agent_get(st, rq->public_key.data, &got, eb);
	if (rv == FL_ENOENT) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_NOT_FOUND,
		           "no agent with key %s", id);
		return FL_OK;
	}
	if (rv != FL_OK)
		return rv;
	fl_store_agent_fini(&got);
	/* At once, before anything else can fail: refused from now on, also
	 * if the store below fails (peers.seq records it too). */
	if ((rv = fl_peers_revoke(fl_core_peers(c->core), rq->public_key.data, eb)) != FL_OK)
		fl_log_error(id, "revoking in the registry: %s (revoked in memory)", eb);
	live = fl_core_agent(c->core, rq->public_key.data);
	if (live != NULL) {
		fl_reconcile_discard(live);
		fl_core_agent_remove(c->core, rq->public_key.data);
	}
	if ((rv = fl_store_agent_revoke(st, rq->public_key.data, fl_core_now_ms(c->core),
	                                c->caller.key_id, rq->reason, eb)) != FL_OK ||
	    (rv = fl_store_agent_get(st, rq->public_key.data, &got, eb)) != FL_OK)
		return rv;
	fl_log_warn(got.name, "agent %s revoked by '%s': %s", id, c->caller.name, rq->reason);
	resp->agent = agent_info(c, &got);
	fl_store_agent_fini(&got);
	c->reply.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	c->reply.response->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_AGENT_REVOKE;
	c->reply.response->agent_revoke = resp;
	return FL_OK;
}

/* The call did not commit: the token must not enroll anyone. */
static void token_forget(struct call *c)
{
	struct fl_enroll_token t;
	char eb[FL_ERRBUF_SIZE];

	if (fl_enroll_tokens_take(fl_core_enroll_tokens(c->core), c->pk, fl_core_now_ms(c->core),
	                          &t, eb) == FL_OK)
		fl_enroll_token_fini(&t);
}

static enum fl_err token_create(struct call *c, char *eb)
{
	const Flotilla__V1__EnrollmentTokenCreateRequest *rq = c->req->enrollment_token_create;
	Flotilla__V1__EnrollmentTokenCreateResponse *resp =
	    fl_arena_alloc(c->reply.arena, sizeof(*resp));
	struct fl_store *st = fl_core_store(c->core);
	struct fl_store_agent *list;
	struct fl_store_token t = {0};
	char text[FL_ENROLL_TOKEN_TEXT_LEN + 1];
	int64_t ttl =
	    rq->ttl_ms ? (int64_t)rq->ttl_ms : fl_core_config(c->core)->enrollment_token_ttl_ms;
	size_t n;
	enum fl_err rv;

	flotilla__v1__enrollment_token_create_response__init(resp);
	c->reply.subject = fl_arena_strdup(c->reply.arena, rq->name);
	if (!peer_name_ok(rq->name)) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT,
		           "agent name: expected 1 to %d of A-Z a-z 0-9 . _ @ : + -",
		           FL_PEER_NAME_MAX);
		return FL_OK;
	}
	if (ttl > MAX_TOKEN_TTL_MS) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT,
		           "a token lives at most 30 days");
		return FL_OK;
	}
	if ((rv = fl_store_agent_list(st, true, &list, &n, eb)) != FL_OK)
		return rv;
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, rq->name) == 0) {
			set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_ALREADY_EXISTS,
			           "an agent is named '%s' already", rq->name);
			fl_store_agents_free(list, n);
			return FL_OK;
		}
	fl_store_agents_free(list, n);
	if (!req_labels(c, rq->labels, rq->n_labels, &t.labels))
		return FL_OK;
	fl_enroll_token_new(text, t.hash);
	t.name = rq->name;
	t.created_at_ms = fl_core_now_ms(c->core);
	t.expires_at_ms = t.created_at_ms + ttl;
	t.created_by = c->caller.key_id;
	/* The in-memory view first: it checks the name and counts what is
	 * outstanding; taken out again if the store refuses. */
	if (fl_enroll_tokens_add(fl_core_enroll_tokens(c->core), t.hash, t.name, &t.labels,
	                         t.expires_at_ms, t.created_at_ms, eb) != FL_OK) {
		set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_RESOURCE_EXHAUSTED, "%s", eb);
		fl_labels_fini(&t.labels);
		sodium_memzero(text, sizeof(text));
		return FL_OK;
	}
	memcpy(c->pk, t.hash, sizeof(t.hash)); /* for the rollback below */
	c->after_rollback = token_forget;
	rv = fl_store_token_add(st, &t, eb);
	fl_labels_fini(&t.labels);
	if (rv != FL_OK) {
		sodium_memzero(text, sizeof(text));
		return rv;
	}
	resp->token = fl_arena_strdup(c->reply.arena, text);
	sodium_memzero(text, sizeof(text));
	resp->expires_at_ms = t.expires_at_ms;
	c->reply.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	c->reply.response->result_case =
	    FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ENROLLMENT_TOKEN_CREATE;
	c->reply.response->enrollment_token_create = resp;
	return FL_OK;
}

/* ---- audit ---- */

static enum fl_err audit_query(struct call *c, char *eb)
{
	const Flotilla__V1__AuditQueryRequest *rq = c->req->audit_query;
	Flotilla__V1__AuditQueryResponse *resp = fl_arena_alloc(c->reply.arena, sizeof(*resp));
	struct fl_arena *ar = c->reply.arena;
	struct fl_store_audit *list;
	uint32_t limit = page(c, rq->limit);
	size_t n;
	enum fl_err rv;

	flotilla__v1__audit_query_response__init(resp);
	rv = fl_store_audit_query(fl_core_store(c->core), rq->since_ms, rq->after_id,
	                          rq->actor_key_id, limit, &list, &n, eb);
	if (rv != FL_OK)
		return rv;
	for (size_t i = 0; i < n; i++) {
		Flotilla__V1__AuditEntry *e = fl_arena_alloc(ar, sizeof(*e));

		flotilla__v1__audit_entry__init(e);
		e->id = list[i].id;
		e->at_ms = list[i].at_ms;
		e->actor_key_id = fl_arena_strdup(ar, list[i].actor_key_id);
		e->actor_name = fl_arena_strdup(ar, list[i].actor_name);
		e->role = protobuf_c_enum_descriptor_get_value(&flotilla__v1__role__descriptor,
		                                               list[i].role)
		              ? (Flotilla__V1__Role)list[i].role
		              : FLOTILLA__V1__ROLE__ROLE_UNSPECIFIED;
		e->command = fl_arena_strdup(ar, list[i].command);
		e->subject = fl_arena_strdup(ar, list[i].subject);
		e->code = protobuf_c_enum_descriptor_get_value(
		              &flotilla__v1__status_code__descriptor, list[i].code)
		              ? (Flotilla__V1__StatusCode)list[i].code
		              : FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNSPECIFIED;
		e->detail = fl_arena_strdup(ar, list[i].detail);
		fl_arena_push(ar, &resp->entries, &resp->n_entries, e);
	}
	if (n == limit && n > 0)
		resp->next_after_id = list[n - 1].id;
	fl_store_audits_free(list, n);
	c->reply.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
	c->reply.response->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_AUDIT_QUERY;
	c->reply.response->audit_query = resp;
	return FL_OK;
}

/* ---- dispatch ---- */

static bool is_rollout_command(int command)
{
	switch (command) {
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PLAN:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_START:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PAUSE:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_RESUME:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PROMOTE:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_HALT:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_ROLLBACK:
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_RETRY:
		return true;
	}
	return false;
}

/* The handler for the request's command; FL_EDB-like errors are failures of
 * the store (answered INTERNAL). */
static enum fl_err dispatch(struct call *c, ProtobufCMessage ***owned, size_t *n_owned, char *eb)
{
	int cmd = c->req->command_case;

	switch (cmd) {
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_PUSH:
		return release_push(c, eb);
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_LIST:
		return release_list(c, eb);
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST:
		return agent_list(c, eb);
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_APPROVE:
		return agent_approve(c, eb);
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_REVOKE:
		return agent_revoke(c, eb);
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ENROLLMENT_TOKEN_CREATE:
		return token_create(c, eb);
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AUDIT_QUERY:
		return audit_query(c, eb);
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_STATUS:
		return fl_fleet_status(c->core, c->req->fleet_status, &c->reply, eb);
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_DRIFT:
		return fl_fleet_drift(c->core, c->req->fleet_drift, &c->reply, eb);
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_TENANT_SHOW:
		return fl_fleet_tenant_show(c->core, c->req->tenant_show, &c->reply, owned, n_owned,
		                            eb);
	default:
		break;
	}
	if (is_rollout_command(cmd)) {
		void *arg = NULL;
		const struct fl_core_scheduler *sched = fl_core_scheduler(c->core, &arg);

		if (sched && sched->admin)
			return sched->admin(arg, &c->caller, c->req, &c->reply, eb);
	}
	set_status(c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNIMPLEMENTED,
	           "%s is not implemented here", fl_wire_admin_command_name(cmd));
	return FL_OK;
}

enum fl_err fl_admin_server_read(struct fl_core *core, const struct fl_core_caller *caller,
                                 const Flotilla__V1__AdminRequest *req,
                                 struct fl_core_admin_reply *reply, ProtobufCMessage ***owned,
                                 size_t *n_owned, char *eb)
{
	struct call c = {0};
	enum fl_err rv;

	c.core = core;
	c.caller = *caller;
	c.req = req;
	c.reply = *reply;
	fl_labels_init(&c.labels);
	if (!fl_roles_may_run(FL_PEER_VIEWER, req->command_case)) {
		set_status(&c, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED,
		           "%s is not a read command",
		           fl_wire_admin_command_name(req->command_case));
		rv = FL_OK;
	} else if ((rv = fl_store_begin(fl_core_store(core), eb)) == FL_OK) {
		rv = dispatch(&c, owned, n_owned, eb);
		fl_store_rollback(fl_core_store(core));
	}
	fl_labels_fini(&c.labels);
	*reply = c.reply;
	return rv;
}

static void audit(struct fl_core *core, const struct fl_peer_info *who, const char *name,
                  enum fl_peer_role role, const char *command, const char *subject,
                  Flotilla__V1__StatusCode code, const char *detail)
{
	struct fl_store *st = fl_core_store(core);
	struct fl_store_audit a = {0};
	char eb[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;

	a.at_ms = fl_core_now_ms(core);
	a.actor_key_id = (char *)who->id;
	a.actor_name = (char *)name;
	a.role = fl_roles_to_proto(role);
	a.command = (char *)command;
	a.subject = (char *)(subject ? subject : "");
	a.code = code;
	a.detail = (char *)(detail ? detail : "");
	if ((rv = fl_store_begin(st, eb)) == FL_OK &&
	    (rv = fl_store_audit_add(st, &a, NULL, eb)) == FL_OK)
		rv = fl_store_commit(st, eb);
	else
		fl_store_rollback(st);
	if (rv != FL_OK)
		fl_log_error(who->id, "cannot write the audit log: %s", eb);
}

/* An AdminResponse with only a status. */
static void reply_status(struct fl_core *core, struct admin_job *j, uint64_t request_id,
                         Flotilla__V1__StatusCode code, const char *msg)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__AdminResponse r = FLOTILLA__V1__ADMIN_RESPONSE__INIT;
	Flotilla__V1__Status st = FLOTILLA__V1__STATUS__INIT;

	st.code = code;
	st.message = (char *)msg;
	r.request_id = request_id;
	r.status = &st;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE;
	m.admin_response = &r;
	m.reply_to_seq = j->seq;
	fl_core_reply(core, j->srv->ep, j->req, j->sender.pk, &m, FL_WIRE_MAX_SMALL);
}

static bool operator_role(enum fl_peer_role r)
{
	return r == FL_PEER_VIEWER || r == FL_PEER_RELEASE_MANAGER || r == FL_PEER_ADMIN;
}

static void run(struct fl_core *core, struct fl_core_job *job)
{
	struct admin_job *j = (struct admin_job *)job;
	const struct fl_coordinator_operator *op =
	    fl_coordinator_config_operator(fl_core_config(core), j->sender.pk);
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__AdminResponse resp = FLOTILLA__V1__ADMIN_RESPONSE__INIT;
	Flotilla__V1__Status status = FLOTILLA__V1__STATUS__INIT;
	ProtobufCMessage **owned = NULL;
	size_t n_owned = 0;
	struct fl_arena arena;
	struct call c = {0};
	char eb[FL_ERRBUF_SIZE] = "";
	const char *command = j->command[0] ? j->command : "unknown";
	bool committed = false;
	enum fl_peer_role role;
	enum fl_err rv;

	fl_core_count(core, FL_CORE_ADMIN_CALLS);
	if (op == NULL) {
		/* an agent's key, or an operator taken out of the config */
		fl_log_warn(j->sender.id,
		            "admin %s refused: a key of role '%s', not an operator of this config",
		            command, fl_peer_role_name(j->sender.role));
		fl_core_count(core, FL_CORE_ADMIN_DENIED);
		audit(core, &j->sender, j->sender.name, j->sender.role, command, "",
		      FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED, "not an operator");
		if (operator_role(j->sender.role))
			reply_status(core, j, j->m ? j->m->admin_request->request_id : 0,
			             FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED,
			             "this key is not an operator of this coordinator");
		else
			fl_core_refuse(core, j->req);
		goto out;
	}
	role = fl_coordinator_role_to_peer(op->role);
	if (j->m != NULL && !fl_roles_may_run(role, j->m->admin_request->command_case)) {
		j->denied = true; /* the config's role is narrower than the registry's was */
		snprintf(j->why, sizeof(j->why), "a %s may not run %s", fl_peer_role_name(role),
		         command);
	}
	if (j->denied || j->m == NULL) {
		Flotilla__V1__StatusCode code =
		    j->denied ? FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED
		              : FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT;

		fl_log_warn(op->name, "admin %s refused: %s", command, j->why);
		if (j->denied)
			fl_core_count(core, FL_CORE_ADMIN_DENIED);
		audit(core, &j->sender, op->name, role, command, "", code, j->why);
		reply_status(core, j, j->m ? j->m->admin_request->request_id : 0, code, j->why);
		goto out;
	}

	fl_arena_init(&arena);
	c.core = core;
	c.job = j;
	memcpy(c.caller.pk, j->sender.pk, FL_PEER_KEY_LEN);
	snprintf(c.caller.key_id, sizeof(c.caller.key_id), "%s", j->sender.id);
	snprintf(c.caller.name, sizeof(c.caller.name), "%s", op->name);
	c.caller.role = role;
	c.req = j->m->admin_request;
	c.reply.arena = &arena;
	c.reply.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INTERNAL;
	c.reply.message = "";
	c.reply.subject = "";
	c.reply.response = &resp;
	fl_labels_init(&c.labels);

	if ((rv = fl_store_begin(fl_core_store(core), eb)) == FL_OK)
		rv = dispatch(&c, &owned, &n_owned, eb);
	if (rv == FL_OK && c.reply.code == FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK) {
		struct fl_store_audit a = {0};

		a.at_ms = fl_core_now_ms(core);
		a.actor_key_id = c.caller.key_id;
		a.actor_name = c.caller.name;
		a.role = fl_roles_to_proto(role);
		a.command = (char *)command;
		a.subject = (char *)c.reply.subject;
		a.code = c.reply.code;
		a.detail = (char *)c.reply.message;
		if ((rv = fl_store_audit_add(fl_core_store(core), &a, NULL, eb)) == FL_OK)
			rv = fl_store_commit(fl_core_store(core), eb);
		else
			fl_store_rollback(fl_core_store(core));
		committed = rv == FL_OK;
		if (committed && c.after_commit)
			c.after_commit(&c);
	} else {
		fl_store_rollback(fl_core_store(core));
	}
	if (!committed && c.after_rollback)
		c.after_rollback(&c);
	if (rv != FL_OK) {
		fl_log_error(op->name, "admin %s failed: %s", command, eb);
		fl_core_count(core, FL_CORE_ERRORS);
		c.reply.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INTERNAL;
		c.reply.message = "the coordinator failed; see its log";
		resp.result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT__NOT_SET;
	}
	if (rv != FL_OK || c.reply.code != FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK) {
		audit(core, &j->sender, op->name, role, command, c.reply.subject, c.reply.code,
		      c.reply.message);
		if (c.reply.code != FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK)
			fl_log_info(op->name, "admin %s: %s", command, c.reply.message);
	} else {
		fl_log_info(op->name, "admin %s%s%s: ok", command, c.reply.subject[0] ? " " : "",
		            c.reply.subject);
	}
	if (c.reply.code != FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK &&
	    resp.result_case != FLOTILLA__V1__ADMIN_RESPONSE__RESULT__NOT_SET &&
	    resp.result_case != FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ROLLOUT_START)
		resp.result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT__NOT_SET;
	status.code = c.reply.code;
	status.message = (char *)c.reply.message;
	resp.request_id = c.req->request_id;
	resp.status = &status;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE;
	m.admin_response = &resp;
	m.reply_to_seq = j->seq;
	fl_core_reply(core, j->srv->ep, j->req, j->sender.pk, &m, FL_WIRE_MAX_ADMIN_RESPONSE);
	for (size_t i = 0; i < n_owned; i++)
		fl_wire_free_message(owned[i]);
	fl_labels_fini(&c.labels);
	fl_arena_fini(&arena);
out:
	fl_wire_free(j->m);
	free(j);
}

/* ---- on nng's threads ---- */

static void on_request(void *arg, struct fl_rep_req *req, const uint8_t *data, size_t len)
{
	static const uint8_t refusal[5] = {'F', 'L', 'T', 1, 0};
	struct fl_admin_server *srv = arg;
	struct fl_envelope_opened o;
	struct admin_job *j;
	enum fl_envelope_reason reason;
	char eb[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;

	fl_envelope_opened_init(&o);
	if (fl_envelope_open(srv->ep, data, len, srv->max_message, &o, &reason, eb) != FL_OK) {
		fl_metrics_refused(fl_core_metrics(srv->core), FL_METRICS_ADMIN, (int)reason);
		fl_envelope_opened_fini(&o);
		fl_rep_reply(req, refusal, sizeof(refusal));
		return;
	}
	j = fl_calloc(1, sizeof(*j));
	j->job.run = run;
	j->srv = srv;
	j->req = req;
	j->sender = o.sender;
	j->seq = o.seq;
	rv = fl_wire_unpack_from(o.sender.role, o.body, o.body_len, &j->m, eb);
	if (rv == FL_OK && j->m->body_case != FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST) {
		snprintf(j->why, sizeof(j->why), "%s is not an admin request",
		         fl_wire_body_name(j->m->body_case));
		snprintf(j->command, sizeof(j->command), "%s", fl_wire_body_name(j->m->body_case));
		fl_wire_free(j->m);
		j->m = NULL;
	} else if (rv == FL_OK) {
		snprintf(j->command, sizeof(j->command), "%s",
		         fl_wire_admin_command_name(j->m->admin_request->command_case));
	} else {
		Flotilla__V1__Message *shape = NULL;
		char ignore[FL_ERRBUF_SIZE];

		j->m = NULL;
		j->denied = rv == FL_EAUTH;
		snprintf(j->why, sizeof(j->why), "%s", eb);
		/* Name the command for the audit log: the bytes are authenticated
		 * and within the sender's size cap, so decoding the shape is safe. */
		if (fl_wire_unpack(o.body, o.body_len, FL_WIRE_MAX_RELEASE_MESSAGE, &shape,
		                   ignore) == FL_OK) {
			snprintf(
			    j->command, sizeof(j->command), "%s",
			    shape->body_case == FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST
			        ? fl_wire_admin_command_name(shape->admin_request->command_case)
			        : fl_wire_body_name(shape->body_case));
			fl_wire_free(shape);
		}
	}
	fl_envelope_opened_fini(&o);
	fl_core_submit(srv->core, &j->job);
}

enum fl_err fl_admin_server_new(struct fl_core *core, struct fl_envelope *ep, const char *url,
                                size_t max_message, size_t max_reqs, struct fl_admin_server **out,
                                char *errbuf)
{
	struct fl_admin_server *s = fl_calloc(1, sizeof(*s));
	enum fl_err rv;

	s->core = core;
	s->ep = ep;
	s->max_message = max_message;
	rv = fl_rep_new("admin endpoint", url, max_message, max_reqs, on_request, s, &s->rep,
	                errbuf);
	if (rv != FL_OK) {
		free(s);
		*out = NULL;
		return rv;
	}
	*out = s;
	return FL_OK;
}

int fl_admin_server_port(struct fl_admin_server *s)
{
	return fl_rep_port(s->rep);
}

void fl_admin_server_stop_accepting(struct fl_admin_server *s)
{
	fl_rep_stop_accepting(s->rep);
}

void fl_admin_server_drain(struct fl_admin_server *s, int64_t timeout_ms)
{
	fl_rep_drain(s->rep, timeout_ms);
}

void fl_admin_server_free(struct fl_admin_server *s)
{
	if (s == NULL)
		return;
	fl_rep_free(s->rep);
	free(s);
}
