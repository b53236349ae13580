/* flotilla resolve: `prisma migrate resolve`, for a migration that failed. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "resolve.h"

static void usage(void)
{
	printf("usage: flotilla resolve (--applied ID | --rolled-back ID) [options]\n\n"
	       "Record by hand what became of a failed migration, as 'prisma migrate\n"
	       "resolve' does: --applied when you completed it yourself (it will not run\n"
	       "again), --rolled-back when you undid it (deploy will run it again).\n\n"
	       "  --applied ID           mark ID applied\n"
	       "  --rolled-back ID       mark ID's failed attempt rolled back\n"
	       "  --force                with --applied: confirm that a no-transaction migration\n"
	       "                         that failed partway was completed by hand\n" CLI_DB_HELP);
}

struct request {
	const char *applied;
	const char *rolled_back;
	bool force;
};

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct request *r = ctx;
	(void)c;

	if (opt == 'a')
		r->applied = arg;
	else if (opt == 'r')
		r->rolled_back = arg;
	else if (opt == 'f')
		r->force = true;
	else
		return -1;
	return CLI_OK;
}

int cmd_resolve(int argc, char **argv)
{
	static const struct option options[] = {CLI_DB_OPTIONS,
	                                        {"applied", required_argument, NULL, 'a'},
	                                        {"rolled-back", required_argument, NULL, 'r'},
	                                        {"force", no_argument, NULL, 'f'},
	                                        {0}};
	struct fl_migration_set set = {0};
	struct request req = {NULL, NULL, false};
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_session *s;
	struct cli c;
	enum fl_err rv;
	int code;

	cli_init(&c, "resolve");
	if ((code = cli_parse(&c, argc, argv, options, own, &req, usage, 0)) != CLI_OK || c.help)
		return code;
	if ((req.applied == NULL) == (req.rolled_back == NULL))
		return cli_usage_error(&c, "give exactly one of --applied ID or --rolled-back ID");
	if (req.force && req.applied == NULL)
		return cli_usage_error(&c, "--force goes with --applied ID");
	if ((code = cli_load(&c, &set)) != CLI_OK)
		return code;
	if ((code = cli_open(&c, &set, true, &s)) != CLI_OK)
		goto out;
	if (req.applied != NULL)
		rv = fl_resolve_applied(s, req.applied, req.force, errbuf);
	else
		rv = fl_resolve_rolled_back(s, req.rolled_back, errbuf);
	if (rv != FL_OK)
		code = cli_fail(rv, errbuf);
	else
		printf("migration '%s' marked %s\n", req.applied ? req.applied : req.rolled_back,
		       req.applied ? "applied" : "rolled back");
	code = cli_close(&c, s, code);
out:
	fl_migration_set_fini(&set);
	return code;
}
