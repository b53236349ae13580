/*
 * The HTTP endpoint, the core's side (http.h): the token, /metrics and
 * /api/v1/..., on the core thread. The API reads through the admin server's
 * handlers (fl_admin_server_read) and renders with coordinator/cli/render.h,
 * so a document is the CLI's --json one; /metrics reads the model and the
 * counters directly (we are on the core thread).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_server.h"
#include "arena.h"
#include "http_int.h"
#include "jsonw.h"
#include "label.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "render.h"
#include "wire.h"

#define ROLLOUTS_MAX 1000 /* rollouts /metrics reads (the scheduler's list maximum) */

/* ---- queries ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) into out (n + 1 bytes); false on a bad escape or a NUL. */
static bool unescape(const char *s, size_t n, char *out, bool plus)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int a, b;

			if (i + 2 >= n || (a = hexval(s[i + 1])) < 0 ||
			    (b = hexval(s[i + 2])) < 0 || (a == 0 && b == 0))
				return false;
			out[k++] = (char)(a * 16 + b);
			i += 2;
		} else {
			out[k++] = plus && s[i] == '+' ? ' ' : s[i];
		}
	}
	out[k] = '\0';
	return true;
}

/* Query parameter name's value into out (unescaped): 1, 0 when absent, -1
 * when too long or badly escaped. */
static int qget(const char *query, const char *name, char *out, size_t n)
{
	size_t len = strlen(name);

	for (const char *p = query; p && *p;) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);

		if ((size_t)(end - p) > len && strncmp(p, name, len) == 0 && p[len] == '=') {
			const char *v = p + len + 1;

			if ((size_t)(end - v) >= n)
				return -1;
			return unescape(v, (size_t)(end - v), out, true) ? 1 : -1;
		}
		p = amp ? amp + 1 : NULL;
	}
	return 0;
}

static bool qparam(const char *query, const char *name, char *out, size_t n)
{
	return qget(query, name, out, n) == 1;
}

/* A non-negative integer parameter: *v untouched when absent; false when bad. */
static bool qnum(const char *query, const char *name, uint64_t max, uint64_t *v)
{
	char buf[32], *end;
	unsigned long long x;
	int got = qget(query, name, buf, sizeof(buf));

	if (got == 0)
		return true;
	if (got < 0 || buf[0] < '0' || buf[0] > '9')
		return false;
	x = strtoull(buf, &end, 10);
	if (*end != '\0' || x > max)
		return false;
	*v = x;
	return true;
}

static bool qflag(const char *query, const char *name)
{
	char buf[8];

	return qparam(query, name, buf, sizeof(buf)) &&
	       (strcmp(buf, "1") == 0 || strcmp(buf, "true") == 0);
}

/* ---- responses ---- */

static void respond_json(struct fl_http_req *r, uint16_t status, struct jw *w)
{
	fl_buf_puts(&w->b, "\n");
	fl_http_respond(r, status, "application/json", w->b.data, w->b.len);
}

static void respond_error(struct fl_http_req *r, uint16_t status, const char *code,
                          const char *message)
{
	struct jw w;

	jw_init(&w);
	jw_obj(&w, NULL);
	jw_obj(&w, "error");
	jw_str(&w, "code", code);
	jw_str(&w, "message", message);
	jw_end(&w);
	jw_end(&w);
	respond_json(r, status, &w);
	jw_fini(&w);
}

static uint16_t http_status(Flotilla__V1__StatusCode code)
{
	switch (code) {
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK:
		return 200;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_NOT_FOUND:
		return 404;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT:
		return 400;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_PERMISSION_DENIED:
		return 403;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNIMPLEMENTED:
		return 501;
	case FLOTILLA__V1__STATUS_CODE__STATUS_CODE_UNAVAILABLE:
		return 503;
	default:
		return 500;
	}
}

/* ---- reads ---- */

struct read {
	struct fl_arena arena;
	Flotilla__V1__AdminResponse resp;
	struct fl_core_admin_reply reply;
	ProtobufCMessage **owned;
	size_t n_owned;
	enum fl_err rv;
	char eb[FL_ERRBUF_SIZE];
};

