/*
 * Streaming XMPP parser on expat (see parser.h).
 *
 * This faces unauthenticated peers, so every byte is accounted for:
 *
 * - Offsets. received counts every byte given to feed since the last reset;
 *   expat's XML_GetCurrentByteIndex() counts the same stream, minus what we
 *   hold back (below), so both live in one coordinate space. The limits are
 *   checked against those offsets: in the element and character-data handlers
 *   (exact, before anything is built) and after every piece of at most
 *   PIECE bytes given to expat (for tokens expat is still buffering), so a
 *   peer never makes us keep much more than a limit plus one piece.
 *
 * - Quadratic reparsing. Expat rescans an incomplete token from its start on
 *   every XML_Parse() call. Expat >= 2.6 defers reparsing to prevent that,
 *   but its deferral can hold back a complete stanza until more bytes arrive,
 *   which an interactive protocol cannot afford, so we turn it off and do our
 *   own deferral instead: tern__xml_scan() (scan.c) follows the markup
 *   coarsely and, while a token longer than HOLD_MIN bytes is open and the
 *   new bytes cannot end it, we keep them in hold instead of making expat
 *   rescan. Nothing that could complete an event is ever held, so delivery
 *   is never delayed.
 *
 * - Releasing expat between stanzas. An idle stream would otherwise keep
 *   about 11 KiB of expat state (hash tables, buffers, tag stack) for nothing:
 *   between stanzas the only context a stream has is its open root element
 *   and the namespaces declared on it. So tern_xml_parser_trim() frees the
 *   expat parser when the stream is between stanzas and expat has turned
 *   every byte it was given into events, and the next feed creates a new one
 *   and first gives it `replay`, a start tag with the header's name and
 *   namespace declarations only, built when the header was read. Its start
 *   event is swallowed (stream_open does not fire again) and its bytes are no
 *   part of the stream's offsets: xp_base and xp_skip map expat's byte index
 *   back to stream offsets. The new parser is in the same state as the old
 *   one, so what follows (stanzas, </stream:stream>, any error) is reported
 *   the same; only expat's line and column numbers differ, and none are used.
 *   Expat is also created lazily: no bytes yet, no expat.
 *   Creating expat and replaying costs about as much as parsing three small
 *   stanzas, far too much to pay after every read of a busy stream. So
 *   tern_xml_parser_idle(), meant for the end of every read, releases only
 *   the first IDLE_EAGER times on a stream, and not before its first stanza
 *   (a header is always followed at once by stanzas): the start of a session
 *   (bind, roster, presence, stream management) is a handful of reads and
 *   then, for most clients, a long silence, and memory freed at once is
 *   reused by the next logins. After that the caller's timer trims with
 *   tern_xml_parser_trim(), which costs a busy stream one new expat per timer
 *   period.
 *
 * Choices where RFC 6120 leaves room:
 * - First element not in the streams namespace: invalid-namespace
 *   (§4.8.1, §4.9.3.10); in that namespace but not named "stream": bad-format.
 * - Default namespace on the header other than content_ns (or none):
 *   invalid-namespace (§4.9.3.10).
 * - Character data directly inside the stream element: whitespace is ignored
 *   (keepalives); anything else is bad-format.
 * - An encoding declaration other than UTF-8: unsupported-encoding (§11.6).
 *   Expat is told the input is UTF-8 whatever the declaration says.
 * - Entity references other than the five predefined ones: restricted-xml
 *   (§11.1), like DTDs, comments and processing instructions.
 * - Namespace prefix errors (undeclared, undeclaring, reserved), and elements
 *   in the XML namespace (<xml:foo/>): bad-namespace-prefix.
 * - Everything else expat rejects: not-well-formed.
 * - max_header_size counts from the first byte of the stream (XML declaration
 *   and leading whitespace included) to the end of the header's start tag.
 * - max_stanza_size counts the input bytes of one top-level element, from its
 *   '<' to the end of its end tag; between stanzas, the bytes of a token that
 *   has not yet become an event are held to the same limit.
 * - max_depth counts the stanza itself as depth 1.
 * - Besides its input size, a stanza's tree has a memory budget (see
 *   tree_budget()): every element keeps its own copy of its namespace URI,
 *   so "<b/>" repeated under a long default namespace would otherwise cost
 *   far more memory than the bytes it arrived in.
 * - The first two bytes of a stream must not be a UTF-16 byte order mark or
 *   contain NUL: expat would switch to UTF-16 on them even though it was told
 *   UTF-8, so they are unsupported-encoding.
 *
 * Limits are policy-violation with TERN_E_LIMIT; other errors return
 * TERN_E_INVAL.
 */
