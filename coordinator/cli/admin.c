/*
 * The operator's connection to the coordinator (admin.h): options, the
 * operator key, one request at a time through proto/client.h, and the one
 * place where the coordinator's answers become messages and exit codes.
 */
#define _DEFAULT_SOURCE /* timegm */
#include "admin.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "duration.h"
#include "envelope.h"
#include "identity.h"
#include "mem.h"
#include "peers.h"
#include "roles.h"
#include "wire.h"

/* call() flags */
#define QUIET_NOT_FOUND 1u /* NOT_FOUND: no message, CLI_NOT_FOUND */
#define QUIET_CONNECT   2u /* unreachable, timed out, unavailable: errbuf, CLI_CONNECT */

void cli_admin_init(struct cli_admin *a, const char *what)
{
	const char *url = getenv("FLOTILLA_COORDINATOR");
	const char *key = getenv("FLOTILLA_KEY");

	memset(a, 0, sizeof(*a));
	a->url = url != NULL && *url != '\0' ? url : CLI_ADMIN_DEFAULT_URL;
	a->key_file = key != NULL && *key != '\0' ? key : NULL;
	a->timeout_ms = CLI_ADMIN_TIMEOUT_MS;
	a->what = what;
}

static int add_key(struct cli_admin *a, struct cli *c, const char *where, const char *text,
                   size_t len)
{
	char errbuf[FL_ERRBUF_SIZE], one[FL_KEY_PUBLIC_TEXT_LEN + 8];

	if (a->n_keys == FL_CLIENT_MAX_KEYS)
		return cli_usage_error(c, "%s: at most %d coordinator keys", where,
		                       FL_CLIENT_MAX_KEYS);
	if (len >= sizeof(one))
		len = sizeof(one) - 1; /* and the parse says it is no key */
	memcpy(one, text, len);
	one[len] = '\0';
	if (fl_key_public_parse(one, a->keys[a->n_keys], errbuf) != FL_OK)
		return cli_usage_error(c, "%s: %s", where, errbuf);
	a->n_keys++;
	return CLI_OK;
}

/* Every key of a list separated by commas or spaces (the flag and the
 * environment variable take the same). */
static int add_keys(struct cli_admin *a, struct cli *c, const char *where, const char *s)
{
	int code;

	while (*s != '\0') {
		size_t len = strcspn(s, ", ");

		if (len > 0 && (code = add_key(a, c, where, s, len)) != CLI_OK)
			return code;
		s += len;
		s += strspn(s, ", ");
	}
	return CLI_OK;
}

int cli_admin_option(struct cli_admin *a, struct cli *c, int opt, const char *arg)
{
	char errbuf[FL_ERRBUF_SIZE];
	int64_t ms;

	switch (opt) {
	case OPT_COORDINATOR:
		if (*arg == '\0')
			return cli_usage_error(c, "--coordinator: empty URL");
		a->url = arg;
		return CLI_OK;
	case OPT_COORDINATOR_KEY:
		a->keys_from_options = true;
		return add_keys(a, c, "--coordinator-key", arg);
	case OPT_OPERATOR_KEY:
		a->key_file = arg;
		return CLI_OK;
	case OPT_ADMIN_TIMEOUT:
		if (fl_duration_parse(arg, &ms, errbuf) != FL_OK ||
		    fl_duration_check_range("timeout", ms, 100, 24 * INT64_C(3600000), errbuf) !=
		        FL_OK)
			return cli_usage_error(c, "--timeout: %s", errbuf);
		a->timeout_ms = ms;
		return CLI_OK;
	}
	return -1;
}

static int env_keys(struct cli_admin *a, struct cli *c)
{
	const char *s = getenv("FLOTILLA_COORDINATOR_KEY");

	if (a->keys_from_options || s == NULL)
		return CLI_OK;
	return add_keys(a, c, "FLOTILLA_COORDINATOR_KEY", s);
}

