/*
 * External components (XEP-0114, jabber:component:accept): services such as
 * push app servers that connect over plain TCP, prove a shared secret and
 * then send and receive the stanzas of their own domain. See
 * docs/components.md (operators) and docs/internals/component.md.
 */
#ifndef TERN_SERVER_COMPONENT_H
#define TERN_SERVER_COMPONENT_H

#include <stddef.h>

#include <uv.h>

#include "xmpp/errors.h"

struct tern_config;
struct tern_shard;
struct tern_xml;

/**
 * Set up the process-wide registry of the components cfg configures (the
 * `components` mapping). Once, before any shard runs; cfg must outlive
 * tern_component_fini(). Without this call no domain is a component's.
 */
void tern_component_init(const struct tern_config *cfg);

/** Release the registry; every component connection must be gone. */
void tern_component_fini(void);

/**
 * Take one pending component stream off listener: the accept function for
 * a struct tern_listener (listener.h) on the component port.
 */
void tern_component_accept(struct tern_shard *shard, uv_stream_t *listener, int direct_tls);

/** Is domain (prepared, lower case) a configured component's? 1 or 0. Any thread. */
int tern_component_known(const char *domain);

/** Is a component for domain connected and authenticated right now? 1 or 0. Any thread. */
int tern_component_connected(const char *domain);

/**
 * Deliver stanza ('to' in domain, 'from' set; jabber:client namespace as
 * everywhere in the server) to the component serving domain, on its stream.
 * Always takes the reference. Returns 0 when it was written or handed to the
 * component's shard, TERN_E_NOTFOUND when no component is configured for
 * domain, TERN_E_CLOSED when one is configured but not connected. Bouncing
 * is the caller's business (the router answers service-unavailable).
 * Any shard's thread.
 */
int tern_component_send(struct tern_shard *shard, const char *domain, struct tern_xml *stanza_take);

/**
 * Shutdown: end every component stream of shard with cond (and optional
 * text). Never frees inside the call. When the last component of the shard
 * is freed, the shard's on_idle hook runs (as for client connections), so
 * it must check tern_component_count() as well as nconns.
 */
void tern_component_close_all(struct tern_shard *shard, enum tern_stream_error cond,
                              const char *text);

/** Component connections (any state) owned by shard. */
size_t tern_component_count(const struct tern_shard *shard);

#endif
