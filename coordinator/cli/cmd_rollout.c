/*
 * flotilla rollout plan|start|status|watch|pause|resume|promote|halt|
 * rollback|retry|list: a release manager's hands on the fleet.
 *
 * `start` and `rollback` are the two commands that authorise SQL: they
 * build an order (proto/order.h: project, release hash, target, the tenants
 * it may touch, the whole policy, expiry, a fresh nonce) and sign it here
 * with a release key (--release-key), which never leaves this machine. The
 * operator key (--key) only speaks to the coordinator; agents act on what the
 * release key signed. `plan` sends the same order unsigned, as a dry run.
 *
 * `watch` (and `start --wait`) polls the rollout's status and exits with a
 * code that says how it ended (README "Exit codes"): 0 completed, 15 halted,
 * 16 rolled back, 17 its order expired.
 */
#include <errno.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "duration.h"
#include "lint.h"
#include "mem.h"
#include "order.h"
#include "policy.h"
#include "release.h"
#include "wire.h"

#define EXPIRES_DEFAULT_MS (INT64_C(7) * 86400000)
#define WATCH_INTERVAL_MS  1000
#define BAR_WIDTH          30

enum {
	OPT_RELEASE = OPT_ADMIN_FIRST_FREE,
	OPT_POLICY,
	OPT_SELECT,
	OPT_TENANT,
	OPT_ALL,
	OPT_TARGET,
	OPT_RELEASE_KEY,
	OPT_EXPIRES,
	OPT_REASON,
	OPT_WAIT,
	OPT_WAVE,
	OPT_TO,
	OPT_INTERVAL,
	OPT_WAIT_TIMEOUT,
	OPT_EXIT_ON_BLOCKED,
	OPT_ROLLOUT_JSON,
};

/* Which options each subcommand takes (bit per option, from OPT_RELEASE). */
#define G(opt) (1u << ((opt)-OPT_RELEASE))
#define ORDER_OPTS                                                                                 \
	(G(OPT_RELEASE) | G(OPT_POLICY) | G(OPT_SELECT) | G(OPT_TENANT) | G(OPT_ALL) |             \
	 G(OPT_TARGET) | G(OPT_EXPIRES) | G(OPT_REASON))
#define WATCH_OPTS (G(OPT_INTERVAL) | G(OPT_WAIT_TIMEOUT) | G(OPT_EXIT_ON_BLOCKED))

struct args {
	struct cli_admin adm;
	unsigned gave;
	const char *release;
	const char *policy_file;
	struct cli_labels select;
	struct fl_selector tenants; /* --tenant ids (sorted, unique) */
	bool all;
	const char *target;
	const char *release_key;
	int64_t expires_ms;
	const char *reason;
	bool wait;
	const char *wave;
	const char *to;
	int64_t interval_ms;
	int64_t wait_timeout_ms;
	bool exit_on_blocked;
};

struct sub {
	const char *name, *cmd, *usage;
	unsigned takes;
	int max_args;
	int (*run)(struct cli *c, struct args *a);
};

static const struct sub *current;

#define ORDER_HELP                                                                                 \
	"  --release HASH|FILE    the release: its hash (or a unique prefix) as the\n"             \
	"                         coordinator holds it, or the release file\n"                     \
	"  --policy FILE          rollout policy (YAML, docs/POLICY.md)\n"                         \
	"  --select k=v,...       tenants carrying every label (repeatable)\n"                     \
	"  --tenant ID            this tenant (repeatable; with --select, both must match)\n"      \
	"  --all                  every tenant of the project\n"                                   \
	"  --target ID            the migration to bring tenants to (default: the\n"               \
	"                         release's last)\n"                                               \
	"  --expires DUR          agents refuse the order after DUR (default 7d)\n"                \
	"  --reason TEXT          why, for the audit log (\"ticket OPS-123\")\n"

#define WATCH_HELP                                                                                 \
	"  --interval DUR         how often to ask (default 1s)\n"                                 \
	"  --wait-timeout DUR     stop watching after DUR (exit 19)\n"                             \
	"  --exit-on-blocked      exit 18 when the rollout waits for a human (paused, or\n"        \
	"                         at a manual gate) instead of waiting with it\n"

#define EXIT_HELP                                                                                  \
	"Exits 0 when the rollout completed, 15 when it halted, 16 when it was\n"                  \
	"rolled back, 17 when its order expired first.\n"

static const char usage_plan[] =
    "usage: flotilla rollout plan --release HASH|FILE --policy FILE\n"
    "                             (--select k=v,... | --tenant ID... | --all) [options]\n\n"
    "What a rollout would do, changing nothing: its waves and their tenants,\n"
    "tenants already at the target, tenants that block it, the migrations it\n"
    "applies (expand or contract, lint findings when --release is a file), whether\n"
    "a rollback is possible (every migration has down.sql), and the least time it\n"
    "takes.\n\n" ORDER_HELP "  --json                 machine-readable output\n" CLI_ADMIN_HELP;

static const char usage_start[] =
    "usage: flotilla rollout start --release HASH|FILE --policy FILE --release-key FILE\n"
    "                              (--select k=v,... | --tenant ID... | --all) [--wait]\n"
    "                              [options]\n\n"
    "Sign a rollout order with your release key and start it: the coordinator\n"
    "schedules only within what you signed (tenants, target, waves, health checks,\n"
    "failure policy), and agents refuse anything else. Prints the rollout id and\n"
    "its plan.\n\n" ORDER_HELP
    "  --release-key FILE     the release key that signs the order (kind release)\n"
    "  --wait                 then watch it until it ends (as 'rollout watch')\n" WATCH_HELP
    "  --json                 machine-readable output\n" CLI_ADMIN_HELP "\nWith --wait: " EXIT_HELP;

static const char usage_status[] =
    "usage: flotilla rollout status [ID] [--json] [options]\n\n"
    "One rollout in detail, or every rollout not finished.\n\n"
    "  --json                 machine-readable output\n" CLI_ADMIN_HELP;

static const char usage_list[] =
    "usage: flotilla rollout list [--all] [--json] [options]\n\n"
    "Rollouts, newest first: those not finished, or --all.\n\n"
    "  --all                  finished rollouts too\n"
    "  --json                 machine-readable output\n" CLI_ADMIN_HELP;

static const char usage_watch[] =
    "usage: flotilla rollout watch ID [options]\n\n"
    "Follow a rollout until it ends: live progress bars per wave on a terminal\n"
    "(colors unless NO_COLOR is set), one line per change otherwise (--json: one\n"
    "JSON document per change). " EXIT_HELP "\n" WATCH_HELP
    "  --json                 JSON lines\n" CLI_ADMIN_HELP;

static const char usage_pause[] =
    "usage: flotilla rollout pause ID [--reason TEXT] [options]\n\n"
    "Work under way finishes; nothing new starts until 'rollout resume'.\n\n"
    "  --reason TEXT          why, for the audit log\n"
    "  --json                 machine-readable output\n" CLI_ADMIN_HELP;

static const char usage_resume[] =
    "usage: flotilla rollout resume ID [--reason TEXT] [options]\n\n"
    "Go on with a paused rollout.\n\n"
    "  --reason TEXT          why, for the audit log\n"
    "  --json                 machine-readable output\n" CLI_ADMIN_HELP;

static const char usage_promote[] =
    "usage: flotilla rollout promote ID [--wave NAME|N] [--reason TEXT] [options]\n\n"
    "Let the rollout past the manual gate of the wave waiting there. With --wave,\n"
    "only if that wave (its name, or its number from 1) is the one waiting, so a\n"
    "repeated promote never skips a wave.\n\n"
    "  --wave NAME|N          the wave waiting at its gate\n"
    "  --reason TEXT          why, for the audit log\n"
    "  --json                 machine-readable output\n" CLI_ADMIN_HELP;

static const char usage_halt[] =
    "usage: flotilla rollout halt ID --reason TEXT [options]\n\n"
    "Stop the rollout everywhere now: agents start nothing new for it and cancel\n"
    "or finish running work as its policy says (on_halt). Then 'rollout retry',\n"
    "'rollout rollback', or a new release.\n\n"
    "  --reason TEXT          why, for the audit log and the agents' logs\n"
    "  --json                 machine-readable output\n" CLI_ADMIN_HELP;

static const char usage_rollback[] =
    "usage: flotilla rollout rollback ID --release-key FILE [--select k=v,... | --tenant ID...]\n"
    "                                 [--to MIGRATION] [--reason TEXT] [--wait] [options]\n\n"
    "Sign a rollback order for the rollout and send it: agents revert with\n"
    "down.sql, newest first, what the rollout applied (or everything after\n"
    "--to), on the tenants selected (default: all of the rollout's). Refused up\n"
    "front if a migration to revert has no down.sql.\n\n"
    "  --release-key FILE     the release key that signs the rollback order\n"
    "  --select k=v,...       only tenants carrying every label\n"
    "  --tenant ID            only this tenant (repeatable)\n"
    "  --to MIGRATION         revert the release's migrations after this one\n"
    "  --expires DUR          agents refuse the order after DUR (default 7d)\n"
    "  --reason TEXT          why, for the audit log\n"
    "  --wait                 watch until it is rolled back (exit 0) or ends\n"
    "                         otherwise\n" WATCH_HELP
    "  --json                 machine-readable output\n" CLI_ADMIN_HELP;

