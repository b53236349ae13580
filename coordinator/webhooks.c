/* Webhooks on rollout transitions (webhooks.h says how they are queued). */
#include "webhooks.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "file.h"
#include "flotilla.pb-c.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "store_rollouts.h"

#define EVENT_CMD      "webhook_event"
#define RECOVER_MS     (24 * 3600 * INT64_C(1000)) /* events older than this are not resent */
#define PAGE           256
#define MAX_QUEUED     10000 /* deliveries waiting per endpoint; more are given up */
#define BACKOFF_MS     1000
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define SECRET_MAX     4096
#define RESPONSE_MAX   8192
#define SLICE_MS       100 /* waits are cut in slices that watch stop */

/* One delivery of one event to one endpoint. */
struct delivery {
	uint64_t event_id; /* the webhook_event audit entry */
	char *rollout_id;
	char *event; /* its name */
	char *body;  /* the JSON body, signed as it is */
	int attempt; /* tries made */
	int64_t due_ms;
	struct delivery *next;
};

/* What one attempt came to, for the audit log (core thread). */
struct outcome {
	uint64_t event_id;
	char *rollout_id;
	char *command; /* webhook_delivered, webhook_failed, webhook_gave_up */
	char *detail;
	struct outcome *next;
};

struct hook {
	char *url;
	char *host;     /* for connect */
	char *hostport; /* for Host: */
	char *port;
	char *path;
	unsigned char *key; /* sodium_malloc'd */
	size_t keylen;
	uint32_t events; /* bit per fl_coordinator_webhook_events index */
	int attempts;
	int64_t timeout_ms;
	struct delivery *head, *tail; /* in order: the head goes first */
	size_t queued;
};

struct fl_webhooks {
	struct fl_store *st; /* from fl_webhooks_start (core thread) */
	struct hook *hooks;
	size_t n;
	uint64_t cursor; /* audit entries up to here were looked at */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;              /* new work, or stop */
	atomic_bool stop;               /* also read by a POST under way, unlocked */
	struct outcome *out, *out_tail; /* under mu */
};

/* ---- events ---- */

static int event_index(const char *name)
{
	for (int i = 0; fl_coordinator_webhook_events[i] != NULL; i++)
		if (strcmp(fl_coordinator_webhook_events[i], name) == 0)
			return i;
	return -1;
}

/* The event a transition is, or NULL when webhooks do not tell it. */
static const char *event_of(const struct fl_scheduler_transition *t)
{
	if (t->wave != NULL) {
		switch (t->new_state) {
		case FLOTILLA__V1__WAVE_STATE__WAVE_STATE_RUNNING:
			return t->old_state == FLOTILLA__V1__WAVE_STATE__WAVE_STATE_PENDING
			           ? "wave_started"
			           : NULL;
		case FLOTILLA__V1__WAVE_STATE__WAVE_STATE_COMPLETED:
			return "wave_completed";
		case FLOTILLA__V1__WAVE_STATE__WAVE_STATE_FAILED:
			return "wave_failed";
		case FLOTILLA__V1__WAVE_STATE__WAVE_STATE_AWAITING_PROMOTE:
			return "gate_waiting";
		default:
			return NULL;
		}
	}
	switch (t->new_state) {
	case FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_RUNNING:
		return t->old_state == FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_PENDING
		           ? "started"
		           : "resumed";
	case FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_PAUSED:
		return "paused";
	case FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_HALTED:
		return "halted";
	case FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_ROLLING_BACK:
		return "rolling_back";
	case FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_ROLLED_BACK:
		return "rolled_back";
	case FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_COMPLETED:
		return "completed";
	default:
		return NULL;
	}
}

/* The CLI's spelling of a state (its --json output's). */
static const char *rollout_state_name(int s)
{
	static const char *const names[] = {"unspecified",  "pending",    "running",
	                                    "paused",       "completed",  "halted",
	                                    "rolling-back", "rolled-back"};
	return s >= 0 && s < (int)(sizeof(names) / sizeof(names[0])) ? names[s] : "unknown";
}

static const char *wave_state_name(int s)
{
	static const char *const names[] = {"unspecified",      "pending",   "running", "baking",
	                                    "awaiting-promote", "completed", "failed"};
	return s >= 0 && s < (int)(sizeof(names) / sizeof(names[0])) ? names[s] : "unknown";
}

