/* Tenant discovery (see discovery.h). */
#include "discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "driver.h"
#include "mem.h"
#include "pg_conn.h"

/* Names are compared by bytes (COLLATE "C"), and LIKE with its default
 * backslash escape, as fl_discovery_like does for label rules. */
static const char *const databases_sql =
    "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate "
    "AND datname LIKE $1 ORDER BY datname COLLATE \"C\" LIMIT 100001";
static const char *const schemas_sql =
    "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname LIKE $1 "
    "AND nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' "
    "ORDER BY nspname COLLATE \"C\" LIMIT 100001";

bool fl_discovery_like(const char *p, const char *s)
{
	for (; *p != '\0'; p++) {
		if (*p == '%') {
			while (p[1] == '%')
				p++;
			if (p[1] == '\0')
				return true;
			for (; *s != '\0'; s++)
				if (fl_discovery_like(p + 1, s))
					return true;
			return false;
		}
		if (*s == '\0')
			return false;
		if (*p == '_') {
			s++;
			continue;
		}
		if (*p == '\\' && p[1] != '\0')
			p++;
		if (*p != *s)
			return false;
		s++;
	}
	return *s == '\0';
}

/* The template with every "{name}" replaced by name. */
static char *make_id(const char *tmpl, const char *name)
{
	struct fl_buf b = FL_BUF_INIT;
	const char *at;

	while ((at = strstr(tmpl, "{name}")) != NULL) {
		fl_buf_append(&b, tmpl, (size_t)(at - tmpl));
		fl_buf_puts(&b, name);
		tmpl = at + 6;
	}
	fl_buf_puts(&b, tmpl);
	return fl_buf_detach(&b);
}

/* The names rule d finds, into *names (heap strings). */
static enum fl_err query(const struct fl_agent_config *cfg, const struct fl_agent_discovery *d,
                         const struct fl_logger *log, char ***names, size_t *n, char *errbuf)
{
	const struct fl_agent_database *db = fl_agent_config_database(cfg, d->server);
	const char *dbname = d->kind == FL_DISCOVER_SCHEMAS ? d->database : db->dbname;
	const char *params[1] = {d->like};
	struct fl_conn_opts opts;
	struct fl_pg_error e;
	struct fl_conn *c = NULL;
	PGresult *res = NULL;
	char *url = NULL;
	enum fl_err rv;
	int i, rows;

	*names = NULL;
	*n = 0;
	if ((rv = fl_tenants_url(db, dbname, NULL, &url, errbuf)) != FL_OK)
		return rv;
	fl_conn_opts_init(&opts);
	opts.connect_timeout_ms = db->connect_timeout_ms;
	opts.log = log;
	rv = fl_pg_conn_open(url, &opts, &c, errbuf);
	fl_tenants_url_free(url);
	if (rv != FL_OK)
		return rv;
	rv = fl_pg_conn_query(c, d->kind == FL_DISCOVER_SCHEMAS ? schemas_sql : databases_sql, 1,
	                      params, &res, &e);
	if (rv != FL_OK) {
		char line[600];

		fl_pg_error_line(&e, line, sizeof(line));
		rv = fl_errf(errbuf, rv, "%s", line);
		goto out;
	}
	rows = PQntuples(res);
	if (rows > FL_AGENT_MAX_TENANTS) {
		rv = fl_errf(errbuf, FL_EINVAL, "more than %d names match '%s'",
		             FL_AGENT_MAX_TENANTS, d->like);
		goto out;
	}
	*names = rows ? fl_calloc((size_t)rows, sizeof(char *)) : NULL;
	for (i = 0; i < rows; i++)
		(*names)[(*n)++] = fl_strdup(PQgetvalue(res, i, 0));
out:
	PQclear(res);
	fl_pg_conn_close(c);
	return rv;
}

