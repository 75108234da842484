/* Tests for src/xmpp/jid.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "xmpp/jid.h"
#include "xmpp/jid_internal.h"

/* Parse s, expect success and the given prepared parts (NULL = absent). */
static void expect_jid(const char *s, const char *local, const char *domain, const char *resource) {
    struct tern_jid jid;
    int rc = tern_jid_parse(&jid, s);
    if (rc != 0)
        fail_msg("parse of \"%s\" failed: %d", s, rc);
    if (local)
        assert_string_equal(jid.local, local);
    else
        assert_null(jid.local);
    assert_string_equal(jid.domain, domain);
    if (resource)
        assert_string_equal(jid.resource, resource);
    else
        assert_null(jid.resource);
    tern_jid_free(&jid);
    assert_null(jid.local);
    assert_null(jid.domain);
    assert_null(jid.resource);
}

static void expect_invalid(const char *s) {
    struct tern_jid jid;
    jid.local = (char *)"junk";
    jid.domain = (char *)"junk";
    jid.resource = (char *)"junk";
    int rc = tern_jid_parse(&jid, s);
    if (rc != TERN_E_INVAL)
        fail_msg("parse of \"%s\" returned %d, wanted TERN_E_INVAL", s, rc);
    assert_null(jid.local);
    assert_null(jid.domain);
    assert_null(jid.resource);
}

/* A string of n copies of c followed by suffix; caller frees. */
static char *repeat(char c, size_t n, const char *prefix, const char *suffix) {
    size_t plen = strlen(prefix), slen = strlen(suffix);
    char *s = malloc(plen + n + slen + 1);
    memcpy(s, prefix, plen);
    memset(s + plen, c, n);
    memcpy(s + plen + n, suffix, slen + 1);
    return s;
}

static void test_forms(void **state) {
    (void)state;
    expect_jid("user@example.com", "user", "example.com", NULL);
    expect_jid("user@example.com/res", "user", "example.com", "res");
    expect_jid("example.com", NULL, "example.com", NULL);
    expect_jid("example.com/res", NULL, "example.com", "res");
    expect_jid("example.com/a b", NULL, "example.com", "a b");
}

static void test_resource_separators(void **state) {
    (void)state;
    /* RFC 7622 §3.1: the first '/' wins; '@' after it belongs to the resource. */
    expect_jid("a@b.example/c@d/e", "a", "b.example", "c@d/e");
    expect_jid("example.com/user@host", NULL, "example.com", "user@host");
    expect_jid("example.com//", NULL, "example.com", "/");
    expect_jid("u@example.com/@", "u", "example.com", "@");
}

static void test_case(void **state) {
    (void)state;
    expect_jid("UsEr@ExAmPlE.CoM/ReSource", "user", "example.com", "ReSource");
    /* Non-ASCII localpart is case-folded too; resource keeps case. */
    expect_jid("\xc3\x84LICE@example.com/\xc3\x84LICE", "\xc3\xa4lice", "example.com",
               "\xc3\x84LICE");
}

static void test_trailing_dot(void **state) {
    (void)state;
    expect_jid("user@example.com.", "user", "example.com", NULL);
    expect_jid("example.com./r", NULL, "example.com", "r");
    expect_invalid("example.com..");
    expect_invalid(".");
    expect_invalid("user@.");
    expect_invalid(".example.com");
    expect_invalid("a..example.com");
}

static void test_ip_literals(void **state) {
    (void)state;
    expect_jid("user@[::1]/r", "user", "[::1]", "r");
    expect_jid("[2001:DB8::1]", NULL, "[2001:db8::1]", NULL);
    expect_jid("user@192.0.2.1", "user", "192.0.2.1", NULL);
    expect_invalid("user@[::1");
    expect_invalid("user@[zz::1]");
    expect_invalid("user@[]");
    expect_invalid("user@[192.0.2.1]x");
}

