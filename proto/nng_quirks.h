/*
 * Where nng 1.5.2 (Debian 12's) needs working around. Its issue #1518 (fixed
 * in 1.6.0): on ipc:// and tls+tcp://, a peer that closes in the middle of
 * the SP handshake is taken for the endpoint's own closing. A listener then
 * stops accepting, a dialer stops redialing, and neither is ever reaped: a
 * later nng_close of their socket waits for them forever.
 */
#ifndef FL_NNG_QUIRKS_H
#define FL_NNG_QUIRKS_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>

/* Whether url's transport has that flaw in the nng we run on: ipc:// and
 * tls+tcp:// before nng 1.6.0. coordinator/rep.c watches its listeners, and
 * proto/client.c replaces its dialer when a request found no connection. */
bool fl_nng_handshake_close_is_fatal(const char *url);

/*
 * nng_close(s), waiting at most timeout_ms for it: true when it returned.
 * False: nng is stuck on an endpoint the flaw left behind. Every context
 * and aio of s has ended by then (nng closes them first), but nng may still
 * call the socket's pipe callbacks: the caller keeps alive what they use,
 * handing it to fl_nng_abandon, and goes on (a process that exits is done).
 */
bool fl_nng_close_within(nng_socket s, int64_t timeout_ms);

/* Keep p (never freed) reachable, so that leak checkers do not count what a
 * stuck close made us give up. */
void fl_nng_abandon(void *p);

#endif
