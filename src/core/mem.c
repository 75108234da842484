#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static void oom(size_t n) {
    fprintf(stderr, "ternd: out of memory allocating %zu bytes, aborting\n", n);
    abort();
}

void *tern_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *tern_calloc(size_t nmemb, size_t size) {
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *tern_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *tern_strdup(const char *s) {
    if (!s)
        return NULL;
    return tern_strndup(s, strlen(s));
}

char *tern_strndup(const char *s, size_t n) {
    char *p = tern_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void tern_memzero(void *p, size_t n) {
    OPENSSL_cleanse(p, n);
}
