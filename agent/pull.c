/* The pull loop: Hello, long polls, reports, fetches (see pull.h). */
#include "pull.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "file.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "wire.h"

#define HELLO_PART_BYTES  (3u << 20) /* below FL_WIRE_MAX_HELLO, with room to spare */
#define POLL_AGAIN_MAX    60000
#define POLL_WAIT_MIN     100 /* ms: the shortest long poll, whatever the coordinator says */
#define POLL_EMPTY_MIN    50  /* ms between polls answered with nothing at once */
#define FETCH_FACTOR      4   /* a release may take longer than other requests */
#define PENDING_BYTES_MAX (256u << 20) /* unacknowledged reports: then no new work */

int64_t fl_pull_backoff(unsigned n, int64_t max_ms)
{
	int64_t d = 250;

	while (n-- > 0 && d < max_ms)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	return d / 2 + (int64_t)randombytes_uniform((uint32_t)(d / 2 + 1));
}

/* Text from the coordinator, quoted for logs and messages. */
static const char *q(char *buf, size_t size, const char *s)
{
	return fl_err_quote(buf, size, s ? s : "", s ? strlen(s) : 0);
}

static const char *status_name(int code)
{
	static const char *const names[] = {"unspecified",         "ok",
	                                    "invalid argument",    "not found",
	                                    "already exists",      "permission denied",
	                                    "failed precondition", "aborted",
	                                    "unavailable",         "resource exhausted",
	                                    "unimplemented",       "internal"};

	return code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]) ? names[code] : "?";
}

/* One request on the link (rpc or poll); *reply is the caller's. */
static enum fl_err call(struct fl_agent *a, bool poll, Flotilla__V1__Message *req, size_t max,
                        int64_t timeout_ms, Flotilla__V1__Message **reply, char *errbuf)
{
	struct fl_agent_link *l = fl_agent_link_get(a, poll);
	enum fl_err rv;

	*reply = NULL;
	if (l == NULL)
		return fl_errf(errbuf, FL_ECANCELED, "the agent is stopping");
	/* every request the agent sends may be sent again: polls and fetches
	 * change nothing, a Hello says the same, a report has its journal id */
	rv = fl_client_call(l->client, req, max, FL_CLIENT_IDEMPOTENT, timeout_ms, reply, errbuf);
	fl_agent_link_unref(l);
	return rv;
}

static int64_t request_timeout(struct fl_agent *a)
{
	int64_t t;

	pthread_mutex_lock(&a->mu);
	t = a->cfg->c.request_timeout_ms;
	pthread_mutex_unlock(&a->mu);
	return t;
}

/* ---- redirects ---- */

/* Follow r if it goes to a pinned key: new links, a Hello there. Whether it
 * was followed. Main thread. */