#include "xml/parser.h"

#include <expat.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "xml/scan.h"
#include "xml/xml.h"

/* Separates namespace URI and local name in names expat reports. U+0001 is
 * not an XML 1.0 character, not even as a character reference, so it cannot
 * occur in a URI. */
#define NS_SEP     '\x01'
#define NS_SEP_STR "\x01"
#define NS_XML     "http://www.w3.org/XML/1998/namespace"

/* Most bytes handed to expat in one call, so that limits are checked often. */
#define PIECE 4096
/* Tokens shorter than this are always given to expat at once. */
#define HOLD_MIN 1024
/* Pending character data above this size is not kept allocated afterwards. */
#define TEXT_KEEP 4096
/* Rough heap cost of one node beyond its strings (struct, malloc overhead). */
#define NODE_COST 128
/* A stanza's tree may cost this many times max_stanza_size; see tree_budget(). */
#define TREE_FACTOR 8
/* ... plus this, so that node overhead does not dominate tiny limits. */
#define TREE_FLOOR 16384
/* Releases tern_xml_parser_idle() makes on one stream (see the top). */
#define IDLE_EAGER 4

struct tern_xml_parser {
    XML_Parser xp;                 /* expat; NULL before the first byte and while trimmed */
    uint64_t xp_base;              /* stream offset of the first byte xp got after replay */
    XML_Index xp_skip;             /* bytes of replay xp got before that (0 or replay_len) */
    struct tern_xml_parser_cb cb;  /* callbacks (copied) */
    void *ud;                      /* callback argument */
    char *content_ns;              /* required default namespace of the stream */
    struct tern_xml_limits limits; /* ceilings */

    uint64_t received;       /* bytes given to feed since reset (to expat or held) */
    uint64_t mark;           /* offset just past the last event expat reported */
    uint64_t stanza_start;   /* offset of the '<' of the open stanza */
    int header_seen;         /* stream_open was called */
    int depth;               /* elements open below the stream element */
    struct tern_xml *stanza; /* the stanza being built, or NULL */
    struct tern_xml *cur;    /* innermost open element of stanza */
    size_t acc;              /* bytes of local names, attributes and text in stanza */
    size_t cost;             /* estimated heap bytes of stanza's tree */
    struct tern_buf text;    /* character data not yet added to cur */
    char *header_ns;         /* default namespace declared on the header (until it is read) */
    int ended;               /* </stream:stream> was read */

    /* Rebuilding the stream's context in a new expat (see the top). */
    struct tern_buf decls; /* the header's namespace declarations, as attributes */
    char *stream_prefix;   /* prefix bound to the streams namespace on the header */
    int stream_binds;      /* declarations on the header binding the streams namespace */
    int decls_lost;        /* a declaration did not fit in decls */
    char *replay;          /* start tag recreating the header's context, or NULL */
    size_t replay_len;     /* its length */
    int replaying;         /* replay's start event is still to come: swallow it */
    int eager;             /* releases tern_xml_parser_idle() may still make */
    int delivered;         /* a stanza was delivered on this stream */

    struct tern_buf hold;       /* bytes of an open token withheld from expat */
    struct tern__xml_scan scan; /* where the markup is (scan.h) */

    enum tern_stream_error err; /* stream error once failed, else TERN_SE_NONE */
    int err_rc;                 /* what feed returns with err */
    int stopped;                /* tern_xml_parser_stop() was called */
    int in_parse;               /* inside XML_Parse(), i.e. inside a handler */
    int reset_pending;          /* reset requested from a callback */
};

/* ---- errors ---------------------------------------------------------- */

static int halted(const struct tern_xml_parser *p) {
    return p->err != TERN_SE_NONE || p->stopped;
}

/* Record the first error; from a handler, make XML_Parse() return at once. */
static void fail(struct tern_xml_parser *p, enum tern_stream_error cond, int rc) {
    if (p->err == TERN_SE_NONE) {
        p->err = cond;
        p->err_rc = rc;
    }
    if (p->in_parse)
        XML_StopParser(p->xp, XML_FALSE);
}

static void fail_limit(struct tern_xml_parser *p) {
    fail(p, TERN_SE_POLICY_VIOLATION, TERN_E_LIMIT);
}

