/*
 * Rosters (RFC 6121 §2): jabber:iq:roster get and set with versioning
 * (§2.6), roster pushes to interested resources (§2.1.6), and the two pieces
 * the presence module builds on (roster.h): the roster transaction, which
 * reads, changes and writes one item on the store thread so that no two
 * changes of a roster can interleave, and the account view, the in-memory
 * copy of an available account's subscription flags and last presences.
 * See docs/internals/presence.md.
 */
#include "mod/roster.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"
#include "server/c2s.h"
#include "server/router.h"
#include "server/server.h"
#include "server/sessions.h"
#include "server/shard.h"
#include "server/stanza.h"
#include "xml/xml.h"
#include "xmpp/jid.h"

#define COMP "roster"

/* ---- module state ---------------------------------------------------------------- */

/*
 * Views are shared by every shard and by the store's completions, so one
 * mutex guards the map and every view's fields. It is never held while a
 * stanza is sent or a callback runs; it is held around tern_store_submit()
 * (lock order: this lock, then the store's) so that the order in which
 * jobs enter the store is the order in which views count them as pending.
 */
static struct {
    uv_once_t once;        /* initialises the rest */
    uv_mutex_t lock;       /* guards views and every view */
    struct tern_map views; /* bare JID -> struct tern__view * */
} g = {.once = UV_ONCE_INIT};

static void g_init(void) {
    if (uv_mutex_init(&g.lock) != 0) {
        tern_error(COMP, "cannot create a mutex");
        abort();
    }
    tern_map_init(&g.views);
}

static void g_lock(void) {
    uv_once(&g.once, g_init);
    uv_mutex_lock(&g.lock);
}

static void g_unlock(void) {
    uv_mutex_unlock(&g.lock);
}

struct tern_shard *tern__store_shard(struct tern_server *srv) {
    return srv->shards[0];
}

/* The session infos of bare's resources: a malloc'd array (NULL if none), *n set. */
static struct tern_session_info *session_infos(struct tern_server *srv, const char *bare,
                                               size_t *n) {
    size_t want = tern_sessions_list_info(srv->sessions, bare, NULL, 0);
    *n = 0;
    if (!want)
        return NULL;
    /* A resource bound in between is left out: it has not asked for anything yet. */
    struct tern_session_info *out = tern_calloc(want, sizeof *out);
    size_t got = tern_sessions_list_info(srv->sessions, bare, out, want);
    *n = got < want ? got : want;
    return out;
}

/* Hand stanza to the session ref: by reference on this shard, a copy for another
 * (a tree's refcount belongs to one thread). */
static void to_session(struct tern_shard *shard, struct tern_session_ref ref,
                       struct tern_xml *stanza) {
    tern_router_to_session(shard, ref,
                           ref.shard == shard->id ? tern_xml_ref(stanza) : tern_xml_copy(stanza));
}

size_t tern__deliver_local(struct tern_shard *shard, const char *bare, struct tern_xml *stanza,
                           int want_available, int want_interested) {
    size_t n, sent = 0;
    struct tern_session_info *infos = session_infos(shard->server, bare, &n);
    for (size_t i = 0; i < n; i++) {
        if ((want_available && infos[i].available) || (want_interested && infos[i].interested)) {
            to_session(shard, infos[i].ref, stanza);
            sent++;
        }
    }
    free(infos);
    tern_xml_unref(&stanza);
    return sent;
}

/* ---- items ------------------------------------------------------------------------ */

void tern__roster_item_copy(struct tern_roster_item *dst, const struct tern_roster_item *src) {
    *dst = *src;
    dst->jid = tern_strdup(src->jid);
    dst->name = tern_strdup(src->name);
    dst->groups = src->ngroups ? tern_calloc(src->ngroups, sizeof *dst->groups) : NULL;
    for (size_t i = 0; i < src->ngroups; i++)
        dst->groups[i] = tern_strdup(src->groups[i]);
}

static const char *sub_name(enum tern_sub sub) {
    switch (sub) {
    case TERN_SUB_TO: return "to";
    case TERN_SUB_FROM: return "from";
    case TERN_SUB_BOTH: return "both";
    case TERN_SUB_NONE: break;
    }
    return "none";
}

void tern__roster_item_el(struct tern_xml *query, const struct tern_roster_item *item,
                          int removed) {
    struct tern_xml *el = tern_xml_add_el(query, TERN_NS_ROSTER, "item");
    tern_xml_set_attr(el, "jid", item->jid);
    if (removed) {
        tern_xml_set_attr(el, "subscription", "remove");
        return;
    }
    if (item->name && item->name[0])
        tern_xml_set_attr(el, "name", item->name);
    tern_xml_set_attr(el, "subscription", sub_name(item->sub));
    if (item->ask)
        tern_xml_set_attr(el, "ask", "subscribe"); /* RFC 6121 §2.1.2.2 */
    if (item->approved)
        tern_xml_set_attr(el, "approved", "true"); /* §2.1.2.1, §3.4 */
    for (size_t i = 0; i < item->ngroups; i++) {
        struct tern_xml *gr = tern_xml_add_el(el, NULL, "group");
        tern_xml_add_text(gr, item->groups[i], strlen(item->groups[i]));
    }
}

