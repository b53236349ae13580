#include "postgres.h"

#include "pg_apply.h"
#include "pg_conn.h"
#include "pg_fingerprint.h"
#include "pg_history.h"

static struct fl_conn *pg_conn_new(const struct fl_conn_opts *opts)
{
	return fl_pg_conn_new(opts);
}

static enum fl_err pg_connect(struct fl_conn *c, const char *url, char *errbuf)
{
	return fl_pg_conn_connect(c, url, errbuf);
}

static void pg_close(struct fl_conn *c)
{
	fl_pg_conn_close(c);
}

static enum fl_err pg_lock(struct fl_conn *c, int64_t wait_ms, char *errbuf)
{
	return fl_pg_conn_lock(c, wait_ms, errbuf);
}

static enum fl_err pg_unlock(struct fl_conn *c, char *errbuf)
{
	return fl_pg_conn_unlock(c, errbuf);
}

static enum fl_err pg_lock_held(struct fl_conn *c, bool *held, char *errbuf)
{
	return fl_pg_conn_lock_held(c, held, errbuf);
}

static enum fl_err pg_history_read(struct fl_conn *c, struct fl_history *out, char *errbuf)
{
	return fl_pg_history_read(c, out, errbuf);
}

static enum fl_err pg_history_ensure(struct fl_conn *c, char *errbuf)
{
	return fl_pg_history_ensure(c, errbuf);
}

static enum fl_err pg_apply(struct fl_conn *c, const struct fl_migration *m,
                            enum fl_apply_mode mode, const struct fl_sql_script *script,
                            const struct fl_apply_opts *opts, struct fl_apply_result *res)
{
	return fl_pg_apply_run(c, m, mode, script, opts, res);
}

static enum fl_err pg_revert(struct fl_conn *c, const struct fl_migration *m,
                             enum fl_apply_mode mode, const struct fl_sql_script *down,
                             const struct fl_apply_opts *opts, struct fl_apply_result *res)
{
	return fl_pg_apply_revert(c, m, mode, down, opts, res);
}

static enum fl_err pg_mark_applied(struct fl_conn *c, const char *name, const char *checksum,
                                   char *errbuf)
{
	return fl_pg_history_mark_applied(c, name, checksum, errbuf);
}

static enum fl_err pg_mark_rolled_back(struct fl_conn *c, const char *name, char *errbuf)
{
	return fl_pg_history_mark_rolled_back(c, name, errbuf);
}

static enum fl_err pg_fingerprint(struct fl_conn *c, struct fl_buf *dump,
                                  char hex[FL_CHECKSUM_HEX_LEN + 1], char *errbuf)
{
	return fl_pg_fingerprint_compute(c, dump, hex, errbuf);
}

static enum fl_err pg_schema_empty(struct fl_conn *c, bool *empty, char *errbuf)
{
	return fl_pg_schema_empty(c, empty, errbuf);
}

static void pg_cancel(struct fl_conn *c)
{
	fl_pg_conn_cancel(c);
}

const struct fl_driver_ops fl_postgres_driver = {
    .name = "postgresql",
    .conn_new = pg_conn_new,
    .connect = pg_connect,
    .close = pg_close,
    .lock = pg_lock,
    .unlock = pg_unlock,
    .lock_held = pg_lock_held,
    .history_read = pg_history_read,
    .history_ensure = pg_history_ensure,
    .schema_empty = pg_schema_empty,
    .apply = pg_apply,
    .revert = pg_revert,
    .mark_applied = pg_mark_applied,
    .mark_rolled_back = pg_mark_rolled_back,
    .fingerprint = pg_fingerprint,
    .cancel = pg_cancel,
};
