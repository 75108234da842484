/* Streaming XMPP parser on expat: a stream header, then stanzas. */
#ifndef TERN_XML_PARSER_H
#define TERN_XML_PARSER_H

#include <stddef.h>

#include "xmpp/errors.h"

struct tern_xml;
struct tern_xml_parser;

/** Ceilings enforced while parsing; exceeding one is <policy-violation/>. */
struct tern_xml_limits {
    size_t max_stanza_size; /* bytes of one top-level child of the stream */
    size_t max_header_size; /* bytes of the stream header (<stream:stream ...>) */
    int max_depth;          /* element nesting below the stream element */
};

/**
 * Callbacks. They run inside tern_xml_parser_feed(). A callback may call
 * tern_xml_parser_stop() to make feed return after it (e.g. on <starttls/> or
 * on a fatal error), but must not free the parser.
 */
struct tern_xml_parser_cb {
    /**
     * The stream header was read. header is a root element (namespace
     * TERN_NS_STREAMS, name "stream") with its attributes (to, from, version,
     * id, xml:lang). content_ns is the default namespace declared on it ("" if
     * none). header is borrowed: copy what you need.
     */
    void (*stream_open)(void *ud, const struct tern_xml *header, const char *content_ns);
    /** A complete top-level element; ownership (refs 1) passes to the callee. */
    void (*stanza)(void *ud, struct tern_xml *stanza);
    /** </stream:stream> was read. */
    void (*stream_close)(void *ud);
};

/**
 * New parser. content_ns is the namespace the stream must declare as default
 * ("jabber:client" ...); a different one is <invalid-namespace/>.
 */
struct tern_xml_parser *tern_xml_parser_new(const struct tern_xml_parser_cb *cb, void *ud,
                                            const char *content_ns,
                                            const struct tern_xml_limits *limits);
/** Free the parser and any partial stanza; sets *p to NULL. Not from a callback. */
void tern_xml_parser_free(struct tern_xml_parser **p);

/**
 * Feed bytes. Returns 0 when all bytes were consumed or a callback stopped
 * the parser, or a negative tern_err on a stream-fatal error, in which case
 * *cond is set to the stream error to send (not-well-formed, restricted-xml,
 * policy-violation, invalid-namespace, bad-format, bad-namespace-prefix,
 * unsupported-encoding ...) and the parser must not be fed again until
 * reset (until then feed keeps returning the same error). Exceeded limits
 * return TERN_E_LIMIT, other stream errors TERN_E_INVAL. No callback is
 * called for the failing part of the input. A parser that was stopped and
 * not reset returns TERN_E_CLOSED; feed called from a callback returns
 * TERN_E_BUSY (*cond is internal-server-error for both).
 * RFC 6120 §11.1: a DTD, entity declaration, comment or processing
 * instruction is restricted-xml. An XML declaration is allowed.
 */
int tern_xml_parser_feed(struct tern_xml_parser *p, const char *data, size_t len,
                         enum tern_stream_error *cond);

/** Ask feed to return after the current callback; the rest is discarded. */
void tern_xml_parser_stop(struct tern_xml_parser *p);

/**
 * Start over for a new stream (after STARTTLS or SASL success). May be called
 * from a callback: it then acts as tern_xml_parser_stop() and the reset is
 * done before feed returns, so the next feed starts a new stream.
 */
void tern_xml_parser_reset(struct tern_xml_parser *p);

/**
 * Release the memory an idle stream does not need: the expat parser (about
 * 11 KiB) and the parser's buffers. Returns 0 when the parser holds none of
 * it afterwards, or TERN_E_BUSY when the stream is not between stanzas (a
 * stanza or token is open, the header is incomplete, bytes are pending, the
 * stream has ended) and nothing was released. The next feed recreates expat
 * in the same state, so trimming never changes what feed reports; it only
 * costs a new expat parser (a few microseconds) when input arrives. A stopped
 * or failed parser gives up everything until reset. Cheap when there is
 * nothing to release. Not from a callback (returns TERN_E_BUSY).
 */
int tern_xml_parser_trim(struct tern_xml_parser *p);

/**
 * The caller has no more input at hand (the end of a read): trim, but only
 * the first four times on a stream and not before its first stanza (the
 * start of a session), so that a busy stream does not pay for a new expat
 * parser on every read; what stays held is for a timer's
 * tern_xml_parser_trim(). Returns what tern_xml_parser_trim() would, or
 * TERN_E_BUSY before the first stanza and once the four are used.
 */
int tern_xml_parser_idle(struct tern_xml_parser *p);

/** Change the limits (e.g. raise max_stanza_size after authentication). */
void tern_xml_parser_set_limits(struct tern_xml_parser *p, const struct tern_xml_limits *limits);

/**
 * Parse one complete element in the default namespace content_ns (for
 * instance a stanza read back from storage). Returns 0 and the tree in *out
 * (refs 1), or TERN_E_INVAL if data is not exactly one well-formed element
 * within max_size bytes and max_depth levels.
 */
int tern_xml_parse_one(const char *content_ns, const char *data, size_t len, size_t max_size,
                       int max_depth, struct tern_xml **out);

#endif