static enum tern_stream_error map_expat_error(enum XML_Error code) {
    switch (code) {
    case XML_ERROR_UNBOUND_PREFIX:
    case XML_ERROR_UNDECLARING_PREFIX:
    case XML_ERROR_RESERVED_PREFIX_XML:
    case XML_ERROR_RESERVED_PREFIX_XMLNS:
    case XML_ERROR_RESERVED_NAMESPACE_URI: return TERN_SE_BAD_NAMESPACE_PREFIX;
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING: return TERN_SE_UNSUPPORTED_ENCODING;
    /* RFC 6120 §11.1: no entity references beyond the predefined ones. */
    case XML_ERROR_UNDEFINED_ENTITY:
    case XML_ERROR_PARAM_ENTITY_REF:
    case XML_ERROR_RECURSIVE_ENTITY_REF:
    case XML_ERROR_ASYNC_ENTITY:
    case XML_ERROR_BINARY_ENTITY_REF:
    case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
    case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
    case XML_ERROR_AMPLIFICATION_LIMIT_BREACH: return TERN_SE_RESTRICTED_XML;
    default: return TERN_SE_NOT_WELL_FORMED;
    }
}

/* ---- limits ---------------------------------------------------------- */

/* Stream offset of expat's byte index idx (replayed bytes map to xp_base). */
static uint64_t stream_offset(const struct tern_xml_parser *p, XML_Index idx) {
    if (idx <= p->xp_skip)
        return p->xp_base;
    return p->xp_base + (uint64_t)(idx - p->xp_skip);
}

/* Stream offset of the event expat is reporting. */
static uint64_t event_start(const struct tern_xml_parser *p) {
    return stream_offset(p, XML_GetCurrentByteIndex(p->xp));
}

/* Offset just past the event expat is reporting; advances mark. */
static uint64_t event_end(struct tern_xml_parser *p) {
    XML_Index idx = XML_GetCurrentByteIndex(p->xp);
    int count = XML_GetCurrentByteCount(p->xp);
    uint64_t end = stream_offset(p, (idx > 0 ? idx : 0) + (count > 0 ? count : 0));
    if (end > p->mark)
        p->mark = end;
    return end;
}

/* Bytes received that expat has not turned into events yet must fit the
 * limit of whatever they are part of. */
static void check_pending(struct tern_xml_parser *p) {
    if (!p->header_seen) {
        if (p->received > p->limits.max_header_size)
            fail_limit(p);
    } else if (p->depth > 0) {
        if (p->received - p->stanza_start > p->limits.max_stanza_size)
            fail_limit(p);
    } else if (p->received - p->mark > p->limits.max_stanza_size) {
        fail_limit(p);
    }
}

/*
 * Heap a stanza's tree may take: TREE_FACTOR times the stanza limit plus
 * TREE_FLOOR, where
 * each node costs NODE_COST plus its strings. Ordinary stanzas stay within
 * 2-4x their size (a disco#items list of short items is about 3.5x); a stanza
 * of empty elements under a long namespace is what this stops.
 */
static size_t tree_budget(const struct tern_xml_parser *p) {
    size_t max = p->limits.max_stanza_size;
    if (max > (SIZE_MAX - TREE_FLOOR) / TREE_FACTOR)
        return SIZE_MAX;
    return max * TREE_FACTOR + TREE_FLOOR;
}

/* Charge a new part of the stanza: content bytes against the stanza limit,
 * cost against the tree budget. Returns 0, or -1 after failing the stream. */
static int charge(struct tern_xml_parser *p, size_t content, size_t cost) {
    size_t max = p->limits.max_stanza_size, budget = tree_budget(p);
    /* (The limits may have been lowered since acc and cost grew.) */
    if (p->acc > max || content > max - p->acc || p->cost > budget || cost > budget - p->cost) {
        fail_limit(p);
        return -1;
    }
    p->acc += content;
    p->cost += cost;
    return 0;
}

/* Ceilings of the internal buffers follow the limits. */
static void apply_limits(struct tern_xml_parser *p) {
    size_t big = p->limits.max_stanza_size > p->limits.max_header_size ? p->limits.max_stanza_size
                                                                       : p->limits.max_header_size;
    /* hold never exceeds a limit plus a piece (check_pending runs after each
     * piece) and is passed to XML_Parse() as an int. */
    size_t hold_max = (size_t)INT_MAX - 2 * PIECE;
    if (big < hold_max)
        hold_max = big;
    p->hold.max = hold_max + 2 * PIECE;
    p->text.max = p->limits.max_stanza_size;
    /* Escaping can make a declaration up to six times its input bytes; a
     * header whose declarations do not fit is simply never trimmed. */
    p->decls.max = p->limits.max_header_size < SIZE_MAX / 8 ? p->limits.max_header_size * 6 + 64
                                                            : SIZE_MAX / 2;
}

