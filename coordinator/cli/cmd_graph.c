/* flotilla graph: the migration graph in apply order, or as Graphviz dot. */
#include <stdio.h>

#include "buf.h"
#include "cli.h"
#include "graph.h"

static void usage(void)
{
	printf("usage: flotilla graph [--dot] [--dir DIR]\n\n"
	       "Show the migrations in apply order with their dependencies.\n\n"
	       "  --dot                  Graphviz output ('flotilla graph --dot | dot -Tsvg')\n"
	       "  --dir DIR              migrations folder (default: ./migrations)\n");
}

int cmd_graph(int argc, char **argv)
{
	static const struct option options[] = {
	    CLI_DIR_OPTIONS, {"dot", no_argument, NULL, OPT_FLAG}, {0}};
	struct fl_migration_set set = {0};
	struct fl_buf out = FL_BUF_INIT;
	struct cli c;
	int code, dot = 0;

	cli_init(&c, "graph");
	if ((code = cli_parse(&c, argc, argv, options, cli_own_flag, &dot, usage, 0)) != CLI_OK ||
	    c.help)
		return code;
	if ((code = cli_load(&c, &set)) != CLI_OK)
		return code;
	fl_graph_render(&set, dot, &out);
	fputs(fl_buf_str(&out), stdout);
	fl_buf_fini(&out);
	fl_migration_set_fini(&set);
	return CLI_OK;
}