static const char usage_retry[] =
    "usage: flotilla rollout retry ID [--tenant ID...] [--reason TEXT] [options]\n\n"
    "Queue failed tenants of the current wave again (new assignments), and set\n"
    "the rollout running.\n\n"
    "  --tenant ID            only this tenant (repeatable; default: every failed one)\n"
    "  --reason TEXT          why, for the audit log\n"
    "  --json                 machine-readable output\n" CLI_ADMIN_HELP;

static void usage_current(void)
{
	fputs(current->usage, stdout);
}

static void usage_family(FILE *out)
{
	fprintf(out, "usage: flotilla rollout <command> [options]\n\n"
	             "  plan       what a rollout would do (dry run)\n"
	             "  start      sign a rollout order and start it\n"
	             "  status     a rollout in detail, or every active one\n"
	             "  watch      follow a rollout until it ends (exit code says how)\n"
	             "  list       rollouts, newest first\n"
	             "  pause      start nothing new until resume\n"
	             "  resume     go on with a paused rollout\n"
	             "  promote    let it past a manual gate\n"
	             "  halt       stop it everywhere now\n"
	             "  rollback   sign a rollback order: revert with down.sql\n"
	             "  retry      queue failed tenants again\n\n"
	             "'flotilla rollout <command> --help' describes each.\n");
}

static int duration_arg(struct cli *c, const char *opt, const char *arg, int64_t min, int64_t *ms)
{
	char errbuf[FL_ERRBUF_SIZE];

	if (cli_duration_days(arg, ms, errbuf) != FL_OK)
		return cli_usage_error(c, "%s: %s", opt, errbuf);
	if (*ms < min) {
		char d[32];

		fl_duration_format(min, d, sizeof(d));
		return cli_usage_error(c, "%s: at least %s", opt, d);
	}
	return CLI_OK;
}

static int own(struct cli *c, int opt, const char *arg, void *ctx)
{
	char errbuf[FL_ERRBUF_SIZE];
	struct args *a = ctx;
	int code = cli_admin_option(&a->adm, c, opt, arg);

	if (code >= 0)
		return code;
	if (opt >= OPT_RELEASE && opt <= OPT_ROLLOUT_JSON)
		a->gave |= G(opt);
	switch (opt) {
	case OPT_RELEASE:
		a->release = arg;
		return CLI_OK;
	case OPT_POLICY:
		a->policy_file = arg;
		return CLI_OK;
	case OPT_SELECT:
		return cli_labels_add(c, &a->select, "--select", arg);
	case OPT_TENANT:
		if (fl_selector_add_tenant(&a->tenants, arg, errbuf) != FL_OK)
			return cli_usage_error(c, "--tenant: %s", errbuf);
		return CLI_OK;
	case OPT_ALL:
		a->all = true;
		return CLI_OK;
	case OPT_TARGET:
		a->target = arg;
		return CLI_OK;
	case OPT_RELEASE_KEY:
		a->release_key = arg;
		return CLI_OK;
	case OPT_EXPIRES:
		if ((code = duration_arg(c, "--expires", arg, 60000, &a->expires_ms)) != CLI_OK)
			return code;
		if (a->expires_ms > FL_ORDER_LIFETIME_MAX_MS)
			return cli_usage_error(c, "--expires: at most 366d");
		return CLI_OK;
	case OPT_REASON:
		if (strlen(arg) > FL_ORDER_REASON_MAX)
			return cli_usage_error(c, "--reason: at most %d bytes",
			                       FL_ORDER_REASON_MAX);
		a->reason = arg;
		return CLI_OK;
	case OPT_WAIT:
		a->wait = true;
		return CLI_OK;
	case OPT_WAVE:
		a->wave = arg;
		return CLI_OK;
	case OPT_TO:
		a->to = arg;
		return CLI_OK;
	case OPT_INTERVAL:
		return duration_arg(c, "--interval", arg, 100, &a->interval_ms);
	case OPT_WAIT_TIMEOUT:
		return duration_arg(c, "--wait-timeout", arg, 1, &a->wait_timeout_ms);
	case OPT_EXIT_ON_BLOCKED:
		a->exit_on_blocked = true;
		return CLI_OK;
	case OPT_ROLLOUT_JSON:
		c->json = true;
		return CLI_OK;
	}
	return -1;
}

/* ---- showing rollouts ---- */

static const char *rstate(int v, char *buf)
{
	return cli_enum_name(&flotilla__v1__rollout_state__descriptor, v, buf, CLI_ENUM_NAME_MAX);
}

static const char *wstate(int v, char *buf)
{
	return cli_enum_name(&flotilla__v1__wave_state__descriptor, v, buf, CLI_ENUM_NAME_MAX);
}

static const char *gate_name(int v, char *buf)
{
	return cli_enum_name(&flotilla__v1__gate__descriptor, v, buf, CLI_ENUM_NAME_MAX);
}

static const char *failure_name(int v, char *buf)
{
	return cli_enum_name(&flotilla__v1__failure_policy__descriptor, v, buf, CLI_ENUM_NAME_MAX);
}

static const char *selector_text(const Flotilla__V1__TenantSelector *s, char *buf, size_t n)
{
	char labels[256];
	size_t k;

	if (s == NULL || s->all) {
		snprintf(buf, n, "all tenants");
		return buf;
	}
	buf[0] = '\0';
	k = 0;
	if (s->n_labels > 0)
		k += (size_t)snprintf(
		    buf, n, "labels %s",
		    cli_labels_text(s->labels, s->n_labels, labels, sizeof(labels)));
	if (s->n_tenant_ids > 0 && k < n)
		snprintf(buf + k, n - k, "%stenants %s%s", k ? ", " : "", s->tenant_ids[0],
		         s->n_tenant_ids > 1 ? ",..." : "");
	return buf;
}

/* Tenants of a wave that are finished one way or another. */
static uint32_t wave_done(const Flotilla__V1__WaveStatus *ws)
{
	return ws->tenants_applied + ws->tenants_failed + ws->tenants_skipped +
	       ws->tenants_rolled_back;
}

static void wave_counts(const Flotilla__V1__WaveStatus *ws, char *buf, size_t n)
{
	size_t k = 0;
	const struct {
		const char *name;
		uint32_t v;
	} parts[] = {
	    {"applied", ws->tenants_applied},         {"skipped", ws->tenants_skipped},
	    {"running", ws->tenants_running},         {"failed", ws->tenants_failed},
	    {"rolled back", ws->tenants_rolled_back}, {"unreachable", ws->tenants_unreachable},
	};

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && k < n; i++) {
		int w;

		if (parts[i].v == 0)
			continue;
		w = snprintf(buf + k, n - k, "%s%s %u", k ? ", " : "", parts[i].name, parts[i].v);
		if (w < 0)
			break;
		k += (size_t)w;
	}
}

/* "running", "baking (until 12:03:00Z)", "failed: why": a wave's state for humans. */
static void wave_state_text(const Flotilla__V1__WaveStatus *ws, int64_t now, char *buf, size_t n)
{
	char b[CLI_ENUM_NAME_MAX], t[32];

	if (ws->state == FLOTILLA__V1__WAVE_STATE__WAVE_STATE_BAKING && ws->bake_until_ms > 0)
		snprintf(buf, n, "baking, ends %s", cli_ago(ws->bake_until_ms, now, t, sizeof(t)));
	else if (ws->state == FLOTILLA__V1__WAVE_STATE__WAVE_STATE_AWAITING_PROMOTE)
		snprintf(buf, n, "waiting for 'rollout promote'");
	else
		snprintf(buf, n, "%s", wstate(ws->state, b));
	if (ws->state_reason != NULL && *ws->state_reason != '\0') {
		size_t k = strlen(buf);

		snprintf(buf + k, n - k, ": %s", ws->state_reason);
	}
}

static void rollout_head_text(const Flotilla__V1__RolloutInfo *r, int64_t now, char *buf, size_t n)
{
	char b[CLI_ENUM_NAME_MAX];
	size_t k;

	k = (size_t)snprintf(buf, n, "rollout %s: %s", r->id, rstate(r->state, b));
	if (k < n && r->n_waves > 0 && r->current_wave < r->n_waves &&
	    (r->state == FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_RUNNING ||
	     r->state == FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_PAUSED))
		k += (size_t)snprintf(buf + k, n - k, ", wave %u/%zu %s", r->current_wave + 1,
		                      r->n_waves, r->waves[r->current_wave]->name);
	if (k < n && r->state_reason != NULL && *r->state_reason != '\0')
		snprintf(buf + k, n - k, " (%s)", r->state_reason);
	(void)now;
}

static void rollout_text(const Flotilla__V1__RolloutInfo *r)
{
	char b[CLI_ENUM_NAME_MAX], h[16], t[32], ago[32], sel[300], line[512], counts[160];
	int64_t now = fl_wall_ms();

	rollout_head_text(r, now, line, sizeof(line));
	printf("%s\n", line);
	printf("  release    %s (%s), target %s\n", cli_short_hash(&r->release_hash, h, sizeof(h)),
	       r->project_id, r->target_migration_id);
	printf("  policy     %s, on failure %s\n", r->policy_name, failure_name(r->on_failure, b));
	printf("  tenants    %u (%s)\n", r->tenants_total,
	       selector_text(r->selector, sel, sizeof(sel)));
	printf("  started    %s by %s, order signed by %s\n",
	       cli_time(r->created_at_ms, t, sizeof(t)), *r->created_by ? r->created_by : "-",
	       *r->signed_by ? r->signed_by : "-");
	printf("  order      %s, expires %s\n", cli_short_hash(&r->order_hash, h, sizeof(h)),
	       cli_ago(r->expires_at_ms, now, ago, sizeof(ago)));
	for (size_t i = 0; i < r->n_waves; i++) {
		const Flotilla__V1__WaveStatus *ws = r->waves[i];

		wave_state_text(ws, now, line, sizeof(line));
		wave_counts(ws, counts, sizeof(counts));
		printf("  wave %zu/%zu %-12s %4u/%-4u %s%s%s\n", i + 1, r->n_waves, ws->name,
		       wave_done(ws), ws->tenants_total, line, *counts ? "; " : "", counts);
	}
}

