#include "server/outq.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

struct write_req {
    uv_write_t req;      /* libuv request */
    struct tern_outq *q; /* owner's queue */
    size_t len;          /* bytes in data */
    char data[];         /* the bytes */
};

void tern_outq_init(struct tern_outq *q, size_t max_buf, size_t max_queued,
                    void (*on_error)(void *owner), void *owner) {
    tern_buf_init(&q->buf, max_buf);
    q->queued = 0;
    q->max_queued = max_queued;
    q->on_error = on_error;
    q->owner = owner;
}

static void on_written(uv_write_t *req, int status) {
    struct write_req *w = (struct write_req *)req;
    struct tern_outq *q = w->q;
    q->queued -= w->len;
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        q->on_error(q->owner);
}

int tern_outq_flush(struct tern_outq *q, uv_stream_t *stream) {
    if (q->buf.len == 0)
        return 0;
    uv_buf_t b = uv_buf_init(q->buf.data, (unsigned)q->buf.len);
    int n = uv_try_write(stream, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS)
        n = 0;
    if (n < 0) {
        tern_buf_free(&q->buf);
        return TERN_E_IO;
    }
    size_t rest = q->buf.len - (size_t)n;
    if (rest) {
        if (q->queued + rest > q->max_queued) {
            tern_buf_free(&q->buf);
            return TERN_E_LIMIT;
        }
        struct write_req *w = tern_malloc(sizeof *w + rest);
        w->q = q;
        w->len = rest;
        memcpy(w->data, q->buf.data + n, rest);
        uv_buf_t wb = uv_buf_init(w->data, (unsigned)rest);
        q->queued += rest;
        if (uv_write(&w->req, stream, &wb, 1, on_written) != 0) {
            q->queued -= rest;
            free(w);
            tern_buf_free(&q->buf);
            return TERN_E_IO;
        }
    }
    tern_buf_free(&q->buf);
    return 0;
}

void tern_outq_free(struct tern_outq *q) {
    tern_buf_free(&q->buf);
}
