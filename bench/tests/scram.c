/* Unit tests for bench/loadgen/scram.c: RFC 5802 and RFC 7677 vectors, refusals, cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "scram.h"

/* RFC 5802 §5 (SCRAM-SHA-1) */
static const char sha1_nonce[] = "fyko+d2lbbFgONRv9qkxdawL";
static const char sha1_server_first[] =
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
static const char sha1_client_final[] =
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
static const char sha1_server_final[] = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

/* RFC 7677 §3 (SCRAM-SHA-256) */
static const char sha256_nonce[] = "rOprNGfwEbeRWgbNEkqO";
static const char sha256_server_first[] =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char sha256_client_final[] =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char sha256_server_final[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

static void run_vector(enum tern_bench_scram_alg alg, const char *nonce, const char *sfirst,
                       const char *cfinal, const char *sfinal) {
    struct tern_bench_scram s;
    char out[TERN_BENCH_SCRAM_MSG_MAX];
    char want_first[128];
    snprintf(want_first, sizeof want_first, "n,,n=user,r=%s", nonce);
    int n = tern_bench_scram_start(&s, alg, "user", nonce, out, sizeof out);
    assert_int_equal(n, (int)strlen(want_first));
    assert_string_equal(out, want_first);
    n = tern_bench_scram_final(&s, "pencil", sfirst, strlen(sfirst), NULL, out, sizeof out);
    assert_int_equal(n, (int)strlen(cfinal));
    assert_string_equal(out, cfinal);
    assert_int_equal(tern_bench_scram_verify(&s, sfinal, strlen(sfinal)), 0);
}

static void rfc5802_sha1(void **state) {
    (void)state;
    run_vector(TERN_BENCH_SCRAM_SHA1, sha1_nonce, sha1_server_first, sha1_client_final,
               sha1_server_final);
}

static void rfc7677_sha256(void **state) {
    (void)state;
    run_vector(TERN_BENCH_SCRAM_SHA256, sha256_nonce, sha256_server_first, sha256_client_final,
               sha256_server_final);
}

static void names_and_lengths(void **state) {
    (void)state;
    assert_string_equal(tern_bench_scram_name(TERN_BENCH_SCRAM_SHA1), "SCRAM-SHA-1");
    assert_string_equal(tern_bench_scram_name(TERN_BENCH_SCRAM_SHA256), "SCRAM-SHA-256");
    assert_int_equal(tern_bench_scram_keylen(TERN_BENCH_SCRAM_SHA1), 20);
    assert_int_equal(tern_bench_scram_keylen(TERN_BENCH_SCRAM_SHA256), 32);
}

static int final_of(const char *server_first) {
    struct tern_bench_scram s;
    char out[TERN_BENCH_SCRAM_MSG_MAX];
    tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA1, "user", sha1_nonce, out, sizeof out);
    return tern_bench_scram_final(&s, "pencil", server_first, strlen(server_first), NULL, out,
                                  sizeof out);
}

static void refuses_bad_server_first(void **state) {
    (void)state;
    /* nonce that does not extend ours, or does not extend it at all */
    assert_int_equal(final_of("r=XXXX+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096"), -1);
    assert_int_equal(final_of("r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096"), -1);
    /* missing attributes */
    assert_int_equal(final_of("r=fyko+d2lbbFgONRv9qkxdawL3rfc,i=4096"), -1);
    assert_int_equal(final_of("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92"), -1);
    assert_int_equal(final_of("s=QSXCR+Q6sek8bf92,i=4096"), -1);
    /* iteration counts */
    assert_int_equal(final_of("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=0"), -1);
    assert_int_equal(final_of("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4x96"), -1);
    assert_int_equal(final_of("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=99999999"), -1);
    assert_int_equal(final_of("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i="), -1);
    /* salt that is not base64 */
    assert_int_equal(final_of("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSX*,i=4096"), -1);
    /* a mandatory extension we do not know (RFC 5802 §5.1 m=) */
    assert_int_equal(final_of("m=ext,r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096"),
                     -1);
    /* and the good one passes, so the refusals above are about the defects */
    assert_true(final_of(sha1_server_first) > 0);
}

static void refuses_bad_server_final(void **state) {
    (void)state;
    struct tern_bench_scram s;
    char out[TERN_BENCH_SCRAM_MSG_MAX];
    tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA1, "user", sha1_nonce, out, sizeof out);
    /* verify before final */
    assert_int_equal(tern_bench_scram_verify(&s, sha1_server_final, strlen(sha1_server_final)), -1);
    tern_bench_scram_final(&s, "pencil", sha1_server_first, strlen(sha1_server_first), NULL, out,
                           sizeof out);
    const char *bad[] = {
        "v=rmF9pqV8S7suAoZWja4dJRkFsKQ",  /* not padded base64 */
        "v=AmF9pqV8S7suAoZWja4dJRkFsKQ=", /* other signature */
        "v=rmF9pqV8S7suAoZWja4dJRkF",     /* too short */
        "e=invalid-proof",                /* server error */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tern_bench_scram_verify(&s, bad[i], strlen(bad[i])), -1);
    assert_int_equal(tern_bench_scram_verify(&s, sha1_server_final, strlen(sha1_server_final)), 0);
}