/* ---- plans ---- */

/* What the CLI knows of the release: from the file, or from the coordinator. */
struct rel {
	uint8_t hash[32];
	char hex[65];
	char *project;
	uint64_t sequence;
	char *head;
	struct fl_release *file; /* with --release FILE: SQL for lint, down.sql */
};

static void rel_fini(struct rel *r)
{
	free(r->project);
	free(r->head);
	fl_release_free(r->file);
	memset(r, 0, sizeof(*r));
}

static bool is_hex(const char *s)
{
	size_t n = strlen(s);

	if (n < 6 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int rel_from_file(struct rel *r, const char *path)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_buf in = FL_BUF_INIT;
	enum fl_err rv;
	int code = CLI_OK;

	if ((rv = fl_release_file_read(path, &in, errbuf)) != FL_OK ||
	    (rv = fl_release_inspect(in.data, in.len, &r->file, errbuf)) != FL_OK) {
		fl_err_prefix(errbuf, "release '%s'", path);
		code = cli_fail(rv, errbuf);
		if (rv == FL_EPARSE || rv == FL_EGRAPH || rv == FL_ECHECKSUM)
			code = CLI_INVALID;
		goto out;
	}
	memcpy(r->hash, r->file->digest, 32);
	memcpy(r->hex, r->file->hash, sizeof(r->hex));
	r->project = fl_strdup(r->file->project_id);
	r->sequence = r->file->sequence;
	if (r->file->set.count == 0) {
		fprintf(stderr, "flotilla: error: release '%s' holds no migration\n", path);
		code = CLI_INVALID;
		goto out;
	}
	r->head = fl_strdup(r->file->set.items[r->file->set.count - 1].id);
out:
	fl_buf_fini(&in);
	return code;
}

/* A hash or a unique prefix of one, among the releases the coordinator holds. */
static int rel_from_coordinator(struct rel *r, struct cli_admin *adm, const char *prefix)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__ReleaseListRequest list = FLOTILLA__V1__RELEASE_LIST_REQUEST__INIT;
	const Flotilla__V1__ReleaseInfo *found = NULL;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	size_t matches = 0, plen = strlen(prefix);
	int code;

	list.limit = 100000;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_LIST;
	req.release_list = &list;
	if ((code = cli_admin_call(adm, &req, false, &reply, &resp)) != CLI_OK)
		return code;
	for (size_t i = 0; i < resp->release_list->n_releases; i++) {
		const Flotilla__V1__ReleaseInfo *ri = resp->release_list->releases[i];
		char hex[65];

		if (ri->release_hash.len != 32)
			continue;
		for (size_t k = 0; k < 32; k++)
			snprintf(hex + 2 * k, 3, "%02x", ri->release_hash.data[k]);
		if (strncmp(hex, prefix, plen) == 0) {
			found = ri;
			matches++;
		}
	}
	if (matches == 0) {
		fprintf(stderr,
		        "flotilla: error: the coordinator holds no release '%s': push it with "
		        "'flotilla release push FILE'\n",
		        prefix);
		code = CLI_NOT_FOUND;
	} else if (matches > 1) {
		fprintf(stderr, "flotilla: error: '%s' names %zu releases: give more digits\n",
		        prefix, matches);
		code = CLI_USAGE;
	} else {
		memcpy(r->hash, found->release_hash.data, 32);
		for (size_t k = 0; k < 32; k++)
			snprintf(r->hex + 2 * k, 3, "%02x", r->hash[k]);
		r->project = fl_strdup(found->project_id);
		r->sequence = found->sequence;
		r->head = fl_strdup(found->head_migration_id);
		code = CLI_OK;
	}
	fl_wire_free(reply);
	return code;
}

/* --release: a file that exists, else a hash (prefix) the coordinator holds. */
static int rel_resolve(struct cli *c, struct rel *r, struct cli_admin *adm, const char *arg)
{
	if (access(arg, F_OK) == 0)
		return rel_from_file(r, arg);
	if (!is_hex(arg))
		return cli_usage_error(c,
		                       "--release: '%s' is neither a file nor a release hash "
		                       "(6 to 64 lowercase hex digits)",
		                       arg);
	return rel_from_coordinator(r, adm, arg);
}

/* Lint of one migration of the release file, for the plan. */
struct mig_note {
	const char *id;
	bool known; /* found in the release file */
	bool has_down;
	bool breaking;
	const char *phase;
	struct fl_lint_report lint;
	bool linted;
};

static void notes_fini(struct mig_note *notes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (notes[i].linted)
			fl_lint_report_fini(&notes[i].lint);
	free(notes);
}

static struct mig_note *notes_make(const Flotilla__V1__RolloutPlan *p, const struct rel *r)
{
	struct mig_note *notes = fl_calloc(p->n_migration_ids + 1, sizeof(*notes));
	char errbuf[FL_ERRBUF_SIZE];

	for (size_t i = 0; i < p->n_migration_ids; i++) {
		const struct fl_migration *m =
		    r->file != NULL ? fl_migration_set_find(&r->file->set, p->migration_ids[i])
		                    : NULL;
		struct mig_note *n = &notes[i];

		n->id = p->migration_ids[i];
		if (m == NULL)
			continue;
		n->known = true;
		n->has_down = m->down_sql != NULL;
		n->phase = m->phase == FL_PHASE_EXPAND     ? "expand"
		           : m->phase == FL_PHASE_CONTRACT ? "contract"
		                                           : NULL;
		if (fl_lint_migration(m, &n->lint, errbuf) == FL_OK) {
			n->linted = true;
			n->breaking = n->lint.breaking;
		}
	}
	return notes;
}

/* The least time the rollout takes: its bakes (apply time comes on top). */
static int64_t plan_min_ms(const Flotilla__V1__RolloutPlan *p, size_t *gates)
{
	int64_t ms = 0;

	*gates = 0;
	for (size_t i = 0; i < p->n_waves; i++) {
		if (p->waves[i]->tenant_count == 0)
			continue;
		ms += p->waves[i]->bake_ms;
		if (p->waves[i]->gate == FLOTILLA__V1__GATE__GATE_MANUAL && i + 1 < p->n_waves)
			(*gates)++;
	}
	return ms;
}

static void plan_json(struct jw *w, const char *key, const Flotilla__V1__RolloutPlan *p,
                      const struct rel *r, const struct mig_note *notes)
{
	char b[CLI_ENUM_NAME_MAX];
	size_t gates;

	jw_obj(w, key);
	jw_str(w, "policy_name", p->policy_name);
	jw_hex(w, "release_hash", r->hash, 32);
	jw_str(w, "project_id", r->project);
	jw_uint(w, "sequence", r->sequence);
	jw_uint(w, "tenant_count", p->tenant_count);
	jw_uint(w, "tenants_at_target", p->tenants_at_target);
	jw_uint(w, "tenants_blocked", p->tenants_blocked);
	jw_str(w, "on_failure", failure_name(p->on_failure, b));
	jw_bool(w, "rollback_possible", p->rollback_possible);
	jw_arr(w, "rollback_blockers");
	for (size_t i = 0; i < p->n_rollback_blockers; i++)
		jw_str(w, NULL, p->rollback_blockers[i]);
	jw_end(w);
	jw_arr(w, "waves");
	for (size_t i = 0; i < p->n_waves; i++) {
		const Flotilla__V1__WavePlan *wp = p->waves[i];

		jw_obj(w, NULL);
		jw_uint(w, "index", wp->index);
		jw_str(w, "name", wp->name);
		jw_uint(w, "tenant_count", wp->tenant_count);
		jw_arr(w, "tenant_ids");
		for (size_t k = 0; k < wp->n_tenant_ids; k++)
			jw_str(w, NULL, wp->tenant_ids[k]);
		jw_end(w);
		jw_bool(w, "tenant_ids_truncated", wp->tenant_ids_truncated);
		jw_uint(w, "max_parallel", wp->max_parallel);
		jw_uint(w, "max_failures", wp->max_failures);
		jw_double(w, "max_failure_rate", wp->max_failure_rate);
		jw_uint(w, "bake_ms", wp->bake_ms);
		jw_str(w, "gate", gate_name(wp->gate, b));
		jw_end(w);
	}
	jw_end(w);
	jw_arr(w, "migrations");
	for (size_t i = 0; i < p->n_migration_ids; i++) {
		const struct mig_note *n = &notes[i];

		jw_obj(w, NULL);
		jw_str(w, "id", n->id);
		if (n->known) {
			jw_bool(w, "has_down", n->has_down);
			jw_str(w, "phase", n->phase);
			if (n->linted) {
				jw_bool(w, "breaking", n->breaking);
				jw_arr(w, "findings");
				for (size_t k = 0; k < n->lint.count; k++) {
					const struct fl_lint_finding *f = &n->lint.findings[k];

					jw_obj(w, NULL);
					jw_str(w, "rule", f->rule);
					jw_str(w, "severity", fl_lint_severity_name(f->severity));
					jw_str(w, "file", f->file);
					jw_int(w, "line", f->line);
					jw_str(w, "message", f->message);
					jw_end(w);
				}
				jw_end(w);
			}
		}
		jw_end(w);
	}
	jw_end(w);
	jw_arr(w, "warnings");
	for (size_t i = 0; i < p->n_warnings; i++)
		jw_str(w, NULL, p->warnings[i]);
	jw_end(w);
	jw_int(w, "eta_ms", p->eta_ms);
	jw_int(w, "min_duration_ms", plan_min_ms(p, &gates));
	jw_uint(w, "manual_gates", gates);
	jw_end(w);
}