static void test_empty_parts(void **state) {
    (void)state;
    expect_invalid("");
    expect_invalid("@example.com");
    expect_invalid("user@");
    expect_invalid("example.com/");
    expect_invalid("user@example.com/");
    expect_invalid("user@/res");
    expect_invalid("/res");
    expect_invalid("@");
    /* A localpart that prepares to nothing (U+00AD is mapped out). */
    expect_invalid("\xc2\xad@example.com");
    assert_int_equal(tern_jid_parse(&(struct tern_jid){0}, NULL), TERN_E_INVAL);
}

static void test_lengths(void **state) {
    (void)state;
    char *s = repeat('a', 1023, "", "@example.com");
    struct tern_jid jid;
    assert_int_equal(tern_jid_parse(&jid, s), 0);
    assert_int_equal(strlen(jid.local), 1023);
    tern_jid_free(&jid);
    free(s);

    s = repeat('a', 1024, "", "@example.com");
    expect_invalid(s);
    free(s);

    s = repeat('R', 1023, "example.com/", "");
    assert_int_equal(tern_jid_parse(&jid, s), 0);
    assert_int_equal(strlen(jid.resource), 1023);
    tern_jid_free(&jid);
    free(s);

    s = repeat('R', 1024, "example.com/", "");
    expect_invalid(s);
    free(s);

    /* Two-byte characters: 512 of them are 1024 bytes. */
    char *big = malloc(2 * 512 + 32);
    strcpy(big, "example.com/");
    for (int i = 0; i < 512; i++)
        strcat(big, "\xc3\xa9");
    expect_invalid(big);
    free(big);

    /* DNS: a label is at most 63 bytes. */
    s = repeat('d', 63, "u@", ".example");
    expect_jid(s, "u", s + 2, NULL);
    free(s);
    s = repeat('d', 64, "u@", ".example");
    expect_invalid(s);
    free(s);

    /* Far past any limit: refused before preparation. */
    s = repeat('x', 100000, "", "");
    expect_invalid(s);
    free(s);
}

static void test_forbidden_local(void **state) {
    (void)state;
    expect_invalid("a\"b@example.com");
    expect_invalid("a&b@example.com");
    expect_invalid("a'b@example.com");
    expect_invalid("a:b@example.com");
    expect_invalid("a<b@example.com");
    expect_invalid("a>b@example.com");
    expect_invalid("a b@example.com");
    expect_invalid("a\tb@example.com");
    /* Fullwidth '<' (U+FF1C) maps to '<' and is refused after mapping. */
    expect_invalid("a\xef\xbc\x9c"
                   "b@example.com");
    /* '@' twice: the second lands in the domain. */
    expect_invalid("a@b@example.com");

    char *out = NULL;
    assert_int_equal(tern_jid_prep_local("a/b", &out), TERN_E_INVAL);
    assert_null(out);
    assert_int_equal(tern_jid_prep_local("a@b", &out), TERN_E_INVAL);
    assert_int_equal(tern_jid_prep_local("", &out), TERN_E_INVAL);
    assert_int_equal(tern_jid_prep_local("Juliet", &out), 0);
    assert_string_equal(out, "juliet");
    free(out);
}

static void test_bad_domain_chars(void **state) {
    (void)state;
    expect_invalid("user@exa mple.com");
    expect_invalid("user@exa<mple.com");
    expect_invalid("user@-example.com");
    expect_invalid("user@example-.com");
    expect_invalid("user@xn--zz.example"); /* bad Punycode */
    expect_invalid("user@exa\x01mple.com");
}

static void test_invalid_utf8(void **state) {
    (void)state;
    expect_invalid("\xff@example.com");
    expect_invalid("us\xc0\xafr@example.com"); /* overlong */
    expect_invalid("user@\xff.com");
    expect_invalid("user@example.com/\xc3");
    expect_invalid("user@example.com/\xed\xa0\x80"); /* surrogate */
    char *out = NULL;
    assert_int_equal(tern_jid_prep_resource("\xe2\x82", &out), TERN_E_INVAL);
    assert_int_equal(tern_jid_prep_domain("\xc3.com", &out), TERN_E_INVAL);
}

