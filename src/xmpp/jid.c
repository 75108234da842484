/*
 * JIDs (RFC 7622).
 *
 * Debian ships no PRECIS library, so the localpart and resourcepart are
 * prepared with libidn's stringprep profiles Nodeprep and Resourceprep, the
 * RFC 3920 (Appendix A and B) predecessors of RFC 7622's PRECIS
 * UsernameCaseMapped and OpaqueString profiles. For nearly every real JID the
 * two give the same result: both case-fold the localpart, keep the case of the
 * resource, and forbid controls and the same separator characters. They
 * differ at the edges: stringprep normalises to NFKC where PRECIS uses NFC
 * (so compatibility characters such as U+FF21 fold to ASCII here), its tables
 * are Unicode 3.2, and code points unassigned in 3.2 (e.g. newer emoji) are
 * let through unmapped instead of being judged by their current properties.
 * On top of Nodeprep we enforce RFC 7622 §3.3.1's rule against " & ' / : < > @
 * in a localpart.
 *
 * Domainparts are stored in A-label (ASCII) form: an IDN such as "bücher.example"
 * becomes "xn--bcher-kva.example" through libidn2 (UTS #46 non-transitional
 * mapping, which also lower-cases), so that two spellings of one domain compare
 * equal byte for byte and the value can go straight into DNS and TLS checks.
 */
#include "xmpp/jid.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <idn-free.h>
/* Keep libidn2 from redefining libidn's names (idn_free) as its own. */
#define IDN2_SKIP_LIBIDN_COMPAT
#include <idn2.h>
#include <stringprep.h>

#include "core/err.h"
#include "core/mem.h"
#include "xmpp/utf8.h"

/*
 * Ceiling on one part before preparation. Preparation can shrink a part
 * (characters mapped to nothing), so allow some slack over TERN_JID_PART_MAX
 * but never hand libidn an unbounded string.
 */
#define RAW_PART_MAX (4 * TERN_JID_PART_MAX)

/* DNS limits (RFC 1035 §2.3.4) that an A-label domain must respect. */
#define LABEL_MAX 63

/* Run a libidn stringprep profile over len bytes of in; result in *out. */
static int stringprep_part(const char *in, size_t len, const char *profile, char **out) {
    char *raw = NULL;
    char *prepped = NULL;
    int rc = TERN_E_INVAL;

    *out = NULL;
    if (len == 0 || len > RAW_PART_MAX || tern_utf8_check(in, len) != 0)
        return TERN_E_INVAL;
    raw = tern_strndup(in, len);
    /* Flags 0: unassigned code points are allowed (see the note at the top). */
    if (stringprep_profile(raw, &prepped, profile, 0) != STRINGPREP_OK)
        goto fail;
    size_t plen = strlen(prepped);
    if (plen == 0 || plen > TERN_JID_PART_MAX)
        goto fail;
    *out = tern_strndup(prepped, plen);
    rc = 0;

fail:
    idn_free(prepped);
    free(raw);
    return rc;
}

static int prep_local(const char *in, size_t len, char **out) {
    int rc = stringprep_part(in, len, "Nodeprep", out);
    if (rc)
        return rc;
    /* RFC 7622 §3.3.1: these are disallowed even though PRECIS would allow them. */
    if (strpbrk(*out, "\"&'/:<>@") != NULL) {
        free(*out);
        *out = NULL;
        return TERN_E_INVAL;
    }
    return 0;
}

static int prep_resource(const char *in, size_t len, char **out) {
    return stringprep_part(in, len, "Resourceprep", out);
}

static void ascii_lower(char *s) {
    for (; *s; s++) {
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
    }
}

/* "[v6]" (RFC 7622 §3.2 IP-literal): returns 1 if s is one. */
static int is_ipv6_literal(const char *s, size_t len) {
    char addr[INET6_ADDRSTRLEN + 1];
    unsigned char bin[16];

    if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 > INET6_ADDRSTRLEN)
        return 0;
    memcpy(addr, s + 1, len - 2);
    addr[len - 2] = '\0';
    return inet_pton(AF_INET6, addr, bin) == 1;
}

static int is_ipv4_literal(const char *s) {
    unsigned char bin[4];
    return inet_pton(AF_INET, s, bin) == 1;
}

/*
 * An A-label domain: labels of 1..63 bytes of letters, digits, '-' and '_',
 * no label starting or ending with '-'. The underscore is not LDH, but
 * deployed XMPP servers accept it in host names, so we do too.
 */
static int check_ascii_domain(const char *s) {
    size_t label = 0;

    for (const char *p = s;; p++) {
        char c = *p;
        if (c == '.' || c == '\0') {
            if (label == 0 || label > LABEL_MAX || p[-1] == '-')
                return TERN_E_INVAL;
            if (c == '\0')
                return 0;
            label = 0;
            continue;
        }
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok || (label == 0 && c == '-'))
            return TERN_E_INVAL;
        label++;
    }
}