static bool follow_redirect(struct fl_agent *a, const Flotilla__V1__Redirect *r)
{
	uint8_t keys[FL_CLIENT_MAX_KEYS][FL_PEER_KEY_LEN];
	char err[FL_ERRBUF_SIZE] = "", id[FL_KEY_ID_LEN + 1], url[300];
	struct fl_agent_link *pl = NULL, *rl = NULL, *old_p, *old_r;
	struct fl_client *pc = NULL, *rc = NULL;
	size_t n = 1, i;

	q(url, sizeof(url), r->coordinator_url);
	if (fl_rpc_redirect_check(a->peers, r, err) != FL_OK) {
		fl_log_warn("agent", "not following a redirect to '%s': %s", url, err);
		return false;
	}
	/* the leader's key first, then the other pinned ones */
	memcpy(keys[0], r->leader_public_key.data, FL_PEER_KEY_LEN);
	pthread_mutex_lock(&a->mu);
	for (i = 0; i < a->cfg->c.wire.coordinator_public_keys.n && n < FL_CLIENT_MAX_KEYS; i++)
		if (memcmp(a->cfg->c.wire.coordinator_public_keys.keys[i], keys[0], 32) != 0)
			memcpy(keys[n++], a->cfg->c.wire.coordinator_public_keys.keys[i], 32);
	pthread_mutex_unlock(&a->mu);
	if (fl_client_new(a->envelope, r->coordinator_url, (const uint8_t(*)[32])keys, n, &pc,
	                  err) != FL_OK ||
	    fl_client_new(a->envelope, r->coordinator_url, (const uint8_t(*)[32])keys, n, &rc,
	                  err) != FL_OK) {
		fl_client_free(pc);
		fl_log_warn("agent", "cannot follow a redirect to '%s': %s", url, err);
		return false;
	}
	fl_key_id(keys[0], id);
	fl_log_info("agent", "redirected to '%s' (key %s)", url, id);
	pl = fl_calloc(1, sizeof(*pl));
	rl = fl_calloc(1, sizeof(*rl));
	atomic_init(&pl->refs, 1);
	atomic_init(&rl->refs, 1);
	pl->client = pc;
	rl->client = rc;
	pl->url = fl_strdup(r->coordinator_url);
	rl->url = fl_strdup(r->coordinator_url);
	pthread_mutex_lock(&a->mu);
	old_p = a->poll;
	old_r = a->rpc;
	a->poll = pl;
	a->rpc = rl;
	a->hello_ok = false;
	a->need_hello = true;
	pthread_mutex_unlock(&a->mu);
	fl_agent_link_unref(old_p);
	fl_agent_link_unref(old_r);
	a->redirects++;
	return true;
}

/* ---- Hello ---- */

struct reader {
	struct fl_agent *a;
	const struct fl_agent_snapshot *snap;
	struct fl_tenant_state *states;
	atomic_size_t next;
};

static void *read_tenants(void *arg)
{
	struct reader *r = arg;
	size_t i;

	while ((i = atomic_fetch_add(&r->next, 1)) < r->snap->tenants->n) {
		const struct fl_tenant *t = &r->snap->tenants->items[i];
		const struct fl_agent_database *db =
		    fl_agent_config_database(r->snap->cfg, t->server);
		char err[FL_ERRBUF_SIZE] = "", *url = NULL;
		struct fl_engine_opts opts;
		bool stopping;

		/* SIGTERM: the tenants left are not read (each may take a whole
		 * connect timeout); the Hello is not sent */
		pthread_mutex_lock(&r->a->mu);
		stopping = r->a->stopping;
		pthread_mutex_unlock(&r->a->mu);
		if (stopping) {
			r->states[i].error = fl_strdup("not read: the agent is stopping");
			continue;
		}
		if (db == NULL || fl_tenants_url(db, t->database, t->schema, &url, err) != FL_OK) {
			r->states[i].error = fl_strdup(db ? err : "no such database server");
			continue;
		}
		fl_engine_opts_init(&opts);
		opts.conn.connect_timeout_ms = db->connect_timeout_ms;
		fl_report_read_tenant(url, &opts, NULL, &r->states[i]);
		fl_tenants_url_free(url);
	}
	return NULL;
}

/* Every tenant's state, read now, max_parallel at a time. */
static struct fl_tenant_state *read_all(struct fl_agent *a, const struct fl_agent_snapshot *s)
{
	struct reader r = {a, s, NULL, 0};
	size_t n = s->tenants->n, k = (size_t)s->cfg->max_parallel, i;
	pthread_t *th;

	r.states = fl_calloc(n + 1, sizeof(*r.states));
	atomic_init(&r.next, 0);
	if (k > n)
		k = n;
	th = fl_calloc(k + 1, sizeof(*th));
	for (i = 0; i < k; i++)
		if (pthread_create(&th[i], NULL, read_tenants, &r) != 0)
			abort();
	for (i = 0; i < k; i++)
		pthread_join(th[i], NULL);
	free(th);
	return r.states;
}

static bool write_enrolled(struct fl_agent *a)
{
	struct fl_buf path = FL_BUF_INIT;
	int fd;

	pthread_mutex_lock(&a->mu);
	fl_buf_printf(&path, "%s/enrolled", a->cfg->c.state_dir);
	pthread_mutex_unlock(&a->mu);
	fd = open(path.data, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
		fl_file_sync_parent(path.data);
	}
	fl_buf_fini(&path);
	return fd >= 0;
}