/* Run req as caller; true when it answered OK, else r is answered. */
static bool run_read(struct fl_core *core, const struct fl_core_caller *caller,
                     const Flotilla__V1__AdminRequest *req, struct read *rd, struct fl_http_req *r)
{
	char b[JR_ENUM_MAX];

	fl_arena_init(&rd->arena);
	flotilla__v1__admin_response__init(&rd->resp);
	rd->reply.arena = &rd->arena;
	rd->reply.code = FLOTILLA__V1__STATUS_CODE__STATUS_CODE_INTERNAL;
	rd->reply.message = "";
	rd->reply.subject = "";
	rd->reply.response = &rd->resp;
	rd->owned = NULL;
	rd->n_owned = 0;
	rd->eb[0] = '\0';
	rd->rv =
	    fl_admin_server_read(core, caller, req, &rd->reply, &rd->owned, &rd->n_owned, rd->eb);
	if (rd->rv != FL_OK) {
		fl_log_error("http", "%s %s failed: %s", r ? r->path : "metrics",
		             fl_wire_admin_command_name(req->command_case), rd->eb);
		fl_core_count(core, FL_CORE_ERRORS);
		if (r)
			respond_error(r, 500, "internal", "the coordinator failed; see its log");
		return false;
	}
	if (rd->reply.code != FLOTILLA__V1__STATUS_CODE__STATUS_CODE_OK) {
		if (r)
			respond_error(r, http_status(rd->reply.code),
			              jr_enum(&flotilla__v1__status_code__descriptor,
			                      rd->reply.code, b, sizeof(b)),
			              rd->reply.message);
		return false;
	}
	return true;
}

static void read_fini(struct read *rd)
{
	for (size_t i = 0; i < rd->n_owned; i++)
		fl_wire_free_message(rd->owned[i]);
	fl_arena_fini(&rd->arena);
}

static bool bad_param(struct fl_http_req *r, const char *name)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "query parameter '%s': not a valid value", name);
	respond_error(r, 400, "invalid-argument", msg);
	return false;
}

/* Labels from ?select=k=v,... into the arena; false (answered) when bad. */
static bool select_labels(struct fl_http_req *r, struct fl_arena *ar, Flotilla__V1__Label ***out,
                          size_t *n)
{
	char text[FL_HTTP_QUERY_MAX], eb[FL_ERRBUF_SIZE] = "";
	struct fl_labels l;

	*out = NULL;
	*n = 0;
	switch (qget(r->query, "select", text, sizeof(text))) {
	case 0:
		return true;
	case -1:
		return bad_param(r, "select");
	}
	if (fl_labels_parse(text, &l, eb) != FL_OK) {
		respond_error(r, 400, "invalid-argument", eb);
		return false;
	}
	for (size_t i = 0; i < l.n; i++) {
		Flotilla__V1__Label *x = fl_arena_alloc(ar, sizeof(*x));

		flotilla__v1__label__init(x);
		x->key = fl_arena_strdup(ar, l.items[i].key);
		x->value = fl_arena_strdup(ar, l.items[i].value);
		fl_arena_push(ar, out, n, x);
	}
	fl_labels_fini(&l);
	return true;
}

static void api_rollouts(struct fl_core *core, const struct fl_core_caller *c,
                         struct fl_http_req *r, const char *id)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStatusRequest st = FLOTILLA__V1__ROLLOUT_STATUS_REQUEST__INIT;
	uint64_t limit = 0;
	struct read rd;
	struct jw w;

	if (!qnum(r->query, "limit", 100000, &limit)) {
		bad_param(r, "limit");
		return;
	}
	st.rollout_id = (char *)(id ? id : "");
	st.include_finished = qflag(r->query, "all");
	st.limit = (uint32_t)limit;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS;
	req.rollout_status = &st;
	if (!run_read(core, c, &req, &rd, r))
		goto out;
	jw_init(&w);
	if (id != NULL) {
		if (rd.resp.rollout_status->n_rollouts != 1) {
			respond_error(r, 404, "not-found", "no such rollout");
			jw_fini(&w);
			goto out;
		}
		jr_rollout(&w, NULL, rd.resp.rollout_status->rollouts[0]);
	} else {
		jr_rollout_list(&w, rd.resp.rollout_status->rollouts,
		                rd.resp.rollout_status->n_rollouts);
	}
	respond_json(r, 200, &w);
	jw_fini(&w);
