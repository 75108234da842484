/*
 * push.on_start: tell the devices whose sessions were alive at an orderly
 * shutdown, once, after the restart (docs/internals/push.md).
 */
#include "mod/push_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/module.h"
#include "xmpp/jid.h"

#define COMP          "push"
#define START_POLL_MS 200   /* how often to look for the app servers' components */
#define START_WAIT_MS 60000 /* how long to wait for a component to connect */

/*
 * At shutdown every session ends (system-shutdown) and fires
 * TERN_EV_SESSION_CLOSING, live or hibernated, while the store still runs
 * jobs (ternd.c closes it after the loop, running every queued job first).
 * Each such session marks its resource's registrations (TERN_PUSH_F_WAKE in
 * the flags column). At the next start the marked registrations are read
 * and unmarked in one job, and each gets one publish: when its app server
 * is one of our components, once that component is connected (it usually
 * reconnects a moment after ternd starts), for at most START_WAIT_MS.
 */
struct mark_req {
    struct tern_store_job job; /* store linkage */
    char *user, *resource;     /* the session's account and resource */
};

static int mark_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct mark_req *r = tern_store_container(job, struct mark_req, job);
    return b->ops->push_mark(b, r->user, r->resource);
}

static void mark_done(struct tern_store_job *job, int err) {
    struct mark_req *r = tern_store_container(job, struct mark_req, job);
    if (err)
        tern_warn(COMP, "recording %s/%s for push.on_start: %s", r->user, r->resource,
                  tern_strerror(err));
    free(r->user);
    free(r->resource);
    free(r);
}

void tern__push_mark_at_shutdown(const struct tern_event_args *a) {
    if (!a->session || !a->jid || !a->jid->local || !a->jid->resource)
        return;
    struct mark_req *r = tern_calloc(1, sizeof *r);
    r->user = tern_strdup(a->jid->local);
    r->resource = tern_strdup(a->jid->resource);
    r->job.run = mark_run;
    r->job.done = mark_done;
    r->job.write = 1;
    if (tern_store_submit(a->shard->server->store, &r->job) != 0)
        mark_done(&r->job, TERN_E_CLOSED);
}

/* One registration to tell at start. */
struct wake_entry {
    char *user;                    /* localpart */
    struct tern_push_reg reg;      /* the registration */
    size_t offline;                /* messages held offline for user */
    struct tern_push_options opts; /* user's content options */
    int has_opts;                  /* user has set some */
};

struct start_req {
    struct tern_store_job job;  /* store linkage */
    struct tern_shard *shard;   /* where to publish */
    int on;                     /* push.on_start (else only clear stale marks) */
    struct wake_entry *entries; /* read */
    size_t n;                   /* entries */
};

static struct wake_entry *waking; /* registrations waiting for their component */
static size_t nwaking;
static uv_timer_t start_timer;  /* polls for the components */
static int start_timer_used;    /* start_timer was initialised */
static uint64_t start_deadline; /* loop ms when waiting stops */

static void wake_entries_free(struct wake_entry *e, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(e[i].user);
        free(e[i].reg.jid);
        free(e[i].reg.node);
        free(e[i].reg.options);
        free(e[i].reg.resource);
    }
    free(e);
}

