#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t size)
{
	fprintf(stderr, "flotilla: out of memory allocating %zu bytes\n", size);
	abort();
}

void *fl_malloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		oom(size);
	return p;
}

void *fl_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom(n * size);
	return p;
}

void *fl_realloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (p == NULL)
		oom(size);
	return p;
}

void *fl_grow(void *ptr, size_t *cap, size_t want, size_t size)
{
	size_t n = *cap ? *cap : 8;

	if (want <= *cap)
		return ptr;
	while (n < want)
		n *= 2;
	if (n > (size_t)-1 / size)
		oom((size_t)-1);
	*cap = n;
	return fl_realloc(ptr, n * size);
}

char *fl_strdup(const char *s)
{
	return fl_strndup(s, strlen(s));
}

char *fl_strndup(const char *s, size_t n)
{
	char *p = fl_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}
