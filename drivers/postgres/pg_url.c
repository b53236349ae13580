#include "pg_url.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "log.h"
#include "mem.h"

#define MAX_PARAMS 64

/* Prisma's own parameters: consumed or meaningless to libpq. */
static const char *const prisma_only[] = {
    "connection_limit",
    "pool_timeout",
    "socket_timeout",
    "pgbouncer",
    "statement_cache_size",
    "max_connection_lifetime",
    "max_idle_connection_lifetime",
    "sslaccept",
    "sslidentity",
    NULL,
};

struct param {
	char *key;       /* decoded */
	const char *raw; /* "key=value" as written, not NUL-terminated */
	size_t raw_len;
	const char *value; /* raw value, not NUL-terminated */
	size_t value_len;
	bool keep;
};

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Percent-decode s[0..len); '+' is a space when form is set (Prisma reads its
 * query as application/x-www-form-urlencoded). NULL on a bad escape. */
static char *decode(const char *s, size_t len, bool form)
{
	char *out = fl_malloc(len + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= len || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)s[i + 2])) < 0) {
				free(out);
				return NULL;
			}
			out[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (form && s[i] == '+') {
			out[n++] = ' ';
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = '\0';
	return out;
}

static bool libpq_knows(const PQconninfoOption *defs, const char *key)
{
	for (const PQconninfoOption *o = defs; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0)
			return true;
	return false;
}

static bool is_prisma_only(const char *key)
{
	for (size_t i = 0; prisma_only[i] != NULL; i++)
		if (strcmp(prisma_only[i], key) == 0)
			return true;
	return false;
}

static struct param *find(struct param *ps, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ps[i].key, key) == 0)
			return &ps[i];
	return NULL;
}

static bool value_is(const struct param *p, const char *word)
{
	return p != NULL && p->value_len == strlen(word) &&
	       strncasecmp(p->value, word, p->value_len) == 0;
}

/* Where the query string starts (after '?'), or NULL; authority and path end
 * at the first '?' that follows the authority, as RFC 3986 says. */
static const char *query_of(const char *url, size_t scheme_len)
{
	const char *p = url + scheme_len;

	p += strcspn(p, "/?#");
	return strchr(p, '?');
}

static size_t scheme_len(const char *url)
{
	if (strncasecmp(url, "postgresql://", 13) == 0)
		return 13;
	if (strncasecmp(url, "postgres://", 11) == 0)
		return 11;
	return 0;
}

static bool userinfo_password(const char *url, const char **pw, size_t *len);

/* Every percent-escape in the user info must decode: libpq would otherwise
 * refuse the URL quoting the whole token, password included. */
static enum fl_err check_userinfo(const char *url, size_t slen, char *errbuf)
{
	const char *a = url + slen, *pw, *end;
	size_t len;
	char *d;

	if (userinfo_password(url, &pw, &len)) {
		end = pw - 1; /* the user name ends at the ':' */
		if ((d = decode(pw, len, false)) == NULL)
			return fl_errf(errbuf, FL_EINVAL,
			               "invalid percent-encoding in the URL's password");
		sodium_memzero(d, strlen(d));
		free(d);
	} else {
		const char *at = strchr(a, '@'), *stop = a + strcspn(a, "/?#");

		if (at == NULL || at > stop)
			return FL_OK; /* no user info */
		end = at;
	}
	if ((d = decode(a, (size_t)(end - a), false)) == NULL)
		return fl_errf(errbuf, FL_EINVAL,
		               "invalid percent-encoding in the URL's user name");
	free(d);
	return FL_OK;
}

