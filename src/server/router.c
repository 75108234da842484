#include "server/router.h"

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/c2s.h"
#include "server/server.h"
#include "server/shard.h"
#include "server/stanza.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

#define COMP "router"

/* XEP-0199 §4.2: a ping to the server gets an empty result. */
static struct tern_xml *handle_ping(struct tern_shard *shard, const struct tern_jid *from,
                                    const struct tern_xml *iq) {
    return tern_stanza_result(iq);
}

/* IQ namespaces the server answers itself. Modules join this table. */
static const struct {
    const char *ns;             /* namespace of the iq's payload */
    tern_iq_handler_fn handler; /* what answers it */
} iq_handlers[] = {
    {TERN_NS_PING, handle_ping},
};

static void reply_to_sender(struct tern_shard *shard, const struct tern_jid *from,
                            struct tern_xml *reply) {
    /* The sender is local (only c2s exists yet): find its session. */
    struct tern_session_ref ref;
    char *bare = tern_jid_bare(from);
    if (from->resource &&
        tern_sessions_find(shard->server->sessions, bare, from->resource, &ref) == 0)
        tern_router_to_session(shard, ref, reply);
    else
        tern_xml_unref(&reply);
    free(bare);
}

static void bounce(struct tern_shard *shard, const struct tern_jid *from,
                   const struct tern_xml *stanza, enum tern_error_type type,
                   enum tern_stanza_cond cond) {
    if (tern_stanza_is_response(stanza))
        return; /* RFC 6120 §8.3.1: never answer an error or a result with an error */
    struct tern_stanza_error e = {type, cond, NULL};
    reply_to_sender(shard, from, tern_stanza_error_reply(stanza, &e));
}

static void handle_iq_for_server(struct tern_shard *shard, const struct tern_jid *from,
                                 struct tern_xml *iq) {
    const char *type = tern_xml_attr(iq, "type");
    if (!type || (strcmp(type, "get") && strcmp(type, "set")))
        return; /* results and errors to the server match nothing we sent: dropped */
    struct tern_xml *payload = tern_xml_first_el(iq);
    if (!payload || !tern_xml_attr(iq, "id") || tern_xml_next(payload, NULL, NULL)) {
        /* RFC 6120 §8.2.3: get/set carries exactly one child */
        bounce(shard, from, iq, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST);
        return;
    }
    for (size_t i = 0; i < sizeof iq_handlers / sizeof iq_handlers[0]; i++) {
        if (strcmp(payload->ns, iq_handlers[i].ns) == 0) {
            struct tern_xml *reply = iq_handlers[i].handler(shard, from, iq);
            if (reply)
                reply_to_sender(shard, from, reply);
            return;
        }
    }
    bounce(shard, from, iq, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE);
}

void tern_router_route(struct tern_shard *shard, const struct tern_jid *from,
                       struct tern_xml *stanza) {
    const struct tern_config *cfg = shard->server->cfg;
    const char *to_s = tern_xml_attr(stanza, "to");
    struct tern_jid to = {0};
    if (to_s && tern_jid_parse(&to, to_s) != 0) {
        bounce(shard, from, stanza, TERN_ET_MODIFY, TERN_SC_JID_MALFORMED);
        goto out;
    }
    int for_server = !to_s || (!to.local && !to.resource && strcmp(to.domain, cfg->domain) == 0);
    int for_own_bare = to_s && !to.resource && tern_jid_equal(&to, from, 1);
    if (for_server || for_own_bare) {
        /* RFC 6121 §8.5.1 / §10: the server answers on the account's behalf. */
        if (strcmp(stanza->name, "iq") == 0)
            handle_iq_for_server(shard, from, stanza);
        goto out;
    }
    if (strcmp(to.domain, cfg->domain) != 0) {
        bounce(shard, from, stanza, TERN_ET_CANCEL, TERN_SC_REMOTE_SERVER_NOT_FOUND);
        goto out;
    }
    if (to.resource && to.local) {
        struct tern_session_ref ref;
        char *bare = tern_jid_bare(&to);
        int found = tern_sessions_find(shard->server->sessions, bare, to.resource, &ref) == 0;
        free(bare);
        if (found) {
            tern_router_to_session(shard, ref, tern_xml_ref(stanza));
            goto out;
        }
    }
    /* Nobody to take it. Presence is dropped quietly (RFC 6121 §4.3). */
    if (strcmp(stanza->name, "presence") != 0)
        bounce(shard, from, stanza, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE);
out:
    tern_jid_free(&to);
    tern_xml_unref(&stanza);
}

void tern_router_to_session(struct tern_shard *shard, struct tern_session_ref ref,
                            struct tern_xml *stanza) {
    if (ref.shard == shard->id) {
        struct tern_c2s *c = tern_shard_find(shard, ref.uid);
        if (c)
            tern_c2s_send_take(c, stanza);
        else
            tern_xml_unref(&stanza);
        return;
    }
    struct tern_shard_msg *m = tern_calloc(1, sizeof *m);
    m->kind = TERN_SHARD_DELIVER;
    m->uid = ref.uid;
    m->stanza = stanza;
    tern_shard_post(shard->server->shards[ref.shard], m);
}

void tern_router_kick(struct tern_shard *shard, struct tern_session_ref ref,
                      enum tern_stream_error cond) {
    if (ref.shard == shard->id) {
        struct tern_c2s *c = tern_shard_find(shard, ref.uid);
        if (c)
            tern_c2s_close(c, cond, NULL);
        return;
    }
    struct tern_shard_msg *m = tern_calloc(1, sizeof *m);
    m->kind = TERN_SHARD_KICK;
    m->uid = ref.uid;
    m->cond = cond;
    tern_shard_post(shard->server->shards[ref.shard], m);
}
