/* Error helpers: messages that quote user text never carry raw control bytes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static const char *quote(const char *s, size_t len)
{
	static char out[64];
	return fl_err_quote(out, sizeof(out), s, len);
}

START_TEST(plain_text_is_unchanged)
{
	ck_assert_str_eq(quote("20250101000000_init", 19), "20250101000000_init");
	ck_assert_str_eq(quote("caf\xc3\xa9", 5), "caf\xc3\xa9"); /* UTF-8 kept */
}
END_TEST

START_TEST(control_characters_are_escaped)
{
	ck_assert_str_eq(quote("a\nb\x1b[2J", 7), "a\\x0ab\\x1b[2J");
	ck_assert_str_eq(quote("x\x7f", 2), "x\\x7f");
	/* C1 controls (U+0085, U+009B: a terminal's CSI) arrive as C2 xx. */
	ck_assert_str_eq(quote("a\xc2\x85z\xc2\x9b", 6), "a\\xc2\\x85z\\xc2\\x9b");
	/* U+00A0 and above are printable. */
	ck_assert_str_eq(quote("\xc2\xa0", 2), "\xc2\xa0");
}
END_TEST

START_TEST(invalid_utf8_is_escaped_bytewise)
{
	ck_assert_str_eq(quote("ok\xff\xfe", 4), "ok\\xff\\xfe");
}
END_TEST

START_TEST(long_text_is_cut_between_characters)
{
	char in[200];
	const char *out;

	memset(in, 'a', sizeof(in));
	out = quote(in, sizeof(in));
	ck_assert_uint_lt(strlen(out), 64);
	ck_assert_str_eq(out + strlen(out) - 3, "...");
	/* Multibyte characters are never split. */
	for (size_t i = 0; i + 1 < sizeof(in); i += 2)
		memcpy(in + i, "\xc3\xa9", 2);
	out = quote(in, sizeof(in));
	ck_assert_str_eq(out + strlen(out) - 3, "...");
	ck_assert_uint_eq((strlen(out) - 3) % 2, 0);
}
END_TEST

START_TEST(prefix_keeps_the_old_message)
{
	char buf[FL_ERRBUF_SIZE];

	ck_assert_int_eq(fl_errf(buf, FL_EIO, "cannot read '%s'", "x"), FL_EIO);
	fl_err_prefix(buf, "release '%s'", "r");
	ck_assert_str_eq(buf, "release 'r': cannot read 'x'");
	ck_assert_str_eq(fl_strerror(FL_ECHECKSUM), "migration modified after it was applied");
}
END_TEST

/* Values are stable (scripts and the wire carry them), each has its own text. */
START_TEST(every_code_has_its_own_text)
{
	ck_assert_int_eq(FL_EDB, 19);
	ck_assert_int_eq(FL_EBUSY, 20);
	ck_assert_int_eq(FL_EREFUSED, 21);
	for (int a = FL_OK; a <= FL_EREFUSED; a++) {
		ck_assert_str_ne(fl_strerror((enum fl_err)a), "unknown error");
		for (int b = a + 1; b <= FL_EREFUSED; b++)
			ck_assert_str_ne(fl_strerror((enum fl_err)a), fl_strerror((enum fl_err)b));
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("err");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, plain_text_is_unchanged);
	tcase_add_test(tc, control_characters_are_escaped);
	tcase_add_test(tc, invalid_utf8_is_escaped_bytewise);
	tcase_add_test(tc, long_text_is_cut_between_characters);
	tcase_add_test(tc, prefix_keeps_the_old_message);
	tcase_add_test(tc, every_code_has_its_own_text);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
