/* A small hash map from byte-string keys to pointers. Not thread-safe. */
#ifndef TERN_CORE_MAP_H
#define TERN_CORE_MAP_H

#include <stddef.h>

struct tern_map_entry;

/** A map; zero-initialise it (or use tern_map_init) before use. */
struct tern_map {
    struct tern_map_entry **buckets; /* chained buckets, nbuckets long */
    size_t nbuckets;                 /* power of two, 0 until first insert */
    size_t count;                    /* entries stored */
};

void tern_map_init(struct tern_map *m);
/** Free the map's own storage; values are the caller's (free them first). */
void tern_map_free(struct tern_map *m);

/** Value stored under key, or NULL. */
void *tern_map_get(const struct tern_map *m, const void *key, size_t klen);
/** Store value (non-NULL) under key, replacing; returns the old value or NULL. */
void *tern_map_put(struct tern_map *m, const void *key, size_t klen, void *value);
/** Remove key; returns its value or NULL. */
void *tern_map_del(struct tern_map *m, const void *key, size_t klen);

/** Visit every entry; fn may not modify the map. */
void tern_map_each(const struct tern_map *m,
                   void (*fn)(const void *key, size_t klen, void *value, void *ud), void *ud);

/** Convenience wrappers for NUL-terminated keys. */
static inline void *tern_map_gets(const struct tern_map *m, const char *key);
static inline void *tern_map_puts(struct tern_map *m, const char *key, void *value);
static inline void *tern_map_dels(struct tern_map *m, const char *key);

#include <string.h>

static inline void *tern_map_gets(const struct tern_map *m, const char *key) {
    return tern_map_get(m, key, strlen(key));
}
static inline void *tern_map_puts(struct tern_map *m, const char *key, void *value) {
    return tern_map_put(m, key, strlen(key), value);
}
static inline void *tern_map_dels(struct tern_map *m, const char *key) {
    return tern_map_del(m, key, strlen(key));
}

#endif
