/*
 * The router decides where a stanza goes: to the server itself (IQ handlers),
 * to a bound session wherever it lives (this shard, another shard's inbox,
 * later another node), or back to the sender as an error.
 */
#ifndef TERN_SERVER_ROUTER_H
#define TERN_SERVER_ROUTER_H

#include "server/sessions.h"
#include "xmpp/errors.h"

struct tern_shard;
struct tern_xml;
struct tern_jid;

/**
 * An IQ handler for a namespace addressed to the server (or to the
 * sender's own bare JID). It returns the reply (result or error, refs 1),
 * or NULL if it answers later or not at all. It must not block.
 */
typedef struct tern_xml *(*tern_iq_handler_fn)(struct tern_shard *shard,
                                               const struct tern_jid *from,
                                               const struct tern_xml *iq);

/** Route a stanza whose from is already stamped; takes ownership. */
void tern_router_route(struct tern_shard *shard, const struct tern_jid *from,
                       struct tern_xml *stanza_take);

/** Deliver a stanza (taken) to the session ref, locally or via its shard's inbox. */
void tern_router_to_session(struct tern_shard *shard, struct tern_session_ref ref,
                            struct tern_xml *stanza_take);

/** End the session ref with stream error cond, wherever it lives. */
void tern_router_kick(struct tern_shard *shard, struct tern_session_ref ref,
                      enum tern_stream_error cond);

#endif
