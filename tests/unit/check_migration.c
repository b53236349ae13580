/*
 * Loading migrations folders: Prisma's order and layout, migration_lock.toml,
 * directives, and every refusal with the path and line it names.
 *
 * Fixtures git can hold live in $FL_TEST_DATA/migrations/<case>/; the rest
 * (empty folders, NUL bytes, invalid UTF-8, CRLF, odd names) are written at
 * test time under one temporary folder per test case, removed by an
 * unchecked teardown so that it goes even when a test fails.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "checksum.h"
#include "graph.h"
#include "migration.h"

/* ---- helpers ---- */

static char tmp_root[256];

/* snprintf that fails the test instead of cutting a path short. */
static void tmp_setup(void)
{
	fl_test_tmp_root(tmp_root, sizeof(tmp_root), "check_migration");
}

static void tmp_teardown(void)
{
	fl_test_rm_rf(tmp_root);
}

/* A fresh, empty folder for one test. */
static void new_dir(char *out, size_t n)
{
	fl_test_fmt(out, n, "%s/m.XXXXXX", tmp_root);
	ck_assert_ptr_nonnull(mkdtemp(out));
}

/* Write rel (creating its folder) under dir. */
static void put(const char *dir, const char *rel, const void *data, size_t len)
{
	char path[4096], *slash;
	FILE *f;

	fl_test_fmt(path, sizeof(path), "%s/%s", dir, rel);
	slash = strrchr(path, '/');
	*slash = '\0';
	if (mkdir(path, 0755) != 0)
		ck_assert_int_eq(errno, EEXIST);
	*slash = '/';
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static void puts_file(const char *dir, const char *rel, const char *text)
{
	put(dir, rel, text, strlen(text));
}

static void data_dir(char *out, size_t n, const char *name)
{
	const char *data = getenv("FL_TEST_DATA");

	ck_assert_msg(data != NULL, "FL_TEST_DATA is not set (run through ctest)");
	fl_test_fmt(out, n, "%s/migrations/%s", data, name);
}

/* Load dir expecting failure rv with exactly msg; the set must come back empty. */
static void load_fails(const char *dir, enum fl_err rv, const char *msg)
{
	struct fl_migration_set s;
	char err[FL_ERRBUF_SIZE] = "";

	memset(&s, 0xa5, sizeof(s));
	ck_assert_int_eq(fl_migration_set_load(dir, &s, err), rv);
	ck_assert_str_eq(err, msg);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_ptr_null(s.items);
	ck_assert_ptr_null(s.dir);
	ck_assert_ptr_null(s.provider);
}

/* ---- Prisma's order ---- */

static const char *const history_order[] = {
    "20200101_init",
    "20210315142530_create_users",
    "20220101000000_add name with spaces",
    "20230615_hotfix",
    "20230615093000_1_backfill",
    "20230615093000_10_backfill",
    "20230615093000_2_backfill",
    "20230615093000_a",
    "20230615093000_add posts",
    "20230615093000_Add posts",
    "20230615093000_add_user_roles",
    "20230615093000_add_users",
    "20230615093000_add_users_2",
    "20230615093000_add-comments",
    "20230615093000_addIndex",
    "20230615093000_alpha",
    "20230615093000_Alpha",
    "20230615093000_b",
    "20230615093000_B",
    "20230615093000_drop.old",
    "20230615093000_z",
    "20230615093000_Zeta",
    "202306150930001_backfill_emails",
    "20230615093000123_reindex_orders",
    "20240101120000_final",
};
#define N_HISTORY (sizeof(history_order) / sizeof(history_order[0]))

START_TEST(id_cmp_follows_prisma_locale_order)
{
	/* Expected results are those of JavaScript's a.localeCompare(b) (Prisma >= 6.6). */
	static const struct {
		const char *a, *b;
		int sign;
	} cases[] = {
	    {"20240101_a", "20240101120000_b", -1}, /* '_' before digits: 8-digit first */
	    {"20240101120000_x", "202401011200001_y", -1},
	    {"20240101120000001_z", "202401011200001_y", -1},
	    {"x_a", "x_B", -1},
	    {"x_B", "x_b2", -1},
	    {"x_b", "x_B", -1}, /* case only breaks ties, lowercase first */
	    {"x_B", "x_b", 1},
	    {"x_Add", "x_add", 1},
	    {"x_Add", "x_adE", -1}, /* letters first, case after */
	    {"a b", "a_b", -1},
	    {"a_b", "a-b", -1},
	    {"a-b", "a.b", -1},
	    {"a.b", "a0", -1},
	    {"a9", "aa", -1},
	    {"Z", "a", 1},
	    {"a", "a_", -1},
	    {"", "a", -1},
	    {"20240101120000_a", "20240101120000_a", 0},
	    {"x_é", "x_z", 1}, /* beyond ASCII: after ASCII letters */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = fl_migration_id_cmp(cases[i].a, cases[i].b);
		int back = fl_migration_id_cmp(cases[i].b, cases[i].a);
		ck_assert_msg((r > 0) - (r < 0) == cases[i].sign, "'%s' vs '%s': %d", cases[i].a,
		              cases[i].b, r);
		ck_assert_int_eq((back > 0) - (back < 0), -cases[i].sign);
	}
}
END_TEST

static int cmp_ids(const void *x, const void *y)
{
	return fl_migration_id_cmp(*(const char *const *)x, *(const char *const *)y);
}

START_TEST(id_cmp_sorts_history_like_prisma)
{
	const char *v[N_HISTORY];
	size_t i;

	/* Reversed, then sorted: must come back in Prisma's order. */
	for (i = 0; i < N_HISTORY; i++)
		v[i] = history_order[N_HISTORY - 1 - i];
	qsort(v, N_HISTORY, sizeof(v[0]), cmp_ids);
	for (i = 0; i < N_HISTORY; i++)
		ck_assert_str_eq(v[i], history_order[i]);
}
END_TEST

/* ---- the realistic fixture ---- */

START_TEST(loads_prisma_history)
{
	struct fl_migration_set s;
	char dir[4096], err[FL_ERRBUF_SIZE] = "", path[4096];
	const struct fl_migration *m;
	size_t i;

	data_dir(dir, sizeof(dir), "prisma_history");
	/* In byte order add-comments would come before the add_users it requires. */
	ck_assert_msg(fl_migration_set_load(dir, &s, err) == FL_OK, "%s", err);
	ck_assert_str_eq(err, "");
	ck_assert_str_eq(s.dir, dir);
	ck_assert_str_eq(s.provider, "postgresql");
	/* README.md and migration_lock.toml are not migrations. */
	ck_assert_uint_eq(s.count, N_HISTORY);
	for (i = 0; i < N_HISTORY; i++) {
		ck_assert_str_eq(s.items[i].id, history_order[i]);
		fl_test_fmt(path, sizeof(path), "%s/%s", dir, history_order[i]);
		ck_assert_str_eq(s.items[i].path, path);
		ck_assert_int_eq(fl_migration_set_index(&s, history_order[i]), (long)i);
		/* Each follows its predecessor. */
		ck_assert_uint_ge(s.items[i].n_deps, i ? 1 : 0);
		if (i)
			ck_assert_uint_eq(s.items[i].deps[0], i - 1);
	}

	/* Checksums from sha256sum of the fixture files. */
	m = fl_migration_set_find(&s, "20200101_init");
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->checksum,
	                 "74321ef4af21dd277012df04272490dac49483b673162e05f491e8db020c4494");
	ck_assert_ptr_nonnull(m->down_sql);
	ck_assert_str_eq(m->down_sql, "DROP TABLE \"User\";\n");
	ck_assert_uint_eq(m->down_len, 19);
	ck_assert_ptr_null(m->verify_sql);
	ck_assert(!m->no_transaction);
	ck_assert_int_eq(m->lock_timeout_ms, -1);
	ck_assert_int_eq(m->statement_timeout_ms, -1);
	ck_assert_int_eq(m->phase, FL_PHASE_UNSET);
	ck_assert_uint_eq(m->n_requires, 0);

	m = fl_migration_set_find(&s, "20220101000000_add name with spaces");
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->checksum,
	                 "5ba0af376f6d88b7c7d2112c2692b0090962259adcf1061518e274ac30a88fe4");
	ck_assert_ptr_null(m->down_sql);

	/* An empty migration.sql is a valid migration, as in Prisma. */
	m = fl_migration_set_find(&s, "20240101120000_final");
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->sql_len, 0);
	ck_assert_str_eq(m->sql, "");
	ck_assert_str_eq(m->checksum,
	                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	m = fl_migration_set_find(&s, "20230615093000_add-comments");
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->n_requires, 1);
	ck_assert_str_eq(m->requires[0], "20230615093000_add_users");
	ck_assert_int_eq(m->lock_timeout_ms, 5000);
	ck_assert_int_eq(m->statement_timeout_ms, 600000);
	ck_assert(!m->no_transaction);
	ck_assert_ptr_nonnull(m->verify_sql);
	ck_assert_ptr_nonnull(m->down_sql);
	ck_assert_uint_eq(m->n_deps, 2);
	ck_assert_uint_eq(m->deps[1],
	                  (size_t)fl_migration_set_index(&s, "20230615093000_add_users"));

	m = fl_migration_set_find(&s, "20230615093000_addIndex");
	ck_assert_ptr_nonnull(m);
	ck_assert(m->no_transaction);
	ck_assert_int_eq(m->phase, FL_PHASE_EXPAND);

	m = fl_migration_set_find(&s, "20230615093000_drop.old");
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->phase, FL_PHASE_CONTRACT);
	ck_assert_uint_eq(m->n_requires, 2);
	ck_assert_str_eq(m->requires[0], "20220101000000_add name with spaces");
	ck_assert_str_eq(m->requires[1], "20230615093000_addIndex");
	ck_assert_uint_eq(m->n_deps, 3);
	ck_assert_uint_eq(m->deps[1], 2);

	ck_assert_ptr_null(fl_migration_set_find(&s, "20230615093000_nope"));
	ck_assert_int_eq(fl_migration_set_index(&s, "20230615093000_nope"), -1);
	ck_assert_int_eq(fl_migration_set_index(&s, NULL), -1);

	fl_migration_set_fini(&s);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_ptr_null(s.items);
	fl_migration_set_fini(&s); /* twice is harmless */
	fl_migration_set_fini(NULL);
}
END_TEST

