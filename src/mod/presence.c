/*
 * Presence (RFC 6121 §4) and presence subscriptions (§3, Appendix A) for
 * local accounts.
 *
 * Broadcasts and probes read the account view (src/mod/roster.c): the
 * subscription flags of an available account's contacts and the last
 * presence of each of its available resources, kept in memory. Every
 * subscription stanza is one roster transaction: the Appendix A transition
 * runs on the store thread against the stored item (sub_apply), its side
 * effects on the loop once the write is durable (sub_done). Anything that
 * reads a view waits (tern__view_when_ready) until every change submitted
 * before it is in the view, so a client never sees a presence overtake the
 * subscription change that allows it. See docs/internals/presence.md.
 */
#include "mod/presence.h"

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"
#include "mod/roster.h"
#include "server/c2s.h"
#include "server/component.h"
#include "server/module.h"
#include "server/router.h"
#include "server/server.h"
#include "server/sessions.h"
#include "server/shard.h"
#include "server/stanza.h"
#include "store/store.h"
#include "xml/xml.h"
#include "xmpp/errors.h"
#include "xmpp/jid.h"

#define COMP "presence"

/*
 * Most full JIDs one session tracks as directed-presence targets (§4.6).
 * Directed presence to one more is refused with <resource-constraint/>:
 * delivering it untracked would leave the target believing the user online
 * after the user left.
 */
#define DIRECTED_MAX 1000

enum ptype {
    P_AVAILABLE,
    P_UNAVAILABLE,
    P_SUBSCRIBE,
    P_SUBSCRIBED,
    P_UNSUBSCRIBE,
    P_UNSUBSCRIBED,
    P_PROBE,
    P_ERROR,
    P_INVALID,
};

static enum ptype ptype_of(const struct tern_xml *p) {
    static const char *const names[] = {
        [P_UNAVAILABLE] = "unavailable",
        [P_SUBSCRIBE] = "subscribe",
        [P_SUBSCRIBED] = "subscribed",
        [P_UNSUBSCRIBE] = "unsubscribe",
        [P_UNSUBSCRIBED] = "unsubscribed",
        [P_PROBE] = "probe",
        [P_ERROR] = "error",
    };
    const char *type = tern_xml_attr(p, "type");
    if (!type)
        return P_AVAILABLE;
    for (int i = P_UNAVAILABLE; i <= P_ERROR; i++)
        if (strcmp(type, names[i]) == 0)
            return (enum ptype)i;
    return P_INVALID;
}

static int is_local(const struct tern_shard *shard, const struct tern_jid *j) {
    return strcmp(j->domain, shard->server->cfg->domain) == 0;
}

/* Answer a presence with an error, to its sender (RFC 6120 §8.3: never an error to an error). */
static void bounce(struct tern_shard *shard, const struct tern_xml *stanza,
                   enum tern_error_type type, enum tern_stanza_cond cond, const char *text) {
    if (tern_stanza_is_response(stanza) || !tern_xml_attr(stanza, "from"))
        return;
    struct tern_stanza_error e = {type, cond, text};
    struct tern_xml *reply = tern_stanza_error_reply(stanza, &e);
    /* The addressee answers; if there was none (a broadcast) or it is not a
     * JID (<jid-malformed/>), the server does. */
    const char *from = tern_xml_attr(reply, "from");
    struct tern_jid j;
    if (!from || tern_jid_parse(&j, from) != 0)
        tern_xml_set_attr(reply, "from", shard->server->cfg->domain);
    else
        tern_jid_free(&j);
    tern_router_send(shard, reply);
}

/* A subscription-related presence from one bare JID to another, through the
 * recipient's inbound rules. */
static void send_type(struct tern_shard *shard, const char *from, const char *to,
                      const char *type) {
    struct tern_xml *p = tern_xml_new(TERN_NS_CLIENT, "presence");
    tern_xml_set_attr(p, "from", from);
    tern_xml_set_attr(p, "to", to);
    tern_xml_set_attr(p, "type", type);
    tern_router_send(shard, p);
}

/*
 * A tree a continuation may keep: the stanza itself when continuations can
 * only run on this thread (this shard runs store completions), otherwise a
 * private copy, because a tree's refcount belongs to one thread.
 */
static struct tern_xml *portable(struct tern_shard *shard, struct tern_xml *take) {
    if (shard == tern__store_shard(shard->server))
        return take;
    struct tern_xml *copy = tern_xml_copy(take);
    tern_xml_unref(&take);
    return copy;
}

