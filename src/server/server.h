/* The process-wide context that every shard shares, passed explicitly. */
#ifndef TERN_SERVER_SERVER_H
#define TERN_SERVER_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

struct tern_config;
struct tern_tls_ctx;
struct tern_store;
struct tern_sessions;
struct tern_iplimits;
struct tern_shard;

/**
 * What the shards share. Fields are set up by ternd's main before any shard
 * runs and are read-only afterwards, except through their own locks.
 */
struct tern_server {
    const struct tern_config *cfg;  /* validated configuration */
    struct tern_tls_ctx *tls;       /* TLS context for every listener */
    struct tern_store *store;       /* asynchronous store (completions on shard 0) */
    struct tern_sessions *sessions; /* session directory (own lock) */
    struct tern_iplimits *ips;      /* per-IP limits (own lock) */
    struct tern_shard **shards;     /* one per event loop */
    int nshards;                    /* entries in shards */
    volatile int shutting_down;     /* set once SIGTERM/SIGINT arrived */
    atomic_int connections;         /* open client connections, all shards */
};

/** A new unique session id (thread-safe, never 0). */
uint64_t tern_server_next_uid(void);

#endif