/* Tenants by state, as enum fl_sched_tenant_state numbers them. */
static const char *const tenant_states[FL_SCHED_TENANT_STATES] = {
    NULL,      "pending",     "assigned", "applied",   "failed",
    "skipped", "unreachable", "busy",     "reverting", "rolled_back",
};

static void put_counts(struct fl_buf *b, const uint32_t *counts)
{
	bool first = true;

	fl_buf_puts(b, "{");
	for (int k = 1; k < FL_SCHED_TENANT_STATES; k++) {
		if (tenant_states[k] == NULL)
			continue;
		fl_buf_printf(b, "%s\"%s\":%" PRIu32, first ? "" : ",", tenant_states[k],
		              counts[k]);
		first = false;
	}
	fl_buf_puts(b, "}");
}

static void put_time(struct fl_buf *b, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char text[32];

	gmtime_r(&secs, &tm);
	strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
	fl_buf_printf(b, "\"%s.%03dZ\"", text, (int)(ms % 1000));
}

/* The body: what happened, to which rollout and wave, the counts, when. */
static char *body_of(const struct fl_scheduler_transition *t, const char *event)
{
	struct fl_buf b;

	fl_buf_init(&b, 64 * 1024);
	fl_buf_puts(&b, "{\"event\":");
	fl_json_string(&b, event);
	fl_buf_puts(&b, ",\"rollout_id\":");
	fl_json_string(&b, t->rollout_id);
	fl_buf_printf(&b, ",\"state\":\"%s\",\"reason\":", rollout_state_name(t->rollout_state));
	fl_json_string(&b, t->reason);
	if (t->wave != NULL) {
		fl_buf_printf(&b, ",\"wave\":{\"index\":%" PRIu32 ",\"name\":", t->wave->idx);
		fl_json_string(&b, t->wave->name ? t->wave->name : "");
		fl_buf_printf(&b, ",\"state\":\"%s\",\"reason\":", wave_state_name(t->new_state));
		fl_json_string(&b, t->wave->state_reason ? t->wave->state_reason : "");
		fl_buf_puts(&b, ",\"tenants\":");
		put_counts(&b, t->counts);
		fl_buf_puts(&b, "}");
	} else {
		fl_buf_printf(&b, ",\"current_wave\":%" PRIu32 ",\"tenants\":", t->current_wave);
		put_counts(&b, t->counts);
	}
	fl_buf_printf(&b,
	              ",\"waves\":%" PRIu32 ",\"tenants_total\":%" PRIu32 ",\"time\":", t->n_waves,
	              t->tenants_total);
	put_time(&b, t->at_ms);
	fl_buf_printf(&b, ",\"at_ms\":%" PRId64 "}", t->at_ms);
	return fl_buf_detach(&b);
}

enum fl_err fl_webhooks_transition(void *arg, const struct fl_scheduler_transition *t, char *errbuf)
{
	struct fl_webhooks *wh = arg;
	const char *event = event_of(t);
	char *body = NULL;
	enum fl_err e = FL_OK;
	int k;

	if (event == NULL || (k = event_index(event)) < 0)
		return FL_OK;
	/* one entry per endpoint that wants it: "to 'URL': BODY" */
	for (size_t i = 0; i < wh->n && e == FL_OK; i++) {
		struct fl_store_audit a = {0};
		struct fl_buf d;

		if ((wh->hooks[i].events & (1u << k)) == 0)
			continue;
		if (body == NULL)
			body = body_of(t, event);
		fl_buf_init(&d, 0);
		fl_buf_printf(&d, "to '%s': %s", wh->hooks[i].url, body);
		a.at_ms = t->at_ms;
		a.actor_key_id = "";
		a.actor_name = "coordinator";
		a.role = FLOTILLA__V1__ROLE__ROLE_COORDINATOR;
		a.command = EVENT_CMD;
		a.subject = (char *)t->rollout_id;
		a.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
		a.detail = (char *)fl_buf_str(&d);
		e = fl_store_audit_add(wh->st, &a, NULL, errbuf);
		fl_buf_fini(&d);
	}
	free(body);
	return e;
}

