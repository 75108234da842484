/* Allocation wrappers: allocation failure aborts with a message (STYLE.md §6). */
#ifndef TERN_CORE_MEM_H
#define TERN_CORE_MEM_H

#include <stddef.h>

/** malloc() that never returns NULL: on failure it logs and aborts. */
void *tern_malloc(size_t n);
/** calloc() that never returns NULL. */
void *tern_calloc(size_t nmemb, size_t size);
/** realloc() that never returns NULL (n must be > 0). */
void *tern_realloc(void *p, size_t n);
/** strdup() that never returns NULL; NULL in gives NULL out. */
char *tern_strdup(const char *s);
/** Copy of the first n bytes of s, NUL-terminated; never NULL. */
char *tern_strndup(const char *s, size_t n);
/** Overwrite n bytes with zeros in a way the compiler may not elide. */
void tern_memzero(void *p, size_t n);

#endif
