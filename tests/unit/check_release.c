/*
 * Release files: deterministic builds, signing, and every refusal of verify.
 *
 * Bundles that fl_release_build would never produce (a wrong checksum, a
 * directive the SQL does not say, another order) are packed here from a
 * doctored set through wire.c and signed by hand with a trusted key, so that
 * the content checks are what refuses them, not the signature.
 *
 * Fixtures: $FL_TEST_DATA/migrations/prisma_history, copied and generated
 * folders under one temporary folder per test case (removed by an unchecked
 * teardown, so it goes even when a test fails).
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

#include <sodium.h>

#include "testutil.h"
#include "buf.h"
#include "checksum.h"
#include "keys.h"
#include "mem.h"
#include "migration.h"
#include "release.h"
#include "wire.h"

/* ---- helpers ---- */

static char tmp_root[256];

static void tmp_setup(void)
{
	fl_test_tmp_root(tmp_root, sizeof(tmp_root), "check_release");
}

static void tmp_teardown(void)
{
	fl_test_rm_rf(tmp_root);
}

/* A fresh, empty folder for one test. */
static void new_dir(char *out, size_t n)
{
	fl_test_fmt(out, n, "%s/d.XXXXXX", tmp_root);
	ck_assert_ptr_nonnull(mkdtemp(out));
}

static void fixture(char *out, size_t n, const char *name)
{
	const char *data = getenv("FL_TEST_DATA");

	ck_assert_msg(data != NULL, "FL_TEST_DATA is not set (run through ctest)");
	fl_test_fmt(out, n, "%s/migrations/%s", data, name);
}

static void put(const char *dir, const char *rel, const char *text)
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
	ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	ck_assert_int_eq(fclose(f), 0);
}

static void copy_tree(const char *from, const char *to)
{
	char a[4096], b[4096], buf[65536];
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(from);

	ck_assert_ptr_nonnull(d);
	if (mkdir(to, 0755) != 0)
		ck_assert_int_eq(errno, EEXIST);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		fl_test_fmt(a, sizeof(a), "%s/%s", from, e->d_name);
		fl_test_fmt(b, sizeof(b), "%s/%s", to, e->d_name);
		ck_assert_int_eq(lstat(a, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			copy_tree(a, b);
		} else if (S_ISREG(st.st_mode)) {
			FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
			size_t n;

			ck_assert_ptr_nonnull(in);
			ck_assert_ptr_nonnull(out);
			while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
				ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
			fclose(in);
			ck_assert_int_eq(fclose(out), 0);
		}
	}
	closedir(d);
}

/* memmem, which POSIX lacks. */
static char *find(char *hay, size_t n, const char *needle)
{
	size_t len = strlen(needle);

	for (size_t i = 0; i + len <= n; i++)
		if (memcmp(hay + i, needle, len) == 0)
			return hay + i;
	return NULL;
}

static void load(const char *dir, struct fl_migration_set *set)
{
	char errbuf[FL_ERRBUF_SIZE] = "";

	ck_assert_msg(fl_migration_set_load(dir, set, errbuf) == FL_OK, "%s", errbuf);
}

static void build(const struct fl_migration_set *set, struct fl_buf *out, char *hash)
{
	char errbuf[FL_ERRBUF_SIZE] = "";

	fl_buf_init(out, 0);
	ck_assert_msg(fl_release_build(set, "acme-app", 7, out, hash, errbuf) == FL_OK, "%s",
	              errbuf);
}

static void build_dir(const char *dir, struct fl_buf *out, char *hash)
{
	struct fl_migration_set set;

	load(dir, &set);
	build(&set, out, hash);
	fl_migration_set_fini(&set);
}

/* The prisma_history fixture, built. */
static void build_history(struct fl_buf *out, char *hash)
{
	char dir[4096];

	fixture(dir, sizeof(dir), "prisma_history");
	build_dir(dir, out, hash);
}

/* Add key's signature to in, replacing in. */
static void sign(struct fl_buf *in, const struct fl_key *key)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_buf out = FL_BUF_INIT;

	ck_assert_msg(fl_release_sign(in->data, in->len, key, &out, errbuf) == FL_OK, "%s", errbuf);
	fl_buf_fini(in);
	*in = out;
}

static enum fl_err verify(const struct fl_buf *b, const struct fl_key *trusted, char *errbuf)
{
	struct fl_release *r = NULL;
	enum fl_err rv;

	errbuf[0] = '\0';
	rv = fl_release_verify(b->data, b->len, (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])trusted->pk,
	                       1, NULL, NULL, &r, errbuf);
	if (rv == FL_OK) {
		ck_assert_ptr_nonnull(r);
		ck_assert(r->verified);
	} else {
		ck_assert_ptr_null(r);
	}
	fl_release_free(r);
	return rv;
}

static void key_id(const struct fl_key *k, char *id)
{
	fl_key_id(k->pk, id);
}

static void assert_sets_equal(const struct fl_migration_set *a, const struct fl_migration_set *b)
{
	ck_assert_uint_eq(a->count, b->count);
	ck_assert_str_eq(a->provider ? a->provider : "(none)",
	                 b->provider ? b->provider : "(none)");
	for (size_t i = 0; i < a->count; i++) {
		const struct fl_migration *x = &a->items[i], *y = &b->items[i];

		ck_assert_str_eq(x->id, y->id);
		ck_assert_str_eq(x->checksum, y->checksum);
		ck_assert_uint_eq(x->sql_len, y->sql_len);
		ck_assert(memcmp(x->sql, y->sql, x->sql_len + 1) == 0);
		ck_assert_int_eq(x->down_sql == NULL, y->down_sql == NULL);
		if (x->down_sql) {
			ck_assert_uint_eq(x->down_len, y->down_len);
			ck_assert(memcmp(x->down_sql, y->down_sql, x->down_len + 1) == 0);
		}
		ck_assert_int_eq(x->verify_sql == NULL, y->verify_sql == NULL);
		if (x->verify_sql) {
			ck_assert_uint_eq(x->verify_len, y->verify_len);
			ck_assert(memcmp(x->verify_sql, y->verify_sql, x->verify_len + 1) == 0);
		}
		ck_assert_int_eq(x->no_transaction, y->no_transaction);
		ck_assert_int_eq(x->lock_timeout_ms, y->lock_timeout_ms);
		ck_assert_int_eq(x->statement_timeout_ms, y->statement_timeout_ms);
		ck_assert_int_eq(x->phase, y->phase);
		ck_assert_uint_eq(x->n_requires, y->n_requires);
		for (size_t k = 0; k < x->n_requires; k++)
			ck_assert_str_eq(x->requires[k], y -> requires[k]);
		ck_assert_uint_eq(x->n_deps, y->n_deps);
		for (size_t k = 0; k < x->n_deps; k++)
			ck_assert_uint_eq(x->deps[k], y->deps[k]);
	}
}