/* ---- the queue ---- */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	struct fl_buf b;
	va_list ap;

	fl_buf_init(&b, 0);
	va_start(ap, f);
	fl_buf_vprintf(&b, f, ap);
	va_end(ap);
	return fl_buf_detach(&b);
}

static void delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	free(d->rollout_id);
	free(d->event);
	free(d->body);
	free(d);
}

static void outcome_push(struct fl_webhooks *wh, const struct delivery *d, const char *command,
                         char *detail)
{
	struct outcome *o = fl_calloc(1, sizeof(*o));

	o->event_id = d->event_id;
	o->rollout_id = fl_strdup(d->rollout_id);
	o->command = fl_strdup(command);
	o->detail = detail;
	if (wh->out_tail != NULL)
		wh->out_tail->next = o;
	else
		wh->out = o;
	wh->out_tail = o;
}

/* Queue the event of a webhook_event entry ("to 'URL': BODY") for its
 * endpoint, if that is still configured. Core thread; takes mu. Returns
 * whether it was queued. */
static bool enqueue(struct fl_webhooks *wh, uint64_t event_id, const char *rollout_id,
                    const char *detail)
{
	char name[64] = "";
	const char *body, *p;
	struct hook *h = NULL;
	struct delivery *d;
	bool queued = false;

	if (strncmp(detail, "to '", 4) != 0 || (body = strstr(detail, "': {\"event\":\"")) == NULL)
		goto bad;
	for (size_t i = 0; i < wh->n && h == NULL; i++)
		if (strlen(wh->hooks[i].url) == (size_t)(body - detail - 4) &&
		    strncmp(detail + 4, wh->hooks[i].url, (size_t)(body - detail - 4)) == 0)
			h = &wh->hooks[i];
	if (h == NULL)
		return false; /* an endpoint no longer configured */
	body += 3;
	p = body + 10; /* body_of writes the event first */
	if (strcspn(p, "\"") >= sizeof(name))
		goto bad;
	memcpy(name, p, strcspn(p, "\""));
	name[strcspn(p, "\"")] = '\0';
	if (event_index(name) < 0)
		goto bad;
	d = fl_calloc(1, sizeof(*d));
	d->event_id = event_id;
	d->rollout_id = fl_strdup(rollout_id);
	d->event = fl_strdup(name);
	d->body = fl_strdup(body);
	pthread_mutex_lock(&wh->mu);
	if (h->queued >= MAX_QUEUED) {
		outcome_push(wh, d, "webhook_gave_up",
		             fmt("event %" PRIu64 " '%s' to '%s': %zu deliveries queued already; "
		                 "giving up",
		                 event_id, name, h->url, h->queued));
		delivery_free(d);
	} else {
		if (h->tail != NULL)
			h->tail->next = d;
		else
			h->head = d;
		h->tail = d;
		h->queued++;
		queued = true;
	}
	pthread_cond_signal(&wh->cv);
	pthread_mutex_unlock(&wh->mu);
	return queued;
bad:
	fl_log_warn(rollout_id, "webhooks: audit entry %" PRIu64 " is no event; skipped", event_id);
	return false;
}

/* ---- HTTP ---- */

/* Wait for fd to be ready for events, in slices that watch stop, until
 * deadline (monotonic ms). 0 ready, -1 with *why set. */
static int wait_fd(struct fl_webhooks *wh, int fd, short events, int64_t deadline, const char **why)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int64_t left = deadline - fl_now_ms();
		int rc;

		if (atomic_load(&wh->stop)) {
			*why = "stopping";
			return -1;
		}
		if (left <= 0) {
			*why = "timed out";
			return -1;
		}
		rc = poll(&p, 1, (int)(left < SLICE_MS ? left : SLICE_MS));
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR) {
			*why = "poll failed";
			return -1;
		}
	}
}