/* "budget 0 failures", "budget 2% failed", "budget 1 failure or 2% failed": from the policy
 * file when there is one (it says what is unset), else from the plan. */
static void budget_text(const Flotilla__V1__WavePlan *wp, const struct fl_wave *w, char *buf,
                        size_t n)
{
	int64_t mf = w != NULL ? w->max_failures : (int64_t)wp->max_failures;
	double rate = w != NULL                  ? w->max_failure_rate
	              : wp->max_failure_rate > 0 ? wp->max_failure_rate
	                                         : -1;

	if (mf < 0 && rate < 0)
		mf = 0; /* neither given: max_failures 0 */
	if (mf >= 0 && rate >= 0)
		snprintf(buf, n, "budget %lld failure%s or %.3g%% failed", (long long)mf,
		         mf == 1 ? "" : "s", rate * 100);
	else if (mf >= 0)
		snprintf(buf, n, "budget %lld failure%s", (long long)mf, mf == 1 ? "" : "s");
	else
		snprintf(buf, n, "budget %.3g%% failed", rate * 100);
}

/* Warnings the plan already shows otherwise: the ETA, and lint when it was run here. */
static bool shown_elsewhere(const char *warning, const struct rel *r)
{
	return strncmp(warning, "eta:", 4) == 0 ||
	       (r->file != NULL && strncmp(warning, "lint:", 5) == 0);
}

static void plan_text(const Flotilla__V1__RolloutPlan *p, const struct rel *r,
                      const struct mig_note *notes, const struct fl_policy *pol)
{
	char b[CLI_ENUM_NAME_MAX], d[32], budget[96];
	size_t gates;
	int64_t min;

	printf("release %.12s (%s, sequence %" PRIu64 "), policy %s\n", r->hex, r->project,
	       r->sequence, p->policy_name);
	printf("tenants: %u selected, %u already at the target, %u blocked%s\n", p->tenant_count,
	       p->tenants_at_target, p->tenants_blocked,
	       p->tenants_blocked ? " (agent offline or a failed migration in their history)" : "");
	printf("waves:\n");
	for (size_t i = 0; i < p->n_waves; i++) {
		const Flotilla__V1__WavePlan *wp = p->waves[i];

		budget_text(wp, pol != NULL && i < pol->n_waves ? &pol->waves[i] : NULL, budget,
		            sizeof(budget));
		fl_duration_format(wp->bake_ms, d, sizeof(d));
		printf("  %zu/%zu %-12s %5u tenant%s  %u at once, %s, bake %s, gate %s\n", i + 1,
		       p->n_waves, wp->name, wp->tenant_count, wp->tenant_count == 1 ? " " : "s",
		       wp->max_parallel, budget, d, gate_name(wp->gate, b));
		if (wp->n_tenant_ids > 0 && wp->n_tenant_ids <= 10) {
			printf("        ");
			for (size_t k = 0; k < wp->n_tenant_ids; k++)
				printf("%s%s", k ? " " : "", wp->tenant_ids[k]);
			printf("%s\n", wp->tenant_ids_truncated ? " ..." : "");
		}
	}
	printf("migrations applied (%zu):\n", p->n_migration_ids);
	for (size_t i = 0; i < p->n_migration_ids; i++) {
		const struct mig_note *n = &notes[i];

		if (!n->known) {
			printf("  %s\n", n->id);
			continue;
		}
		printf("  %-44s %s%s%s\n", n->id,
		       !n->linted    ? (n->phase ? n->phase : "")
		       : n->breaking ? "contract (breaking)"
		                     : "expand (compatible)",
		       n->has_down ? "" : ", no down.sql",
		       n->phase != NULL && n->linted &&
		               (strcmp(n->phase, "contract") == 0) != n->breaking
		           ? ", declared otherwise"
		           : "");
		for (size_t k = 0; n->linted && k < n->lint.count; k++)
			printf("      %s: %s: %s\n",
			       fl_lint_severity_name(n->lint.findings[k].severity),
			       n->lint.findings[k].rule, n->lint.findings[k].message);
	}
	if (r->file == NULL && p->n_migration_ids > 0)
		printf("  (pass --release FILE for expand/contract and lint per migration)\n");
	if (p->rollback_possible) {
		printf("rollback: possible, every migration has down.sql; on failure: %s\n",
		       failure_name(p->on_failure, b));
	} else {
		printf("rollback: NOT possible, no down.sql in:");
		for (size_t i = 0; i < p->n_rollback_blockers; i++)
			printf(" %s", p->rollback_blockers[i]);
		printf("; on failure: %s\n", failure_name(p->on_failure, b));
	}
	for (size_t i = 0; i < p->n_warnings; i++)
		if (!shown_elsewhere(p->warnings[i], r))
			printf("warning: %s\n", p->warnings[i]);
	min = plan_min_ms(p, &gates);
	if (p->eta_ms > 0) {
		fl_duration_format((p->eta_ms + 500) / 1000 * 1000, d, sizeof(d));
		printf("time: about %s, from how long earlier applies took",
		       p->eta_ms >= 1000 ? d : "1s");
	} else {
		fl_duration_format(min, d, sizeof(d));
		printf("time: at least %s of bake%s", d,
		       min > 0 ? ", plus the time to apply (no apply timed yet)" : "");
	}
	if (gates > 0)
		printf("; waits for 'rollout promote' %zu time%s", gates, gates == 1 ? "" : "s");
	printf("\n");
}

/* ---- building orders ---- */

static int need_selector(struct cli *c, struct args *a, struct fl_selector *s)
{
	char errbuf[FL_ERRBUF_SIZE];

	if (a->all && (a->select.set.n > 0 || a->tenants.n_tenant_ids > 0))
		return cli_usage_error(c, "--all goes with neither --select nor --tenant");
	if (!a->all && a->select.set.n == 0 && a->tenants.n_tenant_ids == 0)
		return cli_usage_error(c, "which tenants? pass --select k=v, --tenant ID or --all");
	fl_selector_copy(s, &a->tenants);
	fl_labels_fini(&s->labels);
	fl_labels_copy(&s->labels, &a->select.set);
	s->all = a->all;
	if (fl_selector_check(s, errbuf) != FL_OK)
		return cli_usage_error(c, "%s", errbuf);
	return CLI_OK;
}

static int load_release_key(const char *path, struct fl_key *key)
{
	char errbuf[FL_ERRBUF_SIZE] = "";

	if (fl_key_file_load(path, FL_KEY_RELEASE, key, errbuf) != FL_OK) {
		fprintf(stderr, "flotilla: error: %s\n", errbuf);
		return CLI_ERROR;
	}
	return CLI_OK;
}

/* Everything plan and start share: the release, the policy, the order. */
struct order_ctx {
	struct rel rel;
	struct fl_policy policy;
	struct fl_selector selector;
	struct fl_buf order; /* a packed SignedOrder, unsigned */
	char order_hash[FL_ORDER_HASH_HEX_LEN + 1];
};

static void order_ctx_fini(struct order_ctx *o)
{
	rel_fini(&o->rel);
	fl_policy_fini(&o->policy);
	fl_selector_fini(&o->selector);
	fl_buf_fini(&o->order);
}

/* Checked before connecting: what the command line alone can tell. */
static int order_args(struct cli *c, struct args *a, struct order_ctx *o)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;
	int code;

	fl_policy_init(&o->policy);
	fl_selector_init(&o->selector);
	fl_buf_init(&o->order, FL_ORDER_FILE_MAX);
	if (a->release == NULL)
		return cli_usage_error(c, "--release HASH|FILE is required");
	if (a->policy_file == NULL)
		return cli_usage_error(c, "--policy FILE is required");
	if ((code = need_selector(c, a, &o->selector)) != CLI_OK)
		return code;
	fl_policy_fini(&o->policy);
	if ((rv = fl_policy_load_file(a->policy_file, &o->policy, errbuf)) != FL_OK) {
		fprintf(stderr, "flotilla: error: %s\n", errbuf);
		return rv == FL_EPARSE ? CLI_INVALID : CLI_ERROR;
	}
	return CLI_OK;
}

