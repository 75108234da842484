/* Unit tests for bench/loadgen/pace.c: schedule arithmetic, bursts, limits, no drift. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pace.h"

#define MS 1000000ull
#define S  1000000000ull

static void target_is_floor_of_rate_times_time(void **state) {
    (void)state;
    struct tern_bench_pace p;
    tern_bench_pace_init(&p, 1000, 5 * S, UINT64_MAX, 1000000);
    assert_int_equal(tern_bench_pace_target(&p, 0), 0); /* before t0 */
    assert_int_equal(tern_bench_pace_target(&p, 5 * S), 0);
    assert_int_equal(tern_bench_pace_target(&p, 5 * S + MS - 1), 0);
    assert_int_equal(tern_bench_pace_target(&p, 5 * S + MS), 1);
    assert_int_equal(tern_bench_pace_target(&p, 6 * S), 1000);
    assert_int_equal(tern_bench_pace_target(&p, 6 * S + 500 * MS), 1500);
    /* a rate that does not divide 1e9 */
    tern_bench_pace_init(&p, 3, 0, UINT64_MAX, 100);
    assert_int_equal(tern_bench_pace_target(&p, 333333333), 0);
    assert_int_equal(tern_bench_pace_target(&p, 333333334), 1);
    assert_int_equal(tern_bench_pace_target(&p, S), 3);
}

static void no_overflow(void **state) {
    (void)state;
    struct tern_bench_pace p;
    /* 10 million/s for 11.5 days: rate * ns would overflow 64 bits by far */
    tern_bench_pace_init(&p, 10000000, 0, UINT64_MAX, 1);
    assert_true(tern_bench_pace_target(&p, 1000000 * S) == 10000000ull * 1000000ull);
    assert_true(tern_bench_pace_target(&p, 1000000 * S + 999999999) ==
                10000000ull * 1000000ull + 9999999ull);
}

static void take_counts_what_is_due(void **state) {
    (void)state;
    struct tern_bench_pace p;
    tern_bench_pace_init(&p, 1000, 0, UINT64_MAX, 1000);
    assert_int_equal(tern_bench_pace_take(&p, 5 * MS), 5);
    assert_int_equal(tern_bench_pace_take(&p, 5 * MS), 0);
    assert_int_equal(tern_bench_pace_take(&p, 10 * MS + MS / 2), 5);
    assert_int_equal(p.issued, 10);
}

static void burst_is_capped_but_debt_kept(void **state) {
    (void)state;
    struct tern_bench_pace p;
    tern_bench_pace_init(&p, 1000000, 0, UINT64_MAX, 100);
    assert_int_equal(tern_bench_pace_take(&p, S), 100);
    assert_int_equal(tern_bench_pace_take(&p, S), 100);
    assert_int_equal(p.issued, 200);
    /* a zero burst or rate is treated as 1 rather than stalling or dividing by 0 */
    tern_bench_pace_init(&p, 0, 0, UINT64_MAX, 0);
    assert_int_equal(p.rate, 1);
    assert_int_equal(tern_bench_pace_take(&p, 10 * S), 1);
}

static void limit_is_never_passed(void **state) {
    (void)state;
    struct tern_bench_pace p;
    tern_bench_pace_init(&p, 1000, 0, 10, 1000);
    assert_int_equal(tern_bench_pace_take(&p, 5 * MS), 5);
    assert_int_equal(tern_bench_pace_take(&p, S), 5);
    assert_int_equal(tern_bench_pace_take(&p, 100 * S), 0);
    assert_int_equal(p.issued, 10);
}

static void next_is_exactly_when_due(void **state) {
    (void)state;
    uint64_t rates[] = {1, 3, 7, 1000, 12345, 999999937, 1000000000, 3000000000ull};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        struct tern_bench_pace p;
        tern_bench_pace_init(&p, rates[r], 7 * S, UINT64_MAX, UINT64_MAX);
        for (uint64_t issued = 0; issued < 5000; issued += 1 + issued / 3) {
            p.issued = issued;
            uint64_t next = tern_bench_pace_next_ns(&p);
            assert_true(tern_bench_pace_target(&p, next) >= issued + 1);
            assert_true(tern_bench_pace_target(&p, next - 1) < issued + 1);
        }
    }
}

static void no_drift_over_long_runs(void **state) {
    (void)state;
    struct tern_bench_pace p;
    tern_bench_pace_init(&p, 12345, 0, UINT64_MAX, 1000000);
    uint64_t total = 0;
    /* ticks every 1 ms with 0-0.9 ms of jitter, for 10 s */
    for (uint64_t t = MS; t <= 10 * S; t += MS) {
        uint64_t jitter = (t / MS * 7919) % 10 * (MS / 10);
        total += tern_bench_pace_take(&p, t - (t == 10 * S ? 0 : jitter));
    }
    assert_int_equal(total, 123450);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(target_is_floor_of_rate_times_time),
        cmocka_unit_test(no_overflow),
        cmocka_unit_test(take_counts_what_is_due),
        cmocka_unit_test(burst_is_capped_but_debt_kept),
        cmocka_unit_test(limit_is_never_passed),
        cmocka_unit_test(next_is_exactly_when_due),
        cmocka_unit_test(no_drift_over_long_runs),
    };
    return cmocka_run_group_tests_name("bench/pace", tests, NULL, NULL);
}