/* A folder using every field of a bundle: directives, requires across the
 * chain, down.sql (one empty), verify.sql, no migration_lock.toml. */
static void write_rich(const char *dir)
{
	put(dir, "20250101000000_init/migration.sql",
	    "-- flotilla:phase expand\n-- flotilla:lock-timeout 2s\n"
	    "CREATE TABLE t (id int);\n");
	put(dir, "20250101000000_init/down.sql", "DROP TABLE t;\n");
	put(dir, "20250102000000_index/migration.sql",
	    "-- flotilla:no-transaction\n-- flotilla:statement-timeout 10m\n"
	    "CREATE INDEX CONCURRENTLY t_id ON t (id);\n");
	put(dir, "20250102000000_index/down.sql", "");
	put(dir, "20250102000000_index/verify.sql",
	    "SELECT count(*) = 1 FROM pg_indexes WHERE indexname = 't_id';\n");
	put(dir, "20250103000000_drop/migration.sql",
	    "-- flotilla:phase contract\n-- flotilla:requires 20250101000000_init\n"
	    "-- flotilla:requires 20250102000000_index\n"
	    "ALTER TABLE t DROP COLUMN id;\n");
	put(dir, "20250104000000_ünïcode name/migration.sql", "SELECT 'héllo';\n");
}

/* ---- packing doctored bundles (through wire.c, as release.c does) ---- */

static void fill(Flotilla__V1__ReleaseMigration *pm, const struct fl_migration *m)
{
	flotilla__v1__release_migration__init(pm);
	pm->id = m->id;
	pm->checksum = (char *)m->checksum;
	pm->sql.data = (uint8_t *)m->sql;
	pm->sql.len = m->sql_len;
	pm->has_down = m->down_sql != NULL;
	pm->down_sql.data = (uint8_t *)m->down_sql;
	pm->down_sql.len = m->down_len;
	pm->has_verify = m->verify_sql != NULL;
	pm->verify_sql.data = (uint8_t *)m->verify_sql;
	pm->verify_sql.len = m->verify_len;
	pm->no_transaction = m->no_transaction;
	pm->requires = m->requires;
	pm->n_requires = m->n_requires;
	pm->lock_timeout_ms = m->lock_timeout_ms;
	pm->statement_timeout_ms = m->statement_timeout_ms;
	pm->phase = (Flotilla__V1__Phase)m->phase;
}

/* What pack_bundle writes for project and sequence (cases change them). */
static const char *bundle_project = "acme-app";
static uint64_t bundle_sequence = 7;

/* Pack set as it stands, with this format version, into bundle bytes. */
static void pack_bundle(const struct fl_migration_set *set, uint32_t version, struct fl_buf *out)
{
	Flotilla__V1__ReleaseMigration *pms = fl_calloc(set->count, sizeof(*pms));
	Flotilla__V1__ReleaseMigration **ptrs = fl_calloc(set->count, sizeof(*ptrs));
	Flotilla__V1__ReleaseBundle b = FLOTILLA__V1__RELEASE_BUNDLE__INIT;
	char errbuf[FL_ERRBUF_SIZE] = "";

	for (size_t i = 0; i < set->count; i++) {
		fill(&pms[i], &set->items[i]);
		ptrs[i] = &pms[i];
	}
	b.format_version = version;
	b.migrations = ptrs;
	b.n_migrations = set->count;
	b.provider = set->provider ? set->provider : (char *)"";
	b.project_id = (char *)bundle_project;
	b.sequence = bundle_sequence;
	fl_buf_init(out, 0);
	ck_assert_msg(fl_wire_pack_release_bundle(&b, out, FL_RELEASE_FILE_MAX, errbuf) == FL_OK,
	              "%s", errbuf);
	free(ptrs);
	free(pms);
}

/* A release file of bundle signed by each of keys[0..n) (NULL: that many
 * signatures copied from the first, to test duplicates). */
static void pack_signed(const struct fl_buf *bundle, const struct fl_key *const *keys, size_t n,
                        struct fl_buf *out)
{
	Flotilla__V1__SignedRelease sr = FLOTILLA__V1__SIGNED_RELEASE__INIT;
	Flotilla__V1__ReleaseSignature sigs[4], *ptrs[4];
	uint8_t hash[32], msg[20 + 32], sig[4][64];
	char errbuf[FL_ERRBUF_SIZE] = "";

	ck_assert_uint_le(n, 4);
	crypto_hash_sha256(hash, (const uint8_t *)bundle->data, bundle->len);
	memcpy(msg, "flotilla release v1", 20); /* with its NUL */
	memcpy(msg + 20, hash, 32);
	for (size_t i = 0; i < n; i++) {
		const struct fl_key *k = keys[i] ? keys[i] : keys[0];

		fl_key_sign(k, msg, sizeof(msg), sig[i]);
		flotilla__v1__release_signature__init(&sigs[i]);
		sigs[i].public_key.data = (uint8_t *)k->pk;
		sigs[i].public_key.len = 32;
		sigs[i].signature.data = sig[i];
		sigs[i].signature.len = 64;
		ptrs[i] = &sigs[i];
	}
	sr.bundle.data = (uint8_t *)bundle->data;
	sr.bundle.len = bundle->len;
	sr.signatures = ptrs;
	sr.n_signatures = n;
	fl_buf_init(out, 0);
	ck_assert_msg(fl_wire_pack_signed_release(&sr, out, FL_RELEASE_FILE_MAX, errbuf) == FL_OK,
	              "%s", errbuf);
}

/* The rich folder, doctored by change(), packed and signed by key. */
static void doctored(void (*change)(struct fl_migration_set *), uint32_t version,
                     const struct fl_key *key, struct fl_buf *out)
{
	const struct fl_key *keys[1] = {key};
	struct fl_migration_set set;
	struct fl_buf bundle;
	char dir[4096];

	new_dir(dir, sizeof(dir));
	write_rich(dir);
	load(dir, &set);
	if (change)
		change(&set);
	pack_bundle(&set, version, &bundle);
	pack_signed(&bundle, keys, 1, out);
	fl_buf_fini(&bundle);
	fl_migration_set_fini(&set);
}