static void format_ver(char *buf, size_t len, uint64_t ver) {
    snprintf(buf, len, "%" PRIu64, ver);
}

void tern__roster_push(struct tern_shard *shard, const char *bare,
                       const struct tern_roster_item *item, int removed, uint64_t ver) {
    static atomic_uint_fast64_t next_id;
    char ver_s[24];
    format_ver(ver_s, sizeof ver_s, ver);
    size_t n;
    struct tern_session_info *infos = session_infos(shard->server, bare, &n);
    for (size_t i = 0; i < n; i++) {
        if (!infos[i].interested)
            continue;
        char id[32];
        snprintf(id, sizeof id, "push%" PRIuFAST64, atomic_fetch_add(&next_id, 1) + 1);
        struct tern_xml *iq = tern_xml_new(TERN_NS_CLIENT, "iq");
        tern_xml_set_attr(iq, "type", "set");
        tern_xml_set_attr(iq, "id", id);
        /* RFC 6121 §2.1.6: 'to' the resource's full JID, no 'from' (the
         * account itself). The directory gives no resource names, so the
         * full JID is known only for a session of this shard; elsewhere the
         * push goes without 'to', which RFC 6120 §8.1.1.1 allows for a
         * stanza the server generates for the connected client. */
        if (infos[i].ref.shard == shard->id) {
            struct tern_c2s *c = tern_shard_find(shard, infos[i].ref.uid);
            if (c && tern_c2s_jid(c)) {
                char *full = tern_jid_full(tern_c2s_jid(c));
                tern_xml_set_attr(iq, "to", full);
                free(full);
            }
        }
        struct tern_xml *query = tern_xml_add_el(iq, TERN_NS_ROSTER, "query");
        tern_xml_set_attr(query, "ver", ver_s);
        tern__roster_item_el(query, item, removed);
        tern_router_to_session(shard, infos[i].ref, iq);
    }
    free(infos);
}

/* ---- the account view ---------------------------------------------------------------- */

/* A contact's flags are stored as map values; this bit keeps them non-NULL. */
#define VIEW_PRESENT 0x100u

/* The last presence of one available resource. */
struct last {
    struct last *next;       /* next resource */
    uint64_t uid;            /* its session (a resource bound again is another session) */
    char *full;              /* its full JID */
    struct tern_xml *stanza; /* a private copy, only touched under the lock */
};

struct tern__view {
    char *bare;               /* the account's bare JID (immutable) */
    char *user;               /* its localpart (immutable; read by the store thread) */
    struct tern_server *srv;  /* the server (immutable) */
    int refs;                 /* sessions, jobs and callers holding it */
    int loaded;               /* contacts reflect the store */
    int loading;              /* a load job is in flight */
    unsigned pending;         /* jobs in flight whose done changes or reads it, in order */
    struct tern_map contacts; /* contact bare JID -> (uintptr_t)(flags | VIEW_PRESENT) */
    struct last *lasts;       /* available resources' last presence */
};

static unsigned item_flags(const struct tern_roster_item *it) {
    unsigned f = (unsigned)it->sub;
    if (it->ask)
        f |= TERN__VIEW_ASK;
    if (it->pending_in)
        f |= TERN__VIEW_PENDING_IN;
    if (it->hidden)
        f |= TERN__VIEW_HIDDEN;
    if (it->approved)
        f |= TERN__VIEW_APPROVED;
    return f;
}

/* Lock held. */
static void view_set_contact(struct tern__view *v, const char *contact, int exists,
                             unsigned flags) {
    if (exists)
        tern_map_puts(&v->contacts, contact, (void *)(uintptr_t)(flags | VIEW_PRESENT));
    else
        tern_map_dels(&v->contacts, contact);
}

/* Lock held; frees v with its last reference. */
static void view_unref_locked(struct tern__view *v) {
    if (--v->refs > 0)
        return;
    tern_map_dels(&g.views, v->bare);
    tern_map_free(&v->contacts);
    for (struct last *l = v->lasts, *next; l; l = next) {
        next = l->next;
        free(l->full);
        tern_xml_unref(&l->stanza);
        free(l);
    }
    free(v->bare);
    free(v->user);
    free(v);
}

void tern__view_release(struct tern__view **v) {
    if (!*v)
        return;
    g_lock();
    view_unref_locked(*v);
    g_unlock();
    *v = NULL;
}

struct load_job {
    struct tern_store_job job; /* queued in the store */
    struct tern__view *v;      /* the view (a reference, pending counted) */
    struct tern_roster roster; /* filled on the store thread */
};

