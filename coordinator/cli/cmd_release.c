/*
 * flotilla release build|sign|verify|show: signed, content-addressed release
 * files (docs/WIRE.md). A release manager builds one from a migrations
 * folder, signs it with a release key the coordinator never holds, and
 * agents apply only what verifies against their trusted release keys.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "json.h"
#include "keys.h"
#include "release.h"

#define TRUST_MAX 64

enum {
	OPT_OUT = 'o',
	OPT_KEY = 'k',
	OPT_TRUST = 't',
	OPT_PROJECT = 'p',
	OPT_SEQUENCE = 's',
	OPT_HASH = 'H',
};

/* Which options a subcommand was given, to refuse those it does not take. */
enum {
	GAVE_DIR = 1,
	GAVE_OUT = 2,
	GAVE_KEY = 4,
	GAVE_TRUST = 8,
	GAVE_JSON = 16,
	GAVE_PROJECT = 32,
	GAVE_SEQUENCE = 64,
	GAVE_HASH = 128,
};

struct args {
	unsigned gave;
	const char *out;
	const char *key;
	uint8_t trusted[TRUST_MAX][FL_KEY_PUBLIC_BYTES];
	size_t n_trusted;
	const char *project;
	uint64_t sequence;
	uint8_t hash[32];
};

static void usage(void)
{
	printf("usage: flotilla release build --dir DIR --project ID --sequence N --out FILE "
	       "[--json]\n"
	       "       flotilla release sign --key KEYFILE FILE\n"
	       "       flotilla release verify --trust PUBKEY [--trust PUBKEY...] [--project ID]\n"
	       "                               [--hash HEX] FILE [--json]\n"
	       "       flotilla release show FILE [--json]\n\n"
	       "A release file holds a migrations folder (ids, checksums, SQL, directives,\n"
	       "in apply order), its project and sequence number, and Ed25519 signatures\n"
	       "by release keys. Its hash is the SHA-256 of the packed bundle: the same\n"
	       "folder, project and sequence give the same file.\n\n"
	       "  build                  pack the folder into FILE; print its hash\n"
	       "  sign                   add the signature of a release key (made with\n"
	       "                         'flotilla keygen --kind release'), in place\n"
	       "  verify                 exit 0 only if a trusted key signed FILE and every\n"
	       "                         check passes; exit 10 when no trusted signature\n"
	       "                         verifies\n"
	       "  show                   the hash, migrations and signers of FILE\n\n"
	       "  --dir DIR              migrations folder (default: ./migrations)\n"
	       "  --project ID           the project the release belongs to (A-Z a-z 0-9 . _ -);\n"
	       "                         agents pinned to another project refuse it\n"
	       "  --sequence N           the release's number in its project, from 1: one more\n"
	       "                         than the last release you built (your CI's build\n"
	       "                         number does). Agents refuse a release numbered below\n"
	       "                         one they applied to a tenant, so never reuse or go\n"
	       "                         back; a number is part of the bundle, so it is given,\n"
	       "                         never taken from a clock\n"
	       "  --hash HEX             verify: refuse FILE unless its hash is HEX\n"
	       "  --out FILE             the release file to write (replaced atomically)\n"
	       "  --key KEYFILE          secret release key file (mode 0600)\n"
	       "  --trust PUBKEY         a trusted release public key (base64), repeatable\n"
	       "  --json                 machine-readable output\n");
}

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	char errbuf[FL_ERRBUF_SIZE];
	struct args *a = ctx;

	switch (opt) {
	case OPT_DIR:
		a->gave |= GAVE_DIR;
		return -1; /* and cli_option takes it */
	case OPT_JSON:
		a->gave |= GAVE_JSON;
		return -1;
	case OPT_OUT:
		a->gave |= GAVE_OUT;
		a->out = arg;
		return CLI_OK;
	case OPT_KEY:
		a->gave |= GAVE_KEY;
		a->key = arg;
		return CLI_OK;
	case OPT_PROJECT: {
		const char *why = fl_release_project_problem(arg);

		a->gave |= GAVE_PROJECT;
		if (why != NULL)
			return cli_usage_error(c, "--project: invalid project id '%s': %s", arg,
			                       why);
		a->project = arg;
		return CLI_OK;
	}
	case OPT_SEQUENCE: {
		char *end = NULL;
		unsigned long long v;

		a->gave |= GAVE_SEQUENCE;
		errno = 0;
		v = strtoull(arg, &end, 10);
		if (arg[0] < '1' || arg[0] > '9' || *end != '\0' || errno != 0)
			return cli_usage_error(c, "--sequence: '%s' is not a number from 1", arg);
		a->sequence = (uint64_t)v;
		return CLI_OK;
	}
	case OPT_HASH: {
		size_t n = 0;

		a->gave |= GAVE_HASH;
		if (strlen(arg) != 64 ||
		    sodium_hex2bin(a->hash, sizeof(a->hash), arg, 64, NULL, &n, NULL) != 0 ||
		    n != 32)
			return cli_usage_error(c, "--hash: expected 64 hex digits");
		return CLI_OK;
	}
	case OPT_TRUST:
		a->gave |= GAVE_TRUST;
		if (a->n_trusted == TRUST_MAX)
			return cli_usage_error(c, "--trust: at most %d keys", TRUST_MAX);
		if (fl_key_public_parse(arg, a->trusted[a->n_trusted], errbuf) != FL_OK)
			return cli_usage_error(c, "--trust: %s", errbuf);
		a->n_trusted++;
		return CLI_OK;
	}
	return -1;
}

