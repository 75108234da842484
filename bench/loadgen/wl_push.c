/*
 * W3 and W3b, messages to users who are away, pushed (XEP-0357) to the sink
 * component (component.c).
 *
 * Connection k < P is a recipient: it logs in, enables push for node "node<k>"
 * at --push JID (and XEP-0198 with --sm), then goes away: with </stream:stream>
 * (W3, offline: the server stores what comes next) or by resetting the socket
 * (W3b, --hibernate: the server keeps the session hibernated and queues what
 * comes next). Connection P + k is a sender: it stays online and sends to
 * recipient k at the step's rate. Each push received by the sink counts; its
 * last-message-body, when the server includes it, gives the send -> push
 * latency.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "component.h"

enum { P_COMPONENT, P_RECIPIENTS, P_SENDERS, P_READY, P_STEP, P_DONE, P_VERIFY };

static struct tern_bench_component comp; /* the sink; one per run */

static struct tern_bench_step *cur(struct tern_bench_run *r) {
    return &r->steps[r->nsteps];
}

static uint32_t npairs(struct tern_bench_run *r) {
    return r->nconns / 2;
}

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

/* ---- the sink -------------------------------------------------------------- */

static void on_push(struct tern_bench_component *k, const char *node, const char *body,
                    size_t len) {
    struct tern_bench_run *r = k->data;
    uint64_t t, step, seq, dst;
    const char *p = body, *end = body + len;
    if (r->phase != P_STEP) {
        r->steps[r->nsteps < TERN_BENCH_MAX_RATES ? r->nsteps : 0].late++;
        return;
    }
    struct tern_bench_step *s = cur(r);
    s->received++; /* pushes */
    if (len == 0 || !(p = parse_num(p, end, &t)) || !(p = parse_num(p, end, &step)) ||
        !(p = parse_num(p, end, &seq)) || !(p = parse_num(p, end, &dst)))
        return; /* a push without our body: counted, no latency */
    char want[32];
    snprintf(want, sizeof want, "node%llu", (unsigned long long)dst);
    if (strcmp(node, want) != 0)
        s->misrouted++;
    if (step != (uint64_t)r->nsteps)
        return;
    uint64_t now = tern_bench_now_ns();
    tern_bench_hist_add(&s->lat, now > t ? now - t : 0);
}

static void start_recipients(struct tern_bench_run *r);

static void on_comp_ready(struct tern_bench_component *k) {
    start_recipients(k->data);
}

static void on_comp_closed(struct tern_bench_component *k, const char *error) {
    struct tern_bench_run *r = k->data;
    if (error && !r->finishing) {
        tern_bench_error(r, error);
        r->exit_code = 1;
        tern_bench_stop(r);
    }
    if (r->finishing && r->open == 0 && r->report) {
        tern_bench_cont_fn report = r->report;
        r->report = NULL;
        report(r);
    }
}

/* ---- logins in two groups ------------------------------------------------- */

/* Start logins of conns[next_login, to) up to the concurrency limit. */
static void login_range(struct tern_bench_run *r, uint32_t to) {
    while (!r->finishing && r->in_flight < r->o.concurrency && r->next_login < to) {
        struct tern_bench_conn *c = &r->conns[r->next_login];
        r->in_flight++;
        tern_bench_start_conn(r, c, r->o.user_base + r->next_login);
        r->next_login++;
    }
}

static void start_recipients(struct tern_bench_run *r) {
    r->phase = P_RECIPIENTS;
    r->next_login = 0;
    login_range(r, npairs(r));
}

static void step_begin(struct tern_bench_run *r);
static void push_end(struct tern_bench_run *r);
static void verify_start(struct tern_bench_run *r);

static void senders_ready(struct tern_bench_run *r) {
    r->t_login_end = tern_bench_now_ns();
    r->phase = P_READY;
    char f[1024] = "";
    tern_bench_json(f, sizeof f, "\"pairs\":%u,\"ready\":%u,\"failed\":%llu,\"login_s\":%.3f",
                    npairs(r), r->ready, (unsigned long long)r->errors.total,
                    (r->t_login_end - r->t_login_start) / 1e9);
    tern_bench_emit(r, "ready", f, r->errors.total ? push_end : step_begin);
}

