/*
 * Keys: base64, key ids, public key text, key generation against RFC 8032's
 * first test vector, and secret key files: written 0600 and never over an
 * existing file, loaded only when nobody else may touch them and every line
 * is as written, never quoting the secret in an error.
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
#include "keys.h"

/* RFC 8032 section 7.1, TEST 1. */
#define RFC_SEED   "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define RFC_PK     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define RFC_PK_B64 "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define RFC_SIG                                                                                    \
	"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970" \
	"1c"                                                                                       \
	"f9b46bd25bf5f0595bbe24655141438e7a100b"
/* sha256sum of those 32 bytes, first 16 hex digits. */
#define RFC_KEY_ID  "21fe31dfa154a261"
#define ZERO_KEY_ID "66687aadf862bd77"

/* ---- helpers ---- */

static char tmp_root[256];

static void tmp_setup(void)
{
	fl_test_tmp_root(tmp_root, sizeof(tmp_root), "check_keys");
}

static void tmp_teardown(void)
{
	fl_test_rm_rf(tmp_root);
}

/* A path in this test's own folder (Check forks a process per test). */
static void path_of(char *out, size_t n, const char *name)
{
	static char dir[300];
	static pid_t owner;

	if (owner != getpid()) {
		fl_test_fmt(dir, sizeof(dir), "%s/t.XXXXXX", tmp_root);
		ck_assert_ptr_nonnull(mkdtemp(dir));
		owner = getpid();
	}
	fl_test_fmt(out, n, "%s/%s", dir, name);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

static char *read_text(const char *path)
{
	static char buf[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

static void hex(const char *h, uint8_t *out, size_t n)
{
	size_t len;

	ck_assert_int_eq(sodium_hex2bin(out, n, h, strlen(h), NULL, &len, NULL), 0);
	ck_assert_uint_eq(len, n);
}

/* The RFC 8032 key as a struct fl_key of this kind. */
static void rfc_key(enum fl_key_kind kind, struct fl_key *k)
{
	uint8_t seed[32];

	hex(RFC_SEED, seed, sizeof(seed));
	fl_key_generate(kind, seed, k);
}

/* A key file for the RFC key, as keygen writes it, with one line replaced
 * (line 0: none) or text appended. */
static void rfc_file(const char *path, const char *kind, int line, const char *replace,
                     const char *append, mode_t mode)
{
	const char *lines[4] = {"# flotilla secret key: keep it private", NULL,
	                        "public: " RFC_PK_B64, NULL};
	char kindline[64], secretline[128], text[1024] = "", seedb64[64];
	uint8_t seed[32];

	hex(RFC_SEED, seed, sizeof(seed));
	fl_base64_encode(seed, sizeof(seed), seedb64);
	fl_test_fmt(kindline, sizeof(kindline), "kind: %s", kind);
	fl_test_fmt(secretline, sizeof(secretline), "secret: %s", seedb64);
	lines[1] = kindline;
	lines[3] = secretline;
	for (int i = 0; i < 4; i++) {
		strcat(text, i + 1 == line ? replace : lines[i]);
		strcat(text, "\n");
	}
	if (append)
		strcat(text, append);
	write_text(path, text, mode);
}

/* Load path as a release key; return the error and leave the message in errbuf. */
static enum fl_err load(const char *path, enum fl_key_kind want, char *errbuf)
{
	struct fl_key k = {0};
	enum fl_err rv = fl_key_file_load(path, want, &k, errbuf);

	if (rv != FL_OK)
		ck_assert_ptr_null(k.seed);
	fl_key_fini(&k);
	return rv;
}

/* ---- base64 ---- */

START_TEST(base64_round_trip)
{
	uint8_t bin[70], back[70];
	char text[128];
	size_t len, n;

	randombytes_buf(bin, sizeof(bin));
	for (len = 0; len <= sizeof(bin); len++) {
		fl_base64_encode(bin, len, text);
		ck_assert_uint_eq(strlen(text), (len + 2) / 3 * 4);
		ck_assert_uint_eq(fl_base64_encoded_size(len), strlen(text) + 1);
		ck_assert_int_eq(fl_base64_decode(text, strlen(text), back, sizeof(back), &n),
		                 FL_OK);
		ck_assert_uint_eq(n, len);
		ck_assert(memcmp(bin, back, len) == 0);
	}
	fl_base64_encode("hello", 5, text);
	ck_assert_str_eq(text, "aGVsbG8=");
	fl_base64_encode("\xfb\xff", 2, text);
	ck_assert_str_eq(text, "+/8="); /* the standard alphabet, not URL-safe */
}
END_TEST

START_TEST(base64_refuses)
{
	static const char *const bad[] = {
	    "aGVsbG8",            /* missing padding */
	    "aGVs bG8=",          /* whitespace */
	    "aGVsbG9=",           /* non-zero trailing bits */
	    "aGVsbG8=\n", "-_8=", /* URL-safe alphabet */
	    "aGVsbG8==",  "a",
	};
	uint8_t out[16];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(fl_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out), &n) ==
		                  FL_EPARSE,
		              "accepted '%s'", bad[i]);
	/* Longer than the room given. */
	ck_assert_int_eq(fl_base64_decode("aGVsbG8=", 8, out, 4, &n), FL_EPARSE);
	ck_assert_int_eq(fl_base64_decode("aGVsbG8=", 8, out, 5, &n), FL_OK);
	ck_assert_uint_eq(n, 5);
}
END_TEST

/* ---- public keys and ids ---- */

START_TEST(key_id_vectors)
{
	uint8_t pk[32];
	char id[FL_KEY_ID_LEN + 1];

	hex(RFC_PK, pk, sizeof(pk));
	fl_key_id(pk, id);
	ck_assert_str_eq(id, RFC_KEY_ID);
	memset(pk, 0, sizeof(pk));
	fl_key_id(pk, id);
	ck_assert_str_eq(id, ZERO_KEY_ID);
}
END_TEST

START_TEST(public_text_round_trip)
{
	uint8_t pk[32], back[32];
	char text[FL_KEY_PUBLIC_TEXT_LEN + 1], errbuf[FL_ERRBUF_SIZE];

	hex(RFC_PK, pk, sizeof(pk));
	fl_key_public_text(pk, text);
	ck_assert_str_eq(text, RFC_PK_B64);
	ck_assert_int_eq(fl_key_public_parse(text, back, errbuf), FL_OK);
	ck_assert(memcmp(pk, back, 32) == 0);
}
END_TEST

START_TEST(public_parse_errors)
{
	static const struct {
		const char *text, *message;
	} cases[] = {
	    {"", "public key '' is 0 characters long, expected 44 characters of base64"},
	    {"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo",
	     "is 43 characters long, expected 44 characters of base64"},
	    {RFC_PK_B64 "=", "is 45 characters long"},
	    /* 44 characters, but not base64 / not 32 bytes. */
	    {"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUR!=", "is not valid base64 of 32 bytes"},
	    {"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "is not valid base64 of 32 bytes"},
	    {"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURoA", "is not valid base64 of 32 bytes"},
	    {"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUR==", "is not valid base64 of 32 bytes"},
	    {"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp=", "is not valid base64 of 32 bytes"},
	};
	char errbuf[FL_ERRBUF_SIZE];
	uint8_t pk[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errbuf[0] = '\0';
		ck_assert_int_eq(fl_key_public_parse(cases[i].text, pk, errbuf), FL_EPARSE);
		ck_assert_msg(strstr(errbuf, cases[i].message) != NULL, "'%s': got '%s'",
		              cases[i].text, errbuf);
	}
	/* Control characters are not echoed back. */
	ck_assert_int_eq(fl_key_public_parse("\x1b[31mred", pk, errbuf), FL_EPARSE);
	ck_assert_ptr_null(strchr(errbuf, '\x1b'));
}
END_TEST

START_TEST(kinds)
{
	static const char *const names[] = {"coordinator", "agent", "operator", "release"};
	char errbuf[FL_ERRBUF_SIZE];
	enum fl_key_kind k;

	for (int i = 0; i < 4; i++) {
		ck_assert_str_eq(fl_key_kind_name((enum fl_key_kind)i), names[i]);
		ck_assert_int_eq(fl_key_kind_parse(names[i], &k, errbuf), FL_OK);
		ck_assert_int_eq(k, i);
	}
	ck_assert_str_eq(fl_key_kind_name((enum fl_key_kind)42), "?");
	ck_assert_int_eq(fl_key_kind_parse("Release", &k, errbuf), FL_EINVAL);
	ck_assert_str_eq(errbuf, "unknown key kind 'Release': expected coordinator, agent, "
	                         "operator or release");
	ck_assert_int_eq(fl_key_kind_parse("", &k, errbuf), FL_EINVAL);
}
END_TEST

/* ---- key pairs ---- */

START_TEST(generate_rfc8032)
{
	uint8_t pk[32], sig[64], want[64];
	struct fl_key k;

	rfc_key(FL_KEY_RELEASE, &k);
	hex(RFC_PK, pk, sizeof(pk));
	hex(RFC_SIG, want, sizeof(want));
	ck_assert(memcmp(k.pk, pk, 32) == 0);
	ck_assert_int_eq(k.kind, FL_KEY_RELEASE);
	fl_key_sign(&k, "", 0, sig);
	ck_assert(memcmp(sig, want, 64) == 0);
	ck_assert(fl_key_verify(pk, "", 0, sig));
	sig[10] ^= 1;
	ck_assert(!fl_key_verify(pk, "", 0, sig));
	ck_assert(!fl_key_verify(pk, "x", 1, want));
	fl_key_fini(&k);
	ck_assert_ptr_null(k.seed);
	fl_key_fini(&k); /* twice is harmless */
	fl_key_fini(NULL);
}
END_TEST

START_TEST(generate_random)
{
	struct fl_key a, b;
	uint8_t sig[64];

	fl_key_generate(FL_KEY_AGENT, NULL, &a);
	fl_key_generate(FL_KEY_AGENT, NULL, &b);
	ck_assert(memcmp(a.pk, b.pk, 32) != 0);
	fl_key_sign(&a, "msg", 3, sig);
	ck_assert(fl_key_verify(a.pk, "msg", 3, sig));
	ck_assert(!fl_key_verify(b.pk, "msg", 3, sig));
	fl_key_fini(&a);
	fl_key_fini(&b);
}
END_TEST

/* ---- secret key files ---- */

START_TEST(file_round_trip)
{
	char path[512], errbuf[FL_ERRBUF_SIZE] = "", *text;
	struct fl_key k, back = {0};
	struct stat st;
	uint8_t sig[64];

	path_of(path, sizeof(path), "release.key");
	rfc_key(FL_KEY_RELEASE, &k);
	ck_assert_int_eq(fl_key_file_write(path, &k, errbuf), FL_OK);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	text = read_text(path);
	ck_assert_str_eq(text, "# flotilla secret key: keep it private\n"
	                       "kind: release\n"
	                       "public: " RFC_PK_B64 "\n"
	                       "secret: nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n");
	ck_assert_int_eq(fl_key_file_load(path, FL_KEY_RELEASE, &back, errbuf), FL_OK);
	ck_assert_int_eq(back.kind, FL_KEY_RELEASE);
	ck_assert(memcmp(back.pk, k.pk, 32) == 0);
	ck_assert(sodium_memcmp(back.seed, k.seed, 32) == 0);
	fl_key_sign(&back, "m", 1, sig);
	ck_assert(fl_key_verify(k.pk, "m", 1, sig));
	fl_key_fini(&back);
	fl_key_fini(&k);
}
END_TEST

START_TEST(file_every_kind)
{
	char path[512], errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_key k, back = {0};

	for (int i = 0; i < 4; i++) {
		char name[16];

		fl_test_fmt(name, sizeof(name), "%d.key", i);
		path_of(path, sizeof(path), name);
		fl_key_generate((enum fl_key_kind)i, NULL, &k);
		ck_assert_int_eq(fl_key_file_write(path, &k, errbuf), FL_OK);
		ck_assert_int_eq(fl_key_file_load(path, (enum fl_key_kind)i, &back, errbuf), FL_OK);
		ck_assert(memcmp(back.pk, k.pk, 32) == 0);
		fl_key_fini(&back);
		fl_key_fini(&k);
	}
}
END_TEST

START_TEST(file_never_overwritten)
{
	char path[512], errbuf[FL_ERRBUF_SIZE] = "", link[512];
	struct fl_key k;

	path_of(path, sizeof(path), "existing.key");
	write_text(path, "precious\n", 0600);
	fl_key_generate(FL_KEY_RELEASE, NULL, &k);
	ck_assert_int_eq(fl_key_file_write(path, &k, errbuf), FL_EIO);
	ck_assert_msg(strstr(errbuf, "already exists") != NULL, "%s", errbuf);
	ck_assert_str_eq(read_text(path), "precious\n");
	/* Nor through a dangling symlink. */
	path_of(link, sizeof(link), "link.key");
	path_of(path, sizeof(path), "target.key");
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_int_ne(fl_key_file_write(link, &k, errbuf), FL_OK);
	ck_assert_int_ne(access(path, F_OK), 0);
	/* A missing folder: nothing created, a clear message. */
	path_of(path, sizeof(path), "no/such/dir.key");
	ck_assert_int_eq(fl_key_file_write(path, &k, errbuf), FL_EIO);
	ck_assert_msg(strstr(errbuf, "cannot create") != NULL, "%s", errbuf);
	fl_key_fini(&k);
}
END_TEST

START_TEST(file_mode_refused)
{
	static const struct {
		mode_t mode;
		const char *what;
	} cases[] = {
	    {0644, "readable by others (mode 0644)"}, {0640, "readable by others (mode 0640)"},
	    {0604, "readable by others (mode 0604)"}, {0620, "writable by others (mode 0620)"},
	    {0602, "writable by others (mode 0602)"}, {0610, "accessible by others (mode 0610)"},
	    {0666, "readable by others (mode 0666)"},
	};
	char path[512], errbuf[FL_ERRBUF_SIZE], want[1024];

	path_of(path, sizeof(path), "k");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rfc_file(path, "release", 0, NULL, NULL, cases[i].mode);
		ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_EIO);
		fl_test_fmt(want, sizeof(want), "refusing '%s': %s; chmod 600 it", path,
		            cases[i].what);
		ck_assert_str_eq(errbuf, want);
	}
	rfc_file(path, "release", 0, NULL, NULL, 0400);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_OK);
	rfc_file(path, "release", 0, NULL, NULL, 0600);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_OK);
}
END_TEST