static int dial(struct fl_webhooks *wh, const struct hook *h, int64_t deadline, char *why,
                size_t whylen)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	int fd = -1, rc;
	char eb[128];

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	rc = getaddrinfo(h->host, h->port, &hints, &res); /* not bounded: the resolver's */
	if (rc != 0) {
		snprintf(why, whylen, "cannot resolve '%s': %s", h->host, gai_strerror(rc));
		return -1;
	}
	snprintf(why, whylen, "cannot connect");
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		const char *w = NULL;
		int err = 0;
		socklen_t len = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		            ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && wait_fd(wh, fd, POLLOUT, deadline, &w) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
			break;
		snprintf(why, whylen, "cannot connect: %s",
		         w ? w : fl_err_errno(err ? err : errno, eb, sizeof(eb)));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		why[0] = '\0';
	return fd;
}

/* POST d to h: the HTTP status, or -1 with why. */
static int post(struct fl_webhooks *wh, const struct hook *h, const struct delivery *d, char *why,
                size_t whylen)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char hex[2 * sizeof(mac) + 1], resp[RESPONSE_MAX + 1], eb[128];
	crypto_auth_hmacsha256_state st;
	int64_t deadline = fl_now_ms() + h->timeout_ms;
	size_t body_len = strlen(d->body), sent = 0, got = 0;
	struct fl_buf req;
	const char *w = NULL;
	int fd, status = -1;

	crypto_auth_hmacsha256_init(&st, h->key, h->keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)d->body, body_len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));

	fl_buf_init(&req, 0);
	fl_buf_printf(&req,
	              "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: flotilla-coordinator/%s\r\n"
	              "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	              "X-Flotilla-Event: %s\r\nX-Flotilla-Event-Id: %" PRIu64 "\r\n"
	              "X-Flotilla-Signature: sha256=%s\r\nConnection: close\r\n\r\n",
	              h->path, h->hostport, FL_VERSION, body_len, d->event, d->event_id, hex);
	fl_buf_append(&req, d->body, body_len);

	fd = dial(wh, h, deadline, why, whylen);
	if (fd < 0)
		goto out;
	while (sent < req.len) {
		ssize_t n = send(fd, req.data + sent, req.len - sent, MSG_NOSIGNAL);

		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(wh, fd, POLLOUT, deadline, &w) != 0) {
				snprintf(why, whylen, "sending: %s", w);
				goto out;
			}
			continue;
		}
		snprintf(why, whylen, "sending: %s", fl_err_errno(errno, eb, sizeof(eb)));
		goto out;
	}
	/* the status line is all we need; read up to the end of the headers */
	while (got < RESPONSE_MAX) {
		ssize_t n = recv(fd, resp + got, RESPONSE_MAX - got, 0);

		if (n > 0) {
			got += (size_t)n;
			resp[got] = '\0';
			if (strstr(resp, "\r\n\r\n") != NULL)
				break;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EAGAIN || errno == EINTR) {
			if (wait_fd(wh, fd, POLLIN, deadline, &w) != 0) {
				snprintf(why, whylen, "waiting for the answer: %s", w);
				goto out;
			}
			continue;
		}
		snprintf(why, whylen, "reading the answer: %s",
		         fl_err_errno(errno, eb, sizeof(eb)));
		goto out;
	}
	resp[got] = '\0';
	if (got < 12 || strncmp(resp, "HTTP/1.", 7) != 0 || resp[8] != ' ' ||
	    sscanf(resp + 9, "%3d", &status) != 1 || status < 100 || status > 599) {
		snprintf(why, whylen, "not an HTTP answer");
		status = -1;
	}
out:
	if (fd >= 0)
		close(fd);
	fl_buf_fini(&req);
	return status;
}

/* ---- the sender thread ---- */