/* RFC 6121 §4.7.2.3: an integer from -128 to 127, 0 when absent. -1 if invalid. */
static int parse_priority(const struct tern_xml *p, int *out) {
    *out = 0;
    struct tern_xml *el = tern_xml_child(p, TERN_NS_CLIENT, "priority");
    if (!el)
        return 0;
    char *text = tern_xml_text(el);
    const char *s = text;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++; /* xs:byte collapses whitespace */
    int neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    long v = 0;
    int digits = 0;
    for (; *s >= '0' && *s <= '9' && digits < 5; s++, digits++)
        v = v * 10 + (*s - '0');
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    int ok = digits > 0 && *s == '\0';
    free(text);
    if (neg)
        v = -v;
    if (!ok || v < -128 || v > 127)
        return -1;
    *out = (int)v;
    return 0;
}

/* ---- broadcasts (§4.2, §4.4, §4.5) ---------------------------------------------------- */

/* A broadcast waiting for the sender's view. */
struct bcast {
    struct tern_server *srv; /* the server */
    char *owner;             /* sender's bare JID */
    char *resource;          /* sender's resource */
    uint64_t uid;            /* sender's session */
    struct tern_xml *stanza; /* the presence, 'from' = sender's full JID (owned) */
    int initial;             /* initial presence: probe, re-deliver Pending In (§4.2, §3.1.3) */
    int directed_only;       /* unavailable of a replaced session: its successor speaks for it */
    char **directed;         /* unavailable: directed-presence targets (§4.6.3) */
    size_t ndirected;        /* entries in directed */
};

static void bcast_free(struct bcast *b) {
    free(b->owner);
    free(b->resource);
    tern_xml_unref(&b->stanza);
    tern_store_free_list(b->directed, b->ndirected);
    free(b);
}

/* stanza (borrowed) to each contact in list, 'to' set per contact. */
static void send_to_each(struct tern_shard *shard, const struct tern_xml *stanza, char **list,
                         size_t n) {
    for (size_t i = 0; i < n; i++) {
        struct tern_xml *p = tern_xml_copy(stanza);
        tern_xml_set_attr(p, "to", list[i]);
        tern_router_send(shard, p);
    }
}

static void broadcast_cont(struct tern_shard *shard, struct tern__view *v, void *ud) {
    struct bcast *b = ud;
    if (!shard) {
        bcast_free(b);
        return;
    }
    size_t n;
    if (!b->directed_only) {
        /* §4.2.2 / §4.4.2 / §4.5.2: every contact subscribed to the user ... */
        char **from = tern__view_contacts(v, TERN__VIEW_FROM, 1, &n);
        send_to_each(shard, b->stanza, from, n);
        tern_store_free_list(from, n);
        /* ... and every available resource of the user, the sender included. */
        struct tern_xml *own = tern_xml_copy(b->stanza);
        tern_xml_set_attr(own, "to", b->owner);
        tern__deliver_local(shard, b->owner, own, 1, 0);
    }
    /* §4.6.3: unavailable also goes to whoever got directed presence. */
    send_to_each(shard, b->stanza, b->directed, b->ndirected);

    if (b->initial) {
        /* §4.3.1: probe the contacts the user is subscribed to; from the
         * full JID, so that the answers go to the new resource only. */
        const char *full = tern_xml_attr(b->stanza, "from");
        char **to = tern__view_contacts(v, TERN__VIEW_TO, 1, &n);
        for (size_t i = 0; i < n; i++) {
            struct tern_xml *probe = tern_xml_new(TERN_NS_CLIENT, "presence");
            tern_xml_set_attr(probe, "type", "probe");
            tern_xml_set_attr(probe, "from", full);
            tern_xml_set_attr(probe, "to", to[i]);
            tern_router_send(shard, probe);
        }
        tern_store_free_list(to, n);
        /* §3.1.3: subscription requests that came while the user had no
         * available resource go to the newly available one. */
        struct tern_session_ref ref;
        if (tern_sessions_find(shard->server->sessions, b->owner, b->resource, &ref) == 0 &&
            ref.uid == b->uid) {
            char **pin = tern__view_contacts(v, TERN__VIEW_PENDING_IN, 1, &n);
            for (size_t i = 0; i < n; i++) {
                struct tern_xml *req = tern_xml_new(TERN_NS_CLIENT, "presence");
                tern_xml_set_attr(req, "type", "subscribe");
                tern_xml_set_attr(req, "from", pin[i]);
                tern_xml_set_attr(req, "to", b->owner);
                tern_router_to_session(shard, ref, req);
            }
            tern_store_free_list(pin, n);
        }
    }
    bcast_free(b);
}

static struct bcast *bcast_new(struct tern_c2s *c, const struct tern_xml *stanza) {
    struct bcast *b = tern_calloc(1, sizeof *b);
    b->srv = tern_c2s_shard(c)->server;
    b->owner = tern_strdup(tern_c2s_bare(c));
    b->resource = tern_strdup(tern_c2s_jid(c)->resource);
    b->uid = tern_c2s_uid(c);
    b->stanza = tern_xml_copy(stanza); /* may be read on the store's shard */
    tern_xml_set_attr(b->stanza, "to", NULL);
    return b;
}

