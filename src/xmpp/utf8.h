/* Strict UTF-8 validation (RFC 3629) for identifiers and SASL strings. */
#ifndef TERN_XMPP_UTF8_H
#define TERN_XMPP_UTF8_H

#include <stddef.h>

/**
 * Check that the len bytes at s are well-formed UTF-8 (RFC 3629 §4): no
 * overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
 * truncated sequence, and no NUL byte. Returns 0 or TERN_E_INVAL.
 */
int tern_utf8_check(const char *s, size_t len);

#endif
