/*
 * tern-loadgen: XMPP load generator for the side-by-side benchmarks.
 * Options, the event protocol with the harness, and what every workload
 * shares (starting logins, timeouts, stopping, JSON output).
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "bench.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: tern-loadgen --mode idle|route|login|push [options]\n"
    "\n"
    "Connects XMPP clients over TLS (STARTTLS unless --direct-tls), logs them in\n"
    "as <prefix><index>@<domain> and runs one workload. Prints one JSON object per\n"
    "line on stdout: events while running, a \"result\" line at the end.\n"
    "\n"
    "Server and accounts:\n"
    "  --host IP            server address (default 127.0.0.1)\n"
    "  --port N             c2s port (default 5222)\n"
    "  --direct-tls         TLS from the first byte (XEP-0368) instead of STARTTLS\n"
    "  --tls12              allow TLS 1.2 (default: TLS 1.3 only)\n"
    "  --domain D           XMPP domain (default localhost)\n"
    "  --user-prefix P      user names are P0, P1, ... (default bench)\n"
    "  --user-base N        first user index (default 0)\n"
    "  --password PW        password of every user (default bench-password)\n"
    "  --mech M             scram-sha-1 (default), scram-sha-256 or plain\n"
    "  --sm                 enable XEP-0198 stream management after bind\n"
    "  --push JID           enable XEP-0357 push to app server JID after bind\n"
    "  --presence           send initial presence after login\n"
    "  --concurrency N      logins in flight at once (default 50)\n"
    "  --login-timeout S    a login taking longer fails (default 30)\n"
    "  --max-time S         hard bound on the whole run (default 600)\n"
    "  --sync               after each event wait for a line on stdin: \"go\"\n"
    "                       goes on, \"stop\" ends the rate sweep there\n"
    "\n"
    "--mode idle: log in --conns N sessions and hold them (--hold S, default 10,\n"
    "  or until the harness answers the \"ready\" event with --sync).\n"
    "\n"
    "--mode route: log in --pairs N pairs; each client sends to its partner.\n"
    "  --rate R[,R...]      messages/s over all clients, one step per value;\n"
    "                       0 = as fast as --window allows (default 1000)\n"
    "  --duration S         seconds per step (default 5)\n"
    "  --count N            messages per step instead of --duration\n"
    "  --drain S            wait for late messages after a step (default 3)\n"
    "  --window N           messages in flight for rate 0 (default 1000)\n"
    "  --body-size N        pad message bodies to N bytes\n"
    "  --p99-limit MS       end the sweep after two steps in a row whose p99\n"
    "                       exceeds MS, one that also fell 10 % behind its rate,\n"
    "                       or one that lost messages\n"
    "\n"
    "--mode login: log in and out repeatedly, --concurrency at a time, cycling\n"
    "  over --users N users; a first unmeasured pass over every user warms the\n"
    "  client's SCRAM key cache (--no-warmup to skip); then --duration S or\n"
    "  --count N logins are measured.\n"
    "\n"
    "--mode push: XEP-0357 to a sink component. Connects to --component-port as\n"
    "  the XEP-0114 component --push JID (secret --component-secret, default\n"
    "  bench-secret); --pairs N recipients log in, enable push to it (and SM with\n"
    "  --sm) and go away: they close the stream (offline, W3) or, with --hibernate,\n"
    "  reset the socket (SM-hibernated, W3b). N senders then send to them at each\n"
    "  --rate step for --duration; the sink counts pushes and, from the pushed body,\n"
    "  the send -> push latency. Without --hibernate the recipients then log in\n"
    "  again with presence and the stored messages they get are counted.\n"
    "\n"
    "Exit status: 0 no errors and no lost messages, 1 errors or losses, 2 usage.\n";

static struct tern_bench_run run_storage; /* the one run; large, so not on the stack */

/* ---- JSON helpers -------------------------------------------------------- */

