/* Tests for src/xmpp/jid.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "xmpp/jid.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
