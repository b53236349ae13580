/*
 * coordinator/webhooks.c without a network: the endpoints' secrets are read
 * as the docs say (mode 0600 or stricter, one trailing newline not part of
 * the key, 1 byte to 4 KiB) and refused otherwise, naming the file.
 * Delivery itself (signature, order, retries, the audit log, restarts) is
 * tests/integration/fleet/test_fleet_webhooks.sh.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "coordinator_config.h"
#include "mem.h"
#include "testutil.h"
#include "webhooks.h"

static char dir[512], err[FL_ERRBUF_SIZE];

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

/* A config with one webhook to url whose secret is text (mode). */
static enum fl_err try_secret(const char *url, const char *text, mode_t mode)
{
	struct fl_coordinator_config cfg = {0};
	struct fl_coordinator_webhook w = {0};
	struct fl_webhooks *wh = NULL;
	char path[600];
	enum fl_err e;

	fl_test_fmt(path, sizeof(path), "%s/secret", dir);
	unlink(path);
	if (text != NULL)
		write_file(path, text, mode);
	w.url = (char *)url;
	w.secret_file = path;
	w.attempts = 3;
	w.timeout_ms = 1000;
	cfg.webhooks.items = &w;
	cfg.webhooks.n = 1;
	err[0] = '\0';
	e = fl_webhooks_new(&cfg, &wh, err);
	ck_assert(e == FL_OK ? wh != NULL : wh == NULL);
	fl_webhooks_free(wh);
	return e;
}

static void setup(void)
{
	fl_test_tmp_root(dir, sizeof(dir), "check_webhooks");
}

static void teardown(void)
{
	fl_test_rm_rf(dir);
}

START_TEST(secrets)
{
	ck_assert_msg(try_secret("http://127.0.0.1:9/h", "s3cret\n", 0600) == FL_OK, "%s", err);
	ck_assert_msg(try_secret("http://h", "s3cret", 0400) == FL_OK, "%s", err);
	ck_assert_msg(try_secret("http://[::1]:8080/a/b?c=d", "x", 0600) == FL_OK, "%s", err);

	ck_assert_int_eq(try_secret("http://h/", "s3cret\n", 0640), FL_EINVAL);
	ck_assert_msg(strstr(err, "readable by others (mode 0640)") && strstr(err, "webhooks[0]"),
	              "%s", err);
	ck_assert_int_eq(try_secret("http://h/", "\n", 0600), FL_EINVAL);
	ck_assert_msg(strstr(err, "1 byte to 4 KiB"), "%s", err);
	ck_assert_int_ne(try_secret("http://h/", NULL, 0600), FL_OK);
	ck_assert_msg(strstr(err, "/secret"), "%s", err);
}
END_TEST

START_TEST(too_long)
{
	char *big = fl_malloc(4098);

	memset(big, 'k', 4097);
	big[4097] = '\0';
	ck_assert_int_eq(try_secret("http://h/", big, 0600), FL_EINVAL);
	big[4096] = '\0';
	ck_assert_msg(try_secret("http://h/", big, 0600) == FL_OK, "%s", err);
	free(big);
}
END_TEST

START_TEST(bad_addresses)
{
	ck_assert_int_eq(try_secret("http://h:port/", "k", 0600), FL_EINVAL);
	ck_assert_msg(strstr(err, "bad host or port"), "%s", err);
	ck_assert_int_eq(try_secret("http://[::1/", "k", 0600), FL_EINVAL);
	ck_assert_msg(strstr(err, "bad address"), "%s", err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("webhooks");
	TCase *tc = tcase_create("webhooks");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, secrets);
	tcase_add_test(tc, too_long);
	tcase_add_test(tc, bad_addresses);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