int cli_admin_connect(struct cli_admin *a, struct cli *c)
{
	char errbuf[FL_ERRBUF_SIZE] = "", name[32];
	int64_t deadline, wait;
	enum fl_err rv;
	int code;

	if ((code = env_keys(a, c)) != CLI_OK)
		return code;
	if (a->n_keys == 0)
		return cli_usage_error(c,
		                       "no coordinator key: pass --coordinator-key B64 or set "
		                       "FLOTILLA_COORDINATOR_KEY (the coordinator's public key)");
	if (a->key_file == NULL)
		return cli_usage_error(c, "no operator key: pass --key FILE or set FLOTILLA_KEY "
		                          "(make one with 'flotilla keygen --kind operator')");
	if ((rv = fl_key_file_load(a->key_file, FL_KEY_OPERATOR, &a->key, errbuf)) != FL_OK) {
		fprintf(stderr, "flotilla: error: %s\n", errbuf);
		return CLI_ERROR;
	}
	a->id = fl_identity_new_from_seed(a->key.seed);
	if (a->id == NULL) {
		fprintf(stderr, "flotilla: error: cannot initialise libsodium\n");
		return CLI_ERROR;
	}
	if ((rv = fl_peers_new(a->id, NULL, FL_CLIENT_MAX_KEYS, 0, &a->peers, errbuf)) != FL_OK)
		return cli_fail(rv, errbuf);
	for (size_t i = 0; i < a->n_keys; i++) {
		snprintf(name, sizeof(name), i == 0 ? "coordinator" : "coordinator-%zu", i + 1);
		if ((rv = fl_peers_add(a->peers, a->keys[i], FL_PEER_COORDINATOR, name, errbuf)) !=
		    FL_OK) {
			fprintf(stderr, "flotilla: error: coordinator key %zu: %s\n", i + 1,
			        errbuf);
			return CLI_USAGE;
		}
	}
	a->ep = fl_envelope_new(a->id, a->peers);
	if ((rv = fl_client_new(a->ep, a->url, (const uint8_t(*)[FL_PEER_KEY_LEN])a->keys,
	                        a->n_keys, &a->client, errbuf)) != FL_OK) {
		fprintf(stderr, "flotilla: error: %s\n", errbuf);
		return rv == FL_EINVAL ? CLI_USAGE : CLI_CONNECT;
	}
	/* nng dials in the background and keeps trying: a coordinator that is
	 * not there would only show as a request timing out. Say so sooner. */
	wait =
	    a->timeout_ms < CLI_ADMIN_CONNECT_WAIT_MS ? a->timeout_ms : CLI_ADMIN_CONNECT_WAIT_MS;
	deadline = fl_now_ms() + wait;
	while (!fl_client_connected(a->client)) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		if (fl_now_ms() >= deadline) {
			char d[32];

			fl_duration_format(wait, d, sizeof(d));
			fprintf(
			    stderr,
			    "flotilla: error: cannot reach the coordinator at '%s' (no connection "
			    "within %s): is it running, and is this its admin endpoint?\n",
			    a->url, d);
			return CLI_CONNECT;
		}
		nanosleep(&ts, NULL);
	}
	return CLI_OK;
}

void cli_admin_fini(struct cli_admin *a)
{
	fl_client_free(a->client);
	fl_envelope_free(a->ep);
	fl_peers_free(a->peers);
	fl_identity_free(a->id);
	fl_key_fini(&a->key);
	a->client = NULL;
	a->ep = NULL;
	a->peers = NULL;
	a->id = NULL;
}

/* "release-manager or admin": the roles the table lets run the command. */
static void roles_for(int command, char *out, size_t n)
{
	static const enum fl_peer_role roles[] = {FL_PEER_VIEWER, FL_PEER_RELEASE_MANAGER,
	                                          FL_PEER_ADMIN};
	const char *names[3];
	size_t k = 0;

	for (size_t i = 0; i < 3; i++)
		if (fl_roles_may_run(roles[i], command))
			names[k++] = fl_peer_role_name(roles[i]);
	if (k == 0)
		snprintf(out, n, "no operator role");
	else if (k == 1)
		snprintf(out, n, "the %s role", names[0]);
	else if (k == 2)
		snprintf(out, n, "the %s or %s role", names[0], names[1]);
	else
		snprintf(out, n, "the %s, %s or %s role", names[0], names[1], names[2]);
}

