/* Base64 (RFC 4648 §4): standard alphabet, padding required, nothing else allowed. */
#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/mem.h"
#include "xmpp/scram.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *tern_base64_encode(const uint8_t *in, size_t len) {
    /* Four output bytes per three input bytes, plus the NUL. */
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    size_t outlen = (len + 2) / 3 * 4;
    char *out = tern_malloc(outlen + 1);
    char *o = out;
    size_t i = 0;

    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = alphabet[v >> 18 & 0x3F];
        *o++ = alphabet[v >> 12 & 0x3F];
        *o++ = alphabet[v >> 6 & 0x3F];
        *o++ = alphabet[v & 0x3F];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = alphabet[v >> 18 & 0x3F];
        *o++ = alphabet[v >> 12 & 0x3F];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = alphabet[v >> 18 & 0x3F];
        *o++ = alphabet[v >> 12 & 0x3F];
        *o++ = alphabet[v >> 6 & 0x3F];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* The 6-bit value of an alphabet character, or -1. */
static int sextet(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int tern_base64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen) {
    *out = NULL;
    *outlen = 0;
    if (len % 4 != 0)
        return TERN_E_INVAL;

    size_t pad = 0;
    if (len > 0 && in[len - 1] == '=')
        pad = (len > 1 && in[len - 2] == '=') ? 2 : 1;

    uint8_t *buf = tern_malloc(len / 4 * 3 + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int v[4];
        for (size_t k = 0; k < 4; k++) {
            /* '=' is allowed only as the final one or two characters. */
            if (last && k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = sextet(in[i + k]);
            if (v[k] < 0)
                goto fail;
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        /* RFC 4648 §3.5: the bits a pad stands for must be zero, so that every
         * byte string has exactly one encoding. */
        if (last && pad == 2 && (w & 0xFFFF) != 0)
            goto fail;
        if (last && pad == 1 && (w & 0xFF) != 0)
            goto fail;
        buf[n++] = (uint8_t)(w >> 16);
        if (!last || pad < 2)
            buf[n++] = (uint8_t)(w >> 8);
        if (!last || pad < 1)
            buf[n++] = (uint8_t)w;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;

fail:
    free(buf);
    return TERN_E_INVAL;
}
