/*
 * rogue_coordinator: a test-only coordinator, built from the project's own
 * libraries (real envelopes, real nng), that hands an agent whatever a test
 * tells it to, including what no honest coordinator would: assignments
 * outside their signed order, for another target, replayed ids, releases of
 * another project or signed by nobody trusted, reverts nobody authorised.
 * It drives the agent's trust tests (tests/integration/test_agent*.sh).
 *
 *   rogue_coordinator serve --listen URL --key COORD.key --agent PUBKEY --dir DIR
 *       Answer the agent (PUBKEY: its public key, base64) at URL (tcp://127.0.0.1:0
 *       picks a free port). Writes DIR/url once listening. Reads commands
 *       appended to DIR/commands, one per line, as they come:
 *         release FILE          serve this release file by its hash (FetchRelease)
 *         serve-as HEX FILE     answer FetchRelease for hash HEX with FILE's bytes
 *         assign ID KIND TENANT WAVE HASH TARGET ORDER [ROLLBACK]
 *                               hand out an assignment at the next poll: KIND
 *                               apply|revert|check; HASH the release hash in hex or
 *                               "order" (the order's); TARGET "-" for none; ORDER and
 *                               ROLLBACK signed order files ("-": none)
 *         halt ROLLOUT REASON...  halt a rollout at the next poll
 *         ack on|off            acknowledge reports (default on)
 *         hello accept|refuse   accept Hellos (default) or refuse them
 *         redirect URL PUBKEY   answer the next Hello or Poll with a Redirect there (%XX in
 *                               URL: that byte)
 *         redirect-always URL PUBKEY  answer every Hello and Poll so (until redirect-off)
 *         halt-always ROLLOUT REASON...  a halt in every poll reply (until halt-off)
 *         agent-name NAME       the name HelloReply gives the agent (%XX: that byte)
 *       Appends what it hears, one event per line of key=value fields (the last,
 *       message or error, may hold spaces): DIR/reports.log ("report assignment=N
 *       journal=J tenant=T kind=K outcome=NAME applied=N head=ID failed=N
 *       fingerprint=HEX acked=0|1 ms=DURATION migrations=ID:OUTCOME,... health=NAME:ok|failed|
 *       inconclusive,... message=..."), DIR/hellos.log ("hello agent=... token=...
 *       more=0|1 tenants=N", then a "tenant id=... applied=N head=ID failed=N
 *       sequence=S fingerprint=HEX schema=S error=..." line per tenant) and
 *       DIR/polls.log ("poll free=N running=ID,ID", "redirect sent at=MS", "halts sent
 *       at=MS"; MS the wall clock in ms; hello lines end with at=MS too). Exits on
 *       SIGTERM/SIGINT.
 *
 *   rogue_coordinator silent --dir DIR
 *       A TCP server on 127.0.0.1 that accepts connections and never says a word
 *       (a database host gone silent): writes its port to DIR/port, and a line
 *       "accepted N" to DIR/silent.log at each connection. Exits on SIGTERM/SIGINT.
 *
 *   rogue_coordinator order --release FILE --policy FILE --target ID
 *                     [--key RELEASE.key] [--project P] [--all | --select k=v,...]
 *                     [--tenants a,b] [--created-ago-ms N] [--expires-in-ms N] --out FILE
 *       Build a rollout order for the release, signed by the key (none: unsigned),
 *       and print its hash. --expires-in-ms may be negative: an expired order.
 *
 *   rogue_coordinator rollback --order FILE [--key RELEASE.key] [--target ID]
 *                     [--all | --select k=v,... | --tenants a,b] --out FILE
 *       Build a rollback order for the rollout order FILE (its hash, release,
 *       project), signed by the key.
 *
 * Polls are answered at once (poll_again_ms 100), so one synchronous socket
 * serves both of the agent's (its long poll and its other requests).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "identity.h"
#include "keys.h"
#include "mem.h"
#include "nng_quirks.h"
#include "order.h"
#include "peers.h"
#include "policy.h"
#include "release.h"
#include "rpc.h"
#include "wire.h"

#define MAX_ITEMS 256

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "rogue_coordinator: %s%s%s\n", what, detail ? ": " : "",
	        detail ? detail : "");
	exit(2);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void read_file(const char *path, struct fl_buf *out)
{
	char err[FL_ERRBUF_SIZE];

	if (fl_release_file_read(path, out, err) != FL_OK)
		die(err, NULL);
}

/* ---- building orders ---- */