static int64_t backoff(int attempt)
{
	int64_t ms = BACKOFF_MS;

	for (int i = 1; i < attempt && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* The endpoint whose head delivery is due first, or NULL. mu held. */
static struct hook *next_hook(struct fl_webhooks *wh)
{
	struct hook *best = NULL;

	for (size_t i = 0; i < wh->n; i++)
		if (wh->hooks[i].head != NULL &&
		    (best == NULL || wh->hooks[i].head->due_ms < best->head->due_ms))
			best = &wh->hooks[i];
	return best;
}

static void *sender_main(void *arg)
{
	struct fl_webhooks *wh = arg;

	pthread_mutex_lock(&wh->mu);
	while (!atomic_load(&wh->stop)) {
		struct hook *h = next_hook(wh);
		struct delivery *d;
		int64_t now = fl_now_ms();
		char why[256] = "", *detail = NULL;
		const char *command;
		int status;

		if (h == NULL || h->head->due_ms > now) {
			int64_t until = h ? h->head->due_ms : now + 60000;
			/* the cond's clock */
			struct timespec ts = fl_timespec_in(CLOCK_MONOTONIC, until - now);

			pthread_cond_timedwait(&wh->cv, &wh->mu, &ts);
			continue;
		}
		d = h->head; /* stays the head while it is tried: order per endpoint */
		pthread_mutex_unlock(&wh->mu);
		status = post(wh, h, d, why, sizeof(why));
		pthread_mutex_lock(&wh->mu);
		if (atomic_load(&wh->stop))
			break; /* not audited: sent again at the next start */
		d->attempt++;
		if (status >= 200 && status < 300)
			command = "webhook_delivered";
		else if (d->attempt < h->attempts)
			command = "webhook_failed";
		else
			command = "webhook_gave_up";
		if (status > 0 && why[0] == '\0')
			snprintf(why, sizeof(why), "HTTP %d", status);
		if (strcmp(command, "webhook_failed") == 0) {
			d->due_ms = fl_now_ms() + backoff(d->attempt);
			detail =
			    fmt("event %" PRIu64 " '%s' to '%s': attempt %d of %d: %s; next in "
			        "%" PRId64 "ms",
			        d->event_id, d->event, h->url, d->attempt, h->attempts, why,
			        backoff(d->attempt));
		} else
			detail = fmt("event %" PRIu64 " '%s' to '%s': attempt %d of %d: %s%s",
			             d->event_id, d->event, h->url, d->attempt, h->attempts, why,
			             strcmp(command, "webhook_gave_up") == 0 ? "; giving up" : "");
		if (strcmp(command, "webhook_delivered") == 0)
			fl_log_info(d->rollout_id, "webhook: %s", detail);
		else
			fl_log_warn(d->rollout_id, "webhook: %s", detail);
		outcome_push(wh, d, command, detail);
		if (strcmp(command, "webhook_failed") != 0) {
			h->head = d->next;
			if (h->head == NULL)
				h->tail = NULL;
			h->queued--;
			delivery_free(d);
		}
	}
	pthread_mutex_unlock(&wh->mu);
	return NULL;
}

/* ---- setting up ---- */

/* http://host[:port]/path into its parts (the config checked the scheme). */
static enum fl_err parse_url(struct hook *h, char *errbuf)
{
	const char *rest = h->url + 7, *slash = strchr(rest, '/'), *colon;
	size_t hostport = slash ? (size_t)(slash - rest) : strlen(rest);
	char *hp = fl_strndup(rest, hostport);

	h->hostport = fl_strdup(hp);
	h->path = fl_strdup(slash ? slash : "/");
	if (hp[0] == '[') { /* [v6]:port */
		char *end = strchr(hp, ']');

		if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
			free(hp);
			return fl_errf(errbuf, FL_EINVAL, "webhook '%s': bad address", h->url);
		}
		h->host = fl_strndup(hp + 1, (size_t)(end - hp - 1));
		h->port = fl_strdup(end[1] == ':' ? end + 2 : "80");
	} else if ((colon = strrchr(hp, ':')) != NULL) {
		h->host = fl_strndup(hp, (size_t)(colon - hp));
		h->port = fl_strdup(colon + 1);
	} else {
		h->host = fl_strdup(hp);
		h->port = fl_strdup("80");
	}
	free(hp);
	if (h->host[0] == '\0' || h->port[0] == '\0' ||
	    strspn(h->port, "0123456789") != strlen(h->port))
		return fl_errf(errbuf, FL_EINVAL, "webhook '%s': bad host or port", h->url);
	return FL_OK;
}

static enum fl_err read_secret(struct hook *h, const char *path, char *errbuf)
{
	unsigned char buf[SECRET_MAX + 1];
	struct stat sb;
	size_t len = 0;
	enum fl_err e;
	int fd;

	if ((e = fl_file_open(path, FL_FILE_REGULAR, &fd, &sb, errbuf)) != FL_OK)
		return e;
	if ((sb.st_mode & 077) != 0) {
		close(fd);
		return fl_errf(errbuf, FL_EINVAL,
		               "'%s': readable by others (mode %04o); it holds a webhook secret: "
		               "chmod 600 it",
		               path, (unsigned)(sb.st_mode & 07777));
	}
	e = fl_file_read_fd(fd, path, buf, sizeof(buf), &len, errbuf);
	close(fd);
	if (e != FL_OK)
		goto out;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len == 0 || len > SECRET_MAX) {
		e = fl_errf(errbuf, FL_EINVAL, "'%s': a webhook secret is 1 byte to 4 KiB", path);
		goto out;
	}
	h->key = sodium_malloc(len);
	if (h->key == NULL)
		abort();
	memcpy(h->key, buf, len);
	h->keylen = len;
out:
	sodium_memzero(buf, sizeof(buf));
	return e;
}

