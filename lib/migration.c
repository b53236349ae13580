/*
 * Loading a Prisma migrations folder.
 *
 * What Prisma does, and so what we do (prisma/prisma
 * packages/migrate/src/utils/listMigrations.ts since 6.6, prisma-engines
 * migrations_directory.rs before it):
 * - every entry of the folder that is a directory (not a symlink to one) is a
 *   migration, hidden ones included; files such as migration_lock.toml are not;
 *   a symlink to a folder is skipped with a warning (Prisma skips it silently);
 * - the migration's name is the folder name, unvalidated by Prisma;
 * - the order is the folder names' String.prototype.localeCompare order (ICU
 *   collation, en-US/root), see fl_migration_id_cmp;
 * - migration_lock.toml, if present, names the provider.
 *
 * What we add: a missing migration.sql is an error at load time (Prisma fails
 * later, when it reads the script), and names and files that would break us
 * downstream are refused up front: names over 255 bytes, with '/' or control
 * characters, or not UTF-8; files over FL_MIGRATION_FILE_MAX, with a NUL byte,
 * or not UTF-8.
 */
#include "migration.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "checksum.h"
#include "duration.h"
#include "file.h"
#include "graph.h"
#include "log.h"
#include "mem.h"
#include "utf8.h"

#define LOCK_FILE     "migration_lock.toml"
#define LOCK_FILE_MAX (64u * 1024)
#define SHOW_MAX      300 /* room for a name quoted in a message, escapes included */

/* ---- small helpers ---- */

static char *join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	int slash = dl > 0 && dir[dl - 1] != '/';
	char *p = fl_malloc(dl + (size_t)slash + nl + 1);

	memcpy(p, dir, dl);
	if (slash)
		p[dl] = '/';
	memcpy(p + dl + (size_t)slash, name, nl + 1);
	return p;
}

static size_t line_of(const char *data, size_t off)
{
	size_t line = 1, i;

	for (i = 0; i < off; i++)
		if (data[i] == '\n')
			line++;
	return line;
}

/* Why s is not acceptable as a migration name, or NULL if it is. */
const char *fl_migration_id_problem(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return "empty";
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return "not a folder name";
	if (len > FL_MIGRATION_ID_MAX)
		return "longer than 255 bytes";
	if (!fl_utf8_valid(s, len, NULL))
		return "not valid UTF-8";
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/')
			return "contains '/'";
		if (c < 0x20 || c == 0x7f)
			return "contains a control character";
		/* C1 controls U+0080..U+009F are encoded as C2 80..C2 9F. */
		if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)
			return "contains a control character";
	}
	return NULL;
}

/* ---- Prisma's order ---- */

/*
 * Primary collation weights of ASCII, in the order ICU's root collation (which
 * en-US uses unchanged) puts them: space, punctuation and symbols, digits, then
 * letters with case ignored. Control characters are ignorable (0).
 */
static const unsigned char ascii_primary[128] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* controls */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* controls */
    1,  7,  11, 23, 33, 24, 22, 10, 12, 13, 19, 27, 4,  3,  9,  20, /*  !"#$%&'()*+,-./ */
    34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 6,  5,  28, 29, 30, 8,  /* 0123456789:;<=>? */
    18, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, /* @ABCDEFGHIJKLMNO */
    59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 14, 21, 15, 26, 2,  /* PQRSTUVWXYZ[\]^_ */
    25, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, /* `abcdefghijklmno */
    59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 16, 31, 17, 32, 0,  /* pqrstuvwxyz{|}~  */
};

/*
 * The next collation element of *p: its primary weight (0 at the end) and its
 * tertiary weight (1 for an uppercase letter, else 0). Non-ASCII characters
 * sort after all of ASCII by code point: an approximation of ICU, which is
 * exact for the ASCII names Prisma generates and people write.
 */
static uint32_t next_weight(const unsigned char **p, int *tertiary)
{
	for (;;) {
		const unsigned char *s = *p;
		uint32_t cp;
		size_t n, i;

		*tertiary = 0;
		if (*s == 0)
			return 0;
		if (*s < 0x80) {
			(*p)++;
			if (ascii_primary[*s] == 0)
				continue;
			*tertiary = *s >= 'A' && *s <= 'Z';
			return ascii_primary[*s];
		}
		n = *s >= 0xf0 ? 3 : *s >= 0xe0 ? 2 : *s >= 0xc0 ? 1 : 0;
		cp = *s & (0x3f >> n);
		for (i = 1; i <= n && (s[i] & 0xc0) == 0x80; i++)
			cp = cp << 6 | (s[i] & 0x3f);
		if (i <= n) { /* broken sequence: weigh the lead byte alone */
			cp = *s;
			i = 1;
		}
		*p = s + i;
		return 0x100 + cp;
	}
}

