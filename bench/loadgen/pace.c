/* Open-loop pacing; see pace.h. */
#include "pace.h"

#define NS_PER_S 1000000000ull

void tern_bench_pace_init(struct tern_bench_pace *p, uint64_t rate, uint64_t t0_ns, uint64_t limit,
                          uint64_t max_burst) {
    p->rate = rate ? rate : 1;
    p->t0_ns = t0_ns;
    p->issued = 0;
    p->limit = limit;
    p->max_burst = max_burst ? max_burst : 1;
}

uint64_t tern_bench_pace_target(const struct tern_bench_pace *p, uint64_t now_ns) {
    if (now_ns <= p->t0_ns)
        return 0;
    uint64_t e = now_ns - p->t0_ns;
    /* rate * e / 1e9 split into whole seconds and the rest, so that neither
     * product overflows for any rate below 1.8e10 messages per second. */
    return (e / NS_PER_S) * p->rate + (e % NS_PER_S) * p->rate / NS_PER_S;
}

uint64_t tern_bench_pace_take(struct tern_bench_pace *p, uint64_t now_ns) {
    uint64_t target = tern_bench_pace_target(p, now_ns);
    if (target > p->limit)
        target = p->limit;
    if (target <= p->issued)
        return 0;
    uint64_t n = target - p->issued;
    if (n > p->max_burst)
        n = p->max_burst;
    p->issued += n;
    return n;
}

uint64_t tern_bench_pace_next_ns(const struct tern_bench_pace *p) {
    /* Smallest e with floor(rate * e / 1e9) >= issued + 1, i.e.
     * e = ceil((issued + 1) * 1e9 / rate), again split to avoid overflow. */
    uint64_t k = p->issued + 1;
    uint64_t whole = k / p->rate, rest = k % p->rate;
    uint64_t e = whole * NS_PER_S + (rest * NS_PER_S + p->rate - 1) / p->rate;
    return p->t0_ns + e;
}
