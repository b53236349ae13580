/* The request side of the wire: one sealed request, one checked reply (client.h). */
#include "client.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "keys.h"
#include "mem.h"
#include "nng_quirks.h"
#include "rpc.h"
#include "wire.h"

/* Replies may carry a whole release (ReleaseBundleReply). */
#define REPLY_MAX FL_ENVELOPE_MAX_SIZE_BUNDLE

struct fl_client {
	struct fl_envelope *ep;
	char *url;
	nng_socket sock;
	nng_dialer dialer;    /* replaced under mtx (redial) */
	bool dialer_may_stop; /* see redial */
	uint8_t keys[FL_CLIENT_MAX_KEYS][FL_PEER_KEY_LEN];
	size_t n_keys;
	atomic_size_t cur;   /* index of the key requests are sealed for */
	atomic_bool closed;  /* fl_client_close ran; set under ctx_mtx */
	bool stuck;          /* nng could not close the socket (nng_quirks.h) */
	pthread_mutex_t mtx; /* sealing and handing to nng happen in one order */
	/* The socket is closed only with no request under way: nng 1.5.2 may
	 * panic in its own threads ("pthread_mutex_unlock: Invalid argument",
	 * an agent's SIGTERM in CI) when nng_close meets contexts with an aio
	 * in progress. fl_client_close sets closed, cancels what is listed
	 * here, waits for the list to empty, then closes; no context call is
	 * made once closed is set. All under ctx_mtx. */
	pthread_mutex_t ctx_mtx;
	pthread_cond_t idle;  /* the list emptied */
	struct xchg **active; /* requests with a context open */
	size_t n_active, cap_active;
	int pipes; /* connections up, under mtx */
};

/* One request on the wire: a context and an aio of its own. */
struct xchg {
	nng_ctx ctx;
	nng_aio *aio;
	bool open;
};

static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct fl_client *c = arg;

	(void)p;
	pthread_mutex_lock(&c->mtx);
	if (ev == NNG_PIPE_EV_ADD_POST)
		c->pipes++;
	else if (ev == NNG_PIPE_EV_REM_POST && c->pipes > 0)
		c->pipes--;
	pthread_mutex_unlock(&c->mtx);
}

int fl_client_connected(struct fl_client *c)
{
	int n;

	pthread_mutex_lock(&c->mtx);
	n = c->pipes;
	pthread_mutex_unlock(&c->mtx);
	return n > 0;
}

static enum fl_err nng_fail(char *errbuf, const char *what, const char *url, int rv)
{
	return fl_errf(errbuf, FL_EIO, "cannot %s '%s': %s", what, url, nng_strerror(rv));
}

/* A dialer nng may have given up on (fl_nng_handshake_close_is_fatal) is
 * replaced when a request found no connection within its deadline. Closing
 * the old one waits for its connect callback, which runs pipe_event: so
 * never with c->mtx held (that hung an agent; check_client). */
static void redial(struct fl_client *c)
{
	nng_dialer d, old;

	if (!c->dialer_may_stop || atomic_load(&c->closed))
		return;
	if (nng_dial(c->sock, c->url, &d, NNG_FLAG_NONBLOCK) != 0)
		return;
	pthread_mutex_lock(&c->mtx);
	old = c->dialer;
	c->dialer = d;
	pthread_mutex_unlock(&c->mtx);
	nng_dialer_close(old);
}

enum fl_err fl_client_new(struct fl_envelope *ep, const char *url,
                          const uint8_t (*keys)[FL_PEER_KEY_LEN], size_t n_keys,
                          struct fl_client **out, char *errbuf)
{
	struct fl_client *c;
	int rv;

