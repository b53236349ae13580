/* flotilla-agent's life cycle, snapshots, signals and reloads (see agent.h). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "discovery.h"
#include "file.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "pull.h"
#include "recfile.h"
#include "sd_notify.h"

#define SYNC_EVERY_MS 10000 /* peers.seq fsync */
#define FLUSH_MAX_MS  5000  /* sending reports at shutdown */
#define HOSTNAME_MAX_ 256

/* ---- snapshots and links ---- */

static void cfg_unref(struct fl_agent_cfg *c)
{
	if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1) {
		fl_agent_config_fini(&c->c);
		free(c);
	}
}

void fl_agent_acquire(void *arg, struct fl_agent_snapshot *s)
{
	struct fl_agent *a = arg;

	pthread_mutex_lock(&a->mu);
	atomic_fetch_add(&a->cfg->refs, 1);
	s->cfg = &a->cfg->c;
	s->priv = a->cfg;
	s->tenants = fl_tenants_ref(a->tenants);
	pthread_mutex_unlock(&a->mu);
}

void fl_agent_release(void *arg, struct fl_agent_snapshot *s)
{
	(void)arg;
	fl_tenants_unref(s->tenants);
	cfg_unref(s->priv);
	memset(s, 0, sizeof(*s));
}

struct fl_agent_link *fl_agent_link_get(struct fl_agent *a, bool poll)
{
	struct fl_agent_link *l;

	pthread_mutex_lock(&a->mu);
	l = poll ? a->poll : a->rpc;
	if (l != NULL)
		atomic_fetch_add(&l->refs, 1);
	pthread_mutex_unlock(&a->mu);
	return l;
}

void fl_agent_link_unref(struct fl_agent_link *l)
{
	if (l != NULL && atomic_fetch_sub(&l->refs, 1) == 1) {
		fl_client_free(l->client);
		free(l->url);
		free(l);
	}
}

static struct fl_agent_link *link_new(struct fl_agent *a, const struct fl_agent_config *c,
                                      char *errbuf)
{
	struct fl_agent_link *l = fl_calloc(1, sizeof(*l));

	atomic_init(&l->refs, 1);
	l->url = fl_strdup(c->wire.coordinator_url);
	if (fl_client_new(a->envelope, l->url,
	                  (const uint8_t(*)[FL_PEER_KEY_LEN])c->wire.coordinator_public_keys.keys,
	                  c->wire.coordinator_public_keys.n, &l->client, errbuf) != FL_OK) {
		free(l->url);
		free(l);
		return NULL;
	}
	return l;
}

bool fl_agent_sleep(struct fl_agent *a, int64_t ms)
{
	int64_t until = fl_now_ms() + ms;
	bool going;

	pthread_mutex_lock(&a->mu);
	while (!a->stopping && fl_now_ms() < until) {
		int64_t left = until - fl_now_ms();
		struct timespec ts = fl_timespec_in(CLOCK_REALTIME, left > 200 ? 200 : left);

		pthread_cond_timedwait(&a->changed, &a->mu, &ts);
	}
	going = !a->stopping;
	pthread_mutex_unlock(&a->mu);
	return going;
}

/* ---- the pool's hooks ---- */

static void reported(void *arg)
{
	struct fl_agent *a = arg;

	pthread_mutex_lock(&a->mu);
	a->kick_sender = true;
	pthread_cond_broadcast(&a->changed);
	pthread_mutex_unlock(&a->mu);
}

/* ---- opening ---- */

static void apply_log_settings(const struct fl_agent_config *c)
{
	fl_log_set_level((enum fl_log_level)c->log_level);
	fl_log_set_json(c->log_json);
}

