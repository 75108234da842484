#include "server/sessions.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/err.h"
#include "core/map.h"
#include "core/mem.h"

/* One bound resource of an account. */
struct resource_entry {
    struct resource_entry *next;   /* next resource of the same account, in bind order */
    struct tern_session_info info; /* where it lives and its presence facts */
    char resource[];               /* the prepared resourcepart */
};

/* All bound resources of one bare JID. */
struct account_entry {
    struct resource_entry *first; /* bind order */
    size_t count;                 /* resources bound */
};

struct tern_sessions {
    uv_rwlock_t lock;    /* readers route, writers bind/unbind */
    struct tern_map map; /* bare JID -> struct account_entry */
    size_t total;        /* bound sessions */
};

struct tern_sessions *tern_sessions_new(void) {
    struct tern_sessions *d = tern_calloc(1, sizeof *d);
    uv_rwlock_init(&d->lock);
    tern_map_init(&d->map);
    return d;
}

static void free_account(const void *k, size_t kl, void *v, void *ud) {
    struct account_entry *a = v;
    for (struct resource_entry *r = a->first, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    free(a);
}

void tern_sessions_free(struct tern_sessions **d) {
    if (!*d)
        return;
    tern_map_each(&(*d)->map, free_account, NULL);
    tern_map_free(&(*d)->map);
    uv_rwlock_destroy(&(*d)->lock);
    free(*d);
    *d = NULL;
}

int tern_sessions_bind(struct tern_sessions *d, const char *bare, const char *resource,
                       struct tern_session_ref ref, struct tern_session_ref *old) {
    int replaced = 0;
    uv_rwlock_wrlock(&d->lock);
    struct account_entry *a = tern_map_gets(&d->map, bare);
    if (!a) {
        a = tern_calloc(1, sizeof *a);
        tern_map_puts(&d->map, bare, a);
    }
    struct resource_entry **pp = &a->first;
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->resource, resource) == 0) {
            *old = (*pp)->info.ref;
            memset(&(*pp)->info, 0, sizeof(*pp)->info);
            (*pp)->info.ref = ref;
            replaced = 1;
            break;
        }
    }
    if (!replaced) {
        size_t n = strlen(resource);
        struct resource_entry *r = tern_malloc(sizeof *r + n + 1);
        r->next = NULL;
        memset(&r->info, 0, sizeof r->info);
        r->info.ref = ref;
        memcpy(r->resource, resource, n + 1);
        *pp = r;
        a->count++;
        d->total++;
    }
    uv_rwlock_wrunlock(&d->lock);
    return replaced;
}

void tern_sessions_unbind(struct tern_sessions *d, const char *bare, const char *resource,
                          uint64_t uid) {
    uv_rwlock_wrlock(&d->lock);
    struct account_entry *a = tern_map_gets(&d->map, bare);
    if (a) {
        for (struct resource_entry **pp = &a->first; *pp; pp = &(*pp)->next) {
            struct resource_entry *r = *pp;
            if (strcmp(r->resource, resource) == 0) {
                if (r->info.ref.uid == uid) {
                    *pp = r->next;
                    free(r);
                    a->count--;
                    d->total--;
                }
                break;
            }
        }
        if (a->count == 0) {
            tern_map_dels(&d->map, bare);
            free(a);
        }
    }
    uv_rwlock_wrunlock(&d->lock);
}

int tern_sessions_find(struct tern_sessions *d, const char *bare, const char *resource,
                       struct tern_session_ref *out) {
    int rc = TERN_E_NOTFOUND;
    uv_rwlock_rdlock(&d->lock);
    struct account_entry *a = tern_map_gets(&d->map, bare);
    for (struct resource_entry *r = a ? a->first : NULL; r; r = r->next) {
        if (strcmp(r->resource, resource) == 0) {
            *out = r->info.ref;
            rc = 0;
            break;
        }
    }
    uv_rwlock_rdunlock(&d->lock);
    return rc;
}

size_t tern_sessions_list(struct tern_sessions *d, const char *bare, struct tern_session_ref *out,
                          size_t max) {
    size_t n = 0;
    uv_rwlock_rdlock(&d->lock);
    struct account_entry *a = tern_map_gets(&d->map, bare);
    if (a) {
        for (struct resource_entry *r = a->first; r; r = r->next, n++)
            if (n < max)
                out[n] = r->info.ref;
    }
    uv_rwlock_rdunlock(&d->lock);
    return n;
}

/* The entry of bare/resource if it still belongs to uid (lock held). */
static struct resource_entry *entry_for(struct tern_sessions *d, const char *bare,
                                        const char *resource, uint64_t uid) {
    struct account_entry *a = tern_map_gets(&d->map, bare);
    for (struct resource_entry *r = a ? a->first : NULL; r; r = r->next)
        if (strcmp(r->resource, resource) == 0)
            return r->info.ref.uid == uid ? r : NULL;
    return NULL;
}

int tern_sessions_set_presence(struct tern_sessions *d, const char *bare, const char *resource,
                               uint64_t uid, int available, int priority) {
    uv_rwlock_wrlock(&d->lock);
    struct resource_entry *r = entry_for(d, bare, resource, uid);
    if (r) {
        r->info.available = available;
        r->info.priority = priority;
    }
    uv_rwlock_wrunlock(&d->lock);
    return r ? 0 : TERN_E_NOTFOUND;
}

int tern_sessions_set_interested(struct tern_sessions *d, const char *bare, const char *resource,
                                 uint64_t uid) {
    uv_rwlock_wrlock(&d->lock);
    struct resource_entry *r = entry_for(d, bare, resource, uid);
    if (r)
        r->info.interested = 1;
    uv_rwlock_wrunlock(&d->lock);
    return r ? 0 : TERN_E_NOTFOUND;
}

size_t tern_sessions_list_info(struct tern_sessions *d, const char *bare,
                               struct tern_session_info *out, size_t max) {
    size_t n = 0;
    uv_rwlock_rdlock(&d->lock);
    struct account_entry *a = tern_map_gets(&d->map, bare);
    for (struct resource_entry *r = a ? a->first : NULL; r; r = r->next, n++)
        if (n < max)
            out[n] = r->info;
    uv_rwlock_rdunlock(&d->lock);
    return n;
}

size_t tern_sessions_count(struct tern_sessions *d) {
    uv_rwlock_rdlock(&d->lock);
    size_t n = d->total;
    uv_rwlock_rdunlock(&d->lock);
    return n;
}