START_TEST(file_wrong_kind)
{
	char path[512], errbuf[FL_ERRBUF_SIZE], want[1024];

	path_of(path, sizeof(path), "agent.key");
	rfc_file(path, "agent", 0, NULL, NULL, 0600);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_EPARSE);
	fl_test_fmt(want, sizeof(want), "'%s' holds an agent key, expected a release key", path);
	ck_assert_str_eq(errbuf, want);
	ck_assert_int_eq(load(path, FL_KEY_AGENT, errbuf), FL_OK);
	ck_assert_int_eq(load(path, FL_KEY_OPERATOR, errbuf), FL_EPARSE);
	rfc_file(path, "root", 0, NULL, NULL, 0600);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_EPARSE);
	fl_test_fmt(
	    want, sizeof(want),
	    "'%s':2: unknown key kind 'root': expected coordinator, agent, operator or release",
	    path);
	ck_assert_str_eq(errbuf, want);
}
END_TEST

/* Each case: which line to replace (0: none) and with what, or what to append. */
static const struct {
	int line;
	const char *replace, *append, *message;
} bad_files[] = {
    /* Another key's public line: the seed must not sign under it. */
    {3, "public: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL,
     ":3: the public key does not belong to the secret on line 4"},
    {3, "public: 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo", NULL,
     ":3: public key is 43 characters long"},
    {3, "publik: " RFC_PK_B64, NULL, ":3: unknown key 'publik'"},
    {0, NULL, "comment: hello\n", ":5: unknown key 'comment'"},
    {0, NULL, "kind: release\n", ":5: 'kind' is already given on line 2"},
    {0, NULL, "secret: nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n",
     ":5: 'secret' is already given on line 4"},
    {0, NULL, "just some words\n", ":5: malformed line: expected 'kind:', 'public:' or 'secret:'"},
    {4, "secret: c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw==", NULL,
     ":4: secret is not 44 characters of base64 of a 32-byte seed"},
    {4, "secret: nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2!=", NULL,
     ":4: secret is not 44 characters of base64"},
    {4, "# no secret", NULL, ": no 'secret:' line"},
    {2, "", NULL, ": no 'kind:' line"},
    {0, NULL, "kind", ":5: malformed line"},
};