static void start_senders(struct tern_bench_run *r) {
    /* Senders stay online and need neither push nor stream management. */
    r->client.push_jid = NULL;
    r->client.sm = 0;
    r->phase = P_SENDERS;
    login_range(r, r->nconns);
}

static void check_phase(struct tern_bench_run *r) {
    if (r->in_flight > 0)
        return;
    if (r->phase == P_RECIPIENTS && r->next_login >= npairs(r)) {
        /* Every recipient is logged in and gone (closed, or failed). */
        for (uint32_t i = 0; i < npairs(r); i++)
            if (r->conns[i].state != TERN_BENCH_IDLE)
                return;
        start_senders(r);
    } else if (r->phase == P_SENDERS && r->next_login >= r->nconns) {
        senders_ready(r);
    }
}

static void on_ready(struct tern_bench_conn *c) {
    struct tern_bench_run *r = c->client->data;
    r->ready++;
    tern_bench_hist_add(&r->login_lat, c->t_ready - c->t_start);
    if (r->phase == P_RECIPIENTS) {
        /* Push is enabled: go away. in_flight drops when the close completes. */
        if (r->o.hibernate)
            tern_bench_conn_abort(c, NULL);
        else
            tern_bench_conn_close(c, 1, NULL);
        return;
    }
    r->in_flight--;
    if (r->phase == P_VERIFY) {
        login_range(r, npairs(r));
        return;
    }
    login_range(r, r->nconns);
    check_phase(r);
}

/* Only recipients logging back in (P_VERIFY) receive messages: the stored ones. */
static void on_message(struct tern_bench_conn *c, const char *body, size_t len) {
    struct tern_bench_run *r = c->client->data;
    (void)body, (void)len;
    if (r->phase == P_VERIFY)
        r->delivered++;
}

static void on_closed(struct tern_bench_conn *c, const char *error) {
    struct tern_bench_run *r = c->client->data;
    if (r->phase == P_VERIFY) {
        tern_bench_error(r, error ? error : "closed");
        if (c->t_ready == 0) {
            r->in_flight--;
            login_range(r, npairs(r));
        }
        return;
    }
    if (r->phase == P_RECIPIENTS) {
        if (error || c->t_ready == 0)
            tern_bench_error(r, error ? error : "closed");
        r->in_flight--;
        login_range(r, npairs(r));
        check_phase(r);
        return;
    }
    tern_bench_error(r, error ? error : "closed");
    if (c->t_ready == 0) {
        r->in_flight--;
        login_range(r, r->nconns);
        check_phase(r);
    } else {
        r->dropped++;
    }
}

/* ---- steps ------------------------------------------------------------------ */

static int send_one(struct tern_bench_run *r, uint64_t now) {
    uint32_t p = npairs(r);
    for (uint32_t tries = 0; tries < p; tries++) {
        uint32_t k = r->rr++ % p;
        struct tern_bench_conn *c = &r->conns[p + k];
        uint32_t to = r->o.user_base + k;
        if (c->state != TERN_BENCH_READY)
            continue;
        char msg[512];
        /* W3 addresses the bare JID (no session: offline storage); W3b the full
         * JID of the hibernated session. */
        int n = snprintf(msg, sizeof msg,
                         "<message to='%s%u@%s%s' type='chat'><body>%llu %d %llu %u</body>"
                         "</message>",
                         r->o.user_prefix, to, r->o.domain, r->o.hibernate ? "/b" : "",
                         (unsigned long long)now, r->nsteps, (unsigned long long)r->seq, to);
        if (n < 0 || (size_t)n >= sizeof msg)
            return -1;
        if (tern_bench_conn_append(c, msg, (size_t)n) < 0) {
            cur(r)->backpressure++;
            return 0;
        }
        r->dirty[p + k] = 1;
        r->seq++;
        cur(r)->sent++;
        return 0;
    }
    return -1;
}