/* ---- building ---- */

START_TEST(build_is_deterministic)
{
	char hash1[65], hash2[65], hash3[65], src[4096], copy[4096];
	struct fl_buf a, b, c;

	build_history(&a, hash1);
	build_history(&b, hash2);
	ck_assert_str_eq(hash1, hash2);
	ck_assert_uint_eq(a.len, b.len);
	ck_assert(memcmp(a.data, b.data, a.len) == 0);

	/* The same migrations elsewhere: no path gets in. */
	fixture(src, sizeof(src), "prisma_history");
	new_dir(copy, sizeof(copy));
	strcat(copy, "/elsewhere");
	copy_tree(src, copy);
	build_dir(copy, &c, hash3);
	ck_assert_str_eq(hash1, hash3);
	ck_assert_uint_eq(a.len, c.len);
	ck_assert(memcmp(a.data, c.data, a.len) == 0);
	ck_assert_ptr_null(find(c.data, c.len, "elsewhere"));
	ck_assert_ptr_null(find(a.data, a.len, "prisma_history"));
	fl_buf_fini(&a);
	fl_buf_fini(&b);
	fl_buf_fini(&c);
}
END_TEST

START_TEST(build_hash_is_sha256_of_bundle)
{
	char hash[65], hex[65], errbuf[FL_ERRBUF_SIZE] = "";
	Flotilla__V1__SignedRelease *sr = NULL;
	struct fl_release *r = NULL;
	uint8_t d[32];
	struct fl_buf a;

	build_history(&a, hash);
	ck_assert_uint_eq(strlen(hash), 64);
	ck_assert_int_eq(fl_wire_unpack_signed_release((const uint8_t *)a.data, a.len,
	                                               FL_RELEASE_FILE_MAX, &sr, errbuf),
	                 FL_OK);
	ck_assert_uint_eq(sr->n_signatures, 0);
	crypto_hash_sha256(d, sr->bundle.data, sr->bundle.len);
	sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
	ck_assert_str_eq(hash, hex);
	ck_assert_int_eq(fl_release_inspect(a.data, a.len, &r, errbuf), FL_OK);
	ck_assert_str_eq(r->hash, hash);
	ck_assert(!r->verified);
	ck_assert_uint_eq(r->n_signers, 0);
	fl_release_free(r);
	fl_wire_free_signed_release(sr);
	fl_buf_fini(&a);
}
END_TEST

START_TEST(content_changes_the_hash)
{
	char dir[4096], h1[65], h2[65];
	struct fl_buf a, b;

	new_dir(dir, sizeof(dir));
	write_rich(dir);
	build_dir(dir, &a, h1);
	put(dir, "20250102000000_index/verify.sql", "SELECT true;\n");
	build_dir(dir, &b, h2);
	ck_assert_str_ne(h1, h2);
	fl_buf_fini(&a);
	fl_buf_fini(&b);
}
END_TEST

START_TEST(empty_set_builds)
{
	struct fl_migration_set set = {0};
	char hash[65], errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_release *r = NULL;
	struct fl_buf a;

	build(&set, &a, hash);
	ck_assert_int_eq(fl_release_inspect(a.data, a.len, &r, errbuf), FL_OK);
	ck_assert_uint_eq(r->set.count, 0);
	fl_release_free(r);
	fl_buf_fini(&a);
}
END_TEST

/* Project and sequence are in the signed bundle: required at build, shown,
 * and checked by verify, which also refuses a file that is not the release
 * it was asked for (hash) or is another project's. */
START_TEST(project_sequence_and_expected_hash)
{
	char hash[65], other[65], errbuf[FL_ERRBUF_SIZE] = "", dir[4096];
	struct fl_migration_set set;
	struct fl_release *r = NULL;
	struct fl_buf a = FL_BUF_INIT, b = FL_BUF_INIT;
	uint8_t digest[32], wrong[32];
	struct fl_key k;

	fixture(dir, sizeof(dir), "prisma_history");
	load(dir, &set);
	ck_assert_int_eq(fl_release_build(&set, NULL, 1, &a, hash, errbuf), FL_EINVAL);
	ck_assert_str_eq(errbuf, "invalid project id '': empty");
	ck_assert_int_eq(fl_release_build(&set, "a b", 1, &a, hash, errbuf), FL_EINVAL);
	ck_assert_int_eq(fl_release_build(&set, "acme-app", 0, &a, hash, errbuf), FL_EINVAL);
	ck_assert_str_eq(errbuf, "invalid sequence number 0: releases are numbered from 1");
	ck_assert_ptr_null(fl_release_project_problem("Acme_App.v2-x"));
	ck_assert_str_eq(fl_release_project_problem(""), "empty");
	ck_assert_str_eq(
	    fl_release_project_problem("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	                               "aaaaaaaaaaaaa"),
	    "longer than 64 characters");
	/* Another sequence or project is another release, deterministically. */
	ck_assert_int_eq(fl_release_build(&set, "acme-app", 41, &a, hash, errbuf), FL_OK);
	ck_assert_int_eq(fl_release_build(&set, "acme-app", 42, &b, other, errbuf), FL_OK);
	ck_assert_str_ne(hash, other);
	ck_assert_int_eq(fl_release_build(&set, "acme-web", 41, &b, other, errbuf), FL_OK);
	ck_assert_str_ne(hash, other);
	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	sign(&a, &k);
	ck_assert_int_eq(fl_release_verify(a.data, a.len, (const uint8_t(*)[32])k.pk, 1, NULL,
	                                   "acme-app", &r, errbuf),
	                 FL_OK);
	ck_assert_str_eq(r->project_id, "acme-app");
	ck_assert_uint_eq(r->sequence, 41);
	ck_assert_str_eq(r->hash, hash);
	memcpy(digest, r->digest, 32);
	fl_release_free(r);
	ck_assert_int_eq(fl_release_verify(a.data, a.len, (const uint8_t(*)[32])k.pk, 1, digest,
	                                   "acme-app", &r, errbuf),
	                 FL_OK);
	fl_release_free(r);
	/* Not the release asked for. */
	memcpy(wrong, digest, 32);
	wrong[31] ^= 1;
	ck_assert_int_eq(fl_release_verify(a.data, a.len, (const uint8_t(*)[32])k.pk, 1, wrong,
	                                   NULL, &r, errbuf),
	                 FL_EAUTH);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(errbuf, "not the expected"));
	/* Another project's. */
	ck_assert_int_eq(fl_release_verify(a.data, a.len, (const uint8_t(*)[32])k.pk, 1, digest,
	                                   "acme-web", &r, errbuf),
	                 FL_EAUTH);
	ck_assert_ptr_null(r);
	ck_assert_str_eq(errbuf, "a release of project 'acme-app', not of 'acme-web'");
	fl_key_fini(&k);
	fl_migration_set_fini(&set);
	fl_buf_fini(&a);
	fl_buf_fini(&b);
}
END_TEST

