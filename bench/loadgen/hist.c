/* Log-linear latency histogram; see hist.h. */
#include "hist.h"

#include <math.h>
#include <string.h>

#define SUB   (1u << TERN_BENCH_HIST_SUB_BITS) /* sub-buckets per power of two */
#define EXACT (2 * SUB)                        /* values below this have their own bucket */

void tern_bench_hist_reset(struct tern_bench_hist *h) {
    memset(h, 0, sizeof *h);
}

static unsigned log2_floor(uint64_t v) {
    return 63u - (unsigned)__builtin_clzll(v);
}

/*
 * Values below 128 map to themselves. A larger v with highest bit e keeps its
 * top 7 bits: m = v >> (e - 6) is in [64, 128), and the bucket is
 * (e - 6) * 64 + m, so each power of two gets 64 buckets that continue where
 * the previous one ended.
 */
unsigned tern_bench_hist_index(uint64_t v) {
    if (v < EXACT)
        return (unsigned)v;
    unsigned shift = log2_floor(v) - TERN_BENCH_HIST_SUB_BITS;
    return shift * SUB + (unsigned)(v >> shift);
}

uint64_t tern_bench_hist_upper(unsigned idx) {
    if (idx < EXACT)
        return idx;
    unsigned shift = idx / SUB - 1;
    uint64_t m = idx - shift * SUB; /* in [64, 128) */
    /* For the last bucket (m + 1) << shift wraps to 0 and the bound to 2^64 - 1,
     * which is right: unsigned arithmetic is modular. */
    return ((m + 1) << shift) - 1;
}

void tern_bench_hist_add(struct tern_bench_hist *h, uint64_t v) {
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (h->count == 0 || v > h->max)
        h->max = v;
    h->count++;
    h->sum += (double)v;
    h->buckets[tern_bench_hist_index(v)]++;
}

uint64_t tern_bench_hist_percentile(const struct tern_bench_hist *h, double p) {
    if (h->count == 0)
        return 0;
    if (p <= 0)
        return h->min;
    /* Nearest rank: the ceil(p/100 * n)-th smallest sample. */
    double r = ceil(p / 100.0 * (double)h->count - 1e-9);
    uint64_t rank = r < 1 ? 1 : (uint64_t)r;
    if (rank > h->count)
        rank = h->count;
    /* The extremes are known exactly; the buckets only approximate. */
    if (rank == 1)
        return h->min;
    if (rank == h->count)
        return h->max;
    uint64_t seen = 0;
    for (unsigned i = 0; i < TERN_BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t b = tern_bench_hist_upper(i);
            if (b > h->max)
                b = h->max;
            if (b < h->min)
                b = h->min;
            return b;
        }
    }
    return h->max;
}

void tern_bench_hist_merge(struct tern_bench_hist *dst, const struct tern_bench_hist *src) {
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (dst->count == 0 || src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned i = 0; i < TERN_BENCH_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}