/* After connecting: resolve the release, check the target, build the order. */
static int order_build(struct cli *c, struct args *a, struct order_ctx *o)
{
	char errbuf[FL_ERRBUF_SIZE] = "";
	struct fl_rollout_params p = {0};
	const char *target;
	int code;

	if ((code = rel_resolve(c, &o->rel, &a->adm, a->release)) != CLI_OK)
		return code;
	target = a->target != NULL ? a->target : o->rel.head;
	if (a->target != NULL && o->rel.file != NULL &&
	    fl_migration_set_find(&o->rel.file->set, a->target) == NULL)
		return cli_usage_error(c, "--target: release %.12s has no migration '%s'",
		                       o->rel.hex, a->target);
	p.project_id = o->rel.project;
	p.release_hash = o->rel.hash;
	p.target_migration_id = target;
	p.selector = &o->selector;
	p.policy = &o->policy;
	p.created_at_ms = fl_wall_ms();
	p.expires_at_ms =
	    p.created_at_ms + (a->expires_ms > 0 ? a->expires_ms : EXPIRES_DEFAULT_MS);
	p.reason = a->reason;
	if (fl_order_build_rollout(&p, &o->order, o->order_hash, errbuf) != FL_OK) {
		fprintf(stderr, "flotilla: error: cannot build the rollout order: %s\n", errbuf);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* ---- watching ---- */

struct watch {
	bool tty, color, utf8;
	int lines;   /* drawn last time, to redraw over */
	char **last; /* plain mode: the last line printed per wave (+1 for the head) */
	size_t n_last;
};

static void watch_fini(struct watch *w)
{
	for (size_t i = 0; i < w->n_last; i++)
		free(w->last[i]);
	free(w->last);
}

static int term_width(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/* Waves drawn at most: the frame must fit the screen to be redrawn in place. */
static size_t term_waves(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row >= 6)
		return (size_t)ws.ws_row - 3; /* the head line, a "more" line, the cursor's */
	return 20;
}

/* Append n copies of glyph (in color) to buf. */
static void bar_part(struct fl_buf *b, const struct watch *w, int n, const char *glyph,
                     const char *ascii, const char *color)
{
	if (n <= 0)
		return;
	if (w->color && color != NULL)
		fl_buf_puts(b, color);
	for (int i = 0; i < n; i++)
		fl_buf_puts(b, w->utf8 ? glyph : ascii);
	if (w->color && color != NULL)
		fl_buf_puts(b, "\033[0m");
}

static int cells(uint32_t v, uint32_t total)
{
	return total == 0 ? 0 : (int)(((uint64_t)v * BAR_WIDTH + total / 2) / total);
}

static void wave_bar(struct fl_buf *b, const struct watch *w, const Flotilla__V1__WaveStatus *ws)
{
	uint32_t total = ws->tenants_total;
	int ok = cells(ws->tenants_applied + ws->tenants_skipped, total);
	int bad = cells(ws->tenants_failed, total);
	int back = cells(ws->tenants_rolled_back, total);
	int run = cells(ws->tenants_running, total);
	int rest;

	/* A failure always shows, however small the share. */
	if (ws->tenants_failed > 0 && bad == 0)
		bad = 1;
	if (ws->tenants_rolled_back > 0 && back == 0)
		back = 1;
	while (ok + bad + back + run > BAR_WIDTH) {
		if (ok > 0)
			ok--;
		else if (run > 0)
			run--;
		else
			back--;
	}
	if (total > 0 && wave_done(ws) == total && ok + bad + back < BAR_WIDTH)
		ok = BAR_WIDTH - bad - back; /* rounding must not leave a finished bar short */
	rest = BAR_WIDTH - ok - bad - back - run;
	fl_buf_puts(b, "[");
	bar_part(b, w, ok, "\u2588", "#", "\033[32m");
	bar_part(b, w, bad, "\u2588", "X", "\033[31m");
	bar_part(b, w, back, "\u2593", "<", "\033[35m");
	bar_part(b, w, run, "\u2592", ">", "\033[33m");
	bar_part(b, w, rest, "\u00b7", ".", NULL);
	fl_buf_puts(b, "]");
}

static void draw_tty(struct watch *w, const Flotilla__V1__RolloutInfo *r, const char *note)
{
	struct fl_buf b = FL_BUF_INIT;
	char line[512], counts[160];
	int64_t now = fl_wall_ms();
	int width = term_width(), n = 0;
	size_t max, first, last;

	if (w->lines > 0)
		fl_buf_printf(&b, "\033[%dA", w->lines);
	rollout_head_text(r, now, line, sizeof(line));
	if (note != NULL)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "  [%s]", note);
	if ((int)strlen(line) > width - 1)
		line[width - 1] = '\0';
	fl_buf_printf(&b, "\r\033[2K%s%s%s\n", w->color ? "\033[1m" : "", line,
	              w->color ? "\033[0m" : "");
	n++;
	/* Too many waves for the screen: the current one, one before, and those after. */
	max = term_waves();
	first = 0;
	last = r->n_waves;
	if (r->n_waves > max) {
		first = r->current_wave > 0 ? r->current_wave - 1 : 0;
		if (first + max > r->n_waves)
			first = r->n_waves - max;
		last = first + max;
	}
	for (size_t i = first; i < last; i++) {
		const Flotilla__V1__WaveStatus *ws = r->waves[i];
		char text[768];

		fl_buf_printf(&b, "\r\033[2K  %zu/%zu %-10.10s ", i + 1, r->n_waves, ws->name);
		wave_bar(&b, w, ws);
		wave_state_text(ws, now, line, sizeof(line));
		wave_counts(ws, counts, sizeof(counts));
		snprintf(text, sizeof(text), " %4u/%-4u %s%s%s", wave_done(ws), ws->tenants_total,
		         line, *counts ? "; " : "", counts);
		/* 2 + 4 + 1 + 10 + 1 + bar + 2 columns before the text */
		if ((int)strlen(text) > width - (BAR_WIDTH + 21))
			text[width - (BAR_WIDTH + 21) > 0 ? width - (BAR_WIDTH + 21) : 0] = '\0';
		fl_buf_printf(&b, "%s\n", text);
		n++;
	}
	if (first > 0 || last < r->n_waves) {
		fl_buf_printf(&b, "\r\033[2K  (%zu more wave%s not shown)\n",
		              r->n_waves - (last - first),
		              r->n_waves - (last - first) == 1 ? "" : "s");
		n++;
	}
	/* Lines left over from a taller frame. */
	for (int i = n; i < w->lines; i++)
		fl_buf_puts(&b, "\r\033[2K\n");
	if (w->lines > n)
		fl_buf_printf(&b, "\033[%dA", w->lines - n);
	fputs(fl_buf_str(&b), stdout);
	fflush(stdout);
	w->lines = n;
	fl_buf_fini(&b);
}

/* One line per change: the head line when the state changes, a wave's line
 * when its counts or state change. */
static void draw_plain(struct watch *w, const Flotilla__V1__RolloutInfo *r)
{
	char line[640], text[512], counts[160], t[32];
	int64_t now = fl_wall_ms();
	time_t secs = (time_t)(now / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(t, sizeof(t), "%H:%M:%SZ", &tm);
	if (w->n_last < r->n_waves + 1) {
		w->last = fl_realloc(w->last, (r->n_waves + 1) * sizeof(*w->last));
		for (size_t i = w->n_last; i < r->n_waves + 1; i++)
			w->last[i] = NULL;
		w->n_last = r->n_waves + 1;
	}
	rollout_head_text(r, now, text, sizeof(text));
	if (w->last[0] == NULL || strcmp(w->last[0], text) != 0) {
		printf("%s %s\n", t, text);
		free(w->last[0]);
		w->last[0] = fl_strdup(text);
	}
	for (size_t i = 0; i < r->n_waves; i++) {
		const Flotilla__V1__WaveStatus *ws = r->waves[i];
		char state[400];

		/* Not the bake's countdown: that changes every second. */
		if (ws->state == FLOTILLA__V1__WAVE_STATE__WAVE_STATE_BAKING)
			snprintf(state, sizeof(state), "baking");
		else
			wave_state_text(ws, now, state, sizeof(state));
		wave_counts(ws, counts, sizeof(counts));
		snprintf(line, sizeof(line), "wave %zu/%zu %s: %s, %u/%u done%s%s%s", i + 1,
		         r->n_waves, ws->name, state, wave_done(ws), ws->tenants_total,
		         *counts ? " (" : "", counts, *counts ? ")" : "");
		if (w->last[i + 1] == NULL || strcmp(w->last[i + 1], line) != 0) {
			/* A wave not started yet says nothing new. */
			if (w->last[i + 1] != NULL ||
			    ws->state != FLOTILLA__V1__WAVE_STATE__WAVE_STATE_PENDING)
				printf("%s %s %s\n", t, r->id, line);
			free(w->last[i + 1]);
			w->last[i + 1] = fl_strdup(line);
		}
	}
	fflush(stdout);
}

static bool waits_for_human(const Flotilla__V1__RolloutInfo *r)
{
	if (r->state == FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_PAUSED)
		return true;
	for (size_t i = 0; i < r->n_waves; i++)
		if (r->waves[i]->state == FLOTILLA__V1__WAVE_STATE__WAVE_STATE_AWAITING_PROMOTE)
			return true;
	return false;
}

/* The exit code of a rollout that ended, or -1 while it goes on. With
 * want_rollback, rolled back is the success `rollback --wait` waits for. */
static int ended(const Flotilla__V1__RolloutInfo *r, bool want_rollback)
{
	switch (r->state) {
	case FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_COMPLETED:
		return want_rollback ? CLI_ERROR : CLI_OK;
	case FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_ROLLED_BACK:
		return want_rollback ? CLI_OK : CLI_ROLLED_BACK;
	case FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_HALTED:
		if ((r->expires_at_ms > 0 && fl_wall_ms() >= r->expires_at_ms) ||
		    (r->state_reason != NULL && strstr(r->state_reason, "expired") != NULL))
			return CLI_EXPIRED;
		return CLI_HALTED;
	default:
		return -1;
	}
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int watch_rollout(struct cli *c, struct args *a, const char *id, bool want_rollback)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStatusRequest st = FLOTILLA__V1__ROLLOUT_STATUS_REQUEST__INIT;
	int64_t interval = a->interval_ms > 0 ? a->interval_ms : WATCH_INTERVAL_MS;
	int64_t deadline = a->wait_timeout_ms > 0 ? fl_wall_ms() + a->wait_timeout_ms : 0;
	char errbuf[FL_ERRBUF_SIZE], b[CLI_ENUM_NAME_MAX];
	bool down = false;
	struct watch w = {0};
	const char *cs;
	int code;

	w.tty = cli_tty() && !c->json;
	w.color = w.tty && cli_color();
	setlocale(LC_CTYPE, "");
	cs = nl_langinfo(CODESET);
	w.utf8 = cs != NULL && strcmp(cs, "UTF-8") == 0;
	st.rollout_id = (char *)id;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS;
	req.rollout_status = &st;
	for (;;) {
		Flotilla__V1__AdminResponse *resp;
		Flotilla__V1__Message *reply = NULL;
		const Flotilla__V1__RolloutInfo *r;

		code = cli_admin_call_retryable(&a->adm, &req, &reply, &resp, errbuf);
		if (code == CLI_CONNECT) {
			/* The coordinator restarts, or the network hiccups: the
			 * rollout goes on without us; keep asking. */
			if (!down)
				fprintf(stderr, "flotilla: %s; still trying\n", errbuf);
			down = true;
		} else if (code != CLI_OK) {
			goto out;
		} else {
			if (down)
				fprintf(stderr, "flotilla: the coordinator answers again\n");
			down = false;
			if (resp->rollout_status->n_rollouts != 1) {
				fl_wire_free(reply);
				fprintf(
				    stderr,
				    "flotilla: error: rollout watch: the coordinator answered %zu "
				    "rollouts for '%s'\n",
				    resp->rollout_status->n_rollouts, id);
				code = CLI_ERROR;
				goto out;
			}
			r = resp->rollout_status->rollouts[0];
			if (c->json) {
				struct jw j;

				jw_init(&j);
				jr_rollout(&j, NULL, r);
				jw_print(&j);
				jw_fini(&j);
			} else if (w.tty) {
				draw_tty(&w, r, NULL);
			} else {
				draw_plain(&w, r);
			}
			code = ended(r, want_rollback);
			if (code < 0 && a->exit_on_blocked && waits_for_human(r))
				code = CLI_BLOCKED;
			if (code >= 0) {
				if (!c->json)
					fprintf(stderr, "flotilla: rollout %s %s%s%s\n", r->id,
					        code == CLI_BLOCKED ? "waits for a human: "
					                            : "ended ",
					        rstate(r->state, b),
					        code == CLI_EXPIRED ? " (its order expired)" : "");
				fl_wire_free(reply);
				goto out;
			}
		}
		fl_wire_free(reply);
		if (deadline > 0 && fl_wall_ms() + interval > deadline) {
			fprintf(stderr, "flotilla: rollout %s still going after --wait-timeout\n",
			        id);
			code = CLI_WAIT_TIMEOUT;
			goto out;
		}
		sleep_ms(interval);
	}
out:
	watch_fini(&w);
	return code;
}

/* ---- the subcommands ---- */

static int one_id(struct cli *c);

static int do_plan(struct cli *c, struct args *a)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutPlanRequest plan = FLOTILLA__V1__ROLLOUT_PLAN_REQUEST__INIT;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	struct mig_note *notes = NULL;
	struct order_ctx o = {0};
	int code;

	if ((code = order_args(c, a, &o)) != CLI_OK ||
	    (code = cli_admin_connect(&a->adm, c)) != CLI_OK ||
	    (code = order_build(c, a, &o)) != CLI_OK)
		goto out;
	plan.signed_order.data = (uint8_t *)o.order.data;
	plan.signed_order.len = o.order.len;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PLAN;
	req.rollout_plan = &plan;
	if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
		goto out;
	notes = notes_make(resp->rollout_plan->plan, &o.rel);
	if (c->json) {
		struct jw w;

		jw_init(&w);
		plan_json(&w, NULL, resp->rollout_plan->plan, &o.rel, notes);
		jw_print(&w);
		jw_fini(&w);
	} else {
		plan_text(resp->rollout_plan->plan, &o.rel, notes, &o.policy);
	}
	code = CLI_OK;
out:
	if (notes != NULL)
		notes_fini(notes, resp->rollout_plan->plan->n_migration_ids);
	fl_wire_free(reply);
	order_ctx_fini(&o);
	return code;
}

static int do_start(struct cli *c, struct args *a)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStartRequest start = FLOTILLA__V1__ROLLOUT_START_REQUEST__INIT;
	Flotilla__V1__AdminResponse *resp = NULL;
	Flotilla__V1__Message *reply = NULL;
	char errbuf[FL_ERRBUF_SIZE] = "", kid[FL_KEY_ID_LEN + 1];
	struct fl_buf signed_order = FL_BUF_INIT;
	struct mig_note *notes = NULL;
	struct order_ctx o = {0};
	struct fl_key key = {0};
	char *id = NULL;
	int code;

	if (a->release_key == NULL) {
		code =
		    cli_usage_error(c, "--release-key FILE is required: the order is signed with "
		                       "a release key");
		goto out;
	}
	if ((code = order_args(c, a, &o)) != CLI_OK)
		goto out;
	if ((code = load_release_key(a->release_key, &key)) != CLI_OK ||
	    (code = cli_admin_connect(&a->adm, c)) != CLI_OK ||
	    (code = order_build(c, a, &o)) != CLI_OK)
		goto out;
	fl_buf_init(&signed_order, FL_ORDER_FILE_MAX);
	if (fl_order_sign(o.order.data, o.order.len, FL_ORDER_ROLLOUT, &key, &signed_order,
	                  errbuf) != FL_OK) {
		fprintf(stderr, "flotilla: error: cannot sign the rollout order: %s\n", errbuf);
		code = CLI_ERROR;
		goto out;
	}
	start.signed_order.data = (uint8_t *)signed_order.data;
	start.signed_order.len = signed_order.len;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_START;
	req.rollout_start = &start;
	if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
		goto out;
	notes = notes_make(resp->rollout_start->plan, &o.rel);
	fl_key_id(key.pk, kid);
	if (c->json) {
		struct jw w;

		jw_init(&w);
		jw_obj(&w, NULL);
		jw_str(&w, "rollout_id", resp->rollout_start->rollout_id);
		jw_str(&w, "order_hash", o.order_hash);
		jw_str(&w, "signed_by", kid);
		plan_json(&w, "plan", resp->rollout_start->plan, &o.rel, notes);
		jw_end(&w);
		jw_print(&w);
		jw_fini(&w);
	} else {
		printf("started rollout %s (order %.12s, signed by %s)\n",
		       resp->rollout_start->rollout_id, o.order_hash, kid);
		plan_text(resp->rollout_start->plan, &o.rel, notes, &o.policy);
		fflush(stdout);
	}
	code = CLI_OK;
	if (a->wait) {
		id = fl_strdup(resp->rollout_start->rollout_id);
		if (!c->json)
			printf("\n");
		code = watch_rollout(c, a, id, false);
	}
out:
	if (notes != NULL)
		notes_fini(notes, resp->rollout_start->plan->n_migration_ids);
	free(id);
	fl_wire_free(reply);
	fl_buf_fini(&signed_order);
	fl_key_fini(&key);
	order_ctx_fini(&o);
	return code;
}