	*out = NULL;
	if (url == NULL || *url == '\0')
		return fl_errf(errbuf, FL_EINVAL, "no coordinator URL");
	if (n_keys == 0 || n_keys > FL_CLIENT_MAX_KEYS)
		return fl_errf(errbuf, FL_EINVAL, "%zu coordinator keys: expected 1 to %d", n_keys,
		               FL_CLIENT_MAX_KEYS);
	c = fl_calloc(1, sizeof(*c));
	c->ep = ep;
	c->url = fl_strdup(url);
	memcpy(c->keys, keys, n_keys * FL_PEER_KEY_LEN);
	c->n_keys = n_keys;
	atomic_init(&c->cur, 0);
	atomic_init(&c->closed, false);
	pthread_mutex_init(&c->mtx, NULL);
	pthread_mutex_init(&c->ctx_mtx, NULL);
	pthread_cond_init(&c->idle, NULL);

	if ((rv = nng_req0_open(&c->sock)) != 0) {
		pthread_cond_destroy(&c->idle);
		pthread_mutex_destroy(&c->ctx_mtx);
		pthread_mutex_destroy(&c->mtx);
		free(c->url);
		free(c);
		return fl_errf(errbuf, FL_EIO, "cannot open a request socket: %s",
		               nng_strerror(rv));
	}
	/* Off: a byte-identical resend is refused as a replay (docs/WIRE.md). */
	if ((rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, REPLY_MAX)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 100)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 5000)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_event, c)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_event, c)) != 0) {
		fl_client_free(c);
		return fl_errf(errbuf, FL_EIO, "cannot set up a request socket: %s",
		               nng_strerror(rv));
	}
	c->dialer_may_stop = fl_nng_handshake_close_is_fatal(url);
	if ((rv = nng_dial(c->sock, url, &c->dialer, NNG_FLAG_NONBLOCK)) != 0) {
		enum fl_err e = rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL
		                    ? fl_errf(errbuf, FL_EINVAL, "bad coordinator URL '%s': %s",
		                              url, nng_strerror(rv))
		                    : nng_fail(errbuf, "dial", url, rv);
		fl_client_free(c);
		return e;
	}
	*out = c;
	return FL_OK;
}

/* How long a close may take: nng 1.5.2 can wait forever on a dialer its
 * issue #1518 left behind (nng_quirks.h); an agent must still stop. */
#define CLOSE_WAIT_MS 5000

void fl_client_close(struct fl_client *c)
{
	struct timespec until = fl_timespec_in(CLOCK_REALTIME, CLOSE_WAIT_MS);
	bool was;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->ctx_mtx);
	was = atomic_exchange(&c->closed, true);
	for (size_t i = 0; !was && i < c->n_active; i++)
		nng_aio_cancel(c->active[i]->aio);
	/* each ends with NNG_ECANCELED and leaves the list (xchg_close) */
	while (!was && c->n_active > 0 &&
	       pthread_cond_timedwait(&c->idle, &c->ctx_mtx, &until) == 0)
		;
	pthread_mutex_unlock(&c->ctx_mtx);
	if (!was && !fl_nng_close_within(c->sock, CLOSE_WAIT_MS))
		c->stuck = true;
}

void fl_client_free(struct fl_client *c)
{
	if (c == NULL)
		return;
	fl_client_close(c);
	if (c->stuck) { /* nng may still call pipe_event on it */
		fl_nng_abandon(c);
		return;
	}
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->ctx_mtx);
	pthread_mutex_destroy(&c->mtx);
	free(c->active);
	free(c->url);
	free(c);
}

void fl_client_current_key(struct fl_client *c, uint8_t pk[FL_PEER_KEY_LEN])
{
	memcpy(pk, c->keys[atomic_load(&c->cur) % c->n_keys], FL_PEER_KEY_LEN);
}

static int64_t remaining(int64_t deadline)
{
	int64_t left = deadline - fl_now_ms();

	return left > 0 ? left : 0;
}

