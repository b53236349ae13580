/*
 * fl-testclient: a scriptable client of flotilla-coordinator for tests, made
 * of the project's own libraries (proto/client.h, real envelopes). It acts
 * as an agent or as an operator, sends one request (or many, for rough
 * benchmarks) and prints the reply.
 *
 * usage: fl-testclient [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]
 *
 * Global options (before the command):
 *   --url URL                the coordinator endpoint (agent_listen or admin_listen)
 *   --key FILE               our secret key file (flotilla keygen); its kind is
 *                            agent for agent commands, operator for admin ones
 *   --key-kind KIND          load --key as this kind instead (agent, operator,
 *                            coordinator, release): to show what a wrong key gets
 *   --coordinator-key B64    the coordinator's public key; repeat to pin several
 *   --timeout MS             per request, retries included (default 10000)
 *   --json                   print the reply as one JSON object
 *   --send-twice             seal the request once and send the same bytes twice;
 *                            prints the first reply, then "replay: refused" or
 *                            "replay: accepted" for the second
 *   --times N                send the request N times (each sealed anew) and print
 *                            "calls=N errors=E seconds=S rate=R" on stderr
 *   --threads T              with --times: T threads sharing one client
 *
 * Agent commands:
 *   hello [--agent-id NAME] [--project P] [--version V] [--protocol N]
 *         [--token TOKEN] [--more] [--tenants FILE] [--tenant LINE]...
 *       LINE (and each line of FILE; '#' starts a comment) is
 *         ID [db=NAME] [schema=S] [labels=k=v,k=v] [applied=m1,m2]
 *            [failed=m3] [fingerprint=HEX] [sequence=N] [error=TEXT TO END OF LINE]
 *       applied migrations get checksum sha256(id) and times 1000, 2000...
 *   poll [--free-slots N] [--max-wait MS] [--running ID,ID]
 *   report --tenant T --assignment N --journal J [--rollout R]
 *          [--kind apply|revert|check] [--outcome applied|failed|rolled-back|
 *          verify-failed|health-failed|skipped|canceled|refused|inconclusive|
 *          backup-failed|busy|healthy] [--migrations m1,m2] [--head H]
 *          [--applied-count N] [--fingerprint F] [--message M]
 *   fetch HASH [--out FILE]      (HASH: 64 hex digits; --out writes the release file)
 *
 * Operator commands:
 *   release-push FILE [--name N]          release-list [--limit N]
 *   agent-list [--all]                    agent-approve PUBKEY NAME [--labels k=v,...]
 *   agent-revoke PUBKEY [--reason R]      token-create NAME [--labels k=v,...] [--ttl MS]
 *   fleet-status [--labels k=v,...] [--state idle,failed,...] [--after ID] [--limit N]
 *   fleet-drift [--labels k=v,...] [--limit N]
 *   tenant-show ID [--reports N]          audit [--since MS] [--after ID] [--actor KEYID]
 *                                               [--limit N]
 *   rollout-status [ID]                   (whatever answers rollout_* today)
 *
 * Helpers (no coordinator):
 *   pubkey FILE KIND                      print the public key of a secret key file
 *   flood-keys N SEED                     print a YAML `agents:` list of N agent keys
 *                                         derived from SEED (for flood)
 *   make-release --dir DIR --project P --sequence N [--key RELEASE.KEY]... --out FILE
 *                                         a release file of the migrations in DIR for
 *                                         project P, sequence N, signed by each key
 *   store-assign STORE --rollout R --release HASH --tenant T --agent-key B64
 *                [--kind apply|revert|check] [--target M]
 *                                         with the coordinator stopped (it locks the
 *                                         store): issue an assignment as a scheduler
 *                                         would (a bare rollout row R is added if
 *                                         missing); prints its id
 *   flood --agents N --seed SEED [--max-wait MS] [--sockets S] [--window W]
 *         [--hello-only]
 *                                         as N agents (keys from flood-keys): each
 *                                         says Hello, then polls and is held; prints
 *                                         "held N" once every poll is sent, then
 *                                         waits for the replies ("answered N"); over
 *                                         S connections (default 1), W agents at a
 *                                         time until held (default 64); --hello-only
 *                                         stops after the Hellos
 *
 * Output: the reply as "path = value" lines (or --json), e.g.
 *   admin_response.status.code = STATUS_CODE_OK
 *   hello_reply.accepted = true
 *   admin_response.fleet_status.tenants[0].tenant_id = acme
 * bytes print as hex. Exit status: 0 a reply that says yes (hello accepted,
 * poll reply, report ack, release, admin status OK); 3 a reply that says no
 * (a Status error, a Hello refused, an admin status not OK); 4 refused (the
 * coordinator answered with the refusal, or its reply did not open); 5 the
 * coordinator is unreachable or did not answer in time; 1 anything else;
 * 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "checksum.h"
#include "client.h"
#include "clock.h"
#include "envelope.h"
#include "file.h"
#include "identity.h"
#include "json.h"
#include "keys.h"
#include "label.h"
#include "log.h"
#include "mem.h"
#include "migration.h"
#include "peers.h"
#include "release.h"
#include "store.h"
#include "store_sqlite_int.h"
#include "wire.h"

#define EXIT_YES         0
#define EXIT_FAIL        1
#define EXIT_USAGE       2
#define EXIT_NO          3
#define EXIT_REFUSED     4
#define EXIT_UNREACHABLE 5

struct globals {
	const char *url;
	const char *key_file;
	const char *key_kind;
	uint8_t coord[FL_CLIENT_MAX_KEYS][32];
	size_t n_coord;
	int64_t timeout_ms;
	bool json;
	bool send_twice;
	long times;
	int threads;
};

static struct globals g = {.timeout_ms = 10000, .times = 0, .threads = 1};

/* What requests are built of lives until exit, in one arena. */
static struct fl_arena mem;

static void free_mem(void)
{
	fl_arena_fini(&mem);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("fl-testclient: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see the header of tests/tools/fl_testclient.c)\n", stderr);
	exit(EXIT_USAGE);
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("fl-testclient: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static long num(const char *s, const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < 0)
		die_usage("%s: not a number: '%s'", what, s);
	return (long)v;
}

/* ---- printing any message through protobuf-c's descriptors ---- */

static void print_scalar(struct fl_buf *b, const ProtobufCFieldDescriptor *f, const void *p,
                         bool json)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		(void)fl_buf_printf(b, "%d", *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		(void)fl_buf_printf(b, "%u", *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		(void)fl_buf_printf(b, "%lld", (long long)*(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		(void)fl_buf_printf(b, "%llu", (unsigned long long)*(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		(void)fl_buf_printf(b, "%g", (double)*(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		(void)fl_buf_printf(b, "%g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		(void)fl_buf_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *v =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		char num_[32];

		snprintf(num_, sizeof(num_), "%d", *(const int *)p);
		if (json)
			fl_json_string(b, v ? v->name : num_);
		else
			(void)fl_buf_puts(b, v ? v->name : num_);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;

		if (json)
			fl_json_string(b, s ? s : "");
		else
			(void)fl_buf_puts(b, s ? s : "");
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *d = p;
		char *hex = fl_malloc(d->len * 2 + 1);

		sodium_bin2hex(hex, d->len * 2 + 1, d->data, d->len);
		if (json)
			fl_json_string(b, hex);
		else
			(void)fl_buf_puts(b, hex);
		free(hex);
		break;
	}
	default:
		break;
	}
}

/* Bytes per element of a repeated field's array. */
static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

static bool field_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)((const char *)m + f->quantifier_offset) == f->id;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED)
		return *(void *const *)((const char *)m + f->offset) != NULL;
	return true;
}

static void print_plain(struct fl_buf *b, const char *prefix, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char path[1024];

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *member = (const char *)m + f->offset;

		if (!field_set(m, f))
			continue;
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", f->name);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const char *arr = *(char *const *)member;
			size_t sz = elem_size(f);

			(void)fl_buf_printf(b, "%s.count = %zu\n", path, n);
			for (size_t k = 0; k < n; k++) {
				char ep[1100];

				snprintf(ep, sizeof(ep), "%s[%zu]", path, k);
				if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
					print_plain(b, ep, ((ProtobufCMessage *const *)arr)[k]);
				} else {
					(void)fl_buf_printf(b, "%s = ", ep);
					print_scalar(b, f, arr + k * sz, false);
					(void)fl_buf_puts(b, "\n");
				}
			}
		} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			print_plain(b, path, *(ProtobufCMessage *const *)member);
		} else {
			(void)fl_buf_printf(b, "%s = ", path);
			print_scalar(b, f, member, false);
			(void)fl_buf_puts(b, "\n");
		}
	}
}

