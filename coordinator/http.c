/* The HTTP endpoint, nng's side (http.h). */
#include "http.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_int.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"

struct fl_http {
	struct fl_core *core;
	nng_http_server *server;
	bool need_token;
	bool started, closed;
	int port;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	size_t pending; /* requests at the core */
	bool closing;
};

static const char *const security_headers[][2] = {
    {"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Cache-Control", "no-store"},
};

static void respond_hdr(struct fl_http_req *r, uint16_t status, const char *content_type,
                        const void *body, size_t len, const char *name, const char *value)
{
	struct fl_http *h = r->srv;
	nng_http_res *res = NULL;
	int rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(r->aio, rv);
		goto done;
	}
	rv = nng_http_res_set_status(res, status);
	for (size_t i = 0; rv == 0 && i < sizeof(security_headers) / sizeof(security_headers[0]);
	     i++)
		rv = nng_http_res_set_header(res, security_headers[i][0], security_headers[i][1]);
	if (rv == 0 && content_type)
		rv = nng_http_res_set_header(res, "Content-Type", content_type);
	if (rv == 0 && name)
		rv = nng_http_res_set_header(res, name, value);
	/* HEAD too: nng drops the body and keeps its Content-Length */
	if (rv == 0 && len > 0)
		rv = nng_http_res_copy_data(res, body, len);
	if (rv != 0) {
		nng_http_res_free(res);
		nng_aio_finish(r->aio, rv);
		goto done;
	}
	fl_metrics_http(fl_core_metrics(h->core), status);
	nng_aio_set_output(r->aio, 0, res);
	nng_aio_finish(r->aio, 0);
done:
	if (r->job.run != NULL) { /* it went through the core */
		pthread_mutex_lock(&h->mtx);
		h->pending--;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->mtx);
	}
	free(r);
}

void fl_http_respond(struct fl_http_req *r, uint16_t status, const char *content_type,
                     const void *body, size_t len)
{
	respond_hdr(r, status, content_type, body, len, NULL, NULL);
}

static void respond_text(struct fl_http_req *r, uint16_t status, const char *text, const char *name,
                         const char *value)
{
	respond_hdr(r, status, "text/plain; charset=utf-8", text, strlen(text), name, value);
}

static const struct fl_http_asset *asset(const char *path)
{
	if (strcmp(path, "/index.html") == 0)
		path = "/";
	for (size_t i = 0; i < fl_http_n_assets; i++)
		if (strcmp(fl_http_assets[i].path, path) == 0)
			return &fl_http_assets[i];
	return NULL;
}

/* The bearer token of req into r->token; false when there is none or it is
 * too long to be one. */
static bool bearer(nng_http_req *req, struct fl_http_req *r)
{
	const char *a = nng_http_req_get_header(req, "Authorization");
	size_t n;

	if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
		return false;
	a += 7;
	while (*a == ' ')
		a++;
	n = strlen(a);
	while (n > 0 && a[n - 1] == ' ')
		n--;
	if (n == 0 || n >= sizeof(r->token))
		return false;
	memcpy(r->token, a, n);
	r->token[n] = '\0';
	return true;
}

