/* Unit tests for bench/loadgen/hist.c: bucket layout, percentiles, merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hist.h"

static struct tern_bench_hist h, h2; /* ~30 KiB each: not on the stack */

/* Deterministic generator for the tests (xorshift64). */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void check_value(uint64_t v) {
    unsigned i = tern_bench_hist_index(v);
    assert_true(i < TERN_BENCH_HIST_BUCKETS);
    uint64_t up = tern_bench_hist_upper(i);
    assert_true(up >= v);
    /* the promised precision: the bound is within 1/64 of the value */
    assert_true(up - v <= v / 64);
}

static void buckets_cover_everything(void **state) {
    (void)state;
    for (uint64_t v = 0; v < 100000; v++)
        check_value(v);
    for (unsigned b = 0; b < 64; b++) {
        uint64_t p = 1ull << b;
        check_value(p);
        check_value(p - 1);
        check_value(p + 1);
    }
    check_value(UINT64_MAX);
    assert_int_equal(tern_bench_hist_index(UINT64_MAX), TERN_BENCH_HIST_BUCKETS - 1);
    assert_true(tern_bench_hist_upper(TERN_BENCH_HIST_BUCKETS - 1) == UINT64_MAX);
    for (int k = 0; k < 100000; k++)
        check_value(rng() >> (rng() % 64));
}

static void buckets_are_contiguous(void **state) {
    (void)state;
    /* Bucket i ends exactly where bucket i+1 starts: no gaps, no overlaps. */
    for (unsigned i = 0; i + 1 < TERN_BENCH_HIST_BUCKETS; i++) {
        uint64_t up = tern_bench_hist_upper(i);
        assert_int_equal(tern_bench_hist_index(up), i);
        assert_int_equal(tern_bench_hist_index(up + 1), i + 1);
    }
    /* exact below 128 */
    for (unsigned v = 0; v < 128; v++)
        assert_int_equal(tern_bench_hist_upper(tern_bench_hist_index(v)), v);
}

static void percentiles_small_exact(void **state) {
    (void)state;
    tern_bench_hist_reset(&h);
    assert_int_equal(tern_bench_hist_percentile(&h, 50), 0);
    /* 1..100 in shuffled order */
    unsigned order[100];
    for (unsigned i = 0; i < 100; i++)
        order[i] = i + 1;
    for (unsigned i = 99; i > 0; i--) {
        unsigned j = (unsigned)(rng() % (i + 1));
        unsigned t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (unsigned i = 0; i < 100; i++)
        tern_bench_hist_add(&h, order[i]);
    assert_int_equal(h.count, 100);
    assert_int_equal(h.min, 1);
    assert_int_equal(h.max, 100);
    /* nearest rank: ceil(p/100 * n) */
    assert_int_equal(tern_bench_hist_percentile(&h, 50), 50);
    assert_int_equal(tern_bench_hist_percentile(&h, 99), 99);
    assert_int_equal(tern_bench_hist_percentile(&h, 99.9), 100);
    assert_int_equal(tern_bench_hist_percentile(&h, 100), 100);
    assert_int_equal(tern_bench_hist_percentile(&h, 1), 1);
    assert_int_equal(tern_bench_hist_percentile(&h, 0.5), 1);
    assert_int_equal(tern_bench_hist_percentile(&h, 50.5), 51);
}

static void percentiles_large_within_precision(void **state) {
    (void)state;
    tern_bench_hist_reset(&h);
    /* 1..1000 ms in ns */
    for (uint64_t i = 1; i <= 1000; i++)
        tern_bench_hist_add(&h, i * 1000000);
    uint64_t p50 = tern_bench_hist_percentile(&h, 50);
    uint64_t p99 = tern_bench_hist_percentile(&h, 99);
    assert_true(p50 >= 500000000 && p50 - 500000000 <= 500000000 / 64);
    assert_true(p99 >= 990000000 && p99 - 990000000 <= 990000000 / 64);
    /* the largest sample is reported exactly: bounds are clamped to max */
    assert_int_equal(tern_bench_hist_percentile(&h, 100), 1000000000);
    assert_int_equal(tern_bench_hist_percentile(&h, 0.01), 1000000);
}

static void tail_outliers(void **state) {
    (void)state;
    tern_bench_hist_reset(&h);
    for (int i = 0; i < 9990; i++)
        tern_bench_hist_add(&h, 1000000); /* 1 ms */
    for (int i = 0; i < 10; i++)
        tern_bench_hist_add(&h, 50000000); /* 50 ms */
    /* 99.9 % of 10000 is rank 9990: still 1 ms; one rank further is 50 ms */
    uint64_t p999 = tern_bench_hist_percentile(&h, 99.9);
    assert_true(p999 >= 1000000 && p999 <= 1000000 + 1000000 / 64);
    assert_int_equal(tern_bench_hist_percentile(&h, 99.91), 50000000);
    assert_int_equal(tern_bench_hist_percentile(&h, 100), 50000000);
    assert_true(h.sum == 9990.0 * 1000000 + 10.0 * 50000000);
}

static void merge_equals_adding(void **state) {
    (void)state;
    static struct tern_bench_hist all;
    tern_bench_hist_reset(&h);
    tern_bench_hist_reset(&h2);
    tern_bench_hist_reset(&all);
    for (int i = 0; i < 5000; i++) {
        uint64_t v = rng() % 100000000;
        tern_bench_hist_add(i % 3 ? &h : &h2, v);
        tern_bench_hist_add(&all, v);
    }
    tern_bench_hist_merge(&h, &h2);
    assert_int_equal(h.count, all.count);
    assert_int_equal(h.min, all.min);
    assert_int_equal(h.max, all.max);
    assert_memory_equal(h.buckets, all.buckets, sizeof h.buckets);
    double ps[] = {1, 50, 90, 99, 99.9, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        assert_int_equal(tern_bench_hist_percentile(&h, ps[i]),
                         tern_bench_hist_percentile(&all, ps[i]));
    /* merging an empty histogram changes nothing, into an empty one copies */
    tern_bench_hist_reset(&h2);
    tern_bench_hist_merge(&h, &h2);
    assert_int_equal(h.count, all.count);
    tern_bench_hist_merge(&h2, &all);
    assert_int_equal(h2.min, all.min);
    assert_int_equal(tern_bench_hist_percentile(&h2, 50), tern_bench_hist_percentile(&all, 50));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets_cover_everything),
        cmocka_unit_test(buckets_are_contiguous),
        cmocka_unit_test(percentiles_small_exact),
        cmocka_unit_test(percentiles_large_within_precision),
        cmocka_unit_test(tail_outliers),
        cmocka_unit_test(merge_equals_adding),
    };
    return cmocka_run_group_tests_name("bench/hist", tests, NULL, NULL);
}
