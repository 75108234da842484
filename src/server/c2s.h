/* Client-to-server streams (RFC 6120): TLS, SASL, bind, then stanzas to the router. */
#ifndef TERN_SERVER_C2S_H
#define TERN_SERVER_C2S_H

#include <stdint.h>

#include <uv.h>

#include "core/map.h"
#include "xmpp/errors.h"

struct tern_c2s;
struct tern_shard;
struct tern_jid;
struct tern_xml;

/**
 * Accept a pending connection on listener (called from its connection
 * callback). direct_tls: the listener speaks TLS from the first byte
 * (XEP-0368). Refusals (per-IP limit, shutdown) are handled inside.
 */
void tern_c2s_accept(struct tern_shard *shard, uv_stream_t *listener, int direct_tls);

/**
 * Send a stanza to the client; takes ownership of the reference. Dropped
 * silently if the connection is closing. Shard thread only.
 */
void tern_c2s_send_take(struct tern_c2s *c, struct tern_xml *stanza);

/**
 * End the stream: with cond != TERN_SE_NONE a stream error (and optional
 * text) is sent first, then </stream:stream>, then the TCP connection is
 * closed once written. The struct is freed later, never inside this call,
 * so it is safe to call from any callback of the connection.
 */
void tern_c2s_close(struct tern_c2s *c, enum tern_stream_error cond, const char *text);

/** The bound full JID, or NULL before bind. */
const struct tern_jid *tern_c2s_jid(const struct tern_c2s *c);

/** The bound account's bare JID string ("alice@localhost"), or NULL before bind. */
const char *tern_c2s_bare(const struct tern_c2s *c);

/** Has c begun closing (nothing sent to it any more arrives)? */
int tern_c2s_closing(const struct tern_c2s *c);

/** The session id given at bind (0 before). */
uint64_t tern_c2s_uid(const struct tern_c2s *c);

/** The shard that owns c. */
struct tern_shard *tern_c2s_shard(const struct tern_c2s *c);

/**
 * Presence state of a bound session. The presence and roster modules own
 * its meaning (src/mod/presence.c); c2s only zeroes it at bind and fires
 * TERN_EV_SESSION_CLOSING before the session leaves the directory, when the
 * presence module releases what it holds here.
 */
struct tern_c2s_presence {
    int available;            /* initial presence sent and not unavailable since */
    int priority;             /* priority of the last available presence */
    int interested;           /* requested the roster (RFC 6121 §2.1.6) */
    struct tern_xml *last;    /* last available presence sent (a reference), or NULL */
    struct tern_map directed; /* full JIDs sent directed presence (RFC 6121 §4.6), value 1 */
    void *roster;             /* module-owned roster cache, or NULL */
};

/** c's presence state (never NULL for a bound session). */
struct tern_c2s_presence *tern_c2s_presence(struct tern_c2s *c);

/* ---- stream management facts, for modules (the push module) ---------------- */

/** Where a session's stream management stands (XEP-0198). */
struct tern_c2s_sm_info {
    int enabled;        /* <enabled/> was sent */
    int resumable;      /* resumption was granted */
    int hibernating;    /* the transport is gone; the session waits for resumption */
    int timeout;        /* resume timeout granted, seconds */
    uint32_t h_out;     /* stanzas counted as sent (wraps) */
    uint32_t acked;     /* the last h the client acknowledged */
    uint32_t queued;    /* stanzas sent (or queued) and not yet acknowledged */
    uint64_t r_sent_at; /* loop ms (uv_now) when an unanswered <r/> went out; 0 if none */
};

/** Fill *out for c (all zero for a session without stream management). */
void tern_c2s_sm_info(const struct tern_c2s *c, struct tern_c2s_sm_info *out);

/**
 * Called for one unacknowledged stanza (borrowed for the call): h is its
 * XEP-0198 count (acked + 1 for the oldest, wraps), stamp when it was
 * queued (ms since the epoch). Return non-zero to stop the walk. It must not
 * send anything to c nor end it.
 */
typedef int (*tern_c2s_unacked_fn)(const struct tern_xml *stanza, uint32_t h, int64_t stamp,
                                   void *ud);

/** Walk c's unacknowledged stanzas, oldest first. */
void tern_c2s_sm_unacked(const struct tern_c2s *c, tern_c2s_unacked_fn fn, void *ud);

/**
 * Let a hibernating session wait `seconds` (at least 1) from now before it
 * expires, instead of what is left of its resume timeout. Returns 0, or
 * TERN_E_INVAL if c is not hibernating.
 */
int tern_c2s_sm_set_expiry(struct tern_c2s *c, int seconds);

#endif