static void step_end(struct tern_bench_run *r) {
    struct tern_bench_step *s = cur(r);
    uv_timer_stop(&r->tick);
    r->phase = P_DONE;
    s->t_end = tern_bench_now_ns();
    double send_s = (s->t_sent - s->t_begin) / 1e9;
    double all_s = (s->t_end - s->t_begin) / 1e9;
    char f[4096] = "";
    tern_bench_json(f, sizeof f,
                    "\"step\":%d,\"rate\":%llu,\"sent\":%llu,\"pushes\":%llu,"
                    "\"push_latency_samples\":%llu,\"misrouted\":%llu,\"backpressure\":%llu,"
                    "\"send_s\":%.3f,\"step_s\":%.3f,\"sent_per_s\":%.1f,\"pushes_per_s\":%.1f",
                    r->nsteps, (unsigned long long)s->rate, (unsigned long long)s->sent,
                    (unsigned long long)s->received, (unsigned long long)s->lat.count,
                    (unsigned long long)s->misrouted, (unsigned long long)s->backpressure, send_s,
                    all_s, send_s > 0 ? s->sent / send_s : 0, all_s > 0 ? s->received / all_s : 0);
    tern_bench_json_hist(f, sizeof f, "lat", &s->lat);
    r->nsteps++;
    int more = r->nsteps < r->o.nrates;
    tern_bench_emit(r, "step_end", f, more ? step_begin : verify_start);
}

static void on_tick(uv_timer_t *t) {
    struct tern_bench_run *r = t->data;
    struct tern_bench_step *s = cur(r);
    uint64_t now = tern_bench_now_ns();
    if (s->t_sent == 0) {
        uint64_t n = tern_bench_pace_take(&r->pace, now);
        for (uint64_t k = 0; k < n; k++)
            if (send_one(r, now) < 0)
                break;
        for (uint32_t i = 0; i < r->nconns; i++) {
            if (r->dirty[i]) {
                r->dirty[i] = 0;
                tern_bench_conn_flush(&r->conns[i]);
            }
        }
        if (r->pace.issued >= r->pace.limit)
            s->t_sent = now;
        return;
    }
    /* A server may coalesce pushes, so fewer pushes than messages is not a
     * loss by itself: the drain simply ends at --drain. */
    if (s->received >= s->sent || now >= s->t_sent + (uint64_t)(r->o.drain_s * 1e9))
        step_end(r);
}

static void step_run(struct tern_bench_run *r) {
    struct tern_bench_step *s = cur(r);
    uint64_t now = tern_bench_now_ns();
    s->t_begin = now;
    uint64_t rate = s->rate ? s->rate : 1000;
    uint64_t limit = r->o.count ? r->o.count : (uint64_t)(rate * r->o.duration_s);
    tern_bench_pace_init(&r->pace, rate, now, limit, rate / 50 + 1);
    r->phase = P_STEP;
    uv_timer_start(&r->tick, on_tick, 1, 1);
}

