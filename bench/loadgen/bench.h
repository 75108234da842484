/*
 * One run of the load generator: options, the connections, the event protocol
 * with the harness, and the three workloads (idle, route, login).
 *
 * Output is one JSON object per line on stdout: events while the run goes
 * ("ready", "step_start", "step_end", "end") and a final "result". With
 * --sync the generator waits after each event for one line on stdin, so the
 * harness can sample the server exactly between phases.
 */
#ifndef TERN_BENCH_BENCH_H
#define TERN_BENCH_BENCH_H

#include <stdint.h>

#include <uv.h>

#include "conn.h"
#include "hist.h"
#include "pace.h"

enum tern_bench_mode {
    TERN_BENCH_MODE_IDLE,
    TERN_BENCH_MODE_ROUTE,
    TERN_BENCH_MODE_LOGIN,
    TERN_BENCH_MODE_PUSH,
};

#define TERN_BENCH_MAX_RATES  32 /* steps in one --rate list */
#define TERN_BENCH_MAX_ERRORS 16 /* distinct error reasons counted */

/** Command-line settings. */
struct tern_bench_opts {
    enum tern_bench_mode mode;            /* --mode */
    const char *host;                     /* --host, an IP literal */
    int port;                             /* --port */
    int direct_tls;                       /* --direct-tls */
    int tls12;                            /* --tls12: allow TLS 1.2 */
    const char *domain;                   /* --domain */
    const char *user_prefix;              /* --user-prefix */
    uint32_t user_base;                   /* --user-base: first user index */
    uint32_t users;                       /* --users: distinct users (login mode) */
    const char *password;                 /* --password */
    enum tern_bench_mech mech;            /* --mech */
    int sm;                               /* --sm */
    const char *push_jid;                 /* --push JID */
    int presence;                         /* --presence */
    uint32_t conns;                       /* --conns (idle) */
    uint32_t pairs;                       /* --pairs (route) */
    uint32_t concurrency;                 /* --concurrency: logins in flight */
    double hold_s;                        /* --hold (idle, without --sync) */
    uint64_t rates[TERN_BENCH_MAX_RATES]; /* --rate list; 0 = as fast as the window allows */
    int nrates;                           /* entries in rates */
    double duration_s;                    /* --duration per step / login phase */
    uint64_t count;         /* --count: messages per step or logins; 0 = by duration */
    double drain_s;         /* --drain: wait for stragglers after a step */
    uint32_t window;        /* --window: in-flight cap for rate 0 */
    uint32_t body_size;     /* --body-size: pad bodies to this many bytes */
    double p99_limit_ms;    /* --p99-limit: end the sweep past this p99 */
    int warmup;             /* --warmup / --no-warmup (login mode) */
    double login_timeout_s; /* --login-timeout */
    double max_time_s;      /* --max-time: hard bound on the whole run */
    int sync;               /* --sync */
    int hibernate;          /* --hibernate (push): recipients drop the socket, SM keeps them */
    int component_port;     /* --component-port (push): the server's XEP-0114 port */
    const char *component_secret; /* --component-secret (push) */
};

struct tern_bench_errors {
    int n;                                     /* reasons in use */
    const char *reason[TERN_BENCH_MAX_ERRORS]; /* static strings */
    uint64_t count[TERN_BENCH_MAX_ERRORS];     /* occurrences */
    uint64_t other;                            /* reasons beyond the table */
    uint64_t total;                            /* all errors */
};

struct tern_bench_run;
typedef void (*tern_bench_cont_fn)(struct tern_bench_run *r);

/** Per-step figures of the route workload. */
struct tern_bench_step {
    uint64_t rate;              /* target messages/s, 0 = window-bound */
    uint64_t sent;              /* messages written */
    uint64_t received;          /* messages of this step delivered */
    uint64_t misrouted;         /* delivered to the wrong connection */
    uint64_t late;              /* delivered after this step's drain ended */
    uint64_t backpressure;      /* not sent: the connection's output was full */
    uint64_t t_begin;           /* first send, ns */
    uint64_t t_sent;            /* last send, ns */
    uint64_t t_end;             /* end of drain, ns */
    struct tern_bench_hist lat; /* send -> receive, ns */
};

