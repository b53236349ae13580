/*
 * proto/client.c on an ipc:// endpoint that comes and goes: a request that
 * found no connection replaces the dialer (nng before 1.6.0 may have given up
 * on it, issue #1518). Replacing it while the old dialer's connection comes
 * up must not deadlock: nng runs the pipe callback, which takes the client's
 * lock, on the connect path that closing the dialer waits for. Real nng
 * REQ sockets; the coordinator's side a unix socket that never answers.
 */
#include <check.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "nng_quirks.h"
#include "testutil.h"

static char dir[200], path[256], url[300];
static atomic_bool done;

static void setup(void)
{
	fl_test_tmp_root(dir, sizeof(dir), "check_client");
	fl_test_fmt(path, sizeof(path), "%s/coord.ipc", dir);
	fl_test_fmt(url, sizeof(url), "ipc://%s", path);
	atomic_init(&done, false);
}

static void teardown(void)
{
	fl_test_rm_rf(dir);
}

static void nap_us(long us)
{
	struct timespec ts = {0, us * 1000L};

	nanosleep(&ts, NULL);
}

/* The coordinator restarting over and over: listen a moment, go away. A
 * bare unix socket speaking the SP handshake of a REP peer (nng's own REP
 * socket hangs in nng_close under this churn with nng 1.5.2). */
static void *flapping_listener(void *arg)
{
	static const uint8_t rep_header[8] = {0, 'S', 'P', 0, 0, 0x31, 0, 0};
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	(void)arg;
	ck_assert_uint_lt(strlen(path), sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	while (!atomic_load(&done)) {
		int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0), fds[64], n = 0;

		ck_assert_int_ge(ls, 0);
		unlink(path);
		ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
		ck_assert_int_eq(listen(ls, 16), 0);
		for (int tick = 0; tick < 30; tick++) { /* about 3 ms up */
			int fd;

			while (n < 64 && (fd = accept(ls, NULL, NULL)) >= 0) {
				if (send(fd, rep_header, sizeof(rep_header), MSG_NOSIGNAL) < 0) {
				} /* a peer already gone: nothing to do */
				fds[n++] = fd;
			}
			nap_us(100);
		}
		close(ls);
		while (n > 0)
			close(fds[--n]);
		nap_us(500);
	}
	return NULL;
}

/* A client of url pinning a made-up key: no reply ever opens, and none
 * comes (nothing here answers). */
static struct fl_client *new_client(void)
{
	uint8_t key[1][FL_PEER_KEY_LEN] = {{1}};
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_client *c = NULL;

	ck_assert_msg(
	    fl_client_new(NULL, url, (const uint8_t(*)[FL_PEER_KEY_LEN])key, 1, &c, err) == FL_OK,
	    "%s", err);
	return c;
}

START_TEST(replacing_the_dialer_while_it_connects_does_not_hang)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_client *c = new_client();
	struct fl_buf reply;
	pthread_t t;
	int unreachable = 0;

	ck_assert(fl_nng_handshake_close_is_fatal(url)); /* else nothing is replaced */
	fl_buf_init(&reply, 1024);
	ck_assert_int_eq(pthread_create(&t, NULL, flapping_listener, NULL), 0);
	/* Deadlines of a millisecond or two: most requests find no connection
	 * and replace the dialer, many just as a connection comes up. Before
	 * the fix this hung within a few hundred rounds (the tcase timeout). */
	for (int i = 0; i < 3000; i++) {
		enum fl_err rv = fl_client_send_raw(c, "x", 1, 1 + i % 2, &reply, err);

		/* a listener that goes away may also reset the connection */
		ck_assert_msg(rv == FL_ECONNECT || rv == FL_ETIMEDOUT || rv == FL_EIO,
		              "round %d: %s", i, err);
		unreachable += rv == FL_ECONNECT;
	}
	atomic_store(&done, true);
	pthread_join(t, NULL);
	ck_assert_int_gt(unreachable, 0); /* the dialer was replaced at all */
	fl_buf_fini(&reply);
	fl_client_free(c);
}
END_TEST