static void print_json(struct fl_buf *b, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;

	(void)fl_buf_puts(b, "{");
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *member = (const char *)m + f->offset;

		if (!field_set(m, f))
			continue;
		(void)fl_buf_puts(b, first ? "" : ",");
		first = false;
		fl_json_string(b, f->name);
		(void)fl_buf_puts(b, ":");
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const char *arr = *(char *const *)member;

			(void)fl_buf_puts(b, "[");
			for (size_t k = 0; k < n; k++) {
				(void)fl_buf_puts(b, k ? "," : "");
				if (f->type == PROTOBUF_C_TYPE_MESSAGE)
					print_json(b, ((ProtobufCMessage *const *)arr)[k]);
				else
					print_scalar(b, f, arr + k * elem_size(f), true);
			}
			(void)fl_buf_puts(b, "]");
		} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			print_json(b, *(ProtobufCMessage *const *)member);
		} else {
			print_scalar(b, f, member, true);
		}
	}
	(void)fl_buf_puts(b, "}");
}

static void print_reply(const Flotilla__V1__Message *m, const char *prefix)
{
	struct fl_buf b = FL_BUF_INIT;

	if (g.json) {
		print_json(&b, &m->base);
		(void)fl_buf_puts(&b, "\n");
	} else {
		print_plain(&b, prefix, &m->base);
	}
	fputs(fl_buf_str(&b), stdout);
	fflush(stdout);
	fl_buf_fini(&b);
}

/* What the reply says: yes or no. */
static int verdict(const Flotilla__V1__Message *m)
{
	switch (m->body_case) {
	case FLOTILLA__V1__MESSAGE__BODY_ERROR:
		return EXIT_NO;
	case FLOTILLA__V1__MESSAGE__BODY_HELLO_REPLY:
		return m->hello_reply->accepted ? EXIT_YES : EXIT_NO;
	case FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE:
		return m->admin_response->status->code == FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK
		           ? EXIT_YES
		           : EXIT_NO;
	default:
		return EXIT_YES;
	}
}

static int exit_for(enum fl_err rv)
{
	switch (rv) {
	case FL_OK:
		return EXIT_YES;
	case FL_EAUTH:
		return EXIT_REFUSED;
	case FL_ECONNECT:
	case FL_ETIMEDOUT:
		return EXIT_UNREACHABLE;
	case FL_EINVAL:
		return EXIT_USAGE;
	default:
		return EXIT_FAIL;
	}
}

/* ---- identity and client ---- */

struct conn {
	struct fl_identity *self;
	struct fl_peers *peers;
	struct fl_envelope *ep;
	struct fl_client *client;
};

static void conn_open(struct conn *c, enum fl_key_kind default_kind)
{
	char err[FL_ERRBUF_SIZE] = "";
	enum fl_key_kind kind = default_kind;
	struct fl_key key;

	if (g.url == NULL || g.key_file == NULL || g.n_coord == 0)
		die_usage("--url, --key and --coordinator-key are needed");
	if (g.key_kind && fl_key_kind_parse(g.key_kind, &kind, err) != FL_OK)
		die_usage("--key-kind: %s", err);
	if (fl_key_file_load(g.key_file, kind, &key, err) != FL_OK)
		die(EXIT_USAGE, "%s", err);
	c->self = fl_identity_new_from_seed(key.seed);
	fl_key_fini(&key);
	if (c->self == NULL || fl_peers_new(c->self, NULL, 0, 0, &c->peers, err) != FL_OK)
		die(EXIT_FAIL, "cannot set up our identity: %s", err);
	for (size_t i = 0; i < g.n_coord; i++)
		if (fl_peers_add(c->peers, g.coord[i], FL_PEER_COORDINATOR, "coordinator", err) !=
		    FL_OK)
			die(EXIT_USAGE, "--coordinator-key: %s", err);
	c->ep = fl_envelope_new(c->self, c->peers);
	if (fl_client_new(c->ep, g.url, (const uint8_t(*)[32])g.coord, g.n_coord, &c->client,
	                  err) != FL_OK)
		die(EXIT_USAGE, "%s", err);
}

static void conn_close(struct conn *c)
{
	fl_client_free(c->client);
	fl_envelope_free(c->ep);
	fl_peers_free(c->peers);
	fl_identity_free(c->self);
}

/* ---- sending ---- */

struct bench {
	struct conn *c;
	const Flotilla__V1__Message *req;
	size_t max;
	long per_thread;
	atomic_long errors;
};

static void *bench_thread(void *arg)
{
	struct bench *b = arg;
	char err[FL_ERRBUF_SIZE];

	for (long i = 0; i < b->per_thread; i++) {
		Flotilla__V1__Message *reply = NULL;

		if (fl_client_call(b->c->client, b->req, b->max, FL_CLIENT_IDEMPOTENT, g.timeout_ms,
		                   &reply, err) != FL_OK ||
		    verdict(reply) != EXIT_YES)
			atomic_fetch_add(&b->errors, 1);
		fl_wire_free(reply);
	}
	return NULL;
}