/* ---- building trees -------------------------------------------------- */

/* Split an expat name "uri<SEP>local" (or "local") into a new element. */
static struct tern_xml *element_for(const char *name) {
    const char *sep = strchr(name, NS_SEP);
    if (!sep)
        return tern_xml_new("", name);
    struct tern_xml *el = tern_xml_new("", sep + 1);
    free(el->ns);
    el->ns = tern_strndup(name, (size_t)(sep - name));
    return el;
}

/* What building an element from name and atts takes: content (local name,
 * attribute names and values; never more than the input bytes) and cost (all
 * strings kept, namespace included, plus node overhead). */
static void element_bytes(const char *name, const char **atts, size_t *content, size_t *cost) {
    const char *sep = strchr(name, NS_SEP);
    size_t c = strlen(sep ? sep + 1 : name);
    size_t k = NODE_COST + strlen(name);
    for (size_t i = 0; atts[i]; i += 2) {
        size_t a = strlen(atts[i]) + strlen(atts[i + 1]);
        c += a;
        k += a + 32; /* an attribute entry and two allocations */
    }
    *content = c;
    *cost = k;
}

/*
 * Attributes in the XML namespace become "xml:<local>", other namespaced ones
 * are dropped, and namespace declarations never reach us (expat consumes
 * them). Expat has already refused duplicates, so the names are unique and the
 * array is filled directly rather than through tern_xml_set_attr(), which
 * would search it once per attribute.
 */
static void add_attrs(struct tern_xml *el, const char **atts) {
    size_t n = 0;
    while (atts[2 * n])
        n++;
    if (n == 0)
        return;
    el->attrs = tern_calloc(n, sizeof(*el->attrs));
    el->attrs_cap = n;
    for (size_t i = 0; i < n; i++) {
        const char *name = atts[2 * i];
        const char *sep = strchr(name, NS_SEP);
        char *kept;
        if (!sep) {
            kept = tern_strdup(name);
        } else if ((size_t)(sep - name) == strlen(NS_XML) &&
                   memcmp(name, NS_XML, strlen(NS_XML)) == 0) {
            size_t local = strlen(sep + 1);
            kept = tern_malloc(4 + local + 1);
            memcpy(kept, "xml:", 4);
            memcpy(kept + 4, sep + 1, local + 1);
        } else {
            continue;
        }
        el->attrs[el->nattrs].name = kept;
        el->attrs[el->nattrs].value = tern_strdup(atts[2 * i + 1]);
        el->nattrs++;
    }
}

/* Character data is collected in p->text and added to the tree in one piece,
 * so that text arriving a byte at a time does not cost a realloc per byte. */
static void flush_text(struct tern_xml_parser *p) {
    if (p->text.len == 0)
        return;
    /* The bytes were charged as they arrived; the node is charged here. */
    if (charge(p, 0, NODE_COST))
        return;
    tern_xml_add_text(p->cur, p->text.data, p->text.len);
    if (p->text.cap > TEXT_KEEP)
        tern_buf_free(&p->text);
    else
        tern_buf_reset(&p->text);
}

/* ---- expat handlers -------------------------------------------------- */

/*
 * The header was accepted: turn its declarations into replay, "<" qname
 * decls ">". The header's own name is in the streams namespace through one
 * of its declarations; if two bind that namespace, which prefix it used is
 * unknown (expat reports URIs, not prefixes), so there is no replay and the
 * stream keeps its expat parser.
 */
static void keep_context(struct tern_xml_parser *p) {
    if (p->stream_binds == 1 && !p->decls_lost) {
        const char *prefix = p->stream_prefix ? p->stream_prefix : "";
        size_t plen = strlen(prefix);
        /* "<" prefix ":" "stream" decls ">", exactly sized: it is kept for
         * the life of the stream. */
        size_t len = 1 + plen + (plen ? 1 : 0) + 6 + p->decls.len + 1;
        char *r = tern_malloc(len + 1);
        char *w = r;
        *w++ = '<';
        memcpy(w, prefix, plen);
        w += plen;
        if (plen)
            *w++ = ':';
        memcpy(w, "stream", 6);
        w += 6;
        if (p->decls.len)
            memcpy(w, p->decls.data, p->decls.len);
        w += p->decls.len;
        *w++ = '>';
        *w = '\0';
        p->replay = r;
        p->replay_len = len;
    }
    tern_buf_free(&p->decls);
    free(p->stream_prefix);
    p->stream_prefix = NULL;
    /* Checked already; the stream keeps no more than it needs. */
    free(p->header_ns);
    p->header_ns = NULL;
}