enum fl_err fl_pull_hello(struct fl_agent *a, char *errbuf)
{
	char shown[256];
	struct fl_agent_snapshot snap;
	struct fl_tenant_state *states;
	const struct fl_tenant_state **ptrs;
	uint64_t *seqs;
	size_t n, from = 0, i;
	enum fl_err rv = FL_OK;
	bool token, redirected = false;

	fl_agent_acquire(a, &snap);
	n = snap.tenants->n;
	states = read_all(a, &snap);
	pthread_mutex_lock(&a->mu);
	if (a->stopping)
		rv = fl_errf(errbuf, FL_ECANCELED, "the agent is stopping");
	pthread_mutex_unlock(&a->mu);
	ptrs = fl_calloc(n + 1, sizeof(*ptrs));
	seqs = fl_calloc(n + 1, sizeof(*seqs));
	for (i = 0; i < n; i++) {
		ptrs[i] = &states[i];
		seqs[i] = fl_ledger_tenant_sequence(a->ledger, snap.tenants->items[i].id);
	}
	pthread_mutex_lock(&a->mu);
	token = snap.cfg->enrollment_token != NULL && !a->enrolled;
	pthread_mutex_unlock(&a->mu);

	while (rv == FL_OK && !redirected && (from < n || n == 0)) {
		Flotilla__V1__Message msg = FLOTILLA__V1__MESSAGE__INIT, *reply = NULL;
		Flotilla__V1__Hello hello = FLOTILLA__V1__HELLO__INIT;
		struct fl_report_arena arena = {NULL, 0};

		size_t to = fl_report_hello_part(snap.tenants, from, ptrs, seqs, HELLO_PART_BYTES);

		msg.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
		msg.hello = &hello;
		hello.agent_id = a->agent_id;
		hello.agent_version = FL_VERSION;
		hello.protocol_version = FL_PROTOCOL_VERSION;
		hello.project_id = snap.cfg->project_id;
		hello.enrollment_token = token ? snap.cfg->enrollment_token : "";
		hello.more_tenants = to < n;
		fl_report_hello_tenants(&hello, snap.tenants, from, to, ptrs, seqs, &arena);
		rv = call(a, false, &msg, FL_WIRE_MAX_HELLO, snap.cfg->request_timeout_ms, &reply,
		          errbuf);
		fl_report_arena_free(&arena);
		if (rv != FL_OK)
			break;
		if (reply->body_case == FLOTILLA__V1__MESSAGE__BODY_ERROR) {
			rv = fl_errf(errbuf, FL_EAUTH, "hello refused: %s: %s",
			             status_name(reply->error->code),
			             q(shown, sizeof(shown), reply->error->message));
		} else if (reply->body_case != FLOTILLA__V1__MESSAGE__BODY_HELLO_REPLY) {
			rv = fl_errf(errbuf, FL_EPARSE, "hello answered with %s",
			             fl_wire_body_name(reply->body_case));
		} else if (reply->hello_reply->redirect != NULL) {
			if (follow_redirect(a, reply->hello_reply->redirect))
				redirected = true; /* the loop says Hello there */
			else /* asked again at once, it would say the same: back off */
				rv = fl_errf(errbuf, FL_EAUTH,
				             "hello answered with a redirect that is not followed");
		} else if (!reply->hello_reply->accepted) {
			rv = fl_errf(errbuf, FL_EAUTH, "hello refused: %s",
			             q(shown, sizeof(shown), reply->hello_reply->reason));
		} else if (!hello.more_tenants) {
			const Flotilla__V1__HelloReply *hr = reply->hello_reply;
			int64_t skew = hr->coordinator_time_ms - fl_wall_ms();

			if (skew > 60000 || skew < -60000)
				fl_log_warn(
				    "agent",
				    "the coordinator's clock is %lld s %s ours: keep hosts on NTP",
				    (long long)(skew < 0 ? -skew : skew) / 1000,
				    skew < 0 ? "behind" : "ahead of");
			pthread_mutex_lock(&a->mu);
			a->poll_interval_ms = hr->poll_interval_ms;
			a->max_poll_wait_ms = hr->max_poll_wait_ms;
			a->hello_ok = true;
			a->need_hello = false;
			a->kick_sender = true;
			pthread_cond_broadcast(&a->changed);
			pthread_mutex_unlock(&a->mu);
			q(shown, sizeof(shown), hr->agent_name);
			if (token && !a->enrolled && write_enrolled(a)) {
				pthread_mutex_lock(&a->mu);
				a->enrolled = true;
				pthread_mutex_unlock(&a->mu);
				fl_log_info("agent", "enrolled with the coordinator as '%s'",
				            shown);
			}
			fl_log_info("agent", "hello accepted: %zu tenant%s, as '%s'", n,
			            n == 1 ? "" : "s", shown);
		}
		fl_wire_free(reply);
		from = to;
		if (n == 0)
			break;
	}

