/*
 * The session directory: which bound resources exist and where they live.
 * Shared by every shard (guarded by a read-write lock); it never hands out
 * pointers to sessions, only (shard, uid) references, because a session may
 * only be touched by the thread of the shard that owns it.
 */
#ifndef TERN_SERVER_SESSIONS_H
#define TERN_SERVER_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

/** Where a bound session lives. uid is unique for the life of the process. */
struct tern_session_ref {
    int shard;    /* index of the owning shard */
    uint64_t uid; /* the session's id within the process */
};

struct tern_sessions;

struct tern_sessions *tern_sessions_new(void);
void tern_sessions_free(struct tern_sessions **d);

/**
 * Record bare/resource -> ref. If the resource was bound already, the old
 * reference is replaced, copied to *old and 1 is returned (the caller must
 * end that session with <conflict/>); otherwise 0.
 */
int tern_sessions_bind(struct tern_sessions *d, const char *bare, const char *resource,
                       struct tern_session_ref ref, struct tern_session_ref *old);

/** Remove bare/resource if it still refers to uid (a replaced session must not unbind its
 * successor). */
void tern_sessions_unbind(struct tern_sessions *d, const char *bare, const char *resource,
                          uint64_t uid);

/** Look up one resource: 0 and *out, or TERN_E_NOTFOUND. */
int tern_sessions_find(struct tern_sessions *d, const char *bare, const char *resource,
                       struct tern_session_ref *out);

/**
 * Copy up to max references of bare's resources into out (in bind order);
 * returns how many resources are bound in total.
 */
size_t tern_sessions_list(struct tern_sessions *d, const char *bare, struct tern_session_ref *out,
                          size_t max);

/** What the router needs to know about a bound resource to deliver to it. */
struct tern_session_info {
    struct tern_session_ref ref; /* where it lives */
    int available;               /* sent initial presence, not unavailable since */
    int priority;                /* of its last available presence (-128..127) */
    int interested;              /* requested the roster (RFC 6121 §2.1.6) */
};

/**
 * Update the presence facts of bare/resource if it still refers to uid.
 * Returns 0 or TERN_E_NOTFOUND.
 */
int tern_sessions_set_presence(struct tern_sessions *d, const char *bare, const char *resource,
                               uint64_t uid, int available, int priority);
/** Mark bare/resource (uid) as an interested resource. */
int tern_sessions_set_interested(struct tern_sessions *d, const char *bare, const char *resource,
                                 uint64_t uid);

/**
 * Copy up to max entries of bare's resources into out (bind order); returns
 * how many are bound in total.
 */
size_t tern_sessions_list_info(struct tern_sessions *d, const char *bare,
                               struct tern_session_info *out, size_t max);

/** Number of bound sessions in the directory. */
size_t tern_sessions_count(struct tern_sessions *d);

#endif