static int send_twice(struct conn *c, const Flotilla__V1__Message *req, size_t max)
{
	struct fl_buf sealed = FL_BUF_INIT, raw = FL_BUF_INIT;
	Flotilla__V1__Message *reply = NULL;
	char err[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;
	uint64_t seq;
	int code;

	fl_buf_init(&raw, FL_ENVELOPE_MAX_SIZE_BUNDLE);
	if ((rv = fl_client_seal(c->client, req, max, &sealed, &seq, err)) != FL_OK ||
	    (rv = fl_client_send_raw(c->client, sealed.data, sealed.len, g.timeout_ms, &raw,
	                             err)) != FL_OK ||
	    (rv = fl_client_open_reply(c->client, raw.data, raw.len, seq, &reply, err)) != FL_OK) {
		fprintf(stderr, "fl-testclient: %s\n", err);
		code = exit_for(rv);
		goto out;
	}
	print_reply(reply, "");
	code = verdict(reply);
	fl_wire_free(reply);
	reply = NULL;
	rv = fl_client_send_raw(c->client, sealed.data, sealed.len, g.timeout_ms, &raw, err);
	if (rv != FL_OK) {
		printf("replay: no answer (%s)\n", err);
	} else if (fl_envelope_is_refusal(raw.data, raw.len)) {
		printf("replay: refused\n");
	} else {
		printf("replay: accepted\n");
		if (fl_client_open_reply(c->client, raw.data, raw.len, seq, &reply, err) == FL_OK)
			print_reply(reply, "replay");
		fl_wire_free(reply);
	}
out:
	fl_buf_fini(&sealed);
	fl_buf_fini(&raw);
	return code;
}

/* Send req as the globals say; print; the exit status. */
static int run_request(enum fl_key_kind kind, const Flotilla__V1__Message *req, size_t max,
                       const char *save_release)
{
	struct conn c = {0};
	Flotilla__V1__Message *reply = NULL;
	char err[FL_ERRBUF_SIZE] = "";
	enum fl_err rv;
	int code;

	conn_open(&c, kind);
	if (g.send_twice) {
		code = send_twice(&c, req, max);
	} else if (g.times > 0) {
		struct bench b = {&c, req, max, g.times / g.threads, 0};
		pthread_t th[64];
		int64_t t0 = fl_now_ms(), ms;

		atomic_init(&b.errors, 0);
		for (int i = 0; i < g.threads; i++)
			pthread_create(&th[i], NULL, bench_thread, &b);
		for (int i = 0; i < g.threads; i++)
			pthread_join(th[i], NULL);
		ms = fl_now_ms() - t0;
		fprintf(stderr, "calls=%ld errors=%ld seconds=%.3f rate=%.0f\n",
		        b.per_thread * g.threads, atomic_load(&b.errors), ms / 1000.0,
		        ms > 0 ? b.per_thread * g.threads * 1000.0 / (double)ms : 0.0);
		code = atomic_load(&b.errors) ? EXIT_FAIL : EXIT_YES;
	} else {
		rv = fl_client_call(c.client, req, max, 0, g.timeout_ms, &reply, err);
		if (rv != FL_OK) {
			fprintf(stderr, "fl-testclient: %s\n", err);
			code = exit_for(rv);
		} else {
			print_reply(reply, "");
			code = verdict(reply);
			if (save_release &&
			    reply->body_case == FLOTILLA__V1__MESSAGE__BODY_RELEASE_BUNDLE_REPLY &&
			    fl_release_file_write(
			        save_release, reply->release_bundle_reply->signed_release.data,
			        reply->release_bundle_reply->signed_release.len, err) != FL_OK)
				die(EXIT_FAIL, "%s", err);
		}
		fl_wire_free(reply);
	}
	conn_close(&c);
	return code;
}

/* ---- building requests ---- */

static Flotilla__V1__Label **labels_from(const char *text, size_t *n)
{
	struct fl_labels l;
	Flotilla__V1__Label **out;
	char err[FL_ERRBUF_SIZE];

	if (fl_labels_parse(text, &l, err) != FL_OK)
		die_usage("labels: %s", err);
	out = fl_arena_alloc(&mem, (l.n + 1) * sizeof(*out));
	for (size_t i = 0; i < l.n; i++) {
		out[i] = fl_arena_alloc(&mem, sizeof(**out));
		flotilla__v1__label__init(out[i]);
		out[i]->key = fl_arena_strdup(&mem, l.items[i].key);
		out[i]->value = fl_arena_strdup(&mem, l.items[i].value);
	}
	*n = l.n;
	fl_labels_fini(&l);
	return out;
}

/* Split "a,b,c" into a heap array of heap strings. */
static char **split(const char *text, size_t *n)
{
	char **out = NULL;
	const char *p = text, *comma;

	*n = 0;
	while (p && *p) {
		size_t len = (comma = strchr(p, ',')) ? (size_t)(comma - p) : strlen(p);

		char *item = fl_arena_alloc(&mem, len + 1);

		memcpy(item, p, len);
		fl_arena_push(&mem, &out, n, item);
		p = comma ? comma + 1 : NULL;
	}
	return out;
}

static bool hex32(const char *text, uint8_t out[32])
{
	size_t n = 0;

	return strlen(text) == 64 && sodium_hex2bin(out, 32, text, 64, NULL, &n, NULL) == 0 &&
	       n == 32;
}

static Flotilla__V1__Tenant *tenant_from(char *line)
{
	Flotilla__V1__Tenant *t = fl_arena_alloc(&mem, sizeof(*t));
	char *p = line, *tok;

	flotilla__v1__tenant__init(t);
	while (*p == ' ' || *p == '\t')
		p++;
	tok = p;
	while (*p && *p != ' ' && *p != '\t')
		p++;
	if (*p)
		*p++ = '\0';
	t->id = fl_arena_strdup(&mem, tok);
	t->database = fl_arena_strdup(&mem, tok);
	while (*p) {
		char *eq;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (strncmp(p, "error=", 6) == 0) { /* to the end of the line */
			t->error = fl_arena_strdup(&mem, p + 6);
			break;
		}
		tok = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = '\0';
		if ((eq = strchr(tok, '=')) == NULL)
			die_usage("tenant '%s': expected key=value, got '%s'", t->id, tok);
		*eq++ = '\0';
		if (strcmp(tok, "db") == 0) {
			t->database = fl_arena_strdup(&mem, eq);
		} else if (strcmp(tok, "schema") == 0) {
			t->schema = fl_arena_strdup(&mem, eq);
		} else if (strcmp(tok, "labels") == 0) {
			t->labels = labels_from(eq, &t->n_labels);
		} else if (strcmp(tok, "fingerprint") == 0) {
			t->fingerprint = fl_arena_strdup(&mem, eq);
		} else if (strcmp(tok, "sequence") == 0) {
			t->release_sequence = (uint64_t)num(eq, "sequence");
		} else if (strcmp(tok, "applied") == 0 || strcmp(tok, "failed") == 0) {
			size_t n;
			char **ids = split(eq, &n);
			bool applied = tok[0] == 'a';

			for (size_t i = 0; i < n; i++) {
				char sum[FL_CHECKSUM_HEX_LEN + 1];

				fl_checksum_compute(ids[i], strlen(ids[i]), sum);
				if (applied) {
					Flotilla__V1__AppliedMigration *a =
					    fl_arena_alloc(&mem, sizeof(*a));

					flotilla__v1__applied_migration__init(a);
					a->id = ids[i];
					a->checksum = fl_arena_strdup(&mem, sum);
					a->started_at_ms = (int64_t)(i + 1) * 1000 - 500;
					a->finished_at_ms = (int64_t)(i + 1) * 1000;
					a->applied_steps_count = 1;
					fl_arena_push(&mem, &t->applied, &t->n_applied, a);
				} else {
					Flotilla__V1__FailedMigration *f =
					    fl_arena_alloc(&mem, sizeof(*f));

					flotilla__v1__failed_migration__init(f);
					f->id = ids[i];
					f->checksum = fl_arena_strdup(&mem, sum);
					f->started_at_ms = 1;
					f->logs = "failed in a test";
					fl_arena_push(&mem, &t->failed, &t->n_failed, f);
				}
			}
		} else {
			die_usage("tenant '%s': unknown key '%s'", t->id, tok);
		}
	}
	return t;
}

static int cmd_hello(int argc, char **argv)
{
	static const struct option o[] = {
	    {"agent-id", 1, 0, 'a'}, {"project", 1, 0, 'p'}, {"version", 1, 0, 'v'},
	    {"protocol", 1, 0, 'P'}, {"token", 1, 0, 't'},   {"more", 0, 0, 'm'},
	    {"tenants", 1, 0, 'f'},  {"tenant", 1, 0, 'T'},  {0, 0, 0, 0},
	};
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Hello *h = fl_arena_alloc(&mem, sizeof(*h));
	int c;

	flotilla__v1__hello__init(h);
	h->agent_id = "fl-testclient";
	h->agent_version = FL_VERSION;
	h->protocol_version = FL_PROTOCOL_VERSION;
	h->project_id = "acme";
	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'a':
			h->agent_id = optarg;
			break;
		case 'p':
			h->project_id = optarg;
			break;
		case 'v':
			h->agent_version = optarg;
			break;
		case 'P':
			h->protocol_version = (uint32_t)num(optarg, "--protocol");
			break;
		case 't':
			h->enrollment_token = optarg;
			break;
		case 'm':
			h->more_tenants = true;
			break;
		case 'f':
		case 'T': {
			struct fl_buf b = FL_BUF_INIT;
			char err[FL_ERRBUF_SIZE], *line, *save = NULL, *text;

			if (c == 'f') {
				if (fl_file_read(optarg, 1 << 20, 0, &b, err) != FL_OK)
					die(EXIT_USAGE, "%s", err);
				text = fl_arena_strdup(&mem, fl_buf_str(&b));
				fl_buf_fini(&b);
			} else {
				text = fl_arena_strdup(&mem, optarg);
			}
			for (line = text; line && *line; line = save) {
				save = strchr(line, '\n');
				if (save)
					*save++ = '\0';
				if (strchr(line, '#'))
					*strchr(line, '#') = '\0';
				if (strspn(line, " \t") == strlen(line))
					continue;
				fl_arena_push(&mem, &h->tenants, &h->n_tenants, tenant_from(line));
			}
			break;
		}
		default:
			die_usage("hello: bad option");
		}
	}
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
	m.hello = h;
	return run_request(FL_KEY_AGENT, &m, FL_WIRE_MAX_HELLO, NULL);
}

