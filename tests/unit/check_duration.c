/* Durations as users write them in directives and policies. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

static const struct {
	const char *text;
	int64_t ms;
} good[] = {
    {"0", 0},
    {"0s", 0},
    {"0ms", 0},
    {"500ms", 500},
    {"5s", 5000},
    {"10m", 600000},
    {"1h", 3600000},
    {"1m30s", 90000},
    {"1h30m", 5400000},
    {"1h5s", 3605000},
    {"2h0m5s", 7205000},
    {"1h1m1s1ms", 3661001},
    {"90s", 90000},
    {"05s", 5000},
    {"9223372036854775807ms", INT64_MAX},
    {"2562047788015h", 2562047788015 * INT64_C(3600000)},
};

static const struct {
	const char *text;
	const char *msg;
} bad[] = {
    {"", "invalid duration '': empty"},
    {"-5s", "invalid duration '-5s': negative"},
    {"-0", "invalid duration '-0': negative"},
    {"5", "invalid duration '5': missing unit"},
    {"1m30", "invalid duration '1m30': missing unit"},
    {"00", "invalid duration '00': missing unit"},
    {"5x", "invalid duration '5x': unknown unit 'x' (use h, m, s or ms)"},
    {"5S", "invalid duration '5S': unknown unit 'S' (use h, m, s or ms)"},
    {"5sec", "invalid duration '5sec': unknown unit 'sec' (use h, m, s or ms)"},
    {"1d", "invalid duration '1d': unknown unit 'd' (use h, m, s or ms)"},
    {"1.5s", "invalid duration '1.5s': unknown unit '.' (use h, m, s or ms)"},
    {"5s ", "invalid duration '5s ': unknown unit 's ' (use h, m, s or ms)"},
    {" 5s", "invalid duration ' 5s': expected a number"},
    {"+5s", "invalid duration '+5s': expected a number"},
    {"s", "invalid duration 's': expected a number"},
    {"1s1m", "invalid duration '1s1m': units must go from largest to smallest, once each"},
    {"1m1m", "invalid duration '1m1m': units must go from largest to smallest, once each"},
    {"9223372036854775808ms", "invalid duration '9223372036854775808ms': too large"},
    {"2562047788016h", "invalid duration '2562047788016h': too large"},
    {"2562047788015h1h", "invalid duration '2562047788015h1h': units must go from largest to "
                         "smallest, once each"},
    {"2562047788015h59m", "invalid duration '2562047788015h59m': too large"},
    {"99999999999999999999s", "invalid duration '99999999999999999999s': too large"},
};

START_TEST(parses_good)
{
	char err[FL_ERRBUF_SIZE] = "";
	int64_t ms = -1;

	ck_assert_int_eq(fl_duration_parse(good[_i].text, &ms, err), FL_OK);
	ck_assert_msg(ms == good[_i].ms, "'%s': got %lld", good[_i].text, (long long)ms);
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(rejects_bad)
{
	char err[FL_ERRBUF_SIZE] = "";
	int64_t ms = 42;

	ck_assert_int_eq(fl_duration_parse(bad[_i].text, &ms, err), FL_EPARSE);
	ck_assert_str_eq(err, bad[_i].msg);
	ck_assert_int_eq(ms, 42); /* untouched on error */
}
END_TEST

START_TEST(rejects_null_and_tolerates_no_errbuf)
{
	int64_t ms = 7;

	ck_assert_int_eq(fl_duration_parse(NULL, &ms, NULL), FL_EPARSE);
	ck_assert_int_eq(fl_duration_parse("7y", &ms, NULL), FL_EPARSE);
	ck_assert_int_eq(ms, 7);
}
END_TEST

START_TEST(formats_compactly)
{
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
	    {0, "0"},          {1, "1ms"},      {500, "500ms"},       {5000, "5s"},
	    {150000, "2m30s"}, {3600000, "1h"}, {3605000, "1h5s"},    {90061001, "25h1m1s1ms"},
	    {-5000, "-5s"},    {60000, "1m"},   {61500, "1m1s500ms"},
	};
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fl_duration_format(cases[i].ms, out, sizeof(out));
		ck_assert_str_eq(out, cases[i].text);
	}
	fl_duration_format(INT64_MIN, out, sizeof(out));
	ck_assert_str_eq(out, "-2562047788015h12m55s808ms");
}
END_TEST

