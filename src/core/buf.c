#include "core/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

void tern_buf_init(struct tern_buf *b, size_t max) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void tern_buf_free(struct tern_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void tern_buf_reset(struct tern_buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int grow(struct tern_buf *b, size_t n) {
    if (n > b->max || b->len > b->max - n)
        return TERN_E_LIMIT;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (b->max < SIZE_MAX && cap > b->max + 1) /* no ceiling past SIZE_MAX: max + 1 wraps */
        cap = b->max + 1;
    b->data = tern_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int tern_buf_add(struct tern_buf *b, const void *p, size_t n) {
    int rc = grow(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int tern_buf_adds(struct tern_buf *b, const char *s) {
    return tern_buf_add(b, s, strlen(s));
}

int tern_buf_printf(struct tern_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TERN_E_INVAL;
    int rc = grow(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void tern_buf_consume(struct tern_buf *b, size_t n) {
    if (n >= b->len) {
        tern_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *tern_buf_take(struct tern_buf *b) {
    char *p = b->data;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