static void test_idn_domain(void **state) {
    (void)state;
    expect_jid("user@B\xc3\xbc"
               "cher.example",
               "user", "xn--bcher-kva.example", NULL);
    expect_jid("user@B\xc3\x9c"
               "CHER.EXAMPLE/r",
               "user", "xn--bcher-kva.example", "r");
    expect_jid("m\xc3\xbcnchen.DE", NULL, "xn--mnchen-3ya.de", NULL);
    /* Already an A-label: kept, lower-cased. */
    expect_jid("XN--BCHER-KVA.example", NULL, "xn--bcher-kva.example", NULL);

    char *out = NULL;
    assert_int_equal(tern_jid_prep_domain("B\xc3\xbc"
                                          "cher.example.",
                                          &out),
                     0);
    assert_string_equal(out, "xn--bcher-kva.example");
    free(out);
}

static void test_prep_resource(void **state) {
    (void)state;
    char *out = NULL;
    assert_int_equal(tern_jid_prep_resource("Home Office", &out), 0);
    assert_string_equal(out, "Home Office");
    free(out);
    /* U+00AD SOFT HYPHEN is mapped to nothing. */
    assert_int_equal(tern_jid_prep_resource("a\xc2\xad"
                                            "b",
                                            &out),
                     0);
    assert_string_equal(out, "ab");
    free(out);
    assert_int_equal(tern_jid_prep_resource("a\x07", &out), TERN_E_INVAL);
    assert_null(out);
}

static void test_printers(void **state) {
    (void)state;
    struct tern_jid jid;
    char *s;

    assert_int_equal(tern_jid_parse(&jid, "Juliet@Capulet.example/Balcony"), 0);
    s = tern_jid_full(&jid);
    assert_string_equal(s, "juliet@capulet.example/Balcony");
    free(s);
    s = tern_jid_bare(&jid);
    assert_string_equal(s, "juliet@capulet.example");
    free(s);
    tern_jid_free(&jid);

    assert_int_equal(tern_jid_parse(&jid, "capulet.example/r"), 0);
    s = tern_jid_full(&jid);
    assert_string_equal(s, "capulet.example/r");
    free(s);
    s = tern_jid_bare(&jid);
    assert_string_equal(s, "capulet.example");
    free(s);
    tern_jid_free(&jid);

    assert_int_equal(tern_jid_parse(&jid, "capulet.example"), 0);
    s = tern_jid_full(&jid);
    assert_string_equal(s, "capulet.example");
    free(s);
    tern_jid_free(&jid);
}

static void test_equal_and_copy(void **state) {
    (void)state;
    struct tern_jid a, b, c, d, e;
    assert_int_equal(tern_jid_parse(&a, "Juliet@Capulet.example/Balcony"), 0);
    assert_int_equal(tern_jid_parse(&b, "juliet@capulet.example./Balcony"), 0);
    assert_int_equal(tern_jid_parse(&c, "juliet@capulet.example/balcony"), 0);
    assert_int_equal(tern_jid_parse(&d, "capulet.example/Balcony"), 0);
    assert_int_equal(tern_jid_parse(&e, "juliet@capulet.example"), 0);

    assert_true(tern_jid_equal(&a, &b, 0));
    assert_false(tern_jid_equal(&a, &c, 0)); /* resources are case-sensitive */
    assert_true(tern_jid_equal(&a, &c, 1));
    assert_false(tern_jid_equal(&a, &d, 0));
    assert_false(tern_jid_equal(&a, &d, 1));
    assert_false(tern_jid_equal(&a, &e, 0)); /* full vs bare */
    assert_true(tern_jid_equal(&a, &e, 1));

    struct tern_jid copy;
    tern_jid_copy(&copy, &a);
    assert_true(tern_jid_equal(&copy, &a, 0));
    assert_ptr_not_equal(copy.local, a.local);
    tern_jid_free(&copy);
    tern_jid_copy(&copy, &d);
    assert_null(copy.local);
    assert_true(tern_jid_equal(&copy, &d, 0));
    tern_jid_free(&copy);

    tern_jid_free(&a);
    tern_jid_free(&b);
    tern_jid_free(&c);
    tern_jid_free(&d);
    tern_jid_free(&e);
}

