/* Working around nng 1.5.2 (nng_quirks.h). */
#include "nng_quirks.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "mem.h"

bool fl_nng_handshake_close_is_fatal(const char *url)
{
	int major = 0, minor = 0;

	if (strncmp(url, "ipc://", 6) != 0 && strncmp(url, "tls+tcp://", 10) != 0)
		return false;
	if (sscanf(nng_version(), "%d.%d", &major, &minor) != 2)
		return true;
	return major < 1 || (major == 1 && minor < 6);
}

/* Shared by the waiter and the closing thread; the last one out frees it. */
struct closing {
	nng_socket s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	atomic_int refs;
};

static void closing_unref(struct closing *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

static void *close_main(void *arg)
{
	struct closing *c = arg;

	nng_close(c->s);
	pthread_mutex_lock(&c->mu);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	closing_unref(c);
	return NULL;
}

bool fl_nng_close_within(nng_socket s, int64_t timeout_ms)
{
	struct closing *c = fl_calloc(1, sizeof(*c));
	struct timespec until;
	pthread_attr_t attr;
	pthread_t t;
	bool done;

	c->s = s;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	atomic_init(&c->refs, 2);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, close_main, c) != 0) {
		pthread_attr_destroy(&attr);
		atomic_store(&c->refs, 1);
		closing_unref(c);
		nng_close(s); /* no thread to spare: wait as nng would */
		return true;
	}
	pthread_attr_destroy(&attr);
	until = fl_timespec_in(CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&c->mu);
	while (!c->done && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
		;
	done = c->done;
	pthread_mutex_unlock(&c->mu);
	if (!done)
		fl_nng_abandon(c); /* the closing thread still uses it */
	closing_unref(c);
	return done;
}

#define ABANDONED_MAX 64

static void *abandoned[ABANDONED_MAX];
static atomic_size_t n_abandoned;

void fl_nng_abandon(void *p)
{
	size_t i = atomic_fetch_add(&n_abandoned, 1);

	if (i < ABANDONED_MAX)
		abandoned[i] = p;
}
