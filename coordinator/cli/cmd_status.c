/* flotilla status: where each migration stands on one database. Read-only:
 * takes no lock and creates nothing, so it never waits behind a deploy. */
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "cli.h"
#include "json.h"

static void usage(void)
{
	printf("usage: flotilla status [--json] [options]\n\n"
	       "Show applied, pending, failed and modified migrations, and migrations\n"
	       "applied to the database but missing from the folder. A migration started\n"
	       "but not finished is 'running' while another session holds the migration\n"
	       "lock (a deploy is at it), 'failed' otherwise. Exits 0 when the database\n"
	       "is up to date, 9 when migrations are pending, 11 when one is running, 4\n"
	       "when one failed, 5 when one was modified after it was applied or is\n"
	       "missing locally.\n\n"
	       "  --json                 machine-readable output\n" CLI_DB_HELP);
}

static void json_field(struct fl_buf *out, const char *key, const char *value)
{
	fl_buf_printf(out, ",\"%s\":", key);
	if (value == NULL)
		fl_buf_puts(out, "null");
	else
		fl_json_string(out, value);
}

static void print_json(const struct cli *c, const struct fl_session *s)
{
	const struct fl_plan *p = fl_session_plan(s);
	struct fl_buf out = FL_BUF_INIT;

	fl_buf_puts(&out, "{\"dir\":");
	fl_json_string(&out, c->dir);
	fl_buf_printf(&out, ",\"history_table\":%s,\"migrations\":[",
	              fl_session_history(s)->table_exists ? "true" : "false");
	for (size_t i = 0; i < p->count; i++) {
		const struct fl_plan_entry *e = &p->entries[i];

		fl_buf_puts(&out, i ? ",{\"id\":" : "{\"id\":");
		fl_json_string(&out, e->migration->id);
		json_field(&out, "state", fl_mstate_name(e->state));
		json_field(&out, "checksum", e->migration->checksum);
		json_field(&out, "recorded_checksum", e->row ? e->row->checksum : NULL);
		json_field(&out, "started_at", e->row ? e->row->started_at : NULL);
		json_field(&out, "finished_at", e->row ? e->row->finished_at : NULL);
		json_field(&out, "logs", e->row ? e->row->logs : NULL);
		fl_buf_printf(&out, ",\"applied_steps_count\":%d}",
		              e->row ? e->row->applied_steps_count : 0);
	}
	fl_buf_puts(&out, "],\"missing\":[");
	for (size_t i = 0; i < p->n_missing; i++) {
		fl_buf_puts(&out, i ? ",{\"id\":" : "{\"id\":");
		fl_json_string(&out, p->missing[i]->migration_name);
		json_field(&out, "finished_at", p->missing[i]->finished_at);
		fl_buf_puts(&out, "}");
	}
	/* Rows of migrations not in the folder that a deploy runs now. */
	fl_buf_puts(&out, "],\"running_elsewhere\":[");
	if (p->foreign_running != NULL) {
		fl_buf_puts(&out, "{\"id\":");
		fl_json_string(&out, p->foreign_running->migration_name);
		json_field(&out, "started_at", p->foreign_running->started_at);
		fl_buf_puts(&out, "}");
	}
	fl_buf_printf(&out,
	              "],\"summary\":{\"applied\":%zu,\"pending\":%zu,\"failed\":%zu,"
	              "\"modified\":%zu,\"missing\":%zu,\"running\":%zu}}\n",
	              p->n_applied, p->n_pending, p->n_failed + p->n_foreign_failed, p->n_modified,
	              p->n_missing, p->n_running);
	fputs(fl_buf_str(&out), stdout);
	fl_buf_fini(&out);
}

static void print_text(const struct cli *c, const struct fl_session *s)
{
	const struct fl_plan *p = fl_session_plan(s);

	printf("%zu migrations in '%s'\n", p->count, c->dir);
	for (size_t i = 0; i < p->count; i++) {
		const struct fl_plan_entry *e = &p->entries[i];

		printf("  %-9s %s", fl_mstate_name(e->state), e->migration->id);
		if (e->state == FL_MSTATE_FAILED && e->row->logs != NULL) {
			const char *l = e->row->logs;
			int n = 0;
			while (l[n] && l[n] != '\n' && n < 160)
				n++;
			printf("  -- %.*s", n, l);
		}
		if (e->state == FL_MSTATE_RUNNING)
			printf("  -- started %s; a deploy holds the migration lock",
			       e->row->started_at);
		putchar('\n');
	}
	for (size_t i = 0; i < p->n_missing; i++)
		printf("  %-9s %s  -- applied to the database, not in the folder\n", "missing",
		       p->missing[i]->migration_name);
	for (size_t i = 0; i < p->n_foreign_failed; i++)
		printf("  %-9s %s  -- not in the folder\n", "failed",
		       p->foreign_failed[i]->migration_name);
	if (p->foreign_running != NULL)
		printf("  %-9s %s  -- not in the folder; a deploy holds the migration lock\n",
		       "running", p->foreign_running->migration_name);
	printf("%zu applied, %zu pending, %zu failed, %zu modified, %zu missing, %zu running\n",
	       p->n_applied, p->n_pending, p->n_failed + p->n_foreign_failed, p->n_modified,
	       p->n_missing, p->n_running);
	if (p->n_failed + p->n_foreign_failed > 0)
		printf("a failed migration blocks deploy: fix the database, then "
		       "'flotilla resolve --applied ID' or '--rolled-back ID'\n");
	else if (p->n_running > 0)
		printf("a deploy is running: check again when it is done\n");
}

int cmd_status(int argc, char **argv)
{
	static const struct option options[] = {
	    CLI_DB_OPTIONS, {"json", no_argument, NULL, OPT_JSON}, {0}};
	struct fl_migration_set set = {0};
	const struct fl_plan *p;
	struct fl_session *s;
	struct cli c;
	int code;

	cli_init(&c, "status");
	if ((code = cli_parse(&c, argc, argv, options, NULL, NULL, usage, 0)) != CLI_OK || c.help)
		return code;
	if ((code = cli_load(&c, &set)) != CLI_OK)
		return code;
	if ((code = cli_open(&c, &set, false, &s)) != CLI_OK)
		goto out;
	if (c.json)
		print_json(&c, s);
	else
		print_text(&c, s);
	p = fl_session_plan(s);
	if (p->n_failed + p->n_foreign_failed > 0)
		code = CLI_FAILED;
	else if (p->n_modified + p->n_missing > 0)
		code = CLI_DRIFT;
	else if (p->n_running > 0)
		code = CLI_RUNNING;
	else if (p->n_pending > 0)
		code = CLI_PENDING;
	code = cli_close(&c, s, code);
out:
	fl_migration_set_fini(&set);
	return code;
}