/* ---- signing and verifying ---- */

START_TEST(sign_then_verify)
{
	char hash[65], errbuf[FL_ERRBUF_SIZE] = "", dir[4096];
	struct fl_migration_set loaded;
	struct fl_release *r = NULL;
	struct fl_key k;
	struct fl_buf a;

	fixture(dir, sizeof(dir), "prisma_history");
	load(dir, &loaded);
	build(&loaded, &a, hash);
	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	sign(&a, &k);
	ck_assert_int_eq(
	    fl_release_verify(a.data, a.len, (const uint8_t(*)[32])k.pk, 1, NULL, NULL, &r, errbuf),
	    FL_OK);
	ck_assert(r->verified);
	ck_assert_uint_eq(r->verified_by, 0);
	ck_assert_uint_eq(r->n_signers, 1);
	ck_assert(r->signers[0].valid && r->signers[0].trusted);
	ck_assert(memcmp(r->signers[0].pk, k.pk, 32) == 0);
	ck_assert_str_eq(r->hash, hash); /* signing does not change the content */
	assert_sets_equal(&loaded, &r->set);
	ck_assert(strncmp(r->set.dir, "release:", 8) == 0);
	ck_assert(strncmp(r->set.dir + 8, hash, 16) == 0);
	fl_release_free(r);
	fl_migration_set_fini(&loaded);
	fl_key_fini(&k);
	fl_buf_fini(&a);
}
END_TEST

START_TEST(round_trip_rich)
{
	char hash[65], errbuf[FL_ERRBUF_SIZE] = "", dir[4096], want[64];
	struct fl_migration_set loaded;
	struct fl_release *r = NULL;
	struct fl_key k;
	struct fl_buf a;

	new_dir(dir, sizeof(dir));
	write_rich(dir);
	load(dir, &loaded);
	ck_assert_uint_eq(loaded.count, 4);
	build(&loaded, &a, hash);
	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	sign(&a, &k);
	ck_assert_int_eq(
	    fl_release_verify(a.data, a.len, (const uint8_t(*)[32])k.pk, 1, NULL, NULL, &r, errbuf),
	    FL_OK);
	assert_sets_equal(&loaded, &r->set);
	ck_assert_ptr_null(r->set.provider);
	ck_assert_str_eq(r->set.items[1].down_sql, ""); /* empty down.sql is not no down.sql */
	ck_assert_ptr_null(r->set.items[2].down_sql);
	fl_test_fmt(want, sizeof(want), "release:%.16s", hash);
	ck_assert_str_eq(r->set.dir, want);
	fl_test_fmt(want, sizeof(want), "release:%.16s/20250101000000_init", hash);
	ck_assert_str_eq(r->set.items[0].path, want);
	fl_release_free(r);
	fl_migration_set_fini(&loaded);
	fl_key_fini(&k);
	fl_buf_fini(&a);
}
END_TEST

START_TEST(verify_refuses_unsigned)
{
	char hash[65], errbuf[FL_ERRBUF_SIZE], want[256], id[17];
	struct fl_key k;
	struct fl_buf a;

	build_history(&a, hash);
	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	key_id(&k, id);
	ck_assert_int_eq(verify(&a, &k, errbuf), FL_EAUTH);
	fl_test_fmt(want, sizeof(want), "no signature by a trusted key (not signed; trusted: %s)",
	            id);
	ck_assert_str_eq(errbuf, want);
	fl_key_fini(&k);
	fl_buf_fini(&a);
}
END_TEST

START_TEST(verify_refuses_untrusted)
{
	char hash[65], errbuf[FL_ERRBUF_SIZE], want[256], ida[17], idb[17], idc[17];
	struct fl_release *r = NULL;
	uint8_t trusted[2][32];
	struct fl_key a, b, c;
	struct fl_buf f;

	build_history(&f, hash);
	fl_key_generate(FL_KEY_RELEASE, NULL, &a);
	fl_key_generate(FL_KEY_RELEASE, NULL, &b);
	fl_key_generate(FL_KEY_RELEASE, NULL, &c);
	key_id(&a, ida);
	key_id(&b, idb);
	key_id(&c, idc);
	sign(&f, &a);
	ck_assert_int_eq(verify(&f, &b, errbuf), FL_EAUTH);
	fl_test_fmt(want, sizeof(want), "no signature by a trusted key (signed by %s; trusted: %s)",
	            ida, idb);
	ck_assert_str_eq(errbuf, want);

	/* Two signers, two trusted keys, one in common. */
	sign(&f, &c);
	memcpy(trusted[0], b.pk, 32);
	memcpy(trusted[1], c.pk, 32);
	ck_assert_int_eq(fl_release_verify(f.data, f.len, (const uint8_t(*)[32])trusted, 2, NULL,
	                                   NULL, &r, errbuf),
	                 FL_OK);
	ck_assert_uint_eq(r->verified_by, 1);
	ck_assert(!r->signers[0].trusted && r->signers[0].valid);
	ck_assert(r->signers[1].trusted && r->signers[1].valid);
	fl_release_free(r);
	r = NULL;
	memcpy(trusted[1], b.pk, 32);
	ck_assert_int_eq(fl_release_verify(f.data, f.len, (const uint8_t(*)[32])trusted, 2, NULL,
	                                   NULL, &r, errbuf),
	                 FL_EAUTH);
	fl_test_fmt(want, sizeof(want),
	            "no signature by a trusted key (signed by %s, %s; trusted: %s, %s)", ida, idc,
	            idb, idb);
	ck_assert_str_eq(errbuf, want);
	/* No trusted keys at all is the caller's mistake. */
	ck_assert_int_eq(fl_release_verify(f.data, f.len, NULL, 0, NULL, NULL, &r, errbuf),
	                 FL_EINVAL);
	ck_assert_ptr_null(r);
	fl_key_fini(&a);
	fl_key_fini(&b);
	fl_key_fini(&c);
	fl_buf_fini(&f);
}
END_TEST

