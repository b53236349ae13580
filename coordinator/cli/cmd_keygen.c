/* flotilla keygen: create an Ed25519 key pair as a secret key file (mode 0600,
 * never overwriting one) and print its id and public key. */
#include <stdio.h>

#include "buf.h"
#include "cli.h"
#include "json.h"
#include "keys.h"

enum { OPT_KIND = 'k', OPT_OUT = 'o' };

struct args {
	const char *kind;
	const char *out;
};

static void usage(void)
{
	printf("usage: flotilla keygen --kind KIND --out FILE [--json]\n\n"
	       "Create an Ed25519 key pair and write it to FILE, a new file of mode 0600\n"
	       "(an existing file is never overwritten). Prints the key id and the public\n"
	       "key, which is what others are given: agents trust release keys, the\n"
	       "coordinator enrolls agent and operator keys, agents pin the coordinator's.\n\n"
	       "  --kind KIND            coordinator, agent, operator or release\n"
	       "  --out FILE             the secret key file to create\n"
	       "  --json                 machine-readable output\n");
}

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct args *a = ctx;

	(void)c;
	if (opt == OPT_KIND)
		a->kind = arg;
	else if (opt == OPT_OUT)
		a->out = arg;
	else
		return -1;
	return CLI_OK;
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option options[] = {{"kind", required_argument, NULL, OPT_KIND},
	                                        {"out", required_argument, NULL, OPT_OUT},
	                                        {"json", no_argument, NULL, OPT_JSON},
	                                        {"help", no_argument, NULL, 'h'},
	                                        {0}};
	char errbuf[FL_ERRBUF_SIZE] = "", id[FL_KEY_ID_LEN + 1], pub[FL_KEY_PUBLIC_TEXT_LEN + 1];
	struct fl_key key = {0};
	struct args a = {0};
	enum fl_key_kind kind;
	enum fl_err rv;
	struct cli c;
	int code;

	cli_init(&c, "keygen");
	if ((code = cli_parse(&c, argc, argv, options, own, &a, usage, 0)) != CLI_OK || c.help)
		return code;
	if (a.kind == NULL)
		return cli_usage_error(&c, "--kind is required");
	if (a.out == NULL)
		return cli_usage_error(&c, "--out is required");
	if (fl_key_kind_parse(a.kind, &kind, errbuf) != FL_OK)
		return cli_usage_error(&c, "--kind: %s", errbuf);
	fl_key_generate(kind, NULL, &key);
	rv = fl_key_file_write(a.out, &key, errbuf);
	if (rv != FL_OK) {
		code = cli_fail(rv, errbuf);
		goto out;
	}
	fl_key_id(key.pk, id);
	fl_key_public_text(key.pk, pub);
	if (c.json) {
		struct fl_buf j = FL_BUF_INIT;

		fl_buf_printf(&j,
		              "{\"kind\":\"%s\",\"key_id\":\"%s\",\"public_key\":\"%s\",\"file\":",
		              fl_key_kind_name(kind), id, pub);
		fl_json_string(&j, a.out);
		fl_buf_puts(&j, "}");
		printf("%s\n", fl_buf_str(&j));
		fl_buf_fini(&j);
	} else {
		printf("key id: %s\npublic key: %s\n", id, pub);
	}
	code = CLI_OK;
out:
	fl_key_fini(&key);
	return code;
}
