#include "mode.h"

#include <string.h>

#include "log.h"

const char *fl_mode_name(enum fl_apply_mode mode)
{
	switch (mode) {
	case FL_APPLY_TRANSACTION:
		return "transaction";
	case FL_APPLY_STATEMENTS:
		return "statements";
	case FL_APPLY_SCRIPT:
		return "script";
	}
	return "unknown";
}

enum fl_err fl_mode_choose(const struct fl_migration *m, const char *sql, const char *which,
                           struct fl_sql_script *script, enum fl_apply_mode *mode,
                           const struct fl_logger *log, char *errbuf)
{
	char why[FL_ERRBUF_SIZE] = "";

	memset(script, 0, sizeof(*script));
	if (fl_sql_split(sql, script, why) != FL_OK) {
		if (m->no_transaction)
			return fl_errf(errbuf, FL_EPARSE,
			               "'%s/%s': %s (a no-transaction migration must parse to be "
			               "split into statements)",
			               m->path, which, why);
		/* Newer server syntax than our parser knows: run it as Prisma would. */
		fl_logger_warn(log, m->id,
		               "%s does not parse (%s); running it as one script, as Prisma does",
		               which, why);
		*mode = FL_APPLY_SCRIPT;
		return FL_OK;
	}
	if (m->no_transaction) {
		*mode = FL_APPLY_STATEMENTS;
		return FL_OK;
	}
	switch (fl_sql_shape_of(script)) {
	case FL_SQL_SHAPE_PLAIN:
		*mode = FL_APPLY_TRANSACTION;
		break;
	case FL_SQL_SHAPE_OWN_TRANSACTION:
	case FL_SQL_SHAPE_LONE_NO_TX:
		*mode = FL_APPLY_SCRIPT;
		break;
	case FL_SQL_SHAPE_MIXED_NO_TX: {
		int line = 0;

		for (size_t i = 0; i < script->count && line == 0; i++)
			if (script->stmts[i].flags & FL_SQL_NO_TX_BLOCK)
				line = script->stmts[i].line;
		fl_sql_script_fini(script);
		return fl_errf(
		    errbuf, FL_EPARSE,
		    "'%s/%s':%d: statement cannot run inside a transaction block together "
		    "with other statements; add '-- flotilla:no-transaction' at the top",
		    m->path, which, line);
	}
	}
	return FL_OK;
}
