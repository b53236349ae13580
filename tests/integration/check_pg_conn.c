/*
 * The PostgreSQL connection layer and the session around it, against a real
 * server (deploy/pg-throwaway.sh run): bounds on every wait, cancel from
 * another thread at any moment, the per-schema migration lock, the session
 * state between migrations, libpq's environment kept out, messages that
 * never show a password.
 *
 * The throwaway server listens on a unix socket only. To see TCP (keepalives)
 * and a server that stops answering, cases go through a small TCP proxy
 * here, whose relays can be frozen or cut and whose new connections can be
 * left hanging. Waiting is on server state or the proxy's counters, never on
 * fixed sleeps; time bounds are wide.
 */
#define _DEFAULT_SOURCE /* TCP_KEEPIDLE, TCP_USER_TIMEOUT */
#include <check.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "checksum.h"
#include "clock.h"
#include "driver.h"
#include "pg_conn.h"
#include "pg_url.h"
#include "session.h"
#include "testutil.h"

/* ---- helpers: databases, URLs, raw SQL ---- */

static const char *env_or_fail(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v != NULL, "%s is not set: run under deploy/pg-throwaway.sh", name);
	return v;
}

static PGconn *raw_connect(const char *db)
{
	char info[512];
	PGconn *pg;

	fl_test_fmt(info, sizeof(info), "host='%s' port=%s user=postgres dbname='%s'",
	            env_or_fail("FL_PG_HOST"), env_or_fail("FL_PG_PORT"), db);
	pg = PQconnectdb(info);
	ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "raw connect: %s", PQerrorMessage(pg));
	return pg;
}

static void raw_exec(PGconn *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void raw_exec(PGconn *pg, const char *fmt, ...)
{
	char sql[2048];
	PGresult *r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	r = PQexec(pg, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
	              "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

/* First value of the first row, "" for none or NULL; into out. */
static const char *raw_value(PGconn *pg, char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static const char *raw_value(PGconn *pg, char *out, size_t n, const char *fmt, ...)
{
	char sql[2048];
	PGresult *r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	r = PQexec(pg, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
	snprintf(out, n, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return out;
}

static long raw_count(PGconn *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static long raw_count(PGconn *pg, const char *fmt, ...)
{
	char sql[2048], v[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return strtol(raw_value(pg, v, sizeof(v), "%s", sql), NULL, 10);
}

/* Poll until the count query gives want; fail after 30 s. */
static void wait_count(PGconn *pg, long want, const char *sql)
{
	for (int i = 0; i < 3000; i++) {
		if (raw_count(pg, "%s", sql) == want)
			return;
		fl_sleep_ms(10);
	}
	ck_abort_msg("timed out waiting for %ld from: %s", want, sql);
}

struct tdb {
	char name[32];
	char url[512]; /* flotilla's URL, over the unix socket */
	PGconn *pg;    /* a raw connection to it, for checks */
};

static void tdb_open(struct tdb *t)
{
	unsigned char r[6];
	PGconn *admin = raw_connect("postgres");

	randombytes_buf(r, sizeof(r));
	fl_test_fmt(t->name, sizeof(t->name), "flc_%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
	            r[3], r[4], r[5]);
	raw_exec(admin, "CREATE DATABASE %s", t->name);
	PQfinish(admin);
	fl_test_fmt(t->url, sizeof(t->url), "postgresql://postgres@/%s?host=%s&port=%s", t->name,
	            env_or_fail("FL_PG_HOST"), env_or_fail("FL_PG_PORT"));
	t->pg = raw_connect(t->name);
}

static void tdb_close(struct tdb *t)
{
	PGconn *admin;

	PQfinish(t->pg);
	admin = raw_connect("postgres");
	raw_exec(admin, "DROP DATABASE %s WITH (FORCE)", t->name);
	PQfinish(admin);
}

static struct fl_conn *conn_to(const char *url, const struct fl_conn_opts *o)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_conn *c = NULL;

	ck_assert_msg(fl_pg_conn_open(url, o, &c, errbuf) == FL_OK, "connect: %s", errbuf);
	return c;
}

/* A value of our own session, through the driver. */
static void conn_value(struct fl_conn *c, const char *sql, char *out, size_t n)
{
	struct fl_pg_error e;
	PGresult *r = NULL;

	ck_assert_msg(fl_pg_conn_run(c, sql, &r, &e) == FL_OK, "%s: %s", sql, e.message);
	snprintf(out, n, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
}

/* ---- a TCP proxy in front of the unix socket ---- */

struct pair {
	int cfd, ufd;
	bool frozen;
};

struct proxy {
	int lfd, port;
	pthread_t th;
	char upstream[sizeof(((struct sockaddr_un *)0)->sun_path)];
	atomic_bool stop, hang_new, freeze, cut;
	atomic_int accepted;
	struct pair pairs[32]; /* the proxy thread's */
	int n;
	int hung[32];
	int nhung;
};

static void relay(int from, int to, bool *dead)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n <= 0) {
		*dead = true;
		return;
	}
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));

		if (w <= 0) {
			*dead = true;
			return;
		}
		off += w;
	}
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;

	while (!atomic_load(&p->stop)) {
		struct pollfd fds[1 + 2 * 32];
		int which[1 + 2 * 32], nf = 0;
		bool dead[32] = {false};

		if (atomic_exchange(&p->freeze, false))
			for (int i = 0; i < p->n; i++)
				p->pairs[i].frozen = true;
		if (atomic_exchange(&p->cut, false)) {
			for (int i = 0; i < p->n; i++) {
				close(p->pairs[i].cfd);
				close(p->pairs[i].ufd);
			}
			p->n = 0;
		}
		fds[nf].fd = p->lfd;
		fds[nf].events = POLLIN;
		which[nf++] = -1;
		for (int i = 0; i < p->n; i++) {
			if (p->pairs[i].frozen)
				continue;
			fds[nf].fd = p->pairs[i].cfd;
			fds[nf].events = POLLIN;
			which[nf++] = 2 * i;
			fds[nf].fd = p->pairs[i].ufd;
			fds[nf].events = POLLIN;
			which[nf++] = 2 * i + 1;
		}
		if (poll(fds, (nfds_t)nf, 20) <= 0)
			continue;
		for (int k = 1; k < nf; k++) {
			struct pair *pr = &p->pairs[which[k] / 2];

			if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR)) || dead[which[k] / 2])
				continue;
			if (which[k] % 2 == 0)
				relay(pr->cfd, pr->ufd, &dead[which[k] / 2]);
			else
				relay(pr->ufd, pr->cfd, &dead[which[k] / 2]);
		}
		for (int i = p->n; i-- > 0;) {
			if (!dead[i])
				continue;
			close(p->pairs[i].cfd);
			close(p->pairs[i].ufd);
			p->pairs[i] = p->pairs[--p->n];
		}
		if (fds[0].revents & POLLIN) {
			int cfd = accept(p->lfd, NULL, NULL), ufd;
			struct sockaddr_un sa;

			if (cfd < 0)
				continue;
			if (atomic_load(&p->hang_new) || p->n == 32) {
				if (p->nhung < 32)
					p->hung[p->nhung++] = cfd;
				else
					close(cfd);
				atomic_fetch_add(&p->accepted, 1);
				continue;
			}
			memset(&sa, 0, sizeof(sa));
			sa.sun_family = AF_UNIX;
			memcpy(sa.sun_path, p->upstream, sizeof(sa.sun_path) - 1);
			ufd = socket(AF_UNIX, SOCK_STREAM, 0);
			if (ufd < 0 || connect(ufd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
				if (ufd >= 0)
					close(ufd);
				close(cfd);
				continue;
			}
			p->pairs[p->n++] = (struct pair){cfd, ufd, false};
			atomic_fetch_add(&p->accepted, 1);
		}
	}
	for (int i = 0; i < p->n; i++) {
		close(p->pairs[i].cfd);
		close(p->pairs[i].ufd);
	}
	for (int i = 0; i < p->nhung; i++)
		close(p->hung[i]);
	return NULL;
}

static void proxy_start(struct proxy *p)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	memset(p, 0, sizeof(*p));
	fl_test_fmt(p->upstream, sizeof(p->upstream), "%s/.s.PGSQL.%s", env_or_fail("FL_PG_HOST"),
	            env_or_fail("FL_PG_PORT"));
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(p->lfd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(p->lfd, 16), 0);
	ck_assert_int_eq(getsockname(p->lfd, (struct sockaddr *)&sa, &len), 0);
	p->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pthread_create(&p->th, NULL, proxy_main, p), 0);
}

