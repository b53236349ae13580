#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "duration.h"
#include "log.h"

void cli_init(struct cli *c, const char *cmd)
{
	c->cmd = cmd;
	c->url = getenv("DATABASE_URL");
	c->dir = NULL;
	c->json = false;
	c->args = NULL;
	c->nargs = 0;
	c->help = false;
	c->log = (struct fl_logger)FL_LOGGER_INIT;
	fl_engine_opts_init(&c->opts);
}

/* A duration option within [min, max]; out of range is refused, not clamped. */
static int duration_opt(struct cli *c, const char *name, const char *arg, int64_t min, int64_t max,
                        int64_t *ms)
{
	char errbuf[FL_ERRBUF_SIZE], what[64];
	enum fl_err rv;
	int64_t v;

	if (fl_duration_parse(arg, &v, errbuf) != FL_OK)
		return cli_usage_error(c, "--%s: %s", name, errbuf);
	snprintf(what, sizeof(what), "%s", name);
	for (char *p = what; *p != '\0'; p++)
		if (*p == '-')
			*p = ' ';
	if (strcmp(name, "lock-timeout") == 0)
		rv = fl_duration_check_lock_timeout(v, errbuf);
	else
		rv = fl_duration_check_range(what, v, min, max, errbuf);
	if (rv != FL_OK)
		return cli_usage_error(c, "--%s: %s", name, errbuf);
	*ms = v;
	return CLI_OK;
}

static int count_opt(struct cli *c, const char *name, const char *arg, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *arg == '\0' || *end != '\0' || v < 1 || v > 1000)
		return cli_usage_error(c, "--%s: expected a whole number from 1 to 1000, got '%s'",
		                       name, arg);
	*out = (int)v;
	return CLI_OK;
}

int cli_option(struct cli *c, int opt, const char *arg)
{
	struct fl_apply_opts *a = &c->opts.apply;

	switch (opt) {
	case OPT_DATABASE_URL:
		c->url = arg;
		return CLI_OK;
	case OPT_DIR:
		c->dir = arg;
		return CLI_OK;
	case OPT_JSON:
		c->json = true;
		return CLI_OK;
	case 'v':
		fl_log_set_level(FL_LOG_INFO);
		return CLI_OK;
	case OPT_LOG_JSON:
		fl_log_set_json(true);
		return CLI_OK;
	case OPT_LOCK_TIMEOUT:
		return duration_opt(c, "lock-timeout", arg, 1, FL_LOCK_TIMEOUT_MAX_MS,
		                    &a->lock_timeout_ms);
	case OPT_STATEMENT_TIMEOUT: /* 0 would mean none, which leaving it out says */
		return duration_opt(c, "statement-timeout", arg, 1, FL_PG_TIMEOUT_MAX_MS,
		                    &a->statement_timeout_ms);
	case OPT_LOCK_WAIT: /* 0: try once */
		return duration_opt(c, "lock-wait", arg, 0, FL_PG_TIMEOUT_MAX_MS,
		                    &c->opts.lock_wait_ms);
	case OPT_RETRY_BUDGET:
		return duration_opt(c, "retry-budget", arg, 0, 24 * INT64_C(3600000),
		                    &a->retry.budget_ms);
	case OPT_CONNECT_TIMEOUT:
		return duration_opt(c, "connect-timeout", arg, 1, FL_LOCK_TIMEOUT_MAX_MS,
		                    &c->opts.conn.connect_timeout_ms);
	case OPT_LIBPQ_ENV:
		c->opts.conn.use_libpq_env = true;
		return CLI_OK;
	case OPT_RETRY_ATTEMPTS:
		return count_opt(c, "retry-attempts", arg, &a->retry.attempts);
	case '?':
		return CLI_USAGE; /* getopt_long has said why */
	}
	return -1;
}

int cli_own_flag(struct cli *c, int opt, const char *arg, void *ctx)
{
	(void)c;
	(void)arg;
	if (opt != OPT_FLAG)
		return -1;
	*(int *)ctx = 1;
	return CLI_OK;
}