/* ---- the ASCII fast path against libidn/libidn2 ------------------------------------ */

static const char *const part_names[] = {"localpart", "domainpart", "resourcepart"};

/* len bytes of s, non-printable ones as \xNN, for failure messages (static buffer). */
static const char *escaped(const char *s, size_t len) {
    static char buf[4 * 1100 + 1];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 5 < sizeof buf; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[n++] = (char)c;
        else
            n += (size_t)snprintf(buf + n, sizeof buf - n, "\\x%02x", c);
    }
    buf[n] = '\0';
    return buf;
}

/* The public preparation of one part (fast path first), for NUL-free input. */
static int prep_public(enum tern__jid_part part, const char *in, char **out) {
    switch (part) {
    case TERN__JID_LOCAL: return tern_jid_prep_local(in, out);
    case TERN__JID_DOMAIN: return tern_jid_prep_domain(in, out);
    case TERN__JID_RESOURCE: return tern_jid_prep_resource(in, out);
    }
    return TERN_E_INVAL;
}

/*
 * Prepare len bytes of in as part with the fast path alone, with libidn/libidn2
 * alone and (if in holds no NUL) through the public function, and fail unless
 * every answer that was given agrees: same accept/reject, same bytes.
 * Returns the fast path's verdict.
 */
static enum tern__jid_ascii check_same(enum tern__jid_part part, const char *in, size_t len) {
    char *fast = NULL, *slow = NULL;
    enum tern__jid_ascii v = tern__jid_prep_ascii(part, in, len, &fast);
    int rc = tern__jid_prep_slow(part, in, len, &slow);

    if (rc != 0 && rc != TERN_E_INVAL)
        fail_msg("slow %s \"%s\": %d", part_names[part], escaped(in, len), rc);
    if (v == TERN__JID_ASCII_OK && rc != 0)
        fail_msg("%s \"%s\": fast accepts as \"%s\", slow refuses", part_names[part],
                 escaped(in, len), fast);
    if (v == TERN__JID_ASCII_OK && strcmp(fast, slow) != 0)
        fail_msg("%s \"%s\": fast gives \"%s\", slow \"%s\"", part_names[part], escaped(in, len),
                 fast, slow);
    if (v == TERN__JID_ASCII_BAD && rc == 0)
        fail_msg("%s \"%s\": fast refuses, slow accepts as \"%s\"", part_names[part],
                 escaped(in, len), slow);
    if (v != TERN__JID_ASCII_OK)
        assert_null(fast);

    if (!memchr(in, '\0', len)) {
        char *z = malloc(len + 1), *pub = NULL;
        memcpy(z, in, len);
        z[len] = '\0';
        int prc = prep_public(part, z, &pub);
        if (prc != rc || (rc == 0 && strcmp(pub, slow) != 0))
            fail_msg("%s \"%s\": public %d \"%s\", slow %d \"%s\"", part_names[part],
                     escaped(in, len), prc, pub ? pub : "", rc, slow ? slow : "");
        free(pub);
        free(z);
    }
    free(fast);
    free(slow);
    return v;
}

/* Parse s with and without the fast path; fail unless both agree part for part. */
static void check_same_parse(const char *s) {
    struct tern_jid a, b;
    int ra = tern_jid_parse(&a, s);
    int rb = tern__jid_parse_slow(&b, s);
    if (ra != rb)
        fail_msg("parse \"%s\": %d with the fast path, %d without", escaped(s, strlen(s)), ra, rb);
    if (ra == 0) {
        assert_true(tern_jid_equal(&a, &b, 0));
        assert_string_equal(a.domain, b.domain);
    }
    tern_jid_free(&a);
    tern_jid_free(&b);
}

