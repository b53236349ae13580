/*
 * The migration graph: a DAG over a set. By default each migration follows the
 * previous one in Prisma's order; `-- flotilla:requires <id>` adds edges. The
 * sort is deterministic (ties broken by Prisma's order), and a cycle is
 * reported with the ids on it in apply order ("a -> b": a must run before b),
 * starting from the one first in Prisma's order: "cycle: a -> b -> a".
 */
#ifndef FL_GRAPH_H
#define FL_GRAPH_H

#include "migration.h"

/*
 * Fill each item's deps and reorder set->items into apply order. Items must
 * arrive in Prisma's folder order, with deps NULL or from an earlier sort.
 * Errors: FL_EGRAPH (duplicate id, unknown requires, cycle), with the detail
 * in errbuf; the set is unchanged on error.
 */
enum fl_err fl_graph_sort(struct fl_migration_set *set, char *errbuf)
    __attribute__((warn_unused_result));

/*
 * Append the graph to out as Graphviz dot (dot != 0; edges point from a
 * migration to those that depend on it, requires edges dashed) or as text:
 * one line per migration in apply order, "id  (requires a, b)". Output is cut
 * short if out has a max.
 */
struct fl_buf;
void fl_graph_render(const struct fl_migration_set *set, int dot, struct fl_buf *out);

#endif
