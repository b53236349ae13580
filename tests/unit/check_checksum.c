/*
 * Prisma's checksum: vectors from `sha256sum`, the line-ending and legacy
 * (prisma-engines#1887) matching rules of its script_matches_checksum.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"

#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_HELLO "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
/* Each byte without zero padding: 0e -> e, 04 -> 4. */
#define SHA_HELLO_LEGACY "2cf24dba5fb0a3e26e83b2ac5b9e29e1b161e5c1fa7425e7343362938b9824"
#define SHA_SELECT_LF    "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd"
#define SHA_SELECT_CRLF  "d3cd5042f97738960d802ad6b3a548dfa18152215118ba18f04493bc6944b0e4"
/* Prisma's own line-ending test scripts: LF, and the same with CRLF. */
#define SCRIPT_LF         "ab\ncd\nef\ngh\rab\n"
#define SCRIPT_CRLF       "ab\r\ncd\r\nef\r\ngh\rab\r\n"
#define SHA_SCRIPT_LF     "99c58506090e1f80adf0ff55014be9e1ac1349b7eb044e1890a0dc99cce17a93"
#define SHA_SCRIPT_LF_OLD "99c58569e1f80adf0ff5514be9e1ac1349b7eb44e1890a0dc99cce17a93"
#define SHA_SCRIPT_CRLF   "201903fb0ae6ea3d986e1209aea430c383dcf3f74988254f6a67886f2cd9a2d3"

static bool matches(const char *script, const char *recorded)
{
	return fl_checksum_matches(script, strlen(script), recorded);
}

START_TEST(compute_known_vectors)
{
	char out[FL_CHECKSUM_HEX_LEN + 1];

	fl_checksum_compute("", 0, out);
	ck_assert_str_eq(out, SHA_EMPTY);
	fl_checksum_compute("hello", 5, out);
	ck_assert_str_eq(out, SHA_HELLO);
	fl_checksum_compute("SELECT 1;\n", 10, out);
	ck_assert_str_eq(out, SHA_SELECT_LF);
	fl_checksum_compute("SELECT 1;\r\n", 11, out);
	ck_assert_str_eq(out, SHA_SELECT_CRLF);
	fl_checksum_compute(SCRIPT_CRLF, strlen(SCRIPT_CRLF), out);
	ck_assert_str_eq(out, SHA_SCRIPT_CRLF);
}
END_TEST

START_TEST(compute_is_exact_bytes)
{
	char a[FL_CHECKSUM_HEX_LEN + 1], b[FL_CHECKSUM_HEX_LEN + 1];

	/* No normalising when computing: CRLF and LF scripts differ. */
	fl_checksum_compute(SCRIPT_LF, strlen(SCRIPT_LF), a);
	fl_checksum_compute(SCRIPT_CRLF, strlen(SCRIPT_CRLF), b);
	ck_assert_str_eq(a, SHA_SCRIPT_LF);
	ck_assert_str_ne(a, b);
	ck_assert_uint_eq(strlen(a), FL_CHECKSUM_HEX_LEN);
}
END_TEST

START_TEST(matches_same_bytes)
{
	ck_assert(matches("hello", SHA_HELLO));
	ck_assert(matches("", SHA_EMPTY));
	ck_assert(matches(SCRIPT_LF, SHA_SCRIPT_LF));
}
END_TEST

START_TEST(line_endings_match_both_ways)
{
	/* A CRLF checkout matches a checksum recorded from LF, and the reverse. */
	ck_assert(matches("SELECT 1;\r\n", SHA_SELECT_LF));
	ck_assert(matches("SELECT 1;\n", SHA_SELECT_CRLF));
	ck_assert(matches(SCRIPT_CRLF, SHA_SCRIPT_LF));
	ck_assert(matches(SCRIPT_LF, SHA_SCRIPT_CRLF));
	/* A lone '\r' is not a line ending and stays. */
	ck_assert(!matches("ab\ncd\nef\ngh\nab\n", SHA_SCRIPT_LF));
}
END_TEST

START_TEST(different_scripts_do_not_match)
{
	char rec[FL_CHECKSUM_HEX_LEN + 1];

	/* Prisma's negative cases. */
	fl_checksum_compute("abcd", 4, rec);
	ck_assert(!matches("abc", rec));
	fl_checksum_compute("abc", 3, rec);
	ck_assert(!matches("abc\n", rec));
	ck_assert(!matches("SELECT 2;\n", SHA_SELECT_LF));
	ck_assert(!matches("hello", SHA_EMPTY));
}
END_TEST

START_TEST(recorded_must_be_exact)
{
	char upper[FL_CHECKSUM_HEX_LEN + 1];
	size_t i;

	for (i = 0; i <= FL_CHECKSUM_HEX_LEN; i++)
		upper[i] = (char)(SHA_HELLO[i] >= 'a' && SHA_HELLO[i] <= 'f' ? SHA_HELLO[i] - 32
		                                                             : SHA_HELLO[i]);
	ck_assert(!matches("hello", upper));
	ck_assert(!matches("hello", ""));
	ck_assert(!matches("", ""));
	ck_assert(!matches("hello", NULL));
	ck_assert(!matches("hello", SHA_HELLO "0"));
	ck_assert(!matches("hello", " " SHA_HELLO));
}
END_TEST

START_TEST(legacy_unpadded_checksums_match)
{
	ck_assert_uint_eq(strlen(SHA_HELLO_LEGACY), 62);
	ck_assert(matches("hello", SHA_HELLO_LEGACY));
	ck_assert(!matches("hellO", SHA_HELLO_LEGACY));
	/* The legacy format with line endings changed since. */
	ck_assert_uint_eq(strlen(SHA_SCRIPT_LF_OLD), 59);
	ck_assert(matches(SCRIPT_LF, SHA_SCRIPT_LF_OLD));
	ck_assert(matches(SCRIPT_CRLF, SHA_SCRIPT_LF_OLD));
	/* A short string is compared in the legacy format, not as a prefix. */
	ck_assert(!matches("hello", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e730433629"));
}
END_TEST

START_TEST(script_without_newline)
{
	char rec[FL_CHECKSUM_HEX_LEN + 1];

	/* Only one variant to try; it matches itself and nothing close to it. */
	fl_checksum_compute("SELECT 1;", 9, rec);
	ck_assert(matches("SELECT 1;", rec));
	ck_assert(!matches("SELECT 1;\r", rec));
	ck_assert(!matches("SELECT 1;\n", rec));
}
END_TEST

static Suite *checksum_suite(void)
{
	Suite *s = suite_create("checksum");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, compute_known_vectors);
	tcase_add_test(tc, compute_is_exact_bytes);
	tcase_add_test(tc, matches_same_bytes);
	tcase_add_test(tc, line_endings_match_both_ways);
	tcase_add_test(tc, different_scripts_do_not_match);
	tcase_add_test(tc, recorded_must_be_exact);
	tcase_add_test(tc, legacy_unpadded_checksums_match);
	tcase_add_test(tc, script_without_newline);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(checksum_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