static int cmd_poll(int argc, char **argv)
{
	static const struct option o[] = {{"free-slots", 1, 0, 'f'},
	                                  {"max-wait", 1, 0, 'w'},
	                                  {"running", 1, 0, 'r'},
	                                  {0, 0, 0, 0}};
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Poll p = FLOTILLA__V1__POLL__INIT;
	int c;

	p.agent_id = "fl-testclient";
	p.free_slots = 1;
	p.max_wait_ms = 0;
	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'f':
			p.free_slots = (uint32_t)num(optarg, "--free-slots");
			break;
		case 'w':
			p.max_wait_ms = (uint32_t)num(optarg, "--max-wait");
			break;
		case 'r': {
			size_t n;
			char **ids = split(optarg, &n);

			p.running_assignment_ids = fl_arena_alloc(&mem, (n + 1) * sizeof(uint64_t));
			for (size_t i = 0; i < n; i++)
				p.running_assignment_ids[i] = (uint64_t)num(ids[i], "--running");
			p.n_running_assignment_ids = n;
			break;
		}
		default:
			die_usage("poll: bad option");
		}
	}
	if (g.timeout_ms < (int64_t)p.max_wait_ms + 1000)
		g.timeout_ms = (int64_t)p.max_wait_ms + 5000;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
	m.poll = &p;
	return run_request(FL_KEY_AGENT, &m, FL_WIRE_MAX_SMALL, NULL);
}

static const struct {
	const char *name;
	Flotilla__V1__Outcome value;
} outcomes[] = {
    {"applied", FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED},
    {"failed", FLOTILLA__V1__OUTCOME__OUTCOME_FAILED},
    {"rolled-back", FLOTILLA__V1__OUTCOME__OUTCOME_ROLLED_BACK},
    {"verify-failed", FLOTILLA__V1__OUTCOME__OUTCOME_VERIFY_FAILED},
    {"health-failed", FLOTILLA__V1__OUTCOME__OUTCOME_HEALTH_FAILED},
    {"skipped", FLOTILLA__V1__OUTCOME__OUTCOME_SKIPPED},
    {"canceled", FLOTILLA__V1__OUTCOME__OUTCOME_CANCELED},
    {"refused", FLOTILLA__V1__OUTCOME__OUTCOME_REFUSED},
    {"inconclusive", FLOTILLA__V1__OUTCOME__OUTCOME_INCONCLUSIVE},
    {"backup-failed", FLOTILLA__V1__OUTCOME__OUTCOME_BACKUP_FAILED},
    {"busy", FLOTILLA__V1__OUTCOME__OUTCOME_BUSY},
    {"healthy", FLOTILLA__V1__OUTCOME__OUTCOME_HEALTHY},
};

static int cmd_report(int argc, char **argv)
{
	static const struct option o[] = {
	    {"tenant", 1, 0, 't'},      {"assignment", 1, 0, 'a'}, {"journal", 1, 0, 'j'},
	    {"rollout", 1, 0, 'r'},     {"kind", 1, 0, 'k'},       {"outcome", 1, 0, 'o'},
	    {"migrations", 1, 0, 'm'},  {"head", 1, 0, 'h'},       {"applied-count", 1, 0, 'c'},
	    {"fingerprint", 1, 0, 'f'}, {"message", 1, 0, 'M'},    {0, 0, 0, 0}};
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__Report r = FLOTILLA__V1__REPORT__INIT;
	const char *migs = NULL;
	int c;

	r.agent_id = "fl-testclient";
	r.rollout_id = "r-1";
	r.kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
	r.outcome = FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED;
	r.started_at_ms = 1000;
	r.finished_at_ms = 2000;
	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 't':
			r.tenant_id = optarg;
			break;
		case 'a':
			r.assignment_id = (uint64_t)num(optarg, "--assignment");
			break;
		case 'j':
			r.journal_id = (uint64_t)num(optarg, "--journal");
			break;
		case 'r':
			r.rollout_id = optarg;
			break;
		case 'k':
			r.kind = strcmp(optarg, "revert") == 0
			             ? FLOTILLA__V1__WORK_KIND__WORK_KIND_REVERT
			         : strcmp(optarg, "check") == 0
			             ? FLOTILLA__V1__WORK_KIND__WORK_KIND_CHECK
			             : FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
			break;
		case 'o': {
			size_t i;

			for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
				if (strcmp(outcomes[i].name, optarg) == 0)
					break;
			if (i == sizeof(outcomes) / sizeof(outcomes[0]))
				die_usage("--outcome: unknown '%s'", optarg);
			r.outcome = outcomes[i].value;
			break;
		}
		case 'm':
			migs = optarg;
			break;
		case 'h':
			r.head_migration_id = optarg;
			break;
		case 'c':
			r.applied_count = (uint32_t)num(optarg, "--applied-count");
			break;
		case 'f':
			r.fingerprint = optarg;
			break;
		case 'M':
			r.message = optarg;
			break;
		default:
			die_usage("report: bad option");
		}
	}
	if (r.tenant_id == NULL || *r.tenant_id == '\0' || r.journal_id == 0)
		die_usage("report: --tenant and --journal are needed");
	if (migs) {
		size_t n;
		char **ids = split(migs, &n);

		r.migrations = fl_arena_alloc(&mem, (n + 1) * sizeof(*r.migrations));
		for (size_t i = 0; i < n; i++) {
			Flotilla__V1__MigrationResult *mr = fl_arena_alloc(&mem, sizeof(*mr));

			flotilla__v1__migration_result__init(mr);
			mr->migration_id = ids[i];
			mr->outcome =
			    r.outcome == FLOTILLA__V1__OUTCOME__OUTCOME_FAILED && i == n - 1
			        ? FLOTILLA__V1__OUTCOME__OUTCOME_FAILED
			        : FLOTILLA__V1__OUTCOME__OUTCOME_APPLIED;
			mr->attempts = 1;
			r.migrations[i] = mr;
		}
		r.n_migrations = n;
		if (r.head_migration_id == NULL || *r.head_migration_id == '\0')
			r.head_migration_id = ids[n ? n - 1 : 0];
	}
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_REPORT;
	m.report = &r;
	return run_request(FL_KEY_AGENT, &m, FL_WIRE_MAX_REPORT, NULL);
}