static void parse_selector(struct fl_selector *s, const char *select, const char *tenants, bool all)
{
	char err[FL_ERRBUF_SIZE] = "";

	fl_selector_init(s);
	if (select != NULL && fl_labels_parse(select, &s->labels, err) != FL_OK)
		die("--select", err);
	if (tenants != NULL) {
		char *copy = fl_strdup(tenants), *p = copy, *comma;

		for (; p != NULL; p = comma ? comma + 1 : NULL) {
			comma = strchr(p, ',');
			if (comma)
				*comma = '\0';
			if (fl_selector_add_tenant(s, p, err) != FL_OK)
				die("--tenants", err);
		}
		free(copy);
	}
	s->all = all || (select == NULL && tenants == NULL);
}

static void sign_and_write(struct fl_buf *order, enum fl_order_kind kind, const char *keyfile,
                           const char *out, const char *hash)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_buf signed_ = FL_BUF_INIT;
	struct fl_key key = {0};

	if (keyfile != NULL) {
		if (fl_key_file_load(keyfile, FL_KEY_RELEASE, &key, err) != FL_OK)
			die(err, NULL);
		if (fl_order_sign(order->data, order->len, kind, &key, &signed_, err) != FL_OK)
			die("signing", err);
		fl_key_fini(&key);
		fl_buf_fini(order);
		*order = signed_;
	}
	if (fl_release_file_write(out, order->data, order->len, err) != FL_OK)
		die(err, NULL);
	printf("%s\n", hash);
}

static int cmd_order(int argc, char **argv)
{
	static const struct option opts[] = {{"release", required_argument, NULL, 'r'},
	                                     {"policy", required_argument, NULL, 'p'},
	                                     {"target", required_argument, NULL, 't'},
	                                     {"key", required_argument, NULL, 'k'},
	                                     {"project", required_argument, NULL, 'P'},
	                                     {"all", no_argument, NULL, 'a'},
	                                     {"select", required_argument, NULL, 's'},
	                                     {"tenants", required_argument, NULL, 'T'},
	                                     {"created-ago-ms", required_argument, NULL, 'c'},
	                                     {"expires-in-ms", required_argument, NULL, 'e'},
	                                     {"out", required_argument, NULL, 'o'},
	                                     {0}};
	const char *release = NULL, *policy_file = NULL, *target = NULL, *key = NULL;
	const char *project = NULL, *select = NULL, *tenants = NULL, *out = NULL;
	int64_t created_ago = 0, expires_in = 3600 * 1000;
	struct fl_buf rel = FL_BUF_INIT, order = FL_BUF_INIT;
	struct fl_release *r = NULL;
	struct fl_policy policy;
	struct fl_selector sel;
	struct fl_rollout_params p = {0};
	char err[FL_ERRBUF_SIZE] = "", hash[65];
	bool all = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			release = optarg;
			break;
		case 'p':
			policy_file = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'P':
			project = optarg;
			break;
		case 'a':
			all = true;
			break;
		case 's':
			select = optarg;
			break;
		case 'T':
			tenants = optarg;
			break;
		case 'c':
			created_ago = strtoll(optarg, NULL, 10);
			break;
		case 'e':
			expires_in = strtoll(optarg, NULL, 10);
			break;
		case 'o':
			out = optarg;
			break;
		default:
			return 2;
		}
	}
	if (release == NULL || policy_file == NULL || target == NULL || out == NULL)
		die("order: --release, --policy, --target and --out are required", NULL);
	read_file(release, &rel);
	if (fl_release_inspect(rel.data, rel.len, &r, err) != FL_OK)
		die("release", err);
	if (fl_policy_load_file(policy_file, &policy, err) != FL_OK)
		die(err, NULL);
	parse_selector(&sel, select, tenants, all);
	p.project_id = project ? project : r->project_id;
	p.release_hash = r->digest;
	p.target_migration_id = target;
	p.selector = &sel;
	p.policy = &policy;
	p.created_at_ms = now_ms() - created_ago;
	p.expires_at_ms = now_ms() + expires_in;
	p.reason = "rogue test";
	if (fl_order_build_rollout(&p, &order, hash, err) != FL_OK)
		die("order", err);
	sign_and_write(&order, FL_ORDER_ROLLOUT, key, out, hash);
	fl_buf_fini(&order);
	fl_buf_fini(&rel);
	fl_release_free(r);
	fl_policy_fini(&policy);
	fl_selector_fini(&sel);
	return 0;
}

