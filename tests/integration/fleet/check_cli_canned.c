/*
 * The `flotilla` fleet commands against a canned admin endpoint: a REP
 * socket in this process, speaking real envelopes with a real coordinator
 * key, that answers each request from the test's script and keeps every
 * request for assertions. The real binary runs as a child process.
 *
 * What this pins down, apart from any coordinator: how each command builds
 * its request (signed orders that verify under the release key, selectors,
 * pages), how it prints answers (text and valid JSON), and which exit code
 * each kind of answer gives (README "Exit codes"). The fleet tests
 * (tests/integration/fleet/test_*.sh) run the same commands end to end.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "envelope.h"
#include "identity.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "order.h"
#include "peers.h"
#include "release.h"
#include "rpc.h"
#include "testutil.h"
#include "wire.h"

extern char **environ;

#define MAX_REQUESTS 64

typedef void (*handler_fn)(const Flotilla__V1__AdminRequest *req, int n,
                           Flotilla__V1__AdminResponse *resp);

static char tmp[1024], op_key[1200], stranger_key[1200], release_key[1200];
static struct fl_key coord, op, rel, stranger;
static char coord_pub[FL_KEY_PUBLIC_TEXT_LEN + 1];
static struct fl_identity *coord_id;
static struct fl_peers *peers;
static struct fl_envelope *ep;
static nng_socket sock;
static pthread_t server;
static int port;
static char url[64];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static Flotilla__V1__Message *requests[MAX_REQUESTS]; /* under mu */
static int n_requests;
static handler_fn handler;
static int close_at = -1; /* the request the server answers by closing its socket instead */

/* Memory for canned responses, freed at teardown. */
static void **arena;
static size_t n_arena, cap_arena;

static void *A(size_t size)
{
	void *p = fl_calloc(1, size);

	arena = fl_grow(arena, &cap_arena, n_arena + 1, sizeof(*arena));
	arena[n_arena++] = p;
	return p;
}

static char *S(const char *s)
{
	char *p = A(strlen(s) + 1);

	memcpy(p, s, strlen(s) + 1);
	return p;
}

static void *dup_init(const void *init, size_t size)
{
	void *p = A(size);

	memcpy(p, init, size);
	return p;
}

/* A message initialised by its INIT macro, in the arena. */
#define NEW(type, init) ((type *)dup_init(&(type)init, sizeof(type)))

static void *serve(void *arg)
{
	struct fl_buf out = FL_BUF_INIT;
	struct fl_envelope_opened o;

	(void)arg;
	fl_envelope_opened_init(&o);
	for (;;) {
		Flotilla__V1__AdminResponse resp = FLOTILLA__V1__ADMIN_RESPONSE__INIT;
		Flotilla__V1__Message reply = FLOTILLA__V1__MESSAGE__INIT, *m = NULL;
		Flotilla__V1__Status ok = FLOTILLA__V1__STATUS__INIT;
		enum fl_envelope_reason reason;
		char err[FL_ERRBUF_SIZE];
		nng_msg *msg;
		int n;

		if (nng_recvmsg(sock, &msg, 0) != 0)
			break;
		if (fl_rpc_open_request(ep, nng_msg_body(msg), nng_msg_len(msg), 0, &o, &m, &reason,
		                        err) != FL_OK) {
			ck_assert_int_eq(fl_envelope_refusal(&out), FL_OK);
			goto send;
		}
		pthread_mutex_lock(&mu);
		n = n_requests;
		if (n_requests < MAX_REQUESTS)
			requests[n_requests++] = m;
		pthread_mutex_unlock(&mu);
		if (n == close_at) { /* the coordinator dies with the request in hand */
			nng_msg_free(msg);
			nng_close(sock);
			break;
		}
		ok.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
		resp.status = &ok;
		resp.request_id = m->admin_request->request_id;
		handler(m->admin_request, n, &resp);
		reply.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_RESPONSE;
		reply.admin_response = &resp;
		ck_assert_int_eq(fl_rpc_seal_reply(ep, o.sender.pk, o.seq, &reply, &out, err),
		                 FL_OK);
	send:
		nng_msg_clear(msg);
		ck_assert_int_eq(nng_msg_append(msg, out.data, out.len), 0);
		if (nng_sendmsg(sock, msg, 0) != 0)
			nng_msg_free(msg);
	}
	fl_envelope_opened_fini(&o);
	fl_buf_fini(&out);
	return NULL;
}

static void key_file(struct fl_key *k, enum fl_key_kind kind, char *path, size_t n,
                     const char *name)
{
	char err[FL_ERRBUF_SIZE];

	fl_key_generate(kind, NULL, k);
	fl_test_fmt(path, n, "%s/%s", tmp, name);
	ck_assert_msg(fl_key_file_write(path, k, err) == FL_OK, "%s", err);
}

static void setup(void)
{
	char err[FL_ERRBUF_SIZE] = "", cpath[1200];
	nng_listener l;

	fl_log_set_level(FL_LOG_ERROR);
	fl_test_tmp_root(tmp, sizeof(tmp), "fl-canned");
	key_file(&coord, FL_KEY_COORDINATOR, cpath, sizeof(cpath), "coordinator.key");
	key_file(&op, FL_KEY_OPERATOR, op_key, sizeof(op_key), "op.key");
	key_file(&stranger, FL_KEY_OPERATOR, stranger_key, sizeof(stranger_key), "stranger.key");
	key_file(&rel, FL_KEY_RELEASE, release_key, sizeof(release_key), "release.key");
	fl_key_public_text(coord.pk, coord_pub);
	coord_id = fl_identity_new_from_seed(coord.seed);
	ck_assert_int_eq(fl_peers_new(coord_id, NULL, 0, 0, &peers, err), FL_OK);
	ck_assert_int_eq(fl_peers_add(peers, op.pk, FL_PEER_ADMIN, "op", err), FL_OK);
	ep = fl_envelope_new(coord_id, peers);
	ck_assert_int_eq(nng_rep0_open(&sock), 0);
	ck_assert_int_eq(nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 80u << 20), 0);
	ck_assert_int_eq(nng_listener_create(&l, sock, "tcp://127.0.0.1:0"), 0);
	ck_assert_int_eq(nng_listener_start(l, 0), 0);
	ck_assert_int_eq(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	n_requests = 0;
	ck_assert_int_eq(pthread_create(&server, NULL, serve, NULL), 0);
}

static void teardown(void)
{
	nng_close(sock);
	pthread_join(server, NULL);
	for (int i = 0; i < n_requests; i++)
		fl_wire_free(requests[i]);
	n_requests = 0;
	for (size_t i = 0; i < n_arena; i++)
		free(arena[i]);
	free(arena);
	arena = NULL;
	n_arena = cap_arena = 0;
	fl_envelope_free(ep);
	fl_peers_free(peers);
	fl_identity_free(coord_id);
	fl_key_fini(&coord);
	fl_key_fini(&op);
	fl_key_fini(&stranger);
	fl_key_fini(&rel);
	fl_test_rm_rf(tmp);
}

static int count(void)
{
	int n;

	pthread_mutex_lock(&mu);
	n = n_requests;
	pthread_mutex_unlock(&mu);
	return n;
}

static const Flotilla__V1__AdminRequest *request(int i)
{
	ck_assert_int_lt(i, count());
	return requests[i]->admin_request;
}

/* ---- running the binary ---- */

struct run {
	int code;
	char *out, *err;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Run flotilla with args (NULL-terminated), the FLOTILLA_* variables set
 * for the canned coordinator and op.key unless env overrides them. */
static struct run cli_env(const char *const *env, const char *const *args)
{
	const char *bin = getenv("FLOTILLA");
	char out[1200], errp[1200], var[3][1300];
	const char *argv[64], *envp[256];
	struct run r = {0};
	size_t n = 0, k = 0;
	int status;
	pid_t pid;

