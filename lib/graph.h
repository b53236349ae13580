/*
 * The migration graph: a DAG over a set. By default each migration follows the
 * previous one in Prisma's order; `-- flotilla:requires <id>` adds edges. The
 * sort is deterministic (ties broken by Prisma's order), and a cycle is
 * reported with the ids on it: "cycle: a -> b -> a".
 */
#ifndef FL_GRAPH_H
#define FL_GRAPH_H

#include "migration.h"

/*
 * Fill each item's deps and reorder set->items into apply order. Items must
 * arrive in Prisma's folder order. Errors: FL_EGRAPH (duplicate id, unknown
 * requires, cycle), with the detail in errbuf; the set is unchanged on error.
 */
enum fl_err fl_graph_sort(struct fl_migration_set *set, char *errbuf)
	__attribute__((warn_unused_result));

/* Write the graph as Graphviz dot (true) or as an indented text list. */
struct fl_buf;
void fl_graph_render(const struct fl_migration_set *set, int dot, struct fl_buf *out);

#endif