static int cmd_rollback(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"order", required_argument, NULL, 'O'},  {"target", required_argument, NULL, 't'},
	    {"key", required_argument, NULL, 'k'},    {"all", no_argument, NULL, 'a'},
	    {"select", required_argument, NULL, 's'}, {"tenants", required_argument, NULL, 'T'},
	    {"out", required_argument, NULL, 'o'},    {0}};
	const char *order_file = NULL, *target = NULL, *key = NULL, *select = NULL;
	const char *tenants = NULL, *out = NULL;
	struct fl_buf ob = FL_BUF_INIT, rb = FL_BUF_INIT;
	struct fl_order *o = NULL;
	struct fl_selector sel;
	struct fl_rollback_params p = {0};
	char err[FL_ERRBUF_SIZE] = "", hash[65];
	bool all = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'O':
			order_file = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'a':
			all = true;
			break;
		case 's':
			select = optarg;
			break;
		case 'T':
			tenants = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			return 2;
		}
	}
	if (order_file == NULL || out == NULL)
		die("rollback: --order and --out are required", NULL);
	read_file(order_file, &ob);
	if (fl_order_inspect(ob.data, ob.len, FL_ORDER_ROLLOUT, &o, err) != FL_OK)
		die("order", err);
	parse_selector(&sel, select, tenants, all);
	p.project_id = o->project_id;
	p.rollout_order_hash = o->hash;
	p.release_hash = o->release_hash;
	p.target_migration_id = target;
	p.selector = &sel;
	p.created_at_ms = now_ms();
	p.expires_at_ms = now_ms() + 3600 * 1000;
	p.reason = "rogue test";
	if (fl_order_build_rollback(&p, &rb, hash, err) != FL_OK)
		die("rollback order", err);
	sign_and_write(&rb, FL_ORDER_ROLLBACK, key, out, hash);
	fl_buf_fini(&rb);
	fl_buf_fini(&ob);
	fl_order_free(o);
	fl_selector_fini(&sel);
	return 0;
}

/* ---- serving ---- */

struct served {
	uint8_t hash[32];
	struct fl_buf bytes;
};

struct pending {
	Flotilla__V1__WorkAssignment a;
	struct fl_buf order, rollback;
	uint8_t hash[32];
	char *tenant, *target, *rollout;
};

struct rogue {
	const char *dir;
	struct fl_envelope *ep;
	struct served served[MAX_ITEMS];
	int n_served;
	struct pending *work[MAX_ITEMS];
	int n_work;
	char *halts[MAX_ITEMS][2];
	int n_halts;
	bool ack, refuse_hello;
	char *redirect_url; /* the next Hello or Poll is answered with a Redirect */
	uint8_t redirect_key[32];
	bool redirect_always; /* ...and every one after it */
	char *halt_always[2]; /* rollout, reason: in every poll reply */
	char *agent_name;     /* for HelloReply; NULL: the agent's id */
	long consumed;        /* bytes of DIR/commands read */
};

static void append(const char *dir, const char *name, const struct fl_buf *line)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "a");
	if (f == NULL)
		die("cannot append to", path);
	fwrite(line->data, 1, line->len, f);
	fputc('\n', f);
	fclose(f);
}

static void append_line(const char *dir, const char *name, const char *text)
{
	struct fl_buf b = FL_BUF_INIT;

	fl_buf_puts(&b, text);
	append(dir, name, &b);
	fl_buf_fini(&b);
}

static bool hex32(const char *hex, uint8_t out[32])
{
	return strlen(hex) == 64 && sodium_hex2bin(out, 32, hex, 64, NULL, NULL, NULL) == 0;
}

static void add_served(struct rogue *r, const uint8_t hash[32], const char *file)
{
	struct served *s;

	if (r->n_served == MAX_ITEMS)
		die("too many releases", NULL);
	s = &r->served[r->n_served++];
	memcpy(s->hash, hash, 32);
	fl_buf_init(&s->bytes, 0);
	read_file(file, &s->bytes);
}

/* s with each %XX as that byte (heap). */
static char *unescape(const char *s)
{
	struct fl_buf b = FL_BUF_INIT;

	for (; *s != '\0'; s++) {
		unsigned v;

		if (s[0] == '%' && s[1] != '\0' && s[2] != '\0' && sscanf(s + 1, "%2x", &v) == 1) {
			char c = (char)v;

			fl_buf_append(&b, &c, 1);
			s += 2;
		} else {
			fl_buf_append(&b, s, 1);
		}
	}
	return fl_buf_detach(&b);
}