static int load_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct load_job *l = tern_store_container(job, struct load_job, job);
    return b->ops->roster_get(b, l->v->user, &l->roster);
}

static void load_done(struct tern_store_job *job, int err) {
    struct load_job *l = tern_store_container(job, struct load_job, job);
    struct tern__view *v = l->v;
    g_lock();
    if (err == 0) {
        tern_map_free(&v->contacts);
        for (size_t i = 0; i < l->roster.n; i++)
            view_set_contact(v, l->roster.items[i].jid, 1, item_flags(&l->roster.items[i]));
        v->loaded = 1;
    }
    v->loading = 0;
    v->pending--;
    view_unref_locked(v);
    g_unlock();
    if (err)
        tern_warn(COMP, "%s: cannot load the roster: %s", v->bare, tern_strerror(err));
    tern_roster_free(&l->roster);
    free(l);
}

/* Lock held: queue a load of v unless one is in flight. */
static void view_load_locked(struct tern__view *v) {
    if (v->loading)
        return;
    struct load_job *l = tern_calloc(1, sizeof *l);
    l->job.run = load_run;
    l->job.done = load_done;
    l->v = v;
    if (tern_store_submit(v->srv->store, &l->job) != 0) {
        free(l);
        return; /* closing: the view stays unloaded (empty) */
    }
    v->refs++;
    v->pending++;
    v->loading = 1;
}

struct tern__view *tern__view_acquire(struct tern_server *srv, const char *bare) {
    g_lock();
    struct tern__view *v = tern_map_gets(&g.views, bare);
    if (!v) {
        v = tern_calloc(1, sizeof *v);
        v->bare = tern_strdup(bare);
        const char *at = strchr(bare, '@');
        v->user = at ? tern_strndup(bare, (size_t)(at - bare)) : tern_strdup(bare);
        v->srv = srv;
        tern_map_init(&v->contacts);
        tern_map_puts(&g.views, bare, v);
        view_load_locked(v);
    }
    v->refs++;
    g_unlock();
    return v;
}

struct tern__view *tern__view_find(const char *bare) {
    g_lock();
    struct tern__view *v = tern_map_gets(&g.views, bare);
    if (v)
        v->refs++;
    g_unlock();
    return v;
}

struct barrier_job {
    struct tern_store_job job; /* queued in the store */
    struct tern__view *v;      /* the view (a reference, pending counted) */
    tern__view_fn fn;          /* the continuation */
    void *ud;                  /* its argument */
};

static int barrier_run(struct tern_store_backend *b, struct tern_store_job *job) {
    return 0; /* nothing to do there: the job only keeps its place in the queue */
}

static void barrier_done(struct tern_store_job *job, int err) {
    struct barrier_job *bj = tern_store_container(job, struct barrier_job, job);
    struct tern__view *v = bj->v;
    /* pending drops only after fn: until then anything else waits behind it */
    bj->fn(tern__store_shard(v->srv), v, bj->ud);
    g_lock();
    v->pending--;
    view_unref_locked(v);
    g_unlock();
    free(bj);
}

void tern__view_when_ready(struct tern_shard *shard, struct tern__view *v, tern__view_fn fn,
                           void *ud) {
    g_lock();
    if (v->loaded && v->pending == 0) {
        g_unlock();
        fn(shard, v, ud);
        return;
    }
    if (!v->loaded)
        view_load_locked(v); /* a load that failed is tried again */
    struct barrier_job *bj = tern_calloc(1, sizeof *bj);
    bj->job.run = barrier_run;
    bj->job.done = barrier_done;
    bj->v = v;
    bj->fn = fn;
    bj->ud = ud;
    int rc = tern_store_submit(v->srv->store, &bj->job);
    if (rc == 0) {
        v->refs++;
        v->pending++;
    }
    g_unlock();
    if (rc != 0) {
        free(bj);
        fn(NULL, v, ud); /* the store is closing: let the caller free ud */
    }
}

int tern__view_loaded(struct tern__view *v) {
    g_lock();
    int loaded = v->loaded;
    g_unlock();
    return loaded;
}

unsigned tern__view_flags(struct tern__view *v, const char *contact) {
    g_lock();
    uintptr_t f = (uintptr_t)tern_map_gets(&v->contacts, contact);
    g_unlock();
    return (unsigned)(f & ~(uintptr_t)VIEW_PRESENT);
}

struct collect {
    unsigned any;  /* flags wanted */
    int hidden;    /* hidden items too */
    char **out;    /* collected */
    size_t n, cap; /* used, allocated */
};

static void collect_one(const void *key, size_t klen, void *value, void *ud) {
    struct collect *c = ud;
    unsigned f = (unsigned)(uintptr_t)value;
    if (!(f & c->any) || (!c->hidden && (f & TERN__VIEW_HIDDEN)))
        return;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->out = tern_realloc(c->out, c->cap * sizeof *c->out);
    }
    c->out[c->n++] = tern_strndup(key, klen);
}

