/*
 * W2, routing between online pairs: connection 2k sends to 2k+1 and back.
 * Each step sends at a fixed rate (open loop, paced per millisecond) or, for
 * rate 0, as fast as a window of messages in flight allows. Every body holds
 * the monotonic send time, the step, a sequence number and the intended
 * receiver, so the receiver measures latency and checks delivery.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define TICK_MS 1 /* pacing granularity */

static char pad[65537]; /* 'x' * body_size, made once */

static struct tern_bench_step *cur(struct tern_bench_run *r) {
    return &r->steps[r->nsteps];
}

/* ---- parsing a body: "<t_ns> <step> <seq> <dst>[ padding]" --------------- */

static const char *parse_num(const char *p, const char *end, uint64_t *out) {
    uint64_t v = 0;
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == start)
        return NULL;
    *out = v;
    while (p < end && *p == ' ')
        p++;
    return p;
}

static void on_message(struct tern_bench_conn *c, const char *body, size_t len) {
    struct tern_bench_run *r = c->client->data;
    uint64_t t, step, seq, dst;
    const char *p = body, *end = body + len;
    if (!(p = parse_num(p, end, &t)) || !(p = parse_num(p, end, &step)) ||
        !(p = parse_num(p, end, &seq)) || !(p = parse_num(p, end, &dst))) {
        tern_bench_error(r, "unparsable message body");
        return;
    }
    if (step >= (uint64_t)r->nsteps + 1 || r->phase != 1 || step != (uint64_t)r->nsteps) {
        if (step < TERN_BENCH_MAX_RATES)
            r->steps[step].late++;
        return;
    }
    struct tern_bench_step *s = cur(r);
    if (dst != c->index) {
        s->misrouted++;
        return;
    }
    s->received++;
    uint64_t now = tern_bench_now_ns();
    tern_bench_hist_add(&s->lat, now > t ? now - t : 0);
}

/* ---- sending ------------------------------------------------------------- */

static int send_one(struct tern_bench_run *r, uint64_t now) {
    /* Round robin over senders; a connection that is gone is skipped. */
    for (uint32_t tries = 0; tries < r->nconns; tries++) {
        uint32_t i = r->rr++ % r->nconns;
        struct tern_bench_conn *c = &r->conns[i];
        struct tern_bench_conn *to = &r->conns[i ^ 1];
        if (c->state != TERN_BENCH_READY)
            continue;
        char msg[512];
        int n =
            snprintf(msg, sizeof msg, "<message to='%s%u@%s/b' type='chat'><body>%llu %d %llu %u%s",
                     r->o.user_prefix, to->index, r->o.domain, (unsigned long long)now, r->nsteps,
                     (unsigned long long)r->seq, to->index, r->o.body_size ? " " : "");
        if (n < 0 || (size_t)n >= sizeof msg)
            return -1;
        static const char tail[] = "</body></message>";
        size_t padlen = r->o.body_size;
        char *p = tern_bench_conn_reserve(c, (size_t)n + padlen + sizeof tail - 1);
        if (!p) {
            cur(r)->backpressure++;
            return 0;
        }
        memcpy(p, msg, (size_t)n);
        memcpy(p + n, pad, padlen);
        memcpy(p + n + padlen, tail, sizeof tail - 1);
        r->dirty[i] = 1;
        r->seq++;
        cur(r)->sent++;
        return 0;
    }
    return -1;
}

static void flush_dirty(struct tern_bench_run *r) {
    for (uint32_t i = 0; i < r->nconns; i++) {
        if (r->dirty[i]) {
            r->dirty[i] = 0;
            tern_bench_conn_flush(&r->conns[i]);
        }
    }
}

static void step_begin(struct tern_bench_run *r);
static void route_end(struct tern_bench_run *r);

