/*
 * One table keyed by the textual address. An entry lives while it has open
 * connections, a failure window or a ban in force; it is dropped when all
 * three are over, so the table is bounded by the number of connected or
 * recently misbehaving addresses. A mutex guards it because every shard's
 * accept and SASL code uses it.
 */
#include "server/iplimits.h"

#include <stdlib.h>

#include <uv.h>

#include "core/err.h"
#include "core/map.h"
#include "core/mem.h"

struct ip_entry {
    int conns;             /* open connections */
    int failures;          /* failures in the current window */
    uint64_t window_start; /* ms when the current window began */
    uint64_t banned_until; /* ms; 0 if not banned */
};

struct tern_iplimits {
    struct tern_iplimits_conf conf; /* limits */
    uv_mutex_t lock;                /* guards map */
    struct tern_map map;            /* address -> struct ip_entry */
};

struct tern_iplimits *tern_iplimits_new(const struct tern_iplimits_conf *conf) {
    struct tern_iplimits *l = tern_calloc(1, sizeof *l);
    l->conf = *conf;
    uv_mutex_init(&l->lock);
    tern_map_init(&l->map);
    return l;
}

static void free_entry(const void *k, size_t kl, void *v, void *ud) {
    free(v);
}

void tern_iplimits_free(struct tern_iplimits **l) {
    if (!*l)
        return;
    tern_map_each(&(*l)->map, free_entry, NULL);
    tern_map_free(&(*l)->map);
    uv_mutex_destroy(&(*l)->lock);
    free(*l);
    *l = NULL;
}

static struct ip_entry *get(struct tern_iplimits *l, const char *ip) {
    struct ip_entry *e = tern_map_gets(&l->map, ip);
    if (!e) {
        e = tern_calloc(1, sizeof *e);
        tern_map_puts(&l->map, ip, e);
    }
    return e;
}

/* Drop the entry if nothing about it matters any more. */
static void maybe_drop(struct tern_iplimits *l, const char *ip, struct ip_entry *e, uint64_t now) {
    if (e->conns > 0 || (e->banned_until && e->banned_until > now))
        return;
    if (e->failures > 0 && now - e->window_start < l->conf.window_ms)
        return;
    tern_map_dels(&l->map, ip);
    free(e);
}

int tern_iplimits_conn_open(struct tern_iplimits *l, const char *ip) {
    int rc = 0;
    uv_mutex_lock(&l->lock);
    struct ip_entry *e = get(l, ip);
    if (e->conns >= l->conf.max_conns_per_ip)
        rc = TERN_E_LIMIT;
    else
        e->conns++;
    uv_mutex_unlock(&l->lock);
    return rc;
}

void tern_iplimits_conn_close(struct tern_iplimits *l, const char *ip) {
    uv_mutex_lock(&l->lock);
    struct ip_entry *e = tern_map_gets(&l->map, ip);
    if (e) {
        if (e->conns > 0)
            e->conns--;
        maybe_drop(l, ip, e, uv_hrtime() / 1000000);
    }
    uv_mutex_unlock(&l->lock);
}

int tern_iplimits_auth_check(struct tern_iplimits *l, const char *ip, uint64_t now_ms) {
    int rc = 0;
    uv_mutex_lock(&l->lock);
    struct ip_entry *e = tern_map_gets(&l->map, ip);
    if (e && e->banned_until) {
        if (e->banned_until > now_ms) {
            rc = TERN_E_LIMIT;
        } else {
            e->banned_until = 0;
            e->failures = 0;
        }
    }
    uv_mutex_unlock(&l->lock);
    return rc;
}

int tern_iplimits_auth_failed(struct tern_iplimits *l, const char *ip, uint64_t now_ms) {
    int banned = 0;
    uv_mutex_lock(&l->lock);
    struct ip_entry *e = get(l, ip);
    if (e->failures == 0 || now_ms - e->window_start >= l->conf.window_ms) {
        e->window_start = now_ms;
        e->failures = 0;
    }
    e->failures++;
    if (e->failures >= l->conf.max_failures && !e->banned_until) {
        e->banned_until = now_ms + l->conf.ban_ms;
        banned = 1;
    }
    uv_mutex_unlock(&l->lock);
    return banned;
}