/* Exit codes for a release file's problems: not trusted, invalid, or I/O. */
static int fail(enum fl_err rv, const char *errbuf)
{
	int code = cli_fail(rv, errbuf);

	switch (rv) {
	case FL_EAUTH:
		return CLI_UNTRUSTED;
	case FL_EPARSE:
	case FL_EGRAPH:
	case FL_ECHECKSUM:
		return CLI_INVALID;
	case FL_ESTATE:
	case FL_EINVAL:
		return CLI_ERROR;
	default:
		return code;
	}
}

static int one_file(struct cli *c, const char **file)
{
	if (c->nargs != 1)
		return cli_usage_error(c, "expected one release FILE");
	*file = c->args[0];
	return CLI_OK;
}

static int do_build(struct cli *c, struct args *a)
{
	char errbuf[FL_ERRBUF_SIZE] = "", hash[FL_RELEASE_HASH_HEX_LEN + 1];
	struct fl_migration_set set = {0};
	struct fl_buf out = FL_BUF_INIT;
	enum fl_err rv;
	int code;

	if (c->nargs != 0)
		return cli_usage_error(c, "unexpected argument '%s'", c->args[0]);
	if (a->out == NULL)
		return cli_usage_error(c, "--out FILE is required");
	if (a->project == NULL)
		return cli_usage_error(c, "--project ID is required");
	if (!(a->gave & GAVE_SEQUENCE))
		return cli_usage_error(c, "--sequence N is required (one more than the project's "
		                          "last release)");
	if ((code = cli_load(c, &set)) != CLI_OK)
		return code;
	fl_buf_init(&out, FL_RELEASE_FILE_MAX);
	if ((rv = fl_release_build(&set, a->project, a->sequence, &out, hash, errbuf)) != FL_OK ||
	    (rv = fl_release_file_write(a->out, out.data, out.len, errbuf)) != FL_OK) {
		code = fail(rv, errbuf);
		goto out;
	}
	if (c->json) {
		struct fl_buf j = FL_BUF_INIT;

		fl_buf_printf(&j, "{\"hash\":\"%s\",\"project\":", hash);
		fl_json_string(&j, a->project);
		fl_buf_printf(&j,
		              ",\"sequence\":%" PRIu64 ",\"migrations\":%zu,\"file\":", a->sequence,
		              set.count);
		fl_json_string(&j, a->out);
		printf("%s}\n", fl_buf_str(&j));
		fl_buf_fini(&j);
	} else {
		printf("hash: %s\nproject: %s\nsequence: %" PRIu64
		       "\nmigrations: %zu\nwrote '%s' (unsigned: sign it with 'flotilla "
		       "release sign')\n",
		       hash, a->project, a->sequence, set.count, a->out);
	}
	code = CLI_OK;
out:
	fl_buf_fini(&out);
	fl_migration_set_fini(&set);
	return code;
}

static int do_sign(struct cli *c, struct args *a)
{
	struct fl_buf in = FL_BUF_INIT, out = FL_BUF_INIT;
	char errbuf[FL_ERRBUF_SIZE] = "", id[FL_KEY_ID_LEN + 1];
	struct fl_release *r = NULL;
	struct fl_key key = {0};
	const char *file = NULL;
	enum fl_err rv;
	int code;

	if ((code = one_file(c, &file)) != CLI_OK)
		return code;
	if (a->key == NULL)
		return cli_usage_error(c, "--key KEYFILE is required");
	if ((rv = fl_key_file_load(a->key, FL_KEY_RELEASE, &key, errbuf)) != FL_OK) {
		cli_fail(rv, errbuf);
		return CLI_ERROR;
	}
	if ((rv = fl_release_file_read(file, &in, errbuf)) != FL_OK) {
		code = fail(rv, errbuf);
		goto out;
	}
	fl_buf_init(&out, FL_RELEASE_FILE_MAX);
	if ((rv = fl_release_sign(in.data, in.len, &key, &out, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "release '%s'", file);
		code = fail(rv, errbuf);
		goto out;
	}
	/* Read back what we are about to write: it must carry our valid signature. */
	if ((rv =
	         fl_release_verify(out.data, out.len, (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])key.pk,
	                           1, NULL, NULL, &r, errbuf)) != FL_OK ||
	    (rv = fl_release_file_write(file, out.data, out.len, errbuf)) != FL_OK) {
		code = fail(rv, errbuf);
		goto out;
	}
	fl_key_id(key.pk, id);
	printf("signed %s as %s (%zu signature%s)\n", r->hash, id, r->n_signers,
	       r->n_signers == 1 ? "" : "s");
	code = CLI_OK;
out:
	fl_release_free(r);
	fl_key_fini(&key);
	fl_buf_fini(&out);
	fl_buf_fini(&in);
	return code;
}

