#include "core/map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

struct tern_map_entry {
    struct tern_map_entry *next; /* next in bucket */
    uint64_t hash;               /* full hash of key */
    void *value;                 /* caller's pointer */
    size_t klen;                 /* bytes of key */
    unsigned char key[];         /* copy of the key */
};

/* FNV-1a: keys are short (JIDs, addresses), and the map is never keyed by
 * attacker-chosen data in bulk without a per-entry limit elsewhere. */
static uint64_t hash_bytes(const void *key, size_t len) {
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void tern_map_init(struct tern_map *m) {
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void tern_map_free(struct tern_map *m) {
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct tern_map_entry *e = m->buckets[i];
        while (e) {
            struct tern_map_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    tern_map_init(m);
}

static struct tern_map_entry **find(const struct tern_map *m, const void *key, size_t klen,
                                    uint64_t h) {
    if (!m->nbuckets)
        return NULL;
    struct tern_map_entry **pp = &m->buckets[h & (m->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
            return pp;
    return NULL;
}

void *tern_map_get(const struct tern_map *m, const void *key, size_t klen) {
    struct tern_map_entry **pp = find(m, key, klen, hash_bytes(key, klen));
    return pp ? (*pp)->value : NULL;
}

static void grow(struct tern_map *m) {
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
    struct tern_map_entry **b = tern_calloc(n, sizeof *b);
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct tern_map_entry *e = m->buckets[i];
        while (e) {
            struct tern_map_entry *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void *tern_map_put(struct tern_map *m, const void *key, size_t klen, void *value) {
    uint64_t h = hash_bytes(key, klen);
    struct tern_map_entry **pp = find(m, key, klen, h);
    if (pp) {
        void *old = (*pp)->value;
        (*pp)->value = value;
        return old;
    }
    if (m->count + 1 > m->nbuckets * 3 / 4)
        grow(m);
    struct tern_map_entry *e = tern_malloc(sizeof *e + klen);
    e->hash = h;
    e->value = value;
    e->klen = klen;
    memcpy(e->key, key, klen);
    size_t j = h & (m->nbuckets - 1);
    e->next = m->buckets[j];
    m->buckets[j] = e;
    m->count++;
    return NULL;
}

void *tern_map_del(struct tern_map *m, const void *key, size_t klen) {
    struct tern_map_entry **pp = find(m, key, klen, hash_bytes(key, klen));
    if (!pp)
        return NULL;
    struct tern_map_entry *e = *pp;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}

void tern_map_each(const struct tern_map *m,
                   void (*fn)(const void *key, size_t klen, void *value, void *ud), void *ud) {
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct tern_map_entry *e = m->buckets[i]; e; e = e->next)
            fn(e->key, e->klen, e->value, ud);
}
