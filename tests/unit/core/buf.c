/* Unit tests for src/core/buf.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"

static void test_append_and_ceiling(void **state) {
    struct tern_buf b;
    tern_buf_init(&b, 10);
    assert_int_equal(tern_buf_adds(&b, "hello"), 0);
    assert_int_equal(tern_buf_add(&b, "world", 5), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    /* one byte over the ceiling fails and changes nothing */
    assert_int_equal(tern_buf_add(&b, "!", 1), TERN_E_LIMIT);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_true(b.cap <= 11);
    tern_buf_free(&b);
    assert_null(b.data);
}

static void test_printf_and_consume(void **state) {
    struct tern_buf b;
    tern_buf_init(&b, 1000);
    assert_int_equal(tern_buf_printf(&b, "%s=%d", "n", 42), 0);
    assert_string_equal(b.data, "n=42");
    tern_buf_consume(&b, 2);
    assert_string_equal(b.data, "42");
    tern_buf_consume(&b, 99);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    struct tern_buf small;
    tern_buf_init(&small, 4);
    assert_int_equal(tern_buf_printf(&small, "%d", 123456), TERN_E_LIMIT);
    assert_int_equal(small.len, 0);
    tern_buf_free(&small);
    tern_buf_free(&b);
}

static void test_take(void **state) {
    struct tern_buf b;
    tern_buf_init(&b, 100);
    assert_null(tern_buf_take(&b));
    tern_buf_adds(&b, "abc");
    char *s = tern_buf_take(&b);
    assert_string_equal(s, "abc");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
}

static void test_large_growth(void **state) {
    struct tern_buf b;
    tern_buf_init(&b, 1 << 20);
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 1048; i++)
        assert_int_equal(tern_buf_add(&b, chunk, sizeof chunk), 0);
    assert_int_equal(b.len, 1048000);
    assert_int_equal(tern_buf_add(&b, chunk, sizeof chunk), TERN_E_LIMIT);
    tern_buf_free(&b);
}

/* A buffer without a ceiling (max SIZE_MAX): max + 1 must not wrap to a
 * zero-byte allocation. */
static void test_no_ceiling(void **state) {
    struct tern_buf b;
    tern_buf_init(&b, SIZE_MAX);
    char chunk[300];
    memset(chunk, 'y', sizeof chunk);
    for (int i = 0; i < 10; i++)
        assert_int_equal(tern_buf_add(&b, chunk, sizeof chunk), 0);
    assert_int_equal(b.len, 3000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[2999], 'y');
    tern_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_ceiling),
        cmocka_unit_test(test_printf_and_consume),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_large_growth),
        cmocka_unit_test(test_no_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