START_TEST(dir_with_trailing_slash)
{
	struct fl_migration_set s;
	char dir[4096], err[FL_ERRBUF_SIZE];

	data_dir(dir, sizeof(dir), "no_lock/");
	ck_assert_int_eq(fl_migration_set_load(dir, &s, err), FL_OK);
	ck_assert_uint_eq(s.count, 1);
	ck_assert_ptr_null(s.provider);
	ck_assert_str_eq(s.items[0].id, "20240101000000_init");
	/* No doubled slash in the path. */
	ck_assert_ptr_null(strstr(s.items[0].path, "//"));
	fl_migration_set_fini(&s);
}
END_TEST

/* ---- folders ---- */

START_TEST(nonexistent_folder)
{
	char dir[4096], msg[8192];

	fl_test_fmt(dir, sizeof(dir), "%s/does-not-exist", tmp_root);
	fl_test_fmt(msg, sizeof(msg), "cannot open '%s': No such file or directory", dir);
	load_fails(dir, FL_ENOENT, msg);
}
END_TEST

START_TEST(folder_is_a_file)
{
	char dir[4096], file[4096], msg[8192];

	new_dir(dir, sizeof(dir));
	puts_file(dir, "plain", "x");
	fl_test_fmt(file, sizeof(file), "%s/plain", dir);
	fl_test_fmt(msg, sizeof(msg), "cannot open '%s': Not a directory", file);
	load_fails(file, FL_ENOENT, msg);
}
END_TEST

