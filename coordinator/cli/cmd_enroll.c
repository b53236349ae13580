/*
 * flotilla enroll-token create: a one-time token with which a new agent
 * enrolls its own key (docs/WIRE.md, "Enrollment"), instead of an admin
 * approving the key by hand. The token is shown once; the coordinator keeps
 * only its hash, with the name and labels the agent will get.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "enroll.h"
#include "peers.h"
#include "wire.h"

enum {
	OPT_NAME = OPT_ADMIN_FIRST_FREE,
	OPT_LABELS,
	OPT_TTL,
	OPT_ENROLL_JSON,
};

struct args {
	struct cli_admin adm;
	const char *name;
	struct cli_labels labels;
	int64_t ttl_ms;
};

static void usage(void)
{
	printf("usage: flotilla enroll-token create --name NAME [--labels k=v,...] [--ttl DUR]\n"
	       "                                    [--json] [options]\n\n"
	       "Create a one-time enrollment token for a new agent: put it in the agent's\n"
	       "config (enrollment_token); its first Hello enrolls its key under NAME with\n"
	       "these labels. Shown once; the coordinator keeps only its hash. Needs the\n"
	       "admin role.\n\n"
	       "  --name NAME            the agent's name once enrolled\n"
	       "  --labels k=v,...       the agent's labels once enrolled\n"
	       "  --ttl DUR              the token expires after DUR (default: the\n"
	       "                         coordinator's; e.g. 1h, 7d)\n"
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
	case OPT_TTL:
		if (cli_duration_days(arg, &a->ttl_ms, errbuf) != FL_OK)
			return cli_usage_error(c, "--ttl: %s", errbuf);
		if (a->ttl_ms < 1000 || a->ttl_ms > UINT32_MAX)
			return cli_usage_error(c, "--ttl: from 1s to 49d");
		return CLI_OK;
	case OPT_ENROLL_JSON:
		c->json = true;
		return CLI_OK;
	}
	return -1;
}

int cmd_enroll(int argc, char **argv)
{
	static const struct option options[] = {CLI_ADMIN_OPTIONS,
	                                        CLI_ADMIN_KEY_OPTION,
	                                        {"name", required_argument, NULL, OPT_NAME},
	                                        {"labels", required_argument, NULL, OPT_LABELS},
	                                        {"ttl", required_argument, NULL, OPT_TTL},
	                                        {"json", no_argument, NULL, OPT_ENROLL_JSON},
	                                        {0}};
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__EnrollmentTokenCreateRequest tc =
	    FLOTILLA__V1__ENROLLMENT_TOKEN_CREATE_REQUEST__INIT;
	const Flotilla__V1__EnrollmentTokenCreateResponse *t;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	char tm[32], labels[256];
	struct args a;
	struct cli c;
	int code;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage();
		return CLI_OK;
	}
	if (argc < 2 || strcmp(argv[1], "create") != 0) {
		if (argc >= 2 && argv[1][0] != '-')
			fprintf(stderr, "flotilla enroll-token: unknown command '%s'\n", argv[1]);
		fprintf(stderr, "usage: flotilla enroll-token create --name NAME [options] (see "
		                "'flotilla enroll-token --help')\n");
		return CLI_USAGE;
	}
	memset(&a, 0, sizeof(a));
	cli_init(&c, "enroll-token create");
	cli_admin_init(&a.adm, "enroll-token create");
	if ((code = cli_parse(&c, argc - 1, argv + 1, options, own, &a, usage, 0)) != CLI_OK ||
	    c.help)
		goto out;
	if (a.name == NULL) {
		code = cli_usage_error(&c, "--name NAME is required: the agent's name");
		goto out;
	}
	cli_labels_seal(&a.labels);
	if ((code = cli_admin_connect(&a.adm, &c)) != CLI_OK)
		goto out;
	tc.name = (char *)a.name;
	tc.labels = a.labels.ptrs;
	tc.n_labels = a.labels.n;
	tc.ttl_ms = (uint32_t)a.ttl_ms;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ENROLLMENT_TOKEN_CREATE;
	req.enrollment_token_create = &tc;
	if ((code = cli_admin_call(&a.adm, &req, false, &reply, &resp)) != CLI_OK)
		goto out;
	t = resp->enrollment_token_create;
	if (c.json) {
		struct jw w;

		jw_init(&w);
		jw_obj(&w, NULL);
		jw_str(&w, "token", t->token);
		jw_str(&w, "name", a.name);
		cli_labels_json(&w, "labels", a.labels.ptrs, a.labels.n);
		jw_int(&w, "expires_at_ms", t->expires_at_ms);
		jw_end(&w);
		jw_print(&w);
		jw_fini(&w);
	} else {
		printf("%s\n", t->token);
		fprintf(
		    stderr,
		    "enrollment token for agent '%s' (labels %s), valid until %s, usable once.\n"
		    "Put it in the agent's config as enrollment_token; it is not shown again.\n",
		    a.name, cli_labels_text(a.labels.ptrs, a.labels.n, labels, sizeof(labels)),
		    cli_time(t->expires_at_ms, tm, sizeof(tm)));
	}
	code = CLI_OK;
out:
	fl_wire_free(reply);
	cli_labels_fini(&a.labels);
	cli_admin_fini(&a.adm);
	return code;
}
