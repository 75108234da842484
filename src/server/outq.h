/* Bytes on their way to a socket, shared by c2s and component streams. */
#ifndef TERN_SERVER_OUTQ_H
#define TERN_SERVER_OUTQ_H

#include <stddef.h>

#include <uv.h>

#include "core/buf.h"

/**
 * What a stream has to write: buf collects bytes (plaintext or ciphertext),
 * tern_outq_flush() gives the kernel what it takes at once and copies only
 * the rest into uv_write requests. buf is freed after every flush, so an
 * idle connection holds no output memory.
 */
struct tern_outq {
    struct tern_buf buf;           /* bytes not yet handed to the socket */
    size_t queued;                 /* bytes in uv_write requests not yet written */
    size_t max_queued;             /* ceiling on queued: a peer that does not read */
    void (*on_error)(void *owner); /* a queued write failed (from libuv's callback) */
    void *owner;                   /* its argument; must outlive the socket handle */
};

void tern_outq_init(struct tern_outq *q, size_t max_buf, size_t max_queued,
                    void (*on_error)(void *owner), void *owner);

/**
 * Hand buf to stream. Returns 0, TERN_E_IO if the write failed at once, or
 * TERN_E_LIMIT if more than max_queued bytes would wait; on failure buf is
 * dropped and on_error is not called (the caller decides).
 */
int tern_outq_flush(struct tern_outq *q, uv_stream_t *stream);

/** Release buf (queued writes finish or are cancelled when the handle closes). */
void tern_outq_free(struct tern_outq *q);

#endif
