/* sd_notify(3)'s protocol by hand (sd_notify.h): no libsystemd needed. */
#include "sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum fl_err fl_sd_notify(const char *state, char *errbuf)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t len;
	char eb[128];
	ssize_t n;
	int fd, saved;

	if (path == NULL || path[0] == '\0')
		return FL_OK;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return fl_errf(errbuf, FL_EINVAL, "NOTIFY_SOCKET '%s': not a socket path", path);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: no terminating NUL counted */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fl_errf(errbuf, FL_EIO, "NOTIFY_SOCKET: cannot make a socket: %s",
		               fl_err_errno(errno, eb, sizeof(eb)));
	do
		n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	while (n < 0 && errno == EINTR);
	saved = errno;
	close(fd);
	if (n < 0)
		return fl_errf(errbuf, FL_EIO, "NOTIFY_SOCKET '%s': cannot send '%s': %s", path,
		               state, fl_err_errno(saved, eb, sizeof(eb)));
	return FL_OK;
}
