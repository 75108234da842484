/* Offline storage (XEP-0160): messages for users with no available resource. */
#ifndef TERN_MOD_OFFLINE_H
#define TERN_MOD_OFFLINE_H

struct tern_shard;
struct tern_jid;
struct tern_xml;

/**
 * Store a message for the local account to (its bare JID counts); takes
 * ownership. An XEP-0203 <delay/> is added first. Once the write is durable
 * TERN_EV_OFFLINE_STORED fires; if the account does not exist the sender gets
 * service-unavailable, over the quota resource-constraint (type wait), on a
 * storage failure internal-server-error (type wait): nothing is lost silently.
 */
void tern_offline_store(struct tern_shard *shard, const struct tern_jid *to,
                        struct tern_xml *stanza_take);

#endif