static void proxy_stop(struct proxy *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->th, NULL);
	close(p->lfd);
}

/* Wait for the proxy thread to act on a flag it clears. */
static void proxy_settle(atomic_bool *flag)
{
	for (int i = 0; i < 3000 && atomic_load(flag); i++)
		fl_sleep_ms(2);
	ck_assert(!atomic_load(flag));
}

static void proxy_url(const struct proxy *p, const char *db, char *out, size_t n)
{
	fl_test_fmt(out, n, "postgresql://postgres@127.0.0.1:%d/%s?sslmode=disable", p->port, db);
}

static void wait_accepted(struct proxy *p, int want)
{
	for (int i = 0; i < 3000 && atomic_load(&p->accepted) < want; i++)
		fl_sleep_ms(10);
	ck_assert_int_ge(atomic_load(&p->accepted), want);
}

static struct fl_conn_opts quick_opts(int64_t connect_ms)
{
	struct fl_conn_opts o;

	fl_conn_opts_init(&o);
	o.connect_timeout_ms = connect_ms;
	return o;
}

/* ---- bounds: keepalives, connect and reset deadlines ---- */

START_TEST(tcp_connections_carry_keepalives_and_user_timeout)
{
	struct tdb t;
	struct proxy px;
	struct fl_conn_opts o = quick_opts(10000);
	struct fl_conn *c;
	char url[256];
	int v = 0;
	socklen_t len = sizeof(v);

	tdb_open(&t);
	proxy_start(&px);
	proxy_url(&px, t.name, url, sizeof(url));
	o.tcp_timeout_ms = 12000;
	c = conn_to(url, &o);
	/* On the socket itself, not only in libpq's options. */
	ck_assert_int_eq(getsockopt(PQsocket(c->pg), SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(getsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
	ck_assert_int_eq(v, 6);
	ck_assert_int_eq(getsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_KEEPINTVL, &v, &len), 0);
	ck_assert_int_eq(v, 2);
	ck_assert_int_eq(getsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_KEEPCNT, &v, &len), 0);
	ck_assert_int_eq(v, 3);
	ck_assert_int_eq(getsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_USER_TIMEOUT, &v, &len), 0);
	ck_assert_int_eq(v, 12000);
	fl_pg_conn_close(c);

	/* The URL's own values win. */
	fl_test_fmt(url, sizeof(url),
	            "postgresql://postgres@127.0.0.1:%d/%s?sslmode=disable&keepalives_idle=17&"
	            "tcp_user_timeout=4321",
	            px.port, t.name);
	c = conn_to(url, NULL);
	ck_assert_int_eq(getsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
	ck_assert_int_eq(v, 17);
	ck_assert_int_eq(getsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_USER_TIMEOUT, &v, &len), 0);
	ck_assert_int_eq(v, 4321);
	fl_pg_conn_close(c);
	proxy_stop(&px);
	tdb_close(&t);
}
END_TEST

START_TEST(connect_has_a_deadline)
{
	struct proxy px;
	struct fl_conn_opts o = quick_opts(300);
	struct fl_conn *c = NULL;
	char url[256], errbuf[FL_ERRBUF_SIZE];
	int64_t t0;

	proxy_start(&px);
	atomic_store(&px.hang_new, true); /* accepts, never answers */
	proxy_url(&px, "postgres", url, sizeof(url));
	t0 = fl_now_ms();
	ck_assert_int_eq(fl_pg_conn_open(url, &o, &c, errbuf), FL_ECONNECT);
	ck_assert_int_ge(fl_now_ms() - t0, 250);
	ck_assert_int_lt(fl_now_ms() - t0, 10000);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(errbuf, "timed out after 300ms") != NULL, "%s", errbuf);
	ck_assert_int_ge(atomic_load(&px.accepted), 1);

	/* A connect_timeout in the URL (seconds, as Prisma reads it) wins. */
	fl_test_fmt(url, sizeof(url), "postgresql://u@127.0.0.1:%d/x?connect_timeout=1", px.port);
	o.connect_timeout_ms = 60000;
	t0 = fl_now_ms();
	ck_assert_int_eq(fl_pg_conn_open(url, &o, &c, errbuf), FL_ECONNECT);
	ck_assert_int_lt(fl_now_ms() - t0, 20000);
	ck_assert_msg(strstr(errbuf, "timed out after 1s") != NULL, "%s", errbuf);
	proxy_stop(&px);
}
END_TEST

