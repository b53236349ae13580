/* A REP socket served by a pool of contexts (rep.h). */
#include "rep.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "nng_quirks.h"

/* How long closing the socket may take: nng 1.5.2 can wait forever on a
 * listener its issue #1518 left behind (nng_quirks.h); a coordinator must
 * still stop. */
#define CLOSE_WAIT_MS 5000

/* Where a context is. */
enum slot_state {
	SLOT_FREE = 0, /* on the free list */
	SLOT_RECV,     /* waiting for a request */
	SLOT_WORK,     /* a request is its handler's: parked until fl_rep_reply or drop */
	SLOT_SEND,     /* its reply is being sent */
	SLOT_DEAD,     /* the socket closed under it */
};

struct fl_rep_req {
	struct fl_rep *rep;
	nng_ctx ctx;
	nng_aio *aio;
	enum slot_state state;
	struct fl_rep_req *next_free;
};

struct fl_rep {
	char *name;
	char *url;
	size_t max_recv;
	nng_socket sock;
	nng_listener listener;
	int port;
	fl_rep_fn fn;
	void *arg;
	size_t max_reqs;

	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct fl_rep_req **slots; /* every slot, for freeing */
	size_t n_slots, cap_slots;
	struct fl_rep_req *free_list;
	size_t receiving; /* slots in SLOT_RECV */
	size_t busy;      /* slots in SLOT_WORK or SLOT_SEND */
	size_t in_handler;
	bool stopping;
	bool closed;
	bool warned_full;

	/* the deaf-listener watchdog (fl_nng_handshake_close_is_fatal) */
	pthread_t watchdog;
	bool watching;
	pthread_cond_t watchdog_cond;
	uint64_t listener_errors; /* the listener's "other" errors seen so far */
	bool listening;           /* a listener is up (it may be down between tries) */
};

static void slot_cb(void *arg);

/* A new slot, or NULL when nng cannot open one. Called with mtx held. */
static struct fl_rep_req *slot_new(struct fl_rep *r)
{
	struct fl_rep_req *s = fl_calloc(1, sizeof(*s));
	int rv;

	s->rep = r;
	if ((rv = nng_ctx_open(&s->ctx, r->sock)) != 0) {
		free(s);
		return NULL;
	}
	if ((rv = nng_aio_alloc(&s->aio, slot_cb, s)) != 0) {
		nng_ctx_close(s->ctx);
		free(s);
		return NULL;
	}
	r->slots = fl_grow(r->slots, &r->cap_slots, r->n_slots + 1, sizeof(*r->slots));
	r->slots[r->n_slots++] = s;
	return s;
}

/* Set a slot receiving. Called with mtx held. */
static void start_recv(struct fl_rep *r, struct fl_rep_req *s)
{
	s->state = SLOT_RECV;
	r->receiving++;
	nng_ctx_recv(s->ctx, s->aio);
}

/* Keep FL_REP_RECEIVERS slots receiving while the pool allows. mtx held. */
static void top_up(struct fl_rep *r)
{
	while (!r->stopping && !r->closed && r->receiving < FL_REP_RECEIVERS &&
	       r->busy + r->receiving < r->max_reqs) {
		struct fl_rep_req *s = r->free_list;

		if (s != NULL)
			r->free_list = s->next_free;
		else if ((s = slot_new(r)) == NULL)
			break;
		start_recv(r, s);
	}
	if (r->receiving == 0 && !r->stopping && !r->closed && !r->warned_full) {
		r->warned_full = true;
		fl_log_warn(r->name,
		            "%zu requests in work: not reading more until some are answered",
		            r->busy);
	} else if (r->receiving > 0) {
		r->warned_full = false;
	}
}

/* After a reply went (or a request was dropped): recycle. mtx held. */
static void recycle(struct fl_rep *r, struct fl_rep_req *s)
{
	r->busy--;
	if (r->closed) {
		s->state = SLOT_DEAD;
	} else if (!r->stopping && r->receiving < FL_REP_RECEIVERS) {
		start_recv(r, s);
	} else {
		s->state = SLOT_FREE;
		s->next_free = r->free_list;
		r->free_list = s;
	}
	top_up(r);
	pthread_cond_broadcast(&r->cond);
}