static void command(struct rogue *r, char *line)
{
	char *argv[16], *p = line, err[FL_ERRBUF_SIZE];
	int argc = 0;

	/* words split at spaces */
	while (argc < 16) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (*p == '\0')
			break;
		argv[argc++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
	}
	if (argc == 0)
		return;
	if (strcmp(argv[0], "release") == 0 && argc == 2) {
		struct fl_buf b = FL_BUF_INIT;
		struct fl_release *rel = NULL;

		read_file(argv[1], &b);
		if (fl_release_inspect(b.data, b.len, &rel, err) != FL_OK)
			die("release", err);
		add_served(r, rel->digest, argv[1]);
		fl_release_free(rel);
		fl_buf_fini(&b);
	} else if (strcmp(argv[0], "serve-as") == 0 && argc == 3) {
		uint8_t h[32];

		if (!hex32(argv[1], h))
			die("serve-as: bad hash", argv[1]);
		add_served(r, h, argv[2]);
	} else if (strcmp(argv[0], "assign") == 0 && (argc == 9 || argc == 10)) {
		struct pending *w = fl_calloc(1, sizeof(*w));
		const char *kinds[] = {"", "apply", "revert", "check"};
		int k;

		flotilla__v1__work_assignment__init(&w->a);
		w->a.assignment_id = strtoull(argv[1], NULL, 10);
		for (k = 1; k < 4 && strcmp(kinds[k], argv[2]) != 0; k++)
			;
		w->a.kind = (Flotilla__V1__WorkKind)(k < 4 ? k : 0);
		w->tenant = fl_strdup(argv[3]);
		w->a.tenant_id = w->tenant;
		w->a.wave = (uint32_t)strtoul(argv[4], NULL, 10);
		fl_buf_init(&w->order, 0);
		fl_buf_init(&w->rollback, 0);
		if (strcmp(argv[7], "-") != 0)
			read_file(argv[7], &w->order);
		if (argc == 10 && strcmp(argv[9], "-") != 0)
			read_file(argv[9], &w->rollback);
		if (strcmp(argv[5], "order") == 0) {
			struct fl_order *o = NULL;

			if (fl_order_inspect(w->order.data, w->order.len, FL_ORDER_ROLLOUT, &o,
			                     err) != FL_OK)
				die("assign", err);
			memcpy(w->hash, o->release_hash, 32);
			fl_order_free(o);
		} else if (!hex32(argv[5], w->hash)) {
			die("assign: bad hash", argv[5]);
		}
		w->a.release_hash.data = w->hash;
		w->a.release_hash.len = 32;
		w->target = fl_strdup(strcmp(argv[6], "-") == 0 ? "" : argv[6]);
		w->a.target_migration_id = w->target;
		w->rollout = fl_strdup(argv[8]);
		w->a.rollout_id = w->rollout;
		w->a.signed_order.data = (uint8_t *)w->order.data;
		w->a.signed_order.len = w->order.len;
		w->a.signed_rollback_order.data = (uint8_t *)w->rollback.data;
		w->a.signed_rollback_order.len = w->rollback.len;
		if (r->n_work == MAX_ITEMS)
			die("too many assignments", NULL);
		r->work[r->n_work++] = w;
	} else if (strcmp(argv[0], "halt") == 0 && argc >= 2) {
		struct fl_buf reason = FL_BUF_INIT;

		for (int i = 2; i < argc; i++)
			fl_buf_printf(&reason, "%s%s", i > 2 ? " " : "", argv[i]);
		if (r->n_halts == MAX_ITEMS)
			die("too many halts", NULL);
		r->halts[r->n_halts][0] = fl_strdup(argv[1]);
		r->halts[r->n_halts][1] = fl_buf_detach(&reason);
		r->n_halts++;
	} else if (strcmp(argv[0], "ack") == 0 && argc == 2) {
		r->ack = strcmp(argv[1], "on") == 0;
	} else if (strcmp(argv[0], "redirect") == 0 && argc == 3) {
		if (fl_key_public_parse(argv[2], r->redirect_key, err) != FL_OK)
			die("redirect", err);
		free(r->redirect_url);
		r->redirect_url = unescape(argv[1]);
	} else if (strcmp(argv[0], "redirect-always") == 0 && argc == 3) {
		if (fl_key_public_parse(argv[2], r->redirect_key, err) != FL_OK)
			die("redirect-always", err);
		free(r->redirect_url);
		r->redirect_url = unescape(argv[1]);
		r->redirect_always = true;
	} else if (strcmp(argv[0], "redirect-off") == 0 && argc == 1) {
		free(r->redirect_url);
		r->redirect_url = NULL;
		r->redirect_always = false;
	} else if (strcmp(argv[0], "halt-always") == 0 && argc >= 2) {
		struct fl_buf reason = FL_BUF_INIT;

		for (int i = 2; i < argc; i++)
			fl_buf_printf(&reason, "%s%s", i > 2 ? " " : "", argv[i]);
		free(r->halt_always[0]);
		free(r->halt_always[1]);
		r->halt_always[0] = fl_strdup(argv[1]);
		r->halt_always[1] = fl_buf_detach(&reason);
	} else if (strcmp(argv[0], "halt-off") == 0 && argc == 1) {
		free(r->halt_always[0]);
		free(r->halt_always[1]);
		r->halt_always[0] = r->halt_always[1] = NULL;
	} else if (strcmp(argv[0], "agent-name") == 0 && argc == 2) {
		free(r->agent_name);
		r->agent_name = unescape(argv[1]);
	} else if (strcmp(argv[0], "hello") == 0 && argc == 2) {
		r->refuse_hello = strcmp(argv[1], "refuse") == 0;
	} else {
		die("unknown command", argv[0]);
	}
}