static void block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* state_dir: created 0700 if missing; never writable by others; locked. */
static enum fl_err open_state(struct fl_agent *a, const char *dir, char *errbuf)
{
	struct fl_buf path = FL_BUF_INIT;
	struct flock fl;
	struct stat st;
	char e[128];
	enum fl_err rv = FL_OK;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return fl_errf(errbuf, FL_EIO, "cannot create state_dir '%s': %s", dir,
		               fl_err_errno(errno, e, sizeof(e)));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return fl_errf(errbuf, FL_EIO, "state_dir '%s' is not a folder", dir);
	if ((st.st_mode & 022) != 0)
		return fl_errf(
		    errbuf, FL_EIO,
		    "refusing state_dir '%s': writable by others (mode %04o); chmod go-w it", dir,
		    (unsigned)(st.st_mode & 07777));
	/* whoever owns it can reset the ledger: the agent's user or root, as for
	 * the file holding the trust roots */
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return fl_errf(
		    errbuf, FL_EIO,
		    "refusing state_dir '%s': owned by uid %u, neither this agent's user "
		    "(uid %u) nor root; chown it",
		    dir, (unsigned)st.st_uid, (unsigned)geteuid());
	fl_buf_printf(&path, "%s/agent.lock", dir);
	a->lock_fd = open(path.data, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (a->lock_fd < 0) {
		rv = fl_errf(errbuf, FL_EIO, "cannot open '%s': %s", path.data,
		             fl_err_errno(errno, e, sizeof(e)));
		goto out;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(a->lock_fd, F_SETLK, &fl) != 0)
		rv = fl_errf(errbuf, FL_EIO, "state_dir '%s' is in use by another flotilla-agent",
		             dir);
out:
	fl_buf_fini(&path);
	return rv;
}

static bool file_exists(const char *dir, const char *name)
{
	struct fl_buf path = FL_BUF_INIT;
	struct stat st;
	bool yes;

	fl_buf_printf(&path, "%s/%s", dir, name);
	yes = stat(path.data, &st) == 0;
	fl_buf_fini(&path);
	return yes;
}

/* Whether path is a file holding at least a record file's header. */
static bool file_has_header(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && st.st_size >= FL_RECFILE_MAGIC_LEN;
}

static enum fl_err open_wire(struct fl_agent *a, const struct fl_agent_config *c, bool ran_before,
                             char *errbuf)
{
	enum fl_err rv;
	size_t i;

	if ((rv = fl_key_file_load(c->wire.key_file, FL_KEY_AGENT, &a->key, errbuf)) != FL_OK)
		return rv;
	a->identity = fl_identity_new_from_seed(a->key.seed);
	if (a->identity == NULL)
		return fl_errf(errbuf, FL_EIO, "cannot set up the agent's identity");
	rv = fl_peers_new(a->identity, c->wire.peers_state_file, 0,
	                  ran_before ? FL_PEERS_MUST_EXIST : 0, &a->peers, errbuf);
	if (rv != FL_OK)
		return rv;
	for (i = 0; i < c->wire.coordinator_public_keys.n; i++) {
		char name[48];

		snprintf(name, sizeof(name), "coordinator-%zu", i + 1);
		if ((rv = fl_peers_add(a->peers, c->wire.coordinator_public_keys.keys[i],
		                       FL_PEER_COORDINATOR, name, errbuf)) != FL_OK) {
			fl_err_prefix(errbuf, "coordinator_public_keys[%zu]", i);
			return rv;
		}
	}
	a->envelope = fl_envelope_new(a->identity, a->peers);
	fl_envelope_set_skew_ms(a->envelope, c->wire.clock_skew_ms);
	fl_envelope_set_max_size(a->envelope, (size_t)c->wire.max_message_size);
	fl_envelope_set_enroll_rate(a->envelope, 0, 0); /* agents take no enrollments */
	return FL_OK;
}

enum fl_err fl_agent_open(const char *config_path, struct fl_agent **out, int *code, char *errbuf)
{
	struct fl_agent *a = fl_calloc(1, sizeof(*a));
	struct fl_worker_deps deps;
	struct fl_discovery_stats st;
	struct fl_buf path = FL_BUF_INIT;
	char host[HOSTNAME_MAX_];
	struct fl_agent_config *c;
	bool ran_before;
	enum fl_err rv;