void tern_bench_json(char *buf, size_t size, const char *fmt, ...) {
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

void tern_bench_json_hist(char *buf, size_t size, const char *prefix,
                          const struct tern_bench_hist *h) {
    double mean = h->count ? h->sum / (double)h->count : 0;
    tern_bench_json(buf, size,
                    ",\"%s_p50_ms\":%.3f,\"%s_p99_ms\":%.3f,\"%s_p999_ms\":%.3f,"
                    "\"%s_max_ms\":%.3f,\"%s_mean_ms\":%.3f",
                    prefix, tern_bench_hist_percentile(h, 50) / 1e6, prefix,
                    tern_bench_hist_percentile(h, 99) / 1e6, prefix,
                    tern_bench_hist_percentile(h, 99.9) / 1e6, prefix,
                    (h->count ? h->max : 0) / 1e6, prefix, mean / 1e6);
}

void tern_bench_json_errors(char *buf, size_t size, const struct tern_bench_errors *e) {
    tern_bench_json(buf, size, ",\"errors\":%llu,\"error_reasons\":{",
                    (unsigned long long)e->total);
    for (int i = 0; i < e->n; i++)
        tern_bench_json(buf, size, "%s\"%s\":%llu", i ? "," : "", e->reason[i],
                        (unsigned long long)e->count[i]);
    if (e->other)
        tern_bench_json(buf, size, "%s\"other\":%llu", e->n ? "," : "",
                        (unsigned long long)e->other);
    tern_bench_json(buf, size, "}");
}

void tern_bench_error(struct tern_bench_run *r, const char *reason) {
    struct tern_bench_errors *e = &r->errors;
    e->total++;
    for (int i = 0; i < e->n; i++) {
        if (e->reason[i] == reason || strcmp(e->reason[i], reason) == 0) {
            e->count[i]++;
            return;
        }
    }
    if (e->n < TERN_BENCH_MAX_ERRORS) {
        e->reason[e->n] = reason;
        e->count[e->n++] = 1;
    } else {
        e->other++;
    }
}

/* ---- events and --sync --------------------------------------------------- */

static void in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct tern_bench_run *r = h->data;
    (void)suggested;
    *buf = uv_buf_init(r->inbuf, sizeof r->inbuf);
}

static void in_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    struct tern_bench_run *r = s->data;
    if (n == 0)
        return;
    uv_read_stop(s);
    tern_bench_cont_fn cont = r->cont;
    r->cont = NULL;
    if (n < 0) {
        /* The harness went away: stop rather than run unobserved. */
        tern_bench_error(r, "harness closed stdin");
        r->exit_code = 1;
        tern_bench_stop(r);
        return;
    }
    /* "stop" instead of "go": the harness has seen enough (a saturated step); the
     * sweep ends at the next step boundary and the run finishes normally. */
    if (n >= 4 && memcmp(buf->base, "stop", 4) == 0)
        r->stop_requested = 1;
    if (cont)
        cont(r);
}

void tern_bench_emit(struct tern_bench_run *r, const char *name, const char *fields,
                     tern_bench_cont_fn cont) {
    printf("{\"event\":\"%s\",\"t_s\":%.3f%s%s}\n", name, (tern_bench_now_ns() - r->t0) / 1e9,
           fields && fields[0] ? "," : "", fields ? fields : "");
    fflush(stdout);
    if (!cont)
        return;
    if (!r->o.sync) {
        cont(r);
        return;
    }
    r->cont = cont;
    uv_read_start((uv_stream_t *)&r->in, in_alloc, in_read);
}

/* ---- connections ---------------------------------------------------------- */

void tern_bench_start_conn(struct tern_bench_run *r, struct tern_bench_conn *c, uint32_t index) {
    r->open++;
    if (r->t_login_start == 0)
        r->t_login_start = tern_bench_now_ns();
    if (tern_bench_conn_start(c, &r->client, index) < 0) {
        /* No socket at all (out of descriptors): nothing to close. */
        r->open--;
        tern_bench_error(r, "socket failed");
        r->exit_code = 1;
        tern_bench_stop(r);
    }
}