/* Read the commands appended since last time. */
static void read_commands(struct rogue *r)
{
	char path[4096], line[8192];
	FILE *f;

	snprintf(path, sizeof(path), "%s/commands", r->dir);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	if (fseek(f, r->consumed, SEEK_SET) != 0) {
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);

		if (n == 0 || line[n - 1] != '\n')
			break; /* a line still being written */
		r->consumed += (long)n;
		line[n - 1] = '\0';
		command(r, line);
	}
	fclose(f);
}

/* Values are written as they are; the last field (message, error) may hold
 * spaces. Tests read these lines with grep and sed. */
static void on_hello(struct rogue *r, const Flotilla__V1__Hello *h, Flotilla__V1__Message *reply,
                     Flotilla__V1__HelloReply *hr)
{
	struct fl_buf j = FL_BUF_INIT;

	fl_buf_printf(&j, "hello agent=%s project=%s token=%s more=%d tenants=%zu at=%lld",
	              h->agent_id, h->project_id,
	              h->enrollment_token[0] ? h->enrollment_token : "-", h->more_tenants ? 1 : 0,
	              h->n_tenants, (long long)now_ms());
	for (size_t i = 0; i < h->n_tenants; i++) {
		const Flotilla__V1__Tenant *t = h->tenants[i];

		fl_buf_printf(&j,
		              "\ntenant id=%s applied=%zu head=%s failed=%zu sequence=%llu "
		              "fingerprint=%s schema=%s error=%s",
		              t->id, t->n_applied,
		              t->n_applied ? t->applied[t->n_applied - 1]->id : "-", t->n_failed,
		              (unsigned long long)t->release_sequence,
		              t->fingerprint[0] ? t->fingerprint : "-",
		              t->schema[0] ? t->schema : "-", t->error);
	}
	append(r->dir, "hellos.log", &j);
	fl_buf_fini(&j);
	reply->body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO_REPLY;
	reply->hello_reply = hr;
	hr->accepted = !r->refuse_hello;
	hr->reason = r->refuse_hello ? "refused by the test" : "";
	hr->coordinator_time_ms = now_ms();
	hr->poll_interval_ms = 100;
	hr->max_poll_wait_ms = 1000;
	hr->protocol_version = FL_PROTOCOL_VERSION;
	hr->agent_name = r->agent_name != NULL ? r->agent_name : h->agent_id;
}

static const char *outcome_name(int o)
{
	static const char *const names[] = {
	    "unspecified",   "applied", "failed",   "rolled_back", "verify_failed",
	    "health_failed", "skipped", "canceled", "refused",     "inconclusive",
	    "backup_failed", "busy",    "healthy"};

	return o >= 0 && o < 13 ? names[o] : "?";
}

static void on_report(struct rogue *r, const Flotilla__V1__Report *rep,
                      Flotilla__V1__Message *reply, Flotilla__V1__ReportAck *ack, uint64_t *id)
{
	struct fl_buf j = FL_BUF_INIT;
	size_t i;

	fl_buf_printf(&j,
	              "report assignment=%llu journal=%llu tenant=%s kind=%d outcome=%s applied=%u "
	              "head=%s failed=%zu fingerprint=%s acked=%d ms=%lld migrations=",
	              (unsigned long long)rep->assignment_id, (unsigned long long)rep->journal_id,
	              rep->tenant_id, rep->kind, outcome_name(rep->outcome), rep->applied_count,
	              rep->head_migration_id[0] ? rep->head_migration_id : "-", rep->n_failed,
	              rep->fingerprint[0] ? rep->fingerprint : "-", r->ack ? 1 : 0,
	              (long long)(rep->finished_at_ms - rep->started_at_ms));
	for (i = 0; i < rep->n_migrations; i++)
		fl_buf_printf(&j, "%s%s:%s", i ? "," : "", rep->migrations[i]->migration_id,
		              outcome_name(rep->migrations[i]->outcome));
	if (rep->n_migrations == 0)
		fl_buf_puts(&j, "-");
	fl_buf_puts(&j, " health=");
	for (i = 0; i < rep->n_health; i++)
		fl_buf_printf(&j, "%s%s:%s", i ? "," : "", rep->health[i]->name,
		              rep->health[i]->ok             ? "ok"
		              : rep->health[i]->inconclusive ? "inconclusive"
		                                             : "failed");
	if (rep->n_health == 0)
		fl_buf_puts(&j, "-");
	fl_buf_printf(&j, " message=%s", rep->message);
	for (i = 0; i < rep->n_health; i++)
		if (!rep->health[i]->ok)
			fl_buf_printf(&j, " [%s: %s]", rep->health[i]->name,
			              rep->health[i]->message);
	append(r->dir, "reports.log", &j);
	fl_buf_fini(&j);
	reply->body_case = FLOTILLA__V1__MESSAGE__BODY_REPORT_ACK;
	reply->report_ack = ack;
	*id = rep->journal_id;
	ack->journal_ids = id;
	ack->n_journal_ids = r->ack ? 1 : 0;
}

