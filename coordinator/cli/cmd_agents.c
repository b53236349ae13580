/*
 * flotilla agents list|approve|revoke: which agent keys the coordinator
 * accepts. Approving a key lets that agent poll for work (it still checks
 * every assignment against what release keys signed); revoking it takes
 * effect at once, and for good. Here --key is the agent's public key; the
 * operator key comes from --operator-key or FLOTILLA_KEY.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "peers.h"
#include "wire.h"

enum {
	OPT_AGENT_KEY = OPT_ADMIN_FIRST_FREE,
	OPT_NAME,
	OPT_LABELS,
	OPT_REASON,
	OPT_ALL,
	OPT_AGENTS_JSON,
};

#define GAVE(opt) (1u << ((opt)-OPT_AGENT_KEY))

struct args {
	struct cli_admin adm;
	unsigned gave;
	uint8_t pk[FL_KEY_PUBLIC_BYTES];
	const char *name;
	struct cli_labels labels;
	const char *reason;
	bool all;
};

static void (*current_usage)(void);

static void usage_list(void)
{
	printf("usage: flotilla agents list [--all] [--json] [options]\n\n"
	       "The agents the coordinator accepts: name, key id, version, tenants, when it\n"
	       "was last heard from.\n\n"
	       "  --all                  revoked agents too\n"
	       "  --json                 machine-readable output\n" CLI_ADMIN_HELP);
}

#define AGENT_OPERATOR_HELP "  --operator-key FILE    your operator key (default: $FLOTILLA_KEY)\n"

static void usage_approve(void)
{
	printf("usage: flotilla agents approve --key B64 --name NAME [--labels k=v,...] "
	       "[options]\n\n"
	       "Accept an agent's public key (it prints it at start, or 'flotilla keygen\n"
	       "--kind agent' did). Needs the admin role.\n\n"
	       "  --key B64              the agent's public key (base64, 44 characters)\n"
	       "  --name NAME            a unique name for it\n"
	       "  --labels k=v,...       labels of the agent\n"
	       "  --json                 machine-readable output\n" AGENT_OPERATOR_HELP
	       "  --coordinator URL, --coordinator-key B64, --timeout DUR: as every command\n");
}

static void usage_revoke(void)
{
	printf("usage: flotilla agents revoke --key B64 [--reason TEXT] [options]\n\n"
	       "Refuse an agent's key from now on, for good. Needs the admin role.\n\n"
	       "  --key B64              the agent's public key (base64)\n"
	       "  --reason TEXT          why, for the audit log\n"
	       "  --json                 machine-readable output\n" AGENT_OPERATOR_HELP
	       "  --coordinator URL, --coordinator-key B64, --timeout DUR: as every command\n");
}

static void usage_family(FILE *out)
{
	fprintf(out, "usage: flotilla agents <command> [options]\n\n"
	             "  list       the agents the coordinator accepts\n"
	             "  approve    accept an agent's key\n"
	             "  revoke     refuse an agent's key from now on\n\n"
	             "'flotilla agents <command> --help' describes each.\n");
}

static void usage_current(void)
{
	current_usage();
}

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	char errbuf[FL_ERRBUF_SIZE];
	struct args *a = ctx;
	int code = cli_admin_option(&a->adm, c, opt, arg);

	if (code >= 0)
		return code;
	if (opt >= OPT_AGENT_KEY && opt <= OPT_AGENTS_JSON)
		a->gave |= GAVE(opt);
	switch (opt) {
	case OPT_AGENT_KEY:
		if (fl_key_public_parse(arg, a->pk, errbuf) != FL_OK)
			return cli_usage_error(c, "--key: %s", errbuf);
		return CLI_OK;
	case OPT_NAME:
		if (!fl_peer_name_valid(arg))
			return cli_usage_error(c,
			                       "--name: '%s' is not a valid agent name "
			                       "([A-Za-z0-9._@:+-], 1 to 64)",
			                       arg);
		a->name = arg;
		return CLI_OK;
	case OPT_LABELS:
		return cli_labels_add(c, &a->labels, "--labels", arg);
	case OPT_REASON:
		a->reason = arg;
		return CLI_OK;
	case OPT_ALL:
		a->all = true;
		return CLI_OK;
	case OPT_AGENTS_JSON:
		c->json = true;
		return CLI_OK;
	}
	return -1;
}

static const char *astate(int v, char *b)
{
	return cli_enum_name(&flotilla__v1__agent_state__descriptor, v, b, CLI_ENUM_NAME_MAX);
}

static int do_list(struct cli *c, struct args *a)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__AgentListRequest al = FLOTILLA__V1__AGENT_LIST_REQUEST__INIT;
	const Flotilla__V1__AgentListResponse *l;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	int64_t now = fl_wall_ms();
	int code;

	if ((code = cli_admin_connect(&a->adm, c)) != CLI_OK)
		return code;
	al.include_revoked = a->all;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST;
	req.agent_list = &al;
	if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
		return code;
	l = resp->agent_list;
	if (c->json) {
		struct jw w;

		jw_init(&w);
		jr_agent_list(&w, l->agents, l->n_agents);
		jw_print(&w);
		jw_fini(&w);
	} else if (l->n_agents == 0) {
		printf(
		    "no agents: approve one with 'flotilla agents approve --key B64 --name N'\n");
	} else {
		printf("%-20s %-16s %-8s %-9s %7s  %-14s %s\n", "AGENT", "KEY ID", "STATE",
		       "VERSION", "TENANTS", "LAST SEEN", "LABELS");
		for (size_t i = 0; i < l->n_agents; i++) {
			const Flotilla__V1__AgentInfo *ai = l->agents[i];
			char id[FL_KEY_ID_LEN + 1], b[CLI_ENUM_NAME_MAX], ago[32], labels[200];

			printf("%-20s %-16s %-8s %-9s %7u  %-14s %s\n", ai->name,
			       cli_key_id(&ai->public_key, id), astate(ai->state, b),
			       *ai->agent_version ? ai->agent_version : "-", ai->tenant_count,
			       cli_ago(ai->last_seen_at_ms, now, ago, sizeof(ago)),
			       cli_labels_text(ai->labels, ai->n_labels, labels, sizeof(labels)));
		}
	}
	fl_wire_free(reply);
	return CLI_OK;
}

static int do_approve(struct cli *c, struct args *a)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__AgentApproveRequest ap = FLOTILLA__V1__AGENT_APPROVE_REQUEST__INIT;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	char id[FL_KEY_ID_LEN + 1];
	int code;

	if (!(a->gave & GAVE(OPT_AGENT_KEY)))
		return cli_usage_error(c, "--key B64 is required: the agent's public key");
	if (a->name == NULL)
		return cli_usage_error(c, "--name NAME is required");
	cli_labels_seal(&a->labels);
	if ((code = cli_admin_connect(&a->adm, c)) != CLI_OK)
		return code;
	ap.public_key.data = a->pk;
	ap.public_key.len = sizeof(a->pk);
	ap.name = (char *)a->name;
	ap.labels = a->labels.ptrs;
	ap.n_labels = a->labels.n;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_APPROVE;
	req.agent_approve = &ap;
	if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
		return code;
	if (c->json) {
		struct jw w;

		jw_init(&w);
		jw_obj(&w, NULL);
		jr_agent(&w, "agent", resp->agent_approve->agent);
		jw_end(&w);
		jw_print(&w);
		jw_fini(&w);
	} else {
		fl_key_id(a->pk, id);
		printf("approved agent %s (key %s)\n", resp->agent_approve->agent->name, id);
	}
	fl_wire_free(reply);
	return CLI_OK;
}

static int do_revoke(struct cli *c, struct args *a)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__AgentRevokeRequest rv = FLOTILLA__V1__AGENT_REVOKE_REQUEST__INIT;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	char id[FL_KEY_ID_LEN + 1];
	int code;

	if (!(a->gave & GAVE(OPT_AGENT_KEY)))
		return cli_usage_error(c, "--key B64 is required: the agent's public key");
	if ((code = cli_admin_connect(&a->adm, c)) != CLI_OK)
		return code;
	rv.public_key.data = a->pk;
	rv.public_key.len = sizeof(a->pk);
	rv.reason = (char *)(a->reason != NULL ? a->reason : "");
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_REVOKE;
	req.agent_revoke = &rv;
	if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
		return code;
	if (c->json) {
		struct jw w;

		jw_init(&w);
		jw_obj(&w, NULL);
		jr_agent(&w, "agent", resp->agent_revoke->agent);
		jw_end(&w);
		jw_print(&w);
		jw_fini(&w);
	} else {
		fl_key_id(a->pk, id);
		printf("revoked agent %s (key %s): its messages are refused from now on\n",
		       resp->agent_revoke->agent->name, id);
	}
	fl_wire_free(reply);
	return CLI_OK;
}

int cmd_agents(int argc, char **argv)
{
	/* --key is the agent's key here: the operator's is --operator-key. */
	static const struct option list_options[] = {CLI_ADMIN_OPTIONS,
	                                             CLI_ADMIN_KEY_OPTION,
	                                             {"all", no_argument, NULL, OPT_ALL},
	                                             {"json", no_argument, NULL, OPT_AGENTS_JSON},
	                                             {0}};
	static const struct option key_options[] = {CLI_ADMIN_OPTIONS,
	                                            {"key", required_argument, NULL, OPT_AGENT_KEY},
	                                            {"name", required_argument, NULL, OPT_NAME},
	                                            {"labels", required_argument, NULL, OPT_LABELS},
	                                            {"reason", required_argument, NULL, OPT_REASON},
	                                            {"json", no_argument, NULL, OPT_AGENTS_JSON},
	                                            {0}};
	static const struct {
		const char *name, *cmd;
		const struct option *options;
		void (*usage)(void);
		unsigned takes;
		int (*run)(struct cli *c, struct args *a);
	} subs[] = {
	    {"list", "agents list", list_options, usage_list, GAVE(OPT_ALL) | GAVE(OPT_AGENTS_JSON),
	     do_list},
	    {"approve", "agents approve", key_options, usage_approve,
	     GAVE(OPT_AGENT_KEY) | GAVE(OPT_NAME) | GAVE(OPT_LABELS) | GAVE(OPT_AGENTS_JSON),
	     do_approve},
	    {"revoke", "agents revoke", key_options, usage_revoke,
	     GAVE(OPT_AGENT_KEY) | GAVE(OPT_REASON) | GAVE(OPT_AGENTS_JSON), do_revoke},
	};
	struct args a;
	struct cli c;
	int code;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage_family(stdout);
		return CLI_OK;
	}
	for (size_t i = 0; argc >= 2 && i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name) != 0)
			continue;
		memset(&a, 0, sizeof(a));
		current_usage = subs[i].usage;
		cli_init(&c, subs[i].cmd);
		cli_admin_init(&a.adm, subs[i].cmd);
		code =
		    cli_parse(&c, argc - 1, argv + 1, subs[i].options, own, &a, usage_current, 0);
		if (code == CLI_OK && !c.help && (a.gave & ~subs[i].takes) != 0)
			code = cli_usage_error(&c, "%s does not apply here",
			                       (a.gave & ~subs[i].takes) & GAVE(OPT_NAME) ? "--name"
			                       : (a.gave & ~subs[i].takes) & GAVE(OPT_LABELS)
			                           ? "--labels"
			                           : "--reason");
		if (code == CLI_OK && !c.help)
			code = subs[i].run(&c, &a);
		cli_labels_fini(&a.labels);
		cli_admin_fini(&a.adm);
		return code;
	}
	if (argc >= 2 && argv[1][0] != '-')
		fprintf(stderr, "flotilla agents: unknown command '%s'\n", argv[1]);
	usage_family(stderr);
	return CLI_USAGE;
}