START_TEST(verify_refuses_tampered_sql)
{
	char hash[65], errbuf[FL_ERRBUF_SIZE], want[256], id[17];
	struct fl_key k;
	struct fl_buf a;
	char *at;

	build_history(&a, hash);
	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	sign(&a, &k);
	key_id(&k, id);
	at = find(a.data, a.len, "CREATE TABLE");
	ck_assert_ptr_nonnull(at);
	at[0] = 'c'; /* still valid SQL: only the signature can tell */
	ck_assert_int_eq(verify(&a, &k, errbuf), FL_EAUTH);
	fl_test_fmt(want, sizeof(want),
	            "signature by trusted key %s does not verify: the release was altered after it "
	            "was signed",
	            id);
	ck_assert_str_eq(errbuf, want);
	fl_key_fini(&k);
	fl_buf_fini(&a);
}
END_TEST

START_TEST(verify_refuses_swapped_signature)
{
	char h1[65], h2[65], errbuf[FL_ERRBUF_SIZE] = "", dir[4096];
	Flotilla__V1__SignedRelease *s1 = NULL, *s2 = NULL;
	Flotilla__V1__ReleaseSignature **keep;
	struct fl_buf a, b, mixed = FL_BUF_INIT;
	struct fl_key k;

	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	build_history(&a, h1);
	new_dir(dir, sizeof(dir));
	write_rich(dir);
	build_dir(dir, &b, h2);
	sign(&a, &k);
	sign(&b, &k);
	ck_assert_int_eq(verify(&a, &k, errbuf), FL_OK);
	ck_assert_int_eq(verify(&b, &k, errbuf), FL_OK);
	/* a's bundle with b's signature, both by the trusted key. */
	ck_assert_int_eq(fl_wire_unpack_signed_release((const uint8_t *)a.data, a.len,
	                                               FL_RELEASE_FILE_MAX, &s1, errbuf),
	                 FL_OK);
	ck_assert_int_eq(fl_wire_unpack_signed_release((const uint8_t *)b.data, b.len,
	                                               FL_RELEASE_FILE_MAX, &s2, errbuf),
	                 FL_OK);
	keep = s1->signatures;
	s1->signatures = s2->signatures;
	fl_buf_init(&mixed, 0);
	ck_assert_int_eq(fl_wire_pack_signed_release(s1, &mixed, FL_RELEASE_FILE_MAX, errbuf),
	                 FL_OK);
	s1->signatures = keep;
	ck_assert_int_eq(verify(&mixed, &k, errbuf), FL_EAUTH);
	ck_assert_msg(strstr(errbuf, "does not verify") != NULL, "%s", errbuf);
	fl_wire_free_signed_release(s1);
	fl_wire_free_signed_release(s2);
	fl_key_fini(&k);
	fl_buf_fini(&a);
	fl_buf_fini(&b);
	fl_buf_fini(&mixed);
}
END_TEST

START_TEST(every_truncation_and_flip_is_refused)
{
	char hash[65], errbuf[FL_ERRBUF_SIZE];
	struct fl_release *r;
	struct fl_key k;
	struct fl_buf a;
	size_t len;

	build_history(&a, hash);
	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	sign(&a, &k);
	len = a.len;
	for (size_t n = 0; n < len; n++) {
		r = NULL;
		ck_assert_msg(fl_release_verify(a.data, n, (const uint8_t(*)[32])k.pk, 1, NULL,
		                                NULL, &r, errbuf) != FL_OK,
		              "verified at length %zu", n);
		ck_assert_ptr_null(r);
		/* Inspecting trusts nothing; it may accept a prefix that ends
		 * between fields, but never crashes. */
		if (fl_release_inspect(a.data, n, &r, errbuf) == FL_OK)
			fl_release_free(r);
	}
	for (size_t i = 0; i < len; i++) {
		static const unsigned char masks[] = {0x01, 0x80, 0xff};

		for (size_t m = 0; m < sizeof(masks); m++) {
			a.data[i] = (char)(a.data[i] ^ masks[m]);
			r = NULL;
			ck_assert_msg(fl_release_verify(a.data, len, (const uint8_t(*)[32])k.pk, 1,
			                                NULL, NULL, &r, errbuf) != FL_OK,
			              "verified with byte %zu ^ 0x%02x", i, masks[m]);
			ck_assert_ptr_null(r);
			a.data[i] = (char)(a.data[i] ^ masks[m]);
		}
	}
	ck_assert_int_eq(verify(&a, &k, errbuf), FL_OK);
	fl_key_fini(&k);
	fl_buf_fini(&a);
}
END_TEST

START_TEST(duplicate_signer_refused)
{
	char hash[65], errbuf[FL_ERRBUF_SIZE], want[256], id[17];
	const struct fl_key *keys[2];
	struct fl_buf a, out = FL_BUF_INIT, bundle, twice;
	Flotilla__V1__SignedRelease *sr = NULL;
	struct fl_key k;

	build_history(&a, hash);
	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	key_id(&k, id);
	sign(&a, &k);
	ck_assert_int_eq(fl_release_sign(a.data, a.len, &k, &out, errbuf), FL_ESTATE);
	fl_test_fmt(want, sizeof(want), "already signed by %s", id);
	ck_assert_str_eq(errbuf, want);
	ck_assert_uint_eq(out.len, 0);

	/* A file carrying the same signer twice is malformed. */
	ck_assert_int_eq(fl_wire_unpack_signed_release((const uint8_t *)a.data, a.len,
	                                               FL_RELEASE_FILE_MAX, &sr, errbuf),
	                 FL_OK);
	fl_buf_init(&bundle, 0);
	fl_buf_append(&bundle, sr->bundle.data, sr->bundle.len);
	keys[0] = &k;
	keys[1] = NULL;
	pack_signed(&bundle, keys, 2, &twice);
	ck_assert_int_eq(verify(&twice, &k, errbuf), FL_EPARSE);
	fl_test_fmt(want, sizeof(want), "signed twice by %s", id);
	ck_assert_str_eq(errbuf, want);
	fl_wire_free_signed_release(sr);
	fl_key_fini(&k);
	fl_buf_fini(&a);
	fl_buf_fini(&out);
	fl_buf_fini(&bundle);
	fl_buf_fini(&twice);
}
END_TEST