static void on_header(struct tern_xml_parser *p, const char *name, const char **atts,
                      uint64_t end) {
    if (end > p->limits.max_header_size) {
        fail_limit(p);
        return;
    }
    const char *sep = strchr(name, NS_SEP);
    size_t ns_len = sep ? (size_t)(sep - name) : 0;
    const char *local = sep ? sep + 1 : name;
    if (ns_len != strlen(TERN_NS_STREAMS) || memcmp(name, TERN_NS_STREAMS, ns_len) != 0) {
        fail(p, TERN_SE_INVALID_NAMESPACE, TERN_E_INVAL);
        return;
    }
    if (strcmp(local, "stream") != 0) {
        fail(p, TERN_SE_BAD_FORMAT, TERN_E_INVAL);
        return;
    }
    if (strcmp(p->header_ns ? p->header_ns : "", p->content_ns) != 0) {
        fail(p, TERN_SE_INVALID_NAMESPACE, TERN_E_INVAL);
        return;
    }
    keep_context(p);
    struct tern_xml *header = element_for(name);
    add_attrs(header, atts);
    p->header_seen = 1;
    if (p->cb.stream_open)
        p->cb.stream_open(p->ud, header, p->content_ns);
    tern_xml_unref(&header);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts) {
    struct tern_xml_parser *p = ud;
    if (p->replaying) {
        /* The replayed header: the stream is open again, nothing to report. */
        p->replaying = 0;
        return;
    }
    if (halted(p))
        return;
    uint64_t start = event_start(p);
    uint64_t end = event_end(p);
    if (!p->header_seen) {
        on_header(p, name, atts, end);
        return;
    }
    if (p->depth == 0)
        p->stanza_start = start;
    /* <xml:foo/>: legal XML, but no XMPP element lives there and the
     * serializer could not write it back as a default namespace. */
    if (strncmp(name, NS_XML NS_SEP_STR, strlen(NS_XML) + 1) == 0) {
        fail(p, TERN_SE_BAD_NAMESPACE_PREFIX, TERN_E_INVAL);
        return;
    }
    /* Check before building anything: one start tag can be the whole stanza. */
    if (end - p->stanza_start > p->limits.max_stanza_size || p->depth >= p->limits.max_depth) {
        fail_limit(p);
        return;
    }
    size_t content, cost;
    element_bytes(name, atts, &content, &cost);
    if (charge(p, content, cost))
        return;
    if (p->depth > 0) {
        flush_text(p);
        if (halted(p))
            return;
    }
    struct tern_xml *el = element_for(name);
    add_attrs(el, atts);
    if (p->depth == 0)
        p->stanza = el;
    else
        tern_xml_add_child_take(p->cur, el);
    p->cur = el;
    p->depth++;
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
    struct tern_xml_parser *p = ud;
    if (halted(p))
        return;
    uint64_t end = event_end(p);
    if (p->depth == 0) {
        p->ended = 1;
        if (p->cb.stream_close)
            p->cb.stream_close(p->ud);
        return;
    }
    if (end - p->stanza_start > p->limits.max_stanza_size) {
        fail_limit(p);
        return;
    }
    flush_text(p);
    if (halted(p))
        return;
    p->depth--;
    if (p->depth > 0) {
        p->cur = p->cur->parent;
        return;
    }
    struct tern_xml *stanza = p->stanza;
    p->stanza = NULL;
    p->cur = NULL;
    p->acc = 0;
    p->cost = 0;
    p->delivered = 1;
    if (p->cb.stanza)
        p->cb.stanza(p->ud, stanza);
    else
        tern_xml_unref(&stanza);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
    struct tern_xml_parser *p = ud;
    if (halted(p) || len <= 0)
        return;
    uint64_t end = event_end(p);
    if (p->depth == 0) {
        /* Whitespace between stanzas is a keepalive; other text has no place
         * directly inside the stream. */
        for (int i = 0; i < len; i++) {
            if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
                fail(p, TERN_SE_BAD_FORMAT, TERN_E_INVAL);
                return;
            }
        }
        return;
    }
    if (end - p->stanza_start > p->limits.max_stanza_size) {
        fail_limit(p);
        return;
    }
    if (charge(p, (size_t)len, (size_t)len))
        return;
    if (tern_buf_add(&p->text, s, (size_t)len))
        fail_limit(p);
}