static int cmd_fetch(int argc, char **argv)
{
	static const struct option o[] = {{"out", 1, 0, 'o'}, {0, 0, 0, 0}};
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
	Flotilla__V1__FetchRelease f = FLOTILLA__V1__FETCH_RELEASE__INIT;
	const char *out = NULL;
	static uint8_t hash[32];
	int c;

	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (c != 'o')
			die_usage("fetch: bad option");
		out = optarg;
	}
	if (optind + 1 != argc || !hex32(argv[optind], hash))
		die_usage("fetch: give the release hash, 64 hex digits");
	f.release_hash.data = hash;
	f.release_hash.len = 32;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_FETCH_RELEASE;
	m.fetch_release = &f;
	return run_request(FL_KEY_AGENT, &m, FL_WIRE_MAX_SMALL, out);
}

/* ---- operator commands ---- */

static int admin(Flotilla__V1__AdminRequest *a, size_t max)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;

	a->request_id = (uint64_t)getpid();
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST;
	m.admin_request = a;
	return run_request(FL_KEY_OPERATOR, &m, max, NULL);
}

static void pubkey_arg(const char *text, ProtobufCBinaryData *out)
{
	static uint8_t pk[4][32];
	static int used;
	char err[FL_ERRBUF_SIZE];

	if (used >= 4 || fl_key_public_parse(text, pk[used], err) != FL_OK)
		die_usage("%s", err);
	out->data = pk[used++];
	out->len = 32;
}

static int cmd_admin(const char *cmd, int argc, char **argv)
{
	static const struct option o[] = {
	    {"name", 1, 0, 'n'},   {"limit", 1, 0, 'l'},  {"all", 0, 0, 'A'},
	    {"labels", 1, 0, 'L'}, {"reason", 1, 0, 'r'}, {"ttl", 1, 0, 't'},
	    {"state", 1, 0, 's'},  {"after", 1, 0, 'a'},  {"reports", 1, 0, 'R'},
	    {"since", 1, 0, 'S'},  {"actor", 1, 0, 'c'},  {0, 0, 0, 0}};
	Flotilla__V1__AdminRequest a = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	const char *name = NULL, *labels = NULL, *reason = "", *states = NULL, *after = NULL,
	           *actor = "";
	long limit = 0, ttl = 0, reports = 0, since = 0;
	bool all = false;
	size_t max = FL_WIRE_MAX_SMALL;
	char **pos;
	int c, npos;

	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'l':
			limit = num(optarg, "--limit");
			break;
		case 'A':
			all = true;
			break;
		case 'L':
			labels = optarg;
			break;
		case 'r':
			reason = optarg;
			break;
		case 't':
			ttl = num(optarg, "--ttl");
			break;
		case 's':
			states = optarg;
			break;
		case 'a':
			after = optarg;
			break;
		case 'R':
			reports = num(optarg, "--reports");
			break;
		case 'S':
			since = num(optarg, "--since");
			break;
		case 'c':
			actor = optarg;
			break;
		default:
			die_usage("%s: bad option", cmd);
		}
	}
	pos = argv + optind;
	npos = argc - optind;
