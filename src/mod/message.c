/* Message delivery to local accounts: RFC 6121 §8.5. */
#include "mod/message.h"

#include <stdlib.h>
#include <string.h>

#include "mod/offline.h"
#include "server/router.h"
#include "server/server.h"
#include "server/sessions.h"
#include "server/shard.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

/* Resources of one account we look at; more are not delivered to by bare JID. */
#define MAX_RESOURCES 64

#define NS_HINTS "urn:xmpp:hints"

static int has_body(const struct tern_xml *m) {
    return tern_xml_child(m, NULL, "body") != NULL;
}

/* XEP-0160 with XEP-0334 hints: what is worth keeping for later. */
static int worth_storing(const struct tern_xml *m, const char *type) {
    if (strcmp(type, "chat") && strcmp(type, "normal"))
        return 0;
    if (tern_xml_child(m, NS_HINTS, "no-store"))
        return 0;
    return has_body(m) || tern_xml_child(m, NS_HINTS, "store") != NULL;
}

static void deliver_bare(struct tern_shard *shard, const struct tern_jid *to, const char *type,
                         struct tern_xml *m) {
    struct tern_session_info info[MAX_RESOURCES];
    char *bare = tern_jid_bare(to);
    size_t n = tern_sessions_list_info(shard->server->sessions, bare, info, MAX_RESOURCES);
    free(bare);
    if (n > MAX_RESOURCES)
        n = MAX_RESOURCES;

    /* §8.5.2.1: only available resources with non-negative priority count. */
    int best = -1;
    size_t nbest = 0, last_best = 0;
    for (size_t i = 0; i < n; i++) {
        if (!info[i].available || info[i].priority < 0)
            continue;
        if (info[i].priority > best) {
            best = info[i].priority;
            nbest = 0;
        }
        if (info[i].priority == best) {
            nbest++;
            last_best = i;
        }
    }

    if (strcmp(type, "error") == 0 || strcmp(type, "groupchat") == 0) {
        /* §8.5.2.1.3/.4 and §8.5.2.2: groupchat to a bare JID is refused, errors dropped */
        if (strcmp(type, "groupchat") == 0)
            tern_router_bounce(shard, m, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE);
        tern_xml_unref(&m);
        return;
    }
    if (best < 0) {
        /* §8.5.2.2: no available resource */
        if (worth_storing(m, type)) {
            tern_offline_store(shard, to, m);
            return;
        }
        tern_xml_unref(&m); /* headline, chat states, receipts: nothing to keep */
        return;
    }
    if (strcmp(type, "headline") == 0) {
        /* §8.5.2.1.2: every available resource with non-negative priority */
        for (size_t i = 0; i < n; i++)
            if (info[i].available && info[i].priority >= 0)
                tern_router_to_session(shard, info[i].ref, tern_xml_ref(m));
    } else if (strcmp(type, "chat") == 0 && nbest > 1) {
        /* §8.5.2.1.1: all resources sharing the highest priority. Marked, so
         * one of them ending unacked does not hand it on again. */
        m->flags |= TERN_XML_F_MULTI;
        for (size_t i = 0; i < n; i++)
            if (info[i].available && info[i].priority == best)
                tern_router_to_session(shard, info[i].ref, tern_xml_ref(m));
    } else {
        /* normal (or a single best): one resource, the most recently bound */
        tern_router_to_session(shard, info[last_best].ref, tern_xml_ref(m));
    }
    tern_xml_unref(&m);
}

void tern_message_deliver(struct tern_shard *shard, const struct tern_jid *to, struct tern_xml *m) {
    const char *type = tern_xml_attr(m, "type");
    if (!type)
        type = "normal";
    if (to->resource) {
        struct tern_session_ref ref;
        char *bare = tern_jid_bare(to);
        int found = tern_sessions_find(shard->server->sessions, bare, to->resource, &ref) == 0;
        free(bare);
        if (found) {
            tern_router_to_session(shard, ref, m);
            return;
        }
        /* §8.5.3.2.1: no such resource. groupchat and error are not redirected. */
        if (strcmp(type, "groupchat") == 0) {
            tern_router_bounce(shard, m, TERN_ET_CANCEL, TERN_SC_SERVICE_UNAVAILABLE);
            tern_xml_unref(&m);
            return;
        }
        if (strcmp(type, "error") == 0) {
            tern_xml_unref(&m);
            return;
        }
    }
    deliver_bare(shard, to, type, m);
}