static int status_request(struct args *a, const char *id, bool include_finished,
                          Flotilla__V1__Message **reply, Flotilla__V1__RolloutStatusResponse **out)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStatusRequest st = FLOTILLA__V1__ROLLOUT_STATUS_REQUEST__INIT;
	Flotilla__V1__AdminResponse *resp;
	int code;

	st.rollout_id = (char *)(id != NULL ? id : "");
	st.include_finished = include_finished;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS;
	req.rollout_status = &st;
	if ((code = cli_admin_call(&a->adm, &req, false, reply, &resp)) != CLI_OK)
		return code;
	*out = resp->rollout_status;
	if (id != NULL && (*out)->n_rollouts != 1) {
		fprintf(stderr,
		        "flotilla: error: %s: the coordinator answered %zu rollouts for '%s'\n",
		        a->adm.what, (*out)->n_rollouts, id);
		fl_wire_free(*reply);
		*reply = NULL;
		return CLI_ERROR;
	}
	return CLI_OK;
}

static int do_status(struct cli *c, struct args *a)
{
	Flotilla__V1__RolloutStatusResponse *st;
	Flotilla__V1__Message *reply = NULL;
	int code;

	if (c->nargs == 1 && (code = one_id(c)) != CLI_OK)
		return code;
	if ((code = cli_admin_connect(&a->adm, c)) != CLI_OK ||
	    (code = status_request(a, c->nargs ? c->args[0] : NULL, false, &reply, &st)) != CLI_OK)
		return code;
	if (c->json) {
		struct jw w;

		jw_init(&w);
		if (c->nargs) {
			jr_rollout(&w, NULL, st->rollouts[0]);
		} else {
			jw_obj(&w, NULL);
			jw_arr(&w, "rollouts");
			for (size_t i = 0; i < st->n_rollouts; i++)
				jr_rollout(&w, NULL, st->rollouts[i]);
			jw_end(&w);
			jw_end(&w);
		}
		jw_print(&w);
		jw_fini(&w);
	} else if (st->n_rollouts == 0) {
		printf(
		    "no rollout is active ('flotilla rollout list --all' shows finished ones)\n");
	} else {
		for (size_t i = 0; i < st->n_rollouts; i++) {
			if (i)
				printf("\n");
			rollout_text(st->rollouts[i]);
		}
	}
	fl_wire_free(reply);
	return CLI_OK;
}