#define NEED(n)                                                                                    \
	do {                                                                                       \
		if (npos != (n))                                                                   \
			die_usage("%s: expected %d argument(s)", cmd, (n));                        \
	} while (0)
	if (strcmp(cmd, "release-push") == 0) {
		Flotilla__V1__ReleasePushRequest *r = fl_arena_alloc(&mem, sizeof(*r));
		struct fl_buf b = FL_BUF_INIT;
		char err[FL_ERRBUF_SIZE];

		NEED(1);
		flotilla__v1__release_push_request__init(r);
		if (fl_file_read(pos[0], FL_WIRE_MAX_RELEASE, 0, &b, err) != FL_OK)
			die(EXIT_USAGE, "%s", err);
		r->signed_release.len = b.len;
		r->signed_release.data = fl_arena_memdup(&mem, b.data, b.len);
		fl_buf_fini(&b);
		r->name = (char *)(name ? name : "");
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_PUSH;
		a.release_push = r;
		max = FL_WIRE_MAX_RELEASE_MESSAGE;
	} else if (strcmp(cmd, "release-list") == 0) {
		Flotilla__V1__ReleaseListRequest *r = fl_arena_alloc(&mem, sizeof(*r));

		NEED(0);
		flotilla__v1__release_list_request__init(r);
		r->limit = (uint32_t)limit;
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_LIST;
		a.release_list = r;
	} else if (strcmp(cmd, "agent-list") == 0) {
		Flotilla__V1__AgentListRequest *r = fl_arena_alloc(&mem, sizeof(*r));

		NEED(0);
		flotilla__v1__agent_list_request__init(r);
		r->include_revoked = all;
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST;
		a.agent_list = r;
	} else if (strcmp(cmd, "agent-approve") == 0) {
		Flotilla__V1__AgentApproveRequest *r = fl_arena_alloc(&mem, sizeof(*r));

		NEED(2);
		flotilla__v1__agent_approve_request__init(r);
		pubkey_arg(pos[0], &r->public_key);
		r->name = pos[1];
		if (labels)
			r->labels = labels_from(labels, &r->n_labels);
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_APPROVE;
		a.agent_approve = r;
	} else if (strcmp(cmd, "agent-revoke") == 0) {
		Flotilla__V1__AgentRevokeRequest *r = fl_arena_alloc(&mem, sizeof(*r));

		NEED(1);
		flotilla__v1__agent_revoke_request__init(r);
		pubkey_arg(pos[0], &r->public_key);
		r->reason = (char *)reason;
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_REVOKE;
		a.agent_revoke = r;
	} else if (strcmp(cmd, "token-create") == 0) {
		Flotilla__V1__EnrollmentTokenCreateRequest *r = fl_arena_alloc(&mem, sizeof(*r));

		NEED(1);
		flotilla__v1__enrollment_token_create_request__init(r);
		r->name = pos[0];
		if (labels)
			r->labels = labels_from(labels, &r->n_labels);
		r->ttl_ms = (uint32_t)ttl;
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ENROLLMENT_TOKEN_CREATE;
		a.enrollment_token_create = r;
	} else if (strcmp(cmd, "fleet-status") == 0) {
		Flotilla__V1__FleetStatusRequest *r = fl_arena_alloc(&mem, sizeof(*r));

		NEED(0);
		flotilla__v1__fleet_status_request__init(r);
		if (labels)
			r->labels = labels_from(labels, &r->n_labels);
		if (states) {
			size_t n;
			char **names = split(states, &n);

			r->states = fl_arena_alloc(&mem, (n + 1) * sizeof(*r->states));
			for (size_t i = 0; i < n; i++) {
				char up[64];
				const ProtobufCEnumValue *v;

				snprintf(up, sizeof(up), "TENANT_STATE_%s", names[i]);
				for (char *q = up; *q; q++)
					*q = (char)(*q >= 'a' && *q <= 'z' ? *q - 32 : *q);
				v = protobuf_c_enum_descriptor_get_value_by_name(
				    &flotilla__v1__tenant_state__descriptor, up);
				if (v == NULL)
					die_usage("--state: unknown '%s'", names[i]);
				r->states[i] = (Flotilla__V1__TenantState)v->value;
			}
			r->n_states = n;
		}
		r->after_tenant_id = (char *)(after ? after : "");
		r->limit = (uint32_t)limit;
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_STATUS;
		a.fleet_status = r;
	} else if (strcmp(cmd, "fleet-drift") == 0) {
		Flotilla__V1__FleetDriftRequest *r = fl_arena_alloc(&mem, sizeof(*r));

		NEED(0);
		flotilla__v1__fleet_drift_request__init(r);
		if (labels)
			r->labels = labels_from(labels, &r->n_labels);
		r->limit = (uint32_t)limit;
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_DRIFT;
		a.fleet_drift = r;
	} else if (strcmp(cmd, "tenant-show") == 0) {
		Flotilla__V1__TenantShowRequest *r = fl_arena_alloc(&mem, sizeof(*r));

		NEED(1);
		flotilla__v1__tenant_show_request__init(r);
		r->tenant_id = pos[0];
		r->report_limit = (uint32_t)reports;
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_TENANT_SHOW;
		a.tenant_show = r;
	} else if (strcmp(cmd, "audit") == 0) {
		Flotilla__V1__AuditQueryRequest *r = fl_arena_alloc(&mem, sizeof(*r));

		NEED(0);
		flotilla__v1__audit_query_request__init(r);
		r->since_ms = since;
		r->after_id = after ? (uint64_t)num(after, "--after") : 0;
		r->actor_key_id = (char *)actor;
		r->limit = (uint32_t)limit;
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AUDIT_QUERY;
		a.audit_query = r;
	} else if (strcmp(cmd, "rollout-status") == 0) {
		Flotilla__V1__RolloutStatusRequest *r = fl_arena_alloc(&mem, sizeof(*r));

		if (npos > 1)
			die_usage("rollout-status: at most one rollout id");
		flotilla__v1__rollout_status_request__init(r);
		r->rollout_id = npos ? pos[0] : "";
		a.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS;
		a.rollout_status = r;
	} else {
		die_usage("unknown command '%s'", cmd);
	}
#undef NEED
	return admin(&a, max);
}

/* ---- helpers without a coordinator ---- */

static void flood_seed(const char *seed, long i, uint8_t out[32])
{
	char text[256];

	snprintf(text, sizeof(text), "fl-flood %s %ld", seed, i);
	crypto_hash_sha256(out, (const uint8_t *)text, strlen(text));
}

static int cmd_flood_keys(int argc, char **argv)
{
	long n;

	if (argc != 3)
		die_usage("flood-keys N SEED");
	n = num(argv[1], "N");
	printf("agents:\n");
	for (long i = 0; i < n; i++) {
		uint8_t seed[32];
		struct fl_key k;
		char pk[FL_KEY_PUBLIC_TEXT_LEN + 1];

		flood_seed(argv[2], i, seed);
		fl_key_generate(FL_KEY_AGENT, seed, &k);
		fl_key_public_text(k.pk, pk);
		printf("  - {name: flood-%ld, public_key: \"%s\"}\n", i, pk);
		fl_key_fini(&k);
	}
	return 0;
}

/* One flooding agent: its sealed Hello and Poll, and where it is. */
struct flooder {
	struct fl_buf hello, poll;
	nng_ctx ctx;
	nng_aio *aio;
	int step; /* 0 sending hello, 1 awaiting its reply, 2 sending poll, 3 held, 4 answered */
};

static void flood_cb(void *arg);
static atomic_long flood_held, flood_answered, flood_failed, flood_next;
static bool flood_hello_only;
static struct flooder *flood_all;
static nng_socket *flood_socks;
static long flood_n, flood_n_socks, flood_wait_ms;

/* Start agent i: a context of its own on its connection, then its Hello. */
static void flood_start(long i)
{
	struct flooder *f = &flood_all[i];
	nng_msg *msg;

	if (nng_ctx_open(&f->ctx, flood_socks[i % flood_n_socks]) != 0 ||
	    nng_ctx_set_ms(f->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE) != 0 ||
	    nng_aio_alloc(&f->aio, flood_cb, f) != 0 || nng_msg_alloc(&msg, 0) != 0 ||
	    nng_msg_append(msg, f->hello.data, f->hello.len) != 0)
		die(EXIT_FAIL, "flood: nng failed");
	nng_aio_set_timeout(f->aio, flood_wait_ms + 30000);
	nng_aio_set_msg(f->aio, msg);
	nng_ctx_send(f->ctx, f->aio);
}

/* One agent is done with its turn (held, or through its Hello): the next goes. */
static void flood_turn(void)
{
	long i = atomic_fetch_add(&flood_next, 1);

	if (i < flood_n)
		flood_start(i);
}

static void flood_cb(void *arg)
{
	struct flooder *f = arg;
	nng_msg *msg;
	int rv = nng_aio_result(f->aio);

	if (rv != 0) {
		nng_msg_free(nng_aio_get_msg(f->aio));
		nng_aio_set_msg(f->aio, NULL);
		atomic_fetch_add(&flood_failed, 1);
		if (f->step < 3)
			flood_turn();
		f->step = 4;
		return;
	}
	switch (f->step) {
	case 0:
	case 2:
		if (f->step == 2) {
			atomic_fetch_add(&flood_held, 1);
			flood_turn();
		}
		f->step++;
		nng_ctx_recv(f->ctx, f->aio);
		return;
	case 1:
		nng_msg_free(nng_aio_get_msg(f->aio));
		nng_aio_set_msg(f->aio, NULL);
		if (flood_hello_only) {
			f->step = 4;
			atomic_fetch_add(&flood_held, 1);
			atomic_fetch_add(&flood_answered, 1);
			flood_turn();
			return;
		}
		if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, f->poll.data, f->poll.len)) {
			atomic_fetch_add(&flood_failed, 1);
			flood_turn();
			return;
		}
		f->step = 2;
		nng_aio_set_msg(f->aio, msg);
		nng_ctx_send(f->ctx, f->aio);
		return;
	case 3:
		nng_msg_free(nng_aio_get_msg(f->aio));
		nng_aio_set_msg(f->aio, NULL);
		f->step = 4;
		atomic_fetch_add(&flood_answered, 1);
		return;
	}
}