static void go_available(struct tern_c2s *c, struct tern_xml *stanza) {
    struct tern_shard *shard = tern_c2s_shard(c);
    struct tern_server *srv = shard->server;
    struct tern_c2s_presence *p = tern_c2s_presence(c);
    const struct tern_jid *jid = tern_c2s_jid(c);
    int prio;
    if (parse_priority(stanza, &prio) != 0) {
        /* RFC 6120 §8.3.3.1: the stanza does not conform to the schema */
        bounce(shard, stanza, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST,
               "priority must be an integer from -128 to 127");
        return;
    }
    int initial = !p->available;
    p->available = 1;
    p->priority = prio;
    tern_xml_unref(&p->last);
    p->last = tern_xml_ref(stanza);
    tern_sessions_set_presence(srv->sessions, tern_c2s_bare(c), jid->resource, tern_c2s_uid(c), 1,
                               prio);
    if (!p->roster)
        p->roster = tern__view_acquire(srv, tern_c2s_bare(c));
    struct tern__view *v = p->roster;
    const char *full = tern_xml_attr(stanza, "from");
    tern__view_set_last(v, full, tern_c2s_uid(c), stanza);

    struct bcast *b = bcast_new(c, stanza);
    b->initial = initial;
    tern__view_when_ready(shard, v, broadcast_cont, b);
    if (initial) {
        struct tern_event_args ev = {TERN_EV_AVAILABLE, shard, c, jid, stanza};
        tern_modules_fire(&ev);
    }
}

struct collect_keys {
    char **out; /* collected keys */
    size_t n;   /* entries in out */
};

static void collect_key(const void *key, size_t klen, void *value, void *ud) {
    struct collect_keys *k = ud;
    k->out[k->n++] = tern_strndup(key, klen);
}

/*
 * The session becomes unavailable with stanza (an unavailable presence from
 * its full JID). directed_only: tell only its directed-presence targets.
 */
static void go_unavailable(struct tern_c2s *c, struct tern_xml *stanza, int directed_only) {
    struct tern_shard *shard = tern_c2s_shard(c);
    struct tern_c2s_presence *p = tern_c2s_presence(c);
    const struct tern_jid *jid = tern_c2s_jid(c);
    if (!p->available)
        return; /* §4.5.2 concerns an available resource; nothing was sent */
    p->available = 0;
    tern_xml_unref(&p->last);
    tern_sessions_set_presence(shard->server->sessions, tern_c2s_bare(c), jid->resource,
                               tern_c2s_uid(c), 0, p->priority);
    struct tern__view *v = p->roster;
    p->roster = NULL;
    if (!v)
        return; /* cannot happen: an available session holds its view */
    tern__view_del_last(v, tern_c2s_uid(c));

    struct bcast *b = bcast_new(c, stanza);
    b->directed_only = directed_only;
    struct collect_keys k = {NULL, 0};
    if (p->directed.count) {
        k.out = tern_calloc(p->directed.count, sizeof *k.out);
        tern_map_each(&p->directed, collect_key, &k);
    }
    b->directed = k.out;
    b->ndirected = k.n;
    tern_map_free(&p->directed);
    tern_map_init(&p->directed);

    tern__view_when_ready(shard, v, broadcast_cont, b);
    tern__view_release(&v); /* a deferred broadcast holds its own reference */
    struct tern_event_args ev = {TERN_EV_UNAVAILABLE, shard, c, jid, stanza};
    tern_modules_fire(&ev);
}

/* ---- directed presence (§4.6) -------------------------------------------------------------- */

static void send_cont(struct tern_shard *shard, struct tern__view *v, void *ud) {
    struct tern_xml *stanza = ud;
    if (shard)
        tern_router_send(shard, stanza);
    else
        tern_xml_unref(&stanza);
}

