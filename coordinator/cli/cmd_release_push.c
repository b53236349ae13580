/*
 * flotilla release push|list: hand a signed release to the coordinator, and
 * list what it holds. The coordinator verifies a pushed release against its
 * own trusted release keys and project; agents verify it again before use.
 * (build, sign, verify and show, which need no coordinator: cmd_release.c.)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "release.h"
#include "wire.h"

enum {
	OPT_NAME = OPT_ADMIN_FIRST_FREE,
	OPT_LIMIT,
};

struct args {
	struct cli_admin adm;
	const char *name;
	uint32_t limit;
};

static void usage_push(void)
{
	printf("usage: flotilla release push FILE [--name NAME] [--json] [options]\n\n"
	       "Send a signed release file to the coordinator, which checks its signature\n"
	       "against its trusted release keys and its project before storing it. Pushing\n"
	       "the same release again is harmless: new signatures are merged.\n\n"
	       "  --name NAME            a name for humans (\"v42\")\n"
	       "  --json                 machine-readable output\n" CLI_ADMIN_HELP);
}

static void usage_list(void)
{
	printf("usage: flotilla release list [--limit N] [--json] [options]\n\n"
	       "The releases the coordinator holds, newest first.\n\n"
	       "  --limit N              at most N releases (default: the coordinator's)\n"
	       "  --json                 machine-readable output\n" CLI_ADMIN_HELP);
}

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct args *a = ctx;
	int code = cli_admin_option(&a->adm, c, opt, arg);

	if (code >= 0)
		return code;
	switch (opt) {
	case OPT_NAME:
		if (*arg == '\0' || strlen(arg) > 255)
			return cli_usage_error(c, "--name: 1 to 255 bytes");
		a->name = arg;
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
	}
	return -1;
}

static void release_json(struct jw *w, const char *key, const Flotilla__V1__ReleaseInfo *r)
{
	jw_obj(w, key);
	jw_hex(w, "release_hash", r->release_hash.data, r->release_hash.len);
	jw_str(w, "name", r->name);
	jw_str(w, "project_id", r->project_id);
	jw_uint(w, "sequence", r->sequence);
	jw_uint(w, "migration_count", r->migration_count);
	jw_str(w, "head_migration_id", r->head_migration_id);
	jw_arr(w, "signer_key_ids");
	for (size_t i = 0; i < r->n_signer_key_ids; i++)
		jw_str(w, NULL, r->signer_key_ids[i]);
	jw_end(w);
	jw_int(w, "pushed_at_ms", r->pushed_at_ms);
	jw_str(w, "pushed_by", r->pushed_by);
	jw_uint(w, "size_bytes", r->size_bytes);
	jw_end(w);
}

static void signers_text(const Flotilla__V1__ReleaseInfo *r, char *buf, size_t n)
{
	size_t k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->n_signer_key_ids && k < n; i++) {
		int w = snprintf(buf + k, n - k, "%s%s", i ? "," : "", r->signer_key_ids[i]);

		if (w < 0)
			break;
		k += (size_t)w;
	}
	if (r->n_signer_key_ids == 0)
		snprintf(buf, n, "-");
}

static int do_push(int argc, char **argv)
{
	static const struct option options[] = {CLI_ADMIN_OPTIONS,
	                                        CLI_ADMIN_KEY_OPTION,
	                                        {"name", required_argument, NULL, OPT_NAME},
	                                        {"json", no_argument, NULL, OPT_JSON},
	                                        {0}};
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__ReleasePushRequest push = FLOTILLA__V1__RELEASE_PUSH_REQUEST__INIT;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	char errbuf[FL_ERRBUF_SIZE] = "", signers[256];
	struct fl_buf file = FL_BUF_INIT;
	struct fl_release *r = NULL;
	struct args a = {0};
	size_t valid = 0;
	struct cli c;
	enum fl_err rv;
	int code;

	cli_init(&c, "release push");
	cli_admin_init(&a.adm, "release push");
	if ((code = cli_parse(&c, argc, argv, options, own, &a, usage_push, 1)) != CLI_OK || c.help)
		return code;
	if (c.nargs != 1)
		return cli_usage_error(&c, "expected one release FILE");
	/* Check it here first: a clear message beats the coordinator's refusal. */
	if ((rv = fl_release_file_read(c.args[0], &file, errbuf)) != FL_OK ||
	    (rv = fl_release_inspect(file.data, file.len, &r, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "release '%s'", c.args[0]);
		code = cli_fail(rv, errbuf);
		if (rv == FL_EPARSE || rv == FL_EGRAPH || rv == FL_ECHECKSUM)
			code = CLI_INVALID;
		goto out;
	}
	for (size_t i = 0; i < r->n_signers; i++) {
		if (!r->signers[i].valid) {
			fprintf(stderr,
			        "flotilla: error: release '%s': signature %zu does not verify "
			        "(the file was changed after signing)\n",
			        c.args[0], i + 1);
			code = CLI_UNTRUSTED;
			goto out;
		}
		valid++;
	}
	if (valid == 0) {
		fprintf(stderr,
		        "flotilla: error: release '%s' is not signed: sign it first with "
		        "'flotilla release sign --key release.key %s'\n",
		        c.args[0], c.args[0]);
		code = CLI_UNTRUSTED;
		goto out;
	}
	if ((code = cli_admin_connect(&a.adm, &c)) != CLI_OK)
		goto out;
	push.signed_release.data = (uint8_t *)file.data;
	push.signed_release.len = file.len;
	push.name = (char *)(a.name != NULL ? a.name : "");
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_PUSH;
	req.release_push = &push;
	if ((code = cli_admin_call(&a.adm, &req, false, &reply, &resp)) != CLI_OK)
		goto out;
	if (c.json) {
		struct jw w;

		jw_init(&w);
		jw_obj(&w, NULL);
		jw_hex(&w, "release_hash", resp->release_push->release_hash.data,
		       resp->release_push->release_hash.len);
		jw_bool(&w, "already_present", resp->release_push->already_present);
		release_json(&w, "release", resp->release_push->release);
		jw_end(&w);
		jw_print(&w);
		jw_fini(&w);
	} else {
		const Flotilla__V1__ReleaseInfo *ri = resp->release_push->release;

		signers_text(ri, signers, sizeof(signers));
		printf("%s %s\n", resp->release_push->already_present ? "already there:" : "pushed",
		       r->hash);
		printf("  project %s, sequence %" PRIu64 ", %u migration%s, head %s\n",
		       ri->project_id, ri->sequence, ri->migration_count,
		       ri->migration_count == 1 ? "" : "s", ri->head_migration_id);
		printf("  signed by %s%s\n", signers,
		       resp->release_push->already_present ? " (signatures merged)" : "");
		if (ri->name != NULL && *ri->name != '\0')
			printf("  name %s\n", ri->name);
	}
	code = CLI_OK;
out:
	fl_wire_free(reply);
	fl_release_free(r);
	fl_buf_fini(&file);
	cli_admin_fini(&a.adm);
	return code;
}