static int cmd_flood(int argc, char **argv)
{
	static const struct option o[] = {{"agents", 1, 0, 'n'},
	                                  {"seed", 1, 0, 's'},
	                                  {"max-wait", 1, 0, 'w'},
	                                  {"sockets", 1, 0, 'S'},
	                                  {"hello-only", 0, 0, 'H'},
	                                  {"window", 1, 0, 'W'},
	                                  {0, 0, 0, 0}};
	long n = 0, wait_ms = 60000, n_socks = 1, window = 64;
	const char *seed = NULL;
	struct flooder *fs;
	nng_socket *socks;
	char err[FL_ERRBUF_SIZE] = "";
	int c;

	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (c == 'n')
			n = num(optarg, "--agents");
		else if (c == 's')
			seed = optarg;
		else if (c == 'w')
			wait_ms = num(optarg, "--max-wait");
		else if (c == 'S')
			n_socks = num(optarg, "--sockets");
		else if (c == 'H')
			flood_hello_only = true;
		else if (c == 'W')
			window = num(optarg, "--window");
		else
			die_usage("flood: bad option");
	}
	if (n <= 0 || seed == NULL || g.url == NULL || g.n_coord == 0)
		die_usage("flood: --agents, --seed, --url and --coordinator-key are needed");
	fs = fl_calloc((size_t)n, sizeof(*fs));
	/* Seal everything first, each agent with an identity of its own. */
	for (long i = 0; i < n; i++) {
		Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT;
		Flotilla__V1__Hello h = FLOTILLA__V1__HELLO__INIT;
		Flotilla__V1__Poll p = FLOTILLA__V1__POLL__INIT;
		struct fl_buf packed = FL_BUF_INIT;
		struct fl_identity *id;
		struct fl_peers *peers;
		struct fl_envelope *ep;
		uint8_t s[32];

		flood_seed(seed, i, s);
		id = fl_identity_new_from_seed(s);
		if (id == NULL || fl_peers_new(id, NULL, 0, 0, &peers, err) != FL_OK ||
		    fl_peers_add(peers, g.coord[0], FL_PEER_COORDINATOR, "coordinator", err) !=
		        FL_OK)
			die(EXIT_FAIL, "flood: %s", err);
		ep = fl_envelope_new(id, peers);
		h.agent_id = "flood";
		h.agent_version = FL_VERSION;
		h.protocol_version = FL_PROTOCOL_VERSION;
		h.project_id = "acme";
		m.body_case = FLOTILLA__V1__MESSAGE__BODY_HELLO;
		m.hello = &h;
		if (fl_wire_pack(&m, &packed, FL_WIRE_MAX_SMALL, err) != FL_OK ||
		    fl_envelope_seal(ep, g.coord[0], packed.data, packed.len, &fs[i].hello, err) !=
		        FL_OK)
			die(EXIT_FAIL, "flood: %s", err);
		fl_buf_reset(&packed);
		p.agent_id = "flood";
		p.max_wait_ms = (uint32_t)wait_ms;
		m.body_case = FLOTILLA__V1__MESSAGE__BODY_POLL;
		m.poll = &p;
		if (fl_wire_pack(&m, &packed, FL_WIRE_MAX_SMALL, err) != FL_OK ||
		    fl_envelope_seal(ep, g.coord[0], packed.data, packed.len, &fs[i].poll, err) !=
		        FL_OK)
			die(EXIT_FAIL, "flood: %s", err);
		fl_buf_fini(&packed);
		fl_envelope_free(ep);
		fl_peers_free(peers);
		fl_identity_free(id);
	}
	if (n_socks < 1 || n_socks > n)
		die_usage("flood: --sockets: 1 to --agents");
	socks = fl_calloc((size_t)n_socks, sizeof(*socks));
	for (long k = 0; k < n_socks; k++)
		if (nng_req0_open(&socks[k]) != 0 ||
		    nng_socket_set_ms(socks[k], NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE) !=
		        0 ||
		    nng_dial(socks[k], g.url, NULL, 0) != 0)
			die(EXIT_UNREACHABLE, "flood: cannot dial '%s'", g.url);
	atomic_init(&flood_held, 0);
	atomic_init(&flood_answered, 0);
	atomic_init(&flood_failed, 0);
	atomic_init(&flood_next, window < n ? window : n);
	flood_all = fs;
	flood_socks = socks;
	flood_n = n;
	flood_n_socks = n_socks;
	flood_wait_ms = wait_ms;
	for (long i = 0; i < (window < n ? window : n); i++)
		flood_start(i);
	while (atomic_load(&flood_held) + atomic_load(&flood_failed) < n)
		nng_msleep(10);
	printf("held %ld\n", atomic_load(&flood_held));
	fflush(stdout);
	while (atomic_load(&flood_answered) + atomic_load(&flood_failed) < n)
		nng_msleep(10);
	printf("answered %ld failed %ld\n", atomic_load(&flood_answered),
	       atomic_load(&flood_failed));
	for (long i = 0; i < n; i++) {
		if (fs[i].aio == NULL)
			continue;
		nng_aio_stop(fs[i].aio);
		nng_aio_free(fs[i].aio);
		fl_buf_fini(&fs[i].hello);
		fl_buf_fini(&fs[i].poll);
	}
	for (long k = 0; k < n_socks; k++)
		nng_close(socks[k]);
	free(socks);
	free(fs);
	return atomic_load(&flood_failed) ? EXIT_FAIL : EXIT_YES;
}

static int cmd_make_release(int argc, char **argv)
{
	static const struct option o[] = {{"dir", 1, 0, 'd'},      {"project", 1, 0, 'p'},
	                                  {"sequence", 1, 0, 's'}, {"key", 1, 0, 'k'},
	                                  {"out", 1, 0, 'o'},      {0, 0, 0, 0}};
	const char *dir = NULL, *project = NULL, *out = NULL, *keys[8];
	struct fl_buf file = FL_BUF_INIT, signed_ = FL_BUF_INIT;
	struct fl_migration_set set;
	char err[FL_ERRBUF_SIZE] = "", hash[FL_RELEASE_HASH_HEX_LEN + 1];
	long sequence = -1;
	int n_keys = 0, c;

	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'p':
			project = optarg;
			break;
		case 's':
			sequence = num(optarg, "--sequence");
			break;
		case 'k':
			if (n_keys == 8)
				die_usage("at most 8 keys");
			keys[n_keys++] = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			die_usage("make-release: bad option");
		}
	}
	if (dir == NULL || project == NULL || sequence < 0 || out == NULL)
		die_usage("make-release: --dir, --project, --sequence and --out are needed");
	if (fl_migration_set_load(dir, &set, err) != FL_OK ||
	    fl_release_build(&set, project, (uint64_t)sequence, &file, hash, err) != FL_OK)
		die(EXIT_FAIL, "%s", err);
	fl_migration_set_fini(&set);
	for (int i = 0; i < n_keys; i++) {
		struct fl_key k;

		if (fl_key_file_load(keys[i], FL_KEY_RELEASE, &k, err) != FL_OK ||
		    fl_release_sign(file.data, file.len, &k, &signed_, err) != FL_OK)
			die(EXIT_FAIL, "%s", err);
		fl_key_fini(&k);
		fl_buf_reset(&file);
		if (fl_buf_append(&file, signed_.data, signed_.len) != FL_OK)
			die(EXIT_FAIL, "out of memory");
	}
	if (fl_release_file_write(out, file.data, file.len, err) != FL_OK)
		die(EXIT_FAIL, "%s", err);
	printf("%s\n", hash);
	fl_buf_fini(&file);
	fl_buf_fini(&signed_);
	return 0;
}

