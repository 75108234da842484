/* Unit tests for bench/loadgen/component.c: the XEP-0114 handshake digest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "component.h"

static void handshake_digest(void **state) {
    (void)state;
    char out[41];
    /* XEP-0114 §3: hex(SHA-1(stream id || secret)), lower case. */
    tern_bench_comp_digest("3BF96D32", "sesame", out);
    assert_string_equal(out, "7a98dc4c9e92493d7fd66a25364c862637789c45");
    /* SHA-1 of the empty string (FIPS 180 test vector). */
    tern_bench_comp_digest("", "", out);
    assert_string_equal(out, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    /* the order matters: id first, then secret */
    tern_bench_comp_digest("sesame", "3BF96D32", out);
    assert_string_not_equal(out, "7a98dc4c9e92493d7fd66a25364c862637789c45");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_digest),
    };
    return cmocka_run_group_tests_name("bench/component", tests, NULL, NULL);
}