int fl_migration_id_cmp(const char *a, const char *b)
{
	const unsigned char *pa = (const unsigned char *)a, *pb = (const unsigned char *)b;
	int tertiary = 0, r;

	/* Primary level over the whole strings first, then the first case
	 * difference, then bytes so that the order is total. */
	for (;;) {
		int ta, tb;
		uint32_t wa = next_weight(&pa, &ta), wb = next_weight(&pb, &tb);

		if (wa != wb)
			return wa < wb ? -1 : 1;
		if (wa == 0)
			break;
		if (tertiary == 0 && ta != tb)
			tertiary = ta < tb ? -1 : 1;
	}
	if (tertiary)
		return tertiary;
	r = strcmp(a, b);
	return (r > 0) - (r < 0);
}

static int cmp_names(const void *x, const void *y)
{
	return fl_migration_id_cmp(*(char *const *)x, *(char *const *)y);
}

/* ---- files ---- */

/*
 * Read path into a NUL-terminated heap buffer of at most max bytes. With
 * missing not NULL, a file that does not exist is no error: *missing is set.
 */
static enum fl_err read_file(const char *path, size_t max, char **data, size_t *len, bool *missing,
                             char *errbuf)
{
	struct fl_buf buf = FL_BUF_INIT;
	enum fl_err rv;

	*data = NULL;
	*len = 0;
	if (missing)
		*missing = false;
	rv = fl_file_read(path, max, missing ? FL_FILE_MISSING_OK : 0, &buf, errbuf);
	if (rv == FL_ENOENT && missing) {
		*missing = true;
		return FL_OK;
	}
	if (rv != FL_OK) {
		fl_buf_fini(&buf);
		return rv;
	}
	*len = buf.len;
	*data = fl_buf_detach(&buf);
	return FL_OK;
}

/* Text we hand to PostgreSQL or parse: no NUL byte, valid UTF-8. */
static enum fl_err check_text(const char *path, const char *data, size_t len, char *errbuf)
{
	const char *nul = memchr(data, '\0', len);
	size_t bad;

	if (!fl_utf8_valid(data, len, &bad) && (nul == NULL || bad < (size_t)(nul - data)))
		return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: invalid UTF-8", path,
		               line_of(data, bad));
	if (nul)
		return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: contains a NUL byte", path,
		               line_of(data, (size_t)(nul - data)));
	return FL_OK;
}

/* ---- migration_lock.toml ---- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_key_char(char c)
{
	return c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool word_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

/*
 * Prisma writes comment lines and `provider = "postgresql"`. We take blank
 * lines, `#` comments and `key = "value"` lines (bare key, no escapes, an
 * optional trailing comment); keys other than provider are Prisma's business.
 */
static enum fl_err read_lock(const char *dir, char **provider, char *errbuf)
{
	char *path = join(dir, LOCK_FILE), *data = NULL, *value = NULL;
	size_t len, line = 0, prov_line = 0;
	const char *p, *end;
	enum fl_err rv;
	bool missing;

	*provider = NULL;
	if ((rv = read_file(path, LOCK_FILE_MAX, &data, &len, &missing, errbuf)) != FL_OK)
		goto out;
	if (missing)
		goto out;
	if ((rv = check_text(path, data, len, errbuf)) != FL_OK)
		goto out;
	for (p = data, end = data + len; p < end;) {
		const char *le = memchr(p, '\n', (size_t)(end - p)), *k, *ke, *v, *ve, *t;

		if (le == NULL)
			le = end;
		line++;
		k = p;
		p = le < end ? le + 1 : end;
		if (le > k && le[-1] == '\r')
			le--;
		while (k < le && is_space(*k))
			k++;
		if (k == le || *k == '#')
			continue;
		for (ke = k; ke < le && is_key_char(*ke); ke++)
			;
		for (v = ke; v < le && is_space(*v); v++)
			;
		if (ke == k || v == le || *v != '=')
			goto syntax;
		for (v++; v < le && is_space(*v); v++)
			;
		if (v == le || *v != '"')
			goto syntax;
		for (ve = ++v; ve < le && *ve != '"' && *ve != '\\'; ve++)
			;
		if (ve == le || *ve != '"')
			goto syntax;
		for (t = ve + 1; t < le && is_space(*t); t++)
			;
		if (t < le && *t != '#')
			goto syntax;
		if (!word_is(k, (size_t)(ke - k), "provider"))
			continue;
		if (value) {
			rv = fl_errf(errbuf, FL_EPARSE,
			             "'%s':%zu: provider is already set on line %zu", path, line,
			             prov_line);
			goto out;
		}
		value = fl_strndup(v, (size_t)(ve - v));
		prov_line = line;
		if (strcmp(value, "postgresql") != 0 && strcmp(value, "postgres") != 0) {
			char shown[SHOW_MAX];
			rv = fl_errf(errbuf, FL_EPARSE,
			             "'%s':%zu: provider '%s' is not supported, only postgresql",
			             path, line,
			             fl_err_quote(shown, sizeof(shown), value, strlen(value)));
			goto out;
		}
	}
	if (value == NULL) {
		/* Prisma reads a lock file without a provider as a provider mismatch. */
		rv = fl_errf(errbuf, FL_EPARSE, "'%s': no provider", path);
		goto out;
	}
	*provider = value;
	value = NULL;
	goto out;
syntax:
	rv = fl_errf(errbuf, FL_EPARSE, "'%s':%zu: expected key = \"value\"", path, line);
out:
	free(value);
	free(data);
	free(path);
	return rv;
}

