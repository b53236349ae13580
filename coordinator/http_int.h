/* Between http.c (nng's side) and http_api.c (the core's side). */
#ifndef FL_HTTP_INT_H
#define FL_HTTP_INT_H

#include <nng/nng.h>
#include <stdbool.h>

#include "core.h"
#include "http.h"

#define FL_HTTP_PATH_MAX  256
#define FL_HTTP_QUERY_MAX 1024

/* One request on its way to the core and back. */
struct fl_http_req {
	struct fl_core_job job;
	struct fl_http *srv;
	nng_aio *aio;
	bool need_token; /* check token against the running config's operators */
	char path[FL_HTTP_PATH_MAX];
	char query[FL_HTTP_QUERY_MAX];
	char token[FL_HTTP_TOKEN_MAX];
};

/* Complete r with this response (the security headers added) and free it.
 * Any thread. */
void fl_http_respond(struct fl_http_req *r, uint16_t status, const char *content_type,
                     const void *body, size_t len);

/* The core job: the token, then /metrics or /api/v1/... (http_api.c). */
void fl_http_api_run(struct fl_core *core, struct fl_core_job *job);

/* The dashboard's files (dashboard/, embedded by CMake: dashboard_assets.c). */
struct fl_http_asset {
	const char *path; /* "/", "/dashboard.js" ... */
	const char *content_type;
	const unsigned char *data;
	size_t len;
};
extern const struct fl_http_asset fl_http_assets[];
extern const size_t fl_http_n_assets;

#endif
