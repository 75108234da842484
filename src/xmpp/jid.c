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
 *
 * Those libraries cost microseconds per JID, and nearly every JID on the wire
 * is plain ASCII, for which both reduce to a few table rules. So each part is
 * first offered to an ASCII fast path that either decides exactly as the
 * libraries would (tests/unit/xmpp/jid.c compares the two over every ASCII
 * byte and thousands of random strings) or says it is unsure, and only then
 * handed to libidn or libidn2.
 */
#include "xmpp/jid.h"
#include "xmpp/jid_internal.h"

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

static int slow_local(const char *in, size_t len, char **out) {
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

static int slow_resource(const char *in, size_t len, char **out) {
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

static int slow_domain(const char *in, size_t len, char **out) {
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

/* ---- ASCII fast path ------------------------------------------------------------- */

/*
 * A domain of at most 253 characters (without the trailing dot) fits the
 * 255-octet wire form (RFC 1035 §3.1); libidn2 refuses longer ones, so the
 * fast path leaves them to it.
 */
#define DOMAIN_MAX 253

/* RFC 3454 C.2.1: the ASCII controls. NUL is one, and tern_utf8_check refuses it. */
static int is_ascii_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

/* RFC 3920 A.5 (Nodeprep's own table), kept by RFC 7622 §3.3.1. */
static int is_node_forbidden(unsigned char c) {
    switch (c) {
    case '"':
    case '&':
    case '\'':
    case '/':
    case ':':
    case '<':
    case '>':
    case '@': return 1;
    default: return 0;
    }
}

static int is_ascii_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A NUL-terminated copy of len bytes of in, A-Z mapped to a-z. */
static char *lower_dup(const char *in, size_t len) {
    char *s = tern_malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        s[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    s[len] = '\0';
    return s;
}

/*
 * Nodeprep (RFC 3920 Appendix A) of pure ASCII: table B.1 maps no ASCII
 * character, B.2 maps A-Z to a-z, NFKC leaves ASCII alone and no ASCII character
 * is RandALCat, so what is left to decide is the prohibited set: space (C.1.1),
 * the controls (C.2.1) and A.5's " & ' / : < > @. One non-ASCII byte anywhere
 * leaves the whole part to libidn, even after a prohibited character: NFKC
 * composes "<" and a following U+0338 into U+226E, and the "<" is gone.
 */
static enum tern__jid_ascii ascii_local(const char *in, size_t len, char **out) {
    int bad = len == 0 || len > TERN_JID_PART_MAX;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            return TERN__JID_ASCII_UNSURE;
        if (is_ascii_control(c) || c == ' ' || is_node_forbidden(c))
            bad = 1;
    }
    if (bad)
        return TERN__JID_ASCII_BAD;
    *out = lower_dup(in, len);
    return TERN__JID_ASCII_OK;
}

/*
 * Resourceprep (RFC 3920 Appendix B) of pure ASCII: it maps nothing (B.1 only,
 * no case folding), and of ASCII prohibits only the controls (C.2.1); space is
 * allowed. Non-ASCII goes to libidn for the reason given at ascii_local().
 */
static enum tern__jid_ascii ascii_resource(const char *in, size_t len, char **out) {
    int bad = len == 0 || len > TERN_JID_PART_MAX;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            return TERN__JID_ASCII_UNSURE;
        if (is_ascii_control(c))
            bad = 1;
    }
    if (bad)
        return TERN__JID_ASCII_BAD;
    *out = tern_strndup(in, len);
    return TERN__JID_ASCII_OK;
}

/*
 * An LDH host name: labels of 1..63 letters, digits and '-', no '-' at either
 * end of a label, no "--" in a label's third and fourth place (an "xn--"
 * A-label, whose Punycode libidn2 checks, or a label UTS #46 CheckHyphens
 * refuses), at most DOMAIN_MAX long after one trailing dot is dropped. For
 * these UTS #46 only lower-cases, libidn2 copies ASCII labels through and
 * check_ascii_domain() accepts (dotted-quad IPv4 literals included), so the
 * result is the input lower-cased. Anything else (IPv6 literals, '_', A-labels,
 * names to refuse) is left to slow_domain().
 */
static enum tern__jid_ascii ascii_domain(const char *in, size_t len, char **out) {
    /* RFC 7622 §3.2: one trailing dot is not part of the domain. */
    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > DOMAIN_MAX)
        return TERN__JID_ASCII_UNSURE;

    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)in[i] : '.';
        if (c == '.') {
            if (label == 0 || label > LABEL_MAX || in[i - 1] == '-')
                return TERN__JID_ASCII_UNSURE;
            label = 0;
            continue;
        }
        if (c == '-') {
            if (label == 0 || (label == 3 && in[i - 1] == '-'))
                return TERN__JID_ASCII_UNSURE;
        } else if (!is_ascii_alnum(c)) {
            return TERN__JID_ASCII_UNSURE;
        }
        label++;
    }
    *out = lower_dup(in, len);
    return TERN__JID_ASCII_OK;
}

