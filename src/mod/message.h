/* Delivery of messages to local accounts (RFC 6121 §8.5) and offline storage (XEP-0160). */
#ifndef TERN_MOD_MESSAGE_H
#define TERN_MOD_MESSAGE_H

struct tern_shard;
struct tern_jid;
struct tern_xml;

/**
 * Deliver a message addressed to the local account to (bare or full JID);
 * takes ownership. A full JID goes to that resource if it is bound, else is
 * treated as bare (§8.5.3.2.1 for chat/normal/headline); a bare JID goes to
 * the available resources of highest non-negative priority (chat: all of
 * them; normal: the one most recently bound), headline to all; with none
 * available, chat and normal messages with a body or <store/> hint go to
 * offline storage (durably, before anything else happens to them), the rest
 * are dropped or bounced as §8.5.2 says.
 */
void tern_message_deliver(struct tern_shard *shard, const struct tern_jid *to,
                          struct tern_xml *stanza_take);

#endif
