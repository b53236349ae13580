/*
 * bench_load: many simulated agents against one flotilla-coordinator, for
 * tests/bench/run.sh (not a test). Agent i's key is derived from SEED as
 * `fl-testclient flood-keys` derives it, so the coordinator's config can list
 * them all; every request is sealed anew with the agent's own key and every
 * reply opened and checked (real envelopes, real nng, over S connections,
 * one nng context per agent).
 *
 *   bench_load --url URL --coordinator-key B64 --agents A --seed SEED
 *              [--sockets S] [--rate R] [--seconds T] [--hold MS]
 *              [--first I] [--procs K --barrier DIR] [--latencies PREFIX]
 *
 * Each agent holds two blocks of libsodium's guarded memory (its key, its
 * peer registry), a few memory mappings each: past about 5,000 agents a
 * process meets vm.max_map_count, so a large fleet is simulated by K
 * processes, each with agents I..I+A-1, meeting at a barrier (files in DIR)
 * before each phase; R is then each one's share. --latencies writes each
 * phase's latencies (ms, one a line) to PREFIX.hello, .rate and .reports.
 *
 * Phases, each printing one line of key=value on stdout:
 *   hello     each agent says Hello with one tenant, ld-<i> (64 at once)
 *   rate      open loop: R requests per second for T seconds, each a Poll
 *             (max_wait 0) of the next agent in turn; latency of each
 *   held      each agent parks a long poll (free slot 1, max_wait MS); then
 *             "held A" is printed and the caller starts a rollout over the
 *             tenants: a held poll answered with an APPLY is followed by a
 *             long poll listing it as running
 *   assigned  every agent holds its assignment; the caller halts the rollout
 *   halted    each agent's poll answered with the Halt: first_ms and last_ms
 *             (wall clock, ms since the epoch) of their arrival
 *   reports   each agent reports its assignment canceled; latency of each
 * Latencies are p50/p99/max in ms. Exits 1 when a phase saw errors.
 */
#include <dirent.h>
#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "envelope.h"
#include "identity.h"
#include "peers.h"
#include "wire.h"

enum step {
	S_IDLE,      /* nothing in flight */
	S_HELLO,     /* Hello sent */
	S_RATE,      /* a Poll of the rate phase sent */
	S_HOLD,      /* a long poll sent, no work yet */
	S_HOLD_WORK, /* a long poll sent, listing the assignment as running */
	S_REPORT,    /* the Report sent */
	S_DONE,
};

struct agent {
	long i;
	char tenant[32];
	struct fl_identity *id;
	struct fl_peers *peers;
	struct fl_envelope *ep;
	nng_ctx ctx;
	nng_aio *aio;
	_Atomic int step; /* enum step */
	bool sending;     /* the send half of a request is in flight */
	int64_t sent_ns;
	uint64_t assignment;
	char rollout[64];
};

static struct agent *agents;
static long n_agents;
static uint8_t coord[32];
static uint32_t hold_ms = 60000;
static atomic_long n_done, n_errors, n_assigned, n_halted, next_agent;
static atomic_llong halt_first_ms, halt_last_ms;

/* Latencies, ms, one per answered request of the phase. */
static long first_agent, n_procs = 1;
static const char *barrier_dir, *lat_prefix;
static double *lat;
static long lat_cap;
static atomic_long n_lat;

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "bench_load: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

static void seal_send(struct agent *a, const Flotilla__V1__Message *m, enum step step)
{
	struct fl_buf packed = FL_BUF_INIT, sealed = FL_BUF_INIT;
	char err[FL_ERRBUF_SIZE] = "";
	nng_msg *msg;

	if (fl_wire_pack(m, &packed, FL_WIRE_MAX_SMALL, err) != FL_OK ||
	    fl_envelope_seal(a->ep, coord, packed.data, packed.len, &sealed, err) != FL_OK)
		die("cannot seal a request", err);
	if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, sealed.data, sealed.len) != 0)
		die("out of memory", NULL);
	fl_buf_fini(&packed);
	fl_buf_fini(&sealed);
	a->step = step;
	a->sending = true;
	a->sent_ns = mono_ns();
	nng_aio_set_msg(a->aio, msg);
	nng_ctx_send(a->ctx, a->aio);
}

