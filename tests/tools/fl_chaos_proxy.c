/*
 * fl-chaos-proxy: a TCP proxy for nng's SP-over-TCP that delays, reorders and
 * duplicates whole messages, for the fault suite (tests/faults) where the
 * kernel has no netem, and on top of it where it has: netem acts on packets,
 * which TCP puts back in order and deduplicates, so only a proxy that knows
 * the framing makes the coordinator and the agents meet a message twice or
 * out of turn.
 *
 *   fl-chaos-proxy --listen HOST:PORT --to HOST:PORT [--seed N]
 *                  [--delay MIN-MAX] [--duplicate PERCENT] [--stats FILE]
 *
 * Each connection accepted on --listen gets one to --to. The SP handshake (8
 * bytes each way) passes as it comes; after it, every message (an 8-byte
 * big-endian length and its bytes) waits a delay drawn from MIN-MAX ms
 * (default 5-35) and goes in the order the delays give, so messages overtake
 * one another; PERCENT of them (default 2) go twice, the copy after a delay
 * of its own. When either side closes, both do and what was queued is lost,
 * as with a reset. On SIGTERM or SIGINT it writes to --stats FILE, one
 * "name value" a line: connections, messages, delayed, reordered, duplicated,
 * and exits 0. Single-threaded: one poll loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS   256
#define MAX_MESSAGE (64u << 20) /* larger: not nng's framing, or not ours to judge */
#define HANDSHAKE   8

struct frame {
	struct frame *next;
	int64_t due_ms;
	uint64_t seq; /* arrival order in its direction */
	size_t len, off;
	uint8_t *data; /* length header and body */
};

/* One direction of a connection: bytes read from `from`, framed, written to `to`. */
struct dir {
	int from, to;
	uint8_t *in;
	size_t in_len, in_cap;
	bool handshaken;
	uint64_t next_seq, sent_seq_max;
	struct frame *queue;  /* by due time; equal times keep arrival order */
	struct frame *flight; /* being written */
};

struct conn {
	bool used;
	struct dir up, down; /* client to upstream, upstream to client */
};

static struct conn conns[MAX_CONNS];
static volatile sig_atomic_t stopping;
static unsigned delay_min = 5, delay_max = 35, dup_percent = 2;
static uint64_t rng;
static struct {
	unsigned long connections, messages, delayed, reordered, duplicated;
} stats;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fl-chaos-proxy: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t next_random(void) /* xorshift64*: seeded, so a run can be told again */
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 2685821657736338717ULL) >> 32);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static void split_host_port(const char *arg, char *host, size_t hsize, char *port, size_t psize)
{
	const char *colon = strrchr(arg, ':');

	if (colon == NULL || colon == arg || colon[1] == '\0' || (size_t)(colon - arg) >= hsize ||
	    strlen(colon + 1) >= psize)
		die("'%s': expected HOST:PORT", arg);
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = '\0';
	strcpy(port, colon + 1);
}

static int open_socket(const char *hostport, bool listening)
{
	char host[256], port[32];
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	int fd, one = 1, rv;

	split_host_port(hostport, host, sizeof(host), port, sizeof(port));
	if (listening)
		hints.ai_flags = AI_PASSIVE;
	if ((rv = getaddrinfo(host, port, &hints, &ai)) != 0)
		die("%s: %s", hostport, gai_strerror(rv));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (listening) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0)
			die("cannot listen on %s: %s", hostport, strerror(errno));
	} else if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		close(fd); /* the coordinator is away: the client sees its connection close */
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void enqueue(struct dir *d, const uint8_t *bytes, size_t len, int64_t due, uint64_t seq)
{
	struct frame *f = xmalloc(sizeof(*f)), **p = &d->queue;

	f->data = xmalloc(len);
	memcpy(f->data, bytes, len);
	f->len = len;
	f->off = 0;
	f->due_ms = due;
	f->seq = seq;
	while (*p != NULL && (*p)->due_ms <= due)
		p = &(*p)->next;
	f->next = *p;
	*p = f;
}

