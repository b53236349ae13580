/*
 * The coordinator's HTTP endpoint (nng's HTTP server): /metrics in the
 * Prometheus text format, /api/v1/... JSON for what the CLI's read commands
 * show (the same documents as --json, coordinator/cli/render.h), and the
 * dashboard (/, its CSS and JS, served from memory). docs/ARCHITECTURE.md,
 * "HTTP", describes it; docs/CONFIG.md, "http_listen", the token.
 *
 * Read-only: GET and HEAD; any other method is answered 405. Every response
 * carries the security headers (Content-Security-Policy default-src 'self',
 * nosniff, frame DENY, no referrer, no-store).
 *
 * Threads: requests arrive on nng's threads. The dashboard's files are
 * answered there; everything else becomes a job for the core thread, which
 * reads through the admin server's handlers (fl_admin_server_read) or the
 * model, renders, and completes the request; nothing here touches the core's
 * model or store from another thread.
 *
 * Auth: on a loopback address no token is needed. On any other address each
 * /metrics and /api request needs "Authorization: Bearer TOKEN", a token an
 * operator key of the running config signed (fl_http_token_make); the
 * dashboard's files are served without one (they hold no data; the page
 * sends the token it was given in its URL's #fragment).
 */
#ifndef FL_HTTP_H
#define FL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "err.h"
#include "http_token.h"

struct fl_http;

/* Listen on url ("http://HOST:PORT"; port 0 picks one). Errors: FL_EINVAL
 * (not an http URL), FL_EIO (cannot listen). */
enum fl_err fl_http_new(struct fl_core *core, const char *url, struct fl_http **out, char *errbuf)
    __attribute__((warn_unused_result));
int fl_http_port(struct fl_http *h);
/* True when the bind address is not a loopback one (tokens required). */
bool fl_http_needs_token(struct fl_http *h);
/* Answer 503 from now on, wait for requests at the core, stop listening.
 * Call while the core still runs (before fl_core_stop). */
void fl_http_close(struct fl_http *h);
void fl_http_free(struct fl_http *h); /* closes first if needed; NULL is a no-op */

#endif