START_TEST(file_malformed)
{
	char path[512], errbuf[FL_ERRBUF_SIZE], want[1024];
	int i = _i;

	path_of(path, sizeof(path), "bad.key");
	rfc_file(path, "release", bad_files[i].line, bad_files[i].replace, bad_files[i].append,
	         0600);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_EPARSE);
	fl_test_fmt(want, sizeof(want), "'%s'%s", path, bad_files[i].message);
	ck_assert_msg(strncmp(errbuf, want, strlen(want)) == 0, "case %d: want '%s', got '%s'", i,
	              want, errbuf);
	/* The secret never shows in a message. */
	ck_assert_ptr_null(strstr(errbuf, "c2VjcmV0"));
	ck_assert_ptr_null(strstr(errbuf, "nWGxne"));
}
END_TEST

START_TEST(file_comments_and_blank_lines)
{
	char path[512], errbuf[FL_ERRBUF_SIZE] = "";

	path_of(path, sizeof(path), "k");
	rfc_file(path, "release", 0, NULL, "\n# a note\n   \n  # indented\n", 0600);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_OK);
	/* No trailing newline on the last line is fine too. */
	write_text(path,
	           "kind: release\npublic: " RFC_PK_B64
	           "\nsecret: nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=",
	           0600);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_OK);
}
END_TEST