char **tern__view_contacts(struct tern__view *v, unsigned any, int hidden, size_t *n) {
    struct collect c = {any, hidden, NULL, 0, 0};
    g_lock();
    tern_map_each(&v->contacts, collect_one, &c);
    g_unlock();
    *n = c.n;
    return c.out;
}

static void forget_in(const void *key, size_t klen, void *value, void *ud) {
    struct tern__view *v = value;
    tern_map_dels(&v->contacts, ud);
}

void tern__views_forget(const char *contact) {
    g_lock();
    tern_map_each(&g.views, forget_in, (void *)contact);
    g_unlock();
}

void tern__view_set_last(struct tern__view *v, const char *full, uint64_t uid,
                         const struct tern_xml *presence) {
    struct tern_xml *copy = tern_xml_copy(presence);
    tern_xml_set_attr(copy, "to", NULL);
    g_lock();
    struct last *l = v->lasts;
    while (l && l->uid != uid)
        l = l->next;
    if (!l) {
        l = tern_calloc(1, sizeof *l);
        l->uid = uid;
        l->full = tern_strdup(full);
        l->next = v->lasts;
        v->lasts = l;
    }
    struct tern_xml *old = l->stanza;
    l->stanza = copy;
    g_unlock();
    tern_xml_unref(&old);
}

void tern__view_del_last(struct tern__view *v, uint64_t uid) {
    struct last *gone = NULL;
    g_lock();
    for (struct last **pp = &v->lasts; *pp; pp = &(*pp)->next) {
        if ((*pp)->uid == uid) {
            gone = *pp;
            *pp = gone->next;
            break;
        }
    }
    g_unlock();
    if (gone) {
        free(gone->full);
        tern_xml_unref(&gone->stanza);
        free(gone);
    }
}

struct tern_xml **tern__view_lasts(struct tern__view *v, const char *to, size_t *n) {
    size_t cap = 0, k = 0;
    struct tern_xml **out = NULL;
    g_lock();
    for (struct last *l = v->lasts; l; l = l->next)
        cap++;
    if (cap)
        out = tern_calloc(cap, sizeof *out);
    for (struct last *l = v->lasts; l; l = l->next) {
        struct tern_xml *p = tern_xml_copy(l->stanza);
        tern_xml_set_attr(p, "from", l->full);
        tern_xml_set_attr(p, "to", to);
        out[k++] = p;
    }
    g_unlock();
    *n = k;
    return out;
}

/* ---- the roster transaction -------------------------------------------------------------- */

struct tern__roster_txn *tern__roster_txn_new(struct tern_server *srv, const char *owner_bare,
                                              const char *contact) {
    struct tern__roster_txn *t = tern_calloc(1, sizeof *t);
    t->srv = srv;
    t->owner = tern_strdup(owner_bare);
    const char *at = strchr(owner_bare, '@');
    t->user = at ? tern_strndup(owner_bare, (size_t)(at - owner_bare)) : tern_strdup(owner_bare);
    t->contact = tern_strdup(contact);
    return t;
}

static void txn_free(struct tern__roster_txn *t) {
    free(t->user);
    free(t->owner);
    free(t->contact);
    free(t->reply_to);
    tern_xml_unref(&t->stanza);
    tern_roster_item_free(&t->req);
    tern_roster_item_free(&t->before);
    tern_roster_item_free(&t->after);
    free(t);
}

/*
 * Store thread. The whole read-modify-write runs here, inside the job's
 * savepoint, and the store thread runs one job at a time: two transactions
 * on one roster can never interleave, whichever shards submitted them.
 */
static int txn_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct tern__roster_txn *t = tern_store_container(job, struct tern__roster_txn, job);
    struct tern_roster r;
    int rc = b->ops->roster_get(b, t->user, &r);
    if (rc < 0)
        return rc;
    struct tern_roster_item item = {0};
    int exists = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (strcmp(r.items[i].jid, t->contact) == 0) {
            tern__roster_item_copy(&t->before, &r.items[i]);
            tern__roster_item_copy(&item, &r.items[i]);
            exists = 1;
            break;
        }
    }
    t->count = r.n;
    t->version = r.version;
    tern_roster_free(&r);
    if (!exists)
        item.jid = tern_strdup(t->contact);
    int existed = exists;

    rc = t->apply(t, &item, &exists);
    if (rc == 0 && exists && !existed && t->count >= TERN_ROSTER_MAX)
        rc = TERN_E_LIMIT;
    if (rc == 0 && t->write) {
        if (exists)
            rc = b->ops->roster_put(b, t->user, &item, &t->version);
        else if (existed)
            rc = b->ops->roster_del(b, t->user, t->contact, &t->version);
        else
            t->write = 0; /* nothing there before or after */
    }
    if (rc == 0 && exists)
        t->after = item; /* taken */
    else
        tern_roster_item_free(&item);
    if (rc < 0) {
        tern_roster_item_free(&t->before);
        tern_roster_item_free(&t->after);
    }
    return rc;
}