START_TEST(empty_folder_is_no_error)
{
	struct fl_migration_set s;
	char dir[4096], err[FL_ERRBUF_SIZE] = "";

	new_dir(dir, sizeof(dir));
	puts_file(dir, "migration_lock.toml", "provider = \"postgresql\"\n");
	ck_assert_int_eq(fl_migration_set_load(dir, &s, err), FL_OK);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_str_eq(s.provider, "postgresql");
	ck_assert_str_eq(s.dir, dir);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(missing_migration_sql)
{
	char dir[4096], sub[4096], msg[8192];

	new_dir(dir, sizeof(dir));
	puts_file(dir, "20240101000000_a/migration.sql", "SELECT 1;\n");
	fl_test_fmt(sub, sizeof(sub), "%s/20240102000000_empty", dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	fl_test_fmt(msg, sizeof(msg), "cannot open '%s/migration.sql': No such file or directory",
	            sub);
	load_fails(dir, FL_ENOENT, msg);
}
END_TEST

START_TEST(hidden_folder_is_a_migration)
{
	struct fl_migration_set s;
	char dir[4096], err[FL_ERRBUF_SIZE];

	/* Prisma does not skip hidden folders, so neither do we. */
	new_dir(dir, sizeof(dir));
	puts_file(dir, "20240101000000_a/migration.sql", "SELECT 1;\n");
	puts_file(dir, ".hidden/migration.sql", "SELECT 2;\n");
	ck_assert_int_eq(fl_migration_set_load(dir, &s, err), FL_OK);
	ck_assert_uint_eq(s.count, 2);
	ck_assert_str_eq(s.items[0].id, ".hidden"); /* '.' sorts before digits */
	ck_assert_str_eq(s.items[1].id, "20240101000000_a");
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(symlinked_folder_is_skipped)
{
	struct fl_migration_set s;
	char dir[4096], other[4096], link[4096], err[FL_ERRBUF_SIZE];

	/* Prisma's Dirent.isDirectory() is false for a symlink: not a migration. */
	new_dir(dir, sizeof(dir));
	new_dir(other, sizeof(other));
	puts_file(dir, "20240101000000_a/migration.sql", "SELECT 1;\n");
	puts_file(other, "20240102000000_b/migration.sql", "SELECT 2;\n");
	fl_test_fmt(link, sizeof(link), "%s/20240102000000_b", dir);
	fl_test_fmt(other + strlen(other), sizeof(other) - strlen(other), "/20240102000000_b");
	ck_assert_int_eq(symlink(other, link), 0);
	ck_assert_int_eq(fl_migration_set_load(dir, &s, err), FL_OK);
	ck_assert_uint_eq(s.count, 1);
	ck_assert_str_eq(s.items[0].id, "20240101000000_a");
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(name_not_utf8)
{
	char dir[4096], msg[8192];

	new_dir(dir, sizeof(dir));
	puts_file(dir, "2024\xff_bad/migration.sql", "SELECT 1;\n");
	fl_test_fmt(msg, sizeof(msg),
	            "invalid migration name '2024\\xff_bad' in '%s': not valid UTF-8", dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(name_with_control_character)
{
	char dir[4096], msg[8192];

	new_dir(dir, sizeof(dir));
	puts_file(dir, "2024_a\tb/migration.sql", "SELECT 1;\n");
	fl_test_fmt(msg, sizeof(msg),
	            "invalid migration name '2024_a\\x09b' in '%s': contains a control character",
	            dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(name_with_c1_control_character)
{
	char dir[4096], msg[8192];

	new_dir(dir, sizeof(dir));
	puts_file(dir,
	          "2024_a\xc2\x85"
	          "b/migration.sql",
	          "SELECT 1;\n");
	fl_test_fmt(msg, sizeof(msg),
	            "invalid migration name '2024_a\\xc2\\x85b' in '%s': contains a control "
	            "character",
	            dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(name_with_unicode_is_fine)
{
	struct fl_migration_set s;
	char dir[4096], err[FL_ERRBUF_SIZE];

	new_dir(dir, sizeof(dir));
	puts_file(dir, "20240101000000_caf\xc3\xa9/migration.sql", "SELECT 1;\n");
	ck_assert_int_eq(fl_migration_set_load(dir, &s, err), FL_OK);
	ck_assert_str_eq(s.items[0].id, "20240101000000_caf\xc3\xa9");
	fl_migration_set_fini(&s);
}
END_TEST

/* ---- file contents ---- */

START_TEST(nul_byte_names_the_line)
{
	static const char sql[] = "SELECT 1;\nSELECT '\0';\n";
	char dir[4096], msg[8192];

	new_dir(dir, sizeof(dir));
	put(dir, "20240101000000_a/migration.sql", sql, sizeof(sql) - 1);
	fl_test_fmt(msg, sizeof(msg), "'%s/20240101000000_a/migration.sql':2: contains a NUL byte",
	            dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(invalid_utf8_names_the_line)
{
	char dir[4096], msg[8192];

	new_dir(dir, sizeof(dir));
	puts_file(dir, "20240101000000_a/migration.sql",
	          "-- ok\nSELECT 'caf\xc3\xa9';\nSELECT 'caf\xe9';\n");
	fl_test_fmt(msg, sizeof(msg), "'%s/20240101000000_a/migration.sql':3: invalid UTF-8", dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(overlong_and_surrogate_are_invalid)
{
	char dir[4096], msg[8192];

	new_dir(dir, sizeof(dir));
	/* U+D800 encoded as UTF-8: a surrogate, refused. */
	puts_file(dir, "20240101000000_a/migration.sql", "SELECT '\xed\xa0\x80';\n");
	fl_test_fmt(msg, sizeof(msg), "'%s/20240101000000_a/migration.sql':1: invalid UTF-8", dir);
	load_fails(dir, FL_EPARSE, msg);
	new_dir(dir, sizeof(dir));
	/* '/' as a two-byte overlong. */
	puts_file(dir, "20240101000000_a/migration.sql", "\n\nSELECT '\xc0\xaf';\n");
	fl_test_fmt(msg, sizeof(msg), "'%s/20240101000000_a/migration.sql':3: invalid UTF-8", dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(bad_down_sql_is_refused)
{
	char dir[4096], msg[8192];

	new_dir(dir, sizeof(dir));
	puts_file(dir, "20240101000000_a/migration.sql", "SELECT 1;\n");
	puts_file(dir, "20240101000000_a/down.sql", "SELECT '\xff';\n");
	fl_test_fmt(msg, sizeof(msg), "'%s/20240101000000_a/down.sql':1: invalid UTF-8", dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(too_large_is_refused)
{
	char dir[4096], path[4096], msg[8192];
	int fd;

	new_dir(dir, sizeof(dir));
	puts_file(dir, "20240101000000_a/migration.sql", "");
	fl_test_fmt(path, sizeof(path), "%s/20240101000000_a/migration.sql", dir);
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	/* Sparse: takes no disk, and is refused before being read. */
	ck_assert_int_eq(ftruncate(fd, (off_t)FL_MIGRATION_FILE_MAX + 1), 0);
	close(fd);
	fl_test_fmt(msg, sizeof(msg), "'%s' is larger than the limit of 64 MiB", path);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(crlf_file_loads_with_raw_checksum)
{
	static const char sql[] = "-- flotilla:lock-timeout 5s\r\n-- flotilla:no-transaction\r\n"
	                          "SELECT 1;\r\n";
	struct fl_migration_set s;
	char dir[4096], err[FL_ERRBUF_SIZE], sum[FL_CHECKSUM_HEX_LEN + 1];

	new_dir(dir, sizeof(dir));
	puts_file(dir, "20240101000000_a/migration.sql", sql);
	ck_assert_int_eq(fl_migration_set_load(dir, &s, err), FL_OK);
	ck_assert_int_eq(s.items[0].lock_timeout_ms, 5000);
	ck_assert(s.items[0].no_transaction);
	ck_assert_uint_eq(s.items[0].sql_len, strlen(sql));
	ck_assert_mem_eq(s.items[0].sql, sql, strlen(sql));
	fl_checksum_compute(sql, strlen(sql), sum);
	ck_assert_str_eq(s.items[0].checksum, sum);
	fl_migration_set_fini(&s);
}
END_TEST

START_TEST(bom_does_not_hide_directives)
{
	static const char sql[] = "\xef\xbb\xbf-- flotilla:no-transaction\nSELECT 1;\n";
	struct fl_migration_set s;
	char dir[4096], err[FL_ERRBUF_SIZE], sum[FL_CHECKSUM_HEX_LEN + 1];

	new_dir(dir, sizeof(dir));
	puts_file(dir, "20240101000000_a/migration.sql", sql);
	ck_assert_int_eq(fl_migration_set_load(dir, &s, err), FL_OK);
	ck_assert(s.items[0].no_transaction);
	fl_checksum_compute(sql, strlen(sql), sum); /* the BOM is part of the bytes */
	ck_assert_str_eq(s.items[0].checksum, sum);
	fl_migration_set_fini(&s);
}
END_TEST

/* ---- migration_lock.toml ---- */

START_TEST(lock_other_provider_is_refused)
{
	char dir[4096], msg[8192];

	data_dir(dir, sizeof(dir), "lock_mysql");
	fl_test_fmt(
	    msg, sizeof(msg),
	    "'%s/migration_lock.toml':3: provider 'mysql' is not supported, only postgresql", dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(lock_malformed_line_is_refused)
{
	char dir[4096], msg[8192];

	data_dir(dir, sizeof(dir), "lock_malformed");
	fl_test_fmt(msg, sizeof(msg), "'%s/migration_lock.toml':2: expected key = \"value\"", dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

static const struct {
	const char *text;
	const char *provider; /* NULL: refused with msg */
	const char *msg;      /* after "'<dir>/migration_lock.toml'" */
} lock_cases[] = {
    {"provider = \"postgresql\"", "postgresql", NULL},
    {"provider = \"postgres\"\n", "postgres", NULL},
    {"# c\r\n\r\nprovider=\"postgresql\"   # trailing comment\r\n", "postgresql", NULL},
    {"\tprovider\t=\t\"postgresql\"\n", "postgresql", NULL},
    {"other_key = \"whatever\"\nprovider = \"postgresql\"\n", "postgresql", NULL},
    {"", NULL, ": no provider"},
    {"# Please do not edit this file manually\n", NULL, ": no provider"},
    {"provider = \"sqlite\"\n", NULL, ":1: provider 'sqlite' is not supported, only postgresql"},
    {"provider = \"PostgreSQL\"\n", NULL,
     ":1: provider 'PostgreSQL' is not supported, only postgresql"},
    {"provider = \"postgresql\"\nprovider = \"postgresql\"\n", NULL,
     ":2: provider is already set on line 1"},
    {"provider = 'postgresql'\n", NULL, ":1: expected key = \"value\""},
    {"provider = postgresql\n", NULL, ":1: expected key = \"value\""},
    {"provider = \"postgresql\" x\n", NULL, ":1: expected key = \"value\""},
    {"provider = \"postgres\\ql\"\n", NULL, ":1: expected key = \"value\""},
    {"provider = \"postgresql\n", NULL, ":1: expected key = \"value\""},
    {"\n\n= \"postgresql\"\n", NULL, ":3: expected key = \"value\""},
    {"[section]\n", NULL, ":1: expected key = \"value\""},
    {"provider = \"postgresql\"\n\xff\n", NULL, ":2: invalid UTF-8"},
};

START_TEST(lock_file_variants)
{
	struct fl_migration_set s;
	char dir[4096], err[FL_ERRBUF_SIZE] = "", msg[8192];
	enum fl_err rv;

	new_dir(dir, sizeof(dir));
	puts_file(dir, "migration_lock.toml", lock_cases[_i].text);
	puts_file(dir, "20240101000000_a/migration.sql", "SELECT 1;\n");
	rv = fl_migration_set_load(dir, &s, err);
	if (lock_cases[_i].provider) {
		ck_assert_msg(rv == FL_OK, "%s", err);
		ck_assert_str_eq(s.provider, lock_cases[_i].provider);
		fl_migration_set_fini(&s);
	} else {
		ck_assert_int_eq(rv, FL_EPARSE);
		fl_test_fmt(msg, sizeof(msg), "'%s/migration_lock.toml'%s", dir,
		            lock_cases[_i].msg);
		ck_assert_str_eq(err, msg);
		ck_assert_uint_eq(s.count, 0);
	}
}
END_TEST

/* ---- directives ---- */

START_TEST(directive_after_statement_in_folder)
{
	char dir[4096], msg[8192];

	data_dir(dir, sizeof(dir), "directive_late");
	fl_test_fmt(msg, sizeof(msg),
	            "'%s/20240101000000_init/migration.sql':4: '-- flotilla:' directive after the "
	            "first statement (directives go in the comment block at the top)",
	            dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(unknown_directive_in_folder)
{
	char dir[4096], msg[8192];

	data_dir(dir, sizeof(dir), "directive_unknown");
	fl_test_fmt(msg, sizeof(msg),
	            "'%s/20240101000000_init/migration.sql':3: unknown directive "
	            "'flotilla:lock-timout'",
	            dir);
	load_fails(dir, FL_EPARSE, msg);
}
END_TEST

START_TEST(unknown_requires_in_folder)
{
	char dir[4096];

	data_dir(dir, sizeof(dir), "requires_unknown");
	load_fails(dir, FL_EGRAPH,
	           "migration '20240102000000_add_n' requires unknown '20240101000000_iinit'");
}
END_TEST

START_TEST(cycle_in_folder)
{
	char dir[4096];

	data_dir(dir, sizeof(dir), "cycle");
	load_fails(dir, FL_EGRAPH,
	           "cycle: 20240101000000_a -> 20240102000000_b -> 20240103000000_c -> "
	           "20240101000000_a");
}
END_TEST

static void parse_ok(struct fl_migration *m, const char *sql)
{
	char err[FL_ERRBUF_SIZE];

	m->sql = (char *)sql;
	m->sql_len = strlen(sql);
	ck_assert_msg(fl_migration_parse_directives(m, "m.sql", err) == FL_OK, "%s", err);
}

static void free_requires(struct fl_migration *m)
{
	size_t i;

	for (i = 0; i < m->n_requires; i++)
		free(m->requires[i]);
	free(m->requires);
	m->requires = NULL;
	m->n_requires = 0;
}

static const struct {
	const char *sql;
	const char *msg; /* NULL: parses; else exact message after "'m.sql':" */
} directive_cases[] = {
    /* good ones, checked field by field in directives_good */
    {"", NULL},
    {"-- flotilla:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);\n", NULL},
    {"\n\n  -- a comment\n--flotilla:phase contract\n", NULL},
    {"-- flotilla:requires 20240101_a b c\n-- flotilla:requires 20240102000000_d\n", NULL},
    {"-- flotilla:lock-timeout 1m30s   \r\n-- flotilla:statement-timeout 0\r\nSELECT 1;\r\n", NULL},
    {"SELECT 1; -- flotilla:no-transaction\n", NULL},
    {"-- FLOTILLA:phase expand\n", NULL},
    {"-- flotilla mentions are comments\nSELECT 1;\n-- flotilla is fine here\n", NULL},
    /* bad ones */
    {"-- flotilla:no-transaction yes\n", "1: directive 'no-transaction' takes no value"},
    {"-- flotilla:no-transaction\n-- flotilla:no-transaction\n",
     "2: directive 'no-transaction' given twice"},
    {"-- flotilla:requires\n", "1: directive 'requires' needs a value"},
    {"-- flotilla:requires    \n", "1: directive 'requires' needs a value"},
    {"-- flotilla:requires a\n\n-- flotilla:requires a\n", "3: requires 'a' given twice"},
    {"-- flotilla:requires a/b\n", "1: requires 'a/b': contains '/'"},
    {"-- flotilla:requires a\xff\n", "1: requires 'a\\xff': not valid UTF-8"},
    {"-- flotilla:lock-timeout\n", "1: directive 'lock-timeout' needs a value"},
    {"\n-- flotilla:lock-timeout 5x\n",
     "2: lock-timeout: invalid duration '5x': unknown unit 'x' (use h, m, s or ms)"},
    {"-- flotilla:statement-timeout -1s\n",
     "1: statement-timeout: invalid duration '-1s': negative"},
    {"-- flotilla:statement-timeout 1 m\n",
     "1: statement-timeout: invalid duration '1 m': unknown unit ' m' (use h, m, s or ms)"},
    {"-- flotilla:lock-timeout 5s\n-- flotilla:lock-timeout 6s\n",
     "2: directive 'lock-timeout' given twice"},
    {"-- flotilla:phase sideways\n", "1: phase must be expand or contract, not 'sideways'"},
    {"-- flotilla:phase\n", "1: directive 'phase' needs a value"},
    {"-- flotilla:phase expand\n-- flotilla:phase contract\n", "2: directive 'phase' given twice"},
    {"-- flotilla:phase EXPAND\n", "1: phase must be expand or contract, not 'EXPAND'"},
    {"-- flotilla:transaction off\n", "1: unknown directive 'flotilla:transaction'"},
    {"-- flotilla:No-Transaction\n", "1: unknown directive 'flotilla:No-Transaction'"},
    {"-- flotilla:\n", "1: missing directive name after 'flotilla:'"},
    {"-- flotilla: no-transaction\n", "1: missing directive name after 'flotilla:'"},
    {"SELECT 1;\n-- flotilla:no-transaction\n",
     "2: '-- flotilla:' directive after the first statement (directives go in the comment "
     "block at the top)"},
    {"/* block comment */\n-- flotilla:no-transaction\n",
     "2: '-- flotilla:' directive after the first statement (directives go in the comment "
     "block at the top)"},
    {"-- ok\n-- flotilla:phase expand\nCREATE TABLE t ();\n\n   -- flotilla:phase contract\n",
     "5: '-- flotilla:' directive after the first statement (directives go in the comment "
     "block at the top)"},
};

START_TEST(directives_table)
{
	struct fl_migration m;
	char err[FL_ERRBUF_SIZE] = "", want[FL_ERRBUF_SIZE];
	enum fl_err rv;

	memset(&m, 0, sizeof(m));
	m.sql = (char *)directive_cases[_i].sql;
	m.sql_len = strlen(m.sql);
	rv = fl_migration_parse_directives(&m, "m.sql", err);
	if (directive_cases[_i].msg == NULL) {
		ck_assert_msg(rv == FL_OK, "case %d: %s", _i, err);
	} else {
		ck_assert_int_eq(rv, FL_EPARSE);
		fl_test_fmt(want, sizeof(want), "'m.sql':%s", directive_cases[_i].msg);
		ck_assert_str_eq(err, want);
		/* Nothing half-parsed is left behind. */
		ck_assert_ptr_null(m.requires);
		ck_assert_uint_eq(m.n_requires, 0);
		ck_assert(!m.no_transaction);
		ck_assert_int_eq(m.lock_timeout_ms, -1);
		ck_assert_int_eq(m.statement_timeout_ms, -1);
		ck_assert_int_eq(m.phase, FL_PHASE_UNSET);
	}
	free_requires(&m);
}
END_TEST

START_TEST(directives_good)
{
	struct fl_migration m;

	memset(&m, 0, sizeof(m));
	parse_ok(&m, "");
	ck_assert(!m.no_transaction);
	ck_assert_int_eq(m.lock_timeout_ms, -1);
	ck_assert_int_eq(m.statement_timeout_ms, -1);
	ck_assert_int_eq(m.phase, FL_PHASE_UNSET);

	parse_ok(&m, directive_cases[1].sql);
	ck_assert(m.no_transaction);

	parse_ok(&m, directive_cases[2].sql);
	ck_assert(!m.no_transaction); /* reset by the new parse */
	ck_assert_int_eq(m.phase, FL_PHASE_CONTRACT);

	parse_ok(&m, directive_cases[3].sql);
	ck_assert_uint_eq(m.n_requires, 2);
	ck_assert_str_eq(m.requires[0], "20240101_a b c"); /* ids may hold spaces */
	ck_assert_str_eq(m.requires[1], "20240102000000_d");

	parse_ok(&m, directive_cases[4].sql); /* frees the previous requires */
	ck_assert_uint_eq(m.n_requires, 0);
	ck_assert_int_eq(m.lock_timeout_ms, 90000);
	ck_assert_int_eq(m.statement_timeout_ms, 0);

	parse_ok(&m, directive_cases[5].sql); /* a trailing comment is not a directive line */
	ck_assert(!m.no_transaction);

	parse_ok(&m, directive_cases[6].sql);
	ck_assert_int_eq(m.phase, FL_PHASE_EXPAND);

	m.sql = NULL; /* not ours */
	m.sql_len = 0;
	parse_ok(&m, "");
	free_requires(&m);
}
END_TEST

START_TEST(requires_id_too_long)
{
	struct fl_migration m;
	char sql[400], err[FL_ERRBUF_SIZE];

	memset(&m, 0, sizeof(m));
	memcpy(sql, "-- flotilla:requires ", 21);
	memset(sql + 21, 'x', 256);
	memcpy(sql + 21 + 256, "\n", 2);
	m.sql = sql;
	m.sql_len = strlen(sql);
	ck_assert_int_eq(fl_migration_parse_directives(&m, "m.sql", err), FL_EPARSE);
	ck_assert_ptr_nonnull(strstr(err, "': longer than 255 bytes"));
	ck_assert_int_eq(strncmp(err, "'m.sql':1: requires 'xxx", 24), 0);

	/* 255 bytes is fine. */
	memcpy(sql + 21 + 255, "\n", 2);
	m.sql_len = strlen(sql);
	ck_assert_int_eq(fl_migration_parse_directives(&m, "m.sql", err), FL_OK);
	ck_assert_uint_eq(strlen(m.requires[0]), 255);
	free_requires(&m);
}
END_TEST

static Suite *migration_suite(void)
{
	Suite *s = suite_create("migration");
	TCase *order = tcase_create("order");
	TCase *load = tcase_create("load");
	TCase *lock = tcase_create("lock");
	TCase *dir = tcase_create("directives");

	tcase_add_test(order, id_cmp_follows_prisma_locale_order);
	tcase_add_test(order, id_cmp_sorts_history_like_prisma);
	suite_add_tcase(s, order);

	tcase_add_unchecked_fixture(load, tmp_setup, tmp_teardown);
	tcase_add_test(load, loads_prisma_history);
	tcase_add_test(load, dir_with_trailing_slash);
	tcase_add_test(load, nonexistent_folder);
	tcase_add_test(load, folder_is_a_file);
	tcase_add_test(load, empty_folder_is_no_error);
	tcase_add_test(load, missing_migration_sql);
	tcase_add_test(load, hidden_folder_is_a_migration);
	tcase_add_test(load, symlinked_folder_is_skipped);
	tcase_add_test(load, name_not_utf8);
	tcase_add_test(load, name_with_control_character);
	tcase_add_test(load, name_with_c1_control_character);
	tcase_add_test(load, name_with_unicode_is_fine);
	tcase_add_test(load, nul_byte_names_the_line);
	tcase_add_test(load, invalid_utf8_names_the_line);
	tcase_add_test(load, overlong_and_surrogate_are_invalid);
	tcase_add_test(load, bad_down_sql_is_refused);
	tcase_add_test(load, too_large_is_refused);
	tcase_add_test(load, crlf_file_loads_with_raw_checksum);
	tcase_add_test(load, bom_does_not_hide_directives);
	tcase_add_test(load, directive_after_statement_in_folder);
	tcase_add_test(load, unknown_directive_in_folder);
	tcase_add_test(load, unknown_requires_in_folder);
	tcase_add_test(load, cycle_in_folder);
	suite_add_tcase(s, load);

	tcase_add_unchecked_fixture(lock, tmp_setup, tmp_teardown);
	tcase_add_test(lock, lock_other_provider_is_refused);
	tcase_add_test(lock, lock_malformed_line_is_refused);
	tcase_add_loop_test(lock, lock_file_variants, 0,
	                    (int)(sizeof(lock_cases) / sizeof(lock_cases[0])));
	suite_add_tcase(s, lock);

	tcase_add_loop_test(dir, directives_table, 0,
	                    (int)(sizeof(directive_cases) / sizeof(directive_cases[0])));
	tcase_add_test(dir, directives_good);
	tcase_add_test(dir, requires_id_too_long);
	suite_add_tcase(s, dir);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(migration_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