/* Every ASCII byte, alone and at the start, middle and end of a valid part. */
static void test_ascii_every_byte(void **state) {
    (void)state;
    /* Contexts that are valid around the byte; '%' marks where it goes. */
    static const char *const contexts[3][6] = {
        {"%", "%juliet", "jul%iet", "juliet%", "J%J", NULL},
        {"%", "%xample.com", "exa%mple.com", "example.co%", "example.com%", "a.%.b"},
        {"%", "%Balcony", "Bal%cony", "Balcony%", "a b%", NULL},
    };
    char buf[64];

    for (int part = 0; part < 3; part++) {
        for (int c = 0; c < 0x80; c++) {
            for (int k = 0; k < 6 && contexts[part][k]; k++) {
                const char *ctx = contexts[part][k];
                size_t n = 0;
                for (const char *p = ctx; *p; p++)
                    buf[n++] = *p == '%' ? (char)c : *p;
                enum tern__jid_ascii v = check_same((enum tern__jid_part)part, buf, n);
                /* Pure ASCII: Nodeprep and Resourceprep are always the fast path's. */
                if (part != TERN__JID_DOMAIN && v == TERN__JID_ASCII_UNSURE)
                    fail_msg("%s \"%s\" left to libidn", part_names[part], escaped(buf, n));
                /* A letter or digit in any of these places makes an LDH domain. */
                int alnum =
                    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (part == TERN__JID_DOMAIN && alnum && v != TERN__JID_ASCII_OK)
                    fail_msg("domain \"%s\" left to libidn2", escaped(buf, n));
            }
        }
    }

    /* The same bytes in whole JIDs, where '/' and '@' move the part boundaries. */
    for (int c = 1; c < 0x80; c++) {
        static const char *const jids[] = {"%@example.com",    "u%@example.com/r",
                                           "u@ex%mple.com/r",  "u@example.com%/r",
                                           "u@example.com/r%", "%"};
        for (size_t k = 0; k < sizeof jids / sizeof *jids; k++) {
            size_t n = 0;
            for (const char *p = jids[k]; *p; p++)
                buf[n++] = *p == '%' ? (char)c : *p;
            buf[n] = '\0';
            check_same_parse(buf);
        }
    }
}

/* xorshift64*: the same sequence on every platform, unlike rand(). */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/*
 * A random ASCII string of len bytes into buf, in one of four styles so that
 * every length gives valid and invalid strings: any byte 0x00..0x7f; letters
 * and digits with the separators and edge cases mixed in; letters and digits
 * only; or letters and digits with one byte 0x00..0x7f at a random place.
 */
static void random_ascii(uint64_t *seed, char *buf, size_t len) {
    static const char alnum[] = "abcdefxyzABCDEFXYZ0123456789";
    static const char mixed[] = "abcdefxyzABCDEFXYZ0123456789"
                                "--..._ @/<>&\"':\t\x7f";
    int style = (int)(rng_next(seed) % 4);
    for (size_t i = 0; i < len; i++) {
        uint64_t r = rng_next(seed);
        if (style == 0)
            buf[i] = (char)(r % 0x80);
        else if (style == 1)
            buf[i] = mixed[r % (sizeof mixed - 1)];
        else
            buf[i] = alnum[r % (sizeof alnum - 1)];
    }
    if (style == 3 && len > 0)
        buf[rng_next(seed) % len] = (char)(rng_next(seed) % 0x80);
}

/* A domain-like string: labels of random lengths around the 63 limit. */
static size_t random_domain(uint64_t *seed, char *buf, size_t max) {
    static const char ldh[] = "abcxyzABCXYZ0189-";
    size_t n = 0;
    int labels = 1 + (int)(rng_next(seed) % 3);
    for (int l = 0; l < labels; l++) {
        size_t want =
            (size_t)(rng_next(seed) % 4 == 0 ? 60 + rng_next(seed) % 6 : 1 + rng_next(seed) % 8);
        for (size_t i = 0; i < want && n < max; i++)
            buf[n++] = ldh[rng_next(seed) % (sizeof ldh - 1)];
        if (l + 1 < labels && n < max)
            buf[n++] = '.';
    }
    if (rng_next(seed) % 8 == 0 && n < max)
        buf[n++] = '.';
    return n;
}

