/* flotilla lint: flag dangerous changes, and say which migrations are
 * backward-compatible (expand) and which break running code (contract). */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "json.h"
#include "lint.h"

static void usage(void)
{
	printf("usage: flotilla lint [ID...] [--json] [--rules] [--dir DIR]\n\n"
	       "Check migrations (all, or the IDs given) with rules on PostgreSQL's parse\n"
	       "tree, and classify each as expand (backward-compatible) or contract\n"
	       "(breaking). Exits 8 when a rule of severity error fires.\n\n"
	       "  --json                 machine-readable output\n"
	       "  --rules                list the rules and what each means\n"
	       "  --dir DIR              migrations folder (default: ./migrations, else\n"
	       "                         ./prisma/migrations)\n");
}

static void print_rules(void)
{
	size_t n;
	const struct fl_lint_rule *rules = fl_lint_rules(&n);

	for (size_t i = 0; i < n; i++)
		printf("%-34s %-8s %-9s %s\n", rules[i].id,
		       fl_lint_severity_name(rules[i].severity),
		       rules[i].breaking ? "breaking" : "", rules[i].summary);
}

static bool wanted(const struct cli *c, const char *id)
{
	if (c->nargs == 0)
		return true;
	for (int i = 0; i < c->nargs; i++)
		if (strcmp(c->args[i], id) == 0)
			return true;
	return false;
}

static void report_text(const struct fl_migration *m, const struct fl_lint_report *r)
{
	for (size_t i = 0; i < r->count; i++) {
		const struct fl_lint_finding *f = &r->findings[i];

		if (f->line > 0)
			printf("%s/%s:%d: ", m->path, f->file, f->line);
		else
			printf("%s: ", m->path);
		printf("%s: %s: %s\n", fl_lint_severity_name(f->severity), f->rule, f->message);
	}
	printf("%s: %s\n", m->id,
	       r->breaking ? "contract (breaking)" : "expand (backward-compatible)");
}

static void report_json(struct fl_buf *out, const struct fl_migration *m,
                        const struct fl_lint_report *r)
{
	fl_buf_puts(out, out->len > 1 ? ",{\"id\":" : "{\"id\":");
	fl_json_string(out, m->id);
	fl_buf_printf(out, ",\"breaking\":%s,\"phase\":\"%s\",\"findings\":[",
	              r->breaking ? "true" : "false", r->breaking ? "contract" : "expand");
	for (size_t i = 0; i < r->count; i++) {
		const struct fl_lint_finding *f = &r->findings[i];

		fl_buf_printf(out,
		              "%s{\"rule\":\"%s\",\"severity\":\"%s\",\"file\":\"%s\",\"line\":%d,"
		              "\"message\":",
		              i ? "," : "", f->rule, fl_lint_severity_name(f->severity), f->file,
		              f->line);
		fl_json_string(out, f->message);
		fl_buf_puts(out, "}");
	}
	fl_buf_puts(out, "]}");
}

int cmd_lint(int argc, char **argv)
{
	static const struct option options[] = {CLI_DIR_OPTIONS,
	                                        {"json", no_argument, NULL, OPT_JSON},
	                                        {"rules", no_argument, NULL, OPT_FLAG},
	                                        {0}};
	struct fl_migration_set set = {0};
	struct fl_buf json = FL_BUF_INIT;
	size_t errors = 0, warnings = 0, linted = 0;
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct cli c;
	int code, rules = 0;

	cli_init(&c, "lint");
	if ((code = cli_parse(&c, argc, argv, options, cli_own_flag, &rules, usage, 1 << 20)) !=
	        CLI_OK ||
	    c.help)
		return code;
	if (rules) {
		print_rules();
		return CLI_OK;
	}
	if ((code = cli_load(&c, &set)) != CLI_OK)
		return code;
	for (int i = 0; i < c.nargs; i++)
		if (fl_migration_set_find(&set, c.args[i]) == NULL) {
			code = cli_usage_error(&c, "unknown migration '%s'", c.args[i]);
			goto out;
		}
	fl_buf_puts(&json, "[");
	for (size_t i = 0; i < set.count; i++) {
		const struct fl_migration *m = &set.items[i];
		struct fl_lint_report r;
		enum fl_err rv;

		if (!wanted(&c, m->id))
			continue;
		if ((rv = fl_lint_migration(m, &r, errbuf)) != FL_OK) {
			fl_err_prefix(errbuf, "cannot lint '%s'", m->id);
			code = cli_fail(rv, errbuf);
			goto out;
		}
		if (c.json)
			report_json(&json, m, &r);
		else
			report_text(m, &r);
		errors += r.n_errors;
		warnings += r.n_warnings;
		linted++;
		fl_lint_report_fini(&r);
	}
	if (c.json)
		printf("{\"migrations\":%s],\"errors\":%zu,\"warnings\":%zu}\n", fl_buf_str(&json),
		       errors, warnings);
	else
		printf("%zu migration%s linted: %zu error%s, %zu warning%s\n", linted,
		       linted == 1 ? "" : "s", errors, errors == 1 ? "" : "s", warnings,
		       warnings == 1 ? "" : "s");
	code = errors > 0 ? CLI_LINT : CLI_OK;
out:
	fl_buf_fini(&json);
	fl_migration_set_fini(&set);
	return code;
}