static int cmd_store_assign(int argc, char **argv)
{
	static const struct option o[] = {{"rollout", 1, 0, 'r'},
	                                  {"release", 1, 0, 'R'},
	                                  {"tenant", 1, 0, 't'},
	                                  {"agent-key", 1, 0, 'a'},
	                                  {"kind", 1, 0, 'k'},
	                                  {"target", 1, 0, 'T'},
	                                  {0, 0, 0, 0}};
	static const char ROLLOUT[] =
	    "INSERT INTO rollouts (id, created_seq, order_hash, signed_order, release_hash,"
	    " project_id, target_migration_id, state, created_at, updated_at, created_by,"
	    " signed_by, expires_at) SELECT ?1, coalesce(max(created_seq), 0) + 1,"
	    " randomblob(32), x'00', ?2, 'test', ?3, 2, 1, 1, 'fl-testclient', 'fl-testclient',"
	    " 4102444800000 FROM rollouts WHERE NOT EXISTS (SELECT 1 FROM rollouts WHERE id = ?1)";
	struct fl_store_assignment a = {0};
	struct fl_store *st;
	sqlite3_stmt *s;
	char err[FL_ERRBUF_SIZE] = "";
	const char *release = NULL;
	uint8_t hash[32];
	int c;

	a.kind = FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
	a.target_migration_id = "";
	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'r':
			a.rollout_id = optarg;
			break;
		case 'R':
			release = optarg;
			break;
		case 't':
			a.tenant_id = optarg;
			break;
		case 'a':
			if (fl_key_public_parse(optarg, a.agent_pk, err) != FL_OK)
				die_usage("--agent-key: %s", err);
			break;
		case 'k':
			a.kind = strcmp(optarg, "revert") == 0
			             ? FLOTILLA__V1__WORK_KIND__WORK_KIND_REVERT
			         : strcmp(optarg, "check") == 0
			             ? FLOTILLA__V1__WORK_KIND__WORK_KIND_CHECK
			             : FLOTILLA__V1__WORK_KIND__WORK_KIND_APPLY;
			break;
		case 'T':
			a.target_migration_id = optarg;
			break;
		default:
			die_usage("store-assign: bad option");
		}
	}
	if (optind + 1 != argc || a.rollout_id == NULL || release == NULL ||
	    !hex32(release, hash) || a.tenant_id == NULL)
		die_usage(
		    "store-assign STORE: --rollout, --release HASH, --tenant and --agent-key are "
		    "needed");
	if (fl_store_open(argv[optind], &st, NULL, err) != FL_OK)
		die(EXIT_FAIL, "%s", err);
	if (fl_store_begin(st, err) != FL_OK ||
	    (s = fl_store_sqlite_prep(st, ROLLOUT, err)) == NULL)
		die(EXIT_FAIL, "%s", err);
	fl_store_sqlite_bind_text(s, 1, a.rollout_id);
	fl_store_sqlite_bind_blob(s, 2, hash, 32);
	fl_store_sqlite_bind_text(s, 3, a.target_migration_id);
	a.issued_at_ms = fl_wallclock_us(NULL) / 1000;
	if (fl_store_sqlite_done(st, s, "add the rollout", err) != FL_OK ||
	    fl_store_assignment_next_id(st, &a.id, err) != FL_OK ||
	    fl_store_assignment_add(st, &a, err) != FL_OK || fl_store_commit(st, err) != FL_OK)
		die(EXIT_FAIL, "%s", err);
	fl_store_close(st);
	printf("%llu\n", (unsigned long long)a.id);
	return 0;
}

static int cmd_pubkey(int argc, char **argv)
{
	enum fl_key_kind kind;
	struct fl_key k;
	char err[FL_ERRBUF_SIZE], pk[FL_KEY_PUBLIC_TEXT_LEN + 1];

	if (argc != 3)
		die_usage("pubkey FILE KIND");
	if (fl_key_kind_parse(argv[2], &kind, err) != FL_OK ||
	    fl_key_file_load(argv[1], kind, &k, err) != FL_OK)
		die(EXIT_USAGE, "%s", err);
	fl_key_public_text(k.pk, pk);
	fl_key_fini(&k);
	printf("%s\n", pk);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option o[] = {{"url", 1, 0, 'u'},        {"key", 1, 0, 'k'},
	                                  {"key-kind", 1, 0, 'K'},   {"coordinator-key", 1, 0, 'c'},
	                                  {"timeout", 1, 0, 't'},    {"json", 0, 0, 'j'},
	                                  {"send-twice", 0, 0, '2'}, {"times", 1, 0, 'n'},
	                                  {"threads", 1, 0, 'T'},    {0, 0, 0, 0}};
	char err[FL_ERRBUF_SIZE];
	const char *cmd;
	int c;

	if (sodium_init() < 0)
		die(EXIT_FAIL, "cannot initialise libsodium");
	fl_arena_init(&mem);
	atexit(free_mem);
	fl_log_set_level(FL_LOG_ERROR);
	while ((c = getopt_long(argc, argv, "+", o, NULL)) != -1) {
		switch (c) {
		case 'u':
			g.url = optarg;
			break;
		case 'k':
			g.key_file = optarg;
			break;
		case 'K':
			g.key_kind = optarg;
			break;
		case 'c':
			if (g.n_coord == FL_CLIENT_MAX_KEYS ||
			    fl_key_public_parse(optarg, g.coord[g.n_coord], err) != FL_OK)
				die_usage("--coordinator-key: %s", err);
			g.n_coord++;
			break;
		case 't':
			g.timeout_ms = num(optarg, "--timeout");
			break;
		case 'j':
			g.json = true;
			break;
		case '2':
			g.send_twice = true;
			break;
		case 'n':
			g.times = num(optarg, "--times");
			break;
		case 'T':
			g.threads = (int)num(optarg, "--threads");
			if (g.threads < 1 || g.threads > 64)
				die_usage("--threads: 1 to 64");
			break;
		default:
			die_usage("bad option");
		}
	}
	if (optind >= argc)
		die_usage("no command");
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 0; /* GNU getopt: start over, in its default (permuting) mode */
	if (strcmp(cmd, "hello") == 0)
		return cmd_hello(argc, argv);
	if (strcmp(cmd, "poll") == 0)
		return cmd_poll(argc, argv);
	if (strcmp(cmd, "report") == 0)
		return cmd_report(argc, argv);
	if (strcmp(cmd, "fetch") == 0)
		return cmd_fetch(argc, argv);
	if (strcmp(cmd, "pubkey") == 0)
		return cmd_pubkey(argc, argv);
	if (strcmp(cmd, "flood-keys") == 0)
		return cmd_flood_keys(argc, argv);
	if (strcmp(cmd, "flood") == 0)
		return cmd_flood(argc, argv);
	if (strcmp(cmd, "make-release") == 0)
		return cmd_make_release(argc, argv);
	if (strcmp(cmd, "store-assign") == 0)
		return cmd_store_assign(argc, argv);
	return cmd_admin(cmd, argc, argv);
}