static enum fl_err add_found(struct fl_tenants *t, const struct fl_agent_discovery *d, int index,
                             const char *name, const struct fl_logger *log,
                             struct fl_discovery_stats *st, char *errbuf)
{
	struct fl_tenant tenant = {0};
	const struct fl_agent_rule *rules = d->rules.items;
	const char *problem;
	enum fl_err rv = FL_OK;
	size_t r, k;

	tenant.id = make_id(d->id, name);
	if ((problem = fl_agent_tenant_id_problem(tenant.id)) != NULL) {
		char shown[300];

		/* a database's own name: any character, a newline included */
		fl_logger_warn(log, "discovery",
		               "discovery[%d]: skipping '%s': not a tenant id (%s)", index,
		               fl_err_quote(shown, sizeof(shown), name, strlen(name)), problem);
		st->skipped++;
		goto out;
	}
	tenant.server = d->server;
	if (d->kind == FL_DISCOVER_SCHEMAS) {
		tenant.database = d->database;
		tenant.schema = (char *)name;
	} else {
		tenant.database = (char *)name;
	}
	tenant.origin = index;
	fl_labels_copy(&tenant.labels, &d->labels);
	for (r = 0; r < d->rules.n; r++) {
		if (!fl_discovery_like(rules[r].match, name))
			continue;
		for (k = 0; k < rules[r].labels.n; k++)
			if ((rv = fl_labels_set(&tenant.labels, rules[r].labels.items[k].key,
			                        rules[r].labels.items[k].value, errbuf)) != FL_OK)
				goto out;
	}
	fl_tenants_add(t, &tenant);
	st->found++;
out:
	fl_labels_fini(&tenant.labels);
	free(tenant.id);
	return rv;
}

enum fl_err fl_discovery_run(const struct fl_agent_config *cfg, const struct fl_tenants *prev,
                             const struct fl_logger *log, struct fl_tenants **out,
                             struct fl_discovery_stats *stats, char *errbuf)
{
	const struct fl_agent_tenant *st = cfg->tenants.items;
	const struct fl_agent_discovery *ds = cfg->discovery.items;
	struct fl_discovery_stats dummy;
	struct fl_tenants *t = fl_tenants_new();
	enum fl_err rv = FL_OK;
	size_t i, j;

	*out = NULL;
	if (stats == NULL)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	for (i = 0; i < cfg->tenants.n; i++) {
		struct fl_tenant tenant = {st[i].id,     st[i].server, st[i].database,
		                           st[i].schema, st[i].labels, -1};

		fl_tenants_add(t, &tenant);
	}
	for (i = 0; i < cfg->discovery.n; i++) {
		const struct fl_agent_discovery *d = &ds[i];
		char err[FL_ERRBUF_SIZE] = "";
		char **names = NULL;
		size_t n = 0;

		if (query(cfg, d, log, &names, &n, err) != FL_OK) {
			stats->failed++;
			fl_logger_warn(
			    log, "discovery",
			    "discovery[%zu] on database '%s': %s; keeping the tenants it "
			    "found before",
			    i, d->server, err);
			for (j = 0; prev != NULL && j < prev->n; j++)
				if (prev->items[j].origin == (int)i &&
				    strcmp(prev->items[j].server, d->server) == 0) {
					fl_tenants_add(t, &prev->items[j]);
					stats->kept++;
				}
			continue;
		}
		for (j = 0; j < n && rv == FL_OK; j++)
			rv = add_found(t, d, (int)i, names[j], log, stats, errbuf);
		for (j = 0; j < n; j++)
			free(names[j]);
		free(names);
		if (rv != FL_OK)
			goto fail;
	}
	if (t->n > FL_AGENT_MAX_TENANTS) {
		rv = fl_errf(errbuf, FL_EINVAL, "%zu tenants: more than an agent serves (%d)", t->n,
		             FL_AGENT_MAX_TENANTS);
		goto fail;
	}
	if ((rv = fl_tenants_seal(t, errbuf)) != FL_OK)
		goto fail;
	*out = t;
	return FL_OK;
fail:
	fl_tenants_unref(t);
	return rv;
}
