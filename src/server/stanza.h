/* Building replies to stanzas: results and errors (RFC 6120 §8.2.3, §8.3). */
#ifndef TERN_SERVER_STANZA_H
#define TERN_SERVER_STANZA_H

#include "xmpp/errors.h"

struct tern_xml;

/**
 * An error reply to stanza: same name, id, to/from swapped, type='error',
 * the original children kept (RFC 6120 §8.3.1 allows it), and
 * <error type=...><cond xmlns=stanzas/>[<text/>]</error> added. New root, refs 1.
 */
struct tern_xml *tern_stanza_error_reply(const struct tern_xml *stanza,
                                         const struct tern_stanza_error *err);

/** An empty <iq type='result'/> answering iq (id kept, to/from swapped). New root. */
struct tern_xml *tern_stanza_result(const struct tern_xml *iq);

/** Is this stanza an error or an iq result (never answered with an error)? */
int tern_stanza_is_response(const struct tern_xml *stanza);

#endif
