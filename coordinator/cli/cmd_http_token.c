/*
 * flotilla http-token: a bearer token for the coordinator's HTTP endpoint
 * (/metrics, /api/v1, the dashboard) when it listens on a non-loopback
 * address (docs/CONFIG.md, "http_listen"). Signed offline with an operator
 * key the coordinator's config lists (any role: every role may read); no
 * request to the coordinator is made.
 */
#include <stdio.h>
#include <stdlib.h>

#include "admin.h"
#include "clock.h"
#include "http_token.h"

enum { OPT_TOKEN_KEY = 'k', OPT_TTL = 't' };

struct args {
	const char *key;
	int64_t ttl_ms;
};

static void usage(void)
{
	printf("usage: flotilla http-token [--key FILE] [--ttl DUR] [--json]\n\n"
	       "Print a bearer token for the coordinator's HTTP endpoint (needed when it\n"
	       "listens on a non-loopback address): send it as 'Authorization: Bearer\n"
	       "TOKEN', or open the dashboard at http://HOST:PORT/#token=TOKEN. Signed with\n"
	       "an operator key of the coordinator's config; nothing is sent anywhere.\n\n"
	       "  --key FILE             the operator key (default: $FLOTILLA_KEY)\n"
	       "  --ttl DUR              valid for DUR (default 24h, at most 90d)\n"
	       "  --json                 machine-readable output\n");
}

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	char errbuf[FL_ERRBUF_SIZE];
	struct args *a = ctx;

	switch (opt) {
	case OPT_TOKEN_KEY:
		a->key = arg;
		return CLI_OK;
	case OPT_TTL:
		if (cli_duration_days(arg, &a->ttl_ms, errbuf) != FL_OK)
			return cli_usage_error(c, "--ttl: %s", errbuf);
		if (a->ttl_ms < 1000 || a->ttl_ms > FL_HTTP_TOKEN_TTL_MAX_MS)
			return cli_usage_error(c, "--ttl: from 1s to 90d");
		return CLI_OK;
	}
	return -1;
}

int cmd_http_token(int argc, char **argv)
{
	static const struct option options[] = {{"key", required_argument, NULL, OPT_TOKEN_KEY},
	                                        {"ttl", required_argument, NULL, OPT_TTL},
	                                        {"json", no_argument, NULL, OPT_JSON},
	                                        {"help", no_argument, NULL, 'h'},
	                                        {0}};
	char errbuf[FL_ERRBUF_SIZE] = "", token[FL_HTTP_TOKEN_MAX], tm[32];
	struct args a = {NULL, 24LL * 3600 * 1000};
	struct fl_key key = {0};
	int64_t expires;
	enum fl_err rv;
	struct cli c;
	int code;

	cli_init(&c, "http-token");
	if ((code = cli_parse(&c, argc, argv, options, own, &a, usage, 0)) != CLI_OK || c.help)
		return code;
	if (c.nargs != 0)
		return cli_usage_error(&c, "unexpected argument '%s'", c.args[0]);
	if (a.key == NULL && (a.key = getenv("FLOTILLA_KEY")) != NULL && *a.key == '\0')
		a.key = NULL;
	if (a.key == NULL)
		return cli_usage_error(&c, "no operator key: pass --key FILE or set FLOTILLA_KEY");
	if ((rv = fl_key_file_load(a.key, FL_KEY_OPERATOR, &key, errbuf)) != FL_OK)
		return cli_fail(rv, errbuf);
	expires = fl_wall_ms() + a.ttl_ms;
	fl_http_token_make(&key, expires, token);
	fl_key_fini(&key);
	if (c.json) {
		struct jw w;

		jw_init(&w);
		jw_obj(&w, NULL);
		jw_str(&w, "token", token);
		jw_int(&w, "expires_at_ms", expires);
		jw_end(&w);
		jw_print(&w);
		jw_fini(&w);
	} else {
		printf("%s\n", token);
		fprintf(stderr, "valid until %s\n", cli_time(expires, tm, sizeof(tm)));
	}
	return CLI_OK;
}