static void directed(struct tern_c2s *c, struct tern_xml *stanza, const struct tern_jid *to,
                     enum ptype type) {
    struct tern_shard *shard = tern_c2s_shard(c);
    struct tern_c2s_presence *p = tern_c2s_presence(c);
    char *key = tern_jid_full(to);
    if (type == P_AVAILABLE && p->available) {
        /* §4.6.2: remember targets that the unavailable broadcast would miss */
        char *bare = tern_jid_bare(to);
        int subscriber = (tern__view_flags(p->roster, bare) & TERN__VIEW_FROM) != 0;
        free(bare);
        if (!subscriber && !tern_map_gets(&p->directed, key)) {
            if (p->directed.count >= DIRECTED_MAX) {
                bounce(shard, stanza, TERN_ET_WAIT, TERN_SC_RESOURCE_CONSTRAINT,
                       "too many directed presences (at most 1000)");
                free(key);
                return;
            }
            tern_map_puts(&p->directed, key, (void *)1);
        }
    } else if (type == P_UNAVAILABLE) {
        tern_map_dels(&p->directed, key);
    }
    free(key);
    struct tern_xml *out = tern_xml_copy(stanza);
    if (p->roster)
        tern__view_when_ready(shard, p->roster, send_cont, out); /* after earlier broadcasts */
    else
        tern_router_send(shard, out);
}

/* ---- subscriptions: Appendix A ----------------------------------------------------------- */

/* Transaction ops: the subscription type, OR'ed with OP_IN on the contact's side. */
#define OP_IN 0x100

static enum tern__sub_type sub_type_of(enum ptype t) {
    switch (t) {
    case P_SUBSCRIBED: return TERN__SUB_SUBSCRIBED;
    case P_UNSUBSCRIBE: return TERN__SUB_UNSUBSCRIBE;
    case P_UNSUBSCRIBED: return TERN__SUB_UNSUBSCRIBED;
    default: return TERN__SUB_SUBSCRIBE;
    }
}

static void set_sub(struct tern_roster_item *it, unsigned sub) {
    it->sub = (enum tern_sub)sub;
}

/*
 * RFC 6121 Appendix A on the stored item. "None + Pending In" for a
 * contact the user never added is a hidden item; it goes when nothing is
 * left to remember.
 */
unsigned tern__sub_transition(enum tern__sub_type type, int inbound, struct tern_roster_item *it,
                              int *exists, int *write) {
    unsigned sub = (unsigned)it->sub;
    unsigned fx = 0;
    int w = 0;

    if (!inbound) {
        switch (type) {
        case TERN__SUB_SUBSCRIBE: /* A.2.1: always routed */
            fx |= TERN__FX_ROUTE;
            if (!*exists) {
                *exists = 1;
                it->ask = 1;
                w = 1;
                break;
            }
            if (it->hidden) {
                it->hidden = 0; /* asking for a contact's presence adds the contact */
                w = 1;
            }
            if (!(sub & TERN_SUB_TO) && !it->ask) {
                it->ask = 1;
                w = 1;
            }
            break;
        case TERN__SUB_UNSUBSCRIBE: /* A.2.2: always routed */
            fx |= TERN__FX_ROUTE;
            if (*exists && ((sub & TERN_SUB_TO) || it->ask)) {
                set_sub(it, sub & ~(unsigned)TERN_SUB_TO);
                it->ask = 0;
                w = 1;
            }
            break;
        case TERN__SUB_SUBSCRIBED: /* A.2.3 */
            if (*exists && (sub & TERN_SUB_FROM))
                break;
            if (*exists && it->pending_in) {
                set_sub(it, sub | TERN_SUB_FROM);
                it->pending_in = 0;
                it->approved = 0;
                it->hidden = 0;
                fx |= TERN__FX_ROUTE | TERN__FX_GAINED_FROM;
                w = 1;
                break;
            }
            /* §3.4: no request to approve: a pre-approval, not routed */
            if (!*exists) {
                *exists = 1;
                w = 1;
            }
            if (!it->approved) {
                it->approved = 1;
                w = 1;
            }
            break;
        case TERN__SUB_UNSUBSCRIBED: /* A.2.4 */
            if (!*exists)
                break;
            if (it->approved) {
                it->approved = 0; /* §3.4: cancels a pre-approval */
                w = 1;
            }
            if (it->pending_in || (sub & TERN_SUB_FROM)) {
                fx |= TERN__FX_ROUTE;
                if (sub & TERN_SUB_FROM)
                    fx |= TERN__FX_LOST_FROM;
                set_sub(it, sub & ~(unsigned)TERN_SUB_FROM);
                it->pending_in = 0;
                w = 1;
            }
            break;
        }
    } else {
        switch (type) {
        case TERN__SUB_SUBSCRIBE: /* A.3.1 */
            if (*exists && (sub & TERN_SUB_FROM)) {
                fx |= TERN__FX_AUTOREPLY; /* §3.1.3: already subscribed */
                break;
            }
            if (*exists && it->approved) {
                /* §3.4: pre-approved: approve for the user, deliver nothing */
                set_sub(it, sub | TERN_SUB_FROM);
                it->approved = 0;
                it->pending_in = 0;
                fx |= TERN__FX_AUTOREPLY | TERN__FX_GAINED_FROM;
                w = 1;
                break;
            }
            if (*exists && it->pending_in)
                break; /* A.3.1: not delivered again */
            if (!*exists) {
                *exists = 1;
                it->hidden = 1; /* remembered, not shown (§3.1.3) */
            }
            it->pending_in = 1;
            fx |= TERN__FX_ROUTE;
            w = 1;
            break;
        case TERN__SUB_SUBSCRIBED: /* A.3.3 */
            if (*exists && it->ask && !(sub & TERN_SUB_TO)) {
                set_sub(it, sub | TERN_SUB_TO);
                it->ask = 0;
                fx |= TERN__FX_ROUTE;
                w = 1;
            }
            break;
        case TERN__SUB_UNSUBSCRIBE: /* A.3.2 */
            if (*exists && (it->pending_in || (sub & TERN_SUB_FROM))) {
                fx |= TERN__FX_ROUTE;
                if (sub & TERN_SUB_FROM)
                    fx |= TERN__FX_LOST_FROM;
                set_sub(it, sub & ~(unsigned)TERN_SUB_FROM);
                it->pending_in = 0;
                w = 1;
            }
            break;
        case TERN__SUB_UNSUBSCRIBED: /* A.3.4 */
            if (*exists && (it->ask || (sub & TERN_SUB_TO))) {
                set_sub(it, sub & ~(unsigned)TERN_SUB_TO);
                it->ask = 0;
                fx |= TERN__FX_ROUTE;
                w = 1;
            }
            break;
        }
    }
    if (*exists && it->hidden && it->sub == TERN_SUB_NONE && !it->ask && !it->pending_in &&
        !it->approved)
        *exists = 0; /* a hidden item with nothing left to remember */
    *write = w;
    return fx;
}