static int do_list(int argc, char **argv)
{
	static const struct option options[] = {CLI_ADMIN_OPTIONS,
	                                        CLI_ADMIN_KEY_OPTION,
	                                        {"limit", required_argument, NULL, OPT_LIMIT},
	                                        {"json", no_argument, NULL, OPT_JSON},
	                                        {0}};
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__ReleaseListRequest list = FLOTILLA__V1__RELEASE_LIST_REQUEST__INIT;
	Flotilla__V1__ReleaseListResponse *rl;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	struct args a = {0};
	struct cli c;
	int code;

	cli_init(&c, "release list");
	cli_admin_init(&a.adm, "release list");
	if ((code = cli_parse(&c, argc, argv, options, own, &a, usage_list, 0)) != CLI_OK || c.help)
		return code;
	if ((code = cli_admin_connect(&a.adm, &c)) != CLI_OK)
		goto out;
	list.limit = a.limit;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_LIST;
	req.release_list = &list;
	if ((code = cli_admin_call(&a.adm, &req, false, &reply, &resp)) != CLI_OK)
		goto out;
	rl = resp->release_list;
	if (c.json) {
		struct jw w;

		jw_init(&w);
		jw_obj(&w, NULL);
		jw_arr(&w, "releases");
		for (size_t i = 0; i < rl->n_releases; i++)
			release_json(&w, NULL, rl->releases[i]);
		jw_end(&w);
		jw_end(&w);
		jw_print(&w);
		jw_fini(&w);
	} else if (rl->n_releases == 0) {
		printf("no releases: push one with 'flotilla release push FILE'\n");
	} else {
		int64_t now = fl_wall_ms();

		printf("%-12s  %-10s  %-16s %5s  %4s  %-36s  %s\n", "RELEASE", "NAME", "PROJECT",
		       "SEQ", "MIGR", "HEAD", "PUSHED");
		for (size_t i = 0; i < rl->n_releases; i++) {
			const Flotilla__V1__ReleaseInfo *ri = rl->releases[i];
			char h[16], ago[32];

			printf("%-12s  %-10s  %-16s %5" PRIu64 "  %4u  %-36s  %s\n",
			       cli_short_hash(&ri->release_hash, h, sizeof(h)),
			       *ri->name ? ri->name : "-", ri->project_id, ri->sequence,
			       ri->migration_count, ri->head_migration_id,
			       cli_ago(ri->pushed_at_ms, now, ago, sizeof(ago)));
		}
	}
	code = CLI_OK;
out:
	fl_wire_free(reply);
	cli_admin_fini(&a.adm);
	return code;
}

int cmd_release_remote(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "push") == 0)
		return do_push(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return do_list(argc - 1, argv + 1);
	return -1;
}