/* One line on stderr for a status the coordinator answered; the exit code. */
static int status_fail(struct cli_admin *a, int command, const Flotilla__V1__Status *st,
                       unsigned flags, char *errbuf)
{
	const char *msg = st != NULL && st->message != NULL && *st->message != '\0'
	                      ? st->message
	                      : "(no reason given)";
	char roles[96], q[512];
	int code = st != NULL ? (int)st->code : 0;

	fl_err_quote(q, sizeof(q), msg, strlen(msg));
	switch (code) {
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_NOT_FOUND:
		if (flags & QUIET_NOT_FOUND)
			return CLI_NOT_FOUND;
		fprintf(stderr, "flotilla: error: %s: not found: %s\n", a->what, q);
		return CLI_NOT_FOUND;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED:
		roles_for(command, roles, sizeof(roles));
		fprintf(
		    stderr,
		    "flotilla: error: %s: permission denied: %s ('%s' needs %s; this operator key "
		    "is %s)\n",
		    a->what, q, a->what, roles, fl_identity_key_id(a->id));
		return CLI_DENIED;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_FAILED_PRECONDITION:
		fprintf(stderr, "flotilla: error: %s: failed precondition: %s\n", a->what, q);
		return CLI_CONFLICT;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_ALREADY_EXISTS:
		fprintf(stderr, "flotilla: error: %s: already exists: %s\n", a->what, q);
		return CLI_CONFLICT;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_ABORTED:
		fprintf(stderr,
		        "flotilla: error: %s: aborted (changed meanwhile): %s; read it again and "
		        "retry\n",
		        a->what, q);
		return CLI_CONFLICT;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT:
		fprintf(stderr, "flotilla: error: %s: invalid request: %s\n", a->what, q);
		return CLI_USAGE;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNAVAILABLE:
		if (flags & QUIET_CONNECT) {
			fl_errf(errbuf, FL_ECONNECT, "the coordinator is unavailable: %s", q);
			return CLI_CONNECT;
		}
		fprintf(stderr, "flotilla: error: %s: the coordinator is unavailable: %s\n",
		        a->what, q);
		return CLI_CONNECT;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_RESOURCE_EXHAUSTED:
		fprintf(stderr, "flotilla: error: %s: over a limit: %s\n", a->what, q);
		return CLI_ERROR;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNIMPLEMENTED:
		fprintf(stderr, "flotilla: error: %s: the coordinator does not implement it: %s\n",
		        a->what, q);
		return CLI_ERROR;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INTERNAL:
		fprintf(stderr,
		        "flotilla: error: %s: the coordinator failed: %s (its log says more)\n",
		        a->what, q);
		return CLI_ERROR;
	default:
		fprintf(stderr, "flotilla: error: %s: the coordinator answered status %d: %s\n",
		        a->what, code, q);
		return CLI_ERROR;
	}
}

