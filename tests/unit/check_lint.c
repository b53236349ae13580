/*
 * The linter, data-driven: each folder under $FL_TEST_DATA/lint holds a
 * migration.sql, an optional down.sql and an `expect` file:
 *
 *   no-transaction         the migration carries -- flotilla:no-transaction
 *   phase expand|contract  the migration declares that phase
 *   breaking yes|no        the report's classification
 *   <rule-id> <line>       every finding, in report order (line 0: whole file)
 *
 * Blank lines and lines starting with '#' are ignored. The migration is built
 * by hand, not loaded, so these tests depend on nothing but the linter.
 */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "lint.h"

#define CASES_MAX 1000

static char *cases[CASES_MAX]; /* folder names, sorted */
static size_t n_cases;
static char data_dir[4096];

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_cases(void)
{
	const char *root = getenv("FL_TEST_DATA");
	DIR *d;
	struct dirent *e;

	snprintf(data_dir, sizeof(data_dir), "%s/lint", root ? root : "tests/data");
	d = opendir(data_dir);
	if (d == NULL) {
		fprintf(stderr, "check_lint: cannot open '%s': %s\n", data_dir, strerror(errno));
		exit(EXIT_FAILURE);
	}
	while ((e = readdir(d)) != NULL && n_cases < CASES_MAX)
		if (e->d_name[0] != '.')
			cases[n_cases++] = strdup(e->d_name);
	closedir(d);
	qsort(cases, n_cases, sizeof(cases[0]), cmp_str);
}

static void free_cases(void)
{
	for (size_t i = 0; i < n_cases; i++)
		free(cases[i]);
}

static void dump(const char *name, const struct fl_lint_report *r)
{
	fprintf(stderr, "%s: got %zu findings:\n", name, r->count);
	for (size_t i = 0; i < r->count; i++)
		fprintf(stderr, "  %s %d (%s:%s) %s\n", r->findings[i].rule, r->findings[i].line,
		        r->findings[i].file, fl_lint_severity_name(r->findings[i].severity),
		        r->findings[i].message);
}

START_TEST(data_case)
{
	const char *name = cases[_i];
	char path[4200], errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_migration m = {0};
	struct fl_lint_report r;
	char *expect, *nl;
	size_t next = 0;
	int want_breaking = -1;

	snprintf(path, sizeof(path), "%s/%s/migration.sql", data_dir, name);
	m.sql = fl_test_read_file(path, &m.sql_len);
	ck_assert_msg(m.sql != NULL, "cannot read '%s'", path);
	snprintf(path, sizeof(path), "%s/%s/down.sql", data_dir, name);
	m.down_sql = fl_test_read_file(path, &m.down_len);
	snprintf(path, sizeof(path), "%s/%s/expect", data_dir, name);
	expect = fl_test_read_file(path, NULL);
	ck_assert_msg(expect != NULL, "cannot read '%s'", path);
	m.id = (char *)name;
	m.lock_timeout_ms = m.statement_timeout_ms = -1;

	/* Options first: they change what the linter sees. */
	for (char *ln = expect; ln != NULL && *ln != '\0'; ln = nl ? nl + 1 : NULL) {
		nl = strchr(ln, '\n');
		if (strncmp(ln, "no-transaction", 14) == 0 && (ln[14] == '\n' || ln[14] == '\0'))
			m.no_transaction = true;
		else if (strncmp(ln, "phase expand", 12) == 0)
			m.phase = FL_PHASE_EXPAND;
		else if (strncmp(ln, "phase contract", 14) == 0)
			m.phase = FL_PHASE_CONTRACT;
	}

	ck_assert_msg(fl_lint_migration(&m, &r, errbuf) == FL_OK, "%s: %s", name, errbuf);
	for (char *ln = expect; ln != NULL && *ln != '\0'; ln = nl ? nl + 1 : NULL) {
		char rule[64];
		int line;

		if ((nl = strchr(ln, '\n')) != NULL)
			*nl = '\0';
		if (ln[0] == '#' || ln[0] == '\0' || strcmp(ln, "no-transaction") == 0 ||
		    strncmp(ln, "phase ", 6) == 0)
			continue;
		if (strncmp(ln, "breaking ", 9) == 0) {
			want_breaking = strcmp(ln + 9, "yes") == 0;
			continue;
		}
		ck_assert_msg(sscanf(ln, "%63s %d", rule, &line) == 2, "%s: bad line '%s'", name,
		              ln);
		if (next >= r.count || strcmp(r.findings[next].rule, rule) != 0 ||
		    r.findings[next].line != line) {
			dump(name, &r);
			ck_abort_msg("%s: finding %zu: want %s at line %d", name, next + 1, rule,
			             line);
		}
		next++;
	}
	if (next != r.count) {
		dump(name, &r);
		ck_abort_msg("%s: %zu findings, want %zu", name, r.count, next);
	}
	ck_assert_msg(want_breaking >= 0, "%s: expect has no 'breaking' line", name);
	ck_assert_msg(r.breaking == (want_breaking == 1), "%s: breaking is %d", name, r.breaking);

	/* Whatever fired: well-formed, counted, from the rule table. */
	{
		size_t errors = 0, warnings = 0;

		for (size_t i = 0; i < r.count; i++) {
			const struct fl_lint_finding *f = &r.findings[i];
			const struct fl_lint_rule *rule = fl_lint_rule_find(f->rule);

			ck_assert_ptr_nonnull(rule);
			ck_assert_int_eq(f->severity, rule->severity);
			ck_assert_ptr_nonnull(f->message);
			ck_assert_msg(f->message[0] != '\0' &&
			                  !isupper((unsigned char)f->message[0]) &&
			                  strchr(f->message, '\n') == NULL,
			              "%s: message '%s'", name, f->message);
			ck_assert(strcmp(f->file, "migration.sql") == 0 ||
			          strcmp(f->file, "down.sql") == 0);
			ck_assert_int_eq(strcmp(f->file, "down.sql") == 0,
			                 strcmp(f->rule, "down-syntax-error") == 0);
			if (f->severity == FL_LINT_ERROR)
				errors++;
			else
				warnings++;
		}
		ck_assert_uint_eq(r.n_errors, errors);
		ck_assert_uint_eq(r.n_warnings, warnings);
	}
	fl_lint_report_fini(&r);
	ck_assert_ptr_null(r.findings);
	ck_assert_uint_eq(r.count, 0);
	free(m.sql);
	free(m.down_sql);
	free(expect);
}
END_TEST

