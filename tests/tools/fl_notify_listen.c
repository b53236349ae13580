/*
 * fl-notify-listen: stand in for systemd's notification socket in tests.
 *
 *   fl-notify-listen SOCKET [--probe PATH]
 *
 * Binds a unix datagram socket at SOCKET (what NOTIFY_SOCKET names) and
 * prints each datagram received as one line on stdout, flushed at once
 * (newlines inside a datagram become spaces). With --probe, each line ends
 * with " probe=up" or " probe=down": whether a unix stream socket at PATH
 * (an nng ipc:// listener) accepted a connection right when the datagram
 * came, so a test can assert that READY=1 came after the daemon listened.
 * Runs until killed; removes nothing (the test's temp dir goes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		fprintf(stderr, "fl-notify-listen: '%s': path too long\n", path);
		return -1;
	}
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

static const char *probe(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISSOCK(sb.st_mode) ? "up" : "down";
}

int main(int argc, char **argv)
{
	const char *path, *probe_path = NULL;
	struct sockaddr_un sa;
	char buf[4096];
	int fd;

	if (argc == 4 && strcmp(argv[2], "--probe") == 0)
		probe_path = argv[3];
	else if (argc != 2) {
		fprintf(stderr, "usage: fl-notify-listen SOCKET [--probe PATH]\n");
		return 2;
	}
	path = argv[1];
	if (unix_addr(path, &sa) != 0)
		return 2;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "fl-notify-listen: cannot bind '%s': %s\n", path, strerror(errno));
		return 1;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "fl-notify-listen: recv: %s\n", strerror(errno));
			return 1;
		}
		buf[n] = '\0';
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n' || buf[i] == '\0')
				buf[i] = ' ';
		if (probe_path != NULL)
			printf("%s probe=%s\n", buf, probe(probe_path));
		else
			printf("%s\n", buf);
		fflush(stdout);
	}
}
