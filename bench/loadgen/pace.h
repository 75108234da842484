/*
 * Open-loop pacing: how many messages are due at a given time for a target
 * rate, so that the send schedule does not depend on how fast the server
 * answers. Integer arithmetic on nanoseconds; no drift over long runs.
 */
#ifndef TERN_BENCH_PACE_H
#define TERN_BENCH_PACE_H

#include <stdint.h>

/** Plain data, filled by tern_bench_pace_init(). */
struct tern_bench_pace {
    uint64_t rate;      /* messages per second; > 0 */
    uint64_t t0_ns;     /* start of the schedule */
    uint64_t issued;    /* messages handed out so far */
    uint64_t limit;     /* stop after this many; UINT64_MAX = no limit */
    uint64_t max_burst; /* most handed out by one call (bounds a catch-up burst) */
};

void tern_bench_pace_init(struct tern_bench_pace *p, uint64_t rate, uint64_t t0_ns, uint64_t limit,
                          uint64_t max_burst);

/** Messages the schedule allows by now_ns since t0: floor(rate * elapsed / 1e9), overflow-safe. */
uint64_t tern_bench_pace_target(const struct tern_bench_pace *p, uint64_t now_ns);

/**
 * Number of messages to send now: what is due and not yet issued, at most
 * max_burst and never beyond limit. Counts them as issued.
 */
uint64_t tern_bench_pace_take(struct tern_bench_pace *p, uint64_t now_ns);

/** Time at which message number issued+1 becomes due (ns, same clock as t0). */
uint64_t tern_bench_pace_next_ns(const struct tern_bench_pace *p);

#endif