static void serve_request(struct rogue *r, const void *data, size_t len, struct fl_buf *out)
{
	Flotilla__V1__Message *req = NULL, reply = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__HelloReply hr = FLOTILLA__V1__HELLO_REPLY__INIT;
	Flotilla__V1__PollReply pr = FLOTILLA__V1__POLL_REPLY__INIT;
	Flotilla__V1__ReportAck ack = FLOTILLA__V1__REPORT_ACK__INIT;
	Flotilla__V1__ReleaseBundleReply rb = FLOTILLA__V1__RELEASE_BUNDLE_REPLY__INIT;
	Flotilla__V1__Status st = FLOTILLA__V1__STATUS__INIT;
	Flotilla__V1__Redirect redirect = FLOTILLA__V1__REDIRECT__INIT;
	bool redirect_sent = false;
	Flotilla__V1__WorkAssignment *as[MAX_ITEMS];
	Flotilla__V1__Halt hs[MAX_ITEMS], *hp[MAX_ITEMS];
	struct fl_envelope_opened o;
	enum fl_envelope_reason reason;
	char err[FL_ERRBUF_SIZE] = "";
	uint64_t jid = 0;
	int i, n_work = 0, n_halts = 0;

	fl_envelope_opened_init(&o);
	if (fl_rpc_open_request(r->ep, data, len, FL_ENVELOPE_MAX_SIZE_BUNDLE, &o, &req, &reason,
	                        err) != FL_OK) {
		fprintf(stderr, "rogue_coordinator: refused a request: %s\n", err);
		if (fl_envelope_refusal(out) != FL_OK)
			abort();
		fl_envelope_opened_fini(&o);
		return;
	}
	read_commands(r);
	switch (req->body_case) {
	case FLOTILLA__V1__MESSAGE__BODY_HELLO:
		on_hello(r, req->hello, &reply, &hr);
		break;
	case FLOTILLA__V1__MESSAGE__BODY_POLL: {
		struct fl_buf line = FL_BUF_INIT;

		fl_buf_printf(&line, "poll free=%u running=", req->poll->free_slots);
		for (size_t k = 0; k < req->poll->n_running_assignment_ids; k++)
			fl_buf_printf(&line, "%s%llu", k ? "," : "",
			              (unsigned long long)req->poll->running_assignment_ids[k]);
		append(r->dir, "polls.log", &line);
		fl_buf_fini(&line);
		for (i = 0; i < r->n_halts; i++) {
			flotilla__v1__halt__init(&hs[n_halts]);
			hs[n_halts].rollout_id = r->halts[i][0];
			hs[n_halts].reason = r->halts[i][1];
			hp[n_halts] = &hs[n_halts];
			n_halts++;
		}
		if (r->halt_always[0] != NULL && n_halts < MAX_ITEMS) {
			flotilla__v1__halt__init(&hs[n_halts]);
			hs[n_halts].rollout_id = r->halt_always[0];
			hs[n_halts].reason = r->halt_always[1];
			hp[n_halts] = &hs[n_halts];
			n_halts++;
		}
		for (i = 0; i < r->n_work; i++)
			as[n_work++] = &r->work[i]->a;
		reply.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL_REPLY;
		reply.poll_reply = &pr;
		pr.assignments = as;
		pr.n_assignments = (size_t)n_work;
		pr.halts = hp;
		pr.n_halts = (size_t)n_halts;
		pr.poll_again_ms = n_work || n_halts ? 0 : 100;
		break;
	}
	case FLOTILLA__V1__MESSAGE__BODY_REPORT:
		on_report(r, req->report, &reply, &ack, &jid);
		break;
	case FLOTILLA__V1__MESSAGE__BODY_FETCH_RELEASE:
		for (i = 0; i < r->n_served; i++)
			if (req->fetch_release->release_hash.len == 32 &&
			    memcmp(r->served[i].hash, req->fetch_release->release_hash.data, 32) ==
			        0)
				break;
		if (i < r->n_served) {
			reply.body_case = FLOTILLA__V1__MESSAGE__BODY_RELEASE_BUNDLE_REPLY;
			reply.release_bundle_reply = &rb;
			rb.release_hash.data = r->served[i].hash;
			rb.release_hash.len = 32;
			rb.signed_release.data = (uint8_t *)r->served[i].bytes.data;
			rb.signed_release.len = r->served[i].bytes.len;
		} else {
			reply.body_case = FLOTILLA__V1__MESSAGE__BODY_ERROR;
			reply.error = &st;
			st.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_NOT_FOUND;
			st.message = "no such release";
		}
		break;
	default:
		reply.body_case = FLOTILLA__V1__MESSAGE__BODY_ERROR;
		reply.error = &st;
		st.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNIMPLEMENTED;
		st.message = "not here";
		break;
	}
	if (r->redirect_url != NULL && (req->body_case == FLOTILLA__V1__MESSAGE__BODY_HELLO ||
	                                req->body_case == FLOTILLA__V1__MESSAGE__BODY_POLL)) {
		redirect.coordinator_url = r->redirect_url;
		redirect.leader_public_key.data = r->redirect_key;
		redirect.leader_public_key.len = 32;
		if (req->body_case == FLOTILLA__V1__MESSAGE__BODY_HELLO) {
			hr.redirect = &redirect;
		} else {
			pr.redirect = &redirect;
			pr.n_assignments = 0; /* nothing else then */
			pr.n_halts = 0;
		}
		redirect_sent = true;
	}
	if (fl_rpc_seal_reply(r->ep, o.sender.pk, o.seq, &reply, out, err) != FL_OK) {
		fprintf(stderr, "rogue_coordinator: cannot seal a reply: %s\n", err);
		if (fl_envelope_refusal(out) != FL_OK)
			abort();
	} else if (redirect_sent) {
		char line[64];

		if (!r->redirect_always) {
			free(r->redirect_url);
			r->redirect_url = NULL;
		}
		snprintf(line, sizeof(line), "redirect sent at=%lld", (long long)now_ms());
		append_line(r->dir, "polls.log", line);
	} else if (req->body_case == FLOTILLA__V1__MESSAGE__BODY_POLL) {
		if (n_halts > 0) {
			char line[64];

			snprintf(line, sizeof(line), "halts sent at=%lld", (long long)now_ms());
			append_line(r->dir, "polls.log", line);
		}
		/* handed out once; a test replays by asking again */
		for (i = 0; i < r->n_work; i++) {
			fl_buf_fini(&r->work[i]->order);
			fl_buf_fini(&r->work[i]->rollback);
			free(r->work[i]->tenant);
			free(r->work[i]->target);
			free(r->work[i]->rollout);
			free(r->work[i]);
		}
		r->n_work = 0;
		for (i = 0; i < r->n_halts; i++) {
			free(r->halts[i][0]);
			free(r->halts[i][1]);
		}
		r->n_halts = 0;
	}
	fl_wire_free(req);
	fl_envelope_opened_fini(&o);
}