/* The transaction's transition (store thread). */
static int sub_apply(struct tern__roster_txn *t, struct tern_roster_item *it, int *exists) {
    t->fx = tern__sub_transition(sub_type_of((enum ptype)(t->op & ~OP_IN)), (t->op & OP_IN) != 0,
                                 it, exists, &t->write);
    return 0;
}

/* Push the change of t's item if the client's view of it changed. */
static void push_change(struct tern_shard *shard, const struct tern__roster_txn *t) {
    const struct tern_roster_item *b = &t->before, *a = &t->after;
    int bv = b->jid && !b->hidden, av = a->jid && !a->hidden;
    if (bv && !av)
        tern__roster_push(shard, t->owner, b, 1, t->version);
    else if (av && (!bv || a->sub != b->sub || a->ask != b->ask || a->approved != b->approved))
        tern__roster_push(shard, t->owner, a, 0, t->version);
}

static void sub_done(struct tern_shard *shard, struct tern__roster_txn *t, int err) {
    int in = (t->op & OP_IN) != 0;
    enum ptype op = (enum ptype)(t->op & ~OP_IN);
    if (err) {
        if (!in) {
            /* the user's own request: tell the resource that sent it */
            struct tern_xml *orig = tern_xml_copy(t->stanza);
            tern_xml_set_attr(orig, "from", t->reply_to);
            if (err == TERN_E_LIMIT)
                bounce(shard, orig, TERN_ET_MODIFY, TERN_SC_POLICY_VIOLATION,
                       "the roster is full (at most 1000 items)");
            else
                bounce(shard, orig, TERN_ET_WAIT, TERN_SC_INTERNAL_SERVER_ERROR, NULL);
            tern_xml_unref(&orig);
        } else if (err == TERN_E_NOTFOUND && op == P_SUBSCRIBE) {
            /* §3.1.3: no such account (the item could not be stored under it) */
            send_type(shard, t->owner, t->contact, "unsubscribed");
        } else if (err == TERN_E_LIMIT) {
            bounce(shard, t->stanza, TERN_ET_WAIT, TERN_SC_RESOURCE_CONSTRAINT,
                   "the recipient's roster is full");
        } else if (err != TERN_E_NOTFOUND) {
            tern_warn(COMP, "%s: subscription from %s failed: %s", t->owner, t->contact,
                      tern_strerror(err));
        }
        return;
    }
    if (!in) {
        /* §3.1.2 and the like: push, then route with the bare 'from' (stamped already) */
        push_change(shard, t);
        if (t->fx & TERN__FX_ROUTE)
            tern_router_send(shard, tern_xml_ref(t->stanza));
    } else {
        if (t->fx & TERN__FX_ROUTE) {
            /* §3.1.3: a request goes to the available resources (or waits
             * for the next one); §3.1.6, §3.2.3, §3.3.3: answers and
             * cancellations to the interested ones, before the push. */
            struct tern_xml *p = tern_xml_copy(t->stanza);
            if (op == P_SUBSCRIBE)
                tern__deliver_local(shard, t->owner, p, 1, 0);
            else
                tern__deliver_local(shard, t->owner, p, 1, 1);
        }
        push_change(shard, t);
        if (t->fx & TERN__FX_AUTOREPLY)
            send_type(shard, t->owner, t->contact, "subscribed");
        if (op == P_SUBSCRIBE && (t->fx & TERN__FX_AUTOREPLY) && !(t->fx & TERN__FX_GAINED_FROM))
            tern__send_presence_of(shard, t->owner, t->contact, 0); /* resync the asker */
    }
    if (t->fx & TERN__FX_GAINED_FROM)
        tern__send_presence_of(shard, t->owner, t->contact, 0);
    if (t->fx & TERN__FX_LOST_FROM)
        tern__send_presence_of(shard, t->owner, t->contact, 1);
}

