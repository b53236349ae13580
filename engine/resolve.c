#include "resolve.h"

#include "session_internal.h"

enum fl_err fl_resolve_applied(struct fl_session *s, const char *id, char *errbuf)
{
	const struct fl_migration *m = fl_migration_set_find(s->set, id);

	if (m == NULL)
		return fl_errf(errbuf, FL_ENOENT,
		               "migration '%s' could not be found in '%s': give the whole folder "
		               "name",
		               id, s->set->dir);
	return fl_session_bookkeeping(s->driver->mark_applied(s->conn, id, m->checksum, errbuf));
}

enum fl_err fl_resolve_rolled_back(struct fl_session *s, const char *id, char *errbuf)
{
	enum fl_err rv;

	/* Records in our own table, which a history Prisma started lacks; with no
	 * history at all there is nothing to resolve, and the driver says so. */
	if (s->history.table_exists && (rv = fl_session_ensure_history(s, errbuf)) != FL_OK)
		return rv;
	return fl_session_bookkeeping(s->driver->mark_rolled_back(s->conn, id, errbuf));
}