static void XMLCALL on_ns_start(void *ud, const XML_Char *prefix, const XML_Char *uri) {
    struct tern_xml_parser *p = ud;
    if (halted(p) || p->header_seen)
        return;
    /* Declarations before the header is seen belong to the header. */
    if (!uri)
        uri = "";
    if (!prefix) {
        free(p->header_ns);
        p->header_ns = tern_strdup(uri);
    }
    if (strcmp(uri, TERN_NS_STREAMS) == 0) {
        p->stream_binds++;
        free(p->stream_prefix);
        p->stream_prefix = prefix ? tern_strdup(prefix) : NULL;
    }
    /* Kept for replay; past the ceiling the header cannot be replayed. */
    if (tern_buf_adds(&p->decls, prefix ? " xmlns:" : " xmlns") ||
        (prefix && tern_buf_adds(&p->decls, prefix)) || tern_buf_adds(&p->decls, "='") ||
        tern_xml_escape(&p->decls, uri, strlen(uri)) || tern_buf_adds(&p->decls, "'"))
        p->decls_lost = 1;
}

static void XMLCALL on_xml_decl(void *ud, const XML_Char *version, const XML_Char *encoding,
                                int standalone) {
    struct tern_xml_parser *p = ud;
    if (halted(p))
        return;
    event_end(p);
    /* RFC 6120 §11.6: UTF-8 only. */
    if (encoding && strcasecmp(encoding, "UTF-8") != 0)
        fail(p, TERN_SE_UNSUPPORTED_ENCODING, TERN_E_INVAL);
}

/* RFC 6120 §11.1: no DTD, entity declaration, comment or processing instruction. */
static void restricted(void *ud) {
    struct tern_xml_parser *p = ud;
    if (!halted(p))
        fail(p, TERN_SE_RESTRICTED_XML, TERN_E_INVAL);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset) {
    restricted(ud);
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *sysid, const XML_Char *pubid,
                                   const XML_Char *notation) {
    restricted(ud);
}

static void XMLCALL on_comment(void *ud, const XML_Char *data) {
    restricted(ud);
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data) {
    restricted(ud);
}

/* Everything else (whitespace around the stream element, mostly) only moves
 * the mark, so that it does not count against a limit. */
static void XMLCALL on_default(void *ud, const XML_Char *s, int len) {
    struct tern_xml_parser *p = ud;
    if (!halted(p))
        event_end(p);
}

/* ---- expat setup ----------------------------------------------------- */

/* Expat allocates through Tern's wrappers, so it never sees a NULL either. */
static void *xp_malloc(size_t n) {
    return tern_malloc(n);
}

static void *xp_realloc(void *ptr, size_t n) {
    return tern_realloc(ptr, n);
}

static const XML_Memory_Handling_Suite xp_mem = {xp_malloc, xp_realloc, free};

static void xp_create(struct tern_xml_parser *p) {
    const XML_Char sep = NS_SEP;
    /* The encoding argument overrides any declaration in the document. */
    p->xp = XML_ParserCreate_MM("UTF-8", &xp_mem, &sep);
    if (!p->xp) /* only on allocation failure, which tern_malloc turns into abort */
        abort();
    XML_SetUserData(p->xp, p);
    XML_SetElementHandler(p->xp, on_start, on_end);
    XML_SetCharacterDataHandler(p->xp, on_text);
    XML_SetStartNamespaceDeclHandler(p->xp, on_ns_start);
    XML_SetXmlDeclHandler(p->xp, on_xml_decl);
    XML_SetStartDoctypeDeclHandler(p->xp, on_doctype);
    XML_SetEntityDeclHandler(p->xp, on_entity_decl);
    XML_SetCommentHandler(p->xp, on_comment);
    XML_SetProcessingInstructionHandler(p->xp, on_pi);
    /* The Expand variant keeps the predefined entities reported as text. */
    XML_SetDefaultHandlerExpand(p->xp, on_default);
    /* No external entities or parameter entities, ever (also the default).
     * The hash salt is left to expat, which seeds it from the OS. */
    XML_SetParamEntityParsing(p->xp, XML_PARAM_ENTITY_PARSING_NEVER);
#ifdef TERN_HAVE_XML_REPARSE_DEFERRAL
    /* See the top of this file: we defer reparsing ourselves. */
    XML_SetReparseDeferralEnabled(p->xp, XML_FALSE);
#endif
}

