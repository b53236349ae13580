/*
 * Memory for one reply, freed all at once: the protobuf-c structs a handler
 * builds by hand (*__INIT) point into it, so nothing is freed field by field
 * and no error path leaks. One arena per request; not thread-safe.
 */
#ifndef FL_ARENA_H
#define FL_ARENA_H

#include <stddef.h>

struct fl_arena {
	void **blocks;
	size_t n, cap;
};

void fl_arena_init(struct fl_arena *a);
/* Free every block; the arena may be used again. */
void fl_arena_fini(struct fl_arena *a);
/* n zeroed bytes (n may be 0); aborts on out-of-memory. */
void *fl_arena_alloc(struct fl_arena *a, size_t n);
char *fl_arena_strdup(struct fl_arena *a, const char *s);
void *fl_arena_memdup(struct fl_arena *a, const void *p, size_t n);
/* Append item to the pointer array *arr of *n entries, growing it in the
 * arena (amortised: capacity doubles, old copies stay until fini). */
void fl_arena_push(struct fl_arena *a, void *arr_ptr, size_t *n, void *item);

#endif