START_TEST(rule_table)
{
	size_t n;
	const struct fl_lint_rule *rules = fl_lint_rules(&n);
	static const char *const required[] = {
	    "drop-table",
	    "drop-column",
	    "rename",
	    "alter-column-type",
	    "set-not-null",
	    "add-column-not-null-no-default",
	    "create-index-not-concurrently",
	    "concurrently-in-transaction",
	    "foreign-key-not-valid",
	    "ddl-with-dml",
	    "missing-down",
	    "phase-mismatch",
	    "syntax-error",
	    "drop-schema",
	    "drop-index-not-concurrently",
	    "reindex-not-concurrently",
	    "cluster",
	    "vacuum-full",
	    "set-logged",
	    "set-unlogged",
	    "drop-primary-key",
	    "truncate",
	    "delete-without-where",
	    "update-without-where",
	};

	ck_assert_uint_ge(n, sizeof(required) / sizeof(required[0]));
	for (size_t i = 0; i < n; i++) {
		ck_assert_ptr_nonnull(rules[i].id);
		for (const char *p = rules[i].id; *p != '\0'; p++)
			ck_assert_msg(islower((unsigned char)*p) || *p == '-', "id '%s'",
			              rules[i].id);
		ck_assert_ptr_nonnull(rules[i].summary);
		ck_assert(rules[i].summary[0] != '\0');
		ck_assert(rules[i].severity == FL_LINT_WARNING ||
		          rules[i].severity == FL_LINT_ERROR);
		ck_assert_ptr_eq(fl_lint_rule_find(rules[i].id), &rules[i]);
		for (size_t k = 0; k < i; k++)
			ck_assert_str_ne(rules[i].id, rules[k].id);
	}
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		ck_assert_msg(fl_lint_rule_find(required[i]) != NULL, "no rule '%s'", required[i]);
	ck_assert_ptr_null(fl_lint_rule_find("no-such-rule"));
	/* Exactly the brief's set classifies a migration as breaking. */
	ck_assert(fl_lint_rule_find("drop-column")->breaking);
	ck_assert(fl_lint_rule_find("set-not-null")->breaking);
	ck_assert(!fl_lint_rule_find("foreign-key-not-valid")->breaking);
	/* Data gone or a key code relies on gone: contract. Locks and backfills: expand. */
	ck_assert(fl_lint_rule_find("drop-schema")->breaking);
	ck_assert(fl_lint_rule_find("drop-primary-key")->breaking);
	ck_assert(fl_lint_rule_find("truncate")->breaking);
	ck_assert(fl_lint_rule_find("delete-without-where")->breaking);
	ck_assert(!fl_lint_rule_find("update-without-where")->breaking);
	ck_assert(!fl_lint_rule_find("drop-index-not-concurrently")->breaking);
	ck_assert(!fl_lint_rule_find("vacuum-full")->breaking);
	ck_assert_str_eq(fl_lint_severity_name(FL_LINT_ERROR), "error");
	ck_assert_str_eq(fl_lint_severity_name(FL_LINT_WARNING), "warning");
}
END_TEST