static void send_hello(struct agent *a)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Hello h = FLOTILLA__V1__HELLO__INIT;
	Flotilla__V1__Tenant t = FLOTILLA__V1__TENANT__INIT, *tp = &t;

	h.agent_id = "bench-load";
	h.agent_version = FL_VERSION;
	h.protocol_version = FL_PROTOCOL_VERSION;
	h.project_id = "acme";
	t.id = a->tenant;
	t.database = a->tenant;
	h.tenants = &tp;
	h.n_tenants = 1;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
	m.hello = &h;
	seal_send(a, &m, S_HELLO);
}

static void send_poll(struct agent *a, uint32_t wait, enum step step)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Poll p = FLOTILLA__V1__POLL__INIT;

	p.agent_id = "bench-load";
	p.max_wait_ms = wait;
	p.free_slots = step == S_HOLD ? 1 : 0;
	if (step == S_HOLD_WORK) {
		p.running_assignment_ids = &a->assignment;
		p.n_running_assignment_ids = 1;
	}
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
	m.poll = &p;
	seal_send(a, &m, step);
}

static void send_report(struct agent *a)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Report r = FLOTILLA__V1__REPORT__INIT;
	int64_t now = wall_ms();

	r.agent_id = "bench-load";
	r.tenant_id = a->tenant;
	r.rollout_id = a->rollout;
	r.assignment_id = a->assignment;
	r.kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
	r.outcome = FLOTILLA__V1__OUTCOME__OUTCOME_CANCELED;
	r.message = "halted before it started";
	r.started_at_ms = now;
	r.finished_at_ms = now;
	r.journal_id = (uint64_t)a->i + 1;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_REPORT;
	m.report = &r;
	seal_send(a, &m, S_REPORT);
}

static void start_next_hello(void);

/* The reply of agent a's request, opened; NULL (counted as an error) if not. */
static Flotilla__V1__Message *open_reply(struct agent *a, nng_msg *msg)
{
	struct fl_envelope_opened o;
	enum fl_envelope_reason why;
	Flotilla__V1__Message *reply = NULL;
	char err[FL_ERRBUF_SIZE] = "";

	fl_envelope_opened_init(&o);
	if (fl_envelope_open(a->ep, nng_msg_body(msg), nng_msg_len(msg), 0, &o, &why, err) !=
	        FL_OK ||
	    fl_wire_unpack(o.body, o.body_len, FL_WIRE_MAX_SMALL, &reply, err) != FL_OK) {
		if (atomic_fetch_add(&n_errors, 1) < 5)
			fprintf(stderr, "bench_load: agent %ld: reply: %s\n", a->i, err);
		reply = NULL;
	} else if (reply->body_case == FLOTILLA__V1__MESSAGE__BODY_ERROR) {
		if (atomic_fetch_add(&n_errors, 1) < 5)
			fprintf(stderr, "bench_load: agent %ld: refused: %s\n", a->i,
			        reply->error->message);
		fl_wire_free(reply);
		reply = NULL;
	}
	fl_envelope_opened_fini(&o);
	return reply;
}