static void txn_done(struct tern_store_job *job, int err) {
    struct tern__roster_txn *t = tern_store_container(job, struct tern__roster_txn, job);
    struct tern_shard *shard = tern__store_shard(t->srv);
    if (err) {
        /* run succeeded but the commit did not: nothing of it exists */
        tern_roster_item_free(&t->before);
        tern_roster_item_free(&t->after);
        t->write = 0;
    }
    if (t->view && t->write) {
        g_lock();
        view_set_contact(t->view, t->contact, t->after.jid != NULL,
                         t->after.jid ? item_flags(&t->after) : 0);
        g_unlock();
    }
    t->done(shard, t, err);
    if (t->view) {
        g_lock();
        t->view->pending--;
        view_unref_locked(t->view);
        g_unlock();
    }
    txn_free(t);
}

int tern__roster_txn_submit(struct tern__roster_txn *t) {
    t->job.run = txn_run;
    t->job.done = txn_done;
    t->job.write = 1;
    g_lock();
    t->view = tern_map_gets(&g.views, t->owner);
    int rc = tern_store_submit(t->srv->store, &t->job);
    if (rc == 0 && t->view) {
        t->view->refs++;
        t->view->pending++;
    }
    g_unlock();
    if (rc != 0) {
        t->view = NULL;
        txn_free(t);
        return TERN_E_CLOSED;
    }
    return 0;
}

/* ---- jabber:iq:roster ------------------------------------------------------------------ */

/* What a roster request keeps across the store's round trip: never the
 * session (it may be gone), only what the answer needs. */
struct get_req {
    struct tern_store_job job; /* queued in the store */
    struct tern_server *srv;   /* the server */
    char *user;                /* localpart */
    char *reply_to;            /* full JID of the requester */
    char *id;                  /* the iq's id */
    char *from;                /* 'from' of the answer (the request's 'to'), or NULL */
    char *ver;                 /* the client's ver, or NULL */
    struct tern_roster roster; /* filled on the store thread */
};

/* A bare reply to a roster request, addressed by strings (the request is gone). */
static struct tern_xml *reply_new(const char *type, const char *id, const char *to,
                                  const char *from) {
    struct tern_xml *iq = tern_xml_new(TERN_NS_CLIENT, "iq");
    tern_xml_set_attr(iq, "type", type);
    tern_xml_set_attr(iq, "id", id);
    tern_xml_set_attr(iq, "to", to);
    tern_xml_set_attr(iq, "from", from);
    return iq;
}

static void add_error(struct tern_xml *iq, enum tern_error_type type, enum tern_stanza_cond cond,
                      const char *text) {
    struct tern_xml *e = tern_xml_add_el(iq, NULL, "error");
    tern_xml_set_attr(e, "type", tern_error_type_name(type));
    tern_xml_add_el(e, TERN_NS_STANZA_ERRORS, tern_stanza_cond_name(cond));
    if (text) {
        struct tern_xml *tx = tern_xml_add_el(e, TERN_NS_STANZA_ERRORS, "text");
        tern_xml_set_attr(tx, "xml:lang", "en");
        tern_xml_add_text(tx, text, strlen(text));
    }
}

static void reply_error(struct tern_iq_ctx *ctx, enum tern_error_type type,
                        enum tern_stanza_cond cond, const char *text) {
    struct tern_stanza_error e = {type, cond, text};
    tern_module_reply(ctx, tern_stanza_error_reply(ctx->iq, &e));
}

/* The store could not do it: internal-server-error, to try again later. */
static void store_failed_error(struct tern_xml *iq, int err) {
    add_error(iq, TERN_ET_WAIT, TERN_SC_INTERNAL_SERVER_ERROR,
              err == TERN_E_CLOSED ? "the server is shutting down" : "the roster store failed");
}

static int get_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct get_req *r = tern_store_container(job, struct get_req, job);
    return b->ops->roster_get(b, r->user, &r->roster);
}