START_TEST(file_other_refusals)
{
	char path[512], errbuf[FL_ERRBUF_SIZE], big[FL_KEY_FILE_MAX + 64];

	path_of(path, sizeof(path), "missing.key");
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_ENOENT);
	ck_assert_msg(strstr(errbuf, "cannot open") != NULL, "%s", errbuf);
	path_of(path, sizeof(path), "dir.key");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_EIO);
	ck_assert_msg(strstr(errbuf, "not a regular file") != NULL, "%s", errbuf);
	path_of(path, sizeof(path), "fifo.key");
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_EIO);
	ck_assert_msg(strstr(errbuf, "not a regular file") != NULL, "%s", errbuf);
	path_of(path, sizeof(path), "big.key");
	memset(big, '#', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_text(path, big, 0600);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_EPARSE);
	ck_assert_msg(strstr(errbuf, "larger than a key file can be") != NULL, "%s", errbuf);
	path_of(path, sizeof(path), "empty.key");
	write_text(path, "", 0600);
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_EPARSE);
	path_of(path, sizeof(path), "nul.key");
	write_text(path, "kind: release\n", 0600);
	{
		int fd = open(path, O_WRONLY | O_APPEND);

		ck_assert_int_eq(write(fd, "\0", 1), 1);
		close(fd);
	}
	ck_assert_int_eq(load(path, FL_KEY_RELEASE, errbuf), FL_EPARSE);
	ck_assert_msg(strstr(errbuf, "NUL") != NULL, "%s", errbuf);
}
END_TEST

