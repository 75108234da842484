/*
 * W1, idle sessions: log in --conns sessions, report "ready", hold them
 * while the harness measures the server's memory, then log out.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

static void idle_report(struct tern_bench_run *r) {
    char f[4096] = "";
    tern_bench_json(f, sizeof f, "\"mode\":\"idle\",\"conns\":%u,\"ready\":%u,\"dropped\":%u",
                    r->nconns, r->ready, r->dropped);
    tern_bench_json_hist(f, sizeof f, "login", &r->login_lat);
    tern_bench_json_errors(f, sizeof f, &r->errors);
    if (r->errors.total || r->ready != r->nconns || r->dropped)
        r->exit_code = 1;
    tern_bench_finish(r, f);
}

static void idle_end(struct tern_bench_run *r) {
    tern_bench_stop(r);
}

static void on_hold_done(uv_timer_t *t) {
    idle_end(t->data);
}

static void idle_hold(struct tern_bench_run *r) {
    uv_timer_start(&r->tick, on_hold_done, (uint64_t)(r->o.hold_s * 1000), 0);
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
    tern_bench_emit(r, "ready", f, r->o.sync ? idle_end : idle_hold);
}

static void on_ready(struct tern_bench_conn *c) {
    struct tern_bench_run *r = c->client->data;
    r->ready++;
    r->in_flight--;
    tern_bench_hist_add(&r->login_lat, c->t_ready - c->t_start);
    tern_bench_login_more(r);
    check_logged_in(r);
}

static void on_message(struct tern_bench_conn *c, const char *body, size_t len) {
    (void)c, (void)body, (void)len;
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

void tern_bench_idle_start(struct tern_bench_run *r) {
    r->nconns = r->o.conns;
    r->conns = calloc(r->nconns, sizeof *r->conns);
    if (!r->conns) {
        fputs("tern-loadgen: out of memory\n", stderr);
        abort();
    }
    r->client.on_ready = on_ready;
    r->client.on_message = on_message;
    r->wl_closed = on_closed;
    r->report = idle_report; /* also what a signal or --max-time prints */
    tern_bench_login_more(r);
}