struct later_cancel {
	struct proxy *px;
	struct fl_conn *c;
	struct fl_session *s;
	int after_accepted;
	struct tdb *t;
};

static void *cancel_when_accepted(void *arg)
{
	struct later_cancel *k = arg;

	wait_accepted(k->px, k->after_accepted);
	if (k->s != NULL)
		fl_session_cancel(k->s);
	else
		fl_pg_conn_cancel(k->c);
	return NULL;
}

START_TEST(cancel_stops_a_connect_in_progress)
{
	struct proxy px;
	struct fl_conn_opts o = quick_opts(60000);
	struct later_cancel k;
	struct fl_conn *c;
	char url[256], errbuf[FL_ERRBUF_SIZE];
	pthread_t th;
	int64_t t0;

	proxy_start(&px);
	atomic_store(&px.hang_new, true);
	proxy_url(&px, "postgres", url, sizeof(url));
	c = fl_pg_conn_new(&o);
	k = (struct later_cancel){&px, c, NULL, 1, NULL};
	pthread_create(&th, NULL, cancel_when_accepted, &k);
	t0 = fl_now_ms();
	ck_assert_int_eq(fl_pg_conn_connect(c, url, errbuf), FL_ECANCELED);
	ck_assert_int_lt(fl_now_ms() - t0, 10000);
	pthread_join(th, NULL);
	fl_pg_conn_close(c);

	/* Canceled before: connect starts nothing. */
	c = fl_pg_conn_new(&o);
	fl_pg_conn_cancel(c);
	ck_assert_int_eq(fl_pg_conn_connect(c, url, errbuf), FL_ECANCELED);
	ck_assert_int_eq(atomic_load(&px.accepted), 1);
	fl_pg_conn_close(c);
	proxy_stop(&px);
}
END_TEST

START_TEST(reset_has_a_deadline)
{
	struct tdb t;
	struct proxy px;
	struct fl_conn_opts o = quick_opts(300);
	struct fl_pg_error e;
	struct fl_conn *c;
	char url[256], errbuf[FL_ERRBUF_SIZE];
	int64_t t0;

	tdb_open(&t);
	proxy_start(&px);
	proxy_url(&px, t.name, url, sizeof(url));
	c = conn_to(url, &o);
	atomic_store(&px.hang_new, true);
	atomic_store(&px.cut, true);
	proxy_settle(&px.cut);
	ck_assert_int_eq(fl_pg_conn_run(c, "SELECT 1", NULL, &e), FL_ECONNLOST);
	t0 = fl_now_ms();
	ck_assert_int_eq(fl_pg_conn_reset(c, errbuf), FL_ECONNLOST);
	ck_assert_int_lt(fl_now_ms() - t0, 10000);
	ck_assert_msg(strstr(errbuf, "cannot reconnect to") != NULL &&
	                  strstr(errbuf, "timed out after 300ms") != NULL,
	              "%s", errbuf);
	fl_pg_conn_close(c);
	proxy_stop(&px);
	tdb_close(&t);
}
END_TEST

/* ---- cancel ---- */

struct runner {
	struct fl_conn *c;
	const char *sql;
	enum fl_err rv;
	struct fl_pg_error e;
};

static void *run_sql(void *arg)
{
	struct runner *r = arg;

	r->rv = fl_pg_conn_run(r->c, r->sql, NULL, &r->e);
	return NULL;
}

/* The server cancels, but its answer never comes back (a frozen relay):
 * the statement is abandoned after the grace period, not waited for. */
START_TEST(cancel_abandons_a_server_that_does_not_answer)
{
	struct tdb t;
	struct proxy px;
	struct runner r;
	struct fl_conn *c;
	char url[256];
	pthread_t th;
	int64_t t0;

	tdb_open(&t);
	proxy_start(&px);
	proxy_url(&px, t.name, url, sizeof(url));
	c = conn_to(url, NULL);
	r = (struct runner){c, "SELECT pg_sleep(60) AS flc_sleeper", FL_OK, {0}};
	pthread_create(&th, NULL, run_sql, &r);
	wait_count(t.pg, 1,
	           "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE "
	           "'%flc_sleeper%' AND pid <> pg_backend_pid()");
	atomic_store(&px.freeze, true);
	proxy_settle(&px.freeze);
	t0 = fl_now_ms();
	fl_pg_conn_cancel(c); /* the request goes through the proxy on a new connection */
	pthread_join(th, NULL);
	ck_assert_int_eq(r.rv, FL_ECANCELED);
	ck_assert_int_ge(fl_now_ms() - t0, FL_PG_CANCEL_GRACE_MS - 100);
	ck_assert_int_lt(fl_now_ms() - t0, FL_PG_CANCEL_GRACE_MS + 10000);
	ck_assert_msg(strstr(r.e.message, "did not answer") != NULL, "%s", r.e.message);
	ck_assert_int_eq(PQstatus(c->pg), CONNECTION_BAD);
	/* The server did cancel it. */
	wait_count(t.pg, 0,
	           "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE "
	           "'%flc_sleeper%' AND pid <> pg_backend_pid()");
	fl_pg_conn_close(c);
	proxy_stop(&px);
	tdb_close(&t);
}
END_TEST

struct timed_runner {
	struct runner r;
	atomic_bool done;
};

static void *run_sql_timed(void *arg)
{
	struct timed_runner *tr = arg;

	run_sql(&tr->r);
	atomic_store(&tr->done, true);
	return NULL;
}

struct canceller {
	struct fl_conn *c;
	atomic_bool returned;
};

static void *cancel_conn(void *arg)
{
	struct canceller *k = arg;

	fl_pg_conn_cancel(k->c);
	atomic_store(&k->returned, true);
	return NULL;
}

/* Wait up to ms for flag; whether it came. */
static bool wait_flag(atomic_bool *flag, int ms)
{
	for (int i = 0; i < ms / 10 && !atomic_load(flag); i++)
		fl_sleep_ms(10);
	return atomic_load(flag);
}

/* A middlebox that accepts the cancel request's own connection and never
 * answers or closes it (PQcancel then waits for ever for the server to close
 * it): neither the thread that cancels nor the one that runs the statement
 * is held up. The statement is abandoned after the grace period. */