static Suite *keys_suite(void)
{
	Suite *s = suite_create("keys");
	TCase *tc = tcase_create("core");
	TCase *files = tcase_create("files");

	tcase_add_test(tc, base64_round_trip);
	tcase_add_test(tc, base64_refuses);
	tcase_add_test(tc, key_id_vectors);
	tcase_add_test(tc, public_text_round_trip);
	tcase_add_test(tc, public_parse_errors);
	tcase_add_test(tc, kinds);
	tcase_add_test(tc, generate_rfc8032);
	tcase_add_test(tc, generate_random);
	suite_add_tcase(s, tc);

	tcase_add_unchecked_fixture(files, tmp_setup, tmp_teardown);
	tcase_add_test(files, file_round_trip);
	tcase_add_test(files, file_every_kind);
	tcase_add_test(files, file_never_overwritten);
	tcase_add_test(files, file_mode_refused);
	tcase_add_test(files, file_wrong_kind);
	tcase_add_loop_test(files, file_malformed, 0,
	                    (int)(sizeof(bad_files) / sizeof(bad_files[0])));
	tcase_add_test(files, file_comments_and_blank_lines);
	tcase_add_test(files, file_other_refusals);
	suite_add_tcase(s, files);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(keys_suite());
	int failed;

	if (sodium_init() < 0)
		return 1;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