START_TEST(sign_refusals)
{
	char hash[65], errbuf[FL_ERRBUF_SIZE], id[17], want[256];
	struct fl_buf a, out = FL_BUF_INIT;
	struct fl_key agent, k, other;
	char *at;

	build_history(&a, hash);
	fl_key_generate(FL_KEY_AGENT, NULL, &agent);
	ck_assert_int_eq(fl_release_sign(a.data, a.len, &agent, &out, errbuf), FL_EINVAL);
	ck_assert_str_eq(errbuf, "not a release key: agent key");
	/* A file whose signature no longer verifies gets no second one. */
	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	fl_key_generate(FL_KEY_RELEASE, NULL, &other);
	sign(&a, &k);
	key_id(&k, id);
	at = find(a.data, a.len, "CREATE TABLE");
	at[0] = 'c';
	ck_assert_int_eq(fl_release_sign(a.data, a.len, &other, &out, errbuf), FL_EAUTH);
	fl_test_fmt(want, sizeof(want), "signature by %s does not verify: refusing to add mine",
	            id);
	ck_assert_str_eq(errbuf, want);
	/* Nor does garbage. */
	ck_assert_int_eq(fl_release_sign("garbage", 7, &other, &out, errbuf), FL_EPARSE);
	fl_key_fini(&agent);
	fl_key_fini(&k);
	fl_key_fini(&other);
	fl_buf_fini(&a);
	fl_buf_fini(&out);
}
END_TEST

/* ---- content checks behind a valid signature ---- */

static void bad_checksum(struct fl_migration_set *s)
{
	s->items[1].checksum[0] = s->items[1].checksum[0] == '0' ? '1' : '0';
}