	ck_assert_msg(bin != NULL, "FLOTILLA is not set");
	fl_test_fmt(out, sizeof(out), "%s/stdout", tmp);
	fl_test_fmt(errp, sizeof(errp), "%s/stderr", tmp);
	argv[n++] = bin;
	for (size_t i = 0; args[i] != NULL && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fl_test_fmt(var[0], sizeof(var[0]), "FLOTILLA_COORDINATOR=%s", url);
	fl_test_fmt(var[1], sizeof(var[1]), "FLOTILLA_COORDINATOR_KEY=%s", coord_pub);
	fl_test_fmt(var[2], sizeof(var[2]), "FLOTILLA_KEY=%s", op_key);
	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		envp[k++] = env[i];
	for (int i = 0; i < 3; i++) {
		bool overridden = false;
		size_t len = strchr(var[i], '=') - var[i] + 1;

		for (size_t j = 0; j < k; j++)
			overridden |= strncmp(envp[j], var[i], len) == 0;
		if (!overridden)
			envp[k++] = var[i];
	}
	for (char **e = environ; *e != NULL && k < 250; e++)
		if (strncmp(*e, "FLOTILLA_", 9) != 0 && strncmp(*e, "NO_COLOR=", 9) != 0)
			envp[k++] = *e;
	envp[k] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(127);
		execve(bin, (char *const *)argv, (char *const *)envp);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r.out = fl_test_read_file(out, NULL);
	r.err = fl_test_read_file(errp, NULL);
	ck_assert_ptr_nonnull(r.out);
	ck_assert_ptr_nonnull(r.err);
	if (getenv("FL_TEST_VERBOSE") != NULL) { /* to read what users see */
		fprintf(stderr, "$ flotilla");
		for (size_t i = 1; argv[i] != NULL; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "   (exit %d)\n%s%s\n", r.code, r.out, r.err);
	}
	return r;
}

#define CLI(...) cli_env(NULL, (const char *const[]){__VA_ARGS__, NULL})

/* Run flotilla on a terminal (a pty, 100 columns): what it wrote there, and its exit code. */
static char *cli_pty(const char *const *env, const char *const *args, int *code)
{
	struct winsize ws = {.ws_row = 30, .ws_col = 100};
	const char *bin = getenv("FLOTILLA");
	char var[3][1300], *out = NULL;
	const char *argv[64], *envp[256];
	size_t n = 0, k = 0, len = 0;
	int master, status;
	pid_t pid;

	argv[n++] = bin;
	for (size_t i = 0; args[i] != NULL && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fl_test_fmt(var[0], sizeof(var[0]), "FLOTILLA_COORDINATOR=%s", url);
	fl_test_fmt(var[1], sizeof(var[1]), "FLOTILLA_COORDINATOR_KEY=%s", coord_pub);
	fl_test_fmt(var[2], sizeof(var[2]), "FLOTILLA_KEY=%s", op_key);
	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		envp[k++] = env[i];
	for (int i = 0; i < 3; i++)
		envp[k++] = var[i];
	envp[k++] = "TERM=xterm";
	envp[k++] = "LANG=C.UTF-8";
	envp[k] = NULL;
	pid = forkpty(&master, NULL, NULL, &ws);
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execve(bin, (char *const *)argv, (char *const *)envp);
		_exit(127);
	}
	for (;;) {
		char buf[4096];
		ssize_t r = read(master, buf, sizeof(buf));

		if (r <= 0)
			break; /* EIO once the child is gone */
		out = fl_realloc(out, len + (size_t)r + 1);
		memcpy(out + len, buf, (size_t)r);
		len += (size_t)r;
	}
	close(master);
	while (waitpid(pid, &status, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	*code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (out == NULL)
		out = fl_strdup("");
	else
		out[len] = '\0';
	return out;
}

#define ASSERT_HAS(text, want)                                                                     \
	ck_assert_msg(strstr((text), (want)) != NULL, "expected '%s' in:\n%s", (want), (text))

/* ---- a small JSON checker: the --json output must parse ---- */

static const char *j_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *j_value(const char *p, int depth);

static const char *j_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		if (*p == '\0' || (unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || p[i] == '\0')
						return NULL;
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p) || *p == '\0') {
				return NULL;
			}
		}
		p++;
	}
	return p + 1;
}

static const char *j_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = j_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';

		p = j_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if ((p = j_string(j_ws(p))) == NULL)
					return NULL;
				p = j_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			if ((p = j_value(p, depth + 1)) == NULL)
				return NULL;
			p = j_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return j_string(p);
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	if (*p == '-' || (*p >= '0' && *p <= '9')) {
		char *end;

		strtod(p, &end);
		return end > p ? end : NULL;
	}
	return NULL;
}

static void assert_json(const char *text)
{
	const char *end = j_value(text, 0);

	ck_assert_msg(end != NULL && *j_ws(end) == '\0', "not one JSON document:\n%s", text);
}

/* ---- canned answers ---- */

static void status(Flotilla__V1__AdminResponse *resp, Flotilla__V1__StatusCode code,
                   const char *msg)
{
	resp->status = NEW(Flotilla__V1__Status, FLOTILLA__V1__STATUS__INIT);
	resp->status->code = code;
	resp->status->message = S(msg);
}

static Flotilla__V1__Label **labels1(const char *k, const char *v)
{
	Flotilla__V1__Label **l = A(2 * sizeof(*l));

	l[0] = NEW(Flotilla__V1__Label, FLOTILLA__V1__LABEL__INIT);
	l[0]->key = S(k);
	l[0]->value = S(v);
	return l;
}

static ProtobufCBinaryData bytes(const uint8_t *data, size_t len)
{
	ProtobufCBinaryData b = {len, A(len + 1)};

	memcpy(b.data, data, len);
	return b;
}

/* ---- tests: transport and status codes ---- */

static void h_never(const Flotilla__V1__AdminRequest *req, int n, Flotilla__V1__AdminResponse *resp)
{
	(void)req;
	(void)n;
	status(resp, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INTERNAL, "not expected");
}

START_TEST(unreachable)
{
	struct run r;
	const char *env[] = {"FLOTILLA_COORDINATOR=tcp://127.0.0.1:1", NULL};

	handler = h_never;
	r = cli_env(env, (const char *const[]){"fleet", "status", "--timeout", "1s", NULL});
	ck_assert_int_eq(r.code, 6);
	ASSERT_HAS(r.err, "cannot reach the coordinator at 'tcp://127.0.0.1:1'");
	ck_assert_int_eq(count(), 0);
	run_free(&r);
}
END_TEST

START_TEST(refused_key)
{
	char var[1300];
	const char *env[] = {var, NULL};
	struct run r;

	handler = h_never;
	fl_test_fmt(var, sizeof(var), "FLOTILLA_KEY=%s", stranger_key);
	r = cli_env(env, (const char *const[]){"agents", "list", NULL});
	ck_assert_int_eq(r.code, 6);
	ASSERT_HAS(r.err, "refused this key");
	ASSERT_HAS(r.err, "is it approved with a role?");
	ck_assert_int_eq(count(), 0);
	run_free(&r);
}
END_TEST

/* proto/client.h: the refusal is its own error for callers that ask
 * (FL_CLIENT_REFUSAL), so the CLI never reads it from the message. */
START_TEST(client_refusal_is_its_own_error)
{
	char err[FL_ERRBUF_SIZE] = "";
	struct fl_identity *id = fl_identity_new_from_seed(stranger.seed);
	struct fl_peers *pp;
	struct fl_envelope *cep;
	struct fl_client *c;
	Flotilla__V1__Message m = FLOTILLA__V1__MESSAGE__INIT, *reply = NULL;
	Flotilla__V1__AdminRequest rq = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__AgentListRequest al = FLOTILLA__V1__AGENT_LIST_REQUEST__INIT;

	handler = h_never;
	ck_assert_int_eq(fl_peers_new(id, NULL, 0, 0, &pp, err), FL_OK);
	ck_assert_int_eq(fl_peers_add(pp, coord.pk, FL_PEER_COORDINATOR, "c", err), FL_OK);
	cep = fl_envelope_new(id, pp);
	ck_assert_msg(fl_client_new(cep, url, (const uint8_t(*)[32])coord.pk, 1, &c, err) == FL_OK,
	              "%s", err);
	rq.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST;
	rq.agent_list = &al;
	m.body_case = FLOTILLA__V1__MESSAGE__BODY_ADMIN_REQUEST;
	m.admin_request = &rq;
	ck_assert_int_eq(
	    fl_client_call(c, &m, FL_WIRE_MAX_SMALL, FL_CLIENT_REFUSAL, 10000, &reply, err),
	    FL_EREFUSED);
	ck_assert_ptr_null(reply);
	ck_assert_int_eq(fl_client_call(c, &m, FL_WIRE_MAX_SMALL, 0, 10000, &reply, err), FL_EAUTH);
	ck_assert_ptr_null(reply);
	ck_assert_int_eq(count(), 0);
	fl_client_free(c);
	fl_envelope_free(cep);
	fl_peers_free(pp);
	fl_identity_free(id);
}
END_TEST

