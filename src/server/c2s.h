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

#endif