static void test_ascii_random(void **state) {
    (void)state;
    uint64_t seed = 0x7465726e6a696421ULL; /* fixed: a failure can be replayed */
    char buf[80];
    int verdicts[3][3] = {{0}}; /* [part][verdict] */

    for (int i = 0; i < 3000; i++) {
        for (int part = 0; part < 3; part++) {
            /* Every length 0..70 many times over, 63/64 (DNS label) among them. */
            size_t len = (size_t)i % 71;
            if (part == TERN__JID_DOMAIN && i % 2 == 0)
                len = random_domain(&seed, buf, 70);
            else
                random_ascii(&seed, buf, len);
            enum tern__jid_ascii v = check_same((enum tern__jid_part)part, buf, len);
            verdicts[part][v]++;
        }
    }
    /* The comparison proves nothing unless the fast path answered often, both
     * ways; the domain path never refuses, it leaves refusals to libidn2. */
    for (int part = 0; part < 3; part++) {
        int *n = verdicts[part];
        int second = part == TERN__JID_DOMAIN ? n[TERN__JID_ASCII_UNSURE] : n[TERN__JID_ASCII_BAD];
        if (n[TERN__JID_ASCII_OK] < 300 || second < 300)
            fail_msg("%s: fast path accepted %d, refused %d, left %d", part_names[part],
                     n[TERN__JID_ASCII_OK], n[TERN__JID_ASCII_BAD], n[TERN__JID_ASCII_UNSURE]);
    }

    /* Whole JIDs assembled from random parts, through tern_jid_parse. */
    for (int i = 0; i < 2000; i++) {
        char jid[3 * 80];
        size_t n = 0;
        size_t llen = (size_t)(rng_next(&seed) % 12);
        random_ascii(&seed, jid, llen);
        n = llen;
        if (rng_next(&seed) % 4 != 0)
            jid[n++] = '@';
        n += random_domain(&seed, jid + n, 70);
        if (rng_next(&seed) % 4 != 0) {
            jid[n++] = '/';
            size_t rlen = (size_t)(rng_next(&seed) % 12);
            random_ascii(&seed, jid + n, rlen);
            n += rlen;
        }
        jid[n] = '\0';
        /* An embedded NUL just ends the string early; that is still a JID to check. */
        check_same_parse(jid);
    }
}

/* Lengths at the limits: 1023 per part, 63 per label, 253 per domain. */
static void test_ascii_limits(void **state) {
    (void)state;
    char *s = malloc(1100);

    for (size_t len = 1020; len <= 1026; len++) {
        memset(s, 'A', len);
        enum tern__jid_ascii v = check_same(TERN__JID_LOCAL, s, len);
        assert_int_equal(v, len <= 1023 ? TERN__JID_ASCII_OK : TERN__JID_ASCII_BAD);
        v = check_same(TERN__JID_RESOURCE, s, len);
        assert_int_equal(v, len <= 1023 ? TERN__JID_ASCII_OK : TERN__JID_ASCII_BAD);
        check_same(TERN__JID_DOMAIN, s, len);
    }

    /* Labels of 63 and 64 characters, alone and in a longer name. */
    for (size_t label = 62; label <= 65; label++) {
        memset(s, 'd', label);
        memcpy(s + label, ".example.", 9);
        enum tern__jid_ascii v = check_same(TERN__JID_DOMAIN, s, label);
        assert_int_equal(v, label <= 63 ? TERN__JID_ASCII_OK : TERN__JID_ASCII_UNSURE);
        check_same(TERN__JID_DOMAIN, s, label + 8);
        check_same(TERN__JID_DOMAIN, s, label + 9);
    }

    /* Whole names from 240 to 260 characters, with and without the trailing dot. */
    for (size_t len = 240; len <= 260; len++) {
        for (size_t i = 0; i < len; i++)
            s[i] = i % 50 == 49 ? '.' : (char)('a' + i % 26);
        if (s[len - 1] == '.')
            continue;
        enum tern__jid_ascii v = check_same(TERN__JID_DOMAIN, s, len);
        assert_int_equal(v, len <= 253 ? TERN__JID_ASCII_OK : TERN__JID_ASCII_UNSURE);
        s[len] = '.';
        v = check_same(TERN__JID_DOMAIN, s, len + 1);
        assert_int_equal(v, len <= 253 ? TERN__JID_ASCII_OK : TERN__JID_ASCII_UNSURE);
    }
    free(s);
}

