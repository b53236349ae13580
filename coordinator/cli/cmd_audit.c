/*
 * flotilla audit: the coordinator's audit log, oldest first: every admin
 * call (who, with which role, what, how it ended, refusals included) and
 * every decision the coordinator made on its own (a wave failed, a rollout
 * halted). Reads every page from --since on.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "wire.h"

#define SINCE_DEFAULT_MS (INT64_C(24) * 3600000)
#define PAGE             500

enum {
	OPT_SINCE = OPT_ADMIN_FIRST_FREE,
	OPT_ACTOR,
	OPT_LIMIT,
	OPT_ALL,
	OPT_AUDIT_JSON,
};

struct args {
	struct cli_admin adm;
	int64_t since_ms;
	bool gave_since, all;
	const char *actor;
	uint64_t limit;
};

static void usage(void)
{
	printf("usage: flotilla audit [--since DUR|DATE | --all] [--actor KEYID] [--limit N]\n"
	       "                      [--json] [options]\n\n"
	       "The audit log, oldest first: each admin call (who, role, command, subject,\n"
	       "how it ended) and each decision the coordinator made on its own.\n\n"
	       "  --since DUR|DATE       from DUR ago (1h, 7d) or a UTC date (2025-11-24,\n"
	       "                         2025-11-24T12:00:00Z); default 24h\n"
	       "  --all                  from the start\n"
	       "  --actor KEYID          only this operator's calls (its key id)\n"
	       "  --limit N              at most N entries\n"
	       "  --json                 machine-readable output\n" CLI_ADMIN_HELP);
}

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	char errbuf[FL_ERRBUF_SIZE];
	struct args *a = ctx;
	int code = cli_admin_option(&a->adm, c, opt, arg);

	if (code >= 0)
		return code;
	switch (opt) {
	case OPT_SINCE:
		if (cli_since(arg, fl_wall_ms(), &a->since_ms, errbuf) != FL_OK)
			return cli_usage_error(c, "--since: %s", errbuf);
		a->gave_since = true;
		return CLI_OK;
	case OPT_ACTOR:
		if (strlen(arg) != FL_KEY_ID_LEN ||
		    strspn(arg, "0123456789abcdef") != FL_KEY_ID_LEN)
			return cli_usage_error(c,
			                       "--actor: expected a key id (16 lowercase hex "
			                       "digits), got '%s'",
			                       arg);
		a->actor = arg;
		return CLI_OK;
	case OPT_LIMIT: {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(arg, &end, 10);
		if (errno || *arg < '1' || *arg > '9' || *end != '\0')
			return cli_usage_error(c, "--limit: expected a number from 1, got '%s'",
			                       arg);
		a->limit = v;
		return CLI_OK;
	}
	case OPT_ALL:
		a->all = true;
		return CLI_OK;
	case OPT_AUDIT_JSON:
		c->json = true;
		return CLI_OK;
	}
	return -1;
}

static void entry_json(struct jw *w, const Flotilla__V1__AuditEntry *e)
{
	jr_audit_entry(w, NULL, e);
}

static void entry_text(const Flotilla__V1__AuditEntry *e)
{
	char tm[32], b[CLI_ENUM_NAME_MAX], r[CLI_ENUM_NAME_MAX], q[512], who[96], subject[300];

	fl_err_quote(q, sizeof(q), e->detail, strlen(e->detail));
	if (*e->actor_key_id)
		snprintf(who, sizeof(who), "%s (%s, %s)", *e->actor_name ? e->actor_name : "-",
		         e->actor_key_id,
		         cli_enum_name(&flotilla__v1__role__descriptor, e->role, r, sizeof(r)));
	else
		snprintf(who, sizeof(who), "%s", *e->actor_name ? e->actor_name : "coordinator");
	/* A 64-digit hash as subject: its first 12 digits, as everywhere else. */
	if (strlen(e->subject) == 64 && strspn(e->subject, "0123456789abcdef") == 64)
		snprintf(subject, sizeof(subject), "%.12s", e->subject);
	else
		snprintf(subject, sizeof(subject), "%s", *e->subject ? e->subject : "-");
	printf("%s  %-44s %-24s %-16s %s%s%s\n", cli_time(e->at_ms, tm, sizeof(tm)), who,
	       e->command, subject,
	       cli_enum_name(&flotilla__v1__status_code__descriptor, e->code, b, sizeof(b)),
	       *q ? "  " : "", q);
}

int cmd_audit(int argc, char **argv)
{
	static const struct option options[] = {CLI_ADMIN_OPTIONS,
	                                        CLI_ADMIN_KEY_OPTION,
	                                        {"since", required_argument, NULL, OPT_SINCE},
	                                        {"actor", required_argument, NULL, OPT_ACTOR},
	                                        {"limit", required_argument, NULL, OPT_LIMIT},
	                                        {"all", no_argument, NULL, OPT_ALL},
	                                        {"json", no_argument, NULL, OPT_AUDIT_JSON},
	                                        {0}};
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__AuditQueryRequest q = FLOTILLA__V1__AUDIT_QUERY_REQUEST__INIT;
	uint64_t shown = 0, after = 0;
	struct args a;
	struct cli c;
	struct jw w;
	int code;

	memset(&a, 0, sizeof(a));
	cli_init(&c, "audit");
	cli_admin_init(&a.adm, "audit");
	jw_init(&w);
	if ((code = cli_parse(&c, argc, argv, options, own, &a, usage, 0)) != CLI_OK || c.help)
		goto out;
	if (a.all && a.gave_since) {
		code = cli_usage_error(&c, "--all and --since do not go together");
		goto out;
	}
	if ((code = cli_admin_connect(&a.adm, &c)) != CLI_OK)
		goto out;
	q.since_ms = a.all ? 0 : a.gave_since ? a.since_ms : fl_wall_ms() - SINCE_DEFAULT_MS;
	q.actor_key_id = (char *)(a.actor != NULL ? a.actor : "");
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AUDIT_QUERY;
	req.audit_query = &q;
	if (c.json) {
		jw_obj(&w, NULL);
		jw_arr(&w, "entries");
	}
	for (;;) {
		const Flotilla__V1__AuditQueryResponse *page;
		Flotilla__V1__AdminResponse *resp;
		Flotilla__V1__Message *reply;

		q.after_id = after;
		q.limit =
		    a.limit > 0 && a.limit - shown < PAGE ? (uint32_t)(a.limit - shown) : PAGE;
		if ((code = cli_admin_call(&a.adm, &req, false, &reply, &resp)) != CLI_OK)
			goto out;
		page = resp->audit_query;
		for (size_t i = 0; i < page->n_entries && (a.limit == 0 || shown < a.limit); i++) {
			if (c.json)
				entry_json(&w, page->entries[i]);
			else
				entry_text(page->entries[i]);
			shown++;
		}
		if (page->next_after_id == 0 || (a.limit > 0 && shown >= a.limit) ||
		    page->next_after_id <= after) {
			fl_wire_free(reply);
			break;
		}
		after = page->next_after_id;
		fl_wire_free(reply);
	}
	if (c.json) {
		jw_end(&w);
		jw_end(&w);
		jw_print(&w);
	} else if (shown == 0) {
		printf("no audit entries%s\n",
		       a.all ? "" : " in that time (--all: from the start)");
	}
	code = CLI_OK;
out:
	jw_fini(&w);
	cli_admin_fini(&a.adm);
	return code;
}
