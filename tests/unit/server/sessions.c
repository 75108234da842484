/* Unit tests for src/server/sessions.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "server/sessions.h"

static void test_bind_find_unbind(void **state) {
    struct tern_sessions *d = tern_sessions_new();
    struct tern_session_ref r1 = {0, 1}, r2 = {0, 2}, out, old;
    assert_int_equal(tern_sessions_bind(d, "alice@localhost", "phone", r1, &old), 0);
    assert_int_equal(tern_sessions_bind(d, "alice@localhost", "laptop", r2, &old), 0);
    assert_int_equal(tern_sessions_count(d), 2);
    assert_int_equal(tern_sessions_find(d, "alice@localhost", "phone", &out), 0);
    assert_int_equal(out.uid, 1);
    assert_int_equal(tern_sessions_find(d, "alice@localhost", "tablet", &out), TERN_E_NOTFOUND);
    assert_int_equal(tern_sessions_find(d, "bob@localhost", "phone", &out), TERN_E_NOTFOUND);

    struct tern_session_ref list[4];
    assert_int_equal(tern_sessions_list(d, "alice@localhost", list, 4), 2);
    assert_int_equal(list[0].uid, 1); /* bind order */
    assert_int_equal(list[1].uid, 2);
    assert_int_equal(tern_sessions_list(d, "alice@localhost", list, 1), 2); /* total, capped copy */

    tern_sessions_unbind(d, "alice@localhost", "phone", 1);
    assert_int_equal(tern_sessions_find(d, "alice@localhost", "phone", &out), TERN_E_NOTFOUND);
    tern_sessions_unbind(d, "alice@localhost", "laptop", 2);
    assert_int_equal(tern_sessions_count(d), 0);
    assert_int_equal(tern_sessions_list(d, "alice@localhost", list, 4), 0);
    tern_sessions_free(&d);
    assert_null(d);
}

static void test_rebind_replaces_and_reports_old(void **state) {
    struct tern_sessions *d = tern_sessions_new();
    struct tern_session_ref r1 = {0, 10}, r2 = {1, 11}, out, old = {0, 0};
    assert_int_equal(tern_sessions_bind(d, "a@x", "res", r1, &old), 0);
    assert_int_equal(tern_sessions_bind(d, "a@x", "res", r2, &old), 1);
    assert_int_equal(old.uid, 10);
    assert_int_equal(old.shard, 0);
    assert_int_equal(tern_sessions_count(d), 1);
    /* The replaced session's late unbind must not remove its successor. */
    tern_sessions_unbind(d, "a@x", "res", 10);
    assert_int_equal(tern_sessions_find(d, "a@x", "res", &out), 0);
    assert_int_equal(out.uid, 11);
    assert_int_equal(out.shard, 1);
    tern_sessions_free(&d);
}

static void test_resources_are_case_sensitive(void **state) {
    struct tern_sessions *d = tern_sessions_new();
    struct tern_session_ref r1 = {0, 1}, r2 = {0, 2}, old;
    assert_int_equal(tern_sessions_bind(d, "a@x", "Res", r1, &old), 0);
    assert_int_equal(tern_sessions_bind(d, "a@x", "res", r2, &old), 0);
    assert_int_equal(tern_sessions_count(d), 2);
    tern_sessions_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_find_unbind),
        cmocka_unit_test(test_rebind_replaces_and_reports_old),
        cmocka_unit_test(test_resources_are_case_sensitive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
