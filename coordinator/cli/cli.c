#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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
	fl_engine_opts_init(&c->opts);
}

static int duration_opt(struct cli *c, const char *name, const char *arg, int64_t *ms)
{
	char errbuf[FL_ERRBUF_SIZE];

	if (fl_duration_parse(arg, ms, errbuf) != FL_OK)
		return cli_usage_error(c, "--%s: %s", name, errbuf);
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
		return duration_opt(c, "lock-timeout", arg, &a->lock_timeout_ms);
	case OPT_STATEMENT_TIMEOUT:
		return duration_opt(c, "statement-timeout", arg, &a->statement_timeout_ms);
	case OPT_LOCK_WAIT:
		return duration_opt(c, "lock-wait", arg, &c->opts.lock_wait_ms);
	case OPT_RETRY_BUDGET:
		return duration_opt(c, "retry-budget", arg, &a->retry.budget_ms);
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

int cli_fail(enum fl_err rv, const char *errbuf)
{
	fprintf(stderr, "flotilla: error: %s\n",
	        errbuf != NULL && errbuf[0] != '\0' ? errbuf : fl_strerror(rv));
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

int cli_open(struct cli *c, const struct fl_migration_set *set, bool lock, struct fl_session *s)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;

	if (c->url == NULL || c->url[0] == '\0')
		return cli_usage_error(c, "no database: pass --database-url or set DATABASE_URL");
	rv = fl_session_open(s, c->url, set, &c->opts, lock, errbuf);
	return rv == FL_OK ? CLI_OK : cli_fail(rv, errbuf);
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
