/* Tests for src/xmpp/utf8.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "xmpp/utf8.h"

static int check(const char *s) {
    return tern_utf8_check(s, strlen(s));
}

static void test_valid(void **state) {
    (void)state;
    assert_int_equal(check(""), 0);
    assert_int_equal(check("plain ascii"), 0);
    assert_int_equal(check("\xc3\xa4lice"), 0);     /* U+00E4 */
    assert_int_equal(check("\xe2\x82\xac"), 0);     /* U+20AC */
    assert_int_equal(check("\xed\x9f\xbf"), 0);     /* U+D7FF, last before surrogates */
    assert_int_equal(check("\xee\x80\x80"), 0);     /* U+E000, first after */
    assert_int_equal(check("\xf0\x9f\x93\xb1"), 0); /* U+1F4F1 */
    assert_int_equal(check("\xf4\x8f\xbf\xbf"), 0); /* U+10FFFF */
}

static void test_invalid(void **state) {
    (void)state;
    assert_int_equal(check("\x80"), TERN_E_INVAL);             /* lone continuation */
    assert_int_equal(check("\xc3"), TERN_E_INVAL);             /* truncated */
    assert_int_equal(check("a\xe2\x82"), TERN_E_INVAL);        /* truncated */
    assert_int_equal(check("\xc0\xaf"), TERN_E_INVAL);         /* overlong '/' */
    assert_int_equal(check("\xc1\xbf"), TERN_E_INVAL);         /* overlong */
    assert_int_equal(check("\xe0\x80\xaf"), TERN_E_INVAL);     /* overlong */
    assert_int_equal(check("\xf0\x80\x80\xaf"), TERN_E_INVAL); /* overlong */
    assert_int_equal(check("\xed\xa0\x80"), TERN_E_INVAL);     /* U+D800 */
    assert_int_equal(check("\xf4\x90\x80\x80"), TERN_E_INVAL); /* U+110000 */
    assert_int_equal(check("\xf5\x80\x80\x80"), TERN_E_INVAL);
    assert_int_equal(check("\xff"), TERN_E_INVAL);
    assert_int_equal(check("\xc3\x28"), TERN_E_INVAL); /* bad continuation */
    assert_int_equal(tern_utf8_check("a\0b", 3), TERN_E_INVAL);
    /* The length bounds the check: a truncated sequence cut by len. */
    assert_int_equal(tern_utf8_check("\xc3\xa4", 1), TERN_E_INVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