	*out = NULL;
	*code = FL_AGENT_EXIT_ERROR;
	block_signals(); /* before any thread (nng's too) exists */
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->changed, NULL);
	atomic_init(&a->house_stop, false);
	a->lock_fd = -1;
	a->config_path = fl_strdup(config_path);
	a->cfg = fl_calloc(1, sizeof(*a->cfg));
	atomic_init(&a->cfg->refs, 1);
	if ((rv = fl_agent_config_load(config_path, &a->cfg->c, errbuf)) != FL_OK) {
		*code = FL_AGENT_EXIT_CONFIG;
		goto fail;
	}
	c = &a->cfg->c;
	apply_log_settings(c);
	if (c->agent_name != NULL) {
		a->agent_id = fl_strdup(c->agent_name);
	} else {
		if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "agent");
		host[sizeof(host) - 1] = '\0';
		a->agent_id = fl_strdup(host);
	}

	if ((rv = open_state(a, c->state_dir, errbuf)) != FL_OK)
		goto fail;
	ran_before = file_exists(c->state_dir, "journal");
	a->enrolled = file_exists(c->state_dir, "enrolled");
	if ((rv = open_wire(a, c, ran_before, errbuf)) != FL_OK) {
		*code = FL_AGENT_EXIT_CONFIG;
		goto fail;
	}
	fl_buf_printf(&path, "%s/journal", c->state_dir);
	if ((rv = fl_journal_open(path.data, &a->journal, errbuf)) != FL_OK)
		goto fail;
	fl_buf_reset(&path);
	fl_buf_printf(&path, "%s/ledger", c->state_dir);
	/* a journal that gave out ids says the agent ran before: its ledger
	 * must be there, or it would forget what it ran and which release each
	 * tenant runs (and take an older one again) */
	if (fl_journal_max_id(a->journal) > 0 && !file_has_header(path.data)) {
		rv = fl_errf(errbuf, FL_ESTATE,
		             "state_dir '%s': the ledger is missing or empty, but the journal says "
		             "this agent ran before: it would forget which assignments it ran and "
		             "which release each tenant runs; restore '%s', or move the whole "
		             "state_dir away to start over",
		             c->state_dir, path.data);
		goto fail;
	}
	if ((rv = fl_ledger_open(path.data, &a->ledger, errbuf)) != FL_OK)
		goto fail;
	fl_buf_reset(&path);
	fl_buf_printf(&path, "%s/releases", c->state_dir);
	if ((rv = fl_releases_open(path.data, &a->releases, errbuf)) != FL_OK)
		goto fail;
	fl_releases_set_trust(
	    a->releases, (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])c->wire.trusted_release_keys.keys,
	    c->wire.trusted_release_keys.n, c->project_id, (size_t)c->wire.max_release_size);

	if ((rv = fl_discovery_run(c, NULL, NULL, &a->tenants, &st, errbuf)) != FL_OK) {
		*code = FL_AGENT_EXIT_CONFIG;
		goto fail;
	}
	a->discovered_at_ms = fl_now_ms();
	fl_log_info("agent",
	            "'%s' for project '%s': %zu tenant%s (%zu discovered, %zu rule%s "
	            "failed), state in '%s'",
	            a->agent_id, c->project_id, a->tenants->n, a->tenants->n == 1 ? "" : "s",
	            st.found, st.failed, st.failed == 1 ? "" : "s", c->state_dir);

	if ((a->poll = link_new(a, c, errbuf)) == NULL ||
	    (a->rpc = link_new(a, c, errbuf)) == NULL) {
		rv = FL_EINVAL;
		*code = FL_AGENT_EXIT_CONFIG;
		goto fail;
	}

	memset(&deps, 0, sizeof(deps));
	deps.journal = a->journal;
	deps.ledger = a->ledger;
	deps.releases = a->releases;
	deps.agent_id = a->agent_id;
	deps.threads = (size_t)c->max_parallel;
	deps.hooks.arg = a;
	deps.hooks.acquire = fl_agent_acquire;
	deps.hooks.release = fl_agent_release;
	deps.hooks.fetch = fl_pull_fetch;
	deps.hooks.reported = reported;
	fl_worker_recover(&deps);
	a->worker = fl_worker_new(&deps);
	fl_buf_fini(&path);
	*out = a;
	*code = FL_AGENT_EXIT_OK;
	return FL_OK;
fail:
	fl_buf_fini(&path);
	fl_agent_free(a);
	return rv;
}