/* ---- directives ---- */

enum seen {
	SEEN_NO_TX = 1,
	SEEN_LOCK = 2,
	SEEN_STMT = 4,
	SEEN_PHASE = 8,
};

static void reset_directives(struct fl_migration *m)
{
	size_t i;

	for (i = 0; i < m->n_requires; i++)
		free(m->requires[i]);
	free(m->requires);
	m->requires = NULL;
	m->n_requires = 0;
	m->no_transaction = false;
	m->lock_timeout_ms = -1;
	m->statement_timeout_ms = -1;
	m->phase = FL_PHASE_UNSET;
}

/* One `-- flotilla:` line: s..e is what follows "flotilla:". */
static enum fl_err directive(struct fl_migration *m, const char *file, size_t line, const char *s,
                             const char *e, unsigned *seen, char *errbuf)
{
	char shown[SHOW_MAX], text[65], eb[FL_ERRBUF_SIZE];
	const char *name = s, *ne, *v;
	size_t nlen, vlen;
	unsigned flag = 0;
	int64_t *timeout = NULL;
	size_t i;

	for (ne = name; ne < e && !is_space(*ne); ne++)
		;
	nlen = (size_t)(ne - name);
	for (v = ne; v < e && is_space(*v); v++)
		;
	while (e > v && is_space(e[-1]))
		e--;
	vlen = (size_t)(e - v);
	if (nlen == 0)
		return fl_errf(errbuf, FL_EPARSE,
		               "'%s':%zu: missing directive name after 'flotilla:'", file, line);

	if (word_is(name, nlen, "no-transaction")) {
		flag = SEEN_NO_TX;
	} else if (word_is(name, nlen, "lock-timeout")) {
		flag = SEEN_LOCK;
		timeout = &m->lock_timeout_ms;
	} else if (word_is(name, nlen, "statement-timeout")) {
		flag = SEEN_STMT;
		timeout = &m->statement_timeout_ms;
	} else if (word_is(name, nlen, "phase")) {
		flag = SEEN_PHASE;
	} else if (!word_is(name, nlen, "requires")) {
		return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: unknown directive 'flotilla:%s'", file,
		               line, fl_err_quote(shown, sizeof(shown), name, nlen));
	}
	if (flag & *seen)
		return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: directive '%.*s' given twice", file,
		               line, (int)nlen, name);
	*seen |= flag;

	if (flag == SEEN_NO_TX) {
		if (vlen)
			return fl_errf(errbuf, FL_EPARSE,
			               "'%s':%zu: directive 'no-transaction' takes no value", file,
			               line);
		m->no_transaction = true;
		return FL_OK;
	}
	if (vlen == 0)
		return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: directive '%.*s' needs a value", file,
		               line, (int)nlen, name);
	if (flag == SEEN_PHASE) {
		if (word_is(v, vlen, "expand"))
			m->phase = FL_PHASE_EXPAND;
		else if (word_is(v, vlen, "contract"))
			m->phase = FL_PHASE_CONTRACT;
		else
			return fl_errf(errbuf, FL_EPARSE,
			               "'%s':%zu: phase must be expand or contract, not '%s'", file,
			               line, fl_err_quote(shown, sizeof(shown), v, vlen));
		return FL_OK;
	}
	if (timeout) {
		if (vlen > 64)
			return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: %.*s: invalid duration '%s'",
			               file, line, (int)nlen, name,
			               fl_err_quote(shown, sizeof(shown), v, vlen));
		memcpy(text, v, vlen);
		text[vlen] = '\0';
		if (fl_duration_parse(text, timeout, eb) != FL_OK)
			return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: %.*s: %s", file, line,
			               (int)nlen, name, eb);
		return FL_OK;
	}
	/* requires <id>: the id is the rest of the line, as ids may hold spaces. */
	{
		const char *why = fl_migration_id_problem(v, vlen);
		if (why)
			return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: requires '%s': %s", file, line,
			               fl_err_quote(shown, sizeof(shown), v, vlen), why);
	}
	for (i = 0; i < m->n_requires; i++)
		if (word_is(v, vlen, m->requires[i]))
			return fl_errf(errbuf, FL_EPARSE, "'%s':%zu: requires '%s' given twice",
			               file, line, fl_err_quote(shown, sizeof(shown), v, vlen));
	m->requires = fl_realloc(m->requires, (m->n_requires + 1) * sizeof(*m->requires));
	m->requires[m->n_requires++] = fl_strndup(v, vlen);
	return FL_OK;
}