/* Queue a message (or its copy) after a delay drawn from --delay; counted as
 * delayed when that is not 0. */
static void enqueue_delayed(struct dir *d, const uint8_t *bytes, size_t len, int64_t now)
{
	unsigned delay =
	    delay_min + (delay_max > delay_min ? next_random() % (delay_max - delay_min + 1) : 0);

	stats.delayed += delay > 0;
	enqueue(d, bytes, len, now + delay, d->next_seq++);
}

/* Cut what came in into messages and queue them. False: not nng's framing. */
static bool frame_input(struct dir *d)
{
	size_t at = 0;
	int64_t now = now_ms();

	if (!d->handshaken) {
		if (d->in_len < HANDSHAKE)
			return true;
		enqueue(d, d->in, HANDSHAKE, now, d->next_seq++);
		d->handshaken = true;
		at = HANDSHAKE;
	}
	while (d->in_len - at >= 8) {
		uint64_t n = 0;

		for (int i = 0; i < 8; i++)
			n = n << 8 | d->in[at + (size_t)i];
		if (n > MAX_MESSAGE)
			return false;
		if (d->in_len - at < 8 + n)
			break;
		stats.messages++;
		enqueue_delayed(d, d->in + at, 8 + (size_t)n, now);
		if (next_random() % 100 < dup_percent) {
			stats.duplicated++;
			enqueue_delayed(d, d->in + at, 8 + (size_t)n, now);
		}
		at += 8 + (size_t)n;
	}
	memmove(d->in, d->in + at, d->in_len - at);
	d->in_len -= at;
	return true;
}