enum fl_err fl_pg_url_rewrite(const char *url, const struct fl_logger *log, char **libpq_url,
                              char **schema, char *errbuf)
{
	struct param ps[MAX_PARAMS];
	struct fl_buf out = FL_BUF_INIT;
	PQconninfoOption *defs = NULL;
	const char *q, *p;
	size_t n = 0, slen = scheme_len(url);
	char *sch = NULL;
	bool strict = false, identity = false, libpq_tls;
	enum fl_err rv = FL_OK;

	*libpq_url = NULL;
	*schema = NULL;
	if (slen == 0)
		return fl_errf(errbuf, FL_EINVAL,
		               "not a PostgreSQL URL: expected postgresql:// or postgres://");
	if ((rv = check_userinfo(url, slen, errbuf)) != FL_OK)
		return rv;
	q = query_of(url, slen);
	fl_buf_append(&out, url, q ? (size_t)(q - url) : strlen(url));
	if ((defs = PQconndefaults()) == NULL) {
		rv = fl_errf(errbuf, FL_EINVAL, "cannot read libpq's connection options");
		goto out;
	}

	for (p = q ? q + 1 : NULL; p != NULL && *p != '\0';) {
		size_t len = strcspn(p, "&"), klen = strcspn(p, "=");
		struct param *pp;

		if (klen > len)
			klen = len;
		if (len == 0) {
			p++;
			continue;
		}
		if (n == MAX_PARAMS) {
			rv = fl_errf(errbuf, FL_EINVAL, "too many URL parameters (at most %d)",
			             MAX_PARAMS);
			goto out;
		}
		pp = &ps[n];
		if ((pp->key = decode(p, klen, true)) == NULL) {
			rv = fl_errf(errbuf, FL_EINVAL,
			             "invalid percent-encoding in a URL parameter");
			goto out;
		}
		n++;
		pp->raw = p;
		pp->raw_len = len;
		pp->value = klen < len ? p + klen + 1 : p + len;
		pp->value_len = klen < len ? len - klen - 1 : 0;
		pp->keep = false;
		{
			char *v = decode(pp->value, pp->value_len, false);

			if (v == NULL) {
				rv = fl_errf(
				    errbuf, FL_EINVAL,
				    "invalid percent-encoding in the value of URL parameter "
				    "'%.64s'",
				    pp->key);
				goto out;
			}
			sodium_memzero(v, strlen(v));
			free(v);
		}
		p += len;
		if (*p == '&')
			p++;
	}

	/* A URL that names libpq's own TLS files means libpq's sslcert. */
	libpq_tls = find(ps, n, "sslrootcert") != NULL || find(ps, n, "sslkey") != NULL;
	identity = find(ps, n, "sslidentity") != NULL;
	for (size_t i = 0; i < n; i++) {
		struct param *pp = &ps[i];

		if (strcmp(pp->key, "schema") == 0) {
			free(sch);
			if ((sch = decode(pp->value, pp->value_len, true)) == NULL) {
				rv = fl_errf(errbuf, FL_EINVAL,
				             "invalid percent-encoding in the 'schema' parameter");
				goto out;
			}
		} else if (strcmp(pp->key, "sslaccept") == 0) {
			strict = value_is(pp, "strict");
		} else if (strcmp(pp->key, "sslidentity") == 0 ||
		           (identity && strcmp(pp->key, "sslpassword") == 0)) {
			fl_logger_warn(log, NULL,
			               "ignoring URL parameter '%s': PKCS#12 identities are not "
			               "supported by libpq; use sslcert and sslkey files",
			               pp->key);
		} else if (strcmp(pp->key, "sslcert") == 0 && !libpq_tls) {
			pp->keep = true; /* written as sslrootcert below */
		} else if (is_prisma_only(pp->key) || !libpq_knows(defs, pp->key)) {
			/* Not named when the "query" may be the tail of a password. */
			if (!fl_pg_url_userinfo_unencoded(url))
				fl_logger_debug(log, NULL,
				                "ignoring URL parameter '%s': not a libpq option",
				                pp->key);
		} else {
			pp->keep = true;
		}
	}
	if (strict) {
		struct param *mode = find(ps, n, "sslmode");

		if (mode == NULL || value_is(mode, "require") || value_is(mode, "prefer")) {
			if (mode != NULL)
				mode->keep = false;
		} else {
			strict = false; /* an explicit verify-ca/verify-full/disable wins */
		}
	}

	{
		char sep = '?';

		for (size_t i = 0; i < n; i++) {
			if (!ps[i].keep)
				continue;
			fl_buf_append(&out, &sep, 1);
			sep = '&';
			if (strcmp(ps[i].key, "sslcert") == 0 && !libpq_tls) {
				fl_buf_puts(&out, "sslrootcert=");
				fl_buf_append(&out, ps[i].value, ps[i].value_len);
			} else {
				fl_buf_append(&out, ps[i].raw, ps[i].raw_len);
			}
		}
		if (strict) {
			fl_buf_printf(&out, "%csslmode=verify-full", sep);
			sep = '&';
		}
		if (find(ps, n, "application_name") == NULL)
			fl_buf_printf(&out, "%capplication_name=flotilla", sep);
	}

	if (sch != NULL && sch[0] == '\0') {
		free(sch);
		sch = NULL;
	}
	*schema = sch;
	sch = NULL;
	*libpq_url = fl_buf_detach(&out);
out:
	for (size_t i = 0; i < n; i++)
		free(ps[i].key);
	free(sch);
	if (out.data != NULL)
		sodium_memzero(out.data, out.cap);
	fl_buf_fini(&out);
	PQconninfoFree(defs);
	return rv;
}

