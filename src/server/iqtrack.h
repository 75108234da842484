/*
 * IQ requests the server itself sends (a push publish to an app server, for
 * instance) and the matching of their answers: RFC 6120 §8.2.3 says a
 * result or error answers the request with the same id, from the entity it
 * was sent to.
 */
#ifndef TERN_SERVER_IQTRACK_H
#define TERN_SERVER_IQTRACK_H

#include <stdint.h>

struct tern_shard;
struct tern_xml;

/**
 * The answer to a tracked request: response is the <iq type='result'/> or
 * <iq type='error'/> (borrowed for the call), or NULL when none came within
 * the timeout or the server is stopping. Runs on the loop thread of the
 * shard that sent the request; called exactly once.
 */
typedef void (*tern_iq_response_fn)(struct tern_shard *shard, const struct tern_xml *response,
                                    void *ud);

/**
 * Send iq (type get or set, 'to' set; taken) from the server's domain, with a
 * fresh id, and call cb once with its answer or NULL after timeout_ms.
 * Only an answer from the JID the request went to counts; anything else
 * with the same id is dropped.
 */
void tern_iq_request(struct tern_shard *shard, struct tern_xml *iq_take, uint64_t timeout_ms,
                     tern_iq_response_fn cb, void *ud);

/**
 * An IQ result or error addressed to the server's domain: if it answers a
 * tracked request, its callback runs and 1 is returned; else 0 (the caller
 * drops it). Borrowed.
 */
int tern_iq_response(struct tern_shard *shard, const struct tern_xml *iq);

/** Answer every pending request with NULL (shutdown). */
void tern_iq_cancel_all(struct tern_shard *shard);

#endif