out:
	read_fini(&rd);
}

/* ?state=failed,running into states (arena); false when one is unknown. */
static bool states_param(struct fl_http_req *r, struct fl_arena *ar,
                         Flotilla__V1__TenantState **out, size_t *n)
{
	char text[FL_HTTP_QUERY_MAX], b[JR_ENUM_MAX];

	*out = NULL;
	*n = 0;
	switch (qget(r->query, "state", text, sizeof(text))) {
	case 0:
		return true;
	case -1:
		return bad_param(r, "state");
	}
	for (char *save = NULL, *s = strtok_r(text, ",", &save); s;
	     s = strtok_r(NULL, ",", &save)) {
		const ProtobufCEnumDescriptor *d = &flotilla__v1__tenant_state__descriptor;
		bool found = false;

		for (unsigned i = 0; i < d->n_values && !found; i++) {
			if (d->values[i].value == 0 ||
			    strcmp(jr_enum(d, d->values[i].value, b, sizeof(b)), s) != 0)
				continue;
			found = true;
			if (*n % 16 == 0) { /* grow by 16 (arena: the old block stays) */
				Flotilla__V1__TenantState *grown =
				    fl_arena_alloc(ar, (*n + 16) * sizeof(*grown));

				if (*n)
					memcpy(grown, *out, *n * sizeof(*grown));
				*out = grown;
			}
			(*out)[(*n)++] = (Flotilla__V1__TenantState)d->values[i].value;
		}
		if (!found)
			return bad_param(r, "state");
	}
	return true;
}

static void api_tenants(struct fl_core *core, const struct fl_core_caller *c, struct fl_http_req *r)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__FleetStatusRequest fs = FLOTILLA__V1__FLEET_STATUS_REQUEST__INIT;
	const Flotilla__V1__FleetStatusResponse *f;
	struct fl_arena ar;
	char after[FL_HTTP_QUERY_MAX] = "";
	uint64_t limit = 0;
	struct read rd;
	struct jw w;

	fl_arena_init(&ar);
	if (!qnum(r->query, "limit", 100000, &limit)) {
		bad_param(r, "limit");
		goto done;
	}
	if (qget(r->query, "after", after, sizeof(after)) < 0) {
		bad_param(r, "after");
		goto done;
	}
	if (!select_labels(r, &ar, &fs.labels, &fs.n_labels) ||
	    !states_param(r, &ar, &fs.states, &fs.n_states))
		goto done;
	fs.after_tenant_id = after;
	fs.limit = (uint32_t)limit;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_STATUS;
	req.fleet_status = &fs;
	if (run_read(core, c, &req, &rd, r)) {
		f = rd.resp.fleet_status;
		jw_init(&w);
		jw_obj(&w, NULL);
		jw_uint(&w, "total_count", f->total_count);
		jr_state_counts(&w, "counts", f->counts, f->n_counts);
		jw_arr(&w, "tenants");
		for (size_t i = 0; i < f->n_tenants; i++)
			jr_tenant(&w, NULL, f->tenants[i]);
		jw_end(&w);
		jw_str(&w, "next_after_tenant_id", f->next_after_tenant_id);
		jw_end(&w);
		respond_json(r, 200, &w);
		jw_fini(&w);
	}
	read_fini(&rd);
done:
	fl_arena_fini(&ar);
}

static void api_tenant(struct fl_core *core, const struct fl_core_caller *c, struct fl_http_req *r,
                       const char *id)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__TenantShowRequest ts = FLOTILLA__V1__TENANT_SHOW_REQUEST__INIT;
	uint64_t reports = 0;
	struct read rd;
	struct jw w;

	if (!qnum(r->query, "reports", 1000, &reports)) {
		bad_param(r, "reports");
		return;
	}
	ts.tenant_id = (char *)id;
	ts.report_limit = (uint32_t)reports;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_TENANT_SHOW;
	req.tenant_show = &ts;
	if (run_read(core, c, &req, &rd, r)) {
		jw_init(&w);
		jr_tenant_show(&w, rd.resp.tenant_show);
		respond_json(r, 200, &w);
		jw_fini(&w);
	}
	read_fini(&rd);
}

