/*
 * flotilla fleet status|drift: the whole fleet as the coordinator sees it
 * (every tenant's history as its agent last reported it). status reads
 * every page and shows tenants by state and by version; drift shows
 * tenants at the same version whose schemas differ.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "mem.h"
#include "wire.h"

#define PAGE_DEFAULT 1000

enum {
	OPT_SELECT = OPT_ADMIN_FIRST_FREE,
	OPT_STATE,
	OPT_LIST,
	OPT_LIMIT,
	OPT_FLEET_JSON,
};

struct args {
	struct cli_admin adm;
	struct cli_labels select;
	int states[16];
	size_t n_states;
	bool list;
	uint32_t limit;
	bool gave_list, gave_state;
};

static void usage_status(void)
{
	printf("usage: flotilla fleet status [--select k=v,...] [--state STATE...] [--list]\n"
	       "                             [--json] [options]\n\n"
	       "Every tenant the coordinator knows, as its agent last reported it: counts by\n"
	       "state and by version (head migration); --list shows each tenant.\n\n"
	       "  --select k=v,...       only tenants carrying every label\n"
	       "  --state STATE          only tenants in this state (repeatable): idle, queued,\n"
	       "                         running, baking, failed, rolled-back, unreachable\n"
	       "  --list                 one line per tenant\n"
	       "  --limit N              tenants per request (default 1000; all pages are read)\n"
	       "  --json                 machine-readable output (every tenant)\n" CLI_ADMIN_HELP);
}

static void usage_drift(void)
{
	printf("usage: flotilla fleet drift [--select k=v,...] [--limit N] [--json] [options]\n\n"
	       "Tenants at the same version (head migration) whose schema fingerprints\n"
	       "differ: someone changed a schema outside the migrations. Exits 5 when there is\n"
	       "drift.\n\n"
	       "  --select k=v,...       only tenants carrying every label\n"
	       "  --limit N              tenant ids listed per group (default: the coordinator's)\n"
	       "  --json                 machine-readable output\n" CLI_ADMIN_HELP);
}

static void usage_family(FILE *out)
{
	fprintf(out, "usage: flotilla fleet <command> [options]\n\n"
	             "  status     tenants by state and version\n"
	             "  drift      tenants whose schemas drifted from their version's\n\n"
	             "'flotilla fleet <command> --help' describes each.\n");
}

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct args *a = ctx;
	int code = cli_admin_option(&a->adm, c, opt, arg);

	if (code >= 0)
		return code;
	switch (opt) {
	case OPT_SELECT:
		return cli_labels_add(c, &a->select, "--select", arg);
	case OPT_STATE: {
		int v;

		a->gave_state = true;
		if (cli_enum_parse(&flotilla__v1__tenant_state__descriptor, arg, &v) != FL_OK)
			return cli_usage_error(c,
			                       "--state: unknown state '%s' (idle, queued, "
			                       "running, baking, failed, rolled-back, unreachable)",
			                       arg);
		if (a->n_states == sizeof(a->states) / sizeof(a->states[0]))
			return cli_usage_error(c, "--state: too many");
		a->states[a->n_states++] = v;
		return CLI_OK;
	}
	case OPT_LIST:
		a->gave_list = true;
		a->list = true;
		return CLI_OK;
	case OPT_LIMIT: {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(arg, &end, 10);
		if (errno || *arg < '1' || *arg > '9' || *end != '\0' || v > 100000)
			return cli_usage_error(c, "--limit: expected 1 to 100000, got '%s'", arg);
		a->limit = (uint32_t)v;
		return CLI_OK;
	}
	case OPT_FLEET_JSON:
		c->json = true;
		return CLI_OK;
	}
	return -1;
}

static const char *tstate(int v, char *b)
{
	return cli_enum_name(&flotilla__v1__tenant_state__descriptor, v, b, CLI_ENUM_NAME_MAX);
}

/* Every page of the fleet: the replies are kept (the tenants point into them). */
struct pages {
	Flotilla__V1__Message **replies;
	size_t n_replies;
	const Flotilla__V1__TenantStatus **tenants;
	size_t n, cap;
	const Flotilla__V1__FleetStatusResponse *first;
};

static void pages_fini(struct pages *p)
{
	for (size_t i = 0; i < p->n_replies; i++)
		fl_wire_free(p->replies[i]);
	free(p->replies);
	free(p->tenants);
}