static int call(struct cli_admin *a, Flotilla__V1__AdminRequest *req, unsigned flags,
                Flotilla__V1__Message **reply, Flotilla__V1__AdminResponse **resp, char *errbuf)
{
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *r = NULL;
	Flotilla__V1__AdminResponse *ar;
	size_t max;
	enum fl_err rv;
	int code;

	*reply = NULL;
	*resp = NULL;
	errbuf[0] = '\0';
	req->request_id = ++a->request_id;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST;
	m.admin_request = req;
	max = fl_roles_max_size(FL_PEER_ADMIN, m.body_case, req->command_case);
	if (max == 0)
		max = FL_WIRE_MAX_SMALL;
	rv = fl_client_call(a->client, &m, max, FL_CLIENT_REFUSAL, a->timeout_ms, &r, errbuf);
	switch (rv) {
	case FL_OK:
		break;
	case FL_ECONNECT:
		if (flags & QUIET_CONNECT)
			return CLI_CONNECT;
		fprintf(stderr, "flotilla: error: cannot reach the coordinator: %s\n", errbuf);
		return CLI_CONNECT;
	case FL_EIO:
		/* nng's own errors: a connection reset or closed while the request
		 * was out (the coordinator stopped or crashed). */
		if (flags & QUIET_CONNECT)
			return CLI_CONNECT;
		fprintf(stderr,
		        "flotilla: error: %s: lost the connection to the coordinator (%s): it may "
		        "have been carried out or not; look before trying again\n",
		        a->what, errbuf);
		return CLI_CONNECT;
	case FL_ETIMEDOUT:
		if (flags & QUIET_CONNECT)
			return CLI_CONNECT;
		fprintf(stderr,
		        "flotilla: error: %s: %s: it may have been carried out or not; look before "
		        "trying again\n",
		        a->what, errbuf);
		return CLI_CONNECT;
	case FL_EREFUSED:
		/* the coordinator could not open our envelope (unknown or revoked
		 * key, or we pinned a key that is not the coordinator's) */
		fprintf(stderr,
		        "flotilla: error: the coordinator at '%s' refused this key (operator "
		        "key %s): is it approved with a role? (and is --coordinator-key the "
		        "coordinator's public key?)\n",
		        a->url, fl_identity_key_id(a->id));
		return CLI_CONNECT;
	case FL_EAUTH:
		fprintf(stderr, "flotilla: error: cannot trust the reply: %s\n", errbuf);
		return CLI_CONNECT;
	default:
		fprintf(stderr, "flotilla: error: %s: %s\n", a->what, errbuf);
		return rv == FL_EINVAL ? CLI_USAGE : CLI_ERROR;
	}
	if (r->body_case == FLOTILLA__V1__MESSAGE__BODY_ERROR) {
		code = status_fail(a, req->command_case, r->error, flags, errbuf);
		fl_wire_free(r);
		return code;
	}
	if (r->body_case != FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE) {
		fprintf(stderr, "flotilla: error: %s: the coordinator answered with '%s'\n",
		        a->what, fl_wire_body_name(r->body_case));
		fl_wire_free(r);
		return CLI_ERROR;
	}
	ar = r->admin_response;
	if (ar->request_id != req->request_id) {
		fprintf(stderr, "flotilla: error: %s: the reply answers request %llu, not %llu\n",
		        a->what, (unsigned long long)ar->request_id,
		        (unsigned long long)req->request_id);
		fl_wire_free(r);
		return CLI_ERROR;
	}
	if (ar->status == NULL || ar->status->code != FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK) {
		code = status_fail(a, req->command_case, ar->status, flags, errbuf);
		fl_wire_free(r);
		return code;
	}
	if ((int)ar->result_case != (int)req->command_case) {
		fprintf(stderr, "flotilla: error: %s: the coordinator answered OK with %s\n",
		        a->what,
		        ar->result_case == FLOTILLA__V1__ADMIN_RESPONSE__RESULT__NOT_SET
		            ? "no result"
		            : fl_wire_admin_command_name(ar->result_case));
		fl_wire_free(r);
		return CLI_ERROR;
	}
	*reply = r;
	*resp = ar;
	return CLI_OK;
}

int cli_admin_call(struct cli_admin *a, Flotilla__V1__AdminRequest *req, bool quiet_not_found,
                   Flotilla__V1__Message **reply, Flotilla__V1__AdminResponse **resp)
{
	char errbuf[FL_ERRBUF_SIZE];

	return call(a, req, quiet_not_found ? QUIET_NOT_FOUND : 0, reply, resp, errbuf);
}

int cli_admin_call_retryable(struct cli_admin *a, Flotilla__V1__AdminRequest *req,
                             Flotilla__V1__Message **reply, Flotilla__V1__AdminResponse **resp,
                             char *errbuf)
{
	return call(a, req, QUIET_CONNECT, reply, resp, errbuf);
}

/* ---- showing things ---- */

const char *cli_enum_name(const ProtobufCEnumDescriptor *d, int value, char *buf, size_t n)
{
	return jr_enum(d, value, buf, n);
}