static void json_signers(struct fl_buf *j, const struct fl_release *r)
{
	char id[FL_KEY_ID_LEN + 1], pub[FL_KEY_PUBLIC_TEXT_LEN + 1];

	fl_buf_puts(j, "[");
	for (size_t i = 0; i < r->n_signers; i++) {
		fl_key_id(r->signers[i].pk, id);
		fl_key_public_text(r->signers[i].pk, pub);
		fl_buf_printf(j, "%s{\"key_id\":\"%s\",\"public_key\":\"%s\",\"valid\":%s}",
		              i ? "," : "", id, pub, r->signers[i].valid ? "true" : "false");
	}
	fl_buf_puts(j, "]");
}

static int do_verify(struct cli *c, struct args *a)
{
	char errbuf[FL_ERRBUF_SIZE] = "", id[FL_KEY_ID_LEN + 1];
	struct fl_buf in = FL_BUF_INIT;
	struct fl_release *r = NULL;
	const char *file = NULL;
	enum fl_err rv;
	int code;

	if ((code = one_file(c, &file)) != CLI_OK)
		return code;
	if (a->n_trusted == 0)
		return cli_usage_error(c, "--trust PUBKEY is required");
	if ((rv = fl_release_file_read(file, &in, errbuf)) != FL_OK) {
		code = fail(rv, errbuf);
		goto out;
	}
	if ((rv = fl_release_verify(
	         in.data, in.len, (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])a->trusted, a->n_trusted,
	         (a->gave & GAVE_HASH) ? a->hash : NULL, a->project, &r, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "release '%s'", file);
		code = fail(rv, errbuf);
		goto out;
	}
	fl_key_id(r->signers[r->verified_by].pk, id);
	if (c->json) {
		struct fl_buf j = FL_BUF_INIT;

		fl_buf_printf(&j, "{\"verified\":true,\"hash\":\"%s\",\"project\":", r->hash);
		fl_json_string(&j, r->project_id);
		fl_buf_printf(&j,
		              ",\"sequence\":%" PRIu64 ",\"migrations\":%zu,"
		              "\"signed_by\":\"%s\",\"signers\":",
		              r->sequence, r->set.count, id);
		json_signers(&j, r);
		printf("%s}\n", fl_buf_str(&j));
		fl_buf_fini(&j);
	} else {
		printf("verified: %s, project %s, sequence %" PRIu64 ", %zu migration%s, signed by "
		       "%s\n",
		       r->hash, r->project_id, r->sequence, r->set.count,
		       r->set.count == 1 ? "" : "s", id);
	}
	code = CLI_OK;
out:
	fl_release_free(r);
	fl_buf_fini(&in);
	return code;
}

static void show_text(const struct fl_release *r)
{
	char id[FL_KEY_ID_LEN + 1], pub[FL_KEY_PUBLIC_TEXT_LEN + 1];

	printf("hash: %s\nproject: %s\nsequence: %" PRIu64 "\n", r->hash, r->project_id,
	       r->sequence);
	if (r->set.provider)
		printf("provider: %s\n", r->set.provider);
	printf("migrations: %zu\n", r->set.count);
	for (size_t i = 0; i < r->set.count; i++) {
		const struct fl_migration *m = &r->set.items[i];

		printf("  %s  %.12s%s%s%s%s\n", m->id, m->checksum, m->down_sql ? "  down" : "",
		       m->verify_sql ? "  verify" : "", m->no_transaction ? "  no-transaction" : "",
		       m->phase == FL_PHASE_EXPAND     ? "  expand"
		       : m->phase == FL_PHASE_CONTRACT ? "  contract"
		                                       : "");
	}
	printf("signatures: %zu\n", r->n_signers);
	for (size_t i = 0; i < r->n_signers; i++) {
		fl_key_id(r->signers[i].pk, id);
		fl_key_public_text(r->signers[i].pk, pub);
		printf("  %s  %s  %s\n", id, pub,
		       r->signers[i].valid ? "valid" : "INVALID (does not verify)");
	}
}