START_TEST(missing_keys)
{
	const char *env[] = {"FLOTILLA_KEY=", NULL};
	const char *env2[] = {"FLOTILLA_COORDINATOR_KEY=", NULL};
	const char *env3[] = {"FLOTILLA_COORDINATOR_KEY=notakey", NULL};
	struct run r;

	handler = h_never;
	r = cli_env(env, (const char *const[]){"fleet", "status", NULL});
	ck_assert_int_eq(r.code, 2);
	ASSERT_HAS(r.err, "no operator key: pass --key FILE or set FLOTILLA_KEY");
	run_free(&r);
	r = cli_env(env2, (const char *const[]){"fleet", "status", NULL});
	ck_assert_int_eq(r.code, 2);
	ASSERT_HAS(r.err, "no coordinator key");
	run_free(&r);
	r = cli_env(env3, (const char *const[]){"fleet", "status", NULL});
	ck_assert_int_eq(r.code, 2);
	ASSERT_HAS(r.err, "FLOTILLA_COORDINATOR_KEY");
	run_free(&r);
	/* A release key is no operator key. */
	r = CLI("fleet", "status", "--key", release_key);
	ck_assert_int_eq(r.code, 1);
	ASSERT_HAS(r.err, "operator");
	run_free(&r);
	ck_assert_int_eq(count(), 0);
}
END_TEST

static Flotilla__V1__StatusCode canned_code;

static void h_code(const Flotilla__V1__AdminRequest *req, int n, Flotilla__V1__AdminResponse *resp)
{
	(void)req;
	(void)n;
	status(resp, canned_code, "the coordinator's reason");
}

START_TEST(status_codes)
{
	static const struct {
		Flotilla__V1__StatusCode code;
		int exit;
		const char *says;
	} cases[] = {
	    {FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED, 12,
	     "needs the release-manager or admin role"},
	    {FLOTILLA__V1__STATUS_CODE__STATUS_CODE_NOT_FOUND, 13, "not found"},
	    {FLOTILLA__V1__STATUS_CODE__STATUS_CODE_FAILED_PRECONDITION, 14, "failed precondition"},
	    {FLOTILLA__V1__STATUS_CODE__STATUS_CODE_ALREADY_EXISTS, 14, "already exists"},
	    {FLOTILLA__V1__STATUS_CODE__STATUS_CODE_ABORTED, 14, "aborted"},
	    {FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT, 2, "invalid request"},
	    {FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNAVAILABLE, 6, "unavailable"},
	    {FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNIMPLEMENTED, 1, "does not implement"},
	    {FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INTERNAL, 1, "its log"},
	};

	handler = h_code;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run r;

		canned_code = cases[i].code;
		r = CLI("rollout", "halt", "r-1", "--reason", "stop it");
		ck_assert_msg(r.code == cases[i].exit, "status %d: exit %d, not %d\n%s",
		              (int)cases[i].code, r.code, cases[i].exit, r.err);
		ASSERT_HAS(r.err, cases[i].says);
		ASSERT_HAS(r.err, "the coordinator's reason");
		ck_assert_str_eq(r.out, "");
		run_free(&r);
	}
	ck_assert_str_eq(request(0)->rollout_halt->rollout_id, "r-1");
	ck_assert_str_eq(request(0)->rollout_halt->reason, "stop it");
}
END_TEST

START_TEST(usage_errors_send_nothing)
{
	static const char *const cmds[][8] = {
	    {"rollout", "halt", "r-1", NULL},
	    {"rollout", "start", "--release", "abcdef", "--policy", "/nonexistent", "--all", NULL},
	    {"rollout", "plan", "--release", "abcdef", "--all", NULL},
	    {"rollout", "status", "--wave", "1", NULL},
	    {"rollout", "pause", NULL},
	    {"rollout", "status", "", NULL},
	    {"rollout", "watch", "", NULL},
	    {"rollout", "frobnicate", NULL},
	    {"agents", "approve", "--name", "a1", NULL},
	    {"audit", "--since", "yesterday", NULL},
	};

	handler = h_never;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct run r = cli_env(NULL, cmds[i]);

		ck_assert_msg(r.code == 2, "%s %s: exit %d\n%s", cmds[i][0], cmds[i][1], r.code,
		              r.err);
		run_free(&r);
	}
	ck_assert_int_eq(count(), 0);
}
END_TEST

/* ---- fleet status: every page, counts, JSON ---- */

static Flotilla__V1__TenantStatus *tenant(const char *id, const char *head,
                                          Flotilla__V1__TenantState st)
{
	Flotilla__V1__TenantStatus *t =
	    NEW(Flotilla__V1__TenantStatus, FLOTILLA__V1__TENANT_STATUS__INIT);

	t->tenant_id = S(id);
	t->agent_id = S("agent-1");
	t->database = S(id);
	t->head_migration_id = S(head);
	t->state = st;
	t->labels = labels1("ring", "canary");
	t->n_labels = 1;
	return t;
}

static void h_fleet(const Flotilla__V1__AdminRequest *req, int n, Flotilla__V1__AdminResponse *resp)
{
	const char *after = req->fleet_status->after_tenant_id;
	Flotilla__V1__FleetStatusResponse *f =
	    NEW(Flotilla__V1__FleetStatusResponse, FLOTILLA__V1__FLEET_STATUS_RESPONSE__INIT);
	const Flotilla__V1__TenantState IDLE = FLOTILLA__V1__TENANT_STATE__TENANT_STATE_IDLE;
	const Flotilla__V1__TenantState FAILED = FLOTILLA__V1__TENANT_STATE__TENANT_STATE_FAILED;

	(void)n;
	f->tenants = A(3 * sizeof(*f->tenants));
	if (*after == '\0') {
		f->tenants[f->n_tenants++] = tenant("t1", "20250102_b", IDLE);
		f->tenants[f->n_tenants++] = tenant("t2", "20250102_b", IDLE);
		f->next_after_tenant_id = S("t2");
	} else if (strcmp(after, "t2") == 0) {
		f->tenants[f->n_tenants++] = tenant("t3", "20250101_a", FAILED);
		f->tenants[f->n_tenants++] = tenant("t4", "20250101_a", FAILED);
		f->next_after_tenant_id = S("t4");
	} else {
		f->tenants[f->n_tenants++] = tenant("t5", "20250102_b", IDLE);
		f->next_after_tenant_id = S("");
	}
	f->total_count = 5;
	f->counts = A(2 * sizeof(*f->counts));
	f->counts[0] = NEW(Flotilla__V1__TenantStateCount, FLOTILLA__V1__TENANT_STATE_COUNT__INIT);
	f->counts[0]->state = IDLE;
	f->counts[0]->count = 3;
	f->counts[1] = NEW(Flotilla__V1__TenantStateCount, FLOTILLA__V1__TENANT_STATE_COUNT__INIT);
	f->counts[1]->state = FAILED;
	f->counts[1]->count = 2;
	f->n_counts = 2;
	resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_FLEET_STATUS;
	resp->fleet_status = f;
}