static void on_recv(struct fl_rep *r, struct fl_rep_req *s)
{
	int rv = nng_aio_result(s->aio);
	nng_msg *msg;

	pthread_mutex_lock(&r->mtx);
	r->receiving--;
	if (rv != 0) {
		if (rv == NNG_ECLOSED || r->closed) {
			s->state = SLOT_DEAD;
		} else {
			/* a transient failure of this context: receive again */
			s->state = SLOT_FREE;
			s->next_free = r->free_list;
			r->free_list = s;
			top_up(r);
		}
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->mtx);
		return;
	}
	msg = nng_aio_get_msg(s->aio);
	nng_aio_set_msg(s->aio, NULL);
	if (r->stopping) {
		/* Dropped: the REQ peer sends it again after it reconnects. */
		nng_msg_free(msg);
		s->state = SLOT_FREE;
		s->next_free = r->free_list;
		r->free_list = s;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->mtx);
		return;
	}
	s->state = SLOT_WORK;
	r->busy++;
	r->in_handler++;
	top_up(r);
	pthread_mutex_unlock(&r->mtx);

	r->fn(r->arg, s, nng_msg_body(msg), nng_msg_len(msg));
	nng_msg_free(msg);

	pthread_mutex_lock(&r->mtx);
	r->in_handler--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mtx);
}

static void on_send(struct fl_rep *r, struct fl_rep_req *s)
{
	if (nng_aio_result(s->aio) != 0) {
		nng_msg_free(nng_aio_get_msg(s->aio));
		nng_aio_set_msg(s->aio, NULL);
	}
	pthread_mutex_lock(&r->mtx);
	recycle(r, s);
	pthread_mutex_unlock(&r->mtx);
}

static void slot_cb(void *arg)
{
	struct fl_rep_req *s = arg;

	/* Only this slot's own aio completes here, and a slot has one
	 * operation at a time, so reading its state needs no lock. */
	if (s->state == SLOT_RECV)
		on_recv(s->rep, s);
	else if (s->state == SLOT_SEND)
		on_send(s->rep, s);
}

void fl_rep_reply(struct fl_rep_req *req, const void *data, size_t len)
{
	struct fl_rep *r = req->rep;
	nng_msg *msg;

	pthread_mutex_lock(&r->mtx);
	if (r->closed || nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, data, len) != 0) {
		recycle(r, req);
		pthread_mutex_unlock(&r->mtx);
		return;
	}
	req->state = SLOT_SEND;
	pthread_mutex_unlock(&r->mtx);
	nng_aio_set_msg(req->aio, msg);
	nng_aio_set_timeout(req->aio, FL_REP_SEND_MS);
	nng_ctx_send(req->ctx, req->aio);
}

void fl_rep_drop(struct fl_rep_req *req)
{
	struct fl_rep *r = req->rep;

	pthread_mutex_lock(&r->mtx);
	recycle(r, req);
	pthread_mutex_unlock(&r->mtx);
}

struct fl_rep *fl_rep_of(struct fl_rep_req *req)
{
	return req->rep;
}

/* On transports where a peer leaving mid-handshake stops nng's accept loop
 * for good (fl_nng_handshake_close_is_fatal), a watchdog reads the
 * listener's error count every second and, when it grew and a probe is no
 * longer accepted, listens anew: the peers redial, and what was in flight
 * is asked again. */
/* A counter of the listener's statistics ("other": errors nng files there,
 * among them the one that stops it; "accept": pipes accepted), 0 if nng
 * keeps none. */
static uint64_t listener_stat(nng_listener l, const char *name)
{
	nng_stat *all, *ls, *st;
	uint64_t n = 0;

	if (nng_stats_get(&all) != 0)
		return 0;
	if ((ls = nng_stat_find_listener(all, l)) != NULL && (st = nng_stat_find(ls, name)) != NULL)
		n = nng_stat_value(st);
	nng_stats_free(all);
	return n;
}