enum fl_err fl_webhooks_new(const struct fl_coordinator_config *cfg, struct fl_webhooks **out,
                            char *errbuf)
{
	const struct fl_coordinator_webhook *items = cfg->webhooks.items;
	struct fl_webhooks *wh = fl_calloc(1, sizeof(*wh));
	pthread_condattr_t ca;
	enum fl_err e = FL_OK;

	*out = NULL;
	pthread_mutex_init(&wh->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wh->cv, &ca);
	pthread_condattr_destroy(&ca);
	wh->n = cfg->webhooks.n;
	wh->hooks = fl_calloc(wh->n ? wh->n : 1, sizeof(*wh->hooks));
	for (size_t i = 0; i < wh->n && e == FL_OK; i++) {
		struct hook *h = &wh->hooks[i];

		h->url = fl_strdup(items[i].url);
		h->attempts = (int)items[i].attempts;
		h->timeout_ms = items[i].timeout_ms;
		for (size_t k = 0; k < items[i].events.n; k++)
			h->events |= 1u << event_index(items[i].events.items[k]);
		if (items[i].events.n == 0)
			for (int k = 0; fl_coordinator_webhook_events[k] != NULL; k++)
				h->events |= 1u << k;
		if ((e = parse_url(h, errbuf)) == FL_OK)
			e = read_secret(h, items[i].secret_file, errbuf);
		if (e != FL_OK)
			fl_err_prefix(errbuf, "webhooks[%zu]", i);
	}
	if (e != FL_OK) {
		fl_webhooks_free(wh);
		return e;
	}
	*out = wh;
	return FL_OK;
}

/* "event ID 'NAME' to 'URL': ...": the event's id. */
static bool parse_outcome(const char *detail, uint64_t *event_id)
{
	char *end;

	if (strncmp(detail, "event ", 6) != 0)
		return false;
	*event_id = strtoull(detail + 6, &end, 10);
	return end != detail + 6 && *end == ' ';
}

struct pending {
	uint64_t id;
	char *rollout_id, *detail;
	bool done; /* its endpoint finished with it */
};

enum fl_err fl_webhooks_start(struct fl_webhooks *wh, struct fl_store *st, int64_t now_ms,
                              char *errbuf)
{
	struct pending *ev = NULL;
	size_t n_ev = 0, cap = 0, requeued = 0;
	uint64_t after = 0;
	enum fl_err e = FL_OK;

	wh->st = st;
	for (;;) { /* the last 24 hours of the audit log, page by page */
		struct fl_store_audit *items = NULL;
		size_t n = 0;

		if ((e = fl_store_audit_query(st, now_ms - RECOVER_MS, after, "", PAGE, &items, &n,
		                              errbuf)) != FL_OK)
			goto out;
		for (size_t i = 0; i < n; i++) {
			const struct fl_store_audit *a = &items[i];
			uint64_t id;

			after = a->id;
			if (strcmp(a->command, EVENT_CMD) == 0) {
				if (n_ev == cap) {
					cap = cap ? 2 * cap : 64;
					ev = fl_realloc(ev, cap * sizeof(*ev));
				}
				ev[n_ev].id = a->id;
				ev[n_ev].rollout_id = fl_strdup(a->subject);
				ev[n_ev].detail = fl_strdup(a->detail);
				ev[n_ev++].done = false;
			} else if ((strcmp(a->command, "webhook_delivered") == 0 ||
			            strcmp(a->command, "webhook_gave_up") == 0) &&
			           parse_outcome(a->detail, &id)) {
				for (size_t j = n_ev; j-- > 0;)
					if (ev[j].id == id) {
						ev[j].done = true;
						break;
					}
			}
		}
		fl_store_audits_free(items, n);
		if (n < PAGE)
			break;
	}
	/* entries before the window are never looked at again (the tick's
	 * query starts at it too) */
	wh->cursor = after;
	for (size_t i = 0; i < n_ev; i++)
		requeued += !ev[i].done && enqueue(wh, ev[i].id, ev[i].rollout_id, ev[i].detail);
	if (requeued > 0)
		fl_log_info("webhooks",
		            "%zu event%s of the last 24 hours not yet delivered: queued", requeued,
		            requeued == 1 ? "" : "s");
	if (pthread_create(&wh->thread, NULL, sender_main, wh) != 0)
		abort();
	wh->started = true;
out:
	for (size_t i = 0; i < n_ev; i++) {
		free(ev[i].rollout_id);
		free(ev[i].detail);
	}
	free(ev);
	return e;
}

