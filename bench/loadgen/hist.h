/*
 * Latency histogram with bounded memory: log-linear buckets, exact below 128
 * and within 1/64 (1.6 %) of the true value above, for any uint64_t. One
 * histogram is ~30 KiB whatever the number of samples.
 */
#ifndef TERN_BENCH_HIST_H
#define TERN_BENCH_HIST_H

#include <stdint.h>

#define TERN_BENCH_HIST_SUB_BITS 6 /* 2^6 = 64 sub-buckets per power of two */
#define TERN_BENCH_HIST_BUCKETS                                                                    \
    ((63 - TERN_BENCH_HIST_SUB_BITS) * (1 << TERN_BENCH_HIST_SUB_BITS) + 128)

/** Plain data: zero-initialise (or call reset) before use. */
struct tern_bench_hist {
    uint64_t count;                            /* samples recorded */
    uint64_t min;                              /* smallest sample (valid if count) */
    uint64_t max;                              /* largest sample (valid if count) */
    double sum;                                /* for the mean */
    uint64_t buckets[TERN_BENCH_HIST_BUCKETS]; /* samples per bucket */
};

void tern_bench_hist_reset(struct tern_bench_hist *h);

/** Bucket index of value v (exposed for the tests). */
unsigned tern_bench_hist_index(uint64_t v);

/** Largest value that falls in bucket idx. */
uint64_t tern_bench_hist_upper(unsigned idx);

void tern_bench_hist_add(struct tern_bench_hist *h, uint64_t v);

/**
 * Nearest-rank percentile: the smallest bucket bound b such that at least
 * p percent of samples are <= b, clamped to [min, max]; the first and last
 * ranks are the exact min and max. p in (0, 100];
 * returns 0 for an empty histogram.
 */
uint64_t tern_bench_hist_percentile(const struct tern_bench_hist *h, double p);

/** Add every sample of src to dst. */
void tern_bench_hist_merge(struct tern_bench_hist *dst, const struct tern_bench_hist *src);

#endif
