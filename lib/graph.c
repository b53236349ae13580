/*
 * The migration graph. Node i (in Prisma's order) depends on node i-1 and on
 * every id it requires. The sort is Kahn's algorithm taking, among the nodes
 * whose dependencies are all placed, the one first in Prisma's order, so the
 * result is deterministic. Since every node follows its predecessor, an
 * acyclic graph always sorts into Prisma's order; a `requires` pointing
 * forward closes a cycle, which we report with its ids.
 *
 * Everything is checked on scratch arrays before the set is touched, so a
 * failed sort leaves the set as it was.
 */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mem.h"

struct by_id {
	const char *id;
	size_t idx;
};

static int cmp_by_id(const void *x, const void *y)
{
	const struct by_id *a = x, *b = y;
	int r = strcmp(a->id, b->id);

	if (r)
		return r;
	return (a->idx > b->idx) - (a->idx < b->idx);
}

static long lookup(const struct by_id *ids, size_t n, const char *id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(ids[mid].id, id);

		if (r == 0)
			return (long)ids[mid].idx;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* A binary min-heap of node indices: the ready nodes, first in Prisma's order on top. */
struct heap {
	size_t *v;
	size_t n;
};

static void heap_push(struct heap *h, size_t x)
{
	size_t i = h->n++;

	while (i > 0 && h->v[(i - 1) / 2] > x) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = x;
}

static size_t heap_pop(struct heap *h)
{
	size_t top = h->v[0], x = h->v[--h->n], i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1] < h->v[c])
			c++;
		if (x <= h->v[c])
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = x;
	return top;
}

/* Scratch state of one sort, indexed by position in Prisma's order. */
struct work {
	size_t n;
	struct by_id *ids;
	size_t **deps; /* deps[i]: what i depends on */
	size_t *n_deps;
	size_t *order; /* the sorted positions */
	size_t placed;
};

static void work_fini(struct work *w)
{
	size_t i;

	if (w->deps)
		for (i = 0; i < w->n; i++)
			free(w->deps[i]);
	free(w->deps);
	free(w->n_deps);
	free(w->ids);
	free(w->order);
}

/*
 * deps[i]: the predecessor, then each required node once, in the order required.
 * added[d] == i + 1 marks d as already among node i's deps, so a migration with r
 * requires costs O(r log n), not O(r^2).
 */
static enum fl_err build_deps(struct work *w, const struct fl_migration *items, char *errbuf)
{
	size_t *added = fl_calloc(w->n, sizeof(size_t));
	enum fl_err rv = FL_OK;
	size_t i, j;

	for (i = 0; i < w->n; i++) {
		const struct fl_migration *m = &items[i];

		w->deps[i] = fl_malloc((m->n_requires + 1) * sizeof(size_t));
		if (i > 0) {
			w->deps[i][w->n_deps[i]++] = i - 1;
			added[i - 1] = i + 1;
		}
		for (j = 0; j < m->n_requires; j++) {
			long d = lookup(w->ids, w->n, m->requires[j]);

			if (d < 0) {
				rv = fl_errf(errbuf, FL_EGRAPH,
				             "migration '%s' requires unknown '%s'", m->id,
				             m->requires[j]);
				goto out;
			}
			if (added[(size_t)d] != i + 1) {
				added[(size_t)d] = i + 1;
				w->deps[i][w->n_deps[i]++] = (size_t)d;
			}
		}
	}
out:
	free(added);
	return rv;
}

static void kahn(struct work *w)
{
	size_t *indeg = fl_calloc(w->n, sizeof(size_t));
	size_t *succ_start = fl_calloc(w->n + 1, sizeof(size_t));
	size_t *succ, *fill, total = 0, i, k;
	struct heap h;

	for (i = 0; i < w->n; i++) {
		indeg[i] = w->n_deps[i];
		total += w->n_deps[i];
		for (k = 0; k < w->n_deps[i]; k++)
			succ_start[w->deps[i][k] + 1]++;
	}
	for (i = 0; i < w->n; i++)
		succ_start[i + 1] += succ_start[i];
	succ = fl_malloc((total ? total : 1) * sizeof(size_t));
	fill = fl_malloc(w->n * sizeof(size_t));
	memcpy(fill, succ_start, w->n * sizeof(size_t));
	for (i = 0; i < w->n; i++)
		for (k = 0; k < w->n_deps[i]; k++)
			succ[fill[w->deps[i][k]]++] = i;

	h.v = fl_malloc(w->n * sizeof(size_t));
	h.n = 0;
	for (i = 0; i < w->n; i++)
		if (indeg[i] == 0)
			heap_push(&h, i);
	while (h.n) {
		size_t v = heap_pop(&h);

		w->order[w->placed++] = v;
		for (k = succ_start[v]; k < succ_start[v + 1]; k++)
			if (--indeg[succ[k]] == 0)
				heap_push(&h, succ[k]);
	}
	free(h.v);
	free(fill);
	free(succ);
	free(succ_start);
	free(indeg);
}

/*
 * Name a cycle among the nodes Kahn could not place. Each of them waits on
 * another unplaced node, so walking "depends on" edges from any of them must
 * come back to a node already seen. Reported in apply order ("a -> b": a
 * must run before b), starting at the node first in Prisma's order.
 */
