/* The agent endpoint (agent_server.h). */
#include "agent_server.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enroll.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "reconcile.h"
#include "rep.h"
#include "metrics.h"
#include "roles.h"
#include "wire.h"

#define HOLD_MARGIN_MS 2000 /* answer this long before the agent stops waiting */

struct fl_agent_server {
	struct fl_core *core;
	struct fl_envelope *ep;
	struct fl_rep *rep;
	size_t max_message;
	atomic_uint_least64_t refused;
};

/* One request from an agent, on its way to the core. */
struct agent_job {
	struct fl_core_job job;
	struct fl_agent_server *srv;
	struct fl_rep_req *req;
	uint8_t pk[FL_PEER_KEY_LEN];
	char key_id[FL_PEER_ID_LEN + 1];
	uint64_t seq;
	Flotilla__V1__Message *m; /* NULL: the body did not decode (why) */
	char why[FL_ERRBUF_SIZE];
	bool enroll; /* an unknown key with a Hello and a token */
};

/* ---- replies ---- */

static void reply(struct agent_job *j, Flotilla__V1__Message *m, size_t max)
{
	m->reply_to_seq = j->seq;
	fl_core_reply(j->srv->core, j->srv->ep, j->req, j->pk, m, max);
}

static void reply_status(struct agent_job *j, Flotilla__V1__StatusCode code, const char *msg)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Status st = FLOTILLA__V1__STATUS__INIT;

	st.code = code;
	st.message = (char *)msg;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ERROR;
	m.error = &st;
	reply(j, &m, FL_WIRE_MAX_SMALL);
}

static void reply_hello(struct agent_job *j, bool accepted, const char *reason, const char *name)
{
	const struct fl_coordinator_config *cfg = fl_core_config(j->srv->core);
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__HelloReply hr = FLOTILLA__V1__HELLO_REPLY__INIT;

	hr.accepted = accepted;
	hr.reason = (char *)(reason ? reason : "");
	hr.coordinator_time_ms = fl_core_now_ms(j->srv->core);
	hr.poll_interval_ms = 0; /* long polls: poll again at once */
	hr.max_poll_wait_ms = (uint32_t)cfg->poll_hold_ms;
	hr.protocol_version = FL_PROTOCOL_VERSION;
	hr.agent_name = (char *)(name ? name : "");
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO_REPLY;
	m.hello_reply = &hr;
	reply(j, &m, FL_WIRE_MAX_SMALL);
}

/* ---- Hello ---- */

/* The checks every Hello passes before anything is written; NULL if fine. */
static const char *hello_refusal(struct fl_core *core, const Flotilla__V1__Hello *h, char *buf,
                                 size_t n)
{
	const struct fl_coordinator_config *cfg = fl_core_config(core);

	if (h->protocol_version != FL_PROTOCOL_VERSION) {
		snprintf(buf, n,
		         "protocol version %u is not supported (this coordinator speaks %d)",
		         h->protocol_version, FL_PROTOCOL_VERSION);
		return buf;
	}
	if (strcmp(h->project_id, cfg->project_id) != 0) {
		char q[80];

		snprintf(buf, n, "project '%s' is not this coordinator's '%s'",
		         fl_err_quote(q, sizeof(q), h->project_id, strlen(h->project_id)),
		         cfg->project_id);
		return buf;
	}
	return NULL;
}