static int read_pages(struct args *a, struct pages *p)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__FleetStatusRequest fs = FLOTILLA__V1__FLEET_STATUS_REQUEST__INIT;
	Flotilla__V1__TenantState states[16];
	char *after = NULL;
	int code;

	for (size_t i = 0; i < a->n_states; i++)
		states[i] = (Flotilla__V1__TenantState)a->states[i];
	fs.labels = a->select.ptrs;
	fs.n_labels = a->select.n;
	fs.states = states;
	fs.n_states = a->n_states;
	fs.limit = a->limit > 0 ? a->limit : PAGE_DEFAULT;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_STATUS;
	req.fleet_status = &fs;
	for (;;) {
		Flotilla__V1__AdminResponse *resp;
		Flotilla__V1__Message *reply;
		const Flotilla__V1__FleetStatusResponse *page;

		fs.after_tenant_id = after != NULL ? after : "";
		if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
			return code;
		p->replies = fl_realloc(p->replies, (p->n_replies + 1) * sizeof(*p->replies));
		p->replies[p->n_replies++] = reply;
		page = resp->fleet_status;
		if (p->first == NULL)
			p->first = page;
		for (size_t i = 0; i < page->n_tenants; i++) {
			p->tenants = fl_grow(p->tenants, &p->cap, p->n + 1, sizeof(*p->tenants));
			p->tenants[p->n++] = page->tenants[i];
		}
		if (*page->next_after_tenant_id == '\0')
			return CLI_OK;
		/* A coordinator whose pages do not move on would loop forever. */
		if (after != NULL && strcmp(page->next_after_tenant_id, after) <= 0) {
			fprintf(stderr,
			        "flotilla: error: fleet status: the coordinator's pages do not "
			        "advance\n");
			return CLI_ERROR;
		}
		after = page->next_after_tenant_id;
	}
}

static int by_head(const void *x, const void *y)
{
	const Flotilla__V1__TenantStatus *a = *(const Flotilla__V1__TenantStatus *const *)x;
	const Flotilla__V1__TenantStatus *b = *(const Flotilla__V1__TenantStatus *const *)y;
	int c = strcmp(b->head_migration_id, a->head_migration_id); /* newest first */

	return c != 0 ? c : strcmp(a->tenant_id, b->tenant_id);
}

static void status_text(const struct args *a, const struct pages *p)
{
	const Flotilla__V1__FleetStatusResponse *f = p->first;
	const Flotilla__V1__TenantStatus **sorted;
	char b[CLI_ENUM_NAME_MAX], labels[256];
	size_t drifted = 0, external = 0;

	printf("fleet: %u tenant%s", f->total_count, f->total_count == 1 ? "" : "s");
	if (a->select.n > 0)
		printf(" with %s",
		       cli_labels_text(a->select.ptrs, a->select.n, labels, sizeof(labels)));
	printf("\n");
	if (f->total_count == 0)
		return;
	printf("  by state:  ");
	for (size_t i = 0; i < f->n_counts; i++)
		if (f->counts[i]->count > 0)
			printf(" %s %u", tstate(f->counts[i]->state, b), f->counts[i]->count);
	printf("\n  by version:\n");
	sorted = fl_calloc(p->n + 1, sizeof(*sorted));
	memcpy(sorted, p->tenants, p->n * sizeof(*sorted));
	qsort(sorted, p->n, sizeof(*sorted), by_head);
	for (size_t i = 0; i < p->n;) {
		uint32_t per[16] = {0};
		size_t j = i;

		while (j < p->n &&
		       strcmp(sorted[j]->head_migration_id, sorted[i]->head_migration_id) == 0) {
			if ((unsigned)sorted[j]->state < 16)
				per[sorted[j]->state]++;
			j++;
		}
		printf("    %-44s %5zu  ",
		       *sorted[i]->head_migration_id ? sorted[i]->head_migration_id
		                                     : "(no migration applied)",
		       j - i);
		for (int s = 0, first = 1; s < 16; s++)
			if (per[s] > 0) {
				printf("%s%s %u", first ? "" : ", ", tstate(s, b), per[s]);
				first = 0;
			}
		printf("\n");
		i = j;
	}
	free(sorted);
	for (size_t i = 0; i < p->n; i++) {
		drifted += p->tenants[i]->drifted;
		external += p->tenants[i]->external_changes;
	}
	if (drifted > 0)
		printf("  drifted: %zu (flotilla fleet drift)\n", drifted);
	if (external > 0)
		printf("  changed outside flotilla: %zu\n", external);
	if (!a->list)
		return;
	printf("\n%-24s %-16s %-12s %-40s %-10s %s\n", "TENANT", "AGENT", "STATE", "HEAD",
	       "ROLLOUT", "NOTE");
	for (size_t i = 0; i < p->n; i++) {
		const Flotilla__V1__TenantStatus *t = p->tenants[i];
		char q[200];

		fl_err_quote(q, sizeof(q), t->last_error, strlen(t->last_error));
		printf("%-24s %-16s %-12s %-40s %-10s %s%s%s\n", t->tenant_id, t->agent_id,
		       tstate(t->state, b), *t->head_migration_id ? t->head_migration_id : "-",
		       *t->rollout_id ? t->rollout_id : "-", t->drifted ? "drifted " : "",
		       t->external_changes ? "external-changes " : "", q);
	}
}