int cli_parse(struct cli *c, int argc, char **argv, const struct option *options, cli_own_fn own,
              void *ctx, void (*usage)(void), int max_args)
{
	int opt, code;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "hv", options, NULL)) != -1) {
		if (opt == 'h') {
			usage();
			c->help = true;
			return CLI_OK;
		}
		code = own != NULL ? own(c, opt, optarg, ctx) : -1;
		if (code < 0)
			code = cli_option(c, opt, optarg);
		if (code != CLI_OK)
			return code < 0 ? CLI_USAGE : code;
	}
	c->args = argv + optind;
	c->nargs = argc - optind;
	if (c->nargs > max_args)
		return cli_usage_error(c, "unexpected argument '%s'", argv[optind + max_args]);
	return CLI_OK;
}

int cli_usage_error(const struct cli *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "flotilla %s: ", c->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'flotilla %s --help')\n", c->cmd);
	return CLI_USAGE;
}

int cli_exit_for(enum fl_err rv)
{
	switch (rv) {
	case FL_OK:
		return CLI_OK;
	case FL_EINVAL:
		return CLI_USAGE;
	case FL_EPARSE:
	case FL_EGRAPH:
		return CLI_INVALID;
	case FL_ESQL:
	case FL_ERETRY:
	case FL_ECONNLOST:
	case FL_EFAILED:
	case FL_EVERIFY:
	case FL_ECANCELED:
		return CLI_FAILED;
	case FL_ECHECKSUM:
		return CLI_DRIFT;
	case FL_ECONNECT:
	case FL_EAUTH:
	case FL_EREFUSED:
		return CLI_CONNECT;
	case FL_ELOCKED:
	case FL_ETIMEDOUT:
		return CLI_LOCKED;
	case FL_EBUSY:
		return CLI_BUSY;
	case FL_ENOENT:
	case FL_EDB:
	case FL_EIO:
	case FL_ESTATE:
	case FL_ENOTSUP:
		return CLI_ERROR;
	}
	return CLI_ERROR;
}

/* ---- signals: a dedicated thread turns SIGINT and SIGTERM into a cancel ---- */

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fl_session *watched; /* guarded by watch_mu */
static pthread_t watcher;
static bool watching;
static atomic_int caught;    /* the first SIGINT or SIGTERM, 0 if none */
static atomic_bool stopping; /* a SIGUSR1 now means: watcher, return */
static atomic_bool told;     /* the interruption was reported */

/* SIGINT and SIGTERM, unless ignored when we started (as a shell leaves
 * SIGINT for a background job: the convention is to keep it so), and
 * SIGUSR1, which stops the watcher. */
static void watch_set(sigset_t *set)
{
	static const int sigs[] = {SIGINT, SIGTERM};
	struct sigaction now;

	sigemptyset(set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], NULL, &now) == 0 && now.sa_handler != SIG_IGN)
			sigaddset(set, sigs[i]);
	sigaddset(set, SIGUSR1);
}

static const char *signal_name(int sig)
{
	return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}

static sigset_t watch_sigs; /* what the watcher waits for, set before it starts */

/* No handler runs: the signals stay blocked in every thread and this one
 * takes them with sigwait, so it may lock, log and cancel freely. */
