/* Per-IP accounting shared by every shard: open connections and auth failures. */
#ifndef TERN_SERVER_IPLIMITS_H
#define TERN_SERVER_IPLIMITS_H

#include <stdint.h>

struct tern_iplimits;

/** Limits as configured (see docs/configuration.md, keys auth.* and limits.*). */
struct tern_iplimits_conf {
    int max_conns_per_ip; /* concurrent connections from one address */
    int max_failures;     /* auth failures within window before a ban */
    uint64_t window_ms;   /* failure counting window */
    uint64_t ban_ms;      /* how long a banned address is refused */
};

struct tern_iplimits *tern_iplimits_new(const struct tern_iplimits_conf *conf);
void tern_iplimits_free(struct tern_iplimits **l);

/** Count a new connection from ip; TERN_E_LIMIT (and nothing counted) if over the limit. */
int tern_iplimits_conn_open(struct tern_iplimits *l, const char *ip);
/** Forget a connection counted by conn_open. */
void tern_iplimits_conn_close(struct tern_iplimits *l, const char *ip);

/** May ip try to authenticate at now_ms? 0, or TERN_E_LIMIT while banned. */
int tern_iplimits_auth_check(struct tern_iplimits *l, const char *ip, uint64_t now_ms);
/** Record a failure; returns 1 if this failure started a ban, else 0. */
int tern_iplimits_auth_failed(struct tern_iplimits *l, const char *ip, uint64_t now_ms);

#endif