static void on_closed_common(struct tern_bench_conn *c, const char *error) {
    struct tern_bench_run *r = c->client->data;
    r->open--;
    if (r->finishing) {
        if (r->open == 0 && r->report) {
            tern_bench_cont_fn report = r->report;
            r->report = NULL;
            report(r);
        }
        return;
    }
    r->wl_closed(c, error);
}

void tern_bench_login_more(struct tern_bench_run *r) {
    while (!r->finishing && r->in_flight < r->o.concurrency && r->next_login < r->nconns) {
        struct tern_bench_conn *c = &r->conns[r->next_login];
        r->in_flight++;
        tern_bench_start_conn(r, c, r->o.user_base + r->next_login);
        r->next_login++;
    }
}

void tern_bench_close_all(struct tern_bench_run *r) {
    for (uint32_t i = 0; i < r->nconns; i++)
        tern_bench_conn_close(&r->conns[i], 1, NULL);
}

void tern_bench_stop(struct tern_bench_run *r) {
    if (r->finishing)
        return;
    r->finishing = 1;
    uv_timer_stop(&r->tick);
    if (r->cont) {
        uv_read_stop((uv_stream_t *)&r->in);
        r->cont = NULL;
    }
    tern_bench_close_all(r);
    if (r->open == 0 && r->report) {
        tern_bench_cont_fn report = r->report;
        r->report = NULL;
        report(r);
    }
}