enum fl_err fl_webhooks_tick(struct fl_webhooks *wh, struct fl_store *st, int64_t now_ms,
                             char *errbuf)
{
	struct outcome *o, *next;
	enum fl_err e = FL_OK;

	/* first read (nothing written in this transaction yet: all committed),
	 * so the cursor never passes an id a rollback could hand out again */
	for (;;) {
		struct fl_store_audit *items = NULL;
		size_t n = 0;

		if ((e = fl_store_audit_query(st, now_ms - RECOVER_MS, wh->cursor, "", PAGE, &items,
		                              &n, errbuf)) != FL_OK)
			return e;
		for (size_t i = 0; i < n; i++) {
			wh->cursor = items[i].id;
			if (strcmp(items[i].command, EVENT_CMD) == 0)
				enqueue(wh, items[i].id, items[i].subject, items[i].detail);
		}
		fl_store_audits_free(items, n);
		if (n < PAGE)
			break;
	}
	pthread_mutex_lock(&wh->mu);
	o = wh->out;
	wh->out = wh->out_tail = NULL;
	pthread_mutex_unlock(&wh->mu);
	for (; o != NULL; o = next) {
		struct fl_store_audit a = {0};

		next = o->next;
		a.at_ms = now_ms;
		a.actor_key_id = "";
		a.actor_name = "coordinator";
		a.role = FLOTILLA__V1__ROLE__ROLE_COORDINATOR;
		a.command = o->command;
		a.subject = o->rollout_id;
		a.code = strcmp(o->command, "webhook_delivered") == 0
		             ? FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK
		             : FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNAVAILABLE;
		a.detail = o->detail;
		if (e == FL_OK)
			e = fl_store_audit_add(st, &a, NULL, errbuf);
		free(o->rollout_id);
		free(o->command);
		free(o->detail);
		free(o);
	}
	return e;
}

void fl_webhooks_free(struct fl_webhooks *wh)
{
	struct outcome *o, *next;

	if (wh == NULL)
		return;
	pthread_mutex_lock(&wh->mu);
	atomic_store(&wh->stop, true);
	pthread_cond_broadcast(&wh->cv);
	pthread_mutex_unlock(&wh->mu);
	if (wh->started)
		pthread_join(wh->thread, NULL);
	for (size_t i = 0; i < wh->n; i++) {
		struct hook *h = &wh->hooks[i];
		struct delivery *d, *dn;

		for (d = h->head; d != NULL; d = dn) {
			dn = d->next;
			delivery_free(d);
		}
		free(h->url);
		free(h->host);
		free(h->hostport);
		free(h->port);
		free(h->path);
		if (h->key != NULL)
			sodium_free(h->key);
	}
	free(wh->hooks);
	for (o = wh->out; o != NULL; o = next) {
		next = o->next;
		free(o->rollout_id);
		free(o->command);
		free(o->detail);
		free(o);
	}
	pthread_cond_destroy(&wh->cv);
	pthread_mutex_destroy(&wh->mu);
	free(wh);
}