static void get_done(struct tern_store_job *job, int err) {
    struct get_req *r = tern_store_container(job, struct get_req, job);
    struct tern_shard *shard = tern__store_shard(r->srv);
    struct tern_xml *iq;
    if (err) {
        tern_warn(COMP, "%s: roster get failed: %s", r->reply_to, tern_strerror(err));
        iq = reply_new("error", r->id, r->reply_to, r->from);
        store_failed_error(iq, err);
    } else {
        char ver[24];
        format_ver(ver, sizeof ver, r->roster.version);
        iq = reply_new("result", r->id, r->reply_to, r->from);
        /* RFC 6121 §2.6.3: the client's version is current: an empty result.
         * Without a change log, any other version gets the whole roster. */
        if (!r->ver || strcmp(r->ver, ver) != 0) {
            struct tern_xml *query = tern_xml_add_el(iq, TERN_NS_ROSTER, "query");
            tern_xml_set_attr(query, "ver", ver);
            for (size_t i = 0; i < r->roster.n; i++)
                if (!r->roster.items[i].hidden) /* §3.1.3: Pending In is not shown */
                    tern__roster_item_el(query, &r->roster.items[i], 0);
        }
    }
    tern_router_send(shard, iq);
    tern_roster_free(&r->roster);
    free(r->user);
    free(r->reply_to);
    free(r->id);
    free(r->from);
    free(r->ver);
    free(r);
}

static void roster_get(struct tern_iq_ctx *ctx) {
    struct tern_c2s *c = ctx->session;
    struct tern_server *srv = ctx->shard->server;
    /* RFC 6121 §2.1.6: from now on this resource gets roster pushes. */
    tern_c2s_presence(c)->interested = 1;
    tern_sessions_set_interested(srv->sessions, tern_c2s_bare(c), ctx->from->resource,
                                 tern_c2s_uid(c));

    struct get_req *r = tern_calloc(1, sizeof *r);
    r->job.run = get_run;
    r->job.done = get_done;
    r->srv = srv;
    r->user = tern_strdup(ctx->from->local);
    r->reply_to = tern_jid_full(ctx->from);
    r->id = tern_strdup(tern_xml_attr(ctx->iq, "id"));
    r->from = tern_strdup(tern_xml_attr(ctx->iq, "to"));
    r->ver = tern_strdup(tern_xml_attr(ctx->payload, "ver"));
    int rc = tern_store_submit(srv->store, &r->job);
    if (rc != 0) {
        reply_error(ctx, TERN_ET_WAIT, TERN_SC_INTERNAL_SERVER_ERROR,
                    "the server is shutting down");
        free(r->user);
        free(r->reply_to);
        free(r->id);
        free(r->from);
        free(r->ver);
        free(r);
    }
}

/* Operations of roster-set transactions. */
enum { OP_SET = 1, OP_REMOVE = 2 };

/* Effects of a removal (RFC 6121 §2.5.2). */
enum {
    FX_UNSUBSCRIBE = 1,  /* the user was subscribed to the contact, or asked to be */
    FX_UNSUBSCRIBED = 2, /* the contact was subscribed to the user, or asked to be */
    FX_UNAVAILABLE = 4,  /* the contact had the user's presence: it gets unavailable */
};

static int apply_set(struct tern__roster_txn *t, struct tern_roster_item *item, int *exists) {
    /* §2.1.2.5: the client cannot change the subscription; only name and groups. */
    free(item->name);
    for (size_t i = 0; i < item->ngroups; i++)
        free(item->groups[i]);
    free(item->groups);
    item->name = tern_strdup(t->req.name);
    item->ngroups = t->req.ngroups;
    item->groups = NULL;
    if (t->req.ngroups) {
        item->groups = tern_calloc(t->req.ngroups, sizeof *item->groups);
        for (size_t i = 0; i < t->req.ngroups; i++)
            item->groups[i] = tern_strdup(t->req.groups[i]);
    }
    item->hidden = 0; /* a Pending In contact the user adds joins the roster */
    *exists = 1;
    t->write = 1;
    return 0;
}

static int apply_remove(struct tern__roster_txn *t, struct tern_roster_item *item, int *exists) {
    if (!*exists || item->hidden)
        return TERN_E_NOTFOUND; /* §2.5.3; a hidden item is not in the user's roster */
    if ((item->sub & TERN_SUB_TO) || item->ask)
        t->fx |= FX_UNSUBSCRIBE;
    if ((item->sub & TERN_SUB_FROM) || item->pending_in)
        t->fx |= FX_UNSUBSCRIBED;
    if (item->sub & TERN_SUB_FROM)
        t->fx |= FX_UNAVAILABLE;
    *exists = 0;
    t->write = 1;
    return 0;
}

/* A presence of type from the owner's bare JID to the contact's, through the
 * contact's server's inbound rules. */
static void send_sub(struct tern_shard *shard, const char *from, const char *to, const char *type) {
    struct tern_xml *p = tern_xml_new(TERN_NS_CLIENT, "presence");
    tern_xml_set_attr(p, "from", from);
    tern_xml_set_attr(p, "to", to);
    tern_xml_set_attr(p, "type", type);
    tern_router_send(shard, p);
}