enum fl_err fl_migration_parse_directives(struct fl_migration *m, const char *file, char *errbuf)
{
	const char *p = m->sql ? m->sql : "", *end = p + (m->sql ? m->sql_len : 0);
	bool header = true;
	unsigned seen = 0;
	size_t line = 0;
	enum fl_err rv;

	if (file == NULL)
		file = "migration.sql";
	reset_directives(m);
	if (end - p >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3; /* a BOM some editors write */
	while (p < end) {
		const char *le = memchr(p, '\n', (size_t)(end - p)), *s, *q;

		if (le == NULL)
			le = end;
		line++;
		s = p;
		p = le < end ? le + 1 : end;
		if (le > s && le[-1] == '\r')
			le--;
		while (s < le && is_space(*s))
			s++;
		if (s == le)
			continue;
		if (le - s < 2 || s[0] != '-' || s[1] != '-') {
			header = false;
			continue;
		}
		for (q = s + 2; q < le && is_space(*q); q++)
			;
		if (le - q < 9 || strncasecmp(q, "flotilla:", 9) != 0)
			continue;
		if (!header) {
			rv = fl_errf(errbuf, FL_EPARSE,
			             "'%s':%zu: '-- flotilla:' directive after the first statement "
			             "(directives go in the comment block at the top)",
			             file, line);
			goto fail;
		}
		if ((rv = directive(m, file, line, q + 9, le, &seen, errbuf)) != FL_OK)
			goto fail;
	}
	return FL_OK;
fail:
	reset_directives(m);
	return rv;
}

/* ---- the set ---- */

static void migration_fini(struct fl_migration *m)
{
	reset_directives(m);
	free(m->id);
	free(m->path);
	free(m->sql);
	free(m->down_sql);
	free(m->verify_sql);
	free(m->deps);
	memset(m, 0, sizeof(*m));
}

void fl_migration_set_fini(struct fl_migration_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->count; i++)
		migration_fini(&set->items[i]);
	free(set->items);
	free(set->dir);
	free(set->provider);
	memset(set, 0, sizeof(*set));
}

/* The names of the migration folders under dir, in Prisma's order. */
static enum fl_err list_dirs(const char *dir, char ***out, size_t *count, char *errbuf)
{
	char **names = NULL, eb[128], shown[SHOW_MAX];
	size_t n = 0, cap = 0, i;
	enum fl_err rv = FL_OK;
	struct dirent *e;
	DIR *d;