START_TEST(fleet_status_pages)
{
	struct run r;
	const char *p;
	int tenants = 0;

	handler = h_fleet;
	r = CLI("fleet", "status", "--select", "ring=canary", "--list");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_int_eq(count(), 3);
	ck_assert_str_eq(request(0)->fleet_status->after_tenant_id, "");
	ck_assert_str_eq(request(1)->fleet_status->after_tenant_id, "t2");
	ck_assert_str_eq(request(2)->fleet_status->after_tenant_id, "t4");
	ck_assert_uint_eq(request(0)->fleet_status->n_labels, 1);
	ck_assert_str_eq(request(0)->fleet_status->labels[0]->key, "ring");
	ck_assert_str_eq(request(0)->fleet_status->labels[0]->value, "canary");
	ASSERT_HAS(r.out, "fleet: 5 tenants with ring=canary");
	ASSERT_HAS(r.out, "idle 3 failed 2");
	ck_assert_ptr_nonnull(strstr(r.out, "20250102_b"));
	ck_assert_msg(strstr(r.out, "20250102_b") < strstr(r.out, "20250101_a"),
	              "newest version first:\n%s", r.out);
	ASSERT_HAS(r.out, "t5 ");
	run_free(&r);

	r = CLI("fleet", "status", "--json", "--state", "failed", "--state", "idle");
	ck_assert_msg(r.code == 0, "%s", r.err);
	assert_json(r.out);
	for (p = r.out; (p = strstr(p, "\"tenant_id\":")) != NULL; p++)
		tenants++;
	ck_assert_int_eq(tenants, 5);
	ASSERT_HAS(r.out, "\"counts\":{\"idle\":3,\"failed\":2}");
	ASSERT_HAS(r.out, "\"state\":\"failed\"");
	ck_assert_uint_eq(request(3)->fleet_status->n_states, 2);
	ck_assert_int_eq(request(3)->fleet_status->states[0],
	                 FLOTILLA__V1__TENANT_STATE__TENANT_STATE_FAILED);
	run_free(&r);

	r = CLI("fleet", "status", "--state", "sideways");
	ck_assert_int_eq(r.code, 2);
	run_free(&r);
}
END_TEST

/* Several pinned keys in one --coordinator-key, separated by commas, as the
 * environment variable takes them (README). */
START_TEST(coordinator_keys_in_one_flag)
{
	char keys[2 * sizeof(coord_pub) + 2];
	struct run r;

	handler = h_fleet;
	fl_test_fmt(keys, sizeof(keys), "%s,%s", coord_pub, coord_pub);
	r = CLI("fleet", "status", "--coordinator-key", keys);
	ck_assert_msg(r.code == 0, "%s", r.err);
	run_free(&r);
	fl_test_fmt(keys, sizeof(keys), "%s,notakey", coord_pub);
	r = CLI("fleet", "status", "--coordinator-key", keys);
	ck_assert_int_eq(r.code, 2);
	ASSERT_HAS(r.err, "--coordinator-key");
	run_free(&r);
}
END_TEST

/* ---- rollouts: orders signed with the release key ---- */

static char release_file[1200], policy_file[1200];
static uint8_t release_hash[32];
static char release_hex[65];

