#include "driver.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pg_url.h"
#include "postgres.h"

static const struct {
	const char *scheme; /* with "://", compared without regard to case */
	const struct fl_driver_ops *ops;
} drivers[] = {
    {"postgresql://", &fl_postgres_driver},
    {"postgres://", &fl_postgres_driver},
};

const struct fl_driver_ops *fl_driver_for_url(const char *url)
{
	if (url == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strncasecmp(url, drivers[i].scheme, strlen(drivers[i].scheme)) == 0)
			return drivers[i].ops;
	return NULL;
}

void fl_conn_opts_init(struct fl_conn_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = FL_DEFAULT_CONNECT_TIMEOUT_MS;
	o->tcp_timeout_ms = FL_DEFAULT_TCP_TIMEOUT_MS;
	o->use_libpq_env = false;
	o->log = NULL;
}

char *fl_driver_redact_url(const char *url)
{
	return fl_pg_url_redact(url != NULL ? url : "");
}

void fl_history_fini(struct fl_history *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->count; i++) {
		struct fl_history_row *r = &h->rows[i];

		free(r->id);
		free(r->checksum);
		free(r->migration_name);
		free(r->logs);
		free(r->started_at);
		free(r->finished_at);
		free(r->rolled_back_at);
	}
	free(h->rows);
	h->rows = NULL;
	h->count = 0;
	h->table_exists = false;
}