static int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
	                                     {"key", required_argument, NULL, 'k'},
	                                     {"agent", required_argument, NULL, 'a'},
	                                     {"dir", required_argument, NULL, 'd'},
	                                     {0}};
	const char *listen = NULL, *keyfile = NULL, *agent = NULL;
	struct rogue r;
	struct fl_key key = {0};
	struct fl_identity *id;
	struct fl_peers *peers = NULL;
	uint8_t agent_pk[32];
	char err[FL_ERRBUF_SIZE] = "", url[256];
	nng_socket sock;
	nng_listener l;
	struct sigaction sa;
	int opt, rv, port = 0;

	memset(&r, 0, sizeof(r));
	r.ack = true;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'a':
			agent = optarg;
			break;
		case 'd':
			r.dir = optarg;
			break;
		default:
			return 2;
		}
	}
	if (listen == NULL || keyfile == NULL || agent == NULL || r.dir == NULL)
		die("serve: --listen, --key, --agent and --dir are required", NULL);
	if (fl_key_file_load(keyfile, FL_KEY_COORDINATOR, &key, err) != FL_OK)
		die(err, NULL);
	if (fl_key_public_parse(agent, agent_pk, err) != FL_OK)
		die("--agent", err);
	id = fl_identity_new_from_seed(key.seed);
	if (fl_peers_new(id, NULL, 0, 0, &peers, err) != FL_OK ||
	    fl_peers_add(peers, agent_pk, FL_PEER_AGENT, "agent", err) != FL_OK)
		die(err, NULL);
	r.ep = fl_envelope_new(id, peers);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((rv = nng_rep0_open(&sock)) != 0 ||
	    (rv = nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, FL_ENVELOPE_MAX_SIZE_BUNDLE)) != 0 ||
	    (rv = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 100)) != 0 ||
	    (rv = nng_listen(sock, listen, &l, 0)) != 0)
		die("cannot listen", nng_strerror(rv));
	snprintf(url, sizeof(url), "%s", listen);
	if (strncmp(listen, "tcp://", 6) == 0 &&
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		char host[128];
		const char *colon = strrchr(listen + 6, ':');

		snprintf(host, sizeof(host), "%.*s", (int)(colon - (listen + 6)), listen + 6);
		snprintf(url, sizeof(url), "tcp://%s:%d", host, port);
	}
	{
		struct fl_buf b = FL_BUF_INIT;
		char tmp[4096], final[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s/url.tmp", r.dir);
		snprintf(final, sizeof(final), "%s/url", r.dir);
		f = fopen(tmp, "w");
		fprintf(f, "%s\n", url);
		fclose(f);
		rename(tmp, final);
		fl_buf_fini(&b);
	}
	while (!stop) {
		struct fl_buf out = FL_BUF_INIT;
		nng_msg *msg = NULL, *rmsg = NULL;

		if ((rv = nng_recvmsg(sock, &msg, 0)) != 0) {
			if (rv == NNG_ETIMEDOUT) {
				read_commands(&r);
				continue;
			}
			break;
		}
		fl_buf_init(&out, FL_ENVELOPE_MAX_SIZE_BUNDLE);
		serve_request(&r, nng_msg_body(msg), nng_msg_len(msg), &out);
		nng_msg_free(msg);
		if (nng_msg_alloc(&rmsg, 0) == 0 && nng_msg_append(rmsg, out.data, out.len) == 0 &&
		    nng_sendmsg(sock, rmsg, 0) != 0)
			nng_msg_free(rmsg);
		fl_buf_fini(&out);
	}
	/* bounded: nng 1.5.2 can wait forever on a listener a peer left in the
	 * middle of the handshake (nng_quirks.h); that hung test_agent_crash */
	if (!fl_nng_close_within(sock, 5000))
		fprintf(stderr, "rogue: nng could not close the socket (nng issue #1518)\n");
	fl_envelope_free(r.ep);
	fl_peers_free(peers);
	fl_identity_free(id);
	fl_key_fini(&key);
	for (int i = 0; i < r.n_served; i++)
		fl_buf_fini(&r.served[i].bytes);
	free(r.redirect_url);
	free(r.halt_always[0]);
	free(r.halt_always[1]);
	free(r.agent_name);
	return 0;
}

