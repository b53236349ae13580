/* flotilla fingerprint: a hash of the schema, to spot drift between databases. */
#include <stdio.h>

#include "cli.h"

static void usage(void)
{
	printf("usage: flotilla fingerprint [--dump] [--json] [options]\n\n"
	       "Print the SHA-256 of a canonical dump of the schema's catalog (tables,\n"
	       "columns, types, defaults, constraints, indexes, enums, sequences, views,\n"
	       "functions, triggers; history tables excluded). Databases with the same\n"
	       "history and no manual changes have the same fingerprint.\n\n"
	       "  --dump                 print the canonical dump the hash is taken over\n"
	       "  --json                 machine-readable output\n"
	       "  --database-url URL     PostgreSQL URL (default: $DATABASE_URL)\n");
}

int cmd_fingerprint(int argc, char **argv)
{
	static const struct option options[] = {CLI_DB_OPTIONS,
	                                        {"json", no_argument, NULL, OPT_JSON},
	                                        {"dump", no_argument, NULL, OPT_FLAG},
	                                        {0}};
	static const struct fl_migration_set no_migrations = {0};
	char errbuf[FL_ERRBUF_SIZE] = "", hex[FL_CHECKSUM_HEX_LEN + 1];
	struct fl_buf dump = FL_BUF_INIT;
	struct fl_session *s;
	struct cli c;
	enum fl_err rv;
	int code, want_dump = 0;

	cli_init(&c, "fingerprint");
	if ((code = cli_parse(&c, argc, argv, options, cli_own_flag, &want_dump, usage, 0)) !=
	        CLI_OK ||
	    c.help)
		return code;
	if ((code = cli_open(&c, &no_migrations, false, &s)) != CLI_OK)
		return code;
	rv = fl_session_fingerprint(s, want_dump ? &dump : NULL, hex, errbuf);
	if (rv != FL_OK)
		code = cli_fail(rv, errbuf);
	else if (c.json)
		printf("{\"fingerprint\":\"%s\"}\n", hex);
	else if (want_dump)
		printf("%s", fl_buf_str(&dump));
	else
		printf("%s\n", hex);
	fl_buf_fini(&dump);
	return cli_close(&c, s, code);
}