static void api_agents(struct fl_core *core, const struct fl_core_caller *c, struct fl_http_req *r)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__AgentListRequest al = FLOTILLA__V1__AGENT_LIST_REQUEST__INIT;
	struct read rd;
	struct jw w;

	al.include_revoked = qflag(r->query, "all");
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AGENT_LIST;
	req.agent_list = &al;
	if (run_read(core, c, &req, &rd, r)) {
		jw_init(&w);
		jr_agent_list(&w, rd.resp.agent_list->agents, rd.resp.agent_list->n_agents);
		respond_json(r, 200, &w);
		jw_fini(&w);
	}
	read_fini(&rd);
}

static void api_drift(struct fl_core *core, const struct fl_core_caller *c, struct fl_http_req *r)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__FleetDriftRequest fd = FLOTILLA__V1__FLEET_DRIFT_REQUEST__INIT;
	struct fl_arena ar;
	uint64_t limit = 0;
	struct read rd;
	struct jw w;

	fl_arena_init(&ar);
	if (!qnum(r->query, "limit", 100000, &limit)) {
		bad_param(r, "limit");
		goto done;
	}
	if (!select_labels(r, &ar, &fd.labels, &fd.n_labels))
		goto done;
	fd.limit = (uint32_t)limit;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_DRIFT;
	req.fleet_drift = &fd;
	if (run_read(core, c, &req, &rd, r)) {
		jw_init(&w);
		jr_drift(&w, rd.resp.fleet_drift);
		respond_json(r, 200, &w);
		jw_fini(&w);
	}
	read_fini(&rd);
done:
	fl_arena_fini(&ar);
}

static void api_audit(struct fl_core *core, const struct fl_core_caller *c, struct fl_http_req *r)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__AuditQueryRequest aq = FLOTILLA__V1__AUDIT_QUERY_REQUEST__INIT;
	uint64_t after = 0, limit = 0, since = 0;
	struct read rd;
	struct jw w;

	if (!qnum(r->query, "after", UINT64_MAX, &after)) {
		bad_param(r, "after");
		return;
	}
	if (!qnum(r->query, "limit", 100000, &limit)) {
		bad_param(r, "limit");
		return;
	}
	if (!qnum(r->query, "since_ms", INT64_MAX, &since)) {
		bad_param(r, "since_ms");
		return;
	}
	aq.after_id = after;
	aq.limit = (uint32_t)limit;
	aq.since_ms = (int64_t)since;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_AUDIT_QUERY;
	req.audit_query = &aq;
	if (run_read(core, c, &req, &rd, r)) {
		const Flotilla__V1__AuditQueryResponse *a = rd.resp.audit_query;

		jw_init(&w);
		jw_obj(&w, NULL);
		jw_arr(&w, "entries");
		for (size_t i = 0; i < a->n_entries; i++)
			jr_audit_entry(&w, NULL, a->entries[i]);
		jw_end(&w);
		jw_uint(&w, "next_after_id", a->next_after_id);
		jw_end(&w);
		respond_json(r, 200, &w);
		jw_fini(&w);
	}
	read_fini(&rd);
}

/* The id after prefix in path, unescaped into out; false when there is none
 * (or more path follows). */
static bool path_id(const char *path, const char *prefix, char *out, size_t n)
{
	size_t k = strlen(prefix);
	const char *id = path + k;

	if (strncmp(path, prefix, k) != 0 || *id == '\0' || strchr(id, '/') != NULL ||
	    strlen(id) >= n)
		return false;
	return unescape(id, strlen(id), out, false) && out[0] != '\0';
}