/* Ends x whole under ctx_mtx: fl_client_close may be cancelling its aio. */
static void xchg_close(struct fl_client *c, struct xchg *x)
{
	pthread_mutex_lock(&c->ctx_mtx);
	if (x->aio != NULL) {
		nng_aio_stop(x->aio);
		nng_msg_free(nng_aio_get_msg(x->aio)); /* a send that never went */
		nng_aio_set_msg(x->aio, NULL);
		nng_aio_free(x->aio);
		x->aio = NULL;
	}
	if (x->open) { /* before the socket closes: fl_client_close waits for it */
		nng_ctx_close(x->ctx);
		for (size_t i = 0; i < c->n_active; i++)
			if (c->active[i] == x) {
				c->active[i] = c->active[--c->n_active];
				break;
			}
		if (c->n_active == 0)
			pthread_cond_broadcast(&c->idle);
	}
	x->open = false;
	pthread_mutex_unlock(&c->ctx_mtx);
}

/* Hand data to nng on a new context: the caller holds c->mtx, so requests
 * reach the wire in the order they were sealed. */
static enum fl_err xchg_start(struct fl_client *c, struct xchg *x, const void *data, size_t len,
                              int64_t deadline, char *errbuf)
{
	nng_msg *msg;
	int rv;

	memset(x, 0, sizeof(*x));
	if ((rv = nng_aio_alloc(&x->aio, NULL, NULL)) != 0 || (rv = nng_msg_alloc(&msg, 0)) != 0) {
		xchg_close(c, x);
		return nng_fail(errbuf, "send to", c->url, rv);
	}
	if ((rv = nng_msg_append(msg, data, len)) != 0) {
		nng_msg_free(msg);
		xchg_close(c, x);
		return nng_fail(errbuf, "send to", c->url, rv);
	}
	pthread_mutex_lock(&c->ctx_mtx);
	rv = atomic_load(&c->closed) ? NNG_ECLOSED : nng_ctx_open(&x->ctx, c->sock);
	x->open = rv == 0;
	if (rv == 0) {
		c->active = fl_grow(c->active, &c->cap_active, c->n_active + 1, sizeof(*c->active));
		c->active[c->n_active++] = x;
		rv = nng_ctx_set_ms(x->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	}
	if (rv == 0) {
		nng_aio_set_msg(x->aio, msg);
		nng_aio_set_timeout(x->aio, (nng_duration)remaining(deadline));
		nng_ctx_send(x->ctx, x->aio);
	}
	pthread_mutex_unlock(&c->ctx_mtx);
	if (rv != 0) {
		nng_msg_free(msg);
		xchg_close(c, x);
		return rv == NNG_ECLOSED
		           ? fl_errf(errbuf, FL_ECANCELED, "request to '%s' canceled", c->url)
		           : nng_fail(errbuf, "open a context to", c->url, rv);
	}
	return FL_OK;
}

/* Wait for the send, then the reply, into reply. Closes x either way. */
static enum fl_err xchg_finish(struct fl_client *c, struct xchg *x, int64_t deadline,
                               struct fl_buf *reply, char *errbuf)
{
	enum fl_err e = FL_OK;
	bool closed;
	nng_msg *msg;
	int rv;

	nng_aio_wait(x->aio);
	if ((rv = nng_aio_result(x->aio)) != 0) {
		if (rv == NNG_ETIMEDOUT) {
			e = fl_errf(
			    errbuf, FL_ECONNECT,
			    "coordinator unreachable at '%s': no connection within the deadline",
			    c->url);
			redial(c);
		} else if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			e = fl_errf(errbuf, FL_ECANCELED, "request to '%s' canceled", c->url);
		else
			e = nng_fail(errbuf, "send to", c->url, rv);
		goto out;
	}
	nng_aio_set_timeout(x->aio, (nng_duration)remaining(deadline));
	pthread_mutex_lock(&c->ctx_mtx);
	closed = atomic_load(&c->closed);
	if (!closed)
		nng_ctx_recv(x->ctx, x->aio);
	pthread_mutex_unlock(&c->ctx_mtx);
	if (closed) {
		e = fl_errf(errbuf, FL_ECANCELED, "request to '%s' canceled", c->url);
		goto out;
	}
	nng_aio_wait(x->aio);
	if ((rv = nng_aio_result(x->aio)) != 0) {
		if (rv == NNG_ETIMEDOUT && !fl_client_connected(c))
			e = fl_errf(errbuf, FL_ECONNECT,
			            "coordinator unreachable at '%s': connection lost, no reply",
			            c->url);
		else if (rv == NNG_ETIMEDOUT)
			e = fl_errf(errbuf, FL_ETIMEDOUT, "no reply from '%s' within the deadline",
			            c->url);
		else if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			e = fl_errf(errbuf, FL_ECANCELED, "request to '%s' canceled", c->url);
		else
			e = nng_fail(errbuf, "receive from", c->url, rv);
		goto out;
	}
	msg = nng_aio_get_msg(x->aio);
	nng_aio_set_msg(x->aio, NULL);
	fl_buf_reset(reply);
	if (fl_buf_append(reply, nng_msg_body(msg), nng_msg_len(msg)) != FL_OK)
		e = fl_errf(errbuf, FL_EPARSE, "reply from '%s' is too large", c->url);
	nng_msg_free(msg);
out:
	xchg_close(c, x);
	return e;
}

enum fl_err fl_client_send_raw(struct fl_client *c, const void *data, size_t len,
                               int64_t timeout_ms, struct fl_buf *reply, char *errbuf)
{
	int64_t deadline = fl_now_ms() + timeout_ms;
	struct xchg x;
	enum fl_err rv;

	pthread_mutex_lock(&c->mtx);
	rv = xchg_start(c, &x, data, len, deadline, errbuf);
	pthread_mutex_unlock(&c->mtx);
	if (rv != FL_OK)
		return rv;
	return xchg_finish(c, &x, deadline, reply, errbuf);
}

static enum fl_err seal_for(struct fl_client *c, const uint8_t *key,
                            const Flotilla__V1__Message *req, size_t max_request,
                            struct fl_buf *out, uint64_t *seq, char *errbuf)
{
	enum fl_err rv = fl_rpc_seal_request(c->ep, key, req, out, seq, errbuf);

	if (rv == FL_OK && out->len - FL_ENVELOPE_OVERHEAD > max_request) {
		fl_buf_reset(out);
		return fl_errf(errbuf, FL_EINVAL, "a %s of %zu bytes exceeds the limit of %zu",
		               fl_wire_body_name(req->body_case), out->len, max_request);
	}
	return rv;
}

enum fl_err fl_client_seal(struct fl_client *c, const Flotilla__V1__Message *req,
                           size_t max_request, struct fl_buf *out, uint64_t *seq, char *errbuf)
{
	uint8_t key[FL_PEER_KEY_LEN];

	fl_client_current_key(c, key);
	return seal_for(c, key, req, max_request, out, seq, errbuf);
}

/* The one place a reply is checked against its request: it opens, comes from
 * the key we sealed for, decodes as a coordinator's reply, and names our
 * request's sequence number. *reason: the envelope's refusal, if any. */
static enum fl_err open_reply(struct fl_client *c, const uint8_t *key, const void *data, size_t len,
                              uint64_t seq, Flotilla__V1__Message **reply,
                              enum fl_envelope_reason *reason, char *errbuf)
{
	struct fl_envelope_opened o;
	char eb[FL_ERRBUF_SIZE] = "", id[FL_KEY_ID_LEN + 1];
	enum fl_err rv;

	*reply = NULL;
	*reason = FL_ENVELOPE_OK;
	if (fl_envelope_is_refusal(data, len)) {
		fl_key_id(key, id);
		return fl_errf(errbuf, FL_EAUTH,
		               "the coordinator at '%s' (key %s) refused the request", c->url, id);
	}
	fl_envelope_opened_init(&o);
	rv = fl_rpc_open_reply(c->ep, data, len, REPLY_MAX, key, seq, &o, reply, reason, eb);
	if (rv == FL_OK && o.sender.role != FL_PEER_COORDINATOR) {
		fl_wire_free(*reply);
		*reply = NULL;
		rv = fl_errf(eb, FL_EAUTH, "sealed by a key of role '%s'",
		             fl_peer_role_name(o.sender.role));
	}
	fl_envelope_opened_fini(&o);
	if (rv == FL_EAUTH || *reason != FL_ENVELOPE_OK)
		return fl_errf(errbuf, FL_EAUTH, "reply from '%s' refused: %s", c->url, eb);
	if (rv != FL_OK)
		return fl_errf(errbuf, FL_EPARSE, "malformed reply from '%s': %s", c->url, eb);
	return FL_OK;
}

enum fl_err fl_client_open_reply(struct fl_client *c, const void *data, size_t len, uint64_t seq,
                                 Flotilla__V1__Message **reply, char *errbuf)
{
	enum fl_envelope_reason reason;
	uint8_t key[FL_PEER_KEY_LEN];

	fl_client_current_key(c, key);
	return open_reply(c, key, data, len, seq, reply, &reason, errbuf);
}

/* Tries per call: each pinned key once, plus one more (a request overtaken
 * by another of ours is refused as a replay, and goes through sealed anew). */
static size_t attempts(const struct fl_client *c)
{
	return c->n_keys + 1 < FL_CLIENT_ATTEMPTS ? c->n_keys + 1 : FL_CLIENT_ATTEMPTS;
}

enum fl_err fl_client_call(struct fl_client *c, const Flotilla__V1__Message *req,
                           size_t max_request, unsigned flags, int64_t timeout_ms,
                           Flotilla__V1__Message **reply, char *errbuf)
{
	struct fl_buf sealed = FL_BUF_INIT, raw = FL_BUF_INIT;
	int64_t deadline = fl_now_ms() + timeout_ms;
	enum fl_envelope_reason reason;
	uint8_t key[FL_PEER_KEY_LEN];
	enum fl_err rv = FL_ETIMEDOUT;
	struct xchg x;
	uint64_t seq;
	size_t cur;
	bool refused = false;

	*reply = NULL;
	if (timeout_ms <= 0)
		return fl_errf(errbuf, FL_EINVAL, "timeout of %lld ms", (long long)timeout_ms);
	fl_buf_init(&raw, REPLY_MAX);
	for (size_t attempt = 0; attempt < attempts(c); attempt++) {
		if (attempt > 0 && remaining(deadline) == 0)
			break; /* rv and errbuf say why the last try failed */
		refused = false;
		pthread_mutex_lock(&c->mtx);
		cur = atomic_load(&c->cur) % c->n_keys;
		memcpy(key, c->keys[cur], FL_PEER_KEY_LEN);
		rv = seal_for(c, key, req, max_request, &sealed, &seq, errbuf);
		if (rv == FL_OK)
			rv = xchg_start(c, &x, sealed.data, sealed.len, deadline, errbuf);
		pthread_mutex_unlock(&c->mtx);
		if (rv != FL_OK)
			break;
		if ((rv = xchg_finish(c, &x, deadline, &raw, errbuf)) != FL_OK)
			break;
		refused = fl_envelope_is_refusal(raw.data, raw.len);
		rv = open_reply(c, key, raw.data, raw.len, seq, reply, &reason, errbuf);
		if (rv == FL_OK)
			break;
		if (refused) {
			/* The refusal: the coordinator did not act on it. Try the
			 * next pinned key, sealed anew. */
			atomic_compare_exchange_strong(&c->cur, &cur, (cur + 1) % c->n_keys);
			continue;
		}
		if (rv == FL_EAUTH && reason == FL_ENVELOPE_REPLAY &&
		    (flags & FL_CLIENT_IDEMPOTENT))
			continue;
		break;
	}
	fl_buf_fini(&sealed);
	fl_buf_fini(&raw);
	if (rv == FL_EAUTH && refused && (flags & FL_CLIENT_REFUSAL))
		rv = FL_EREFUSED; /* errbuf as it is: "... refused the request" */
	return rv;
}