/* The cases the fast path must leave alone, and the typical ones it must take. */
static void test_ascii_edges(void **state) {
    (void)state;
    static const struct {
        enum tern__jid_part part;
        const char *in;
        enum tern__jid_ascii want;
    } cases[] = {
        {TERN__JID_LOCAL, "user123", TERN__JID_ASCII_OK},
        {TERN__JID_LOCAL, "Romeo.Montague+tag", TERN__JID_ASCII_OK},
        {TERN__JID_DOMAIN, "localhost", TERN__JID_ASCII_OK},
        {TERN__JID_DOMAIN, "Chat.Example.COM.", TERN__JID_ASCII_OK},
        {TERN__JID_DOMAIN, "a-b.c-d", TERN__JID_ASCII_OK},
        {TERN__JID_DOMAIN, "192.0.2.1", TERN__JID_ASCII_OK},
        {TERN__JID_RESOURCE, "res-abc", TERN__JID_ASCII_OK},
        {TERN__JID_RESOURCE, " ~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./", TERN__JID_ASCII_OK},
        {TERN__JID_LOCAL, "a b", TERN__JID_ASCII_BAD},
        {TERN__JID_LOCAL, "", TERN__JID_ASCII_BAD},
        {TERN__JID_RESOURCE, "a\x7f", TERN__JID_ASCII_BAD},
        /* libidn2's to judge: A-labels, "--" in third and fourth place, '_', IP literals. */
        {TERN__JID_DOMAIN, "xn--bcher-kva.example", TERN__JID_ASCII_UNSURE},
        {TERN__JID_DOMAIN, "XN--BCHER-KVA.example", TERN__JID_ASCII_UNSURE},
        {TERN__JID_DOMAIN, "ab--cd.example", TERN__JID_ASCII_UNSURE},
        {TERN__JID_DOMAIN, "_xmpp.example", TERN__JID_ASCII_UNSURE},
        {TERN__JID_DOMAIN, "[::1]", TERN__JID_ASCII_UNSURE},
        {TERN__JID_DOMAIN, "-a.example", TERN__JID_ASCII_UNSURE},
        {TERN__JID_DOMAIN, ".", TERN__JID_ASCII_UNSURE},
        /* Any non-ASCII byte: libidn's, even after a prohibited character. */
        {TERN__JID_LOCAL, "a b\xc3\xa9", TERN__JID_ASCII_UNSURE},
        {TERN__JID_RESOURCE, "\x01\xc3\xa9", TERN__JID_ASCII_UNSURE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        enum tern__jid_ascii v = check_same(cases[i].part, cases[i].in, strlen(cases[i].in));
        if (v != cases[i].want)
            fail_msg("%s \"%s\": verdict %d, wanted %d", part_names[cases[i].part], cases[i].in, v,
                     cases[i].want);
    }

    /* Why non-ASCII is never the fast path's: NFKC composes '<' and U+0338 into
     * U+226E, so the '<' the fast path would refuse is gone before the check. */
    expect_jid("a<\xcc\xb8"
               "b@example.com",
               "a\xe2\x89\xae"
               "b",
               "example.com", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_resource_separators),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_trailing_dot),
        cmocka_unit_test(test_ip_literals),
        cmocka_unit_test(test_empty_parts),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_forbidden_local),
        cmocka_unit_test(test_bad_domain_chars),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_idn_domain),
        cmocka_unit_test(test_prep_resource),
        cmocka_unit_test(test_printers),
        cmocka_unit_test(test_equal_and_copy),
        cmocka_unit_test(test_ascii_every_byte),
        cmocka_unit_test(test_ascii_random),
        cmocka_unit_test(test_ascii_limits),
        cmocka_unit_test(test_ascii_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