START_TEST(a_cancel_request_that_hangs_holds_nobody_up)
{
	struct tdb t;
	struct proxy px;
	struct timed_runner tr;
	struct canceller k;
	struct fl_conn *c;
	char url[256];
	pthread_t th, kt;
	bool returned, done;
	int64_t t0;

	tdb_open(&t);
	proxy_start(&px);
	proxy_url(&px, t.name, url, sizeof(url));
	c = conn_to(url, NULL);
	tr.r = (struct runner){c, "SELECT pg_sleep(60) AS flc_hung_cancel", FL_OK, {0}};
	atomic_init(&tr.done, false);
	pthread_create(&th, NULL, run_sql_timed, &tr);
	wait_count(t.pg, 1,
	           "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE "
	           "'%flc_hung_cancel%' AND pid <> pg_backend_pid()");
	atomic_store(&px.hang_new, true);
	k.c = c;
	atomic_init(&k.returned, false);
	t0 = fl_now_ms();
	pthread_create(&kt, NULL, cancel_conn, &k);
	returned = wait_flag(&k.returned, 10000);
	done = wait_flag(&tr.done, FL_PG_CANCEL_GRACE_MS + 15000);
	/* Stopping the proxy closes the hung connections: whatever waited on
	 * them ends, so the threads can be joined either way. */
	proxy_stop(&px);
	pthread_join(kt, NULL);
	pthread_join(th, NULL);
	ck_assert_msg(returned, "fl_pg_conn_cancel blocked on the hung cancel request");
	ck_assert_msg(done, "the statement was not abandoned: blocked behind the cancel");
	ck_assert_int_eq(tr.r.rv, FL_ECANCELED);
	ck_assert_int_ge(fl_now_ms() - t0, FL_PG_CANCEL_GRACE_MS - 100);
	fl_pg_conn_close(c);
	tdb_close(&t);
}
END_TEST

static void *cancel_session_when_waiting(void *arg)
{
	struct later_cancel *k = arg;

	wait_count(k->t->pg, 1,
	           "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 72707369 "
	           "AND NOT granted");
	fl_session_cancel(k->s);
	return NULL;
}

START_TEST(session_cancel_ends_a_lock_wait)
{
	static const struct fl_migration_set none = {0};
	struct fl_engine_opts o;
	struct tdb t;
	struct later_cancel k;
	struct fl_session *s;
	PGconn *prisma;
	char errbuf[FL_ERRBUF_SIZE];
	pthread_t th;
	int64_t t0;

	tdb_open(&t);
	prisma = raw_connect(t.name);
	raw_exec(prisma, "SELECT pg_advisory_lock(72707369)"); /* as prisma migrate deploy */
	fl_engine_opts_init(&o);
	o.lock_wait_ms = 60000;
	s = fl_session_new(&o, NULL);
	k = (struct later_cancel){NULL, NULL, s, 0, &t};
	pthread_create(&th, NULL, cancel_session_when_waiting, &k);
	t0 = fl_now_ms();
	ck_assert_int_eq(fl_session_open(s, t.url, &none, true, errbuf), FL_ECANCELED);
	ck_assert_int_lt(fl_now_ms() - t0, 20000);
	ck_assert_msg(strstr(errbuf, "canceled while waiting for the migration lock") != NULL, "%s",
	              errbuf);
	pthread_join(th, NULL);
	ck_assert(fl_session_canceled(s));
	fl_session_cancel(s); /* after close: harmless */
	fl_session_free(s);
	/* Nothing of ours is left waiting or holding. */
	wait_count(t.pg, 0,
	           "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
	           "'flotilla'");
	PQfinish(prisma);
	tdb_close(&t);
}
END_TEST

struct chaos {
	struct fl_session *s;
	int delay_us;
};

static void *cancel_after(void *arg)
{
	struct chaos *ch = arg;

	if (ch->delay_us > 0)
		usleep((useconds_t)ch->delay_us);
	fl_session_cancel(ch->s);
	fl_session_cancel(ch->s);
	return NULL;
}

/* Cancel lands anywhere: before open, during connect, lock, history read,
 * close. Every outcome is OK or FL_ECANCELED, and nothing is left behind
 * (ASan and the server agree). */
START_TEST(session_cancel_at_any_moment)
{
	static const struct fl_migration_set none = {0};
	struct fl_engine_opts o;
	struct tdb t;
	int ok = 0, canceled = 0;

	tdb_open(&t);
	fl_engine_opts_init(&o);
	for (int i = 0; i < 60; i++) {
		struct fl_session *s = fl_session_new(&o, NULL);
		struct chaos ch = {s, (i * 397) % 6000};
		char errbuf[FL_ERRBUF_SIZE];
		pthread_t th;
		enum fl_err rv;

		pthread_create(&th, NULL, cancel_after, &ch);
		rv = fl_session_open(s, t.url, &none, i % 2 == 0, errbuf);
		ck_assert_msg(rv == FL_OK || rv == FL_ECANCELED, "%d: %s", rv, errbuf);
		ok += rv == FL_OK;
		canceled += rv == FL_ECANCELED;
		fl_session_close(s);
		pthread_join(th, NULL);
		ck_assert(fl_session_canceled(s));
		fl_session_free(s);
	}
	ck_assert_int_eq(ok + canceled, 60);
	wait_count(t.pg, 0,
	           "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
	           "'flotilla'");
	ck_assert_int_eq(raw_count(t.pg, "SELECT count(*) FROM pg_locks WHERE locktype = "
	                                 "'advisory'"),
	                 0);
	tdb_close(&t);
}
END_TEST

/* A history table whose rows lack what Prisma's DDL makes NOT NULL (a table
 * someone else created, or altered): the session refuses the history, as
 * Prisma refuses it, rather than crash on it (the agent serves every other
 * tenant from the same process). */
