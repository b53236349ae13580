/* Memory for one reply (arena.h). */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

void fl_arena_init(struct fl_arena *a)
{
	memset(a, 0, sizeof(*a));
}

void fl_arena_fini(struct fl_arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->blocks[i]);
	free(a->blocks);
	memset(a, 0, sizeof(*a));
}

void *fl_arena_alloc(struct fl_arena *a, size_t n)
{
	void *p = fl_calloc(1, n ? n : 1);

	a->blocks = fl_grow(a->blocks, &a->cap, a->n + 1, sizeof(*a->blocks));
	a->blocks[a->n++] = p;
	return p;
}

char *fl_arena_strdup(struct fl_arena *a, const char *s)
{
	return fl_arena_memdup(a, s ? s : "", strlen(s ? s : "") + 1);
}

void *fl_arena_memdup(struct fl_arena *a, const void *p, size_t n)
{
	void *q = fl_arena_alloc(a, n);

	if (n)
		memcpy(q, p, n);
	return q;
}

void fl_arena_push(struct fl_arena *a, void *arr_ptr, size_t *n, void *item)
{
	void ***arr = arr_ptr;

	/* Grow at powers of two: a new array when n reaches one. */
	if (*n == 0 || (*n & (*n - 1)) == 0) {
		void **bigger = fl_arena_alloc(a, (*n ? *n * 2 : 1) * sizeof(void *));

		if (*n)
			memcpy(bigger, *arr, *n * sizeof(void *));
		*arr = bigger;
	}
	(*arr)[(*n)++] = item;
}
