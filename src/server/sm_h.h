/* XEP-0198 counter arithmetic: h is a 32-bit counter that wraps (§5). */
#ifndef TERN_SERVER_SM_H_H
#define TERN_SERVER_SM_H_H

#include <stdint.h>

/** How many stanzas lie between an older and a newer h, across the wrap. */
static inline uint32_t tern_sm_h_delta(uint32_t newer, uint32_t older) {
    return newer - older; /* unsigned arithmetic is modulo 2^32 */
}

/**
 * Is an acknowledgement of h acceptable when acked was the last one and
 * queued stanzas are unacknowledged? It may not go back (a delta past the
 * queue) nor acknowledge more than was sent.
 */
static inline int tern_sm_h_valid(uint32_t h, uint32_t acked, uint32_t queued) {
    return tern_sm_h_delta(h, acked) <= queued;
}

/** Parse a decimal h (0 .. 2^32-1); 0 on success, -1 if malformed. */
static inline int tern_sm_h_parse(const char *s, uint32_t *out) {
    uint64_t v = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

#endif
