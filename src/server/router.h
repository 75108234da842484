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
struct tern_c2s;

/**
 * Route a stanza sent by the local bound session c (its 'from' already
 * stamped); takes ownership. Presence goes to the presence module's
 * outbound rules, IQs for the server or an account to the modules,
 * everything else to its addressee.
 */
void tern_router_route(struct tern_c2s *c, struct tern_xml *stanza_take);

/**
 * Deliver a stanza that has 'to' and 'from' set (by the server or a module
 * relaying for a user) to its local addressee: a full JID to that session
 * (or the bare-JID rules when it is gone), a bare JID by the rules of RFC
 * 6121 §8.5 for messages, §4 inbound rules for presence. Takes ownership.
 */
void tern_router_send(struct tern_shard *shard, struct tern_xml *stanza_take);

/** Deliver a stanza (taken) to the session ref, locally or via its shard's inbox. */
void tern_router_to_session(struct tern_shard *shard, struct tern_session_ref ref,
                            struct tern_xml *stanza_take);

/** Answer stanza with an error to its sender (never an error or a result). */
void tern_router_bounce(struct tern_shard *shard, const struct tern_xml *stanza,
                        enum tern_error_type type, enum tern_stanza_cond cond);

/** End the session ref with stream error cond, wherever it lives. */
void tern_router_kick(struct tern_shard *shard, struct tern_session_ref ref,
                      enum tern_stream_error cond);

#endif