/* Two migrations: one compatible with down.sql, one breaking without. */
static void make_release(void)
{
	char dir[1200], path[1300], err[FL_ERRBUF_SIZE] = "";
	struct fl_migration_set set = {0};
	struct fl_buf out = FL_BUF_INIT, signed_ = FL_BUF_INIT;
	struct fl_release *r = NULL;
	FILE *f;

	fl_test_fmt(dir, sizeof(dir), "%s/migrations", tmp);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	fl_test_fmt(path, sizeof(path), "%s/20250101000000_add_users", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	fl_test_fmt(path, sizeof(path), "%s/20250101000000_add_users/migration.sql", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("CREATE TABLE users (id int PRIMARY KEY, name text);\n", f);
	fclose(f);
	fl_test_fmt(path, sizeof(path), "%s/20250101000000_add_users/down.sql", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("DROP TABLE users;\n", f);
	fclose(f);
	fl_test_fmt(path, sizeof(path), "%s/20250102000000_drop_name", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	fl_test_fmt(path, sizeof(path), "%s/20250102000000_drop_name/migration.sql", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("ALTER TABLE users DROP COLUMN name;\n", f);
	fclose(f);
	ck_assert_msg(fl_migration_set_load(dir, &set, err) == FL_OK, "%s", err);
	fl_buf_init(&out, FL_RELEASE_FILE_MAX);
	fl_buf_init(&signed_, FL_RELEASE_FILE_MAX);
	ck_assert_msg(fl_release_build(&set, "acme", 7, &out, release_hex, err) == FL_OK, "%s",
	              err);
	ck_assert_msg(fl_release_sign(out.data, out.len, &rel, &signed_, err) == FL_OK, "%s", err);
	ck_assert_int_eq(fl_release_inspect(signed_.data, signed_.len, &r, err), FL_OK);
	memcpy(release_hash, r->digest, 32);
	fl_release_free(r);
	fl_test_fmt(release_file, sizeof(release_file), "%s/app.release", tmp);
	ck_assert_int_eq(fl_release_file_write(release_file, signed_.data, signed_.len, err),
	                 FL_OK);
	fl_test_fmt(path, sizeof(path), "%s/unsigned.release", tmp);
	ck_assert_int_eq(fl_release_file_write(path, out.data, out.len, err), FL_OK);
	fl_buf_fini(&out);
	fl_buf_fini(&signed_);
	fl_migration_set_fini(&set);

	fl_test_fmt(policy_file, sizeof(policy_file), "%s/canary.yaml", tmp);
	ck_assert_ptr_nonnull(f = fopen(policy_file, "w"));
	fputs("name: test-canary\n"
	      "waves:\n"
	      "  - {name: canary, select: {labels: {ring: canary}}, max_parallel: 2, bake: 1m,\n"
	      "     gate: manual}\n"
	      "  - {name: rest, select: {percent: 100}, max_parallel: 10}\n"
	      "on_failure: rollback-wave\n",
	      f);
	fclose(f);
}

static Flotilla__V1__RolloutPlan *plan(void)
{
	Flotilla__V1__RolloutPlan *p =
	    NEW(Flotilla__V1__RolloutPlan, FLOTILLA__V1__ROLLOUT_PLAN__INIT);
	static const char *names[] = {"canary", "rest"};

	p->policy_name = S("test-canary");
	p->tenant_count = 12;
	p->tenants_at_target = 1;
	p->tenants_blocked = 2;
	p->waves = A(2 * sizeof(*p->waves));
	for (int i = 0; i < 2; i++) {
		Flotilla__V1__WavePlan *w =
		    NEW(Flotilla__V1__WavePlan, FLOTILLA__V1__WAVE_PLAN__INIT);

		w->index = (uint32_t)i;
		w->name = S(names[i]);
		w->tenant_count = i == 0 ? 2 : 10;
		w->bake_ms = i == 0 ? 60000 : 0;
		w->gate = i == 0 ? FLOTILLA__V1__GATE__GATE_MANUAL : FLOTILLA__V1__GATE__GATE_AUTO;
		w->max_parallel = i == 0 ? 2 : 10;
		p->waves[p->n_waves++] = w;
	}
	p->migration_ids = A(3 * sizeof(char *));
	p->migration_ids[p->n_migration_ids++] = S("20250101000000_add_users");
	p->migration_ids[p->n_migration_ids++] = S("20250102000000_drop_name");
	p->rollback_possible = false;
	p->rollback_blockers = A(2 * sizeof(char *));
	p->rollback_blockers[p->n_rollback_blockers++] = S("20250102000000_drop_name");
	p->on_failure = FLOTILLA__V1__FAILURE_POLICY__FAILURE_POLICY_ROLLBACK_WAVE;
	return p;
}

static enum fl_err order_verified = FL_EINVAL;
static char order_err[FL_ERRBUF_SIZE];
static struct fl_order *seen_order;

static void h_rollout(const Flotilla__V1__AdminRequest *req, int n,
                      Flotilla__V1__AdminResponse *resp)
{
	(void)n;
	switch (req->command_case) {
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PLAN:
		fl_order_free(seen_order);
		seen_order = NULL;
		order_verified = fl_order_inspect(req->rollout_plan->signed_order.data,
		                                  req->rollout_plan->signed_order.len,
		                                  FL_ORDER_ROLLOUT, &seen_order, order_err);
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ROLLOUT_PLAN;
		resp->rollout_plan = NEW(Flotilla__V1__RolloutPlanResponse,
		                         FLOTILLA__V1__ROLLOUT_PLAN_RESPONSE__INIT);
		resp->rollout_plan->plan = plan();
		return;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_START:
		fl_order_free(seen_order);
		seen_order = NULL;
		order_verified = fl_order_verify(
		    req->rollout_start->signed_order.data, req->rollout_start->signed_order.len,
		    FL_ORDER_ROLLOUT, (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])rel.pk, 1, "acme",
		    (int64_t)time(NULL) * 1000, &seen_order, order_err);
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ROLLOUT_START;
		resp->rollout_start = NEW(Flotilla__V1__RolloutStartResponse,
		                          FLOTILLA__V1__ROLLOUT_START_RESPONSE__INIT);
		resp->rollout_start->rollout_id = S("r-1");
		resp->rollout_start->plan = plan();
		return;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_LIST: {
		Flotilla__V1__ReleaseInfo *ri =
		    NEW(Flotilla__V1__ReleaseInfo, FLOTILLA__V1__RELEASE_INFO__INIT);

		ri->release_hash = bytes(release_hash, 32);
		ri->project_id = S("acme");
		ri->sequence = 7;
		ri->migration_count = 2;
		ri->head_migration_id = S("20250102000000_drop_name");
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_RELEASE_LIST;
		resp->release_list = NEW(Flotilla__V1__ReleaseListResponse,
		                         FLOTILLA__V1__RELEASE_LIST_RESPONSE__INIT);
		resp->release_list->releases = A(sizeof(ri));
		resp->release_list->releases[0] = ri;
		resp->release_list->n_releases = 1;
		return;
	}
	default:
		status(resp, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNIMPLEMENTED, "no");
	}
}

START_TEST(rollout_plan_unsigned)
{
	struct run r;

	make_release();
	handler = h_rollout;
	r = CLI("rollout", "plan", "--release", release_file, "--policy", policy_file, "--select",
	        "ring=canary", "--tenant", "t2", "--tenant", "t1");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_msg(order_verified == FL_OK, "%s", order_err);
	ck_assert_uint_eq(seen_order->n_signers, 0);
	ck_assert_str_eq(seen_order->project_id, "acme");
	ck_assert_mem_eq(seen_order->release_hash, release_hash, 32);
	ck_assert_str_eq(seen_order->target_migration_id, "20250102000000_drop_name");
	ck_assert_uint_eq(seen_order->selector.n_tenant_ids, 2);
	ck_assert_str_eq(seen_order->selector.tenant_ids[0], "t1");
	ck_assert_str_eq(fl_labels_get(&seen_order->selector.labels, "ring"), "canary");
	ck_assert_str_eq(seen_order->policy.name, "test-canary");
	ASSERT_HAS(r.out, "tenants: 12 selected, 1 already at the target, 2 blocked");
	ASSERT_HAS(r.out, "canary");
	ASSERT_HAS(r.out, "20250101000000_add_users");
	ASSERT_HAS(r.out, "expand (compatible)");
	ASSERT_HAS(r.out, "contract (breaking), no down.sql");
	ASSERT_HAS(r.out, "rollback: NOT possible, no down.sql in: 20250102000000_drop_name");
	ASSERT_HAS(r.out, "time: at least 1m of bake");
	ASSERT_HAS(r.out, "waits for 'rollout promote' 1 time");
	run_free(&r);

	r = CLI("rollout", "plan", "--json", "--release", release_file, "--policy", policy_file,
	        "--all", "--target", "20250101000000_add_users");
	ck_assert_msg(r.code == 0, "%s", r.err);
	assert_json(r.out);
	ASSERT_HAS(r.out, "\"breaking\":true");
	ASSERT_HAS(r.out, "\"rollback_possible\":false");
	ASSERT_HAS(r.out, "\"min_duration_ms\":60000");
	ck_assert_str_eq(seen_order->target_migration_id, "20250101000000_add_users");
	ck_assert(seen_order->selector.all);
	run_free(&r);

	r = CLI("rollout", "plan", "--release", release_file, "--policy", policy_file, "--all",
	        "--target", "20991231000000_nope");
	ck_assert_int_eq(r.code, 2);
	ASSERT_HAS(r.err, "has no migration '20991231000000_nope'");
	run_free(&r);
	fl_order_free(seen_order);
	seen_order = NULL;
}
END_TEST

START_TEST(rollout_start_signed)
{
	char prefix[16];
	struct run r;

	make_release();
	handler = h_rollout;
	/* Without the release key nothing is sent. */
	r = CLI("rollout", "start", "--release", release_file, "--policy", policy_file, "--all");
	ck_assert_int_eq(r.code, 2);
	ASSERT_HAS(r.err, "--release-key FILE is required");
	run_free(&r);
	/* The operator key cannot sign orders. */
	r = CLI("rollout", "start", "--release", release_file, "--policy", policy_file, "--all",
	        "--release-key", op_key);
	ck_assert_int_eq(r.code, 1);
	run_free(&r);
	ck_assert_int_eq(count(), 0);

	r = CLI("rollout", "start", "--release", release_file, "--policy", policy_file, "--select",
	        "ring=canary", "--release-key", release_key, "--reason", "ticket OPS-1",
	        "--expires", "2d");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_msg(order_verified == FL_OK, "%s", order_err);
	ck_assert_str_eq(seen_order->reason, "ticket OPS-1");
	ck_assert_str_eq(seen_order->target_migration_id, "20250102000000_drop_name");
	ck_assert_int_gt(seen_order->expires_at_ms - seen_order->created_at_ms, 47 * 3600000LL);
	ck_assert_int_le(seen_order->expires_at_ms - seen_order->created_at_ms, 48 * 3600000LL);
	ck_assert_int_eq(seen_order->policy.on_failure, FL_ON_FAILURE_ROLLBACK_WAVE);
	ASSERT_HAS(r.out, "started rollout r-1");
	run_free(&r);

	/* By hash prefix: the coordinator's release list gives project and head. */
	memcpy(prefix, release_hex, 10);
	prefix[10] = '\0';
	r = CLI("rollout", "start", "--release", prefix, "--policy", policy_file, "--all",
	        "--release-key", release_key, "--json");
	ck_assert_msg(r.code == 0, "%s", r.err);
	assert_json(r.out);
	ASSERT_HAS(r.out, "\"rollout_id\":\"r-1\"");
	ck_assert_msg(order_verified == FL_OK, "%s", order_err);
	ck_assert_mem_eq(seen_order->release_hash, release_hash, 32);
	ck_assert_str_eq(seen_order->target_migration_id, "20250102000000_drop_name");
	run_free(&r);

	r = CLI("rollout", "start", "--release", "ffffffffff", "--policy", policy_file, "--all",
	        "--release-key", release_key);
	ck_assert_int_eq(r.code, 13);
	ASSERT_HAS(r.err, "push it with 'flotilla release push FILE'");
	run_free(&r);
	fl_order_free(seen_order);
	seen_order = NULL;
}
END_TEST

/* ---- watch: how the rollout ended is the exit code ---- */

static Flotilla__V1__RolloutState final_state;
static Flotilla__V1__WaveState final_wave = FLOTILLA__V1__WAVE_STATE__WAVE_STATE_COMPLETED;
static bool never_ends;
static int64_t expires_at;
static uint8_t order_hash[32];

static Flotilla__V1__RolloutInfo *info(Flotilla__V1__RolloutState st, uint32_t applied0,
                                       Flotilla__V1__WaveState w0, Flotilla__V1__WaveState w1)
{
	Flotilla__V1__RolloutInfo *r =
	    NEW(Flotilla__V1__RolloutInfo, FLOTILLA__V1__ROLLOUT_INFO__INIT);
	static const char *names[] = {"canary", "rest"};

	r->id = S("r-1");
	r->state = st;
	r->release_hash = bytes(release_hash, 32);
	r->order_hash = bytes(order_hash, 32);
	r->project_id = S("acme");
	r->target_migration_id = S("20250102000000_drop_name");
	r->policy_name = S("test-canary");
	r->selector = NEW(Flotilla__V1__TenantSelector, FLOTILLA__V1__TENANT_SELECTOR__INIT);
	r->selector->all = true;
	r->tenants_total = 12;
	r->expires_at_ms = expires_at;
	r->waves = A(2 * sizeof(*r->waves));
	for (int i = 0; i < 2; i++) {
		Flotilla__V1__WaveStatus *w =
		    NEW(Flotilla__V1__WaveStatus, FLOTILLA__V1__WAVE_STATUS__INIT);

		w->index = (uint32_t)i;
		w->name = S(names[i]);
		w->tenants_total = i == 0 ? 2 : 10;
		w->state = i == 0 ? w0 : w1;
		if (i == 0) {
			w->tenants_applied = applied0;
			w->tenants_pending = 2 - applied0;
		} else {
			w->tenants_pending = 10;
		}
		r->waves[r->n_waves++] = w;
	}
	return r;
}

static void h_watch(const Flotilla__V1__AdminRequest *req, int n, Flotilla__V1__AdminResponse *resp)
{
	Flotilla__V1__RolloutInfo *r;
	const Flotilla__V1__RolloutState RUN = FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_RUNNING;
	const Flotilla__V1__WaveState WRUN = FLOTILLA__V1__WAVE_STATE__WAVE_STATE_RUNNING;
	const Flotilla__V1__WaveState WPEND = FLOTILLA__V1__WAVE_STATE__WAVE_STATE_PENDING;

	if (req->command_case != FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS) {
		status(resp, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNIMPLEMENTED, "no");
		return;
	}
	if (strcmp(req->rollout_status->rollout_id, "r-1") != 0) {
		status(resp, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_NOT_FOUND, "no such rollout");
		return;
	}
	if (n == 0)
		r = info(RUN, 0, WRUN, WPEND);
	else if (n == 1 || never_ends)
		r = info(RUN, 1, WRUN, WPEND);
	else
		r = info(final_state, 2, final_wave, WPEND);
	resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ROLLOUT_STATUS;
	resp->rollout_status =
	    NEW(Flotilla__V1__RolloutStatusResponse, FLOTILLA__V1__ROLLOUT_STATUS_RESPONSE__INIT);
	resp->rollout_status->rollouts = A(sizeof(r));
	resp->rollout_status->rollouts[0] = r;
	resp->rollout_status->n_rollouts = 1;
}

static void watch_case(Flotilla__V1__RolloutState st, int64_t expires, int want)
{
	struct run r;

	pthread_mutex_lock(&mu);
	for (int i = 0; i < n_requests; i++)
		fl_wire_free(requests[i]);
	n_requests = 0;
	pthread_mutex_unlock(&mu);
	final_state = st;
	expires_at = expires;
	handler = h_watch;
	r = CLI("rollout", "watch", "r-1", "--interval", "100ms");
	ck_assert_msg(r.code == want, "state %d: exit %d, not %d\n%s%s", (int)st, r.code, want,
	              r.out, r.err);
	ck_assert_int_eq(count(), 3);
	/* Plain lines (stdout is no terminal): one per change, none repeated. */
	ASSERT_HAS(r.out, "rollout r-1: running, wave 1/2 canary");
	ASSERT_HAS(r.out, "wave 1/2 canary: running, 0/2 done");
	ASSERT_HAS(r.out, "wave 1/2 canary: running, 1/2 done (applied 1)");
	ck_assert_ptr_null(strstr(r.out, "\033["));
	run_free(&r);
}

START_TEST(watch_exit_codes)
{
	int64_t later = (int64_t)time(NULL) * 1000 + 3600000;

	watch_case(FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_COMPLETED, later, 0);
	watch_case(FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_HALTED, later, 15);
	watch_case(FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_ROLLED_BACK, later, 16);
	watch_case(FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_HALTED, 1000, 17);
}
END_TEST

START_TEST(watch_on_a_terminal)
{
	const char *nocolor[] = {"NO_COLOR=1", NULL};
	char *out;
	int code;

	handler = h_watch;
	final_state = FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_COMPLETED;
	expires_at = (int64_t)time(NULL) * 1000 + 3600000;
	out = cli_pty(NULL,
	              (const char *const[]){"rollout", "watch", "r-1", "--interval", "100ms", NULL},
	              &code);
	ck_assert_msg(code == 0, "exit %d:\n%s", code, out);
	/* Drawn in place: the frames after the first move the cursor up over the last one
	 * (a head line and two waves) and clear each line; bars in color. */
	ASSERT_HAS(out, "\033[3A");
	ASSERT_HAS(out, "\r\033[2K");
	ASSERT_HAS(out, "\033[32m\u2588");
	ASSERT_HAS(out, "completed; applied 2");
	free(out);

	pthread_mutex_lock(&mu);
	for (int i = 0; i < n_requests; i++)
		fl_wire_free(requests[i]);
	n_requests = 0;
	pthread_mutex_unlock(&mu);
	out = cli_pty(nocolor,
	              (const char *const[]){"rollout", "watch", "r-1", "--interval", "100ms", NULL},
	              &code);
	ck_assert_msg(code == 0, "exit %d:\n%s", code, out);
	ASSERT_HAS(out, "\033[3A");
	ck_assert_msg(strstr(out, "\033[3") == strstr(out, "\033[3A") &&
	                  strstr(out, "\033[32m") == NULL && strstr(out, "\033[1m") == NULL,
	              "NO_COLOR: no color codes expected:\n%s", out);
	free(out);
}
END_TEST

/* 40 waves, wave 21 running, then completed: more than a 30-row terminal holds. */
static void h_many(const Flotilla__V1__AdminRequest *req, int n, Flotilla__V1__AdminResponse *resp)
{
	Flotilla__V1__RolloutInfo *r = info(FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_RUNNING, 0,
	                                    FLOTILLA__V1__WAVE_STATE__WAVE_STATE_COMPLETED,
	                                    FLOTILLA__V1__WAVE_STATE__WAVE_STATE_PENDING);

	(void)req;
	r->waves = A(40 * sizeof(*r->waves));
	r->n_waves = 40;
	r->current_wave = 20;
	for (int i = 0; i < 40; i++) {
		Flotilla__V1__WaveStatus *w =
		    NEW(Flotilla__V1__WaveStatus, FLOTILLA__V1__WAVE_STATUS__INIT);
		char name[16];

		snprintf(name, sizeof(name), "w%02d", i + 1);
		w->index = (uint32_t)i;
		w->name = S(name);
		w->tenants_total = 1;
		w->state = i < 20 || n > 0 ? FLOTILLA__V1__WAVE_STATE__WAVE_STATE_COMPLETED
		                           : FLOTILLA__V1__WAVE_STATE__WAVE_STATE_PENDING;
		w->tenants_applied = w->state == FLOTILLA__V1__WAVE_STATE__WAVE_STATE_COMPLETED;
		r->waves[i] = w;
	}
	if (n > 0)
		r->state = FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_COMPLETED;
	resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ROLLOUT_STATUS;
	resp->rollout_status =
	    NEW(Flotilla__V1__RolloutStatusResponse, FLOTILLA__V1__ROLLOUT_STATUS_RESPONSE__INIT);
	resp->rollout_status->rollouts = A(sizeof(r));
	resp->rollout_status->rollouts[0] = r;
	resp->rollout_status->n_rollouts = 1;
}

START_TEST(watch_fits_the_terminal)
{
	char *out;
	int code;

	handler = h_many;
	expires_at = (int64_t)time(NULL) * 1000 + 3600000;
	out = cli_pty(NULL,
	              (const char *const[]){"rollout", "watch", "r-1", "--interval", "100ms", NULL},
	              &code);
	ck_assert_msg(code == 0, "exit %d:\n%s", code, out);
	/* 30 rows: the head, 27 waves (from the one before the current, or as many before as
	 * the last 27 need: w14 to w40), a line for the rest; the second frame goes up over
	 * exactly those 29 lines. */
	ASSERT_HAS(out, "\033[29A");
	ASSERT_HAS(out, "(13 more waves not shown)");
	ASSERT_HAS(out, "14/40 w14");
	ASSERT_HAS(out, "40/40 w40");
	ck_assert_ptr_null(strstr(out, "13/40 w13"));
	free(out);
}
END_TEST

/* The coordinator goes away in the middle of watch's request: watch keeps asking (and says
 * so) until --wait-timeout, rather than failing on the broken connection. */
START_TEST(watch_rides_out_a_lost_coordinator)
{
	struct run r;

	handler = h_watch;
	final_state = FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_COMPLETED;
	expires_at = (int64_t)time(NULL) * 1000 + 3600000;
	never_ends = true;
	close_at = 1;
	r = CLI("rollout", "watch", "r-1", "--interval", "100ms", "--wait-timeout", "2s",
	        "--timeout", "500ms");
	ck_assert_msg(r.code == 19, "exit %d\n%s", r.code, r.err);
	ASSERT_HAS(r.err, "still trying");
	ck_assert_int_eq(count(), 2);
	run_free(&r);
	never_ends = false;
	close_at = -1;
}
END_TEST

START_TEST(watch_blocked_timeout_missing)
{
	struct run r;

	handler = h_watch;
	final_state = FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_RUNNING;
	final_wave = FLOTILLA__V1__WAVE_STATE__WAVE_STATE_AWAITING_PROMOTE;
	expires_at = (int64_t)time(NULL) * 1000 + 3600000;
	r = CLI("rollout", "watch", "r-1", "--interval", "100ms", "--exit-on-blocked");
	ck_assert_msg(r.code == 18, "exit %d\n%s", r.code, r.err);
	ASSERT_HAS(r.out, "waiting for 'rollout promote'");
	run_free(&r);

	never_ends = true;
	r = CLI("rollout", "watch", "r-1", "--interval", "100ms", "--wait-timeout", "500ms");
	ck_assert_msg(r.code == 19, "exit %d\n%s", r.code, r.err);
	run_free(&r);
	never_ends = false;

	r = CLI("rollout", "watch", "r-404", "--interval", "100ms");
	ck_assert_int_eq(r.code, 13);
	run_free(&r);

	r = CLI("rollout", "watch", "r-1", "--interval", "100ms", "--json", "--exit-on-blocked");
	ck_assert_int_eq(r.code, 18);
	for (char *line = strtok(r.out, "\n"); line != NULL; line = strtok(NULL, "\n"))
		assert_json(line);
	run_free(&r);
	final_wave = FLOTILLA__V1__WAVE_STATE__WAVE_STATE_COMPLETED;
}
END_TEST

/* ---- promote, rollback ---- */

static void h_steer(const Flotilla__V1__AdminRequest *req, int n, Flotilla__V1__AdminResponse *resp)
{
	const Flotilla__V1__WaveState DONE = FLOTILLA__V1__WAVE_STATE__WAVE_STATE_COMPLETED;
	const Flotilla__V1__WaveState WAIT = FLOTILLA__V1__WAVE_STATE__WAVE_STATE_AWAITING_PROMOTE;
	const Flotilla__V1__RolloutState RUN = FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_RUNNING;

	(void)n;
	switch (req->command_case) {
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS:
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ROLLOUT_STATUS;
		resp->rollout_status = NEW(Flotilla__V1__RolloutStatusResponse,
		                           FLOTILLA__V1__ROLLOUT_STATUS_RESPONSE__INIT);
		resp->rollout_status->rollouts = A(sizeof(void *));
		resp->rollout_status->rollouts[0] = info(RUN, 2, WAIT, DONE);
		resp->rollout_status->n_rollouts = 1;
		return;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_PROMOTE:
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ROLLOUT_PROMOTE;
		resp->rollout_promote = NEW(Flotilla__V1__RolloutPromoteResponse,
		                            FLOTILLA__V1__ROLLOUT_PROMOTE_RESPONSE__INIT);
		resp->rollout_promote->rollout = info(RUN, 2, DONE, DONE);
		return;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_ROLLBACK:
		fl_order_free(seen_order);
		seen_order = NULL;
		order_verified = fl_order_verify(
		    req->rollout_rollback->signed_rollback_order.data,
		    req->rollout_rollback->signed_rollback_order.len, FL_ORDER_ROLLBACK,
		    (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])rel.pk, 1, "acme",
		    (int64_t)time(NULL) * 1000, &seen_order, order_err);
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ROLLOUT_ROLLBACK;
		resp->rollout_rollback = NEW(Flotilla__V1__RolloutRollbackResponse,
		                             FLOTILLA__V1__ROLLOUT_ROLLBACK_RESPONSE__INIT);
		resp->rollout_rollback->rollout =
		    info(FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_ROLLING_BACK, 2, DONE, DONE);
		return;
	default:
		status(resp, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNIMPLEMENTED, "no");
	}
}

START_TEST(promote_finds_the_waiting_wave)
{
	struct run r;

	handler = h_steer;
	expires_at = (int64_t)time(NULL) * 1000 + 3600000;
	r = CLI("rollout", "promote", "r-1");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_int_eq(count(), 2);
	ck_assert_uint_eq(request(1)->rollout_promote->wave, 0);
	ASSERT_HAS(r.out, "promoted r-1 past the gate of wave 1/2");
	run_free(&r);

	r = CLI("rollout", "promote", "r-1", "--wave", "rest", "--reason", "looks fine");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_uint_eq(request(3)->rollout_promote->wave, 1);
	ck_assert_str_eq(request(3)->rollout_promote->reason, "looks fine");
	run_free(&r);

	r = CLI("rollout", "promote", "r-1", "--wave", "2");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_uint_eq(request(5)->rollout_promote->wave, 1);
	run_free(&r);

	r = CLI("rollout", "promote", "r-1", "--wave", "3");
	ck_assert_int_eq(r.code, 2);
	ck_assert_int_eq(count(), 7); /* the status only */
	run_free(&r);
}
END_TEST

START_TEST(rollback_signs_for_the_rollout)
{
	struct run r;

	make_release();
	handler = h_steer;
	memset(order_hash, 0x5a, sizeof(order_hash));
	expires_at = (int64_t)time(NULL) * 1000 + 3600000;
	r = CLI("rollout", "rollback", "r-1", "--reason", "bad");
	ck_assert_int_eq(r.code, 2);
	ck_assert_int_eq(count(), 0);
	run_free(&r);

	r = CLI("rollout", "rollback", "r-1", "--release-key", release_key, "--reason", "bad");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_msg(order_verified == FL_OK, "%s", order_err);
	ck_assert_int_eq(seen_order->kind, FL_ORDER_ROLLBACK);
	ck_assert_mem_eq(seen_order->rollout_order_hash, order_hash, 32);
	ck_assert_mem_eq(seen_order->release_hash, release_hash, 32);
	ck_assert(seen_order->selector.all);
	ck_assert_str_eq(seen_order->target_migration_id, "");
	ck_assert_str_eq(request(1)->rollout_rollback->reason, "bad");
	ASSERT_HAS(r.out, "rolling back r-1");
	run_free(&r);

	r = CLI("rollout", "rollback", "r-1", "--release-key", release_key, "--tenant", "t7",
	        "--to", "20250101000000_add_users");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_msg(order_verified == FL_OK, "%s", order_err);
	ck_assert(!seen_order->selector.all);
	ck_assert_uint_eq(seen_order->selector.n_tenant_ids, 1);
	ck_assert_str_eq(seen_order->selector.tenant_ids[0], "t7");
	ck_assert_str_eq(seen_order->target_migration_id, "20250101000000_add_users");
	run_free(&r);
	fl_order_free(seen_order);
	seen_order = NULL;
}
END_TEST

/* ---- agents, enrollment, releases, audit ---- */

static void h_admin(const Flotilla__V1__AdminRequest *req, int n, Flotilla__V1__AdminResponse *resp)
{
	Flotilla__V1__AgentInfo *ai = NEW(Flotilla__V1__AgentInfo, FLOTILLA__V1__AGENT_INFO__INIT);

	(void)n;
	ai->name = S("db-1");
	ai->public_key = bytes(stranger.pk, 32);
	ai->state = FLOTILLA__V1__AGENT_STATE__AGENT_STATE_APPROVED;
	switch (req->command_case) {
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_APPROVE:
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_AGENT_APPROVE;
		resp->agent_approve = NEW(Flotilla__V1__AgentApproveResponse,
		                          FLOTILLA__V1__AGENT_APPROVE_RESPONSE__INIT);
		resp->agent_approve->agent = ai;
		return;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_REVOKE:
		ai->state = FLOTILLA__V1__AGENT_STATE__AGENT_STATE_REVOKED;
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_AGENT_REVOKE;
		resp->agent_revoke = NEW(Flotilla__V1__AgentRevokeResponse,
		                         FLOTILLA__V1__AGENT_REVOKE_RESPONSE__INIT);
		resp->agent_revoke->agent = ai;
		return;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST:
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_AGENT_LIST;
		resp->agent_list =
		    NEW(Flotilla__V1__AgentListResponse, FLOTILLA__V1__AGENT_LIST_RESPONSE__INIT);
		resp->agent_list->agents = A(sizeof(ai));
		resp->agent_list->agents[0] = ai;
		resp->agent_list->n_agents = 1;
		return;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ENROLLMENT_TOKEN_CREATE:
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_ENROLLMENT_TOKEN_CREATE;
		resp->enrollment_token_create =
		    NEW(Flotilla__V1__EnrollmentTokenCreateResponse,
		        FLOTILLA__V1__ENROLLMENT_TOKEN_CREATE_RESPONSE__INIT);
		resp->enrollment_token_create->token =
		    S("fle1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
		resp->enrollment_token_create->expires_at_ms = (int64_t)time(NULL) * 1000 + 3600000;
		return;
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_RELEASE_PUSH: {
		Flotilla__V1__ReleaseInfo *ri =
		    NEW(Flotilla__V1__ReleaseInfo, FLOTILLA__V1__RELEASE_INFO__INIT);

		ri->release_hash = bytes(release_hash, 32);
		ri->project_id = S("acme");
		ri->sequence = 7;
		ri->migration_count = 2;
		ri->head_migration_id = S("20250102000000_drop_name");
		ri->name = S(req->release_push->name);
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_RELEASE_PUSH;
		resp->release_push = NEW(Flotilla__V1__ReleasePushResponse,
		                         FLOTILLA__V1__RELEASE_PUSH_RESPONSE__INIT);
		resp->release_push->release_hash = bytes(release_hash, 32);
		resp->release_push->release = ri;
		return;
	}
	case FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AUDIT_QUERY: {
		Flotilla__V1__AuditQueryResponse *q =
		    NEW(Flotilla__V1__AuditQueryResponse, FLOTILLA__V1__AUDIT_QUERY_RESPONSE__INIT);

		q->entries = A(2 * sizeof(*q->entries));
		for (int i = 0; i < 2; i++) {
			Flotilla__V1__AuditEntry *e =
			    NEW(Flotilla__V1__AuditEntry, FLOTILLA__V1__AUDIT_ENTRY__INIT);

			e->id = req->audit_query->after_id + 1 + (uint64_t)i;
			e->at_ms = (int64_t)time(NULL) * 1000;
			e->actor_key_id = S("0123456789abcdef");
			e->actor_name = S("alice");
			e->role = FLOTILLA__V1__ROLE__ROLE_ADMIN;
			e->command = S(i ? "agent_approve" : "rollout_start");
			e->subject = S("r-1");
			e->code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK;
			e->detail = S("");
			q->entries[q->n_entries++] = e;
		}
		q->next_after_id = req->audit_query->after_id == 0 ? 2 : 0;
		resp->result_case = FLOTILLA__V1__ADMIN_RESPONSE__RESULT_AUDIT_QUERY;
		resp->audit_query = q;
		return;
	}
	default:
		status(resp, FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNIMPLEMENTED, "no");
	}
}

START_TEST(agents_and_tokens)
{
	char pub[FL_KEY_PUBLIC_TEXT_LEN + 1];
	struct run r;

	handler = h_admin;
	fl_key_public_text(stranger.pk, pub);
	r = CLI("agents", "approve", "--key", pub, "--name", "db-1", "--labels", "region=eu");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_mem_eq(request(0)->agent_approve->public_key.data, stranger.pk, 32);
	ck_assert_str_eq(request(0)->agent_approve->name, "db-1");
	ck_assert_uint_eq(request(0)->agent_approve->n_labels, 1);
	ck_assert_str_eq(request(0)->agent_approve->labels[0]->value, "eu");
	ASSERT_HAS(r.out, "approved agent db-1");
	run_free(&r);

	r = CLI("agents", "revoke", "--key", pub, "--reason", "stolen laptop", "--json");
	ck_assert_msg(r.code == 0, "%s", r.err);
	assert_json(r.out);
	ASSERT_HAS(r.out, "\"state\":\"revoked\"");
	ck_assert_str_eq(request(1)->agent_revoke->reason, "stolen laptop");
	run_free(&r);

	r = CLI("agents", "list", "--json");
	ck_assert_msg(r.code == 0, "%s", r.err);
	assert_json(r.out);
	ASSERT_HAS(r.out, pub);
	run_free(&r);

	r = CLI("enroll-token", "create", "--name", "db-2", "--labels", "ring=canary", "--ttl",
	        "2h");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_str_eq(r.out, "fle1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
	ck_assert_uint_eq(request(3)->enrollment_token_create->ttl_ms, 7200000);
	ck_assert_str_eq(request(3)->enrollment_token_create->name, "db-2");
	run_free(&r);
}
END_TEST

START_TEST(release_push_and_audit)
{
	char unsigned_[1300];
	struct run r;

	make_release();
	handler = h_admin;
	fl_test_fmt(unsigned_, sizeof(unsigned_), "%s/unsigned.release", tmp);
	r = CLI("release", "push", unsigned_);
	ck_assert_int_eq(r.code, 10);
	ASSERT_HAS(r.err, "is not signed");
	ck_assert_int_eq(count(), 0);
	run_free(&r);

	r = CLI("release", "push", release_file, "--name", "v7");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_str_eq(request(0)->release_push->name, "v7");
	{
		size_t len;
		char *file = fl_test_read_file(release_file, &len);

		ck_assert_uint_eq(request(0)->release_push->signed_release.len, len);
		ck_assert_mem_eq(request(0)->release_push->signed_release.data, file, len);
		free(file);
	}
	ASSERT_HAS(r.out, "pushed ");
	ASSERT_HAS(r.out, release_hex);
	run_free(&r);

	/* Two pages, oldest first; --actor goes in the query. */
	pthread_mutex_lock(&mu);
	for (int i = 0; i < n_requests; i++)
		fl_wire_free(requests[i]);
	n_requests = 0;
	pthread_mutex_unlock(&mu);
	r = CLI("audit", "--actor", "0123456789abcdef", "--since", "2h");
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_int_eq(count(), 2);
	ck_assert_str_eq(request(0)->audit_query->actor_key_id, "0123456789abcdef");
	ck_assert_uint_eq(request(1)->audit_query->after_id, 2);
	ck_assert_int_gt(request(0)->audit_query->since_ms, (int64_t)time(NULL) * 1000 - 7300000);
	ASSERT_HAS(r.out, "rollout_start");
	ASSERT_HAS(r.out, "alice (0123456789abcdef, admin)");
	run_free(&r);

	r = CLI("audit", "--all", "--limit", "3", "--json");
	ck_assert_msg(r.code == 0, "%s", r.err);
	assert_json(r.out);
	ck_assert_int_eq(request(2)->audit_query->since_ms, 0);
	ck_assert_uint_eq(request(3)->audit_query->limit, 1);
	run_free(&r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cli_canned");
	TCase *tc = tcase_create("admin");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, unreachable);
	tcase_add_test(tc, refused_key);
	tcase_add_test(tc, client_refusal_is_its_own_error);
	tcase_add_test(tc, missing_keys);
	tcase_add_test(tc, coordinator_keys_in_one_flag);
	tcase_add_test(tc, status_codes);
	tcase_add_test(tc, usage_errors_send_nothing);
	tcase_add_test(tc, fleet_status_pages);
	tcase_add_test(tc, rollout_plan_unsigned);
	tcase_add_test(tc, rollout_start_signed);
	tcase_add_test(tc, watch_exit_codes);
	tcase_add_test(tc, watch_on_a_terminal);
	tcase_add_test(tc, watch_fits_the_terminal);
	tcase_add_test(tc, watch_rides_out_a_lost_coordinator);
	tcase_add_test(tc, watch_blocked_timeout_missing);
	tcase_add_test(tc, promote_finds_the_waiting_wave);
	tcase_add_test(tc, rollback_signs_for_the_rollout);
	tcase_add_test(tc, agents_and_tokens);
	tcase_add_test(tc, release_push_and_audit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