static int prep_domain(const char *in, size_t len, char **out) {
    char *raw = NULL;
    char *alabel = NULL;
    int rc = TERN_E_INVAL;

    *out = NULL;
    if (len == 0 || len > RAW_PART_MAX || tern_utf8_check(in, len) != 0)
        return TERN_E_INVAL;

    /* IP literals are taken as they are (hex digits lower-cased for comparison). */
    if (is_ipv6_literal(in, len)) {
        *out = tern_strndup(in, len);
        ascii_lower(*out);
        return 0;
    }

    raw = tern_strndup(in, len);
    /* UTS #46 non-transitional: "faß.de" keeps its ß (IDNA2008), and ASCII is
     * lower-cased. The lookup also rejects bad Punycode in "xn--" labels. */
    if (idn2_to_ascii_8z(raw, &alabel, IDN2_NONTRANSITIONAL) != IDN2_OK)
        goto fail;
    size_t alen = strlen(alabel);
    /* RFC 7622 §3.2: one trailing dot is not part of the domain (checked after
     * mapping so that an ideographic full stop counts too). */
    if (alen > 0 && alabel[alen - 1] == '.')
        alabel[--alen] = '\0';
    if (alen == 0 || alen > TERN_JID_PART_MAX)
        goto fail;
    ascii_lower(alabel);
    if (!is_ipv4_literal(alabel) && check_ascii_domain(alabel) != 0)
        goto fail;
    *out = tern_strndup(alabel, alen);
    rc = 0;

fail:
    idn2_free(alabel);
    free(raw);
    return rc;
}

int tern_jid_prep_local(const char *in, char **out) {
    *out = NULL;
    if (!in)
        return TERN_E_INVAL;
    return prep_local(in, strlen(in), out);
}

int tern_jid_prep_resource(const char *in, char **out) {
    *out = NULL;
    if (!in)
        return TERN_E_INVAL;
    return prep_resource(in, strlen(in), out);
}

int tern_jid_prep_domain(const char *in, char **out) {
    *out = NULL;
    if (!in)
        return TERN_E_INVAL;
    return prep_domain(in, strlen(in), out);
}

int tern_jid_parse(struct tern_jid *jid, const char *s) {
    int rc = TERN_E_INVAL;

    jid->local = NULL;
    jid->domain = NULL;
    jid->resource = NULL;
    if (!s)
        return TERN_E_INVAL;

    size_t len = strlen(s);
    if (len > 3 * RAW_PART_MAX + 2)
        return TERN_E_INVAL;

    /* RFC 7622 §3.1: the first '/' starts the resource (which may itself hold
     * '@' and '/'); in what precedes it, the first '@' ends the localpart. */
    const char *slash = memchr(s, '/', len);
    size_t bare_len = slash ? (size_t)(slash - s) : len;
    const char *at = memchr(s, '@', bare_len);
    const char *dom = at ? at + 1 : s;
    size_t dom_len = bare_len - (size_t)(dom - s);

    if (at) {
        rc = prep_local(s, (size_t)(at - s), &jid->local);
        if (rc)
            goto fail;
    }
    rc = prep_domain(dom, dom_len, &jid->domain);
    if (rc)
        goto fail;
    if (slash) {
        rc = prep_resource(slash + 1, len - bare_len - 1, &jid->resource);
        if (rc)
            goto fail;
    }
    return 0;

fail:
    tern_jid_free(jid);
    return rc;
}

void tern_jid_free(struct tern_jid *jid) {
    free(jid->local);
    free(jid->domain);
    free(jid->resource);
    jid->local = NULL;
    jid->domain = NULL;
    jid->resource = NULL;
}

void tern_jid_copy(struct tern_jid *dst, const struct tern_jid *src) {
    dst->local = tern_strdup(src->local);
    dst->domain = tern_strdup(src->domain);
    dst->resource = tern_strdup(src->resource);
}

/* Join the present parts; with_resource selects full or bare form. */
static char *format(const struct tern_jid *jid, int with_resource) {
    size_t llen = jid->local ? strlen(jid->local) : 0;
    size_t dlen = jid->domain ? strlen(jid->domain) : 0;
    size_t rlen = with_resource && jid->resource ? strlen(jid->resource) : 0;
    char *out = tern_malloc(llen + dlen + rlen + 3);
    char *p = out;

    if (jid->local) {
        memcpy(p, jid->local, llen);
        p += llen;
        *p++ = '@';
    }
    memcpy(p, jid->domain ? jid->domain : "", dlen);
    p += dlen;
    if (with_resource && jid->resource) {
        *p++ = '/';
        memcpy(p, jid->resource, rlen);
        p += rlen;
    }
    *p = '\0';
    return out;
}

char *tern_jid_full(const struct tern_jid *jid) {
    return format(jid, 1);
}

char *tern_jid_bare(const struct tern_jid *jid) {
    return format(jid, 0);
}

/* Both absent, or both present and equal. */
static int part_equal(const char *a, const char *b) {
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

int tern_jid_equal(const struct tern_jid *a, const struct tern_jid *b, int bare_only) {
    if (!part_equal(a->local, b->local) || !part_equal(a->domain, b->domain))
        return 0;
    return bare_only || part_equal(a->resource, b->resource);
}
