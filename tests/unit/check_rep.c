/*
 * coordinator/rep.c: the REP endpoint keeps answering after peers that
 * connect to its ipc:// socket and leave in the middle of the SP handshake
 * (with nng before 1.6.0 each such peer made the listener stop accepting for
 * good, nng issue #1518: rep.c's watchdog listens anew). Real nng sockets,
 * a real unix-domain peer.
 */
#include <check.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rep.h"
#include "testutil.h"

static char dir[200], path[256], url[300], err[FL_ERRBUF_SIZE];

static void echo(void *arg, struct fl_rep_req *req, const uint8_t *data, size_t len)
{
	(void)arg;
	fl_rep_reply(req, data, len);
}

static void setup(void)
{
	fl_test_tmp_root(dir, sizeof(dir), "check_rep");
	fl_test_fmt(path, sizeof(path), "%s/rep.ipc", dir);
	fl_test_fmt(url, sizeof(url), "ipc://%s", path);
}

static void teardown(void)
{
	fl_test_rm_rf(dir);
}

/* Connect to the socket and close at once: no SP header sent or read. */
static void connect_and_leave(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(strlen(path), sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
}

/* One request through a new REQ socket: whether the echo came back within
 * timeout_ms. */
static bool answered(int timeout_ms)
{
	nng_socket s;
	char *buf = NULL;
	size_t n = 0;
	bool ok;

	ck_assert_int_eq(nng_req0_open(&s), 0);
	ck_assert_int_eq(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms), 0);
	ck_assert_int_eq(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms), 0);
	ck_assert_int_eq(nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK), 0);
	ok = nng_send(s, "ping", 4, 0) == 0 && nng_recv(s, &buf, &n, NNG_FLAG_ALLOC) == 0 &&
	     n == 4 && memcmp(buf, "ping", 4) == 0;
	if (buf != NULL)
		nng_free(buf, n);
	nng_close(s);
	return ok;
}

START_TEST(answers_after_peers_leave_mid_handshake)
{
	struct fl_rep *r;

	ck_assert_msg(fl_rep_new("test", url, 1024, 64, echo, NULL, &r, err) == FL_OK, "%s", err);
	ck_assert(answered(30000)); /* it works to begin with */
	/* Several rounds: the endpoint must come back each time, not once. */
	for (int round = 0; round < 3; round++) {
		bool ok = false;

		connect_and_leave();
		/* 60 tries of 1 s each: far past the watchdog's second, and
		 * never answered at all without it. */
		for (int i = 0; i < 60 && !ok; i++)
			ok = answered(1000);
		ck_assert_msg(ok, "no answer after a peer left mid-handshake (round %d)", round);
	}
	fl_rep_free(r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rep");
	TCase *tc = tcase_create("ipc");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, answers_after_peers_leave_mid_handshake);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