static int start_run(struct tern_store_backend *b, struct tern_store_job *job) {
    struct start_req *r = tern_store_container(job, struct start_req, job);
    char **users = NULL;
    size_t nusers = 0;
    int rc = r->on ? b->ops->push_marked(b, &users, &nusers) : 0;
    for (size_t i = 0; rc == 0 && i < nusers; i++) {
        struct tern_push_reg *regs = NULL;
        size_t nregs = 0, offline = 0;
        struct tern_push_options opts;
        int has_opts = 0;
        rc = b->ops->push_get(b, users[i], &regs, &nregs);
        if (rc == 0)
            rc = b->ops->offline_count(b, users[i], &offline);
        if (rc == 0)
            rc = tern__push_options_read(b, users[i], &opts, &has_opts);
        for (size_t j = 0; rc == 0 && j < nregs; j++) {
            if (!(regs[j].flags & TERN_PUSH_F_WAKE))
                continue;
            r->entries = tern_realloc(r->entries, (r->n + 1) * sizeof *r->entries);
            struct wake_entry *e = &r->entries[r->n++];
            e->user = tern_strdup(users[i]);
            e->reg = regs[j];
            e->offline = offline;
            e->opts = opts;
            e->has_opts = has_opts;
            memset(&regs[j], 0, sizeof regs[j]); /* moved */
        }
        tern_push_regs_free(regs, nregs);
    }
    tern_store_free_list(users, nusers);
    if (rc != 0)
        return rc;
    /* Told once: a crash before the publishes loses them, never repeats them.
     * With push.on_start off, marks left by an earlier run go too. */
    return b->ops->push_mark(b, NULL, NULL);
}

static void on_start_timer(uv_timer_t *t) {
    struct tern_shard *shard = t->data;
    int late = uv_now(shard->loop) >= start_deadline;
    size_t kept = 0;
    for (size_t i = 0; i < nwaking; i++) {
        struct wake_entry *e = &waking[i];
        if (shard->server->shutting_down) {
            /* dropped: no new requests once stopping */
        } else if (!tern__push_component_absent(e->reg.jid)) {
            struct tern_push_summary sum = {.count = (unsigned)e->offline};
            tern_info(COMP,
                      "push.on_start: telling %s node %s that %s had a session at the last "
                      "shutdown (%zu messages offline)",
                      e->reg.jid, e->reg.node, e->user, e->offline);
            tern__push_publish(shard, e->user, &e->reg, &sum, e->has_opts ? &e->opts : NULL);
        } else if (late) {
            tern_warn(COMP,
                      "push.on_start: component %s not connected within %d s; %s node %s "
                      "not told",
                      e->reg.jid, START_WAIT_MS / 1000, e->user, e->reg.node);
        } else {
            waking[kept++] = *e;
            continue;
        }
        free(e->user);
        free(e->reg.jid);
        free(e->reg.node);
        free(e->reg.options);
        free(e->reg.resource);
    }
    nwaking = kept;
    if (!nwaking) {
        free(waking);
        waking = NULL;
        uv_timer_stop(t);
    }
}

static void start_done(struct tern_store_job *job, int err) {
    struct start_req *r = tern_store_container(job, struct start_req, job);
    struct tern_shard *shard = r->shard;
    if (err)
        tern_warn(COMP, "reading the registrations for push.on_start: %s", tern_strerror(err));
    if (err || !r->n || shard->server->shutting_down || start_timer_used) {
        wake_entries_free(r->entries, r->n);
        free(r);
        return;
    }
    tern_info(COMP, "push.on_start: %zu registrations had a session at the last shutdown", r->n);
    waking = r->entries;
    nwaking = r->n;
    free(r);
    uv_timer_init(shard->loop, &start_timer);
    start_timer_used = 1;
    start_timer.data = shard;
    uv_unref((uv_handle_t *)&start_timer); /* never what keeps a stopping loop running */
    start_deadline = uv_now(shard->loop) + START_WAIT_MS;
    uv_timer_start(&start_timer, on_start_timer, 0, START_POLL_MS);
}

static void start_submit(struct tern_server *srv) {
    struct start_req *r = tern_calloc(1, sizeof *r);
    r->shard = srv->shards[0];
    r->on = srv->cfg->push_on_start;
    r->job.run = start_run;
    r->job.done = start_done;
    r->job.write = 1;
    if (tern_store_submit(srv->store, &r->job) != 0)
        start_done(&r->job, TERN_E_CLOSED);
}

void tern__push_start(struct tern_server *srv) {
    waking = NULL;
    nwaking = 0;
    start_timer_used = 0;
    if (srv->store && srv->nshards)
        start_submit(srv);
}

/* The loop is closed: start_timer was closed by the final walk. */
void tern__push_start_fini(void) {
    wake_entries_free(waking, nwaking);
    waking = NULL;
    nwaking = 0;
}