enum fl_err cli_enum_parse(const ProtobufCEnumDescriptor *d, const char *name, int *value)
{
	char buf[CLI_ENUM_NAME_MAX];

	for (unsigned i = 0; i < d->n_values; i++) {
		if (d->values[i].value == 0)
			continue;
		cli_enum_name(d, d->values[i].value, buf, sizeof(buf));
		if (strcmp(buf, name) == 0) {
			*value = d->values[i].value;
			return FL_OK;
		}
	}
	return FL_EINVAL;
}

const char *cli_time(int64_t at_ms, char *buf, size_t n)
{
	time_t t = (time_t)(at_ms / 1000);
	struct tm tm;

	if (at_ms <= 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "-");
	return buf;
}

const char *cli_ago(int64_t at_ms, int64_t now_ms, char *buf, size_t n)
{
	int64_t d = now_ms - at_ms, a;
	char dur[32];

	if (at_ms <= 0) {
		snprintf(buf, n, "never");
		return buf;
	}
	a = d < 0 ? -d : d;
	if (a >= 3600000)
		a -= a % 60000; /* hours and minutes are enough */
	else
		a -= a % 1000;
	if (a == 0) {
		snprintf(buf, n, "just now");
		return buf;
	}
	fl_duration_format(a, dur, sizeof(dur));
	snprintf(buf, n, d >= 0 ? "%s ago" : "in %s", dur);
	return buf;
}

enum fl_err cli_duration_days(const char *text, int64_t *ms, char *errbuf)
{
	const int64_t day = INT64_C(86400000);
	const char *p = text;
	int64_t days = 0, rest = 0;

	while (*p >= '0' && *p <= '9')
		p++;
	if (p > text && *p == 'd') {
		for (const char *q = text; q < p; q++) {
			if (days > (INT64_MAX / day - (*q - '0')) / 10)
				return fl_errf(errbuf, FL_EPARSE,
				               "invalid duration '%.32s': too large", text);
			days = days * 10 + (*q - '0');
		}
		p++;
		if (*p != '\0' && fl_duration_parse(p, &rest, errbuf) != FL_OK)
			return fl_errf(errbuf, FL_EPARSE,
			               "invalid duration '%.32s': expected e.g. 7d, 1d12h, 90m",
			               text);
		if (rest > INT64_MAX - days * day)
			return fl_errf(errbuf, FL_EPARSE, "invalid duration '%.32s': too large",
			               text);
		*ms = days * day + rest;
		return FL_OK;
	}
	if (fl_duration_parse(text, ms, errbuf) != FL_OK)
		return fl_errf(errbuf, FL_EPARSE,
		               "invalid duration '%.32s': expected e.g. 7d, 1d12h, 90m, 30s", text);
	return FL_OK;
}

enum fl_err cli_since(const char *text, int64_t now_ms, int64_t *at_ms, char *errbuf)
{
	int y, mo, d, h = 0, mi = 0, s = 0, used = 0;
	struct tm tm;
	int64_t back;

	if (strlen(text) >= 10 && text[4] == '-') {
		if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3)
			goto bad_date;
		if (text[used] == 'T' || text[used] == ' ') {
			int more = 0;

			if (sscanf(text + used + 1, "%2d:%2d:%2d%n", &h, &mi, &s, &more) != 3)
				goto bad_date;
			used += 1 + more;
			if (text[used] == 'Z')
				used++;
		}
		if (text[used] != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
		    mi > 59 || s > 60 || y < 1970)
			goto bad_date;
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = y - 1900;
		tm.tm_mon = mo - 1;
		tm.tm_mday = d;
		tm.tm_hour = h;
		tm.tm_min = mi;
		tm.tm_sec = s;
		*at_ms = (int64_t)timegm(&tm) * 1000;
		return FL_OK;
	}
	if (cli_duration_days(text, &back, errbuf) != FL_OK)
		return fl_errf(errbuf, FL_EPARSE,
		               "'%.32s': expected a duration back from now (1h, 7d) or a UTC date "
		               "(2025-11-24, 2025-11-24T12:00:00Z)",
		               text);
	*at_ms = now_ms - back;
	return FL_OK;