/*
 * Create expat for input starting at stream offset base. Once the header has
 * been read, the new parser is first given replay, so that it is inside the
 * stream element with the header's namespaces, as the freed one was.
 */
static void xp_open(struct tern_xml_parser *p, uint64_t base) {
    xp_create(p);
    p->xp_base = base;
    p->xp_skip = 0;
    if (!p->header_seen)
        return;
    p->replaying = 1;
    p->in_parse = 1;
    enum XML_Status st = XML_Parse(p->xp, p->replay, (int)p->replay_len, XML_FALSE);
    p->in_parse = 0;
    p->xp_skip = (XML_Index)p->replay_len;
    /* Expat accepted these declarations once; refusing them now would be a
     * bug here, not the peer's fault. */
    if (st != XML_STATUS_OK || p->replaying)
        fail(p, TERN_SE_INTERNAL_SERVER_ERROR, TERN_E_INVAL);
}

static void xp_close(struct tern_xml_parser *p) {
    if (p->xp)
        XML_ParserFree(p->xp);
    p->xp = NULL;
    p->xp_base = 0;
    p->xp_skip = 0;
    p->replaying = 0;
}

/* Expat detects UTF-16 from a byte order mark or a NUL in the first two
 * bytes even when told the input is UTF-8 (RFC 6120 §11.6 allows only UTF-8). */
static int encoding_ok(const struct tern_xml_parser *p, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n && p->received + i < 2; i++) {
        if (s[i] == 0)
            return 0;
        if (p->received + i == 0 && (s[i] == 0xfe || s[i] == 0xff))
            return 0;
    }
    return 1;
}

/* ---- public ---------------------------------------------------------- */

static void clear_state(struct tern_xml_parser *p) {
    tern_xml_unref(&p->stanza);
    p->cur = NULL;
    tern_buf_free(&p->text);
    tern_buf_free(&p->hold);
    free(p->header_ns);
    p->header_ns = NULL;
    p->ended = 0;
    tern_buf_free(&p->decls);
    free(p->stream_prefix);
    p->stream_prefix = NULL;
    p->stream_binds = 0;
    p->decls_lost = 0;
    free(p->replay);
    p->replay = NULL;
    p->replay_len = 0;
    p->eager = IDLE_EAGER;
    p->delivered = 0;
    p->received = 0;
    p->mark = 0;
    p->stanza_start = 0;
    p->header_seen = 0;
    p->depth = 0;
    p->acc = 0;
    p->cost = 0;
    tern__xml_scan_init(&p->scan);
    p->err = TERN_SE_NONE;
    p->err_rc = 0;
    p->stopped = 0;
    p->reset_pending = 0;
}

struct tern_xml_parser *tern_xml_parser_new(const struct tern_xml_parser_cb *cb, void *ud,
                                            const char *content_ns,
                                            const struct tern_xml_limits *limits) {
    struct tern_xml_parser *p = tern_calloc(1, sizeof(*p));
    p->cb = *cb;
    p->ud = ud;
    p->content_ns = tern_strdup(content_ns ? content_ns : "");
    p->limits = *limits;
    tern_buf_init(&p->text, 0);
    tern_buf_init(&p->hold, 0);
    tern_buf_init(&p->decls, 0);
    apply_limits(p);
    clear_state(p);
    /* Expat is created by the first feed. */
    return p;
}

void tern_xml_parser_free(struct tern_xml_parser **pp) {
    struct tern_xml_parser *p = *pp;
    if (!p)
        return;
    *pp = NULL;
    clear_state(p);
    xp_close(p);
    free(p->content_ns);
    free(p);
}

static void do_reset(struct tern_xml_parser *p) {
    clear_state(p);
    /* The next feed creates a fresh parser rather than XML_ParserReset():
     * nothing of the old stream (namespace bindings, buffered bytes, a
     * finished state) survives. */
    xp_close(p);
}

void tern_xml_parser_reset(struct tern_xml_parser *p) {
    if (p->in_parse) {
        /* From a callback: expat is on the stack, so finish when feed returns. */
        p->reset_pending = 1;
        tern_xml_parser_stop(p);
        return;
    }
    do_reset(p);
}

void tern_xml_parser_stop(struct tern_xml_parser *p) {
    p->stopped = 1;
    if (p->in_parse)
        XML_StopParser(p->xp, XML_FALSE);
}