/* The coordinator's side as nng REP sockets, listening a moment and closed,
 * while the client churns dialers: with nng 1.5.2, nng_close of such a
 * socket waits forever now and then (issue #1518's endpoints are never
 * reaped; this loop hung within seconds with plain nng_close).
 * fl_nng_close_within returns either way, in time. */
static atomic_int stuck_closes;

static void *flapping_rep(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		nng_socket s;
		int64_t t0;

		ck_assert_int_eq(nng_rep0_open(&s), 0);
		if (nng_listen(s, url, NULL, 0) == 0)
			nap_us(3000);
		t0 = fl_now_ms();
		if (!fl_nng_close_within(s, 1000))
			atomic_fetch_add(&stuck_closes, 1);
		ck_assert_int_lt(fl_now_ms() - t0, 30000);
		nap_us(500);
	}
	return NULL;
}

START_TEST(closing_a_churned_socket_is_bounded)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_client *c = new_client();
	struct fl_buf reply;
	pthread_t t;

	fl_buf_init(&reply, 1024);
	atomic_init(&stuck_closes, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, flapping_rep, NULL), 0);
	for (int i = 0; i < 3000 && atomic_load(&stuck_closes) < 2; i++) {
		enum fl_err rv = fl_client_send_raw(c, "x", 1, 1 + i % 2, &reply, err);

		ck_assert_int_ne(rv, FL_OK); /* no REP socket here ever answers */
	}
	atomic_store(&done, true);
	pthread_join(t, NULL); /* in time: each close is bounded */
	fprintf(stderr, "check_client: %d closes stuck in nng, given up on after 1 s\n",
	        atomic_load(&stuck_closes));
	fl_buf_fini(&reply);
	fl_client_free(c);
}
END_TEST

/* Requests under way on several threads while another closes the client
 * (an agent's SIGTERM ends its long poll so): every request ends canceled,
 * and nothing panics. With nng 1.5.2 a context call racing nng_close can
 * free the context under the caller ("pthread_mutex_unlock: Invalid
 * argument", an agent in CI); the client keeps the two apart. */
struct requester {
	struct fl_client *c;
	enum fl_err last;
	int sent;
};

static void *request_until_closed(void *arg)
{
	struct requester *r = arg;
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_buf reply;

	fl_buf_init(&reply, 1024);
	do {
		r->last = fl_client_send_raw(r->c, "x", 1, 2 + r->sent % 3, &reply, err);
		r->sent++;
	} while (r->last != FL_ECANCELED);
	fl_buf_fini(&reply);
	return NULL;
}

START_TEST(closing_while_requests_are_under_way_is_safe)
{
	nng_socket rep;

	/* a coordinator that takes requests and never answers */
	ck_assert_int_eq(nng_rep0_open(&rep), 0);
	ck_assert_int_eq(nng_listen(rep, url, NULL, 0), 0);
	for (int round = 0; round < 300; round++) {
		struct requester r[4];
		pthread_t t[4];
		struct fl_client *c = new_client();

		for (int i = 0; i < 4; i++) {
			r[i] = (struct requester){.c = c};
			ck_assert_int_eq(pthread_create(&t[i], NULL, request_until_closed, &r[i]),
			                 0);
		}
		nap_us(100L * (round % 30)); /* close at every stage of a request */
		fl_client_close(c);
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			ck_assert_int_eq(r[i].last, FL_ECANCELED);
		}
		fl_client_free(c);
	}
	ck_assert(fl_nng_close_within(rep, 5000));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("redial");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, replacing_the_dialer_while_it_connects_does_not_hang);
	tcase_add_test(tc, closing_a_churned_socket_is_bounded);
	tcase_add_test(tc, closing_while_requests_are_under_way_is_safe);
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