/* The password in the user info of a scheme://user:password@host URL: up
 * to the last '@' of the whole URL, so that an unencoded '/', '?', '#' or '@'
 * in it is still covered. An '@' inside a query value makes this cover too
 * much, never too little: it only decides what messages hide. */
static bool userinfo_password(const char *url, const char **pw, size_t *len)
{
	const char *sep = strstr(url, "://"), *a, *at, *colon;

	if (sep == NULL)
		return false;
	a = sep + 3;
	at = strrchr(a, '@');
	if (at == NULL || (colon = memchr(a, ':', (size_t)(at - a))) == NULL)
		return false;
	*pw = colon + 1;
	*len = (size_t)(at - colon - 1);
	return true;
}

static bool secret_key(const char *k, size_t n)
{
	return (n == 8 && strncasecmp(k, "password", 8) == 0) ||
	       (n == 11 && strncasecmp(k, "sslpassword", 11) == 0);
}

/* key=value connection strings: values may be 'quoted' with \ escapes. */
static void redact_keyvalue(struct fl_buf *b, const char *s)
{
	while (*s != '\0') {
		size_t ws = strspn(s, " \t\n\r"), klen, vlen = 0;
		const char *v;

		fl_buf_append(b, s, ws);
		s += ws;
		klen = strcspn(s, "= \t\n\r");
		v = s + klen;
		v += strspn(v, " \t\n\r");
		if (*v != '=') {
			fl_buf_append(b, s, klen);
			s += klen;
			continue;
		}
		v++;
		v += strspn(v, " \t\n\r");
		if (*v == '\'') {
			for (vlen = 1; v[vlen] != '\0' && v[vlen] != '\''; vlen++)
				if (v[vlen] == '\\' && v[vlen + 1] != '\0')
					vlen++;
			if (v[vlen] == '\'')
				vlen++;
		} else {
			vlen = strcspn(v, " \t\n\r");
		}
		if (secret_key(s, klen)) {
			fl_buf_append(b, s, klen);
			fl_buf_puts(b, "=***");
		} else {
			fl_buf_append(b, s, (size_t)(v - s) + vlen);
		}
		s = v + vlen;
	}
}

