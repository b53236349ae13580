/* flotilla graph: the migration graph in apply order, as text, dot or JSON. */
#include <stdio.h>

#include "buf.h"
#include "cli.h"
#include "graph.h"
#include "json.h"

static void usage(void)
{
	printf("usage: flotilla graph [--dot | --json] [--dir DIR]\n\n"
	       "Show the migrations in apply order with their dependencies.\n\n"
	       "  --dot                  Graphviz output ('flotilla graph --dot | dot -Tsvg')\n"
	       "  --json                 machine-readable: each migration with the ids it\n"
	       "                         depends on and its directives\n"
	       "  --dir DIR              migrations folder (default: ./migrations, else\n"
	       "                         ./prisma/migrations)\n");
}

static const char *phase_name(enum fl_phase phase)
{
	switch (phase) {
	case FL_PHASE_EXPAND:
		return "expand";
	case FL_PHASE_CONTRACT:
		return "contract";
	case FL_PHASE_UNSET:
		break;
	}
	return NULL;
}

static void render_json(const struct fl_migration_set *set, struct fl_buf *out)
{
	fl_buf_puts(out, "{\"migrations\":[");
	for (size_t i = 0; i < set->count; i++) {
		const struct fl_migration *m = &set->items[i];
		const char *phase = phase_name(m->phase);

		fl_buf_puts(out, i ? ",{\"id\":" : "{\"id\":");
		fl_json_string(out, m->id);
		fl_buf_printf(out, ",\"checksum\":\"%s\",\"depends_on\":[", m->checksum);
		for (size_t d = 0; d < m->n_deps; d++) {
			if (d)
				fl_buf_puts(out, ",");
			fl_json_string(out, set->items[m->deps[d]].id);
		}
		fl_buf_printf(out, "],\"no_transaction\":%s,\"has_down\":%s,\"has_verify\":%s",
		              m->no_transaction ? "true" : "false", m->down_sql ? "true" : "false",
		              m->verify_sql ? "true" : "false");
		fl_buf_puts(out, ",\"phase\":");
		if (phase)
			fl_json_string(out, phase);
		else
			fl_buf_puts(out, "null");
		fl_buf_puts(out, "}");
	}
	fl_buf_puts(out, "]}\n");
}

int cmd_graph(int argc, char **argv)
{
	static const struct option options[] = {CLI_DIR_OPTIONS,
	                                        {"dot", no_argument, NULL, OPT_FLAG},
	                                        {"json", no_argument, NULL, OPT_JSON},
	                                        {0}};
	struct fl_migration_set set = {0};
	struct fl_buf out = FL_BUF_INIT;
	struct cli c;
	int code, dot = 0;

	cli_init(&c, "graph");
	if ((code = cli_parse(&c, argc, argv, options, cli_own_flag, &dot, usage, 0)) != CLI_OK ||
	    c.help)
		return code;
	if (dot && c.json)
		return cli_usage_error(&c, "--dot and --json exclude each other");
	if ((code = cli_load(&c, &set)) != CLI_OK)
		return code;
	if (c.json)
		render_json(&set, &out);
	else
		fl_graph_render(&set, dot, &out);
	fputs(fl_buf_str(&out), stdout);
	fl_buf_fini(&out);
	fl_migration_set_fini(&set);
	return CLI_OK;
}
