/* Tenant snapshots and connection URLs (see tenants.h). */
#include "tenants.h"

#include <errno.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "file.h"
#include "mem.h"

struct fl_tenants *fl_tenants_new(void)
{
	struct fl_tenants *t = fl_calloc(1, sizeof(*t));

	atomic_init(&t->refs, 1);
	return t;
}

struct fl_tenants *fl_tenants_ref(struct fl_tenants *t)
{
	atomic_fetch_add(&t->refs, 1);
	return t;
}

void fl_tenants_unref(struct fl_tenants *t)
{
	size_t i;

	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->items[i].id);
		free(t->items[i].server);
		free(t->items[i].database);
		free(t->items[i].schema);
		fl_labels_fini(&t->items[i].labels);
	}
	free(t->items);
	free(t);
}

void fl_tenants_add(struct fl_tenants *t, const struct fl_tenant *tenant)
{
	struct fl_tenant *d;

	t->items = fl_realloc(t->items, (t->n + 1) * sizeof(*t->items));
	d = &t->items[t->n++];
	d->id = fl_strdup(tenant->id);
	d->server = fl_strdup(tenant->server);
	d->database = fl_strdup(tenant->database);
	d->schema = tenant->schema ? fl_strdup(tenant->schema) : NULL;
	fl_labels_copy(&d->labels, &tenant->labels);
	d->origin = tenant->origin;
}

static int by_id(const void *a, const void *b)
{
	const struct fl_tenant *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	/* equal ids: keep them next to each other in a stable order */
	return c != 0 ? c : x->origin - y->origin;
}

static const char *origin_name(int origin, char *buf, size_t size)
{
	if (origin < 0)
		return "tenants";
	snprintf(buf, size, "discovery[%d]", origin);
	return buf;
}

enum fl_err fl_tenants_seal(struct fl_tenants *t, char *errbuf)
{
	char a[32], b[32];
	size_t i;

	if (t->n > 1)
		qsort(t->items, t->n, sizeof(*t->items), by_id);
	for (i = 1; i < t->n; i++)
		if (strcmp(t->items[i - 1].id, t->items[i].id) == 0)
			return fl_errf(
			    errbuf, FL_EINVAL,
			    "tenant id '%s' is given twice (by %s and %s): ids must be unique",
			    t->items[i].id, origin_name(t->items[i - 1].origin, a, sizeof(a)),
			    origin_name(t->items[i].origin, b, sizeof(b)));
	return FL_OK;
}