char *fl_pg_url_redact(const char *url)
{
	struct fl_buf b = FL_BUF_INIT;
	const char *pw, *q;
	size_t len;

	if (strstr(url, "://") == NULL) {
		redact_keyvalue(&b, url);
		return fl_buf_detach(&b);
	}
	q = strstr(url, "://") + 3;
	if (userinfo_password(url, &pw, &len))
		q = pw + len; /* the query starts after the user info, whatever it holds */
	q += strcspn(q, "?");
	if (userinfo_password(url, &pw, &len)) {
		fl_buf_append(&b, url, (size_t)(pw - url));
		fl_buf_puts(&b, "***");
		fl_buf_append(&b, pw + len, (size_t)(q - (pw + len)));
	} else {
		fl_buf_append(&b, url, (size_t)(q - url));
	}
	if (*q == '?') {
		fl_buf_puts(&b, "?");
		for (const char *p = q + 1; *p != '\0';) {
			size_t plen = strcspn(p, "&"), klen = strcspn(p, "=&");

			char *key = decode(p, klen, false); /* libpq decodes keys too */
			bool secret = key != NULL && secret_key(key, strlen(key));

			free(key);
			if (klen < plen && secret) {
				fl_buf_append(&b, p, klen);
				fl_buf_puts(&b, "=***");
			} else {
				fl_buf_append(&b, p, plen);
			}
			p += plen;
			if (*p == '&') {
				fl_buf_puts(&b, "&");
				p++;
			}
		}
	}
	return fl_buf_detach(&b);
}

bool fl_pg_url_userinfo_unencoded(const char *url)
{
	const char *pw;
	size_t len;

	return userinfo_password(url, &pw, &len) && strcspn(pw, "?#/@") < len;
}

char *fl_pg_url_password(const char *url, char **decoded)
{
	const char *pw, *q;
	char *raw = NULL;
	size_t len;

	*decoded = NULL;
	if (userinfo_password(url, &pw, &len) && len > 0) {
		raw = fl_strndup(pw, len);
	} else if ((q = strchr(url, '?')) != NULL) {
		for (const char *p = q + 1; *p != '\0';) {
			size_t plen = strcspn(p, "&");

			if (plen > 9 && strncmp(p, "password=", 9) == 0) {
				raw = fl_strndup(p + 9, plen - 9);
				break;
			}
			p += plen;
			if (*p == '&')
				p++;
		}
	}
	if (raw != NULL)
		*decoded = decode(raw, strlen(raw), false);
	return raw;
}

/* How far a URL in a message may reach: to white space or a quote. */
static size_t url_len(const char *a)
{
	return strcspn(a, " \t\r\n\"'`<>");
}

static bool word_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_';
}

/* The length of a key's value at v: quoted to its closing quote, else to
 * white space, '&' or the end. */
static size_t value_len(const char *v)
{
	size_t n;

	if (*v == '\'' || *v == '"') {
		for (n = 1; v[n] != '\0' && v[n] != v[0]; n++)
			if (v[n] == '\\' && v[n + 1] != '\0')
				n++;
		return v[n] == v[0] ? n + 1 : n;
	}
	return strcspn(v, " \t\r\n&");
}

void fl_pg_url_scrub(char *buf, size_t size)
{
	struct fl_buf out = FL_BUF_INIT;
	const char *p;

	if (buf == NULL || size == 0)
		return;
	for (p = buf; *p != '\0';) {
		size_t klen;

		if (strncmp(p, "://", 3) == 0) {
			const char *a = p + 3, *at, *colon = NULL;

			/* User info runs to the first '@', and holds no '/' (a path). */
			fl_buf_append(&out, p, 3);
			at = memchr(a, '@', url_len(a));
			if (at != NULL && memchr(a, '/', (size_t)(at - a)) == NULL)
				colon = memchr(a, ':', (size_t)(at - a));
			if (colon != NULL) {
				fl_buf_append(&out, a, (size_t)(colon - a) + 1);
				fl_buf_puts(&out, "***");
				p = at;
			} else {
				p = a;
			}
			continue;
		}
		klen = (p == buf || !word_char(p[-1])) && strncasecmp(p, "password=", 9) == 0 ? 9
		       : (p == buf || !word_char(p[-1])) && strncasecmp(p, "sslpassword=", 12) == 0
		           ? 12
		           : 0;
		if (klen > 0) {
			fl_buf_append(&out, p, klen);
			fl_buf_puts(&out, "***");
			p += klen + value_len(p + klen);
			continue;
		}
		fl_buf_append(&out, p, 1);
		p++;
	}
	snprintf(buf, size, "%s", fl_buf_str(&out));
	if (out.data != NULL)
		sodium_memzero(out.data, out.cap);
	fl_buf_fini(&out);
}