/* Start the transaction for a subscription stanza of owner's roster about contact. */
static int sub_submit(struct tern_shard *shard, const char *owner, const char *contact, int op,
                      struct tern_xml *stanza_take, const char *reply_to) {
    struct tern__roster_txn *t = tern__roster_txn_new(shard->server, owner, contact);
    t->op = op;
    t->apply = sub_apply;
    t->done = sub_done;
    t->stanza = portable(shard, stanza_take);
    t->reply_to = tern_strdup(reply_to);
    return tern__roster_txn_submit(t);
}

static void subscription_out(struct tern_c2s *c, struct tern_xml *stanza, const struct tern_jid *to,
                             enum ptype type) {
    struct tern_shard *shard = tern_c2s_shard(c);
    const char *owner = tern_c2s_bare(c);
    char *contact = tern_jid_bare(to);
    if (strcmp(contact, owner) == 0) {
        bounce(shard, stanza, TERN_ET_CANCEL, TERN_SC_NOT_ALLOWED,
               "an account cannot subscribe to itself");
        free(contact);
        return;
    }
    /* §3.1.2: the server stamps 'from' with the user's bare JID, and the
     * subscription is with the contact's bare JID. */
    struct tern_xml *out = tern_xml_copy(stanza);
    tern_xml_set_attr(out, "from", owner);
    tern_xml_set_attr(out, "to", contact);
    char *full = tern_jid_full(tern_c2s_jid(c));
    if (sub_submit(shard, owner, contact, (int)type, out, full) != 0)
        bounce(shard, stanza, TERN_ET_WAIT, TERN_SC_INTERNAL_SERVER_ERROR, NULL);
    free(full);
    free(contact);
}

/* ---- outbound ------------------------------------------------------------------------------ */

void tern_presence_outbound(struct tern_c2s *c, struct tern_xml *stanza) {
    struct tern_shard *shard = tern_c2s_shard(c);
    enum ptype type = ptype_of(stanza);
    const char *to_s = tern_xml_attr(stanza, "to");
    struct tern_jid to = {0};

    if (type == P_INVALID) {
        bounce(shard, stanza, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST, "unknown presence type");
        goto out;
    }
    if (!to_s) {
        switch (type) {
        case P_AVAILABLE: go_available(c, stanza); break;
        case P_UNAVAILABLE: go_unavailable(c, stanza, 0); break;
        case P_SUBSCRIBE:
        case P_SUBSCRIBED:
        case P_UNSUBSCRIBE:
        case P_UNSUBSCRIBED:
            bounce(shard, stanza, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST,
                   "a subscription stanza needs a 'to'");
            break;
        default: break; /* an error or a probe to nobody: dropped */
        }
        goto out;
    }
    if (tern_jid_parse(&to, to_s) != 0) {
        bounce(shard, stanza, TERN_ET_MODIFY, TERN_SC_JID_MALFORMED, NULL);
        goto out;
    }
    if (!is_local(shard, &to) && tern_component_known(to.domain)) {
        /* A component (XEP-0114): directed presence is remembered like any
         * other; the rest goes to it as is (no roster state for it yet). */
        if (type == P_AVAILABLE || type == P_UNAVAILABLE)
            directed(c, stanza, &to, type);
        else
            tern_router_send(shard, tern_xml_ref(stanza));
        goto out;
    }
    if (!is_local(shard, &to)) {
        /* No federation yet (RFC 6120 §8.3.3.13). */
        bounce(shard, stanza, TERN_ET_CANCEL, TERN_SC_REMOTE_SERVER_NOT_FOUND, NULL);
        goto out;
    }
    if (!to.local)
        goto out; /* presence to the server itself: nothing here keeps it */
    switch (type) {
    case P_SUBSCRIBE:
    case P_SUBSCRIBED:
    case P_UNSUBSCRIBE:
    case P_UNSUBSCRIBED: subscription_out(c, stanza, &to, type); break;
    case P_AVAILABLE:
    case P_UNAVAILABLE: directed(c, stanza, &to, type); break;
    case P_PROBE:
    case P_ERROR: tern_router_send(shard, tern_xml_ref(stanza)); break;
    case P_INVALID: break;
    }
out:
    tern_jid_free(&to);
    tern_xml_unref(&stanza);
}