static void wrong_password_gives_other_proof(void **state) {
    (void)state;
    struct tern_bench_scram s;
    char out[TERN_BENCH_SCRAM_MSG_MAX];
    tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA1, "user", sha1_nonce, out, sizeof out);
    tern_bench_scram_final(&s, "pencils", sha1_server_first, strlen(sha1_server_first), NULL, out,
                           sizeof out);
    assert_string_not_equal(out, sha1_client_final);
    assert_int_equal(tern_bench_scram_verify(&s, sha1_server_final, strlen(sha1_server_final)), -1);
}

static void cache_is_filled_and_used(void **state) {
    (void)state;
    struct tern_bench_scram_cache cache;
    memset(&cache, 0, sizeof cache);
    struct tern_bench_scram s;
    char out[TERN_BENCH_SCRAM_MSG_MAX];
    tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA1, "user", sha1_nonce, out, sizeof out);
    tern_bench_scram_final(&s, "pencil", sha1_server_first, strlen(sha1_server_first), &cache, out,
                           sizeof out);
    assert_string_equal(out, sha1_client_final);
    assert_int_equal(cache.iterations, 4096);
    assert_int_equal(cache.salt_len, 12);

    /* A hit: the (wrong) password is not even used, the cached key is. */
    tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA1, "user", sha1_nonce, out, sizeof out);
    tern_bench_scram_final(&s, "not-pencil", sha1_server_first, strlen(sha1_server_first), &cache,
                           out, sizeof out);
    assert_string_equal(out, sha1_client_final);

    /* Other iteration count: a miss, recomputed with the given password. */
    static const char other[] =
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4097";
    tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA1, "user", sha1_nonce, out, sizeof out);
    tern_bench_scram_final(&s, "pencil", other, strlen(other), &cache, out, sizeof out);
    assert_int_equal(cache.iterations, 4097);
    assert_string_not_equal(out, sha1_client_final);

    /* Other algorithm with the same salt: a miss too. */
    tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA256, "user", sha256_nonce, out, sizeof out);
    tern_bench_scram_final(&s, "pencil", sha256_server_first, strlen(sha256_server_first), &cache,
                           out, sizeof out);
    assert_string_equal(out, sha256_client_final);
    assert_int_equal(cache.alg, TERN_BENCH_SCRAM_SHA256);
}

static void username_escaping_and_random_nonce(void **state) {
    (void)state;
    struct tern_bench_scram s;
    char out[TERN_BENCH_SCRAM_MSG_MAX];
    int n = tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA1, "a,b=c", "xyz", out, sizeof out);
    assert_true(n > 0);
    assert_string_equal(out, "n,,n=a=2Cb=3Dc,r=xyz");
    char first[TERN_BENCH_SCRAM_MSG_MAX];
    tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA1, "u", NULL, first, sizeof first);
    tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA1, "u", NULL, out, sizeof out);
    assert_int_equal(strlen(out), strlen("n,,n=u,r=") + 24);
    assert_null(strchr(out + 9, ','));
    assert_string_not_equal(first, out);
    /* no room */
    assert_int_equal(tern_bench_scram_start(&s, TERN_BENCH_SCRAM_SHA1, "user", "n", out, 8), -1);
}

static void base64(void **state) {
    (void)state;
    char enc[64];
    uint8_t dec[64];
    static const struct {
        const char *plain, *b64;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}}; /* RFC 4648 §10 */
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t len = strlen(v[i].plain);
        assert_int_equal(tern_bench_b64_encode((const uint8_t *)v[i].plain, len, enc, sizeof enc),
                         (int)strlen(v[i].b64));
        assert_string_equal(enc, v[i].b64);
        assert_int_equal(tern_bench_b64_decode(v[i].b64, strlen(v[i].b64), dec, sizeof dec),
                         (int)len);
        assert_memory_equal(dec, v[i].plain, len);
    }
    const char *bad[] = {"Zg=", "Z===", "Zg=a", "Zm9v*A==", "=Zg=", "Zg==Zg=="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tern_bench_b64_decode(bad[i], strlen(bad[i]), dec, sizeof dec), -1);
    assert_int_equal(tern_bench_b64_decode("Zm9v", 4, dec, 2), -1);
    assert_int_equal(tern_bench_b64_encode((const uint8_t *)"foo", 3, enc, 4), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc5802_sha1),
        cmocka_unit_test(rfc7677_sha256),
        cmocka_unit_test(names_and_lengths),
        cmocka_unit_test(refuses_bad_server_first),
        cmocka_unit_test(refuses_bad_server_final),
        cmocka_unit_test(wrong_password_gives_other_proof),
        cmocka_unit_test(cache_is_filled_and_used),
        cmocka_unit_test(username_escaping_and_random_nonce),
        cmocka_unit_test(base64),
    };
    return cmocka_run_group_tests_name("bench/scram", tests, NULL, NULL);
}