static int do_list(struct cli *c, struct args *a)
{
	Flotilla__V1__RolloutStatusResponse *st;
	Flotilla__V1__Message *reply = NULL;
	int64_t now = fl_wall_ms();
	int code;

	if ((code = cli_admin_connect(&a->adm, c)) != CLI_OK ||
	    (code = status_request(a, NULL, a->all, &reply, &st)) != CLI_OK)
		return code;
	if (c->json) {
		struct jw w;

		jw_init(&w);
		jr_rollout_list(&w, st->rollouts, st->n_rollouts);
		jw_print(&w);
		jw_fini(&w);
	} else if (st->n_rollouts == 0) {
		printf(a->all ? "no rollouts\n"
		              : "no rollout is active ('--all' shows finished ones)\n");
	} else {
		printf("%-12s %-12s %-16s %9s  %-12s %-32s %s\n", "ROLLOUT", "STATE", "WAVE",
		       "DONE", "RELEASE", "TARGET", "STARTED");
		for (size_t i = 0; i < st->n_rollouts; i++) {
			const Flotilla__V1__RolloutInfo *r = st->rollouts[i];
			char b[CLI_ENUM_NAME_MAX], h[16], ago[32], wave[40], done[24];
			uint32_t d = 0;

			for (size_t k = 0; k < r->n_waves; k++)
				d += wave_done(r->waves[k]);
			if (r->n_waves > 0 && r->current_wave < r->n_waves)
				snprintf(wave, sizeof(wave), "%u/%zu %s", r->current_wave + 1,
				         r->n_waves, r->waves[r->current_wave]->name);
			else
				snprintf(wave, sizeof(wave), "-");
			snprintf(done, sizeof(done), "%u/%u", d, r->tenants_total);
			printf("%-12s %-12s %-16s %9s  %-12s %-32s %s\n", r->id,
			       rstate(r->state, b), wave, done,
			       cli_short_hash(&r->release_hash, h, sizeof(h)),
			       r->target_migration_id,
			       cli_ago(r->created_at_ms, now, ago, sizeof(ago)));
		}
	}
	fl_wire_free(reply);
	return CLI_OK;
}

static int do_watch(struct cli *c, struct args *a)
{
	int code;

	if ((code = one_id(c)) != CLI_OK || (code = cli_admin_connect(&a->adm, c)) != CLI_OK)
		return code;
	return watch_rollout(c, a, c->args[0], false);
}

/* pause, resume, halt, promote, retry, rollback: one rollout changes state. */
static int show_changed(struct cli *c, const char *verb, const Flotilla__V1__RolloutInfo *r,
                        const char *extra)
{
	char line[512];

	if (c->json) {
		struct jw w;

		jw_init(&w);
		jw_obj(&w, NULL);
		jr_rollout(&w, "rollout", r);
		jw_end(&w);
		jw_print(&w);
		jw_fini(&w);
		return CLI_OK;
	}
	rollout_head_text(r, fl_wall_ms(), line, sizeof(line));
	printf("%s %s%s\n%s\n", verb, r->id, extra != NULL ? extra : "", line);
	return CLI_OK;
}

static int one_id(struct cli *c)
{
	if (c->nargs != 1 || c->args[0][0] == '\0')
		return cli_usage_error(c, "expected the rollout ID");
	return CLI_OK;
}

static int do_simple(struct cli *c, struct args *a, int which)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutPauseRequest pause = FLOTILLA__V1__ROLLOUT_PAUSE_REQUEST__INIT;
	Flotilla__V1__RolloutResumeRequest resume = FLOTILLA__V1__ROLLOUT_RESUME_REQUEST__INIT;
	Flotilla__V1__RolloutHaltRequest halt = FLOTILLA__V1__ROLLOUT_HALT_REQUEST__INIT;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	const Flotilla__V1__RolloutInfo *r;
	char *id, *reason;
	const char *verb;
	int code;

	if ((code = one_id(c)) != CLI_OK)
		return code;
	if (which == FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_HALT &&
	    (a->reason == NULL || *a->reason == '\0'))
		return cli_usage_error(c, "--reason TEXT is required: say why, for the audit log "
		                          "and the agents' logs");
	if ((code = cli_admin_connect(&a->adm, c)) != CLI_OK)
		return code;
	id = c->args[0];
	reason = (char *)(a->reason != NULL ? a->reason : "");
	req.command_case = which;
	switch (which) {
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PAUSE:
		pause.rollout_id = id;
		pause.reason = reason;
		req.rollout_pause = &pause;
		break;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_RESUME:
		resume.rollout_id = id;
		resume.reason = reason;
		req.rollout_resume = &resume;
		break;
	default:
		halt.rollout_id = id;
		halt.reason = reason;
		req.rollout_halt = &halt;
		break;
	}
	if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
		return code;
	switch (which) {
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PAUSE:
		r = resp->rollout_pause->rollout;
		verb = "paused";
		break;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_RESUME:
		r = resp->rollout_resume->rollout;
		verb = "resumed";
		break;
	default:
		r = resp->rollout_halt->rollout;
		verb = "halted";
		break;
	}
	code = show_changed(c, verb, r, NULL);
	fl_wire_free(reply);
	return code;
}

static int do_pause(struct cli *c, struct args *a)
{
	return do_simple(c, a, FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PAUSE);
}

static int do_resume(struct cli *c, struct args *a)
{
	return do_simple(c, a, FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_RESUME);
}

static int do_halt(struct cli *c, struct args *a)
{
	return do_simple(c, a, FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_HALT);
}

static int do_promote(struct cli *c, struct args *a)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutPromoteRequest pr = FLOTILLA__V1__ROLLOUT_PROMOTE_REQUEST__INIT;
	Flotilla__V1__RolloutStatusResponse *st;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL, *sreply = NULL;
	const Flotilla__V1__RolloutInfo *r;
	char extra[96];
	long wave = -1;
	int code;

	if ((code = one_id(c)) != CLI_OK || (code = cli_admin_connect(&a->adm, c)) != CLI_OK)
		return code;
	/* The wave by name or number needs the rollout's waves; without
	 * --wave, the one waiting at its gate. */
	if ((code = status_request(a, c->args[0], false, &sreply, &st)) != CLI_OK)
		return code;
	r = st->rollouts[0];
	if (a->wave != NULL) {
		char *end;

		errno = 0;
		wave = strtol(a->wave, &end, 10);
		if (errno != 0 || *end != '\0' || end == a->wave) {
			wave = -1;
			for (size_t i = 0; i < r->n_waves; i++)
				if (strcmp(r->waves[i]->name, a->wave) == 0)
					wave = (long)i;
		} else if (wave < 1 || (size_t)wave > r->n_waves) {
			wave = -1;
		} else {
			wave--;
		}
		if (wave < 0) {
			size_t n = r->n_waves;

			fl_wire_free(sreply);
			return cli_usage_error(c, "--wave: rollout %s has no wave '%s' (%zu waves)",
			                       c->args[0], a->wave, n);
		}
	} else {
		for (size_t i = 0; i < r->n_waves; i++)
			if (r->waves[i]->state ==
			    FLOTILLA__V1__WAVE_STATE__WAVE_STATE_AWAITING_PROMOTE)
				wave = (long)i;
		if (wave < 0) {
			fprintf(
			    stderr,
			    "flotilla: error: rollout promote: no wave of rollout %s waits at a "
			    "manual gate\n",
			    c->args[0]);
			fl_wire_free(sreply);
			return CLI_CONFLICT;
		}
	}
	fl_wire_free(sreply);
	pr.rollout_id = c->args[0];
	pr.wave = (uint32_t)wave;
	pr.reason = (char *)(a->reason != NULL ? a->reason : "");
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PROMOTE;
	req.rollout_promote = &pr;
	if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
		return code;
	r = resp->rollout_promote->rollout;
	snprintf(extra, sizeof(extra), " past the gate of wave %ld/%zu", wave + 1, r->n_waves);
	code = show_changed(c, "promoted", r, extra);
	fl_wire_free(reply);
	return code;
}

static int do_retry(struct cli *c, struct args *a)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutRetryRequest rr = FLOTILLA__V1__ROLLOUT_RETRY_REQUEST__INIT;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL;
	char extra[64];
	int code;

	if ((code = one_id(c)) != CLI_OK || (code = cli_admin_connect(&a->adm, c)) != CLI_OK)
		return code;
	rr.rollout_id = c->args[0];
	rr.tenant_ids = a->tenants.tenant_ids;
	rr.n_tenant_ids = a->tenants.n_tenant_ids;
	rr.reason = (char *)(a->reason != NULL ? a->reason : "");
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_RETRY;
	req.rollout_retry = &rr;
	if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
		return code;
	if (c->json) {
		struct jw w;

		jw_init(&w);
		jw_obj(&w, NULL);
		jw_uint(&w, "tenants_requeued", resp->rollout_retry->tenants_requeued);
		jr_rollout(&w, "rollout", resp->rollout_retry->rollout);
		jw_end(&w);
		jw_print(&w);
		jw_fini(&w);
	} else {
		snprintf(extra, sizeof(extra), ": %u tenant%s queued again",
		         resp->rollout_retry->tenants_requeued,
		         resp->rollout_retry->tenants_requeued == 1 ? "" : "s");
		show_changed(c, "retrying", resp->rollout_retry->rollout, extra);
	}
	fl_wire_free(reply);
	return CLI_OK;
}

