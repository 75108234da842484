/* Growable byte buffers, each with a ceiling (STYLE.md: curl's dynbuf). */
#ifndef TERN_CORE_BUF_H
#define TERN_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

/**
 * A growable buffer. data is always NUL-terminated when non-NULL (the NUL is
 * not counted in len). max is the ceiling for len; appends that would pass it
 * fail with TERN_E_LIMIT and leave the buffer unchanged.
 */
struct tern_buf {
    char *data; /* bytes, or NULL while empty and never grown */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated (including room for the NUL) */
    size_t max; /* ceiling on len */
};

/** Initialise an empty buffer with ceiling max (no allocation yet). */
void tern_buf_init(struct tern_buf *b, size_t max);
/** Release the storage; the buffer is empty and reusable afterwards. */
void tern_buf_free(struct tern_buf *b);
/** Forget the contents but keep the allocation. */
void tern_buf_reset(struct tern_buf *b);
/** Append n bytes; TERN_E_LIMIT past the ceiling. */
int tern_buf_add(struct tern_buf *b, const void *p, size_t n);
/** Append a NUL-terminated string. */
int tern_buf_adds(struct tern_buf *b, const char *s);
/** Append formatted text. */
int tern_buf_printf(struct tern_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Remove the first n bytes (n <= len). */
void tern_buf_consume(struct tern_buf *b, size_t n);
/** Hand the storage to the caller (NUL-terminated, may be NULL if empty). */
char *tern_buf_take(struct tern_buf *b);

#endif