/* ---- reloads and discovery ---- */

static bool same_tenants(const struct fl_tenants *x, const struct fl_tenants *y)
{
	size_t i, k;

	if (x->n != y->n)
		return false;
	for (i = 0; i < x->n; i++) {
		const struct fl_tenant *a = &x->items[i], *b = &y->items[i];

		if (strcmp(a->id, b->id) != 0 || strcmp(a->server, b->server) != 0 ||
		    strcmp(a->database, b->database) != 0 ||
		    (a->schema == NULL) != (b->schema == NULL) ||
		    (a->schema && strcmp(a->schema, b->schema) != 0) || a->labels.n != b->labels.n)
			return false;
		for (k = 0; k < a->labels.n; k++)
			if (strcmp(a->labels.items[k].key, b->labels.items[k].key) != 0 ||
			    strcmp(a->labels.items[k].value, b->labels.items[k].value) != 0)
				return false;
	}
	return true;
}

/* Swap in new tenants (taking the reference); ask for a Hello if they differ. */
static void set_tenants(struct fl_agent *a, struct fl_tenants *t)
{
	struct fl_tenants *old;
	bool changed;

	pthread_mutex_lock(&a->mu);
	old = a->tenants;
	changed = !same_tenants(old, t);
	a->tenants = t;
	a->discovered_at_ms = fl_now_ms();
	if (changed) {
		a->need_hello = true;
		pthread_cond_broadcast(&a->changed);
	}
	pthread_mutex_unlock(&a->mu);
	if (changed)
		fl_log_info("agent", "tenants changed: %zu now (were %zu)", t->n, old->n);
	fl_tenants_unref(old);
}

enum fl_err fl_agent_reload(struct fl_agent *a, char *errbuf)
{
	struct fl_agent_cfg *next = fl_calloc(1, sizeof(*next)), *old;
	struct fl_agent_snapshot cur;
	struct fl_tenants *t = NULL;
	enum fl_err rv;

	atomic_init(&next->refs, 1);
	if ((rv = fl_agent_config_load(a->config_path, &next->c, errbuf)) != FL_OK) {
		free(next);
		return rv;
	}
	fl_agent_acquire(a, &cur);
	rv = fl_config_check_reload(fl_agent_config_table, cur.cfg, &next->c, errbuf);
	if (rv == FL_OK)
		rv = fl_discovery_run(&next->c, cur.tenants, NULL, &t, NULL, errbuf);
	fl_agent_release(a, &cur);
	if (rv != FL_OK) {
		cfg_unref(next);
		return rv;
	}
	pthread_mutex_lock(&a->mu);
	old = a->cfg;
	a->cfg = next;
	pthread_mutex_unlock(&a->mu);
	cfg_unref(old);
	apply_log_settings(&next->c);
	fl_releases_set_trust(
	    a->releases,
	    (const uint8_t(*)[FL_KEY_PUBLIC_BYTES])next->c.wire.trusted_release_keys.keys,
	    next->c.wire.trusted_release_keys.n, next->c.project_id,
	    (size_t)next->c.wire.max_release_size);
	fl_envelope_set_skew_ms(a->envelope, next->c.wire.clock_skew_ms);
	set_tenants(a, t);
	return FL_OK;
}

static void rediscover(struct fl_agent *a)
{
	struct fl_agent_snapshot cur;
	struct fl_tenants *t = NULL;
	char err[FL_ERRBUF_SIZE] = "";

	fl_agent_acquire(a, &cur);
	if (fl_discovery_run(cur.cfg, cur.tenants, NULL, &t, NULL, err) != FL_OK)
		fl_log_error("agent", "discovery: %s; keeping the tenants as they were", err);
	fl_agent_release(a, &cur);
	if (t != NULL)
		set_tenants(a, t);
}

/* ---- the housekeeping thread: signals and timers ---- */

/* Tell systemd (Type=notify) where we are; a failure is only logged. */
static void notify(const char *state)
{
	char eb[FL_ERRBUF_SIZE];

	if (fl_sd_notify(state, eb) != FL_OK)
		fl_log_warn("systemd", "%s", eb);
}