/* ---- inbound --------------------------------------------------------------------------------- */

/* A presence for a local account waiting for its view. */
struct delivery {
    char *bare;              /* the account */
    char *resource;          /* addressed resource, or NULL for the bare JID */
    struct tern_xml *stanza; /* the presence (owned) */
};

static void deliver_now(struct tern_shard *shard, const char *bare, const char *resource,
                        struct tern_xml *stanza) {
    if (!resource) {
        /* §4.4.3, §4.6.3 (and errors): every available resource */
        tern__deliver_local(shard, bare, stanza, 1, 0);
        return;
    }
    /* §8.5.3.1 / §8.5.3.2.3: that resource if bound, else silently dropped */
    struct tern_session_ref ref;
    if (tern_sessions_find(shard->server->sessions, bare, resource, &ref) == 0)
        tern_router_to_session(shard, ref, stanza);
    else
        tern_xml_unref(&stanza);
}

static void deliver_cont(struct tern_shard *shard, struct tern__view *v, void *ud) {
    struct delivery *d = ud;
    if (shard)
        deliver_now(shard, d->bare, d->resource, d->stanza);
    else
        tern_xml_unref(&d->stanza);
    free(d->bare);
    free(d->resource);
    free(d);
}

/* Availability for the account: behind any change of its roster still in
 * flight (a presence must not overtake the 'subscribed' that allows it). */
static void inbound_deliver(struct tern_shard *shard, const struct tern_jid *to,
                            struct tern_xml *stanza) {
    char *bare = tern_jid_bare(to);
    struct tern__view *v = tern__view_find(bare);
    if (!v) {
        deliver_now(shard, bare, to->resource, stanza);
        free(bare);
        return;
    }
    struct delivery *d = tern_calloc(1, sizeof *d);
    d->bare = bare;
    d->resource = tern_strdup(to->resource);
    d->stanza = portable(shard, stanza);
    tern__view_when_ready(shard, v, deliver_cont, d);
    tern__view_release(&v);
}

/* A probe waiting for the contact's view. */
struct probe {
    char *contact;           /* the probed account (bare) */
    char *prober;            /* the probe's 'from' (full or bare) */
    char *prober_bare;       /* its bare JID */
    struct tern_server *srv; /* the server */
};

static void probe_free(struct probe *pr) {
    free(pr->contact);
    free(pr->prober);
    free(pr->prober_bare);
    free(pr);
}

static void probe_cont(struct tern_shard *shard, struct tern__view *v, void *ud) {
    struct probe *pr = ud;
    if (!shard) {
        probe_free(pr);
        return;
    }
    int own = strcmp(pr->prober_bare, pr->contact) == 0;
    if (!own && !(tern__view_flags(v, pr->prober_bare) & TERN__VIEW_FROM)) {
        /* §4.3.2: not subscribed: reveal nothing; 'unsubscribed' puts the
         * prober's roster right. Not if the roster could not be read. */
        if (tern__view_loaded(v))
            send_type(shard, pr->contact, pr->prober_bare, "unsubscribed");
        probe_free(pr);
        return;
    }
    /* §4.3.2: the last presence of each available resource; none if the
     * contact has none (we keep no last unavailable presence). */
    size_t n;
    struct tern_xml **ps = tern__view_lasts(v, pr->prober, &n);
    for (size_t i = 0; i < n; i++)
        tern_router_send(shard, ps[i]);
    free(ps);
    probe_free(pr);
}

static void probe_account_checked(void *ud, int err, const struct tern_scram_creds *creds) {
    struct probe *pr = ud;
    /* §4.3.2: no such account */
    if (err == TERN_E_NOTFOUND)
        send_type(tern__store_shard(pr->srv), pr->contact, pr->prober_bare, "unsubscribed");
    probe_free(pr);
}

static void inbound_probe(struct tern_shard *shard, const struct tern_jid *to,
                          const struct tern_jid *from) {
    struct probe *pr = tern_calloc(1, sizeof *pr);
    pr->contact = tern_jid_bare(to);
    pr->prober = tern_jid_full(from);
    pr->prober_bare = tern_jid_bare(from);
    pr->srv = shard->server;
    struct tern__view *v = tern__view_find(pr->contact);
    if (v) {
        tern__view_when_ready(shard, v, probe_cont, pr);
        tern__view_release(&v);
        return;
    }
    /* No available resource: nothing to tell (§4.3.2), unless the account
     * does not exist at all. A bound session proves that it does. */
    if (tern_sessions_list_info(shard->server->sessions, pr->contact, NULL, 0) > 0 ||
        tern_store_account_get(shard->server->store, to->local, probe_account_checked, pr) != 0)
        probe_free(pr);
}

