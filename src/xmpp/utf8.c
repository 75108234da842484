#include "xmpp/utf8.h"

#include <stdint.h>

#include "core/err.h"

int tern_utf8_check(const char *s, size_t len) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;

    while (i < len) {
        uint8_t c = p[i];
        size_t n;                     /* continuation bytes that follow */
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

        if (c == 0)
            return TERN_E_INVAL;
        if (c < 0x80) {
            i++;
            continue;
        }
        /* RFC 3629 §4: the second byte's range depends on the lead byte, which
         * is what rules out overlong forms, surrogates and values past U+10FFFF. */
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c == 0xE0) {
            n = 2;
            lo = 0xA0;
        } else if (c == 0xED) {
            n = 2;
            hi = 0x9F;
        } else if (c >= 0xE1 && c <= 0xEF) {
            n = 2;
        } else if (c == 0xF0) {
            n = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            n = 3;
        } else if (c == 0xF4) {
            n = 3;
            hi = 0x8F;
        } else {
            return TERN_E_INVAL;
        }
        if (len - i <= n)
            return TERN_E_INVAL;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return TERN_E_INVAL;
        for (size_t k = 2; k <= n; k++) {
            if (p[i + k] < 0x80 || p[i + k] > 0xBF)
                return TERN_E_INVAL;
        }
        i += n + 1;
    }
    return 0;
}
