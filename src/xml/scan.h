/* Internal to src/xml: a coarse follower of XML markup, used by parser.c to
 * decide when new bytes cannot complete the token expat is waiting on. */
#ifndef TERN_XML_SCAN_H
#define TERN_XML_SCAN_H

#include <stddef.h>
#include <stdint.h>

/** Where the scanner thinks the input is. */
enum tern__xml_scan_state {
    TERN__SC_TEXT,    /* character data or whitespace between markup */
    TERN__SC_LT,      /* just after '<' */
    TERN__SC_TAG,     /* inside a start or end tag */
    TERN__SC_SQ,      /* inside a single-quoted attribute value */
    TERN__SC_DQ,      /* inside a double-quoted attribute value */
    TERN__SC_BANG,    /* just after "<!" */
    TERN__SC_COMMENT, /* inside "<!-" ... "-->" */
    TERN__SC_CDATA,   /* inside "<![" ... "]]>" */
    TERN__SC_PI,      /* inside "<?" ... "?>" (also the XML declaration) */
    TERN__SC_REF,     /* inside '&' ... ';' */
    TERN__SC_LOST,    /* input the scanner does not follow; from here on every byte is progress */
};

/** Scanner state, embedded in the parser. */
struct tern__xml_scan {
    enum tern__xml_scan_state state; /* where we are */
    int count;                       /* '-', ']' or '?' just seen, depending on state */
    uint64_t tok_start;              /* stream offset where the current markup token began */
};

/** Start at the beginning of a stream. */
void tern__xml_scan_init(struct tern__xml_scan *sc);

/**
 * Follow the markup through the n bytes at s, which start at stream offset
 * offset. Returns 1 if these bytes could let expat report something (end a
 * token, or carry character data, which expat reports as it arrives), 0 if
 * they certainly cannot. Wrongly answering 1 only costs a rescan in expat;
 * answering 0 for bytes that end a token would delay a stanza, so every
 * unclear case answers 1. On input that is not well-formed the scanner may
 * lose track, and then answers 1 for good.
 */
int tern__xml_scan(struct tern__xml_scan *sc, uint64_t offset, const unsigned char *s, size_t n);

#endif
