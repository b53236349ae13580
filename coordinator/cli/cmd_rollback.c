/* flotilla rollback: undo applied migrations with their down.sql. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "rollback.h"

static void usage(void)
{
	printf("usage: flotilla rollback (--to ID | --steps N) [options]\n\n"
	       "Run down.sql of applied migrations, newest first, each in its own\n"
	       "transaction with its history rows removed, so that deploy (and Prisma)\n"
	       "see them as not applied. Refused up front, with nothing done, if any of\n"
	       "them lacks down.sql.\n\n"
	       "  --to ID                undo every migration applied after ID\n"
	       "  --steps N              undo the last N applied migrations\n" CLI_DB_HELP
	           CLI_APPLY_HELP);
}

struct request {
	const char *to;
	const char *steps;
};

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct request *r = ctx;
	(void)c;

	if (opt == 't')
		r->to = arg;
	else if (opt == 'n')
		r->steps = arg;
	else
		return -1;
	return CLI_OK;
}

int cmd_rollback(int argc, char **argv)
{
	static const struct option options[] = {CLI_DB_OPTIONS,
	                                        CLI_APPLY_OPTIONS,
	                                        {"to", required_argument, NULL, 't'},
	                                        {"steps", required_argument, NULL, 'n'},
	                                        {0}};
	struct fl_migration_set set = {0};
	struct request req = {NULL, NULL};
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_session *s;
	size_t reverted, steps = 0;
	struct cli c;
	enum fl_err rv;
	int code;

	cli_init(&c, "rollback");
	if ((code = cli_parse(&c, argc, argv, options, own, &req, usage, 0)) != CLI_OK || c.help)
		return code;
	if ((req.to == NULL) == (req.steps == NULL))
		return cli_usage_error(&c, "give exactly one of --to ID or --steps N");
	if (req.steps != NULL) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(req.steps, &end, 10);
		if (errno || *req.steps < '0' || *req.steps > '9' || *end != '\0' || v == 0 ||
		    v > 1000000)
			return cli_usage_error(
			    &c, "--steps: expected a positive whole number, got '%s'", req.steps);
		steps = (size_t)v;
	}
	if ((code = cli_load(&c, &set)) != CLI_OK)
		return code;
	if ((code = cli_open(&c, &set, true, &s)) != CLI_OK)
		goto out;
	fl_session_on_event(s, cli_print_event, NULL);
	rv = fl_rollback(s, req.to, steps, &reverted, errbuf);
	if (rv != FL_OK)
		code = cli_fail(rv, errbuf);
	else if (reverted == 0)
		printf("nothing to roll back\n");
	else
		printf("rolled back %zu migration%s\n", reverted, reverted == 1 ? "" : "s");
	code = cli_close(&c, s, code);
out:
	fl_migration_set_fini(&set);
	return code;
}