static void step_begin(struct tern_bench_run *r) {
    if (r->stop_requested) {
        verify_start(r);
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

static void push_report(struct tern_bench_run *r) {
    char f[4096] = "";
    tern_bench_comp_close(&comp, NULL); /* also when stopped by a signal */
    uint64_t sent = 0, pushes = 0;
    int n = r->nsteps + (r->phase == P_STEP ? 1 : 0);
    for (int i = 0; i < n; i++) {
        sent += r->steps[i].sent;
        pushes += r->steps[i].received;
    }
    tern_bench_json(f, sizeof f,
                    "\"mode\":\"push\",\"hibernate\":%s,\"pairs\":%u,\"ready\":%u,"
                    "\"dropped\":%u,\"steps\":%d,\"sent\":%llu,\"pushes\":%llu,"
                    "\"component_other_iqs\":%llu,\"offline_delivered\":%llu",
                    r->o.hibernate ? "true" : "false", npairs(r), r->ready, r->dropped, r->nsteps,
                    (unsigned long long)sent, (unsigned long long)pushes,
                    (unsigned long long)comp.other_iqs, (unsigned long long)r->delivered);
    tern_bench_json_errors(f, sizeof f, &r->errors);
    if (r->errors.total || r->dropped || pushes == 0)
        r->exit_code = 1;
    tern_bench_finish(r, f);
}

static void push_end(struct tern_bench_run *r) {
    tern_bench_comp_close(&comp, NULL);
    tern_bench_stop(r);
}

static uint64_t total_sent(struct tern_bench_run *r) {
    uint64_t sent = 0;
    for (int i = 0; i < r->nsteps; i++)
        sent += r->steps[i].sent;
    return sent;
}

/* Verification: every message sent to an offline recipient was stored and comes
 * back when it logs in again with presence (RFC 6121 §8.5.2.2.1, XEP-0160). */
static void on_verify_tick(uv_timer_t *t) {
    struct tern_bench_run *r = t->data;
    uint64_t now = tern_bench_now_ns();
    int all_in = r->next_login >= npairs(r) && r->in_flight == 0;
    if (r->delivered >= total_sent(r) ||
        (all_in && now >= r->t_phase + (uint64_t)((r->o.drain_s + 5) * 1e9)) ||
        now >= r->t_phase + (uint64_t)((r->o.login_timeout_s + r->o.drain_s + 5) * 1e9)) {
        uv_timer_stop(&r->tick);
        char f[256] = "";
        tern_bench_json(f, sizeof f, "\"offline_sent\":%llu,\"offline_delivered\":%llu",
                        (unsigned long long)total_sent(r), (unsigned long long)r->delivered);
        tern_bench_emit(r, "verified", f, push_end);
    }
}

static uint64_t total_pushes(struct tern_bench_run *r) {
    uint64_t pushes = 0;
    for (int i = 0; i < r->nsteps; i++)
        pushes += r->steps[i].received;
    return pushes;
}

static void relogin(struct tern_bench_run *r) {
    r->phase = P_VERIFY;
    r->client.presence = 1;
    r->client.push_jid = NULL;
    r->client.sm = 0;
    r->next_login = 0;
    r->delivered = 0;
    r->t_phase = tern_bench_now_ns();
    login_range(r, npairs(r));
    uv_timer_start(&r->tick, on_verify_tick, 100, 100);
}

/* Before the recipients come back, let a server that fell behind catch up:
 * a message it reads after its recipient is online again is delivered, not
 * stored, and would spoil the "stored = pushed" count. Wait until a push
 * came for every message, or until pushes stop coming for --drain + 2 s
 * (a server that coalesces), at most --login-timeout. */
static uint64_t settle_seen, settle_progress_at;

static void on_settle_tick(uv_timer_t *t) {
    struct tern_bench_run *r = t->data;
    uint64_t now = tern_bench_now_ns(), pushes = total_pushes(r);
    if (pushes != settle_seen) {
        settle_seen = pushes;
        settle_progress_at = now;
    }
    if (pushes >= total_sent(r) ||
        now >= settle_progress_at + (uint64_t)((r->o.drain_s + 2) * 1e9) ||
        now >= r->t_phase + (uint64_t)(r->o.login_timeout_s * 1e9)) {
        uv_timer_stop(&r->tick);
        relogin(r);
    }
}

static void verify_start(struct tern_bench_run *r) {
    if (r->o.hibernate) {
        /* A new login would replace, not resume, the hibernated sessions; what each
         * server does with their queues then differs and is not what W3b measures. */
        push_end(r);
        return;
    }
    r->t_phase = tern_bench_now_ns();
    settle_seen = total_pushes(r);
    settle_progress_at = r->t_phase;
    uv_timer_start(&r->tick, on_settle_tick, 100, 100);
}

void tern_bench_push_start(struct tern_bench_run *r) {
    r->nconns = 2 * r->o.pairs;
    r->conns = calloc(r->nconns, sizeof *r->conns);
    r->dirty = calloc(r->nconns, 1);
    if (!r->conns || !r->dirty) {
        fputs("tern-loadgen: out of memory\n", stderr);
        abort();
    }
    if (!r->client.push_jid) {
        fputs("tern-loadgen: --mode push needs --push JID (the sink's JID)\n", stderr);
        exit(2);
    }
    r->client.on_ready = on_ready;
    r->client.on_message = on_message;
    r->wl_closed = on_closed;
    r->report = push_report;
    r->phase = P_COMPONENT;
    comp.loop = r->loop;
    comp.jid = r->client.push_jid;
    comp.secret = r->o.component_secret;
    comp.on_ready = on_comp_ready;
    comp.on_push = on_push;
    comp.on_closed = on_comp_closed;
    comp.data = r;
    memcpy(&comp.addr, &r->client.addr, sizeof comp.addr);
    /* Same host, the component port. */
    if (comp.addr.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&comp.addr)->sin6_port = htons((uint16_t)r->o.component_port);
    else
        ((struct sockaddr_in *)&comp.addr)->sin_port = htons((uint16_t)r->o.component_port);
    if (tern_bench_comp_start(&comp) < 0) {
        tern_bench_error(r, "component socket failed");
        r->exit_code = 1;
        tern_bench_stop(r);
    }
}
