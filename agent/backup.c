/* Backups through the agent's configured command (see backup.h). */
#define _GNU_SOURCE /* close_range */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "mem.h"
#include "tenants.h"

#define KILL_GRACE_MS 5000
#define OUTPUT_KEEP   2048
#define LINE_MAX_     1024 /* longest output line logged; the rest of it is dropped */
#define LEFTOVER_MS   1000 /* after the command exits, how long its output may stay open */
#define SAME_NAME_MAX 100

struct fl_backup {
	pthread_mutex_t mu;
	pid_t pid; /* guarded by mu; 0 when none runs */
	atomic_bool canceled;
};

struct fl_backup *fl_backup_new(void)
{
	struct fl_backup *b = fl_calloc(1, sizeof(*b));

	pthread_mutex_init(&b->mu, NULL);
	atomic_init(&b->canceled, false);
	return b;
}

void fl_backup_free(struct fl_backup *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b);
}

void fl_backup_cancel(struct fl_backup *b)
{
	atomic_store(&b->canceled, true);
	pthread_mutex_lock(&b->mu);
	if (b->pid > 0)
		kill(-b->pid, SIGTERM);
	pthread_mutex_unlock(&b->mu);
}

static void env_add(char ***env, size_t *n, const char *key, const char *value)
{
	struct fl_buf b = FL_BUF_INIT;

	if (value == NULL)
		return;
	fl_buf_printf(&b, "%s=%s", key, value);
	*env = fl_realloc(*env, (*n + 2) * sizeof(char *));
	(*env)[(*n)++] = fl_buf_detach(&b);
	(*env)[*n] = NULL;
}

static void env_free(char **env, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fl_tenants_url_free(env[i]); /* PGPASSWORD among them: wiped */
	free(env);
}

/*
 * dir/<tenant>-<release, 12 digits>-<UTC time>.dump. The tenant id with
 * characters other than A-Z a-z 0-9 . _ - as _, and then, since two ids may
 * come out alike ('a/b', 'a b', 'a_b'), followed by '~' and 8 hex digits of
 * the id's SHA-256. A name taken already (the same tenant twice in one
 * second) gets -2, -3... before .dump: a backup never overwrites another.
 */
static void backup_path(const struct fl_backup_spec *s, struct fl_buf *out)
{
	char stamp[32];
	struct tm tm;
	struct stat st;
	time_t now = time(NULL);
	const char *p;
	bool altered = false;
	size_t base;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	fl_buf_printf(out, "%s/", s->dir);
	for (p = s->tenant_id; *p != '\0'; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-')) {
			c = '_';
			altered = true;
		}
		fl_buf_append(out, &c, 1);
	}
	if (altered) {
		uint8_t h[crypto_hash_sha256_BYTES];

		crypto_hash_sha256(h, (const uint8_t *)s->tenant_id, strlen(s->tenant_id));
		fl_buf_printf(out, "~%02x%02x%02x%02x", h[0], h[1], h[2], h[3]);
	}
	fl_buf_printf(out, "-%.12s-%s", s->release_hex, stamp);
	base = out->len;
	fl_buf_puts(out, ".dump");
	for (int n = 2; n <= SAME_NAME_MAX && lstat(out->data, &st) == 0; n++) {
		out->len = base;
		out->data[base] = '\0';
		fl_buf_printf(out, "-%d.dump", n);
	}
}

/* The last line of what the command printed, for the error message. */
static void last_line(const struct fl_buf *out, char *line, size_t size)
{
	size_t end = out->len, start;

	while (end > 0 && (out->data[end - 1] == '\n' || out->data[end - 1] == '\r'))
		end--;
	start = end;
	while (start > 0 && out->data[start - 1] != '\n')
		start--;
	fl_err_quote(line, size, out->data + start, end - start);
}

/* The command's output, line by line, into the log. A line longer than
 * LINE_MAX_ (a dump written to stdout by mistake) is logged cut and the rest
 * of it dropped: what is held stays bounded, whatever the command prints. */