static void api(struct fl_core *core, const struct fl_core_caller *c, struct fl_http_req *r)
{
	char id[FL_HTTP_PATH_MAX];

	if (strcmp(r->path, "/api/v1/rollouts") == 0)
		api_rollouts(core, c, r, NULL);
	else if (path_id(r->path, "/api/v1/rollouts/", id, sizeof(id)))
		api_rollouts(core, c, r, id);
	else if (strcmp(r->path, "/api/v1/tenants") == 0)
		api_tenants(core, c, r);
	else if (path_id(r->path, "/api/v1/tenants/", id, sizeof(id)))
		api_tenant(core, c, r, id);
	else if (strcmp(r->path, "/api/v1/agents") == 0)
		api_agents(core, c, r);
	else if (strcmp(r->path, "/api/v1/drift") == 0)
		api_drift(core, c, r);
	else if (strcmp(r->path, "/api/v1/audit") == 0)
		api_audit(core, c, r);
	else
		respond_error(r, 404, "not-found", "no such API path");
}

/* ---- /metrics ---- */

static const struct {
	enum fl_core_counter c;
	const char *name, *help;
} counters[] = {
    {FL_CORE_HELLOS, "flotilla_hellos_total", "Hellos from agents."},
    {FL_CORE_HELLOS_REFUSED, "flotilla_hellos_refused_total", "Hellos refused."},
    {FL_CORE_POLLS, "flotilla_polls_total", "Polls from agents."},
    {FL_CORE_POLLS_HELD, "flotilla_polls_held_total", "Polls held open for lack of work."},
    {FL_CORE_POLLS_WORK, "flotilla_polls_with_work_total", "Polls answered with work or halts."},
    {FL_CORE_REPORTS, "flotilla_reports_total", "Reports from agents."},
    {FL_CORE_REPORTS_DUPLICATE, "flotilla_reports_duplicate_total",
     "Reports received again (answered from the store)."},
    {FL_CORE_REPORTS_REFUSED, "flotilla_reports_refused_total",
     "Reports refused: not the agent's tenant or assignment."},
    {FL_CORE_FETCHES, "flotilla_release_fetches_total", "Releases fetched by agents."},
    {FL_CORE_ENROLLED, "flotilla_enrollments_total", "Agents enrolled with a token."},
    {FL_CORE_ENROLL_REFUSED, "flotilla_enrollments_refused_total", "Enrollments refused."},
    {FL_CORE_TENANTS_CLAIMED_TWICE, "flotilla_tenants_claimed_twice_total",
     "Tenants two agents claimed."},
    {FL_CORE_ADMIN_CALLS, "flotilla_admin_calls_total", "Operators' admin requests."},
    {FL_CORE_ADMIN_DENIED, "flotilla_admin_denied_total", "Admin requests denied."},
    {FL_CORE_ERRORS, "flotilla_errors_total", "Store or internal failures answered with an error."},
};

static bool active(Flotilla__V1__RolloutState s)
{
	return s != FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_COMPLETED &&
	       s != FLOTILLA__V1__ROLLOUT_STATE__ROLLOUT_STATE_ROLLED_BACK;
}

