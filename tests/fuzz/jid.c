/*
 * libFuzzer target for src/xmpp/jid.c: the ASCII fast path against the
 * libidn/libidn2 preparation it stands in for.
 *
 * The input is one JID string (cut at the first NUL). Each part rule is
 * checked on the whole input as if it were that part: where the fast path
 * answers, the slow path must give the same verdict and the same bytes.
 * Then the whole string is parsed with and without the fast path, and the
 * two must agree on acceptance and on every part.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp/jid.h"
#include "xmpp/jid_internal.h"

static int same(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_part(enum tern__jid_part part, const char *in, size_t len) {
    char *fast = NULL, *slow = NULL;
    enum tern__jid_ascii verdict = tern__jid_prep_ascii(part, in, len, &fast);
    if (verdict == TERN__JID_ASCII_UNSURE)
        return;
    int rc = tern__jid_prep_slow(part, in, len, &slow);
    if (verdict == TERN__JID_ASCII_BAD ? rc == 0 : rc != 0 || strcmp(fast, slow) != 0)
        abort(); /* the fast path decided differently from the libraries */
    free(fast);
    free(slow);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    size_t len = strlen(s);
    check_part(TERN__JID_LOCAL, s, len);
    check_part(TERN__JID_DOMAIN, s, len);
    check_part(TERN__JID_RESOURCE, s, len);

    struct tern_jid a, b;
    int ra = tern_jid_parse(&a, s);
    int rb = tern__jid_parse_slow(&b, s);
    if ((ra == 0) != (rb == 0))
        abort();
    if (ra == 0) {
        if (!same(a.local, b.local) || !same(a.domain, b.domain) || !same(a.resource, b.resource))
            abort();
        tern_jid_free(&a);
        tern_jid_free(&b);
    }
    free(s);
    return 0;
}