static enum fl_err report_cycle(const struct work *w, const struct fl_migration *items,
                                char *errbuf)
{
	bool *placed = fl_calloc(w->n, sizeof(bool));
	long *seen_at = fl_malloc(w->n * sizeof(long));
	size_t *path = fl_malloc(w->n * sizeof(size_t));
	size_t len = 0, i, v, start, first, clen, min_k;
	struct fl_buf b = FL_BUF_INIT;
	enum fl_err rv;

	for (i = 0; i < w->placed; i++)
		placed[w->order[i]] = true;
	for (i = 0; i < w->n; i++)
		seen_at[i] = -1;
	for (v = 0; placed[v]; v++)
		;
	while (seen_at[v] < 0) {
		seen_at[v] = (long)len;
		path[len++] = v;
		for (i = 0; placed[w->deps[v][i]]; i++)
			;
		v = w->deps[v][i];
	}
	first = (size_t)seen_at[v];
	clen = len - first;
	/* path[first..len) runs against apply order; walk it backwards. */
	min_k = 0;
	for (i = 0; i < clen; i++)
		if (path[len - 1 - i] < path[len - 1 - min_k])
			min_k = i;
	fl_buf_puts(&b, "cycle: ");
	for (i = 0; i <= clen; i++) {
		start = (min_k + i) % clen;
		fl_buf_printf(&b, "%s%s", i ? " -> " : "", items[path[len - 1 - start]].id);
	}
	rv = fl_errf(errbuf, FL_EGRAPH, "%s", fl_buf_str(&b));
	fl_buf_fini(&b);
	free(path);
	free(seen_at);
	free(placed);
	return rv;
}

enum fl_err fl_graph_sort(struct fl_migration_set *set, char *errbuf)
{
	struct work w;
	struct fl_migration *items;
	size_t *pos = NULL, i, k;
	enum fl_err rv = FL_OK;

	memset(&w, 0, sizeof(w));
	if (set->count == 0)
		return FL_OK;
	w.n = set->count;
	w.ids = fl_malloc(w.n * sizeof(*w.ids));
	for (i = 0; i < w.n; i++) {
		w.ids[i].id = set->items[i].id;
		w.ids[i].idx = i;
	}
	qsort(w.ids, w.n, sizeof(*w.ids), cmp_by_id);
	for (i = 1; i < w.n; i++) {
		if (strcmp(w.ids[i - 1].id, w.ids[i].id) == 0) {
			rv = fl_errf(errbuf, FL_EGRAPH, "duplicate migration id '%s'", w.ids[i].id);
			goto out;
		}
	}
	w.deps = fl_calloc(w.n, sizeof(*w.deps));
	w.n_deps = fl_calloc(w.n, sizeof(*w.n_deps));
	if ((rv = build_deps(&w, set->items, errbuf)) != FL_OK)
		goto out;
	w.order = fl_malloc(w.n * sizeof(size_t));
	kahn(&w);
	if (w.placed < w.n) {
		rv = report_cycle(&w, set->items, errbuf);
		goto out;
	}

	/* Commit: reorder the items and give each its deps as new positions. */
	pos = fl_malloc(w.n * sizeof(size_t));
	for (i = 0; i < w.n; i++)
		pos[w.order[i]] = i;
	items = fl_malloc(w.n * sizeof(*items));
	for (i = 0; i < w.n; i++) {
		size_t from = w.order[i];

		items[i] = set->items[from];
		free(items[i].deps);
		items[i].deps = w.deps[from];
		items[i].n_deps = w.n_deps[from];
		w.deps[from] = NULL;
		for (k = 0; k < items[i].n_deps; k++)
			items[i].deps[k] = pos[items[i].deps[k]];
	}
	free(set->items);
	set->items = items;
out:
	free(pos);
	work_fini(&w);
	return rv;
}

static void dot_quoted(struct fl_buf *out, const char *s)
{
	fl_buf_puts(out, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fl_buf_puts(out, "\\");
		fl_buf_append(out, s, 1);
	}
	fl_buf_puts(out, "\"");
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* m's requires, sorted, in *sorted (caller frees), so that each lookup is O(log r). */
static void sort_requires(const struct fl_migration *m, char ***sorted)
{
	*sorted = fl_malloc((m->n_requires ? m->n_requires : 1) * sizeof(char *));
	if (m->n_requires == 0)
		return;
	memcpy(*sorted, m->requires, m->n_requires * sizeof(char *));
	qsort(*sorted, m->n_requires, sizeof(char *), cmp_str);
}

void fl_graph_render(const struct fl_migration_set *set, int dot, struct fl_buf *out)
{
	size_t i, k;

	if (!dot) {
		for (i = 0; i < set->count; i++) {
			const struct fl_migration *m = &set->items[i];

			fl_buf_puts(out, m->id);
			for (k = 0; k < m->n_requires; k++)
				fl_buf_printf(out, "%s%s", k ? ", " : "  (requires ",
				              m->requires[k]);
			fl_buf_puts(out, m->n_requires ? ")\n" : "\n");
		}
		return;
	}
	fl_buf_puts(out, "digraph migrations {\n\tnode [shape=box];\n");
	for (i = 0; i < set->count; i++) {
		fl_buf_puts(out, "\t");
		dot_quoted(out, set->items[i].id);
		fl_buf_puts(out, ";\n");
	}
	/* Edges point the way migrations are applied: dependency -> dependent. */
	for (i = 0; i < set->count; i++) {
		const struct fl_migration *m = &set->items[i];
		char **required;

		sort_requires(m, &required);
		for (k = 0; k < m->n_deps; k++) {
			const char *from = set->items[m->deps[k]].id;

			fl_buf_puts(out, "\t");
			dot_quoted(out, from);
			fl_buf_puts(out, " -> ");
			dot_quoted(out, m->id);
			fl_buf_puts(out, bsearch(&from, required, m->n_requires, sizeof(char *),
			                         cmp_str) != NULL
			                     ? " [style=dashed, label=\"requires\"];\n"
			                     : ";\n");
		}
		free(required);
	}
	fl_buf_puts(out, "}\n");
}