/* Read what there is. False: the side closed or broke. */
static bool pump_in(struct dir *d)
{
	for (;;) {
		ssize_t n;

		if (d->in_cap - d->in_len < 65536) {
			d->in_cap = d->in_cap * 2 + 65536;
			d->in = realloc(d->in, d->in_cap);
			if (d->in == NULL)
				die("out of memory");
		}
		n = read(d->from, d->in + d->in_len, d->in_cap - d->in_len);
		if (n > 0) {
			d->in_len += (size_t)n;
			if (!frame_input(d))
				return false;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		return false;
	}
}

/* Write what is due. False: the side broke. */
static bool pump_out(struct dir *d)
{
	int64_t now = now_ms();

	for (;;) {
		ssize_t n;

		if (d->flight == NULL) {
			if (d->queue == NULL || d->queue->due_ms > now)
				return true;
			d->flight = d->queue;
			d->queue = d->flight->next;
			if (d->flight->seq < d->sent_seq_max)
				stats.reordered++;
			else
				d->sent_seq_max = d->flight->seq;
		}
		n = write(d->to, d->flight->data + d->flight->off, d->flight->len - d->flight->off);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		d->flight->off += (size_t)n;
		if (d->flight->off < d->flight->len)
			return true;
		free(d->flight->data);
		free(d->flight);
		d->flight = NULL;
	}
}

static void dir_free(struct dir *d)
{
	struct frame *f = d->queue, *next;

	for (; f != NULL; f = next) {
		next = f->next;
		free(f->data);
		free(f);
	}
	if (d->flight != NULL) {
		free(d->flight->data);
		free(d->flight);
	}
	free(d->in);
}

static void conn_close(struct conn *c)
{
	close(c->up.from);
	close(c->up.to);
	dir_free(&c->up);
	dir_free(&c->down);
	memset(c, 0, sizeof(*c));
}

static void accept_one(int lfd, const char *to)
{
	int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), ufd, one = 1;
	struct conn *c = NULL;

	if (cfd < 0)
		return;
	for (size_t i = 0; i < MAX_CONNS && c == NULL; i++)
		if (!conns[i].used)
			c = &conns[i];
	if (c == NULL || (ufd = open_socket(to, false)) < 0) {
		close(cfd);
		return;
	}
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(c, 0, sizeof(*c));
	c->used = true;
	c->up.from = c->down.to = cfd;
	c->up.to = c->down.from = ufd;
	stats.connections++;
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void write_stats(const char *path)
{
	char tmp[4096];
	FILE *f;

	if (path == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		die("cannot write '%s': %s", tmp, strerror(errno));
	fprintf(f, "connections %lu\nmessages %lu\ndelayed %lu\nreordered %lu\nduplicated %lu\n",
	        stats.connections, stats.messages, stats.delayed, stats.reordered,
	        stats.duplicated);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		die("cannot write '%s': %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {{"listen", required_argument, NULL, 'l'},
	                                      {"to", required_argument, NULL, 't'},
	                                      {"seed", required_argument, NULL, 's'},
	                                      {"delay", required_argument, NULL, 'd'},
	                                      {"duplicate", required_argument, NULL, 'p'},
	                                      {"stats", required_argument, NULL, 'o'},
	                                      {0, 0, 0, 0}};
	const char *listen_at = NULL, *to = NULL, *stats_path = NULL;
	struct sigaction sa = {.sa_handler = on_signal};
	struct pollfd fds[1 + 2 * MAX_CONNS];
	int lfd, opt;

	rng = 0x9e3779b97f4a7c15ULL;
	while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen_at = optarg;
			break;
		case 't':
			to = optarg;
			break;
		case 's':
			rng ^= strtoull(optarg, NULL, 10) * 0xbf58476d1ce4e5b9ULL;
			break;
		case 'd':
			if (sscanf(optarg, "%u-%u", &delay_min, &delay_max) != 2 ||
			    delay_max < delay_min || delay_max > 60000)
				die("--delay '%s': expected MIN-MAX in ms, MIN <= MAX <= 60000",
				    optarg);
			break;
		case 'p':
			if (sscanf(optarg, "%u", &dup_percent) != 1 || dup_percent > 100)
				die("--duplicate '%s': expected a percentage, 0 to 100", optarg);
			break;
		case 'o':
			stats_path = optarg;
			break;
		default:
			die("usage: fl-chaos-proxy --listen HOST:PORT --to HOST:PORT [--seed N] "
			    "[--delay MIN-MAX] [--duplicate PERCENT] [--stats FILE]");
		}
	}
	if (listen_at == NULL || to == NULL)
		die("--listen and --to are required");
	if (rng == 0)
		rng = 1;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	lfd = open_socket(listen_at, true);

	while (!stopping) {
		int64_t now = now_ms(), wait = 1000;
		size_t owner[1 + 2 * MAX_CONNS];
		nfds_t n = 0;

		fds[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
		/* two entries a connection: the client's socket (read for up, written
		 * by down), then the upstream's (read for down, written by up) */
		for (size_t i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &conns[i];

			if (!c->used)
				continue;
			owner[n] = i;
			fds[n++] = (struct pollfd){
			    .fd = c->up.from, .events = POLLIN | (c->down.flight ? POLLOUT : 0)};
			owner[n] = i;
			fds[n++] = (struct pollfd){.fd = c->down.from,
			                           .events = POLLIN | (c->up.flight ? POLLOUT : 0)};
			if (c->up.queue != NULL && c->up.queue->due_ms - now < wait)
				wait = c->up.queue->due_ms - now;
			if (c->down.queue != NULL && c->down.queue->due_ms - now < wait)
				wait = c->down.queue->due_ms - now;
		}
		if (wait < 0)
			wait = 0;
		if (poll(fds, n, (int)wait) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (fds[0].revents & POLLIN)
			accept_one(lfd, to);
		for (nfds_t k = 1; k + 1 < n; k += 2) {
			struct conn *c = &conns[owner[k]];
			bool ok = true;

			if (fds[k].revents & (POLLIN | POLLHUP | POLLERR))
				ok = pump_in(&c->up);
			if (ok && (fds[k + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				ok = pump_in(&c->down);
			ok = ok && pump_out(&c->up) && pump_out(&c->down);
			if (!ok)
				conn_close(c);
		}
	}
	write_stats(stats_path);
	return 0;
}
