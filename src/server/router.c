/*
 * Where a stanza goes. Clients' stanzas enter through tern_router_route();
 * stanzas the server or a module makes (replies, roster pushes, presence
 * broadcasts, bounces) through tern_router_send(). Delivery to a bound
 * session goes through tern_router_to_session(), which crosses shards via
 * their inboxes; nothing here assumes a single loop. A domain that is not
 * ours may be an external component's (XEP-0114): component.c delivers to
 * it, and its own stanzas enter through component.c too.
 */
#include "server/router.h"

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "mod/message.h"
#include "mod/presence.h"
#include "server/c2s.h"
#include "server/component.h"
#include "server/iqtrack.h"
#include "server/module.h"
#include "server/server.h"
#include "server/shard.h"
#include "server/stanza.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

#define COMP "router"

static int is_local_domain(const struct tern_shard *shard, const struct tern_jid *j) {
    return strcmp(j->domain, shard->server->cfg->domain) == 0;
}

/* Answer stanza with an error, to its sender (never an error to an error). */
static void bounce(struct tern_shard *shard, const struct tern_xml *stanza,
                   enum tern_error_type type, enum tern_stanza_cond cond, const char *text) {
    if (tern_stanza_is_response(stanza) || !tern_xml_attr(stanza, "from"))
        return; /* RFC 6120 §8.3.1 */
    struct tern_stanza_error e = {type, cond, text};
    tern_router_send(shard, tern_stanza_error_reply(stanza, &e));
}

/*
 * XEP-0114: a stanza for the domain of a configured external component goes
 * onto its stream (component.c). Returns 0 if to's domain is no component's
 * (the caller goes on), 1 if the stanza was dealt with: delivered, or, while
 * the component is not connected, bounced with service-unavailable (presence
 * and answers are dropped, RFC 6120 §8.3.1).
 */
static int to_component(struct tern_shard *shard, const struct tern_jid *to,
                        struct tern_xml *stanza) {
    int rc = tern_component_send(shard, to->domain, tern_xml_ref(stanza));
    if (rc == TERN_E_NOTFOUND)
        return 0;
    if (rc != 0 && strcmp(stanza->name, "presence") != 0)
        bounce(shard, stanza, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE,
               "the service is offline");
    return 1;
}

void tern_router_bounce(struct tern_shard *shard, const struct tern_xml *stanza,
                        enum tern_error_type type, enum tern_stanza_cond cond) {
    bounce(shard, stanza, type, cond, NULL);
}

/* An IQ get/set for the server or for an account: the modules answer. */
static void iq_for_modules(struct tern_shard *shard, struct tern_c2s *c,
                           const struct tern_jid *from, const struct tern_jid *to,
                           enum tern_iq_target target, struct tern_xml *iq) {
    struct tern_xml *payload = tern_xml_first_el(iq);
    if (!payload || !tern_xml_attr(iq, "id") || tern_xml_next(payload, NULL, NULL)) {
        /* RFC 6120 §8.2.3: get/set carries exactly one child and an id */
        bounce(shard, iq, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST, NULL);
        return;
    }
    struct tern_iq_ctx ctx = {
        .shard = shard,
        .session = c,
        .from = from,
        .to = to,
        .iq = iq,
        .payload = payload,
        .target = target,
    };
    if (tern_modules_iq(&ctx) == TERN_PASS)
        bounce(shard, iq, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE, NULL);
}

/* An IQ to a local full JID: to that session, else answered for it. */
static void iq_to_resource(struct tern_shard *shard, const struct tern_jid *to,
                           struct tern_xml *iq) {
    struct tern_session_ref ref;
    char *bare = tern_jid_bare(to);
    int found = tern_sessions_find(shard->server->sessions, bare, to->resource, &ref) == 0;
    free(bare);
    if (found) {
        tern_router_to_session(shard, ref, tern_xml_ref(iq));
        return;
    }
    /* RFC 6121 §8.5.3.2.1 / §8.5.2.2.1: no such resource. */
    bounce(shard, iq, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE, NULL);
}

