/* Unit tests for src/server/sm_h.h (XEP-0198 counters). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/sm_h.h"

static void test_delta_across_wrap(void **state) {
    assert_int_equal(tern_sm_h_delta(5, 3), 2);
    assert_int_equal(tern_sm_h_delta(0, UINT32_MAX), 1);
    assert_int_equal(tern_sm_h_delta(2, UINT32_MAX - 2), 5);
    assert_int_equal(tern_sm_h_delta(7, 7), 0);
}

static void test_valid_acks(void **state) {
    /* 3 unacked after acked = 10: 10..13 are fine, 14 acks too much */
    assert_true(tern_sm_h_valid(10, 10, 3));
    assert_true(tern_sm_h_valid(13, 10, 3));
    assert_false(tern_sm_h_valid(14, 10, 3));
    /* going backwards is a huge delta, refused */
    assert_false(tern_sm_h_valid(9, 10, 3));
    /* across the wrap */
    assert_true(tern_sm_h_valid(1, UINT32_MAX - 1, 3));
    assert_false(tern_sm_h_valid(2, UINT32_MAX - 1, 3));
    assert_true(tern_sm_h_valid(UINT32_MAX, UINT32_MAX - 1, 1));
}

static void test_parse(void **state) {
    uint32_t h = 1;
    assert_int_equal(tern_sm_h_parse("0", &h), 0);
    assert_int_equal(h, 0);
    assert_int_equal(tern_sm_h_parse("4294967295", &h), 0);
    assert_int_equal(h, UINT32_MAX);
    assert_int_equal(tern_sm_h_parse("4294967296", &h), -1);
    assert_int_equal(tern_sm_h_parse("-1", &h), -1);
    assert_int_equal(tern_sm_h_parse("", &h), -1);
    assert_int_equal(tern_sm_h_parse("12a", &h), -1);
    assert_int_equal(tern_sm_h_parse(NULL, &h), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delta_across_wrap),
        cmocka_unit_test(test_valid_acks),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