static void *housekeeping_main(void *arg)
{
	struct fl_agent *a = arg;
	int64_t synced = fl_now_ms();
	struct timespec tick = {0, 200 * 1000000L};
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	while (!atomic_load(&a->house_stop)) {
		char err[FL_ERRBUF_SIZE] = "";
		int sig = sigtimedwait(&set, NULL, &tick);
		int64_t now = fl_now_ms(), interval;
		bool stopping;

		if (sig == SIGTERM || sig == SIGINT) {
			struct fl_agent_link *l;

			pthread_mutex_lock(&a->mu);
			stopping = a->stopping;
			if (!stopping)
				fl_log_info("agent", "%s: stopping: taking no more work",
				            sig == SIGTERM ? "SIGTERM" : "SIGINT");
			a->stopping = true;
			l = a->poll; /* referenced: a redirect may replace it meanwhile */
			if (l != NULL)
				atomic_fetch_add(&l->refs, 1);
			pthread_cond_broadcast(&a->changed);
			pthread_mutex_unlock(&a->mu);
			if (!stopping)
				notify("STOPPING=1");
			if (!stopping && l != NULL)
				fl_client_close(l->client); /* ends the long poll now */
			fl_agent_link_unref(l);
			if (stopping) { /* again: the operator wants out now */
				fl_log_warn("agent", "%s again: canceling running work",
				            sig == SIGTERM ? "SIGTERM" : "SIGINT");
				fl_worker_cancel_all(a->worker);
			}
		} else if (sig == SIGHUP) {
			notify("RELOADING=1");
			if (fl_agent_reload(a, err) == FL_OK)
				fl_log_info("agent", "SIGHUP: reloaded '%s'", a->config_path);
			else
				fl_log_error("agent", "SIGHUP: keeping the running settings: %s",
				             err);
			notify("READY=1");
		}
		pthread_mutex_lock(&a->mu);
		interval = a->cfg->c.discovery_interval_ms;
		stopping = a->stopping;
		pthread_mutex_unlock(&a->mu);
		if (!stopping && a->cfg->c.discovery.n > 0 && now - a->discovered_at_ms >= interval)
			rediscover(a);
		if (now - synced >= SYNC_EVERY_MS) {
			if (fl_peers_sync(a->peers, err) != FL_OK)
				fl_log_warn("agent", "%s", err);
			synced = now;
		}
	}
	return NULL;
}

int fl_agent_run(struct fl_agent *a)
{
	const struct fl_agent_config *c;
	struct fl_agent_snapshot snap;
	bool cancel;
	int64_t timeout;

	if (pthread_create(&a->housekeeping, NULL, housekeeping_main, a) != 0 ||
	    pthread_create(&a->sender, NULL, fl_pull_sender_main, a) != 0)
		abort();
	a->housekeeping_started = a->sender_started = true;
	fl_log_info("agent", "running: coordinator '%s'", a->rpc->url);

	fl_pull_run(a);

	fl_agent_acquire(a, &snap);
	c = snap.cfg;
	cancel = c->shutdown_mode == FL_SHUTDOWN_CANCEL;
	timeout = c->shutdown_timeout_ms;
	fl_agent_release(a, &snap);
	fl_log_info("agent", "shutting down: %s running work", cancel ? "canceling" : "finishing");
	fl_worker_shutdown(a->worker, cancel, timeout);
	fl_pull_flush(a, FLUSH_MAX_MS);
	fl_log_info("agent", "stopped: %zu report%s left in the journal for the next start",
	            fl_journal_count(a->journal), fl_journal_count(a->journal) == 1 ? "" : "s");
	return FL_AGENT_EXIT_OK;
}