static void on_io(void *arg)
{
	struct agent *a = arg;
	Flotilla__V1__Message *reply;
	nng_msg *msg;
	int rv = nng_aio_result(a->aio);
	long k;

	if (rv != 0) {
		nng_msg_free(nng_aio_get_msg(a->aio));
		nng_aio_set_msg(a->aio, NULL);
		if (atomic_fetch_add(&n_errors, 1) < 5)
			fprintf(stderr, "bench_load: agent %ld: %s\n", a->i, nng_strerror(rv));
		a->step = S_DONE;
		a->sending = false;
		atomic_fetch_add(&n_done, 1);
		return;
	}
	if (a->sending) {
		a->sending = false;
		nng_ctx_recv(a->ctx, a->aio);
		return;
	}
	msg = nng_aio_get_msg(a->aio);
	nng_aio_set_msg(a->aio, NULL);
	reply = open_reply(a, msg);
	nng_msg_free(msg);
	if (a->step == S_HELLO || a->step == S_RATE || a->step == S_REPORT) {
		k = atomic_fetch_add(&n_lat, 1);
		lat[k % lat_cap] = (double)(mono_ns() - a->sent_ns) / 1e6;
	}
	switch (a->step) {
	case S_HELLO:
		a->step = S_IDLE;
		atomic_fetch_add(&n_done, 1);
		start_next_hello();
		break;
	case S_RATE:
		a->step = S_IDLE;
		atomic_fetch_add(&n_done, 1);
		break;
	case S_HOLD:
	case S_HOLD_WORK:
		if (reply && reply->body_case == FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY) {
			const Flotilla__V1__PollReply *pr = reply->poll_reply;

			if (pr->n_halts > 0 && a->step == S_HOLD_WORK) {
				int64_t now = wall_ms();
				long long first = 0;

				atomic_compare_exchange_strong(&halt_first_ms, &first, now);
				for (long long last = atomic_load(&halt_last_ms);
				     last < now &&
				     !atomic_compare_exchange_weak(&halt_last_ms, &last, now);)
					;
				atomic_fetch_add(&n_halted, 1);
				a->step = S_IDLE; /* the main thread sends the reports */
				break;
			}
			if (pr->n_assignments > 0 && a->step == S_HOLD) {
				a->assignment = pr->assignments[0]->assignment_id;
				snprintf(a->rollout, sizeof(a->rollout), "%s",
				         pr->assignments[0]->rollout_id);
				atomic_fetch_add(&n_assigned, 1);
				send_poll(a, hold_ms, S_HOLD_WORK);
				break;
			}
			send_poll(a, hold_ms, a->step); /* the hold ran out: again */
			break;
		}
		a->step = S_DONE;
		atomic_fetch_add(&n_done, 1);
		break;
	case S_REPORT:
		if (reply && reply->body_case != FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK &&
		    atomic_fetch_add(&n_errors, 1) < 5)
			fprintf(stderr, "bench_load: agent %ld: report answered with %s\n", a->i,
			        fl_wire_body_name(reply->body_case));
		a->step = S_DONE;
		atomic_fetch_add(&n_done, 1);
		break;
	default:
		break;
	}
	fl_wire_free(reply);
}

static void start_next_hello(void)
{
	long i = atomic_fetch_add(&next_agent, 1);

	if (i < n_agents)
		send_hello(&agents[i]);
}

/* Wait until the K processes all reached phase name (a file each in DIR). */
static void barrier(const char *name)
{
	char path[4096];
	FILE *f;

	if (barrier_dir == NULL || n_procs <= 1)
		return;
	snprintf(path, sizeof(path), "%s/%s.%ld", barrier_dir, name, (long)getpid());
	if ((f = fopen(path, "w")) == NULL)
		die("cannot write the barrier file", path);
	fclose(f);
	for (;;) {
		DIR *d = opendir(barrier_dir);
		struct dirent *de;
		long n = 0;
		size_t len = strlen(name);

		if (d == NULL)
			die("cannot read the barrier folder", barrier_dir);
		while ((de = readdir(d)) != NULL)
			if (strncmp(de->d_name, name, len) == 0 && de->d_name[len] == '.')
				n++;
		closedir(d);
		if (n >= n_procs)
			return;
		nng_msleep(10);
	}
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* "p50_ms=.. p99_ms=.. max_ms=.." of the phase's latencies. */
static void print_latency(const char *phase)
{
	long n = atomic_load(&n_lat);

	if (n > lat_cap)
		n = lat_cap;
	if (lat_prefix) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s.%s", lat_prefix, phase);
		if ((f = fopen(path, "w")) == NULL)
			die("cannot write", path);
		for (long k = 0; k < n; k++)
			fprintf(f, "%.3f\n", lat[k]);
		fclose(f);
	}
	if (n == 0) {
		printf(" p50_ms=0 p99_ms=0 max_ms=0");
		return;
	}
	qsort(lat, (size_t)n, sizeof(double), cmp_double);
	printf(" p50_ms=%.2f p99_ms=%.2f max_ms=%.2f", lat[(n - 1) / 2],
	       lat[(long)((double)(n - 1) * 0.99)], lat[n - 1]);
}

static void wait_until(atomic_long *counter, long target, int64_t timeout_ms, const char *what)
{
	int64_t end = mono_ns() + timeout_ms * 1000000;

	while (atomic_load(counter) + atomic_load(&n_errors) < target) {
		if (mono_ns() > end) {
			fprintf(stderr, "bench_load: %s: %ld of %ld after %lld ms\n", what,
			        atomic_load(counter), target, (long long)timeout_ms);
			return;
		}
		nng_msleep(5);
	}
}