/* README.md's lint table has a row for every rule, with its severity and class. */
START_TEST(readme_documents_every_rule)
{
	const char *src = getenv("FL_SOURCE_DIR");
	char path[4096], row[256];
	size_t n;
	const struct fl_lint_rule *rules = fl_lint_rules(&n);
	char *readme;

	snprintf(path, sizeof(path), "%s/README.md", src ? src : ".");
	readme = fl_test_read_file(path, NULL);
	ck_assert_msg(readme != NULL, "cannot read '%s' (set FL_SOURCE_DIR)", path);
	for (size_t i = 0; i < n; i++) {
		snprintf(row, sizeof(row), "| `%s` | %s | %s |", rules[i].id,
		         fl_lint_severity_name(rules[i].severity),
		         rules[i].breaking ? "yes" : "no");
		ck_assert_msg(strstr(readme, row) != NULL, "README.md has no row '%s'", row);
	}
	free(readme);
}
END_TEST

START_TEST(messages_name_the_objects)
{
	struct fl_migration m = {0};
	struct fl_lint_report r;

	m.sql = "ALTER TABLE app.users DROP COLUMN legacy;\n"
	        "ALTER TABLE \"Post\" RENAME COLUMN \"title\" TO \"headline\";\n";
	m.down_sql = "SELECT 1;";
	ck_assert_int_eq(fl_lint_migration(&m, &r, NULL), FL_OK);
	ck_assert_uint_eq(r.count, 2);
	ck_assert_ptr_nonnull(strstr(r.findings[0].message, "'legacy' of 'app.users'"));
	ck_assert_ptr_nonnull(strstr(r.findings[1].message, "'title' of 'Post' to 'headline'"));
	ck_assert_uint_eq(r.n_errors, 2);
	ck_assert(r.breaking);
	fl_lint_report_fini(&r);
	fl_lint_report_fini(NULL);
}
END_TEST

START_TEST(syntax_error_message)
{
	struct fl_migration m = {0};
	struct fl_lint_report r;

	m.sql = "SELECT 1;\nSELECT 'unterminated;\n";
	m.down_sql = "SELECT 1;";
	ck_assert_int_eq(fl_lint_migration(&m, &r, NULL), FL_OK);
	ck_assert_uint_eq(r.count, 1);
	ck_assert_str_eq(r.findings[0].rule, "syntax-error");
	ck_assert_int_eq(r.findings[0].line, 2);
	ck_assert_str_eq(r.findings[0].message,
	                 "unterminated quoted string at or near \"'unterminated;\\n\"");
	fl_lint_report_fini(&r);
}
END_TEST

static Suite *lint_suite(void)
{
	Suite *s = suite_create("lint");
	TCase *data = tcase_create("data");
	TCase *api = tcase_create("api");

	tcase_add_loop_test(data, data_case, 0, (int)n_cases);
	suite_add_tcase(s, data);
	tcase_add_test(api, rule_table);
	tcase_add_test(api, readme_documents_every_rule);
	tcase_add_test(api, messages_name_the_objects);
	tcase_add_test(api, syntax_error_message);
	suite_add_tcase(s, api);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	load_cases();
	if (n_cases == 0) {
		fprintf(stderr, "check_lint: no cases in '%s'\n", data_dir);
		return EXIT_FAILURE;
	}
	sr = srunner_create(lint_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free_cases();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