struct out_lines {
	struct fl_buf pend; /* the line so far */
	bool skipping;      /* dropping the rest of a line logged cut */
};

static void log_output(const struct fl_logger *log, const char *tenant, struct out_lines *o,
                       const char *data, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t len = nl != NULL ? (size_t)(nl - data) : n;
		char q[LINE_MAX_ + 64];

		if (!o->skipping) {
			size_t room = LINE_MAX_ - o->pend.len;

			fl_buf_append(&o->pend, data, len < room ? len : room);
			if (len >= room && (nl == NULL || len > room)) {
				fl_err_quote(q, sizeof(q), o->pend.data, o->pend.len);
				fl_logger_info(log, tenant, "backup: %s... (line cut)", q);
				fl_buf_reset(&o->pend);
				o->skipping = true;
			} else if (nl != NULL) {
				fl_err_quote(q, sizeof(q), o->pend.data, o->pend.len);
				fl_logger_info(log, tenant, "backup: %s", q);
				fl_buf_reset(&o->pend);
			}
		}
		if (nl == NULL)
			return;
		o->skipping = false;
		data = nl + 1;
		n -= len + 1;
	}
}

enum fl_err fl_backup_run(struct fl_backup *b, const struct fl_backup_spec *spec,
                          const struct fl_logger *log, char *path, char *errbuf)
{
	static const char *const passed[] = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"};
	struct fl_conn_params cp;
	struct fl_buf bpath = FL_BUF_INIT, out = FL_BUF_INIT;
	struct out_lines lines = {FL_BUF_INIT, false};
	char **env = NULL, line[256], e[128];
	char *const argv[] = {"/bin/sh", "-c", (char *)spec->command, NULL};
	size_t n_env = 0, i;
	int fds[2] = {-1, -1}, devnull = -1, status = 0;
	int64_t deadline, kill_at = 0, leftover_until = 0;
	bool timed_out = false, eof = false, exited = false;
	enum fl_err rv;
	pid_t pid;

	path[0] = '\0';
	if ((rv = fl_tenants_conn_params(spec->url, &cp, errbuf)) != FL_OK)
		return rv;
	backup_path(spec, &bpath);
	snprintf(path, 4096, "%s", bpath.data);
	for (i = 0; i < sizeof(passed) / sizeof(passed[0]); i++)
		env_add(&env, &n_env, passed[i], getenv(passed[i]));
	if (getenv("PATH") == NULL)
		env_add(&env, &n_env, "PATH", "/usr/local/bin:/usr/bin:/bin");
	env_add(&env, &n_env, "PGHOST", cp.host);
	env_add(&env, &n_env, "PGPORT", cp.port);
	env_add(&env, &n_env, "PGDATABASE", cp.dbname);
	env_add(&env, &n_env, "PGUSER", cp.user);
	env_add(&env, &n_env, "PGPASSWORD", cp.password);
	env_add(&env, &n_env, "PGSSLMODE", cp.sslmode);
	env_add(&env, &n_env, "PGSSLROOTCERT", cp.sslrootcert);
	env_add(&env, &n_env, "PGAPPNAME", "flotilla-backup");
	env_add(&env, &n_env, "FLOTILLA_TENANT", spec->tenant_id);
	env_add(&env, &n_env, "FLOTILLA_SCHEMA", spec->schema);
	env_add(&env, &n_env, "FLOTILLA_RELEASE", spec->release_hex);
	env_add(&env, &n_env, "FLOTILLA_BACKUP_PATH", bpath.data);
	fl_tenants_conn_params_fini(&cp);

	if (pipe(fds) != 0 || fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		rv = fl_errf(errbuf, FL_EIO, "cannot start the backup: %s",
		             fl_err_errno(errno, e, sizeof(e)));
		goto out;
	}
	pthread_mutex_lock(&b->mu);
	if (atomic_load(&b->canceled)) {
		pthread_mutex_unlock(&b->mu);
		rv = fl_errf(errbuf, FL_ECANCELED, "backup canceled before it started");
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		/* the child: async-signal-safe calls only */
		struct sigaction dfl;
		sigset_t none;

		setsid();
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGPIPE, &dfl, NULL);
		sigaction(SIGTERM, &dfl, NULL);
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGHUP, &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(devnull, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0)
			_exit(126);
		close_range(3, ~0u, 0);
		execve(argv[0], argv, env);
		_exit(127);
	}
	if (pid < 0) {
		pthread_mutex_unlock(&b->mu);
		rv = fl_errf(errbuf, FL_EIO, "cannot start the backup: %s",
		             fl_err_errno(errno, e, sizeof(e)));
		goto out;
	}
	b->pid = pid;
	pthread_mutex_unlock(&b->mu);
	close(fds[1]);
	fds[1] = -1;
	fl_logger_info(log, spec->tenant_id, "backup: running backup.command into '%s'",
	               bpath.data);

	deadline = fl_now_ms() + spec->timeout_ms;
	while (!eof) {
		struct pollfd pfd = {fds[0], POLLIN, 0};
		int64_t now = fl_now_ms();
		char chunk[4096];
		ssize_t got;

		/* the command ended: what it left running in its group (holding
		 * the output open) is ended too, and the output read a moment more */
		if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
			exited = true;
			kill(-pid, SIGKILL);
			leftover_until = now + LEFTOVER_MS;
		}
		if (exited && now >= leftover_until)
			break;
		if (!timed_out && now >= deadline) {
			timed_out = true;
			kill(-pid, SIGTERM);
			kill_at = now + KILL_GRACE_MS;
		}
		if (atomic_load(&b->canceled) && kill_at == 0)
			kill_at = now + KILL_GRACE_MS; /* cancel sent SIGTERM already */
		if (kill_at != 0 && now >= kill_at) {
			kill(-pid, SIGKILL);
			kill_at = INT64_MAX;
		}
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		got = read(fds[0], chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			eof = true;
			break;
		}
		log_output(log, spec->tenant_id, &lines, chunk, (size_t)got);
		fl_buf_append(&out, chunk, (size_t)got);
		if (out.len > 2 * OUTPUT_KEEP) {
			memmove(out.data, out.data + out.len - OUTPUT_KEEP, OUTPUT_KEEP);
			out.len = OUTPUT_KEEP;
			out.data[out.len] = '\0';
		}
	}
	/* the output is closed (or the command ended): reap it, and end its
	 * group, so that nothing of the backup outlives it */
	if (!exited)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	pthread_mutex_lock(&b->mu);
	kill(-pid, SIGKILL);
	b->pid = 0;
	pthread_mutex_unlock(&b->mu);
	if (lines.pend.len > 0)
		log_output(log, spec->tenant_id, &lines, "\n", 1);
	last_line(&out, line, sizeof(line));
	if (timed_out) {
		rv = fl_errf(errbuf, FL_ETIMEDOUT, "backup timed out after %llds",
		             (long long)(spec->timeout_ms / 1000));
	} else if (atomic_load(&b->canceled)) {
		rv = fl_errf(errbuf, FL_ECANCELED, "backup canceled");
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rv = FL_OK;
	} else if (WIFEXITED(status)) {
		rv = fl_errf(errbuf, FL_EFAILED, "backup command exited with status %d%s%s",
		             WEXITSTATUS(status), line[0] ? ": " : "", line);
	} else {
		rv = fl_errf(errbuf, FL_EFAILED, "backup command killed by signal %d%s%s",
		             WIFSIGNALED(status) ? WTERMSIG(status) : 0, line[0] ? ": " : "", line);
	}
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (devnull >= 0)
		close(devnull);
	env_free(env, n_env);
	fl_buf_fini(&bpath);
	fl_buf_fini(&out);
	fl_buf_fini(&lines.pend);
	return rv;
}