/** The whole run. One per process. */
struct tern_bench_run {
    uv_loop_t *loop;                  /* the one loop */
    struct tern_bench_opts o;         /* settings */
    struct tern_bench_client client;  /* shared connection settings */
    struct tern_bench_conn *conns;    /* array of nconns */
    uint32_t nconns;                  /* entries in conns */
    uint32_t next_login;              /* next connection (idle, route) or user (login) to start */
    uint32_t in_flight;               /* logins started and not finished */
    uint32_t ready;                   /* connections logged in */
    uint32_t closed;                  /* connections closed after the end */
    uint32_t dropped;                 /* ready connections the server closed */
    struct tern_bench_errors errors;  /* login and connection errors */
    struct tern_bench_hist login_lat; /* connect -> bound (and enabled), ns */
    uint64_t t0;                      /* process start, ns */
    uint64_t t_login_start;           /* first login started, ns */
    uint64_t t_login_end;             /* last login finished, ns */
    int phase;                        /* workload-specific */
    int finishing;                    /* closing everything; no new work */
    int exit_code;                    /* 0 ok, 1 errors or losses */
    uv_timer_t tick;                  /* 1 ms send pacing (route) */
    uv_timer_t sweep;                 /* 1 s: login timeouts, hold end */
    uv_timer_t deadline;              /* --max-time */
    uv_signal_t sigint, sigterm;      /* stop early and report */
    uv_pipe_t in;                     /* stdin for --sync */
    tern_bench_cont_fn cont;          /* what to do when the harness says go */
    tern_bench_cont_fn report;        /* prints the result once everything closed */
    tern_bench_closed_fn wl_closed;   /* the workload's close handler */
    uint32_t open;                    /* connections started and not yet closed */
    char inbuf[256];                  /* stdin bytes */
    /* route */
    struct tern_bench_pace pace; /* schedule of the current step */
    int step;                    /* index into o.rates */
    int nsteps;                  /* steps run so far */
    int fail_streak;             /* consecutive steps over --p99-limit */
    int stop_requested;          /* the harness answered "stop": no more rate steps */
    struct tern_bench_step steps[TERN_BENCH_MAX_RATES]; /* results */
    uint64_t seq;                                       /* next message sequence number */
    uint32_t rr;                                        /* next sending connection */
    uint8_t *dirty;                                     /* per connection: has unflushed output */
    /* login */
    uint64_t logins_ok;      /* completed in the measured phase */
    uint64_t logins_failed;  /* failed in the measured phase */
    uint64_t logins_started; /* started in the current phase */
    uint64_t t_phase;        /* start of the measured phase, ns */
    uint64_t t_phase_end;    /* end of the measured phase, ns */
    uint64_t delivered;      /* push: stored messages delivered at re-login */
};

/** Count an error reason. */
void tern_bench_error(struct tern_bench_run *r, const char *reason);

/**
 * Print an event line: {"event":"NAME",<fields>} where fields is a JSON
 * member list without braces (may be empty). Then continue with cont, at once
 * or, with --sync, when the harness writes a line.
 */
void tern_bench_emit(struct tern_bench_run *r, const char *name, const char *fields,
                     tern_bench_cont_fn cont);

/** Start c as user index, keeping count of open connections. */
void tern_bench_start_conn(struct tern_bench_run *r, struct tern_bench_conn *c, uint32_t index);

/**
 * Stop the run: no new work, close every connection, and call r->report when
 * the last one closed (at once if none is open).
 */
void tern_bench_stop(struct tern_bench_run *r);

/** Start logins until concurrency is reached or all nconns are started (idle, route). */
void tern_bench_login_more(struct tern_bench_run *r);

/** Close every connection gracefully; the workload's on_closed counts them. */
void tern_bench_close_all(struct tern_bench_run *r);

/** Print the final result line, stop the timers and let the loop end. */
void tern_bench_finish(struct tern_bench_run *r, const char *fields);

/** Append printf output to a bounded JSON buffer; never overflows, truncates. */
void tern_bench_json(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Append "p50_ms":..,"p99_ms":.. etc. of h under prefix. */
void tern_bench_json_hist(char *buf, size_t size, const char *prefix,
                          const struct tern_bench_hist *h);

/** Append "errors":{...}. */
void tern_bench_json_errors(char *buf, size_t size, const struct tern_bench_errors *e);

/** Workload entry points: set callbacks and begin. */
void tern_bench_idle_start(struct tern_bench_run *r);
void tern_bench_route_start(struct tern_bench_run *r);
void tern_bench_login_start(struct tern_bench_run *r);
void tern_bench_push_start(struct tern_bench_run *r);

#endif