START_TEST(history_rows_with_nulls_are_refused)
{
	static const char *const cols[] = {"migration_name", "checksum", "started_at", "id"};
	struct fl_migration ms[2] = {{.id = "20250101000000_a", .sql = "SELECT 1", .sql_len = 8},
	                             {.id = "20250102000000_b", .sql = "SELECT 2", .sql_len = 8}};
	struct fl_migration_set set = {.dir = "m", .items = ms, .count = 2};
	struct fl_engine_opts o;
	struct tdb t;

	for (size_t i = 0; i < 2; i++)
		fl_checksum_compute(ms[i].sql, ms[i].sql_len, ms[i].checksum);
	tdb_open(&t);
	raw_exec(t.pg, "CREATE TABLE _prisma_migrations (id varchar(36), checksum varchar(64), "
	               "finished_at timestamptz, migration_name varchar(255), logs text, "
	               "rolled_back_at timestamptz, started_at timestamptz, "
	               "applied_steps_count int)");
	fl_engine_opts_init(&o);
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		char errbuf[FL_ERRBUF_SIZE] = "", want[64];
		struct fl_session *s;
		enum fl_err rv;

		raw_exec(t.pg, "DELETE FROM _prisma_migrations");
		raw_exec(t.pg, "INSERT INTO _prisma_migrations VALUES ('2a1e', 'abc', now(), "
		               "'20250101000000_a', NULL, NULL, now(), 1), ('7f0c', 'def', NULL, "
		               "'20250102000000_b', 'boom', NULL, now(), 0)");
		raw_exec(t.pg, "UPDATE _prisma_migrations SET %s = NULL WHERE id = '7f0c'",
		         cols[i]);
		for (int lock = 0; lock < 2; lock++) {
			s = fl_session_new(&o, NULL);
			rv = fl_session_open(s, t.url, &set, lock == 1, errbuf);
			fl_session_free(s);
			ck_assert_msg(rv == FL_EDB, "%s NULL: %d: %s", cols[i], rv, errbuf);
			fl_test_fmt(want, sizeof(want), "without a %s", cols[i]);
			ck_assert_msg(strstr(errbuf, want) != NULL, "%s", errbuf);
		}
	}
	tdb_close(&t);
}
END_TEST

/* ---- the migration lock: Prisma's key shared, ours per schema ---- */

static const char held_sql[] =
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
    "((classid = 0 AND objid = 72707369 AND objsubid = 1 AND mode = 'ShareLock') OR "
    "(classid = 1718382452 AND objsubid = 2 AND mode = 'ExclusiveLock'))";

START_TEST(schemas_of_one_database_lock_side_by_side)
{
	struct tdb t;
	struct fl_conn *a, *b, *a2;
	char ua[640], ub[640], errbuf[FL_ERRBUF_SIZE], v[64];
	PGconn *prisma;
	bool held;

	tdb_open(&t);
	/* t2's hashtext is negative: the oid arithmetic of lock_held is tested too. */
	fl_test_fmt(ua, sizeof(ua), "%s&schema=t1", t.url);
	fl_test_fmt(ub, sizeof(ub), "%s&schema=t2", t.url);
	a = conn_to(ua, NULL);
	b = conn_to(ub, NULL);
	a2 = conn_to(ua, NULL);
	ck_assert_int_eq(fl_pg_conn_lock_held(a2, &held, errbuf), FL_OK);
	ck_assert(!held);
	ck_assert_int_eq(fl_pg_conn_lock(a, 1000, errbuf), FL_OK);
	ck_assert_int_eq(fl_pg_conn_lock(b, 1000, errbuf), FL_OK);
	/* Both hold their locks at once: two shared, two schema keys. */
	ck_assert_int_eq(raw_count(t.pg, "%s", held_sql), 4);
	ck_assert_str_eq(raw_value(t.pg, v, sizeof(v),
	                           "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = "
	                           "'advisory' AND classid = 1718382452 AND granted"),
	                 "2");
	/* The same schema waits, and says which lock. */
	ck_assert_int_eq(fl_pg_conn_lock(a2, 200, errbuf), FL_ELOCKED);
	ck_assert_msg(strstr(errbuf, "migration lock of schema 't1'") != NULL, "%s", errbuf);
	ck_assert_int_eq(fl_pg_conn_lock(a2, 0, errbuf), FL_ELOCKED);
	ck_assert_int_eq(fl_pg_conn_lock_held(a2, &held, errbuf), FL_OK);
	ck_assert(held);
	/* A failed attempt leaves no shared key behind. */
	ck_assert_int_eq(raw_count(t.pg, "%s", held_sql), 4);

	/* Prisma (exclusive 72707369) is shut out while flotilla holds its locks... */
	prisma = raw_connect(t.name);
	ck_assert_str_eq(raw_value(prisma, v, sizeof(v), "SELECT pg_try_advisory_lock(72707369)"),
	                 "f");
	ck_assert_int_eq(fl_pg_conn_unlock(a, errbuf), FL_OK);
	ck_assert_int_eq(fl_pg_conn_unlock(b, errbuf), FL_OK);
	ck_assert_int_eq(raw_count(t.pg, "%s", held_sql), 0);
	/* ...and flotilla, on any schema, is shut out while Prisma holds it. */
	ck_assert_str_eq(raw_value(prisma, v, sizeof(v), "SELECT pg_try_advisory_lock(72707369)"),
	                 "t");
	ck_assert_int_eq(fl_pg_conn_lock(b, 200, errbuf), FL_ELOCKED);
	ck_assert_msg(strstr(errbuf, "(pg_advisory_lock 72707369)") != NULL, "%s", errbuf);
	ck_assert_int_eq(fl_pg_conn_lock_held(b, &held, errbuf), FL_OK);
	ck_assert(held); /* Prisma's exclusive key counts as a deploy running */
	PQfinish(prisma);
	ck_assert_int_eq(fl_pg_conn_lock(b, 1000, errbuf), FL_OK);
	fl_pg_conn_close(a);
	fl_pg_conn_close(a2);
	fl_pg_conn_close(b);
	tdb_close(&t);
}
END_TEST

START_TEST(reconnect_takes_both_keys_again)
{
	struct tdb t;
	struct fl_pg_error e;
	struct fl_conn *c;
	char errbuf[FL_ERRBUF_SIZE];
	int old_pid;

	tdb_open(&t);
	c = conn_to(t.url, NULL);
	ck_assert_int_eq(fl_pg_conn_lock(c, 1000, errbuf), FL_OK);
	old_pid = c->backend_pid;
	raw_exec(t.pg, "SELECT pg_terminate_backend(%d)", old_pid);
	ck_assert_int_eq(fl_pg_conn_run(c, "SELECT 1", NULL, &e), FL_ECONNLOST);
	ck_assert_int_eq(fl_pg_conn_reset(c, errbuf), FL_OK);
	ck_assert_int_ne(c->backend_pid, old_pid);
	ck_assert_int_eq(raw_count(t.pg,
	                           "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
	                           "granted AND pid = %d",
	                           c->backend_pid),
	                 2);
	fl_pg_conn_close(c);
	tdb_close(&t);
}
END_TEST

/* Resumes the lost session (stopped with SIGSTOP) once the reconnect is
 * seen waiting for it to end, or once the reconnect has returned. */
struct orphan {
	const char *db;
	int pid;
	atomic_bool done;
	atomic_bool seen_waiting;
};