	for (i = 0; i < n; i++)
		fl_tenant_state_fini(&states[i]);
	free(states);
	free(ptrs);
	free(seqs);
	fl_agent_release(a, &snap);
	return rv;
}

/* ---- reports ---- */

/* Send one journaled report; FL_OK once acknowledged. */
static enum fl_err send_report(struct fl_agent *a, uint64_t id, const struct fl_buf *packed,
                               char *errbuf)
{
	char shown[256];
	Flotilla__V1__Message *req = NULL, *reply = NULL;
	enum fl_err rv;
	bool acked = false;

	rv = fl_wire_unpack((const uint8_t *)packed->data, packed->len, FL_WIRE_MAX_REPORT, &req,
	                    errbuf);
	if (rv != FL_OK) {
		/* a report we packed ourselves and cannot read again: a bug, or
		 * the journal's checksum missed something; never send it */
		fl_log_error("agent", "journal report %llu cannot be read: %s; dropping it",
		             (unsigned long long)id, errbuf);
		return fl_journal_ack(a->journal, id, errbuf);
	}
	rv = call(a, false, req, FL_WIRE_MAX_REPORT, request_timeout(a), &reply, errbuf);
	if (rv == FL_OK && reply->body_case == FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK) {
		for (size_t i = 0; i < reply->report_ack->n_journal_ids; i++)
			if (reply->report_ack->journal_ids[i] == id)
				acked = true;
		if (acked)
			rv = fl_journal_ack(a->journal, id, errbuf);
		else
			rv = fl_errf(errbuf, FL_EPARSE,
			             "report %llu: the acknowledgement names others",
			             (unsigned long long)id);
	} else if (rv == FL_OK && reply->body_case == FLOTILLA__V1__MESSAGE__BODY_ERROR) {
		rv = fl_errf(errbuf, FL_ESTATE, "report %llu refused: %s: %s",
		             (unsigned long long)id, status_name(reply->error->code),
		             q(shown, sizeof(shown), reply->error->message));
	} else if (rv == FL_OK) {
		rv = fl_errf(errbuf, FL_EPARSE, "report answered with %s",
		             fl_wire_body_name(reply->body_case));
	}
	fl_wire_free(reply);
	fl_wire_free(req);
	return rv;
}

/* Every pending report once, oldest first. FL_OK when all went. */
static enum fl_err send_pending(struct fl_agent *a, char *errbuf)
{
	struct fl_buf packed = FL_BUF_INIT;
	uint64_t after = 0, id;
	enum fl_err rv = FL_OK;