static void hello(struct agent_job *j, struct fl_core_agent *agent)
{
	struct fl_core *core = j->srv->core;
	struct fl_reconcile_stats stats;
	char eb[FL_ERRBUF_SIZE] = "", why[300];
	const char *refusal = hello_refusal(core, j->m->hello, why, sizeof(why));
	bool done;

	fl_core_count(core, FL_CORE_HELLOS);
	if (refusal != NULL) {
		fl_log_warn(agent->name, "hello refused: %s", refusal);
		fl_core_count(core, FL_CORE_HELLOS_REFUSED);
		reply_hello(j, false, refusal, agent->name);
		return;
	}
	if (fl_reconcile_hello(core, agent, j->m, &done, &stats, eb) != FL_OK) {
		j->m = NULL; /* taken */
		fl_log_error(agent->name, "hello: cannot reconcile: %s", eb);
		fl_core_count(core, FL_CORE_ERRORS);
		reply_status(j, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNAVAILABLE,
		             "the coordinator could not record the tenants; say hello again");
		return;
	}
	j->m = NULL; /* taken */
	if (done)
		fl_log_info(
		    agent->name,
		    "reconciled: %zu tenants, %zu refused, %zu gone, %zu with external changes",
		    stats.tenants, stats.refused, stats.gone, stats.external);
	reply_hello(j, true, NULL, agent->name);
}

/* An unknown key with a token: enroll it, then treat the Hello as any. */
static void enroll(struct agent_job *j)
{
	struct fl_core *core = j->srv->core;
	struct fl_store *st = fl_core_store(core);
	struct fl_enroll_tokens *tokens = fl_core_enroll_tokens(core);
	const Flotilla__V1__Hello *h = j->m->hello;
	struct fl_enroll_token tok;
	struct fl_store_agent sa = {0};
	struct fl_core_agent *agent;
	char eb[FL_ERRBUF_SIZE] = "", why[300];
	const char *refusal = hello_refusal(core, h, why, sizeof(why));
	uint8_t hash[FL_ENROLL_HASH_LEN];
	int64_t now = fl_core_now_ms(core);
	enum fl_err rv;

	memset(&tok, 0, sizeof(tok));
	fl_labels_init(&tok.labels);
	if (refusal == NULL && fl_enroll_token_hash(h->enrollment_token, hash, eb) != FL_OK)
		refusal = "not an enrollment token";
	/* Taken from the view first (one at a time: no token enrolls twice),
	 * then used in the store; put back if the store refuses. */
	if (refusal == NULL) {
		fl_labels_fini(&tok.labels);
		if (fl_enroll_tokens_take(tokens, hash, now, &tok, eb) != FL_OK)
			refusal = "no such token";
	}
	if (refusal == NULL) {
		memcpy(sa.pk, j->pk, FL_PEER_KEY_LEN);
		sa.name = tok.name;
		sa.labels = tok.labels;
		sa.approved_at_ms = now;
		sa.approved_by = "token";
		if ((rv = fl_store_begin(st, eb)) == FL_OK &&
		    (rv = fl_store_token_use(st, hash, j->pk, now, eb)) == FL_OK &&
		    (rv = fl_store_agent_add(st, &sa, eb)) == FL_OK &&
		    (rv = fl_core_audit(core, "agent_enroll", j->key_id,
		                        FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK, tok.name, eb)) ==
		        FL_OK)
			rv = fl_store_commit(st, eb);
		else
			fl_store_rollback(st);
		if (rv == FL_ESTATE)
			refusal = "the token's name, or this key, is taken";
		else if (rv != FL_OK)
			refusal = "the store failed";
		if (rv != FL_OK) {
			char e2[FL_ERRBUF_SIZE];

			if (fl_enroll_tokens_add(tokens, hash, tok.name, &tok.labels,
			                         tok.expires_at_ms, now, e2) != FL_OK)
				fl_log_error(tok.name, "enrollment token lost: %s", e2);
		}
	}
	if (refusal == NULL &&
	    (rv = fl_peers_enroll(fl_core_peers(core), j->pk, tok.name, j->seq, eb)) != FL_OK)
		refusal = "the registry refused the key";
	if (refusal != NULL) {
		fl_log_warn(j->key_id, "enrollment refused: %s%s%s", refusal, eb[0] ? ": " : "",
		            eb);
		fl_core_count(core, FL_CORE_ENROLL_REFUSED);
		fl_enroll_token_fini(&tok);
		fl_core_refuse(core, j->req); /* an unknown key learns nothing */
		return;
	}
	fl_log_info(tok.name, "enrolled with a token: key %s", j->key_id);
	fl_core_count(core, FL_CORE_ENROLLED);
	agent = fl_core_agent_add(core, j->pk, tok.name, &tok.labels);
	fl_enroll_token_fini(&tok);
	fl_core_agent_seen(core, agent);
	hello(j, agent);
}