static void *watch_main(void *arg)
{
	int sig;

	(void)arg;
	for (;;) {
		if (sigwait(&watch_sigs, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			if (atomic_load(&stopping))
				return NULL;
			continue;
		}
		if (atomic_load(&caught) == 0) {
			atomic_store(&caught, sig);
			fprintf(stderr, "flotilla: %s: canceling\n", signal_name(sig));
		}
		pthread_mutex_lock(&watch_mu);
		fl_session_cancel(watched);
		pthread_mutex_unlock(&watch_mu);
	}
}

static void watch_start(struct fl_session *s)
{
	watch_set(&watch_sigs);
	/* Blocked here before the thread exists, so every thread created from
	 * now on (libpq makes none, but others might) inherits the mask. */
	pthread_sigmask(SIG_BLOCK, &watch_sigs, NULL);
	pthread_mutex_lock(&watch_mu);
	watched = s;
	pthread_mutex_unlock(&watch_mu);
	atomic_store(&stopping, false);
	watching = pthread_create(&watcher, NULL, watch_main, NULL) == 0;
	if (!watching) /* no one to take them: let them act as before */
		pthread_sigmask(SIG_UNBLOCK, &watch_sigs, NULL);
}

/* Stop the watcher and forget s. The signals stay blocked: one that comes
 * now is ignored, the process is about to exit. */
static void watch_stop(void)
{
	if (watching) {
		atomic_store(&stopping, true);
		pthread_kill(watcher, SIGUSR1);
		pthread_join(watcher, NULL);
		watching = false;
	}
	pthread_mutex_lock(&watch_mu);
	watched = NULL;
	pthread_mutex_unlock(&watch_mu);
}

int cli_fail(enum fl_err rv, const char *errbuf)
{
	const char *what = errbuf != NULL && errbuf[0] != '\0' ? errbuf : fl_strerror(rv);
	int sig = atomic_load(&caught);

	if (sig != 0) {
		fprintf(stderr, "flotilla: interrupted by %s: %s\n", signal_name(sig), what);
		atomic_store(&told, true);
		return CLI_SIGNALED + sig;
	}
	fprintf(stderr, "flotilla: error: %s\n", what);
	return cli_exit_for(rv);
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Prisma keeps its folder in prisma/migrations; take it when ./migrations is absent. */
const char *cli_default_dir(void)
{
	if (!is_dir("migrations") && is_dir("prisma/migrations"))
		return "prisma/migrations";
	return "migrations";
}

int cli_load(struct cli *c, struct fl_migration_set *set)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;

	if (c->dir == NULL)
		c->dir = cli_default_dir();
	rv = fl_migration_set_load(c->dir, set, errbuf);
	/* A missing or unreadable folder or file is an invalid migrations folder. */
	if (rv == FL_ENOENT || rv == FL_EIO)
		rv = FL_EPARSE;
	if (rv != FL_OK)
		return cli_fail(rv, errbuf);
	/* As Prisma: an empty folder is no error ("No migration found"); each
	 * command says what that means for it. */
	return CLI_OK;
}

int cli_open(struct cli *c, const struct fl_migration_set *set, bool lock, struct fl_session **s)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;
	int code;

	*s = NULL;
	if (c->url == NULL || c->url[0] == '\0')
		return cli_usage_error(c, "no database: pass --database-url or set DATABASE_URL");
	c->log.level = fl_log_threshold; /* as -v set it */
	*s = fl_session_new(&c->opts, &c->log);
	watch_start(*s);
	rv = fl_session_open(*s, c->url, set, lock, errbuf);
	if (rv == FL_OK)
		return CLI_OK;
	code = cli_close(c, *s, cli_fail(rv, errbuf));
	*s = NULL;
	return code;
}

int cli_close(struct cli *c, struct fl_session *s, int code)
{
	int sig;

	(void)c;
	if (s == NULL)
		return code;
	fl_session_close(s);
	watch_stop();
	fl_session_free(s);
	if ((sig = atomic_load(&caught)) == 0)
		return code;
	if (!atomic_load(&told))
		fprintf(stderr, "flotilla: interrupted by %s after the work was done\n",
		        signal_name(sig));
	return CLI_SIGNALED + sig;
}

void cli_print_event(const struct fl_event *ev, void *arg)
{
	const char *verb = ev->revert ? "reverted" : "applied";
	(void)arg;

	if (ev->kind == FL_EVENT_START)
		return;
	if (ev->kind == FL_EVENT_FAILED) {
		printf("failed    %s\n", ev->migration->id);
		fflush(stdout);
		return;
	}
	printf("%-9s %s  %.1f ms", verb, ev->migration->id, (double)ev->res->duration_us / 1000.0);
	if (ev->res->attempts > 1)
		printf("  (after %d tries)", ev->res->attempts);
	putchar('\n');
	fflush(stdout);
}