static void *resume_orphan(void *arg)
{
	struct orphan *o = arg;
	char info[512];
	PGconn *pg;

	snprintf(info, sizeof(info), "host='%s' port=%s user=postgres dbname='%s'",
	         getenv("FL_PG_HOST"), getenv("FL_PG_PORT"), o->db);
	pg = PQconnectdb(info);
	for (int i = 0; i < 6000 && !atomic_load(&o->done); i++) {
		PGresult *r = PQexec(pg, "SELECT count(*) FROM pg_stat_activity WHERE "
		                         "application_name = 'flotilla' AND query LIKE "
		                         "'%our previous session to end%'");

		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		    strcmp(PQgetvalue(r, 0, 0), "0") != 0)
			atomic_store(&o->seen_waiting, true);
		PQclear(r);
		if (atomic_load(&o->seen_waiting))
			break;
		fl_sleep_ms(5);
	}
	kill(o->pid, SIGCONT);
	PQfinish(pg);
	return NULL;
}

/* A lost session can live on in the server, holding both keys: a reconnect
 * ends it and waits until it is gone before it takes the lock again, so the
 * lock it finds taken is never its own (here with --lock-wait 0: try once). */
START_TEST(reconnect_waits_for_its_old_session_to_let_go)
{
	struct tdb t;
	struct fl_pg_error e;
	struct fl_conn *c;
	struct orphan o;
	char errbuf[FL_ERRBUF_SIZE];
	pthread_t th;
	enum fl_err rv;

	tdb_open(&t);
	c = conn_to(t.url, NULL);
	ck_assert_int_eq(fl_pg_conn_lock(c, 0, errbuf), FL_OK);
	o.db = t.name;
	o.pid = c->backend_pid;
	atomic_init(&o.done, false);
	atomic_init(&o.seen_waiting, false);
	/* The old backend stays, frozen, holding its locks; we lose it. */
	ck_assert_int_eq(kill(o.pid, SIGSTOP), 0);
	shutdown(PQsocket(c->pg), SHUT_RDWR);
	ck_assert_int_eq(fl_pg_conn_run(c, "SELECT 1", NULL, &e), FL_ECONNLOST);
	ck_assert_int_eq(pthread_create(&th, NULL, resume_orphan, &o), 0);
	rv = fl_pg_conn_reset(c, errbuf);
	atomic_store(&o.done, true);
	pthread_join(th, NULL);
	ck_assert_msg(rv == FL_OK, "%s", errbuf);
	ck_assert(atomic_load(&o.seen_waiting));
	ck_assert_int_ne(c->backend_pid, o.pid);
	ck_assert_int_eq(raw_count(t.pg,
	                           "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
	                           "granted AND pid = %d",
	                           c->backend_pid),
	                 2);
	ck_assert_int_eq(
	    raw_count(t.pg, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", o.pid), 0);
	fl_pg_conn_close(c);
	tdb_close(&t);
}
END_TEST

/* The pid of a lost session may belong to another backend by the time we
 * reconnect: one that started after ours ended is not ours to end. Played
 * here by pointing our record of our backend at a session opened later. */
START_TEST(reconnect_spares_a_backend_that_reused_the_pid)
{
	struct tdb t;
	struct fl_pg_error e;
	struct fl_conn *c;
	char errbuf[FL_ERRBUF_SIZE];
	PGconn *later;
	int old_pid, later_pid;

	tdb_open(&t);
	c = conn_to(t.url, NULL);
	old_pid = c->backend_pid;
	later = raw_connect(t.name);
	later_pid = PQbackendPID(later);
	raw_exec(t.pg, "SELECT pg_terminate_backend(%d)", old_pid);
	ck_assert_int_eq(fl_pg_conn_run(c, "SELECT 1", NULL, &e), FL_ECONNLOST);
	c->backend_pid = later_pid;
	ck_assert_msg(fl_pg_conn_reset(c, errbuf) == FL_OK, "%s", errbuf);
	ck_assert_int_eq(
	    raw_count(t.pg, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", later_pid), 1);
	ck_assert_int_eq(PQstatus(later), CONNECTION_OK);
	PQfinish(later);
	fl_pg_conn_close(c);
	tdb_close(&t);
}
END_TEST

/* ---- the same session state for every migration ---- */

START_TEST(clean_undoes_what_a_migration_left_behind)
{
	struct tdb t;
	struct fl_pg_error e;
	struct fl_conn *c;
	char url[640], v[256], errbuf[FL_ERRBUF_SIZE];

	tdb_open(&t);
	raw_exec(t.pg,
	         "CREATE SCHEMA tenant; CREATE SCHEMA other; CREATE ROLE %s_r NOLOGIN; "
	         "GRANT ALL ON SCHEMA other TO %s_r",
	         t.name, t.name);
	fl_test_fmt(url, sizeof(url), "%s&schema=tenant", t.url);
	c = conn_to(url, NULL);
	ck_assert_int_eq(fl_pg_conn_lock(c, 1000, errbuf), FL_OK);
	conn_value(c, "SHOW search_path", v, sizeof(v));
	ck_assert_str_eq(v, "tenant");

	/* What one migration may leave behind... */
	fl_test_fmt(url, sizeof(url),
	            "SET search_path = other; SET ROLE %s_r; SET work_mem = '77MB'; "
	            "SET statement_timeout = 1234; CREATE TEMP TABLE scratch (id int); "
	            "PREPARE p AS SELECT 1; LISTEN chan; BEGIN; DECLARE k CURSOR WITH HOLD FOR "
	            "SELECT 1; COMMIT; BEGIN",
	            t.name);
	ck_assert_int_eq(fl_pg_conn_run(c, url, NULL, &e), FL_OK);
	conn_value(c, "SELECT current_user", v, sizeof(v));
	ck_assert_str_ne(v, "postgres");

	/* ...is gone before the next, and the lock is still ours. */
	ck_assert_int_eq(fl_pg_conn_clean(c, &e), FL_OK);
	conn_value(c,
	           "SELECT current_setting('search_path') || ' ' || current_user || ' ' || "
	           "session_user || ' ' || current_setting('work_mem') || ' ' || "
	           "current_setting('statement_timeout') || ' ' || "
	           "(to_regclass('pg_temp.scratch') IS NULL) || ' ' || "
	           "(SELECT count(*) FROM pg_prepared_statements) || ' ' || "
	           "(SELECT count(*) FROM pg_cursors) || ' ' || "
	           "(SELECT count(*) FROM pg_listening_channels())",
	           v, sizeof(v));
	ck_assert_str_eq(v, "tenant postgres postgres 4MB 0 true 0 0 0");
	ck_assert_int_eq(PQtransactionStatus(c->pg), PQTRANS_IDLE);
	ck_assert_int_eq(raw_count(t.pg,
	                           "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
	                           "granted AND pid = %d",
	                           c->backend_pid),
	                 2);
	/* A table created next lands where the URL says. */
	ck_assert_int_eq(fl_pg_conn_run(c, "CREATE TABLE landed (id int)", NULL, &e), FL_OK);
	ck_assert_str_eq(
	    raw_value(t.pg, v, sizeof(v),
	              "SELECT relnamespace::regnamespace FROM pg_class WHERE relname = "
	              "'landed'"),
	    "tenant");
	fl_pg_conn_close(c);
	raw_exec(t.pg, "DROP OWNED BY %s_r; DROP ROLE %s_r", t.name, t.name);
	tdb_close(&t);
}
END_TEST

/* ---- libpq's environment ---- */

static void make_scram_role(struct tdb *t, const char *role, const char *pw)
{
	raw_exec(t->pg, "CREATE ROLE %s LOGIN PASSWORD '%s'", role, pw);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

START_TEST(libpq_environment_is_kept_out)
{
	struct tdb t;
	struct fl_conn_opts o;
	struct fl_conn *c = NULL;
	char root[256], path[512], role[64], url[640], v[256], text[512], errbuf[FL_ERRBUF_SIZE];

	tdb_open(&t);
	fl_test_tmp_root(root, sizeof(root), "flc_env");
	fl_test_fmt(role, sizeof(role), "%s_app", t.name);
	make_scram_role(&t, role, "Env-Pw-31337");
	raw_exec(t.pg, "GRANT CREATE ON DATABASE %s TO %s", t.name, role);

	/* Everything libpq would read, all pointing somewhere wrong or secret. */
	fl_test_fmt(path, sizeof(path), "%s/pg_service.conf", root);
	write_file(path,
	           "[svc]\nhost=/nonexistent\noptions=-c statement_timeout=4321\n"
	           "application_name=from_service\n",
	           0600);
	setenv("PGSERVICEFILE", path, 1);
	setenv("PGSERVICE", "svc", 1);
	fl_test_fmt(path, sizeof(path), "%s/.pgpass", root);
	fl_test_fmt(text, sizeof(text), "*:*:*:%s:Env-Pw-31337\n", role);
	write_file(path, text, 0600);
	setenv("HOME", root, 1);
	setenv("PGPASSWORD", "Env-Pw-31337", 1);
	setenv("PGOPTIONS", "-c search_path=evil_env", 1);
	setenv("PGAPPNAME", "from_env", 1);
	setenv("PGCONNECT_TIMEOUT", "not-a-number", 1);
	setenv("PGCLIENTENCODING", "LATIN1", 1);
	setenv("PGSSLMODE", "require", 1);

	/* By default only the URL counts. */
	c = conn_to(t.url, NULL);
	conn_value(c,
	           "SELECT current_setting('search_path') || '|' || "
	           "current_setting('application_name') || '|' || "
	           "current_setting('statement_timeout') || '|' || "
	           "current_setting('client_encoding')",
	           v, sizeof(v));
	ck_assert_str_eq(v, "\"$user\", public|flotilla|0|UTF8");
	fl_pg_conn_close(c);
	/* No password from PGPASSWORD, PGPASSFILE, ~/.pgpass or the service. */
	fl_test_fmt(url, sizeof(url), "postgresql://%s@/%s?host=%s&port=%s", role, t.name,
	            getenv("FL_PG_HOST"), getenv("FL_PG_PORT"));
	ck_assert_int_eq(fl_pg_conn_open(url, NULL, &c, errbuf), FL_EAUTH);
	ck_assert_msg(strstr(errbuf, "PGPASSWORD") != NULL, "%s", errbuf); /* the hint */
	ck_assert_msg(strstr(errbuf, "Env-Pw-31337") == NULL, "%s", errbuf);

	/* Asked for, libpq's environment applies as it always did. */
	fl_conn_opts_init(&o);
	o.use_libpq_env = true;
	unsetenv("PGSERVICE"); /* its host=/nonexistent would win over PGHOST */
	unsetenv("PGSSLMODE"); /* unix sockets ignore it anyway */
	c = conn_to(url, &o);  /* the password comes from PGPASSWORD */
	conn_value(c,
	           "SELECT current_setting('search_path') || '|' || "
	           "current_setting('client_encoding')",
	           v, sizeof(v));
	ck_assert_str_eq(v, "evil_env|LATIN1");
	fl_pg_conn_close(c);
	unsetenv("PGPASSWORD");
	c = conn_to(url, &o); /* and now from ~/.pgpass */
	fl_pg_conn_close(c);

	/* What libpq sends to the server with no way to override it: refused,
	 * unless allowed. */
	setenv("PGTZ", "Asia/Tokyo", 1);
	ck_assert_int_eq(fl_pg_conn_open(t.url, NULL, &c, errbuf), FL_EINVAL);
	ck_assert_msg(strstr(errbuf, "PGTZ is set in the environment") != NULL, "%s", errbuf);
	c = conn_to(t.url, &o);
	conn_value(c, "SHOW TimeZone", v, sizeof(v));
	ck_assert_str_eq(v, "Asia/Tokyo");
	fl_pg_conn_close(c);
	setenv("PGTZ", "default", 1); /* libpq ignores "default": so do we */
	c = conn_to(t.url, NULL);
	fl_pg_conn_close(c);

	fl_test_rm_rf(root);
	unsetenv("PGCONNECT_TIMEOUT"); /* for our own raw connections */
	unsetenv("PGTZ");
	raw_exec(t.pg, "REVOKE CREATE ON DATABASE %s FROM %s; DROP ROLE %s", t.name, role, role);
	tdb_close(&t);
}
END_TEST

/* ---- URLs and messages ---- */

START_TEST(scrub_hides_password_fields_only)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    /* The password's text elsewhere stays: it tells nothing, and the message stays true. */
	    {"connection to server on socket \"/tmp/x/.s.PGSQL.5432\" failed: FATAL:  password "
	     "authentication failed for user \"postgres\"",
	     "connection to server on socket \"/tmp/x/.s.PGSQL.5432\" failed: FATAL:  password "
	     "authentication failed for user \"postgres\""},
	    {"cannot connect to 'postgresql://postgres:postgres@h:5/postgres': refused",
	     "cannot connect to 'postgresql://postgres:***@h:5/postgres': refused"},
	    {"postgres://u:a.b*c+?(d)@h/db and postgresql://v:5@[::1]:5432/x",
	     "postgres://u:***@h/db and postgresql://v:***@[::1]:5432/x"},
	    {"host=h password=5 port=5 sslpassword='p w\\'x' user=postgres",
	     "host=h password=*** port=5 sslpassword=*** user=postgres"},
	    {"a?password=se%2Fcret&port=5 mypassword=5", "a?password=***&port=5 mypassword=5"},
	    {"PASSWORD=x", "PASSWORD=***"},
	    {"no secrets: postgresql://u@h/db", "no secrets: postgresql://u@h/db"},
	};
	char buf[FL_ERRBUF_SIZE], small[25];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		fl_pg_url_scrub(buf, sizeof(buf));
		ck_assert_str_eq(buf, cases[i].out);
	}
	snprintf(small, sizeof(small), "password=5 and more text");
	fl_pg_url_scrub(small, sizeof(small));
	ck_assert_str_eq(small, "password=*** and more te");
	fl_pg_url_scrub(NULL, 10);
}
END_TEST

/* Wrong passwords that equal other text in the message, or hold regex
 * characters: the message keeps that text and never shows the password. */
START_TEST(auth_failure_messages_stay_true)
{
	static const char *const pws[] = {"5", "postgres", "a.b*c+?(d)[e]^$|\\x"};
	struct tdb t;
	char role[64], url[640], enc[128], sock[256], want[320], errbuf[FL_ERRBUF_SIZE];
	struct fl_conn *c = NULL;

	tdb_open(&t);
	/* A role whose name holds "postgres" and "5". */
	fl_test_fmt(role, sizeof(role), "postgres_5_%s", t.name + 4);
	make_scram_role(&t, role, "Right-Pw-4711");
	fl_test_fmt(sock, sizeof(sock), "\"%s/.s.PGSQL.%s\"", getenv("FL_PG_HOST"),
	            getenv("FL_PG_PORT"));
	fl_test_fmt(want, sizeof(want), "password authentication failed for user \"%s\"", role);
	for (size_t i = 0; i < sizeof(pws) / sizeof(pws[0]); i++) {
		size_t n = 0;

		for (const char *p = pws[i]; *p != '\0'; p++)
			n += (size_t)snprintf(
			    enc + n, sizeof(enc) - n,
			    strchr("abcdefghijklmnopqrstuvwxyz0123456789", *p) ? "%c" : "%%%02X",
			    (unsigned char)*p);
		fl_test_fmt(url, sizeof(url), "postgresql://%s:%s@/%s?host=%s&port=%s", role, enc,
		            t.name, getenv("FL_PG_HOST"), getenv("FL_PG_PORT"));
		ck_assert_int_eq(fl_pg_conn_open(url, NULL, &c, errbuf), FL_EAUTH);
		ck_assert_msg(strstr(errbuf, want) != NULL, "'%s': %s", pws[i], errbuf);
		ck_assert_msg(strstr(errbuf, sock) != NULL, "'%s': %s", pws[i], errbuf);
		/* Exactly one "***": the URL's password field. */
		ck_assert_msg(strstr(errbuf, ":***@") != NULL &&
		                  strstr(strstr(errbuf, ":***@") + 4, "***") == NULL,
		              "'%s': %s", pws[i], errbuf);
		if (strlen(pws[i]) > 1)
			ck_assert_msg(strstr(errbuf, pws[i]) == NULL ||
			                  strcmp(pws[i], "postgres") ==
			                      0, /* the user name holds it */
			              "'%s': %s", pws[i], errbuf);
	}
	raw_exec(t.pg, "DROP ROLE %s", role);
	tdb_close(&t);
}
END_TEST

START_TEST(malformed_urls_are_invalid_not_unreachable)
{
	static const char *const bad[] = {
	    "postgresql://u@localhost:notaport/db",
	    "postgresql://u@localhost:99999/db",
	    "postgresql://u@localhost/db?sslmode=bogus",
	    "postgresql://u:p%zzSECRET@localhost/db",
	    "postgresql://u@localhost/db?password=%zzSECRET",
	    "postgresql://u@localhost/db?schema=%zz",
	    "postgresql://u:Se?cr3tSECRET@127.0.0.1:1/db",
	};
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_conn *c = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(fl_pg_conn_open(bad[i], NULL, &c, errbuf) == FL_EINVAL, "%s: %s",
		              bad[i], errbuf);
		ck_assert_msg(strncmp(errbuf, "malformed database URL '", 24) == 0, "%s", errbuf);
		ck_assert_msg(strstr(errbuf, "SECRET") == NULL && strstr(errbuf, "cr3t") == NULL,
		              "%s", errbuf);
		ck_assert_ptr_null(c);
	}
	/* Well-formed, nobody there: unreachable. */
	ck_assert_int_eq(
	    fl_pg_conn_open("postgresql://u@/db?host=/nonexistent/flc&port=1", NULL, &c, errbuf),
	    FL_ECONNECT);
}
END_TEST

static Suite *pg_conn_suite(void)
{
	Suite *s = suite_create("pg_conn");
	TCase *tc = tcase_create("conn");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, tcp_connections_carry_keepalives_and_user_timeout);
	tcase_add_test(tc, connect_has_a_deadline);
	tcase_add_test(tc, cancel_stops_a_connect_in_progress);
	tcase_add_test(tc, reset_has_a_deadline);
	tcase_add_test(tc, cancel_abandons_a_server_that_does_not_answer);
	tcase_add_test(tc, a_cancel_request_that_hangs_holds_nobody_up);
	tcase_add_test(tc, session_cancel_ends_a_lock_wait);
	tcase_add_test(tc, session_cancel_at_any_moment);
	tcase_add_test(tc, history_rows_with_nulls_are_refused);
	tcase_add_test(tc, schemas_of_one_database_lock_side_by_side);
	tcase_add_test(tc, reconnect_takes_both_keys_again);
	tcase_add_test(tc, reconnect_waits_for_its_old_session_to_let_go);
	tcase_add_test(tc, reconnect_spares_a_backend_that_reused_the_pid);
	tcase_add_test(tc, clean_undoes_what_a_migration_left_behind);
	tcase_add_test(tc, libpq_environment_is_kept_out);
	tcase_add_test(tc, scrub_hides_password_fields_only);
	tcase_add_test(tc, auth_failure_messages_stay_true);
	tcase_add_test(tc, malformed_urls_are_invalid_not_unreachable);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	sr = srunner_create(pg_conn_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