/* ---- Poll ---- */

static void poll(struct agent_job *j, struct fl_core_agent *agent)
{
	struct fl_core *core = j->srv->core;
	const Flotilla__V1__Poll *p = j->m->poll;
	int64_t hold = fl_core_config(core)->poll_hold_ms, wait = p->max_wait_ms;

	fl_core_count(core, FL_CORE_POLLS);
	if (!agent->reconciled) {
		reply_status(j, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_FAILED_PRECONDITION,
		             "hello first");
		return;
	}
	agent->free_slots = p->free_slots;
	free(agent->running);
	agent->running = NULL;
	agent->n_running = p->n_running_assignment_ids;
	if (p->n_running_assignment_ids > 0) {
		agent->running = fl_calloc(p->n_running_assignment_ids, sizeof(uint64_t));
		memcpy(agent->running, p->running_assignment_ids,
		       p->n_running_assignment_ids * sizeof(uint64_t));
	}
	/* Answer before the agent gives up waiting. */
	wait -= wait / 10 < HOLD_MARGIN_MS ? wait / 10 : HOLD_MARGIN_MS;
	if (wait < hold)
		hold = wait;
	if (fl_core_poll_now(core, agent, j->req, j->seq, hold <= 0))
		return;
	fl_core_hold(core, agent, j->req, j->seq, hold);
}

/* ---- Report ---- */

static bool failure(int outcome)
{
	switch (outcome) {
	case FLOTILLA__V1__OUTCOME__OUTCOME_FAILED:
	case FLOTILLA__V1__OUTCOME__OUTCOME_VERIFY_FAILED:
	case FLOTILLA__V1__OUTCOME__OUTCOME_HEALTH_FAILED:
	case FLOTILLA__V1__OUTCOME__OUTCOME_REFUSED:
	case FLOTILLA__V1__OUTCOME__OUTCOME_INCONCLUSIVE:
	case FLOTILLA__V1__OUTCOME__OUTCOME_BACKUP_FAILED:
		return true;
	}
	return false;
}

static bool success(int outcome)
{
	switch (outcome) {
	case FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED:
	case FLOTILLA__V1__OUTCOME__OUTCOME_ROLLED_BACK:
	case FLOTILLA__V1__OUTCOME__OUTCOME_SKIPPED:
	case FLOTILLA__V1__OUTCOME__OUTCOME_HEALTHY:
		return true;
	}
	return false;
}

/* The stored history as the report says it changed (store.h,
 * fl_store_tenant_history_after_report): its applied migrations appended,
 * its reverted ones taken out, its failed rows when it carries the tenant's
 * state. A row appended here has no checksum until the next Hello reads the
 * history from the tenant. */