static void step_end(struct tern_bench_run *r) {
    struct tern_bench_step *s = cur(r);
    uv_timer_stop(&r->tick);
    r->phase = 2;
    s->t_end = tern_bench_now_ns();
    uint64_t lost = s->sent - s->received - s->misrouted;
    double send_s = (s->t_sent - s->t_begin) / 1e9;
    double all_s = (s->t_end - s->t_begin) / 1e9;
    char f[4096] = "";
    tern_bench_json(f, sizeof f,
                    "\"step\":%d,\"rate\":%llu,\"sent\":%llu,\"received\":%llu,\"lost\":%llu,"
                    "\"misrouted\":%llu,\"backpressure\":%llu,\"send_s\":%.3f,\"step_s\":%.3f,"
                    "\"sent_per_s\":%.1f,\"received_per_s\":%.1f",
                    r->nsteps, (unsigned long long)s->rate, (unsigned long long)s->sent,
                    (unsigned long long)s->received, (unsigned long long)lost,
                    (unsigned long long)s->misrouted, (unsigned long long)s->backpressure, send_s,
                    all_s, send_s > 0 ? s->sent / send_s : 0, all_s > 0 ? s->received / all_s : 0);
    tern_bench_json_hist(f, sizeof f, "lat", &s->lat);
    /* The sweep goes on past one step over the p99 limit (a single GC pause can
     * cause it) but ends after two in a row, after one that also fell behind its
     * rate (the server is saturated), or after any loss. */
    int over =
        r->o.p99_limit_ms > 0 && tern_bench_hist_percentile(&s->lat, 99) / 1e6 > r->o.p99_limit_ms;
    int behind = s->rate > 0 && all_s > 0 && s->received / all_s < 0.9 * (double)s->rate;
    r->fail_streak = over ? r->fail_streak + 1 : 0;
    if (lost || s->misrouted)
        r->exit_code = 1;
    r->nsteps++;
    int stop =
        r->o.p99_limit_ms > 0 && (lost || s->misrouted || r->fail_streak >= 2 || (over && behind));
    int more = r->nsteps < r->o.nrates && !stop;
    tern_bench_emit(r, "step_end", f, more ? step_begin : route_end);
}

static void on_tick(uv_timer_t *t) {
    struct tern_bench_run *r = t->data;
    struct tern_bench_step *s = cur(r);
    uint64_t now = tern_bench_now_ns();
    if (r->phase == 1 && s->t_sent == 0) {
        uint64_t n;
        int done;
        if (s->rate > 0) {
            n = tern_bench_pace_take(&r->pace, now);
            done = r->pace.issued >= r->pace.limit;
        } else {
            uint64_t inflight = s->sent - s->received - s->misrouted;
            n = inflight < r->o.window ? r->o.window - inflight : 0;
            if (r->o.count && s->sent + n > r->o.count)
                n = r->o.count - s->sent;
            done = r->o.count ? s->sent + n >= r->o.count
                              : now >= s->t_begin + (uint64_t)(r->o.duration_s * 1e9);
        }
        for (uint64_t k = 0; k < n; k++)
            if (send_one(r, now) < 0)
                break;
        flush_dirty(r);
        if (done)
            s->t_sent = now;
        return;
    }
    /* Draining: end when everything arrived or the drain time is over. */
    if (s->received + s->misrouted >= s->sent || now >= s->t_sent + (uint64_t)(r->o.drain_s * 1e9))
        step_end(r);
}

static void step_run(struct tern_bench_run *r) {
    struct tern_bench_step *s = cur(r);
    uint64_t now = tern_bench_now_ns();
    s->t_begin = now;
    if (s->rate > 0) {
        uint64_t limit = r->o.count ? r->o.count : (uint64_t)(s->rate * r->o.duration_s);
        /* A late timer may release at most 20 ms worth of messages at once. */
        uint64_t burst = s->rate / 50 + 1;
        tern_bench_pace_init(&r->pace, s->rate, now, limit, burst);
    }
    r->phase = 1;
    uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
}