int main(int argc, char **argv)
{
	static const struct option o[] = {{"url", 1, 0, 'u'},
	                                  {"coordinator-key", 1, 0, 'k'},
	                                  {"agents", 1, 0, 'n'},
	                                  {"seed", 1, 0, 's'},
	                                  {"sockets", 1, 0, 'S'},
	                                  {"rate", 1, 0, 'r'},
	                                  {"seconds", 1, 0, 't'},
	                                  {"hold", 1, 0, 'h'},
	                                  {"first", 1, 0, 'f'},
	                                  {"procs", 1, 0, 'P'},
	                                  {"barrier", 1, 0, 'b'},
	                                  {"latencies", 1, 0, 'l'},
	                                  {0, 0, 0, 0}};
	const char *url = NULL, *key = NULL, *seed = NULL;
	long n_socks = 0, rate = 2000, seconds = 10, errors_before;
	nng_socket *socks;
	char err[FL_ERRBUF_SIZE] = "";
	int64_t t0, t1;
	size_t kl;
	int c;

	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'u':
			url = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'n':
			n_agents = strtol(optarg, NULL, 10);
			break;
		case 's':
			seed = optarg;
			break;
		case 'S':
			n_socks = strtol(optarg, NULL, 10);
			break;
		case 'r':
			rate = strtol(optarg, NULL, 10);
			break;
		case 't':
			seconds = strtol(optarg, NULL, 10);
			break;
		case 'h':
			hold_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'f':
			first_agent = strtol(optarg, NULL, 10);
			break;
		case 'P':
			n_procs = strtol(optarg, NULL, 10);
			break;
		case 'b':
			barrier_dir = optarg;
			break;
		case 'l':
			lat_prefix = optarg;
			break;
		default:
			die("usage: bench_load --url URL --coordinator-key B64 --agents A --seed "
			    "SEED "
			    "[--sockets S] [--rate R] [--seconds T] [--hold MS]",
			    NULL);
		}
	}
	if (url == NULL || key == NULL || seed == NULL || n_agents < 1 || rate < 1 || seconds < 1)
		die("--url, --coordinator-key, --agents and --seed are needed", NULL);
	if (sodium_init() < 0)
		die("libsodium does not start", NULL);
	if (sodium_base642bin(coord, sizeof(coord), key, strlen(key), NULL, &kl, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    kl != sizeof(coord))
		die("--coordinator-key: not a base64 Ed25519 public key", key);
	if (n_socks < 1)
		n_socks = n_agents / 10 > 0 ? n_agents / 10 : 1;
	if (n_socks > n_agents)
		n_socks = n_agents;
	socks = calloc((size_t)n_socks, sizeof(*socks));
	agents = calloc((size_t)n_agents, sizeof(*agents));
	lat_cap = rate * seconds > n_agents ? rate * seconds : n_agents;
	lat = calloc((size_t)lat_cap, sizeof(*lat));
	if (socks == NULL || agents == NULL || lat == NULL)
		die("out of memory", NULL);
	for (long k = 0; k < n_socks; k++)
		if (nng_req0_open(&socks[k]) != 0 ||
		    nng_socket_set_ms(socks[k], NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE) !=
		        0 ||
		    nng_dial(socks[k], url, NULL, 0) != 0)
			die("cannot dial", url);
	for (long i = 0; i < n_agents; i++) {
		struct agent *a = &agents[i];
		char text[256];
		uint8_t s[32];

		snprintf(text, sizeof(text), "fl-flood %s %ld", seed, first_agent + i);
		crypto_hash_sha256(s, (const uint8_t *)text, strlen(text));
		a->i = first_agent + i;
		snprintf(a->tenant, sizeof(a->tenant), "ld-%05ld", first_agent + i);
		a->id = fl_identity_new_from_seed(s);
		if (a->id == NULL || fl_peers_new(a->id, NULL, 0, 0, &a->peers, err) != FL_OK ||
		    fl_peers_add(a->peers, coord, FL_PEER_COORDINATOR, "coordinator", err) != FL_OK)
			die("cannot set up an agent", err);
		a->ep = fl_envelope_new(a->id, a->peers);
		if (nng_ctx_open(&a->ctx, socks[i % n_socks]) != 0 ||
		    nng_ctx_set_ms(a->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE) != 0 ||
		    nng_aio_alloc(&a->aio, on_io, a) != 0)
			die("nng failed", NULL);
		nng_aio_set_timeout(a->aio, (nng_duration)hold_ms + 30000);
	}

	/* hello */
	barrier("hello");
	t0 = mono_ns();
	atomic_store(&next_agent, 64 < n_agents ? 64 : n_agents);
	for (long i = 0; i < (64 < n_agents ? 64 : n_agents); i++)
		send_hello(&agents[i]);
	wait_until(&n_done, n_agents, 600000, "hello");
	t1 = mono_ns();
	printf("hello agents=%ld ms=%.0f rate=%.0f", n_agents, (double)(t1 - t0) / 1e6,
	       (double)n_agents * 1e9 / (double)(t1 - t0));
	print_latency("hello");
	printf(" errors=%ld\n", atomic_load(&n_errors));
	fflush(stdout);

	/* rate: open loop, the next idle agent each 1/R s */
	barrier("rate");
	errors_before = atomic_load(&n_errors);
	atomic_store(&n_done, 0);
	atomic_store(&n_lat, 0);
	{
		long total = rate * seconds, sent = 0, skipped = 0, i = 0;
		int64_t start = mono_ns(), period = 1000000000 / rate;

		while (sent + skipped < total) {
			int64_t due = start + (sent + skipped) * period, now = mono_ns();
			struct agent *a = &agents[i++ % n_agents];

			if (due > now) {
				struct timespec ts = {0, (long)(due - now)};
				nanosleep(&ts, NULL);
			}
			if (a->step != S_IDLE) {
				skipped++; /* its last one is not answered yet: overload */
				continue;
			}
			send_poll(a, 0, S_RATE);
			sent++;
		}
		wait_until(&n_done, sent, 60000, "rate");
		t1 = mono_ns();
		printf("rate target=%ld requests=%ld seconds=%.2f achieved=%.0f skipped=%ld", rate,
		       sent, (double)(t1 - start) / 1e9, (double)sent * 1e9 / (double)(t1 - start),
		       skipped);
		print_latency("rate");
		printf(" errors=%ld\n", atomic_load(&n_errors) - errors_before);
		fflush(stdout);
	}

	/* held, then assigned */
	barrier("held");
	errors_before = atomic_load(&n_errors);
	for (long i = 0; i < n_agents; i++)
		send_poll(&agents[i], hold_ms, S_HOLD);
	nng_msleep(1000 + (unsigned)(n_agents / 5)); /* every poll parked */
	printf("held %ld\n", n_agents);
	fflush(stdout);
	wait_until(&n_assigned, n_agents, 600000, "assigned");
	t0 = mono_ns();
	nng_msleep(200); /* the polls that list the assignment parked */
	printf("assigned %ld\n", atomic_load(&n_assigned));
	fflush(stdout);

	/* halted */
	wait_until(&n_halted, atomic_load(&n_assigned), 120000, "halted");
	printf("halted agents=%ld first_ms=%lld last_ms=%lld\n", atomic_load(&n_halted),
	       (long long)atomic_load(&halt_first_ms), (long long)atomic_load(&halt_last_ms));
	fflush(stdout);

	/* reports */
	barrier("reports");
	atomic_store(&n_done, 0);
	atomic_store(&n_lat, 0);
	t0 = mono_ns();
	{
		long sent = 0;

		for (long i = 0; i < n_agents; i++) {
			if (agents[i].step != S_IDLE || agents[i].assignment == 0)
				continue;
			while (sent - atomic_load(&n_done) >= 64)
				nng_msleep(1);
			send_report(&agents[i]);
			sent++;
		}
		wait_until(&n_done, sent, 120000, "reports");
		t1 = mono_ns();
		printf("reports sent=%ld seconds=%.2f rate=%.0f", sent, (double)(t1 - t0) / 1e9,
		       (double)sent * 1e9 / (double)(t1 - t0));
		print_latency("reports");
		printf(" errors=%ld\n", atomic_load(&n_errors) - errors_before);
	}
	fflush(stdout);
	for (long k = 0; k < n_socks; k++)
		nng_close(socks[k]);
	for (long i = 0; i < n_agents; i++) {
		nng_aio_stop(agents[i].aio);
		nng_aio_free(agents[i].aio);
		fl_envelope_free(agents[i].ep);
		fl_peers_free(agents[i].peers);
		fl_identity_free(agents[i].id);
	}
	free(agents);
	free(socks);
	free(lat);
	return atomic_load(&n_errors) ? 1 : 0;
}