static void on_request(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *hh = nng_aio_get_input(aio, 1);
	struct fl_http *h = nng_http_handler_get_data(hh);
	const char *method = nng_http_req_get_method(req);
	const char *uri = nng_http_req_get_uri(req);
	const char *q = strchr(uri, '?');
	size_t plen = q ? (size_t)(q - uri) : strlen(uri);
	struct fl_http_req *r = fl_calloc(1, sizeof(*r));
	const struct fl_http_asset *a;

	r->srv = h;
	r->aio = aio;
	if (strcmp(method, "HEAD") != 0 && strcmp(method, "GET") != 0) {
		respond_text(r, 405, "read-only: only GET and HEAD\n", "Allow", "GET, HEAD");
		return;
	}
	if (plen >= sizeof(r->path) || (q && strlen(q + 1) >= sizeof(r->query))) {
		respond_text(r, 414, "URI too long\n", NULL, NULL);
		return;
	}
	memcpy(r->path, uri, plen);
	r->path[plen] = '\0';
	if (q)
		snprintf(r->query, sizeof(r->query), "%s", q + 1);
	if ((a = asset(r->path)) != NULL) {
		respond_hdr(r, 200, a->content_type, a->data, a->len, NULL, NULL);
		return;
	}
	if (strcmp(r->path, "/metrics") != 0 && strncmp(r->path, "/api/", 5) != 0) {
		respond_text(r, 404, "not found\n", NULL, NULL);
		return;
	}
	r->need_token = h->need_token;
	if (h->need_token && !bearer(req, r)) {
		respond_text(r, 401, "a bearer token is needed (docs/CONFIG.md, http_listen)\n",
		             "WWW-Authenticate", "Bearer realm=\"flotilla\"");
		return;
	}
	pthread_mutex_lock(&h->mtx);
	if (h->closing) {
		pthread_mutex_unlock(&h->mtx);
		respond_text(r, 503, "the coordinator is stopping\n", NULL, NULL);
		return;
	}
	h->pending++;
	pthread_mutex_unlock(&h->mtx);
	r->job.run = fl_http_api_run;
	fl_core_submit(h->core, &r->job);
}

static bool loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	       strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0;
}

enum fl_err fl_http_new(struct fl_core *core, const char *url, struct fl_http **out, char *errbuf)
{
	struct fl_http *h;
	nng_url *u = NULL;
	nng_http_handler *hh = NULL;
	nng_sockaddr sa;
	int rv;

	*out = NULL;
	if (strncmp(url, "http://", 7) != 0 || nng_url_parse(&u, url) != 0)
		return fl_errf(errbuf, FL_EINVAL, "http_listen: '%s' is not an http:// URL", url);
	h = fl_calloc(1, sizeof(*h));
	h->core = core;
	h->need_token = !loopback(u->u_hostname);
	pthread_mutex_init(&h->mtx, NULL);
	pthread_cond_init(&h->cond, NULL);
	if ((rv = nng_http_server_hold(&h->server, u)) != 0 ||
	    (rv = nng_http_handler_alloc(&hh, "/", on_request)) != 0 ||
	    (rv = nng_http_handler_set_method(hh, NULL)) != 0 ||
	    (rv = nng_http_handler_set_tree(hh)) != 0 ||
	    (rv = nng_http_handler_collect_body(hh, false, 0)) != 0 ||
	    (rv = nng_http_handler_set_data(hh, h, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(h->server, hh)) != 0) {
		if (hh)
			nng_http_handler_free(hh);
		goto fail;
	}
	hh = NULL;
	if ((rv = nng_http_server_start(h->server)) != 0)
		goto fail;
	h->started = true;
	if ((rv = nng_http_server_get_addr(h->server, &sa)) != 0)
		goto fail;
	h->port = sa.s_family == NNG_AF_INET6 ? ntohs(sa.s_in6.sa_port) : ntohs(sa.s_in.sa_port);
	nng_url_free(u);
	*out = h;
	return FL_OK;
fail:
	fl_errf(errbuf, FL_EIO, "http_listen: cannot listen on '%s': %s", url, nng_strerror(rv));
	nng_url_free(u);
	if (h->server && h->started)
		nng_http_server_stop(h->server);
	if (h->server)
		nng_http_server_release(h->server);
	pthread_mutex_destroy(&h->mtx);
	pthread_cond_destroy(&h->cond);
	free(h);
	return FL_EIO;
}

int fl_http_port(struct fl_http *h)
{
	return h->port;
}

bool fl_http_needs_token(struct fl_http *h)
{
	return h->need_token;
}

void fl_http_close(struct fl_http *h)
{
	if (h == NULL || h->closed)
		return;
	pthread_mutex_lock(&h->mtx);
	h->closing = true;
	while (h->pending > 0)
		pthread_cond_wait(&h->cond, &h->mtx);
	pthread_mutex_unlock(&h->mtx);
	nng_http_server_stop(h->server);
	nng_http_server_release(h->server);
	h->closed = true;
}

void fl_http_free(struct fl_http *h)
{
	if (h == NULL)
		return;
	fl_http_close(h);
	pthread_mutex_destroy(&h->mtx);
	pthread_cond_destroy(&h->cond);
	free(h);
}