static enum fl_err report_history(struct fl_store *st, const Flotilla__V1__Report *r, int64_t now,
                                  char *eb)
{
	struct fl_store_history_change c = {0};
	struct fl_store_applied *applied = fl_calloc(r->n_migrations + 1, sizeof(*applied));
	const char **removed = fl_calloc(r->n_migrations + 1, sizeof(*removed));
	struct fl_store_failed *failed = fl_calloc(r->n_failed + 1, sizeof(*failed));
	enum fl_err rv;

	for (size_t i = 0; i < r->n_migrations; i++) {
		const Flotilla__V1__MigrationResult *m = r->migrations[i];

		if (m->outcome == FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED) {
			struct fl_store_applied *a = &applied[c.n_applied++];

			a->id = m->migration_id;
			a->checksum = "";
			a->started_at_ms = m->started_at_ms;
			a->finished_at_ms = m->finished_at_ms;
			a->applied_steps_count = m->applied_steps_count;
		} else if (m->outcome == FLOTILLA__V1__OUTCOME__OUTCOME_ROLLED_BACK) {
			removed[c.n_removed++] = m->migration_id;
		}
	}
	c.applied = applied;
	c.removed = removed;
	if (r->fingerprint[0] != '\0') { /* the tenant's state after the work */
		for (size_t i = 0; i < r->n_failed; i++) {
			failed[i].id = r->failed[i]->id;
			failed[i].checksum = r->failed[i]->checksum;
			failed[i].started_at_ms = r->failed[i]->started_at_ms;
			failed[i].applied_steps_count = r->failed[i]->applied_steps_count;
			failed[i].logs = r->failed[i]->logs;
		}
		c.failed = failed;
		c.n_failed = r->n_failed;
		c.replace_failed = true;
	}
	rv = c.n_applied || c.n_removed || c.replace_failed
	         ? fl_store_tenant_history_after_report(st, r->tenant_id, &c, now, eb)
	         : FL_OK;
	free(applied);
	free(removed);
	free(failed);
	return rv;
}

/*
 * What the report changes besides being stored: in the caller's transaction.
 * A report for an assignment the scheduler withdrew (CANCELED) is late: the
 * tenant may have moved on since (other work, a Hello), so its head, count,
 * fingerprint and history are left as they are; what it proves the agent did still
 * counts: the migrations it applied are flotilla's (origins), and the
 * scheduler hears of it (a later rollback reverts that tenant).
 */
static enum fl_err report_effects(struct fl_core *core, struct fl_core_agent *agent,
                                  struct fl_store_assignment *a, const Flotilla__V1__Report *r,
                                  int64_t now, char *eb)
{
	struct fl_store *st = fl_core_store(core);
	void *arg = NULL;
	const struct fl_core_scheduler *sched = fl_core_scheduler(core, &arg);
	const char *err = failure(r->outcome) ? r->message : success(r->outcome) ? "" : NULL;
	bool late = a->state == FL_STORE_ASSIGNMENT_CANCELED;
	enum fl_err rv;

	if (!late && ((rv = fl_store_tenant_set_after_report(
	                   st, r->tenant_id,
	                   /* a CHECK report without the tenant's state says nothing of its head */
	                   r->kind == FLOTILLA__V1__WORK_KIND__WORK_KIND_CHECK && !r->fingerprint[0]
	                       ? NULL
	                       : r->head_migration_id,
	                   r->applied_count, r->fingerprint[0] ? r->fingerprint : NULL, err, now,
	                   eb)) != FL_OK ||
	              (rv = report_history(st, r, now, eb)) != FL_OK))
		return rv;
	for (size_t i = 0; i < r->n_migrations; i++)
		if (r->migrations[i]->outcome == FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED &&
		    (rv = fl_store_origin_set(st, r->tenant_id, r->migrations[i]->migration_id,
		                              FL_STORE_ORIGIN_FLOTILLA, now, eb)) != FL_OK)
			return rv;
	/* the scheduler first, while the store still holds the state the
	 * assignment had until now (core.h); then it is reported */
	if (sched && sched->report && (rv = sched->report(arg, agent, a, r, eb)) != FL_OK)
		return rv;
	if ((rv = fl_store_assignment_set_state(st, a->id, FL_STORE_ASSIGNMENT_REPORTED, r->outcome,
	                                        now, eb)) != FL_OK)
		return rv;
	a->state = FL_STORE_ASSIGNMENT_REPORTED;
	a->outcome = r->outcome;
	a->reported_at_ms = now;
	return FL_OK;
}