START_TEST(format_respects_outlen)
{
	char out[8];

	memset(out, 'x', sizeof(out));
	fl_duration_format(150000, out, 4);
	ck_assert_str_eq(out, "2m3");
	ck_assert_int_eq(out[4], 'x');
	fl_duration_format(150000, out, 1);
	ck_assert_str_eq(out, "");
	out[0] = 'y';
	fl_duration_format(150000, out, 0);
	ck_assert_int_eq(out[0], 'y');
}
END_TEST

START_TEST(format_then_parse_round_trips)
{
	uint64_t x = 88172645463325252ull; /* xorshift: varied, reproducible values */
	char out[64], err[FL_ERRBUF_SIZE];
	int i;

	for (i = 0; i < 10000; i++) {
		int64_t v, back = -1;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v = (int64_t)(x >> (1 + x % 62)); /* non-negative, spread over magnitudes */
		fl_duration_format(v, out, sizeof(out));
		ck_assert_msg(fl_duration_parse(out, &back, err) == FL_OK, "%s: %s", out, err);
		ck_assert_msg(back == v, "%lld -> %s -> %lld", (long long)v, out, (long long)back);
	}
}
END_TEST

/* Flags and directives check the range: out of range is refused, never
 * clamped, and a lock timeout of 0 (which would turn it off) is refused. */
START_TEST(lock_timeout_range)
{
	char err[FL_ERRBUF_SIZE] = "";

	ck_assert_int_eq(fl_duration_check_lock_timeout(0, err), FL_EPARSE);
	ck_assert_str_eq(err, "lock timeout 0 would turn the lock timeout off: give one from 1ms "
	                      "to 1h");
	ck_assert_int_eq(fl_duration_check_lock_timeout(3600001, err), FL_EPARSE);
	ck_assert_str_eq(err, "lock timeout 1h1ms is out of range: give one from 1ms to 1h");
	ck_assert_int_eq(fl_duration_check_lock_timeout(-1, err), FL_EPARSE);
	ck_assert_int_eq(fl_duration_check_lock_timeout(INT64_MAX, err), FL_EPARSE);
	err[0] = '\0';
	ck_assert_int_eq(fl_duration_check_lock_timeout(1, err), FL_OK);
	ck_assert_int_eq(fl_duration_check_lock_timeout(500, err), FL_OK);
	ck_assert_int_eq(fl_duration_check_lock_timeout(3600000, err), FL_OK);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(fl_duration_check_lock_timeout(0, NULL), FL_EPARSE);
}
END_TEST

START_TEST(range_refuses_what_would_be_clamped)
{
	char err[FL_ERRBUF_SIZE] = "";
	int64_t ms;

	/* 25 days parse, but PostgreSQL takes at most INT_MAX ms: refused. */
	ck_assert_int_eq(fl_duration_parse("600h", &ms, err), FL_OK);
	ck_assert_int_eq(
	    fl_duration_check_range("statement timeout", ms, 1, FL_PG_TIMEOUT_MAX_MS, err),
	    FL_EPARSE);
	ck_assert_str_eq(err, "statement timeout 600h is out of range: give one from 1ms to "
	                      "596h31m23s647ms");
	ck_assert_int_eq(
	    fl_duration_check_range("x", FL_PG_TIMEOUT_MAX_MS, 1, FL_PG_TIMEOUT_MAX_MS, err),
	    FL_OK);
	ck_assert_int_eq(fl_duration_check_range("x", 0, 0, 10, err), FL_OK);
	ck_assert_int_eq(fl_duration_check_range("x", 11, 0, 10, err), FL_EPARSE);
}
END_TEST

static Suite *duration_suite(void)
{
	Suite *s = suite_create("duration");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, parses_good, 0, (int)(sizeof(good) / sizeof(good[0])));
	tcase_add_loop_test(tc, rejects_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, rejects_null_and_tolerates_no_errbuf);
	tcase_add_test(tc, formats_compactly);
	tcase_add_test(tc, format_respects_outlen);
	tcase_add_test(tc, format_then_parse_round_trips);
	tcase_add_test(tc, lock_timeout_range);
	tcase_add_test(tc, range_refuses_what_would_be_clamped);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(duration_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
