#include "server/shard.h"

#include <stdlib.h>

#include "core/mem.h"
#include "server/c2s.h"
#include "server/c2s_internal.h"
#include "xml/xml.h"

static void on_inbox(uv_async_t *a) {
    struct tern_shard *s = a->data;
    uv_mutex_lock(&s->inbox_lock);
    struct tern_shard_msg *m = s->inbox_head;
    s->inbox_head = s->inbox_tail = NULL;
    uv_mutex_unlock(&s->inbox_lock);
    while (m) {
        struct tern_shard_msg *next = m->next;
        struct tern_c2s *c = tern_shard_find(s, m->uid);
        switch (m->kind) {
        case TERN_SHARD_DELIVER:
            if (c)
                tern_c2s_send_take(c, m->stanza);
            else
                tern_xml_unref(&m->stanza);
            break;
        case TERN_SHARD_KICK:
            if (c)
                tern_c2s_close(c, m->cond, NULL);
            break;
        }
        free(m);
        m = next;
    }
}

void tern_shard_init(struct tern_shard *s, int id, uv_loop_t *loop, struct tern_server *server) {
    s->id = id;
    s->loop = loop;
    s->server = server;
    s->conns = NULL;
    s->nconns = 0;
    tern_map_init(&s->bound);
    uv_mutex_init(&s->inbox_lock);
    s->inbox_head = s->inbox_tail = NULL;
    uv_async_init(loop, &s->inbox_async, on_inbox);
    s->inbox_async.data = s;
    s->readbuf = tern_malloc(TERN_SHARD_READBUF);
    s->on_idle = NULL;
}

static void on_async_closed(uv_handle_t *h) {
    struct tern_shard *s = h->data;
    on_inbox(&s->inbox_async); /* release anything posted meanwhile */
    uv_mutex_destroy(&s->inbox_lock);
    tern_map_free(&s->bound);
    free(s->readbuf);
    s->readbuf = NULL;
}

void tern_shard_close(struct tern_shard *s) {
    uv_close((uv_handle_t *)&s->inbox_async, on_async_closed);
}

void tern_shard_post(struct tern_shard *s, struct tern_shard_msg *msg) {
    msg->next = NULL;
    uv_mutex_lock(&s->inbox_lock);
    if (s->inbox_tail)
        s->inbox_tail->next = msg;
    else
        s->inbox_head = msg;
    s->inbox_tail = msg;
    uv_mutex_unlock(&s->inbox_lock);
    uv_async_send(&s->inbox_async);
}

void tern_shard_bind(struct tern_shard *s, uint64_t uid, struct tern_c2s *c) {
    tern_map_put(&s->bound, &uid, sizeof uid, c);
}

void tern_shard_unbind(struct tern_shard *s, uint64_t uid) {
    tern_map_del(&s->bound, &uid, sizeof uid);
}

struct tern_c2s *tern_shard_find(struct tern_shard *s, uint64_t uid) {
    return tern_map_get(&s->bound, &uid, sizeof uid);
}

void tern_shard_close_all(struct tern_shard *s, enum tern_stream_error cond, const char *text) {
    /* tern_c2s_close never frees, so walking the list is safe. */
    for (struct tern_c2s *c = s->conns; c; c = c->next)
        tern_c2s_close(c, cond, text);
}