/* Whether the listener still accepts: a probe dials it and must be
 * accepted within 3 s. Errors under "other" are not all the fatal one (nng
 * recovers from some by itself), and closing a live listener would cut
 * every peer's connection. */
static bool listener_accepts(struct fl_rep *r)
{
	uint64_t before = listener_stat(r->listener, "accept");
	bool accepted = false;
	nng_socket probe;

	if (nng_req0_open(&probe) != 0)
		return true; /* cannot tell: leave it */
	if (nng_dial(probe, r->url, NULL, NNG_FLAG_NONBLOCK) == 0) {
		int64_t deadline = fl_now_ms() + 3000;

		while (!(accepted = listener_stat(r->listener, "accept") > before) &&
		       fl_now_ms() < deadline) {
			struct timespec ts = {0, 20 * 1000000};

			nanosleep(&ts, NULL);
		}
	}
	nng_close(probe);
	return accepted;
}

static int listen_on(struct fl_rep *r)
{
	int rv;

	if ((rv = nng_listener_create(&r->listener, r->sock, r->url)) != 0)
		return rv;
	if ((rv = nng_listener_set_size(r->listener, NNG_OPT_RECVMAXSZ, r->max_recv)) != 0 ||
	    (rv = nng_listener_start(r->listener, 0)) != 0)
		nng_listener_close(r->listener);
	return rv;
}

static void relisten_if_deaf(struct fl_rep *r)
{
	int rv;

	if (r->listening) {
		uint64_t n = listener_stat(r->listener, "other");

		if (n <= r->listener_errors)
			return;
		if (listener_accepts(r)) {
			r->listener_errors = n;
			return;
		}
		fl_log_warn(r->name,
		            "the listener on '%s' stopped accepting (a peer left mid-handshake; "
		            "nng %s, issue #1518): listening again",
		            r->url, nng_version());
		nng_listener_close(r->listener);
		r->listening = false;
	}
	if ((rv = listen_on(r)) != 0) {
		fl_log_error(r->name, "cannot listen on '%s' again: %s; trying again in 1s", r->url,
		             nng_strerror(rv));
		return;
	}
	r->listening = true;
	r->listener_errors = 0;
}

static void *watchdog_main(void *arg)
{
	struct fl_rep *r = arg;

	pthread_mutex_lock(&r->mtx);
	while (!r->stopping) {
		struct timespec ts = fl_timespec_in(CLOCK_REALTIME, 1000);

		pthread_cond_timedwait(&r->watchdog_cond, &r->mtx, &ts);
		if (r->stopping)
			break;
		pthread_mutex_unlock(&r->mtx);
		relisten_if_deaf(r);
		pthread_mutex_lock(&r->mtx);
	}
	pthread_mutex_unlock(&r->mtx);
	return NULL;
}

/* Stop the watchdog (before the listener or socket closes). */
static void watchdog_stop(struct fl_rep *r)
{
	if (!r->watching)
		return;
	pthread_mutex_lock(&r->mtx);
	r->stopping = true;
	pthread_cond_signal(&r->watchdog_cond);
	pthread_mutex_unlock(&r->mtx);
	pthread_join(r->watchdog, NULL);
	r->watching = false;
}