static int cmd_silent(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'}, {0}};
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct sigaction act;
	const char *dir = NULL;
	int opt, fd, held[1024], n = 0;
	char path[4096], line[64];
	FILE *f;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'd')
			return 2;
		dir = optarg;
	}
	if (dir == NULL)
		die("silent: --dir is required", NULL);
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
		die("silent: cannot listen", strerror(errno));
	snprintf(path, sizeof(path), "%s/port.tmp", dir);
	f = fopen(path, "w");
	if (f == NULL)
		die("cannot write", path);
	fprintf(f, "%d\n", ntohs(sa.sin_port));
	fclose(f);
	snprintf(line, sizeof(line), "%s/port", dir);
	rename(path, line);
	snprintf(path, sizeof(path), "%s/silent.log", dir);
	while (!stop) {
		int c = accept(fd, NULL, NULL);

		if (c < 0)
			continue; /* EINTR: the signal */
		if (n < 1024)
			held[n++] = c; /* held open, never answered */
		else
			close(c);
		f = fopen(path, "a");
		if (f != NULL) {
			fprintf(f, "accepted %d\n", n);
			fclose(f);
		}
	}
	for (int i = 0; i < n; i++)
		close(held[i]);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: rogue_coordinator serve|order|rollback|silent ...\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "order") == 0)
		return cmd_order(argc - 1, argv + 1);
	if (strcmp(argv[1], "rollback") == 0)
		return cmd_rollback(argc - 1, argv + 1);
	if (strcmp(argv[1], "silent") == 0)
		return cmd_silent(argc - 1, argv + 1);
	fprintf(stderr, "rogue_coordinator: unknown command '%s'\n", argv[1]);
	return 2;
}