static int do_status(struct cli *c, struct args *a)
{
	struct pages p = {0};
	int code;

	cli_labels_seal(&a->select);
	if ((code = cli_admin_connect(&a->adm, c)) != CLI_OK ||
	    (code = read_pages(a, &p)) != CLI_OK)
		goto out;
	if (c->json) {
		const Flotilla__V1__FleetStatusResponse *f = p.first;
		struct jw w;

		jw_init(&w);
		jw_obj(&w, NULL);
		jw_uint(&w, "total_count", f->total_count);
		jr_state_counts(&w, "counts", f->counts, f->n_counts);
		jw_arr(&w, "tenants");
		for (size_t i = 0; i < p.n; i++)
			cli_tenant_json(&w, NULL, p.tenants[i]);
		jw_end(&w);
		jw_end(&w);
		jw_print(&w);
		jw_fini(&w);
	} else {
		status_text(a, &p);
	}
	code = CLI_OK;
out:
	pages_fini(&p);
	return code;
}

static int do_drift(struct cli *c, struct args *a)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__FleetDriftRequest fd = FLOTILLA__V1__FLEET_DRIFT_REQUEST__INIT;
	const Flotilla__V1__FleetDriftResponse *d;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	int code;

	cli_labels_seal(&a->select);
	if ((code = cli_admin_connect(&a->adm, c)) != CLI_OK)
		return code;
	fd.labels = a->select.ptrs;
	fd.n_labels = a->select.n;
	fd.limit = a->limit;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_DRIFT;
	req.fleet_drift = &fd;
	if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
		return code;
	d = resp->fleet_drift;
	if (c->json) {
		struct jw w;

		jw_init(&w);
		jr_drift(&w, d);
		jw_print(&w);
		jw_fini(&w);
	} else if (d->drifted_tenants == 0) {
		printf("no drift: tenants at the same version have the same schema\n");
	} else {
		const char *head = NULL;

		printf("%u tenant%s drifted from the schema most tenants at their version have:\n",
		       d->drifted_tenants, d->drifted_tenants == 1 ? "" : "s");
		for (size_t i = 0; i < d->n_groups; i++) {
			const Flotilla__V1__DriftGroup *g = d->groups[i];

			if (head == NULL || strcmp(head, g->head_migration_id) != 0) {
				printf("  at %s:\n", g->head_migration_id);
				head = g->head_migration_id;
			}
			printf("    %.16s  %5u tenant%s  %s", g->fingerprint, g->tenant_count,
			       g->tenant_count == 1 ? " " : "s",
			       g->majority ? "(majority)" : "drifted:");
			if (!g->majority) {
				for (size_t k = 0; k < g->n_tenant_ids; k++)
					printf(" %s", g->tenant_ids[k]);
				if (g->n_tenant_ids < g->tenant_count)
					printf(" ...");
			}
			printf("\n");
		}
	}
	code = d->drifted_tenants > 0 ? CLI_DRIFT : CLI_OK;
	fl_wire_free(reply);
	return code;
}

int cmd_fleet(int argc, char **argv)
{
	static const struct option options[] = {CLI_ADMIN_OPTIONS,
	                                        CLI_ADMIN_KEY_OPTION,
	                                        {"select", required_argument, NULL, OPT_SELECT},
	                                        {"state", required_argument, NULL, OPT_STATE},
	                                        {"list", no_argument, NULL, OPT_LIST},
	                                        {"limit", required_argument, NULL, OPT_LIMIT},
	                                        {"json", no_argument, NULL, OPT_FLEET_JSON},
	                                        {0}};
	struct args a;
	struct cli c;
	int code;
	bool status;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage_family(stdout);
		return CLI_OK;
	}
	if (argc < 2 || (strcmp(argv[1], "status") != 0 && strcmp(argv[1], "drift") != 0)) {
		if (argc >= 2 && argv[1][0] != '-')
			fprintf(stderr, "flotilla fleet: unknown command '%s'\n", argv[1]);
		usage_family(stderr);
		return CLI_USAGE;
	}
	status = strcmp(argv[1], "status") == 0;
	memset(&a, 0, sizeof(a));
	cli_init(&c, status ? "fleet status" : "fleet drift");
	cli_admin_init(&a.adm, c.cmd);
	code = cli_parse(&c, argc - 1, argv + 1, options, own, &a,
	                 status ? usage_status : usage_drift, 0);
	if (code == CLI_OK && !c.help && !status && (a.gave_list || a.gave_state))
		code = cli_usage_error(&c, "%s does not apply here",
		                       a.gave_list ? "--list" : "--state");
	if (code == CLI_OK && !c.help)
		code = status ? do_status(&c, &a) : do_drift(&c, &a);
	cli_labels_fini(&a.select);
	cli_admin_fini(&a.adm);
	return code;
}
