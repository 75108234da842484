/* Tests for src/xmpp/base64.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "xmpp/scram.h"

/* RFC 4648 §10 test vectors. */
static const char *const vectors[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_encode_vectors(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char *enc = tern_base64_encode((const uint8_t *)vectors[i][0], strlen(vectors[i][0]));
        assert_non_null(enc);
        assert_string_equal(enc, vectors[i][1]);
        free(enc);
    }
}

static void test_decode_vectors(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        uint8_t *dec = NULL;
        size_t len = 99;
        assert_int_equal(tern_base64_decode(vectors[i][1], strlen(vectors[i][1]), &dec, &len), 0);
        assert_non_null(dec);
        assert_int_equal(len, strlen(vectors[i][0]));
        assert_memory_equal(dec, vectors[i][0], len);
        assert_int_equal(dec[len], '\0');
        free(dec);
    }
}

static void test_roundtrip_all_bytes(void **state) {
    (void)state;
    uint8_t bytes[256];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(255 - i);
    for (size_t n = 0; n <= sizeof bytes; n++) {
        char *enc = tern_base64_encode(bytes, n);
        assert_int_equal(strlen(enc), (n + 2) / 3 * 4);
        uint8_t *dec = NULL;
        size_t len = 0;
        assert_int_equal(tern_base64_decode(enc, strlen(enc), &dec, &len), 0);
        assert_int_equal(len, n);
        if (n)
            assert_memory_equal(dec, bytes, n);
        free(dec);
        free(enc);
    }
}

static void test_decode_rejects(void **state) {
    (void)state;
    static const char *const bad[] = {
        "Zg",       /* padding missing */
        "Zg=",      /* length not a multiple of 4 */
        "Z===",     /* too much padding */
        "====",     /* nothing but padding */
        "=Zg=",     /* padding first */
        "Zg==Zg==", /* padding in the middle */
        "Zm9v\n",   /* whitespace */
        "Zm 9v",    /* whitespace */
        " Zm9v",    /* whitespace */
        "Zm9v*A==", /* outside the alphabet */
        "Zm-_",     /* URL-safe alphabet */
        "Zh==",     /* non-zero bits under the padding */
        "Zm9=",     /* non-zero bits under the padding */
        "Zm=v",     /* '=' followed by data */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *dec = (uint8_t *)"sentinel";
        size_t len = 7;
        assert_int_equal(tern_base64_decode(bad[i], strlen(bad[i]), &dec, &len), TERN_E_INVAL);
        assert_null(dec);
        assert_int_equal(len, 0);
    }
    /* A NUL inside the counted length is not in the alphabet either. */
    uint8_t *dec = NULL;
    size_t len = 0;
    assert_int_equal(tern_base64_decode("Zm\0v", 4, &dec, &len), TERN_E_INVAL);
}

static void test_decode_uses_len(void **state) {
    (void)state;
    uint8_t *dec = NULL;
    size_t len = 0;
    /* Only the first four bytes count. */
    assert_int_equal(tern_base64_decode("Zm9vYmFy", 4, &dec, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(dec, "foo", 3);
    free(dec);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_vectors),      cmocka_unit_test(test_decode_vectors),
        cmocka_unit_test(test_roundtrip_all_bytes), cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_decode_uses_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