const struct fl_tenant *fl_tenants_find(const struct fl_tenants *t, const char *id)
{
	size_t lo = 0, hi = t != NULL ? t->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->items[mid].id, id);

		if (c == 0)
			return &t->items[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void fl_tenants_url_free(char *url)
{
	if (url == NULL)
		return;
	sodium_memzero(url, strlen(url));
	free(url);
}

enum fl_err fl_tenants_password(const struct fl_agent_database *db, char **password, char *errbuf)
{
	char buf[FL_AGENT_PASSWORD_MAX + 2], e[128];
	struct stat st;
	size_t len = 0;
	enum fl_err rv;
	int fd = -1;

	*password = NULL;
	if (db->password_env != NULL) {
		const char *v = getenv(db->password_env);

		if (v == NULL || v[0] == '\0')
			return fl_errf(
			    errbuf, FL_ENOENT,
			    "database '%s': password_env '%s' is not set in the environment",
			    db->name, db->password_env);
		*password = fl_strdup(v);
		return FL_OK;
	}
	if (db->password_file == NULL)
		return FL_OK;
	if ((rv = fl_file_open(db->password_file, FL_FILE_REGULAR, &fd, &st, errbuf)) != FL_OK)
		return rv == FL_ENOENT ? FL_EIO : rv;
	if (!S_ISREG(st.st_mode)) {
		rv = fl_errf(errbuf, FL_EIO,
		             "database '%s': password_file '%s' is not a regular file", db->name,
		             db->password_file);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		rv = fl_errf(
		    errbuf, FL_EIO,
		    "refusing '%s': readable or writable by others (mode %04o); chmod 600 it",
		    db->password_file, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((rv = fl_file_read_fd(fd, db->password_file, buf, sizeof(buf) - 1, &len, errbuf)) !=
	    FL_OK)
		goto out;
	if (len > FL_AGENT_PASSWORD_MAX) {
		rv = fl_errf(errbuf, FL_EIO, "'%s' is over %d bytes: not a password file",
		             db->password_file, FL_AGENT_PASSWORD_MAX);
		goto out;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0 || memchr(buf, '\0', len) != NULL) {
		rv = fl_errf(errbuf, FL_EIO, "'%s' holds no password (or a NUL byte)",
		             db->password_file);
		goto out;
	}
	buf[len] = '\0';
	*password = fl_strndup(buf, len);
out:
	(void)e;
	sodium_memzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return rv;
}

/* Percent-encode every byte but RFC 3986's unreserved ones. */
static void put_enc(struct fl_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			fl_buf_append(b, s, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			fl_buf_append(b, e, 3);
		}
	}
}

static void put_param(struct fl_buf *b, char *sep, const char *key, const char *value)
{
	if (value == NULL)
		return;
	fl_buf_append(b, sep, 1);
	*sep = '&';
	fl_buf_puts(b, key);
	fl_buf_puts(b, "=");
	put_enc(b, value);
}

enum fl_err fl_tenants_url(const struct fl_agent_database *db, const char *dbname,
                           const char *schema, char **url, char *errbuf)
{
	struct fl_buf b = FL_BUF_INIT;
	char *password = NULL, port[16], sep = '?';
	enum fl_err rv;

	*url = NULL;
	if ((rv = fl_tenants_password(db, &password, errbuf)) != FL_OK)
		return rv;
	if (db->url != NULL) {
		const char *auth = strstr(db->url, "://") + 3;
		size_t alen = strcspn(auth, "/?#");
		const char *q = strchr(auth + alen, '?');

		fl_buf_append(&b, db->url, (size_t)(auth - db->url) + alen);
		fl_buf_puts(&b, "/");
		put_enc(&b, dbname);
		if (q != NULL && q[1] != '\0') {
			size_t qlen = strcspn(q, "#");

			fl_buf_append(&b, q, qlen);
			sep = '&';
		}
	} else {
		fl_buf_puts(&b, "postgresql:///");
		put_enc(&b, dbname);
		put_param(&b, &sep, "host", db->host);
		snprintf(port, sizeof(port), "%lld", (long long)db->port);
		put_param(&b, &sep, "port", port);
		put_param(&b, &sep, "user", db->user);
		if (db->sslmode != FL_SSLMODE_DEFAULT)
			put_param(&b, &sep, "sslmode", fl_agent_sslmode_name(db->sslmode));
		put_param(&b, &sep, "sslrootcert", db->sslrootcert);
	}
	put_param(&b, &sep, "password", password);
	put_param(&b, &sep, "schema", schema);
	fl_tenants_url_free(password);
	*url = fl_buf_detach(&b);
	return FL_OK;
}

enum fl_err fl_tenants_conn_params(const char *url, struct fl_conn_params *out, char *errbuf)
{
	PQconninfoOption *opts, *o;
	char *err = NULL;

	memset(out, 0, sizeof(*out));
	opts = PQconninfoParse(url, &err);
	if (opts == NULL) {
		/* libpq's message may quote the URL: never pass it on */
		PQfreemem(err);
		return fl_errf(errbuf, FL_EINVAL, "cannot read the connection URL");
	}
	for (o = opts; o->keyword != NULL; o++) {
		char **slot = NULL;

		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			slot = &out->host;
		else if (strcmp(o->keyword, "port") == 0)
			slot = &out->port;
		else if (strcmp(o->keyword, "user") == 0)
			slot = &out->user;
		else if (strcmp(o->keyword, "dbname") == 0)
			slot = &out->dbname;
		else if (strcmp(o->keyword, "password") == 0)
			slot = &out->password;
		else if (strcmp(o->keyword, "sslmode") == 0)
			slot = &out->sslmode;
		else if (strcmp(o->keyword, "sslrootcert") == 0)
			slot = &out->sslrootcert;
		if (slot != NULL)
			*slot = fl_strdup(o->val);
		if (strcmp(o->keyword, "password") == 0)
			sodium_memzero(o->val, strlen(o->val));
	}
	PQconninfoFree(opts);
	return FL_OK;
}

void fl_tenants_conn_params_fini(struct fl_conn_params *p)
{
	free(p->host);
	free(p->port);
	free(p->user);
	free(p->dbname);
	fl_tenants_url_free(p->password);
	free(p->sslmode);
	free(p->sslrootcert);
	memset(p, 0, sizeof(*p));
}
