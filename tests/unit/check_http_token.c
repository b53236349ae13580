/* Bearer tokens of the coordinator's HTTP endpoint (coordinator/cli/http_token.h). */
#include <check.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "http_token.h"

#define NOW  1800000000000LL
#define HOUR (3600LL * 1000)

static struct fl_key k1, k2;
static uint8_t keys[2][FL_KEY_PUBLIC_BYTES];

static void setup(void)
{
	uint8_t s1[32], s2[32];

	ck_assert_int_ge(sodium_init(), 0);
	memset(s1, 1, sizeof(s1));
	memset(s2, 2, sizeof(s2));
	fl_key_generate(FL_KEY_OPERATOR, s1, &k1);
	fl_key_generate(FL_KEY_OPERATOR, s2, &k2);
	memcpy(keys[0], k2.pk, FL_KEY_PUBLIC_BYTES); /* k1 second: the index is reported */
	memcpy(keys[1], k1.pk, FL_KEY_PUBLIC_BYTES);
}

static void teardown(void)
{
	fl_key_fini(&k1);
	fl_key_fini(&k2);
}

static enum fl_err check(const char *token, size_t n_keys, int64_t now, size_t *which, char *eb)
{
	return fl_http_token_check(token, (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])keys, n_keys, now,
	                           which, eb);
}

START_TEST(test_valid)
{
	char t[FL_HTTP_TOKEN_MAX], eb[FL_ERRBUF_SIZE] = "";
	size_t which = 99;

	fl_http_token_make(&k1, NOW + HOUR, t);
	ck_assert_ptr_nonnull(strchr(t, '.'));
	ck_assert_int_eq(check(t, 2, NOW, &which, eb), FL_OK);
	ck_assert_uint_eq(which, 1);
	ck_assert_int_eq(check(t, 2, NOW + HOUR - 1, &which, eb), FL_OK);
}
END_TEST

START_TEST(test_expired_and_too_long)
{
	char t[FL_HTTP_TOKEN_MAX], eb[FL_ERRBUF_SIZE] = "";
	size_t which;

	fl_http_token_make(&k1, NOW + HOUR, t);
	ck_assert_int_eq(check(t, 2, NOW + HOUR, &which, eb), FL_EAUTH);
	ck_assert_str_eq(eb, "token: expired");
	fl_http_token_make(&k1, NOW + FL_HTTP_TOKEN_TTL_MAX_MS + 1, t);
	ck_assert_int_eq(check(t, 2, NOW, &which, eb), FL_EAUTH);
	ck_assert_str_eq(eb, "token: lives longer than 90 days");
}
END_TEST

START_TEST(test_unknown_signer)
{
	char t[FL_HTTP_TOKEN_MAX], eb[FL_ERRBUF_SIZE] = "";
	size_t which;

	fl_http_token_make(&k1, NOW + HOUR, t);
	ck_assert_int_eq(check(t, 1, NOW, &which, eb), FL_EAUTH); /* only k2 listed */
	ck_assert_ptr_nonnull(strstr(eb, "not an operator of this coordinator"));
	ck_assert_int_eq(check(t, 0, NOW, &which, eb), FL_EAUTH);
}
END_TEST

START_TEST(test_tampered)
{
	char t[FL_HTTP_TOKEN_MAX], other[FL_HTTP_TOKEN_MAX], mix[2 * FL_HTTP_TOKEN_MAX],
	    eb[FL_ERRBUF_SIZE] = "";
	size_t which, n;

	fl_http_token_make(&k1, NOW + HOUR, t);
	fl_http_token_make(&k1, NOW + 2 * HOUR, other);
	/* the later expiry's payload with the earlier one's signature */
	n = (size_t)(strchr(other, '.') - other);
	memcpy(mix, other, n);
	strcpy(mix + n, strchr(t, '.'));
	ck_assert_int_eq(check(mix, 2, NOW, &which, eb), FL_EAUTH);
	ck_assert_ptr_nonnull(strstr(eb, "does not verify"));
	/* a flipped signature character */
	n = strlen(t) - 3;
	t[n] = t[n] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(check(t, 2, NOW, &which, eb), FL_EAUTH);
}
END_TEST

START_TEST(test_garbage)
{
	static const char *const bad[] = {
	    "",     ".",       "a.b",     "nodot",      "MTIzfGFiYw.AAAA",
	    "....", "%%%.%%%", "fA.fA==", "MHxhYmNk.x", "=.=",
	};
	char eb[FL_ERRBUF_SIZE] = "", big[4096];
	size_t which;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(check(bad[i], 2, NOW, &which, eb), FL_EAUTH);
		ck_assert_str_eq(eb, "token: not a flotilla http token");
	}
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[100] = '.';
	ck_assert_int_eq(check(big, 2, NOW, &which, eb), FL_EAUTH);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http_token");
	TCase *tc = tcase_create("token");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_valid);
	tcase_add_test(tc, test_expired_and_too_long);
	tcase_add_test(tc, test_unknown_signer);
	tcase_add_test(tc, test_tampered);
	tcase_add_test(tc, test_garbage);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
