/* Client-to-server streams (RFC 6120): TLS, SASL, bind, then stanzas to the router. */
#ifndef TERN_SERVER_C2S_H
#define TERN_SERVER_C2S_H

#include <uv.h>

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

#endif