static void step_begin(struct tern_bench_run *r) {
    if (r->stop_requested) {
        route_end(r);
        return;
    }
    struct tern_bench_step *s = cur(r);
    memset(s, 0, sizeof *s);
    s->rate = r->o.rates[r->nsteps];
    char f[128] = "";
    tern_bench_json(f, sizeof f, "\"step\":%d,\"rate\":%llu", r->nsteps,
                    (unsigned long long)s->rate);
    tern_bench_emit(r, "step_start", f, step_run);
}

static void route_report(struct tern_bench_run *r) {
    char f[4096] = "";
    uint64_t sent = 0, received = 0, lost = 0, late = 0;
    /* A step cut short by a signal or --max-time counts too. */
    int n = r->nsteps + (r->phase == 1 ? 1 : 0);
    for (int i = 0; i < n; i++) {
        struct tern_bench_step *s = &r->steps[i];
        sent += s->sent;
        received += s->received;
        lost += s->sent - s->received - s->misrouted;
        late += s->late;
    }
    tern_bench_json(f, sizeof f,
                    "\"mode\":\"route\",\"pairs\":%u,\"ready\":%u,\"dropped\":%u,\"steps\":%d,"
                    "\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"late\":%llu",
                    r->nconns / 2, r->ready, r->dropped, r->nsteps, (unsigned long long)sent,
                    (unsigned long long)received, (unsigned long long)lost,
                    (unsigned long long)late);
    tern_bench_json_hist(f, sizeof f, "login", &r->login_lat);
    tern_bench_json_errors(f, sizeof f, &r->errors);
    if (r->errors.total || lost || r->dropped || r->ready != r->nconns)
        r->exit_code = 1;
    tern_bench_finish(r, f);
}

static void route_end(struct tern_bench_run *r) {
    tern_bench_stop(r);
}

static void check_logged_in(struct tern_bench_run *r) {
    if (r->next_login < r->nconns || r->in_flight > 0)
        return;
    r->t_login_end = tern_bench_now_ns();
    char f[2048] = "";
    tern_bench_json(f, sizeof f, "\"conns\":%u,\"ready\":%u,\"failed\":%llu,\"login_s\":%.3f",
                    r->nconns, r->ready, (unsigned long long)r->errors.total,
                    (r->t_login_end - r->t_login_start) / 1e9);
    tern_bench_json_hist(f, sizeof f, "login", &r->login_lat);
    /* Pairs need both ends: a failed login ends the run. */
    tern_bench_emit(r, "ready", f, r->ready == r->nconns ? step_begin : route_end);
}

static void on_ready(struct tern_bench_conn *c) {
    struct tern_bench_run *r = c->client->data;
    r->ready++;
    r->in_flight--;
    tern_bench_hist_add(&r->login_lat, c->t_ready - c->t_start);
    tern_bench_login_more(r);
    check_logged_in(r);
}

static void on_closed(struct tern_bench_conn *c, const char *error) {
    struct tern_bench_run *r = c->client->data;
    tern_bench_error(r, error ? error : "closed");
    if (c->t_ready == 0) {
        r->in_flight--;
        tern_bench_login_more(r);
        check_logged_in(r);
    } else {
        r->dropped++;
    }
}

void tern_bench_route_start(struct tern_bench_run *r) {
    r->nconns = 2 * r->o.pairs;
    r->conns = calloc(r->nconns, sizeof *r->conns);
    r->dirty = calloc(r->nconns, 1);
    if (!r->conns || !r->dirty) {
        fputs("tern-loadgen: out of memory\n", stderr);
        abort();
    }
    memset(pad, 'x', sizeof pad - 1);
    r->client.on_ready = on_ready;
    r->client.on_message = on_message;
    r->wl_closed = on_closed;
    r->report = route_report; /* also what a signal or --max-time prints */
    tern_bench_login_more(r);
}