static void report(struct agent_job *j, struct fl_core_agent *agent)
{
	struct fl_core *core = j->srv->core;
	struct fl_store *st = fl_core_store(core);
	const Flotilla__V1__Report *r = j->m->report;
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__ReportAck ack = FLOTILLA__V1__REPORT_ACK__INIT;
	struct fl_store_assignment a = {0};
	struct fl_store_tenant t = {0};
	struct fl_buf packed = FL_BUF_INIT;
	char eb[FL_ERRBUF_SIZE] = "", why[400] = "";
	int64_t now = fl_core_now_ms(core);
	uint64_t journal = r->journal_id;
	bool dup = false;
	enum fl_err rv;

	fl_core_count(core, FL_CORE_REPORTS);
	/* Bound to the agent key and the assignment it was issued. */
	rv = fl_store_tenant_get(st, r->tenant_id, 0, &t, eb);
	if (rv == FL_OK && memcmp(t.agent_pk, agent->pk, FL_PEER_KEY_LEN) != 0)
		snprintf(why, sizeof(why), "tenant '%s' is not this agent's", r->tenant_id);
	else if (rv == FL_ENOENT)
		snprintf(why, sizeof(why), "no tenant '%s'", r->tenant_id);
	else if (rv != FL_OK)
		goto fail;
	if (why[0] == '\0') {
		rv = fl_store_assignment_get(st, r->assignment_id, &a, eb);
		if (rv == FL_ENOENT ||
		    (rv == FL_OK && (memcmp(a.agent_pk, agent->pk, FL_PEER_KEY_LEN) != 0 ||
		                     strcmp(a.tenant_id, r->tenant_id) != 0)))
			snprintf(why, sizeof(why),
			         "assignment %llu was not issued to this agent for tenant '%s'",
			         (unsigned long long)r->assignment_id, r->tenant_id);
		else if (rv != FL_OK)
			goto fail;
	}
	if (why[0] != '\0') {
		fl_log_warn(agent->name, "report refused: %s", why);
		fl_core_count(core, FL_CORE_REPORTS_REFUSED);
		reply_status(j, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED, why);
		goto out;
	}
	if ((rv = fl_wire_pack_message(&r->base, &packed, FL_WIRE_MAX_REPORT, eb)) != FL_OK)
		goto fail;
	if ((rv = fl_store_begin(st, eb)) != FL_OK)
		goto fail;
	rv = fl_store_report_add(st, agent->pk, journal, r->assignment_id, r->tenant_id, r->outcome,
	                         (const uint8_t *)packed.data, packed.len, now, &dup, eb);
	if (rv == FL_OK && !dup &&
	    (a.state == FL_STORE_ASSIGNMENT_ISSUED || a.state == FL_STORE_ASSIGNMENT_CANCELED))
		rv = report_effects(core, agent, &a, r, now, eb);
	else if (rv == FL_OK)
		dup = true; /* stored before, or its assignment already reported */
	if (rv == FL_OK)
		rv = fl_store_commit(st, eb);
	else
		fl_store_rollback(st);
	if (rv != FL_OK)
		goto fail;
	if (dup)
		fl_core_count(core, FL_CORE_REPORTS_DUPLICATE);
	else
		fl_metrics_report(fl_core_metrics(core), r);
	fl_log_info(
	    agent->name, "report %llu: tenant '%s', assignment %llu, rollout '%s': %s%s",
	    (unsigned long long)journal, r->tenant_id, (unsigned long long)r->assignment_id,
	    r->rollout_id,
	    protobuf_c_enum_descriptor_get_value(&flotilla__v1__outcome__descriptor, r->outcome)
	        ? protobuf_c_enum_descriptor_get_value(&flotilla__v1__outcome__descriptor,
	                                               r->outcome)
	              ->name
	        : "?",
	    dup ? " (again)" : "");
	ack.journal_ids = &journal;
	ack.n_journal_ids = 1;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK;
	m.report_ack = &ack;
	reply(j, &m, FL_WIRE_MAX_REPORT_ACK);
	/* Its held poll was sent before this work ended, counting its slot as
	 * taken: answered now, the agent polls again with the slot free rather
	 * than at the end of the hold. */
	if (!dup)
		fl_core_answer_held(core, agent);
	goto out;
fail:
	fl_log_error(agent->name, "cannot store report %llu: %s", (unsigned long long)journal, eb);
	fl_core_count(core, FL_CORE_ERRORS);
	reply_status(j, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNAVAILABLE,
	             "the coordinator could not store the report; send it again");
out:
	fl_buf_fini(&packed);
	fl_store_tenant_fini(&t);
	fl_store_assignment_fini(&a);
}