static void route_iq(struct tern_shard *shard, struct tern_c2s *c, const struct tern_jid *from,
                     const struct tern_jid *to, int has_to, struct tern_xml *iq) {
    const char *type = tern_xml_attr(iq, "type");
    int request = type && (!strcmp(type, "get") || !strcmp(type, "set"));
    int response = type && (!strcmp(type, "result") || !strcmp(type, "error"));
    if (!request && !response) {
        bounce(shard, iq, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST, NULL);
        return;
    }
    if (has_to && to->resource) {
        if (to->local)
            iq_to_resource(shard, to, iq);
        else if (request)
            bounce(shard, iq, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    if (response) {
        /* to the server: the answer to a request it sent, or nothing */
        if (!has_to || (!to->local && !to->resource))
            tern_iq_response(shard, iq);
        return;
    }
    if (!has_to || !to->local) {
        iq_for_modules(shard, c, from, to, TERN_IQ_TO_SERVER, iq);
        return;
    }
    iq_for_modules(shard, c, from, to, TERN_IQ_TO_ACCOUNT, iq);
}

void tern_router_route(struct tern_c2s *c, struct tern_xml *stanza) {
    struct tern_shard *shard = tern_c2s_shard(c);
    const struct tern_jid *from = tern_c2s_jid(c);
    const char *to_s = tern_xml_attr(stanza, "to");
    struct tern_jid to = {0};
    int has_to = to_s != NULL;

    if (strcmp(stanza->name, "presence") == 0) {
        tern_presence_outbound(c, stanza);
        return;
    }
    if (has_to && tern_jid_parse(&to, to_s) != 0) {
        bounce(shard, stanza, TERN_ET_MODIFY, TERN_SC_JID_MALFORMED, NULL);
        goto out;
    }
    if (!has_to) {
        /* RFC 6120 §10.3: no 'to' means the server (IQ) or the user's own bare JID. */
        tern_jid_copy(&to, from);
        if (strcmp(stanza->name, "iq") == 0) {
            free(to.local);
            to.local = NULL;
        }
        free(to.resource);
        to.resource = NULL;
    }
    if (!is_local_domain(shard, &to)) {
        if (to_component(shard, &to, stanza))
            goto out;
        /* No federation yet: RFC 6120 §8.3.3.13 */
        bounce(shard, stanza, TERN_ET_CANCEL, TERN_SC_REMOTE_SERVER_NOT_FOUND, NULL);
        goto out;
    }
    if (strcmp(stanza->name, "iq") == 0) {
        route_iq(shard, c, from, &to, has_to, stanza);
        goto out;
    }
    /* message */
    if (!to.local) {
        /* to the server itself: nothing here takes messages */
        bounce(shard, stanza, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE, NULL);
        goto out;
    }
    tern_message_deliver(shard, &to, tern_xml_ref(stanza));
out:
    tern_jid_free(&to);
    tern_xml_unref(&stanza);
}

void tern_router_send(struct tern_shard *shard, struct tern_xml *stanza) {
    const char *to_s = tern_xml_attr(stanza, "to");
    struct tern_jid to = {0};
    if (!to_s || tern_jid_parse(&to, to_s) != 0) {
        tern_warn(COMP, "dropping <%s/> with a missing or invalid 'to'", stanza->name);
        goto out;
    }
    if (!is_local_domain(shard, &to) && to_component(shard, &to, stanza))
        goto out;
    if (!is_local_domain(shard, &to) || !to.local) {
        tern_debug(COMP, "dropping <%s/> to %s: not a local account", stanza->name, to_s);
        goto out;
    }
    if (strcmp(stanza->name, "presence") == 0) {
        tern_presence_inbound(shard, &to, tern_xml_ref(stanza));
    } else if (strcmp(stanza->name, "message") == 0) {
        tern_message_deliver(shard, &to, tern_xml_ref(stanza));
    } else if (to.resource) {
        iq_to_resource(shard, &to, stanza);
    } else {
        tern_debug(COMP, "dropping <iq/> to the bare JID %s", to_s);
    }
out:
    tern_jid_free(&to);
    tern_xml_unref(&stanza);
}

/* Hand a message to the shard that owns ref (it takes stanza, if any). */
static void post(struct tern_shard *shard, struct tern_session_ref ref,
                 enum tern_shard_msg_kind kind, struct tern_xml *stanza,
                 enum tern_stream_error cond) {
    struct tern_shard_msg *m = tern_calloc(1, sizeof *m);
    m->kind = kind;
    m->uid = ref.uid;
    m->stanza = stanza;
    m->cond = cond;
    tern_shard_post(shard->server->shards[ref.shard], m);
}

void tern_router_to_session(struct tern_shard *shard, struct tern_session_ref ref,
                            struct tern_xml *stanza) {
    if (ref.shard != shard->id) {
        post(shard, ref, TERN_SHARD_DELIVER, stanza, TERN_SE_NONE);
        return;
    }
    struct tern_c2s *c = tern_shard_find(shard, ref.uid);
    if (c)
        tern_c2s_send_take(c, stanza);
    else
        tern_xml_unref(&stanza);
}

void tern_router_kick(struct tern_shard *shard, struct tern_session_ref ref,
                      enum tern_stream_error cond) {
    if (ref.shard != shard->id) {
        post(shard, ref, TERN_SHARD_KICK, NULL, cond);
        return;
    }
    struct tern_c2s *c = tern_shard_find(shard, ref.uid);
    if (c)
        tern_c2s_close(c, cond, NULL);
}