/* The rollout's own selector, as a struct fl_selector. */
static int selector_from_info(const Flotilla__V1__TenantSelector *ts, struct fl_selector *s,
                              char *errbuf)
{
	fl_selector_init(s);
	if (ts == NULL) {
		fl_errf(errbuf, FL_EPARSE, "the rollout has no selector");
		return -1;
	}
	for (size_t i = 0; i < ts->n_labels; i++)
		if (fl_labels_set(&s->labels, ts->labels[i]->key, ts->labels[i]->value, errbuf) !=
		    FL_OK)
			return -1;
	for (size_t i = 0; i < ts->n_tenant_ids; i++)
		if (fl_selector_add_tenant(s, ts->tenant_ids[i], errbuf) != FL_OK)
			return -1;
	s->all = ts->all;
	return fl_selector_check(s, errbuf) == FL_OK ? 0 : -1;
}

static int do_rollback(struct cli *c, struct args *a)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutRollbackRequest rb = FLOTILLA__V1__ROLLOUT_ROLLBACK_REQUEST__INIT;
	Flotilla__V1__RolloutStatusResponse *st;
	Flotilla__V1__AdminResponse *resp;
	Flotilla__V1__Message *reply = NULL, *sreply = NULL;
	const Flotilla__V1__RolloutInfo *r;
	char errbuf[FL_ERRBUF_SIZE] = "", hash[FL_ORDER_HASH_HEX_LEN + 1], kid[FL_KEY_ID_LEN + 1];
	struct fl_buf order = FL_BUF_INIT, signed_order = FL_BUF_INIT;
	struct fl_rollback_params p = {0};
	struct fl_selector sel;
	struct fl_key key = {0};
	char extra[128];
	char *id = NULL;
	int code;

	fl_selector_init(&sel);
	if ((code = one_id(c)) != CLI_OK)
		goto out;
	if (a->release_key == NULL) {
		code = cli_usage_error(c, "--release-key FILE is required: a rollback is "
		                          "authorised by a signed rollback order");
		goto out;
	}
	if (a->select.set.n > 0 || a->tenants.n_tenant_ids > 0) {
		fl_selector_fini(&sel);
		if ((code = need_selector(c, a, &sel)) != CLI_OK)
			goto out;
	}
	if ((code = load_release_key(a->release_key, &key)) != CLI_OK ||
	    (code = cli_admin_connect(&a->adm, c)) != CLI_OK ||
	    (code = status_request(a, c->args[0], false, &sreply, &st)) != CLI_OK)
		goto out;
	r = st->rollouts[0];
	if (r->order_hash.len != 32 || r->release_hash.len != 32) {
		fprintf(stderr, "flotilla: error: rollout %s: the coordinator gave no order hash\n",
		        c->args[0]);
		code = CLI_ERROR;
		goto out;
	}
	if (sel.labels.n == 0 && sel.n_tenant_ids == 0 && !sel.all &&
	    selector_from_info(r->selector, &sel, errbuf) != 0) {
		fprintf(stderr, "flotilla: error: rollout %s: its selector: %s\n", c->args[0],
		        errbuf);
		code = CLI_ERROR;
		goto out;
	}
	p.project_id = r->project_id;
	p.rollout_order_hash = r->order_hash.data;
	p.release_hash = r->release_hash.data;
	p.target_migration_id = a->to;
	p.selector = &sel;
	p.created_at_ms = fl_wall_ms();
	p.expires_at_ms =
	    p.created_at_ms + (a->expires_ms > 0 ? a->expires_ms : EXPIRES_DEFAULT_MS);
	p.reason = a->reason;
	fl_buf_init(&order, FL_ORDER_FILE_MAX);
	fl_buf_init(&signed_order, FL_ORDER_FILE_MAX);
	if (fl_order_build_rollback(&p, &order, hash, errbuf) != FL_OK) {
		fprintf(stderr, "flotilla: error: cannot build the rollback order: %s\n", errbuf);
		code = CLI_USAGE;
		goto out;
	}
	if (fl_order_sign(order.data, order.len, FL_ORDER_ROLLBACK, &key, &signed_order, errbuf) !=
	    FL_OK) {
		fprintf(stderr, "flotilla: error: cannot sign the rollback order: %s\n", errbuf);
		code = CLI_ERROR;
		goto out;
	}
	rb.rollout_id = c->args[0];
	rb.reason = (char *)(a->reason != NULL ? a->reason : "");
	rb.signed_rollback_order.data = (uint8_t *)signed_order.data;
	rb.signed_rollback_order.len = signed_order.len;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_ROLLBACK;
	req.rollout_rollback = &rb;
	if ((code = cli_admin_call(&a->adm, &req, false, &reply, &resp)) != CLI_OK)
		goto out;
	fl_key_id(key.pk, kid);
	snprintf(extra, sizeof(extra), " (rollback order %.12s, signed by %s)", hash, kid);
	show_changed(c, "rolling back", resp->rollout_rollback->rollout, extra);
	code = CLI_OK;
	if (a->wait) {
		id = fl_strdup(c->args[0]);
		code = watch_rollout(c, a, id, true);
	}
out:
	free(id);
	fl_wire_free(reply);
	fl_wire_free(sreply);
	fl_buf_fini(&order);
	fl_buf_fini(&signed_order);
	fl_selector_fini(&sel);
	fl_key_fini(&key);
	return code;
}

int cmd_rollout(int argc, char **argv)
{
	static const struct option options[] = {
	    CLI_ADMIN_OPTIONS,
	    CLI_ADMIN_KEY_OPTION,
	    {"release", required_argument, NULL, OPT_RELEASE},
	    {"policy", required_argument, NULL, OPT_POLICY},
	    {"select", required_argument, NULL, OPT_SELECT},
	    {"tenant", required_argument, NULL, OPT_TENANT},
	    {"all", no_argument, NULL, OPT_ALL},
	    {"target", required_argument, NULL, OPT_TARGET},
	    {"release-key", required_argument, NULL, OPT_RELEASE_KEY},
	    {"expires", required_argument, NULL, OPT_EXPIRES},
	    {"reason", required_argument, NULL, OPT_REASON},
	    {"wait", no_argument, NULL, OPT_WAIT},
	    {"wave", required_argument, NULL, OPT_WAVE},
	    {"to", required_argument, NULL, OPT_TO},
	    {"interval", required_argument, NULL, OPT_INTERVAL},
	    {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
	    {"exit-on-blocked", no_argument, NULL, OPT_EXIT_ON_BLOCKED},
	    {"json", no_argument, NULL, OPT_ROLLOUT_JSON},
	    {0}};
	static const struct sub subs[] = {
	    {"plan", "rollout plan", usage_plan, ORDER_OPTS | G(OPT_ROLLOUT_JSON), 0, do_plan},
	    {"start", "rollout start", usage_start,
	     ORDER_OPTS | G(OPT_RELEASE_KEY) | G(OPT_WAIT) | WATCH_OPTS | G(OPT_ROLLOUT_JSON), 0,
	     do_start},
	    {"status", "rollout status", usage_status, G(OPT_ROLLOUT_JSON), 1, do_status},
	    {"watch", "rollout watch", usage_watch, WATCH_OPTS | G(OPT_ROLLOUT_JSON), 1, do_watch},
	    {"list", "rollout list", usage_list, G(OPT_ALL) | G(OPT_ROLLOUT_JSON), 0, do_list},
	    {"pause", "rollout pause", usage_pause, G(OPT_REASON) | G(OPT_ROLLOUT_JSON), 1,
	     do_pause},
	    {"resume", "rollout resume", usage_resume, G(OPT_REASON) | G(OPT_ROLLOUT_JSON), 1,
	     do_resume},
	    {"promote", "rollout promote", usage_promote,
	     G(OPT_WAVE) | G(OPT_REASON) | G(OPT_ROLLOUT_JSON), 1, do_promote},
	    {"halt", "rollout halt", usage_halt, G(OPT_REASON) | G(OPT_ROLLOUT_JSON), 1, do_halt},
	    {"rollback", "rollout rollback", usage_rollback,
	     G(OPT_RELEASE_KEY) | G(OPT_SELECT) | G(OPT_TENANT) | G(OPT_TO) | G(OPT_EXPIRES) |
	         G(OPT_REASON) | G(OPT_WAIT) | WATCH_OPTS | G(OPT_ROLLOUT_JSON),
	     1, do_rollback},
	    {"retry", "rollout retry", usage_retry,
	     G(OPT_TENANT) | G(OPT_REASON) | G(OPT_ROLLOUT_JSON), 1, do_retry},
	};
	struct args a;
	struct cli c;
	int code;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage_family(stdout);
		return CLI_OK;
	}
	if (argc < 2 || argv[1][0] == '-') {
		usage_family(stderr);
		return CLI_USAGE;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		unsigned extra;

		if (strcmp(argv[1], subs[i].name) != 0)
			continue;
		current = &subs[i];
		memset(&a, 0, sizeof(a));
		fl_selector_init(&a.tenants);
		cli_init(&c, subs[i].cmd);
		cli_admin_init(&a.adm, subs[i].cmd);
		code = cli_parse(&c, argc - 1, argv + 1, options, own, &a, usage_current,
		                 subs[i].max_args);
		if (code == CLI_OK && !c.help && (extra = a.gave & ~subs[i].takes) != 0) {
			for (size_t k = 0; options[k].name != NULL; k++)
				if (options[k].val >= OPT_RELEASE && (extra & G(options[k].val))) {
					code = cli_usage_error(&c, "--%s does not apply here",
					                       options[k].name);
					break;
				}
		}
		if (code == CLI_OK && !c.help)
			code = subs[i].run(&c, &a);
		cli_labels_fini(&a.select);
		fl_selector_fini(&a.tenants);
		cli_admin_fini(&a.adm);
		return code;
	}
	fprintf(stderr, "flotilla rollout: unknown command '%s'\n", argv[1]);
	usage_family(stderr);
	return CLI_USAGE;
}
