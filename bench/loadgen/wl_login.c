/*
 * W4, logins per second: --concurrency slots, each logging a user in (TCP,
 * TLS 1.3 full handshake, SASL, bind), then out, then the next user. A first
 * pass over every user fills the client's SCRAM key cache, like a real client
 * that stored its keys, so the measured phase is bounded by the server.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

enum { WARMUP, MEASURE, DONE };

static int may_start(struct tern_bench_run *r) {
    if (r->finishing)
        return 0;
    if (r->phase == WARMUP)
        return r->logins_started < r->o.users;
    if (r->phase != MEASURE)
        return 0;
    if (r->o.count)
        return r->logins_started < r->o.count;
    return tern_bench_now_ns() < r->t_phase + (uint64_t)(r->o.duration_s * 1e9);
}

static void fill(struct tern_bench_run *r) {
    for (uint32_t i = 0; i < r->nconns && may_start(r); i++) {
        struct tern_bench_conn *c = &r->conns[i];
        if (c->state != TERN_BENCH_IDLE)
            continue;
        uint32_t user = r->o.user_base + (uint32_t)(r->next_login++ % r->o.users);
        r->logins_started++;
        r->in_flight++;
        tern_bench_start_conn(r, c, user);
    }
}

static void login_report(struct tern_bench_run *r) {
    double s = (r->t_phase_end - r->t_phase) / 1e9;
    char f[4096] = "";
    tern_bench_json(f, sizeof f,
                    "\"mode\":\"login\",\"concurrency\":%u,\"users\":%u,\"logins\":%llu,"
                    "\"failed\":%llu,\"measure_s\":%.3f,\"logins_per_s\":%.1f",
                    r->nconns, r->o.users, (unsigned long long)r->logins_ok,
                    (unsigned long long)r->logins_failed, s, s > 0 ? r->logins_ok / s : 0);
    tern_bench_json_hist(f, sizeof f, "login", &r->login_lat);
    tern_bench_json_errors(f, sizeof f, &r->errors);
    if (r->errors.total || r->logins_ok == 0)
        r->exit_code = 1;
    tern_bench_finish(r, f);
}

static void login_end(struct tern_bench_run *r) {
    tern_bench_stop(r);
}

static void measure_start(struct tern_bench_run *r) {
    r->phase = MEASURE;
    r->logins_started = 0;
    r->logins_ok = r->logins_failed = 0;
    tern_bench_hist_reset(&r->login_lat);
    r->t_phase = tern_bench_now_ns();
    fill(r);
}

/* A slot finished; start the next login or close the phase. */
static void slot_done(struct tern_bench_run *r) {
    r->in_flight--;
    fill(r);
    if (r->in_flight > 0)
        return;
    if (r->phase == WARMUP) {
        char f[256] = "";
        tern_bench_json(f, sizeof f, "\"warmup_logins\":%llu,\"warmup_s\":%.3f",
                        (unsigned long long)r->logins_started,
                        (tern_bench_now_ns() - r->t_login_start) / 1e9);
        r->phase = DONE; /* nothing starts while the harness samples */
        tern_bench_emit(r, "ready", f, measure_start);
    } else if (r->phase == MEASURE) {
        r->phase = DONE;
        r->t_phase_end = tern_bench_now_ns();
        char f[256] = "";
        tern_bench_json(f, sizeof f, "\"logins\":%llu", (unsigned long long)r->logins_ok);
        tern_bench_emit(r, "end", f, login_end);
    }
}

static void on_ready(struct tern_bench_conn *c) {
    struct tern_bench_run *r = c->client->data;
    if (r->phase == MEASURE) {
        r->logins_ok++;
        tern_bench_hist_add(&r->login_lat, c->t_ready - c->t_start);
    }
    tern_bench_conn_close(c, 1, NULL);
}

static void on_message(struct tern_bench_conn *c, const char *body, size_t len) {
    (void)c, (void)body, (void)len;
}

static void on_closed(struct tern_bench_conn *c, const char *error) {
    struct tern_bench_run *r = c->client->data;
    if (error && c->t_ready == 0) {
        tern_bench_error(r, error);
        if (r->phase == MEASURE)
            r->logins_failed++;
    }
    slot_done(r);
}

void tern_bench_login_start(struct tern_bench_run *r) {
    r->nconns = r->o.concurrency;
    r->conns = calloc(r->nconns, sizeof *r->conns);
    if (!r->conns) {
        fputs("tern-loadgen: out of memory\n", stderr);
        abort();
    }
    if (r->o.mech != TERN_BENCH_MECH_PLAIN) {
        /* Cache indexed by user number: user_base + i maps to entry user_base + i. */
        r->client.ncache = r->o.user_base + r->o.users;
        r->client.cache = calloc(r->client.ncache, sizeof *r->client.cache);
        if (!r->client.cache) {
            fputs("tern-loadgen: out of memory\n", stderr);
            abort();
        }
    }
    r->client.on_ready = on_ready;
    r->client.on_message = on_message;
    r->wl_closed = on_closed;
    r->report = login_report; /* also what a signal or --max-time prints */
    r->phase = r->o.warmup ? WARMUP : MEASURE;
    if (r->phase == MEASURE)
        r->t_phase = tern_bench_now_ns();
    fill(r);
}