/* ---- FetchRelease ---- */

static void fetch(struct agent_job *j, struct fl_core_agent *agent)
{
	struct fl_core *core = j->srv->core;
	const Flotilla__V1__FetchRelease *f = j->m->fetch_release;
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__ReleaseBundleReply br = FLOTILLA__V1__RELEASE_BUNDLE_REPLY__INIT;
	struct fl_store_release rel;
	char eb[FL_ERRBUF_SIZE] = "", hex[65], msg[128];
	enum fl_err rv;

	fl_core_count(core, FL_CORE_FETCHES);
	sodium_bin2hex(hex, sizeof(hex), f->release_hash.data, f->release_hash.len);
	rv = fl_store_release_get(fl_core_store(core), f->release_hash.data, FL_STORE_WITH_FILE,
	                          &rel, eb);
	if (rv == FL_ENOENT) {
		snprintf(msg, sizeof(msg), "no release %s", hex);
		reply_status(j, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_NOT_FOUND, msg);
		return;
	}
	if (rv != FL_OK) {
		fl_log_error(agent->name, "cannot read release %s: %s", hex, eb);
		fl_core_count(core, FL_CORE_ERRORS);
		reply_status(j, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNAVAILABLE,
		             "cannot read the release");
		return;
	}
	br.release_hash = f->release_hash;
	br.signed_release.data = rel.file;
	br.signed_release.len = rel.file_len;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_RELEASE_BUNDLE_REPLY;
	m.release_bundle_reply = &br;
	reply(j, &m, FL_WIRE_MAX_RELEASE_MESSAGE);
	fl_store_release_fini(&rel);
}

/* ---- on the core ---- */

static void run(struct fl_core *core, struct fl_core_job *job)
{
	struct agent_job *j = (struct agent_job *)job;
	struct fl_core_agent *agent;

	if (j->enroll) {
		enroll(j);
		goto out;
	}
	agent = fl_core_agent(core, j->pk);
	if (agent == NULL) { /* revoked while the request waited */
		fl_core_refuse(core, j->req);
		goto out;
	}
	fl_core_agent_seen(core, agent);
	if (j->m == NULL) {
		fl_log_warn(agent->name, "malformed request: %s", j->why);
		reply_status(j, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT, j->why);
		goto out;
	}
	switch (j->m->body_case) {
	case FLOTILLA__V1__MESSAGE__BODY_HELLO:
		hello(j, agent);
		break;
	case FLOTILLA__V1__MESSAGE__BODY_POLL:
		poll(j, agent);
		break;
	case FLOTILLA__V1__MESSAGE__BODY_REPORT:
		report(j, agent);
		break;
	case FLOTILLA__V1__MESSAGE__BODY_FETCH_RELEASE:
		fetch(j, agent);
		break;
	default:
		reply_status(j, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT,
		             "not a request this endpoint serves");
		break;
	}
out:
	fl_wire_free(j->m);
	free(j);
}

/* ---- on nng's threads ---- */

static void refuse_now(struct fl_agent_server *srv, struct fl_rep_req *req)
{
	static const uint8_t refusal[5] = {'F', 'L', 'T', 1, 0};

	atomic_fetch_add(&srv->refused, 1);
	fl_rep_reply(req, refusal, sizeof(refusal));
}

