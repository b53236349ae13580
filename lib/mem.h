/*
 * Allocation that aborts on out-of-memory, as Redis's zmalloc does: flotilla's
 * programs are restarted by their supervisor rather than carrying half-handled
 * OOM paths through every function.
 */
#ifndef FL_MEM_H
#define FL_MEM_H

#include <stddef.h>

void *fl_malloc(size_t size);
void *fl_calloc(size_t n, size_t size);
void *fl_realloc(void *ptr, size_t size);
/* Grow an array of n elements of size each to at least want elements. */
void *fl_grow(void *ptr, size_t *cap, size_t want, size_t size);
char *fl_strdup(const char *s);
char *fl_strndup(const char *s, size_t n);

#endif