void tern__send_presence_of(struct tern_shard *shard, const char *owner, const char *to,
                            int unavailable) {
    struct tern__view *v = tern__view_find(owner);
    if (!v)
        return; /* no available resource */
    size_t n;
    struct tern_xml **ps = tern__view_lasts(v, to, &n);
    tern__view_release(&v);
    for (size_t i = 0; i < n; i++) {
        if (unavailable) {
            struct tern_xml *u = tern_xml_new(TERN_NS_CLIENT, "presence");
            tern_xml_set_attr(u, "type", "unavailable");
            tern_xml_set_attr(u, "from", tern_xml_attr(ps[i], "from"));
            tern_xml_set_attr(u, "to", to);
            tern_xml_unref(&ps[i]);
            ps[i] = u;
        }
        tern_router_send(shard, ps[i]);
    }
    free(ps);
}

static void set_done(struct tern_shard *shard, struct tern__roster_txn *t, int err) {
    const char *id = tern_xml_attr(t->stanza, "id");
    const char *from = tern_xml_attr(t->stanza, "to");
    if (err) {
        struct tern_xml *iq = reply_new("error", id, t->reply_to, from);
        if (err == TERN_E_NOTFOUND && t->op == OP_REMOVE) {
            add_error(iq, TERN_ET_CANCEL, TERN_SC_ITEM_NOT_FOUND, NULL);
        } else if (err == TERN_E_LIMIT) {
            add_error(iq, TERN_ET_MODIFY, TERN_SC_POLICY_VIOLATION,
                      "the roster is full (at most 1000 items)");
        } else {
            tern_warn(COMP, "%s: roster set failed: %s", t->reply_to, tern_strerror(err));
            store_failed_error(iq, err);
        }
        tern_router_send(shard, iq);
        return;
    }
    /* §2.3.2: the result to the requester, then the push to every interested resource. */
    tern_router_send(shard, reply_new("result", id, t->reply_to, from));
    if (t->op == OP_SET) {
        tern__roster_push(shard, t->owner, &t->after, 0, t->version);
        return;
    }
    tern__roster_push(shard, t->owner, &t->before, 1, t->version);
    /* §2.5.2: the contact learns that the subscriptions are gone. */
    if (t->fx & FX_UNSUBSCRIBE)
        send_sub(shard, t->owner, t->contact, "unsubscribe");
    if (t->fx & FX_UNSUBSCRIBED)
        send_sub(shard, t->owner, t->contact, "unsubscribed");
    /* §3.2.2: a cancelled subscription ends with unavailable from each resource. */
    if (t->fx & FX_UNAVAILABLE)
        tern__send_presence_of(shard, t->owner, t->contact, 1);
}

/* Validate the <item/> of a roster set (RFC 6121 §2.3.3) into req; on a
 * violation the error is filled and -1 returned. */
static int parse_set_item(const struct tern_xml *item, const struct tern_jid *owner,
                          struct tern_roster_item *req, int *remove, struct tern_stanza_error *e) {
    const char *jid_s = tern_xml_attr(item, "jid");
    *e = (struct tern_stanza_error){TERN_ET_MODIFY, TERN_SC_BAD_REQUEST, NULL};
    if (!jid_s) {
        e->text = "an item needs a jid";
        return -1;
    }
    struct tern_jid j;
    if (tern_jid_parse(&j, jid_s) != 0) {
        e->cond = TERN_SC_JID_MALFORMED;
        return -1;
    }
    if (j.resource) {
        tern_jid_free(&j);
        e->cond = TERN_SC_JID_MALFORMED;
        e->text = "roster items are bare JIDs";
        return -1;
    }
    if (tern_jid_equal(&j, owner, 1)) {
        tern_jid_free(&j);
        *e = (struct tern_stanza_error){TERN_ET_CANCEL, TERN_SC_NOT_ALLOWED,
                                        "the account itself cannot be in its roster"};
        return -1;
    }
    req->jid = tern_jid_bare(&j);
    tern_jid_free(&j);

    const char *sub = tern_xml_attr(item, "subscription");
    *remove = sub && strcmp(sub, "remove") == 0; /* §2.1.2.5: any other value is ignored */
    if (*remove)
        return 0;

    const char *name = tern_xml_attr(item, "name");
    if (name && strlen(name) > TERN_ROSTER_NAME_MAX) {
        *e = (struct tern_stanza_error){TERN_ET_MODIFY, TERN_SC_NOT_ACCEPTABLE, "name too long"};
        return -1;
    }
    req->name = name && name[0] ? tern_strdup(name) : NULL;
    for (struct tern_xml *gr = tern_xml_child(item, TERN_NS_ROSTER, "group"); gr;
         gr = tern_xml_next(gr, TERN_NS_ROSTER, "group")) {
        if (req->ngroups == TERN_ROSTER_GROUPS_MAX) {
            *e = (struct tern_stanza_error){TERN_ET_MODIFY, TERN_SC_NOT_ACCEPTABLE,
                                            "too many groups (at most 64)"};
            return -1;
        }
        char *g_name = tern_xml_text(gr);
        size_t len = strlen(g_name);
        if (len == 0 || len > TERN_ROSTER_NAME_MAX) {
            free(g_name);
            *e = (struct tern_stanza_error){TERN_ET_MODIFY, TERN_SC_NOT_ACCEPTABLE,
                                            len ? "group name too long" : "empty group name"};
            return -1;
        }
        for (size_t i = 0; i < req->ngroups; i++) {
            if (strcmp(req->groups[i], g_name) == 0) {
                free(g_name);
                e->text = "duplicate group";
                return -1;
            }
        }
        if (req->ngroups == 0)
            req->groups = tern_calloc(TERN_ROSTER_GROUPS_MAX, sizeof *req->groups);
        req->groups[req->ngroups++] = g_name;
    }
    return 0;
}

