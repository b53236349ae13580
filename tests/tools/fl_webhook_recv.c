/*
 * fl-webhook-recv: a webhook receiver for tests (test_fleet_webhooks.sh).
 *
 *   fl-webhook-recv --secret FILE --port-file FILE [--port N] [--fail-first N]
 *
 * Listens on 127.0.0.1 at port N, or a free one (written to --port-file once
 * it listens) and answers POSTs one at a time: the first N with 500, the rest
 * with 204. For each request, one line on stdout, flushed:
 *
 *   STATUS sig=ok|bad event=NAME id=ID BODY
 *
 * sig says whether X-Flotilla-Signature is "sha256=" and the hex
 * HMAC-SHA-256 of the body under the secret (the file's bytes, one trailing
 * newline left out), checked with libsodium. Runs until killed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX (16 * 1024)
#define BODY_MAX (1024 * 1024)

/* The value of header name in head (lowercase compare), copied into out. */
static void header(const char *head, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	const char *p;

	out[0] = '\0';
	for (p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
		const char *v = p + 2, *end;

		if (strncasecmp(v, name, n) != 0 || v[n] != ':')
			continue;
		v += n + 1;
		v += strspn(v, " \t");
		end = strstr(v, "\r\n");
		n = end ? (size_t)(end - v) : strlen(v);
		if (n >= cap)
			n = cap - 1;
		memcpy(out, v, n);
		out[n] = '\0';
		return;
	}
}

static int serve(int c, const unsigned char *key, size_t keylen, int status)
{
	static char buf[HEAD_MAX + BODY_MAX + 1];
	char sig[256], event[128], id[32], len_s[32], want[80];
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	size_t got = 0, head_len = 0, body_len;
	char *end = NULL, reply[128];
	int n;

	while (end == NULL && got < HEAD_MAX) {
		ssize_t r = recv(c, buf + got, HEAD_MAX - got, 0);

		if (r <= 0)
			return -1;
		got += (size_t)r;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (end == NULL)
		return -1;
	head_len = (size_t)(end - buf) + 4;
	end[2] = '\0'; /* the head ends with its last header's CRLF */
	header(buf, "content-length", len_s, sizeof(len_s));
	body_len = (size_t)strtoul(len_s, NULL, 10);
	if (body_len > BODY_MAX)
		return -1;
	while (got < head_len + body_len) {
		ssize_t r = recv(c, buf + got, head_len + body_len - got, 0);

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	buf[head_len + body_len] = '\0';
	header(buf, "x-flotilla-signature", sig, sizeof(sig));
	header(buf, "x-flotilla-event", event, sizeof(event));
	header(buf, "x-flotilla-event-id", id, sizeof(id));
	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)buf + head_len, body_len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(want, "sha256=", 7);
	sodium_bin2hex(want + 7, sizeof(want) - 7, mac, sizeof(mac));
	printf("%d sig=%s event=%s id=%s %s\n", status, strcmp(sig, want) == 0 ? "ok" : "bad",
	       event, id, buf + head_len);
	fflush(stdout);
	n = snprintf(reply, sizeof(reply), "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n", status,
	             status == 204 ? "No Content" : "Internal Server Error");
	return send(c, reply, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *secret = NULL, *port_file = NULL;
	unsigned char key[4097];
	long fail_first = 0, served = 0, port = 0;
	struct sockaddr_in sa = {0};
	socklen_t salen = sizeof(sa);
	size_t keylen;
	FILE *f;
	int s, one = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--secret") == 0)
			secret = argv[i + 1];
		else if (strcmp(argv[i], "--port-file") == 0)
			port_file = argv[i + 1];
		else if (strcmp(argv[i], "--port") == 0)
			port = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--fail-first") == 0)
			fail_first = strtol(argv[i + 1], NULL, 10);
	}
	if (secret == NULL || port_file == NULL || sodium_init() < 0) {
		fprintf(stderr, "usage: fl-webhook-recv --secret FILE --port-file FILE "
		                "[--port N] [--fail-first N]\n");
		return 2;
	}
	if ((f = fopen(secret, "rb")) == NULL) {
		fprintf(stderr, "fl-webhook-recv: '%s': %s\n", secret, strerror(errno));
		return 1;
	}
	keylen = fread(key, 1, sizeof(key), f);
	fclose(f);
	if (keylen > 0 && key[keylen - 1] == '\n')
		keylen--;
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s, 16) != 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &salen) != 0) {
		fprintf(stderr, "fl-webhook-recv: cannot listen: %s\n", strerror(errno));
		return 1;
	}
	if ((f = fopen(port_file, "w")) == NULL || fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0 ||
	    fclose(f) != 0) {
		fprintf(stderr, "fl-webhook-recv: cannot write '%s'\n", port_file);
		return 1;
	}
	for (;;) {
		int c = accept(s, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "fl-webhook-recv: accept: %s\n", strerror(errno));
			return 1;
		}
		if (serve(c, key, keylen, served < fail_first ? 500 : 204) == 0)
			served++;
		close(c);
	}
}
