/*
 * systemd's readiness protocol (sd_notify(3)), by hand: one datagram with
 * the state ("READY=1", "RELOADING=1", "STOPPING=1") to the unix socket
 * $NOTIFY_SOCKET names. A path starting with '@' is an abstract socket.
 * Without $NOTIFY_SOCKET (not started by systemd) it does nothing, so
 * daemons call it unconditionally. Any thread may call it.
 */
#ifndef FL_SD_NOTIFY_H
#define FL_SD_NOTIFY_H

#include "err.h"

/* Send state. FL_OK when sent or when there is no $NOTIFY_SOCKET;
 * FL_EINVAL for a socket path that does not fit, FL_EIO when sending
 * failed (errbuf says why). Daemons log the error and go on. */
enum fl_err fl_sd_notify(const char *state, char *errbuf);

#endif
