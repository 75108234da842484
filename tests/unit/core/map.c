/* Unit tests for src/core/map.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/map.h"

static void test_put_get_del(void **state) {
    struct tern_map m;
    tern_map_init(&m);
    int a = 1, b = 2;
    assert_null(tern_map_gets(&m, "x"));
    assert_null(tern_map_puts(&m, "x", &a));
    assert_ptr_equal(tern_map_gets(&m, "x"), &a);
    assert_ptr_equal(tern_map_puts(&m, "x", &b), &a); /* replace returns old */
    assert_ptr_equal(tern_map_gets(&m, "x"), &b);
    assert_int_equal(m.count, 1);
    assert_ptr_equal(tern_map_dels(&m, "x"), &b);
    assert_null(tern_map_dels(&m, "x"));
    assert_int_equal(m.count, 0);
    tern_map_free(&m);
}

static void count_fn(const void *k, size_t kl, void *v, void *ud) {
    (*(size_t *)ud) += (size_t)(uintptr_t)v;
}

static void test_many_keys_and_binary_keys(void **state) {
    struct tern_map m;
    tern_map_init(&m);
    char key[32];
    for (uintptr_t i = 1; i <= 5000; i++) {
        snprintf(key, sizeof key, "user%lu@localhost", (unsigned long)i);
        assert_null(tern_map_puts(&m, key, (void *)i));
    }
    assert_int_equal(m.count, 5000);
    for (uintptr_t i = 1; i <= 5000; i++) {
        snprintf(key, sizeof key, "user%lu@localhost", (unsigned long)i);
        assert_ptr_equal(tern_map_gets(&m, key), (void *)i);
    }
    size_t sum = 0;
    tern_map_each(&m, count_fn, &sum);
    assert_int_equal(sum, 5000u * 5001u / 2);
    /* keys may contain NUL bytes */
    uint64_t k1 = 1, k2 = 1ULL << 40;
    tern_map_put(&m, &k1, sizeof k1, (void *)1);
    tern_map_put(&m, &k2, sizeof k2, (void *)2);
    assert_ptr_equal(tern_map_get(&m, &k1, sizeof k1), (void *)1);
    assert_ptr_equal(tern_map_get(&m, &k2, sizeof k2), (void *)2);
    tern_map_free(&m);
    assert_int_equal(m.count, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_many_keys_and_binary_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