bad_date:
	return fl_errf(errbuf, FL_EPARSE,
	               "'%.32s': expected a UTC date such as 2025-11-24 or 2025-11-24T12:00:00Z",
	               text);
}

const char *cli_short_hash(const ProtobufCBinaryData *h, char *buf, size_t n)
{
	size_t k = 0;

	if (h == NULL || h->len == 0) {
		snprintf(buf, n, "-");
		return buf;
	}
	for (size_t i = 0; i < h->len && i < 6 && k + 2 < n; i++, k += 2)
		snprintf(buf + k, n - k, "%02x", h->data[i]);
	return buf;
}

const char *cli_key_id(const ProtobufCBinaryData *pk, char buf[FL_KEY_ID_LEN + 1])
{
	if (pk == NULL || pk->len != FL_KEY_PUBLIC_BYTES) {
		snprintf(buf, FL_KEY_ID_LEN + 1, "-");
		return buf;
	}
	fl_key_id(pk->data, buf);
	return buf;
}

int cli_labels_add(struct cli *c, struct cli_labels *l, const char *option, const char *text)
{
	char errbuf[FL_ERRBUF_SIZE];
	struct fl_labels one;

	if (fl_labels_parse(text, &one, errbuf) != FL_OK)
		return cli_usage_error(c, "%s: %s", option, errbuf);
	for (size_t i = 0; i < one.n; i++) {
		const char *had = fl_labels_get(&l->set, one.items[i].key);

		if (had != NULL && strcmp(had, one.items[i].value) != 0) {
			fl_labels_fini(&one);
			return cli_usage_error(c, "%s: label '%s' given twice ('%s' and '%s')",
			                       option, one.items[i].key, had, one.items[i].value);
		}
		if (fl_labels_set(&l->set, one.items[i].key, one.items[i].value, errbuf) != FL_OK) {
			fl_labels_fini(&one);
			return cli_usage_error(c, "%s: %s", option, errbuf);
		}
	}
	fl_labels_fini(&one);
	return CLI_OK;
}

void cli_labels_seal(struct cli_labels *l)
{
	free(l->items);
	free(l->ptrs);
	l->n = l->set.n;
	l->items = fl_calloc(l->n + 1, sizeof(*l->items));
	l->ptrs = fl_calloc(l->n + 1, sizeof(*l->ptrs));
	for (size_t i = 0; i < l->n; i++) {
		flotilla__v1__label__init(&l->items[i]);
		l->items[i].key = l->set.items[i].key;
		l->items[i].value = l->set.items[i].value;
		l->ptrs[i] = &l->items[i];
	}
}

void cli_labels_fini(struct cli_labels *l)
{
	free(l->items);
	free(l->ptrs);
	fl_labels_fini(&l->set);
	memset(l, 0, sizeof(*l));
}

const char *cli_labels_text(Flotilla__V1__Label *const *labels, size_t n, char *buf, size_t len)
{
	size_t k = 0;

	if (n == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < n && k < len; i++) {
		int w = snprintf(buf + k, len - k, "%s%s=%s", i ? "," : "", labels[i]->key,
		                 labels[i]->value);

		if (w < 0)
			break;
		k += (size_t)w;
	}
	if (k >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
	return buf;
}

void cli_labels_json(struct jw *w, const char *key, Flotilla__V1__Label *const *labels, size_t n)
{
	jr_labels(w, key, labels, n);
}

bool cli_tty(void)
{
	const char *term = getenv("TERM");

	return isatty(STDOUT_FILENO) && (term == NULL || strcmp(term, "dumb") != 0);
}

bool cli_color(void)
{
	const char *no = getenv("NO_COLOR");

	return cli_tty() && (no == NULL || *no == '\0');
}

void cli_tenant_json(struct jw *w, const char *key, const Flotilla__V1__TenantStatus *t)
{
	jr_tenant(w, key, t);
}