enum tern__jid_ascii tern__jid_prep_ascii(enum tern__jid_part part, const char *in, size_t len,
                                          char **out) {
    *out = NULL;
    switch (part) {
    case TERN__JID_LOCAL: return ascii_local(in, len, out);
    case TERN__JID_DOMAIN: return ascii_domain(in, len, out);
    case TERN__JID_RESOURCE: return ascii_resource(in, len, out);
    }
    return TERN__JID_ASCII_UNSURE;
}

int tern__jid_prep_slow(enum tern__jid_part part, const char *in, size_t len, char **out) {
    *out = NULL;
    switch (part) {
    case TERN__JID_LOCAL: return slow_local(in, len, out);
    case TERN__JID_DOMAIN: return slow_domain(in, len, out);
    case TERN__JID_RESOURCE: return slow_resource(in, len, out);
    }
    return TERN_E_INVAL;
}

/* The fast path when it is sure (and fast is set), libidn/libidn2 otherwise. */
static int prep(enum tern__jid_part part, const char *in, size_t len, int fast, char **out) {
    if (fast) {
        switch (tern__jid_prep_ascii(part, in, len, out)) {
        case TERN__JID_ASCII_OK: return 0;
        case TERN__JID_ASCII_BAD: return TERN_E_INVAL;
        case TERN__JID_ASCII_UNSURE: break;
        }
    }
    return tern__jid_prep_slow(part, in, len, out);
}

/* ---- public interface ------------------------------------------------------------ */

int tern_jid_prep_local(const char *in, char **out) {
    *out = NULL;
    if (!in)
        return TERN_E_INVAL;
    return prep(TERN__JID_LOCAL, in, strlen(in), 1, out);
}

int tern_jid_prep_resource(const char *in, char **out) {
    *out = NULL;
    if (!in)
        return TERN_E_INVAL;
    return prep(TERN__JID_RESOURCE, in, strlen(in), 1, out);
}

int tern_jid_prep_domain(const char *in, char **out) {
    *out = NULL;
    if (!in)
        return TERN_E_INVAL;
    return prep(TERN__JID_DOMAIN, in, strlen(in), 1, out);
}

/* tern_jid_parse(), with or without the ASCII fast path. */
static int parse(struct tern_jid *jid, const char *s, int fast) {
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
        rc = prep(TERN__JID_LOCAL, s, (size_t)(at - s), fast, &jid->local);
        if (rc)
            goto fail;
    }
    rc = prep(TERN__JID_DOMAIN, dom, dom_len, fast, &jid->domain);
    if (rc)
        goto fail;
    if (slash) {
        rc = prep(TERN__JID_RESOURCE, slash + 1, len - bare_len - 1, fast, &jid->resource);
        if (rc)
            goto fail;
    }
    return 0;

fail:
    tern_jid_free(jid);
    return rc;
}

int tern_jid_parse(struct tern_jid *jid, const char *s) {
    return parse(jid, s, 1);
}

int tern__jid_parse_slow(struct tern_jid *jid, const char *s) {
    return parse(jid, s, 0);
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