static void metrics_rollouts(struct fl_core *core, const struct fl_core_caller *c, struct fl_buf *b)
{
	const ProtobufCEnumDescriptor *rd_ = &flotilla__v1__rollout_state__descriptor;
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__RolloutStatusRequest st = FLOTILLA__V1__ROLLOUT_STATUS_REQUEST__INIT;
	const Flotilla__V1__RolloutStatusResponse *rs;
	char name[JR_ENUM_MAX];
	struct read rd;

	st.include_finished = true;
	st.limit = ROLLOUTS_MAX;
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_ROLLOUT_STATUS;
	req.rollout_status = &st;
	if (!run_read(core, c, &req, &rd, NULL)) {
		read_fini(&rd);
		return;
	}
	rs = rd.resp.rollout_status;
	fl_metrics_head(b, "flotilla_rollouts", "gauge",
	                "Rollouts by state (the newest 1000 rollouts).");
	for (unsigned i = 0; i < rd_->n_values; i++) {
		int v = rd_->values[i].value;
		size_t n = 0;

		if (v == 0)
			continue;
		for (size_t k = 0; k < rs->n_rollouts; k++)
			n += (int)rs->rollouts[k]->state == v;
		fl_buf_printf(b, "flotilla_rollouts{state=\"%s\"} %zu\n",
		              jr_enum(rd_, v, name, sizeof(name)), n);
	}
	fl_metrics_head(b, "flotilla_rollout_current_wave", "gauge",
	                "The wave a rollout not completed or rolled back is at (0: the first).");
	for (size_t k = 0; k < rs->n_rollouts; k++) {
		const Flotilla__V1__RolloutInfo *r = rs->rollouts[k];

		if (!active(r->state))
			continue;
		fl_buf_puts(b, "flotilla_rollout_current_wave{rollout=");
		fl_metrics_label(b, r->id);
		fl_buf_printf(b, ",state=\"%s\"} %u\n", jr_enum(rd_, r->state, name, sizeof(name)),
		              r->current_wave);
	}
	fl_metrics_head(b, "flotilla_rollout_wave_tenants", "gauge",
	                "Tenants of a wave of a rollout not completed or rolled back, by state.");
	for (size_t k = 0; k < rs->n_rollouts; k++) {
		const Flotilla__V1__RolloutInfo *r = rs->rollouts[k];

		if (!active(r->state))
			continue;
		for (size_t i = 0; i < r->n_waves; i++) {
			const Flotilla__V1__WaveStatus *ws = r->waves[i];
			const struct {
				const char *state;
				uint32_t n;
			} by[] = {
			    {"pending", ws->tenants_pending},
			    {"running", ws->tenants_running},
			    {"applied", ws->tenants_applied},
			    {"failed", ws->tenants_failed},
			    {"rolled-back", ws->tenants_rolled_back},
			    {"skipped", ws->tenants_skipped},
			    {"unreachable", ws->tenants_unreachable},
			};

			for (size_t s = 0; s < sizeof(by) / sizeof(by[0]); s++) {
				fl_buf_puts(b, "flotilla_rollout_wave_tenants{rollout=");
				fl_metrics_label(b, r->id);
				fl_buf_printf(b, ",wave=\"%u\",wave_name=", ws->index);
				fl_metrics_label(b, ws->name);
				fl_buf_printf(b, ",state=\"%s\"} %u\n", by[s].state, by[s].n);
			}
		}
	}
	read_fini(&rd);
}

static void metrics_fleet(struct fl_core *core, const struct fl_core_caller *c, struct fl_buf *b)
{
	Flotilla__V1__AdminRequest req = FLOTILLA__V1__ADMIN_REQUEST__INIT;
	Flotilla__V1__FleetStatusRequest fs = FLOTILLA__V1__FLEET_STATUS_REQUEST__INIT;
	const ProtobufCEnumDescriptor *d = &flotilla__v1__tenant_state__descriptor;
	char name[JR_ENUM_MAX];
	struct read rd;

	fs.limit = 1; /* the counts cover every page */
	req.command_case = FLOTILLA__V1__ADMIN_REQUEST__COMMAND_FLEET_STATUS;
	req.fleet_status = &fs;
	if (run_read(core, c, &req, &rd, NULL)) {
		const Flotilla__V1__FleetStatusResponse *f = rd.resp.fleet_status;

		fl_metrics_head(b, "flotilla_tenants", "gauge", "Tenants of the fleet by state.");
		for (unsigned i = 0; i < d->n_values; i++) {
			uint32_t n = 0;

			if (d->values[i].value == 0)
				continue;
			for (size_t k = 0; k < f->n_counts; k++)
				if ((int)f->counts[k]->state == d->values[i].value)
					n = f->counts[k]->count;
			fl_buf_printf(b, "flotilla_tenants{state=\"%s\"} %u\n",
			              jr_enum(d, d->values[i].value, name, sizeof(name)), n);
		}
	}
	read_fini(&rd);
}

