/*
 * flotilla tenant show ID: one tenant as the coordinator knows it: where it
 * is, its migration history as its agent last reported it, failed
 * migrations blocking it, and its latest reports (per migration and health
 * check), newest first.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "duration.h"
#include "wire.h"

enum {
	OPT_REPORTS = OPT_ADMIN_FIRST_FREE,
	OPT_TENANT_JSON,
};

struct args {
	struct cli_admin adm;
	uint32_t reports;
};

static void usage(void)
{
	printf("usage: flotilla tenant show ID [--reports N] [--json] [options]\n\n"
	       "One tenant: its state, labels, agent, migration history as last reported,\n"
	       "failed migrations, and its latest reports with per-migration results and\n"
	       "health checks.\n\n"
	       "  --reports N            the latest N reports (default: the coordinator's)\n"
	       "  --json                 machine-readable output\n" CLI_ADMIN_HELP);
}

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct args *a = ctx;
	int code = cli_admin_option(&a->adm, c, opt, arg);

	if (code >= 0)
		return code;
	switch (opt) {
	case OPT_REPORTS: {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(arg, &end, 10);
		if (errno || *arg < '0' || *arg > '9' || *end != '\0' || v > 10000)
			return cli_usage_error(c, "--reports: expected 0 to 10000, got '%s'", arg);
		a->reports = (uint32_t)v;
		return CLI_OK;
	}
	case OPT_TENANT_JSON:
		c->json = true;
		return CLI_OK;
	}
	return -1;
}

static const char *outcome(int v, char *b)
{
	return cli_enum_name(&flotilla__v1__outcome__descriptor, v, b, CLI_ENUM_NAME_MAX);
}

static const char *work(int v, char *b)
{
	return cli_enum_name(&flotilla__v1__work_kind__descriptor, v, b, CLI_ENUM_NAME_MAX);
}

static void show_json(const Flotilla__V1__TenantShowResponse *t)
{
	struct jw w;

	jw_init(&w);
	jr_tenant_show(&w, t);
	jw_print(&w);
	jw_fini(&w);
}

static const char *took(int64_t from, int64_t to, char *buf, size_t n)
{
	if (from <= 0 || to < from)
		snprintf(buf, n, "-");
	else
		fl_duration_format(to - from, buf, (unsigned)n);
	return buf;
}

static void show_text(const Flotilla__V1__TenantShowResponse *t)
{
	const Flotilla__V1__TenantStatus *s = t->tenant;
	char b[CLI_ENUM_NAME_MAX], labels[256], tm[32], d[32], q[512];
	int64_t now = fl_wall_ms();

	printf("tenant %s\n", s->tenant_id);
	printf("  agent        %s, database %s%s%s\n", *s->agent_id ? s->agent_id : "-",
	       *s->database ? s->database : "-", *s->schema ? ", schema " : "", s->schema);
	printf("  labels       %s\n",
	       cli_labels_text(s->labels, s->n_labels, labels, sizeof(labels)));
	printf("  state        %s%s%s\n",
	       cli_enum_name(&flotilla__v1__tenant_state__descriptor, s->state, b, sizeof(b)),
	       *s->rollout_id ? ", in rollout " : "", s->rollout_id);
	printf("  head         %s (%u applied)\n",
	       *s->head_migration_id ? s->head_migration_id : "-", s->applied_count);
	printf("  fingerprint  %s%s\n", *s->fingerprint ? s->fingerprint : "-",
	       s->drifted ? "  DRIFTED from its version's majority" : "");
	if (s->external_changes)
		printf("  note         its history has migrations no flotilla rollout applied\n");
	if (*s->last_error) {
		fl_err_quote(q, sizeof(q), s->last_error, strlen(s->last_error));
		printf("  last error   %s\n", q);
	}
	printf("  updated      %s\n", cli_ago(s->updated_at_ms, now, tm, sizeof(tm)));
	printf("history (%zu applied):\n", t->n_applied);
	for (size_t i = 0; i < t->n_applied; i++)
		printf("  %-44s %s  %s\n", t->applied[i]->id,
		       cli_time(t->applied[i]->finished_at_ms, tm, sizeof(tm)),
		       took(t->applied[i]->started_at_ms, t->applied[i]->finished_at_ms, d,
		            sizeof(d)));
	if (t->n_failed > 0) {
		printf("failed, blocking deploys:\n");
		for (size_t i = 0; i < t->n_failed; i++) {
			fl_err_quote(q, sizeof(q), t->failed[i]->logs, strlen(t->failed[i]->logs));
			printf("  %-44s %s  %u step%s committed  %s\n", t->failed[i]->id,
			       cli_time(t->failed[i]->started_at_ms, tm, sizeof(tm)),
			       t->failed[i]->applied_steps_count,
			       t->failed[i]->applied_steps_count == 1 ? "" : "s", q);
		}
	}
	printf("reports (%zu, newest first):\n", t->n_reports);
	for (size_t i = 0; i < t->n_reports; i++) {
		const Flotilla__V1__Report *r = t->reports[i]->report;

		fl_err_quote(q, sizeof(q), r->message, strlen(r->message));
		printf("  %s  %s #%" PRIu64 " %s: %s  %s%s%s\n",
		       cli_time(t->reports[i]->received_at_ms, tm, sizeof(tm)), r->rollout_id,
		       r->assignment_id, work(r->kind, b), outcome(r->outcome, labels),
		       took(r->started_at_ms, r->finished_at_ms, d, sizeof(d)), *q ? "  " : "", q);
		for (size_t k = 0; k < r->n_migrations; k++) {
			const Flotilla__V1__MigrationResult *m = r->migrations[k];

			fl_err_quote(q, sizeof(q), m->message, strlen(m->message));
			printf("      %-44s %s  %s%s%s%s%s\n", m->migration_id,
			       outcome(m->outcome, b),
			       took(m->started_at_ms, m->finished_at_ms, d, sizeof(d)),
			       *m->sqlstate ? "  SQLSTATE " : "", m->sqlstate, *q ? "  " : "", q);
		}
		for (size_t k = 0; k < r->n_health; k++) {
			const Flotilla__V1__HealthResult *h = r->health[k];

			fl_err_quote(q, sizeof(q), h->message, strlen(h->message));
			printf("      health %-37s %s  %ums%s%s\n", h->name,
			       h->ok             ? "ok"
			       : h->inconclusive ? "inconclusive"
			                         : "FAILED",
			       h->duration_ms, *q ? "  " : "", q);
		}
	}
}

int cmd_tenant(int argc, char **argv)
{
	static const struct option options[] = {CLI_ADMIN_OPTIONS,
	                                        CLI_ADMIN_KEY_OPTION,
	                                        {"reports", required_argument, NULL, OPT_REPORTS},
	                                        {"json", no_argument, NULL, OPT_TENANT_JSON},
	                                        {0}};
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__TenantShowRequest ts = FLOTILLA__V1__TENANT_SHOW_REQUEST__INIT;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	struct args a;
	struct cli c;
	int code;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage();
		return CLI_OK;
	}
	if (argc < 2 || strcmp(argv[1], "show") != 0) {
		if (argc >= 2 && argv[1][0] != '-')
			fprintf(stderr, "flotilla tenant: unknown command '%s'\n", argv[1]);
		usage();
		return CLI_USAGE;
	}
	memset(&a, 0, sizeof(a));
	cli_init(&c, "tenant show");
	cli_admin_init(&a.adm, "tenant show");
	if ((code = cli_parse(&c, argc - 1, argv + 1, options, own, &a, usage, 1)) != CLI_OK ||
	    c.help)
		goto out;
	if (c.nargs != 1) {
		code = cli_usage_error(&c, "expected the tenant ID");
		goto out;
	}
	if ((code = cli_admin_connect(&a.adm, &c)) != CLI_OK)
		goto out;
	ts.tenant_id = c.args[0];
	ts.report_limit = a.reports;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_TENANT_SHOW;
	req.tenant_show = &ts;
	if ((code = cli_admin_call(&a.adm, &req, false, &reply, &resp)) != CLI_OK)
		goto out;
	if (c.json)
		show_json(resp->tenant_show);
	else
		show_text(resp->tenant_show);
	code = CLI_OK;
out:
	fl_wire_free(reply);
	cli_admin_fini(&a.adm);
	return code;
}
