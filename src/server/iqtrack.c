#include "server/iqtrack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/config.h"
#include "core/map.h"
#include "core/mem.h"
#include "server/router.h"
#include "server/server.h"
#include "server/shard.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

/* One request waiting for its answer. */
struct pending {
    uv_timer_t timer;         /* timeout */
    struct tern_shard *shard; /* owner */
    char id[24];              /* the id we gave it */
    char *to;                 /* whom it went to (prepared), who must answer */
    tern_iq_response_fn cb;   /* answer */
    void *ud;                 /* its argument */
};

/* Pending requests by id. Only the shard's loop touches its requests; the
 * map is per process while there is one shard (ids are unique anyway). */
static struct tern_map pending_by_id;
static uint64_t next_id;

static void on_timer_closed(uv_handle_t *h) {
    struct pending *p = h->data;
    free(p->to);
    free(p);
}

static void finish(struct pending *p, const struct tern_xml *response) {
    tern_map_dels(&pending_by_id, p->id);
    uv_timer_stop(&p->timer);
    p->cb(p->shard, response, p->ud);
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

static void on_timeout(uv_timer_t *t) {
    finish(t->data, NULL);
}

/* Compare JIDs after preparation, so case and IDNA forms do not matter. */
static char *prepared(const char *s) {
    struct tern_jid j;
    if (!s || tern_jid_parse(&j, s) != 0)
        return NULL;
    char *out = tern_jid_full(&j);
    tern_jid_free(&j);
    return out;
}

void tern_iq_request(struct tern_shard *shard, struct tern_xml *iq, uint64_t timeout_ms,
                     tern_iq_response_fn cb, void *ud) {
    struct pending *p = tern_calloc(1, sizeof *p);
    p->shard = shard;
    p->cb = cb;
    p->ud = ud;
    snprintf(p->id, sizeof p->id, "tern-%llu", (unsigned long long)++next_id);
    p->to = prepared(tern_xml_attr(iq, "to"));
    if (!p->to)
        p->to = tern_strdup("");
    tern_xml_set_attr(iq, "id", p->id);
    tern_xml_set_attr(iq, "from", shard->server->cfg->domain);
    uv_timer_init(shard->loop, &p->timer);
    p->timer.data = p;
    tern_map_puts(&pending_by_id, p->id, p);
    uv_timer_start(&p->timer, on_timeout, timeout_ms, 0);
    tern_router_send(shard, iq);
}

int tern_iq_response(struct tern_shard *shard, const struct tern_xml *iq) {
    const char *id = tern_xml_attr(iq, "id");
    struct pending *p = id ? tern_map_gets(&pending_by_id, id) : NULL;
    if (!p)
        return 0;
    char *from = prepared(tern_xml_attr(iq, "from"));
    int match = from && strcmp(from, p->to) == 0;
    free(from);
    if (!match)
        return 0; /* RFC 6120 §8.2.3: an answer comes from the addressee */
    finish(p, iq);
    return 1;
}

struct collect {
    struct pending **list; /* requests found */
    size_t n;              /* entries */
};

static void collect(const void *k, size_t kl, void *v, void *ud) {
    struct collect *c = ud;
    c->list = tern_realloc(c->list, (c->n + 1) * sizeof *c->list);
    c->list[c->n++] = v;
}

void tern_iq_cancel_all(struct tern_shard *shard) {
    struct collect c = {NULL, 0};
    tern_map_each(&pending_by_id, collect, &c);
    for (size_t i = 0; i < c.n; i++)
        if (c.list[i]->shard == shard)
            finish(c.list[i], NULL);
    free(c.list);
}