static void show_json(const struct fl_release *r)
{
	struct fl_buf j = FL_BUF_INIT;

	fl_buf_printf(&j, "{\"hash\":\"%s\",\"project\":", r->hash);
	fl_json_string(&j, r->project_id);
	fl_buf_printf(&j, ",\"sequence\":%" PRIu64 ",\"provider\":", r->sequence);
	if (r->set.provider)
		fl_json_string(&j, r->set.provider);
	else
		fl_buf_puts(&j, "null");
	fl_buf_puts(&j, ",\"migrations\":[");
	for (size_t i = 0; i < r->set.count; i++) {
		const struct fl_migration *m = &r->set.items[i];

		fl_buf_puts(&j, i ? ",{\"id\":" : "{\"id\":");
		fl_json_string(&j, m->id);
		fl_buf_printf(&j,
		              ",\"checksum\":\"%s\",\"down\":%s,\"verify\":%s,"
		              "\"no_transaction\":%s,\"requires\":[",
		              m->checksum, m->down_sql ? "true" : "false",
		              m->verify_sql ? "true" : "false",
		              m->no_transaction ? "true" : "false");
		for (size_t k = 0; k < m->n_requires; k++) {
			if (k)
				fl_buf_puts(&j, ",");
			fl_json_string(&j, m->requires[k]);
		}
		fl_buf_puts(&j, "]}");
	}
	fl_buf_puts(&j, "],\"signers\":");
	json_signers(&j, r);
	printf("%s}\n", fl_buf_str(&j));
	fl_buf_fini(&j);
}

static int do_show(struct cli *c, struct args *a)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_buf in = FL_BUF_INIT;
	struct fl_release *r = NULL;
	const char *file = NULL;
	enum fl_err rv;
	int code;

	(void)a;
	if ((code = one_file(c, &file)) != CLI_OK)
		return code;
	if ((rv = fl_release_file_read(file, &in, errbuf)) != FL_OK) {
		code = fail(rv, errbuf);
		goto out;
	}
	if ((rv = fl_release_inspect(in.data, in.len, &r, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "release '%s'", file);
		code = fail(rv, errbuf);
		goto out;
	}
	if (c->json)
		show_json(r);
	else
		show_text(r);
	code = CLI_OK;
out:
	fl_release_free(r);
	fl_buf_fini(&in);
	return code;
}

int cmd_release(int argc, char **argv)
{
	static const struct option options[] = {CLI_DIR_OPTIONS,
	                                        {"out", required_argument, NULL, OPT_OUT},
	                                        {"key", required_argument, NULL, OPT_KEY},
	                                        {"trust", required_argument, NULL, OPT_TRUST},
	                                        {"project", required_argument, NULL, OPT_PROJECT},
	                                        {"sequence", required_argument, NULL, OPT_SEQUENCE},
	                                        {"hash", required_argument, NULL, OPT_HASH},
	                                        {"json", no_argument, NULL, OPT_JSON},
	                                        {0}};
	static const struct {
		const char *name, *cmd;
		unsigned takes;
		int (*run)(struct cli *c, struct args *a);
	} subs[] = {
	    {"build", "release build",
	     GAVE_DIR | GAVE_OUT | GAVE_JSON | GAVE_PROJECT | GAVE_SEQUENCE, do_build},
	    {"sign", "release sign", GAVE_KEY, do_sign},
	    {"verify", "release verify", GAVE_TRUST | GAVE_JSON | GAVE_PROJECT | GAVE_HASH,
	     do_verify},
	    {"show", "release show", GAVE_JSON, do_show},
	};
	static const char *const opt_names[] = {"--dir",  "--out",     "--key",      "--trust",
	                                        "--json", "--project", "--sequence", "--hash"};
	struct args a;
	struct cli c;
	int code;

	if ((code = cmd_release_remote(argc, argv)) >= 0) /* push, list: cmd_release_push.c */
		return code;
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage();
		return CLI_OK;
	}
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "flotilla release: expected build, sign, verify or show (see "
		                "'flotilla release --help')\n");
		return CLI_USAGE;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		unsigned extra;

		if (strcmp(argv[1], subs[i].name) != 0)
			continue;
		memset(&a, 0, sizeof(a));
		cli_init(&c, subs[i].cmd);
		if ((code = cli_parse(&c, argc - 1, argv + 1, options, own, &a, usage, 1 << 20)) !=
		        CLI_OK ||
		    c.help)
			return code;
		if ((extra = a.gave & ~subs[i].takes) != 0) {
			for (size_t k = 0; k < sizeof(opt_names) / sizeof(opt_names[0]); k++)
				if (extra & (1u << k))
					return cli_usage_error(&c, "%s does not apply here",
					                       opt_names[k]);
		}
		return subs[i].run(&c, &a);
	}
	fprintf(stderr,
	        "flotilla release: unknown subcommand '%s' (see 'flotilla release --help')\n",
	        argv[1]);
	return CLI_USAGE;
}