static void upper_checksum(struct fl_migration_set *s)
{
	for (char *p = s->items[0].checksum; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
}

static void sql_changed(struct fl_migration_set *s)
{
	/* Same length, other bytes, the checksum left as it was. */
	s->items[0].sql[s->items[0].sql_len - 2] = 'X';
}

static void directive_dropped(struct fl_migration_set *s)
{
	s->items[1].no_transaction = false;
}

static void timeout_changed(struct fl_migration_set *s)
{
	s->items[0].lock_timeout_ms = 999;
}

static void phase_changed(struct fl_migration_set *s)
{
	s->items[2].phase = FL_PHASE_EXPAND;
}

static void requires_dropped(struct fl_migration_set *s)
{
	ck_assert_uint_eq(s->items[2].n_requires, 2);
	free(s->items[2].requires[1]);
	s->items[2].n_requires = 1;
}

static void swapped_order(struct fl_migration_set *s)
{
	struct fl_migration t = s->items[0];

	s->items[0] = s->items[1];
	s->items[1] = t;
}

static void duplicate_id(struct fl_migration_set *s)
{
	/* The first migration twice: same id, SQL and checksum. */
	struct fl_migration *m = &s->items[3];

	free(m->id);
	free(m->sql);
	m->id = fl_strdup(s->items[0].id);
	m->sql = fl_strdup(s->items[0].sql);
	m->sql_len = s->items[0].sql_len;
	memcpy(m->checksum, s->items[0].checksum, sizeof(m->checksum));
	m->phase = s->items[0].phase;
	m->lock_timeout_ms = s->items[0].lock_timeout_ms;
}

static void set_sql(struct fl_migration *m, const char *sql)
{
	free(m->sql);
	m->sql = fl_strdup(sql);
	m->sql_len = strlen(sql);
	fl_checksum_compute(m->sql, m->sql_len, m->checksum);
}

static void unknown_requires(struct fl_migration_set *s)
{
	struct fl_migration *m = &s->items[3];
	char errbuf[FL_ERRBUF_SIZE];

	set_sql(m, "-- flotilla:requires nowhere\nSELECT 1;\n");
	ck_assert_int_eq(fl_migration_parse_directives(m, "x", errbuf), FL_OK);
}

static void cycle(struct fl_migration_set *s)
{
	struct fl_migration *m = &s->items[0];
	char errbuf[FL_ERRBUF_SIZE];

	set_sql(m, "-- flotilla:requires 20250103000000_drop\nSELECT 1;\n");
	ck_assert_int_eq(fl_migration_parse_directives(m, "x", errbuf), FL_OK);
}

static void bad_id(struct fl_migration_set *s)
{
	free(s->items[3].id);
	s->items[3].id = fl_strdup("../../etc");
}

static void dot_id(struct fl_migration_set *s)
{
	free(s->items[3].id);
	s->items[3].id = fl_strdup("..");
}

static void nul_in_sql(struct fl_migration_set *s)
{
	struct fl_migration *m = &s->items[3];

	m->sql[3] = '\0';
	fl_checksum_compute(m->sql, m->sql_len, m->checksum);
}

static void latin1_in_down(struct fl_migration_set *s)
{
	free(s->items[0].down_sql);
	s->items[0].down_sql = fl_strdup("DROP TABLE \xe9;");
	s->items[0].down_len = strlen(s->items[0].down_sql);
}

static void bad_directive(struct fl_migration_set *s)
{
	set_sql(&s->items[3], "-- flotilla:frobnicate\nSELECT 1;\n");
}

static void bad_provider(struct fl_migration_set *s)
{
	s->provider = fl_strdup("mysql");
}

static void no_project(struct fl_migration_set *s)
{
	(void)s;
	bundle_project = "";
}

static void bad_project(struct fl_migration_set *s)
{
	(void)s;
	bundle_project = "acme/app";
}

static void sequence_zero(struct fl_migration_set *s)
{
	(void)s;
	bundle_sequence = 0;
}

static const struct {
	void (*change)(struct fl_migration_set *);
	uint32_t version;
	enum fl_err rv;
	const char *message;
} doctored_cases[] = {
    {NULL, 1, FL_OK, ""},
    {NULL, 2, FL_EPARSE, "bundle format version 2 is not supported (this flotilla reads 1)"},
    {NULL, 0, FL_EPARSE, "bundle format version 0 is not supported (this flotilla reads 1)"},
    {bad_checksum, 1, FL_ECHECKSUM,
     "migration '20250102000000_index': checksum does not match its SQL"},
    {upper_checksum, 1, FL_EPARSE,
     "migration '20250101000000_init': checksum is not 64 lowercase hex digits"},
    {sql_changed, 1, FL_ECHECKSUM,
     "migration '20250101000000_init': checksum does not match its SQL"},
    {directive_dropped, 1, FL_EPARSE,
     "migration '20250102000000_index': no_transaction does not match the directives in its "
     "SQL"},
    {timeout_changed, 1, FL_EPARSE,
     "migration '20250101000000_init': lock_timeout_ms does not match the directives in its "
     "SQL"},
    {phase_changed, 1, FL_EPARSE,
     "migration '20250103000000_drop': phase does not match the directives in its SQL"},
    {requires_dropped, 1, FL_EPARSE,
     "migration '20250103000000_drop': requires does not match the directives in its SQL"},
    {swapped_order, 1, FL_EGRAPH,
     "migrations are not in apply order: '20250102000000_index' comes where "
     "'20250101000000_init' belongs"},
    {duplicate_id, 1, FL_EGRAPH, "duplicate migration id '20250101000000_init'"},
    {unknown_requires, 1, FL_EGRAPH,
     "migration '20250104000000_ünïcode name' requires unknown 'nowhere'"},
    {cycle, 1, FL_EGRAPH, "cycle: "},
    {bad_id, 1, FL_EPARSE, "invalid migration id '../../etc': contains '/'"},
    {dot_id, 1, FL_EPARSE, "invalid migration id '..': not a folder name"},
    {nul_in_sql, 1, FL_EPARSE,
     "migration '20250104000000_ünïcode name': migration.sql contains a NUL byte"},
    {latin1_in_down, 1, FL_EPARSE,
     "migration '20250101000000_init': down.sql is not valid UTF-8 (byte 11)"},
    {bad_directive, 1, FL_EPARSE, "migration '20250104000000_ünïcode name': 'release:"},
    {bad_provider, 1, FL_EPARSE, "provider 'mysql' is not supported, only postgresql"},
    {no_project, 1, FL_EPARSE, "invalid project id '': empty"},
    {bad_project, 1, FL_EPARSE, "invalid project id 'acme/app': use A-Z a-z 0-9 . _ -"},
    {sequence_zero, 1, FL_EPARSE, "sequence number 0: releases are numbered from 1"},
};

START_TEST(content_checks)
{
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_buf a;
	struct fl_key k;
	int i = _i;

	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	doctored(doctored_cases[i].change, doctored_cases[i].version, &k, &a);
	ck_assert_int_eq(verify(&a, &k, errbuf), doctored_cases[i].rv);
	ck_assert_msg(
	    strncmp(errbuf, doctored_cases[i].message, strlen(doctored_cases[i].message)) == 0,
	    "case %d: want '%s', got '%s'", i, doctored_cases[i].message, errbuf);
	bundle_project = "acme-app";
	bundle_sequence = 7;
	fl_key_fini(&k);
	fl_buf_fini(&a);
}
END_TEST

START_TEST(down_bytes_without_has_down)
{
	Flotilla__V1__ReleaseBundle *b = NULL;
	char errbuf[FL_ERRBUF_SIZE] = "", dir[4096];
	const struct fl_key *keys[1];
	struct fl_migration_set set;
	struct fl_buf bundle, again = FL_BUF_INIT, f;
	struct fl_key k;
	protobuf_c_boolean keep;

	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	new_dir(dir, sizeof(dir));
	write_rich(dir);
	load(dir, &set);
	pack_bundle(&set, 1, &bundle);
	ck_assert_int_eq(fl_wire_unpack_release_bundle((const uint8_t *)bundle.data, bundle.len,
	                                               FL_RELEASE_FILE_MAX, &b, errbuf),
	                 FL_OK);
	keep = b->migrations[0]->has_down;
	b->migrations[0]->has_down = 0;
	fl_buf_init(&again, 0);
	ck_assert_int_eq(fl_wire_pack_release_bundle(b, &again, FL_RELEASE_FILE_MAX, errbuf),
	                 FL_OK);
	b->migrations[0]->has_down = keep;
	keys[0] = &k;
	pack_signed(&again, keys, 1, &f);
	ck_assert_int_eq(verify(&f, &k, errbuf), FL_EPARSE);
	ck_assert_str_eq(errbuf,
	                 "migration '20250101000000_init': down.sql bytes but has_down unset");
	fl_wire_free_release_bundle(b);
	fl_migration_set_fini(&set);
	fl_key_fini(&k);
	fl_buf_fini(&bundle);
	fl_buf_fini(&again);
	fl_buf_fini(&f);
}
END_TEST

START_TEST(non_canonical_bundle_refused)
{
	char errbuf[FL_ERRBUF_SIZE] = "", dir[4096];
	const struct fl_key *keys[1];
	struct fl_migration_set set;
	struct fl_buf bundle, f;
	struct fl_key k;

	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	keys[0] = &k;
	new_dir(dir, sizeof(dir));
	write_rich(dir);
	load(dir, &set);
	pack_bundle(&set, 1, &bundle);
	/* An unknown field 15 (varint 1): signed, but no agent of format 1
	 * could know what it means. */
	fl_buf_append(&bundle, "\x78\x01", 2);
	pack_signed(&bundle, keys, 1, &f);
	ck_assert_int_eq(verify(&f, &k, errbuf), FL_EPARSE);
	ck_assert_str_eq(errbuf, "bundle has fields format version 1 does not define");
	/* The same inside a migration. */
	{
		ProtobufCMessageUnknownField extra = {20, PROTOBUF_C_WIRE_TYPE_VARINT, 1,
		                                      (uint8_t *)"\x01"};
		Flotilla__V1__ReleaseBundle *b = NULL;
		struct fl_buf again = FL_BUF_INIT;

		bundle.len -= 2;
		ck_assert_int_eq(fl_wire_unpack_release_bundle((const uint8_t *)bundle.data,
		                                               bundle.len, FL_RELEASE_FILE_MAX, &b,
		                                               errbuf),
		                 FL_OK);
		b->migrations[1]->base.n_unknown_fields = 1;
		b->migrations[1]->base.unknown_fields = &extra;
		fl_buf_init(&again, 0);
		ck_assert_int_eq(
		    fl_wire_pack_release_bundle(b, &again, FL_RELEASE_FILE_MAX, errbuf), FL_OK);
		b->migrations[1]->base.n_unknown_fields = 0;
		b->migrations[1]->base.unknown_fields = NULL;
		fl_wire_free_release_bundle(b);
		fl_buf_fini(&f);
		pack_signed(&again, keys, 1, &f);
		ck_assert_int_eq(verify(&f, &k, errbuf), FL_EPARSE);
		ck_assert_str_eq(errbuf, "bundle has fields format version 1 does not define");
		fl_buf_fini(&again);
		fl_buf_append(&bundle, "\x78\x01", 2);
	}
	fl_buf_fini(&f);
	/* The format version again at the end, same value: also not canonical,
	 * and refused before protobuf-c decodes it. */
	bundle.len -= 2;
	fl_buf_append(&bundle, "\x08\x01", 2);
	pack_signed(&bundle, keys, 1, &f);
	ck_assert_int_eq(verify(&f, &k, errbuf), FL_EPARSE);
	ck_assert_msg(strstr(errbuf, "format_version: given twice") != NULL, "%s", errbuf);
	fl_migration_set_fini(&set);
	fl_key_fini(&k);
	fl_buf_fini(&bundle);
	fl_buf_fini(&f);
}
END_TEST

START_TEST(malformed_files)
{
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_release *r = NULL;
	char *big;
	struct fl_key k;

	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	ck_assert_int_eq(
	    fl_release_verify("", 0, (const uint8_t(*)[32])k.pk, 1, NULL, NULL, &r, errbuf),
	    FL_EPARSE);
	ck_assert_str_eq(errbuf, "empty: not a release file");
	ck_assert_int_eq(fl_release_verify("\xff\xff\xff", 3, (const uint8_t(*)[32])k.pk, 1, NULL,
	                                   NULL, &r, errbuf),
	                 FL_EPARSE);
	ck_assert_msg(strncmp(errbuf, "malformed: ", 11) == 0, "%s", errbuf);
	/* A SignedRelease with an empty bundle. */
	ck_assert_int_eq(fl_release_inspect("\x12\x00", 2, &r, errbuf), FL_EPARSE);
	/* Over the cap: refused before a byte is parsed. */
	big = fl_calloc(FL_RELEASE_FILE_MAX + 1, 1);
	ck_assert_int_eq(fl_release_verify(big, FL_RELEASE_FILE_MAX + 1, (const uint8_t(*)[32])k.pk,
	                                   1, NULL, NULL, &r, errbuf),
	                 FL_EPARSE);
	ck_assert_str_eq(errbuf, "larger than the limit of 64 MiB");
	free(big);
	ck_assert_ptr_null(r);
	fl_key_fini(&k);
}
END_TEST

/* ---- files ---- */

START_TEST(file_write_read)
{
	char hash[65], errbuf[FL_ERRBUF_SIZE] = "", dir[4096], path[4200];
	struct fl_buf a, back = FL_BUF_INIT;
	struct dirent *e;
	struct stat st;
	int entries = 0;
	DIR *d;

	build_history(&a, hash);
	new_dir(dir, sizeof(dir));
	fl_test_fmt(path, sizeof(path), "%s/r.release", dir);
	ck_assert_int_eq(fl_release_file_write(path, a.data, a.len, errbuf), FL_OK);
	ck_assert_int_eq(fl_release_file_write(path, a.data, a.len, errbuf), FL_OK); /* replaces */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0644);
	ck_assert_int_eq(fl_release_file_read(path, &back, errbuf), FL_OK);
	ck_assert_uint_eq(back.len, a.len);
	ck_assert(memcmp(back.data, a.data, a.len) == 0);
	/* No temporary file left behind. */
	d = opendir(dir);
	while ((e = readdir(d)) != NULL)
		entries += e->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(entries, 1);

	fl_test_fmt(path, sizeof(path), "%s/missing", dir);
	ck_assert_int_eq(fl_release_file_read(path, &back, errbuf), FL_ENOENT);
	ck_assert_int_eq(fl_release_file_read(dir, &back, errbuf), FL_EIO);
	fl_test_fmt(path, sizeof(path), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(fl_release_file_read(path, &back, errbuf), FL_EIO);
	ck_assert_msg(strstr(errbuf, "not a regular file") != NULL, "%s", errbuf);
	fl_test_fmt(path, sizeof(path), "%s/no/such/dir/r", dir);
	ck_assert_int_eq(fl_release_file_write(path, a.data, a.len, errbuf), FL_EIO);
	/* Over the cap (a sparse file): refused without reading it. */
	fl_test_fmt(path, sizeof(path), "%s/big", dir);
	{
		int fd = open(path, O_WRONLY | O_CREAT, 0644);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, (off_t)FL_RELEASE_FILE_MAX + 1), 0);
		close(fd);
	}
	ck_assert_int_eq(fl_release_file_read(path, &back, errbuf), FL_EPARSE);
	ck_assert_msg(strstr(errbuf, "larger than the limit of 64 MiB") != NULL, "%s", errbuf);
	ck_assert_uint_eq(back.len, 0);
	fl_buf_fini(&a);
	fl_buf_fini(&back);
}
END_TEST