static void metrics_agents(struct fl_core *core, struct fl_buf *b)
{
	size_t n = fl_core_agent_count(core), online = 0;

	for (size_t i = 0; i < n; i++)
		online += fl_core_agent_at(core, i)->online;
	fl_metrics_head(b, "flotilla_agents", "gauge", "Approved agents known to the coordinator.");
	fl_buf_printf(b, "flotilla_agents %zu\n", n);
	fl_metrics_head(b, "flotilla_agents_connected", "gauge",
	                "Agents heard from within agent_offline_after.");
	fl_buf_printf(b, "flotilla_agents_connected %zu\n", online);
	fl_metrics_head(b, "flotilla_agent_up", "gauge",
	                "1 when the agent was heard from within agent_offline_after.");
	for (size_t i = 0; i < n; i++) {
		const struct fl_core_agent *a = fl_core_agent_at(core, i);

		fl_buf_puts(b, "flotilla_agent_up{agent=");
		fl_metrics_label(b, a->name);
		fl_buf_printf(b, ",key_id=\"%s\"} %d\n", a->key_id, a->online ? 1 : 0);
	}
	fl_metrics_head(b, "flotilla_agent_last_seen_timestamp_seconds", "gauge",
	                "When the agent was last heard from (Unix time; 0: never).");
	for (size_t i = 0; i < n; i++) {
		const struct fl_core_agent *a = fl_core_agent_at(core, i);

		fl_buf_puts(b, "flotilla_agent_last_seen_timestamp_seconds{agent=");
		fl_metrics_label(b, a->name);
		fl_buf_printf(b, ",key_id=\"%s\"} %.3f\n", a->key_id,
		              (double)a->last_seen_ms / 1000.0);
	}
	fl_metrics_head(b, "flotilla_held_polls", "gauge", "Agents' polls held open now.");
	fl_buf_printf(b, "flotilla_held_polls %zu\n", fl_core_held_count(core));
}

static void metrics(struct fl_core *core, const struct fl_core_caller *c, struct fl_http_req *r)
{
	struct fl_buf b = FL_BUF_INIT;

	fl_metrics_head(&b, "flotilla_build_info", "gauge", "The coordinator's version.");
	fl_buf_printf(&b, "flotilla_build_info{version=\"%s\"} 1\n", FL_VERSION);
	metrics_rollouts(core, c, &b);
	metrics_fleet(core, c, &b);
	metrics_agents(core, &b);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		fl_metrics_head(&b, counters[i].name, "counter", counters[i].help);
		fl_buf_printf(&b, "%s %" PRIu64 "\n", counters[i].name,
		              fl_core_counter(core, counters[i].c));
	}
	if (fl_core_metrics(core))
		fl_metrics_render(fl_core_metrics(core), &b);
	fl_http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	fl_buf_fini(&b);
}

/* ---- the job ---- */

void fl_http_api_run(struct fl_core *core, struct fl_core_job *job)
{
	struct fl_http_req *r = (struct fl_http_req *)job;
	struct fl_core_caller caller = {0};

	caller.role = FL_PEER_VIEWER;
	snprintf(caller.name, sizeof(caller.name), "http");
	snprintf(caller.key_id, sizeof(caller.key_id), "http");
	if (r->need_token) {
		const struct fl_coordinator_config *cfg = fl_core_config(core);
		const struct fl_coordinator_operator *ops = cfg->operators.items;
		uint8_t(*keys)[FL_KEY_PUBLIC_BYTES] =
		    fl_calloc(cfg->operators.n + 1, sizeof(*keys));
		char eb[FL_ERRBUF_SIZE] = "";
		size_t which = 0;
		enum fl_err rv;

		for (size_t i = 0; i < cfg->operators.n; i++)
			memcpy(keys[i], ops[i].public_key.key, FL_KEY_PUBLIC_BYTES);
		rv = fl_http_token_check(r->token, (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])keys,
		                         cfg->operators.n, fl_core_now_ms(core), &which, eb);
		free(keys);
		if (rv != FL_OK) {
			fl_log_warn("http", "%s refused: %s", r->path, eb);
			respond_error(r, 401, "unauthenticated", eb);
			return;
		}
		memcpy(caller.pk, ops[which].public_key.key, FL_PEER_KEY_LEN);
		fl_key_id(caller.pk, caller.key_id);
		snprintf(caller.name, sizeof(caller.name), "%s", ops[which].name);
	}
	if (strcmp(r->path, "/metrics") == 0)
		metrics(core, &caller, r);
	else
		api(core, &caller, r);
}