void fl_agent_free(struct fl_agent *a)
{
	char err[FL_ERRBUF_SIZE];

	if (a == NULL)
		return;
	atomic_store(&a->house_stop, true);
	pthread_mutex_lock(&a->mu);
	a->stopping = true;
	pthread_cond_broadcast(&a->changed);
	pthread_mutex_unlock(&a->mu);
	/* before the pool goes: a second SIGTERM reaches it from there */
	if (a->housekeeping_started)
		pthread_join(a->housekeeping, NULL);
	fl_worker_free(a->worker);
	/* calls in flight end with FL_ECANCELED */
	if (a->rpc)
		fl_client_close(a->rpc->client);
	if (a->poll)
		fl_client_close(a->poll->client);
	if (a->sender_started)
		pthread_join(a->sender, NULL);
	fl_agent_link_unref(a->poll);
	fl_agent_link_unref(a->rpc);
	fl_releases_close(a->releases);
	fl_ledger_close(a->ledger);
	fl_journal_close(a->journal);
	fl_envelope_free(a->envelope);
	if (a->peers != NULL && fl_peers_sync(a->peers, err) != FL_OK)
		fl_log_warn("agent", "%s", err);
	fl_peers_free(a->peers);
	fl_identity_free(a->identity);
	fl_key_fini(&a->key);
	fl_tenants_unref(a->tenants);
	cfg_unref(a->cfg);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	pthread_cond_destroy(&a->changed);
	pthread_mutex_destroy(&a->mu);
	free(a->agent_id);
	free(a->config_path);
	free(a);
}

/* ---- --check-config ---- */

static void to_stdout(void *arg, enum fl_log_level level, const char *context, const char *about,
                      const char *msg)
{
	(void)arg;
	(void)context;
	printf("  %s: %s%s%s\n", level <= FL_LOG_WARN ? "warning" : "note", about ? about : "",
	       about ? ": " : "", msg);
}

int fl_agent_check_config(const char *config_path)
{
	struct fl_agent_config c;
	struct fl_key key = {0};
	struct fl_tenants *t = NULL;
	struct fl_discovery_stats st;
	struct fl_logger log = {FL_LOG_WARN, to_stdout, NULL, NULL};
	char err[FL_ERRBUF_SIZE] = "", id[FL_KEY_ID_LEN + 1], labels[512];
	size_t i;

	if (fl_agent_config_load(config_path, &c, err) != FL_OK) {
		fprintf(stderr, "flotilla-agent: %s\n", err);
		return FL_AGENT_EXIT_CONFIG;
	}
	if (fl_key_file_load(c.wire.key_file, FL_KEY_AGENT, &key, err) != FL_OK) {
		fprintf(stderr, "flotilla-agent: %s\n", err);
		fl_agent_config_fini(&c);
		return FL_AGENT_EXIT_CONFIG;
	}
	fl_key_id(key.pk, id);
	printf("config '%s' is valid\n", config_path);
	printf("agent key %s, project '%s', state in '%s'\n", id, c.project_id, c.state_dir);
	printf("coordinator '%s', %zu pinned key%s; %zu trusted release key%s\n",
	       c.wire.coordinator_url, c.wire.coordinator_public_keys.n,
	       c.wire.coordinator_public_keys.n == 1 ? "" : "s", c.wire.trusted_release_keys.n,
	       c.wire.trusted_release_keys.n == 1 ? "" : "s");
	fl_key_fini(&key);
	if (c.discovery.n > 0)
		printf("discovery (%zu rule%s):\n", c.discovery.n, c.discovery.n == 1 ? "" : "s");
	if (fl_discovery_run(&c, NULL, &log, &t, &st, err) != FL_OK) {
		fprintf(stderr, "flotilla-agent: %s\n", err);
		fl_agent_config_fini(&c);
		return FL_AGENT_EXIT_CONFIG;
	}
	if (st.failed > 0)
		printf("  %zu discovery rule%s could not reach %s database: its tenants are not "
		       "listed\n",
		       st.failed, st.failed == 1 ? "" : "s", st.failed == 1 ? "its" : "their");
	printf("tenants (%zu):\n", t->n);
	for (i = 0; i < t->n; i++) {
		const struct fl_tenant *x = &t->items[i];

		printf("  %s  server=%s database=%s%s%s  %s\n", x->id, x->server, x->database,
		       x->schema ? " schema=" : "", x->schema ? x->schema : "",
		       fl_labels_format(&x->labels, labels, sizeof(labels)));
	}
	fl_tenants_unref(t);
	fl_agent_config_fini(&c);
	return FL_AGENT_EXIT_OK;
}
