/* flotilla deploy: `prisma migrate deploy`, with safer failure handling. */
#include <stdio.h>

#include "cli.h"
#include "deploy.h"

static void usage(void)
{
	printf("usage: flotilla deploy [--to ID] [options]\n\n"
	       "Apply pending migrations in order, each in its own transaction unless it\n"
	       "manages its own or says '-- flotilla:no-transaction'. Running it again is a\n"
	       "no-op.\n\n"
	       "  --to ID                stop after migration ID\n" CLI_DB_HELP CLI_APPLY_HELP);
}

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	(void)c;
	if (opt != 't')
		return -1;
	*(const char **)ctx = arg;
	return CLI_OK;
}

int cmd_deploy(int argc, char **argv)
{
	static const struct option options[] = {
	    CLI_DB_OPTIONS, CLI_APPLY_OPTIONS, {"to", required_argument, NULL, 't'}, {0}};
	struct fl_migration_set set = {0};
	struct fl_deploy_summary sum;
	struct fl_session *s;
	char errbuf[FL_ERRBUF_SIZE] = "";
	const char *to = NULL;
	struct cli c;
	enum fl_err rv;
	int code;

	cli_init(&c, "deploy");
	if ((code = cli_parse(&c, argc, argv, options, own, &to, usage, 0)) != CLI_OK || c.help)
		return code;
	if ((code = cli_load(&c, &set)) != CLI_OK)
		return code;
	if (set.count == 0)
		printf("no migration found in '%s'\n", c.dir); /* as Prisma: not an error */
	if ((code = cli_open(&c, &set, true, &s)) != CLI_OK)
		goto out;
	fl_session_on_event(s, cli_print_event, NULL);
	rv = fl_deploy(s, to, &sum, errbuf);
	if (rv != FL_OK) {
		code = cli_fail(rv, errbuf);
	} else if (sum.applied == 0) {
		printf("nothing to deploy: %zu migrations applied, database is up to date%s\n",
		       fl_session_plan(s)->n_applied, sum.pending ? " up to the target" : "");
	} else {
		printf("deployed %zu migration%s in %.1f ms\n", sum.applied,
		       sum.applied == 1 ? "" : "s", (double)sum.duration_us / 1000.0);
	}
	code = cli_close(&c, s, code);
out:
	fl_migration_set_fini(&set);
	return code;
}
