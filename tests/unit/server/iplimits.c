/* Unit tests for src/server/iplimits.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "server/iplimits.h"

static const struct tern_iplimits_conf conf = {
    .max_conns_per_ip = 2,
    .max_failures = 5,
    .window_ms = 30000,
    .ban_ms = 60000,
};

static void test_connection_limit_per_address(void **state) {
    struct tern_iplimits *l = tern_iplimits_new(&conf);
    assert_int_equal(tern_iplimits_conn_open(l, "10.0.0.1"), 0);
    assert_int_equal(tern_iplimits_conn_open(l, "10.0.0.1"), 0);
    assert_int_equal(tern_iplimits_conn_open(l, "10.0.0.1"), TERN_E_LIMIT);
    assert_int_equal(tern_iplimits_conn_open(l, "::1"), 0); /* other address unaffected */
    tern_iplimits_conn_close(l, "10.0.0.1");
    assert_int_equal(tern_iplimits_conn_open(l, "10.0.0.1"), 0);
    tern_iplimits_free(&l);
    assert_null(l);
}

static void test_ban_after_failures_in_window(void **state) {
    struct tern_iplimits *l = tern_iplimits_new(&conf);
    uint64_t t = 1000000;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tern_iplimits_auth_check(l, "1.2.3.4", t), 0);
        assert_int_equal(tern_iplimits_auth_failed(l, "1.2.3.4", t + (uint64_t)i * 1000), 0);
    }
    assert_int_equal(tern_iplimits_auth_failed(l, "1.2.3.4", t + 5000), 1); /* fifth: ban */
    assert_int_equal(tern_iplimits_auth_check(l, "1.2.3.4", t + 5001), TERN_E_LIMIT);
    assert_int_equal(tern_iplimits_auth_check(l, "1.2.3.5", t + 5001), 0);
    assert_int_equal(tern_iplimits_auth_check(l, "1.2.3.4", t + 5000 + 59999), TERN_E_LIMIT);
    assert_int_equal(tern_iplimits_auth_check(l, "1.2.3.4", t + 5000 + 60000), 0); /* ban over */
    /* and the count starts again */
    assert_int_equal(tern_iplimits_auth_failed(l, "1.2.3.4", t + 70000), 0);
    tern_iplimits_free(&l);
}

static void test_failures_outside_window_do_not_add_up(void **state) {
    struct tern_iplimits *l = tern_iplimits_new(&conf);
    uint64_t t = 0;
    for (int i = 0; i < 12; i++) {
        /* one failure every 10 s: at most 3 in any 30 s window */
        assert_int_equal(tern_iplimits_auth_failed(l, "1.2.3.4", t), 0);
        t += 10000;
    }
    assert_int_equal(tern_iplimits_auth_check(l, "1.2.3.4", t), 0);
    tern_iplimits_free(&l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_limit_per_address),
        cmocka_unit_test(test_ban_after_failures_in_window),
        cmocka_unit_test(test_failures_outside_window_do_not_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