enum fl_err fl_rep_new(const char *name, const char *url, size_t max_recv, size_t max_reqs,
                       fl_rep_fn fn, void *arg, struct fl_rep **out, char *errbuf)
{
	struct fl_rep *r = fl_calloc(1, sizeof(*r));
	int rv, port = 0;

	*out = NULL;
	r->name = fl_strdup(name);
	r->url = fl_strdup(url);
	r->max_recv = max_recv;
	r->fn = fn;
	r->arg = arg;
	r->max_reqs = max_reqs < FL_REP_RECEIVERS ? FL_REP_RECEIVERS : max_reqs;
	pthread_mutex_init(&r->mtx, NULL);
	pthread_cond_init(&r->cond, NULL);
	pthread_cond_init(&r->watchdog_cond, NULL);
	if ((rv = nng_rep0_open(&r->sock)) != 0) {
		pthread_mutex_destroy(&r->mtx);
		pthread_cond_destroy(&r->cond);
		pthread_cond_destroy(&r->watchdog_cond);
		free(r->name);
		free(r->url);
		free(r);
		return fl_errf(errbuf, FL_EIO, "cannot open the %s socket: %s", name,
		               nng_strerror(rv));
	}
	if ((rv = nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, max_recv)) != 0 ||
	    (rv = listen_on(r)) != 0) {
		enum fl_err e = rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL
		                    ? FL_EINVAL
		                    : FL_EIO;

		r->closed = true;
		nng_close(r->sock);
		fl_rep_free(r);
		return fl_errf(errbuf, e, "cannot listen on '%s' (%s endpoint): %s", url, name,
		               nng_strerror(rv));
	}
	if (strncmp(url, "tcp", 3) == 0 &&
	    nng_listener_get_int(r->listener, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
		r->port = port;
	r->listening = true;
	if (fl_nng_handshake_close_is_fatal(url)) {
		r->listener_errors = listener_stat(r->listener, "other");
		r->watching = pthread_create(&r->watchdog, NULL, watchdog_main, r) == 0;
		if (!r->watching)
			fl_log_warn(name,
			            "no watchdog for '%s': a peer leaving mid-handshake can "
			            "make it deaf (nng issue #1518)",
			            url);
	}
	pthread_mutex_lock(&r->mtx);
	top_up(r);
	pthread_mutex_unlock(&r->mtx);
	*out = r;
	return FL_OK;
}

int fl_rep_port(struct fl_rep *r)
{
	return r->port;
}

void fl_rep_stop_accepting(struct fl_rep *r)
{
	pthread_mutex_lock(&r->mtx);
	r->stopping = true;
	while (r->in_handler > 0)
		pthread_cond_wait(&r->cond, &r->mtx);
	pthread_mutex_unlock(&r->mtx);
}

void fl_rep_drain(struct fl_rep *r, int64_t timeout_ms)
{
	int64_t deadline = fl_now_ms() + timeout_ms;

	pthread_mutex_lock(&r->mtx);
	while (r->busy > 0 && fl_now_ms() < deadline) {
		struct timespec ts = fl_timespec_in(CLOCK_REALTIME, 20);

		pthread_cond_timedwait(&r->cond, &r->mtx, &ts);
	}
	pthread_mutex_unlock(&r->mtx);
}

void fl_rep_free(struct fl_rep *r)
{
	if (r == NULL)
		return;
	watchdog_stop(r);
	pthread_mutex_lock(&r->mtx);
	r->stopping = true;
	while (r->in_handler > 0)
		pthread_cond_wait(&r->cond, &r->mtx);
	r->closed = true;
	pthread_mutex_unlock(&r->mtx);
	/* every pending aio completes with NNG_ECLOSED */
	if (!fl_nng_close_within(r->sock, CLOSE_WAIT_MS)) {
		/* its contexts are closed; nng may still call back into r */
		fl_log_warn(r->name,
		            "nng could not close the endpoint '%s' (nng issue #1518): "
		            "leaving it to the process's exit",
		            r->url);
		fl_nng_abandon(r);
		return;
	}
	for (size_t i = 0; i < r->n_slots; i++)
		nng_aio_stop(r->slots[i]->aio); /* waits for its callback */
	for (size_t i = 0; i < r->n_slots; i++) {
		nng_msg_free(nng_aio_get_msg(r->slots[i]->aio));
		nng_aio_free(r->slots[i]->aio);
		free(r->slots[i]);
	}
	free(r->slots);
	pthread_mutex_destroy(&r->mtx);
	pthread_cond_destroy(&r->cond);
	pthread_cond_destroy(&r->watchdog_cond);
	free(r->name);
	free(r->url);
	free(r);
}

size_t fl_rep_busy(struct fl_rep *r)
{
	size_t n;

	pthread_mutex_lock(&r->mtx);
	n = r->busy;
	pthread_mutex_unlock(&r->mtx);
	return n;
}

size_t fl_rep_contexts(struct fl_rep *r)
{
	size_t n;

	pthread_mutex_lock(&r->mtx);
	n = r->n_slots;
	pthread_mutex_unlock(&r->mtx);
	return n;
}