void tern_xml_parser_set_limits(struct tern_xml_parser *p, const struct tern_xml_limits *limits) {
    p->limits = *limits;
    apply_limits(p);
}

/*
 * Expat can go when a new parser given replay would be in the same state:
 * between stanzas of an open stream, nothing held back, the scanner between
 * tokens, and every byte turned into an event (mark == received; expat keeps
 * back a trailing CR, a partial UTF-8 character or an unfinished token
 * without reporting it, and those must not be lost).
 */
static int between_stanzas(const struct tern_xml_parser *p) {
    return p->header_seen && p->replay && !p->ended && p->depth == 0 && p->hold.len == 0 &&
           p->scan.state == TERN__SC_TEXT && p->mark == p->received;
}

int tern_xml_parser_trim(struct tern_xml_parser *p) {
    if (p->in_parse)
        return TERN_E_BUSY;
    if (!halted(p) && p->xp && !between_stanzas(p))
        return TERN_E_BUSY;
    /* A stopped or failed stream needs none of this until reset, which
     * starts afresh anyway. */
    if (halted(p)) {
        tern_xml_unref(&p->stanza);
        p->cur = NULL;
    }
    xp_close(p);
    tern_buf_free(&p->hold);
    if (!p->stanza)
        tern_buf_free(&p->text);
    return 0;
}

int tern_xml_parser_idle(struct tern_xml_parser *p) {
    int held = p->xp != NULL;
    if (held && !halted(p) && (p->eager == 0 || !p->delivered))
        return TERN_E_BUSY;
    int rc = tern_xml_parser_trim(p);
    if (rc == 0 && held && !halted(p))
        p->eager--;
    return rc;
}

/* Give expat the held bytes (if any) and these. */
static void parse(struct tern_xml_parser *p, const char *s, size_t n) {
    const char *buf = s;
    size_t len = n;
    if (p->hold.len) {
        if (tern_buf_add(&p->hold, s, n)) {
            fail_limit(p);
            return;
        }
        buf = p->hold.data;
        len = p->hold.len;
    }
    if (!p->xp) {
        /* received already counts buf. */
        xp_open(p, p->received - len);
        if (halted(p))
            return;
    }
    p->in_parse = 1;
    enum XML_Status st = XML_Parse(p->xp, buf, (int)len, XML_FALSE);
    p->in_parse = 0;
    /* Held bytes are rare; do not keep their storage around. */
    tern_buf_free(&p->hold);
    if (st == XML_STATUS_ERROR && !halted(p))
        fail(p, map_expat_error(XML_GetErrorCode(p->xp)), TERN_E_INVAL);
}

int tern_xml_parser_feed(struct tern_xml_parser *p, const char *data, size_t len,
                         enum tern_stream_error *cond) {
    if (p->in_parse) {
        /* From a callback: not allowed, and expat is not re-entrant. */
        *cond = TERN_SE_INTERNAL_SERVER_ERROR;
        return TERN_E_BUSY;
    }
    if (p->err != TERN_SE_NONE)
        goto fail;
    if (p->stopped) {
        /* Stopped and not reset: the caller has lost track of the stream. */
        *cond = TERN_SE_INTERNAL_SERVER_ERROR;
        return TERN_E_CLOSED;
    }
    const unsigned char *s = (const unsigned char *)data;
    while (len > 0) {
        size_t n = len < PIECE ? len : PIECE;
        if (p->received < 2 && !encoding_ok(p, s, n)) {
            fail(p, TERN_SE_UNSUPPORTED_ENCODING, TERN_E_INVAL);
            goto fail;
        }
        int progress = tern__xml_scan(&p->scan, p->received, s, n);
        p->received += n;
        if (!progress && p->received - p->scan.tok_start > HOLD_MIN) {
            if (tern_buf_add(&p->hold, s, n))
                fail_limit(p);
        } else {
            parse(p, (const char *)s, n);
        }
        if (p->stopped) {
            /* A callback asked us to return; the rest of the input is not ours. */
            if (p->reset_pending)
                do_reset(p);
            return 0;
        }
        if (p->err == TERN_SE_NONE)
            check_pending(p);
        if (p->err != TERN_SE_NONE)
            goto fail;
        s += n;
        len -= n;
    }
    return 0;

fail:
    /* Release what a failed stream was holding; the error stays until reset. */
    tern_xml_unref(&p->stanza);
    p->cur = NULL;
    tern_buf_free(&p->text);
    tern_buf_free(&p->hold);
    xp_close(p);
    *cond = p->err;
    return p->err_rc;
}