static void roster_set(struct tern_iq_ctx *ctx) {
    struct tern_xml *item = tern_xml_first_el(ctx->payload);
    struct tern_stanza_error e = {TERN_ET_MODIFY, TERN_SC_BAD_REQUEST, NULL};
    /* §2.3.3: exactly one <item/> */
    if (!item || strcmp(item->name, "item") != 0 || strcmp(item->ns, TERN_NS_ROSTER) != 0 ||
        tern_xml_next(item, NULL, NULL)) {
        e.text = "a roster set carries exactly one item";
        tern_module_reply(ctx, tern_stanza_error_reply(ctx->iq, &e));
        return;
    }
    struct tern_roster_item req = {0};
    int remove = 0;
    if (parse_set_item(item, ctx->from, &req, &remove, &e) != 0) {
        tern_roster_item_free(&req);
        tern_module_reply(ctx, tern_stanza_error_reply(ctx->iq, &e));
        return;
    }
    char *owner = tern_jid_bare(ctx->from);
    struct tern__roster_txn *t = tern__roster_txn_new(ctx->shard->server, owner, req.jid);
    free(owner);
    t->op = remove ? OP_REMOVE : OP_SET;
    t->apply = remove ? apply_remove : apply_set;
    t->done = set_done;
    t->req = req; /* taken */
    t->reply_to = tern_jid_full(ctx->from);
    /* Only id and 'to' are needed later; a private copy of the envelope
     * keeps the request's tree on its own thread. */
    t->stanza = tern_xml_new(TERN_NS_CLIENT, "iq");
    tern_xml_set_attr(t->stanza, "id", tern_xml_attr(ctx->iq, "id"));
    tern_xml_set_attr(t->stanza, "to", tern_xml_attr(ctx->iq, "to"));
    if (tern__roster_txn_submit(t) != 0)
        reply_error(ctx, TERN_ET_WAIT, TERN_SC_INTERNAL_SERVER_ERROR,
                    "the server is shutting down");
}

static enum tern_hook_result roster_iq(struct tern_iq_ctx *ctx) {
    /* RFC 6121 §2.1.5: only the account itself reads or changes its roster;
     * a request without 'to', or to the domain, is the sender's own. */
    if (!ctx->session ||
        (ctx->target == TERN_IQ_TO_ACCOUNT && !tern_jid_equal(ctx->to, ctx->from, 1))) {
        reply_error(ctx, TERN_ET_AUTH, TERN_SC_FORBIDDEN, NULL);
        return TERN_HANDLED;
    }
    if (strcmp(ctx->payload->name, "query") != 0) {
        reply_error(ctx, TERN_ET_MODIFY, TERN_SC_BAD_REQUEST, NULL);
        return TERN_HANDLED;
    }
    const char *type = tern_xml_attr(ctx->iq, "type");
    if (type && strcmp(type, "get") == 0)
        roster_get(ctx);
    else
        roster_set(ctx);
    return TERN_HANDLED;
}

static void roster_fini(struct tern_server *srv) {
    /* Every session released its view when it ended, every job when it
     * completed; whatever is left was leaked by someone. */
    g_lock();
    size_t left = g.views.count;
    g_unlock();
    if (left)
        tern_warn(COMP, "%zu account views still referenced at shutdown", left);
}

static const struct tern_iq_def roster_iqs[] = {
    {TERN_NS_ROSTER, TERN_IQ_TO_SERVER | TERN_IQ_TO_ACCOUNT, roster_iq},
    {NULL, 0, NULL},
};

/* disco#info on an account (XEP-0030): its roster is there to be asked for. */
static const char *const roster_account_features[] = {TERN_NS_ROSTER, NULL};

/* RFC 6121 §2.6.1 (versioning) and §3.4 (pre-approval) stream features. */
static const char *const roster_stream_features[] = {
    "<ver xmlns='" TERN_NS_ROSTERVER "'/>",
    "<sub xmlns='" TERN_NS_PREAPPROVAL "'/>",
    NULL,
};

const struct tern_module tern_mod_roster = {
    .name = "roster",
    .fini = roster_fini,
    .iqs = roster_iqs,
    .account_features = roster_account_features,
    .stream_features = roster_stream_features,
};