static void on_request(void *arg, struct fl_rep_req *req, const uint8_t *data, size_t len)
{
	struct fl_agent_server *srv = arg;
	struct fl_envelope_opened o;
	struct agent_job *j;
	enum fl_envelope_reason reason = FL_ENVELOPE_OK;
	Flotilla__V1__Message *m = NULL;
	char eb[FL_ERRBUF_SIZE] = "";
	bool enroll_req = false;
	enum fl_err rv;

	fl_envelope_opened_init(&o);
	rv = fl_envelope_open(srv->ep, data, len, srv->max_message, &o, &reason, eb);
	if (rv != FL_OK && reason == FL_ENVELOPE_UNKNOWN_SENDER) {
		rv = fl_envelope_open_enroll(srv->ep, data, len, &o, &m, &reason, eb);
		enroll_req = rv == FL_OK;
	}
	if (rv != FL_OK || (!enroll_req && o.sender.role != FL_PEER_AGENT)) {
		if (rv == FL_OK)
			fl_log_warn(o.sender.id,
			            "refused on the agent endpoint: a key of role '%s'",
			            fl_peer_role_name(o.sender.role));
		fl_metrics_refused(fl_core_metrics(srv->core), FL_METRICS_AGENT,
		                   rv == FL_OK ? FL_METRICS_WRONG_ROLE : (int)reason);
		fl_envelope_opened_fini(&o);
		refuse_now(srv, req);
		return;
	}
	j = fl_calloc(1, sizeof(*j));
	j->job.run = run;
	j->srv = srv;
	j->req = req;
	memcpy(j->pk, o.sender.pk, FL_PEER_KEY_LEN);
	fl_key_id(o.sender.pk, j->key_id);
	j->seq = o.seq;
	j->enroll = enroll_req;
	if (enroll_req) {
		j->m = m;
	} else if (fl_wire_unpack_from(FL_PEER_AGENT, o.body, o.body_len, &j->m, eb) != FL_OK) {
		j->m = NULL;
		snprintf(j->why, sizeof(j->why), "%s", eb);
	} else if (fl_roles_is_reply(j->m->body_case)) {
		fl_wire_free(j->m);
		j->m = NULL;
		snprintf(j->why, sizeof(j->why), "a reply is not a request");
	}
	fl_envelope_opened_fini(&o);
	fl_core_submit(srv->core, &j->job);
}

enum fl_err fl_agent_server_new(struct fl_core *core, struct fl_envelope *ep, const char *url,
                                size_t max_message, size_t max_reqs, struct fl_agent_server **out,
                                char *errbuf)
{
	struct fl_agent_server *s = fl_calloc(1, sizeof(*s));
	enum fl_err rv;

	s->core = core;
	s->ep = ep;
	s->max_message = max_message;
	atomic_init(&s->refused, 0);
	rv = fl_rep_new("agent endpoint", url, max_message, max_reqs, on_request, s, &s->rep,
	                errbuf);
	if (rv != FL_OK) {
		free(s);
		*out = NULL;
		return rv;
	}
	*out = s;
	return FL_OK;
}

int fl_agent_server_port(struct fl_agent_server *s)
{
	return fl_rep_port(s->rep);
}

void fl_agent_server_stop_accepting(struct fl_agent_server *s)
{
	fl_rep_stop_accepting(s->rep);
}

void fl_agent_server_drain(struct fl_agent_server *s, int64_t timeout_ms)
{
	fl_rep_drain(s->rep, timeout_ms);
}

void fl_agent_server_free(struct fl_agent_server *s)
{
	if (s == NULL)
		return;
	fl_rep_free(s->rep);
	free(s);
}

uint64_t fl_agent_server_refused(struct fl_agent_server *s)
{
	return atomic_load(&s->refused);
}