void tern_presence_inbound(struct tern_shard *shard, const struct tern_jid *to,
                           struct tern_xml *stanza) {
    enum ptype type = ptype_of(stanza);
    const char *from_s = tern_xml_attr(stanza, "from");
    struct tern_jid from = {0};
    if (type == P_INVALID || !from_s || tern_jid_parse(&from, from_s) != 0) {
        tern_debug(COMP, "dropping a presence to %s@%s: bad type or 'from'",
                   to->local ? to->local : "", to->domain);
        tern_xml_unref(&stanza);
        return;
    }
    switch (type) {
    case P_AVAILABLE:
    case P_UNAVAILABLE:
    case P_ERROR: /* RFC 6120 §8.3.1: delivered, never answered */
        inbound_deliver(shard, to, stanza);
        stanza = NULL;
        break;
    case P_PROBE: inbound_probe(shard, to, &from); break;
    case P_SUBSCRIBE:
    case P_SUBSCRIBED:
    case P_UNSUBSCRIBE:
    case P_UNSUBSCRIBED: {
        /* §3.1.3: to a full JID counts as to the bare JID */
        char *owner = tern_jid_bare(to);
        char *contact = tern_jid_bare(&from);
        if (strcmp(owner, contact) != 0) {
            struct tern_xml *in = tern_xml_copy(stanza);
            tern_xml_set_attr(in, "from", contact);
            tern_xml_set_attr(in, "to", owner);
            sub_submit(shard, owner, contact, (int)type | OP_IN, in, NULL);
        }
        free(owner);
        free(contact);
        break;
    }
    case P_INVALID: break;
    }
    tern_jid_free(&from);
    tern_xml_unref(&stanza);
}

/* ---- events ---------------------------------------------------------------------------------- */

/*
 * Whether c's resource was bound again (RFC 6120 §7.7.2.2: c is being
 * replaced) by a session that is already available: then the successor's
 * presence stands for the full JID, and an unavailable from it would undo it.
 */
static int replaced_by_available(struct tern_c2s *c) {
    struct tern_server *srv = tern_c2s_shard(c)->server;
    struct tern_session_ref ref;
    if (tern_sessions_find(srv->sessions, tern_c2s_bare(c), tern_c2s_jid(c)->resource, &ref) != 0 ||
        ref.uid == tern_c2s_uid(c))
        return 0;
    size_t n = tern_sessions_list_info(srv->sessions, tern_c2s_bare(c), NULL, 0);
    struct tern_session_info *infos = tern_calloc(n ? n : 1, sizeof *infos);
    size_t got = tern_sessions_list_info(srv->sessions, tern_c2s_bare(c), infos, n);
    int available = 0;
    for (size_t i = 0; i < got && i < n; i++)
        if (infos[i].ref.uid == ref.uid)
            available = infos[i].available;
    free(infos);
    return available;
}

static void on_closing(const struct tern_event_args *a) {
    struct tern_c2s *c = a->session;
    struct tern_c2s_presence *p = tern_c2s_presence(c);
    if (p->available) {
        /* §4.5.2 / §4.6.3: a session that ends while available is gone for
         * its contacts too, as if it had sent unavailable presence. */
        struct tern_xml *u = tern_xml_new(TERN_NS_CLIENT, "presence");
        char *full = tern_jid_full(tern_c2s_jid(c));
        tern_xml_set_attr(u, "type", "unavailable");
        tern_xml_set_attr(u, "from", full);
        free(full);
        go_unavailable(c, u, replaced_by_available(c));
        tern_xml_unref(&u);
    }
    tern_map_free(&p->directed);
    tern_xml_unref(&p->last);
    struct tern__view *v = p->roster;
    p->roster = NULL;
    tern__view_release(&v);
}

/*
 * An account is gone (its rows and the items that held it were removed by
 * whoever deleted it, src/mod/account.h). Cached views must forget it too:
 * otherwise its former contacts would keep broadcasting to a JID that a new
 * account of the same name could take.
 */
static void on_account_deleted(const struct tern_event_args *a) {
    char *bare = tern_jid_bare(a->jid);
    tern__views_forget(bare);
    free(bare);
}

static const struct tern_event_def presence_events[] = {
    {TERN_EV_SESSION_CLOSING, on_closing},
    {TERN_EV_ACCOUNT_DELETED, on_account_deleted},
    {0, NULL},
};

const struct tern_module tern_mod_presence = {
    .name = "presence",
    .events = presence_events,
};