static Suite *release_suite(void)
{
	Suite *s = suite_create("release");
	TCase *tc = tcase_create("release");

	tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, build_is_deterministic);
	tcase_add_test(tc, build_hash_is_sha256_of_bundle);
	tcase_add_test(tc, content_changes_the_hash);
	tcase_add_test(tc, empty_set_builds);
	tcase_add_test(tc, project_sequence_and_expected_hash);
	tcase_add_test(tc, sign_then_verify);
	tcase_add_test(tc, round_trip_rich);
	tcase_add_test(tc, verify_refuses_unsigned);
	tcase_add_test(tc, verify_refuses_untrusted);
	tcase_add_test(tc, verify_refuses_tampered_sql);
	tcase_add_test(tc, verify_refuses_swapped_signature);
	tcase_add_test(tc, every_truncation_and_flip_is_refused);
	tcase_add_test(tc, duplicate_signer_refused);
	tcase_add_test(tc, sign_refusals);
	tcase_add_loop_test(tc, content_checks, 0,
	                    (int)(sizeof(doctored_cases) / sizeof(doctored_cases[0])));
	tcase_add_test(tc, down_bytes_without_has_down);
	tcase_add_test(tc, non_canonical_bundle_refused);
	tcase_add_test(tc, malformed_files);
	tcase_add_test(tc, file_write_read);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(release_suite());
	int failed;

	if (sodium_init() < 0)
		return 1;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