	*out = NULL;
	*count = 0;
	d = opendir(dir);
	if (d == NULL)
		return fl_errf(errbuf, errno == ENOENT || errno == ENOTDIR ? FL_ENOENT : FL_EIO,
		               "cannot open '%s': %s", dir, fl_err_errno(errno, eb, sizeof(eb)));
	for (;;) {
		struct stat st;
		const char *why;
		size_t len;

		errno = 0;
		if ((e = readdir(d)) == NULL) {
			if (errno != 0)
				rv = fl_errf(errbuf, FL_EIO, "cannot read '%s': %s", dir,
				             fl_err_errno(errno, eb, sizeof(eb)));
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* Not following symlinks, as Node's Dirent.isDirectory() does not. */
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			char *path = join(dir, e->d_name);
			rv = fl_errf(errbuf, FL_EIO, "cannot stat '%s': %s", path,
			             fl_err_errno(errno, eb, sizeof(eb)));
			free(path);
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			struct stat to;

			/* Prisma skips it; say so, rather than skip it in silence. */
			if (fstatat(dirfd(d), e->d_name, &to, 0) == 0 && S_ISDIR(to.st_mode)) {
				char *path = join(dir, e->d_name);

				len = strlen(path);
				fl_log_warn(
				    NULL,
				    "'%s' is a symbolic link to a folder: not a migration, as "
				    "Prisma skips it too (copy the folder instead)",
				    fl_err_quote(shown, sizeof(shown), path, len));
				free(path);
			}
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		len = strlen(e->d_name);
		if ((why = fl_migration_id_problem(e->d_name, len)) != NULL) {
			rv = fl_errf(errbuf, FL_EPARSE, "invalid migration name '%s' in '%s': %s",
			             fl_err_quote(shown, sizeof(shown), e->d_name, len), dir, why);
			break;
		}
		names = fl_grow(names, &cap, n + 1, sizeof(*names));
		names[n++] = fl_strdup(e->d_name);
	}
	closedir(d);
	if (rv != FL_OK) {
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return rv;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	*count = n;
	return FL_OK;
}

/* Read an optional companion file (down.sql, verify.sql). */
static enum fl_err read_extra(const char *dir, const char *name, char **data, size_t *len,
                              char *errbuf)
{
	char *path = join(dir, name);
	enum fl_err rv;
	bool missing;

	rv = read_file(path, FL_MIGRATION_FILE_MAX, data, len, &missing, errbuf);
	if (rv == FL_OK && !missing && (rv = check_text(path, *data, *len, errbuf)) != FL_OK) {
		free(*data);
		*data = NULL;
		*len = 0;
	}
	free(path);
	return rv;
}

static enum fl_err load_one(struct fl_migration *m, char *errbuf)
{
	char *path = join(m->path, "migration.sql");
	enum fl_err rv;

	if ((rv = read_file(path, FL_MIGRATION_FILE_MAX, &m->sql, &m->sql_len, NULL, errbuf)) !=
	    FL_OK)
		goto out;
	if ((rv = check_text(path, m->sql, m->sql_len, errbuf)) != FL_OK)
		goto out;
	fl_checksum_compute(m->sql, m->sql_len, m->checksum);
	if ((rv = fl_migration_parse_directives(m, path, errbuf)) != FL_OK)
		goto out;
	if ((rv = read_extra(m->path, "down.sql", &m->down_sql, &m->down_len, errbuf)) != FL_OK)
		goto out;
	rv = read_extra(m->path, "verify.sql", &m->verify_sql, &m->verify_len, errbuf);
out:
	free(path);
	return rv;
}

enum fl_err fl_migration_set_load(const char *dir, struct fl_migration_set *set, char *errbuf)
{
	struct fl_migration_set s;
	char **names = NULL;
	size_t n = 0, i;
	enum fl_err rv;

	memset(&s, 0, sizeof(s));
	memset(set, 0, sizeof(*set));
	if ((rv = list_dirs(dir, &names, &n, errbuf)) != FL_OK)
		return rv;
	s.dir = fl_strdup(dir);
	/* The items own the names from here on, so one fini frees everything. */
	s.items = fl_calloc(n, sizeof(*s.items));
	s.count = n;
	for (i = 0; i < n; i++) {
		s.items[i].id = names[i];
		s.items[i].path = join(dir, names[i]);
		s.items[i].lock_timeout_ms = -1;
		s.items[i].statement_timeout_ms = -1;
	}
	free(names);
	if ((rv = read_lock(dir, &s.provider, errbuf)) != FL_OK)
		goto fail;
	for (i = 0; i < n; i++)
		if ((rv = load_one(&s.items[i], errbuf)) != FL_OK)
			goto fail;
	if ((rv = fl_graph_sort(&s, errbuf)) != FL_OK)
		goto fail;
	*set = s;
	return FL_OK;
fail:
	fl_migration_set_fini(&s);
	return rv;
}

const struct fl_migration *fl_migration_set_find(const struct fl_migration_set *set, const char *id)
{
	long i = fl_migration_set_index(set, id);

	return i < 0 ? NULL : &set->items[i];
}

long fl_migration_set_index(const struct fl_migration_set *set, const char *id)
{
	size_t i;

	if (set == NULL || id == NULL)
		return -1;
	for (i = 0; i < set->count; i++)
		if (strcmp(set->items[i].id, id) == 0)
			return (long)i;
	return -1;
}