static void close_handle(uv_handle_t *h) {
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void tern_bench_finish(struct tern_bench_run *r, const char *fields) {
    tern_bench_emit(r, "result", fields, NULL);
    r->finishing = 1;
    close_handle((uv_handle_t *)&r->tick);
    close_handle((uv_handle_t *)&r->sweep);
    close_handle((uv_handle_t *)&r->deadline);
    close_handle((uv_handle_t *)&r->sigint);
    close_handle((uv_handle_t *)&r->sigterm);
    if (r->o.sync)
        close_handle((uv_handle_t *)&r->in);
}

/* Every second: fail logins that take too long. */
static void on_sweep(uv_timer_t *t) {
    struct tern_bench_run *r = t->data;
    uint64_t now = tern_bench_now_ns();
    uint64_t limit = (uint64_t)(r->o.login_timeout_s * 1e9);
    for (uint32_t i = 0; i < r->nconns; i++) {
        struct tern_bench_conn *c = &r->conns[i];
        if (c->state >= TERN_BENCH_CONNECTING && c->state < TERN_BENCH_READY &&
            now - c->t_start > limit)
            tern_bench_conn_close(c, 0, "login timeout");
    }
}

static void on_deadline(uv_timer_t *t) {
    struct tern_bench_run *r = t->data;
    tern_bench_error(r, "max-time reached");
    r->exit_code = 1;
    tern_bench_stop(r);
}

static void on_signal(uv_signal_t *s, int signum) {
    struct tern_bench_run *r = s->data;
    (void)signum;
    tern_bench_error(r, "interrupted");
    r->exit_code = 1;
    tern_bench_stop(r);
}

/* ---- options --------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int parse_u32(const char *s, uint32_t *out, uint32_t min) {
    uint64_t v;
    if (parse_u64(s, &v) < 0 || v < min || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_secs(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0) || v > 86400)
        return -1;
    *out = v;
    return 0;
}

static int parse_rates(const char *s, struct tern_bench_opts *o) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    o->nrates = 0;
    char *p = buf;
    while (*p) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (o->nrates >= TERN_BENCH_MAX_RATES || parse_u64(p, &o->rates[o->nrates]) < 0)
            return -1;
        o->nrates++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return o->nrates > 0 ? 0 : -1;
}

enum {
    OPT_MODE = 256,
    OPT_HOST,
    OPT_PORT,
    OPT_DIRECT_TLS,
    OPT_TLS12,
    OPT_DOMAIN,
    OPT_PREFIX,
    OPT_BASE,
    OPT_USERS,
    OPT_PASSWORD,
    OPT_MECH,
    OPT_SM,
    OPT_PUSH,
    OPT_PRESENCE,
    OPT_CONNS,
    OPT_PAIRS,
    OPT_CONCURRENCY,
    OPT_HOLD,
    OPT_RATE,
    OPT_DURATION,
    OPT_COUNT,
    OPT_DRAIN,
    OPT_WINDOW,
    OPT_BODY,
    OPT_P99,
    OPT_WARMUP,
    OPT_NO_WARMUP,
    OPT_LOGIN_TIMEOUT,
    OPT_MAX_TIME,
    OPT_SYNC,
    OPT_HIBERNATE,
    OPT_COMP_PORT,
    OPT_COMP_SECRET,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"mode", required_argument, NULL, OPT_MODE},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"direct-tls", no_argument, NULL, OPT_DIRECT_TLS},
    {"tls12", no_argument, NULL, OPT_TLS12},
    {"domain", required_argument, NULL, OPT_DOMAIN},
    {"user-prefix", required_argument, NULL, OPT_PREFIX},
    {"user-base", required_argument, NULL, OPT_BASE},
    {"users", required_argument, NULL, OPT_USERS},
    {"password", required_argument, NULL, OPT_PASSWORD},
    {"mech", required_argument, NULL, OPT_MECH},
    {"sm", no_argument, NULL, OPT_SM},
    {"push", required_argument, NULL, OPT_PUSH},
    {"presence", no_argument, NULL, OPT_PRESENCE},
    {"conns", required_argument, NULL, OPT_CONNS},
    {"pairs", required_argument, NULL, OPT_PAIRS},
    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"hold", required_argument, NULL, OPT_HOLD},
    {"rate", required_argument, NULL, OPT_RATE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"count", required_argument, NULL, OPT_COUNT},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"body-size", required_argument, NULL, OPT_BODY},
    {"p99-limit", required_argument, NULL, OPT_P99},
    {"warmup", no_argument, NULL, OPT_WARMUP},
    {"no-warmup", no_argument, NULL, OPT_NO_WARMUP},
    {"login-timeout", required_argument, NULL, OPT_LOGIN_TIMEOUT},
    {"max-time", required_argument, NULL, OPT_MAX_TIME},
    {"sync", no_argument, NULL, OPT_SYNC},
    {"hibernate", no_argument, NULL, OPT_HIBERNATE},
    {"component-port", required_argument, NULL, OPT_COMP_PORT},
    {"component-secret", required_argument, NULL, OPT_COMP_SECRET},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int bad(const char *opt, const char *val) {
    fprintf(stderr, "tern-loadgen: bad value for --%s: '%s' (see --help)\n", opt, val);
    return -1;
}

static int parse_opts(int argc, char **argv, struct tern_bench_opts *o) {
    *o = (struct tern_bench_opts){
        .mode = -1,
        .host = "127.0.0.1",
        .port = 5222,
        .domain = "localhost",
        .user_prefix = "bench",
        .password = "bench-password",
        .mech = TERN_BENCH_MECH_SCRAM_SHA1,
        .conns = 100,
        .pairs = 50,
        .users = 100,
        .concurrency = 50,
        .hold_s = 10,
        .rates = {1000},
        .nrates = 1,
        .duration_s = 5,
        .drain_s = 3,
        .window = 1000,
        .warmup = 1,
        .login_timeout_s = 30,
        .max_time_s = 600,
        .component_secret = "bench-secret",
    };
    int ch;
    uint64_t v;
    while ((ch = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *lo = long_opts; lo->name; lo++)
            if (lo->val == ch)
                name = lo->name;
        switch (ch) {
        case OPT_MODE:
            if (strcmp(optarg, "idle") == 0)
                o->mode = TERN_BENCH_MODE_IDLE;
            else if (strcmp(optarg, "route") == 0)
                o->mode = TERN_BENCH_MODE_ROUTE;
            else if (strcmp(optarg, "login") == 0)
                o->mode = TERN_BENCH_MODE_LOGIN;
            else if (strcmp(optarg, "push") == 0)
                o->mode = TERN_BENCH_MODE_PUSH;
            else
                return bad(name, optarg);
            break;
        case OPT_HOST: o->host = optarg; break;
        case OPT_PORT:
            if (parse_u64(optarg, &v) < 0 || v < 1 || v > 65535)
                return bad(name, optarg);
            o->port = (int)v;
            break;
        case OPT_DIRECT_TLS: o->direct_tls = 1; break;
        case OPT_TLS12: o->tls12 = 1; break;
        case OPT_DOMAIN: o->domain = optarg; break;
        case OPT_PREFIX: o->user_prefix = optarg; break;
        case OPT_BASE:
            if (parse_u32(optarg, &o->user_base, 0) < 0)
                return bad(name, optarg);
            break;
        case OPT_USERS:
            if (parse_u32(optarg, &o->users, 1) < 0)
                return bad(name, optarg);
            break;
        case OPT_PASSWORD: o->password = optarg; break;
        case OPT_MECH:
            if (strcmp(optarg, "scram-sha-1") == 0)
                o->mech = TERN_BENCH_MECH_SCRAM_SHA1;
            else if (strcmp(optarg, "scram-sha-256") == 0)
                o->mech = TERN_BENCH_MECH_SCRAM_SHA256;
            else if (strcmp(optarg, "plain") == 0)
                o->mech = TERN_BENCH_MECH_PLAIN;
            else
                return bad(name, optarg);
            break;
        case OPT_SM: o->sm = 1; break;
        case OPT_PUSH: o->push_jid = optarg; break;
        case OPT_PRESENCE: o->presence = 1; break;
        case OPT_CONNS:
            if (parse_u32(optarg, &o->conns, 1) < 0 || o->conns > 1000000)
                return bad(name, optarg);
            break;
        case OPT_PAIRS:
            if (parse_u32(optarg, &o->pairs, 1) < 0 || o->pairs > 500000)
                return bad(name, optarg);
            break;
        case OPT_CONCURRENCY:
            if (parse_u32(optarg, &o->concurrency, 1) < 0 || o->concurrency > 100000)
                return bad(name, optarg);
            break;
        case OPT_HOLD:
            if (parse_secs(optarg, &o->hold_s) < 0)
                return bad(name, optarg);
            break;
        case OPT_RATE:
            if (parse_rates(optarg, o) < 0)
                return bad(name, optarg);
            break;
        case OPT_DURATION:
            if (parse_secs(optarg, &o->duration_s) < 0)
                return bad(name, optarg);
            break;
        case OPT_COUNT:
            if (parse_u64(optarg, &o->count) < 0)
                return bad(name, optarg);
            break;
        case OPT_DRAIN:
            if (parse_secs(optarg, &o->drain_s) < 0)
                return bad(name, optarg);
            break;
        case OPT_WINDOW:
            if (parse_u32(optarg, &o->window, 1) < 0)
                return bad(name, optarg);
            break;
        case OPT_BODY:
            if (parse_u32(optarg, &o->body_size, 0) < 0 || o->body_size > 65536)
                return bad(name, optarg);
            break;
        case OPT_P99:
            if (parse_secs(optarg, &o->p99_limit_ms) < 0)
                return bad(name, optarg);
            break;
        case OPT_WARMUP: o->warmup = 1; break;
        case OPT_NO_WARMUP: o->warmup = 0; break;
        case OPT_LOGIN_TIMEOUT:
            if (parse_secs(optarg, &o->login_timeout_s) < 0 || o->login_timeout_s < 0.1)
                return bad(name, optarg);
            break;
        case OPT_MAX_TIME:
            if (parse_secs(optarg, &o->max_time_s) < 0 || o->max_time_s < 1)
                return bad(name, optarg);
            break;
        case OPT_SYNC: o->sync = 1; break;
        case OPT_HIBERNATE: o->hibernate = 1; break;
        case OPT_COMP_PORT:
            if (parse_u64(optarg, &v) < 0 || v < 1 || v > 65535)
                return bad(name, optarg);
            o->component_port = (int)v;
            break;
        case OPT_COMP_SECRET: o->component_secret = optarg; break;
        case OPT_HELP:
        case 'h': fputs(usage_text, stdout); exit(0);
        default: return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tern-loadgen: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if ((int)o->mode < 0) {
        fputs("tern-loadgen: --mode is required (see --help)\n", stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    struct tern_bench_run *r = &run_storage;
    if (parse_opts(argc, argv, &r->o) < 0)
        return EXIT_USAGE;
    signal(SIGPIPE, SIG_IGN);
    r->t0 = tern_bench_now_ns();
    r->loop = uv_default_loop();

    struct tern_bench_client *cl = &r->client;
    if (tern_bench_client_init(cl, r->loop, r->o.tls12, r->o.mode == TERN_BENCH_MODE_IDLE) < 0) {
        fputs("tern-loadgen: cannot create the TLS context\n", stderr);
        return 1;
    }
    int rc = strchr(r->o.host, ':')
                 ? uv_ip6_addr(r->o.host, r->o.port, (struct sockaddr_in6 *)&cl->addr)
                 : uv_ip4_addr(r->o.host, r->o.port, (struct sockaddr_in *)&cl->addr);
    if (rc < 0) {
        fprintf(stderr, "tern-loadgen: --host must be an IP address, got '%s'\n", r->o.host);
        return EXIT_USAGE;
    }
    cl->direct_tls = r->o.direct_tls;
    cl->domain = r->o.domain;
    cl->user_prefix = r->o.user_prefix;
    cl->password = r->o.password;
    cl->mech = r->o.mech;
    cl->sm = r->o.sm;
    cl->push_jid = r->o.push_jid;
    cl->presence = r->o.presence;
    cl->data = r;
    cl->on_closed = on_closed_common;

    uv_timer_init(r->loop, &r->tick);
    uv_timer_init(r->loop, &r->sweep);
    uv_timer_init(r->loop, &r->deadline);
    r->tick.data = r->sweep.data = r->deadline.data = r;
    uv_timer_start(&r->sweep, on_sweep, 1000, 1000);
    uv_timer_start(&r->deadline, on_deadline, (uint64_t)(r->o.max_time_s * 1000), 0);
    uv_signal_init(r->loop, &r->sigint);
    uv_signal_init(r->loop, &r->sigterm);
    r->sigint.data = r->sigterm.data = r;
    uv_signal_start(&r->sigint, on_signal, SIGINT);
    uv_signal_start(&r->sigterm, on_signal, SIGTERM);
    if (r->o.sync) {
        uv_pipe_init(r->loop, &r->in, 0);
        r->in.data = r;
        if (uv_pipe_open(&r->in, 0) < 0) {
            fputs("tern-loadgen: --sync needs stdin to be a pipe\n", stderr);
            return EXIT_USAGE;
        }
    }

    switch (r->o.mode) {
    case TERN_BENCH_MODE_IDLE: tern_bench_idle_start(r); break;
    case TERN_BENCH_MODE_ROUTE: tern_bench_route_start(r); break;
    case TERN_BENCH_MODE_LOGIN: tern_bench_login_start(r); break;
    case TERN_BENCH_MODE_PUSH:
        if (!r->o.component_port) {
            fputs("tern-loadgen: --mode push needs --component-port\n", stderr);
            return EXIT_USAGE;
        }
        tern_bench_push_start(r);
        break;
    }
    uv_run(r->loop, UV_RUN_DEFAULT);
    tern_bench_client_cleanup(cl);
    free(r->conns);
    free(r->dirty);
    free(cl->cache);
    uv_loop_close(r->loop);
    return r->exit_code;
}