	while (fl_journal_next(a->journal, after, &id, &packed)) {
		char err[FL_ERRBUF_SIZE] = "";
		enum fl_err one;
		bool go;

		pthread_mutex_lock(&a->mu);
		go = a->hello_ok; /* a Hello began: the rest wait for it */
		pthread_mutex_unlock(&a->mu);
		if (!go)
			break;
		one = send_report(a, id, &packed, err);

		after = id;
		if (one == FL_OK)
			continue;
		if (rv == FL_OK) {
			rv = one;
			snprintf(errbuf, FL_ERRBUF_SIZE, "%s", err);
		}
		/* the coordinator answered, refusing this one: it stays in the
		 * journal (tried again later), the others still go; anything
		 * else (unreachable, no answer) ends the round */
		if (one != FL_ESTATE && one != FL_EPARSE)
			break;
	}
	fl_buf_fini(&packed);
	return rv;
}

void *fl_pull_sender_main(void *arg)
{
	struct fl_agent *a = arg;
	unsigned failures = 0;
	int64_t retry_at = 0;

	pthread_mutex_lock(&a->mu);
	while (!atomic_load(&a->house_stop)) {
		char err[FL_ERRBUF_SIZE] = "";
		int64_t now = fl_now_ms(), max;
		bool due = a->hello_ok && (a->kick_sender || (retry_at != 0 && now >= retry_at));
		enum fl_err rv;

		if (!due) {
			struct timespec ts = fl_timespec_in(CLOCK_REALTIME, 200);

			pthread_cond_timedwait(&a->changed, &a->mu, &ts);
			continue;
		}
		a->kick_sender = false;
		max = a->cfg->c.reconnect_max_ms;
		pthread_mutex_unlock(&a->mu);
		rv = send_pending(a, err);
		pthread_mutex_lock(&a->mu);
		if (rv == FL_OK) {
			failures = 0;
			retry_at = 0;
			continue;
		}
		if (rv != FL_ECANCELED)
			fl_log_warn("agent", "sending reports: %s; %zu pending, trying again", err,
			            fl_journal_count(a->journal));
		retry_at = fl_now_ms() + fl_pull_backoff(failures++, max);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

void fl_pull_flush(struct fl_agent *a, int64_t timeout_ms)
{
	int64_t deadline = fl_now_ms() + timeout_ms;

	pthread_mutex_lock(&a->mu);
	a->kick_sender = true;
	pthread_cond_broadcast(&a->changed);
	while (fl_journal_count(a->journal) > 0 && fl_now_ms() < deadline && a->hello_ok) {
		struct timespec ts = fl_timespec_in(CLOCK_REALTIME, 100);

		pthread_cond_timedwait(&a->changed, &a->mu, &ts);
	}
	pthread_mutex_unlock(&a->mu);
}

/* ---- fetching releases ---- */

enum fl_err fl_pull_fetch(void *arg, const uint8_t hash[32], struct fl_buf *out, char *errbuf)
{
	char shown[256];
	struct fl_agent *a = arg;
	Flotilla__V1__Message msg = FLOTILLA__V1__MESSAGE__INIT, *reply = NULL;
	Flotilla__V1__FetchRelease fr = FLOTILLA__V1__FETCH_RELEASE__INIT;
	enum fl_err rv;

	msg.body_case = FLOTILLA__V1__MESSAGE__BODY_FETCH_RELEASE;
	msg.fetch_release = &fr;
	fr.release_hash.data = (uint8_t *)hash;
	fr.release_hash.len = 32;
	rv = call(a, false, &msg, FL_WIRE_MAX_SMALL, request_timeout(a) * FETCH_FACTOR, &reply,
	          errbuf);
	if (rv != FL_OK)
		return rv;
	if (reply->body_case == FLOTILLA__V1__MESSAGE__BODY_RELEASE_BUNDLE_REPLY &&
	    reply->release_bundle_reply->release_hash.len == 32 &&
	    memcmp(reply->release_bundle_reply->release_hash.data, hash, 32) == 0) {
		fl_buf_reset(out);
		if (fl_buf_append(out, reply->release_bundle_reply->signed_release.data,
		                  reply->release_bundle_reply->signed_release.len) != FL_OK)
			rv = fl_errf(errbuf, FL_EPARSE, "release too large");
	} else if (reply->body_case == FLOTILLA__V1__MESSAGE__BODY_ERROR) {
		rv = fl_errf(errbuf,
		             reply->error->code == FLOTILLA__V1__STATUS_CODE__STATUS_CODE_NOT_FOUND
		                 ? FL_ENOENT
		                 : FL_ESTATE,
		             "fetching the release: %s: %s", status_name(reply->error->code),
		             q(shown, sizeof(shown), reply->error->message));
	} else {
		rv = fl_errf(errbuf, FL_EPARSE, "fetching the release: answered with %s",
		             reply->body_case == FLOTILLA__V1__MESSAGE__BODY_RELEASE_BUNDLE_REPLY
		                 ? "another release"
		                 : fl_wire_body_name(reply->body_case));
	}
	fl_wire_free(reply);
	return rv;
}

/* ---- the main loop ---- */

/* Whether the journal holds too many unacknowledged reports to take more
 * work (the coordinator is not storing them: more work would only fill the
 * disk); logged when that changes. Main thread. */
static bool journal_full(struct fl_agent *a)
{
	size_t n = fl_journal_count(a->journal), bytes = fl_journal_bytes(a->journal);
	int64_t max;
	bool full;

	pthread_mutex_lock(&a->mu);
	max = a->cfg->c.max_pending_reports;
	pthread_mutex_unlock(&a->mu);
	full = (int64_t)n >= max || bytes >= PENDING_BYTES_MAX;
	if (full && !a->journal_full)
		fl_log_warn(
		    "agent",
		    "%zu reports (%zu bytes) not acknowledged by the coordinator: taking no "
		    "new work until they are (poll.max_pending_reports %lld)",
		    n, bytes, (long long)max);
	else if (!full && a->journal_full)
		fl_log_info("agent", "reports acknowledged: taking work again");
	a->journal_full = full;
	return full;
}

/* One long poll. FL_OK: answered (work, halts or nothing). */
static enum fl_err poll_once(struct fl_agent *a, char *errbuf)
{
	char shown[256];
	Flotilla__V1__Message msg = FLOTILLA__V1__MESSAGE__INIT, *reply = NULL;
	Flotilla__V1__Poll poll = FLOTILLA__V1__POLL__INIT;
	uint64_t *running = NULL;
	size_t n_running = 0, i;
	int64_t wait, timeout;
	uint32_t again = 0;
	bool full = journal_full(a);
	enum fl_err rv;

	pthread_mutex_lock(&a->mu);
	wait = a->cfg->c.poll_wait_ms;
	if (a->max_poll_wait_ms > 0 && wait > a->max_poll_wait_ms)
		wait = a->max_poll_wait_ms;
	if (wait < POLL_WAIT_MIN) /* a coordinator's tiny cap would make us spin */
		wait = POLL_WAIT_MIN;
	timeout = wait + a->cfg->c.request_timeout_ms;
	pthread_mutex_unlock(&a->mu);
	fl_worker_running(a->worker, &running, &n_running);
	msg.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
	msg.poll = &poll;
	poll.agent_id = a->agent_id;
	poll.free_slots = full ? 0 : (uint32_t)fl_worker_free_slots(a->worker);
	poll.max_wait_ms = (uint32_t)wait;
	poll.running_assignment_ids = running;
	poll.n_running_assignment_ids = n_running;
	rv = call(a, true, &msg, FL_WIRE_MAX_SMALL, timeout, &reply, errbuf);
	free(running);
	if (rv != FL_OK)
		return rv;
	if (reply->body_case == FLOTILLA__V1__MESSAGE__BODY_ERROR) {
		rv = fl_errf(errbuf, FL_ESTATE, "poll refused: %s: %s",
		             status_name(reply->error->code),
		             q(shown, sizeof(shown), reply->error->message));
		pthread_mutex_lock(&a->mu);
		a->need_hello = true;
		pthread_mutex_unlock(&a->mu);
	} else if (reply->body_case != FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY) {
		rv = fl_errf(errbuf, FL_EPARSE, "poll answered with %s",
		             fl_wire_body_name(reply->body_case));
	} else if (reply->poll_reply->redirect != NULL) {
		if (!follow_redirect(a, reply->poll_reply->redirect))
			rv = fl_errf(errbuf, FL_EAUTH,
			             "poll answered with a redirect that is not followed");
	} else {
		const Flotilla__V1__PollReply *pr = reply->poll_reply;
		size_t stopped = 0, taken = 0;

		a->redirects = 0; /* a coordinator that answers */
		/* halts first: nothing of a halted rollout starts after this */
		for (i = 0; i < pr->n_halts; i++)
			stopped += fl_worker_halt(a->worker, pr->halts[i]->rollout_id,
			                          pr->halts[i]->reason);
		for (i = 0; i < pr->n_assignments && !full; i++) {
			bool one = false;

			if (fl_worker_submit(a->worker, pr->assignments[i], &one) != FL_OK)
				break; /* stopping: the coordinator sends it again */
			taken += one;
		}
		if (full && pr->n_assignments > 0)
			fl_log_debug("agent",
			             "%zu assignment%s dropped: too many reports unacknowledged",
			             pr->n_assignments, pr->n_assignments == 1 ? "" : "s");
		/* nothing new (no work taken, nothing halted: work sent again, halts
		 * of rollouts the agent has nothing of), at once, again and again:
		 * pace it. But a slot freed since this poll went (the coordinator
		 * answers a held poll when a report comes in) is polled for at once
		 * unless told to wait: a pause there would idle the slot, once per
		 * tenant; each such poll needs one more finished job. */
		if (taken == 0 && stopped == 0) {
			again =
			    pr->poll_again_ms > POLL_AGAIN_MAX ? POLL_AGAIN_MAX : pr->poll_again_ms;
			if (again < POLL_EMPTY_MIN &&
			    (pr->poll_again_ms > 0 || full ||
			     fl_worker_free_slots(a->worker) <= poll.free_slots))
				again = POLL_EMPTY_MIN;
		}
	}
	fl_wire_free(reply);
	if (again > 0)
		fl_agent_sleep(a, again);
	return rv;
}

void fl_pull_run(struct fl_agent *a)
{
	unsigned failures = 0;

	for (;;) {
		char err[FL_ERRBUF_SIZE] = "";
		bool hello, stop;
		int64_t max;
		enum fl_err rv;

		pthread_mutex_lock(&a->mu);
		stop = a->stopping;
		hello = !a->hello_ok || a->need_hello;
		/* No report goes while the Hello reads the histories and until it
		 * is accepted: a report of work that ends meanwhile would reach
		 * the coordinator first, and the Hello's older read of that
		 * tenant would then overwrite it there. */
		if (hello)
			a->hello_ok = false;
		max = a->cfg->c.reconnect_max_ms;
		pthread_mutex_unlock(&a->mu);
		if (stop)
			return;
		rv = hello ? fl_pull_hello(a, err) : poll_once(a, err);
		/* redirected again and again (coordinators sending the agent round,
		 * or one to itself): each costs new sockets; back off as when the
		 * coordinator cannot be reached */
		if (a->redirects > 1) {
			if (a->redirects == 3)
				fl_log_warn("agent", "redirected %u times in a row: backing off",
				            a->redirects);
			fl_agent_sleep(a, fl_pull_backoff(a->redirects - 2, max));
		}
		if (rv == FL_OK) {
			failures = 0;
			continue;
		}
		pthread_mutex_lock(&a->mu);
		stop = a->stopping;
		if (rv == FL_ECONNECT || rv == FL_ETIMEDOUT || rv == FL_EAUTH) {
			a->hello_ok = false; /* reconnected: say Hello again, resend reports */
			a->need_hello = true;
		}
		pthread_mutex_unlock(&a->mu);
		if (stop)
			return;
		fl_log_warn("agent", "%s%s", hello ? "" : "poll: ", err);
		fl_agent_sleep(a, fl_pull_backoff(failures++, max));
	}
}
