/* Test hooks into JID preparation; not for use outside unit tests. */
#ifndef TERN_XMPP_JID_INTERNAL_H
#define TERN_XMPP_JID_INTERNAL_H

#include <stddef.h>

#include "xmpp/jid.h"

/** The three parts of a JID, each with its own preparation. */
enum tern__jid_part {
    TERN__JID_LOCAL,    /* Nodeprep, then RFC 7622 §3.3.1's forbidden characters */
    TERN__JID_DOMAIN,   /* IP literal, or UTS #46 to an A-label domain */
    TERN__JID_RESOURCE, /* Resourceprep */
};

/** What the ASCII fast path concluded about one part. */
enum tern__jid_ascii {
    TERN__JID_ASCII_OK,     /* prepared: *out holds the result, the caller frees it */
    TERN__JID_ASCII_BAD,    /* invalid: the slow path would refuse it too */
    TERN__JID_ASCII_UNSURE, /* not pure ASCII, or a case left to libidn/libidn2 */
};

/**
 * The ASCII fast path alone over len bytes of in (which may hold NUL bytes).
 * *out is set only with TERN__JID_ASCII_OK, and is then what
 * tern__jid_prep_slow() would give.
 */
enum tern__jid_ascii tern__jid_prep_ascii(enum tern__jid_part part, const char *in, size_t len,
                                          char **out);

/**
 * The libidn/libidn2 preparation alone over len bytes of in. Returns 0 and
 * sets *out (caller frees), or TERN_E_INVAL with *out NULL.
 */
int tern__jid_prep_slow(enum tern__jid_part part, const char *in, size_t len, char **out);

/** tern_jid_parse() with the ASCII fast path switched off. */
int tern__jid_parse_slow(struct tern_jid *jid, const char *s);

#endif
